//! Retries: one [`RetryPolicy`] for tools, models and your own services, a [`RetryBudget`]
//! across calls, and the [`RetryLayer`] that applies them.
//!
//! Ours, not `tower::retry`: tower's `Policy` leaves backoff, jitter and the deadline to the
//! policy anyway, and a loop over [`Transient`] says the same in fewer lines and keeps one
//! place that decides.
//!
//! A failed attempt is retried when all of these hold:
//!
//! * its error [`is_transient`](Transient::is_transient) (a failure that may pass, a timeout,
//!   a rate limit, a 5xx; never a bad request or a permission denial);
//! * trying again cannot repeat a side effect: the error says so
//!   ([`retry_is_safe`](Transient::retry_is_safe): the service refused the request, or vouches
//!   for it), or the request is idempotent ([`RetryLayer::idempotent_if`]; in a tool stack,
//!   what the tool says of the call; every model request). A timed-out request may have
//!   acted, so it is retried only when idempotent;
//! * fewer than [`RetryPolicy::max_attempts`] attempts were made;
//! * the wait is at most [`RetryPolicy::max_retry_after`] (a service asking for a longer wait
//!   gets its error back at once, so that the caller or a fallback can act);
//! * the [`RetryBudget`], if any, allows a retry;
//! * the wait ends within [`RetryPolicy::max_elapsed`] of the first attempt's start (checked
//!   arithmetic: no `Retry-After`, however large, can overflow it).
//!
//! The wait before retry *n* is the policy's [`Backoff`] delay *n − 1* (exponential, with full
//! jitter by default: a uniform draw in `[0, wait]`, as AWS's "Exponential Backoff And
//! Jitter" recommends, so callers that failed together do not retry together). When the
//! error carries a `retry_after` (a 429's `Retry-After`), the service knows best: the wait is
//! that instead, plus up to [`RetryPolicy::retry_after_jitter`] of it, never less (as the
//! providers' own clients do). The last error is returned as is.
//!
//! # Cancellation
//!
//! Dropping the future drops the attempt in flight, or the wait.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::backoff::{Backoff, Jitter};
use crate::error::Transient;

/// How to retry: attempts, backoff, jitter, the waits a service may ask for, the total time.
///
/// ```
/// use std::time::Duration;
/// use warden_resilience::RetryPolicy;
///
/// let policy = RetryPolicy::new(4)
///     .backoff(Duration::from_millis(100), Duration::from_secs(2))
///     .max_elapsed(Duration::from_secs(10))
///     .jitter(false);
/// assert_eq!(policy.backoff_before(2), Duration::from_millis(100));
/// assert_eq!(policy.backoff_before(3), Duration::from_millis(200));
/// assert_eq!(RetryPolicy::none().max_attempts(), 1);
/// ```
///
/// In a configuration file (a model's `retry` table; every field optional, durations in
/// milliseconds, `jitter` one of `"full"`, `"none"` or `{ add = 0.2 }`):
///
/// ```toml
/// max_attempts = 4
/// initial_backoff_ms = 200
/// max_backoff_ms = 8000
/// max_elapsed_ms = 120000
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PolicyRepr", into = "PolicyRepr")]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    max_elapsed: Duration,
    max_retry_after: Duration,
    retry_after_jitter: f64,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms doubling up to 8 s with full jitter, 120 s in all, a `retry_after` of
    /// at most 60 s honoured with up to 20 % added.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(200), Duration::from_secs(8)).full_jitter(),
            max_elapsed: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
            retry_after_jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// At most `max_attempts` attempts in all (1 means no retry; 0 counts as 1), with the
    /// default backoff and limits.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::new(1)
    }

    /// Exponential waits from `initial` doubling up to `max`, keeping the jitter.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff::exponential(initial, max).multiplier(2.0);
        self.backoff = match self.backoff_jitter() {
            Jitter::Full => self.backoff.full_jitter(),
            Jitter::Add(f) => self.backoff.random_factor(f),
            _ => self.backoff,
        };
        self
    }

    fn backoff_jitter(&self) -> Jitter {
        self.backoff.jitter()
    }

    /// Waits by `backoff` (any [`Backoff`], its jitter included).
    pub fn backoff_by(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How much each wait grows (2.0 by default; values below 1 count as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.backoff = self.backoff.multiplier(multiplier);
        self
    }

    /// Full jitter (the default) or none (for tests and benches).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.backoff = if jitter {
            self.backoff.full_jitter()
        } else {
            self.backoff.no_jitter()
        };
        self
    }

    /// No retry's wait ends later than this after the first attempt started (120 s by
    /// default).
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// The longest wait a service may ask for (a 429's `Retry-After`, 60 s by default): an
    /// error asking for more is returned at once, not waited out.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Jitter added above a wait the service asked for, as a fraction of it (0.2 by default,
    /// clamped to `0.0..=1.0`): the wait is `retry_after * (1 + fraction * r)` for a random `r`
    /// in `[0, 1)`, so clients told the same `Retry-After` do not come back together, and none
    /// comes back early.
    pub fn retry_after_jitter(mut self, fraction: f64) -> Self {
        self.retry_after_jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// The most attempts.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff between attempts.
    pub fn backoff_policy(&self) -> Backoff {
        self.backoff
    }

    /// See [`max_elapsed`](Self::max_elapsed).
    pub fn elapsed_limit(&self) -> Duration {
        self.max_elapsed
    }

    /// The wait before attempt `attempt` (2 is the first retry), before jitter.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        self.backoff.delay_without_jitter(attempt.saturating_sub(2))
    }

    /// The wait before retrying after attempt number `attempt` (1-based) failed with `error`,
    /// or `None` when the policy does not retry it: the error is not transient, the attempts
    /// are used up, or the service asked for a longer wait than
    /// [`max_retry_after`](Self::max_retry_after). Idempotency, the budget and the total time
    /// are the [`RetryLayer`]'s to check.
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden_resilience::{RetryPolicy, Transient};
    ///
    /// struct Busy;
    /// impl Transient for Busy {
    ///     fn is_transient(&self) -> bool { true }
    ///     fn retry_after(&self) -> Option<Duration> { Some(Duration::from_secs(3)) }
    /// }
    /// let policy = RetryPolicy::new(2).retry_after_jitter(0.0);
    /// assert_eq!(policy.wait_after(1, &Busy), Some(Duration::from_secs(3)));
    /// assert_eq!(policy.wait_after(2, &Busy), None); // 2 attempts made
    /// ```
    pub fn wait_after<E: Transient + ?Sized>(&self, attempt: u32, error: &E) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.is_transient() {
            return None;
        }
        match error.retry_after() {
            Some(after) if after > self.max_retry_after => None,
            Some(after) => Some(self.retry_after_wait(after)),
            None => Some(self.backoff.delay(attempt.saturating_sub(1))),
        }
    }

    /// At least `floor`, at most `floor * (1 + retry_after_jitter)`, saturating.
    fn retry_after_wait(&self, floor: Duration) -> Duration {
        let jitter = Duration::try_from_secs_f64(floor.as_secs_f64() * self.retry_after_jitter * fastrand::f64())
            .unwrap_or(Duration::ZERO);
        floor.saturating_add(jitter)
    }
}

/// The serialized form of a [`RetryPolicy`].
#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PolicyRepr {
    max_attempts: u32,
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
    multiplier: f64,
    jitter: JitterRepr,
    max_elapsed_ms: u64,
    max_retry_after_ms: u64,
    retry_after_jitter: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JitterRepr {
    Full,
    None,
    Add(f64),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Default for PolicyRepr {
    fn default() -> Self {
        RetryPolicy::default().into()
    }
}

impl From<RetryPolicy> for PolicyRepr {
    fn from(p: RetryPolicy) -> Self {
        Self {
            max_attempts: p.max_attempts,
            initial_backoff_ms: millis(p.backoff.min()),
            max_backoff_ms: millis(p.backoff.max()),
            multiplier: p.backoff.growth(),
            jitter: match p.backoff.jitter() {
                Jitter::Full => JitterRepr::Full,
                Jitter::Add(f) => JitterRepr::Add(f),
                _ => JitterRepr::None,
            },
            max_elapsed_ms: millis(p.max_elapsed),
            max_retry_after_ms: millis(p.max_retry_after),
            retry_after_jitter: p.retry_after_jitter,
        }
    }
}

impl From<PolicyRepr> for RetryPolicy {
    fn from(r: PolicyRepr) -> Self {
        let backoff = Backoff::exponential(
            Duration::from_millis(r.initial_backoff_ms),
            Duration::from_millis(r.max_backoff_ms),
        )
        .multiplier(r.multiplier);
        let backoff = match r.jitter {
            JitterRepr::Full => backoff.full_jitter(),
            JitterRepr::Add(f) => backoff.random_factor(f),
            JitterRepr::None => backoff,
        };
        RetryPolicy::new(r.max_attempts)
            .backoff_by(backoff)
            .max_elapsed(Duration::from_millis(r.max_elapsed_ms))
            .max_retry_after(Duration::from_millis(r.max_retry_after_ms))
            .retry_after_jitter(r.retry_after_jitter)
    }
}

/// Retries allowed across calls, shared by every layer (and model, and fallback) given the
/// same budget: the retry throttling of gRPC. The budget holds up to `max_tokens` tokens and
/// starts full; each failed attempt that could be retried takes one token, each success gives
/// back `token_ratio`; a retry is made only while more than half of `max_tokens` are left. So
/// when a service is down, calls soon stop retrying (each makes one attempt) instead of
/// multiplying the load, and retries come back as calls succeed again.
///
/// Cloning is cheap and clones share the tokens.
///
/// ```
/// use warden_resilience::RetryBudget;
///
/// let budget = RetryBudget::new(4, 0.5);
/// assert!(budget.allows_retry());
/// budget.record_failure(); // 3 tokens left: more than 2
/// assert!(budget.allows_retry());
/// budget.record_failure(); // 2 left: not more than half
/// assert!(!budget.allows_retry());
/// budget.record_success(); // 2.5
/// assert!(budget.allows_retry());
/// ```
#[derive(Clone, Debug)]
pub struct RetryBudget {
    inner: Arc<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    /// Thousandths of a token, so that fractional ratios add up exactly.
    max_milli: u64,
    ratio_milli: u64,
    milli: AtomicU64,
}

impl Default for RetryBudget {
    /// 10 tokens, 0.1 back per success (gRPC's usual setting).
    fn default() -> Self {
        Self::new(10, 0.1)
    }
}

impl RetryBudget {
    /// A full budget of `max_tokens` tokens, `token_ratio` of a token back per success
    /// (rounded to thousandths; negative or `NaN` is 0).
    pub fn new(max_tokens: u32, token_ratio: f64) -> Self {
        let max_milli = u64::from(max_tokens) * 1000;
        let ratio_milli = if token_ratio.is_nan() {
            0
        } else {
            (token_ratio.max(0.0) * 1000.0).round().min(max_milli as f64) as u64
        };
        Self {
            inner: Arc::new(BudgetState {
                max_milli,
                ratio_milli,
                milli: AtomicU64::new(max_milli),
            }),
        }
    }

    /// Whether a retry may be made now: more than half of the tokens are left.
    pub fn allows_retry(&self) -> bool {
        self.inner.milli.load(Ordering::Acquire) * 2 > self.inner.max_milli
    }

    /// Takes a token for a failed attempt that could have been retried.
    pub fn record_failure(&self) {
        let _ = self
            .inner
            .milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| Some(m.saturating_sub(1000)));
    }

    /// Gives back `token_ratio` of a token for a success.
    pub fn record_success(&self) {
        let (max, ratio) = (self.inner.max_milli, self.inner.ratio_milli);
        let _ = self.inner.milli.fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
            Some(m.saturating_add(ratio).min(max))
        });
    }

    /// The tokens left.
    pub fn tokens(&self) -> f64 {
        self.inner.milli.load(Ordering::Acquire) as f64 / 1000.0
    }
}

/// Whether a request is idempotent (making it twice does what making it once does); see
/// [`RetryLayer::idempotent_if`].
type Idempotent<Req> = Arc<dyn Fn(&Req) -> bool + Send + Sync>;

/// Retries transient errors by its [`RetryPolicy`]; made by [`RetryLayer`].
pub struct RetryService<S, Req> {
    inner: S,
    policy: RetryPolicy,
    idempotent: Idempotent<Req>,
    budget: Option<RetryBudget>,
}

impl<S: Clone, Req> Clone for RetryService<S, Req> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            policy: self.policy,
            idempotent: self.idempotent.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<S: fmt::Debug, Req> fmt::Debug for RetryService<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryService")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// Wraps a service in a [`RetryService`], for requests of type `Req`.
pub struct RetryLayer<Req> {
    policy: RetryPolicy,
    idempotent: Idempotent<Req>,
    budget: Option<RetryBudget>,
}

impl<Req> Clone for RetryLayer<Req> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy,
            idempotent: self.idempotent.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<Req> fmt::Debug for RetryLayer<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<Req> RetryLayer<Req> {
    /// Retries by `policy`, taking no request for idempotent: an error that is not
    /// [`retry_is_safe`](Transient::retry_is_safe) (a timeout) is not retried (see
    /// [`idempotent_if`](Self::idempotent_if)).
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            idempotent: Arc::new(|_| false),
            budget: None,
        }
    }

    /// Which requests are idempotent, so that any transient error of theirs (a timeout
    /// included) may be retried. A tool stack asks the tool; a model says every request is.
    pub fn idempotent_if(mut self, idempotent: impl Fn(&Req) -> bool + Send + Sync + 'static) -> Self {
        self.idempotent = Arc::new(idempotent);
        self
    }

    /// Retries only while `budget` allows (see [`RetryBudget`]), and spends it.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, Req> Layer<S> for RetryLayer<Req> {
    type Service = RetryService<S, Req>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            policy: self.policy,
            idempotent: self.idempotent.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<S, Req> Service<Req> for RetryService<S, Req>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Transient + fmt::Display + Send + 'static,
    Req: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        let policy = self.policy;
        let idempotent = self.idempotent.clone();
        let budget = self.budget.clone();
        async move {
            let started = Instant::now();
            let mut attempt = 1;
            loop {
                let error = match inner.clone().oneshot(req.clone()).await {
                    Ok(response) => {
                        if let Some(budget) = &budget {
                            budget.record_success();
                        }
                        return Ok(response);
                    }
                    Err(error) => error,
                };
                if let Some(budget) = budget.as_ref().filter(|_| error.is_transient()) {
                    budget.record_failure();
                }
                let Some(wait) = policy.wait_after(attempt, &error) else {
                    return Err(error);
                };
                if !(error.retry_is_safe() || idempotent(&req)) {
                    return Err(error);
                }
                if budget.as_ref().is_some_and(|b| !b.allows_retry()) {
                    tracing::debug!(error = %error, "retry budget exhausted, not retrying");
                    return Err(error);
                }
                let resumes = started.elapsed().checked_add(wait);
                if resumes.is_none_or(|at| at > policy.max_elapsed) {
                    tracing::debug!(error = %error, ?wait, "no time left for a retry");
                    return Err(error);
                }
                attempt += 1;
                tracing::debug!(attempt, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), error = %error, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E {
        transient: bool,
        after: Option<Duration>,
    }

    impl Transient for E {
        fn is_transient(&self) -> bool {
            self.transient
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    const FAILED: E = E {
        transient: true,
        after: None,
    };

    #[test]
    fn permanent_errors_and_used_up_attempts_are_not_retried() {
        let p = RetryPolicy::new(3);
        let permanent = E {
            transient: false,
            after: None,
        };
        assert_eq!(p.wait_after(1, &permanent), None);
        assert!(p.wait_after(1, &FAILED).is_some());
        assert!(p.wait_after(2, &FAILED).is_some());
        assert_eq!(p.wait_after(3, &FAILED), None);
        assert_eq!(RetryPolicy::none().wait_after(1, &FAILED), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap_with_jitter_above() {
        let p = RetryPolicy::new(10).max_retry_after(Duration::from_secs(5));
        let asks = |secs| E {
            transient: true,
            after: Some(Duration::from_secs(secs)),
        };
        for _ in 0..50 {
            let wait = p.wait_after(1, &asks(3)).unwrap();
            assert!(
                wait >= Duration::from_secs(3) && wait <= Duration::from_millis(3600),
                "{wait:?}"
            );
        }
        assert_eq!(p.wait_after(1, &asks(6)), None);
        let exact = p.retry_after_jitter(0.0);
        assert_eq!(exact.wait_after(1, &asks(3)), Some(Duration::from_secs(3)));
        let huge = E {
            transient: true,
            after: Some(Duration::MAX),
        };
        assert_eq!(RetryPolicy::default().wait_after(1, &huge), None);
        let patient = RetryPolicy::new(2)
            .max_retry_after(Duration::MAX)
            .retry_after_jitter(f64::NAN);
        assert_eq!(patient.wait_after(1, &huge), Some(Duration::MAX));
    }

    #[test]
    fn backoff_grows_with_full_jitter_and_is_capped() {
        let p = RetryPolicy::new(100).backoff(Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..40 {
            let wait = p.wait_after(attempt, &FAILED).unwrap();
            assert!(wait <= p.backoff_before(attempt + 1), "{attempt}: {wait:?}");
        }
        assert_eq!(p.backoff_before(30), Duration::from_secs(1));
        let exact = p.jitter(false);
        assert_eq!(exact.wait_after(3, &FAILED), Some(Duration::from_millis(400)));
    }

    #[test]
    fn the_budget_stops_retries_after_failures_and_refills_on_success() {
        let budget = RetryBudget::new(10, 0.1);
        for _ in 0..5 {
            assert!(budget.allows_retry());
            budget.record_failure();
        }
        assert!(!budget.allows_retry(), "{}", budget.tokens());
        budget.record_success();
        assert!(budget.allows_retry());
        for _ in 0..100 {
            budget.record_failure();
        }
        assert_eq!(budget.tokens(), 0.0);
        for _ in 0..1000 {
            budget.record_success();
        }
        assert_eq!(budget.tokens(), 10.0);
        assert!(RetryBudget::new(0, 1.0).tokens() == 0.0 && !RetryBudget::new(0, 1.0).allows_retry());
    }

    #[test]
    fn serde_uses_milliseconds_and_round_trips() {
        let p: RetryPolicy =
            serde_json::from_str(r#"{"max_attempts": 5, "initial_backoff_ms": 10, "jitter": "none"}"#).unwrap();
        assert_eq!(p.max_attempts(), 5);
        assert_eq!(p.backoff_before(2), Duration::from_millis(10));
        assert_eq!(p.backoff_policy().max(), RetryPolicy::default().backoff_policy().max());
        assert_eq!(p.backoff_policy().jitter(), Jitter::None);
        for policy in [
            RetryPolicy::default(),
            p,
            RetryPolicy::new(7)
                .multiplier(3.0)
                .backoff_by(Backoff::exponential(Duration::from_millis(5), Duration::from_secs(1)).random_factor(0.3)),
        ] {
            let back: RetryPolicy = serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
            assert_eq!(back, policy);
        }
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"max_retries": 5}"#).is_err());
    }
}
