//! A `warden node` OS process as a supervised child: the remote children pinned to it run in
//! its process; its kill -9 is the child's exit with reason `killed`, and a `RestForOne`
//! supervisor starts a new process and the children on it again.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use std::time::Duration;

use nodes::{COOKIE, WAIT};
use ractor::ActorRef;
use tokio::sync::mpsc;
use warden_cluster::{ECHO_KIND, EchoArgs, EchoMsg, Node, NodeProcess, Placement, RemoteChild, locate, process_id};
use warden_supervisor::{Backoff, ExitReason, Strategy, Supervisor, SupervisorEvent};

async fn ask(origin: &Node, root: &Supervisor) -> String {
    let children = root.which_children().await.unwrap();
    let tool = children.iter().find(|c| c.id() == "tool").unwrap();
    let location = locate(origin, tool.state.actor().unwrap(), WAIT).await.unwrap();
    let echo = ActorRef::<EchoMsg>::from(location.actor);
    ractor::call_t!(echo, EchoMsg::Ping, 5_000, "hi".to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_process_is_a_child_restarted_with_what_runs_on_it() {
    let origin = Node::builder("origin").cookie(COOKIE).start().await.unwrap();
    let sandbox = NodeProcess::new(env!("CARGO_BIN_EXE_warden"), "sandbox")
        .cookie(COOKIE)
        .origin(&origin);
    let tool = RemoteChild::new(&origin, ECHO_KIND, &EchoArgs { tag: "tool".into() })
        .unwrap()
        .placement(Placement::Pinned("sandbox".into()));
    let (tx, mut events) = mpsc::unbounded_channel();
    let root = Supervisor::builder("root")
        .strategy(Strategy::RestForOne)
        .intensity(5, Duration::from_secs(60))
        .observer(move |e| drop(tx.send(e.clone())))
        .child(
            sandbox
                .spec("sandbox")
                .shutdown(warden_supervisor::Shutdown::Timeout(Duration::from_secs(5))),
        )
        // The origin may see the node down before its process's exit reaches the supervisor:
        // a backoff lets that exit in before the tool's restarts use up the intensity.
        .child(
            tool.spec("tool")
                .backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_secs(1))),
        )
        .spawn()
        .await
        .unwrap();
    assert_eq!(ask(&origin, &root).await, "tool@sandbox: hi");

    let children = root.which_children().await.unwrap();
    let process = children
        .iter()
        .find(|c| c.id() == "sandbox")
        .unwrap()
        .state
        .actor()
        .unwrap()
        .clone();
    let pid = process_id(&process).await.unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();

    // The process's death is the child's exit, `killed`; both are started again, in order.
    let wait = async {
        let mut exits = Vec::new();
        let mut started = Vec::new();
        while started.len() < 2 {
            match events.recv().await.unwrap() {
                SupervisorEvent::ChildExited { path, reason, .. } => exits.push((path.id().to_string(), reason)),
                // The first starts are before the kill.
                SupervisorEvent::ChildStarted { path, .. } if !exits.is_empty() => started.push(path.id().to_string()),
                _ => {}
            }
        }
        (exits, started)
    };
    let (exits, started) = tokio::time::timeout(WAIT, wait).await.expect("the restart");
    // Which of the two exits comes first is a race between the process's end and the
    // origin's failure detector; both come, and the node starts before the tool.
    assert!(
        exits.contains(&("sandbox".to_string(), ExitReason::Killed)),
        "{exits:?}"
    );
    assert!(exits.iter().any(|(id, _)| id == "tool"), "{exits:?}");
    assert_eq!(started, ["sandbox", "tool"]);
    let new_pid = process_id(root.which_children().await.unwrap()[0].state.actor().unwrap())
        .await
        .unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(ask(&origin, &root).await, "tool@sandbox: hi");

    // Stopping the tree stops the process (SIGTERM): it exits on its own.
    root.stop().await;
    let alive =
        rustix::process::test_kill_process(rustix::process::Pid::from_raw(i32::try_from(new_pid).unwrap()).unwrap());
    assert!(alive.is_err(), "the node process {new_pid} outlived its supervisor");
    origin.stop().await;
}
