//! ask and tell against agents under a real supervisor, over HTTP to the fake provider:
//! the reply's addressing, exactly one outcome when the agent is killed mid-ask (telling
//! "may have acted" from "never started"), timeouts, control messages served while a turn
//! is in flight, and concurrent asks.

#[path = "support/agent.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use warden_agents::agent::{Activity, Agent, AgentError, AgentEventKind, Outcome, TurnEnd};
use warden_agents::message::{Address, AgentMessage};
use warden_agents::model::Role;
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault};

use support::{DEADLINE, model, recorder, root, spawn_ask};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_answers_the_asker_and_tell_runs_the_task() {
    let fake = FakeProvider::start().await;
    fake.push(Answer::text("Bonjour."));
    let (observer, mut events) = recorder();
    let agent = Agent::new("greeter", ReAct::builder(model(&fake)).system("Greet.").build()).observer(observer);
    let greeter = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    assert_eq!(greeter.path().unwrap().as_str(), "root/greeter");

    let task = AgentMessage::user("Say hello in French.").from(Address::external("alice"));
    let reply = greeter.ask(task.clone(), DEADLINE).await.unwrap();
    assert_eq!(reply.outcome, Outcome::Completed);
    assert_eq!(reply.iterations, 1);
    assert_eq!(reply.text(), "Bonjour.");
    assert_eq!(reply.message.role, Role::Assistant);
    assert_eq!(reply.message.sender, Address::name("greeter"));
    assert_eq!(reply.message.recipient, Address::external("alice"));
    assert_eq!(reply.message.in_reply_to, Some(task.id));
    let sent = &fake.requests()[0];
    assert_eq!(sent.messages()[0]["role"], "system");
    assert_eq!(sent.messages()[1]["content"], "Say hello in French.");

    let told = AgentMessage::user("And in German?");
    greeter.tell(told.clone()).unwrap();
    let ended = events
        .wait_for(
            "greeter",
            |k| matches!(k, AgentEventKind::TurnEnded { task, .. } if *task == told.id),
        )
        .await;
    assert_eq!(
        ended,
        AgentEventKind::TurnEnded {
            task: told.id,
            end: TurnEnd::Finished(Outcome::Completed)
        }
    );
    // The second turn remembered the first exchange.
    assert_eq!(fake.requests()[1].messages().len(), 4);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_to_a_killed_agent_end_once_down_or_not_started_and_the_restart_answers() {
    let fake = FakeProvider::start().await;
    // Every model call stalls until the restart. (A default, not a scripted reply: the
    // stalled request's handler may run late, and must not take a reply meant for later.)
    fake.set_default_reply(Fault::Stall);
    let (observer, mut events) = recorder();
    let agent = Agent::new("worker", ReAct::builder(model(&fake)).build()).observer(observer);
    let worker = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let generation = worker.generation();

    // One ask in flight (its model call stalls), one queued behind it.
    let first = spawn_ask(&worker, "first");
    fake.wait_for_requests(1).await;
    // Polled once, the second ask is sent; the status call behind it finds it queued.
    let second = worker.ask(AgentMessage::user("second"), DEADLINE);
    tokio::pin!(second);
    assert!(futures::poll!(&mut second).is_pending());
    let status = worker.status().await.unwrap();
    assert_eq!((status.activity, status.queued), (Activity::Working, 1));
    assert_eq!(worker.load(), 2);

    worker.actor().unwrap().kill();
    let first = first.await.unwrap();
    let second = second.await;
    assert!(
        matches!(first, Err(AgentError::AgentDown(ref n)) if &**n == "worker"),
        "{first:?}"
    );
    // The queued one never started: it had no effect, and says so.
    let second = second.unwrap_err();
    assert!(
        matches!(second, AgentError::NotStarted(ref n) if &**n == "worker"),
        "{second:?}"
    );
    assert!(second.was_not_delivered() && second.is_transient());
    assert!(
        !first.unwrap_err().was_not_delivered(),
        "the one in flight may have acted"
    );
    assert_eq!(worker.load(), 0);

    // The supervisor restarts it; the same handle reaches the new incarnation.
    let restarted = worker.wait_started(generation, DEADLINE).await.unwrap();
    assert_eq!(restarted, generation + 1);
    events
        .wait_for("worker", |k| *k == AgentEventKind::Started { generation: restarted })
        .await;
    fake.set_default_reply(Answer::text("ok"));
    let reply = worker.ask(AgentMessage::user("third"), DEADLINE).await.unwrap();
    assert_eq!(reply.text(), "ok");
    // A fresh incarnation starts with a fresh memory.
    assert_eq!(fake.requests().last().unwrap().messages().len(), 1);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_not_running_is_not_delivered_and_a_slow_one_times_out() {
    let fake = FakeProvider::start().await;
    fake.push(Fault::Stall);
    let (observer, mut events) = recorder();
    let agent = Agent::new("solo", ReAct::builder(model(&fake)).build()).observer(observer);
    let solo = agent.handle();
    assert!(matches!(
        solo.ask(AgentMessage::user("before start"), DEADLINE).await,
        Err(AgentError::NotDelivered(_))
    ));
    let (_, join) = agent.spawn().await.unwrap();

    let err = solo
        .ask(AgentMessage::user("stalls"), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Timeout(_)) && err.is_transient(), "{err:?}");
    // Nobody waits for the timed-out turn any more: it is cut short, not left running.
    let ended = events
        .wait_for("solo", |k| matches!(k, AgentEventKind::TurnEnded { .. }))
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
    assert!(!solo.interrupt().await.unwrap(), "nothing left to interrupt");

    solo.actor().unwrap().stop(None);
    join.await.unwrap();
    assert!(!solo.is_running());
    let err = solo.ask(AgentMessage::user("after stop"), DEADLINE).await.unwrap_err();
    assert!(matches!(err, AgentError::NotDelivered(_)) && err.was_not_delivered());
    assert!(matches!(
        solo.tell(AgentMessage::user("x")),
        Err(AgentError::NotDelivered(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_agents_asked_at_once_answer_as_they_finish() {
    let fake = FakeProvider::start().await;
    fake.set_default_reply(Answer::text("done"));
    let agents: Vec<Agent> = (0..5)
        .map(|i| Agent::new(format!("a{i}"), ReAct::builder(model(&fake)).build()))
        .collect();
    let handles: Vec<_> = agents.iter().map(Agent::handle).collect();
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;

    let mut replies: FuturesUnordered<_> = handles
        .iter()
        .map(|h| h.ask(AgentMessage::user(format!("task for {}", h.name())), DEADLINE))
        .collect();
    let mut senders = Vec::new();
    while let Some(reply) = replies.next().await {
        senders.push(reply.unwrap().message.sender);
    }
    senders.sort();
    let expected: Vec<Address> = (0..5).map(|i| Address::name(format!("a{i}"))).collect();
    assert_eq!(senders, expected);
    root.stop().await;
}
