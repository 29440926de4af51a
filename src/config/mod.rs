//! Configuration: `channels.yaml` and `agents/*.agent.yaml`, with `${VAR}` expansion and
//! validation whose errors name the file, the field (and line) and the fix.
//!
//! [`Config::load`] is the entry point; [`check_report`] is what `wagate check` prints.

/// The agent file's types.
pub mod agent;
mod agent_keys;
mod agent_raw;
/// The `channels.yaml` types.
pub mod channels;
mod check;
mod env_file;
mod error;
/// `${VAR}` expansion.
pub mod expand;
mod load;
mod locate;
mod parse;
mod path;
mod validate;
mod validate_agent;

pub use agent::*;
pub use channels::*;
pub use check::{check_report, check_report_with_env};
pub use env_file::{env_lookup, read_env_file};
pub use error::{ConfigError, Problem};
pub use expand::Env;
pub(crate) use validate::display_url;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The builtin tools an agent may name (`spec.tools[].name` with `type: builtin`).
pub const BUILTIN_TOOLS: &[&str] = &[
    "current_time",
    "handoff_to_human",
    "reply_buttons",
    "reply_list",
    "react",
    "send_image",
    "send_document",
    "send_location",
];

/// Everything loaded from one config directory, validated. Base URLs (`graph_api_base`, model
/// and transcription `endpoint`) carry no trailing slash.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory it was loaded from.
    pub dir: PathBuf,
    pub whatsapp: WhatsAppChannel,
    /// Agents by `metadata.name`.
    pub agents: BTreeMap<String, AgentFile>,
    /// The file each agent was loaded from, by `metadata.name`.
    pub agent_files: BTreeMap<String, PathBuf>,
    /// Things that did not stop the load but deserve a look (unknown keys, unset variables),
    /// one line each, naming the file. `serve` logs them at start; `check` prints them.
    pub warnings: Vec<String>,
}

impl Config {
    /// Whether the agent answering `phone_number_id` is told about the customer's reactions to
    /// its messages (`spec.whatsapp.reactions_to_agent`).
    pub fn answers_reactions(&self, phone_number_id: &str) -> bool {
        self.whatsapp
            .agent_for_number(phone_number_id)
            .and_then(|name| self.agents.get(name))
            .is_some_and(|agent| agent.spec.whatsapp.reactions_to_agent)
    }
}
