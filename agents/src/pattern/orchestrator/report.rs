//! What a run reports: its events ([`OrchestratorEvent`]), its result ([`OrchestratorRun`],
//! [`SubtaskResult`]) and its errors ([`OrchestratorError`]).

use std::sync::Arc;

use super::plan::Subtask;
use super::worker::{WorkerEscalation, WorkerFailure};
use warden_supervisor::{ChildError, NoProc};

use crate::agent::{AgentError, AgentRef, Outcome, Reply};

/// A subtask done.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SubtaskResult {
    /// The worker that did it.
    pub worker: Arc<str>,
    /// The subtask.
    pub subtask: Subtask,
    /// Its answer.
    pub reply: Reply,
}

/// What an orchestrator reports as it runs (to an [`observer`](super::OrchestratorBuilder::observer)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum OrchestratorEvent {
    /// The planner's first plan.
    Planned {
        /// Its subtasks.
        subtasks: Vec<Subtask>,
    },
    /// A worker started.
    WorkerStarted {
        /// Its id.
        worker: Arc<str>,
        /// Its subtask.
        subtask: Subtask,
        /// Its agent.
        agent: AgentRef,
    },
    /// A worker completed its subtask.
    WorkerDone {
        /// Its id.
        worker: Arc<str>,
        /// Its subtask's id.
        subtask: String,
    },
    /// An escalation from a worker's subtree reached the orchestrator.
    Escalated(WorkerEscalation),
    /// A worker failed and was stopped.
    WorkerFailed(WorkerFailure),
    /// The planner re-planned after a failure.
    Replanned {
        /// The worker whose failure it answered.
        after: Arc<str>,
        /// The subtasks it added.
        subtasks: Vec<Subtask>,
    },
    /// The synthesizer is writing the answer.
    Synthesizing {
        /// How many subtasks are done.
        results: usize,
    },
}

/// A finished run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OrchestratorRun {
    /// The synthesizer's answer.
    pub answer: Reply,
    /// The subtasks done, in the order they finished.
    pub results: Vec<SubtaskResult>,
    /// The workers that failed, in order.
    pub failures: Vec<WorkerFailure>,
    /// The escalations that reached the orchestrator, in order.
    pub escalations: Vec<WorkerEscalation>,
    /// How many times the planner re-planned.
    pub replans: u32,
    /// Re-plans that failed (the run went on without them).
    pub replan_errors: Vec<OrchestratorError>,
    /// How many workers were started.
    pub workers_started: u32,
}

/// What went wrong with an orchestrator.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// The workers supervisor could not be started.
    #[error("could not start the workers supervisor: {0}")]
    Start(ChildError),
    /// The supervisor to start it under is gone.
    #[error(transparent)]
    NoProc(#[from] NoProc),
    /// The planner's ask failed.
    #[error("planner failed: {0}")]
    Planner(AgentError),
    /// The planner's answer is not a [`Plan`](super::Plan).
    #[error("the planner's answer is not a plan: {0}")]
    InvalidPlan(String),
    /// Every subtask failed: there is nothing to synthesize.
    #[error("no subtask completed ({} failed)", .failures.len())]
    NothingCompleted {
        /// The failures.
        failures: Vec<WorkerFailure>,
    },
    /// The synthesizer's ask failed, or it did not complete.
    #[error("synthesizer failed: {0}")]
    Synthesizer(AgentError),
    /// The synthesizer finished without completing.
    #[error("synthesizer ended {} without an answer", .0.as_str())]
    NoAnswer(Outcome),
}
