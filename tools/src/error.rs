//! [`ToolError`]: every way a tool call can fail, typed, and how each goes back
//! to the model.
//!
//! A tool call never takes an agent down: whatever happens (bad arguments from
//! the model, a failing service, a panic, an open circuit, a dead executor)
//! the caller gets a `ToolError`. Each kind says in its doc whether it is
//! *transient* (the same call may succeed later) or *permanent*, and two
//! predicates sum that up for the layers that act on it:
//!
//! * [`ToolError::is_retryable`]: the retry layer tries the call again (with
//!   backoff) only for these: a failure the tool marked retryable, a timeout,
//!   a rate limit from the service.
//! * [`ToolError::is_transient`]: the call may succeed later, but not by
//!   retrying at once (an open circuit, an overloaded executor); an
//!   orchestrator may wait or re-plan.
//!
//! [`ToolError::to_model_content`] renders an error as the text a model reads
//! as the tool's result, so it can correct its arguments or change its plan.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use warden_supervisor::EscalationError;

use crate::permission::PermissionSet;
use warden_resilience::circuit_breaker::CallNotPermitted;
use warden_resilience::{Overloaded, Throttled, TimedOut, Transient};

/// A boxed error a tool returns as the cause of [`ToolError::Failed`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a tool call failed. Cheap to clone.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The arguments do not match the tool's schema. Permanent for these
    /// arguments: it goes back to the model, which should fix them.
    #[error("invalid arguments at {path}: {message}")]
    InvalidArguments {
        /// Where in the arguments, as a JSON pointer (`/headers/accept`; empty
        /// for the whole value).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The tool ran and failed. Transient when `retryable` (the tool says so:
    /// a 503, a dropped connection), permanent otherwise.
    #[error("tool failed: {source}")]
    Failed {
        /// Whether trying again may help; the retry layer only retries these.
        retryable: bool,
        /// The cause.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The call did not finish within its per-call timeout, or its caller's
    /// deadline, and was cancelled. Transient; it may have acted, so the
    /// retry layer retries it only when the call is idempotent
    /// ([`Tool::idempotent`](crate::Tool::idempotent)).
    #[error("tool call timed out after {after:?}")]
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The tool's circuit breaker is open: rejected at once without running.
    /// Transient, but retrying before `retry_after` fails the same way; the
    /// retry layer does not retry it.
    #[error("circuit breaker is open{}", RetryAfter(*.retry_after))]
    CircuitOpen {
        /// When the breaker lets a trial call through, if known.
        retry_after: Option<Duration>,
    },
    /// The executor already runs and queues as many calls as it may: rejected
    /// at once. Transient (backpressure: try later or elsewhere).
    #[error("tool is overloaded")]
    Overloaded,
    /// Too many calls: the executor's rate limit, or the service itself (an
    /// HTTP 429). Transient; the retry layer waits at least `retry_after`.
    #[error("rate limited{}", RetryAfter(*.retry_after))]
    RateLimited {
        /// When a call may go through, if known.
        retry_after: Option<Duration>,
    },
    /// The caller lacks permissions the tool requires; the tool was not
    /// called. Permanent for this caller.
    #[error("permission denied: missing {missing}")]
    PermissionDenied {
        /// The permissions the caller lacks.
        missing: PermissionSet,
    },
    /// The approval handler denied the call; the tool was not called. Permanent.
    #[error("call was denied by the approver")]
    ApprovalDenied,
    /// No approval came before the deadline; the tool was not called. Transient.
    #[error("no approval within {after:?}")]
    ApprovalTimeout {
        /// The approval deadline.
        after: Duration,
    },
    /// Approval was required but nobody could be asked (no supervisor, or
    /// nobody up the tree answers approval requests); the tool was not
    /// called. Permanent until an approval handler is installed.
    #[error("approval could not be asked: {0}")]
    ApprovalUnavailable(#[source] EscalationError),
    /// The tool panicked. The executor survives and the breaker counts it as
    /// a failure. Permanent (a bug; not retried).
    #[error("tool panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: Arc<str>,
    },
    /// The executor was not running, or died before answering (the work may
    /// or may not have been done). Transient: its supervisor restarts it.
    #[error("tool executor is down")]
    ExecutorDown,
    /// No enabled tool of that name. Permanent.
    #[error("no tool named {tool:?}")]
    NotFound {
        /// The name asked for.
        tool: Arc<str>,
    },
}

struct RetryAfter(Option<Duration>);

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, ", retry after {d:?}"),
            None => Ok(()),
        }
    }
}

impl ToolError {
    /// A failure the retry layer may retry (transient).
    pub fn retryable(source: impl Into<BoxError>) -> Self {
        Self::Failed {
            retryable: true,
            source: Arc::from(source.into()),
        }
    }

    /// A failure that trying again will not fix (permanent).
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self::Failed {
            retryable: false,
            source: Arc::from(source.into()),
        }
    }

    /// Whether the retry layer may try the call again: a retryable
    /// [`Failed`](Self::Failed), a [`Timeout`](Self::Timeout) (only for an
    /// idempotent call, see [`RetryLayer`](crate::RetryLayer)), a
    /// [`RateLimited`](Self::RateLimited).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Failed { retryable: true, .. } | Self::Timeout { .. } | Self::RateLimited { .. }
        )
    }

    /// Whether the same call may succeed later: every retryable error, plus
    /// [`CircuitOpen`](Self::CircuitOpen), [`Overloaded`](Self::Overloaded),
    /// [`ApprovalTimeout`](Self::ApprovalTimeout) and
    /// [`ExecutorDown`](Self::ExecutorDown).
    pub fn is_transient(&self) -> bool {
        self.is_retryable()
            || matches!(
                self,
                Self::CircuitOpen { .. } | Self::Overloaded | Self::ApprovalTimeout { .. } | Self::ExecutorDown
            )
    }

    /// True for [`Timeout`](Self::Timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// How long to wait before trying again, when the error says.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CircuitOpen { retry_after } | Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Whether the tool's code ran (or may have run) for this call: `false`
    /// for every rejection before the tool (arguments, permissions, approval,
    /// breaker, overload, rate limit, unknown tool).
    pub fn reached_tool(&self) -> bool {
        matches!(
            self,
            Self::Failed { .. } | Self::Timeout { .. } | Self::Panicked { .. } | Self::ExecutorDown
        )
    }

    /// A short, stable name of the kind (`"invalid_arguments"`, `"timeout"`,
    /// ...), for metrics and for the model.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidArguments { .. } => "invalid_arguments",
            Self::Failed { .. } => "failed",
            Self::Timeout { .. } => "timeout",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Overloaded => "overloaded",
            Self::RateLimited { .. } => "rate_limited",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalTimeout { .. } => "approval_timeout",
            Self::ApprovalUnavailable(_) => "approval_unavailable",
            Self::Panicked { .. } => "panicked",
            Self::ExecutorDown => "executor_down",
            Self::NotFound { .. } => "not_found",
        }
    }

    /// The text a model reads as the tool's result: the kind, the message,
    /// and whether trying again later may help.
    ///
    /// ```
    /// use warden_tools::ToolError;
    /// let e = ToolError::InvalidArguments { path: "/url".into(), message: "missing field `url`".into() };
    /// assert_eq!(e.to_model_content(), "error (invalid_arguments): invalid arguments at /url: missing field `url`");
    /// ```
    pub fn to_model_content(&self) -> String {
        let hint = match self {
            Self::InvalidArguments { .. } | Self::NotFound { .. } | Self::PermissionDenied { .. } => "",
            e if e.is_transient() => " (temporary: may succeed later)",
            _ => "",
        };
        format!("error ({}): {self}{hint}", self.kind())
    }
}

impl From<CallNotPermitted> for ToolError {
    fn from(rejected: CallNotPermitted) -> Self {
        Self::CircuitOpen {
            retry_after: rejected.retry_after,
        }
    }
}

impl From<TimedOut> for ToolError {
    fn from(timed_out: TimedOut) -> Self {
        Self::Timeout { after: timed_out.after }
    }
}

impl From<Overloaded> for ToolError {
    fn from(_: Overloaded) -> Self {
        Self::Overloaded
    }
}

impl From<Throttled> for ToolError {
    fn from(throttled: Throttled) -> Self {
        Self::RateLimited {
            retry_after: Some(throttled.retry_after),
        }
    }
}

/// What the resilience layers read of a tool error.
impl Transient for ToolError {
    /// [`is_retryable`](ToolError::is_retryable): a retryable failure, a timeout, a rate
    /// limit. (An open breaker, an overload or an approval timeout are transient too, see
    /// [`ToolError::is_transient`], but come from layers outside the retries: retrying them
    /// inside would only wait on the layer that refused.)
    fn is_transient(&self) -> bool {
        self.is_retryable()
    }

    fn retry_after(&self) -> Option<Duration> {
        ToolError::retry_after(self)
    }

    /// A rate limit (the service refused the call) and a failure the tool marked retryable
    /// (the tool vouches for it); a timed-out call may have acted.
    fn retry_is_safe(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Failed { retryable: true, .. })
    }

    /// The tool's failures, timeouts, panics and rate limits (a 429 from the service) count
    /// against its breaker; rejections that say nothing about the tool's health (arguments,
    /// permissions, approval, overload, an open breaker, an unknown tool) do not.
    fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            Self::Failed { .. }
                | Self::Timeout { .. }
                | Self::Panicked { .. }
                | Self::RateLimited { .. }
                | Self::ExecutorDown
        )
    }
}

/// What a tool call returns: the tool's output as JSON, or why it failed.
pub type ToolResult = Result<serde_json::Value, ToolError>;

/// Renders a tool call's result as the text a model reads: the output's JSON
/// (a string output as is), or [`ToolError::to_model_content`].
///
/// ```
/// use serde_json::json;
/// use warden_tools::{to_model_content, ToolError};
/// assert_eq!(to_model_content(&Ok(json!("sunny"))), "sunny");
/// assert_eq!(to_model_content(&Ok(json!({"t": 21}))), r#"{"t":21}"#);
/// assert_eq!(to_model_content(&Err(ToolError::Overloaded)), "error (overloaded): tool is overloaded (temporary: may succeed later)");
/// ```
pub fn to_model_content(result: &ToolResult) -> String {
    match result {
        Ok(serde_json::Value::String(s)) => s.clone(),
        Ok(value) => value.to_string(),
        Err(e) => e.to_model_content(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_error<T: std::error::Error + Send + Sync + Clone + 'static>() {}

    #[test]
    fn bounds() {
        is_error::<ToolError>();
    }

    #[test]
    fn predicates() {
        assert!(ToolError::retryable("x").is_retryable());
        assert!(!ToolError::permanent("x").is_retryable());
        assert!(!ToolError::permanent("x").is_transient());
        assert!(ToolError::Overloaded.is_transient() && !ToolError::Overloaded.is_retryable());
        let open = ToolError::from(CallNotPermitted::new(
            warden_resilience::circuit_breaker::CircuitState::Open,
            Some(Duration::from_secs(3)),
        ));
        assert!(!open.is_retryable() && open.is_transient());
        assert_eq!(open.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(open.to_string(), "circuit breaker is open, retry after 3s");
        assert!(
            !ToolError::PermissionDenied {
                missing: PermissionSet::new()
            }
            .reached_tool()
        );
    }
}
