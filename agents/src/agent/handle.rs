//! [`AgentRef`]: the address of an agent, which follows it across restarts, bounds its queue,
//! and carries every ask, tell and control call; and the [`AgentStatus`] it reports.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorRef};
use tokio::sync::Notify;
use tokio::time::Instant;
use warden_durable::{Journal, TaskId};
use warden_supervisor::{ChildPath, Incarnations, request};

use super::CONTROL_DEADLINE;
use super::actor::{AgentMsg, Asker, Pending};
use super::error::AgentError;
use super::event::EventSink;
use super::remote::RemoteLink;
use super::reply::Reply;
use crate::message::{Address, AgentMessage};

/// What an agent is doing, in an [`AgentStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
pub(super) struct Incarnation {
    actor: ActorRef<AgentMsg>,
    path: Option<ChildPath>,
    /// Its events, for tasks dropped before they reach its state.
    events: EventSink,
}

pub(super) struct RefInner {
    pub(super) name: Arc<str>,
    pub(super) incarnations: Incarnations<Incarnation>,
    pub(super) load: Arc<Load>,
    /// The journal of a durable agent.
    pub(super) journal: RwLock<Option<Journal>>,
    /// How to reach the agent when it runs in another process.
    pub(super) remote: Option<Arc<dyn RemoteLink>>,
}

/// How many tasks an agent holds (queued or running) unless told otherwise
/// ([`Agent::queue_capacity`](super::Agent::queue_capacity)).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// An agent's tasks in its hands (queued or running), against its queue's capacity.
pub(super) struct Load {
    pub(super) count: AtomicUsize,
    pub(super) capacity: AtomicUsize,
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
    pub(super) inner: Arc<RefInner>,
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
    pub(super) fn new(name: Arc<str>) -> Self {
        Self::with_link(name, None)
    }

    fn with_link(name: Arc<str>, remote: Option<Arc<dyn RemoteLink>>) -> Self {
        Self {
            inner: Arc::new(RefInner {
                name,
                incarnations: Incarnations::new(),
                load: Arc::new(Load {
                    count: AtomicUsize::new(0),
                    capacity: AtomicUsize::new(DEFAULT_QUEUE_CAPACITY),
                    room: Notify::new(),
                }),
                journal: RwLock::new(None),
                remote,
            }),
        }
    }

    /// A handle on the agent `name` that runs in another process, reached through `link`
    /// (`warden-cluster`'s `RemoteAgent::agent_ref` makes one): it is asked, told, submitted
    /// to and interrupted as a local agent is, each call one request to the agent's node,
    /// never resent, and a node lost before the answer is [`AgentError::NodeDown`]. What only
    /// the agent's own process knows is not known here: it has no
    /// [`journal`](Self::journal), [`path`](Self::path) nor [`actor`](Self::actor), its
    /// [`generation`](Self::generation) is 0 and its [`load`](Self::load) 0 (ask its
    /// [`status`](Self::status)); [`is_running`](Self::is_running) is whether a node hosts it
    /// now. Register it in a [`Registry`](crate::Registry) and local agents reach it by name.
    pub fn remote(name: impl Into<Arc<str>>, link: impl RemoteLink) -> Self {
        Self::with_link(name.into(), Some(Arc::new(link)))
    }

    /// The link to the agent's process, for a [remote](Self::remote) agent.
    fn link(&self) -> Option<&Arc<dyn RemoteLink>> {
        self.inner.remote.as_ref()
    }

    /// `task`, addressed to this agent if it names nobody.
    fn addressed(&self, mut task: AgentMessage) -> AgentMessage {
        self.fill_recipient(&mut task);
        task
    }

    /// Addresses `task` to this agent if it names nobody.
    fn fill_recipient(&self, task: &mut AgentMessage) {
        if task.recipient == Address::Unspecified {
            task.recipient = self.address();
        }
    }

    /// Whether the agent runs in another process ([`remote`](Self::remote)).
    pub fn is_remote(&self) -> bool {
        self.inner.remote.is_some()
    }

    pub(super) fn set_journal(&self, journal: Journal) {
        *self
            .inner
            .journal
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(journal);
    }

    /// The agent's journal, if it is durable.
    pub fn journal(&self) -> Option<Journal> {
        self.inner
            .journal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Writes `task` to the journal (a durable agent) before it is sent.
    async fn accept(&self, task: &mut AgentMessage) -> Result<Option<TaskId>, AgentError> {
        let Some(journal) = self.journal() else {
            return Ok(None);
        };
        self.fill_recipient(task);
        let bytes = crate::codec::to_bytes(task)
            .map_err(|e| AgentError::Journal(Arc::new(warden_durable::JournalError::Invalid(e.to_string()))))?;
        let id = journal
            .accept(&self.inner.name, bytes)
            .await
            .map_err(|e| AgentError::Journal(Arc::new(e)))?;
        Ok(Some(id))
    }

    /// Hands `task` to a durable agent: when this returns, the task is in the agent's journal
    /// with its [`TaskId`], and it runs exactly once to its end, whatever happens to this
    /// process in between (a restart of the agent, or a new process opening the journal,
    /// resumes it). Read its outcome with [`result`](Self::result). If no incarnation is
    /// running now, the task waits in the journal for the next start.
    ///
    /// # Errors
    ///
    /// [`AgentError::NotDurable`] for an agent without a journal; [`AgentError::Overloaded`]
    /// at once when its queue is full (the task handed back, not accepted);
    /// [`AgentError::Journal`] when the journal could not write it (not accepted).
    pub async fn submit(&self, mut task: AgentMessage) -> Result<TaskId, AgentError> {
        if let Some(link) = self.link() {
            return link.submit(task).await;
        }
        if self.journal().is_none() {
            return Err(AgentError::NotDurable(self.inner.name.clone()));
        }
        let Some(load) = self.inner.load.try_reserve() else {
            return Err(self.overloaded(task));
        };
        let Some(id) = self.accept(&mut task).await? else {
            return Err(AgentError::NotDurable(self.inner.name.clone()));
        };
        match self.send_task(task, load, None, Some(id)) {
            // Accepted: a start picks it up from the journal.
            Ok(()) | Err(AgentError::NotDelivered(_)) => Ok(id),
            Err(e) => Err(e),
        }
    }

    /// Waits, at most `deadline`, for the outcome of a task given to this durable agent (from
    /// this process or an earlier one).
    ///
    /// # Errors
    ///
    /// [`AgentError::NotDurable`]; [`AgentError::Timeout`]; [`AgentError::TaskFailed`] when the
    /// task ended with an error; [`AgentError::Journal`] (no such task, a damaged record).
    pub async fn result(&self, id: TaskId, deadline: Duration) -> Result<Reply, AgentError> {
        if let Some(link) = self.link() {
            return link.result(id, deadline).await;
        }
        let journal = self
            .journal()
            .ok_or_else(|| AgentError::NotDurable(self.inner.name.clone()))?;
        super::durable::task_result(&journal, id, deadline).await
    }

    /// Publishes a new incarnation; returns its generation.
    pub(super) fn publish(&self, actor: ActorRef<AgentMsg>, path: Option<ChildPath>, events: EventSink) -> u64 {
        self.inner.incarnations.started(Incarnation { actor, path, events })
    }

    /// Withdraws `actor` if it is still the published incarnation.
    pub(super) fn withdraw(&self, actor: ActorId) {
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
    fn send_task(
        &self,
        mut task: AgentMessage,
        load: LoadGuard,
        asker: Option<Asker>,
        durable: Option<TaskId>,
    ) -> Result<(), AgentError> {
        let (actor, events) = self
            .inner
            .incarnations
            .with_current(|i| i.map(|i| (i.actor.clone(), i.events.clone())))
            .ok_or_else(|| AgentError::NotDelivered(self.inner.name.clone()))?;
        self.fill_recipient(&mut task);
        let mut pending = Pending::new(task, load, asker, events);
        pending.durable = durable;
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
        if let Some(link) = self.link() {
            return link.is_reachable();
        }
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
    /// [`Agent::queue_capacity`](super::Agent::queue_capacity)).
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
        if let Some(link) = self.link() {
            // A remote agent's incarnations are not counted here: this waits until a node
            // hosts it.
            let until = deadline_from_now(deadline);
            while !link.is_reachable() {
                if Instant::now() >= until {
                    return Err(AgentError::Timeout(deadline));
                }
                tokio::time::sleep(REMOTE_POLL).await;
            }
            return Ok(generation);
        }
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
    /// the [module docs](super)).
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
    /// A durable agent ([`Agent::journal`](super::Agent::journal)) writes the task to its
    /// journal before running it, and runs it to its end whether or not the asker still
    /// waits; its outcome stays readable with [`result`](Self::result) (the id is in the
    /// reply's turn events, or use [`submit`](Self::submit) to get it first).
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the ask: the agent skips the task, or cuts its turn
    /// short, as at the deadline (not for a durable agent, see above).
    pub async fn ask(&self, task: AgentMessage, deadline: Duration) -> Result<Reply, AgentError> {
        if let Some(link) = self.link() {
            return link.ask(self.addressed(task), deadline).await;
        }
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
        if let Some(link) = self.link() {
            // The agent's node refuses at once when its queue is full.
            return link.ask(self.addressed(task), deadline).await;
        }
        let until = deadline_from_now(deadline);
        let Some(load) = self.inner.load.try_reserve() else {
            return Err(self.overloaded(task));
        };
        self.ask_reserved(task, load, until, deadline).await
    }

    async fn ask_reserved(
        &self,
        mut task: AgentMessage,
        load: LoadGuard,
        until: Instant,
        deadline: Duration,
    ) -> Result<Reply, AgentError> {
        if self.journal().is_some() && !self.is_running() {
            // Not accepted: nothing waits in the journal for a start.
            return Err(AgentError::NotDelivered(self.inner.name.clone()));
        }
        let durable = self.accept(&mut task).await?;
        let (asker, side) = Asker::new(self.inner.name.clone(), until);
        self.send_task(task, load, Some(asker), durable)?;
        match tokio::time::timeout_at(until, side.answer).await {
            Ok(Ok(answer)) => answer,
            // Every path answers; a port dropped silently still means the agent went down.
            Ok(Err(_)) => Err(AgentError::AgentDown(self.inner.name.clone())),
            Err(_) => Err(AgentError::Timeout(deadline)),
        }
    }

    /// Sends `task` without waiting for an answer. A tell the agent drops without running
    /// it (it stopped first) is reported as an [`AgentEventKind::TaskDropped`](super::AgentEventKind::TaskDropped).
    ///
    /// A tell is never written to a journal, even to a durable agent: it returns at once,
    /// before any disk could be reached. For a task that must survive a crash, use
    /// [`submit`](Self::submit), the durable tell.
    ///
    /// # Errors
    ///
    /// [`AgentError::Overloaded`] at once when the agent's queue is full, with the task
    /// handed back (nothing is dropped silently);
    /// [`AgentError::NotDelivered`] if no incarnation is running.
    pub fn tell(&self, task: AgentMessage) -> Result<(), AgentError> {
        if let Some(link) = self.link() {
            return link.tell(self.addressed(task));
        }
        let Some(load) = self.inner.load.try_reserve() else {
            return Err(self.overloaded(task));
        };
        self.send_task(task, load, None, None)
    }

    /// Interrupts the turn in flight, if any (see the [module docs](super)); answers whether
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
        if let Some(link) = self.link() {
            return link.interrupt().await;
        }
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
        if let Some(link) = self.link() {
            return link.human_input(text.into());
        }
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
        if let Some(link) = self.link() {
            return link.status().await;
        }
        let actor = self.current()?;
        request(&actor, AgentMsg::Status, CONTROL_DEADLINE)
            .await
            .map_err(|e| AgentError::from_request(&self.inner.name, e))
    }
}

/// How often [`AgentRef::wait_started`] looks whether a remote agent is hosted yet.
const REMOTE_POLL: Duration = Duration::from_millis(10);

/// The instant `deadline` from now; a deadline too far to represent is no deadline (about
/// thirty years).
fn deadline_from_now(deadline: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(deadline)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}
