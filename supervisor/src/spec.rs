//! Child specifications: what to start, and how to treat its exits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::factory::{ChildFactory, DynFactory};
use warden_resilience::Backoff;

/// When a child that stopped is restarted (OTP's `restart` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted, whatever the exit reason. The default.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit ([`ExitReason::is_abnormal`](crate::ExitReason::is_abnormal)):
    /// not after a normal stop or a shutdown. Its spec stays, not running.
    Transient,
    /// Never restarted; its spec is removed when it exits, whatever the reason.
    Temporary,
}

/// How a child is stopped when its supervisor stops it (OTP's `shutdown` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Kill at once, untrappably. The child's `post_stop` does not run.
    BrutalKill,
    /// Ask the child to stop (reason `shutdown`) and kill it if it has not
    /// stopped within the duration. The default for workers is 5 seconds.
    Timeout(Duration),
    /// Ask the child to stop and wait as long as it takes. The default for child
    /// supervisors, so that their own subtree shuts down in order.
    Infinity,
}

impl Shutdown {
    /// OTP's default for workers: ask, then kill after 5 seconds.
    pub const WORKER_DEFAULT: Shutdown = Shutdown::Timeout(Duration::from_secs(5));
}

/// Whether a child is a worker or a supervisor (OTP's `type` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// Any actor that does work.
    Worker,
    /// A Warden supervisor with children of its own.
    Supervisor,
}

/// How to start one child and how its supervisor treats it.
///
/// A spec is a recipe, kept by the supervisor to start the child again after a
/// failure: the [`ChildFactory`] is called on every (re)start.
///
/// ```
/// use std::time::Duration;
/// use warden_supervisor::{ChildSpec, Restart, Shutdown, StartContext, StartError};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
///
/// struct Planner;
/// impl Actor for Planner {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// let spec = ChildSpec::worker("planner", |ctx: StartContext| async move {
///     ctx.spawn(Planner, ()).await.map(Into::into)
/// })
/// .restart(Restart::Transient)
/// .shutdown(Shutdown::Timeout(Duration::from_secs(2)));
/// assert_eq!(spec.id(), "planner");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: Arc<str>,
    pub(crate) kind: ChildKind,
    pub(crate) factory: DynFactory,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    /// Boxed: rarely set, and a spec is kept per child.
    pub(crate) backoff: Option<Box<Backoff>>,
    /// Whether its own exit can shut its supervisor down (OTP's `significant`).
    pub(crate) significant: bool,
}

impl ChildSpec {
    /// A permanent worker with a 5-second shutdown, started by `factory`.
    pub fn worker(id: impl Into<String>, factory: impl ChildFactory) -> Self {
        Self::with_kind(id, ChildKind::Worker, Arc::new(factory))
    }

    pub(crate) fn with_kind(id: impl Into<String>, kind: ChildKind, factory: DynFactory) -> Self {
        let shutdown = match kind {
            ChildKind::Worker => Shutdown::WORKER_DEFAULT,
            ChildKind::Supervisor => Shutdown::Infinity,
        };
        Self {
            id: Arc::from(id.into()),
            kind,
            factory,
            restart: Restart::Permanent,
            shutdown,
            backoff: None,
            significant: false,
        }
    }

    /// Sets when the child is restarted.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Delays this child's restarts by an exponential backoff (off by default,
    /// and OTP's semantics are unchanged while it is off). Restarts still count
    /// toward the supervisor's intensity when they are decided, not when they run.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(Box::new(backoff));
        self
    }

    /// Marks the child *significant* (OTP's `significant`, off by default): when
    /// it ends on its own and is not restarted, its supervisor may shut itself
    /// down, as its [`AutoShutdown`](crate::AutoShutdown) says. Only a
    /// [`Restart::Transient`] or [`Restart::Temporary`] child can be
    /// significant, and only under a supervisor whose auto-shutdown is not
    /// [`AutoShutdown::Never`](crate::AutoShutdown::Never); any other spec is
    /// refused with a [`SpecError`](crate::SpecError) when the supervisor
    /// starts, or by [`Supervisor::start_child`](crate::Supervisor::start_child).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// The child's id, unique among its siblings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        self.kind
    }

    /// When the child is restarted.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }

    /// How the child is stopped.
    pub fn shutdown_type(&self) -> Shutdown {
        self.shutdown
    }

    /// Whether the child is significant (see [`ChildSpec::significant`]).
    pub fn is_significant(&self) -> bool {
        self.significant
    }

    /// Starts the child this spec describes, in the place `ctx` gives: what its
    /// supervisor does on every (re)start. A template of a
    /// [`DynamicSupervisor`](crate::DynamicSupervisor) calls it to start whole
    /// subtrees as dynamic children ([`DynamicSupervisor::of_specs`](crate::DynamicSupervisor::of_specs)
    /// does just that); the spec's id, restart, shutdown and backoff are then
    /// not used, since the dynamic supervisor numbers its children and applies
    /// its own.
    ///
    /// A factory that panics is a failed start ([`StartError::Panicked`](crate::StartError::Panicked)).
    pub fn start(&self, ctx: crate::StartContext) -> crate::BoxFuture<Result<ractor::ActorCell, crate::StartError>> {
        let factory = self.factory.clone();
        Box::pin(async move { crate::factory::start_guarded(&factory, ctx).await })
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("backoff", &self.backoff)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A permanent worker that spawns a fresh ractor actor on every start:
    /// `make` returns the actor and its arguments.
    pub fn actor<A, F>(id: impl Into<String>, make: F) -> Self
    where
        A: ractor::Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        Self::worker(id, move |ctx: crate::StartContext| {
            let (actor, args) = make();
            async move { ctx.spawn(actor, args).await.map(ractor::ActorCell::from) }
        })
    }
}
