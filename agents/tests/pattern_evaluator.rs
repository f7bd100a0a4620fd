//! The evaluator-optimizer loop, with a generator and an evaluator under a real supervisor
//! on the fake provider: it stops when the evaluator accepts, and at its bound.

#[path = "support/pattern.rs"]
mod pattern_support;
#[path = "support/agent.rs"]
mod support;

use serde_json::json;
use warden_agents::agent::{Agent, AgentError, TurnError};
use warden_agents::pattern::{Evaluation, EvaluatorError, EvaluatorOptimizer, Stopped};
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault};

use pattern_support::task_text;
use support::{DEADLINE, model, root};

struct Pair {
    writer: FakeProvider,
    critic: FakeProvider,
    agents: Vec<Agent>,
}

async fn pair() -> Pair {
    let (writer, critic) = (FakeProvider::start().await, FakeProvider::start().await);
    let agents = vec![
        Agent::new("writer", ReAct::builder(model(&writer)).build()),
        Agent::new(
            "critic",
            ReAct::builder(model(&critic)).structured_output::<Evaluation>().build(),
        ),
    ];
    Pair { writer, critic, agents }
}

fn reject(feedback: &str) -> Answer {
    Answer::json(json!({"accepted": false, "feedback": feedback}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_stops_when_the_evaluator_accepts() {
    let p = pair().await;
    let (root, _escalations) = root(p.agents.iter().map(Agent::child_spec).collect()).await;
    p.writer
        .push_all([Answer::text("v1"), Answer::text("v2"), Answer::text("v3")]);
    p.critic.push_all([
        reject("too short"),
        Answer::json(json!({"accepted": true, "feedback": "good"})),
    ]);

    let run = EvaluatorOptimizer::new(p.agents[0].handle(), p.agents[1].handle())
        .max_rounds(5)
        .deadline(DEADLINE)
        .criteria("brevity")
        .run("Describe OTP.")
        .await
        .unwrap();
    assert_eq!(run.stopped, Stopped::Accepted);
    assert!(run.accepted());
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(run.output(), "v2");
    assert_eq!(run.attempts[0].evaluation.feedback, "too short");
    assert_eq!(p.writer.request_count(), 2, "no third draft after acceptance");
    assert_eq!(p.critic.request_count(), 2);

    // The generator got its draft back with the feedback; the evaluator saw task, draft and criteria.
    let revise = task_text(&p.writer.requests()[1]);
    assert!(revise.contains("v1") && revise.contains("too short") && revise.contains("Describe OTP."));
    let judge = task_text(&p.critic.requests()[1]);
    assert!(judge.contains("Describe OTP.") && judge.contains("v2") && judge.contains("brevity"));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_stops_at_its_bound() {
    let p = pair().await;
    let (root, _escalations) = root(p.agents.iter().map(Agent::child_spec).collect()).await;
    p.critic.set_default_reply(reject("not yet"));
    let looping = EvaluatorOptimizer::new(p.agents[0].handle(), p.agents[1].handle())
        .max_rounds(3)
        .deadline(DEADLINE);

    let run = looping.run("Describe OTP.").await.unwrap();
    assert_eq!(run.stopped, Stopped::MaxRounds);
    assert!(!run.accepted());
    assert_eq!(run.attempts.len(), 3);
    assert_eq!((p.writer.request_count(), p.critic.request_count()), (3, 3));

    let none = looping.clone().max_rounds(0).run("x").await.unwrap_err();
    assert!(matches!(none, EvaluatorError::NoRounds));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_typed_and_name_the_round() {
    let p = pair().await;
    // The evaluator here is a plain agent answering text: JSON text is read, other text is not.
    let plain = FakeProvider::start().await;
    let judge = Agent::new("judge", ReAct::builder(model(&plain)).build());
    let mut children: Vec<_> = p.agents.iter().map(Agent::child_spec).collect();
    children.push(judge.child_spec());
    let (root, _escalations) = root(children).await;
    let with_judge = EvaluatorOptimizer::new(p.agents[0].handle(), judge.handle()).deadline(DEADLINE);

    plain.push_all([
        Answer::text("```json\n{\"accepted\": false, \"feedback\": \"more\"}\n```"),
        Answer::text("Looks fine to me!"),
    ]);
    let err = with_judge.run("Describe OTP.").await.unwrap_err();
    assert!(
        matches!(err, EvaluatorError::InvalidEvaluation { round: 2, .. }),
        "{err:?}"
    );

    p.writer.push(Fault::Status(400));
    let err = with_judge.run("Describe OTP.").await.unwrap_err();
    assert!(matches!(
        err,
        EvaluatorError::Generator {
            round: 1,
            error: AgentError::Turn(TurnError::Model(_))
        }
    ));
    root.stop().await;
}
