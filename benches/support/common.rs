//! Shared pieces of the Warden benchmarks: the worker every benchmark runs (the
//! Rust twin of the OTP baseline's `otpb_worker`), the two runtimes, quick mode,
//! and the statistics (nearest-rank percentiles, as `otpb_stats`).
//!
//! Included by each bench with `#[path = "support/common.rs"] mod common;`.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// What the worker handles: `otpb_worker`'s calls and casts.
pub(crate) enum WorkerMsg {
    /// `gen_server:call(Pid, ping)`.
    Ping(RpcReplyPort<()>),
    /// A cast that panics in the handler.
    Panic,
    /// A cast whose handler returns an error.
    Fail,
    /// A call that panics in the handler (OTP: `erlang:error/1` in `handle_call`).
    PanicInCall(RpcReplyPort<()>),
    /// `gen_server:cast(Pid, inc)`.
    Inc,
    /// Answers how many `Inc` were handled since the last `Count`, and resets it.
    Count(RpcReplyPort<u64>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for WorkerMsg {}

/// Where a worker announces each (re)start: its index and its actor.
pub(crate) type Started = UnboundedSender<(usize, ActorRef<WorkerMsg>)>;

/// A minimal worker. Its `pre_start` tells the benchmark it started (OTP's
/// `init/1` sending `{started, I, self()}`), when it has somewhere to tell.
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) started: Option<Started>,
}

impl Worker {
    /// A worker that tells nobody it started.
    pub(crate) fn quiet() -> Self {
        Self {
            index: 0,
            started: None,
        }
    }
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<WorkerMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        if let Some(tx) = &self.started {
            let _ = tx.send((self.index, myself));
        }
        Ok(0)
    }

    async fn handle(&self, _: ActorRef<WorkerMsg>, msg: WorkerMsg, count: &mut u64) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Ping(reply) => {
                let _ = reply.send(());
            }
            WorkerMsg::Panic | WorkerMsg::PanicInCall(_) => panic!("deliberate crash"),
            WorkerMsg::Fail => return Err("deliberate crash".into()),
            WorkerMsg::Inc => *count += 1,
            WorkerMsg::Count(reply) => {
                let _ = reply.send(std::mem::take(count));
            }
        }
        Ok(())
    }
}

/// Waits for `k` workers to announce a start and returns them by index.
pub(crate) async fn collect_started(
    rx: &mut UnboundedReceiver<(usize, ActorRef<WorkerMsg>)>,
    k: usize,
) -> Vec<ActorRef<WorkerMsg>> {
    let mut slots: Vec<Option<ActorRef<WorkerMsg>>> = vec![None; k];
    for _ in 0..k {
        let (i, r) = rx.recv().await.expect("a worker announces its start");
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|s| s.expect("every worker started once"))
        .collect()
}

/// A worker that is the only child of a one_for_one Warden supervisor called
/// `id`, once it has started: the worker and its supervisor.
pub(crate) async fn supervised_worker(id: &str) -> (ActorRef<WorkerMsg>, warden::supervisor::Supervisor) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sup = warden::supervisor::Supervisor::builder(id)
        .child(warden::supervisor::ChildSpec::actor("w1", move || {
            (
                Worker {
                    index: 0,
                    started: Some(tx.clone()),
                },
                (),
            )
        }))
        .spawn()
        .await
        .expect("supervisor");
    (collect_started(&mut rx, 1).await.remove(0), sup)
}

/// `gen_server:call(Pid, ping)`; panics if the worker does not answer.
pub(crate) async fn ping(worker: &ActorRef<WorkerMsg>) {
    match worker.call(WorkerMsg::Ping, None).await {
        Ok(CallResult::Success(())) => {}
        _ => panic!("worker did not answer a ping"),
    }
}

// ---- runtimes ------------------------------------------------------------------

/// The runtimes latency figures are taken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Multi-thread runtime with 2 workers, tokio's defaults: compare with OTP `+S 2`.
    Multi2,
    /// Multi-thread runtime with 2 workers from `warden::runtime::multi_thread()`
    /// (idle workers wait briefly before they park; `WARDEN_BENCH_PARK_DELAY_US`
    /// sets another delay): compare with OTP `+S 2`.
    Multi2Warden,
    /// Current-thread runtime: compare with OTP `+S 1`.
    Current,
}

impl Flavor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Multi2 => "mt2",
            Self::Multi2Warden => "mt2w",
            Self::Current => "ct",
        }
    }

    pub(crate) fn otp(self) -> &'static str {
        match self {
            Self::Multi2 | Self::Multi2Warden => "+S 2",
            Self::Current => "+S 1",
        }
    }

    /// Whether this is a multi-thread runtime.
    pub(crate) fn is_multi_thread(self) -> bool {
        self != Self::Current
    }

    pub(crate) fn runtime(self) -> Runtime {
        match self {
            Self::Multi2 => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
            Self::Multi2Warden => {
                let mut builder = warden::runtime::multi_thread();
                if let Ok(us) = std::env::var("WARDEN_BENCH_PARK_DELAY_US") {
                    let us = us
                        .parse()
                        .expect("WARDEN_BENCH_PARK_DELAY_US is a number of microseconds");
                    warden::runtime::park_delay(&mut builder, Duration::from_micros(us));
                }
                builder.worker_threads(2).build()
            }
            Self::Current => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        }
        .expect("a tokio runtime")
    }

    /// The flavors selected by `WARDEN_BENCH_RUNTIME` (a comma-separated list of `mt2`,
    /// `mt2w`, `ct`), or `default`.
    pub(crate) fn selected_or(default: &[Flavor]) -> Vec<Flavor> {
        match std::env::var("WARDEN_BENCH_RUNTIME") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|name| match name.trim() {
                    "mt2" => Self::Multi2,
                    "mt2w" => Self::Multi2Warden,
                    "ct" => Self::Current,
                    other => panic!("WARDEN_BENCH_RUNTIME: unknown runtime {other:?} (mt2, mt2w, ct)"),
                })
                .collect(),
            _ => default.to_vec(),
        }
    }

    /// [`Flavor::selected_or`] with `mt2` and `ct` by default.
    pub(crate) fn selected() -> Vec<Flavor> {
        Self::selected_or(&[Self::Multi2, Self::Current])
    }
}

/// Runs `f` as a task of `rt`, so that the benchmark itself runs on the
/// runtime's worker threads (as the OTP benchmark is a process on a scheduler),
/// not on the thread blocked in `block_on`.
pub(crate) fn run_on<F>(rt: &Runtime, f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(f).await.expect("benchmark task") })
}

// ---- settings ------------------------------------------------------------------

/// Quick mode (`WARDEN_BENCH_QUICK=1` or a `--quick` argument): a few seconds
/// in all, to check that the benchmark still runs.
pub(crate) fn quick() -> bool {
    let env = std::env::var("WARDEN_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    env || std::env::args().any(|a| a == "--quick")
}

/// An integer setting from the environment, with a default.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

// ---- statistics ----------------------------------------------------------------

/// One run's statistics, in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
    pub(crate) mean: u64,
}

impl Summary {
    pub(crate) fn of(samples: &[u64]) -> Self {
        let mut s = samples.to_vec();
        s.sort_unstable();
        let n = s.len();
        assert!(n > 0, "no samples");
        Self {
            n,
            p50: pct_sorted(&s, 50.0),
            p90: pct_sorted(&s, 90.0),
            p99: pct_sorted(&s, 99.0),
            p999: pct_sorted(&s, 99.9),
            max: s[n - 1],
            mean: (s.iter().map(|&x| u128::from(x)).sum::<u128>() / n as u128) as u64,
        }
    }

    /// `p50 p90 p99 p99.9 max mean`, in µs.
    pub(crate) fn line(&self) -> String {
        format!(
            "n={} p50={} p90={} p99={} p999={} max={} mean={}",
            self.n,
            us(self.p50),
            us(self.p90),
            us(self.p99),
            us(self.p999),
            us(self.max),
            us(self.mean)
        )
    }
}

/// Nearest-rank percentile of sorted samples (as `otpb_stats:pct_sorted`).
pub(crate) fn pct_sorted(sorted: &[u64], p: f64) -> u64 {
    let n = sorted.len();
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// The median (nearest rank) of per-run figures, as `otpb_stats:median`.
pub(crate) fn median(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.into_iter().collect();
    v.sort_unstable();
    pct_sorted(&v, 50.0)
}

/// Nanoseconds as microseconds with two decimals.
pub(crate) fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

/// Elapsed time in whole nanoseconds.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A header line with what produced the figures.
pub(crate) fn header(bench: &str) {
    println!(
        "# {bench}: quick={} RUST_BACKTRACE={} nproc={}",
        quick(),
        std::env::var("RUST_BACKTRACE").unwrap_or_else(|_| "unset".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
