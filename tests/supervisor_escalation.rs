//! Escalation as typed messages (SEMANTICS 17–18): a child supervisor that
//! gives up reaches its parent as an `Escalation` of kind `GaveUp` and the
//! parent applies its own strategy to it; give-ups chain up to the root's
//! handler (a closure or an mpsc sender); workers raise and request on purpose
//! with their `Escalator`; handlers on the way resolve, answer or pass on; and
//! `request` reports `Timeout`, `Unanswered` and `WrongAnswerType`. A bounded
//! channel handler that is full passes escalations on; a concern's value never
//! reaches a log line or an escalation's `Debug`/`Display`.

#[path = "support/probe.rs"]
mod probe;

#[path = "support/log_capture.rs"]
mod log_capture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, cell, child, ping, probe, sub_of, tell};
use tokio::sync::mpsc;
use warden::supervisor::{
    ChildSpec, ChildState, Concern, Disposition, Escalation, EscalationError, EscalationHandler, EscalationKind,
    Intensity, Responder, Restart, Strategy, Supervisor,
};

/// A concern a worker raises.
#[derive(Debug, Clone, PartialEq)]
struct Question(u32);

/// The answer it expects.
#[derive(Debug, Clone, PartialEq)]
struct Answer(u32);

/// Another concern, for handlers that only deal with `Question`s.
#[derive(Debug, Clone, PartialEq)]
struct BudgetExceeded {
    spent: u32,
}

fn paths(route: &[warden::supervisor::ChildPath]) -> Vec<&str> {
    route.iter().map(|p| p.as_str()).collect()
}

/// The value of a raised escalation's concern, as its `Debug` text (read back
/// by type: a concern never prints its value itself).
fn concern_text(e: &Escalation) -> String {
    if let Some(q) = e.concern::<Question>() {
        format!("{q:?}")
    } else if let Some(b) = e.concern::<BudgetExceeded>() {
        format!("{b:?}")
    } else {
        panic!("expected a raised Question or BudgetExceeded, got {e:?}")
    }
}

/// The trace lines about escalations only.
fn escalated(log: &EventLog) -> Vec<String> {
    log.lines().into_iter().filter(|l| l.starts_with("escalated")).collect()
}

/// `root` (one_for_one, generous intensity) with `sub` below it (intensity
/// `n` restarts in a minute) holding the probes `x` and `y`.
fn sub_spec(control: &Arc<Control>, n: u32) -> ChildSpec {
    Supervisor::builder("sub")
        .intensity(n, Duration::from_secs(60))
        .child(probe("x", control))
        .child(probe("y", control))
        .into_child()
}

#[tokio::test]
async fn a_permanent_child_supervisor_that_gives_up_reaches_its_parent_as_gave_up_and_is_restarted() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .intensity(3, Duration::from_secs(60))
        .observer(log.observer())
        .escalation_handler(tx)
        .child(sub_spec(&control, 2))
        .spawn()
        .await
        .unwrap();
    let sub = sub_of(&root, "sub").await;

    for n in 1..=3 {
        tell(&cell(&sub, "x").await, ProbeMsg::Fail);
        if n < 3 {
            log.wait_count("start x", n + 1).await;
        }
    }
    let e = rx.recv().await.expect("the root's handler hears of the give-up");

    assert_eq!(e.origin().as_str(), "root/sub");
    assert!(e.route().is_empty(), "it came straight from the child: {:?}", e.route());
    assert!(!e.expects_answer());
    assert!(e.concern::<Question>().is_none());
    let EscalationKind::GaveUp(g) = e.kind() else {
        panic!("expected GaveUp, got {e:?}");
    };
    assert_eq!(g.supervisor.as_str(), "root/sub");
    assert_eq!(g.child.as_str(), "root/sub/x");
    assert_eq!(g.reason.otp_name(), "boom");
    assert_eq!(
        g.intensity,
        Intensity {
            max_restarts: 2,
            period: Duration::from_secs(60)
        }
    );
    let failures: Vec<(&str, &str)> = g
        .recent_failures
        .iter()
        .map(|f| (f.path.as_str(), f.reason.otp_name()))
        .collect();
    assert_eq!(failures, [("root/sub/x", "boom"); 3]);
    assert!(g.recent_failures.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
    assert_eq!(e.give_up().map(|g| g.child.as_str()), Some("root/sub/x"));
    assert!(e.to_string().contains("root/sub gave up"), "{e}");

    // The parent restarts the permanent child supervisor, with its children.
    log.wait_count("start sub", 2).await;
    let info = child(&root, "sub").await;
    assert_eq!(info.restart_count, 1);
    assert_eq!(info.last_exit.as_ref().map(|r| r.otp_name()), Some("shutdown"));
    let sub2 = sub_of(&root, "sub").await;
    assert_ne!(sub2.actor().get_id(), sub.actor().get_id());
    assert_eq!(ping(&cell(&sub2, "x").await).await, Some(3));
    assert!(!sub.is_alive());
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start x",
            "start y",
            "start sub",
            "down x boom",
            "start x",
            "down x boom",
            "start x",
            "down x boom",
            "gave_up sub",
            "down y shutdown",
            "stopped sub",
            "down sub shutdown",
            "escalated root sub",
            "start x",
            "start y",
            "start sub",
            "down y shutdown",
            "down x shutdown",
            "stopped sub",
            "down sub shutdown",
            "stopped root"
        ]
    );
    assert!(rx.try_recv().is_err(), "one escalation only");
}

#[tokio::test]
async fn the_parent_applies_its_own_strategy_to_a_child_supervisor_that_gave_up() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForAll)
        .intensity(3, Duration::from_secs(60))
        .observer(log.observer())
        .escalation_handler(tx)
        .child(probe("z", &control))
        .child(sub_spec(&control, 0))
        .spawn()
        .await
        .unwrap();
    let sub = sub_of(&root, "sub").await;

    tell(&cell(&sub, "x").await, ProbeMsg::Panic);
    let e = rx.recv().await.unwrap();
    assert_eq!(e.give_up().unwrap().child.as_str(), "root/sub/x");
    log.wait_count("start sub", 2).await;

    // one_for_all: the sibling z was stopped and restarted too.
    assert_eq!(ping(&cell(&root, "z").await).await, Some(1));
    assert_eq!(child(&root, "sub").await.restart_count, 1);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start z",
            "start x",
            "start y",
            "start sub",
            "down x boom",
            "gave_up sub",
            "down y shutdown",
            "stopped sub",
            "down sub shutdown",
            "escalated root sub",
            "down z shutdown",
            "start z",
            "start x",
            "start y",
            "start sub",
            "down y shutdown",
            "down x shutdown",
            "stopped sub",
            "down sub shutdown",
            "down z shutdown",
            "stopped root"
        ]
    );
}

/// SEMANTICS 18: a transient child supervisor's give-up is a `shutdown` exit,
/// a normal one, so the parent keeps its spec, not running, and does not
/// restart it.
#[tokio::test]
async fn a_transient_child_supervisor_that_gives_up_is_not_restarted() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .intensity(3, Duration::from_secs(60))
        .observer(log.observer())
        .escalation_handler(tx)
        .child(sub_spec(&control, 0).restart(Restart::Transient))
        .spawn()
        .await
        .unwrap();
    let sub = sub_of(&root, "sub").await;

    tell(&cell(&sub, "x").await, ProbeMsg::Panic);
    let e = rx.recv().await.unwrap();

    assert_eq!(e.origin().as_str(), "root/sub");
    assert!(matches!(e.kind(), EscalationKind::GaveUp(_)));
    let info = child(&root, "sub").await;
    assert!(matches!(info.state, ChildState::NotRunning));
    assert_eq!(info.restart_count, 0);
    assert!(root.is_alive());
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start x",
            "start y",
            "start sub",
            "down x boom",
            "gave_up sub",
            "down y shutdown",
            "stopped sub",
            "down sub shutdown",
            "escalated root sub",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn a_temporary_child_supervisor_that_gives_up_is_deleted() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(tx)
        .child(sub_spec(&control, 0).restart(Restart::Temporary))
        .spawn()
        .await
        .unwrap();
    let sub = sub_of(&root, "sub").await;

    tell(&cell(&sub, "x").await, ProbeMsg::Panic);
    let e = rx.recv().await.unwrap();

    assert_eq!(e.origin().as_str(), "root/sub");
    assert!(root.which_children().await.unwrap().is_empty());
    root.stop().await;
}

/// What a closure handler saw of each give-up: (supervisor, child, route).
type Seen = Arc<Mutex<Vec<(String, String, Vec<String>)>>>;

/// A closure handler that records every give-up it sees.
fn recording_handler(seen: &Seen) -> impl Fn(Escalation) -> Disposition + Send + Sync + 'static {
    let seen = seen.clone();
    move |e: Escalation| {
        let g = e.give_up().expect("only give-ups here");
        seen.lock().unwrap().push((
            g.supervisor.to_string(),
            g.child.to_string(),
            e.route().iter().map(|p| p.to_string()).collect(),
        ));
        Disposition::Handled
    }
}

/// root > mid > leaf > w, with mid and leaf at intensity 0 and the root at
/// `root_intensity`.
async fn chain(control: &Arc<Control>, log: &EventLog, seen: &Seen, root_intensity: u32) -> Supervisor {
    Supervisor::builder("root")
        .intensity(root_intensity, Duration::from_secs(60))
        .observer(log.observer())
        .escalation_handler(recording_handler(seen))
        .child(
            Supervisor::builder("mid")
                .intensity(0, Duration::from_secs(60))
                .child(
                    Supervisor::builder("leaf")
                        .intensity(0, Duration::from_secs(60))
                        .child(probe("w", control))
                        .into_child(),
                )
                .into_child(),
        )
        .spawn()
        .await
        .unwrap()
}

fn sorted(seen: &Seen) -> Vec<(String, String, Vec<String>)> {
    let mut v = seen.lock().unwrap().clone();
    v.sort();
    v
}

fn s(a: &str) -> String {
    a.to_string()
}

/// w's crash makes leaf give up, which makes mid give up; the root restarts
/// mid. Each parent hears its child's give-up: mid passes leaf's on (it has no
/// handler), and both reach the root's closure handler.
#[tokio::test]
async fn a_chain_of_give_ups_travels_up_level_by_level_to_the_roots_closure_handler() {
    let control = Control::new();
    let log = EventLog::new();
    let seen = Seen::default();
    let root = chain(&control, &log, &seen, 3).await;
    let leaf = sub_of(&sub_of(&root, "mid").await, "leaf").await;

    tell(&cell(&leaf, "w").await, ProbeMsg::Panic);
    log.wait_line("escalated root leaf").await;
    log.wait_count("start mid", 2).await;

    assert_eq!(
        sorted(&seen),
        [
            (s("root/mid"), s("root/mid/leaf"), vec![]),
            (s("root/mid/leaf"), s("root/mid/leaf/w"), vec![s("root/mid")]),
        ]
    );
    assert_eq!(child(&root, "mid").await.restart_count, 1);
    assert_eq!(
        ping(&cell(&sub_of(&sub_of(&root, "mid").await, "leaf").await, "w").await).await,
        Some(1)
    );
    root.stop().await;
    // Where the root handles leaf's passed-on escalation (a mailbox message)
    // relative to mid's exit is up to the scheduler; everything else is causal.
    let lines = log.lines();
    let passed_on = lines.iter().position(|l| l == "escalated root leaf").unwrap();
    assert!(passed_on > lines.iter().position(|l| l == "escalated mid leaf").unwrap());
    let rest: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "escalated root leaf")
        .collect();
    assert_eq!(
        rest,
        [
            "start w",
            "start leaf",
            "start mid",
            "down w boom",
            "gave_up leaf",
            "stopped leaf",
            "down leaf shutdown",
            "escalated mid leaf",
            "gave_up mid",
            "stopped mid",
            "down mid shutdown",
            "escalated root mid",
            "start w",
            "start leaf",
            "start mid",
            "down w shutdown",
            "stopped leaf",
            "down leaf shutdown",
            "stopped mid",
            "down mid shutdown",
            "stopped root"
        ]
    );
}

/// The same chain with a root at intensity 0: the root gives up too, and its
/// handler must hear every level: leaf's give-up (passed on by mid), mid's,
/// and its own.
#[tokio::test]
async fn a_chain_of_give_ups_up_to_a_root_that_gives_up_reaches_the_roots_handler_at_every_level() {
    let control = Control::new();
    let log = EventLog::new();
    let seen = Seen::default();
    let root = chain(&control, &log, &seen, 0).await;
    let leaf = sub_of(&sub_of(&root, "mid").await, "leaf").await;

    tell(&cell(&leaf, "w").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        sorted(&seen),
        [
            (s("root"), s("root/mid"), vec![]),
            (s("root/mid"), s("root/mid/leaf"), vec![]),
            (s("root/mid/leaf"), s("root/mid/leaf/w"), vec![s("root/mid")]),
        ]
    );
    let mut escalations = escalated(&log);
    escalations.sort();
    assert_eq!(
        escalations,
        [
            "escalated mid leaf",
            "escalated root leaf",
            "escalated root mid",
            "escalated root root"
        ]
    );
}

#[tokio::test]
async fn a_roots_own_give_up_goes_to_its_mpsc_handler() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .intensity(0, Duration::from_secs(60))
        .observer(log.observer())
        .escalation_handler(tx)
        .child(probe("a", &control))
        .child(probe("b", &control))
        .spawn()
        .await
        .unwrap();

    tell(&cell(&root, "a").await, ProbeMsg::Panic);
    let e = rx.recv().await.unwrap();
    root.wait().await;

    assert_eq!(e.origin().as_str(), "root");
    let g = e.give_up().unwrap();
    assert_eq!((g.supervisor.as_str(), g.child.as_str()), ("root", "root/a"));
    assert_eq!(g.intensity.max_restarts, 0);
    assert!(e.route().is_empty());
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a boom",
            "gave_up root",
            "down b shutdown",
            "escalated root root",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn a_worker_raises_a_concern_that_reaches_the_root_through_its_supervisor() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(tx)
        .child(Supervisor::builder("sub").child(probe("w", &control)).into_child())
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");
    assert_eq!(escalator.origin().as_str(), "root/sub/w");

    escalator.raise(BudgetExceeded { spent: 12 }).unwrap();
    let e = rx.recv().await.unwrap();

    assert_eq!(e.origin().as_str(), "root/sub/w");
    assert_eq!(concern_text(&e), "BudgetExceeded { spent: 12 }");
    assert!(e.give_up().is_none());
    assert!(!e.expects_answer());
    assert_eq!(e.to_string(), "root/sub/w raised a BudgetExceeded concern");
    assert_eq!(paths(e.route()), ["root/sub"]);
    // Raising is not a failure: nothing was restarted.
    assert_eq!(ping(&cell(&sub_of(&root, "sub").await, "w").await).await, Some(0));
    root.stop().await;
    assert_eq!(escalated(&log), ["escalated sub w", "escalated root w"]);
}

#[tokio::test]
async fn a_raised_concern_is_read_back_as_its_type() {
    let control = Control::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .escalation_handler(tx)
        .child(probe("w", &control))
        .spawn()
        .await
        .unwrap();

    control.escalator("w").raise(BudgetExceeded { spent: 12 }).unwrap();
    let e = rx.recv().await.unwrap();

    assert_eq!(e.concern::<BudgetExceeded>(), Some(&BudgetExceeded { spent: 12 }));
    assert_eq!(e.concern::<Question>(), None);
    match e.kind() {
        EscalationKind::Raised(c) => assert_eq!(c.downcast_ref::<BudgetExceeded>().map(|b| b.spent), Some(12)),
        other => panic!("expected Raised, got {other:?}"),
    }
    root.stop().await;
}

#[tokio::test]
async fn a_mid_level_handler_answers_a_request_so_it_never_reaches_the_root() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(tx)
        .child(
            Supervisor::builder("sub")
                .escalation_handler(|mut e: Escalation| {
                    if e.expects_answer() {
                        e.answer(Answer(42)).unwrap();
                        Disposition::Handled
                    } else {
                        Disposition::Escalate(e)
                    }
                })
                .child(probe("w", &control))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();

    let answer = control
        .escalator("w")
        .request::<_, Answer>(Question(21), Duration::from_secs(5))
        .await;

    assert_eq!(answer, Ok(Answer(42)));
    assert!(rx.try_recv().is_err(), "the root never saw it");
    assert_eq!(escalated(&log), ["escalated sub w"]);
    root.stop().await;
}

#[tokio::test]
async fn a_handler_takes_the_responder_and_answers_later() {
    let control = Control::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .escalation_handler(tx)
        .child(probe("w", &control))
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");
    let request = tokio::spawn(async move {
        escalator
            .request::<_, Answer>(Question(1), Duration::from_secs(60))
            .await
    });

    let mut e = rx.recv().await.unwrap();
    assert_eq!(concern_text(&e), "Question(1)");
    assert!(e.expects_answer());
    let responder = e.take_responder().unwrap();
    assert!(!e.expects_answer());
    assert!(e.take_responder().is_none());
    assert_eq!(e.answer(Answer(0)), Err(EscalationError::NoAnswerExpected));
    drop(e);
    responder.answer(Answer(99)).unwrap();

    assert_eq!(request.await.unwrap(), Ok(Answer(99)));
    root.stop().await;
}

#[tokio::test]
async fn a_mid_level_handler_takes_the_responder_so_the_answer_comes_later_and_never_from_the_root() {
    let control = Control::new();
    let log = EventLog::new();
    let (root_tx, mut root_rx) = mpsc::unbounded_channel::<Escalation>();
    let (responders_tx, mut responders) = mpsc::unbounded_channel::<Responder>();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(root_tx)
        .child(
            Supervisor::builder("sub")
                .escalation_handler(move |mut e: Escalation| match e.take_responder() {
                    Some(r) => {
                        responders_tx.send(r).unwrap();
                        Disposition::Handled
                    }
                    None => Disposition::Escalate(e),
                })
                .child(probe("w", &control))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");
    let request = tokio::spawn(async move {
        escalator
            .request::<_, Answer>(Question(4), Duration::from_secs(60))
            .await
    });

    let responder = responders.recv().await.unwrap();
    assert!(!request.is_finished());
    responder.answer(Answer(16)).unwrap();

    assert_eq!(request.await.unwrap(), Ok(Answer(16)));
    assert!(root_rx.try_recv().is_err(), "the root never saw it");
    assert_eq!(escalated(&log), ["escalated sub w"]);
    root.stop().await;
}

#[tokio::test]
async fn a_mid_level_handler_passes_an_escalation_on_with_disposition_escalate() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let looked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mid_saw = looked.clone();
    let mid = move |e: Escalation| {
        mid_saw.lock().unwrap().push(e.id());
        Disposition::Escalate(e)
    };
    let root = root_over_sub(&control, &log, tx, mid).await;
    let escalator = control.escalator("w");
    let request = tokio::spawn(async move {
        escalator
            .request::<_, Answer>(Question(3), Duration::from_secs(60))
            .await
    });

    let mut e = rx.recv().await.unwrap();
    assert_eq!(*looked.lock().unwrap(), [e.id()], "sub's handler saw it first");
    assert_eq!(paths(e.route()), ["root/sub"]);
    assert!(e.expects_answer());
    e.answer(Answer(7)).unwrap();

    assert_eq!(request.await.unwrap(), Ok(Answer(7)));
    assert_eq!(escalated(&log), ["escalated sub w", "escalated root w"]);
    root.stop().await;
}

#[tokio::test]
async fn route_lists_every_supervisor_an_escalation_passed_nearest_first() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(tx)
        .child(
            Supervisor::builder("a")
                .child(Supervisor::builder("b").child(probe("w", &control)).into_child())
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();

    control.escalator("w").raise(Question(0)).unwrap();
    let e = rx.recv().await.unwrap();

    assert_eq!(e.origin().as_str(), "root/a/b/w");
    assert_eq!(paths(e.route()), ["root/a/b", "root/a"]);
    assert_eq!(escalated(&log), ["escalated b w", "escalated a w", "escalated root w"]);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn request_fails_with_timeout_at_its_deadline() {
    let control = Control::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .escalation_handler(tx)
        .child(probe("w", &control))
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");
    let request = tokio::spawn(async move {
        escalator
            .request::<_, Answer>(Question(5), Duration::from_secs(30))
            .await
    });
    // Held, never answered in time.
    let mut e = rx.recv().await.unwrap();

    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(!request.is_finished());
    tokio::time::advance(Duration::from_secs(1)).await;

    assert_eq!(request.await.unwrap(), Err(EscalationError::Timeout));
    assert_eq!(e.answer(Answer(5)), Err(EscalationError::RequesterGone));
    root.stop().await;
}

#[tokio::test]
async fn request_fails_with_unanswered_when_the_root_has_no_handler() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .child(Supervisor::builder("sub").child(probe("w", &control)).into_child())
        .spawn()
        .await
        .unwrap();

    let answer = control
        .escalator("w")
        .request::<_, Answer>(Question(1), Duration::from_secs(60))
        .await;

    assert_eq!(answer, Err(EscalationError::Unanswered));
    assert_eq!(escalated(&log), ["escalated sub w", "escalated root w"]);
    assert!(root.is_alive());
    root.stop().await;
}

#[tokio::test]
async fn request_fails_with_unanswered_when_a_handler_resolves_it_without_answering() {
    let control = Control::new();
    let root = Supervisor::builder("root")
        .escalation_handler(|_e: Escalation| Disposition::Handled)
        .child(probe("w", &control))
        .spawn()
        .await
        .unwrap();

    let answer = control
        .escalator("w")
        .request::<_, Answer>(Question(1), Duration::from_secs(60))
        .await;

    assert_eq!(answer, Err(EscalationError::Unanswered));
    root.stop().await;
}

#[tokio::test]
async fn request_fails_with_wrong_answer_type_for_an_answer_of_another_type() {
    let control = Control::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .escalation_handler(tx)
        .child(probe("w", &control))
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");
    let request = tokio::spawn(async move { escalator.request::<_, u32>(Question(1), Duration::from_secs(60)).await });

    rx.recv().await.unwrap().answer("forty-two".to_string()).unwrap();

    assert_eq!(
        request.await.unwrap(),
        Err(EscalationError::WrongAnswerType { expected: "u32" })
    );
    root.stop().await;
}

#[tokio::test]
async fn an_mpsc_handler_whose_receiver_is_gone_passes_escalations_to_the_parent() {
    let control = Control::new();
    let (root_tx, mut root_rx) = mpsc::unbounded_channel::<Escalation>();
    let (sub_tx, sub_rx) = mpsc::unbounded_channel::<Escalation>();
    drop(sub_rx);
    let root = root_over_sub(&control, &EventLog::new(), root_tx, sub_tx).await;

    control.escalator("w").raise(Question(9)).unwrap();
    let e = root_rx.recv().await.unwrap();

    assert_eq!(concern_text(&e), "Question(9)");
    assert_eq!(paths(e.route()), ["root/sub"]);
    root.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_does_not_take_the_supervisor_down() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(tx)
        .child(
            Supervisor::builder("sub")
                .escalation_handler(|_e: Escalation| -> Disposition { panic!("handler bug") })
                .child(probe("w", &control))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");

    escalator.raise(Question(1)).unwrap();
    // The escalation the handler panicked on is lost, and its requester told so.
    let answer = escalator
        .request::<_, Answer>(Question(2), Duration::from_secs(60))
        .await;

    assert_eq!(answer, Err(EscalationError::Unanswered));
    let sub = sub_of(&root, "sub").await;
    assert!(sub.is_alive());
    assert_eq!(child(&root, "sub").await.restart_count, 0);
    assert_eq!(ping(&cell(&sub, "w").await).await, Some(0), "w was not restarted");
    assert_eq!(sub.count_children().await.unwrap().active, 1);
    assert!(rx.try_recv().is_err(), "nothing was passed on to the root");
    assert_eq!(escalated(&log), ["escalated sub w", "escalated sub w"]);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start w",
            "start sub",
            "escalated sub w",
            "escalated sub w",
            "down w shutdown",
            "stopped sub",
            "down sub shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test]
async fn escalating_to_a_supervisor_that_is_gone_fails_with_supervisor_down() {
    let control = Control::new();
    let root = Supervisor::builder("root")
        .child(probe("w", &control))
        .spawn()
        .await
        .unwrap();
    let escalator = control.escalator("w");
    root.stop().await;

    assert_eq!(escalator.raise(Question(1)), Err(EscalationError::SupervisorDown));
    assert_eq!(
        escalator
            .request::<_, Answer>(Question(1), Duration::from_secs(1))
            .await,
        Err(EscalationError::SupervisorDown)
    );
}

/// `root` over `sub` over a probe `w`, each supervisor with its handler, all
/// recorded in `log`.
async fn root_over_sub(
    control: &Arc<Control>,
    log: &EventLog,
    root_handler: impl EscalationHandler,
    sub_handler: impl EscalationHandler,
) -> Supervisor {
    Supervisor::builder("root")
        .observer(log.observer())
        .escalation_handler(root_handler)
        .child(
            Supervisor::builder("sub")
                .escalation_handler(sub_handler)
                .child(probe("w", control))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap()
}

/// What a tool call could carry: a secret a concern must never print.
#[derive(Debug)]
#[allow(dead_code)]
struct ToolCall {
    authorization: String,
}

const SECRET: &str = "sk-PLANTED-SECRET-4711";

/// Issue 17 point 9: an escalation printed its concern with `{:?}`, and the
/// root logs unhandled escalations, so a worker's secret reached the log.
#[tokio::test]
async fn a_raised_concern_never_prints_its_value_to_logs_debug_or_display() {
    let (logs, _guard) = log_capture::LogCapture::install();
    let control = Control::new();
    let log = EventLog::new();
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = printed.clone();
    let sub_handler = move |e: Escalation| {
        seen.lock().unwrap().push(format!("{e} | {e:?} | {:?}", e.kind()));
        Disposition::Escalate(e)
    };
    // The root's handler passes everything on too: the root logs it as unhandled.
    let root = root_over_sub(&control, &log, Disposition::Escalate, sub_handler).await;
    let escalator = control.escalator("w");
    let call = || ToolCall {
        authorization: format!("Bearer {SECRET}"),
    };

    escalator.raise(call()).unwrap();
    escalator
        .raise_concern(Concern::new(call()).with_summary("tool call refused"))
        .unwrap();
    log.wait_count("escalated root w", 2).await;
    root.stop().await;

    let printed = printed.lock().unwrap().clone();
    assert_eq!(printed.len(), 2);
    assert!(
        printed[0].starts_with("root/sub/w raised a ToolCall concern |"),
        "{printed:?}"
    );
    assert!(
        printed[1].starts_with("root/sub/w raised a ToolCall concern: tool call refused |"),
        "{printed:?}"
    );
    let logs = logs.text();
    assert!(logs.contains("unhandled escalation reached the root"), "{logs}");
    assert!(logs.contains("tool call refused"), "{logs}");
    for text in printed.iter().chain([&logs]) {
        assert!(!text.contains(SECRET), "the secret was printed: {text}");
    }
}

/// Issue 17, Low: a bounded channel is a handler that never blocks its
/// supervisor; when it is full, the escalation goes on to the parent.
#[tokio::test]
async fn a_full_bounded_channel_handler_passes_the_escalation_on_to_the_parent() {
    let control = Control::new();
    let (sub_tx, mut sub_rx) = mpsc::channel::<Escalation>(1);
    let (root_tx, mut root_rx) = mpsc::channel::<Escalation>(8);
    let root = root_over_sub(&control, &EventLog::new(), root_tx, sub_tx).await;
    let escalator = control.escalator("w");

    escalator.raise(Question(1)).unwrap();
    escalator.raise(Question(2)).unwrap();

    let passed_on = root_rx.recv().await.unwrap();
    assert_eq!(passed_on.concern::<Question>(), Some(&Question(2)));
    assert_eq!(paths(passed_on.route()), ["root/sub"]);
    let kept = sub_rx.recv().await.unwrap();
    assert_eq!(kept.concern::<Question>(), Some(&Question(1)));
    assert!(sub_rx.try_recv().is_err());
    root.stop().await;
}
