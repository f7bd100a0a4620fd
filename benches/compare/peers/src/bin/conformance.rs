//! Runs a supervision conformance scenario (`../shared/conformance/FORMAT.md`)
//! on `ractor-supervisor` and prints its trace, to be diffed against the trace
//! Erlang/OTP printed for the same scenario (as `check.sh` does for Warden's
//! `examples/otp_conformance.rs`).
//!
//! ```text
//! CARGO_TARGET_DIR=target/compare/peers-target cargo run -q --release \
//!   --manifest-path benches/compare/peers/Cargo.toml --features conformance \
//!   --bin conformance -- FILE.scn                       # one trace
//! ... --bin conformance -- --check ../shared/conformance/scenarios
//! ```
//!
//! `--check DIR` runs every `DIR/*.scn` in a fresh process of its own (ractor's
//! registry is global), compares the trace with `DIR/*.trace` line for line
//! (as `check.sh` diffs them), prints `PASS`, `FAIL` (with both traces) or
//! `N/A` per scenario and ends with `N passed, M failed, K not expressible`.
//!
//! Exit status 3 with `N/A <why>` on stderr (and no trace) when the scenario
//! needs something ractor-supervisor cannot express; `06-peers.sh` counts those
//! apart from failures. Not expressible: `start_child`, `terminate_child`,
//! `restart_child`, `delete_child` (its static `Supervisor` has no run-time
//! child operations; its `DynamicSupervisor` has no declared children and is
//! one_for_one only), and a per-child shutdown (`slow_stop`, `brutal_kill`:
//! ractor kills the children of a stopping actor; there is no shutdown spec).
//! Otherwise the SHUTDOWN field is ignored.
//!
//! How the trace is taken (ractor-supervisor has no event hooks of its own):
//! a worker prints `start`/`init_failed` in its `pre_start`, and `down ID REASON`
//! just before it exits on its own (`exit`); the runner prints `down ID killed`
//! before a `kill`; every other exit (a child the supervisor killed, a
//! supervisor that stopped or melted down) is printed by a tracer actor that
//! monitors every worker and supervisor (ractor's `monitors` feature), with the
//! reason ractor reports: `killed`, the stop reason, `normal` for none, `boom`
//! for a failure. `which_children` and `count_children` are read from the
//! supervisor's `InspectState` (the child specs in order) and its live ractor
//! children (a spec is `running` when a child of that name is alive, else
//! `undefined`). After each action the runner waits until the set of live
//! children of every supervisor is the same twice 10 ms apart, and 50 ms at least.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent, registry};
use ractor_supervisor::{
    ChildSpec, Restart, SpawnFn, Supervisor, SupervisorArguments, SupervisorMsg, SupervisorOptions, SupervisorStrategy,
};
use tokio::time::Instant;

/// Whether the trace is being printed, and which exits were printed already.
struct Trace {
    on: std::sync::atomic::AtomicBool,
    reported: Mutex<HashSet<ActorId>>,
}

fn trace() -> &'static Trace {
    static T: OnceLock<Trace> = OnceLock::new();
    T.get_or_init(|| Trace {
        on: std::sync::atomic::AtomicBool::new(true),
        reported: Mutex::new(HashSet::new()),
    })
}

fn emit(line: &str) {
    if trace().on.load(std::sync::atomic::Ordering::SeqCst) {
        println!("{line}");
    }
}

/// Prints `down` for an actor and remembers that it was printed.
fn emit_down(id: ActorId, name: &str, reason: &str) {
    trace().reported.lock().unwrap().insert(id);
    emit(&format!("down {name} {reason}"));
}

/// What the script tells the workers to do.
#[derive(Default)]
struct Control {
    init_fails: Mutex<HashMap<String, u32>>,
}

enum Exit {
    Normal,
    Shutdown,
    Boom,
}

struct Worker {
    id: String,
    control: Arc<Control>,
}

impl Actor for Worker {
    type Msg = Exit;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Exit>, _: ()) -> Result<(), ActorProcessingErr> {
        let mut fails = self.control.init_fails.lock().unwrap();
        if let Some(n) = fails.get_mut(&self.id).filter(|n| **n > 0) {
            *n -= 1;
            emit(&format!("init_failed {}", self.id));
            return Err("boom".into());
        }
        emit(&format!("start {}", self.id));
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<Exit>, msg: Exit, _: &mut ()) -> Result<(), ActorProcessingErr> {
        let id = myself.get_id();
        match msg {
            Exit::Normal => {
                emit_down(id, &self.id, "normal");
                myself.stop(None);
            }
            Exit::Shutdown => {
                emit_down(id, &self.id, "shutdown");
                myself.stop(Some("shutdown".into()));
            }
            Exit::Boom => {
                emit_down(id, &self.id, "boom");
                return Err("boom".into());
            }
        }
        Ok(())
    }
}

/// Monitors every worker and supervisor and prints the exits nobody printed.
struct Tracer;

impl Actor for Tracer {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        evt: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match &evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.clone().unwrap_or_else(|| "normal".to_string()))
            }
            SupervisionEvent::ActorFailed(cell, _) => (cell, "boom".to_string()),
            _ => return Ok(()),
        };
        if trace().reported.lock().unwrap().remove(&cell.get_id()) {
            return Ok(());
        }
        emit(&format!("down {} {reason}", cell.get_name().unwrap_or_default()));
        Ok(())
    }
}

/// A declared node of the tree.
#[derive(Clone)]
enum Decl {
    Sup {
        id: String,
        strategy: SupervisorStrategy,
        intensity: usize,
        period_s: u64,
        restart: Restart,
    },
    Worker {
        id: String,
        restart: Restart,
    },
}

impl Decl {
    fn id(&self) -> &str {
        match self {
            Decl::Sup { id, .. } | Decl::Worker { id, .. } => id,
        }
    }
}

struct Tree {
    root: Option<Decl>,
    children: HashMap<String, Vec<Decl>>,
}

struct Ctx {
    tree: Tree,
    control: Arc<Control>,
    tracer: ActorCell,
    /// The ids of the declared supervisors, the root first.
    sups: Vec<String>,
}

fn arguments(ctx: &Arc<Ctx>, decl: &Decl) -> SupervisorArguments {
    let Decl::Sup {
        id,
        strategy,
        intensity,
        period_s,
        ..
    } = decl
    else {
        unreachable!("arguments of a supervisor")
    };
    let child_specs = ctx
        .tree
        .children
        .get(id)
        .into_iter()
        .flatten()
        .map(|child| child_spec(ctx, child))
        .collect();
    SupervisorArguments {
        child_specs,
        options: SupervisorOptions {
            strategy: *strategy,
            max_restarts: *intensity,
            max_window: Duration::from_secs(*period_s),
            reset_after: None,
        },
    }
}

fn child_spec(ctx: &Arc<Ctx>, decl: &Decl) -> ChildSpec {
    let restart = match decl {
        Decl::Sup { restart, .. } | Decl::Worker { restart, .. } => *restart,
    };
    let (ctx2, decl2) = (ctx.clone(), decl.clone());
    ChildSpec {
        id: decl.id().to_string(),
        restart,
        spawn_fn: SpawnFn::new(move |parent, id| {
            let (ctx, decl) = (ctx2.clone(), decl2.clone());
            async move {
                let cell = match &decl {
                    Decl::Worker { .. } => {
                        let worker = Worker {
                            id: id.clone(),
                            control: ctx.control.clone(),
                        };
                        Supervisor::spawn_linked(id, worker, (), parent).await?.0.get_cell()
                    }
                    Decl::Sup { .. } => {
                        let args = arguments(&ctx, &decl);
                        Supervisor::spawn_linked(id, Supervisor, args, parent)
                            .await?
                            .0
                            .get_cell()
                    }
                };
                ctx.tracer.monitor(cell.clone());
                Ok(cell)
            }
        }),
        backoff_fn: None,
        reset_after: None,
    }
}

fn live(name: &str) -> Option<ActorCell> {
    registry::where_is(name).filter(|c| c.get_status() <= ractor::ActorStatus::Running)
}

/// `(id, running)` for every child spec of `sup`, in order; None when `sup` is not alive.
async fn children(sup: &str) -> Option<Vec<(String, bool)>> {
    let cell = live(sup)?;
    let sref: ActorRef<SupervisorMsg> = cell.clone().into();
    let state = ractor::call!(sref, SupervisorMsg::InspectState).ok()?;
    let alive: HashSet<String> = cell
        .get_children()
        .into_iter()
        .filter(|c| c.get_status() <= ractor::ActorStatus::Running)
        .filter_map(|c| c.get_name())
        .collect();
    Some(
        state
            .child_specs
            .iter()
            .map(|s| (s.id.clone(), alive.contains(&s.id)))
            .collect(),
    )
}

/// Waits until the live children of every supervisor are the same twice in a row.
async fn settle(ctx: &Ctx, since: Instant) {
    let mut last: Option<Vec<String>> = None;
    let deadline = since + Duration::from_secs(10);
    loop {
        let mut now = Vec::new();
        for sup in &ctx.sups {
            if let Some(cell) = live(sup) {
                let mut ids: Vec<String> = cell
                    .get_children()
                    .into_iter()
                    .filter(|c| c.get_status() <= ractor::ActorStatus::Running)
                    .map(|c| format!("{}:{}", c.get_name().unwrap_or_default(), c.get_id()))
                    .collect();
                ids.sort();
                now.push(format!("{sup}={}", ids.join(",")));
            }
        }
        if last.as_ref() == Some(&now) && since.elapsed() >= Duration::from_millis(50) {
            return;
        }
        if Instant::now() > deadline {
            return;
        }
        last = Some(now);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run(ctx: &Arc<Ctx>, line: &str) -> Result<()> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let since = Instant::now();
    match words.as_slice() {
        ["start"] => {
            let root = ctx.tree.root.clone().context("no root declared")?;
            let (r, _) = Supervisor::spawn(root.id().to_string(), arguments(ctx, &root))
                .await
                .context("root failed to start")?;
            ctx.tracer.monitor(r.get_cell());
        }
        ["sleep", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse()?)).await;
            return Ok(());
        }
        ["exit", id, reason] => {
            let cell = live(id).with_context(|| format!("no worker {id}"))?;
            let exit = match *reason {
                "normal" => Exit::Normal,
                "shutdown" => Exit::Shutdown,
                _ => Exit::Boom,
            };
            ActorRef::<Exit>::from(cell.clone()).send_message(exit).ok();
            cell.wait(None).await.ok();
        }
        ["kill", id] => {
            let cell = live(id).with_context(|| format!("no worker {id}"))?;
            emit_down(cell.get_id(), id, "killed");
            cell.kill();
            cell.wait(None).await.ok();
        }
        ["init_fails", id, n] => {
            ctx.control
                .init_fails
                .lock()
                .unwrap()
                .insert(id.to_string(), n.parse()?);
            return Ok(());
        }
        ["which_children", sup] => match children(sup).await {
            None => println!("error {line} noproc"),
            Some(list) => {
                let mut out = format!("children {sup}");
                for (id, running) in list {
                    out.push_str(&format!(" {id}={}", if running { "running" } else { "undefined" }));
                }
                println!("{out}");
            }
        },
        ["count_children", sup] => match children(sup).await {
            None => println!("error {line} noproc"),
            Some(list) => {
                let supervisors = list.iter().filter(|(id, _)| ctx.sups.contains(id)).count();
                println!(
                    "count {sup} specs={} active={} supervisors={supervisors} workers={}",
                    list.len(),
                    list.iter().filter(|(_, r)| *r).count(),
                    list.len() - supervisors
                );
            }
        },
        ["stop", sup] => match live(sup) {
            None => println!("error {line} noproc"),
            Some(cell) => {
                cell.stop(Some("shutdown".into()));
                cell.wait(None).await.ok();
            }
        },
        _ => bail!("cannot read line {line:?}"),
    }
    settle(ctx, since).await;
    Ok(())
}

/// Why ractor-supervisor cannot express a scenario, if it cannot.
fn not_expressible(text: &str) -> Option<String> {
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [
                op @ ("start_child" | "terminate_child" | "restart_child" | "delete_child"),
                ..,
            ] => {
                return Some(format!("{op}: no run-time child operations on a static Supervisor"));
            }
            ["slow_stop", ..] => return Some("slow_stop: no shutdown timeout per child".into()),
            ["worker", .., "brutal_kill"] | ["sup", .., "brutal_kill"] => {
                return Some("brutal_kill: no shutdown spec per child".into());
            }
            _ => {}
        }
    }
    None
}

fn parse_restart(s: &str) -> Result<Restart> {
    Ok(match s {
        "permanent" => Restart::Permanent,
        "transient" => Restart::Transient,
        "temporary" => Restart::Temporary,
        _ => bail!("bad restart type {s:?}"),
    })
}

fn parse_strategy(s: &str) -> Result<SupervisorStrategy> {
    Ok(match s {
        "one_for_one" => SupervisorStrategy::OneForOne,
        "one_for_all" => SupervisorStrategy::OneForAll,
        "rest_for_one" => SupervisorStrategy::RestForOne,
        _ => bail!("bad strategy {s:?}"),
    })
}

fn parse(text: &str) -> Result<(Tree, Vec<String>, Vec<String>)> {
    let mut tree = Tree {
        root: None,
        children: HashMap::new(),
    };
    let mut sups = Vec::new();
    let mut actions = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["sup", id, strategy, intensity, period] if tree.root.is_none() => {
                sups.push(id.to_string());
                tree.root = Some(Decl::Sup {
                    id: id.to_string(),
                    strategy: parse_strategy(strategy)?,
                    intensity: intensity.parse()?,
                    period_s: period.parse()?,
                    restart: Restart::Permanent,
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
                _shutdown,
            ] => {
                sups.push(id.to_string());
                tree.children.entry(parent.to_string()).or_default().push(Decl::Sup {
                    id: id.to_string(),
                    strategy: parse_strategy(strategy)?,
                    intensity: intensity.parse()?,
                    period_s: period.parse()?,
                    restart: parse_restart(restart)?,
                });
            }
            ["worker", id, "under", parent, restart, _shutdown] => {
                tree.children.entry(parent.to_string()).or_default().push(Decl::Worker {
                    id: id.to_string(),
                    restart: parse_restart(restart)?,
                });
            }
            _ => actions.push(line.to_string()),
        }
    }
    Ok((tree, sups, actions))
}

/// `--check DIR`: every scenario of DIR in a process of its own, against its trace.
fn check(dir: &str) -> Result<()> {
    let mut scenarios: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {dir}"))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "scn"))
        .collect();
    scenarios.sort();
    let me = std::env::current_exe()?;
    let (mut passed, mut failed, mut na) = (0, 0, 0);
    for scn in &scenarios {
        let name = scn.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let expected = std::fs::read_to_string(scn.with_extension("trace")).unwrap_or_default();
        let mut child = std::process::Command::new(&me)
            .arg(scn)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let started = std::time::Instant::now();
        let timed_out = loop {
            if child.try_wait()?.is_some() {
                break false;
            }
            if started.elapsed() > Duration::from_secs(60) {
                child.kill().ok();
                break true;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output()?;
        let actual = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() == Some(3) {
            println!("N/A  {name} ({})", stderr.trim().trim_start_matches("N/A "));
            na += 1;
        } else if !timed_out && out.status.success() && actual.lines().eq(expected.lines()) {
            println!("PASS {name}");
            passed += 1;
        } else {
            let why = if timed_out {
                " (timed out after 60 s)".to_string()
            } else if !out.status.success() {
                format!(" (runner exited with {})", out.status)
            } else {
                String::new()
            };
            println!("FAIL {name}{why}");
            for l in expected.lines() {
                println!("    expected| {l}");
            }
            for l in actual.lines() {
                println!("    actual  | {l}");
            }
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed, {na} not expressible");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--check") {
        return check(args.get(2).context("usage: conformance --check DIR")?);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(scenario(args.get(1).context("usage: conformance FILE.scn")?))
}

/// Runs one scenario and prints its trace.
async fn scenario(path: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    if let Some(why) = not_expressible(&text) {
        eprintln!("N/A {why}");
        std::process::exit(3);
    }
    // Panics in workers are not part of the trace.
    std::panic::set_hook(Box::new(|_| {}));
    let (tree, sups, actions) = parse(&text)?;
    let (tracer, _) = Actor::spawn(None, Tracer, ()).await.context("tracer")?;
    let ctx = Arc::new(Ctx {
        tree,
        control: Arc::new(Control::default()),
        tracer: tracer.get_cell(),
        sups,
    });
    for line in &actions {
        run(&ctx, line).await?;
    }
    trace().on.store(false, std::sync::atomic::Ordering::SeqCst);
    if let Some(root) = ctx.sups.first().and_then(|s| live(s)) {
        root.stop(None);
        root.wait(Some(Duration::from_secs(5))).await.ok();
    }
    Ok(())
}
