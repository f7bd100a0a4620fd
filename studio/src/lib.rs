//! Warden Studio: a live view of a running system (its supervision tree, agents, model and
//! tool calls, escalations and chaos actions), with stuck detection, served as a web page
//! and followed by `warden top` in a terminal.
//!
//! A [`Studio`] is fed by observers the application hands out where it builds its system:
//!
//! * [`Studio::supervisor_observer`] on the root supervisor (its children inherit it): starts,
//!   exits, restarts with the restart intensity used, backoffs, give-ups, escalations;
//! * [`Studio::agent_observer`] on each agent (and [`Studio::watch_agent`] for its queue):
//!   turns, iterations, questions to humans, failures;
//! * [`Studio::tracing_layer`] on the `tracing` subscriber: each model and tool call, with
//!   latency, tokens, outcome and breaker state, and the agent whose turn made it;
//! * [`Studio::escalation_handler`] on a supervisor: escalations that wait for an answer
//!   (an agent's question to a human) wait in the studio, and are answered from the page;
//! * [`Studio::chaos_observer`] on a chaos monkey: its actions, on the timeline.
//!
//! None of them ever waits: they put what they saw on one bounded queue that the studio's hub
//! drains, dropping and counting what does not fit; the supervisor observer, which a crash
//! storm calls hundreds of thousands of times a second, instead keeps each child's latest
//! state in place, in a table the hub reads once a tick. The hub keeps a bounded [`View`] and
//! broadcasts each change once; each viewer starts from a snapshot, follows the changes, and
//! is sent a new snapshot when it falls behind rather than being buffered without bound. A
//! turn, model call or tool call running past [`StudioBuilder::stuck_after`] is flagged until
//! it ends.
//!
//! The web view ([`Studio::serve`], or [`Studio::router`] mounted in an axum application)
//! wants the studio's token; it listens on loopback unless told otherwise. With the `otel`
//! feature, `otel` exports the same spans to an OpenTelemetry collector over OTLP.

mod error;
mod federation;
mod layer;
#[cfg(feature = "otel")]
pub mod otel;
pub mod remote;
mod server;
mod studio;
mod tally;
#[cfg(feature = "top")]
pub mod top;
pub mod view;

pub use error::{AnswerError, ServeError};
pub use layer::StudioLayer;
pub use server::StudioServer;
pub use studio::{
    DEFAULT_MAX_TREE_NODES, DEFAULT_QUEUE, DEFAULT_STUCK_AFTER, DEFAULT_VIEWER_BUFFER, HUB_PERIOD,
    MAX_WAITING_ESCALATIONS, Studio, StudioBuilder, Viewer,
};
pub use view::{
    AgentView, CallView, Delta, EscalationView, Frame, MemberView, NodeView, StuckView, TimelineEntry, View,
};
