//! Across processes on loopback: a remote ask's round trip, remote cast throughput, and
//! failover (a node's kill -9 until its child answers from another node).
//!
//! Both sides print `ask_rtt` (the side is the process: `WARDEN_CLUSTER_BENCH_SIDE` is
//! `warden` or `raw`, both by default, each in a fresh process).
//!
//! * `ask_rtt` (warden): this process is node `a`, a `warden node` process is node `b`; an
//!   [`Echo`] placed on `b` by a supervisor here (a `RemoteChild`) is asked `Ping` and
//!   answers; each round trip timed alone. OTP's twin: `otpb_dist`'s remote
//!   `gen_server:call` (59 µs p50 on this machine kind).
//! * `ask_rtt` (raw): the same ask between two plain ractor_cluster nodes (this
//!   binary started again as the server), without Warden's controller and heartbeats.
//! * `cast_throughput`: N casts to the remote echo, then an ask for its count.
//! * `failover`: nodes `b` and `c`; the echo runs on `b`; kill -9 of `b`; the clock stops
//!   when the echo, restarted by its supervisor on `c`, answers. Default heartbeat settings.
//!
//! ```text
//! cargo bench -p warden-cli --features cluster --bench cluster
//! WARDEN_BENCH_QUICK=1 cargo bench -p warden-cli --features cluster --bench cluster
//! ```
//!
//! Settings: `RUNS` (5), `N_SAMPLE` (20 000), `N_CAST` (200 000), `FAILOVERS` (10). Lines
//! `METRIC <name> <value> <unit>` are read by `benches/compare`.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use warden_cluster::ractor_cluster::{self, NodeServer};
use warden_cluster::{ECHO_KIND, Echo, EchoArgs, EchoMsg, Node, Placement, RemoteChild, locate};
use warden_supervisor::{Strategy, Supervisor};

const COOKIE: &str = "warden-bench";
const RAW_GROUP: &str = "bench.echo";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn quick() -> bool {
    std::env::var("WARDEN_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// p50 and p99 (nearest rank) of `samples`, in µs.
fn percentiles(samples: &mut [u64]) -> (f64, f64) {
    samples.sort_unstable();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1] as f64 / 1_000.0;
    (at(0.50), at(0.99))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A `warden node` process, and its output lines.
struct NodeProc {
    child: Child,
    addr: SocketAddr,
}

async fn start_node(name: &str, join: &[SocketAddr]) -> NodeProc {
    let addr = free_addr();
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .args(["node", "--name", name, "--listen", &addr.to_string()])
        .env("WARDEN_COOKIE", COOKIE)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for seed in join {
        command.args(["--join", &seed.to_string()]);
    }
    let mut child = command.spawn().expect("warden node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("ready ") {
            break;
        }
    }
    // Keep reading, so that the node never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    NodeProc { child, addr }
}

async fn ask_rtts(echo: &ActorRef<EchoMsg>, n: usize) -> Vec<u64> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let answer = ractor::call_t!(echo, EchoMsg::Ping, 5_000, String::new()).expect("the echo answers");
        samples.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        std::hint::black_box(answer);
    }
    samples
}

fn report_rtt(name: &str, runs: Vec<Vec<u64>>) {
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    for (i, mut run) in runs.into_iter().enumerate() {
        let (p50, p99) = percentiles(&mut run);
        println!("{name} run={} n={} p50={p50:.1}us p99={p99:.1}us", i + 1, run.len());
        p50s.push(p50);
        p99s.push(p99);
    }
    let (p50, p99) = (median(p50s), median(p99s));
    println!("SUMMARY {name} median_of_runs: p50={p50:.1}us p99={p99:.1}us");
    println!("METRIC {name}/p50 {p50:.2} us");
    println!("METRIC {name}/p99 {p99:.2} us");
}

/// A remote echo on `node`, under a supervisor here.
async fn remote_echo(origin: &Node, node: &str) -> (Supervisor, ActorRef<EchoMsg>) {
    let spec = RemoteChild::new(origin, ECHO_KIND, &EchoArgs { tag: "bench".into() })
        .unwrap()
        .placement(Placement::Prefer(vec![node.to_string()]))
        .spec("echo");
    let root = Supervisor::builder("bench")
        .strategy(Strategy::OneForOne)
        .intensity(1_000, Duration::from_secs(1))
        .child(spec)
        .spawn()
        .await
        .unwrap();
    let echo = locate_echo(origin, &root).await;
    (root, echo)
}

async fn try_locate_echo(origin: &Node, root: &Supervisor) -> Option<ActorRef<EchoMsg>> {
    let children = root.which_children().await.ok()?;
    let cell = children.first()?.state.actor()?.clone();
    let location = locate(origin, &cell, Duration::from_millis(100)).await.ok()?;
    Some(ActorRef::from(location.actor))
}

async fn locate_echo(origin: &Node, root: &Supervisor) -> ActorRef<EchoMsg> {
    let cell = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
    ActorRef::from(locate(origin, &cell, Duration::from_secs(10)).await.unwrap().actor)
}

async fn warden_side(runs: usize, n_sample: usize, n_cast: usize, failovers: usize) {
    let b = start_node("b", &[]).await;
    let origin = Node::builder("a").cookie(COOKIE).seed(b.addr).start().await.unwrap();
    origin.wait_for(&["b"], Duration::from_secs(20)).await.unwrap();
    let (root, echo) = remote_echo(&origin, "b").await;

    ask_rtts(&echo, n_sample / 10).await;
    let mut rtts = Vec::new();
    for _ in 0..runs {
        rtts.push(ask_rtts(&echo, n_sample).await);
    }
    report_rtt("ask_rtt", rtts);

    let mut rates = Vec::new();
    for run in 1..=runs {
        let before = ractor::call_t!(echo, EchoMsg::Notes, 10_000, String::new()).unwrap();
        let t0 = Instant::now();
        for _ in 0..n_cast {
            echo.cast(EchoMsg::Note(String::new())).unwrap();
        }
        let after = ractor::call_t!(echo, EchoMsg::Notes, 60_000, String::new()).unwrap();
        let elapsed = t0.elapsed();
        assert_eq!(after - before, n_cast as u64, "every cast arrived");
        let rate = n_cast as f64 / elapsed.as_secs_f64();
        println!(
            "cast_throughput run={run} n={n_cast} total_ms={:.1} msgs_per_s={rate:.0}",
            elapsed.as_secs_f64() * 1e3
        );
        rates.push(rate);
    }
    let rate = median(rates);
    println!("SUMMARY cast_throughput median_of_runs: msgs_per_s={rate:.0}");
    println!("METRIC cast_throughput {rate:.0} ops/s");
    root.stop().await;

    // Failover: b hosts the echo, c stands by; kill -9 of b.
    let mut b = b;
    let mut samples = Vec::new();
    for round in 1..=failovers {
        let c = start_node("c", &[]).await;
        origin.join(c.addr).unwrap();
        origin.wait_for(&["b", "c"], Duration::from_secs(20)).await.unwrap();
        let (root, _) = remote_echo(&origin, "b").await;
        let t0 = Instant::now();
        b.child.kill().await.unwrap();
        let answered = loop {
            // While the child is restarted its proxy may be gone or not yet placed.
            if let Some(echo) = try_locate_echo(&origin, &root).await
                && let Ok(answer) = ractor::call_t!(echo, EchoMsg::Ping, 1_000, String::new())
                && answer.contains("@c:")
            {
                break t0.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        println!("failover run={round} ms={:.1}", answered.as_secs_f64() * 1e3);
        samples.push(answered.as_secs_f64() * 1e3);
        root.stop().await;
        // The next round: c becomes the victim's stand-in, a new b comes up.
        b = start_node("b", &[]).await;
        origin.join(b.addr).unwrap();
        drop(c);
        origin.wait_for(&["b"], Duration::from_secs(20)).await.unwrap();
    }
    if !samples.is_empty() {
        let max = samples.iter().copied().fold(0.0, f64::max);
        let p50 = median(samples);
        println!("SUMMARY failover median_of_runs: p50={p50:.1}ms max={max:.1}ms");
        println!("METRIC failover/p50 {p50:.1} ms");
        println!("METRIC failover/max {max:.1} ms");
    }
    origin.stop().await;
}

/// The plain ractor_cluster server: an echo in a process group, no Warden.
async fn raw_server(addr: SocketAddr) {
    let server = NodeServer::new(
        addr.port(),
        COOKIE.into(),
        "raw_b".into(),
        addr.ip().to_string(),
        None,
        None,
    )
    .with_listen_addr(addr.ip());
    let (_server, _) = Actor::spawn(None, server, ()).await.unwrap();
    let (echo, _) = Actor::spawn(None, Echo, (EchoArgs { tag: "raw".into() }, "raw_b".into()))
        .await
        .unwrap();
    ractor::pg::join(RAW_GROUP.to_string(), vec![echo.get_cell()]);
    println!("ready");
    std::future::pending::<()>().await;
}

async fn raw_side(runs: usize, n_sample: usize) {
    let addr = free_addr();
    let mut server = Command::new(std::env::current_exe().unwrap())
        .args(["--raw-server", &addr.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    while lines.next_line().await.unwrap().as_deref() != Some("ready") {}
    let client = NodeServer::new(
        free_addr().port(),
        COOKIE.into(),
        "raw_a".into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_listen_addr(addr.ip());
    let (client, _) = Actor::spawn(None, client, ()).await.unwrap();
    ractor_cluster::client_connect(&client, addr).await.unwrap();
    let echo = loop {
        if let Some(cell) = ractor::pg::get_members(&RAW_GROUP.to_string()).into_iter().next() {
            break ActorRef::<EchoMsg>::from(cell);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    ask_rtts(&echo, n_sample / 10).await;
    let mut rtts = Vec::new();
    for _ in 0..runs {
        rtts.push(ask_rtts(&echo, n_sample).await);
    }
    report_rtt("ask_rtt", rtts);
    client.stop(None);
    let _ = client.get_cell().wait(None).await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(at) = args.iter().position(|a| a == "--raw-server") {
        let addr: SocketAddr = args[at + 1].parse().unwrap();
        runtime.block_on(raw_server(addr));
        return;
    }
    let quick = quick() || args.iter().any(|a| a == "--quick");
    let runs = env_usize("RUNS", if quick { 1 } else { 5 });
    let n_sample = env_usize("N_SAMPLE", if quick { 2_000 } else { 20_000 });
    let n_cast = env_usize("N_CAST", if quick { 20_000 } else { 200_000 });
    let failovers = env_usize("FAILOVERS", if quick { 2 } else { 10 });
    println!(
        "# cluster bench: runs={runs} n_sample={n_sample} n_cast={n_cast} failovers={failovers}, 2-worker runtime"
    );
    // Each side in a fresh process: ractor's registries are process-wide.
    runtime.block_on(async {
        let mode = std::env::var("WARDEN_CLUSTER_BENCH_SIDE").unwrap_or_default();
        match mode.as_str() {
            // The side runs as a task on the runtime's workers, as a request handler in a
            // service does (and as OTP's caller is a process on a scheduler): `block_on`'s
            // own thread is not a worker, and every wake-up between it and the workers
            // crosses threads.
            "raw" => tokio::spawn(raw_side(runs, n_sample)).await.unwrap(),
            "warden" => tokio::spawn(warden_side(runs, n_sample, n_cast, failovers))
                .await
                .unwrap(),
            _ => {
                for side in ["warden", "raw"] {
                    let status = std::process::Command::new(std::env::current_exe().unwrap())
                        .args(std::env::args().skip(1))
                        .env("WARDEN_CLUSTER_BENCH_SIDE", side)
                        .status()
                        .unwrap();
                    assert!(status.success(), "the {side} side failed");
                }
            }
        }
    });
}
