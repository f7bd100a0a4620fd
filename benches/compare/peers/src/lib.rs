//! Shared pieces of the peer benchmarks (issue 7, pair 6): the 2-worker
//! runtime, settings from the environment, and the statistics, the same as
//! Warden's `benches/support/common.rs` (nearest-rank percentiles, medians of
//! per-run figures).
//!
//! Used by `src/bin/restart.rs`, `src/bin/spawn.rs` and `src/bin/conformance.rs`;
//! `bash benches/compare/pairs/06-peers.sh` runs them.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;

/// The multi-thread runtime with 2 workers every figure is taken on (Warden's `mt2`).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` as a task of `rt`, so the benchmark itself runs on the runtime's workers.
pub fn run_on<F>(rt: &Runtime, f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(f).await.expect("benchmark task") })
}

/// An integer setting from the environment, with a default.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// A string setting from the environment, with a default.
pub fn env_str(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Nearest-rank percentile of sorted samples.
pub fn pct_sorted(sorted: &[u64], p: f64) -> u64 {
    let n = sorted.len();
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// (p50, p99) of samples.
pub fn p50_p99(samples: &[u64]) -> (u64, u64) {
    let mut s = samples.to_vec();
    s.sort_unstable();
    (pct_sorted(&s, 50.0), pct_sorted(&s, 99.0))
}

/// The median (nearest rank) of per-run figures.
pub fn median(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.into_iter().collect();
    v.sort_unstable();
    pct_sorted(&v, 50.0)
}

/// Nanoseconds as microseconds with two decimals.
pub fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1000.0)
}

/// Elapsed time in whole nanoseconds.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
