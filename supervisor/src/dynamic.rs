//! The dynamic supervisor: OTP's `simple_one_for_one`.
//!
//! One child template, many children started from it at run time with
//! arguments of their own ([`DynamicSupervisor::start_child`]). It keeps per
//! child only what it needs to restart it: the actor, the arguments (none for
//! a temporary child), a number and a restart count. All children share one
//! restart intensity, and a shutdown stops them all **in parallel** under one
//! shared timer, then kills the stragglers (SEMANTICS 33, 41–45).
//!
//! ```
//! use std::time::Duration;
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use warden_supervisor::{DynamicSupervisor, Restart};
//!
//! /// A worker that serves one session.
//! struct Session;
//! impl Actor for Session {
//!     type Msg = ();
//!     type State = String;
//!     type Arguments = String;
//!     async fn pre_start(&self, _: ActorRef<()>, user: String) -> Result<String, ActorProcessingErr> {
//!         Ok(user)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = DynamicSupervisor::of_actors("sessions", |user: String| (Session, user))
//!     .restart(Restart::Transient)
//!     .intensity(10, Duration::from_secs(5))
//!     .spawn()
//!     .await?;
//! let ada = sessions.start_child("ada".to_string()).await?;
//! sessions.start_child("grace".to_string()).await?;
//! assert_eq!(sessions.count_children().await?.active, 2);
//! sessions.terminate_child(&ada).await?;
//! assert_eq!(sessions.count_children().await?.active, 1);
//! sessions.stop().await; // every child at once
//! # Ok(()) }
//! ```
//!
//! Under a regular [`Supervisor`], [`DynamicSupervisorBuilder::into_child`]
//! makes it a child like any other: it escalates its give-up to its parent,
//! which restarts it (with no children, as OTP does) by its own strategy.
//! The regular [`Supervisor`] handle works on it too, with OTP's answers:
//! `restart_child`, `delete_child` and `terminate_child` by id answer
//! [`ChildError::SimpleOneForOne`].

mod state;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell};

use crate::error::{ChildError, NoProc, SpawnError, SpecError};
use crate::escalation::{Escalation, EscalationHandler};
use crate::event::{Flushed, Observer, SupervisorEvent};
use crate::factory::{BoxFuture, ChildFactory, StartContext, StartError};
use crate::intensity::Intensity;
use crate::introspection::{ChildCounts, ChildInfo, TreeSnapshot};
use crate::path::ChildPath;
use crate::spec::{ChildKind, ChildSpec, Restart, Shutdown};
use crate::supervisor::{ChildReply, Supervisor, SupervisorMsg, validate_id};

use state::{DynamicActor, DynamicArgs};

/// A child's arguments, as the supervisor keeps them: of the template's type,
/// behind one pointer (no allocation at all for a zero-sized type).
pub(crate) type ErasedArgs = Box<dyn Any + Send + Sync>;

/// The requests only a dynamic supervisor serves. A regular supervisor
/// answers them [`ChildError::NotFound`], as OTP answers a pid given to a
/// supervisor that is not `simple_one_for_one`.
pub(crate) enum DynamicRequest {
    /// Start a child from the template with these arguments.
    StartChild(ErasedArgs, ChildReply<ActorCell>),
    /// Stop this child, by its actor.
    TerminateChild(ActorCell, ChildReply<()>),
}

impl DynamicRequest {
    /// Answers the request with `error`.
    pub(crate) fn refuse(self, error: ChildError) {
        // The caller may have given up waiting; that is its business.
        match self {
            Self::StartChild(_, reply) => {
                let _ = reply.send((Err(error), Flushed::default()));
            }
            Self::TerminateChild(_, reply) => {
                let _ = reply.send((Err(error), Flushed::default()));
            }
        }
    }
}

/// The template, with its argument type erased so that the supervisor's state
/// has one type whatever the arguments are (a parent reads it when it exits).
pub(crate) trait Template: Send + Sync + 'static {
    /// Starts a child with (a clone of) `args`, which [`Template::accepts`].
    fn start(&self, ctx: StartContext, args: &(dyn Any + Send + Sync)) -> BoxFuture<Result<ActorCell, StartError>>;
    /// Whether `args` are of the template's argument type.
    fn accepts(&self, args: &(dyn Any + Send + Sync)) -> bool;
    /// The name of the template's argument type, for errors.
    fn args_type(&self) -> &'static str;
}

/// A template made of a function.
struct FnTemplate<A, F> {
    start: F,
    _args: PhantomData<fn(A)>,
}

impl<A, F, Fut> Template for FnTemplate<A, F>
where
    A: Clone + Send + Sync + 'static,
    F: Fn(StartContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ActorCell, StartError>> + Send + 'static,
{
    fn start(&self, ctx: StartContext, args: &(dyn Any + Send + Sync)) -> BoxFuture<Result<ActorCell, StartError>> {
        match args.downcast_ref::<A>() {
            Some(args) => Box::pin((self.start)(ctx, args.clone())),
            None => {
                let error = StartError::other(WrongArguments(self.args_type()));
                Box::pin(async move { Err(error) })
            }
        }
    }

    fn accepts(&self, args: &(dyn Any + Send + Sync)) -> bool {
        args.is::<A>()
    }

    fn args_type(&self) -> &'static str {
        std::any::type_name::<A>()
    }
}

/// Arguments of another type than the template's.
#[derive(Debug, thiserror::Error)]
#[error("the template takes arguments of type {0}")]
struct WrongArguments(&'static str);

/// The declared shape of a dynamic supervisor, shared by all its incarnations.
pub(crate) struct DynamicConfig {
    pub(crate) id: Arc<str>,
    pub(crate) intensity: Intensity,
    pub(crate) template: Arc<dyn Template>,
    pub(crate) kind: ChildKind,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) handler: Option<Arc<dyn EscalationHandler>>,
    pub(crate) observer: Option<Observer>,
}

impl DynamicConfig {
    fn validate(&self) -> Result<(), SpecError> {
        validate_id(&self.id)?;
        if self.intensity.period.is_zero() {
            return Err(SpecError::InvalidPeriod);
        }
        Ok(())
    }
}

/// Declares a [`DynamicSupervisor`]: its template, the restart type and
/// shutdown of every child, its intensity and handlers.
#[must_use = "a builder does nothing until spawned or turned into a child"]
pub struct DynamicSupervisorBuilder<A> {
    id: String,
    intensity: Intensity,
    template: Arc<dyn Template>,
    kind: ChildKind,
    restart: Restart,
    shutdown: Shutdown,
    handler: Option<Arc<dyn EscalationHandler>>,
    observer: Option<Observer>,
    _args: PhantomData<fn(A)>,
}

impl<A: Clone + Send + Sync + 'static> DynamicSupervisorBuilder<A> {
    /// At most `max_restarts` restarts within `period`, all children together;
    /// one more and the supervisor gives up (default: 1 in 5 seconds, as OTP).
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Intensity { max_restarts, period };
        self
    }

    /// Sets when every child is restarted (default [`Restart::Permanent`]). A
    /// temporary child's arguments are not kept.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how every child is stopped (default: ask, then kill after 5 s).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Declares what every child is (default [`ChildKind::Worker`]): a dynamic
    /// supervisor of subtrees says [`ChildKind::Supervisor`], so that its
    /// children are stopped with no time limit unless [`shutdown`](Self::shutdown)
    /// says otherwise, and introspection hands out a [`Supervisor`] handle on
    /// each ([`ChildInfo::supervisor`]).
    pub fn kind(mut self, kind: ChildKind) -> Self {
        if kind != self.kind && self.shutdown == default_shutdown(self.kind) {
            self.shutdown = default_shutdown(kind);
        }
        self.kind = kind;
        self
    }

    /// Sets the handler for escalations that reach this supervisor. See
    /// [`SupervisorBuilder::escalation_handler`](crate::SupervisorBuilder::escalation_handler).
    pub fn escalation_handler(mut self, handler: impl EscalationHandler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Sets a callback that sees every [`SupervisorEvent`] of this supervisor.
    pub fn observer(mut self, observer: impl Fn(&SupervisorEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    fn into_config(self) -> Arc<DynamicConfig> {
        Arc::new(DynamicConfig {
            id: Arc::from(self.id),
            intensity: self.intensity,
            template: self.template,
            kind: self.kind,
            restart: self.restart,
            shutdown: self.shutdown,
            handler: self.handler,
            observer: self.observer,
        })
    }

    /// Turns this supervisor into a child spec for a regular [`Supervisor`]: a
    /// permanent child with [`Shutdown::Infinity`]. Every restart starts it
    /// with no children. Get a handle on the running one with
    /// [`DynamicSupervisor::from_supervisor`].
    pub fn into_child(self) -> ChildSpec {
        let config = self.into_config();
        let id = config.id.to_string();
        ChildSpec::with_kind(id, ChildKind::Supervisor, Arc::new(ChildDynamic(config)))
    }

    /// Starts the supervisor as a root, with no children.
    ///
    /// # Errors
    ///
    /// [`SpawnError::InvalidSpec`] for a bad id or a zero period;
    /// [`SpawnError::Spawn`] if ractor refuses the spawn.
    pub async fn spawn(self) -> Result<DynamicSupervisor<A>, SpawnError> {
        let config = self.into_config();
        config.validate()?;
        let path = ChildPath::root(&config.id);
        let args = DynamicArgs {
            config,
            path: path.clone(),
            parent: None,
            inherited_observer: None,
        };
        match Actor::spawn(None, DynamicActor, args).await {
            Ok((actor, _join)) => Ok(DynamicSupervisor::from_supervisor(Supervisor::from_cell(
                actor.into(),
                path,
            ))),
            Err(err) => Err(SpawnError::Spawn(StartError::from_spawn(err))),
        }
    }
}

impl<A> fmt::Debug for DynamicSupervisorBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSupervisorBuilder")
            .field("id", &self.id)
            .field("args", &self.template.args_type())
            .field("intensity", &self.intensity)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// How children of `kind` are stopped unless told otherwise.
fn default_shutdown(kind: ChildKind) -> Shutdown {
    match kind {
        ChildKind::Worker => Shutdown::WORKER_DEFAULT,
        ChildKind::Supervisor => Shutdown::Infinity,
    }
}

/// The factory of a dynamic supervisor that is a child of a regular one.
struct ChildDynamic(Arc<DynamicConfig>);

impl ChildFactory for ChildDynamic {
    fn start(&self, ctx: StartContext) -> BoxFuture<Result<ActorCell, StartError>> {
        let config = self.0.clone();
        Box::pin(async move {
            if let Err(e) = config.validate() {
                return Err(StartError::other(e));
            }
            let args = DynamicArgs {
                config,
                path: ctx.path.clone(),
                parent: Some(ctx.escalator.supervisor.clone()),
                inherited_observer: ctx.observer.clone(),
            };
            ctx.spawn(DynamicActor, args).await.map(Into::into)
        })
    }
}

/// What a dynamic supervisor that exited had to pass on to its parent, if
/// `state` is a dynamic supervisor's final state.
pub(crate) fn last_words(state: Box<dyn Any + Send>) -> Vec<Escalation> {
    state::last_words(state)
}

/// A handle on a running dynamic supervisor (OTP's `simple_one_for_one`),
/// whose children are started from one template with arguments of type `A`.
/// Cheap to clone; it does not keep the supervisor alive.
///
/// Children have no ids of their own (OTP's `undefined`): each is named by a
/// number the supervisor gives it at its first start and keeps across its
/// restarts, so its path is `<supervisor>/<number>`; it is stopped by its actor.
pub struct DynamicSupervisor<A> {
    inner: Supervisor,
    _args: PhantomData<fn(A)>,
}

impl<A> Clone for DynamicSupervisor<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _args: PhantomData,
        }
    }
}

impl<A> fmt::Debug for DynamicSupervisor<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSupervisor")
            .field("path", self.inner.path())
            .field("actor", &self.inner.actor().get_id())
            .finish()
    }
}

impl<A: Clone + Send + Sync + 'static> DynamicSupervisor<A> {
    /// Starts declaring a dynamic supervisor called `id` whose children are
    /// started by `template` (OTP's start function: called with the child's
    /// arguments on its first start and with a clone of them on every restart).
    /// The child must be spawned linked to the supervisor, as
    /// [`StartContext::spawn`] does.
    pub fn builder<F, Fut>(id: impl Into<String>, template: F) -> DynamicSupervisorBuilder<A>
    where
        F: Fn(StartContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, StartError>> + Send + 'static,
    {
        DynamicSupervisorBuilder {
            id: id.into(),
            intensity: Intensity::default(),
            template: Arc::new(FnTemplate {
                start: template,
                _args: PhantomData,
            }),
            kind: ChildKind::Worker,
            restart: Restart::Permanent,
            shutdown: Shutdown::WORKER_DEFAULT,
            handler: None,
            observer: None,
            _args: PhantomData,
        }
    }

    /// A dynamic supervisor of ractor actors: `make` turns a child's arguments
    /// into the actor and its own arguments, on every start.
    pub fn of_actors<Act, F>(id: impl Into<String>, make: F) -> DynamicSupervisorBuilder<A>
    where
        Act: Actor,
        F: Fn(A) -> (Act, Act::Arguments) + Send + Sync + 'static,
    {
        Self::builder(id, move |ctx: StartContext, args: A| {
            let (actor, actor_args) = make(args);
            async move { ctx.spawn(actor, actor_args).await.map(ActorCell::from) }
        })
    }

    /// A dynamic supervisor of whole subtrees (or of any child a [`ChildSpec`]
    /// describes): `make` turns a child's arguments into a spec, on every start,
    /// and the spec's factory starts it ([`ChildSpec::start`]). The spec's id,
    /// restart, shutdown and backoff are not used: the children are numbered,
    /// and [`restart`](DynamicSupervisorBuilder::restart) and
    /// [`shutdown`](DynamicSupervisorBuilder::shutdown) apply to all of them.
    /// Say [`kind`](DynamicSupervisorBuilder::kind)`(ChildKind::Supervisor)`
    /// when the children are supervisors.
    ///
    /// ```
    /// use warden_supervisor::{ChildKind, ChildSpec, DynamicSupervisor, Restart, Supervisor};
    /// # use ractor::{Actor, ActorProcessingErr, ActorRef};
    /// # struct Worker;
    /// # impl Actor for Worker {
    /// #     type Msg = (); type State = (); type Arguments = ();
    /// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // One team (a supervisor of two workers) per customer, started at run time.
    /// let teams = DynamicSupervisor::of_specs("teams", |customer: String| {
    ///     Supervisor::builder(customer)
    ///         .child(ChildSpec::actor("reader", || (Worker, ())))
    ///         .child(ChildSpec::actor("writer", || (Worker, ())))
    ///         .into_child()
    /// })
    /// .kind(ChildKind::Supervisor)
    /// .restart(Restart::Transient)
    /// .spawn()
    /// .await?;
    /// teams.start_child("acme".to_string()).await?;
    /// let team = &teams.which_children().await?[0];
    /// assert_eq!(team.path.as_str(), "teams/0");
    /// assert_eq!(team.supervisor().unwrap().which_children().await?.len(), 2);
    /// teams.stop().await;
    /// # Ok(()) }
    /// ```
    pub fn of_specs<F>(id: impl Into<String>, make: F) -> DynamicSupervisorBuilder<A>
    where
        F: Fn(A) -> ChildSpec + Send + Sync + 'static,
    {
        Self::builder(id, move |ctx: StartContext, args: A| make(args).start(ctx))
    }

    /// A typed handle on a dynamic supervisor reached through a regular
    /// handle (for example [`ChildInfo::supervisor`] on the parent's
    /// `which_children`). If `A` is not its template's argument type,
    /// `start_child` answers [`ChildError::WrongArguments`].
    pub fn from_supervisor(supervisor: Supervisor) -> Self {
        Self {
            inner: supervisor,
            _args: PhantomData,
        }
    }

    /// Starts a child from the template with `args` (OTP's
    /// `start_child(Sup, ExtraArgs)`).
    ///
    /// # Errors
    ///
    /// [`ChildError::StartFailed`] if the start fails (nothing is kept),
    /// [`ChildError::WrongArguments`] if `A` is not the template's argument
    /// type, [`ChildError::NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not undo the start.
    pub async fn start_child(&self, args: A) -> Result<ActorCell, ChildError> {
        let args: ErasedArgs = Box::new(args);
        self.inner
            .child_call(|r| SupervisorMsg::Dynamic(DynamicRequest::StartChild(args, r)), None)
            .await
    }

    /// Stops the child running as `child` with the shutdown spec and forgets
    /// it; it is not a restart and does not count as one. A former child
    /// that is no longer running answers `Ok`.
    ///
    /// # Errors
    ///
    /// [`ChildError::NotFound`] if `child` is alive and not a child of this
    /// supervisor (it is left alone); [`ChildError::NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not stop the shutdown.
    pub async fn terminate_child(&self, child: &ActorCell) -> Result<(), ChildError> {
        let child = child.clone();
        self.inner
            .child_call(
                |r| SupervisorMsg::Dynamic(DynamicRequest::TerminateChild(child, r)),
                None,
            )
            .await
    }
}

impl<A> DynamicSupervisor<A> {
    /// The supervisor's path.
    pub fn path(&self) -> &ChildPath {
        self.inner.path()
    }

    /// The supervisor's actor, to link to or monitor.
    pub fn actor(&self) -> ActorCell {
        self.inner.actor()
    }

    /// Whether the supervisor is still running.
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }

    /// The untyped handle, which every supervisor answers.
    pub fn as_supervisor(&self) -> &Supervisor {
        &self.inner
    }

    /// Every child, newest first (by first start), as OTP lists them: running,
    /// or restarting (its restart failed and is tried again). A child's
    /// `last_exit` is not kept (`None`).
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, NoProc> {
        self.inner.which_children().await
    }

    /// OTP's counts: `specs` is always 1 (the template); `active` the running
    /// children; `workers` (or `supervisors`) every child, restarting ones included.
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn count_children(&self) -> Result<ChildCounts, NoProc> {
        self.inner.count_children().await
    }

    /// A picture of the supervisor and its children.
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn snapshot(&self) -> Result<TreeSnapshot, NoProc> {
        self.inner.snapshot().await
    }

    /// Stops the supervisor: all its children at once, each asked to stop
    /// and, with [`Shutdown::Timeout`], killed when the one shared timer runs
    /// out; then the supervisor itself (reason `shutdown`). Returns once
    /// everything has stopped.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not stop the shutdown.
    pub async fn stop(&self) {
        self.inner.stop().await;
    }

    /// Kills the supervisor at once; ractor then kills its children.
    pub fn kill(&self) {
        self.inner.kill();
    }

    /// Waits until the supervisor has stopped, for whatever reason.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn wait(&self) {
        self.inner.wait().await;
    }
}
