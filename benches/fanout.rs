//! Fan-out of one question to N supervised ReAct agents whose model (the fake
//! provider, OpenAI format, over real HTTP on 127.0.0.1) answers after 100 ms:
//! wall time against the ideal 100 ms, and memory per idle agent.
//!
//! For each N, N agents `a0..aN` run under one one_for_one supervisor, all on
//! one `Model` (one HTTP client, as a Rust service would share it). A run asks
//! every agent "What is 6 x 7?" through `pattern::FanOut` and takes the
//! answers as they arrive; it checks that every answer is "42" and that the
//! server saw exactly N requests. One cold run, then `RUNS` warm runs; the
//! figures are the medians of the warm runs (and the cold run on its own).
//!
//! Memory is counted by a global allocator that counts bytes (`stats_alloc`):
//! bytes allocated and still live after the agents started, minus before,
//! divided by N ("idle, fresh"); and again after the runs ("idle, after the
//! runs", when each agent's memory holds its conversation). The fake
//! provider runs on a runtime of its own in the same process; its memory is
//! counted too but it holds nothing per agent (its request log is cleared
//! before every reading).
//!
//! ```text
//! cargo bench --bench fanout
//! WARDEN_BENCH_QUICK=1 cargo bench --bench fanout       # N = 10, 100; one run
//! ```
//!
//! Settings (environment): `NS` (`10,100,1000`), `RUNS` (5), `LATENCY_MS` (100).

use std::alloc::System;
use std::time::{Duration, Instant};

use futures::StreamExt;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use warden::agents::agent::{Agent, AgentRef};
use warden::agents::message::AgentMessage;
use warden::agents::model::{Model, OpenAiChat};
use warden::agents::pattern::FanOut;
use warden::agents::react::ReAct;
use warden::supervisor::{Strategy, Supervisor};
use warden_fake_provider::{FakeProvider, Reply};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// The process's peak resident set size, from /proc (0 where there is none).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// One fan-out: (wall time, time to the first answer).
async fn fan_out(fake: &FakeProvider, agents: &[AgentRef], question: &AgentMessage) -> (Duration, Duration) {
    fake.clear_requests();
    let started = Instant::now();
    let mut first = None;
    let mut answered = 0;
    let mut answers = FanOut::new(Duration::from_secs(60)).run_same(agents.iter().map(|a| a.clone().into()), question);
    while let Some(answer) = answers.next().await {
        first.get_or_insert_with(|| started.elapsed());
        match answer.result {
            Ok(reply) => assert_eq!(reply.text(), "42", "agent {} answered wrongly", answer.target.name()),
            Err(err) => panic!("agent {} failed: {err}", answer.target.name()),
        }
        answered += 1;
    }
    let wall = started.elapsed();
    assert_eq!(answered, agents.len());
    assert_eq!(fake.request_count(), agents.len(), "the server saw every request once");
    (wall, first.unwrap_or_default())
}

fn main() {
    let quick = std::env::var_os("WARDEN_BENCH_QUICK").is_some() || std::env::args().any(|a| a == "--quick");
    let ns: Vec<usize> = std::env::var("NS")
        .unwrap_or_else(|_| if quick { "10,100".into() } else { "10,100,1000".into() })
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runs: usize = if quick { 1 } else { env_or("RUNS", 5) };
    let latency = Duration::from_millis(env_or("LATENCY_MS", 100));

    // The fake provider on a runtime of its own, so its work is not scheduled
    // among the agents'.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-provider")
        .enable_all()
        .build()
        .expect("server runtime");
    let fake = server_rt.block_on(FakeProvider::start());
    fake.set_latency(latency);
    fake.set_default_reply(Reply::text("42"));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("bench runtime");

    println!("# fan-out to N ReAct agents, model latency {latency:?}, {runs} warm runs (median), 2-worker runtime");
    println!(
        "| N | wall, warm (median) | ÷ ideal | first answer | wall, cold | idle agent, fresh | idle agent, after the runs | peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &ns {
        rt.block_on(async {
            fake.clear_requests();
            let before = heap();
            let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "fake-model"));
            let agents: Vec<Agent> = (0..n)
                .map(|i| {
                    Agent::new(
                        format!("a{i}"),
                        ReAct::builder(model.clone()).system("Answer with a number.").build(),
                    )
                })
                .collect();
            let handles: Vec<AgentRef> = agents.iter().map(Agent::handle).collect();
            let root = Supervisor::builder("root")
                .strategy(Strategy::OneForOne)
                .children(agents.iter().map(Agent::child_spec))
                .spawn()
                .await
                .expect("the tree starts");
            drop(agents);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let fresh = (heap() - before) as f64 / n as f64;

            let question = AgentMessage::user("What is 6 x 7?");
            let (cold, _) = fan_out(&fake, &handles, &question).await;
            let mut walls = Vec::new();
            let mut firsts = Vec::new();
            for _ in 0..runs {
                let (wall, first) = fan_out(&fake, &handles, &question).await;
                walls.push(wall);
                firsts.push(first);
            }
            fake.clear_requests();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let after = (heap() - before) as f64 / n as f64;
            let wall = median(walls);
            println!(
                "| {n} | {:.1} ms | {:.2} | {:.1} ms | {:.1} ms | {:.0} B | {:.0} B | {:.0} MiB |",
                wall.as_secs_f64() * 1e3,
                wall.as_secs_f64() / latency.as_secs_f64(),
                median(firsts).as_secs_f64() * 1e3,
                cold.as_secs_f64() * 1e3,
                fresh,
                after,
                peak_rss_kib() as f64 / 1024.0,
            );
            println!(
                "SUMMARY fanout n={n} wall_ms={:.1} ratio={:.2} idle_agent_bytes={fresh:.0}",
                wall.as_secs_f64() * 1e3,
                wall.as_secs_f64() / latency.as_secs_f64()
            );
            root.stop().await;
        });
    }
    drop(rt);
    drop(fake);
    drop(server_rt);
}
