//! Orchestrator-workers: a planner on the fake provider splits the work, workers are started
//! at run time under the orchestrator's dynamic supervisor and run concurrently, and the
//! planner re-plans when a worker is killed mid-task, its tool's breaker opens, or its model
//! keeps failing.

#[path = "support/pattern.rs"]
mod pattern_support;
#[path = "support/agent.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden_agents::agent::{Agent, AgentError, TurnError};
use warden_agents::pattern::{
    FailureReason, Orchestrator, OrchestratorError, OrchestratorEvent, Plan, WorkerConcern, WorkerRequest, WorkerSpec,
};
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault};
use warden_supervisor::{Escalation, Supervisor};
use warden_tools::circuit_breaker::CircuitBreakerConfig;
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

use pattern_support::task_text;
use support::{DEADLINE, model, root};

fn plan(subtasks: &[(&str, &str)]) -> Answer {
    let subtasks: Vec<Value> = subtasks
        .iter()
        .map(|(id, task)| json!({"id": id, "task": task}))
        .collect();
    Answer::json(json!({ "subtasks": subtasks }))
}

/// A planner, a synthesizer, and one fake provider per subtask id for the workers.
struct Setup {
    planner_llm: FakeProvider,
    synth_llm: FakeProvider,
    workers_llm: Arc<HashMap<&'static str, FakeProvider>>,
    root: Supervisor,
    _escalations: mpsc::UnboundedReceiver<Escalation>,
    orchestrator: Orchestrator,
    events: mpsc::UnboundedReceiver<OrchestratorEvent>,
}

/// Workers think on the fake of their subtask; the subtask `search` gets a tool that always
/// fails, behind a breaker that opens after two failures.
async fn setup(subtasks: &[&'static str], max_replans: u32) -> Setup {
    let (planner_llm, synth_llm) = (FakeProvider::start().await, FakeProvider::start().await);
    let mut workers_llm = HashMap::new();
    for id in subtasks {
        workers_llm.insert(*id, FakeProvider::start().await);
    }
    let workers_llm = Arc::new(workers_llm);
    let planner = Agent::new(
        "planner",
        ReAct::builder(model(&planner_llm)).structured_output::<Plan>().build(),
    );
    let synthesizer = Agent::new("synthesizer", ReAct::builder(model(&synth_llm)).build());
    let (root, escalations) = root(vec![planner.child_spec(), synthesizer.child_spec()]).await;

    let factory = {
        let workers_llm = workers_llm.clone();
        move |request: &WorkerRequest| {
            let fake = &workers_llm[request.subtask.id.as_str()];
            let react = ReAct::builder(model(fake)).max_tool_failures(0);
            if request.subtask.id != "search" {
                return WorkerSpec::new(Agent::new("researcher", react.build()));
            }
            let toolkit = Toolkit::new().tool(tool_fn("search", "Searches.", |_: Value| async move {
                Err::<Value, _>(ToolError::permanent("index offline"))
            }));
            let breaker = CircuitBreakerConfig::builder()
                .minimum_number_of_calls(2)
                .build()
                .expect("valid breaker");
            let executor = ToolExecutor::new(toolkit.clone(), ToolStack::builder().circuit_breaker(breaker).build());
            let agent = Agent::new("researcher", react.tools(toolkit, executor.client()).build()).escalate_after(1);
            WorkerSpec::new(agent).with(executor.child_spec("tools"))
        }
    };
    let (tx, events) = mpsc::unbounded_channel();
    let orchestrator = Orchestrator::builder(planner.handle(), synthesizer.handle(), factory)
        .plan_deadline(DEADLINE)
        .worker_deadline(DEADLINE)
        .max_replans(max_replans)
        .observer(move |e| drop(tx.send(e.clone())))
        .start(&root, "workers")
        .await
        .unwrap();
    Setup {
        planner_llm,
        synth_llm,
        workers_llm,
        root,
        _escalations: escalations,
        orchestrator,
        events,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_started_at_run_time_run_concurrently_and_their_results_gathered() {
    let mut s = setup(&["a", "b", "c"], 3).await;
    s.planner_llm
        .push(plan(&[("a", "Part A"), ("b", "Part B"), ("c", "Part C")]));
    for (id, fake) in s.workers_llm.iter() {
        fake.push(Answer::text(format!("finding {id}")));
    }
    s.synth_llm.push(Answer::text("the answer"));
    assert!(s.orchestrator.workers().which_children().await.unwrap().is_empty());

    let run = s.orchestrator.run("Question?").await.unwrap();
    assert_eq!(run.answer.text(), "the answer");
    assert_eq!((run.workers_started, run.replans), (3, 0));
    assert!(run.failures.is_empty() && run.escalations.is_empty());
    let mut found: Vec<String> = run.results.iter().map(|r| r.reply.text()).collect();
    found.sort();
    assert_eq!(found, ["finding a", "finding b", "finding c"]);
    for (id, fake) in s.workers_llm.iter() {
        assert_eq!(task_text(&fake.requests()[0]), format!("Part {}", id.to_uppercase()));
    }
    let synthesis = task_text(&s.synth_llm.requests()[0]);
    assert!(synthesis.contains("Question?") && synthesis.contains("[b] Part B\nfinding b"));

    // All three started, under the workers supervisor, before any finished.
    let mut started = Vec::new();
    while let Ok(event) = s.events.try_recv() {
        match event {
            OrchestratorEvent::WorkerStarted { worker, agent, .. } => {
                let path = agent.path().unwrap();
                assert_eq!(path.as_str(), format!("root/workers/{worker}/researcher"));
                started.push(worker);
            }
            OrchestratorEvent::WorkerDone { .. } => {
                assert_eq!(started.len(), 3, "a worker finished before all started")
            }
            _ => {}
        }
    }
    assert_eq!(started.len(), 3);
    // And they are gone once the run is over.
    assert!(s.orchestrator.workers().which_children().await.unwrap().is_empty());
    s.root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_is_replanned() {
    let mut s = setup(&["slow", "quick", "slow-2"], 3).await;
    s.planner_llm.push_all([
        plan(&[("slow", "Slow part"), ("quick", "Quick part")]),
        plan(&[("slow", "Slow part, again")]),
    ]);
    s.workers_llm["slow"].set_default_reply(Fault::Stall);
    s.workers_llm["quick"].push(Answer::text("quick finding"));
    s.workers_llm["slow-2"].push(Answer::text("slow finding"));
    s.synth_llm.push(Answer::text("the answer"));

    let orchestrator = s.orchestrator.clone();
    let running = tokio::spawn(async move { orchestrator.run("Question?").await });
    let victim = loop {
        match s.events.recv().await.unwrap() {
            OrchestratorEvent::WorkerStarted { subtask, agent, .. } if subtask.id == "slow" => break agent,
            _ => {}
        }
    };
    // Mid-task: its model call is in flight.
    s.workers_llm["slow"].wait_for_requests(1).await;
    victim.actor().unwrap().kill();

    let run = running.await.unwrap().unwrap();
    assert_eq!(run.answer.text(), "the answer");
    assert_eq!((run.workers_started, run.replans), (3, 1));
    assert_eq!(run.failures.len(), 1);
    let failure = &run.failures[0];
    assert_eq!((&*failure.worker, failure.subtask.id.as_str()), ("0", "slow"));
    assert!(
        matches!(failure.reason, FailureReason::Ask(AgentError::AgentDown(_))),
        "{failure:?}"
    );
    let mut done: Vec<&str> = run.results.iter().map(|r| r.subtask.id.as_str()).collect();
    done.sort();
    assert_eq!(done, ["quick", "slow-2"], "the re-planned subtask got a fresh id");

    let replan = task_text(&s.planner_llm.requests()[1]);
    assert!(
        replan.contains("Worker 0 failed on subtask slow (Slow part)"),
        "{replan}"
    );
    assert!(replan.contains("went down"), "{replan}");
    s.root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_breaker_escalation_reaches_the_orchestrator_which_replans() {
    let s = setup(&["search", "recall"], 3).await;
    s.planner_llm.push_all([
        plan(&[("search", "Search the index")]),
        plan(&[("recall", "Answer from memory")]),
    ]);
    let searcher = &s.workers_llm["search"];
    searcher.push_all([
        Answer::tool_call("search", json!({})),
        Answer::tool_call("search", json!({})),
    ]);
    // The worker would go on forever: only the orchestrator's reaction ends it.
    searcher.set_default_reply(Fault::Stall);
    s.workers_llm["recall"].push(Answer::text("from memory"));
    s.synth_llm.push(Answer::text("the answer"));

    let run = s.orchestrator.run("Question?").await.unwrap();
    assert_eq!(run.answer.text(), "the answer");
    assert_eq!(run.escalations.len(), 1);
    let escalation = &run.escalations[0];
    assert_eq!(escalation.origin.as_str(), "root/workers/0/tools");
    assert_eq!((&*escalation.worker, escalation.subtask.as_str()), ("0", "search"));
    assert!(matches!(&escalation.concern, WorkerConcern::CircuitOpened(c) if &*c.breaker == "search"));
    assert!(matches!(
        run.failures[0].reason,
        FailureReason::Escalated(WorkerConcern::CircuitOpened(_))
    ));
    assert_eq!(run.replans, 1);
    assert_eq!(run.results[0].subtask.id, "recall");
    assert!(task_text(&s.planner_llm.requests()[1]).contains("circuit breaker of tool search opened"));
    // The stopped worker's subtree is gone.
    assert!(s.orchestrator.workers().which_children().await.unwrap().is_empty());
    s.root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_is_replanned_and_replans_are_bounded() {
    let s = setup(&["flaky", "flaky-2"], 1).await;
    s.planner_llm
        .push_all([plan(&[("flaky", "Part one")]), plan(&[("flaky", "Part one, again")])]);
    for fake in s.workers_llm.values() {
        fake.set_default_reply(Fault::Status(400));
    }
    s.synth_llm.push(Answer::text("unused"));

    // Both workers' models fail; one re-plan is allowed, so the second failure stays.
    let err = s.orchestrator.run("Question?").await.unwrap_err();
    let OrchestratorError::NothingCompleted { failures } = err else {
        panic!("{err:?}");
    };
    assert_eq!(failures.len(), 2);
    for failure in &failures {
        let model_failed = matches!(
            &failure.reason,
            FailureReason::Ask(AgentError::Turn(TurnError::Model(_)))
        );
        let escalated = matches!(
            &failure.reason,
            FailureReason::Escalated(WorkerConcern::AgentTrouble(_))
        );
        assert!(model_failed || escalated, "{failure:?}");
    }
    assert_eq!(s.planner_llm.request_count(), 2);
    assert_eq!(s.synth_llm.request_count(), 0);

    // A plan that is not a plan is a typed error, not a panic.
    s.planner_llm.push(Answer::text("I would rather not."));
    s.planner_llm.push(Answer::text("Still no."));
    let err = s.orchestrator.run("Question?").await.unwrap_err();
    assert!(
        matches!(
            err,
            OrchestratorError::Planner(AgentError::Turn(TurnError::StructuredOutputInvalid(_)))
        ),
        "{err:?}"
    );
    s.root.stop().await;
}

/// A worker factory that panics is a failed start of that worker, not a panic of the run:
/// the run re-plans and goes on, and the workers supervisor keeps nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_factory_that_panics_is_a_failed_start() {
    let s = setup(&["a"], 1).await;
    // The test factory has no model for a subtask it was not set up with: it panics.
    s.planner_llm
        .push_all([plan(&[("a", "Part A"), ("ghost", "Part G")]), plan(&[])]);
    s.workers_llm["a"].push(Answer::text("finding a"));
    s.synth_llm.push(Answer::text("the answer"));

    let run = s.orchestrator.run("Question?").await.unwrap();

    assert_eq!(run.answer.text(), "the answer");
    assert_eq!(run.failures.len(), 1);
    let failure = &run.failures[0];
    assert_eq!(failure.subtask.id, "ghost");
    assert!(
        matches!(&failure.reason, FailureReason::StartFailed(e) if e.contains("panicked")),
        "{failure:?}"
    );
    assert_eq!(run.replans, 1);
    assert_eq!(run.results[0].subtask.id, "a");
    assert!(s.orchestrator.workers().which_children().await.unwrap().is_empty());
    s.root.stop().await;
}
