//! The breaker's settings: [`CircuitBreakerConfig`], its builder and [`SlidingWindow`].

use std::time::Duration;

use thiserror::Error;

/// The largest sliding window (in calls or in seconds) a config accepts: the
/// window is allocated up front, so a typo must not reserve gigabytes.
pub const MAX_WINDOW_SIZE: u32 = 1 << 20;

/// Which calls the closed breaker looks at when it computes its rates
/// (resilience4j's `slidingWindowType` + `slidingWindowSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls (a ring buffer; O(1) per call).
    CountBased(u32),
    /// The calls of the last `n` whole seconds (one bucket per second; O(1)
    /// amortised per call). Calls are bucketed by the second, counted from the
    /// moment the window was (re)started, in which they completed.
    TimeBased(u32),
}

impl SlidingWindow {
    /// The window size: calls for [`CountBased`](Self::CountBased), seconds for
    /// [`TimeBased`](Self::TimeBased).
    pub fn size(self) -> u32 {
        match self {
            SlidingWindow::CountBased(n) | SlidingWindow::TimeBased(n) => n,
        }
    }
}

/// A setting out of range. Every kind is permanent: the same builder calls
/// fail the same way until the value is changed.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// The failure-rate threshold is not in `(0, 100]` (permanent).
    #[error("failure rate threshold must be in (0, 100], got {0}")]
    FailureRateThreshold(f32),
    /// The slow-call-rate threshold is not in `(0, 100]` (permanent).
    #[error("slow call rate threshold must be in (0, 100], got {0}")]
    SlowCallRateThreshold(f32),
    /// The sliding window size is 0 or above [`MAX_WINDOW_SIZE`] (permanent).
    #[error("sliding window size must be in 1..={MAX_WINDOW_SIZE}, got {0}")]
    WindowSize(u32),
    /// The minimum number of calls is 0 (permanent).
    #[error("minimum number of calls must be at least 1")]
    MinimumNumberOfCalls,
    /// The number of permitted calls in half-open is 0 or above
    /// [`MAX_WINDOW_SIZE`] (permanent).
    #[error("permitted number of calls in half-open state must be in 1..={MAX_WINDOW_SIZE}, got {0}")]
    PermittedCallsInHalfOpen(u32),
}

/// The breaker's settings, with resilience4j's names and defaults.
///
/// | setting | default | meaning |
/// | --- | --- | --- |
/// | [`failure_rate_threshold`](CircuitBreakerConfigBuilder::failure_rate_threshold) | 50 % | open when the failure rate is **at or above** this |
/// | [`slow_call_rate_threshold`](CircuitBreakerConfigBuilder::slow_call_rate_threshold) | 100 % | open when the slow-call rate is at or above this |
/// | [`slow_call_duration_threshold`](CircuitBreakerConfigBuilder::slow_call_duration_threshold) | 60 s | a call that takes **longer** than this is slow |
/// | [`sliding_window`](CircuitBreakerConfigBuilder::sliding_window) | count-based, 100 calls | which calls the rates are computed over |
/// | [`minimum_number_of_calls`](CircuitBreakerConfigBuilder::minimum_number_of_calls) | 100 | no rate (so no opening) before this many calls are in the window |
/// | [`wait_duration_in_open_state`](CircuitBreakerConfigBuilder::wait_duration_in_open_state) | 60 s | how long an open breaker rejects calls |
/// | [`permitted_number_of_calls_in_half_open_state`](CircuitBreakerConfigBuilder::permitted_number_of_calls_in_half_open_state) | 10 | trial calls let through in half-open |
/// | [`max_wait_duration_in_half_open_state`](CircuitBreakerConfigBuilder::max_wait_duration_in_half_open_state) | 0 (forever) | half-open opens again if its trials take longer than this |
///
/// For a count-based window the minimum number of calls is capped at the
/// window size, as resilience4j does (otherwise the breaker could never open).
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerConfig {
    pub(crate) failure_rate_threshold: f32,
    pub(crate) slow_call_rate_threshold: f32,
    pub(crate) slow_call_duration_threshold: Duration,
    pub(crate) sliding_window: SlidingWindow,
    pub(crate) minimum_number_of_calls: u32,
    pub(crate) wait_duration_in_open_state: Duration,
    pub(crate) permitted_calls_in_half_open: u32,
    pub(crate) max_wait_in_half_open: Duration,
}

impl Default for CircuitBreakerConfig {
    /// resilience4j's defaults (see the table on [`CircuitBreakerConfig`]).
    fn default() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            sliding_window: SlidingWindow::CountBased(100),
            minimum_number_of_calls: 100,
            wait_duration_in_open_state: Duration::from_secs(60),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: Duration::ZERO,
        }
    }
}

impl CircuitBreakerConfig {
    /// A builder that starts from the defaults.
    pub fn builder() -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder {
            config: Self::default(),
        }
    }

    /// Open at or above this failure rate, in percent.
    pub fn failure_rate_threshold(&self) -> f32 {
        self.failure_rate_threshold
    }

    /// Open at or above this slow-call rate, in percent.
    pub fn slow_call_rate_threshold(&self) -> f32 {
        self.slow_call_rate_threshold
    }

    /// A call longer than this is slow.
    pub fn slow_call_duration_threshold(&self) -> Duration {
        self.slow_call_duration_threshold
    }

    /// The closed state's sliding window.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.sliding_window
    }

    /// Calls needed in the window before rates are computed, as configured
    /// (before the cap at a count-based window's size).
    pub fn minimum_number_of_calls(&self) -> u32 {
        self.minimum_number_of_calls
    }

    /// How long the open state rejects calls.
    pub fn wait_duration_in_open_state(&self) -> Duration {
        self.wait_duration_in_open_state
    }

    /// Trial calls in half-open.
    pub fn permitted_number_of_calls_in_half_open_state(&self) -> u32 {
        self.permitted_calls_in_half_open
    }

    /// The longest stay in half-open; zero means no limit.
    pub fn max_wait_duration_in_half_open_state(&self) -> Duration {
        self.max_wait_in_half_open
    }

    /// The minimum number of calls the closed state really uses.
    pub(crate) fn effective_minimum_calls(&self) -> u32 {
        match self.sliding_window {
            SlidingWindow::CountBased(n) => self.minimum_number_of_calls.min(n),
            SlidingWindow::TimeBased(_) => self.minimum_number_of_calls,
        }
    }
}

/// Builds a [`CircuitBreakerConfig`]; [`build`](Self::build) checks the ranges.
#[derive(Debug, Clone)]
pub struct CircuitBreakerConfigBuilder {
    config: CircuitBreakerConfig,
}

impl CircuitBreakerConfigBuilder {
    /// Open when the failure rate is at or above `percent` (in `(0, 100]`; default 50).
    pub fn failure_rate_threshold(mut self, percent: f32) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Open when the slow-call rate is at or above `percent` (in `(0, 100]`; default 100).
    pub fn slow_call_rate_threshold(mut self, percent: f32) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// A call that takes longer than `duration` is slow (default 60 s).
    pub fn slow_call_duration_threshold(mut self, duration: Duration) -> Self {
        self.config.slow_call_duration_threshold = duration;
        self
    }

    /// The closed state's window (default: the last 100 calls).
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// Compute no rate before the window holds `calls` calls (at least 1; default 100).
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.config.minimum_number_of_calls = calls;
        self
    }

    /// Reject calls for `duration` after opening (default 60 s).
    pub fn wait_duration_in_open_state(mut self, duration: Duration) -> Self {
        self.config.wait_duration_in_open_state = duration;
        self
    }

    /// Let `calls` trial calls through in half-open (at least 1; default 10).
    pub fn permitted_number_of_calls_in_half_open_state(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// Open again if half-open lasts longer than `duration` (zero, the default,
    /// means wait for the trials however long they take).
    pub fn max_wait_duration_in_half_open_state(mut self, duration: Duration) -> Self {
        self.config.max_wait_in_half_open = duration;
        self
    }

    /// Checks the ranges and returns the config.
    ///
    /// # Errors
    ///
    /// A [`BreakerConfigError`] naming the first setting out of range.
    pub fn build(self) -> Result<CircuitBreakerConfig, BreakerConfigError> {
        let c = self.config;
        if !(c.failure_rate_threshold > 0.0 && c.failure_rate_threshold <= 100.0) {
            return Err(BreakerConfigError::FailureRateThreshold(c.failure_rate_threshold));
        }
        if !(c.slow_call_rate_threshold > 0.0 && c.slow_call_rate_threshold <= 100.0) {
            return Err(BreakerConfigError::SlowCallRateThreshold(c.slow_call_rate_threshold));
        }
        let size = c.sliding_window.size();
        if size == 0 || size > MAX_WINDOW_SIZE {
            return Err(BreakerConfigError::WindowSize(size));
        }
        if c.minimum_number_of_calls == 0 {
            return Err(BreakerConfigError::MinimumNumberOfCalls);
        }
        if c.permitted_calls_in_half_open == 0 || c.permitted_calls_in_half_open > MAX_WINDOW_SIZE {
            return Err(BreakerConfigError::PermittedCallsInHalfOpen(
                c.permitted_calls_in_half_open,
            ));
        }
        Ok(c)
    }
}
