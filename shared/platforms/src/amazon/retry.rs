//! Bounded retries of one Amazon call (SP-API or LWA).
//!
//! The rules, and why:
//! - 429: Amazon did not process the request, so any method may be sent again. The wait is one
//!   request's share of the rate Amazon announces in `x-amzn-RateLimit-Limit` (or the operation's
//!   documented rate). A wait longer than [`RetryPolicy::max_throttle_wait`] is not slept here:
//!   the caller gets [`PlatformError::RateLimited`] and its queue tries again later (getOrders
//!   allows one request a minute; a Lambda must not sleep through that).
//! - A connection that could not be opened: nothing was sent, so any method is retried.
//! - 5xx, timeouts and broken exchanges: Amazon may have acted, so only a repeatable operation
//!   (a GET, a token refresh) is retried, with exponential backoff and full jitter.
//! - Anything else is the answer.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;

use crate::error::PlatformError;
use crate::outbound::{OutboundRequest, OutboundResponse};

/// An SP-API or LWA answer is JSON of at most a few hundred kB (100 orders); more is refused.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// A nonsensical announced rate (0.0001/s) must not turn into a wait of hours.
const MAX_THROTTLE_SECS: f64 = 3600.0;

/// How hard the client tries before it returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// First backoff after a 5xx or a transport error; it doubles with each attempt.
    pub base_delay: Duration,
    /// Cap of one backoff.
    pub max_delay: Duration,
    /// The longest wait after a 429 that is slept here; a longer one is returned as
    /// [`PlatformError::RateLimited`].
    pub max_throttle_wait: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 250 ms doubling to at most 2 s, and at most 2 s of sleep per 429
    /// (getOrderItems' 0.5 request/s is slept, getOrders' one a minute is returned).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            max_throttle_wait: Duration::from_secs(2),
        }
    }
}

/// One kind of call, as far as retrying it is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operation {
    /// Amazon's operation name, for logs.
    pub name: &'static str,
    /// Amazon's documented rate in requests per second; `None` where none is documented (LWA).
    pub rate: Option<f64>,
    /// Whether a request that may have reached Amazon can be sent again without harm.
    pub repeatable: bool,
}

/// A complete answer, whatever its status.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Sends the request `build` makes (a new one per attempt) until it gets an answer worth returning.
///
/// Returns the last answer, which may be a 4xx or 5xx for the caller to turn into its own error;
/// a 429 that outlasts the attempts or the policy's patience is [`PlatformError::RateLimited`].
pub(crate) async fn send_with_retries(
    policy: &RetryPolicy,
    operation: &Operation,
    build: impl Fn() -> Result<OutboundRequest, PlatformError>,
) -> Result<Answer, PlatformError> {
    let attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let last = attempt >= attempts;
        let delay = match exchange(build()?).await {
            Ok((answer, announced_rate)) if answer.status == StatusCode::TOO_MANY_REQUESTS => {
                let wait = throttle_wait(policy, operation, announced_rate, attempt);
                if last || wait > policy.max_throttle_wait {
                    return Err(PlatformError::RateLimited {
                        retry_after_ms: millis_rounded_up(wait),
                    });
                }
                wait + throttle_jitter(wait)
            }
            Ok((answer, _)) if answer.status.is_server_error() && operation.repeatable && !last => {
                backoff(policy, attempt)
            }
            Ok((answer, _)) => return Ok(answer),
            Err(PlatformError::Connect(_)) if !last => backoff(policy, attempt),
            Err(PlatformError::Timeout | PlatformError::Transport(_))
                if operation.repeatable && !last =>
            {
                backoff(policy, attempt)
            }
            Err(error) => return Err(error),
        };
        tracing::info!(
            operation = operation.name,
            attempt,
            delay_ms = millis_rounded_up(delay),
            "retrying an Amazon call"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Sends one request and reads its whole (bounded) body, with the rate Amazon announced.
async fn exchange(request: OutboundRequest) -> Result<(Answer, Option<f64>), PlatformError> {
    let response = request.send().await?;
    let status = response.status();
    let announced_rate = announced_rate(&response);
    let body = response.bytes_bounded(MAX_ANSWER_BYTES).await?;
    Ok((Answer { status, body }, announced_rate))
}

/// `x-amzn-RateLimit-Limit`: the operation's rate for this seller and app, in requests per second.
fn announced_rate(response: &OutboundResponse) -> Option<f64> {
    response
        .headers()
        .get("x-amzn-ratelimit-limit")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One request's share of the rate: 1/rate seconds. Without any rate, plain backoff.
fn throttle_wait(
    policy: &RetryPolicy,
    operation: &Operation,
    announced_rate: Option<f64>,
    attempt: u32,
) -> Duration {
    let usable = |rate: &f64| rate.is_finite() && *rate > 0.0;
    match announced_rate.filter(usable).or(operation.rate) {
        Some(rate) => Duration::from_secs_f64((1.0 / rate).min(MAX_THROTTLE_SECS)),
        None => exponential(policy, attempt),
    }
}

/// Up to a fifth more, so clients throttled together do not come back together.
fn throttle_jitter(wait: Duration) -> Duration {
    let fifth = millis_rounded_up(wait) / 5;
    Duration::from_millis(rand::rng().random_range(0..=fifth))
}

/// Exponential backoff with full jitter (a random wait between 0 and the exponential delay).
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let ceiling = millis_rounded_up(exponential(policy, attempt));
    Duration::from_millis(rand::rng().random_range(0..=ceiling))
}

/// `base_delay × 2^(attempt-1)`, capped at `max_delay`.
fn exponential(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay)
}

fn millis_rounded_up(duration: Duration) -> u64 {
    let millis = duration.as_micros().div_ceil(1000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_ORDERS: Operation = Operation {
        name: "getOrders",
        rate: Some(0.0167),
        repeatable: true,
    };

    #[test]
    fn the_announced_rate_wins_over_the_documented_one() {
        let policy = RetryPolicy::default();
        let wait = throttle_wait(&policy, &GET_ORDERS, Some(2.0), 1);
        assert_eq!(wait, Duration::from_millis(500));
        // getOrders' documented rate is one request a minute.
        let documented = throttle_wait(&policy, &GET_ORDERS, None, 1);
        assert_eq!(millis_rounded_up(documented), 59_881);
        // A rate of 0 or garbage is ignored rather than divided by.
        assert_eq!(
            throttle_wait(&policy, &GET_ORDERS, Some(0.0), 1),
            documented
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_exceeds_it() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            max_throttle_wait: Duration::from_secs(2),
        };
        assert_eq!(exponential(&policy, 1), Duration::from_millis(100));
        assert_eq!(exponential(&policy, 2), Duration::from_millis(200));
        assert_eq!(exponential(&policy, 3), Duration::from_millis(350));
        assert_eq!(exponential(&policy, 40), Duration::from_millis(350));
        for attempt in 1..10 {
            assert!(backoff(&policy, attempt) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn throttle_jitter_adds_at_most_a_fifth() {
        for _ in 0..100 {
            assert!(throttle_jitter(Duration::from_secs(1)) <= Duration::from_millis(200));
        }
    }
}
