//! The default order of a ToolStack, pinned by what each layer sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tower::{ServiceExt, service_fn};
use warden_tools::circuit_breaker::{CircuitBreakerConfig, CircuitState};
use warden_tools::{Caller, LayerKind, RetryPolicy, ToolCall, ToolError, ToolService, ToolStack, into_dyn, tool_fn};

#[derive(Deserialize, JsonSchema)]
struct Empty {}

fn failing(count: Arc<AtomicUsize>) -> Arc<dyn warden_tools::DynTool> {
    into_dyn(
        tool_fn("failing", "Always fails, retryably.", move |_: Empty| {
            count.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(ToolError::retryable("503")) }
        })
        .permission("p"),
    )
}

fn allowed() -> ToolCall {
    ToolCall::new("failing", json!({})).caller(Caller::new("t").with("p"))
}

/// A middleware that counts the calls it sees.
#[derive(Clone)]
struct CountLayer(Arc<AtomicUsize>);

impl tower::Layer<ToolService> for CountLayer {
    type Service = ToolService;
    fn layer(&self, inner: ToolService) -> ToolService {
        let seen = self.0.clone();
        ToolService::new(service_fn(move |call: ToolCall| {
            seen.fetch_add(1, Ordering::SeqCst);
            inner.clone().oneshot(call)
        }))
    }
}

#[test]
fn recommended_order_is_pinned() {
    let stack = ToolStack::recommended()
        .layer_named("count", CountLayer(Arc::default()))
        .build();
    assert_eq!(
        stack.layers(),
        [
            LayerKind::Permission,
            LayerKind::Approval,
            LayerKind::CircuitBreaker,
            LayerKind::ConcurrencyLimit,
            LayerKind::Retry,
            LayerKind::Timeout,
            LayerKind::Middleware("count".into()),
        ]
    );
    assert_eq!(
        stack.to_string(),
        "permission → approval → circuit_breaker → concurrency_limit → retry → timeout → count → tool"
    );
}

#[tokio::test(start_paused = true)]
async fn recommended_order_behaves_as_documented() {
    let tool_calls = Arc::new(AtomicUsize::new(0));
    let middleware_calls = Arc::new(AtomicUsize::new(0));
    let breaker = CircuitBreakerConfig::builder()
        .minimum_number_of_calls(2)
        .wait_duration_in_open_state(Duration::from_secs(60))
        .build()
        .unwrap();
    let stack = ToolStack::builder()
        .permission()
        .approval()
        .circuit_breaker(breaker)
        .concurrency_limit(4, 0)
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(10), Duration::from_millis(10)))
        .timeout(Duration::from_secs(1))
        .layer(CountLayer(middleware_calls.clone()))
        .build();
    let built = stack.build(failing(tool_calls.clone()), None);
    let breaker = built.breaker.unwrap();
    let service = built.service;

    // Denied calls reach neither the breaker nor anything below it.
    for _ in 0..5 {
        let err = service
            .clone()
            .oneshot(ToolCall::new("failing", json!({})))
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::PermissionDenied { .. }));
    }
    assert_eq!(breaker.metrics().buffered_calls, 0);
    assert_eq!(tool_calls.load(Ordering::SeqCst), 0);

    // Retry is inside the breaker: 3 attempts are one failed call; the
    // middleware is inside retry and timeout: it sees each attempt.
    let err = service.clone().oneshot(allowed()).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(tool_calls.load(Ordering::SeqCst), 3);
    assert_eq!(middleware_calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        (breaker.metrics().buffered_calls, breaker.metrics().failed_calls),
        (1, 1)
    );

    service.clone().oneshot(allowed()).await.unwrap_err();
    assert_eq!(breaker.state(), CircuitState::Open);

    // Open: rejected at once, not retried, the tool is not called.
    let err = service.clone().oneshot(allowed()).await.unwrap_err();
    assert!(matches!(err, ToolError::CircuitOpen { retry_after: Some(_) }));
    assert_eq!(tool_calls.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn overload_and_invalid_arguments_do_not_count_against_the_breaker() {
    let stack = ToolStack::builder()
        .circuit_breaker(
            CircuitBreakerConfig::builder()
                .minimum_number_of_calls(1)
                .build()
                .unwrap(),
        )
        .concurrency_limit(1, 0)
        .build();
    let slow = into_dyn(tool_fn("slow", "Sleeps.", |_: Empty| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, ToolError>(())
    }));
    let built = stack.build(slow, None);
    let breaker = built.breaker.unwrap();
    let running = tokio::spawn(built.service.clone().oneshot(ToolCall::new("slow", json!({}))));
    tokio::task::yield_now().await;
    let err = built
        .service
        .clone()
        .oneshot(ToolCall::new("slow", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Overloaded));
    let err = built.service.clone().oneshot(ToolCall::new("slow", json!(null))).await;
    // The slot is taken: still overloaded (arguments are validated by the tool, inside the limit).
    assert!(matches!(err, Err(ToolError::Overloaded)));
    running.await.unwrap().unwrap();
    let err = built
        .service
        .clone()
        .oneshot(ToolCall::new("slow", json!(null)))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }));
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(
        (breaker.metrics().buffered_calls, breaker.metrics().failed_calls),
        (1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn retry_stops_at_the_total_deadline_under_a_paused_clock() {
    let count = Arc::new(AtomicUsize::new(0));
    let stack = ToolStack::builder()
        .retry(
            RetryPolicy::new(100)
                .backoff(Duration::from_secs(1), Duration::from_secs(60))
                .jitter(false)
                .max_elapsed(Duration::from_secs(10)),
        )
        .build();
    let built = stack.build(failing(count.clone()), None);
    let started = tokio::time::Instant::now();
    built.service.oneshot(allowed()).await.unwrap_err();
    // Waits 1 + 2 + 4 = 7 s; the next (8 s) would end past 10 s.
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert_eq!(started.elapsed(), Duration::from_secs(7));
}
