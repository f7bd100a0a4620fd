//! The fake provider's faults, each seen through the model layer over real HTTP as the typed
//! error it should be, and the fake provider's record of every request.

#[path = "support/model.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::{Capture, Wire, fast_retry};
use warden_agents::model::{ChatRequest, Message, Model, ModelError, OpenAiChat, RetryPolicy};
use warden_fake_provider::{Answer, FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

#[tokio::test]
async fn every_request_is_recorded_with_method_path_headers_and_body() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let request = ChatRequest::new(vec![Message::system("Be brief."), Message::user("Hi there")])
            .with_temperature(0.5)
            .with_max_tokens(64);
        wire.model(&fake).chat(&request).await.unwrap();
        let sent = fake.wait_for_requests(1).await;
        let sent = &sent[0];
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, wire.path());
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.body["model"], support::MODEL);
        assert_eq!(sent.body["temperature"], 0.5);
        assert_eq!(sent.body["max_tokens"], 64);
        assert!(!sent.is_stream());
        match wire {
            Wire::OpenAi => {
                assert_eq!(
                    sent.messages(),
                    [
                        json!({"role": "system", "content": "Be brief."}),
                        json!({"role": "user", "content": "Hi there"})
                    ]
                );
                assert_eq!(
                    sent.header("authorization"),
                    Some(format!("Bearer {}", support::KEY).as_str())
                );
            }
            Wire::Anthropic => {
                assert_eq!(sent.body["system"], "Be brief.");
                assert_eq!(
                    sent.messages(),
                    [json!({"role": "user", "content": [{"type": "text", "text": "Hi there"}]})]
                );
                assert_eq!(sent.header("x-api-key"), Some(support::KEY));
            }
        }
        // The recorded request's Debug output hides the key.
        assert!(!format!("{sent:?}").contains(support::KEY));
    }
}

#[tokio::test]
async fn a_request_the_client_gave_up_on_is_recorded_too() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_latency(Duration::from_secs(60));
        // Generous: the server must have read the request before the client gives up.
        let settings = wire.settings(&fake).with_request_timeout(Duration::from_millis(300));
        let model = wire.model_with(settings).with_retry(fast_retry(1));
        let e = model.chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::Timeout), "{e:?}");
        assert_eq!(fake.request_count(), 2, "{wire:?}: both attempts were recorded");
    }
}

#[tokio::test]
async fn a_stall_holds_the_request_until_the_caller_gives_up() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::Stall);
        fake.push(Answer::text("next"));
        let model = wire.model(&fake);
        let stalled = tokio::spawn({
            let model = model.clone();
            async move { model.chat(&hi()).await }
        });
        fake.wait_for_requests(1).await;
        stalled.abort();
        assert!(stalled.await.unwrap_err().is_cancelled());
        // Dropping the call cancelled it; the provider serves the next one.
        assert_eq!(model.chat(&hi()).await.unwrap().text(), "next");
        assert_eq!(fake.request_count(), 2);
    }
}

#[tokio::test]
async fn a_rate_limit_without_retry_after_backs_off() {
    let (capture, _guard) = Capture::install();
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::RateLimited {
            retry_after: None,
            retry_after_ms: None,
        });
        fake.push(Answer::text("ok"));
        assert_eq!(wire.model(&fake).chat(&hi()).await.unwrap().text(), "ok");
        assert_eq!(fake.request_count(), 2);
    }
    let delays = capture.retry_delays_ms();
    assert_eq!(delays.len(), 2);
    assert!(delays.iter().all(|&d| d <= 1), "the policy's 1 ms backoff: {delays:?}");
}

#[tokio::test]
async fn malformed_json_is_typed_and_not_retried() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::MalformedJson);
        let e = wire.model(&fake).chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::MalformedResponse { .. }), "{wire:?}: {e:?}");
        assert!(!e.is_transient());
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test]
async fn a_whole_answer_cut_half_way_is_interrupted_and_retried() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::CutStream { after_chunks: 1 });
        fake.push(Answer::text("complete"));
        assert_eq!(wire.model(&fake).chat(&hi()).await.unwrap().text(), "complete");
        assert_eq!(fake.request_count(), 2);

        fake.push(Fault::CutStream { after_chunks: 1 });
        let e = wire
            .model(&fake)
            .with_retry(RetryPolicy::none())
            .chat(&hi())
            .await
            .unwrap_err();
        assert!(matches!(e, ModelError::StreamInterrupted { .. }), "{wire:?}: {e:?}");
    }
}

#[tokio::test]
async fn invalid_tool_arguments_are_kept_as_raw_text() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::InvalidToolArguments { name: "search".into() });
        let answer = wire.model(&fake).chat(&hi()).await.unwrap();
        let calls: Vec<_> = answer.tool_uses().collect();
        assert_eq!(calls.len(), 1, "{wire:?}");
        assert_eq!(calls[0].1, "search");
        assert_eq!(calls[0].2, &json!(r#"{"query": "unterminated"#));
    }
}

#[tokio::test]
async fn an_error_body_that_is_not_json_is_still_classified_by_status() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let html = "<html><body>502 Bad Gateway</body></html>";
        for status in [502, 429, 400] {
            fake.push(Fault::Http {
                status,
                headers: vec![("content-type".into(), "text/html".into())],
                body: html.into(),
            });
        }
        let model = wire.model(&fake).with_retry(RetryPolicy::none());
        let e = model.chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::Server { status: 502, .. }), "{e:?}");
        let e = model.chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::RateLimited { .. }), "{e:?}");
        let e = model.chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::BadRequest { status: 400, .. }), "{e:?}");
    }
}

#[tokio::test]
async fn a_200_that_is_not_the_providers_format_is_malformed() {
    for wire in Wire::BOTH {
        for body in ["{}", "[]", "null", r#"{"choices": [{}]}"#, r#"{"content": "text"}"#] {
            let fake = FakeProvider::start().await;
            fake.push(Fault::Http {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into(),
            });
            let e = wire.model(&fake).chat(&hi()).await.unwrap_err();
            assert!(
                matches!(e, ModelError::MalformedResponse { .. }),
                "{wire:?} {body}: {e:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_request_to_a_wrong_path_is_recorded_and_rejected() {
    let fake = FakeProvider::start().await;
    // The Anthropic-style base URL lacks the `/v1` the OpenAI format's paths start with.
    let model = Model::new(OpenAiChat::new(fake.base_url_anthropic(), "gpt-test"));
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::BadRequest { status: 404, .. }), "{e:?}");
    let sent = fake.requests();
    assert_eq!(sent.len(), 1, "a 404 is not retried");
    assert_eq!(sent[0].path, "/chat/completions");
    assert_eq!(sent[0].body["model"], "gpt-test");
}

#[tokio::test]
async fn tool_arguments_sent_as_an_object_are_kept() {
    // Some OpenAI-compatible servers send `arguments` as a JSON object, not as JSON text.
    let fake = FakeProvider::start().await;
    // And some send no id: the call gets one, as in a stream, so its result can answer it.
    let body = json!({
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}},
                {"type": "function", "function": {"name": "add", "arguments": "{}"}}
            ]}}]
    });
    fake.push(Fault::Http {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    });
    let answer = Wire::OpenAi.model(&fake).chat(&hi()).await.unwrap();
    let calls: Vec<_> = answer.tool_uses().collect();
    assert_eq!(
        calls,
        [
            ("call_1", "add", &json!({"a": 1, "b": 2})),
            ("warden_call_1", "add", &json!({}))
        ]
    );

    // The same in a stream.
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let stream = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_2", "function": {"name": "add", "arguments": {"a": 3}}}]}),
            json!(null),
        ),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".to_owned(),
    ];
    fake.push(Fault::Http {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: stream.concat(),
    });
    let model = Wire::OpenAi.model(&fake);
    let answer = warden_agents::model::collect(model.stream(&hi()).await.unwrap(), "m")
        .await
        .unwrap();
    let calls: Vec<_> = answer.tool_uses().collect();
    assert_eq!(calls, [("call_2", "add", &json!({"a": 3}))]);
}

/// Every provider error says what the server said, 5xx included (llama-cpp-python answers a
/// `json_schema` response format with a 500 that explains itself), with anything that looks
/// like a key removed and long bodies cut.
#[tokio::test]
async fn provider_errors_keep_the_servers_message_without_keys() {
    let fake = FakeProvider::start().await;
    let model = Wire::OpenAi.model(&fake).with_retry(RetryPolicy::none());
    let json = |status: u16, message: &str| Fault::Http {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"error": {"message": message, "type": "server_error"}}).to_string(),
    };

    fake.push(json(
        500,
        "response_format.type must be one of 'text' or 'json_object', got 'json_schema'",
    ));
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Server { status: 500, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "provider error: http 500: response_format.type must be one of 'text' or 'json_object', got 'json_schema'"
    );

    fake.push(json(
        401,
        "Incorrect API key provided: sk-proj-abcd****************wxyz. Find yours at ...",
    ));
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Authentication { status: 401, .. }), "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("authentication failed: http 401: Incorrect API key provided: [redacted]"),
        "{shown}"
    );
    assert!(!shown.contains("sk-") && !shown.contains("wxyz"), "{shown}");

    fake.push(Fault::Http {
        status: 502,
        headers: vec![("content-type".into(), "text/html".into())],
        body: format!(
            "<html><body><h1>502 Bad Gateway</h1>{}</body></html>",
            "x ".repeat(2_000)
        ),
    });
    let e = model.chat(&hi()).await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with("provider error: http 502: <html><body><h1>502 Bad Gateway</h1>"),
        "{shown}"
    );
    assert!(shown.len() < 600, "long bodies are cut: {} bytes", shown.len());

    fake.push(Fault::Status(429));
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::RateLimited { .. }), "{e:?}");
}
