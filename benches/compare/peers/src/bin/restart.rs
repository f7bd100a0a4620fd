//! Restart latency of the Rust peers (issue 7, pair 6 = pair 1's work), measured
//! as Warden's `benches/restart.rs` measures Warden: one_for_one with 1 child,
//! the clock starts when the crash is injected and stops when the restarted
//! child has started again (its start hook sent its address to the benchmark
//! over a channel) and answered a ping call. Crashes: `kill` (the actor is
//! killed from outside) and `call` (a call whose handler panics; the clock
//! starts before the call, which returns an error once the child is gone).
//! `CRASHES` crashes per run, `RUNS` runs after a warm-up run (at most 1 000
//! crashes) that is not reported, a fresh supervisor every `BATCH` crashes (not
//! timed), restart limits so high they are never reached; on a multi-thread
//! tokio runtime with 2 workers. Figures: the medians across runs of each
//! run's p50 and p99.
//!
//! * `ractor_supervisor`: `ractor_supervisor::Supervisor` (static, OneForOne,
//!   the child `Restart::Permanent`, no backoff), the worker a plain ractor actor.
//! * `kameo`: a kameo actor whose `supervision_strategy` is OneForOne, the child
//!   started with `Worker::supervise(&sup, args)` (`RestartPolicy::Permanent`).
//!
//! The default panic hook prints every panic to stderr: send stderr to /dev/null.
//!
//! ```text
//! CARGO_TARGET_DIR=target/compare/peers-target cargo run --release \
//!   --manifest-path benches/compare/peers/Cargo.toml --bin restart 2>/dev/null
//! ```
//!
//! Settings (environment): `RUNS` (5), `CRASHES` (10000), `BATCH` (100),
//! `TARGETS` (`ractor_supervisor,kameo`), `CRASH_KINDS` (`kill,call`).
//! Prints `RESULT peers <target> restart_<crash>_<p50|p99> <value> us` lines.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use warden_peers_bench::{env_str, env_usize, median, nanos, p50_p99, run_on, runtime, us};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crash {
    Kill,
    Call,
}

impl Crash {
    fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Call => "call",
        }
    }
}

// ---- ractor-supervisor ---------------------------------------------------------------

mod rs {
    use super::*;
    use ractor::rpc::CallResult;
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
    use ractor_supervisor::{
        ChildSpec, Restart, SpawnFn, Supervisor, SupervisorArguments, SupervisorOptions, SupervisorStrategy,
    };

    pub enum Msg {
        Ping(RpcReplyPort<()>),
        PanicInCall(RpcReplyPort<()>),
    }

    pub type Started = UnboundedSender<ActorRef<Msg>>;

    pub struct Worker {
        pub started: Started,
    }

    impl Actor for Worker {
        type Msg = Msg;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, myself: ActorRef<Msg>, _: ()) -> Result<(), ActorProcessingErr> {
            let _ = self.started.send(myself);
            Ok(())
        }

        async fn handle(&self, _: ActorRef<Msg>, msg: Msg, _: &mut ()) -> Result<(), ActorProcessingErr> {
            match msg {
                Msg::Ping(reply) => {
                    let _ = reply.send(());
                }
                Msg::PanicInCall(reply) => {
                    // The call is never answered: the handler panics with the port in hand.
                    let _unanswered = reply;
                    panic!("deliberate crash")
                }
            }
            Ok(())
        }
    }

    async fn inject(crash: Crash, victim: &ActorRef<Msg>) {
        match crash {
            Crash::Kill => victim.kill(),
            Crash::Call => {
                let r = victim.call(Msg::PanicInCall, None).await;
                assert!(
                    !matches!(r, Ok(CallResult::Success(()))),
                    "a crashing call cannot answer"
                );
            }
        }
    }

    async fn ping(w: &ActorRef<Msg>) {
        match w.call(Msg::Ping, None).await {
            Ok(CallResult::Success(())) => {}
            _ => panic!("worker did not answer a ping"),
        }
    }

    /// `n` crashes under one fresh supervisor; `batch` makes the names unique
    /// (ractor's registry is global and every child of ractor-supervisor is named).
    pub async fn batch(crash: Crash, n: usize, batch: usize, lat: &mut Vec<u64>) {
        let (tx, mut rx) = unbounded_channel();
        let child_id = format!("w{batch}");
        let spec = ChildSpec {
            id: child_id,
            restart: Restart::Permanent,
            spawn_fn: SpawnFn::new(move |sup, id| {
                let tx = tx.clone();
                async move {
                    let (r, _) = Supervisor::spawn_linked(id, Worker { started: tx }, (), sup).await?;
                    Ok(r.get_cell())
                }
            }),
            backoff_fn: None,
            reset_after: None,
        };
        let options = SupervisorOptions {
            strategy: SupervisorStrategy::OneForOne,
            max_restarts: 10 * n + 10,
            max_window: Duration::from_secs(1),
            reset_after: None,
        };
        let args = SupervisorArguments {
            child_specs: vec![spec],
            options,
        };
        let (sup, join) = Supervisor::spawn(format!("bench{batch}"), args)
            .await
            .expect("the supervisor starts");
        let mut worker = recv(&mut rx).await;
        for _ in 0..n {
            let t0 = Instant::now();
            inject(crash, &worker).await;
            worker = recv(&mut rx).await;
            ping(&worker).await;
            lat.push(nanos(t0.elapsed()));
        }
        sup.stop(None);
        join.await.ok();
    }

    async fn recv(rx: &mut UnboundedReceiver<ActorRef<Msg>>) -> ActorRef<Msg> {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the child restarts within 10 s")
            .expect("a worker announces its start")
    }
}

// ---- kameo ---------------------------------------------------------------------------

mod km {
    use super::*;
    use kameo::actor::{Actor, ActorRef, Spawn};
    use kameo::error::Infallible;
    use kameo::message::{Context, Message};
    use kameo::supervision::{RestartPolicy, SupervisionStrategy};

    pub struct Sup;

    impl Actor for Sup {
        type Args = ();
        type Error = Infallible;

        fn supervision_strategy() -> SupervisionStrategy {
            SupervisionStrategy::OneForOne
        }

        async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(Sup)
        }
    }

    pub type Started = UnboundedSender<ActorRef<Worker>>;

    pub struct Worker;

    impl Actor for Worker {
        type Args = Started;
        type Error = Infallible;

        async fn on_start(tx: Started, me: ActorRef<Self>) -> Result<Self, Infallible> {
            let _ = tx.send(me);
            Ok(Worker)
        }
    }

    pub struct Ping;
    pub struct PanicInCall;

    impl Message<Ping> for Worker {
        type Reply = ();
        async fn handle(&mut self, _: Ping, _: &mut Context<Self, ()>) {}
    }

    impl Message<PanicInCall> for Worker {
        type Reply = ();
        async fn handle(&mut self, _: PanicInCall, _: &mut Context<Self, ()>) {
            panic!("deliberate crash")
        }
    }

    pub async fn batch(crash: Crash, n: usize, lat: &mut Vec<u64>) {
        let (tx, mut rx) = unbounded_channel();
        let sup = Sup::spawn(());
        let _child = Worker::supervise(&sup, tx)
            .restart_policy(RestartPolicy::Permanent)
            .restart_limit(u32::try_from(10 * n + 10).unwrap_or(u32::MAX), Duration::from_secs(1))
            .spawn()
            .await;
        let mut worker = recv(&mut rx).await;
        for _ in 0..n {
            let t0 = Instant::now();
            match crash {
                Crash::Kill => worker.kill(),
                Crash::Call => {
                    assert!(worker.ask(PanicInCall).await.is_err(), "a crashing call cannot answer");
                }
            }
            worker = recv(&mut rx).await;
            worker.ask(Ping).await.expect("worker did not answer a ping");
            lat.push(nanos(t0.elapsed()));
        }
        sup.kill();
        sup.wait_for_shutdown().await;
    }

    async fn recv(rx: &mut UnboundedReceiver<ActorRef<Worker>>) -> ActorRef<Worker> {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the child restarts within 10 s")
            .expect("a worker announces its start")
    }
}

// ---- main ----------------------------------------------------------------------------

async fn run(target: String, crash: Crash, n: usize, batch: usize, first_batch: usize) -> Vec<u64> {
    let mut lat = Vec::with_capacity(n);
    let mut left = n;
    let mut b = first_batch;
    while left > 0 {
        let this = left.min(if batch == 0 { n } else { batch });
        match target.as_str() {
            "ractor_supervisor" => rs::batch(crash, this, b, &mut lat).await,
            "kameo" => km::batch(crash, this, &mut lat).await,
            other => panic!("unknown target {other:?}: ractor_supervisor or kameo"),
        }
        left -= this;
        b += 1;
    }
    lat
}

fn main() {
    let runs = env_usize("RUNS", 5).max(1);
    let crashes = env_usize("CRASHES", 10_000);
    let batch = env_usize("BATCH", 100);
    let targets = env_str("TARGETS", "ractor_supervisor,kameo");
    let kinds = env_str("CRASH_KINDS", "kill,call");
    println!("# restart (peers): runs={runs} crashes={crashes} batch={batch} runtime=mt2");
    let rt = runtime();
    let mut batches = 0;
    for target in targets.split(',').map(str::trim) {
        for kind in kinds.split(',').map(str::trim) {
            let crash = match kind {
                "kill" => Crash::Kill,
                "call" => Crash::Call,
                other => panic!("unknown crash {other:?}: kill or call"),
            };
            let per_run = crashes.div_ceil(batch.max(1)) + 1;
            run_on(&rt, run(target.to_string(), crash, crashes.min(1000), batch, batches));
            batches += per_run;
            let mut p50s = Vec::new();
            let mut p99s = Vec::new();
            for r in 1..=runs {
                let lat = run_on(&rt, run(target.to_string(), crash, crashes, batch, batches));
                batches += per_run;
                let (p50, p99) = p50_p99(&lat);
                println!(
                    "{target}/1/{} mt2 {r} n={} p50={} p99={}",
                    crash.name(),
                    lat.len(),
                    us(p50),
                    us(p99)
                );
                p50s.push(p50);
                p99s.push(p99);
            }
            let (p50, p99) = (median(p50s), median(p99s));
            println!(
                "SUMMARY {target}/1/{} mt2 median_of_runs: p50={} p99={} (runs={runs}, n={crashes})",
                crash.name(),
                us(p50),
                us(p99)
            );
            println!("RESULT peers {target} restart_{}_p50 {} us", crash.name(), us(p50));
            println!("RESULT peers {target} restart_{}_p99 {} us", crash.name(), us(p99));
        }
    }
}
