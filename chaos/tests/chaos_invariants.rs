//! `Baseline` and `Invariants` after real chaos: a clean run passes, and each
//! kind of broken invariant is found and named.
//!
//! Every test waits for the events it caused before it checks, so the check
//! sees the tree after the fact, not in the middle of it.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::{WorkMsg, Worker};
use warden_chaos::{
    Baseline, ChaosAction, ChaosMonkey, ChaosReport, ChaosWatch, FaultAction, FaultRule, Faults, Faulty, Invariants,
    Schedule, Violation,
};
use warden_supervisor::{ChildPath, ChildSpec, Disposition, Escalation, Supervisor, SupervisorEvent};

const TICK: Duration = Duration::from_millis(10);
/// A short settle limit for checks that are expected to fail (the clock is paused).
const SETTLE: Duration = Duration::from_millis(200);

fn path(p: &str) -> ChildPath {
    let mut parts = p.split('/');
    let mut path = ChildPath::root(parts.next().unwrap());
    for part in parts {
        path = path.join(part);
    }
    path
}

fn is_restarting(e: &SupervisorEvent) -> bool {
    matches!(e, SupervisorEvent::Restarting { .. })
}

fn gave_up(at: &str) -> impl Fn(&SupervisorEvent) -> bool + '_ {
    move |e| matches!(e, SupervisorEvent::GaveUp { path, .. } if path.as_str() == at)
}

/// Kills the children matching `target`, `n` times, one tick apart.
async fn kill(root: &Supervisor, target: &str, n: u64) -> ChaosReport {
    ChaosMonkey::new(root)
        .seed(1)
        .target(target.parse().unwrap())
        .schedule(Schedule::Every(TICK))
        .max_actions(n)
        .run()
        .await
}

#[tokio::test(start_paused = true)]
async fn a_clean_chaos_run_passes() {
    let watch = ChaosWatch::new();
    let faults = Faults::builder(3).build();
    let root = common::watched_root(&watch, 1_000)
        .child(
            Supervisor::builder("workers")
                .intensity(1_000, Duration::from_secs(1))
                .children((0..8).map(|i| Faulty::child_spec(format!("w{i}"), faults.clone(), || (Worker, ()))))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();
    let baseline = Baseline::capture(&root).await.unwrap();
    assert_eq!(baseline.node_count(), 10);
    assert!(baseline.live_tasks() >= 10);

    let chaos = ChaosMonkey::new(&root)
        .seed(17)
        .target("root/workers/*".parse().unwrap())
        .actions([ChaosAction::Kill, ChaosAction::StopWithError, ChaosAction::Panic])
        .faults(faults.clone())
        .schedule(Schedule::Every(TICK))
        .max_actions(30)
        .run()
        .await;
    let crashes = chaos.count(ChaosAction::Kill) + chaos.count(ChaosAction::StopWithError);
    assert!(crashes > 0 && chaos.count(ChaosAction::Panic) > 0, "{chaos}");
    // Fire the panics still armed: poke every worker.
    let workers = common::sub(&root, "workers").await;
    let armed: Vec<_> = chaos
        .actions
        .iter()
        .filter(|a| a.action == ChaosAction::Panic)
        .map(|a| a.path.clone())
        .collect();
    for child in workers.which_children().await.unwrap() {
        let cell = child.state.actor().expect("running").clone();
        common::worker(&cell).send_message(WorkMsg::Poke).unwrap();
    }
    let fired = {
        let mut paths = armed.clone();
        paths.sort();
        paths.dedup();
        paths.len()
    };
    common::wait_count(&watch, 0, crashes + fired, "restarts", is_restarting).await;

    let report = Invariants::new(&baseline, &watch)
        .chaos(&chaos)
        .faults(&faults)
        .check(&root)
        .await;
    report.assert_ok();
    assert_eq!(report.restarts, crashes + fired);
    assert_eq!(report.running, (10, 10));
    assert_eq!(report.live_tasks, (baseline.live_tasks(), baseline.live_tasks()));
    assert!(report.gave_up.is_empty());
    assert_eq!(report.escalations_at_root, 0);
    assert!(!report.to_string().contains("VIOLATION"), "{report}");
    root.stop().await;
}

/// root -> w1, w2 (permanent), watched.
async fn flat_tree(watch: &ChaosWatch) -> Supervisor {
    common::watched_root(watch, 100)
        .children(["w1", "w2"].map(|id| ChildSpec::actor(id, || (Worker, ()))))
        .spawn()
        .await
        .unwrap()
}

/// The report holds what it lists, not a copy of the watch's record: a long
/// soak keeps its report, and a copy of every event in it would grow with
/// every kill (the chaos soak's "leak" of about 200 bytes a kill was the
/// record, copied into `gave_up`'s buffer by an in-place `collect`).
#[tokio::test(start_paused = true)]
async fn the_report_holds_no_copy_of_the_record() {
    let watch = ChaosWatch::new();
    let root = flat_tree(&watch).await;
    let baseline = Baseline::capture(&root).await.unwrap();

    let chaos = kill(&root, "root/w*", 50).await;
    let kills = chaos.effective().count();
    assert!(kills > 0, "{chaos}");
    common::wait_count(&watch, 0, kills, "restarts", is_restarting).await;
    assert!(watch.len() >= 3 * kills);

    let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
    report.assert_ok();
    assert!(report.gave_up.is_empty());
    assert_eq!(
        report.gave_up.capacity(),
        0,
        "an empty list of give-ups holds room for {} paths ({} events recorded)",
        report.gave_up.capacity(),
        watch.len()
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_terminated_permanent_child_is_not_running() {
    let watch = ChaosWatch::new();
    let root = flat_tree(&watch).await;
    let baseline = Baseline::capture(&root).await.unwrap();
    root.terminate_child("w1").await.unwrap();

    let report = Invariants::new(&baseline, &watch).settle(SETTLE).check(&root).await;
    assert_eq!(report.violations, vec![Violation::NotRunning { path: path("root/w1") }]);
    assert!(!report.is_ok());
    assert_eq!(report.running, (3, 2));
    assert!(report.settled_in >= SETTLE, "it never settled: {report}");
    assert!(
        report.to_string().contains("permanent child root/w1 is not running"),
        "{report}"
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_of_its_own_is_an_unexplained_restart() {
    let watch = ChaosWatch::new();
    let root = flat_tree(&watch).await;
    let baseline = Baseline::capture(&root).await.unwrap();

    // Chaos hits w2: explained.
    let chaos = kill(&root, "root/w2", 1).await;
    common::wait_one(&watch, 0, "w2 restarted", common::restarting("root/w2")).await;
    // w1 fails on its own: not explained.
    let skip = watch.events().len();
    common::worker(&common::cell(&root, "w1").await)
        .send_message(WorkMsg::Fail)
        .unwrap();
    common::wait_one(&watch, skip, "w1 restarted", common::started("root/w1")).await;

    let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
    assert_eq!(
        report.violations,
        vec![Violation::UnexplainedRestart { path: path("root/w1") }]
    );
    assert_eq!(report.restarts, 2);
    assert!(
        report
            .to_string()
            .contains("restart of root/w1 not explained by chaos or a fault"),
        "{report}"
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_by_fired_faults_are_explained_by_the_plan() {
    let watch = ChaosWatch::new();
    let faults = Faults::builder(2)
        .rule(FaultRule::new("root/w1".parse().unwrap(), FaultAction::Fail, 1.0).limit(2))
        .build();
    let root = common::watched_root(&watch, 100)
        .child(Faulty::child_spec("w1", faults.clone(), || (Worker, ())))
        .spawn()
        .await
        .unwrap();
    let baseline = Baseline::capture(&root).await.unwrap();
    for _ in 0..2 {
        let skip = watch.events().len();
        common::worker(&common::cell(&root, "w1").await)
            .send_message(WorkMsg::Poke)
            .unwrap();
        common::wait_one(&watch, skip, "w1 restarted", common::started("root/w1")).await;
    }
    Invariants::new(&baseline, &watch)
        .faults(&faults)
        .check(&root)
        .await
        .assert_ok();
    let without = Invariants::new(&baseline, &watch).check(&root).await;
    assert_eq!(
        without.violations,
        vec![Violation::UnexplainedRestart { path: path("root/w1") }; 2]
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_left_running_is_a_leak_unless_allowed_for() {
    let watch = ChaosWatch::new();
    let root = flat_tree(&watch).await;
    let baseline = Baseline::capture(&root).await.unwrap();
    let before = baseline.live_tasks();
    let extra = tokio::spawn(futures::future::pending::<()>());

    let report = Invariants::new(&baseline, &watch).settle(SETTLE).check(&root).await;
    assert_eq!(
        report.violations,
        vec![Violation::Leaked {
            before,
            after: before + 1
        }]
    );
    assert_eq!(report.live_tasks, (before, before + 1));
    assert!(report.to_string().contains("1 leaked"), "{report}");

    let report = Invariants::new(&baseline, &watch).task_slack(1).check(&root).await;
    report.assert_ok();
    assert_eq!(report.settled_in, Duration::ZERO);

    extra.abort();
    let _ = extra.await;
    Invariants::new(&baseline, &watch).check(&root).await.assert_ok();
    root.stop().await;
}

/// root -> team (gives up at the first restart) -> w1, w2; and root -> solo.
async fn tree_with_fragile_team(watch: &ChaosWatch, root_handler: bool) -> Supervisor {
    let builder = Supervisor::builder("root")
        .intensity(100, Duration::from_secs(1))
        .observer(watch.observer())
        .child(ChildSpec::actor("solo", || (Worker, ())))
        .child(
            Supervisor::builder("team")
                .intensity(0, Duration::from_secs(1))
                .children(["w1", "w2"].map(|id| ChildSpec::actor(id, || (Worker, ()))))
                .into_child(),
        );
    let builder = if root_handler {
        builder.escalation_handler(watch.root_handler())
    } else {
        // A handler of the user's own that does not tell the watch.
        builder.escalation_handler(|_: Escalation| Disposition::Handled)
    };
    builder.spawn().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_subtree_that_gives_up_escalates_to_the_root_and_is_restarted() {
    let watch = ChaosWatch::new();
    let root = tree_with_fragile_team(&watch, true).await;
    let baseline = Baseline::capture(&root).await.unwrap();

    let chaos = kill(&root, "root/team/w1", 1).await;
    assert_eq!(chaos.effective().count(), 1);
    let give_up = common::wait_one(&watch, 0, "team gives up", gave_up("root/team")).await;
    common::wait_one(&watch, give_up, "team restarted", common::started("root/team")).await;

    let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
    report.assert_ok();
    assert_eq!(report.gave_up, vec![path("root/team")]);
    assert_eq!(report.gave_up.capacity(), 1, "it holds what it lists, nothing more");
    assert!(report.escalations_at_root >= 1);
    assert_eq!(report.restarts, 1, "the root restarted the team: {report}");
    assert_eq!(report.running, (5, 5));
    let escalations = watch.escalations();
    assert!(
        escalations
            .iter()
            .any(|e| e.gave_up == Some(path("root/team")) && e.origin == path("root/team")),
        "{escalations:?}"
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_root_that_gives_up_is_reported_as_given_up_not_as_missing_children() {
    let watch = ChaosWatch::new();
    let root = common::watched_root(&watch, 0)
        .children(["w1", "w2", "w3"].map(|id| ChildSpec::actor(id, || (Worker, ()))))
        .spawn()
        .await
        .unwrap();
    let baseline = Baseline::capture(&root).await.unwrap();

    let chaos = kill(&root, "root/w2", 1).await;
    tokio::time::timeout(common::PATIENCE, root.wait())
        .await
        .expect("the root gives up and stops");
    assert!(!root.is_alive());

    let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
    report.assert_ok();
    assert_eq!(report.gave_up, vec![path("root")]);
    assert_eq!(report.running, (4, 0));
    assert!(report.live_tasks.1 < report.live_tasks.0);
    assert_eq!(report.escalations_at_root, 1);
    assert_eq!(watch.escalations()[0].gave_up, Some(path("root")));
}

#[tokio::test(start_paused = true)]
async fn the_report_names_every_violation() {
    let watch = ChaosWatch::new();
    let root = tree_with_fragile_team(&watch, false).await;
    root.start_child(ChildSpec::actor("w3", || (Worker, ()))).await.unwrap();
    let baseline = Baseline::capture(&root).await.unwrap();
    let before = baseline.live_tasks();

    // 1. The team gives up, and the root's own handler does not tell the watch.
    let chaos = kill(&root, "root/team/w1", 1).await;
    let give_up = common::wait_one(&watch, 0, "team gives up", gave_up("root/team")).await;
    common::wait_one(&watch, give_up, "team restarted", common::started("root/team")).await;
    // 2. solo crashes on its own.
    let skip = watch.events().len();
    common::worker(&common::cell(&root, "solo").await)
        .send_message(WorkMsg::Fail)
        .unwrap();
    common::wait_one(&watch, skip, "solo restarted", common::started("root/solo")).await;
    // 3. w3 is terminated.
    root.terminate_child("w3").await.unwrap();
    // 4. Two tasks are left running (one more than w3 took with it).
    let extra = [
        tokio::spawn(futures::future::pending::<()>()),
        tokio::spawn(futures::future::pending::<()>()),
    ];

    let report = Invariants::new(&baseline, &watch)
        .chaos(&chaos)
        .settle(SETTLE)
        .check(&root)
        .await;
    let mut expected = vec![
        Violation::NotRunning { path: path("root/w3") },
        Violation::Leaked {
            before,
            after: before + 1,
        },
        Violation::UnexplainedRestart {
            path: path("root/solo"),
        },
        Violation::GaveUpWithoutEscalation {
            supervisor: path("root/team"),
        },
    ];
    let mut found = report.violations.clone();
    let key = |v: &Violation| v.to_string();
    expected.sort_by_key(key);
    found.sort_by_key(key);
    assert_eq!(found, expected, "{report}");
    assert_eq!(report.escalations_at_root, 0);
    assert_eq!(report.gave_up, vec![path("root/team")]);

    let text = report.to_string();
    assert_eq!(text.matches("VIOLATION: ").count(), 4, "{text}");
    for violation in &report.violations {
        assert!(text.contains(&format!("VIOLATION: {violation}")), "{text}");
    }
    assert!(
        text.contains("root/team gave up but no escalation reached the root handler"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} tasks alive, {before} before: 1 leaked", before + 1)),
        "{text}"
    );
    let panic = std::panic::catch_unwind(|| report.assert_ok()).expect_err("assert_ok panics");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.starts_with("chaos invariants broken:") && message.contains(&text),
        "{message}"
    );

    for task in extra {
        task.abort();
    }
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_second_restart_with_only_one_cause_is_unexplained() {
    let watch = ChaosWatch::new();
    let root = flat_tree(&watch).await;
    let baseline = Baseline::capture(&root).await.unwrap();

    // The monkey kills w1 once...
    let chaos = kill(&root, "root/w1", 1).await;
    assert_eq!(chaos.effective().count(), 1);
    let first = common::wait_one(&watch, 0, "w1 restarted", common::started("root/w1")).await;
    // ...and later w1 crashes on its own: a second restart nothing explains.
    common::worker(&common::cell(&root, "w1").await)
        .send_message(WorkMsg::Fail)
        .unwrap();
    common::wait_one(&watch, first + 1, "w1 restarted again", common::started("root/w1")).await;

    let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
    assert_eq!(report.restarts, 2);
    assert_eq!(
        report.violations,
        vec![Violation::UnexplainedRestart { path: path("root/w1") }],
        "{report}"
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_supervisor_that_gave_up_is_listed_once() {
    let watch = ChaosWatch::new();
    let team = |id: &str| {
        Supervisor::builder(id)
            .intensity(0, Duration::from_secs(1))
            .child(ChildSpec::actor("w", || (Worker, ())))
            .into_child()
    };
    let root = common::watched_root(&watch, 100)
        .child(team("a"))
        .child(team("b"))
        .spawn()
        .await
        .unwrap();
    let baseline = Baseline::capture(&root).await.unwrap();
    let mut reports = Vec::new();
    let mut skip = 0;
    for target in ["root/a/w", "root/b/w", "root/a/w"] {
        reports.push(kill(&root, target, 1).await);
        let sup = target.trim_end_matches("/w");
        skip = common::wait_one(&watch, skip, "gave up", gave_up(sup)).await;
        skip = common::wait_one(&watch, skip, "restarted", common::started(sup)).await;
    }
    let mut invariants = Invariants::new(&baseline, &watch);
    for report in &reports {
        invariants = invariants.chaos(report);
    }
    let report = invariants.check(&root).await;
    report.assert_ok();
    assert_eq!(report.gave_up, vec![path("root/a"), path("root/b")]);
    root.stop().await;
}
