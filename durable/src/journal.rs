//! [`Journal`]: the handle agents and tools write to and read from.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::codec::check_size;
use crate::error::JournalError;
use crate::file::FileStore;
use crate::record::{
    Fence, PendingQuestion, Retention, StepId, StepKind, StepRecord, StepState, TaskEntry, TaskId, TaskOutcome, now_ms,
};
use crate::store::Store;

/// How often a waiter looks at the store for what another process wrote (a result, an answer).
const POLL: Duration = Duration::from_millis(100);

/// A journal: cheap to clone, shared by every agent of a process. See the [crate docs](crate).
#[derive(Clone)]
pub struct Journal {
    store: Arc<dyn Store>,
    /// Woken on every finish and every answer written through this process.
    changed: Arc<Notify>,
    /// The fence of a handle from [`claim`](Journal::claim): its writes are refused once the
    /// agent is claimed again.
    fence: Option<Fence>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("store", &self.store.describe())
            .finish()
    }
}

impl Journal {
    /// Opens the embedded store at `path`, creating it if missing, for this process alone (a
    /// lock on the whole file; the fastest commits). To let other processes in while this one
    /// runs (the `warden journal` command answering a question, a process waiting for a
    /// result), open it with [`open_shared`](Self::open_shared) instead.
    ///
    /// # Errors
    ///
    /// [`JournalError::Open`] when the file cannot be opened, is not a journal, or another
    /// process has it open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_file(path.as_ref(), false)
    }

    /// Opens the embedded store at `path`, creating it if missing, shared: any number of
    /// processes that open it shared may use it at once (commits cost more: about 0.8 ms
    /// against 0.3 ms here).
    ///
    /// # Errors
    ///
    /// [`JournalError::Open`] when the file cannot be opened, is not a journal, or a process
    /// has it open exclusively.
    pub fn open_shared(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_file(path.as_ref(), true)
    }

    fn open_file(path: &Path, shared: bool) -> Result<Self, JournalError> {
        Ok(Self {
            store: Arc::new(FileStore::open(path, shared)?),
            changed: Arc::new(Notify::new()),
            fence: None,
        })
    }

    /// Connects to a PostgreSQL journal (`postgres://user:password@host:port/database`),
    /// creating its tables if missing: for several processes or machines sharing one journal.
    /// TLS is rustls (`sslmode=require` in the URL).
    ///
    /// # Errors
    ///
    /// [`JournalError::Open`] when the database cannot be reached or the tables made.
    #[cfg(feature = "postgres")]
    pub async fn connect(url: &str) -> Result<Self, JournalError> {
        Ok(Self {
            store: Arc::new(crate::postgres::PgStore::connect(url).await?),
            changed: Arc::new(Notify::new()),
            fence: None,
        })
    }

    /// Opens the store `location` names: a `postgres://` or `postgresql://` URL (with the
    /// `postgres` feature), else a path to the embedded store, opened
    /// [shared](Self::open_shared) (this is how tools open a store that may be in use).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) or `connect`; [`JournalError::Open`] for a PostgreSQL URL when
    /// built without the `postgres` feature.
    pub async fn open_location(location: &str) -> Result<Self, JournalError> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Self::connect(location).await;
            #[cfg(not(feature = "postgres"))]
            return Err(JournalError::Open {
                path: "postgres".into(),
                detail: "built without the `postgres` feature of warden-durable".into(),
            });
        }
        Self::open_shared(location)
    }

    /// Claims `agent`: raises its epoch and returns a handle whose step, finish and question
    /// writes carry it ([`Fence`]). Once the agent is claimed again (its next incarnation, in
    /// this process or another), this handle's writes are refused with
    /// [`JournalError::Fenced`], also one already on its way when its incarnation died: what
    /// a replay reads is never overwritten from behind. A durable agent claims its name at
    /// every start.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn claim(&self, agent: &str) -> Result<Journal, JournalError> {
        if agent.is_empty() {
            return Err(JournalError::Invalid("an agent name is needed".into()));
        }
        let epoch = self.store.claim(agent.to_owned()).await?;
        Ok(Self {
            store: self.store.clone(),
            changed: self.changed.clone(),
            fence: Some(Fence {
                agent: agent.to_owned(),
                epoch,
            }),
        })
    }

    /// The fence this handle writes with, if it was [claimed](Self::claim).
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// Where the journal is: a path, or a database address without its password.
    pub fn location(&self) -> String {
        self.store.describe()
    }

    /// Accepts a task for `agent`: when this returns `Ok`, the task is on disk with its id.
    ///
    /// # Errors
    ///
    /// [`JournalError::Invalid`] for an empty agent name or an oversized task; a store error.
    pub async fn accept(&self, agent: &str, task: Vec<u8>) -> Result<TaskId, JournalError> {
        if agent.is_empty() {
            return Err(JournalError::Invalid("an agent name is needed".into()));
        }
        check_size("the task", task.len() + agent.len())?;
        let agent = agent.to_owned();
        self.store.accept(agent, task).await
    }

    /// Writes a step's record: `Started` before a step that must not run twice, `Done` with its
    /// result once it ran (a `Done` step also answers any question it asked).
    ///
    /// # Errors
    ///
    /// [`JournalError::StepRecorded`] when the step already has a result,
    /// [`JournalError::AlreadyFinished`], [`JournalError::NoSuchTask`], a store error.
    pub async fn record_step(&self, step: StepId, record: StepRecord) -> Result<(), JournalError> {
        if let StepState::Done(result) = &record.state {
            check_size("the step's result", result.len() + record.name.len())?;
        }
        self.store.record_step(step, record, self.fence.clone()).await
    }

    /// Writes a step's result (a shorthand for [`record_step`](Self::record_step) with `Done`).
    ///
    /// # Errors
    ///
    /// As [`record_step`](Self::record_step).
    pub async fn record_result(
        &self,
        step: StepId,
        kind: StepKind,
        name: &str,
        result: Vec<u8>,
    ) -> Result<(), JournalError> {
        let record = StepRecord {
            kind,
            name: name.to_owned(),
            state: StepState::Done(result),
        };
        self.record_step(step, record).await
    }

    /// Finishes a task with its outcome, and (in the same commit) replaces its agent's memory
    /// snapshot when one is given, so that a restart starts from it instead of replaying every
    /// task. Its pending questions go with it.
    ///
    /// # Errors
    ///
    /// [`JournalError::AlreadyFinished`] (a task finishes once), [`JournalError::NoSuchTask`], a
    /// store error.
    pub async fn finish(
        &self,
        task: TaskId,
        outcome: TaskOutcome,
        snapshot: Option<Vec<u8>>,
    ) -> Result<(), JournalError> {
        check_size("the result", outcome.result.len())?;
        if let Some(snapshot) = &snapshot {
            check_size("the snapshot", snapshot.len())?;
        }
        let done = self.store.finish(task, outcome, snapshot, self.fence.clone()).await;
        self.changed.notify_waiters();
        done
    }

    /// A task.
    ///
    /// # Errors
    ///
    /// [`JournalError::NoSuchTask`], [`JournalError::Corrupt`], a store error.
    pub async fn task(&self, id: TaskId) -> Result<TaskEntry, JournalError> {
        self.store.task(id).await
    }

    /// A task's steps, in order.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`] naming the step (a damaged record, a missing step), a store error.
    pub async fn steps(&self, id: TaskId) -> Result<Vec<StepRecord>, JournalError> {
        self.store.steps(id).await
    }

    /// The tasks `agent` accepted and has not finished, oldest first: what it resumes.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`], a store error.
    pub async fn unfinished(&self, agent: &str) -> Result<Vec<TaskEntry>, JournalError> {
        self.store.unfinished(agent.to_owned()).await
    }

    /// Up to `limit` tasks after `after` (from the first when `None`), in id order.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`], a store error.
    pub async fn tasks(&self, after: Option<TaskId>, limit: usize) -> Result<Vec<TaskEntry>, JournalError> {
        self.store.tasks(after, limit).await
    }

    /// How many tasks the journal holds, and how many of them are unfinished.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn counts(&self) -> Result<(u64, u64), JournalError> {
        self.store.counts().await
    }

    /// The agent's last memory snapshot.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`], a store error.
    pub async fn snapshot(&self, agent: &str) -> Result<Option<Vec<u8>>, JournalError> {
        self.store.snapshot(agent.to_owned()).await
    }

    /// Waits until the task is finished, at most `deadline`, and returns how it ended. Works
    /// from any process that opens the store.
    ///
    /// # Errors
    ///
    /// [`JournalError::Timeout`], [`JournalError::NoSuchTask`], a store error.
    pub async fn result(&self, id: TaskId, deadline: Duration) -> Result<TaskOutcome, JournalError> {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if let Some((_, outcome)) = self.task(id).await?.finished {
                    return Ok(outcome);
                }
                let _ = tokio::time::timeout(POLL, changed).await;
            }
        };
        tokio::time::timeout(deadline, wait)
            .await
            .unwrap_or(Err(JournalError::Timeout(id)))
    }

    /// Writes a question a turn waits on, unless that step already asked it (before a
    /// restart): then the first asking stands, its deadline included, and is returned.
    ///
    /// # Errors
    ///
    /// [`JournalError::AlreadyFinished`], [`JournalError::NoSuchTask`], a store error.
    pub async fn ask(
        &self,
        step: StepId,
        agent: &str,
        question: &str,
        deadline: Duration,
    ) -> Result<PendingQuestion, JournalError> {
        check_size("the question", question.len())?;
        let now = now_ms();
        let question = PendingQuestion {
            step,
            agent: agent.to_owned(),
            question: question.to_owned(),
            asked_ms: now,
            deadline_ms: now.saturating_add(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX)),
            answer: None,
        };
        self.store.ask(question, self.fence.clone()).await
    }

    /// Answers a pending question (from any process): the turn waiting on it goes on, or, if
    /// its process is gone, finds the answer when it is replayed.
    ///
    /// # Errors
    ///
    /// [`JournalError::NoSuchQuestion`], a store error.
    pub async fn answer(&self, step: StepId, answer: impl Into<String>) -> Result<(), JournalError> {
        let answer = answer.into();
        check_size("the answer", answer.len())?;
        let done = self.store.answer(step, answer).await;
        self.changed.notify_waiters();
        done
    }

    /// A pending question, if that step has one.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`], a store error.
    pub async fn question(&self, step: StepId) -> Result<Option<PendingQuestion>, JournalError> {
        self.store.question(step).await
    }

    /// Every pending question (answered ones included until their turn takes the answer).
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`], a store error.
    pub async fn questions(&self) -> Result<Vec<PendingQuestion>, JournalError> {
        self.store.questions().await
    }

    /// Waits for the answer to the question of `step`, until `deadline_ms` (milliseconds since
    /// the Unix epoch, as [`PendingQuestion::deadline_ms`]). `None` when the deadline passed.
    ///
    /// # Errors
    ///
    /// [`JournalError::NoSuchQuestion`] when the question is gone (its task finished), a store
    /// error.
    pub async fn wait_answer(&self, step: StepId, deadline_ms: u64) -> Result<Option<String>, JournalError> {
        loop {
            let changed = self.changed.notified();
            match self.question(step).await? {
                None => return Err(JournalError::NoSuchQuestion(step.to_string())),
                Some(PendingQuestion {
                    answer: Some(answer), ..
                }) => return Ok(Some(answer)),
                Some(_) => {}
            }
            let left = deadline_ms.saturating_sub(now_ms());
            if left == 0 {
                return Ok(None);
            }
            let _ = tokio::time::timeout(POLL.min(Duration::from_millis(left)), changed).await;
        }
    }

    /// Prunes as `retention` says every `every` (from now), in a task of its own, until the
    /// returned guard is dropped: the retention a long-running service wants. A failed prune
    /// is logged and tried again at the next tick.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn retain(&self, retention: Retention, every: Duration) -> RetentionGuard {
        let journal = self.clone();
        let every = every.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match journal.prune(retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(pruned = n, "journal retention"),
                    Err(error) => tracing::warn!(%error, "journal retention failed; trying again"),
                }
            }
        });
        RetentionGuard(task)
    }

    /// Removes finished tasks (and their steps) as `retention` says. Returns how many.
    ///
    /// # Errors
    ///
    /// A store error.
    pub async fn prune(&self, retention: Retention) -> Result<usize, JournalError> {
        self.store.prune(retention).await
    }
}

/// Keeps a journal's retention running ([`Journal::retain`]); dropping it stops it.
#[derive(Debug)]
pub struct RetentionGuard(tokio::task::JoinHandle<()>);

impl Drop for RetentionGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
