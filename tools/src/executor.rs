//! [`ToolExecutor`]: the supervised actor that runs a toolkit's calls
//! through their [`ToolStack`]s, and [`ToolClient`], the handle to call it.
//!
//! The executor is a ractor actor and a supervised child
//! ([`ToolExecutor::child_spec`]). When it starts it builds one
//! [`ToolService`](crate::ToolService) per tool (each with its own breaker,
//! limits and rate) and keeps them in its state. Each call is a message; the
//! actor picks the tool's service, clones it and spawns the call as a task
//! that answers the caller itself, so the actor is free again at once: a slow
//! tool, a call waiting for approval or for a queue slot never blocks the
//! calls behind it.
//!
//! # Failure
//!
//! * A tool that fails, hangs or panics is a failed *call*
//!   ([`ToolError::Failed`], [`ToolError::Timeout`], [`ToolError::Panicked`]),
//!   counted by the breaker; the executor carries on.
//! * When the breaker opens, the executor raises a
//!   [`CircuitOpened`](crate::circuit_breaker::CircuitOpened) escalation to its
//!   supervisor (see [`ToolStack::build`]).
//! * A call's work never outlives its caller: it is cancelled (its future
//!   dropped at its next `.await`, before any later side effect) when the
//!   caller's deadline passes ([`ToolCall::within`], set by
//!   [`ToolClient::call`]), and when the caller is gone: it stopped waiting,
//!   was interrupted or killed (the [`ToolClient::call`] future was dropped).
//!   A call already past its deadline, or whose caller is already gone, is
//!   not started.
//! * At most [`max_in_flight`](ToolExecutor::max_in_flight) calls run at
//!   once (1024 by default); past that a call is refused at once with
//!   [`ToolError::Overloaded`].
//! * A caller offered only some tools ([`Caller::offered`](crate::Caller::offered))
//!   gets [`ToolError::NotFound`] for the others.
//! * If the executor itself dies (killed, or a bug), its call tasks are
//!   aborted with it (they live in a `JoinSet` in its state), every caller
//!   waiting on it gets [`ToolError::ExecutorDown`] at once, and its
//!   supervisor restarts it; the [`ToolClient`] follows the restart. A
//!   restart builds the stacks anew: breakers start closed.
//!
//! ```
//! use std::time::Duration;
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::json;
//! use warden_supervisor::{Strategy, Supervisor};
//! use warden_tools::{tool_fn, ToolCall, ToolError, ToolExecutor, ToolStack, Toolkit};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct AddArgs { a: i64, b: i64 }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let toolkit = Toolkit::new().tool(tool_fn("add", "Adds.", |x: AddArgs| async move { Ok::<_, ToolError>(x.a + x.b) }));
//! let executor = ToolExecutor::new(toolkit, ToolStack::recommended().build());
//! let client = executor.client();
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::OneForOne)
//!     .child(executor.child_spec("tools"))
//!     .spawn()
//!     .await?;
//!
//! let sum = client.call(ToolCall::new("add", json!({"a": 2, "b": 3})), Duration::from_secs(5)).await?;
//! assert_eq!(sum, json!(5));
//! let bad = client.call(ToolCall::new("add", json!({"a": 2})), Duration::from_secs(5)).await;
//! assert!(matches!(bad, Err(ToolError::InvalidArguments { .. })));
//! root.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::Future;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::Instrument;
use warden_supervisor::{ChildSpec, Escalator, Incarnations, RequestError, StartContext, request};

use crate::call::ToolCall;
use crate::circuit_breaker::SharedCircuitBreaker;
use crate::error::{ToolError, ToolResult};
use crate::stack::{ToolService, ToolStack, catch_panic};
use crate::toolkit::Toolkit;

/// The executor's messages (its own: callers go through [`ToolClient`]).
pub(crate) enum ExecutorMsg {
    /// Run a call and send its result to `reply`.
    Call {
        /// The call.
        call: ToolCall,
        /// Where the result goes.
        reply: RpcReplyPort<ToolResult>,
        /// The caller's span: the call's span is its child (in a trace, an agent's turn holds
        /// its tool calls).
        parent: tracing::Span,
    },
    /// Send the breakers, by tool name, to `reply` (for tests and
    /// introspection).
    Breakers(RpcReplyPort<HashMap<Arc<str>, SharedCircuitBreaker>>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for ExecutorMsg {}

impl fmt::Debug for ExecutorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Call { call, .. } => f.debug_struct("Call").field("call", call).finish_non_exhaustive(),
            Self::Breakers(_) => f.write_str("Breakers"),
        }
    }
}

/// The executor's running actor, followed across restarts.
type Slot = Arc<Incarnations<ActorRef<ExecutorMsg>>>;

/// How many calls an executor runs at once unless told otherwise.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// How often a call whose caller left no liveness signal (a raw
/// [`ExecutorMsg::Call`]) checks whether its reply port closed.
const REPLY_PORT_CHECK: Duration = Duration::from_millis(50);

/// Runs a toolkit's calls through a [`ToolStack`] per tool. A recipe: the
/// actor is spawned by [`child_spec`](Self::child_spec) (supervised) or
/// [`spawn`](Self::spawn) (not). Cheap to clone.
#[derive(Clone)]
pub struct ToolExecutor {
    toolkit: Toolkit,
    stack: ToolStack,
    slot: Slot,
    max_in_flight: usize,
}

impl fmt::Debug for ToolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolExecutor")
            .field("toolkit", &self.toolkit)
            .field("stack", &self.stack)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// The executor actor's state: a service per tool and the calls in flight.
pub(crate) struct ExecutorState {
    services: HashMap<Arc<str>, ToolService>,
    breakers: HashMap<Arc<str>, SharedCircuitBreaker>,
    /// The call tasks; dropped (so aborted) with the state when the actor
    /// stops or is killed, which drops their reply ports.
    tasks: JoinSet<()>,
}

impl fmt::Debug for ExecutorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorState")
            .field("tools", &self.services.keys().collect::<Vec<_>>())
            .field("in_flight", &self.tasks.len())
            .finish()
    }
}

impl ToolExecutor {
    /// An executor for `toolkit`'s tools (enabled or not: a group switched
    /// on later is served), each behind `stack`.
    pub fn new(toolkit: impl Into<Toolkit>, stack: ToolStack) -> Self {
        Self {
            toolkit: toolkit.into(),
            stack,
            slot: Arc::new(Incarnations::new()),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// At most `max` calls in flight at once, all tools together (1024 by
    /// default; at least 1); past that a call is refused at once with
    /// [`ToolError::Overloaded`]. Per-tool limits are the stack's
    /// ([`ToolStackBuilder::concurrency_limit`](crate::ToolStackBuilder::concurrency_limit)).
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// A handle that calls whichever actor of this executor is running now,
    /// across restarts.
    pub fn client(&self) -> ToolClient {
        ToolClient {
            slot: self.slot.clone(),
        }
    }

    /// A permanent worker spec that starts this executor with the
    /// supervisor's escalator (for approvals and breaker openings). Every
    /// restart builds the stacks anew.
    pub fn child_spec(&self, id: impl Into<String>) -> ChildSpec {
        let executor = self.clone();
        ChildSpec::worker(id, move |ctx: StartContext| {
            let executor = executor.clone();
            async move {
                let escalator = ctx.escalator();
                ctx.spawn(ExecutorActor(executor), Some(escalator))
                    .await
                    .map(Into::into)
            }
        })
    }

    /// Spawns the executor without a supervisor (approvals then fail with
    /// [`ToolError::ApprovalUnavailable`]).
    ///
    /// # Errors
    ///
    /// ractor's spawn error.
    pub async fn spawn(&self) -> Result<(ToolClient, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
        let (_actor, handle) = Actor::spawn(None, ExecutorActor(self.clone()), None).await?;
        Ok((self.client(), handle))
    }
}

/// The executor's actor, spawned from its recipe; the recipe's fields are its settings.
pub(crate) struct ExecutorActor(ToolExecutor);

impl Actor for ExecutorActor {
    type Msg = ExecutorMsg;
    type State = ExecutorState;
    type Arguments = Option<Escalator>;

    /// Builds a service per tool and publishes this actor to the clients.
    /// It cannot fail.
    async fn pre_start(
        &self,
        myself: ActorRef<ExecutorMsg>,
        escalator: Option<Escalator>,
    ) -> Result<ExecutorState, ActorProcessingErr> {
        let mut services = HashMap::new();
        let mut breakers = HashMap::new();
        for tool in self.0.toolkit.all() {
            let built = self.0.stack.build(tool.clone(), escalator.as_ref());
            let name: Arc<str> = Arc::from(tool.name());
            if let Some(breaker) = built.breaker {
                breakers.insert(name.clone(), breaker);
            }
            services.insert(name, built.service);
        }
        self.0.slot.started(myself);
        Ok(ExecutorState {
            services,
            breakers,
            tasks: JoinSet::new(),
        })
    }

    /// Spawns the call and returns at once. It cannot fail.
    async fn handle(
        &self,
        _myself: ActorRef<ExecutorMsg>,
        msg: ExecutorMsg,
        state: &mut ExecutorState,
    ) -> Result<(), ActorProcessingErr> {
        // Reap finished calls so the set holds only those in flight.
        while state.tasks.try_join_next().is_some() {}
        match msg {
            ExecutorMsg::Call {
                mut call,
                reply,
                parent,
            } => {
                let service = match state.services.get(&call.tool) {
                    Some(service) if call.caller.is_offered(&call.tool) && self.0.toolkit.is_enabled(&call.tool) => {
                        service.clone()
                    }
                    _ => {
                        let _ = reply.send(Err(ToolError::NotFound { tool: call.tool }));
                        return Ok(());
                    }
                };
                if state.tasks.len() >= self.0.max_in_flight {
                    let _ = reply.send(Err(ToolError::Overloaded));
                    return Ok(());
                }
                // A raw ractor call without a deadline of its own has its reply port's timeout.
                let port_deadline = || {
                    let after = reply.get_timeout()?;
                    Some((tokio::time::Instant::now().checked_add(after)?, after))
                };
                let caller = CallerWatch {
                    deadline: call.deadline().zip(call.patience()).or_else(port_deadline),
                    alive: call.take_caller_alive(),
                };
                let span = tracing::info_span!(
                    target: "warden::tools",
                    parent: &parent,
                    "tool.call",
                    otel.name = %format_args!("execute_tool {}", call.tool),
                    gen_ai.operation.name = "execute_tool",
                    gen_ai.tool.name = %call.tool,
                    tool = %call.tool,
                    call_id = %call.id,
                    latency_ms = tracing::field::Empty,
                    outcome = tracing::field::Empty,
                    breaker = tracing::field::Empty,
                );
                // Only a span someone records needs the breaker's state.
                let breaker = if span.is_disabled() {
                    None
                } else {
                    state.breakers.get(&call.tool).cloned()
                };
                state.tasks.spawn(
                    async move {
                        let started = std::time::Instant::now();
                        // Our layers catch the tool's panics; this catches a middleware's.
                        let work = catch_panic(service.oneshot(call));
                        let result = caller.run(work, &reply).await;
                        let span = tracing::Span::current();
                        span.record("latency_ms", started.elapsed().as_millis() as u64);
                        span.record(
                            "outcome",
                            match &result {
                                Some(Ok(_)) => "ok",
                                Some(Err(e)) => e.kind(),
                                None => "cancelled",
                            },
                        );
                        if let Some(breaker) = breaker {
                            span.record("breaker", breaker.state().as_str());
                        }
                        if let Some(result) = result {
                            let _ = reply.send(result);
                        }
                    }
                    .instrument(span),
                );
            }
            ExecutorMsg::Breakers(reply) => {
                let _ = reply.send(state.breakers.clone());
            }
        }
        Ok(())
    }

    /// Aborts the calls in flight (their callers get `ExecutorDown`) and
    /// withdraws this actor from the clients. It cannot fail.
    async fn post_stop(
        &self,
        myself: ActorRef<ExecutorMsg>,
        state: &mut ExecutorState,
    ) -> Result<(), ActorProcessingErr> {
        state.tasks.abort_all();
        self.0.slot.ended(|r| r.get_id() == myself.get_id());
        Ok(())
    }
}

/// What a call task watches of its caller: its deadline and whether it is
/// still there.
struct CallerWatch {
    deadline: Option<(tokio::time::Instant, Duration)>,
    alive: Option<watch::Receiver<()>>,
}

impl CallerWatch {
    /// Runs `work` unless the caller is gone or its deadline passes first
    /// (then `work` is dropped, or never polled if that was so already):
    /// `None` when the caller is gone, since nobody waits for an answer.
    async fn run<F>(self, work: F, reply: &RpcReplyPort<ToolResult>) -> Option<ToolResult>
    where
        F: Future<Output = ToolResult>,
    {
        let expired = async {
            match self.deadline {
                Some((at, after)) => {
                    tokio::time::sleep_until(at).await;
                    after
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = caller_gone(self.alive, reply) => {
                tracing::debug!("tool call cancelled: its caller is gone");
                None
            }
            after = expired => Some(Err(ToolError::Timeout { after })),
            result = work => Some(result),
        }
    }
}

/// Resolves when the caller is gone: its liveness signal's sender was
/// dropped, or (without one) its reply port closed.
async fn caller_gone(alive: Option<watch::Receiver<()>>, reply: &RpcReplyPort<ToolResult>) {
    match alive {
        // `changed` fails once the sender is dropped; nothing is ever sent.
        Some(mut alive) => while alive.changed().await.is_ok() {},
        None => {
            while !reply.is_closed() {
                tokio::time::sleep(REPLY_PORT_CHECK).await;
            }
        }
    }
}

/// Calls an executor, whichever of its actors is running (it follows
/// restarts). Cheap to clone.
#[derive(Clone)]
pub struct ToolClient {
    slot: Slot,
}

impl fmt::Debug for ToolClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolClient").field("actor", &self.actor()).finish()
    }
}

impl ToolClient {
    /// The executor's actor running now, if any (to monitor, stop or kill it; calls go
    /// through [`call`](Self::call)).
    pub fn actor(&self) -> Option<ActorCell> {
        self.slot.current().map(|actor| actor.get_cell())
    }

    /// Runs `call` and waits for its result, at most `deadline`; the
    /// executor cancels the call when `deadline` passes.
    ///
    /// # Errors
    ///
    /// Whatever the tool's stack returns (see [`ToolError`]), plus
    /// [`ToolError::ExecutorDown`] when no executor is running or it died
    /// before answering (the call may or may not have run), and
    /// [`ToolError::Timeout`] when `deadline` passes first (the call is
    /// cancelled; it may have acted before).
    ///
    /// # Cancellation
    ///
    /// Dropping the future cancels the call in the executor: the tool's
    /// future is dropped at its next `.await` (or never started), so a
    /// caller that is interrupted or killed leaves no work behind.
    pub async fn call(&self, call: ToolCall, deadline: Duration) -> Result<Value, ToolError> {
        let actor = self.slot.current().ok_or(ToolError::ExecutorDown)?;
        let (alive, watch) = watch::channel(());
        let call = call.within(deadline).watched_by(watch);
        let parent = tracing::Span::current();
        let answer = request(&actor, |reply| ExecutorMsg::Call { call, reply, parent }, deadline).await;
        drop(alive);
        match answer {
            Ok(result) => result,
            Err(RequestError::Timeout(after)) => Err(ToolError::Timeout { after }),
            Err(_) => Err(ToolError::ExecutorDown),
        }
    }

    /// The executor's breakers, by tool name.
    ///
    /// # Errors
    ///
    /// [`ToolError::ExecutorDown`] when no executor is running.
    pub async fn breakers(&self) -> Result<HashMap<Arc<str>, SharedCircuitBreaker>, ToolError> {
        let actor = self.slot.current().ok_or(ToolError::ExecutorDown)?;
        request(&actor, ExecutorMsg::Breakers, Duration::from_secs(5))
            .await
            .map_err(|_| ToolError::ExecutorDown)
    }
}

#[cfg(test)]
mod tests {
    //! Calls made straight to the actor (no [`ToolClient`], so no liveness signal): the reply
    //! port is what tells the executor its caller is gone.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use tokio::sync::mpsc;

    use super::*;
    use crate::tool_fn;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Empty {}

    /// Sends on drop: the tool's future was dropped before it finished.
    struct Dropped(mpsc::UnboundedSender<()>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    /// An executor with one tool that never finishes; counts starts, reports drops.
    async fn hanging() -> (ActorRef<ExecutorMsg>, Arc<AtomicUsize>, mpsc::UnboundedReceiver<()>) {
        let started = Arc::new(AtomicUsize::new(0));
        let (tx, dropped) = mpsc::unbounded_channel();
        let tool = tool_fn("effect", "Never finishes.", {
            let started = started.clone();
            move |_: Empty| {
                let (started, tx) = (started.clone(), tx.clone());
                async move {
                    let _guard = Dropped(tx);
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok::<_, ToolError>("never")
                }
            }
        });
        let executor = ToolExecutor::new(Toolkit::new().tool(tool), ToolStack::default());
        let (actor, _handle) = Actor::spawn(None, ExecutorActor(executor), None).await.unwrap();
        (actor, started, dropped)
    }

    fn effect_call(reply: RpcReplyPort<ToolResult>) -> ExecutorMsg {
        ExecutorMsg::Call {
            call: ToolCall::new("effect", json!({})),
            reply,
            parent: tracing::Span::none(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_raw_call_is_cancelled_when_its_reply_port_times_out() {
        let (actor, _started, mut dropped) = hanging().await;
        let answer = actor.call(effect_call, Some(Duration::from_millis(50))).await.unwrap();
        assert!(matches!(answer, ractor::rpc::CallResult::Timeout));
        dropped.recv().await.expect("the call was cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn a_raw_call_without_a_timeout_is_cancelled_when_its_caller_is_dropped() {
        let (actor, started, mut dropped) = hanging().await;
        let caller = tokio::spawn(async move { actor.call(effect_call, None).await });
        while started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        caller.abort();
        dropped.recv().await.expect("the call was cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_is_not_started() {
        let (actor, started, _dropped) = hanging().await;
        let call = ToolCall::new("effect", json!({})).within(Duration::from_millis(10));
        tokio::time::advance(Duration::from_millis(20)).await;
        let (reply, answer) = tokio::sync::oneshot::channel();
        actor
            .send_message(ExecutorMsg::Call {
                call,
                reply: reply.into(),
                parent: tracing::Span::none(),
            })
            .unwrap();
        assert!(matches!(answer.await.unwrap(), Err(ToolError::Timeout { .. })));
        assert_eq!(started.load(Ordering::SeqCst), 0);
    }
}
