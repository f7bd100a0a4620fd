//! Why a child stopped, translated once from ractor's supervision events.
//!
//! ractor reports a child's end as a [`SupervisionEvent`]: `ActorFailed` for a
//! panic or an error returned from a handler, `ActorTerminated` with an optional
//! stop reason otherwise. `ExitReason::from_event` is the one place that reads
//! those events and their reason strings; everything else matches on
//! [`ExitReason`].
//!
//! Whether an exit is normal (OTP's mapping) is decided in one place:
//! [`ExitReason`]'s docs give the table.

use std::fmt;
use std::sync::Arc;

use ractor::actor::messages::BoxedState;
use ractor::{ActorCell, ActorProcessingErr, SupervisionEvent};
use serde::{Serialize, Serializer};

/// The stop reason a supervisor sends to a child it shuts down, as OTP's `shutdown`.
pub(crate) const SHUTDOWN: &str = "shutdown";
/// The stop reason ractor reports for a killed actor.
const KILLED: &str = "killed";
/// The stop reason ractor reports when an actor's task was dropped by its runtime.
const TASK_CANCELLED: &str = "actor_task_cancelled";

/// Why a child stopped.
///
/// # Normal and abnormal exits
///
/// The mapping follows OTP's: only `normal`, `shutdown` and `{shutdown, _}` are
/// normal exits, after which a [`Restart::Transient`](crate::Restart) child is
/// not restarted; every other reason is abnormal. This is the one place that
/// decides it ([`is_normal`](Self::is_normal)).
///
/// | ractor stop reason                     | [`ExitReason`]              | normal? |
/// |----------------------------------------|-----------------------------|---------|
/// | none, `"normal"`                       | [`ExitReason::Normal`]      | yes     |
/// | `"shutdown"`, `"shutdown: ..."`        | [`ExitReason::Shutdown`]    | yes     |
/// | `"killed"`, a task dropped by tokio    | [`ExitReason::Killed`]      | no      |
/// | any other reason (`"finished"`)        | [`ExitReason::Stopped`]     | no      |
/// | a panic, an error from a handler       | [`ExitReason::Failed`]      | no      |
///
/// An actor that wants to end without being restarted as a transient child stops
/// with no reason (`myself.stop(None)`), with `"normal"`, or with a reason that
/// starts with `"shutdown: "`, as an OTP process exits with `{shutdown, Info}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// The child stopped itself without a reason (`myself.stop(None)`), or with `"normal"`.
    Normal,
    /// The child was shut down (reason `"shutdown"` or `"shutdown: ..."`), by its
    /// supervisor or on its own.
    Shutdown,
    /// The child stopped gracefully with a reason of its own (not `normal` nor
    /// `shutdown`). An abnormal exit, as in OTP: a transient child is restarted.
    Stopped(Arc<str>),
    /// The child was killed: untrappably from outside, or after its shutdown
    /// timeout ran out. An abnormal exit.
    Killed,
    /// The child panicked or returned an error from a handler. An abnormal exit.
    Failed(Failure),
}

impl ExitReason {
    /// True for `Normal` and `Shutdown`: exits a transient child is not restarted after.
    pub fn is_normal(&self) -> bool {
        matches!(self, Self::Normal | Self::Shutdown)
    }

    /// True for `Stopped`, `Killed` and `Failed`.
    pub fn is_abnormal(&self) -> bool {
        !self.is_normal()
    }

    /// Reads a ractor stop reason. This and the translation of supervision events are the
    /// only places that compare reason strings.
    pub fn from_stop_reason(reason: Option<&str>) -> Self {
        match reason {
            None | Some("normal") => Self::Normal,
            Some(KILLED) | Some(TASK_CANCELLED) => Self::Killed,
            Some(r) if r == SHUTDOWN || r.starts_with("shutdown:") => Self::Shutdown,
            Some(r) => Self::Stopped(Arc::from(r)),
        }
    }

    /// Translates a supervision event: the one place that matches on
    /// [`SupervisionEvent`]. An end becomes [`EventKind::Exit`]; anything else is
    /// handed back to be logged.
    pub(crate) fn from_event(event: SupervisionEvent) -> EventKind {
        match event {
            SupervisionEvent::ActorTerminated(cell, state, reason) => EventKind::Exit {
                reason: Self::from_stop_reason(reason.as_deref()),
                cell,
                state,
            },
            SupervisionEvent::ActorFailed(cell, err) => EventKind::Exit {
                cell,
                reason: Self::failed(err),
                state: None,
            },
            SupervisionEvent::ActorStarted(_) => EventKind::Started,
            other => EventKind::Other(other),
        }
    }

    /// Reads how an actor ended from a supervision event about it, with the same
    /// mapping a [`Supervisor`](crate::Supervisor) uses: for code that supervises
    /// actors of its own with ractor's links (a cluster node hosting remote children,
    /// say). Events that are not an end are handed back.
    ///
    /// # Errors
    ///
    /// The event itself when it is not `ActorTerminated` or `ActorFailed`.
    pub fn from_supervision_event(event: SupervisionEvent) -> Result<(ActorCell, Self), SupervisionEvent> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => Ok((cell, Self::from_stop_reason(reason.as_deref()))),
            SupervisionEvent::ActorFailed(cell, err) => Ok((cell, Self::failed(err))),
            other => Err(other),
        }
    }

    /// Turns the error of an `ActorFailed` event into a reason without formatting it.
    pub fn failed(err: ActorProcessingErr) -> Self {
        Self::Failed(Failure(Arc::from(err)))
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Stopped(r) => write!(f, "stopped: {r}"),
            Self::Killed => f.write_str("killed"),
            Self::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

impl Serialize for ExitReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A supervision event, translated.
pub(crate) enum EventKind {
    /// A child ended.
    Exit {
        /// The child that ended.
        cell: ActorCell,
        /// Why.
        reason: ExitReason,
        /// Its final state, when it stopped gracefully (a child supervisor's
        /// escalation travels in it).
        state: Option<BoxedState>,
    },
    /// A child finished `post_start` (the supervisor already knows: it waited for the start).
    Started,
    /// Anything else (process-group changes).
    Other(SupervisionEvent),
}

/// The error a child failed with: a panic's message or the error a handler
/// returned. Cheap to clone; formatted only when displayed, so the restart path
/// never pays for it.
#[derive(Clone)]
pub struct Failure(pub(crate) Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Failure {
    /// A failure from any error.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(err))
    }

    /// The underlying error, for downcasting.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Failure {}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons() {
        assert_eq!(ExitReason::from_stop_reason(None), ExitReason::Normal);
        assert_eq!(ExitReason::from_stop_reason(Some("shutdown")), ExitReason::Shutdown);
        assert_eq!(
            ExitReason::from_stop_reason(Some("shutdown: done")),
            ExitReason::Shutdown
        );
        assert_eq!(ExitReason::from_stop_reason(Some("killed")), ExitReason::Killed);
        assert_eq!(
            ExitReason::from_stop_reason(Some("finished")),
            ExitReason::Stopped("finished".into())
        );
        assert!(ExitReason::from_stop_reason(Some("finished")).is_abnormal());
        assert!(ExitReason::from_stop_reason(Some("shutdownish")).is_abnormal());
        assert!(ExitReason::from_stop_reason(Some("normal")).is_normal());
        assert!(ExitReason::failed("boom".into()).is_abnormal());
    }
}
