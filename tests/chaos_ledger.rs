//! The work ledger under chaos: tasks submitted through `request` while a chaos
//! monkey kills workers each get exactly one completed outcome.

#[path = "support/ledger.rs"]
mod ledger;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ledger::{Ledger, Submitters};
use warden::chaos::{Baseline, ChaosAction, ChaosMonkey, ChaosWatch, Invariants, Schedule};
use warden::supervisor::Supervisor;

async fn run_ledger(seed: u64, actions: &[ChaosAction], work: Duration) {
    const WORKERS: usize = 50;
    const TASKS: u64 = 20_000;
    let ledger = Ledger::new(TASKS as usize, WORKERS);
    let watch = ChaosWatch::new();
    let root = Supervisor::builder("root")
        .observer(watch.observer())
        .escalation_handler(watch.root_handler())
        .child(ledger::pool(&ledger, work, 500.0))
        .spawn()
        .await
        .unwrap();
    let baseline = Baseline::capture(&root).await.unwrap();

    let monkey = ChaosMonkey::new(&root)
        .seed(seed)
        .target("root/pool/*".parse().unwrap())
        .actions(actions.iter().copied())
        .schedule(Schedule::Rate(500.0))
        .start();
    ledger::submit_all(
        ledger.clone(),
        Submitters {
            concurrency: 64,
            first: 0,
            tasks: TASKS,
            rate: None,
            deadline: Duration::from_secs(30),
            max_attempts: 10_000,
        },
    )
    .await;
    let chaos = monkey.stop().await;

    println!(
        "seed {seed}: {} kills/stops, {} retried, {} worker down, {} not delivered, {} replayed",
        chaos.effective().count(),
        ledger.retried.load(Ordering::SeqCst),
        ledger.worker_down.load(Ordering::SeqCst),
        ledger.not_delivered.load(Ordering::SeqCst),
        ledger.replayed.load(Ordering::SeqCst),
    );
    let audit = ledger.audit(TASKS);
    assert!(audit.is_clean(), "seed {seed}: {audit:?}");
    assert_eq!(ledger.completed.load(Ordering::SeqCst), TASKS);
    assert_eq!(
        ledger.timed_out.load(Ordering::SeqCst),
        0,
        "a request hung until its deadline"
    );
    assert_eq!(ledger.gave_up.load(Ordering::SeqCst), 0);
    assert!(chaos.effective().count() > 0, "the monkey never acted:\n{chaos}");

    let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
    report.assert_ok();
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_completes_exactly_once_while_workers_are_killed() {
    run_ledger(7, &[ChaosAction::Kill], Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_completes_exactly_once_while_workers_are_stopped_with_errors() {
    run_ledger(
        11,
        &[ChaosAction::Kill, ChaosAction::StopWithError],
        Duration::from_micros(200),
    )
    .await;
}
