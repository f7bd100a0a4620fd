//! A sequence of stops made in place (a give-up, a group restart) keeps each
//! child's own shutdown timeout (SEMANTICS 28–29) while it shares one timer
//! across the sequence: a slow child is killed when its own timeout runs out,
//! a later child with a longer timeout is waited for that long, and one with a
//! shorter timeout than the child before it is killed on time. Children that
//! stop at once need no timer at all; a slow one after them is still killed on
//! its own timeout. A child with no timeout (`Infinity`) is waited for as long
//! as it takes and the next one still gets its own timer; a child that a kill
//! does not end is given up on after the kill grace and the stops go on; a
//! supervisor killed in the middle of its stops ends, and so do the children it
//! had not asked yet.

#[path = "support/blocker.rs"]
mod blocker;
#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use blocker::{block, blocker};
use probe::{Control, EventLog, cell, probe};
use tokio::time::Instant;
use warden::supervisor::{ChildSpec, Shutdown, Strategy, Supervisor};

fn secs(n: u64) -> Shutdown {
    Shutdown::Timeout(Duration::from_secs(n))
}

/// `c1` (1 s, too slow), `c2` (20 s, quick), `c3` (3 s, too slow), then `x`,
/// the child the tests kill. Stopped last first: `c3` is killed after 3 s,
/// `c2` stops at once, `c1` is killed 1 s later: 4 s in all.
fn children(control: &std::sync::Arc<Control>) -> Vec<ChildSpec> {
    control.slow_stop("c1", Duration::from_secs(30));
    control.slow_stop("c3", Duration::from_secs(30));
    vec![
        probe("c1", control).shutdown(secs(1)),
        probe("c2", control).shutdown(secs(20)),
        probe("c3", control).shutdown(secs(3)),
        probe("x", control),
    ]
}

const STOPS: [&str; 3] = ["down c3 killed", "down c2 shutdown", "down c1 killed"];

/// Starts `root` over the children `children` makes (one of them `x`), then
/// kills `x` and returns the trace from there on and the clock when `x` was
/// killed.
async fn kill_x(
    builder: warden::supervisor::SupervisorBuilder,
    children: impl FnOnce(&std::sync::Arc<Control>) -> Vec<ChildSpec>,
) -> (Supervisor, EventLog, Instant) {
    let control = Control::new();
    let log = EventLog::new();
    let root = builder
        .observer(log.observer())
        .children(children(&control))
        .spawn()
        .await
        .unwrap();
    let x = cell(&root, "x").await;
    log.clear();
    let t = Instant::now();
    x.kill();
    (root, log, t)
}

fn assert_four_seconds(took: Duration) {
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(5),
        "3 s for c3, nothing for c2, 1 s for c1: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_give_up_stops_the_children_in_turn_each_within_its_own_timeout() {
    let (root, log, t) = kill_x(
        Supervisor::builder("root").intensity(0, Duration::from_secs(5)),
        children,
    )
    .await;
    root.wait().await;
    assert_four_seconds(t.elapsed());

    let mut expected = vec!["down x killed", "gave_up root"];
    expected.extend(STOPS);
    expected.extend(["escalated root root", "stopped root"]);
    assert_eq!(log.lines(), expected);
}

#[tokio::test(start_paused = true)]
async fn a_group_restart_stops_the_siblings_in_turn_each_within_its_own_timeout() {
    let builder = Supervisor::builder("root")
        .strategy(Strategy::OneForAll)
        .intensity(5, Duration::from_secs(60));
    let (root, log, t) = kill_x(builder, children).await;
    log.wait_line("start x").await;
    assert_four_seconds(t.elapsed());

    let mut expected = vec!["down x killed"];
    expected.extend(STOPS);
    expected.extend(["start c1", "start c2", "start c3", "start x"]);
    assert_eq!(log.lines(), expected);
    root.stop().await;
}

/// `c1` (`timeout`, too slow) under two quick children, then `x`, on a supervisor
/// that gives up when `x` is killed: the quick children stop before the
/// supervisor's thread runs out of other work, so no timer is set for them,
/// and the timer set for `c1` after them still kills it when its own
/// timeout is up. Returns the trace from the kill on and the time the give-up took.
async fn give_up_with_a_slow_child_last_to_stop(timeout: Duration) -> (Vec<String>, Duration) {
    let builder = Supervisor::builder("root").intensity(0, Duration::from_secs(5));
    let (root, log, t) = kill_x(builder, |control| {
        control.slow_stop("c1", Duration::from_secs(30));
        vec![
            probe("c1", control).shutdown(Shutdown::Timeout(timeout)),
            probe("c2", control).shutdown(secs(20)),
            probe("c3", control).shutdown(secs(20)),
            probe("x", control),
        ]
    })
    .await;
    root.wait().await;
    (log.lines(), t.elapsed())
}

const SLOW_LAST: [&str; 7] = [
    "down x killed",
    "gave_up root",
    "down c3 shutdown",
    "down c2 shutdown",
    "down c1 killed",
    "escalated root root",
    "stopped root",
];

#[tokio::test(start_paused = true)]
async fn a_slow_child_stopped_after_quick_ones_is_killed_on_its_own_timeout() {
    let (lines, took) = give_up_with_a_slow_child_last_to_stop(Duration::from_secs(2)).await;
    assert_eq!(lines, SLOW_LAST);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "nothing for c3 and c2, 2 s for c1: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_child_stopped_after_quick_ones_is_killed_on_a_multi_thread_runtime() {
    let timeout = Duration::from_millis(100);
    let (lines, took) = give_up_with_a_slow_child_last_to_stop(timeout).await;
    assert_eq!(lines, SLOW_LAST);
    assert!(took >= timeout, "c1 had its {timeout:?}: {took:?}");
}

/// `c1` (1 s, too slow), `c2` (`Infinity`, takes 3 s), `c3` (`BrutalKill`),
/// then `x`: a give-up kills `c3` at once, waits the 3 s `c2` takes, and still
/// kills `c1` when its own second is up (a timer set only after `c2`).
#[tokio::test(start_paused = true)]
async fn a_child_without_a_timeout_is_waited_for_and_the_next_one_keeps_its_own() {
    let builder = Supervisor::builder("root").intensity(0, Duration::from_secs(5));
    let (root, log, t) = kill_x(builder, |control| {
        control.slow_stop("c1", Duration::from_secs(30));
        control.slow_stop("c2", Duration::from_secs(3));
        vec![
            probe("c1", control).shutdown(secs(1)),
            probe("c2", control).shutdown(Shutdown::Infinity),
            probe("c3", control).shutdown(Shutdown::BrutalKill),
            probe("x", control),
        ]
    })
    .await;
    root.wait().await;
    assert_four_seconds(t.elapsed());
    assert_eq!(
        log.lines(),
        [
            "down x killed",
            "gave_up root",
            "down c3 killed",
            "down c2 shutdown",
            "down c1 killed",
            "escalated root root",
            "stopped root",
        ]
    );
}

/// A deadline for a broken test (a stop that waited for the blocked child),
/// not a measure of time.
const HUNG: Duration = Duration::from_secs(60);

/// `c1`, then `blocker` (100 ms timeout) blocked in synchronous code, then
/// `x`: the give-up kills the blocker when its timeout is up, gives up on it
/// after the kill grace, and goes on to stop `c1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_child_a_kill_does_not_end_is_given_up_on_and_the_stops_go_on() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .intensity(0, Duration::from_secs(5))
        .kill_grace(Duration::from_millis(100))
        .observer(log.observer())
        .child(probe("c1", &control))
        .child(blocker("blocker").shutdown(Shutdown::Timeout(Duration::from_millis(100))))
        .child(probe("x", &control))
        .spawn()
        .await
        .unwrap();
    let blocked = cell(&root, "blocker").await;
    let release = block(&blocked).await;
    log.clear();
    cell(&root, "x").await.kill();

    tokio::time::timeout(HUNG, root.wait())
        .await
        .expect("the give-up ended while the blocker was still blocked");
    assert_eq!(
        log.lines(),
        [
            "down x killed",
            "gave_up root",
            "abandoned blocker",
            "down blocker killed",
            "down c1 shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
    release.send(()).expect("blocker is still blocked");
    blocked.wait(None).await.expect("its task ends once the code returns");
}

/// `c1`, then `c2` (slow to stop), then `x`: the supervisor is killed while
/// its give-up waits for `c2`. It ends, and `c1`, not yet asked to stop and
/// still linked to it, is ended with it.
#[tokio::test(start_paused = true)]
async fn a_supervisor_killed_in_the_middle_of_its_stops_ends_with_the_children_left() {
    let control = Control::new();
    control.slow_stop("c2", Duration::from_secs(30));
    let c2_stopping = control.stop_began("c2");
    let root = Supervisor::builder("root")
        .intensity(0, Duration::from_secs(5))
        .child(probe("c1", &control))
        .child(probe("c2", &control).shutdown(secs(20)))
        .child(probe("x", &control))
        .spawn()
        .await
        .unwrap();
    let c1 = cell(&root, "c1").await;
    cell(&root, "x").await.kill();
    c2_stopping.notified().await;

    root.kill();
    root.wait().await;
    c1.wait(None).await.expect("c1 ends with its supervisor");
    assert!(!root.is_alive());
}
