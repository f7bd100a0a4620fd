//! A secret in a tool's arguments (an `Authorization` header, a key in a URL)
//! reaches neither `Debug` output nor the logs: approval requests and their
//! escalations, calls, errors, audit and retry events.

#[path = "support/server.rs"]
mod server;

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use server::{Mode, TestServer};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use warden_supervisor::{Escalation, Strategy, Supervisor};
use warden_tools::{
    ApprovalPolicy, ApprovalRequest, Caller, HttpRequestArgs, HttpRequestTool, RetryPolicy, ToolCall, ToolError,
    ToolExecutor, ToolStack, Toolkit, tool_fn, validate,
};

const SECRET: &str = "sk-PLANTED-7f3a9c";
const DEADLINE: Duration = Duration::from_secs(10);

/// Every event and span field, at every level and target, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Visitor<'a>(&'a mut String);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = writeln!(self.0, "{} = {value:?}", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        span.record(&mut Visitor(&mut self.0.lock().unwrap()));
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Visitor(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut log = self.0.lock().unwrap();
        let _ = writeln!(log, "[{} {}]", event.metadata().level(), event.metadata().target());
        event.record(&mut Visitor(&mut log));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "the secret reached {what}:\n{text}");
}

#[derive(Debug, Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Deploy {
    token: String,
    replicas: u32,
}

fn deploy() -> impl warden_tools::Tool {
    tool_fn("deploy", "Deploys.", |_: Deploy| async {
        Ok::<_, ToolError>("deployed")
    })
    .approval(ApprovalPolicy::required(Duration::from_secs(5)))
    .permission("ops")
}

// One thread: every task (executor, supervisor, calls) logs to this thread's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_planted_secret_reaches_neither_debug_output_nor_logs() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let server = TestServer::start().await;
    server.set(Mode::Status(503));
    let bearer = format!("Bearer {SECRET}");

    // Debug of the values that carry arguments.
    let call = ToolCall::new("deploy", json!({ "token": SECRET, "replicas": 1 }));
    assert_clean("ToolCall's Debug", &format!("{call:?}"));
    let args: HttpRequestArgs = validate(&json!({
        "url": format!("https://user:{SECRET}@api.example.com/v1?key={SECRET}"),
        "headers": { "Authorization": bearer },
        "body": SECRET,
    }))
    .unwrap();
    assert_clean("HttpRequestArgs' Debug", &format!("{args:?}"));
    // A model's value of the wrong type is not quoted back in the error.
    let err = validate::<Deploy>(&json!({ "token": "t", "replicas": SECRET })).unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { ref path, .. } if path == "/replicas"));
    assert_clean("InvalidArguments", &format!("{err:?} {err} {}", err.to_model_content()));

    // An approval request, raised to a root without a handler: the root logs it.
    let http = server
        .allowing(HttpRequestTool::builder())
        .idempotent_method(warden_tools::HttpMethod::Post);
    let toolkit = Toolkit::new().tool(deploy()).tool(http.build().unwrap());
    let stack = ToolStack::builder()
        .permission()
        .approval()
        .retry(RetryPolicy::new(2).backoff(Duration::from_millis(1), Duration::from_millis(1)))
        .build();
    let executor = ToolExecutor::new(toolkit, stack);
    let client = executor.client();
    let unhandled = Supervisor::builder("unhandled")
        .strategy(Strategy::OneForOne)
        .child(executor.child_spec("tools"))
        .spawn()
        .await
        .unwrap();
    let ops = Caller::new("agents/ops").with("ops").with("net:http");
    let call = ToolCall::new("deploy", json!({ "token": SECRET, "replicas": 1 })).caller(ops.clone());
    let err = client.call(call, DEADLINE).await.unwrap_err();
    assert!(matches!(err, ToolError::ApprovalUnavailable(_)), "{err:?}");
    // Denied: the audit event.
    let call = ToolCall::new("deploy", json!({ "token": SECRET, "replicas": 1 })).caller(Caller::new("intruder"));
    assert!(matches!(
        client.call(call, DEADLINE).await,
        Err(ToolError::PermissionDenied { .. })
    ));
    // A failing request with the secret in its URL and headers, retried: the retry event.
    let args = json!({
        "method": "POST",
        "url": server.url(&format!("/flaky?key={SECRET}")),
        "headers": { "Authorization": format!("Bearer {SECRET}") },
        "body": SECRET,
    });
    let err = client
        .call(ToolCall::new("http_request", args).caller(ops.clone()), DEADLINE)
        .await
        .unwrap_err();
    assert_clean("an HTTP failure", &format!("{err:?} {err} {}", err.to_model_content()));
    assert_eq!(server.hits(), 2);
    unhandled.stop().await;

    // The approver's side: the request and its escalation, as a handler would log them.
    let (escalation_tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .escalation_handler(escalation_tx)
        .child(executor.child_spec("tools"))
        .spawn()
        .await
        .unwrap();
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            let call = ToolCall::new("deploy", json!({ "token": SECRET, "replicas": 1 })).caller(ops);
            client.call(call, DEADLINE).await
        }
    });
    let mut escalation = escalations.recv().await.unwrap();
    let request = escalation.concern::<ApprovalRequest>().unwrap().clone();
    // The approver still sees the arguments.
    assert_eq!(request.args["token"], SECRET);
    assert_clean("ApprovalRequest's Debug", &format!("{request:?}"));
    assert_clean(
        "the escalation's Debug and Display",
        &format!("{escalation:?} {escalation}"),
    );
    escalation.answer(warden_tools::ApprovalDecision::Deny).unwrap();
    assert!(matches!(pending.await.unwrap(), Err(ToolError::ApprovalDenied)));
    root.stop().await;

    let log = capture.0.lock().unwrap().clone();
    assert!(log.contains("unhandled escalation"), "{log}");
    assert!(log.contains("retrying"), "{log}");
    assert!(log.contains("warden::audit"), "{log}");
    assert_clean("the logs", &log);
}
