//! User code that fails inside an agent never wedges it or kills it: a behaviour that
//! panics (building its turn or running it) fails that turn with a typed error and the queue
//! moves on; an observer that panics is caught; an observer that blocks holds up nothing
//! but itself, and what it misses is counted.

#[path = "support/agent.rs"]
mod support;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use warden_agents::agent::{Activity, Agent, AgentError, AgentEvent, AgentEventKind, Outcome, TurnError};
use warden_agents::message::AgentMessage;

use support::{DEADLINE, root, scripted};

/// Whether `answer` is the typed failure of a turn that panicked.
fn is_panicked_turn(answer: &Result<warden_agents::agent::Reply, AgentError>) -> bool {
    matches!(answer, Err(AgentError::Turn(TurnError::Panicked { .. })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_behaviour_that_panics_fails_its_turn_and_the_queue_moves_on() {
    let (behaviour, mut script) = scripted();
    let agent = Agent::new("fragile", behaviour);
    let fragile = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let generation = fragile.generation();

    for text in ["panic while building", "panic"] {
        // A second ask is sent right behind the one that panics (`join!` polls in order).
        let (first, second) = tokio::join!(
            fragile.ask(AgentMessage::user(text), DEADLINE),
            fragile.ask(AgentMessage::user("next"), DEADLINE)
        );
        assert!(is_panicked_turn(&first), "{text}: {first:?}");
        assert_eq!(second.unwrap().text(), "next", "the queue moved on after {text:?}");
        assert_eq!(script.next_started().await, text);
        assert_eq!(script.next_started().await, "next");
    }
    let status = fragile.status().await.unwrap();
    assert_eq!(
        (status.activity, status.queued, status.consecutive_failures),
        (Activity::Idle, 0, 0)
    );
    assert_eq!(
        fragile.generation(),
        generation,
        "no crash, no restart: the turns failed, not the agent"
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_that_always_panics_neither_wedges_nor_kills_the_agent() {
    let (behaviour, mut script) = scripted();
    let agent = Agent::new("observed", behaviour).observer(|_: &AgentEvent| panic!("the observer panics"));
    let observed = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let generation = observed.generation();

    assert_eq!(
        observed.ask(AgentMessage::user("one"), DEADLINE).await.unwrap().text(),
        "one"
    );
    // An interrupt emits `Interrupted` after the turn: the observer panics on it too.
    let hanging = {
        let observed = observed.clone();
        tokio::spawn(async move { observed.ask(AgentMessage::user("hang"), DEADLINE).await })
    };
    assert_eq!(script.next_started().await, "one");
    assert_eq!(script.next_started().await, "hang");
    assert!(observed.interrupt().await.unwrap());
    assert_eq!(hanging.await.unwrap().unwrap().outcome, Outcome::Interrupted);
    assert_eq!(script.next_cut().await, "hang");

    assert_eq!(
        observed.ask(AgentMessage::user("two"), DEADLINE).await.unwrap().text(),
        "two"
    );
    assert_eq!(observed.status().await.unwrap().activity, Activity::Idle);
    assert_eq!(observed.generation(), generation, "never restarted");
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_blocked_observer_holds_up_nothing_and_what_it_misses_is_counted() {
    let (behaviour, _script) = scripted();
    // The observer blocks its thread until the test drops `release`, then forwards events.
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = Arc::new(Mutex::new(blocked));
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<AgentEventKind>();
    let observer = move |e: &AgentEvent| {
        let _ = blocked.lock().unwrap().recv();
        let _ = seen_tx.send(e.kind.clone());
    };
    let agent = Agent::new("watched", behaviour).observer(observer).observer_queue(2);
    let watched = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    // Each turn emits two events; the queue holds two, so most are dropped.
    for i in 0..10 {
        let text = format!("task {i}");
        assert_eq!(
            watched.ask(AgentMessage::user(&text), DEADLINE).await.unwrap().text(),
            text
        );
    }
    let dropped = watched.status().await.unwrap().events_dropped;
    assert!(dropped >= 10, "dropped {dropped}");

    drop(release);
    let reported = tokio::time::timeout(DEADLINE, async {
        loop {
            if let AgentEventKind::EventsDropped { count } = seen.recv().await.expect("observer alive") {
                return count;
            }
        }
    })
    .await
    .expect("the drops were reported");
    assert_eq!(reported, dropped, "every drop is reported once the observer catches up");
    root.stop().await;
}
