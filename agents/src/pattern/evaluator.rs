//! [`EvaluatorOptimizer`]: a generator writes, an evaluator judges, and they alternate until
//! the evaluator accepts or the rounds run out.
//!
//! See [`EvaluatorOptimizer`] for the details and an example.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::{AgentError, AgentRef, Outcome, Reply};
use crate::message::{Address, AgentMessage};
use crate::model::json_text;

/// An evaluator's verdict on one draft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evaluation {
    /// Whether the draft is good enough.
    pub accepted: bool,
    /// What to improve (or why it is good).
    #[serde(default)]
    pub feedback: String,
}

/// Why an [`EvaluatorOptimizer`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stopped {
    /// The evaluator accepted the last draft.
    Accepted,
    /// The last allowed draft was rejected too.
    MaxRounds,
}

/// One round of an [`EvaluatorOptimizer`]: a draft and its evaluation.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Attempt {
    /// The generator's reply.
    pub draft: Reply,
    /// The evaluator's verdict.
    pub evaluation: Evaluation,
}

/// A finished loop: every round, and why it stopped.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Optimized {
    /// The rounds, in order (never empty).
    pub attempts: Vec<Attempt>,
    /// Why it stopped.
    pub stopped: Stopped,
}

impl Optimized {
    /// Whether the last draft was accepted.
    pub fn accepted(&self) -> bool {
        self.stopped == Stopped::Accepted
    }

    /// The last draft's text: the accepted one, or the last try.
    pub fn output(&self) -> String {
        self.attempts.last().map(|r| r.draft.text()).unwrap_or_default()
    }
}

/// What went wrong in an [`EvaluatorOptimizer`] run.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvaluatorError {
    /// `max_rounds` is 0.
    #[error("an evaluator-optimizer needs at least one round")]
    NoRounds,
    /// The generator's ask failed.
    #[error("generator failed in round {round}: {error}")]
    Generator {
        /// The round, from 1.
        round: u32,
        /// Why.
        error: AgentError,
    },
    /// The generator did not finish its draft (interrupted, out of iterations) or wrote nothing.
    #[error("generator gave no draft in round {round} ({})", .outcome.as_str())]
    NoDraft {
        /// The round, from 1.
        round: u32,
        /// How its turn ended.
        outcome: Outcome,
    },
    /// The evaluator's ask failed.
    #[error("evaluator failed in round {round}: {error}")]
    Evaluator {
        /// The round, from 1.
        round: u32,
        /// Why.
        error: AgentError,
    },
    /// The evaluator answered something that is not an [`Evaluation`].
    #[error("evaluator's answer in round {round} is not an evaluation: {problem}")]
    InvalidEvaluation {
        /// The round, from 1.
        round: u32,
        /// What was wrong with it.
        problem: String,
    },
}

/// A generator and an evaluator alternating until acceptance, at most `max_rounds` drafts.
///
/// Round 1 asks the generator the task. Each draft goes to the evaluator with the task; the
/// evaluator answers an [`Evaluation`] (`accepted`, `feedback`), best as structured output
/// (build it with [`ReActBuilder::structured_output::<Evaluation>()`](crate::react::ReActBuilder::structured_output);
/// a JSON text answer is read too). If it accepts, the draft is the result; otherwise the
/// generator gets its draft and the feedback and writes the next one. After
/// [`max_rounds`](EvaluatorOptimizer::max_rounds) rejected drafts the loop stops with the last
/// one, not accepted: a bound, so two models that never agree cannot spend forever.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use warden_agents::agent::Agent;
/// use warden_agents::model::{Model, OpenAiChat};
/// use warden_agents::pattern::{Evaluation, EvaluatorOptimizer, Stopped};
/// use warden_agents::react::ReAct;
/// use warden_fake_provider::{FakeProvider, Answer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (writer_llm, critic_llm) = (FakeProvider::start().await, FakeProvider::start().await);
/// writer_llm.push_all([Answer::text("Supervisors restart."), Answer::text("Supervisors restart failed children.")]);
/// critic_llm.push_all([
///     Answer::json(json!({"accepted": false, "feedback": "Say what they restart."})),
///     Answer::json(json!({"accepted": true, "feedback": "Clear."})),
/// ]);
/// let model = |fake: &FakeProvider| Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
/// let (writer, _) = Agent::new("writer", ReAct::builder(model(&writer_llm)).build()).spawn().await?;
/// let critic = ReAct::builder(model(&critic_llm)).structured_output::<Evaluation>().build();
/// let (critic, _) = Agent::new("critic", critic).spawn().await?;
///
/// let run = EvaluatorOptimizer::new(writer, critic)
///     .max_rounds(3)
///     .deadline(Duration::from_secs(10))
///     .run("One line on OTP supervisors.")
///     .await?;
/// assert_eq!(run.stopped, Stopped::Accepted);
/// assert_eq!(run.attempts.len(), 2);
/// assert_eq!(run.output(), "Supervisors restart failed children.");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct EvaluatorOptimizer {
    generator: AgentRef,
    evaluator: AgentRef,
    max_rounds: u32,
    deadline: Duration,
    criteria: Option<String>,
}

impl EvaluatorOptimizer {
    /// A loop of `generator` and `evaluator`: at most 3 drafts, 5 minutes per ask.
    pub fn new(generator: AgentRef, evaluator: AgentRef) -> Self {
        Self {
            generator,
            evaluator,
            max_rounds: 3,
            deadline: Duration::from_secs(300),
            criteria: None,
        }
    }

    /// At most this many drafts.
    pub fn max_rounds(mut self, rounds: u32) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// The deadline of each ask.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// What the evaluator should judge by, added to each of its tasks.
    pub fn criteria(mut self, criteria: impl Into<String>) -> Self {
        self.criteria = Some(criteria.into());
        self
    }

    fn evaluation_task(&self, task: &str, round: u32, draft: &str) -> AgentMessage {
        let mut text = format!("Task:\n{task}\n\nCandidate answer (round {round}):\n{draft}\n\n");
        if let Some(criteria) = &self.criteria {
            text.push_str(&format!("Judge it by: {criteria}\n\n"));
        }
        text.push_str(
            "Evaluate the candidate. Answer with JSON: {\"accepted\": true or false, \"feedback\": \"what to improve\"}.",
        );
        AgentMessage::user(text).from(self.generator.address())
    }

    fn parse(reply: &Reply, round: u32) -> Result<Evaluation, EvaluatorError> {
        if reply.structured.is_some() {
            return reply
                .parse::<Evaluation>()
                .map_err(|e| EvaluatorError::InvalidEvaluation {
                    round,
                    problem: e.to_string(),
                });
        }
        serde_json::from_str::<Evaluation>(json_text(&reply.text())).map_err(|e| EvaluatorError::InvalidEvaluation {
            round,
            problem: e.to_string(),
        })
    }

    /// Runs the loop on `task`.
    ///
    /// # Errors
    ///
    /// [`EvaluatorError::NoRounds`] if `max_rounds` is 0; else the first ask that fails
    /// ([`Generator`](EvaluatorError::Generator), [`Evaluator`](EvaluatorError::Evaluator)),
    /// a draft not finished ([`NoDraft`](EvaluatorError::NoDraft)), or an answer of the
    /// evaluator that is not an [`Evaluation`]. Running out of rounds is not an error: see
    /// [`Optimized::stopped`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the ask in flight (skipped if still queued, cut short if
    /// running) and starts
    /// no further round.
    pub async fn run(&self, task: impl Into<String>) -> Result<Optimized, EvaluatorError> {
        if self.max_rounds == 0 {
            return Err(EvaluatorError::NoRounds);
        }
        let task = task.into();
        let mut rounds: Vec<Attempt> = Vec::new();
        for round in 1..=self.max_rounds {
            let ask = match rounds.last() {
                None => AgentMessage::user(task.clone()).from(Address::external("evaluator-optimizer")),
                Some(last) => AgentMessage::user(format!(
                    "Your draft:\n{}\n\nwas not accepted. Feedback:\n{}\n\nWrite an improved answer to the task:\n{task}",
                    last.draft.text(),
                    last.evaluation.feedback
                ))
                .from(self.evaluator.address()),
            };
            let draft = self
                .generator
                .ask(ask, self.deadline)
                .await
                .map_err(|error| EvaluatorError::Generator { round, error })?;
            let text = draft.text();
            if draft.outcome != Outcome::Completed || text.trim().is_empty() {
                return Err(EvaluatorError::NoDraft {
                    round,
                    outcome: draft.outcome,
                });
            }
            let verdict = self
                .evaluator
                .ask(self.evaluation_task(&task, round, &text), self.deadline)
                .await
                .map_err(|error| EvaluatorError::Evaluator { round, error })?;
            let evaluation = Self::parse(&verdict, round)?;
            let accepted = evaluation.accepted;
            rounds.push(Attempt { draft, evaluation });
            if accepted {
                return Ok(Optimized {
                    attempts: rounds,
                    stopped: Stopped::Accepted,
                });
            }
        }
        Ok(Optimized {
            attempts: rounds,
            stopped: Stopped::MaxRounds,
        })
    }
}
