//! The sequential pipeline and the fan-out, over agents under a real supervisor talking to
//! the fake provider.

#[path = "support/agent.rs"]
mod support;

use futures::StreamExt;
use warden_agents::agent::{Agent, AgentError, Outcome, TurnError};
use warden_agents::message::{Address, AgentMessage};
use warden_agents::pattern::{FanOut, Pipeline, StageFailure};
use warden_agents::react::ReAct;
use warden_agents::registry::Target;
use warden_fake_provider::{Answer, FakeProvider, Fault};

use support::{DEADLINE, model, react_agents, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_hands_each_answer_to_the_next_stage() {
    let fake = FakeProvider::start().await;
    fake.push_all([
        Answer::text("draft"),
        Answer::text("edited draft"),
        Answer::text("final text"),
    ]);
    let stages = react_agents(&fake, &["writer", "editor", "publisher"]);
    let (root, _escalations) = root(stages.iter().map(Agent::child_spec).collect()).await;

    let task = AgentMessage::user("Write about supervisors.").with_metadata("job", serde_json::json!(7));
    let run = Pipeline::new(stages.iter().map(Agent::handle))
        .stage_deadline(DEADLINE)
        .run(task)
        .await
        .unwrap();
    assert_eq!(run.output().text(), "final text");
    let texts: Vec<String> = run.intermediate().iter().map(|r| r.text()).collect();
    assert_eq!(texts, ["draft", "edited draft"]);
    // Each stage's task came from the stage before, with the original metadata.
    assert_eq!(run.output().message.recipient, Address::name("editor"));
    let requests = fake.requests();
    assert_eq!(requests[1].messages()[0]["content"], "draft");
    assert_eq!(requests[2].messages()[0]["content"], "edited draft");
    assert_eq!(run.into_replies().len(), 3);
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stage_stops_the_pipeline_with_what_was_done() {
    let fake = FakeProvider::start().await;
    fake.push_all([Answer::text("draft"), Answer::Fault(Fault::Status(400))]);
    let stages = react_agents(&fake, &["writer", "editor", "publisher"]);
    let (root, _escalations) = root(stages.iter().map(Agent::child_spec).collect()).await;

    let err = Pipeline::new(stages.iter().map(Agent::handle))
        .run(AgentMessage::user("go"))
        .await
        .unwrap_err();
    assert_eq!((err.stage, err.target.as_str()), (1, "editor"));
    assert!(matches!(
        err.failure,
        StageFailure::Agent(AgentError::Turn(TurnError::Model(_)))
    ));
    assert_eq!(err.completed.len(), 1);
    assert_eq!(fake.request_count(), 2, "the third stage never ran");

    let empty = Pipeline::new(Vec::<Target>::new())
        .run(AgentMessage::user("x"))
        .await
        .unwrap_err();
    assert!(matches!(empty.failure, StageFailure::NoStages));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_yields_answers_as_they_arrive() {
    let (slow_fake, fake) = (FakeProvider::start().await, FakeProvider::start().await);
    slow_fake.set_default_reply(Fault::Stall);
    let slow = Agent::new("slow", ReAct::builder(model(&slow_fake)).build());
    let quick = react_agents(&fake, &["q1", "q2"]);
    let mut children = vec![slow.child_spec()];
    children.extend(quick.iter().map(Agent::child_spec));
    let (root, _escalations) = root(children).await;

    let targets: Vec<Target> = [slow.handle(), quick[0].handle(), quick[1].handle()]
        .into_iter()
        .map(Target::from)
        .collect();
    let mut answers = FanOut::new(DEADLINE).run_same(targets.clone(), &AgentMessage::user("part?"));
    let mut first_two = Vec::new();
    for _ in 0..2 {
        let answer = answers.next().await.unwrap();
        assert_eq!(answer.result.unwrap().outcome, Outcome::Completed);
        first_two.push(answer.target.name().to_owned());
    }
    first_two.sort();
    assert_eq!(first_two, ["q1", "q2"]);
    // The slow one is still working; it answers last.
    assert!(slow.handle().interrupt().await.unwrap());
    let last = answers.next().await.unwrap();
    assert_eq!((last.index, last.result.unwrap().outcome), (0, Outcome::Interrupted));
    assert!(answers.next().await.is_none());

    // One at a time: in input order.
    slow_fake.set_default_reply(Answer::text("ok"));
    let indices: Vec<usize> = FanOut::new(DEADLINE)
        .max_in_flight(1)
        .run_same(targets, &AgentMessage::user("again"))
        .map(|a| a.index)
        .collect()
        .await;
    assert_eq!(indices, [0, 1, 2]);
    root.stop().await;
}
