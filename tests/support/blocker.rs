//! Test support: a worker whose handler blocks its thread in synchronous code
//! until released, so that neither a stop nor a kill can end it.
//!
//! Include it with `#[path = "support/blocker.rs"] mod blocker;` and run the
//! test on a multi-thread runtime with a spare worker.
#![allow(dead_code, unreachable_pub)]

use std::sync::mpsc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use warden::supervisor::ChildSpec;

/// Told to block its thread in synchronous code until `release` is sent to.
pub struct Block {
    release: mpsc::Receiver<()>,
    blocked: oneshot::Sender<()>,
}

#[cfg(feature = "cluster")]
impl ractor::Message for Block {}

/// A worker whose handler blocks its thread, as synchronous code does.
pub struct Blocker;

impl Actor for Blocker {
    type Msg = Block;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Block>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(&self, _: ActorRef<Block>, msg: Block, _: &mut ()) -> Result<(), ActorProcessingErr> {
        let _ = msg.blocked.send(());
        // The handler never yields until released, so its supervisor cannot stop it: what
        // the tests need. `block_in_place` hands the worker's other tasks to another thread
        // first: a task woken from this handler (the test's, by `blocked`) lands in this
        // worker's LIFO slot, which tokio's other workers cannot steal, and would wait for
        // the release too (a hang that says nothing about the supervisor).
        tokio::task::block_in_place(|| {
            let _ = msg.release.recv();
        });
        Ok(())
    }
}

/// A worker spec for a `Blocker` called `id`.
pub fn blocker(id: &str) -> ChildSpec {
    ChildSpec::actor(id, || (Blocker, ()))
}

/// Blocks the running `Blocker` `cell` and returns once its thread is
/// blocked; sending to the answer releases it.
pub async fn block(cell: &ActorCell) -> mpsc::Sender<()> {
    let (release, release_rx) = mpsc::channel();
    let (blocked_tx, blocked) = oneshot::channel();
    ActorRef::<Block>::from(cell.clone())
        .send_message(Block {
            release: release_rx,
            blocked: blocked_tx,
        })
        .expect("blocker is running");
    blocked.await.expect("blocker blocks");
    release
}
