//! A first end-to-end check that the test support works: a crash is restarted
//! and the restarted child answers.

#[path = "support/probe.rs"]
mod probe;

use std::time::Duration;

use probe::{Control, EventLog, ProbeMsg, ping, probe, tell};
use warden::supervisor::{Strategy, Supervisor};

#[tokio::test]
async fn a_panicking_child_is_restarted_and_answers() {
    let control = Control::new();
    let log = EventLog::new();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .observer(log.observer())
        .child(probe("a", &control))
        .spawn()
        .await
        .unwrap();
    let a = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
    tell(&a, ProbeMsg::Panic);
    log.wait_count("start a", 2).await;
    let a2 = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
    assert_ne!(a.get_id(), a2.get_id());
    assert_eq!(ping(&a2).await, Some(1));
    root.stop().await;
    assert_eq!(
        log.lines(),
        ["start a", "down a boom", "start a", "down a shutdown", "stopped root"]
    );
}
