//! `AgentRef::remote`: a handle whose agent is reached through a [`RemoteLink`] answers as a
//! local handle does. The link here forwards to an agent in this process (what
//! `warden-cluster`'s link does across nodes is tested in `cli/tests/cluster_agent_ref.rs`):
//! asks, tells, status and interrupts go through it, a task that names nobody is addressed to
//! the agent, a registry reaches the handle by name, and what only the agent's own process
//! knows (journal, path, actor) is not claimed here.

#[path = "support/agent.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use warden_agents::agent::{Activity, Agent, AgentError, AgentRef, AgentStatus, RemoteLink, Reply};
use warden_agents::message::{Address, AgentMessage};
use warden_agents::react::ReAct;
use warden_agents::registry::Registry;
use warden_durable::TaskId;
use warden_fake_provider::{Answer, FakeProvider};

use support::{DEADLINE, model, root};

/// A link to an agent of this process, counting what crosses it.
struct Loopback {
    agent: AgentRef,
    crossed: Arc<AtomicUsize>,
}

impl Loopback {
    fn cross(&self) -> AgentRef {
        self.crossed.fetch_add(1, Ordering::Relaxed);
        self.agent.clone()
    }
}

impl RemoteLink for Loopback {
    fn is_reachable(&self) -> bool {
        self.agent.is_running()
    }

    fn ask(&self, task: AgentMessage, deadline: Duration) -> BoxFuture<'static, Result<Reply, AgentError>> {
        let agent = self.cross();
        Box::pin(async move { agent.ask(task, deadline).await })
    }

    fn tell(&self, task: AgentMessage) -> Result<(), AgentError> {
        self.cross().tell(task)
    }

    fn submit(&self, task: AgentMessage) -> BoxFuture<'static, Result<TaskId, AgentError>> {
        let agent = self.cross();
        Box::pin(async move { agent.submit(task).await })
    }

    fn result(&self, id: TaskId, deadline: Duration) -> BoxFuture<'static, Result<Reply, AgentError>> {
        let agent = self.cross();
        Box::pin(async move { agent.result(id, deadline).await })
    }

    fn interrupt(&self) -> BoxFuture<'static, Result<bool, AgentError>> {
        let agent = self.cross();
        Box::pin(async move { agent.interrupt().await })
    }

    fn human_input(&self, text: String) -> Result<(), AgentError> {
        self.cross().human_input(text)
    }

    fn status(&self) -> BoxFuture<'static, Result<AgentStatus, AgentError>> {
        let agent = self.cross();
        Box::pin(async move { agent.status().await })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_handle_answers_as_a_local_one() {
    let fake = FakeProvider::start().await;
    let agent = Agent::new("clerk", ReAct::builder(model(&fake)).build());
    let local = agent.handle();
    let (root, _escalations) = root(vec![agent.child_spec()]).await;
    let crossed = Arc::new(AtomicUsize::new(0));
    let clerk = AgentRef::remote(
        "clerk",
        Loopback {
            agent: local.clone(),
            crossed: crossed.clone(),
        },
    );
    assert!(clerk.is_remote() && !local.is_remote());
    assert!(clerk.is_running());
    assert!(!clerk.same_agent(&local), "a remote handle is a handle of its own");
    assert_eq!(
        (clerk.path(), clerk.actor().is_none(), clerk.journal().is_none()),
        (None, true, true)
    );

    // Asked by name through a registry; the reply is addressed as a local one's.
    let registry = Registry::new();
    registry.register(clerk.clone()).unwrap();
    fake.push(Answer::text("Filed D-1."));
    let reply = registry
        .ask(&Address::name("clerk"), AgentMessage::user("File D-1"), DEADLINE)
        .await
        .unwrap();
    assert_eq!(reply.text(), "Filed D-1.");
    assert_eq!(reply.message.sender, Address::name("clerk"));
    fake.push(Answer::text("Filed D-2."));
    let reply = clerk.ask(AgentMessage::user("File D-2"), DEADLINE).await.unwrap();
    assert_eq!(reply.text(), "Filed D-2.");

    fake.push(Answer::text("Filed D-3."));
    clerk.tell(AgentMessage::user("File D-3")).unwrap();
    fake.wait_for_requests(3).await;
    let status = clerk.status().await.unwrap();
    assert!(
        matches!(status.activity, Activity::Idle | Activity::Working),
        "{status:?}"
    );
    assert!(!clerk.interrupt().await.unwrap() || status.activity == Activity::Working);
    assert_eq!(clerk.wait_started(0, DEADLINE).await.unwrap(), 0);
    assert!(matches!(
        clerk.submit(AgentMessage::user("x")).await,
        Err(AgentError::NotDurable(_))
    ));
    assert_eq!(
        crossed.load(Ordering::Relaxed),
        6,
        "every call but wait_started crossed the link"
    );

    root.stop().await;
    assert!(!clerk.is_running());
    let refused = clerk.ask(AgentMessage::user("File D-4"), DEADLINE).await.unwrap_err();
    assert!(refused.was_not_delivered(), "{refused:?}");
}
