//! What the journal costs a durable agent, turn for turn: the same ReAct tasks (model call,
//! an idempotent tool call, model call: three steps) through agents without a journal and
//! with one (the embedded store, fsync on every commit), against the fake provider on
//! 127.0.0.1.
//!
//! - one agent, tasks one after another: per-task latency p50/p99, and the journal's cost per
//!   step, `(p50 durable - p50 plain) / 3`;
//! - N agents at once (1,000), one task each: journaled steps per second (group commit).
//!
//! ```text
//! cargo bench --bench durable                          # 1,000 sequential tasks, 1,000 agents
//! WARDEN_BENCH_QUICK=1 cargo bench --bench durable     # 100 tasks, 100 agents
//! ```

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::agents::agent::{Agent, AgentRef};
use warden::agents::message::AgentMessage;
use warden::agents::model::{Model, OpenAiChat};
use warden::agents::react::ReAct;
use warden::durable::Journal;
use warden::supervisor::{Strategy, Supervisor};
use warden::tools::{Tool, ToolClient, ToolError, ToolExecutor, ToolStack, Toolkit};
use warden_fake_provider::{Answer, FakeProvider};

const DEADLINE: Duration = Duration::from_secs(120);

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    order: String,
}

struct Lookup;

impl Tool for Lookup {
    type Args = Args;
    type Output = String;

    fn name(&self) -> &str {
        "lookup"
    }

    fn description(&self) -> &str {
        "Looks an order up."
    }

    fn idempotent(&self, _: &Args) -> bool {
        true
    }

    async fn call(&self, args: Args) -> Result<String, ToolError> {
        Ok(format!("{} is in stock", args.order))
    }
}

fn respond(request: &Value) -> Answer {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages.iter().rposition(|m| m["role"] == "user").unwrap_or(0);
    if messages[last_user..].iter().any(|m| m["role"] == "tool") {
        Answer::text("In stock.")
    } else {
        Answer::tool_call("lookup", json!({ "order": "A-1" }))
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

async fn agents(n: usize, model: &Model, tools: &ToolClient, journal: Option<&Journal>) -> (Supervisor, Vec<AgentRef>) {
    let toolkit = Toolkit::new().tool(Lookup);
    let mut specs = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let react = ReAct::builder(model.clone())
            .tools(toolkit.clone(), tools.clone())
            .build();
        let mut agent = Agent::new(format!("agent-{i}"), react);
        if let Some(journal) = journal {
            agent = agent.journal(journal.clone());
        }
        handles.push(agent.handle());
        specs.push(agent.child_spec());
    }
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .children(specs)
        .spawn()
        .await
        .expect("root starts");
    (root, handles)
}

async fn sequential(tasks: usize, agent: &AgentRef) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let started = Instant::now();
        let reply = agent
            .ask(AgentMessage::user(format!("order {i}")), DEADLINE)
            .await
            .expect("answered");
        assert_eq!(reply.text(), "In stock.");
        samples.push(started.elapsed());
    }
    samples
}

async fn at_once(agents: &[AgentRef]) -> Duration {
    let started = Instant::now();
    let asks = agents
        .iter()
        .map(|agent| agent.ask(AgentMessage::user("order"), DEADLINE));
    for reply in futures::future::join_all(asks).await {
        assert_eq!(reply.expect("answered").text(), "In stock.");
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::var_os("WARDEN_BENCH_QUICK").is_some();
    let (tasks, many) = if quick { (100, 100) } else { (1000, 1000) };
    let fake = FakeProvider::start().await;
    fake.set_responder(respond);
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "m"));
    let (tools, _) = ToolExecutor::new(Toolkit::new().tool(Lookup), ToolStack::default())
        .spawn()
        .await?;
    let dir = tempfile::tempdir()?;
    let journal = Journal::open(dir.path().join("bench.redb"))?;

    let mut results = Vec::new();
    for durable in [false, true] {
        let label = if durable { "with journal" } else { "without journal" };
        let (root, one) = agents(1, &model, &tools, durable.then_some(&journal)).await;
        sequential(tasks / 10, &one[0]).await; // warm-up
        let mut samples = sequential(tasks, &one[0]).await;
        let (p50, p99) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99));
        root.stop().await;
        println!("one agent, {tasks} tasks {label}: per task p50 {p50:?} p99 {p99:?}");

        let (root, handles) = agents(many, &model, &tools, durable.then_some(&journal)).await;
        let wall = at_once(&handles).await;
        root.stop().await;
        let steps = 3.0 * many as f64;
        println!(
            "{many} agents at once {label}: {wall:?}, {:.0} steps/s",
            steps / wall.as_secs_f64()
        );
        results.push((p50, p99));
    }
    let per_step = results[1].0.saturating_sub(results[0].0) / 3;
    println!("SUMMARY journal cost per step (p50 difference / 3 steps): {per_step:?}");
    Ok(())
}
