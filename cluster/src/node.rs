//! [`Node`]: this process as a member of a cluster.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorId, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage};
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};
use warden_resilience::Backoff;

use crate::controller::{Controller, ControllerArgs, Ctl, SessionEvents};
use crate::echo::{ECHO_KIND, echo_kind};
use crate::error::ClusterError;
use crate::kind::RemoteKind;
use crate::tls::Tls;

/// How often a node tells its peers it is alive, by default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(200);
/// How long a silent peer is waited for before it is declared down, by default. With the
/// default heartbeat, a dead or stopped node is declared down within 1.4 s.
pub const DEFAULT_DOWN_AFTER: Duration = Duration::from_millis(1_200);
/// The largest frame a node reads from a peer, by default (1 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: u64 = 1024 * 1024;
/// How many messages wait for an unreachable peer, by default.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 1_024;
/// How long a node keeps redialling a peer's address that it learned (from the peer's
/// heartbeats, not from its seeds or [`Node::join`]) after that address stopped answering,
/// by default.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(300);

/// A node's settings, as [`NodeBuilder`] gathers them.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) listen: SocketAddr,
    pub(crate) cookie: String,
    pub(crate) seeds: Vec<SocketAddr>,
    pub(crate) heartbeat: Duration,
    pub(crate) down_after: Duration,
    pub(crate) reconnect: Backoff,
    pub(crate) forget_after: Duration,
    pub(crate) max_frame_bytes: u64,
    pub(crate) outbox_capacity: usize,
    pub(crate) tls: Option<Tls>,
}

/// Declares a [`Node`]: its name, where it listens, its cookie, whom it joins, what it can
/// host, and how fast it gives up on a silent peer.
#[must_use = "a builder does nothing until started"]
pub struct NodeBuilder {
    config: Config,
    kinds: HashMap<String, Arc<dyn RemoteKind>>,
}

impl fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("name", &self.config.name)
            .field("listen", &self.config.listen)
            .field("seeds", &self.config.seeds)
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// Listens on `addr` (default `127.0.0.1:0`, a free port). Peers dial the address given
    /// here, so give one they can reach.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// The shared secret peers must prove they know (ractor_cluster's SHA-256 challenge). A
    /// peer without it is refused and logged ([`NodeEvent::Rejected`]).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.config.cookie = cookie.into();
        self
    }

    /// Joins the node listening at `addr`, and keeps a session with it (redialled with
    /// backoff whenever it is lost).
    pub fn seed(mut self, addr: SocketAddr) -> Self {
        self.config.seeds.push(addr);
        self
    }

    /// Heartbeats every `interval`; a peer silent for `down_after` is declared down
    /// (defaults [`DEFAULT_HEARTBEAT`], [`DEFAULT_DOWN_AFTER`]). `down_after` below twice
    /// the interval is raised to it.
    pub fn heartbeat(mut self, interval: Duration, down_after: Duration) -> Self {
        self.config.heartbeat = interval.max(Duration::from_millis(1));
        self.config.down_after = down_after.max(self.config.heartbeat * 2);
        self
    }

    /// How lost sessions are redialled (default: 50 ms doubling to 2 s, full jitter).
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.config.reconnect = backoff;
        self
    }

    /// How long an address this node learned from a peer (its listen address, in its
    /// heartbeats) is redialled after it stopped answering before it is forgotten, with a
    /// [`NodeEvent::Forgotten`] (default [`DEFAULT_FORGET_AFTER`]); never while that peer is
    /// only unreachable, not yet declared down. Seeds and addresses given
    /// to [`Node::join`] are redialled for as long as the node runs: give the members that
    /// come back after long outages as seeds. Without this, a cluster whose members come and
    /// go (each `warden node` child process on a port of its own) would redial every address
    /// it ever saw.
    pub fn forget_after(mut self, after: Duration) -> Self {
        self.config.forget_after = after;
        self
    }

    /// The largest frame read from a peer (default [`DEFAULT_MAX_FRAME_BYTES`]); a peer
    /// sending a larger one is disconnected before anything is allocated for it.
    pub fn max_frame_bytes(mut self, bytes: u64) -> Self {
        self.config.max_frame_bytes = bytes;
        self
    }

    /// How many messages may wait for an unreachable peer before more are refused with
    /// [`ClusterError::Overloaded`] (default [`DEFAULT_OUTBOX_CAPACITY`]).
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.config.outbox_capacity = capacity;
        self
    }

    /// Speaks mutual TLS with its peers (off by default): it accepts and dials TLS sessions
    /// only, and a peer without a certificate of the cluster's CA is refused before the
    /// cookie challenge.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Registers a kind of child this node starts for peers, by name. Every node offers
    /// [`ECHO_KIND`] too.
    pub fn kind(mut self, name: impl Into<String>, kind: impl RemoteKind) -> Self {
        self.kinds.insert(name.into(), Arc::new(kind));
        self
    }

    /// Starts the node: its listener, its controller, and its dials to the seeds.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Start`] for a bad name (empty, or with `@`, `/` or whitespace), or
    /// when the listener or the actors cannot start (the port is taken, say).
    pub async fn start(mut self) -> Result<Node, ClusterError> {
        let name = &self.config.name;
        if name.is_empty() || name.contains(['@', '/']) || name.chars().any(char::is_whitespace) {
            return Err(ClusterError::Start(format!(
                "bad node name {name:?}: not empty, no '@', '/' or whitespace"
            )));
        }
        if self.config.listen.port() == 0 {
            let probe =
                std::net::TcpListener::bind(self.config.listen).map_err(|e| ClusterError::Start(e.to_string()))?;
            self.config.listen = probe.local_addr().map_err(|e| ClusterError::Start(e.to_string()))?;
        }
        let config = Arc::new(self.config);
        let server = NodeServer::new(
            config.listen.port(),
            config.cookie.clone(),
            config.name.clone(),
            config.listen.ip().to_string(),
            config
                .tls
                .as_ref()
                .map(|tls| IncomingEncryptionMode::Tls(tls.acceptor.clone())),
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(config.listen.ip())
        .with_max_inbound_frame_size(config.max_frame_bytes);
        let (server, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| ClusterError::Start(e.to_string()))?;
        let incarnation = new_incarnation();
        let (events, _) = broadcast::channel(1_024);
        let args = ControllerArgs {
            config: config.clone(),
            incarnation,
            server: server.clone(),
            kinds: Arc::new(self.kinds),
            events: events.clone(),
        };
        let controller = match Actor::spawn(None, Controller, args).await {
            Ok((controller, _)) => controller,
            Err(e) => {
                server.stop(None);
                return Err(ClusterError::Start(e.to_string()));
            }
        };
        let subscribe = NodeServerMessage::SubscribeToEvents {
            id: "warden.controller".to_string(),
            subscription: Box::new(SessionEvents(controller.clone())),
        };
        if server.cast(subscribe).is_err() {
            controller.stop(None);
            return Err(ClusterError::Start("the node server stopped at once".into()));
        }
        spawn_ticker(controller.clone(), config.heartbeat);
        tracing::info!(node = %config.name, listen = %config.listen, incarnation, "cluster node started");
        Ok(Node {
            inner: Arc::new(Inner {
                config,
                incarnation,
                controller,
                server,
                events,
                next_child: AtomicU64::new(1),
            }),
        })
    }
}

fn new_incarnation() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    nanos ^ fastrand::u64(..) >> 16
}

/// Sends the controller a tick every `period`, until it is gone.
fn spawn_ticker(controller: ActorRef<Ctl>, period: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if controller.cast(Ctl::Tick).is_err() {
                return;
            }
        }
    });
}

struct Inner {
    config: Arc<Config>,
    incarnation: u64,
    controller: ActorRef<Ctl>,
    server: ActorRef<NodeServerMessage>,
    events: broadcast::Sender<NodeEvent>,
    next_child: AtomicU64,
}

/// This process as a member of a cluster. Cheap to clone.
///
/// A node listens for peers, authenticates them by cookie, joins its seeds, and keeps every
/// session it has: a lost one is redialled with backoff and jitter. Every peer hears from it
/// every heartbeat interval; a peer silent for longer than the deadline, whether its
/// connection closed (a killed process) or hangs open (a stopped one), is declared
/// [`NodeEvent::Down`], and everything of it is let go: see [`RemoteChild`](crate::RemoteChild).
/// A peer whose session closes is dialled at once: if its address refuses the connection,
/// its process is gone and it is declared down without waiting for the deadline.
///
/// ```no_run
/// use std::time::Duration;
/// use warden_cluster::Node;
///
/// # async fn run() -> Result<(), warden_cluster::ClusterError> {
/// let node = Node::builder("a")
///     .listen("127.0.0.1:7001".parse().unwrap())
///     .cookie("secret")
///     .seed("127.0.0.1:7000".parse().unwrap())
///     .start()
///     .await?;
/// node.wait_for(&["b"], Duration::from_secs(5)).await?;
/// println!("{:?}", node.members().await?);
/// node.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.config.name)
            .field("listen", &self.inner.config.listen)
            .field("incarnation", &self.inner.incarnation)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts declaring a node called `name` (unique in its cluster). Defaults: listens on a
    /// free port of 127.0.0.1, cookie `"warden"` (set your own), no seeds, heartbeat every
    /// 200 ms, down after 1.2 s of silence, frames up to 1 MiB, and the [`ECHO_KIND`] kind.
    pub fn builder(name: impl Into<String>) -> NodeBuilder {
        let mut kinds: HashMap<String, Arc<dyn RemoteKind>> = HashMap::new();
        kinds.insert(ECHO_KIND.to_string(), Arc::new(echo_kind()));
        NodeBuilder {
            config: Config {
                name: name.into(),
                listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                cookie: "warden".to_string(),
                seeds: Vec::new(),
                heartbeat: DEFAULT_HEARTBEAT,
                down_after: DEFAULT_DOWN_AFTER,
                reconnect: Backoff::exponential(Duration::from_millis(50), Duration::from_secs(2)).full_jitter(),
                forget_after: DEFAULT_FORGET_AFTER,
                max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
                outbox_capacity: DEFAULT_OUTBOX_CAPACITY,
                tls: None,
            },
            kinds,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// Where it listens.
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.config.listen
    }

    /// This start of the node: peers tell a restarted node from the one before by it.
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    pub(crate) fn controller(&self) -> &ActorRef<Ctl> {
        &self.inner.controller
    }

    pub(crate) fn next_child(&self) -> u64 {
        self.inner.next_child.fetch_add(1, Ordering::Relaxed)
    }

    /// The events of this node from now on: peers up, unreachable, down, rejected; children
    /// hosted and ended. A receiver that lags loses the oldest.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Joins the node at `addr` too, and keeps a session with it.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeStopped`] if this node is stopped.
    pub fn join(&self, addr: SocketAddr) -> Result<(), ClusterError> {
        self.inner
            .controller
            .cast(Ctl::Dial(addr))
            .map_err(|_| ClusterError::NodeStopped)
    }

    /// The peers known now, by name.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeStopped`] if this node is stopped.
    pub async fn members(&self) -> Result<Vec<Member>, ClusterError> {
        self.ask(Ctl::Members).await
    }

    /// The children this node hosts for peers now.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeStopped`] if this node is stopped.
    pub async fn hosted(&self) -> Result<Vec<HostedChild>, ClusterError> {
        self.ask(Ctl::Hosted).await
    }

    /// Waits until every node in `nodes` is up (it may already be).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Timeout`] after `within`; [`ClusterError::NodeStopped`].
    pub async fn wait_for(&self, nodes: &[&str], within: Duration) -> Result<(), ClusterError> {
        self.wait_until(within, |members| {
            nodes
                .iter()
                .all(|n| members.iter().any(|m| m.node == *n && m.status == MemberStatus::Up))
        })
        .await
    }

    /// Waits until `node` is up in its incarnation `incarnation` (a node process just
    /// started, not the one before it).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Timeout`] after `within`; [`ClusterError::NodeStopped`].
    pub async fn wait_for_incarnation(
        &self,
        node: &str,
        incarnation: u64,
        within: Duration,
    ) -> Result<(), ClusterError> {
        self.wait_until(within, |members| {
            members
                .iter()
                .any(|m| m.node == node && m.incarnation == Some(incarnation) && m.status == MemberStatus::Up)
        })
        .await
    }

    async fn wait_until(&self, within: Duration, done: impl Fn(&[Member]) -> bool) -> Result<(), ClusterError> {
        let mut events = self.events();
        let wait = async {
            loop {
                if done(&self.members().await?) {
                    return Ok(());
                }
                match events.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Err(ClusterError::NodeStopped),
                }
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .unwrap_or(Err(ClusterError::Timeout {
                what: "waiting for the nodes",
                after: within,
            }))
    }

    /// Stops the node: its controller (the children it hosts go with it, and its remote
    /// children's proxies exit) and its listener and sessions.
    pub async fn stop(&self) {
        let _ = self.inner.controller.stop_and_wait(None, None).await;
        let _ = self.inner.server.stop_and_wait(None, None).await;
    }

    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Ctl) -> Result<T, ClusterError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .controller
            .cast(request(tx))
            .map_err(|_| ClusterError::NodeStopped)?;
        rx.await.map_err(|_| ClusterError::NodeStopped)
    }
}

/// Something that happened to a node's membership or to the children it hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A peer is connected and heard from (its first heartbeat of this incarnation, or its
    /// session back after it was unreachable).
    Up {
        /// The peer.
        node: String,
        /// Its incarnation.
        incarnation: u64,
    },
    /// A peer's session closed; it is waited for until its deadline.
    Unreachable {
        /// The peer.
        node: String,
    },
    /// A peer was declared down: everything of it was let go.
    Down {
        /// The peer.
        node: String,
        /// Why.
        reason: DownReason,
    },
    /// An address learned from a peer stopped answering for
    /// [`forget_after`](NodeBuilder::forget_after): it is no longer dialled.
    Forgotten {
        /// The address.
        addr: String,
    },
    /// A session closed before it was ready: a wrong cookie, or not a Warden node.
    Rejected {
        /// The peer's name or address.
        peer: String,
    },
    /// This node started a child for a peer.
    Hosting {
        /// The peer.
        origin: String,
        /// The peer's number for the child.
        child: u64,
    },
    /// A child this node hosted ended.
    HostedExited {
        /// The peer.
        origin: String,
        /// The peer's number for the child.
        child: u64,
        /// Why it ended.
        reason: String,
    },
}

/// Why a peer was declared down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum DownReason {
    /// Nothing was heard from it within the deadline.
    Silent,
    /// It came back as a new incarnation: the old one is gone.
    Restarted,
    /// Its session closed and its address refused a new connection: its process is gone.
    Refused,
}

/// A peer, as [`Node::members`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Member {
    /// Its name.
    pub node: String,
    /// Its incarnation, once it has sent a heartbeat.
    pub incarnation: Option<u64>,
    /// Where it listens.
    pub listen: Option<SocketAddr>,
    /// The kinds it can start.
    pub kinds: Vec<String>,
    /// How many children it hosts (as of its last heartbeat).
    pub hosted: u32,
    /// Its state.
    pub status: MemberStatus,
}

/// A peer's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum MemberStatus {
    /// Connected, not heard from yet.
    Joining,
    /// Connected and heard from.
    Up,
    /// Its session closed; not yet declared down.
    Unreachable,
}

/// A child a node hosts for a peer, as [`Node::hosted`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HostedChild {
    /// The peer whose supervisor it belongs to.
    pub origin: String,
    /// The peer's number for it.
    pub child: u64,
    /// Its kind.
    pub kind: String,
    /// Its path in the peer's tree.
    pub path: String,
    /// Its actor here.
    #[serde(skip)]
    pub actor: ActorId,
}
