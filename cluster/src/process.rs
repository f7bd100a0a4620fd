//! [`NodeProcess`]: a child that is a `warden node` OS process, supervised like any child.
//!
//! A tool that crashes, leaks or wedges can take its process down with it; run it on a node
//! of its own, in a process of its own, and only that process goes. The child's actor starts
//! the process, waits until it is up and (when given an origin node) a member of the
//! cluster, and then stands for it: the process's end is the child's exit (`killed` for a
//! kill -9, `normal` for exit status 0, `exit status N` or `signal N` otherwise), which the
//! supervisor handles by its strategy. Stopping the child sends the process SIGTERM; past
//! the child's shutdown time the supervisor kills the actor and the process is killed with it.
//!
//! Put the children that run *on* that node after it under a `RestForOne` supervisor, pinned
//! to its name, with a restart backoff: when the process dies they are restarted after it,
//! on the new one. (The origin's failure detector may see the node go before the process's
//! exit reaches the supervisor; without a backoff, the pinned children's restarts fail at once
//! and can use up the supervisor's intensity in that moment.)

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warden_supervisor::{ChildSpec, StartContext};

use crate::error::ClusterError;
use crate::node::Node;

/// How long a node process is waited for (its `ready` line, then its membership), by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A `warden node` process as a child: its program, name, cookie and seeds.
///
/// ```no_run
/// use std::time::Duration;
/// use warden_cluster::{ECHO_KIND, EchoArgs, Node, NodeProcess, Placement, RemoteChild};
/// use warden_supervisor::{Backoff, Strategy, Supervisor};
///
/// # async fn run(node: Node) -> Result<(), Box<dyn std::error::Error>> {
/// let sandbox = NodeProcess::new("warden", "sandbox").cookie("secret").origin(&node);
/// let tool = RemoteChild::new(&node, ECHO_KIND, &EchoArgs { tag: "tool".into() })?
///     .placement(Placement::Pinned("sandbox".into()));
/// let root = Supervisor::builder("root")
///     .strategy(Strategy::RestForOne)
///     .child(sandbox.spec("sandbox"))
///     .child(tool.spec("tool").backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_secs(1))))
///     .spawn()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NodeProcess {
    program: PathBuf,
    name: String,
    cookie: String,
    listen: Option<SocketAddr>,
    join: Vec<SocketAddr>,
    origin: Option<Node>,
    ready_timeout: Duration,
}

impl fmt::Debug for NodeProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeProcess")
            .field("program", &self.program)
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("join", &self.join)
            .finish_non_exhaustive()
    }
}

impl NodeProcess {
    /// A node process running `program node --name NAME ...` (`program` is the `warden`
    /// binary, or any with the same `node` subcommand).
    pub fn new(program: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            name: name.into(),
            cookie: "warden".to_string(),
            listen: None,
            join: Vec::new(),
            origin: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// Its cookie (handed to it in `$WARDEN_COOKIE`, never on its command line).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = cookie.into();
        self
    }

    /// Where it listens (default: a free port of 127.0.0.1, chosen at every start).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// A node it joins.
    pub fn join(mut self, addr: SocketAddr) -> Self {
        self.join.push(addr);
        self
    }

    /// Joins `origin`, and makes every start wait until `origin` sees it up, so that the
    /// children placed on it right after can be.
    pub fn origin(mut self, origin: &Node) -> Self {
        self.join.push(origin.listen_addr());
        self.origin = Some(origin.clone());
        self
    }

    /// How long a start waits for it (default [`DEFAULT_READY_TIMEOUT`]).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// A permanent worker spec with id `id`.
    pub fn spec(self, id: impl Into<String>) -> ChildSpec {
        let process = Arc::new(self);
        ChildSpec::worker(id, move |ctx: StartContext| {
            let process = process.clone();
            async move { ctx.spawn(ProcessActor, process).await.map(ActorCell::from) }
        })
    }
}

/// The OS process id of a node process child (the cell its supervisor reports).
///
/// # Errors
///
/// [`ClusterError::NodeDown`] if the child is gone.
pub async fn process_id(child: &ActorCell) -> Result<u32, ClusterError> {
    let (tx, rx) = oneshot::channel();
    let gone = || ClusterError::NodeDown(String::new());
    ActorRef::<ProcessMsg>::from(child.clone())
        .cast(ProcessMsg::Pid(tx))
        .map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

/// What the process's actor hears.
pub(crate) enum ProcessMsg {
    /// The process ended.
    Exited(std::io::Result<ExitStatus>),
    /// Its pid, please.
    Pid(oneshot::Sender<u32>),
}

impl ractor::Message for ProcessMsg {}

struct ProcessActor;

struct ProcessState {
    pid: u32,
    /// Owns the process (killed when dropped, with the task) and reports its end.
    waiter: JoinHandle<()>,
    exited: Option<oneshot::Receiver<()>>,
}

impl Drop for ProcessState {
    fn drop(&mut self) {
        // Aborting the task drops the process handle, which kills the process.
        self.waiter.abort();
    }
}

/// Why a start failed.
#[derive(Debug, thiserror::Error)]
#[error("node process {name}: {reason}")]
struct StartFailed {
    name: String,
    reason: String,
}

impl Actor for ProcessActor {
    type Msg = ProcessMsg;
    type State = ProcessState;
    type Arguments = Arc<NodeProcess>;

    async fn pre_start(
        &self,
        myself: ActorRef<ProcessMsg>,
        spec: Arc<NodeProcess>,
    ) -> Result<ProcessState, ActorProcessingErr> {
        let failed = |reason: String| StartFailed {
            name: spec.name.clone(),
            reason,
        };
        let listen = match spec.listen {
            Some(addr) => addr,
            None => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| failed(e.to_string()))?,
        };
        let mut command = Command::new(&spec.program);
        command
            .args(["node", "--name", &spec.name, "--listen", &listen.to_string()])
            .env("WARDEN_COOKIE", &spec.cookie)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for seed in &spec.join {
            command.args(["--join", &seed.to_string()]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| failed(format!("cannot start {}: {e}", spec.program.display())))?;
        let pid = child.id().ok_or_else(|| failed("it ended at once".into()))?;
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        // `ready NAME LISTEN INCARNATION`
        let ready = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("ready ") {
                    return Some(rest.rsplit(' ').next().and_then(|i| i.parse::<u64>().ok()));
                }
            }
            None
        };
        let incarnation = match tokio::time::timeout(spec.ready_timeout, ready).await {
            Ok(Some(incarnation)) => incarnation,
            Ok(None) => return Err(failed("it ended before it was ready".into()).into()),
            Err(_) => return Err(failed(format!("not ready within {:?}", spec.ready_timeout)).into()),
        };
        let (done_tx, done_rx) = oneshot::channel();
        let name = spec.name.clone();
        let waiter = tokio::spawn(async move {
            // Its event lines, for the logs; reading them also keeps its pipe from filling.
            let log = async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(node = %name, "{line}");
                }
            };
            let (status, ()) = tokio::join!(child.wait(), log);
            let _ = myself.cast(ProcessMsg::Exited(status));
            let _ = done_tx.send(());
        });
        let state = ProcessState {
            pid,
            waiter,
            exited: Some(done_rx),
        };
        if let Some(origin) = &spec.origin {
            // This process, not the one before it (which the origin may not have declared
            // down yet). Dropping `state` on failure kills the process.
            let incarnation = incarnation.ok_or_else(|| failed("its ready line has no incarnation".into()))?;
            origin
                .wait_for_incarnation(&spec.name, incarnation, spec.ready_timeout)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ProcessMsg>,
        message: ProcessMsg,
        state: &mut ProcessState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProcessMsg::Pid(reply) => {
                let _ = reply.send(state.pid);
            }
            ProcessMsg::Exited(status) => {
                state.exited = None;
                myself.stop(Some(exit_reason(status)));
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<ProcessMsg>, state: &mut ProcessState) -> Result<(), ActorProcessingErr> {
        // Stopped by its supervisor: SIGTERM, and wait for the end (the supervisor's
        // shutdown time bounds the wait; past it the process is killed with the actor).
        if let Some(exited) = state.exited.take() {
            if let Some(pid) = i32::try_from(state.pid).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = exited.await;
        }
        Ok(())
    }
}

/// The child's exit reason for the process's end.
fn exit_reason(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match status {
        Ok(status) if status.success() => "normal".to_string(),
        Ok(status) => match (status.code(), status.signal()) {
            (_, Some(9)) => "killed".to_string(),
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => status.to_string(),
        },
        Err(e) => format!("lost the process: {e}"),
    }
}
