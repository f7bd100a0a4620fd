//! Fault plans reaching tool and model calls from outside: [`FaultLayer`] in a
//! tool stack and [`faulty_model`] around a model, over a supervised executor
//! and real HTTP to the fake provider. The tools and agents crates name
//! nothing of chaos.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use warden_agents::model::{ChatRequest, Message, Model, ModelError, OpenAiChat, RetryPolicy};
use warden_chaos::{FaultAction, FaultLayer, FaultRule, Faults, faulty_model};
use warden_fake_provider::FakeProvider;
use warden_supervisor::Supervisor;
use warden_tools::{ToolCall, ToolClient, ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Deserialize, JsonSchema)]
struct Empty {}

fn counted(name: &'static str, count: Arc<AtomicUsize>) -> impl warden_tools::Tool {
    tool_fn(name, "Counts its calls.", move |_: Empty| {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ToolError>("done")
        }
    })
}

/// An executor of one counted tool under a root supervisor.
async fn supervised(name: &'static str, count: Arc<AtomicUsize>, stack: ToolStack) -> (ToolClient, Supervisor) {
    let executor = ToolExecutor::new(Toolkit::new().tool(counted(name, count)), stack);
    let root = Supervisor::builder("root")
        .child(executor.child_spec("tools"))
        .spawn()
        .await
        .unwrap();
    (executor.client(), root)
}

#[tokio::test]
async fn an_injected_tool_failure_is_retryable_and_counted_by_the_breaker() {
    let faults = Faults::builder(1).build();
    faults.arm("tool/flaky", FaultAction::Fail);
    let count = Arc::new(AtomicUsize::new(0));
    let stack = ToolStack::builder()
        .circuit_breaker(Default::default())
        .layer(FaultLayer::new(faults.clone()))
        .build();
    let (client, root) = supervised("flaky", count.clone(), stack).await;
    let call = || ToolCall::new("flaky", json!({}));

    let err = client.call(call(), DEADLINE).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "the injected call never reached the tool"
    );
    assert_eq!(client.call(call(), DEADLINE).await.unwrap(), "done");
    let metrics = client.breakers().await.unwrap()["flaky"].metrics();
    assert_eq!((metrics.failed_calls, metrics.buffered_calls), (1, 2));
    assert_eq!(faults.log().len(), 1);
    root.stop().await;
}

#[tokio::test]
async fn an_injected_panic_in_a_tool_stack_is_a_typed_error_and_the_executor_lives() {
    let faults = Faults::builder(1).build();
    faults.arm("tool/flaky", FaultAction::Panic);
    let count = Arc::new(AtomicUsize::new(0));
    let stack = ToolStack::builder().layer(FaultLayer::new(faults.clone())).build();
    let (client, root) = supervised("flaky", count.clone(), stack).await;
    let call = || ToolCall::new("flaky", json!({}));

    let err = client.call(call(), DEADLINE).await.unwrap_err();
    assert!(matches!(err, ToolError::Panicked { .. }), "{err:?}");
    assert_eq!(client.call(call(), DEADLINE).await.unwrap(), "done");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    root.stop().await;
}

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy::new(max_retries + 1).backoff(Duration::from_millis(1), Duration::from_millis(4))
}

#[tokio::test]
async fn an_injected_model_failure_is_retried_like_a_provider_failure() {
    let fake = FakeProvider::start().await;
    let faults = Faults::builder(7).build();
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test")).with_retry(fast_retry(2));
    let model = faulty_model(model, faults.clone());
    faults.arm(&format!("model/{}", model.name()), FaultAction::Fail);
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "ok");
    assert_eq!(faults.log().len(), 1, "one injected failure");
    assert_eq!(
        fake.request_count(),
        1,
        "the injected attempt never reached the provider"
    );
}

#[tokio::test]
async fn injected_model_failures_past_the_retries_are_transient_typed_errors() {
    let fake = FakeProvider::start().await;
    let every_call = FaultRule::new("model/*".parse().unwrap(), FaultAction::Fail, 1.0);
    let faults = Faults::builder(7).rule(every_call).build();
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test")).with_retry(fast_retry(1));
    let model = faulty_model(model, faults.clone());
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Failed { transient: true, .. }), "{e:?}");
    assert!(e.is_transient() && e.warrants_fallback());
    assert_eq!(fake.request_count(), 0);
    assert_eq!(faults.log().len(), 2, "the first attempt and its one retry");
}
