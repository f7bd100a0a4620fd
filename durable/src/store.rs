//! What a journal's store does: the operations both stores (the embedded file and
//! PostgreSQL) implement with the same meaning, checked by the same test suite.

use std::future::Future;
use std::pin::Pin;

use crate::error::JournalError;
use crate::record::{Fence, PendingQuestion, Retention, StepId, StepRecord, TaskEntry, TaskId, TaskOutcome};

/// A store operation in flight.
pub(crate) type Op<'a, T> = Pin<Box<dyn Future<Output = Result<T, JournalError>> + Send + 'a>>;

/// A journal's store. Every write is durable when its future returns `Ok`.
pub(crate) trait Store: Send + Sync + 'static {
    /// Where it is (a path, a database address without its password).
    fn describe(&self) -> String;
    fn accept(&self, agent: String, task: Vec<u8>) -> Op<'_, TaskId>;
    /// Raises `agent`'s epoch and returns it: writes fenced with an older one are refused.
    fn claim(&self, agent: String) -> Op<'_, u64>;
    fn record_step(&self, step: StepId, record: StepRecord, fence: Option<Fence>) -> Op<'_, ()>;
    fn finish(&self, task: TaskId, outcome: TaskOutcome, snapshot: Option<Vec<u8>>, fence: Option<Fence>)
    -> Op<'_, ()>;
    fn ask(&self, question: PendingQuestion, fence: Option<Fence>) -> Op<'_, PendingQuestion>;
    fn answer(&self, step: StepId, answer: String) -> Op<'_, ()>;
    fn prune(&self, retention: Retention) -> Op<'_, usize>;
    fn task(&self, id: TaskId) -> Op<'_, TaskEntry>;
    fn steps(&self, id: TaskId) -> Op<'_, Vec<StepRecord>>;
    fn unfinished(&self, agent: String) -> Op<'_, Vec<TaskEntry>>;
    fn tasks(&self, after: Option<TaskId>, limit: usize) -> Op<'_, Vec<TaskEntry>>;
    fn counts(&self) -> Op<'_, (u64, u64)>;
    fn snapshot(&self, agent: String) -> Op<'_, Option<Vec<u8>>>;
    fn question(&self, step: StepId) -> Op<'_, Option<PendingQuestion>>;
    fn questions(&self) -> Op<'_, Vec<PendingQuestion>>;
}
