//! The open wait, half-open trials, stale permits and the manual states, on a paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, advance};
use warden_resilience::circuit_breaker::{
    CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigBuilder, CircuitOpened, CircuitState,
    SharedCircuitBreaker, SlidingWindow,
};

const FAST: Duration = Duration::from_millis(1);
const WAIT: Duration = Duration::from_secs(30);

/// Opens after 2 failures of 2; waits 30 s; 3 trials.
fn config() -> CircuitBreakerConfigBuilder {
    CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .wait_duration_in_open_state(WAIT)
        .permitted_number_of_calls_in_half_open_state(3)
}

fn open(b: &mut CircuitBreaker) {
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        let _ = b.on_error(p, FAST);
    }
    assert_eq!(b.state(), CircuitState::Open);
}

/// An open breaker whose wait is over, turned half-open by its first trial (returned).
async fn half_open(b: &mut CircuitBreaker) -> warden_resilience::circuit_breaker::Permit {
    open(b);
    advance(WAIT).await;
    let p = b.try_acquire().unwrap();
    assert_eq!(b.state(), CircuitState::HalfOpen);
    p
}

#[tokio::test(start_paused = true)]
async fn open_rejects_with_exact_retry_after_then_turns_half_open_on_next_attempt() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    open(&mut b);
    let e = b.try_acquire().unwrap_err();
    assert_eq!((e.state, e.retry_after), (CircuitState::Open, Some(WAIT)));
    advance(Duration::from_secs(10)).await;
    assert_eq!(b.try_acquire().unwrap_err().retry_after, Some(Duration::from_secs(20)));
    advance(Duration::from_secs(20) - Duration::from_nanos(1)).await;
    assert_eq!(b.try_acquire().unwrap_err().retry_after, Some(Duration::from_nanos(1)));
    assert_eq!(b.take_transition(), None);
    advance(Duration::from_nanos(1)).await;
    // The wait is over, but nothing happens until the next attempt.
    assert_eq!(b.state(), CircuitState::Open);
    let _trial = b.try_acquire().expect("first trial");
    assert_eq!(b.state(), CircuitState::HalfOpen);
    let t = b.take_transition().expect("open -> half-open");
    assert_eq!((t.from, t.to), (CircuitState::Open, CircuitState::HalfOpen));
    assert_eq!(t.retry_after, None);
    assert_eq!(b.take_transition(), None, "taken once");
    assert_eq!(b.metrics().not_permitted_calls, 3);
}

#[tokio::test(start_paused = true)]
async fn half_open_permits_exactly_the_trials() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    let _p1 = half_open(&mut b).await;
    let _p2 = b.try_acquire().unwrap();
    let _p3 = b.try_acquire().unwrap();
    let e = b.try_acquire().unwrap_err();
    assert_eq!((e.state, e.retry_after), (CircuitState::HalfOpen, None));
    assert!(b.try_acquire().is_err());
    assert_eq!(b.state(), CircuitState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn half_open_closes_when_trials_are_below_thresholds() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    let p1 = half_open(&mut b).await;
    let p2 = b.try_acquire().unwrap();
    let p3 = b.try_acquire().unwrap();
    assert!(b.on_error(p1, FAST).is_none());
    assert!(b.on_success(p2, FAST).is_none(), "no decision before all trials are in");
    assert_eq!(b.metrics().buffered_calls, 2);
    let t = b.on_success(p3, FAST).expect("decides on the 3rd trial");
    assert_eq!((t.from, t.to), (CircuitState::HalfOpen, CircuitState::Closed));
    assert_eq!((t.failure_rate, t.slow_call_rate), (Some(100.0 / 3.0), Some(0.0)));
    // Closed again, with an empty window.
    let m = b.metrics();
    assert_eq!((m.state, m.buffered_calls), (CircuitState::Closed, 0));
    assert!(b.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_when_trials_fail() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    let p1 = half_open(&mut b).await;
    let p2 = b.try_acquire().unwrap();
    let p3 = b.try_acquire().unwrap();
    assert!(b.on_error(p1, FAST).is_none());
    assert!(b.on_success(p2, FAST).is_none());
    let t = b.on_error(p3, FAST).expect("2 of 3 failed");
    assert_eq!((t.from, t.to), (CircuitState::HalfOpen, CircuitState::Open));
    assert_eq!(t.retry_after, Some(WAIT));
    let opened = t.opened().expect("an opening");
    assert_eq!((opened.from, opened.retry_after), (CircuitState::HalfOpen, Some(WAIT)));
    // A fresh open wait.
    assert_eq!(b.try_acquire().unwrap_err().retry_after, Some(WAIT));
}

#[tokio::test(start_paused = true)]
async fn half_open_reopens_when_trials_are_slow() {
    let mut b = CircuitBreaker::new(
        "t",
        config()
            .slow_call_duration_threshold(Duration::from_secs(1))
            .slow_call_rate_threshold(60.0)
            .build()
            .unwrap(),
    );
    let p1 = half_open(&mut b).await;
    let p2 = b.try_acquire().unwrap();
    let p3 = b.try_acquire().unwrap();
    let slow = Duration::from_secs(2);
    assert!(b.on_success(p1, slow).is_none());
    assert!(b.on_success(p2, slow).is_none());
    let t = b.on_success(p3, FAST).expect("2 of 3 slow = 66.7 % >= 60 %");
    assert_eq!(t.to, CircuitState::Open);
    assert_eq!(t.failure_rate, Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn ignored_trial_frees_its_slot() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    let p1 = half_open(&mut b).await;
    let p2 = b.try_acquire().unwrap();
    let p3 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    b.on_ignored(p1);
    let p4 = b.try_acquire().expect("the ignored trial's slot");
    assert!(b.try_acquire().is_err());
    assert!(b.on_success(p2, FAST).is_none());
    assert!(b.on_success(p3, FAST).is_none());
    let t = b.on_success(p4, FAST).expect("3 recorded trials decide");
    assert_eq!(t.to, CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn results_from_an_older_state_are_dropped() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    let late_closed = b.try_acquire().unwrap();
    let late_closed_2 = b.try_acquire().unwrap();
    open(&mut b);
    // A closed-state call finishing while open changes nothing.
    assert!(b.on_error(late_closed, FAST).is_none());
    assert_eq!(b.metrics().buffered_calls, 2);

    let trial = {
        advance(WAIT).await;
        b.try_acquire().unwrap()
    };
    // Nor does it count as a half-open trial.
    assert!(b.on_success(late_closed_2, FAST).is_none());
    assert_eq!(b.metrics().buffered_calls, 0);
    let late_trial = b.try_acquire().unwrap();
    let t3 = b.try_acquire().unwrap();
    assert!(b.on_success(trial, FAST).is_none());
    // Two trials recorded (the stale result did not count): no decision yet.
    assert!(b.on_success(t3, FAST).is_none());
    b.on_ignored(late_trial); // frees a slot
    let t4 = b.try_acquire().unwrap();
    assert_eq!(b.on_success(t4, FAST).map(|t| t.to), Some(CircuitState::Closed));

    // Closed again: a stale half-open permit cannot re-open it.
    let stale = late_trial_permit_from_new_half_open(&mut b).await;
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(b.on_error(stale, Duration::from_secs(999)).is_none());
    assert_eq!(b.metrics().buffered_calls, 0);
}

/// Opens, turns half-open, takes a trial permit, then closes via `reset`, returning the stale permit.
async fn late_trial_permit_from_new_half_open(b: &mut CircuitBreaker) -> warden_resilience::circuit_breaker::Permit {
    let p = half_open(b).await;
    let t = b.reset().expect("half-open -> closed");
    assert_eq!(t.to, CircuitState::Closed);
    p
}

#[tokio::test(start_paused = true)]
async fn max_wait_in_half_open_reopens() {
    let mut b = CircuitBreaker::new(
        "t",
        config()
            .max_wait_duration_in_half_open_state(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let stuck = half_open(&mut b).await;
    let _ = b.take_transition();
    advance(Duration::from_secs(5) - Duration::from_nanos(1)).await;
    let _p2 = b.try_acquire().expect("within the maximum wait");
    advance(Duration::from_nanos(1)).await;
    let e = b.try_acquire().unwrap_err();
    assert_eq!((e.state, e.retry_after), (CircuitState::Open, Some(WAIT)));
    let t = b.take_transition().expect("half-open -> open");
    assert_eq!((t.from, t.to), (CircuitState::HalfOpen, CircuitState::Open));
    assert!(t.opened().is_some());
    assert!(b.on_success(stuck, FAST).is_none(), "stale");
}

#[tokio::test(start_paused = true)]
async fn refresh_applies_time_driven_changes() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    open(&mut b);
    assert!(b.refresh().is_none());
    advance(WAIT).await;
    let t = b.refresh().expect("automatic open -> half-open");
    assert_eq!((t.from, t.to), (CircuitState::Open, CircuitState::HalfOpen));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(b.refresh().is_none(), "no maximum half-open wait");
}

#[tokio::test(start_paused = true)]
async fn manual_states() {
    let mut b = CircuitBreaker::new("t", config().build().unwrap());
    let t = b.force_open().expect("closed -> forced open");
    assert_eq!((t.to, t.retry_after), (CircuitState::ForcedOpen, None));
    assert!(t.opened().is_none(), "a manual opening is not escalated");
    assert!(b.force_open().is_none());
    advance(Duration::from_secs(3600)).await;
    let e = b.try_acquire().unwrap_err();
    assert_eq!((e.state, e.retry_after), (CircuitState::ForcedOpen, None));

    assert_eq!(b.disable().map(|t| t.to), Some(CircuitState::Disabled));
    for _ in 0..10 {
        let p = b.try_acquire().unwrap();
        assert!(b.on_error(p, FAST).is_none());
    }
    assert_eq!(b.metrics().buffered_calls, 0, "disabled records nothing");
    assert_eq!(b.metrics().not_permitted_calls, 1);

    assert_eq!(
        b.reset().map(|t| (t.from, t.to)),
        Some((CircuitState::Disabled, CircuitState::Closed))
    );
    assert_eq!(b.metrics().not_permitted_calls, 0);
    let p = b.try_acquire().unwrap();
    let _ = b.on_error(p, FAST);
    assert!(b.reset().is_none(), "already closed");
    assert_eq!(b.metrics().buffered_calls, 0, "but the window is cleared");
}

#[tokio::test(start_paused = true)]
async fn shared_breaker_tells_listeners_once_per_transition() {
    let shared = SharedCircuitBreaker::new(
        "search",
        config()
            .permitted_number_of_calls_in_half_open_state(1)
            .build()
            .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let escalated: Arc<Mutex<Vec<CircuitOpened>>> = Arc::default();
    {
        let seen = seen.clone();
        let escalated = escalated.clone();
        let shared2 = shared.clone();
        shared.on_transition(move |t| {
            // Listeners run outside the lock: they may use the breaker.
            assert_eq!(shared2.state(), t.to);
            seen.lock().unwrap().push((t.from, t.to));
            escalated.lock().unwrap().extend(t.opened());
        });
    }
    let started = Instant::now();
    for _ in 0..2 {
        shared.try_call().unwrap().record(CallOutcome::Failure);
    }
    assert!(shared.try_call().is_err());
    advance(WAIT).await;
    let trial = shared.try_call().unwrap();
    assert!(shared.try_call().is_err());
    advance(Duration::from_secs(2)).await;
    assert_eq!(trial.elapsed(), Duration::from_secs(2));
    trial.success();

    use CircuitState::*;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    let escalated = escalated.lock().unwrap();
    assert_eq!(escalated.len(), 1);
    assert_eq!(&*escalated[0].breaker, "search");
    assert_eq!(escalated[0].failure_rate, Some(100.0));
    assert_eq!(escalated[0].retry_after, Some(WAIT));
    assert_eq!(Instant::now() - started, WAIT + Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn dropped_call_guard_frees_its_trial() {
    let shared = SharedCircuitBreaker::new(
        "t",
        config()
            .permitted_number_of_calls_in_half_open_state(1)
            .build()
            .unwrap(),
    );
    for _ in 0..2 {
        shared.try_call().unwrap().failure();
    }
    advance(WAIT).await;
    let trial = shared.try_call().unwrap();
    assert!(shared.try_call().is_err());
    drop(trial);
    assert_eq!(shared.state(), CircuitState::HalfOpen);
    shared.try_call().expect("the slot is free again").success();
    assert_eq!(shared.state(), CircuitState::Closed);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<SharedCircuitBreaker>();
    is_send_sync::<CircuitBreaker>();
    is_send_sync::<warden_resilience::circuit_breaker::CallGuard>();
    is_send_sync::<warden_resilience::circuit_breaker::CallNotPermitted>();
    is_send_sync::<CircuitOpened>();
}
