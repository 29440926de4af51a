//! How the tagged parts of an agent file are read: through flat structs, then converted.
//!
//! `#[serde(tag = "type")]` would be shorter, but serde buffers internally tagged enums, which
//! hides the field path of any error inside them (`spec.tools[0].http.timeout_seconds`) from
//! the config report. Also here: `HttpToolSpec`'s `Debug`, which keeps credentials out of logs.

use super::agent::{empty_object_schema, GuardrailRule, HttpToolSpec, PiiAction, ToolSpec};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuardrail {
    #[serde(rename = "type")]
    kind: GuardrailKind,
    #[serde(default)]
    action: Option<PiiAction>,
    #[serde(default)]
    max_chars: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum GuardrailKind {
    PiiDetection,
    MaxLength,
}

impl TryFrom<RawGuardrail> for GuardrailRule {
    type Error = String;

    fn try_from(raw: RawGuardrail) -> Result<Self, String> {
        match raw.kind {
            GuardrailKind::PiiDetection => match raw.max_chars {
                Some(_) => Err("`max_chars` belongs to max_length, not to pii_detection".into()),
                None => Ok(GuardrailRule::PiiDetection {
                    action: raw.action.unwrap_or_default(),
                }),
            },
            GuardrailKind::MaxLength => match (raw.action, raw.max_chars) {
                (Some(_), _) => Err("`action` belongs to pii_detection, not to max_length".into()),
                (None, None) => Err("missing field `max_chars`: max_length needs it, \
                     e.g. `max_chars: 2000`"
                    .into()),
                (None, Some(max_chars)) => Ok(GuardrailRule::MaxLength { max_chars }),
            },
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RawTool {
    #[serde(rename = "type")]
    kind: ToolKind,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Json>,
    #[serde(default)]
    http: Option<HttpToolSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolKind {
    Builtin,
    Http,
}

impl TryFrom<RawTool> for ToolSpec {
    type Error = String;

    fn try_from(raw: RawTool) -> Result<Self, String> {
        match raw.kind {
            ToolKind::Builtin => {
                if raw.http.is_some() {
                    return Err("a builtin tool takes no `http` section; use `type: http`".into());
                }
                Ok(ToolSpec::Builtin {
                    name: raw.name,
                    description: raw.description,
                })
            }
            ToolKind::Http => Ok(ToolSpec::Http {
                name: raw.name,
                description: raw.description.unwrap_or_default(),
                parameters: raw.parameters.unwrap_or_else(empty_object_schema),
                http: raw.http.ok_or(
                    "missing field `http`: an http tool needs `http: {method, url}`".to_string(),
                )?,
            }),
        }
    }
}

impl std::fmt::Debug for HttpToolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match self.url.split_once('?') {
            Some((before, _)) => format!("{before}?[redacted]"),
            None => self.url.clone(),
        };
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|k| (k.as_str(), "[redacted]"))
            .collect();
        f.debug_struct("HttpToolSpec")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &headers)
            .field("body", &self.body.as_ref().map(|_| "[redacted]"))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}
