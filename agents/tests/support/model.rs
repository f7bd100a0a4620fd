//! What the model-layer tests share: models of both wire formats pointed at the fake provider,
//! fast retry policies, and a `tracing` capture of spans and events.

#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    RetryPolicy::new(max_retries + 1).backoff(Duration::from_millis(1), Duration::from_millis(4))
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

/// Records every span and event, of every target and level, made on the thread that
/// [installed](Capture::install) it.
///
/// Tracing caches, per call site, whether any subscriber is interested; with per-thread
/// default subscribers (`set_default`) that cache races with other tests running in parallel
/// and a capture can miss spans. So one global subscriber, interested in everything, routes
/// each span and event to the capture of the thread that made it (spans: to the capture that
/// saw them created).
#[derive(Clone, Default)]
pub struct Capture {
    log: Arc<Mutex<Log>>,
}

thread_local! {
    /// The capture installed on this thread, if any.
    static ACTIVE: RefCell<Option<Capture>> = const { RefCell::new(None) };
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Clears the thread's capture when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.borrow_mut().take());
    }
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
    /// A capture of what this thread traces, until the guard drops. Tests using it run on a
    /// current-thread runtime, so everything they await is seen.
    pub fn install() -> (Self, CaptureGuard) {
        static ROUTER: OnceLock<()> = OnceLock::new();
        ROUTER.get_or_init(|| {
            tracing::subscriber::set_global_default(Router::default()).expect("no other global subscriber");
        });
        let capture = Self::default();
        ACTIVE.with(|a| *a.borrow_mut() = Some(capture.clone()));
        (capture, CaptureGuard(()))
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

    /// The `wait_ms` of every "retrying" event, in order.
    pub fn retry_delays_ms(&self) -> Vec<u64> {
        self.events("retrying")
            .iter()
            .map(|e| e.fields["wait_ms"].parse().unwrap())
            .collect()
    }

    /// Everything recorded, as text (for checks that something never appears).
    pub fn dump(&self) -> String {
        let log = self.log.lock().unwrap();
        format!("{:?}\n{:?}", log.spans, log.events)
    }
}

/// The global subscriber behind [`Capture`].
#[derive(Default)]
struct Router {
    next_id: AtomicU64,
    /// Which capture each span belongs to (kept after the span closes: the default
    /// `clone_span` counts no references, so a close may come while clones still record).
    owners: Mutex<HashMap<u64, Capture>>,
}

impl Router {
    fn owner(&self, span: u64) -> Option<Capture> {
        self.owners.lock().unwrap().get(&span).cloned()
    }
}

impl Subscriber for Router {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(capture) = ACTIVE.with(|a| a.borrow().clone()) {
            let mut fields = Fields::new();
            attrs.record(&mut Visitor(&mut fields));
            let name = attrs.metadata().name().to_owned();
            capture
                .log
                .lock()
                .unwrap()
                .spans
                .insert(id, SpanRecord { name, fields });
            self.owners.lock().unwrap().insert(id, capture);
        }
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(capture) = self.owner(span.into_u64()) {
            if let Some(s) = capture.log.lock().unwrap().spans.get_mut(&span.into_u64()) {
                values.record(&mut Visitor(&mut s.fields));
            }
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let parent = event
            .parent()
            .map(Id::into_u64)
            .or_else(|| ENTERED.with(|e| e.borrow().last().copied()));
        let capture = ACTIVE
            .with(|a| a.borrow().clone())
            .or_else(|| parent.and_then(|p| self.owner(p)));
        let Some(capture) = capture else { return };
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let mut log = capture.log.lock().unwrap();
        let span = parent.and_then(|id| log.spans.get(&id)).map(|s| s.name.clone());
        log.events.push(EventRecord {
            target: event.metadata().target().to_owned(),
            span,
            fields,
        });
    }
    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        ENTERED.with(|e| {
            let mut stack = e.borrow_mut();
            if let Some(at) = stack.iter().rposition(|&id| id == span.into_u64()) {
                stack.remove(at);
            }
        });
    }
}
