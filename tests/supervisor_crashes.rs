//! What a child does cannot take its supervisor down: a panic or an error
//! returned from a child's handler is an abnormal exit and the child is
//! restarted; a child killed from outside is restarted; a factory that panics
//! is a failed start, retried like any other; a panic inside a call handler
//! gives the caller an error at once and the child is restarted; and after all
//! of that the supervisor still answers.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::{
    Control, EventLog, ProbeMsg, cell as actor, child as info, ping, probe, probe_with_panicking_factory, tell,
};
use ractor::ActorRef;
use ractor::rpc::CallResult;
use warden::supervisor::{ChildCounts, ExitReason, StartError, Supervisor, SupervisorEvent};

async fn root(log: &EventLog, children: Vec<warden::supervisor::ChildSpec>) -> Supervisor {
    Supervisor::builder("root")
        .intensity(20, Duration::from_secs(60))
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
        .expect("supervisor starts")
}

/// The message of a child's last exit, which must be a failure.
async fn failure_message(sup: &Supervisor, id: &str) -> String {
    match info(sup, id).await.last_exit {
        Some(ExitReason::Failed(f)) => f.to_string(),
        other => panic!("{id} did not fail: {other:?}"),
    }
}

#[tokio::test]
async fn a_panic_in_a_handler_is_an_abnormal_exit_and_the_child_is_restarted() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(&log, vec![probe("a", &control)]).await;

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start a", 2).await;

    assert!(failure_message(&root, "a").await.contains("a was told to panic"));
    assert_eq!(ping(&actor(&root, "a").await).await, Some(1));
    assert_eq!(log.lines(), ["start a", "down a boom", "start a"]);
    root.stop().await;
}

#[tokio::test]
async fn an_error_returned_from_a_handler_is_an_abnormal_exit_and_the_child_is_restarted() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(&log, vec![probe("a", &control)]).await;

    tell(&actor(&root, "a").await, ProbeMsg::Fail);
    log.wait_count("start a", 2).await;

    assert!(failure_message(&root, "a").await.contains("a was told to fail"));
    assert_eq!(ping(&actor(&root, "a").await).await, Some(1));
    assert_eq!(log.lines(), ["start a", "down a boom", "start a"]);
    root.stop().await;
}

#[tokio::test]
async fn a_child_killed_from_outside_is_restarted() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(&log, vec![probe("a", &control)]).await;

    actor(&root, "a").await.kill();
    log.wait_count("start a", 2).await;

    assert_eq!(info(&root, "a").await.last_exit, Some(ExitReason::Killed));
    assert_eq!(ping(&actor(&root, "a").await).await, Some(1));
    assert_eq!(log.lines(), ["start a", "down a killed", "start a"]);
    root.stop().await;
}

/// A factory that panics on its second call (the first restart), in the call
/// itself or in the future it returns.
async fn factory_panic_on_restart(in_future: bool) {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(
        &log,
        vec![
            probe_with_panicking_factory("f", &control, &[2], in_future),
            probe("b", &control),
        ],
    )
    .await;

    tell(&actor(&root, "f").await, ProbeMsg::Panic);
    log.wait_count("start f", 2).await;

    assert_eq!(
        log.lines(),
        ["start f", "start b", "down f boom", "init_failed f", "start f"]
    );
    let error = log
        .events()
        .into_iter()
        .find_map(|e| match e {
            SupervisorEvent::ChildStartFailed { error, .. } => Some(error),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(&error, StartError::Panicked(m) if m.contains("panics on call 2")),
        "{error:?}"
    );
    assert!(root.is_alive());
    assert_eq!(ping(&actor(&root, "f").await).await, Some(1));
    root.stop().await;
}

#[tokio::test]
async fn a_factory_that_panics_is_a_failed_start_that_is_retried() {
    factory_panic_on_restart(false).await;
}

#[tokio::test]
async fn a_factory_future_that_panics_is_a_failed_start_that_is_retried() {
    factory_panic_on_restart(true).await;
}

#[tokio::test]
async fn a_panic_inside_a_call_gives_the_caller_an_error_and_the_child_is_restarted() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(&log, vec![probe("a", &control)]).await;
    let a = ActorRef::<ProbeMsg>::from(actor(&root, "a").await);

    // No timeout on the call itself: only the dropped reply port can end it.
    let answer = tokio::time::timeout(Duration::from_secs(10), a.call(ProbeMsg::PanicInCall, None))
        .await
        .expect("the caller gets an answer at once");

    assert!(!matches!(answer, Ok(CallResult::Success(_))), "the call failed");
    log.wait_count("start a", 2).await;
    assert!(failure_message(&root, "a").await.contains("panic in a call"));
    assert_eq!(ping(&actor(&root, "a").await).await, Some(1));
    assert_eq!(log.lines(), ["start a", "down a boom", "start a"]);
    root.stop().await;
}

#[tokio::test]
async fn a_child_supervisor_killed_from_outside_is_restarted_with_fresh_children() {
    let control = Control::new();
    let log = EventLog::new();
    let sub = Supervisor::builder("sub")
        .child(probe("x", &control))
        .child(probe("y", &control))
        .into_child();
    let root = root(&log, vec![sub]).await;
    let old_sub = info(&root, "sub").await.supervisor().unwrap();
    let old_x = actor(&old_sub, "x").await;
    let old_y = actor(&old_sub, "y").await;

    old_sub.kill();
    log.wait_count("start sub", 2).await;
    // Killing a supervisor kills its children with it.
    old_x.wait(None).await.unwrap();
    old_y.wait(None).await.unwrap();

    let new_sub = info(&root, "sub").await.supervisor().unwrap();
    assert_eq!(info(&root, "sub").await.last_exit, Some(ExitReason::Killed));
    assert_eq!(ping(&actor(&new_sub, "x").await).await, Some(1));
    assert_eq!(ping(&actor(&new_sub, "y").await).await, Some(1));
    assert_eq!(
        log.lines(),
        [
            "start x",
            "start y",
            "start sub",
            "down sub killed",
            "start x",
            "start y",
            "start sub",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn after_every_kind_of_crash_the_supervisor_still_answers() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root(
        &log,
        vec![
            probe("panics", &control),
            probe("fails", &control),
            probe("killed", &control),
            probe_with_panicking_factory("factory", &control, &[2, 3], false),
            probe("call", &control),
        ],
    )
    .await;

    tell(&actor(&root, "panics").await, ProbeMsg::Panic);
    tell(&actor(&root, "fails").await, ProbeMsg::Fail);
    actor(&root, "killed").await.kill();
    tell(&actor(&root, "factory").await, ProbeMsg::Panic);
    let call = ActorRef::<ProbeMsg>::from(actor(&root, "call").await);
    let answer = tokio::time::timeout(Duration::from_secs(10), call.call(ProbeMsg::PanicInCall, None))
        .await
        .expect("the caller gets an answer at once");
    assert!(!matches!(answer, Ok(CallResult::Success(_))));
    for id in ["panics", "fails", "killed", "factory", "call"] {
        log.wait_count(&format!("start {id}"), 2).await;
    }

    let children = root.which_children().await.expect("the supervisor answers");
    assert!(children.iter().all(|c| c.state.is_running()), "{children:?}");
    assert_eq!(
        children.iter().map(|c| c.restart_count).collect::<Vec<_>>(),
        [1, 1, 1, 3, 1],
        "the factory's two panics were two failed attempts"
    );
    assert_eq!(
        root.count_children().await.unwrap(),
        ChildCounts {
            specs: 5,
            active: 5,
            supervisors: 0,
            workers: 5
        }
    );
    for c in &children {
        assert!(ping(c.state.actor().unwrap()).await.is_some(), "{} answers", c.id());
    }
    root.stop().await;
    assert_eq!(log.lines().last().unwrap(), "stopped root");
}
