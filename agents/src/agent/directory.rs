//! [`Directory`]: where an agent enters when it starts and reaches others by address, without
//! the agent knowing what keeps the names.

use std::time::Duration;

use futures::future::BoxFuture;
use warden_supervisor::ChildPath;

use super::AgentRef;
use super::error::AgentError;
use super::reply::Reply;
use crate::message::{Address, AgentMessage};

/// A name already belongs to another agent or team.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is taken.
    #[error("name {0:?} is already registered")]
    NameTaken(String),
}

/// Where agents are entered by name (and by path in the tree) when they start, withdrawn when
/// they stop, and reached by [`Address`] from a turn ([`TurnContext::directory`](super::TurnContext::directory)).
/// [`Registry`](crate::Registry) is the one this crate provides; give an agent one with
/// [`Agent::registry`](super::Agent::registry) or [`Agent::directory`](super::Agent::directory).
pub trait Directory: Send + Sync + 'static {
    /// Enters a starting agent under its name and, when it runs under a supervisor, its
    /// path.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NameTaken`] when the name belongs to a team or to another agent that
    /// is running; the agent's start then fails.
    fn enter(&self, agent: &AgentRef, path: Option<&ChildPath>) -> Result<(), RegistryError>;

    /// Removes a stopping agent's own entries (its name, if it still names this agent, and
    /// its paths).
    fn withdraw(&self, agent: &AgentRef);

    /// Asks whoever is at `to` (the task's recipient is set to `to`).
    ///
    /// # Errors
    ///
    /// [`AgentError::NoSuchAddress`] if nobody is there, else as [`AgentRef::ask`].
    fn ask<'a>(
        &'a self,
        to: &'a Address,
        task: AgentMessage,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Reply, AgentError>>;

    /// Tells whoever is at `to` (the task's recipient is set to `to`).
    ///
    /// # Errors
    ///
    /// [`AgentError::NoSuchAddress`] if nobody is there, else as [`AgentRef::tell`].
    fn tell(&self, to: &Address, task: AgentMessage) -> Result<(), AgentError>;
}
