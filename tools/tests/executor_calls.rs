//! Executors under a supervisor with tools of our own: overload, permissions,
//! approval, panics, a killed executor, unknown tools. (Fault injection is
//! warden-chaos's, tested there.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use warden_supervisor::{Escalation, Strategy, Supervisor, SupervisorEvent};
use warden_tools::{
    ApprovalDecision, ApprovalPolicy, ApprovalRequest, Caller, PermissionSet, ToolCall, ToolClient, ToolError,
    ToolExecutor, ToolStack, Toolkit, tool_fn,
};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Deserialize, JsonSchema)]
struct Empty {}

/// A tool that counts its calls and waits for a permit from `gate`.
fn gated(name: &'static str, count: Arc<AtomicUsize>, gate: Arc<Semaphore>) -> impl warden_tools::Tool {
    tool_fn(name, "Waits at the gate.", move |_: Empty| {
        let count = count.clone();
        let gate = gate.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            let _permit = gate.acquire().await.map_err(ToolError::permanent)?;
            Ok::<_, ToolError>("done")
        }
    })
}

fn counted(name: &'static str, count: Arc<AtomicUsize>) -> impl warden_tools::Tool {
    gated(name, count, Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)))
}

async fn supervised(
    toolkit: Toolkit,
    stack: ToolStack,
) -> (
    ToolClient,
    Supervisor,
    mpsc::UnboundedReceiver<Escalation>,
    mpsc::UnboundedReceiver<SupervisorEvent>,
) {
    let executor = ToolExecutor::new(toolkit, stack);
    let (escalation_tx, escalations) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::unbounded_channel();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(5))
        .escalation_handler(escalation_tx)
        .observer(move |e| {
            let _ = event_tx.send(e.clone());
        })
        .child(executor.child_spec("tools"))
        .spawn()
        .await
        .unwrap();
    (executor.client(), root, escalations, events)
}

fn call(tool: &str) -> ToolCall {
    ToolCall::new(tool, json!({}))
}

#[tokio::test]
async fn past_the_queue_calls_are_refused_at_once() {
    let count = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let stack = ToolStack::builder().concurrency_limit(1, 0).build();
    let (client, root, ..) = supervised(Toolkit::new().tool(gated("slow", count.clone(), gate.clone())), stack).await;

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call(call("slow"), DEADLINE).await }
    });
    while count.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // One call runs, the queue holds none: refused at once, the tool not called.
    assert!(matches!(
        client.call(call("slow"), DEADLINE).await,
        Err(ToolError::Overloaded)
    ));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap(), "done");
    root.stop().await;
}

#[tokio::test]
async fn denied_calls_never_reach_the_tool() {
    let count = Arc::new(AtomicUsize::new(0));
    let tool = tool_fn("secret", "Reads a secret.", {
        let count = count.clone();
        move |_: Empty| {
            count.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, ToolError>("s3cret") }
        }
    })
    .permission("secrets:read")
    .permission("audit:write");
    let (client, root, ..) = supervised(Toolkit::new().tool(tool), ToolStack::recommended().build()).await;

    let caller = Caller::new("agent").with("secrets:read");
    let err = client.call(call("secret").caller(caller), DEADLINE).await.unwrap_err();
    let ToolError::PermissionDenied { missing } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(missing, &PermissionSet::from_iter(["audit:write"]));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert!(err.to_model_content().contains("missing audit:write"));

    let caller = Caller::new("agent").with("secrets:read").with("audit:write");
    assert_eq!(
        client.call(call("secret").caller(caller), DEADLINE).await.unwrap(),
        "s3cret"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    root.stop().await;
}

#[tokio::test]
async fn approval_allowed_denied_and_timed_out() {
    let count = Arc::new(AtomicUsize::new(0));
    let tool = tool_fn("deploy", "Deploys.", {
        let count = count.clone();
        move |_: Empty| {
            count.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, ToolError>("deployed") }
        }
    })
    .approval(ApprovalPolicy::required(Duration::from_millis(300)));
    let other = counted("other", Arc::new(AtomicUsize::new(0)));
    let (client, root, mut escalations, _) =
        supervised(Toolkit::new().tool(tool).tool(other), ToolStack::recommended().build()).await;

    // Allowed.
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call(call("deploy").caller(Caller::new("ops")), DEADLINE).await }
    });
    let mut escalation = escalations.recv().await.unwrap();
    let request = escalation.concern::<ApprovalRequest>().unwrap().clone();
    assert_eq!((&*request.tool, &*request.caller.name), ("deploy", "ops"));
    // While it waits, the executor serves other calls.
    assert_eq!(client.call(call("other"), DEADLINE).await.unwrap(), "done");
    assert_eq!(count.load(Ordering::SeqCst), 0);
    escalation.answer(ApprovalDecision::Allow).unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), "deployed");
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Denied.
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call(call("deploy"), DEADLINE).await }
    });
    escalations
        .recv()
        .await
        .unwrap()
        .answer(ApprovalDecision::Deny)
        .unwrap();
    assert!(matches!(pending.await.unwrap(), Err(ToolError::ApprovalDenied)));

    // Nobody answers in time.
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call(call("deploy"), DEADLINE).await }
    });
    let unanswered = escalations.recv().await.unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert!(matches!(err, ToolError::ApprovalTimeout { after } if after == Duration::from_millis(300)));
    drop(unanswered);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    root.stop().await;
}

#[tokio::test]
async fn a_panicking_tool_is_a_failed_call_and_the_executor_survives() {
    let tool = tool_fn("buggy", "Panics.", |_: Empty| async {
        if true {
            panic!("index out of bounds");
        }
        Ok::<_, ToolError>(())
    });
    let (client, root, ..) = supervised(Toolkit::new().tool(tool), ToolStack::recommended().build()).await;
    let actor = client.actor().unwrap().get_id();
    for _ in 0..3 {
        let err = client.call(call("buggy"), DEADLINE).await.unwrap_err();
        assert!(matches!(err, ToolError::Panicked { ref message } if &**message == "index out of bounds"));
    }
    assert_eq!(client.actor().unwrap().get_id(), actor);
    let breakers = client.breakers().await.unwrap();
    assert_eq!(breakers["buggy"].metrics().failed_calls, 3);
    root.stop().await;
}

#[tokio::test]
async fn a_killed_executor_fails_calls_in_flight_and_is_restarted() {
    let count = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let (client, root, _, mut events) = supervised(
        Toolkit::new().tool(gated("slow", count.clone(), gate.clone())),
        ToolStack::default(),
    )
    .await;
    let first = client.actor().unwrap();

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.call(call("slow"), DEADLINE).await }
    });
    while count.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    first.kill();
    assert!(matches!(in_flight.await.unwrap(), Err(ToolError::ExecutorDown)));

    // The supervisor restarts it; the client follows.
    loop {
        if let SupervisorEvent::ChildStarted { actor, .. } = events.recv().await.unwrap() {
            if actor != first.get_id() {
                break;
            }
        }
    }
    gate.add_permits(1);
    assert_eq!(client.call(call("slow"), DEADLINE).await.unwrap(), "done");
    assert_ne!(client.actor().unwrap().get_id(), first.get_id());
    root.stop().await;
}

#[tokio::test]
async fn unknown_disabled_and_invalid_calls_are_typed_errors() {
    let toolkit = Toolkit::new().group("web", |g| g.tool(counted("fetch", Arc::new(AtomicUsize::new(0)))));
    let (client, root, ..) = supervised(toolkit.clone(), ToolStack::recommended().build()).await;
    assert!(matches!(
        client.call(call("nope"), DEADLINE).await,
        Err(ToolError::NotFound { .. })
    ));
    assert!(matches!(
        client.call(ToolCall::new("fetch", json!([1])), DEADLINE).await,
        Err(ToolError::InvalidArguments { .. })
    ));
    toolkit.disable_group("web");
    assert!(matches!(
        client.call(call("fetch"), DEADLINE).await,
        Err(ToolError::NotFound { .. })
    ));
    toolkit.enable_group("web");
    assert_eq!(client.call(call("fetch"), DEADLINE).await.unwrap(), "done");
    root.stop().await;
}
