//! [`ModelError`]: every way a model call fails, and whether retrying can help.

use std::time::Duration;

use warden_resilience::circuit_breaker::CallNotPermitted;
use warden_resilience::{Overloaded, Throttled, Transient};

/// Why a model call failed.
///
/// Each kind says whether it is **transient** (the same request may succeed later, so the
/// [`RetryPolicy`](super::RetryPolicy) retries it) or **permanent**. [`is_transient`](Self::is_transient)
/// answers that, honouring the provider's `x-should-retry` header where one was sent.
///
/// Errors never contain the API key, the auth header or the prompt; an error message from the
/// provider is kept (truncated) because it explains a 400.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// HTTP 429: too many requests or tokens per minute. Transient.
    #[error("rate limited by the provider{}", said(message))]
    RateLimited {
        /// What the provider said (its error message, or the start of a body that is not
        /// JSON), truncated to 500 characters, with anything that looks like a key removed;
        /// empty if it said nothing.
        message: String,
        /// How long the provider asked to wait (`retry-after-ms` / `retry-after`).
        retry_after: Option<Duration>,
        /// The provider's `x-should-retry` header, if sent.
        should_retry: Option<bool>,
    },
    /// A quota or spend limit is exhausted (429 `insufficient_quota`, 402, Anthropic's "credit
    /// balance is too low" or "reached your specified API usage limits"). Permanent: retrying only spends more requests; a fallback model at
    /// another provider may still answer.
    #[error("quota or spend limit exceeded")]
    QuotaExceeded,
    /// HTTP 529 or an in-stream `overloaded_error`: the provider is overloaded. Transient.
    #[error("provider overloaded{}", said(message))]
    Overloaded {
        /// What the provider said (its error message, or the start of a body that is not
        /// JSON), truncated to 500 characters, with anything that looks like a key removed;
        /// empty if it said nothing.
        message: String,
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
        /// The provider's `x-should-retry` header, if sent.
        should_retry: Option<bool>,
    },
    /// HTTP 5xx (other than 529), or 408/409, which providers ask clients to retry. Transient.
    #[error("provider error: http {status}{}", said(message))]
    Server {
        /// The HTTP status.
        status: u16,
        /// What the provider said (its error message, or the start of a body that is not
        /// JSON), truncated to 500 characters, with anything that looks like a key removed;
        /// empty if it said nothing.
        message: String,
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
        /// The provider's `x-should-retry` header, if sent.
        should_retry: Option<bool>,
    },
    /// Any other 4xx: the request is wrong (bad schema, unknown model, context too long...).
    /// Permanent, unless the provider sent `x-should-retry: true`.
    #[error("request rejected: http {status}{}", said(message))]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The provider's error message (truncated to 500 characters).
        message: String,
        /// The provider's `x-should-retry` header, if sent.
        should_retry: Option<bool>,
    },
    /// HTTP 401/403: the key is missing, wrong or lacks permission. Permanent, unless the
    /// provider sent `x-should-retry: true`.
    #[error("authentication failed: http {status}{}", said(message))]
    Authentication {
        /// The HTTP status.
        status: u16,
        /// What the provider said (its error message, or the start of a body that is not
        /// JSON), truncated to 500 characters, with anything that looks like a key removed;
        /// empty if it said nothing.
        message: String,
        /// The provider's `x-should-retry` header, if sent.
        should_retry: Option<bool>,
    },
    /// No answer in time: the request timeout, or a stream without progress (no event that
    /// carries data; comments and pings do not count) for longer than the idle timeout. Transient.
    #[error("model call timed out")]
    Timeout,
    /// The connection failed or dropped before a response arrived. Transient.
    #[error("connection to the provider failed")]
    Connection(#[source] reqwest::Error),
    /// A stream ended (or the connection dropped) before its end marker: what arrived is
    /// incomplete and is not returned as a success. Transient for a new request.
    #[error("stream interrupted before its end marker")]
    StreamInterrupted {
        /// The transport error, if the connection broke (none if the stream just ended).
        #[source]
        source: Option<reqwest::Error>,
    },
    /// A response (or stream event) that is not the provider's format, such as invalid JSON or
    /// a proxy's HTML page answered with 200. Permanent (not retried), but a fallback model is
    /// tried: the answer may come from something in front of the provider.
    #[error("malformed response from the provider: {detail}")]
    MalformedResponse {
        /// What was wrong (no response content).
        detail: String,
    },
    /// Structured output: the model's JSON did not match the type, also after the repair rounds.
    /// Permanent.
    #[error("structured output invalid after {attempts} attempt(s)")]
    StructuredOutputInvalid {
        /// How many answers were tried.
        attempts: u32,
        /// Why the last one failed to parse.
        #[source]
        source: serde_json::Error,
    },
    /// The model configuration is unusable (unknown provider, missing key variable, bad file).
    /// Permanent.
    #[error("model configuration: {0}")]
    Config(#[from] ConfigError),
    /// A failure raised by code of yours wrapped around the provider (see
    /// [`Model::wrap_provider`](super::Model::wrap_provider)): a middleware, a test double, a
    /// fault injected by `warden-chaos`. Transient or permanent as its maker said
    /// ([`transient`](Self::transient), [`permanent`](Self::permanent)).
    #[error("model call failed")]
    Failed {
        /// Whether retrying the same request may succeed.
        transient: bool,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The answer was larger than its limit (see [`ResponsePart`]); reading stopped there, so a
    /// provider (or a proxy in front of it) cannot make the client buffer without bound.
    /// Permanent (the same request would get the same answer), but a fallback model is tried.
    #[error("{part} larger than {limit} bytes")]
    ResponseTooLarge {
        /// Which part of the answer went over its limit.
        part: ResponsePart,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A deadline passed (see [`Deadline`]). Transient for a new call; not retried nor passed to
    /// the fallback within the call, whose time is up.
    #[error("{deadline} of {limit:?} exceeded")]
    DeadlineExceeded {
        /// Which deadline.
        deadline: Deadline,
        /// Its length.
        limit: Duration,
    },
    /// The model's circuit breaker ([`Model::with_circuit_breaker`](super::Model::with_circuit_breaker))
    /// is open: the provider kept failing, so calls fail at once, without a request, until
    /// `retry_after`. Transient; a fallback model is tried.
    #[error("the model's circuit breaker is open{}", match retry_after { Some(d) => format!(", retry after {d:?}"), None => String::new() })]
    CircuitOpen {
        /// How long until the breaker lets a trial call through.
        retry_after: Option<Duration>,
    },
    /// The model's client-side rate limit ([`Model::with_rate_limit`](super::Model::with_rate_limit))
    /// has no permit for this request within the wait the model allows. No request was sent.
    /// Transient; a fallback model is tried.
    #[error("client-side rate limit reached, next permit in {retry_after:?}")]
    Throttled {
        /// When the limiter would have a permit.
        retry_after: Duration,
    },
    /// The model's concurrency limit ([`Model::with_concurrency_limit`](super::Model::with_concurrency_limit))
    /// is full, its queue too. No request was sent. Transient; a fallback model is tried.
    #[error("too many model calls: {in_flight} in flight and {queued} waiting, the most allowed")]
    ConcurrencyLimited {
        /// Calls allowed at once.
        in_flight: usize,
        /// Calls allowed to wait.
        queued: usize,
    },
    /// The model's [`Budget`](super::Budget) is spent: no request was sent. Permanent for
    /// this budget (no retry, no fallback: the fallback would spend the same budget); an
    /// agent whose turn fails with it escalates at once.
    #[error("budget {budget:?} exceeded: spent {spent}")]
    BudgetExceeded {
        /// The budget's name.
        budget: String,
        /// What it had spent.
        spent: super::Spend,
    },
    /// The provider answered with a redirect (3xx), which model clients do not follow: it could
    /// take the key to another host. Permanent: fix the base URL.
    #[error("provider answered with a redirect (http {status}), which is not followed")]
    Redirected {
        /// The HTTP status.
        status: u16,
    },
}

/// The part of an answer that a [`ModelError::ResponseTooLarge`] is about; each has its own
/// limit in [`HttpSettings`](super::HttpSettings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponsePart {
    /// A whole (not streamed) answer body.
    Body,
    /// One server-sent event of a stream (all its lines, or one line that never ends).
    Event,
    /// A whole stream, all events together.
    Stream,
}

impl std::fmt::Display for ResponsePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Body => "response body",
            Self::Event => "stream event",
            Self::Stream => "stream",
        })
    }
}

/// Which deadline a [`ModelError::DeadlineExceeded`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deadline {
    /// The whole model call, across its attempts, the waits between them and the fallback
    /// ([`Model::with_call_timeout`](super::Model::with_call_timeout)).
    Call,
    /// A whole stream, from the request to its end marker
    /// ([`HttpSettings::with_stream_timeout`](super::HttpSettings::with_stream_timeout)).
    Stream,
}

impl std::fmt::Display for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Call => "model call deadline",
            Self::Stream => "stream time limit",
        })
    }
}

impl ModelError {
    /// Whether retrying the same request may succeed (see each kind).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { should_retry, .. }
            | Self::Overloaded { should_retry, .. }
            | Self::Server { should_retry, .. } => should_retry.unwrap_or(true),
            Self::BadRequest { should_retry, .. } | Self::Authentication { should_retry, .. } => {
                should_retry.unwrap_or(false)
            }
            Self::Failed { transient, .. } => *transient,
            Self::Timeout
            | Self::Connection(_)
            | Self::StreamInterrupted { .. }
            | Self::DeadlineExceeded { .. }
            | Self::CircuitOpen { .. }
            | Self::Throttled { .. }
            | Self::ConcurrencyLimited { .. } => true,
            Self::QuotaExceeded
            | Self::MalformedResponse { .. }
            | Self::StructuredOutputInvalid { .. }
            | Self::Config(_)
            | Self::ResponseTooLarge { .. }
            | Self::Redirected { .. }
            | Self::BudgetExceeded { .. } => false,
        }
    }

    /// A transient failure of code wrapped around the provider: retried like a 503.
    pub fn transient(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Failed {
            transient: true,
            source: source.into(),
        }
    }

    /// A permanent failure of code wrapped around the provider: not retried.
    pub fn permanent(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Failed {
            transient: false,
            source: source.into(),
        }
    }

    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// How long the provider asked to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. }
            | Self::Overloaded { retry_after, .. }
            | Self::Server { retry_after, .. }
            | Self::CircuitOpen { retry_after } => *retry_after,
            Self::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The HTTP status, for errors that came with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::RateLimited { .. } => Some(429),
            Self::Overloaded { .. } => Some(529),
            Self::Server { status, .. } | Self::BadRequest { status, .. } | Self::Authentication { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Whether a fallback model should be tried after this error (with retries exhausted):
    /// failures of the provider (rate limits, overload, server errors, timeouts, connection
    /// errors, interrupted streams, transient failures of a wrapper), quota exhaustion, and answers that are
    /// not the provider's (garbage such as a proxy's HTML page, or one too large); not errors
    /// in the request or the configuration, nor a passed call deadline (no time is left).
    ///
    /// `x-should-retry: false` forbids retrying *this* provider, not trying another: a 503 or
    /// 429 that says so still warrants the fallback.
    pub fn warrants_fallback(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Overloaded { .. }
            | Self::Server { .. }
            | Self::QuotaExceeded
            | Self::Timeout
            | Self::Connection(_)
            | Self::StreamInterrupted { .. }
            | Self::MalformedResponse { .. }
            | Self::ResponseTooLarge { .. }
            | Self::CircuitOpen { .. }
            | Self::Throttled { .. }
            | Self::ConcurrencyLimited { .. } => true,
            Self::BadRequest { .. } | Self::Authentication { .. } | Self::Failed { .. } => self.is_transient(),
            Self::StructuredOutputInvalid { .. }
            | Self::Config(_)
            | Self::DeadlineExceeded { .. }
            | Self::Redirected { .. }
            | Self::BudgetExceeded { .. } => false,
        }
    }

    /// A stable, lowercase name of the kind, for logs and metrics (`"rate_limited"`...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Overloaded { .. } => "overloaded",
            Self::Server { .. } => "server",
            Self::BadRequest { .. } => "bad_request",
            Self::Authentication { .. } => "authentication",
            Self::Timeout => "timeout",
            Self::Connection(_) => "connection",
            Self::StreamInterrupted { .. } => "stream_interrupted",
            Self::MalformedResponse { .. } => "malformed_response",
            Self::StructuredOutputInvalid { .. } => "structured_output_invalid",
            Self::Config(_) => "config",
            Self::Failed { .. } => "failed",
            Self::ResponseTooLarge { .. } => "response_too_large",
            Self::DeadlineExceeded { .. } => "deadline_exceeded",
            Self::Redirected { .. } => "redirected",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Throttled { .. } => "throttled",
            Self::ConcurrencyLimited { .. } => "concurrency_limited",
            Self::BudgetExceeded { .. } => "budget_exceeded",
        }
    }
}

/// What the resilience layers ([`warden_resilience`]) read of a model error.
impl Transient for ModelError {
    /// [`ModelError::is_transient`], except a passed deadline: the call's time is up.
    fn is_transient(&self) -> bool {
        ModelError::is_transient(self) && !matches!(self, Self::DeadlineExceeded { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        ModelError::retry_after(self)
    }

    /// A model request has no side effect to repeat (besides its cost).
    fn retry_is_safe(&self) -> bool {
        true
    }

    /// The provider's failures count against the model's breaker; errors in the request or
    /// the configuration, a passed deadline, and refusals by the model's own limits do not.
    fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Overloaded { .. }
                | Self::Server { .. }
                | Self::Timeout
                | Self::Connection(_)
                | Self::StreamInterrupted { .. }
                | Self::MalformedResponse { .. }
                | Self::ResponseTooLarge { .. }
        ) || matches!(self, Self::Failed { transient: true, .. })
    }
}

impl From<CallNotPermitted> for ModelError {
    fn from(rejected: CallNotPermitted) -> Self {
        Self::CircuitOpen {
            retry_after: rejected.retry_after,
        }
    }
}

impl From<Throttled> for ModelError {
    fn from(throttled: Throttled) -> Self {
        Self::Throttled {
            retry_after: throttled.retry_after,
        }
    }
}

impl From<Overloaded> for ModelError {
    fn from(refused: Overloaded) -> Self {
        Self::ConcurrencyLimited {
            in_flight: refused.in_flight,
            queued: refused.queued,
        }
    }
}

/// `": <message>"`, or nothing when the provider said nothing.
fn said(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Why a [`ModelConfig`](super::ModelConfig) could not be loaded or turned into a model. Permanent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The provider name is not one this crate knows.
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    /// A required setting is missing (such as the model name).
    #[error("missing setting `{0}`")]
    Missing(&'static str),
    /// The variable that should hold the API key is not set.
    #[error("api key variable `{0}` is not set")]
    MissingApiKey(String),
    /// The config file could not be read.
    #[error("cannot read config file")]
    Io(#[from] std::io::Error),
    /// The file extension is not `.toml`, `.yaml` or `.yml`.
    #[error("config file must end in .toml, .yaml or .yml")]
    UnknownFormat,
    /// The TOML did not parse.
    #[error("invalid toml config")]
    Toml(#[from] toml::de::Error),
    /// The YAML did not parse.
    #[error("invalid yaml config")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A number in an environment variable did not parse.
    #[error("variable `{0}` is not a valid number")]
    InvalidNumber(&'static str),
    /// The HTTP client could not be built.
    #[error("cannot build http client")]
    Client(#[source] reqwest::Error),
    /// The base URL does not parse (the URL itself is not repeated: it may hold a secret).
    #[error("base url is not a valid url")]
    InvalidBaseUrl,
    /// The base URL is plain `http://` to a host other than the loopback: the key and the
    /// conversation would cross the network unencrypted. Use `https://`, or opt in with
    /// `allow_plain_http` ([`HttpSettings::allow_plain_http`](super::HttpSettings::allow_plain_http)).
    #[error("plain http to non-loopback host `{host}` needs allow_plain_http")]
    PlainHttp {
        /// The host the URL names.
        host: String,
    },
    /// The API key cannot be sent as an HTTP header value (it holds a control character).
    #[error("api key is not a valid header value")]
    InvalidApiKey,
}
