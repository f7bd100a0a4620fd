//! Agents for Warden: LLM agents as supervised actors.
//!
//! An agent here is an Erlang process with a model inside. It runs under a
//! [`Supervisor`](warden_supervisor::Supervisor) like any child, owns its state
//! (memory, queue, counters), is reached by address, answers every
//! [`ask`](agent::AgentRef::ask) exactly once (the reply or a typed error,
//! never a hang), and escalates up the tree when its model or tools keep
//! failing. The modules, from the bottom up:
//!
//! * [`model`]: provider-neutral chat with tools over HTTP (the OpenAI
//!   chat-completions format and the Anthropic Messages format), whole or
//!   streamed, with the providers' retry rules, a fallback model, structured
//!   output and configuration from a file or the environment.
//! * [`message`] and [`codec`]: the [`AgentMessage`]
//!   agents exchange, and its one binary (bincode) and JSON encoding.
//! * [`memory`]: a conversation bounded by messages or tokens that never
//!   separates a tool call from its result.
//! * [`agent`]: the [`Agent`] definition (a recipe its
//!   supervisor starts it from), the [`AgentRef`] address,
//!   interrupt, human in the loop, escalation of failing agents, and the
//!   [`Behaviour`] trait for agents of your own.
//! * [`react`]: the ReAct agent: a system prompt, a model, tools run through
//!   supervised tool executors, parallel tool calls, a bounded loop.
//! * [`registry`] and [`team`]: agents by name or tree path, and teams that
//!   route to their members by a policy and are addressed like one agent.
//! * [`pattern`]: pipelines, fan-out, a broadcast hub, a router,
//!   orchestrator-workers, an evaluator-optimizer loop and a debate.
//!
//! The names most programs use are also here at the root: [`Agent`],
//! [`AgentRef`], [`AgentMessage`], [`Reply`], [`AgentError`], [`ReAct`],
//! [`Model`], [`ModelConfig`], [`ModelError`], [`Team`], [`Registry`], and
//! the patterns ([`Pipeline`], [`FanOut`], [`Hub`], [`Router`],
//! [`Orchestrator`], [`EvaluatorOptimizer`], [`Debate`]). The modules hold the
//! rest.
//!
//! Test your agents against `warden-fake-provider`, a server on 127.0.0.1
//! that speaks both wire formats, plays scripted replies and faults, and
//! records every request; the examples in these docs do.

pub use warden_supervisor as supervisor;
pub use warden_tools as tools;

pub mod agent;
pub mod codec;
pub mod memory;
pub mod message;
pub mod model;
pub mod pattern;
pub mod react;
pub mod registry;
pub mod team;

pub use agent::{Agent, AgentError, AgentRef, AgentStatus, Behaviour, Outcome, Reply, TurnContext, TurnError};
pub use memory::Memory;
pub use message::{Address, AgentMessage};
pub use model::{ChatModel, Model, ModelConfig, ModelError};
pub use pattern::{Debate, EvaluatorOptimizer, FanOut, Hub, Orchestrator, Pipeline, Router};
pub use react::ReAct;
pub use registry::Registry;
pub use team::Team;
