//! [`ChaosMonkey`]: kills, panics and stops chosen children of a running tree,
//! on a seeded schedule, and reports what it did.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use warden_supervisor::{ChildKind, ChildPath, Supervisor};

use crate::faults::{FaultAction, Faults};
use crate::filter::PathFilter;

/// The stop reason the monkey gives for [`ChaosAction::StopWithError`].
pub const CHAOS_STOP_REASON: &str = "chaos: stopped with error";

/// What the monkey does to the child it picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChaosAction {
    /// Kill it: untrappable, no cleanup (`ActorCell::kill`). A supervisor that
    /// is killed takes its subtree with it.
    Kill,
    /// Stop it with an error reason ([`CHAOS_STOP_REASON`]); its `post_stop`
    /// runs, and its supervisor sees an abnormal exit.
    StopWithError,
    /// Make it panic in the handler of its next message. Only a child wrapped
    /// in [`Faulty`](crate::Faulty) on the monkey's [`Faults`] can be made to
    /// panic from outside; others are skipped.
    Panic,
}

impl fmt::Display for ChaosAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kill => "kill",
            Self::StopWithError => "stop-with-error",
            Self::Panic => "panic",
        })
    }
}

/// What became of one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionOutcome {
    /// Done: killed or stopped.
    Done,
    /// Armed: the child panics on its next message.
    Armed,
    /// The chosen child was not running (restarting, or terminated); nothing done.
    NotRunning,
    /// [`ChaosAction::Panic`] without a fault plan to arm it in.
    Unsupported,
}

/// One action of the monkey.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ActionRecord {
    /// Time since the monkey started.
    pub at: Duration,
    /// When, on the tokio clock.
    pub instant: Instant,
    /// The child it picked.
    pub path: ChildPath,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// What it did.
    pub action: ChaosAction,
    /// What became of it.
    pub outcome: ActionOutcome,
}

/// What a monkey did: every action in order, and the seed to replay it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChaosReport {
    /// The seed: the same seed, on a tree that looks the same at each tick,
    /// makes the same choices.
    pub seed: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Every action, in order.
    pub actions: Vec<ActionRecord>,
}

impl ChaosReport {
    /// Actions that took effect (killed, stopped, or armed).
    pub fn effective(&self) -> impl Iterator<Item = &ActionRecord> {
        self.actions
            .iter()
            .filter(|a| matches!(a.outcome, ActionOutcome::Done | ActionOutcome::Armed))
    }

    /// Bytes the report holds on the heap: for memory figures that leave the
    /// instrument out.
    pub fn heap_bytes(&self) -> usize {
        self.actions.capacity() * std::mem::size_of::<ActionRecord>()
    }

    /// How many actions of `action` took effect.
    pub fn count(&self, action: ChaosAction) -> usize {
        self.effective().filter(|a| a.action == action).count()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos monkey, seed {}: {} actions in {:?}",
            self.seed,
            self.actions.len(),
            self.elapsed
        )?;
        for a in &self.actions {
            writeln!(
                f,
                "  {:>10.3?}  {:<16} {:<40} {:?}",
                a.at,
                a.action.to_string(),
                a.path.as_str(),
                a.outcome
            )?;
        }
        Ok(())
    }
}

/// When the monkey acts.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Schedule {
    /// Once every period.
    Every(Duration),
    /// At random, this many times a second on average (exponential gaps drawn
    /// from the seeded generator).
    Rate(f64),
}

/// A chaos monkey for a running tree.
///
/// It walks the tree from the root at every tick, gathers the children whose
/// path matches one of its targets (workers and supervisors alike: picking a
/// supervisor takes its whole subtree down), picks one and an action with its
/// seeded generator, and acts. It stops after `max_actions` actions or after
/// `duration`, whichever comes first; with neither it runs until
/// [`ChaosHandle::stop`].
///
/// ```
/// use std::time::Duration;
/// use warden_chaos::{ChaosAction, ChaosMonkey, Schedule};
/// use warden_supervisor::{ChildSpec, Supervisor};
/// # use ractor::{Actor, ActorProcessingErr, ActorRef};
/// # struct Worker;
/// # impl Actor for Worker {
/// #     type Msg = (); type State = (); type Arguments = ();
/// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = Supervisor::builder("root")
///     .intensity(100, Duration::from_secs(1))
///     .children((0..4).map(|i| ChildSpec::actor(format!("w{i}"), || (Worker, ()))))
///     .spawn()
///     .await?;
/// let report = ChaosMonkey::new(&root)
///     .seed(7)
///     .target("root/w*".parse()?)
///     .actions([ChaosAction::Kill, ChaosAction::StopWithError])
///     .schedule(Schedule::Every(Duration::from_millis(1)))
///     .max_actions(10)
///     .run()
///     .await;
/// assert_eq!(report.actions.len(), 10);
/// root.stop().await;
/// # Ok(()) }
/// ```
pub struct ChaosMonkey {
    root: Supervisor,
    seed: u64,
    targets: Vec<PathFilter>,
    actions: Vec<ChaosAction>,
    schedule: Schedule,
    max_actions: Option<u64>,
    duration: Option<Duration>,
    faults: Faults,
    on_action: Option<ActionHook>,
}

impl fmt::Debug for ChaosMonkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosMonkey")
            .field("root", self.root.path())
            .field("seed", &self.seed)
            .field("targets", &self.targets)
            .field("actions", &self.actions)
            .field("schedule", &self.schedule)
            .field("max_actions", &self.max_actions)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// A callback the monkey calls after each action.
type ActionHook = Arc<dyn Fn(&ActionRecord) + Send + Sync>;

impl ChaosMonkey {
    /// A monkey for the tree under `root`. Defaults: seed 0, every child below
    /// the root, kills only, one action every 100 ms, no limit.
    pub fn new(root: &Supervisor) -> Self {
        Self {
            root: root.clone(),
            seed: 0,
            targets: Vec::new(),
            actions: vec![ChaosAction::Kill],
            schedule: Schedule::Every(Duration::from_millis(100)),
            max_actions: None,
            duration: None,
            faults: Faults::none(),
            on_action: None,
        }
    }

    /// Seeds the generator behind every choice (schedule gaps, child, action).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Adds a target: children whose path matches may be picked. With no
    /// target, every child below the root may be.
    pub fn target(mut self, filter: PathFilter) -> Self {
        self.targets.push(filter);
        self
    }

    /// The actions to pick from, uniformly (repeat one to weight it). An empty
    /// list keeps the current one.
    pub fn actions(mut self, actions: impl IntoIterator<Item = ChaosAction>) -> Self {
        let actions: Vec<_> = actions.into_iter().collect();
        if !actions.is_empty() {
            self.actions = actions;
        }
        self
    }

    /// When to act.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Stops after this many actions (skipped ones count).
    pub fn max_actions(mut self, max: u64) -> Self {
        self.max_actions = Some(max);
        self
    }

    /// Stops after this long.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// The fault plan that [`ChaosAction::Panic`] arms panics in: the one the
    /// tree's [`Faulty`](crate::Faulty) children consult.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Calls `hook` after each action (for progress displays and recovery
    /// probes). Keep it quick.
    pub fn on_action(mut self, hook: impl Fn(&ActionRecord) + Send + Sync + 'static) -> Self {
        self.on_action = Some(Arc::new(hook));
        self
    }

    /// Runs the monkey until its limit and returns its report.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops the monkey; its report is lost.
    pub async fn run(self) -> ChaosReport {
        let stop = Arc::new(AtomicBool::new(false));
        self.run_until(stop, Arc::new(AtomicU64::new(0))).await
    }

    /// Starts the monkey on its own task.
    pub fn start(self) -> ChaosHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let seed = self.seed;
        let task = tokio::spawn(self.run_until(stop.clone(), done.clone()));
        ChaosHandle { seed, stop, done, task }
    }

    async fn run_until(self, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> ChaosReport {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let started = Instant::now();
        let mut next = started;
        let mut actions = Vec::new();
        let end = self.duration.map(|d| started + d);
        loop {
            if self.max_actions.is_some_and(|max| done.load(Ordering::Relaxed) >= max) {
                break;
            }
            next += self.gap(&mut rng);
            // Past the end by the schedule, or by the clock (a zero gap never moves `next`).
            if let Some(end) = end.filter(|&end| next > end || Instant::now() >= end) {
                sleep_until_or_stopped(end, &stop).await;
                break;
            }
            if !sleep_until_or_stopped(next, &stop).await {
                break;
            }
            let record = self.act(&mut rng, started).await;
            if let Some(record) = record {
                tracing::info!(
                    target: "warden::chaos",
                    path = %record.path, action = %record.action, outcome = ?record.outcome,
                    "chaos monkey acted"
                );
                if let Some(hook) = &self.on_action {
                    hook(&record);
                }
                actions.push(record);
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        ChaosReport {
            seed: self.seed,
            elapsed: started.elapsed(),
            actions,
        }
    }

    fn gap(&self, rng: &mut fastrand::Rng) -> Duration {
        match self.schedule {
            Schedule::Every(period) => period,
            Schedule::Rate(per_second) if per_second > 0.0 && per_second.is_finite() => {
                // Exponential gaps: a Poisson process of the given rate.
                let u = 1.0 - rng.f64(); // in (0, 1]
                Duration::from_secs_f64((-u.ln() / per_second).min(3600.0))
            }
            Schedule::Rate(_) => Duration::from_secs(3600),
        }
    }

    /// Picks a child and an action and acts. `None` when no child matches.
    async fn act(&self, rng: &mut fastrand::Rng, started: Instant) -> Option<ActionRecord> {
        let mut candidates = Vec::new();
        collect(self.root.clone(), &self.targets, &mut candidates).await;
        let action = self.actions[rng.usize(..self.actions.len())];
        if candidates.is_empty() {
            return None;
        }
        let candidate = candidates.swap_remove(rng.usize(..candidates.len()));
        let outcome = match (&candidate.cell, action) {
            (None, _) => ActionOutcome::NotRunning,
            (Some(cell), ChaosAction::Kill) => {
                cell.kill();
                ActionOutcome::Done
            }
            (Some(cell), ChaosAction::StopWithError) => {
                cell.stop(Some(CHAOS_STOP_REASON.to_owned()));
                ActionOutcome::Done
            }
            (Some(_), ChaosAction::Panic) if self.faults.is_active() => {
                self.faults.arm(candidate.path.as_str(), FaultAction::Panic);
                ActionOutcome::Armed
            }
            (Some(_), ChaosAction::Panic) => ActionOutcome::Unsupported,
        };
        let instant = Instant::now();
        Some(ActionRecord {
            at: instant - started,
            instant,
            path: candidate.path,
            kind: candidate.kind,
            action,
            outcome,
        })
    }
}

struct Candidate {
    path: ChildPath,
    kind: ChildKind,
    cell: Option<ractor::ActorCell>,
}

/// Gathers, depth first in start order, the children matching `targets`.
fn collect<'a>(supervisor: Supervisor, targets: &'a [PathFilter], out: &'a mut Vec<Candidate>) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        let Ok(children) = supervisor.which_children().await else {
            return;
        };
        for child in children {
            let matches = targets.is_empty() || targets.iter().any(|t| t.matches(child.path.as_str()));
            let below = child.supervisor();
            if matches {
                out.push(Candidate {
                    path: child.path.clone(),
                    kind: child.kind,
                    cell: child.state.actor().cloned(),
                });
            }
            if let Some(sub) = below {
                collect(sub, targets, out).await;
            }
        }
    })
}

/// Sleeps until `deadline`; false if asked to stop meanwhile.
async fn sleep_until_or_stopped(deadline: Instant, stop: &AtomicBool) -> bool {
    // The stop flag is checked at least every 50 ms.
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        tokio::time::sleep_until(deadline.min(now + Duration::from_millis(50))).await;
    }
}

/// A monkey running on its own task.
#[derive(Debug)]
pub struct ChaosHandle {
    seed: u64,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    task: JoinHandle<ChaosReport>,
}

impl ChaosHandle {
    /// How many actions it has taken so far (skipped ones included).
    pub fn actions_so_far(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// True once it has reached its limit.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it (at once, or when its limit is reached) and returns its report.
    ///
    /// # Panics
    ///
    /// If the monkey's task panicked (a bug in an `on_action` hook).
    pub async fn stop(self) -> ChaosReport {
        self.stop.store(true, Ordering::Relaxed);
        self.wait().await
    }

    /// Waits for it to reach its limit, and returns its report.
    ///
    /// # Panics
    ///
    /// If the monkey's task panicked (a bug in an `on_action` hook).
    pub async fn wait(self) -> ChaosReport {
        match self.task.await {
            Ok(report) => report,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // The runtime is shutting down: the monkey was cancelled.
            Err(_) => ChaosReport {
                seed: self.seed,
                elapsed: Duration::ZERO,
                actions: Vec::new(),
            },
        }
    }
}
