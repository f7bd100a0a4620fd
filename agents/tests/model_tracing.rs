//! `tracing` spans for every model call, over real HTTP in both formats: model name, provider,
//! attempts, latency, tokens and outcome (under OpenTelemetry's GenAI names where there is
//! one), for whole answers, streams, failures and fallbacks.

#[path = "support/model.rs"]
mod support;

use futures::StreamExt;
use support::{Capture, MODEL, Wire};
use warden_agents::model::{self, ChatRequest, Message};
use warden_fake_provider::{Answer, FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

fn provider_name(wire: Wire) -> &'static str {
    match wire {
        Wire::OpenAi => "openai",
        Wire::Anthropic => "anthropic",
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_chat_is_a_span_with_model_latency_tokens_and_outcome() {
    for wire in Wire::BOTH {
        let (capture, _guard) = Capture::install();
        let fake = FakeProvider::start().await;
        fake.push(Fault::Status(503));
        fake.push(Answer::text("a fine answer"));
        let answer = wire.model(&fake).chat(&hi()).await.unwrap();
        let spans = capture.spans("model.chat");
        assert_eq!(spans.len(), 1, "{wire:?}");
        let f = &spans[0].fields;
        assert_eq!(f["gen_ai.request.model"], MODEL);
        assert_eq!(f["gen_ai.system"], provider_name(wire));
        assert_eq!(f["attempts"], "2");
        assert_eq!(f["outcome"], "ok");
        assert!(f["latency_ms"].parse::<u64>().is_ok(), "{f:?}");
        assert_eq!(f["gen_ai.usage.input_tokens"], answer.usage.input_tokens.to_string());
        assert_eq!(f["gen_ai.usage.output_tokens"], answer.usage.output_tokens.to_string());
        assert!(answer.usage.input_tokens > 0 && answer.usage.output_tokens > 0);
        // The retry was logged inside the call's span.
        let retries = capture.events("retrying");
        assert_eq!(retries.len(), 1);
        assert_eq!(retries[0].span.as_deref(), Some("model.chat"));
        // The error as shown keeps what the server said.
        let error = &retries[0].fields["error"];
        assert!(
            error.starts_with("provider error: http 503: ") && error.len() > 26,
            "{error}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_chat_records_the_error_kind() {
    let (capture, _guard) = Capture::install();
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_default_reply(Fault::Status(529));
        wire.model(&fake).chat(&hi()).await.unwrap_err();
        fake.push(Fault::QuotaExceeded);
        wire.model(&fake).chat(&hi()).await.unwrap_err();
    }
    let outcomes: Vec<(String, String)> = capture
        .spans("model.chat")
        .iter()
        .map(|s| (s.fields["outcome"].clone(), s.fields["attempts"].clone()))
        .collect();
    let expected = [("overloaded", "3"), ("quota_exceeded", "1")].map(|(o, a)| (o.to_owned(), a.to_owned()));
    assert_eq!(outcomes, [expected.clone(), expected].concat());
    assert!(
        capture
            .spans("model.chat")
            .iter()
            .all(|s| !s.fields.contains_key("gen_ai.usage.input_tokens")),
        "no tokens without an answer"
    );
    assert_eq!(capture.events("model call failed").len(), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_span_gets_its_tokens_and_outcome_as_the_stream_ends() {
    for wire in Wire::BOTH {
        let (capture, _guard) = Capture::install();
        let fake = FakeProvider::start().await;
        fake.push(Answer::text("streamed answer"));
        fake.push(Fault::CutStream { after_chunks: 3 });
        let model = wire.model(&fake);
        let answer = model::collect(model.stream(&hi()).await.unwrap(), "m").await.unwrap();
        let mut cut = model.stream(&hi()).await.unwrap();
        while cut.next().await.is_some() {}
        let spans = capture.spans("model.stream");
        assert_eq!(spans.len(), 2, "{wire:?}");
        let ok = &spans[0].fields;
        assert_eq!(ok["gen_ai.request.model"], MODEL);
        assert_eq!(ok["gen_ai.system"], provider_name(wire));
        assert_eq!(ok["attempts"], "1");
        assert_eq!(ok["outcome"], "ok");
        assert!(ok.contains_key("latency_ms"));
        assert_eq!(ok["gen_ai.usage.input_tokens"], answer.usage.input_tokens.to_string());
        assert_eq!(ok["gen_ai.usage.output_tokens"], answer.usage.output_tokens.to_string());
        assert_eq!(spans[1].fields["outcome"], "stream_interrupted");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_fallback_is_its_own_span() {
    let (capture, _guard) = Capture::install();
    let primary = FakeProvider::start().await;
    let fallback = FakeProvider::start().await;
    primary.push(Fault::QuotaExceeded);
    let backup = Wire::Anthropic.model(&fallback);
    let model = Wire::OpenAi.model(&primary).with_fallback(backup);
    model.chat(&hi()).await.unwrap();
    let spans = capture.spans("model.chat");
    let summary: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.fields["gen_ai.system"].as_str(), s.fields["outcome"].as_str()))
        .collect();
    assert_eq!(summary, [("openai", "quota_exceeded"), ("anthropic", "ok")]);
    assert_eq!(capture.events("model failed, trying fallback").len(), 1);
}
