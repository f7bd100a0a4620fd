//! A short tour of Warden's supervisor: build a tree, crash children under
//! each strategy, watch an escalation reach the root's handler, and print the
//! tree. It runs on `warden::runtime::multi_thread()`, the runtime tuned for
//! supervision.
//!
//!     cargo run --release --example supervision_tour

#[path = "support/report.rs"]
mod report;

use std::time::Duration;

use anyhow::{Context, Result};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;
use warden::supervisor::{
    ChildKind, ChildSpec, Escalation, EscalationKind, Restart, StartContext, Strategy, Supervisor, SupervisorEvent,
};

/// A worker that answers pings and crashes on request.
struct Service;

enum ServiceMsg {
    Ping(RpcReplyPort<&'static str>),
    Crash,
}

#[cfg(feature = "cluster")]
impl ractor::Message for ServiceMsg {}

impl Actor for Service {
    type Msg = ServiceMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<ServiceMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(&self, _: ActorRef<ServiceMsg>, msg: ServiceMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            ServiceMsg::Ping(reply) => {
                let _ = reply.send("pong");
                Ok(())
            }
            ServiceMsg::Crash => Err("told to crash".into()),
        }
    }
}

/// A worker that, when started, asks its supervisor for a decision it cannot make.
struct Planner;

/// What the planner asks.
#[derive(Debug)]
struct NeedsApproval {
    plan: &'static str,
}

impl Actor for Planner {
    type Msg = ();
    type State = ();
    type Arguments = (warden::supervisor::Escalator, mpsc::UnboundedSender<String>);

    async fn pre_start(&self, _: ActorRef<()>, (escalator, report): Self::Arguments) -> Result<(), ActorProcessingErr> {
        // The question is asked from a task, so the planner's mailbox stays free while it waits.
        tokio::spawn(async move {
            let answer: Result<bool, _> = escalator
                .request(
                    NeedsApproval {
                        plan: "delete old logs",
                    },
                    Duration::from_secs(5),
                )
                .await;
            let _ = report.send(format!("planner got its answer: {answer:?}"));
        });
        Ok(())
    }
}

fn service(id: &str) -> ChildSpec {
    ChildSpec::actor(id, || (Service, ()))
}

/// Prints the supervisor events that arrive until `until` has been seen `n` times.
async fn show_events(events: &mut mpsc::UnboundedReceiver<SupervisorEvent>, until: &str, n: usize) -> Result<()> {
    let mut seen = 0;
    while seen < n {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .context("the tree did not do what the tour expected")?
            .context("event stream ended")?;
        let line = match &event {
            SupervisorEvent::ChildStarted { path, kind, .. } => format!("  + started  {path} ({})", kind_name(*kind)),
            SupervisorEvent::ChildExited { path, reason, .. } => format!("  - exited   {path}: {reason}"),
            SupervisorEvent::ChildStartFailed { path, error, .. } => format!("  ! failed   {path}: {error}"),
            SupervisorEvent::GaveUp { path, child } => format!("  ✗ gave up  {path} (one restart too many: {child})"),
            SupervisorEvent::Escalated { at, origin } => format!("  ↑ escalation from {origin} reached {at}"),
            SupervisorEvent::Stopped { path } => format!("  - stopped  {path}"),
            SupervisorEvent::Restarting { path, .. } => format!("  ↻ restarting {path}"),
            other => format!("  {other:?}"),
        };
        println!("{line}");
        if line.ends_with(until) {
            seen += 1;
        }
    }
    Ok(())
}

fn kind_name(kind: ChildKind) -> &'static str {
    match kind {
        ChildKind::Worker => "worker",
        ChildKind::Supervisor => "supervisor",
    }
}

/// The running actor at `path`.
async fn child(sup: &Supervisor, path: &str) -> Result<ActorCell> {
    let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or(path);
    let parent = if parent == sup.path().as_str() {
        sup.clone()
    } else {
        find_supervisor(sup, parent).await?
    };
    parent
        .which_children()
        .await?
        .into_iter()
        .find(|c| c.path.as_str() == path)
        .and_then(|c| c.state.actor().cloned())
        .with_context(|| format!("{path} is not running"))
}

/// The running supervisor at `path`.
async fn find_supervisor(root: &Supervisor, path: &str) -> Result<Supervisor> {
    let mut current = root.clone();
    for segment in path.split('/').skip(1) {
        current = current
            .which_children()
            .await?
            .into_iter()
            .find(|c| c.id() == segment)
            .and_then(|c| c.supervisor())
            .with_context(|| format!("no running supervisor at {path}"))?;
    }
    Ok(current)
}

/// Runs on `warden::runtime`: tokio's multi-thread runtime whose workers, when
/// they run out of work while another is busy, wait briefly before they park,
/// so a supervisor's chain of stops and starts stays on one thread.
fn main() -> std::process::ExitCode {
    let runtime = warden::runtime::multi_thread().build().context("a tokio runtime");
    let outcome = runtime.and_then(|runtime| runtime.block_on(run()));
    report::exit_code(outcome.map(|()| std::process::ExitCode::SUCCESS))
}

async fn run() -> Result<()> {
    println!("Warden supervision tour\n");

    let (event_tx, mut events) = mpsc::unbounded_channel();
    let (escalation_tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();

    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .observer(move |e| {
            let _ = event_tx.send(e.clone());
        })
        .escalation_handler(escalation_tx)
        .child(service("db"))
        .child(
            Supervisor::builder("pipeline")
                .strategy(Strategy::RestForOne)
                .intensity(3, Duration::from_secs(5))
                .children([service("fetch"), service("parse"), service("store")])
                .into_child(),
        )
        .child(
            Supervisor::builder("crew")
                .strategy(Strategy::OneForAll)
                .intensity(3, Duration::from_secs(5))
                .children([service("alice"), service("bob")])
                .into_child(),
        )
        .child(
            Supervisor::builder("fragile")
                .strategy(Strategy::OneForOne)
                .intensity(1, Duration::from_secs(5))
                .child(service("flaky"))
                .into_child(),
        )
        .spawn()
        .await?;

    println!("1. The tree starts depth first, in declaration order:");
    show_events(&mut events, "started  root/fragile (supervisor)", 1).await?;
    println!("\n{}", root.snapshot().await?);

    println!("2. one_for_one: root/db crashes; only db is restarted.");
    let db = child(&root, "root/db").await?;
    ActorRef::<ServiceMsg>::from(db).send_message(ServiceMsg::Crash)?;
    show_events(&mut events, "started  root/db (worker)", 1).await?;
    let db = child(&root, "root/db").await?;
    let pong = ActorRef::<ServiceMsg>::from(db).call(ServiceMsg::Ping, None).await?;
    if let CallResult::Success(p) = pong {
        println!("  the new db answers: {p}");
    }

    println!("\n3. rest_for_one: root/pipeline/parse crashes; store (started after it) is stopped,");
    println!("   then parse and store start again. fetch is left alone.");
    let parse = child(&root, "root/pipeline/parse").await?;
    parse.kill();
    show_events(&mut events, "started  root/pipeline/store (worker)", 1).await?;

    println!("\n4. one_for_all: root/crew/alice is killed; bob is stopped too, then both restart in order.");
    let alice = child(&root, "root/crew/alice").await?;
    alice.kill();
    show_events(&mut events, "started  root/crew/bob (worker)", 1).await?;

    println!("\n5. A worker escalates on purpose: a planner asks for approval; the root's handler answers.");
    let fragile = find_supervisor(&root, "root/fragile").await?;
    let (answer_tx, mut answers) = mpsc::unbounded_channel();
    fragile
        .start_child(
            ChildSpec::worker("planner", move |ctx: StartContext| {
                let args = (ctx.escalator(), answer_tx.clone());
                async move { ctx.spawn(Planner, args).await.map(Into::into) }
            })
            .restart(Restart::Temporary),
        )
        .await?;
    show_events(&mut events, "escalation from root/fragile/planner reached root", 1).await?;
    let mut request = escalations.recv().await.context("no escalation")?;
    if let Some(need) = request.concern::<NeedsApproval>() {
        println!(
            "  root handler: {} asks to {:?}; approving",
            request.origin(),
            need.plan
        );
    }
    request.answer(true)?;
    println!("  {}", answers.recv().await.context("the planner did not report")?);

    println!("\n6. Restarting is not enough: root/fragile/flaky crashes twice in a row, more than its");
    println!("   supervisor's intensity (1 restart in 5 s). root/fragile gives up, stops its children,");
    println!("   and escalates; root applies its own strategy and restarts root/fragile.");
    for _ in 0..2 {
        let flaky = child(&root, "root/fragile/flaky").await?;
        flaky.kill();
        flaky.wait(None).await.ok();
    }
    show_events(&mut events, "started  root/fragile (supervisor)", 1).await?;
    let escalation = escalations.recv().await.context("no escalation")?;
    if let EscalationKind::GaveUp(report) = escalation.kind() {
        println!("  root handler received: {escalation}");
        println!("  recent failures:");
        for f in &report.recent_failures {
            println!("    {} {}", f.path, f.reason);
        }
    }

    println!("\n7. The tree now:\n\n{}", root.snapshot().await?);

    println!("8. Stopping the root stops everything in reverse start order, depth first:");
    root.stop().await;
    show_events(&mut events, "- stopped  root", 1).await?;
    println!("\nDone.");
    Ok(())
}
