//! What a viewer sees: the [`View`] of a running system, and the [`Delta`]s that change it.
//!
//! The view is plain data, serialisable both ways, so the web page, `warden top` and tests
//! all keep their copy the same way: start from a snapshot, then [`View::apply`] every delta
//! whose [`seq`](Frame::seq) is past the snapshot's. Everything in it is bounded: the tree
//! evicts nodes that stopped once it holds [`StudioBuilder::max_tree_nodes`](crate::StudioBuilder::max_tree_nodes),
//! and the recent calls and the timeline are rings.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// How many finished calls a view keeps.
pub const RECENT_CALLS: usize = 100;
/// How many timeline entries a view keeps.
pub const TIMELINE: usize = 200;

/// A whole picture of the system, as of delta [`seq`](Self::seq).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The last delta this view includes.
    pub seq: u64,
    /// The supervision tree, by path (`root/agents/clerk`).
    pub tree: BTreeMap<String, NodeView>,
    /// The agents, by name.
    pub agents: BTreeMap<String, AgentView>,
    /// Model and tool calls running now, by id.
    pub calls: BTreeMap<u64, CallView>,
    /// The last [`RECENT_CALLS`] calls that ended, oldest first.
    pub recent_calls: VecDeque<CallView>,
    /// Escalations waiting for an answer, by id.
    pub escalations: BTreeMap<u64, EscalationView>,
    /// The last [`TIMELINE`] restarts, give-ups, escalations and chaos actions, oldest first.
    pub timeline: VecDeque<TimelineEntry>,
    /// What runs past the stuck threshold now, by [key](StuckView::key).
    pub stuck: BTreeMap<String, StuckView>,
    /// Inputs the studio dropped because its queue was full (its observers never wait).
    pub dropped: u64,
    /// Other processes' studios this one follows ([`Studio::follow`](crate::Studio::follow)),
    /// by node name. What they show is in this view too, named `NODE:...`.
    #[serde(default)]
    pub members: BTreeMap<String, MemberView>,
}

/// A followed studio of another process (a node).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// The node's name: its tree paths, agents and stuck keys are prefixed `NAME:`.
    pub name: String,
    /// Its studio's address (without the token).
    pub url: String,
    /// `connecting`, `live` or `down` (what it showed stays, as last seen).
    pub state: String,
    /// Why it is down, when it is.
    pub error: Option<String>,
    /// Since when it is in this state (milliseconds since the Unix epoch).
    pub since_ms: u64,
}

/// One node of the supervision tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Its path.
    pub path: String,
    /// `worker` or `supervisor`.
    pub kind: String,
    /// `running`, `restarting`, `exited`, `start_failed`, `not_running`, `gave_up` or `stopped`.
    pub state: String,
    /// How many times its supervisor restarted it.
    pub restarts: u32,
    /// Why it last exited (or failed to start).
    pub last_exit: Option<String>,
    /// The delay before its pending restart, when it waits out a backoff.
    pub backoff_ms: Option<u64>,
    /// A supervisor's restarts inside its intensity window, as of its last restart.
    pub intensity_used: Option<u32>,
    /// A supervisor's intensity: how many restarts its window allows.
    pub intensity_max: Option<u32>,
    /// A supervisor's intensity window.
    pub intensity_period_ms: Option<u64>,
    /// When it last changed (milliseconds since the Unix epoch).
    pub changed_ms: u64,
}

impl NodeView {
    /// A running worker at `path`, not yet restarted.
    pub fn new(path: &str) -> Self {
        Self {
            path: path.into(),
            kind: "worker".into(),
            state: "running".into(),
            restarts: 0,
            last_exit: None,
            backoff_ms: None,
            intensity_used: None,
            intensity_max: None,
            intensity_period_ms: None,
            changed_ms: 0,
        }
    }
}

/// One agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    /// Its name.
    pub name: String,
    /// How many times it has started.
    pub generation: u64,
    /// `idle`, `turn`, `waiting_for_human` or `escalated`.
    pub activity: String,
    /// The task of the turn in flight.
    pub task: Option<String>,
    /// When the turn in flight started (milliseconds since the Unix epoch).
    pub turn_started_ms: Option<u64>,
    /// The ReAct iteration of the turn in flight.
    pub iteration: u32,
    /// The question it waits on, while `waiting_for_human`.
    pub question: Option<String>,
    /// Tasks in its hands (queued or running), when the studio has its handle.
    pub queued: Option<usize>,
    /// Its queue's bound, when the studio has its handle.
    pub queue_capacity: Option<usize>,
    /// Turns ended.
    pub turns: u64,
    /// Turns that failed.
    pub failed_turns: u64,
    /// How its last turn ended.
    pub last_end: Option<String>,
    /// Tokens read by its model calls.
    pub input_tokens: u64,
    /// Tokens written by its model calls.
    pub output_tokens: u64,
    /// What those tokens cost, at the models' prices ([`Model::with_price`](warden_agents::Model::with_price);
    /// 0 for models without one).
    pub cost: f64,
}

/// One model or tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    /// The call's id (its span's).
    pub id: u64,
    /// `model` or `tool`.
    pub kind: String,
    /// The model's or tool's name.
    pub name: String,
    /// The agent whose turn made it, when known.
    pub agent: Option<String>,
    /// When it started (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// How long it took, once ended.
    pub latency_ms: Option<u64>,
    /// Tokens read (model calls).
    pub input_tokens: Option<u64>,
    /// Tokens written (model calls).
    pub output_tokens: Option<u64>,
    /// What it cost, at the model's price ([`Model::with_price`](warden_agents::Model::with_price)).
    pub cost: Option<f64>,
    /// `ok`, or the error's kind, once ended.
    pub outcome: Option<String>,
    /// The tool's circuit breaker after the call (`CLOSED`, `OPEN`, ...).
    pub breaker: Option<String>,
}

/// An escalation that waits for an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EscalationView {
    /// Its id: answer it with `POST api/escalations/{id}/answer`.
    pub id: u64,
    /// Who raised it.
    pub origin: String,
    /// The agent asking, for a human question.
    pub agent: Option<String>,
    /// What it says: the question, or the concern.
    pub text: String,
    /// When it was raised (milliseconds since the Unix epoch).
    pub raised_ms: u64,
}

/// One entry of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When (milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// `restart`, `gave_up`, `auto_shutdown`, `abandoned`, `escalation`, `answered` or `chaos`.
    pub kind: String,
    /// The path (or agent) it is about.
    pub subject: String,
    /// What happened, in words.
    pub text: String,
}

/// Something that runs past the stuck threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StuckView {
    /// `turn:<agent>`, `model:<id>` or `tool:<id>`.
    pub key: String,
    /// `turn`, `model` or `tool`.
    pub kind: String,
    /// The agent, model or tool.
    pub name: String,
    /// The agent whose turn it is, when known.
    pub agent: Option<String>,
    /// When it started (milliseconds since the Unix epoch).
    pub since_ms: u64,
    /// The threshold it passed.
    pub threshold_ms: u64,
}

/// One change to a [`View`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delta {
    /// A tree node is new or changed.
    Node(NodeView),
    /// A stopped node left the tree (the tree is bounded).
    NodeRemoved {
        /// Its path.
        path: String,
    },
    /// An agent is new or changed.
    Agent(AgentView),
    /// A call started.
    CallStarted(CallView),
    /// A call ended.
    CallEnded(CallView),
    /// An escalation waits for an answer.
    Escalation(EscalationView),
    /// An escalation no longer waits: answered, or its asker gone.
    EscalationClosed {
        /// Its id.
        id: u64,
    },
    /// A timeline entry.
    Timeline(TimelineEntry),
    /// Something passed the stuck threshold.
    Stuck(StuckView),
    /// Something flagged stuck ended.
    Unstuck {
        /// Its key.
        key: String,
    },
    /// A followed studio is new, or changed state.
    Member(MemberView),
    /// The studio dropped inputs: the total so far.
    Dropped {
        /// Inputs dropped since the studio started.
        total: u64,
    },
}

/// What travels to a viewer: a delta or a whole view, numbered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "frames are transient; a delta is the common case"
)]
pub enum Frame {
    /// A whole view: the first frame, and the one a viewer that fell behind gets instead of
    /// what it missed.
    Snapshot {
        /// The view.
        view: Box<View>,
    },
    /// One change, numbered from 1.
    Delta {
        /// Its number: a view at `seq - 1` applies it.
        seq: u64,
        /// The change.
        delta: Delta,
    },
}

impl Frame {
    /// The number of the last change this frame includes.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Snapshot { view } => view.seq,
            Self::Delta { seq, .. } => *seq,
        }
    }
}

impl View {
    /// Takes in a frame: a snapshot replaces the view; a delta past the view's
    /// [`seq`](Self::seq) is applied, an older one ignored (it is in the view already).
    pub fn take(&mut self, frame: Frame) {
        match frame {
            Frame::Snapshot { view } => *self = *view,
            Frame::Delta { seq, delta } => {
                if seq > self.seq {
                    self.apply(delta);
                    self.seq = seq;
                }
            }
        }
    }

    /// Applies one change.
    pub fn apply(&mut self, delta: Delta) {
        match delta {
            Delta::Node(node) => {
                self.tree.insert(node.path.clone(), node);
            }
            Delta::NodeRemoved { path } => {
                self.tree.remove(&path);
            }
            Delta::Agent(agent) => {
                self.agents.insert(agent.name.clone(), agent);
            }
            Delta::CallStarted(call) => {
                self.calls.insert(call.id, call);
            }
            Delta::CallEnded(call) => {
                self.calls.remove(&call.id);
                push_bounded(&mut self.recent_calls, call, RECENT_CALLS);
            }
            Delta::Escalation(escalation) => {
                self.escalations.insert(escalation.id, escalation);
            }
            Delta::EscalationClosed { id } => {
                self.escalations.remove(&id);
            }
            Delta::Timeline(entry) => push_bounded(&mut self.timeline, entry, TIMELINE),
            Delta::Stuck(stuck) => {
                self.stuck.insert(stuck.key.clone(), stuck);
            }
            Delta::Unstuck { key } => {
                self.stuck.remove(&key);
            }
            Delta::Member(member) => {
                self.members.insert(member.name.clone(), member);
            }
            Delta::Dropped { total } => self.dropped = total,
        }
    }

    /// The children of the node at `path`, in path order: a range of the tree, whose keys
    /// keep a node's descendants together right after it.
    pub fn children_of<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a NodeView> + 'a {
        let prefix = format!("{path}/");
        let len = prefix.len();
        self.tree
            .range(prefix.clone()..)
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .filter(move |(key, _)| !key[len..].contains('/'))
            .map(|(_, node)| node)
    }

    /// The nodes without a parent in the tree: the roots.
    pub fn roots(&self) -> impl Iterator<Item = &NodeView> + '_ {
        self.tree
            .values()
            .filter(|node| parent_of(&node.path).is_none_or(|parent| !self.tree.contains_key(parent)))
    }
}

/// The parent of a path (`root/a` → `root`).
pub fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(parent, _)| parent)
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, bound: usize) {
    if ring.len() >= bound {
        ring.pop_front();
    }
    ring.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str) -> NodeView {
        NodeView::new(path)
    }

    #[test]
    fn deltas_up_to_the_snapshot_are_skipped() {
        let mut view = View::default();
        view.take(Frame::Delta {
            seq: 1,
            delta: Delta::Node(node("root")),
        });
        let snapshot = view.clone();
        view.take(Frame::Delta {
            seq: 2,
            delta: Delta::Node(node("root/a")),
        });
        let mut late = View::default();
        late.take(Frame::Snapshot {
            view: Box::new(snapshot),
        });
        late.take(Frame::Delta {
            seq: 1,
            delta: Delta::NodeRemoved { path: "root".into() },
        });
        late.take(Frame::Delta {
            seq: 2,
            delta: Delta::Node(node("root/a")),
        });
        assert_eq!(late, view);
        assert_eq!(view.children_of("root").count(), 1);
        assert_eq!(view.roots().map(|n| n.path.as_str()).collect::<Vec<_>>(), ["root"]);
    }

    #[test]
    fn children_are_the_direct_ones_only() {
        let mut view = View::default();
        for path in ["root", "root/a", "root/a/x", "root/ab", "root-b", "root-b/c"] {
            view.apply(Delta::Node(node(path)));
        }
        let paths = |parent: &str| view.children_of(parent).map(|n| n.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths("root"), ["root/a", "root/ab"]);
        assert_eq!(paths("root/a"), ["root/a/x"]);
        assert!(paths("root/ab").is_empty());
        assert_eq!(paths("root-b"), ["root-b/c"]);
    }

    #[test]
    fn frames_round_trip_as_json() {
        let frame = Frame::Delta {
            seq: 7,
            delta: Delta::Unstuck { key: "tool:3".into() },
        };
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            json,
            r#"{"frame":"delta","seq":7,"delta":{"type":"unstuck","key":"tool:3"}}"#
        );
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), frame);
    }

    #[test]
    fn rings_are_bounded() {
        let mut view = View::default();
        for at_ms in 0..(TIMELINE as u64 + 10) {
            view.apply(Delta::Timeline(TimelineEntry {
                at_ms,
                kind: "chaos".into(),
                subject: "root/a".into(),
                text: "kill".into(),
            }));
        }
        assert_eq!(view.timeline.len(), TIMELINE);
        assert_eq!(view.timeline.front().unwrap().at_ms, 10);
    }
}
