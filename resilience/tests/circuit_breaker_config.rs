//! The breaker's settings: resilience4j's defaults and range checks.

use std::time::Duration;

use warden_resilience::circuit_breaker::{
    BreakerConfigError, CallNotPermitted, CircuitBreaker, CircuitBreakerConfig, CircuitState, MAX_WINDOW_SIZE,
    SlidingWindow,
};

#[test]
fn defaults_are_resilience4j_defaults() {
    let c = CircuitBreakerConfig::builder().build().unwrap();
    assert_eq!(c, CircuitBreakerConfig::default());
    assert_eq!(c.failure_rate_threshold(), 50.0);
    assert_eq!(c.slow_call_rate_threshold(), 100.0);
    assert_eq!(c.slow_call_duration_threshold(), Duration::from_secs(60));
    assert_eq!(c.sliding_window(), SlidingWindow::CountBased(100));
    assert_eq!(c.minimum_number_of_calls(), 100);
    assert_eq!(c.wait_duration_in_open_state(), Duration::from_secs(60));
    assert_eq!(c.permitted_number_of_calls_in_half_open_state(), 10);
    assert_eq!(c.max_wait_duration_in_half_open_state(), Duration::ZERO);
}

#[test]
fn thresholds_must_be_in_zero_to_hundred() {
    let b = CircuitBreakerConfig::builder;
    for bad in [0.0, -1.0, 100.5, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            b().failure_rate_threshold(bad).build(),
            Err(BreakerConfigError::FailureRateThreshold(_))
        ));
        assert!(matches!(
            b().slow_call_rate_threshold(bad).build(),
            Err(BreakerConfigError::SlowCallRateThreshold(_))
        ));
    }
    for good in [0.01, 50.0, 100.0] {
        assert!(
            b().failure_rate_threshold(good)
                .slow_call_rate_threshold(good)
                .build()
                .is_ok()
        );
    }
}

#[test]
fn sizes_and_counts_must_be_positive_and_bounded() {
    let b = CircuitBreakerConfig::builder;
    assert_eq!(
        b().sliding_window(SlidingWindow::CountBased(0)).build(),
        Err(BreakerConfigError::WindowSize(0))
    );
    assert_eq!(
        b().sliding_window(SlidingWindow::TimeBased(0)).build(),
        Err(BreakerConfigError::WindowSize(0))
    );
    assert_eq!(
        b().sliding_window(SlidingWindow::CountBased(MAX_WINDOW_SIZE + 1))
            .build(),
        Err(BreakerConfigError::WindowSize(MAX_WINDOW_SIZE + 1))
    );
    assert!(b().sliding_window(SlidingWindow::TimeBased(1)).build().is_ok());
    assert_eq!(
        b().minimum_number_of_calls(0).build(),
        Err(BreakerConfigError::MinimumNumberOfCalls)
    );
    assert_eq!(
        b().permitted_number_of_calls_in_half_open_state(0).build(),
        Err(BreakerConfigError::PermittedCallsInHalfOpen(0))
    );
}

#[test]
fn errors_display_lowercase_without_period() {
    let errors = [
        BreakerConfigError::FailureRateThreshold(0.0).to_string(),
        BreakerConfigError::WindowSize(0).to_string(),
        CallNotPermitted::new(CircuitState::Open, Some(Duration::from_secs(3))).to_string(),
        CallNotPermitted::new(CircuitState::HalfOpen, None).to_string(),
        CallNotPermitted::new(CircuitState::ForcedOpen, None).to_string(),
    ];
    for e in errors {
        assert!(e.starts_with(char::is_lowercase) && !e.ends_with('.'), "{e}");
    }
    assert_eq!(
        CallNotPermitted::new(CircuitState::Open, Some(Duration::from_secs(3))).to_string(),
        "circuit breaker is open, retry after 3s"
    );
    assert!(CallNotPermitted::new(CircuitState::Open, None).is_transient());
}

#[tokio::test(start_paused = true)]
async fn count_window_caps_minimum_calls_at_its_size() {
    // Minimum 100 calls in a 10-call window could never be reached: 10 is used, as resilience4j does.
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(10))
        .minimum_number_of_calls(100)
        .build()
        .unwrap();
    let mut b = CircuitBreaker::new("capped", config);
    for i in 0..10 {
        let p = b.try_acquire().unwrap();
        let t = b.on_error(p, Duration::ZERO);
        assert_eq!(t.is_some(), i == 9, "call {i}");
    }
    assert_eq!(b.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn time_window_keeps_minimum_calls() {
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::TimeBased(10))
        .minimum_number_of_calls(20)
        .build()
        .unwrap();
    let mut b = CircuitBreaker::new("time", config);
    for _ in 0..19 {
        let p = b.try_acquire().unwrap();
        assert!(b.on_error(p, Duration::ZERO).is_none());
    }
    let p = b.try_acquire().unwrap();
    assert!(b.on_error(p, Duration::ZERO).is_some());
}
