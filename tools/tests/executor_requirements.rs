//! What a tool declares it needs (permissions, approval) is enforced whatever
//! the stack, the default (empty) one included.

#[path = "support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use server::TestServer;
use tokio::sync::mpsc;
use warden_supervisor::{Escalation, Strategy, Supervisor};
use warden_tools::{
    ApprovalDecision, ApprovalPolicy, ApprovalRequest, Caller, HttpRequestTool, LayerKind, ToolCall, ToolError,
    ToolExecutor, ToolStack, tool_fn,
};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Deserialize, JsonSchema)]
struct Empty {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tool_refuses_a_caller_without_net_http_under_the_default_stack() {
    let server = TestServer::start().await;
    let http = server.allowing(HttpRequestTool::builder()).build().unwrap();
    let (client, _handle) = ToolExecutor::new(http, ToolStack::default()).spawn().await.unwrap();
    let call = ToolCall::new("http_request", json!({ "url": server.url("/flaky") })).caller(Caller::new("nobody"));
    let err = client.call(call, DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, ToolError::PermissionDenied { ref missing } if missing.to_string() == "net:http"),
        "{err:?}"
    );
    assert_eq!(server.hits(), 0);

    let call = ToolCall::new("http_request", json!({ "url": server.url("/flaky") }))
        .caller(Caller::new("fetcher").with("net:http"));
    assert_eq!(client.call(call, DEADLINE).await.unwrap()["body"], "ok");
    assert_eq!(server.hits(), 1);
}

fn deploy(count: Arc<AtomicUsize>) -> impl warden_tools::Tool {
    tool_fn("deploy", "Deploys.", move |_: Empty| {
        count.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, ToolError>("deployed") }
    })
    .approval(ApprovalPolicy::required(Duration::from_secs(5)))
}

#[tokio::test]
async fn a_tool_requiring_approval_never_runs_unapproved_under_a_stack_without_the_layer() {
    // Stacks that name neither layer: the empty default, and one with others.
    for stack in [
        ToolStack::default(),
        ToolStack::builder().timeout(Duration::from_secs(5)).build(),
    ] {
        assert!(!stack.layers().contains(&LayerKind::Approval));
        let count = Arc::new(AtomicUsize::new(0));

        // Without a supervisor nobody can approve: refused.
        let (client, _handle) = ToolExecutor::new(deploy(count.clone()), stack.clone())
            .spawn()
            .await
            .unwrap();
        let err = client
            .call(ToolCall::new("deploy", json!({})), DEADLINE)
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::ApprovalUnavailable(_)), "{err:?}");
        assert_eq!(count.load(Ordering::SeqCst), 0);

        // Under a supervisor: it waits for the decision, and runs only when allowed.
        let executor = ToolExecutor::new(deploy(count.clone()), stack);
        let (escalation_tx, mut escalations) = mpsc::unbounded_channel::<Escalation>();
        let root = Supervisor::builder("root")
            .strategy(Strategy::OneForOne)
            .escalation_handler(escalation_tx)
            .child(executor.child_spec("tools"))
            .spawn()
            .await
            .unwrap();
        let client = executor.client();
        let pending = tokio::spawn({
            let client = client.clone();
            async move { client.call(ToolCall::new("deploy", json!({})), DEADLINE).await }
        });
        let mut escalation = escalations.recv().await.unwrap();
        assert!(escalation.concern::<ApprovalRequest>().is_some());
        escalation.answer(ApprovalDecision::Deny).unwrap();
        assert!(matches!(pending.await.unwrap(), Err(ToolError::ApprovalDenied)));
        assert_eq!(count.load(Ordering::SeqCst), 0);

        let pending = tokio::spawn({
            let client = client.clone();
            async move { client.call(ToolCall::new("deploy", json!({})), DEADLINE).await }
        });
        escalations
            .recv()
            .await
            .unwrap()
            .answer(ApprovalDecision::Allow)
            .unwrap();
        assert_eq!(pending.await.unwrap().unwrap(), "deployed");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        root.stop().await;
    }
}

#[tokio::test]
async fn declared_permissions_are_checked_before_approval_is_asked() {
    // A tool needing both, under the empty stack: a caller without the
    // permission is denied without bothering the approver.
    let count = Arc::new(AtomicUsize::new(0));
    let tool = tool_fn("wipe", "Wipes.", {
        let count = count.clone();
        move |_: Empty| {
            count.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, ToolError>("wiped") }
        }
    })
    .permission("fs:write")
    .approval(ApprovalPolicy::required(Duration::from_secs(5)));
    let (client, _handle) = ToolExecutor::new(tool, ToolStack::default()).spawn().await.unwrap();
    let err = client
        .call(ToolCall::new("wipe", json!({})), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::PermissionDenied { .. }), "{err:?}");
    let caller = Caller::new("ops").with("fs:write");
    let err = client
        .call(ToolCall::new("wipe", json!({})).caller(caller), DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::ApprovalUnavailable(_)), "{err:?}");
    assert_eq!(count.load(Ordering::SeqCst), 0);
}
