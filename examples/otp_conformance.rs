//! Runs a supervision conformance scenario (see `../shared/conformance/FORMAT.md`)
//! on Warden's public supervisor API and prints its trace, which must match the
//! trace Erlang/OTP's own `supervisor` printed for the same scenario.
//!
//!     cargo run -q --release --example otp_conformance -- FILE.scn

#[path = "support/otp_names.rs"]
mod otp_names;

#[path = "support/report.rs"]
mod report;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use otp_names::OtpName;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::time::Instant;
use warden::supervisor::{
    ChildError, ChildInfo, ChildKind, ChildSpec, ChildState, Restart, Shutdown, SpawnError, Strategy, Supervisor,
    SupervisorBuilder, SupervisorEvent,
};

/// What the script tells the workers to do.
#[derive(Default)]
struct Control {
    init_fails: Mutex<HashMap<String, u32>>,
    slow_stop: Mutex<HashMap<String, u64>>,
}

/// How a worker is told to exit.
enum Exit {
    Normal,
    Shutdown,
    Boom,
}

#[cfg(feature = "cluster")]
impl ractor::Message for Exit {}

struct Worker {
    id: String,
    control: Arc<Control>,
}

/// Whether the worker is ending on its own (`exit`): then `slow_stop` does not
/// apply, as it does not in the oracle, where only a shutdown asked for by the
/// supervisor is slow.
struct ExitingOnItsOwn(bool);

impl Actor for Worker {
    type Msg = Exit;
    type State = ExitingOnItsOwn;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Exit>, _: ()) -> Result<ExitingOnItsOwn, ActorProcessingErr> {
        let mut fails = self.control.init_fails.lock().unwrap();
        if let Some(n) = fails.get_mut(&self.id).filter(|n| **n > 0) {
            *n -= 1;
            return Err("boom".into());
        }
        Ok(ExitingOnItsOwn(false))
    }

    async fn handle(
        &self,
        myself: ActorRef<Exit>,
        msg: Exit,
        exiting: &mut ExitingOnItsOwn,
    ) -> Result<(), ActorProcessingErr> {
        exiting.0 = true;
        match msg {
            Exit::Normal => myself.stop(None),
            Exit::Shutdown => myself.stop(Some("shutdown".into())),
            Exit::Boom => return Err("boom".into()),
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<Exit>, exiting: &mut ExitingOnItsOwn) -> Result<(), ActorProcessingErr> {
        if exiting.0 {
            return Ok(());
        }
        let slow = self.control.slow_stop.lock().unwrap().get(&self.id).copied();
        if let Some(ms) = slow {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(())
    }
}

fn worker_spec(id: &str, restart: &str, shutdown: &str, control: &Arc<Control>) -> Result<ChildSpec> {
    let (wid, control) = (id.to_string(), control.clone());
    Ok(ChildSpec::actor(id, move || {
        (
            Worker {
                id: wid.clone(),
                control: control.clone(),
            },
            (),
        )
    })
    .restart(parse_restart(restart)?)
    .shutdown(parse_shutdown(shutdown)?))
}

fn parse_restart(s: &str) -> Result<Restart> {
    Ok(match s {
        "permanent" => Restart::Permanent,
        "transient" => Restart::Transient,
        "temporary" => Restart::Temporary,
        _ => bail!("bad restart type {s:?}"),
    })
}

fn parse_shutdown(s: &str) -> Result<Shutdown> {
    Ok(match s {
        "brutal_kill" => Shutdown::BrutalKill,
        "infinity" => Shutdown::Infinity,
        ms => Shutdown::Timeout(Duration::from_millis(ms.parse().context("shutdown")?)),
    })
}

fn parse_strategy(s: &str) -> Result<Strategy> {
    Ok(match s {
        "one_for_one" => Strategy::OneForOne,
        "one_for_all" => Strategy::OneForAll,
        "rest_for_one" => Strategy::RestForOne,
        _ => bail!("bad strategy {s:?}"),
    })
}

/// A declared node of the tree, before `start`.
enum Decl {
    Sup {
        id: String,
        strategy: Strategy,
        intensity: u32,
        period_s: u64,
        restart: Restart,
        shutdown: Shutdown,
    },
    Worker {
        id: String,
        restart: String,
        shutdown: String,
    },
}

struct Tree {
    root: Option<Decl>,
    children: HashMap<String, Vec<Decl>>,
}

impl Tree {
    fn builder(&self, decl: &Decl, control: &Arc<Control>) -> Result<SupervisorBuilder> {
        let Decl::Sup {
            id,
            strategy,
            intensity,
            period_s,
            ..
        } = decl
        else {
            bail!("not a supervisor");
        };
        let mut b = Supervisor::builder(id.clone())
            .strategy(*strategy)
            .intensity(*intensity, Duration::from_secs(*period_s));
        for child in self.children.get(id).into_iter().flatten() {
            b = b.child(match child {
                Decl::Worker { id, restart, shutdown } => worker_spec(id, restart, shutdown, control)?,
                Decl::Sup { restart, shutdown, .. } => self
                    .builder(child, control)?
                    .into_child()
                    .restart(*restart)
                    .shutdown(*shutdown),
            });
        }
        Ok(b)
    }
}

struct Runner {
    root: Option<Supervisor>,
    root_id: String,
    control: Arc<Control>,
    tracing: Arc<AtomicBool>,
}

impl Runner {
    /// Every child of the tree, depth first, with the supervisor it is under.
    async fn walk(&self) -> Vec<(Supervisor, ChildInfo)> {
        let mut out = Vec::new();
        let Some(root) = &self.root else { return out };
        let mut stack = vec![root.clone()];
        while let Some(sup) = stack.pop() {
            let Ok(children) = sup.which_children().await else {
                continue;
            };
            for info in children {
                if let Some(child_sup) = info.supervisor() {
                    stack.push(child_sup);
                }
                out.push((sup.clone(), info));
            }
        }
        out
    }

    async fn find_sup(&self, id: &str) -> Option<Supervisor> {
        let root = self.root.as_ref()?;
        if id == self.root_id {
            return root.is_alive().then(|| root.clone());
        }
        self.walk()
            .await
            .into_iter()
            .find(|(_, c)| c.id() == id && c.kind == ChildKind::Supervisor)
            .and_then(|(_, c)| c.supervisor())
    }

    /// The running worker or supervisor called `id`, and which it is.
    async fn find_running(&self, id: &str) -> Option<(ChildKind, ActorCell)> {
        if id == self.root_id {
            return self.find_sup(id).await.map(|s| (ChildKind::Supervisor, s.actor()));
        }
        self.walk()
            .await
            .into_iter()
            .find(|(_, c)| c.id() == id)
            .and_then(|(_, c)| Some((c.kind, c.state.actor()?.clone())))
    }

    /// Waits until no supervisor has anything left to do: two equal pictures of
    /// the tree in a row, nothing restarting, and at least 50 ms since the action.
    async fn settle(&self, since: Instant) {
        let mut last: Option<Vec<String>> = None;
        let deadline = since + Duration::from_secs(10);
        loop {
            let now: Vec<String> = self
                .walk()
                .await
                .into_iter()
                .map(|(_, c)| match &c.state {
                    ChildState::Running(cell) => format!("{}={}", c.path, cell.get_id()),
                    other => format!("{}={}", c.path, other.otp_name()),
                })
                .collect();
            let restarting = now.iter().any(|s| s.ends_with("=restarting"));
            if !restarting && last.as_ref() == Some(&now) && since.elapsed() >= Duration::from_millis(50) {
                return;
            }
            if Instant::now() > deadline {
                return;
            }
            last = Some(now);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn run(&mut self, tree: &Tree, line: &str) -> Result<()> {
        let words: Vec<&str> = line.split_whitespace().collect();
        // As the oracle prints an action back: its words, one space apart.
        let line = &words.join(" ");
        let since = Instant::now();
        match words.as_slice() {
            ["start"] => {
                let root = tree.root.as_ref().context("no root declared")?;
                let tracing = self.tracing.clone();
                let root_id = self.root_id.clone();
                // Inside the supervisors, as each event happens: a line is printed
                // before the supervisor answers the next call, so the trace keeps
                // the order of cause and effect however loaded the machine is (an
                // observer task could print late, after the next action's line).
                let builder = tree.builder(root, &self.control)?.inline_observer(move |e| {
                    if tracing.load(Ordering::SeqCst) {
                        trace_event(&root_id, e);
                    }
                });
                match builder.spawn().await {
                    Ok(root) => self.root = Some(root),
                    // OTP's start_link answers {error, {shutdown, {failed_to_start_child, ..}}}:
                    // the root's own start failed, after its children's lines.
                    Err(SpawnError::ChildFailedToStart { .. }) => println!("init_failed {}", self.root_id),
                    Err(e) => return Err(e).context("root failed to start"),
                }
            }
            ["sleep", ms] => {
                tokio::time::sleep(Duration::from_millis(ms.parse()?)).await;
                return Ok(());
            }
            ["exit", id, reason] => {
                let exit = match *reason {
                    "normal" => Exit::Normal,
                    "shutdown" => Exit::Shutdown,
                    "boom" => Exit::Boom,
                    _ => bail!("bad exit reason in {line:?}"),
                };
                let cell = match self.find_running(id).await {
                    None => {
                        println!("error {line} noproc");
                        return Ok(());
                    }
                    Some((ChildKind::Worker, cell)) => cell,
                    // OTP's supervisor ignores the request; a supervisor here has no such message.
                    Some((ChildKind::Supervisor, _)) => bail!("{line:?}: exit is for workers, {id} is a supervisor"),
                };
                ActorRef::<Exit>::from(cell.clone()).send_message(exit).ok();
                cell.wait(None).await.ok();
            }
            ["kill", id] => {
                // A supervisor can be killed too; see README's differences from OTP
                // for what its workers then report.
                let Some((_, cell)) = self.find_running(id).await else {
                    println!("error {line} noproc");
                    return Ok(());
                };
                cell.kill();
                cell.wait(None).await.ok();
            }
            ["init_fails", id, n] => {
                self.control
                    .init_fails
                    .lock()
                    .unwrap()
                    .insert(id.to_string(), n.parse()?);
                return Ok(());
            }
            ["slow_stop", id, ms] => {
                self.control
                    .slow_stop
                    .lock()
                    .unwrap()
                    .insert(id.to_string(), ms.parse()?);
                return Ok(());
            }
            ["start_child", sup, "worker", id, restart, shutdown] => match self.find_sup(sup).await {
                None => println!("error {line} noproc"),
                Some(s) => {
                    let r = s.start_child(worker_spec(id, restart, shutdown, &self.control)?).await;
                    print_result(line, "start_child", id, r.map(|_| ()));
                }
            },
            [action @ ("terminate_child" | "restart_child" | "delete_child"), sup, id] => {
                match self.find_sup(sup).await {
                    None => println!("error {line} noproc"),
                    Some(s) => {
                        let r = match *action {
                            "terminate_child" => s.terminate_child(id).await,
                            "restart_child" => s.restart_child(id).await.map(|_| ()),
                            _ => s.delete_child(id).await,
                        };
                        print_result(line, action, id, r);
                    }
                }
            }
            ["which_children", sup] => match self
                .find_sup(sup)
                .await
                .map(|s| async move { s.which_children().await })
            {
                None => println!("error {line} noproc"),
                Some(f) => match f.await {
                    Err(_) => println!("error {line} noproc"),
                    Ok(children) => {
                        let mut out = format!("children {sup}");
                        for c in children {
                            out.push_str(&format!(" {}={}", c.id(), c.state.otp_name()));
                        }
                        println!("{out}");
                    }
                },
            },
            ["count_children", sup] => match self.find_sup(sup).await {
                None => println!("error {line} noproc"),
                Some(s) => match s.count_children().await {
                    Err(_) => println!("error {line} noproc"),
                    Ok(c) => println!(
                        "count {sup} specs={} active={} supervisors={} workers={}",
                        c.specs, c.active, c.supervisors, c.workers
                    ),
                },
            },
            ["stop", sup] => match self.find_sup(sup).await {
                None => println!("error {line} noproc"),
                Some(s) => s.stop().await,
            },
            _ => bail!("cannot read line {line:?}"),
        }
        self.settle(since).await;
        Ok(())
    }
}

/// Prints the answer to a child-management call: `result ACTION ID VALUE`, or
/// `error LINE noproc` when the supervisor died before it could answer.
fn print_result(line: &str, action: &str, id: &str, r: Result<(), ChildError>) {
    match r {
        Ok(()) => println!("result {action} {id} ok"),
        Err(ChildError::NoProc(_)) => println!("error {line} noproc"),
        Err(e) => println!("result {action} {id} error:{}", e.otp_name()),
    }
}

fn trace_event(root_id: &str, event: &SupervisorEvent) {
    match event {
        SupervisorEvent::ChildStarted {
            path,
            kind: ChildKind::Worker,
            ..
        } => println!("start {}", path.id()),
        // A supervisor's start fails when one of its children fails to start.
        SupervisorEvent::ChildStartFailed { path, .. } => println!("init_failed {}", path.id()),
        SupervisorEvent::ChildExited { path, reason, .. } => println!("down {} {}", path.id(), reason.otp_name()),
        SupervisorEvent::Stopped { path } if path.as_str() == root_id => println!("down {root_id} shutdown"),
        _ => {}
    }
}

fn parse(text: &str) -> Result<(Tree, Vec<String>)> {
    let mut tree = Tree {
        root: None,
        children: HashMap::new(),
    };
    let mut actions = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["sup", id, strategy, intensity, period] if tree.root.is_none() => {
                tree.root = Some(Decl::Sup {
                    id: id.to_string(),
                    strategy: parse_strategy(strategy)?,
                    intensity: intensity.parse()?,
                    period_s: period.parse()?,
                    restart: Restart::Permanent,
                    shutdown: Shutdown::Infinity,
                });
            }
            [
                "sup",
                id,
                strategy,
                intensity,
                period,
                "under",
                parent,
                restart,
                shutdown,
            ] => {
                tree.children.entry(parent.to_string()).or_default().push(Decl::Sup {
                    id: id.to_string(),
                    strategy: parse_strategy(strategy)?,
                    intensity: intensity.parse()?,
                    period_s: period.parse()?,
                    restart: parse_restart(restart)?,
                    shutdown: parse_shutdown(shutdown)?,
                });
            }
            ["worker", id, "under", parent, restart, shutdown] => {
                tree.children.entry(parent.to_string()).or_default().push(Decl::Worker {
                    id: id.to_string(),
                    restart: restart.to_string(),
                    shutdown: shutdown.to_string(),
                });
            }
            _ => actions.push(line.to_string()),
        }
    }
    Ok((tree, actions))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    report::exit_code(run().await.map(|()| std::process::ExitCode::SUCCESS))
}

async fn run() -> Result<()> {
    let path = std::env::args().nth(1).context("usage: otp_conformance FILE.scn")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let (tree, actions) = parse(&text)?;
    let root_id = match &tree.root {
        Some(Decl::Sup { id, .. }) => id.clone(),
        _ => bail!("no root supervisor declared"),
    };
    let mut runner = Runner {
        root: None,
        root_id,
        control: Arc::new(Control::default()),
        tracing: Arc::new(AtomicBool::new(true)),
    };
    for line in &actions {
        runner.run(&tree, line).await?;
    }
    runner.tracing.store(false, Ordering::SeqCst);
    if let Some(root) = &runner.root {
        root.stop().await;
    }
    Ok(())
}
