//! Where an HTTP tool may connect (redirects are not followed; an address in a
//! private, loopback or link-local range is refused unless the URL in the agent file names that
//! host itself).
//!
//! The host of a tool's URL is fixed by the agent file (arguments cannot change it, see
//! `filled_url`), so what the model controls is the path and query, and what the remote side
//! controls is its redirects and its DNS answers. Hence:
//!
//! - **No redirects.** A `302` is handed to the model as it is; its `Location` is never
//!   followed (a public server could otherwise point the tool at `http://169.254.169.254/`).
//! - **DNS answers are checked, then used.** The client resolves names through
//!   [`GuardedResolver`], which drops every non-public address and refuses the name when none
//!   is left; the connection then goes to exactly the addresses that were checked, so a second
//!   lookup cannot answer differently (no time-of-check/time-of-use gap, no DNS rebinding).
//! - **Named hosts are trusted.** An IP literal in the agent file's URL (`http://10.0.0.7:8080`)
//!   is never resolved and so never refused, and `localhost` (or `*.localhost`) names loopback
//!   itself: the operator wrote it. A *name* that merely resolves to an internal address is
//!   refused: write the address instead.
//! - **No proxy from the environment.** With `HTTP_PROXY` set the proxy would resolve the name,
//!   out of this check's sight.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How names are turned into addresses: the system resolver in production; tests give a fixed
/// table.
pub(crate) type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (getaddrinfo, through tokio).
pub(crate) fn system_lookup() -> Lookup {
    Arc::new(|name: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// The client every HTTP tool uses: no redirects, no proxy, names resolved through the guard.
pub(crate) fn client(lookup: Lookup) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(Arc::new(GuardedResolver { lookup }))
        .build()
}

/// Resolves a name and keeps only the addresses a tool may reach.
struct GuardedResolver {
    lookup: Lookup,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let lookup = (self.lookup)(host.clone());
        Box::pin(async move {
            let found = lookup.await?;
            let named_loopback = host == "localhost" || host.ends_with(".localhost");
            let allowed: Vec<SocketAddr> = found
                .iter()
                .filter(|ip| named_loopback || is_public(ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = if found.is_empty() {
                    format!("`{host}` has no address").into()
                } else {
                    tracing::warn!(
                        host = %host,
                        "http tool: the name resolves only to private, loopback or link-local \
                         addresses; refused (write the address itself in the agent file to allow it)"
                    );
                    format!(
                        "`{host}` resolves to a private, loopback or link-local address, which \
                         tools may only reach when the agent file names the address itself"
                    )
                    .into()
                };
                return Err(refused);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Not private, loopback, link-local, unspecified, shared (CGNAT), multicast or broadcast;
/// IPv4-mapped and NAT64-free IPv6 forms are judged as the IPv4 address they carry.
pub(crate) fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(&v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: &Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared_cgnat = a == 100 && (64..128).contains(&b);
    let this_network = a == 0;
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || shared_cgnat
        || this_network)
}

fn is_public_v6(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = (first & 0xfe00) == 0xfc00;
    let link_local = (first & 0xffc0) == 0xfe80;
    // Deprecated site-local, still routed internally by some networks.
    let site_local = (first & 0xffc0) == 0xfec0;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || site_local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::tools::http::HttpTool;
    use crate::llm::ToolDefinition;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An "internal" server on 127.0.0.1: `/secret` holds what must never reach a customer,
    /// `/hop` redirects there. Counts the requests it gets.
    async fn internal_server() -> (u16, Arc<AtomicUsize>) {
        use axum::response::IntoResponse;
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new()
            .route(
                "/secret",
                axum::routing::get(|| async { "INTERNAL-SECRET" }),
            )
            .route(
                "/hop",
                axum::routing::get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [(axum::http::header::LOCATION, "/secret")],
                        "moved",
                    )
                        .into_response()
                }),
            )
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(request)
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, hits)
    }

    /// Every name resolves to 127.0.0.1, as a hostile or careless DNS answer would.
    fn everything_is_loopback() -> Lookup {
        Arc::new(|_name: String| Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) }))
    }

    fn tool(url: &str, lookup: Lookup) -> HttpTool {
        let spec = serde_yaml::from_str(&format!("{{url: '{url}'}}")).unwrap();
        let definition = ToolDefinition {
            name: "lookup".into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
        };
        HttpTool::with_client(definition, &spec, client(lookup).map_err(|e| e.to_string())).unwrap()
    }

    #[tokio::test]
    async fn a_redirect_from_the_tools_server_is_not_followed() {
        let (port, hits) = internal_server().await;
        let answer = tool(
            &format!("http://127.0.0.1:{port}/hop"),
            everything_is_loopback(),
        )
        .call(&serde_json::Map::new())
        .await;
        assert!(answer.contains("HTTP 302"), "{answer}");
        assert!(answer.contains("not followed"), "{answer}");
        assert!(!answer.contains("INTERNAL-SECRET"), "{answer}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "only the named URL was requested"
        );
    }

    #[tokio::test]
    async fn a_hostname_resolving_to_a_loopback_address_is_refused_before_connecting() {
        let (port, hits) = internal_server().await;
        let answer = tool(
            &format!("http://api.partner.example:{port}/secret"),
            everything_is_loopback(),
        )
        .call(&serde_json::Map::new())
        .await;
        assert!(!answer.contains("INTERNAL-SECRET"), "{answer}");
        assert!(
            answer.contains("private, loopback or link-local"),
            "{answer}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0, "never connected");
    }

    #[tokio::test]
    async fn an_internal_host_named_in_the_agent_file_is_allowed() {
        let (port, hits) = internal_server().await;
        for url in [
            format!("http://127.0.0.1:{port}/secret"),
            format!("http://localhost:{port}/secret"),
        ] {
            let answer = tool(&url, everything_is_loopback())
                .call(&serde_json::Map::new())
                .await;
            assert_eq!(answer, "INTERNAL-SECRET", "{url}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_name_with_public_and_internal_answers_only_connects_to_the_public_ones() {
        let resolver = GuardedResolver {
            lookup: Arc::new(|_name: String| {
                Box::pin(async {
                    Ok(vec![
                        "127.0.0.1".parse().unwrap(),
                        "93.184.215.14".parse().unwrap(),
                        "169.254.169.254".parse().unwrap(),
                    ])
                })
            }),
        };
        let addrs: Vec<SocketAddr> = resolver
            .resolve("mixed.example".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec!["93.184.215.14:0".parse().unwrap()]);
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for internal in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "127.8.8.8",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(!is_public(&ip), "{internal} must be refused");
        }
        for public in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2001:4860:4860::8888"] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public(&ip), "{public} is public");
        }
    }
}
