//! A durable remote agent: a task submitted to it is in its journal before `submit`
//! returns; its node is killed with SIGKILL while the task runs; its supervisor places the
//! agent on the other node, which finishes the task from the journal (one redb file both
//! node processes open in turn), and its result is read from there. No accepted task is lost
//! across the node loss. (One test per file: ractor's registries are process-wide, so two
//! nodes in one test process would see each other's groups.)

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use nodes::{COOKIE, NodeProc, WAIT, origin_joined, place_clerk, reachable};
use warden_agents::message::AgentMessage;
use warden_fake_provider::{Answer, FakeProvider, Fault};

/// A durable remote agent: a task submitted to it is in its journal before `submit` returns;
/// its node is killed while the task runs; the supervisor places the agent on the other node,
/// which finishes the task from the journal, and its result is read from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_accepted_by_a_durable_remote_agent_survives_its_node() {
    let fake = FakeProvider::start().await;
    let store = tempfile::tempdir().unwrap();
    let journal = store.path().join("clerk.redb").to_str().unwrap().to_string();
    let mut a = NodeProc::start("a", COOKIE, &[]).await;
    let b = NodeProc::start("b", COOKIE, &[a.addr]).await;
    let origin = origin_joined(&[&a, &b]).await;
    let (root, agent) = place_clerk(&origin, fake.base_url_openai(), Some(journal), "a").await;

    fake.set_default_reply(Fault::Stall);
    let task = agent.submit(AgentMessage::user("File order B-7"), WAIT).await.unwrap();
    fake.wait_for_requests(1).await;
    a.kill().await;

    fake.set_default_reply(Answer::text("Filed B-7."));
    b.wait_line(|l| l.starts_with("hosting origin "), "the clerk placed on b")
        .await;
    reachable(&agent).await;
    let reply = agent.result(task, WAIT).await.unwrap();
    assert_eq!(reply.text(), "Filed B-7.");

    root.stop().await;
    origin.stop().await;
}
