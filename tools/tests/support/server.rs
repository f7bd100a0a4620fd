//! A real HTTP server on 127.0.0.1 that fails, stalls and rate-limits on demand.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::sync::mpsc;

/// What `/flaky` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200 "ok".
    Ok,
    /// 500.
    Fail,
    /// Never answers (until the client goes away).
    Stall,
    /// 429 with `Retry-After: secs`.
    RateLimit { secs: u64 },
    /// This status, empty body.
    Status(u16),
}

#[derive(Clone)]
struct Shared {
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    dropped: mpsc::UnboundedSender<()>,
}

/// The server's controls.
pub struct TestServer {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    /// One message per stalled request whose handler was dropped (client gone).
    pub dropped: mpsc::UnboundedReceiver<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            mode: Arc::new(Mutex::new(Mode::Ok)),
            hits: Arc::new(AtomicUsize::new(0)),
            dropped: tx,
        };
        let app = Router::new()
            .route("/flaky", any(flaky))
            .route("/bytes", get(bytes))
            .route("/redirect", get(redirect))
            .route("/echo-key", any(echo_key))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            mode: shared.mode,
            hits: shared.hits,
            dropped: rx,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `builder` allowing this server (its host, port and loopback address).
    pub fn allowing(&self, builder: warden_tools::HttpRequestToolBuilder) -> warden_tools::HttpRequestToolBuilder {
        builder
            .allow_host("127.0.0.1")
            .allow_port(self.addr.port())
            .allow_address(self.addr.ip())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

async fn flaky(State(s): State<Shared>) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let mode = *s.mode.lock().unwrap();
    match mode {
        Mode::Ok => "ok".into_response(),
        Mode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Stall => {
            let _signal = DropSignal(s.dropped.clone());
            std::future::pending::<()>().await;
            unreachable!()
        }
        Mode::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Mode::RateLimit { secs } => {
            let mut headers = HeaderMap::new();
            headers.insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, headers, "slow down").into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct BytesQuery {
    n: usize,
    #[serde(default)]
    chunked: bool,
}

async fn bytes(Query(q): Query<BytesQuery>) -> Response {
    let body = vec![b'x'; q.n];
    if q.chunked {
        // No Content-Length: the limit must be enforced while streaming.
        let chunks = body
            .chunks(1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>();
        let stream = futures::stream::iter(chunks);
        axum::body::Body::from_stream(stream).into_response()
    } else {
        body.into_response()
    }
}

#[derive(serde::Deserialize)]
struct RedirectQuery {
    to: String,
}

async fn redirect(Query(q): Query<RedirectQuery>) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, q.to)]).into_response()
}

pub const SHORT: Duration = Duration::from_secs(10);

/// Answers with the request's `Idempotency-Key` header, or `none`.
async fn echo_key(headers: HeaderMap) -> String {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned()
}
