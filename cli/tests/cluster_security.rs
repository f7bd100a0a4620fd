//! A node's door: a peer without the cookie is refused and logged, and a flood of hostile
//! frames (random bytes, truncated frames, huge length prefixes, well-formed frames with
//! garbage inside) neither crashes the node nor grows its memory without bound; it drops
//! those connections and goes on serving its peers. Nodes are `warden node` processes.

#![cfg(feature = "cluster")]

#[path = "support/nodes.rs"]
mod nodes;

use std::time::Duration;

use nodes::{COOKIE, NodeProc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_cookie_is_refused_and_logged() {
    let a = NodeProc::start("a", COOKIE, &[]).await;
    let intruder = NodeProc::start("intruder", "not-the-cookie", &[a.addr]).await;

    a.wait_line(|l| l == "rejected intruder", "the intruder refused").await;
    intruder.wait_line(|l| l == "rejected a", "the intruder told").await;
    // A peer with the cookie still joins, and the intruder never came up.
    let b = NodeProc::start("b", COOKIE, &[a.addr]).await;
    a.wait_line(|l| l.starts_with("up b "), "b up").await;
    assert!(
        !a.lines().iter().any(|l| l.starts_with("up intruder")),
        "{:#?}",
        a.lines()
    );
    assert!(
        !intruder.lines().iter().any(|l| l.starts_with("up ")),
        "{:#?}",
        intruder.lines()
    );
    drop(b);
}

/// How many hostile frames the flood sends, and how many per connection.
const FRAMES: usize = 100_000;
const PER_CONNECTION: usize = 5;
/// The node's default frame bound (1 MiB).
const MAX_FRAME: u64 = 1024 * 1024;

/// One hostile frame of kind `n % 5`.
fn hostile(n: usize, rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut garbage = |len: usize| -> Vec<u8> { (0..len).map(|_| rng.u8(..)).collect() };
    match n % 5 {
        // Random bytes: a random length prefix and whatever follows.
        0 => {
            let len = 1 + n % 64;
            garbage(len)
        }
        // A length prefix past the bound (up to u64::MAX), nothing behind it.
        1 => {
            let len = MAX_FRAME + 1 + (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % (u64::MAX - MAX_FRAME - 1);
            len.to_be_bytes().to_vec()
        }
        // A truncated frame: it announces more than it sends.
        2 => {
            let mut frame = 1_000u64.to_be_bytes().to_vec();
            frame.extend(garbage(10 + n % 100));
            frame
        }
        // A well-formed length, a payload that is not a protobuf message.
        3 => {
            let payload = garbage(1 + n % 200);
            let mut frame = (payload.len() as u64).to_be_bytes().to_vec();
            frame.extend(payload);
            frame
        }
        // A well-formed NetworkMessage (auth, node or control) with garbage inside.
        _ => {
            let inner = garbage(n % 100);
            let field = 1 + (n / 5 % 3) as u8;
            let mut payload = vec![(field << 3) | 2];
            let mut len = inner.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    payload.push(byte);
                    break;
                }
                payload.push(byte | 0x80);
            }
            payload.extend(inner);
            let mut frame = (payload.len() as u64).to_be_bytes().to_vec();
            frame.extend(payload);
            frame
        }
    }
}

/// Sends `PER_CONNECTION` frames on one connection, then waits (briefly) for the node to
/// close it. Returns whether it did.
async fn flood_one(addr: std::net::SocketAddr, first: usize, seed: u64) -> bool {
    let mut rng = fastrand::Rng::with_seed(seed);
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    for n in first..first + PER_CONNECTION {
        let frame = hostile(n, &mut rng);
        if stream.write_all(&frame).await.is_err() {
            // Already dropped by the node.
            return true;
        }
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_hostile_frames_is_dropped_and_the_node_serves_on() {
    let a = NodeProc::start("a", COOKIE, &[]).await;
    let before = a.peak_rss_kib();

    let connections = FRAMES / PER_CONNECTION;
    let mut closed = 0;
    let mut started = 0;
    let mut running = tokio::task::JoinSet::new();
    while started < connections || !running.is_empty() {
        while started < connections && running.len() < 64 {
            let first = started * PER_CONNECTION;
            running.spawn(flood_one(a.addr, first, started as u64));
            started += 1;
        }
        if let Some(done) = running.join_next().await {
            closed += usize::from(done.unwrap());
        }
    }
    let after = a.peak_rss_kib();
    eprintln!(
        "hostile frames: {FRAMES} on {connections} connections; {closed} closed by the node; peak RSS {before} KiB before, {after} KiB after"
    );

    // Every connection was dropped by the node (none was left hanging open)...
    assert_eq!(closed, connections);
    // ...its memory stayed bounded (a 1 MiB frame bound, nothing kept per dropped connection)...
    assert!(
        after < before + 128 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    // ...and it still serves: a peer joins.
    let b = NodeProc::start("b", COOKIE, &[a.addr]).await;
    a.wait_line(|l| l.starts_with("up b "), "b up after the flood").await;
    drop(b);
}
