//! [`SharedCircuitBreaker`]: one breaker for many tasks, with transition listeners.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{CircuitBreaker, Metrics, Permit};
use super::config::CircuitBreakerConfig;
use super::error::CallNotPermitted;
use super::transition::{CircuitState, StateTransition};

/// How a finished call counts (resilience4j's `recordExceptions` /
/// `ignoreExceptions`, decided by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Counts as a successful call (slow if it took too long).
    Success,
    /// Counts as a failed call (slow if it took too long).
    Failure,
    /// Counts as neither, e.g. a permission denial or a bad argument: the
    /// tool is not at fault. A cancelled call is ignored too.
    Ignored,
}

type Listener = Arc<dyn Fn(&StateTransition) + Send + Sync>;

struct Inner {
    breaker: Mutex<CircuitBreaker>,
    listeners: RwLock<Arc<[Listener]>>,
}

/// A [`CircuitBreaker`] shared by many tasks: an `Arc<Mutex<_>>` (a std mutex,
/// held only for the few nanoseconds of a decision, never across an `.await`)
/// plus listeners told of every state change. Cheap to clone; clones share
/// the breaker.
///
/// Listeners run on the task that caused the change, after the lock is
/// released (so they may use the breaker). The executor registers one that
/// raises [`CircuitOpened`](super::CircuitOpened) to its supervisor. A
/// listener that panics panics that task.
#[derive(Clone)]
pub struct SharedCircuitBreaker {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedCircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCircuitBreaker")
            .field("breaker", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl From<CircuitBreaker> for SharedCircuitBreaker {
    fn from(breaker: CircuitBreaker) -> Self {
        Self {
            inner: Arc::new(Inner {
                breaker: Mutex::new(breaker),
                listeners: RwLock::new(Arc::new([])),
            }),
        }
    }
}

impl SharedCircuitBreaker {
    /// A closed shared breaker named `name`.
    pub fn new(name: impl Into<Arc<str>>, config: CircuitBreakerConfig) -> Self {
        CircuitBreaker::new(name, config).into()
    }

    /// Calls `listener` with every later state change.
    pub fn on_transition(&self, listener: impl Fn(&StateTransition) + Send + Sync + 'static) {
        let mut listeners = self.inner.listeners.write().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Listener> = listeners.iter().cloned().collect();
        all.push(Arc::new(listener));
        *listeners = all.into();
    }

    /// The lock; no code of ours panics while holding it, so a poisoned lock
    /// still holds a consistent breaker.
    #[inline]
    fn lock(&self) -> MutexGuard<'_, CircuitBreaker> {
        self.inner.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cold]
    fn notify(&self, transition: &StateTransition) {
        let listeners = self
            .inner
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for listener in listeners.iter() {
            listener(transition);
        }
    }

    #[inline]
    fn notify_opt(&self, transition: Option<StateTransition>) {
        if let Some(t) = transition {
            self.notify(&t);
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> Arc<str> {
        self.lock().name().clone()
    }

    /// The state now (see [`CircuitBreaker::state`]).
    pub fn state(&self) -> CircuitState {
        self.lock().state()
    }

    /// A snapshot of the window and counts.
    pub fn metrics(&self) -> Metrics {
        self.lock().metrics()
    }

    /// [`CircuitBreaker::try_acquire`]; a transition it causes goes to the listeners.
    ///
    /// # Errors
    ///
    /// [`CallNotPermitted`] when rejected (transient).
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, CallNotPermitted> {
        let (result, transition) = {
            let mut breaker = self.lock();
            let result = breaker.try_acquire();
            (result, breaker.take_transition())
        };
        self.notify_opt(transition);
        result
    }

    /// Acquires a permit wrapped in a [`CallGuard`] that measures the call and
    /// hands the permit back as ignored if dropped unrecorded.
    ///
    /// # Errors
    ///
    /// [`CallNotPermitted`] when rejected (transient).
    #[inline]
    pub fn try_call(&self) -> Result<CallGuard, CallNotPermitted> {
        let permit = self.try_acquire()?;
        Ok(CallGuard {
            breaker: self.clone(),
            permit: Some(permit),
            started: Instant::now(),
        })
    }

    /// [`CircuitBreaker::on_success`]; a transition goes to the listeners.
    #[inline]
    pub fn on_success(&self, permit: Permit, elapsed: Duration) {
        let t = self.lock().on_success(permit, elapsed);
        self.notify_opt(t);
    }

    /// [`CircuitBreaker::on_error`]; a transition goes to the listeners.
    #[inline]
    pub fn on_error(&self, permit: Permit, elapsed: Duration) {
        let t = self.lock().on_error(permit, elapsed);
        self.notify_opt(t);
    }

    /// [`CircuitBreaker::on_ignored`].
    pub fn on_ignored(&self, permit: Permit) {
        self.lock().on_ignored(permit);
    }

    /// Records `outcome` for `permit`.
    #[inline]
    pub fn record(&self, permit: Permit, outcome: CallOutcome, elapsed: Duration) {
        match outcome {
            CallOutcome::Success => self.on_success(permit, elapsed),
            CallOutcome::Failure => self.on_error(permit, elapsed),
            CallOutcome::Ignored => self.on_ignored(permit),
        }
    }

    /// [`CircuitBreaker::refresh`]; call it on a timer for an automatic open →
    /// half-open change. A transition goes to the listeners.
    pub fn refresh(&self) {
        let t = self.lock().refresh();
        self.notify_opt(t);
    }

    /// [`CircuitBreaker::force_open`]; a transition goes to the listeners.
    pub fn force_open(&self) {
        let t = self.lock().force_open();
        self.notify_opt(t);
    }

    /// [`CircuitBreaker::disable`]; a transition goes to the listeners.
    pub fn disable(&self) {
        let t = self.lock().disable();
        self.notify_opt(t);
    }

    /// [`CircuitBreaker::reset`]; a transition goes to the listeners.
    pub fn reset(&self) {
        let t = self.lock().reset();
        self.notify_opt(t);
    }
}

/// One permitted call in progress, from [`SharedCircuitBreaker::try_call`]:
/// it measures the call from its creation and records it once.
///
/// # Cancellation
///
/// Dropping the guard without recording hands the permit back as
/// [`CallOutcome::Ignored`], so a cancelled half-open trial frees its slot.
#[derive(Debug)]
#[must_use = "record the call's outcome, or drop the guard to ignore it"]
pub struct CallGuard {
    breaker: SharedCircuitBreaker,
    permit: Option<Permit>,
    started: Instant,
}

impl CallGuard {
    /// Starts measuring again from now (the layer acquires in `poll_ready`
    /// and starts the clock in `call`).
    pub(crate) fn restart_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Time since the guard was created.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records the call as `outcome`, with its measured duration.
    #[inline]
    pub fn record(mut self, outcome: CallOutcome) {
        if let Some(permit) = self.permit.take() {
            self.breaker.record(permit, outcome, self.started.elapsed());
        }
    }

    /// Records a successful call.
    pub fn success(self) {
        self.record(CallOutcome::Success);
    }

    /// Records a failed call.
    pub fn failure(self) {
        self.record(CallOutcome::Failure);
    }

    /// Records a call that counts as neither.
    pub fn ignored(self) {
        self.record(CallOutcome::Ignored);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker.on_ignored(permit);
        }
    }
}
