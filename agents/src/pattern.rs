//! Orchestration patterns built on [`ask`](crate::agent::AgentRef::ask): a sequential
//! [`Pipeline`], a [`FanOut`] that yields answers as they arrive, a broadcast [`Hub`] whose
//! members hear each other, a [`Router`] that lets a model pick the agent, an
//! [`Orchestrator`] that starts workers at run time and re-plans when one escalates, an
//! [`EvaluatorOptimizer`] loop, and a [`Debate`] with a moderator.
//!
//! Each pattern is plain async code over [`Target`](crate::registry::Target)s (agents or
//! teams), with the same exactly-once, deadline-bounded asks underneath: a stage or a branch
//! that dies or hangs is an error for that stage or branch, never a hang of the whole.

mod debate;
mod evaluator;
mod fan_out;
mod hub;
mod orchestrator;
mod pipeline;
mod router;

pub use debate::{Debate, DebateError, DebateRun};
pub use evaluator::{Attempt, Evaluation, EvaluatorError, EvaluatorOptimizer, Optimized, Stopped};
pub use fan_out::{Answered, FanOut};
pub use hub::{Hub, HubEntry, HubError, HubRound, Spoke, Turns};
pub use orchestrator::{
    FailureReason, Orchestrator, OrchestratorBuilder, OrchestratorError, OrchestratorEvent, OrchestratorRun, Plan,
    Subtask, SubtaskResult, WorkerConcern, WorkerEscalation, WorkerFailure, WorkerRequest, WorkerSpec,
};
pub use pipeline::{Pipeline, PipelineError, PipelineRun, StageFailure};
pub use router::{
    Decision, ROUTE_TOOL_PREFIX, Route, RouteBy, RouteChoice, RouteDecider, Routed, Router, RouterBuilder, RouterError,
};
