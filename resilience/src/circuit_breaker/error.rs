//! The error of a call the breaker does not let through.

use std::fmt;
use std::time::Duration;

use super::transition::CircuitState;

/// The breaker rejected the call without running it.
///
/// Transient: the same call may succeed later. When the breaker is
/// [`Open`](CircuitState::Open), [`retry_after`](Self::retry_after) says when
/// the open wait ends; retrying before then fails the same way at once, so a
/// retry layer should wait at least that long (or give up and re-plan). In
/// [`HalfOpen`](CircuitState::HalfOpen) (all trial calls taken) and
/// [`ForcedOpen`](CircuitState::ForcedOpen) there is no known time and
/// `retry_after` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallNotPermitted {
    /// The state that rejected the call.
    pub state: CircuitState,
    /// How long until the open wait ends, if known.
    pub retry_after: Option<Duration>,
}

impl CallNotPermitted {
    /// A rejection by a breaker in `state` (for tests and adapters).
    pub fn new(state: CircuitState, retry_after: Option<Duration>) -> Self {
        Self { state, retry_after }
    }

    /// How long until the open wait ends, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Always `true`: a breaker closes again, so the call may succeed later.
    pub fn is_transient(&self) -> bool {
        true
    }
}

impl fmt::Display for CallNotPermitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.state, self.retry_after) {
            (CircuitState::HalfOpen, _) => f.write_str("circuit breaker is half-open and all trial calls are taken"),
            (CircuitState::ForcedOpen, _) => f.write_str("circuit breaker is forced open"),
            (_, Some(after)) => write!(f, "circuit breaker is open, retry after {after:?}"),
            (_, None) => f.write_str("circuit breaker is open"),
        }
    }
}

impl std::error::Error for CallNotPermitted {}
