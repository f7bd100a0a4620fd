//! The broadcast hub: members under a real supervisor, thinking on the fake provider, hear
//! each other's replies, and join and leave while the conversation runs.

#[path = "support/pattern.rs"]
mod pattern_support;
#[path = "support/agent.rs"]
mod support;

use warden_agents::agent::{Agent, AgentError, TurnError};
use warden_agents::message::Address;
use warden_agents::pattern::{Hub, HubError, Turns};
use warden_fake_provider::{Answer, FakeProvider, Fault};

use pattern_support::task_text;
use support::{DEADLINE, react_agents, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_hear_each_others_replies_in_turn() {
    let fake = FakeProvider::start().await;
    fake.push_all([
        Answer::text("A tram."),
        Answer::text("Buses, cheaper."),
        Answer::text("Fine, buses."),
        Answer::text("Agreed."),
    ]);
    let agents = react_agents(&fake, &["ana", "ben"]);
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;
    let hub = Hub::new("council").turn_deadline(DEADLINE);
    for agent in &agents {
        hub.join(agent.handle()).unwrap();
    }
    let mut watcher = hub.subscribe();

    hub.post(Address::external("mayor"), "How do we link the districts?");
    let first = hub.round("Your view, briefly.").await.unwrap();
    assert_eq!(first.spoken(), 2);
    let requests = fake.requests();
    assert_eq!(
        task_text(&requests[0]),
        "mayor: How do we link the districts?\n\nYour view, briefly."
    );
    assert_eq!(
        task_text(&requests[1]),
        "mayor: How do we link the districts?\n\nana: A tram.\n\nYour view, briefly."
    );

    let second = hub.round("Conclude.").await.unwrap();
    assert_eq!(second.spoken(), 2);
    let requests = fake.requests();
    // Ana hears only what Ben said since her turn; Ben only what Ana said since his.
    assert_eq!(task_text(&requests[2]), "ben: Buses, cheaper.\n\nConclude.");
    assert_eq!(task_text(&requests[3]), "ana: Fine, buses.\n\nConclude.");

    let said: Vec<String> = hub.transcript().iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        [
            "mayor: How do we link the districts?",
            "ana: A tram.",
            "ben: Buses, cheaper.",
            "ana: Fine, buses.",
            "ben: Agreed.",
        ]
    );
    for expected in &said {
        assert_eq!(&watcher.recv().await.unwrap().to_string(), expected);
    }
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_at_run_time() {
    let fake = FakeProvider::start().await;
    let agents = react_agents(&fake, &["ana", "ben", "cy", "dee"]);
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;
    let hub = Hub::new("room").turn_deadline(DEADLINE);
    hub.join(agents[0].handle()).unwrap();
    hub.join(agents[1].handle()).unwrap();
    assert_eq!(hub.join(agents[1].handle()), Err(HubError::AlreadyMember("ben".into())));

    fake.push_all([Answer::text("one"), Answer::text("two")]);
    hub.round("Speak.").await.unwrap();

    // Cy joins and first hears the whole conversation; Ana leaves and is asked nothing more.
    hub.join(agents[2].handle()).unwrap();
    assert_eq!(hub.leave("ana").unwrap().name(), "ana");
    assert_eq!(hub.leave("ana").unwrap_err(), HubError::NotMember("ana".into()));
    fake.clear_requests();
    fake.push_all([Answer::text("three"), Answer::text("four")]);
    let round = hub.round("Speak.").await.unwrap();
    let speakers: Vec<&str> = round.turns.iter().map(|t| t.member.name()).collect();
    assert_eq!(speakers, ["ben", "cy"]);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    // Ben heard Ana in the first round: nothing new for him.
    assert_eq!(task_text(&requests[0]), "Speak.");
    assert_eq!(task_text(&requests[1]), "ana: one\n\nben: two\n\nben: three\n\nSpeak.");

    // Dee joins a hub whose newcomers hear only what is said after they join.
    let hub = hub.newcomers_see_history(false);
    hub.join(agents[3].handle()).unwrap();
    hub.post(Address::external("host"), "Last words?");
    fake.clear_requests();
    fake.push_all([Answer::text("five"), Answer::text("six"), Answer::text("seven")]);
    hub.round("Speak.").await.unwrap();
    let requests = fake.requests();
    assert_eq!(
        task_text(&requests[2]),
        "host: Last words?\n\nben: five\n\ncy: six\n\nSpeak."
    );

    for name in ["ben", "cy", "dee"] {
        hub.leave(name).unwrap();
    }
    assert!(matches!(hub.round("Anyone?").await, Err(HubError::NoMembers(_))));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_members_hear_the_others_next_round_and_a_failure_is_heard_again() {
    let fakes = [
        FakeProvider::start().await,
        FakeProvider::start().await,
        FakeProvider::start().await,
    ];
    let mut agents = Vec::new();
    for (fake, name) in fakes.iter().zip(["ana", "ben", "cy"]) {
        agents.extend(react_agents(fake, &[name]));
    }
    let (root, _escalations) = root(agents.iter().map(Agent::child_spec).collect()).await;
    let hub = Hub::new("panel").turns(Turns::Concurrent).turn_deadline(DEADLINE);
    for agent in &agents {
        hub.join(agent.handle()).unwrap();
    }
    fakes[0].push(Answer::text("A1"));
    fakes[1].push(Answer::text("B1"));
    fakes[2].push(Fault::Status(400));

    let first = hub.round("Open.").await.unwrap();
    assert_eq!(first.spoken(), 2);
    let failures: Vec<(&str, &AgentError)> = first.failures().map(|(m, e)| (m.name(), e)).collect();
    assert!(matches!(
        failures.as_slice(),
        [("cy", AgentError::Turn(TurnError::Model(_)))]
    ));
    for fake in &fakes {
        assert_eq!(task_text(&fake.requests()[0]), "Open.");
    }

    fakes[0].push(Answer::text("A2"));
    fakes[1].push(Answer::text("B2"));
    fakes[2].push(Answer::text("C2"));
    let second = hub.round("Rebut.").await.unwrap();
    assert_eq!(second.spoken(), 3);
    assert_eq!(task_text(&fakes[0].requests()[1]), "ben: B1\n\nRebut.");
    assert_eq!(task_text(&fakes[1].requests()[1]), "ana: A1\n\nRebut.");
    // Cy's first turn failed: it hears the first round now.
    assert_eq!(task_text(&fakes[2].requests()[1]), "ana: A1\n\nben: B1\n\nRebut.");
    assert_eq!(hub.transcript().len(), 5);
    root.stop().await;
}
