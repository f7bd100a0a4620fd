//! A circuit breaker: stop calling a service (a tool, a model) that keeps failing, and try it
//! again later.
//!
//! A tool behind a flaky API can fail for minutes. Calling it again and again
//! wastes the model's turns and the API's patience. A circuit breaker watches
//! the results of recent calls and, when too many fail (or are too slow),
//! *opens*: calls fail at once with [`CallNotPermitted`], which says when to
//! retry. After a wait it lets a few *trial* calls through, and their results
//! decide whether it closes again or stays open. The semantics, names and
//! defaults are resilience4j's (`CircuitBreaker`), with the differences listed
//! below.
//!
//! # States
//!
//! ```text
//!            failure rate ≥ threshold
//!            or slow-call rate ≥ threshold
//!  CLOSED ─────────────────────────────────▶ OPEN ◀──────────┐
//!    ▲         (after the minimum number       │              │ trials' rates ≥ a threshold,
//!    │          of calls in the window)        │ wait over,   │ or the maximum half-open
//!    │                                         │ next call    │ wait is over
//!    │      trials' rates below thresholds     ▼              │
//!    └───────────────────────────────────── HALF_OPEN ────────┘
//! ```
//!
//! * **Closed**: every call goes through and its result goes into the
//!   sliding window: the last *n* calls ([`SlidingWindow::CountBased`]) or
//!   the calls of the last *n* seconds ([`SlidingWindow::TimeBased`]). Once
//!   the window holds the minimum number of calls, each result recomputes the
//!   failure rate and the slow-call rate (a call is slow when it takes longer
//!   than the slow-call duration threshold, whether it succeeded or not); when
//!   either is **at or above** its threshold, the breaker opens.
//! * **Open**: every call is rejected with [`CallNotPermitted`], whose
//!   `retry_after` is the time left of the open wait. The first call attempted
//!   after the wait turns the breaker half-open and is its first trial.
//! * **Half-open**: the permitted number of trial calls go through, and
//!   further calls are rejected. When all trials have finished, their rates
//!   decide: at or above a threshold opens the breaker again, otherwise it
//!   closes with an empty window.
//! * **Disabled** and **forced open** are set by hand
//!   ([`CircuitBreaker::disable`], [`CircuitBreaker::force_open`]) and left
//!   with [`CircuitBreaker::reset`].
//!
//! Every state change is a [`StateTransition`]: returned to the caller, sent to
//! [`SharedCircuitBreaker`]'s listeners, and emitted as a `tracing` event with
//! target [`TRACING_TARGET`] (`warden::circuit_breaker`; fields `breaker`,
//! `from`, `to`, `failure_rate`, `slow_call_rate`, with -1 for a rate not
//! computed). When the breaker opens, [`StateTransition::opened`] gives the
//! [`CircuitOpened`] concern the tool executor raises to its supervisor.
//!
//! # Outcomes
//!
//! The breaker does not look at errors: a classifier ([`Classify`]) sorts each
//! finished call into a [`CallOutcome`]: a success, a failure, or *ignored* (neither), for
//! errors that say nothing about the tool's health, such as a permission
//! denial or a bad argument from the model. A cancelled call is ignored too.
//! [`ByTransient`] asks the error ([`Transient::counts_as_failure`](crate::Transient::counts_as_failure));
//! tool stacks and models use it.
//! A tool that panics is a failed call: the executor catches the panic and
//! turns it into an error before it reaches the breaker.
//!
//! # Settings
//!
//! See [`CircuitBreakerConfig`] for the table of settings and defaults.
//!
//! # Examples
//!
//! The state machine, driven by hand:
//!
//! ```
//! use std::time::Duration;
//! use warden_resilience::circuit_breaker::{CircuitBreaker, CircuitBreakerConfig, CircuitState, SlidingWindow};
//!
//! let config = CircuitBreakerConfig::builder()
//!     .sliding_window(SlidingWindow::CountBased(10))
//!     .minimum_number_of_calls(4)
//!     .failure_rate_threshold(50.0)
//!     .wait_duration_in_open_state(Duration::from_secs(30))
//!     .build()?;
//! let mut breaker = CircuitBreaker::new("web_search", config);
//!
//! let ms = Duration::from_millis(5);
//! for failed in [false, true, false] {
//!     let permit = breaker.try_acquire()?;
//!     let transition = if failed { breaker.on_error(permit, ms) } else { breaker.on_success(permit, ms) };
//!     assert!(transition.is_none()); // fewer than 4 calls: no rate yet
//! }
//! // The 4th call makes 2 failures out of 4: 50 %, at the threshold.
//! let permit = breaker.try_acquire()?;
//! let transition = breaker.on_error(permit, ms).expect("opens");
//! assert_eq!((transition.from, transition.to), (CircuitState::Closed, CircuitState::Open));
//! assert_eq!(transition.failure_rate, Some(50.0));
//!
//! let rejected = breaker.try_acquire().unwrap_err();
//! assert_eq!(rejected.state, CircuitState::Open);
//! assert!(rejected.retry_after.is_some_and(|d| d <= Duration::from_secs(30)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! As a tower layer around a service whose error is `From<CallNotPermitted>`
//! (here `tower::BoxError`), with a listener that would escalate:
//!
//! ```
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
//! use warden_resilience::circuit_breaker::{
//!     CallNotPermitted, CircuitBreakerConfig, CircuitBreakerLayer, CallOutcome, SharedCircuitBreaker,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let breaker = SharedCircuitBreaker::new("flaky", CircuitBreakerConfig::builder().minimum_number_of_calls(2).build()?);
//! breaker.on_transition(|t| {
//!     if let Some(opened) = t.opened() {
//!         // The executor calls `escalator.raise(opened)` here.
//!         println!("{opened:?}");
//!     }
//! });
//! let mut service = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(breaker.clone()).classifier(|r: &Result<u32, BoxError>| match r {
//!         Ok(_) => CallOutcome::Success,
//!         Err(_) => CallOutcome::Failure,
//!     }))
//!     .service_fn(|n: u32| async move { if n > 0 { Ok(n) } else { Err(BoxError::from("zero")) } });
//!
//! assert!(service.ready().await?.call(0).await.is_err());
//! assert!(service.ready().await?.call(0).await.is_err()); // 2 of 2 failed: opens
//! let error = service.ready().await?.call(1).await.unwrap_err();
//! assert!(error.is::<CallNotPermitted>()); // rejected without calling the service
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from resilience4j
//!
//! * **Stale results are dropped.** A [`Permit`] carries the state generation
//!   it was issued in; a result handed back after the breaker changed state is
//!   not recorded (resilience4j records some of them into the new state's
//!   window). So a slow call from before an opening can neither count as a
//!   half-open trial nor re-open a breaker that has closed since.
//! * **Errors are classified by the caller** ([`CallOutcome`]) instead of
//!   exception lists (`recordExceptions`, `ignoreExceptions`).
//! * **No scheduler.** Time-driven changes happen on the next call attempt or
//!   [`CircuitBreaker::refresh`]; call `refresh` on a timer to get
//!   `automaticTransitionFromOpenToHalfOpenEnabled`, and to enforce
//!   `maxWaitDurationInHalfOpenState` without traffic.
//! * **Time-based buckets** are whole seconds counted from when the window
//!   was (re)started, not epoch seconds; the effect is the same.
//! * **The not-permitted count** covers the breaker's life until
//!   [`CircuitBreaker::reset`], not the current state only.
//! * Rates are `Option<f32>`, `None` where resilience4j returns -1.
//!
//! # Performance
//!
//! A decision is O(1) and allocation-free: closed `try_acquire` +
//! `on_success` reads no clock with a count-based window; an open rejection
//! reads the clock once. See `benches/circuit_breaker.rs`.

mod breaker;
mod config;
mod error;
pub mod future;
mod layer;
mod service;
mod shared;
mod transition;
mod window;

pub use self::breaker::{CircuitBreaker, Metrics, Permit};
pub use self::config::{
    BreakerConfigError, CircuitBreakerConfig, CircuitBreakerConfigBuilder, MAX_WINDOW_SIZE, SlidingWindow,
};
pub use self::error::CallNotPermitted;
pub use self::layer::CircuitBreakerLayer;
pub use self::service::{ByTransient, CircuitBreakerService, Classify, ErrorIsFailure};
pub use self::shared::{CallGuard, CallOutcome, SharedCircuitBreaker};
pub use self::transition::{CircuitOpened, CircuitState, StateTransition, TRACING_TARGET};
