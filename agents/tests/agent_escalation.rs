//! An agent whose model or tool keeps failing escalates an AgentTrouble through the tree,
//! with what it was doing, to a handler above that can re-plan.

#[path = "support/agent.rs"]
mod support;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden_agents::agent::{Agent, AgentError, AgentEventKind, AgentTrouble, TurnError};
use warden_agents::message::AgentMessage;
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault, ScriptedCall};
use warden_supervisor::{Escalation, Strategy, Supervisor};
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

use support::{DEADLINE, model, next_escalation, recorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_keeps_failing_escalates_through_the_tree() {
    let fake = FakeProvider::start().await;
    fake.set_default_reply(Fault::Status(400));
    let (observer, mut events) = recorder();
    let agent = Agent::new("analyst", ReAct::builder(model(&fake)).build())
        .escalate_after(2)
        .observer(observer);
    let analyst = agent.handle();
    // The agent's own supervisor has no handler: the escalation goes on to the root's.
    let (tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .escalation_handler(tx)
        .child(Supervisor::builder("team").child(agent.child_spec()).into_child())
        .spawn()
        .await
        .unwrap();

    let first = analyst
        .ask(AgentMessage::user("analyse Q1"), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(first, AgentError::Turn(TurnError::Model(_))));
    assert_eq!(analyst.status().await.unwrap().consecutive_failures, 1);
    assert!(escalations.try_recv().is_err(), "one failure is not escalated");
    let second = analyst
        .ask(AgentMessage::user("analyse Q2"), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(second, AgentError::Turn(TurnError::Model(_))));

    let escalation = next_escalation(&mut escalations).await;
    assert_eq!(escalation.origin().as_str(), "root/team/analyst");
    assert_eq!(
        escalation.route().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        ["root/team"]
    );
    let trouble = escalation.concern::<AgentTrouble>().unwrap();
    assert_eq!(&*trouble.agent, "analyst");
    assert_eq!(trouble.path.as_ref().unwrap().as_str(), "root/team/analyst");
    assert_eq!(trouble.task.text(), "analyse Q2");
    assert_eq!(trouble.consecutive_failures, 2);
    assert!(matches!(&trouble.error, TurnError::Model(e) if e.status() == Some(400)));
    events
        .wait_for("analyst", |k| {
            matches!(
                k,
                AgentEventKind::Escalated {
                    consecutive_failures: 2
                }
            )
        })
        .await;
    // The count starts again after an escalation, and after a success.
    assert_eq!(analyst.status().await.unwrap().consecutive_failures, 0);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_keeps_failing_ends_the_turn_and_escalates() {
    let toolkit = Toolkit::new().tool(tool_fn("flaky", "Always fails.", |_: Value| async move {
        Err::<Value, _>(ToolError::permanent("database unreachable"))
    }));
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let fake = FakeProvider::start().await;
    fake.set_default_reply(Answer::ToolCalls(vec![ScriptedCall::new("flaky", json!({}))]));
    let agent = Agent::new(
        "loader",
        ReAct::builder(model(&fake))
            .tools(toolkit, executor.client())
            .max_tool_failures(2)
            .build(),
    )
    .escalate_after(1);
    let (root, mut escalations) = support::root(vec![executor.child_spec("tools"), agent.child_spec()]).await;

    let err = agent
        .handle()
        .ask(AgentMessage::user("load the data"), DEADLINE)
        .await
        .unwrap_err();
    let AgentError::Turn(TurnError::ToolFailing {
        tool,
        failures,
        last_error,
    }) = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((tool.as_str(), *failures), ("flaky", 2));
    assert!(last_error.to_string().contains("database unreachable"));
    assert_eq!(fake.request_count(), 2);

    let escalation = next_escalation(&mut escalations).await;
    let trouble = escalation.concern::<AgentTrouble>().unwrap();
    assert_eq!(trouble.task.text(), "load the data");
    assert!(matches!(&trouble.error, TurnError::ToolFailing { tool, .. } if tool == "flaky"));
    assert_eq!(agent.handle().status().await.unwrap().memory_messages, 5);
    root.stop().await;
}
