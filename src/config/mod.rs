//! Configuration: `channels.yaml` and `agents/*.agent.yaml`, with `${VAR}` expansion and
//! validation whose errors name the file, the field (and line) and the fix.

pub mod agent;
pub mod channels;

pub use agent::*;
pub use channels::*;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything loaded from one config directory, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory it was loaded from.
    pub dir: PathBuf,
    pub whatsapp: WhatsAppChannel,
    /// Agents by `metadata.name`.
    pub agents: BTreeMap<String, AgentFile>,
}
