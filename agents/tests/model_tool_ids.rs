//! The tool-call-id rule over real HTTP: every tool call in a conversation is answered before the
//! next request, also when the tool failed, timed out or was interrupted, so the provider (the
//! fake one checks histories as the real ones do) never rejects the history. Both formats.

#[path = "support/model.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::Wire;
use warden_agents::model::{
    self, ChatRequest, ContentBlock, INTERRUPTED_TOOL_RESULT, Message, ModelError, Role, ToolSpec,
};
use warden_agents::tools::ToolError;
use warden_fake_provider::{Answer, FakeProvider, Fault, RecordedRequest, ScriptedCall};

fn call(id: &str, city: &str) -> ContentBlock {
    ContentBlock::ToolUse {
        id: id.into(),
        name: "weather".into(),
        input: json!({ "city": city }),
    }
}

fn assistant(blocks: Vec<ContentBlock>) -> Message {
    Message {
        role: Role::Assistant,
        content: blocks,
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "weather".into(),
        description: "The weather in a city.".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

/// The results the request sent, as (id, content, is_error), in the order sent. OpenAI has no
/// error flag: `is_error` is then whether the content says it is an error.
fn results_sent(wire: Wire, request: &RecordedRequest) -> Vec<(String, String, bool)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    match wire {
        Wire::OpenAi => request
            .messages()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                let content = text(&m["content"]);
                let is_error = content.starts_with("error");
                (text(&m["tool_call_id"]), content, is_error)
            })
            .collect(),
        Wire::Anthropic => request
            .messages()
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    text(&b["tool_use_id"]),
                    text(&b["content"]),
                    b["is_error"] == json!(true),
                )
            })
            .collect(),
    }
}

#[tokio::test]
async fn the_provider_rejects_a_dangling_call_and_the_model_closes_it() {
    let history = vec![
        Message::user("Weather in Paris and Rome?"),
        assistant(vec![call("call_a", "Paris"), call("call_b", "Rome")]),
        Message::tool_results(vec![ContentBlock::tool_result("call_a", "sunny")]),
    ];
    let request = ChatRequest::new(history).with_tools(vec![weather_tool()]);
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        // The provider client alone sends the history as it is, and is told off, as by the real APIs.
        let e = wire.provider(&fake).chat(&request).await.unwrap_err();
        let ModelError::BadRequest {
            status: 400, message, ..
        } = &e
        else {
            panic!("{wire:?}: {e:?}")
        };
        assert!(message.contains("call_b"), "{message}");

        // The model answers the dangling call with a synthetic error result first.
        fake.push(Answer::text("Paris is sunny; Rome is unknown."));
        let answer = wire.model(&fake).chat(&request).await.unwrap();
        assert_eq!(answer.text(), "Paris is sunny; Rome is unknown.");
        let sent = results_sent(wire, &fake.requests()[1]);
        assert_eq!(sent.len(), 2, "{wire:?}: {sent:?}");
        assert_eq!(sent[0], ("call_a".into(), "sunny".into(), false));
        assert_eq!(sent[1].0, "call_b");
        assert!(sent[1].1.contains(INTERRUPTED_TOOL_RESULT) && sent[1].2, "{sent:?}");
        assert_eq!(
            request.messages[2].content.len(),
            1,
            "the caller's request is not changed"
        );
    }
}

#[tokio::test]
async fn a_turn_interrupted_before_any_result_is_closed_for_chat_and_stream() {
    // The agent restarted between the model's answer and running the tools.
    let request = ChatRequest::new(vec![
        Message::system("You are terse."),
        Message::user("Weather in Paris?"),
        assistant(vec![ContentBlock::text("Checking."), call("toolu_1", "Paris")]),
    ]);
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let model = wire.model(&fake);
        fake.push(Answer::text("Sorry, the lookup was interrupted."));
        model.chat(&request).await.unwrap();
        fake.push(Answer::text("Sorry again."));
        let streamed = model::collect(model.stream(&request).await.unwrap(), "m")
            .await
            .unwrap();
        assert_eq!(streamed.text(), "Sorry again.");
        for sent in fake.requests() {
            let results = results_sent(wire, &sent);
            assert_eq!(results.len(), 1, "{wire:?}");
            assert_eq!(results[0].0, "toolu_1");
            assert!(results[0].2, "an error result");
            let last = sent.messages().last().unwrap();
            assert_eq!(last["role"], if wire == Wire::OpenAi { "tool" } else { "user" });
        }
    }
}

#[tokio::test]
async fn failed_and_timed_out_tools_are_answered_with_error_results() {
    let failed: Result<Value, ToolError> = Err(ToolError::Failed {
        retryable: false,
        source: Arc::new(std::io::Error::other("disk full")),
    });
    let timed_out: Result<Value, ToolError> = Err(ToolError::Timeout {
        after: Duration::from_secs(30),
    });
    let ok: Result<Value, ToolError> = Ok(json!({"temp_c": 21}));
    let request = ChatRequest::new(vec![
        Message::user("Weather in Paris, Rome and Oslo?"),
        assistant(vec![call("a", "Paris"), call("b", "Rome"), call("c", "Oslo")]),
        Message::tool_results(vec![
            ContentBlock::tool_outcome("a", &ok),
            ContentBlock::tool_outcome("b", &failed),
            ContentBlock::tool_outcome("c", &timed_out),
        ]),
    ]);
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Answer::text("Paris is 21 °C."));
        wire.model(&fake).chat(&request).await.unwrap();
        let sent = results_sent(wire, &fake.requests()[0]);
        assert_eq!(sent[0], ("a".into(), r#"{"temp_c":21}"#.into(), false), "{wire:?}");
        assert_eq!(sent[1].0, "b");
        assert!(sent[1].2 && sent[1].1.contains("disk full"), "{sent:?}");
        assert_eq!(sent[2].0, "c");
        assert!(sent[2].2 && sent[2].1.contains("timed out"), "{sent:?}");
    }
}

#[tokio::test]
async fn a_tool_round_trip_echoes_the_providers_ids() {
    for wire in Wire::BOTH {
        for stream in [false, true] {
            let fake = FakeProvider::start().await;
            let model = wire.model(&fake);
            fake.push(Answer::ToolCalls(vec![
                ScriptedCall::new("weather", json!({"city": "Paris"})),
                ScriptedCall::new("weather", json!({"city": "Rome"})),
            ]));
            fake.push(Answer::text("Both sunny."));
            let mut request = ChatRequest::new(vec![Message::user("Paris and Rome?")]).with_tools(vec![weather_tool()]);
            let first = if stream {
                model::collect(model.stream(&request).await.unwrap(), "m")
                    .await
                    .unwrap()
            } else {
                model.chat(&request).await.unwrap()
            };
            let ids: Vec<String> = first.tool_uses().map(|(id, _, _)| id.to_owned()).collect();
            assert_eq!(ids.len(), 2);
            request.messages.push(first.to_message());
            request.messages.push(Message::tool_results(
                ids.iter()
                    .map(|id| ContentBlock::tool_result(id.clone(), "sunny"))
                    .collect(),
            ));
            let second = model.chat(&request).await.unwrap();
            assert_eq!(second.text(), "Both sunny.", "{wire:?} stream={stream}");
            let sent = results_sent(wire, &fake.requests()[1]);
            let sent_ids: Vec<&str> = sent.iter().map(|(id, _, _)| id.as_str()).collect();
            assert_eq!(sent_ids, ids, "the provider's own ids go back");
            let tools = &fake.requests()[1].body["tools"];
            assert_eq!(tools.as_array().map(Vec::len), Some(1));
        }
    }
}

#[tokio::test]
async fn results_behind_other_user_content_are_sent_where_providers_want_them() {
    // A user message slipped in between the call and its result (an agent that queued the
    // user's next line before the tool finished): both providers want the results first.
    let request = ChatRequest::new(vec![
        Message::user("Weather in Paris?"),
        assistant(vec![call("a", "Paris")]),
        Message::user("And be quick."),
        Message::tool_results(vec![ContentBlock::tool_result("a", "sunny")]),
    ]);
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Answer::text("Sunny."));
        let answer = wire.model(&fake).chat(&request).await;
        assert_eq!(answer.unwrap_or_else(|e| panic!("{wire:?}: {e:?}")).text(), "Sunny.");
        let sent = &fake.requests()[0];
        assert_eq!(results_sent(wire, sent)[0].0, "a");
        assert!(
            support::history_text(sent).contains("And be quick."),
            "the user's text is kept"
        );
    }
}

#[tokio::test]
async fn invalid_arguments_go_back_with_an_error_result_and_are_accepted() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let model = wire.model(&fake);
        fake.push(Fault::InvalidToolArguments { name: "weather".into() });
        fake.push(Answer::text("Let me fix that."));
        let mut request = ChatRequest::new(vec![Message::user("Weather?")]).with_tools(vec![weather_tool()]);
        let first = model.chat(&request).await.unwrap();
        let (id, _, input) = first.tool_uses().next().unwrap();
        assert!(input.is_string(), "{wire:?}: the raw, invalid arguments: {input:?}");
        let id = id.to_owned();
        request.messages.push(first.to_message());
        request
            .messages
            .push(Message::tool_results(vec![ContentBlock::tool_error(
                id,
                "error: arguments are not valid JSON",
            )]));
        assert_eq!(model.chat(&request).await.unwrap().text(), "Let me fix that.");
    }
}

#[tokio::test]
async fn an_error_result_is_marked_as_one_in_both_formats() {
    let request = ChatRequest::new(vec![
        Message::user("Weather in Paris?"),
        assistant(vec![call("a", "Paris")]),
        Message::tool_results(vec![ContentBlock::tool_error("a", "service unavailable")]),
    ]);
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        wire.model(&fake).chat(&request).await.unwrap();
        let sent = results_sent(wire, &fake.requests()[0]);
        let expected = match wire {
            // No error flag in this format: the text says it.
            Wire::OpenAi => "error: service unavailable",
            Wire::Anthropic => "service unavailable",
        };
        assert_eq!(sent, [("a".to_owned(), expected.to_owned(), true)], "{wire:?}");
    }
}

#[tokio::test]
async fn tool_schemas_from_the_tools_crate_are_sent_in_each_format() {
    let schema = warden_agents::tools::ToolSchema {
        name: "weather".into(),
        description: "The weather in a city.".into(),
        parameters: weather_tool().parameters,
    };
    let request = ChatRequest::new(vec![Message::user("Weather?")]).with_tools(vec![ToolSpec::from(&schema)]);
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        wire.model(&fake).chat(&request).await.unwrap();
        let tools = fake.requests()[0].body["tools"].clone();
        let expected = match wire {
            Wire::OpenAi => json!([{"type": "function", "function": {
                "name": "weather", "description": "The weather in a city.", "parameters": schema.parameters}}]),
            Wire::Anthropic => json!([{
                "name": "weather", "description": "The weather in a city.", "input_schema": schema.parameters}]),
        };
        assert_eq!(tools, expected, "{wire:?}");
    }
}
