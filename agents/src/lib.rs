//! Agents for Warden.
//!
//! This crate will hold agents as supervised actors, the provider-neutral model
//! layer, the ReAct loop, memory and the orchestration patterns. It is empty for
//! now: the supervision core in [`warden_supervisor`] and the tools in
//! [`warden_tools`] come first.

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
