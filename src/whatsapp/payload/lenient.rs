//! Reading fields from JSON the way senders actually write them.
//!
//! Meta, its SDKs and the test fixtures of other projects disagree on types: `timestamp`,
//! `file_size`, `quantity` and prices arrive as numbers or as strings, ids sometimes as numbers.
//! Every helper here returns `None` (or a default) for a value it cannot read instead of failing,
//! so one odd field never costs the rest of the message.

use serde_json::Value;

/// An empty slice for a missing key or a value that is not an array.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A string field; numbers are rendered as text. Empty strings count as absent, because Meta
/// sends `""` for identities it no longer shares (`from`, `wa_id`).
pub(crate) fn string(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Like [`string`] but blank (whitespace-only) counts as absent too: for words shown to a
/// person or a model (names, captions, notes), where only spaces say nothing.
pub(crate) fn words(v: &Value, key: &str) -> Option<String> {
    string(v, key).filter(|s| !s.trim().is_empty())
}

/// A number or a numeric-looking string as the sender wrote it, for showing it unchanged
/// (`40.50` stays `40.50`, a price sent as a number can still be given two decimals).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Number(serde_json::Number),
    /// A non-blank string, trimmed.
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(s) => f.write_str(s),
        }
    }
}

/// A number, or a non-blank string (trimmed), as sent; `None` for anything else.
pub(crate) fn scalar(v: &Value, key: &str) -> Option<Scalar> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(Scalar::Text(s.trim().to_owned())),
        Value::Number(n) => Some(Scalar::Number(n.clone())),
        _ => None,
    }
}

/// Like [`string`] but keeps an empty string as `""` and gives `""` when absent.
pub(crate) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A signed integer from a number (fractions truncated) or a numeric string.
pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(f64_to_i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(f64_to_i64))
        }
        _ => None,
    }
}

/// A non-negative integer from a number or a numeric string; negative values are unreadable.
pub(crate) fn uint(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(f64_to_u64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(f64_to_u64))
        }
        _ => None,
    }
}

/// A finite float from a number or a numeric string.
pub(crate) fn float(v: &Value, key: &str) -> Option<f64> {
    let x = match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    x.is_finite().then_some(x)
}

/// A boolean from `true`/`false`, `"true"`/`"false"` or `1`/`0`; `false` when unreadable.
pub(crate) fn flag(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true") || s.trim() == "1",
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

/// Like [`flag`] but `None` when the key is absent or unreadable, for fields where absence means
/// "not said" rather than "no" (`pricing.billable`).
pub(crate) fn optional_flag(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A nested object's field: `nested(v, "profile", "name")` reads `v.profile.name`.
pub(crate) fn nested_string(v: &Value, outer: &str, key: &str) -> Option<String> {
    v.get(outer).and_then(|inner| string(inner, key))
}

fn f64_to_i64(x: f64) -> Option<i64> {
    // The range check keeps `as` from saturating silently on absurd values.
    (x.is_finite() && x >= i64::MIN as f64 && x < i64::MAX as f64).then(|| x.trunc() as i64)
}

fn f64_to_u64(x: f64) -> Option<u64> {
    (x.is_finite() && x >= 0.0 && x < u64::MAX as f64).then(|| x.trunc() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_read_from_numbers_and_from_numeric_strings() {
        let v = json!({"n": 1697044557, "s": "1697044557", "padded": " 42 ", "frac": "12.9",
                       "f": 30.5, "neg": "-3"});
        assert_eq!(int(&v, "n"), Some(1_697_044_557));
        assert_eq!(int(&v, "s"), Some(1_697_044_557));
        assert_eq!(int(&v, "padded"), Some(42));
        assert_eq!(int(&v, "frac"), Some(12));
        assert_eq!(uint(&v, "s"), Some(1_697_044_557));
        assert_eq!(uint(&v, "neg"), None);
        assert_eq!(int(&v, "neg"), Some(-3));
        assert_eq!(float(&v, "f"), Some(30.5));
        assert_eq!(float(&v, "frac"), Some(12.9));
    }

    #[test]
    fn unreadable_numbers_are_absent_rather_than_errors() {
        let v = json!({"word": "number-of-item", "obj": {}, "null": null, "huge": 1e300,
                       "nan": "NaN", "empty": ""});
        for key in ["word", "obj", "null", "huge", "nan", "empty", "missing"] {
            assert_eq!(int(&v, key), None, "{key}");
            assert_eq!(uint(&v, key), None, "{key}");
        }
        assert_eq!(float(&v, "nan"), None);
        assert_eq!(float(&v, "word"), None);
    }

    #[test]
    fn empty_strings_count_as_absent_identities() {
        let v = json!({"from": "", "wa_id": "123", "num": 972_123});
        assert_eq!(string(&v, "from"), None);
        assert_eq!(string(&v, "wa_id").as_deref(), Some("123"));
        assert_eq!(string(&v, "num").as_deref(), Some("972123"));
        assert_eq!(text(&v, "from"), "");
    }

    #[test]
    fn flags_accept_booleans_strings_and_numbers() {
        let v = json!({"t": true, "s": "true", "one": 1, "zero": 0, "f": "false", "x": "yes"});
        assert!(flag(&v, "t") && flag(&v, "s") && flag(&v, "one"));
        assert!(!flag(&v, "zero") && !flag(&v, "f") && !flag(&v, "x") && !flag(&v, "missing"));
        assert_eq!(optional_flag(&v, "f"), Some(false));
        assert_eq!(optional_flag(&v, "missing"), None);
    }

    #[test]
    fn arrays_that_are_not_arrays_read_as_empty() {
        let v = json!({"a": [1, 2], "o": {"k": 1}});
        assert_eq!(array(&v, "a").len(), 2);
        assert!(array(&v, "o").is_empty());
        assert!(array(&v, "missing").is_empty());
        assert!(array(&json!("not an object"), "a").is_empty());
    }
}
