//! The pure state machine: [`CircuitBreaker`], [`Permit`] and [`Metrics`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::config::CircuitBreakerConfig;
use super::error::CallNotPermitted;
use super::transition::{CircuitState, StateTransition};
use super::window::{CountWindow, FAILED, SLOW, Tally, Window};

/// Leave to run one call, from [`CircuitBreaker::try_acquire`]. Hand it back
/// with exactly one of [`on_success`](CircuitBreaker::on_success),
/// [`on_error`](CircuitBreaker::on_error) or
/// [`on_ignored`](CircuitBreaker::on_ignored).
///
/// A permit remembers the state *generation* it was issued in (each state
/// change starts a new one). A result handed back after the breaker changed
/// state is dropped: a slow call permitted while closed cannot count as a
/// half-open trial, nor re-open a breaker that closed again since.
///
/// Dropping a permit records nothing. That is harmless except in half-open,
/// where the trial slot stays taken until the state changes; use
/// [`CallGuard`](super::CallGuard) (or the tower layer), which hands its permit
/// back as ignored when dropped.
#[derive(Debug)]
#[must_use = "hand the permit back with on_success, on_error or on_ignored"]
pub struct Permit {
    generation: u64,
}

/// A snapshot of a breaker's window (resilience4j's `Metrics`).
///
/// In [`HalfOpen`](CircuitState::HalfOpen) the window is the trial calls (and
/// the minimum is the number of permitted trials); otherwise it is the closed
/// state's sliding window (kept, for reporting, while open).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state now.
    pub state: CircuitState,
    /// Failed calls in the window, in percent; `None` below the minimum number of calls.
    pub failure_rate: Option<f32>,
    /// Slow calls in the window, in percent; `None` below the minimum number of calls.
    pub slow_call_rate: Option<f32>,
    /// Calls in the window.
    pub buffered_calls: u32,
    /// Failed calls in the window.
    pub failed_calls: u32,
    /// Slow calls (successful or not) in the window.
    pub slow_calls: u32,
    /// Calls in the window that were both slow and failed.
    pub slow_failed_calls: u32,
    /// Calls rejected since the breaker was created or last [reset](CircuitBreaker::reset).
    pub not_permitted_calls: u64,
}

/// A circuit breaker as a pure, deterministic state machine.
///
/// It does no I/O and spawns nothing: it reads tokio's clock
/// ([`tokio::time::Instant::now`], so a paused test clock drives it) and
/// changes state only inside its `&mut self` methods. Share it between tasks
/// with [`SharedCircuitBreaker`](super::SharedCircuitBreaker).
///
/// Time-driven changes (the open wait is over; half-open's maximum wait is
/// over) happen on the next [`try_acquire`](Self::try_acquire) (as in
/// resilience4j by default) or [`refresh`](Self::refresh). Because
/// `try_acquire` returns the permit or the rejection, the transition it caused
/// is kept for [`take_transition`](Self::take_transition); every other method
/// returns its transition directly. Every transition is also emitted as a
/// `tracing` event.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    min_calls: u32,
    state: CircuitState,
    /// Bumped on every state change; permits of older generations are stale.
    generation: u64,
    /// The closed state's window; kept while open for [`metrics`](Self::metrics).
    closed: Window,
    /// Half-open's trial results.
    trials: CountWindow,
    /// Trial permits out (or recorded) in this half-open generation.
    trials_issued: u32,
    /// Open: when the wait ends. Half-open: when the maximum wait ends.
    /// `None`: no deadline (or it does not fit the clock).
    deadline: Option<Instant>,
    not_permitted: u64,
    pending: Option<StateTransition>,
}

impl CircuitBreaker {
    /// A closed breaker named `name` (the tool's name, say: it is in every
    /// transition and escalation).
    pub fn new(name: impl Into<Arc<str>>, config: CircuitBreakerConfig) -> Self {
        let now = Instant::now();
        Self {
            name: name.into(),
            min_calls: config.effective_minimum_calls(),
            closed: Window::new(config.sliding_window, now),
            trials: CountWindow::new(config.permitted_calls_in_half_open),
            config,
            state: CircuitState::Closed,
            generation: 0,
            trials_issued: 0,
            deadline: None,
            not_permitted: 0,
            pending: None,
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The breaker's settings.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// The state now. An open breaker whose wait is over still reports
    /// [`Open`](CircuitState::Open) until the next
    /// [`try_acquire`](Self::try_acquire) or [`refresh`](Self::refresh).
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Asks leave to run one call.
    ///
    /// Closed and disabled: always granted. Open: rejected with the time left
    /// of the open wait; once the wait is over the breaker turns half-open and
    /// this call is the first trial. Half-open: granted while fewer than the
    /// permitted number of trials are out; rejected after, and, if the maximum
    /// half-open wait is over, the breaker opens again first. Forced open:
    /// always rejected.
    ///
    /// # Errors
    ///
    /// [`CallNotPermitted`] when rejected (transient).
    #[inline]
    pub fn try_acquire(&mut self) -> Result<Permit, CallNotPermitted> {
        match self.state {
            CircuitState::Closed | CircuitState::Disabled => Ok(self.permit()),
            _ => self.try_acquire_slow(),
        }
    }

    #[inline]
    fn permit(&self) -> Permit {
        Permit {
            generation: self.generation,
        }
    }

    fn try_acquire_slow(&mut self) -> Result<Permit, CallNotPermitted> {
        let now = Instant::now();
        if let Some(t) = self.refresh_at(now) {
            self.pending = Some(t);
        }
        match self.state {
            CircuitState::Closed | CircuitState::Disabled => Ok(self.permit()),
            CircuitState::HalfOpen if self.trials_issued < self.config.permitted_calls_in_half_open => {
                self.trials_issued += 1;
                Ok(self.permit())
            }
            state => {
                self.not_permitted += 1;
                let retry_after = match state {
                    CircuitState::Open => self.deadline.map(|d| d.saturating_duration_since(now)),
                    _ => None,
                };
                Err(CallNotPermitted { state, retry_after })
            }
        }
    }

    /// The transition the last [`try_acquire`](Self::try_acquire) caused, if
    /// not yet taken (only the latest is kept; all of them were traced).
    pub fn take_transition(&mut self) -> Option<StateTransition> {
        self.pending.take()
    }

    /// Applies time-driven changes now: open → half-open when the open wait
    /// is over (resilience4j's `automaticTransitionFromOpenToHalfOpenEnabled`,
    /// if the owner calls this on a timer), half-open → open when the maximum
    /// half-open wait is over.
    pub fn refresh(&mut self) -> Option<StateTransition> {
        self.refresh_at(Instant::now())
    }

    fn refresh_at(&mut self, now: Instant) -> Option<StateTransition> {
        let due = self.deadline.is_some_and(|d| now >= d);
        match self.state {
            CircuitState::Open if due => Some(self.transition(CircuitState::HalfOpen, now, None)),
            CircuitState::HalfOpen if due => {
                let rates = self.trials.tally().rates(1);
                Some(self.transition(CircuitState::Open, now, rates))
            }
            _ => None,
        }
    }

    /// Records a successful call that took `elapsed` (slow if longer than the
    /// slow-call duration threshold). Returns the transition it caused.
    #[inline]
    pub fn on_success(&mut self, permit: Permit, elapsed: Duration) -> Option<StateTransition> {
        let slow = if elapsed > self.config.slow_call_duration_threshold {
            SLOW
        } else {
            0
        };
        self.record(permit, slow)
    }

    /// Records a failed call that took `elapsed`. Returns the transition it caused.
    #[inline]
    pub fn on_error(&mut self, permit: Permit, elapsed: Duration) -> Option<StateTransition> {
        let slow = if elapsed > self.config.slow_call_duration_threshold {
            SLOW
        } else {
            0
        };
        self.record(permit, FAILED | slow)
    }

    /// Hands back a permit whose call counts neither as success nor as failure
    /// (an error the caller classified as ignored, or a cancelled call). In
    /// half-open, the trial slot is freed for another call.
    pub fn on_ignored(&mut self, permit: Permit) {
        if permit.generation == self.generation && self.state == CircuitState::HalfOpen {
            self.trials_issued = self.trials_issued.saturating_sub(1);
        }
    }

    #[inline]
    fn record(&mut self, permit: Permit, flags: u8) -> Option<StateTransition> {
        if permit.generation != self.generation {
            return None;
        }
        match self.state {
            CircuitState::Closed => {
                let tally = self.closed.record(flags);
                if tally.calls < self.min_calls {
                    return None;
                }
                self.judge_closed(tally)
            }
            CircuitState::HalfOpen => {
                self.trials.record(flags);
                let tally = self.trials.tally();
                if tally.calls < self.config.permitted_calls_in_half_open {
                    return None;
                }
                let rates = tally.rates(1);
                let to = if self.exceeds(rates) {
                    CircuitState::Open
                } else {
                    CircuitState::Closed
                };
                Some(self.transition(to, Instant::now(), rates))
            }
            // No permit of this generation was issued (open, forced open) or
            // nothing is recorded (disabled).
            CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled => None,
        }
    }

    #[inline]
    fn judge_closed(&mut self, tally: Tally) -> Option<StateTransition> {
        let rates = tally.rates(self.min_calls);
        if self.exceeds(rates) {
            Some(self.transition(CircuitState::Open, Instant::now(), rates))
        } else {
            None
        }
    }

    #[inline]
    fn exceeds(&self, rates: Option<(f32, f32)>) -> bool {
        rates.is_some_and(|(failure, slow)| {
            failure >= self.config.failure_rate_threshold || slow >= self.config.slow_call_rate_threshold
        })
    }

    /// Opens the breaker by hand until [`reset`](Self::reset) (resilience4j's
    /// `transitionToForcedOpenState`).
    pub fn force_open(&mut self) -> Option<StateTransition> {
        (self.state != CircuitState::ForcedOpen)
            .then(|| self.transition(CircuitState::ForcedOpen, Instant::now(), None))
    }

    /// Lets every call through and records nothing until [`reset`](Self::reset)
    /// (resilience4j's `transitionToDisabledState`).
    pub fn disable(&mut self) -> Option<StateTransition> {
        (self.state != CircuitState::Disabled).then(|| self.transition(CircuitState::Disabled, Instant::now(), None))
    }

    /// Closes the breaker with an empty window and clears the not-permitted
    /// count (resilience4j's `reset`). Returns the transition, or `None` if it
    /// was already closed (the window is cleared anyway and older permits
    /// become stale).
    pub fn reset(&mut self) -> Option<StateTransition> {
        self.not_permitted = 0;
        let now = Instant::now();
        if self.state == CircuitState::Closed {
            self.generation = self.generation.wrapping_add(1);
            self.closed.reset(now);
            return None;
        }
        Some(self.transition(CircuitState::Closed, now, None))
    }

    /// A snapshot of the current window and counts.
    pub fn metrics(&self) -> Metrics {
        let (tally, minimum) = match self.state {
            CircuitState::HalfOpen => (self.trials.tally(), self.config.permitted_calls_in_half_open),
            _ => (self.closed.tally(), self.min_calls),
        };
        let rates = tally.rates(minimum);
        Metrics {
            state: self.state,
            failure_rate: rates.map(|r| r.0),
            slow_call_rate: rates.map(|r| r.1),
            buffered_calls: tally.calls,
            failed_calls: tally.failed,
            slow_calls: tally.slow,
            slow_failed_calls: tally.slow_failed,
            not_permitted_calls: self.not_permitted,
        }
    }

    #[cold]
    fn transition(&mut self, to: CircuitState, now: Instant, rates: Option<(f32, f32)>) -> StateTransition {
        let from = self.state;
        self.state = to;
        self.generation = self.generation.wrapping_add(1);
        self.deadline = None;
        let mut retry_after = None;
        match to {
            CircuitState::Open => {
                let wait = self.config.wait_duration_in_open_state;
                self.deadline = now.checked_add(wait);
                retry_after = self.deadline.map(|_| wait);
            }
            CircuitState::HalfOpen => {
                self.trials.reset();
                self.trials_issued = 0;
                let max = self.config.max_wait_in_half_open;
                if !max.is_zero() {
                    self.deadline = now.checked_add(max);
                }
            }
            CircuitState::Closed => self.closed.reset(now),
            CircuitState::Disabled | CircuitState::ForcedOpen => {}
        }
        let t = StateTransition {
            breaker: self.name.clone(),
            from,
            to,
            failure_rate: rates.map(|r| r.0),
            slow_call_rate: rates.map(|r| r.1),
            retry_after,
            at: now,
        };
        t.emit();
        t
    }
}
