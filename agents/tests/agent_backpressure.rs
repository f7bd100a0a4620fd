//! An agent's queue has a bound: past it a tell fails at once and hands its task back, a
//! `try_ask` fails at once, an `ask` waits for room within its deadline, and control
//! messages are never refused. Nothing is lost silently.

#[path = "support/agent.rs"]
mod support;

use std::time::Duration;

use warden_agents::agent::{Agent, AgentError};
use warden_agents::message::AgentMessage;

use support::{DEADLINE, root, scripted};

/// The task an `Overloaded` error hands back.
fn handed_back(error: AgentError) -> AgentMessage {
    match error {
        AgentError::Overloaded { task, capacity, .. } => {
            assert_eq!(capacity, 4);
            *task
        }
        other => panic!("expected Overloaded, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_past_the_capacity_are_refused_at_once_and_handed_back() {
    let (behaviour, mut script) = scripted();
    let agent = Agent::new("slow", behaviour).queue_capacity(4);
    let slow = agent.handle();
    assert_eq!(slow.queue_capacity(), 4);
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    // One turn runs (held at the gate), three wait: four in the agent's hands.
    for _ in 0..4 {
        slow.tell(AgentMessage::user("gate")).unwrap();
    }
    assert_eq!(script.next_started().await, "gate");
    const REFUSED: usize = 100_000;
    for i in 0..REFUSED {
        let task = AgentMessage::user(format!("extra {i}"));
        let id = task.id;
        let back = handed_back(slow.tell(task).unwrap_err());
        assert_eq!(
            (back.id, back.text()),
            (id, format!("extra {i}")),
            "the same task comes back"
        );
    }
    assert_eq!(slow.load(), 4);

    // Control messages still get through while the queue is full.
    let status = slow.status().await.unwrap();
    assert_eq!(status.queued, 3);
    assert!(slow.interrupt().await.is_ok());

    // The interrupt ended the running turn; three gates remain. Let them all finish:
    // the queue drains and takes tasks again.
    script.gate.add_permits(3);
    let reply = slow.ask(AgentMessage::user("after"), DEADLINE).await.unwrap();
    assert_eq!(reply.text(), "after");
    assert_eq!(script.turns(), 5, "four gates and the ask, none of the refused tells");
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_ask_fails_at_once_and_ask_waits_for_room_within_its_deadline() {
    let (behaviour, mut script) = scripted();
    let agent = Agent::new("slow", behaviour).queue_capacity(4);
    let slow = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    for _ in 0..4 {
        slow.tell(AgentMessage::user("gate")).unwrap();
    }
    assert_eq!(script.next_started().await, "gate");

    let e = slow.try_ask(AgentMessage::user("now"), DEADLINE).await.unwrap_err();
    assert_eq!(handed_back(e).text(), "now");
    assert!(
        slow.try_ask(AgentMessage::user("x"), DEADLINE)
            .await
            .unwrap_err()
            .was_not_delivered()
    );

    // No room before the deadline: the task is handed back, not "may have acted".
    let e = slow
        .ask(AgentMessage::user("short"), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(handed_back(e).text(), "short");

    // Room comes within the deadline: the ask goes through and is answered.
    let waiting = tokio::spawn({
        let slow = slow.clone();
        async move { slow.ask(AgentMessage::user("patient"), DEADLINE).await }
    });
    script.gate.add_permits(4);
    assert_eq!(waiting.await.unwrap().unwrap().text(), "patient");
    root.stop().await;
}
