//! Location transparency: an `AgentRef` on an agent hosted by a `warden node` process works as
//! one on a local agent. Registered in a local `Registry`, the remote agent is reached by name;
//! a `ClusterDirectory` over an empty local registry resolves its name across the cluster;
//! it is asked, told, interrupted and asked for its status through the same handle; an ask in
//! flight when its node is killed -9 fails once, with `AgentError::NodeDown`; with no node
//! left to host it, the handle says it is not running and an ask is `NotDelivered`.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use nodes::{COOKIE, NodeProc, WAIT, origin_joined, place_clerk};
use warden_agents::agent::{Activity, AgentError, Directory as _, Outcome};
use warden_agents::message::{Address, AgentMessage};
use warden_agents::registry::Registry;
use warden_cluster::ClusterDirectory;
use warden_fake_provider::{Answer, FakeProvider, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_ref_on_a_remote_agent_works_as_on_a_local_one() {
    let fake = FakeProvider::start().await;
    let mut a = NodeProc::start("a", COOKIE, &[]).await;
    let origin = origin_joined(&[&a]).await;
    let (root, remote) = place_clerk(&origin, fake.base_url_openai(), None, "a").await;

    // The same handle as for a local agent, entered in a local registry: reached by name.
    let clerk = remote.agent_ref();
    assert!(clerk.is_remote() && clerk.is_running());
    assert_eq!(clerk.name(), "clerk");
    let registry = Registry::new();
    registry.register(clerk.clone()).unwrap();
    fake.push(Answer::text("Filed C-1."));
    let reply = registry
        .ask(
            &Address::Name("clerk".into()),
            AgentMessage::user("File order C-1"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(reply.text(), "Filed C-1.");

    // A directory over an empty local registry resolves the name across the cluster.
    let directory = ClusterDirectory::new(&origin, Registry::new());
    fake.push(Answer::text("Filed C-1b."));
    let reply = directory
        .ask(
            &Address::Name("clerk".into()),
            AgentMessage::user("File order C-1b"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(reply.text(), "Filed C-1b.");
    let nobody = directory
        .ask(&Address::Name("nobody".into()), AgentMessage::user("?"), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(nobody, AgentError::NoSuchAddress(_)), "{nobody:?}");

    // Told: the task reaches the model, nobody waits for it.
    fake.push(Answer::text("Filed C-2."));
    clerk.tell(AgentMessage::user("File order C-2")).unwrap();
    fake.wait_for_requests(3).await;

    // A turn the model holds: its status says so, and an interrupt ends it.
    fake.set_default_reply(Fault::Stall);
    let asking = {
        let clerk = clerk.clone();
        tokio::spawn(async move { clerk.ask(AgentMessage::user("File order C-3"), WAIT).await })
    };
    fake.wait_for_requests(4).await;
    let status = clerk.status().await.unwrap();
    assert_eq!(status.activity, Activity::Working);
    assert!(status.turns_completed >= 1, "{status:?}");
    assert!(clerk.interrupt().await.unwrap(), "a turn was in flight");
    let interrupted = asking.await.unwrap().unwrap();
    assert_eq!(interrupted.outcome, Outcome::Interrupted);

    // The node killed under an ask: one outcome, NodeDown.
    let asking = {
        let clerk = clerk.clone();
        tokio::spawn(async move { clerk.ask(AgentMessage::user("File order C-4"), WAIT).await })
    };
    fake.wait_for_requests(5).await;
    a.kill().await;
    let lost = asking.await.unwrap().unwrap_err();
    assert!(
        matches!(&lost, AgentError::NodeDown(agent) if &**agent == "clerk"),
        "{lost:?}"
    );
    assert_eq!(lost.kind(), "node_down");
    assert!(lost.is_transient() && !lost.was_not_delivered());

    // No node left to host it.
    let mut events = origin.events();
    while origin.members().await.unwrap().iter().any(|m| m.node == "a") {
        let _ = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("a declared down");
    }
    assert!(!clerk.is_running());
    let refused = clerk.ask(AgentMessage::user("File order C-5"), WAIT).await.unwrap_err();
    assert!(refused.was_not_delivered(), "{refused:?}");

    root.stop().await;
    origin.stop().await;
}
