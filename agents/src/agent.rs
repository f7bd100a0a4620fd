//! Agents as supervised actors: [`Agent`] (the definition), [`AgentRef`] (the address to
//! [`ask`](AgentRef::ask) and [`tell`](AgentRef::tell)), and the [`Behaviour`] that runs
//! each task.
//!
//! An agent is an Erlang process with an LLM inside. Its [`Agent`] definition is a recipe,
//! like a child spec: a name, a [`Behaviour`] (such as [`ReAct`](crate::react::ReAct)), a
//! memory limit, an observer. [`Agent::child_spec`] turns it into a [`ChildSpec`] so it runs
//! under a [`Supervisor`](warden_supervisor::Supervisor) like any child; every (re)start is a
//! fresh ractor actor with a fresh state (memory, queue, counters) that no one else can touch.
//!
//! # Talking to an agent
//!
//! An [`AgentRef`] follows the agent across restarts, like a registered name in OTP. Ask with
//! a deadline and get exactly one outcome: the [`Reply`], or an [`AgentError`] ([`NotDelivered`],
//! [`NotStarted`] or [`AgentDown`] as soon as the agent dies, [`Timeout`], or the turn's own
//! failure), never a hang. Tell to fire and forget. Many asks can be in flight at once (to
//! one agent or many): each is a future, so gather them with `futures` as they complete.
//!
//! The errors say whether the task may have been acted on, so a caller knows when sending it
//! again is safe: [`NotDelivered`] and [`NotStarted`] mean it certainly was not
//! ([`AgentError::was_not_delivered`]); [`AgentDown`] and [`Timeout`] mean it may have been.
//!
//! # Work nobody waits for is not done
//!
//! An ask is work for someone who waits. When the asker stops waiting (its deadline passes,
//! or its future is dropped), a queued task of it is skipped ([`AgentEventKind::TaskDropped`]),
//! and its turn in flight is cut short as by an interrupt (the turn ends `abandoned`). A
//! `tell` has nobody waiting: only the agent's own [`turn_deadline`](Agent::turn_deadline)
//! bounds its turn.
//!
//! ```
//! use std::time::Duration;
//! use warden_agents::agent::{Agent, Outcome};
//! use warden_agents::message::AgentMessage;
//! use warden_agents::model::{Model, OpenAiChat};
//! use warden_agents::react::ReAct;
//! use warden_fake_provider::{FakeProvider, Answer};
//! use warden_supervisor::{Strategy, Supervisor};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeProvider::start().await;
//! fake.push(Answer::text("Paris."));
//! let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
//!
//! let agent = Agent::new("geographer", ReAct::builder(model).system("Answer in one word.").build());
//! let geographer = agent.handle();
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::OneForOne)
//!     .child(agent.child_spec())
//!     .spawn()
//!     .await?;
//!
//! let reply = geographer.ask(AgentMessage::user("Capital of France?"), Duration::from_secs(10)).await?;
//! assert_eq!(reply.outcome, Outcome::Completed);
//! assert_eq!(reply.text(), "Paris.");
//! root.stop().await;
//! # Ok(()) }
//! ```
//!
//! # The mailbox: control before work
//!
//! The actor never waits for a turn: each turn runs as a task the actor owns, and new tasks
//! queue behind it in the actor's state. So [`interrupt`](AgentRef::interrupt),
//! [`human_input`](AgentRef::human_input) and [`status`](AgentRef::status) are handled at
//! once, ahead of queued tasks, even while a turn is in flight; stop and kill are ractor's
//! own signals, which it serves before any message.
//!
//! # Interrupt
//!
//! [`AgentRef::interrupt`] cancels the turn in flight gracefully: the turn is dropped where
//! it waits (a model call, tool calls, a human), every tool call it left open is answered
//! with an "interrupted" error result, so the memory stays valid for the next turn, and the
//! asker gets a [`Reply`] with [`Outcome::Interrupted`]. Queued tasks then run as usual.
//!
//! # Human in the loop
//!
//! A turn can suspend until a human decides ([`TurnContext::ask_human`]; a ReAct agent
//! offers it to its model as the `ask_human` tool). The question goes up the tree as an
//! escalation that expects an answer; the answer comes back through its responder, or
//! straight to the agent through [`AgentRef::human_input`]. No CPU is used while waiting; at
//! the deadline the turn fails with [`TurnError::HumanTimeout`].
//!
//! # Failing agents escalate
//!
//! After [`escalate_after`](Agent::escalate_after) failed turns in a row (its model or a
//! tool keeps failing), the agent raises an [`AgentTrouble`] to its supervisor, with the task
//! and the error, which travels up the tree to whoever handles it (an orchestrator that can
//! re-plan), as any [`Escalation`](warden_supervisor::Escalation) does.
//!
//! [`NotDelivered`]: AgentError::NotDelivered
//! [`AgentDown`]: AgentError::AgentDown
//! [`NotStarted`]: AgentError::NotStarted
//! [`Timeout`]: AgentError::Timeout

mod actor;
mod directory;
pub mod durable;
mod error;
mod event;
mod handle;
mod human;
mod remote;
mod reply;
mod turn;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::Actor;
use warden_supervisor::{ChildSpec, StartContext};

pub use directory::{Directory, RegistryError};
pub use durable::{StepSlot, StepWriter};
pub use error::{AgentError, AgentTrouble, TurnError, TurnFailure};
pub use event::{AgentEvent, AgentEventKind, AgentObserver, DropReason, TurnEnd};
pub(crate) use handle::LoadGuard;
pub use handle::{Activity, AgentRef, AgentStatus, DEFAULT_QUEUE_CAPACITY};
pub use human::{HumanAnswer, HumanQuestion};
pub use remote::RemoteLink;
pub use reply::Reply;
pub use turn::{Behaviour, Outcome, TurnContext, TurnOutput};

use crate::memory::MemoryLimit;
use actor::{AgentActor, StartArgs};
use event::DEFAULT_OBSERVER_QUEUE;

/// How often a durable agent rescans its journal unless told otherwise
/// ([`Agent::rescan_every`]).
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(1);

/// The deadline of control calls ([`interrupt`](AgentRef::interrupt), [`status`](AgentRef::status)).
const CONTROL_DEADLINE: Duration = Duration::from_secs(5);

/// An agent's definition: a recipe its supervisor starts it from, on every (re)start.
/// Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    name: Arc<str>,
    behaviour: Arc<dyn Behaviour>,
    memory_limit: MemoryLimit,
    escalate_after: u32,
    observer: Option<AgentObserver>,
    observer_inline: bool,
    observer_queue: usize,
    turn_deadline: Option<Duration>,
    directory: Option<Arc<dyn Directory>>,
    journal: Option<warden_durable::Journal>,
    rescan_every: Option<Duration>,
    handle: AgentRef,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("memory_limit", &self.memory_limit)
            .field("escalate_after", &self.escalate_after)
            .field("turn_deadline", &self.turn_deadline)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent called `name` (also its child id: non-empty, no `/`) that runs `behaviour`,
    /// with the default memory limit, escalating after 3 failed turns in a row, turns without
    /// a deadline of their own.
    pub fn new(name: impl Into<Arc<str>>, behaviour: impl Behaviour) -> Self {
        let name = name.into();
        Self {
            handle: AgentRef::new(name.clone()),
            name,
            behaviour: Arc::new(behaviour),
            memory_limit: MemoryLimit::default(),
            escalate_after: 3,
            observer: None,
            observer_inline: false,
            observer_queue: DEFAULT_OBSERVER_QUEUE,
            turn_deadline: None,
            directory: None,
            journal: None,
            rescan_every: Some(DEFAULT_RESCAN),
        }
    }

    /// Makes the agent durable: every task it accepts through [`AgentRef::submit`] or
    /// [`AgentRef::ask`] is written to `journal` before the caller hears it was accepted, each
    /// step of its turns is recorded, and a (re)start resumes every unfinished task, replaying
    /// recorded steps instead of running them again; memory is restored from the snapshot
    /// written with the last finished task. See [`durable`] for what a behaviour must do (and
    /// [`ReAct`](crate::react::ReAct) does). A [`tell`](AgentRef::tell) stays in memory only.
    ///
    /// The agent's name is its key in the journal: give each durable agent a name of its own.
    pub fn journal(mut self, journal: warden_durable::Journal) -> Self {
        self.handle.set_journal(journal.clone());
        self.journal = Some(journal);
        self
    }

    /// Sets the memory limit.
    pub fn memory(mut self, limit: MemoryLimit) -> Self {
        self.memory_limit = limit;
        self
    }

    /// Escalates an [`AgentTrouble`] after this many failed turns in a row (0: never).
    pub fn escalate_after(mut self, failed_turns: u32) -> Self {
        self.escalate_after = failed_turns;
        self
    }

    /// Sets a callback that sees every [`AgentEvent`], in order, on a task of its own (see
    /// [`AgentObserver`]): it never holds up the agent, and its panics are caught.
    pub fn observer(mut self, observer: impl Fn(&AgentEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self.observer_inline = false;
        self
    }

    /// Sets a callback that sees every [`AgentEvent`], as [`observer`](Self::observer) does,
    /// but calls it **where the event happens** (in the agent or its turn), with no queue and
    /// no task: for an observer that only hands the event on without waiting (Warden
    /// Studio's), it saves a task wake-up per event. It must return at once; its panics are
    /// caught.
    pub fn inline_observer(mut self, observer: impl Fn(&AgentEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self.observer_inline = true;
        self
    }

    /// How many events may wait for a slow observer before more are dropped and counted
    /// (default 1024; at least 1).
    pub fn observer_queue(mut self, capacity: usize) -> Self {
        self.observer_queue = capacity.max(1);
        self
    }

    /// At most `capacity` tasks in the agent's hands, queued or running (default
    /// [`DEFAULT_QUEUE_CAPACITY`]; at least 1). Past it, [`AgentRef::tell`] and
    /// [`AgentRef::try_ask`] fail at once with [`AgentError::Overloaded`], handing the task
    /// back, and [`AgentRef::ask`] waits for room within its deadline. Control messages
    /// (interrupt, human input, status, stop) are never refused. The bound holds across
    /// restarts and is shared by every handle of the agent.
    pub fn queue_capacity(self, capacity: usize) -> Self {
        self.handle
            .inner
            .load
            .capacity
            .store(capacity.max(1), Ordering::Relaxed);
        self
    }

    /// Cuts every turn short after `deadline` (default: none), as an interrupt does (open
    /// tool calls are closed); the turn then fails with [`TurnError::DeadlineExceeded`]. An
    /// ask's turn is also cut short when its asker stops waiting, whatever this says.
    pub fn turn_deadline(mut self, deadline: Duration) -> Self {
        self.turn_deadline = Some(deadline);
        self
    }

    /// How often a durable agent looks in its journal for unfinished tasks of its name that
    /// it does not hold (accepted there by another process): default every second; `None`
    /// only at each start. Each look is one read of the journal.
    pub fn rescan_every(mut self, every: Option<Duration>) -> Self {
        self.rescan_every = every.filter(|d| !d.is_zero());
        self
    }

    /// Enters the agent in `directory` when it starts (by name, and by path under a
    /// supervisor), and withdraws it when it stops; its turns reach other agents through it
    /// ([`TurnContext::directory`]). A start fails if the name is taken
    /// ([`Directory::enter`]). For this crate's [`Registry`](crate::Registry), write
    /// [`registry`](Self::registry).
    pub fn directory(mut self, directory: impl Directory) -> Self {
        self.directory = Some(Arc::new(directory));
        self
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The handle that reaches whichever incarnation of this agent is running.
    pub fn handle(&self) -> AgentRef {
        self.handle.clone()
    }

    /// A permanent worker spec, with the agent's name as child id, that starts this agent
    /// with its supervisor's escalator and its path in the tree.
    pub fn child_spec(&self) -> ChildSpec {
        let agent = self.clone();
        ChildSpec::worker(self.name.to_string(), move |ctx: StartContext| {
            let agent = agent.clone();
            async move {
                let args = StartArgs {
                    escalator: Some(ctx.escalator()),
                    path: Some(ctx.path().clone()),
                };
                ctx.spawn(AgentActor(agent), args).await.map(Into::into)
            }
        })
    }

    /// Spawns the agent without a supervisor (it then cannot escalate: human questions are
    /// answered only through [`AgentRef::human_input`]).
    ///
    /// # Errors
    ///
    /// ractor's spawn error (a failed start: the name is taken in the registry).
    ///
    /// # Cancellation
    ///
    /// Dropping the future while the agent starts drops the half-started actor.
    pub async fn spawn(&self) -> Result<(AgentRef, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
        let args = StartArgs {
            escalator: None,
            path: None,
        };
        let (_actor, join) = Actor::spawn(None, AgentActor(self.clone()), args).await?;
        Ok((self.handle(), join))
    }
}
