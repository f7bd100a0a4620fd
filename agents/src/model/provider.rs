//! The [`ChatModel`] trait every provider implements, and the [`HttpSettings`] both HTTP providers share.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use super::config::ApiKey;
use super::error::ModelError;
use super::stream::StreamEvent;
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

fn build_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default()
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

/// HTTP settings of a provider: endpoint, model, key, timeouts and sampling defaults.
///
/// `Debug` never shows the key.
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
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl HttpSettings {
    /// Default request timeout (until the whole answer, or a stream's headers): 10 minutes.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
    /// Default idle timeout between two chunks of a stream: 5 minutes.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

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
        }
    }

    /// Uses this HTTP client (proxies, custom roots...) instead of the runtime's shared one.
    ///
    /// Its connection pool is driven by the runtime that opened each connection: use it on one
    /// runtime (see [`new`](Self::new)).
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

    /// A stream fails with [`ModelError::Timeout`] when no chunk arrives for `timeout`.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
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
