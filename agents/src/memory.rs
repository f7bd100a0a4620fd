//! An agent's conversation memory, bounded by a window or a token budget.
//!
//! [`Memory`] is the list of [`Message`]s an agent sends its model (the system prompt is
//! kept apart, by the agent, and never trimmed). It belongs to one agent's actor and to no
//! one else. Left alone it grows with every turn, so it has a [`MemoryLimit`]: at most so
//! many messages, or at most so many (estimated) tokens.
//!
//! Trimming drops the oldest *exchanges* whole: it only cuts just before a user message that
//! is not a tool result, so a tool call is never kept without its result or the other way
//! round (providers reject both). The newest exchange is always kept, even when it alone is
//! over the limit.
//!
//! ```
//! use warden_agents::memory::{Memory, MemoryLimit};
//! use warden_agents::model::Message;
//!
//! let mut memory = Memory::new(MemoryLimit::Messages(4));
//! for i in 0..3 {
//!     memory.push(Message::user(format!("question {i}")));
//!     memory.push(Message::assistant(format!("answer {i}")));
//! }
//! memory.trim();
//! assert_eq!(memory.len(), 4);
//! assert_eq!(memory.messages()[0].text(), "question 1");
//! ```

use serde::{Deserialize, Serialize};

use crate::model::{ContentBlock, Message, Role, close_dangling_tool_calls};

/// How much an agent remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemoryLimit {
    /// Everything (until the provider refuses the context).
    Unbounded,
    /// At most this many messages. The default is 64.
    Messages(usize),
    /// At most this many tokens, estimated as [`Memory::estimated_tokens`] does.
    Tokens(usize),
}

impl Default for MemoryLimit {
    fn default() -> Self {
        Self::Messages(64)
    }
}

/// A conversation, oldest message first, with a limit. See the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    messages: Vec<Message>,
    limit: MemoryLimit,
}

/// Estimated tokens of one message: about four characters a token, plus a few for framing.
fn estimate(message: &Message) -> usize {
    let chars: usize = message
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::Text { text } => text.len(),
            ContentBlock::ToolUse { id, name, input } => id.len() + name.len() + input.to_string().len(),
            ContentBlock::ToolResult {
                tool_use_id, content, ..
            } => tool_use_id.len() + content.len(),
            ContentBlock::Image { .. } => 1024,
        })
        .sum();
    chars.div_ceil(4) + 4
}

/// Whether an exchange may start at this message: a user message that is not a tool result.
fn starts_exchange(message: &Message) -> bool {
    message.role == Role::User
        && !message
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
}

impl Memory {
    /// An empty memory with this limit.
    pub fn new(limit: MemoryLimit) -> Self {
        Self {
            messages: Vec::new(),
            limit,
        }
    }

    /// The limit.
    pub fn limit(&self) -> MemoryLimit {
        self.limit
    }

    /// The messages, oldest first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Adds a message at the end (it is not trimmed until [`trim`](Self::trim)).
    pub fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.messages.clear();
    }

    /// The estimated token count of all the messages (about four characters a token).
    pub fn estimated_tokens(&self) -> usize {
        self.messages.iter().map(estimate).sum()
    }

    fn over_limit(&self) -> bool {
        match self.limit {
            MemoryLimit::Unbounded => false,
            MemoryLimit::Messages(n) => self.messages.len() > n,
            MemoryLimit::Tokens(n) => self.estimated_tokens() > n,
        }
    }

    /// Drops the oldest exchanges until the memory is within its limit, or only the newest
    /// exchange is left. Returns how many messages were dropped.
    pub fn trim(&mut self) -> usize {
        let mut dropped = 0;
        while self.over_limit() {
            let Some(cut) = (1..self.messages.len()).find(|&i| starts_exchange(&self.messages[i])) else {
                break;
            };
            self.messages.drain(..cut);
            dropped += cut;
        }
        dropped
    }

    /// How many tool calls have no result yet.
    pub fn unanswered_tool_calls(&self) -> usize {
        let mut copy = self.messages.clone();
        close_dangling_tool_calls(&mut copy)
    }

    /// Answers every tool call that has no result with an "interrupted" error result
    /// ([`INTERRUPTED_TOOL_RESULT`](crate::model::INTERRUPTED_TOOL_RESULT)), so the
    /// conversation is valid again. Returns how many were closed.
    pub fn close_pending_tool_calls(&mut self) -> usize {
        close_dangling_tool_calls(&mut self.messages)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::ToolUse {
                id: id.into(),
                name: "t".into(),
                input: json!({}),
            }],
        }
    }

    #[test]
    fn trimming_keeps_tool_calls_with_their_results() {
        let mut memory = Memory::new(MemoryLimit::Messages(3));
        memory.push(Message::user("one"));
        memory.push(call("a"));
        memory.push(Message::tool_results(vec![ContentBlock::tool_result("a", "r")]));
        memory.push(Message::assistant("done"));
        memory.push(Message::user("two"));
        memory.push(call("b"));
        memory.push(Message::tool_results(vec![ContentBlock::tool_result("b", "r")]));
        memory.trim();
        // The newest exchange is four messages: kept whole although over the limit.
        assert_eq!(memory.messages()[0].text(), "two");
        assert_eq!(memory.len(), 3);
        assert_eq!(memory.unanswered_tool_calls(), 0);
    }

    #[test]
    fn token_budget() {
        let mut memory = Memory::new(MemoryLimit::Tokens(30));
        for i in 0..10 {
            memory.push(Message::user(format!("question number {i} with some words")));
            memory.push(Message::assistant("an answer of some length"));
        }
        memory.trim();
        assert!(memory.estimated_tokens() <= 30);
        assert_eq!(memory.messages()[0].text(), "question number 9 with some words");
    }

    #[test]
    fn pending_calls_are_closed() {
        let mut memory = Memory::new(MemoryLimit::Unbounded);
        memory.push(Message::user("go"));
        memory.push(call("a"));
        assert_eq!(memory.unanswered_tool_calls(), 1);
        assert_eq!(memory.close_pending_tool_calls(), 1);
        assert_eq!(memory.unanswered_tool_calls(), 0);
    }
}
