//! `warden::runtime::multi_thread()`: idle workers sleep briefly before they
//! park. Supervision on it keeps OTP's order (a give-up stops the children
//! last-started first, a subtree restart starts them in order), and nothing
//! that wakes the runtime while its workers are in that delay is lost: tasks
//! spawned and woken from another thread, timers, and TCP I/O, each arriving
//! just after the runtime went idle, run; and they run even with a delay of
//! thirty seconds, because the last worker to go idle parks at once.

#[path = "support/probe.rs"]
mod probe;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use probe::{Control, EventLog, cell, probe, sub_of};
use warden::supervisor::{Disposition, Escalation, Strategy, Supervisor};

/// A deadline for a broken test (a lost wake-up would hang), not a pause.
const LOST: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    warden::runtime::multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime")
}

/// A park delay far longer than [`LOST`]: if a worker waited it out while the
/// runtime was idle, a wake-up from outside would be held that long and the
/// test would fail (and dropping the runtime would take that long). The last
/// worker to go idle must park at once and end the others' waits, and a
/// worker that stops at shutdown must end them too.
fn runtime_with_a_long_delay() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    warden::runtime::park_delay(&mut builder, Duration::from_secs(30));
    builder.build().expect("a runtime")
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("w{i}")).collect()
}

#[test]
fn a_give_up_stops_the_children_last_started_first() {
    runtime().block_on(async {
        for _ in 0..100 {
            let control = Control::new();
            let log = EventLog::new();
            let root = Supervisor::builder("root")
                .intensity(0, Duration::from_secs(5))
                .observer(log.observer())
                .children(ids(10).iter().map(|id| probe(id, &control)))
                .spawn()
                .await
                .unwrap();
            let w1 = cell(&root, "w1").await;
            log.clear();
            w1.kill();
            root.wait().await;

            let mut expected = vec!["down w1 killed".to_string(), "gave_up root".to_string()];
            expected.extend((2..=10).rev().map(|i| format!("down w{i} shutdown")));
            expected.extend(["escalated root root".to_string(), "stopped root".to_string()]);
            assert_eq!(log.lines(), expected);
        }
    });
}

#[test]
fn a_subtree_that_gives_up_is_restarted_whole_and_in_order() {
    runtime().block_on(async {
        let control = Control::new();
        let log = EventLog::new();
        let top = Supervisor::builder("top")
            .intensity(1000, Duration::from_secs(1))
            .escalation_handler(|_: Escalation| Disposition::Handled)
            .observer(log.observer())
            .child(
                Supervisor::builder("sub")
                    .strategy(Strategy::OneForOne)
                    .intensity(0, Duration::from_secs(5))
                    .children(ids(3).iter().map(|id| probe(id, &control)))
                    .into_child(),
            )
            .spawn()
            .await
            .unwrap();
        for round in 1..=100 {
            let sub = sub_of(&top, "sub").await;
            let w2 = cell(&sub, "w2").await;
            log.clear();
            w2.kill();
            log.wait_line("start sub").await;
            assert_eq!(
                log.lines(),
                [
                    "down w2 killed",
                    "gave_up sub",
                    "down w3 shutdown",
                    "down w1 shutdown",
                    "stopped sub",
                    "down sub shutdown",
                    "escalated top sub",
                    "start w1",
                    "start w2",
                    "start w3",
                    "start sub",
                ],
                "round {round}"
            );
            let sub = sub_of(&top, "sub").await;
            for id in ids(3) {
                assert!(probe::ping(&cell(&sub, &id).await).await.is_some(), "{id} answers");
            }
            assert_eq!(control.starts("w1"), round + 1);
        }
        top.stop().await;
    });
}

#[test]
fn tasks_spawned_and_woken_from_another_thread_while_workers_wait_are_run() {
    spawned_and_woken_from_outside(runtime());
}

#[test]
fn an_idle_runtime_does_not_sit_out_its_park_delay() {
    spawned_and_woken_from_outside(runtime_with_a_long_delay());
    timers_and_io(runtime_with_a_long_delay());
}

fn spawned_and_woken_from_outside(rt: tokio::runtime::Runtime) {
    let handle = rt.handle().clone();
    std::thread::spawn(move || {
        let (tx, rx) = mpsc::channel();
        for i in 0..2000u32 {
            // Spawned from outside: the runtime has just gone idle after the last one.
            let done = tx.clone();
            handle.spawn(async move { done.send(i).unwrap() });
            assert_eq!(rx.recv_timeout(LOST), Ok(i), "spawned task {i} ran");

            // Woken from outside: a task says it is about to wait on a channel,
            // and this thread fills the channel as the runtime goes idle.
            let (wake, woken) = tokio::sync::oneshot::channel::<u32>();
            let (ready, is_ready) = mpsc::channel();
            let done = tx.clone();
            handle.spawn(async move {
                ready.send(()).unwrap();
                done.send(woken.await.unwrap()).unwrap();
            });
            is_ready.recv_timeout(LOST).expect("the waiting task ran");
            wake.send(i).unwrap();
            assert_eq!(rx.recv_timeout(LOST), Ok(i), "woken task {i} ran");
        }
    })
    .join()
    .unwrap();
}

#[test]
fn timers_and_io_that_arrive_while_workers_wait_are_served() {
    timers_and_io(runtime());
}

fn timers_and_io(rt: tokio::runtime::Runtime) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut byte = [0u8; 1];
        while conn.read_exact(&mut byte).await.is_ok() {
            conn.write_all(&byte).await.unwrap();
        }
    });
    let handle = rt.handle().clone();
    std::thread::spawn(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(LOST)).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..1000u32 {
            // A timer shorter than the park delay, set as the runtime goes idle.
            let done = tx.clone();
            handle.spawn(async move {
                tokio::time::sleep(Duration::from_micros(50)).await;
                done.send(i).unwrap();
            });
            assert_eq!(rx.recv_timeout(LOST), Ok(i), "timer {i} fired");

            // A byte over TCP, echoed by the task above.
            let sent = [i as u8];
            conn.write_all(&sent).unwrap();
            let mut back = [0u8; 1];
            conn.read_exact(&mut back).expect("the echo came back");
            assert_eq!(back, sent);
        }
    })
    .join()
    .unwrap();
}
