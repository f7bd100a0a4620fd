//! States, state changes, and the typed escalation sent when a breaker opens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The `tracing` target of every breaker event.
pub const TRACING_TARGET: &str = "warden::circuit_breaker";

/// A breaker's state (resilience4j's `CircuitBreaker.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through and are recorded in the sliding window.
    Closed,
    /// Calls are rejected until the open wait is over.
    Open,
    /// A fixed number of trial calls go through; their rates decide between
    /// [`Closed`](Self::Closed) and [`Open`](Self::Open).
    HalfOpen,
    /// Set by hand: calls go through and nothing is recorded.
    Disabled,
    /// Set by hand: every call is rejected until [`reset`](super::CircuitBreaker::reset).
    ForcedOpen,
}

impl CircuitState {
    /// resilience4j's name for the state (`"CLOSED"`, `"HALF_OPEN"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "CLOSED",
            CircuitState::Open => "OPEN",
            CircuitState::HalfOpen => "HALF_OPEN",
            CircuitState::Disabled => "DISABLED",
            CircuitState::ForcedOpen => "FORCED_OPEN",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change. Returned to whoever caused it and emitted as a `tracing`
/// event (target [`TRACING_TARGET`]: `WARN` when the breaker opens, `INFO`
/// otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct StateTransition {
    /// The breaker's name.
    pub breaker: Arc<str>,
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
    /// The failure rate (percent) that decided it: the closed window's when
    /// closed opens, the trials' when half-open ends; `None` when the change
    /// was not decided by rates (wait over, set by hand) or too few calls.
    pub failure_rate: Option<f32>,
    /// The slow-call rate (percent) that decided it; `None` as for
    /// [`failure_rate`](Self::failure_rate).
    pub slow_call_rate: Option<f32>,
    /// When `to` is [`CircuitState::Open`]: how long calls will be rejected.
    pub retry_after: Option<Duration>,
    /// When it happened (tokio's clock, so a paused clock in tests).
    pub at: Instant,
}

impl StateTransition {
    /// The escalation to raise when this transition opened the breaker
    /// (`to == Open`, from closed or half-open); `None` otherwise.
    pub fn opened(&self) -> Option<CircuitOpened> {
        (self.to == CircuitState::Open).then(|| CircuitOpened {
            breaker: self.breaker.clone(),
            from: self.from,
            failure_rate: self.failure_rate,
            slow_call_rate: self.slow_call_rate,
            retry_after: self.retry_after,
        })
    }

    pub(crate) fn emit(&self) {
        // -1 stands for "not computed", as in resilience4j's metrics.
        let failure_rate = self.failure_rate.unwrap_or(-1.0);
        let slow_call_rate = self.slow_call_rate.unwrap_or(-1.0);
        if self.to == CircuitState::Open {
            tracing::warn!(
                target: TRACING_TARGET,
                breaker = %self.breaker,
                from = self.from.as_str(),
                to = self.to.as_str(),
                failure_rate,
                slow_call_rate,
                retry_after_ms = self.retry_after.map_or(0, |d| d.as_millis() as u64),
                "circuit breaker state transition"
            );
        } else {
            tracing::info!(
                target: TRACING_TARGET,
                breaker = %self.breaker,
                from = self.from.as_str(),
                to = self.to.as_str(),
                failure_rate,
                slow_call_rate,
                "circuit breaker state transition"
            );
        }
    }
}

/// The typed concern an executor raises to its supervisor when its breaker
/// opens (`Escalator::raise(opened)`), so whoever orchestrates can re-plan:
/// use another tool, tell the model, or wait `retry_after`.
///
/// Get it from [`StateTransition::opened`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CircuitOpened {
    /// The breaker's name (the tool's, by the executor's convention).
    pub breaker: Arc<str>,
    /// [`CircuitState::Closed`] (the window tripped) or
    /// [`CircuitState::HalfOpen`] (the trials failed or took too long).
    pub from: CircuitState,
    /// The failure rate (percent) that opened it, if rates decided.
    pub failure_rate: Option<f32>,
    /// The slow-call rate (percent) that opened it, if rates decided.
    pub slow_call_rate: Option<f32>,
    /// How long calls will be rejected (`None` only if the configured wait
    /// does not fit the clock).
    pub retry_after: Option<Duration>,
}
