//! `Faults` and `Faulty` against real actors: failed messages crash and
//! restart the worker, delays hold messages back, the log records every fault,
//! points outside actors (`tool/...`) are consulted directly, and a seed
//! replays the same faults.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::{WorkMsg, Worker};
use tokio::time::Instant;
use warden_chaos::{ChaosWatch, FaultAction, FaultRule, Faults, Faulty, InjectedFault};
use warden_supervisor::{ExitReason, RequestError, Supervisor, request};

const LONG: Duration = Duration::from_secs(60);

fn rule(pattern: &str, action: FaultAction, fraction: f64) -> FaultRule {
    FaultRule::new(pattern.parse().unwrap(), action, fraction)
}

/// root -> w1, w2, both `Faulty` on `faults`.
async fn tree(watch: &ChaosWatch, faults: &Faults) -> Supervisor {
    common::watched_root(watch, 1_000)
        .children(["w1", "w2"].map(|id| Faulty::child_spec(id, faults.clone(), || (Worker, ()))))
        .spawn()
        .await
        .unwrap()
}

async fn ping(root: &Supervisor, id: &str) -> Result<u64, RequestError> {
    let worker = common::worker(&common::cell(root, id).await);
    request(&worker, WorkMsg::Ping, LONG).await
}

#[tokio::test(start_paused = true)]
async fn a_fail_rule_fails_every_message_and_the_worker_is_restarted_each_time() {
    let watch = ChaosWatch::new();
    let faults = Faults::builder(1).rule(rule("root/w1", FaultAction::Fail, 1.0)).build();
    let root = tree(&watch, &faults).await;
    for round in 1..=3 {
        let skip = watch.events().len();
        assert_eq!(ping(&root, "w1").await, Err(RequestError::WorkerDown), "round {round}");
        let exit = common::wait_one(
            &watch,
            skip,
            "w1 fails",
            common::exited("root/w1", |r| match r {
                ExitReason::Failed(failure) => failure
                    .error()
                    .downcast_ref::<InjectedFault>()
                    .is_some_and(|f| &*f.point == "root/w1"),
                _ => false,
            }),
        )
        .await;
        common::wait_one(&watch, exit, "w1 restarted", common::started("root/w1")).await;
        // Its sibling is untouched.
        assert!(ping(&root, "w2").await.is_ok());
        assert_eq!(common::child(&root, "w1").await.restart_count, round);
    }
    let log = faults.log();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|r| &*r.point == "root/w1" && r.action == FaultAction::Fail),
        "{log:?}"
    );
    assert_eq!(common::child(&root, "w2").await.restart_count, 0);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_delay_rule_holds_messages_back_without_a_crash() {
    let watch = ChaosWatch::new();
    let delay = Duration::from_secs(5);
    let faults = Faults::builder(1)
        .rule(rule("root/w1", FaultAction::Delay(delay), 1.0))
        .build();
    let root = tree(&watch, &faults).await;

    let start = Instant::now();
    assert!(ping(&root, "w1").await.is_ok());
    assert_eq!(start.elapsed(), delay);
    let start = Instant::now();
    assert!(ping(&root, "w2").await.is_ok());
    assert_eq!(start.elapsed(), Duration::ZERO, "other points are not delayed");

    // A caller with a shorter deadline gives up; the worker carries on.
    let worker = common::worker(&common::cell(&root, "w1").await);
    let short = Duration::from_secs(1);
    assert_eq!(
        request(&worker, WorkMsg::Ping, short).await,
        Err(RequestError::Timeout(short))
    );
    assert!(request(&worker, WorkMsg::Ping, LONG).await.is_ok());

    let log = faults.log();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|r| r.action == FaultAction::Delay(delay) && &*r.point == "root/w1")
    );
    assert_eq!(log[0].at, Duration::ZERO);
    assert_eq!(watch.count(common::any_exit), 0);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn tool_points_are_consulted_directly_and_every_fault_is_logged() {
    let delay = Duration::from_secs(2);
    let faults = Faults::builder(9)
        .rule(rule("tool/search", FaultAction::Fail, 1.0).limit(2))
        .rule(rule("tool/*", FaultAction::Delay(delay), 1.0))
        .build();
    assert!(faults.is_active());
    let start = Instant::now();

    for _ in 0..2 {
        let err = faults.inject("tool/search").await.unwrap_err();
        assert_eq!(&*err.point, "tool/search");
        assert_eq!(err.to_string(), "fault injected at tool/search");
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The fail rule reached its limit: the next rule applies.
    faults.inject("tool/search").await.unwrap();
    assert_eq!(start.elapsed(), delay);
    faults.inject("tool/fetch").await.unwrap();
    assert_eq!(start.elapsed(), 2 * delay);
    // `try_inject` logs a delay without waiting for it.
    faults.try_inject("tool/fetch").unwrap();
    assert_eq!(start.elapsed(), 2 * delay);
    // Points no rule matches go ahead at once, unlogged.
    faults.inject("model/gpt").await.unwrap();
    faults.inject("tools/search").await.unwrap();

    let log: Vec<_> = faults
        .log()
        .into_iter()
        .map(|r| (r.point.to_string(), r.action, r.at))
        .collect();
    let s = |p: &str| p.to_owned();
    assert_eq!(
        log,
        vec![
            (s("tool/search"), FaultAction::Fail, Duration::ZERO),
            (s("tool/search"), FaultAction::Fail, Duration::ZERO),
            (s("tool/search"), FaultAction::Delay(delay), Duration::ZERO),
            (s("tool/fetch"), FaultAction::Delay(delay), delay),
            (s("tool/fetch"), FaultAction::Delay(delay), 2 * delay),
        ]
    );
}

#[tokio::test]
async fn a_panic_rule_panics_the_caller_and_is_logged() {
    let faults = Faults::builder(1)
        .rule(rule("tool/boom", FaultAction::Panic, 1.0))
        .build();
    let caller = tokio::spawn({
        let faults = faults.clone();
        async move { faults.inject("tool/boom").await }
    });
    let err = caller.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(faults.log().len(), 1);
    assert_eq!(faults.log()[0].action, FaultAction::Panic);
    // The plan still works after the panic.
    assert!(faults.try_inject("tool/other").is_ok());
}

#[tokio::test]
async fn no_plan_injects_nothing_and_a_faulty_actor_behaves_as_the_one_it_wraps() {
    let faults = Faults::none();
    assert!(!faults.is_active());
    assert!(faults.inject("tool/x").await.is_ok());
    faults.arm("tool/x", FaultAction::Fail);
    assert!(
        faults.inject("tool/x").await.is_ok(),
        "arming does nothing without a plan"
    );
    assert!(faults.log().is_empty());

    let wrapped = Faulty::new(Worker, faults.clone(), "somewhere");
    assert_eq!(wrapped.point(), "somewhere");
    let watch = ChaosWatch::new();
    let root = tree(&watch, &faults).await;
    for _ in 0..10 {
        assert!(ping(&root, "w1").await.is_ok());
    }
    assert_eq!(watch.count(common::any_exit), 0);
    root.stop().await;
}

/// Sends 12 requests, one after the other, to a `Faulty` worker that fails
/// half its messages; true for each that was answered.
async fn outcomes(seed: u64) -> Vec<bool> {
    let watch = ChaosWatch::new();
    let faults = Faults::builder(seed)
        .rule(rule("root/w1", FaultAction::Fail, 0.5))
        .build();
    let root = tree(&watch, &faults).await;
    let mut answered = Vec::new();
    for _ in 0..12 {
        let skip = watch.events().len();
        match ping(&root, "w1").await {
            Ok(_) => answered.push(true),
            Err(RequestError::WorkerDown) => {
                answered.push(false);
                common::wait_one(&watch, skip, "w1 restarted", common::started("root/w1")).await;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(faults.log().len(), answered.iter().filter(|a| !**a).count());
    root.stop().await;
    answered
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_fails_the_same_messages_of_a_real_actor() {
    let a = outcomes(21).await;
    assert_eq!(a, outcomes(21).await);
    assert!(a.contains(&true) && a.contains(&false), "{a:?}");
    assert_ne!(a, outcomes(22).await);
}
