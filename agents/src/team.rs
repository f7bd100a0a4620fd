//! Teams: a group address that routes each message to its members by a [`RoutePolicy`],
//! and is asked and told like one agent.
//!
//! A [`Team`] is a routing handle over [`AgentRef`]s, like OTP's process groups with a
//! dispatch rule, not an actor of its own: routing costs no extra hop. The policies:
//!
//! | policy | `ask` | `tell` |
//! |---|---|---|
//! | [`RoundRobin`](RoutePolicy::RoundRobin) | the next running member in turn | the same |
//! | [`LeastBusy`](RoutePolicy::LeastBusy) | the running member with the fewest unfinished tasks | the same |
//! | [`Broadcast`](RoutePolicy::Broadcast) | every member; the first success wins | every member |
//! | [`Custom`](RoutePolicy::Custom) | the member your function picks | the same |
//!
//! [`Team::ask_all`] asks every member and yields the replies as they arrive, for fan-out.
//!
//! ```
//! use warden_agents::team::{RoutePolicy, Team};
//!
//! let by_topic = RoutePolicy::custom(|task, members| {
//!     let text = task.text();
//!     members.iter().position(|m| text.contains(m.name()))
//! });
//! let team = Team::new("support", by_topic, []);
//! assert_eq!(team.address().to_string(), "team:support");
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{BoxStream, FuturesUnordered, StreamExt};

use crate::agent::{AgentError, AgentRef, Reply};
use crate::message::{Address, AgentMessage};

/// The user's routing function: given the task and the members, the index of the member
/// that gets it (`None`, or a panic: nobody, and the ask fails with [`AgentError::NoRoute`]).
pub type RouteFn = Arc<dyn Fn(&AgentMessage, &[AgentRef]) -> Option<usize> + Send + Sync + 'static>;

/// How a [`Team`] picks the members that get a message.
#[derive(Clone)]
#[non_exhaustive]
pub enum RoutePolicy {
    /// Each member in turn, skipping those not running.
    RoundRobin,
    /// The running member with the fewest unfinished tasks ([`AgentRef::load`]); ties go
    /// round robin.
    LeastBusy,
    /// Every member.
    Broadcast,
    /// The member a function picks.
    Custom(RouteFn),
}

impl RoutePolicy {
    /// A policy of your own.
    pub fn custom(f: impl Fn(&AgentMessage, &[AgentRef]) -> Option<usize> + Send + Sync + 'static) -> Self {
        Self::Custom(Arc::new(f))
    }
}

impl fmt::Debug for RoutePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RoundRobin => "RoundRobin",
            Self::LeastBusy => "LeastBusy",
            Self::Broadcast => "Broadcast",
            Self::Custom(_) => "Custom",
        })
    }
}

struct Inner {
    name: Arc<str>,
    members: Vec<AgentRef>,
    policy: RoutePolicy,
    next: AtomicUsize,
}

/// A named group of agents addressed like one agent. Cheap to clone.
#[derive(Clone)]
pub struct Team {
    inner: Arc<Inner>,
}

impl fmt::Debug for Team {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Team")
            .field("name", &self.inner.name)
            .field("policy", &self.inner.policy)
            .field(
                "members",
                &self.inner.members.iter().map(AgentRef::name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Team {
    /// A team called `name` of `members`, routing by `policy`.
    pub fn new(name: impl Into<Arc<str>>, policy: RoutePolicy, members: impl IntoIterator<Item = AgentRef>) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                members: members.into_iter().collect(),
                policy,
                next: AtomicUsize::new(0),
            }),
        }
    }

    pub(crate) fn same_team(&self, other: &Team) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The team's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The team's address.
    pub fn address(&self) -> Address {
        Address::Team(self.inner.name.to_string())
    }

    /// The members, in order.
    pub fn members(&self) -> &[AgentRef] {
        &self.inner.members
    }

    /// The policy.
    pub fn policy(&self) -> &RoutePolicy {
        &self.inner.policy
    }

    fn no_route(&self) -> AgentError {
        AgentError::NoRoute(self.inner.name.clone())
    }

    /// The members that get `task` now, by the policy (advancing the round-robin turn).
    ///
    /// # Errors
    ///
    /// [`AgentError::NoRoute`] when the team is empty or the function picks nobody (or
    /// panics).
    pub fn route(&self, task: &AgentMessage) -> Result<Vec<AgentRef>, AgentError> {
        let members = &self.inner.members;
        if members.is_empty() {
            return Err(self.no_route());
        }
        let n = members.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let in_turn = (0..n).map(|i| &members[(start + i) % n]);
        let chosen = match &self.inner.policy {
            RoutePolicy::Broadcast => return Ok(members.clone()),
            RoutePolicy::RoundRobin => in_turn.clone().find(|m| m.is_running()),
            RoutePolicy::LeastBusy => in_turn.clone().filter(|m| m.is_running()).min_by_key(|m| m.load()),
            RoutePolicy::Custom(f) => {
                // The user's function: a panic in it routes nowhere, it does not unwind
                // into the caller.
                let pick =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(task, members))).unwrap_or_else(|_| {
                        tracing::warn!(team = %self.inner.name, "routing function panicked; no route");
                        None
                    });
                return pick
                    .and_then(|i| members.get(i))
                    .map(|m| vec![m.clone()])
                    .ok_or_else(|| self.no_route());
            }
        };
        // Nobody running: pick the one in turn anyway, so the caller hears `NotDelivered`.
        let member = chosen
            .or_else(|| in_turn.into_iter().next())
            .ok_or_else(|| self.no_route())?;
        Ok(vec![member.clone()])
    }

    fn addressed(&self, mut task: AgentMessage) -> AgentMessage {
        if task.recipient == Address::Unspecified {
            task.recipient = self.address();
        }
        task
    }

    /// Asks the team: the member the policy picks, or, for [`RoutePolicy::Broadcast`], every
    /// member at once, answering the first success (or the last error if none succeeds).
    ///
    /// # Errors
    ///
    /// [`AgentError::NoRoute`] when nobody is picked; else as [`AgentRef::ask`].
    ///
    /// # Cancellation
    ///
    /// As [`AgentRef::ask`]. For a broadcast, the members that have not answered when the
    /// first success arrives are abandoned: they skip the task, or cut their turn short.
    pub async fn ask(&self, task: AgentMessage, deadline: Duration) -> Result<Reply, AgentError> {
        let task = self.addressed(task);
        let members = self.route(&task)?;
        if let [member] = members.as_slice() {
            return member.ask(task, deadline).await;
        }
        let mut replies: FuturesUnordered<_> = members.iter().map(|m| m.ask(task.clone(), deadline)).collect();
        let mut last = Err(self.no_route());
        while let Some(reply) = replies.next().await {
            if reply.is_ok() {
                return reply;
            }
            last = reply;
        }
        last
    }

    /// Tells the team: the member the policy picks, or every member for a broadcast.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoRoute`] when nobody is picked; [`AgentError::NotDelivered`] when no
    /// member picked is running.
    pub fn tell(&self, task: AgentMessage) -> Result<(), AgentError> {
        let task = self.addressed(task);
        let mut result = Err(self.no_route());
        for member in self.route(&task)? {
            let sent = member.tell(task.clone());
            if result.is_err() {
                result = sent;
            }
        }
        result
    }

    /// Asks every member at once and yields `(member, answer)` as each arrives, whatever
    /// the policy.
    ///
    /// # Cancellation
    ///
    /// Dropping the stream abandons the asks not yet answered, as dropping
    /// [`AgentRef::ask`] does: the members skip them, or cut their turns short.
    pub fn ask_all(
        &self,
        task: AgentMessage,
        deadline: Duration,
    ) -> BoxStream<'static, (AgentRef, Result<Reply, AgentError>)> {
        let task = self.addressed(task);
        self.inner
            .members
            .iter()
            .cloned()
            .map(|member| {
                let task = task.clone();
                async move {
                    let answer = member.ask(task, deadline).await;
                    (member, answer)
                }
            })
            .collect::<FuturesUnordered<_>>()
            .boxed()
    }
}
