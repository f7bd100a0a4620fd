//! A call never outlives its caller, and a caller reaches only the tools it
//! was offered: deadlines, callers that go away, the in-flight bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use warden_tools::{Caller, ToolCall, ToolClient, ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};

const LONG: Duration = Duration::from_secs(3600);

#[derive(Deserialize, JsonSchema)]
struct Empty {}

/// Sends on drop: the tool's future was dropped (cancelled) before it finished.
struct Dropped(mpsc::UnboundedSender<()>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A tool with a side effect: it announces it started, waits for `gate`,
/// then records. If its future is dropped first, `dropped` hears of it.
struct Effect {
    started: Arc<AtomicUsize>,
    recorded: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    dropped: mpsc::UnboundedReceiver<()>,
}

fn effect(name: &'static str) -> (Effect, impl warden_tools::Tool) {
    let started = Arc::new(AtomicUsize::new(0));
    let recorded = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let (tx, dropped) = mpsc::unbounded_channel();
    let tool = tool_fn(name, "Waits for the gate, then records.", {
        let (started, recorded, gate) = (started.clone(), recorded.clone(), gate.clone());
        move |_: Empty| {
            let (started, recorded, gate, tx) = (started.clone(), recorded.clone(), gate.clone(), tx.clone());
            async move {
                let guard = Dropped(tx);
                started.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await.map_err(ToolError::permanent)?;
                recorded.fetch_add(1, Ordering::SeqCst);
                std::mem::forget(guard);
                Ok::<_, ToolError>("recorded")
            }
        }
    });
    let effect = Effect {
        started,
        recorded,
        gate,
        dropped,
    };
    (effect, tool)
}

async fn spawn(toolkit: Toolkit) -> ToolClient {
    let (client, _handle) = ToolExecutor::new(toolkit, ToolStack::default()).spawn().await.unwrap();
    client
}

async fn wait_started(effect: &Effect, n: usize) {
    while effect.started.load(Ordering::SeqCst) < n {
        tokio::task::yield_now().await;
    }
}

/// Fails (under the paused clock, at once) unless the tool's future was dropped.
async fn assert_cancelled(effect: &mut Effect) {
    tokio::time::timeout(LONG, effect.dropped.recv())
        .await
        .expect("the call was not cancelled")
        .unwrap();
    // Opening the gate now cannot make a cancelled call record.
    effect.gate.add_permits(100);
    assert_eq!(effect.recorded.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_goes_away_cancels_its_call_before_the_side_effect() {
    let (mut effect, tool) = effect("effect");
    let client = spawn(Toolkit::new().tool(tool)).await;
    let caller = tokio::spawn({
        let client = client.clone();
        async move { client.call(ToolCall::new("effect", json!({})), LONG).await }
    });
    wait_started(&effect, 1).await;
    // The caller is interrupted (an agent killed or interrupted drops its future).
    caller.abort();
    assert_cancelled(&mut effect).await;
    // The executor carries on.
    assert!(matches!(
        client.call(ToolCall::new("nope", json!({})), LONG).await,
        Err(ToolError::NotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_call_is_cancelled_when_its_callers_deadline_passes() {
    let (mut effect, tool) = effect("effect");
    let client = spawn(Toolkit::new().tool(tool)).await;
    let err = client
        .call(ToolCall::new("effect", json!({})), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Timeout { .. }), "{err:?}");
    assert_cancelled(&mut effect).await;
}

#[tokio::test(start_paused = true)]
async fn calls_in_flight_are_bounded() {
    let (effect, tool) = effect("effect");
    let (client, _handle) = ToolExecutor::new(tool, ToolStack::default())
        .max_in_flight(2)
        .spawn()
        .await
        .unwrap();
    let running: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call(ToolCall::new("effect", json!({})), LONG).await })
        })
        .collect();
    wait_started(&effect, 2).await;
    let err = client.call(ToolCall::new("effect", json!({})), LONG).await.unwrap_err();
    assert!(matches!(err, ToolError::Overloaded), "{err:?}");
    assert_eq!(effect.started.load(Ordering::SeqCst), 2);
    effect.gate.add_permits(3);
    for call in running {
        assert_eq!(call.await.unwrap().unwrap(), "recorded");
    }
    // Slots are free again.
    assert_eq!(
        client.call(ToolCall::new("effect", json!({})), LONG).await.unwrap(),
        "recorded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_caller_reaches_only_the_tools_it_was_offered() {
    let (echo, echo_tool) = effect("echo");
    let (wipe, wipe_tool) = effect("delete_everything");
    echo.gate.add_permits(10);
    wipe.gate.add_permits(10);
    // One executor shared by agents offered different tools.
    let client = spawn(Toolkit::new().tool(echo_tool).tool(wipe_tool)).await;
    let agent = Caller::new("agents/chat").offered(["echo"]);
    let err = client
        .call(
            ToolCall::new("delete_everything", json!({})).caller(agent.clone()),
            LONG,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ToolError::NotFound { ref tool } if &**tool == "delete_everything"),
        "{err:?}"
    );
    assert_eq!(wipe.started.load(Ordering::SeqCst), 0);
    assert_eq!(
        client
            .call(ToolCall::new("echo", json!({})).caller(agent), LONG)
            .await
            .unwrap(),
        "recorded"
    );
    // A caller offered everything (the default) reaches both.
    assert_eq!(
        client
            .call(ToolCall::new("delete_everything", json!({})), LONG)
            .await
            .unwrap(),
        "recorded"
    );
}
