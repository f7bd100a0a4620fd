//! Spawning 100 000 children under one Warden supervisor: time, and memory per
//! child split into the actor's own and the supervisor's bookkeeping. The OTP
//! twin is `otpb_spawn` (100 000 sequential `supervisor:start_child/2` into a
//! `simple_one_for_one` supervisor).
//!
//! Memory is counted by a global allocator that counts bytes (`stats_alloc`):
//! a figure is the bytes allocated and still live after the spawns, minus
//! before, divided by the number of children, taken after a 100 ms pause so the
//! actors' tasks have settled. Sections, each on a fresh baseline:
//!
//! * `bare_unlinked`: `Actor::spawn` of the worker, no parent (reference).
//! * `bare_linked`: `Actor::spawn_linked` of the worker to a plain ractor parent
//!   actor: the actor's own cost, ractor's link included.
//! * `warden_start_child`: `Supervisor::start_child` into a running one_for_one
//!   supervisor (a `ChildSpec::actor` with id `w{i}`, permanent, 5 s shutdown);
//!   also the p50/p99 of one `start_child` call, and the time to stop the
//!   supervisor with all its children.
//! * `warden_declared`: the same children declared on the builder, then `spawn`.
//! * `warden_dynamic`: `DynamicSupervisor::start_child(())` into a running
//!   dynamic supervisor (OTP's `simple_one_for_one`: the exact twin of
//!   `otpb_spawn`), its template spawning the same worker, permanent, 5 s
//!   shutdown; p50/p99 of one call, and the time to stop it (all children at once).
//!
//! The supervisor's bookkeeping per child is `warden_* − bare_linked`. The
//! counting allocator adds a few atomic adds to every allocation, so times here
//! are a little slower than without it. 5 runs plus a warm-up run of the same size; figures
//! are medians across runs. Multi-thread runtime with 2 workers (vs OTP `+S 2`).
//!
//! ```text
//! cargo bench --bench spawn
//! WARDEN_BENCH_QUICK=1 cargo bench --bench spawn        # a few seconds
//! ```
//!
//! Settings (environment): `RUNS` (5), `N` (100000), `SECTIONS` (a comma-separated
//! subset of the section names above; all by default), `WARDEN_BENCH_RUNTIME`
//! (a comma-separated list of `mt2`, `mt2w`, `ct`; `mt2` by default).
//!
//! Each section ends with machine-readable lines `METRIC <section>/<runtime>/<stat> <value> <unit>`
//! (read by `benches/compare`).

#[path = "support/common.rs"]
mod common;

use std::alloc::System;
use std::time::{Duration, Instant};

use common::{Flavor, Summary, Worker};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use warden::supervisor::{ChildSpec, DynamicSupervisor, Strategy, Supervisor};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, and the number of allocations so far.
fn heap() -> (i64, i64) {
    let s = GLOBAL.stats();
    (
        s.bytes_allocated as i64 - s.bytes_deallocated as i64,
        s.allocations as i64,
    )
}

/// Lets spawned tasks finish what they were doing before memory is read.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A parent that does nothing, not even stop when a child exits.
struct PlainParent;

impl Actor for PlainParent {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        _: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Res {
    total_ns: u64,
    p50: u64,
    p99: u64,
    bytes: i64,
    allocs: i64,
    stop_ns: u64,
    /// Bytes still live after everything was stopped, against the baseline.
    leftover: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    BareUnlinked,
    BareLinked,
    WardenStartChild,
    WardenDeclared,
    WardenDynamic,
}

impl Section {
    const ALL: [Section; 5] = [
        Self::BareUnlinked,
        Self::BareLinked,
        Self::WardenStartChild,
        Self::WardenDeclared,
        Self::WardenDynamic,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::BareUnlinked => "bare_unlinked",
            Self::BareLinked => "bare_linked",
            Self::WardenStartChild => "warden_start_child",
            Self::WardenDeclared => "warden_declared",
            Self::WardenDynamic => "warden_dynamic",
        }
    }
}

fn spec(i: usize) -> ChildSpec {
    ChildSpec::actor(format!("w{i}"), || (Worker::quiet(), ()))
}

async fn run(section: Section, n: usize) -> Res {
    let mut lat: Vec<u64> = Vec::with_capacity(n);
    let mut cells: Vec<ActorCell> = Vec::with_capacity(n);
    let mut res = Res::default();
    settle().await;
    match section {
        Section::BareUnlinked => {
            let (m0, a0) = heap();
            let t0 = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                let (r, _join) = Actor::spawn(None, Worker::quiet(), ()).await.expect("spawn");
                lat.push(common::nanos(t.elapsed()));
                cells.push(r.get_cell());
            }
            res.total_ns = common::nanos(t0.elapsed());
            settle().await;
            let (m1, a1) = heap();
            (res.bytes, res.allocs) = (m1 - m0, a1 - a0);
            let t2 = Instant::now();
            for c in &cells {
                c.stop(None);
            }
            for c in &cells {
                c.wait(None).await.ok();
            }
            res.stop_ns = common::nanos(t2.elapsed());
            cells.clear();
            settle().await;
            res.leftover = heap().0 - m0;
        }
        Section::BareLinked => {
            let (parent, join) = Actor::spawn(None, PlainParent, ()).await.expect("parent");
            settle().await;
            let (m0, a0) = heap();
            let t0 = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                let (r, _join) = Actor::spawn_linked(None, Worker::quiet(), (), parent.get_cell())
                    .await
                    .expect("spawn");
                lat.push(common::nanos(t.elapsed()));
                cells.push(r.get_cell());
            }
            res.total_ns = common::nanos(t0.elapsed());
            settle().await;
            let (m1, a1) = heap();
            (res.bytes, res.allocs) = (m1 - m0, a1 - a0);
            // ractor kills the children of an actor that stops.
            let t2 = Instant::now();
            parent.stop(None);
            join.await.ok();
            for c in &cells {
                c.wait(None).await.ok();
            }
            res.stop_ns = common::nanos(t2.elapsed());
            cells.clear();
            settle().await;
            res.leftover = heap().0 - m0;
        }
        Section::WardenStartChild => {
            let sup = Supervisor::builder("spawn")
                .strategy(Strategy::OneForOne)
                .spawn()
                .await
                .expect("supervisor");
            settle().await;
            let (m0, a0) = heap();
            let t0 = Instant::now();
            for i in 0..n {
                let t = Instant::now();
                sup.start_child(spec(i)).await.expect("start_child");
                lat.push(common::nanos(t.elapsed()));
            }
            res.total_ns = common::nanos(t0.elapsed());
            measure_and_stop(&mut res, sup, n, (m0, a0)).await;
        }
        Section::WardenDeclared => {
            let (m0, a0) = heap();
            let t0 = Instant::now();
            let sup = Supervisor::builder("spawn")
                .strategy(Strategy::OneForOne)
                .children((0..n).map(spec))
                .spawn()
                .await
                .expect("supervisor");
            res.total_ns = common::nanos(t0.elapsed());
            measure_and_stop(&mut res, sup, n, (m0, a0)).await;
        }
        Section::WardenDynamic => {
            let sup = DynamicSupervisor::of_actors("spawn", |()| (Worker::quiet(), ()))
                .spawn()
                .await
                .expect("supervisor");
            settle().await;
            let (m0, a0) = heap();
            let t0 = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                sup.start_child(()).await.expect("start_child");
                lat.push(common::nanos(t.elapsed()));
            }
            res.total_ns = common::nanos(t0.elapsed());
            let untyped = sup.as_supervisor().clone();
            drop(sup);
            measure_and_stop(&mut res, untyped, n, (m0, a0)).await;
        }
    }
    if !lat.is_empty() {
        let s = Summary::of(&lat);
        (res.p50, res.p99) = (s.p50, s.p99);
    }
    res
}

fn main() {
    let quick = common::quick();
    let runs = common::env_usize("RUNS", if quick { 1 } else { 5 });
    let n = common::env_usize("N", if quick { 2_000 } else { 100_000 });
    let flavors = Flavor::selected_or(&[Flavor::Multi2]);
    common::header("spawn");
    println!("# runs={runs} n={n}");
    for flavor in flavors {
        let rt = flavor.runtime();
        let mut medians = Vec::new();
        let sections: Vec<Section> = match std::env::var("SECTIONS") {
            Ok(v) if !v.is_empty() => Section::ALL
                .into_iter()
                .filter(|s| v.split(',').any(|x| x.trim() == s.name()))
                .collect(),
            _ => Section::ALL.to_vec(),
        };
        for &section in &sections {
            // Warm-up at full size, not reported: the heap has grown once before any figure.
            common::run_on(&rt, run(section, n));
            let mut all = Vec::with_capacity(runs);
            for r in 1..=runs {
                let res = common::run_on(&rt, run(section, n));
                println!(
                    "{} {} {r} n={n} total_ms={:.1} per_child_us={:.2} op_p50={} op_p99={} \
                     live_B={} ({}/child) allocs/child={:.1} stop_ms={:.1} leftover_after_stop_B={}",
                    section.name(),
                    flavor.name(),
                    res.total_ns as f64 / 1e6,
                    res.total_ns as f64 / n as f64 / 1e3,
                    common::us(res.p50),
                    common::us(res.p99),
                    res.bytes,
                    res.bytes / n as i64,
                    res.allocs as f64 / n as f64,
                    res.stop_ns as f64 / 1e6,
                    res.leftover,
                );
                all.push(res);
            }
            let med_u = |f: fn(&Res) -> u64| common::median(all.iter().map(f));
            let med_i = |f: fn(&Res) -> i64| {
                let mut v: Vec<i64> = all.iter().map(f).collect();
                v.sort_unstable();
                v[(v.len() - 1) / 2]
            };
            let m = Res {
                total_ns: med_u(|r| r.total_ns),
                p50: med_u(|r| r.p50),
                p99: med_u(|r| r.p99),
                bytes: med_i(|r| r.bytes),
                allocs: med_i(|r| r.allocs),
                stop_ns: med_u(|r| r.stop_ns),
                leftover: med_i(|r| r.leftover),
            };
            println!(
                "SUMMARY {} {} median_of_runs: total_ms={:.1} per_child_us={:.2} op_p50={} op_p99={} \
                 bytes/child={} allocs/child={:.1} stop_ms={:.1} leftover_after_stop_B={}",
                section.name(),
                flavor.name(),
                m.total_ns as f64 / 1e6,
                m.total_ns as f64 / n as f64 / 1e3,
                common::us(m.p50),
                common::us(m.p99),
                m.bytes / n as i64,
                m.allocs as f64 / n as f64,
                m.stop_ns as f64 / 1e6,
                m.leftover,
            );
            // Machine-readable, for benches/compare: `METRIC <section>/<runtime>/<stat> <value> <unit>`.
            let (name, f) = (section.name(), flavor.name());
            println!("METRIC {name}/{f}/total_ms {:.1} ms", m.total_ns as f64 / 1e6);
            println!("METRIC {name}/{f}/op_p50 {} us", common::us(m.p50));
            println!("METRIC {name}/{f}/op_p99 {} us", common::us(m.p99));
            println!("METRIC {name}/{f}/bytes_per_child {} B", m.bytes / n as i64);
            println!("METRIC {name}/{f}/stop_ms {:.1} ms", m.stop_ns as f64 / 1e6);
            medians.push((section, m));
        }
        let per = |s: Section| {
            medians
                .iter()
                .find(|(x, _)| *x == s)
                .map_or(0, |(_, m)| m.bytes / n as i64)
        };
        let own = per(Section::BareLinked);
        let split = [
            Section::WardenStartChild,
            Section::WardenDeclared,
            Section::WardenDynamic,
        ];
        for s in split
            .into_iter()
            .filter(|s| sections.contains(&Section::BareLinked) && sections.contains(s))
        {
            println!(
                "SUMMARY split {} {}: actor's own (bare_linked) {own} B/child + supervisor bookkeeping {} B/child = {} B/child \
                 (OTP simple_one_for_one: 2988 B/child total, 81 B/child supervisor)",
                s.name(),
                flavor.name(),
                per(s) - own,
                per(s)
            );
            println!(
                "METRIC split/{}/{}/supervisor_bytes_per_child {} B",
                s.name(),
                flavor.name(),
                per(s) - own
            );
        }
    }
}

/// After `n` children started under `sup`: the bytes and allocations they hold
/// (against `before`), the time to stop the supervisor, and what it leaves behind.
async fn measure_and_stop(res: &mut Res, sup: Supervisor, n: usize, before: (i64, i64)) {
    let (m0, a0) = before;
    settle().await;
    let (m1, a1) = heap();
    (res.bytes, res.allocs) = (m1 - m0, a1 - a0);
    assert_eq!(sup.count_children().await.expect("counts").active, n);
    let t2 = Instant::now();
    sup.stop().await;
    res.stop_ns = common::nanos(t2.elapsed());
    drop(sup);
    settle().await;
    res.leftover = heap().0 - m0;
}
