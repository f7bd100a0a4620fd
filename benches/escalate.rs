//! Escalation latency, measured as the OTP baseline's `otpb_escalate` measures
//! OTP's (see /work/shared/anchors/otp-bench):
//!
//! * `exit_to_parent/K`: a supervisor (one_for_one, intensity 0) with K
//!   permanent workers; the benchmark kills worker 1; the clock stops when the
//!   supervisor's **parent** has the news: the supervisor stopped its K−1
//!   other workers (last started first) and exited. As in OTP's, where the
//!   parent is the benchmark process itself (it started the supervisor with
//!   `start_link` and receives `{'EXIT', Sup, shutdown}`), the parent is the
//!   benchmark: it spawned the supervisor and waits for its exit
//!   ([`Supervisor::wait`]), and it checks the give-up reached the
//!   supervisor's escalation handler. A fresh tree per iteration, not timed.
//! * `exit_through_supervisor/K`: the same, with a Warden supervisor as the
//!   parent (one_for_one, the child supervisor temporary so it is not
//!   restarted): the clock stops when the parent received the exit with the
//!   `GaveUp` escalation and handed it to its escalation handler, which sends
//!   it to the benchmark over a channel. One hop more than OTP's figure (the
//!   parent supervisor's turn), so it has no OTP twin.
//! * `subtree_restart/K`: a top supervisor (one_for_one, intensity 1000 in
//!   1 s) with one child supervisor (one_for_one, intensity 0 in 5 s, permanent)
//!   owning K workers; kill worker 1; the child supervisor gives up, the top one
//!   restarts it, it starts its K workers; the clock stops when all K new
//!   workers have announced their start and answered a ping. A fresh tree every
//!   100 iterations, not timed.
//!
//! Workers are `support/common.rs`'s (permanent, 5 s shutdown; `pre_start`
//! announces the start). 5 runs of 2 000 iterations plus a warm-up run of at
//! most 200; a figure is the median across runs of each run's p50 or p99
//! (nearest rank). Runs on three runtimes: tokio's multi-thread runtime with 2
//! workers and its defaults (`mt2`, vs OTP `+S 2`), the same from
//! `warden::runtime::multi_thread()`, whose idle workers wait briefly before
//! they park (`mt2w`, vs `+S 2`), and a current-thread runtime (`ct`, vs `+S 1`).
//!
//! ```text
//! cargo bench --bench escalate
//! WARDEN_BENCH_QUICK=1 cargo bench --bench escalate       # a few seconds
//! ```
//!
//! Settings (environment): `RUNS` (5), `ITER` (2000), `SCENARIOS` (e.g.
//! `exit_to_parent:1,subtree_restart:10`), `WARDEN_BENCH_RUNTIME` (a
//! comma-separated list of `mt2`, `mt2w`, `ct`; all three by default). Each scenario ends with machine-readable lines
//! `METRIC <scenario>/<K>/<runtime>/<p50|p99> <value> us` (read by `benches/compare`).

#[path = "support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Flavor, Summary, Worker, WorkerMsg};
use ractor::ActorRef;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use warden::supervisor::{ChildSpec, Disposition, Escalation, Restart, Strategy, Supervisor};

/// What one scenario measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ExitToParent,
    ExitThroughSupervisor,
    SubtreeRestart,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::ExitToParent => "exit_to_parent",
            Self::ExitThroughSupervisor => "exit_through_supervisor",
            Self::SubtreeRestart => "subtree_restart",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "exit_to_parent" => Self::ExitToParent,
            "exit_through_supervisor" => Self::ExitThroughSupervisor,
            "subtree_restart" => Self::SubtreeRestart,
            other => panic!("unknown scenario {other:?}: exit_to_parent, exit_through_supervisor or subtree_restart"),
        }
    }
}

/// K permanent workers that announce their starts on `tx`.
fn workers(k: usize, tx: &common::Started) -> Vec<ChildSpec> {
    (0..k)
        .map(|index| {
            let tx = tx.clone();
            ChildSpec::actor(format!("w{}", index + 1), move || {
                (
                    Worker {
                        index,
                        started: Some(tx.clone()),
                    },
                    (),
                )
            })
        })
        .collect()
}

/// The child supervisor of both scenarios: one_for_one, gives up on the first exit.
fn giving_up(k: usize, tx: &common::Started) -> ChildSpec {
    Supervisor::builder("sub")
        .strategy(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(5))
        .children(workers(k, tx))
        .into_child()
}

type StartedRx = UnboundedReceiver<(usize, ActorRef<WorkerMsg>)>;

async fn exit_to_parent(k: usize, iter: usize) -> Vec<u64> {
    let mut lat = Vec::with_capacity(iter);
    for _ in 0..iter {
        let (tx, mut rx): (common::Started, StartedRx) = unbounded_channel();
        let (etx, mut erx) = unbounded_channel::<Escalation>();
        let sup = Supervisor::builder("sub")
            .strategy(Strategy::OneForOne)
            .intensity(0, Duration::from_secs(5))
            .escalation_handler(etx)
            .children(workers(k, &tx))
            .spawn()
            .await
            .expect("the tree starts");
        let started = common::collect_started(&mut rx, k).await;
        let t0 = Instant::now();
        started[0].kill();
        sup.wait().await;
        lat.push(common::nanos(t0.elapsed()));
        let escalation = erx.try_recv().expect("the give-up was handed on before the exit");
        assert!(escalation.give_up().is_some(), "a GaveUp escalation");
    }
    lat
}

async fn exit_through_supervisor(k: usize, iter: usize) -> Vec<u64> {
    let mut lat = Vec::with_capacity(iter);
    for _ in 0..iter {
        let (tx, mut rx): (common::Started, StartedRx) = unbounded_channel();
        let (etx, mut erx) = unbounded_channel::<Escalation>();
        let top = Supervisor::builder("top")
            .strategy(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(5))
            .escalation_handler(etx)
            .child(giving_up(k, &tx).restart(Restart::Temporary))
            .spawn()
            .await
            .expect("the tree starts");
        let started = common::collect_started(&mut rx, k).await;
        let t0 = Instant::now();
        started[0].kill();
        let escalation = erx.recv().await.expect("the parent hands on the give-up");
        lat.push(common::nanos(t0.elapsed()));
        assert!(escalation.give_up().is_some(), "a GaveUp escalation");
        top.stop().await;
    }
    lat
}

async fn subtree_restart(k: usize, iter: usize) -> Vec<u64> {
    let mut lat = Vec::with_capacity(iter);
    let mut left = iter;
    while left > 0 {
        let batch = left.min(100);
        let (tx, mut rx): (common::Started, StartedRx) = unbounded_channel();
        let top = Supervisor::builder("top")
            .strategy(Strategy::OneForOne)
            .intensity(1000, Duration::from_secs(1))
            .escalation_handler(|_: Escalation| Disposition::Handled)
            .child(giving_up(k, &tx))
            .spawn()
            .await
            .expect("the tree starts");
        let mut started = common::collect_started(&mut rx, k).await;
        for _ in 0..batch {
            let t0 = Instant::now();
            started[0].kill();
            started = common::collect_started(&mut rx, k).await;
            for w in &started {
                common::ping(w).await;
            }
            lat.push(common::nanos(t0.elapsed()));
        }
        assert!(top.is_alive(), "the top supervisor never gives up");
        top.stop().await;
        left -= batch;
    }
    lat
}

async fn run(kind: Kind, k: usize, iter: usize) -> Vec<u64> {
    match kind {
        Kind::ExitToParent => exit_to_parent(k, iter).await,
        Kind::ExitThroughSupervisor => exit_through_supervisor(k, iter).await,
        Kind::SubtreeRestart => subtree_restart(k, iter).await,
    }
}

fn main() {
    let quick = common::quick();
    let runs = common::env_usize("RUNS", if quick { 1 } else { 5 });
    let iter = common::env_usize("ITER", if quick { 200 } else { 2000 });
    let scenarios: Vec<(Kind, usize)> = match std::env::var("SCENARIOS") {
        Ok(s) if !s.is_empty() => s
            .split(',')
            .map(|item| {
                let (kind, k) = item.trim().split_once(':').expect("a scenario is NAME:K");
                (Kind::parse(kind), k.parse().expect("a number of workers"))
            })
            .collect(),
        _ => vec![
            (Kind::ExitToParent, 1),
            (Kind::ExitToParent, 10),
            (Kind::ExitThroughSupervisor, 1),
            (Kind::ExitThroughSupervisor, 10),
            (Kind::SubtreeRestart, 1),
            (Kind::SubtreeRestart, 10),
        ],
    };
    common::header("escalate");
    println!("# runs={runs} iter={iter}");
    for flavor in Flavor::selected_or(&[Flavor::Multi2, Flavor::Multi2Warden, Flavor::Current]) {
        let rt = flavor.runtime();
        for &(kind, k) in &scenarios {
            assert!(k >= 1, "at least one worker");
            let name = format!("{}/{k}", kind.name());
            common::run_on(&rt, run(kind, k, iter.min(200)));
            let mut sums = Vec::with_capacity(runs);
            for r in 1..=runs {
                let s = Summary::of(&common::run_on(&rt, run(kind, k, iter)));
                println!("{name} {} {r} {}", flavor.name(), s.line());
                sums.push(s);
            }
            let p50 = common::median(sums.iter().map(|s| s.p50));
            let p99 = common::median(sums.iter().map(|s| s.p99));
            println!(
                "SUMMARY {name} {} median_of_runs: p50={} p99={} (runs={runs}, iter={iter})",
                flavor.name(),
                common::us(p50),
                common::us(p99)
            );
            for (stat, v) in [("p50", p50), ("p99", p99)] {
                println!("METRIC {name}/{}/{stat} {} us", flavor.name(), common::us(v));
            }
        }
    }
}
