//! `warden_supervisor::request`: exactly one outcome per request, the reply or
//! a typed error as soon as the worker is known to be gone, never a hang.
//!
//! Each test that could hang runs on a paused clock with a long deadline: if
//! the worker's death were not noticed, the clock would jump to the deadline
//! and the request would end in `Timeout`, so `WorkerDown` with no time
//! elapsed proves the outcome was prompt.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;
use tokio::time::Instant;
use warden_chaos::ChaosWatch;
use warden_supervisor::{ChildSpec, ExitReason, RequestError, StartContext, request};

/// Long enough that reaching it means the request hung.
const LONG: Duration = Duration::from_secs(60);

enum Msg {
    /// Answers `n * 2`.
    Double(u64, RpcReplyPort<u64>),
    /// Tells the test it started, then waits forever holding the port.
    Stuck(RpcReplyPort<u64>),
    /// Keeps the port in the state and never answers.
    Hold(RpcReplyPort<u64>),
    /// Panics while holding the port.
    Panic(RpcReplyPort<u64>),
    /// Drops the port without answering, and goes on running.
    Drop(RpcReplyPort<u64>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for Msg {}

/// A server whose `Stuck` handler reports on `entered` that it began.
struct Server {
    entered: mpsc::UnboundedSender<()>,
}

impl Actor for Server {
    type Msg = Msg;
    type State = Vec<RpcReplyPort<u64>>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(&self, _: ActorRef<Msg>, msg: Msg, held: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Double(n, reply) => {
                let _ = reply.send(n * 2);
            }
            Msg::Stuck(reply) => {
                let _ = self.entered.send(());
                futures::future::pending::<()>().await;
                drop(reply);
            }
            Msg::Hold(reply) => held.push(reply),
            Msg::Panic(_reply) => panic!("server told to panic while answering"),
            Msg::Drop(reply) => drop(reply),
        }
        Ok(())
    }
}

async fn server() -> (ActorRef<Msg>, tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<()>) {
    let (entered, rx) = mpsc::unbounded_channel();
    let (actor, handle) = Actor::spawn(None, Server { entered }, ()).await.expect("server starts");
    (actor, handle, rx)
}

#[tokio::test]
async fn the_reply_comes_back_on_the_happy_path() {
    let (actor, handle, _entered) = server().await;
    for n in 0..10 {
        assert_eq!(request(&actor, |r| Msg::Double(n, r), LONG).await, Ok(n * 2));
    }
    actor.stop(None);
    handle.await.unwrap();
}

#[tokio::test]
async fn a_dead_actor_gets_not_delivered() {
    let (actor, handle, _entered) = server().await;
    actor.kill();
    handle.await.unwrap();
    let err = request(&actor, |r| Msg::Double(1, r), LONG).await.unwrap_err();
    assert_eq!(err, RequestError::NotDelivered);
    assert!(err.was_not_delivered());
    assert!(!err.is_timeout());

    // Stopped gracefully: the same.
    let (actor, handle, _entered) = server().await;
    actor.stop(None);
    handle.await.unwrap();
    assert_eq!(
        request(&actor, |r| Msg::Double(1, r), LONG).await,
        Err(RequestError::NotDelivered)
    );
}

#[tokio::test(start_paused = true)]
async fn a_worker_killed_while_handling_gives_worker_down_at_once() {
    let (actor, handle, mut entered) = server().await;
    let start = Instant::now();
    let caller = tokio::spawn({
        let actor = actor.clone();
        async move { request(&actor, Msg::Stuck, LONG).await }
    });
    entered.recv().await.expect("handler began");
    actor.kill();
    let outcome = caller.await.unwrap();
    assert_eq!(outcome, Err(RequestError::WorkerDown));
    assert!(!outcome.unwrap_err().was_not_delivered());
    assert!(start.elapsed() < LONG, "took {:?}", start.elapsed());
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no timer fired: the death was noticed at once"
    );
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn requests_queued_behind_a_stuck_handler_all_get_worker_down() {
    let (actor, handle, mut entered) = server().await;
    let start = Instant::now();
    let stuck = tokio::spawn({
        let actor = actor.clone();
        async move { request(&actor, Msg::Stuck, LONG).await }
    });
    entered.recv().await.expect("handler began");

    // Poll each request once: that sends it, so all ten sit in the mailbox.
    let mut queued: Vec<_> = (0..10)
        .map(|n| {
            let actor = actor.clone();
            async move { request(&actor, |r| Msg::Double(n, r), LONG).await }.boxed()
        })
        .collect();
    for fut in &mut queued {
        assert!(
            futures::poll!(fut.as_mut()).is_pending(),
            "the handler is stuck: no answer yet"
        );
    }

    actor.kill();
    let outcomes = futures::future::join_all(queued).await;
    assert_eq!(outcomes, vec![Err(RequestError::WorkerDown); 10]);
    assert_eq!(stuck.await.unwrap(), Err(RequestError::WorkerDown));
    assert_eq!(start.elapsed(), Duration::ZERO);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_gives_worker_down() {
    let (actor, handle, _entered) = server().await;
    let start = Instant::now();
    assert_eq!(request(&actor, Msg::Panic, LONG).await, Err(RequestError::WorkerDown));
    assert_eq!(start.elapsed(), Duration::ZERO);
    handle.await.unwrap();
    assert_eq!(
        request(&actor, |r| Msg::Double(1, r), LONG).await,
        Err(RequestError::NotDelivered)
    );
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_never_answers_times_out_at_the_deadline() {
    let (actor, handle, _entered) = server().await;
    let deadline = Duration::from_secs(5);
    let start = Instant::now();
    let err = request(&actor, Msg::Hold, deadline).await.unwrap_err();
    assert_eq!(err, RequestError::Timeout(deadline));
    assert!(err.is_timeout());
    assert!(!err.was_not_delivered());
    assert_eq!(err.to_string(), "no answer within 5s");
    let waited = start.elapsed();
    assert!(
        waited >= deadline && waited < deadline + Duration::from_millis(10),
        "waited {waited:?}"
    );

    // The worker is still there and answers the next request.
    assert_eq!(request(&actor, |r| Msg::Double(4, r), LONG).await, Ok(8));
    actor.stop(None);
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_drops_the_port_gives_worker_down_and_the_worker_lives_on() {
    let (actor, handle, _entered) = server().await;
    let start = Instant::now();
    assert_eq!(request(&actor, Msg::Drop, LONG).await, Err(RequestError::WorkerDown));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(request(&actor, |r| Msg::Double(5, r), LONG).await, Ok(10));
    actor.stop(None);
    handle.await.unwrap();
}

#[tokio::test]
async fn error_kinds_display_in_lowercase_without_period() {
    assert_eq!(
        RequestError::NotDelivered.to_string(),
        "worker not running; request not delivered"
    );
    assert_eq!(
        RequestError::WorkerDown.to_string(),
        "worker went down before answering"
    );
}

/// A supervised server: every start gets a clone of the same `entered` sender.
fn supervised_server(entered: mpsc::UnboundedSender<()>) -> ChildSpec {
    ChildSpec::worker("server", move |ctx: StartContext| {
        let server = Server {
            entered: entered.clone(),
        };
        async move { ctx.spawn(server, ()).await.map(ActorCell::from) }
    })
}

#[tokio::test(start_paused = true)]
async fn after_a_kill_a_retry_reaches_the_restarted_child() {
    let watch = ChaosWatch::new();
    let (tx, mut entered) = mpsc::unbounded_channel();
    let root = common::watched_root(&watch, 10)
        .child(supervised_server(tx))
        .spawn()
        .await
        .unwrap();
    let first: ActorRef<Msg> = common::cell(&root, "server").await.into();
    assert_eq!(request(&first, |r| Msg::Double(1, r), LONG).await, Ok(2));

    let start = Instant::now();
    let caller = tokio::spawn({
        let first = first.clone();
        async move { request(&first, Msg::Stuck, LONG).await }
    });
    entered.recv().await.expect("handler began");
    let skip = watch.events().len();
    first.kill();
    assert_eq!(caller.await.unwrap(), Err(RequestError::WorkerDown));
    assert_eq!(start.elapsed(), Duration::ZERO);

    common::wait_one(
        &watch,
        skip,
        "server killed",
        common::exited("root/server", |r| *r == ExitReason::Killed),
    )
    .await;
    common::wait_one(&watch, skip, "server restarted", common::started("root/server")).await;

    // The old ref is dead; the one found through which_children answers.
    assert_eq!(
        request(&first, |r| Msg::Double(1, r), LONG).await,
        Err(RequestError::NotDelivered)
    );
    let second: ActorRef<Msg> = common::cell(&root, "server").await.into();
    assert_ne!(second.get_id(), first.get_id());
    assert_eq!(request(&second, |r| Msg::Double(21, r), LONG).await, Ok(42));
    root.stop().await;
}
