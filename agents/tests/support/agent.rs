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
    Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"))
        .with_retry(RetryPolicy::default().with_max_retries(0))
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
