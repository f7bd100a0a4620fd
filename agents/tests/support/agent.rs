//! Shared by the agent tests: a model on the fake provider, an event recorder to wait on,
//! and a supervisor whose escalations arrive on a channel.

#![allow(dead_code)]

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warden_agents::agent::{AgentError, AgentEvent, AgentEventKind, AgentRef, Reply};
use warden_agents::message::AgentMessage;
use warden_agents::model::{Model, OpenAiChat, RetryPolicy};
use warden_fake_provider::FakeProvider;
use warden_supervisor::{ChildSpec, Escalation, Strategy, Supervisor};

/// Long enough never to be reached when things work.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A model on `fake` that does not retry (faults fail at once).
pub(crate) fn model(fake: &FakeProvider) -> Model {
    Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test")).with_retry(RetryPolicy::new(1))
}

/// Records an agent's events; tests wait on them.
pub(crate) struct Events(mpsc::UnboundedReceiver<AgentEvent>);

/// An observer for [`Agent::observer`] and the [`Events`] it feeds.
pub(crate) fn recorder() -> (impl Fn(&AgentEvent) + Clone + Send + Sync + 'static, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    (move |e: &AgentEvent| drop(tx.send(e.clone())), Events(rx))
}

impl Events {
    /// The next event of this agent matching `pred` (earlier ones are skipped).
    pub(crate) async fn wait_for(&mut self, agent: &str, pred: impl Fn(&AgentEventKind) -> bool) -> AgentEventKind {
        self.next_matching(|e| &*e.agent == agent && pred(&e.kind)).await.kind
    }

    /// The next event of any agent matching `pred` (earlier ones are skipped).
    pub(crate) async fn next_matching(&mut self, pred: impl Fn(&AgentEvent) -> bool) -> AgentEvent {
        let wait = async {
            loop {
                let event = self.0.recv().await.expect("observer dropped");
                if pred(&event) {
                    return event;
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait).await.expect("event did not come")
    }
}

/// A root supervisor with these children, whose unhandled escalations arrive on the receiver.
pub(crate) async fn root(children: Vec<ChildSpec>) -> (Supervisor, mpsc::UnboundedReceiver<Escalation>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .escalation_handler(tx)
        .children(children)
        .spawn()
        .await
        .expect("root starts");
    (root, rx)
}

/// The next escalation.
pub(crate) async fn next_escalation(rx: &mut mpsc::UnboundedReceiver<Escalation>) -> Escalation {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("escalation did not come")
        .expect("handler dropped")
}

/// Asks `agent` in a task of its own, to await later.
pub(crate) fn spawn_ask(agent: &AgentRef, text: &str) -> JoinHandle<Result<Reply, AgentError>> {
    let (agent, task) = (agent.clone(), AgentMessage::user(text));
    tokio::spawn(async move { agent.ask(task, DEADLINE).await })
}

/// ReAct agents of these names, all thinking with `fake`.
pub(crate) fn react_agents(fake: &FakeProvider, names: &[&str]) -> Vec<warden_agents::agent::Agent> {
    names
        .iter()
        .map(|n| warden_agents::agent::Agent::new(*n, warden_agents::react::ReAct::builder(model(fake)).build()))
        .collect()
}

/// What a [`Scripted`] agent's turns tell the test.
pub(crate) struct Script {
    /// Turns begun (the behaviour's `turn` was called).
    pub(crate) turns: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The text of each turn's task, as the turn begins.
    pub(crate) started: mpsc::UnboundedReceiver<String>,
    /// The text of each turn whose future was dropped before it finished (cut short).
    pub(crate) cut: mpsc::UnboundedReceiver<String>,
    /// Each permit lets one `"gate"` turn finish.
    pub(crate) gate: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Script {
    /// The next turn that begins; its task's text.
    pub(crate) async fn next_started(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.started.recv())
            .await
            .expect("no turn began")
            .expect("behaviour dropped")
    }

    /// The next turn cut short; its task's text.
    pub(crate) async fn next_cut(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.cut.recv())
            .await
            .expect("no turn was cut short")
            .expect("behaviour dropped")
    }

    /// Turns begun so far.
    pub(crate) fn turns(&self) -> usize {
        self.turns.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A behaviour driven by its task's text, for tests of the agent itself (no model):
/// `"panic while building"` panics in `turn` itself, `"panic"` inside the turn, `"hang"`
/// never finishes, `"gate"` finishes when the test adds a permit to [`Script::gate`],
/// `"escalate"` raises its text to the agent's supervisor; anything else answers its own
/// text at once.
#[derive(Clone)]
pub(crate) struct Scripted {
    turns: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    started: mpsc::UnboundedSender<String>,
    cut: mpsc::UnboundedSender<String>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
}

/// A [`Scripted`] behaviour and the [`Script`] it reports to.
pub(crate) fn scripted() -> (Scripted, Script) {
    let (started_tx, started) = mpsc::unbounded_channel();
    let (cut_tx, cut) = mpsc::unbounded_channel();
    let turns = std::sync::Arc::default();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let behaviour = Scripted {
        turns: std::sync::Arc::clone(&turns),
        started: started_tx,
        cut: cut_tx,
        gate: gate.clone(),
    };
    (
        behaviour,
        Script {
            turns,
            started,
            cut,
            gate,
        },
    )
}

/// Reports its text as cut short when dropped armed.
struct CutGuard(Option<(mpsc::UnboundedSender<String>, String)>);

impl Drop for CutGuard {
    fn drop(&mut self) {
        if let Some((tx, text)) = self.0.take() {
            let _ = tx.send(text);
        }
    }
}

impl warden_agents::agent::Behaviour for Scripted {
    fn turn<'a>(
        &'a self,
        cx: &'a mut warden_agents::agent::TurnContext,
        task: &'a AgentMessage,
    ) -> futures::future::BoxFuture<'a, Result<warden_agents::agent::TurnOutput, warden_agents::agent::TurnError>> {
        use warden_agents::agent::{Outcome, TurnOutput};
        use warden_agents::model::ContentBlock;

        let text = task.text();
        self.turns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.started.send(text.clone());
        assert_ne!(text, "panic while building", "the behaviour panics building its turn");
        if let (Some(escalator), "escalate") = (cx.escalator(), text.as_str()) {
            escalator.raise(text.clone()).expect("the supervisor is up");
        }
        Box::pin(async move {
            let mut guard = CutGuard(Some((self.cut.clone(), text.clone())));
            match text.as_str() {
                "panic" => panic!("the behaviour panics in its turn"),
                "hang" => std::future::pending::<()>().await,
                "gate" => self.gate.acquire().await.expect("gate open").forget(),
                _ => {}
            }
            guard.0 = None;
            Ok(TurnOutput::new(Outcome::Completed, vec![ContentBlock::text(text)]))
        })
    }
}
