//! `${VAR}` and `${VAR:-default}` in every string value of a parsed YAML tree.
//!
//! Shell semantics: an unset `${VAR}` becomes the empty string; `${VAR:-default}` uses the
//! default when VAR is unset or empty, and the default may itself hold placeholders.
//! `$$`, a lone `$` and `$VAR` (no braces) are left exactly as written. Mapping keys are never
//! expanded. Expansion runs on the tree rather than the text, so a value containing quotes or
//! newlines cannot break the YAML around it.

use super::path::FieldPath;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Looks a variable up in the environment: `None` when it is unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, the lookup `Config::load` uses.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A placeholder that cannot be expanded. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error(
        "unterminated `${{` at character {at}: close it with `}}`, or write `$$` for a literal `$`"
    )]
    Unterminated { at: usize },
    #[error(
        "invalid variable name `{name}` in the `${{...}}` at character {at}: a name is letters, \
         digits and `_` (not starting with a digit); for a default write `${{VAR:-default}}`"
    )]
    BadName { name: String, at: usize },
}

/// One expanded string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded {
    /// The string with every placeholder replaced.
    pub text: String,
    /// Variables that were unset or empty and had no default: they contributed nothing.
    pub empty_vars: Vec<String>,
    /// Whether the string held at least one `${...}`.
    pub had_placeholder: bool,
}

/// Expands the placeholders of one string.
pub fn expand_str(input: &str, env: Env) -> Result<Expanded, ExpandError> {
    let mut result = Expanded::default();
    expand_into(input, env, 0, &mut result)?;
    Ok(result)
}

/// `base` is the character offset of `input` inside the outermost string, for error positions.
fn expand_into(input: &str, env: Env, base: usize, out: &mut Expanded) -> Result<(), ExpandError> {
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.text.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after_pair) = after.strip_prefix('$') {
            out.text.push_str("$$");
            rest = after_pair;
            continue;
        }
        if !after.starts_with('{') {
            out.text.push('$');
            rest = after;
            continue;
        }
        let at = base + input[..input.len() - rest.len() + dollar].chars().count() + 1;
        let body_start = dollar + 2;
        let close = matching_brace(&rest[body_start..])
            .map(|c| body_start + c)
            .ok_or(ExpandError::Unterminated { at })?;
        let body = &rest[body_start..close];
        out.had_placeholder = true;
        let (name, default) = match body.find(":-") {
            Some(p) => (&body[..p], Some(&body[p + 2..])),
            None => (body, None),
        };
        if !is_var_name(name) {
            return Err(ExpandError::BadName {
                name: name.to_string(),
                at,
            });
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.text.push_str(&value),
            (None, Some(default)) => {
                let default_base = at + 2 + name.chars().count() + 2;
                expand_into(default, env, default_base - 1, out)?;
            }
            (None, None) => out.empty_vars.push(name.to_string()),
        }
        rest = &rest[close + 1..];
    }
    out.text.push_str(rest);
    Ok(())
}

/// Byte index of the `}` closing a placeholder whose body starts `s`, counting nested `${`.
fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What expanding one file's tree found, keyed by field path.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    /// Fields whose string held a placeholder (their value came from the environment).
    pub(crate) expanded: BTreeSet<FieldPath>,
    /// Fields where unset or empty variables contributed nothing, and which ones.
    pub(crate) empty_vars: BTreeMap<FieldPath, Vec<String>>,
}

/// Expands every string value of `root`, at any depth; keys are left alone.
/// Returns what was expanded, and every placeholder that could not be.
pub(crate) fn expand_tree(
    root: &mut Value,
    env: Env,
) -> (Expansion, Vec<(FieldPath, ExpandError)>) {
    let mut expansion = Expansion::default();
    let mut errors = Vec::new();
    walk(
        root,
        &FieldPath::default(),
        env,
        &mut expansion,
        &mut errors,
    );
    (expansion, errors)
}

fn walk(
    node: &mut Value,
    path: &FieldPath,
    env: Env,
    expansion: &mut Expansion,
    errors: &mut Vec<(FieldPath, ExpandError)>,
) {
    match node {
        Value::String(s) => match expand_str(s, env) {
            Ok(expanded) => {
                if expanded.had_placeholder {
                    expansion.expanded.insert(path.clone());
                }
                if !expanded.empty_vars.is_empty() {
                    expansion
                        .empty_vars
                        .insert(path.clone(), expanded.empty_vars);
                }
                *s = expanded.text;
            }
            Err(e) => errors.push((path.clone(), e)),
        },
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                walk(item, &path.index(i), env, expansion, errors);
            }
        }
        Value::Mapping(map) => {
            for (key, value) in map.iter_mut() {
                let child = path.key(&key_text(key));
                walk(value, &child, env, expansion, errors);
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, env, expansion, errors),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A mapping key as a path segment: scalars as written, anything else as `?`.
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("ollama.lan".into()),
            "PORT" => Some("11434".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn expand(s: &str) -> Result<String, ExpandError> {
        expand_str(s, &env).map(|e| e.text)
    }

    fn tree(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("test yaml parses")
    }

    #[test]
    fn a_plain_variable_is_replaced_by_its_value() {
        assert_eq!(
            expand("http://${HOST}:${PORT}/v1").unwrap(),
            "http://ollama.lan:11434/v1"
        );
    }

    #[test]
    fn an_unset_variable_becomes_the_empty_string_and_is_reported() {
        let e = expand_str("key=${MISSING}", &env).unwrap();
        assert_eq!(e.text, "key=");
        assert_eq!(e.empty_vars, vec!["MISSING".to_string()]);
        assert!(e.had_placeholder);
    }

    #[test]
    fn a_default_is_used_when_the_variable_is_unset() {
        assert_eq!(
            expand("${MISSING:-http://localhost:11434}").unwrap(),
            "http://localhost:11434"
        );
        assert_eq!(expand("${HOST:-localhost}").unwrap(), "ollama.lan");
    }

    #[test]
    fn a_default_is_used_when_the_variable_is_set_but_empty() {
        let e = expand_str("${EMPTY:-fallback}", &env).unwrap();
        assert_eq!(e.text, "fallback");
        assert!(e.empty_vars.is_empty());
        assert_eq!(expand("[${EMPTY}]").unwrap(), "[]");
    }

    #[test]
    fn a_default_may_itself_hold_a_placeholder() {
        assert_eq!(expand("${MISSING:-${HOST}}").unwrap(), "ollama.lan");
        assert_eq!(expand("${MISSING:-}").unwrap(), "");
    }

    #[test]
    fn dollar_signs_without_braces_are_left_as_written() {
        assert_eq!(
            expand("costs $5, $$ and $HOST").unwrap(),
            "costs $5, $$ and $HOST"
        );
        assert_eq!(expand("$${HOST} $").unwrap(), "$${HOST} $");
        assert!(!expand_str("$5 $$", &env).unwrap().had_placeholder);
    }

    #[test]
    fn an_unterminated_placeholder_is_an_error_with_its_position() {
        assert_eq!(expand("ab${HOST"), Err(ExpandError::Unterminated { at: 3 }));
        assert_eq!(
            expand("${MISSING:-${HOST}"),
            Err(ExpandError::Unterminated { at: 1 })
        );
    }

    #[test]
    fn an_invalid_variable_name_is_an_error() {
        let err = expand("${HOST-default}").unwrap_err();
        assert!(matches!(err, ExpandError::BadName { ref name, at: 1 } if name == "HOST-default"));
        assert!(err.to_string().contains("${VAR:-default}"));
        assert!(expand("${}").is_err());
    }

    #[test]
    fn strings_are_expanded_at_any_depth_in_maps_and_lists() {
        let mut v = tree(
            "a: ${HOST}\nlist:\n  - ${PORT}\n  - nested:\n      deep: [x, '${MISSING:-d}']\nn: 3\n",
        );
        let (expansion, errors) = expand_tree(&mut v, &env);
        assert!(errors.is_empty());
        assert_eq!(
            v,
            tree("a: ollama.lan\nlist:\n  - '11434'\n  - nested:\n      deep: [x, d]\nn: 3\n")
        );
        let deep = FieldPath::keys(&["list"])
            .index(1)
            .key("nested")
            .key("deep")
            .index(1);
        assert!(expansion.expanded.contains(&deep));
        assert!(!expansion.expanded.contains(&FieldPath::keys(&["n"])));
    }

    #[test]
    fn mapping_keys_are_never_expanded() {
        let mut v = tree("${HOST}: ${HOST}\n");
        expand_tree(&mut v, &env);
        assert_eq!(v, tree("${HOST}: ollama.lan\n"));
    }

    #[test]
    fn every_bad_placeholder_in_a_tree_is_reported_with_its_field() {
        let mut v = tree("a:\n  b: ${OPEN\nc:\n  - ok\n  - ${ALSO_OPEN\n");
        let (_, errors) = expand_tree(&mut v, &env);
        let fields: Vec<String> = errors.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(fields, vec!["a.b", "c[1]"]);
    }

    #[test]
    fn unset_variables_are_remembered_by_field() {
        let mut v = tree("spec:\n  model: ${LLM_MODEL}\n");
        let (expansion, _) = expand_tree(&mut v, &env);
        let field = FieldPath::keys(&["spec", "model"]);
        assert_eq!(
            expansion.empty_vars.get(&field),
            Some(&vec!["LLM_MODEL".to_string()])
        );
    }
}
