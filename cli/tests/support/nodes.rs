//! `warden node` processes for the cluster tests: started on free ports of 127.0.0.1, their
//! event lines read as they come, signalled as a test needs.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// How long a test waits for a line before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// The cookie the tests' nodes share.
pub(crate) const COOKIE: &str = "warden-test-cookie";

/// A free port on 127.0.0.1 (free when asked; the node binds it at once).
pub(crate) fn free_addr() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// A running `warden node`.
pub(crate) struct NodeProc {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    new_line: Arc<Notify>,
}

impl NodeProc {
    /// Starts `warden node --name NAME` on a free port, joining `join`, and waits for its
    /// `ready` line.
    pub(crate) async fn start(name: &str, cookie: &str, join: &[SocketAddr]) -> Self {
        Self::start_with(name, cookie, join, &[]).await
    }

    /// As [`NodeProc::start`], with more arguments.
    pub(crate) async fn start_with(name: &str, cookie: &str, join: &[SocketAddr], extra: &[String]) -> Self {
        let addr = free_addr();
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .args(["node", "--name", name, "--listen", &addr.to_string()])
            .env("WARDEN_COOKIE", cookie)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for seed in join {
            command.args(["--join", &seed.to_string()]);
        }
        command.args(extra);
        let mut child = command.spawn().expect("warden node starts");
        let stdout = child.stdout.take().unwrap();
        let (lines, new_line) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Notify::new()));
        {
            let (lines, new_line) = (lines.clone(), new_line.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().unwrap().push(line);
                    new_line.notify_waiters();
                }
            });
        }
        let node = Self {
            name: name.to_string(),
            addr,
            child,
            lines,
            new_line,
        };
        node.wait_line(|l| l.starts_with("ready "), "ready").await;
        node
    }

    /// Every line so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for a line `matches` accepts (it may be there already), and returns it.
    pub(crate) async fn wait_line(&self, matches: impl Fn(&str) -> bool, what: &str) -> String {
        self.wait_lines(1, matches, what).await.pop().unwrap()
    }

    /// Waits until `n` lines match, and returns them.
    pub(crate) async fn wait_lines(&self, n: usize, matches: impl Fn(&str) -> bool, what: &str) -> Vec<String> {
        let wait = async {
            loop {
                let notified = self.new_line.notified();
                let found: Vec<String> = self.lines().into_iter().filter(|l| matches(l)).collect();
                if found.len() >= n {
                    return found;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(WAIT, wait).await {
            Ok(found) => found,
            Err(_) => panic!(
                "node {}: no {n} line(s) `{what}` in {WAIT:?}; lines: {:#?}",
                self.name,
                self.lines()
            ),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// kill -9.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// SIGSTOP: the process stops answering, its connections stay open.
    pub(crate) fn pause(&self) {
        signal(self.pid(), rustix::process::Signal::STOP);
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) {
        signal(self.pid(), rustix::process::Signal::CONT);
    }

    /// The process's peak resident memory, from /proc.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// Waits until a node hosts the agent (its gateway's process group reaches this process).
pub(crate) async fn reachable(agent: &warden_cluster::RemoteAgent) {
    let deadline = std::time::Instant::now() + WAIT;
    while !agent.is_reachable() {
        assert!(
            std::time::Instant::now() < deadline,
            "agent {} never became reachable",
            agent.name()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// A ReAct agent on the fake provider at `base_url` (with `journal`, if any), placed by a
/// supervisor `root` here (intensity 5 in 60 s) on node `on` while it is up; returns the
/// supervisor and the agent, once it is reachable.
pub(crate) async fn place_clerk(
    origin: &warden_cluster::Node,
    base_url: String,
    journal: Option<String>,
    on: &str,
) -> (warden_supervisor::Supervisor, warden_cluster::RemoteAgent) {
    let args = warden_cluster::ReactAgentArgs {
        name: "clerk".into(),
        base_url,
        model: "fake-model".into(),
        system: None,
        journal,
    };
    let clerk = warden_cluster::RemoteChild::new(origin, "react_agent", &args)
        .unwrap()
        .placement(warden_cluster::Placement::Prefer(vec![on.into()]));
    let root = warden_supervisor::Supervisor::builder("root")
        .intensity(5, Duration::from_secs(60))
        .child(clerk.spec("clerk"))
        .spawn()
        .await
        .unwrap();
    let agent = warden_cluster::RemoteAgent::new(origin, "clerk");
    reachable(&agent).await;
    (root, agent)
}

/// A node `origin` in this process, seeded with `nodes`, once it sees them all up.
pub(crate) async fn origin_joined(nodes: &[&NodeProc]) -> warden_cluster::Node {
    let mut builder = warden_cluster::Node::builder("origin").cookie(COOKIE);
    for node in nodes {
        builder = builder.seed(node.addr);
    }
    let origin = builder.start().await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    origin.wait_for(&names, WAIT).await.unwrap();
    origin
}
