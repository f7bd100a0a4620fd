//! The journal's one error type.

use crate::record::TaskId;

/// Why a journal operation failed. Nothing in the journal panics on a bad file: a damaged
/// store is one of these, naming what it could not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The store could not be opened (missing directory, no permission, another process holds
    /// the embedded store's file, a file that is not a store).
    #[error("cannot open the journal at {path}: {detail}")]
    Open {
        /// The store's path or address.
        path: String,
        /// What the store said.
        detail: String,
    },
    /// The store failed an operation (an I/O error, a full disk). What was asked was not done.
    #[error("journal store error: {0}")]
    Store(String),
    /// A record failed its checksum or could not be read: the store is damaged there.
    #[error("journal record damaged ({what}): {detail}")]
    Corrupt {
        /// Which record: `task 12`, `task 12 step 3`, `snapshot of agent "a"`.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// No task of this id (never accepted, or pruned).
    #[error("no task {0} in the journal")]
    NoSuchTask(TaskId),
    /// The task is already finished: a finished task is never finished again.
    #[error("task {0} is already finished")]
    AlreadyFinished(TaskId),
    /// The step already has a result: a step's result is written once.
    #[error("task {task} step {step} already has a result")]
    StepRecorded {
        /// The task.
        task: TaskId,
        /// The step's index.
        step: u32,
    },
    /// A write of an agent's replaced incarnation: a newer one has claimed the agent since.
    #[error("agent {agent:?} epoch {epoch} was replaced by epoch {current}; the write is refused")]
    Fenced {
        /// The agent.
        agent: String,
        /// The writer's epoch.
        epoch: u64,
        /// The agent's current epoch.
        current: u64,
    },
    /// No pending question of this id.
    #[error("no pending question {0}")]
    NoSuchQuestion(String),
    /// The store's writer is gone (the journal was closed).
    #[error("the journal is closed")]
    Closed,
    /// Waiting for a task's result took longer than the deadline.
    #[error("task {0} did not finish within the deadline")]
    Timeout(TaskId),
    /// A value given to the journal is out of its bounds (an empty agent name, a record larger
    /// than [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES)).
    #[error("invalid journal input: {0}")]
    Invalid(String),
}

impl JournalError {
    pub(crate) fn store(error: impl std::fmt::Display) -> Self {
        Self::Store(error.to_string())
    }
}
