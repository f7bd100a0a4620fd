//! Approval: a tool can require that each call be allowed first, by a human
//! or an orchestrator, reached through escalation.
//!
//! A tool whose [`approval`](crate::Tool::approval) is
//! [`ApprovalPolicy::Required`] has each call wait in [`ApprovalService`]: it
//! raises an [`ApprovalRequest`] up the supervision tree with
//! [`Escalator::request`] and waits for an [`ApprovalDecision`], at most the
//! policy's deadline. The wait happens in the call's own task, never in the
//! executor actor, which keeps serving other calls. The request reaches the
//! first supervisor whose escalation handler takes it (at the root, an
//! `mpsc::UnboundedSender<Escalation>` handler hands it to whoever decides):
//!
//! ```no_run
//! # async fn f(mut escalations: tokio::sync::mpsc::UnboundedReceiver<warden_supervisor::Escalation>) {
//! use warden_tools::{ApprovalDecision, ApprovalRequest};
//! while let Some(mut escalation) = escalations.recv().await {
//!     if let Some(request) = escalation.concern::<ApprovalRequest>() {
//!         let decision = if request.tool.as_ref() == "http_request" { ApprovalDecision::Allow } else { ApprovalDecision::Deny };
//!         let _ = escalation.answer(decision);
//!     }
//! }
//! # }
//! ```
//!
//! | what happened | the call gets |
//! |---|---|
//! | [`ApprovalDecision::Allow`] | it goes on to the next layer |
//! | [`ApprovalDecision::Deny`] | [`ToolError::ApprovalDenied`] |
//! | no answer within the deadline | [`ToolError::ApprovalTimeout`] |
//! | nobody to ask (no supervisor; nobody up the tree answered) | [`ToolError::ApprovalUnavailable`] |
//!
//! Denials and timeouts are audit events (target `warden::audit`). The tool
//! is not called unless the call was allowed.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};
use warden_supervisor::{EscalationError, Escalator};

use crate::call::{CallId, Caller, ToolCall};
use crate::error::ToolError;
use crate::permission::AUDIT_TARGET;

/// Whether a tool's calls must be approved first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalPolicy {
    /// Calls run without approval. The default.
    #[default]
    None,
    /// Each call waits for an approval, at most `deadline`.
    Required {
        /// How long to wait for the decision.
        deadline: Duration,
    },
}

impl ApprovalPolicy {
    /// Calls must be approved within `deadline`.
    pub fn required(deadline: Duration) -> Self {
        Self::Required { deadline }
    }
}

/// The concern raised to ask for an approval; answer it with an
/// [`ApprovalDecision`] through [`Escalation::answer`](warden_supervisor::Escalation::answer).
///
/// The approver reads the arguments from [`args`](Self::args); its `Debug`
/// leaves them out (they may hold secrets, such as an `Authorization`
/// header, and escalations reach logs), showing only their size.
#[derive(Clone)]
#[non_exhaustive]
pub struct ApprovalRequest {
    /// The call's id.
    pub call_id: CallId,
    /// The tool to be called.
    pub tool: Arc<str>,
    /// Who calls.
    pub caller: Caller,
    /// The arguments, as the model gave them.
    pub args: Arc<Value>,
}

impl fmt::Debug for ApprovalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalRequest")
            .field("call_id", &self.call_id)
            .field("tool", &self.tool)
            .field("caller", &self.caller)
            .field("args", &crate::call::Redacted(&self.args))
            .finish()
    }
}

/// The answer to an [`ApprovalRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Run the call.
    Allow,
    /// Do not run it; the caller gets [`ToolError::ApprovalDenied`].
    Deny,
}

/// Waits for an approval before each call; made by [`ApprovalLayer`].
#[derive(Clone, Debug)]
pub struct ApprovalService<S> {
    inner: S,
    deadline: Duration,
    escalator: Option<Escalator>,
}

/// Wraps a service in an [`ApprovalService`].
#[derive(Clone, Debug)]
pub struct ApprovalLayer {
    deadline: Duration,
    escalator: Option<Escalator>,
}

impl ApprovalLayer {
    /// Asks through `escalator` (or, with `None`, fails every call with
    /// [`ToolError::ApprovalUnavailable`]), waiting at most `deadline`.
    pub fn new(escalator: Option<Escalator>, deadline: Duration) -> Self {
        Self { deadline, escalator }
    }
}

impl<S> Layer<S> for ApprovalLayer {
    type Service = ApprovalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApprovalService {
            inner,
            deadline: self.deadline,
            escalator: self.escalator.clone(),
        }
    }
}

impl<S> Service<ToolCall> for ApprovalService<S>
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
        let escalator = self.escalator.clone();
        let deadline = self.deadline;
        async move {
            let Some(escalator) = escalator else {
                return Err(ToolError::ApprovalUnavailable(EscalationError::SupervisorDown));
            };
            let request = ApprovalRequest {
                call_id: call.id.clone(),
                tool: call.tool.clone(),
                caller: call.caller.clone(),
                args: call.args.clone(),
            };
            let decision = escalator.request::<_, ApprovalDecision>(request, deadline).await;
            let denied = match decision {
                Ok(ApprovalDecision::Allow) => return inner.oneshot(call).await,
                Ok(ApprovalDecision::Deny) => ToolError::ApprovalDenied,
                Err(EscalationError::Timeout) => ToolError::ApprovalTimeout { after: deadline },
                Err(e) => ToolError::ApprovalUnavailable(e),
            };
            tracing::warn!(
                target: AUDIT_TARGET,
                caller = %call.caller.name,
                tool = %call.tool,
                call_id = %call.id,
                outcome = denied.kind(),
                "tool call not approved"
            );
            Err(denied)
        }
        .boxed()
    }
}
