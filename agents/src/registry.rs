//! Addressing: a [`Registry`] finds agents by name or tree path, and teams by name.
//!
//! Any agent can message any other whose address it knows: the registry resolves an
//! [`Address`] to a [`Target`], one agent or a [`Team`], and a target is asked or told the
//! same way either way. Agents register themselves when they start
//! ([`Agent::registry`](crate::agent::Agent::registry)): by name, and by path when they run
//! under a supervisor. The entries are [`AgentRef`]s, which follow restarts, so an address
//! stays good across crashes. Names are shared by agents and teams: one name, one target.
//!
//! # Agents that end
//!
//! An agent leaves the registry when it stops (a stop, as when its supervisor terminates
//! it or shuts down; a restart registers it again, as an OTP process registers its name
//! again in `init`). An agent that was killed or crashed stays, so its address stays good
//! while its supervisor restarts it; but such a *dead* entry (an agent that has run and has
//! no incarnation running) never blocks a new agent of the same name, which replaces it,
//! and registrations sweep the dead entries away whenever the registry has doubled since
//! the last sweep (so a registration costs O(1) amortized). So the registry does not grow
//! with agents that come and go: a temporary agent's name is free again once it ends, and
//! dead entries never outnumber the live ones by much.
//!
//! ```
//! use warden_agents::registry::Registry;
//! use warden_agents::team::{RoutePolicy, Team};
//! use warden_agents::message::Address;
//!
//! let registry = Registry::new();
//! registry.register(Team::new("reviewers", RoutePolicy::RoundRobin, []))?;
//! assert!(registry.lookup(&Address::team("reviewers")).is_some());
//! assert!(registry.lookup(&Address::name("nobody")).is_none());
//! # Ok::<(), warden_agents::registry::RegistryError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use warden_supervisor::ChildPath;

pub use crate::agent::RegistryError;
use crate::agent::{Agent, AgentError, AgentRef, Directory, Reply};
use crate::message::{Address, AgentMessage};
use crate::team::Team;

/// What an address resolves to: one agent, or a team addressed like one agent.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Target {
    /// One agent.
    Agent(AgentRef),
    /// A team.
    Team(Team),
}

impl From<AgentRef> for Target {
    fn from(agent: AgentRef) -> Self {
        Self::Agent(agent)
    }
}

impl From<Team> for Target {
    fn from(team: Team) -> Self {
        Self::Team(team)
    }
}

impl Target {
    /// The target's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Agent(a) => a.name(),
            Self::Team(t) => t.name(),
        }
    }

    /// The target's address.
    pub fn address(&self) -> Address {
        match self {
            Self::Agent(a) => a.address(),
            Self::Team(t) => t.address(),
        }
    }

    /// Asks the agent, or the team by its policy.
    ///
    /// # Errors
    ///
    /// See [`AgentRef::ask`] and [`Team::ask`].
    ///
    /// # Cancellation
    ///
    /// As [`AgentRef::ask`].
    pub async fn ask(&self, task: AgentMessage, deadline: Duration) -> Result<Reply, AgentError> {
        match self {
            Self::Agent(a) => a.ask(task, deadline).await,
            Self::Team(t) => t.ask(task, deadline).await,
        }
    }

    /// Tells the agent, or the team by its policy.
    ///
    /// # Errors
    ///
    /// See [`AgentRef::tell`] and [`Team::tell`].
    pub fn tell(&self, task: AgentMessage) -> Result<(), AgentError> {
        match self {
            Self::Agent(a) => a.tell(task),
            Self::Team(t) => t.tell(task),
        }
    }
}

#[derive(Default)]
struct Inner {
    names: HashMap<String, Target>,
    paths: HashMap<ChildPath, AgentRef>,
    /// The next registration sweeps once there are this many entries.
    sweep_at: usize,
}

/// The smallest number of entries at which a registration sweeps.
const MIN_SWEEP_AT: usize = 64;

/// Whether an agent has run and no incarnation of it is running now.
fn is_dead(agent: &AgentRef) -> bool {
    agent.generation() > 0 && !agent.is_running()
}

impl Inner {
    /// Removes the entries of dead agents: agents that have run and have no incarnation
    /// running (killed or crashed, and not restarted, or not yet).
    fn sweep(&mut self) {
        self.names
            .retain(|_, target| !matches!(target, Target::Agent(a) if is_dead(a)));
        self.paths.retain(|_, agent| !is_dead(agent));
    }

    /// Sweeps if the registry has doubled since the last sweep (amortized O(1)).
    fn maybe_sweep(&mut self) {
        if self.names.len() + self.paths.len() < self.sweep_at.max(MIN_SWEEP_AT) {
            return;
        }
        self.sweep();
        self.sweep_at = 2 * (self.names.len() + self.paths.len());
    }
}

/// A directory of agents and teams. Cheap to clone; clones share the directory.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = inner.names.keys().collect();
        names.sort();
        f.debug_struct("Registry")
            .field("names", &names)
            .field("paths", &inner.paths.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an agent or a team under its name. Registering the same agent again is a
    /// no-op; a team registered again is replaced; a dead agent's entry (see the
    /// [module docs](self)) is replaced. Sweeps away the dead agents' entries now and then
    /// (see the module docs).
    ///
    /// # Errors
    ///
    /// [`RegistryError::NameTaken`] if a team, or another agent that is running (or has
    /// not started yet), has the name.
    pub fn register(&self, target: impl Into<Target>) -> Result<(), RegistryError> {
        let target = target.into();
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let name = target.name().to_owned();
        if let (Some(Target::Agent(old)), Target::Agent(new)) = (inner.names.get(&name), &target)
            && old.same_agent(new)
        {
            return Ok(());
        }
        inner.maybe_sweep();
        match (inner.names.get(&name), &target) {
            (None, _) => {}
            (Some(Target::Agent(old)), _) if is_dead(old) => {}
            (Some(Target::Team(old)), Target::Team(new)) if old.same_team(new) => {}
            (Some(_), _) => return Err(RegistryError::NameTaken(name)),
        }
        // A dead agent replaced takes its paths with it.
        if let Some(Target::Agent(old)) = inner.names.insert(name, target) {
            inner.paths.retain(|_, a| !a.same_agent(&old));
        }
        Ok(())
    }

    /// Removes `agent`'s own entries: its name, if it still names this agent, and its paths.
    fn withdraw_agent(&self, agent: &AgentRef) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if matches!(inner.names.get(agent.name()), Some(Target::Agent(a)) if a.same_agent(agent)) {
            inner.names.remove(agent.name());
        }
        inner.paths.retain(|_, a| !a.same_agent(agent));
    }

    fn register_path(&self, path: ChildPath, agent: &AgentRef) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.maybe_sweep();
        inner.paths.insert(path, agent.clone());
    }

    /// Removes a name (and the paths of the agent it named).
    pub fn unregister(&self, name: &str) -> Option<Target> {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let removed = inner.names.remove(name);
        if let Some(Target::Agent(agent)) = &removed {
            inner.paths.retain(|_, a| !a.same_agent(agent));
        }
        removed
    }

    /// Resolves an address: a name to the agent or team of that name, a team address to a
    /// team, a path to the agent started there.
    pub fn lookup(&self, address: &Address) -> Option<Target> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        match address {
            Address::Name(name) => inner.names.get(name).cloned(),
            Address::Team(name) => inner.names.get(name).filter(|t| matches!(t, Target::Team(_))).cloned(),
            Address::Path(path) => inner.paths.get(path).cloned().map(Target::Agent),
            _ => None,
        }
    }

    /// The agent of this name.
    pub fn agent(&self, name: &str) -> Option<AgentRef> {
        match self.lookup(&Address::name(name)) {
            Some(Target::Agent(agent)) => Some(agent),
            _ => None,
        }
    }

    /// The team of this name.
    pub fn team(&self, name: &str) -> Option<Team> {
        match self.lookup(&Address::team(name)) {
            Some(Target::Team(team)) => Some(team),
            _ => None,
        }
    }

    /// How many names are registered (agents and teams).
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).names.len()
    }

    /// Whether no name is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many tree paths are registered.
    pub fn path_count(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).paths.len()
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = inner.names.keys().cloned().collect();
        names.sort();
        names
    }

    /// Asks whoever is at `to`; the task's recipient is set to `to`.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoSuchAddress`] if nothing is registered there, else as [`Target::ask`].
    ///
    /// # Cancellation
    ///
    /// As [`AgentRef::ask`].
    pub async fn ask(&self, to: &Address, task: AgentMessage, deadline: Duration) -> Result<Reply, AgentError> {
        let target = self.lookup(to).ok_or_else(|| AgentError::NoSuchAddress(to.clone()))?;
        target.ask(task.to(to.clone()), deadline).await
    }

    /// Tells whoever is at `to`; the task's recipient is set to `to`.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoSuchAddress`] if nothing is registered there, else as [`Target::tell`].
    pub fn tell(&self, to: &Address, task: AgentMessage) -> Result<(), AgentError> {
        let target = self.lookup(to).ok_or_else(|| AgentError::NoSuchAddress(to.clone()))?;
        target.tell(task.to(to.clone()))
    }
}

impl Directory for Registry {
    fn enter(&self, agent: &AgentRef, path: Option<&ChildPath>) -> Result<(), RegistryError> {
        self.register(agent.clone())?;
        if let Some(path) = path {
            self.register_path(path.clone(), agent);
        }
        Ok(())
    }

    fn withdraw(&self, agent: &AgentRef) {
        self.withdraw_agent(agent);
    }

    fn ask<'a>(
        &'a self,
        to: &'a Address,
        task: AgentMessage,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Reply, AgentError>> {
        Box::pin(Registry::ask(self, to, task, deadline))
    }

    fn tell(&self, to: &Address, task: AgentMessage) -> Result<(), AgentError> {
        Registry::tell(self, to, task)
    }
}

impl Agent {
    /// Enters the agent in `registry` by name when it starts (and by path, under a
    /// supervisor), and withdraws it when it stops ([`Agent::directory`] with this crate's
    /// [`Registry`]). A start fails if the name belongs to a team or to another agent that is
    /// running.
    pub fn registry(self, registry: &Registry) -> Self {
        self.directory(registry.clone())
    }
}
