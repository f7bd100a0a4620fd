//! What a supervisor reports as it works: [`SupervisorEvent`].
//!
//! Every start, failed start, exit, give-up, escalation and stop is a `tracing`
//! event (target `warden::supervisor`) carrying the child's path, and, when an
//! [`Observer`] is set on the builder, a call to it with the same event. Child
//! supervisors inherit their parent's observer unless they set their own.
//!
//! The observer runs in a task of its own, never inside a supervisor: each
//! supervisor puts its events, without waiting, on a bounded channel
//! ([`SupervisorBuilder::observer_capacity`](crate::SupervisorBuilder::observer_capacity))
//! that the observer's task drains, in the order things happened across the
//! whole tree that shares the observer. An observer that blocks or is slow
//! therefore stalls no restart and no API answer; when its channel is full,
//! events are dropped and counted
//! ([`Supervisor::dropped_events`](crate::Supervisor::dropped_events)), with a
//! warning when dropping starts. An observer that panics is logged and goes on
//! with the next event.
//!
//! So that a caller sees what its own call caused, the calls that change
//! children (`start_child`, `terminate_child`, ...), the start of a root
//! (`spawn`) and a supervisor's stop return once the observer has seen the
//! events emitted before their answer, waiting at most [`OBSERVER_FLUSH_GRACE`]
//! (the supervisor itself never waits for its observer).
//!
//! An observer that only hands the event on without waiting (a `try_send` into a
//! queue of its own, a counter) can skip the hop through a task:
//! [`SupervisorBuilder::inline_observer`](crate::SupervisorBuilder::inline_observer)
//! calls it right inside the supervisor, as each event happens. That saves the
//! task's wake-up per event, and is only for observers that return at once.
//! In a sequence of stops (a give-up, a group restart, `terminate_child`) a
//! child's exit is reported where its end is seen, which may be the thread
//! of the child's own task: an inline observer must not assume it runs on
//! the supervisor's task.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ractor::ActorId;
use tokio::sync::{mpsc, oneshot};

use crate::exit::ExitReason;
use crate::factory::StartError;
use crate::intensity::IntensityUsed;
use crate::path::ChildPath;
use crate::spec::ChildKind;

/// A callback that sees every [`SupervisorEvent`] of a tree.
pub type Observer = Arc<dyn Fn(&SupervisorEvent) + Send + Sync + 'static>;

/// How many events an observer's channel holds by default.
pub const DEFAULT_OBSERVER_CAPACITY: usize = 4096;

/// How long a call waits, at most, for the observer to have seen the events
/// emitted before its answer.
pub const OBSERVER_FLUSH_GRACE: Duration = Duration::from_secs(1);

/// What travels to an observer's task.
pub(crate) enum Delivery {
    Event(SupervisorEvent),
    /// Answered once everything before it was delivered.
    Flush(oneshot::Sender<()>),
}

/// Where a supervisor's events go: an observer's channel, shared by every
/// supervisor that reports to that observer (its task ends when the last sink is
/// dropped), or an inline observer, called right where the event happens.
#[derive(Clone)]
pub(crate) enum EventSink {
    /// Through a bounded channel to the observer's task.
    Queued {
        tx: mpsc::Sender<Delivery>,
        dropped: Arc<AtomicU64>,
        /// Set while events are being dropped, to warn once per overflow.
        overflowing: Arc<AtomicBool>,
    },
    /// Called inside the supervisor ([`SupervisorBuilder::inline_observer`](crate::SupervisorBuilder::inline_observer)).
    Inline(Observer),
}

impl EventSink {
    /// Starts the observer's task, on the current tokio runtime.
    pub(crate) fn start(observer: Observer, capacity: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Delivery>(capacity.max(1));
        tokio::spawn(async move {
            while let Some(delivery) = rx.recv().await {
                match delivery {
                    Delivery::Event(event) => call(&observer, &event),
                    Delivery::Flush(done) => drop(done.send(())),
                }
            }
        });
        Self::Queued {
            tx,
            dropped: Arc::default(),
            overflowing: Arc::default(),
        }
    }

    /// Hands an event on without waiting: to an inline observer at once; else onto the
    /// channel, counted as dropped if it is full.
    pub(crate) fn send(&self, event: SupervisorEvent) {
        let (tx, dropped, overflowing) = match self {
            Self::Inline(observer) => return call(observer, &event),
            Self::Queued {
                tx,
                dropped,
                overflowing,
            } => (tx, dropped, overflowing),
        };
        match tx.try_send(Delivery::Event(event)) {
            Ok(()) => overflowing.store(false, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(Delivery::Event(event))) => {
                let dropped = dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if !overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "warden::supervisor", path = %event.path(), dropped,
                        "observer is not keeping up; its events are being dropped"
                    );
                }
            }
            // The observer's task is gone: its runtime is shutting down.
            Err(_) => {}
        }
    }

    /// A marker behind the events queued so far, to wait on outside the supervisor
    /// (nothing to wait for with an inline observer: it has seen them).
    pub(crate) fn flush(&self) -> Flushed {
        match self {
            Self::Queued { tx, .. } => {
                let (done, delivered) = oneshot::channel();
                Flushed(tx.try_send(Delivery::Flush(done)).ok().map(|()| delivered))
            }
            Self::Inline(_) => Flushed(None),
        }
    }

    /// How many events were dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        match self {
            Self::Queued { dropped, .. } => dropped.load(Ordering::Relaxed),
            Self::Inline(_) => 0,
        }
    }
}

/// Calls an observer; a panic in it is logged, and the caller goes on.
fn call(observer: &Observer, event: &SupervisorEvent) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| observer(event))).is_err() {
        tracing::error!(target: "warden::supervisor", path = %event.path(), "observer panicked");
    }
}

/// Resolves once the observer has seen the events queued before it (nothing
/// to wait for if there is no observer, or its channel was full).
#[derive(Default)]
pub(crate) struct Flushed(Option<oneshot::Receiver<()>>);

impl Flushed {
    /// Waits for the observer, at most [`OBSERVER_FLUSH_GRACE`] or `limit`.
    pub(crate) async fn wait(self, limit: Option<Duration>) {
        if let Some(delivered) = self.0 {
            let grace = limit.map_or(OBSERVER_FLUSH_GRACE, |l| l.min(OBSERVER_FLUSH_GRACE));
            let _ = tokio::time::timeout(grace, delivered).await;
        }
    }
}

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
        /// The restart intensity its supervisor has used, this restart included.
        intensity: IntensityUsed,
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
    /// A significant child's own exit shut its supervisor down (see
    /// [`AutoShutdown`](crate::AutoShutdown)): it stops its other children and
    /// exits with reason `shutdown`.
    AutoShutdown {
        /// The supervisor.
        path: ChildPath,
        /// The significant child whose exit did it.
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
            | Self::AutoShutdown { path, .. }
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
                intensity,
            } => tracing::info!(
                target: T, path = %path, ?kind, restart_count,
                intensity_used = intensity.restarts, intensity_max = intensity.limit.max_restarts,
                "restarting child"
            ),
            Self::RestartScheduled { path, delay } => {
                tracing::debug!(target: T, path = %path, ?delay, "restart scheduled")
            }
            Self::GaveUp { path, child } => tracing::error!(
                target: T, path = %path, %child,
                "reached max restart intensity; stopping children and giving up"
            ),
            Self::AutoShutdown { path, child } => tracing::info!(
                target: T, path = %path, %child,
                "significant child ended; stopping children and shutting down"
            ),
            Self::Escalated { at, origin } => {
                tracing::warn!(target: T, path = %at, %origin, "escalation received")
            }
            Self::Stopped { path } => tracing::debug!(target: T, path = %path, "supervisor stopped"),
        }
    }
}
