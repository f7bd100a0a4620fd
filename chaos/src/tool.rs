//! Faults in tool calls: a `tower::Layer` for a [`ToolStack`](warden_tools::ToolStack).
//!
//! The tools crate knows nothing of chaos; a fault plan reaches a tool as one
//! more middleware of the stack, consulted at the point `tool/<name>` just
//! before the call goes on inward. Put it last in the stack so that it sits
//! next to the tool, inside retry, timeout and the breaker: an injected failure
//! is then retried and counted exactly like a failure of the tool itself.
//!
//! ```
//! use warden_chaos::{FaultAction, FaultLayer, Faults};
//! use warden_tools::ToolStack;
//!
//! let faults = Faults::builder(7).build();
//! faults.arm("tool/search", FaultAction::Fail);
//! let stack = ToolStack::recommended().layer(FaultLayer::new(faults)).build();
//! assert!(stack.to_string().ends_with("→ FaultLayer → tool"));
//! ```

use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tower::{Layer, Service};
use warden_tools::{ToolCall, ToolError, ToolService};

use crate::Faults;

/// Consults a [`Faults`] plan at `tool/<name>` before each call goes inward:
/// an injected failure is a retryable [`ToolError::Failed`] (counted by the
/// breaker), an injected delay waits, an injected panic is a panic that the
/// stack turns into [`ToolError::Panicked`].
#[derive(Clone, Debug)]
pub struct FaultLayer {
    faults: Faults,
}

impl FaultLayer {
    /// A layer consulting `faults`.
    pub fn new(faults: Faults) -> Self {
        Self { faults }
    }
}

impl Layer<ToolService> for FaultLayer {
    type Service = FaultService;

    fn layer(&self, inner: ToolService) -> FaultService {
        FaultService {
            inner,
            faults: self.faults.clone(),
        }
    }
}

/// The service [`FaultLayer`] makes.
#[derive(Clone)]
pub struct FaultService {
    inner: ToolService,
    faults: Faults,
}

impl std::fmt::Debug for FaultService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultService")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Service<ToolCall> for FaultService {
    type Response = Value;
    type Error = ToolError;
    type Future = BoxFuture<'static, Result<Value, ToolError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ToolError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ToolCall) -> Self::Future {
        let faults = self.faults.clone();
        // The inner service was made ready for this call; a clone is not.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        async move {
            if faults.is_active() {
                let point = format!("tool/{}", call.tool);
                faults.inject(&point).await.map_err(ToolError::retryable)?;
            }
            inner.call(call).await
        }
        .boxed()
    }
}
