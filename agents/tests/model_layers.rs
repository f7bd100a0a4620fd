//! A model behind the same resilience layers as a tool: a circuit breaker that stops calling a
//! failing provider (the fallback answers meanwhile), a rate limiter shared by every model on
//! one key (callers wait their turn, a 429 holds them all until its reset), and a concurrency
//! limit with a bounded queue. On a paused clock, with a scripted provider double.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use warden_agents::model::{
    ChatModel, ChatRequest, ChatResponse, ContentBlock, EventStream, Message, Model, ModelError, RateLimitStatus,
    RetryPolicy, StopReason, Usage,
};
use warden_resilience::circuit_breaker::{CircuitBreakerConfig, CircuitState, SharedCircuitBreaker, SlidingWindow};
use warden_resilience::{ConcurrencyLimiter, RateLimit, RateLimiter};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// What a [`Scripted`] provider does on one call.
#[derive(Clone, Copy, Debug)]
enum Step {
    Answer,
    Unavailable,
    BadRequest,
    RateLimited(Duration),
    /// An answer whose rate-limit headers say nothing is left until this reset.
    AnswerExhausted(Duration),
    Stall,
}

/// A provider that plays its script, then answers; it records when each call came.
#[derive(Debug)]
struct Scripted {
    name: &'static str,
    script: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<Instant>>,
}

impl Scripted {
    fn new(name: &'static str, script: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            name,
            script: Mutex::new(script.into_iter().collect()),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn always(name: &'static str, step: Step) -> Arc<Self> {
        Self::new(name, std::iter::repeat_n(step, 1000))
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    async fn answer(&self) -> Result<ChatResponse, ModelError> {
        self.calls.lock().unwrap().push(Instant::now());
        let step = self.script.lock().unwrap().pop_front().unwrap_or(Step::Answer);
        match step {
            Step::Answer | Step::AnswerExhausted(_) => Ok(ChatResponse {
                content: vec![ContentBlock::text(self.name)],
                stop_reason: StopReason::EndTurn,
                usage: Usage::default(),
                model: self.name.into(),
                rate_limits: match step {
                    Step::AnswerExhausted(reset) => {
                        let mut status = RateLimitStatus::default();
                        status.requests_remaining = Some(0);
                        status.requests_reset = Some(reset);
                        Some(status)
                    }
                    _ => None,
                },
            }),
            Step::Unavailable => Err(ModelError::Server {
                status: 503,
                message: String::new(),
                retry_after: None,
                should_retry: None,
            }),
            Step::BadRequest => Err(ModelError::BadRequest {
                status: 400,
                message: "bad".into(),
                should_retry: None,
            }),
            Step::RateLimited(wait) => Err(ModelError::RateLimited {
                message: String::new(),
                retry_after: Some(wait),
                should_retry: None,
            }),
            Step::Stall => std::future::pending().await,
        }
    }
}

impl ChatModel for Scripted {
    fn model_name(&self) -> &str {
        self.name
    }

    fn provider_name(&self) -> &'static str {
        "scripted"
    }

    fn chat<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(self.answer())
    }

    fn stream<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        Box::pin(async {
            self.answer().await?;
            Err(ModelError::permanent("the double does not stream"))
        })
    }
}

fn model(provider: &Arc<Scripted>) -> Model {
    Model::from_arc(provider.clone()).with_retry(RetryPolicy::none())
}

/// Opens when 2 of the last 2 calls failed; stays open 30 s.
fn breaker() -> SharedCircuitBreaker {
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .wait_duration_in_open_state(Duration::from_secs(30))
        .build()
        .unwrap();
    SharedCircuitBreaker::new("primary", config)
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_stops_calling_the_provider_and_the_fallback_answers() {
    let primary = Scripted::always("primary", Step::Unavailable);
    let fallback = Scripted::new("fallback", []);
    let breaker = breaker();
    let model = model(&primary)
        .with_circuit_breaker(breaker.clone())
        .with_fallback(model(&fallback));
    for _ in 0..5 {
        assert_eq!(model.chat(&hi()).await.unwrap().text(), "fallback");
    }
    assert_eq!(primary.count(), 2, "no request once the breaker opened");
    assert_eq!(fallback.count(), 5);
    assert_eq!(breaker.state(), CircuitState::Open);

    // Without a fallback the caller gets the typed rejection, with when to come back.
    let alone = self::model(&primary).with_circuit_breaker(breaker);
    let e = alone.chat(&hi()).await.unwrap_err();
    assert!(
        matches!(e, ModelError::CircuitOpen { retry_after: Some(d) } if d <= Duration::from_secs(30)),
        "{e:?}"
    );
    assert!(e.is_transient() && e.warrants_fallback());
    assert_eq!(primary.count(), 2);

    // After the wait, a trial call goes through; the provider is back, the breaker closes.
    tokio::time::advance(Duration::from_secs(31)).await;
    let back = Scripted::new("primary", []);
    let breaker = breaker_opened_by(&back).await;
    tokio::time::advance(Duration::from_secs(31)).await;
    let healed = self::model(&back).with_circuit_breaker(breaker.clone());
    assert_eq!(healed.chat(&hi()).await.unwrap().text(), "primary");
}

/// A breaker opened by two failures of `provider` (its script then answers).
async fn breaker_opened_by(provider: &Arc<Scripted>) -> SharedCircuitBreaker {
    provider
        .script
        .lock()
        .unwrap()
        .extend([Step::Unavailable, Step::Unavailable]);
    let breaker = breaker();
    let model = model(provider).with_circuit_breaker(breaker.clone());
    for _ in 0..2 {
        model.chat(&hi()).await.unwrap_err();
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    breaker
}

#[tokio::test(start_paused = true)]
async fn errors_in_the_request_do_not_open_the_breaker_and_retries_count_once() {
    let provider = Scripted::always("primary", Step::BadRequest);
    let breaker = breaker();
    let model = model(&provider).with_circuit_breaker(breaker.clone());
    for _ in 0..4 {
        assert!(matches!(
            model.chat(&hi()).await.unwrap_err(),
            ModelError::BadRequest { .. }
        ));
    }
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "a bad request says nothing of the provider's health"
    );

    // Two 503s then an answer, within one call's retries: one success for the breaker.
    let flaky = Scripted::new("flaky", [Step::Unavailable, Step::Unavailable]);
    let breaker = self::breaker();
    let model = Model::from_arc(flaky.clone())
        .with_retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(1)))
        .with_circuit_breaker(breaker.clone());
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "flaky");
    assert_eq!(flaky.count(), 3);
    let metrics = breaker.metrics();
    assert_eq!((metrics.buffered_calls, metrics.failed_calls), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn one_rate_limiter_paces_every_model_on_the_key_in_the_order_they_came() {
    let limiter = RateLimiter::new(RateLimit::new(2, Duration::from_secs(1)));
    let a = Scripted::new("a", []);
    let b = Scripted::new("b", []);
    let start = Instant::now();
    let models = [
        model(&a).with_rate_limit(limiter.clone(), Duration::from_secs(10)),
        model(&b).with_rate_limit(limiter.clone(), Duration::from_secs(10)),
    ];
    let calls = (0..6).map(|i| {
        let model = models[i % 2].clone();
        async move { model.chat(&hi()).await.unwrap() }
    });
    futures::future::join_all(calls).await;
    let mut at: Vec<Duration> = a.calls().into_iter().chain(b.calls()).map(|t| t - start).collect();
    at.sort();
    let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 0, 500, 1000, 1500, 2000], "a burst of 2, then one every 500 ms");
}

#[tokio::test(start_paused = true)]
async fn past_its_wait_a_call_is_throttled_without_a_request() {
    let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(60)));
    let provider = Scripted::new("p", []);
    let model = model(&provider).with_rate_limit(limiter, Duration::from_secs(1));
    model.chat(&hi()).await.unwrap();
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(
        matches!(e, ModelError::Throttled { retry_after } if retry_after == Duration::from_secs(60)),
        "{e:?}"
    );
    assert_eq!(provider.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_429_that_comes_anyway_holds_every_caller_until_its_reset() {
    let limiter = RateLimiter::new(RateLimit::new(100, Duration::from_secs(1)));
    let first = Scripted::new("first", [Step::RateLimited(Duration::from_secs(2))]);
    let other = Scripted::new("other", []);
    let start = Instant::now();
    let retrying = model(&first)
        .with_retry(RetryPolicy::new(2).retry_after_jitter(0.0))
        .with_rate_limit(limiter.clone(), Duration::from_secs(10));
    let bystander = model(&other).with_rate_limit(limiter, Duration::from_secs(10));
    let request = hi();
    let (answer, later) = tokio::join!(retrying.chat(&request), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bystander.chat(&hi()).await
    });
    assert_eq!(answer.unwrap().text(), "first");
    assert_eq!(later.unwrap().text(), "other");
    let second_try = first.calls()[1] - start;
    let bystanders = other.calls()[0] - start;
    assert!(second_try >= Duration::from_secs(2), "{second_try:?}");
    assert!(
        bystanders >= Duration::from_secs(2),
        "another caller on the key waited for the reset too: {bystanders:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_concurrency_limit_refuses_at_once_and_a_slot_is_held_across_retries() {
    let limiter = ConcurrencyLimiter::new(1, 0);
    let stalled = Scripted::new("stalled", [Step::Stall]);
    let model = model(&stalled).with_concurrency_limit(limiter.clone());
    let running = tokio::spawn({
        let model = model.clone();
        async move { model.chat(&hi()).await }
    });
    while limiter.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::ConcurrencyLimited {
                in_flight: 1,
                queued: 0
            }
        ),
        "{e:?}"
    );
    assert_eq!(stalled.count(), 1);
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    assert_eq!(limiter.in_flight(), 0, "a cancelled call frees its slot");
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "stalled");
}

#[tokio::test(start_paused = true)]
async fn an_orchestrators_own_calls_go_ahead_of_its_workers_on_a_shared_limiter() {
    use warden_resilience::Priority;

    let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(1)));
    let workers = Scripted::new("worker", []);
    let planner = Scripted::new("planner", []);
    let worker_model = model(&workers).with_rate_limit(limiter.clone(), Duration::from_secs(60));
    let planner_model = model(&planner)
        .with_rate_limit(limiter, Duration::from_secs(60))
        .with_priority(Priority::High);
    let start = Instant::now();
    // The first worker call takes the burst; three more queue behind it.
    worker_model.chat(&hi()).await.unwrap();
    let mut queued = Vec::new();
    for _ in 0..3 {
        let model = worker_model.clone();
        queued.push(tokio::spawn(async move { model.chat(&hi()).await }));
        tokio::task::yield_now().await;
    }
    planner_model.chat(&hi()).await.unwrap();
    assert_eq!(
        planner.calls()[0] - start,
        Duration::from_secs(1),
        "served first, at the next token"
    );
    for call in queued {
        call.await.unwrap().unwrap();
    }
    let at: Vec<u64> = workers.calls().iter().map(|t| (*t - start).as_secs()).collect();
    assert_eq!(
        at,
        [0, 2, 3, 4],
        "the workers in the order they came, after the planner"
    );
}

#[tokio::test(start_paused = true)]
async fn headers_saying_nothing_is_left_hold_every_caller_until_the_reset_not_a_429_storm() {
    let limiter = RateLimiter::new(RateLimit::new(1000, Duration::from_secs(60)));
    let provider = Scripted::new("p", [Step::AnswerExhausted(Duration::from_secs(2))]);
    let model = model(&provider).with_rate_limit(limiter, Duration::from_secs(60));
    let start = Instant::now();
    model.chat(&hi()).await.unwrap();
    let calls = (0..10).map(|_| {
        let model = model.clone();
        async move { model.chat(&hi()).await }
    });
    for answer in futures::future::join_all(calls).await {
        answer.unwrap();
    }
    let at: Vec<Duration> = provider.calls().iter().map(|t| *t - start).collect();
    assert_eq!(at[0], Duration::ZERO);
    assert!(
        at[1..].iter().all(|t| *t >= Duration::from_secs(2)),
        "nothing sent before the reset: {at:?}"
    );
}
