//! [`Backoff`]: the one exponential backoff of Warden, for restarts and for retries.
//!
//! Wait number *n* (0-based) is `min(max, min * multiplier^n)` before jitter; for 3 s and
//! 30 s doubling that is 3, 6, 12, 24, 30, 30 s. Jitter spreads callers that failed together
//! so that they do not come back together, in one of two ways ([`Jitter`]): Akka's, which adds
//! up to a fraction of the wait (a restart never comes early), or AWS's "full jitter", which
//! draws the wait uniformly in `[0, wait]` (retries of many clients spread the most).
//!
//! A supervisor delays a child's restarts by one (`warden_supervisor::ChildSpec::backoff`,
//! which also uses [`Backoff::reset_after`]); a [`RetryPolicy`](crate::RetryPolicy) waits by
//! one between attempts.
//!
//! Every configuration is accepted and none can panic: durations near
//! [`Duration::MAX`] saturate instead of overflowing.

use std::time::Duration;

/// An exponential backoff with jitter: wait *n* is `min(max, min * multiplier^n)`, spread by
/// its [`Jitter`].
///
/// ```
/// use std::time::Duration;
/// use warden_resilience::Backoff;
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
    multiplier: f64,
    jitter: Jitter,
    reset_after: Duration,
}

/// How a [`Backoff`] spreads its waits.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Jitter {
    /// None: the waits are exact (for tests and benchmarks).
    None,
    /// Adds up to this fraction of the wait (in `0.0..=1.0`), Akka's `randomFactor`: never
    /// shorter than the wait, so a restart never comes early.
    Add(f64),
    /// Draws the wait uniformly in `[0, wait]`, AWS's "full jitter": the most spread, for
    /// retries of many clients that failed together.
    Full,
}
impl Backoff {
    /// Delays from `min` doubling up to `max`, with no jitter. A `max` below
    /// `min` is taken as `min`.
    pub fn exponential(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            multiplier: 2.0,
            jitter: Jitter::None,
            // Halfway between, written so that it cannot overflow: `max >= min`.
            reset_after: min + (max - min) / 2,
        }
    }

    /// Adds up to `factor` times the delay at random (clamped to `0.0..=1.0`),
    /// so that siblings do not restart in lockstep.
    pub fn random_factor(mut self, factor: f64) -> Self {
        self.jitter = if factor.is_finite() && factor > 0.0 {
            Jitter::Add(factor.min(1.0))
        } else {
            Jitter::None
        };
        self
    }

    /// Draws each wait uniformly in `[0, wait]` ([`Jitter::Full`]).
    pub fn full_jitter(mut self) -> Self {
        self.jitter = Jitter::Full;
        self
    }

    /// Exact waits ([`Jitter::None`]).
    pub fn no_jitter(mut self) -> Self {
        self.jitter = Jitter::None;
        self
    }

    /// How much each wait grows over the previous one (2.0 by default; below 1, or not a
    /// number, counts as 1: a constant wait).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The first wait.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest wait, before jitter.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// How much each wait grows over the previous one.
    pub fn growth(&self) -> f64 {
        self.multiplier
    }

    /// The jitter.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// How long a supervised child must run without failing for its restart count to go
    /// back to zero (by default halfway between `min` and `max`). Retries do not use it.
    pub fn reset_after(mut self, after: Duration) -> Self {
        self.reset_after = after;
        self
    }

    /// The wait number `attempt` (0-based), before jitter.
    pub fn delay_without_jitter(&self, attempt: u32) -> Duration {
        if self.multiplier == 2.0 {
            let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
            return self.min.saturating_mul(factor).min(self.max);
        }
        let secs = self.min.as_secs_f64() * self.multiplier.powi(attempt.min(1023) as i32);
        Duration::try_from_secs_f64(secs).map_or(self.max, |d| d.min(self.max))
    }

    /// The wait number `attempt` (0-based), with jitter, saturating at [`Duration::MAX`].
    pub fn delay(&self, attempt: u32) -> Duration {
        self.jittered(self.delay_without_jitter(attempt), fastrand::f64())
    }

    /// `base` with the jitter drawn as `unit` (in `0.0..1.0`).
    fn jittered(&self, base: Duration, unit: f64) -> Duration {
        match self.jitter {
            Jitter::None => base,
            // `Duration::mul_f64` panics when the product does not fit.
            Jitter::Add(factor) => base.saturating_add(
                Duration::try_from_secs_f64(base.as_secs_f64() * unit * factor).unwrap_or(Duration::MAX),
            ),
            Jitter::Full => Duration::try_from_secs_f64(base.as_secs_f64() * unit).map_or(base, |d| d.min(base)),
        }
    }

    /// How long a run without failure resets a supervised child's restart count; see
    /// [`Backoff::reset_after`].
    pub fn reset_period(&self) -> Duration {
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
                                assert!(b.full_jitter().jittered(base, unit) <= base);
                            }
                            b.multiplier(factor).delay(attempt);
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
