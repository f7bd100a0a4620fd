//! Restart latency of a Warden supervisor, measured as the OTP baseline's
//! `otpb_restart` measures OTP's (see /work/shared/anchors/otp-bench).
//!
//! The clock starts when the benchmark injects the crash into child 1 and stops
//! when every child the strategy restarts has started again (its `pre_start`
//! sent its `ActorRef` to the benchmark over a channel) and answered a ping
//! call. Crashes: `kill` (`ActorRef::kill` from outside), `panic` (a cast whose
//! handler panics), `error` (a cast whose handler returns `Err`), and `call`
//! (a call whose handler panics; the clock starts before the call, which
//! returns once the child is gone, as OTP's `handle_call` crash).
//!
//! Setup as OTP's: 10 000 crashes per run, 5 runs plus a warm-up run (at most
//! 1 000 crashes) that is not reported, a fresh supervisor every 100 crashes
//! (not timed), intensity `10 * 100 + 10` in 1 s so it is never reached,
//! children permanent with a 5 s shutdown. Each scenario runs on a
//! multi-thread runtime with 2 workers (vs OTP `+S 2`) and a current-thread
//! runtime (vs `+S 1`); the benchmark itself is a task on that runtime.
//! The `bare` scenarios are the same worker under a hand-written ractor parent
//! that respawns it on any exit: what ractor alone costs.
//!
//! The default panic hook runs on every panic (it prints the message to stderr,
//! and a backtrace when `RUST_BACKTRACE=1`): send stderr to /dev/null.
//!
//! ```text
//! cargo bench --bench restart 2>/dev/null
//! RUST_BACKTRACE=1 SCENARIOS=one_for_one:1:panic,bare:1:panic cargo bench --bench restart 2>/dev/null
//! RUST_BACKTRACE=1 PANIC_REPORT=1 SCENARIOS=one_for_one:1:panic cargo bench --bench restart 2>/dev/null
//! WARDEN_BENCH_QUICK=1 cargo bench --bench restart        # a few seconds
//! ```
//!
//! Besides the `SUMMARY` lines, each scenario ends with machine-readable lines
//! `METRIC <scenario>/<runtime>/<p50|p99> <value> us` (read by `benches/compare`).
//!
//! Settings (environment): `RUNS` (5), `CRASHES` (10000), `CRASHES_GROUP`
//! (crashes per run for the 10-child scenarios; default `CRASHES`), `BATCH`
//! (100; 0 = one supervisor per run), `SCENARIOS` (e.g.
//! `one_for_one:1:kill,rest_for_one:10:call,bare:1:panic`),
//! `WARDEN_BENCH_RUNTIME` (`mt2`, `mt2w`, `ct`, comma-separated; `mt2,ct` by default), `WARDEN_BENCH_STUDIO` (`1`: a
//! Warden Studio attached to every supervisor, with a viewer reading each change as JSON, to
//! measure what watching costs).

#[path = "support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Flavor, Summary, Worker, WorkerMsg};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::mpsc::unbounded_channel;
use warden::supervisor::{ChildSpec, Strategy, Supervisor};
use warden_studio::Studio;

/// How the crash is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    Kill,
    Panic,
    Error,
    Call,
}

impl Crash {
    fn parse(s: &str) -> Self {
        match s {
            "kill" => Self::Kill,
            "panic" => Self::Panic,
            "error" => Self::Error,
            "call" => Self::Call,
            other => panic!("unknown crash {other:?}: kill, panic, error or call"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Panic => "panic",
            Self::Error => "error",
            Self::Call => "call",
        }
    }

    async fn inject(self, victim: &ActorRef<WorkerMsg>) {
        match self {
            Self::Kill => victim.kill(),
            Self::Panic => victim.cast(WorkerMsg::Panic).expect("victim is running"),
            Self::Error => victim.cast(WorkerMsg::Fail).expect("victim is running"),
            Self::Call => {
                let r = victim.call(WorkerMsg::PanicInCall, None).await;
                assert!(
                    !matches!(r, Ok(CallResult::Success(()))),
                    "a crashing call cannot answer"
                );
            }
        }
    }
}

/// Who supervises the children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Warden(Strategy),
    /// A hand-written ractor parent that respawns its one child on any exit.
    Bare,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    target: Target,
    children: usize,
    crash: Crash,
}

impl Scenario {
    fn parse(s: &str) -> Self {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [target, k, crash] = parts[..] else {
            panic!("a scenario is STRATEGY:CHILDREN:CRASH, not {s:?}");
        };
        let target = match target {
            "one_for_one" => Target::Warden(Strategy::OneForOne),
            "one_for_all" => Target::Warden(Strategy::OneForAll),
            "rest_for_one" => Target::Warden(Strategy::RestForOne),
            "bare" => Target::Bare,
            other => panic!("unknown strategy {other:?}"),
        };
        let children: usize = k.parse().expect("a number of children");
        assert!(children >= 1, "at least one child");
        assert!(target != Target::Bare || children == 1, "bare has one child");
        Self {
            target,
            children,
            crash: Crash::parse(crash),
        }
    }

    fn name(&self) -> String {
        let t = match self.target {
            Target::Warden(Strategy::OneForOne) => "one_for_one",
            Target::Warden(Strategy::OneForAll) => "one_for_all",
            Target::Warden(Strategy::RestForOne) => "rest_for_one",
            Target::Bare => "bare",
        };
        format!("{t}/{}/{}", self.children, self.crash.name())
    }

    /// OTP's p50 and p99 in µs (RESULTS.md, run A) for the same scenario.
    fn otp(&self, flavor: Flavor) -> Option<(f64, f64)> {
        let Target::Warden(strategy) = self.target else {
            return None;
        };
        let mt = flavor.is_multi_thread();
        let pick = |a: (f64, f64), b: (f64, f64)| Some(if mt { a } else { b });
        match (strategy, self.children, self.crash) {
            (Strategy::OneForOne, 1, Crash::Kill) => pick((5.55, 18.5), (5.05, 8.3)),
            (Strategy::OneForOne, 1, Crash::Call) => pick((9.35, 29.8), (8.38, 15.5)),
            (Strategy::OneForAll, 10, Crash::Kill) => pick((56.1, 357.0), (49.0, 77.5)),
            (Strategy::OneForAll, 10, Crash::Call) => pick((63.1, 290.0), (52.9, 78.8)),
            (Strategy::RestForOne, 10, Crash::Kill) => pick((58.7, 356.0), (49.4, 73.9)),
            (Strategy::RestForOne, 10, Crash::Call) => pick((60.9, 263.0), (53.0, 83.4)),
            _ => None,
        }
    }
}

fn default_scenarios() -> Vec<Scenario> {
    [
        "one_for_one:1:kill",
        "one_for_one:1:panic",
        "one_for_one:1:error",
        "one_for_one:1:call",
        "one_for_all:10:kill",
        "one_for_all:10:call",
        "rest_for_one:10:kill",
        "rest_for_one:10:call",
        "bare:1:kill",
        "bare:1:panic",
        "bare:1:error",
        "bare:1:call",
    ]
    .into_iter()
    .map(Scenario::parse)
    .collect()
}

// ---- one run -------------------------------------------------------------------------

/// `n` crashes, a fresh supervisor every `batch` (0: one for the whole run);
/// returns the latencies in nanoseconds.
async fn run(sc: Scenario, n: usize, batch: usize) -> Vec<u64> {
    let per_sup = if batch == 0 { n } else { batch };
    let mut lat = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let this = left.min(per_sup);
        match sc.target {
            Target::Warden(strategy) => warden_batch(strategy, sc.children, sc.crash, this, &mut lat).await,
            Target::Bare => bare_batch(sc.crash, this, &mut lat).await,
        }
        left -= this;
    }
    lat
}

/// The crash loop of OTP's `crash_loop/5`.
async fn crash_loop(
    crash: Crash,
    k: usize,
    n: usize,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, ActorRef<WorkerMsg>)>,
    lat: &mut Vec<u64>,
) {
    let mut workers = common::collect_started(rx, k).await;
    for _ in 0..n {
        let t0 = Instant::now();
        crash.inject(&workers[0]).await;
        workers = common::collect_started(rx, k).await;
        for w in workers.iter().rev() {
            common::ping(w).await;
        }
        lat.push(common::nanos(t0.elapsed()));
    }
}

async fn warden_batch(strategy: Strategy, k: usize, crash: Crash, n: usize, lat: &mut Vec<u64>) {
    let (tx, mut rx) = unbounded_channel();
    let children = (0..k).map(|index| {
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
    });
    let intensity = u32::try_from(10 * n + 10).unwrap_or(u32::MAX);
    let studio = studio_attached().then(|| {
        let studio = Studio::builder().start();
        // A viewer that reads every change as JSON, as the page does.
        let mut viewer = studio.subscribe();
        tokio::spawn(async move { while viewer.next_json().await.is_some() {} });
        studio
    });
    let mut builder = Supervisor::builder("bench")
        .strategy(strategy)
        .intensity(intensity, Duration::from_secs(1))
        .children(children);
    if let Some(studio) = &studio {
        builder = builder.inline_observer(studio.supervisor_observer());
    }
    let sup = builder.spawn().await.expect("the supervisor starts");
    if let Some(studio) = &studio {
        studio.attach(&sup).await;
    }
    crash_loop(crash, k, n, &mut rx, lat).await;
    sup.stop().await;
    if let Some(studio) = studio {
        studio.close_viewers();
        assert_eq!(studio.dropped(), 0, "the studio kept up");
    }
}

/// `WARDEN_BENCH_STUDIO=1`: a Warden Studio attached to each supervisor, with a viewer.
fn studio_attached() -> bool {
    std::env::var("WARDEN_BENCH_STUDIO").is_ok_and(|v| v == "1")
}

/// A hand-written ractor parent: respawns its child whenever it exits.
struct BareParent;

impl Actor for BareParent {
    type Msg = ();
    type State = common::Started;
    type Arguments = common::Started;

    async fn pre_start(&self, myself: ActorRef<()>, tx: common::Started) -> Result<Self::State, ActorProcessingErr> {
        spawn_bare_child(&myself, &tx).await?;
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        tx: &mut common::Started,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(..) | SupervisionEvent::ActorTerminated(..) => {
                spawn_bare_child(&myself, tx).await
            }
            _ => Ok(()),
        }
    }
}

async fn spawn_bare_child(parent: &ActorRef<()>, tx: &common::Started) -> Result<(), ActorProcessingErr> {
    let worker = Worker {
        index: 0,
        started: Some(tx.clone()),
    };
    Actor::spawn_linked(None, worker, (), parent.get_cell()).await?;
    Ok(())
}

async fn bare_batch(crash: Crash, n: usize, lat: &mut Vec<u64>) {
    let (tx, mut rx) = unbounded_channel();
    let (parent, join) = Actor::spawn(None, BareParent, tx).await.expect("the parent starts");
    crash_loop(crash, 1, n, &mut rx, lat).await;
    parent.stop(None);
    join.await.ok();
}

// ---- main ------------------------------------------------------------------------------

fn main() {
    if std::env::var("PANIC_REPORT").is_ok_and(|v| v == "1") {
        // Warden's asynchronous panic reporter: no backtrace on the crash path.
        warden::supervisor::panic_report::install();
        println!("# panic_report installed");
    }
    let quick = common::quick();
    let runs = common::env_usize("RUNS", if quick { 1 } else { 5 });
    let crashes = common::env_usize("CRASHES", if quick { 200 } else { 10_000 });
    let crashes_group = common::env_usize("CRASHES_GROUP", crashes);
    let batch = common::env_usize("BATCH", 100);
    let scenarios: Vec<Scenario> = match std::env::var("SCENARIOS") {
        Ok(s) if !s.is_empty() => s.split(',').map(Scenario::parse).collect(),
        _ => default_scenarios(),
    };
    common::header("restart");
    if studio_attached() {
        println!("# studio attached (WARDEN_BENCH_STUDIO=1): an observer and a viewer reading every change");
    }
    println!("# runs={runs} crashes={crashes} crashes_group={crashes_group} batch={batch}");
    println!("# scenario runtime run n p50 p90 p99 p999 max mean (µs)");
    for flavor in Flavor::selected() {
        let rt = flavor.runtime();
        for &sc in &scenarios {
            let n = if sc.children > 1 { crashes_group } else { crashes };
            // Warm-up run, not reported.
            common::run_on(&rt, run(sc, n.min(1000), batch));
            let mut sums = Vec::with_capacity(runs);
            for r in 1..=runs {
                let s = Summary::of(&common::run_on(&rt, run(sc, n, batch)));
                println!("{} {} {r} {}", sc.name(), flavor.name(), s.line());
                sums.push(s);
            }
            let p50 = common::median(sums.iter().map(|s| s.p50));
            let p99 = common::median(sums.iter().map(|s| s.p99));
            let otp = match sc.otp(flavor) {
                Some((o50, o99)) => format!(
                    " | OTP {}: p50={o50} p99={o99} ratio p50={:.2} p99={:.2}",
                    flavor.otp(),
                    p50 as f64 / 1000.0 / o50,
                    p99 as f64 / 1000.0 / o99
                ),
                None => String::new(),
            };
            println!(
                "SUMMARY {} {} median_of_runs: p50={} p99={} (runs={runs}, n={n}){otp}",
                sc.name(),
                flavor.name(),
                common::us(p50),
                common::us(p99)
            );
            // Machine-readable, for benches/compare: `METRIC <scenario>/<runtime>/<stat> <value> us`.
            for (stat, v) in [("p50", p50), ("p99", p99)] {
                println!("METRIC {}/{}/{stat} {} us", sc.name(), flavor.name(), common::us(v));
            }
        }
    }
}
