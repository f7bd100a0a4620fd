//! Warden's journal: durable agents, so that a killed process resumes its work without
//! losing an accepted task and without redoing a side effect.
//!
//! A [`Journal`] holds, on disk:
//!
//! - **tasks**: a task an agent accepts gets a [`TaskId`] and is written *before* the caller
//!   hears it was accepted; accepted means durable. A finished task keeps its outcome
//!   ([`TaskOutcome`]), which any process opening the store can wait for
//!   ([`Journal::result`]), until [retention](Journal::prune) removes it.
//! - **steps**: each step of a turn (a model call, a tool call, a human decision, a clock or
//!   random value) has a stable id ([`StepId`]: the task and the step's index) and its result
//!   is written before the turn goes on. A replayed turn gets recorded results back instead
//!   of running the step again. A step that must not run twice is written `Started` before it
//!   runs, so a replay that finds it without a result knows its outcome is unknown.
//! - **questions to humans** ([`PendingQuestion`]): they outlive the process, keep their
//!   deadline across restarts, and can be answered from another process.
//! - **snapshots** of each agent's memory, written with each finished task, so that a restart
//!   rebuilds memory from the snapshot, not from every task the agent ever ran.
//!
//! The journal knows nothing of agents, models or tools: tasks and results are bytes the
//! agents crate encodes. `warden-agents` builds durable agents on it
//! (`Agent::journal`); this crate depends on nothing of Warden's.
//!
//! # The store
//!
//! The embedded store is one [redb](https://docs.rs/redb) file: pure Rust, every commit
//! fsync'd before it is acknowledged, with group commit (see [`MAX_BATCH`]): appends from many
//! agents at once share one commit. Every record carries a CRC-32 (see the codec module): a
//! damaged record is a [`JournalError::Corrupt`] naming its task, never a panic and never a
//! record silently skipped. A crash mid-commit leaves the previous commit (redb's commit
//! protocol), so a torn tail is cut off by itself.
//!
//! ```
//! use std::time::Duration;
//! use warden_durable::{Journal, StepId, StepKind, TaskOutcome};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let journal = Journal::open(dir.path().join("journal.redb"))?;
//! let task = journal.accept("researcher", b"find the capital of France".to_vec()).await?;
//! journal.record_result(StepId::new(task, 0), StepKind::Model, "gpt", b"Paris".to_vec()).await?;
//! journal.finish(task, TaskOutcome::ok(b"Paris".to_vec()), None).await?;
//!
//! assert_eq!(journal.result(task, Duration::from_secs(1)).await?.result, b"Paris");
//! assert_eq!(journal.steps(task).await?.len(), 1);
//! assert!(journal.unfinished("researcher").await?.is_empty());
//! # Ok(()) }
//! ```

mod codec;
mod error;
mod file;
mod journal;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
mod store;

pub use codec::{FORMAT_VERSION, MAX_RECORD_BYTES};
pub use error::JournalError;
pub use file::MAX_BATCH;
pub use journal::{Journal, RetentionGuard};
pub use record::{
    Fence, PendingQuestion, Retention, StepId, StepKind, StepRecord, StepState, TaskEntry, TaskId, TaskOutcome,
};
