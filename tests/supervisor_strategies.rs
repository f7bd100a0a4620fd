//! The three restart strategies, with OTP's exact semantics (SEMANTICS.md,
//! items 20–27): who is stopped and in which order (reverse start order), who is
//! restarted and in which order (start order), a group restart counting once
//! toward the intensity, temporary bystanders removed rather than restarted,
//! siblings stopped with `terminate_child` brought back by a group restart, no
//! group restart after a normal exit, a sibling failing to start during a group
//! restart (one_for_all retries the whole group, rest_for_one only from the
//! failed child), and a group that keeps failing to start making the supervisor
//! give up.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::OtpName;
use probe::{Control, EventLog, ProbeMsg, cell as actor, ping, probe, tell};
use ractor::ActorId;
use warden::supervisor::{ChildCounts, ChildState, Restart, Strategy, Supervisor};

/// A window long enough that no restart of a test leaves it.
const PERIOD: Duration = Duration::from_secs(60);

/// The actor ids of the running children, in start order.
async fn running_ids(sup: &Supervisor) -> Vec<(String, ActorId)> {
    sup.which_children()
        .await
        .expect("supervisor is alive")
        .iter()
        .filter_map(|c| c.state.actor().map(|a| (c.id().to_string(), a.get_id())))
        .collect()
}

/// The child ids, in start order, with OTP's name for their state.
async fn states(sup: &Supervisor) -> Vec<(String, &'static str)> {
    sup.which_children()
        .await
        .expect("supervisor is alive")
        .iter()
        .map(|c| (c.id().to_string(), c.state.otp_name()))
        .collect()
}

async fn spawn(
    strategy: Strategy,
    max_restarts: u32,
    log: &EventLog,
    children: Vec<warden::supervisor::ChildSpec>,
) -> Supervisor {
    Supervisor::builder("root")
        .strategy(strategy)
        .intensity(max_restarts, PERIOD)
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
        .expect("supervisor starts")
}

fn counts(specs: usize, active: usize, workers: usize) -> ChildCounts {
    ChildCounts {
        specs,
        active,
        supervisors: 0,
        workers,
    }
}

// ---- item 20: one_for_one ----------------------------------------------------

#[tokio::test]
async fn one_for_one_restarts_only_the_crashed_child_and_siblings_keep_running() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::OneForOne,
        3,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    let before = running_ids(&root).await;

    tell(&actor(&root, "b").await, ProbeMsg::Panic);
    log.wait_count("start b", 2).await;

    let after = running_ids(&root).await;
    assert_eq!(after[0], before[0], "a keeps its actor");
    assert_ne!(after[1].1, before[1].1, "b is a new actor");
    assert_eq!(after[2], before[2], "c keeps its actor");
    assert_eq!(root.count_children().await.unwrap(), counts(3, 3, 3));
    assert_eq!(ping(&actor(&root, "b").await).await, Some(1));
    assert_eq!(log.lines(), ["start a", "start b", "start c", "down b boom", "start b"]);
    root.stop().await;
}

// ---- item 21: one_for_all ----------------------------------------------------

#[tokio::test]
async fn one_for_all_stops_the_others_last_first_then_restarts_all_in_start_order() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c", "d"];
    let root = spawn(
        Strategy::OneForAll,
        3,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    let before = running_ids(&root).await;

    tell(&actor(&root, "b").await, ProbeMsg::Panic);
    log.wait_count("start d", 2).await;

    let after = running_ids(&root).await;
    assert_eq!(after.len(), 4);
    for ((id, old), (_, new)) in before.iter().zip(&after) {
        assert_ne!(old, new, "{id} was restarted: none of the old actors remain");
    }
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "start d",
            "down b boom",
            "down d shutdown",
            "down c shutdown",
            "down a shutdown",
            "start a",
            "start b",
            "start c",
            "start d",
        ]
    );
    for id in ids {
        assert_eq!(
            ping(&actor(&root, id).await).await,
            Some(1),
            "{id} is its second incarnation"
        );
    }
    root.stop().await;
}

// ---- item 22: rest_for_one ---------------------------------------------------

#[tokio::test]
async fn rest_for_one_stops_later_siblings_last_first_and_restarts_in_order() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["c1", "c2", "c3", "c4", "c5"];
    let root = spawn(
        Strategy::RestForOne,
        3,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    let before = running_ids(&root).await;

    tell(&actor(&root, "c3").await, ProbeMsg::Panic);
    log.wait_count("start c5", 2).await;

    let after = running_ids(&root).await;
    assert_eq!(after[..2], before[..2], "c1 and c2 keep their actors");
    for ((id, old), (_, new)) in before[2..].iter().zip(&after[2..]) {
        assert_ne!(old, new, "{id} was restarted");
    }
    assert_eq!(
        log.lines(),
        [
            "start c1",
            "start c2",
            "start c3",
            "start c4",
            "start c5",
            "down c3 boom",
            "down c5 shutdown",
            "down c4 shutdown",
            "start c3",
            "start c4",
            "start c5",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn rest_for_one_crash_of_the_last_child_restarts_only_it() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::RestForOne,
        3,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    let before = running_ids(&root).await;

    tell(&actor(&root, "c").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;

    assert_eq!(running_ids(&root).await[..2], before[..2]);
    assert_eq!(log.lines(), ["start a", "start b", "start c", "down c boom", "start c"]);
    root.stop().await;
}

// ---- item 21: a group restart counts once ------------------------------------

async fn group_restart_counts_once(strategy: Strategy) {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    // Intensity 1: had the group restart counted once per child, it would give up.
    let root = spawn(strategy, 1, &log, ids.iter().map(|id| probe(id, &control)).collect()).await;

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;
    assert_eq!(root.count_children().await.unwrap(), counts(3, 3, 3));

    // The second group restart is one too many.
    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down a boom",
            "down c shutdown",
            "down b shutdown",
            "start a",
            "start b",
            "start c",
            "down a boom",
            "gave_up root",
            "down c shutdown",
            "down b shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test]
async fn one_for_all_group_restart_counts_once_toward_intensity() {
    group_restart_counts_once(Strategy::OneForAll).await;
}

#[tokio::test]
async fn rest_for_one_group_restart_counts_once_toward_intensity() {
    group_restart_counts_once(Strategy::RestForOne).await;
}

// ---- item 23: temporary bystanders -------------------------------------------

async fn temporary_bystander_is_removed(strategy: Strategy) {
    let control = Control::new();
    let log = EventLog::new();
    let root = spawn(
        strategy,
        3,
        &log,
        vec![
            probe("a", &control),
            probe("t", &control).restart(Restart::Temporary),
            probe("b", &control),
        ],
    )
    .await;

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start b", 2).await;

    assert_eq!(states(&root).await, [("a".into(), "running"), ("b".into(), "running")]);
    assert_eq!(root.count_children().await.unwrap(), counts(2, 2, 2));
    assert_eq!(control.starts("t"), 1, "the temporary bystander is not restarted");
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start t",
            "start b",
            "down a boom",
            "down b shutdown",
            "down t shutdown",
            "start a",
            "start b",
        ]
    );
    assert!(root.is_alive());
    root.stop().await;
}

#[tokio::test]
async fn one_for_all_removes_a_temporary_bystander_instead_of_restarting_it() {
    temporary_bystander_is_removed(Strategy::OneForAll).await;
}

#[tokio::test]
async fn rest_for_one_removes_a_temporary_bystander_instead_of_restarting_it() {
    temporary_bystander_is_removed(Strategy::RestForOne).await;
}

// ---- item 24: group restarts resurrect stopped siblings ----------------------

#[tokio::test]
async fn one_for_all_group_restart_resurrects_siblings_that_were_not_running() {
    let control = Control::new();
    let log = EventLog::new();
    let root = spawn(
        Strategy::OneForAll,
        3,
        &log,
        vec![
            probe("a", &control),
            probe("b", &control),
            probe("t", &control).restart(Restart::Transient),
            probe("c", &control),
        ],
    )
    .await;
    root.terminate_child("c").await.unwrap();
    tell(&actor(&root, "t").await, ProbeMsg::StopNormal);
    log.wait_line("down t normal").await;
    assert_eq!(root.count_children().await.unwrap(), counts(4, 2, 4));

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;

    assert_eq!(root.count_children().await.unwrap(), counts(4, 4, 4));
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start t",
            "start c",
            "down c shutdown",
            "down t normal",
            "down a boom",
            "down b shutdown",
            "start a",
            "start b",
            "start t",
            "start c",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn rest_for_one_group_restart_resurrects_later_siblings_stopped_with_terminate_child() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c", "d"];
    let root = spawn(
        Strategy::RestForOne,
        3,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    root.terminate_child("a").await.unwrap();
    root.terminate_child("d").await.unwrap();

    tell(&actor(&root, "b").await, ProbeMsg::Panic);
    log.wait_count("start d", 2).await;

    assert_eq!(
        states(&root).await,
        [
            ("a".into(), "undefined"),
            ("b".into(), "running"),
            ("c".into(), "running"),
            ("d".into(), "running"),
        ],
        "d, after b, is started again; a, before b, is left alone"
    );
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "start d",
            "down a shutdown",
            "down d shutdown",
            "down b boom",
            "down c shutdown",
            "start b",
            "start c",
            "start d",
        ]
    );
    root.stop().await;
}

// ---- item 25: no group restart after a normal exit ---------------------------

async fn no_group_restart_after_normal_exits(strategy: Strategy) {
    let control = Control::new();
    let log = EventLog::new();
    let root = spawn(
        strategy,
        3,
        &log,
        vec![
            probe("tr", &control).restart(Restart::Transient),
            probe("tmp", &control).restart(Restart::Temporary),
            probe("b", &control),
        ],
    )
    .await;
    let b = actor(&root, "b").await.get_id();

    tell(&actor(&root, "tr").await, ProbeMsg::StopNormal);
    log.wait_line("down tr normal").await;
    tell(&actor(&root, "tmp").await, ProbeMsg::Panic);
    log.wait_line("down tmp boom").await;

    // The answer comes after the exits were handled, restarts included.
    assert_eq!(
        states(&root).await,
        [("tr".into(), "undefined"), ("b".into(), "running")]
    );
    assert_eq!(actor(&root, "b").await.get_id(), b, "b was left alone");
    assert_eq!(
        log.lines(),
        ["start tr", "start tmp", "start b", "down tr normal", "down tmp boom"]
    );
    root.stop().await;
}

#[tokio::test]
async fn one_for_all_does_not_restart_the_group_after_a_normal_transient_exit_or_a_temporary_exit() {
    no_group_restart_after_normal_exits(Strategy::OneForAll).await;
}

#[tokio::test]
async fn rest_for_one_does_not_restart_the_group_after_a_normal_transient_exit_or_a_temporary_exit() {
    no_group_restart_after_normal_exits(Strategy::RestForOne).await;
}

// ---- item 26: a sibling fails to start during a group restart ----------------

#[tokio::test]
async fn one_for_all_retries_the_whole_group_when_a_sibling_fails_to_start() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::OneForAll,
        5,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    control.fail_next_starts("b", 1);

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;

    assert_eq!(root.count_children().await.unwrap(), counts(3, 3, 3));
    assert_eq!(control.starts("a"), 3, "a was started again with the whole group");
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down a boom",
            "down c shutdown",
            "down b shutdown",
            "start a",
            "init_failed b",
            "down a shutdown",
            "start a",
            "start b",
            "start c",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn rest_for_one_retries_only_from_the_sibling_that_failed_to_start() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::RestForOne,
        5,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    control.fail_next_starts("b", 1);

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;

    assert_eq!(root.count_children().await.unwrap(), counts(3, 3, 3));
    assert_eq!(control.starts("a"), 2, "a is not restarted again");
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down a boom",
            "down c shutdown",
            "down b shutdown",
            "start a",
            "init_failed b",
            "start b",
            "start c",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn one_for_all_retries_the_group_when_the_crashed_child_itself_fails_to_restart() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::OneForAll,
        5,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    control.fail_next_starts("b", 1);

    tell(&actor(&root, "b").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;

    assert_eq!(root.count_children().await.unwrap(), counts(3, 3, 3));
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down b boom",
            "down c shutdown",
            "down a shutdown",
            "start a",
            "init_failed b",
            "down a shutdown",
            "start a",
            "start b",
            "start c",
        ]
    );
    root.stop().await;
}

#[tokio::test]
async fn rest_for_one_retries_from_the_crashed_child_when_its_own_restart_fails() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::RestForOne,
        5,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    let a = actor(&root, "a").await.get_id();
    control.fail_next_starts("b", 1);

    tell(&actor(&root, "b").await, ProbeMsg::Panic);
    log.wait_count("start c", 2).await;

    assert_eq!(actor(&root, "a").await.get_id(), a, "a is left alone");
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down b boom",
            "down c shutdown",
            "init_failed b",
            "start b",
            "start c",
        ]
    );
    root.stop().await;
}

// ---- item 27: group escalation -----------------------------------------------

#[tokio::test]
async fn one_for_all_gives_up_when_a_group_member_keeps_failing_to_start() {
    let control = Control::new();
    let log = EventLog::new();
    let root = spawn(
        Strategy::OneForAll,
        2,
        &log,
        vec![probe("a", &control), probe("b", &control)],
    )
    .await;
    control.fail_next_starts("b", u32::MAX);

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down a boom",
            "down b shutdown",
            "start a",
            "init_failed b",
            // The retry is a second restart of the group.
            "down a shutdown",
            "start a",
            "init_failed b",
            // The third is one too many.
            "gave_up root",
            "down a shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
}

#[tokio::test]
async fn rest_for_one_gives_up_when_a_group_member_keeps_failing_to_start() {
    let control = Control::new();
    let log = EventLog::new();
    let ids = ["a", "b", "c"];
    let root = spawn(
        Strategy::RestForOne,
        2,
        &log,
        ids.iter().map(|id| probe(id, &control)).collect(),
    )
    .await;
    control.fail_next_starts("c", u32::MAX);

    tell(&actor(&root, "b").await, ProbeMsg::Panic);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start c",
            "down b boom",
            "down c shutdown",
            "start b",
            "init_failed c",
            "init_failed c",
            "gave_up root",
            "down b shutdown",
            "down a shutdown",
            "escalated root root",
            "stopped root",
        ]
    );
    assert!(!root.is_alive());
}

// ---- the order covers children added later -----------------------------------

#[tokio::test]
async fn rest_for_one_counts_a_child_added_with_start_child_as_started_last() {
    let control = Control::new();
    let log = EventLog::new();
    let root = spawn(
        Strategy::RestForOne,
        3,
        &log,
        vec![probe("a", &control), probe("b", &control)],
    )
    .await;
    root.start_child(probe("late", &control)).await.unwrap();

    tell(&actor(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start late", 2).await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "start late",
            "down a boom",
            "down late shutdown",
            "down b shutdown",
            "start a",
            "start b",
            "start late",
        ]
    );
    assert!(
        root.which_children()
            .await
            .unwrap()
            .iter()
            .all(|c| matches!(c.state, ChildState::Running(_)))
    );
    root.stop().await;
}
