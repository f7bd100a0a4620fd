//! Permissions: what a caller holds, what a tool requires, and the layer that
//! denies a call lacking them before it reaches anything else.
//!
//! Every [`ToolCall`] carries its caller's [`PermissionSet`]; every tool
//! declares the permissions it requires ([`Tool::permissions`](crate::Tool::permissions)).
//! [`PermissionService`] compares them: a call that lacks any is denied with
//! [`ToolError::PermissionDenied`] naming what is missing, and a `tracing`
//! audit event is emitted with target [`AUDIT_TARGET`] (`warden::audit`,
//! fields `caller`, `tool`, `call_id`, `missing`; never the arguments). The
//! tool is not called, and since this layer is outermost by default, the
//! breaker, the limits and the retries never see the call either.
//!
//! A permission is an opaque name; `net:http` or `fs:read:/data` are
//! conventions, not syntax: holding `net` does not imply `net:http`.
//!
//! ```
//! use warden_tools::{Permission, PermissionSet};
//!
//! let required = PermissionSet::from_iter(["net:http", "secrets:read"]);
//! let held = PermissionSet::from_iter(["net:http"]);
//! assert_eq!(required.missing_from(&held), PermissionSet::from_iter(["secrets:read"]));
//! assert!(held.contains(&Permission::new("net:http")));
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};

use crate::call::ToolCall;
use crate::error::ToolError;

/// The `tracing` target of audit events: denied permissions and approvals.
pub const AUDIT_TARGET: &str = "warden::audit";

/// A named permission. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(Arc<str>);

impl Permission {
    /// A permission named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// Its name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Permission {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Permission {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of permissions, ordered by name.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a permission; `false` if it was there already.
    pub fn insert(&mut self, permission: impl Into<Permission>) -> bool {
        self.0.insert(permission.into())
    }

    /// Adds a permission, builder style.
    pub fn with(mut self, permission: impl Into<Permission>) -> Self {
        self.insert(permission);
        self
    }

    /// Whether `permission` is in the set.
    pub fn contains(&self, permission: &Permission) -> bool {
        self.0.contains(permission)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many permissions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The permissions, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    /// Whether `held` has every permission of `self`.
    pub fn is_satisfied_by(&self, held: &PermissionSet) -> bool {
        self.0.iter().all(|p| held.contains(p))
    }

    /// The permissions of `self` that `held` lacks.
    pub fn missing_from(&self, held: &PermissionSet) -> PermissionSet {
        Self(self.0.iter().filter(|p| !held.contains(p)).cloned().collect())
    }
}

impl<P: Into<Permission>> FromIterator<P> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

/// Comma-separated names: `net:http, secrets:read`.
impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.as_str())?;
        }
        Ok(())
    }
}

/// Denies calls whose caller lacks `required`; made by [`PermissionLayer`].
#[derive(Clone, Debug)]
pub struct PermissionService<S> {
    inner: S,
    required: Arc<PermissionSet>,
}

/// Wraps a service in a [`PermissionService`] requiring `required`.
#[derive(Clone, Debug)]
pub struct PermissionLayer {
    required: Arc<PermissionSet>,
}

impl PermissionLayer {
    /// A layer that requires `required` of every caller.
    pub fn new(required: PermissionSet) -> Self {
        Self {
            required: Arc::new(required),
        }
    }
}

impl<S> Layer<S> for PermissionLayer {
    type Service = PermissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PermissionService {
            inner,
            required: self.required.clone(),
        }
    }
}

/// Checks `call` against `required`, emitting the audit event on denial.
pub(crate) fn check(required: &PermissionSet, call: &ToolCall) -> Result<(), ToolError> {
    if required.is_satisfied_by(&call.caller.permissions) {
        return Ok(());
    }
    let missing = required.missing_from(&call.caller.permissions);
    tracing::warn!(
        target: AUDIT_TARGET,
        caller = %call.caller.name,
        tool = %call.tool,
        call_id = %call.id,
        missing = %missing,
        "tool call denied: missing permissions"
    );
    Err(ToolError::PermissionDenied { missing })
}

impl<S> Service<ToolCall> for PermissionService<S>
where
    S: Service<ToolCall, Response = Value, Error = ToolError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Value;
    type Error = ToolError;
    type Future = BoxFuture<'static, Result<Value, ToolError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ToolError>> {
        // Denials must not wait for the inner service; readiness is checked in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ToolCall) -> Self::Future {
        match check(&self.required, &call) {
            Ok(()) => self.inner.clone().oneshot(call).boxed(),
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}
