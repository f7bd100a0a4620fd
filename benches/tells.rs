//! A million `tell`s at one slow agent (issue 13): the agent's queue stays at its capacity,
//! memory stays bounded by it, and every task it refused came back to its sender.
//!
//! One agent whose turns never finish (its first task holds it) runs under a supervisor
//! with the default queue capacity (1,024). The bench tells it `TELLS` tasks as fast as it
//! can, keeps every task handed back in `AgentError::Overloaded`, and counts: accepted +
//! refused = sent, refused tasks are the very tasks sent (ids checked), and the heap growth
//! while the agent holds its full queue (counted by a global allocator, `stats_alloc`).
//!
//! ```text
//! cargo bench --bench tells
//! WARDEN_BENCH_QUICK=1 cargo bench --bench tells     # 100,000 tells
//! ```

use std::alloc::System;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use warden::agents::agent::{Agent, AgentError, Behaviour, TurnContext, TurnError, TurnOutput};
use warden::agents::message::AgentMessage;
use warden::supervisor::{Strategy, Supervisor};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Never finishes a turn.
struct Stuck;

impl Behaviour for Stuck {
    fn turn<'a>(
        &'a self,
        _cx: &'a mut TurnContext,
        _task: &'a AgentMessage,
    ) -> BoxFuture<'a, Result<TurnOutput, TurnError>> {
        Box::pin(std::future::pending())
    }
}

fn main() {
    let quick = std::env::var_os("WARDEN_BENCH_QUICK").is_some();
    let tells: usize = std::env::var("TELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let agent = Agent::new("slow", Stuck);
        let slow = agent.handle();
        let root = Supervisor::builder("root")
            .strategy(Strategy::OneForOne)
            .child(agent.child_spec())
            .spawn()
            .await
            .expect("the tree starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = heap();
        let started = Instant::now();
        let mut accepted = 0usize;
        let mut refused = 0usize;
        let mut lost = 0usize;
        let mut peak = 0i64;
        for i in 0..tells {
            let task = AgentMessage::user(format!("task {i}"));
            let id = task.id;
            match slow.tell(task) {
                Ok(()) => accepted += 1,
                Err(AgentError::Overloaded { task, .. }) if task.id == id => refused += 1,
                Err(_) => lost += 1,
            }
            if i % 10_000 == 0 {
                peak = peak.max(heap() - before);
                // Let the agent's actor take its mailbox in, as a live service would.
                tokio::task::yield_now().await;
            }
        }
        let elapsed = started.elapsed();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let held = heap() - before;
        peak = peak.max(held);
        let status = slow.status().await.expect("the agent answers its status");
        println!("# {tells} tells at one agent whose turns never end (queue capacity 1,024)");
        println!(
            "| tells | accepted | refused, handed back | lost | queued (status) | heap held | peak heap growth | time |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {tells} | {accepted} | {refused} | {lost} | {} | {:.0} KiB | {:.0} KiB | {:.2} s |",
            status.queued,
            held as f64 / 1024.0,
            peak as f64 / 1024.0,
            elapsed.as_secs_f64()
        );
        println!(
            "SUMMARY tells n={tells} accepted={accepted} refused={refused} lost={lost} held_kib={:.0} peak_kib={:.0}",
            held as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        assert_eq!(accepted + refused, tells, "every task was accepted or handed back");
        assert_eq!(lost, 0);
        root.stop().await;
    });
}
