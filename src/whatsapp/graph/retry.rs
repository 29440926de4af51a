//! When and how long to wait before trying a failed Graph API call again.
//!
//! Exponential backoff with full jitter (a random wait between zero and `base * 2^n`, capped),
//! so many conversations throttled at once do not come back in lockstep. A `Retry-After` from
//! Meta and the pair rate limit (131056) raise the wait; they never shorten it. Final errors come
//! back at once. Attempts and total time are both bounded, so a turn cannot hang here.

use super::error::{GraphError, PAIR_RATE_LIMIT_CODE};
use crate::metrics::{Metrics, RetryLabels};
pub use crate::retry::RetryPolicy;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry) after `err`.
    pub(crate) fn delay_before_retry(&self, retry: u32, err: &impl Retryable) -> Duration {
        let ceiling = self.growth().wait(retry);
        let ceiling_micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        let mut delay = Duration::from_micros(rand::random_range(0..=ceiling_micros));
        if let Some(asked) = err.retry_after() {
            delay = delay.max(asked);
        }
        if err.code() == Some(PAIR_RATE_LIMIT_CODE) {
            delay = delay.max(self.pair_rate_limit_delay);
        }
        delay
    }
}

/// What the retry loop needs to know about an error.
pub(crate) trait Retryable: std::fmt::Display {
    /// Worth another attempt.
    fn is_retryable(&self) -> bool;
    /// Meta's `Retry-After`, if any.
    fn retry_after(&self) -> Option<Duration>;
    /// Meta's error code, if any (logged, and 131056 lengthens the wait).
    fn code(&self) -> Option<i64>;
    /// The HTTP status, if an answer came.
    fn http_status(&self) -> Option<u16>;
}

impl Retryable for GraphError {
    fn is_retryable(&self) -> bool {
        GraphError::is_retryable(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        GraphError::retry_after(self)
    }
    fn code(&self) -> Option<i64> {
        GraphError::code(self)
    }
    fn http_status(&self) -> Option<u16> {
        self.api().map(|e| e.http_status)
    }
}

/// Runs `attempt` (given the attempt number, from 1) until it succeeds, fails for good, or the
/// policy's bounds are reached; returns the last error then. Each retry is logged at warn with
/// the code and status only: never message text, phone numbers or the token.
pub(crate) async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    operation: &'static str,
    metrics: &Metrics,
    mut attempt: F,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut first_failure = None;
    let mut number = 1;
    loop {
        let err = match attempt(number).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let first_failure = *first_failure.get_or_insert_with(Instant::now);
        if !err.is_retryable() {
            return Err(err);
        }
        if number >= max_attempts {
            tracing::warn!(
                operation,
                attempts = number,
                code = ?err.code(),
                http_status = ?err.http_status(),
                "Graph API call still failing after the last attempt; giving up"
            );
            return Err(err);
        }
        let delay = policy.delay_before_retry(number, &err);
        if first_failure.elapsed() + delay > policy.total_budget {
            tracing::warn!(
                operation,
                attempts = number,
                code = ?err.code(),
                http_status = ?err.http_status(),
                wait_ms = delay.as_millis() as u64,
                "Graph API call failing and the retry time budget is spent; giving up"
            );
            return Err(err);
        }
        tracing::warn!(
            operation,
            attempt = number,
            code = ?err.code(),
            http_status = ?err.http_status(),
            wait_ms = delay.as_millis() as u64,
            "Graph API call failed; retrying"
        );
        metrics
            .graph_retries
            .get_or_create(&RetryLabels {
                operation: operation.to_owned(),
                code: err.code().map(|c| c.to_string()).unwrap_or_default(),
            })
            .inc();
        tokio::time::sleep(delay).await;
        number += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::graph::error::GraphApiError;

    fn api_error(code: Option<i64>, retry_after: Option<Duration>) -> GraphError {
        GraphError::Api(Box::new(GraphApiError {
            http_status: 400,
            code,
            subcode: None,
            kind: None,
            message: String::new(),
            details: None,
            fbtrace_id: None,
            retry_after,
        }))
    }

    #[test]
    fn backoff_grows_but_never_passes_the_cap() {
        let policy = RetryPolicy::default();
        let err = GraphError::Timeout;
        for retry in 1..40 {
            let ceiling = (policy.base_delay * 2u32.saturating_pow(retry - 1).min(1 << 20))
                .min(policy.max_delay);
            assert!(policy.delay_before_retry(retry, &err) <= ceiling);
        }
    }

    #[test]
    fn retry_after_and_the_pair_limit_lengthen_the_wait() {
        let policy = RetryPolicy::default();
        let asked = api_error(Some(4), Some(Duration::from_secs(45)));
        assert!(policy.delay_before_retry(1, &asked) >= Duration::from_secs(45));
        let pair = api_error(Some(131056), None);
        assert!(policy.delay_before_retry(1, &pair) >= Duration::from_secs(6));
    }
}
