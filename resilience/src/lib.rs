//! Resilience for any service: retry, backoff, timeout, limits and a circuit breaker, as tower
//! layers, configured one way whatever they guard.
//!
//! Warden's tool stacks and models are built from these layers, and so can your own services
//! be. Each layer is a `tower::Layer` that keeps the service's own error type: the error
//! converts from the layer's rejections ([`TimedOut`], [`Overloaded`], [`Throttled`],
//! [`circuit_breaker::CallNotPermitted`]) and says what the layers need to know of it through
//! [`Transient`] (whether trying again may help, when, whether it is safe, whether it says
//! something about the service's health). Nothing here knows about models, tools or actors.
//!
//! | layer | what it does |
//! |---|---|
//! | [`RetryLayer`] | retries transient errors by a [`RetryPolicy`] (a [`Backoff`], a total time, a [`RetryBudget`]) |
//! | [`TimeoutLayer`] | fails a call after a time, cancelling it |
//! | [`ConcurrencyLimitLayer`] | at most *n* calls at once, a bounded queue, [`Overloaded`] past it |
//! | [`RateLimitLayer`] | a token bucket ([`RateLimiter`], shareable), waited on for a bounded time |
//! | [`circuit_breaker::CircuitBreakerLayer`] | resilience4j's breaker: stop calling what keeps failing |
//!
//! [`Backoff`] is also the one a supervisor delays restarts by.
//!
//! ```
//! use std::time::Duration;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use warden_resilience::{RetryLayer, RetryPolicy, TimedOut, TimeoutLayer, Transient};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum FetchError {
//!     #[error("busy")]
//!     Busy,
//!     #[error(transparent)]
//!     TimedOut(#[from] TimedOut),
//! }
//!
//! impl Transient for FetchError {
//!     fn is_transient(&self) -> bool { true }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let counted = calls.clone();
//! let mut service = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::new(3)).idempotent_if(|_: &u32| true))
//!     .layer(TimeoutLayer::new(Duration::from_secs(1)))
//!     .service_fn(move |n: u32| {
//!         let first = counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0;
//!         async move { if first { Err(FetchError::Busy) } else { Ok(n * 2) } }
//!     });
//! assert_eq!(service.ready().await.unwrap().call(21).await.unwrap(), 42);
//! assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
//! # }
//! ```

pub mod circuit_breaker;

mod backoff;
mod concurrency;
mod error;
mod rate_limit;
mod retry;
mod timeout;

pub use backoff::{Backoff, Jitter};
pub use concurrency::{ConcurrencyLimitLayer, ConcurrencyLimitService, ConcurrencyLimiter};
pub use error::{Overloaded, Throttled, TimedOut, Transient};
pub use rate_limit::{Priority, RateLimit, RateLimitLayer, RateLimitService, RateLimiter};
pub use retry::{RetryBudget, RetryLayer, RetryPolicy, RetryService};
pub use timeout::{TimeoutLayer, TimeoutService};

/// tower, which every layer here is built on.
pub use tower;
