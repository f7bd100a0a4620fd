//! The message path to a supervised child against the same actor spawned bare
//! with ractor: supervision should add nothing (goal: within 5%). Criterion
//! measures, per runtime (multi-thread with 2 workers, vs OTP `+S 2`;
//! current-thread, vs `+S 1`):
//!
//! * `cast/{bare,supervised}/{mt2,ct}`: time per cast when one task sends a
//!   batch of casts to one worker and then a call that returns how many it
//!   handled (so the clock stops when all were processed), as the OTP
//!   baseline's `cast_throughput`. The reported time is ns per message.
//! * `call/{bare,supervised}/{mt2,ct}`: back-to-back ping calls, time per call
//!   (OTP's `call_batch`, total ÷ N).
//!
//! The sender is a task on the runtime, not the thread in `block_on`. The
//! supervised worker is the only child of a one_for_one Warden supervisor; the
//! bare one is `Actor::spawn` with no parent.
//!
//! ```text
//! cargo bench --bench messaging
//! WARDEN_BENCH_QUICK=1 cargo bench --bench messaging     # a few seconds
//! cargo bench --bench messaging -- --test                # each benchmark once
//! ```

#[path = "support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Flavor, Worker, WorkerMsg};
use criterion::{BenchmarkId, Criterion, Throughput};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use warden::supervisor::Supervisor;

/// `iters` casts, then a call that returns how many were handled.
async fn casts(worker: ActorRef<WorkerMsg>, iters: u64) -> Duration {
    let t0 = Instant::now();
    for _ in 0..iters {
        worker.cast(WorkerMsg::Inc).expect("worker is running");
    }
    match worker.call(WorkerMsg::Count, None).await {
        Ok(CallResult::Success(n)) => assert_eq!(n, iters, "every cast was handled"),
        _ => panic!("worker did not answer"),
    }
    t0.elapsed()
}

/// `iters` ping calls back to back.
async fn calls(worker: ActorRef<WorkerMsg>, iters: u64) -> Duration {
    let t0 = Instant::now();
    for _ in 0..iters {
        common::ping(&worker).await;
    }
    t0.elapsed()
}

/// The bare worker and the supervised one (with its supervisor).
async fn workers() -> (ActorRef<WorkerMsg>, ActorRef<WorkerMsg>, Supervisor) {
    let (bare, _join) = Actor::spawn(None, Worker::quiet(), ()).await.expect("bare worker");
    let (supervised, sup) = common::supervised_worker("messaging").await;
    (bare, supervised, sup)
}

fn bench(c: &mut Criterion) {
    for flavor in Flavor::selected() {
        let rt = flavor.runtime();
        let (bare, supervised, sup) = common::run_on(&rt, workers());
        for (group_name, is_cast) in [("cast", true), ("call", false)] {
            let mut group = c.benchmark_group(group_name);
            group.throughput(Throughput::Elements(1));
            for (who, worker) in [("bare", &bare), ("supervised", &supervised)] {
                group.bench_function(BenchmarkId::new(who, flavor.name()), |b| {
                    b.iter_custom(|iters| {
                        let w = worker.clone();
                        if is_cast {
                            common::run_on(&rt, casts(w, iters))
                        } else {
                            common::run_on(&rt, calls(w, iters))
                        }
                    })
                });
            }
            group.finish();
        }
        common::run_on(&rt, async move {
            sup.stop().await;
            bare.stop(None);
        });
    }
}

fn main() {
    let mut c = Criterion::default();
    if common::quick() {
        c = c
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500));
    }
    let mut c = c.configure_from_args();
    bench(&mut c);
    c.final_summary();
}
