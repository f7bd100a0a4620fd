//! The research team: an orchestrator splits a question, starts a worker per subtask under
//! supervision, loses one worker to the chaos monkey and another's tool to its circuit
//! breaker, re-plans around both, and still answers.
//!
//!     cargo run --release --example research_team
//!
//! The model: with `WARDEN_MODEL_CONFIG` (a path to a model config file, TOML or YAML, see
//! `warden::agents::model::ModelConfig`), or with `OPENAI_API_KEY` (and optionally
//! `OPENAI_BASE_URL`, `OPENAI_MODEL`), the team thinks with that model. With neither, it
//! runs on the scripted fake provider (a local HTTP server speaking the OpenAI format), and
//! says so.
//!
//! What happens:
//!
//! 1. The planner (a ReAct agent answering a `Plan` as structured output) splits the
//!    question into three subtasks.
//! 2. The orchestrator starts a worker per subtask under its `workers` supervisor, a
//!    `DynamicSupervisor` (OTP's `simple_one_for_one`) whose children are numbered from 0:
//!    each worker is a supervisor of its own holding a tool
//!    executor and a ReAct agent. The first worker's archive tool hangs; the second worker's
//!    paper search always fails, behind a circuit breaker.
//! 3. The breaker opens; the executor escalates `CircuitOpened`, which reaches the
//!    orchestrator; it stops that worker and asks the planner to re-plan.
//! 4. The chaos monkey kills the first worker's agent mid-task (it is waiting on its
//!    archive); the orchestrator sees it go down and re-plans again.
//! 5. The replacement workers and the third worker answer; the synthesizer writes the answer.

#[path = "support/report.rs"]
mod report;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden::agents::agent::{Agent, AgentError, AgentEventKind};
use warden::agents::model::{Model, ModelConfig, OpenAiChat, Provider, RetryPolicy};
use warden::agents::pattern::{
    FailureReason, Orchestrator, OrchestratorEvent, OrchestratorRun, Plan, WorkerConcern, WorkerFailure, WorkerRequest,
    WorkerSpec,
};
use warden::agents::react::ReAct;
use warden::chaos::{ChaosAction, ChaosMonkey, ChaosReport, Schedule};
use warden::supervisor::{Escalation, Strategy, Supervisor};
use warden::tools::circuit_breaker::CircuitBreakerConfig;
use warden::tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};
use warden_fake_provider::{Answer, FakeProvider, Fault};

/// The question the team answers.
const QUESTION: &str = "What makes Erlang/OTP systems resilient, and how can LLM agent frameworks borrow it?";

/// How long the chaos driver waits for the breaker before it kills anyway (real models only
/// may never trip it).
const BREAKER_WAIT: Duration = Duration::from_secs(30);

/// Where the team's thinking comes from.
pub(crate) enum Llm {
    /// The scripted fake provider.
    Fake,
    /// A real model, and what to call it on screen.
    Real(Model, String),
}

impl Llm {
    /// `WARDEN_MODEL_CONFIG`, else the OpenAI variables, else the fake provider.
    pub(crate) fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(path) = var("WARDEN_MODEL_CONFIG") {
            let config = ModelConfig::from_file(&path).with_context(|| format!("reading {path}"))?;
            let name = format!("{} ({:?}, from {path})", config.model, config.provider);
            return Ok(Self::Real(config.build().context("building the model")?, name));
        }
        if var("OPENAI_API_KEY").is_some() {
            let model = var("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".to_owned());
            let mut config = ModelConfig::new(Provider::OpenAi, model.clone()).with_api_key_env("OPENAI_API_KEY");
            if let Some(url) = var("OPENAI_BASE_URL") {
                config = config.with_base_url(url);
            }
            return Ok(Self::Real(
                config.build().context("building the model")?,
                format!("{model} (OpenAI)"),
            ));
        }
        Ok(Self::Fake)
    }
}

/// What the demo saw, for the test that runs it.
#[derive(Debug)]
pub(crate) struct Demo {
    /// The run's report.
    pub(crate) run: OrchestratorRun,
    /// What the chaos monkey did (nothing if the run ended first).
    pub(crate) chaos: Option<ChaosReport>,
    /// The worker the monkey was sent after.
    pub(crate) victim: String,
    /// The tree while the workers were at work.
    pub(crate) tree_mid_run: String,
}

impl Demo {
    /// Whether the victim's failure was seen as a worker gone down.
    pub(crate) fn kill_seen(&self) -> bool {
        self.run.failures.iter().any(|f| went_down(f, &self.victim))
    }

    /// The breakers whose opening reached the orchestrator.
    pub(crate) fn breakers_opened(&self) -> Vec<String> {
        self.run
            .escalations
            .iter()
            .filter_map(|e| match &e.concern {
                WorkerConcern::CircuitOpened(c) => Some(c.breaker.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// Whether `failure` is `worker` going down (killed, here).
fn went_down(failure: &WorkerFailure, worker: &str) -> bool {
    *failure.worker == *worker && matches!(failure.reason, FailureReason::Ask(AgentError::AgentDown(_)))
}

/// The scripted providers: the planner's, the synthesizer's, one per worker (by number).
struct Script {
    planner: FakeProvider,
    synthesizer: FakeProvider,
    workers: Vec<FakeProvider>,
}

impl Script {
    async fn start() -> Self {
        let planner = FakeProvider::start().await;
        planner.push_all([
            Answer::json(json!({"subtasks": [
                {"id": "origins", "task": "Where did Erlang/OTP come from, and what problem was it built for? Check the archive."},
                {"id": "mechanisms", "task": "How do OTP links, supervisors and restart strategies contain failures? Cite papers."},
                {"id": "agents", "task": "How can an LLM agent framework apply these ideas to agents, tools and model calls?"},
            ]})),
            Answer::json(json!({"subtasks": [
                {"id": "mechanisms-from-memory", "task": "Explain OTP links, supervisors, restart strategies and escalation from what you know; the paper search is down."},
            ]})),
            Answer::json(json!({"subtasks": [
                {"id": "origins-retry", "task": "Where did Erlang/OTP come from? Answer from what you know; skip the archive."},
            ]})),
        ]);
        let synthesizer = FakeProvider::start().await;
        synthesizer.push(Answer::text(
            "Erlang/OTP was built at Ericsson for telephone switches that must never stop. It stays up by \
             isolating work in processes that share nothing, letting them crash, and having supervisors \
             restart them by a declared strategy (one-for-one, one-for-all, rest-for-one) within a \
             restart budget, escalating up the tree when restarting is not enough. An agent framework \
             borrows it by running agents, tools and model calls as supervised actors: a failing tool \
             trips a breaker and escalates, a crashed agent is restarted or re-planned around, and \
             every request gets exactly one answer or a typed error, never a hang.",
        ));
        let mut workers = Vec::new();
        for _ in 0..5 {
            workers.push(FakeProvider::start().await);
        }
        // Worker 0, the victim: asks its archive, which never answers, until the monkey strikes.
        workers[0].push(Answer::tool_call("archive_lookup", json!({"query": "Erlang origins"})));
        workers[0].set_default_reply(Fault::Stall);
        // Worker 1: its paper search fails twice and the breaker opens; it would go on waiting.
        workers[1].push_all([
            Answer::tool_call("paper_search", json!({"query": "OTP supervision"})),
            Answer::tool_call("paper_search", json!({"query": "Armstrong thesis"})),
        ]);
        workers[1].set_default_reply(Fault::Stall);
        // Worker 2 takes a moment to think, as models do.
        workers[2].set_latency(Duration::from_millis(300));
        workers[2].push(Answer::text(
            "Run each agent, tool executor and model call as a supervised actor; give every request a \
             deadline and a typed error; let breakers and escalations tell an orchestrator to re-plan.",
        ));
        workers[3].push(Answer::text(
            "Processes are linked; a supervisor traps exits and restarts children by strategy within a \
             restart intensity, and gives up (escalates) when it is exceeded.",
        ));
        workers[4].push(Answer::text(
            "Erlang came from Ericsson's lab in the late 1980s for fault-tolerant telephone switches; OTP \
             followed in 1996, open-sourced in 1998.",
        ));
        Self {
            planner,
            synthesizer,
            workers,
        }
    }

    fn model(fake: &FakeProvider) -> Model {
        Model::new(OpenAiChat::new(fake.base_url_openai(), "scripted")).with_retry(RetryPolicy::new(1))
    }
}

/// What a worker is: the first (`workers/0`) gets an archive that hangs, the second a paper search that
/// fails behind a breaker, the others no tools.
fn worker(request: &WorkerRequest, model: Model, started: &mpsc::UnboundedSender<(u64, AgentEventKind)>) -> WorkerSpec {
    let number = request.number;
    let started = started.clone();
    let observer = move |e: &warden::agents::agent::AgentEvent| drop(started.send((number, e.kind.clone())));
    let react = ReAct::builder(model).max_iterations(6).max_tool_failures(0);
    match number {
        1 => {
            let toolkit = Toolkit::new().tool(tool_fn(
                "archive_lookup",
                "Looks a topic up in the company archive.",
                |_: Value| std::future::pending::<Result<Value, ToolError>>(),
            ));
            let stack = ToolStack::builder().timeout(Duration::from_secs(120)).build();
            let executor = ToolExecutor::new(toolkit.clone(), stack);
            let agent = Agent::new(
                "researcher",
                react
                    .system("You are a research worker. Call archive_lookup before you answer.")
                    .tools(toolkit, executor.client())
                    .build(),
            )
            .observer(observer);
            WorkerSpec::new(agent).with(executor.child_spec("tools"))
        }
        2 => {
            let toolkit = Toolkit::new().tool(tool_fn(
                "paper_search",
                "Searches research papers.",
                |_: Value| async move { Err::<Value, _>(ToolError::permanent("paper index unavailable (HTTP 503)")) },
            ));
            let breaker = CircuitBreakerConfig::builder()
                .minimum_number_of_calls(2)
                .failure_rate_threshold(50.0)
                .wait_duration_in_open_state(Duration::from_secs(60))
                .build()
                .unwrap_or_default();
            let stack = ToolStack::builder()
                .circuit_breaker(breaker)
                .timeout(Duration::from_secs(30))
                .build();
            let executor = ToolExecutor::new(toolkit.clone(), stack);
            let agent = Agent::new(
                "researcher",
                react
                    .system(
                        "You are a research worker. Call paper_search at least twice, with different queries, \
                         before you answer.",
                    )
                    .tools(toolkit, executor.client())
                    .build(),
            )
            .observer(observer);
            WorkerSpec::new(agent).with(executor.child_spec("tools"))
        }
        _ => WorkerSpec::new(
            Agent::new(
                "researcher",
                react
                    .system("You are a research worker. Answer in three sentences.")
                    .build(),
            )
            .observer(observer),
        ),
    }
}

/// Prints an orchestrator event as it happens.
fn show(event: &OrchestratorEvent) {
    match event {
        OrchestratorEvent::Planned { subtasks } => {
            println!("planner: {} subtasks", subtasks.len());
            for s in subtasks {
                println!("    [{}] {}", s.id, s.task);
            }
        }
        OrchestratorEvent::WorkerStarted { worker, subtask, agent } => {
            let path = agent.path().map(|p| p.to_string()).unwrap_or_default();
            println!("started {worker} on [{}] as {path}", subtask.id);
        }
        OrchestratorEvent::WorkerDone { worker, subtask } => println!("{worker} finished [{subtask}]"),
        OrchestratorEvent::Escalated(e) => println!("ESCALATION from {}: {}", e.origin, e.concern),
        OrchestratorEvent::WorkerFailed(f) => println!("{} failed on [{}]: {}", f.worker, f.subtask.id, f.reason),
        OrchestratorEvent::Replanned { after, subtasks } => {
            let ids: Vec<&str> = subtasks.iter().map(|s| s.id.as_str()).collect();
            println!("planner re-planned after {after}: [{}]", ids.join(", "));
        }
        OrchestratorEvent::Synthesizing { results } => {
            println!("synthesizer: writing the answer from {results} findings")
        }
        _ => {}
    }
}

/// Runs the demo on `llm`, printing as it goes.
pub(crate) async fn run(llm: Llm) -> Result<Demo> {
    let script = match &llm {
        Llm::Fake => {
            println!("no model configured: running on the scripted fake provider");
            println!("(set WARDEN_MODEL_CONFIG, or OPENAI_API_KEY, to run on a real model)\n");
            Some(Script::start().await)
        }
        Llm::Real(_, name) => {
            println!("model: {name}\n");
            None
        }
    };
    let model_for = |role: usize| -> Model {
        match (&llm, &script) {
            (Llm::Real(model, _), _) => model.clone(),
            (Llm::Fake, Some(s)) => match role {
                0 => Script::model(&s.planner),
                1 => Script::model(&s.synthesizer),
                n => Script::model(&s.workers[(n - 2).min(s.workers.len() - 1)]),
            },
            (Llm::Fake, None) => unreachable!("the script is started for the fake provider"),
        }
    };

    // The tree: a root with the planner and the synthesizer; the orchestrator adds `workers`.
    let (root_tx, mut root_escalations) = mpsc::unbounded_channel::<Escalation>();
    let planner = Agent::new(
        "planner",
        ReAct::builder(model_for(0))
            .system(
                "You plan research. Split questions into exactly three independent subtasks; when a worker \
                 fails, give the subtasks that make up for it.",
            )
            .structured_output::<Plan>()
            .build(),
    );
    let synthesizer = Agent::new(
        "synthesizer",
        ReAct::builder(model_for(1))
            .system("You write the team's answer from its findings, in one paragraph.")
            .build(),
    );
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .escalation_handler(root_tx)
        .child(planner.child_spec())
        .child(synthesizer.child_spec())
        .spawn()
        .await?;

    let (events_tx, mut events) = mpsc::unbounded_channel::<OrchestratorEvent>();
    let (agent_tx, mut agent_events) = mpsc::unbounded_channel::<(u64, AgentEventKind)>();
    let workers_models: Arc<Vec<Model>> = Arc::new((2..7).map(model_for).collect());
    let factory = move |request: &WorkerRequest| {
        let index = usize::try_from(request.number.saturating_sub(1)).unwrap_or(usize::MAX);
        let model = workers_models[index.min(workers_models.len() - 1)].clone();
        worker(request, model, &agent_tx)
    };
    let orchestrator = Orchestrator::builder(planner.handle(), synthesizer.handle(), factory)
        .plan_deadline(Duration::from_secs(120))
        .worker_deadline(Duration::from_secs(180))
        .max_replans(3)
        .observer(move |e| drop(events_tx.send(e.clone())))
        .start(&root, "workers")
        .await?;

    println!("question: {QUESTION}\n");
    let asking = orchestrator.clone();
    let mut answer = tokio::spawn(async move { asking.run(QUESTION).await });

    // The chaos: once the first worker is mid-task (waiting on its archive) and the second's
    // breaker has opened, the monkey kills the first worker's agent.
    let mut victim_path = None;
    let mut victim_busy = false;
    let mut breaker_seen = false;
    let breaker_wait = tokio::time::sleep(BREAKER_WAIT);
    tokio::pin!(breaker_wait);
    let mut tree_mid_run = String::new();
    let mut started = 0;
    let chaos = loop {
        let ready = victim_busy && (breaker_seen || breaker_wait.is_elapsed());
        if let (true, Some(path)) = (ready, victim_path.clone()) {
            println!("the chaos monkey goes after {path}");
            let report = ChaosMonkey::new(&root)
                .seed(7)
                .target(format!("{path}").parse()?)
                .actions([ChaosAction::Kill])
                .schedule(Schedule::Every(Duration::from_millis(1)))
                .max_actions(1)
                .run()
                .await;
            print!("{report}");
            break Some(report);
        }
        tokio::select! {
            Some(event) = events.recv() => {
                show(&event);
                if let OrchestratorEvent::WorkerStarted { .. } = &event {
                    started += 1;
                    if started == 3 {
                        tree_mid_run = root.snapshot().await?.to_string();
                        println!("\nthe tree, with the three workers at work:\n{tree_mid_run}");
                    }
                }
                match &event {
                    OrchestratorEvent::WorkerStarted { agent, .. } if victim_path.is_none() => victim_path = agent.path(),
                    OrchestratorEvent::Escalated(e) if matches!(e.concern, WorkerConcern::CircuitOpened(_)) => breaker_seen = true,
                    _ => {}
                }
            }
            Some((number, kind)) = agent_events.recv() => {
                if number == 1 && matches!(kind, AgentEventKind::ToolCalled { .. }) {
                    println!("worker 0 is waiting on its archive tool");
                    victim_busy = true;
                }
            }
            () = &mut breaker_wait, if !breaker_wait.is_elapsed() => {}
            done = &mut answer => {
                // The run ended before the monkey could strike (a real model took another path).
                let run = done??;
                return finish(root, run, None, String::new(), tree_mid_run, &mut root_escalations).await;
            }
        }
    };
    let victim = victim_path
        .as_ref()
        .and_then(|p| p.parent())
        .map(|p| p.id().to_owned())
        .unwrap_or_default();
    let run = loop {
        tokio::select! {
            Some(event) = events.recv() => show(&event),
            done = &mut answer => break done??,
        }
    };
    while let Ok(event) = events.try_recv() {
        show(&event);
    }
    let demo = finish(root, run, chaos, victim, tree_mid_run, &mut root_escalations).await?;
    Ok(demo)
}

/// Prints the outcome and stops the tree.
async fn finish(
    root: Supervisor,
    run: OrchestratorRun,
    chaos: Option<ChaosReport>,
    victim: String,
    tree_mid_run: String,
    root_escalations: &mut mpsc::UnboundedReceiver<Escalation>,
) -> Result<Demo> {
    println!("\n== escalations that reached the orchestrator ==");
    for e in &run.escalations {
        println!(
            "  from {} (worker {}, [{}]): {}",
            e.origin, e.worker, e.subtask, e.concern
        );
    }
    println!("== workers that failed, each answered by a re-plan ==");
    for f in &run.failures {
        let note = if went_down(f, &victim) {
            " (killed by the chaos monkey)"
        } else {
            ""
        };
        println!("  {} on [{}]: {}{note}", f.worker, f.subtask.id, f.reason);
    }
    while let Ok(e) = root_escalations.try_recv() {
        println!("  (also at the root: {e})");
    }
    println!(
        "== {} workers started, {} re-plans, {} findings ==",
        run.workers_started,
        run.replans,
        run.results.len()
    );
    println!("\nthe tree after the run:\n{}", root.snapshot().await?);
    println!("== the answer ==\n{}", run.answer.text());
    root.stop().await;
    Ok(Demo {
        run,
        chaos,
        victim,
        tree_mid_run,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    report::exit_code(demo().await.map(|()| std::process::ExitCode::SUCCESS))
}

async fn demo() -> Result<()> {
    let llm = Llm::from_env()?;
    let demo = run(llm).await?;
    let kills = demo.chaos.as_ref().map_or(0, |c| c.count(ChaosAction::Kill));
    let alive = demo.tree_mid_run.lines().filter(|l| l.contains("researcher")).count();
    println!(
        "\n(summary: {alive} workers were at work mid-run; the monkey killed {kills}; breakers opened: {:?})",
        demo.breakers_opened()
    );
    if !demo.kill_seen() || demo.breakers_opened().is_empty() {
        println!("\n(note: with this model the team took another path: no kill or no breaker was seen)");
    }
    Ok(())
}
