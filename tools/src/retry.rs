//! Retries with exponential backoff and jitter, only for retryable errors,
//! bounded by attempts and by a total deadline.
//!
//! Ours, not `tower::retry`: tower's `Policy` leaves backoff, jitter and the
//! deadline to the policy anyway, and needs its own clone of the request per
//! attempt; a loop over [`ToolError::is_retryable`] says the same in fewer
//! lines and keeps one place that decides.
//!
//! An attempt is retried when all of these hold:
//!
//! * its error [`is_retryable`](ToolError::is_retryable) (a retryable
//!   failure, a timeout, a rate limit; never a permission or approval denial,
//!   an open circuit, an overload, invalid arguments or a panic);
//! * fewer than [`RetryPolicy::max_attempts`] attempts were made;
//! * the wait before the next attempt ends within
//!   [`RetryPolicy::max_elapsed`] of the first attempt's start.
//!
//! The wait before attempt *n + 1* is `initial_backoff * multiplier^(n-1)`,
//! capped at `max_backoff`, with full jitter by default (a uniform draw in
//! `[0, wait]`, as AWS's "Exponential Backoff And Jitter" recommends, so
//! callers that failed together do not retry together), and at least the
//! error's `retry_after` when it has one (a 429's `Retry-After`). The last
//! error is returned as is.
//!
//! # Cancellation
//!
//! Dropping the future drops the attempt in flight, or the wait.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::call::ToolCall;
use crate::error::ToolError;

/// How to retry: attempts, backoff, jitter, total deadline.
///
/// ```
/// use std::time::Duration;
/// use warden_tools::RetryPolicy;
///
/// let policy = RetryPolicy::new(4)
///     .backoff(Duration::from_millis(100), Duration::from_secs(2))
///     .max_elapsed(Duration::from_secs(10))
///     .jitter(false);
/// assert_eq!(policy.backoff_before(2), Duration::from_millis(100));
/// assert_eq!(policy.backoff_before(3), Duration::from_millis(200));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    jitter: bool,
    max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 100 ms doubling up to 5 s with full jitter, 30 s in all.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: true,
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// At most `max_attempts` attempts in all (1 means no retry; 0 counts
    /// as 1), with the default backoff and deadline.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// The first wait and the cap on any wait.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// How much each wait grows (2.0 by default; values below 1 count as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Full jitter (the default) or none (for tests and benches).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// No retry starts later than this after the first attempt started.
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// The most attempts.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before attempt `attempt` (2 is the first retry), before jitter.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(2).min(63) as i32;
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        Duration::try_from_secs_f64(secs).map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    fn wait_before(&self, attempt: u32, error: &ToolError) -> Duration {
        let mut wait = self.backoff_before(attempt);
        if self.jitter {
            wait = wait.mul_f64(fastrand::f64());
        }
        match error.retry_after() {
            Some(after) => wait.max(after),
            None => wait,
        }
    }
}

/// Retries retryable errors by its [`RetryPolicy`]; made by [`RetryLayer`].
#[derive(Clone, Debug)]
pub struct RetryService<S> {
    inner: S,
    policy: RetryPolicy,
}

/// Wraps a service in a [`RetryService`].
#[derive(Clone, Copy, Debug)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// Retries by `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            policy: self.policy,
        }
    }
}

impl<S> Service<ToolCall> for RetryService<S>
where
    S: Service<ToolCall, Response = Value, Error = ToolError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = ToolError;
    type Future = BoxFuture<'static, Result<Value, ToolError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ToolError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ToolCall) -> Self::Future {
        let inner = self.inner.clone();
        let policy = self.policy;
        async move {
            let started = Instant::now();
            let mut attempt = 1;
            loop {
                let error = match inner.clone().oneshot(call.clone()).await {
                    Ok(value) => return Ok(value),
                    Err(error) => error,
                };
                if !error.is_retryable() || attempt >= policy.max_attempts {
                    return Err(error);
                }
                attempt += 1;
                let wait = policy.wait_before(attempt, &error);
                if started.elapsed() + wait > policy.max_elapsed {
                    return Err(error);
                }
                tracing::debug!(tool = %call.tool, call_id = %call.id, attempt, ?wait, error = %error, "retrying tool call");
                tokio::time::sleep(wait).await;
            }
        }
        .boxed()
    }
}
