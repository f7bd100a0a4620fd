//! Warden runs LLM agents the way Erlang/OTP runs processes: isolated actors,
//! message passing, and supervisors that restart what failed by a declared
//! strategy and escalate up a tree when restarting is not enough.
//!
//! This is the facade: it re-exports the crates of the workspace and a
//! [`prelude`] of the names you type most.
//!
//! * [`supervisor`]: OTP supervision trees on [`ractor`].
//! * [`tools`]: tool executors (coming).
//! * [`agents`]: agents, models and patterns (coming).

#[doc(inline)]
pub use warden_agents as agents;
#[doc(inline)]
pub use warden_supervisor as supervisor;
#[doc(inline)]
pub use warden_tools as tools;

#[doc(no_inline)]
pub use ractor;

/// The names most programs need: `use warden::prelude::*;`.
pub mod prelude {
    pub use warden_supervisor::{
        Backoff, ChildError, ChildKind, ChildSpec, Disposition, Escalation, EscalationKind, Escalator, ExitReason,
        Restart, Shutdown, StartContext, StartError, Strategy, Supervisor, SupervisorEvent,
    };
}
