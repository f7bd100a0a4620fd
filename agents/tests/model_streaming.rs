//! Streaming over real HTTP in both wire formats: text and tool-call argument fragments
//! assembled by index, the end marker, the usage chunk, and streams cut off, stalled, broken or
//! errored half way reported as typed errors, never as truncated successes.

#[path = "support/model.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use support::{Wire, text_of};
use warden_agents::model::{
    self, ChatRequest, ContentBlock, HttpSettings, Message, ModelError, ResponsePart, StopReason, StreamEvent,
};
use warden_fake_provider::{Answer, FakeProvider, Fault, ScriptedCall};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// Every item of the stream, the error (if any) last.
async fn drain(wire: Wire, fake: &FakeProvider) -> (Vec<StreamEvent>, Option<ModelError>) {
    let mut stream = wire.model(fake).stream(&hi()).await.expect("the stream opens");
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(e) => {
                assert!(stream.next().await.is_none(), "nothing follows an error");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

/// The events folded into a response, as `model::collect` does.
async fn assemble(events: &[StreamEvent]) -> model::ChatResponse {
    let items = events.iter().cloned().map(Ok);
    model::collect(futures::stream::iter(items), "m").await.unwrap()
}

#[tokio::test]
async fn text_arrives_in_deltas_with_usage_and_a_stop() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_chunk_bytes(3);
        let text = "Streaming works, even for ünïcödé 🎉 text.";
        fake.push(Answer::text(text));
        let (events, error) = drain(wire, &fake).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text_of(&events), text);
        let deltas = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::TextDelta { .. }))
            .count();
        assert!(deltas > 10, "{wire:?}: the text came in pieces ({deltas})");
        assert!(events.contains(&StreamEvent::Stop(StopReason::EndTurn)));
        let usage = assemble(&events).await.usage;
        assert!(usage.input_tokens > 0 && usage.output_tokens > 0, "{usage:?}");

        let request = &fake.requests()[0];
        assert!(request.is_stream());
        if wire == Wire::OpenAi {
            assert_eq!(request.body["stream_options"]["include_usage"], json!(true));
            // The usage chunk comes after the finish chunk, and it is not lost.
            let stop = events.iter().position(|e| matches!(e, StreamEvent::Stop(_))).unwrap();
            assert!(matches!(events.last(), Some(StreamEvent::Usage(_))), "{events:?}");
            assert!(stop < events.len() - 1);
        }
    }
}

#[tokio::test]
async fn a_streamed_answer_equals_the_whole_one() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let reply = Answer::TextAndToolCalls(
            "Let me look.".into(),
            vec![ScriptedCall::new("search", json!({"q": "rust", "limit": 3})).with_id("call_a")],
        );
        fake.push(reply.clone());
        fake.push(reply);
        let model = wire.model(&fake);
        let whole = model.chat(&hi()).await.unwrap();
        let streamed = model::collect(model.stream(&hi()).await.unwrap(), model.name())
            .await
            .unwrap();
        assert_eq!(streamed.content, whole.content, "{wire:?}");
        assert_eq!(streamed.stop_reason, StopReason::ToolUse);
        assert_eq!(whole.stop_reason, StopReason::ToolUse);
        assert!(streamed.usage.output_tokens > 0);
    }
}

#[tokio::test]
async fn tool_call_fragments_are_assembled_by_index() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_chunk_bytes(2);
        let weather = json!({"city": "Paris", "units": "metric", "days": [1, 2, 3]});
        let time = json!({"zone": "Europe/Rome", "format": {"hour": "2-digit"}});
        fake.push(Answer::ToolCalls(vec![
            ScriptedCall::new("weather", weather.clone()),
            ScriptedCall::new("time", time.clone()),
        ]));
        let (events, error) = drain(wire, &fake).await;
        assert!(error.is_none(), "{error:?}");
        let starts: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolUseStart { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(starts.len(), 2, "{wire:?}");
        let fragments = |at: usize| {
            events
                .iter()
                .filter(|e| matches!(e, StreamEvent::ToolUseArgsDelta { index, .. } if *index == at))
                .count()
        };
        assert!(starts.iter().all(|&i| fragments(i) > 3), "arguments came in fragments");

        let response = assemble(&events).await;
        let calls: Vec<_> = response.tool_uses().collect();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].1, calls[0].2), ("weather", &weather));
        assert_eq!((calls[1].1, calls[1].2), ("time", &time));
        assert_ne!(calls[0].0, calls[1].0, "each call has its own id");
        assert_eq!(response.stop_reason, StopReason::ToolUse);
    }
}

#[tokio::test]
async fn interleaved_fragments_are_assembled_by_index() {
    // OpenAI may interleave the fragments of parallel calls; only the index says which is which.
    let chunk = |delta: serde_json::Value| format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": delta}]}));
    let call = |index: u32, id: &str, name: &str| {
        chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
        )
    };
    let args =
        |index: u32, piece: &str| chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}));
    let body = [
        call(0, "call_a", "add"),
        call(1, "call_b", "mul"),
        args(1, r#"{"x": "#),
        args(0, r#"{"a": 1"#),
        args(1, "6}"),
        args(0, r#", "b": 2}"#),
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let fake = FakeProvider::start().await;
    fake.push(sse(body));
    let model = Wire::OpenAi.model(&fake);
    let response = model::collect(model.stream(&hi()).await.unwrap(), "m").await.unwrap();
    let calls: Vec<_> = response
        .tool_uses()
        .map(|(id, name, input)| (id, name, input.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("call_a", "add", json!({"a": 1, "b": 2})),
            ("call_b", "mul", json!({"x": 6}))
        ]
    );
}

/// A 200 `text/event-stream` response with this body, verbatim.
fn sse(body: String) -> Fault {
    Fault::Http {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body,
    }
}

#[tokio::test]
async fn sse_is_parsed_faithfully() {
    // Comments, CRLF line ends, an event split over two `data:` lines, a field without a space
    // after the colon, unknown fields and retry hints: all per the SSE spec.
    let openai = concat!(
        ": keep-alive\r\n\r\n",
        "retry: 1000\r\nid: 1\r\n",
        "data: {\"choices\": [{\"index\": 0,\r\n",
        "data: \"delta\": {\"content\": \"Hel\"}}]}\r\n\r\n",
        "data:{\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"lo\"}}]}\n\n",
        "data: {\"choices\": [{\"index\": 0, \"delta\": {}, \"finish_reason\": \"stop\"}]}\n\n",
        "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 7, \"completion_tokens\": 2}}\n\n",
        "data: [DONE]\n\n",
    );
    let anthropic = concat!(
        "event: message_start\r\n",
        "data: {\"type\": \"message_start\", \"message\": {\"usage\": {\"input_tokens\": 7, \"output_tokens\": 1}}}\r\n\r\n",
        ": a comment\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0,\ndata: \"delta\": {\"type\": \"text_delta\", \"text\": \"Hel\"}}\n\n",
        "event: content_block_delta\ndata:{\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"lo\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\n",
        "event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\"}, \"usage\": {\"output_tokens\": 2}}\n\n",
        "event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n",
    );
    for (wire, body) in [(Wire::OpenAi, openai), (Wire::Anthropic, anthropic)] {
        let fake = FakeProvider::start().await;
        fake.push(sse(body.to_owned()));
        let model = wire.model(&fake);
        let response = model::collect(model.stream(&hi()).await.unwrap(), "m").await;
        let response = response.unwrap_or_else(|e| panic!("{wire:?}: {e:?}"));
        assert_eq!(response.text(), "Hello", "{wire:?}");
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (7, 2));
    }
}

#[tokio::test]
async fn a_stream_without_its_end_marker_is_interrupted() {
    // Everything but the end marker, including the stop reason: still not a success.
    let openai = concat!(
        "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"Hello\"}}]}\n\n",
        "data: {\"choices\": [{\"index\": 0, \"delta\": {}, \"finish_reason\": \"stop\"}]}\n\n",
    );
    let anthropic = concat!(
        "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"usage\": {\"input_tokens\": 7}}}\n\n",
        "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"Hello\"}}\n\n",
        "event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\"}, \"usage\": {\"output_tokens\": 2}}\n\n",
    );
    for (wire, body) in [(Wire::OpenAi, openai), (Wire::Anthropic, anthropic)] {
        let fake = FakeProvider::start().await;
        fake.push(sse(body.to_owned()));
        let (events, error) = drain(wire, &fake).await;
        assert_eq!(text_of(&events), "Hello");
        assert!(
            matches!(error, Some(ModelError::StreamInterrupted { source: None })),
            "{wire:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_cut_half_way_is_a_typed_error() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::CutStream { after_chunks: 4 });
        fake.push(Answer::text("not asked for"));
        let (events, error) = drain(wire, &fake).await;
        assert!(
            matches!(error, Some(ModelError::StreamInterrupted { source: Some(_) })),
            "{wire:?}: {error:?}"
        );
        assert!(!text_of(&events).is_empty(), "part of the text arrived before the cut");
        assert!(!events.iter().any(|e| matches!(e, StreamEvent::Stop(_))));
        // Once deltas flowed, the error is the caller's: the model does not retry it.
        assert_eq!(fake.request_count(), 1);
        assert_eq!(fake.remaining(), 1);

        // And `collect` reports it, never the truncated text.
        let fake = FakeProvider::start().await;
        fake.push(Fault::CutStream { after_chunks: 4 });
        let model = wire.model(&fake);
        let collected = model::collect(model.stream(&hi()).await.unwrap(), "m").await;
        assert!(
            matches!(collected, Err(ModelError::StreamInterrupted { .. })),
            "{collected:?}"
        );
    }
}

#[tokio::test]
async fn a_stalled_stream_times_out() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::StallStream { after_chunks: 3 });
        let settings = wire.settings(&fake).with_idle_timeout(Duration::from_millis(150));
        let mut stream = wire.model_with(settings).stream(&hi()).await.unwrap();
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item);
        }
        assert!(matches!(last, Some(Err(ModelError::Timeout))), "{wire:?}: {last:?}");
    }
}

#[tokio::test]
async fn an_error_event_mid_stream_is_typed() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::OverloadedMidStream { after_chunks: 4 });
        let (events, error) = drain(wire, &fake).await;
        assert!(!text_of(&events).is_empty());
        let error = error.expect("an error");
        assert!(matches!(error, ModelError::Overloaded { .. }), "{wire:?}: {error:?}");
        assert!(error.is_transient());
    }
}

#[tokio::test]
async fn a_malformed_event_is_typed() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::MalformedJson);
        let (_, error) = drain(wire, &fake).await;
        assert!(
            matches!(error, Some(ModelError::MalformedResponse { .. })),
            "{wire:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn opening_a_stream_is_retried() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::Status(529));
        fake.push(Fault::RateLimited {
            retry_after: None,
            retry_after_ms: Some(1),
        });
        fake.push(Answer::text("third time"));
        let (events, error) = drain(wire, &fake).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text_of(&events), "third time");
        let requests = fake.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| r.is_stream()));
    }
}

#[tokio::test]
async fn an_error_before_the_stream_opens_is_returned_by_stream() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::QuotaExceeded);
        let opened = wire.model(&fake).stream(&hi()).await;
        assert!(matches!(opened, Err(ModelError::QuotaExceeded)), "{wire:?}");
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test]
async fn invalid_streamed_arguments_are_kept_as_text() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::InvalidToolArguments { name: "search".into() });
        let model = wire.model(&fake);
        let response = model::collect(model.stream(&hi()).await.unwrap(), "m").await.unwrap();
        let ContentBlock::ToolUse { name, input, .. } = &response.content[0] else {
            panic!("{response:?}")
        };
        assert_eq!(name, "search");
        assert_eq!(
            input,
            &json!(r#"{"query": "unterminated"#),
            "{wire:?}: the raw text, for the tool layer to reject"
        );
    }
}

#[tokio::test]
async fn garbage_streams_are_typed_errors() {
    let start = "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {}}\n\n";
    let cases: [(Wire, String, &str); 9] = [
        (Wire::OpenAi, String::new(), "stream_interrupted"),
        (Wire::Anthropic, String::new(), "stream_interrupted"),
        (Wire::OpenAi, "no colon, no blank line".into(), "stream_interrupted"),
        (
            Wire::OpenAi,
            "data: 123\n\ndata: \"text\"\n\n".into(),
            "stream_interrupted",
        ),
        (
            Wire::OpenAi,
            "data: {\"choices\": \"no\"}\n\ndata: [DONE\n\n".into(),
            "malformed_response",
        ),
        (Wire::Anthropic, "data: [DONE]\n\n".into(), "malformed_response"),
        (Wire::Anthropic, "event: error\ndata: {}\n\n".into(), "bad_request"),
        (
            Wire::Anthropic,
            format!(
                "{start}event: content_block_delta\ndata: {}\n\n",
                json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}})
            ),
            "malformed_response",
        ),
        (
            Wire::Anthropic,
            format!(
                "{start}event: content_block_start\ndata: {}\n\n",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "name": "x"}})
            ),
            "malformed_response",
        ),
    ];
    for (wire, body, kind) in cases {
        let fake = FakeProvider::start().await;
        fake.push(sse(body.clone()));
        let model = wire.model(&fake);
        let collected = model::collect(model.stream(&hi()).await.unwrap(), "m").await;
        match collected {
            Err(e) => assert_eq!(e.kind(), kind, "{wire:?} {body:?}: {e:?}"),
            Ok(r) => panic!("{wire:?} {body:?}: a success from garbage: {r:?}"),
        }
    }
}

#[tokio::test]
async fn a_line_that_never_ends_is_an_error_not_unbounded_memory() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(sse(format!("data: {}", "x".repeat(9 << 20))));
        let (_, error) = drain(wire, &fake).await;
        assert!(
            matches!(
                &error,
                Some(ModelError::ResponseTooLarge { part: ResponsePart::Event, limit }) if *limit == HttpSettings::DEFAULT_MAX_EVENT_BYTES
            ),
            "{wire:?}: {error:?}"
        );
    }
}
