//! Durable turns: the steps of a turn of a durable agent, written to its journal
//! ([`warden_durable::Journal`]) and given back on replay.
//!
//! A turn of a durable agent asks the runtime for each step that has an effect or an answer
//! from outside ([`TurnContext::step`]): a model call, a tool call, a human's decision, a
//! clock reading ([`TurnContext::now`]) or a random number ([`TurnContext::random`]). Each
//! step has a stable id, the task and its index. The first time, the step runs and its result
//! is written before the turn goes on; when the turn is replayed (after a crash, in this
//! process or another), the recorded result comes back instead and nothing runs again.
//!
//! ```
//! use std::time::Duration;
//! use warden_agents::agent::Agent;
//! use warden_agents::message::AgentMessage;
//! use warden_agents::model::{Model, OpenAiChat};
//! use warden_agents::react::ReAct;
//! use warden_durable::Journal;
//! use warden_fake_provider::{Answer, FakeProvider};
//! use warden_supervisor::Supervisor;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let fake = FakeProvider::start().await;
//! fake.push(Answer::text("Paris."));
//! let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
//!
//! let journal = Journal::open(dir.path().join("agents.redb"))?;
//! let agent = Agent::new("geographer", ReAct::builder(model).build()).journal(journal);
//! let geographer = agent.handle();
//! let root = Supervisor::builder("root").child(agent.child_spec()).spawn().await?;
//!
//! // On disk when `submit` returns: a kill -9 from here on loses nothing.
//! let task = geographer.submit(AgentMessage::user("Capital of France?")).await?;
//! let reply = geographer.result(task, Duration::from_secs(10)).await?;
//! assert_eq!(reply.text(), "Paris.");
//! root.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Code between steps must be deterministic
//!
//! A replayed turn must ask for the same steps in the same order. Read the time, draw random
//! numbers, or branch on anything from outside only through steps:
//!
//! ```
//! use warden_agents::agent::TurnContext;
//! use warden_agents::TurnError;
//! use warden_durable::StepKind;
//!
//! async fn pick(cx: &mut TurnContext) -> Result<String, TurnError> {
//!     // Wrong: `fastrand::bool()` here could differ on replay and take the other branch.
//!     let heads = cx.random().await? % 2 == 0;
//!     let name = if heads { "heads" } else { "tails" };
//!     cx.step(StepKind::Custom, name, true, |_| async move { Ok(format!("picked {name}")) }).await
//! }
//! ```
//!
//! A replay that asks for another step than the one recorded at that index (another tool,
//! another order) fails its task with [`TurnError::JournalDivergence`], naming both.
//!
//! # The step in flight at a crash
//!
//! A step that may run twice (`idempotent`) is simply run again on replay, with the same
//! idempotency key ([`StepId::idempotency_key`]; tools get it through
//! [`ToolCall::idempotency_key`](warden_tools::ToolCall::idempotency_key)). A step that must
//! not is written `Started` before it runs; a replay that finds it started without a result
//! cannot know whether it acted, and fails its task with [`TurnError::OutcomeUnknown`]
//! (escalated at once), never running it a second time.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use warden_durable::{Journal, JournalError, StepId, StepKind, StepRecord, StepState, TaskId};

use super::error::TurnError;
use super::turn::TurnContext;
use crate::codec;

/// A durable turn's place in its task's journal.
pub(crate) struct DurableTurn {
    pub(crate) journal: Journal,
    pub(crate) task: TaskId,
    pub(crate) recorded: Vec<StepRecord>,
    pub(crate) next: u32,
}

/// Where a step stands, from [`TurnContext::begin_step`].
#[derive(Debug)]
#[non_exhaustive]
pub enum StepSlot {
    /// The step ran before: its id and its recorded result (read it with
    /// [`StepSlot::decode`]).
    Recorded {
        /// The step.
        step: StepId,
        /// Its result, as it was written.
        result: Vec<u8>,
    },
    /// The step is to run: write its result with the writer.
    Fresh(StepWriter),
}

impl StepSlot {
    /// A recorded result, decoded: a result that does not decode is
    /// [`TurnError::Journal`] naming the step. `None` for a fresh step.
    pub fn decode<T: DeserializeOwned>(&self) -> Option<Result<T, TurnError>> {
        match self {
            Self::Recorded { step, result } => Some(decode(*step, result)),
            Self::Fresh(_) => None,
        }
    }
}

/// Writes one step's records. Cheap to move into the future that runs the step.
#[derive(Debug, Clone)]
pub struct StepWriter {
    journal: Journal,
    id: StepId,
    kind: StepKind,
    name: String,
}

impl StepWriter {
    /// The step's id.
    pub fn id(&self) -> StepId {
        self.id
    }

    /// Writes the step as started, before running a step that must not run twice.
    ///
    /// # Errors
    ///
    /// [`TurnError::Journal`].
    pub async fn started(&self) -> Result<(), TurnError> {
        let record = StepRecord {
            kind: self.kind,
            name: self.name.clone(),
            state: StepState::Started,
        };
        self.journal
            .record_step(self.id, record)
            .await
            .map_err(TurnError::journal)
    }

    /// Writes the step's result.
    ///
    /// # Errors
    ///
    /// [`TurnError::Journal`].
    pub async fn done(&self, result: Vec<u8>) -> Result<(), TurnError> {
        self.journal
            .record_result(self.id, self.kind, &self.name, result)
            .await
            .map_err(TurnError::journal)
    }

    /// Writes the step's result, encoded.
    ///
    /// # Errors
    ///
    /// [`TurnError::Journal`], or [`TurnError::Other`] if it cannot be encoded.
    pub async fn done_with<T: Serialize>(&self, result: &T) -> Result<(), TurnError> {
        self.done(codec::to_journal(result).map_err(TurnError::other)?).await
    }
}

/// Decodes a recorded step's result.
pub(crate) fn decode<T: DeserializeOwned>(step: StepId, bytes: &[u8]) -> Result<T, TurnError> {
    codec::from_journal(bytes).map_err(|e| {
        TurnError::journal(JournalError::Corrupt {
            what: format!("task {} step {}", step.task, step.index),
            detail: e.to_string(),
        })
    })
}

impl TurnContext {
    /// The task's id in the journal, when the agent is durable.
    pub fn task_id(&self) -> Option<TaskId> {
        self.durable.as_ref().map(|d| d.task)
    }

    /// Whether this turn's steps are journaled.
    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Takes the next step's place: its recorded result on replay, else a writer for it.
    /// `None` when the agent is not durable (run the step as usual). Most behaviours use
    /// [`step`](Self::step), which does the rest; this is for steps run concurrently (take
    /// every place first, in order, then run them).
    ///
    /// # Errors
    ///
    /// [`TurnError::JournalDivergence`] when the step recorded at this index is another;
    /// [`TurnError::OutcomeUnknown`] when a step that must not run twice (`idempotent` false)
    /// was started before a crash and has no result.
    pub fn begin_step(&mut self, kind: StepKind, name: &str, idempotent: bool) -> Result<Option<StepSlot>, TurnError> {
        let Some(durable) = self.durable.as_mut() else {
            return Ok(None);
        };
        let id = StepId::new(durable.task, durable.next);
        durable.next = durable.next.saturating_add(1);
        let writer = StepWriter {
            journal: durable.journal.clone(),
            id,
            kind,
            name: name.to_owned(),
        };
        let Some(recorded) = durable.recorded.get(id.index as usize) else {
            return Ok(Some(StepSlot::Fresh(writer)));
        };
        if !recorded.is(kind, name) {
            return Err(TurnError::JournalDivergence {
                step: id,
                recorded: format!("{} {}", recorded.kind, recorded.name),
                requested: format!("{kind} {name}"),
            });
        }
        match &recorded.state {
            StepState::Done(result) => Ok(Some(StepSlot::Recorded {
                step: id,
                result: result.clone(),
            })),
            StepState::Started if idempotent => Ok(Some(StepSlot::Fresh(writer))),
            StepState::Started => Err(TurnError::OutcomeUnknown {
                step: id,
                name: name.to_owned(),
            }),
        }
    }

    /// Runs one step: on replay, its recorded result; else `run` (given the step's id, to pass
    /// on as an idempotency key) and its result written before this returns. A step that is
    /// not `idempotent` is written as started first (see the [module docs](super::durable)).
    /// On an agent that is not durable, just runs `run(None)`. A failed step is not recorded:
    /// it fails the turn, and a replay runs it again.
    ///
    /// # Errors
    ///
    /// `run`'s error; [`TurnError::JournalDivergence`], [`TurnError::OutcomeUnknown`],
    /// [`TurnError::Journal`].
    pub async fn step<T, F, Fut>(
        &mut self,
        kind: StepKind,
        name: &str,
        idempotent: bool,
        run: F,
    ) -> Result<T, TurnError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Option<StepId>) -> Fut,
        Fut: Future<Output = Result<T, TurnError>>,
    {
        match self.begin_step(kind, name, idempotent)? {
            None => run(None).await,
            Some(StepSlot::Recorded { step, result }) => decode(step, &result),
            Some(StepSlot::Fresh(writer)) => {
                if !idempotent {
                    writer.started().await?;
                }
                let value = run(Some(writer.id())).await?;
                writer.done_with(&value).await?;
                Ok(value)
            }
        }
    }

    /// The time now, as a step: a replay gets the time of the first run.
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step).
    pub async fn now(&mut self) -> Result<SystemTime, TurnError> {
        let millis: u64 = self
            .step(StepKind::Clock, "now", true, |_| async { Ok(unix_ms()) })
            .await?;
        Ok(UNIX_EPOCH + Duration::from_millis(millis))
    }

    /// A random number, as a step: a replay gets the number of the first run.
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step).
    pub async fn random(&mut self) -> Result<u64, TurnError> {
        self.step(StepKind::Random, "u64", true, |_| async { Ok(fastrand::u64(..)) })
            .await
    }

    /// Sleeps `duration`, as a step: the deadline is recorded when first reached, so a replay
    /// (after a crash, in a new process) waits only for what is left of it, or not at all.
    ///
    /// # Errors
    ///
    /// As [`step`](Self::step).
    pub async fn sleep(&mut self, duration: Duration) -> Result<(), TurnError> {
        let deadline_ms: u64 = self
            .step(StepKind::Timer, "sleep", true, |_| async move {
                let add = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
                Ok(unix_ms().saturating_add(add))
            })
            .await?;
        let left = deadline_ms.saturating_sub(unix_ms());
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(left)).await;
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, now.
fn unix_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Waits, at most `deadline`, for the outcome of a durable agent's task, from any process
/// that opens its journal (no [`AgentRef`](super::AgentRef) needed): the same
/// [`Reply`](super::Reply) as [`AgentRef::result`](super::AgentRef::result) gives.
///
/// # Errors
///
/// [`AgentError::Timeout`](super::AgentError::Timeout); [`AgentError::TaskFailed`](super::AgentError::TaskFailed)
/// when the task ended with an error; [`AgentError::Journal`](super::AgentError::Journal) (no
/// such task, a damaged record).
pub async fn task_result(journal: &Journal, id: TaskId, deadline: Duration) -> Result<super::Reply, super::AgentError> {
    let journal_error = |e| super::AgentError::Journal(Arc::new(e));
    let outcome = match journal.result(id, deadline).await {
        Ok(outcome) => outcome,
        Err(JournalError::Timeout(_)) => return Err(super::AgentError::Timeout(deadline)),
        Err(e) => return Err(journal_error(e)),
    };
    let entry = journal.task(id).await.map_err(journal_error)?;
    decode_outcome(id, &entry.task, &outcome)
}

impl TurnError {
    pub(crate) fn journal(error: JournalError) -> Self {
        Self::Journal(Arc::new(error))
    }
}

/// A finished durable task's outcome, as the journal keeps it.
#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum JournaledOutcome {
    Reply {
        content: Vec<crate::model::ContentBlock>,
        outcome: String,
        iterations: u32,
        usage: crate::model::Usage,
        #[serde(default)]
        structured: Option<serde_json::Value>,
    },
    Failed {
        kind: String,
        message: String,
    },
}

/// Encodes a turn's result for the journal.
pub(crate) fn encode_outcome(
    result: &Result<super::TurnOutput, TurnError>,
) -> Result<warden_durable::TaskOutcome, TurnError> {
    let (ok, outcome) = match result {
        Ok(output) => (
            true,
            JournaledOutcome::Reply {
                content: output.content.clone(),
                outcome: output.outcome.as_str().to_owned(),
                iterations: output.iterations,
                usage: output.usage,
                structured: output.structured.clone(),
            },
        ),
        Err(error) => (
            false,
            JournaledOutcome::Failed {
                kind: error.kind().to_owned(),
                message: error.to_string(),
            },
        ),
    };
    let bytes = codec::to_journal(&outcome).map_err(TurnError::other)?;
    Ok(warden_durable::TaskOutcome { ok, result: bytes })
}

/// Reads a finished durable task's outcome back as a [`Reply`](super::Reply).
pub(crate) fn decode_outcome(
    id: TaskId,
    task: &[u8],
    outcome: &warden_durable::TaskOutcome,
) -> Result<super::Reply, super::AgentError> {
    let damaged = |detail: String| {
        super::AgentError::Journal(Arc::new(JournalError::Corrupt {
            what: format!("task {id}"),
            detail,
        }))
    };
    let task = codec::from_bytes(task).map_err(|e| damaged(e.to_string()))?;
    match codec::from_journal::<JournaledOutcome>(&outcome.result).map_err(|e| damaged(e.to_string()))? {
        JournaledOutcome::Failed { kind, message } => Err(super::AgentError::TaskFailed {
            task: id,
            kind,
            message,
        }),
        JournaledOutcome::Reply {
            content,
            outcome,
            iterations,
            usage,
            structured,
        } => {
            let outcome =
                super::Outcome::from_name(&outcome).ok_or_else(|| damaged(format!("unknown outcome {outcome:?}")))?;
            let me = task.recipient.clone();
            Ok(super::Reply {
                message: task.reply_with(me, content),
                outcome,
                iterations,
                usage,
                structured,
            })
        }
    }
}
