//! [`Pipeline`]: agents in sequence, each stage's answer the next stage's task.
//!
//! ```
//! use std::time::Duration;
//! use warden_agents::agent::Agent;
//! use warden_agents::message::AgentMessage;
//! use warden_agents::model::{Model, OpenAiChat};
//! use warden_agents::pattern::Pipeline;
//! use warden_agents::react::ReAct;
//! use warden_fake_provider::{FakeProvider, Answer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeProvider::start().await;
//! fake.push(Answer::text("a draft"));
//! fake.push(Answer::text("a polished draft"));
//! let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
//! let (writer, _) = Agent::new("writer", ReAct::builder(model.clone()).build()).spawn().await?;
//! let (editor, _) = Agent::new("editor", ReAct::builder(model).build()).spawn().await?;
//!
//! let run = Pipeline::new([writer, editor]).stage_deadline(Duration::from_secs(10))
//!     .run(AgentMessage::user("Write about OTP."))
//!     .await?;
//! assert_eq!(run.output().text(), "a polished draft");
//! assert_eq!(run.intermediate()[0].text(), "a draft");
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::agent::{AgentError, Outcome, Reply};
use crate::message::AgentMessage;
use crate::model::Role;
use crate::registry::Target;

/// Why a pipeline stage did not hand anything on.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageFailure {
    /// The ask failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The stage answered without finishing (interrupted, or out of iterations).
    #[error("stage ended {}", .0.as_str())]
    Incomplete(Outcome),
    /// The pipeline has no stages.
    #[error("pipeline has no stages")]
    NoStages,
}

/// A pipeline that stopped at a stage.
#[derive(Clone, Debug, thiserror::Error)]
#[error("pipeline stopped at stage {stage} ({target}): {failure}")]
#[non_exhaustive]
pub struct PipelineError {
    /// The stage, from 0.
    pub stage: usize,
    /// The stage's target name.
    pub target: String,
    /// What went wrong.
    pub failure: StageFailure,
    /// The replies of the stages before it.
    pub completed: Vec<Reply>,
}

/// A finished pipeline: the last stage's reply, and those before it.
#[derive(Clone, Debug)]
pub struct PipelineRun {
    /// One per stage, never empty.
    replies: Vec<Reply>,
    output: Reply,
}

impl PipelineRun {
    /// The last stage's reply.
    pub fn output(&self) -> &Reply {
        &self.output
    }

    /// Every stage's reply but the last, in order.
    pub fn intermediate(&self) -> &[Reply] {
        &self.replies
    }

    /// Every stage's reply, in order.
    pub fn into_replies(self) -> Vec<Reply> {
        let mut replies = self.replies;
        replies.push(self.output);
        replies
    }
}

/// Stages run one after the other: the task goes to the first; each stage's answer (its
/// text and images) is the next stage's task, sent from the previous stage's address, with
/// the original task's metadata.
#[derive(Clone, Debug)]
pub struct Pipeline {
    stages: Vec<Target>,
    stage_deadline: Duration,
}

impl Pipeline {
    /// A pipeline of these stages, each allowed 5 minutes.
    pub fn new<T: Into<Target>>(stages: impl IntoIterator<Item = T>) -> Self {
        Self {
            stages: stages.into_iter().map(Into::into).collect(),
            stage_deadline: Duration::from_secs(300),
        }
    }

    /// The deadline of each stage's ask.
    pub fn stage_deadline(mut self, deadline: Duration) -> Self {
        self.stage_deadline = deadline;
        self
    }

    /// The stages.
    pub fn stages(&self) -> &[Target] {
        &self.stages
    }

    /// Runs `task` through the stages.
    ///
    /// # Errors
    ///
    /// [`PipelineError`] at the first stage whose ask fails or that does not complete, with
    /// the replies of the stages before it.
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the stage in flight (its task is skipped if still queued,
    /// cut short if running) and
    /// starts no further stage.
    pub async fn run(&self, task: AgentMessage) -> Result<PipelineRun, PipelineError> {
        let fail = |stage: usize, target: String, failure: StageFailure, completed: Vec<Reply>| PipelineError {
            stage,
            target,
            failure,
            completed,
        };
        if self.stages.is_empty() {
            return Err(fail(0, String::new(), StageFailure::NoStages, Vec::new()));
        }
        let metadata = task.metadata.clone();
        let mut replies: Vec<Reply> = Vec::with_capacity(self.stages.len());
        let mut next = task;
        let last = self.stages.len() - 1;
        for (stage, target) in self.stages.iter().enumerate() {
            let reply = match target.ask(next, self.stage_deadline).await {
                Ok(reply) => reply,
                Err(e) => return Err(fail(stage, target.name().to_owned(), e.into(), replies)),
            };
            if reply.outcome != Outcome::Completed {
                let failure = StageFailure::Incomplete(reply.outcome);
                return Err(fail(stage, target.name().to_owned(), failure, replies));
            }
            if stage == last {
                return Ok(PipelineRun { replies, output: reply });
            }
            next = AgentMessage::new(Role::User, reply.message.text_and_images()).from(target.address());
            next.metadata = metadata.clone();
            replies.push(reply);
        }
        Err(fail(last, String::new(), StageFailure::NoStages, replies))
    }
}
