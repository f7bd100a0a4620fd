//! What agents send each other: [`AgentMessage`], addressed with [`Address`]es.
//!
//! Agents, like Erlang processes, share nothing and talk only by messages. An
//! [`AgentMessage`] is one such message: who sent it, to whom, in which [`Role`], what it
//! says (the model layer's [`ContentBlock`]s: text, images, tool calls and results), free
//! metadata, when, and which message it answers. It is plain data, serialisable with serde,
//! because later work sends it to other machines and writes it to a journal: JSON through
//! serde directly, and a compact binary form through [`codec`](crate::codec).
//!
//! ```
//! use warden_agents::message::{Address, AgentMessage};
//!
//! let task = AgentMessage::user("Summarise the report.")
//!     .from(Address::external("alice"))
//!     .to(Address::name("writer"))
//!     .with_metadata("priority", serde_json::json!(2));
//! let answer = task.reply(Address::name("writer"), "It says three things.");
//! assert_eq!(answer.in_reply_to, Some(task.id));
//! assert_eq!(answer.recipient, Address::external("alice"));
//! assert_eq!(answer.text(), "It says three things.");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use warden_supervisor::ChildPath;

use crate::model::{ContentBlock, Role};

/// A message id: 128 random bits, so ids made on different machines do not collide.
/// Shown (and serialised) as 32 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) u128);

impl MessageId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(fastrand::u128(..))
    }

    /// The id as a number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The id of this number.
    pub fn from_u128(id: u128) -> Self {
        Self(id)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// An id that is not 1 to 32 hexadecimal digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid message id {0:?}: expected 1 to 32 hexadecimal digits")]
pub struct InvalidMessageId(pub String);

impl FromStr for MessageId {
    type Err = InvalidMessageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 32 {
            return Err(InvalidMessageId(s.to_owned()));
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| InvalidMessageId(s.to_owned()))
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a message goes, or whom it comes from.
///
/// A [`Registry`](crate::registry::Registry) resolves [`Name`](Self::Name),
/// [`Path`](Self::Path) and [`Team`](Self::Team) addresses to agents and teams;
/// [`External`](Self::External) names someone outside the tree (a user, a test, a service).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Address {
    /// Nobody in particular: a message not yet addressed. [`AgentRef::ask`](crate::agent::AgentRef::ask)
    /// fills in the recipient of such a message.
    Unspecified,
    /// An agent by its registered name (`planner`).
    Name(String),
    /// An agent by its path in the supervision tree (`root/agents/planner`).
    Path(ChildPath),
    /// A team: a group address that routes to its members.
    Team(String),
    /// Someone outside the tree: a user, a test, an HTTP client.
    External(String),
}

impl Address {
    /// An agent's name.
    pub fn name(name: impl Into<String>) -> Self {
        Self::Name(name.into())
    }

    /// A tree path.
    pub fn path(path: ChildPath) -> Self {
        Self::Path(path)
    }

    /// A team's name.
    pub fn team(name: impl Into<String>) -> Self {
        Self::Team(name.into())
    }

    /// Someone outside the tree.
    pub fn external(name: impl Into<String>) -> Self {
        Self::External(name.into())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unspecified => f.write_str("unspecified"),
            Self::Name(n) => f.write_str(n),
            Self::Path(p) => write!(f, "path:{p}"),
            Self::Team(t) => write!(f, "team:{t}"),
            Self::External(e) => write!(f, "external:{e}"),
        }
    }
}

/// One message between agents (or between an agent and the outside).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentMessage {
    /// Unique id.
    pub id: MessageId,
    /// Who sent it.
    pub sender: Address,
    /// To whom.
    pub recipient: Address,
    /// In which role: [`Role::User`] for a task or a question, [`Role::Assistant`] for an
    /// agent's answer, [`Role::System`] for instructions.
    pub role: Role,
    /// What it says.
    pub content: Vec<ContentBlock>,
    /// The id of the message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// Anything else, by key (a trace id, a priority, a deadline...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// When it was made.
    pub timestamp: SystemTime,
}

impl AgentMessage {
    /// A message with a fresh id and the current time, not yet addressed.
    pub fn new(role: Role, content: Vec<ContentBlock>) -> Self {
        Self {
            id: MessageId::random(),
            sender: Address::Unspecified,
            recipient: Address::Unspecified,
            role,
            content,
            in_reply_to: None,
            metadata: BTreeMap::new(),
            timestamp: SystemTime::now(),
        }
    }

    /// A task or question: a [`Role::User`] message with one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, vec![ContentBlock::text(text)])
    }

    /// The same message from `sender`.
    pub fn from(mut self, sender: Address) -> Self {
        self.sender = sender;
        self
    }

    /// The same message to `recipient`.
    pub fn to(mut self, recipient: Address) -> Self {
        self.recipient = recipient;
        self
    }

    /// The same message with a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// An [`Role::Assistant`] answer to this message from `sender`, with one text block.
    pub fn reply(&self, sender: Address, text: impl Into<String>) -> Self {
        self.reply_with(sender, vec![ContentBlock::text(text)])
    }

    /// An [`Role::Assistant`] answer to this message from `sender`, with these blocks.
    pub fn reply_with(&self, sender: Address, content: Vec<ContentBlock>) -> Self {
        let mut reply = Self::new(Role::Assistant, content).from(sender).to(self.sender.clone());
        reply.in_reply_to = Some(self.id);
        reply
    }

    /// The blocks a task is made of: its text and images, without any tool calls or tool
    /// results (those belong to the sender's conversation, not to the recipient's).
    pub fn text_and_images(&self) -> Vec<ContentBlock> {
        self.content
            .iter()
            .filter(|b| matches!(b, ContentBlock::Text { .. } | ContentBlock::Image { .. }))
            .cloned()
            .collect()
    }

    /// The text blocks joined together.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for block in &self.content {
            if let ContentBlock::Text { text } = block {
                out.push_str(text);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        let id = MessageId::from_u128(0xabc);
        assert_eq!(id.to_string(), "00000000000000000000000000000abc");
        assert_eq!("abc".parse::<MessageId>(), Ok(id));
        assert!("xyz".parse::<MessageId>().is_err());
        assert!("".parse::<MessageId>().is_err());
        assert!("0".repeat(33).parse::<MessageId>().is_err());
    }
}
