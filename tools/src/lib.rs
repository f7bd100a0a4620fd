//! Tools for Warden agents, run by supervised executors that keep a failing,
//! hanging or overloaded tool from taking an agent down.
//!
//! Agents call tools: web APIs, databases, code runners. Tools fail, hang and
//! rate-limit. Here a tool call never takes an agent down (every failure is a
//! typed [`ToolError`], a panic included), never hangs it (timeouts cancel the
//! work; a dead executor answers its callers at once), and never hammers a
//! service that is already failing (a circuit breaker per tool, retries only
//! for retryable errors, with backoff and a deadline, and a bounded queue).
//!
//! # Define a tool
//!
//! A [`Tool`] is a typed async function with a name, a description and a JSON
//! Schema for its arguments, generated from the argument type by `schemars`.
//! [`tool_fn`] makes one from an async closure:
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use warden_tools::{tool_fn, ToolError};
//!
//! /// Arguments of `weather`.
//! #[derive(Deserialize, JsonSchema)]
//! struct WeatherArgs {
//!     /// A city name, e.g. "Lisbon".
//!     city: String,
//! }
//!
//! let weather = tool_fn("weather", "Current weather in a city.", |args: WeatherArgs| async move {
//!     if args.city.is_empty() {
//!         return Err(ToolError::permanent("no city given"));
//!     }
//!     Ok(format!("sunny in {}", args.city))
//! })
//! .permission("net:weather");
//! # drop(weather);
//! ```
//!
//! # Build a toolkit, run an executor under a supervisor, call it
//!
//! A [`Toolkit`] holds tools, in groups that can be switched on and off, and
//! gives the model their [`ToolSchema`]s. A [`ToolExecutor`] runs the
//! toolkit's calls, each tool behind its own [`ToolStack`] of layers, as a
//! supervised actor; a [`ToolClient`] calls it and follows its restarts.
//!
//! ```
//! use std::time::Duration;
//! # use schemars::JsonSchema;
//! # use serde::Deserialize;
//! use serde_json::json;
//! use tokio::sync::mpsc;
//! use warden_supervisor::{Escalation, Strategy, Supervisor};
//! use warden_tools::{tool_fn, Caller, HttpRequestTool, ToolCall, ToolError, ToolExecutor, ToolStack, Toolkit};
//! # #[derive(Deserialize, JsonSchema)] struct WeatherArgs { city: String }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let toolkit = Toolkit::new()
//!     .tool(tool_fn("weather", "Current weather in a city.", |a: WeatherArgs| async move {
//!         Ok::<_, ToolError>(format!("sunny in {}", a.city))
//!     }))
//!     .group("web", |g| g.tool(HttpRequestTool::builder().allow_host("*.wikipedia.org").build().unwrap()));
//! let schemas = toolkit.schemas(); // for the model: name, description, JSON Schema
//! assert_eq!(schemas.len(), 2);
//!
//! let executor = ToolExecutor::new(toolkit, ToolStack::recommended().build());
//! let client = executor.client();
//! // Breaker openings and approval requests arrive here, unless a supervisor below handles them.
//! let (escalations, _rx) = mpsc::unbounded_channel::<Escalation>();
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::OneForOne)
//!     .escalation_handler(escalations)
//!     .child(executor.child_spec("tools"))
//!     .spawn()
//!     .await?;
//!
//! let call = ToolCall::new("weather", json!({"city": "Lisbon"})).caller(Caller::new("agents/planner"));
//! let result = client.call(call, Duration::from_secs(30)).await;
//! assert_eq!(warden_tools::to_model_content(&result), "sunny in Lisbon");
//!
//! // A model's mistake is a result it can read, not a crash.
//! let result = client.call(ToolCall::new("weather", json!({"town": "Lisbon"})), Duration::from_secs(30)).await;
//! assert!(warden_tools::to_model_content(&result).starts_with("error (invalid_arguments)"));
//! root.stop().await;
//! # Ok(()) }
//! ```
//!
//! # The layers, their order, and whose they are
//!
//! Every call goes through its tool's [`ToolStack`], outermost first
//! (layers added first see the call first, as with tower's `ServiceBuilder`).
//! [`ToolStack::recommended`]:
//!
//! ```text
//! permission → approval → circuit_breaker → concurrency_limit → retry → timeout → [your middleware] → tool
//! ```
//!
//! Denials (permission, approval) come first so they never reach or trip the
//! breaker; the breaker comes before the queue so an open circuit fails at
//! once, and before retry so a retried call counts once; the limit comes
//! before retry so retries keep their slot rather than multiply the load;
//! the timeout is per attempt; panics are caught at the tool and in your
//! middleware (`warden-chaos` injects faults as such a middleware). The [`stack`](ToolStack) docs say more, and a test pins the order.
//! Build your own order with [`ToolStack::builder`]; [`ToolStack::layers`]
//! and its `Display` show it.
//!
//! Every layer is a [`tower::Layer`], and your middleware (logging, metrics,
//! argument redaction, content filters) is any `tower::Layer` over
//! [`ToolService`], added with [`ToolStackBuilder::layer`]. The built-in
//! resilience layers are [`warden_resilience`]'s, the same ones models go
//! through, each for a reason tower's does not fit an agent:
//!
//! * **timeout**: tower's `Timeout` errs with a `BoxError`; ours keeps
//!   [`ToolError::Timeout`] typed (a 30-line layer over `tokio::time::timeout`);
//! * **concurrency limit**: tower's `ConcurrencyLimit` queues without bound;
//!   ours has a bounded queue and answers [`ToolError::Overloaded`] past it;
//! * **rate limit**: tower's `RateLimit` makes callers wait without bound;
//!   ours answers [`ToolError::RateLimited`] with `retry_after` at once (or
//!   after a bounded wait in a fair queue, with a shared [`RateLimiter`]);
//! * **retry**: backoff with jitter, attempts and a deadline, only for
//!   [`ToolError::is_retryable`] errors: a loop simpler than a `tower::retry::Policy`;
//! * **circuit breaker** ([`circuit_breaker`]), **permission**, **approval**:
//!   tower has none.
//!
//! Tower gives us the `Service`/`Layer` traits, boxing and `oneshot`. Our
//! layers are always ready and refuse in `call` with a typed error, as
//! tower's `LoadShed` does: failing fast is not being unready.
//!
//! # Failures, and who hears of them
//!
//! | what | the caller gets | and also |
//! |---|---|---|
//! | bad arguments from the model | [`ToolError::InvalidArguments`] with the JSON path | |
//! | missing permissions | [`ToolError::PermissionDenied`] | audit event (`warden::audit`) |
//! | approval denied / not given in time | [`ToolError::ApprovalDenied`] / [`ToolError::ApprovalTimeout`] | audit event |
//! | breaker open | [`ToolError::CircuitOpen`] with `retry_after` | opening: `tracing` event and a [`CircuitOpened`](circuit_breaker::CircuitOpened) escalation |
//! | too many calls | [`ToolError::Overloaded`] / [`ToolError::RateLimited`] | |
//! | tool fails, hangs, panics | [`ToolError::Failed`] / [`ToolError::Timeout`] / [`ToolError::Panicked`] | counted by the breaker |
//! | executor dies | [`ToolError::ExecutorDown`], at once | its supervisor restarts it |
//! | tool not offered to the caller ([`Caller::offered`]) | [`ToolError::NotFound`] | |
//! | executor at its [`max_in_flight`](ToolExecutor::max_in_flight) | [`ToolError::Overloaded`] | |
//! | caller's deadline passes, or the caller is gone | [`ToolError::Timeout`] (or nobody) | the call is cancelled |
//!
//! What a tool declares it needs (its permissions, its approval) is checked
//! whatever the stack: [`ToolStack::build`] adds the checks outermost when
//! the stack lacks them. A call never outlives its caller: the executor
//! cancels it when the caller's deadline passes or the caller goes away. A
//! call that may have acted is retried only when the tool says it is
//! idempotent ([`Tool::idempotent`]).
//!
//! # The built-in tool
//!
//! [`HttpRequestTool`]: HTTP on `reqwest` (rustls) with a host allowlist,
//! ports and non-public addresses allowed only explicitly (names are checked
//! as they resolve, literal IPs as written), connection-steering headers
//! refused, redirects re-checked, a streamed response size limit, a timeout,
//! and retries only for idempotent methods.

pub use warden_supervisor as supervisor;

/// The JSON Schema derive a tool's argument type needs (`#[derive(JsonSchema)]`),
/// re-exported so that a program needs no dependency of its own: with only
/// `warden`, write `#[schemars(crate = "warden::schemars")]` on the type.
pub use schemars;
/// serde, whose `Deserialize` a tool's argument type derives, re-exported for
/// the same reason: `#[serde(crate = "warden::serde")]`.
pub use serde;

mod approval;
mod call;
mod error;
mod executor;
mod http;
mod permission;
mod stack;
mod tool;
mod toolkit;

pub use approval::{ApprovalDecision, ApprovalLayer, ApprovalPolicy, ApprovalRequest, ApprovalService};
pub use call::{CallId, Caller, ToolCall, idempotency_key};
pub use error::{BoxError, ToolError, ToolResult, to_model_content};
pub use executor::{ToolClient, ToolExecutor};
pub use http::{HttpError, HttpMethod, HttpRequestArgs, HttpRequestTool, HttpRequestToolBuilder, HttpResponse};
pub use permission::{AUDIT_TARGET, Permission, PermissionLayer, PermissionService, PermissionSet};
pub use stack::{BuiltStack, LayerKind, ToolService, ToolStack, ToolStackBuilder};
pub use tool::{DynTool, FnTool, Tool, ToolSchema, into_dyn, tool_fn, validate};
pub use toolkit::{GroupBuilder, Toolkit};
/// Resilience layers for any service: retry, backoff, timeout, limits, circuit breaker.
pub use warden_resilience as resilience;
/// The circuit breaker the stacks use ([`warden_resilience::circuit_breaker`]).
pub use warden_resilience::circuit_breaker;
/// The resilience layers a [`ToolStack`] is built from, shared with models.
pub use warden_resilience::{
    Backoff, ConcurrencyLimitLayer, ConcurrencyLimitService, RateLimit, RateLimitLayer, RateLimitService, RateLimiter,
    RetryBudget, RetryLayer, RetryPolicy, RetryService, TimeoutLayer, TimeoutService, Transient,
};

#[doc(no_inline)]
pub use tower;
