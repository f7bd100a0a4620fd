//! How long a model call may take and how often it may retry: a total deadline across attempts,
//! waits and the fallback; jitter above the provider's `Retry-After`, never below; a retry
//! budget shared across calls and with the fallback; and a `Retry-After` too large for a
//! `Duration`, which must not panic. On a paused clock, with test doubles for the provider,
//! except for the `Retry-After` headers, which go over real HTTP.

#[path = "support/model.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use support::Wire;
use tokio::time::Instant;
use warden_agents::model::{
    ChatModel, ChatRequest, ChatResponse, Deadline, EventStream, Message, Model, ModelError, RetryBudget, RetryPolicy,
};
use warden_fake_provider::{FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// What a [`Double`] does on every call.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Fails at once with a 503.
    Unavailable,
    /// Fails at once with a 429 asking to wait this long.
    RateLimited(Duration),
    /// Never answers.
    Stall,
}

/// A provider that behaves the same on every call and records when each call came.
#[derive(Debug)]
struct Double {
    behaviour: Behaviour,
    calls: Mutex<Vec<Instant>>,
}

impl Double {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    async fn answer<T>(&self) -> Result<T, ModelError> {
        self.calls.lock().unwrap().push(Instant::now());
        match self.behaviour {
            Behaviour::Unavailable => Err(ModelError::Server {
                message: String::new(),
                status: 503,
                retry_after: None,
                should_retry: None,
            }),
            Behaviour::RateLimited(wait) => Err(ModelError::RateLimited {
                message: String::new(),
                retry_after: Some(wait),
                should_retry: None,
            }),
            Behaviour::Stall => std::future::pending().await,
        }
    }
}

impl ChatModel for Double {
    fn model_name(&self) -> &str {
        "double"
    }

    fn provider_name(&self) -> &'static str {
        "double"
    }

    fn chat<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(self.answer())
    }

    fn stream<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        Box::pin(self.answer())
    }
}

fn model(double: &Arc<Double>, retry: RetryPolicy) -> Model {
    Model::from_arc(double.clone()).with_retry(retry)
}

/// Many retries with backoffs of 1 s to 8 s, bounded only by the model's call timeout.
fn persistent() -> RetryPolicy {
    RetryPolicy::new(1001)
        .backoff(Duration::from_secs(1), Duration::from_secs(8))
        .max_elapsed(Duration::MAX)
}

/// Longer than any call below may take (on the paused clock): a call still running then fails
/// the test instead of hanging it.
const TEST_BOUND: Duration = Duration::from_secs(3600);

async fn within_bound<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, call)
        .await
        .expect("the call ends by its own deadline")
}

fn is_call_deadline(e: &ModelError, limit: Duration) -> bool {
    matches!(e, ModelError::DeadlineExceeded { deadline: Deadline::Call, limit: l } if *l == limit)
}

#[tokio::test(start_paused = true)]
async fn a_call_ends_at_its_total_deadline_across_retries_and_the_fallback() {
    let primary = Double::new(Behaviour::Unavailable);
    let fallback = Double::new(Behaviour::Stall);
    let total = Duration::from_secs(60);
    let model = model(&primary, persistent())
        .with_call_timeout(total)
        .with_fallback(model(&fallback, RetryPolicy::default()));
    let started = Instant::now();
    let e = within_bound(model.chat(&hi())).await.unwrap_err();
    assert!(is_call_deadline(&e, total), "{e:?}");
    assert_eq!(started.elapsed(), total, "ends at the deadline, not after");
    assert!(
        primary.count() < 60,
        "retries stop before the deadline: {}",
        primary.count()
    );
    assert_eq!(fallback.count(), 1, "the fallback runs within the same deadline");
    assert!(!e.warrants_fallback());

    // The same for opening a stream.
    let started = Instant::now();
    let e = within_bound(model.stream(&hi())).await.err().expect("fails");
    assert!(is_call_deadline(&e, total), "{e:?}");
    assert_eq!(started.elapsed(), total);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_never_answers_ends_at_the_deadline() {
    let stalled = Double::new(Behaviour::Stall);
    let total = Duration::from_secs(30);
    let model = model(&stalled, persistent()).with_call_timeout(total);
    let started = Instant::now();
    let e = within_bound(model.chat(&hi())).await.unwrap_err();
    assert!(is_call_deadline(&e, total), "{e:?}");
    assert_eq!(started.elapsed(), total);
    assert_eq!(stalled.count(), 1, "no retry once the time is up");
}

#[tokio::test(start_paused = true)]
async fn the_default_deadline_bounds_a_call() {
    let stalled = Double::new(Behaviour::Stall);
    let model = model(&stalled, RetryPolicy::default());
    let started = Instant::now();
    let e = within_bound(model.chat(&hi())).await.unwrap_err();
    assert!(is_call_deadline(&e, Model::DEFAULT_CALL_TIMEOUT), "{e:?}");
    assert_eq!(started.elapsed(), Model::DEFAULT_CALL_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_retry_whose_wait_would_end_past_the_deadline_is_not_made() {
    let limited = Double::new(Behaviour::RateLimited(Duration::from_secs(20)));
    let policy = persistent().retry_after_jitter(0.0);
    let started = Instant::now();
    let model = model(&limited, policy).with_call_timeout(Duration::from_secs(30));
    let e = within_bound(model.chat(&hi())).await.unwrap_err();
    assert!(
        matches!(e, ModelError::RateLimited { .. }),
        "the provider's answer, at once: {e:?}"
    );
    assert_eq!(limited.count(), 2, "at 0 s and 20 s; a third at 40 s would be too late");
    assert_eq!(started.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn retry_after_waits_get_jitter_above_the_providers_floor() {
    let floor = Duration::from_secs(2);
    let limited = Double::new(Behaviour::RateLimited(floor));
    let policy = RetryPolicy::new(31);
    within_bound(model(&limited, policy).chat(&hi())).await.unwrap_err();
    let calls = limited.calls();
    assert_eq!(calls.len(), 31);
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    for gap in &gaps {
        assert!(*gap >= floor, "never before the provider's wait: {gap:?}");
        assert!(
            *gap <= floor.mul_f64(1.2) + Duration::from_millis(2),
            "at most 20 % above: {gap:?}"
        );
    }
    assert!(gaps.iter().any(|g| *g != gaps[0]), "the waits differ: {gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_budget_bounds_retries_across_calls_and_the_fallback() {
    let primary = Double::new(Behaviour::Unavailable);
    let fallback = Double::new(Behaviour::Unavailable);
    let policy = RetryPolicy::new(4);
    let budget = RetryBudget::new(10, 0.1);
    let model = model(&primary, policy)
        .with_fallback(model(&fallback, policy))
        .with_retry_budget(budget.clone());
    for _ in 0..10 {
        within_bound(model.chat(&hi())).await.unwrap_err();
    }
    // Call 1: 4 attempts (10 -> 6 tokens), then the fallback once (5: no retry). Calls 2-10:
    // one attempt each on both. Without the budget: 10 x (4 + 4) = 80 attempts.
    assert_eq!(primary.count(), 4 + 9);
    assert_eq!(fallback.count(), 10);
    assert_eq!(budget.tokens(), 0.0);
    assert!(!budget.allows_retry());

    // A clone of the budget given to another model is the same budget.
    let other = Double::new(Behaviour::Unavailable);
    within_bound(model_with_budget(&other, policy, &budget).chat(&hi()))
        .await
        .unwrap_err();
    assert_eq!(other.count(), 1, "no retry: the shared budget is spent");
}

fn model_with_budget(double: &Arc<Double>, policy: RetryPolicy, budget: &RetryBudget) -> Model {
    model(double, policy).with_retry_budget(budget.clone())
}

#[tokio::test]
async fn a_retry_after_too_large_for_a_duration_is_not_a_panic() {
    for wire in Wire::BOTH {
        for (name, value) in [
            ("retry-after", "1e300"),
            ("retry-after-ms", "1e300"),
            ("retry-after", "18446744073709551615"),
        ] {
            let fake = FakeProvider::start().await;
            fake.push(Fault::Http {
                status: 429,
                headers: vec![(name.into(), value.into())],
                body: "{}".into(),
            });
            let e = wire.model(&fake).chat(&hi()).await.unwrap_err();
            assert!(
                matches!(e, ModelError::RateLimited { retry_after: Some(d), .. } if d == Duration::MAX),
                "{wire:?} {name}: {value}: {e:?}"
            );
            assert_eq!(
                fake.request_count(),
                1,
                "{wire:?} {name}: longer than max_retry_after: not retried"
            );
        }
    }
}
