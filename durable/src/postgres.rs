//! The PostgreSQL store: one journal shared by several processes or machines.
//!
//! Records are the same checksummed bytes as in the embedded store (the codec module), in
//! `BYTEA` columns of five tables (`warden_tasks`, `warden_steps`, `warden_questions`,
//! `warden_snapshots`), created if missing. Every write is one transaction, committed (and so
//! on disk, under PostgreSQL's default `synchronous_commit = on`) before it returns; many
//! agents writing at once share WAL flushes through PostgreSQL's own group commit. Task ids
//! come from a sequence, unique across every process sharing the database.

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::codec;
use crate::error::JournalError;
use crate::record::{
    Fence, PendingQuestion, Retention, StepId, StepRecord, StepState, TaskEntry, TaskId, TaskOutcome, now_ms,
};
use crate::store::{Op, Store};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS warden_tasks (
    id BIGSERIAL PRIMARY KEY,
    agent TEXT NOT NULL,
    record BYTEA NOT NULL,
    unfinished BOOLEAN NOT NULL,
    finished_ms BIGINT
);
CREATE INDEX IF NOT EXISTS warden_tasks_unfinished ON warden_tasks (agent, id) WHERE unfinished;
CREATE INDEX IF NOT EXISTS warden_tasks_finished ON warden_tasks (finished_ms, id) WHERE NOT unfinished;
CREATE TABLE IF NOT EXISTS warden_steps (
    task BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    record BYTEA NOT NULL,
    done BOOLEAN NOT NULL,
    PRIMARY KEY (task, idx)
);
CREATE TABLE IF NOT EXISTS warden_questions (
    task BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (task, idx)
);
CREATE TABLE IF NOT EXISTS warden_epochs (
    agent TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS warden_snapshots (
    agent TEXT PRIMARY KEY,
    record BYTEA NOT NULL
);
";

/// How many connections a journal keeps.
const POOL: u32 = 16;

pub(crate) struct PgStore {
    pool: PgPool,
    shown: String,
}

fn store_error(e: sqlx::Error) -> JournalError {
    JournalError::Store(e.to_string())
}

/// `postgres://user:secret@host/db` shown as `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres".into();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

fn id_of(id: TaskId) -> Result<i64, JournalError> {
    i64::try_from(id.0).map_err(|_| JournalError::NoSuchTask(id))
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgStore {
    pub(crate) async fn connect(url: &str) -> Result<Self, JournalError> {
        let shown = redact(url);
        let open_error = |e: sqlx::Error| JournalError::Open {
            path: shown.clone(),
            detail: e.to_string(),
        };
        let pool = PgPoolOptions::new()
            .max_connections(POOL)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(open_error)?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(open_error)?;
        Ok(Self { pool, shown })
    }

    async fn accept_task(&self, agent: String, task: Vec<u8>) -> Result<TaskId, JournalError> {
        let entry = TaskEntry {
            id: TaskId(0),
            agent,
            task,
            accepted_ms: now_ms(),
            finished: None,
        };
        let row =
            sqlx::query("INSERT INTO warden_tasks (agent, record, unfinished) VALUES ($1, $2, TRUE) RETURNING id")
                .bind(&entry.agent)
                .bind(codec::encode_task(&entry))
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
        let id: i64 = row.try_get(0).map_err(store_error)?;
        Ok(TaskId(u64::try_from(id).unwrap_or(0)))
    }

    /// Locks the task's row for the transaction and reads it.
    async fn locked_task(tx: &mut sqlx::PgConnection, id: TaskId, exclusive: bool) -> Result<TaskEntry, JournalError> {
        let query = if exclusive {
            "SELECT record FROM warden_tasks WHERE id = $1 FOR UPDATE"
        } else {
            "SELECT record FROM warden_tasks WHERE id = $1 FOR SHARE"
        };
        let row = sqlx::query(query)
            .bind(id_of(id)?)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?
            .ok_or(JournalError::NoSuchTask(id))?;
        let bytes: Vec<u8> = row.try_get(0).map_err(store_error)?;
        codec::decode_task(id, &bytes)
    }

    async fn claim_epoch(&self, agent: String) -> Result<u64, JournalError> {
        let row = sqlx::query(
            "INSERT INTO warden_epochs (agent, epoch) VALUES ($1, 1)
             ON CONFLICT (agent) DO UPDATE SET epoch = warden_epochs.epoch + 1 RETURNING epoch",
        )
        .bind(agent)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        let epoch: i64 = row.try_get(0).map_err(store_error)?;
        Ok(u64::try_from(epoch).unwrap_or(0))
    }

    /// Refuses a write whose fence is older than its agent's epoch, holding the epoch for
    /// the transaction (a claim waits for it).
    async fn check_fence(tx: &mut sqlx::PgConnection, fence: Option<&Fence>) -> Result<(), JournalError> {
        let Some(fence) = fence else {
            return Ok(());
        };
        let row = sqlx::query("SELECT epoch FROM warden_epochs WHERE agent = $1 FOR SHARE")
            .bind(&fence.agent)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
        let current = match row {
            Some(row) => u64::try_from(row.try_get::<i64, _>(0).map_err(store_error)?).unwrap_or(0),
            None => 0,
        };
        fence.admits(current)
    }

    /// Holds the task unfinished for the transaction (a finish waits for it).
    async fn lock_unfinished(tx: &mut sqlx::PgConnection, id: TaskId) -> Result<(), JournalError> {
        if Self::locked_task(tx, id, false).await?.is_finished() {
            return Err(JournalError::AlreadyFinished(id));
        }
        Ok(())
    }

    async fn write_step(&self, step: StepId, record: StepRecord, fence: Option<Fence>) -> Result<(), JournalError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        Self::check_fence(&mut tx, fence.as_ref()).await?;
        Self::lock_unfinished(&mut tx, step.task).await?;
        let done = matches!(record.state, StepState::Done(_));
        let written = sqlx::query(
            "INSERT INTO warden_steps (task, idx, record, done) VALUES ($1, $2, $3, $4)
             ON CONFLICT (task, idx) DO UPDATE SET record = EXCLUDED.record, done = EXCLUDED.done
             WHERE NOT warden_steps.done",
        )
        .bind(id_of(step.task)?)
        .bind(i64::from(step.index))
        .bind(codec::encode_step(&record))
        .bind(done)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if written.rows_affected() == 0 {
            return Err(JournalError::StepRecorded {
                task: step.task,
                step: step.index,
            });
        }
        if done {
            sqlx::query("DELETE FROM warden_questions WHERE task = $1 AND idx = $2")
                .bind(id_of(step.task)?)
                .bind(i64::from(step.index))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn finish_task(
        &self,
        id: TaskId,
        outcome: TaskOutcome,
        snapshot: Option<Vec<u8>>,
        fence: Option<Fence>,
    ) -> Result<(), JournalError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        Self::check_fence(&mut tx, fence.as_ref()).await?;
        let mut entry = Self::locked_task(&mut tx, id, true).await?;
        if entry.is_finished() {
            return Err(JournalError::AlreadyFinished(id));
        }
        let at = now_ms();
        entry.finished = Some((at, outcome));
        sqlx::query("UPDATE warden_tasks SET record = $2, unfinished = FALSE, finished_ms = $3 WHERE id = $1")
            .bind(id_of(id)?)
            .bind(codec::encode_task(&entry))
            .bind(ms(at))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM warden_questions WHERE task = $1")
            .bind(id_of(id)?)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Some(snapshot) = snapshot {
            sqlx::query(
                "INSERT INTO warden_snapshots (agent, record) VALUES ($1, $2)
                 ON CONFLICT (agent) DO UPDATE SET record = EXCLUDED.record",
            )
            .bind(&entry.agent)
            .bind(codec::encode_snapshot(&snapshot))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn ask_question(
        &self,
        question: PendingQuestion,
        fence: Option<Fence>,
    ) -> Result<PendingQuestion, JournalError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        Self::check_fence(&mut tx, fence.as_ref()).await?;
        Self::lock_unfinished(&mut tx, question.step.task).await?;
        sqlx::query("INSERT INTO warden_questions (task, idx, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(id_of(question.step.task)?)
            .bind(i64::from(question.step.index))
            .bind(codec::encode_question(&question))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let row = sqlx::query("SELECT record FROM warden_questions WHERE task = $1 AND idx = $2")
            .bind(id_of(question.step.task)?)
            .bind(i64::from(question.step.index))
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let bytes: Vec<u8> = row.try_get(0).map_err(store_error)?;
        let stored = codec::decode_question(question.step, &bytes)?;
        tx.commit().await.map_err(store_error)?;
        Ok(stored)
    }

    async fn answer_question(&self, step: StepId, answer: String) -> Result<(), JournalError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let row = sqlx::query("SELECT record FROM warden_questions WHERE task = $1 AND idx = $2 FOR UPDATE")
            .bind(id_of(step.task)?)
            .bind(i64::from(step.index))
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?
            .ok_or_else(|| JournalError::NoSuchQuestion(step.to_string()))?;
        let bytes: Vec<u8> = row.try_get(0).map_err(store_error)?;
        let mut question = codec::decode_question(step, &bytes)?;
        question.answer = Some(answer);
        sqlx::query("UPDATE warden_questions SET record = $3 WHERE task = $1 AND idx = $2")
            .bind(id_of(step.task)?)
            .bind(i64::from(step.index))
            .bind(codec::encode_question(&question))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    async fn prune_tasks(&self, retention: Retention) -> Result<usize, JournalError> {
        let cutoff = retention.older_than_ms.map(|age| ms(now_ms().saturating_sub(age)));
        let keep = retention.keep_last.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let doomed: Vec<i64> = sqlx::query(
            "SELECT id FROM warden_tasks WHERE NOT unfinished AND (
                 ($1::BIGINT IS NOT NULL AND finished_ms < $1)
              OR ($2::BIGINT IS NOT NULL AND id NOT IN (
                     SELECT id FROM warden_tasks WHERE NOT unfinished
                     ORDER BY finished_ms DESC, id DESC LIMIT $2)))",
        )
        .bind(cutoff)
        .bind(keep)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(store_error)?;
        sqlx::query("DELETE FROM warden_steps WHERE task = ANY($1)")
            .bind(&doomed)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("DELETE FROM warden_tasks WHERE id = ANY($1)")
            .bind(&doomed)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(doomed.len())
    }

    fn decode_tasks(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<TaskEntry>, JournalError> {
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get(0).map_err(store_error)?;
                let bytes: Vec<u8> = row.try_get(1).map_err(store_error)?;
                codec::decode_task(TaskId(u64::try_from(id).unwrap_or(0)), &bytes)
            })
            .collect()
    }

    async fn read_task(&self, id: TaskId) -> Result<TaskEntry, JournalError> {
        let row = sqlx::query("SELECT record FROM warden_tasks WHERE id = $1")
            .bind(id_of(id)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?
            .ok_or(JournalError::NoSuchTask(id))?;
        let bytes: Vec<u8> = row.try_get(0).map_err(store_error)?;
        codec::decode_task(id, &bytes)
    }

    /// A task's steps, read under the task's row lock: a write of a process that died with
    /// its transaction still open on the server (its `COMMIT` sent, or not) is settled
    /// first, committed or rolled back, so that a replay never reads steps without one that
    /// then lands (found by the crash loop: a replay ran a step again and met its result).
    async fn read_steps(&self, id: TaskId) -> Result<Vec<StepRecord>, JournalError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("SELECT 1 FROM warden_tasks WHERE id = $1 FOR UPDATE")
            .bind(id_of(id)?)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let rows = sqlx::query("SELECT idx, record FROM warden_steps WHERE task = $1 ORDER BY idx")
            .bind(id_of(id)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let index: i32 = row.try_get(0).map_err(store_error)?;
            let bytes: Vec<u8> = row.try_get(1).map_err(store_error)?;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if index as usize != out.len() {
                return Err(JournalError::Corrupt {
                    what: format!("task {id} step {index}"),
                    detail: format!("step {} is missing before it", out.len()),
                });
            }
            out.push(codec::decode_step(StepId::new(id, index), &bytes)?);
        }
        Ok(out)
    }

    async fn read_unfinished(&self, agent: String) -> Result<Vec<TaskEntry>, JournalError> {
        let rows = sqlx::query("SELECT id, record FROM warden_tasks WHERE unfinished AND agent = $1 ORDER BY id")
            .bind(agent)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Self::decode_tasks(&rows)
    }

    async fn read_tasks(&self, after: Option<TaskId>, limit: usize) -> Result<Vec<TaskEntry>, JournalError> {
        let after = after.map_or(0, |id| ms(id.0));
        let rows = sqlx::query("SELECT id, record FROM warden_tasks WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Self::decode_tasks(&rows)
    }

    async fn read_counts(&self) -> Result<(u64, u64), JournalError> {
        let row = sqlx::query("SELECT COUNT(*), COUNT(*) FILTER (WHERE unfinished) FROM warden_tasks")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let total: i64 = row.try_get(0).map_err(store_error)?;
        let unfinished: i64 = row.try_get(1).map_err(store_error)?;
        Ok((
            u64::try_from(total).unwrap_or(0),
            u64::try_from(unfinished).unwrap_or(0),
        ))
    }

    async fn read_snapshot(&self, agent: String) -> Result<Option<Vec<u8>>, JournalError> {
        let row = sqlx::query("SELECT record FROM warden_snapshots WHERE agent = $1")
            .bind(&agent)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bytes: Vec<u8> = row.try_get(0).map_err(store_error)?;
        codec::decode_snapshot(&agent, &bytes).map(Some)
    }

    async fn read_question(&self, step: StepId) -> Result<Option<PendingQuestion>, JournalError> {
        let row = sqlx::query("SELECT record FROM warden_questions WHERE task = $1 AND idx = $2")
            .bind(id_of(step.task)?)
            .bind(i64::from(step.index))
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bytes: Vec<u8> = row.try_get(0).map_err(store_error)?;
        codec::decode_question(step, &bytes).map(Some)
    }

    async fn read_questions(&self) -> Result<Vec<PendingQuestion>, JournalError> {
        let rows = sqlx::query("SELECT task, idx, record FROM warden_questions ORDER BY task, idx")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let task: i64 = row.try_get(0).map_err(store_error)?;
                let index: i32 = row.try_get(1).map_err(store_error)?;
                let bytes: Vec<u8> = row.try_get(2).map_err(store_error)?;
                let step = StepId::new(
                    TaskId(u64::try_from(task).unwrap_or(0)),
                    u32::try_from(index).unwrap_or(u32::MAX),
                );
                codec::decode_question(step, &bytes)
            })
            .collect()
    }
}

impl Store for PgStore {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn accept(&self, agent: String, task: Vec<u8>) -> Op<'_, TaskId> {
        Box::pin(self.accept_task(agent, task))
    }

    fn claim(&self, agent: String) -> Op<'_, u64> {
        Box::pin(self.claim_epoch(agent))
    }

    fn record_step(&self, step: StepId, record: StepRecord, fence: Option<Fence>) -> Op<'_, ()> {
        Box::pin(self.write_step(step, record, fence))
    }

    fn finish(
        &self,
        task: TaskId,
        outcome: TaskOutcome,
        snapshot: Option<Vec<u8>>,
        fence: Option<Fence>,
    ) -> Op<'_, ()> {
        Box::pin(self.finish_task(task, outcome, snapshot, fence))
    }

    fn ask(&self, question: PendingQuestion, fence: Option<Fence>) -> Op<'_, PendingQuestion> {
        Box::pin(self.ask_question(question, fence))
    }

    fn answer(&self, step: StepId, answer: String) -> Op<'_, ()> {
        Box::pin(self.answer_question(step, answer))
    }

    fn prune(&self, retention: Retention) -> Op<'_, usize> {
        Box::pin(self.prune_tasks(retention))
    }

    fn task(&self, id: TaskId) -> Op<'_, TaskEntry> {
        Box::pin(self.read_task(id))
    }

    fn steps(&self, id: TaskId) -> Op<'_, Vec<StepRecord>> {
        Box::pin(self.read_steps(id))
    }

    fn unfinished(&self, agent: String) -> Op<'_, Vec<TaskEntry>> {
        Box::pin(self.read_unfinished(agent))
    }

    fn tasks(&self, after: Option<TaskId>, limit: usize) -> Op<'_, Vec<TaskEntry>> {
        Box::pin(self.read_tasks(after, limit))
    }

    fn counts(&self) -> Op<'_, (u64, u64)> {
        Box::pin(self.read_counts())
    }

    fn snapshot(&self, agent: String) -> Op<'_, Option<Vec<u8>>> {
        Box::pin(self.read_snapshot(agent))
    }

    fn question(&self, step: StepId) -> Op<'_, Option<PendingQuestion>> {
        Box::pin(self.read_question(step))
    }

    fn questions(&self) -> Op<'_, Vec<PendingQuestion>> {
        Box::pin(self.read_questions())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            super::redact("postgres://warden:s3cret@127.0.0.1:5432/db"),
            "postgres://warden:***@127.0.0.1:5432/db"
        );
        assert_eq!(super::redact("postgres://127.0.0.1/db"), "postgres://127.0.0.1/db");
    }
}
