//! [`RetryPolicy`]: which failures are retried, and how long to wait.
//!
//! The rules follow the providers' own clients: transient errors ([`ModelError::is_transient`]:
//! 408, 409, 429, 5xx, 529, connection errors, timeouts, interrupted streams) are retried;
//! `x-should-retry` overrides the status; a quota or spend-limit error is never retried. The
//! wait is the provider's `retry-after-ms` / `retry-after` when it sent one (up to
//! [`max_retry_after`](RetryPolicy::max_retry_after); a longer wait is not retried at all, so
//! the caller or a fallback can act), else exponential backoff with jitter, bounded by
//! [`max_delay`](RetryPolicy::max_delay).

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
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

    /// The backoff before retry number `retry` (0-based): `base_delay * 2^retry`, capped at
    /// `max_delay`, minus up to 25 % jitter so that many clients do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(1.0 - 0.25 * fastrand::f64())
    }

    /// How long to wait before retry number `retry` (0-based) after `error`, or `None` if it
    /// must not be retried: the error is permanent, the retries are used up, or the provider
    /// asked for a longer wait than `max_retry_after`.
    pub fn delay_for(&self, error: &ModelError, retry: u32) -> Option<Duration> {
        if retry >= self.max_retries || !error.is_transient() {
            return None;
        }
        match error.retry_after() {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(retry)),
        }
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
            retry_after: after,
            should_retry: None,
        }
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_for(&ModelError::QuotaExceeded, 0), None);
        let auth = ModelError::Authentication {
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
        let p = RetryPolicy::default().with_max_retry_after(Duration::from_secs(5));
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
    fn serde_uses_milliseconds() {
        let p: RetryPolicy = serde_json::from_str(r#"{"max_retries": 5, "base_delay_ms": 10}"#).unwrap();
        assert_eq!(p.max_retries, 5);
        assert_eq!(p.base_delay, Duration::from_millis(10));
        assert_eq!(p.max_delay, RetryPolicy::default().max_delay);
    }
}
