//! `--env-file`: `KEY=VALUE` lines that `${VAR}` reads before the process environment, read
//! again on every reload. A process's own environment cannot be changed from outside, so this
//! file is how a rotated access token reaches a running server (`kill -HUP`).

use super::{Config, ConfigError, Problem};
use std::collections::HashMap;
use std::path::Path;

/// The variables of an env file: `KEY=VALUE` per line; blank lines and `#` comments skipped;
/// an optional `export ` prefix; matching single or double quotes around the value removed.
pub fn read_env_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        problem(
            path,
            None,
            format!("cannot read the env file: {e}; check --env-file / WAGATE_ENV_FILE"),
        )
    })?;
    let mut vars = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(problem(path, Some(index + 1), "expected KEY=VALUE".into()));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(problem(
                path,
                Some(index + 1),
                format!("`{key}` is not a variable name"),
            ));
        }
        vars.insert(key.to_owned(), unquote(value.trim()).to_owned());
    }
    Ok(vars)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

fn problem(path: &Path, line: Option<usize>, message: String) -> ConfigError {
    ConfigError::Invalid(vec![Problem {
        file: path.to_path_buf(),
        field: None,
        line,
        column: None,
        message,
    }])
}

/// The `${VAR}` lookup: `env_file` first (read now), then the process environment.
pub fn env_lookup(env_file: Option<&Path>) -> Result<impl Fn(&str) -> Option<String>, ConfigError> {
    let file_vars = match env_file {
        Some(path) => read_env_file(path)?,
        None => HashMap::new(),
    };
    Ok(move |name: &str| {
        file_vars
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })
}

impl Config {
    /// Load `dir` with `${VAR}` taken from `env_file` first (when given), then the process
    /// environment.
    pub fn load_with_env_file(dir: &Path, env_file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(dir, &env_lookup(env_file)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_file_reads_keys_values_quotes_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wagate.env");
        std::fs::write(
            &path,
            "# tokens\nexport WHATSAPP_ACCESS_TOKEN=\"EAAG new\"\n\nA='x=y'\nB=plain\n",
        )
        .unwrap();
        let vars = read_env_file(&path).unwrap();
        assert_eq!(vars["WHATSAPP_ACCESS_TOKEN"], "EAAG new");
        assert_eq!(vars["A"], "x=y");
        assert_eq!(vars["B"], "plain");
    }

    #[test]
    fn a_malformed_env_file_line_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wagate.env");
        std::fs::write(&path, "GOOD=1\nthis line has no equals sign\n").unwrap();
        let message = read_env_file(&path).unwrap_err().to_string();
        assert!(message.contains("wagate.env"), "{message}");
        assert!(message.contains('2'), "{message}");
        assert!(message.contains("KEY=VALUE"), "{message}");
    }
}
