//! Optional restart backoff, Akka-style: exponential with jitter.
//!
//! The n-th consecutive restart of a child waits
//! `min(max, min * 2^n) * (1 + U[0, random_factor])`; for 3 s and 30 s that is
//! 3, 6, 12, 24, 30, 30 s before jitter. The count goes back to zero once the
//! child has run for `reset_after` (by default halfway between `min` and `max`)
//! without failing.
//!
//! Every configuration is accepted and none can panic: durations near
//! [`Duration::MAX`] saturate instead of overflowing.

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
    /// Delays from `min` doubling up to `max`, with no jitter. A `max` below
    /// `min` is taken as `min`.
    pub fn exponential(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            random_factor: 0.0,
            // Halfway between, written so that it cannot overflow: `max >= min`.
            reset_after: min + (max - min) / 2,
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

    /// The delay before restart number `attempt`, with jitter, saturating at
    /// [`Duration::MAX`].
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.jittered(self.delay_without_jitter(attempt), fastrand::f64())
    }

    /// `base` stretched by `unit` (in `0.0..1.0`) of the random factor.
    fn jittered(&self, base: Duration, unit: f64) -> Duration {
        if self.random_factor == 0.0 {
            return base;
        }
        // `Duration::mul_f64` panics when the product does not fit.
        let jitter =
            Duration::try_from_secs_f64(base.as_secs_f64() * unit * self.random_factor).unwrap_or(Duration::MAX);
        base.saturating_add(jitter)
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

    /// Durations at the edges, `Duration::MAX` included: no configuration panics.
    #[test]
    fn no_configuration_panics() {
        let edges = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1),
            Duration::from_secs(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(u64::MAX),
            Duration::MAX - Duration::from_nanos(1),
            Duration::MAX,
        ];
        let factors = [0.0, 1e-9, 0.5, 1.0, 2.0, -1.0, f64::NAN, f64::INFINITY, f64::MAX];
        let attempts = [0, 1, 2, 31, 32, 63, 64, u32::MAX - 1, u32::MAX];
        for &min in &edges {
            for &max in &edges {
                let plain = Backoff::exponential(min, max);
                assert!(plain.reset_period() >= min, "{min:?} {max:?}");
                for &factor in &factors {
                    for &reset in &edges[..3] {
                        let b = plain.random_factor(factor).reset_after(reset);
                        for &attempt in &attempts {
                            let base = b.delay_without_jitter(attempt);
                            assert!(base >= min, "{min:?} {max:?} {attempt}");
                            for unit in [0.0, 0.5, 1.0 - f64::EPSILON] {
                                assert!(b.jittered(base, unit) >= base);
                            }
                            b.delay(attempt);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn jitter_saturates_at_the_longest_duration() {
        let b = Backoff::exponential(Duration::MAX, Duration::MAX).random_factor(1.0);
        assert_eq!(b.jittered(Duration::MAX, 0.99), Duration::MAX);
        assert_eq!(b.reset_period(), Duration::MAX);
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
