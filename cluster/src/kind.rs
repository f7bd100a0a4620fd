//! Kinds: the actor types a node can start for a supervisor on another node, by name.
//!
//! A node starts only what was registered with it ([`NodeBuilder::kind`](crate::NodeBuilder::kind)):
//! a peer names a kind and sends its arguments as bytes, never code. [`Kind::actor`] makes a
//! kind of any ractor actor whose arguments can be decoded from the wire.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorRef};
use serde::de::DeserializeOwned;

/// Where a hosted child is started: the node hosting it, and the child's place in its
/// origin's tree.
pub struct HostContext {
    pub(crate) host: ActorCell,
    pub(crate) node: Arc<str>,
    pub(crate) origin: Arc<str>,
    pub(crate) path: Arc<str>,
}

impl HostContext {
    /// The name of the node hosting the child.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The name of the node whose supervisor asked for the child.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The child's path in its origin's tree.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Spawns `actor` linked to the node's controller, which reports its end to the origin,
    /// and waits for its `pre_start`.
    ///
    /// # Errors
    ///
    /// The text of ractor's spawn error (a failed `pre_start`, say).
    pub async fn spawn<A: Actor>(&self, actor: A, args: A::Arguments) -> Result<ActorRef<A::Msg>, String> {
        match Actor::spawn_linked(None, actor, args, self.host.clone()).await {
            Ok((actor, _)) => Ok(actor),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl fmt::Debug for HostContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostContext")
            .field("node", &self.node)
            .field("origin", &self.origin)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Starts hosted children of one kind. Any `Fn(HostContext, Vec<u8>) -> impl Future<Output =
/// Result<ActorCell, String>>` is one; [`Kind::actor`] makes one from an actor type.
pub trait RemoteKind: Send + Sync + 'static {
    /// Starts one child with the arguments its origin sent, linked to `ctx`'s host (use
    /// [`HostContext::spawn`]). Bad arguments are an `Err`, never a panic.
    fn start(&self, ctx: HostContext, args: Vec<u8>) -> BoxFuture<'static, Result<ActorCell, String>>;
}

impl<F, Fut> RemoteKind for F
where
    F: Fn(HostContext, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ActorCell, String>> + Send + 'static,
{
    fn start(&self, ctx: HostContext, args: Vec<u8>) -> BoxFuture<'static, Result<ActorCell, String>> {
        Box::pin(self(ctx, args))
    }
}

/// Makers of [`RemoteKind`]s.
#[derive(Debug)]
pub struct Kind;

impl Kind {
    /// A kind of ractor actor: the origin's arguments (any serde type, sent with
    /// [`RemoteChild`](crate::RemoteChild)) are decoded and `make` turns them into the actor
    /// and its own arguments, on every start.
    pub fn actor<Args, A, F>(make: F) -> impl RemoteKind
    where
        Args: DeserializeOwned + Send + 'static,
        A: Actor,
        F: Fn(&HostContext, Args) -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        move |ctx: HostContext, bytes: Vec<u8>| {
            let make = make.clone();
            async move {
                let args: Args = warden_agents::codec::from_wire(&bytes).map_err(|e| format!("bad arguments: {e}"))?;
                let (actor, actor_args) = make(&ctx, args);
                ctx.spawn(actor, actor_args).await.map(ActorCell::from)
            }
        }
    }
}
