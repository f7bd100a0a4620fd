//! Spawning N (100 000) supervised children under one supervisor of each Rust
//! peer (issue 7, pair 6 = pair 5's work), as Warden's `benches/spawn.rs`
//! section `warden_start_child` does: one child at a time into a running
//! one_for_one supervisor, a permanent child, awaited before the next; total
//! time, p50/p99 of one start, memory per child, and the time to stop the
//! supervisor with all its children.
//!
//! Memory is counted by a global allocator that counts bytes (`stats_alloc`):
//! bytes allocated and still live after the spawns, minus before, divided by
//! N, read after a 100 ms pause. A warm-up run of the same size, then `RUNS`
//! runs; figures are medians across runs. Multi-thread runtime, 2 workers.
//!
//! * `ractor_supervisor`: `DynamicSupervisor::spawn_child` (the crate's
//!   supervisor for children added at run time; OneForOne), child ids
//!   `r{run}w{i}` (each child must be named, in ractor's global registry).
//! * `kameo`: `Worker::supervise(&sup, ()).spawn()` on a kameo actor whose
//!   strategy is OneForOne (`RestartPolicy::Permanent`).
//!
//! ```text
//! CARGO_TARGET_DIR=target/compare/peers-target cargo run --release \
//!   --manifest-path benches/compare/peers/Cargo.toml --bin spawn
//! ```
//!
//! Settings (environment): `RUNS` (5), `N` (100000), `TARGETS`
//! (`ractor_supervisor,kameo`). Prints `RESULT peers <target> <metric> <value> <unit>`
//! (not the stop time: ractor's stop of a supervisor does not wait for its children).

use std::alloc::System;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use warden_peers_bench::{env_str, env_usize, median, nanos, p50_p99, run_on, runtime, us};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[derive(Clone, Copy, Default)]
struct Res {
    total_ns: u64,
    p50: u64,
    p99: u64,
    bytes: i64,
    stop_ns: u64,
}

mod rs {
    use super::*;
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use ractor_supervisor::{ChildSpec, DynamicSupervisor, DynamicSupervisorOptions, Restart, SpawnFn};

    pub struct Worker;

    impl Actor for Worker {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    pub async fn run(n: usize, run: usize) -> Res {
        let options = DynamicSupervisorOptions {
            max_children: None,
            max_restarts: 1000,
            max_window: Duration::from_secs(1),
            reset_after: None,
        };
        let (sup, join) = DynamicSupervisor::spawn(format!("spawn{run}"), options)
            .await
            .expect("the supervisor starts");
        settle().await;
        let mut lat = Vec::with_capacity(n);
        let m0 = heap();
        let t0 = Instant::now();
        for i in 0..n {
            let spec = ChildSpec {
                id: format!("r{run}w{i}"),
                restart: Restart::Permanent,
                spawn_fn: SpawnFn::new(|sup, id| async move {
                    let (r, _) = DynamicSupervisor::spawn_linked(id, Worker, (), sup).await?;
                    Ok(r.get_cell())
                }),
                backoff_fn: None,
                reset_after: None,
            };
            let t = Instant::now();
            DynamicSupervisor::spawn_child(sup.clone(), spec)
                .await
                .expect("spawn_child");
            lat.push(nanos(t.elapsed()));
        }
        let total_ns = nanos(t0.elapsed());
        settle().await;
        let bytes = heap() - m0;
        assert_eq!(sup.get_children().len(), n, "every child is running");
        let t2 = Instant::now();
        sup.stop(None);
        join.await.ok();
        let stop_ns = nanos(t2.elapsed());
        let (p50, p99) = p50_p99(&lat);
        Res {
            total_ns,
            p50,
            p99,
            bytes,
            stop_ns,
        }
    }
}

mod km {
    use super::*;
    use kameo::actor::{Actor, ActorRef, Spawn};
    use kameo::error::Infallible;
    use kameo::supervision::{RestartPolicy, SupervisionStrategy};

    pub struct Sup;

    impl Actor for Sup {
        type Args = ();
        type Error = Infallible;

        fn supervision_strategy() -> SupervisionStrategy {
            SupervisionStrategy::OneForOne
        }

        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Sup)
        }
    }

    pub struct Worker;

    impl Actor for Worker {
        type Args = ();
        type Error = Infallible;

        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Worker)
        }
    }

    pub async fn run(n: usize) -> Res {
        let sup = Sup::spawn(());
        sup.wait_for_startup().await;
        settle().await;
        let mut lat = Vec::with_capacity(n);
        let mut children = Vec::with_capacity(n);
        let m0 = heap();
        let t0 = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let child = Worker::supervise(&sup, ())
                .restart_policy(RestartPolicy::Permanent)
                .spawn()
                .await;
            lat.push(nanos(t.elapsed()));
            children.push(child);
        }
        let total_ns = nanos(t0.elapsed());
        settle().await;
        // The children's refs are held by the benchmark (as the ids are by
        // ractor-supervisor's registry): count them with the children.
        let bytes = heap() - m0;
        assert!(children.iter().all(ActorRef::is_alive), "every child is running");
        drop(children);
        let t2 = Instant::now();
        sup.stop_gracefully().await.expect("the supervisor stops");
        sup.wait_for_shutdown().await;
        let stop_ns = nanos(t2.elapsed());
        let (p50, p99) = p50_p99(&lat);
        Res {
            total_ns,
            p50,
            p99,
            bytes,
            stop_ns,
        }
    }
}

fn main() {
    let runs = env_usize("RUNS", 5).max(1);
    let n = env_usize("N", 100_000);
    let targets = env_str("TARGETS", "ractor_supervisor,kameo");
    println!("# spawn (peers): runs={runs} n={n} runtime=mt2");
    let rt = runtime();
    let mut run_id = 0;
    for target in targets.split(',').map(str::trim) {
        let one = |rt: &tokio::runtime::Runtime, run_id: usize| match target {
            "ractor_supervisor" => run_on(rt, rs::run(n, run_id)),
            "kameo" => run_on(rt, km::run(n)),
            other => panic!("unknown target {other:?}: ractor_supervisor or kameo"),
        };
        one(&rt, run_id); // warm-up at full size, not reported
        run_id += 1;
        let mut all = Vec::with_capacity(runs);
        for r in 1..=runs {
            let res = one(&rt, run_id);
            run_id += 1;
            println!(
                "{target} mt2 {r} n={n} total_ms={:.1} per_child_us={:.2} op_p50={} op_p99={} bytes/child={} stop_ms={:.1}",
                res.total_ns as f64 / 1e6,
                res.total_ns as f64 / n as f64 / 1e3,
                us(res.p50),
                us(res.p99),
                res.bytes / n as i64,
                res.stop_ns as f64 / 1e6
            );
            all.push(res);
        }
        let total = median(all.iter().map(|r| r.total_ns));
        let p50 = median(all.iter().map(|r| r.p50));
        let p99 = median(all.iter().map(|r| r.p99));
        let stop = median(all.iter().map(|r| r.stop_ns));
        let mut bytes: Vec<i64> = all.iter().map(|r| r.bytes).collect();
        bytes.sort_unstable();
        let per_child = bytes[(bytes.len() - 1) / 2] / n as i64;
        println!(
            "SUMMARY {target} mt2 median_of_runs: total_ms={:.1} per_child_us={:.2} op_p50={} op_p99={} bytes/child={per_child} stop_ms={:.1}",
            total as f64 / 1e6,
            total as f64 / n as f64 / 1e3,
            us(p50),
            us(p99),
            stop as f64 / 1e6
        );
        println!("RESULT peers {target} spawn_total {:.1} ms", total as f64 / 1e6);
        println!(
            "RESULT peers {target} spawn_per_child {:.2} us",
            total as f64 / n as f64 / 1e3
        );
        println!("RESULT peers {target} spawn_op_p50 {} us", us(p50));
        println!("RESULT peers {target} spawn_op_p99 {} us", us(p99));
        println!("RESULT peers {target} spawn_bytes_per_child {per_child} B");
    }
}
