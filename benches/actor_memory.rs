//! What one ractor actor's ~6.4 KB is made of, measured with the same counting
//! allocator as `benches/spawn.rs` (bytes requested and still live).
//!
//! ractor 0.16.5 allocates, per `Actor::spawn` (see `ractor/src/actor.rs`,
//! `actor_properties.rs`): the `ActorProperties` behind the `ActorCell`'s `Arc`
//! with two oneshot ports (signal, stop) and two unbounded tokio mpsc ports
//! (supervision events, messages), each tokio channel with its first block of
//! 32 slots allocated eagerly; the tokio task that runs the actor (its header
//! and the whole `start` future, the actor's state included); and the
//! processing loop's future, boxed once per actor. This bench measures each
//! piece on its own, N at a time, and the whole spawn, and prints the rest.
//!
//! ```text
//! cargo bench --bench actor_memory
//! ```
//!
//! Settings (environment): `N` (10000).

#[path = "support/common.rs"]
mod common;

use std::alloc::System;
use std::time::Duration;

use common::{Flavor, Worker};
use ractor::actor::messages::StopMessage;
use ractor::message::BoxedMessage;
use ractor::{Actor, ActorProcessingErr, ActorRef, Signal, SupervisionEvent};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// ractor's private `MuxedMessage`, rebuilt to know its size.
#[allow(dead_code)]
enum MuxedMessage {
    Drain,
    Message(BoxedMessage),
}

/// Live bytes per item of `make()` called `n` times (the items are kept alive while measured).
fn per_item<T>(n: usize, make: impl Fn() -> T) -> i64 {
    let before = live();
    let items: Vec<T> = (0..n).map(|_| make()).collect();
    let after = live();
    let per = (after - before - (n * std::mem::size_of::<T>()) as i64) / n as i64;
    drop(items);
    per
}

/// An actor with no state and no work.
struct Unit;

impl Actor for Unit {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Live bytes per spawned actor, `n` of them, after their tasks settled.
async fn per_actor<A: Actor>(n: usize, make: impl Fn() -> (A, A::Arguments)) -> i64 {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = live();
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        let (actor, args) = make();
        let (r, _join) = Actor::spawn(None, actor, args).await.expect("spawn");
        refs.push(r);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let per = (live() - before - (n * std::mem::size_of::<ActorRef<A::Msg>>()) as i64) / n as i64;
    for r in &refs {
        r.stop(None);
    }
    for r in &refs {
        r.wait(None).await.ok();
    }
    per
}

/// Live bytes per parked tokio task, its future holding 1 KiB or nothing.
async fn per_task(n: usize, big: bool) -> i64 {
    let before = live();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tasks.push(if big {
            let buf = [1u8; 1024];
            tokio::spawn(async move {
                std::future::pending::<()>().await;
                std::hint::black_box(buf);
            })
        } else {
            tokio::spawn(std::future::pending::<()>())
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let per = (live() - before - (n * std::mem::size_of::<tokio::task::JoinHandle<()>>()) as i64) / n as i64;
    for t in &tasks {
        t.abort();
    }
    per
}

fn main() {
    let n = common::env_usize("N", 10_000);
    common::header("actor_memory");
    println!("# n={n}");
    let rt = Flavor::Multi2.runtime();
    println!(
        "size_of: SupervisionEvent={} B, MuxedMessage={} B, Signal={} B, StopMessage={} B",
        std::mem::size_of::<SupervisionEvent>(),
        std::mem::size_of::<MuxedMessage>(),
        std::mem::size_of::<Signal>(),
        std::mem::size_of::<StopMessage>(),
    );
    let _guard = rt.enter();
    let sup_port = per_item(n, tokio::sync::mpsc::unbounded_channel::<SupervisionEvent>);
    let msg_port = per_item(n, tokio::sync::mpsc::unbounded_channel::<MuxedMessage>);
    let signal = per_item(n, tokio::sync::oneshot::channel::<Signal>);
    let stop = per_item(n, tokio::sync::oneshot::channel::<StopMessage>);
    let task_empty = common::run_on(&rt, per_task(n, false));
    let task_1k = common::run_on(&rt, per_task(n, true));
    let unit = common::run_on(&rt, per_actor(n, || (Unit, ())));
    let worker = common::run_on(&rt, per_actor(n, || (Worker::quiet(), ())));
    println!("unbounded mpsc port, SupervisionEvent (channel + first 32-slot block): {sup_port} B");
    println!("unbounded mpsc port, MuxedMessage (channel + first 32-slot block): {msg_port} B");
    println!("oneshot port, Signal: {signal} B; oneshot port, StopMessage: {stop} B");
    println!("tokio task, empty future: {task_empty} B; with a 1 KiB future: {task_1k} B");
    let ports = sup_port + msg_port + signal + stop;
    println!(
        "Actor::spawn, unit actor: {unit} B = ports {ports} B + the rest {} B (ActorProperties' Arc, the task with its \
         start future, the boxed loop future)",
        unit - ports
    );
    println!("Actor::spawn, the spawn bench's Worker: {worker} B");
    println!("METRIC actor/unit_bytes {unit} B");
    println!("METRIC actor/worker_bytes {worker} B");
    println!("METRIC actor/supervision_port_bytes {sup_port} B");
    println!("METRIC actor/message_port_bytes {msg_port} B");
    println!("METRIC actor/oneshot_ports_bytes {} B", signal + stop);
    println!("METRIC actor/task_overhead_bytes {task_empty} B");
}
