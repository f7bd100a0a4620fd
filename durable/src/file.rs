//! The embedded store: one [redb](https://docs.rs/redb) file, fsync'd on every commit, with
//! group commit (appends from many agents at once share one commit).
//!
//! One writer thread owns every write: it takes every request waiting for it (up to
//! [`MAX_BATCH`]), applies them in one write transaction, commits once (redb's
//! `Durability::Immediate`: the data is on disk when `commit` returns) and only then answers
//! each caller. So a caller that got `Ok` has its record on disk, and 1,000 agents appending at
//! once pay for a handful of fsyncs, not 1,000. Reads run on tokio's blocking pool in read
//! transactions of their own, beside the writer.
//!
//! The file is opened either exclusively (the default: one process, a whole-file lock, about
//! 0.3 ms per fsync'd commit here) or shared, in redb's multi-writer mode (any number of
//! processes at once, such as the `warden journal` command beside a running agent process;
//! about 0.8 ms per commit here, for the cross-process locking).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use tokio::sync::oneshot;

use crate::codec;
use crate::error::JournalError;
use crate::record::{
    Fence, PendingQuestion, Retention, StepId, StepRecord, StepState, TaskEntry, TaskId, TaskOutcome, now_ms,
};
use crate::store::Op;

/// The most requests one commit takes.
pub const MAX_BATCH: usize = 4096;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const TASKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("tasks");
const STEPS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("steps");
/// (agent, task) for every unfinished task: what an agent resumes.
const UNFINISHED: TableDefinition<'_, (&str, u64), ()> = TableDefinition::new("unfinished");
/// (finished at, task) for every finished task: what retention prunes, oldest first.
const FINISHED: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("finished");
const QUESTIONS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("questions");
const SNAPSHOTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshots");

const NEXT_TASK: &str = "next_task";

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

pub(crate) enum Write {
    Accept {
        agent: String,
        task: Vec<u8>,
        reply: Reply<TaskId>,
    },
    Claim {
        agent: String,
        reply: Reply<u64>,
    },
    Step {
        step: StepId,
        record: StepRecord,
        fence: Option<Fence>,
        reply: Reply<()>,
    },
    Finish {
        task: TaskId,
        outcome: TaskOutcome,
        snapshot: Option<Vec<u8>>,
        fence: Option<Fence>,
        reply: Reply<()>,
    },
    Ask {
        question: PendingQuestion,
        fence: Option<Fence>,
        reply: Reply<PendingQuestion>,
    },
    Answer {
        step: StepId,
        answer: String,
        reply: Reply<()>,
    },
    Prune {
        retention: Retention,
        reply: Reply<usize>,
    },
}

impl Write {
    fn fail(self, error: impl Fn() -> JournalError) {
        match self {
            Self::Accept { reply, .. } => drop(reply.send(Err(error()))),
            Self::Step { reply, .. } | Self::Finish { reply, .. } | Self::Answer { reply, .. } => {
                drop(reply.send(Err(error())));
            }
            Self::Ask { reply, .. } => drop(reply.send(Err(error()))),
            Self::Prune { reply, .. } => drop(reply.send(Err(error()))),
            Self::Claim { reply, .. } => drop(reply.send(Err(error()))),
        }
    }
}

/// An answer held back until its batch is committed.
enum Done {
    Accept(Reply<TaskId>, Result<TaskId, JournalError>),
    Unit(Reply<()>, Result<(), JournalError>),
    Ask(Reply<PendingQuestion>, Result<PendingQuestion, JournalError>),
    Prune(Reply<usize>, Result<usize, JournalError>),
    Claim(Reply<u64>, Result<u64, JournalError>),
}

impl Done {
    fn send(self, commit: &Result<(), String>) {
        macro_rules! send {
            ($reply:expr, $result:expr) => {{
                let result = match commit {
                    Ok(()) => $result,
                    Err(e) => Err(JournalError::Store(e.clone())),
                };
                let _ = $reply.send(result);
            }};
        }
        match self {
            Self::Accept(reply, result) => send!(reply, result),
            Self::Unit(reply, result) => send!(reply, result),
            Self::Ask(reply, result) => send!(reply, result),
            Self::Prune(reply, result) => send!(reply, result),
            Self::Claim(reply, result) => send!(reply, result),
        }
    }
}

/// The embedded store.
pub(crate) struct FileStore {
    /// `None` once dropping.
    db: Option<Arc<Database>>,
    /// `None` once dropping.
    writes: Option<mpsc::Sender<Write>>,
    writer: Option<std::thread::JoinHandle<()>>,
    pub(crate) path: PathBuf,
}

/// The file is closed when the journal's last handle goes: the writer finishes the batch in
/// hand and lets go of the database, so that the same process may open it again at once.
impl Drop for FileStore {
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if let Some(db) = self.db.take() {
            close_quietly(db);
        }
    }
}

/// Drops a handle on the database; redb may panic closing a damaged file, which must not
/// reach the caller (a journal dropped in user code).
fn close_quietly(db: Arc<Database>) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(db)));
}

impl FileStore {
    pub(crate) fn open(path: &Path, shared: bool) -> Result<Self, JournalError> {
        let shown = path.display().to_string();
        let open_error = |detail: String| JournalError::Open {
            path: shown.clone(),
            detail,
        };
        if !path.exists() {
            create_atomically(path).map_err(|e| open_error(e.to_string()))?;
        }
        let mode = if shared {
            ConcurrencyMode::MultiWriter
        } else {
            ConcurrencyMode::ExclusiveWriter
        };
        // redb must not panic on a damaged file; should it, the open fails, typed.
        let db = std::panic::catch_unwind(|| Database::builder().set_concurrency_mode(mode).open(path))
            .map_err(|_| open_error("the store panicked reading the file".into()))?
            .map_err(|e| open_error(e.to_string()))?;
        let db = Arc::new(db);
        if let Err(e) = std::panic::catch_unwind(AssertUnwindSafe(|| make_tables(&db)))
            .unwrap_or_else(|_| Err(JournalError::Store("the store panicked".into())))
        {
            close_quietly(db);
            return Err(open_error(e.to_string()));
        }
        let (writes, rx) = mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("warden-journal-writer".into())
            .spawn(move || {
                writer(&writer_db, &rx);
                close_quietly(writer_db);
            })
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db: Some(db),
            writes: Some(writes),
            writer: Some(writer),
            path: path.to_path_buf(),
        })
    }

    pub(crate) async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Write) -> Result<T, JournalError> {
        let (tx, rx) = oneshot::channel();
        let writes = self.writes.as_ref().ok_or(JournalError::Closed)?;
        writes.send(make(tx)).map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Runs a read on the blocking pool, in a read transaction of its own.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let db = self.db.clone().ok_or(JournalError::Closed)?;
        tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                let tx = db.begin_read().map_err(JournalError::store)?;
                read(&tx)
            }))
            .unwrap_or_else(|_| Err(JournalError::Store("the store panicked reading".into())))
        })
        .await
        .map_err(|e| JournalError::Store(e.to_string()))?
    }
}

/// Makes the tables, so that readers never meet a missing one.
fn make_tables(db: &Database) -> Result<(), JournalError> {
    let tx = db.begin_write().map_err(JournalError::store)?;
    tx.open_table(META).map_err(JournalError::store)?;
    tx.open_table(TASKS).map_err(JournalError::store)?;
    tx.open_table(STEPS).map_err(JournalError::store)?;
    tx.open_table(UNFINISHED).map_err(JournalError::store)?;
    tx.open_table(FINISHED).map_err(JournalError::store)?;
    tx.open_table(QUESTIONS).map_err(JournalError::store)?;
    tx.open_table(SNAPSHOTS).map_err(JournalError::store)?;
    tx.commit().map_err(JournalError::store)
}

/// Creates a new store so that a crash half-way never leaves a half-made file at `path`
/// (found by the crash loop: a process killed inside `create` left a file without redb's
/// header, which no later start could open). The store is made whole beside it, under a name
/// of this process's own, then linked to `path` (which fails, harmlessly, if another process
/// got there first), and the directory is synced.
fn create_atomically(path: &Path) -> Result<(), JournalError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".creating-{}", std::process::id()));
    let staging = path.with_file_name(name);
    let _ = std::fs::remove_file(&staging);
    let made = std::panic::catch_unwind(|| Database::create(&staging))
        .map_err(|_| JournalError::Store("the store panicked creating the file".into()))?
        .map_err(JournalError::store)
        .and_then(|db| make_tables(&db));
    let linked = made.and_then(|()| match std::fs::hard_link(&staging, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(JournalError::store(e)),
    });
    let _ = std::fs::remove_file(&staging);
    linked?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(JournalError::store)?;
    }
    Ok(())
}

/// The writer thread: one commit per batch of waiting requests.
fn writer(db: &Database, rx: &mpsc::Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let detail = e.to_string();
                for write in batch {
                    write.fail(|| JournalError::Store(detail.clone()));
                }
                continue;
            }
        };
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            batch.into_iter().map(|write| apply(&tx, write)).collect::<Vec<_>>()
        }));
        let Ok(done) = applied else {
            tracing::error!("the journal store panicked applying a batch; it is dropped, every caller told");
            let _ = tx.abort();
            continue;
        };
        let commit = tx.commit().map_err(|e| e.to_string());
        if let Err(e) = &commit {
            tracing::error!(error = %e, "journal commit failed");
        }
        for answer in done {
            answer.send(&commit);
        }
    }
}

fn apply(tx: &WriteTransaction, write: Write) -> Done {
    match write {
        Write::Accept { agent, task, reply } => Done::Accept(reply, accept(tx, &agent, task)),
        Write::Claim { agent, reply } => Done::Claim(reply, claim(tx, &agent)),
        Write::Step {
            step,
            record,
            fence,
            reply,
        } => Done::Unit(
            reply,
            check_fence(tx, fence.as_ref()).and_then(|()| record_step(tx, step, &record)),
        ),
        Write::Finish {
            task,
            outcome,
            snapshot,
            fence,
            reply,
        } => Done::Unit(
            reply,
            check_fence(tx, fence.as_ref()).and_then(|()| finish(tx, task, outcome, snapshot)),
        ),
        Write::Ask { question, fence, reply } => {
            Done::Ask(reply, check_fence(tx, fence.as_ref()).and_then(|()| ask(tx, question)))
        }
        Write::Answer { step, answer, reply } => Done::Unit(reply, answer_question(tx, step, answer)),
        Write::Prune { retention, reply } => Done::Prune(reply, prune(tx, retention)),
    }
}

/// The key of an agent's epoch in the meta table.
fn epoch_key(agent: &str) -> String {
    format!("epoch/{agent}")
}

fn claim(tx: &WriteTransaction, agent: &str) -> Result<u64, JournalError> {
    let mut meta = tx.open_table(META).map_err(JournalError::store)?;
    let key = epoch_key(agent);
    let epoch = meta
        .get(key.as_str())
        .map_err(JournalError::store)?
        .map_or(0, |v| v.value())
        + 1;
    meta.insert(key.as_str(), epoch).map_err(JournalError::store)?;
    Ok(epoch)
}

/// Refuses a write whose fence is older than its agent's epoch.
fn check_fence(tx: &WriteTransaction, fence: Option<&Fence>) -> Result<(), JournalError> {
    let Some(fence) = fence else {
        return Ok(());
    };
    let meta = tx.open_table(META).map_err(JournalError::store)?;
    let current = meta
        .get(epoch_key(&fence.agent).as_str())
        .map_err(JournalError::store)?
        .map_or(0, |v| v.value());
    fence.admits(current)
}

fn accept(tx: &WriteTransaction, agent: &str, task: Vec<u8>) -> Result<TaskId, JournalError> {
    let mut meta = tx.open_table(META).map_err(JournalError::store)?;
    let id = meta
        .get(NEXT_TASK)
        .map_err(JournalError::store)?
        .map_or(1, |v| v.value());
    meta.insert(NEXT_TASK, id + 1).map_err(JournalError::store)?;
    let entry = TaskEntry {
        id: TaskId(id),
        agent: agent.to_owned(),
        task,
        accepted_ms: now_ms(),
        finished: None,
    };
    let mut tasks = tx.open_table(TASKS).map_err(JournalError::store)?;
    tasks
        .insert(id, codec::encode_task(&entry).as_slice())
        .map_err(JournalError::store)?;
    let mut unfinished = tx.open_table(UNFINISHED).map_err(JournalError::store)?;
    unfinished.insert((agent, id), ()).map_err(JournalError::store)?;
    Ok(TaskId(id))
}

fn load_task(tx: &WriteTransaction, id: TaskId) -> Result<TaskEntry, JournalError> {
    task_in(&tx.open_table(TASKS).map_err(JournalError::store)?, id)
}

/// A task from the tasks table, in a read or a write transaction.
fn task_in(tasks: &impl ReadableTable<u64, &'static [u8]>, id: TaskId) -> Result<TaskEntry, JournalError> {
    let bytes = tasks
        .get(id.0)
        .map_err(JournalError::store)?
        .ok_or(JournalError::NoSuchTask(id))?;
    codec::decode_task(id, bytes.value())
}

fn record_step(tx: &WriteTransaction, step: StepId, record: &StepRecord) -> Result<(), JournalError> {
    let entry = load_task(tx, step.task)?;
    if entry.is_finished() {
        return Err(JournalError::AlreadyFinished(step.task));
    }
    let mut steps = tx.open_table(STEPS).map_err(JournalError::store)?;
    let key = (step.task.0, step.index);
    if let Some(existing) = steps.get(key).map_err(JournalError::store)? {
        let existing = codec::decode_step(step, existing.value())?;
        if matches!(existing.state, StepState::Done(_)) {
            return Err(JournalError::StepRecorded {
                task: step.task,
                step: step.index,
            });
        }
    }
    steps
        .insert(key, codec::encode_step(record).as_slice())
        .map_err(JournalError::store)?;
    if matches!(record.state, StepState::Done(_)) {
        let mut questions = tx.open_table(QUESTIONS).map_err(JournalError::store)?;
        questions.remove(key).map_err(JournalError::store)?;
    }
    Ok(())
}

fn finish(
    tx: &WriteTransaction,
    id: TaskId,
    outcome: TaskOutcome,
    snapshot: Option<Vec<u8>>,
) -> Result<(), JournalError> {
    let mut entry = load_task(tx, id)?;
    if entry.is_finished() {
        return Err(JournalError::AlreadyFinished(id));
    }
    let at = now_ms();
    entry.finished = Some((at, outcome));
    let mut tasks = tx.open_table(TASKS).map_err(JournalError::store)?;
    tasks
        .insert(id.0, codec::encode_task(&entry).as_slice())
        .map_err(JournalError::store)?;
    let mut unfinished = tx.open_table(UNFINISHED).map_err(JournalError::store)?;
    unfinished
        .remove((entry.agent.as_str(), id.0))
        .map_err(JournalError::store)?;
    let mut finished = tx.open_table(FINISHED).map_err(JournalError::store)?;
    finished.insert((at, id.0), ()).map_err(JournalError::store)?;
    remove_questions(tx, id)?;
    if let Some(snapshot) = snapshot {
        let mut snapshots = tx.open_table(SNAPSHOTS).map_err(JournalError::store)?;
        snapshots
            .insert(entry.agent.as_str(), codec::encode_snapshot(&snapshot).as_slice())
            .map_err(JournalError::store)?;
    }
    Ok(())
}

fn remove_questions(tx: &WriteTransaction, id: TaskId) -> Result<(), JournalError> {
    let mut questions = tx.open_table(QUESTIONS).map_err(JournalError::store)?;
    let keys: Vec<(u64, u32)> = questions
        .range((id.0, 0)..=(id.0, u32::MAX))
        .map_err(JournalError::store)?
        .filter_map(Result::ok)
        .map(|(k, _)| k.value())
        .collect();
    for key in keys {
        questions.remove(key).map_err(JournalError::store)?;
    }
    Ok(())
}

fn ask(tx: &WriteTransaction, question: PendingQuestion) -> Result<PendingQuestion, JournalError> {
    let entry = load_task(tx, question.step.task)?;
    if entry.is_finished() {
        return Err(JournalError::AlreadyFinished(question.step.task));
    }
    let key = (question.step.task.0, question.step.index);
    let mut questions = tx.open_table(QUESTIONS).map_err(JournalError::store)?;
    if let Some(existing) = questions.get(key).map_err(JournalError::store)? {
        // Asked before a restart: the first asking stands, deadline included.
        return codec::decode_question(question.step, existing.value());
    }
    questions
        .insert(key, codec::encode_question(&question).as_slice())
        .map_err(JournalError::store)?;
    Ok(question)
}

fn answer_question(tx: &WriteTransaction, step: StepId, answer: String) -> Result<(), JournalError> {
    let key = (step.task.0, step.index);
    let mut questions = tx.open_table(QUESTIONS).map_err(JournalError::store)?;
    let mut question = match questions.get(key).map_err(JournalError::store)? {
        Some(bytes) => codec::decode_question(step, bytes.value())?,
        None => return Err(JournalError::NoSuchQuestion(step.to_string())),
    };
    question.answer = Some(answer);
    questions
        .insert(key, codec::encode_question(&question).as_slice())
        .map_err(JournalError::store)?;
    Ok(())
}

fn prune(tx: &WriteTransaction, retention: Retention) -> Result<usize, JournalError> {
    let mut finished = tx.open_table(FINISHED).map_err(JournalError::store)?;
    let all: Vec<(u64, u64)> = finished
        .iter()
        .map_err(JournalError::store)?
        .filter_map(Result::ok)
        .map(|(k, _)| k.value())
        .collect();
    let now = now_ms();
    let mut doomed = Vec::new();
    let beyond = retention.keep_last.map_or(0, |keep| all.len().saturating_sub(keep));
    for (i, &(at, id)) in all.iter().enumerate() {
        let too_old = retention.older_than_ms.is_some_and(|age| now.saturating_sub(at) > age);
        if too_old || i < beyond {
            doomed.push((at, id));
        }
    }
    let mut tasks = tx.open_table(TASKS).map_err(JournalError::store)?;
    let mut steps = tx.open_table(STEPS).map_err(JournalError::store)?;
    for &(at, id) in &doomed {
        finished.remove((at, id)).map_err(JournalError::store)?;
        tasks.remove(id).map_err(JournalError::store)?;
        let keys: Vec<(u64, u32)> = steps
            .range((id, 0)..=(id, u32::MAX))
            .map_err(JournalError::store)?
            .filter_map(Result::ok)
            .map(|(k, _)| k.value())
            .collect();
        for key in keys {
            steps.remove(key).map_err(JournalError::store)?;
        }
    }
    Ok(doomed.len())
}

// Reads.

pub(crate) fn read_task(tx: &redb::ReadTransaction, id: TaskId) -> Result<TaskEntry, JournalError> {
    task_in(&tx.open_table(TASKS).map_err(JournalError::store)?, id)
}

pub(crate) fn read_steps(tx: &redb::ReadTransaction, id: TaskId) -> Result<Vec<StepRecord>, JournalError> {
    let steps = tx.open_table(STEPS).map_err(JournalError::store)?;
    let mut out = Vec::new();
    for row in steps.range((id.0, 0)..=(id.0, u32::MAX)).map_err(JournalError::store)? {
        let (key, value) = row.map_err(JournalError::store)?;
        let (_, index) = key.value();
        let step = StepId::new(id, index);
        if index as usize != out.len() {
            return Err(JournalError::Corrupt {
                what: format!("task {id} step {index}"),
                detail: format!("step {} is missing before it", out.len()),
            });
        }
        out.push(codec::decode_step(step, value.value())?);
    }
    Ok(out)
}

pub(crate) fn read_unfinished(tx: &redb::ReadTransaction, agent: &str) -> Result<Vec<TaskEntry>, JournalError> {
    let index = tx.open_table(UNFINISHED).map_err(JournalError::store)?;
    let ids: Vec<u64> = index
        .range((agent, 0)..=(agent, u64::MAX))
        .map_err(JournalError::store)?
        .map(|row| row.map(|(k, _)| k.value().1).map_err(JournalError::store))
        .collect::<Result<_, _>>()?;
    let tasks = tx.open_table(TASKS).map_err(JournalError::store)?;
    ids.into_iter().map(|id| task_in(&tasks, TaskId(id))).collect()
}

pub(crate) fn read_tasks(
    tx: &redb::ReadTransaction,
    after: Option<TaskId>,
    limit: usize,
) -> Result<Vec<TaskEntry>, JournalError> {
    let tasks = tx.open_table(TASKS).map_err(JournalError::store)?;
    let start = after.map_or(0, |id| id.0.saturating_add(1));
    let mut out = Vec::new();
    for row in tasks.range(start..).map_err(JournalError::store)? {
        if out.len() >= limit {
            break;
        }
        let (key, value) = row.map_err(JournalError::store)?;
        out.push(codec::decode_task(TaskId(key.value()), value.value())?);
    }
    Ok(out)
}

pub(crate) fn read_questions(tx: &redb::ReadTransaction) -> Result<Vec<PendingQuestion>, JournalError> {
    let questions = tx.open_table(QUESTIONS).map_err(JournalError::store)?;
    let mut out = Vec::new();
    for row in questions.iter().map_err(JournalError::store)? {
        let (key, value) = row.map_err(JournalError::store)?;
        let (task, index) = key.value();
        out.push(codec::decode_question(StepId::new(TaskId(task), index), value.value())?);
    }
    Ok(out)
}

pub(crate) fn read_question(tx: &redb::ReadTransaction, step: StepId) -> Result<Option<PendingQuestion>, JournalError> {
    let questions = tx.open_table(QUESTIONS).map_err(JournalError::store)?;
    let found = questions.get((step.task.0, step.index)).map_err(JournalError::store)?;
    found
        .map(|bytes| codec::decode_question(step, bytes.value()))
        .transpose()
}

pub(crate) fn read_snapshot(tx: &redb::ReadTransaction, agent: &str) -> Result<Option<Vec<u8>>, JournalError> {
    let snapshots = tx.open_table(SNAPSHOTS).map_err(JournalError::store)?;
    let found = snapshots.get(agent).map_err(JournalError::store)?;
    found
        .map(|bytes| codec::decode_snapshot(agent, bytes.value()))
        .transpose()
}

pub(crate) fn count_tasks(tx: &redb::ReadTransaction) -> Result<(u64, u64), JournalError> {
    let tasks = tx.open_table(TASKS).map_err(JournalError::store)?;
    let unfinished = tx.open_table(UNFINISHED).map_err(JournalError::store)?;
    Ok((
        tasks.len().map_err(JournalError::store)?,
        unfinished.len().map_err(JournalError::store)?,
    ))
}

impl crate::store::Store for FileStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn accept(&self, agent: String, task: Vec<u8>) -> Op<'_, TaskId> {
        Box::pin(self.write(|reply| Write::Accept { agent, task, reply }))
    }

    fn claim(&self, agent: String) -> Op<'_, u64> {
        Box::pin(self.write(|reply| Write::Claim { agent, reply }))
    }

    fn record_step(&self, step: StepId, record: StepRecord, fence: Option<Fence>) -> Op<'_, ()> {
        Box::pin(self.write(move |reply| Write::Step {
            step,
            record,
            fence,
            reply,
        }))
    }

    fn finish(
        &self,
        task: TaskId,
        outcome: TaskOutcome,
        snapshot: Option<Vec<u8>>,
        fence: Option<Fence>,
    ) -> Op<'_, ()> {
        Box::pin(self.write(move |reply| Write::Finish {
            task,
            outcome,
            snapshot,
            fence,
            reply,
        }))
    }

    fn ask(&self, question: PendingQuestion, fence: Option<Fence>) -> Op<'_, PendingQuestion> {
        Box::pin(self.write(|reply| Write::Ask { question, fence, reply }))
    }

    fn answer(&self, step: StepId, answer: String) -> Op<'_, ()> {
        Box::pin(self.write(move |reply| Write::Answer { step, answer, reply }))
    }

    fn prune(&self, retention: Retention) -> Op<'_, usize> {
        Box::pin(self.write(move |reply| Write::Prune { retention, reply }))
    }

    fn task(&self, id: TaskId) -> Op<'_, TaskEntry> {
        Box::pin(self.read(move |tx| read_task(tx, id)))
    }

    fn steps(&self, id: TaskId) -> Op<'_, Vec<StepRecord>> {
        Box::pin(self.read(move |tx| read_steps(tx, id)))
    }

    fn unfinished(&self, agent: String) -> Op<'_, Vec<TaskEntry>> {
        Box::pin(self.read(move |tx| read_unfinished(tx, &agent)))
    }

    fn tasks(&self, after: Option<TaskId>, limit: usize) -> Op<'_, Vec<TaskEntry>> {
        Box::pin(self.read(move |tx| read_tasks(tx, after, limit)))
    }

    fn counts(&self) -> Op<'_, (u64, u64)> {
        Box::pin(self.read(count_tasks))
    }

    fn snapshot(&self, agent: String) -> Op<'_, Option<Vec<u8>>> {
        Box::pin(self.read(move |tx| read_snapshot(tx, &agent)))
    }

    fn question(&self, step: StepId) -> Op<'_, Option<PendingQuestion>> {
        Box::pin(self.read(move |tx| read_question(tx, step)))
    }

    fn questions(&self) -> Op<'_, Vec<PendingQuestion>> {
        Box::pin(self.read(read_questions))
    }
}
