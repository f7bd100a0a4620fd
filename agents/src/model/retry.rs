//! [`RetryPolicy`]: which failures are retried, and how long to wait.
//!
//! The rules follow the providers' own clients: transient errors ([`ModelError::is_transient`]:
//! 408, 409, 429, 5xx, 529, connection errors, timeouts, interrupted streams) are retried;
//! `x-should-retry` overrides the status; a quota or spend-limit error is never retried. The
//! wait is the provider's `retry-after-ms` / `retry-after` when it sent one (up to
//! [`max_retry_after`](RetryPolicy::max_retry_after); a longer wait is not retried at all, so
//! the caller or a fallback can act) plus a little jitter above it, else exponential backoff
//! with jitter, bounded by [`max_delay`](RetryPolicy::max_delay). A whole call, retries and
//! fallback included, ends at [`total_timeout`](RetryPolicy::total_timeout).
//!
//! A [`RetryBudget`] bounds retries across calls: when most recent attempts failed, calls stop
//! retrying (and a fallback model does not multiply the attempts) until successes refill it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ModelError;

/// When and how often a [`Model`](super::Model) retries a failed call.
///
/// ```
/// use std::time::Duration;
/// use warden_agents::model::RetryPolicy;
///
/// let policy = RetryPolicy::default().with_max_retries(4).with_base_delay(Duration::from_millis(200));
/// let first = policy.backoff(0);
/// assert!(first <= Duration::from_millis(200) && first >= Duration::from_millis(150));
/// assert!(policy.backoff(30) <= policy.max_delay);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all). Default 2.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it. Default 500 ms.
    #[serde(with = "millis", rename = "base_delay_ms")]
    pub base_delay: Duration,
    /// The longest backoff. Default 8 s.
    #[serde(with = "millis", rename = "max_delay_ms")]
    pub max_delay: Duration,
    /// The longest provider-requested wait that is honoured; a longer `retry-after` ends the
    /// retries. Default 60 s.
    #[serde(with = "millis", rename = "max_retry_after_ms")]
    pub max_retry_after: Duration,
    /// Jitter added above a provider-requested wait, as a fraction of it: the wait is
    /// `retry_after * (1 + retry_after_jitter * r)` for a random `r` in `[0, 1)`, so clients told
    /// the same `retry-after` do not retry together, and none retries before it. Default 0.2;
    /// values outside `[0, 1]` are clamped.
    pub retry_after_jitter: f64,
    /// The longest a whole call may take, across its attempts, the waits between them and the
    /// fallback model: then it fails with [`ModelError::DeadlineExceeded`]. A retry whose wait
    /// would end past it is not made. Default 10 minutes.
    #[serde(with = "millis", rename = "total_timeout_ms")]
    pub total_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            retry_after_jitter: 0.2,
            total_timeout: Self::DEFAULT_TOTAL_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// The default [`total_timeout`](Self::total_timeout): 10 minutes.
    pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);

    /// No retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The same policy with this many retries.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The same policy with this first backoff.
    pub fn with_base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }

    /// The same policy with this longest backoff.
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The same policy with this longest honoured `retry-after`.
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The same policy with this jitter above a provider-requested wait (see
    /// [`retry_after_jitter`](Self::retry_after_jitter)).
    pub fn with_retry_after_jitter(mut self, fraction: f64) -> Self {
        self.retry_after_jitter = fraction;
        self
    }

    /// The same policy with this deadline for a whole call (see [`total_timeout`](Self::total_timeout)).
    pub fn with_total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// The backoff before retry number `retry` (0-based): `base_delay * 2^retry`, capped at
    /// `max_delay`, minus up to 25 % jitter so that many clients do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(1.0 - 0.25 * fastrand::f64())
    }

    /// The wait before retrying when the provider asked for `floor`: at least `floor`, at most
    /// `floor * (1 + retry_after_jitter)`, saturating rather than overflowing.
    pub fn retry_after_wait(&self, floor: Duration) -> Duration {
        let fraction = if self.retry_after_jitter.is_nan() {
            0.0
        } else {
            self.retry_after_jitter.clamp(0.0, 1.0)
        };
        let jitter =
            Duration::try_from_secs_f64(floor.as_secs_f64() * fraction * fastrand::f64()).unwrap_or(Duration::ZERO);
        floor.saturating_add(jitter)
    }

    /// How long to wait before retry number `retry` (0-based) after `error`, or `None` if it
    /// must not be retried: the error is permanent, the retries are used up, or the provider
    /// asked for a longer wait than `max_retry_after`. A provider-requested wait gets jitter
    /// above it ([`retry_after_wait`](Self::retry_after_wait)), never below.
    pub fn delay_for(&self, error: &ModelError, retry: u32) -> Option<Duration> {
        if retry >= self.max_retries || !error.is_transient() {
            return None;
        }
        match error.retry_after() {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(self.retry_after_wait(wait)),
            None => Some(self.backoff(retry)),
        }
    }
}

/// Retries allowed across calls, shared by every model (and fallback) given the same budget:
/// the retry throttling of gRPC. The budget holds up to `max_tokens` tokens and starts full;
/// each failed attempt that could be retried takes one token, each success gives back
/// `token_ratio`; a retry is made only while more than half of `max_tokens` are left. So when a
/// provider is down, calls soon stop retrying (each makes one attempt, and one on the fallback)
/// instead of multiplying the load, and retries come back as calls succeed again.
///
/// Cloning is cheap and clones share the tokens. A [`Model`](super::Model) has none unless
/// given one with [`with_retry_budget`](super::Model::with_retry_budget).
///
/// ```
/// use warden_agents::model::RetryBudget;
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

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_limited(after: Option<Duration>) -> ModelError {
        ModelError::RateLimited {
            message: String::new(),
            retry_after: after,
            should_retry: None,
        }
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_for(&ModelError::QuotaExceeded, 0), None);
        let auth = ModelError::Authentication {
            message: String::new(),
            status: 401,
            should_retry: None,
        };
        assert_eq!(p.delay_for(&auth, 0), None);
        let bad = ModelError::BadRequest {
            status: 400,
            message: String::new(),
            should_retry: None,
        };
        assert_eq!(p.delay_for(&bad, 0), None);
    }

    #[test]
    fn retries_are_bounded() {
        let p = RetryPolicy::default().with_max_retries(2);
        assert!(p.delay_for(&ModelError::Timeout, 0).is_some());
        assert!(p.delay_for(&ModelError::Timeout, 1).is_some());
        assert_eq!(p.delay_for(&ModelError::Timeout, 2), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy::default()
            .with_max_retry_after(Duration::from_secs(5))
            .with_retry_after_jitter(0.0);
        assert_eq!(
            p.delay_for(&rate_limited(Some(Duration::from_secs(3))), 0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.delay_for(&rate_limited(Some(Duration::from_secs(6))), 0), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy::default()
            .with_base_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1));
        for retry in 0..40 {
            let d = p.backoff(retry);
            let full = Duration::from_millis(100)
                .saturating_mul(1 << retry.min(20))
                .min(Duration::from_secs(1));
            assert!(d <= full && d >= full.mul_f64(0.75), "retry {retry}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn retry_after_gets_jitter_above_the_floor_never_below() {
        let p = RetryPolicy::default().with_max_retries(100);
        let floor = Duration::from_secs(2);
        let waits: Vec<Duration> = (0..50)
            .map(|_| p.delay_for(&rate_limited(Some(floor)), 0).unwrap())
            .collect();
        for wait in &waits {
            assert!(*wait >= floor && *wait <= floor.mul_f64(1.2), "{wait:?}");
        }
        assert!(waits.iter().any(|w| *w != waits[0]), "the waits differ: {waits:?}");
        let none = p.with_retry_after_jitter(0.0);
        assert_eq!(none.delay_for(&rate_limited(Some(floor)), 0), Some(floor));
        let huge = p.with_max_retry_after(Duration::MAX).with_retry_after_jitter(f64::NAN);
        assert_eq!(huge.retry_after_wait(Duration::MAX), Duration::MAX);
        assert_eq!(
            p.with_max_retry_after(Duration::MAX).retry_after_wait(Duration::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn a_huge_retry_after_ends_the_retries() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_for(&rate_limited(Some(Duration::MAX)), 0), None);
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
    fn serde_uses_milliseconds() {
        let p: RetryPolicy = serde_json::from_str(r#"{"max_retries": 5, "base_delay_ms": 10}"#).unwrap();
        assert_eq!(p.max_retries, 5);
        assert_eq!(p.base_delay, Duration::from_millis(10));
        assert_eq!(p.max_delay, RetryPolicy::default().max_delay);
    }
}
