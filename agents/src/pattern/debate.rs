//! [`Debate`]: N debaters argue a topic over rounds, and a moderator agent concludes.
//!
//! See [`Debate`] for the details and an example.

use std::time::Duration;

use crate::agent::{AgentError, AgentRef, Outcome, Reply};
use crate::message::{Address, AgentMessage};
use crate::pattern::hub::{Hub, HubEntry, HubError, HubRound, Turns};

/// What went wrong in a [`Debate`].
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebateError {
    /// A debate needs at least one debater.
    #[error("a debate needs at least one debater")]
    NoDebaters,
    /// A debate needs at least one round.
    #[error("a debate needs at least one round")]
    NoRounds,
    /// Two debaters have the same name.
    #[error("two debaters are called {0}")]
    DuplicateDebater(String),
    /// Every debater's turn failed, in every round: there is nothing to conclude on.
    #[error("no debater argued")]
    NoArguments {
        /// The rounds, with every failure.
        rounds: Vec<HubRound>,
    },
    /// The moderator's ask failed.
    #[error("moderator failed: {0}")]
    Moderator(AgentError),
    /// The moderator did not complete its conclusion.
    #[error("moderator ended {} without a conclusion", .0.as_str())]
    NoConclusion(Outcome),
}

/// A finished debate: the transcript, each round, and the moderator's conclusion.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DebateRun {
    /// Everything said: the topic, then the arguments, round after round.
    pub transcript: Vec<HubEntry>,
    /// Each round's turns, in order.
    pub rounds: Vec<HubRound>,
    /// The moderator's conclusion.
    pub conclusion: Reply,
}

impl DebateRun {
    /// How many arguments were made (turns that completed, over all rounds).
    pub fn arguments(&self) -> usize {
        self.rounds.iter().map(HubRound::spoken).sum()
    }
}

/// A debate among agents, concluded by a moderator agent.
///
/// A debate is a [`Hub`] with [concurrent turns](Turns::Concurrent): the moderator posts the
/// topic, and in each round every debater speaks at once, having heard what the others said
/// in the rounds before. After the last round the moderator is asked, with the whole
/// transcript, to weigh the arguments and conclude. A debater whose turn fails misses that
/// round (it is in [`DebateRun::rounds`]) and hears everything at its next turn; the debate
/// goes on as long as someone argued.
///
/// ```
/// use std::time::Duration;
/// use warden_agents::agent::Agent;
/// use warden_agents::model::{Model, OpenAiChat};
/// use warden_agents::pattern::Debate;
/// use warden_agents::react::ReAct;
/// use warden_fake_provider::{FakeProvider, Answer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fakes = [FakeProvider::start().await, FakeProvider::start().await, FakeProvider::start().await];
/// fakes[0].push_all([Answer::text("Monoliths are simpler."), Answer::text("Still simpler.")]);
/// fakes[1].push_all([Answer::text("Services scale apart."), Answer::text("Scale matters more.")]);
/// fakes[2].push(Answer::text("Start with a monolith; split when scale demands it."));
/// let agent = |name: &str, fake: &FakeProvider| {
///     Agent::new(name, ReAct::builder(Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"))).build())
/// };
/// let (pro, _) = agent("pro", &fakes[0]).spawn().await?;
/// let (con, _) = agent("con", &fakes[1]).spawn().await?;
/// let (moderator, _) = agent("moderator", &fakes[2]).spawn().await?;
///
/// let run = Debate::new([pro, con], moderator)
///     .rounds(2)
///     .deadline(Duration::from_secs(10))
///     .run("Monolith or microservices?")
///     .await?;
/// assert_eq!(run.arguments(), 4);
/// assert_eq!(run.conclusion.text(), "Start with a monolith; split when scale demands it.");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Debate {
    debaters: Vec<AgentRef>,
    moderator: AgentRef,
    rounds: u32,
    deadline: Duration,
}

impl Debate {
    /// A debate of `debaters` concluded by `moderator`: 2 rounds, 5 minutes per ask.
    pub fn new(debaters: impl IntoIterator<Item = AgentRef>, moderator: AgentRef) -> Self {
        Self {
            debaters: debaters.into_iter().collect(),
            moderator,
            rounds: 2,
            deadline: Duration::from_secs(300),
        }
    }

    /// The number of rounds.
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds;
        self
    }

    /// The deadline of each ask (each debater's turn, and the moderator's conclusion).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Debates `topic`, then asks the moderator to conclude.
    ///
    /// # Errors
    ///
    /// [`DebateError::NoDebaters`], [`NoRounds`](DebateError::NoRounds) or
    /// [`DuplicateDebater`](DebateError::DuplicateDebater) before anything is asked;
    /// [`NoArguments`](DebateError::NoArguments) if no debater's turn ever completed;
    /// [`Moderator`](DebateError::Moderator) or [`NoConclusion`](DebateError::NoConclusion)
    /// if the moderator gave no conclusion.
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the asks in flight: skipped if still queued, cut short if running.
    pub async fn run(&self, topic: impl Into<String>) -> Result<DebateRun, DebateError> {
        if self.debaters.is_empty() {
            return Err(DebateError::NoDebaters);
        }
        if self.rounds == 0 {
            return Err(DebateError::NoRounds);
        }
        let topic = topic.into();
        let hub = Hub::new("debate").turns(Turns::Concurrent).turn_deadline(self.deadline);
        for debater in &self.debaters {
            hub.join(debater.clone()).map_err(|e| match e {
                HubError::AlreadyMember(name) => DebateError::DuplicateDebater(name),
                _ => DebateError::NoDebaters,
            })?;
        }
        let moderator = Address::external("moderator");
        hub.post(moderator, format!("The topic: {topic}"));
        let mut rounds = Vec::new();
        for round in 1..=self.rounds {
            let instruction = if round == 1 {
                format!(
                    "Round 1 of {}: state your position on the topic and your strongest arguments, briefly.",
                    self.rounds
                )
            } else {
                format!(
                    "Round {round} of {}: answer the other debaters' arguments above, and refine your position, briefly.",
                    self.rounds
                )
            };
            let played = hub.round(instruction).await.map_err(|_| DebateError::NoDebaters)?;
            rounds.push(played);
        }
        if rounds.iter().all(|r| r.spoken() == 0) {
            return Err(DebateError::NoArguments { rounds });
        }
        let transcript = hub.transcript();
        let mut text = format!("The topic: {topic}\n\nThe debate, {} rounds:\n\n", self.rounds);
        for entry in transcript.iter().skip(1) {
            text.push_str(&entry.to_string());
            text.push_str("\n\n");
        }
        text.push_str("You are the moderator. Weigh the arguments, say which are strongest and why, and conclude.");
        let task = AgentMessage::user(text).from(Address::external("debate"));
        let conclusion = self
            .moderator
            .ask(task, self.deadline)
            .await
            .map_err(DebateError::Moderator)?;
        if conclusion.outcome != Outcome::Completed {
            return Err(DebateError::NoConclusion(conclusion.outcome));
        }
        Ok(DebateRun {
            transcript,
            rounds,
            conclusion,
        })
    }
}
