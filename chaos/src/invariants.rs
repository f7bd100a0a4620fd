//! The checks to run after chaos: [`Baseline`], [`Invariants`] and their
//! [`InvariantReport`].
//!
//! 1. **Shape.** Every permanent child of the tree as it was declared is
//!    running again, except inside a branch whose supervisor gave up and is
//!    gone (those are reported as given up, not as missing).
//! 2. **No leaks.** The number of live tokio tasks (each actor is one) is back
//!    to the baseline.
//! 3. **Every restart is accounted for** by a monkey action or an injected
//!    fault at that child or below it.
//! 4. **Every give-up escalated**, and the escalation reached the root handler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use warden_supervisor::{ChildKind, ChildPath, NoProc, NodeState, Restart, Supervisor, SupervisorEvent, TreeSnapshot};

use crate::faults::{FaultAction, Faults};
use crate::monkey::ChaosReport;
use crate::watch::ChaosWatch;

/// The number of tasks alive on the current tokio runtime (every ractor actor
/// is one task); 0 outside a runtime.
pub fn live_tasks() -> usize {
    tokio::runtime::Handle::try_current()
        .map(|handle| handle.metrics().num_alive_tasks())
        .unwrap_or(0)
}

/// The tree's declared shape and the live task count, taken before chaos.
#[derive(Clone, Debug)]
pub struct Baseline {
    nodes: Vec<(ChildPath, ChildKind, Option<Restart>)>,
    live_tasks: usize,
}

impl Baseline {
    /// Takes the baseline of the tree under `root`. Take it once the tree has
    /// started and before anything else (a monkey, your own tasks) runs.
    ///
    /// # Errors
    ///
    /// [`NoProc`] if the root is not running.
    pub async fn capture(root: &Supervisor) -> Result<Self, NoProc> {
        let snapshot = root.snapshot().await?;
        Ok(Self {
            nodes: snapshot
                .nodes()
                .into_iter()
                .map(|n| (n.path.clone(), n.kind, n.restart))
                .collect(),
            live_tasks: live_tasks(),
        })
    }

    /// Live tasks when the baseline was taken.
    pub fn live_tasks(&self) -> usize {
        self.live_tasks
    }

    /// Nodes (supervisors and workers, the root included) in the declared shape.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A permanent child of the declared shape is not running, and no
    /// supervisor above it gave up.
    NotRunning {
        /// The child.
        path: ChildPath,
    },
    /// More tasks are alive than before the chaos.
    Leaked {
        /// Live tasks in the baseline.
        before: usize,
        /// Live tasks after settling.
        after: usize,
    },
    /// A restart that no monkey action and no injected fault explains.
    UnexplainedRestart {
        /// The child that was restarted.
        path: ChildPath,
    },
    /// A supervisor gave up and no escalation of it reached the root handler.
    GaveUpWithoutEscalation {
        /// The supervisor.
        supervisor: ChildPath,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRunning { path } => write!(f, "permanent child {path} is not running"),
            Self::Leaked { before, after } => {
                write!(f, "{after} tasks alive, {before} before: {} leaked", after - before)
            }
            Self::UnexplainedRestart { path } => write!(f, "restart of {path} not explained by chaos or a fault"),
            Self::GaveUpWithoutEscalation { supervisor } => {
                write!(f, "{supervisor} gave up but no escalation reached the root handler")
            }
        }
    }
}

/// What the checks found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct InvariantReport {
    /// Every broken invariant; empty when all hold.
    pub violations: Vec<Violation>,
    /// Restarts seen.
    pub restarts: usize,
    /// Supervisors that gave up.
    pub gave_up: Vec<ChildPath>,
    /// Escalations that reached the root handler.
    pub escalations_at_root: usize,
    /// Nodes running in the declared shape / now.
    pub running: (usize, usize),
    /// Live tasks before / after.
    pub live_tasks: (usize, usize),
    /// How long the tree took to settle (or the settle limit, if it did not).
    pub settled_in: Duration,
}

impl InvariantReport {
    /// True when every invariant holds.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics with the whole report unless every invariant holds: for tests.
    ///
    /// # Panics
    ///
    /// When an invariant is broken.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "chaos invariants broken:\n{self}");
    }
}

impl fmt::Display for InvariantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "restarts {}, gave up {}, escalations at root {}, running {} -> {}, live tasks {} -> {}, settled in {:?}",
            self.restarts,
            self.gave_up.len(),
            self.escalations_at_root,
            self.running.0,
            self.running.1,
            self.live_tasks.0,
            self.live_tasks.1,
            self.settled_in
        )?;
        for violation in &self.violations {
            writeln!(f, "  VIOLATION: {violation}")?;
        }
        Ok(())
    }
}

/// The invariant checks, configured.
///
/// ```
/// use std::time::Duration;
/// use warden_chaos::{Baseline, ChaosMonkey, ChaosWatch, Invariants, Schedule};
/// use warden_supervisor::{ChildSpec, Supervisor};
/// # use ractor::{Actor, ActorProcessingErr, ActorRef};
/// # struct Worker;
/// # impl Actor for Worker {
/// #     type Msg = (); type State = (); type Arguments = ();
/// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let watch = ChaosWatch::new();
/// let root = Supervisor::builder("root")
///     .intensity(1_000, Duration::from_secs(1))
///     .observer(watch.observer())
///     .escalation_handler(watch.root_handler())
///     .children((0..8).map(|i| ChildSpec::actor(format!("w{i}"), || (Worker, ()))))
///     .spawn()
///     .await?;
/// let baseline = Baseline::capture(&root).await?;
///
/// let chaos = ChaosMonkey::new(&root)
///     .seed(42)
///     .schedule(Schedule::Every(Duration::from_millis(1)))
///     .max_actions(20)
///     .run()
///     .await;
///
/// let report = Invariants::new(&baseline, &watch).chaos(&chaos).check(&root).await;
/// report.assert_ok();
/// assert!(report.restarts >= 1 && report.restarts <= chaos.effective().count());
/// root.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Invariants<'a> {
    baseline: &'a Baseline,
    watch: &'a ChaosWatch,
    chaos: Vec<&'a ChaosReport>,
    faults: Vec<&'a Faults>,
    settle: Duration,
    task_slack: usize,
}

impl<'a> Invariants<'a> {
    /// Checks against `baseline`, with what `watch` recorded.
    pub fn new(baseline: &'a Baseline, watch: &'a ChaosWatch) -> Self {
        Self {
            baseline,
            watch,
            chaos: Vec::new(),
            faults: Vec::new(),
            settle: Duration::from_secs(10),
            task_slack: 0,
        }
    }

    /// A monkey's report: its actions explain restarts.
    pub fn chaos(mut self, report: &'a ChaosReport) -> Self {
        self.chaos.push(report);
        self
    }

    /// A fault plan: its fired faults explain restarts.
    pub fn faults(mut self, faults: &'a Faults) -> Self {
        self.faults.push(faults);
        self
    }

    /// How long to wait for the tree to get back into shape and for tasks to
    /// end (default 10 s).
    pub fn settle(mut self, limit: Duration) -> Self {
        self.settle = limit;
        self
    }

    /// Tasks above the baseline that are not a leak (your own tasks still
    /// running, for example). Default 0.
    pub fn task_slack(mut self, slack: usize) -> Self {
        self.task_slack = slack;
        self
    }

    /// Waits for the tree to settle (checking every 10 ms, up to the settle
    /// limit), then checks every invariant.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops the check; nothing else happens.
    pub async fn check(self, root: &Supervisor) -> InvariantReport {
        let started = Instant::now();
        let deadline = started + self.settle;
        loop {
            let snapshot = root.snapshot().await.ok();
            let gave_up = self.gave_up();
            let shape = self.shape_violations(snapshot.as_ref(), &gave_up);
            let tasks = live_tasks();
            let settled = shape.is_empty() && tasks <= self.baseline.live_tasks + self.task_slack;
            if settled || Instant::now() >= deadline {
                return self.report(snapshot.as_ref(), gave_up, shape, tasks, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The supervisors that gave up, read from the record in place. (Not by
    /// `collect`ing from an owned copy of the events: std reuses the source's
    /// buffer for an in-place `collect`, so the list, usually empty, kept the
    /// whole copy alive inside the report, about 200 bytes a kill in a soak.)
    fn gave_up(&self) -> Vec<ChildPath> {
        // Each supervisor once, in the order of its first give-up.
        let mut gave_up: Vec<ChildPath> = self.watch.with_events(|events| {
            let mut seen = HashSet::new();
            events
                .iter()
                .filter_map(|(_, event)| match event {
                    SupervisorEvent::GaveUp { path, .. } if seen.insert(path) => Some(path.clone()),
                    _ => None,
                })
                .collect()
        });
        gave_up.shrink_to_fit();
        gave_up
    }

    fn shape_violations(&self, snapshot: Option<&TreeSnapshot>, gave_up: &[ChildPath]) -> Vec<Violation> {
        let states: HashMap<&str, NodeState> = snapshot
            .map(|s| s.nodes().into_iter().map(|n| (n.path.as_str(), n.state)).collect())
            .unwrap_or_default();
        let running = |path: &str| states.get(path) == Some(&NodeState::Running);
        let root_path = self.baseline.nodes.first().map(|(path, _, _)| path.as_str());
        self.baseline
            .nodes
            .iter()
            .filter(|(path, _, restart)| {
                // The root (no restart type) and permanent children must be up.
                matches!(restart, None | Some(Restart::Permanent)) && !running(path.as_str())
            })
            .filter(|(path, _, _)| {
                // Not inside a branch that gave up and is gone.
                !gave_up.iter().any(|sup| {
                    is_within(path.as_str(), sup.as_str())
                        && (!running(sup.as_str()) || Some(sup.as_str()) == root_path && snapshot.is_none())
                })
            })
            .map(|(path, _, _)| Violation::NotRunning { path: path.clone() })
            .collect()
    }

    fn report(
        &self,
        snapshot: Option<&TreeSnapshot>,
        gave_up: Vec<ChildPath>,
        mut violations: Vec<Violation>,
        tasks: usize,
        settled_in: Duration,
    ) -> InvariantReport {
        let before = self.baseline.live_tasks;
        if tasks > before + self.task_slack {
            violations.push(Violation::Leaked { before, after: tasks });
        }
        let mut causes = Causes::default();
        for cause in self.causes() {
            causes.add(cause);
        }
        let mut restarted: Vec<ChildPath> = self.watch.with_events(|events| {
            events
                .iter()
                .filter_map(|(_, event)| match event {
                    SupervisorEvent::Restarting { path, .. } => Some(path.clone()),
                    // A failed (re)start is retried as another restart: its own cause.
                    SupervisorEvent::ChildStartFailed { path, .. } => {
                        causes.add(path.as_str().to_owned());
                        None
                    }
                    _ => None,
                })
                .collect()
        });
        let restarts = restarted.len();
        // Each restart needs a cause of its own at or below its path. The sets of
        // causes a restart may take are subtrees, so matching the deepest restarts
        // first never leaves a restart without a cause that another could have spared.
        restarted.sort_by_key(|path| std::cmp::Reverse(path.as_str().matches('/').count()));
        for path in restarted {
            if !causes.take_within(path.as_str()) {
                violations.push(Violation::UnexplainedRestart { path });
            }
        }
        let escalations = self.watch.escalations();
        for supervisor in &gave_up {
            if !escalations.iter().any(|e| e.gave_up.as_ref() == Some(supervisor)) {
                violations.push(Violation::GaveUpWithoutEscalation {
                    supervisor: supervisor.clone(),
                });
            }
        }
        let running_now = snapshot.map_or(0, |s| {
            s.nodes().iter().filter(|n| n.state == NodeState::Running).count()
        });
        InvariantReport {
            violations,
            restarts,
            gave_up,
            escalations_at_root: escalations.len(),
            running: (self.baseline.nodes.len(), running_now),
            live_tasks: (before, tasks),
            settled_in,
        }
    }

    /// Paths where something was done on purpose: monkey actions that took
    /// effect and faults that fired (a delay is not a fault that crashes).
    fn causes(&self) -> Vec<String> {
        let actions = self
            .chaos
            .iter()
            .flat_map(|report| report.effective())
            .map(|action| action.path.as_str().to_owned());
        let faults =
            self.faults.iter().flat_map(|faults| faults.log()).filter_map(|record| {
                (!matches!(record.action, FaultAction::Delay(_))).then(|| record.point.to_string())
            });
        actions.chain(faults).collect()
    }
}

/// True if `path` is `ancestor` or below it.
/// Causes not yet matched to a restart, counted by path.
#[derive(Default)]
struct Causes(BTreeMap<String, usize>);

impl Causes {
    fn add(&mut self, path: String) {
        *self.0.entry(path).or_default() += 1;
    }

    /// Uses up one cause at `path` or below it; false if there is none.
    fn take_within(&mut self, path: &str) -> bool {
        // Paths below `path` sort together, from "path/" up to "path0" ('0' follows '/').
        let key = self.0.get_key_value(path).map(|(key, _)| key.clone()).or_else(|| {
            self.0
                .range(format!("{path}/")..format!("{path}0"))
                .next()
                .map(|(key, _)| key.clone())
        });
        let Some(key) = key else {
            return false;
        };
        if let Some(count) = self.0.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.0.remove(&key);
            }
        }
        true
    }
}

fn is_within(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
