//! A sequence of stops, each child asked when the one before it has ended,
//! driven from the children's ends rather than from the supervisor's task.
//!
//! OTP stops a supervisor's children one at a time, last started first: ask
//! one (or kill it, by its shutdown spec), wait for its end or its timer, then
//! the next. Done in the supervisor's task, every stop is two hand-offs (the
//! supervisor wakes the child, the child's end wakes the supervisor), and on
//! tokio's multi-thread runtime every fourth hand-off in a row goes through the
//! run queue and wakes a parked worker. Here the child's end itself asks the
//! next child: the waker registered on a child's end is the chain's own, and
//! when it is woken it checks the child has ended, records how, and asks the
//! next one. The supervisor's task takes part only at the end, and at a
//! deadline (to kill a child that overran its timeout, or to give up on one
//! that a kill did not end within the kill grace).
//!
//! What OTP's order promises is kept: a child is asked only once the one
//! before it has ended (or been given up on), and every deadline counts from
//! the request it bounds. Each child's exit is reported (its event emitted)
//! as soon as it is known and before the next child is asked, so an observer
//! sees a child's exit before anything the next child's stop causes (a child
//! supervisor's own children's exits, say).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ractor::ActorCell;
use tokio::time::{Instant, Sleep};

use super::state::{ask_to_stop, emit_to};
use crate::event::{EventSink, SupervisorEvent};
use crate::exit::ExitReason;
use crate::path::ChildPath;
use crate::spec::{ChildKind, Shutdown};

/// One child to stop.
pub(super) struct Step {
    /// The child's actor.
    pub(super) cell: ActorCell,
    /// Its path, for its exit event.
    pub(super) path: ChildPath,
    /// A worker or a supervisor (a supervisor is asked by message).
    pub(super) kind: ChildKind,
    /// Its shutdown spec.
    pub(super) how: Shutdown,
    /// The supervisor to unlink it from when it is asked, so that its exit
    /// event is not queued for nothing (its end is reported from here).
    pub(super) unlink_from: Option<ActorCell>,
}

/// Stops the children in `steps`, in that order, each once the one before
/// it has ended, and emits each one's exit to `observer` as it is known;
/// answers each one's exit reason, in the same order.
///
/// Waiting in place, the supervisor cannot read the children's exit events: a
/// child that stopped when asked is reported `shutdown`, one that ended after
/// a kill `killed`. One that had not ended within `kill_grace` after the kill
/// (its task is stuck in code that does not yield) is reported abandoned and
/// `killed`.
pub(super) async fn stop_in_turn(
    steps: Vec<Step>,
    kill_grace: Duration,
    observer: Option<EventSink>,
) -> Vec<ExitReason> {
    let chain = Arc::new(Chain {
        inner: Mutex::new(Inner {
            observer,
            outcomes: Vec::with_capacity(steps.len()),
            steps: steps.into_iter(),
            current: None,
            kill_grace,
            supervisor: None,
            armed: Armed::NotYet,
            news: false,
        }),
    });
    // Ends the chain if this future is dropped half-way (the supervisor was
    // killed): the child being waited for must not keep the chain alive.
    let guard = DropGuard(&chain);
    chain.advance();
    // Most children stop as soon as they run: give them that chance before
    // setting a timer (a tokio timer may wake a parked worker). Tokio wakes a
    // yielded task only once its thread has run what else was ready.
    tokio::select! {
        biased;
        () = chain.news() => {}
        () = tokio::task::yield_now() => {}
    }
    let mut sleep: Option<Pin<Box<Sleep>>> = None;
    loop {
        match chain.arm() {
            None => return guard.outcomes(),
            // An `Infinity` child: no timer until a child with a deadline.
            Some(None) => chain.news().await,
            Some(Some(deadline)) => {
                let sleep = match &mut sleep {
                    Some(sleep) => {
                        if sleep.deadline() != deadline {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    empty => empty.insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                tokio::select! {
                    biased;
                    () = chain.news() => {}
                    () = sleep.as_mut() => chain.expire(Instant::now()),
                }
            }
        }
    }
}

/// The chain, shared by the supervisor's task and the waker registered on the
/// end of the child being waited for.
struct Chain {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The children still to ask, in order.
    steps: std::vec::IntoIter<Step>,
    /// The child being waited for.
    current: Option<Current>,
    /// The exit reason of each child already dealt with, in order.
    outcomes: Vec<ExitReason>,
    /// Where the exits are reported.
    observer: Option<EventSink>,
    kill_grace: Duration,
    /// The supervisor's task, woken when there is news for it (see `news`).
    supervisor: Option<Waker>,
    /// The deadline the supervisor's timer is set for.
    armed: Armed,
    /// Whether the supervisor must look at the chain again: it is done, or a
    /// child's deadline comes before the supervisor's timer.
    news: bool,
}

/// The supervisor's timer, as the chain knows it.
#[derive(Clone, Copy)]
enum Armed {
    /// The supervisor has not looked yet; it will read the deadline when it does.
    NotYet,
    /// Set for this deadline (`None`: no timer, an `Infinity` child).
    For(Option<Instant>),
}

/// The child being waited for.
struct Current {
    cell: ActorCell,
    path: ChildPath,
    kind: ChildKind,
    /// Its end (ractor's wait), polled with the chain's waker.
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// When to kill it (after a request to stop) or give up on it (after a
    /// kill); `None` to wait as long as it takes.
    deadline: Option<Instant>,
    /// Whether it was killed (its end is then reported as `killed`).
    killed: bool,
}

impl Inner {
    fn is_done(&self) -> bool {
        self.current.is_none() && self.steps.len() == 0
    }

    /// The child being waited for has ended (or is given up on, after a kill
    /// grace): report it and make way for the next.
    fn finish_current(&mut self, abandoned: bool) {
        let Some(Current { path, kind, killed, .. }) = self.current.take() else {
            return;
        };
        let reason = if killed {
            ExitReason::Killed
        } else {
            ExitReason::Shutdown
        };
        if abandoned {
            let grace = self.kill_grace;
            let event = SupervisorEvent::ChildAbandoned {
                path: path.clone(),
                kind,
                grace,
            };
            emit_to(self.observer.as_ref(), event);
        }
        let event = SupervisorEvent::ChildExited {
            path,
            kind,
            reason: reason.clone(),
        };
        emit_to(self.observer.as_ref(), event);
        self.outcomes.push(reason);
    }

    fn tell_supervisor(&mut self) {
        self.news = true;
        if let Some(supervisor) = &self.supervisor {
            supervisor.wake_by_ref();
        }
    }
}

impl Chain {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics while holding the lock; a poisoned lock still
        // holds consistent state.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves the chain on as far as it goes: while the child being waited
    /// for has ended, record how and ask the next one.
    fn advance(self: &Arc<Self>) {
        let mut inner = self.lock();
        self.advance_locked(&mut inner);
    }

    fn advance_locked(self: &Arc<Self>, inner: &mut Inner) {
        loop {
            if let Some(current) = &mut inner.current {
                let waker = Waker::from(Arc::clone(self));
                if current.end.as_mut().poll(&mut Context::from_waker(&waker)).is_pending() {
                    return;
                }
                inner.finish_current(false);
            }
            let Some(step) = inner.steps.next() else {
                // Done: the supervisor reads the outcomes.
                inner.tell_supervisor();
                return;
            };
            let current = ask(step, inner.kill_grace);
            if let (Armed::For(armed), Some(deadline)) = (inner.armed, current.deadline)
                && armed.is_none_or(|armed| deadline < armed)
            {
                // Due before the supervisor's timer: it must set it sooner.
                inner.tell_supervisor();
            }
            inner.current = Some(current);
        }
    }

    /// `None` once every child has been dealt with; else the deadline of the
    /// child being waited for (`Some(None)`: it has none), which the
    /// supervisor's timer is then set for.
    fn arm(&self) -> Option<Option<Instant>> {
        let mut inner = self.lock();
        if inner.is_done() {
            return None;
        }
        let deadline = inner.current.as_ref().and_then(|c| c.deadline);
        inner.armed = Armed::For(deadline);
        Some(deadline)
    }

    /// Ready when there is news for the supervisor: the chain is done, or the
    /// child being waited for is due before the supervisor's timer.
    fn news(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut inner = self.lock();
            if std::mem::take(&mut inner.news) || inner.is_done() {
                return Poll::Ready(());
            }
            match &mut inner.supervisor {
                Some(waker) => waker.clone_from(cx.waker()),
                empty => *empty = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }

    /// A deadline passed: kill the child being waited for if it overran its
    /// timeout, give up on it if a kill did not end it within the kill grace,
    /// and go on with the next.
    fn expire(self: &Arc<Self>, now: Instant) {
        let mut inner = self.lock();
        let kill_grace = inner.kill_grace;
        let Some(current) = &mut inner.current else {
            return;
        };
        if current.deadline.is_none_or(|deadline| now < deadline) {
            return;
        }
        if current.killed {
            inner.finish_current(true);
        } else {
            current.cell.kill();
            current.killed = true;
            current.deadline = now.checked_add(kill_grace);
        }
        self.advance_locked(&mut inner);
    }
}

/// Asks a child to stop (or kills it) by its shutdown spec.
fn ask(step: Step, kill_grace: Duration) -> Current {
    let Step {
        cell,
        path,
        kind,
        how,
        unlink_from,
    } = step;
    // Ractor's wait sees an end that came before it is first polled (the
    // actor's status is `Stopped` before its waiters are told).
    let end = {
        let cell = cell.clone();
        Box::pin(async move {
            let _ = cell.wait(None).await;
        })
    };
    if let Some(supervisor) = unlink_from {
        cell.unlink(supervisor);
    }
    let now = Instant::now();
    let (deadline, killed) = match how {
        Shutdown::BrutalKill => {
            cell.kill();
            (now.checked_add(kill_grace), true)
        }
        Shutdown::Timeout(timeout) => {
            ask_to_stop(&cell, kind);
            // Too far to tell from forever: no deadline.
            (now.checked_add(timeout), false)
        }
        Shutdown::Infinity => {
            ask_to_stop(&cell, kind);
            (None, false)
        }
    };
    Current {
        cell,
        path,
        kind,
        end,
        deadline,
        killed,
    }
}

impl Wake for Chain {
    fn wake(self: Arc<Self>) {
        self.advance();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.advance();
    }
}

/// Ends the chain when the supervisor's side is dropped before it is done.
struct DropGuard<'a>(&'a Arc<Chain>);

impl DropGuard<'_> {
    /// The outcomes, once the chain is done.
    fn outcomes(&self) -> Vec<ExitReason> {
        std::mem::take(&mut self.0.lock().outcomes)
    }
}

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        // Its end future holds the chain's waker: drop it to free the chain.
        inner.current = None;
        inner.steps = Vec::new().into_iter();
        inner.supervisor = None;
    }
}
