//! `type: http` tools: one HTTP request per call, with `{{ arg }}` placeholders filled from the
//! call's arguments, and the response (cut to `max_response_bytes`) handed back to the model.
//!
//! Where placeholders are filled:
//! - URL: values are percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`), and the filled URL
//!   must keep the scheme, host, port and number of path segments of the template, so a value
//!   such as `../admin` or `x?y#z` cannot point the request somewhere else. (Placeholders in the
//!   host are therefore not supported; `${VAR}` from the environment is, since config loading has
//!   already expanded it.)
//! - headers: as text (a value with a line break is refused by the HTTP library).
//! - JSON body: in string leaves. A leaf that is exactly `"{{ arg }}"` takes the argument's JSON
//!   value (a number stays a number); inside a longer string the value is written as text.
//!
//! A missing argument fills in as empty text (or `null` for a whole leaf). Every failure
//! (timeout, unreachable host, non-2xx, a refused address) becomes text for the model, never a
//! failed turn. Redirects are not followed and internal addresses are refused: see [`guard`].
//! The URL and headers may carry secrets, so they never appear in that text or in logs.

mod guard;

use crate::config::HttpToolSpec;
use crate::llm::ToolDefinition;
use regex::{Captures, Regex};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value as Json};
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

/// `{{ name }}`, with optional spaces inside the braces.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}").expect("placeholder pattern is valid")
});
/// A JSON string leaf that is one placeholder and nothing else.
static WHOLE_PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}$").expect("placeholder pattern is valid")
});

/// The guarded client (see [`guard`]) of every HTTP tool, built once: it holds the connection
/// pool. `Err` only if the TLS backend cannot start; each call then says so.
static GUARDED_CLIENT: LazyLock<Result<reqwest::Client, String>> =
    LazyLock::new(|| guard::client(guard::system_lookup()).map_err(|e| e.to_string()));

/// One configured HTTP tool.
#[derive(Debug)]
pub(crate) struct HttpTool {
    pub(crate) definition: ToolDefinition,
    method: Method,
    spec: HttpToolSpec,
    http: Result<reqwest::Client, String>,
}

/// The method in the agent file is not an HTTP method.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an HTTP method")]
pub struct BadMethod(pub String);

impl HttpTool {
    pub(crate) fn new(
        definition: ToolDefinition,
        spec: &HttpToolSpec,
    ) -> Result<HttpTool, BadMethod> {
        Self::with_client(definition, spec, GUARDED_CLIENT.clone())
    }

    fn with_client(
        definition: ToolDefinition,
        spec: &HttpToolSpec,
        http: Result<reqwest::Client, String>,
    ) -> Result<HttpTool, BadMethod> {
        let method = Method::from_bytes(spec.method.trim().to_uppercase().as_bytes())
            .map_err(|_| BadMethod(spec.method.clone()))?;
        Ok(HttpTool {
            definition,
            method,
            spec: spec.clone(),
            http,
        })
    }

    /// Makes the request and describes the outcome for the model.
    pub(crate) async fn call(&self, arguments: &Map<String, Json>) -> String {
        let name = &self.definition.name;
        let url = match filled_url(&self.spec.url, arguments) {
            Ok(url) => url,
            Err(problem) => return format!("The tool `{name}` was not called: {problem}."),
        };
        let http = match &self.http {
            Ok(http) => http,
            Err(e) => return format!("The tool `{name}` could not be called: {e}."),
        };
        let seconds = self.spec.timeout_seconds.max(1);
        let mut request = http
            .request(self.method.clone(), url)
            .timeout(Duration::from_secs(seconds));
        for (header, template) in &self.spec.headers {
            let value = fill_text(template, arguments, false);
            match (
                HeaderName::from_bytes(header.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(header), Ok(value)) => request = request.header(header, value),
                _ => {
                    return format!(
                        "The tool `{name}` was not called: the header `{header}` is not valid \
                         with these arguments."
                    )
                }
            }
        }
        if let Some(body) = &self.spec.body {
            request = request.json(&fill_json(body, arguments));
        }
        match self.exchange(request).await {
            Ok((status, body)) if status.is_success() => {
                if body.is_empty() {
                    format!("(empty response, HTTP {})", status.as_u16())
                } else {
                    body
                }
            }
            Ok((status, body)) if status.is_redirection() => format!(
                "HTTP {} (a redirect; redirects are not followed): {body}",
                status.as_u16()
            ),
            Ok((status, body)) => format!("HTTP {}: {body}", status.as_u16()),
            Err(e) if e.is_timeout() => {
                format!("The tool `{name}` did not answer within {seconds}s.")
            }
            Err(e) => {
                let kind = if e.is_connect() {
                    "could not reach its server"
                } else {
                    "failed"
                };
                let cause = crate::text::root_cause(&e.without_url());
                tracing::debug!(tool = %name, error = %cause, "http tool failed");
                format!("The tool `{name}` {kind}: {cause}.")
            }
        }
    }

    /// Sends the request and reads at most `max_response_bytes` (plus one chunk) of the body.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
        let mut response = request.send().await?;
        let status = response.status();
        let max = self.spec.max_response_bytes;
        let mut body = Vec::new();
        let mut cut = false;
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                cut = true;
                break;
            }
        }
        Ok((status, cut_to(&body, max, cut)))
    }
}

/// The body as text, at most `max` bytes, cut on a character boundary with a note when cut.
pub(crate) fn cut_to(body: &[u8], max: usize, cut: bool) -> String {
    let text = String::from_utf8_lossy(body);
    if !cut && text.len() <= max {
        return text.into_owned();
    }
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[response cut at {max} bytes]", &text[..end])
}

/// The URL with arguments percent-encoded into it, refused if they changed its structure.
fn filled_url(template: &str, arguments: &Map<String, Json>) -> Result<Url, String> {
    let shape_of = |url: &Url| {
        (
            url.scheme().to_owned(),
            url.host_str().map(str::to_owned),
            url.port_or_known_default(),
            url.path_segments().map_or(0, Iterator::count),
        )
    };
    let reference = PLACEHOLDER.replace_all(template, "x");
    let reference = Url::parse(&reference).map_err(|e| format!("its URL is invalid ({e})"))?;
    let filled = Url::parse(&fill_text(template, arguments, true))
        .map_err(|e| format!("the arguments make its URL invalid ({e})"))?;
    if shape_of(&filled) != shape_of(&reference) {
        return Err(
            "the arguments would change which address is called (`.` or `..` \
                    as a path value?)"
                .into(),
        );
    }
    Ok(filled)
}

/// Replaces each `{{ arg }}` in `template`, percent-encoding the values when `encode` is set.
pub(crate) fn fill_text(template: &str, arguments: &Map<String, Json>, encode: bool) -> String {
    PLACEHOLDER
        .replace_all(template, |caps: &Captures| {
            let value = value_text(arguments.get(&caps[1]));
            if encode {
                percent_encode(&value)
            } else {
                value
            }
        })
        .into_owned()
}

/// The body template with placeholders filled in every string leaf.
pub(crate) fn fill_json(template: &Json, arguments: &Map<String, Json>) -> Json {
    match template {
        Json::String(text) => match WHOLE_PLACEHOLDER.captures(text) {
            Some(caps) => arguments.get(&caps[1]).cloned().unwrap_or(Json::Null),
            None => Json::String(fill_text(text, arguments, false)),
        },
        Json::Array(items) => Json::Array(items.iter().map(|v| fill_json(v, arguments)).collect()),
        Json::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), fill_json(v, arguments)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An argument as text: strings as they are, other values as JSON, absent as empty.
fn value_text(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Encodes every byte except RFC 3986 unreserved characters, so a value cannot add a `/`, `?`,
/// `#`, `&`, `=`, `@` or `:` to the URL.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Json) -> Map<String, Json> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn url_values_are_percent_encoded_and_cannot_change_the_path() {
        let a = args(json!({"city": "São Paulo/../x?y=1#z", "n": 3}));
        let url =
            filled_url("https://api.example/weather/{{ city }}?days={{n}}", &a).expect("valid url");
        assert_eq!(
            url.as_str(),
            "https://api.example/weather/S%C3%A3o%20Paulo%2F..%2Fx%3Fy%3D1%23z?days=3"
        );
    }

    #[test]
    fn dot_segments_and_host_changes_are_refused() {
        let template = "https://api.example/v1/{{id}}/detail";
        assert!(filled_url(template, &args(json!({"id": ".."}))).is_err());
        assert!(
            filled_url(template, &args(json!({"id": "%2e%2e"}))).is_ok(),
            "% is encoded"
        );
        assert!(filled_url("https://{{h}}/x", &args(json!({"h": "evil.example"}))).is_err());
    }

    #[test]
    fn a_whole_leaf_keeps_the_json_type_and_a_longer_string_gets_text() {
        let body = json!({"qty": "{{ qty }}", "note": "order {{qty}} of {{item}}", "tags": ["{{item}}"], "fixed": 7});
        let filled = fill_json(&body, &args(json!({"qty": 2, "item": "tea"})));
        assert_eq!(
            filled,
            json!({"qty": 2, "note": "order 2 of tea", "tags": ["tea"], "fixed": 7})
        );
    }

    #[test]
    fn a_missing_argument_fills_in_empty() {
        assert_eq!(fill_text("a={{x}};", &Map::new(), false), "a=;");
        assert_eq!(fill_json(&json!("{{x}}"), &Map::new()), Json::Null);
    }

    #[test]
    fn a_cut_body_ends_on_a_character_boundary_with_a_note() {
        let body = "ééééé".as_bytes(); // 10 bytes
        let text = cut_to(body, 5, true);
        assert_eq!(text, "éé\n[response cut at 5 bytes]");
        assert_eq!(cut_to(b"short", 100, false), "short");
    }
}
