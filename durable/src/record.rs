//! What the journal holds: tasks, the steps of their turns, pending human questions.

use std::fmt;
use std::str::FromStr;

/// A task's id in its journal: unique in the store, given when the task is accepted, in the
/// order tasks were accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for TaskId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Self)
    }
}

/// Who may write for an agent: its name and the epoch it claimed
/// ([`Journal::claim`](crate::Journal::claim)). The store refuses a fenced write whose epoch is
/// older than the agent's current one ([`JournalError::Fenced`](crate::JournalError::Fenced)):
/// an incarnation that was replaced (a restart, another process) cannot write over its
/// successor, even with a write that was still in flight when it died.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The agent.
    pub agent: String,
    /// The epoch it claimed.
    pub epoch: u64,
}

impl Fence {
    /// Whether a write with this fence may go on while the agent's epoch is `current`.
    pub(crate) fn admits(&self, current: u64) -> Result<(), crate::JournalError> {
        if current > self.epoch {
            return Err(crate::JournalError::Fenced {
                agent: self.agent.clone(),
                epoch: self.epoch,
                current,
            });
        }
        Ok(())
    }
}

/// A step's stable id: the task and the step's index in it (its idempotency key, as text
/// `TASK-STEP`, is what tools receive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId {
    /// The task.
    pub task: TaskId,
    /// The step's index in the task, from 0, in the order the turn asked for its steps.
    pub index: u32,
}

impl StepId {
    /// The step `index` of `task`.
    pub fn new(task: TaskId, index: u32) -> Self {
        Self { task, index }
    }

    /// The key a tool receives to make a repeated call harmless (`Idempotency-Key`), unique in
    /// the store: `warden-TASK-STEP`.
    pub fn idempotency_key(&self) -> String {
        format!("warden-{}-{}", self.task, self.index)
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.task, self.index)
    }
}

impl FromStr for StepId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (task, index) = s
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is not TASK-STEP"))?;
        let task = task.parse().map_err(|_| format!("`{task}` is not a task id"))?;
        let index = index.parse().map_err(|_| format!("`{index}` is not a step index"))?;
        Ok(Self { task, index })
    }
}

/// What a step is. A replayed turn must ask for the same kind and name at the same index, or
/// the task fails with a divergence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// A model call.
    Model,
    /// A tool call.
    Tool,
    /// A human's decision.
    Human,
    /// A timer.
    Timer,
    /// A reading of the clock.
    Clock,
    /// A random value.
    Random,
    /// Anything else a behaviour runs as a step of its own.
    Custom,
}

impl StepKind {
    /// `model`, `tool`, `human`, `timer`, `clock`, `random` or `custom`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Tool => "tool",
            Self::Human => "human",
            Self::Timer => "timer",
            Self::Clock => "clock",
            Self::Random => "random",
            Self::Custom => "custom",
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::Model => 1,
            Self::Tool => 2,
            Self::Human => 3,
            Self::Timer => 4,
            Self::Clock => 5,
            Self::Random => 6,
            Self::Custom => 7,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Model,
            2 => Self::Tool,
            3 => Self::Human,
            4 => Self::Timer,
            5 => Self::Clock,
            6 => Self::Random,
            7 => Self::Custom,
            _ => return None,
        })
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A step as the journal has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// What it is.
    pub kind: StepKind,
    /// Its name: the tool's, the model's, a custom step's.
    pub name: String,
    /// Started, or done with its result.
    pub state: StepState,
}

impl StepRecord {
    /// Whether the step's kind and name are `kind` and `name`.
    pub fn is(&self, kind: StepKind, name: &str) -> bool {
        self.kind == kind && self.name == name
    }
}

/// Where a step got to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Written before a step that must not run twice: found on replay without a result, it
    /// means the step may or may not have acted (its outcome is unknown).
    Started,
    /// The step's result, as the caller encoded it.
    Done(Vec<u8>),
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskOutcome {
    /// It ended with an answer (`true`) or an error (`false`).
    pub ok: bool,
    /// The answer or the error, as the caller encoded it.
    pub result: Vec<u8>,
}

impl TaskOutcome {
    /// An answer.
    pub fn ok(result: Vec<u8>) -> Self {
        Self { ok: true, result }
    }

    /// An error.
    pub fn failed(result: Vec<u8>) -> Self {
        Self { ok: false, result }
    }
}

/// A task as the journal has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEntry {
    /// Its id.
    pub id: TaskId,
    /// The agent that accepted it.
    pub agent: String,
    /// The task, as the caller encoded it.
    pub task: Vec<u8>,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub accepted_ms: u64,
    /// When it finished (milliseconds since the Unix epoch) and how, if it did.
    pub finished: Option<(u64, TaskOutcome)>,
}

impl TaskEntry {
    /// Whether the task is finished.
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }
}

/// A question to a human that a turn waits on; it outlives the process that asked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingQuestion {
    /// The step that asked: its id is the question's id.
    pub step: StepId,
    /// The agent that asked.
    pub agent: String,
    /// The question.
    pub question: String,
    /// When asked, in milliseconds since the Unix epoch.
    pub asked_ms: u64,
    /// When the turn stops waiting, in milliseconds since the Unix epoch: it holds across
    /// restarts.
    pub deadline_ms: u64,
    /// The answer, once given (the asking turn then records it as its step's result).
    pub answer: Option<String>,
}

/// What [`Journal::prune`](crate::Journal::prune) removes: finished tasks (with their steps)
/// older than an age, or beyond a count of the newest. Unfinished tasks are never pruned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Remove tasks finished more than this many milliseconds ago.
    pub older_than_ms: Option<u64>,
    /// Keep at most this many finished tasks (the most recently finished).
    pub keep_last: Option<usize>,
}

impl Retention {
    /// Removes finished tasks older than `age`.
    pub fn older_than(age: std::time::Duration) -> Self {
        Self {
            older_than_ms: Some(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            keep_last: None,
        }
    }

    /// Keeps only the `n` most recently finished tasks.
    pub fn keep_last(n: usize) -> Self {
        Self {
            older_than_ms: None,
            keep_last: Some(n),
        }
    }
}

/// Milliseconds since the Unix epoch now (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
