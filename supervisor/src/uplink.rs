//! What a supervisor owes the rest of the tree, kept apart from how it keeps
//! its children: events to its observer, escalations to its handler and then
//! its parent, and, once it gave up, the report its parent gets with its exit.
//!
//! Used by the [`DynamicSupervisor`](crate::DynamicSupervisor); it follows the
//! same protocol as the regular supervisor's state (`supervisor/state.rs`),
//! which keeps its own copy of these fields for now.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use ractor::ActorRef;

use crate::escalation::{ChildFailure, Disposition, Escalation, EscalationHandler, GiveUp};
use crate::event::{EventSink, Flushed, SupervisorEvent};
use crate::exit::ExitReason;
use crate::intensity::Intensity;
use crate::path::ChildPath;
use crate::supervisor::SupervisorMsg;

/// How many recent restart-causing exits a give-up report carries.
const RECENT_FAILURES: usize = 16;

/// A supervisor's line to its observer, its handler and its parent.
pub(crate) struct Uplink {
    path: ChildPath,
    parent: Option<ActorRef<SupervisorMsg>>,
    handler: Option<Arc<dyn EscalationHandler>>,
    observer: Option<EventSink>,
    recent_failures: VecDeque<ChildFailure>,
    /// Escalations to pass on to the parent at the end of the current turn.
    outbox: Vec<Escalation>,
    /// Set once the supervisor gave up; it then only drains escalations.
    giving_up: bool,
    /// What a supervisor that gave up hands its parent with its exit (in its
    /// final state, so that the exit event cannot overtake them).
    last_words: Vec<Escalation>,
}

impl Uplink {
    pub(crate) fn new(
        path: ChildPath,
        parent: Option<ActorRef<SupervisorMsg>>,
        handler: Option<Arc<dyn EscalationHandler>>,
        observer: Option<EventSink>,
    ) -> Self {
        Self {
            path,
            parent,
            handler,
            observer,
            recent_failures: VecDeque::new(),
            outbox: Vec::new(),
            giving_up: false,
            last_words: Vec::new(),
        }
    }

    /// The supervisor's own path.
    pub(crate) fn path(&self) -> &ChildPath {
        &self.path
    }

    /// The observer, handed down to child supervisors.
    pub(crate) fn observer(&self) -> Option<&EventSink> {
        self.observer.as_ref()
    }

    /// Whether the supervisor gave up and is on its way out.
    pub(crate) fn is_giving_up(&self) -> bool {
        self.giving_up
    }

    /// What the supervisor had to pass on when it exited.
    pub(crate) fn into_last_words(self) -> Vec<Escalation> {
        self.last_words
    }

    /// Reports an event through `tracing` and queues it for the observer
    /// (which runs in a task of its own; see [`EventSink`]).
    pub(crate) fn emit(&self, event: SupervisorEvent) {
        event.trace();
        if let Some(observer) = &self.observer {
            observer.send(event);
        }
    }

    /// A marker behind the events emitted so far, for a caller to wait on.
    pub(crate) fn flush(&self) -> Flushed {
        self.observer.as_ref().map(EventSink::flush).unwrap_or_default()
    }

    /// How many events the observer's channel dropped so far.
    pub(crate) fn dropped_events(&self) -> u64 {
        self.observer.as_ref().map_or(0, EventSink::dropped)
    }

    /// Remembers an exit that leads to a restart, for a later give-up report.
    pub(crate) fn record_failure(&mut self, path: ChildPath, reason: ExitReason) {
        if self.recent_failures.len() == RECENT_FAILURES {
            self.recent_failures.pop_front();
        }
        self.recent_failures.push_back(ChildFailure::now(path, reason));
    }

    /// Offers an escalation to the handler, then passes it on.
    pub(crate) fn dispatch(&mut self, escalation: Escalation) {
        self.emit(SupervisorEvent::Escalated {
            at: self.path.clone(),
            origin: escalation.origin().clone(),
        });
        let mut escalation = match &self.handler {
            None => escalation,
            Some(handler) => match std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(escalation))) {
                Ok(Disposition::Handled) => return,
                Ok(Disposition::Escalate(e)) => e,
                Err(_) => {
                    tracing::error!(target: "warden::supervisor", path = %self.path, "escalation handler panicked; the escalation is lost");
                    return;
                }
            },
        };
        escalation.passed_through(&self.path);
        if self.parent.is_some() {
            self.outbox.push(escalation);
        } else {
            tracing::error!(target: "warden::supervisor", path = %self.path, %escalation, "unhandled escalation reached the root");
        }
    }

    /// Ends a turn: sends what is to be passed on, or keeps it for the exit.
    pub(crate) fn end_turn(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if self.giving_up {
            self.last_words.append(&mut self.outbox);
            return;
        }
        let Some(parent) = &self.parent else {
            self.outbox.clear();
            return;
        };
        for escalation in self.outbox.drain(..) {
            if let Err(ractor::MessagingErr::SendErr(SupervisorMsg::Escalate(e))) =
                parent.send_message(SupervisorMsg::Escalate(escalation))
            {
                tracing::error!(target: "warden::supervisor", path = %self.path, escalation = %e, "parent is gone; escalation dropped");
            }
        }
    }

    /// The supervisor gave up because of `child`'s exit with `reason` (its
    /// children are already stopped): reports it to its parent with its exit,
    /// or to its own handler when it is a root.
    pub(crate) fn give_up(&mut self, intensity: Intensity, child: ChildPath, reason: ExitReason) {
        let now = SystemTime::now();
        let recent_failures = self
            .recent_failures
            .drain(..)
            .filter(|f| now.duration_since(f.at).map_or(true, |age| age <= intensity.period))
            .collect();
        let escalation = Escalation::gave_up(GiveUp {
            supervisor: self.path.clone(),
            intensity,
            child,
            reason,
            recent_failures,
        });
        self.giving_up = true;
        if self.parent.is_some() {
            self.last_words.append(&mut self.outbox);
            self.last_words.push(escalation);
        } else {
            self.dispatch(escalation);
        }
    }
}
