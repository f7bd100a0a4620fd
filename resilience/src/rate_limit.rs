//! A rate limit (a token bucket) that a caller waits on for a bounded time, or is refused by
//! at once with a typed [`Throttled`] saying when to come back.
//!
//! Ours, not `tower::limit::RateLimit`: tower's makes callers wait in `poll_ready` for as long
//! as it takes, which holds an agent's turn hostage and hides why. Here a call waits at most
//! its layer's [`max_wait`](RateLimitLayer::max_wait) (none by default) and is otherwise
//! refused at once with the time until its permit, so the caller can wait, or re-plan,
//! knowingly.
//!
//! A [`RateLimiter`] is the bucket: `calls` per `per`, bursts up to `calls`. Clones share it,
//! so one limiter given to many layers (every agent's model client, every executor of a tool
//! behind one API key) holds them all to one rate. Waiting callers reserve their permits in
//! the order they came (first come, first served), so nobody starves.
//!
//! A service can tell the limiter it was throttled anyway
//! ([`RateLimiter::exhaust_for`]: a 429 with `Retry-After`), and calls then wait or are refused
//! until then, instead of storming it.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::error::Throttled;

/// `calls` per `per`, with bursts of up to `calls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    calls: u32,
    per: Duration,
}

impl RateLimit {
    /// At most `calls` (at least 1) per `per`.
    pub fn new(calls: u32, per: Duration) -> Self {
        Self {
            calls: calls.max(1),
            per,
        }
    }

    /// The calls allowed per period.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The period.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Seconds per token (0 for an unlimited rate: a zero period).
    fn secs_per_token(&self) -> f64 {
        self.per.as_secs_f64() / f64::from(self.calls)
    }
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available; negative when callers have reserved tokens still to come.
    tokens: f64,
    refilled: Instant,
}

/// A shared token bucket: `calls` per `per`. Cheap to clone; clones share the bucket.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use warden_resilience::{RateLimit, RateLimiter};
///
/// let limiter = RateLimiter::new(RateLimit::new(2, Duration::from_secs(1)));
/// assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
/// assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
/// // The third call would wait 500 ms for its token: refused without waiting...
/// assert_eq!(limiter.reserve(1, Duration::ZERO).unwrap_err().retry_after, Duration::from_millis(500));
/// // ...or reserved, by a caller willing to wait a second.
/// assert_eq!(limiter.reserve(1, Duration::from_secs(1)), Ok(Duration::from_millis(500)));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RateLimiter {
    rate: RateLimit,
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimiter {
    /// A full bucket for `rate`.
    pub fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(rate.calls),
                refilled: Instant::now(),
            })),
        }
    }

    /// The rate.
    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Reserves `cost` tokens. `Ok(wait)`: they are the caller's once `wait` has passed (zero:
    /// now); the caller must wait that long before acting. `Err`: they would come later than
    /// `max_wait`, and nothing was taken.
    pub fn reserve(&self, cost: u32, max_wait: Duration) -> Result<Duration, Throttled> {
        let per_token = self.rate.secs_per_token();
        if per_token <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let capacity = f64::from(self.rate.calls);
        let earned = now.saturating_duration_since(bucket.refilled).as_secs_f64() / per_token;
        bucket.tokens = (bucket.tokens + earned).min(capacity);
        bucket.refilled = now;
        let left = bucket.tokens - f64::from(cost);
        if left >= 0.0 {
            bucket.tokens = left;
            return Ok(Duration::ZERO);
        }
        // A wait too long for a `Duration` is as good as forever.
        let wait = Duration::try_from_secs_f64(-left * per_token).unwrap_or(Duration::MAX);
        if wait > max_wait {
            return Err(Throttled { retry_after: wait });
        }
        bucket.tokens = left;
        Ok(wait)
    }

    /// No token for `period` from now (the service said it is throttled: a 429 with a
    /// `Retry-After`, or a header saying none is left until a reset). Tokens already due later
    /// than that stay as they are.
    pub fn exhaust_for(&self, period: Duration) {
        let per_token = self.rate.secs_per_token();
        if per_token <= 0.0 {
            return;
        }
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let capacity = f64::from(self.rate.calls);
        let earned = now.saturating_duration_since(bucket.refilled).as_secs_f64() / per_token;
        bucket.tokens = (bucket.tokens + earned).min(capacity);
        bucket.refilled = now;
        // Clamped so that a huge period cannot make the count meaningless.
        let owed = (period.as_secs_f64() / per_token).min(f64::from(u32::MAX));
        bucket.tokens = bucket.tokens.min(-owed);
        tracing::debug!(?period, "rate limiter exhausted until the service's reset");
    }
}

/// Limits calls by its [`RateLimiter`]; made by [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
    max_wait: Duration,
}

/// Wraps a service in a [`RateLimitService`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    rate: RateLimit,
    shared: Option<RateLimiter>,
    max_wait: Duration,
}

impl RateLimitLayer {
    /// Limits each service it makes to `rate`, with a bucket of its own (clones of that
    /// service share it). A call past the rate is refused at once.
    pub fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            shared: None,
            max_wait: Duration::ZERO,
        }
    }

    /// Limits every service it makes by `limiter`, shared with whoever else holds a clone.
    pub fn shared(limiter: RateLimiter) -> Self {
        Self {
            rate: limiter.rate(),
            shared: Some(limiter),
            max_wait: Duration::ZERO,
        }
    }

    /// A call waits up to `max_wait` for its permit, in the order calls came, before it is
    /// refused with [`Throttled`] (zero by default: refused at once).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.shared.clone().unwrap_or_else(|| RateLimiter::new(self.rate)),
            max_wait: self.max_wait,
        }
    }
}

impl<S, Req> Service<Req> for RateLimitService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: From<Throttled> + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limiter.reserve(1, self.max_wait) {
            Ok(Duration::ZERO) => self.inner.clone().oneshot(req).boxed(),
            Ok(wait) => {
                let inner = self.inner.clone();
                async move {
                    tokio::time::sleep(wait).await;
                    inner.oneshot(req).await
                }
                .boxed()
            }
            Err(throttled) => futures::future::ready(Err(throttled.into())).boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_rate() {
        let limiter = RateLimiter::new(RateLimit::new(2, Duration::from_secs(1)));
        assert!(limiter.reserve(1, Duration::ZERO).is_ok());
        assert!(limiter.reserve(1, Duration::ZERO).is_ok());
        let wait = limiter.reserve(1, Duration::ZERO).unwrap_err().retry_after;
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(wait).await;
        assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_reserve_in_order() {
        let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(1)));
        assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
        let max = Duration::from_secs(10);
        assert_eq!(limiter.reserve(1, max), Ok(Duration::from_secs(1)));
        assert_eq!(limiter.reserve(1, max), Ok(Duration::from_secs(2)));
        // Refused reservations take nothing.
        assert!(limiter.reserve(1, Duration::from_millis(2500)).is_err());
        assert_eq!(limiter.reserve(1, max), Ok(Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausting_holds_every_caller_until_the_reset() {
        let limiter = RateLimiter::new(RateLimit::new(100, Duration::from_secs(1)));
        limiter.exhaust_for(Duration::from_secs(2));
        let refused = limiter.reserve(1, Duration::ZERO).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(2) - Duration::from_millis(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limiter.reserve(1, Duration::from_millis(20)).is_ok());
        // Huge or zero periods neither panic nor wedge the limiter forever.
        limiter.exhaust_for(Duration::MAX);
        assert!(limiter.reserve(1, Duration::ZERO).is_err());
        let unlimited = RateLimiter::new(RateLimit::new(1, Duration::ZERO));
        unlimited.exhaust_for(Duration::MAX);
        assert_eq!(unlimited.reserve(u32::MAX, Duration::ZERO), Ok(Duration::ZERO));
    }
}
