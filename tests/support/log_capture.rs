//! Test support: a `tracing` subscriber that writes every event, with all its
//! fields, to a buffer the test reads back (to grep logs for what must not be
//! there). Built on `tracing`'s own `Subscriber` trait, so no extra crate.
//!
//! Include it with `#[path = "support/log_capture.rs"] mod log_capture;` and
//! install it for the current thread with [`LogCapture::install`] (a
//! current-thread tokio runtime runs every actor on that thread).
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Metadata, Subscriber};

/// Everything logged while it was installed, one line per event.
#[derive(Clone, Default)]
pub struct LogCapture {
    text: Arc<Mutex<String>>,
    next_span: Arc<AtomicU64>,
}

impl LogCapture {
    /// Captures every event on this thread until the guard is dropped.
    pub fn install() -> (Self, DefaultGuard) {
        let capture = Self::default();
        let guard = tracing::subscriber::set_default(capture.clone());
        (capture, guard)
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}:", span.metadata().name());
        span.record(&mut Line(&mut line));
        self.text.lock().unwrap().push_str(&(line + "\n"));
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("record:");
        values.record(&mut Line(&mut line));
        self.text.lock().unwrap().push_str(&(line + "\n"));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} {}:", event.metadata().level(), event.metadata().target());
        event.record(&mut Line(&mut line));
        self.text.lock().unwrap().push_str(&(line + "\n"));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
