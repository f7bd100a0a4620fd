//! `warden node --studio`: a node process serves a Warden Studio of the agents it hosts, and a
//! studio here follows it, so that one view spans the cluster. A ReAct agent placed on the
//! node by a supervisor here (on the fake provider, over HTTP) shows in this process's view
//! as `b:clerk`, with its turn and its model call's tokens; when the node is killed -9, the
//! view shows it down.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use nodes::{COOKIE, NodeProc, WAIT, place_clerk};
use warden_agents::message::AgentMessage;
use warden_cluster::Node;
use warden_fake_provider::{Answer, FakeProvider};
use warden_studio::{Frame, Studio, View};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_studio_shows_its_hosted_agents_in_a_studio_that_follows_it() {
    let fake = FakeProvider::start().await;
    let mut b = NodeProc::start_with("b", COOKIE, &[], &["--studio".into(), "127.0.0.1:0".into()]).await;
    let line = b.wait_line(|l| l.starts_with("studio "), "studio URL").await;
    let url = line.trim_start_matches("studio ");
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("token="), "{line}");

    let here = Studio::builder().start();
    here.follow("b", url, None).unwrap();
    let mut viewer = here.subscribe();
    let mut view = View::default();

    let origin = Node::builder("origin")
        .cookie(COOKIE)
        .seed(b.addr)
        .start()
        .await
        .unwrap();
    origin.wait_for(&["b"], WAIT).await.unwrap();
    let (root, agent) = place_clerk(&origin, fake.base_url_openai(), None, "b").await;
    fake.push(Answer::text("Filed B-1."));
    let reply = agent.ask(AgentMessage::user("File order B-1"), WAIT).await.unwrap();
    assert_eq!(reply.text(), "Filed B-1.");

    // The turn and its model call, as node b saw them, in this process's view.
    until(&mut viewer, &mut view, "b's agent and its model call", |v| {
        v.members.get("b").is_some_and(|m| m.state == "live")
            && v.agents
                .get("b:clerk")
                .is_some_and(|a| a.turns == 1 && a.activity == "idle" && a.input_tokens > 0 && a.output_tokens > 0)
            && v.recent_calls.iter().any(|c| {
                c.kind == "model"
                    && c.agent.as_deref() == Some("b:clerk")
                    && c.outcome.as_deref() == Some("ok")
                    && c.input_tokens == Some(v.agents["b:clerk"].input_tokens)
            })
    })
    .await;

    // Node b killed -9: this view shows it down, with what it last showed.
    b.kill().await;
    until(&mut viewer, &mut view, "b down", |v| {
        v.members.get("b").is_some_and(|m| m.state == "down") && v.agents.contains_key("b:clerk")
    })
    .await;

    root.stop().await;
    origin.stop().await;
}

/// Takes the viewer's frames until `pred` holds of the view.
async fn until(viewer: &mut warden_studio::Viewer, view: &mut View, what: &str, pred: impl Fn(&View) -> bool) {
    let wait = async {
        while !pred(view) {
            let frame: Frame = viewer.next().await.expect("the studio is running");
            view.take(frame);
        }
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!("no {what} in {WAIT:?}; the view: {view:#?}");
    }
}
