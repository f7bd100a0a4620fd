//! A chaos soak: a pool of supervised workers processes a stream of tasks
//! submitted through `warden::supervisor::request` while a chaos monkey kills
//! workers, then every invariant is checked.
//!
//!     cargo run --release --example chaos_soak -- --workers 1000 --kill-rate 50 --duration 60s --seed 7
//!
//! Other flags: `--task-rate N` (tasks per second, default 20000), `--work D`
//! (time a task takes, default 1ms), `--actions kill,stop,panic`, `--warmup D`
//! (default 2s). Durations take `ms`, `s` or `m`.
//!
//! Memory is compared from the end of a warm-up (the same traffic, no chaos)
//! to the end of the chaos: the first messages through each worker's mailbox
//! grow its channel once (tokio keeps a used block of 32 slots for reuse),
//! a one-time step of about 0.7 KiB per worker that says nothing about leaks.
//! The summary shows the cold figure too. The instruments (the event record,
//! the monkey's report, the recovery samples) and the ledger are left out by
//! the bytes their buffers hold; the invariant report is still alive at the
//! second reading and is counted, as it holds only what it lists. (Its list of
//! give-ups once kept a copy of the whole event record, by an in-place
//! `collect`: that was the heap growing about 200 bytes a kill.)
//!
//! It prints progress every second and ends with a summary table. It exits
//! non-zero if any invariant is broken: a task lost, hung or done twice, the
//! tree not back to its shape, an actor leaked, a restart unexplained, memory
//! after more than 10% above before.

#[path = "support/report.rs"]
mod report;

#[path = "../tests/support/ledger.rs"]
mod ledger;

use std::alloc::System;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ledger::{Ledger, Submitters, WorkerMsg};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::time::Instant;
use warden::chaos::{
    ActionOutcome, ActionRecord, Baseline, ChaosAction, ChaosMonkey, ChaosWatch, Invariants, Schedule, live_tasks,
};
use warden::supervisor::{Supervisor, SupervisorEvent, request};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed. (stats_alloc already folds a
/// `realloc`'s growth or shrinkage into `bytes_allocated` and
/// `bytes_deallocated`; `bytes_reallocated` is the same amount again.)
fn heap_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Resident set size in bytes, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[derive(Debug)]
struct Args {
    workers: usize,
    kill_rate: f64,
    duration: Duration,
    seed: u64,
    task_rate: f64,
    work: Duration,
    warmup: Duration,
    actions: Vec<ChaosAction>,
}

fn parse_duration(text: &str) -> Result<Duration> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number.parse().with_context(|| format!("bad duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => bail!("bad duration unit in {text:?} (use ms, s or m)"),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        workers: 1000,
        kill_rate: 50.0,
        duration: Duration::from_secs(60),
        seed: 7,
        task_rate: 20_000.0,
        work: Duration::from_millis(1),
        warmup: Duration::from_secs(2),
        actions: vec![ChaosAction::Kill],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" => args.workers = value()?.parse()?,
            "--kill-rate" => args.kill_rate = value()?.parse()?,
            "--duration" => args.duration = parse_duration(&value()?)?,
            "--seed" => args.seed = value()?.parse()?,
            "--task-rate" => args.task_rate = value()?.parse()?,
            "--work" => args.work = parse_duration(&value()?)?,
            "--warmup" => args.warmup = parse_duration(&value()?)?,
            "--actions" => {
                args.actions = value()?
                    .split(',')
                    .map(|a| match a {
                        "kill" => Ok(ChaosAction::Kill),
                        "stop" => Ok(ChaosAction::StopWithError),
                        "panic" => Ok(ChaosAction::Panic),
                        other => bail!("unknown action {other:?} (kill, stop, panic)"),
                    })
                    .collect::<Result<_>>()?
            }
            "--bench" => {} // passed by `cargo bench`-style runners; nothing to do
            other => bail!("unknown flag {other:?}"),
        }
    }
    if args.workers == 0 || args.task_rate <= 0.0 || args.kill_rate < 0.0 {
        bail!("--workers and --task-rate must be positive, --kill-rate not negative");
    }
    Ok(args)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::main]
async fn main() -> ExitCode {
    report::exit_code(run().await)
}

async fn run() -> Result<ExitCode> {
    let args = parse_args()?;
    println!(
        "chaos soak: {} workers, {} kills/s ({:?}), {:?}, seed {}, {} tasks/s of {:?} each",
        args.workers, args.kill_rate, args.actions, args.duration, args.seed, args.task_rate, args.work
    );

    // The tasks of the whole run (warm-up, then chaos) are numbered up front;
    // the ledger is allocated before memory is first read, and left out of it.
    let warm_tasks = (args.task_rate * args.warmup.as_secs_f64()).ceil() as u64;
    let chaos_tasks = (args.task_rate * args.duration.as_secs_f64()).ceil() as u64;
    let tasks = warm_tasks + chaos_tasks;
    let ledger = Ledger::new(tasks as usize, args.workers);
    let watch = ChaosWatch::new();
    let root = Supervisor::builder("root")
        .observer(watch.observer())
        .escalation_handler(watch.root_handler())
        .child(ledger::pool(&ledger, args.work, args.kill_rate))
        .spawn()
        .await?;
    let instruments = |watch: &ChaosWatch| (watch.heap_bytes() + ledger.heap_bytes()) as i64;
    let heap_cold = heap_bytes() - instruments(&watch);
    let submitters = Submitters {
        concurrency: 256,
        first: 0,
        tasks: warm_tasks,
        rate: Some(args.task_rate),
        deadline: Duration::from_secs(10),
        max_attempts: 100_000,
    };
    ledger::submit_all(ledger.clone(), submitters).await;
    println!("  warm-up: {warm_tasks} tasks in {:?}, no chaos", args.warmup);

    let baseline = Baseline::capture(&root).await?;
    let heap_before = heap_bytes() - instruments(&watch);
    let rss_before = rss_bytes();
    let tasks_before = live_tasks();

    // Recovery probes: from each kill to the restarted worker answering.
    let recoveries = Arc::new(Mutex::new(Vec::with_capacity(
        (args.kill_rate * args.duration.as_secs_f64() * 1.2) as usize + 16,
    )));
    let probe = {
        let (watch, ledger, recoveries) = (watch.clone(), ledger.clone(), recoveries.clone());
        move |action: &ActionRecord| {
            if action.outcome != ActionOutcome::Done {
                return;
            }
            let (watch, ledger, recoveries) = (watch.clone(), ledger.clone(), recoveries.clone());
            let (path, killed_at) = (action.path.clone(), action.instant);
            let Some(index) = path.id().strip_prefix('w').and_then(|i| i.parse::<usize>().ok()) else {
                return;
            };
            tokio::spawn(async move {
                let started =
                    |e: &SupervisorEvent| matches!(e, SupervisorEvent::ChildStarted { path: p, .. } if *p == path);
                if watch
                    .wait_for_since(killed_at, started, Duration::from_secs(10))
                    .await
                    .is_none()
                {
                    return;
                }
                if let Some(worker) = ledger.worker(index) {
                    let ping = request(&worker, WorkerMsg::Ping, Duration::from_secs(10)).await;
                    if ping.is_ok() {
                        recoveries.lock().unwrap().push(killed_at.elapsed());
                    }
                }
            });
        }
    };
    let monkey = ChaosMonkey::new(&root)
        .seed(args.seed)
        .target("root/pool/*".parse()?)
        .actions(args.actions.iter().copied())
        .schedule(Schedule::Rate(args.kill_rate))
        .duration(args.duration)
        .on_action(probe)
        .start();

    let submit = tokio::spawn(ledger::submit_all(
        ledger.clone(),
        Submitters {
            first: warm_tasks,
            tasks: chaos_tasks,
            ..submitters
        },
    ));

    // Progress, once a second.
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !submit.is_finished() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
        }
        let restarts = watch.count(|e| matches!(e, SupervisorEvent::Restarting { .. }));
        println!(
            "  {:>5.1}s  submitted {:>9}  completed {:>9}  retried {:>6}  kills {:>5}  restarts {:>5}  live tasks {:>6}",
            start.elapsed().as_secs_f64(),
            ledger.submitted.load(Ordering::Relaxed),
            ledger.completed.load(Ordering::Relaxed),
            ledger.retried.load(Ordering::Relaxed),
            monkey.actions_so_far(),
            restarts,
            live_tasks(),
        );
    }
    submit.await?;
    let chaos = monkey.stop().await;

    // Settle, check, and read memory with the instruments left out.
    let report = Invariants::new(&baseline, &watch)
        .chaos(&chaos)
        .settle(Duration::from_secs(30))
        .check(&root)
        .await;
    let mut recoveries = std::mem::take(&mut *recoveries.lock().unwrap());
    let recoveries_bytes = recoveries.capacity() * std::mem::size_of::<Duration>();
    let heap_after = heap_bytes() - instruments(&watch) - chaos.heap_bytes() as i64 - recoveries_bytes as i64;
    let rss_after = rss_bytes();
    recoveries.sort();
    let audit = ledger.audit(tasks);
    let escalations = watch.escalations().len();

    let submitted = ledger.submitted.load(Ordering::SeqCst);
    let completed = ledger.completed.load(Ordering::SeqCst);
    let hung = ledger.timed_out.load(Ordering::SeqCst);
    let growth = (heap_after - heap_before) as f64 / heap_before as f64;
    let kills = chaos.effective().count();

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| workers | {} |", args.workers);
    println!("| duration | {:.1} s |", start.elapsed().as_secs_f64());
    println!("| tasks submitted (warm-up included) | {submitted} |");
    println!("| tasks completed | {completed} |");
    println!("| retries (typed errors) | {} |", ledger.retried.load(Ordering::SeqCst));
    println!(
        "| of which worker down / not delivered / timeout | {} / {} / {hung} |",
        ledger.worker_down.load(Ordering::SeqCst),
        ledger.not_delivered.load(Ordering::SeqCst),
    );
    println!("| tasks lost | {} |", audit.lost.len());
    println!(
        "| tasks completed twice | {} |",
        audit.answered_twice.len() + audit.executed_twice.len()
    );
    println!("| kills (effective) | {kills} of {} actions |", chaos.actions.len());
    println!("| restarts | {} |", report.restarts);
    println!("| escalations at root | {escalations} |");
    println!(
        "| recovery, kill to restarted worker answering | median {:?}, p99 {:?}, max {:?} (n = {}) |",
        pct(&recoveries, 0.5),
        pct(&recoveries, 0.99),
        recoveries.last().copied().unwrap_or_default(),
        recoveries.len()
    );
    println!(
        "| live tasks (actors) before / after | {tasks_before} / {} |",
        report.live_tasks.1
    );
    println!(
        "| tree nodes running before / after | {} / {} |",
        report.running.0, report.running.1
    );
    println!(
        "| heap after warm-up / after chaos (instruments and ledger left out) | {} / {} ({:+.1}%) |",
        mib(heap_before),
        mib(heap_after),
        growth * 100.0
    );
    println!("| heap at start, before the warm-up | {} |", mib(heap_cold));
    println!(
        "| RSS before / after | {} / {} |",
        mib(rss_before as i64),
        mib(rss_after as i64)
    );
    println!("| seed | {} |", args.seed);
    println!();

    let mut broken = Vec::new();
    if !audit.is_clean() {
        broken.push(format!(
            "ledger: {} lost, {} answered twice, {} executed twice",
            audit.lost.len(),
            audit.answered_twice.len(),
            audit.executed_twice.len()
        ));
    }
    if hung > 0 {
        broken.push(format!("{hung} requests hung until their deadline"));
    }
    if !report.is_ok() {
        broken.push(format!("invariants:\n{report}"));
    }
    if growth > 0.10 {
        broken.push(format!("memory grew {:.1}% (limit 10%)", growth * 100.0));
    }
    root.stop().await;
    if broken.is_empty() {
        println!("all invariants hold");
        Ok(ExitCode::SUCCESS)
    } else {
        for b in &broken {
            println!("BROKEN: {b}");
        }
        Ok(ExitCode::FAILURE)
    }
}
