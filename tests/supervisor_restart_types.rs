//! Restart types (SEMANTICS.md, items 8–10): a permanent child is restarted
//! after every exit, normal ones included; a transient child only after an
//! abnormal exit (a panic, an error returned from a handler, a kill, or, as in
//! OTP, a stop with a reason of its own), not after a normal stop or a shutdown
//! (`shutdown` or `shutdown: ...`), and its spec stays, not running; a temporary child is never restarted and its spec is
//! removed, so the same spec can be started again.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, cell as actor, child as info, probe, tell};
use ractor::ActorCell;
use warden::supervisor::{ChildCounts, ChildError, ExitReason, Restart, Supervisor};

/// Every way a child can end, by the name the tests use.
const NORMAL_EXITS: [&str; 3] = ["normal", "shutdown", "shutdown_info"];
/// As in OTP, a stop with a reason of its own ("custom") is abnormal.
const ABNORMAL_EXITS: [&str; 4] = ["panic", "error", "kill", "custom"];

/// Ends a running probe the way `how` names.
fn end(cell: &ActorCell, how: &str) {
    match how {
        "normal" => tell(cell, ProbeMsg::StopNormal),
        "shutdown" => tell(cell, ProbeMsg::StopShutdown),
        "custom" => tell(cell, ProbeMsg::StopWith("finished".into())),
        "shutdown_info" => tell(cell, ProbeMsg::StopWith("shutdown: done".into())),
        "panic" => tell(cell, ProbeMsg::Panic),
        "error" => tell(cell, ProbeMsg::Fail),
        "kill" => cell.kill(),
        other => panic!("unknown exit {other}"),
    }
}

/// The trace reason of an exit, and a check of the recorded exit reason.
fn expected(how: &str) -> (&'static str, fn(&ExitReason) -> bool) {
    match how {
        "normal" => ("normal", |r| *r == ExitReason::Normal),
        "shutdown" | "shutdown_info" => ("shutdown", |r| *r == ExitReason::Shutdown),
        "custom" => ("boom", |r| *r == ExitReason::Stopped("finished".into())),
        "panic" | "error" => ("boom", |r| matches!(r, ExitReason::Failed(_))),
        "kill" => ("killed", |r| *r == ExitReason::Killed),
        other => panic!("unknown exit {other}"),
    }
}

fn counts(specs: usize, active: usize) -> ChildCounts {
    ChildCounts {
        specs,
        active,
        supervisors: 0,
        workers: specs,
    }
}

async fn root_with(log: &EventLog, spec: warden::supervisor::ChildSpec) -> Supervisor {
    Supervisor::builder("root")
        .intensity(100, Duration::from_secs(60))
        .observer(log.observer())
        .child(spec)
        .spawn()
        .await
        .expect("supervisor starts")
}

#[tokio::test]
async fn permanent_child_is_restarted_after_normal_shutdown_custom_and_abnormal_exits() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, probe("p", &control)).await;
    let mut trace = vec!["start p".to_string()];

    for (i, how) in NORMAL_EXITS.iter().chain(&ABNORMAL_EXITS).enumerate() {
        let old = actor(&root, "p").await;
        end(&old, how);
        log.wait_count("start p", i + 2).await;

        let (reason, is_reason) = expected(how);
        trace.extend([format!("down p {reason}"), "start p".to_string()]);
        let p = info(&root, "p").await;
        assert!(p.state.is_running(), "after {how}");
        assert_ne!(p.state.actor().unwrap().get_id(), old.get_id(), "after {how}");
        assert_eq!(p.restart_count as usize, i + 1, "after {how}");
        assert!(
            is_reason(p.last_exit.as_ref().unwrap()),
            "after {how}: {:?}",
            p.last_exit
        );
        assert_eq!(root.count_children().await.unwrap(), counts(1, 1));
    }
    assert_eq!(log.lines(), trace);
    root.stop().await;
}

#[tokio::test]
async fn transient_child_is_restarted_after_a_panic_an_error_a_kill_or_a_custom_reason() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, probe("t", &control).restart(Restart::Transient)).await;

    for (i, how) in ABNORMAL_EXITS.iter().enumerate() {
        end(&actor(&root, "t").await, how);
        log.wait_count("start t", i + 2).await;
        let t = info(&root, "t").await;
        assert!(t.state.is_running(), "after {how}");
        assert_eq!(t.restart_count as usize, i + 1);
    }
    assert_eq!(
        log.lines(),
        [
            "start t",
            "down t boom",
            "start t",
            "down t boom",
            "start t",
            "down t killed",
            "start t",
            "down t boom",
            "start t",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn transient_child_is_not_restarted_after_a_normal_stop_or_a_shutdown() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, probe("t", &control).restart(Restart::Transient)).await;
    let mut trace = vec!["start t".to_string()];

    for how in NORMAL_EXITS {
        end(&actor(&root, "t").await, how);
        let (reason, is_reason) = expected(how);
        let down = format!("down t {reason}");
        log.wait_count(&down, trace.iter().filter(|l| **l == down).count() + 1)
            .await;
        trace.push(down);

        // The exit is handled (and nothing restarted) before the call is answered.
        let t = info(&root, "t").await;
        assert_eq!(
            t.state.otp_name(),
            "undefined",
            "after {how}: the spec stays, not running"
        );
        assert_eq!(t.restart_count, 0, "after {how}");
        assert!(
            is_reason(t.last_exit.as_ref().unwrap()),
            "after {how}: {:?}",
            t.last_exit
        );
        assert_eq!(root.count_children().await.unwrap(), counts(1, 0));
        assert_eq!(log.lines(), trace, "after {how}");

        // Bring it back by hand for the next case.
        root.restart_child("t").await.unwrap();
        trace.push("start t".into());
    }
    root.stop().await;
}

#[tokio::test]
async fn temporary_child_is_never_restarted_and_its_spec_is_removed() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, probe("tmp", &control).restart(Restart::Temporary)).await;
    let mut trace = vec!["start tmp".to_string()];

    for how in NORMAL_EXITS.iter().chain(&ABNORMAL_EXITS) {
        end(&actor(&root, "tmp").await, how);
        let (reason, _) = expected(how);
        let down = format!("down tmp {reason}");
        log.wait_count(&down, trace.iter().filter(|l| **l == down).count() + 1)
            .await;
        trace.push(down);

        assert!(
            root.which_children().await.unwrap().is_empty(),
            "after {how}: the spec is removed"
        );
        assert_eq!(root.count_children().await.unwrap(), counts(0, 0));
        assert!(matches!(root.restart_child("tmp").await, Err(ChildError::NotFound)));
        assert_eq!(log.lines(), trace, "after {how}: not restarted");

        // The same spec starts again: it is not `already_present`.
        root.start_child(probe("tmp", &control).restart(Restart::Temporary))
            .await
            .unwrap();
        trace.push("start tmp".into());
    }
    assert_eq!(
        control.starts("tmp") as usize,
        NORMAL_EXITS.len() + ABNORMAL_EXITS.len() + 1
    );
    root.stop().await;
}

#[tokio::test]
async fn terminate_child_of_a_temporary_child_removes_its_spec() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, probe("tmp", &control).restart(Restart::Temporary)).await;

    root.terminate_child("tmp").await.unwrap();

    assert!(root.which_children().await.unwrap().is_empty());
    assert_eq!(log.lines(), ["start tmp", "down tmp shutdown"]);
    root.stop().await;
}
