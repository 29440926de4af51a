//! Tool calls written as text. Small models often put a tool call in their answer's text instead
//! of the native `tool_calls` field: a bare JSON object with `name` and `arguments` (or
//! `parameters`), Hermes-style `<tool_call>{...}</tool_call>`, a fenced ```json block, Llama's
//! `<|python_tag|>` or Mistral's `[TOOL_CALLS]` prefix. Such a text must never reach a customer:
//! the ReAct loop runs it as a tool call when it names a tool the agent offers, and otherwise
//! fails the turn (the customer gets `error_reply`).

use crate::llm::{ToolArguments, ToolCall};
use serde_json::{Map, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The tool calls `text` is shaped as, or `None` when it reads as an ordinary answer.
pub fn parse(text: &str) -> Option<Vec<ToolCall>> {
    let mut calls = Vec::new();
    for candidate in candidates(text) {
        if let Ok(json) = serde_json::from_str::<Json>(candidate.trim()) {
            collect(&json, &mut calls);
        }
    }
    (!calls.is_empty()).then_some(calls)
}

/// The pieces of `text` that may hold a tool call's JSON.
fn candidates(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    // Hermes / Qwen: <tool_call>{...}</tool_call>, the closing tag sometimes missing.
    let mut rest = text;
    while let Some(start) = rest.find("<tool_call>") {
        let after = &rest[start + "<tool_call>".len()..];
        let end = after.find("</tool_call>").unwrap_or(after.len());
        out.push(&after[..end]);
        rest = &after[end..];
    }
    // Fenced blocks: ```json ... ``` (any language tag, or none).
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let Some(end) = after[body_start..].find("```") else {
            break;
        };
        out.push(&after[body_start..body_start + end]);
        rest = &after[body_start + end + 3..];
    }
    // The whole answer, after the prefixes some templates leave in.
    let mut whole = text.trim();
    for prefix in ["<|python_tag|>", "[TOOL_CALLS]", "functools"] {
        if let Some(stripped) = whole.strip_prefix(prefix) {
            whole = stripped.trim();
        }
    }
    if whole.starts_with('{') || whole.starts_with('[') {
        out.push(whole);
    }
    out
}

/// Adds every tool-call-shaped object in `json` (an object or an array of them) to `calls`.
fn collect(json: &Json, calls: &mut Vec<ToolCall>) {
    match json {
        Json::Array(items) => items.iter().for_each(|item| collect(item, calls)),
        Json::Object(object) => {
            if let Some(call) = call_of(object) {
                calls.push(call);
            }
        }
        _ => {}
    }
}

/// `{name, arguments|parameters}`, or the same under `function` (OpenAI's own shape).
fn call_of(object: &Map<String, Json>) -> Option<ToolCall> {
    if let Some(Json::Object(function)) = object.get("function") {
        return call_of(function);
    }
    let name = object.get("name")?.as_str()?.trim();
    let arguments = object
        .get("arguments")
        .or_else(|| object.get("parameters"))?;
    if name.is_empty() {
        return None;
    }
    let arguments = match arguments {
        Json::String(raw) => match serde_json::from_str(raw) {
            Ok(parsed) => ToolArguments::Valid(parsed),
            Err(e) => ToolArguments::Invalid {
                raw: raw.clone(),
                error: e.to_string(),
            },
        },
        other => ToolArguments::Valid(other.clone()),
    };
    Some(ToolCall {
        id: next_id(),
        name: name.to_owned(),
        arguments,
    })
}

fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("call_text_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_bare_json_call_is_read_with_its_arguments() {
        let calls =
            parse(r#"{"name": "current_time", "arguments": {"utc_offset": "-03:00"}}"#).unwrap();
        assert_eq!(calls[0].name, "current_time");
        assert_eq!(
            calls[0].arguments,
            ToolArguments::Valid(json!({"utc_offset": "-03:00"}))
        );
        assert_eq!(
            names(r#"{"name": "weather", "parameters": {"city": "Lima"}}"#),
            ["weather"]
        );
        assert_eq!(
            names(r#"<|python_tag|>{"name": "weather", "parameters": {}}"#),
            ["weather"]
        );
        assert_eq!(
            names(
                r#"[TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "b", "arguments": "{}"}]"#
            ),
            ["a", "b"]
        );
    }

    #[test]
    fn hermes_tags_and_fenced_blocks_are_read_even_inside_prose() {
        assert_eq!(
            names("Let me check.\n<tool_call>\n{\"name\": \"current_time\", \"arguments\": {}}\n</tool_call>"),
            ["current_time"]
        );
        assert_eq!(
            names("Sure:\n```json\n{\"type\": \"function\", \"function\": {\"name\": \"weather\", \"arguments\": \"{\\\"city\\\": \\\"Lima\\\"}\"}}\n```"),
            ["weather"]
        );
    }

    #[test]
    fn ordinary_answers_are_not_tool_calls() {
        for text in [
            "It is 10:30 in São Paulo.",
            "Your order {ORD-1} ships tomorrow.",
            r#"{"status": "shipped"}"#,
            "```\nprint('hi')\n```",
            "",
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }
}
