//! [`Behaviour`]: what an agent does with a task, and the [`TurnContext`] it does it in.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::ActorRef;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use warden_supervisor::{ChildPath, EscalationError, Escalator};

use super::actor::AgentMsg;
use super::error::TurnError;
use super::event::{AgentEventKind, EventSink};
use crate::memory::Memory;
use crate::message::{Address, AgentMessage};
use crate::model::{ContentBlock, Usage};
use crate::registry::Registry;

/// What an agent does with each task: one *turn*, from the task to the answer.
///
/// The agent's actor runs each turn as a task of its own, so the actor stays free for
/// control messages (interrupt, human input, status) while the turn is in flight. A turn
/// may be dropped at any `.await` (an interrupt, or the agent stopping): write to the
/// [memory](TurnContext::memory_mut) as things happen (an assistant message with tool calls
/// before running them), and the agent closes whatever is left open with "interrupted"
/// results. [`ReAct`](crate::react::ReAct) is the behaviour this crate provides.
pub trait Behaviour: Send + Sync + 'static {
    /// Runs one turn on `task`.
    ///
    /// # Errors
    ///
    /// A [`TurnError`]; the asker gets it as [`AgentError::Turn`](super::AgentError::Turn).
    fn turn<'a>(
        &'a self,
        cx: &'a mut TurnContext,
        task: &'a AgentMessage,
    ) -> BoxFuture<'a, Result<TurnOutput, TurnError>>;
}

/// How a turn ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The agent finished: the content is its answer.
    Completed,
    /// The turn was interrupted; the content is what the agent had said so far (often nothing).
    Interrupted,
    /// The agent used its iterations without finishing; the content is its last text.
    MaxIterations,
}

impl Outcome {
    /// `completed`, `interrupted` or `max_iterations`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Interrupted => "interrupted",
            Self::MaxIterations => "max_iterations",
        }
    }
}

/// What a [`Behaviour`] returns from a turn.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TurnOutput {
    /// The answer.
    pub content: Vec<ContentBlock>,
    /// How the turn ended.
    pub outcome: Outcome,
    /// Model calls made.
    pub iterations: u32,
    /// Tokens used, summed over the model calls.
    pub usage: Usage,
    /// The answer as JSON, when structured output was asked for.
    pub structured: Option<Value>,
}

impl TurnOutput {
    /// A completed turn answering `content`.
    pub fn new(outcome: Outcome, content: Vec<ContentBlock>) -> Self {
        Self {
            content,
            outcome,
            iterations: 0,
            usage: Usage::default(),
            structured: None,
        }
    }
}

/// The answer to an [`ask`](super::AgentRef::ask): the reply message and how the turn went.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Reply {
    /// The reply, from the agent to the asker, `in_reply_to` the task.
    pub message: AgentMessage,
    /// How the turn ended.
    pub outcome: Outcome,
    /// Model calls made.
    pub iterations: u32,
    /// Tokens used.
    pub usage: Usage,
    /// The answer as JSON, when structured output was asked for.
    pub structured: Option<Value>,
}

impl Reply {
    /// The reply's text.
    pub fn text(&self) -> String {
        self.message.text()
    }

    /// The structured answer as a `T`.
    ///
    /// # Errors
    ///
    /// [`TurnError::StructuredOutputInvalid`] if there is none or it is not a `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, TurnError> {
        let value = self
            .structured
            .clone()
            .ok_or_else(|| TurnError::StructuredOutputInvalid("no structured answer".into()))?;
        serde_json::from_value(value).map_err(|e| TurnError::StructuredOutputInvalid(e.to_string()))
    }
}

/// A question an agent escalates to a human, through its supervisor's
/// [escalation handler](warden_supervisor::SupervisorBuilder::escalation_handler). Answer it
/// with a [`HumanAnswer`] (see [`TurnContext::ask_human`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HumanQuestion {
    /// The agent asking.
    pub agent: Arc<str>,
    /// The question.
    pub question: String,
}

/// A human's answer to a [`HumanQuestion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HumanAnswer(pub String);

impl HumanAnswer {
    /// An answer.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
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

/// Everything a turn may use: the agent's memory, its identity, the registry to reach other
/// agents, the escalator to reach its supervisor, and the human-input channel.
pub struct TurnContext {
    pub(crate) memory: Memory,
    pub(crate) name: Arc<str>,
    pub(crate) path: Option<ChildPath>,
    pub(crate) escalator: Option<Escalator>,
    pub(crate) registry: Option<Registry>,
    pub(crate) events: EventSink,
    pub(crate) human: mpsc::UnboundedReceiver<String>,
    pub(crate) myself: ActorRef<AgentMsg>,
    pub(crate) turn: u64,
}

impl fmt::Debug for TurnContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnContext")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("memory", &self.memory.len())
            .field("turn", &self.turn)
            .finish_non_exhaustive()
    }
}

impl TurnContext {
    /// The agent's memory.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The agent's memory, to add to.
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }

    /// The agent's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The agent's address (by name).
    pub fn address(&self) -> Address {
        Address::Name(self.name.to_string())
    }

    /// The agent's path in the tree, when it runs under a supervisor.
    pub fn path(&self) -> Option<&ChildPath> {
        self.path.as_ref()
    }

    /// The registry, to message other agents by address.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// The escalator to the agent's supervisor, when it runs under one.
    pub fn escalator(&self) -> Option<&Escalator> {
        self.escalator.as_ref()
    }

    /// Reports an event to the agent's observer (queued for it: this never waits for the
    /// observer; see [`AgentObserver`](super::AgentObserver)).
    pub fn emit(&self, kind: AgentEventKind) {
        self.events.emit(kind);
    }

    /// Human input that arrived during the turn and was not an answer to a question
    /// (see [`AgentRef::human_input`](super::AgentRef::human_input)), oldest first.
    pub fn take_human_input(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(text) = self.human.try_recv() {
            out.push(text);
        }
        out
    }

    /// Suspends the turn until a human answers `question`, at most `deadline`.
    ///
    /// The question is escalated as a [`HumanQuestion`] that expects a [`HumanAnswer`]
    /// ([`Escalator::request`]): whoever handles it up the tree answers through its
    /// [`Responder`](warden_supervisor::Responder), now or later. The answer may also come
    /// straight to the agent through [`AgentRef::human_input`](super::AgentRef::human_input).
    /// While it waits the agent uses no CPU and still handles control messages.
    ///
    /// # Errors
    ///
    /// [`TurnError::HumanTimeout`] at the deadline (also when nobody up the tree handles
    /// the question and no input comes).
    ///
    /// # Cancellation
    ///
    /// Dropping the future (an interrupt) withdraws the question: a later answer through the
    /// responder gets [`EscalationError::RequesterGone`].
    pub async fn ask_human(&mut self, question: impl Into<String>, deadline: Duration) -> Result<String, TurnError> {
        let question = question.into();
        self.emit(AgentEventKind::WaitingForHuman {
            question: question.clone(),
        });
        let _ = self.myself.send_message(AgentMsg::Waiting {
            turn: self.turn,
            waiting: true,
        });
        let concern = HumanQuestion {
            agent: self.name.clone(),
            question,
        };
        let mut escalation: BoxFuture<'static, Result<HumanAnswer, EscalationError>> = match self.escalator.clone() {
            Some(escalator) => Box::pin(async move { escalator.request(concern, deadline).await }),
            None => Box::pin(futures::future::pending()),
        };
        let until = tokio::time::sleep(deadline);
        tokio::pin!(until);
        let answer = loop {
            tokio::select! {
                answer = &mut escalation => match answer {
                    Ok(HumanAnswer(text)) => break Ok(text),
                    Err(EscalationError::Timeout) => break Err(TurnError::HumanTimeout(deadline)),
                    // Nobody up the tree takes it: input straight to the agent may still come.
                    Err(_) => escalation = Box::pin(futures::future::pending()),
                },
                Some(text) = self.human.recv() => break Ok(text),
                () = &mut until => break Err(TurnError::HumanTimeout(deadline)),
            }
        };
        let _ = self.myself.send_message(AgentMsg::Waiting {
            turn: self.turn,
            waiting: false,
        });
        answer
    }
}
