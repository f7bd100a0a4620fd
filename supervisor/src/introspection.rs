//! Looking at a running tree: [`ChildInfo`], [`ChildCounts`] and [`TreeSnapshot`].

use std::fmt;

use ractor::ActorCell;
use serde::Serialize;

use crate::exit::ExitReason;
use crate::path::ChildPath;
use crate::spec::{ChildKind, Restart};
use crate::supervisor::Supervisor;

/// Whether a child is running (OTP's pid, `undefined` or `restarting`).
#[derive(Clone, Debug)]
pub enum ChildState {
    /// Running as this actor.
    Running(ActorCell),
    /// Not running: stopped by `terminate_child`, or a transient child that
    /// exited normally. The spec is kept.
    NotRunning,
    /// A restart is pending: its start failed and will be tried again, or it is
    /// waiting out a restart backoff.
    Restarting,
}

impl ChildState {
    /// True if running.
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running(_))
    }

    /// The actor, if running.
    pub fn actor(&self) -> Option<&ActorCell> {
        match self {
            Self::Running(cell) => Some(cell),
            _ => None,
        }
    }
}

/// One child of a supervisor, as [`Supervisor::which_children`] reports it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child's path (its id is the last segment).
    pub path: ChildPath,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// When it is restarted.
    pub restart: Restart,
    /// Running, not running, or restarting.
    pub state: ChildState,
    /// How many times its supervisor restarted it.
    pub restart_count: u32,
    /// Why it last exited, if it ever did.
    pub last_exit: Option<ExitReason>,
}

impl ChildInfo {
    /// The child's id.
    pub fn id(&self) -> &str {
        self.path.id()
    }

    /// A handle on the child, if it is a running supervisor.
    pub fn supervisor(&self) -> Option<Supervisor> {
        match (&self.kind, &self.state) {
            (ChildKind::Supervisor, ChildState::Running(cell)) => {
                Some(Supervisor::from_cell(cell.clone(), self.path.clone()))
            }
            _ => None,
        }
    }
}

/// Counts of a supervisor's children, as OTP's `count_children`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChildCounts {
    /// Child specs, running or not.
    pub specs: usize,
    /// Children running now.
    pub active: usize,
    /// Specs of child supervisors, running or not.
    pub supervisors: usize,
    /// Specs of workers, running or not.
    pub workers: usize,
}

/// The state of a node in a [`TreeSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Running.
    Running,
    /// Spec kept, not running.
    NotRunning,
    /// A restart is pending.
    Restarting,
    /// A supervisor that stopped while the snapshot was taken.
    Gone,
}

/// One node of a [`TreeSnapshot`]: a supervisor or a worker.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct NodeSnapshot {
    /// The node's path.
    pub path: ChildPath,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its state.
    pub state: NodeState,
    /// When it is restarted (`None` for the root).
    pub restart: Option<Restart>,
    /// How many times it was restarted.
    pub restart_count: u32,
    /// Why it last exited, if it ever did.
    pub last_exit: Option<ExitReason>,
    /// A supervisor's children, in start order.
    pub children: Vec<NodeSnapshot>,
}

/// A serialisable picture of a whole tree, taken by [`Supervisor::snapshot`].
///
/// Each supervisor answers for its own children, one after the other, so a tree
/// that changes meanwhile gives a picture that is right per supervisor.
#[derive(Clone, Debug, Serialize)]
pub struct TreeSnapshot {
    /// The supervisor the snapshot was taken from, with everything below it.
    pub root: NodeSnapshot,
}

impl TreeSnapshot {
    /// Every node, depth first, parents before children.
    pub fn nodes(&self) -> Vec<&NodeSnapshot> {
        fn walk<'a>(n: &'a NodeSnapshot, out: &mut Vec<&'a NodeSnapshot>) {
            out.push(n);
            for c in &n.children {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// The node at `path`, if it is in the picture.
    pub fn find(&self, path: &str) -> Option<&NodeSnapshot> {
        self.nodes().into_iter().find(|n| n.path.as_str() == path)
    }
}

impl fmt::Display for TreeSnapshot {
    /// Draws the tree, one node a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line(n: &NodeSnapshot, prefix: &str, last: bool, top: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let branch = if top {
                ""
            } else if last {
                "└─ "
            } else {
                "├─ "
            };
            let state = match n.state {
                NodeState::Running => "running",
                NodeState::NotRunning => "not running",
                NodeState::Restarting => "restarting",
                NodeState::Gone => "gone",
            };
            let kind = match n.kind {
                ChildKind::Supervisor => "supervisor",
                ChildKind::Worker => "worker",
            };
            write!(f, "{prefix}{branch}{} ({kind}, {state}", n.path.id())?;
            if n.restart_count > 0 {
                let s = if n.restart_count == 1 { "" } else { "s" };
                write!(f, ", {} restart{s}", n.restart_count)?;
            }
            if let Some(reason) = &n.last_exit {
                write!(f, ", last exit: {reason}")?;
            }
            writeln!(f, ")")?;
            let child_prefix = if top {
                String::new()
            } else {
                format!("{prefix}{}", if last { "   " } else { "│  " })
            };
            for (i, c) in n.children.iter().enumerate() {
                line(c, &child_prefix, i + 1 == n.children.len(), false, f)?;
            }
            Ok(())
        }
        line(&self.root, "", true, true, f)
    }
}
