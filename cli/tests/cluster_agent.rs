//! A remote agent: a ReAct agent hosted by a `warden node` process (on the fake provider in
//! this process, over HTTP), placed by a supervisor here, asked by name from here. An ask
//! in flight when its node is killed fails once, with `NodeDown`; the supervisor places the
//! agent again on the other node, and it answers from there.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use nodes::{COOKIE, NodeProc, WAIT, origin_joined, place_clerk, reachable};
use warden_agents::message::AgentMessage;
use warden_cluster::RemoteAskError;
use warden_fake_provider::{Answer, FakeProvider, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_agent_is_asked_by_name_and_its_node_loss_is_typed() {
    let fake = FakeProvider::start().await;
    let mut a = NodeProc::start("a", COOKIE, &[]).await;
    let origin = origin_joined(&[&a]).await;

    let (root, agent) = place_clerk(&origin, fake.base_url_openai(), None, "a").await;
    fake.push(Answer::text("Filed A-1."));
    let reply = agent.ask(AgentMessage::user("File order A-1"), WAIT).await.unwrap();
    assert_eq!(reply.text(), "Filed A-1.");
    assert_eq!(fake.requests().len(), 1);

    // A second node; then an ask that the model holds, and a is killed under it.
    let b = NodeProc::start("b", COOKIE, &[a.addr]).await;
    origin.join(b.addr).unwrap();
    origin.wait_for(&["a", "b"], WAIT).await.unwrap();
    fake.set_default_reply(Fault::Stall);
    let asking = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.ask(AgentMessage::user("File order A-2"), WAIT).await })
    };
    fake.wait_for_requests(2).await;
    a.kill().await;
    let lost = asking.await.unwrap().unwrap_err();
    assert_eq!(lost, RemoteAskError::NodeDown { agent: "clerk".into() });

    // Restarted by its supervisor on b; it answers from there.
    fake.set_default_reply(Answer::text("Filed A-2."));
    b.wait_line(|l| l.starts_with("hosting origin "), "the clerk placed on b")
        .await;
    reachable(&agent).await;
    let reply = agent.ask(AgentMessage::user("File order A-2"), WAIT).await.unwrap();
    assert_eq!(reply.text(), "Filed A-2.");

    root.stop().await;
    origin.stop().await;
}
