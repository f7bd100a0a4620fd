//! Observers run in a task of their own, fed through a bounded channel (issue
//! 19 point 4): an observer that blocks stalls no restart and no API answer,
//! what its channel cannot hold is dropped and counted, and calls that change
//! children still return after the observer has seen what they caused.

#[path = "support/probe.rs"]
mod probe;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use probe::{Control, EventLog, ProbeMsg, cell, ping, probe, tell};
use tokio::sync::oneshot;
use warden::supervisor::{Supervisor, SupervisorEvent};

/// A deadline for a broken test, not a measure of time.
const HUNG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_blocking_observer_stalls_no_restart_and_no_answer_and_its_overflow_is_counted() {
    let control = Control::new();
    let blocking = Arc::new(AtomicBool::new(false));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (blocked_tx, blocked) = oneshot::channel::<()>();
    let mut blocked = Some(blocked);
    let observer = {
        let blocking = blocking.clone();
        let released = Mutex::new(released);
        let blocked_tx = Mutex::new(Some(blocked_tx));
        move |_: &SupervisorEvent| {
            if blocking.load(Ordering::SeqCst) {
                if let Some(tx) = blocked_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                // Blocks its thread until released (or the sender is dropped).
                let _ = released.lock().unwrap().recv();
            }
        }
    };
    let root = Supervisor::builder("root")
        .intensity(100, Duration::from_secs(3600))
        .observer_capacity(4)
        .observer(observer)
        .child(probe("a", &control))
        .spawn()
        .await
        .unwrap();
    assert_eq!(root.dropped_events().await.unwrap(), 0);
    blocking.store(true, Ordering::SeqCst);

    // Each crash is three events (down, restarting, start): one held by the
    // blocked observer, four queued, the rest dropped.
    for _ in 0..3 {
        let started = control.started("a");
        tell(&cell(&root, "a").await, ProbeMsg::Panic);
        tokio::time::timeout(HUNG, started.notified())
            .await
            .expect("the restart happened while the observer was blocked");
        if let Some(blocked) = blocked.take() {
            // From here on the observer holds one event and takes no other.
            blocked.await.unwrap();
        }
    }

    let children = tokio::time::timeout(HUNG, root.which_children())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ping(children[0].state.actor().unwrap()).await, Some(3));
    assert_eq!(children[0].restart_count, 3);
    assert_eq!(root.dropped_events().await.unwrap(), 9 - 1 - 4);

    drop(release);
    tokio::time::timeout(HUNG, root.stop()).await.unwrap();
}

#[tokio::test]
async fn a_call_that_changes_children_returns_after_the_observer_saw_its_events() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .child(probe("a", &control))
        .spawn()
        .await
        .unwrap();
    assert_eq!(log.lines(), ["start a"]);

    root.start_child(probe("b", &control)).await.unwrap();
    assert_eq!(log.lines(), ["start a", "start b"]);
    root.terminate_child("a").await.unwrap();
    assert_eq!(log.lines(), ["start a", "start b", "down a shutdown"]);
    root.restart_child("a").await.unwrap();
    assert_eq!(log.lines(), ["start a", "start b", "down a shutdown", "start a"]);

    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a shutdown",
            "start a",
            "down b shutdown",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn an_inline_observer_sees_each_event_as_it_happens_and_its_panics_are_contained() {
    let control = Control::new();
    let log = EventLog::new();
    let record = log.observer();
    let panicked = Arc::new(AtomicBool::new(false));
    let flag = panicked.clone();
    let root = Supervisor::builder("root")
        .inline_observer(move |event| {
            record(event);
            if matches!(event, SupervisorEvent::ChildExited { .. }) && !flag.swap(true, Ordering::SeqCst) {
                panic!("an inline observer that panics once");
            }
        })
        .child(probe("a", &control))
        .spawn()
        .await
        .unwrap();
    // Inline: seen before the call returns, with no task in between.
    assert_eq!(log.lines(), ["start a"]);
    root.terminate_child("a").await.unwrap();
    assert!(panicked.load(Ordering::SeqCst));
    // The supervisor went on after the observer's panic.
    root.restart_child("a").await.unwrap();
    assert_eq!(log.lines(), ["start a", "down a shutdown", "start a"]);
    assert_eq!(root.dropped_events().await.unwrap(), 0);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a shutdown",
            "start a",
            "down a shutdown",
            "stopped root"
        ]
    );
}
