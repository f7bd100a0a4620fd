//! What can go wrong across nodes: [`ClusterError`].

use std::time::Duration;

/// Why a cluster operation failed. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The node is down, or was never up: it is not a member now.
    #[error("node {0} is down")]
    NodeDown(String),
    /// No live node offers this kind (or the placement allows none of those that do).
    #[error("no live node can start kind {0:?}")]
    NoNodeFor(String),
    /// The node refused or failed the start.
    #[error("the start on node {node} failed: {reason}")]
    SpawnFailed {
        /// The node.
        node: String,
        /// What it said.
        reason: String,
    },
    /// No answer in time.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
    /// Too many messages wait for a node that is unreachable: this one is refused.
    #[error("too many messages wait for unreachable node {0}")]
    Overloaded(String),
    /// This node is stopped.
    #[error("this cluster node is stopped")]
    NodeStopped,
    /// The node could not start (its port is taken, say).
    #[error("the cluster node could not start: {0}")]
    Start(String),
    /// TLS settings that cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A child's arguments could not be encoded.
    #[error("cannot encode the arguments: {0}")]
    Arguments(String),
}
