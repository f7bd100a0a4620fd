//! A view that spans processes: studio `a` follows the studio of node `b` over HTTP. `a`'s
//! view shows `b`'s tree and agents named `b:...`; a restart on `b` shows in `a`; a question
//! `b`'s agent asks a human is answered through `a`'s page and `b`'s agent resumes; when `b`'s
//! studio goes away, `a` shows `b` down, with what it last showed.

mod support;

use warden_studio::Studio;

use support::Follower;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_studio_shows_another_nodes_studio() -> anyhow::Result<()> {
    let b = support::start().await?;
    let b_server = b.studio.serve("127.0.0.1:0").await?;
    let a = Studio::builder().token("a-token").start();
    let a_server = a.serve("127.0.0.1:0").await?;
    a.follow("b", &b_server.url(), None)?;
    let mut follower = Follower::new(&a);
    follower
        .until("b's tree", |v| {
            v.members.get("b").is_some_and(|m| m.state == "live")
                && ["b:root", "b:root/pinger", "b:root/clerk"]
                    .iter()
                    .all(|p| v.tree.get(*p).is_some_and(|n| n.state == "running"))
                && v.agents.contains_key("b:clerk")
        })
        .await?;

    // A restart on b.
    b.root.which_children().await?[0].state.actor().unwrap().kill();
    follower
        .until("b's restart", |v| {
            v.tree["b:root/pinger"].restarts == 1 && v.tree["b:root/pinger"].state == "running"
        })
        .await?;

    // b's agent asks a human; the question is answered through a's page.
    b.script_question("Ship it?");
    let asked = b.ask("deploy");
    let view = follower.until("b's question", |v| !v.escalations.is_empty()).await?;
    let question = view.escalations.values().next().unwrap().clone();
    assert_eq!(
        (question.agent.as_deref(), question.text.as_str()),
        (Some("b:clerk"), "Ship it?")
    );
    assert_eq!(question.origin, "b:root/clerk");
    let answered = reqwest::Client::new()
        .post(format!(
            "http://{}/api/escalations/{}/answer",
            a_server.addr(),
            question.id
        ))
        .bearer_auth("a-token")
        .json(&serde_json::json!({"text": "yes, from a"}))
        .send()
        .await?;
    assert_eq!(answered.status(), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(asked.await??.text(), "The human said: yes, from a");
    follower
        .until("the question closed, and b's model calls", |v| {
            v.escalations.is_empty()
                && v.recent_calls
                    .iter()
                    .any(|c| c.kind == "model" && c.agent.as_deref() == Some("b:clerk"))
        })
        .await?;

    // b's studio goes away: b is down in a, with what it last showed.
    b_server.shutdown().await;
    let view = follower
        .until("b down", |v| v.members.get("b").is_some_and(|m| m.state == "down"))
        .await?;
    assert!(view.tree.contains_key("b:root/clerk"));
    assert!(view.timeline.iter().any(|t| t.kind == "member" && t.subject == "b"));

    a_server.shutdown().await;
    b.root.stop().await;
    Ok(())
}
