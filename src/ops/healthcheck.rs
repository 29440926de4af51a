//! `wagate healthcheck`: GET the server's `/healthz` and exit 0 on 200. Docker's HEALTHCHECK
//! runs it inside the container, whose image has no curl.

use std::time::Duration;

/// The whole probe, connection included, must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The URL to probe when `--url` is not given: `/healthz` on the address `serve` listens on
/// (`WAGATE_LISTEN`), reached through loopback when it listens on every interface.
pub fn default_url(listen: Option<&str>) -> String {
    format!("{}/healthz", local_base_url(listen))
}

/// `http://HOST:PORT` of a server listening on `listen` (`WAGATE_LISTEN`), as a client on the
/// same machine reaches it: through loopback when it listens on every interface. Without an
/// address, `serve`'s default port 8000.
pub fn local_base_url(listen: Option<&str>) -> String {
    let Some(listen) = listen.map(str::trim).filter(|l| !l.is_empty()) else {
        return "http://127.0.0.1:8000".into();
    };
    let Some((host, port)) = listen.rsplit_once(':') else {
        return "http://127.0.0.1:8000".into();
    };
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        other => other,
    };
    format!("http://{host}:{port}")
}

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not answer within {} s", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// GETs `url`; `Ok` only on a 200. Proxies are ignored: the server is local.
pub async fn probe(url: &str) -> Result<(), HealthError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| HealthError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            HealthError::Timeout {
                url: url.to_string(),
            }
        } else {
            HealthError::Unreachable {
                url: url.to_string(),
                // reqwest's top-level message is generic ("error sending request").
                reason: crate::text::root_cause(&e),
            }
        }
    })?;
    let status = response.status().as_u16();
    if status == 200 {
        Ok(())
    } else {
        Err(HealthError::Status {
            url: url.to_string(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_address_becomes_a_loopback_url() {
        assert_eq!(default_url(None), "http://127.0.0.1:8000/healthz");
        assert_eq!(
            default_url(Some("0.0.0.0:9000")),
            "http://127.0.0.1:9000/healthz"
        );
        assert_eq!(default_url(Some("[::]:8001")), "http://[::1]:8001/healthz");
        assert_eq!(
            default_url(Some("127.0.0.1:8100")),
            "http://127.0.0.1:8100/healthz"
        );
    }
}
