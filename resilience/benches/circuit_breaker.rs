//! The circuit breaker's decision: goal under 100 ns.
//!
//! `cargo bench -p warden-resilience --bench circuit_breaker`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tower::{BoxError, Layer, Service};
use warden_resilience::circuit_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerLayer, CircuitState, SharedCircuitBreaker, SlidingWindow,
};

const FAST: Duration = Duration::from_millis(1);

fn config(window: SlidingWindow) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .sliding_window(window)
        .minimum_number_of_calls(10)
        .wait_duration_in_open_state(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn opened(window: SlidingWindow) -> CircuitBreaker {
    let mut b = CircuitBreaker::new("bench", config(window));
    while b.state() != CircuitState::Open {
        let p = b.try_acquire().unwrap();
        let _ = b.on_error(p, FAST);
    }
    b
}

fn state_machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("circuit_breaker");
    let mut b = CircuitBreaker::new("bench", config(SlidingWindow::CountBased(100)));
    g.bench_function("closed_count_window/acquire+success", |bench| {
        bench.iter(|| {
            let p = b.try_acquire().unwrap();
            black_box(b.on_success(p, black_box(FAST)))
        })
    });
    let mut b = CircuitBreaker::new("bench", config(SlidingWindow::TimeBased(60)));
    g.bench_function("closed_time_window/acquire+success", |bench| {
        bench.iter(|| {
            let p = b.try_acquire().unwrap();
            black_box(b.on_success(p, black_box(FAST)))
        })
    });
    let mut b = opened(SlidingWindow::CountBased(100));
    g.bench_function("open/rejected", |bench| {
        bench.iter(|| black_box(b.try_acquire().unwrap_err()))
    });

    let shared = SharedCircuitBreaker::new("bench", config(SlidingWindow::CountBased(100)));
    g.bench_function("shared/closed/acquire+success", |bench| {
        bench.iter(|| {
            let p = shared.try_acquire().unwrap();
            shared.on_success(p, black_box(FAST));
        })
    });
    g.bench_function("shared/closed/call_guard", |bench| {
        bench.iter(|| shared.try_call().unwrap().success())
    });
    let shared = SharedCircuitBreaker::from(opened(SlidingWindow::CountBased(100)));
    g.bench_function("shared/open/rejected", |bench| {
        bench.iter(|| black_box(shared.try_acquire().unwrap_err()))
    });

    // The whole layer: poll_ready + call + poll of the immediately failing future.
    let mut service =
        CircuitBreakerLayer::new(shared.clone()).layer(tower::service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    let mut cx = Context::from_waker(Waker::noop());
    g.bench_function("layer/open/rejected", |bench| {
        bench.iter(|| {
            assert!(service.poll_ready(&mut cx).is_ready());
            let fut = pin!(service.call(black_box(1)));
            match fut.poll(&mut cx) {
                Poll::Ready(r) => black_box(r.is_err()),
                Poll::Pending => unreachable!(),
            }
        })
    });
    g.finish();
}

criterion_group!(benches, state_machine);
criterion_main!(benches);
