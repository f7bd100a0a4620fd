//! What `warden::runtime`'s park delay costs: how late a runtime that has just
//! gone idle sees something from outside.
//!
//! A thread outside the runtime makes it busy with a burst (a task that hands
//! a message back and forth with another 20 times), waits until the burst is
//! over, then waits a *gap* (spinning on the clock), and then either sends a
//! message to a task that waits for it on a channel (`wake`) or writes a byte
//! to a TCP connection that a task reads (`tcp`, over 127.0.0.1). The figure is
//! the time from the send to the task running, p50 and p99 of N per gap, with
//! tokio's defaults (`mt2`) and with `warden::runtime::multi_thread()`
//! (`mt2w`). A park delay that every worker took, the last one included, would
//! hold such a send for up to the delay (measured so while it was built: 148 µs
//! at gap 0); the last worker to go idle parks at once, so `mt2w` should read
//! as `mt2` at every gap. Then `parallel_64x20us`: from a task, 64 tasks that
//! each hold their worker for 20 µs, awaited together (N/4 batches), which is
//! where the delay can cost (the busy worker's queued tasks wait for it while
//! the other worker is in its delay).
//!
//! ```text
//! cargo bench --bench park_delay
//! ```
//!
//! Settings (environment): `N` (2000 per gap), `GAPS_US` (`0,20,50,100,150,200,500`),
//! `WARDEN_BENCH_RUNTIME` (`mt2,mt2w` by default). Machine-readable lines:
//! `METRIC <wake|tcp>/<gap>us/<runtime>/<p50|p99> <value> us` and
//! `METRIC parallel_64x20us/<runtime>/<p50|p99> <value> us`.

#[path = "support/common.rs"]
mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Flavor, Summary};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::unbounded_channel;

/// What crosses into the runtime after the gap.
#[derive(Clone, Copy)]
enum Probe {
    Wake,
    Tcp,
}

impl Probe {
    fn name(self) -> &'static str {
        match self {
            Self::Wake => "wake",
            Self::Tcp => "tcp",
        }
    }
}

/// Makes the runtime busy for a moment: two tasks hand a token back and forth
/// 20 times; returns when the last one has finished.
fn burst(rt: &tokio::runtime::Handle) {
    let (done_tx, done_rx) = mpsc::channel();
    rt.spawn(async move {
        let (a_tx, mut a_rx) = unbounded_channel::<u32>();
        let (b_tx, mut b_rx) = unbounded_channel::<u32>();
        let other = tokio::spawn(async move {
            while let Some(n) = b_rx.recv().await {
                if a_tx.send(n + 1).is_err() {
                    break;
                }
            }
        });
        let mut n = 0;
        for _ in 0..10 {
            b_tx.send(n).expect("the other task runs");
            n = a_rx.recv().await.expect("the other task answers");
        }
        drop(b_tx);
        other.await.expect("the other task ends");
        done_tx.send(n).expect("the bench waits");
    });
    done_rx.recv().expect("the burst ends");
}

fn spin(gap: Duration) {
    let t = Instant::now();
    while t.elapsed() < gap {
        std::hint::spin_loop();
    }
}

/// N samples of one probe after one gap, in nanoseconds.
fn measure(rt: &tokio::runtime::Runtime, probe: Probe, gap: Duration, n: usize) -> Vec<u64> {
    let (seen_tx, seen_rx) = mpsc::channel::<Instant>();
    // What crosses into the runtime after the gap; a task there records when it sees it.
    let mut send: Box<dyn FnMut()> = match probe {
        Probe::Wake => {
            let (tx, mut rx) = unbounded_channel::<()>();
            rt.spawn(async move {
                while rx.recv().await.is_some() {
                    if seen_tx.send(Instant::now()).is_err() {
                        break;
                    }
                }
            });
            Box::new(move || tx.send(()).expect("the waiting task runs"))
        }
        Probe::Tcp => {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("a port on 127.0.0.1");
            let addr = listener.local_addr().expect("its address");
            rt.spawn(async move {
                let (mut conn, _) = listener.accept().await.expect("the bench connects");
                conn.set_nodelay(true).expect("nodelay");
                let mut byte = [0u8; 1];
                while conn.read_exact(&mut byte).await.is_ok() {
                    if seen_tx.send(Instant::now()).is_err() {
                        break;
                    }
                }
            });
            let mut conn = std::net::TcpStream::connect(addr).expect("connects");
            conn.set_nodelay(true).expect("nodelay");
            Box::new(move || conn.write_all(&[1]).expect("writes"))
        }
    };
    let handle = rt.handle().clone();
    (0..n)
        .map(|_| {
            burst(&handle);
            spin(gap);
            let sent = Instant::now();
            send();
            let seen = seen_rx.recv().expect("the task in the runtime answers");
            common::nanos(seen.duration_since(sent))
        })
        .collect()
}

/// N samples of a parallel batch, in nanoseconds: from a task, 64 tasks that
/// each hold their worker for 20 µs (1.28 ms of work: 0.64 ms on two
/// workers), awaited together. What the delay can cost: tasks the busy worker
/// queues wait for it while the other worker is in its delay.
fn parallel(rt: &tokio::runtime::Runtime, n: usize) -> Vec<u64> {
    let handle = rt.handle().clone();
    (0..n)
        .map(|_| {
            burst(&handle);
            let (done_tx, done_rx) = mpsc::channel();
            handle.spawn(async move {
                let t0 = Instant::now();
                let tasks: Vec<_> = (0..64)
                    .map(|_| tokio::spawn(async { spin(Duration::from_micros(20)) }))
                    .collect();
                for task in tasks {
                    task.await.expect("a batch task ends");
                }
                done_tx.send(t0.elapsed()).expect("the bench waits");
            });
            common::nanos(done_rx.recv().expect("the batch ends"))
        })
        .collect()
}

fn main() {
    let n = common::env_usize("N", if common::quick() { 200 } else { 2000 });
    let gaps: Vec<u64> = std::env::var("GAPS_US")
        .unwrap_or_else(|_| "0,20,50,100,150,200,500".to_string())
        .split(',')
        .map(|g| g.trim().parse().expect("GAPS_US is a list of microseconds"))
        .collect();
    common::header("park_delay");
    println!("# n={n} per gap");
    for flavor in Flavor::selected_or(&[Flavor::Multi2, Flavor::Multi2Warden]) {
        let rt = flavor.runtime();
        for probe in [Probe::Wake, Probe::Tcp] {
            measure(&rt, probe, Duration::ZERO, n.min(200));
            for &gap in &gaps {
                let s = Summary::of(&measure(&rt, probe, Duration::from_micros(gap), n));
                let name = format!("{}/{gap}us", probe.name());
                println!("{name} {} {}", flavor.name(), s.line());
                for (stat, v) in [("p50", s.p50), ("p99", s.p99)] {
                    println!("METRIC {name}/{}/{stat} {} us", flavor.name(), common::us(v));
                }
            }
        }
        parallel(&rt, n.min(100));
        let s = Summary::of(&parallel(&rt, n / 4));
        println!("parallel_64x20us {} {}", flavor.name(), s.line());
        for (stat, v) in [("p50", s.p50), ("p99", s.p99)] {
            println!("METRIC parallel_64x20us/{}/{stat} {} us", flavor.name(), common::us(v));
        }
    }
}
