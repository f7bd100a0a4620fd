//! OpenAI-compatible servers that answer differently from OpenAI, imitated by the fake
//! provider's quirks: tool calls without ids, arguments as objects, the legacy
//! `function_call`, no usage in streams. Each is handled whole and streamed, and a supervised
//! ReAct agent with a tool runs to its answer against every one.

#[path = "support/agent.rs"]
mod support;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use warden_agents::agent::{Agent, Outcome};
use warden_agents::message::AgentMessage;
use warden_agents::model::{self, ChatRequest, Message, StopReason};
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Quirks};
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

use support::{DEADLINE, model, root};

fn every_quirk() -> Vec<(&'static str, Quirks)> {
    vec![
        ("no ids", Quirks::none().no_tool_call_ids()),
        ("arguments as objects", Quirks::none().arguments_as_objects()),
        ("legacy function_call", Quirks::none().legacy_function_call()),
        ("no stream usage", Quirks::none().no_stream_usage()),
        (
            "all of them",
            Quirks::none()
                .no_tool_call_ids()
                .arguments_as_objects()
                .legacy_function_call()
                .no_stream_usage(),
        ),
    ]
}

fn add_request() -> ChatRequest {
    ChatRequest::new(vec![Message::user("1 + 2?")])
}

#[tokio::test]
async fn a_tool_call_comes_through_whole_and_streamed_whatever_the_quirk() {
    for (quirk, quirks) in every_quirk() {
        let fake = FakeProvider::start().await;
        fake.set_quirks(quirks);
        let model = model(&fake);
        for streamed in [false, true] {
            fake.push(Answer::tool_call("add", json!({"a": 1, "b": 2})));
            let answer = if streamed {
                let stream = model.stream(&add_request()).await.unwrap();
                model::collect(stream, "m").await.unwrap()
            } else {
                model.chat(&add_request()).await.unwrap()
            };
            let calls: Vec<_> = answer
                .tool_uses()
                .map(|(id, name, input)| (id.to_owned(), name.to_owned(), input.clone()))
                .collect();
            assert_eq!(calls.len(), 1, "{quirk}, streamed {streamed}: {answer:?}");
            let (id, name, input) = &calls[0];
            assert!(!id.is_empty(), "{quirk}: a call gets an id to answer it by");
            assert_eq!(
                (name.as_str(), input),
                ("add", &json!({"a": 1, "b": 2})),
                "{quirk}, streamed {streamed}"
            );
            assert_eq!(answer.stop_reason, StopReason::ToolUse, "{quirk}, streamed {streamed}");
            if streamed && quirks.no_stream_usage {
                assert_eq!(answer.usage.input_tokens, 0, "{quirk}: no usage is zero, not an error");
            }
        }
        // The quirk is really played: the raw answer has the server's shape.
        fake.push(Answer::tool_call("add", json!({"a": 1, "b": 2})));
        let raw: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/chat/completions", fake.base_url_openai()))
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "1 + 2?"}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let message = &raw["choices"][0]["message"];
        if quirks.legacy_function_call {
            assert!(
                message.get("tool_calls").is_none() && message["function_call"]["name"] == "add",
                "{raw}"
            );
        } else {
            let call = &message["tool_calls"][0];
            assert_eq!(call.get("id").is_none(), quirks.no_tool_call_ids, "{quirk}: {raw}");
            assert_eq!(
                call["function"]["arguments"].is_object(),
                quirks.arguments_as_objects,
                "{quirk}: {raw}"
            );
        }
    }
}

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_react_agent_runs_to_its_answer_against_every_quirk() {
    for (quirk, quirks) in every_quirk() {
        let fake = FakeProvider::start().await;
        fake.set_quirks(quirks);
        fake.push(Answer::tool_call("add", json!({"a": 1, "b": 2})));
        fake.push(Answer::text("3"));
        let toolkit = Toolkit::new().tool(tool_fn("add", "Adds two numbers.", |args: AddArgs| async move {
            Ok::<_, ToolError>((args.a + args.b).to_string())
        }));
        let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
        let agent = Agent::new(
            "adder",
            ReAct::builder(model(&fake)).tools(toolkit, executor.client()).build(),
        );
        let adder = agent.handle();
        let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;
        let reply = adder.ask(AgentMessage::user("1 + 2?"), DEADLINE).await.unwrap();
        assert_eq!(
            (reply.outcome, reply.text().as_str()),
            (Outcome::Completed, "3"),
            "{quirk}"
        );
        // The tool's result went back to the model, answering the call it made.
        let second = &fake.requests()[1];
        let tool_message = second.messages().iter().find(|m| m["role"] == "tool").cloned();
        assert_eq!(
            tool_message.as_ref().map(|m| m["content"].clone()),
            Some(json!("3")),
            "{quirk}: {}",
            second.body
        );
        root.stop().await;
    }
}
