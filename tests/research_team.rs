//! The research-team demo, run on the scripted fake provider: the team answers, and the
//! chaos monkey's kill and the breaker's escalation both reach the orchestrator, which
//! re-plans around them.

#[allow(dead_code)]
#[path = "../examples/research_team.rs"]
mod research_team;

use warden::chaos::ChaosAction;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_answers_through_a_kill_and_an_open_breaker() {
    let demo = research_team::run(research_team::Llm::Fake).await.unwrap();
    assert!(demo.run.answer.text().contains("Ericsson"));

    // The monkey killed the first worker's agent mid-task; the orchestrator saw it go down.
    assert_eq!(demo.victim, "0");
    assert!(
        demo.tree_mid_run.contains("0 (supervisor, running)"),
        "{}",
        demo.tree_mid_run
    );
    assert_eq!(demo.chaos.as_ref().unwrap().count(ChaosAction::Kill), 1);
    assert!(demo.kill_seen(), "{:?}", demo.run.failures);

    // The second worker's breaker opened, and its escalation reached the orchestrator.
    assert_eq!(demo.breakers_opened(), ["paper_search"]);
    assert_eq!(demo.run.escalations[0].origin.as_str(), "root/workers/1/tools");

    // Both were re-planned around, and every subtask has a finding.
    assert_eq!(demo.run.replans, 2);
    assert_eq!(demo.run.workers_started, 5);
    let mut done: Vec<&str> = demo.run.results.iter().map(|r| r.subtask.id.as_str()).collect();
    done.sort();
    assert_eq!(done, ["agents", "mechanisms-from-memory", "origins-retry"]);
}
