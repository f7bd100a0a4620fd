//! [`StudioLayer`]: a `tracing` layer that shows the studio Warden's model and tool calls.
//!
//! Warden's model layer runs each call in a span named `model.chat` or `model.stream`, its tool
//! executors each call in a span named `tool.call`, and an agent each turn in a span named
//! `agent.turn`; their fields follow OpenTelemetry's GenAI conventions
//! (`gen_ai.request.model`, `gen_ai.usage.input_tokens`, `gen_ai.tool.name`,
//! `gen_ai.agent.name`, ...). The layer reads those spans only: a call is reported when its span
//! opens and again when it closes, with its latency, tokens, outcome and, for a tool, its
//! circuit breaker's state; a call inside a turn's span is the turn's agent's. Every other span
//! and event passes by untouched.

use std::fmt;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, Filtered, filter_fn};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::studio::{Inner, Input, Studio, now_ms};
use crate::view::CallView;

/// A `tracing` layer feeding a [`Studio`] with model and tool calls: it reads Warden's
/// `model.chat`, `model.stream`, `tool.call` and `agent.turn` spans (a call inside a turn is
/// the turn's agent's) and lets every other span and event by. Add it to the application's
/// subscriber:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use warden_studio::Studio;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let studio = Studio::builder().start();
/// let _guard = tracing_subscriber::registry().with(studio.tracing_layer()).set_default();
/// # }
/// ```
#[derive(Clone)]
pub struct StudioLayer {
    inner: Arc<Inner>,
}

impl fmt::Debug for StudioLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StudioLayer").finish_non_exhaustive()
    }
}

/// The spans the studio reads; every other callsite is of no interest to it.
fn is_watched(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && (metadata.name() == "agent.turn" || call_kind(metadata.name()).is_some())
}

impl Studio {
    /// The `tracing` layer that reports model and tool calls to this studio, with a
    /// per-layer filter for the four spans it reads: the studio alone enables no other
    /// callsite, so with no other layer the rest of `tracing` stays off and costs nothing;
    /// beside other layers it changes nothing of what they see.
    pub fn tracing_layer<S>(&self) -> Filtered<StudioLayer, FilterFn, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        StudioLayer {
            inner: self.inner.clone(),
        }
        .with_filter(filter_fn(is_watched as fn(&Metadata<'_>) -> bool))
    }
}

/// An agent's turn, kept in its span.
struct TurnOf(String);

/// A call in flight, kept in its span.
struct Pending(CallView);

#[derive(Default)]
struct Fields {
    model: Option<String>,
    tool: Option<String>,
    agent: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    latency_ms: Option<u64>,
    cost: Option<f64>,
    outcome: Option<String>,
    breaker: Option<String>,
}

impl Fields {
    fn set(&mut self, field: &str, value: String) {
        match field {
            "gen_ai.request.model" => self.model = Some(value),
            "gen_ai.tool.name" => self.tool = Some(value),
            "gen_ai.agent.name" => self.agent = Some(value),
            "outcome" => self.outcome = Some(value),
            "breaker" => self.breaker = Some(value),
            _ => {}
        }
    }

    fn set_u64(&mut self, field: &str, value: u64) {
        match field {
            "gen_ai.usage.input_tokens" => self.input_tokens = Some(value),
            "gen_ai.usage.output_tokens" => self.output_tokens = Some(value),
            "latency_ms" => self.latency_ms = Some(value),
            _ => {}
        }
    }

    fn merge_into(self, call: &mut CallView) {
        if let Some(v) = self.input_tokens {
            call.input_tokens = Some(v);
        }
        if let Some(v) = self.output_tokens {
            call.output_tokens = Some(v);
        }
        if let Some(v) = self.latency_ms {
            call.latency_ms = Some(v);
        }
        if let Some(v) = self.cost {
            call.cost = Some(v);
        }
        if let Some(v) = self.outcome {
            call.outcome = Some(v);
        }
        if let Some(v) = self.breaker {
            call.breaker = Some(v);
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "cost" {
            self.cost = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_u64(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.set_u64(field.name(), value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here: their Debug is the value's Display.
        self.set(field.name(), format!("{value:?}"));
    }
}

fn call_kind(name: &str) -> Option<&'static str> {
    match name {
        "model.chat" | "model.stream" => Some("model"),
        "tool.call" => Some("tool"),
        _ => None,
    }
}

impl<S> Layer<S> for StudioLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name != "agent.turn" && call_kind(name).is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if name == "agent.turn" {
            if let Some(agent) = fields.agent {
                span.extensions_mut().insert(TurnOf(agent));
            }
            return;
        }
        let Some(kind) = call_kind(name) else { return };
        let agent = span
            .scope()
            .skip(1)
            .find_map(|ancestor| ancestor.extensions().get::<TurnOf>().map(|t| t.0.clone()));
        let mut call = CallView {
            id: id.into_u64(),
            kind: kind.into(),
            name: fields.model.take().or(fields.tool.take()).unwrap_or_default(),
            agent,
            started_ms: now_ms(),
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
            cost: None,
            outcome: None,
            breaker: None,
        };
        fields.merge_into(&mut call);
        self.inner.send(Input::CallStarted(Box::new(call.clone())));
        span.extensions_mut().insert(Pending(call));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(Pending(call)) = extensions.get_mut::<Pending>() {
            let mut fields = Fields::default();
            values.record(&mut fields);
            fields.merge_into(call);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let pending = span.extensions_mut().remove::<Pending>();
        if let Some(Pending(mut call)) = pending {
            if call.latency_ms.is_none() {
                call.latency_ms = Some(now_ms().saturating_sub(call.started_ms));
            }
            if call.outcome.is_none() {
                call.outcome = Some("dropped".into());
            }
            self.inner.send(Input::CallEnded(Box::new(call)));
        }
    }
}
