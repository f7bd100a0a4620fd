//! Chaos testing for Warden supervision trees: kill agents and inject faults on
//! purpose, then prove that nothing was lost.
//!
//! Our users run chaos tests against the trees they ship. This crate gives them
//! (and us) four parts, used together in the example below:
//!
//! * [`ChaosMonkey`] attaches to a running tree and, on a seeded schedule, kills
//!   (untrappably), stops with an error, or makes panic a child picked among
//!   those matching a [`PathFilter`] such as `root/workers/*`: one worker, or a
//!   whole subtree when it picks a supervisor. Every choice comes from the seed,
//!   and every action is logged and returned in a [`ChaosReport`].
//! * [`Faults`] is a seeded fault plan consulted at named points: fail, delay
//!   or panic a fraction of the calls. [`Faulty`] wraps any actor so that its
//!   messages consult it; [`FaultLayer`] in a tool stack consults it at
//!   `tool/<name>`, and [`faulty_model`] at `model/<name>`. The tools and
//!   agents crates know nothing of chaos: both plug in as their middleware.
//! * [`ChaosWatch`] records what the tree did: every supervisor event, and
//!   every escalation that reached the root handler.
//! * [`Invariants`] checks, after the chaos, that the tree is back to its
//!   declared shape, that no actor leaked, that every restart is explained by
//!   an action or a fault, and that every give-up escalated to the root.
//!
//! The other half of surviving chaos is on the caller's side:
//! [`warden_supervisor::request()`] answers every request exactly once (the
//! reply, or a typed error as soon as the worker dies), so a caller can retry
//! instead of hanging.
//!
//! # A chaos test to paste into your own suite
//!
//! ```
//! use std::time::Duration;
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use warden_chaos::{Baseline, ChaosAction, ChaosMonkey, ChaosWatch, Faults, Faulty, Invariants, Schedule};
//! use warden_supervisor::{Strategy, Supervisor};
//!
//! struct Worker; // your actor
//! impl Actor for Worker {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Build the tree as in production, with the watch plugged in at the root.
//! let watch = ChaosWatch::new();
//! let faults = Faults::builder(7).build(); // no rules: only what the monkey arms
//! let pool = (0..16).map(|i| Faulty::child_spec(format!("w{i}"), faults.clone(), || (Worker, ())));
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::OneForOne)
//!     .intensity(1_000, Duration::from_secs(1))
//!     .observer(watch.observer())
//!     .escalation_handler(watch.root_handler())
//!     .child(Supervisor::builder("workers").intensity(1_000, Duration::from_secs(1)).children(pool).into_child())
//!     .spawn()
//!     .await?;
//! let baseline = Baseline::capture(&root).await?;
//!
//! // 2. Unleash the monkey (in your test, drive your real workload meanwhile).
//! let chaos = ChaosMonkey::new(&root)
//!     .seed(7) // a failing run is replayed by its seed
//!     .target("root/workers/*".parse()?)
//!     .actions([ChaosAction::Kill, ChaosAction::StopWithError])
//!     .faults(faults.clone())
//!     .schedule(Schedule::Rate(500.0))
//!     .max_actions(25)
//!     .run()
//!     .await;
//!
//! // 3. Check that the tree recovered and nothing leaked.
//! let report = Invariants::new(&baseline, &watch).chaos(&chaos).faults(&faults).check(&root).await;
//! report.assert_ok();
//! root.stop().await;
//! # Ok(()) }
//! ```

mod faults;
mod faulty;
mod filter;
mod invariants;
mod model;
mod monkey;
mod tool;
mod watch;

pub use faults::{FaultAction, FaultRecord, FaultRule, Faults, FaultsBuilder, InjectedFault};
pub use faulty::Faulty;
pub use filter::{FilterError, PathFilter};
pub use invariants::{Baseline, InvariantReport, Invariants, Violation, live_tasks};
pub use model::{FaultyModel, faulty_model};
pub use monkey::{
    ActionOutcome, ActionRecord, CHAOS_STOP_REASON, ChaosAction, ChaosHandle, ChaosMonkey, ChaosReport, Schedule,
};
pub use tool::{FaultLayer, FaultService};
pub use watch::{ChaosWatch, EscalationRecord};
