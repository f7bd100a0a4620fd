//! Where a child sits in a supervision tree.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The path of a child in its tree: the ids from the root down, joined by `/`,
/// for example `root/workers/planner`.
///
/// Paths are cheap to clone (one reference count) and are what every
/// [`tracing`] event, [`SupervisorEvent`](crate::SupervisorEvent) and
/// [`Escalation`](crate::Escalation) names a child by.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChildPath(Arc<str>);

impl ChildPath {
    /// The path of a root supervisor called `id`.
    pub fn root(id: &str) -> Self {
        Self(Arc::from(id))
    }

    /// The path of the child `id` below this one.
    pub fn join(&self, id: &str) -> Self {
        let mut s = String::with_capacity(self.0.len() + 1 + id.len());
        s.push_str(&self.0);
        s.push('/');
        s.push_str(id);
        Self(Arc::from(s))
    }

    /// The whole path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the child's own id.
    pub fn id(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path of the supervisor above, or `None` for a root.
    pub fn parent(&self) -> Option<ChildPath> {
        self.0.rfind('/').map(|i| Self(Arc::from(&self.0[..i])))
    }

    /// How many supervisors are above this child (0 for a root).
    pub fn depth(&self) -> usize {
        self.0.matches('/').count()
    }
}

impl fmt::Display for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChildPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for ChildPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        let p = ChildPath::root("root").join("workers").join("planner");
        assert_eq!(p.as_str(), "root/workers/planner");
        assert_eq!(p.id(), "planner");
        assert_eq!(p.depth(), 2);
        assert_eq!(p.parent().unwrap().as_str(), "root/workers");
        assert_eq!(ChildPath::root("root").parent(), None);
    }
}
