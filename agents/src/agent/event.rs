//! [`AgentEvent`]: what an agent reports as it works, for observers, tests and dashboards.

use std::sync::Arc;

use crate::message::MessageId;

/// A callback that sees every [`AgentEvent`] of an agent. It runs inside the agent, so it
/// must return quickly (send the event on a channel to do more).
pub type AgentObserver = Arc<dyn Fn(&AgentEvent) + Send + Sync + 'static>;

/// Something an agent did.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentEvent {
    /// The agent's name.
    pub agent: Arc<str>,
    /// What happened.
    pub kind: AgentEventKind,
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
    /// An interrupt reached a turn in flight.
    Interrupted {
        /// Tool calls closed with an "interrupted" result.
        closed_tool_calls: usize,
    },
    /// A turn ended.
    TurnEnded {
        /// The task's id.
        task: MessageId,
        /// `completed`, `interrupted`, `max_iterations`, or the error kind.
        outcome: &'static str,
    },
    /// The agent escalated repeated failures to its supervisor.
    Escalated {
        /// Failed turns in a row.
        consecutive_failures: u32,
    },
}
