//! The message path between nodes (ractor_cluster as patched in `vendor/ractor_cluster`:
//! frames written straight to the connection's writer, read through a buffer) keeps what
//! the relay actor it replaced kept: from one sender, casts and calls reach the remote
//! actor in the order they were sent, nothing is lost when many senders share the
//! connection, and a frame many times the read buffer's size arrives whole, as does a run
//! of small frames packed into one read.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use nodes::{COOKIE, NodeProc, WAIT, origin_joined};
use ractor::ActorRef;
use warden_cluster::{ECHO_KIND, EchoArgs, EchoMsg, Placement, RemoteChild, locate};
use warden_supervisor::{Strategy, Supervisor};

const SENDERS: u64 = 8;
const CASTS_PER_ROUND: u64 = 250;
const ROUNDS: u64 = 20;
const CALL_MS: u64 = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_and_calls_keep_their_order_and_nothing_is_lost() {
    let a = NodeProc::start("a", COOKIE, &[]).await;
    let origin = origin_joined(&[&a]).await;
    let spec = RemoteChild::new(&origin, ECHO_KIND, &EchoArgs { tag: "order".into() })
        .unwrap()
        .placement(Placement::Pinned("a".into()))
        .spec("echo");
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .child(spec)
        .spawn()
        .await
        .unwrap();
    let cell = root.which_children().await.unwrap()[0].state.actor().unwrap().clone();
    let echo: ActorRef<EchoMsg> = locate(&origin, &cell, WAIT).await.unwrap().actor.into();

    // Many senders share one connection, each casting runs of notes and then asking for the
    // count: its own notes were sent before its call, so the count already includes them.
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let echo = echo.clone();
        senders.push(tokio::spawn(async move {
            let mut last = 0;
            for round in 1..=ROUNDS {
                for _ in 0..CASTS_PER_ROUND {
                    echo.cast(EchoMsg::Note(String::new())).unwrap();
                }
                let count = ractor::call_t!(echo, EchoMsg::Notes, CALL_MS, String::new()).unwrap();
                assert!(
                    count >= round * CASTS_PER_ROUND,
                    "a call overtook its sender's casts: {count} notes counted after {} sent",
                    round * CASTS_PER_ROUND
                );
                assert!(count >= last, "the count went back: {last} then {count}");
                last = count;
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let total = ractor::call_t!(echo, EchoMsg::Notes, CALL_MS, String::new()).unwrap();
    assert_eq!(total, SENDERS * ROUNDS * CASTS_PER_ROUND, "every cast arrived, once");

    // A frame of 600 KiB (under the 1 MiB bound, 75 times the 8 KiB read buffer) crosses
    // both ways whole; small ones right behind it are not mixed into it.
    let big: String = (0..600 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let (answer, small) = tokio::join!(
        async { ractor::call_t!(echo, EchoMsg::Ping, CALL_MS, big.clone()) },
        async { ractor::call_t!(echo, EchoMsg::Ping, CALL_MS, "small".to_string()) },
    );
    assert_eq!(answer.unwrap(), format!("order@a: {big}"));
    assert_eq!(small.unwrap(), "order@a: small");

    // A burst of pings answered in one go: each answer is its own.
    let pings: Vec<_> = (0..200)
        .map(|i| {
            let echo = echo.clone();
            tokio::spawn(async move { ractor::call_t!(echo, EchoMsg::Ping, CALL_MS, format!("p{i}")).unwrap() })
        })
        .collect();
    for (i, ping) in pings.into_iter().enumerate() {
        assert_eq!(ping.await.unwrap(), format!("order@a: p{i}"));
    }

    root.stop().await;
    origin.stop().await;
}
