//! The Graph API client: send text, mark read (with typing), and the shared HTTP plumbing.
//!
//! Security: the access token is only ever sent to URLs under `{graph_api_base}/{version}` built
//! here from validated ids, and to a media URL that the Graph API itself returned (see
//! `media.rs`: a [`super::MediaInfo`] can only be built from Graph's answer). It is never sent to
//! a URL taken from a webhook body. reqwest drops the `Authorization` header if a redirect leaves
//! the host. The token never appears in an error or a log line.

use super::error::{
    GraphApiError, GraphError, PAIR_RATE_LIMIT_CODE, THROUGHPUT_LIMIT_CODE, TOKEN_INVALID_CODE,
};
use super::outgoing::OutgoingMessage;
use super::pacing::Pacer;
use super::retry::{with_retries, RetryPolicy};
use super::shared_window::SharedRateLimit;
use crate::config::{MediaLimits, WhatsAppChannel};
use crate::metrics::Metrics;
use crate::secret::Secret;
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Timeouts, retry policies and pacing of a [`GraphClient`]. `Default` is for production.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// Time allowed to open a TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Whole-request timeout for sends, read receipts and media metadata.
    pub send_timeout: Duration,
    /// Whole-request timeout for a media download (up to 100 MB for documents).
    pub download_timeout: Duration,
    /// Retries for sends (mark read uses it with at most one retry).
    pub retry: RetryPolicy,
    /// Retries for media metadata and downloads (the media URL lives only 5 minutes).
    pub media_retry: RetryPolicy,
    /// Least time between any two sends from one business number to the same user. Off by
    /// default: it would delay every reply to a user who writes often (each reply waiting for
    /// the previous one), while Meta's pair limit tolerates bursts and says so with 131056,
    /// which always holds the pair back (`RetryPolicy::pair_rate_limit_delay`).
    pub per_user_interval: Duration,
    /// Pause between the parts of one split reply, so a long answer arrives as a steady
    /// sequence rather than a burst against the pair limit.
    pub reply_part_interval: Duration,
    /// The channel cap kept in the database, shared by every replica (PostgreSQL); `None`:
    /// kept in this process (SQLite).
    pub shared_rate_limit: Option<SharedRateLimit>,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(15),
            download_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            media_retry: RetryPolicy {
                max_attempts: 3,
                total_budget: Duration::from_secs(30),
                ..RetryPolicy::default()
            },
            per_user_interval: Duration::ZERO,
            reply_part_interval: Duration::from_secs(1),
            shared_rate_limit: None,
        }
    }
}

/// A message Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The outbound message id (`wamid...`, or `dryrun...` in dry run) that statuses refer to.
    pub id: String,
}

/// Client for Meta's Graph API; cheap to clone (clones share connections and pacing).
#[derive(Clone)]
pub struct GraphClient {
    pub(super) inner: Arc<Inner>,
    /// Where retries and rate-limit waits are counted: a registry of its own until
    /// [`GraphClient::observed_by`] (outside `inner`, so a client already shared can be observed).
    pub(super) metrics: Arc<Metrics>,
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    /// `{graph_api_base}/{graph_api_version}`, without a trailing slash.
    pub(super) api_base: String,
    /// True when the Graph base is https: media URLs must then be https too.
    pub(super) https_only: bool,
    token: Secret,
    pub(super) dry_run: bool,
    pub(super) options: GraphOptions,
    pub(super) media_limits: MediaLimits,
    pacer: Pacer,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("api_base", &self.inner.api_base)
            .field("dry_run", &self.inner.dry_run)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A client for the channel with production timeouts, retries and pacing.
    pub fn new(channel: &WhatsAppChannel) -> Result<Self, GraphError> {
        Self::with_options(channel, GraphOptions::default())
    }

    /// A client for the channel with the given options (tests use millisecond delays).
    pub fn with_options(
        channel: &WhatsAppChannel,
        options: GraphOptions,
    ) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("wagate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Setup(e.to_string()))?;
        let api_base = format!(
            "{}/{}",
            channel.graph_api_base.trim_end_matches('/'),
            channel.graph_api_version.trim_matches('/')
        );
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                https_only: api_base.starts_with("https://"),
                api_base,
                token: channel.access_token.clone(),
                dry_run: channel.dry_run(),
                media_limits: channel.media_max_bytes.clone(),
                pacer: Pacer::new(
                    &channel.rate_limit,
                    options.per_user_interval,
                    options.shared_rate_limit.as_ref(),
                ),
                options,
            }),
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Count retries and rate-limit waits in `metrics`. Call right after construction.
    pub fn observed_by(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The pause between the parts of one split reply.
    pub fn reply_part_interval(&self) -> Duration {
        self.inner.options.reply_part_interval
    }

    /// Dry run: nothing is sent to Meta (empty access token or phone number id).
    pub fn is_dry_run(&self) -> bool {
        self.inner.dry_run
    }

    /// Total time sends have waited for the channel cap and per-user spacing (for metrics).
    pub fn pacing_wait_total(&self) -> Duration {
        self.inner.pacer.waited()
    }

    /// Sends `body` as a text message from the business number to `to`, quoting `reply_to`
    /// when given. Waits for the rate limiter, retries what is worth retrying, and returns
    /// the id Meta gave the message. In dry run it logs `outbound_dry_run` and sends nothing.
    pub async fn send_text(
        &self,
        from_phone_number_id: &str,
        to: &str,
        body: &str,
        reply_to: Option<&str>,
    ) -> Result<SentMessage, GraphError> {
        self.send_text_tagged(from_phone_number_id, to, body, reply_to, None)
            .await
    }

    /// [`send_text`](Self::send_text) with `biz_opaque_callback_data`: text Meta echoes in the
    /// message's status notifications (at most 512 characters), so the sender can learn that
    /// Meta accepted a message whose answer it never received (a crash, a lost connection).
    pub async fn send_text_tagged(
        &self,
        from_phone_number_id: &str,
        to: &str,
        body: &str,
        reply_to: Option<&str>,
        callback_data: Option<&str>,
    ) -> Result<SentMessage, GraphError> {
        let message = OutgoingMessage::text(body);
        self.send_message(from_phone_number_id, to, &message, reply_to, callback_data)
            .await
    }

    /// Sends any [`OutgoingMessage`] (text, interactive, media by link, location, reaction,
    /// template) from the business number to `to`, like [`send_text_tagged`](Self::send_text_tagged):
    /// rate limited, retried, the id Meta gave it returned; logged instead in dry run.
    pub async fn send_message(
        &self,
        from_phone_number_id: &str,
        to: &str,
        message: &OutgoingMessage,
        reply_to: Option<&str>,
        callback_data: Option<&str>,
    ) -> Result<SentMessage, GraphError> {
        if self.inner.dry_run {
            // Showing the text is the point of dry run, hence info level.
            let shown = message.describe();
            tracing::info!(
                event = "outbound_dry_run",
                from = from_phone_number_id,
                to,
                kind = message.graph_type(),
                text = shown.as_str(),
                reply_to,
                "dry run: reply logged, not sent"
            );
            return Ok(SentMessage {
                id: format!("dryrun.{:032x}", rand::random::<u128>()),
            });
        }
        let url = self.endpoint(from_phone_number_id, Some("messages"))?;
        if to.trim().is_empty() {
            return Err(GraphError::InvalidRequest("empty recipient".into()));
        }
        if matches!(message, OutgoingMessage::Text { .. }) && message.main_text().trim().is_empty()
        {
            return Err(GraphError::InvalidRequest("empty message text".into()));
        }
        if callback_data.is_some_and(|c| c.chars().count() > MAX_CALLBACK_DATA) {
            return Err(GraphError::InvalidRequest(format!(
                "biz_opaque_callback_data longer than {MAX_CALLBACK_DATA} characters"
            )));
        }
        let payload = message.request_body(to, reply_to, callback_data);
        let operation = operation_name(message);
        let inner = &self.inner;
        let metrics = &*self.metrics;
        let answer = with_retries(&inner.options.retry, operation, metrics, |_| async {
            let waiting = std::time::Instant::now();
            inner.pacer.wait_turn(from_phone_number_id, to).await;
            metrics
                .rate_limiter_wait_seconds
                .inc_by(waiting.elapsed().as_secs_f64());
            let result = self.post_json(&url, &payload).await;
            if let Err(err) = &result {
                if err.code() == Some(PAIR_RATE_LIMIT_CODE) {
                    let hold = inner.options.retry.pair_rate_limit_delay;
                    inner.pacer.hold_pair(from_phone_number_id, to, hold);
                }
                if err.code() == Some(THROUGHPUT_LIMIT_CODE) {
                    let pause = err
                        .retry_after()
                        .unwrap_or(THROUGHPUT_PAUSE)
                        .clamp(THROUGHPUT_PAUSE, MAX_THROUGHPUT_PAUSE);
                    inner.pacer.channel_throttled(pause).await;
                }
            }
            result
        })
        .await
        .inspect_err(|err| log_failure(operation, err))?;
        let id = answer
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| GraphError::BadResponse {
                status: 200,
                reason: "no messages[0].id in the answer".into(),
            })
            .inspect_err(|err| log_failure(operation, err))?;
        tracing::debug!(
            to,
            id,
            kind = message.graph_type(),
            "message accepted by Meta"
        );
        Ok(SentMessage { id: id.to_owned() })
    }

    /// Marks `message_id` read (blue ticks), with the typing indicator when `typing` is set
    /// (it shows for up to 25 s or until the reply). Best effort: a failure is already logged
    /// here, is retried at most once, and should never fail a turn. Not rate limited (it is
    /// not a message). No request in dry run.
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        message_id: &str,
        typing: bool,
    ) -> Result<(), GraphError> {
        if self.inner.dry_run {
            tracing::debug!(message_id, typing, "dry run: mark read skipped");
            return Ok(());
        }
        let url = self.endpoint(phone_number_id, Some("messages"))?;
        let mut payload = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        });
        if typing {
            payload["typing_indicator"] = json!({ "type": "text" });
        }
        // One retry at most, and a short budget: a read receipt must not hold up the reply.
        let policy = RetryPolicy {
            total_budget: self
                .inner
                .options
                .retry
                .total_budget
                .min(Duration::from_secs(5)),
            ..self.inner.options.retry.with_max_attempts(2)
        };
        let metrics = &*self.metrics;
        with_retries(&policy, "mark_read", metrics, |_| {
            self.post_json(&url, &payload)
        })
        .await
        .map(drop)
        .inspect_err(|err| log_failure("mark_read", err))
    }

    /// `{api_base}/{id}[/{suffix}]`, refusing ids that could change the path.
    pub(super) fn endpoint(&self, id: &str, suffix: Option<&str>) -> Result<String, GraphError> {
        let safe = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !safe {
            return Err(GraphError::InvalidRequest(
                "id is not a plain Graph object id".into(),
            ));
        }
        Ok(match suffix {
            Some(suffix) => format!("{}/{id}/{suffix}", self.inner.api_base),
            None => format!("{}/{id}", self.inner.api_base),
        })
    }

    /// A request with the bearer token. Only for Graph URLs and Graph-returned media URLs.
    pub(super) fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(self.inner.token.expose())
    }

    async fn post_json(&self, url: &str, payload: &Value) -> Result<Value, GraphError> {
        let request = self
            .authorized(self.inner.http.post(url))
            .timeout(self.inner.options.send_timeout)
            .json(payload);
        read_json(request.send().await.map_err(GraphError::from_transport)?).await
    }

    /// GET a Graph object as JSON.
    pub(super) async fn get_json(&self, url: &str) -> Result<Value, GraphError> {
        let request = self
            .authorized(self.inner.http.get(url))
            .timeout(self.inner.options.send_timeout);
        read_json(request.send().await.map_err(GraphError::from_transport)?).await
    }
}

/// The JSON of a 2xx answer, or the Graph error of any other.
async fn read_json(response: reqwest::Response) -> Result<Value, GraphError> {
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        return Err(api_error(status, &headers, &body));
    }
    // Past a 2xx Meta may have acted on the request, so failures from here on are
    // `BadResponse`, which is never retried (a retry could send the message twice).
    let body = response
        .bytes()
        .await
        .map_err(|_| GraphError::BadResponse {
            status,
            reason: "the answer's body could not be read".into(),
        })?;
    serde_json::from_slice(&body).map_err(|e| GraphError::BadResponse {
        status,
        reason: format!("the answer is not JSON: {e}"),
    })
}

pub(super) fn api_error(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> GraphError {
    GraphError::Api(Box::new(GraphApiError::from_response(
        status, headers, body,
    )))
}

/// How long every replica pauses after a 130429 without `Retry-After`: Meta counts
/// throughput per second, so a second lets its count drop.
const THROUGHPUT_PAUSE: Duration = Duration::from_secs(1);
/// A `Retry-After` longer than this is not trusted for the whole deployment's pause (the
/// retry itself still honours it).
const MAX_THROUGHPUT_PAUSE: Duration = Duration::from_secs(60);

/// Meta's limit on `biz_opaque_callback_data`.
const MAX_CALLBACK_DATA: usize = 512;

/// The operation name logs and retry metrics use for a send.
fn operation_name(message: &OutgoingMessage) -> &'static str {
    match message {
        OutgoingMessage::Text { .. } => "send_text",
        OutgoingMessage::Template { .. } => "send_template",
        OutgoingMessage::Reaction { .. } => "send_reaction",
        _ => "send_message",
    }
}

/// Logs a call that failed for good: the code and Meta's details, never text or numbers.
/// An invalid token (190) is an ERROR with what the operator must do.
pub(super) fn log_failure(operation: &'static str, err: &GraphError) {
    match err.api() {
        Some(api) if api.code == Some(TOKEN_INVALID_CODE) => tracing::error!(
            operation,
            code = TOKEN_INVALID_CODE,
            subcode = api.subcode,
            fbtrace_id = api.fbtrace_id.as_deref(),
            "Meta rejected the WhatsApp access token (expired or invalid): nothing can be sent. \
             Generate a new system-user token in Meta Business Settings and set \
             WHATSAPP_ACCESS_TOKEN to it: in the --env-file it is reloaded at once, in the \
             process environment it needs a restart"
        ),
        Some(api) => tracing::warn!(
            operation,
            http_status = api.http_status,
            code = api.code,
            subcode = api.subcode,
            details = api.details.as_deref(),
            fbtrace_id = api.fbtrace_id.as_deref(),
            retryable = api.is_retryable(),
            "Graph API call failed"
        ),
        None => tracing::warn!(operation, error = %err, "Graph API call failed"),
    }
}
