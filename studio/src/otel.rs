//! OpenTelemetry export (feature `otel`): Warden's spans, sent to a collector over OTLP.
//!
//! Warden already traces what a user's backend wants to see: each agent turn (`agent.turn`,
//! exported as `invoke_agent NAME`), each model call inside it (`model.chat` / `model.stream`,
//! as `chat MODEL`) and each tool call (`tool.call`, as `execute_tool NAME`, a child of the
//! turn that made it even though the tool runs in its executor). Their attributes follow
//! OpenTelemetry's GenAI semantic conventions where they fit: `gen_ai.operation.name`,
//! `gen_ai.system`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`,
//! `gen_ai.usage.output_tokens`, `gen_ai.agent.name`, `gen_ai.tool.name`; and Warden's own:
//! `latency_ms`, `attempts`, `outcome`, `cost`, `breaker`.
//!
//! [`Otel::http`] builds the exporter (OTLP over HTTP with protobuf, a batch processor on a
//! thread of its own, so a slow collector never holds up an agent); [`Otel::layer`] is the
//! `tracing` layer to add beside the studio's. The transport is plain HTTP: point it at a
//! collector on the same host or network (an OpenTelemetry Collector or agent, which does TLS
//! onwards).
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! use warden_studio::otel::Otel;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let otel = Otel::http("http://127.0.0.1:4318/v1/traces", "my-service")?;
//! tracing_subscriber::registry().with(otel.layer()).init();
//! // ... run the system ...
//! otel.shutdown()?; // sends what is still batched
//! # Ok(()) }
//! ```

use std::fmt;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use thiserror::Error;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;

/// Why OpenTelemetry export could not start or finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OtelError {
    /// The exporter could not be built (a bad endpoint, say).
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// What was batched could not all be sent at shutdown.
    #[error("OTLP export did not finish: {0}")]
    Shutdown(String),
}

/// Export of Warden's spans to an OpenTelemetry collector.
pub struct Otel {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl fmt::Debug for Otel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Otel").finish_non_exhaustive()
    }
}

impl Otel {
    /// Exports to the OTLP/HTTP traces endpoint `endpoint` (a collector's
    /// `http://HOST:4318/v1/traces`), as the service `service_name`.
    ///
    /// # Errors
    ///
    /// [`OtelError::Build`] if the exporter cannot be built.
    pub fn http(endpoint: &str, service_name: &str) -> Result<Self, OtelError> {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| OtelError::Build(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service_name.to_owned()).build())
            .build();
        let tracer = provider.tracer("warden");
        Ok(Self { provider, tracer })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans for this exporter.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Sends what is batched now, and waits for it.
    ///
    /// # Errors
    ///
    /// [`OtelError::Shutdown`] if the collector did not take it.
    pub fn flush(&self) -> Result<(), OtelError> {
        self.provider
            .force_flush()
            .map_err(|e| OtelError::Shutdown(e.to_string()))
    }

    /// Sends what is still batched and stops the exporter.
    ///
    /// # Errors
    ///
    /// [`OtelError::Shutdown`] if the collector did not take it all.
    pub fn shutdown(self) -> Result<(), OtelError> {
        self.provider.shutdown().map_err(|e| OtelError::Shutdown(e.to_string()))
    }
}
