//! Against a real model server (`tests/real_model/run.sh` starts llama-cpp-python with
//! SmolLM2-135M-Instruct and sets `WARDEN_REAL_MODEL_URL`; any OpenAI-compatible server
//! works). Without the variable every test prints that it was skipped and passes.
//!
//! A 135M model is weak: these tests check structure (an answer, a schema-valid value, a
//! tool call made and its result used), never wisdom.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use warden::agents::model::{
    ChatRequest, HttpSettings, Message, Model, OpenAiChat, RetryPolicy, StreamEvent, StructuredMode, StructuredOutput,
    ToolChoice, ToolSpec,
};
use warden::prelude::*;

/// The server's model, or `None` (and a printed note) when no server is configured.
fn real_model(test: &str) -> Option<Model> {
    let Ok(url) = std::env::var("WARDEN_REAL_MODEL_URL") else {
        println!("skipped {test}: WARDEN_REAL_MODEL_URL is not set (tests/real_model/run.sh sets it)");
        return None;
    };
    let name = std::env::var("WARDEN_REAL_MODEL_NAME").unwrap_or_else(|_| "smollm2".into());
    let settings = HttpSettings::new(url, name).with_max_tokens(Some(256));
    Some(Model::new(OpenAiChat::new("", "").with_settings(settings)).with_retry(RetryPolicy::none()))
}

const PATIENCE: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_plain_answer() {
    let Some(model) = real_model("a_plain_answer") else {
        return;
    };
    let answer = model
        .chat(&ChatRequest::new(vec![Message::user("Say hello in one word.")]))
        .await
        .unwrap();
    assert!(!answer.text().trim().is_empty(), "{answer:?}");
}

#[tokio::test]
async fn a_streamed_answer() {
    let Some(model) = real_model("a_streamed_answer") else {
        return;
    };
    let mut stream = model
        .stream(&ChatRequest::new(vec![Message::user("Count from one to five.")]))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let StreamEvent::TextDelta { text: delta } = event.unwrap() {
            text.push_str(&delta);
        }
    }
    assert!(!text.trim().is_empty());
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(crate = "warden::serde")]
#[schemars(crate = "warden::schemars")]
#[allow(dead_code)]
struct Capital {
    /// The country.
    country: String,
    /// Its capital city.
    capital: String,
}

#[tokio::test]
async fn a_structured_answer_in_whatever_mode_the_server_takes() {
    let Some(model) = real_model("a_structured_answer_in_whatever_mode_the_server_takes") else {
        return;
    };
    let model = model.with_repair_rounds(2);
    let request = ChatRequest::new(vec![Message::user("What is the capital of France? Answer in JSON.")]);
    let answer = model.chat_structured::<Capital>(&request).await.unwrap();
    println!("mode {:?}: {:?}", model.structured_mode(), answer.value);
}

#[tokio::test]
async fn a_structured_answer_as_a_forced_tool_call() {
    let Some(model) = real_model("a_structured_answer_as_a_forced_tool_call") else {
        return;
    };
    let model = model
        .with_repair_rounds(2)
        .with_structured_output(StructuredOutput::Fixed(StructuredMode::ToolCall));
    let request = ChatRequest::new(vec![Message::user("What is the capital of France?")]);
    let answer = model.chat_structured::<Capital>(&request).await.unwrap();
    println!("tool_call mode: {:?}", answer.value);
}

#[tokio::test]
async fn a_forced_tool_call() {
    let Some(model) = real_model("a_forced_tool_call") else {
        return;
    };
    let weather = ToolSpec {
        name: "weather".into(),
        description: "The weather in a city.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    };
    let request = ChatRequest::new(vec![Message::user("What is the weather in Paris?")])
        .with_tools(vec![weather])
        .with_tool_choice(ToolChoice::Tool("weather".into()));
    let answer = model.chat(&request).await.unwrap();
    let calls: Vec<_> = answer.tool_uses().map(|(_, name, _)| name.to_owned()).collect();
    assert_eq!(calls, ["weather"], "{answer:?}");
}

#[derive(Deserialize, JsonSchema)]
#[serde(crate = "warden::serde")]
#[schemars(crate = "warden::schemars")]
#[allow(dead_code)]
struct City {
    /// The city.
    city: String,
}

#[tokio::test]
async fn a_supervised_react_agent_calls_its_tool_and_answers() {
    let Some(model) = real_model("a_supervised_react_agent_calls_its_tool_and_answers") else {
        return;
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let toolkit = Toolkit::new().tool(tool_fn("weather", "The weather in a city.", move |_: City| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, ToolError>("sunny, 21 degrees") }
    }));
    let tools = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let agent = Agent::new(
        "forecaster",
        ReAct::builder(model)
            .system("Use the weather tool, then answer in one sentence.")
            .tools(toolkit, tools.client())
            .tool_choice(ToolChoice::Tool("weather".into()))
            .max_iterations(3)
            .build(),
    );
    let forecaster = agent.handle();
    let root = Supervisor::builder("root")
        .child(tools.child_spec("tools"))
        .child(agent.child_spec())
        .spawn()
        .await
        .unwrap();

    let reply = forecaster
        .ask(AgentMessage::user("What is the weather in Paris?"), PATIENCE)
        .await
        .unwrap();
    assert!(calls.load(Ordering::SeqCst) >= 1, "the tool was called");
    assert!(reply.iterations >= 2, "the tool's result went back to the model");
    println!(
        "{:?} after {} model calls: {}",
        reply.outcome,
        reply.iterations,
        reply.text()
    );
    root.stop().await;
}
