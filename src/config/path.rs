//! Field paths such as `spec.tools[0].http.url`: how problems name the place in a file.
//!
//! The text form matches `serde_path_to_error`'s, so a path built while walking the YAML tree
//! (expansion, validation) and one reported by serde for the same field compare equal.

use serde_yaml::Value;
use std::fmt;

/// One step into a YAML tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the root of one file to a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FieldPath(pub(crate) Vec<Seg>);

impl FieldPath {
    /// The path made of these keys, e.g. `FieldPath::keys(&["spec", "model"])`.
    pub(crate) fn keys(keys: &[&str]) -> Self {
        FieldPath(keys.iter().map(|k| Seg::Key((*k).to_string())).collect())
    }

    /// This path extended by a key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Key(key.to_string()));
        next
    }

    /// This path extended by a list index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Index(index));
        next
    }

    /// The last key of the path, if it ends in a key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether any key of the path equals `key`.
    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.0.iter().any(|s| matches!(s, Seg::Key(k) if k == key))
    }

    /// The value this path points at in `root`, if it exists.
    pub(crate) fn get_mut<'a>(&self, root: &'a mut Value) -> Option<&'a mut Value> {
        let mut node = root;
        for seg in &self.0 {
            node = match (seg, node) {
                (Seg::Key(k), Value::Mapping(map)) => map.get_mut(k.as_str())?,
                (Seg::Index(i), Value::Sequence(seq)) => seq.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Converts serde's path; segments it could not name (`?`) end the path there.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        let mut segs = Vec::new();
        for seg in path {
            match seg {
                Segment::Seq { index } => segs.push(Seg::Index(*index)),
                Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                Segment::Enum { variant } => segs.push(Seg::Key(variant.clone())),
                Segment::Unknown => break,
            }
        }
        FieldPath(segs)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
            }
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_prints_like_a_dotted_field_name_with_list_indices() {
        let path = FieldPath::keys(&["spec", "tools"]).index(0).key("http");
        assert_eq!(path.to_string(), "spec.tools[0].http");
    }
}
