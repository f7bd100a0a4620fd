//! One turn of an agent: the [`Behaviour`] that runs it, the [`TurnContext`] it runs in, and
//! the [`TurnOutput`] and [`Outcome`] it ends with.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use ractor::ActorRef;
use serde_json::Value;
use tokio::sync::mpsc;
use warden_supervisor::{ChildPath, Escalator};

use super::actor::AgentMsg;
use super::directory::Directory;
use super::error::TurnError;
use super::event::{AgentEventKind, EventSink};
use crate::memory::Memory;
use crate::message::{Address, AgentMessage};
use crate::model::{ContentBlock, Usage};

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

    /// The outcome [`as_str`](Self::as_str) names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Completed, Self::Interrupted, Self::MaxIterations]
            .into_iter()
            .find(|o| o.as_str() == name)
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

/// Everything a turn may use: the agent's memory, its identity, the [`Directory`] to reach
/// other agents, the escalator to reach its supervisor, and the human-input channel.
pub struct TurnContext {
    pub(crate) memory: Memory,
    pub(crate) name: Arc<str>,
    pub(crate) path: Option<ChildPath>,
    pub(crate) escalator: Option<Escalator>,
    pub(crate) directory: Option<Arc<dyn Directory>>,
    pub(crate) events: EventSink,
    pub(crate) human: mpsc::UnboundedReceiver<String>,
    pub(crate) myself: ActorRef<AgentMsg>,
    pub(crate) turn: u64,
    /// The journal and the task's recorded steps, for a durable agent's task.
    pub(crate) durable: Option<super::durable::DurableTurn>,
}

impl fmt::Debug for TurnContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnContext")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("memory", &self.memory.len())
            .field("turn", &self.turn)
            .field("task_id", &self.task_id())
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

    /// Where the agent is registered (a [`Registry`](crate::Registry)), to message other
    /// agents by address.
    pub fn directory(&self) -> Option<&dyn Directory> {
        self.directory.as_deref()
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
}
