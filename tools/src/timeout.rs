//! A per-call timeout that cancels the work and keeps the error typed.
//!
//! Ours, not `tower::timeout`: tower's `Timeout` returns a `BoxError` that
//! every caller would have to downcast to tell a timeout from a tool failure.
//! This one is the same 30 lines over [`tokio::time::timeout`] and returns
//! [`ToolError::Timeout`], which the retry layer retries and the breaker
//! counts as a failure.
//!
//! # Cancellation
//!
//! When the time is up the inner future is dropped: the tool's future stops
//! at its current `.await` (an HTTP request in flight is aborted, its
//! connection closed).

use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};

use crate::call::ToolCall;
use crate::error::ToolError;

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

impl<S> Service<ToolCall> for TimeoutService<S>
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
        let after = self.timeout;
        let fut = self.inner.clone().oneshot(call);
        async move {
            match tokio::time::timeout(after, fut).await {
                Ok(result) => result,
                Err(_elapsed) => Err(ToolError::Timeout { after }),
            }
        }
        .boxed()
    }
}
