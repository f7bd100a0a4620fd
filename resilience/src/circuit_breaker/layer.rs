//! [`CircuitBreakerLayer`]: wraps a service in a [`CircuitBreakerService`].

use std::fmt;

use tower::Layer;

use super::service::{CircuitBreakerService, ErrorIsFailure};
use super::shared::SharedCircuitBreaker;

/// Applies a shared circuit breaker to the services it wraps. All services
/// made by one layer (and their clones) share its breaker.
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = ErrorIsFailure> {
    breaker: SharedCircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer that counts every `Err` as a failure and every `Ok` as a
    /// success. Choose otherwise with [`classifier`](Self::classifier).
    pub fn new(breaker: SharedCircuitBreaker) -> Self {
        Self {
            breaker,
            classifier: ErrorIsFailure,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Classifies results with `classifier` (a
    /// [`Classify`](super::Classify), e.g. a closure
    /// `Fn(&Result<Res, E>) -> CallOutcome`).
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &SharedCircuitBreaker {
        &self.breaker
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
