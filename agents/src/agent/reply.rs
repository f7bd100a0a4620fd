//! [`Reply`]: what an asker gets back from a turn.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::TurnError;
use super::turn::Outcome;
use crate::message::AgentMessage;
use crate::model::Usage;

/// The answer to an [`ask`](super::AgentRef::ask): the reply message and how the turn went.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Reply {
    /// The reply, from the agent to the asker, `in_reply_to` the task.
    pub message: AgentMessage,
    /// How the turn ended.
    pub outcome: Outcome,
    /// Model calls made.
    pub iterations: u32,
    /// Tokens used.
    pub usage: Usage,
    /// The answer as JSON, when structured output was asked for.
    pub structured: Option<Value>,
}

impl Reply {
    /// The reply's text.
    pub fn text(&self) -> String {
        self.message.text()
    }

    /// The structured answer as a `T`.
    ///
    /// # Errors
    ///
    /// [`TurnError::StructuredOutputInvalid`] if there is none or it is not a `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, TurnError> {
        let value = self
            .structured
            .clone()
            .ok_or_else(|| TurnError::StructuredOutputInvalid("no structured answer".into()))?;
        serde_json::from_value(value).map_err(|e| TurnError::StructuredOutputInvalid(e.to_string()))
    }
}
