//! [`FanOut`]: ask many targets at once and take the answers as they arrive.
//!
//! ```
//! use std::time::Duration;
//! use futures::StreamExt;
//! use warden_agents::agent::Agent;
//! use warden_agents::message::AgentMessage;
//! use warden_agents::model::{Model, OpenAiChat};
//! use warden_agents::pattern::FanOut;
//! use warden_agents::react::ReAct;
//! use warden_fake_provider::FakeProvider;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let fake = FakeProvider::start().await;
//! let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
//! let mut handles = Vec::new();
//! for name in ["a", "b", "c"] {
//!     let (handle, _join) = Agent::new(name, ReAct::builder(model.clone()).build()).spawn().await.unwrap();
//!     handles.push(handle);
//! }
//! let jobs = handles.iter().map(|h| (h.clone().into(), AgentMessage::user(format!("part for {}", h.name()))));
//! let mut answers = FanOut::new(Duration::from_secs(10)).run(jobs);
//! let mut done = 0;
//! while let Some(answer) = answers.next().await {
//!     assert!(answer.result.is_ok(), "{} failed", answer.target.name());
//!     done += 1;
//! }
//! assert_eq!(done, 3);
//! # }
//! ```

use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};

use crate::agent::{AgentError, Reply};
use crate::message::AgentMessage;
use crate::registry::Target;

/// One answer of a [`FanOut`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Answered {
    /// The job's position in the input.
    pub index: usize,
    /// Whom it was asked of.
    pub target: Target,
    /// The answer.
    pub result: Result<Reply, AgentError>,
}

/// Asks many targets concurrently, each with its own task and the same deadline, and
/// yields each [`Answered`] as it arrives (not in input order).
#[derive(Clone, Copy, Debug)]
pub struct FanOut {
    deadline: Duration,
    max_in_flight: Option<usize>,
}

impl FanOut {
    /// A fan-out whose asks each have `deadline`, all in flight at once.
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            max_in_flight: None,
        }
    }

    /// At most `n` asks in flight at once (at least 1); the next starts as one ends, in
    /// input order.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }

    /// Starts the asks and yields the answers as they arrive; the stream ends after the last.
    /// Nothing is sent until the stream is first polled.
    pub fn run(&self, jobs: impl IntoIterator<Item = (Target, AgentMessage)>) -> BoxStream<'static, Answered> {
        let deadline = self.deadline;
        let jobs: Vec<(Target, AgentMessage)> = jobs.into_iter().collect();
        let limit = self.max_in_flight.unwrap_or(jobs.len()).max(1);
        stream::iter(jobs.into_iter().enumerate())
            .map(move |(index, (target, task))| async move {
                let result = target.ask(task, deadline).await;
                Answered { index, target, result }
            })
            .buffer_unordered(limit)
            .boxed()
    }

    /// Asks every target the same task (a clone each); see [`run`](Self::run).
    pub fn run_same(
        &self,
        targets: impl IntoIterator<Item = Target>,
        task: &AgentMessage,
    ) -> BoxStream<'static, Answered> {
        self.run(targets.into_iter().map(|t| (t, task.clone())))
    }
}
