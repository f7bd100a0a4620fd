//! Fault injection at named points: [`Faults`].
//!
//! A layer that wants to be testable under faults calls
//! [`Faults::inject`] with a point name just before it does its work (the
//! tools layer uses `tool/<name>`, the model layer `model/<name>`, and a
//! [`Faulty`](crate::Faulty) actor its child path). What happens there is
//! decided by a plan of [`FaultRule`]s: fail a fraction of the calls, delay
//! them, or panic. A plan is seeded, and each point's decisions depend only on
//! the seed and on how many times that point was reached, so a run with the same
//! seed and the same calls per point injects the same faults, whatever the
//! interleaving between points.
//!
//! [`Faults::none`] (also the `Default`) injects nothing and costs one branch,
//! so production code can keep the hook.
//!
//! ```
//! use std::time::Duration;
//! use warden_chaos::{FaultAction, FaultRule, Faults};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let faults = Faults::builder(7)
//!     .rule(FaultRule::new("tool/search".parse()?, FaultAction::Fail, 0.5))
//!     .rule(FaultRule::new("model/*".parse()?, FaultAction::Delay(Duration::from_millis(1)), 1.0))
//!     .build();
//!
//! let failed = (0..100).filter(|_| faults.try_inject("tool/search").is_err()).count();
//! assert!(failed > 20 && failed < 80);
//! faults.inject("model/gpt").await?; // delayed, then allowed
//! assert_eq!(faults.log().len(), failed + 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::filter::PathFilter;

/// What a rule does to a call it picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// The call fails with [`InjectedFault`].
    Fail,
    /// The call waits this long, then goes ahead.
    Delay(Duration),
    /// The caller panics (inside [`Faults::inject`]), as a bug would.
    Panic,
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fail => f.write_str("fail"),
            Self::Delay(d) => write!(f, "delay {d:?}"),
            Self::Panic => f.write_str("panic"),
        }
    }
}

/// One rule of a fault plan: at points matching `filter`, apply `action` to
/// `fraction` of the calls (0.0 to 1.0), at most `limit` times.
#[derive(Clone, Debug)]
pub struct FaultRule {
    filter: PathFilter,
    action: FaultAction,
    fraction: f64,
    limit: Option<u64>,
}

impl FaultRule {
    /// A rule. `fraction` is clamped to `0.0..=1.0` (NaN counts as 0).
    pub fn new(filter: PathFilter, action: FaultAction, fraction: f64) -> Self {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        Self {
            filter,
            action,
            fraction,
            limit: None,
        }
    }

    /// Applies the action at most `limit` times in all.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A fault that [`Faults::inject`] injected. Transient: the same call may
/// succeed when tried again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fault injected at {point}")]
pub struct InjectedFault {
    /// The point it was injected at.
    pub point: Arc<str>,
}

/// One fault that fired: when (since the plan was built), where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// Time since the plan was built.
    pub at: Duration,
    /// The point.
    pub point: Arc<str>,
    /// What was done.
    pub action: FaultAction,
}

/// A seeded fault plan shared by every point that consults it (cheap to
/// clone), or no plan at all.
#[derive(Clone, Default)]
pub struct Faults {
    plan: Option<Arc<Plan>>,
}

struct Plan {
    seed: u64,
    rules: Vec<FaultRule>,
    started: Instant,
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// How many times each (rule, point) was consulted.
    reached: HashMap<(usize, Arc<str>), u64>,
    /// How many times each rule fired.
    fired: Vec<u64>,
    /// One-shot faults armed for an exact point.
    armed: HashMap<Arc<str>, FaultAction>,
    log: Vec<FaultRecord>,
}

/// Builds a [`Faults`] plan.
#[derive(Debug)]
pub struct FaultsBuilder {
    seed: u64,
    rules: Vec<FaultRule>,
}

impl FaultsBuilder {
    /// Adds a rule. Rules are consulted in order; the first that fires wins.
    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The plan.
    pub fn build(self) -> Faults {
        let book = Book {
            fired: vec![0; self.rules.len()],
            ..Book::default()
        };
        Faults {
            plan: Some(Arc::new(Plan {
                seed: self.seed,
                rules: self.rules,
                started: Instant::now(),
                book: Mutex::new(book),
            })),
        }
    }
}

impl Faults {
    /// No plan: [`inject`](Self::inject) always goes ahead at once.
    pub fn none() -> Self {
        Self::default()
    }

    /// A plan seeded with `seed`.
    pub fn builder(seed: u64) -> FaultsBuilder {
        FaultsBuilder {
            seed,
            rules: Vec::new(),
        }
    }

    /// True if this is a plan (even one with no rules).
    pub fn is_active(&self) -> bool {
        self.plan.is_some()
    }

    /// Consults the plan at `point`: waits if a delay is chosen, then returns
    /// `Ok(())` to go ahead or the injected failure.
    ///
    /// # Errors
    ///
    /// [`InjectedFault`] when the plan fails this call.
    ///
    /// # Panics
    ///
    /// When the plan chooses [`FaultAction::Panic`] for this call: that is the
    /// fault.
    ///
    /// # Cancellation
    ///
    /// Dropping the future during an injected delay abandons the call; the
    /// fault is logged all the same.
    pub async fn inject(&self, point: &str) -> Result<(), InjectedFault> {
        match self.decide(point) {
            None => Ok(()),
            Some(FaultAction::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Some(action) => apply(point, action),
        }
    }

    /// Like [`inject`](Self::inject), for code that cannot wait: a delay is
    /// logged but not waited for.
    ///
    /// # Errors
    ///
    /// [`InjectedFault`] when the plan fails this call.
    ///
    /// # Panics
    ///
    /// When the plan chooses [`FaultAction::Panic`] for this call.
    pub fn try_inject(&self, point: &str) -> Result<(), InjectedFault> {
        match self.decide(point) {
            None | Some(FaultAction::Delay(_)) => Ok(()),
            Some(action) => apply(point, action),
        }
    }

    /// Arms a one-shot fault: the next call at exactly `point` gets `action`,
    /// whatever the rules say. Replaces a fault already armed there.
    ///
    /// Does nothing on [`Faults::none`].
    pub fn arm(&self, point: &str, action: FaultAction) {
        if let Some(plan) = &self.plan {
            plan.book().armed.insert(Arc::from(point), action);
        }
    }

    /// Every fault that fired so far, in order.
    pub fn log(&self) -> Vec<FaultRecord> {
        self.plan
            .as_ref()
            .map(|plan| plan.book().log.clone())
            .unwrap_or_default()
    }

    fn decide(&self, point: &str) -> Option<FaultAction> {
        let plan = self.plan.as_ref()?;
        let mut book = plan.book();
        let action = book.armed.remove(point).or_else(|| {
            plan.rules.iter().enumerate().find_map(|(index, rule)| {
                if !rule.filter.matches(point) || rule.limit.is_some_and(|limit| book.fired[index] >= limit) {
                    return None;
                }
                let reached = book.reached.entry((index, Arc::from(point))).or_insert(0);
                *reached += 1;
                let roll = roll(plan.seed, index, point, *reached);
                (roll < rule.fraction).then(|| {
                    book.fired[index] += 1;
                    rule.action
                })
            })
        })?;
        let record = FaultRecord {
            at: plan.started.elapsed(),
            point: Arc::from(point),
            action,
        };
        tracing::debug!(target: "warden::chaos", point, %action, "fault injected");
        book.log.push(record);
        Some(action)
    }
}

impl Plan {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic injected by this plan never happens while the lock is held.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn apply(point: &str, action: FaultAction) -> Result<(), InjectedFault> {
    match action {
        FaultAction::Panic => panic!("warden-chaos: injected panic at {point}"),
        _ => Err(InjectedFault { point: point.into() }),
    }
}

/// A number in `0.0..1.0` that depends only on the seed, the rule, the point
/// and how many times the point was reached.
fn roll(seed: u64, rule: usize, point: &str, reached: u64) -> f64 {
    let mut hasher = DefaultHasher::new();
    (seed, rule, point, reached).hash(&mut hasher);
    fastrand::Rng::with_seed(hasher.finish()).f64()
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.plan {
            None => f.write_str("Faults::none"),
            Some(plan) => f
                .debug_struct("Faults")
                .field("seed", &plan.seed)
                .field("rules", &plan.rules)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, action: FaultAction, fraction: f64) -> FaultRule {
        FaultRule::new(pattern.parse().unwrap(), action, fraction)
    }

    fn outcomes(faults: &Faults, point: &str, n: usize) -> Vec<bool> {
        (0..n).map(|_| faults.try_inject(point).is_err()).collect()
    }

    #[test]
    fn none_injects_nothing() {
        let faults = Faults::none();
        assert!(outcomes(&faults, "tool/x", 100).iter().all(|failed| !failed));
        assert!(faults.log().is_empty());
    }

    #[test]
    fn the_same_seed_replays_the_same_faults_per_point() {
        let plan = |seed| {
            Faults::builder(seed)
                .rule(rule("tool/*", FaultAction::Fail, 0.3))
                .build()
        };
        let (a, b) = (plan(7), plan(7));
        // Interleave points differently: each point's sequence is the same.
        let a_x = outcomes(&a, "tool/x", 50);
        let a_y = outcomes(&a, "tool/y", 50);
        let b_y = outcomes(&b, "tool/y", 50);
        let b_x = outcomes(&b, "tool/x", 50);
        assert_eq!(a_x, b_x);
        assert_eq!(a_y, b_y);
        assert_ne!(outcomes(&plan(8), "tool/x", 50), a_x);
    }

    #[test]
    fn fractions_and_limits_hold() {
        let faults = Faults::builder(1)
            .rule(rule("**", FaultAction::Fail, 1.0).limit(3))
            .build();
        assert_eq!(outcomes(&faults, "a", 10).iter().filter(|f| **f).count(), 3);
        let never = Faults::builder(1).rule(rule("**", FaultAction::Fail, 0.0)).build();
        assert!(outcomes(&never, "a", 100).iter().all(|f| !f));
        assert_eq!(faults.log().len(), 3);
    }

    #[test]
    fn an_armed_fault_fires_once_at_its_point() {
        let faults = Faults::builder(1).build();
        faults.arm("root/w", FaultAction::Fail);
        assert!(faults.try_inject("root/other").is_ok());
        assert!(faults.try_inject("root/w").is_err());
        assert!(faults.try_inject("root/w").is_ok());
    }

    #[test]
    fn an_injected_panic_panics() {
        let faults = Faults::builder(1).rule(rule("p", FaultAction::Panic, 1.0)).build();
        let caught = std::panic::catch_unwind(|| faults.try_inject("p"));
        assert!(caught.is_err());
        assert_eq!(faults.log()[0].action, FaultAction::Panic);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_waits_then_goes_ahead() {
        let faults = Faults::builder(1)
            .rule(rule("slow", FaultAction::Delay(Duration::from_secs(5)), 1.0))
            .build();
        let start = Instant::now();
        faults.inject("slow").await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
