//! The journal's stores, through the public API, one suite for both (the embedded file and
//! PostgreSQL): what is written stays written, across a reopen; ids are unique under
//! concurrent appends; questions keep their first deadline; retention removes only finished
//! tasks; a damaged record is a typed error naming its task, never a panic.
//!
//! The PostgreSQL half runs against `$WARDEN_TEST_POSTGRES` (a fresh database per test);
//! `.ci/run` starts a throwaway cluster and sets it, with `WARDEN_REQUIRE_POSTGRES=1`, so that
//! there a missing server fails the suite instead of skipping it.

use std::time::Duration;

use warden_durable::{Journal, JournalError, Retention, StepId, StepKind, StepRecord, StepState, TaskId, TaskOutcome};

/// A store for one test: where it is, and a way to open it again (as a new process would).
struct Fixture {
    location: String,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn file() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("journal.redb").display().to_string();
        Self {
            location,
            _dir: Some(dir),
        }
    }

    /// A fresh database on the test server, or `None` (skipped) when there is none.
    #[cfg(feature = "postgres")]
    async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("WARDEN_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("WARDEN_REQUIRE_POSTGRES").is_none(),
                "WARDEN_REQUIRE_POSTGRES is set but WARDEN_TEST_POSTGRES is not"
            );
            eprintln!("skipped: no WARDEN_TEST_POSTGRES (start one with .ci/postgres.sh)");
            return None;
        };
        let name = format!("warden_test_{}", fastrand::u64(..));
        let admin = sqlx::PgPool::connect(&url).await.expect("the test server answers");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        Some(Self {
            location: format!("{base}/{name}"),
            _dir: None,
        })
    }

    async fn open(&self) -> Journal {
        Journal::open_location(&self.location).await.unwrap()
    }
}

/// Runs each named suite function on the embedded store and on PostgreSQL.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Fixture::file()).await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = super::Fixture::postgres().await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
    };
}

on_both_stores!(
    a_task_its_steps_and_its_outcome_survive_a_reopen,
    concurrent_appends_share_commits_and_get_unique_ids,
    a_result_is_waited_for_and_a_missing_one_times_out,
    a_question_keeps_its_first_deadline_and_is_answered_from_another_handle,
    a_question_past_its_deadline_has_no_answer,
    retention_prunes_finished_tasks_only,
    retention_runs_by_itself_until_its_guard_is_dropped,
    a_replaced_incarnation_cannot_write,
    bad_input_is_refused_with_a_typed_error,
);

async fn a_task_its_steps_and_its_outcome_survive_a_reopen(store: Fixture) {
    let task = {
        let journal = store.open().await;
        let task = journal.accept("a", b"task".to_vec()).await.unwrap();
        journal
            .record_result(StepId::new(task, 0), StepKind::Model, "m", b"call tool".to_vec())
            .await
            .unwrap();
        let started = StepRecord {
            kind: StepKind::Tool,
            name: "send".into(),
            state: StepState::Started,
        };
        journal.record_step(StepId::new(task, 1), started).await.unwrap();
        task
    };
    let journal = store.open().await;
    let unfinished = journal.unfinished("a").await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].id, task);
    assert_eq!(unfinished[0].task, b"task");
    let steps = journal.steps(task).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].state, StepState::Done(b"call tool".to_vec()));
    assert!(steps[1].is(StepKind::Tool, "send"));
    assert_eq!(steps[1].state, StepState::Started);
    // A started step may get its result; a result is written once.
    journal
        .record_result(StepId::new(task, 1), StepKind::Tool, "send", b"sent".to_vec())
        .await
        .unwrap();
    let again = journal
        .record_result(StepId::new(task, 1), StepKind::Tool, "send", b"sent".to_vec())
        .await;
    assert!(matches!(again, Err(JournalError::StepRecorded { step: 1, .. })));

    journal
        .finish(task, TaskOutcome::ok(b"done".to_vec()), Some(b"memory".to_vec()))
        .await
        .unwrap();
    assert!(matches!(
        journal.finish(task, TaskOutcome::ok(vec![]), None).await,
        Err(JournalError::AlreadyFinished(t)) if t == task
    ));
    assert!(journal.unfinished("a").await.unwrap().is_empty());
    assert_eq!(journal.snapshot("a").await.unwrap().as_deref(), Some(&b"memory"[..]));
    let outcome = journal.result(task, Duration::from_secs(1)).await.unwrap();
    assert!(outcome.ok);
    assert_eq!(outcome.result, b"done");
    assert!(matches!(
        journal.task(TaskId(999)).await,
        Err(JournalError::NoSuchTask(TaskId(999)))
    ));
}

async fn concurrent_appends_share_commits_and_get_unique_ids(store: Fixture) {
    let journal = store.open().await;
    let accepts = (0..1000).map(|i| {
        let journal = journal.clone();
        tokio::spawn(async move { journal.accept(&format!("agent-{}", i % 10), vec![1; 100]).await })
    });
    let mut ids: Vec<u64> = Vec::new();
    for accept in accepts {
        ids.push(accept.await.unwrap().unwrap().0);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
    assert_eq!(journal.counts().await.unwrap(), (1000, 1000));
    assert_eq!(journal.unfinished("agent-3").await.unwrap().len(), 100);
}

async fn a_result_is_waited_for_and_a_missing_one_times_out(store: Fixture) {
    let journal = store.open().await;
    let task = journal.accept("a", vec![]).await.unwrap();
    assert!(matches!(
        journal.result(task, Duration::from_millis(50)).await,
        Err(JournalError::Timeout(t)) if t == task
    ));
    let waiter = {
        let journal = journal.clone();
        tokio::spawn(async move { journal.result(task, Duration::from_secs(10)).await })
    };
    journal
        .finish(task, TaskOutcome::failed(b"no".to_vec()), None)
        .await
        .unwrap();
    let outcome = waiter.await.unwrap().unwrap();
    assert!(!outcome.ok);
}

async fn a_question_keeps_its_first_deadline_and_is_answered_from_another_handle(store: Fixture) {
    let journal = store.open().await;
    let task = journal.accept("a", vec![]).await.unwrap();
    let step = StepId::new(task, 2);
    let first = journal
        .ask(step, "a", "Ship it?", Duration::from_secs(60))
        .await
        .unwrap();
    let again = journal
        .ask(step, "a", "Ship it?", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(again.deadline_ms, first.deadline_ms);
    assert_eq!(journal.questions().await.unwrap().len(), 1);

    let other = store.open().await;
    let waiter = {
        let journal = journal.clone();
        tokio::spawn(async move { journal.wait_answer(step, first.deadline_ms).await })
    };
    other.answer(step, "yes").await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().as_deref(), Some("yes"));
    // The turn records the answer as its step: the question is gone.
    journal
        .record_result(step, StepKind::Human, "ask_human", b"yes".to_vec())
        .await
        .unwrap();
    assert!(journal.questions().await.unwrap().is_empty());
    assert!(matches!(
        other.answer(step, "again").await,
        Err(JournalError::NoSuchQuestion(_))
    ));
}

async fn a_question_past_its_deadline_has_no_answer(store: Fixture) {
    let journal = store.open().await;
    let task = journal.accept("a", vec![]).await.unwrap();
    let step = StepId::new(task, 0);
    let question = journal.ask(step, "a", "?", Duration::ZERO).await.unwrap();
    assert_eq!(journal.wait_answer(step, question.deadline_ms).await.unwrap(), None);
}

async fn retention_prunes_finished_tasks_only(store: Fixture) {
    let journal = store.open().await;
    let mut finished = Vec::new();
    for _ in 0..5 {
        let task = journal.accept("a", vec![]).await.unwrap();
        journal
            .record_result(StepId::new(task, 0), StepKind::Clock, "now", vec![1])
            .await
            .unwrap();
        journal.finish(task, TaskOutcome::ok(vec![]), None).await.unwrap();
        finished.push(task);
    }
    let open = journal.accept("a", vec![]).await.unwrap();
    assert_eq!(journal.prune(Retention::keep_last(2)).await.unwrap(), 3);
    for gone in &finished[..3] {
        assert!(matches!(journal.task(*gone).await, Err(JournalError::NoSuchTask(_))));
        assert!(journal.steps(*gone).await.unwrap().is_empty());
    }
    assert!(journal.task(finished[3]).await.is_ok());
    assert_eq!(journal.prune(Retention::older_than(Duration::ZERO)).await.unwrap(), 2);
    assert_eq!(journal.unfinished("a").await.unwrap()[0].id, open);
    assert_eq!(journal.counts().await.unwrap(), (1, 1));
}

async fn retention_runs_by_itself_until_its_guard_is_dropped(store: Fixture) {
    let journal = store.open().await;
    let guard = journal.retain(Retention::keep_last(1), Duration::from_millis(5));
    for _ in 0..3 {
        let task = journal.accept("a", vec![]).await.unwrap();
        journal.finish(task, TaskOutcome::ok(vec![]), None).await.unwrap();
    }
    let open = journal.accept("a", vec![]).await.unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while journal.counts().await.unwrap() != (2, 1) {
        tick.tick().await;
    }
    drop(guard);
    // Stopped: nothing more is pruned.
    let task = journal.accept("a", vec![]).await.unwrap();
    journal.finish(task, TaskOutcome::ok(vec![]), None).await.unwrap();
    journal.finish(open, TaskOutcome::ok(vec![]), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(journal.counts().await.unwrap(), (3, 0));
}

async fn a_replaced_incarnation_cannot_write(store: Fixture) {
    let journal = store.open().await;
    let task = journal.accept("a", vec![]).await.unwrap();
    let first = journal.claim("a").await.unwrap();
    first
        .record_result(StepId::new(task, 0), StepKind::Model, "m", vec![1])
        .await
        .unwrap();
    // The agent restarts (here or in another process): its new incarnation claims it.
    let second = store.open().await.claim("a").await.unwrap();
    assert!(second.fence().unwrap().epoch > first.fence().unwrap().epoch);
    let late = first
        .record_result(StepId::new(task, 1), StepKind::Tool, "t", vec![2])
        .await;
    assert!(matches!(late, Err(JournalError::Fenced { .. })), "{late:?}");
    let late = first.finish(task, TaskOutcome::ok(vec![]), None).await;
    assert!(matches!(late, Err(JournalError::Fenced { .. })), "{late:?}");
    assert!(matches!(
        first.ask(StepId::new(task, 1), "a", "?", Duration::from_secs(1)).await,
        Err(JournalError::Fenced { .. })
    ));
    assert_eq!(journal.steps(task).await.unwrap().len(), 1);
    second
        .record_result(StepId::new(task, 1), StepKind::Tool, "t", vec![3])
        .await
        .unwrap();
    second.finish(task, TaskOutcome::ok(vec![]), None).await.unwrap();
    // Another agent's claims fence nothing of this one.
    let other = journal.claim("b").await.unwrap();
    let task_b = journal.accept("b", vec![]).await.unwrap();
    other
        .record_result(StepId::new(task_b, 0), StepKind::Model, "m", vec![])
        .await
        .unwrap();
}

async fn bad_input_is_refused_with_a_typed_error(store: Fixture) {
    let journal = store.open().await;
    assert!(matches!(
        journal.accept("", vec![]).await,
        Err(JournalError::Invalid(_))
    ));
    let huge = vec![0; warden_durable::MAX_RECORD_BYTES];
    assert!(matches!(journal.accept("a", huge).await, Err(JournalError::Invalid(_))));
    assert!(matches!(
        journal
            .record_result(StepId::new(TaskId(42), 0), StepKind::Model, "m", vec![])
            .await,
        Err(JournalError::NoSuchTask(TaskId(42)))
    ));
}

/// Every operation on a damaged file answers `Ok` or a typed error; none panics.
async fn exercise(path: &std::path::Path) -> Result<(), JournalError> {
    let journal = Journal::open(path)?;
    for entry in journal.tasks(None, 1000).await? {
        let _ = journal.steps(entry.id).await;
    }
    let _ = journal.unfinished("a").await;
    let _ = journal.questions().await;
    let _ = journal.snapshot("a").await;
    let task = journal.accept("a", b"after".to_vec()).await?;
    journal.finish(task, TaskOutcome::ok(vec![]), None).await?;
    Ok(())
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("journal.redb").join("nested");
    std::fs::write(dir.path().join("journal.redb"), b"a file").unwrap();
    assert!(matches!(Journal::open(not_a_dir), Err(JournalError::Open { .. })));
    // A store this process holds alone is refused to anyone else, typed.
    let held = dir.path().join("held.redb");
    let _holder = Journal::open(&held).unwrap();
    assert!(matches!(Journal::open_shared(&held), Err(JournalError::Open { .. })));
    assert!(matches!(Journal::open(&held), Err(JournalError::Open { .. })));
    let refused = Journal::open_location("postgres://nobody@127.0.0.1:notaport/none").await;
    assert!(matches!(refused, Err(JournalError::Open { .. })), "{refused:?}");
}

/// A store is made whole under another name and then linked into place, so a process killed
/// while creating it leaves no half-made file behind (only its staging file, which is
/// ignored): the next start creates the store as if for the first time.
#[tokio::test]
async fn a_creation_cut_short_leaves_nothing_that_blocks_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.redb");
    std::fs::write(dir.path().join("journal.redb.creating-1"), b"half").unwrap();
    let journal = Journal::open(&path).unwrap();
    let task = journal.accept("a", b"t".to_vec()).await.unwrap();
    drop(journal);
    let journal = Journal::open_shared(&path).unwrap();
    assert_eq!(journal.task(task).await.unwrap().task, b"t");
    let staging: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains(&format!("creating-{}", std::process::id()))
        })
        .collect();
    assert!(staging.is_empty(), "this process's staging file is removed");
}

#[tokio::test]
async fn truncated_and_corrupted_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.redb");
    {
        let journal = Journal::open(&path).unwrap();
        for i in 0..50u8 {
            let task = journal.accept("a", vec![i; 300]).await.unwrap();
            journal
                .record_result(StepId::new(task, 0), StepKind::Model, "m", vec![i; 500])
                .await
                .unwrap();
            if i % 2 == 0 {
                journal
                    .finish(task, TaskOutcome::ok(vec![i]), Some(vec![i; 64]))
                    .await
                    .unwrap();
            }
        }
    }
    let original = std::fs::read(&path).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut outcomes = (0, 0);
    for round in 0..60 {
        let damaged_path = dir.path().join(format!("damaged-{round}.redb"));
        let mut bytes = original.clone();
        if round % 3 == 0 {
            bytes.truncate(rng.usize(..bytes.len()));
        } else {
            for _ in 0..rng.usize(1..64) {
                let at = rng.usize(..bytes.len());
                bytes[at] ^= rng.u8(1..);
            }
        }
        std::fs::write(&damaged_path, &bytes).unwrap();
        match exercise(&damaged_path).await {
            Ok(()) => outcomes.0 += 1,
            Err(JournalError::Open { .. } | JournalError::Corrupt { .. } | JournalError::Store(_)) => outcomes.1 += 1,
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }
    assert_eq!(outcomes.0 + outcomes.1, 60);
}

/// A record damaged inside PostgreSQL (a bad disk, a hand edit) fails its checksum: a typed
/// error naming the task, and the other tasks still read.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_postgres_record_is_a_typed_error_naming_its_task() {
    let Some(store) = Fixture::postgres().await else {
        return;
    };
    let journal = store.open().await;
    let good = journal.accept("a", b"good".to_vec()).await.unwrap();
    let bad = journal.accept("a", b"bad".to_vec()).await.unwrap();
    journal
        .record_result(StepId::new(bad, 0), StepKind::Model, "m", b"result".to_vec())
        .await
        .unwrap();
    let db = sqlx::PgPool::connect(&store.location).await.unwrap();
    sqlx::query("UPDATE warden_steps SET record = overlay(record placing '\\xff'::bytea from 8 for 1) WHERE task = $1")
        .bind(i64::try_from(bad.0).unwrap())
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE warden_tasks SET record = substring(record from 1 for 6) WHERE id = $1")
        .bind(i64::try_from(bad.0).unwrap())
        .execute(&db)
        .await
        .unwrap();
    let step = journal.steps(bad).await.unwrap_err();
    assert!(
        matches!(&step, JournalError::Corrupt { what, .. } if what == &format!("task {bad} step 0")),
        "{step}"
    );
    let task = journal.task(bad).await.unwrap_err();
    assert!(
        matches!(&task, JournalError::Corrupt { what, .. } if what == &format!("task {bad}")),
        "{task}"
    );
    assert_eq!(journal.task(good).await.unwrap().task, b"good");
}
