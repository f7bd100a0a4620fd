//! Durable agents: a task accepted is on disk; a turn killed half-way is replayed from its
//! journal without calling the model or a tool again for a recorded step; an idempotent tool
//! in flight at the kill runs again with the same idempotency key, a non-idempotent one is
//! reported `OutcomeUnknown` (escalated) and never run twice; replayed code that asks for
//! another step fails with `JournalDivergence`; a new agent on the same store (a new process)
//! resumes what the old one left. Real actors, real HTTP (the fake provider), a real store.

#[path = "support/agent.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use warden_agents::agent::{Activity, Agent, AgentError, AgentTrouble, Outcome};
use warden_agents::message::AgentMessage;
use warden_agents::model::{Model, OpenAiChat};
use warden_agents::react::ReAct;
use warden_durable::{Journal, StepId, StepKind, StepState};
use warden_fake_provider::{Answer, FakeProvider};
use warden_tools::{Tool, ToolClient, ToolError, ToolExecutor, ToolStack, Toolkit, idempotency_key};

use support::{DEADLINE, next_escalation, root};

#[derive(Deserialize, schemars::JsonSchema)]
struct Args {
    order: String,
}

/// A tool that records every execution (with its idempotency key) and, when told, blocks
/// until released, so that a test can kill its agent in the middle of it.
#[derive(Clone)]
struct Recorder {
    name: &'static str,
    idempotent: bool,
    runs: Arc<Mutex<Vec<Option<String>>>>,
    block: Arc<Mutex<bool>>,
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl Recorder {
    fn new(name: &'static str, idempotent: bool) -> Self {
        Self {
            name,
            idempotent,
            runs: Arc::default(),
            block: Arc::default(),
            entered: Arc::default(),
            release: Arc::default(),
        }
    }

    fn runs(&self) -> Vec<Option<String>> {
        self.runs.lock().unwrap().clone()
    }
}

impl Tool for Recorder {
    type Args = Args;
    type Output = String;

    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "Records the order."
    }

    fn idempotent(&self, _: &Args) -> bool {
        self.idempotent
    }

    async fn call(&self, args: Args) -> Result<String, ToolError> {
        self.runs.lock().unwrap().push(idempotency_key().map(|k| k.to_string()));
        let block = *self.block.lock().unwrap();
        if block {
            self.entered.notify_one();
            self.release.notified().await;
        }
        Ok(format!("{} done for {}", self.name, args.order))
    }
}

struct Setup {
    fake: FakeProvider,
    journal: Journal,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.redb");
    Setup {
        fake: FakeProvider::start().await,
        journal: Journal::open_shared(&path).unwrap(),
        _dir: dir,
        path,
    }
}

async fn agent(setup: &Setup, journal: &Journal, tool: &Recorder) -> (Agent, ToolClient) {
    let toolkit = Toolkit::new().tool(tool.clone());
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::default());
    let (client, _) = executor.spawn().await.unwrap();
    let model = Model::new(OpenAiChat::new(setup.fake.base_url_openai(), "m"));
    let react = ReAct::builder(model).tools(toolkit, client.clone()).build();
    (Agent::new("clerk", react).journal(journal.clone()), client)
}

fn script_one_call(fake: &FakeProvider, tool: &str) {
    fake.push(Answer::tool_call(tool, json!({"order": "A-1"})));
    fake.push(Answer::text("Filed."));
}

/// A clerk agent on `setup`'s journal with `tool`, running under a root supervisor, its
/// model scripted to call `tool` once and answer "Filed.".
struct Running {
    clerk: warden_agents::agent::AgentRef,
    root: warden_supervisor::Supervisor,
    escalations: mpsc::UnboundedReceiver<warden_supervisor::Escalation>,
    _tools: ToolClient,
}

async fn running(setup: &Setup, tool: &Recorder) -> Running {
    let (agent, tools) = agent(setup, &setup.journal, tool).await;
    let clerk = agent.handle();
    let (root, escalations) = root(vec![agent.child_spec()]).await;
    script_one_call(&setup.fake, tool.name);
    Running {
        clerk,
        root,
        escalations,
        _tools: tools,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_task_runs_once_and_its_steps_and_result_are_in_the_journal() {
    let setup = setup().await;
    let tool = Recorder::new("file", false);
    let Running {
        clerk,
        root,
        escalations: _,
        ..
    } = running(&setup, &tool).await;

    let id = clerk.submit(AgentMessage::user("File order A-1")).await.unwrap();
    // Accepted means on disk, before any turn.
    assert_eq!(setup.journal.task(id).await.unwrap().agent, "clerk");
    let reply = clerk.result(id, DEADLINE).await.unwrap();
    assert_eq!((reply.outcome, reply.text()), (Outcome::Completed, "Filed.".into()));

    let steps = setup.journal.steps(id).await.unwrap();
    let kinds: Vec<_> = steps.iter().map(|s| (s.kind, s.name.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (StepKind::Model, "chat"),
            (StepKind::Tool, "file"),
            (StepKind::Model, "chat")
        ]
    );
    assert!(steps.iter().all(|s| matches!(s.state, StepState::Done(_))));
    assert_eq!(tool.runs(), [Some(StepId::new(id, 1).idempotency_key())]);
    assert!(setup.journal.unfinished("clerk").await.unwrap().is_empty());
    // The memory snapshot went with the result.
    assert!(setup.journal.snapshot("clerk").await.unwrap().is_some());
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_turn_is_replayed_and_an_idempotent_tool_in_flight_runs_again_with_its_key() {
    let setup = setup().await;
    let tool = Recorder::new("lookup", true);
    *tool.block.lock().unwrap() = true;
    let Running {
        clerk,
        root,
        escalations: _,
        ..
    } = running(&setup, &tool).await;

    let id = clerk.submit(AgentMessage::user("Look up A-1")).await.unwrap();
    tool.entered.notified().await;
    let generation = clerk.generation();
    *tool.block.lock().unwrap() = false;
    clerk.actor().unwrap().kill();
    clerk.wait_started(generation, DEADLINE).await.unwrap();

    let reply = clerk.result(id, DEADLINE).await.unwrap();
    assert_eq!(reply.text(), "Filed.");
    // The first model call was replayed from the journal, not asked again.
    assert_eq!(setup.fake.request_count(), 2);
    let key = Some(StepId::new(id, 1).idempotency_key());
    assert_eq!(tool.runs(), [key.clone(), key], "run again, with the same key");
    tool.release.notify_waiters();
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_idempotent_tool_in_flight_at_a_kill_is_outcome_unknown_and_never_run_twice() {
    let setup = setup().await;
    let tool = Recorder::new("charge", false);
    *tool.block.lock().unwrap() = true;
    let Running {
        clerk,
        root,
        mut escalations,
        ..
    } = running(&setup, &tool).await;

    let id = clerk.submit(AgentMessage::user("Charge A-1")).await.unwrap();
    tool.entered.notified().await;
    let generation = clerk.generation();
    clerk.actor().unwrap().kill();
    clerk.wait_started(generation, DEADLINE).await.unwrap();

    let failed = clerk.result(id, DEADLINE).await.unwrap_err();
    assert!(
        matches!(&failed, AgentError::TaskFailed { kind, .. } if kind == "outcome_unknown"),
        "{failed}"
    );
    assert_eq!(tool.runs().len(), 1, "never a second run");
    let trouble = loop {
        let escalation = next_escalation(&mut escalations).await;
        if let Some(trouble) = escalation.concern::<AgentTrouble>() {
            break trouble.clone();
        }
    };
    assert_eq!(trouble.error.kind(), "outcome_unknown");
    tool.release.notify_waiters();
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_asks_for_another_step_fails_with_a_divergence() {
    let setup = setup().await;
    let tool = Recorder::new("file", false);
    let task = warden_agents::codec::to_bytes(&AgentMessage::user("File A-1")).unwrap();
    // The journal says this task's first step was a tool call; ReAct starts with the model.
    let id = setup.journal.accept("clerk", task).await.unwrap();
    setup
        .journal
        .record_result(StepId::new(id, 0), StepKind::Tool, "file", b"{}".to_vec())
        .await
        .unwrap();
    let (agent, _client) = agent(&setup, &setup.journal, &tool).await;
    let clerk = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;

    let failed = clerk.result(id, DEADLINE).await.unwrap_err();
    let AgentError::TaskFailed { kind, message, .. } = failed else {
        panic!("{failed}")
    };
    assert_eq!(kind, "journal_divergence");
    assert!(
        message.contains("recorded tool file") && message.contains("model chat"),
        "{message}"
    );
    assert!(tool.runs().is_empty());
    assert_eq!(setup.fake.request_count(), 0);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_agent_on_the_same_store_resumes_what_the_old_one_left() {
    let setup = setup().await;
    let tool = Recorder::new("lookup", true);
    *tool.block.lock().unwrap() = true;
    let (agent_one, _client) = agent(&setup, &setup.journal, &tool).await;
    let clerk = agent_one.handle();
    let (old_root, _escalations) = root(vec![agent_one.child_spec()]).await;
    script_one_call(&setup.fake, "lookup");
    let first = clerk.submit(AgentMessage::user("Look up A-1")).await.unwrap();
    tool.entered.notified().await;
    // Accepted while the first is in flight: queued, then lost with the process.
    let second = clerk.submit(AgentMessage::user("Look up A-2")).await.unwrap();
    old_root.kill();
    tool.release.notify_waiters();

    // "A new process": a new journal handle on the same file, a new agent, a new tree.
    *tool.block.lock().unwrap() = false;
    setup.fake.push(Answer::text("Second filed."));
    let journal = Journal::open_shared(&setup.path).unwrap();
    let (agent_two, _client) = agent(&setup, &journal, &tool).await;
    let clerk = agent_two.handle();
    let (root, _escalations) = root(vec![agent_two.child_spec()]).await;
    assert_eq!(clerk.result(first, DEADLINE).await.unwrap().text(), "Filed.");
    assert_eq!(clerk.result(second, DEADLINE).await.unwrap().text(), "Second filed.");
    assert!(journal.unfinished("clerk").await.unwrap().is_empty());
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_question_keeps_its_deadline_and_is_answered_through_the_journal() {
    let setup = setup().await;
    let model = Model::new(OpenAiChat::new(setup.fake.base_url_openai(), "m"));
    let react = ReAct::builder(model).human(Duration::from_secs(30)).build();
    let agent = Agent::new("asker", react).journal(setup.journal.clone());
    let asker = agent.handle();
    let (tx, _rx) = mpsc::unbounded_channel();
    let root = warden_supervisor::Supervisor::builder("root")
        .escalation_handler(tx)
        .child(agent.child_spec())
        .spawn()
        .await
        .unwrap();
    setup
        .fake
        .push(Answer::tool_call("ask_human", json!({"question": "Ship it?"})));
    let id = asker.submit(AgentMessage::user("Decide")).await.unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let question = loop {
        if let Some(q) = setup.journal.questions().await.unwrap().pop() {
            break q;
        }
        tick.tick().await;
    };
    assert_eq!(question.question, "Ship it?");
    // Killed while waiting: the question stays, with its first deadline.
    let generation = asker.generation();
    asker.actor().unwrap().kill();
    asker.wait_started(generation, DEADLINE).await.unwrap();
    // The new incarnation replays the turn to the same question and waits on it again.
    while asker.status().await.unwrap().activity != Activity::WaitingForHuman {
        tick.tick().await;
    }
    let again = setup.journal.questions().await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].step, again[0].deadline_ms),
        (question.step, question.deadline_ms)
    );
    setup.fake.push(Answer::text("Shipped."));
    // Answered from "another process": a journal handle of its own.
    let other = Journal::open_shared(&setup.path).unwrap();
    other.answer(question.step, "yes").await.unwrap();
    assert_eq!(asker.result(id, DEADLINE).await.unwrap().text(), "Shipped.");
    assert!(setup.journal.questions().await.unwrap().is_empty());
    root.stop().await;
}

#[tokio::test]
async fn an_agent_without_a_journal_refuses_submit() {
    let fake = FakeProvider::start().await;
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "m"));
    let agent = Agent::new("plain", ReAct::builder(model).build());
    let plain = agent.handle();
    assert!(matches!(
        plain.submit(AgentMessage::user("x")).await,
        Err(AgentError::NotDurable(_))
    ));
}

/// A behaviour that reads the clock, draws a number and sleeps, as steps, then waits in a
/// step of its own the first time, so that the test can kill it there.
struct Deterministic {
    seen: mpsc::UnboundedSender<(u128, u64)>,
    first: Arc<Mutex<bool>>,
}

impl warden_agents::agent::Behaviour for Deterministic {
    fn turn<'a>(
        &'a self,
        cx: &'a mut warden_agents::agent::TurnContext,
        _task: &'a AgentMessage,
    ) -> futures::future::BoxFuture<'a, Result<warden_agents::agent::TurnOutput, warden_agents::TurnError>> {
        Box::pin(async move {
            let now = cx
                .now()
                .await?
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let drawn = cx.random().await?;
            cx.sleep(Duration::from_millis(20)).await?;
            let _ = self.seen.send((now, drawn));
            let first = std::mem::replace(&mut *self.first.lock().unwrap(), false);
            if first {
                std::future::pending::<()>().await;
            }
            let text = format!("{now} {drawn}");
            Ok(warden_agents::agent::TurnOutput::new(
                Outcome::Completed,
                vec![warden_agents::model::ContentBlock::text(text)],
            ))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_random_and_timer_steps_replay_the_values_of_the_first_run() {
    let setup = setup().await;
    let (seen, mut values) = mpsc::unbounded_channel();
    let behaviour = Deterministic {
        seen,
        first: Arc::new(Mutex::new(true)),
    };
    let agent = Agent::new("dice", behaviour).journal(setup.journal.clone());
    let dice = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let id = dice.submit(AgentMessage::user("roll")).await.unwrap();
    let first = values.recv().await.unwrap();
    let generation = dice.generation();
    dice.actor().unwrap().kill();
    dice.wait_started(generation, DEADLINE).await.unwrap();
    let replayed = values.recv().await.unwrap();
    assert_eq!(replayed, first, "the replay saw the recorded time and number");
    assert_eq!(
        dice.result(id, DEADLINE).await.unwrap().text(),
        format!("{} {}", first.0, first.1)
    );
    let kinds: Vec<_> = setup
        .journal
        .steps(id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(kinds, [StepKind::Clock, StepKind::Random, StepKind::Timer]);
    // Read from the journal alone, as another process would.
    let reply = warden_agents::agent::durable::task_result(&setup.journal, id, DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.text(), format!("{} {}", first.0, first.1));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_accepted_into_the_journal_by_another_process_is_picked_up() {
    let setup = setup().await;
    let tool = Recorder::new("file", false);
    let Running {
        clerk,
        root,
        escalations: _,
        ..
    } = running(&setup, &tool).await;
    // Written straight into the journal (as another process sharing it would), never sent.
    let other = Journal::open_shared(&setup.path).unwrap();
    let task = warden_agents::codec::to_bytes(&AgentMessage::user("File A-1")).unwrap();
    let id = other.accept("clerk", task).await.unwrap();
    assert_eq!(clerk.result(id, DEADLINE).await.unwrap().text(), "Filed.");
    assert_eq!(tool.runs().len(), 1);
    root.stop().await;
}
