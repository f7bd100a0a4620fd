//! [`Toolkit`]: the tools an agent may call, in groups that can be switched
//! on and off, and their schemas for the model.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use warden_tools::{tool_fn, Toolkit, ToolError};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Query { q: String }
//!
//! let toolkit = Toolkit::new()
//!     .tool(tool_fn("echo", "Repeats q.", |a: Query| async move { Ok::<_, ToolError>(a.q) }))
//!     .group("web", |g| g.tool(tool_fn("search", "Searches the web.", |a: Query| async move { Ok::<_, ToolError>(vec![a.q]) })));
//!
//! let names = |t: &Toolkit| t.schemas().iter().map(|s| s.name.to_string()).collect::<Vec<_>>();
//! assert_eq!(names(&toolkit), ["echo", "search"]);
//! toolkit.disable_group("web");
//! assert_eq!(names(&toolkit), ["echo"]);
//! assert!(toolkit.get("search").is_none());
//! ```
//!
//! Clones share the groups' switches: disabling a group in the toolkit an
//! executor was built from makes the executor answer
//! [`ToolError::NotFound`](crate::ToolError::NotFound) for its tools too.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::tool::{DynTool, Tool, ToolSchema, into_dyn};

struct Group {
    name: Arc<str>,
    enabled: AtomicBool,
}

#[derive(Clone)]
struct Entry {
    tool: Arc<dyn DynTool>,
    group: Option<Arc<Group>>,
}

impl Entry {
    fn enabled(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.enabled.load(Ordering::Relaxed))
    }
}

/// A set of tools and groups of tools. Cheap to clone; clones share the
/// groups' on/off switches.
#[derive(Clone, Default)]
pub struct Toolkit {
    entries: Vec<Entry>,
    index: HashMap<Arc<str>, usize>,
    groups: Vec<Arc<Group>>,
}

impl fmt::Debug for Toolkit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toolkit")
            .field("tools", &self.entries.iter().map(|e| e.tool.name()).collect::<Vec<_>>())
            .field(
                "groups",
                &self
                    .groups
                    .iter()
                    .map(|g| (&*g.name, g.enabled.load(Ordering::Relaxed)))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The tools of one group, as [`Toolkit::group`] builds them.
#[derive(Default)]
pub struct GroupBuilder {
    tools: Vec<Arc<dyn DynTool>>,
    enabled: bool,
}

impl fmt::Debug for GroupBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupBuilder")
            .field("tools", &self.tools.iter().map(|t| t.name()).collect::<Vec<_>>())
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl GroupBuilder {
    /// Adds a tool to the group.
    pub fn tool(self, tool: impl Tool) -> Self {
        self.dyn_tool(into_dyn(tool))
    }

    /// Adds a type-erased tool to the group.
    pub fn dyn_tool(mut self, tool: Arc<dyn DynTool>) -> Self {
        self.tools.push(tool);
        self
    }

    /// Starts the group switched off (groups start on by default).
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

impl Toolkit {
    /// An empty toolkit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool outside any group (always enabled). A tool with the name
    /// of one already there replaces it.
    pub fn tool(self, tool: impl Tool) -> Self {
        self.dyn_tool(into_dyn(tool))
    }

    /// Adds a type-erased tool outside any group.
    pub fn dyn_tool(mut self, tool: Arc<dyn DynTool>) -> Self {
        self.insert(Entry { tool, group: None });
        self
    }

    /// Adds a group of tools that can be switched on and off together.
    pub fn group(mut self, name: impl Into<Arc<str>>, build: impl FnOnce(GroupBuilder) -> GroupBuilder) -> Self {
        let built = build(GroupBuilder {
            tools: Vec::new(),
            enabled: true,
        });
        let group = Arc::new(Group {
            name: name.into(),
            enabled: AtomicBool::new(built.enabled),
        });
        for tool in built.tools {
            self.insert(Entry {
                tool,
                group: Some(group.clone()),
            });
        }
        self.groups.push(group);
        self
    }

    fn insert(&mut self, entry: Entry) {
        let name: Arc<str> = Arc::from(entry.tool.name());
        match self.index.get(&name) {
            Some(&i) => self.entries[i] = entry,
            None => {
                self.index.insert(name, self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    fn switch(&self, group: &str, on: bool) -> bool {
        let mut found = false;
        for g in self.groups.iter().filter(|g| &*g.name == group) {
            g.enabled.store(on, Ordering::Relaxed);
            found = true;
        }
        found
    }

    /// Switches a group on; `false` if there is no such group.
    pub fn enable_group(&self, group: &str) -> bool {
        self.switch(group, true)
    }

    /// Switches a group off: its tools leave [`schemas`](Self::schemas) and
    /// calls to them fail with `NotFound`. `false` if there is no such group.
    pub fn disable_group(&self, group: &str) -> bool {
        self.switch(group, false)
    }

    /// Whether a group is on; `None` if there is no such group.
    pub fn is_group_enabled(&self, group: &str) -> Option<bool> {
        self.groups
            .iter()
            .find(|g| &*g.name == group)
            .map(|g| g.enabled.load(Ordering::Relaxed))
    }

    /// The schemas of the enabled tools, in the order they were added.
    pub fn schemas(&self) -> Vec<ToolSchema> {
        self.entries
            .iter()
            .filter(|e| e.enabled())
            .map(|e| e.tool.schema().clone())
            .collect()
    }

    /// The enabled tool named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn DynTool>> {
        let entry = &self.entries[*self.index.get(name)?];
        entry.enabled().then(|| entry.tool.clone())
    }

    /// Whether a tool named `name` is there and enabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.index.get(name).is_some_and(|&i| self.entries[i].enabled())
    }

    /// Every tool, enabled or not, in the order they were added.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn DynTool>> {
        self.entries.iter().map(|e| &e.tool)
    }

    /// How many tools, enabled or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T: Tool> From<T> for Toolkit {
    fn from(tool: T) -> Self {
        Toolkit::new().tool(tool)
    }
}
