//! Every state change is one `tracing` event with target `warden::circuit_breaker`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::advance;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use warden_resilience::circuit_breaker::{CircuitBreaker, CircuitBreakerConfig, SlidingWindow, TRACING_TARGET};

type Fields = BTreeMap<String, String>;

/// Records the events of the breaker's target.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Level, Fields)>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == TRACING_TARGET {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            self.0.lock().unwrap().push((*event.metadata().level(), fields));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(start_paused = true)]
async fn each_transition_is_traced_once() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let config = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::CountBased(2))
        .minimum_number_of_calls(2)
        .permitted_number_of_calls_in_half_open_state(1)
        .wait_duration_in_open_state(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut b = CircuitBreaker::new("web_search", config);
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        let _ = b.on_error(p, Duration::ZERO);
    }
    for _ in 0..3 {
        assert!(b.try_acquire().is_err());
    }
    advance(Duration::from_secs(5)).await;
    let p = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    let _ = b.on_success(p, Duration::ZERO);
    let p = b.try_acquire().unwrap();
    let _ = b.on_success(p, Duration::ZERO);

    let events = capture.0.lock().unwrap().clone();
    let summary: Vec<_> = events
        .iter()
        .map(|(level, f)| (*level, f["from"].as_str(), f["to"].as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Level::WARN, "CLOSED", "OPEN"),
            (Level::INFO, "OPEN", "HALF_OPEN"),
            (Level::INFO, "HALF_OPEN", "CLOSED"),
        ]
    );
    let opened = &events[0].1;
    assert_eq!(opened["breaker"], "web_search");
    assert_eq!(opened["failure_rate"], "100.0");
    assert_eq!(opened["slow_call_rate"], "0.0");
    assert_eq!(opened["retry_after_ms"], "5000");
    assert_eq!(events[1].1["failure_rate"], "-1.0", "not decided by rates");
}
