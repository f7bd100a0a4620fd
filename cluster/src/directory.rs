//! [`ClusterDirectory`]: agents' names resolved across nodes. An agent given one
//! ([`Agent::directory`](warden_agents::Agent::directory)) reaches the agents of its own
//! process through a local [`Registry`] and, for a name nobody here has, the agent of that
//! name that any node of the cluster hosts, as a [`RemoteAgent`]: so a turn that asks
//! `planner` by name need not know which process runs it.

use std::time::Duration;

use futures::future::BoxFuture;
use warden_agents::agent::{AgentError, AgentRef, Directory, RegistryError, Reply};
use warden_agents::message::{Address, AgentMessage};
use warden_agents::registry::Registry;
use warden_supervisor::ChildPath;

use crate::agent::RemoteAgent;
use crate::node::Node;

/// A [`Directory`] over a local [`Registry`] and the cluster: local names first; a name
/// nobody here has goes to the agent of that name on whichever node hosts it. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct ClusterDirectory {
    local: Registry,
}

impl ClusterDirectory {
    /// Over `local` (where this process's agents enter), on `node`'s cluster.
    pub fn new(_node: &Node, local: Registry) -> Self {
        Self { local }
    }

    /// The local registry.
    pub fn local(&self) -> &Registry {
        &self.local
    }

    /// Whoever answers at `to`: a local agent or team, else, for a name, the agent of that
    /// name that a node hosts now.
    fn resolve(&self, to: &Address) -> Result<Option<AgentRef>, AgentError> {
        if self.local.lookup(to).is_some() {
            return Ok(None);
        }
        match to {
            Address::Name(name) => {
                let remote = RemoteAgent::from_name(name.clone());
                if remote.is_reachable() {
                    Ok(Some(remote.agent_ref()))
                } else {
                    Err(AgentError::NoSuchAddress(to.clone()))
                }
            }
            _ => Err(AgentError::NoSuchAddress(to.clone())),
        }
    }
}

impl Directory for ClusterDirectory {
    fn enter(&self, agent: &AgentRef, path: Option<&ChildPath>) -> Result<(), RegistryError> {
        Directory::enter(&self.local, agent, path)
    }

    fn withdraw(&self, agent: &AgentRef) {
        Directory::withdraw(&self.local, agent);
    }

    fn ask<'a>(
        &'a self,
        to: &'a Address,
        task: AgentMessage,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Reply, AgentError>> {
        Box::pin(async move {
            match self.resolve(to)? {
                None => self.local.ask(to, task, deadline).await,
                Some(remote) => remote.ask(task.to(to.clone()), deadline).await,
            }
        })
    }

    fn tell(&self, to: &Address, task: AgentMessage) -> Result<(), AgentError> {
        match self.resolve(to)? {
            None => self.local.tell(to, task),
            Some(remote) => remote.tell(task.to(to.clone())),
        }
    }
}
