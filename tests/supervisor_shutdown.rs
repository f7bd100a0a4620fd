//! Shutdown (SEMANTICS.md, items 28–30): `Shutdown::Timeout(d)` asks a child to
//! stop and kills it after `d`; `BrutalKill` kills at once; `Infinity` waits as
//! long as the child takes; `terminate_child` uses the same spec; a supervisor
//! stops its children one at a time in reverse start order, depth first through
//! nested supervisors, and a child supervisor that overruns its own timeout is
//! killed with its children. A child that crashes as it is being stopped keeps
//! its own exit reason (item 32; ignored, see the `BUG` note). Timing is
//! measured on a paused clock.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::{Control, EventLog, ProbeMsg, probe, tell};
use tokio::time::Instant;
use warden::supervisor::{ChildSpec, Shutdown, Supervisor};

async fn root(log: &EventLog, children: Vec<ChildSpec>) -> Supervisor {
    Supervisor::builder("root")
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
        .expect("supervisor starts")
}

/// Stops `sup` and says how long that took on the (paused) clock.
async fn timed_stop(sup: &Supervisor) -> Duration {
    let t = Instant::now();
    sup.stop().await;
    t.elapsed()
}

#[tokio::test(start_paused = true)]
async fn timeout_shutdown_kills_a_child_that_does_not_stop_in_time() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("slow", Duration::from_secs(30));
    let timeout = Shutdown::Timeout(Duration::from_secs(1));
    let root = root(
        &log,
        vec![
            probe("quick", &control).shutdown(timeout),
            probe("slow", &control).shutdown(timeout),
        ],
    )
    .await;

    let took = timed_stop(&root).await;

    assert_eq!(
        log.lines(),
        [
            "start quick",
            "start slow",
            "down slow killed",
            "down quick shutdown",
            "stopped root"
        ]
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(2),
        "waited the timeout, then killed: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_shutdown_waits_for_a_child_that_stops_within_the_timeout() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("a", Duration::from_millis(500));
    let root = root(
        &log,
        vec![probe("a", &control).shutdown(Shutdown::Timeout(Duration::from_secs(1)))],
    )
    .await;

    let took = timed_stop(&root).await;

    assert_eq!(log.lines(), ["start a", "down a shutdown", "stopped root"]);
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn brutal_kill_kills_at_once() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("a", Duration::from_secs(30));
    let root = root(&log, vec![probe("a", &control).shutdown(Shutdown::BrutalKill)]).await;

    let took = timed_stop(&root).await;

    assert_eq!(log.lines(), ["start a", "down a killed", "stopped root"]);
    assert!(took < Duration::from_secs(1), "did not wait for the child: {took:?}");
}

#[tokio::test(start_paused = true)]
async fn infinity_shutdown_waits_as_long_as_the_child_takes() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("a", Duration::from_secs(600));
    let root = root(&log, vec![probe("a", &control).shutdown(Shutdown::Infinity)]).await;

    let took = timed_stop(&root).await;

    assert_eq!(log.lines(), ["start a", "down a shutdown", "stopped root"]);
    assert!(took >= Duration::from_secs(600), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn terminate_child_uses_the_childs_shutdown_spec() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("slow", Duration::from_secs(30));
    control.slow_stop("brutal", Duration::from_secs(30));
    let root = root(
        &log,
        vec![
            probe("slow", &control).shutdown(Shutdown::Timeout(Duration::from_secs(2))),
            probe("brutal", &control).shutdown(Shutdown::BrutalKill),
        ],
    )
    .await;

    let t = Instant::now();
    root.terminate_child("slow").await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
    root.terminate_child("brutal").await.unwrap();
    assert!(t.elapsed() - took < Duration::from_secs(1));

    assert_eq!(
        log.lines(),
        ["start slow", "start brutal", "down slow killed", "down brutal killed"]
    );
    let infos = root.which_children().await.unwrap();
    assert!(infos.iter().all(|c| c.state.otp_name() == "undefined"));
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_stops_its_children_last_first_one_at_a_time() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["c1", "c2", "c3", "c4", "c5"];
    // The later a child started, the longer it takes to stop: stopped together,
    // they would finish in start order.
    for (i, id) in ids.iter().enumerate() {
        control.slow_stop(id, Duration::from_secs(i as u64 + 1));
    }
    let root = root(
        &log,
        ids.iter()
            .map(|id| probe(id, &control).shutdown(Shutdown::Timeout(Duration::from_secs(10))))
            .collect(),
    )
    .await;

    let took = timed_stop(&root).await;

    assert_eq!(
        log.lines(),
        [
            "start c1",
            "start c2",
            "start c3",
            "start c4",
            "start c5",
            "down c5 shutdown",
            "down c4 shutdown",
            "down c3 shutdown",
            "down c2 shutdown",
            "down c1 shutdown",
            "stopped root",
        ]
    );
    assert!(
        took >= Duration::from_secs(15),
        "each stop finished before the next began: {took:?}"
    );
}

#[tokio::test]
async fn stopping_a_tree_goes_depth_first_in_reverse_start_order() {
    let control = Control::new();
    let log = EventLog::new();
    let inner = Supervisor::builder("inner")
        .child(probe("y", &control))
        .child(probe("z", &control))
        .into_child();
    let outer = Supervisor::builder("outer")
        .child(probe("x", &control))
        .child(inner)
        .child(probe("w", &control))
        .into_child();
    let root = root(&log, vec![probe("a", &control), outer, probe("b", &control)]).await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start x",
            "start y",
            "start z",
            "start inner",
            "start w",
            "start outer",
            "start b",
        ]
    );
    log.clear();

    root.stop().await;

    assert_eq!(
        log.lines(),
        [
            "down b shutdown",
            "down w shutdown",
            "down z shutdown",
            "down y shutdown",
            "stopped inner",
            "down inner shutdown",
            "down x shutdown",
            "stopped outer",
            "down outer shutdown",
            "down a shutdown",
            "stopped root",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_supervisor_that_overruns_its_shutdown_timeout_is_killed_with_its_children() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("x", Duration::from_secs(30));
    let sub = Supervisor::builder("sub")
        .child(probe("x", &control).shutdown(Shutdown::Timeout(Duration::from_secs(10))))
        .into_child()
        .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
    let root = root(&log, vec![sub]).await;
    let sub = root.which_children().await.unwrap()[0].supervisor().unwrap();
    let x = sub.which_children().await.unwrap()[0].state.actor().unwrap().clone();

    let took = timed_stop(&root).await;
    x.wait(None).await.unwrap();

    // `sub` was still waiting for `x` when its own time ran out.
    assert_eq!(log.lines(), ["start x", "start sub", "down sub killed", "stopped root"]);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn stopping_a_stopped_supervisor_returns_at_once() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(&log, vec![probe("a", &control)]).await;

    root.stop().await;
    root.stop().await;
    root.wait().await;

    assert!(!root.is_alive());
    assert_eq!(log.lines(), ["start a", "down a shutdown", "stopped root"]);
}

/// SEMANTICS 32: a child that exits on its own while being shut down is
/// reported with its own exit reason.
#[tokio::test]
#[ignore = "known limitation: ractor hands a child's exit reason only to the supervisor's event port, which is \
            not read while a shutdown is in progress, so the race is reported as `shutdown` (see Supervisor::stop)"]
async fn a_child_that_crashes_as_its_supervisor_stops_is_reported_with_its_own_reason() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(&log, vec![probe("a", &control), probe("c", &control)]).await;
    let c = root.which_children().await.unwrap()[1].state.actor().unwrap().clone();

    // `c` panics first; the stop reaches the supervisor before `c`'s exit does
    // (ractor hands a stop over before supervision events).
    tell(&c, ProbeMsg::Panic);
    root.stop().await;

    assert_eq!(
        log.lines(),
        ["start a", "start c", "down c boom", "down a shutdown", "stopped root"]
    );
}
