//! Tool executors for Warden agents.
//!
//! This crate will hold tools as typed async functions with JSON schemas, run by
//! supervised executor actors with circuit breakers, timeouts, retries,
//! concurrency limits, permissions and middleware. It is empty for now: the
//! supervision core in [`warden_supervisor`] comes first.

pub use warden_supervisor as supervisor;
