//! The work ledger: a pool of supervised workers processes numbered tasks that
//! submitters send through `warden::supervisor::request`, retrying on a typed
//! error, while a chaos monkey kills workers. At the end every task must have
//! exactly one completed outcome: none lost, none hung, none done twice.
//!
//! Shared by `tests/chaos_ledger.rs` (seconds, in CI) and
//! `examples/chaos_soak.rs` (a minute, 1,000 workers). Include it with
//! `#[path = "support/ledger.rs"] mod ledger;`.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::time::Instant;
use warden::supervisor::{ChildSpec, RequestError, Supervisor, request};

/// A task's completed outcome, as the worker reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// The task.
    pub task: u64,
    /// True when the worker found the task already done and answered from the
    /// ledger instead of doing it again (a retry after a lost reply).
    pub replayed: bool,
}

/// What a worker is asked.
pub enum WorkerMsg {
    /// Do task `task` (idempotent by its id), then answer.
    Do(u64, RpcReplyPort<Done>),
    /// Answer at once (recovery probes).
    Ping(RpcReplyPort<()>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for WorkerMsg {}

/// The shared record of the run: what each worker did, what each submitter saw.
pub struct Ledger {
    /// How many times each task's work was done (its side effect); must end at 1.
    executed: Vec<AtomicU8>,
    /// How many completed outcomes each task's submitter received; must end at 1.
    outcomes: Vec<AtomicU8>,
    /// Where each worker can be reached now, by index (written by the worker
    /// itself when it starts).
    directory: RwLock<Vec<Option<ActorRef<WorkerMsg>>>>,
    pub submitted: AtomicU64,
    pub completed: AtomicU64,
    pub retried: AtomicU64,
    pub not_delivered: AtomicU64,
    pub worker_down: AtomicU64,
    /// Requests that hit their deadline: a hang, as far as the caller knows.
    pub timed_out: AtomicU64,
    pub replayed: AtomicU64,
    pub gave_up: AtomicU64,
}

impl Ledger {
    pub fn new(tasks: usize, workers: usize) -> Arc<Self> {
        Arc::new(Self {
            executed: (0..tasks).map(|_| AtomicU8::new(0)).collect(),
            outcomes: (0..tasks).map(|_| AtomicU8::new(0)).collect(),
            directory: RwLock::new(vec![None; workers]),
            submitted: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            not_delivered: AtomicU64::new(0),
            worker_down: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
        })
    }

    pub fn capacity(&self) -> usize {
        self.executed.len()
    }

    pub fn workers(&self) -> usize {
        self.directory.read().unwrap().len()
    }

    pub fn worker(&self, index: usize) -> Option<ActorRef<WorkerMsg>> {
        self.directory.read().unwrap()[index].clone()
    }

    /// Heap bytes of the ledger itself (for memory figures that leave it out).
    pub fn heap_bytes(&self) -> usize {
        2 * self.executed.len() + self.workers() * std::mem::size_of::<Option<ActorRef<WorkerMsg>>>()
    }

    /// Checks the books for the first `tasks` tasks.
    pub fn audit(&self, tasks: u64) -> Audit {
        let mut audit = Audit::default();
        for task in 0..tasks as usize {
            match self.outcomes[task].load(Ordering::SeqCst) {
                0 => audit.lost.push(task as u64),
                1 => {}
                _ => audit.answered_twice.push(task as u64),
            }
            if self.executed[task].load(Ordering::SeqCst) > 1 {
                audit.executed_twice.push(task as u64);
            }
        }
        audit
    }
}

/// What the audit found; all empty when every task had exactly one outcome.
#[derive(Debug, Default)]
pub struct Audit {
    pub lost: Vec<u64>,
    pub answered_twice: Vec<u64>,
    pub executed_twice: Vec<u64>,
}

impl Audit {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.answered_twice.is_empty() && self.executed_twice.is_empty()
    }
}

/// A worker of the pool.
pub struct Worker {
    index: usize,
    ledger: Arc<Ledger>,
    work: Duration,
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<WorkerMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        self.ledger.directory.write().unwrap()[self.index] = Some(myself);
        Ok(())
    }

    async fn handle(&self, _: ActorRef<WorkerMsg>, msg: WorkerMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Do(task, reply) => {
                // The work: a kill can land here, before anything was recorded.
                if self.work.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(self.work).await;
                }
                // Record and answer with no await in between, so a kill (which
                // lands only at an await) cannot split them. A task done before
                // (its reply was lost to a timeout) is answered from the ledger.
                let first = self.ledger.executed[task as usize]
                    .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                let _ = reply.send(Done { task, replayed: !first });
            }
            WorkerMsg::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

/// The pool's child specs: `workers` permanent workers `w0`, `w1`, ...
pub fn worker_specs(ledger: &Arc<Ledger>, work: Duration) -> Vec<ChildSpec> {
    (0..ledger.workers())
        .map(|index| {
            let ledger = ledger.clone();
            ChildSpec::actor(format!("w{index}"), move || {
                let worker = Worker {
                    index,
                    ledger: ledger.clone(),
                    work,
                };
                (worker, ())
            })
        })
        .collect()
}

/// The pool: a one_for_one supervisor `pool` of the workers, with an intensity
/// that chaos at `kills_per_second` stays well inside.
pub fn pool(ledger: &Arc<Ledger>, work: Duration, kills_per_second: f64) -> ChildSpec {
    let max = ((kills_per_second * 10.0) as u32).max(100);
    Supervisor::builder("pool")
        .intensity(max, Duration::from_secs(1))
        .children(worker_specs(ledger, work))
        .into_child()
}

/// How submitters behave.
#[derive(Clone, Copy, Debug)]
pub struct Submitters {
    /// Concurrent submitters.
    pub concurrency: usize,
    /// The first task to submit.
    pub first: u64,
    /// Tasks to submit in all, `first..first + tasks` (within the ledger's capacity).
    pub tasks: u64,
    /// Tasks per second in all; `None` for as fast as they go.
    pub rate: Option<f64>,
    /// Deadline of each request: hitting it counts as a hang.
    pub deadline: Duration,
    /// Attempts per task before it is given up (and so lost).
    pub max_attempts: u32,
}

/// Submits tasks `first..first + tasks` through `request`, retrying each on a
/// typed error with the next worker, until every task has an outcome or was
/// given up.
pub async fn submit_all(ledger: Arc<Ledger>, submitters: Submitters) {
    let next = Arc::new(AtomicU64::new(submitters.first));
    let start = Instant::now();
    let end = (submitters.first + submitters.tasks).min(ledger.capacity() as u64);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..submitters.concurrency {
        let (ledger, next) = (ledger.clone(), next.clone());
        set.spawn(async move {
            loop {
                let task = next.fetch_add(1, Ordering::Relaxed);
                if task >= end {
                    return;
                }
                if let Some(rate) = submitters.rate {
                    let nth = task - submitters.first;
                    tokio::time::sleep_until(start + Duration::from_secs_f64(nth as f64 / rate)).await;
                }
                submit_one(&ledger, task, submitters).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn submit_one(ledger: &Ledger, task: u64, submitters: Submitters) {
    ledger.submitted.fetch_add(1, Ordering::Relaxed);
    let workers = ledger.workers();
    for attempt in 0..submitters.max_attempts {
        if attempt > 0 {
            ledger.retried.fetch_add(1, Ordering::Relaxed);
            // Let the restart happen before trying the next worker again.
            tokio::task::yield_now().await;
        }
        let index = (task as usize + attempt as usize) % workers;
        let Some(worker) = ledger.worker(index) else {
            continue;
        };
        match request(&worker, |reply| WorkerMsg::Do(task, reply), submitters.deadline).await {
            Ok(done) => {
                if done.replayed {
                    ledger.replayed.fetch_add(1, Ordering::Relaxed);
                }
                ledger.outcomes[task as usize].fetch_add(1, Ordering::SeqCst);
                ledger.completed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(RequestError::NotDelivered) => ledger.not_delivered.fetch_add(1, Ordering::Relaxed),
            Err(RequestError::WorkerDown) => ledger.worker_down.fetch_add(1, Ordering::Relaxed),
            Err(RequestError::Timeout(_)) => ledger.timed_out.fetch_add(1, Ordering::Relaxed),
            Err(_) => ledger.worker_down.fetch_add(1, Ordering::Relaxed),
        };
    }
    ledger.gave_up.fetch_add(1, Ordering::Relaxed);
}
