//! [`AgentEvent`]: what an agent reports as it works, for observers, tests and dashboards.
//!
//! An agent never calls its observer itself: it puts each event on a bounded queue, and a
//! task of its own (one per incarnation) hands them to the observer in order. So a slow or
//! blocking observer never holds up the agent (it ties up at most the one runtime worker
//! that runs it), a panicking one is caught and logged, and when the queue is full the
//! agent drops the event and counts it ([`AgentStatus::events_dropped`](super::AgentStatus::events_dropped),
//! then an [`AgentEventKind::EventsDropped`] once there is room again).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::error::TurnFailure;
use super::turn::Outcome;
use crate::message::MessageId;

/// A callback that sees every [`AgentEvent`] of an agent. It runs on a task of its own,
/// never inside the agent; still, it should return quickly (send the event on a channel to
/// do more), or the events behind it pile up and are dropped.
pub type AgentObserver = Arc<dyn Fn(&AgentEvent) + Send + Sync + 'static>;

/// How many events wait for a slow observer before more are dropped, by default.
pub(crate) const DEFAULT_OBSERVER_QUEUE: usize = 1024;

/// Something an agent did.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentEvent {
    /// The agent's name.
    pub agent: Arc<str>,
    /// What happened.
    pub kind: AgentEventKind,
}

/// Why a task was dropped without a turn, in [`AgentEventKind::TaskDropped`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Nobody waits for the answer any more: the ask's deadline passed, or its future was
    /// dropped, while the task was queued.
    AskerGone,
    /// The agent stopped (stopped, killed or crashed) with the task still queued.
    AgentStopped,
}

/// What happened, in an [`AgentEvent`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AgentEventKind {
    /// The agent (a new incarnation of it) started.
    Started {
        /// How many times this agent has started, this one included.
        generation: u64,
    },
    /// A turn started on a task.
    TurnStarted {
        /// The task's id.
        task: MessageId,
    },
    /// The model is called (once per iteration of a ReAct turn).
    ModelCalled {
        /// The iteration, from 1.
        iteration: u32,
    },
    /// A tool call is sent to its executor.
    ToolCalled {
        /// The call id.
        id: String,
        /// The tool.
        tool: String,
    },
    /// A tool call returned.
    ToolReturned {
        /// The call id.
        id: String,
        /// The tool.
        tool: String,
        /// Whether it failed.
        is_error: bool,
    },
    /// The agent is suspended, waiting for a human's answer.
    WaitingForHuman {
        /// The question.
        question: String,
    },
    /// A turn in flight was cut short: an interrupt, its asker gone, or its deadline.
    Interrupted {
        /// Tool calls closed with an "interrupted" result.
        closed_tool_calls: usize,
    },
    /// A turn ended.
    TurnEnded {
        /// The task's id.
        task: MessageId,
        /// How.
        end: TurnEnd,
    },
    /// A task was dropped without a turn: it never started, so it had no effect.
    TaskDropped {
        /// The task's id.
        task: MessageId,
        /// Whether it was an ask (its asker got [`AgentError::NotStarted`](super::AgentError::NotStarted))
        /// or a tell (nobody else hears of it).
        ask: bool,
        /// Why.
        reason: DropReason,
    },
    /// The observer fell behind and this many events were dropped since the last report.
    EventsDropped {
        /// Events dropped.
        count: u64,
    },
    /// The agent escalated repeated failures to its supervisor.
    Escalated {
        /// Failed turns in a row.
        consecutive_failures: u32,
    },
}

/// Where one incarnation of an agent sends its events: a bounded queue to the task that
/// runs the observer. Cheap to clone; does nothing without an observer.
/// How a turn ended, in an [`AgentEventKind::TurnEnded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TurnEnd {
    /// It finished with this outcome, and its answer went to the asker (if any).
    Finished(Outcome),
    /// It finished after its asker had stopped waiting: the answer went nowhere.
    Abandoned(Outcome),
    /// It failed.
    Failed(TurnFailure),
}

impl TurnEnd {
    /// `completed`, `interrupted`, `max_iterations`, `abandoned`, or the failure's kind, for
    /// logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished(outcome) => outcome.as_str(),
            Self::Abandoned(_) => "abandoned",
            Self::Failed(failure) => failure.as_str(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct EventSink {
    agent: Arc<str>,
    queue: Option<mpsc::Sender<AgentEvent>>,
    /// An observer called where the event happens, with no queue ([`Agent::inline_observer`](super::Agent::inline_observer)).
    inline: Option<AgentObserver>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink with no observer.
    pub(crate) fn none(agent: Arc<str>) -> Self {
        Self {
            agent,
            queue: None,
            inline: None,
            dropped: Arc::default(),
        }
    }

    /// A sink that calls `observer` itself, as each event happens.
    pub(crate) fn inline(agent: Arc<str>, observer: AgentObserver) -> Self {
        Self {
            inline: Some(observer),
            ..Self::none(agent)
        }
    }

    /// A sink feeding `observer` through a queue of `capacity` events, drained by a task
    /// that ends once every clone of the sink is gone. Must be called within a tokio runtime.
    pub(crate) fn start(agent: Arc<str>, observer: Option<AgentObserver>, capacity: usize) -> Self {
        let Some(observer) = observer else {
            return Self::none(agent);
        };
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(drain(agent.clone(), rx, observer, dropped.clone()));
        Self {
            agent,
            queue: Some(tx),
            inline: None,
            dropped,
        }
    }

    /// Queues an event for the observer, or counts it as dropped when the queue is full.
    pub(crate) fn emit(&self, kind: AgentEventKind) {
        if let Some(observer) = &self.inline {
            let event = AgentEvent {
                agent: self.agent.clone(),
                kind,
            };
            if std::panic::catch_unwind(AssertUnwindSafe(|| observer(&event))).is_err() {
                tracing::warn!(agent = %self.agent, "agent observer panicked; event skipped");
            }
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let event = AgentEvent {
            agent: self.agent.clone(),
            kind,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(event) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped so far because the observer fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Hands the queued events to the observer, one at a time, catching its panics; reports
/// drops as [`AgentEventKind::EventsDropped`].
async fn drain(agent: Arc<str>, mut rx: mpsc::Receiver<AgentEvent>, observer: AgentObserver, dropped: Arc<AtomicU64>) {
    let mut reported = 0;
    let deliver = |event: &AgentEvent| {
        if std::panic::catch_unwind(AssertUnwindSafe(|| observer(event))).is_err() {
            tracing::warn!(agent = %agent, "agent observer panicked; event skipped");
        }
    };
    while let Some(event) = rx.recv().await {
        deliver(&event);
        let total = dropped.load(Ordering::Relaxed);
        if total > reported {
            deliver(&AgentEvent {
                agent: agent.clone(),
                kind: AgentEventKind::EventsDropped {
                    count: total - reported,
                },
            });
            reported = total;
        }
    }
}
