//! The studio on a live system, through its own viewer and over HTTP: the tree and a chaos
//! kill with its restart and intensity; an agent's question to a human answered over HTTP
//! and the agent resuming; model calls with tokens and cost by agent; a hung tool call and
//! its turn flagged stuck, then cleared; the token guarding every route.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use warden_chaos::{ChaosAction, ChaosMonkey, Schedule};
use warden_studio::Frame;

use support::Follower;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_studio_follows_a_live_system() -> anyhow::Result<()> {
    let system = support::start().await?;
    let studio = &system.studio;
    let mut follower = Follower::new(studio);
    follower
        .until("the tree", |v| {
            ["root", "root/pinger", "root/tools", "root/clerk"]
                .iter()
                .all(|p| v.tree.get(*p).is_some_and(|n| n.state == "running"))
        })
        .await?;
    assert_eq!(follower.view.tree["root"].kind, "supervisor");

    // HTTP: the token is required; the view and the event stream are there with it.
    let server = studio.serve("127.0.0.1:0").await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr());
    let refused = http.get(format!("{base}/api/view")).send().await?;
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let wrong = http.get(format!("{base}/api/view?token=test-tokem")).send().await?;
    assert_eq!(wrong.status(), reqwest::StatusCode::UNAUTHORIZED);
    let view: warden_studio::View = http
        .get(format!("{base}/api/view"))
        .bearer_auth("test-token")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert!(view.tree.contains_key("root/clerk"));
    let page = http.get(server.url()).send().await?;
    assert!(page.headers()["set-cookie"].to_str()?.contains("HttpOnly"));
    assert!(page.text().await?.contains("Warden Studio"));
    let mut events = http
        .get(format!("{base}/api/events?token=test-token"))
        .send()
        .await?
        .error_for_status()?
        .bytes_stream();
    let mut first = String::new();
    while !first.contains("\n\n") {
        let chunk = events.next().await.context("stream ended")??;
        first.push_str(std::str::from_utf8(&chunk)?);
    }
    let data = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .context("no data line")?;
    assert!(matches!(serde_json::from_str::<Frame>(data)?, Frame::Snapshot { .. }));

    // Chaos: a kill, marked on the timeline, and the restart with the intensity it used.
    ChaosMonkey::new(&system.root)
        .target("root/pinger".parse()?)
        .actions([ChaosAction::Kill])
        .schedule(Schedule::Every(Duration::from_millis(1)))
        .max_actions(1)
        .on_action(studio.chaos_observer())
        .run()
        .await;
    let view = follower
        .until("the restart", |v| {
            v.tree["root/pinger"].restarts == 1
                && v.tree["root/pinger"].state == "running"
                && v.timeline.iter().any(|t| t.kind == "chaos")
                && v.timeline
                    .iter()
                    .any(|t| t.kind == "restart" && t.subject == "root/pinger")
                && v.tree["root"].intensity_used.is_some()
        })
        .await?;
    assert_eq!(
        (view.tree["root"].intensity_used, view.tree["root"].intensity_max),
        (Some(1), Some(5))
    );

    // A question to a human waits in the studio, is answered over HTTP, and the agent resumes.
    system.script_question("Ship it?");
    let asked = system.ask("deploy");
    let view = follower
        .until("the question", |v| {
            !v.escalations.is_empty() && v.agents["clerk"].activity == "waiting_for_human"
        })
        .await?;
    let question = view.escalations.values().next().unwrap().clone();
    assert_eq!(
        (question.agent.as_deref(), question.text.as_str()),
        (Some("clerk"), "Ship it?")
    );
    let answered = http
        .post(format!("{base}/api/escalations/{}/answer", question.id))
        .bearer_auth("test-token")
        .json(&serde_json::json!({"text": "yes"}))
        .send()
        .await?;
    assert_eq!(answered.status(), reqwest::StatusCode::NO_CONTENT);
    let again = http
        .post(format!("{base}/api/escalations/{}/answer", question.id))
        .bearer_auth("test-token")
        .json(&serde_json::json!({"text": "yes"}))
        .send()
        .await?;
    assert_eq!(again.status(), reqwest::StatusCode::NOT_FOUND);
    let reply = asked.await??;
    assert_eq!(reply.text(), "The human said: yes");
    let view = follower
        .until("the turn's end", |v| {
            v.escalations.is_empty() && v.agents["clerk"].turns == 1 && v.recent_calls.len() >= 2
        })
        .await?;
    let clerk = &view.agents["clerk"];
    assert_eq!(clerk.activity, "idle");
    assert!(clerk.input_tokens > 0 && clerk.cost > 0.0, "{clerk:?}");
    let model_call = view
        .recent_calls
        .iter()
        .find(|c| c.kind == "model")
        .context("a model call")?;
    assert_eq!(
        (
            model_call.name.as_str(),
            model_call.agent.as_deref(),
            model_call.outcome.as_deref()
        ),
        ("gpt-test", Some("clerk"), Some("ok"))
    );

    // A tool call that hangs is flagged stuck, with its turn; both clear when it returns.
    system.script_wait();
    let asked = system.ask("wait for it");
    let view = follower
        .until("the stuck tool call and turn", |v| {
            v.stuck.values().any(|s| s.kind == "tool") && v.stuck.contains_key("turn:clerk")
        })
        .await?;
    let stuck = view.stuck.values().find(|s| s.kind == "tool").unwrap();
    assert_eq!((stuck.name.as_str(), stuck.agent.as_deref()), ("wait", Some("clerk")));
    assert_eq!(stuck.threshold_ms, support::STUCK_AFTER.as_millis() as u64);
    system.release.notify_one();
    assert_eq!(asked.await??.text(), "done waiting");
    let view = follower
        .until("the stuck flags cleared", |v| {
            v.stuck.is_empty() && v.recent_calls.iter().any(|c| c.kind == "tool")
        })
        .await?;
    let tool_call = view
        .recent_calls
        .iter()
        .find(|c| c.kind == "tool")
        .context("a tool call")?;
    assert_eq!(
        (tool_call.outcome.as_deref(), tool_call.breaker.as_deref()),
        (Some("ok"), Some("CLOSED"))
    );
    assert_eq!(studio.dropped(), 0);

    server.shutdown().await;
    system.root.stop().await;
    Ok(())
}
