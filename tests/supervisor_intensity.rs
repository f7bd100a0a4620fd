//! Restart intensity (SEMANTICS.md, items 11–15): one restart more than `N`
//! within `T` and the supervisor stops its remaining children in reverse start
//! order and exits with reason `shutdown`; intensity 0 allows no restart; only
//! real restarts count (normal transient exits and temporary exits do not);
//! restarts older than the period stop counting (paused clock); a restart whose
//! start fails is tried again through the mailbox and every attempt counts.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::{Control, EventLog, ProbeMsg, cell as actor, probe, tell};
use tokio::time::advance;
use warden::supervisor::{ChildSpec, Restart, Supervisor};

async fn root(max_restarts: u32, period: Duration, log: &EventLog, children: Vec<ChildSpec>) -> Supervisor {
    Supervisor::builder("root")
        .intensity(max_restarts, period)
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
        .expect("supervisor starts")
}

/// Crashes `id` and waits for its restart (its `n`th start).
async fn crash_and_wait_restart(sup: &Supervisor, log: &EventLog, id: &str, n: usize) {
    tell(&actor(sup, id).await, ProbeMsg::Panic);
    log.wait_count(&format!("start {id}"), n).await;
}

#[tokio::test]
async fn one_restart_past_the_limit_stops_the_others_last_first_and_the_supervisor_exits_shutdown() {
    let control = Control::new();
    let log = EventLog::new();
    // `sub` is temporary, so that its parent records its exit reason and nothing more.
    let sub = Supervisor::builder("sub")
        .intensity(3, Duration::from_secs(60))
        .children(["a", "b", "c"].map(|id| probe(id, &control)))
        .into_child()
        .restart(Restart::Temporary);
    let root = root(10, Duration::from_secs(60), &log, vec![sub]).await;
    let sub = root.which_children().await.unwrap()[0].supervisor().unwrap();

    for n in 2..=4 {
        crash_and_wait_restart(&sub, &log, "b", n).await;
    }
    tell(&actor(&sub, "b").await, ProbeMsg::Panic);
    sub.wait().await;
    log.wait_line("escalated root sub").await;

    assert!(root.which_children().await.unwrap().is_empty());
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "start sub",
            "down b boom",
            "start b",
            "down b boom",
            "start b",
            "down b boom",
            "start b",
            // The fourth crash is not restarted.
            "down b boom",
            "gave_up sub",
            "down c shutdown",
            "down a shutdown",
            "stopped sub",
            "down sub shutdown",
            "escalated root sub",
        ]
    );
    assert_eq!(control.starts("b"), 4);
    root.stop().await;
}

#[tokio::test]
async fn a_root_that_gives_up_stops_its_children_last_first_and_stops() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(
        1,
        Duration::from_secs(60),
        &log,
        ["a", "b", "c"].map(|id| probe(id, &control)).into(),
    )
    .await;

    crash_and_wait_restart(&root, &log, "c", 2).await;
    tell(&actor(&root, "a").await, ProbeMsg::Fail);
    root.wait().await;

    assert!(!root.is_alive());
    assert!(
        root.which_children().await.is_err(),
        "a stopped supervisor answers noproc"
    );
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down c boom",
            "start c",
            "down a boom",
            "gave_up root",
            "down c shutdown",
            "down b shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test]
async fn intensity_zero_gives_up_on_the_first_crash() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(
        0,
        Duration::from_secs(5),
        &log,
        vec![probe("a", &control), probe("b", &control)],
    )
    .await;

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a boom",
            "gave_up root",
            "down b shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
    assert_eq!(control.starts("a"), 1);
}

#[tokio::test]
async fn exits_that_are_not_restarted_do_not_count_toward_intensity() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(
        1,
        Duration::from_secs(3600),
        &log,
        vec![probe("p", &control), probe("t", &control).restart(Restart::Transient)],
    )
    .await;

    for n in 1..=100 {
        tell(&actor(&root, "t").await, ProbeMsg::StopNormal);
        log.wait_count("down t normal", n).await;
        root.restart_child("t").await.unwrap();
    }
    for n in 1..=100 {
        let tmp = root
            .start_child(probe("tmp", &control).restart(Restart::Temporary))
            .await
            .unwrap();
        tell(&tmp, ProbeMsg::Panic);
        log.wait_count("down tmp boom", n).await;
    }
    assert!(root.is_alive());

    // The one restart allowed is still there to use...
    crash_and_wait_restart(&root, &log, "p", 2).await;
    assert!(root.is_alive());
    // ...and a second one is one too many.
    tell(&actor(&root, "p").await, ProbeMsg::Panic);
    root.wait().await;
    let lines = log.lines();
    assert_eq!(
        lines[lines.len() - 7..],
        [
            "down p boom",
            "start p",
            "down p boom",
            "gave_up root",
            "down t shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_older_than_the_period_stop_counting() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(1, Duration::from_secs(5), &log, vec![probe("a", &control)]).await;

    crash_and_wait_restart(&root, &log, "a", 2).await;
    advance(Duration::from_millis(5001)).await;
    // The first restart has left the window: this one is allowed.
    crash_and_wait_restart(&root, &log, "a", 3).await;
    advance(Duration::from_millis(4999)).await;
    // The second is still inside it: one too many.
    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a boom",
            "start a",
            "down a boom",
            "start a",
            "down a boom",
            "gave_up root",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_window_slides_so_restarts_leave_it_one_at_a_time() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(3, Duration::from_secs(5), &log, vec![probe("a", &control)]).await;

    // Restarts at t = 0, 1 and 2 s.
    crash_and_wait_restart(&root, &log, "a", 2).await;
    advance(Duration::from_secs(1)).await;
    crash_and_wait_restart(&root, &log, "a", 3).await;
    advance(Duration::from_secs(1)).await;
    crash_and_wait_restart(&root, &log, "a", 4).await;
    // At t = 5.5 s the restart at 0 has left the window, so one more fits.
    advance(Duration::from_millis(3500)).await;
    crash_and_wait_restart(&root, &log, "a", 5).await;
    // At t = 5.6 s the restarts at 1, 2 and 5.5 s are inside it: one too many.
    advance(Duration::from_millis(100)).await;
    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;

    let lines = log.lines();
    assert_eq!(lines.iter().filter(|l| *l == "start a").count(), 5);
    assert_eq!(
        lines[lines.len() - 4..],
        ["down a boom", "gave_up root", "escalated root root", "stopped root"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_exactly_one_period_old_still_counts() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(1, Duration::from_secs(5), &log, vec![probe("a", &control)]).await;

    crash_and_wait_restart(&root, &log, "a", 2).await;
    advance(Duration::from_secs(5)).await;
    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a boom",
            "start a",
            "down a boom",
            "gave_up root",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test]
async fn a_failing_restart_is_retried_and_every_attempt_counts_until_the_supervisor_gives_up() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(
        4,
        Duration::from_secs(60),
        &log,
        vec![probe("a", &control), probe("b", &control)],
    )
    .await;
    control.fail_next_starts("a", u32::MAX);

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a boom",
            // Restarts 1 to 4: each a failed attempt.
            "init_failed a",
            "init_failed a",
            "init_failed a",
            "init_failed a",
            // The fifth is one too many.
            "gave_up root",
            "down b shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test]
async fn failed_restart_attempts_use_up_the_intensity_budget() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(3, Duration::from_secs(60), &log, vec![probe("a", &control)]).await;
    control.fail_next_starts("a", 2);

    // Three restarts: two failed attempts, then one that starts.
    crash_and_wait_restart(&root, &log, "a", 2).await;
    let a = &root.which_children().await.unwrap()[0];
    assert!(a.state.is_running());
    assert_eq!(a.restart_count, 3);
    assert_eq!(
        log.lines(),
        ["start a", "down a boom", "init_failed a", "init_failed a", "start a"]
    );

    // So the next crash is one too many.
    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;
    assert_eq!(
        log.lines()[5..],
        ["down a boom", "gave_up root", "escalated root root", "stopped root"]
    );
}
