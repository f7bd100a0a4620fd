//! Human in the loop: a ReAct agent's model calls `ask_human`; the agent suspends (idle,
//! serving control messages) until the answer comes through the escalation's responder or
//! straight through its handle, or fails with a typed error at the deadline.

#[path = "support/agent.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use warden_agents::agent::{
    Activity, Agent, AgentError, AgentEventKind, HumanAnswer, HumanQuestion, Outcome, TurnError,
};
use warden_agents::message::AgentMessage;
use warden_agents::react::{ASK_HUMAN_TOOL, ReAct};
use warden_fake_provider::{Answer, FakeProvider, ScriptedCall};
use warden_supervisor::EscalationError;

use support::{DEADLINE, model, next_escalation, recorder, root, spawn_ask};

fn ask_human_reply(question: &str) -> Answer {
    Answer::ToolCalls(vec![
        ScriptedCall::new(ASK_HUMAN_TOOL, json!({"question": question})).with_id("h1"),
    ])
}

fn tool_result_of(fake: &FakeProvider, request: usize) -> String {
    let requests = fake.requests();
    let tool = requests[request]
        .messages()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()
        .clone();
    tool["content"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_comes_back_through_the_escalation() {
    let fake = FakeProvider::start().await;
    fake.push(ask_human_reply("Deploy to production?"));
    fake.push(Answer::text("Deployed."));
    let agent = Agent::new("deployer", ReAct::builder(model(&fake)).human(DEADLINE).build());
    let deployer = agent.handle();
    let (root, mut escalations) = root(vec![agent.child_spec()]).await;

    let asked = spawn_ask(&deployer, "ship it");
    let mut escalation = next_escalation(&mut escalations).await;
    assert_eq!(escalation.origin().as_str(), "root/deployer");
    let question = escalation.concern::<HumanQuestion>().unwrap().clone();
    assert_eq!(&*question.agent, "deployer");
    assert_eq!(question.question, "Deploy to production?");
    // Suspended, and still answering control messages.
    assert_eq!(deployer.status().await.unwrap().activity, Activity::WaitingForHuman);

    escalation.answer(HumanAnswer::new("yes, go")).unwrap();
    let reply = asked.await.unwrap().unwrap();
    assert_eq!(
        (reply.outcome, reply.text()),
        (Outcome::Completed, "Deployed.".to_owned())
    );
    assert_eq!(tool_result_of(&fake, 1), "yes, go");
    // The tool is offered to the model.
    let tools = fake.requests()[0].body["tools"].clone();
    assert_eq!(tools[0]["function"]["name"], ASK_HUMAN_TOOL);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_comes_straight_through_the_handle() {
    let fake = FakeProvider::start().await;
    fake.push(ask_human_reply("Which colour?"));
    fake.push(Answer::text("Blue it is."));
    let (observer, mut events) = recorder();
    let agent = Agent::new("painter", ReAct::builder(model(&fake)).human(DEADLINE).build()).observer(observer);
    // No supervisor: nobody to escalate to, the handle is the only way in.
    let (painter, _join) = agent.spawn().await.unwrap();

    let asked = spawn_ask(&painter, "paint the door");
    let waiting = events
        .wait_for("painter", |k| matches!(k, AgentEventKind::WaitingForHuman { .. }))
        .await;
    assert_eq!(
        waiting,
        AgentEventKind::WaitingForHuman {
            question: "Which colour?".into()
        }
    );
    painter.human_input("blue").unwrap();
    assert_eq!(asked.await.unwrap().unwrap().text(), "Blue it is.");
    assert_eq!(tool_result_of(&fake, 1), "blue");
    painter.actor().unwrap().stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_by_the_deadline_is_a_typed_error_and_the_memory_stays_valid() {
    let fake = FakeProvider::start().await;
    fake.push(ask_human_reply("May I?"));
    let deadline = Duration::from_millis(300);
    let agent = Agent::new("patient", ReAct::builder(model(&fake)).human(deadline).build());
    let patient = agent.handle();
    let (root, mut escalations) = root(vec![agent.child_spec()]).await;

    let asked = spawn_ask(&patient, "do it");
    // The question arrives; nobody answers it.
    let mut escalation = next_escalation(&mut escalations).await;
    let err = asked.await.unwrap().unwrap_err();
    assert!(
        matches!(err, AgentError::Turn(TurnError::HumanTimeout(d)) if d == deadline),
        "{err:?}"
    );
    // The agent stopped waiting: a late answer is refused.
    assert_eq!(
        escalation.answer(HumanAnswer::new("late")),
        Err(EscalationError::RequesterGone)
    );

    fake.push(Answer::text("fine"));
    patient.ask(AgentMessage::user("next"), DEADLINE).await.unwrap();
    assert!(tool_result_of(&fake, 1).starts_with("error (human_timeout)"));
    root.stop().await;
}
