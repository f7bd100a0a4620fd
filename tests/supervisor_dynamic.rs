//! Dynamic children at run time through the `Supervisor` handle, with OTP's
//! answers (SEMANTICS 16, 19 and 34–40): `start_child`, `terminate_child`,
//! `restart_child`, `delete_child`, `which_children` and `count_children`, calls
//! to a supervisor that is gone, and dynamically started children being
//! supervised like static ones.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, cell, child, ping, probe, refusing, tell};
use warden::supervisor::{
    Backoff, ChildCounts, ChildError, ChildKind, ChildState, NoProc, Restart, StartError, Strategy, Supervisor,
};

/// The ids of the children, in the order `which_children` lists them.
async fn ids(sup: &Supervisor) -> Vec<String> {
    sup.which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id().to_string())
        .collect()
}

/// `count_children` as OTP's `[specs, active, supervisors, workers]`.
async fn counts(sup: &Supervisor) -> [usize; 4] {
    let ChildCounts {
        specs,
        active,
        supervisors,
        workers,
    } = sup.count_children().await.unwrap();
    [specs, active, supervisors, workers]
}

async fn root_with(log: &EventLog, children: impl IntoIterator<Item = warden::supervisor::ChildSpec>) -> Supervisor {
    Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
        .unwrap()
}

#[tokio::test]
async fn start_child_starts_a_new_child_after_the_static_ones() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    let b = root.start_child(probe("b", &control)).await.unwrap();

    assert_eq!(ping(&b).await, Some(0));
    assert_eq!(cell(&root, "b").await.get_id(), b.get_id());
    assert_eq!(ids(&root).await, ["a", "b"]);
    assert_eq!(counts(&root).await, [2, 2, 0, 2]);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down b shutdown",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn start_child_of_a_running_id_answers_already_started_with_its_actor() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;
    let a = cell(&root, "a").await;

    let err = root.start_child(probe("a", &control)).await.unwrap_err();

    match err {
        ChildError::AlreadyStarted(running) => assert_eq!(running.get_id(), a.get_id()),
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    assert_eq!(control.starts("a"), 1, "the duplicate spec's factory must not run");
    assert_eq!(counts(&root).await, [1, 1, 0, 1]);
    root.stop().await;
}

#[tokio::test]
async fn start_child_of_a_kept_but_stopped_id_answers_already_present() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;
    root.terminate_child("a").await.unwrap();

    let err = root.start_child(probe("a", &control)).await.unwrap_err();

    assert!(matches!(err, ChildError::AlreadyPresent), "got {err:?}");
    assert_eq!(err.otp_name(), "already_present");
    assert!(matches!(child(&root, "a").await.state, ChildState::NotRunning));
    assert_eq!(control.starts("a"), 1);
    root.stop().await;
}

#[tokio::test]
async fn start_child_whose_start_fails_answers_start_failed_and_discards_the_spec() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    let err = root.start_child(refusing("r")).await.unwrap_err();
    assert!(
        matches!(err, ChildError::StartFailed(StartError::Other(_))),
        "got {err:?}"
    );

    control.fail_next_starts("b", 1);
    let err = root.start_child(probe("b", &control)).await.unwrap_err();
    assert!(
        matches!(err, ChildError::StartFailed(StartError::Init(_))),
        "got {err:?}"
    );

    assert_eq!(ids(&root).await, ["a"]);
    assert_eq!(counts(&root).await, [1, 1, 0, 1]);
    // The spec is gone, so the id is free again: no `AlreadyPresent`.
    let b = root.start_child(probe("b", &control)).await.unwrap();
    assert_eq!(ping(&b).await, Some(0));
    assert_eq!(ids(&root).await, ["a", "b"]);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "init_failed r",
            "init_failed b",
            "start b",
            "down b shutdown",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn start_child_with_an_invalid_id_is_refused_before_anything_starts() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, []).await;

    for bad in ["", "a/b"] {
        let err = root.start_child(probe(bad, &control)).await.unwrap_err();
        assert!(matches!(err, ChildError::InvalidSpec(_)), "{bad:?}: got {err:?}");
    }
    assert_eq!(counts(&root).await, [0, 0, 0, 0]);
    root.stop().await;
    assert_eq!(log.lines(), ["stopped root"]);
}

#[tokio::test]
async fn terminate_child_stops_it_with_shutdown_and_keeps_the_spec_not_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control), probe("b", &control)]).await;
    let a = cell(&root, "a").await;

    root.terminate_child("a").await.unwrap();

    // Answered only once the child is gone.
    assert_eq!(ping(&a).await, None);
    let info = child(&root, "a").await;
    assert!(matches!(info.state, ChildState::NotRunning));
    assert_eq!(info.state.otp_name(), "undefined");
    assert_eq!(info.restart_count, 0, "terminate_child is not a restart");
    assert_eq!(info.last_exit.as_ref().map(|r| r.otp_name()), Some("shutdown"));
    assert_eq!(ids(&root).await, ["a", "b"]);
    assert_eq!(counts(&root).await, [2, 1, 0, 2]);
    assert_eq!(control.starts("a"), 1, "terminate_child must not trigger a restart");
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a shutdown",
            "down b shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn terminate_child_is_idempotent() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    root.terminate_child("a").await.unwrap();
    root.terminate_child("a").await.unwrap();
    root.terminate_child("a").await.unwrap();

    assert_eq!(counts(&root).await, [1, 0, 0, 1]);
    root.stop().await;
    assert_eq!(log.lines(), ["start a", "down a shutdown", "stopped root"]);
}

#[tokio::test]
async fn terminate_child_of_an_unknown_id_answers_not_found() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    let err = root.terminate_child("nope").await.unwrap_err();

    assert!(matches!(err, ChildError::NotFound), "got {err:?}");
    assert_eq!(err.otp_name(), "not_found");
    assert_eq!(counts(&root).await, [1, 1, 0, 1]);
    root.stop().await;
}

#[tokio::test]
async fn terminate_child_deletes_a_temporary_childs_spec() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [probe("a", &control), probe("t", &control).restart(Restart::Temporary)],
    )
    .await;

    root.terminate_child("t").await.unwrap();

    assert_eq!(ids(&root).await, ["a"]);
    assert_eq!(counts(&root).await, [1, 1, 0, 1]);
    assert!(matches!(root.restart_child("t").await, Err(ChildError::NotFound)));
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start t",
            "down t shutdown",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn terminate_and_restart_child_do_not_count_toward_the_intensity() {
    let control = Control::new();
    let log = EventLog::new();
    // One restart allowed: if the manual stops and starts counted, the crash
    // below would be one too many.
    let root = Supervisor::builder("root")
        .intensity(1, Duration::from_secs(60))
        .observer(log.observer())
        .child(probe("a", &control))
        .spawn()
        .await
        .unwrap();
    for _ in 0..3 {
        root.terminate_child("a").await.unwrap();
        root.restart_child("a").await.unwrap();
    }

    tell(&cell(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start a", 5).await;

    assert!(root.is_alive());
    assert_eq!(child(&root, "a").await.restart_count, 1);
    assert_eq!(ping(&cell(&root, "a").await).await, Some(4));
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a shutdown",
            "start a",
            "down a shutdown",
            "start a",
            "down a shutdown",
            "start a",
            "down a boom",
            "start a",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn restart_child_starts_a_stopped_child_again() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control), probe("b", &control)]).await;
    root.terminate_child("a").await.unwrap();

    let a = root.restart_child("a").await.unwrap();

    assert_eq!(ping(&a).await, Some(1));
    assert_eq!(cell(&root, "a").await.get_id(), a.get_id());
    assert_eq!(ids(&root).await, ["a", "b"], "a keeps its place in the start order");
    assert_eq!(counts(&root).await, [2, 2, 0, 2]);
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

#[tokio::test]
async fn restart_child_of_a_running_child_answers_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    let err = root.restart_child("a").await.unwrap_err();

    assert!(matches!(err, ChildError::Running), "got {err:?}");
    assert_eq!(control.starts("a"), 1);
    root.stop().await;
}

#[tokio::test]
async fn restart_child_of_an_unknown_id_answers_not_found() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    assert!(matches!(root.restart_child("nope").await, Err(ChildError::NotFound)));
    root.stop().await;
}

#[tokio::test]
async fn a_failed_restart_child_leaves_the_spec_not_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;
    root.terminate_child("a").await.unwrap();
    control.fail_next_starts("a", 1);

    let err = root.restart_child("a").await.unwrap_err();

    assert!(
        matches!(err, ChildError::StartFailed(StartError::Init(_))),
        "got {err:?}"
    );
    assert!(matches!(child(&root, "a").await.state, ChildState::NotRunning));
    assert_eq!(counts(&root).await, [1, 0, 0, 1]);
    // Not a restart loop: the supervisor does not try again on its own.
    let a = root.restart_child("a").await.unwrap();
    assert_eq!(ping(&a).await, Some(1));
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a shutdown",
            "init_failed a",
            "start a",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn delete_child_removes_a_stopped_childs_spec() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control), probe("b", &control)]).await;
    root.terminate_child("a").await.unwrap();

    root.delete_child("a").await.unwrap();

    assert_eq!(ids(&root).await, ["b"]);
    assert_eq!(counts(&root).await, [1, 1, 0, 1]);
    assert!(matches!(root.restart_child("a").await, Err(ChildError::NotFound)));
    assert!(matches!(root.delete_child("a").await, Err(ChildError::NotFound)));
    // The id is free again; the new child goes to the end of the start order.
    root.start_child(probe("a", &control)).await.unwrap();
    assert_eq!(ids(&root).await, ["b", "a"]);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a shutdown",
            "start a",
            "down a shutdown",
            "down b shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn delete_child_of_a_running_child_answers_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;

    let err = root.delete_child("a").await.unwrap_err();

    assert!(matches!(err, ChildError::Running), "got {err:?}");
    assert!(child(&root, "a").await.state.is_running());
    assert!(matches!(root.delete_child("nope").await, Err(ChildError::NotFound)));
    root.stop().await;
}

/// A child waiting out a restart backoff is `restarting` (SEMANTICS 16): the
/// paused clock holds it there for as long as the test needs.
#[tokio::test(start_paused = true)]
async fn a_child_whose_restart_is_pending_answers_restarting() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .intensity(10, Duration::from_secs(60))
        .observer(log.observer())
        .child(probe("a", &control).backoff(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(10))))
        .spawn()
        .await
        .unwrap();
    tell(&cell(&root, "a").await, ProbeMsg::Panic);
    log.wait_line("scheduled a").await;

    let info = child(&root, "a").await;
    assert!(matches!(info.state, ChildState::Restarting));
    assert_eq!(info.state.otp_name(), "restarting");
    assert_eq!(counts(&root).await, [1, 0, 0, 1]);
    assert!(matches!(root.restart_child("a").await, Err(ChildError::Restarting)));
    assert!(matches!(root.delete_child("a").await, Err(ChildError::Restarting)));
    assert!(matches!(
        root.start_child(probe("a", &control)).await,
        Err(ChildError::AlreadyPresent)
    ));

    // terminate_child calls the pending restart off and leaves it not running.
    root.terminate_child("a").await.unwrap();
    assert!(matches!(child(&root, "a").await.state, ChildState::NotRunning));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(child(&root, "a").await.state, ChildState::NotRunning));
    assert_eq!(control.starts("a"), 1);
    root.delete_child("a").await.unwrap();
    assert_eq!(counts(&root).await, [0, 0, 0, 0]);
    root.stop().await;
    assert_eq!(log.lines(), ["start a", "down a boom", "scheduled a", "stopped root"]);
}

#[tokio::test]
async fn which_children_lists_in_start_order_with_dynamic_children_appended() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [
            probe("a", &control),
            Supervisor::builder("s").child(probe("x", &control)).into_child(),
            probe("b", &control),
        ],
    )
    .await;
    root.start_child(probe("c", &control)).await.unwrap();
    root.start_child(Supervisor::builder("d").into_child()).await.unwrap();

    let children = root.which_children().await.unwrap();

    let summary: Vec<(&str, &str, ChildKind, Restart, bool)> = children
        .iter()
        .map(|c| (c.id(), c.path.as_str(), c.kind, c.restart, c.state.is_running()))
        .collect();
    assert_eq!(
        summary,
        [
            ("a", "root/a", ChildKind::Worker, Restart::Permanent, true),
            ("s", "root/s", ChildKind::Supervisor, Restart::Permanent, true),
            ("b", "root/b", ChildKind::Worker, Restart::Permanent, true),
            ("c", "root/c", ChildKind::Worker, Restart::Permanent, true),
            ("d", "root/d", ChildKind::Supervisor, Restart::Permanent, true),
        ]
    );
    assert!(children.iter().all(|c| c.restart_count == 0 && c.last_exit.is_none()));
    assert!(children[0].supervisor().is_none(), "a worker has no supervisor handle");
    let s = children[1]
        .supervisor()
        .expect("a running child supervisor has a handle");
    assert_eq!(s.path().as_str(), "root/s");
    assert_eq!(ids(&s).await, ["x"]);
    root.stop().await;
}

#[tokio::test]
async fn count_children_counts_specs_active_supervisors_and_workers_as_otp() {
    let control = Control::new();
    let log = EventLog::new();
    // SEMANTICS 39: 3 supervisor specs, one stopped by terminate_child: [3,2,3,0].
    let root = root_with(
        &log,
        [
            Supervisor::builder("s1").into_child(),
            Supervisor::builder("s2").into_child(),
            Supervisor::builder("s3").into_child(),
        ],
    )
    .await;
    root.terminate_child("s2").await.unwrap();
    assert_eq!(counts(&root).await, [3, 2, 3, 0]);

    root.start_child(probe("w1", &control)).await.unwrap();
    root.start_child(probe("w2", &control)).await.unwrap();
    root.terminate_child("w1").await.unwrap();
    assert_eq!(counts(&root).await, [5, 3, 3, 2]);
    assert_eq!(
        root.count_children().await.unwrap(),
        ChildCounts {
            specs: 5,
            active: 3,
            supervisors: 3,
            workers: 2
        }
    );
    root.stop().await;
}

#[tokio::test]
async fn calls_to_a_stopped_supervisor_answer_noproc() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;
    root.stop().await;
    assert!(!root.is_alive());

    let noproc = NoProc {
        supervisor: root.path().clone(),
    };
    assert_eq!(root.which_children().await.unwrap_err(), noproc);
    assert_eq!(root.count_children().await.unwrap_err(), noproc);
    assert_eq!(root.snapshot().await.unwrap_err(), noproc);
    for err in [
        root.start_child(probe("b", &control)).await.map(|_| ()).unwrap_err(),
        root.terminate_child("a").await.unwrap_err(),
        root.restart_child("a").await.map(|_| ()).unwrap_err(),
        root.delete_child("a").await.unwrap_err(),
    ] {
        match &err {
            ChildError::NoProc(e) => assert_eq!(e, &noproc),
            other => panic!("expected NoProc, got {other:?}"),
        }
        assert_eq!(err.otp_name(), "noproc");
    }
    assert_eq!(control.starts("b"), 0);
    // Stopping or waiting on a stopped supervisor returns at once.
    root.stop().await;
    root.wait().await;
}

#[tokio::test]
async fn a_dynamically_started_child_is_restarted_like_a_static_one() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;
    let d = root.start_child(probe("d", &control)).await.unwrap();

    tell(&d, ProbeMsg::Fail);
    log.wait_count("start d", 2).await;

    let info = child(&root, "d").await;
    assert_eq!(info.restart_count, 1);
    assert_eq!(info.last_exit.as_ref().map(|r| r.otp_name()), Some("boom"));
    let d2 = cell(&root, "d").await;
    assert_ne!(d2.get_id(), d.get_id());
    assert_eq!(ping(&d2).await, Some(1));
    assert_eq!(ids(&root).await, ["a", "d"]);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start d",
            "down d boom",
            "start d",
            "down d shutdown",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn a_dynamically_started_transient_child_that_stops_normally_is_kept_not_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, []).await;
    let t = root
        .start_child(probe("t", &control).restart(Restart::Transient))
        .await
        .unwrap();

    tell(&t, ProbeMsg::StopNormal);
    log.wait_line("down t normal").await;

    assert!(matches!(child(&root, "t").await.state, ChildState::NotRunning));
    assert_eq!(counts(&root).await, [1, 0, 0, 1]);
    root.stop().await;
    assert_eq!(log.lines(), ["start t", "down t normal", "stopped root"]);
}

/// SEMANTICS 19: a child supervisor restarted by its parent comes back with the
/// children it declared, not the ones added with `start_child`.
#[tokio::test]
async fn a_restarted_child_supervisor_comes_back_with_only_its_declared_children() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [Supervisor::builder("sub").child(probe("x", &control)).into_child()],
    )
    .await;
    let sub = child(&root, "sub").await.supervisor().unwrap();
    sub.start_child(probe("y", &control)).await.unwrap();
    assert_eq!(ids(&sub).await, ["x", "y"]);

    sub.kill();
    sub.wait().await;
    log.wait_count("start sub", 2).await;

    let sub2 = child(&root, "sub").await.supervisor().unwrap();
    assert_ne!(sub2.actor().get_id(), sub.actor().get_id());
    assert_eq!(ids(&sub2).await, ["x"]);
    assert_eq!(child(&root, "sub").await.restart_count, 1);
    assert_eq!(control.starts("y"), 1, "y is not started again");
    root.stop().await;
}

#[tokio::test]
async fn a_dynamically_started_child_supervisor_supervises_its_children() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, []).await;
    let cell_s = root
        .start_child(
            Supervisor::builder("s")
                .intensity(3, Duration::from_secs(5))
                .child(probe("x", &control))
                .into_child(),
        )
        .await
        .unwrap();
    let s = child(&root, "s").await.supervisor().unwrap();
    assert_eq!(s.actor().get_id(), cell_s.get_id());
    assert_eq!(counts(&root).await, [1, 1, 1, 0]);

    tell(&cell(&s, "x").await, ProbeMsg::Panic);
    log.wait_count("start x", 2).await;

    assert_eq!(child(&s, "x").await.path.as_str(), "root/s/x");
    assert_eq!(child(&s, "x").await.restart_count, 1);
    assert_eq!(child(&root, "s").await.restart_count, 0);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start x",
            "start s",
            "down x boom",
            "start x",
            "down x shutdown",
            "stopped s",
            "down s shutdown",
            "stopped root"
        ]
    );
}
