//! Addressing and teams: agents found by name and by tree path in a registry, one agent
//! asking another through it, and teams routing by round robin, least busy, broadcast and
//! a function of the user's, addressed like one agent.

#[path = "support/agent.rs"]
mod support;

use futures::StreamExt;
use futures::future::BoxFuture;
use warden_agents::agent::{Agent, AgentError, AgentEventKind, Behaviour, Outcome, TurnContext, TurnError, TurnOutput};
use warden_agents::message::{Address, AgentMessage};
use warden_agents::react::ReAct;
use warden_agents::registry::{Registry, RegistryError, Target};
use warden_agents::team::{RoutePolicy, Team};
use warden_fake_provider::{Answer, FakeProvider, Fault};
use warden_supervisor::ChildPath;

use support::{DEADLINE, model, react_agents, recorder, root};

fn sender(reply: Result<warden_agents::agent::Reply, AgentError>) -> String {
    reply.unwrap().message.sender.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_takes_turns_and_the_team_is_addressed_like_an_agent() {
    let fake = FakeProvider::start().await;
    let registry = Registry::new();
    let agents: Vec<Agent> = react_agents(&fake, &["a", "b", "c"])
        .into_iter()
        .map(|a| a.registry(&registry))
        .collect();
    let team = Team::new("crew", RoutePolicy::RoundRobin, agents.iter().map(Agent::handle));
    registry.register(team.clone()).unwrap();
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;

    let mut order = Vec::new();
    for i in 0..6 {
        order.push(sender(
            registry
                .ask(&Address::team("crew"), AgentMessage::user(format!("t{i}")), DEADLINE)
                .await,
        ));
    }
    assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
    // The team handle routes the same way; the reply goes back to the asker.
    let reply = team
        .ask(AgentMessage::user("who?").from(Address::external("me")), DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.message.sender, Address::name("a"));
    assert_eq!(reply.message.recipient, Address::external("me"));
    assert!(matches!(registry.lookup(&Address::name("crew")), Some(Target::Team(_))));
    assert_eq!(registry.names(), ["a", "b", "c", "crew"]);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_avoids_the_member_with_work_in_flight() {
    let (slow_fake, fake) = (FakeProvider::start().await, FakeProvider::start().await);
    slow_fake.push(Fault::Stall);
    let (observer, mut events) = recorder();
    let busy = Agent::new("busy", ReAct::builder(model(&slow_fake)).build()).observer(observer);
    let others = react_agents(&fake, &["x", "y"]);
    let team = Team::new(
        "pool",
        RoutePolicy::LeastBusy,
        [busy.handle(), others[0].handle(), others[1].handle()],
    );
    let (root, _escalations) = root(vec![busy.child_spec(), others[0].child_spec(), others[1].child_spec()]).await;

    busy.handle().tell(AgentMessage::user("stalls")).unwrap();
    events
        .wait_for("busy", |k| matches!(k, AgentEventKind::ModelCalled { .. }))
        .await;
    assert_eq!(busy.handle().load(), 1);
    for i in 0..4 {
        let who = sender(team.ask(AgentMessage::user(format!("t{i}")), DEADLINE).await);
        assert_ne!(who, "busy");
    }
    assert!(busy.handle().interrupt().await.unwrap());
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_member_and_ask_all_yields_each_reply() {
    let fake = FakeProvider::start().await;
    let (observer, mut events) = recorder();
    let agents: Vec<Agent> = ["p", "q", "r"]
        .iter()
        .map(|n| Agent::new(*n, ReAct::builder(model(&fake)).build()).observer(observer.clone()))
        .collect();
    let team = Team::new("all", RoutePolicy::Broadcast, agents.iter().map(Agent::handle));
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;

    let told = AgentMessage::user("news");
    team.tell(told.clone()).unwrap();
    let mut ended = Vec::new();
    for _ in 0..3 {
        let event = events
            .next_matching(|e| matches!(e.kind, AgentEventKind::TurnEnded { task, .. } if task == told.id))
            .await;
        ended.push(event.agent.to_string());
    }
    ended.sort();
    assert_eq!(ended, ["p", "q", "r"]);
    let first = team.ask(AgentMessage::user("anyone?"), DEADLINE).await.unwrap();
    assert_eq!(first.outcome, Outcome::Completed);

    let mut seen: Vec<String> = team
        .ask_all(AgentMessage::user("everyone"), DEADLINE)
        .map(|(member, reply)| {
            assert_eq!(reply.unwrap().message.sender, member.address());
            member.name().to_owned()
        })
        .collect()
        .await;
    seen.sort();
    assert_eq!(seen, ["p", "q", "r"]);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_function_of_the_users_picks_the_member() {
    let fake = FakeProvider::start().await;
    let agents = react_agents(&fake, &["billing", "tech"]);
    let by_topic = RoutePolicy::custom(|task, members| {
        let text = task.text();
        members.iter().position(|m| text.contains(m.name()))
    });
    let team = Team::new("support", by_topic, agents.iter().map(Agent::handle));
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;

    assert_eq!(
        sender(team.ask(AgentMessage::user("a tech question"), DEADLINE).await),
        "tech"
    );
    assert_eq!(
        sender(team.ask(AgentMessage::user("a billing question"), DEADLINE).await),
        "billing"
    );
    let err = team
        .ask(AgentMessage::user("something else"), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::NoRoute(ref t) if &**t == "support") && err.was_not_delivered());
    let empty = Team::new("empty", RoutePolicy::RoundRobin, []);
    assert!(matches!(
        empty.tell(AgentMessage::user("x")),
        Err(AgentError::NoRoute(_))
    ));
    root.stop().await;
}

/// Forwards every task to the agent named in it, through the registry, and returns its answer.
struct Relay;

impl Behaviour for Relay {
    fn turn<'a>(
        &'a self,
        cx: &'a mut TurnContext,
        task: &'a AgentMessage,
    ) -> BoxFuture<'a, Result<TurnOutput, TurnError>> {
        Box::pin(async move {
            let registry = cx.directory().ok_or_else(|| TurnError::other("no directory"))?;
            let to = Address::Path(ChildPath::root("root").join(&task.text()));
            let forwarded = AgentMessage::user("relayed").from(cx.address());
            let reply = registry.ask(&to, forwarded, DEADLINE).await.map_err(TurnError::other)?;
            assert_eq!(reply.message.recipient, cx.address());
            Ok(TurnOutput::new(Outcome::Completed, reply.message.content))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_agent_reaches_another_by_name_or_path() {
    let fake = FakeProvider::start().await;
    fake.push(Answer::text("from the expert"));
    let registry = Registry::new();
    let expert = Agent::new("expert", ReAct::builder(model(&fake)).build()).registry(&registry);
    let relay = Agent::new("relay", Relay).registry(&registry);
    let (root, _escalations) = root(vec![expert.child_spec(), relay.child_spec()]).await;

    let by_path = registry.lookup(&Address::Path(ChildPath::root("root").join("expert")));
    assert!(matches!(by_path, Some(Target::Agent(a)) if a.same_agent(&expert.handle())));
    let reply = registry
        .ask(&Address::name("relay"), AgentMessage::user("expert"), DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.text(), "from the expert");
    assert_eq!(fake.requests()[0].messages()[0]["content"], "relayed");

    let err = registry
        .ask(&Address::name("nobody"), AgentMessage::user("x"), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::NoSuchAddress(_)));
    // A name belongs to one agent: a second agent of that name does not start.
    let twin = Agent::new("expert", ReAct::builder(model(&fake)).build()).registry(&registry);
    assert!(twin.spawn().await.is_err());
    assert_eq!(
        registry.register(Team::new("expert", RoutePolicy::Broadcast, [])),
        Err(RegistryError::NameTaken("expert".into()))
    );
    root.stop().await;
}
