//! Crash storm: 10 000 crashes back to back into ONE Warden supervisor (one
//! child, one_for_one, intensity `10 * 10 000 + 10` in 5 s so it is never
//! reached), as the OTP baseline's storm run (`otpb_restart` with `BATCH=0`,
//! `PERIOD=5`). Every restart stays inside the 5 s window, so the supervisor's
//! restart history grows to 10 000 entries; OTP slows from ~6 µs to ~80 µs p50
//! because its history is a list it scans on every restart.
//!
//! Each restart is timed as in the `restart` bench (crash injected → the new
//! child has started and answered a ping). The latencies are reported in
//! restart order, in buckets: the first 1 000, the middle, the last 1 000; a
//! flat profile means the cost of a restart does not grow with the history.
//! 5 runs plus a warm-up run of 1 000 crashes; per bucket, the median across
//! runs of each run's p50 and p99.
//!
//! ```text
//! cargo bench --bench storm 2>/dev/null
//! WARDEN_BENCH_QUICK=1 cargo bench --bench storm        # a few seconds
//! ```
//!
//! Each storm ends with machine-readable lines `METRIC <storm>/<runtime>/<stat> <value> <unit>`
//! (all restarts' p50 and p99, the first and last bucket's p50, last ÷ first), read by
//! `benches/compare`.
//!
//! Settings (environment): `RUNS` (5), `CRASHES` (10000), `BUCKET` (1000),
//! `CRASH` (`kill`, `call`, or both by default), `WARDEN_BENCH_RUNTIME`
//! (`mt2`, `mt2w`, `ct`, comma-separated; `mt2,ct` by default).

#[path = "support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Flavor, Summary, Worker, WorkerMsg};
use ractor::rpc::CallResult;
use tokio::sync::mpsc::unbounded_channel;
use warden::supervisor::{ChildSpec, Strategy, Supervisor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    Kill,
    Call,
}

impl Crash {
    fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Call => "call",
        }
    }
}

/// One supervisor takes all `n` crashes; the latencies in restart order.
async fn storm(crash: Crash, n: usize) -> Vec<u64> {
    let (tx, mut rx) = unbounded_channel();
    let spec = ChildSpec::actor("w1", move || {
        (
            Worker {
                index: 0,
                started: Some(tx.clone()),
            },
            (),
        )
    });
    let intensity = u32::try_from(10 * n + 10).unwrap_or(u32::MAX);
    let sup = Supervisor::builder("storm")
        .strategy(Strategy::OneForOne)
        .intensity(intensity, Duration::from_secs(5))
        .child(spec)
        .spawn()
        .await
        .expect("the supervisor starts");
    let mut lat = Vec::with_capacity(n);
    let mut worker = common::collect_started(&mut rx, 1).await.remove(0);
    for _ in 0..n {
        let t0 = Instant::now();
        match crash {
            Crash::Kill => worker.kill(),
            Crash::Call => {
                let r = worker.call(WorkerMsg::PanicInCall, None).await;
                assert!(!matches!(r, Ok(CallResult::Success(()))));
            }
        }
        worker = common::collect_started(&mut rx, 1).await.remove(0);
        common::ping(&worker).await;
        lat.push(common::nanos(t0.elapsed()));
    }
    assert!(sup.is_alive(), "the intensity was never reached");
    sup.stop().await;
    lat
}

fn main() {
    let quick = common::quick();
    let runs = common::env_usize("RUNS", if quick { 1 } else { 5 });
    let n = common::env_usize("CRASHES", if quick { 3_000 } else { 10_000 });
    let bucket = common::env_usize("BUCKET", if quick { 300 } else { 1_000 });
    assert!(n >= 3 * bucket, "CRASHES must be at least 3 * BUCKET");
    let crashes = match std::env::var("CRASH").as_deref() {
        Ok("kill") => vec![Crash::Kill],
        Ok("call") => vec![Crash::Call],
        _ => vec![Crash::Kill, Crash::Call],
    };
    common::header("storm");
    println!("# runs={runs} crashes={n} bucket={bucket} (one supervisor per run, period 5 s)");
    for flavor in Flavor::selected() {
        let rt = flavor.runtime();
        for &crash in &crashes {
            let name = format!("storm/one_for_one/1/{}", crash.name());
            common::run_on(&rt, storm(crash, n.min(1000)));
            let mut per_run = Vec::with_capacity(runs);
            for r in 1..=runs {
                let lat = common::run_on(&rt, storm(crash, n));
                let first = Summary::of(&lat[..bucket]);
                let middle = Summary::of(&lat[bucket..n - bucket]);
                let last = Summary::of(&lat[n - bucket..]);
                let all = Summary::of(&lat);
                println!("{name} {} {r} first    {}", flavor.name(), first.line());
                println!("{name} {} {r} middle   {}", flavor.name(), middle.line());
                println!("{name} {} {r} last     {}", flavor.name(), last.line());
                println!("{name} {} {r} all      {}", flavor.name(), all.line());
                per_run.push([first, middle, last, all]);
            }
            for (i, label) in ["first", "middle", "last", "all"].iter().enumerate() {
                let p50 = common::median(per_run.iter().map(|b| b[i].p50));
                let p99 = common::median(per_run.iter().map(|b| b[i].p99));
                println!(
                    "SUMMARY {name} {} {label:<6} median_of_runs: p50={} p99={} (runs={runs})",
                    flavor.name(),
                    common::us(p50),
                    common::us(p99)
                );
            }
            let first = common::median(per_run.iter().map(|b| b[0].p50));
            let last = common::median(per_run.iter().map(|b| b[2].p50));
            println!(
                "SUMMARY {name} {} last/first p50 = {:.2} (OTP +S 2 storm: p50 80.3 µs kill, 84.7 µs call; 5.55 / 9.35 µs with fresh supervisors)",
                flavor.name(),
                last as f64 / first as f64
            );
            // Machine-readable, for benches/compare.
            let all50 = common::median(per_run.iter().map(|b| b[3].p50));
            let all99 = common::median(per_run.iter().map(|b| b[3].p99));
            let f = flavor.name();
            println!("METRIC {name}/{f}/p50 {} us", common::us(all50));
            println!("METRIC {name}/{f}/p99 {} us", common::us(all99));
            println!("METRIC {name}/{f}/first_p50 {} us", common::us(first));
            println!("METRIC {name}/{f}/last_p50 {} us", common::us(last));
            println!("METRIC {name}/{f}/last_over_first {:.3} x", last as f64 / first as f64);
        }
    }
}
