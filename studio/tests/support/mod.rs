//! A small live system watched by a studio, shared by the studio's tests: a root supervisor
//! with a worker, a tool executor with a tool that hangs until released, and a ReAct agent on
//! the fake provider that can ask a human; the studio's observers on all of them and its
//! layer on `tracing`.

#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;
use tracing_subscriber::prelude::*;
use warden_agents::agent::{Agent, AgentError, AgentRef, Reply};
use warden_agents::message::AgentMessage;
use warden_agents::model::{Model, OpenAiChat, Price, RetryPolicy};
use warden_agents::react::{ASK_HUMAN_TOOL, ReAct};
use warden_fake_provider::{Answer, FakeProvider, ScriptedCall};
use warden_studio::{Frame, Studio, View, Viewer};
use warden_supervisor::{ChildSpec, Strategy, Supervisor};
use warden_tools::circuit_breaker::{CircuitBreakerConfig, SharedCircuitBreaker};
use warden_tools::{ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

/// Long enough never to be reached when things work.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
/// The studio's stuck threshold in these tests.
pub(crate) const STUCK_AFTER: Duration = Duration::from_millis(300);

/// A worker that does nothing, for the chaos monkey.
pub(crate) struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

#[derive(Deserialize, JsonSchema)]
struct WaitArgs {}

/// The system.
pub(crate) struct System {
    pub(crate) studio: Studio,
    pub(crate) fake: FakeProvider,
    pub(crate) root: Supervisor,
    pub(crate) clerk: AgentRef,
    /// Releases the `wait` tool's calls.
    pub(crate) release: Arc<Notify>,
}

/// Starts the system, with the studio's layer as this process's `tracing` subscriber (one
/// test per file: the subscriber is global).
pub(crate) async fn start() -> anyhow::Result<System> {
    let studio = Studio::builder().stuck_after(STUCK_AFTER).token("test-token").start();
    tracing_subscriber::registry()
        .with(studio.tracing_layer())
        .try_init()
        .context("one studio test per process")?;
    let fake = FakeProvider::start().await;
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let toolkit = Toolkit::new().tool(tool_fn("wait", "Waits until released.", move |_: WaitArgs| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            Ok::<_, ToolError>("released")
        }
    }));
    let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"))
        .with_retry(RetryPolicy::new(1))
        .with_price(Price::per_million(1.0, 2.0))
        .with_circuit_breaker(SharedCircuitBreaker::new(
            "model",
            CircuitBreakerConfig::builder().build()?,
        ));
    let react = ReAct::builder(model)
        .tools(toolkit, executor.client())
        .tool_deadline(DEADLINE)
        .human(DEADLINE)
        .build();
    let agent = Agent::new("clerk", react).inline_observer(studio.agent_observer());
    let clerk = agent.handle();
    studio.watch_agent(&clerk);
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .inline_observer(studio.supervisor_observer())
        .escalation_handler(studio.escalation_handler())
        .child(ChildSpec::actor("pinger", || (Idle, ())))
        .child(executor.child_spec("tools"))
        .child(agent.child_spec())
        .spawn()
        .await?;
    studio.attach(&root).await;
    Ok(System {
        studio,
        fake,
        root,
        clerk,
        release,
    })
}

impl System {
    /// Scripts the model: ask a human `question`, then answer with what the human said.
    pub(crate) fn script_question(&self, question: &str) {
        self.fake.push(Answer::ToolCalls(vec![
            ScriptedCall::new(ASK_HUMAN_TOOL, json!({"question": question})).with_id("h1"),
        ]));
        self.fake.set_responder(|body| {
            let said = body["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or("nothing")
                .to_owned();
            Answer::text(format!("The human said: {said}"))
        });
    }

    /// Scripts the model: call the `wait` tool, then finish.
    pub(crate) fn script_wait(&self) {
        self.fake.push(Answer::ToolCalls(vec![
            ScriptedCall::new("wait", json!({})).with_id("w1"),
        ]));
        self.fake.push(Answer::text("done waiting"));
    }

    /// Asks the clerk in a task of its own.
    pub(crate) fn ask(&self, text: &str) -> tokio::task::JoinHandle<Result<Reply, AgentError>> {
        let (clerk, task) = (self.clerk.clone(), AgentMessage::user(text));
        tokio::spawn(async move { clerk.ask(task, DEADLINE).await })
    }
}

/// A viewer's copy of the view, kept current frame by frame.
pub(crate) struct Follower {
    pub(crate) viewer: Viewer,
    pub(crate) view: View,
    pub(crate) snapshots: usize,
}

impl Follower {
    pub(crate) fn new(studio: &Studio) -> Self {
        Self {
            viewer: studio.subscribe(),
            view: View::default(),
            snapshots: 0,
        }
    }

    /// Takes frames until `pred` holds of the view.
    pub(crate) async fn until(&mut self, what: &str, pred: impl Fn(&View) -> bool) -> anyhow::Result<&View> {
        let wait = async {
            while !pred(&self.view) {
                let frame = self.viewer.next().await.context("studio gone")?;
                if matches!(frame, Frame::Snapshot { .. }) {
                    self.snapshots += 1;
                }
                self.view.take(frame);
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .with_context(|| format!("waiting for {what}"))??;
        Ok(&self.view)
    }
}
