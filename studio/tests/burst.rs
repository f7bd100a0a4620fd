//! A burst of 10,000 events a second does not buffer without bound: the studio coalesces each
//! tick, a viewer that keeps up sees the final state, and a viewer that stops reading falls
//! behind the broadcast's bounded buffer and is sent one snapshot instead of what it missed.

use std::sync::Arc;
use std::time::Duration;

use warden_agents::agent::{AgentEvent, AgentEventKind};
use warden_studio::{Frame, Studio, View};

const DEADLINE: Duration = Duration::from_secs(30);
const AGENTS: u32 = 100;
const EVENTS: u32 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_viewers_bounded_and_a_slow_viewer_gets_a_snapshot() {
    let studio = Studio::builder().viewer_buffer(32).start();
    let observe = studio.agent_observer();
    let mut fast = studio.subscribe();
    let mut slow = studio.subscribe();
    // Both start from a snapshot; the slow one then stops reading.
    assert!(matches!(slow.next().await, Some(Frame::Snapshot { .. })));

    // 10,000 events over a second: every agent's iteration climbs to 100.
    let names: Vec<Arc<str>> = (0..AGENTS).map(|i| Arc::from(format!("agent-{i}"))).collect();
    let producer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        for event in 0..EVENTS {
            if event % 10 == 0 {
                tick.tick().await;
            }
            observe(&AgentEvent {
                agent: names[(event % AGENTS) as usize].clone(),
                kind: AgentEventKind::ModelCalled {
                    iteration: event / AGENTS + 1,
                },
            });
        }
    });

    let done =
        |v: &View| v.agents.len() == AGENTS as usize && v.agents.values().all(|a| a.iteration == EVENTS / AGENTS);
    let mut view = View::default();
    let mut frames = 0u64;
    tokio::time::timeout(DEADLINE, async {
        while !done(&view) {
            view.take(fast.next().await.unwrap());
            frames += 1;
        }
    })
    .await
    .expect("the fast viewer sees the final state");
    producer.await.unwrap();
    assert_eq!(studio.dropped(), 0);
    // Coalesced: fewer frames than events.
    assert!(frames < u64::from(EVENTS), "{frames} frames for {EVENTS} events");

    // The slow viewer missed more than its buffer: one snapshot, with the final state.
    match slow.next().await.unwrap() {
        Frame::Snapshot { view } => assert!(done(&view), "the snapshot is current"),
        Frame::Delta { seq, .. } => panic!("a slow viewer got an old change ({seq}) instead of a snapshot"),
    }
}

struct Idle;

impl ractor::Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ractor::ActorRef<()>, _: ()) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_storm_is_counted_in_full_on_few_timeline_entries() {
    use warden_supervisor::{ChildSpec, Supervisor};
    const KILLS: u32 = 50;
    let studio = Studio::builder().start();
    let root = Supervisor::builder("root")
        .intensity(1000, Duration::from_secs(10))
        .inline_observer(studio.supervisor_observer())
        .child(ChildSpec::actor("pinger", || (Idle, ())))
        .spawn()
        .await
        .unwrap();
    for _ in 0..KILLS {
        let before = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
        before.kill();
        loop {
            let now = root.which_children().await.unwrap()[0].state.actor().cloned();
            if now.is_some_and(|a| a.get_id() != before.get_id()) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let mut viewer = studio.subscribe();
    let mut view = View::default();
    tokio::time::timeout(DEADLINE, async {
        while view.tree.get("root/pinger").is_none_or(|n| n.restarts < KILLS) {
            view.take(viewer.next().await.unwrap());
        }
        // The timeline entries of the last tick come with it or right after.
        while view.timeline.iter().map(restarts_of).sum::<u32>() < KILLS {
            view.take(viewer.next().await.unwrap());
        }
    })
    .await
    .expect("the storm shows");
    let entries = view.timeline.iter().filter(|t| t.kind == "restart").count();
    assert_eq!(view.timeline.iter().map(restarts_of).sum::<u32>(), KILLS);
    assert!(entries <= KILLS as usize, "{entries} entries");
    root.stop().await;
}

/// How many restarts a timeline entry stands for: one, or the count of a storm's summary.
fn restarts_of(entry: &warden_studio::TimelineEntry) -> u32 {
    match entry.kind.as_str() {
        "restart" if entry.text.starts_with("restart #") => 1,
        "restart" => entry.text.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}
