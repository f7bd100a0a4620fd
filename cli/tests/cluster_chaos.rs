//! The chaos monkey kills nodes: a `warden node` process that is a child of a tree
//! (`NodeProcess`) dies with its actor, so a monkey aimed at it kills the OS process, and
//! the supervisor starts a new one and the children that ran on it.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use std::time::Duration;

use nodes::{COOKIE, WAIT};
use ractor::ActorRef;
use tokio::sync::mpsc;
use warden_chaos::{ChaosAction, ChaosMonkey, Schedule};
use warden_cluster::{ECHO_KIND, EchoArgs, EchoMsg, Node, NodeProcess, Placement, RemoteChild, locate, process_id};
use warden_supervisor::{Backoff, ExitReason, Strategy, Supervisor, SupervisorEvent};

/// Whether process `pid` runs (a zombie waiting to be reaped does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|status| !status.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_monkey_kills_a_node_process() {
    let origin = Node::builder("origin").cookie(COOKIE).start().await.unwrap();
    let node = NodeProcess::new(env!("CARGO_BIN_EXE_warden"), "worker-node")
        .cookie(COOKIE)
        .origin(&origin);
    let echo = RemoteChild::new(&origin, ECHO_KIND, &EchoArgs { tag: "e".into() })
        .unwrap()
        .placement(Placement::Pinned("worker-node".into()));
    let (tx, mut events) = mpsc::unbounded_channel();
    let root = Supervisor::builder("root")
        .strategy(Strategy::RestForOne)
        .intensity(5, Duration::from_secs(60))
        .observer(move |e| drop(tx.send(e.clone())))
        .child(node.spec("node"))
        .child(
            echo.spec("echo")
                .backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_secs(1))),
        )
        .spawn()
        .await
        .unwrap();
    let cell = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
    let pid = process_id(&cell).await.unwrap();
    assert!(running(pid));

    let report = ChaosMonkey::new(&root)
        .seed(7)
        .target("root/node".parse().unwrap())
        .actions([ChaosAction::Kill])
        .schedule(Schedule::Every(Duration::from_millis(1)))
        .max_actions(1)
        .run()
        .await;
    assert_eq!(report.count(ChaosAction::Kill), 1, "{report}");

    // The node's child exits `killed`, its process is gone, and both are started again.
    let wait = async {
        let mut killed = false;
        loop {
            match events.recv().await.unwrap() {
                SupervisorEvent::ChildExited { path, reason, .. } if path.id() == "node" => {
                    assert_eq!(reason, ExitReason::Killed);
                    killed = true;
                }
                SupervisorEvent::ChildStarted { path, .. } if killed && path.id() == "echo" => return,
                _ => {}
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("the node and the echo started again");
    let deadline = std::time::Instant::now() + WAIT;
    while running(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} outlived its killed child"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let children = root.which_children().await.unwrap();
    let new_pid = process_id(children[0].state.actor().unwrap()).await.unwrap();
    assert_ne!(new_pid, pid);
    let echo = locate(&origin, children[1].state.actor().unwrap(), WAIT).await.unwrap();
    let echo = ActorRef::<EchoMsg>::from(echo.actor);
    assert_eq!(
        ractor::call_t!(echo, EchoMsg::Ping, 5_000, "hi".to_string()).unwrap(),
        "e@worker-node: hi"
    );
    root.stop().await;
    origin.stop().await;
}
