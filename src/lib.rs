//! Warden runs LLM agents the way Erlang/OTP runs processes: isolated actors,
//! message passing, and supervisors that restart what failed by a declared
//! strategy and escalate up a tree when restarting is not enough.
//!
//! This is the facade: it re-exports the crates of the workspace and a
//! [`prelude`] of the names you type most.
//!
//! * [`supervisor`]: OTP supervision trees on [`ractor`], and [`request`](supervisor::request()),
//!   which answers exactly once even when the worker dies.
//! * [`runtime`]: tokio's multi-thread runtime with idle workers that wait briefly before they
//!   park, so supervision's chains of hand-offs stay on one thread.
//! * [`resilience`]: retry, backoff, timeout, limits and the circuit breaker, as tower
//!   layers for any service; tool stacks and models are built from them.
//! * [`chaos`]: a seeded chaos monkey, fault injection and invariant checks.
//! * [`tools`]: tools and their executors: breakers, timeouts, retries, limits, permissions.
//! * [`agents`]: agents, models and patterns.
//! * [`durable`]: the journal that makes agents durable: accepted tasks, their steps' results
//!   and pending human questions on disk, so a killed process resumes without redoing side
//!   effects.
//! * [`cluster`]: nodes on `ractor_cluster` (feature `cluster`): failure detection with a
//!   deadline, reconnection, and remote children under local supervisors.
//! * `studio` (feature `studio`): Warden Studio, a live web view of the tree, agents, calls and
//!   escalations with stuck detection, its `tracing` layer, and OpenTelemetry export.

#[doc(inline)]
pub use warden_agents as agents;
#[doc(inline)]
pub use warden_chaos as chaos;
#[doc(inline)]
pub use warden_cluster as cluster;
#[doc(inline)]
pub use warden_durable as durable;
#[doc(inline)]
pub use warden_resilience as resilience;
#[cfg(feature = "studio")]
#[doc(inline)]
pub use warden_studio as studio;
#[doc(inline)]
pub use warden_supervisor as supervisor;
#[doc(inline)]
pub use warden_tools as tools;

#[doc(inline)]
pub use warden_supervisor::runtime;

#[doc(no_inline)]
pub use ractor;
#[doc(no_inline)]
pub use warden_tools::{schemars, serde};

/// The names most programs need: `use warden::prelude::*;`.
///
/// A tool needs nothing else, not even serde or schemars in your
/// `Cargo.toml`: the derives are here, and the two attributes point them at
/// Warden's copies.
///
/// ```
/// use warden::prelude::*;
///
/// #[derive(Deserialize, JsonSchema)]
/// #[serde(crate = "warden::serde")]
/// #[schemars(crate = "warden::schemars")]
/// struct Weather {
///     /// The city to look up.
///     city: String,
/// }
///
/// let toolkit = Toolkit::new().tool(tool_fn("weather", "Today's weather in a city.", |args: Weather| async move {
///     Ok::<_, ToolError>(format!("sunny in {}", args.city))
/// }));
/// let tools = ToolExecutor::new(toolkit, ToolStack::recommended().build());
/// # let _ = tools;
/// ```
pub mod prelude {
    pub use warden_agents::{
        Agent, AgentError, AgentMessage, AgentRef, Debate, EvaluatorOptimizer, FanOut, Hub, Model, ModelConfig,
        ModelError, Orchestrator, Pipeline, ReAct, Reply, Router, Team,
    };
    pub use warden_resilience::{RateLimit, RateLimiter, RetryPolicy};
    pub use warden_supervisor::{
        Backoff, ChildError, ChildKind, ChildSpec, Disposition, Escalation, EscalationKind, Escalator, ExitReason,
        Restart, Shutdown, StartContext, StartError, Strategy, Supervisor, SupervisorEvent,
    };
    pub use warden_supervisor::{RequestError, request};
    pub use warden_tools::schemars::JsonSchema;
    pub use warden_tools::serde::{Deserialize, Serialize};
    pub use warden_tools::{Tool, ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn};
}
