//! The node's controller: one actor per node that keeps the membership, detects failures,
//! reconnects, and runs both halves of remote supervision.
//!
//! As an *origin*, it places the children of local supervisors on peers (each child is a
//! local proxy actor under the supervisor, see [`RemoteChild`](crate::RemoteChild)), and
//! turns what it hears about them into the proxies' exits: the child's own exit reason, or
//! `noconnection` when its node is lost. As a *host*, it starts children of registered kinds
//! for peers, linked to itself, and reports their ends to their origins.
//!
//! Failure detection is a heartbeat with a deadline: every peer hears from the controller
//! every heartbeat interval, and a peer not heard from within `down_after` is declared down,
//! whether its connection closed (a killed process) or stays open and silent (a stopped one).
//! ractor_cluster's own ping has no deadline, so it never notices the second case.
//!
//! A peer declared down is forgotten: its children's proxies exit with `noconnection`, the
//! children this node hosts for it are stopped, and its session is closed. Its address is
//! dialled again with backoff; when it comes back, the first thing each side sends is a
//! `Sync` naming the children it still believes the other hosts for it, and the other stops
//! every child it hosts for that origin that is not named. So a child restarted elsewhere
//! during a partition never runs twice once the partition heals.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeServerMessage};
use tokio::sync::{broadcast, oneshot};
use warden_supervisor::ExitReason;

use crate::error::ClusterError;
use crate::kind::{HostContext, RemoteKind};
use crate::node::{Config, DownReason, HostedChild, Member, MemberStatus, NodeEvent};
use crate::remote::{Placed, Placement, ProxyMsg};
use crate::wire::{self, Heartbeat, Wire, WireExit};

/// The process-group scope and group every controller joins, so that peers find each other.
pub(crate) const SCOPE: &str = "warden.cluster";
pub(crate) const GROUP: &str = "controllers";

/// A request from a local proxy to place and start a child.
pub(crate) struct SpawnRequest {
    pub(crate) child: u64,
    pub(crate) kind: String,
    pub(crate) args: Arc<Vec<u8>>,
    pub(crate) path: String,
    pub(crate) placement: Placement,
    pub(crate) proxy: ActorRef<ProxyMsg>,
    pub(crate) reply: oneshot::Sender<Result<Placed, ClusterError>>,
}

/// The controller's messages: [`Ctl::Wire`] from peers, the rest from this node.
pub(crate) enum Ctl {
    /// A message from a peer's controller.
    Wire(Wire),
    /// A session finished its handshake and state exchange.
    SessionReady { node_id: u64, name: String },
    /// A session passed the cookie challenge.
    SessionAuthenticated { node_id: u64 },
    /// A session ended.
    SessionClosed { node_id: u64, peer: String },
    /// Time to send heartbeats, check deadlines and dial.
    Tick,
    /// A dial ended (the session may still fail its handshake).
    Dialed { addr: SocketAddr, ok: bool },
    /// Place and start a child for a local supervisor.
    Spawn(Box<SpawnRequest>),
    /// Stop a remote child (its proxy is stopping); `done` is told when it has ended.
    StopChild {
        child: u64,
        kill: bool,
        done: Option<oneshot::Sender<()>>,
    },
    /// A proxy is gone: make sure its child is too.
    ProxyGone { child: u64 },
    /// A hosted child's start ended.
    HostStarted {
        hosting: Hosting,
        result: Result<ActorCell, String>,
    },
    /// Where a remote child runs: its node's session id.
    Locate {
        node: Arc<str>,
        reply: oneshot::Sender<Option<u64>>,
    },
    /// The peers.
    Members(oneshot::Sender<Vec<Member>>),
    /// The children hosted here.
    Hosted(oneshot::Sender<Vec<HostedChild>>),
    /// Dial this address too (and keep it connected).
    Dial(SocketAddr),
}

impl ractor::Message for Ctl {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self {
            Self::Wire(wire) => wire::encode(&wire).ok_or(BoxedDowncastErr),
            // Local requests never leave the node.
            _ => Err(BoxedDowncastErr),
        }
    }

    fn deserialize(message: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        wire::decode(message).map(Self::Wire).ok_or(BoxedDowncastErr)
    }
}

/// Forwards ractor_cluster's session events to the controller.
pub(crate) struct SessionEvents(pub(crate) ActorRef<Ctl>);

impl NodeEventSubscription for SessionEvents {
    fn node_session_opened(&self, _: NodeServerSessionInformation) {}

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let peer = ses
            .peer_name
            .as_ref()
            .map_or_else(|| ses.peer_addr.clone(), |n| node_name(&n.name).to_string());
        let _ = self.0.cast(Ctl::SessionClosed {
            node_id: ses.node_id,
            peer,
        });
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.cast(Ctl::SessionAuthenticated { node_id: ses.node_id });
    }

    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        if let Some(name) = ses.peer_name {
            let _ = self.0.cast(Ctl::SessionReady {
                node_id: ses.node_id,
                name: node_name(&name.name).to_string(),
            });
        }
    }
}

/// A node's name from ractor_cluster's `name@host`.
fn node_name(session_name: &str) -> &str {
    session_name.split_once('@').map_or(session_name, |(name, _)| name)
}

/// What the controller is started with.
pub(crate) struct ControllerArgs {
    pub(crate) config: Arc<Config>,
    pub(crate) incarnation: u64,
    pub(crate) server: ActorRef<NodeServerMessage>,
    pub(crate) kinds: Arc<HashMap<String, Arc<dyn RemoteKind>>>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
}

/// The controller actor.
pub(crate) struct Controller;

/// A peer node, from its first session or heartbeat until it is declared down.
struct Peer {
    /// Its session's id (ractor_cluster's node id), while connected.
    node_id: Option<u64>,
    /// Its controller (a ractor_cluster stand-in), while connected.
    controller: Option<ActorRef<Ctl>>,
    /// Known from its first heartbeat; up from then on.
    incarnation: Option<u64>,
    last_heard: Instant,
    listen: Option<SocketAddr>,
    kinds: Vec<String>,
    hosted: u32,
    /// Messages waiting for its session to come back.
    outbox: VecDeque<Wire>,
    /// Whether [`NodeEvent::Up`] was emitted for its current session.
    announced: bool,
}

impl Peer {
    fn new(now: Instant) -> Self {
        Self {
            node_id: None,
            controller: None,
            incarnation: None,
            last_heard: now,
            listen: None,
            kinds: Vec::new(),
            hosted: 0,
            outbox: VecDeque::new(),
            announced: false,
        }
    }

    fn is_up(&self) -> bool {
        self.incarnation.is_some()
    }
}

/// A child of a local supervisor, placed on a peer.
struct Remote {
    node: Arc<str>,
    proxy: ActorRef<ProxyMsg>,
    /// The proxy's wait for the start, until the host answers.
    starting: Option<oneshot::Sender<Result<Placed, ClusterError>>>,
    /// Told when the child has ended.
    stop_waiters: Vec<oneshot::Sender<()>>,
}

/// A child this node hosts for a peer.
struct Hosted {
    origin: Arc<str>,
    incarnation: u64,
    child: u64,
    kind: String,
    path: String,
    cell: ActorCell,
}

/// A hosted child being started: whose, and what.
pub(crate) struct Hosting {
    origin: Arc<str>,
    incarnation: u64,
    child: u64,
    kind: String,
    path: String,
}

/// An address to keep a session with.
#[derive(Default)]
struct Dial {
    attempt: u32,
    next: Option<Instant>,
    in_flight: bool,
    /// Learned from a peer's heartbeats (not a seed, nor given to `join`): forgotten once it
    /// has not answered for the node's `forget_after`.
    learned: bool,
    /// Since when no session has been up at this address.
    failing_since: Option<Instant>,
}

impl Dial {
    fn learned() -> Self {
        Self {
            learned: true,
            ..Self::default()
        }
    }

    /// Whether a learned address is to be forgotten: it has failed for `forget_after`.
    fn forgotten(&self, now: Instant, forget_after: Duration) -> bool {
        self.learned
            && !self.in_flight
            && self
                .failing_since
                .is_some_and(|since| now.saturating_duration_since(since) >= forget_after)
    }
}

pub(crate) struct ControllerState {
    config: Arc<Config>,
    name: Arc<str>,
    incarnation: u64,
    server: ActorRef<NodeServerMessage>,
    kinds: Arc<HashMap<String, Arc<dyn RemoteKind>>>,
    events: broadcast::Sender<NodeEvent>,
    peers: HashMap<Arc<str>, Peer>,
    /// Ready sessions: ractor_cluster's node id to the peer's name.
    sessions: HashMap<u64, Arc<str>>,
    /// Sessions that passed the cookie challenge and have not closed.
    authenticated: HashSet<u64>,
    dials: HashMap<SocketAddr, Dial>,
    children: HashMap<u64, Remote>,
    hosted: HashMap<ActorId, Hosted>,
    /// Hosted children by origin, origin incarnation and the origin's number: numbers start
    /// again with each incarnation of an origin.
    hosted_by_key: HashMap<(Arc<str>, u64, u64), ActorId>,
    round_robin: usize,
}

impl Actor for Controller {
    type Msg = Ctl;
    type State = ControllerState;
    type Arguments = ControllerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Ctl>,
        args: ControllerArgs,
    ) -> Result<ControllerState, ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.to_string(), GROUP.to_string(), vec![myself.get_cell()]);
        let dials = args.config.seeds.iter().map(|addr| (*addr, Dial::default())).collect();
        Ok(ControllerState {
            name: Arc::from(args.config.name.as_str()),
            config: args.config,
            incarnation: args.incarnation,
            server: args.server,
            kinds: args.kinds,
            events: args.events,
            peers: HashMap::new(),
            sessions: HashMap::new(),
            authenticated: HashSet::new(),
            dials,
            children: HashMap::new(),
            hosted: HashMap::new(),
            hosted_by_key: HashMap::new(),
            round_robin: 0,
        })
    }

    async fn post_stop(&self, myself: ActorRef<Ctl>, state: &mut ControllerState) -> Result<(), ActorProcessingErr> {
        ractor::pg::leave_scoped(SCOPE.to_string(), GROUP.to_string(), vec![myself.get_cell()]);
        for (_, remote) in state.children.drain() {
            fail_remote(remote, &state.name, ClusterError::NodeStopped);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Ctl>,
        message: Ctl,
        state: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            Ctl::Wire(wire) => state.on_wire(&myself, wire),
            Ctl::SessionReady { node_id, name } => state.on_session_ready(node_id, &name),
            Ctl::SessionAuthenticated { node_id } => {
                state.authenticated.insert(node_id);
            }
            Ctl::SessionClosed { node_id, peer } => {
                state.on_session_closed(node_id, &peer);
                // Dial a lost peer at once: a refusal means its process is gone.
                state.dial(&myself, Instant::now());
            }
            Ctl::Tick => state.on_tick(&myself),
            Ctl::Dialed { addr, ok } => state.on_dialed(addr, ok),
            Ctl::Spawn(request) => state.on_spawn(*request),
            Ctl::StopChild { child, kill, done } => state.on_stop_child(child, kill, done),
            Ctl::ProxyGone { child } => state.on_proxy_gone(child),
            Ctl::HostStarted { hosting, result } => state.on_host_started(hosting, result),
            Ctl::Locate { node, reply } => {
                let node_id = state.peers.get(&node).and_then(|p| p.node_id);
                let _ = reply.send(node_id);
            }
            Ctl::Members(reply) => {
                let _ = reply.send(state.members());
            }
            Ctl::Hosted(reply) => {
                let _ = reply.send(state.hosted_children());
            }
            Ctl::Dial(addr) => {
                // Given to `join`: kept for as long as the node runs.
                state.dials.entry(addr).or_default().learned = false;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<Ctl>,
        event: SupervisionEvent,
        state: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        // Hosted children are linked to the controller: their ends come here, and never
        // take the controller down.
        if let Ok((cell, reason)) = ExitReason::from_supervision_event(event) {
            state.on_hosted_exit(&cell, &reason);
        }
        Ok(())
    }
}

/// Tells a child's proxy (and whoever waits for it) that the child is lost.
fn fail_remote(remote: Remote, node: &str, error: ClusterError) {
    match remote.starting {
        Some(reply) => {
            let _ = reply.send(Err(error));
        }
        None => {
            let _ = remote.proxy.cast(ProxyMsg::NodeDown(Arc::from(node)));
        }
    }
    for waiter in remote.stop_waiters {
        let _ = waiter.send(());
    }
}

impl ControllerState {
    fn emit(&self, event: NodeEvent) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    fn heartbeat(&self) -> Wire {
        let mut kinds: Vec<String> = self.kinds.keys().cloned().collect();
        kinds.sort();
        Wire::Heartbeat(Heartbeat {
            node: self.name.to_string(),
            incarnation: self.incarnation,
            listen: self.config.listen.to_string(),
            kinds,
            hosted: u32::try_from(self.hosted.len()).unwrap_or(u32::MAX),
        })
    }

    /// Sends `wire` to `node`, or queues it until its session is back.
    fn send(&mut self, node: &str, wire: Wire) -> Result<(), ClusterError> {
        let capacity = self.config.outbox_capacity;
        let Some(peer) = self.peers.get_mut(node) else {
            return Err(ClusterError::NodeDown(node.to_string()));
        };
        if let Some(controller) = &peer.controller {
            match controller.send_message(Ctl::Wire(wire)) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // The stand-in is gone with its session: queue the message.
                    peer.controller = None;
                    let ractor::MessagingErr::SendErr(Ctl::Wire(wire)) = e else {
                        return Err(ClusterError::NodeDown(node.to_string()));
                    };
                    return queue(peer, node, wire, capacity);
                }
            }
        }
        queue(peer, node, wire, capacity)
    }

    fn sync_with(&mut self, node: &Arc<str>) {
        let alive: Vec<u64> = self
            .children
            .iter()
            .filter(|(_, r)| r.node == *node)
            .map(|(child, _)| *child)
            .collect();
        let sync = Wire::Sync {
            origin: self.name.to_string(),
            incarnation: self.incarnation,
            alive,
        };
        let _ = self.send(node, sync);
    }

    // ---- membership ------------------------------------------------------------------

    fn on_session_ready(&mut self, node_id: u64, name: &str) {
        if name == &*self.name {
            return;
        }
        let name: Arc<str> = Arc::from(name);
        self.sessions.insert(node_id, name.clone());
        let now = Instant::now();
        let peer = self.peers.entry(name.clone()).or_insert_with(|| Peer::new(now));
        peer.node_id = Some(node_id);
        peer.controller = find_controller(node_id);
        // A fresh session counts as hearing from it.
        peer.last_heard = now;
        let heartbeat = self.heartbeat();
        let _ = self.send(&name, heartbeat);
        self.flush(&name);
        if self.peers.get(&name).is_some_and(Peer::is_up) {
            // Reconnected before it was declared down: tell it what still runs there.
            self.sync_with(&name);
        }
        self.announce(&name);
    }

    fn on_session_closed(&mut self, node_id: u64, peer_name: &str) {
        let authenticated = self.authenticated.remove(&node_id);
        match self.sessions.remove(&node_id) {
            Some(name) => {
                if let Some(peer) = self.peers.get_mut(&name)
                    && peer.node_id == Some(node_id)
                {
                    peer.node_id = None;
                    peer.controller = None;
                    peer.announced = false;
                    if let Some(dial) = peer.listen.and_then(|listen| self.dials.get_mut(&listen)) {
                        dial.next = None;
                        dial.attempt = 0;
                    }
                    tracing::info!(node = %name, "session closed; the node is unreachable until it reconnects or is declared down");
                    self.emit(NodeEvent::Unreachable { node: name.to_string() });
                }
            }
            None if authenticated => {
                // A second session with a peer already connected, closed by ractor_cluster.
                tracing::debug!(peer = %peer_name, "a duplicate cluster session closed");
            }
            None => {
                tracing::warn!(peer = %peer_name, "a cluster session closed before it authenticated: a wrong cookie, or not a Warden node");
                self.emit(NodeEvent::Rejected {
                    peer: peer_name.to_string(),
                });
            }
        }
    }

    /// Emits [`NodeEvent::Up`] once a peer is both heard from and connected (in whichever
    /// order those came), and again after each reconnection.
    fn announce(&mut self, name: &Arc<str>) {
        let Some(peer) = self.peers.get_mut(name) else { return };
        if peer.announced || peer.node_id.is_none() {
            return;
        }
        let Some(incarnation) = peer.incarnation else { return };
        peer.announced = true;
        self.emit(NodeEvent::Up {
            node: name.to_string(),
            incarnation,
        });
    }

    fn on_heartbeat(&mut self, heartbeat: Heartbeat) {
        if heartbeat.node == *self.name {
            return;
        }
        let name: Arc<str> = Arc::from(heartbeat.node.as_str());
        let now = Instant::now();
        let restarted = self
            .peers
            .get(&name)
            .and_then(|p| p.incarnation)
            .is_some_and(|known| known != heartbeat.incarnation);
        if restarted {
            // The node was restarted before it was declared down: everything of the old
            // incarnation is gone, but the session it speaks on now is the new one's.
            let session = self.peers.get(&name).map(|p| (p.node_id, p.controller.clone()));
            self.forget(&name, DownReason::Restarted, false);
            if let Some((node_id, controller)) = session {
                let peer = self.peers.entry(name.clone()).or_insert_with(|| Peer::new(now));
                peer.node_id = node_id;
                peer.controller = controller;
                if let Some(node_id) = node_id {
                    self.sessions.insert(node_id, name.clone());
                }
            }
        }
        let peer = self.peers.entry(name.clone()).or_insert_with(|| Peer::new(now));
        if peer.controller.is_none()
            && let Some(node_id) = peer.node_id
        {
            peer.controller = find_controller(node_id);
        }
        let was_up = peer.is_up();
        peer.last_heard = now;
        peer.incarnation = Some(heartbeat.incarnation);
        peer.kinds = heartbeat.kinds;
        peer.hosted = heartbeat.hosted;
        peer.listen = heartbeat.listen.parse().ok();
        if let Some(listen) = peer.listen {
            self.dials.entry(listen).or_insert_with(Dial::learned);
        }
        if !was_up {
            tracing::info!(node = %name, incarnation = heartbeat.incarnation, "node up");
            self.sync_with(&name);
        }
        self.announce(&name);
        let incarnation = heartbeat.incarnation;
        self.stop_hosted_where(&name, |of, _| of != incarnation);
    }

    /// Forgets a peer: its children's proxies exit with `noconnection`, the children hosted
    /// for it stop, its session closes.
    fn declare_down(&mut self, name: &Arc<str>, reason: DownReason) {
        self.forget(name, reason, true);
    }

    /// Forgets a peer; closes its sessions if `close`.
    fn forget(&mut self, name: &Arc<str>, reason: DownReason, close: bool) {
        let Some(peer) = self.peers.remove(name) else { return };
        tracing::warn!(node = %name, ?reason, "node down");
        let lost: Vec<u64> = self
            .children
            .iter()
            .filter(|(_, r)| r.node == *name)
            .map(|(child, _)| *child)
            .collect();
        for child in lost {
            if let Some(remote) = self.children.remove(&child) {
                fail_remote(remote, name, ClusterError::NodeDown(name.to_string()));
            }
        }
        self.stop_hosted_where(name, |_, _| true);
        if let Some(node_id) = peer.node_id {
            self.sessions.remove(&node_id);
        }
        if close {
            close_sessions(self.server.clone(), name.clone());
        }
        self.emit(NodeEvent::Down {
            node: name.to_string(),
            reason,
        });
    }

    fn flush(&mut self, name: &Arc<str>) {
        let Some(peer) = self.peers.get_mut(name) else { return };
        let Some(controller) = peer.controller.clone() else {
            return;
        };
        while let Some(wire) = peer.outbox.pop_front() {
            if let Err(ractor::MessagingErr::SendErr(Ctl::Wire(wire))) = controller.send_message(Ctl::Wire(wire)) {
                peer.outbox.push_front(wire);
                peer.controller = None;
                return;
            }
        }
    }

    fn on_tick(&mut self, myself: &ActorRef<Ctl>) {
        let now = Instant::now();
        let down_after = self.config.down_after;
        let late: Vec<Arc<str>> = self
            .peers
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_heard) > down_after)
            .map(|(name, _)| name.clone())
            .collect();
        for name in late {
            self.declare_down(&name, DownReason::Silent);
        }
        let heartbeat = self.heartbeat();
        let names: Vec<Arc<str>> = self.peers.keys().cloned().collect();
        for name in names {
            if let Some(peer) = self.peers.get_mut(&name)
                && peer.controller.is_none()
                && let Some(node_id) = peer.node_id
            {
                peer.controller = find_controller(node_id);
                self.flush(&name);
            }
            if self.peers.get(&name).is_some_and(|p| p.controller.is_some()) {
                let _ = self.send(&name, heartbeat.clone());
            }
        }
        self.dial(myself, now);
    }

    // ---- reconnection ------------------------------------------------------------------

    fn dial(&mut self, myself: &ActorRef<Ctl>, now: Instant) {
        let own = self.config.listen;
        let connected: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| p.node_id.is_some())
            .filter_map(|p| p.listen)
            .collect();
        // A peer not yet declared down keeps its address: it may only be unreachable.
        let forget_after = self.config.forget_after;
        let claimed: Vec<SocketAddr> = self.peers.values().filter_map(|p| p.listen).collect();
        let forgotten: Vec<SocketAddr> = self
            .dials
            .iter()
            .filter(|(addr, dial)| !claimed.contains(addr) && dial.forgotten(now, forget_after))
            .map(|(addr, _)| *addr)
            .collect();
        for addr in forgotten {
            self.dials.remove(&addr);
            tracing::info!(%addr, "a learned address stopped answering {forget_after:?} ago; no longer dialled");
            self.emit(NodeEvent::Forgotten { addr: addr.to_string() });
        }
        for (addr, dial) in &mut self.dials {
            if *addr == own || connected.contains(addr) {
                dial.attempt = 0;
                dial.next = None;
                dial.failing_since = None;
                continue;
            }
            dial.failing_since.get_or_insert(now);
            if dial.in_flight || dial.next.is_some_and(|next| now < next) {
                continue;
            }
            dial.in_flight = true;
            let (server, addr, myself) = (self.server.clone(), *addr, myself.clone());
            let tls = self.config.tls.clone();
            tokio::spawn(async move {
                let ok = match tls {
                    Some(tls) => ractor_cluster::client_connect_enc(&server, addr, tls.connector, tls.server_name)
                        .await
                        .is_ok(),
                    None => ractor_cluster::client_connect(&server, addr).await.is_ok(),
                };
                let _ = myself.cast(Ctl::Dialed { addr, ok });
            });
        }
    }

    fn on_dialed(&mut self, addr: SocketAddr, ok: bool) {
        if !ok {
            // An unreachable peer whose address refuses connections is gone (a killed
            // process): no need to wait out its deadline.
            let gone = self
                .peers
                .iter()
                .find(|(_, p)| p.is_up() && p.node_id.is_none() && p.listen == Some(addr))
                .map(|(name, _)| name.clone());
            if let Some(name) = gone {
                self.declare_down(&name, DownReason::Refused);
            }
        }
        let backoff = &self.config.reconnect;
        let Some(dial) = self.dials.get_mut(&addr) else { return };
        dial.in_flight = false;
        dial.attempt = dial.attempt.saturating_add(1);
        // A connection that opened still has its handshake to do: give it the time a peer
        // has to answer before dialling again.
        let wait = if ok {
            self.config.down_after.max(backoff.delay(dial.attempt))
        } else {
            backoff.delay(dial.attempt)
        };
        dial.next = Some(Instant::now() + wait);
        if !ok {
            tracing::debug!(%addr, attempt = dial.attempt, "dial failed; trying again in {wait:?}");
        }
    }

    // ---- the origin's side ---------------------------------------------------------------

    fn place(&mut self, kind: &str, placement: &Placement) -> Result<Arc<str>, ClusterError> {
        let mut candidates: Vec<(&Arc<str>, &Peer)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_up() && p.kinds.iter().any(|k| k == kind))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(b.0));
        let placed_here = |name: &Arc<str>| self.children.values().filter(|r| r.node == *name).count();
        let chosen = match placement {
            Placement::Pinned(node) => candidates
                .iter()
                .find(|(name, _)| ***name == **node)
                .map(|(n, _)| (*n).clone()),
            Placement::Prefer(nodes) => nodes
                .iter()
                .find_map(|node| candidates.iter().find(|(name, _)| ***name == **node))
                .or_else(|| candidates.first())
                .map(|(n, _)| (*n).clone()),
            Placement::RoundRobin => {
                if candidates.is_empty() {
                    None
                } else {
                    self.round_robin = self.round_robin.wrapping_add(1);
                    Some(candidates[self.round_robin % candidates.len()].0.clone())
                }
            }
            Placement::LeastLoaded => candidates
                .iter()
                .min_by_key(|(name, peer)| (placed_here(name).max(peer.hosted as usize), (*name).clone()))
                .map(|(n, _)| (*n).clone()),
        };
        chosen.ok_or_else(|| match placement {
            Placement::Pinned(node) if !self.peers.contains_key(node.as_str()) => ClusterError::NodeDown(node.clone()),
            _ => ClusterError::NoNodeFor(kind.to_string()),
        })
    }

    fn on_spawn(&mut self, request: SpawnRequest) {
        let node = match self.place(&request.kind, &request.placement) {
            Ok(node) => node,
            Err(e) => {
                let _ = request.reply.send(Err(e));
                return;
            }
        };
        let spawn = Wire::Spawn {
            origin: self.name.to_string(),
            incarnation: self.incarnation,
            child: request.child,
            kind: request.kind,
            args: request.args.to_vec(),
            path: request.path,
        };
        if let Err(e) = self.send(&node, spawn) {
            let _ = request.reply.send(Err(e));
            return;
        }
        self.children.insert(
            request.child,
            Remote {
                node,
                proxy: request.proxy,
                starting: Some(request.reply),
                stop_waiters: Vec::new(),
            },
        );
    }

    fn on_spawned(&mut self, child: u64, result: Result<u64, String>) {
        let Some(remote) = self.children.get_mut(&child) else {
            return;
        };
        let Some(reply) = remote.starting.take() else { return };
        let node = remote.node.clone();
        match result {
            Ok(pid) => {
                if reply.send(Ok(Placed { node, pid })).is_err() {
                    // The proxy gave up waiting: its ProxyGone is on its way.
                }
            }
            Err(reason) => {
                self.children.remove(&child);
                let _ = reply.send(Err(ClusterError::SpawnFailed {
                    node: node.to_string(),
                    reason,
                }));
            }
        }
    }

    fn on_exited(&mut self, child: u64, reason: WireExit) {
        let Some(remote) = self.children.remove(&child) else {
            return;
        };
        match remote.starting {
            Some(reply) => {
                let _ = reply.send(Err(ClusterError::SpawnFailed {
                    node: remote.node.to_string(),
                    reason: format!("it ended at once: {reason:?}"),
                }));
            }
            None => {
                let _ = remote.proxy.cast(ProxyMsg::Exited(reason));
            }
        }
        for waiter in remote.stop_waiters {
            let _ = waiter.send(());
        }
    }

    fn on_stop_child(&mut self, child: u64, kill: bool, done: Option<oneshot::Sender<()>>) {
        let Some(remote) = self.children.get_mut(&child) else {
            if let Some(done) = done {
                let _ = done.send(());
            }
            return;
        };
        remote.stop_waiters.extend(done);
        let node = remote.node.clone();
        let stop = Wire::Stop {
            origin: self.name.to_string(),
            child,
            kill,
        };
        if self.send(&node, stop).is_err() {
            // Its node is gone: so is the child.
            if let Some(remote) = self.children.remove(&child) {
                for waiter in remote.stop_waiters {
                    let _ = waiter.send(());
                }
            }
        }
    }

    fn on_proxy_gone(&mut self, child: u64) {
        if !self.children.contains_key(&child) {
            return;
        }
        self.on_stop_child(child, true, None);
        // Whatever the host answers, nobody waits for it any more.
        if let Some(remote) = self.children.remove(&child) {
            for waiter in remote.stop_waiters {
                let _ = waiter.send(());
            }
        }
    }

    // ---- the host's side -----------------------------------------------------------------

    fn on_host_spawn(&mut self, myself: &ActorRef<Ctl>, spawn: Wire) {
        let Wire::Spawn {
            origin,
            incarnation,
            child,
            kind,
            args,
            path,
        } = spawn
        else {
            return;
        };
        let origin: Arc<str> = Arc::from(origin.as_str());
        if self.peers.get(&origin).and_then(|p| p.incarnation) != Some(incarnation) {
            tracing::warn!(%origin, child, "a spawn from a node not up (or of another incarnation) is refused");
            let _ = self.send(
                &origin,
                Wire::Spawned {
                    child,
                    result: Err("the host does not know the origin as up".into()),
                },
            );
            return;
        }
        let Some(starter) = self.kinds.get(&kind).cloned() else {
            let _ = self.send(
                &origin,
                Wire::Spawned {
                    child,
                    result: Err(format!("node {} has no kind {kind:?}", self.name)),
                },
            );
            return;
        };
        let ctx = HostContext {
            host: myself.get_cell(),
            node: self.name.clone(),
            origin: origin.clone(),
            path: Arc::from(path.as_str()),
        };
        let myself = myself.clone();
        // Started in a task of its own: a slow pre_start must not hold up heartbeats.
        tokio::spawn(async move {
            let start = std::panic::AssertUnwindSafe(starter.start(ctx, args));
            let result = match futures::FutureExt::catch_unwind(start).await {
                Ok(result) => result,
                Err(_) => Err("the kind's start panicked".to_string()),
            };
            let hosting = Hosting {
                origin,
                incarnation,
                child,
                kind,
                path,
            };
            let started = Ctl::HostStarted { hosting, result };
            if let Err(ractor::MessagingErr::SendErr(Ctl::HostStarted { result: Ok(cell), .. })) = myself.cast(started)
            {
                // The controller is gone: so must the child be.
                cell.kill();
            }
        });
    }

    fn on_host_started(&mut self, hosting: Hosting, result: Result<ActorCell, String>) {
        let Hosting {
            origin,
            incarnation,
            child,
            kind,
            path,
        } = hosting;
        let origin_up = self.peers.get(&origin).and_then(|p| p.incarnation) == Some(incarnation);
        match result {
            Ok(cell) if origin_up => {
                self.hosted_by_key
                    .insert((origin.clone(), incarnation, child), cell.get_id());
                self.hosted.insert(
                    cell.get_id(),
                    Hosted {
                        origin: origin.clone(),
                        incarnation,
                        child,
                        kind,
                        path,
                        cell: cell.clone(),
                    },
                );
                if cell.supports_remoting() {
                    // So that its origin can reach it: ractor_cluster announces process groups
                    // (not pids) to peers.
                    ractor::pg::join_scoped(SCOPE.to_string(), hosted_group(&origin), vec![cell.clone()]);
                }
                tracing::info!(%origin, child, actor = %cell.get_id(), "hosting a child");
                self.emit(NodeEvent::Hosting {
                    origin: origin.to_string(),
                    child,
                });
                let _ = self.send(
                    &origin,
                    Wire::Spawned {
                        child,
                        result: Ok(cell.get_id().pid()),
                    },
                );
            }
            Ok(cell) => {
                // Its origin went down while it started.
                cell.stop(Some("noconnection".to_string()));
            }
            Err(reason) => {
                let reason = format!("{kind} at {path}: {reason}");
                let _ = self.send(
                    &origin,
                    Wire::Spawned {
                        child,
                        result: Err(reason),
                    },
                );
            }
        }
    }

    fn on_host_stop(&mut self, origin: &str, child: u64, kill: bool) {
        let origin: Arc<str> = Arc::from(origin);
        // A stop comes from the origin's current incarnation.
        let Some(incarnation) = self.peers.get(&origin).and_then(|p| p.incarnation) else {
            return;
        };
        let Some(id) = self.hosted_by_key.get(&(origin, incarnation, child)) else {
            // Already ended: its Exited is on its way, or it never started.
            return;
        };
        if let Some(hosted) = self.hosted.get(id) {
            if kill {
                hosted.cell.kill();
            } else {
                hosted.cell.stop(Some("shutdown".to_string()));
            }
        }
    }

    fn on_hosted_exit(&mut self, cell: &ActorCell, reason: &ExitReason) {
        let Some(hosted) = self.hosted.remove(&cell.get_id()) else {
            return;
        };
        self.hosted_by_key
            .remove(&(hosted.origin.clone(), hosted.incarnation, hosted.child));
        tracing::info!(origin = %hosted.origin, child = hosted.child, %reason, "a hosted child ended");
        self.emit(NodeEvent::HostedExited {
            origin: hosted.origin.to_string(),
            child: hosted.child,
            reason: reason.to_string(),
        });
        if self.peers.get(&hosted.origin).and_then(|p| p.incarnation) == Some(hosted.incarnation) {
            let exited = Wire::Exited {
                child: hosted.child,
                reason: WireExit::from(reason),
            };
            let _ = self.send(&hosted.origin, exited);
        }
    }

    /// Stops the children hosted for `origin` for which `stale` holds (their incarnation of
    /// the origin, their number).
    fn stop_hosted_where(&self, origin: &Arc<str>, stale: impl Fn(u64, u64) -> bool) {
        for hosted in self.hosted.values() {
            if hosted.origin == *origin && stale(hosted.incarnation, hosted.child) {
                tracing::info!(%origin, child = hosted.child, "stopping a child its origin no longer has");
                hosted.cell.stop(Some("noconnection".to_string()));
            }
        }
    }

    // ---- dispatch ------------------------------------------------------------------------

    fn on_wire(&mut self, myself: &ActorRef<Ctl>, wire: Wire) {
        match wire {
            Wire::Heartbeat(heartbeat) => self.on_heartbeat(heartbeat),
            Wire::Sync {
                origin,
                incarnation,
                alive,
            } => {
                // Of the origin's current incarnation, only the children it names live on.
                let origin: Arc<str> = Arc::from(origin.as_str());
                self.stop_hosted_where(&origin, |of, child| of != incarnation || !alive.contains(&child));
            }
            spawn @ Wire::Spawn { .. } => self.on_host_spawn(myself, spawn),
            Wire::Spawned { child, result } => self.on_spawned(child, result),
            Wire::Stop { origin, child, kill } => self.on_host_stop(&origin, child, kill),
            Wire::Exited { child, reason } => self.on_exited(child, reason),
        }
    }

    fn members(&self) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .peers
            .iter()
            .map(|(name, p)| Member {
                node: name.to_string(),
                incarnation: p.incarnation,
                listen: p.listen,
                kinds: p.kinds.clone(),
                hosted: p.hosted,
                status: match (p.is_up(), p.node_id.is_some()) {
                    (true, true) => MemberStatus::Up,
                    (true, false) => MemberStatus::Unreachable,
                    (false, _) => MemberStatus::Joining,
                },
            })
            .collect();
        members.sort_by(|a, b| a.node.cmp(&b.node));
        members
    }

    fn hosted_children(&self) -> Vec<HostedChild> {
        let mut hosted: Vec<HostedChild> = self
            .hosted
            .values()
            .map(|h| HostedChild {
                origin: h.origin.to_string(),
                child: h.child,
                kind: h.kind.clone(),
                path: h.path.clone(),
                actor: h.cell.get_id(),
            })
            .collect();
        hosted.sort_by(|a, b| (&a.origin, a.child).cmp(&(&b.origin, b.child)));
        hosted
    }
}

fn queue(peer: &mut Peer, node: &str, wire: Wire, capacity: usize) -> Result<(), ClusterError> {
    if peer.outbox.len() >= capacity {
        return Err(ClusterError::Overloaded(node.to_string()));
    }
    peer.outbox.push_back(wire);
    Ok(())
}

/// The process group of the children hosted for `origin` (those whose messages can cross
/// nodes).
pub(crate) fn hosted_group(origin: &str) -> String {
    format!("hosted:{origin}")
}

/// The controller of the peer on session `node_id`: its stand-in in the controllers' group.
fn find_controller(node_id: u64) -> Option<ActorRef<Ctl>> {
    ractor::pg::get_scoped_members(&SCOPE.to_string(), &GROUP.to_string())
        .into_iter()
        .find(|cell| !cell.get_id().is_local() && cell.get_id().node() == node_id)
        .map(ActorRef::from)
}

/// Closes every session with `name` (in a task: it asks the node server).
fn close_sessions(server: ActorRef<NodeServerMessage>, name: Arc<str>) {
    tokio::spawn(async move {
        let Ok(sessions) = ractor::call_t!(server, NodeServerMessage::GetSessions, 2_000) else {
            return;
        };
        for session in sessions.values() {
            if session.peer_name.as_ref().is_some_and(|n| node_name(&n.name) == &*name) {
                session.actor.stop(Some("warden: node declared down".to_string()));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(n: u32) -> Wire {
        Wire::Heartbeat(Heartbeat {
            node: "a".into(),
            incarnation: 1,
            listen: "127.0.0.1:1".into(),
            kinds: Vec::new(),
            hosted: n,
        })
    }

    #[test]
    fn messages_for_an_unreachable_peer_wait_in_a_bounded_outbox() {
        let mut peer = Peer::new(Instant::now());
        assert_eq!(queue(&mut peer, "a", heartbeat(1), 2), Ok(()));
        assert_eq!(queue(&mut peer, "a", heartbeat(2), 2), Ok(()));
        assert_eq!(
            queue(&mut peer, "a", heartbeat(3), 2),
            Err(ClusterError::Overloaded("a".into()))
        );
        // In order, nothing lost of what was accepted.
        assert_eq!(
            peer.outbox.iter().cloned().collect::<Vec<_>>(),
            [heartbeat(1), heartbeat(2)]
        );
    }

    #[test]
    fn a_session_name_is_the_node_name() {
        assert_eq!(node_name("b@127.0.0.1"), "b");
        assert_eq!(node_name("b"), "b");
    }

    #[test]
    fn only_a_learned_address_that_failed_long_enough_is_forgotten() {
        use std::time::{Duration, Instant};

        use super::Dial;

        // Ahead of the clock, so that `now - secs` stays after the machine's boot.
        let now = Instant::now() + Duration::from_secs(10_000);
        let after = Duration::from_secs(300);
        let failing = |learned, for_secs: u64, in_flight| Dial {
            learned,
            in_flight,
            failing_since: Some(now - Duration::from_secs(for_secs)),
            ..Dial::default()
        };
        assert!(failing(true, 300, false).forgotten(now, after));
        assert!(!failing(true, 299, false).forgotten(now, after), "not yet");
        assert!(
            !failing(true, 301, true).forgotten(now, after),
            "a dial in flight may answer"
        );
        assert!(!failing(false, 3_000, false).forgotten(now, after), "a seed is kept");
        assert!(!Dial::learned().forgotten(now, after), "connected");
    }
}
