//! Messaging measured as the OTP baseline's `otpb_msg` measures `gen_server`
//! (see /work/shared/anchors/otp-bench), for a supervised Warden worker and for
//! the same actor spawned bare with ractor. `benches/messaging.rs` compares the
//! two with criterion; this bench prints the figures `otpb_msg` prints, so that
//! `benches/compare` can put them next to OTP's.
//!
//! * `cast`: one task sends `N_CAST` casts to a fresh worker, then a call that
//!   returns how many it handled (the clock stops when that call returns);
//!   throughput = `N_CAST` ÷ time. OTP: `gen_server_cast_throughput`.
//! * `call_batch`: a fresh worker, 1 000 warm-up pings, then `N_CALL`
//!   back-to-back ping calls; mean round trip = time ÷ `N_CALL`. OTP:
//!   `gen_server_call_rtt_batch`.
//! * `call_sampled`: a fresh worker, 1 000 warm-up pings, then `N_SAMPLE`
//!   individually timed ping calls; p50 and p99 (nearest rank). OTP:
//!   `gen_server_call_rtt_sampled`.
//!
//! `supervised`: the worker is the only child of a one_for_one Warden
//! supervisor (a fresh supervisor per run, not timed). `bare`: `Actor::spawn`
//! with no parent. The sender is a task on the runtime. 5 runs of each, after a
//! warm-up cast run of `N_CAST / 10`; a figure is the median across runs.
//! Multi-thread runtime with 2 workers (vs OTP `+S 2`) and current-thread
//! runtime (vs `+S 1`).
//!
//! ```text
//! cargo bench --bench msg_compare
//! WARDEN_BENCH_QUICK=1 cargo bench --bench msg_compare     # a few seconds
//! ```
//!
//! Settings (environment): `RUNS` (5), `N_CAST` (1000000), `N_CALL` (1000000),
//! `N_SAMPLE` (200000), `SIDE` (`supervised`, `bare`; both by default),
//! `WARDEN_BENCH_RUNTIME` (`mt2`, `mt2w`, `ct`, comma-separated; `mt2,ct` by default). Each figure is also
//! printed as a machine-readable line `METRIC <side>/<runtime>/<stat> <value> <unit>`
//! (read by `benches/compare`).

#[path = "support/common.rs"]
mod common;

use std::time::Instant;

use common::{Flavor, Summary, Worker, WorkerMsg};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use warden::supervisor::Supervisor;

/// Who owns the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Supervised,
    Bare,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Supervised => "supervised",
            Self::Bare => "bare",
        }
    }
}

/// A running worker and what stops it.
struct Running {
    worker: ActorRef<WorkerMsg>,
    sup: Option<Supervisor>,
}

impl Running {
    async fn start(side: Side) -> Self {
        match side {
            Side::Bare => {
                let (worker, _join) = Actor::spawn(None, Worker::quiet(), ()).await.expect("bare worker");
                Self { worker, sup: None }
            }
            Side::Supervised => {
                let (worker, sup) = common::supervised_worker("msg").await;
                Self { worker, sup: Some(sup) }
            }
        }
    }

    async fn stop(self) {
        match self.sup {
            Some(sup) => sup.stop().await,
            None => {
                self.worker.stop(None);
            }
        }
    }

    async fn warm_up_calls(&self) {
        for _ in 0..1000 {
            common::ping(&self.worker).await;
        }
    }
}

/// `otpb_msg:cast_throughput/1`: nanoseconds for `n` casts and the final count call.
async fn cast_throughput(side: Side, n: usize) -> u64 {
    let r = Running::start(side).await;
    let t0 = Instant::now();
    for _ in 0..n {
        r.worker.cast(WorkerMsg::Inc).expect("worker is running");
    }
    match r.worker.call(WorkerMsg::Count, None).await {
        Ok(CallResult::Success(c)) => assert_eq!(c, n as u64, "every cast was handled"),
        _ => panic!("worker did not answer"),
    }
    let t = common::nanos(t0.elapsed());
    r.stop().await;
    t
}

/// `otpb_msg:call_batch/1`: nanoseconds for `n` back-to-back ping calls.
async fn call_batch(side: Side, n: usize) -> u64 {
    let r = Running::start(side).await;
    r.warm_up_calls().await;
    let t0 = Instant::now();
    for _ in 0..n {
        common::ping(&r.worker).await;
    }
    let t = common::nanos(t0.elapsed());
    r.stop().await;
    t
}

/// `otpb_msg:call_sampled/1`: `n` individually timed ping calls.
async fn call_sampled(side: Side, n: usize) -> Vec<u64> {
    let r = Running::start(side).await;
    r.warm_up_calls().await;
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        common::ping(&r.worker).await;
        lat.push(common::nanos(t0.elapsed()));
    }
    r.stop().await;
    lat
}

fn main() {
    let quick = common::quick();
    let runs = common::env_usize("RUNS", if quick { 1 } else { 5 });
    let n_cast = common::env_usize("N_CAST", if quick { 100_000 } else { 1_000_000 });
    let n_call = common::env_usize("N_CALL", if quick { 100_000 } else { 1_000_000 });
    let n_sample = common::env_usize("N_SAMPLE", if quick { 20_000 } else { 200_000 });
    let sides = match std::env::var("SIDE").as_deref() {
        Ok("supervised") => vec![Side::Supervised],
        Ok("bare") => vec![Side::Bare],
        _ => vec![Side::Supervised, Side::Bare],
    };
    common::header("msg_compare");
    println!("# runs={runs} n_cast={n_cast} n_call={n_call} n_sample={n_sample}");
    for flavor in Flavor::selected() {
        let rt = flavor.runtime();
        let f = flavor.name();
        for &side in &sides {
            let s = side.name();
            common::run_on(&rt, cast_throughput(side, (n_cast / 10).max(1)));
            let casts: Vec<u64> = (0..runs)
                .map(|_| common::run_on(&rt, cast_throughput(side, n_cast)))
                .collect();
            let calls: Vec<u64> = (0..runs)
                .map(|_| common::run_on(&rt, call_batch(side, n_call)))
                .collect();
            let samples: Vec<Summary> = (0..runs)
                .map(|_| Summary::of(&common::run_on(&rt, call_sampled(side, n_sample))))
                .collect();
            for (i, ((c, b), sm)) in casts.iter().zip(&calls).zip(&samples).enumerate() {
                println!(
                    "{s} {f} {} cast_ns_per_msg={:.1} call_rtt_batch_ns={:.1} call_sampled {}",
                    i + 1,
                    *c as f64 / n_cast as f64,
                    *b as f64 / n_call as f64,
                    sm.line()
                );
            }
            let cast = common::median(casts.iter().copied()) as f64;
            let call = common::median(calls.iter().copied()) as f64;
            let p50 = common::median(samples.iter().map(|x| x.p50));
            let p99 = common::median(samples.iter().map(|x| x.p99));
            let rate = n_cast as f64 / (cast / 1e9);
            let rtt = call / n_call as f64;
            println!(
                "SUMMARY {s} {f} median_of_runs: cast msgs_per_s={rate:.0} ns_per_msg={:.1} \
                 call_rtt_batch_ns={rtt:.1} call_sampled p50={} p99={}",
                cast / n_cast as f64,
                common::us(p50),
                common::us(p99)
            );
            println!("METRIC {s}/{f}/cast {rate:.0} ops/s");
            println!("METRIC {s}/{f}/call_rtt_batch {rtt:.1} ns");
            println!("METRIC {s}/{f}/call_rtt_p50 {} us", common::us(p50));
            println!("METRIC {s}/{f}/call_rtt_p99 {} us", common::us(p99));
        }
    }
}
