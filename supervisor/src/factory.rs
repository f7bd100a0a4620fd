//! How a supervisor starts a child: [`ChildFactory`] and its [`StartContext`].
//!
//! A factory is OTP's start function (`mfargs`): called on the first start and
//! again on every restart, it spawns the child's actor *linked to the
//! supervisor* and returns its cell. The supervisor waits for it, so a child
//! whose `pre_start` fails makes the start fail ([`StartError::Init`]), as in OTP.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorRef, SpawnErr};

use crate::escalation::Escalator;
use crate::event::EventSink;
use crate::exit::Failure;
use crate::panic_report::panic_message;
use crate::path::ChildPath;

/// A boxed, sendable future, as [`ChildFactory::start`] returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Starts one child. Called by the supervisor on the first start and on every restart.
///
/// Any `Fn(StartContext) -> impl Future<Output = Result<ActorCell, StartError>>`
/// is a factory. The child must be spawned linked to the supervisor, which
/// [`StartContext::spawn`] does; a child that is not linked is refused with
/// [`StartError::NotLinked`], since its exits would never reach the supervisor.
///
/// The supervisor waits for the start: a factory that never finishes wedges its
/// supervisor, as a start function that never returns does in OTP. A factory
/// that panics is a failed start, not a crash of the supervisor.
pub trait ChildFactory: Send + Sync + 'static {
    /// Spawns the child and returns its cell.
    fn start(&self, ctx: StartContext) -> BoxFuture<Result<ActorCell, StartError>>;
}

impl<F, Fut> ChildFactory for F
where
    F: Fn(StartContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ActorCell, StartError>> + Send + 'static,
{
    fn start(&self, ctx: StartContext) -> BoxFuture<Result<ActorCell, StartError>> {
        Box::pin(self(ctx))
    }
}

pub(crate) type DynFactory = Arc<dyn ChildFactory>;

/// Calls a factory, turning a panic into [`StartError::Panicked`].
pub(crate) async fn start_guarded(factory: &DynFactory, ctx: StartContext) -> Result<ActorCell, StartError> {
    guarded(|| factory.start(ctx)).await
}

/// Runs a start, turning a panic (in making the future or in running it) into
/// [`StartError::Panicked`].
pub(crate) async fn guarded(
    start: impl FnOnce() -> BoxFuture<Result<ActorCell, StartError>>,
) -> Result<ActorCell, StartError> {
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(fut) => fut,
        Err(panic) => return Err(StartError::Panicked(panic_message(panic.as_ref()))),
    };
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(StartError::Panicked(panic_message(panic.as_ref()))),
    }
}

/// What a factory gets: where the child sits, its supervisor, and the means to
/// escalate.
pub struct StartContext {
    pub(crate) supervisor: ActorCell,
    pub(crate) path: ChildPath,
    pub(crate) escalator: Escalator,
    pub(crate) observer: Option<EventSink>,
}

impl StartContext {
    /// The child's path in the tree.
    pub fn path(&self) -> &ChildPath {
        &self.path
    }

    /// The supervisor's cell: link the child to it.
    pub fn supervisor(&self) -> &ActorCell {
        &self.supervisor
    }

    /// A handle the child can keep to escalate to its supervisor on purpose.
    pub fn escalator(&self) -> Escalator {
        self.escalator.clone()
    }

    /// Spawns `actor` linked to the supervisor and waits for its `pre_start`.
    ///
    /// # Errors
    ///
    /// [`StartError::Init`] when `pre_start` returns an error or panics;
    /// [`StartError::Spawn`] when ractor refuses the spawn.
    ///
    /// # Cancellation
    ///
    /// Dropping the future while `pre_start` runs drops the half-started actor.
    pub async fn spawn<A: Actor>(&self, actor: A, args: A::Arguments) -> Result<ActorRef<A::Msg>, StartError> {
        match Actor::spawn_linked(None, actor, args, self.supervisor.clone()).await {
            Ok((actor, _join)) => Ok(actor),
            Err(err) => Err(StartError::from_spawn(err)),
        }
    }
}

impl fmt::Debug for StartContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartContext")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a child did not start. Cheap to clone.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The child's `pre_start` returned an error or panicked (OTP: its `init/1` failed).
    #[error("child failed in init: {0}")]
    Init(Failure),
    /// The factory itself panicked.
    #[error("child factory panicked: {0}")]
    Panicked(Arc<str>),
    /// The factory returned an actor that is not linked to the supervisor.
    #[error("child was not spawned linked to its supervisor")]
    NotLinked,
    /// ractor refused the spawn (for example a name already registered).
    #[error("child could not be spawned: {0}")]
    Spawn(Arc<str>),
    /// The factory failed for a reason of its own.
    #[error("child could not be started: {0}")]
    Other(Failure),
}

impl StartError {
    /// Translates ractor's spawn error.
    pub fn from_spawn(err: SpawnErr) -> Self {
        match err {
            SpawnErr::StartupFailed(e) => Self::Init(Failure(Arc::from(e))),
            other => Self::Spawn(Arc::from(other.to_string())),
        }
    }

    /// A start failure of the factory's own.
    pub fn other(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other(Failure::new(err))
    }
}
