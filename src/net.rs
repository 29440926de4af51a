//! The HTTP front door below the router: the accept loop and its defences against clients that
//! misbehave on purpose or by accident.
//!
//! HTTP/1.1 only, as before (axum's `http2` feature was never on): Meta and the reverse proxy in
//! front of wagate speak HTTP/1.1.
//!
//! - **Connection cap.** At most [`HttpLimits::max_connections`] connections are served at once.
//!   Over the cap the loop stops calling `accept`: new connections wait in the kernel's accept
//!   backlog (and time out there on the client side) instead of costing a file descriptor and a
//!   task each. Meta retries what it could not deliver, so waiting is the right answer.
//! - **Header read timeout.** A request head must arrive in full within
//!   [`HttpLimits::header_read_timeout`], or the connection is closed (slowloris). hyper starts
//!   this clock whenever it waits for a request head, so it is also the idle keep-alive timeout:
//!   a connection that sends nothing is closed after the same time.
//! - **Header size.** Heads larger than [`HttpLimits::max_header_bytes`] get 431 and a close.
//! - **Body read timeout.** A body must arrive in full within [`HttpLimits::body_read_timeout`],
//!   or the request gets 408 (see [`with_body_deadline`]). The body limit (413) is checked on the
//!   way, so a slow body is never buffered beyond the limit.
//! - **Body limit at the headers.** A `Content-Length` over the limit (or one that is not a
//!   number) gets its 413 before a byte of the body is read, and the connection is closed. hyper
//!   sends `100 Continue` only when a handler first reads the body, so a client that sent
//!   `Expect: 100-continue` with too large a length gets the 413 instead and never uploads.
//! - **Graceful shutdown.** On stop the listener closes at once, idle connections are closed,
//!   requests in flight finish (for at most [`HttpLimits::shutdown_timeout`]) and then the
//!   remaining connections are dropped.

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Timeouts and limits of the HTTP server (`Default` is for production).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Connections served at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// Time allowed for a request head to arrive; also how long an idle connection stays open.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; more gets 431.
    pub max_header_bytes: usize,
    /// Time allowed for a request body to arrive in full; more gets 408.
    pub body_read_timeout: Duration,
    /// How long a stop waits for requests in flight before dropping their connections.
    pub shutdown_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            body_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serve `app` on `listener` until `stop` is cancelled, then shut down gracefully.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // Connections still open when the shutdown timeout runs out are dropped through this.
    let force_close = CancellationToken::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);

    loop {
        // Wait for a free slot before accepting: over the cap, clients wait in the backlog.
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; nothing sensible to do but stop
            },
        };
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    backoff_after_accept_error(&e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        let force_close = force_close.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        // Timeouts, resets and malformed requests: the client's problem.
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = force_close.cancelled() => {}
            }
            drop(permit);
        });
    }

    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(
            connections = open,
            "stopped accepting; letting requests in flight finish"
        );
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_s = limits.shutdown_timeout.as_secs_f64(),
            "connections still open after the shutdown timeout; closing them"
        );
        force_close.cancel();
    }
}

/// Errors of `accept` that concern one connection (the next accept may succeed) do not need a
/// pause; the others (out of file descriptors, mostly) get a short one so the loop does not spin.
async fn backoff_after_accept_error(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Reads every request body in full, within `timeout` (else 408) and up to `max_body_bytes`
/// (else 413), before the router sees the request. Handlers then work on bytes in memory and a
/// client that stops sending mid-body costs one timer, not a task waiting forever.
pub fn with_body_deadline(app: Router, max_body_bytes: usize, timeout: Duration) -> Router {
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            read_body_within(request, next, max_body_bytes, timeout)
        },
    ))
}

async fn read_body_within(
    request: Request,
    next: Next,
    max_body_bytes: usize,
    timeout: Duration,
) -> Response {
    if let Some(refused) = refuse_at_the_headers(&request, max_body_bytes) {
        return refused;
    }
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(timeout, Limited::new(body, max_body_bytes).collect());
    let bytes = match collected.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body could not be read");
            return (StatusCode::BAD_REQUEST, "body could not be read").into_response();
        }
        Err(_) => {
            tracing::debug!("request body not received in time");
            // The rest of the body may still be on its way: close rather than read it.
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(axum::http::header::CONNECTION, "close")],
                "body not received in time",
            )
                .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 413 for a request whose `Content-Length` announces more than `max_body_bytes` (or cannot be
/// read as a length), before its body is touched: a `10 GB` upload is not read up to the limit
/// first, and `Expect: 100-continue` is answered with the 413 rather than `100 Continue`. The
/// connection is closed, since the client may already be sending the body.
fn refuse_at_the_headers(request: &Request, max_body_bytes: usize) -> Option<Response> {
    let announced = request.headers().get(axum::http::header::CONTENT_LENGTH)?;
    let fits = announced
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .is_some_and(|length| length <= max_body_bytes as u64);
    if fits {
        return None;
    }
    tracing::debug!(
        content_length = ?announced,
        max_body_bytes,
        "request refused at its headers: Content-Length over the limit"
    );
    Some(
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(axum::http::header::CONNECTION, "close")],
            "body too large",
        )
            .into_response(),
    )
}
