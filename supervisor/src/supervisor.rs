//! The supervisor: its builder, its handle, and its strategies.

mod actor;
mod children;
mod state;
mod stop_chain;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::error::{CallError, CallTimeout, ChildError, NoProc, SpawnError, SpecError};
use crate::escalation::{Escalation, EscalationHandler};
use crate::event::{DEFAULT_OBSERVER_CAPACITY, EventSink, Flushed, Observer, SupervisorEvent};
use crate::factory::{ChildFactory, StartContext, StartError};
use crate::intensity::Intensity;
use crate::introspection::{ChildCounts, ChildInfo, NodeSnapshot, NodeState, TreeSnapshot};
use crate::path::ChildPath;
use crate::spec::{ChildKind, ChildSpec};

pub(crate) use actor::SupervisorActor;
use actor::{Args, StartFailure};
pub(crate) use state::{ask_to_stop, last_words};

/// Which children are restarted when one of them must be (OTP's strategies).
///
/// In every strategy the children to stop are stopped one at a time in
/// *reverse* start order, each with its [`Shutdown`](crate::Shutdown), and the
/// children to start are started in start order. A group restart counts as one
/// restart toward the intensity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited is restarted. The default.
    #[default]
    OneForOne,
    /// All the other children are stopped, then all are restarted.
    OneForAll,
    /// The children started after the one that exited are stopped, then it and
    /// they are restarted.
    RestForOne,
}

/// When a supervisor shuts itself down because *significant* children ended
/// (OTP's `auto_shutdown` flag). See [`ChildSpec::significant`].
///
/// Only a significant child's own exit counts, and only one after which it is
/// not restarted: a transient child's normal exit (`normal`, `shutdown`, or a
/// reason of its own), or any exit of a temporary child. A child stopped by
/// [`Supervisor::terminate_child`], or by a one-for-all or rest-for-one group
/// restart, never counts. The supervisor then stops its other children, last
/// started first, and exits with reason `shutdown`, which its own parent sees
/// as a normal exit: a transient, significant child supervisor that shuts
/// itself down can so shut its parent down in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never: significant children are refused. The default.
    #[default]
    Never,
    /// When any significant child ends on its own.
    AnySignificant,
    /// When every significant child has ended: the last running (or
    /// restarting) significant child ends on its own.
    AllSignificant,
}
/// The answer to a call that changes children, with a marker the caller waits
/// on until the observer has seen what the call caused.
pub(crate) type ChildReply<T> = RpcReplyPort<(Result<T, ChildError>, Flushed)>;

/// The messages a supervisor actor handles. Private: use [`Supervisor`].
pub(crate) enum SupervisorMsg {
    StartChild(ChildSpec, ChildReply<ActorCell>),
    TerminateChild(String, ChildReply<()>),
    RestartChild(String, ChildReply<ActorCell>),
    DeleteChild(String, ChildReply<()>),
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    CountChildren(RpcReplyPort<ChildCounts>),
    DroppedEvents(RpcReplyPort<u64>),
    /// A restart whose start failed is tried again (OTP's `try_again_restart`).
    TryAgain {
        seq: u64,
        epoch: u32,
    },
    /// A restart delayed by backoff is due.
    Resume {
        seq: u64,
        epoch: u32,
    },
    /// An escalation from a child, or passed on by a child supervisor.
    Escalate(Escalation),
    /// Sent to itself by a supervisor that gave up, behind what its mailbox
    /// already held: exit now.
    Exit,
    /// A request only a dynamic supervisor serves.
    Dynamic(crate::dynamic::DynamicRequest),
    /// Stop every child, last started first, then exit with reason
    /// `shutdown` (OTP's `terminate`). Sent by [`Supervisor::stop`] and by a
    /// parent stopping this supervisor.
    Terminate,
    /// The child being stopped overran its shutdown timeout, or its kill grace.
    ShutdownTimer {
        timer: u32,
    },
}

#[cfg(feature = "cluster")]
impl ractor::Message for SupervisorMsg {}

/// The declared shape of a supervisor, shared by all its incarnations.
pub(crate) struct Config {
    pub(crate) id: Arc<str>,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) handler: Option<Arc<dyn EscalationHandler>>,
    pub(crate) observer: Option<Observer>,
    pub(crate) observer_capacity: usize,
    /// The observer is called inline, not through a task.
    pub(crate) observer_inline: bool,
    pub(crate) kill_grace: Duration,
}

/// How long a supervisor waits, by default, for a killed child to end.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(1);

impl Config {
    /// Starts the delivery task of this supervisor's own observer, if it has one.
    fn own_observer(&self) -> Option<EventSink> {
        let observer = self.observer.clone()?;
        Some(if self.observer_inline {
            EventSink::Inline(observer)
        } else {
            EventSink::start(observer, self.observer_capacity)
        })
    }

    fn validate(&self) -> Result<(), SpecError> {
        validate_id(&self.id)?;
        if self.intensity.period.is_zero() {
            return Err(SpecError::InvalidPeriod);
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.children {
            validate_child(c, self.auto_shutdown)?;
            if !seen.insert(&*c.id) {
                return Err(SpecError::DuplicateChild(c.id.to_string()));
            }
        }
        Ok(())
    }
}

pub(crate) fn validate_id(id: &str) -> Result<(), SpecError> {
    if id.is_empty() || id.contains('/') {
        Err(SpecError::InvalidId(id.to_string()))
    } else {
        Ok(())
    }
}

/// Checks one child spec against its supervisor's flags, in OTP's order
/// (`validSignificant/3`: auto-shutdown `never` first, then `permanent`).
pub(crate) fn validate_child(spec: &ChildSpec, auto_shutdown: AutoShutdown) -> Result<(), SpecError> {
    validate_id(&spec.id)?;
    if spec.significant {
        if auto_shutdown == AutoShutdown::Never {
            return Err(SpecError::SignificantWithoutAutoShutdown(spec.id.to_string()));
        }
        if spec.restart == crate::spec::Restart::Permanent {
            return Err(SpecError::SignificantPermanent(spec.id.to_string()));
        }
    }
    Ok(())
}

/// Declares a supervisor: its strategy, intensity, children and handlers.
///
/// ```
/// use std::time::Duration;
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
/// use warden_supervisor::{ChildSpec, Restart, Shutdown, Strategy, Supervisor};
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = Supervisor::builder("root")
///     .strategy(Strategy::RestForOne)
///     .intensity(3, Duration::from_secs(5))
///     .child(ChildSpec::actor("planner", || (Worker, ()))
///         .restart(Restart::Permanent)
///         .shutdown(Shutdown::Timeout(Duration::from_secs(2))))
///     .child(Supervisor::builder("workers")
///         .strategy(Strategy::OneForOne)
///         .child(ChildSpec::actor("w1", || (Worker, ())))
///         .into_child())
///     .spawn()
///     .await?;
/// assert_eq!(root.count_children().await?.active, 2);
/// root.stop().await;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until spawned or turned into a child"]
pub struct SupervisorBuilder {
    id: String,
    strategy: Strategy,
    intensity: Intensity,
    auto_shutdown: AutoShutdown,
    children: Vec<ChildSpec>,
    handler: Option<Arc<dyn EscalationHandler>>,
    observer: Option<Observer>,
    observer_capacity: usize,
    observer_inline: bool,
    kill_grace: Duration,
}

impl SupervisorBuilder {
    /// Sets the strategy (default [`Strategy::OneForOne`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most `max_restarts` restarts within `period`; one more and the
    /// supervisor gives up (default: 1 in 5 seconds, as OTP).
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Intensity { max_restarts, period };
        self
    }

    /// Sets when the supervisor shuts itself down because significant children
    /// ended (default [`AutoShutdown::Never`], which refuses significant
    /// children).
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Adds several children, in order.
    pub fn children(mut self, specs: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.children.extend(specs);
        self
    }

    /// Sets the handler for escalations that reach this supervisor: those
    /// raised by its children, passed on by child supervisors, or its own
    /// give-up when it is a root. See [`crate::escalation`].
    pub fn escalation_handler(mut self, handler: impl EscalationHandler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Sets a callback that sees every [`SupervisorEvent`] of this supervisor
    /// and of the child supervisors below it that set none of their own.
    ///
    /// It runs in a task of its own, fed through a bounded channel, never
    /// inside a supervisor: see [`crate::event`] for what that means.
    pub fn observer(mut self, observer: impl Fn(&SupervisorEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self.observer_inline = false;
        self
    }

    /// Sets a callback that sees every [`SupervisorEvent`], as
    /// [`observer`](Self::observer) does, but calls it **inside the supervisor**,
    /// as each event happens, rather than in a task of its own: for an observer
    /// that only hands the event on without waiting (a `try_send` into its own
    /// queue, as Warden Studio's does), it saves a task wake-up per event. While
    /// it runs the supervisor does nothing else, so it must return at once; a
    /// panic in it is logged and the supervisor goes on. A child's exit in a
    /// sequence of stops is reported where its end is seen, possibly on the
    /// child's own task (see [`crate::event`]).
    pub fn inline_observer(mut self, observer: impl Fn(&SupervisorEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self.observer_inline = true;
        self
    }

    /// How many events the observer's channel holds before events are
    /// dropped (default [`DEFAULT_OBSERVER_CAPACITY`], at least 1).
    pub fn observer_capacity(mut self, capacity: usize) -> Self {
        self.observer_capacity = capacity;
        self
    }

    /// How long to wait for a killed child to end (default
    /// [`DEFAULT_KILL_GRACE`]). A kill takes effect when the child's task next
    /// yields; a child stuck in code that never yields (a blocking call, a busy
    /// loop) would hold up every stop of it forever. After the grace the child
    /// is recorded as killed, a [`SupervisorEvent::ChildAbandoned`] is emitted,
    /// and the supervisor goes on: the child's task is detached, and ends when
    /// that code returns. Shutdown is then bounded by the child's shutdown
    /// timeout plus this grace.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    fn into_config(self) -> Config {
        Config {
            id: Arc::from(self.id),
            strategy: self.strategy,
            intensity: self.intensity,
            auto_shutdown: self.auto_shutdown,
            children: self.children,
            handler: self.handler,
            observer: self.observer,
            observer_capacity: self.observer_capacity,
            observer_inline: self.observer_inline,
            kill_grace: self.kill_grace,
        }
    }

    /// Turns this supervisor into a child spec for another supervisor: a
    /// permanent child with [`Shutdown::Infinity`](crate::Shutdown::Infinity).
    /// Every restart starts it with the children declared here (children added
    /// later with `start_child` are not kept, as in OTP).
    pub fn into_child(self) -> ChildSpec {
        let config = Arc::new(self.into_config());
        let id = config.id.to_string();
        ChildSpec::with_kind(id, ChildKind::Supervisor, Arc::new(ChildSupervisor(config)))
    }

    /// Starts the supervisor as a root: starts its children in order and
    /// returns once all of them have started.
    ///
    /// # Errors
    ///
    /// [`SpawnError::InvalidSpec`] for a bad spec (nothing is started);
    /// [`SpawnError::ChildFailedToStart`] when a child fails to start, after the
    /// children started before it were stopped in reverse order.
    ///
    /// # Cancellation
    ///
    /// Dropping the future midway drops the half-started supervisor, whose
    /// started children ractor then kills.
    pub async fn spawn(self) -> Result<Supervisor, SpawnError> {
        let config = Arc::new(self.into_config());
        config.validate()?;
        let path = ChildPath::root(&config.id);
        let observer = config.own_observer();
        let flush = observer.clone();
        let args = Args {
            config,
            path: path.clone(),
            parent: None,
            observer,
            owns_observer: true,
        };
        let spawned = Actor::spawn(None, SupervisorActor, args).await;
        if let Some(observer) = flush {
            observer.flush().wait(None).await;
        }
        match spawned {
            Ok((actor, _join)) => Ok(Supervisor { actor, path }),
            Err(ractor::SpawnErr::StartupFailed(err)) => match err.downcast::<StartFailure>() {
                Ok(failure) => Err((*failure).into_spawn_error()),
                Err(other) => Err(SpawnError::Spawn(StartError::Init(crate::exit::Failure(Arc::from(
                    other,
                ))))),
            },
            Err(other) => Err(SpawnError::Spawn(StartError::from_spawn(other))),
        }
    }
}

impl fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("id", &self.id)
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("auto_shutdown", &self.auto_shutdown)
            .field("children", &self.children)
            .field("kill_grace", &self.kill_grace)
            .finish_non_exhaustive()
    }
}

/// The factory of a child supervisor.
struct ChildSupervisor(Arc<Config>);

impl ChildFactory for ChildSupervisor {
    fn start(&self, ctx: StartContext) -> crate::factory::BoxFuture<Result<ActorCell, StartError>> {
        let config = self.0.clone();
        Box::pin(async move {
            if let Err(e) = config.validate() {
                return Err(StartError::other(e));
            }
            let own = config.own_observer();
            let args = Args {
                owns_observer: own.is_some(),
                observer: own.or_else(|| ctx.observer.clone()),
                config,
                path: ctx.path.clone(),
                parent: Some(ctx.escalator.supervisor.clone()),
            };
            ctx.spawn(SupervisorActor, args).await.map(Into::into)
        })
    }
}

/// A handle on a running supervisor: the dynamic-children API, introspection and
/// shutdown. Cheap to clone; it does not keep the supervisor alive.
///
/// Every call is a message to the supervisor, answered after the restarts and
/// stops it is busy with. A call to a supervisor that is gone answers
/// [`NoProc`] (or [`ChildError::NoProc`]). Each call has a `*_within` variant
/// that gives up after a deadline with a typed [`CallTimeout`], for callers
/// that must not wait on a busy supervisor.
#[derive(Clone)]
pub struct Supervisor {
    actor: ActorRef<SupervisorMsg>,
    path: ChildPath,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("path", &self.path)
            .field("actor", &self.actor.get_id())
            .finish()
    }
}

impl Supervisor {
    /// Starts declaring a supervisor called `id`.
    pub fn builder(id: impl Into<String>) -> SupervisorBuilder {
        SupervisorBuilder {
            id: id.into(),
            strategy: Strategy::default(),
            intensity: Intensity::default(),
            auto_shutdown: AutoShutdown::default(),
            children: Vec::new(),
            handler: None,
            observer: None,
            observer_capacity: DEFAULT_OBSERVER_CAPACITY,
            observer_inline: false,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    pub(crate) fn from_cell(cell: ActorCell, path: ChildPath) -> Self {
        Self {
            actor: cell.into(),
            path,
        }
    }

    /// The supervisor's path.
    pub fn path(&self) -> &ChildPath {
        &self.path
    }

    /// The supervisor's actor, to link to or monitor.
    pub fn actor(&self) -> ActorCell {
        self.actor.get_cell()
    }

    /// Whether the supervisor is still running.
    pub fn is_alive(&self) -> bool {
        self.actor.get_status() <= ractor::ActorStatus::Upgrading
    }

    pub(crate) async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, NoProc> {
        self.call_within(msg, None).await.map_err(|e| match e {
            CallError::NoProc(e) => e,
            // No deadline, no timeout; but never panic on it.
            CallError::Timeout(t) => NoProc {
                supervisor: t.supervisor,
            },
        })
    }

    pub(crate) async fn call_within<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
        deadline: Option<Duration>,
    ) -> Result<T, CallError> {
        match self.actor.call(msg, deadline).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(CallError::Timeout(CallTimeout {
                supervisor: self.path.clone(),
                deadline: deadline.unwrap_or_default(),
            })),
            _ => Err(CallError::NoProc(NoProc {
                supervisor: self.path.clone(),
            })),
        }
    }

    pub(crate) async fn child_call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(ChildReply<T>) -> SupervisorMsg,
        deadline: Option<Duration>,
    ) -> Result<T, ChildError> {
        let (result, delivered) = self.call_within(msg, deadline).await?;
        delivered.wait(deadline).await;
        result
    }

    /// Adds a child at the end of the start order and starts it.
    ///
    /// # Errors
    ///
    /// [`ChildError::AlreadyStarted`] if a running child has that id,
    /// [`ChildError::AlreadyPresent`] if a stopped one does,
    /// [`ChildError::StartFailed`] if the start fails (the spec is discarded),
    /// [`ChildError::InvalidSpec`] for a bad id, or for a significant child
    /// that is permanent or under [`AutoShutdown::Never`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not undo the start.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, ChildError> {
        self.child_call(|r| SupervisorMsg::StartChild(spec, r), None).await
    }

    /// Stops a child with its shutdown spec and keeps its spec, not running (a
    /// temporary child's spec is removed). It is not a restart and does not
    /// count as one. Stopping a child that is not running answers `Ok`.
    ///
    /// # Errors
    ///
    /// [`ChildError::NotFound`] for an unknown id.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not stop the shutdown.
    pub async fn terminate_child(&self, id: &str) -> Result<(), ChildError> {
        let id = id.to_string();
        self.child_call(|r| SupervisorMsg::TerminateChild(id, r), None).await
    }

    /// Starts a child whose spec is kept but not running.
    ///
    /// # Errors
    ///
    /// [`ChildError::Running`], [`ChildError::Restarting`],
    /// [`ChildError::NotFound`], or [`ChildError::StartFailed`] (the spec stays).
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not undo the start.
    pub async fn restart_child(&self, id: &str) -> Result<ActorCell, ChildError> {
        let id = id.to_string();
        self.child_call(|r| SupervisorMsg::RestartChild(id, r), None).await
    }

    /// Removes the spec of a child that is not running.
    ///
    /// # Errors
    ///
    /// [`ChildError::Running`], [`ChildError::Restarting`] or [`ChildError::NotFound`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not undo the deletion.
    pub async fn delete_child(&self, id: &str) -> Result<(), ChildError> {
        let id = id.to_string();
        self.child_call(|r| SupervisorMsg::DeleteChild(id, r), None).await
    }

    /// Every child spec, in start order (OTP lists newest first).
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, NoProc> {
        self.call(SupervisorMsg::WhichChildren).await
    }

    /// Counts of specs, running children, supervisors and workers.
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn count_children(&self) -> Result<ChildCounts, NoProc> {
        self.call(SupervisorMsg::CountChildren).await
    }

    /// How many events this supervisor's observer missed because its channel
    /// was full (see [`crate::event`]). The count is the observer's: shared
    /// with the supervisors of the tree that report to the same observer.
    /// Zero without an observer.
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn dropped_events(&self) -> Result<u64, NoProc> {
        self.call(SupervisorMsg::DroppedEvents).await
    }

    /// A picture of the whole tree below this supervisor.
    ///
    /// # Errors
    ///
    /// [`NoProc`] if this supervisor is gone. A child supervisor that stops
    /// while the picture is taken shows as [`NodeState::Gone`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn snapshot(&self) -> Result<TreeSnapshot, NoProc> {
        let children = self.which_children().await?;
        let mut root = NodeSnapshot {
            path: self.path.clone(),
            kind: ChildKind::Supervisor,
            state: NodeState::Running,
            restart: None,
            restart_count: 0,
            last_exit: None,
            children: Vec::new(),
        };
        root.children = snapshot_children(children).await;
        Ok(TreeSnapshot { root })
    }

    /// [`start_child`](Self::start_child), giving up waiting for the answer
    /// after `deadline`.
    ///
    /// # Errors
    ///
    /// As `start_child`, and [`ChildError::Timeout`] when the supervisor did
    /// not answer in time (it is busy, for example stopping a slow child).
    ///
    /// # Cancellation
    ///
    /// Neither a timeout nor dropping the future undoes the start: the request
    /// stays in the supervisor's mailbox and the child may still be started.
    pub async fn start_child_within(&self, spec: ChildSpec, deadline: Duration) -> Result<ActorCell, ChildError> {
        self.child_call(|r| SupervisorMsg::StartChild(spec, r), Some(deadline))
            .await
    }

    /// [`terminate_child`](Self::terminate_child), giving up waiting for the
    /// answer after `deadline`.
    ///
    /// # Errors
    ///
    /// As `terminate_child`, and [`ChildError::Timeout`].
    ///
    /// # Cancellation
    ///
    /// Neither a timeout nor dropping the future stops the shutdown once asked.
    pub async fn terminate_child_within(&self, id: &str, deadline: Duration) -> Result<(), ChildError> {
        let id = id.to_string();
        self.child_call(|r| SupervisorMsg::TerminateChild(id, r), Some(deadline))
            .await
    }

    /// [`restart_child`](Self::restart_child), giving up waiting for the
    /// answer after `deadline`.
    ///
    /// # Errors
    ///
    /// As `restart_child`, and [`ChildError::Timeout`].
    ///
    /// # Cancellation
    ///
    /// Neither a timeout nor dropping the future undoes the start.
    pub async fn restart_child_within(&self, id: &str, deadline: Duration) -> Result<ActorCell, ChildError> {
        let id = id.to_string();
        self.child_call(|r| SupervisorMsg::RestartChild(id, r), Some(deadline))
            .await
    }

    /// [`delete_child`](Self::delete_child), giving up waiting for the answer
    /// after `deadline`.
    ///
    /// # Errors
    ///
    /// As `delete_child`, and [`ChildError::Timeout`].
    ///
    /// # Cancellation
    ///
    /// Neither a timeout nor dropping the future undoes the deletion.
    pub async fn delete_child_within(&self, id: &str, deadline: Duration) -> Result<(), ChildError> {
        let id = id.to_string();
        self.child_call(|r| SupervisorMsg::DeleteChild(id, r), Some(deadline))
            .await
    }

    /// [`which_children`](Self::which_children), at most `deadline`.
    ///
    /// # Errors
    ///
    /// [`CallError::NoProc`] if the supervisor is gone, [`CallError::Timeout`]
    /// if it did not answer in time.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn which_children_within(&self, deadline: Duration) -> Result<Vec<ChildInfo>, CallError> {
        self.call_within(SupervisorMsg::WhichChildren, Some(deadline)).await
    }

    /// [`count_children`](Self::count_children), at most `deadline`.
    ///
    /// # Errors
    ///
    /// [`CallError::NoProc`] or [`CallError::Timeout`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn count_children_within(&self, deadline: Duration) -> Result<ChildCounts, CallError> {
        self.call_within(SupervisorMsg::CountChildren, Some(deadline)).await
    }

    /// [`snapshot`](Self::snapshot) of the whole tree, all of it within `deadline`.
    ///
    /// # Errors
    ///
    /// [`CallError::NoProc`] if this supervisor is gone, [`CallError::Timeout`]
    /// if the picture was not complete in time (some supervisor in the tree
    /// was busy).
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn snapshot_within(&self, deadline: Duration) -> Result<TreeSnapshot, CallError> {
        match tokio::time::timeout(deadline, self.snapshot()).await {
            Ok(snapshot) => snapshot.map_err(CallError::NoProc),
            Err(_) => Err(CallError::Timeout(CallTimeout {
                supervisor: self.path.clone(),
                deadline,
            })),
        }
    }

    /// Stops the supervisor: its children in reverse start order, depth first,
    /// each with its shutdown spec, then the supervisor itself (reason
    /// `shutdown`). Returns once everything has stopped; at once if it already had.
    ///
    /// The request waits behind what the supervisor's mailbox already holds,
    /// as OTP's exit signal to a supervisor that traps exits does. Each child
    /// is reported with its own exit reason: `shutdown` when it stopped as
    /// asked, `killed` when its timeout ran out, and whatever it ended with if
    /// it crashed (or stopped on its own) meanwhile. A child that a kill cannot
    /// end (see [`SupervisorBuilder::kill_grace`]) does not hold the shutdown up.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not stop the shutdown.
    pub async fn stop(&self) {
        if self.actor.send_message(SupervisorMsg::Terminate).is_ok() {
            self.actor.wait(None).await.ok();
        }
    }

    /// Kills the supervisor at once, untrappably; ractor then kills its children.
    /// This is a crash, not a shutdown: a parent restarts it.
    pub fn kill(&self) {
        self.actor.kill();
    }

    /// Waits until the supervisor has stopped, for whatever reason.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn wait(&self) {
        self.actor.wait(None).await.ok();
    }
}

fn snapshot_children(children: Vec<ChildInfo>) -> futures::future::BoxFuture<'static, Vec<NodeSnapshot>> {
    Box::pin(async move {
        let mut out = Vec::with_capacity(children.len());
        for info in children {
            let state = match &info.state {
                crate::ChildState::Running(_) => NodeState::Running,
                crate::ChildState::NotRunning => NodeState::NotRunning,
                crate::ChildState::Restarting => NodeState::Restarting,
            };
            let mut node = NodeSnapshot {
                path: info.path.clone(),
                kind: info.kind,
                state,
                restart: Some(info.restart),
                restart_count: info.restart_count,
                last_exit: info.last_exit.clone(),
                children: Vec::new(),
            };
            if let Some(sup) = info.supervisor() {
                match sup.which_children().await {
                    Ok(grandchildren) => node.children = snapshot_children(grandchildren).await,
                    Err(_) => node.state = NodeState::Gone,
                }
            }
            out.push(node);
        }
        out
    })
}
