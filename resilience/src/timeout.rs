//! A per-call timeout that cancels the work and keeps the error typed.
//!
//! Ours, not `tower::timeout`: tower's `Timeout` returns a `BoxError` that every caller would
//! have to downcast to tell a timeout from the service's own failure. This one is the same
//! lines over [`tokio::time::timeout`] and returns the service's own error, made
//! `From<`[`TimedOut`]`>` (a tool's `ToolError::Timeout`, a model's deadline error), which the
//! retry layer and the breaker then see like any other error.
//!
//! # Cancellation
//!
//! When the time is up the inner future is dropped: the work stops at its current `.await`
//! (an HTTP request in flight is aborted, its connection closed).

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use tower::{Layer, Service, ServiceExt};

use crate::error::TimedOut;

/// Fails a call that takes longer than its timeout; made by [`TimeoutLayer`].
#[derive(Clone, Debug)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Duration,
}

/// Wraps a service in a [`TimeoutService`].
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// Each call gets at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            timeout: self.timeout,
        }
    }
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: From<TimedOut> + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let after = self.timeout;
        let fut = self.inner.clone().oneshot(req);
        async move {
            match tokio::time::timeout(after, fut).await {
                Ok(result) => result,
                Err(_elapsed) => Err(TimedOut::new(after).into()),
            }
        }
        .boxed()
    }
}
