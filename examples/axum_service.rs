//! Warden inside an axum HTTP service: a request asks a supervised agent; a health endpoint
//! reports the tree; Warden Studio is mounted on the same router; SIGTERM (or Ctrl-C) shuts
//! down in order, and every ask in flight gets its reply or a typed error before the process
//! exits.
//!
//! ```text
//! cargo run --example axum_service -- [--listen 127.0.0.1:8080] [--drain-ms 5000]
//! curl -s localhost:8080/ask -H 'content-type: application/json' -d '{"text":"hello"}'
//! curl -s localhost:8080/health
//! ```
//!
//! The model: `WARDEN_MODEL_CONFIG` (a model config file), else `OPENAI_API_KEY` with
//! `OPENAI_BASE_URL` and `OPENAI_MODEL` (any OpenAI-compatible server), else a fake provider
//! started in-process that echoes. With `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! (`http://HOST:4318/v1/traces`), each ask's turn and model calls also go to that
//! OpenTelemetry collector.
//!
//! Shutdown, in order:
//! 1. the listener closes: no new connection is accepted, and the studio's live streams end;
//! 2. asks in flight get up to `--drain-ms` to finish with their replies;
//! 3. the tree stops (its children in reverse start order): an ask still in flight gets a
//!    typed error (`503 {"error": "agent_down"}` or the like), never a dropped connection;
//! 4. the server finishes the last responses, and the process exits 0.
//!
//! It prints `listening URL`, `studio URL` (with the token), and a `shutdown: ...` line per
//! step, for whoever runs it (and for `tests/axum_service.rs`, which kills it with SIGTERM).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tracing_subscriber::prelude::*;
use warden::agents::agent::{Agent, AgentError, AgentRef};
use warden::agents::message::AgentMessage;
use warden::agents::model::{Model, ModelConfig, OpenAiChat, Provider, RetryPolicy};
use warden::agents::react::ReAct;
use warden::supervisor::{Strategy, Supervisor};
use warden_fake_provider::{Answer, FakeProvider};
use warden_studio::Studio;
use warden_studio::otel::Otel;

/// How long an ask may take before its caller gets `504`.
const ASK_DEADLINE: Duration = Duration::from_secs(60);

/// Asks in flight, and a signal when the last one ends.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One ask in flight, counted until dropped.
struct Counted(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> Counted {
        self.count.fetch_add(1, Ordering::SeqCst);
        Counted(self.clone())
    }

    async fn drained(&self, within: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[derive(Clone)]
struct App {
    clerk: AgentRef,
    root: Supervisor,
    inflight: Arc<InFlight>,
}

#[derive(serde::Deserialize)]
struct AskBody {
    text: String,
}

/// `POST /ask {"text": ...}`: the agent's reply, or its typed error with a fitting status.
async fn ask(State(app): State<App>, Json(body): Json<AskBody>) -> Response {
    let _counted = app.inflight.enter();
    match app.clerk.ask(AgentMessage::user(body.text), ASK_DEADLINE).await {
        Ok(reply) => Json(json!({"reply": reply.text()})).into_response(),
        Err(error) => {
            let status = match &error {
                AgentError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
                AgentError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                AgentError::AgentDown(_) | AgentError::NotStarted(_) | AgentError::NotDelivered(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (
                status,
                Json(json!({"error": error.kind(), "message": error.to_string()})),
            )
                .into_response()
        }
    }
}

/// `GET /health`: the tree, `200` while the root runs, `503` once it is gone.
async fn health(State(app): State<App>) -> Response {
    match app.root.snapshot_within(Duration::from_secs(2)).await {
        Ok(tree) => Json(json!({"status": "ok", "tree": tree})).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "down", "error": error.to_string()})),
        )
            .into_response(),
    }
}

/// The model from the environment, else an in-process fake provider that echoes (kept alive
/// by the returned handle).
async fn model() -> Result<(Model, Option<FakeProvider>)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(path) = var("WARDEN_MODEL_CONFIG") {
        let config = ModelConfig::from_file(&path).with_context(|| format!("reading {path}"))?;
        return Ok((config.build().context("building the model")?, None));
    }
    if var("OPENAI_API_KEY").is_some() {
        let name = var("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".to_owned());
        let mut config = ModelConfig::new(Provider::OpenAi, name).with_api_key_env("OPENAI_API_KEY");
        if let Some(url) = var("OPENAI_BASE_URL") {
            config = config.with_base_url(url);
        }
        return Ok((config.build().context("building the model")?, None));
    }
    let fake = FakeProvider::start().await;
    fake.set_responder(|body| {
        let asked = body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_owned();
        Answer::text(format!("You said: {asked}"))
    });
    let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "echo")).with_retry(RetryPolicy::new(2));
    Ok((model, Some(fake)))
}

/// SIGTERM or Ctrl-C.
async fn terminated() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut listen = "127.0.0.1:8080".to_owned();
    let mut drain = Duration::from_secs(5);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().context("--listen needs an address")?,
            "--drain-ms" => drain = Duration::from_millis(args.next().context("--drain-ms needs a number")?.parse()?),
            other => anyhow::bail!("unknown argument {other:?} (--listen ADDR, --drain-ms N)"),
        }
    }

    // The studio sees the tree, the agent and its model calls; so does an OpenTelemetry
    // collector, when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names one.
    let studio = Studio::builder().start();
    let otel = match std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(Otel::http(&endpoint, "axum_service")?),
        _ => None,
    };
    tracing_subscriber::registry()
        .with(studio.tracing_layer())
        .with(otel.as_ref().map(Otel::layer))
        .try_init()?;

    let (model, _fake) = model().await?;
    let agent = Agent::new("clerk", ReAct::builder(model).build()).inline_observer(studio.agent_observer());
    let clerk = agent.handle();
    studio.watch_agent(&clerk);
    let root = Supervisor::builder("service")
        .strategy(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .inline_observer(studio.supervisor_observer())
        .escalation_handler(studio.escalation_handler())
        .child(agent.child_spec())
        .spawn()
        .await?;
    studio.attach(&root).await;

    let app = App {
        clerk,
        root: root.clone(),
        inflight: Arc::default(),
    };
    let router = Router::new()
        .route("/ask", post(ask))
        .route("/health", get(health))
        .with_state(app.clone())
        .nest("/studio", studio.router());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, mut stopping) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|s| *s).await;
            })
            .await
    });
    say(&format!("listening http://{addr}"));
    say(&format!("studio http://{addr}/studio?token={}", studio.token()));

    terminated().await?;
    // 1. No new connections; the studio's streams end.
    let _ = stop.send(true);
    studio.close_viewers();
    say(&format!(
        "shutdown: listener closed, draining {} asks in flight",
        app.inflight.count.load(Ordering::SeqCst)
    ));
    // 2. Asks in flight may finish.
    if !app.inflight.drained(drain).await {
        say(&format!(
            "shutdown: {} asks still in flight after {drain:?}",
            app.inflight.count.load(Ordering::SeqCst)
        ));
    }
    // 3. The tree stops in order; what is still in flight gets a typed error.
    root.stop().await;
    say("shutdown: tree stopped");
    // 4. The last responses go out.
    server.await??;
    if let Some(otel) = otel {
        tokio::task::spawn_blocking(move || otel.shutdown()).await??;
    }
    say("shutdown: done");
    Ok(())
}
