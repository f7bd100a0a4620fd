//! The ordered stack of layers around each tool; [`ToolStack`] documents the order and why.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service};
use warden_supervisor::Escalator;
use warden_supervisor::panic_report::panic_message;

use crate::approval::{ApprovalLayer, ApprovalPolicy};
use crate::call::ToolCall;
use crate::error::ToolError;
use crate::permission::PermissionLayer;
use crate::tool::DynTool;
use warden_resilience::circuit_breaker::{
    ByTransient, CircuitBreakerConfig, CircuitBreakerLayer, SharedCircuitBreaker, StateTransition,
};
use warden_resilience::{ConcurrencyLimitLayer, RateLimit, RateLimitLayer, RetryLayer, RetryPolicy, TimeoutLayer};

/// A built stack around one tool: a cloneable, type-erased
/// `tower::Service<ToolCall, Response = serde_json::Value, Error = ToolError>`.
pub type ToolService = BoxCloneSyncService<ToolCall, Value, ToolError>;

/// One layer of a [`ToolStack`], by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerKind {
    /// [`PermissionLayer`](crate::PermissionLayer).
    Permission,
    /// [`ApprovalLayer`](crate::ApprovalLayer) (only around tools that require approval).
    Approval,
    /// [`RateLimitLayer`](crate::RateLimitLayer).
    RateLimit,
    /// [`CircuitBreakerLayer`].
    CircuitBreaker,
    /// [`ConcurrencyLimitLayer`](crate::ConcurrencyLimitLayer).
    ConcurrencyLimit,
    /// [`RetryLayer`](crate::RetryLayer).
    Retry,
    /// [`TimeoutLayer`](crate::TimeoutLayer).
    Timeout,
    /// A layer of yours, by the name you gave it.
    Middleware(Arc<str>),
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Permission => "permission",
            Self::Approval => "approval",
            Self::RateLimit => "rate_limit",
            Self::CircuitBreaker => "circuit_breaker",
            Self::ConcurrencyLimit => "concurrency_limit",
            Self::Retry => "retry",
            Self::Timeout => "timeout",
            Self::Middleware(name) => name,
        })
    }
}

type MakeLayer = Arc<dyn Fn(ToolService) -> ToolService + Send + Sync>;
type Listener = Arc<dyn Fn(&StateTransition) + Send + Sync>;

#[derive(Clone)]
enum Step {
    Permission,
    Approval,
    RateLimit(RateLimit),
    CircuitBreaker(CircuitBreakerConfig),
    ConcurrencyLimit { max_in_flight: usize, queue: usize },
    Retry(RetryPolicy),
    Timeout(Duration),
    Middleware { name: Arc<str>, make: MakeLayer },
}

impl Step {
    fn kind(&self) -> LayerKind {
        match self {
            Self::Permission => LayerKind::Permission,
            Self::Approval => LayerKind::Approval,
            Self::RateLimit(_) => LayerKind::RateLimit,
            Self::CircuitBreaker(_) => LayerKind::CircuitBreaker,
            Self::ConcurrencyLimit { .. } => LayerKind::ConcurrencyLimit,
            Self::Retry(_) => LayerKind::Retry,
            Self::Timeout(_) => LayerKind::Timeout,
            Self::Middleware { name, .. } => LayerKind::Middleware(name.clone()),
        }
    }
}

/// The layers around each tool of an executor, outermost first. Cheap to
/// clone.
///
/// [`ToolStack`]: the layers every call of a tool goes through, in an order
/// you can see and change.
///
/// A stack is a recipe. An executor builds it once per tool when it starts
/// ([`ToolStack::build`]), into one [`ToolService`]: a `tower::Service`
/// from [`ToolCall`] to JSON, with [`ToolError`] as its only error type.
///
/// # Order
///
/// As with tower's `ServiceBuilder`, layers added first see the call first.
/// [`ToolStack::recommended`] gives, outermost first:
///
/// ```text
/// permission → approval → circuit_breaker → concurrency_limit → retry → timeout → [your layers] → tool
/// ```
///
/// and why:
///
/// * **permission** first: a denied call costs nothing and touches nothing:
///   it is never approved, never counted by the breaker, never queued.
/// * **approval** next: a call waits for a human before it takes a slot or
///   a breaker permit, and a denial never trips the breaker.
/// * **circuit_breaker** outside the limit and the retries: while open,
///   calls fail at once without queueing; it counts one outcome per call
///   (after retries), so one flaky call retried three times is one failure,
///   and `Overloaded` from the limit below is ignored, not a failure.
/// * **concurrency_limit** outside retry: a call keeps its slot across its
///   retries, so retries cannot multiply the load on a failing service.
/// * **retry** outside timeout: each attempt gets its own timeout.
/// * **timeout** just outside your middleware and the tool, so it cancels
///   the tool's future.
/// * the **tool** innermost, with panic catching. A panic in your
///   middleware is caught too: every panic below the executor is a
///   [`ToolError::Panicked`], seen by the layers above it.
///
/// Whatever the order, a tool's declared permissions and approval are
/// checked: a stack without those layers gets them outermost for the tools
/// that need them ([`ToolStack::build`]).
///
/// A rate limit ([`ToolStackBuilder::rate_limit`]) is not in the recommended
/// stack; put it after `approval` so refused calls neither count against the
/// breaker nor take a slot.
///
/// ```
/// use std::time::Duration;
/// use warden_tools::{RetryPolicy, ToolStack};
/// use warden_tools::circuit_breaker::CircuitBreakerConfig;
///
/// let stack = ToolStack::builder()
///     .permission()
///     .approval()
///     .circuit_breaker(CircuitBreakerConfig::default())
///     .concurrency_limit(16, 64)
///     .retry(RetryPolicy::default())
///     .timeout(Duration::from_secs(30))
///     .build();
/// assert_eq!(
///     stack.to_string(),
///     "permission → approval → circuit_breaker → concurrency_limit → retry → timeout → tool"
/// );
/// assert_eq!(stack, ToolStack::recommended().build());
/// ```
///
/// # Which layers are tower's and which are ours
///
/// Every layer is a `tower::Layer`, and your middleware is any
/// `tower::Layer` over [`ToolService`] ([`ToolStackBuilder::layer`]): logging,
/// metrics, argument redaction, content filters compose as in tower. The
/// built-in ones are ours because tower's either wait where an agent needs an
/// immediate typed answer, or return `BoxError`:
///
/// | layer | tower has | we use | why |
/// |---|---|---|---|
/// | timeout | `Timeout` | ours ([`TimeoutLayer`](crate::TimeoutLayer)) | tower's error is a `BoxError`; ours is [`ToolError::Timeout`] |
/// | concurrency limit | `ConcurrencyLimit` | ours ([`ConcurrencyLimitLayer`](crate::ConcurrencyLimitLayer)) | tower's waiters are unbounded; ours has a bounded queue and fails with `Overloaded` past it |
/// | rate limit | `RateLimit` | ours ([`RateLimitLayer`](crate::RateLimitLayer)) | tower's makes callers wait; ours fails at once with `RateLimited { retry_after }` |
/// | retry | `Retry` + `Policy` | ours ([`RetryLayer`](crate::RetryLayer)) | backoff, jitter, deadline and the retryable check would all be ours anyway |
/// | circuit breaker | none | ours ([`circuit_breaker`](crate::circuit_breaker)) | |
/// | permission, approval | none | ours | |
/// | boxing, `oneshot`, `Layer`, `Service` | yes | tower's | |
///
/// All our layers are always ready (`poll_ready` is `Ready(Ok)`): refusing
/// is done in `call`, with a typed error, as tower's `LoadShed` does.
#[derive(Clone)]
pub struct ToolStack {
    steps: Arc<[Step]>,
    listeners: Arc<[Listener]>,
}

impl PartialEq for ToolStack {
    /// Same layers in the same order (middleware compared by name, settings
    /// of built-in layers compared too).
    fn eq(&self, other: &Self) -> bool {
        self.steps.len() == other.steps.len()
            && self.steps.iter().zip(other.steps.iter()).all(|(a, b)| match (a, b) {
                (Step::RateLimit(x), Step::RateLimit(y)) => x == y,
                (Step::CircuitBreaker(x), Step::CircuitBreaker(y)) => x == y,
                (Step::Retry(x), Step::Retry(y)) => x == y,
                (Step::Timeout(x), Step::Timeout(y)) => x == y,
                (
                    Step::ConcurrencyLimit {
                        max_in_flight: a,
                        queue: b,
                    },
                    Step::ConcurrencyLimit {
                        max_in_flight: c,
                        queue: d,
                    },
                ) => a == c && b == d,
                _ => a.kind() == b.kind(),
            })
    }
}

impl fmt::Debug for ToolStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolStack")
            .field("layers", &self.layers())
            .finish_non_exhaustive()
    }
}

/// `permission → retry → timeout → tool`.
impl fmt::Display for ToolStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in self.steps.iter() {
            write!(f, "{} → ", step.kind())?;
        }
        f.write_str("tool")
    }
}

impl Default for ToolStack {
    /// No layers: the tool itself, with panics caught, behind the
    /// permission and approval checks it declares (see [`ToolStack::build`]).
    fn default() -> Self {
        Self::builder().build()
    }
}

/// What [`ToolStack::build`] made for one tool.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BuiltStack {
    /// The service to call.
    pub service: ToolService,
    /// The tool's circuit breaker, if the stack has one (named after the tool).
    pub breaker: Option<SharedCircuitBreaker>,
}

impl ToolStack {
    /// An empty builder: add layers outermost first.
    pub fn builder() -> ToolStackBuilder {
        ToolStackBuilder {
            steps: Vec::new(),
            listeners: Vec::new(),
        }
    }

    /// A builder holding the recommended layers, with their defaults:
    /// `permission → approval → circuit_breaker → concurrency_limit(16, 64) →
    /// retry(3 attempts) → timeout(30 s)`. Layers added to it go inside the
    /// timeout, just around the tool.
    pub fn recommended() -> ToolStackBuilder {
        Self::builder()
            .permission()
            .approval()
            .circuit_breaker(CircuitBreakerConfig::default())
            .concurrency_limit(16, 64)
            .retry(RetryPolicy::default())
            .timeout(Duration::from_secs(30))
    }

    /// The layers, outermost first.
    pub fn layers(&self) -> Vec<LayerKind> {
        self.steps.iter().map(Step::kind).collect()
    }

    /// Builds the service around `tool`. `escalator` is where approvals are
    /// asked and where the breaker's opening is raised as a
    /// [`CircuitOpened`](crate::circuit_breaker::CircuitOpened); without one,
    /// calls that need approval fail with [`ToolError::ApprovalUnavailable`]
    /// and openings are only `tracing` events.
    ///
    /// Layers that do not apply to the tool are left out: permission when it
    /// requires none, approval when it needs none.
    ///
    /// # What a tool declares is always enforced
    ///
    /// A tool's [`permissions`](DynTool::permissions) and
    /// [`approval`](DynTool::approval) are checked whatever the stack: when
    /// the stack has no `permission` (or `approval`) layer and the tool
    /// declares a requirement, that layer is added outermost (permission
    /// first, then approval), so a call from a caller lacking the tool's
    /// permissions, or a call of a tool that requires approval, never reaches
    /// the tool. [`ToolStack::default()`] is therefore safe for any tool; a
    /// stack that names the layers decides where they go.
    pub fn build(&self, tool: Arc<dyn DynTool>, escalator: Option<&Escalator>) -> BuiltStack {
        let mut breaker = None;
        let mut service = ToolService::new(ToolFnService::new(tool.clone()));
        for step in self.steps.iter().rev() {
            service = match step {
                Step::Permission => match permission_layer(tool.as_ref()) {
                    Some(layer) => ToolService::new(layer.layer(service)),
                    None => continue,
                },
                Step::Approval => match approval_layer(tool.as_ref(), escalator) {
                    Some(layer) => ToolService::new(layer.layer(service)),
                    None => continue,
                },
                Step::RateLimit(rate) => ToolService::new(RateLimitLayer::new(*rate).layer(service)),
                Step::CircuitBreaker(config) => {
                    let shared = self.breaker(tool.name(), config.clone(), escalator);
                    let layer = CircuitBreakerLayer::new(shared.clone()).classifier(ByTransient);
                    breaker.get_or_insert(shared);
                    ToolService::new(layer.layer(service))
                }
                Step::ConcurrencyLimit { max_in_flight, queue } => {
                    ToolService::new(ConcurrencyLimitLayer::new(*max_in_flight, *queue).layer(service))
                }
                Step::Retry(policy) => {
                    let tool = tool.clone();
                    let layer =
                        RetryLayer::new(*policy).idempotent_if(move |call: &ToolCall| tool.is_idempotent(&call.args));
                    ToolService::new(layer.layer(service))
                }
                Step::Timeout(after) => ToolService::new(TimeoutLayer::new(*after).layer(service)),
                Step::Middleware { make, .. } => ToolService::new(CatchPanicService(make(service))),
            };
        }
        // Declared requirements the stack does not check are checked outermost.
        let has = |kind: LayerKind| self.steps.iter().any(|s| s.kind() == kind);
        if !has(LayerKind::Approval) {
            if let Some(layer) = approval_layer(tool.as_ref(), escalator) {
                service = ToolService::new(layer.layer(service));
            }
        }
        if !has(LayerKind::Permission) {
            if let Some(layer) = permission_layer(tool.as_ref()) {
                service = ToolService::new(layer.layer(service));
            }
        }
        BuiltStack { service, breaker }
    }

    fn breaker(&self, name: &str, config: CircuitBreakerConfig, escalator: Option<&Escalator>) -> SharedCircuitBreaker {
        let breaker = SharedCircuitBreaker::new(name, config);
        for listener in self.listeners.iter() {
            let listener = listener.clone();
            breaker.on_transition(move |t| listener(t));
        }
        if let Some(escalator) = escalator.cloned() {
            breaker.on_transition(move |t| {
                let Some(opened) = t.opened() else { return };
                if let Err(e) = escalator.raise(opened) {
                    tracing::warn!(breaker = %t.breaker, error = %e, "could not escalate the circuit opening");
                }
            });
        }
        breaker
    }
}

/// The permission layer `tool` needs, if it requires any permission.
fn permission_layer(tool: &dyn DynTool) -> Option<PermissionLayer> {
    let required = tool.permissions();
    (!required.is_empty()).then(|| PermissionLayer::new(required))
}

/// The approval layer `tool` needs, if its calls must be approved.
fn approval_layer(tool: &dyn DynTool, escalator: Option<&Escalator>) -> Option<ApprovalLayer> {
    match tool.approval() {
        ApprovalPolicy::Required { deadline } => Some(ApprovalLayer::new(escalator.cloned(), deadline)),
        ApprovalPolicy::None => None,
    }
}

/// Builds a [`ToolStack`], outermost layer first.
#[derive(Clone)]
pub struct ToolStackBuilder {
    steps: Vec<Step>,
    listeners: Vec<Listener>,
}

impl fmt::Debug for ToolStackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolStackBuilder")
            .field("layers", &self.steps.iter().map(Step::kind).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ToolStackBuilder {
    fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Denies callers that lack the tool's permissions
    /// ([`PermissionLayer`](crate::PermissionLayer)).
    pub fn permission(self) -> Self {
        self.step(Step::Permission)
    }

    /// Waits for approval of tools that require it
    /// ([`ApprovalLayer`](crate::ApprovalLayer)).
    pub fn approval(self) -> Self {
        self.step(Step::Approval)
    }

    /// Refuses calls past `rate` with `RateLimited`
    /// ([`RateLimitLayer`](crate::RateLimitLayer)).
    pub fn rate_limit(self, rate: RateLimit) -> Self {
        self.step(Step::RateLimit(rate))
    }

    /// A circuit breaker per tool, named after it; its opening is raised to
    /// the executor's supervisor.
    pub fn circuit_breaker(self, config: CircuitBreakerConfig) -> Self {
        self.step(Step::CircuitBreaker(config))
    }

    /// At most `max_in_flight` calls per tool at once, `queue` more waiting,
    /// `Overloaded` past that ([`ConcurrencyLimitLayer`](crate::ConcurrencyLimitLayer)).
    pub fn concurrency_limit(self, max_in_flight: usize, queue: usize) -> Self {
        self.step(Step::ConcurrencyLimit { max_in_flight, queue })
    }

    /// Retries retryable errors ([`RetryLayer`](crate::RetryLayer)).
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.step(Step::Retry(policy))
    }

    /// Cancels each attempt after `timeout` ([`TimeoutLayer`](crate::TimeoutLayer)).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.step(Step::Timeout(timeout))
    }

    /// Adds a middleware layer of yours, named after its type.
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<ToolService> + Send + Sync + 'static,
        L::Service: Service<ToolCall, Response = Value, Error = ToolError> + Clone + Send + Sync + 'static,
        <L::Service as Service<ToolCall>>::Future: Send + 'static,
    {
        let name = std::any::type_name::<L>();
        let short = name
            .split('<')
            .next()
            .unwrap_or(name)
            .rsplit("::")
            .next()
            .unwrap_or(name);
        self.layer_named(short, layer)
    }

    /// Adds a middleware layer of yours under `name` (as
    /// [`ToolStack::layers`] and `Display` show it).
    pub fn layer_named<L>(self, name: impl Into<Arc<str>>, layer: L) -> Self
    where
        L: Layer<ToolService> + Send + Sync + 'static,
        L::Service: Service<ToolCall, Response = Value, Error = ToolError> + Clone + Send + Sync + 'static,
        <L::Service as Service<ToolCall>>::Future: Send + 'static,
    {
        let make: MakeLayer = Arc::new(move |inner| ToolService::new(layer.layer(inner)));
        self.step(Step::Middleware {
            name: name.into(),
            make,
        })
    }

    /// Calls `listener` on every state change of every breaker this stack
    /// builds (each is named after its tool), besides the `tracing` event and
    /// the escalation on opening.
    pub fn on_breaker_transition(mut self, listener: impl Fn(&StateTransition) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// The stack.
    pub fn build(self) -> ToolStack {
        ToolStack {
            steps: self.steps.into(),
            listeners: self.listeners.into(),
        }
    }
}

/// The innermost service: the tool, with panic catching.
#[derive(Clone)]
struct ToolFnService {
    tool: Arc<dyn DynTool>,
}

impl ToolFnService {
    fn new(tool: Arc<dyn DynTool>) -> Self {
        Self { tool }
    }
}

impl Service<ToolCall> for ToolFnService {
    type Response = Value;
    type Error = ToolError;
    type Future = BoxFuture<'static, Result<Value, ToolError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ToolError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ToolCall) -> Self::Future {
        let tool = self.tool.clone();
        let key = call.key().cloned();
        catch_panic(crate::call::with_idempotency_key(key, async move {
            tool.call_json(call.args).await
        }))
        .boxed()
    }
}

/// A middleware of the user's, whose panics (in `call` or in its future)
/// become [`ToolError::Panicked`] instead of unwinding through the layers
/// above it.
#[derive(Clone)]
struct CatchPanicService(ToolService);

impl Service<ToolCall> for CatchPanicService {
    type Response = Value;
    type Error = ToolError;
    type Future = BoxFuture<'static, Result<Value, ToolError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ToolError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: ToolCall) -> Self::Future {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.0.call(call))) {
            Ok(fut) => catch_panic(fut).boxed(),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                async move { Err(ToolError::Panicked { message }) }.boxed()
            }
        }
    }
}

/// Runs `fut`, turning a panic into [`ToolError::Panicked`].
pub(crate) async fn catch_panic<F>(fut: F) -> Result<Value, ToolError>
where
    F: Future<Output = Result<Value, ToolError>>,
{
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(ToolError::Panicked {
            message: panic_message(panic.as_ref()),
        }),
    }
}
