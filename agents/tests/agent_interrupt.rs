//! Interrupting an agent's turn: during a model call and during tool calls. The asker gets
//! an Interrupted reply, open tool calls are closed with "interrupted" results, and the
//! next turn's history is valid.

#[path = "support/agent.rs"]
mod support;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden_agents::agent::{Activity, Agent, AgentEventKind, Outcome};
use warden_agents::message::AgentMessage;
use warden_agents::model::INTERRUPTED_TOOL_RESULT;
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault, ScriptedCall};
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

use support::{DEADLINE, model, recorder, root, spawn_ask};

/// A toolkit with one tool that says it started, then never returns, and its executor.
fn never_returning_tool(name: &str) -> (Toolkit, ToolExecutor, mpsc::UnboundedReceiver<()>) {
    let (started_tx, started) = mpsc::unbounded_channel::<()>();
    let toolkit = Toolkit::new().tool(tool_fn(name.to_owned(), "Never finishes.", move |_: Value| {
        let started_tx = started_tx.clone();
        async move {
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
            Ok::<_, ToolError>("never")
        }
    }));
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    (toolkit, executor, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupting_a_model_call_answers_interrupted_and_the_agent_carries_on() {
    let fake = FakeProvider::start().await;
    // A default, not a scripted reply: the stalled request's handler may run late, and must
    // not take a reply meant for the next request.
    fake.set_default_reply(Fault::Stall);
    let (observer, mut events) = recorder();
    let agent = Agent::new("thinker", ReAct::builder(model(&fake)).build()).observer(observer);
    let thinker = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    assert!(!thinker.interrupt().await.unwrap(), "nothing to interrupt when idle");
    let asked = spawn_ask(&thinker, "think hard");
    fake.wait_for_requests(1).await;
    assert!(thinker.interrupt().await.unwrap());
    let reply = asked.await.unwrap().unwrap();
    assert_eq!(reply.outcome, Outcome::Interrupted);
    assert!(reply.message.content.is_empty());
    assert_eq!(
        events
            .wait_for("thinker", |k| matches!(k, AgentEventKind::Interrupted { .. }))
            .await,
        AgentEventKind::Interrupted { closed_tool_calls: 0 }
    );

    fake.set_default_reply(Answer::text("ok"));
    let reply = thinker.ask(AgentMessage::user("simpler"), DEADLINE).await.unwrap();
    assert_eq!(reply.outcome, Outcome::Completed);
    assert_eq!(thinker.status().await.unwrap().activity, Activity::Idle);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupting_tool_calls_closes_every_open_call() {
    let (toolkit, executor, mut started) = never_returning_tool("slow");
    let fake = FakeProvider::start().await;
    fake.push(Answer::TextAndToolCalls(
        "Working on it.".into(),
        vec![
            ScriptedCall::new("slow", json!({})).with_id("call_a"),
            ScriptedCall::new("slow", json!({})).with_id("call_b"),
        ],
    ));
    let (observer, mut events) = recorder();
    let agent = Agent::new(
        "busy",
        ReAct::builder(model(&fake)).tools(toolkit, executor.client()).build(),
    )
    .observer(observer);
    let busy = agent.handle();
    let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

    let asked = spawn_ask(&busy, "do both");
    started.recv().await.unwrap();
    started.recv().await.unwrap();
    assert!(busy.interrupt().await.unwrap());
    assert_eq!(asked.await.unwrap().unwrap().outcome, Outcome::Interrupted);
    assert_eq!(
        events
            .wait_for("busy", |k| matches!(k, AgentEventKind::Interrupted { .. }))
            .await,
        AgentEventKind::Interrupted { closed_tool_calls: 2 }
    );

    // The next request carries a result for each call, saying it was interrupted.
    fake.push(Answer::text("Understood."));
    busy.ask(AgentMessage::user("never mind"), DEADLINE).await.unwrap();
    let requests = fake.requests();
    let results: Vec<(&str, &str)> = requests[1]
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| (m["tool_call_id"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [("call_a", INTERRUPTED_TOOL_RESULT), ("call_b", INTERRUPTED_TOOL_RESULT)]
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_stops_only_the_turn_in_flight() {
    let (toolkit, executor, mut started) = never_returning_tool("block");
    let fake = FakeProvider::start().await;
    fake.push(Answer::tool_call("block", json!({})));
    fake.push(Answer::text("second done"));
    let agent = Agent::new(
        "queue",
        ReAct::builder(model(&fake)).tools(toolkit, executor.client()).build(),
    );
    let queue = agent.handle();
    let (root, _escalations) = root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

    let first = spawn_ask(&queue, "first");
    started.recv().await.unwrap();
    let second = queue.ask(AgentMessage::user("second"), DEADLINE);
    tokio::pin!(second);
    assert!(futures::poll!(&mut second).is_pending());
    assert_eq!(queue.status().await.unwrap().queued, 1);
    assert!(queue.interrupt().await.unwrap());
    assert_eq!(first.await.unwrap().unwrap().outcome, Outcome::Interrupted);
    let second = second.await.unwrap();
    assert_eq!(
        (second.outcome, second.text()),
        (Outcome::Completed, "second done".to_owned())
    );
    root.stop().await;
}
