//! The breaker in an executor, against a real HTTP server: it opens on
//! failures, escalates, rejects without reaching the server, and recovers.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use serde_json::json;
use server::{Mode, TestServer};
use tokio::sync::mpsc;
use warden_supervisor::{Escalation, Strategy, Supervisor};
use warden_tools::circuit_breaker::{CircuitBreakerConfig, CircuitOpened, CircuitState, SlidingWindow};
use warden_tools::{HttpRequestTool, PermissionSet, RetryPolicy, ToolCall, ToolError, ToolExecutor, ToolStack};

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_escalates_rejects_and_recovers() {
    let server = TestServer::start().await;
    server.set(Mode::Fail);
    let http = server
        .allowing(HttpRequestTool::builder())
        .permissions(PermissionSet::new())
        .build()
        .unwrap();
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(4))
        .minimum_number_of_calls(4)
        .failure_rate_threshold(50.0)
        .wait_duration_in_open_state(Duration::from_millis(200))
        .permitted_number_of_calls_in_half_open_state(1)
        .build()
        .unwrap();
    let (transition_tx, mut transitions) = mpsc::unbounded_channel();
    let stack = ToolStack::builder()
        .permission()
        .circuit_breaker(config)
        .retry(RetryPolicy::new(1))
        .timeout(Duration::from_secs(5))
        .on_breaker_transition(move |t| {
            let _ = transition_tx.send((t.breaker.to_string(), t.from, t.to));
        })
        .build();
    let executor = ToolExecutor::new(http, stack);
    let client = executor.client();
    let (escalation_tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .escalation_handler(escalation_tx)
        .child(executor.child_spec("http"))
        .spawn()
        .await
        .unwrap();
    let call = || ToolCall::new("http_request", json!({"url": server.url("/flaky")}));

    for _ in 0..4 {
        let err = client.call(call(), DEADLINE).await.unwrap_err();
        assert!(matches!(err, ToolError::Failed { retryable: true, .. }), "{err:?}");
    }
    let opened = transitions.recv().await.unwrap();
    assert_eq!(
        opened,
        ("http_request".into(), CircuitState::Closed, CircuitState::Open)
    );

    // The opening reached the root as a typed escalation.
    let escalation = escalations.recv().await.unwrap();
    let concern = escalation.concern::<CircuitOpened>().expect("a CircuitOpened");
    assert_eq!(&*concern.breaker, "http_request");
    assert_eq!(concern.failure_rate, Some(100.0));
    assert!(
        escalation.origin().to_string().ends_with("http"),
        "{}",
        escalation.origin()
    );

    // While open: rejected at once, the server never sees it.
    let err = client.call(call(), DEADLINE).await.unwrap_err();
    let ToolError::CircuitOpen {
        retry_after: Some(retry_after),
    } = err
    else {
        panic!("expected CircuitOpen, got {err:?}")
    };
    assert!(retry_after <= Duration::from_millis(200));
    assert_eq!(server.hits(), 4);

    // The service recovers; after the open wait one trial call closes the breaker.
    server.set(Mode::Ok);
    tokio::time::sleep(retry_after).await; // the open wait itself, not synchronisation
    let ok = client.call(call(), DEADLINE).await.unwrap();
    assert_eq!(ok["status"], 200);
    assert_eq!(transitions.recv().await.unwrap().2, CircuitState::HalfOpen);
    assert_eq!(transitions.recv().await.unwrap().2, CircuitState::Closed);
    assert_eq!(server.hits(), 5);
    root.stop().await;
}
