//! Models: provider-neutral chat with tools, over HTTP.
//!
//! An agent talks to its LLM through a [`Model`]: a cheap-to-clone handle around one
//! provider client that adds the retry policy, an optional fallback model, fault injection,
//! tracing, the tool-call-id rule and structured output. The conversation is provider-neutral
//! ([`Message`]s of [`ContentBlock`]s: text, tool use, tool result, image) and so is the answer
//! ([`ChatResponse`]: content blocks, [`StopReason`], [`Usage`]); two wire formats are spoken:
//!
//! - [`OpenAiChat`]: OpenAI chat completions, which also serves DeepSeek, Qwen (DashScope's
//!   compatible mode), vLLM, Ollama's `/v1`, LM Studio and most others through a base URL;
//! - [`AnthropicMessages`]: the Anthropic Messages API.
//!
//! # Building a model
//!
//! From a file or the environment with [`ModelConfig`] (provider, model, base URL and the
//! *name* of the variable holding the key), or in code:
//!
//! ```no_run
//! use warden_agents::model::{Model, ModelConfig, OpenAiChat, ApiKey, RetryPolicy};
//!
//! # fn main() -> Result<(), warden_agents::model::ModelError> {
//! let from_file = ModelConfig::from_file("model.toml")?.build()?;
//! let from_env = ModelConfig::from_env()?.build()?; // WARDEN_MODEL_PROVIDER, WARDEN_MODEL, ...
//! let in_code = Model::new(OpenAiChat::new("http://localhost:11434/v1", "qwen2.5:7b"))
//!     .with_retry(RetryPolicy::new(4))
//!     .with_fallback(from_env.clone());
//! # Ok(()) }
//! ```
//!
//! # Calling it, streaming, structured output
//!
//! # Servers tested
//!
//! OpenAI's and Anthropic's wire formats against the fake provider (every test), and a real
//! OpenAI-compatible server in CI: llama-cpp-python 0.3.36 (`--chat_format
//! chatml-function-calling`) with SmolLM2-135M-Instruct (`tests/real_model/run.sh`): plain and
//! streamed chat, structured output (the server refuses `json_schema`; [`StructuredOutput::Auto`]
//! falls back to `json_object`, which it constrains to the schema; [`StructuredMode::ToolCall`]
//! works too), a forced tool call, a supervised ReAct agent with a tool, and the
//! research_team demo. What it taught: an assistant message that carries tool calls is sent
//! with `""` content, not `null` (the server refuses `null`).
//!
//! The ways other OpenAI-compatible servers differ are played by the fake provider's
//! `Quirks` and handled, whole and streamed, with a ReAct agent running to its answer on each
//! (`agents/tests/model_quirks.rs`): tool calls without ids (some llama.cpp builds and
//! proxies), arguments as JSON objects (some Ollama and vLLM versions), the legacy
//! `function_call` form, and streams without usage. Rate-limit headers of both formats are
//! read ([`ChatResponse::rate_limits`]). vLLM, Ollama and LM Studio themselves were not run
//! here.
//!
//! The example below runs against the fake provider (the `warden-fake-provider` crate), which is also how
//! to test your own agents: it speaks both wire formats on 127.0.0.1, plays a script of replies
//! and faults, and records every request.
//!
//! ```
//! use futures::StreamExt;
//! use serde::Deserialize;
//! use warden_agents::model::{self, ChatRequest, Message, Model, OpenAiChat, RetryPolicy, StreamEvent};
//! use warden_fake_provider::{FakeProvider, Fault, Answer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), model::ModelError> {
//! let fake = FakeProvider::start().await;
//! let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"))
//!     .with_retry(RetryPolicy::default().backoff(std::time::Duration::from_millis(1), std::time::Duration::from_millis(4)));
//!
//! // A whole answer; the 503 is retried.
//! fake.push(Fault::Status(503));
//! fake.push(Answer::text("Hello!"));
//! let request = ChatRequest::new(vec![Message::system("Be brief."), Message::user("Hi")]);
//! let answer = model.chat(&request).await?;
//! assert_eq!(answer.text(), "Hello!");
//! assert_eq!(fake.request_count(), 2);
//!
//! // A stream of deltas (or `model::collect` to fold them into a `ChatResponse`).
//! fake.push(Answer::text("Streaming works."));
//! let mut stream = model.stream(&request).await?;
//! let mut text = String::new();
//! while let Some(event) = stream.next().await {
//!     if let StreamEvent::TextDelta { text: delta } = event? {
//!         text.push_str(&delta);
//!     }
//! }
//! assert_eq!(text, "Streaming works.");
//!
//! // Structured output: the schema comes from the type, the answer is parsed into it.
//! #[derive(Deserialize, schemars::JsonSchema)]
//! struct City { name: String, population: u64 }
//! fake.push(Answer::json(serde_json::json!({"name": "Lyon", "population": 522_000})));
//! let city = model.chat_structured::<City>(&ChatRequest::new(vec![Message::user("Lyon?")])).await?;
//! assert_eq!(city.value.name, "Lyon");
//! # Ok(()) }
//! ```
//!
//! # Failures
//!
//! Every failure is a [`ModelError`] that says which case happened and whether it is transient.
//! Only [`Model`] retries (providers never do), following the providers' rules (see
//! [`RetryPolicy`]). A stream cut off before its end marker is a
//! [`ModelError::StreamInterrupted`], never a truncated success. Keys never appear in errors,
//! `Debug` output or traces, nor do the user info and query of a base URL ([`redacted_url`]).
//!
//! # Limits
//!
//! Nothing a provider sends can make a call hold memory or time without bound: a whole call,
//! retries and fallback included, ends at [`Model::call_timeout`]; bodies, error
//! bodies, stream events and whole streams are read up to the limits of [`HttpSettings`]
//! ([`ModelError::ResponseTooLarge`]); a stream ends when no event carrying data came for its
//! idle timeout (comments and pings do not count) and at its total time limit. A
//! [`RetryBudget`] bounds retries across calls. Model clients follow no redirects
//! ([`ModelError::Redirected`]: a gateway's 307 must not take the key elsewhere), and refuse a
//! plain `http://` base URL to a host other than the loopback unless allowed
//! ([`ConfigError::PlainHttp`]).
//!
//! # Tool calls
//!
//! Tools are described by [`ToolSpec`] (name, description, JSON Schema; `ToolSpec::from` a
//! [`warden_tools::ToolSchema`]). A call is answered with [`ContentBlock::tool_outcome`] (what a
//! tool executor returned, an error result when the tool failed or timed out), or
//! [`ContentBlock::tool_result`] / [`ContentBlock::tool_error`]. Every tool call in a
//! conversation must be answered before the next request, or providers reject the history;
//! [`Model::chat`] and [`Model::stream`] add a synthetic error result for any call left
//! unanswered (a tool that failed, timed out, or an agent restarted mid-turn), see
//! [`close_dangling_tool_calls`].

mod anthropic;
mod budget;
mod config;
mod error;
mod http;
mod openai;
mod provider;
mod stream;
mod structured;
mod types;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use tracing::Instrument;
use warden_resilience::circuit_breaker::{ByTransient, CircuitBreakerLayer, SharedCircuitBreaker};
use warden_resilience::tower::{Service, ServiceBuilder, ServiceExt};
use warden_resilience::{ConcurrencyLimitLayer, ConcurrencyLimiter, Priority, RateLimitLayer, RateLimiter, RetryLayer};

pub use anthropic::{ANTHROPIC_VERSION, AnthropicMessages, DEFAULT_MAX_TOKENS};
pub use budget::{Budget, Price, Spend};
pub use config::{ApiKey, ModelConfig, Provider};
pub use error::{ConfigError, Deadline, ModelError, ResponsePart};
pub use openai::OpenAiChat;
pub use provider::{ChatModel, EventStream, HttpSettings, redacted_url};
pub use stream::{StreamAssembler, StreamEvent, collect};
pub use structured::Structured;
pub(crate) use structured::{Repairs, json_text, schema_name};
pub use types::{
    ChatRequest, ChatResponse, ContentBlock, INTERRUPTED_TOOL_RESULT, Message, RateLimitStatus, ResponseFormat, Role,
    StopReason, StructuredMode, StructuredOutput, ToolChoice, ToolSpec, Usage, close_dangling_tool_calls,
};
pub use warden_resilience::{RetryBudget, RetryPolicy};

/// The span of one model call, named `model.chat` or `model.stream` (a span's name must be a
/// literal), with OpenTelemetry's GenAI attributes and the fields recorded as it ends.
macro_rules! model_span {
    ($model:expr, $name:literal) => {
        tracing::info_span!(
            target: "warden::model",
            $name,
            otel.name = %format_args!("chat {}", $model.name()),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = $model.inner.provider.provider_name(),
            gen_ai.request.model = %$model.name(),
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            cost = tracing::field::Empty,
            breaker = tracing::field::Empty,
            attempts = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    };
}

/// The model handle agents hold: a provider with a retry policy and an optional fallback. Cloning is cheap (an `Arc`); clones share everything.
///
/// It implements [`ChatModel`] itself, so it can stand wherever a provider is expected.
#[derive(Clone)]
pub struct Model {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    provider: Arc<dyn ChatModel>,
    retry: RetryPolicy,
    call_timeout: Duration,
    fallback: Option<Model>,
    repair_rounds: u32,
    budget: Option<RetryBudget>,
    breaker: Option<SharedCircuitBreaker>,
    concurrency: Option<ConcurrencyLimiter>,
    rate: Option<(RateLimiter, Duration)>,
    tokens: Option<(RateLimiter, Duration)>,
    spending: Option<Budget>,
    price: Price,
    priority: Priority,
    structured: StructuredOutput,
    /// With [`StructuredOutput::Auto`]: the mode that works so far, shared by clones.
    learned: Arc<std::sync::Mutex<StructuredMode>>,
}

/// What one call shares with its fallback: the deadline and the retry budget.
struct Call {
    deadline: tokio::time::Instant,
    limit: std::time::Duration,
    budget: Option<RetryBudget>,
}

impl Call {
    /// A call to `model` starting now, under its call timeout and its budget.
    fn start(model: &Model) -> Self {
        let limit = model.inner.call_timeout;
        let now = tokio::time::Instant::now();
        Self {
            // A deadline too far to represent is no deadline (about 30 years away).
            deadline: now.checked_add(limit).unwrap_or_else(|| now + FAR_FUTURE),
            limit,
            budget: model.inner.budget.clone(),
        }
    }

    fn exceeded(&self) -> ModelError {
        ModelError::DeadlineExceeded {
            deadline: error::Deadline::Call,
            limit: self.limit,
        }
    }

    /// The time left until the deadline.
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(tokio::time::Instant::now())
    }

    /// Runs `fut` within the call's deadline.
    async fn within<T>(&self, fut: impl Future<Output = Result<T, ModelError>>) -> Result<T, ModelError> {
        tokio::time::timeout_at(self.deadline, fut)
            .await
            .unwrap_or_else(|_| Err(self.exceeded()))
    }
}

/// One request as the resilience layers see it: cheap to clone for each attempt, with the
/// count of attempts made for the call's span.
#[derive(Clone)]
struct Attempt {
    req: Arc<ChatRequest>,
    attempts: Arc<AtomicU32>,
}

/// Whole answers ([`ChatModel::chat`]).
struct Whole;
/// Streams ([`ChatModel::stream`]).
struct Streamed;

/// The innermost service: one attempt at the provider. A rate limit it meets anyway (a 429
/// with a `Retry-After`) holds the model's client-side limiter, if any, until then.
struct ProviderCall<Op> {
    provider: Arc<dyn ChatModel>,
    limiter: Option<RateLimiter>,
    tokens: Option<(RateLimiter, Duration)>,
    priority: Priority,
    op: PhantomData<fn() -> Op>,
}

impl<Op> Clone for ProviderCall<Op> {
    fn clone(&self) -> Self {
        Self {
            provider: self.provider.clone(),
            limiter: self.limiter.clone(),
            tokens: self.tokens.clone(),
            priority: self.priority,
            op: PhantomData,
        }
    }
}

/// What a request costs against a tokens-per-minute limit, as providers count it: the
/// prompt's estimate (a token per 4 bytes of its messages and tools as JSON) plus the
/// `max_tokens` it asks for.
fn estimated_tokens(req: &ChatRequest) -> u32 {
    let bytes = serde_json::to_vec(&req.messages).map_or(0, |b| b.len())
        + serde_json::to_vec(&req.tools).map_or(0, |b| b.len());
    let prompt = u32::try_from(bytes.div_ceil(4)).unwrap_or(u32::MAX);
    prompt.saturating_add(req.max_tokens.unwrap_or(0))
}

impl<Op: Operation> ProviderCall<Op> {
    /// What an answer says of the provider's limits: a 429's `Retry-After`, or rate-limit
    /// headers with nothing left, hold the limiters until the reset.
    fn observe(&self, result: &Result<Op::Output, ModelError>) {
        let (requests, tokens) = match result {
            Err(ModelError::RateLimited {
                retry_after: Some(wait),
                ..
            }) => (Some(*wait), None),
            Ok(output) => match Op::rate_limits(output) {
                Some(status) => (
                    status.requests_reset.filter(|_| status.requests_remaining == Some(0)),
                    status.tokens_reset.filter(|_| status.tokens_remaining == Some(0)),
                ),
                None => (None, None),
            },
            Err(_) => (None, None),
        };
        match (&self.tokens, tokens) {
            (Some((limiter, _)), Some(wait)) => limiter.exhaust_for(wait),
            // Without a token limiter, no tokens left holds the requests.
            (None, Some(wait)) => {
                if let Some(limiter) = &self.limiter {
                    limiter.exhaust_for(wait);
                }
            }
            (_, None) => {}
        }
        if let (Some(limiter), Some(wait)) = (&self.limiter, requests) {
            limiter.exhaust_for(wait);
        }
    }
}

/// What one attempt asks of the provider.
trait Operation: 'static {
    /// What the provider answers.
    type Output: Send + 'static;
    /// Asks it.
    fn run<'a>(provider: &'a dyn ChatModel, req: &'a ChatRequest) -> BoxFuture<'a, Result<Self::Output, ModelError>>;
    /// What the answer's rate-limit headers said.
    fn rate_limits(_output: &Self::Output) -> Option<RateLimitStatus> {
        None
    }
}

impl Operation for Whole {
    type Output = ChatResponse;
    fn run<'a>(provider: &'a dyn ChatModel, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        provider.chat(req)
    }

    fn rate_limits(output: &ChatResponse) -> Option<RateLimitStatus> {
        output.rate_limits
    }
}

impl Operation for Streamed {
    type Output = EventStream;
    fn run<'a>(provider: &'a dyn ChatModel, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        provider.stream(req)
    }
}

impl<Op: Operation> Service<Attempt> for ProviderCall<Op> {
    type Response = Op::Output;
    type Error = ModelError;
    type Future = BoxFuture<'static, Result<Op::Output, ModelError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ModelError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, attempt: Attempt) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if let Some((tokens, max_wait)) = &this.tokens {
                tokens
                    .acquire(estimated_tokens(&attempt.req), this.priority, *max_wait)
                    .await?;
            }
            attempt.attempts.fetch_add(1, Ordering::Relaxed);
            let result = Op::run(&*this.provider, &attempt.req).await;
            this.observe(&result);
            result
        })
    }
}

/// Stands for "no deadline": far enough never to come, near enough to add to an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("provider", &self.inner.provider)
            .field("retry", &self.inner.retry)
            .field("call_timeout", &self.inner.call_timeout)
            .field("fallback", &self.inner.fallback)
            .field("repair_rounds", &self.inner.repair_rounds)
            .field("budget", &self.inner.budget)
            .field("breaker", &self.inner.breaker)
            .field("concurrency", &self.inner.concurrency)
            .field("rate", &self.inner.rate)
            .field("tokens", &self.inner.tokens)
            .field("spending", &self.inner.spending)
            .field("price", &self.inner.price)
            .field("priority", &self.inner.priority)
            .finish()
    }
}

impl Model {
    /// The default [`call_timeout`](Self::call_timeout): 10 minutes.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);

    /// A model over `provider`, with the default [`RetryPolicy`], no fallback and one
    /// structured-output repair round.
    pub fn new(provider: impl ChatModel) -> Self {
        Self::from_arc(Arc::new(provider))
    }

    /// Like [`new`](Self::new), for a provider already in an `Arc`.
    pub fn from_arc(provider: Arc<dyn ChatModel>) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                retry: RetryPolicy::default(),
                call_timeout: Self::DEFAULT_CALL_TIMEOUT,
                fallback: None,
                repair_rounds: 1,
                budget: None,
                breaker: None,
                concurrency: None,
                rate: None,
                tokens: None,
                spending: None,
                price: Price::default(),
                priority: Priority::Normal,
                structured: StructuredOutput::Auto,
                learned: Arc::new(std::sync::Mutex::new(StructuredMode::default())),
            }),
        }
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The same model with this retry policy (the one [`RetryPolicy`] of tools and every
    /// service: see [`warden_resilience`]). Every model request is idempotent, so every
    /// transient error is retried; no retry's wait ends past the call's deadline.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        self.map(|i| i.retry = retry)
    }

    /// The same model with this deadline for a whole call, across its attempts, the waits
    /// between them and the fallback (default [`DEFAULT_CALL_TIMEOUT`](Self::DEFAULT_CALL_TIMEOUT)):
    /// then the call fails with [`ModelError::DeadlineExceeded`].
    pub fn with_call_timeout(self, timeout: Duration) -> Self {
        self.map(|i| i.call_timeout = timeout)
    }

    /// The deadline of a whole call.
    pub fn call_timeout(&self) -> Duration {
        self.inner.call_timeout
    }

    /// The same model behind `breaker` (shared with whoever holds a clone of it): when too
    /// many calls fail (the provider's failures, see [`ModelError`]'s
    /// [`Transient`](warden_resilience::Transient) impl), calls fail at once with
    /// [`ModelError::CircuitOpen`], without a request, and the fallback (if any) answers,
    /// until the breaker lets trial calls through. It counts one outcome per call, after the
    /// retries. The same breaker as a tool stack's
    /// ([`warden_resilience::circuit_breaker`]).
    pub fn with_circuit_breaker(self, breaker: SharedCircuitBreaker) -> Self {
        self.map(|i| i.breaker = Some(breaker))
    }

    /// The same model sending at most the limiter's rate of requests (every attempt takes a
    /// permit), shared by every model and agent given a clone of `limiter`: one key's
    /// requests per minute held on the client side. A request waits up to `max_wait` for its
    /// permit, in the order requests came, else fails with [`ModelError::Throttled`]
    /// (retried like a 429, within the call's deadline). A 429 with a `Retry-After` that
    /// comes anyway, or an answer whose rate-limit headers say nothing is left
    /// ([`ChatResponse::rate_limits`]), holds the limiter until the reset, so that callers
    /// wait instead of storming the provider.
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden_agents::model::{Model, OpenAiChat};
    /// use warden_resilience::{RateLimit, RateLimiter};
    ///
    /// // One key, 600 requests a minute, for every agent that uses a clone of this model.
    /// let limiter = RateLimiter::new(RateLimit::new(600, Duration::from_secs(60)));
    /// let model = Model::new(OpenAiChat::new("http://127.0.0.1:9/v1", "m"))
    ///     .with_rate_limit(limiter, Duration::from_secs(30));
    /// # let _ = model;
    /// ```
    pub fn with_rate_limit(self, limiter: RateLimiter, max_wait: Duration) -> Self {
        self.map(|i| i.rate = Some((limiter, max_wait)))
    }

    /// The same model spending at most the limiter's rate of *tokens* (a tokens-per-minute
    /// limit: build it with `RateLimit::new(tokens_per_minute, Duration::from_secs(60))`),
    /// shared by every model given a clone of `limiter`. Each attempt reserves what the
    /// request costs as providers count it (the prompt's estimate, a token per 4 bytes, plus
    /// its `max_tokens`), waiting up to `max_wait` in the order requests came, else failing
    /// with [`ModelError::Throttled`]. Rate-limit headers saying no tokens are left hold it
    /// until their reset.
    pub fn with_token_rate_limit(self, limiter: RateLimiter, max_wait: Duration) -> Self {
        self.map(|i| i.tokens = Some((limiter, max_wait)))
    }

    /// The same model queueing at its limiters with `priority` (default
    /// [`Priority::Normal`]): a clone given [`Priority::High`] (an orchestrator's planner)
    /// goes ahead of the others on the same limiter (its workers); within a priority, calls
    /// go in the order they came.
    pub fn with_priority(self, priority: Priority) -> Self {
        self.map(|i| i.priority = priority)
    }

    /// The same model spending `budget` (shared with whoever holds a clone: a run, a team, a
    /// tenant): each call is checked before it is sent and fails with
    /// [`ModelError::BudgetExceeded`] once the budget is spent; each answer's usage is added,
    /// at the model's [`Price`] ([`with_price`](Self::with_price)). A fallback spends its own
    /// budget, if it has one.
    pub fn with_budget(self, budget: Budget) -> Self {
        self.map(|i| i.spending = Some(budget))
    }

    /// The same model priced at `price` per million tokens, for its [`Budget`].
    pub fn with_price(self, price: Price) -> Self {
        self.map(|i| i.price = price)
    }

    /// The model's budget, if it has one.
    pub fn budget(&self) -> Option<&Budget> {
        self.inner.spending.as_ref()
    }

    /// Whether the budget, if any, allows another call.
    fn check_budget(&self) -> Result<(), ModelError> {
        match &self.inner.spending {
            Some(budget) => budget.check().map_err(|spent| ModelError::BudgetExceeded {
                budget: budget.name().to_owned(),
                spent,
            }),
            None => Ok(()),
        }
    }

    /// Adds `usage` to the budget, if any.
    fn spend(&self, usage: Usage) {
        if let Some(budget) = &self.inner.spending {
            budget.record(usage, self.inner.price);
        }
    }

    /// The same model with at most `limiter`'s calls in flight at once (shared with whoever
    /// holds a clone), the next ones waiting in its bounded queue; past it a call fails at
    /// once with [`ModelError::ConcurrencyLimited`]. A call holds its slot across its
    /// retries.
    pub fn with_concurrency_limit(self, limiter: ConcurrencyLimiter) -> Self {
        self.map(|i| i.concurrency = Some(limiter))
    }

    /// The circuit breaker, if the model has one.
    pub fn circuit_breaker(&self) -> Option<&SharedCircuitBreaker> {
        self.inner.breaker.as_ref()
    }

    /// The same model with a fallback, tried once this model's retries are used up on a
    /// transient error, on [`ModelError::QuotaExceeded`], or on an answer that is not the
    /// provider's (see [`ModelError::warrants_fallback`]). The fallback keeps its own retry
    /// policy and layers, but runs within this model's call deadline
    /// ([`with_call_timeout`](Self::with_call_timeout)) and spends this model's
    /// [`RetryBudget`] if it has one.
    pub fn with_fallback(self, fallback: Model) -> Self {
        self.map(|i| i.fallback = Some(fallback))
    }

    /// The same model with its provider wrapped by `wrap`: every attempt (each retry, not each
    /// call) goes through the wrapper, under the same retry policy, deadline and fallback. A
    /// wrapper fails an attempt with [`ModelError::transient`] (retried) or
    /// [`ModelError::permanent`]. Middleware of yours (metrics, recording, a test double) and
    /// `warden-chaos`'s fault injection plug in here; the fallback keeps its own provider.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::future::BoxFuture;
    /// use warden_agents::model::{ChatModel, ChatRequest, ChatResponse, EventStream, Model, ModelError, OpenAiChat};
    ///
    /// /// Counts the attempts that reach the provider.
    /// #[derive(Debug)]
    /// struct Counted(Arc<dyn ChatModel>, Arc<std::sync::atomic::AtomicU64>);
    ///
    /// impl ChatModel for Counted {
    ///     fn model_name(&self) -> &str { self.0.model_name() }
    ///     fn provider_name(&self) -> &'static str { self.0.provider_name() }
    ///     fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
    ///         self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ///         self.0.chat(req)
    ///     }
    ///     fn stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
    ///         self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ///         self.0.stream(req)
    ///     }
    /// }
    ///
    /// let attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    /// let model = Model::new(OpenAiChat::new("http://127.0.0.1:9/v1", "m"))
    ///     .wrap_provider(|provider| Arc::new(Counted(provider, attempts.clone())));
    /// assert_eq!(model.name(), "m");
    /// ```
    pub fn wrap_provider(self, wrap: impl FnOnce(Arc<dyn ChatModel>) -> Arc<dyn ChatModel>) -> Self {
        self.map(|i| i.provider = wrap(i.provider.clone()))
    }

    /// The same model drawing its retries from `budget`, shared with every model given a clone
    /// of it (see [`RetryBudget`]); a fallback tried by this model draws from it too.
    pub fn with_retry_budget(self, budget: RetryBudget) -> Self {
        self.map(|i| i.budget = Some(budget))
    }

    /// The retry budget, if the model has one.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// The same model with this many repair rounds for [`chat_structured`](Self::chat_structured)
    /// (default 1; 0 means one attempt only).
    pub fn with_repair_rounds(self, rounds: u32) -> Self {
        self.map(|i| i.repair_rounds = rounds)
    }

    /// The model name sent to the provider.
    pub fn name(&self) -> &str {
        self.inner.provider.model_name()
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The provider client.
    pub fn provider(&self) -> &Arc<dyn ChatModel> {
        &self.inner.provider
    }

    /// Sends `req` and returns the whole answer.
    ///
    /// Dangling tool calls are closed first ([`close_dangling_tool_calls`]). The request then
    /// goes through the model's layers, outermost first: circuit breaker, concurrency limit,
    /// retry (by the [`RetryPolicy`] and the [`RetryBudget`], if any), rate limit, provider;
    /// then the fallback, if any, is tried. The whole call ends at the
    /// [`call_timeout`](Self::call_timeout) with [`ModelError::DeadlineExceeded`]. Each call is a
    /// `model.chat` tracing span (at level INFO) with the fields `model`, `provider`,
    /// `attempts`, `latency_ms`, `input_tokens`, `output_tokens` and `outcome` (`"ok"` or the
    /// error's [`kind`](ModelError::kind)); a fallback has its own span.
    ///
    /// # Errors
    ///
    /// The last attempt's [`ModelError`] (of the fallback, if it was tried).
    ///
    /// # Cancellation
    ///
    /// Dropping the future cancels the HTTP request in flight (or the backoff wait); nothing
    /// else needs cleaning up. The provider may still have billed a request it had started.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let call = Call::start(self);
        call.within(self.chat_within(&closed(req), &call)).await
    }

    /// How structured answers are asked for (default [`StructuredOutput::Auto`]).
    pub fn with_structured_output(self, structured: StructuredOutput) -> Self {
        self.map(|i| i.structured = structured)
    }

    /// The structured-output mode this model's next call uses.
    pub fn structured_mode(&self) -> StructuredMode {
        match self.inner.structured {
            StructuredOutput::Fixed(mode) => mode,
            StructuredOutput::Auto => *self
                .inner
                .learned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// `req` asking for its structured answer in `mode`. In [`StructuredMode::ToolCall`] the
    /// schema becomes a tool named after it, forced when it is the only tool.
    fn in_mode<'r>(req: &'r ChatRequest, mode: StructuredMode) -> Cow<'r, ChatRequest> {
        let Some(format) = &req.response_format else {
            return Cow::Borrowed(req);
        };
        if format.mode == mode && mode != StructuredMode::ToolCall {
            return Cow::Borrowed(req);
        }
        let mut req = req.clone();
        if let Some(format) = req.response_format.as_mut() {
            format.mode = mode;
        }
        if mode == StructuredMode::ToolCall {
            let (name, schema) = (format.name.clone(), format.schema.clone());
            if !req.tools.iter().any(|t| t.name == name) {
                let alone = req.tools.is_empty();
                req.tools.push(ToolSpec {
                    name: name.clone(),
                    description: "Give your final answer: call this with it, as its arguments.".into(),
                    parameters: schema,
                });
                if alone {
                    req.tool_choice = Some(ToolChoice::Tool(name));
                }
            }
        }
        Cow::Owned(req)
    }

    /// In [`StructuredMode::ToolCall`], the answer tool's arguments become the reply's text
    /// (and the call leaves the reply, so no tool call is left to answer).
    fn answer_from_tool(req: &ChatRequest, mut response: ChatResponse) -> ChatResponse {
        let Some(format) = req
            .response_format
            .as_ref()
            .filter(|f| f.mode == StructuredMode::ToolCall)
        else {
            return response;
        };
        let answer = response.content.iter().find_map(|block| match block {
            ContentBlock::ToolUse { name, input, .. } if *name == format.name => Some(input.to_string()),
            _ => None,
        });
        if let Some(answer) = answer {
            response.content = vec![ContentBlock::text(answer)];
            response.stop_reason = StopReason::EndTurn;
        }
        response
    }

    /// Whether `e` is a server refusing the way `req` asked for a structured answer.
    fn refuses_mode(req: &ChatRequest, e: &ModelError) -> bool {
        let Some(format) = &req.response_format else {
            return false;
        };
        let message = match e {
            ModelError::BadRequest { status, message, .. } | ModelError::Server { status, message, .. }
                if matches!(status, 400 | 422 | 500) =>
            {
                message.to_ascii_lowercase()
            }
            _ => return false,
        };
        match format.mode {
            StructuredMode::JsonSchema => message.contains("json_schema") || message.contains("response_format"),
            StructuredMode::JsonObject => message.contains("json_object") || message.contains("response_format"),
            StructuredMode::ToolCall => message.contains("tool"),
            StructuredMode::Prompt => false,
        }
    }

    async fn chat_within(&self, req: &ChatRequest, call: &Call) -> Result<ChatResponse, ModelError> {
        self.check_budget()?;
        let mut mode = self.structured_mode();
        let result = loop {
            let asked = Self::in_mode(req, mode);
            let result = self
                .chat_with_retries(&asked, call)
                .await
                .map(|r| Self::answer_from_tool(&asked, r));
            let next = match &result {
                Err(e) if self.inner.structured == StructuredOutput::Auto && Self::refuses_mode(&asked, e) => {
                    mode.next()
                }
                _ => None,
            };
            // Each refused mode is tried once; the next one is remembered by every clone.
            let (Some(next), Err(e)) = (next, &result) else {
                break result;
            };
            tracing::info!(model = %self.name(), refused = ?mode, next = ?next, error = %e, "server refused a structured-output mode; trying the next");
            let mut learned = self
                .inner
                .learned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *learned == mode {
                *learned = next;
            }
            drop(learned);
            mode = next;
        };
        match (result, &self.inner.fallback) {
            (Err(e), Some(fallback)) if e.warrants_fallback() => {
                tracing::warn!(model = %self.name(), fallback = %fallback.name(), error = %e, "model failed, trying fallback");
                Box::pin(fallback.chat_within(req, call)).await
            }
            (result, _) => result,
        }
    }

    /// Sends `req` as a stream. Opening the stream (until the provider accepted the request) is
    /// retried like [`chat`](Self::chat) and falls back the same way, within the same call
    /// deadline; once deltas flow, an error ends the stream and is not retried (the caller has
    /// seen part of the answer). The stream itself is bounded by the provider's stream time
    /// limit ([`HttpSettings::with_stream_timeout`]).
    /// The call is a `model.stream` span with the fields of [`chat`](Self::chat)'s; tokens,
    /// latency and outcome are recorded as the stream ends (or fails).
    ///
    /// # Errors
    ///
    /// The last attempt's [`ModelError`] when the stream could not be opened.
    ///
    /// # Cancellation
    ///
    /// Dropping the future or the stream closes the connection.
    pub async fn stream(&self, req: &ChatRequest) -> Result<EventStream, ModelError> {
        let call = Call::start(self);
        call.within(self.stream_within(&closed(req), &call)).await
    }

    async fn stream_within(&self, req: &ChatRequest, call: &Call) -> Result<EventStream, ModelError> {
        self.check_budget()?;
        match (self.stream_with_retries(req, call).await, &self.inner.fallback) {
            (Err(e), Some(fallback)) if e.warrants_fallback() => {
                tracing::warn!(model = %self.name(), fallback = %fallback.name(), error = %e, "model failed, trying fallback");
                Box::pin(fallback.stream_within(req, call)).await
            }
            (result, _) => result,
        }
    }

    /// Sends `req` through the model's layers to `provider_call`; returns the result and the
    /// number of attempts that reached the provider.
    async fn attempt<Op: Operation>(&self, call: &Call, req: &ChatRequest) -> (Result<Op::Output, ModelError>, u32) {
        let inner = &self.inner;
        let policy = inner
            .retry
            .max_elapsed(inner.retry.elapsed_limit().min(call.remaining()));
        let mut retry = RetryLayer::new(policy).idempotent_if(|_: &Attempt| true);
        if let Some(budget) = &call.budget {
            retry = retry.budget(budget.clone());
        }
        let provider = ProviderCall::<Op> {
            provider: inner.provider.clone(),
            limiter: inner.rate.as_ref().map(|(limiter, _)| limiter.clone()),
            tokens: inner.tokens.clone(),
            priority: inner.priority,
            op: PhantomData,
        };
        let service = ServiceBuilder::new()
            .option_layer(
                inner
                    .breaker
                    .clone()
                    .map(|breaker| CircuitBreakerLayer::new(breaker).classifier(ByTransient)),
            )
            .option_layer(inner.concurrency.clone().map(ConcurrencyLimitLayer::shared))
            .layer(retry)
            .option_layer(
                inner
                    .rate
                    .clone()
                    .map(|(limiter, wait)| RateLimitLayer::shared(limiter).max_wait(wait).priority(inner.priority)),
            )
            .service(provider);
        let attempts = Arc::new(AtomicU32::new(0));
        let attempt = Attempt {
            req: Arc::new(req.clone()),
            attempts: attempts.clone(),
        };
        let result = service.oneshot(attempt).await;
        (result, attempts.load(Ordering::Relaxed))
    }

    /// Records the circuit breaker's state, after a call, on its span.
    fn record_breaker(&self, span: &tracing::Span) {
        if let Some(breaker) = &self.inner.breaker {
            span.record("breaker", breaker.state().as_str());
        }
    }

    async fn chat_with_retries(&self, req: &ChatRequest, call: &Call) -> Result<ChatResponse, ModelError> {
        let span = model_span!(self, "model.chat");
        let started = Instant::now();
        let (result, attempts) = self.attempt::<Whole>(call, req).instrument(span.clone()).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        span.record("attempts", attempts);
        span.record("latency_ms", latency_ms);
        self.record_breaker(&span);
        match &result {
            Ok(r) => {
                self.spend(r.usage);
                span.record("gen_ai.usage.input_tokens", r.usage.input_tokens);
                span.record("gen_ai.usage.output_tokens", r.usage.output_tokens);
                span.record("cost", self.inner.price.of(r.usage));
                span.record("outcome", "ok");
                span.in_scope(|| {
                    tracing::debug!(
                        latency_ms,
                        input_tokens = r.usage.input_tokens,
                        output_tokens = r.usage.output_tokens,
                        "model call done"
                    )
                });
            }
            Err(e) => {
                span.record("outcome", e.kind());
                span.in_scope(|| tracing::warn!(latency_ms, error = %e, "model call failed"));
            }
        }
        result
    }

    async fn stream_with_retries(&self, req: &ChatRequest, call: &Call) -> Result<EventStream, ModelError> {
        let span = model_span!(self, "model.stream");
        let started = Instant::now();
        let (opened, attempts) = self.attempt::<Streamed>(call, req).instrument(span.clone()).await;
        span.record("attempts", attempts);
        self.record_breaker(&span);
        let stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                span.record("latency_ms", started.elapsed().as_millis() as u64);
                span.record("outcome", e.kind());
                span.in_scope(|| tracing::warn!(error = %e, "model stream failed to open"));
                return Err(e);
            }
        };
        let this = self.clone();
        // Providers report a stream's usage in parts (the prompt's at the start, the output's
        // at the end); the span's cost is of the whole.
        let mut used = Usage::default();
        let traced = stream.map(move |event| {
            match &event {
                Ok(StreamEvent::Usage(u)) => {
                    this.spend(*u);
                    used.input_tokens += u.input_tokens;
                    used.output_tokens += u.output_tokens;
                    span.record("cost", this.inner.price.of(used));
                    if u.input_tokens > 0 {
                        span.record("gen_ai.usage.input_tokens", u.input_tokens);
                    }
                    if u.output_tokens > 0 {
                        span.record("gen_ai.usage.output_tokens", u.output_tokens);
                    }
                }
                Ok(StreamEvent::Stop(_)) => {
                    span.record("latency_ms", started.elapsed().as_millis() as u64);
                    span.record("outcome", "ok");
                }
                Ok(_) => {}
                Err(e) => {
                    span.record("latency_ms", started.elapsed().as_millis() as u64);
                    span.record("outcome", e.kind());
                    span.in_scope(|| tracing::warn!(error = %e, "model stream failed"));
                }
            }
            event
        });
        Ok(traced.boxed())
    }
}

/// Narrow entry points to the model layer's parsers, for the property tests
/// (`agents/tests/model_fuzz.rs`): not part of the API.
#[doc(hidden)]
pub mod fuzz {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    use super::http::{self, Decoder, SseReader};
    use super::{ChatResponse, ModelError, StreamEvent, anthropic, openai};

    /// A wire format.
    #[derive(Clone, Copy, Debug)]
    pub enum Wire {
        /// OpenAI chat completions.
        OpenAi,
        /// Anthropic Messages.
        Anthropic,
    }

    /// A whole answer body, as a provider client decodes it.
    pub fn decode_body(wire: Wire, body: &[u8]) -> Result<ChatResponse, ModelError> {
        let json = http::parse_json(body)?;
        match wire {
            Wire::OpenAi => openai::parse_response(&json, "m"),
            Wire::Anthropic => anthropic::parse_response(&json, "m"),
        }
    }

    /// An error answer, as a provider client classifies it (headers that are not valid HTTP
    /// header names or values are left out, as a server could not send them).
    pub fn classify(status: u16, headers: &[(String, String)], body: &[u8]) -> ModelError {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                map.append(name, value);
            }
        }
        http::classify(status, &map, body)
    }

    /// A stream arriving in these chunks, as a provider client decodes it (no timeouts), with
    /// these event and stream size limits: every item, the error (if any) last.
    pub async fn decode_stream(
        wire: Wire,
        chunks: Vec<Vec<u8>>,
        max_event: usize,
        max_stream: usize,
    ) -> Vec<Result<StreamEvent, ModelError>> {
        use futures::StreamExt;
        let body = futures::stream::iter(chunks.into_iter().map(|c| Ok(bytes::Bytes::from(c))));
        let reader = SseReader::new(body, max_event, max_stream);
        let decoder: Box<dyn Decoder> = match wire {
            Wire::OpenAi => Box::new(openai::OpenAiDecoder::default()),
            Wire::Anthropic => Box::new(anthropic::AnthropicDecoder),
        };
        http::drive(reader, decoder, None).collect().await
    }
}

/// The request with dangling tool calls closed, cloned only if something had to change.
fn closed(req: &ChatRequest) -> Cow<'_, ChatRequest> {
    if types::has_dangling_tool_calls(&req.messages) {
        let mut owned = req.clone();
        let added = owned.close_dangling_tool_calls();
        tracing::debug!(added, "closed dangling tool calls with synthetic error results");
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(req)
    }
}

impl ChatModel for Model {
    fn model_name(&self) -> &str {
        self.name()
    }

    fn provider_name(&self) -> &'static str {
        self.inner.provider.provider_name()
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(Model::chat(self, req))
    }

    fn stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        Box::pin(Model::stream(self, req))
    }
}
