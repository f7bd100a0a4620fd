//! Significant children and auto-shutdown (SEMANTICS.md 46–50): the specs OTP
//! refuses are refused; under `AnySignificant` a significant child's own exit
//! that is not restarted shuts its supervisor down, under `AllSignificant` the
//! last one's does; `terminate_child`, group restarts and non-significant
//! children never do; and the shutdown passes up through significant
//! transient supervisors.
//!
//! Each scenario is also run on Erlang/OTP's own `supervisor` by
//! `tests/otp/significant.escript`; the `OTP:` traces below are its output.
//! Warden's trace has a few lines OTP's has not (`auto_shutdown SUP`,
//! `stopped SUP`, `gave_up SUP`, `escalated ...`): [`otp_view`] leaves them out before
//! comparing. In both, `root` is the supervisor under test and its parent is
//! the observer of its exit (OTP: the test process; here: a supervisor `top`).

#[path = "support/probe.rs"]
mod probe;

use std::sync::Arc;
use std::time::Duration;

use probe::{Control, EventLog, ProbeMsg, cell, probe, sub_of, tell};
use tokio::sync::mpsc;
use warden::supervisor::{
    AutoShutdown, Backoff, ChildError, ChildSpec, ChildState, Escalation, Restart, SpawnError, SpecError, Strategy,
    Supervisor, SupervisorBuilder,
};

/// A probe with a restart type, marked significant or not.
fn worker(id: &str, control: &Arc<Control>, restart: Restart, significant: bool) -> ChildSpec {
    probe(id, control).restart(restart).significant(significant)
}

/// A supervisor with a generous intensity and the given flags.
fn sup(id: &str, strategy: Strategy, auto: AutoShutdown, children: Vec<ChildSpec>) -> SupervisorBuilder {
    Supervisor::builder(id)
        .strategy(strategy)
        .intensity(10, Duration::from_secs(60))
        .auto_shutdown(auto)
        .children(children)
}

/// `top` (never shuts itself down) with the supervisor under test, `root`, as
/// its temporary child, so that `top` sees `root`'s exit and never restarts it.
async fn tree(log: &EventLog, root: SupervisorBuilder) -> (Supervisor, Supervisor) {
    tree_with_handler(log, root, |_: Escalation| warden::supervisor::Disposition::Handled).await
}

async fn tree_with_handler(
    log: &EventLog,
    root: SupervisorBuilder,
    handler: impl warden::supervisor::EscalationHandler,
) -> (Supervisor, Supervisor) {
    let top = Supervisor::builder("top")
        .observer(log.observer())
        .escalation_handler(handler)
        .child(root.into_child().restart(Restart::Temporary))
        .spawn()
        .await
        .expect("the tree starts");
    let root = sub_of(&top, "root").await;
    log.clear();
    (top, root)
}

/// The trace as OTP's would read: without the lines only Warden reports.
fn otp_view(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            !["auto_shutdown", "stopped", "escalated", "gave_up"]
                .iter()
                .any(|w| l.starts_with(w))
        })
        .cloned()
        .collect()
}

fn assert_otp_trace(log: &EventLog, otp: &[&str]) {
    assert_eq!(otp_view(&log.lines()), otp, "full trace: {:#?}", log.lines());
}

/// `root` is still up and has not decided to shut down: the call is answered
/// after every exit it has seen, and a shutdown would be in the trace by then.
async fn assert_alive(root: &Supervisor, log: &EventLog) {
    let counts = root.count_children().await.expect("root answers");
    assert!(root.is_alive(), "root is up");
    assert!(
        !log.lines().iter().any(|l| l == "auto_shutdown root"),
        "root shut down: {:#?} ({counts:?})",
        log.lines()
    );
}

/// A tree under test: `top` ⊃ `root` (with the given flags) ⊃ probes.
struct Scene {
    control: Arc<Control>,
    log: EventLog,
    top: Supervisor,
    root: Supervisor,
}

/// Probes by id, restart type and significance, in start order.
type Probes<'a> = &'a [(&'a str, Restart, bool)];

impl Scene {
    async fn start(strategy: Strategy, auto: AutoShutdown, probes: Probes<'_>) -> Self {
        let control = Control::new();
        let log = EventLog::new();
        let children = probes
            .iter()
            .map(|&(id, restart, significant)| worker(id, &control, restart, significant))
            .collect();
        let (top, root) = tree(&log, sup("root", strategy, auto, children)).await;
        Self {
            control,
            log,
            top,
            root,
        }
    }

    /// Ends one of root's probes (see [`end`]).
    async fn end(&self, id: &str, how: &str) {
        end(&self.root, id, how).await
    }

    async fn stop(self) {
        self.top.stop().await
    }
}

const PERMANENT: Restart = Restart::Permanent;
const TRANSIENT: Restart = Restart::Transient;
const TEMPORARY: Restart = Restart::Temporary;

// ---- validation (SEMANTICS 46) -------------------------------------------------

#[tokio::test]
async fn significant_children_are_refused_under_never_and_when_permanent_at_spawn() {
    let control = Control::new();
    // OTP: {start_spec, {bad_combination, [{auto_shutdown, never}, {significant, true}]}}
    let never = sup(
        "root",
        Strategy::OneForOne,
        AutoShutdown::Never,
        vec![worker("a", &control, Restart::Transient, true)],
    );
    match never.spawn().await {
        Err(SpawnError::InvalidSpec(SpecError::SignificantWithoutAutoShutdown(id))) => assert_eq!(id, "a"),
        other => panic!("expected SignificantWithoutAutoShutdown, got {other:?}"),
    }
    // OTP: {start_spec, {bad_combination, [{restart, permanent}, {significant, true}]}}
    for auto in [AutoShutdown::AnySignificant, AutoShutdown::AllSignificant] {
        let permanent = sup(
            "root",
            Strategy::OneForOne,
            auto,
            vec![worker("a", &control, Restart::Permanent, true)],
        );
        match permanent.spawn().await {
            Err(SpawnError::InvalidSpec(SpecError::SignificantPermanent(id))) => assert_eq!(id, "a"),
            other => panic!("expected SignificantPermanent, got {other:?}"),
        }
    }
    // OTP checks `never` first; so does Warden.
    let both = sup(
        "root",
        Strategy::OneForOne,
        AutoShutdown::Never,
        vec![probe("a", &control).significant(true)],
    );
    assert!(matches!(
        both.spawn().await,
        Err(SpawnError::InvalidSpec(SpecError::SignificantWithoutAutoShutdown(_)))
    ));
    assert_eq!(control.starts("a"), 0, "nothing was started");
}

#[tokio::test]
async fn a_child_supervisor_with_a_refused_spec_fails_to_start() {
    let control = Control::new();
    let inner = sup(
        "inner",
        Strategy::OneForOne,
        AutoShutdown::Never,
        vec![worker("a", &control, Restart::Temporary, true)],
    );
    let result = Supervisor::builder("top").child(inner.into_child()).spawn().await;
    match result {
        Err(SpawnError::ChildFailedToStart { child, source }) => {
            assert_eq!(child.as_str(), "top/inner");
            assert!(source.to_string().contains("auto_shutdown is never"), "{source}");
        }
        other => panic!("expected ChildFailedToStart, got {other:?}"),
    }
    assert_eq!(control.starts("a"), 0);
}

#[tokio::test]
async fn start_child_refuses_a_significant_child_under_never_and_a_permanent_one() {
    let control = Control::new();
    let never = sup("never", Strategy::OneForOne, AutoShutdown::Never, vec![])
        .spawn()
        .await
        .unwrap();
    // OTP: {error, {bad_combination, [{auto_shutdown, never}, {significant, true}]}}
    match never.start_child(worker("b", &control, Restart::Temporary, true)).await {
        Err(ChildError::InvalidSpec(SpecError::SignificantWithoutAutoShutdown(id))) => assert_eq!(id, "b"),
        other => panic!("expected SignificantWithoutAutoShutdown, got {other:?}"),
    }
    let any = sup("any", Strategy::OneForOne, AutoShutdown::AnySignificant, vec![])
        .spawn()
        .await
        .unwrap();
    // OTP: {error, {bad_combination, [{restart, permanent}, {significant, true}]}}
    match any.start_child(worker("c", &control, Restart::Permanent, true)).await {
        Err(ChildError::InvalidSpec(SpecError::SignificantPermanent(id))) => assert_eq!(id, "c"),
        other => panic!("expected SignificantPermanent, got {other:?}"),
    }
    assert_eq!(control.starts("b") + control.starts("c"), 0, "nothing was started");
    assert_eq!(never.count_children().await.unwrap().specs, 0);
    assert_eq!(any.count_children().await.unwrap().specs, 0);
    assert!(never.is_alive() && any.is_alive(), "a refused spec harms nobody");
    never.stop().await;
    any.stop().await;
}

// ---- any_significant (SEMANTICS 47) ---------------------------------------------

/// Ends a running probe: `normal`, `shutdown`, `boom` (an error from a
/// handler), `panic`, or `kill`.
async fn end(root: &Supervisor, id: &str, how: &str) {
    let actor = cell(root, id).await;
    match how {
        "normal" => tell(&actor, ProbeMsg::StopNormal),
        "shutdown" => tell(&actor, ProbeMsg::StopShutdown),
        "boom" => tell(&actor, ProbeMsg::Fail),
        "panic" => tell(&actor, ProbeMsg::Panic),
        "kill" => actor.kill(),
        other => panic!("unknown exit {other}"),
    }
}

#[tokio::test]
async fn any_significant_a_temporary_significant_child_ending_for_any_reason_shuts_the_supervisor_down() {
    for (how, reason) in [
        ("normal", "normal"),
        ("boom", "boom"),
        ("panic", "boom"),
        ("kill", "killed"),
    ] {
        let probes = [("a", PERMANENT, false), ("t", TEMPORARY, true), ("z", PERMANENT, false)];
        let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AnySignificant, &probes).await;
        scene.end("t", how).await;
        scene.log.wait_line("down root shutdown").await;

        let down_t = format!("down t {reason}");
        // OTP: down t normal, down z shutdown, down a shutdown, down root shutdown
        // (and the same with boom and killed).
        assert_eq!(
            scene.log.lines(),
            [
                down_t.as_str(),
                "auto_shutdown root",
                "down z shutdown",
                "down a shutdown",
                "stopped root",
                "down root shutdown"
            ],
            "after {how}"
        );
        scene.root.wait().await;
        assert!(
            scene.top.is_alive(),
            "the parent applies root's restart type, temporary: no restart"
        );
        assert!(scene.top.which_children().await.unwrap().is_empty());
        scene.stop().await;
    }
}

#[tokio::test]
async fn any_significant_a_transient_significant_child_is_restarted_after_a_crash_and_shuts_down_after_a_normal_exit() {
    let probes = [("a", PERMANENT, false), ("t", TRANSIENT, true)];
    let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AnySignificant, &probes).await;
    scene.end("t", "boom").await;
    scene.log.wait_line("start t").await;
    assert_alive(&scene.root, &scene.log).await;

    scene.end("t", "shutdown").await;
    scene.log.wait_line("down root shutdown").await;
    assert_otp_trace(
        &scene.log,
        &[
            "down t boom",
            "start t",
            "down t shutdown",
            "down a shutdown",
            "down root shutdown",
        ],
    );
    scene.stop().await;
}

#[tokio::test]
async fn a_significant_child_started_with_start_child_counts_too() {
    let probes = [("a", PERMANENT, false)];
    let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AnySignificant, &probes).await;
    scene
        .root
        .start_child(worker("t", &scene.control, TEMPORARY, true))
        .await
        .expect("a significant temporary child is welcome");
    scene.end("t", "normal").await;
    scene.log.wait_line("down root shutdown").await;
    assert_otp_trace(
        &scene.log,
        &["start t", "down t normal", "down a shutdown", "down root shutdown"],
    );
    scene.stop().await;
}

// ---- all_significant (SEMANTICS 48) ---------------------------------------------

#[tokio::test]
async fn all_significant_shuts_down_when_the_last_running_significant_child_ends() {
    let probes = [
        ("a", PERMANENT, false),
        ("t1", TRANSIENT, true),
        ("t2", TEMPORARY, true),
    ];
    let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AllSignificant, &probes).await;
    scene.end("t1", "normal").await;
    scene.log.wait_line("down t1 normal").await;
    assert_alive(&scene.root, &scene.log).await;

    scene.end("t2", "boom").await;
    scene.log.wait_line("down root shutdown").await;
    // OTP: down t1 normal, (alive), down t2 boom, down a shutdown, down root shutdown
    assert_otp_trace(
        &scene.log,
        &[
            "down t1 normal",
            "down t2 boom",
            "down a shutdown",
            "down root shutdown",
        ],
    );
    scene.stop().await;
}

#[tokio::test(start_paused = true)]
async fn all_significant_a_significant_child_waiting_for_its_restart_still_counts() {
    let control = Control::new();
    let log = EventLog::new();
    // Shorter than the event log's deadline, which the paused clock also runs.
    let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1)).random_factor(0.0);
    let children = vec![
        worker("t1", &control, TRANSIENT, true).backoff(backoff),
        worker("t2", &control, TRANSIENT, true),
    ];
    let (top, root) = tree(
        &log,
        sup("root", Strategy::OneForOne, AutoShutdown::AllSignificant, children),
    )
    .await;
    end(&root, "t1", "boom").await;
    log.wait_line("scheduled t1").await;
    end(&root, "t2", "normal").await;
    log.wait_line("down t2 normal").await;
    assert_alive(&root, &log).await;
    assert!(matches!(probe::child(&root, "t1").await.state, ChildState::Restarting));

    // Its restart runs; once it ends normally it was the last one.
    log.wait_line("start t1").await;
    end(&root, "t1", "normal").await;
    log.wait_line("down root shutdown").await;
    top.stop().await;
}

// ---- only a child's own exit counts (SEMANTICS 49) -----------------------------

#[tokio::test]
async fn terminate_child_of_a_significant_child_never_shuts_the_supervisor_down() {
    let probes = [("a", PERMANENT, false), ("t", TRANSIENT, true)];
    let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AnySignificant, &probes).await;
    scene.root.terminate_child("t").await.unwrap();
    assert_alive(&scene.root, &scene.log).await;
    scene.root.restart_child("t").await.unwrap();
    scene.end("t", "normal").await;
    scene.log.wait_line("down root shutdown").await;
    // OTP: down t shutdown, ok, (alive), start t, ok, down t normal, down a shutdown, down root shutdown
    assert_otp_trace(
        &scene.log,
        &[
            "down t shutdown",
            "start t",
            "down t normal",
            "down a shutdown",
            "down root shutdown",
        ],
    );
    scene.stop().await;
}

#[tokio::test]
async fn all_significant_a_child_stopped_by_terminate_child_no_longer_runs() {
    let probes = [("t1", TRANSIENT, true), ("t2", TRANSIENT, true)];
    let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AllSignificant, &probes).await;
    scene.root.terminate_child("t1").await.unwrap();
    assert_alive(&scene.root, &scene.log).await;
    scene.end("t2", "normal").await;
    scene.log.wait_line("down root shutdown").await;
    assert_otp_trace(
        &scene.log,
        &["down t1 shutdown", "down t2 normal", "down root shutdown"],
    );
    scene.stop().await;
}

#[tokio::test]
async fn a_group_restart_that_stops_significant_children_never_shuts_the_supervisor_down() {
    for strategy in [Strategy::OneForAll, Strategy::RestForOne] {
        let probes = [("a", PERMANENT, false), ("t", TEMPORARY, true), ("u", TRANSIENT, true)];
        let scene = Scene::start(strategy, AutoShutdown::AnySignificant, &probes).await;
        scene.end("a", "boom").await;
        scene.log.wait_line("start u").await;
        assert_alive(&scene.root, &scene.log).await;
        // OTP, both strategies: down a boom, down u shutdown, down t shutdown, start a, start u.
        // The temporary bystander is stopped and removed, the transient one restarted.
        assert_otp_trace(
            &scene.log,
            &[
                "down a boom",
                "down u shutdown",
                "down t shutdown",
                "start a",
                "start u",
            ],
        );
        let children = scene.root.which_children().await.unwrap();
        let ids: Vec<&str> = children.iter().map(|c| c.id()).collect();
        assert_eq!(ids, ["a", "u"], "{strategy:?}");
        scene.stop().await;
    }
}

#[tokio::test]
async fn non_significant_children_never_shut_the_supervisor_down() {
    let probes = [("t", TEMPORARY, false), ("u", TRANSIENT, false)];
    let scene = Scene::start(Strategy::OneForOne, AutoShutdown::AnySignificant, &probes).await;
    scene.end("t", "normal").await;
    scene.end("u", "normal").await;
    scene.log.wait_line("down u normal").await;
    assert_alive(&scene.root, &scene.log).await;
    scene.stop().await;
}

// ---- escalation through supervisors (SEMANTICS 50) -------------------------------

/// `root` (any_significant) with `a` and `b`, a transient supervisor
/// (any_significant) holding `x` and the significant transient `c`.
fn nested(control: &Arc<Control>, b_significant: bool) -> SupervisorBuilder {
    let b = sup(
        "b",
        Strategy::OneForOne,
        AutoShutdown::AnySignificant,
        vec![probe("x", control), worker("c", control, Restart::Transient, true)],
    )
    .into_child()
    .restart(Restart::Transient)
    .significant(b_significant);
    sup(
        "root",
        Strategy::OneForOne,
        AutoShutdown::AnySignificant,
        vec![probe("a", control), b],
    )
}

#[tokio::test]
async fn auto_shutdown_passes_up_through_a_significant_transient_supervisor() {
    let control = Control::new();
    let log = EventLog::new();
    let (top, root) = tree(&log, nested(&control, true)).await;
    let b = sub_of(&root, "b").await;
    end(&b, "c", "normal").await;
    log.wait_line("down root shutdown").await;
    assert_otp_trace(
        &log,
        &[
            "down c normal",
            "down x shutdown",
            "down b shutdown",
            "down a shutdown",
            "down root shutdown",
        ],
    );
    assert_eq!(
        log.lines()
            .iter()
            .filter(|l| l.starts_with("auto_shutdown"))
            .collect::<Vec<_>>(),
        ["auto_shutdown b", "auto_shutdown root"]
    );
    top.stop().await;
}

#[tokio::test]
async fn auto_shutdown_stops_at_a_supervisor_that_is_not_significant() {
    let control = Control::new();
    let log = EventLog::new();
    let (top, root) = tree(&log, nested(&control, false)).await;
    let b = sub_of(&root, "b").await;
    end(&b, "c", "normal").await;
    log.wait_line("down b shutdown").await;
    assert_alive(&root, &log).await;
    let children = root.which_children().await.unwrap();
    let states: Vec<(&str, bool)> = children.iter().map(|c| (c.id(), c.state.actor().is_some())).collect();
    // OTP: children [{a,true},{b,false}]: b's spec stays, not running.
    assert_eq!(states, [("a", true), ("b", false)]);
    top.stop().await;
}

#[tokio::test]
async fn a_significant_transient_supervisor_that_gives_up_shuts_its_parent_down_and_its_give_up_still_arrives() {
    let control = Control::new();
    let log = EventLog::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
    let b = Supervisor::builder("b")
        .intensity(0, Duration::from_secs(5))
        .child(probe("c", &control))
        .into_child()
        .restart(Restart::Transient)
        .significant(true);
    let (top, root) = tree_with_handler(
        &log,
        sup(
            "root",
            Strategy::OneForOne,
            AutoShutdown::AnySignificant,
            vec![probe("a", &control), b],
        ),
        tx,
    )
    .await;
    let b = sub_of(&root, "b").await;
    end(&b, "c", "boom").await;
    log.wait_line("down root shutdown").await;
    // OTP: down c boom, down b shutdown, down a shutdown, down root shutdown
    assert_otp_trace(
        &log,
        &[
            "down c boom",
            "down b shutdown",
            "down a shutdown",
            "down root shutdown",
        ],
    );
    let escalation = rx.recv().await.expect("b's give-up reaches top's handler");
    let give_up = escalation.give_up().expect("a GaveUp escalation");
    assert_eq!(give_up.supervisor.as_str(), "top/root/b");
    assert_eq!(
        escalation.route().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["top/root"]
    );
    top.stop().await;
}
