//! The retry layer's limits: a huge `retry_after` never overflows or is
//! waited out past the cap, and a timed-out call is retried only when it is
//! idempotent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;
use warden_tools::{DynTool, RetryPolicy, ToolCall, ToolError, ToolStack, into_dyn, tool_fn};

#[derive(Deserialize, JsonSchema)]
struct Empty {}

/// A tool that fails with `error` and counts its attempts.
fn failing_with(error: ToolError, attempts: Arc<AtomicUsize>) -> Arc<dyn DynTool> {
    into_dyn(tool_fn("flaky", "Fails.", move |_: Empty| {
        attempts.fetch_add(1, Ordering::SeqCst);
        let error = error.clone();
        async move { Err::<(), _>(error) }
    }))
}

async fn run(stack: ToolStack, tool: Arc<dyn DynTool>) -> ToolError {
    let built = stack.build(tool, None);
    built
        .service
        .oneshot(ToolCall::new("flaky", json!({})))
        .await
        .unwrap_err()
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_is_returned_at_once_without_overflow() {
    for retry_after in [Duration::from_secs(u64::MAX), Duration::MAX, Duration::from_secs(3600)] {
        let attempts = Arc::new(AtomicUsize::new(0));
        let error = ToolError::RateLimited {
            retry_after: Some(retry_after),
        };
        let policy = RetryPolicy::new(5).max_elapsed(Duration::MAX);
        let started = Instant::now();
        let err = run(
            ToolStack::builder().retry(policy).build(),
            failing_with(error, attempts.clone()),
        )
        .await;
        assert!(matches!(err, ToolError::RateLimited { retry_after: Some(d) } if d == retry_after));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_the_configured_cap() {
    let error = ToolError::RateLimited {
        retry_after: Some(Duration::from_secs(120)),
    };
    // Above the default cap (60 s): not waited out.
    let attempts = Arc::new(AtomicUsize::new(0));
    let policy = RetryPolicy::new(2).max_elapsed(Duration::from_secs(600));
    run(
        ToolStack::builder().retry(policy).build(),
        failing_with(error.clone(), attempts.clone()),
    )
    .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    // Within a raised cap: waited out, then retried.
    let attempts = Arc::new(AtomicUsize::new(0));
    let policy = policy.max_retry_after(Duration::from_secs(300));
    let started = Instant::now();
    run(
        ToolStack::builder().retry(policy).build(),
        failing_with(error, attempts.clone()),
    )
    .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn backoff_near_duration_max_does_not_panic() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let policy = RetryPolicy::new(3)
        .backoff(Duration::MAX, Duration::MAX)
        .multiplier(f64::MAX);
    let err = run(
        ToolStack::builder().retry(policy).build(),
        failing_with(ToolError::retryable("503"), attempts.clone()),
    )
    .await;
    assert!(err.is_retryable());
    // The wait passes the 30 s deadline: no retry.
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

fn hanging(attempts: Arc<AtomicUsize>, idempotent: bool) -> Arc<dyn DynTool> {
    let tool = tool_fn("flaky", "Hangs.", move |_: Empty| {
        attempts.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<(), ToolError>>()
    });
    into_dyn(if idempotent { tool.idempotent() } else { tool })
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_call_is_retried_only_when_idempotent() {
    let stack = ToolStack::builder()
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(10), Duration::from_millis(10)))
        .timeout(Duration::from_secs(1))
        .build();
    // It may have acted before it timed out: not repeated.
    let attempts = Arc::new(AtomicUsize::new(0));
    let err = run(stack.clone(), hanging(attempts.clone(), false)).await;
    assert!(err.is_timeout());
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    let attempts = Arc::new(AtomicUsize::new(0));
    let err = run(stack, hanging(attempts.clone(), true)).await;
    assert!(err.is_timeout());
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}
