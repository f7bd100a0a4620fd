//! The tower layer, driven by `tower_test::mock` on a paused clock.

use std::task::Poll;
use std::time::Duration;

use tokio::time::advance;
use tower::BoxError;
use tower_test::mock::{self, Handle, Spawn};
use warden_resilience::circuit_breaker::{
    CallNotPermitted, CallOutcome, CircuitBreakerConfig, CircuitBreakerLayer, CircuitBreakerService, CircuitState,
    ErrorIsFailure, SharedCircuitBreaker, SlidingWindow,
};

const WAIT: Duration = Duration::from_secs(10);

type Svc<C = ErrorIsFailure> = Spawn<CircuitBreakerService<mock::Mock<&'static str, &'static str>, C>>;

/// Opens after 3 failures of 3; one trial in half-open.
fn breaker() -> SharedCircuitBreaker {
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(3))
        .minimum_number_of_calls(3)
        .wait_duration_in_open_state(WAIT)
        .permitted_number_of_calls_in_half_open_state(1)
        .slow_call_duration_threshold(Duration::from_secs(1))
        .build()
        .unwrap();
    SharedCircuitBreaker::new("mock", config)
}

fn spawn(breaker: &SharedCircuitBreaker) -> (Svc, Handle<&'static str, &'static str>) {
    mock::spawn_layer(CircuitBreakerLayer::new(breaker.clone()))
}

fn assert_ready<C>(service: &mut Svc<C>)
where
    CircuitBreakerService<mock::Mock<&'static str, &'static str>, C>: tower::Service<&'static str, Error = BoxError>,
{
    assert!(matches!(service.poll_ready(), Poll::Ready(Ok(()))), "ready");
}

/// Calls through the layer; the mock answers with an error.
async fn fail_once(service: &mut Svc, handle: &mut Handle<&'static str, &'static str>) {
    assert_ready(service);
    let call = service.call("q");
    let (_, respond) = handle.next_request().await.expect("reached the tool");
    respond.send_error(std::io::Error::other("upstream down"));
    assert!(call.await.is_err());
}

fn not_permitted(error: BoxError) -> CallNotPermitted {
    *error.downcast::<CallNotPermitted>().expect("a CallNotPermitted")
}

#[tokio::test(start_paused = true)]
async fn three_errors_open_then_exactly_one_probe_gets_through() {
    let breaker = breaker();
    let (mut service, mut handle) = spawn(&breaker);
    for _ in 0..3 {
        fail_once(&mut service, &mut handle).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);

    // Open: ready at once even though the tool is not, and the call fails without reaching it.
    handle.allow(0);
    assert_ready(&mut service);
    let e = not_permitted(service.call("q").await.unwrap_err());
    assert_eq!((e.state, e.retry_after), (CircuitState::Open, Some(WAIT)));
    assert!(matches!(handle.poll_request(), Poll::Pending), "the tool saw nothing");

    // The cool-down passes: one probe reaches the tool; a second caller is rejected meanwhile.
    advance(WAIT).await;
    handle.allow(1);
    assert_ready(&mut service);
    let probe = service.call("probe");
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(request, "probe");
    let (mut other, _other_handle) = spawn(&breaker);
    assert_ready(&mut other);
    let e = not_permitted(other.call("q").await.unwrap_err());
    assert_eq!((e.state, e.retry_after), (CircuitState::HalfOpen, None));

    respond.send_response("ok");
    assert_eq!(probe.await.unwrap(), "ok");
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_trial_releases_its_permit() {
    let breaker = breaker();
    let (mut service, mut handle) = spawn(&breaker);
    for _ in 0..3 {
        fail_once(&mut service, &mut handle).await;
    }
    advance(WAIT).await;
    assert_ready(&mut service);
    let probe = service.call("probe");
    let (_, respond) = handle.next_request().await.unwrap();
    drop(probe); // cancelled, e.g. by a timeout above
    drop(respond);
    assert_eq!(breaker.state(), CircuitState::HalfOpen);

    // The trial slot is free again.
    assert_ready(&mut service);
    let probe = service.call("probe 2");
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(request, "probe 2");
    respond.send_response("ok");
    probe.await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn permit_held_by_ready_service_is_released_when_dropped() {
    let breaker = breaker();
    let (mut service, mut handle) = spawn(&breaker);
    for _ in 0..3 {
        fail_once(&mut service, &mut handle).await;
    }
    advance(WAIT).await;
    // `poll_ready` takes the one trial permit; the tool is not ready, so the service waits holding it.
    handle.allow(0);
    assert!(service.poll_ready().is_pending());
    let (mut other, mut other_handle) = spawn(&breaker);
    assert_ready(&mut other);
    assert!(other.call("q").await.is_err(), "the trial is taken");
    drop(service);
    drop(handle);
    assert_ready(&mut other);
    let _probe = other.call("probe");
    let (request, _respond) = other_handle.next_request().await.unwrap();
    assert_eq!(request, "probe", "the freed trial went to the other caller");
    assert_eq!(breaker.metrics().not_permitted_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_are_measured_on_the_clock() {
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .slow_call_rate_threshold(100.0)
        .slow_call_duration_threshold(Duration::from_secs(1))
        .build()
        .unwrap();
    let breaker = SharedCircuitBreaker::new("slow", config);
    let (mut service, mut handle) = spawn(&breaker);
    for _ in 0..2 {
        assert_ready(&mut service);
        let call = service.call("q");
        let (_, respond) = handle.next_request().await.unwrap();
        advance(Duration::from_millis(1001)).await;
        respond.send_response("late but fine");
        assert!(call.await.is_ok());
    }
    let m = breaker.metrics();
    assert_eq!(m.state, CircuitState::Open);
    assert_eq!((m.slow_call_rate, m.failure_rate), (Some(100.0), Some(0.0)));
}

#[tokio::test(start_paused = true)]
async fn classifier_can_ignore_errors() {
    let breaker = breaker();
    // Permission denials (here: "denied") are not the tool's fault.
    let classify = |r: &Result<&'static str, BoxError>| match r {
        Ok(_) => CallOutcome::Success,
        Err(e) if e.to_string() == "denied" => CallOutcome::Ignored,
        Err(_) => CallOutcome::Failure,
    };
    let (mut service, mut handle) = mock::spawn_layer(CircuitBreakerLayer::new(breaker.clone()).classifier(classify));
    for _ in 0..10 {
        assert_ready(&mut service);
        let call = service.call("q");
        let (_, respond) = handle.next_request().await.unwrap();
        respond.send_error(BoxError::from("denied"));
        assert!(call.await.is_err());
    }
    let m = breaker.metrics();
    assert_eq!((m.state, m.buffered_calls), (CircuitState::Closed, 0));
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_breaker_but_not_the_permit() {
    let breaker = breaker();
    let (mut service, mut handle) = spawn(&breaker);
    for _ in 0..3 {
        fail_once(&mut service, &mut handle).await;
    }
    advance(WAIT).await;
    assert_ready(&mut service);
    let clone = service.get_ref().clone();
    drop(clone); // an unpolled clone holds no permit
    let probe = service.call("probe");
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response("ok");
    probe.await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
}
