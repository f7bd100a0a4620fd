//! Shutdown (SEMANTICS.md, items 28–30): `Shutdown::Timeout(d)` asks a child to
//! stop and kills it after `d`; `BrutalKill` kills at once; `Infinity` waits as
//! long as the child takes; `terminate_child` uses the same spec; a supervisor
//! stops its children one at a time in reverse start order, depth first through
//! nested supervisors, and a child supervisor that overruns its own timeout is
//! killed with its children. A child that crashes as it is being stopped keeps
//! its own exit reason (item 32). A child whose thread is blocked does not
//! hold a shutdown up past the kill grace (issue 17 point 7). Timing is
//! measured on a paused clock.

#[path = "support/blocker.rs"]
mod blocker;
#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use blocker::{block, blocker};
use probe::OtpName;
use probe::{Control, EventLog, cell, probe};
use tokio::time::Instant;
use warden::supervisor::{CallError, CallTimeout, ChildError, ChildSpec, Shutdown, Supervisor};

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

/// SEMANTICS 32: a child that crashes while its supervisor stops it is
/// reported with its own reason, not `shutdown`.
#[tokio::test(start_paused = true)]
async fn a_child_that_crashes_as_it_is_being_stopped_is_reported_with_its_own_reason() {
    let control = Control::new();
    let log = EventLog::new();
    control.fail_on_stop("c");
    let root = root(&log, vec![probe("a", &control), probe("c", &control)]).await;

    root.stop().await;

    assert_eq!(
        log.lines(),
        ["start a", "start c", "down c boom", "down a shutdown", "stopped root"]
    );
}

/// SEMANTICS 32: a child that crashes while its supervisor is stopping a
/// sibling keeps its own reason, reported when its turn comes.
#[tokio::test(start_paused = true)]
async fn a_child_that_crashes_while_a_sibling_is_being_stopped_is_reported_with_its_own_reason() {
    let control = Control::new();
    let log = EventLog::new();
    control.panic_on_stop("c", "a");
    control.slow_stop("c", Duration::from_secs(1));
    let root = root(&log, vec![probe("a", &control), probe("c", &control)]).await;

    root.stop().await;

    assert_eq!(
        log.lines(),
        ["start a", "start c", "down c shutdown", "down a boom", "stopped root"]
    );
    assert_eq!(control.starts("a"), 1, "nothing is restarted during a shutdown");
}

/// SEMANTICS 32, one level down: a child supervisor stopped by its parent
/// reports its own children's reasons too.
#[tokio::test(start_paused = true)]
async fn a_child_supervisor_reports_its_childrens_own_reasons_as_it_is_stopped() {
    let control = Control::new();
    let log = EventLog::new();
    control.fail_on_stop("y");
    let sub = Supervisor::builder("sub")
        .child(probe("x", &control))
        .child(probe("y", &control))
        .into_child();
    let root = root(&log, vec![sub]).await;

    root.stop().await;

    assert_eq!(
        log.lines(),
        [
            "start x",
            "start y",
            "start sub",
            "down y boom",
            "down x shutdown",
            "stopped sub",
            "down sub shutdown",
            "stopped root"
        ]
    );
}

/// A root with one `Blocker` child (`Timeout(100ms)`, kill grace 100 ms), and
/// that child blocked: the sender releases it.
async fn root_with_a_blocked_child(log: &EventLog) -> (Supervisor, ractor::ActorCell, std::sync::mpsc::Sender<()>) {
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .kill_grace(Duration::from_millis(100))
        .child(blocker("blocker").shutdown(Shutdown::Timeout(Duration::from_millis(100))))
        .spawn()
        .await
        .expect("supervisor starts");
    let blocked = cell(&root, "blocker").await;
    let release = block(&blocked).await;
    (root, blocked, release)
}

/// A deadline for a broken test (the stop would wait for the release that
/// only comes after it), not a measure of time.
const HUNG: Duration = Duration::from_secs(60);

/// Issue 17 point 7: a child blocked in synchronous code made `stop` wait for
/// it, kill or not. Now the supervisor waits the kill grace, records it as
/// killed and goes on; its task ends once the code returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_child_blocking_its_thread_does_not_hold_up_the_shutdown() {
    let log = EventLog::new();
    let (root, blocker, release) = root_with_a_blocked_child(&log).await;

    tokio::time::timeout(HUNG, root.stop())
        .await
        .expect("stop returned while the child was still blocked");

    assert_eq!(
        log.lines(),
        [
            "start blocker",
            "abandoned blocker",
            "down blocker killed",
            "stopped root"
        ]
    );
    release.send(()).expect("blocker is still blocked");
    blocker.wait(None).await.expect("its task ends once the code returns");
}

/// The same bound when one child is stopped on request (`terminate_child`).
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn terminating_a_child_blocking_its_thread_is_bounded() {
    let log = EventLog::new();
    let (root, blocker, release) = root_with_a_blocked_child(&log).await;

    tokio::time::timeout(HUNG, root.terminate_child("blocker"))
        .await
        .expect("terminate_child returned while the child was still blocked")
        .unwrap();

    assert_eq!(
        log.lines(),
        ["start blocker", "abandoned blocker", "down blocker killed"]
    );
    assert_eq!(root.count_children().await.unwrap().active, 0);
    release.send(()).expect("blocker is still blocked");
    blocker.wait(None).await.unwrap();
    root.stop().await;
}

/// Issue 17 point 7: every API call has a variant with a deadline, answering
/// a typed timeout while the supervisor is busy (here: stopping a slow child).
#[tokio::test(start_paused = true)]
async fn calls_with_a_deadline_time_out_while_the_supervisor_is_busy() {
    let control = Control::new();
    let log = EventLog::new();
    control.slow_stop("slow", Duration::from_secs(30));
    let root = root(
        &log,
        vec![probe("slow", &control).shutdown(Shutdown::Timeout(Duration::from_secs(60)))],
    )
    .await;
    let began = control.stop_began("slow");
    let busy = root.clone();
    let terminating = tokio::spawn(async move { busy.terminate_child("slow").await });
    began.notified().await;

    let second = Duration::from_secs(1);
    let timeout = CallTimeout {
        supervisor: root.path().clone(),
        deadline: second,
    };
    assert_eq!(
        root.which_children_within(second).await.unwrap_err(),
        CallError::Timeout(timeout.clone())
    );
    assert!(matches!(
        root.count_children_within(second).await,
        Err(CallError::Timeout(_))
    ));
    assert!(matches!(root.snapshot_within(second).await, Err(CallError::Timeout(_))));
    for result in [
        root.start_child_within(probe("late", &control), second).await.map(drop),
        root.restart_child_within("slow", second).await.map(drop),
        root.terminate_child_within("slow", second).await,
        root.delete_child_within("slow", second).await,
    ] {
        match result {
            Err(ChildError::Timeout(t)) => assert_eq!(t, timeout),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    terminating.await.unwrap().unwrap();
    // What timed out was still delivered, and done in order once the
    // supervisor was free: `late` started, `slow` restarted, stopped, deleted.
    let ids: Vec<String> = root
        .which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    assert_eq!(ids, ["late"]);
    assert_eq!(root.snapshot_within(second).await.unwrap().root.children.len(), 1);
    root.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn stopping_a_supervisor_leaves_no_task_behind() {
    // A long shutdown timeout per child: a timer task per stop would still be
    // sleeping an hour after the supervisor is gone.
    let before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let control = Control::new();
    let root = Supervisor::builder("root")
        .children(
            (0..50).map(|i| probe(&format!("c{i}"), &control).shutdown(Shutdown::Timeout(Duration::from_secs(3600)))),
        )
        .spawn()
        .await
        .expect("supervisor starts");
    assert_eq!(root.count_children().await.expect("counts").active, 50);
    assert!(tokio::runtime::Handle::current().metrics().num_alive_tasks() >= before + 51);

    root.stop().await;
    drop(root);

    assert_eq!(
        probe::alive_tasks_settled(before).await,
        before,
        "the supervisor, its children and its shutdown timer have all ended"
    );
}
