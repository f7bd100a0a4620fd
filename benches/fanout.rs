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
//! Settings (environment): `NS` (`10,100,1000`), `RUNS` (5), `LATENCY_MS` (100),
//! `WARDEN_BENCH_STUDIO` (`1`: a Warden Studio watching the tree, the agents and their model
//! calls, with a viewer reading every change, to measure what watching costs).
//!
//! Against an external server (issue 7, pair 7: the same server AgentScope's
//! fan-out is measured on, `../shared/anchors/agentscope/fake_openai.py`):
//! `FANOUT_BASE_URL=http://127.0.0.1:PORT/v1` sends the agents' requests
//! there instead of to the in-process fake provider. The server's `/stats`
//! then gives the delay (the ideal wall time) and the request count that each
//! run checks, and an answer passes when it contains "42" (that server says
//! "The answer is 42."). `COMPARE=1` also prints `RESULT fanout warden
//! <metric> <value> <unit>` lines for `benches/compare/run.sh`, per N: the
//! warm wall time (median) `wall_nN`; its ratio to the ideal
//! `warden_over_ideal_nN`; the CPU time of a warm run `cpu_nN` (the process's
//! threads' time on a CPU from /proc/self/task/*/schedstat, summed over the
//! warm runs and divided by their number); the peak RSS `rss_nN` (VmHWM: run
//! one N per process to get it per N, as the pair script does); and the
//! external server's own CPU time per warm run `server_cpu_nN` (from its
//! `/stats`: a single-threaded server's CPU is on the critical path, so about
//! delay + server CPU bounds the wall time from below). Without
//! `FANOUT_BASE_URL`, the in-process fake provider's CPU and memory count
//! with the agents'.
//!
//! ```text
//! COMPARE=1 NS=1000 FANOUT_BASE_URL=http://127.0.0.1:18080/v1 cargo bench --bench fanout
//! ```

use std::alloc::System;
use std::time::{Duration, Instant};

use futures::StreamExt;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tracing_subscriber::prelude::*;
use warden::agents::agent::{Agent, AgentRef};
use warden::agents::message::AgentMessage;
use warden::agents::model::{Model, OpenAiChat};
use warden::agents::pattern::FanOut;
use warden::agents::react::ReAct;
use warden::supervisor::{Strategy, Supervisor};
use warden_fake_provider::{Answer, FakeProvider};
use warden_studio::Studio;

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

/// The CPU time this process has used so far: the sum over its threads of
/// the time on a CPU from /proc/self/task/*/schedstat (nanoseconds; a thread
/// that exited is not counted, and the bench's threads live through a run),
/// or, where there is no schedstat, user + sys from /proc/self/stat in ticks
/// of 1/100 s (USER_HZ). Zero where there is no /proc.
fn cpu_time() -> Duration {
    let schedstat: Option<u64> = std::fs::read_dir("/proc/self/task").ok().map(|tasks| {
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    });
    if let Some(ns) = schedstat.filter(|&ns| ns > 0) {
        return Duration::from_nanos(ns);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// An external OpenAI-compatible server (`FANOUT_BASE_URL`), as
/// `fake_openai.py`: its `/stats` gives the request count and the delay.
struct External {
    base_url: String,
    /// `host:port` of the server.
    addr: String,
}

impl External {
    fn from_env() -> Option<Self> {
        let base_url = std::env::var("FANOUT_BASE_URL").ok().filter(|u| !u.is_empty())?;
        let rest = base_url
            .strip_prefix("http://")
            .expect("FANOUT_BASE_URL is http://HOST:PORT/v1");
        let addr = rest.split('/').next().unwrap_or(rest).to_string();
        Some(Self { base_url, addr })
    }

    /// `GET /stats`, with a plain HTTP/1.0 request (the bench needs no client of its own).
    fn stats(&self) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&self.addr).expect("the external server is up");
        write!(conn, "GET /stats HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).expect("request /stats");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("read /stats");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("/stats is not JSON ({e}): {response}"))
    }

    /// The server's own CPU time so far, in seconds (`fake_openai.py` reports it).
    fn cpu_s(&self) -> f64 {
        self.stats()["cpu_s"].as_f64().unwrap_or(0.0)
    }

    fn requests(&self) -> usize {
        self.stats()["requests"].as_u64().expect("/stats has requests") as usize
    }

    fn delay(&self) -> Duration {
        Duration::from_secs_f64(self.stats()["delay_ms"].as_f64().expect("/stats has delay_ms") / 1e3)
    }
}

/// Where the agents' model runs: the in-process fake provider, or an external server.
enum Server {
    InProcess(FakeProvider),
    External(External),
}

impl Server {
    fn base_url(&self) -> String {
        match self {
            Self::InProcess(fake) => fake.base_url_openai(),
            Self::External(ext) => ext.base_url.clone(),
        }
    }

    /// The requests seen so far (the in-process provider's log is cleared first).
    fn mark(&self) -> usize {
        match self {
            Self::InProcess(fake) => {
                fake.clear_requests();
                0
            }
            Self::External(ext) => ext.requests(),
        }
    }

    fn requests_since(&self, mark: usize) -> usize {
        match self {
            Self::InProcess(fake) => fake.request_count(),
            Self::External(ext) => ext.requests() - mark,
        }
    }

    fn answer_ok(&self, text: &str) -> bool {
        match self {
            Self::InProcess(_) => text == "42",
            Self::External(_) => text.contains("42"),
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// One fan-out: (wall time, time to the first answer, CPU time).
async fn fan_out(server: &Server, agents: &[AgentRef], question: &AgentMessage) -> (Duration, Duration, Duration) {
    let mark = server.mark();
    let cpu = cpu_time();
    let started = Instant::now();
    let mut first = None;
    let mut answered = 0;
    let mut answers = FanOut::new(Duration::from_secs(60)).run_same(agents.iter().map(|a| a.clone().into()), question);
    while let Some(answer) = answers.next().await {
        first.get_or_insert_with(|| started.elapsed());
        match answer.result {
            Ok(reply) => assert!(
                server.answer_ok(&reply.text()),
                "agent {} answered wrongly: {:?}",
                answer.target.name(),
                reply.text()
            ),
            Err(err) => panic!("agent {} failed: {err}", answer.target.name()),
        }
        answered += 1;
    }
    let wall = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu);
    assert_eq!(answered, agents.len());
    assert_eq!(
        server.requests_since(mark),
        agents.len(),
        "the server saw every request once"
    );
    (wall, first.unwrap_or_default(), cpu)
}

fn main() {
    let quick = std::env::var_os("WARDEN_BENCH_QUICK").is_some() || std::env::args().any(|a| a == "--quick");
    let compare = std::env::var("COMPARE").is_ok_and(|v| v == "1");
    let ns: Vec<usize> = std::env::var("NS")
        .unwrap_or_else(|_| if quick { "10,100".into() } else { "10,100,1000".into() })
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runs: usize = env_or("RUNS", if quick { 1 } else { 5 }).max(1);

    // The fake provider on a runtime of its own, so its work is not scheduled
    // among the agents'; or the external server.
    let mut server_rt = None;
    let (server, latency) = match External::from_env() {
        Some(ext) => {
            let delay = ext.delay();
            (Server::External(ext), delay)
        }
        None => {
            let latency = Duration::from_millis(env_or("LATENCY_MS", 100));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("fake-provider")
                .enable_all()
                .build()
                .expect("server runtime");
            let fake = rt.block_on(FakeProvider::start());
            fake.set_latency(latency);
            fake.set_default_reply(Answer::text("42"));
            server_rt = Some(rt);
            (Server::InProcess(fake), latency)
        }
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("bench runtime");

    // WARDEN_BENCH_STUDIO=1: a Warden Studio watching everything (tree, agents, model calls
    // through its tracing layer), with a viewer on the bench runtime reading every change.
    let studio = std::env::var("WARDEN_BENCH_STUDIO").is_ok_and(|v| v == "1").then(|| {
        let studio = Studio::builder().start();
        tracing_subscriber::registry().with(studio.tracing_layer()).init();
        let mut viewer = studio.subscribe();
        rt.spawn(async move { while viewer.next_json().await.is_some() {} });
        println!("# studio attached (WARDEN_BENCH_STUDIO=1): observers, tracing layer and a viewer");
        studio
    });

    let place = match &server {
        Server::InProcess(_) => "the in-process fake provider".to_string(),
        Server::External(ext) => format!("the external server {}", ext.base_url),
    };
    println!(
        "# fan-out to N ReAct agents on {place}, model latency {latency:?}, {runs} warm runs (median), 2-worker runtime"
    );
    println!(
        "| N | wall, warm (median) | ÷ ideal | first answer | wall, cold | CPU per warm run | idle agent, fresh | idle agent, after the runs | peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &ns {
        rt.block_on(async {
            server.mark();
            let before = heap();
            let model = Model::new(OpenAiChat::new(server.base_url(), "fake-model"));
            let agents: Vec<Agent> = (0..n)
                .map(|i| {
                    let agent = Agent::new(
                        format!("a{i}"),
                        ReAct::builder(model.clone()).system("Answer with a number.").build(),
                    );
                    match &studio {
                        Some(studio) => agent.inline_observer(studio.agent_observer()),
                        None => agent,
                    }
                })
                .collect();
            let handles: Vec<AgentRef> = agents.iter().map(Agent::handle).collect();
            let mut root = Supervisor::builder("root")
                .strategy(Strategy::OneForOne)
                .children(agents.iter().map(Agent::child_spec));
            if let Some(studio) = &studio {
                root = root.inline_observer(studio.supervisor_observer());
                for handle in &handles {
                    studio.watch_agent(handle);
                }
            }
            let root = root.spawn().await.expect("the tree starts");
            drop(agents);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let fresh = (heap() - before) as f64 / n as f64;

            let question = AgentMessage::user("What is 6 x 7?");
            let (cold, _, _) = fan_out(&server, &handles, &question).await;
            let mut walls = Vec::new();
            let mut firsts = Vec::new();
            let mut cpu = Duration::ZERO;
            let mut server_cpu = 0.0;
            for _ in 0..runs {
                let before = match &server {
                    Server::External(ext) => ext.cpu_s(),
                    Server::InProcess(_) => 0.0,
                };
                let (wall, first, used) = fan_out(&server, &handles, &question).await;
                if let Server::External(ext) = &server {
                    server_cpu += ext.cpu_s() - before;
                }
                walls.push(wall);
                firsts.push(first);
                cpu += used;
            }
            let cpu = cpu / runs as u32;
            let server_cpu_ms = server_cpu / runs as f64 * 1e3;
            server.mark();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let after = (heap() - before) as f64 / n as f64;
            let wall = median(walls);
            let ratio = wall.as_secs_f64() / latency.as_secs_f64();
            let rss_mib = peak_rss_kib() as f64 / 1024.0;
            println!(
                "| {n} | {:.1} ms | {ratio:.2} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} B | {:.0} B | {rss_mib:.0} MiB |",
                wall.as_secs_f64() * 1e3,
                median(firsts).as_secs_f64() * 1e3,
                cold.as_secs_f64() * 1e3,
                cpu.as_secs_f64() * 1e3,
                fresh,
                after,
            );
            println!(
                "SUMMARY fanout n={n} wall_ms={:.1} ratio={ratio:.2} idle_agent_bytes={fresh:.0}",
                wall.as_secs_f64() * 1e3,
            );
            if compare {
                println!("RESULT fanout warden wall_n{n} {:.1} ms", wall.as_secs_f64() * 1e3);
                println!("RESULT fanout warden warden_over_ideal_n{n} {ratio:.3} x");
                println!("RESULT fanout warden cpu_n{n} {:.1} ms", cpu.as_secs_f64() * 1e3);
                println!("RESULT fanout warden rss_n{n} {rss_mib:.1} MiB");
                if matches!(server, Server::External(_)) {
                    println!("RESULT fanout warden server_cpu_n{n} {server_cpu_ms:.1} ms");
                }
            }
            root.stop().await;
        });
    }
    drop(rt);
    drop(server);
    drop(server_rt);
}
