//! The [`ChatModel`] trait every provider implements, and the [`HttpSettings`] both HTTP providers share.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::config::ApiKey;
use super::error::{ConfigError, ModelError};
use super::http::{self, Decoder, SseReader, StreamTimeouts};
use super::stream::StreamEvent;
use super::types::RateLimitStatus;
use super::types::{ChatRequest, ChatResponse};

/// A boxed stream of [`StreamEvent`]s, as [`ChatModel::stream`] returns it.
pub type EventStream = BoxStream<'static, Result<StreamEvent, ModelError>>;

/// One provider's chat endpoint: one attempt per call, no retries (the [`Model`](super::Model)
/// wrapper retries). Object-safe, so a `Model` holds any provider as `Arc<dyn ChatModel>`;
/// implement it to plug in another provider or a test double.
pub trait ChatModel: Send + Sync + fmt::Debug + 'static {
    /// The model name sent to the provider (such as `gpt-4o-mini`).
    fn model_name(&self) -> &str;

    /// A short name of the wire format (`"openai"`, `"anthropic"`), for traces.
    fn provider_name(&self) -> &'static str;

    /// One whole-response call.
    ///
    /// Dropping the future cancels the HTTP request.
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>>;

    /// One streamed call: resolves once the provider accepted the request (status 2xx), then
    /// yields deltas. A stream that ends before the provider's end marker yields
    /// [`ModelError::StreamInterrupted`] as its last item, never a silent end.
    ///
    /// Dropping the stream closes the connection.
    fn stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>>;
}

/// The shared client: redirects are not followed (a gateway answering 307 must not receive the
/// key again at another host; reqwest strips `authorization` on a cross-host redirect but not
/// `x-api-key`), so a 3xx is answered as [`ModelError::Redirected`].
fn build_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|_| {
            // Building fails only if the TLS backend cannot start; the fallback keeps the policy.
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
}

/// The HTTP client (and so the connection pool) shared by all models on the current tokio
/// runtime.
///
/// Not one per process: a pooled connection is driven by a task of the runtime that opened it,
/// so a connection checked out by another runtime while the first one is idle (not polled, as a
/// finished `#[tokio::test]` or a runtime blocked in sync code) hangs until the request times
/// out. Each runtime gets its own client, retired when the runtime shuts down (a parked task
/// holds a marker that is dropped with the runtime's tasks).
fn runtime_client() -> reqwest::Client {
    type Clients = Vec<(tokio::runtime::Id, Weak<()>, reqwest::Client)>;
    static CLIENTS: Mutex<Clients> = Mutex::new(Vec::new());
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return build_client();
    };
    let id = runtime.id();
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    // Runtime ids are reused once a runtime is gone: only a live marker vouches for a client.
    clients.retain(|(_, alive, _)| alive.strong_count() > 0);
    if let Some((_, _, client)) = clients.iter().find(|(of, _, _)| *of == id) {
        return client.clone();
    }
    let client = build_client();
    let marker = Arc::new(());
    clients.push((id, Arc::downgrade(&marker), client.clone()));
    runtime.spawn(async move {
        let _alive = marker;
        std::future::pending::<()>().await;
    });
    client
}

/// HTTP settings of a provider: endpoint, model, key, timeouts, size limits and sampling defaults.
///
/// `Debug` never shows the key, nor the user name, password or query of the base URL (see
/// [`redacted_url`]).
///
/// The limits bound what a provider (or whatever answers at the base URL) can make the client
/// hold or wait for; each has a default sized far above real answers:
///
/// | limit | default | error |
/// |---|---|---|
/// | [whole body](Self::with_max_body_bytes) | 16 MiB | [`ModelError::ResponseTooLarge`] |
/// | [error body](Self::with_max_error_body_bytes) | 64 KiB | none: the rest is not read, the status decides |
/// | [one stream event](Self::with_max_event_bytes) | 8 MiB | [`ModelError::ResponseTooLarge`] |
/// | [whole stream](Self::with_max_stream_bytes) | 64 MiB | [`ModelError::ResponseTooLarge`] |
/// | [request](Self::with_request_timeout) | 10 min | [`ModelError::Timeout`] |
/// | [stream without progress](Self::with_idle_timeout) | 5 min | [`ModelError::Timeout`] |
/// | [whole stream](Self::with_stream_timeout) | 15 min | [`ModelError::DeadlineExceeded`] |
///
/// A base URL over plain `http://` is refused unless its host is the loopback or
/// [`allow_plain_http`](Self::allow_plain_http) was set ([`ConfigError::PlainHttp`](super::ConfigError::PlainHttp)).
#[derive(Clone)]
pub struct HttpSettings {
    /// `None`: the current runtime's shared client, looked up for each request.
    pub(crate) client: Option<reqwest::Client>,
    pub(crate) base_url: String,
    pub(crate) model: String,
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) request_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) temperature: Option<f32>,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) stream_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_error_body_bytes: usize,
    pub(crate) max_event_bytes: usize,
    pub(crate) max_stream_bytes: usize,
    pub(crate) allow_plain_http: bool,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("base_url", &redacted_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("stream_timeout", &self.stream_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_error_body_bytes", &self.max_error_body_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("max_stream_bytes", &self.max_stream_bytes)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// A URL as it may be shown in logs and `Debug` output: a user name or password becomes
/// `<redacted>@`, a query `?<redacted>` and a fragment `#<redacted>` (any of them can carry a
/// key); a URL that does not parse is shown as `<unparsable url>`.
///
/// ```
/// use warden_agents::model::redacted_url;
///
/// assert_eq!(redacted_url("https://user:sk-1@gw.example/v1?key=sk-2"), "https://<redacted>@gw.example/v1?<redacted>");
/// assert_eq!(redacted_url("http://localhost:11434/v1"), "http://localhost:11434/v1");
/// ```
pub fn redacted_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return "<unparsable url>".to_owned();
    };
    let mut shown = format!("{}://", parsed.scheme());
    if !parsed.username().is_empty() || parsed.password().is_some() {
        shown.push_str("<redacted>@");
    }
    if let Some(host) = parsed.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = parsed.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(parsed.path());
    if parsed.query().is_some() {
        shown.push_str("?<redacted>");
    }
    if parsed.fragment().is_some() {
        shown.push_str("#<redacted>");
    }
    shown
}

/// Checks that `base_url` parses and is `https://`, or `http://` to the loopback, or `http://`
/// with `allow_plain_http`.
pub(crate) fn check_base_url(base_url: &str, allow_plain_http: bool) -> Result<(), ConfigError> {
    let url = reqwest::Url::parse(base_url).map_err(|_| ConfigError::InvalidBaseUrl)?;
    if url.scheme() != "http" || allow_plain_http {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>();
    let loopback = host.eq_ignore_ascii_case("localhost") || ip.is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(ConfigError::PlainHttp { host: host.to_owned() })
    }
}

impl HttpSettings {
    /// Default request timeout (until the whole answer, or a stream's headers): 10 minutes.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
    /// Default idle timeout of a stream (no event carrying data): 5 minutes.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// Default time limit of a whole stream, from the request to its end marker: 15 minutes.
    pub const DEFAULT_STREAM_TIMEOUT: Duration = Duration::from_secs(900);
    /// Default size limit of a whole (not streamed) answer body: 16 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
    /// Default part of an error body that is read: 64 KiB.
    pub const DEFAULT_MAX_ERROR_BODY_BYTES: usize = 64 << 10;
    /// Default size limit of one stream event: 8 MiB.
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 8 << 20;
    /// Default size limit of a whole stream: 64 MiB.
    pub const DEFAULT_MAX_STREAM_BYTES: usize = 64 << 20;

    /// Settings for `model` at `base_url`, no key and default timeouts. Requests use the HTTP
    /// client (one connection pool) shared by all models on the tokio runtime that sends them,
    /// so a model can be built outside a runtime and used on several.
    pub fn new(base_url: String, model: String) -> Self {
        Self {
            client: None,
            base_url,
            model,
            api_key: None,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            temperature: None,
            max_tokens: None,
            stream_timeout: Self::DEFAULT_STREAM_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_error_body_bytes: Self::DEFAULT_MAX_ERROR_BODY_BYTES,
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
            max_stream_bytes: Self::DEFAULT_MAX_STREAM_BYTES,
            allow_plain_http: false,
        }
    }

    /// Uses this HTTP client (proxies, custom roots...) instead of the runtime's shared one.
    ///
    /// Its connection pool is driven by the runtime that opened each connection: use it on one
    /// runtime (see [`new`](Self::new)). Build it with `redirect(reqwest::redirect::Policy::none())`
    /// as the shared client is: a redirect it follows takes the `x-api-key` header along.
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The client a request is sent with: the one given, else the current runtime's.
    pub(crate) fn client(&self) -> reqwest::Client {
        self.client.clone().unwrap_or_else(runtime_client)
    }

    /// Sends this key.
    pub fn with_api_key(mut self, key: Option<ApiKey>) -> Self {
        self.api_key = key;
        self
    }

    /// A whole answer (or a stream's response headers) must arrive within `timeout`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A stream fails with [`ModelError::Timeout`] when no event carrying data (text, a tool
    /// call, usage, the end) arrives for `timeout`; comments and pings do not reset it.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A stream fails with [`ModelError::DeadlineExceeded`] when it has not ended `timeout`
    /// after its request was sent, however steadily it trickles.
    pub fn with_stream_timeout(mut self, timeout: Duration) -> Self {
        self.stream_timeout = timeout;
        self
    }

    /// A whole answer body larger than `bytes` fails with [`ModelError::ResponseTooLarge`]
    /// (checked as it is read, and against its `content-length` before).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Reads at most `bytes` of an error answer's body (its message explains a 400); the rest
    /// is dropped and the error is classified from its status, headers and what was read.
    pub fn with_max_error_body_bytes(mut self, bytes: usize) -> Self {
        self.max_error_body_bytes = bytes;
        self
    }

    /// A stream event (all its `data:` lines, or one line that never ends) larger than `bytes`
    /// fails with [`ModelError::ResponseTooLarge`].
    pub fn with_max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// A stream larger than `bytes` in all fails with [`ModelError::ResponseTooLarge`].
    pub fn with_max_stream_bytes(mut self, bytes: usize) -> Self {
        self.max_stream_bytes = bytes;
        self
    }

    /// Allows a base URL over plain `http://` to a host other than the loopback (a gateway on a
    /// private network, say). Without it such a URL is refused with
    /// [`ConfigError::PlainHttp`](super::ConfigError::PlainHttp): the key and the conversation
    /// would cross the network unencrypted.
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Checks the base URL (see [`allow_plain_http`](Self::allow_plain_http)).
    pub(crate) fn check_base_url(&self) -> Result<(), ConfigError> {
        check_base_url(&self.base_url, self.allow_plain_http)
    }

    /// One whole-answer call: sends `request` and reads its JSON body, within the request
    /// timeout and the body limits.
    pub(crate) async fn call_json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(serde_json::Value, Option<RateLimitStatus>), ModelError> {
        self.check_base_url()?;
        let call = async {
            let response = http::send(request, self.max_error_body_bytes).await?;
            let limits = http::rate_limits(response.headers(), std::time::SystemTime::now());
            Ok((http::read_json(response, self.max_body_bytes).await?, limits))
        };
        tokio::time::timeout(self.request_timeout, call)
            .await
            .map_err(|_| ModelError::Timeout)?
    }

    /// One streamed call: sends `request` (its answer's headers within the request timeout) and
    /// decodes its events with `decoder`, within the stream limits.
    pub(crate) async fn open_stream(
        &self,
        request: reqwest::RequestBuilder,
        decoder: impl Decoder,
    ) -> Result<EventStream, ModelError> {
        self.check_base_url()?;
        let timeouts = StreamTimeouts::starting_now(self.idle_timeout, self.stream_timeout);
        let response = tokio::time::timeout(self.request_timeout, http::send(request, self.max_error_body_bytes))
            .await
            .map_err(|_| ModelError::Timeout)??;
        let reader = SseReader::new(response.bytes_stream(), self.max_event_bytes, self.max_stream_bytes);
        Ok(http::drive(reader, decoder, Some(timeouts)))
    }

    /// The temperature used when a request sets none.
    pub fn with_temperature(mut self, temperature: Option<f32>) -> Self {
        self.temperature = temperature;
        self
    }

    /// The token limit used when a request sets none.
    pub fn with_max_tokens(mut self, max_tokens: Option<u32>) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.model
    }
}
