//! What the model-layer tests share: models of both wire formats pointed at the fake provider,
//! fast retry policies, and a `tracing` subscriber that records spans and events.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use warden_agents::model::{
    AnthropicMessages, ApiKey, ChatModel, HttpSettings, Model, OpenAiChat, RetryPolicy, StreamEvent,
};
use warden_fake_provider::{FakeProvider, RecordedRequest};

/// The key every test model sends; it must never show up in logs, errors or `Debug` output.
pub const KEY: &str = "sk-test-4f3c2b1a-never-print-me";

/// The model name the test models ask for.
pub const MODEL: &str = "test-model";

/// The two wire formats, so a test can run once for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
}

impl Wire {
    pub const BOTH: [Wire; 2] = [Wire::OpenAi, Wire::Anthropic];

    /// The base URL of `fake` for this format.
    pub fn base_url(self, fake: &FakeProvider) -> String {
        match self {
            Wire::OpenAi => fake.base_url_openai(),
            Wire::Anthropic => fake.base_url_anthropic(),
        }
    }

    /// The path requests of this format go to.
    pub fn path(self) -> &'static str {
        match self {
            Wire::OpenAi => "/v1/chat/completions",
            Wire::Anthropic => "/v1/messages",
        }
    }

    /// Settings for [`MODEL`] at `fake`, with [`KEY`].
    pub fn settings(self, fake: &FakeProvider) -> HttpSettings {
        HttpSettings::new(self.base_url(fake), MODEL.to_owned()).with_api_key(Some(ApiKey::new(KEY)))
    }

    /// The provider client alone (no retries, no tool-call-id repair) with these settings.
    pub fn provider_with(self, settings: HttpSettings) -> Arc<dyn ChatModel> {
        match self {
            Wire::OpenAi => Arc::new(OpenAiChat::new("", "").with_settings(settings)),
            Wire::Anthropic => Arc::new(AnthropicMessages::new("", "").with_settings(settings)),
        }
    }

    /// The provider client alone, at `fake`.
    pub fn provider(self, fake: &FakeProvider) -> Arc<dyn ChatModel> {
        self.provider_with(self.settings(fake))
    }

    /// A model at `fake` with [`fast_retry`]`(2)`.
    pub fn model(self, fake: &FakeProvider) -> Model {
        Model::from_arc(self.provider(fake)).with_retry(fast_retry(2))
    }

    /// A model with these settings and [`fast_retry`]`(2)`.
    pub fn model_with(self, settings: HttpSettings) -> Model {
        Model::from_arc(self.provider_with(settings)).with_retry(fast_retry(2))
    }
}

/// `max_retries` retries with 1 ms to 4 ms backoffs.
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(max_retries)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(4))
}

/// A base URL on 127.0.0.1 where nothing listens (a port bound, then released).
pub fn dead_url() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    format!("http://{addr}/v1")
}

/// The text of the messages a request sent, in the format it was sent in, as one JSON string
/// (for "contains" checks).
pub fn history_text(request: &RecordedRequest) -> String {
    Value::Array(request.messages().to_vec()).to_string()
}

/// The text deltas of a list of stream events, joined.
pub fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub type Fields = BTreeMap<String, String>;

/// One recorded span: its name and its fields (as created, then as recorded later).
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub name: String,
    pub fields: Fields,
}

/// One recorded event: its target, the name of the span it was in (if any), and its fields
/// (the message under `message`).
#[derive(Clone, Debug)]
pub struct EventRecord {
    pub target: String,
    pub span: Option<String>,
    pub fields: Fields,
}

#[derive(Default)]
struct Log {
    spans: BTreeMap<u64, SpanRecord>,
    events: Vec<EventRecord>,
}

/// A `tracing` subscriber that records every span and event, of every target and level.
/// Install it for the current thread with [`Capture::install`].
#[derive(Clone, Default)]
pub struct Capture {
    log: Arc<Mutex<Log>>,
    next_id: Arc<AtomicU64>,
}

thread_local! {
    static CURRENT: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Capture {
    /// A capture, installed as this thread's default subscriber until the guard drops.
    /// Tests using it run on a current-thread runtime, so everything they await is seen.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let guard = tracing::subscriber::set_default(capture.clone());
        (capture, guard)
    }

    /// The spans named `name`, in creation order.
    pub fn spans(&self, name: &str) -> Vec<SpanRecord> {
        let log = self.log.lock().unwrap();
        log.spans.values().filter(|s| s.name == name).cloned().collect()
    }

    /// The events whose message is `message`, in order.
    pub fn events(&self, message: &str) -> Vec<EventRecord> {
        let log = self.log.lock().unwrap();
        log.events
            .iter()
            .filter(|e| e.fields.get("message").map(String::as_str) == Some(message))
            .cloned()
            .collect()
    }

    /// The `delay_ms` of every "retrying model call" event, in order.
    pub fn retry_delays_ms(&self) -> Vec<u64> {
        self.events("retrying model call")
            .iter()
            .map(|e| e.fields["delay_ms"].parse().unwrap())
            .collect()
    }

    /// Everything recorded, as text (for checks that something never appears).
    pub fn dump(&self) -> String {
        let log = self.log.lock().unwrap();
        format!("{:?}\n{:?}", log.spans, log.events)
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        let record = SpanRecord {
            name: attrs.metadata().name().to_owned(),
            fields,
        };
        self.log.lock().unwrap().spans.insert(id, record);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut log = self.log.lock().unwrap();
        if let Some(s) = log.spans.get_mut(&span.into_u64()) {
            values.record(&mut Visitor(&mut s.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let mut log = self.log.lock().unwrap();
        let parent = event
            .parent()
            .map(Id::into_u64)
            .or_else(|| CURRENT.with(|c| c.borrow().last().copied()));
        let span = parent.and_then(|id| log.spans.get(&id)).map(|s| s.name.clone());
        log.events.push(EventRecord {
            target: event.metadata().target().to_owned(),
            span,
            fields,
        });
    }
    fn enter(&self, span: &Id) {
        CURRENT.with(|c| c.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        CURRENT.with(|c| {
            let mut stack = c.borrow_mut();
            if let Some(at) = stack.iter().rposition(|&id| id == span.into_u64()) {
                stack.remove(at);
            }
        });
    }
}
