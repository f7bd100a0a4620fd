//! The HTTP server behind [`FakeProvider`].

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use crate::history;
use crate::limits::{Limiter, Limits};
use crate::script::{Answer, Quirks, RecordedRequest};
use crate::wire::{self, Ending, Format, Plan};

/// A fake LLM provider listening on `127.0.0.1` (see the [crate docs](crate)).
///
/// Cheap to query from the test while requests are in flight; dropping it stops the server.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeProvider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

struct Shared {
    script: Mutex<VecDeque<Answer>>,
    settings: Mutex<Settings>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// How many requests are recorded, for [`FakeProvider::wait_for_requests`].
    recorded: watch::Sender<usize>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
    limits: Limiter,
}

/// Answers a request from its body, when the script is empty ([`FakeProvider::set_responder`]).
type Responder = Arc<dyn Fn(&Value) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Settings {
    default_reply: Answer,
    responder: Option<Responder>,
    latency: Duration,
    chunk_delay: Duration,
    chunk_bytes: usize,
    api_key: Option<String>,
    quirks: Quirks,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeProvider {
    /// Starts a provider on `127.0.0.1` with an OS-chosen port.
    ///
    /// # Panics
    ///
    /// If no port can be bound on `127.0.0.1` (see [`try_start`](Self::try_start)).
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("fake provider could not bind 127.0.0.1: {e}"),
        }
    }

    /// Starts a provider on `127.0.0.1` with an OS-chosen port.
    ///
    /// # Errors
    ///
    /// If the listener cannot be bound.
    pub async fn try_start() -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(VecDeque::new()),
            settings: Mutex::new(Settings {
                default_reply: Answer::text("ok"),
                responder: None,
                latency: Duration::ZERO,
                chunk_delay: Duration::ZERO,
                chunk_bytes: 4,
                api_key: None,
                quirks: Quirks::none(),
            }),
            requests: Mutex::new(Vec::new()),
            recorded: watch::Sender::new(0),
            next_id: AtomicU64::new(1),
            shutdown: shutdown_rx.clone(),
            limits: Limiter::default(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .fallback(not_found)
            .with_state(shared.clone());
        let mut stop = shutdown_rx;
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|v| *v).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "fake provider stopped");
            }
        });
        Ok(Self { addr, shared, shutdown })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:<port>/v1` (requests go to `<base>/chat/completions`).
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Anthropic-style base URL, `http://127.0.0.1:<port>` (requests go to `<base>/v1/messages`).
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: impl Into<Answer>) {
        lock(&self.shared.script).push_back(reply.into());
    }

    /// Appends several replies to the script, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Answer>) {
        lock(&self.shared.script).extend(replies);
    }

    /// How many scripted replies are still unused.
    pub fn remaining(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// The reply used when the script is empty (initially the text `"ok"`).
    pub fn set_default_reply(&self, reply: impl Into<Answer>) {
        lock(&self.shared.settings).default_reply = reply.into();
    }

    /// Answers each request whose turn finds the script empty with `responder(body)`, the
    /// request's JSON body (instead of the default reply): a stateless rule, such as "call
    /// the tool until its result is in the history, then answer", holds however many times a
    /// client retries or replays.
    pub fn set_responder(&self, responder: impl Fn(&Value) -> Answer + Send + Sync + 'static) {
        lock(&self.shared.settings).responder = Some(Arc::new(responder));
    }

    /// Delays every answer by this much (initially zero). Requests wait concurrently.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.settings).latency = latency;
    }

    /// Waits this long between stream chunks (initially zero).
    pub fn set_chunk_delay(&self, delay: Duration) {
        lock(&self.shared.settings).chunk_delay = delay;
    }

    /// Splits streamed text into pieces of about this many bytes (initially 4; tool arguments
    /// use twice this).
    pub fn set_chunk_bytes(&self, bytes: usize) {
        lock(&self.shared.settings).chunk_bytes = bytes.max(1);
    }

    /// Requires this API key (as `authorization: Bearer <key>` or `x-api-key: <key>`); requests
    /// without it get a 401 in the provider's format. `None` (the default) accepts any request.
    pub fn require_api_key(&self, key: Option<String>) {
        lock(&self.shared.settings).api_key = key;
    }

    /// Every request received so far, in arrival order.
    ///
    /// A request is recorded as soon as it arrives, before the [latency](Self::set_latency),
    /// so one that the client gave up on is recorded too.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests have been recorded (since the last
    /// [`clear_requests`](Self::clear_requests)), and returns them all.
    pub async fn wait_for_requests(&self, n: usize) -> Vec<RecordedRequest> {
        let mut recorded = self.shared.recorded.subscribe();
        // The sender lives in `self.shared`, which outlives this call: `wait_for` cannot fail.
        let _ = recorded.wait_for(|&count| count >= n).await;
        self.requests()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Answers in the OpenAI format the way a server with these [`Quirks`] does (tool calls
    /// without ids, arguments as objects, the legacy `function_call`, no usage in streams).
    pub fn set_quirks(&self, quirks: Quirks) {
        lock(&self.shared.settings).quirks = quirks;
    }

    /// Enforces `limits` from now on (replacing any before, with full budgets), as a real
    /// provider does: every answer carries the provider's rate-limit headers (OpenAI's
    /// `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`), and a request past a limit is
    /// answered 429 with `retry-after` and `retry-after-ms`, before the script is read.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use warden_fake_provider::{FakeProvider, Limits};
    ///
    /// let fake = FakeProvider::start().await;
    /// fake.set_limits(Limits::none().requests_per_minute(600).tokens_per_minute(100_000));
    /// assert_eq!(fake.rate_limited_count(), 0);
    /// # }
    /// ```
    pub fn set_limits(&self, limits: Limits) {
        self.shared.limits.set(limits);
    }

    /// How many requests were answered 429 because of the [`Limits`].
    pub fn rate_limited_count(&self) -> u64 {
        self.shared.limits.refused()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        let mut requests = lock(&self.shared.requests);
        requests.clear();
        self.shared.recorded.send_replace(0);
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Any other path or method: recorded too (a client with a wrong base URL shows up in
/// [`FakeProvider::requests`]), then a 404.
async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let message = format!("no route for {method} {uri}");
    record(&shared, &method, &uri, &headers, &body);
    let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error"}});
    json_response(StatusCode::NOT_FOUND, &body, &[])
}

/// Records a request (its body as JSON, `Value::Null` if it is not) and wakes
/// [`FakeProvider::wait_for_requests`]; returns the record.
fn record(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> RecordedRequest {
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    let mut requests = lock(&shared.requests);
    requests.push(recorded.clone());
    shared.recorded.send_replace(requests.len());
    recorded
}

async fn openai(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(shared, Format::OpenAi, method, uri, headers, body).await
}

async fn anthropic(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(shared, Format::Anthropic, method, uri, headers, body).await
}

async fn serve(
    shared: Arc<Shared>,
    format: Format,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Recorded before the latency, so a request the client gives up on still counts.
    let recorded = record(&shared, &method, &uri, &headers, &body);
    let json = recorded.body.clone();
    let settings = lock(&shared.settings).clone();
    let authorized = settings.api_key.as_deref().is_none_or(|key| {
        let bearer = format!("Bearer {key}");
        recorded.header("authorization") == Some(bearer.as_str()) || recorded.header("x-api-key") == Some(key)
    });
    if !settings.latency.is_zero() {
        tokio::time::sleep(settings.latency).await;
    }
    if json.is_null() {
        let (status, body) = wire::error_response(format, wire::ErrorKind::Status(400));
        return json_response(status_code(status), &body, &[]);
    }
    if !authorized {
        let (status, body) = wire::error_response(format, wire::ErrorKind::Status(401));
        return json_response(status_code(status), &body, &[]);
    }
    // Like the real providers, reject a history they would reject (before the script is read).
    if let Err(message) = history::check(format, &json) {
        let body = wire::invalid_request(format, &message);
        return json_response(StatusCode::BAD_REQUEST, &body, &[]);
    }
    let cost = wire::tokens(body.len()).saturating_add(max_tokens(&json));
    let mut admitted = match shared.limits.admit(format, cost) {
        Ok(admitted) => admitted,
        Err(refused) => {
            let (status, body) = wire::error_response(format, wire::ErrorKind::Status(429));
            return json_response(status_code(status), &body, &refused.headers);
        }
    };
    let limit_headers = std::mem::take(&mut admitted.headers);
    let mut response = respond(&shared, format, &json, body.len(), &settings).await;
    add_headers(&mut response, &limit_headers);
    drop(admitted);
    response
}

/// The `max_tokens` a request asks for (0 if none), which counts against a token limit.
fn max_tokens(json: &Value) -> u64 {
    ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|k| json.get(k).and_then(Value::as_u64))
        .unwrap_or(0)
}

/// The scripted answer to an admitted request.
async fn respond(shared: &Arc<Shared>, format: Format, json: &Value, body_len: usize, settings: &Settings) -> Response {
    let scripted = lock(&shared.script).pop_front();
    let reply = match (scripted, &settings.responder) {
        (Some(reply), _) => reply,
        (None, Some(responder)) => responder(json),
        (None, None) => settings.default_reply.clone(),
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut next_id = || shared.next_id.fetch_add(1, Ordering::Relaxed);
    let plan = wire::plan(reply, &mut next_id, format);
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let stream = json.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = json
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || format == Format::Anthropic;
    let input_tokens = wire::tokens(body_len);
    match plan {
        Plan::Error(kind, extra) => {
            let (status, body) = wire::error_response(format, kind);
            json_response(status_code(status), &body, &extra)
        }
        Plan::Raw { status, headers, body } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status_code(status);
            add_headers(&mut response, &headers);
            response
        }
        Plan::Stall => {
            let mut stop = shared.shutdown.clone();
            let _ = stop.wait_for(|v| *v).await;
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"error": "shutting down"}),
                &[],
            )
        }
        Plan::Drip { status, frame, every } => {
            let frame = Bytes::from(frame);
            let stop = shared.shutdown.clone();
            let body = futures::stream::unfold((stop, true), move |(stop, first)| {
                let frame = frame.clone();
                async move {
                    if !first && !every.is_zero() {
                        tokio::time::sleep(every).await;
                    }
                    // The provider is dropped: end the body (the client sees a cut stream).
                    if *stop.borrow() {
                        return None;
                    }
                    Some((Ok::<_, io::Error>(frame), (stop, false)))
                }
            });
            let mut response = Response::new(Body::from_stream(body.boxed()));
            *response.status_mut() = status_code(status);
            set_content_type(&mut response, "text/event-stream");
            response
        }
        Plan::Answer(content, ending) if !stream => {
            let mut body = wire::whole(format, &content, &model, id, input_tokens);
            if format == Format::OpenAi {
                body = wire::with_quirks(body, settings.quirks);
            }
            let body = body.to_string();
            match ending {
                Ending::Complete => {
                    let mut response = Response::new(Body::from(body));
                    set_content_type(&mut response, "application/json");
                    response
                }
                Ending::Malformed => {
                    let cut = body.len() / 2;
                    let mut response = Response::new(Body::from(body.as_bytes()[..cut].to_vec()));
                    set_content_type(&mut response, "application/json");
                    response
                }
                Ending::Overloaded(_) => {
                    let (status, body) = wire::error_response(format, wire::ErrorKind::Status(529));
                    json_response(status_code(status), &body, &[])
                }
                Ending::Cut(_) | Ending::Stall(_) => {
                    let half = body.as_bytes()[..body.len() / 2].to_vec();
                    let tail = if matches!(ending, Ending::Cut(_)) {
                        Tail::Cut
                    } else {
                        Tail::Stall(shared.shutdown.clone())
                    };
                    let mut response = Response::new(chunked(
                        vec![String::from_utf8_lossy(&half).into_owned()],
                        tail,
                        Duration::ZERO,
                    ));
                    set_content_type(&mut response, "application/json");
                    response
                }
            }
        }
        Plan::Answer(content, ending) => {
            let (mut frames, end) = wire::frames(
                format,
                &content,
                &model,
                id,
                input_tokens,
                wire::StreamShape {
                    include_usage,
                    chunk_bytes: settings.chunk_bytes,
                    quirks: settings.quirks,
                },
            );
            let tail = match ending {
                Ending::Complete => {
                    frames.extend(end);
                    Tail::End
                }
                Ending::Cut(n) => {
                    frames.truncate(n);
                    Tail::Cut
                }
                Ending::Stall(n) => {
                    frames.truncate(n);
                    Tail::Stall(shared.shutdown.clone())
                }
                Ending::Overloaded(n) => {
                    frames.truncate(n);
                    frames.push(wire::overloaded_event(format));
                    Tail::End
                }
                Ending::Malformed => {
                    frames.truncate(2);
                    frames.push(wire::malformed_event(format));
                    frames.extend(end);
                    Tail::End
                }
            };
            let mut response = Response::new(chunked(frames, tail, settings.chunk_delay));
            set_content_type(&mut response, "text/event-stream");
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    }
}

/// What a chunked body does after its frames.
enum Tail {
    End,
    Cut,
    Stall(watch::Receiver<bool>),
}

fn chunked(frames: Vec<String>, tail: Tail, delay: Duration) -> Body {
    let state = (frames.into_iter(), Some(tail), true);
    let stream = futures::stream::unfold(state, move |(mut frames, tail, first)| async move {
        if let Some(frame) = frames.next() {
            if !first && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            return Some((Ok(Bytes::from(frame)), (frames, tail, false)));
        }
        let err = match tail? {
            Tail::End => return None,
            Tail::Cut => {
                // Let the frames already written reach the client before the connection drops.
                tokio::time::sleep(Duration::from_millis(5)).await;
                io::Error::new(io::ErrorKind::ConnectionAborted, "stream cut by fault")
            }
            Tail::Stall(mut stop) => {
                let _ = stop.wait_for(|v| *v).await;
                io::Error::new(io::ErrorKind::ConnectionAborted, "fake provider shut down")
            }
        };
        Some((Err(err), (frames, None, false)))
    });
    Body::from_stream(stream.boxed())
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn set_content_type(response: &mut Response, value: &'static str) {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
}

fn add_headers(response: &mut Response, headers: &[(String, String)]) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
}

fn json_response(status: StatusCode, body: &Value, headers: &[(String, String)]) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    set_content_type(&mut response, "application/json");
    add_headers(&mut response, headers);
    response
}
