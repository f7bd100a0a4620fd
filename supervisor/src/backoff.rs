//! Optional restart backoff, Akka-style: exponential with jitter.
//!
//! The n-th consecutive restart of a child waits
//! `min(max, min * 2^n) * (1 + U[0, random_factor])`; for 3 s and 30 s that is
//! 3, 6, 12, 24, 30, 30 s before jitter. The count goes back to zero once the
//! child has run for `reset_after` (by default halfway between `min` and `max`)
//! without failing.

use std::time::Duration;

/// An exponential restart backoff for one child. Off unless set with
/// [`ChildSpec::backoff`](crate::ChildSpec::backoff).
///
/// ```
/// use std::time::Duration;
/// use warden_supervisor::Backoff;
///
/// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5))
///     .random_factor(0.2);
/// assert_eq!(b.delay_without_jitter(0), Duration::from_millis(100));
/// assert_eq!(b.delay_without_jitter(3), Duration::from_millis(800));
/// assert_eq!(b.delay_without_jitter(20), Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    random_factor: f64,
    reset_after: Duration,
}

impl Backoff {
    /// Delays from `min` doubling up to `max`, with no jitter.
    pub fn exponential(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            random_factor: 0.0,
            reset_after: (min + max) / 2,
        }
    }

    /// Adds up to `factor` times the delay at random (clamped to `0.0..=1.0`),
    /// so that siblings do not restart in lockstep.
    pub fn random_factor(mut self, factor: f64) -> Self {
        self.random_factor = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How long a child must run without failing for the count to reset.
    pub fn reset_after(mut self, after: Duration) -> Self {
        self.reset_after = after;
        self
    }

    /// The delay before restart number `attempt` (0-based), before jitter.
    pub fn delay_without_jitter(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The delay before restart number `attempt`, with jitter.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let base = self.delay_without_jitter(attempt);
        if self.random_factor == 0.0 {
            return base;
        }
        base.mul_f64(1.0 + fastrand::f64() * self.random_factor)
    }

    /// See [`Backoff::reset_after`].
    pub(crate) fn reset_period(&self) -> Duration {
        self.reset_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff::exponential(Duration::from_secs(3), Duration::from_secs(30));
        let got: Vec<u64> = (0..6).map(|n| b.delay_without_jitter(n).as_secs()).collect();
        assert_eq!(got, [3, 6, 12, 24, 30, 30]);
        assert_eq!(b.delay_without_jitter(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).random_factor(0.5);
        for _ in 0..1000 {
            let d = b.delay(0);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(150));
        }
    }
}
