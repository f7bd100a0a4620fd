//! A rate limit (a token bucket) that a caller waits on for a bounded time, in a fair queue, or
//! is refused by with a typed [`Throttled`] saying when to come back.
//!
//! Ours, not `tower::limit::RateLimit`: tower's makes callers wait in `poll_ready` for as long
//! as it takes, which holds an agent's turn hostage and hides why. Here a call waits at most
//! its layer's [`max_wait`](RateLimitLayer::max_wait) (none by default) and is otherwise
//! refused at once with the time until its permit, so the caller can wait, or re-plan,
//! knowingly.
//!
//! A [`RateLimiter`] is the bucket: `calls` per `per`, bursts up to `calls`. Clones share it,
//! so one limiter given to many layers (every agent's model client, every executor of a tool
//! behind one API key) holds them all to one rate. Waiting callers queue
//! ([`RateLimiter::acquire`]): a higher [`Priority`] goes first (an orchestrator's own calls
//! ahead of its workers'), and within a priority, first come, first served.
//!
//! A service can tell the limiter it was throttled anyway
//! ([`RateLimiter::exhaust_for`]: a 429 with `Retry-After`), and calls then wait or are refused
//! until then, instead of storming it.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::error::Throttled;

/// `calls` per `per`, with bursts of up to `calls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    calls: u32,
    per: Duration,
}

impl RateLimit {
    /// At most `calls` (at least 1) per `per`.
    pub fn new(calls: u32, per: Duration) -> Self {
        Self {
            calls: calls.max(1),
            per,
        }
    }

    /// The calls allowed per period.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// The period.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Seconds per token (0 for an unlimited rate: a zero period).
    fn secs_per_token(&self) -> f64 {
        self.per.as_secs_f64() / f64::from(self.calls)
    }
}

/// How urgent a call is at a shared [`RateLimiter`]: a higher priority is served first;
/// within one, the order calls came.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// Served after the others (background work).
    Low,
    /// The default.
    #[default]
    Normal,
    /// Served first (an orchestrator's own calls, ahead of its workers').
    High,
}

/// A place in the queue: the highest priority first, then the earliest.
type Place = (Reverse<Priority>, u64);

#[derive(Debug)]
struct Bucket {
    /// Tokens available; negative when callers have reserved tokens still to come.
    tokens: f64,
    refilled: Instant,
    /// Callers waiting in [`RateLimiter::acquire`], by place, with their cost.
    queue: BTreeMap<Place, u32>,
    next: u64,
}

impl Bucket {
    fn refill(&mut self, rate: RateLimit, now: Instant) {
        let per_token = rate.secs_per_token();
        let earned = now.saturating_duration_since(self.refilled).as_secs_f64() / per_token;
        self.tokens = (self.tokens + earned).min(f64::from(rate.calls));
        self.refilled = now;
    }

    /// How long until `cost` tokens are there, the queued costs ahead of `place` first.
    fn wait(&self, rate: RateLimit, place: Option<Place>, cost: u32) -> Duration {
        let ahead: f64 = self
            .queue
            .iter()
            .take_while(|(p, _)| place.is_none_or(|mine| **p < mine))
            .map(|(_, c)| f64::from(*c))
            .sum();
        let missing = ahead + f64::from(cost) - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(missing * rate.secs_per_token()).unwrap_or(Duration::MAX)
        }
    }
}

/// A shared token bucket: `calls` per `per`. Cheap to clone; clones share the bucket.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use warden_resilience::{RateLimit, RateLimiter};
///
/// let limiter = RateLimiter::new(RateLimit::new(2, Duration::from_secs(1)));
/// assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
/// assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
/// // The third call would wait 500 ms for its token: refused without waiting...
/// assert_eq!(limiter.reserve(1, Duration::ZERO).unwrap_err().retry_after, Duration::from_millis(500));
/// // ...or reserved, by a caller willing to wait a second.
/// assert_eq!(limiter.reserve(1, Duration::from_secs(1)), Ok(Duration::from_millis(500)));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RateLimiter {
    rate: RateLimit,
    bucket: Arc<Mutex<Bucket>>,
    /// Wakes the queue when its head took its tokens or a caller left it.
    turn: Arc<Notify>,
}

/// Takes a caller's place out of the queue however it leaves (served, refused, cancelled).
struct Queued<'a> {
    limiter: &'a RateLimiter,
    place: Place,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.limiter.lock().queue.remove(&self.place);
        self.limiter.turn.notify_waiters();
    }
}

impl RateLimiter {
    /// A full bucket for `rate`.
    pub fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::from(rate.calls),
                refilled: Instant::now(),
                queue: BTreeMap::new(),
                next: 0,
            })),
            turn: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `cost` tokens, waiting for them in the queue, by `priority` and then in the
    /// order callers came, at most `max_wait`.
    ///
    /// # Errors
    ///
    /// [`Throttled`] when the tokens would come later than `max_wait` (refused at once when
    /// that is known on arrival, else at the end of the wait; nothing is taken either way).
    ///
    /// # Cancellation
    ///
    /// Dropping the future leaves the queue; the callers behind move up.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use warden_resilience::{Priority, RateLimit, RateLimiter};
    ///
    /// let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(1)));
    /// limiter.acquire(1, Priority::Normal, Duration::ZERO).await.unwrap();
    /// // The next token comes in a second: waited for, or refused.
    /// assert!(limiter.acquire(1, Priority::Normal, Duration::from_millis(10)).await.is_err());
    /// limiter.acquire(1, Priority::High, Duration::from_secs(2)).await.unwrap();
    /// # }
    /// ```
    pub async fn acquire(&self, cost: u32, priority: Priority, max_wait: Duration) -> Result<(), Throttled> {
        if self.rate.secs_per_token() <= 0.0 {
            return Ok(());
        }
        // The bucket never holds more than its rate: a larger cost takes it all.
        let cost = cost.min(self.rate.calls);
        let start = Instant::now();
        let deadline = start.checked_add(max_wait);
        let place = {
            let mut bucket = self.lock();
            bucket.refill(self.rate, start);
            let ahead = bucket.queue.keys().any(|p| p.0.0 >= priority);
            if !ahead && bucket.tokens >= f64::from(cost) {
                bucket.tokens -= f64::from(cost);
                return Ok(());
            }
            let place = (Reverse(priority), bucket.next);
            let wait = bucket.wait(self.rate, Some(place), cost);
            if wait > max_wait {
                return Err(Throttled { retry_after: wait });
            }
            bucket.next += 1;
            bucket.queue.insert(place, cost);
            place
        };
        let queued = Queued { limiter: self, place };
        loop {
            let turn = self.turn.notified();
            tokio::pin!(turn);
            // Registered before the check, so a turn passing in between is not missed.
            turn.as_mut().enable();
            let now = Instant::now();
            let until = {
                let mut bucket = self.lock();
                bucket.refill(self.rate, now);
                let first = bucket.queue.keys().next() == Some(&place);
                if first && bucket.tokens >= f64::from(cost) {
                    bucket.tokens -= f64::from(cost);
                    drop(bucket);
                    drop(queued);
                    return Ok(());
                }
                let wait = bucket.wait(self.rate, Some(place), cost);
                if deadline.is_some_and(|d| now >= d) {
                    drop(bucket);
                    drop(queued);
                    return Err(Throttled { retry_after: wait });
                }
                // The head sleeps until its tokens are there; the others until it moves.
                let own = if first { now.checked_add(wait) } else { None };
                match (own, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            match until {
                Some(until) => {
                    tokio::select! {
                        () = &mut turn => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                None => turn.await,
            }
        }
    }

    /// The rate.
    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Reserves `cost` tokens. `Ok(wait)`: they are the caller's once `wait` has passed (zero:
    /// now); the caller must wait that long before acting. `Err`: they would come later than
    /// `max_wait`, and nothing was taken.
    pub fn reserve(&self, cost: u32, max_wait: Duration) -> Result<Duration, Throttled> {
        let per_token = self.rate.secs_per_token();
        if per_token <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let mut bucket = self.lock();
        bucket.refill(self.rate, Instant::now());
        let left = bucket.tokens - f64::from(cost);
        if left >= 0.0 {
            bucket.tokens = left;
            return Ok(Duration::ZERO);
        }
        // A wait too long for a `Duration` is as good as forever.
        let wait = Duration::try_from_secs_f64(-left * per_token).unwrap_or(Duration::MAX);
        if wait > max_wait {
            return Err(Throttled { retry_after: wait });
        }
        bucket.tokens = left;
        Ok(wait)
    }

    /// No token for `period` from now (the service said it is throttled: a 429 with a
    /// `Retry-After`, or a header saying none is left until a reset). Tokens already due later
    /// than that stay as they are.
    pub fn exhaust_for(&self, period: Duration) {
        let per_token = self.rate.secs_per_token();
        if per_token <= 0.0 {
            return;
        }
        let mut bucket = self.lock();
        bucket.refill(self.rate, Instant::now());
        // Clamped so that a huge period cannot make the count meaningless.
        let owed = (period.as_secs_f64() / per_token).min(f64::from(u32::MAX));
        bucket.tokens = bucket.tokens.min(-owed);
        tracing::debug!(?period, "rate limiter exhausted until the service's reset");
    }
}

/// Limits calls by its [`RateLimiter`]; made by [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
    max_wait: Duration,
    priority: Priority,
}

/// Wraps a service in a [`RateLimitService`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    rate: RateLimit,
    shared: Option<RateLimiter>,
    max_wait: Duration,
    priority: Priority,
}

impl RateLimitLayer {
    /// Limits each service it makes to `rate`, with a bucket of its own (clones of that
    /// service share it). A call past the rate is refused at once.
    pub fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            shared: None,
            max_wait: Duration::ZERO,
            priority: Priority::Normal,
        }
    }

    /// Limits every service it makes by `limiter`, shared with whoever else holds a clone.
    pub fn shared(limiter: RateLimiter) -> Self {
        Self {
            rate: limiter.rate(),
            shared: Some(limiter),
            max_wait: Duration::ZERO,
            priority: Priority::Normal,
        }
    }

    /// A call waits up to `max_wait` for its permit, in the order calls came, before it is
    /// refused with [`Throttled`] (zero by default: refused at once).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The calls' [`Priority`] in the limiter's queue ([`Priority::Normal`] by default).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.shared.clone().unwrap_or_else(|| RateLimiter::new(self.rate)),
            max_wait: self.max_wait,
            priority: self.priority,
        }
    }
}

impl<S, Req> Service<Req> for RateLimitService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: From<Throttled> + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let (inner, limiter) = (self.inner.clone(), self.limiter.clone());
        let (priority, max_wait) = (self.priority, self.max_wait);
        async move {
            limiter.acquire(1, priority, max_wait).await?;
            inner.oneshot(req).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_rate() {
        let limiter = RateLimiter::new(RateLimit::new(2, Duration::from_secs(1)));
        assert!(limiter.reserve(1, Duration::ZERO).is_ok());
        assert!(limiter.reserve(1, Duration::ZERO).is_ok());
        let wait = limiter.reserve(1, Duration::ZERO).unwrap_err().retry_after;
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(wait).await;
        assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_reserve_in_order() {
        let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(1)));
        assert_eq!(limiter.reserve(1, Duration::ZERO), Ok(Duration::ZERO));
        let max = Duration::from_secs(10);
        assert_eq!(limiter.reserve(1, max), Ok(Duration::from_secs(1)));
        assert_eq!(limiter.reserve(1, max), Ok(Duration::from_secs(2)));
        // Refused reservations take nothing.
        assert!(limiter.reserve(1, Duration::from_millis(2500)).is_err());
        assert_eq!(limiter.reserve(1, max), Ok(Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_serves_a_higher_priority_first_then_in_arrival_order() {
        let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(1)));
        limiter.acquire(1, Priority::Normal, Duration::ZERO).await.unwrap();
        let start = Instant::now();
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("n1", Priority::Normal),
            ("n2", Priority::Normal),
            ("low", Priority::Low),
            ("high", Priority::High),
        ] {
            let (limiter, served) = (limiter.clone(), served.clone());
            tasks.push(tokio::spawn(async move {
                limiter.acquire(1, priority, Duration::from_secs(60)).await.unwrap();
                served.lock().unwrap().push((name, start.elapsed().as_secs()));
            }));
            // Each arrives after the one before.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*served.lock().unwrap(), [("high", 1), ("n1", 2), ("n2", 3), ("low", 4)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_past_its_wait_leaves_the_queue_and_the_next_moves_up() {
        let limiter = RateLimiter::new(RateLimit::new(1, Duration::from_secs(1)));
        limiter.acquire(1, Priority::Normal, Duration::ZERO).await.unwrap();
        // Known on arrival: 3 s of wait is more than 1 s.
        let ahead = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(1, Priority::Normal, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        let refused = limiter.acquire(1, Priority::Normal, Duration::from_millis(1500)).await;
        assert_eq!(refused.unwrap_err().retry_after, Duration::from_secs(2));
        // A cancelled waiter frees its place.
        let cancelled = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(1, Priority::Normal, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        ahead.await.unwrap().unwrap();
        let start = Instant::now();
        limiter
            .acquire(1, Priority::Normal, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "only the served caller was ahead"
        );
        // A cost above the rate takes the whole bucket, rather than waiting forever.
        limiter
            .acquire(1000, Priority::Normal, Duration::from_secs(10))
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn exhausting_holds_every_caller_until_the_reset() {
        let limiter = RateLimiter::new(RateLimit::new(100, Duration::from_secs(1)));
        limiter.exhaust_for(Duration::from_secs(2));
        let refused = limiter.reserve(1, Duration::ZERO).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(2) - Duration::from_millis(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limiter.reserve(1, Duration::from_millis(20)).is_ok());
        // Huge or zero periods neither panic nor wedge the limiter forever.
        limiter.exhaust_for(Duration::MAX);
        assert!(limiter.reserve(1, Duration::ZERO).is_err());
        let unlimited = RateLimiter::new(RateLimit::new(1, Duration::ZERO));
        unlimited.exhaust_for(Duration::MAX);
        assert_eq!(unlimited.reserve(u32::MAX, Duration::ZERO), Ok(Duration::ZERO));
    }
}
