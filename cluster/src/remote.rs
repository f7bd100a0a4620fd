//! [`RemoteChild`]: a child of a local supervisor that runs on another node.
//!
//! The supervisor supervises a *proxy*: a small local actor that asks the node's controller
//! to place the child on a peer and start it there, then stands for it. The proxy ends as the
//! child ends, with the child's own reason (a crash there is a crash here, with its error
//! text), or with `noconnection` when the child's node is declared down, as OTP reports a
//! linked process on a lost node. So the supervisor applies its strategy, restart type and
//! intensity to remote children exactly as to local ones, and a restart places the child
//! again, on any live node the placement allows.
//!
//! Stopping the proxy (a shutdown, `terminate_child`, a restart of its siblings) stops the
//! child: asked to stop, and the proxy waits for it within the supervisor's shutdown time;
//! killing the proxy kills the child.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio::sync::oneshot;
use warden_supervisor::{ChildSpec, StartContext};

use crate::controller::{Ctl, SCOPE, SpawnRequest, hosted_group};
use crate::error::ClusterError;
use crate::node::Node;
use crate::wire::WireExit;

/// How long a remote start is waited for, by default.
pub const DEFAULT_SPAWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The reason a remote child's proxy ends with when the child's node is lost (OTP's).
pub const NOCONNECTION: &str = "noconnection";

/// Where a remote child may run: among the live peers that offer its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// On this node only; while it is down, the start fails ([`ClusterError::NodeDown`]).
    Pinned(String),
    /// On the first of these that is up, else on any.
    Prefer(Vec<String>),
    /// On each in turn (by name).
    RoundRobin,
    /// On the one with the fewest children (those placed from here, or what it reports
    /// hosting, whichever is more).
    LeastLoaded,
}

/// Where a remote child was started.
#[derive(Clone, Debug)]
pub(crate) struct Placed {
    pub(crate) node: Arc<str>,
    pub(crate) pid: u64,
}

/// What a proxy hears.
pub(crate) enum ProxyMsg {
    /// The child ended.
    Exited(WireExit),
    /// The child's node was declared down.
    NodeDown(Arc<str>),
    /// Where is the child?
    Locate(oneshot::Sender<(Arc<str>, u64)>),
}

impl ractor::Message for ProxyMsg {}

/// A remote child's declaration: its kind, its arguments, where it may run.
///
/// ```no_run
/// use warden_cluster::{EchoArgs, Node, Placement, RemoteChild, ECHO_KIND};
/// use warden_supervisor::{Restart, Supervisor};
///
/// # async fn run(node: Node) -> Result<(), Box<dyn std::error::Error>> {
/// let echo = RemoteChild::new(&node, ECHO_KIND, &EchoArgs { tag: "e1".into() })?
///     .placement(Placement::LeastLoaded);
/// let root = Supervisor::builder("root")
///     .intensity(5, std::time::Duration::from_secs(10))
///     .child(echo.spec("echo").restart(Restart::Permanent))
///     .spawn()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RemoteChild {
    node: Node,
    kind: String,
    args: Arc<Vec<u8>>,
    placement: Placement,
    spawn_timeout: Duration,
}

impl fmt::Debug for RemoteChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteChild")
            .field("kind", &self.kind)
            .field("placement", &self.placement)
            .field("spawn_timeout", &self.spawn_timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteChild {
    /// A child of `kind` with `args` (encoded once, sent on every start), placed by `node`
    /// on the least loaded live peer that offers the kind.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Arguments`] if `args` cannot be encoded.
    pub fn new(node: &Node, kind: impl Into<String>, args: &impl Serialize) -> Result<Self, ClusterError> {
        let args = warden_agents::codec::to_wire(args).map_err(|e| ClusterError::Arguments(e.to_string()))?;
        Ok(Self {
            node: node.clone(),
            kind: kind.into(),
            args: Arc::new(args),
            placement: Placement::LeastLoaded,
            spawn_timeout: DEFAULT_SPAWN_TIMEOUT,
        })
    }

    /// Where it may run (default [`Placement::LeastLoaded`]).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// How long a start waits for the host (default [`DEFAULT_SPAWN_TIMEOUT`]); past it the
    /// start fails, and a child started late is stopped.
    pub fn spawn_timeout(mut self, timeout: Duration) -> Self {
        self.spawn_timeout = timeout;
        self
    }

    /// A permanent worker spec with id `id` (set its restart and shutdown as for any child).
    pub fn spec(self, id: impl Into<String>) -> ChildSpec {
        let remote = Arc::new(self);
        ChildSpec::worker(id, move |ctx: StartContext| {
            let remote = remote.clone();
            async move {
                let args = ProxyArgs {
                    controller: remote.node.controller().clone(),
                    child: remote.node.next_child(),
                    kind: remote.kind.clone(),
                    args: remote.args.clone(),
                    placement: remote.placement.clone(),
                    path: ctx.path().to_string(),
                    spawn_timeout: remote.spawn_timeout,
                };
                ctx.spawn(Proxy, args).await.map(ActorCell::from)
            }
        })
    }
}

/// Where a remote child runs now, as [`locate`] finds it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteLocation {
    /// The node.
    pub node: String,
    /// The child's actor: a ractor_cluster stand-in; a message type the child's actor
    /// serves across nodes reaches it through `ActorRef::<M>::from(actor)`.
    pub actor: ActorCell,
}

/// Finds the child a remote child's proxy (the cell its supervisor reports for it) stands
/// for, waiting up to `within` for its node's session to announce it. Only a child whose
/// message type crosses nodes (a `RactorClusterMessage`) can be found.
///
/// # Errors
///
/// [`ClusterError::NodeDown`] if the proxy or its node is gone, [`ClusterError::Timeout`].
pub async fn locate(node: &Node, proxy: &ActorCell, within: Duration) -> Result<RemoteLocation, ClusterError> {
    let gone = || ClusterError::NodeDown(String::new());
    let find = async {
        let (tx, rx) = oneshot::channel();
        ActorRef::<ProxyMsg>::from(proxy.clone())
            .cast(ProxyMsg::Locate(tx))
            .map_err(|_| gone())?;
        let (host, pid) = rx.await.map_err(|_| gone())?;
        loop {
            let (tx, rx) = oneshot::channel();
            node.controller()
                .cast(Ctl::Locate {
                    node: host.clone(),
                    reply: tx,
                })
                .map_err(|_| ClusterError::NodeStopped)?;
            let node_id = rx.await.map_err(|_| ClusterError::NodeStopped)?;
            let actor = node_id.and_then(|node_id| {
                let wanted = ActorId::Remote { node_id, pid };
                ractor::pg::get_scoped_members(&SCOPE.to_string(), &hosted_group(node.name()))
                    .into_iter()
                    .find(|cell| cell.get_id() == wanted)
            });
            if let Some(actor) = actor {
                return Ok(RemoteLocation {
                    node: host.to_string(),
                    actor,
                });
            }
            if !proxy.get_status().eq(&ractor::ActorStatus::Running) {
                return Err(ClusterError::NodeDown(host.to_string()));
            }
            // The session announces the child's actor just after the start's answer.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(within, find)
        .await
        .unwrap_or(Err(ClusterError::Timeout {
            what: "locating the remote child",
            after: within,
        }))
}

/// The proxy's arguments.
pub(crate) struct ProxyArgs {
    controller: ActorRef<Ctl>,
    child: u64,
    kind: String,
    args: Arc<Vec<u8>>,
    placement: Placement,
    path: String,
    spawn_timeout: Duration,
}

/// The local stand-in of a remote child, under the child's supervisor.
pub(crate) struct Proxy;

/// The proxy's state. Dropped however the proxy ends: if the child may still run, the
/// controller is told to kill it.
pub(crate) struct ProxyState {
    controller: ActorRef<Ctl>,
    child: u64,
    node: Arc<str>,
    pid: u64,
    /// The child is known to have ended.
    ended: bool,
}

impl Drop for ProxyState {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.controller.cast(Ctl::ProxyGone { child: self.child });
        }
    }
}

/// A remote child's failure, as its supervisor sees it: the child's own error text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RemoteFailure(String);

impl Actor for Proxy {
    type Msg = ProxyMsg;
    type State = ProxyState;
    type Arguments = ProxyArgs;

    async fn pre_start(&self, myself: ActorRef<ProxyMsg>, args: ProxyArgs) -> Result<ProxyState, ActorProcessingErr> {
        let (tx, rx) = oneshot::channel();
        let request = SpawnRequest {
            child: args.child,
            kind: args.kind,
            args: args.args,
            path: args.path,
            placement: args.placement,
            proxy: myself,
            reply: tx,
        };
        args.controller
            .cast(Ctl::Spawn(Box::new(request)))
            .map_err(|_| ClusterError::NodeStopped)?;
        let placed = match tokio::time::timeout(args.spawn_timeout, rx).await {
            Ok(Ok(Ok(placed))) => placed,
            Ok(Ok(Err(e))) => return Err(e.into()),
            Ok(Err(_)) => return Err(ClusterError::NodeStopped.into()),
            Err(_) => {
                // A start that answers late is stopped.
                let _ = args.controller.cast(Ctl::ProxyGone { child: args.child });
                return Err(ClusterError::Timeout {
                    what: "the remote start",
                    after: args.spawn_timeout,
                }
                .into());
            }
        };
        Ok(ProxyState {
            controller: args.controller,
            child: args.child,
            node: placed.node,
            pid: placed.pid,
            ended: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProxyMsg>,
        message: ProxyMsg,
        state: &mut ProxyState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProxyMsg::Exited(reason) => {
                state.ended = true;
                match reason {
                    WireExit::Normal => myself.stop(None),
                    WireExit::Shutdown => myself.stop(Some("shutdown".to_string())),
                    WireExit::Stopped(reason) => myself.stop(Some(reason)),
                    WireExit::Killed => myself.stop(Some("killed".to_string())),
                    WireExit::Failed(error) => return Err(RemoteFailure(error).into()),
                }
            }
            ProxyMsg::NodeDown(node) => {
                tracing::info!(%node, child = state.child, "a remote child was lost with its node");
                state.ended = true;
                myself.stop(Some(NOCONNECTION.to_string()));
            }
            ProxyMsg::Locate(reply) => {
                let _ = reply.send((state.node.clone(), state.pid));
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<ProxyMsg>, state: &mut ProxyState) -> Result<(), ActorProcessingErr> {
        if state.ended {
            return Ok(());
        }
        // Stopped by its supervisor: stop the child and wait for it (the supervisor's
        // shutdown time bounds the wait; past it the proxy is killed, and its drop kills
        // the child).
        let (tx, rx) = oneshot::channel();
        let stop = Ctl::StopChild {
            child: state.child,
            kill: false,
            done: Some(tx),
        };
        if state.controller.cast(stop).is_ok() {
            let _ = rx.await;
        }
        state.ended = true;
        Ok(())
    }
}
