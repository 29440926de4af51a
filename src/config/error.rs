//! What can be wrong with a config directory, said so that the operator can fix it.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as reached from the config directory given by the operator.
    pub file: PathBuf,
    /// The field, e.g. `channels.whatsapp.rate_limit.max_messages`; `None` for the whole file.
    pub field: Option<String>,
    /// 1-based line, when known (always for YAML syntax errors).
    pub line: Option<usize>,
    /// 1-based column, for YAML syntax errors.
    pub column: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `config/channels.yaml:17: channels.whatsapp.rate_limit.max_messages: must be at least 1`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a config directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The directory itself is missing or not a directory.
    #[error(
        "config directory {} not found: pass --config DIR or set WAGATE_CONFIG to the directory \
         that holds channels.yaml and agents/",
        .0.display()
    )]
    DirNotFound(PathBuf),
    /// The directory exists but has no `channels.yaml`.
    #[error(
        "{} not found: the config directory must hold channels.yaml and agents/*.agent.yaml; \
         pass --config DIR or set WAGATE_CONFIG",
        .0.display()
    )]
    ChannelsMissing(PathBuf),
    /// Every problem found, across every file, one per line.
    #[error("{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_names_file_line_field_and_message_on_one_line() {
        let p = Problem {
            file: PathBuf::from("config/channels.yaml"),
            field: Some("channels.whatsapp.debounce_ms".into()),
            line: Some(12),
            column: None,
            message: "expected a whole number".into(),
        };
        assert_eq!(
            p.to_string(),
            "config/channels.yaml:12: channels.whatsapp.debounce_ms: expected a whole number"
        );
    }

    #[test]
    fn an_invalid_config_prints_one_problem_per_line() {
        let p = |n: usize| Problem {
            file: PathBuf::from(format!("f{n}.yaml")),
            field: None,
            line: Some(n),
            column: Some(2),
            message: format!("problem {n}"),
        };
        let text = ConfigError::Invalid(vec![p(1), p(2)]).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].trim(), "f1.yaml:1:2: problem 1");
        assert_eq!(lines[2].trim(), "f2.yaml:2:2: problem 2");
    }
}
