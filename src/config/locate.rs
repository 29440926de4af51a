//! Finds the line of a field in a YAML file's text, so problems found after parsing (a wrong
//! type, a missing agent, a bad URL) can still point at a line.
//!
//! The YAML parser keeps no positions in its tree, so this follows the path through the text by
//! indentation. It understands block style, which is how config files are written; for flow
//! style (`{a: 1}`) it stops at the deepest key it found, which is still near the problem.

use super::path::{FieldPath, Seg};

/// A line's content after its indentation and any `- ` sequence markers.
#[derive(Debug)]
struct Entry<'a> {
    line: usize,
    indent: usize,
    /// A `- ` marker (the content after it, if any, is the next entry on the same line).
    dash: bool,
    text: &'a str,
}

/// The 1-based line of `path` in `text`, or of its deepest ancestor found.
pub(crate) fn line_of(text: &str, path: &FieldPath) -> Option<usize> {
    let entries = entries(text);
    find(&entries, 0, None, &path.0, None)
}

fn entries(text: &str) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        let mut rest = trimmed;
        while rest == "-" || rest.starts_with("- ") {
            out.push(Entry {
                line: i + 1,
                indent,
                dash: true,
                text: rest,
            });
            let content = rest[1..].trim_start_matches(' ');
            indent += rest.len() - content.len();
            rest = content;
        }
        if !rest.is_empty() {
            out.push(Entry {
                line: i + 1,
                indent,
                dash: false,
                text: rest,
            });
        }
    }
    out
}

/// Searches `entries[start..]` for the children of a node at `parent` indent (None: the root).
fn find(
    entries: &[Entry],
    start: usize,
    parent: Option<usize>,
    segs: &[Seg],
    best: Option<usize>,
) -> Option<usize> {
    let Some((seg, rest)) = segs.split_first() else {
        return best;
    };
    let mut child_indent = None;
    let mut seen_items = 0usize;
    for (idx, entry) in entries.iter().enumerate().skip(start) {
        let ends_parent = match (parent, seg) {
            // A list may sit at its key's own indent (`key:` then `- item` below it).
            (Some(p), Seg::Index(_)) => entry.indent < p || (entry.indent == p && !entry.dash),
            (Some(p), Seg::Key(_)) => entry.indent <= p,
            (None, _) => false,
        };
        if ends_parent {
            return best;
        }
        let indent = *child_indent.get_or_insert(entry.indent);
        if entry.indent != indent {
            continue;
        }
        match seg {
            Seg::Key(key) if !entry.dash && key_of(entry.text) == Some(key.as_str()) => {
                return find(entries, idx + 1, Some(entry.indent), rest, Some(entry.line));
            }
            Seg::Index(n) if entry.dash => {
                if seen_items == *n {
                    return find(entries, idx + 1, Some(entry.indent), rest, Some(entry.line));
                }
                seen_items += 1;
            }
            _ => {}
        }
    }
    best
}

/// The key of a `key: value` line, unquoted.
fn key_of(text: &str) -> Option<&str> {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote) {
            let end = inner.find(quote)?;
            return inner[end + 1..]
                .trim_start()
                .starts_with(':')
                .then(|| &inner[..end]);
        }
    }
    let colon = text
        .find(": ")
        .or_else(|| text.ends_with(':').then(|| text.len() - 1))?;
    Some(text[..colon].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# comment
channels:
  whatsapp:
    rate_limit:
      window_seconds: 60
      max_messages: 0
spec:
  tools:
    - type: builtin
      name: current_time
    - type: http
      http:
        url: ftp://x
  guardrails:
    input:
    - type: pii_detection
    - type: max_length
      max_chars: 0
";

    fn line(path: FieldPath) -> Option<usize> {
        line_of(YAML, &path)
    }

    #[test]
    fn nested_keys_are_found_by_indentation() {
        let p = FieldPath::keys(&["channels", "whatsapp", "rate_limit", "max_messages"]);
        assert_eq!(line(p), Some(6));
    }

    #[test]
    fn list_items_are_counted_whether_indented_or_not() {
        let tool_url = FieldPath::keys(&["spec", "tools"])
            .index(1)
            .key("http")
            .key("url");
        assert_eq!(line(tool_url), Some(13));
        let first_tool_type = FieldPath::keys(&["spec", "tools"]).index(0).key("type");
        assert_eq!(line(first_tool_type), Some(9));
        let max = FieldPath::keys(&["spec", "guardrails", "input"])
            .index(1)
            .key("max_chars");
        assert_eq!(line(max), Some(18));
    }

    #[test]
    fn a_missing_field_points_at_its_nearest_ancestor() {
        let p = FieldPath::keys(&["channels", "whatsapp", "default_agent"]);
        assert_eq!(line(p), Some(3));
        assert_eq!(line(FieldPath::keys(&["nothing"])), None);
    }
}
