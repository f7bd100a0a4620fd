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
//! use warden_fake_provider::{FakeProvider, Reply};
//! use warden_supervisor::{Strategy, Supervisor};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeProvider::start().await;
//! fake.push(Reply::text("Paris."));
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
mod error;
mod event;
mod human;
mod reply;
mod turn;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorId, ActorRef};
use tokio::sync::Notify;
use tokio::time::Instant;
use warden_supervisor::{ChildPath, ChildSpec, Incarnations, StartContext, request};

pub use directory::{Directory, RegistryError};
pub use error::{AgentError, AgentTrouble, TurnError, TurnFailure};
pub use event::{AgentEvent, AgentEventKind, AgentObserver, DropReason, TurnEnd};
pub use human::{HumanAnswer, HumanQuestion};
pub use reply::Reply;
pub use turn::{Behaviour, Outcome, TurnContext, TurnOutput};

use crate::memory::MemoryLimit;
use crate::message::{Address, AgentMessage};
use actor::{AgentActor, AgentMsg, Asker, Pending, StartArgs};
use event::{DEFAULT_OBSERVER_QUEUE, EventSink};

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
    observer_queue: usize,
    turn_deadline: Option<Duration>,
    directory: Option<Arc<dyn Directory>>,
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
            observer_queue: DEFAULT_OBSERVER_QUEUE,
            turn_deadline: None,
            directory: None,
        }
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

/// What an agent is doing, in an [`AgentStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Activity {
    /// No turn in flight.
    Idle,
    /// A turn is in flight.
    Working,
    /// A turn is suspended, waiting for a human.
    WaitingForHuman,
}

/// An agent's status, as [`AgentRef::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentStatus {
    /// What it is doing.
    pub activity: Activity,
    /// Tasks waiting behind the turn in flight.
    pub queued: usize,
    /// Turns finished by this incarnation.
    pub turns_completed: u64,
    /// Events this incarnation dropped because its observer fell behind.
    pub events_dropped: u64,
    /// Failed turns in a row.
    pub consecutive_failures: u32,
    /// Messages in its memory (0 while a turn holds the memory).
    pub memory_messages: usize,
}

/// One running agent actor, as its handles reach it.
#[derive(Clone)]
struct Incarnation {
    actor: ActorRef<AgentMsg>,
    path: Option<ChildPath>,
    /// Its events, for tasks dropped before they reach its state.
    events: EventSink,
}

struct RefInner {
    name: Arc<str>,
    incarnations: Incarnations<Incarnation>,
    load: Arc<Load>,
}

/// How many tasks an agent holds (queued or running) unless told otherwise
/// ([`Agent::queue_capacity`]).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// An agent's tasks in its hands (queued or running), against its queue's capacity.
struct Load {
    count: AtomicUsize,
    capacity: AtomicUsize,
    /// Notified whenever a task leaves, for asks waiting for room.
    room: Notify,
}

impl Load {
    /// Takes a place in the queue, if there is one.
    fn try_reserve(self: &Arc<Self>) -> Option<LoadGuard> {
        let capacity = self.capacity.load(Ordering::Relaxed);
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < capacity).then_some(n + 1))
            .ok()
            .map(|_| LoadGuard(self.clone()))
    }

    /// Takes a place whatever the capacity: for control messages, which are never refused.
    fn reserve_anyway(self: &Arc<Self>) -> LoadGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        LoadGuard(self.clone())
    }

    /// Takes a place in the queue, waiting for one until `until`.
    async fn reserve_by(self: &Arc<Self>, until: Instant) -> Option<LoadGuard> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a task leaving in between is not missed.
            room.as_mut().enable();
            if let Some(guard) = self.try_reserve() {
                return Some(guard);
            }
            if tokio::time::timeout_at(until, room).await.is_err() {
                return None;
            }
        }
    }
}

/// Counts a task from when a handle sends it until the agent is done with it (answered,
/// or dropped with a dead agent), and frees its place in the queue then.
pub(crate) struct LoadGuard(Arc<Load>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.room.notify_waiters();
    }
}

/// The address of one agent, whichever of its incarnations is running (it follows
/// restarts). Cheap to clone; it does not keep the agent alive.
#[derive(Clone)]
pub struct AgentRef {
    inner: Arc<RefInner>,
}

impl fmt::Debug for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRef")
            .field("name", &self.inner.name)
            .field("generation", &self.generation())
            .field("path", &self.path())
            .finish()
    }
}

impl AgentRef {
    fn new(name: Arc<str>) -> Self {
        Self {
            inner: Arc::new(RefInner {
                name,
                incarnations: Incarnations::new(),
                load: Arc::new(Load {
                    count: AtomicUsize::new(0),
                    capacity: AtomicUsize::new(DEFAULT_QUEUE_CAPACITY),
                    room: Notify::new(),
                }),
            }),
        }
    }

    /// Publishes a new incarnation; returns its generation.
    fn publish(&self, actor: ActorRef<AgentMsg>, path: Option<ChildPath>, events: EventSink) -> u64 {
        self.inner.incarnations.started(Incarnation { actor, path, events })
    }

    /// Withdraws `actor` if it is still the published incarnation.
    fn withdraw(&self, actor: ActorId) {
        self.inner.incarnations.ended(|i| i.actor.get_id() == actor);
    }

    /// A place for a task that a control message starts (a human's input to an idle
    /// agent): counted, never refused.
    pub(crate) fn control_load(&self) -> LoadGuard {
        self.inner.load.reserve_anyway()
    }

    /// The refusal of `task`, handed back, when the queue is full.
    fn overloaded(&self, task: AgentMessage) -> AgentError {
        AgentError::Overloaded {
            agent: self.inner.name.clone(),
            capacity: self.queue_capacity(),
            task: Box::new(task),
        }
    }

    fn current(&self) -> Result<ActorRef<AgentMsg>, AgentError> {
        self.inner
            .incarnations
            .with_current(|i| i.map(|i| i.actor.clone()))
            .ok_or_else(|| AgentError::NotDelivered(self.inner.name.clone()))
    }

    /// Sends a task to the running incarnation, addressed to this agent if it names nobody.
    fn send_task(&self, mut task: AgentMessage, load: LoadGuard, asker: Option<Asker>) -> Result<(), AgentError> {
        let (actor, events) = self
            .inner
            .incarnations
            .with_current(|i| i.map(|i| (i.actor.clone(), i.events.clone())))
            .ok_or_else(|| AgentError::NotDelivered(self.inner.name.clone()))?;
        if task.recipient == Address::Unspecified {
            task.recipient = self.address();
        }
        let pending = Pending::new(task, load, asker, events);
        actor.send_message(AgentMsg::Task(Box::new(pending))).map_err(|e| {
            if let ractor::MessagingErr::SendErr(AgentMsg::Task(pending)) = e {
                (*pending).withdraw();
            }
            AgentError::NotDelivered(self.inner.name.clone())
        })
    }

    /// Whether two handles address the same agent.
    pub fn same_agent(&self, other: &AgentRef) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The agent's address by name.
    pub fn address(&self) -> Address {
        Address::Name(self.inner.name.to_string())
    }

    /// The path of the running incarnation in its tree (none when spawned alone or before
    /// the first start).
    pub fn path(&self) -> Option<ChildPath> {
        self.inner.incarnations.latest().and_then(|i| i.path)
    }

    /// How many times the agent has started (0: never).
    pub fn generation(&self) -> u64 {
        self.inner.incarnations.generation()
    }

    /// The running incarnation's actor, to monitor (or kill, in a test).
    pub fn actor(&self) -> Option<ActorCell> {
        self.inner.incarnations.with_current(|i| i.map(|i| i.actor.get_cell()))
    }

    /// Whether an incarnation is running.
    pub fn is_running(&self) -> bool {
        self.inner
            .incarnations
            .with_current(|i| i.is_some_and(|i| i.actor.get_status() <= ractor::ActorStatus::Upgrading))
    }

    /// Tasks sent through handles and not finished yet (queued or in flight): the measure
    /// [`RoutePolicy::LeastBusy`](crate::team::RoutePolicy::LeastBusy) routes by.
    pub fn load(&self) -> usize {
        self.inner.load.count.load(Ordering::Relaxed)
    }

    /// How many tasks the agent holds at most, queued or running (see
    /// [`Agent::queue_capacity`]).
    pub fn queue_capacity(&self) -> usize {
        self.inner.load.capacity.load(Ordering::Relaxed)
    }

    /// Waits until an incarnation newer than `generation` has started (for example after a
    /// crash: `wait_started(old_generation, ..)`), at most `deadline`.
    ///
    /// # Errors
    ///
    /// [`AgentError::Timeout`] at the deadline.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn wait_started(&self, generation: u64, deadline: Duration) -> Result<u64, AgentError> {
        self.inner
            .incarnations
            .wait_started(generation, deadline)
            .await
            .ok_or(AgentError::Timeout(deadline))
    }

    /// Sends `task` and waits for the answer, at most `deadline`. A task whose recipient is
    /// [`Address::Unspecified`] is addressed to this agent.
    ///
    /// Exactly one outcome, promptly: the agent's reply, or an error as soon as the agent is
    /// known to be gone, or at the deadline (built on [`warden_supervisor::request()`]).
    ///
    /// The deadline also bounds the work: once it passes (or the future is dropped), the
    /// agent skips the task if it has not started it, and cuts its turn short if it has (see
    /// the [module docs](self)).
    ///
    /// When the agent's queue is full, the ask waits for room within the same deadline
    /// ([`try_ask`](Self::try_ask) fails at once instead).
    ///
    /// # Errors
    ///
    /// [`AgentError::Overloaded`] if the queue had no room before the deadline (the task
    /// is handed back; it did nothing);
    /// [`AgentError::NotDelivered`] if no incarnation is running (it did nothing);
    /// [`AgentError::NotStarted`] if it died before starting the task (it did nothing);
    /// [`AgentError::AgentDown`] if it died while working on it (it may have acted);
    /// [`AgentError::Timeout`] at the deadline (it may have acted; it stops);
    /// [`AgentError::Turn`] when it ran the task and the turn failed.
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the ask: the agent skips the task, or cuts its turn
    /// short, as at the deadline.
    pub async fn ask(&self, task: AgentMessage, deadline: Duration) -> Result<Reply, AgentError> {
        let until = deadline_from_now(deadline);
        let Some(load) = self.inner.load.reserve_by(until).await else {
            return Err(self.overloaded(task));
        };
        self.ask_reserved(task, load, until, deadline).await
    }

    /// Like [`ask`](Self::ask), but fails at once with [`AgentError::Overloaded`] (the task
    /// handed back) when the agent's queue is full, instead of waiting for room.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask).
    ///
    /// # Cancellation
    ///
    /// As [`ask`](Self::ask).
    pub async fn try_ask(&self, task: AgentMessage, deadline: Duration) -> Result<Reply, AgentError> {
        let until = deadline_from_now(deadline);
        let Some(load) = self.inner.load.try_reserve() else {
            return Err(self.overloaded(task));
        };
        self.ask_reserved(task, load, until, deadline).await
    }

    async fn ask_reserved(
        &self,
        task: AgentMessage,
        load: LoadGuard,
        until: Instant,
        deadline: Duration,
    ) -> Result<Reply, AgentError> {
        let (asker, side) = Asker::new(self.inner.name.clone(), until);
        self.send_task(task, load, Some(asker))?;
        match tokio::time::timeout_at(until, side.answer).await {
            Ok(Ok(answer)) => answer,
            // Every path answers; a port dropped silently still means the agent went down.
            Ok(Err(_)) => Err(AgentError::AgentDown(self.inner.name.clone())),
            Err(_) => Err(AgentError::Timeout(deadline)),
        }
    }

    /// Sends `task` without waiting for an answer. A tell the agent drops without running
    /// it (it stopped first) is reported as an [`AgentEventKind::TaskDropped`].
    ///
    /// # Errors
    ///
    /// [`AgentError::Overloaded`] at once when the agent's queue is full, with the task
    /// handed back (nothing is dropped silently);
    /// [`AgentError::NotDelivered`] if no incarnation is running.
    pub fn tell(&self, task: AgentMessage) -> Result<(), AgentError> {
        let Some(load) = self.inner.load.try_reserve() else {
            return Err(self.overloaded(task));
        };
        self.send_task(task, load, None)
    }

    /// Interrupts the turn in flight, if any (see the [module docs](self)); answers whether
    /// there was one. Queued tasks are not affected.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask), without [`AgentError::Turn`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not withdraw the interrupt once sent.
    pub async fn interrupt(&self) -> Result<bool, AgentError> {
        let actor = self.current()?;
        request(&actor, AgentMsg::Interrupt, CONTROL_DEADLINE)
            .await
            .map_err(|e| AgentError::from_request(&self.inner.name, e))
    }

    /// Sends a human's input: the answer to the question the agent is waiting on, or, while
    /// a turn runs, words the turn reads before its next model call; when the agent is idle,
    /// a new task (ahead of any queued ones).
    ///
    /// # Errors
    ///
    /// [`AgentError::NotDelivered`] if no incarnation is running.
    pub fn human_input(&self, text: impl Into<String>) -> Result<(), AgentError> {
        let actor = self.current()?;
        actor
            .send_message(AgentMsg::HumanInput(text.into()))
            .map_err(|_| AgentError::NotDelivered(self.inner.name.clone()))
    }

    /// The agent's status.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask), without [`AgentError::Turn`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn status(&self) -> Result<AgentStatus, AgentError> {
        let actor = self.current()?;
        request(&actor, AgentMsg::Status, CONTROL_DEADLINE)
            .await
            .map_err(|e| AgentError::from_request(&self.inner.name, e))
    }
}

/// The instant `deadline` from now; a deadline too far to represent is no deadline (about
/// thirty years).
fn deadline_from_now(deadline: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(deadline)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}
