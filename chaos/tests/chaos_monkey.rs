//! `ChaosMonkey` against real trees: seeded choices, each action's effect on
//! the tree, limits, the hook, and the cases where it has nothing to do.
//!
//! Most tests run on a paused clock: the monkey's next tick comes only once
//! every actor is idle, so the tree has recovered from one action before the
//! next one is picked, and times in the report are exact.

#[path = "support/common.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{WorkMsg, Worker};
use tokio::sync::mpsc;
use warden_chaos::{
    ActionOutcome, ActionRecord, CHAOS_STOP_REASON, ChaosAction, ChaosMonkey, ChaosReport, ChaosWatch, FaultAction,
    Faults, Faulty, Schedule,
};
use warden_supervisor::{ChildKind, ChildSpec, ExitReason, Restart, Supervisor, SupervisorEvent, request};

const TICK: Duration = Duration::from_millis(10);

/// root -> workers -> w0..w5, all workers that never fail on their own.
async fn stable_tree(watch: &ChaosWatch) -> Supervisor {
    common::watched_root(watch, 1_000)
        .child(
            Supervisor::builder("workers")
                .intensity(1_000, Duration::from_secs(1))
                .children((0..6).map(|i| ChildSpec::actor(format!("w{i}"), || (Worker, ()))))
                .into_child(),
        )
        .spawn()
        .await
        .expect("tree starts")
}

fn monkey(root: &Supervisor, seed: u64) -> ChaosMonkey {
    ChaosMonkey::new(root)
        .seed(seed)
        .target("root/workers/*".parse().unwrap())
        .schedule(Schedule::Every(TICK))
}

fn choices(report: &ChaosReport) -> Vec<(String, ChaosAction)> {
    report
        .actions
        .iter()
        .map(|a| (a.path.as_str().to_owned(), a.action))
        .collect()
}

/// A run of `seed` on a fresh stable tree.
async fn run_seed(seed: u64) -> ChaosReport {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let report = monkey(&root, seed)
        .actions([ChaosAction::Kill, ChaosAction::StopWithError])
        .max_actions(20)
        .run()
        .await;
    root.stop().await;
    report
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_picks_the_same_children_and_actions() {
    let (a, b, other) = (run_seed(7).await, run_seed(7).await, run_seed(8).await);
    assert_eq!(a.seed, 7);
    assert_eq!(a.actions.len(), 20);
    assert_eq!(choices(&a), choices(&b));
    assert_ne!(choices(&a), choices(&other), "another seed makes other choices");
    // Both actions and several children were picked.
    assert!(
        a.count(ChaosAction::Kill) > 0 && a.count(ChaosAction::StopWithError) > 0,
        "{a}"
    );
    let mut paths: Vec<_> = choices(&a).into_iter().map(|(p, _)| p).collect();
    paths.sort();
    paths.dedup();
    assert!(paths.len() > 2, "{a}");
}

/// Runs `action` `n` times on a stable tree, then waits for `n` exits of
/// matching reason and checks they are at the picked paths.
async fn exits_after(action: ChaosAction, reason: impl Fn(&ExitReason) -> bool + Copy) {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let skip = watch.events().len();
    let report = monkey(&root, 3).actions([action]).max_actions(8).run().await;
    assert_eq!(report.actions.len(), 8);
    assert!(
        report.actions.iter().all(|a| a.outcome == ActionOutcome::Done),
        "{report}"
    );
    assert!(
        report
            .actions
            .iter()
            .all(|a| a.kind == ChildKind::Worker && a.action == action)
    );
    assert_eq!(report.count(action), 8);

    common::wait_count(
        &watch,
        skip,
        8,
        "exits",
        |e| matches!(e, SupervisorEvent::ChildExited { reason: r, .. } if reason(r)),
    )
    .await;
    let mut exited: Vec<String> = watch
        .events()
        .into_iter()
        .skip(skip)
        .filter_map(|(_, e)| match e {
            SupervisorEvent::ChildExited { path, reason: r, .. } => {
                assert!(reason(&r), "unexpected exit of {path}: {r}");
                Some(path.as_str().to_owned())
            }
            _ => None,
        })
        .collect();
    let mut picked: Vec<String> = report.actions.iter().map(|a| a.path.as_str().to_owned()).collect();
    exited.sort();
    picked.sort();
    assert_eq!(exited, picked);
    // Every one was restarted.
    common::wait_count(&watch, skip, 8, "restarts", |e| {
        matches!(
            e,
            SupervisorEvent::ChildStarted {
                kind: ChildKind::Worker,
                ..
            }
        )
    })
    .await;
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn kill_gives_killed_exits_at_the_picked_children() {
    exits_after(ChaosAction::Kill, |r| *r == ExitReason::Killed).await;
}

#[tokio::test(start_paused = true)]
async fn stop_with_error_gives_stopped_exits_with_the_chaos_reason() {
    exits_after(
        ChaosAction::StopWithError,
        |r| matches!(r, ExitReason::Stopped(reason) if &**reason == CHAOS_STOP_REASON),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn panic_arms_a_faulty_child_and_its_next_message_panics_it() {
    let watch = ChaosWatch::new();
    let faults = Faults::builder(5).build();
    let root = common::watched_root(&watch, 100)
        .children((0..4).map(|i| Faulty::child_spec(format!("w{i}"), faults.clone(), || (Worker, ()))))
        .spawn()
        .await
        .unwrap();
    let skip = watch.events().len();
    let report = ChaosMonkey::new(&root)
        .seed(11)
        .target("root/w*".parse().unwrap())
        .actions([ChaosAction::Panic])
        .faults(faults.clone())
        .schedule(Schedule::Every(TICK))
        .max_actions(1)
        .run()
        .await;
    let [armed] = &report.actions[..] else {
        panic!("one action: {report}")
    };
    assert_eq!(
        (armed.action, armed.outcome),
        (ChaosAction::Panic, ActionOutcome::Armed)
    );
    assert_eq!(report.count(ChaosAction::Panic), 1);
    // Armed, not fired: nothing happened yet.
    assert!(faults.log().is_empty());
    assert_eq!(watch.count(common::any_exit), 0);

    let path = armed.path.as_str().to_owned();
    let id = armed.path.id().to_owned();
    let victim = common::worker(&common::cell(&root, &id).await);
    victim.send_message(WorkMsg::Poke).unwrap();
    let exit = common::wait_one(
        &watch,
        skip,
        "the armed child panics",
        common::exited(&path, |r| matches!(r, ExitReason::Failed(_))),
    )
    .await;
    common::wait_one(&watch, exit, "it is restarted", common::started(&path)).await;
    let log = faults.log();
    assert_eq!(log.len(), 1);
    assert_eq!((&*log[0].point, log[0].action), (path.as_str(), FaultAction::Panic));

    // One-shot: the restarted child answers.
    let again = common::worker(&common::cell(&root, &id).await);
    assert_ne!(again.get_id(), victim.get_id());
    assert!(request(&again, WorkMsg::Ping, Duration::from_secs(5)).await.is_ok());
    assert_eq!(faults.log().len(), 1);
    // Only the armed child exited.
    assert_eq!(watch.count(common::any_exit), 1);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn panic_without_a_fault_plan_is_unsupported() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let report = monkey(&root, 1)
        .actions([ChaosAction::Panic])
        .max_actions(3)
        .run()
        .await;
    assert_eq!(report.actions.len(), 3);
    assert!(report.actions.iter().all(|a| a.outcome == ActionOutcome::Unsupported));
    assert_eq!(report.effective().count(), 0);
    assert_eq!(watch.count(common::any_exit), 0);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn picking_a_supervisor_takes_its_subtree_down_and_it_is_restarted() {
    let watch = ChaosWatch::new();
    let root = common::watched_root(&watch, 100)
        .child(ChildSpec::actor("solo", || (Worker, ())))
        .child(
            Supervisor::builder("team")
                .intensity(100, Duration::from_secs(1))
                .child(ChildSpec::actor("w1", || (Worker, ())))
                .child(ChildSpec::actor("w2", || (Worker, ())))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();
    let solo = common::cell(&root, "solo").await;
    let team = common::sub(&root, "team").await;
    let old_w1 = common::cell(&team, "w1").await;
    let old_w2 = common::cell(&team, "w2").await;
    let skip = watch.events().len();

    let report = ChaosMonkey::new(&root)
        .seed(1)
        .target("root/team".parse().unwrap())
        .schedule(Schedule::Every(TICK))
        .max_actions(1)
        .run()
        .await;
    let [action] = &report.actions[..] else {
        panic!("one action: {report}")
    };
    assert_eq!(action.path.as_str(), "root/team");
    assert_eq!(action.kind, ChildKind::Supervisor);
    assert_eq!(
        (action.action, action.outcome),
        (ChaosAction::Kill, ActionOutcome::Done)
    );

    let down = common::wait_one(
        &watch,
        skip,
        "team killed",
        common::exited("root/team", |r| *r == ExitReason::Killed),
    )
    .await;
    common::wait_one(&watch, down, "w1 started again", common::started("root/team/w1")).await;
    common::wait_one(&watch, down, "w2 started again", common::started("root/team/w2")).await;
    common::wait_one(&watch, down, "team started again", common::started("root/team")).await;

    let team = common::sub(&root, "team").await;
    assert_ne!(common::cell(&team, "w1").await.get_id(), old_w1.get_id());
    assert_ne!(common::cell(&team, "w2").await.get_id(), old_w2.get_id());
    assert_eq!(
        common::cell(&root, "solo").await.get_id(),
        solo.get_id(),
        "outside the subtree: untouched"
    );
    assert_eq!(common::child(&root, "team").await.restart_count, 1);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn max_actions_ends_the_run() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let handle = monkey(&root, 2).max_actions(5).start();
    let report = handle.wait().await;
    assert_eq!(report.actions.len(), 5);
    assert_eq!(report.elapsed, 5 * TICK);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn duration_ends_the_run() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let report = monkey(&root, 2)
        .schedule(Schedule::Every(Duration::from_millis(100)))
        .duration(Duration::from_secs(1))
        .run()
        .await;
    assert_eq!(report.actions.len(), 10, "{report}");
    assert_eq!(report.elapsed, Duration::from_secs(1));

    // The run lasts its duration even when the last tick falls before its end.
    let report = monkey(&root, 2)
        .schedule(Schedule::Every(Duration::from_millis(400)))
        .duration(Duration::from_secs(1))
        .run()
        .await;
    assert_eq!(report.actions.len(), 2, "{report}");
    assert_eq!(report.elapsed, Duration::from_secs(1));
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_ends_an_unbounded_run_and_the_hook_saw_every_action() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let (tx, mut seen) = mpsc::unbounded_channel::<ActionRecord>();
    let handle = monkey(&root, 4)
        .on_action(move |record| {
            let _ = tx.send(record.clone());
        })
        .start();
    let mut hooked = Vec::new();
    for _ in 0..3 {
        hooked.push(seen.recv().await.expect("an action"));
    }
    assert!(!handle.is_finished());
    assert!(handle.actions_so_far() >= 3);
    let report = handle.stop().await;
    // The hook's sender went with the monkey: drain what is left.
    while let Some(record) = seen.recv().await {
        hooked.push(record);
    }
    assert!(report.actions.len() >= 3);
    let key = |a: &ActionRecord| (a.path.clone(), a.action, a.outcome, a.at);
    assert_eq!(
        hooked.iter().map(key).collect::<Vec<_>>(),
        report.actions.iter().map(key).collect::<Vec<_>>()
    );
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_hook_sees_every_action_of_a_bounded_run() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let report = monkey(&root, 9)
        .actions([ChaosAction::Kill, ChaosAction::StopWithError, ChaosAction::Panic])
        .on_action({
            let seen = seen.clone();
            move |a: &ActionRecord| seen.lock().unwrap().push((a.path.clone(), a.action, a.outcome))
        })
        .max_actions(12)
        .run()
        .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 12);
    assert_eq!(
        seen,
        report
            .actions
            .iter()
            .map(|a| (a.path.clone(), a.action, a.outcome))
            .collect::<Vec<_>>()
    );
    root.stop().await;
}

async fn rate_times(seed: u64) -> Vec<Duration> {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let report = monkey(&root, seed)
        .schedule(Schedule::Rate(20.0))
        .max_actions(10)
        .run()
        .await;
    root.stop().await;
    report.actions.iter().map(|a| a.at).collect()
}

#[tokio::test(start_paused = true)]
async fn a_rate_schedule_draws_its_gaps_from_the_seed() {
    let a = rate_times(3).await;
    assert_eq!(a.len(), 10);
    assert_eq!(a, rate_times(3).await);
    assert_ne!(a, rate_times(4).await);
    // Gaps vary (exponential), unlike a fixed period.
    let gaps: Vec<_> = a.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).any(|g| g[0] != g[1]), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn targets_with_no_match_do_nothing() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let events = watch.events().len();
    let report = ChaosMonkey::new(&root)
        .target("root/nobody/*".parse().unwrap())
        .target("elsewhere/**".parse().unwrap())
        .schedule(Schedule::Every(TICK))
        .max_actions(5)
        .run()
        .await;
    assert!(report.actions.is_empty(), "{report}");
    assert_eq!(
        report.elapsed,
        5 * TICK,
        "ticks without a match still count toward the limit"
    );
    assert_eq!(watch.events().len(), events);
    assert_eq!(root.snapshot().await.unwrap().nodes().len(), 8);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_is_not_running_is_reported_not_running() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let workers = common::sub(&root, "workers").await;
    workers.terminate_child("w1").await.unwrap();
    let skip = watch.events().len();
    let report = ChaosMonkey::new(&root)
        .target("root/workers/w1".parse().unwrap())
        .actions([ChaosAction::Kill, ChaosAction::StopWithError])
        .schedule(Schedule::Every(TICK))
        .max_actions(3)
        .run()
        .await;
    assert_eq!(report.actions.len(), 3);
    assert!(
        report.actions.iter().all(|a| a.outcome == ActionOutcome::NotRunning),
        "{report}"
    );
    assert_eq!(report.effective().count(), 0);
    assert_eq!(watch.events().len(), skip);
    let text = report.to_string();
    assert!(text.contains("seed 0: 3 actions") && text.contains("root/workers/w1") && text.contains("NotRunning"));
    root.stop().await;
}

#[tokio::test]
async fn works_on_real_time_too() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let report = monkey(&root, 6)
        .schedule(Schedule::Every(Duration::from_millis(1)))
        .max_actions(10)
        .run()
        .await;
    assert_eq!(report.actions.len(), 10);
    assert!(report.effective().count() >= 1);
    // On real time two picks may land before the supervisor saw the first
    // exit, so wait for one kill, not for one per action.
    common::wait_one(&watch, 0, "a kill", common::exited_killed).await;
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn max_actions_zero_takes_no_action() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let events = watch.events().len();
    let report = monkey(&root, 2).max_actions(0).run().await;
    assert!(report.actions.is_empty(), "{report}");
    assert_eq!(watch.events().len(), events, "nothing was killed");
    root.stop().await;
}

#[tokio::test]
async fn duration_ends_a_run_with_a_zero_period() {
    let watch = ChaosWatch::new();
    let root = stable_tree(&watch).await;
    let run = monkey(&root, 2)
        .schedule(Schedule::Every(Duration::ZERO))
        .duration(Duration::from_millis(50))
        .run();
    // A guard against a hang, not a pause: the run should end after 50 ms.
    let report = tokio::time::timeout(common::PATIENCE, run)
        .await
        .expect("the run ends at its duration");
    assert!(report.elapsed >= Duration::from_millis(50));
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stopping_a_supervisor_with_an_error_shuts_its_subtree_down_in_order_and_it_is_restarted() {
    let watch = ChaosWatch::new();
    let root = common::watched_root(&watch, 100)
        .child(
            Supervisor::builder("team")
                .child(ChildSpec::actor("w1", || (Worker, ())))
                .child(ChildSpec::actor("w2", || (Worker, ())))
                .into_child(),
        )
        .spawn()
        .await
        .unwrap();
    let skip = watch.events().len();
    let report = ChaosMonkey::new(&root)
        .target("root/team".parse().unwrap())
        .actions([ChaosAction::StopWithError])
        .schedule(Schedule::Every(TICK))
        .max_actions(1)
        .run()
        .await;
    assert_eq!(report.count(ChaosAction::StopWithError), 1, "{report}");
    let down = common::wait_one(
        &watch,
        skip,
        "team stopped with the chaos reason",
        common::exited(
            "root/team",
            |r| matches!(r, ExitReason::Stopped(reason) if &**reason == CHAOS_STOP_REASON),
        ),
    )
    .await;
    // Its children were shut down before it exited (graceful: post_stop ran).
    let events = watch.events();
    let shut: Vec<_> = events[skip..down]
        .iter()
        .filter_map(|(_, e)| match e {
            SupervisorEvent::ChildExited { path, reason, .. } => Some((path.as_str().to_owned(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        shut,
        vec![
            ("root/team/w2".to_owned(), ExitReason::Shutdown),
            ("root/team/w1".to_owned(), ExitReason::Shutdown)
        ]
    );
    common::wait_one(&watch, down, "w1 started again", common::started("root/team/w1")).await;
    common::wait_one(&watch, down, "team started again", common::started("root/team")).await;
    assert_eq!(common::child(&root, "team").await.restart_count, 1);
    root.stop().await;
}

/// Every chaos action ends a transient child abnormally, so its supervisor
/// restarts it, as OTP restarts a transient child after any exit but `normal`,
/// `shutdown` and `{shutdown, _}`.
#[tokio::test(start_paused = true)]
async fn every_action_makes_a_transient_child_restart() {
    for action in [ChaosAction::Kill, ChaosAction::StopWithError, ChaosAction::Panic] {
        let watch = ChaosWatch::new();
        let faults = Faults::builder(5).build();
        let root = common::watched_root(&watch, 100)
            .child(Faulty::child_spec("t", faults.clone(), || (Worker, ())).restart(Restart::Transient))
            .spawn()
            .await
            .unwrap();
        let skip = watch.events().len();
        let victim = common::cell(&root, "t").await;
        let report = ChaosMonkey::new(&root)
            .seed(1)
            .target("root/t".parse().unwrap())
            .actions([action])
            .faults(faults)
            .schedule(Schedule::Every(TICK))
            .max_actions(1)
            .run()
            .await;
        assert_eq!(report.count(action), 1, "{report}");
        if action == ChaosAction::Panic {
            common::worker(&victim).send_message(WorkMsg::Poke).unwrap();
        }
        let exit = common::wait_one(
            &watch,
            skip,
            "the transient child exits abnormally",
            common::exited("root/t", ExitReason::is_abnormal),
        )
        .await;
        common::wait_one(
            &watch,
            exit,
            "the transient child is restarted",
            common::started("root/t"),
        )
        .await;
        let again = common::worker(&common::cell(&root, "t").await);
        assert_ne!(again.get_id(), victim.get_id(), "after {action}");
        assert!(request(&again, WorkMsg::Ping, Duration::from_secs(5)).await.is_ok());
        root.stop().await;
    }
}
