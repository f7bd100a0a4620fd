//! [`RemoteLink`]: how an [`AgentRef`](super::AgentRef) reaches an agent that runs in another
//! process, so that the same handle serves a local agent and a remote one.
//!
//! This crate knows nothing of nodes: `warden-cluster` implements the link over its
//! sessions (`RemoteAgent::agent_ref`), and [`AgentRef::remote`](super::AgentRef::remote)
//! wraps any link. Every call is one request to the agent's node, never resent: an ask has
//! exactly one outcome within its deadline, and a node lost before the answer is
//! [`AgentError::NodeDown`].

use std::time::Duration;

use futures::future::BoxFuture;
use warden_durable::TaskId;

use super::error::AgentError;
use super::handle::AgentStatus;
use super::reply::Reply;
use crate::message::AgentMessage;

/// The requests an [`AgentRef`](super::AgentRef) makes of an agent in another process. Each
/// answers as the same method of a local `AgentRef` does, and with
/// [`AgentError::NodeDown`] when the agent's node was lost before it answered,
/// [`AgentError::NotDelivered`] when no node hosts the agent now, and
/// [`AgentError::Remote`] for the agent's own errors as they crossed.
pub trait RemoteLink: Send + Sync + 'static {
    /// Whether a node hosts the agent now and is reachable.
    fn is_reachable(&self) -> bool;

    /// As [`AgentRef::ask`](super::AgentRef::ask): sent once, answered once within `deadline`.
    fn ask(&self, task: AgentMessage, deadline: Duration) -> BoxFuture<'static, Result<Reply, AgentError>>;

    /// As [`AgentRef::tell`](super::AgentRef::tell): sent, not waited for.
    ///
    /// # Errors
    ///
    /// [`AgentError::NotDelivered`] when no node hosts the agent now, or its session is gone.
    fn tell(&self, task: AgentMessage) -> Result<(), AgentError>;

    /// As [`AgentRef::submit`](super::AgentRef::submit), to a durable agent on its node.
    fn submit(&self, task: AgentMessage) -> BoxFuture<'static, Result<TaskId, AgentError>>;

    /// As [`AgentRef::result`](super::AgentRef::result), read from the journal by the node
    /// that hosts the agent now.
    fn result(&self, id: TaskId, deadline: Duration) -> BoxFuture<'static, Result<Reply, AgentError>>;

    /// As [`AgentRef::interrupt`](super::AgentRef::interrupt).
    fn interrupt(&self) -> BoxFuture<'static, Result<bool, AgentError>>;

    /// As [`AgentRef::human_input`](super::AgentRef::human_input).
    ///
    /// # Errors
    ///
    /// [`AgentError::NotDelivered`] when no node hosts the agent now, or its session is gone.
    fn human_input(&self, text: String) -> Result<(), AgentError>;

    /// As [`AgentRef::status`](super::AgentRef::status).
    fn status(&self) -> BoxFuture<'static, Result<AgentStatus, AgentError>>;
}
