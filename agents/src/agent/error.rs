//! What goes wrong when asking an agent ([`AgentError`]), inside a turn ([`TurnError`]), and
//! what an agent that keeps failing escalates ([`AgentTrouble`]).

use std::sync::Arc;
use std::time::Duration;

use warden_supervisor::{ChildPath, EscalationError, RequestError};
use warden_tools::ToolError;

use crate::message::{Address, AgentMessage};
use crate::model::ModelError;

/// Why an [`ask`](super::AgentRef::ask) (or a `tell`, or a control call) got no reply.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent was not running when the message was sent: it was never delivered and
    /// had no effect. Transient: its supervisor restarts it.
    #[error("agent {0} is not running; message not delivered")]
    NotDelivered(Arc<str>),
    /// The agent stopped (killed, crashed, shut down) while working on the task, before it
    /// answered. Transient; the work may or may not have been done (it may have acted).
    #[error("agent {0} went down before answering")]
    AgentDown(Arc<str>),
    /// The agent stopped (killed, crashed, shut down) before it started the task: the task
    /// was delivered but never run, so it had no effect and is safe to send again.
    /// Transient: its supervisor restarts it.
    #[error("agent {0} stopped before starting the task; it had no effect")]
    NotStarted(Arc<str>),
    /// The agent's queue was full ([`Agent::queue_capacity`](super::Agent::queue_capacity)):
    /// the task was not sent and is handed back. Transient: try again later, elsewhere, or
    /// shed it.
    #[error("agent {agent} is overloaded: its queue of {capacity} tasks is full")]
    Overloaded {
        /// The agent.
        agent: Arc<str>,
        /// Its queue's capacity.
        capacity: usize,
        /// The task, handed back.
        task: Box<AgentMessage>,
    },
    /// No answer within the deadline. The agent may still do the work.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// No agent or team has that address.
    #[error("no agent or team at {0}")]
    NoSuchAddress(Address),
    /// A team had no member to route to (none, or the routing function chose none).
    #[error("team {0} has no member to route to")]
    NoRoute(Arc<str>),
    /// The agent ran the task and the turn failed.
    #[error("turn failed: {0}")]
    Turn(#[from] TurnError),
    /// The agent has no journal: [`submit`](super::AgentRef::submit) and
    /// [`result`](super::AgentRef::result) need one ([`Agent::journal`](super::Agent::journal)).
    #[error("agent {0} is not durable (it has no journal)")]
    NotDurable(Arc<str>),
    /// The journal failed: the task was not accepted (on submit), or its result cannot be read.
    #[error("journal: {0}")]
    Journal(Arc<warden_durable::JournalError>),
    /// A durable task ended with an error; read from the journal, so only its kind and message
    /// are left of it.
    #[error("task {task} failed ({kind}): {message}")]
    TaskFailed {
        /// The task.
        task: warden_durable::TaskId,
        /// The turn error's kind ([`TurnError::kind`]).
        kind: String,
        /// The turn error's message.
        message: String,
    },
    /// The agent runs on another node ([`AgentRef::remote`](super::AgentRef::remote)), and
    /// that node was lost before it answered: the task may or may not have run there (make
    /// the agent durable to know). Transient: its supervisor places it again.
    #[error("the node of agent {0} was lost before it answered")]
    NodeDown(Arc<str>),
    /// The agent runs on another node and failed there: the error's
    /// [`kind`](Self::kind) and text, as they crossed (`codec` when the task or its answer
    /// could not cross at all).
    #[error("agent {agent} ({kind}): {message}")]
    Remote {
        /// The agent.
        agent: Arc<str>,
        /// The error's kind on its node ([`AgentError::kind`]), or `codec`.
        kind: String,
        /// The error's text.
        message: String,
    },
}

impl AgentError {
    /// A short stable name of the error's kind, for logs and for errors that cross a process
    /// (a turn's failure gives its turn error's [`kind`](TurnError::kind)).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotDelivered(_) => "not_delivered",
            Self::AgentDown(_) => "agent_down",
            Self::NotStarted(_) => "not_started",
            Self::Overloaded { .. } => "overloaded",
            Self::Timeout(_) => "timeout",
            Self::NoSuchAddress(_) => "no_such_address",
            Self::NoRoute(_) => "no_route",
            Self::Turn(turn) => turn.kind(),
            Self::NotDurable(_) => "not_durable",
            Self::Journal(_) => "journal",
            Self::TaskFailed { .. } => "task_failed",
            Self::NodeDown(_) => "node_down",
            Self::Remote { .. } => "remote",
        }
    }

    pub(crate) fn from_request(agent: &Arc<str>, e: RequestError) -> Self {
        match e {
            RequestError::Timeout(d) => Self::Timeout(d),
            RequestError::NotDelivered => Self::NotDelivered(agent.clone()),
            _ => Self::AgentDown(agent.clone()),
        }
    }

    /// Whether the message certainly had no effect (it was not delivered, or delivered and
    /// never started), so sending it again cannot do the work twice.
    pub fn was_not_delivered(&self) -> bool {
        matches!(
            self,
            Self::NotDelivered(_)
                | Self::NotStarted(_)
                | Self::NoSuchAddress(_)
                | Self::NoRoute(_)
                | Self::NotDurable(_)
                | Self::Overloaded { .. }
        ) || matches!(self, Self::Remote { kind, .. } if REMOTE_NOT_DELIVERED.contains(&kind.as_str()))
    }

    /// Whether trying again (on the restarted agent, or later) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NotDelivered(_)
            | Self::NotStarted(_)
            | Self::AgentDown(_)
            | Self::Timeout(_)
            | Self::Overloaded { .. } => true,
            Self::Turn(e) => e.is_transient(),
            Self::Journal(_) => true,
            Self::NodeDown(_) => true,
            Self::Remote { kind, .. } => REMOTE_TRANSIENT.contains(&kind.as_str()),
            Self::NoSuchAddress(_) | Self::NoRoute(_) | Self::NotDurable(_) | Self::TaskFailed { .. } => false,
        }
    }
}

/// The kinds of errors that, on the agent's own node, mean the task had no effect.
const REMOTE_NOT_DELIVERED: &[&str] = &[
    "not_delivered",
    "not_started",
    "no_such_address",
    "no_route",
    "not_durable",
    "overloaded",
];

/// The kinds of errors that, on the agent's own node, may pass if tried again (a model's or
/// tool's failure is not among them: whether it would pass did not cross).
const REMOTE_TRANSIENT: &[&str] = &[
    "not_delivered",
    "not_started",
    "agent_down",
    "timeout",
    "overloaded",
    "journal",
    "node_down",
    "deadline_exceeded",
    "human_timeout",
];

/// Why a turn failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    /// The model call failed (after the model's own retries and fallback).
    #[error("model call failed: {0}")]
    Model(Arc<ModelError>),
    /// A tool failed this many times in a row within the turn, and the agent gave up.
    #[error("tool {tool} failed {failures} times in a row: {last_error}")]
    ToolFailing {
        /// The tool.
        tool: String,
        /// How many failures in a row.
        failures: u32,
        /// The last error.
        last_error: ToolError,
    },
    /// The turn ran past its deadline ([`Agent::turn_deadline`](super::Agent::turn_deadline))
    /// and was cut short, its open tool calls closed as on an interrupt. Transient.
    #[error("turn ran past its deadline of {0:?}")]
    DeadlineExceeded(Duration),
    /// A human was asked and did not answer before the deadline.
    #[error("no human answer within {0:?}")]
    HumanTimeout(Duration),
    /// The final answer did not match the structured-output schema, also after a repair round.
    #[error("structured output invalid: {0}")]
    StructuredOutputInvalid(String),
    /// The task had no text or image to work on.
    #[error("the task has no text or image content")]
    EmptyTask,
    /// Escalating failed (the supervisor is gone).
    #[error("escalation failed: {0}")]
    Escalation(EscalationError),
    /// The turn panicked (the agent caught it and lives on).
    #[error("turn panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: Arc<str>,
    },
    /// A durable turn's step that must not run twice was started before a crash and has no
    /// result: it may or may not have acted, so it is not run again (escalated at once).
    #[error("outcome of step {step} ({name}) is unknown: it was in flight at a crash and is not idempotent")]
    OutcomeUnknown {
        /// The step.
        step: warden_durable::StepId,
        /// The step's name (the tool's).
        name: String,
    },
    /// A replayed durable turn asked for another step than the one recorded at that index:
    /// the code between steps is not deterministic (see [`durable`](super::durable)).
    #[error("journal divergence at step {step}: recorded {recorded}, asked for {requested}")]
    JournalDivergence {
        /// The step.
        step: warden_durable::StepId,
        /// What the journal has there (`tool send_email`).
        recorded: String,
        /// What the replay asked for.
        requested: String,
    },
    /// The journal failed (a store error, a damaged record).
    #[error("journal: {0}")]
    Journal(Arc<warden_durable::JournalError>),
    /// A behaviour's own failure, with its error as the source (downcast it to read it).
    #[error("{0}")]
    Other(Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl TurnError {
    /// A behaviour's own failure: any error (kept as the source), or a message.
    ///
    /// ```
    /// use warden_agents::TurnError;
    ///
    /// let e = TurnError::other(std::io::Error::other("disk full"));
    /// assert_eq!(e.to_string(), "disk full");
    /// let TurnError::Other(source) = &e else { unreachable!() };
    /// assert!(source.downcast_ref::<std::io::Error>().is_some());
    /// assert_eq!(TurnError::other("no directory").kind(), "other");
    /// ```
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Other(Arc::from(error.into()))
    }

    /// Whether the same task may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Model(e) => e.is_transient(),
            Self::ToolFailing { last_error, .. } => last_error.is_transient(),
            Self::HumanTimeout(_) | Self::DeadlineExceeded(_) | Self::Journal(_) => true,
            Self::OutcomeUnknown { .. }
            | Self::JournalDivergence { .. }
            | Self::StructuredOutputInvalid(_)
            | Self::EmptyTask
            | Self::Escalation(_)
            | Self::Panicked { .. }
            | Self::Other(_) => false,
        }
    }

    /// Which kind of failure this is, without its details.
    pub fn failure(&self) -> TurnFailure {
        match self {
            Self::Model(_) => TurnFailure::Model,
            Self::ToolFailing { .. } => TurnFailure::ToolFailing,
            Self::DeadlineExceeded(_) => TurnFailure::DeadlineExceeded,
            Self::HumanTimeout(_) => TurnFailure::HumanTimeout,
            Self::StructuredOutputInvalid(_) => TurnFailure::StructuredOutputInvalid,
            Self::EmptyTask => TurnFailure::EmptyTask,
            Self::Escalation(_) => TurnFailure::Escalation,
            Self::Panicked { .. } => TurnFailure::Panicked,
            Self::OutcomeUnknown { .. } => TurnFailure::OutcomeUnknown,
            Self::JournalDivergence { .. } => TurnFailure::JournalDivergence,
            Self::Journal(_) => TurnFailure::Journal,
            Self::Other(_) => TurnFailure::Other,
        }
    }

    /// A short, stable name of the kind (`"model"`, `"tool_failing"`...).
    pub fn kind(&self) -> &'static str {
        self.failure().as_str()
    }
}

/// The kind of a [`TurnError`], one per variant, without the details: what an
/// [`AgentEventKind::TurnEnded`](super::AgentEventKind::TurnEnded) reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TurnFailure {
    /// [`TurnError::Model`].
    Model,
    /// [`TurnError::ToolFailing`].
    ToolFailing,
    /// [`TurnError::DeadlineExceeded`].
    DeadlineExceeded,
    /// [`TurnError::HumanTimeout`].
    HumanTimeout,
    /// [`TurnError::StructuredOutputInvalid`].
    StructuredOutputInvalid,
    /// [`TurnError::EmptyTask`].
    EmptyTask,
    /// [`TurnError::Escalation`].
    Escalation,
    /// [`TurnError::Panicked`].
    Panicked,
    /// [`TurnError::OutcomeUnknown`].
    OutcomeUnknown,
    /// [`TurnError::JournalDivergence`].
    JournalDivergence,
    /// [`TurnError::Journal`].
    Journal,
    /// [`TurnError::Other`].
    Other,
}

impl TurnFailure {
    /// A short, stable name (`"model"`, `"tool_failing"`...), for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::ToolFailing => "tool_failing",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::HumanTimeout => "human_timeout",
            Self::StructuredOutputInvalid => "structured_output_invalid",
            Self::EmptyTask => "empty_task",
            Self::Escalation => "escalation",
            Self::Panicked => "panicked",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::JournalDivergence => "journal_divergence",
            Self::Journal => "journal",
            Self::Other => "other",
        }
    }
}

impl From<ModelError> for TurnError {
    fn from(e: ModelError) -> Self {
        Self::Model(Arc::new(e))
    }
}

/// What an agent escalates when it keeps failing, so an orchestrator above can re-plan.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AgentTrouble {
    /// The agent.
    pub agent: Arc<str>,
    /// Its path in the tree.
    pub path: Option<ChildPath>,
    /// The task it was working on when it gave up.
    pub task: AgentMessage,
    /// The last failure.
    pub error: TurnError,
    /// Failed turns in a row.
    pub consecutive_failures: u32,
}
