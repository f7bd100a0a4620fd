//! What a supervisor reports as it works: [`SupervisorEvent`].
//!
//! Every start, failed start, exit, give-up, escalation and stop is a `tracing`
//! event (target `warden::supervisor`) carrying the child's path, and, when an
//! [`Observer`] is set on the builder, a call to it with the same event. Child
//! supervisors inherit their parent's observer unless they set their own.
//!
//! The observer is called inside the supervisor, in the order things happen:
//! keep it quick (push to a channel).

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorId;

use crate::exit::ExitReason;
use crate::factory::StartError;
use crate::path::ChildPath;
use crate::spec::ChildKind;

/// A callback that sees every [`SupervisorEvent`] of a tree.
pub type Observer = Arc<dyn Fn(&SupervisorEvent) + Send + Sync + 'static>;

/// One thing a supervisor did or saw.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// A child finished its start and is running.
    ChildStarted {
        /// The child.
        path: ChildPath,
        /// Worker or supervisor.
        kind: ChildKind,
        /// Its actor.
        actor: ActorId,
    },
    /// A start of a child failed.
    ChildStartFailed {
        /// The child.
        path: ChildPath,
        /// Worker or supervisor.
        kind: ChildKind,
        /// Why.
        error: StartError,
    },
    /// A child ended, on its own or stopped by its supervisor.
    ChildExited {
        /// The child.
        path: ChildPath,
        /// Worker or supervisor.
        kind: ChildKind,
        /// Why.
        reason: ExitReason,
    },
    /// A child is being restarted: its exit was within the restart intensity.
    /// Its start (and, under `OneForAll` and `RestForOne`, its siblings' stops
    /// and starts) follow. Every failed start that is tried again is a restart
    /// too.
    Restarting {
        /// The child.
        path: ChildPath,
        /// Worker or supervisor.
        kind: ChildKind,
        /// How many times it has been restarted, this one included.
        restart_count: u32,
    },
    /// A child's restart will run after a delay (restart backoff, or a start
    /// that failed and is tried again).
    RestartScheduled {
        /// The child.
        path: ChildPath,
        /// The delay.
        delay: Duration,
    },
    /// A killed child did not end within the supervisor's kill grace (its task
    /// is stuck in code that does not yield). It is recorded as killed (a
    /// `ChildExited` with reason `killed` follows) and left behind: its task is
    /// detached and ends when that code returns.
    ChildAbandoned {
        /// The child.
        path: ChildPath,
        /// Worker or supervisor.
        kind: ChildKind,
        /// How long the supervisor waited after the kill.
        grace: Duration,
    },
    /// A supervisor exceeded its restart intensity: it stops its children and exits.
    GaveUp {
        /// The supervisor.
        path: ChildPath,
        /// The child whose exit was one restart too many.
        child: ChildPath,
    },
    /// A supervisor received an escalation.
    Escalated {
        /// The supervisor that received it.
        at: ChildPath,
        /// Who raised it.
        origin: ChildPath,
    },
    /// A supervisor finished its own shutdown; its children are all stopped.
    Stopped {
        /// The supervisor.
        path: ChildPath,
    },
}

impl SupervisorEvent {
    /// The path this event is about (the child's, or the supervisor's own).
    pub fn path(&self) -> &ChildPath {
        match self {
            Self::ChildStarted { path, .. }
            | Self::ChildStartFailed { path, .. }
            | Self::ChildExited { path, .. }
            | Self::ChildAbandoned { path, .. }
            | Self::Restarting { path, .. }
            | Self::RestartScheduled { path, .. }
            | Self::GaveUp { path, .. }
            | Self::Stopped { path } => path,
            Self::Escalated { at, .. } => at,
        }
    }

    /// Emits this event through `tracing`.
    pub(crate) fn trace(&self) {
        const T: &str = "warden::supervisor";
        match self {
            Self::ChildStarted { path, kind, .. } => {
                tracing::debug!(target: T, path = %path, ?kind, "child started")
            }
            Self::ChildStartFailed { path, kind, error } => {
                tracing::warn!(target: T, path = %path, ?kind, %error, "child failed to start")
            }
            Self::ChildExited { path, kind, reason } => {
                if reason.is_abnormal() {
                    tracing::warn!(target: T, path = %path, ?kind, %reason, "child exited")
                } else {
                    tracing::debug!(target: T, path = %path, ?kind, %reason, "child exited")
                }
            }
            Self::ChildAbandoned { path, kind, grace } => tracing::error!(
                target: T, path = %path, ?kind, ?grace,
                "killed child did not end within the kill grace; its task is left behind"
            ),
            Self::Restarting {
                path,
                kind,
                restart_count,
            } => tracing::info!(target: T, path = %path, ?kind, restart_count, "restarting child"),
            Self::RestartScheduled { path, delay } => {
                tracing::debug!(target: T, path = %path, ?delay, "restart scheduled")
            }
            Self::GaveUp { path, child } => tracing::error!(
                target: T, path = %path, %child,
                "reached max restart intensity; stopping children and giving up"
            ),
            Self::Escalated { at, origin } => {
                tracing::warn!(target: T, path = %at, %origin, "escalation received")
            }
            Self::Stopped { path } => tracing::debug!(target: T, path = %path, "supervisor stopped"),
        }
    }
}
