//! [`ResponseFuture`]: the future of a call through the breaker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::error::CallNotPermitted;
use super::service::Classify;
use super::shared::CallGuard;

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called { #[pin] future: F },
        Rejected { error: CallNotPermitted },
    }
}

pin_project! {
    /// The response future of [`CircuitBreakerService`](super::CircuitBreakerService):
    /// either the inner call, measured and recorded when it finishes, or an
    /// immediate [`CallNotPermitted`] error.
    ///
    /// # Cancellation
    ///
    /// Dropping the future before it finishes records nothing: the permit is
    /// handed back as ignored, so a cancelled half-open trial frees its slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F>,
        guard: Option<CallGuard>,
        classifier: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, guard: CallGuard, classifier: C) -> Self {
        Self {
            kind: Kind::Called { future },
            guard: Some(guard),
            classifier,
        }
    }

    pub(crate) fn rejected(error: CallNotPermitted, classifier: C) -> Self {
        Self {
            kind: Kind::Rejected { error },
            guard: None,
            classifier,
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ResponseFuture");
        match &self.kind {
            Kind::Called { .. } => d.field("kind", &"called"),
            Kind::Rejected { error } => d.field("rejected", error),
        };
        d.finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: From<CallNotPermitted>,
    C: Classify<T, E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Rejected { error } => Poll::Ready(Err(E::from(*error))),
            KindProj::Called { future } => {
                let result = ready!(future.poll(cx));
                if let Some(guard) = this.guard.take() {
                    guard.record(this.classifier.classify(&result));
                }
                Poll::Ready(result)
            }
        }
    }
}
