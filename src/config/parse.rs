//! One YAML file from text to typed struct: syntax, `<<` merges, `${VAR}` expansion, then serde
//! with the field path of any error, reworded for an operator.

use super::error::Problem;
use super::expand::{expand_tree, Env, Expansion};
use super::locate::line_of;
use super::path::{FieldPath, Seg};
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A file read, parsed and expanded, kept with its text so later problems can find their line.
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) value: Value,
    pub(crate) expansion: Expansion,
}

impl SourceFile {
    /// A problem at `field` of this file, with the field's line when it can be found.
    pub(crate) fn problem(&self, field: &FieldPath, message: impl Into<String>) -> Problem {
        Problem {
            file: self.path.clone(),
            field: (!field.0.is_empty()).then(|| field.to_string()),
            line: line_of(&self.text, field),
            column: None,
            message: message.into(),
        }
    }

    /// The variables that were unset or empty where `field` was expanded.
    pub(crate) fn empty_vars(&self, field: &FieldPath) -> Option<&[String]> {
        self.expansion.empty_vars.get(field).map(Vec::as_slice)
    }
}

/// Reads, parses and expands one file. Problems go to `problems`; `None` means the file cannot
/// be deserialized meaningfully.
pub(crate) fn read_source(
    path: &Path,
    env: Env,
    problems: &mut Vec<Problem>,
) -> Option<SourceFile> {
    let whole_file = |message: String, line: Option<usize>, column: Option<usize>| Problem {
        file: path.to_path_buf(),
        field: None,
        line,
        column,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(whole_file(format!("cannot read the file: {e}"), None, None));
            return None;
        }
    };
    let mut value: Value = match serde_yaml::from_str(&text) {
        Ok(value) => value,
        Err(e) => {
            let location = e.location();
            let line = location.as_ref().map(|l| l.line());
            let column = location.as_ref().map(|l| l.column());
            let message = syntax_message(&e.to_string(), line, column);
            problems.push(whole_file(message, line, column));
            return None;
        }
    };
    if let Err(e) = value.apply_merge() {
        problems.push(whole_file(
            format!("invalid `<<` merge key: {e}"),
            None,
            None,
        ));
        return None;
    }
    let (expansion, errors) = expand_tree(&mut value, env);
    let source = SourceFile {
        path: path.to_path_buf(),
        text,
        value,
        expansion,
    };
    if !errors.is_empty() {
        for (field, error) in errors {
            problems.push(source.problem(&field, error.to_string()));
        }
        return None;
    }
    Some(source)
}

fn syntax_message(raw: &str, line: Option<usize>, column: Option<usize>) -> String {
    let mut message = raw.to_string();
    if let (Some(l), Some(c)) = (line, column) {
        message = message.replace(&format!(" at line {l} column {c}"), "");
    }
    format!("YAML syntax error: {message}")
}

/// Deserializes the whole file as `T`. A string that came from `${VAR}` where a number or a
/// boolean is expected (`max_messages: ${MAX:-30}`) is read as one, and a number or boolean
/// where a string is expected (`phone_number_id: 1234567890`) as a string, as an operator
/// would expect; anything else is reported with its field path.
pub(crate) fn deserialize<T: DeserializeOwned>(source: &mut SourceFile) -> Result<T, Problem> {
    deserialize_noting_skipped(source).0
}

/// [`deserialize`], and the keys serde skipped because no struct reads them (in the last
/// attempt: also when it failed, so a typo of a required key is reported beside the missing
/// key).
pub(crate) fn deserialize_noting_skipped<T: DeserializeOwned>(
    source: &mut SourceFile,
) -> (Result<T, Problem>, Vec<FieldPath>) {
    if source.value.is_null() {
        let problem = source.problem(&FieldPath::default(), "the file is empty");
        return (Err(problem), Vec::new());
    }
    let mut coerced = BTreeSet::new();
    loop {
        let mut skipped = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(&source.value, &mut track);
        let result: Result<T, _> =
            serde_ignored::deserialize(tracked, |path| skipped.push(skipped_path(&path)));
        let error = match result {
            Ok(parsed) => return (Ok(parsed), skipped),
            Err(error) => serde_path_to_error::Error::new(track.path(), error),
        };
        let field = FieldPath::from_serde(error.path());
        let message = error.inner().to_string();
        if !coerced.contains(&field) && coerce(source, &field, &message) {
            coerced.insert(field);
            continue;
        }
        let (field, message) = reword(field, &message);
        return (Err(source.problem(&field, message)), skipped);
    }
}

/// `serde_ignored`'s path as a field path (`Some` and newtype steps add nothing).
fn skipped_path(path: &serde_ignored::Path) -> FieldPath {
    use serde_ignored::Path;
    match path {
        Path::Root => FieldPath::default(),
        Path::Seq { parent, index } => skipped_path(parent).index(*index),
        Path::Map { parent, key } => skipped_path(parent).key(key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => skipped_path(parent),
    }
}

/// Retypes the scalar at `field` when that is the evident fix; `true` if it changed anything.
fn coerce(source: &mut SourceFile, field: &FieldPath, message: &str) -> bool {
    let from_env = source.expansion.expanded.contains(field);
    let Some(node) = field.get_mut(&mut source.value) else {
        return false;
    };
    match node {
        Value::String(s) if from_env && message.starts_with("invalid type: string") => {
            match serde_yaml::from_str::<Value>(s) {
                Ok(typed @ (Value::Number(_) | Value::Bool(_))) => {
                    *node = typed;
                    true
                }
                _ => false,
            }
        }
        Value::Number(_) | Value::Bool(_) if message.contains("expected a string") => {
            let text = match node {
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return false,
            };
            *node = Value::String(text);
            true
        }
        _ => false,
    }
}

/// serde's message for `field`, said the way an operator thinks about the file.
fn reword(field: FieldPath, message: &str) -> (FieldPath, String) {
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((name, hint)) = rest.split_once('`') {
            let hint = hint.trim_start_matches(':').trim();
            let text = if hint.is_empty() {
                "required key is missing".to_string()
            } else {
                format!("required key is missing: {hint}")
            };
            return (field.key(name), text);
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((value, expected)) = rest.split_once('`') {
            let label = variant_label(&field);
            let choices = backticked(expected).join(", ");
            return (
                field,
                format!("unknown {label} `{value}`; expected one of {choices}"),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, expected)) = rest.split_once('`') {
            let choices = backticked(expected).join(", ");
            return (
                field,
                format!("unknown key `{key}`; expected one of {choices}"),
            );
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                // Never echo a string value: it may have come from a secret variable.
                let found = if found.starts_with("string ") {
                    "a string"
                } else {
                    found
                };
                let found = if found == "unit value" {
                    "nothing (an empty value)"
                } else {
                    found
                };
                return (
                    field,
                    format!("expected {}, found {found}", expected_kind(expected)),
                );
            }
        }
    }
    (field, message.to_string())
}

fn variant_label(field: &FieldPath) -> &'static str {
    let under_list = |key: &str| {
        matches!(field.0.iter().rev().nth(1), Some(Seg::Key(k)) if k == key)
            || matches!(field.0.iter().rev().nth(2), Some(Seg::Key(k)) if k == key)
    };
    match field.last_key() {
        Some("type") if field.has_key("guardrails") => "guardrail type",
        Some("type") if field.has_key("tools") => "tool type",
        Some("provider") if field.has_key("transcription") => "transcription provider",
        Some("provider") => "model provider",
        Some("strategy") if field.has_key("routing") => "routing strategy",
        Some("action") => "pii_detection action",
        _ if under_list("capabilities") => "capability",
        _ => "value",
    }
}

/// The words between backticks: "`a`, `b` or `c`" → [a, b, c].
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn expected_kind(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" => "a string".into(),
        "a sequence" => "a list".into(),
        e if e.starts_with("struct ") || e == "a map" => "a mapping of keys to values".into(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_reworded_with_the_choices_spelled_out() {
        let field = FieldPath::keys(&["spec", "guardrails", "input"])
            .index(0)
            .key("type");
        let (_, text) = reword(
            field,
            "unknown variant `pii`, expected `pii_detection` or `max_length`",
        );
        assert_eq!(
            text,
            "unknown guardrail type `pii`; expected one of pii_detection, max_length"
        );
    }

    #[test]
    fn a_missing_key_is_reported_at_the_key_itself() {
        let (field, text) = reword(
            FieldPath::keys(&["channels", "whatsapp"]),
            "missing field `default_agent`",
        );
        assert_eq!(field.to_string(), "channels.whatsapp.default_agent");
        assert_eq!(text, "required key is missing");
    }

    #[test]
    fn a_type_error_never_echoes_the_string_it_found() {
        let (_, text) = reword(
            FieldPath::keys(&["a"]),
            "invalid type: string \"EAAG-secret\", expected u32",
        );
        assert_eq!(text, "expected a whole number (0 or more), found a string");
    }
}
