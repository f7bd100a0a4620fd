//! OpenTelemetry export over real OTLP/HTTP: a collector on 127.0.0.1 (an axum server that
//! decodes the protobuf requests) receives an agent's turn, its model calls and its tool call
//! as one trace, with the GenAI attributes, the model and tool calls children of the turn.

#![cfg(feature = "otel")]

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tracing_subscriber::prelude::*;
use warden_agents::agent::Agent;
use warden_agents::message::AgentMessage;
use warden_agents::model::{Model, OpenAiChat, RetryPolicy};
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, ScriptedCall};
use warden_studio::otel::Otel;
use warden_supervisor::{Strategy, Supervisor};
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

async fn collect(State(spans): State<mpsc::UnboundedSender<Span>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                let _ = spans.send(span);
            }
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

fn attrs(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(AnyValue::StringValue(s)) => s,
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_reaches_the_collector_as_one_trace_with_genai_attributes() {
    // The collector.
    let (tx, mut received) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let app = Router::new().route("/v1/traces", post(collect)).with_state(tx);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let otel = Otel::http(&endpoint, "otel-test").unwrap();
    tracing_subscriber::registry().with(otel.layer()).try_init().unwrap();

    // An agent with a tool, on the fake provider.
    let fake = FakeProvider::start().await;
    fake.push(Answer::ToolCalls(vec![
        ScriptedCall::new("add", json!({"a": 2, "b": 3})).with_id("c1"),
    ]));
    fake.push(Answer::text("It is 5."));
    let toolkit = Toolkit::new().tool(tool_fn("add", "Adds.", |x: AddArgs| async move {
        Ok::<_, ToolError>(x.a + x.b)
    }));
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test")).with_retry(RetryPolicy::new(1));
    let agent = Agent::new("clerk", ReAct::builder(model).tools(toolkit, executor.client()).build());
    let clerk = agent.handle();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .child(executor.child_spec("tools"))
        .child(agent.child_spec())
        .spawn()
        .await
        .unwrap();
    let reply = clerk.ask(AgentMessage::user("2 + 3?"), DEADLINE).await.unwrap();
    assert_eq!(reply.text(), "It is 5.");
    root.stop().await;
    tokio::task::spawn_blocking(move || otel.flush())
        .await
        .unwrap()
        .unwrap();

    // The trace: a turn, two model calls and a tool call under it.
    let mut spans: HashMap<String, Vec<Span>> = HashMap::new();
    let wait = async {
        while !(spans.contains_key("invoke_agent clerk")
            && spans.get("chat gpt-test").is_some_and(|s| s.len() == 2)
            && spans.contains_key("execute_tool add"))
        {
            let span = received.recv().await.unwrap();
            spans.entry(span.name.clone()).or_default().push(span);
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("the collector got only {:?}", spans.keys().collect::<Vec<_>>()));
    let turn = &spans["invoke_agent clerk"][0];
    let turn_attrs = attrs(turn);
    assert_eq!(turn_attrs["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(turn_attrs["gen_ai.agent.name"], "clerk");
    for chat in &spans["chat gpt-test"] {
        let a = attrs(chat);
        assert_eq!(chat.parent_span_id, turn.span_id, "a model call is the turn's child");
        assert_eq!(chat.trace_id, turn.trace_id);
        assert_eq!(a["gen_ai.operation.name"], "chat");
        assert_eq!(a["gen_ai.request.model"], "gpt-test");
        assert_eq!(a["gen_ai.system"], "openai");
        assert!(a["gen_ai.usage.input_tokens"].parse::<u64>().unwrap() > 0, "{a:?}");
        assert_eq!(a["outcome"], "ok");
        assert_eq!(chat.kind, 3, "SPAN_KIND_CLIENT");
    }
    let tool = &spans["execute_tool add"][0];
    let a = attrs(tool);
    assert_eq!(tool.parent_span_id, turn.span_id, "the tool call is the turn's child");
    assert_eq!(tool.trace_id, turn.trace_id);
    assert_eq!((a["gen_ai.tool.name"].as_str(), a["outcome"].as_str()), ("add", "ok"));
    assert_eq!(a["breaker"], "CLOSED");
}
