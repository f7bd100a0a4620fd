//! [`Transient`]: what the layers need to know of an error, and the rejections they add.

use std::time::Duration;

/// What the resilience layers ask of a service's error: whether trying again may help, when,
/// whether it is safe, and whether it says something about the service's health.
///
/// Warden's tool and model errors implement it (`ToolError`, `ModelError`); implement it for
/// your own service's error to put it behind the same [`RetryLayer`](crate::RetryLayer),
/// [`CircuitBreakerLayer`](crate::circuit_breaker::CircuitBreakerLayer) (with
/// [`ByTransient`](crate::circuit_breaker::ByTransient)) and limits.
///
/// ```
/// use std::time::Duration;
/// use warden_resilience::Transient;
///
/// #[derive(Debug)]
/// enum FetchError { Busy { retry_after: Duration }, NotFound }
///
/// impl Transient for FetchError {
///     fn is_transient(&self) -> bool { matches!(self, Self::Busy { .. }) }
///     fn retry_after(&self) -> Option<Duration> {
///         match self { Self::Busy { retry_after } => Some(*retry_after), Self::NotFound => None }
///     }
///     // A busy server refused the request: sending it again cannot repeat a side effect.
///     fn retry_is_safe(&self) -> bool { matches!(self, Self::Busy { .. }) }
///     // A missing page says nothing about the server's health.
///     fn counts_as_failure(&self) -> bool { matches!(self, Self::Busy { .. }) }
/// }
/// assert!(FetchError::Busy { retry_after: Duration::from_secs(1) }.is_transient());
/// ```
pub trait Transient {
    /// Whether the same request may succeed if made again later.
    fn is_transient(&self) -> bool;

    /// How long the service asked to wait before trying again, if it said (a 429's
    /// `Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Whether making the request again cannot repeat a side effect, whatever the request: the
    /// service refused it before acting (a rate limit, an overload, an open breaker), or
    /// vouches that it did not act. When `false` (the default: a timed-out request may have
    /// acted), only requests the retry layer is told are idempotent are retried
    /// ([`RetryLayer::idempotent_if`](crate::RetryLayer::idempotent_if)).
    fn retry_is_safe(&self) -> bool {
        false
    }

    /// Whether this error counts against the service's health in a circuit breaker (the
    /// default), or says nothing about it (a bad argument, a permission denial, a rejection by
    /// a layer in front of the service).
    fn counts_as_failure(&self) -> bool {
        true
    }
}

/// A [`TimeoutLayer`](crate::TimeoutLayer) gave up on a call after `after`. A service's error
/// type converts from it (`From<TimedOut>`), so a stack keeps one error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {after:?}")]
#[non_exhaustive]
pub struct TimedOut {
    /// The limit that passed.
    pub after: Duration,
}

impl TimedOut {
    /// A timeout after `after`.
    pub fn new(after: Duration) -> Self {
        Self { after }
    }
}

/// A [`ConcurrencyLimitLayer`](crate::ConcurrencyLimitLayer) refused a call: every slot was
/// busy and its queue was full. The error type converts from it (`From<Overloaded>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: {in_flight} calls in flight and {queued} waiting, the most allowed")]
#[non_exhaustive]
pub struct Overloaded {
    /// Calls that may run at once.
    pub in_flight: usize,
    /// Calls that may wait for a slot.
    pub queued: usize,
}

/// A [`RateLimitLayer`](crate::RateLimitLayer) refused a call: its rate is used up for longer
/// than the call may wait. The error type converts from it (`From<Throttled>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limit reached, next permit in {retry_after:?}")]
#[non_exhaustive]
pub struct Throttled {
    /// When the limiter would have a permit for this call.
    pub retry_after: Duration,
}
