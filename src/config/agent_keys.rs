//! The keys of an agent file, to tell a typo (`memmory:`, `timout_seconds:`) from a key of the
//! Astromesh schema that wagate deliberately does not act on (`permissions:`).
//!
//! serde decides what is read: every key it skipped is reported by `serde_ignored`, so a key
//! that a struct reads can never be called unknown, whatever this table says. The table only
//! decides what a skipped key means: accepted (an Astromesh key wagate ignores, or a key wagate
//! reads under a feature built elsewhere), an old name (an error that names the new one), or a
//! typo (an error with the nearest known key). A typo must not pass: serde would skip it and
//! the setting would silently keep its default, turning a feature off.

use super::error::Problem;
use super::parse::SourceFile;
use super::path::{FieldPath, Seg};
use super::validate::closest;

/// One mapping of an agent file.
struct Section {
    /// The mapping's path, list indices written `[]`: `spec.tools[].http`.
    path: &'static str,
    /// The keys wagate reads here.
    reads: &'static [&'static str],
    /// Keys of the Astromesh schema that wagate accepts and does not act on, so files written
    /// for the reference platform load unchanged. Listed in the README's agent reference.
    ignores: &'static [&'static str],
}

const MODEL_KEYS: &[&str] = &[
    "provider",
    "model",
    "endpoint",
    "api_key",
    "parameters",
    "capabilities",
    "timeout_seconds",
    "context_window",
];

const GUARDRAIL_KEYS: &[&str] = &["type", "action", "max_chars"];

const SECTIONS: &[Section] = &[
    Section {
        path: "",
        reads: &["apiVersion", "kind", "metadata", "spec"],
        ignores: &[],
    },
    Section {
        path: "metadata",
        reads: &["name", "version", "namespace", "labels"],
        ignores: &["annotations"],
    },
    Section {
        path: "spec",
        reads: &[
            "identity",
            "model",
            "prompts",
            "orchestration",
            "memory",
            "guardrails",
            "tools",
            "transcription",
            "whatsapp",
        ],
        ignores: &[
            "permissions",
            "observability",
            "knowledge",
            "output_schema",
            "chain",
        ],
    },
    Section {
        path: "spec.identity",
        reads: &["display_name", "description"],
        ignores: &["avatar"],
    },
    Section {
        path: "spec.model",
        reads: &["primary", "fallback", "routing"],
        ignores: &[],
    },
    Section {
        path: "spec.model.primary",
        reads: MODEL_KEYS,
        ignores: &[],
    },
    Section {
        path: "spec.model.fallback",
        reads: MODEL_KEYS,
        ignores: &[],
    },
    Section {
        path: "spec.model.routing",
        reads: &["strategy"],
        ignores: &["health_check_interval"],
    },
    Section {
        path: "spec.prompts",
        reads: &["system"],
        ignores: &[],
    },
    Section {
        path: "spec.orchestration",
        reads: &["pattern", "max_iterations", "timeout_seconds"],
        ignores: &[],
    },
    Section {
        path: "spec.memory",
        reads: &["conversational"],
        ignores: &["semantic", "episodic"],
    },
    Section {
        path: "spec.memory.conversational",
        reads: &["backend", "strategy", "max_turns", "ttl"],
        ignores: &[],
    },
    Section {
        path: "spec.guardrails",
        reads: &["input", "output"],
        ignores: &[],
    },
    Section {
        path: "spec.guardrails.input[]",
        reads: GUARDRAIL_KEYS,
        ignores: &[],
    },
    Section {
        path: "spec.guardrails.output[]",
        reads: GUARDRAIL_KEYS,
        ignores: &[],
    },
    Section {
        // `type: builtin` and `type: http`, and `type: mcp` (name, command, args, env, url,
        // headers, include, timeout_seconds).
        path: "spec.tools[]",
        reads: &[
            "type",
            "name",
            "description",
            "parameters",
            "http",
            "command",
            "args",
            "env",
            "url",
            "headers",
            "include",
            "timeout_seconds",
        ],
        ignores: &[],
    },
    Section {
        path: "spec.tools[].http",
        reads: &[
            "method",
            "url",
            "headers",
            "body",
            "timeout_seconds",
            "max_response_bytes",
        ],
        ignores: &[],
    },
    Section {
        path: "spec.transcription",
        reads: &[
            "provider",
            "endpoint",
            "model",
            "api_key",
            "language",
            "prompt",
            "max_seconds",
            "timeout_seconds",
        ],
        ignores: &[],
    },
    Section {
        path: "spec.whatsapp",
        reads: &["reactions_to_agent"],
        ignores: &[],
    },
];

/// Astromesh names for settings wagate reads under another name. Accepting them silently
/// would leave wagate's own setting at its default, so each is an error that says what to
/// write instead. (section path, key, fix)
const RENAMED: &[(&str, &str, &str)] = &[
    (
        "spec.orchestration",
        "timeout",
        "wagate reads `timeout_seconds`; rename the key",
    ),
    (
        "spec.memory.conversational",
        "max_messages",
        "wagate reads `max_turns` (messages, user and assistant each count one); rename the key",
    ),
    (
        "spec.model.primary",
        "api_key_env",
        "wagate reads `api_key`; write `api_key: \"${VARIABLE_NAME}\"`",
    ),
    (
        "spec.model.fallback",
        "api_key_env",
        "wagate reads `api_key`; write `api_key: \"${VARIABLE_NAME}\"`",
    ),
];

/// Model keys Astromesh also accepts at the top of a model; wagate reads them in `parameters`.
const MODEL_PARAMETER_SHORTHANDS: &[&str] = &["temperature", "max_tokens"];

/// The problem for a key serde skipped at `field`, or `None` when the key is accepted.
pub(crate) fn skipped_key_problem(src: &SourceFile, field: &FieldPath) -> Option<Problem> {
    let key = field.last_key()?;
    let parent = section_path(field);
    let section = SECTIONS.iter().find(|s| s.path == parent);
    if let Some(section) = section {
        if section.reads.contains(&key) || section.ignores.contains(&key) {
            return None;
        }
    }
    if let Some((_, _, fix)) = RENAMED
        .iter()
        .find(|(path, old, _)| *path == parent && *old == key)
    {
        return Some(src.problem(field, format!("unknown key `{key}`: {fix}")));
    }
    if matches!(
        parent.as_str(),
        "spec.model.primary" | "spec.model.fallback"
    ) && MODEL_PARAMETER_SHORTHANDS.contains(&key)
    {
        return Some(src.problem(
            field,
            format!("unknown key `{key}`: wagate reads it under `parameters:`; move it there"),
        ));
    }
    let known: Vec<&str> = section
        .map(|s| s.reads.iter().chain(s.ignores).copied().collect())
        .unwrap_or_default();
    let message = match closest(key, &known) {
        Some(near) => format!("unknown key `{key}`; did you mean `{near}`?"),
        None if known.is_empty() => format!("unknown key `{key}`; remove it"),
        None => format!("unknown key `{key}`; expected one of {}", known.join(", ")),
    };
    Some(src.problem(field, message))
}

/// The path of the mapping that holds `field`'s last key, list indices written `[]`.
fn section_path(field: &FieldPath) -> String {
    let parent = &field.0[..field.0.len().saturating_sub(1)];
    let mut out = String::new();
    for seg in parent {
        match seg {
            Seg::Index(_) => out.push_str("[]"),
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_placed_in_its_section_with_list_indices_generalized() {
        let field = FieldPath::keys(&["spec", "tools"])
            .index(3)
            .key("http")
            .key("timout_seconds");
        assert_eq!(section_path(&field), "spec.tools[].http");
        assert_eq!(section_path(&FieldPath::keys(&["spec"])), "");
    }

    #[test]
    fn every_section_with_a_renamed_key_exists_and_does_not_also_read_it() {
        for (path, old, _) in RENAMED {
            let section = SECTIONS.iter().find(|s| s.path == *path);
            let section = section.unwrap_or_else(|| panic!("no section {path}"));
            assert!(!section.reads.contains(old) && !section.ignores.contains(old));
        }
    }
}
