//! Chaos testing for Warden supervision trees: kill agents and inject faults on
//! purpose, then prove that nothing was lost.
//!
//! * [`Faults`]: a seeded plan of faults (fail, delay, panic) consulted at
//!   named points; the tools and model layers, and [`Faulty`] actors, consult it.

mod faults;
mod filter;

pub use faults::{FaultAction, FaultRecord, FaultRule, Faults, FaultsBuilder, InjectedFault};
pub use filter::{FilterError, PathFilter};
