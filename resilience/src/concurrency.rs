//! A concurrency limit with a bounded queue: past it, [`Overloaded`] at once.
//!
//! Ours, not `tower::limit::ConcurrencyLimit`: tower's makes every caller
//! past the limit wait in `poll_ready`, and the waiters are unbounded, so a
//! burst of calls to a slow tool grows memory and latency without bound.
//! Here at most `max_in_flight` calls run, at most `queue` more wait for a
//! slot (first come, first served: a fair tokio semaphore), and any call
//! beyond that fails at once with the service's error made `From<`[`Overloaded`]`>`:
//! backpressure the caller can see and act on.
//!
//! All clones of a [`ConcurrencyLimitService`] share one limit.
//!
//! # Cancellation
//!
//! Dropping a waiting call leaves the queue; dropping a running one frees its
//! slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};

use crate::error::Overloaded;

#[derive(Debug)]
struct Limit {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    max_in_flight: usize,
    queue: usize,
}

impl Limit {
    fn overloaded(&self) -> Overloaded {
        Overloaded {
            in_flight: self.max_in_flight,
            queued: self.queue,
        }
    }
}

/// Runs at most `max_in_flight` calls, queues at most `queue`, refuses the
/// rest; made by [`ConcurrencyLimitLayer`].
#[derive(Clone, Debug)]
pub struct ConcurrencyLimitService<S> {
    inner: S,
    limit: Arc<Limit>,
}

/// Wraps a service in a [`ConcurrencyLimitService`]. Services made by a layer
/// from [`new`](Self::new) share nothing (clones of one service share its
/// limit); a layer from [`shared`](Self::shared) gives every service it makes
/// the same limit.
#[derive(Clone, Debug)]
pub struct ConcurrencyLimitLayer {
    max_in_flight: usize,
    queue: usize,
    shared: Option<ConcurrencyLimiter>,
}

impl ConcurrencyLimitLayer {
    /// At most `max_in_flight` calls at once (at least 1), `queue` waiting, per service made.
    pub fn new(max_in_flight: usize, queue: usize) -> Self {
        Self {
            max_in_flight: max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
            queue,
            shared: None,
        }
    }

    /// Every service made shares `limiter` (and whoever else holds a clone of it).
    pub fn shared(limiter: ConcurrencyLimiter) -> Self {
        Self {
            max_in_flight: limiter.0.max_in_flight,
            queue: limiter.0.queue,
            shared: Some(limiter),
        }
    }
}

/// A concurrency limit that several services share: at most `max_in_flight` of their calls
/// at once, `queue` more waiting. Cheap to clone; clones share the limit.
#[derive(Clone, Debug)]
pub struct ConcurrencyLimiter(Arc<Limit>);

impl ConcurrencyLimiter {
    /// At most `max_in_flight` calls at once (at least 1), `queue` more waiting.
    pub fn new(max_in_flight: usize, queue: usize) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Self(Arc::new(Limit {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            queued: AtomicUsize::new(0),
            max_in_flight,
            queue,
        }))
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.0.max_in_flight - self.0.slots.available_permits()
    }

    /// Calls waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.0.queued.load(Ordering::Acquire)
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let limiter = self
            .shared
            .clone()
            .unwrap_or_else(|| ConcurrencyLimiter::new(self.max_in_flight, self.queue));
        ConcurrencyLimitService {
            inner,
            limit: limiter.0,
        }
    }
}

/// Decrements the queue count when a waiter leaves, however it leaves.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimitService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: From<Overloaded> + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Always ready: past the limit a call fails at once, it never waits here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Req) -> Self::Future {
        let inner = self.inner.clone();
        if let Ok(permit) = self.limit.slots.clone().try_acquire_owned() {
            return async move {
                let result = inner.oneshot(call).await;
                drop(permit);
                result
            }
            .boxed();
        }
        // No free slot: join the queue if it has room.
        if self.limit.queued.fetch_add(1, Ordering::AcqRel) >= self.limit.queue {
            self.limit.queued.fetch_sub(1, Ordering::AcqRel);
            return futures::future::ready(Err(self.limit.overloaded().into())).boxed();
        }
        let limit = self.limit.clone();
        async move {
            let permit = {
                let _queued = Queued(&limit.queued);
                match limit.slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    // The semaphore is never closed.
                    Err(_) => return Err(limit.overloaded().into()),
                }
            };
            let result = inner.oneshot(call).await;
            drop(permit);
            result
        }
        .boxed()
    }
}
