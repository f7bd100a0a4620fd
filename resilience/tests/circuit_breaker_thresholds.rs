//! Every threshold of the closed state, on a paused clock: failure rate at and
//! below its threshold, slow calls, the minimum number of calls, count-window
//! eviction, time-window bucket expiry, and ignored calls.

use std::time::Duration;

use tokio::time::advance;
use warden_resilience::circuit_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigBuilder, CircuitState, SlidingWindow, StateTransition,
};

const FAST: Duration = Duration::from_millis(1);

fn count_based(size: u32) -> CircuitBreakerConfigBuilder {
    CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(size))
        .minimum_number_of_calls(size)
}

fn breaker(config: CircuitBreakerConfigBuilder) -> CircuitBreaker {
    CircuitBreaker::new("test", config.build().unwrap())
}

/// Runs one call: `'S'` success, `'F'` failure, `'I'` ignored; returns the transition.
fn call(b: &mut CircuitBreaker, kind: char, elapsed: Duration) -> Option<StateTransition> {
    let permit = b.try_acquire().expect("permitted");
    match kind {
        'S' => b.on_success(permit, elapsed),
        'F' => b.on_error(permit, elapsed),
        'I' => {
            b.on_ignored(permit);
            None
        }
        _ => unreachable!(),
    }
}

/// Runs `script` and returns the index of each call that caused a transition.
fn run(b: &mut CircuitBreaker, script: &str) -> Vec<(usize, StateTransition)> {
    script
        .chars()
        .enumerate()
        .filter_map(|(i, c)| call(b, c, FAST).map(|t| (i, t)))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn failure_rate_at_threshold_opens() {
    let mut b = breaker(count_based(10).failure_rate_threshold(50.0));
    // 5 failures then 5 successes: no rate before the 10th call, then exactly 50 %.
    let transitions = run(&mut b, "FFFFFSSSSS");
    assert_eq!(transitions.len(), 1);
    let (at, t) = &transitions[0];
    assert_eq!(*at, 9);
    assert_eq!((t.from, t.to), (CircuitState::Closed, CircuitState::Open));
    assert_eq!(t.failure_rate, Some(50.0));
    assert_eq!(t.slow_call_rate, Some(0.0));
    assert_eq!(t.retry_after, Some(Duration::from_secs(60)));
    assert_eq!(&*t.breaker, "test");
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_below_threshold_stays_closed() {
    let mut b = breaker(count_based(10).failure_rate_threshold(50.0));
    assert!(run(&mut b, "FFFFSSSSSS").is_empty());
    let m = b.metrics();
    assert_eq!(m.state, CircuitState::Closed);
    assert_eq!(m.failure_rate, Some(40.0));
    assert_eq!((m.buffered_calls, m.failed_calls), (10, 4));

    // The same calls open a breaker whose threshold is exactly 40 %.
    let mut b = breaker(count_based(10).failure_rate_threshold(40.0));
    assert_eq!(run(&mut b, "FFFFSSSSSS").len(), 1);
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn no_rate_before_minimum_number_of_calls() {
    let mut b = breaker(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::CountBased(100))
            .minimum_number_of_calls(5),
    );
    assert!(run(&mut b, "FFFF").is_empty());
    let m = b.metrics();
    assert_eq!(m.failure_rate, None);
    assert_eq!(m.slow_call_rate, None);
    assert_eq!((m.buffered_calls, m.failed_calls), (4, 4));
    // The 5th call reaches the minimum: 100 % failures.
    let t = call(&mut b, 'F', FAST).expect("opens at the minimum");
    assert_eq!(t.failure_rate, Some(100.0));
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_at_threshold_opens() {
    let threshold = Duration::from_secs(2);
    let mut b = breaker(
        count_based(4)
            .slow_call_rate_threshold(50.0)
            .slow_call_duration_threshold(threshold),
    );
    // Exactly the threshold is not slow; one nanosecond more is.
    assert!(call(&mut b, 'S', threshold).is_none());
    assert!(call(&mut b, 'S', threshold).is_none());
    assert!(call(&mut b, 'S', threshold + Duration::from_nanos(1)).is_none());
    let t = call(&mut b, 'S', Duration::from_secs(30)).expect("2 slow of 4 = 50 %");
    assert_eq!((t.from, t.to), (CircuitState::Closed, CircuitState::Open));
    assert_eq!(t.slow_call_rate, Some(50.0));
    assert_eq!(t.failure_rate, Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_below_threshold_stays_closed() {
    let slow = Duration::from_secs(61); // default slow threshold is 60 s
    let mut b = breaker(count_based(4).slow_call_rate_threshold(75.0));
    assert!(call(&mut b, 'S', slow).is_none());
    assert!(call(&mut b, 'F', slow).is_none()); // slow and failed: counts for both rates
    assert!(call(&mut b, 'S', FAST).is_none());
    assert!(call(&mut b, 'S', FAST).is_none());
    let m = b.metrics();
    assert_eq!(m.state, CircuitState::Closed);
    assert_eq!(m.slow_call_rate, Some(50.0));
    assert_eq!(m.failure_rate, Some(25.0));
    assert_eq!((m.slow_calls, m.slow_failed_calls, m.failed_calls), (2, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn count_window_evicts_the_oldest_call() {
    // [S S S F] is 25 %; the next failure evicts an S: [S S F F] is 50 % (5 calls in all would be 40 %).
    let mut b = breaker(count_based(4).failure_rate_threshold(50.0));
    let transitions = run(&mut b, "SSSFF");
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0].0, 4);
    assert_eq!(transitions[0].1.failure_rate, Some(50.0));

    // [F F S S] is 50 %, below 60 %; the next failure evicts an F: [F S S F] is still 50 %
    // (3 failures of 5 in all would be 60 %).
    let mut b = breaker(count_based(4).failure_rate_threshold(60.0));
    assert!(run(&mut b, "FFSSF").is_empty());
    let m = b.metrics();
    assert_eq!((m.buffered_calls, m.failed_calls), (4, 2));
    assert_eq!(m.failure_rate, Some(50.0));
}

#[tokio::test(start_paused = true)]
async fn time_window_drops_expired_buckets() {
    let mut b = breaker(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::TimeBased(10))
            .minimum_number_of_calls(4)
            .failure_rate_threshold(75.0),
    );
    assert!(run(&mut b, "FF").is_empty()); // second 0
    advance(Duration::from_secs(9)).await;
    assert!(run(&mut b, "S").is_empty()); // second 9
    advance(Duration::from_millis(999)).await;
    assert_eq!(
        b.metrics().buffered_calls,
        3,
        "second 0 is still in the 10 s window at 9.999 s"
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(b.metrics().buffered_calls, 1, "second 0 has left the window at 10 s");
    // Without expiry [F F S F] would be 75 % and open here.
    assert!(run(&mut b, "F").is_empty());
    assert_eq!(b.metrics().failure_rate, None, "2 calls, below the minimum");
    // [S F F F] in seconds 9..=10: 75 %.
    let transitions = run(&mut b, "FF");
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0].1.failure_rate, Some(75.0));
}

#[tokio::test(start_paused = true)]
async fn time_window_gap_longer_than_window_clears_it() {
    let mut b = breaker(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::TimeBased(5))
            .minimum_number_of_calls(3),
    );
    assert!(run(&mut b, "FF").is_empty());
    advance(Duration::from_secs(60)).await;
    assert_eq!(b.metrics().buffered_calls, 0);
    assert!(run(&mut b, "FS").is_empty());
    assert_eq!(b.metrics().buffered_calls, 2);
}

#[tokio::test(start_paused = true)]
async fn ignored_calls_count_neither_way() {
    let mut b = breaker(count_based(4));
    assert!(run(&mut b, &"I".repeat(1000)).is_empty());
    let m = b.metrics();
    assert_eq!(
        (m.state, m.buffered_calls, m.failure_rate),
        (CircuitState::Closed, 0, None)
    );
    // Ignored calls between failures neither dilute nor add to the rate.
    let transitions = run(&mut b, "FIFISI");
    assert_eq!(transitions.len(), 0);
    let t = call(&mut b, 'S', FAST).expect("[F F S S] = 50 %");
    assert_eq!(t.failure_rate, Some(50.0));
}
