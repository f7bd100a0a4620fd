//! The router: a decider agent on the fake provider picks the route, by structured output
//! or by tool call, and the request goes to that route's agent under a real supervisor.

#[path = "support/pattern.rs"]
mod pattern_support;
#[path = "support/agent.rs"]
mod support;

use serde_json::json;
use warden_agents::agent::{Agent, AgentError, TurnError};
use warden_agents::message::AgentMessage;
use warden_agents::pattern::{RouteBy, RouteChoice, Router, RouterBuilder, RouterError};
use warden_agents::react::ReAct;
use warden_fake_provider::{Answer, FakeProvider, Fault};

use pattern_support::task_text;
use support::{DEADLINE, model, react_agents, root};

/// Billing and support agents, each on its own fake, and the routes to them.
struct Desk {
    billing_llm: FakeProvider,
    support_llm: FakeProvider,
    handlers: Vec<Agent>,
}

impl Desk {
    async fn new() -> Self {
        let (billing_llm, support_llm) = (FakeProvider::start().await, FakeProvider::start().await);
        let mut handlers = react_agents(&billing_llm, &["billing"]);
        handlers.extend(react_agents(&support_llm, &["support"]));
        billing_llm.set_default_reply(Answer::text("billing here"));
        support_llm.set_default_reply(Answer::text("support here"));
        Self {
            billing_llm,
            support_llm,
            handlers,
        }
    }

    fn routes(&self) -> RouterBuilder {
        Router::builder()
            .route("billing", "Invoices, payments, refunds.", self.handlers[0].handle())
            .route("support", "Anything else.", self.handlers[1].handle())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_structured_output() {
    let desk = Desk::new().await;
    let llm = FakeProvider::start().await;
    let routes = desk.routes();
    let decider = routes.decider("router", model(&llm)).unwrap();
    let router = routes.build(decider.handle()).unwrap();
    let mut children: Vec<_> = desk.handlers.iter().map(Agent::child_spec).collect();
    children.push(decider.child_spec());
    let (root, _escalations) = root(children).await;

    llm.push(Answer::json(json!({"route": "billing", "reason": "an invoice"})));
    let routed = router
        .ask(AgentMessage::user("Where is my invoice?"), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        (&*routed.route, routed.reason.as_deref()),
        ("billing", Some("an invoice"))
    );
    assert!(!routed.fell_back);
    assert_eq!(routed.reply.text(), "billing here");
    assert_eq!(task_text(&desk.billing_llm.requests()[0]), "Where is my invoice?");
    assert_eq!(desk.support_llm.request_count(), 0);

    // The model was asked for JSON whose route is one of the route names.
    let request = &llm.requests()[0];
    let format = &request.body["response_format"]["json_schema"]["schema"];
    assert_eq!(format["properties"]["route"]["enum"], json!(["billing", "support"]));
    assert!(request.body.get("tools").is_none());
    assert!(
        request.messages()[0]["content"]
            .as_str()
            .unwrap()
            .contains("- support: Anything else.")
    );

    // A route that does not exist gets one repair round.
    llm.push_all([
        Answer::json(json!({"route": "sales", "reason": "?"})),
        Answer::json(json!({"route": "support", "reason": "a question"})),
    ]);
    let routed = router.ask(AgentMessage::user("Hello?"), DEADLINE).await.unwrap();
    assert_eq!(
        (&*routed.route, routed.reply.text().as_str()),
        ("support", "support here")
    );
    assert!(task_text(&llm.requests()[2]).contains("\"sales\" is not one of the routes"));

    // Wrong twice: no decision; a router with a fallback takes it instead.
    let nonsense = || Answer::text("I am not sure.");
    llm.push_all([nonsense(), nonsense()]);
    let err = router.ask(AgentMessage::user("Hm?"), DEADLINE).await.unwrap_err();
    assert!(matches!(err, RouterError::NoDecision(_)), "{err:?}");
    let with_fallback = desk.routes().fallback("support").build(decider.handle()).unwrap();
    llm.push_all([nonsense(), nonsense()]);
    let routed = with_fallback.ask(AgentMessage::user("Hm?"), DEADLINE).await.unwrap();
    assert!(routed.fell_back);
    assert_eq!(&*routed.route, "support");
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_tool_call() {
    let desk = Desk::new().await;
    let llm = FakeProvider::start().await;
    let routes = desk.routes().by(RouteBy::ToolCall);
    let decider = routes.decider("router", model(&llm)).unwrap();
    let router = routes.build(decider.handle()).unwrap();
    let mut children: Vec<_> = desk.handlers.iter().map(Agent::child_spec).collect();
    children.push(decider.child_spec());
    let (root, _escalations) = root(children).await;

    llm.push(Answer::tool_call(
        "route_to_support",
        json!({"reason": "a login problem"}),
    ));
    let routed = router
        .ask(AgentMessage::user("I cannot log in."), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        (&*routed.route, routed.reason.as_deref()),
        ("support", Some("a login problem"))
    );
    assert_eq!(routed.reply.text(), "support here");
    assert_eq!(desk.billing_llm.request_count(), 0);

    // One tool per route, and a call is required.
    let request = &llm.requests()[0];
    let tools: Vec<&str> = request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["route_to_billing", "route_to_support"]);
    assert_eq!(request.body["tool_choice"], "required");

    // A text answer instead of a call: one repair, then the decision.
    llm.push_all([
        Answer::text("Billing, I think."),
        Answer::tool_call("route_to_billing", json!({})),
    ]);
    let routed = router.ask(AgentMessage::user("Refund?"), DEADLINE).await.unwrap();
    assert_eq!((&*routed.route, routed.reason.as_deref()), ("billing", None));
    root.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_decisions_fall_back_or_are_typed_errors() {
    let desk = Desk::new().await;
    let llm = FakeProvider::start().await;
    // Any agent may decide: here a ReAct agent with RouteChoice as structured output, and a
    // plain one answering text.
    let structured = Agent::new(
        "structured",
        ReAct::builder(model(&llm)).structured_output::<RouteChoice>().build(),
    );
    let plain_llm = FakeProvider::start().await;
    let plain = Agent::new("plain", ReAct::builder(model(&plain_llm)).build());
    let mut children: Vec<_> = desk.handlers.iter().map(Agent::child_spec).collect();
    children.extend([structured.child_spec(), plain.child_spec()]);
    let (root, _escalations) = root(children).await;

    let with_fallback = desk.routes().fallback("support").build(structured.handle()).unwrap();
    llm.push(Answer::json(json!({"route": "sales", "reason": "selling"})));
    let routed = with_fallback.ask(AgentMessage::user("Buy?"), DEADLINE).await.unwrap();
    assert!(routed.fell_back);
    assert_eq!((&*routed.route, routed.reason.as_deref()), ("support", Some("selling")));

    let strict = desk.routes().build(plain.handle()).unwrap();
    plain_llm.push(Answer::text("```json\n{\"route\": \"sales\"}\n```"));
    let err = strict.ask(AgentMessage::user("Buy?"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(&err, RouterError::UnknownRoute { route } if route == "sales"),
        "{err:?}"
    );
    plain_llm.push(Answer::text("Support, surely."));
    let err = strict.ask(AgentMessage::user("Help?"), DEADLINE).await.unwrap_err();
    assert!(matches!(err, RouterError::NoDecision(_)), "{err:?}");
    plain_llm.push(Fault::Status(400));
    let err = strict.ask(AgentMessage::user("Help?"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, RouterError::Decider(AgentError::Turn(TurnError::Model(_)))),
        "{err:?}"
    );

    // The chosen route's failure names the route.
    desk.billing_llm.set_default_reply(Fault::Status(400));
    plain_llm.push(Answer::text("{\"route\": \"billing\"}"));
    let err = strict.ask(AgentMessage::user("Invoice?"), DEADLINE).await.unwrap_err();
    assert!(
        matches!(&err, RouterError::Handler { route, .. } if &**route == "billing"),
        "{err:?}"
    );

    // Routes are checked when built.
    let target = desk.handlers[0].handle();
    assert!(matches!(
        Router::builder().build(target.clone()),
        Err(RouterError::NoRoutes)
    ));
    let bad = Router::builder()
        .route("has space", "", target.clone())
        .build(target.clone());
    assert!(matches!(bad, Err(RouterError::InvalidRouteName(_))));
    let twice = Router::builder()
        .route("a", "", target.clone())
        .route("a", "", target.clone());
    assert!(matches!(
        twice.build(target.clone()),
        Err(RouterError::DuplicateRoute(_))
    ));
    let fallback = Router::builder().route("a", "", target.clone()).fallback("b");
    assert!(matches!(
        fallback.decider("d", model(&llm)),
        Err(RouterError::UnknownFallback(_))
    ));
    root.stop().await;
}
