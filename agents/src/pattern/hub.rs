//! [`Hub`]: a broadcast hub, a group conversation where every member sees what the others
//! said, and members join and leave while it runs.
//!
//! See [`Hub`] for the details and an example.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::broadcast;

use crate::agent::{AgentError, AgentRef, Outcome, Reply};
use crate::message::{Address, AgentMessage};

/// How many transcript entries a slow [`subscribe`](Hub::subscribe)r may lag behind before
/// it misses some.
const SUBSCRIBER_CAPACITY: usize = 256;

/// Who speaks when, in a [`Hub`] round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Turns {
    /// One member after the other, in join order; each hears the replies before it.
    #[default]
    Sequential,
    /// All members at once; each hears the others' replies in the next round.
    Concurrent,
}

/// One line of a hub's transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubEntry {
    /// Its position in the transcript, from 0.
    pub seq: usize,
    /// Who said it: a member's name, or whoever [`post`](Hub::post)ed it.
    pub speaker: Address,
    /// What was said.
    pub text: String,
}

impl fmt::Display for HubEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.speaker {
            Address::Name(name) => write!(f, "{name}: {}", self.text),
            Address::External(name) => write!(f, "{name}: {}", self.text),
            other => write!(f, "{other}: {}", self.text),
        }
    }
}

/// What went wrong with a [`Hub`] call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A round was asked of a hub without members.
    #[error("hub {0} has no members")]
    NoMembers(Arc<str>),
    /// A member of that name is already in the hub.
    #[error("{0} is already a member")]
    AlreadyMember(String),
    /// No member has that name.
    #[error("{0} is not a member")]
    NotMember(String),
}

/// One member's turn in a [`HubRound`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Spoke {
    /// The member.
    pub member: AgentRef,
    /// Its answer, or why there is none.
    pub result: Result<Reply, AgentError>,
}

/// What a [`Hub::round`] did: every member's turn, in the order they were asked.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubRound {
    /// The turns.
    pub turns: Vec<Spoke>,
    /// The transcript entries this round added (the completed, non-empty replies).
    pub added: Vec<HubEntry>,
}

impl HubRound {
    /// How many members answered (completed, with text).
    pub fn spoken(&self) -> usize {
        self.added.len()
    }

    /// The turns that failed.
    pub fn failures(&self) -> impl Iterator<Item = (&AgentRef, &AgentError)> {
        self.turns
            .iter()
            .filter_map(|t| t.result.as_ref().err().map(|e| (&t.member, e)))
    }
}

struct Member {
    agent: AgentRef,
    /// How much of the transcript it has heard.
    heard: usize,
}

struct State {
    members: Vec<Member>,
    transcript: Vec<HubEntry>,
    newcomers_see_history: bool,
    turns: Turns,
    deadline: Duration,
}

struct Inner {
    name: Arc<str>,
    state: Mutex<State>,
    watchers: broadcast::Sender<HubEntry>,
}

/// A broadcast hub: a named group conversation among agents. Cheap to clone; clones share
/// the members and the transcript.
///
/// Agents share nothing, so a member only knows what it is told. The hub keeps the
/// conversation's transcript and, each time a member takes a turn, sends it what the
/// *others* said since its last turn (its own words are already in its memory), then the
/// round's instruction. Its answer joins the transcript for everyone else.
///
/// | [`Turns`] | who sees a reply of this round |
/// |---|---|
/// | [`Sequential`](Turns::Sequential) (default) | the members after it in this round, and everyone in the next |
/// | [`Concurrent`](Turns::Concurrent) | everyone, from the next round (the members all speak at once) |
///
/// [`join`](Hub::join) and [`leave`](Hub::leave) take effect from the next turn: a member
/// that leaves mid-round is skipped if it has not spoken yet; one that joins mid-round
/// speaks from the next round, and first hears the whole transcript (or only what is said
/// after it joined, with [`newcomers_see_history(false)`](Hub::newcomers_see_history)).
/// [`post`](Hub::post) adds words from someone outside (a user, a moderator); and
/// [`subscribe`](Hub::subscribe) lets anyone watch the transcript grow.
///
/// A member whose ask fails (it died, timed out, its turn failed) is reported in the
/// [`HubRound`] and hears the same messages again at its next turn; the round goes on.
///
/// ```
/// use warden_agents::agent::Agent;
/// use warden_agents::message::Address;
/// use warden_agents::model::{Model, OpenAiChat};
/// use warden_agents::pattern::Hub;
/// use warden_agents::react::ReAct;
/// use warden_fake_provider::{FakeProvider, Answer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fake = FakeProvider::start().await;
/// fake.push_all([Answer::text("I'd use a tram."), Answer::text("Buses are cheaper than trams.")]);
/// let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
/// let (ana, _) = Agent::new("ana", ReAct::builder(model.clone()).build()).spawn().await?;
/// let (ben, _) = Agent::new("ben", ReAct::builder(model).build()).spawn().await?;
///
/// let hub = Hub::new("city-council");
/// hub.join(ana)?;
/// hub.join(ben)?;
/// hub.post(Address::external("mayor"), "How should we link the two districts?");
/// let round = hub.round("Give your view in one sentence.").await?;
/// assert_eq!(round.spoken(), 2);
/// // Ben was told what the mayor and Ana said before he spoke.
/// assert!(fake.requests()[1].messages()[0]["content"].as_str().unwrap().contains("ana: I'd use a tram."));
/// assert_eq!(hub.transcript().len(), 3);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Hub")
            .field("name", &self.inner.name)
            .field("turns", &state.turns)
            .field(
                "members",
                &state
                    .members
                    .iter()
                    .map(|m| m.agent.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("transcript", &state.transcript.len())
            .finish()
    }
}

impl Hub {
    /// An empty hub called `name`: sequential turns, 5 minutes per turn, newcomers hear the
    /// whole transcript.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        let (watchers, _) = broadcast::channel(SUBSCRIBER_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                state: Mutex::new(State {
                    members: Vec::new(),
                    transcript: Vec::new(),
                    newcomers_see_history: true,
                    turns: Turns::Sequential,
                    deadline: Duration::from_secs(300),
                }),
                watchers,
            }),
        }
    }

    /// The same hub, speaking in these [`Turns`] from the next round.
    pub fn turns(self, turns: Turns) -> Self {
        self.state().turns = turns;
        self
    }

    /// The same hub, giving each turn at most `deadline`.
    pub fn turn_deadline(self, deadline: Duration) -> Self {
        self.state().deadline = deadline;
        self
    }

    /// The same hub; whether members that join from now on first hear the whole transcript
    /// (`true`, the default) or only what is said after they join.
    pub fn newcomers_see_history(self, yes: bool) -> Self {
        self.state().newcomers_see_history = yes;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds a member, last in turn order.
    ///
    /// # Errors
    ///
    /// [`HubError::AlreadyMember`] if a member has the same name.
    pub fn join(&self, agent: AgentRef) -> Result<(), HubError> {
        let mut state = self.state();
        if state.members.iter().any(|m| m.agent.name() == agent.name()) {
            return Err(HubError::AlreadyMember(agent.name().to_owned()));
        }
        let heard = if state.newcomers_see_history {
            0
        } else {
            state.transcript.len()
        };
        state.members.push(Member { agent, heard });
        Ok(())
    }

    /// Removes the member called `name`; it is asked nothing more.
    ///
    /// # Errors
    ///
    /// [`HubError::NotMember`] if no member has that name.
    pub fn leave(&self, name: &str) -> Result<AgentRef, HubError> {
        let mut state = self.state();
        let at = state
            .members
            .iter()
            .position(|m| m.agent.name() == name)
            .ok_or_else(|| HubError::NotMember(name.to_owned()))?;
        Ok(state.members.remove(at).agent)
    }

    /// The members, in turn order.
    pub fn members(&self) -> Vec<AgentRef> {
        self.state().members.iter().map(|m| m.agent.clone()).collect()
    }

    /// The transcript so far.
    pub fn transcript(&self) -> Vec<HubEntry> {
        self.state().transcript.clone()
    }

    /// Every entry added from now on, as it is added. A receiver more than 256 entries
    /// behind skips the oldest (it gets `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<HubEntry> {
        self.inner.watchers.subscribe()
    }

    /// Adds words from `speaker` (a user, a moderator, anyone) to the transcript: every
    /// member hears them at its next turn. Returns the entry.
    pub fn post(&self, speaker: Address, text: impl Into<String>) -> HubEntry {
        let mut state = self.state();
        self.append(&mut state, speaker, text.into())
    }

    fn append(&self, state: &mut State, speaker: Address, text: String) -> HubEntry {
        let entry = HubEntry {
            seq: state.transcript.len(),
            speaker,
            text,
        };
        state.transcript.push(entry.clone());
        // Nobody watching is fine.
        let _ = self.inner.watchers.send(entry.clone());
        entry
    }

    /// The task for `agent` if it speaks now: what the others said since its last turn,
    /// then `instruction`; and how much of the transcript that covers. `None` if it left.
    fn task_for(&self, agent: &AgentRef, instruction: &str, upto: Option<usize>) -> Option<(AgentMessage, usize)> {
        let state = self.state();
        let member = state.members.iter().find(|m| m.agent.same_agent(agent))?;
        let upto = upto.unwrap_or(state.transcript.len()).min(state.transcript.len());
        let mine = agent.address();
        let mut text = String::new();
        for entry in state.transcript.get(member.heard..upto).unwrap_or_default() {
            if entry.speaker != mine {
                text.push_str(&entry.to_string());
                text.push_str("\n\n");
            }
        }
        text.push_str(instruction);
        let task = AgentMessage::user(text).from(Address::external(self.inner.name.to_string()));
        Some((task, upto))
    }

    /// Records a member's turn: it has heard up to `upto`, and its answer joins the transcript.
    fn record(&self, agent: &AgentRef, upto: usize, result: &Result<Reply, AgentError>) -> Option<HubEntry> {
        let reply = result.as_ref().ok()?;
        let mut state = self.state();
        if let Some(member) = state.members.iter_mut().find(|m| m.agent.same_agent(agent)) {
            member.heard = member.heard.max(upto);
        }
        let text = reply.text();
        if reply.outcome != Outcome::Completed || text.trim().is_empty() {
            return None;
        }
        Some(self.append(&mut state, agent.address(), text))
    }

    /// Gives every member a turn (see [`Hub`]), each told what the others
    /// said since its last turn, then `instruction`.
    ///
    /// # Errors
    ///
    /// [`HubError::NoMembers`] if the hub has no members when the round starts. A member's
    /// failure is not an error of the round: it is in [`HubRound::turns`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the turns in flight (skipped if still queued, cut short if
    /// running; their answers are not added); turns already taken stay in the transcript.
    pub async fn round(&self, instruction: impl Into<String>) -> Result<HubRound, HubError> {
        let instruction = instruction.into();
        let (members, turns, deadline) = {
            let state = self.state();
            let members: Vec<AgentRef> = state.members.iter().map(|m| m.agent.clone()).collect();
            (members, state.turns, state.deadline)
        };
        if members.is_empty() {
            return Err(HubError::NoMembers(self.inner.name.clone()));
        }
        let mut round = HubRound {
            turns: Vec::with_capacity(members.len()),
            added: Vec::new(),
        };
        match turns {
            Turns::Sequential => {
                for member in members {
                    let Some((task, upto)) = self.task_for(&member, &instruction, None) else {
                        continue;
                    };
                    let result = member.ask(task, deadline).await;
                    round.added.extend(self.record(&member, upto, &result));
                    round.turns.push(Spoke { member, result });
                }
            }
            Turns::Concurrent => {
                let upto = self.state().transcript.len();
                let asks = members.into_iter().filter_map(|member| {
                    let (task, upto) = self.task_for(&member, &instruction, Some(upto))?;
                    Some(async move {
                        let result = member.ask(task, deadline).await;
                        (member, upto, result)
                    })
                });
                for (member, upto, result) in join_all(asks).await {
                    round.added.extend(self.record(&member, upto, &result));
                    round.turns.push(Spoke { member, result });
                }
            }
        }
        Ok(round)
    }
}
