//! The model layer against real providers: a chat, a stream, a tool round trip (with a dangling
//! call closed) and structured output. Each test runs only when its provider's key is set and
//! otherwise prints a "skipped" line to stderr (past the test harness's capture) and passes:
//!
//! - OpenAI: `OPENAI_API_KEY`; optionally `WARDEN_TEST_OPENAI_MODEL` (default `gpt-4o-mini`)
//!   and `OPENAI_BASE_URL` (any OpenAI-compatible endpoint);
//! - Anthropic: `ANTHROPIC_API_KEY`; optionally `WARDEN_TEST_ANTHROPIC_MODEL` (default
//!   `claude-haiku-4-5`) and `ANTHROPIC_BASE_URL`.

use std::io::Write;

use serde::Deserialize;
use serde_json::json;
use warden_agents::model::{
    self, ChatRequest, ContentBlock, Message, Model, ModelConfig, Provider, StopReason, ToolChoice, ToolSpec,
};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The model for `provider`, or `None` (after saying so on stderr) when its key is not set.
fn real_model(provider: Provider, key: &str, model: &str, default_model: &str, base_url: &str) -> Option<Model> {
    if var(key).is_none() {
        let key_owner = if provider == Provider::Anthropic {
            "Anthropic"
        } else {
            "OpenAI"
        };
        // Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set {key} (and optionally {model}, {base_url}) to run the real-provider test against {key_owner}"
        );
        return None;
    }
    let mut config =
        ModelConfig::new(provider, var(model).unwrap_or_else(|| default_model.to_owned())).with_api_key_env(key);
    if let Some(url) = var(base_url) {
        config = config.with_base_url(url);
    }
    Some(config.build().expect("a model from the environment"))
}

fn add_tool() -> ToolSpec {
    ToolSpec {
        name: "add".into(),
        description: "Adds two integers.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"]
        }),
    }
}

/// A city, as the model must describe it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct City {
    /// The city's name.
    name: String,
    /// The country it is in.
    country: String,
}

async fn exercise(model: Model) {
    // A whole answer.
    let hello = ChatRequest::new(vec![
        Message::system("You answer with one word."),
        Message::user("Say: pong"),
    ])
    .with_max_tokens(20);
    let answer = model.chat(&hello).await.expect("a chat");
    assert!(answer.text().to_lowercase().contains("pong"), "{answer:?}");
    assert!(
        answer.usage.input_tokens > 0 && answer.usage.output_tokens > 0,
        "{answer:?}"
    );

    // A stream, folded.
    let streamed = model::collect(model.stream(&hello).await.expect("a stream"), model.name())
        .await
        .expect("a complete stream");
    assert!(streamed.text().to_lowercase().contains("pong"), "{streamed:?}");
    assert!(
        streamed.usage.output_tokens > 0,
        "the usage chunk arrived: {streamed:?}"
    );

    // A tool round trip: the provider's ids go back with the results; a second call left
    // dangling is closed by the model, and the provider accepts the history.
    let mut request = ChatRequest::new(vec![Message::user("What is 20 + 22? Use the add tool.")])
        .with_tools(vec![add_tool()])
        .with_tool_choice(ToolChoice::Required)
        .with_max_tokens(200);
    let call = model.chat(&request).await.expect("a tool call");
    assert_eq!(call.stop_reason, StopReason::ToolUse, "{call:?}");
    let (id, name, _) = call.tool_uses().next().expect("a tool use");
    assert_eq!(name, "add");
    let id = id.to_owned();
    request.messages.push(call.to_message());
    request
        .messages
        .push(Message::tool_results(vec![ContentBlock::tool_result(id, "42")]));
    request.tool_choice = Some(ToolChoice::None);
    let answer = model.chat(&request).await.expect("an answer after the tool result");
    assert!(answer.text().contains("42"), "{answer:?}");

    let mut dangling = request.clone();
    dangling.messages.truncate(2); // the result is lost: an interrupted turn
    dangling.tool_choice = Some(ToolChoice::None);
    model.chat(&dangling).await.expect("the dangling call was closed");

    // Structured output.
    let city = model
        .chat_structured::<City>(&ChatRequest::new(vec![Message::user(
            "The capital of France, as JSON.",
        )]))
        .await
        .expect("a structured answer");
    assert_eq!(city.value.name, "Paris");
    assert!(city.value.country.contains("France"), "{:?}", city.value);
}

#[tokio::test]
async fn openai() {
    if let Some(model) = real_model(
        Provider::OpenAi,
        "OPENAI_API_KEY",
        "WARDEN_TEST_OPENAI_MODEL",
        "gpt-4o-mini",
        "OPENAI_BASE_URL",
    ) {
        exercise(model).await;
    }
}

#[tokio::test]
async fn anthropic() {
    if let Some(model) = real_model(
        Provider::Anthropic,
        "ANTHROPIC_API_KEY",
        "WARDEN_TEST_ANTHROPIC_MODEL",
        "claude-haiku-4-5",
        "ANTHROPIC_BASE_URL",
    ) {
        exercise(model).await;
    }
}
