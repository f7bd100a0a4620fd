//! Token and cost budgets: checked before each call, shared by the models given one, and a
//! budget that runs out mid-run escalates at once with the spend so far.

#[path = "support/agent.rs"]
mod support;

use tokio::sync::mpsc;
use warden_agents::agent::{Agent, AgentError, AgentTrouble, TurnError};
use warden_agents::message::AgentMessage;
use warden_agents::model::{Budget, ChatRequest, Message, ModelError, Price};
use warden_agents::react::ReAct;
use warden_fake_provider::FakeProvider;
use warden_supervisor::{Escalation, Strategy, Supervisor};

use support::{DEADLINE, model, next_escalation};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

#[tokio::test]
async fn a_spent_budget_stops_every_model_that_shares_it() {
    let fake = FakeProvider::start().await;
    let run = Budget::new("run-1").max_cost(0.0001);
    let price = Price::per_million(2.0, 8.0);
    let a = model(&fake).with_budget(run.clone()).with_price(price);
    let b = model(&fake).with_budget(run.clone()).with_price(price);
    let mut answered = 0;
    let error = loop {
        let model = if answered % 2 == 0 { &a } else { &b };
        match model.chat(&hi()).await {
            Ok(_) => answered += 1,
            Err(e) => break e,
        }
        assert!(answered < 1000, "the budget never ran out");
    };
    let ModelError::BudgetExceeded { budget, spent } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(budget, "run-1");
    assert!(spent.cost >= 0.0001 && spent.tokens > 0, "{spent:?}");
    assert_eq!(fake.request_count(), answered, "nothing sent once the budget was spent");
    assert!(!error.is_transient() && !error.warrants_fallback());
    // The other model is stopped as well.
    assert!(matches!(
        if answered % 2 == 0 { &b } else { &a }.chat(&hi()).await,
        Err(ModelError::BudgetExceeded { .. })
    ));
    assert_eq!(fake.request_count(), answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_running_out_mid_run_escalates_at_once_with_the_spend() {
    let fake = FakeProvider::start().await;
    let run = Budget::new("run-2").max_tokens(1);
    let agent = Agent::new("writer", ReAct::builder(model(&fake).with_budget(run.clone())).build());
    let writer = agent.handle();
    let (tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .escalation_handler(tx)
        .child(agent.child_spec())
        .spawn()
        .await
        .unwrap();
    // The first task spends the budget; the second finds it spent.
    writer.ask(AgentMessage::user("draft"), DEADLINE).await.unwrap();
    let e = writer.ask(AgentMessage::user("revise"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(&e, AgentError::Turn(TurnError::Model(m)) if matches!(**m, ModelError::BudgetExceeded { .. })),
        "{e:?}"
    );
    let escalation = next_escalation(&mut escalations).await;
    let trouble = escalation.concern::<AgentTrouble>().unwrap();
    assert_eq!(
        trouble.consecutive_failures, 1,
        "at once, not after escalate_after failures"
    );
    assert_eq!(trouble.task.text(), "revise");
    let TurnError::Model(error) = &trouble.error else {
        panic!("{:?}", trouble.error)
    };
    let ModelError::BudgetExceeded { spent, .. } = &**error else {
        panic!("{error:?}")
    };
    assert_eq!(spent.tokens, run.spent().tokens);
    assert!(spent.tokens >= 1);
    assert_eq!(fake.request_count(), 1);
    root.stop().await;
}
