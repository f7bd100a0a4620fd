//! The journal's cost, measured on the embedded store with fsync on every commit:
//!
//! - one agent appending steps one after another (each waits for its commit): per-step p50/p99;
//! - 1,000 agents appending at once (group commit): steps per second;
//! - replay: reading back a task of 10,000 steps.
//!
//! `cargo bench -p warden-durable --bench journal` (add `-- --quick` for a short run), on a
//! temporary embedded store; on PostgreSQL: `cargo bench -p warden-durable --features postgres
//! --bench journal -- --store postgres://...` (a fresh database: it adds tasks). Figures in
//! BENCHMARKS.md section 10.

use std::time::{Duration, Instant};

use warden_durable::{Journal, StepId, StepKind};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let at = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[at]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (one_steps, agents, steps_each, replay_steps) = if quick {
        (200, 100, 10, 2_000)
    } else {
        (2_000, 1_000, 20, 10_000)
    };
    let args: Vec<String> = std::env::args().collect();
    let store = args.iter().position(|a| a == "--store").and_then(|at| args.get(at + 1));
    let dir = tempfile::tempdir()?;
    let journal = match store {
        Some(location) => Journal::open_location(location).await?,
        None => Journal::open(dir.path().join("bench.redb"))?,
    };
    println!("store: {}", journal.location());
    let result = vec![7u8; 512];

    // One agent: each step waits for its own commit.
    let task = journal.accept("one", vec![0; 64]).await?;
    let mut samples = Vec::with_capacity(one_steps);
    for i in 0..one_steps {
        let started = Instant::now();
        journal
            .record_result(StepId::new(task, i as u32), StepKind::Tool, "lookup", result.clone())
            .await?;
        samples.push(started.elapsed());
    }
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    println!("one agent: {one_steps} steps, per step p50 {p50:?} p99 {p99:?}");

    // Many agents at once: group commit.
    let mut tasks = Vec::with_capacity(agents);
    for a in 0..agents {
        tasks.push(journal.accept(&format!("agent-{a}"), vec![0; 64]).await?);
    }
    let started = Instant::now();
    let mut running = Vec::with_capacity(agents);
    for task in tasks {
        let journal = journal.clone();
        let result = result.clone();
        running.push(tokio::spawn(async move {
            for i in 0..steps_each {
                journal
                    .record_result(StepId::new(task, i), StepKind::Model, "m", result.clone())
                    .await?;
            }
            Ok::<_, warden_durable::JournalError>(())
        }));
    }
    for run in running {
        run.await??;
    }
    let elapsed = started.elapsed();
    let total = agents as u32 * steps_each;
    println!(
        "{agents} agents x {steps_each} steps: {total} steps in {elapsed:?}, {:.0} steps/s",
        f64::from(total) / elapsed.as_secs_f64()
    );

    // Replay: one task of many steps read back.
    let long = journal.accept("long", vec![0; 64]).await?;
    let batch: Vec<_> = (0..replay_steps)
        .map(|i| {
            let journal = journal.clone();
            let result = result.clone();
            tokio::spawn(async move {
                journal
                    .record_result(StepId::new(long, i), StepKind::Tool, "t", result)
                    .await
            })
        })
        .collect();
    for write in batch {
        write.await??;
    }
    let mut replays = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let steps = journal.steps(long).await?;
        replays.push(started.elapsed());
        assert_eq!(steps.len(), replay_steps as usize);
    }
    let p50 = percentile(&mut replays, 0.5);
    println!("replay of {replay_steps} steps: p50 {p50:?}");
    Ok(())
}
