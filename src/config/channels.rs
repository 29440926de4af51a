//! `config/channels.yaml`: how wagate talks to Meta and to whom it hands each conversation.
//!
//! Every optional key has its default here, in one place, so the README's reference table and
//! the code cannot drift apart (the config tests check the defaults).

use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole `channels.yaml` file.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelsFile {
    pub channels: Channels,
}

/// `channels`: wagate reads `whatsapp` and ignores other channels.
#[derive(Debug, Clone, Deserialize)]
pub struct Channels {
    pub whatsapp: WhatsAppChannel,
}

/// `channels.whatsapp`.
#[derive(Debug, Clone, Deserialize)]
pub struct WhatsAppChannel {
    /// Compared (in constant time) with `hub.verify_token` in Meta's handshake. Empty never matches.
    #[serde(default)]
    pub verify_token: Secret,
    /// Bearer token for the Graph API. Empty means dry run: replies are logged, not sent.
    #[serde(default)]
    pub access_token: Secret,
    /// The business number replies are sent from (unless `numbers` routes elsewhere). Empty: dry run.
    #[serde(default)]
    pub phone_number_id: String,
    /// Key of the `X-Hub-Signature-256` HMAC. Empty: signatures are not checked (warned at start).
    #[serde(default)]
    pub app_secret: Secret,
    /// The agent that answers numbers not listed in `numbers`.
    pub default_agent: String,
    /// Outbound cap for the whole channel; sends over it wait, none is dropped.
    #[serde(default)]
    pub rate_limit: RateLimit,
    #[serde(default = "default_graph_api_base")]
    pub graph_api_base: String,
    #[serde(default = "default_graph_api_version")]
    pub graph_api_version: String,
    /// phone_number_id -> agent name, for several business numbers on one app.
    #[serde(default)]
    pub numbers: BTreeMap<String, String>,
    /// Wait this long after a conversation's first pending message before starting its turn,
    /// so a burst of short messages becomes one turn.
    #[serde(default)]
    pub debounce_ms: u64,
    /// Sent to the user when every model fails or the turn times out.
    #[serde(default = "default_error_reply")]
    pub error_reply: String,

    // ---- wagate extensions: not in the reference platform, all optional ----
    /// Largest webhook body accepted; bigger bodies get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How many conversations may run a turn at the same time.
    #[serde(default = "default_max_concurrent_turns")]
    pub max_concurrent_turns: usize,
    /// On SIGTERM, how long running turns may take to finish before the process exits anyway
    /// (their messages stay in the inbox and are resumed at the next start).
    #[serde(default = "default_shutdown_grace_seconds")]
    pub shutdown_grace_seconds: u64,
    /// Per-type download limits for inbound media, in bytes.
    #[serde(default)]
    pub media_max_bytes: MediaLimits,
    /// The operator API and console; off while `console.token` is empty.
    #[serde(default)]
    pub console: ConsoleSettings,
    /// Handing a conversation to a person (and back).
    #[serde(default)]
    pub handoff: HandoffSettings,
    /// The 24-hour customer service window: what to send when a reply falls outside it.
    #[serde(default)]
    pub window: WindowSettings,
    /// A customer's STOP: confirmed once, then silence until a resume keyword.
    #[serde(default)]
    pub opt_out: OptOutSettings,
}

/// Every key of `channels.whatsapp`; others get a "did you mean" warning. Keep in step with
/// the struct above (a test compares them).
pub(crate) const WHATSAPP_KEYS: &[&str] = &[
    "verify_token",
    "access_token",
    "phone_number_id",
    "app_secret",
    "default_agent",
    "rate_limit",
    "graph_api_base",
    "graph_api_version",
    "numbers",
    "debounce_ms",
    "error_reply",
    "max_body_bytes",
    "max_concurrent_turns",
    "shutdown_grace_seconds",
    "media_max_bytes",
    "console",
    "handoff",
    "window",
    "opt_out",
];

/// Every key of `channels.whatsapp.console`.
pub(crate) const CONSOLE_KEYS: &[&str] = &["token", "public_url"];

/// Every key of `channels.whatsapp.handoff`.
pub(crate) const HANDOFF_KEYS: &[&str] = &[
    "message",
    "keywords",
    "release_after_seconds",
    "hours",
    "closed_message",
    "notify_url",
];

/// Every key of `channels.whatsapp.window`.
pub(crate) const WINDOW_KEYS: &[&str] = &["reopen_template"];

/// Every key of `channels.whatsapp.window.reopen_template`.
pub(crate) const TEMPLATE_KEYS: &[&str] = &["name", "language", "components"];

/// `channels.whatsapp.window`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WindowSettings {
    /// An approved template sent instead of a message that falls outside the 24-hour window
    /// (the message is held until the customer writes again). Empty (`{}`): such messages
    /// fail with `outside_24h_window`.
    #[serde(default)]
    pub reopen_template: TemplateSettings,
}

/// A message template as Meta's template message names it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TemplateSettings {
    /// The approved template's name. Empty: no template.
    #[serde(default)]
    pub name: String,
    /// Its language code (`en_US`, `es`...), as approved.
    #[serde(default)]
    pub language: String,
    /// Meta's `components` (parameters of the header, body, buttons), sent as written.
    #[serde(default)]
    pub components: Vec<serde_json::Value>,
}

impl TemplateSettings {
    /// A template is configured.
    pub fn is_set(&self) -> bool {
        !self.name.trim().is_empty()
    }
}

/// Every key of `channels.whatsapp.opt_out`.
pub(crate) const OPT_OUT_KEYS: &[&str] = &["keywords", "resume_keywords", "reply"];

/// `channels.whatsapp.opt_out`. Keywords match like handoff keywords: the whole message,
/// trimmed, case-insensitive.
#[derive(Debug, Clone, Deserialize)]
pub struct OptOutSettings {
    /// A customer message equal to one of these opts the customer out.
    #[serde(default = "default_opt_out_keywords")]
    pub keywords: Vec<String>,
    /// A customer message equal to one of these opts the customer back in (and is answered).
    #[serde(default = "default_resume_keywords")]
    pub resume_keywords: Vec<String>,
    /// Sent once when the customer opts out. Empty: nothing is sent.
    #[serde(default = "default_opt_out_reply")]
    pub reply: String,
}

impl Default for OptOutSettings {
    fn default() -> Self {
        OptOutSettings {
            keywords: default_opt_out_keywords(),
            resume_keywords: default_resume_keywords(),
            reply: default_opt_out_reply(),
        }
    }
}

/// Every key of `channels.whatsapp.handoff.hours`.
pub(crate) const HOURS_KEYS: &[&str] = &["timezone", "days"];

/// The day names `handoff.hours.days` accepts.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `channels.whatsapp.console`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsoleSettings {
    /// Bearer token of the operator API and the console login. Empty: both are off (404).
    #[serde(default)]
    pub token: Secret,
    /// Where operators reach the console (`https://ops.example.com`), for the link in
    /// `handoff.notify_url` posts. Empty: the link is a path (`/console/#...`).
    #[serde(default)]
    pub public_url: String,
}

/// `channels.whatsapp.handoff`.
#[derive(Debug, Clone, Deserialize)]
pub struct HandoffSettings {
    /// Sent to the customer when a keyword or the agent hands the conversation over.
    #[serde(default = "default_handoff_message")]
    pub message: String,
    /// A customer message equal to one of these (case-insensitive, trimmed) asks for a person.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// A `human` conversation with no operator reply for this long goes back to the agent.
    #[serde(default = "default_release_after_seconds")]
    pub release_after_seconds: u64,
    /// When the team is there; empty: always.
    #[serde(default)]
    pub hours: HoursSettings,
    /// Sent instead of `message` outside `hours`.
    #[serde(default = "default_closed_message")]
    pub closed_message: String,
    /// POSTed (JSON) when a conversation starts waiting for a person. Empty: nobody is told.
    #[serde(default)]
    pub notify_url: String,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        HandoffSettings {
            message: default_handoff_message(),
            keywords: Vec::new(),
            release_after_seconds: default_release_after_seconds(),
            hours: HoursSettings::default(),
            closed_message: default_closed_message(),
            notify_url: String::new(),
        }
    }
}

/// `channels.whatsapp.handoff.hours`: `{timezone: "Europe/Madrid", days: {mon: "09:00-18:00"}}`.
/// No timezone: no opening hours (always open). A day missing or empty is closed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HoursSettings {
    /// An IANA time zone name; daylight saving follows it.
    #[serde(default)]
    pub timezone: String,
    /// Day name (`mon`..`sun`) -> `"HH:MM-HH:MM"`, several ranges separated by commas.
    #[serde(default)]
    pub days: BTreeMap<String, String>,
}

impl HoursSettings {
    /// Hours were configured (otherwise the team is always "open").
    pub fn is_set(&self) -> bool {
        !self.timezone.is_empty() || !self.days.is_empty()
    }
}

/// Every key of `channels.whatsapp.rate_limit`.
pub(crate) const RATE_LIMIT_KEYS: &[&str] = &["window_seconds", "max_messages"];

/// Every key of `channels.whatsapp.media_max_bytes`.
pub(crate) const MEDIA_LIMIT_KEYS: &[&str] = &["image", "audio", "video", "document", "sticker"];

/// `channels.whatsapp.rate_limit`: outbound messages per window, for the whole channel.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimit {
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u64,
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            window_seconds: default_window_seconds(),
            max_messages: default_max_messages(),
        }
    }
}

/// Meta's own limits (DESIGN.md): image 5 MB, audio and video 16 MB, documents 100 MB,
/// stickers are small (500 KB animated).
#[derive(Debug, Clone, Deserialize)]
pub struct MediaLimits {
    #[serde(default = "default_image_max")]
    pub image: u64,
    #[serde(default = "default_av_max")]
    pub audio: u64,
    #[serde(default = "default_av_max")]
    pub video: u64,
    #[serde(default = "default_document_max")]
    pub document: u64,
    #[serde(default = "default_sticker_max")]
    pub sticker: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            image: default_image_max(),
            audio: default_av_max(),
            video: default_av_max(),
            document: default_document_max(),
            sticker: default_sticker_max(),
        }
    }
}

impl WhatsAppChannel {
    /// Dry run: no access token or no phone number id, so nothing can be sent to Meta.
    pub fn dry_run(&self) -> bool {
        self.access_token.is_empty() || self.phone_number_id.is_empty()
    }

    /// The agent that answers messages arriving on `phone_number_id`, or `None` when `numbers`
    /// is configured and this number is neither in it nor the channel's own number.
    pub fn agent_for_number(&self, phone_number_id: &str) -> Option<&str> {
        if let Some(agent) = self.numbers.get(phone_number_id) {
            return Some(agent);
        }
        if self.numbers.is_empty() || phone_number_id == self.phone_number_id {
            return Some(&self.default_agent);
        }
        None
    }
}

fn default_graph_api_base() -> String {
    "https://graph.facebook.com".into()
}
fn default_graph_api_version() -> String {
    "v25.0".into()
}
fn default_error_reply() -> String {
    "Sorry, something went wrong on our side. Please try again in a moment.".into()
}
fn default_handoff_message() -> String {
    "I'm passing you to a person from our team. They will reply here shortly.".into()
}
fn default_closed_message() -> String {
    "Our team is away right now; we will reply when we are back.".into()
}
fn default_opt_out_keywords() -> Vec<String> {
    vec!["STOP".into()]
}
fn default_resume_keywords() -> Vec<String> {
    vec!["START".into()]
}
fn default_opt_out_reply() -> String {
    "You will not receive more messages from us. Send START to talk again.".into()
}
fn default_release_after_seconds() -> u64 {
    86400
}
fn default_max_body_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_concurrent_turns() -> usize {
    64
}
fn default_shutdown_grace_seconds() -> u64 {
    20
}
fn default_window_seconds() -> u64 {
    60
}
fn default_max_messages() -> u32 {
    30
}
fn default_image_max() -> u64 {
    5 * 1024 * 1024
}
fn default_av_max() -> u64 {
    16 * 1024 * 1024
}
fn default_document_max() -> u64 {
    100 * 1024 * 1024
}
fn default_sticker_max() -> u64 {
    512 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names of a struct, read from its pretty `Debug` output (top level only).
    fn debug_fields(value: &impl std::fmt::Debug) -> Vec<String> {
        format!("{value:#?}")
            .lines()
            .filter(|line| line.starts_with("    ") && !line.starts_with("     "))
            .filter_map(|line| line.trim().split_once(':').map(|(k, _)| k.to_string()))
            .collect()
    }

    #[test]
    fn the_known_key_lists_match_the_structs_so_no_real_key_is_called_unknown() {
        let file: ChannelsFile =
            serde_yaml::from_str("channels:\n  whatsapp:\n    default_agent: a\n").expect("parses");
        let w = file.channels.whatsapp;
        assert_eq!(debug_fields(&w), WHATSAPP_KEYS);
        assert_eq!(debug_fields(&w.rate_limit), RATE_LIMIT_KEYS);
        assert_eq!(debug_fields(&w.media_max_bytes), MEDIA_LIMIT_KEYS);
        assert_eq!(debug_fields(&w.console), CONSOLE_KEYS);
        assert_eq!(debug_fields(&w.handoff), HANDOFF_KEYS);
        assert_eq!(debug_fields(&w.handoff.hours), HOURS_KEYS);
        assert_eq!(debug_fields(&w.window), WINDOW_KEYS);
        assert_eq!(debug_fields(&w.window.reopen_template), TEMPLATE_KEYS);
        assert_eq!(debug_fields(&w.opt_out), OPT_OUT_KEYS);
    }
}
