//! [`Faulty`]: wrap any actor so that a fraction of its messages fail, are
//! delayed, or make it panic.

use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use warden_supervisor::{ChildSpec, StartContext};

use crate::faults::Faults;

/// An actor whose every message first consults a [`Faults`] plan at its point
/// (by default, its child path). An injected failure fails the handler (the
/// message is dropped; a request it carried gets
/// [`RequestError::WorkerDown`](warden_supervisor::RequestError::WorkerDown)),
/// a delay holds the message back, a panic panics in the handler: each as if
/// the wrapped actor had done it, so its supervisor reacts as it would to a
/// real fault.
///
/// Everything else (start, stop, supervision events) goes straight to the
/// wrapped actor. With [`Faults::none`] it costs one branch per message.
///
/// ```
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
/// use warden_chaos::{FaultAction, FaultRule, Faults, Faulty};
/// use warden_supervisor::Supervisor;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // One message in ten to any worker under root/pool fails.
/// let faults = Faults::builder(7)
///     .rule(FaultRule::new("root/pool/*".parse()?, FaultAction::Fail, 0.1))
///     .build();
/// let root = Supervisor::builder("root")
///     .child(
///         Supervisor::builder("pool")
///             .child(Faulty::child_spec("w1", faults.clone(), || (Worker, ())))
///             .into_child(),
///     )
///     .spawn()
///     .await?;
/// root.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Faulty<A> {
    inner: A,
    faults: Faults,
    point: Arc<str>,
}

impl<A: Actor> Faulty<A> {
    /// Wraps `inner`; its messages consult `faults` at `point`.
    pub fn new(inner: A, faults: Faults, point: impl Into<Arc<str>>) -> Self {
        Self {
            inner,
            faults,
            point: point.into(),
        }
    }

    /// A permanent worker spec, like [`ChildSpec::actor`], whose actor is
    /// wrapped in `Faulty` with the child's path as its point.
    pub fn child_spec<F>(id: impl Into<String>, faults: Faults, make: F) -> ChildSpec
    where
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        ChildSpec::worker(id, move |ctx: StartContext| {
            let (inner, args) = make();
            let actor = Faulty::new(inner, faults.clone(), ctx.path().as_str());
            async move { ctx.spawn(actor, args).await.map(ActorCell::from) }
        })
    }

    /// The point this actor's messages consult.
    pub fn point(&self) -> &str {
        &self.point
    }
}

impl<A: Actor> Actor for Faulty<A> {
    type Msg = A::Msg;
    type State = A::State;
    type Arguments = A::Arguments;

    async fn pre_start(&self, myself: ActorRef<A::Msg>, args: A::Arguments) -> Result<A::State, ActorProcessingErr> {
        self.inner.pre_start(myself, args).await
    }

    async fn post_start(&self, myself: ActorRef<A::Msg>, state: &mut A::State) -> Result<(), ActorProcessingErr> {
        self.inner.post_start(myself, state).await
    }

    async fn post_stop(&self, myself: ActorRef<A::Msg>, state: &mut A::State) -> Result<(), ActorProcessingErr> {
        self.inner.post_stop(myself, state).await
    }

    async fn handle(
        &self,
        myself: ActorRef<A::Msg>,
        message: A::Msg,
        state: &mut A::State,
    ) -> Result<(), ActorProcessingErr> {
        self.faults.inject(&self.point).await?;
        self.inner.handle(myself, message, state).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<A::Msg>,
        message: SupervisionEvent,
        state: &mut A::State,
    ) -> Result<(), ActorProcessingErr> {
        self.inner.handle_supervisor_evt(myself, message, state).await
    }
}
