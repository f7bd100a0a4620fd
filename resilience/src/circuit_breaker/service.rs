//! [`CircuitBreakerService`] and the [`Classify`] trait.

use std::fmt;
use std::task::{Context, Poll};

use tower::Service;

use super::error::CallNotPermitted;
use super::future::ResponseFuture;
use super::shared::{CallGuard, CallOutcome, SharedCircuitBreaker};

/// Decides how a finished call counts. Implemented by every
/// `Fn(&Result<Res, E>) -> CallOutcome`.
pub trait Classify<Res, E> {
    /// How `result` counts.
    fn classify(&self, result: &Result<Res, E>) -> CallOutcome;
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> CallOutcome,
{
    fn classify(&self, result: &Result<Res, E>) -> CallOutcome {
        self(result)
    }
}

/// The default classifier: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorIsFailure;

impl<Res, E> Classify<Res, E> for ErrorIsFailure {
    fn classify(&self, result: &Result<Res, E>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(_) => CallOutcome::Failure,
        }
    }
}

/// Asks the error: `Ok` is a success, an error a failure when it
/// [`counts_as_failure`](crate::Transient::counts_as_failure), else ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByTransient;

impl<Res, E: crate::Transient> Classify<Res, E> for ByTransient {
    fn classify(&self, result: &Result<Res, E>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(e) if e.counts_as_failure() => CallOutcome::Failure,
            Err(_) => CallOutcome::Ignored,
        }
    }
}

/// What `poll_ready` decided for the next `call`.
enum Ready {
    /// Nothing decided yet.
    Unpolled,
    /// A permit is held; the inner service may not be ready yet.
    Permitted(CallGuard),
    /// The breaker rejects; `call` fails at once.
    Rejected(CallNotPermitted),
}

/// A service guarded by a circuit breaker; made by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// # Readiness
///
/// As tower's `LoadShed`, failing fast is not being unready: `poll_ready`
/// asks the breaker first, and when the breaker rejects it is `Ready(Ok(()))`
/// at once, without waiting for the inner service, and `call` returns a future
/// that fails immediately with `S::Error::from(CallNotPermitted)`. When the
/// breaker permits, the permit is held and readiness is the inner service's.
/// Dropping (or cloning: clones start unpolled) a service that holds a permit
/// hands it back as ignored.
///
/// # Errors
///
/// The inner error type must be `From<CallNotPermitted>`, so a stack keeps one
/// error type (e.g. the tool error, or `tower::BoxError`).
///
/// # Panics
///
/// It catches no panics: a panicking inner future unwinds through it (the
/// permit is handed back as ignored on unwind). The tool executor catches
/// panics below this layer and turns them into errors, which count as failures.
pub struct CircuitBreakerService<S, C = ErrorIsFailure> {
    inner: S,
    breaker: SharedCircuitBreaker,
    classifier: C,
    ready: Ready,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner` with `breaker`, classifying results with `classifier`.
    pub fn new(inner: S, breaker: SharedCircuitBreaker, classifier: C) -> Self {
        Self {
            inner,
            breaker,
            classifier,
            ready: Ready::Unpolled,
        }
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &SharedCircuitBreaker {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service; a held permit is handed back as ignored.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone> Clone for CircuitBreakerService<S, C> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.breaker.clone(), self.classifier.clone())
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: From<CallNotPermitted>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !matches!(self.ready, Ready::Permitted(_)) {
            self.ready = match self.breaker.try_call() {
                Ok(guard) => Ready::Permitted(guard),
                Err(rejected) => Ready::Rejected(rejected),
            };
        }
        match self.ready {
            Ready::Permitted(_) => match self.inner.poll_ready(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => {
                    // The service is done for; hand the permit back.
                    self.ready = Ready::Unpolled;
                    Poll::Ready(Err(e))
                }
                Poll::Pending => Poll::Pending,
            },
            // The point of the layer: fail fast, don't wait for the inner service.
            Ready::Rejected(_) | Ready::Unpolled => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match std::mem::replace(&mut self.ready, Ready::Unpolled) {
            Ready::Permitted(mut guard) => {
                guard.restart_clock();
                ResponseFuture::called(self.inner.call(req), guard, self.classifier.clone())
            }
            Ready::Rejected(rejected) => ResponseFuture::rejected(rejected, self.classifier.clone()),
            // `call` without `poll_ready` breaks the tower contract; the inner
            // service was not polled, so don't call it. Reject instead of panicking.
            Ready::Unpolled => ResponseFuture::rejected(
                CallNotPermitted::new(self.breaker.state(), None),
                self.classifier.clone(),
            ),
        }
    }
}
