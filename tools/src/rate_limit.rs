//! An optional rate limit that refuses at once with a typed
//! [`ToolError::RateLimited`] saying when to come back.
//!
//! Ours, not `tower::limit::RateLimit`: tower's makes callers wait in
//! `poll_ready` until the next period, which holds an agent's turn hostage
//! and hides why. Here a token bucket (`calls` per `per`, bursts up to
//! `calls`) lets a call through or fails it at once with the time until the
//! next token, so the agent can wait, or re-plan, knowingly. All clones of a
//! [`RateLimitService`] share one bucket.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::call::ToolCall;
use crate::error::ToolError;

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
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// Takes a token, or says how long until there is one.
    fn take(&mut self, rate: RateLimit, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(rate.calls);
        let per_token = rate.per.as_secs_f64() / capacity;
        if per_token > 0.0 {
            let earned = now.saturating_duration_since(self.refilled).as_secs_f64() / per_token;
            self.tokens = (self.tokens + earned).min(capacity);
        } else {
            self.tokens = capacity;
        }
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) * per_token))
        }
    }
}

/// Refuses calls past its rate; made by [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    rate: RateLimit,
    bucket: Arc<Mutex<Bucket>>,
}

/// Wraps a service in a [`RateLimitService`] (a new bucket per service made).
#[derive(Clone, Copy, Debug)]
pub struct RateLimitLayer {
    rate: RateLimit,
}

impl RateLimitLayer {
    /// Limits to `rate`.
    pub fn new(rate: RateLimit) -> Self {
        Self { rate }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            rate: self.rate,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(self.rate.calls),
                refilled: Instant::now(),
            })),
        }
    }
}

impl<S> Service<ToolCall> for RateLimitService<S>
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
        let taken = self
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(self.rate, Instant::now());
        match taken {
            Ok(()) => self.inner.clone().oneshot(call).boxed(),
            Err(retry_after) => futures::future::ready(Err(ToolError::RateLimited {
                retry_after: Some(retry_after),
            }))
            .boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_rate() {
        let rate = RateLimit::new(2, Duration::from_secs(1));
        let mut bucket = Bucket {
            tokens: 2.0,
            refilled: Instant::now(),
        };
        let now = Instant::now();
        assert!(bucket.take(rate, now).is_ok());
        assert!(bucket.take(rate, now).is_ok());
        let wait = bucket.take(rate, now).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(wait).await;
        assert!(bucket.take(rate, Instant::now()).is_ok());
    }
}
