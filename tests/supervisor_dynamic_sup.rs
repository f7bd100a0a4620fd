//! The dynamic supervisor, OTP's `simple_one_for_one` (SEMANTICS 33, 41–45):
//! children started from one template with arguments, restarted with the same
//! arguments, one intensity budget for all, `terminate_child` by actor, OTP's
//! answers to the calls it does not serve, a parallel shutdown, escalation to
//! a regular parent, and many children.

#[path = "support/probe.rs"]
mod probe;

use std::sync::Arc;
use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, ping, start_probe, tell};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;
use warden::supervisor::{
    ChildCounts, ChildError, ChildKind, DynamicSupervisor, DynamicSupervisorBuilder, Escalation, Restart, Shutdown,
    StartContext, StartError, Strategy, Supervisor,
};

/// A dynamic supervisor of probes: a child's argument is its probe id.
fn probes(log: &EventLog, control: &Arc<Control>) -> DynamicSupervisorBuilder<String> {
    let control = control.clone();
    DynamicSupervisor::builder("dyn", move |ctx: StartContext, id: String| {
        start_probe(ctx, id, control.clone())
    })
    .intensity(3, Duration::from_secs(5))
    .observer(log.observer())
}

/// `count_children` as OTP's `[specs, active, supervisors, workers]`.
async fn counts<A>(sup: &DynamicSupervisor<A>) -> [usize; 4] {
    let ChildCounts {
        specs,
        active,
        supervisors,
        workers,
    } = sup.count_children().await.unwrap();
    [specs, active, supervisors, workers]
}

/// The children's ids (numbers), newest first, as `which_children` lists them.
async fn ids<A>(sup: &DynamicSupervisor<A>) -> Vec<String> {
    let children = sup.which_children().await.unwrap();
    children.iter().map(|c| c.id().to_string()).collect()
}

#[tokio::test]
async fn children_start_from_the_template_with_their_arguments() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control).spawn().await.unwrap();

    let a = sup.start_child("a".into()).await.unwrap();
    let b = sup.start_child("b".into()).await.unwrap();

    assert_eq!((control.starts("a"), control.starts("b")), (1, 1));
    assert_eq!(ping(&a).await, Some(0));
    assert_eq!(ping(&b).await, Some(0));
    assert_eq!(counts(&sup).await, [1, 2, 0, 2]);
    // Newest first, as OTP; each child is named by its number.
    assert_eq!(ids(&sup).await, ["1", "0"]);
    let children = sup.which_children().await.unwrap();
    assert_eq!(children[0].state.actor().unwrap().get_id(), b.get_id());
    assert_eq!(children[0].path.as_str(), "dyn/1");
    sup.stop().await;
}

#[tokio::test]
async fn a_permanent_child_is_restarted_with_the_same_arguments() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control).spawn().await.unwrap();
    let a = sup.start_child("a".into()).await.unwrap();

    tell(&a, ProbeMsg::Panic);
    log.wait_count("start 0", 2).await;

    assert_eq!(control.starts("a"), 2);
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].restart_count, 1);
    let again = children[0].state.actor().unwrap().clone();
    assert_ne!(again.get_id(), a.get_id());
    assert_eq!(ping(&again).await, Some(1), "the probe called \"a\" again");
    assert_eq!(log.lines(), ["start 0", "down 0 boom", "start 0"]);
    sup.stop().await;
}

#[tokio::test]
async fn a_transient_child_is_restarted_only_after_an_abnormal_exit() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control)
        .restart(Restart::Transient)
        .spawn()
        .await
        .unwrap();
    let a = sup.start_child("a".into()).await.unwrap();
    let b = sup.start_child("b".into()).await.unwrap();

    tell(&a, ProbeMsg::Fail);
    log.wait_count("start 0", 2).await;
    tell(&b, ProbeMsg::StopNormal);
    log.wait_line("down 1 normal").await;

    assert_eq!(counts(&sup).await, [1, 1, 0, 1]);
    assert_eq!(ids(&sup).await, ["0"]);
    assert_eq!((control.starts("a"), control.starts("b")), (2, 1));
    sup.stop().await;
}

#[tokio::test]
async fn a_temporary_child_is_never_restarted() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control)
        .restart(Restart::Temporary)
        .spawn()
        .await
        .unwrap();
    let a = sup.start_child("a".into()).await.unwrap();

    tell(&a, ProbeMsg::Panic);
    log.wait_line("down 0 boom").await;

    assert_eq!(counts(&sup).await, [1, 0, 0, 0]);
    assert_eq!(control.starts("a"), 1);
    sup.stop().await;
    assert_eq!(log.lines(), ["start 0", "down 0 boom", "stopped dyn"]);
}

/// SEMANTICS 43: with 2 restarts allowed, crashes spread over two children
/// use one budget, and the third makes the supervisor give up.
#[tokio::test]
async fn all_children_share_one_intensity_budget() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control)
        .intensity(2, Duration::from_secs(3600))
        .spawn()
        .await
        .unwrap();
    let a = sup.start_child("a".into()).await.unwrap();
    let b = sup.start_child("b".into()).await.unwrap();

    tell(&a, ProbeMsg::Panic);
    log.wait_count("start 0", 2).await;
    tell(&b, ProbeMsg::Panic);
    log.wait_count("start 1", 2).await;
    let a = sup.which_children().await.unwrap()[1].state.actor().unwrap().clone();
    tell(&a, ProbeMsg::Panic);
    sup.wait().await;

    let lines = log.lines();
    assert_eq!(
        lines[..6],
        ["start 0", "start 1", "down 0 boom", "start 0", "down 1 boom", "start 1"]
    );
    assert_eq!(
        lines[6..],
        [
            "down 0 boom",
            "gave_up dyn",
            "down 1 shutdown",
            "escalated dyn dyn",
            "stopped dyn"
        ]
    );
}

/// SEMANTICS 42.
#[tokio::test]
async fn terminate_child_takes_an_actor_and_does_not_restart_it() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control).spawn().await.unwrap();
    let a = sup.start_child("a".into()).await.unwrap();
    sup.start_child("b".into()).await.unwrap();

    sup.terminate_child(&a).await.unwrap();

    assert_eq!(counts(&sup).await, [1, 1, 0, 1]);
    assert_eq!(ids(&sup).await, ["1"]);
    assert_eq!(control.starts("a"), 1, "not restarted");
    assert!(a.get_status() >= ractor::ActorStatus::Stopped);
    // An already-dead former child: ok.
    sup.terminate_child(&a).await.unwrap();
    // A live actor that is not a child: not_found, and it is left alone.
    let (stranger, _join) = Actor::spawn(None, Idle, 0).await.unwrap();
    let err = sup.terminate_child(&stranger.get_cell()).await.unwrap_err();
    assert!(matches!(err, ChildError::NotFound), "{err:?}");
    assert_eq!(stranger.get_status(), ractor::ActorStatus::Running);
    stranger.stop(None);
    assert_eq!(log.lines(), ["start 0", "start 1", "down 0 shutdown"]);
    sup.stop().await;
}

/// SEMANTICS 42: what a simple_one_for_one does not serve.
#[tokio::test]
async fn ids_restart_child_and_delete_child_answer_simple_one_for_one() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control).spawn().await.unwrap();
    sup.start_child("a".into()).await.unwrap();
    let untyped = sup.as_supervisor();

    let answers = [
        untyped.terminate_child("0").await.unwrap_err(),
        untyped.restart_child("0").await.unwrap_err(),
        untyped.delete_child("0").await.unwrap_err(),
        untyped.start_child(probe::probe("x", &control)).await.unwrap_err(),
    ];

    for answer in answers {
        assert_eq!(answer.otp_name(), "simple_one_for_one", "{answer:?}");
    }
    assert_eq!(counts(&sup).await, [1, 1, 0, 1]);
    sup.stop().await;
}

#[tokio::test]
async fn a_failed_start_keeps_nothing_and_a_failed_restart_is_tried_again() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control)
        .intensity(5, Duration::from_secs(5))
        .spawn()
        .await
        .unwrap();
    control.fail_next_starts("a", 1);

    let err = sup.start_child("a".into()).await.unwrap_err();
    assert!(matches!(err, ChildError::StartFailed(StartError::Init(_))), "{err:?}");
    assert_eq!(counts(&sup).await, [1, 0, 0, 0]);

    let b = sup.start_child("b".into()).await.unwrap();
    control.fail_next_starts("b", 2);
    tell(&b, ProbeMsg::Panic);
    log.wait_count("start 1", 2).await;

    assert_eq!(
        log.lines(),
        [
            "init_failed 0",
            "start 1",
            "down 1 boom",
            "init_failed 1",
            "init_failed 1",
            "start 1"
        ]
    );
    assert_eq!(sup.which_children().await.unwrap()[0].restart_count, 3);
    sup.stop().await;
}

/// SEMANTICS 33: 3 children, shutdown 2 s; two stop after 1 s and one would
/// need 5 s. All are asked at once: the stop takes the 2 s of the shared
/// timer, not the sum, and the slow child ends killed.
#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_child_at_once_under_one_timer() {
    let (control, log) = (Control::new(), EventLog::new());
    for (id, secs) in [("a", 1), ("b", 1), ("c", 5)] {
        control.slow_stop(id, Duration::from_secs(secs));
    }
    let sup = probes(&log, &control)
        .shutdown(Shutdown::Timeout(Duration::from_secs(2)))
        .spawn()
        .await
        .unwrap();
    for id in ["a", "b", "c"] {
        sup.start_child(id.into()).await.unwrap();
    }

    let started = tokio::time::Instant::now();
    sup.stop().await;
    let took = started.elapsed();

    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "one shared timer: {took:?}"
    );
    let mut downs: Vec<String> = log.lines().into_iter().filter(|l| l.starts_with("down")).collect();
    downs.sort();
    assert_eq!(downs, ["down 0 shutdown", "down 1 shutdown", "down 2 killed"]);
    assert_eq!(log.lines().last().unwrap(), "stopped dyn");
}

/// SEMANTICS 32: a child that crashes while its supervisor stops it is
/// reported with its own reason, not `shutdown`, and is not restarted.
#[tokio::test(start_paused = true)]
async fn a_child_that_crashes_as_it_is_being_stopped_is_reported_with_its_own_reason() {
    let (control, log) = (Control::new(), EventLog::new());
    control.fail_on_stop("b");
    let sup = probes(&log, &control).spawn().await.unwrap();
    sup.start_child("a".into()).await.unwrap();
    sup.start_child("b".into()).await.unwrap();

    sup.stop().await;

    let mut downs: Vec<String> = log.lines().into_iter().filter(|l| l.starts_with("down")).collect();
    downs.sort();
    assert_eq!(downs, ["down 0 shutdown", "down 1 boom"]);
    assert_eq!(log.lines().last().unwrap(), "stopped dyn");
    assert_eq!(control.starts("b"), 1, "nothing is restarted during a shutdown");
}

/// While it stops, the supervisor still answers introspection and refuses
/// new children with `NoProc`.
#[tokio::test(start_paused = true)]
async fn while_stopping_it_answers_introspection_and_refuses_new_children() {
    let (control, log) = (Control::new(), EventLog::new());
    control.slow_stop("a", Duration::from_secs(1));
    let sup = probes(&log, &control).spawn().await.unwrap();
    sup.start_child("a".into()).await.unwrap();

    // Its first poll sends the stop, ahead of whatever is asked after it.
    let mut stop = Box::pin(sup.stop());
    assert!(futures::poll!(&mut stop).is_pending());
    assert!(matches!(sup.start_child("b".into()).await, Err(ChildError::NoProc(_))));
    assert_eq!(counts(&sup).await[1], 1, "the slow child is still stopping");
    assert_eq!(ids(&sup).await, ["0"]);
    stop.await;
    assert_eq!(control.starts("b"), 0);
    assert_eq!(log.lines().last().unwrap(), "stopped dyn");
}

#[tokio::test(start_paused = true)]
async fn a_brutal_kill_shutdown_kills_every_child_at_once() {
    let (control, log) = (Control::new(), EventLog::new());
    control.slow_stop("a", Duration::from_secs(30));
    let sup = probes(&log, &control)
        .shutdown(Shutdown::BrutalKill)
        .spawn()
        .await
        .unwrap();
    sup.start_child("a".into()).await.unwrap();
    sup.start_child("b".into()).await.unwrap();

    let started = tokio::time::Instant::now();
    sup.stop().await;

    assert!(started.elapsed() < Duration::from_secs(1));
    let mut downs: Vec<String> = log.lines().into_iter().filter(|l| l.starts_with("down")).collect();
    downs.sort();
    assert_eq!(downs, ["down 0 killed", "down 1 killed"]);
}

/// Under a regular supervisor: a give-up escalates to the parent, which
/// restarts the dynamic supervisor empty.
#[tokio::test]
async fn as_a_child_it_escalates_its_give_up_and_is_restarted_empty() {
    let (control, log) = (Control::new(), EventLog::new());
    let (tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let control2 = control.clone();
    let dynamic = DynamicSupervisor::builder("dyn", move |ctx: StartContext, id: String| {
        start_probe(ctx, id, control2.clone())
    })
    .intensity(0, Duration::from_secs(5));
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .observer(log.observer())
        .escalation_handler(tx)
        .child(dynamic.into_child())
        .spawn()
        .await
        .unwrap();
    let first = probe::sub_of(&root, "dyn").await;
    let sup = DynamicSupervisor::<String>::from_supervisor(first.clone());
    let a = sup.start_child("a".into()).await.unwrap();

    tell(&a, ProbeMsg::Panic);
    let escalation = escalations.recv().await.unwrap();
    log.wait_count("start dyn", 2).await;

    let give_up = escalation.give_up().expect("a give-up");
    assert_eq!(give_up.supervisor.as_str(), "root/dyn");
    assert_eq!(give_up.child.as_str(), "root/dyn/0");
    assert!(!first.is_alive());
    let again = DynamicSupervisor::<String>::from_supervisor(probe::sub_of(&root, "dyn").await);
    assert_eq!(counts(&again).await, [1, 0, 0, 0]);
    assert_eq!(
        log.lines(),
        [
            "start dyn",
            "start 0",
            "down 0 boom",
            "gave_up dyn",
            "stopped dyn",
            "down dyn shutdown",
            "escalated root dyn",
            "start dyn"
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn a_child_escalates_to_the_dynamic_supervisor() {
    let (control, log) = (Control::new(), EventLog::new());
    let (tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let sup = probes(&log, &control).escalation_handler(tx).spawn().await.unwrap();
    sup.start_child("a".into()).await.unwrap();

    control.escalator("a").raise("need a human").unwrap();

    let escalation = escalations.recv().await.unwrap();
    assert_eq!(escalation.origin().as_str(), "dyn/0");
    assert_eq!(escalation.concern::<&str>(), Some(&"need a human"));
    sup.stop().await;
}

/// A dynamic supervisor of subtrees: each child is a supervisor made from a
/// spec, named by its number; its own children sit below that number, what
/// they escalate reaches the dynamic supervisor through the subtree, and
/// terminating the child stops its whole subtree.
#[tokio::test]
async fn whole_subtrees_are_dynamic_children() {
    let (control, log) = (Control::new(), EventLog::new());
    let (tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let probes = control.clone();
    let teams = DynamicSupervisor::of_specs("teams", move |team: String| {
        Supervisor::builder(team.clone())
            .strategy(Strategy::OneForOne)
            .child(probe::probe(&format!("{team}-reader"), &probes))
            .child(probe::probe(&format!("{team}-writer"), &probes))
            .into_child()
    })
    .kind(ChildKind::Supervisor)
    .restart(Restart::Temporary)
    .observer(log.observer())
    .escalation_handler(tx)
    .spawn()
    .await
    .unwrap();

    let acme = teams.start_child("acme".into()).await.unwrap();
    teams.start_child("initech".into()).await.unwrap();

    assert_eq!(counts(&teams).await, [1, 2, 2, 0]);
    let children = teams.which_children().await.unwrap();
    let first = children.iter().find(|c| c.id() == "0").unwrap();
    assert_eq!(first.kind, ChildKind::Supervisor);
    assert_eq!(first.state.actor().unwrap().get_id(), acme.get_id());
    let team = first.supervisor().expect("a handle on the subtree");
    assert_eq!(team.path().as_str(), "teams/0");
    let ids: Vec<_> = team
        .which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(ids, ["teams/0/acme-reader", "teams/0/acme-writer"]);
    assert_eq!(control.starts("initech-writer"), 1);

    control.escalator("acme-writer").raise("stuck").unwrap();
    let escalation = escalations.recv().await.unwrap();
    assert_eq!(escalation.origin().as_str(), "teams/0/acme-writer");

    teams.terminate_child(&acme).await.unwrap();
    assert!(!team.is_alive());
    assert_eq!(counts(&teams).await, [1, 1, 1, 0]);
    let downs: Vec<_> = log.lines().into_iter().filter(|l| l.starts_with("down")).collect();
    // The subtree stops in order (its observer is the dynamic supervisor's).
    assert_eq!(
        downs,
        [
            "down acme-writer shutdown",
            "down acme-reader shutdown",
            "down 0 shutdown"
        ]
    );
    teams.stop().await;
}

#[tokio::test]
async fn a_handle_of_the_wrong_argument_type_is_refused() {
    let (control, log) = (Control::new(), EventLog::new());
    let sup = probes(&log, &control).spawn().await.unwrap();
    let wrong = DynamicSupervisor::<u32>::from_supervisor(sup.as_supervisor().clone());

    let err = wrong.start_child(7).await.unwrap_err();

    assert!(matches!(err, ChildError::WrongArguments { .. }), "{err:?}");
    assert_eq!(counts(&sup).await, [1, 0, 0, 0]);
    sup.stop().await;
}

/// SEMANTICS 45, at a scale a test can afford: thousands of children start,
/// are counted, and stop with their supervisor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_children() {
    let sup = DynamicSupervisor::of_actors("many", |n: u64| (Idle, n))
        .restart(Restart::Temporary)
        .spawn()
        .await
        .unwrap();
    let mut cells: Vec<ActorCell> = Vec::new();
    for n in 0..5_000u64 {
        cells.push(sup.start_child(n).await.unwrap());
    }
    assert_eq!(counts(&sup).await, [1, 5_000, 0, 5_000]);

    sup.stop().await;

    assert!(cells.iter().all(|c| c.get_status() == ractor::ActorStatus::Stopped));
}

/// An actor that does nothing.
struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = u64;

    async fn pre_start(&self, _: ActorRef<()>, _: Self::Arguments) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn stopping_a_dynamic_supervisor_leaves_no_task_behind() {
    let before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let control = Control::new();
    let dynamic = {
        let control = control.clone();
        DynamicSupervisor::builder("dyn", move |ctx: StartContext, id: String| {
            start_probe(ctx, id, control.clone())
        })
        .shutdown(Shutdown::Timeout(Duration::from_secs(3600)))
        .spawn()
        .await
        .expect("the supervisor starts")
    };
    for i in 0..20 {
        dynamic.start_child(format!("c{i}")).await.expect("a child starts");
    }
    dynamic.stop().await;
    drop(dynamic);

    // The shutdown's timer (an hour) must not outlive the supervisor.
    assert_eq!(
        probe::alive_tasks_settled(before).await,
        before,
        "every task of the tree has ended"
    );
}
