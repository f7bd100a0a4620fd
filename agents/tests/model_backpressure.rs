//! A model shared by many callers keeps to the provider's limits on the client side, over real
//! HTTP against the fake provider enforcing them: callers wait their turn instead of drawing
//! 429s, rate-limit headers with nothing left hold every caller until their reset, and a token
//! limit counts the prompt and `max_tokens`.

#[path = "support/model.rs"]
mod support;

use std::time::{Duration, Instant};

use support::Wire;
use warden_agents::model::{ChatRequest, Message, Model, RetryPolicy};
use warden_fake_provider::{Answer, FakeProvider, Fault, Limits};
use warden_resilience::{RateLimit, RateLimiter};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// A whole OpenAI answer with these extra headers.
fn answer_with(headers: &[(&str, &str)]) -> Answer {
    Answer::fault(Fault::Http {
        status: 200,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        })
        .to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_through_one_model_stay_within_the_providers_limits() {
    let fake = FakeProvider::start().await;
    // 20 requests a second (a burst of 20), scaled down from a per-minute limit.
    fake.set_limits(Limits::none().requests_per_minute(20).window(Duration::from_secs(1)));
    // The client keeps a little under the provider's limit (95 %), so that clock skew between
    // the two never costs a 429.
    let limiter = RateLimiter::new(RateLimit::new(19, Duration::from_secs(1)));
    let model = Wire::OpenAi
        .model(&fake)
        .with_retry(RetryPolicy::none())
        .with_rate_limit(limiter, Duration::from_secs(30));
    let calls = (0..50).map(|_| {
        let model = model.clone();
        async move { model.chat(&hi()).await }
    });
    let answers = futures::future::join_all(calls).await;
    let failed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(failed.is_empty(), "every call answered: {failed:?}");
    assert_eq!(fake.request_count(), 50);
    assert_eq!(fake.rate_limited_count(), 0, "no 429: the callers waited their turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_limit_the_same_load_draws_429s() {
    let fake = FakeProvider::start().await;
    fake.set_limits(Limits::none().requests_per_minute(20).window(Duration::from_secs(1)));
    let model = Wire::OpenAi.model(&fake).with_retry(RetryPolicy::none());
    let calls = (0..50).map(|_| {
        let model = model.clone();
        async move { model.chat(&hi()).await }
    });
    let answers = futures::future::join_all(calls).await;
    let refused = answers.iter().filter(|a| a.is_err()).count();
    assert!(refused >= 25, "{refused} refused");
    assert_eq!(fake.rate_limited_count(), refused as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_with_nothing_left_holds_the_next_caller_until_its_reset() {
    let fake = FakeProvider::start().await;
    fake.push(answer_with(&[
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "300ms"),
    ]));
    let limiter = RateLimiter::new(RateLimit::new(1000, Duration::from_secs(1)));
    let model: Model = Wire::OpenAi
        .model(&fake)
        .with_rate_limit(limiter, Duration::from_secs(10));
    let first = model.chat(&hi()).await.unwrap();
    let status = first.rate_limits.expect("the headers were read");
    assert_eq!(status.exhausted_for(), Some(Duration::from_millis(300)));
    let started = Instant::now();
    model.chat(&hi()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "held until the reset: {:?}",
        started.elapsed()
    );
    assert_eq!(fake.rate_limited_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limit_counts_the_prompt_and_max_tokens() {
    let fake = FakeProvider::start().await;
    let tokens = RateLimiter::new(RateLimit::new(1000, Duration::from_secs(60)));
    let model = Wire::OpenAi
        .model(&fake)
        .with_retry(RetryPolicy::none())
        .with_token_rate_limit(tokens, Duration::ZERO);
    let mut big = hi();
    big.max_tokens = Some(600);
    model.chat(&big).await.unwrap();
    // 600 + the prompt are spent: another 600 does not fit, and is refused without a request.
    let e = model.chat(&big).await.unwrap_err();
    assert!(matches!(e, warden_agents::ModelError::Throttled { .. }), "{e:?}");
    assert_eq!(fake.request_count(), 1);
    let mut small = hi();
    small.max_tokens = Some(100);
    model.chat(&small).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_provider_reports_its_limits_in_both_formats() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_limits(Limits::none().requests_per_minute(5).tokens_per_minute(10_000));
        let answer = wire.model(&fake).chat(&hi()).await.unwrap();
        let status = answer.rate_limits.expect("headers sent");
        assert_eq!(status.requests_remaining, Some(4), "{wire:?}");
        assert!(status.tokens_remaining.is_some_and(|t| t < 10_000), "{wire:?}");
        assert!(status.requests_reset.is_some(), "{wire:?}");
    }
}

#[tokio::test]
async fn the_limits_come_from_the_model_config() {
    let fake = FakeProvider::start().await;
    let config = warden_agents::model::ModelConfig::from_toml_str(&format!(
        "provider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"{}\"\nrequests_per_minute = 1\ntokens_per_minute = 100000\nmax_concurrent_requests = 4\nrate_limit_wait_secs = 0\n[retry]\nmax_attempts = 1\n",
        fake.base_url_openai()
    ))
    .unwrap();
    assert_eq!(config.requests_per_minute, Some(1));
    let model = config.build_with_env(|_| None).unwrap();
    model.chat(&hi()).await.unwrap();
    let e = model.clone().chat(&hi()).await.unwrap_err();
    assert!(matches!(e, warden_agents::ModelError::Throttled { .. }), "{e:?}");
    assert_eq!(
        fake.request_count(),
        1,
        "the clone shares the limiter; nothing was sent"
    );
}
