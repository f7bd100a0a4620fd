//! [`ToolCall`]: one request to run a tool, as it travels through an
//! executor's layers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

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

/// Who is calling: a name for the audit log and the permissions it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The caller's name (an agent's path, a user id), as audit events show it.
    pub name: Arc<str>,
    /// What the caller may do.
    pub permissions: PermissionSet,
}

impl Caller {
    /// A caller with no permissions.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            permissions: PermissionSet::new(),
        }
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
/// them, who asks and with what permissions. Cheap to clone (the arguments
/// are shared), which the retry layer relies on.
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
}

impl ToolCall {
    /// A call of `tool` with `args`, a fresh id, and an anonymous caller
    /// without permissions.
    pub fn new(tool: impl Into<Arc<str>>, args: Value) -> Self {
        Self {
            id: CallId::next(),
            tool: tool.into(),
            args: Arc::new(args),
            caller: Caller::default(),
        }
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
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}
