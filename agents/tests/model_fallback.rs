//! The fallback model, over real HTTP: tried after the primary's retries are used up on a
//! provider failure, a spent quota or an answer that is not the provider's (a proxy's HTML page),
//! never for a bad request; for whole answers and streams.
//! The primary speaks the OpenAI format and the fallback the Anthropic one.

#[path = "support/model.rs"]
mod support;

use serde_json::json;
use support::{Wire, fast_retry};
use warden_agents::model::{self, ChatRequest, ContentBlock, Message, Model, ModelError, Role};
use warden_fake_provider::{Answer, FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

struct Pair {
    primary: FakeProvider,
    fallback: FakeProvider,
    model: Model,
}

/// A primary (OpenAI format, 2 fast retries) with a fallback (Anthropic format, 1 fast retry)
/// named `fallback-model`.
async fn pair() -> Pair {
    let primary = FakeProvider::start().await;
    let fallback = FakeProvider::start().await;
    let backup = Wire::Anthropic.model(&fallback).with_retry(fast_retry(1));
    let model = Wire::OpenAi.model(&primary).with_fallback(backup);
    fallback.set_default_reply(Answer::text("from the fallback"));
    Pair {
        primary,
        fallback,
        model,
    }
}

#[tokio::test]
async fn the_fallback_answers_once_the_retries_are_used_up() {
    let p = pair().await;
    p.primary.set_default_reply(Fault::Status(503));
    let answer = p.model.chat(&hi()).await.unwrap();
    assert_eq!(answer.text(), "from the fallback");
    assert_eq!(answer.model, support::MODEL, "the fallback names itself");
    assert_eq!(p.primary.request_count(), 3, "one attempt and two retries first");
    let sent = p.fallback.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/messages", "in the fallback's own format");
}

#[tokio::test]
async fn a_spent_quota_goes_to_the_fallback_at_once() {
    let p = pair().await;
    p.primary.push(Fault::QuotaExceeded);
    assert_eq!(p.model.chat(&hi()).await.unwrap().text(), "from the fallback");
    assert_eq!(p.primary.request_count(), 1);
}

#[tokio::test]
async fn a_wait_longer_than_the_cap_goes_to_the_fallback_at_once() {
    let p = pair().await;
    p.primary.push(Fault::RateLimited {
        retry_after: Some("3600".into()),
        retry_after_ms: None,
    });
    assert_eq!(p.model.chat(&hi()).await.unwrap().text(), "from the fallback");
    assert_eq!(p.primary.request_count(), 1);
}

#[tokio::test]
async fn x_should_retry_false_forbids_the_retry_not_the_fallback() {
    let p = pair().await;
    p.primary.push(Fault::Http {
        status: 503,
        headers: vec![("x-should-retry".into(), "false".into())],
        body: "{}".into(),
    });
    assert_eq!(p.model.chat(&hi()).await.unwrap().text(), "from the fallback");
    assert_eq!(p.primary.request_count(), 1);
}

#[tokio::test]
async fn a_bad_request_or_a_bad_key_does_not_fall_back() {
    let p = pair().await;
    p.primary.push(Fault::Status(400));
    let e = p.model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::BadRequest { status: 400, .. }), "{e:?}");
    p.primary.push(Fault::Status(401));
    let e = p.model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Authentication { status: 401, .. }), "{e:?}");
    assert_eq!(p.fallback.request_count(), 0);
}

#[tokio::test]
async fn a_200_with_garbage_goes_to_the_fallback_without_retrying() {
    let p = pair().await;
    let html = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>";
    p.primary.push(Fault::Http {
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: html.into(),
    });
    p.primary.push(Fault::MalformedJson);
    assert_eq!(p.model.chat(&hi()).await.unwrap().text(), "from the fallback");
    assert_eq!(p.model.chat(&hi()).await.unwrap().text(), "from the fallback");
    assert_eq!(
        p.primary.request_count(),
        2,
        "garbage is not retried on the same provider"
    );
    assert_eq!(p.fallback.request_count(), 2);
}

#[tokio::test]
async fn when_both_fail_the_fallbacks_error_is_returned() {
    let p = pair().await;
    p.primary.set_default_reply(Fault::Status(500));
    p.fallback.set_default_reply(Fault::Status(529));
    let e = p.model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Overloaded { .. }), "{e:?}");
    assert_eq!(p.primary.request_count(), 3);
    assert_eq!(p.fallback.request_count(), 2, "the fallback's own retry policy");
}

#[tokio::test]
async fn a_stream_falls_back_when_it_cannot_open() {
    let p = pair().await;
    p.primary.set_default_reply(Fault::Status(529));
    let stream = p.model.stream(&hi()).await.unwrap();
    let answer = model::collect(stream, "m").await.unwrap();
    assert_eq!(answer.text(), "from the fallback");
    assert_eq!(p.primary.request_count(), 3);
    assert!(p.fallback.requests()[0].is_stream());
}

#[tokio::test]
async fn the_fallback_gets_the_repaired_history() {
    let p = pair().await;
    p.primary.push(Fault::QuotaExceeded);
    let request = ChatRequest::new(vec![
        Message::user("Weather?"),
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                id: "call_1".into(),
                name: "weather".into(),
                input: json!({}),
            }],
        },
    ]);
    assert_eq!(p.model.chat(&request).await.unwrap().text(), "from the fallback");
    let history = support::history_text(&p.fallback.requests()[0]);
    assert!(history.contains(r#""tool_use_id":"call_1""#), "{history}");
}
