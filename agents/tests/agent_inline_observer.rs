//! `Agent::inline_observer`: the observer is called where each event happens, with no queue:
//! a turn's events are all seen, in order, by the time its answer is back, and an observer
//! that panics costs that event only.

#[path = "support/agent.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use warden_agents::agent::{Agent, AgentEventKind};
use warden_agents::message::AgentMessage;
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider};

use support::{DEADLINE, model, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_observer_sees_a_turn_before_its_answer_and_survives_its_own_panic() {
    let fake = FakeProvider::start().await;
    fake.set_default_reply(Answer::text("done"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let panicked = Arc::new(AtomicBool::new(false));
    let (record, flag) = (seen.clone(), panicked.clone());
    let agent = Agent::new("clerk", ReAct::builder(model(&fake)).build()).inline_observer(move |event| {
        let name = match &event.kind {
            AgentEventKind::Started { .. } => "started",
            AgentEventKind::TurnStarted { .. } => "turn",
            AgentEventKind::ModelCalled { .. } => "model",
            AgentEventKind::TurnEnded { .. } => "ended",
            _ => "other",
        };
        record.lock().unwrap().push(name);
        if name == "model" && !flag.swap(true, Ordering::SeqCst) {
            panic!("an observer that panics once");
        }
    });
    let clerk = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    clerk.ask(AgentMessage::user("one"), DEADLINE).await.unwrap();
    assert!(panicked.load(Ordering::SeqCst));
    // Inline: the turn's end was seen before the answer came back.
    assert_eq!(*seen.lock().unwrap(), ["started", "turn", "model", "ended"]);
    let reply = clerk.ask(AgentMessage::user("two"), DEADLINE).await.unwrap();
    assert_eq!(reply.text(), "done");
    assert_eq!(
        *seen.lock().unwrap(),
        ["started", "turn", "model", "ended", "turn", "model", "ended"]
    );
    assert_eq!(clerk.status().await.unwrap().events_dropped, 0);
    root.stop().await;
}
