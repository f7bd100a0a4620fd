//! The ReAct loop over HTTP to the fake provider, with tools run by a real ToolExecutor
//! under a real Supervisor: parallel tool calls, permissions, tools the agent was not
//! offered, the iteration limit, structured output, model failures, the memory window, and
//! token counts that saturate.

#[path = "support/agent.rs"]
mod support;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use warden_agents::agent::{Agent, AgentError, Outcome, TurnError};
use warden_agents::memory::MemoryLimit;
use warden_agents::message::AgentMessage;
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault, ScriptedCall};
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

use support::{DEADLINE, model, root};

#[derive(Deserialize, JsonSchema)]
struct CityArgs {
    city: String,
}

/// The `tool` messages of a recorded OpenAI request, as `(tool_call_id, content)`.
fn tool_messages(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_run_in_parallel_through_the_executor_and_their_results_reach_the_model() {
    // Each call waits at the barrier for the other: run one after the other, they would hang.
    let barrier = Arc::new(Barrier::new(2));
    let toolkit = Toolkit::new().tool(tool_fn("weather", "Weather in a city.", move |a: CityArgs| {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            Ok::<_, ToolError>(format!("sunny in {}", a.city))
        }
    }));
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let fake = FakeProvider::start().await;
    fake.push(Answer::ToolCalls(vec![
        ScriptedCall::new("weather", json!({"city": "Paris"})).with_id("call_p"),
        ScriptedCall::new("weather", json!({"city": "Rome"})).with_id("call_r"),
    ]));
    fake.push(Answer::text("Sunny in both."));
    let agent = Agent::new(
        "forecaster",
        ReAct::builder(model(&fake))
            .system("Use tools.")
            .tools(toolkit, executor.client())
            .build(),
    );
    let forecaster = agent.handle();
    let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

    let reply = forecaster
        .ask(AgentMessage::user("Weather in Paris and Rome?"), DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.outcome, Outcome::Completed);
    assert_eq!(reply.iterations, 2);
    assert_eq!(reply.text(), "Sunny in both.");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["tools"][0]["function"]["name"], "weather");
    assert_eq!(
        tool_messages(requests[1].messages()),
        [
            ("call_p".to_owned(), "sunny in Paris".to_owned()),
            ("call_r".to_owned(), "sunny in Rome".to_owned())
        ]
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_called_with_the_agents_permissions() {
    let toolkit = Toolkit::new().tool(
        tool_fn("secret", "Reads the secret.", |_: Value| async move {
            Ok::<_, ToolError>("42")
        })
        .permission("secrets:read"),
    );
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let fake = FakeProvider::start().await;
    let build = |name: &str, granted: bool| {
        let mut react = ReAct::builder(model(&fake)).tools(toolkit.clone(), executor.client());
        if granted {
            react = react.permission("secrets:read");
        }
        Agent::new(name, react.build())
    };
    let (trusted, untrusted) = (build("trusted", true), build("untrusted", false));
    let (root, _escalations) = root(vec![
        executor.child_spec("tools"),
        trusted.child_spec(),
        untrusted.child_spec(),
    ])
    .await;

    for (agent, expected) in [(&untrusted, "error (permission_denied)"), (&trusted, "42")] {
        fake.clear_requests();
        fake.push(Answer::ToolCalls(vec![
            ScriptedCall::new("secret", json!({})).with_id("c1"),
        ]));
        fake.push(Answer::text("done"));
        let reply = agent
            .handle()
            .ask(AgentMessage::user("secret?"), DEADLINE)
            .await
            .unwrap();
        assert_eq!(reply.outcome, Outcome::Completed);
        let results = tool_messages(fake.requests()[1].messages());
        assert!(results[0].1.starts_with(expected), "{}: {results:?}", agent.name());
    }
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_stops_calling_tools_ends_at_max_iterations() {
    let toolkit = Toolkit::new().tool(tool_fn("noop", "Does nothing.", |_: Value| async move {
        Ok::<_, ToolError>("nothing")
    }));
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let fake = FakeProvider::start().await;
    fake.set_default_reply(Answer::TextAndToolCalls(
        "Still thinking.".into(),
        vec![ScriptedCall::new("noop", json!({}))],
    ));
    let agent = Agent::new(
        "looper",
        ReAct::builder(model(&fake))
            .tools(toolkit, executor.client())
            .max_iterations(3)
            .build(),
    );
    let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

    let reply = agent.handle().ask(AgentMessage::user("go"), DEADLINE).await.unwrap();
    assert_eq!(reply.outcome, Outcome::MaxIterations);
    assert_eq!(reply.iterations, 3);
    assert_eq!(reply.text(), "Still thinking.");
    assert_eq!(fake.request_count(), 3);
    // Every call was answered: the next turn's history is valid.
    fake.set_default_reply(Answer::text("ok"));
    let reply = agent.handle().ask(AgentMessage::user("stop"), DEADLINE).await.unwrap();
    assert_eq!(reply.outcome, Outcome::Completed);
    assert_eq!(tool_messages(fake.requests()[3].messages()).len(), 3);
    root.stop().await;
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
struct City {
    name: String,
    population: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_is_checked_and_repaired_once() {
    let fake = FakeProvider::start().await;
    let agent = Agent::new(
        "typist",
        ReAct::builder(model(&fake)).structured_output::<City>().build(),
    );
    let typist = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    fake.push(Answer::text("Lyon has about half a million people."));
    fake.push(Answer::json(json!({"name": "Lyon", "population": 522000})));
    let reply = typist.ask(AgentMessage::user("Lyon?"), DEADLINE).await.unwrap();
    assert_eq!(reply.iterations, 2);
    assert_eq!(
        reply.parse::<City>().unwrap(),
        City {
            name: "Lyon".into(),
            population: 522000
        }
    );
    let requests = fake.requests();
    assert_eq!(requests[0].body["response_format"]["json_schema"]["name"], "City");
    let repair = requests[1].messages().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(repair.starts_with("That answer is not valid"), "{repair}");

    fake.push(Answer::text("no"));
    fake.push(Answer::json(json!({"name": "Lyon"})));
    let err = typist.ask(AgentMessage::user("again"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, AgentError::Turn(TurnError::StructuredOutputInvalid(_))),
        "{err:?}"
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_fails_the_turn_with_a_typed_error() {
    let fake = FakeProvider::start().await;
    fake.push(Fault::Status(400));
    fake.push(Fault::MalformedJson);
    let agent = Agent::new("fragile", ReAct::builder(model(&fake)).build());
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let fragile = agent.handle();

    let err = fragile.ask(AgentMessage::user("a"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(&err, AgentError::Turn(TurnError::Model(e)) if e.status() == Some(400)),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let err = fragile.ask(AgentMessage::user("b"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(&err, AgentError::Turn(TurnError::Model(e)) if e.kind() == "malformed_response"),
        "{err:?}"
    );
    // Peers' tool blocks are not a task: nothing to answer.
    let mut empty = AgentMessage::user("x");
    empty.content = vec![warden_agents::model::ContentBlock::tool_result("id", "r")];
    assert!(matches!(
        fragile.ask(empty, DEADLINE).await,
        Err(AgentError::Turn(TurnError::EmptyTask))
    ));
    // The agent is fine: the next task works.
    assert_eq!(
        fragile.ask(AgentMessage::user("c"), DEADLINE).await.unwrap().text(),
        "ok"
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_keeps_a_window_of_whole_exchanges() {
    let fake = FakeProvider::start().await;
    let agent = Agent::new("brief", ReAct::builder(model(&fake)).system("S").build()).memory(MemoryLimit::Messages(4));
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    for i in 1..=3 {
        agent
            .handle()
            .ask(AgentMessage::user(format!("q{i}")), DEADLINE)
            .await
            .unwrap();
    }
    let contents: Vec<String> = fake.requests()[2]
        .messages()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    // The system prompt, then q2's exchange and q3: q1's exchange was dropped.
    assert_eq!(contents, ["S", "q2", "ok", "q3"]);
    let status = agent.handle().status().await.unwrap();
    assert_eq!(status.memory_messages, 4);
    assert_eq!(status.turns_completed, 3);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_cannot_call_a_tool_its_agent_was_not_offered() {
    // One executor holds both tools; the agent is offered only `echo`.
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let echo = || tool_fn("echo", "Echoes.", |v: Value| async move { Ok::<_, ToolError>(v) });
    let ran_flag = ran.clone();
    let shared =
        Toolkit::new()
            .tool(echo())
            .tool(tool_fn("delete_everything", "Deletes everything.", move |_: Value| {
                let ran = ran_flag.clone();
                async move {
                    ran.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, ToolError>("deleted")
                }
            }));
    let executor = ToolExecutor::new(shared, ToolStack::recommended().build());
    let fake = FakeProvider::start().await;
    fake.push(Answer::ToolCalls(vec![
        ScriptedCall::new("delete_everything", json!({})).with_id("c1"),
    ]));
    fake.push(Answer::text("done"));
    let agent = Agent::new(
        "careful",
        ReAct::builder(model(&fake))
            .tools(Toolkit::new().tool(echo()), executor.client())
            .build(),
    );
    let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

    let reply = agent
        .handle()
        .ask(AgentMessage::user("clean up"), DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.outcome, Outcome::Completed);
    let results = tool_messages(fake.requests()[1].messages());
    assert!(results[0].1.starts_with("error (not_found)"), "{results:?}");
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "the tool never ran");
    root.stop().await;
}

/// A model that asks for a tool, then answers, each time claiming `u64::MAX` tokens.
#[derive(Debug)]
struct Greedy(std::sync::atomic::AtomicBool);

impl warden_agents::model::ChatModel for Greedy {
    fn model_name(&self) -> &str {
        "greedy"
    }

    fn provider_name(&self) -> &'static str {
        "test"
    }

    fn chat<'a>(
        &'a self,
        _req: &'a warden_agents::model::ChatRequest,
    ) -> futures::future::BoxFuture<'a, Result<warden_agents::model::ChatResponse, warden_agents::model::ModelError>>
    {
        use warden_agents::model::{ChatResponse, ContentBlock, StopReason, Usage};
        let first = !self.0.swap(true, std::sync::atomic::Ordering::SeqCst);
        let (content, stop_reason) = if first {
            let call = ContentBlock::ToolUse {
                id: "c1".into(),
                name: "missing".into(),
                input: json!({}),
            };
            (vec![call], StopReason::ToolUse)
        } else {
            (vec![ContentBlock::text("done")], StopReason::EndTurn)
        };
        let usage = Usage {
            input_tokens: u64::MAX,
            output_tokens: u64::MAX,
        };
        Box::pin(async move {
            Ok(ChatResponse {
                content,
                stop_reason,
                usage,
                model: "greedy".into(),
                rate_limits: None,
            })
        })
    }

    fn stream<'a>(
        &'a self,
        _req: &'a warden_agents::model::ChatRequest,
    ) -> futures::future::BoxFuture<'a, Result<warden_agents::model::EventStream, warden_agents::model::ModelError>>
    {
        Box::pin(async {
            Err(warden_agents::model::ModelError::MalformedResponse {
                detail: "no streaming here".into(),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counts_the_provider_claims_saturate_instead_of_overflowing() {
    let model = warden_agents::model::Model::new(Greedy(Default::default()));
    let (greedy, _join) = Agent::new("greedy", ReAct::builder(model).build())
        .spawn()
        .await
        .unwrap();
    let reply = greedy.ask(AgentMessage::user("count"), DEADLINE).await.unwrap();
    assert_eq!((reply.outcome, reply.iterations), (Outcome::Completed, 2));
    assert_eq!(
        (reply.usage.input_tokens, reply.usage.output_tokens),
        (u64::MAX, u64::MAX)
    );
    greedy.actor().unwrap().stop(None);
}

/// `tool_choice` reaches each provider in its own form: a forced choice on the turn's first
/// model call, `auto` after it (so the turn can end); `auto` and `none` on every call.
#[tokio::test]
async fn tool_choice_is_sent_in_each_providers_form() {
    use warden_agents::model::{AnthropicMessages, Model, OpenAiChat, RetryPolicy, ToolChoice};

    let cases = [
        (
            ToolChoice::Tool("weather".into()),
            [
                json!({"type": "function", "function": {"name": "weather"}}),
                json!("auto"),
            ],
            [json!({"type": "tool", "name": "weather"}), json!({"type": "auto"})],
        ),
        (
            ToolChoice::Required,
            [json!("required"), json!("auto")],
            [json!({"type": "any"}), json!({"type": "auto"})],
        ),
        (
            ToolChoice::Auto,
            [json!("auto"), json!("auto")],
            [json!({"type": "auto"}), json!({"type": "auto"})],
        ),
    ];
    for (choice, openai, anthropic) in cases {
        for (anthropic_wire, expected) in [(false, openai), (true, anthropic)] {
            let toolkit = Toolkit::new().tool(tool_fn("weather", "Weather in a city.", |a: CityArgs| async move {
                Ok::<_, ToolError>(format!("sunny in {}", a.city))
            }));
            let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
            let fake = FakeProvider::start().await;
            fake.push(Answer::ToolCalls(vec![ScriptedCall::new(
                "weather",
                json!({"city": "Paris"}),
            )]));
            fake.push(Answer::text("Sunny."));
            let model = if anthropic_wire {
                Model::new(AnthropicMessages::new(fake.base_url_anthropic(), "claude-test"))
            } else {
                Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"))
            }
            .with_retry(RetryPolicy::none());
            let agent = Agent::new(
                "forecaster",
                ReAct::builder(model)
                    .tools(toolkit, executor.client())
                    .tool_choice(choice.clone())
                    .build(),
            );
            let forecaster = agent.handle();
            let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

            let reply = forecaster.ask(AgentMessage::user("Weather?"), DEADLINE).await.unwrap();
            assert_eq!((reply.outcome, reply.iterations), (Outcome::Completed, 2), "{choice:?}");
            let sent: Vec<Value> = fake.requests().iter().map(|r| r.body["tool_choice"].clone()).collect();
            assert_eq!(sent, expected, "{choice:?}, anthropic: {anthropic_wire}");
            root.stop().await;
        }
    }
}
