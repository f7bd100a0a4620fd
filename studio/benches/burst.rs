//! A burst of events to Warden Studio's web view: `RATE` events a second (10,000) for `SECS`
//! seconds (10) from 100 agents, with two viewers over HTTP (server-sent events): one that
//! reads everything, one that reads a frame every 100 ms. Reports what reached each viewer,
//! how often the slow one was sent a snapshot instead of what it missed, the studio's dropped
//! inputs, and the process's resident memory before, during and after (it must not grow with
//! the burst: a slow viewer costs a bounded buffer).
//!
//! ```text
//! cargo bench -p warden-studio --bench burst
//! WARDEN_BENCH_QUICK=1 cargo bench -p warden-studio --bench burst   # one second
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use warden_agents::agent::{AgentEvent, AgentEventKind};
use warden_studio::Studio;
use warden_studio::remote::Remote;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Default)]
struct Seen {
    frames: AtomicU64,
    snapshots: AtomicU64,
}

async fn follow(url: String, seen: Arc<Seen>, pause: Option<Duration>) {
    let Ok(mut remote) = Remote::connect(&url, None).await else {
        return;
    };
    while let Ok(frame) = remote.next().await {
        seen.frames.fetch_add(1, Ordering::Relaxed);
        if matches!(frame, warden_studio::Frame::Snapshot { .. }) {
            seen.snapshots.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
}

fn main() {
    let quick = std::env::var_os("WARDEN_BENCH_QUICK").is_some();
    let rate = env_u64("RATE", 10_000);
    let secs = env_u64("SECS", if quick { 1 } else { 10 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let studio = Studio::builder().start();
        let server = studio.serve("127.0.0.1:0").await.expect("serve");
        let (fast, slow) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
        tokio::spawn(follow(server.url(), fast.clone(), None));
        tokio::spawn(follow(server.url(), slow.clone(), Some(Duration::from_millis(100))));
        while fast.frames.load(Ordering::Relaxed) == 0 || slow.frames.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let rss_before = rss_kib();
        let observe = studio.agent_observer();
        let names: Vec<Arc<str>> = (0..100).map(|i| Arc::from(format!("agent-{i}"))).collect();
        let total = rate * secs;
        let started = Instant::now();
        let mut rss_peak = rss_before;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let per_ms = (rate / 1000).max(1);
        let mut sent = 0u64;
        while sent < total {
            tick.tick().await;
            for _ in 0..per_ms.min(total - sent) {
                observe(&AgentEvent {
                    agent: names[(sent % 100) as usize].clone(),
                    kind: AgentEventKind::ModelCalled {
                        iteration: u32::try_from(sent / 100 + 1).unwrap_or(u32::MAX),
                    },
                });
                sent += 1;
            }
            if sent % 1000 == 0 {
                rss_peak = rss_peak.max(rss_kib());
            }
        }
        let elapsed = started.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_after = rss_kib();
        let (ff, sf, ss) = (
            fast.frames.load(Ordering::Relaxed),
            slow.frames.load(Ordering::Relaxed),
            slow.snapshots.load(Ordering::Relaxed),
        );
        println!("# burst: {sent} events in {elapsed:.2?} ({:.0}/s) from 100 agents, two viewers over HTTP", sent as f64 / elapsed.as_secs_f64());
        println!("| viewer | frames | frames/s | snapshots |");
        println!("|---|---:|---:|---:|");
        println!("| reads everything | {ff} | {:.0} | {} |", ff as f64 / elapsed.as_secs_f64(), fast.snapshots.load(Ordering::Relaxed));
        println!("| reads every 100 ms | {sf} | {:.0} | {ss} |", sf as f64 / elapsed.as_secs_f64());
        println!(
            "SUMMARY studio_burst events={sent} dropped={} fast_frames={ff} slow_frames={sf} slow_snapshots={ss} rss_kib_before={rss_before} peak={rss_peak} after={rss_after}",
            studio.dropped()
        );
        server.shutdown().await;
    });
}
