//! The registry forgets agents that end: a stopped agent leaves it, a killed one's dead
//! entry never blocks a new agent of its name and is swept away, so the registry does not
//! grow with agents that come and go; and an agent restarted by its supervisor stays
//! reachable by its address.

#[path = "support/agent.rs"]
mod support;

use warden_agents::agent::Agent;
use warden_agents::message::{Address, AgentMessage};
use warden_agents::registry::Registry;
use warden_supervisor::Restart;

use support::{DEADLINE, root, scripted};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_temporary_agents_come_and_go_and_the_registry_is_back_to_its_start() {
    let (behaviour, _script) = scripted();
    let registry = Registry::new();
    let (root, _escalations) = root(vec![]).await;
    let (names, paths) = (registry.len(), registry.path_count());

    for i in 0..1_000 {
        let name = format!("session-{i}");
        let agent = Agent::new(name.clone(), behaviour.clone()).registry(&registry);
        root.start_child(agent.child_spec().restart(Restart::Temporary))
            .await
            .unwrap();
        assert!(registry.agent(&name).unwrap().same_agent(&agent.handle()));
        root.terminate_child(&name).await.unwrap();
    }
    assert_eq!((registry.len(), registry.path_count()), (names, paths));

    // A new agent of a used name registers, and its address reaches it.
    let again = Agent::new("session-42", behaviour).registry(&registry);
    root.start_child(again.child_spec().restart(Restart::Temporary))
        .await
        .unwrap();
    let reply = registry
        .ask(&Address::name("session-42"), AgentMessage::user("hello"), DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.text(), "hello");
    assert!(registry.agent("session-42").unwrap().same_agent(&again.handle()));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agents_leave_dead_entries_that_new_agents_replace_and_sweep() {
    let (behaviour, _script) = scripted();
    let registry = Registry::new();
    let (root, _escalations) = root(vec![]).await;

    // Agents killed, not stopped: each leaves a dead entry (name and path) behind.
    for i in 0..300 {
        let agent = Agent::new(format!("doomed-{i}"), behaviour.clone()).registry(&registry);
        root.start_child(agent.child_spec().restart(Restart::Temporary))
            .await
            .unwrap();
        let actor = agent.handle().actor().unwrap();
        actor.kill();
        actor.wait(Some(DEADLINE)).await.unwrap();
    }
    // Swept as they pile up: far fewer than 300 remain.
    assert!(registry.len() + registry.path_count() <= 2 * 64, "{}", registry.len());

    // A new agent of a dead agent's name starts (alone, not under the same supervisor).
    let name = registry.names().pop().expect("some dead entry is left");
    let (heir, _join) = Agent::new(name.clone(), behaviour)
        .registry(&registry)
        .spawn()
        .await
        .unwrap();
    assert!(registry.agent(&name).unwrap().same_agent(&heir));
    heir.actor().unwrap().stop(None);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restarted_after_a_kill_keeps_its_address() {
    let (behaviour, _script) = scripted();
    let registry = Registry::new();
    let agent = Agent::new("phoenix", behaviour).registry(&registry);
    let phoenix = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let path = Address::Path(phoenix.path().unwrap());
    let generation = phoenix.generation();

    phoenix.actor().unwrap().kill();
    phoenix.wait_started(generation, DEADLINE).await.unwrap();
    for address in [Address::name("phoenix"), path] {
        let reply = registry
            .ask(&address, AgentMessage::user("back"), DEADLINE)
            .await
            .unwrap();
        assert_eq!(reply.text(), "back");
    }
    assert_eq!((registry.len(), registry.path_count()), (1, 1));
    root.stop().await;
}
