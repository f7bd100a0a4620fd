//! Workers: what the orchestrator asks a factory for ([`WorkerRequest`], [`WorkerSpec`]), what
//! their subtrees escalate ([`WorkerConcern`], [`WorkerEscalation`]), why they fail
//! ([`FailureReason`], [`WorkerFailure`]), and how a worker's escalations reach its run.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use warden_supervisor::{ChildPath, ChildSpec, Disposition, Escalation, GiveUp};
use warden_tools::circuit_breaker::CircuitOpened;

use super::plan::Subtask;
use crate::agent::{Agent, AgentError, AgentTrouble, Outcome};

/// What the orchestrator asks a worker factory for: a worker for one subtask.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerRequest {
    /// The worker's id: its number under the workers supervisor (`0`, `1`...), the last
    /// segment of its path `workers/<id>`.
    pub worker: Arc<str>,
    /// The how-manieth worker of the workers supervisor it is, from 1 (its id plus one).
    pub number: u64,
    /// The subtask it will be asked.
    pub subtask: Subtask,
}

/// What a worker factory returns: the worker's agent and what runs beside it (its tool
/// executor...), all started under the worker's own supervisor, companions first.
#[derive(Debug)]
#[non_exhaustive]
pub struct WorkerSpec {
    /// The agent asked the subtask. Its name is its child id (unique among its companions).
    pub agent: Agent,
    /// Children started before the agent, in order.
    pub companions: Vec<ChildSpec>,
}

impl WorkerSpec {
    /// A worker that is just `agent`.
    pub fn new(agent: Agent) -> Self {
        Self {
            agent,
            companions: Vec::new(),
        }
    }

    /// The same worker with a companion (started before the agent, after earlier ones).
    pub fn with(mut self, companion: ChildSpec) -> Self {
        self.companions.push(companion);
        self
    }
}

/// What a worker's subtree escalated.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WorkerConcern {
    /// A tool's circuit breaker opened.
    CircuitOpened(CircuitOpened),
    /// The agent kept failing.
    AgentTrouble(Box<AgentTrouble>),
    /// A supervisor in the worker's subtree gave up.
    GaveUp(GiveUp),
}

impl fmt::Display for WorkerConcern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CircuitOpened(c) => write!(f, "the circuit breaker of tool {} opened", c.breaker),
            Self::AgentTrouble(t) => write!(
                f,
                "agent {} failed {} turns in a row: {}",
                t.agent, t.consecutive_failures, t.error
            ),
            Self::GaveUp(g) => write!(f, "supervisor {} gave up", g.supervisor),
        }
    }
}

impl WorkerConcern {
    pub(super) fn of(escalation: &Escalation) -> Option<Self> {
        if let Some(opened) = escalation.concern::<CircuitOpened>() {
            Some(Self::CircuitOpened(opened.clone()))
        } else if let Some(trouble) = escalation.concern::<AgentTrouble>() {
            Some(Self::AgentTrouble(Box::new(trouble.clone())))
        } else {
            escalation.give_up().map(|g| Self::GaveUp(g.clone()))
        }
    }
}

/// An escalation that reached the orchestrator from a worker's subtree.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerEscalation {
    /// The worker.
    pub worker: Arc<str>,
    /// Its subtask's id.
    pub subtask: String,
    /// Who raised it (the tool executor, the agent, a supervisor).
    pub origin: ChildPath,
    /// What it is about.
    pub concern: WorkerConcern,
}

/// Why a worker failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FailureReason {
    /// Its ask failed: it went down (killed, crashed), timed out, or its turn failed.
    Ask(AgentError),
    /// It finished without completing its subtask.
    Incomplete(Outcome),
    /// Its subtree escalated while it worked; it was stopped.
    Escalated(WorkerConcern),
    /// It could not be started.
    StartFailed(String),
    /// The run had started as many workers as it may.
    OutOfWorkers,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ask(e) => write!(f, "{e}"),
            Self::Incomplete(outcome) => write!(f, "it ended {} without an answer", outcome.as_str()),
            Self::Escalated(concern) => write!(f, "escalated: {concern}"),
            Self::StartFailed(e) => write!(f, "could not start: {e}"),
            Self::OutOfWorkers => f.write_str("no worker left in the run's budget"),
        }
    }
}

/// A worker that failed, and why.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerFailure {
    /// The worker (empty when none was started).
    pub worker: Arc<str>,
    /// Its subtask.
    pub subtask: Subtask,
    /// Why.
    pub reason: FailureReason,
}

/// Where escalations from each running worker go: that worker's run.
pub(super) type Routes = Arc<Mutex<HashMap<Arc<str>, mpsc::UnboundedSender<Escalation>>>>;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The worker (`workers/<worker>/...`) an escalation comes from.
pub(super) fn worker_of<'a>(workers: &ChildPath, origin: &'a ChildPath) -> Option<&'a str> {
    let below = origin.as_str().strip_prefix(workers.as_str())?.strip_prefix('/')?;
    below.split('/').next().filter(|w| !w.is_empty())
}

/// The workers supervisor's escalation handler: a worker's concerns go to its run, the
/// rest up the tree.
pub(super) fn dispatch(routes: &Routes, workers: &ChildPath, escalation: Escalation) -> Disposition {
    if escalation.expects_answer() || WorkerConcern::of(&escalation).is_none() {
        return Disposition::Escalate(escalation);
    }
    let Some(worker) = worker_of(workers, escalation.origin()) else {
        return Disposition::Escalate(escalation);
    };
    let Some(run) = lock(routes).get(worker).cloned() else {
        return Disposition::Escalate(escalation);
    };
    match run.send(escalation) {
        Ok(()) => Disposition::Handled,
        Err(mpsc::error::SendError(escalation)) => Disposition::Escalate(escalation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalations_are_attributed_to_the_worker_below_the_pool() {
        let workers = ChildPath::root("root").join("workers");
        let tools = workers.join("3").join("tools");
        assert_eq!(worker_of(&workers, &tools), Some("3"));
        assert_eq!(worker_of(&workers, &workers.join("12")), Some("12"));
        assert_eq!(worker_of(&workers, &workers), None);
        assert_eq!(worker_of(&workers, &ChildPath::root("root").join("workersx")), None);
    }
}
