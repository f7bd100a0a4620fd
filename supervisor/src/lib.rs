//! OTP supervision trees on [`ractor`].
//!
//! A supervisor starts children, watches them, and restarts them when they
//! stop, by a declared strategy, within a declared limit. When restarting is
//! not enough it gives up and *escalates*: its parent hears of it as a typed
//! [`Escalation`] and deals with it by its own strategy, and so on up to the
//! root, whose escalations go to a handler you provide. This is Erlang/OTP's
//! `supervisor`, with the same semantics (checked against OTP's own traces by
//! the project's conformance scenarios), built on ractor's actors and links.
//!
//! # A tree in code
//!
//! ```
//! use std::time::Duration;
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use warden_supervisor::{ChildSpec, Restart, Shutdown, Strategy, Supervisor};
//!
//! /// A worker: any ractor actor.
//! struct Planner;
//! impl Actor for Planner {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::RestForOne)
//!     .intensity(3, Duration::from_secs(5))
//!     .child(
//!         ChildSpec::actor("planner", || (Planner, ()))
//!             .restart(Restart::Permanent)
//!             .shutdown(Shutdown::Timeout(Duration::from_secs(2))),
//!     )
//!     .child(
//!         Supervisor::builder("workers")
//!             .strategy(Strategy::OneForOne)
//!             .child(ChildSpec::actor("w1", || (Planner, ())))
//!             .into_child(),
//!     )
//!     .spawn()
//!     .await?;
//!
//! println!("{}", root.snapshot().await?);
//! root.stop().await; // children stop in reverse start order, depth first
//! # Ok(()) }
//! ```
//!
//! # Strategies
//!
//! When a child must be restarted, [`Strategy::OneForOne`] restarts only it;
//! [`Strategy::OneForAll`] stops all the others and restarts everyone;
//! [`Strategy::RestForOne`] stops and restarts the children started after it.
//! Stops go in reverse start order, one child at a time; starts go in start
//! order.
//!
//! # Restart types
//!
//! [`Restart::Permanent`] children are always restarted;
//! [`Restart::Transient`] ones only after an abnormal exit (a panic, an error
//! returned from a handler, a kill), not after a normal stop or a shutdown;
//! [`Restart::Temporary`] ones never, and their spec is removed when they exit.
//!
//! # Intensity
//!
//! More than `N` restarts within `T` ([`SupervisorBuilder::intensity`]) and the
//! supervisor gives up: it stops its remaining children in reverse start order
//! and exits with reason `shutdown`. Only real restarts count; a group restart
//! counts once; a restart whose start fails is tried again through the
//! mailbox, and every attempt counts.
//!
//! # Automatic shutdown
//!
//! A supervisor whose [`AutoShutdown`] is not `Never`
//! ([`SupervisorBuilder::auto_shutdown`]) can have *significant* children
//! ([`ChildSpec::significant`]), transient or temporary, whose work is the
//! point of the subtree: when any of them (`AnySignificant`) or the last of
//! them (`AllSignificant`) ends on its own and is not restarted, the
//! supervisor stops its other children and exits with reason `shutdown`.
//! Stopping one with [`Supervisor::terminate_child`], or a group restart, does
//! not count. A parent sees that exit as normal, so a transient significant
//! child supervisor passes the shutdown up. Specs that cannot work (a
//! significant child that is permanent, or under `Never`) are refused with a
//! [`SpecError`], as OTP refuses them.
//!
//! # Shutdown
//!
//! [`Shutdown::Timeout`] asks a child to stop and kills it when the time runs
//! out; [`Shutdown::BrutalKill`] kills at once; [`Shutdown::Infinity`] waits
//! (the default for child supervisors, so a subtree stops in order, depth
//! first). A supervisor's own shutdown is driven by its children's exit
//! events, so each child is reported with its own reason, even one that
//! crashes while it is being stopped. A killed child that does not end within
//! the kill grace ([`SupervisorBuilder::kill_grace`]: its thread is blocked)
//! is recorded as killed and left behind, so a shutdown is always bounded
//! unless a child's spec is `Infinity`. Every API call has a variant with a
//! deadline (`which_children_within`, ...).
//!
//! # Dynamic supervisors
//!
//! [`DynamicSupervisor`] is OTP's `simple_one_for_one`: one child template,
//! children started at run time with arguments of their own, thousands of
//! them at a few dozen bytes of bookkeeping each, one restart intensity for
//! all, and a shutdown that stops them all at once. It can be a child of a
//! regular supervisor ([`DynamicSupervisorBuilder::into_child`]).
//!
//! # What a child does cannot take its supervisor down
//!
//! Panics and errors in a child's handlers arrive as exits; a factory that
//! panics is a failed start; an escalation handler or observer that panics is
//! logged. Observers run in a task of their own, fed through a bounded
//! channel, so a slow one stalls nothing (see [`event`]). A child killed from outside is restarted like any failed child.
//!
//! A child whose handler blocks its thread (synchronous I/O, a long
//! computation) cannot be stopped until the handler returns: its supervisor
//! waits the kill grace, records it as killed and goes on. Blocking a tokio
//! worker also strands whatever task was just woken on that worker (tokio's
//! other workers cannot steal it), which may be a supervisor's: run blocking
//! work in `tokio::task::spawn_blocking` or `block_in_place`.

mod dynamic;
mod error;
pub mod escalation;
pub mod event;
mod exit;
mod factory;
mod incarnation;
mod intensity;
mod introspection;
pub mod panic_report;
mod path;
pub mod request;
pub mod runtime;
mod shutdown_clock;
mod spec;
mod supervisor;
mod uplink;

pub use dynamic::{DynamicSupervisor, DynamicSupervisorBuilder};
pub use error::{CallError, CallTimeout, ChildError, NoProc, SpawnError, SpecError};
pub use escalation::{
    ChildFailure, Concern, Disposition, Escalation, EscalationError, EscalationHandler, EscalationKind, Escalator,
    GiveUp, Responder,
};
pub use event::{DEFAULT_OBSERVER_CAPACITY, OBSERVER_FLUSH_GRACE, Observer, SupervisorEvent};
pub use exit::{ExitReason, Failure};
pub use factory::{BoxFuture, ChildFactory, StartContext, StartError};
pub use incarnation::Incarnations;
pub use intensity::{Intensity, IntensityUsed};
pub use introspection::{ChildCounts, ChildInfo, ChildState, NodeSnapshot, NodeState, TreeSnapshot};
pub use path::ChildPath;
pub use request::{RequestError, request};
pub use spec::{ChildKind, ChildSpec, Restart, Shutdown};
pub use supervisor::{AutoShutdown, DEFAULT_KILL_GRACE, Strategy, Supervisor, SupervisorBuilder};
pub use warden_resilience::Backoff;

#[doc(no_inline)]
pub use ractor;
