//! Start failures (SEMANTICS.md, items 2, 15 and 16): a child that fails to
//! start while its supervisor starts makes `spawn()` fail with
//! `SpawnError::ChildFailedToStart` after the children already started are
//! stopped in reverse order, for a root and through nested supervisors; a
//! restart whose start keeps failing is retried through the mailbox, and while
//! it is, the API sees the child as restarting, `terminate_child` ends the retry
//! loop, and stopping the supervisor does not hang.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, cell as actor, probe, probe_with_panicking_factory, refusing, tell};
use warden::supervisor::{ChildCounts, ChildError, ChildSpec, SpawnError, SpecError, StartError, Supervisor};

async fn spawn_root(log: &EventLog, children: Vec<ChildSpec>) -> Result<Supervisor, SpawnError> {
    Supervisor::builder("root")
        .intensity(u32::MAX, Duration::from_secs(3600))
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
}

/// The path of the child that failed, and why.
fn failed_child(result: Result<Supervisor, SpawnError>) -> (String, StartError) {
    match result {
        Err(SpawnError::ChildFailedToStart { child, source }) => (child.to_string(), source),
        Err(other) => panic!("unexpected spawn error: {other}"),
        Ok(_) => panic!("spawn succeeded"),
    }
}

// ---- item 2: failures while the supervisor starts ------------------------------

#[tokio::test]
async fn a_child_failing_to_start_fails_the_spawn_after_the_started_children_stop_last_first() {
    let control = Control::new();
    let log = EventLog::new();
    control.fail_next_starts("c", 1);

    let result = spawn_root(&log, ["a", "b", "c", "d"].map(|id| probe(id, &control)).into()).await;

    let (child, source) = failed_child(result);
    assert_eq!(child, "root/c");
    assert!(matches!(source, StartError::Init(_)), "{source:?}");
    assert!(source.to_string().contains("c refuses to start"), "{source}");
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "init_failed c",
            "down b shutdown",
            "down a shutdown"
        ]
    );
    assert_eq!(control.starts("d"), 0, "nothing after the failed child is started");
}

/// Checks a start error.
type IsExpected = fn(&StartError) -> bool;

#[tokio::test]
async fn a_factory_that_fails_or_panics_fails_the_spawn_like_a_failing_child() {
    let cases: [(ChildSpec, IsExpected); 3] = [
        (refusing("f"), |e| matches!(e, StartError::Other(_))),
        (
            probe_with_panicking_factory("f", &Control::new(), &[1], false),
            |e| matches!(e, StartError::Panicked(m) if m.contains("panics on call 1")),
        ),
        (
            probe_with_panicking_factory("f", &Control::new(), &[1], true),
            |e| matches!(e, StartError::Panicked(m) if m.contains("panics on call 1")),
        ),
    ];
    for (spec, is_expected) in cases {
        let control = Control::new();
        let log = EventLog::new();

        let result = spawn_root(&log, vec![probe("a", &control), spec, probe("b", &control)]).await;

        let (child, source) = failed_child(result);
        assert_eq!(child, "root/f");
        assert!(is_expected(&source), "{source:?}");
        assert_eq!(log.lines(), ["start a", "init_failed f", "down a shutdown"]);
        assert_eq!(control.starts("b"), 0);
    }
}

#[tokio::test]
async fn a_nested_supervisor_failing_to_start_fails_its_parents_spawn() {
    let control = Control::new();
    let log = EventLog::new();
    control.fail_next_starts("y", 1);
    let sub = Supervisor::builder("sub")
        .children(["x", "y", "z"].map(|id| probe(id, &control)))
        .into_child();

    let result = spawn_root(&log, vec![probe("a", &control), sub, probe("b", &control)]).await;

    let (child, source) = failed_child(result);
    assert_eq!(child, "root/sub");
    assert!(matches!(source, StartError::Init(_)), "{source:?}");
    assert!(
        source.to_string().contains("root/sub/y"),
        "names the child that failed: {source}"
    );
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start x",
            "init_failed y",
            "down x shutdown",
            "init_failed sub",
            "down a shutdown",
        ]
    );
    assert_eq!(control.starts("z") + control.starts("b"), 0);
}

#[tokio::test]
async fn a_start_failure_two_levels_down_unwinds_every_level_last_first() {
    let control = Control::new();
    let log = EventLog::new();
    control.fail_next_starts("r", 1);
    let inner = Supervisor::builder("inner")
        .child(probe("q", &control))
        .child(probe("r", &control))
        .into_child();
    let outer = Supervisor::builder("outer")
        .child(probe("p", &control))
        .child(inner)
        .into_child();

    let result = spawn_root(&log, vec![probe("a", &control), outer]).await;

    let (child, _) = failed_child(result);
    assert_eq!(child, "root/outer");
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start p",
            "start q",
            "init_failed r",
            "down q shutdown",
            "init_failed inner",
            "down p shutdown",
            "init_failed outer",
            "down a shutdown",
        ]
    );
}

#[tokio::test]
async fn an_invalid_spec_fails_the_spawn_before_anything_starts() {
    let control = Control::new();
    let log = EventLog::new();

    let result = spawn_root(&log, vec![probe("a", &control), probe("a", &control)]).await;

    assert!(
        matches!(result, Err(SpawnError::InvalidSpec(SpecError::DuplicateChild(ref id))) if id == "a"),
        "{result:?}"
    );
    assert!(log.lines().is_empty());
    assert_eq!(control.starts("a"), 0);
}

// ---- items 15 and 16: a restart that keeps failing ------------------------------

/// A supervisor whose child `a` crashed and now fails every restart, retried
/// without end (the intensity is out of reach); waits for the first failed attempt.
///
/// The tests that use it run on the multi-thread runtime: the supervisor answers
/// a call after one more attempt, but on the current-thread runtime the test's
/// own future is polled only every 61 task polls (each up to 128 attempts
/// before the cooperative budget runs out), so every call would wait through
/// thousands of attempts.
async fn retrying(control: &std::sync::Arc<Control>, log: &EventLog) -> Supervisor {
    let root = spawn_root(log, vec![probe("a", control), probe("b", control)])
        .await
        .expect("supervisor starts");
    control.fail_next_starts("a", u32::MAX);
    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_line("init_failed a").await;
    root
}

/// The trace without the failed attempts, whose number depends on timing.
fn without_attempts(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().filter(|l| l != "init_failed a").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_restart_is_retried_the_child_shows_restarting_and_the_api_answers_as_otp() {
    let control = Control::new();
    let log = EventLog::new();
    let root = retrying(&control, &log).await;

    let children = root.which_children().await.unwrap();
    assert_eq!(children[0].id(), "a");
    assert_eq!(children[0].state.otp_name(), "restarting");
    assert!(children[1].state.is_running(), "b is not disturbed");
    assert_eq!(
        root.count_children().await.unwrap(),
        ChildCounts {
            specs: 2,
            active: 1,
            supervisors: 0,
            workers: 2
        }
    );
    assert!(matches!(root.restart_child("a").await, Err(ChildError::Restarting)));
    assert!(matches!(root.delete_child("a").await, Err(ChildError::Restarting)));
    assert!(matches!(
        root.start_child(probe("a", &control)).await,
        Err(ChildError::AlreadyPresent)
    ));
    // Still retrying after all that.
    let before = log.lines().len();
    log.wait_for("another attempt", |l| l.len() > before).await;
    assert_eq!(root.which_children().await.unwrap()[0].state.otp_name(), "restarting");

    root.terminate_child("a").await.unwrap();
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_child_stops_the_retry_loop_and_leaves_the_child_not_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = retrying(&control, &log).await;

    root.terminate_child("a").await.unwrap();
    let attempts = log.lines().len();
    // A retry already queued is answered before this call, and ignored.
    assert_eq!(root.which_children().await.unwrap()[0].state.otp_name(), "undefined");
    assert_eq!(root.count_children().await.unwrap().active, 1);
    assert_eq!(log.lines().len(), attempts, "no attempt after terminate_child");

    control.fail_next_starts("a", 0);
    root.restart_child("a").await.unwrap();
    assert!(root.which_children().await.unwrap()[0].state.is_running());
    assert_eq!(
        without_attempts(log.lines()),
        ["start a", "start b", "down a boom", "start a"]
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_supervisor_during_a_retry_loop_does_not_hang() {
    let control = Control::new();
    let log = EventLog::new();
    let root = retrying(&control, &log).await;

    tokio::time::timeout(Duration::from_secs(10), root.stop())
        .await
        .expect("the supervisor stops between two attempts");

    assert!(!root.is_alive());
    assert_eq!(
        without_attempts(log.lines()),
        ["start a", "start b", "down a boom", "down b shutdown", "stopped root"]
    );
}
