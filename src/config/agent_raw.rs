//! How the tagged parts of an agent file are read: through flat structs, then converted.
//!
//! `#[serde(tag = "type")]` would be shorter, but serde buffers internally tagged enums, which
//! hides the field path of any error inside them (`spec.tools[0].http.timeout_seconds`) from
//! the config report. Also here: `HttpToolSpec`'s `Debug`, which keeps credentials out of logs.

use super::agent::{
    default_mcp_timeout_seconds, default_tool_max_response_bytes, empty_object_schema,
    GuardrailRule, HttpToolSpec, McpToolSpec, McpTransport, PiiAction, ToolSpec,
};
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
    // `type: mcp` only:
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    max_response_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolKind {
    Builtin,
    Http,
    Mcp,
}

impl RawTool {
    /// The first `type: mcp` key set on a tool of another type.
    fn mcp_key(&self) -> Option<&'static str> {
        [
            ("command", self.command.is_some()),
            ("args", !self.args.is_empty()),
            ("env", !self.env.is_empty()),
            ("url", self.url.is_some()),
            ("headers", !self.headers.is_empty()),
            ("include", self.include.is_some()),
            ("timeout_seconds", self.timeout_seconds.is_some()),
            ("max_response_bytes", self.max_response_bytes.is_some()),
        ]
        .into_iter()
        .find_map(|(key, set)| set.then_some(key))
    }
}

impl TryFrom<RawTool> for ToolSpec {
    type Error = String;

    fn try_from(raw: RawTool) -> Result<Self, String> {
        if !matches!(raw.kind, ToolKind::Mcp) {
            if let Some(key) = raw.mcp_key() {
                return Err(format!(
                    "`{key}` belongs to `type: mcp` tools (an http tool puts url, headers and \
                     timeout_seconds under `http:`)"
                ));
            }
        }
        match raw.kind {
            ToolKind::Mcp => {
                if raw.http.is_some() {
                    return Err(
                        "an mcp tool takes no `http` section; give `url` (streamable \
                                HTTP) or `command` (stdio)"
                            .into(),
                    );
                }
                let transport = match (raw.command, raw.url) {
                    (Some(command), None) => {
                        if !raw.headers.is_empty() {
                            return Err("`headers` go with `url`; a stdio server (`command`) \
                                        takes `env`"
                                .into());
                        }
                        McpTransport::Stdio {
                            command,
                            args: raw.args,
                            env: raw.env,
                        }
                    }
                    (None, Some(url)) => {
                        if !raw.args.is_empty() || !raw.env.is_empty() {
                            return Err("`args` and `env` go with `command`; a streamable-HTTP \
                                        server (`url`) takes `headers`"
                                .into());
                        }
                        McpTransport::Http {
                            url,
                            headers: raw.headers,
                        }
                    }
                    (Some(_), Some(_)) => {
                        return Err("give either `command` (a stdio server wagate starts) or \
                                    `url` (streamable HTTP), not both"
                            .into())
                    }
                    (None, None) => {
                        return Err("missing field `command` or `url`: an mcp tool needs \
                                    `command` (a stdio server wagate starts) or `url` \
                                    (streamable HTTP)"
                            .into())
                    }
                };
                Ok(ToolSpec::Mcp(McpToolSpec {
                    name: raw.name,
                    transport,
                    include: raw.include,
                    timeout_seconds: raw
                        .timeout_seconds
                        .unwrap_or_else(default_mcp_timeout_seconds),
                    max_response_bytes: raw
                        .max_response_bytes
                        .unwrap_or_else(default_tool_max_response_bytes),
                }))
            }
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

impl std::fmt::Debug for McpToolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names =
            |map: &BTreeMap<String, String>| -> Vec<String> { map.keys().cloned().collect() };
        let mut out = f.debug_struct("McpToolSpec");
        out.field("name", &self.name);
        match &self.transport {
            McpTransport::Stdio { command, args, env } => out
                .field("command", command)
                .field("args", &args.len())
                .field("env", &names(env)),
            McpTransport::Http { url, headers } => out
                .field("url", &url.split('?').next().unwrap_or_default())
                .field("headers", &names(headers)),
        };
        out.field("include", &self.include)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(yaml: &str) -> Result<ToolSpec, String> {
        serde_yaml::from_str::<ToolSpec>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn an_mcp_tool_is_a_stdio_command_or_a_url_never_both_nor_neither() {
        let stdio = tool("{type: mcp, name: fs, command: npx, args: ['-y', 'x'], env: {A: b}}")
            .expect("stdio");
        let ToolSpec::Mcp(spec) = stdio else {
            panic!("not mcp")
        };
        assert!(matches!(spec.transport, McpTransport::Stdio { .. }));
        assert_eq!((spec.timeout_seconds, spec.max_response_bytes), (30, 16384));
        let http =
            tool("{type: mcp, name: crm, url: 'https://x/mcp', headers: {A: b}, include: [t]}")
                .expect("http");
        assert!(matches!(
            http,
            ToolSpec::Mcp(McpToolSpec {
                transport: McpTransport::Http { .. },
                ..
            })
        ));
        let both = tool("{type: mcp, name: x, command: a, url: 'https://x'}").unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let neither = tool("{type: mcp, name: x}").unwrap_err();
        assert!(neither.contains("`command` or `url`"), "{neither}");
        let mixed = tool("{type: mcp, name: x, url: 'https://x', env: {A: b}}").unwrap_err();
        assert!(mixed.contains("go with `command`"), "{mixed}");
    }

    #[test]
    fn mcp_keys_on_another_tool_type_are_named() {
        let err = tool("{type: builtin, name: current_time, command: date}").unwrap_err();
        assert!(err.contains("`command` belongs to `type: mcp`"), "{err}");
        let err =
            tool("{type: http, name: t, url: 'https://x', http: {url: 'https://x'}}").unwrap_err();
        assert!(err.contains("under `http:`"), "{err}");
    }

    #[test]
    fn an_mcp_specs_debug_shows_no_secret_values() {
        let spec = tool(
            "{type: mcp, name: crm, url: 'https://x/mcp?key=s3cret', headers: {Authorization: 'Bearer s3cret'}}",
        )
        .unwrap();
        let shown = format!("{spec:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
    }
}
