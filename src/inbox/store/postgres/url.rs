//! `--database` / `WAGATE_DATABASE_URL`: a `postgres://` or `postgresql://` URL as libpq reads
//! it, with `sslmode` (disable, prefer, require, verify-ca, verify-full) and `sslrootcert`.
//! The password never leaves this type: `Display` and `Debug` show the URL without it, and
//! every error names host, port and database only.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How the connection is encrypted and what is checked, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise (libpq's default).
    Prefer,
    /// TLS, unverified (encryption against eavesdroppers, not against a man in the middle).
    Require,
    /// TLS, the certificate chain checked against the trusted roots; any host name.
    VerifyCa,
    /// TLS, the chain checked and the certificate naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Why `--database` was not accepted. Each says which flag and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error(
        "--database (WAGATE_DATABASE_URL) must start with postgres:// or postgresql://, \
         got `{0}`; leave it unset to keep the SQLite database in --data"
    )]
    UnknownScheme(String),
    #[error(
        "--database (WAGATE_DATABASE_URL): unknown sslmode `{0}`; use disable, prefer, require, \
         verify-ca or verify-full"
    )]
    SslMode(String),
    #[error(
        "--database (WAGATE_DATABASE_URL): `{0}` is not supported (client certificates are \
         not); remove it"
    )]
    Unsupported(String),
    #[error(
        "--database (WAGATE_DATABASE_URL) is not a valid PostgreSQL URL ({0}); the form is \
         postgres://user:password@host:5432/dbname"
    )]
    Invalid(String),
}

/// A parsed `--database` URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    pub(super) config: tokio_postgres::Config,
    pub(super) ssl: SslMode,
    /// `sslrootcert`: a PEM file of the CAs to trust instead of the built-in and system roots.
    pub(super) root_cert: Option<PathBuf>,
    /// `postgres://user@host:port/dbname?sslmode=...`: what messages show.
    shown: String,
}

impl DatabaseUrl {
    /// `host:port/dbname`, for messages about this database.
    pub fn target(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres");
        format!("{host}:{port}/{db}")
    }
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(url: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let url = url.trim();
        let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        else {
            // Never echo more than the scheme: the rest may hold a password.
            let scheme = url.split("://").next().unwrap_or("").to_owned();
            let shown = if url.contains("://") {
                format!("{scheme}://...")
            } else {
                "(no scheme)".into()
            };
            return Err(DatabaseUrlError::UnknownScheme(shown));
        };
        let (base, query) = match rest.split_once('?') {
            Some((base, query)) => (base, query),
            None => (rest, ""),
        };
        let mut ssl = SslMode::Prefer;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    ssl = SslMode::parse(value)
                        .ok_or_else(|| DatabaseUrlError::SslMode(value.to_owned()))?;
                }
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value))),
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(DatabaseUrlError::Unsupported(key.to_owned()))
                }
                _ => kept.push(pair),
            }
        }
        let mut rebuilt = format!("postgresql://{base}");
        if !kept.is_empty() {
            rebuilt.push('?');
            rebuilt.push_str(&kept.join("&"));
        }
        let mut config = tokio_postgres::Config::from_str(&rebuilt)
            // The driver's message names the bad part, never the password's value.
            .map_err(|e| DatabaseUrlError::Invalid(e.to_string()))?;
        if config.get_user().is_none() {
            return Err(DatabaseUrlError::Invalid("no user name".into()));
        }
        if config.get_password().is_none() {
            // As libpq: the password may come from the environment instead of the URL.
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A network that silently drops the server (no reset) fails a connection within
        // seconds instead of TCP's quarter of an hour: fast 503s, not hung webhooks.
        let given = |key: &str| kept.iter().any(|p| p.starts_with(&format!("{key}=")));
        if !given("tcp_user_timeout") {
            config.tcp_user_timeout(Duration::from_secs(10));
        }
        if !given("keepalives_idle") {
            config.keepalives_idle(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("wagate");
        }
        config.ssl_mode(match ssl {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let mut parsed = DatabaseUrl {
            config,
            ssl,
            root_cert,
            shown: String::new(),
        };
        let user = parsed.config.get_user().unwrap_or_default().to_owned();
        parsed.shown = format!(
            "postgres://{user}@{}?sslmode={}",
            parsed.target(),
            ssl.as_str()
        );
        Ok(parsed)
    }
}

/// `%2F` and friends in a query value (a file path).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url: DatabaseUrl =
            "postgres://app:s3cret-pw@db.internal:6543/wagate?sslmode=verify-full"
                .parse()
                .unwrap();
        for shown in [url.to_string(), format!("{url:?}"), url.target()] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
        }
        assert_eq!(
            url.to_string(),
            "postgres://app@db.internal:6543/wagate?sslmode=verify-full"
        );
        assert_eq!(url.ssl, SslMode::VerifyFull);
    }

    #[test]
    fn both_schemes_are_accepted_and_others_are_refused_without_echoing_them() {
        for ok in [
            "postgres://u@localhost/db",
            "postgresql://u:p@127.0.0.1:5432/db?sslmode=disable&connect_timeout=3",
        ] {
            ok.parse::<DatabaseUrl>().unwrap();
        }
        let err = "mysql://root:hunter2@db/x"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("--database"), "{message}");
        assert!(message.contains("WAGATE_DATABASE_URL"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let err = "postgres://u@h/db?sslmode=maybe"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        assert!(err.to_string().contains("verify-full"), "{err}");
    }

    #[test]
    fn sslrootcert_is_read_as_a_path() {
        let url: DatabaseUrl = "postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem"
            .parse()
            .unwrap();
        assert_eq!(url.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(url.ssl, SslMode::VerifyCa);
    }
}
