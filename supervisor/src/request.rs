//! Requests that survive their worker's death: [`request`] and [`RequestError`].
//!
//! A caller that asks a supervised worker for something must get exactly one
//! outcome, even if the worker is killed, panics or is restarted while the
//! request is in its mailbox or in its handler: the reply, or a typed error,
//! promptly, never a hang.
//!
//! [`request`] gets this from ownership rather than from a monitor. The reply
//! travels through a one-shot [`RpcReplyPort`] that the request carries. If the
//! worker dies, everything it owns is dropped: a request still queued in its
//! mailbox (tokio drains a channel whose receiver is dropped), the request its
//! handler was working on (ractor drops the handler's future when the actor is
//! killed, and unwinding drops it on a panic), and anything it handed the port
//! to, as long as that thing is owned by the worker (a task in a
//! [`JoinSet`](tokio::task::JoinSet) kept in the actor's state is aborted with
//! it). A dropped port wakes the caller at once with
//! [`RequestError::WorkerDown`].
//!
//! Ownership has one gap, which [`request`] closes by also waiting for the
//! worker to stop: a message sent in the instant between the dying worker's
//! last drain of its mailbox and the drop of that mailbox stays in the
//! channel, and the channel lives as long as any [`ActorRef`] to the dead
//! worker, including the caller's own. Once the worker has stopped, a reply it
//! sent is already waiting, so a request that has none by then ends with
//! [`RequestError::WorkerDown`] rather than at its deadline. The happy path
//! costs a ractor `call` (one message, one one-shot channel) plus one
//! registration with the worker's stop notification.
//!
//! | what happened | outcome |
//! |---|---|
//! | the worker answered | `Ok(reply)` |
//! | the worker was not running when the request was sent | [`RequestError::NotDelivered`]: it did nothing |
//! | the worker died after the request was delivered | [`RequestError::WorkerDown`]: it may or may not have acted |
//! | no answer within the deadline | [`RequestError::Timeout`]: it may still act |
//!
//! After an error, a caller that retries (on the restarted worker, which has a
//! new [`ActorRef`]) should make the request idempotent, for example with a
//! request id the worker remembers: `WorkerDown` and `Timeout` cannot say
//! whether the work was done.
//!
//! ```
//! use std::time::Duration;
//! use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
//! use warden_supervisor::{request, RequestError};
//!
//! struct Doubler;
//! enum Msg { Double(u64, RpcReplyPort<u64>) }
//! # #[cfg(feature = "cluster")] impl ractor::Message for Msg {}
//!
//! impl Actor for Doubler {
//!     type Msg = Msg;
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
//!     async fn handle(&self, _: ActorRef<Msg>, msg: Msg, _: &mut ()) -> Result<(), ActorProcessingErr> {
//!         let Msg::Double(n, reply) = msg;
//!         let _ = reply.send(n * 2);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (worker, handle) = Actor::spawn(None, Doubler, ()).await.unwrap();
//! let deadline = Duration::from_secs(1);
//! assert_eq!(request(&worker, |reply| Msg::Double(21, reply), deadline).await, Ok(42));
//!
//! worker.kill();
//! handle.await.unwrap();
//! let err = request(&worker, |reply| Msg::Double(1, reply), deadline).await.unwrap_err();
//! assert_eq!(err, RequestError::NotDelivered);
//! # }
//! ```

use std::time::Duration;

use futures::FutureExt;
use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, MessagingErr, RpcReplyPort};

/// Why a [`request`] got no reply. Every kind is transient: the worker's
/// supervisor restarts it, and a retry reaches the new actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The worker was not running when the request was sent, so it was never
    /// delivered and had no effect. Transient: look the worker up again (its
    /// restart has a new actor) and retry.
    #[error("worker not running; request not delivered")]
    NotDelivered,
    /// The worker stopped (was killed, panicked, failed or was stopped) after
    /// the request was delivered and before it answered. Transient; the work
    /// may or may not have been done.
    #[error("worker went down before answering")]
    WorkerDown,
    /// No answer within the deadline. Transient; the worker may still do the
    /// work after the caller has given up.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl RequestError {
    /// True when the request certainly had no effect (it was never delivered).
    pub fn was_not_delivered(&self) -> bool {
        matches!(self, Self::NotDelivered)
    }

    /// True for [`RequestError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

/// Sends `actor` the message that `build` makes around a reply port, and waits
/// for exactly one outcome: the reply, or a [`RequestError`] as soon as the
/// worker is known to be gone, or when `deadline` passes.
///
/// See the [module docs](self) for why a worker's death is noticed promptly
/// and what each error says about whether the work was done.
///
/// # Errors
///
/// [`RequestError::NotDelivered`] if the actor is not running,
/// [`RequestError::WorkerDown`] if it dropped the reply port (it died, or its
/// handler dropped the port without answering), [`RequestError::Timeout`] after
/// `deadline`.
///
/// # Cancellation
///
/// Dropping the future abandons the request: the worker may still handle it,
/// and its reply is discarded.
pub async fn request<M, R>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
    deadline: Duration,
) -> Result<R, RequestError>
where
    M: Message,
    R: Send + 'static,
{
    let cell = actor.get_cell();
    let call = actor.call(build, Some(deadline));
    tokio::pin!(call);
    let outcome = tokio::select! {
        // The call first: it sends the message on its first poll, and an
        // answer that is ready wins over the news of the worker's stop.
        biased;
        outcome = &mut call => outcome,
        _ = cell.wait(None) => match (&mut call).now_or_never() {
            // The worker has stopped: its answer, or the drop of the reply
            // port, has already happened, or never will.
            Some(outcome) => outcome,
            None => return Err(RequestError::WorkerDown),
        },
    };
    match outcome {
        Ok(CallResult::Success(reply)) => Ok(reply),
        Ok(CallResult::SenderError) => Err(RequestError::WorkerDown),
        Ok(CallResult::Timeout) => Err(RequestError::Timeout(deadline)),
        Err(MessagingErr::SendErr(_) | MessagingErr::ChannelClosed | MessagingErr::InvalidActorType) => {
            Err(RequestError::NotDelivered)
        }
    }
}
