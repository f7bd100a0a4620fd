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
//! * trying again cannot repeat a side effect: the error is a rate limit
//!   (the service refused the call) or a failure the tool itself marked
//!   retryable (the tool vouches for it), or the call is idempotent
//!   ([`RetryLayer::idempotent_if`]; in a [`ToolStack`](crate::ToolStack),
//!   what the tool says of the call, [`Tool::idempotent`](crate::Tool::idempotent)).
//!   A timed-out call may have acted, so it is retried only when idempotent;
//! * fewer than [`RetryPolicy::max_attempts`] attempts were made;
//! * the wait is at most [`RetryPolicy::max_retry_after`] (a service asking
//!   for a longer wait gets its error back at once, with its `retry_after`);
//! * the wait before the next attempt ends within
//!   [`RetryPolicy::max_elapsed`] of the first attempt's start (checked
//!   arithmetic: no `Retry-After`, however large, can overflow it).
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

use std::fmt;
use std::sync::Arc;
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
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 100 ms doubling up to 5 s with full jitter, 30 s in all,
    /// a `retry_after` of at most 60 s honoured.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: true,
            max_elapsed: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
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

    /// The longest wait a service may ask for (a 429's `Retry-After`, 60 s
    /// by default): an error asking for more is returned at once, not
    /// waited out.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
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

    /// The wait before attempt `attempt`, or `None` when the error asks for
    /// a longer wait than [`max_retry_after`](Self::max_retry_after).
    fn wait_before(&self, attempt: u32, error: &ToolError) -> Option<Duration> {
        let mut wait = self.backoff_before(attempt);
        if self.jitter {
            // `mul_f64` panics when rounding lands past `Duration::MAX`.
            wait = Duration::try_from_secs_f64(wait.as_secs_f64() * fastrand::f64()).map_or(wait, |d| d.min(wait));
        }
        match error.retry_after() {
            Some(after) if after > self.max_retry_after => None,
            Some(after) => Some(wait.max(after)),
            None => Some(wait),
        }
    }
}

/// Whether a call is idempotent (running it twice does what running it once
/// does); see [`RetryLayer::idempotent_if`].
type Idempotent = Arc<dyn Fn(&ToolCall) -> bool + Send + Sync>;

/// Whether trying `error`'s call again cannot repeat a side effect.
fn safe_to_retry(error: &ToolError, idempotent: &Idempotent, call: &ToolCall) -> bool {
    match error {
        // The service refused the call; the tool vouches for its own retryable failures.
        ToolError::RateLimited { .. } | ToolError::Failed { retryable: true, .. } => true,
        // A timed-out call may have acted.
        _ => idempotent(call),
    }
}

/// Retries retryable errors by its [`RetryPolicy`]; made by [`RetryLayer`].
#[derive(Clone)]
pub struct RetryService<S> {
    inner: S,
    policy: RetryPolicy,
    idempotent: Idempotent,
}

impl<S: fmt::Debug> fmt::Debug for RetryService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryService")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Wraps a service in a [`RetryService`].
#[derive(Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
    idempotent: Idempotent,
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RetryLayer {
    /// Retries by `policy`, taking no call for idempotent: timeouts are not
    /// retried (see [`idempotent_if`](Self::idempotent_if)).
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            idempotent: Arc::new(|_| false),
        }
    }

    /// Which calls are idempotent, so that a timeout of theirs may be
    /// retried. A [`ToolStack`](crate::ToolStack) asks the tool
    /// ([`Tool::idempotent`](crate::Tool::idempotent)).
    pub fn idempotent_if(mut self, idempotent: impl Fn(&ToolCall) -> bool + Send + Sync + 'static) -> Self {
        self.idempotent = Arc::new(idempotent);
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            policy: self.policy,
            idempotent: self.idempotent.clone(),
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
        let idempotent = self.idempotent.clone();
        async move {
            let started = Instant::now();
            let mut attempt = 1;
            loop {
                let error = match inner.clone().oneshot(call.clone()).await {
                    Ok(value) => return Ok(value),
                    Err(error) => error,
                };
                if !error.is_retryable() || attempt >= policy.max_attempts || !safe_to_retry(&error, &idempotent, &call)
                {
                    return Err(error);
                }
                attempt += 1;
                let Some(wait) = policy.wait_before(attempt, &error) else {
                    return Err(error);
                };
                let resumes = started.elapsed().checked_add(wait);
                if resumes.is_none_or(|at| at > policy.max_elapsed) {
                    return Err(error);
                }
                tracing::debug!(tool = %call.tool, call_id = %call.id, attempt, ?wait, error = %error, "retrying tool call");
                tokio::time::sleep(wait).await;
            }
        }
        .boxed()
    }
}
