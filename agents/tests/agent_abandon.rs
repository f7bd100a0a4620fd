//! Work nobody waits for is not done, and work of a killed agent stops: asks whose askers
//! gave up never start a turn, a turn whose asker gives up is cut short, turns have a
//! deadline of their own, and a kill stops the turn and answers every asker at once,
//! telling "never started" (safe to retry) from "may have acted".

#[path = "support/agent.rs"]
mod support;

use std::time::Duration;

use warden_agents::agent::{Activity, Agent, AgentError, AgentEventKind, DropReason, TurnEnd, TurnError, TurnFailure};
use warden_agents::message::AgentMessage;

use support::{DEADLINE, recorder, root, scripted, spawn_ask};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_whose_askers_gave_up_never_start_a_turn() {
    let (behaviour, mut script) = scripted();
    let (observer, mut events) = recorder();
    let agent = Agent::new("busy", behaviour).observer(observer);
    let busy = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    // A tell holds the agent (nobody waits for a tell, so nothing cuts it short).
    busy.tell(AgentMessage::user("gate")).unwrap();
    assert_eq!(script.next_started().await, "gate");
    let asks = (0..20).map(|i| busy.ask(AgentMessage::user(format!("ask {i}")), Duration::from_millis(20)));
    for answer in futures::future::join_all(asks).await {
        assert!(matches!(answer, Err(AgentError::Timeout(_))), "{answer:?}");
    }

    script.gate.add_permits(1);
    // Tasks are taken in order: once this one is answered, the 20 were dealt with.
    let last = busy.ask(AgentMessage::user("last"), DEADLINE).await.unwrap();
    assert_eq!(last.text(), "last");
    assert_eq!(script.turns(), 2, "only the tell and the last ask ran a turn");
    for _ in 0..20 {
        let dropped = events
            .wait_for("busy", |k| matches!(k, AgentEventKind::TaskDropped { .. }))
            .await;
        assert!(
            matches!(
                dropped,
                AgentEventKind::TaskDropped {
                    ask: true,
                    reason: DropReason::AskerGone,
                    ..
                }
            ),
            "{dropped:?}"
        );
    }
    assert_eq!(busy.load(), 0);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_whose_asker_gives_up_is_cut_short() {
    let (behaviour, mut script) = scripted();
    let (observer, mut events) = recorder();
    let agent = Agent::new("thinker", behaviour).observer(observer);
    let thinker = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    // The deadline passes mid-turn.
    let answer = thinker.ask(AgentMessage::user("hang"), Duration::from_millis(50)).await;
    assert!(matches!(answer, Err(AgentError::Timeout(_))), "{answer:?}");
    assert_eq!(script.next_cut().await, "hang");
    let ended = events
        .wait_for("thinker", |k| matches!(k, AgentEventKind::TurnEnded { .. }))
        .await;
    assert!(
        matches!(
            ended,
            AgentEventKind::TurnEnded {
                end: TurnEnd::Abandoned(_),
                ..
            }
        ),
        "{ended:?}"
    );

    // The asker's future is dropped mid-turn.
    let asked = spawn_ask(&thinker, "hang");
    assert_eq!(script.next_started().await, "hang");
    assert_eq!(script.next_started().await, "hang");
    asked.abort();
    assert_eq!(script.next_cut().await, "hang");

    assert_eq!(
        thinker.ask(AgentMessage::user("next"), DEADLINE).await.unwrap().text(),
        "next"
    );
    assert_eq!(
        thinker.status().await.unwrap().consecutive_failures,
        0,
        "abandoned is no failure"
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_deadline_bounds_tells_and_asks_alike() {
    let (behaviour, mut script) = scripted();
    let (observer, mut events) = recorder();
    let deadline = Duration::from_millis(50);
    let agent = Agent::new("bounded", behaviour)
        .observer(observer)
        .turn_deadline(deadline);
    let bounded = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    bounded.tell(AgentMessage::user("hang")).unwrap();
    assert_eq!(script.next_cut().await, "hang");
    let ended = events
        .wait_for("bounded", |k| matches!(k, AgentEventKind::TurnEnded { .. }))
        .await;
    assert!(
        matches!(
            ended,
            AgentEventKind::TurnEnded {
                end: TurnEnd::Failed(TurnFailure::DeadlineExceeded),
                ..
            }
        ),
        "{ended:?}"
    );

    let err = bounded.ask(AgentMessage::user("hang"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, AgentError::Turn(TurnError::DeadlineExceeded(d)) if d == deadline) && err.is_transient(),
        "{err:?}"
    );
    assert_eq!(
        bounded.ask(AgentMessage::user("quick"), DEADLINE).await.unwrap().text(),
        "quick"
    );
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_stops_the_turn_and_answers_every_asker_at_once() {
    let (behaviour, mut script) = scripted();
    let (observer, mut events) = recorder();
    let agent = Agent::new("victim", behaviour).observer(observer);
    let victim = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let generation = victim.generation();

    let in_flight = spawn_ask(&victim, "hang");
    assert_eq!(script.next_started().await, "hang");
    // Polled once, the ask is sent; the tell and the status call behind it find both queued.
    let queued = victim.ask(AgentMessage::user("queued"), DEADLINE);
    tokio::pin!(queued);
    assert!(futures::poll!(&mut queued).is_pending());
    victim.tell(AgentMessage::user("told")).unwrap();
    assert_eq!(victim.status().await.unwrap().queued, 2);

    victim.actor().unwrap().kill();
    // The turn in flight stops (it does not keep calling models and tools)...
    assert_eq!(script.next_cut().await, "hang");
    // ... its asker hears it may have acted, the queued asker that it never started.
    let in_flight = in_flight.await.unwrap().unwrap_err();
    assert!(
        matches!(in_flight, AgentError::AgentDown(_)) && !in_flight.was_not_delivered(),
        "{in_flight:?}"
    );
    let queued = queued.await.unwrap_err();
    assert!(
        matches!(queued, AgentError::NotStarted(_)) && queued.was_not_delivered(),
        "{queued:?}"
    );
    // The dropped tell is reported.
    let dropped = events
        .wait_for("victim", |k| {
            matches!(k, AgentEventKind::TaskDropped { ask: false, .. })
        })
        .await;
    assert!(
        matches!(
            dropped,
            AgentEventKind::TaskDropped {
                reason: DropReason::AgentStopped,
                ..
            }
        ),
        "{dropped:?}"
    );
    assert_eq!(victim.load(), 0);

    victim.wait_started(generation, DEADLINE).await.unwrap();
    assert_eq!(
        victim.ask(AgentMessage::user("again"), DEADLINE).await.unwrap().text(),
        "again"
    );
    assert_eq!(script.turns(), 2, "the queued ask and the tell never ran");
    assert_eq!(victim.status().await.unwrap().activity, Activity::Idle);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_killed_agents_turn_stops_at_once_even_while_its_supervisor_is_busy() {
    // The root's escalation handler blocks its thread, and so the root, until released.
    let (stalled_tx, mut stalled) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = std::sync::Mutex::new(blocked);
    let handler = move |_: warden_supervisor::Escalation| {
        let _ = stalled_tx.send(());
        let _ = blocked.lock().unwrap().recv();
        warden_supervisor::Disposition::Handled
    };
    let (behaviour, mut script) = scripted();
    let victim = Agent::new("victim", behaviour.clone());
    let raiser = Agent::new("raiser", behaviour);
    let root = warden_supervisor::Supervisor::builder("root")
        .escalation_handler(handler)
        .children([victim.child_spec(), raiser.child_spec()])
        .spawn()
        .await
        .unwrap();
    let victim = victim.handle();

    let in_flight = spawn_ask(&victim, "hang");
    assert_eq!(script.next_started().await, "hang");
    raiser.handle().tell(AgentMessage::user("escalate")).unwrap();
    stalled.recv().await.unwrap();

    // The root cannot take the victim's exit (nor drop its state) yet: the turn stops anyway.
    victim.actor().unwrap().kill();
    assert_eq!(script.next_cut().await, "hang");

    drop(release);
    let in_flight = in_flight.await.unwrap().unwrap_err();
    assert!(matches!(in_flight, AgentError::AgentDown(_)), "{in_flight:?}");
    root.stop().await;
}
