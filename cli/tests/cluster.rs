//! Remote children across real processes: `warden node` processes on 127.0.0.1 host the
//! children of a supervisor in this test process. A crash there is a crash here, with its
//! reason; a node killed with SIGKILL loses its children, which are restarted on the others
//! (exits with reason `noconnection`, counted by the supervisor's intensity); a node stopped
//! with SIGSTOP is declared down the same way, and once it is resumed with SIGCONT it
//! reconnects and stops the children it still had, so that none runs twice.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use std::collections::BTreeMap;
use std::time::Duration;

use nodes::{COOKIE, NodeProc, WAIT};
use ractor::ActorRef;
use tokio::sync::{broadcast, mpsc};
use warden_cluster::{ECHO_KIND, EchoArgs, EchoMsg, Node, NodeEvent, Placement, RemoteChild, locate};
use warden_supervisor::{ChildSpec, ExitReason, Strategy, Supervisor, SupervisorEvent};

/// An echo child `id` (its tag is its id), placed round robin.
fn echo(origin: &Node, id: &str) -> ChildSpec {
    RemoteChild::new(origin, ECHO_KIND, &EchoArgs { tag: id.to_string() })
        .unwrap()
        .placement(Placement::RoundRobin)
        .spec(id)
}

/// Where each child of `root` runs, checked by asking it: child id to node.
async fn placement(origin: &Node, root: &Supervisor) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for child in root.which_children().await.unwrap() {
        let cell = child
            .state
            .actor()
            .unwrap_or_else(|| panic!("{} is not running", child.id()))
            .clone();
        let location = locate(origin, &cell, WAIT).await.unwrap();
        let echo = ActorRef::<EchoMsg>::from(location.actor);
        let answer = ractor::call_t!(echo, EchoMsg::Ping, 5_000, "hi".to_string()).unwrap();
        assert_eq!(answer, format!("{}@{}: hi", child.id(), location.node));
        found.insert(child.id().to_string(), location.node);
    }
    found
}

/// Waits for an event of the supervisor's that `matches`.
async fn next_event(
    events: &mut mpsc::UnboundedReceiver<SupervisorEvent>,
    what: &str,
    matches: impl Fn(&SupervisorEvent) -> bool,
) -> SupervisorEvent {
    let wait = async {
        loop {
            let event = events.recv().await.expect("the supervisor is running");
            if matches(&event) {
                return event;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} in {WAIT:?}"))
}

/// Waits for a node event of the origin's that `matches`.
async fn node_event(events: &mut broadcast::Receiver<NodeEvent>, what: &str, matches: impl Fn(&NodeEvent) -> bool) {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if matches(&event) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the origin stopped"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} in {WAIT:?}"));
}

/// The exits of the children that were on a lost node, with `noconnection`, and their restarts.
async fn lost(events: &mut mpsc::UnboundedReceiver<SupervisorEvent>, children: &[String]) {
    for _ in children {
        let exit = next_event(events, "an exit with noconnection", |e| {
            matches!(e, SupervisorEvent::ChildExited { reason: ExitReason::Stopped(r), .. } if &**r == "noconnection")
        })
        .await;
        let SupervisorEvent::ChildExited { path, .. } = exit else {
            unreachable!()
        };
        assert!(
            children.contains(&path.id().to_string()),
            "{path} was not on the lost node"
        );
        next_event(
            events,
            "its restart",
            |e| matches!(e, SupervisorEvent::ChildStarted { path: p, .. } if *p == path),
        )
        .await;
    }
}

fn on(placed: &BTreeMap<String, String>, node: &str) -> Vec<String> {
    placed
        .iter()
        .filter(|(_, n)| *n == node)
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_children_follow_crashes_kills_and_partitions() {
    let mut a = NodeProc::start("a", COOKIE, &[]).await;
    let b = NodeProc::start("b", COOKIE, &[a.addr]).await;
    let c = NodeProc::start("c", COOKIE, &[a.addr]).await;
    let origin = Node::builder("origin")
        .cookie(COOKIE)
        .seed(a.addr)
        .seed(b.addr)
        .seed(c.addr)
        .start()
        .await
        .unwrap();
    let mut node_events = origin.events();
    origin.wait_for(&["a", "b", "c"], WAIT).await.unwrap();

    let (tx, mut events) = mpsc::unbounded_channel();
    let ids: Vec<String> = (0..6).map(|i| format!("e{i}")).collect();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(20, Duration::from_secs(60))
        .observer(move |e| drop(tx.send(e.clone())))
        .children(ids.iter().map(|id| echo(&origin, id)))
        .spawn()
        .await
        .unwrap();

    // Spread over the three nodes, each answering from where it runs.
    let placed = placement(&origin, &root).await;
    for node in ["a", "b", "c"] {
        assert_eq!(on(&placed, node).len(), 2, "{placed:?}");
    }

    // A crash on b is a crash here, with its error; the child is restarted.
    let victim = on(&placed, "b")[0].clone();
    let cell = root
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id() == victim)
        .unwrap();
    let remote = locate(&origin, cell.state.actor().unwrap(), WAIT).await.unwrap();
    ActorRef::<EchoMsg>::from(remote.actor)
        .cast(EchoMsg::Crash("boom".into()))
        .unwrap();
    let exit = next_event(&mut events, "the crash", |e| {
        matches!(e, SupervisorEvent::ChildExited { .. })
    })
    .await;
    let SupervisorEvent::ChildExited { path, reason, .. } = exit else {
        unreachable!()
    };
    assert_eq!(path.id(), victim);
    assert!(
        matches!(&reason, ExitReason::Failed(f) if f.to_string() == "boom"),
        "{reason:?}"
    );
    next_event(
        &mut events,
        "the restart",
        |e| matches!(e, SupervisorEvent::ChildStarted { path: p, .. } if p.id() == victim),
    )
    .await;

    // kill -9 of a: its two children exit with noconnection and run on b and c.
    let placed = placement(&origin, &root).await;
    let on_a = on(&placed, "a");
    a.kill().await;
    lost(&mut events, &on_a).await;
    let placed = placement(&origin, &root).await;
    assert!(on(&placed, "a").is_empty(), "{placed:?}");
    assert_eq!(placed.len(), 6);

    // SIGSTOP of b: declared down like a dead node; its children move to c.
    let on_b = on(&placed, "b");
    assert!(!on_b.is_empty(), "{placed:?}");
    b.pause();
    node_event(
        &mut node_events,
        "b down",
        |e| matches!(e, NodeEvent::Down { node, .. } if node == "b"),
    )
    .await;
    lost(&mut events, &on_b).await;
    let placed = placement(&origin, &root).await;
    assert_eq!(on(&placed, "c").len(), 6, "{placed:?}");

    // SIGCONT: b reconnects, and stops every child it still had for us.
    b.resume();
    node_event(
        &mut node_events,
        "b up again",
        |e| matches!(e, NodeEvent::Up { node, .. } if node == "b"),
    )
    .await;
    let hosted: Vec<String> = b
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix("hosting origin "))
        .map(str::to_string)
        .collect();
    assert!(!hosted.is_empty());
    for child in &hosted {
        b.wait_line(
            |l| l.starts_with(&format!("exited origin {child} ")),
            "the stale child's end",
        )
        .await;
    }
    let placed = placement(&origin, &root).await;
    assert_eq!(on(&placed, "c").len(), 6, "{placed:?}");
    // Each child answered from exactly one place, and b runs nothing for us.
    assert!(root.is_alive());

    root.stop().await;
    origin.stop().await;
    drop(c);
}
