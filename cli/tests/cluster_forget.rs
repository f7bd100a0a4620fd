//! Addresses a node learned from its peers are forgotten once they stop answering: a node
//! process joins the origin (which learns its address from its heartbeats) and is killed -9;
//! the origin declares it down, redials it for `forget_after`, and then forgets its address
//! with a `Forgotten` event, rather than dialling it for as long as it runs.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use std::time::Duration;

use nodes::{COOKIE, NodeProc, WAIT};
use tokio::sync::broadcast;
use warden_cluster::{Node, NodeEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_address_that_stops_answering_is_forgotten() {
    let origin = Node::builder("origin")
        .cookie(COOKIE)
        .forget_after(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut events = origin.events();
    let mut b = NodeProc::start("b", COOKIE, &[origin.listen_addr()]).await;
    origin.wait_for(&["b"], WAIT).await.unwrap();
    b.kill().await;
    let b_addr = b.addr.to_string();
    let seen = until(
        &mut events,
        |e| matches!(e, NodeEvent::Forgotten { addr } if *addr == b_addr),
    )
    .await;
    let down_at = seen
        .iter()
        .position(|e| matches!(e, NodeEvent::Down { node, .. } if node == "b"))
        .expect("b declared down first");
    assert!(down_at < seen.len() - 1, "{seen:?}");
    assert!(origin.members().await.unwrap().iter().all(|m| m.node != "b"));
    origin.stop().await;
}

/// The origin's events up to the first that `last` accepts, that one included.
async fn until(events: &mut broadcast::Receiver<NodeEvent>, last: impl Fn(&NodeEvent) -> bool) -> Vec<NodeEvent> {
    let mut seen = Vec::new();
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let done = last(&event);
                    seen.push(event);
                    if done {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the origin stopped"),
            }
        }
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!("no Forgotten in {WAIT:?}; events: {seen:?}");
    }
    seen
}
