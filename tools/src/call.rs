//! [`ToolCall`]: one request to run a tool, as it travels through an
//! executor's layers.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::permission::{Permission, PermissionSet};

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// A call's id: the model's own (`call_abc123`) or one made up by
/// [`ToolCall::new`]. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(Arc<str>);

impl CallId {
    /// An id from text.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// A fresh id unique in this process (`call-17`).
    pub fn next() -> Self {
        Self(Arc::from(format!("call-{}", NEXT_CALL.fetch_add(1, Ordering::Relaxed))))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is calling: a name for the audit log, the permissions it holds, and
/// which tools it was offered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The caller's name (an agent's path, a user id), as audit events show it.
    pub name: Arc<str>,
    /// What the caller may do.
    pub permissions: PermissionSet,
    /// The names of the tools the caller was offered (an agent's toolkit),
    /// or `None` for every tool of the executor. An executor answers
    /// [`ToolError::NotFound`](crate::ToolError::NotFound) for a tool not
    /// in the set, as if it did not have it: a model cannot call a tool it
    /// was never offered on an executor shared with other agents.
    pub offered: Option<Arc<BTreeSet<Arc<str>>>>,
}

impl Caller {
    /// A caller with no permissions, offered every tool.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            permissions: PermissionSet::new(),
            offered: None,
        }
    }

    /// Restricts the caller to the tools named `tools` (see
    /// [`offered`](Self::offered)).
    ///
    /// ```
    /// use warden_tools::Caller;
    /// let caller = Caller::new("agents/planner").offered(["search", "echo"]);
    /// assert!(caller.is_offered("echo"));
    /// assert!(!caller.is_offered("delete_everything"));
    /// assert!(Caller::new("root").is_offered("delete_everything"));
    /// ```
    pub fn offered<I>(mut self, tools: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Arc<str>>,
    {
        self.offered = Some(Arc::new(tools.into_iter().map(Into::into).collect()));
        self
    }

    /// Whether the caller may call the tool named `tool`.
    pub fn is_offered(&self, tool: &str) -> bool {
        self.offered.as_ref().is_none_or(|offered| offered.contains(tool))
    }

    /// Adds a permission.
    pub fn with(mut self, permission: impl Into<Permission>) -> Self {
        self.permissions.insert(permission.into());
        self
    }

    /// Sets all the permissions.
    pub fn permissions(mut self, permissions: PermissionSet) -> Self {
        self.permissions = permissions;
        self
    }
}

/// One request to run a tool: which tool, the arguments as the model gave
/// them, who asks and with what permissions, and until when the caller
/// waits. Cheap to clone (the arguments are shared), which the retry layer
/// relies on.
///
/// ```
/// use serde_json::json;
/// use warden_tools::{Caller, ToolCall};
///
/// let call = ToolCall::new("http_request", json!({"method": "GET", "url": "https://example.com"}))
///     .id("call_1")
///     .caller(Caller::new("agents/researcher").with("net:http"));
/// assert_eq!(call.tool(), "http_request");
/// assert_eq!(call.id.as_str(), "call_1");
/// ```
#[derive(Clone)]
pub struct ToolCall {
    /// The call's id.
    pub id: CallId,
    /// The tool's name.
    pub tool: Arc<str>,
    /// The arguments, not yet validated.
    pub args: Arc<Value>,
    /// Who calls.
    pub caller: Caller,
    /// When the caller stops waiting, and how long it meant to wait.
    deadline: Option<(Instant, Duration)>,
    /// Closed when the caller is gone (set by [`ToolClient::call`](crate::ToolClient::call)).
    caller_alive: Option<watch::Receiver<()>>,
    /// The key that makes a repeated call harmless, if the caller gave one.
    idempotency_key: Option<Arc<str>>,
}

impl ToolCall {
    /// A call of `tool` with `args`, a fresh id, an anonymous caller
    /// without permissions, and no deadline.
    pub fn new(tool: impl Into<Arc<str>>, args: Value) -> Self {
        Self {
            id: CallId::next(),
            tool: tool.into(),
            args: Arc::new(args),
            caller: Caller::default(),
            deadline: None,
            caller_alive: None,
            idempotency_key: None,
        }
    }

    /// Gives the call an idempotency key: the same key on a repeated call (a durable agent
    /// replaying a step after a crash) tells the tool it may be a repeat. The tool reads it
    /// with [`idempotency_key`](crate::idempotency_key) while it runs; the HTTP tool sends it as
    /// `Idempotency-Key`.
    pub fn idempotency_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The call's idempotency key, if it has one.
    pub fn key(&self) -> Option<&Arc<str>> {
        self.idempotency_key.as_ref()
    }

    /// The caller waits at most `after` from now: an executor cancels the
    /// call then (and does not start it if it is already past). A call
    /// keeps the earlier of two deadlines; [`ToolClient::call`](crate::ToolClient::call)
    /// sets its own.
    pub fn within(mut self, after: Duration) -> Self {
        let at = Instant::now().checked_add(after);
        if let Some(at) = at {
            if self.deadline.is_none_or(|(current, _)| at < current) {
                self.deadline = Some((at, after));
            }
        }
        self
    }

    /// When the caller stops waiting, if it said.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|(at, _)| at)
    }

    /// How long the caller meant to wait, if it said.
    pub(crate) fn patience(&self) -> Option<Duration> {
        self.deadline.map(|(_, after)| after)
    }

    /// Ties the call to its caller: when `alive`'s sender is dropped, the
    /// executor cancels the call.
    pub(crate) fn watched_by(mut self, alive: watch::Receiver<()>) -> Self {
        self.caller_alive = Some(alive);
        self
    }

    /// Takes the caller's liveness signal out of the call.
    pub(crate) fn take_caller_alive(&mut self) -> Option<watch::Receiver<()>> {
        self.caller_alive.take()
    }

    /// Sets the id (the model's tool-call id).
    pub fn id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.id = CallId::new(id);
        self
    }

    /// Sets the caller.
    pub fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// The tool's name.
    pub fn tool(&self) -> &str {
        &self.tool
    }
}

/// Arguments are left out: they may hold secrets (an `Authorization` header).
impl fmt::Debug for ToolCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCall")
            .field("id", &self.id)
            .field("tool", &self.tool)
            .field("args", &Redacted(&self.args))
            .field("caller", &self.caller)
            .field("deadline", &self.deadline())
            .field("idempotency_key", &self.idempotency_key)
            .finish_non_exhaustive()
    }
}

/// Shows a model's arguments as their size only: `<redacted: 42 bytes of JSON>`.
pub(crate) struct Redacted<'a>(pub(crate) &'a Value);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = serde_json::to_vec(self.0).map_or(0, |v| v.len());
        write!(f, "<redacted: {bytes} bytes of JSON>")
    }
}

tokio::task_local! {
    static IDEMPOTENCY_KEY: Option<Arc<str>>;
}

/// The idempotency key of the call the current tool runs for, if its caller gave one (see
/// [`ToolCall::idempotency_key`]). A tool with side effects passes it on to the service it
/// calls, so that a call repeated after a crash is recognised there; `None` outside a tool.
///
/// ```
/// use warden_tools::{ToolCall, ToolError, ToolExecutor, ToolStack, Toolkit, tool_fn, idempotency_key};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let echo = tool_fn("key", "Echoes its key.", |_: serde_json::Value| async move {
///     Ok::<_, ToolError>(idempotency_key().map(|k| k.to_string()))
/// });
/// let executor = ToolExecutor::new(Toolkit::new().tool(echo), ToolStack::default());
/// let (client, _handle) = executor.spawn().await.unwrap();
/// let call = ToolCall::new("key", serde_json::json!({})).idempotency_key("order-7");
/// let out = client.call(call, std::time::Duration::from_secs(5)).await.unwrap();
/// assert_eq!(out, serde_json::json!("order-7"));
/// # }
/// ```
pub fn idempotency_key() -> Option<Arc<str>> {
    IDEMPOTENCY_KEY.try_with(Clone::clone).ok().flatten()
}

/// Runs `future` with `key` as the [`idempotency_key`] its tool sees.
pub(crate) async fn with_idempotency_key<F: std::future::Future>(key: Option<Arc<str>>, future: F) -> F::Output {
    IDEMPOTENCY_KEY.scope(key, future).await
}
