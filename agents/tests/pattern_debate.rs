//! The debate: debaters under a real supervisor, each on its own fake provider, argue over
//! rounds hearing each other, and the moderator agent concludes from the transcript.

#[path = "support/pattern.rs"]
mod pattern_support;
#[path = "support/agent.rs"]
mod support;

use warden_agents::agent::{Agent, AgentError, TurnError};
use warden_agents::pattern::{Debate, DebateError};
use warden_fake_provider::{Answer, FakeProvider, Fault};

use pattern_support::task_text;
use support::{DEADLINE, react_agents, root};

/// Three debaters and a moderator, each on its own fake.
struct Panel {
    llms: Vec<FakeProvider>,
    agents: Vec<Agent>,
}

async fn panel() -> Panel {
    let mut llms = Vec::new();
    let mut agents = Vec::new();
    for name in ["ana", "ben", "cy", "moderator"] {
        let fake = FakeProvider::start().await;
        agents.extend(react_agents(&fake, &[name]));
        llms.push(fake);
    }
    Panel { llms, agents }
}

impl Panel {
    fn debate(&self) -> Debate {
        Debate::new(self.agents[..3].iter().map(Agent::handle), self.agents[3].handle()).deadline(DEADLINE)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debate_runs_its_rounds_and_the_moderator_concludes() {
    let p = panel().await;
    let (root, _escalations) = root(p.agents.iter().map(Agent::child_spec).collect()).await;
    for (i, llm) in p.llms[..3].iter().enumerate() {
        llm.push_all((1..=3).map(|round| Answer::text(format!("argument {i}.{round}"))));
    }
    p.llms[3].push(Answer::text("Ben wins."));

    let run = p.debate().rounds(3).run("Tabs or spaces?").await.unwrap();
    assert_eq!(run.conclusion.text(), "Ben wins.");
    assert_eq!(run.rounds.len(), 3);
    assert_eq!(run.arguments(), 9);
    assert_eq!(run.transcript.len(), 10);
    for llm in &p.llms[..3] {
        assert_eq!(llm.request_count(), 3);
    }
    // Round 1: the topic; round 2: the others' round-1 arguments, not one's own.
    let ana = p.llms[0].requests();
    assert!(task_text(&ana[0]).starts_with("moderator: The topic: Tabs or spaces?\n\nRound 1 of 3"));
    let second = task_text(&ana[1]);
    assert!(
        second.starts_with("ben: argument 1.1\n\ncy: argument 2.1\n\nRound 2 of 3"),
        "{second}"
    );
    assert!(!second.contains("argument 0.1"));
    assert!(task_text(&ana[2]).starts_with("ben: argument 1.2\n\ncy: argument 2.2\n\nRound 3 of 3"));
    // The moderator read every argument.
    let moderation = task_text(&p.llms[3].requests()[0]);
    for i in 0..3 {
        for round in 1..=3 {
            assert!(moderation.contains(&format!("argument {i}.{round}")), "{moderation}");
        }
    }
    assert!(moderation.contains("The topic: Tabs or spaces?"));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_debater_misses_a_round_and_failures_are_typed() {
    let p = panel().await;
    let (root, _escalations) = root(p.agents.iter().map(Agent::child_spec).collect()).await;
    p.llms[0].push_all([Answer::text("a1"), Answer::text("a2")]);
    p.llms[1].push_all([Answer::Fault(Fault::Status(400)), Answer::text("b2")]);
    p.llms[2].push_all([Answer::text("c1"), Answer::text("c2")]);
    p.llms[3].push(Answer::text("A draw."));

    let run = p.debate().run("Tabs or spaces?").await.unwrap();
    assert_eq!(run.arguments(), 5);
    let missed: Vec<&str> = run.rounds[0].failures().map(|(m, _)| m.name()).collect();
    assert_eq!(missed, ["ben"]);
    // Ben hears round 1 in round 2, his own failure aside.
    assert!(
        task_text(&p.llms[1].requests()[1]).starts_with("moderator: The topic: Tabs or spaces?\n\nana: a1\n\ncy: c1")
    );

    // The moderator failing is the debate's failure.
    for llm in &p.llms[..3] {
        llm.set_default_reply(Answer::text("again"));
    }
    p.llms[3].push(Fault::Status(400));
    let err = p.debate().rounds(1).run("x").await.unwrap_err();
    assert!(
        matches!(err, DebateError::Moderator(AgentError::Turn(TurnError::Model(_)))),
        "{err:?}"
    );

    // Nobody argued: nothing to conclude on.
    for llm in &p.llms[..3] {
        llm.set_default_reply(Fault::Status(400));
    }
    let err = p.debate().rounds(2).run("x").await.unwrap_err();
    assert!(
        matches!(&err, DebateError::NoArguments { rounds } if rounds.len() == 2),
        "{err:?}"
    );

    let none = Debate::new([], p.agents[3].handle()).run("x").await.unwrap_err();
    assert!(matches!(none, DebateError::NoDebaters));
    assert!(matches!(
        p.debate().rounds(0).run("x").await,
        Err(DebateError::NoRounds)
    ));
    let twice = Debate::new([p.agents[0].handle(), p.agents[0].handle()], p.agents[3].handle());
    assert!(matches!(twice.run("x").await, Err(DebateError::DuplicateDebater(_))));
    root.stop().await;
}
