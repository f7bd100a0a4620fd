//! `request`: exactly one outcome for every request to a worker, whatever
//! happens to the worker, and promptly.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use warden::supervisor::{RequestError, request};

/// A worker that answers, parks (never answers, keeps the port), or drops the
/// port without answering.
struct Worker;

enum Msg {
    Answer(u64, RpcReplyPort<u64>),
    Park(RpcReplyPort<u64>),
    Drop(RpcReplyPort<u64>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for Msg {}

impl Actor for Worker {
    type Msg = Msg;
    type State = Vec<RpcReplyPort<u64>>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(&self, _: ActorRef<Msg>, msg: Msg, parked: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Answer(n, reply) => {
                let _ = reply.send(n);
            }
            Msg::Park(reply) => parked.push(reply),
            Msg::Drop(reply) => drop(reply),
        }
        Ok(())
    }
}

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn an_answer_is_the_reply() {
    let (worker, _) = Actor::spawn(None, Worker, ()).await.unwrap();
    assert_eq!(request(&worker, |r| Msg::Answer(7, r), LONG).await, Ok(7));
    worker.stop(None);
}

#[tokio::test]
async fn a_stopped_worker_is_not_delivered_to() {
    let (worker, handle) = Actor::spawn(None, Worker, ()).await.unwrap();
    worker.kill();
    handle.await.unwrap();
    assert_eq!(
        request(&worker, |r| Msg::Answer(7, r), LONG).await,
        Err(RequestError::NotDelivered)
    );
}

#[tokio::test]
async fn a_dropped_reply_port_is_worker_down() {
    let (worker, _) = Actor::spawn(None, Worker, ()).await.unwrap();
    assert_eq!(request(&worker, Msg::Drop, LONG).await, Err(RequestError::WorkerDown));
    worker.stop(None);
}

#[tokio::test]
async fn a_worker_killed_while_holding_the_port_is_worker_down() {
    let (worker, _) = Actor::spawn(None, Worker, ()).await.unwrap();
    let asking = tokio::spawn({
        let worker = worker.clone();
        async move { request(&worker, Msg::Park, LONG).await }
    });
    // Once a later message is answered, the parked one has been handled.
    assert_eq!(request(&worker, |r| Msg::Answer(1, r), LONG).await, Ok(1));
    worker.kill();
    assert_eq!(asking.await.unwrap(), Err(RequestError::WorkerDown));
}

#[tokio::test(start_paused = true)]
async fn no_answer_is_a_timeout_at_the_deadline() {
    let (worker, _) = Actor::spawn(None, Worker, ()).await.unwrap();
    let deadline = Duration::from_secs(60);
    assert_eq!(
        request(&worker, Msg::Park, deadline).await,
        Err(RequestError::Timeout(deadline))
    );
    worker.stop(None);
}

/// A request sent while its worker is being killed lands before the mailbox is
/// drained (dropped: `WorkerDown`), after it is closed (`NotDelivered`), or in
/// the instant between, where the message outlives the worker in a channel the
/// caller's own `ActorRef` keeps alive. None of them may wait for the deadline,
/// which no round comes near unless its request hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_racing_the_kill_of_its_worker_ends_without_waiting_for_its_deadline() {
    const ROUNDS: usize = 2_000;
    // Far beyond the time any round takes: a request that reaches it hung.
    let deadline = Duration::from_secs(60);
    let mut outcomes = [0usize; 3];
    for _ in 0..ROUNDS {
        let (worker, handle) = Actor::spawn(None, Worker, ()).await.unwrap();
        let asking = tokio::spawn({
            let worker = worker.clone();
            async move { request(&worker, |r| Msg::Answer(1, r), deadline).await }
        });
        tokio::task::yield_now().await;
        worker.kill();
        let outcome = asking.await.unwrap();
        handle.await.unwrap();
        match outcome {
            Ok(1) => outcomes[0] += 1,
            Err(RequestError::WorkerDown) => outcomes[1] += 1,
            Err(RequestError::NotDelivered) => outcomes[2] += 1,
            other => panic!("a request racing a kill ended with {other:?}"),
        }
    }
    println!(
        "answered {}, worker down {}, not delivered {}",
        outcomes[0], outcomes[1], outcomes[2]
    );
}
