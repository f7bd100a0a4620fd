//! The crash loop: a real OS process runs a durable agent and is killed with SIGKILL at
//! random points, 100 times, restarted each time on the same store; then once more to the
//! end. The agent's model is the fake provider and its tools' side effects are counted by an
//! HTTP server, both in this (the parent) process, outside the one that is killed.
//!
//! Each task is five steps: model, `lookup` (idempotent), model, `charge` (not idempotent),
//! model. Afterwards: every accepted task finished, exactly once; no charge ran twice for one
//! step (a charge in flight at a kill is reported `outcome_unknown`, never repeated); the
//! model and `lookup` ran at most once per recorded step plus once per kill (a recorded step
//! is never run again; only the one in flight at a kill may be).
//!
//! The child is this test binary itself, run with `WARDEN_CRASH_CHILD` set (see
//! `durable_crash_child`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use warden::agents::agent::Agent;
use warden::agents::message::AgentMessage;
use warden::agents::model::{Model, OpenAiChat};
use warden::agents::react::ReAct;
use warden::durable::{Journal, StepKind, StepState, TaskId};
use warden::supervisor::Supervisor;
use warden::tools::{Tool, ToolError, ToolExecutor, ToolStack, Toolkit, idempotency_key};
use warden_fake_provider::{Answer, FakeProvider};

const CHILD: &str = "WARDEN_CRASH_CHILD";
const TASKS: u64 = 40;
const KILLS: usize = 100;

/// Tool executions seen by the recording server: (tool, idempotency key) to count.
type Executions = Arc<Mutex<BTreeMap<(String, String), u32>>>;

async fn record(State(seen): State<Executions>, Path(tool): Path<String>, headers: HeaderMap) -> axum::Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    // A little time inside the side effect, so that kills land in it too.
    tokio::time::sleep(Duration::from_millis(3)).await;
    *seen.lock().unwrap().entry((tool.clone(), key)).or_default() += 1;
    axum::Json(json!({ "tool": tool, "ok": true }))
}

/// The model's rule, stateless so that replays and retries see the same: after the task's
/// user message, call `lookup`, then `charge`, then answer.
fn respond(request: &Value) -> Answer {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages.iter().rposition(|m| m["role"] == "user").unwrap_or(0);
    let order = messages
        .get(last_user)
        .and_then(|m| m["content"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let tool_results = messages[last_user..].iter().filter(|m| m["role"] == "tool").count();
    match tool_results {
        0 => Answer::tool_call("lookup", json!({ "order": order })),
        1 => Answer::tool_call("charge", json!({ "order": order })),
        _ => Answer::text(format!("done: {order}")),
    }
}

#[test]
fn a_hundred_sigkills_lose_no_accepted_task_and_repeat_no_completed_side_effect() {
    if std::env::var_os(CHILD).is_some() || std::env::var_os(HUMAN_CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    crash_loop(&dir.path().join("journal.redb").display().to_string(), "embedded store");
}

/// The same on PostgreSQL (`$WARDEN_TEST_POSTGRES`, a fresh database), skipped without it
/// unless `WARDEN_REQUIRE_POSTGRES` is set (as `.ci/run` does).
#[test]
fn a_hundred_sigkills_on_postgres_lose_nothing_either() {
    if std::env::var_os(CHILD).is_some() || std::env::var_os(HUMAN_CHILD).is_some() {
        return;
    }
    let Ok(url) = std::env::var("WARDEN_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("WARDEN_REQUIRE_POSTGRES").is_none(),
            "no WARDEN_TEST_POSTGRES"
        );
        eprintln!("skipped: no WARDEN_TEST_POSTGRES (start one with .ci/postgres.sh)");
        return;
    };
    let name = format!("warden_crash_{}", fastrand::u64(..));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    });
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    crash_loop(&format!("{base}/{name}"), "PostgreSQL");
}

fn crash_loop(store: &str, label: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen: Executions = Arc::default();
    let (fake, tools_addr) = runtime.block_on(async {
        let fake = FakeProvider::start().await;
        fake.set_responder(respond);
        let app = axum::Router::new()
            .route("/tools/{tool}", axum::routing::post(record))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, addr)
    });
    let run_child = |stderr: Stdio| {
        Command::new(std::env::current_exe().unwrap())
            .args(["durable_crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("WARDEN_CRASH_STORE", store)
            .env("WARDEN_CRASH_MODEL", fake.base_url_openai())
            .env("WARDEN_CRASH_TOOLS", format!("http://{tools_addr}/tools"))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap()
    };
    let accepted_in = |out: &str| -> Vec<u64> {
        out.lines()
            .filter_map(|l| l.strip_prefix("accepted "))
            .map(|id| id.trim().parse().unwrap())
            .collect()
    };

    let mut rng = fastrand::Rng::with_seed(14);
    let mut accepted = BTreeSet::new();
    for _ in 0..KILLS {
        let mut child = run_child(Stdio::null());
        std::thread::sleep(Duration::from_millis(rng.u64(5..200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        accepted.extend(accepted_in(&out));
    }
    // Once more, to the end.
    let child = run_child(Stdio::piped());
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && out.contains("all done"), "{out}\n{err}");
    accepted.extend(accepted_in(&out));

    let journal = runtime.block_on(Journal::open_location(store)).unwrap();
    let (tasks, unfinished) = runtime.block_on(journal.counts()).unwrap();
    assert_eq!(unfinished, 0, "every accepted task finished");
    assert_eq!(tasks, TASKS);
    // A kill between `submit` returning and the print leaves a task accepted but unprinted:
    // every printed one must be in the journal, and every task in the journal is checked.
    let all: BTreeSet<u64> = runtime
        .block_on(journal.tasks(None, usize::MAX))
        .unwrap()
        .iter()
        .map(|t| t.id.0)
        .collect();
    assert!(accepted.is_subset(&all), "an accepted task is missing from the journal");

    let seen = seen.lock().unwrap().clone();
    let runs = |tool: &str, key: &str| seen.get(&(tool.to_owned(), key.to_owned())).copied().unwrap_or(0);
    let (mut completed, mut unknown, mut model_steps, mut lookup_steps) = (0, 0, 0u64, 0u64);
    for id in &all {
        let id = TaskId(*id);
        let entry = runtime.block_on(journal.task(id)).unwrap();
        let (_, outcome) = entry.finished.expect("finished");
        let steps = runtime.block_on(journal.steps(id)).unwrap();
        let charge = steps.iter().position(|s| s.is(StepKind::Tool, "charge"));
        let charge_key = charge.map(|i| warden::durable::StepId::new(id, i as u32).idempotency_key());
        model_steps += steps.iter().filter(|s| s.kind == StepKind::Model).count() as u64;
        lookup_steps += steps.iter().filter(|s| s.is(StepKind::Tool, "lookup")).count() as u64;
        if outcome.ok {
            completed += 1;
            assert!(steps.iter().all(|s| matches!(s.state, StepState::Done(_))));
            let key = charge_key.expect("a completed task charged");
            assert_eq!(runs("charge", &key), 1, "task {id}: charged exactly once");
        } else {
            let text = String::from_utf8_lossy(&outcome.result);
            assert!(text.contains("outcome_unknown"), "task {id} failed otherwise: {text}");
            unknown += 1;
            let key = charge_key.expect("the charge in flight is recorded as started");
            assert!(runs("charge", &key) <= 1, "task {id}: never charged twice");
        }
    }
    for ((tool, key), count) in &seen {
        if tool == "charge" {
            assert!(*count <= 1, "{key} charged {count} times");
        }
    }
    // A recorded step is never run again: at most one step in flight is lost per kill.
    let model_calls = fake.request_count() as u64;
    let lookups: u64 = seen
        .iter()
        .filter(|((t, _), _)| t == "lookup")
        .map(|(_, c)| u64::from(*c))
        .sum();
    assert!(
        model_calls <= model_steps + KILLS as u64,
        "{model_calls} model calls for {model_steps} steps"
    );
    assert!(
        lookups <= lookup_steps + KILLS as u64,
        "{lookups} lookups for {lookup_steps} steps"
    );
    eprintln!(
        "crash loop ({label}): {KILLS} SIGKILLs, {TASKS} tasks accepted, {completed} completed, {unknown} outcome_unknown, \
         0 lost, 0 charged twice; {model_calls} model calls for {model_steps} model steps, \
         {lookups} lookups for {lookup_steps} lookup steps"
    );
}

/// A tool that posts to the recording server with its idempotency key.
struct Remote {
    name: &'static str,
    idempotent: bool,
    url: String,
    client: reqwest::Client,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct OrderArgs {
    order: String,
}

impl Tool for Remote {
    type Args = OrderArgs;
    type Output = Value;

    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "Acts on an order."
    }

    fn idempotent(&self, _: &OrderArgs) -> bool {
        self.idempotent
    }

    async fn call(&self, args: OrderArgs) -> Result<Value, ToolError> {
        let key = idempotency_key().map(|k| k.to_string()).unwrap_or_default();
        let response = self
            .client
            .post(format!("{}/{}", self.url, self.name))
            .header("idempotency-key", key)
            .json(&json!({ "order": args.order }))
            .send()
            .await
            .map_err(ToolError::retryable)?;
        response.json().await.map_err(ToolError::permanent)
    }
}

/// The child: runs the durable agent on the store, accepts tasks up to `TASKS` (printing
/// `accepted ID` once `submit` returns), and waits until none is unfinished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_crash_child() -> anyhow::Result<()> {
    if std::env::var_os(CHILD).is_none() {
        return Ok(());
    }
    let store = std::env::var("WARDEN_CRASH_STORE")?;
    let model_url = std::env::var("WARDEN_CRASH_MODEL")?;
    let tools_url = std::env::var("WARDEN_CRASH_TOOLS")?;
    let journal = Journal::open_location(&store).await?;
    let client = reqwest::Client::new();
    let tool = |name, idempotent| Remote {
        name,
        idempotent,
        url: tools_url.clone(),
        client: client.clone(),
    };
    let toolkit = Toolkit::new().tool(tool("lookup", true)).tool(tool("charge", false));
    let (tools, _) = ToolExecutor::new(toolkit.clone(), ToolStack::default()).spawn().await?;
    let model = Model::new(OpenAiChat::new(model_url, "m"));
    let react = ReAct::builder(model).tools(toolkit, tools).build();
    let agent = Agent::new("worker", react).journal(journal.clone()).escalate_after(0);
    let worker = agent.handle();
    let _root = Supervisor::builder("root").child(agent.child_spec()).spawn().await?;
    loop {
        let (total, _) = journal.counts().await?;
        if total >= TASKS {
            break;
        }
        let id = worker.submit(AgentMessage::user(format!("order-{total}"))).await?;
        println!("accepted {id}");
    }
    let mut changes = tokio::time::interval(Duration::from_millis(10));
    while journal.counts().await?.1 > 0 {
        changes.tick().await;
    }
    println!("all done");
    Ok(())
}

const HUMAN_CHILD: &str = "WARDEN_HUMAN_CHILD";

/// The model of the human-in-the-loop runs: ask a human, then answer with what they said.
fn ask_then_answer(request: &Value) -> Answer {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages.iter().rposition(|m| m["role"] == "user").unwrap_or(0);
    match messages[last_user..].iter().find(|m| m["role"] == "tool") {
        None => Answer::tool_call("ask_human", json!({ "question": "Ship order A-1?" })),
        Some(answer) => Answer::text(format!("human said: {}", answer["content"].as_str().unwrap_or(""))),
    }
}

/// Runs the human child on `store` until it prints "all done" or is killed.
fn human_child(store: &str, model: &str, deadline_ms: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["durable_human_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(HUMAN_CHILD, "1")
        .env("WARDEN_CRASH_STORE", store)
        .env("WARDEN_CRASH_MODEL", model)
        .env("WARDEN_HUMAN_DEADLINE_MS", deadline_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls the journal (written by another process) until it holds a pending question.
async fn pending_question(journal: &Journal) -> warden::durable::PendingQuestion {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        if let Some(q) = journal.questions().await.unwrap().into_iter().next() {
            return q;
        }
        tick.tick().await;
    }
}

#[test]
fn a_question_pending_across_a_sigkill_keeps_its_deadline_and_is_answered_after_the_restart() {
    if std::env::var_os(CHILD).is_some() || std::env::var_os(HUMAN_CHILD).is_some() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeProvider::start());
    fake.set_responder(ask_then_answer);
    let dir = tempfile::tempdir().unwrap();

    // Answered after a kill -9 and a restart, from this (another) process.
    let store = dir.path().join("answered.redb").display().to_string();
    let mut child = human_child(&store, &fake.base_url_openai(), 60_000);
    let journal = Journal::open_shared(&store).unwrap();
    let asked = runtime.block_on(pending_question(&journal));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = human_child(&store, &fake.base_url_openai(), 60_000);
    let again = runtime.block_on(async {
        // The restarted turn asks again at the same step: the first asking stands.
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            let q = pending_question(&journal).await;
            if q.step == asked.step {
                break q;
            }
            tick.tick().await;
        }
    });
    assert_eq!(
        (again.question.as_str(), again.deadline_ms),
        ("Ship order A-1?", asked.deadline_ms)
    );
    runtime.block_on(journal.answer(asked.step, "yes, ship it")).unwrap();
    let reply = runtime
        .block_on(warden::agents::agent::durable::task_result(
            &journal,
            asked.step.task,
            Duration::from_secs(30),
        ))
        .unwrap();
    assert_eq!(reply.text(), "human said: yes, ship it");
    child.kill().unwrap();
    child.wait().unwrap();

    // Its deadline passes while the process is dead: the restarted turn does not wait anew.
    let store = dir.path().join("expired.redb").display().to_string();
    let mut child = human_child(&store, &fake.base_url_openai(), 300);
    let journal = Journal::open_shared(&store).unwrap();
    let asked = runtime.block_on(pending_question(&journal));
    child.kill().unwrap();
    child.wait().unwrap();
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() <= u128::from(asked.deadline_ms) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second run with a long deadline of its own still ends at the first one.
    let mut child = human_child(&store, &fake.base_url_openai(), 60_000);
    let failed = runtime
        .block_on(warden::agents::agent::durable::task_result(
            &journal,
            asked.step.task,
            Duration::from_secs(30),
        ))
        .unwrap_err();
    assert!(
        matches!(&failed, warden::agents::agent::AgentError::TaskFailed { kind, .. } if kind == "human_timeout"),
        "{failed}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The human child: a durable agent that asks a human (deadline from the environment), with
/// one task submitted on the first run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_human_child() -> anyhow::Result<()> {
    if std::env::var_os(HUMAN_CHILD).is_none() {
        return Ok(());
    }
    let store = std::env::var("WARDEN_CRASH_STORE")?;
    let model_url = std::env::var("WARDEN_CRASH_MODEL")?;
    let deadline = Duration::from_millis(std::env::var("WARDEN_HUMAN_DEADLINE_MS")?.parse()?);
    let journal = Journal::open_location(&store).await?;
    let model = Model::new(OpenAiChat::new(model_url, "m"));
    let react = ReAct::builder(model).human(deadline).build();
    let agent = Agent::new("approver", react).journal(journal.clone()).escalate_after(0);
    let approver = agent.handle();
    let (escalations, _kept) = tokio::sync::mpsc::unbounded_channel();
    let _root = Supervisor::builder("root")
        .escalation_handler(escalations)
        .child(agent.child_spec())
        .spawn()
        .await?;
    if journal.counts().await?.0 == 0 {
        approver.submit(AgentMessage::user("Ship order A-1")).await?;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while journal.counts().await?.1 > 0 {
        tick.tick().await;
    }
    println!("all done");
    Ok(())
}
