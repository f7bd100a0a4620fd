//! Optional restart backoff (`ChildSpec::backoff`), off by default: with it a
//! restart waits its delay (the child shows `Restarting` and a
//! `RestartScheduled` event is emitted), delays double up to the maximum, and
//! the count resets once the child has run `reset_after` without failing;
//! without it a restart is immediate, as in OTP. Time is a paused tokio clock
//! moved with `tokio::time::advance`.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::{Control, EventLog, ProbeMsg, cell, child, ping, probe, tell};
use tokio::time::{Instant, advance};
use warden::supervisor::{Backoff, ChildSpec, ChildState, Strategy, Supervisor, SupervisorEvent};

const MS: Duration = Duration::from_millis(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn is_restarting(sup: &Supervisor, id: &str) -> bool {
    matches!(child(sup, id).await.state, ChildState::Restarting)
}

/// The delays of the `RestartScheduled` events so far, in order.
fn delays(log: &EventLog) -> Vec<Duration> {
    log.events()
        .iter()
        .filter_map(|e| match e {
            SupervisorEvent::RestartScheduled { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect()
}

async fn root_with(log: &EventLog, children: impl IntoIterator<Item = ChildSpec>) -> Supervisor {
    Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(20, Duration::from_secs(3600))
        .observer(log.observer())
        .children(children)
        .spawn()
        .await
        .unwrap()
}

/// Crashes `id` and waits until its restart is scheduled (the n-th time).
async fn crash_and_wait_scheduled(root: &Supervisor, log: &EventLog, id: &str, n: usize) {
    tell(&cell(root, id).await, ProbeMsg::Fail);
    log.wait_count(&format!("scheduled {id}"), n).await;
}

#[tokio::test(start_paused = true)]
async fn without_backoff_a_crashed_child_is_restarted_at_once() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(&log, [probe("a", &control)]).await;
    let before = Instant::now();

    tell(&cell(&root, "a").await, ProbeMsg::Panic);
    log.wait_count("start a", 2).await;

    assert_eq!(Instant::now(), before, "no time had to pass for the restart");
    assert!(child(&root, "a").await.state.is_running());
    root.stop().await;
    assert_eq!(
        log.lines(),
        ["start a", "down a boom", "start a", "down a shutdown", "stopped root"]
    );
}

#[tokio::test(start_paused = true)]
async fn with_backoff_the_restart_waits_the_delay_while_the_child_shows_restarting() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [probe("a", &control).backoff(Backoff::exponential(ms(100), ms(1000)))],
    )
    .await;

    crash_and_wait_scheduled(&root, &log, "a", 1).await;

    let scheduled: Vec<(String, Duration)> = log
        .events()
        .iter()
        .filter_map(|e| match e {
            SupervisorEvent::RestartScheduled { path, delay } => Some((path.to_string(), *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled, [("root/a".to_string(), ms(100))]);
    let info = child(&root, "a").await;
    assert!(matches!(info.state, ChildState::Restarting));
    assert_eq!(info.restart_count, 1, "the restart is decided, only delayed");
    assert_eq!(root.count_children().await.unwrap().active, 0);

    advance(ms(99)).await;
    assert!(is_restarting(&root, "a").await);
    assert_eq!(control.starts("a"), 1);

    advance(MS).await;
    log.wait_count("start a", 2).await;
    assert_eq!(ping(&cell(&root, "a").await).await, Some(1));
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a boom",
            "scheduled a",
            "start a",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_double_up_to_the_maximum() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [probe("a", &control).backoff(Backoff::exponential(ms(100), ms(500)))],
    )
    .await;

    for (n, delay) in [100, 200, 400, 500, 500].into_iter().enumerate() {
        crash_and_wait_scheduled(&root, &log, "a", n + 1).await;
        advance(ms(delay) - MS).await;
        assert!(is_restarting(&root, "a").await, "restart {} came early", n + 1);
        advance(MS).await;
        log.wait_count("start a", n + 2).await;
    }

    assert_eq!(delays(&log), [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    assert_eq!(child(&root, "a").await.restart_count, 5);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_backoff_count_resets_after_the_child_ran_reset_after_without_failing() {
    let control = Control::new();
    let log = EventLog::new();
    let backoff = Backoff::exponential(ms(100), ms(10_000)).reset_after(Duration::from_secs(2));
    let root = root_with(&log, [probe("a", &control).backoff(backoff)]).await;

    for (n, delay) in [100, 200, 400].into_iter().enumerate() {
        crash_and_wait_scheduled(&root, &log, "a", n + 1).await;
        advance(ms(delay)).await;
        log.wait_count("start a", n + 2).await;
    }
    // Ran a little less than reset_after: the count goes on.
    advance(ms(1999)).await;
    crash_and_wait_scheduled(&root, &log, "a", 4).await;
    advance(ms(800)).await;
    log.wait_count("start a", 5).await;
    // Ran reset_after: back to the first delay.
    advance(Duration::from_secs(2)).await;
    crash_and_wait_scheduled(&root, &log, "a", 5).await;
    advance(ms(100)).await;
    log.wait_count("start a", 6).await;

    assert_eq!(delays(&log), [ms(100), ms(200), ms(400), ms(800), ms(100)]);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_default_reset_after_is_halfway_between_min_and_max() {
    let control = Control::new();
    let log = EventLog::new();
    // Resets after (100 ms + 900 ms) / 2 = 500 ms.
    let root = root_with(
        &log,
        [probe("a", &control).backoff(Backoff::exponential(ms(100), ms(900)))],
    )
    .await;

    crash_and_wait_scheduled(&root, &log, "a", 1).await;
    advance(ms(100)).await;
    log.wait_count("start a", 2).await;
    advance(ms(499)).await;
    crash_and_wait_scheduled(&root, &log, "a", 2).await;
    advance(ms(200)).await;
    log.wait_count("start a", 3).await;
    advance(ms(500)).await;
    crash_and_wait_scheduled(&root, &log, "a", 3).await;

    assert_eq!(delays(&log), [ms(100), ms(200), ms(100)]);
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_applies_only_to_the_child_that_has_it() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [
            probe("a", &control).backoff(Backoff::exponential(ms(100), ms(1000))),
            probe("b", &control),
        ],
    )
    .await;

    tell(&cell(&root, "b").await, ProbeMsg::Panic);
    log.wait_count("start b", 2).await;

    assert!(delays(&log).is_empty());
    assert!(child(&root, "b").await.state.is_running());
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "start b",
            "down b boom",
            "start b",
            "down b shutdown",
            "down a shutdown",
            "stopped root"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_adds_at_most_the_random_factor_to_the_delay() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [probe("a", &control).backoff(Backoff::exponential(ms(100), ms(1000)).random_factor(0.5))],
    )
    .await;

    crash_and_wait_scheduled(&root, &log, "a", 1).await;

    let delay = delays(&log)[0];
    assert!(delay >= ms(100) && delay <= ms(150), "{delay:?}");
    advance(delay).await;
    log.wait_count("start a", 2).await;
    root.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_whose_start_fails_is_tried_again_after_the_next_delay() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [probe("a", &control).backoff(Backoff::exponential(ms(100), ms(1000)))],
    )
    .await;
    control.fail_next_starts("a", 2);

    crash_and_wait_scheduled(&root, &log, "a", 1).await;
    advance(ms(100)).await;
    log.wait_count("scheduled a", 2).await;
    assert!(is_restarting(&root, "a").await);
    advance(ms(200)).await;
    log.wait_count("scheduled a", 3).await;
    advance(ms(399)).await;
    assert!(is_restarting(&root, "a").await);
    advance(MS).await;
    log.wait_count("start a", 2).await;

    assert_eq!(delays(&log), [ms(100), ms(200), ms(400)]);
    root.stop().await;
    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a boom",
            "scheduled a",
            "init_failed a",
            "scheduled a",
            "init_failed a",
            "scheduled a",
            "start a",
            "down a shutdown",
            "stopped root"
        ]
    );
}

/// Restarts count toward the intensity when they are decided, not when they
/// run: with 1 restart allowed, a second crash makes the supervisor give up.
#[tokio::test(start_paused = true)]
async fn delayed_restarts_count_toward_the_intensity_when_decided() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .intensity(1, Duration::from_secs(60))
        .observer(log.observer())
        .child(probe("a", &control).backoff(Backoff::exponential(ms(100), ms(1000))))
        .spawn()
        .await
        .unwrap();

    crash_and_wait_scheduled(&root, &log, "a", 1).await;
    advance(ms(100)).await;
    log.wait_count("start a", 2).await;
    tell(&cell(&root, "a").await, ProbeMsg::Fail);
    root.wait().await;

    assert_eq!(
        log.lines(),
        [
            "start a",
            "down a boom",
            "scheduled a",
            "start a",
            "down a boom",
            "gave_up root",
            "escalated root root",
            "stopped root"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_the_supervisor_while_a_restart_waits_does_not_restart_the_child() {
    let control = Control::new();
    let log = EventLog::new();
    let root = root_with(
        &log,
        [probe("a", &control).backoff(Backoff::exponential(ms(100), ms(1000)))],
    )
    .await;
    crash_and_wait_scheduled(&root, &log, "a", 1).await;

    root.stop().await;
    advance(Duration::from_secs(1)).await;

    assert!(!root.is_alive());
    assert_eq!(control.starts("a"), 1);
    assert_eq!(log.lines(), ["start a", "down a boom", "scheduled a", "stopped root"]);
}

/// Issue 19 point 6: a backoff reaching `Duration::MAX` used to overflow
/// (`(min + max) / 2` on construction, `mul_f64` on a jittered delay) and panic.
#[tokio::test(start_paused = true)]
async fn a_backoff_up_to_the_longest_duration_saturates_instead_of_panicking() {
    let control = Control::new();
    let log = EventLog::new();
    let backoff = Backoff::exponential(Duration::MAX / 2, Duration::MAX).random_factor(1.0);
    let root = root_with(&log, [probe("a", &control).backoff(backoff)]).await;

    crash_and_wait_scheduled(&root, &log, "a", 1).await;

    let scheduled = delays(&log);
    assert_eq!(scheduled.len(), 1);
    assert!(scheduled[0] >= Duration::MAX / 2, "{scheduled:?}");
    assert!(is_restarting(&root, "a").await);
    assert!(root.is_alive());
    root.stop().await;
}
