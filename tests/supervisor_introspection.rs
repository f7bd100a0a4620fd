//! Introspection: `Supervisor::snapshot()` gives a serialisable `TreeSnapshot`
//! of the whole tree (path, kind, state, restart count, last exit reason) whose
//! `Display` draws the tree, and every start, exit, restart, give-up and
//! escalation is a `SupervisorEvent` carrying the child's full path.

#[path = "support/probe.rs"]
mod probe;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, cell, probe, refusing, sub_of, tell};
use warden::supervisor::{Backoff, ChildKind, NodeState, Restart, Supervisor, SupervisorEvent, TreeSnapshot};

/// root > [a, sub > [x, y], t (transient)]: `a` crashed twice, `x` once, and
/// `t` stopped with `terminate_child`.
async fn crashed_tree(control: &Arc<Control>, log: &EventLog) -> Supervisor {
    let root = Supervisor::builder("root")
        .intensity(10, Duration::from_secs(60))
        .observer(log.observer())
        .child(probe("a", control))
        .child(
            Supervisor::builder("sub")
                .intensity(10, Duration::from_secs(60))
                .child(probe("x", control))
                .child(probe("y", control))
                .into_child(),
        )
        .child(probe("t", control).restart(Restart::Transient))
        .spawn()
        .await
        .unwrap();
    for n in 2..=3 {
        tell(&cell(&root, "a").await, ProbeMsg::Fail);
        log.wait_count("start a", n).await;
    }
    let sub = sub_of(&root, "sub").await;
    tell(&cell(&sub, "x").await, ProbeMsg::Fail);
    log.wait_count("start x", 2).await;
    root.terminate_child("t").await.unwrap();
    root
}

type Row = (String, ChildKind, NodeState, Option<Restart>, u32, Option<&'static str>);

fn rows(snapshot: &TreeSnapshot) -> Vec<Row> {
    snapshot
        .nodes()
        .into_iter()
        .map(|n| {
            (
                n.path.to_string(),
                n.kind,
                n.state,
                n.restart,
                n.restart_count,
                n.last_exit.as_ref().map(|r| r.otp_name()),
            )
        })
        .collect()
}

#[tokio::test]
async fn snapshot_reports_path_kind_state_restart_count_and_last_exit_of_every_node() {
    let control = Control::new();
    let log = EventLog::new();
    let root = crashed_tree(&control, &log).await;

    let snapshot = root.snapshot().await.unwrap();

    use ChildKind::{Supervisor as Sup, Worker};
    use NodeState::{NotRunning, Running};
    let p = |s: &str| s.to_string();
    assert_eq!(
        rows(&snapshot),
        [
            (p("root"), Sup, Running, None, 0, None),
            (p("root/a"), Worker, Running, Some(Restart::Permanent), 2, Some("boom")),
            (p("root/sub"), Sup, Running, Some(Restart::Permanent), 0, None),
            (
                p("root/sub/x"),
                Worker,
                Running,
                Some(Restart::Permanent),
                1,
                Some("boom")
            ),
            (p("root/sub/y"), Worker, Running, Some(Restart::Permanent), 0, None),
            (
                p("root/t"),
                Worker,
                NotRunning,
                Some(Restart::Transient),
                0,
                Some("shutdown")
            ),
        ]
    );
    assert_eq!(snapshot.root.children.len(), 3);
    let x = snapshot.find("root/sub/x").expect("x is in the picture");
    assert_eq!(x.last_exit.as_ref().unwrap().to_string(), "failed: x was told to fail");
    assert!(x.children.is_empty());
    assert!(snapshot.find("root/nope").is_none());
    root.stop().await;
}

#[tokio::test]
async fn snapshot_serialises_to_json_with_every_path() {
    let control = Control::new();
    let log = EventLog::new();
    let root = crashed_tree(&control, &log).await;

    let snapshot = root.snapshot().await.unwrap();
    let text = serde_json::to_string(&snapshot).unwrap();

    for path in [
        "\"root\"",
        "\"root/a\"",
        "\"root/sub\"",
        "\"root/sub/x\"",
        "\"root/sub/y\"",
        "\"root/t\"",
    ] {
        assert!(text.contains(path), "{path} missing from {text}");
    }
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let root_node = &json["root"];
    assert_eq!(root_node["path"], "root");
    assert_eq!(root_node["kind"], "supervisor");
    assert_eq!(root_node["state"], "running");
    assert_eq!(root_node["restart"], serde_json::Value::Null);
    let a = &root_node["children"][0];
    assert_eq!(a["path"], "root/a");
    assert_eq!(a["kind"], "worker");
    assert_eq!(a["restart"], "permanent");
    assert_eq!(a["restart_count"], 2);
    assert_eq!(a["last_exit"], "failed: a was told to fail");
    let x = &root_node["children"][1]["children"][0];
    assert_eq!(x["path"], "root/sub/x");
    assert_eq!(x["restart_count"], 1);
    let t = &root_node["children"][2];
    assert_eq!(t["state"], "not_running");
    assert_eq!(t["restart"], "transient");
    assert_eq!(t["last_exit"], "shutdown");
    root.stop().await;
}

#[tokio::test]
async fn a_snapshot_displays_as_a_drawn_tree() {
    let control = Control::new();
    let log = EventLog::new();
    let root = crashed_tree(&control, &log).await;

    let drawn = root.snapshot().await.unwrap().to_string();

    assert_eq!(
        drawn,
        "root (supervisor, running)\n\
         ├─ a (worker, running, 2 restarts, last exit: failed: a was told to fail)\n\
         ├─ sub (supervisor, running)\n\
         │  ├─ x (worker, running, 1 restart, last exit: failed: x was told to fail)\n\
         │  └─ y (worker, running)\n\
         └─ t (worker, not running, last exit: shutdown)\n"
    );
    root.stop().await;
}

#[tokio::test]
async fn a_child_supervisors_snapshot_covers_its_subtree() {
    let control = Control::new();
    let log = EventLog::new();
    let root = crashed_tree(&control, &log).await;
    let sub = sub_of(&root, "sub").await;

    let snapshot = sub.snapshot().await.unwrap();

    let paths: Vec<&str> = snapshot.nodes().iter().map(|n| n.path.as_str()).collect();
    assert_eq!(paths, ["root/sub", "root/sub/x", "root/sub/y"]);
    assert_eq!(
        snapshot.to_string(),
        "sub (supervisor, running)\n\
         ├─ x (worker, running, 1 restart, last exit: failed: x was told to fail)\n\
         └─ y (worker, running)\n"
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_shows_a_child_waiting_out_its_backoff_as_restarting() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .intensity(10, Duration::from_secs(60))
        .observer(log.observer())
        .child(probe("a", &control).backoff(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(5))))
        .spawn()
        .await
        .unwrap();

    tell(&cell(&root, "a").await, ProbeMsg::Panic);
    log.wait_line("scheduled a").await;
    let snapshot = root.snapshot().await.unwrap();

    let a = snapshot.find("root/a").unwrap();
    assert_eq!(a.state, NodeState::Restarting);
    assert_eq!(a.restart_count, 1);
    assert!(
        snapshot
            .to_string()
            .contains("a (worker, restarting, 1 restart, last exit: failed: ")
    );
    assert!(
        serde_json::to_string(&snapshot)
            .unwrap()
            .contains("\"state\":\"restarting\"")
    );
    root.stop().await;
}

/// Each event as a line naming full paths.
fn full(e: &SupervisorEvent) -> String {
    match e {
        SupervisorEvent::ChildStarted { path, kind, .. } => format!("started {path} {kind:?}"),
        SupervisorEvent::ChildStartFailed { path, kind, .. } => format!("start_failed {path} {kind:?}"),
        SupervisorEvent::ChildExited { path, kind, reason } => {
            format!("exited {path} {kind:?} {}", reason.otp_name())
        }
        SupervisorEvent::RestartScheduled { path, delay } => format!("scheduled {path} {delay:?}"),
        SupervisorEvent::Restarting {
            path,
            kind,
            restart_count,
            ..
        } => format!("restarting {path} {kind:?} #{restart_count}"),
        SupervisorEvent::GaveUp { path, child } => format!("gave_up {path} {child}"),
        SupervisorEvent::Escalated { at, origin } => format!("escalated {at} {origin}"),
        SupervisorEvent::Stopped { path } => format!("stopped {path}"),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn events_of_every_start_exit_restart_give_up_and_escalation_carry_full_paths() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .intensity(3, Duration::from_secs(60))
        .observer(log.observer())
        .child(
            Supervisor::builder("sub")
                .intensity(1, Duration::from_secs(60))
                .child(probe("x", &control))
                .child(probe("y", &control))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();
    let sub = sub_of(&root, "sub").await;
    let x = cell(&sub, "x").await;

    tell(&x, ProbeMsg::Fail);
    log.wait_count("start x", 2).await;
    assert!(sub.start_child(refusing("r")).await.is_err());
    tell(&cell(&sub, "x").await, ProbeMsg::Fail);
    log.wait_count("start sub", 2).await;
    root.stop().await;

    let events = log.events();
    assert_eq!(
        events.iter().map(full).collect::<Vec<_>>(),
        [
            "started root/sub/x Worker",
            "started root/sub/y Worker",
            "started root/sub Supervisor",
            "exited root/sub/x Worker boom",
            "restarting root/sub/x Worker #1",
            "started root/sub/x Worker",
            "start_failed root/sub/r Worker",
            "exited root/sub/x Worker boom",
            "gave_up root/sub root/sub/x",
            "exited root/sub/y Worker shutdown",
            "stopped root/sub",
            "exited root/sub Supervisor shutdown",
            "escalated root root/sub",
            "restarting root/sub Supervisor #1",
            "started root/sub/x Worker",
            "started root/sub/y Worker",
            "started root/sub Supervisor",
            "exited root/sub/y Worker shutdown",
            "exited root/sub/x Worker shutdown",
            "stopped root/sub",
            "exited root/sub Supervisor shutdown",
            "stopped root",
        ]
    );
    // `path()` names the child, or the supervisor for its own events.
    let by_path: Vec<&str> = events.iter().map(|e| e.path().as_str()).collect();
    assert_eq!(by_path[..3], ["root/sub/x", "root/sub/y", "root/sub"]);
    assert_eq!(by_path[8], "root/sub", "a give-up is the supervisor's");
    assert_eq!(by_path[12], "root", "an escalation is the receiver's");
    match &events[0] {
        SupervisorEvent::ChildStarted { actor, .. } => assert_eq!(*actor, x.get_id()),
        other => panic!("expected ChildStarted, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_restart_event_carries_the_childs_path_and_delay() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .child(
            Supervisor::builder("sub")
                .child(
                    probe("x", &control)
                        .backoff(Backoff::exponential(Duration::from_millis(250), Duration::from_secs(1))),
                )
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();

    tell(&cell(&sub_of(&root, "sub").await, "x").await, ProbeMsg::Fail);
    log.wait_line("scheduled x").await;

    assert_eq!(
        log.events().iter().map(full).collect::<Vec<_>>(),
        [
            "started root/sub/x Worker",
            "started root/sub Supervisor",
            "exited root/sub/x Worker boom",
            "restarting root/sub/x Worker #1",
            "scheduled root/sub/x 250ms",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn a_child_supervisor_with_its_own_observer_reports_there_instead_of_to_its_parents() {
    let control = Control::new();
    let root_log = EventLog::new();
    let sub_log = EventLog::new();
    let root = Supervisor::builder("root")
        .observer(root_log.observer())
        .child(
            Supervisor::builder("sub")
                .observer(sub_log.observer())
                .child(probe("x", &control))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();

    root.stop().await;

    assert_eq!(root_log.lines(), ["start sub", "down sub shutdown", "stopped root"]);
    assert_eq!(sub_log.lines(), ["start x", "down x shutdown", "stopped sub"]);
}

#[tokio::test]
async fn an_observer_that_panics_does_not_take_the_supervisor_down() {
    let control = Control::new();
    let log = EventLog::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let record = log.observer();
    let root = Supervisor::builder("root")
        .intensity(3, Duration::from_secs(60))
        .observer(move |e: &SupervisorEvent| {
            record(e);
            counted.fetch_add(1, Ordering::SeqCst);
            panic!("observer bug");
        })
        .child(probe("a", &control))
        .spawn()
        .await
        .unwrap();

    tell(&cell(&root, "a").await, ProbeMsg::Fail);
    log.wait_count("start a", 2).await;

    assert!(root.is_alive());
    assert_eq!(root.count_children().await.unwrap().active, 1);
    root.stop().await;
    assert_eq!(
        log.lines(),
        ["start a", "down a boom", "start a", "down a shutdown", "stopped root"]
    );
    // The five in the trace, and the restart decision.
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}
