//! The journal's store, through its public API: what is written stays written, across a
//! reopen; ids are unique under concurrent appends; questions keep their first deadline;
//! retention removes only finished tasks; a damaged file is a typed error, never a panic.

use std::time::Duration;

use warden_durable::{Journal, JournalError, Retention, StepId, StepKind, StepRecord, StepState, TaskId, TaskOutcome};

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.redb");
    (dir, path)
}

#[tokio::test]
async fn a_task_its_steps_and_its_outcome_survive_a_reopen() {
    let (_dir, path) = store();
    let task = {
        let journal = Journal::open(&path).unwrap();
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
    let journal = Journal::open(&path).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits_and_get_unique_ids() {
    let (_dir, path) = store();
    let journal = Journal::open(&path).unwrap();
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

#[tokio::test]
async fn a_result_is_waited_for_and_a_missing_one_times_out() {
    let (_dir, path) = store();
    let journal = Journal::open(&path).unwrap();
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

#[tokio::test]
async fn a_question_keeps_its_first_deadline_and_is_answered_from_another_handle() {
    let (_dir, path) = store();
    let journal = Journal::open(&path).unwrap();
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

    let other = Journal::open(&path).unwrap();
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

#[tokio::test]
async fn a_question_past_its_deadline_has_no_answer() {
    let (_dir, path) = store();
    let journal = Journal::open(&path).unwrap();
    let task = journal.accept("a", vec![]).await.unwrap();
    let step = StepId::new(task, 0);
    let question = journal.ask(step, "a", "?", Duration::ZERO).await.unwrap();
    assert_eq!(journal.wait_answer(step, question.deadline_ms).await.unwrap(), None);
}

#[tokio::test]
async fn retention_prunes_finished_tasks_only() {
    let (_dir, path) = store();
    let journal = Journal::open(&path).unwrap();
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

#[tokio::test]
async fn bad_input_is_refused_with_a_typed_error() {
    let (_dir, path) = store();
    let journal = Journal::open(&path).unwrap();
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
    let not_a_dir = path.join("nested").join("journal.redb");
    assert!(matches!(Journal::open(not_a_dir), Err(JournalError::Open { .. })));
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
async fn truncated_and_corrupted_files_give_typed_errors() {
    let (dir, path) = store();
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
