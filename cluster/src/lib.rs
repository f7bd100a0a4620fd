//! Warden across processes and machines, on `ractor_cluster`.
//!
//! Turn it on with the `cluster` feature (ractor's, which this crate needs); without it the
//! crate is empty.
//!
//! * [`Node`]: this process as a member of a cluster: it listens, authenticates peers by
//!   cookie (and, with [`Tls`], by a certificate of the cluster's CA), joins seeds, and keeps its sessions, redialling lost ones with backoff and
//!   jitter. A heartbeat with a deadline declares a dead *or stopped* peer down within
//!   1.4 s by default (ractor_cluster alone never notices a peer that stops answering on
//!   an open connection; Erlang's default takes 45 to 75 s).
//! * [`RemoteChild`]: a child of a local supervisor that runs on another node, placed by a
//!   [`Placement`]. The supervisor sees its exits with their real reasons, and the loss of
//!   its node as an exit with reason `noconnection`, and restarts it by its strategy,
//!   possibly elsewhere. After a partition heals, a child restarted elsewhere is never left
//!   running twice.
//! * [`NodeProcess`]: a child that is a `warden node` OS process, so that a tool that
//!   crashes or leaks takes down only its own process: its death is the child's exit
//!   (`killed` for a kill -9) and the supervisor restarts it by its strategy.
//! * [`RemoteAgent`]: an agent hosted on any node ([`agent_kind`]), asked by name as an
//!   `AgentRef` asks a local one: exactly once, within a deadline, with a typed
//!   [`RemoteAskError::NodeDown`] when its node is lost before it answers. Its
//!   [`agent_ref`](RemoteAgent::agent_ref) is an `AgentRef` like a local agent's.
//! * [`ClusterDirectory`]: agents' names resolved across nodes: a local agent asks another by
//!   name, and a name nobody in its process has goes to the node that hosts it.
//! * [`RemoteKind`]: what a node can start for its peers, registered by name: peers send a
//!   kind's name and its arguments, never code. Every node offers [`ECHO_KIND`].
//!
//! Every message between nodes is encoded by `warden_agents::codec` (the one module that
//! knows the binary form) and carried by ractor_cluster; a frame larger than the node's
//! bound drops its connection before anything is allocated for it, and a payload that does
//! not decode is dropped.
//!
//! `warden node` (the `warden` binary, built with `cluster`) runs a node with the built-in
//! kinds, for a supervisor elsewhere to place children on.
//!
//! The engine is ractor_cluster 0.16.5 with one patch, carried in this repository
//! (`vendor/ractor_cluster`, package `warden-ractor-cluster`, library `ractor_cluster`):
//! frames read go straight to the node session and frames written straight to the
//! connection's writer task, without a relay actor in between, which brings a remote ask
//! to OTP's round trip. Its public API is upstream's.

// Without `cluster` the items these docs name are not built.
#![cfg_attr(not(feature = "cluster"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "cluster")]
mod agent;
#[cfg(feature = "cluster")]
mod controller;
#[cfg(feature = "cluster")]
mod directory;
#[cfg(feature = "cluster")]
mod echo;
#[cfg(feature = "cluster")]
mod error;
#[cfg(feature = "cluster")]
mod kind;
#[cfg(feature = "cluster")]
mod node;
#[cfg(feature = "cluster")]
mod process;
#[cfg(feature = "cluster")]
mod remote;
#[cfg(feature = "cluster")]
mod tls;
#[cfg(feature = "cluster")]
mod wire;

#[cfg(feature = "cluster")]
pub use agent::{
    CONTROL_DEADLINE, GatewayMsg, ReactAgentArgs, RemoteAgent, RemoteAskError, agent_kind, react_agent_kind,
    react_agent_kind_observed,
};
#[cfg(feature = "cluster")]
pub use directory::ClusterDirectory;
#[cfg(feature = "cluster")]
pub use echo::{ECHO_KIND, Echo, EchoArgs, EchoMsg, EchoState, echo_kind};
#[cfg(feature = "cluster")]
pub use error::ClusterError;
#[cfg(feature = "cluster")]
pub use kind::{HostContext, Kind, RemoteKind};
#[cfg(feature = "cluster")]
pub use node::{
    DEFAULT_DOWN_AFTER, DEFAULT_FORGET_AFTER, DEFAULT_HEARTBEAT, DEFAULT_MAX_FRAME_BYTES, DEFAULT_OUTBOX_CAPACITY,
    DownReason, HostedChild, Member, MemberStatus, Node, NodeBuilder, NodeEvent,
};
#[cfg(feature = "cluster")]
pub use process::{DEFAULT_READY_TIMEOUT, NodeProcess, process_id};
#[cfg(feature = "cluster")]
pub use remote::{DEFAULT_SPAWN_TIMEOUT, NOCONNECTION, Placement, RemoteChild, RemoteLocation, locate};
#[cfg(feature = "cluster")]
pub use tls::Tls;

/// The engine underneath, for what Warden does not wrap (a plain ractor_cluster node for a
/// comparison, say). Depending on it through this crate keeps ractor's `cluster` feature
/// behind Warden's.
#[cfg(feature = "cluster")]
pub use ractor_cluster;
