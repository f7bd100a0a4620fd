//! The one place that knows how an [`AgentMessage`] is written as bytes.
//!
//! Messages cross machines and go into journals, so they need a compact, stable binary form.
//! Everything binary lives in this module: swapping the format (bincode is unmaintained, see
//! RUSTSEC-2025-0141) means changing this file only.
//!
//! The binary form is one version byte ([`FORMAT_VERSION`]) followed by the message in
//! bincode 2's standard configuration. bincode cannot read self-describing data (JSON values,
//! internally tagged enums), so the message is first turned into a private wire shape: tool
//! arguments and metadata values travel as JSON text inside it. Decoding never panics on bad
//! bytes, and refuses messages larger than [`MAX_MESSAGE_BYTES`] before allocating for them.
//!
//! JSON needs no wire shape: [`to_json`] and [`from_json`] are serde_json on the message
//! itself, here only so both forms are found in one place.
//!
//! ```
//! use warden_agents::codec;
//! use warden_agents::message::{Address, AgentMessage};
//!
//! let message = AgentMessage::user("hello").from(Address::external("alice")).to(Address::name("bob"));
//! let bytes = codec::to_bytes(&message)?;
//! assert_eq!(codec::from_bytes(&bytes)?, message);
//! assert_eq!(codec::from_json(&codec::to_json(&message)?)?, message);
//! assert!(codec::from_bytes(&bytes[..bytes.len() - 1]).is_err());
//! # Ok::<(), codec::CodecError>(())
//! ```

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::{Address, AgentMessage, MessageId};
use crate::model::{ContentBlock, Role};

/// The first byte of every encoded message: the version of the binary form.
pub const FORMAT_VERSION: u8 = 1;

/// The largest encoded message [`from_bytes`] accepts (16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The message could not be written.
    #[error("cannot encode message: {detail}")]
    Encode {
        /// What went wrong.
        detail: String,
    },
    /// The bytes are not a message of this format.
    #[error("cannot decode message: {detail}")]
    Decode {
        /// What went wrong.
        detail: String,
    },
    /// The bytes are of a format version this build does not know.
    #[error("unknown message format version {0}")]
    UnknownVersion(u8),
    /// The bytes are longer than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// JSON could not be written or read.
    #[error("invalid json message")]
    Json(#[from] serde_json::Error),
}

/// The message as bincode writes it: no self-describing parts.
#[derive(Serialize, Deserialize)]
struct WireMessage {
    id: u128,
    sender: Address,
    recipient: Address,
    role: Role,
    content: Vec<WireBlock>,
    in_reply_to: Option<u128>,
    /// Values as JSON text.
    metadata: Vec<(String, String)>,
    timestamp: SystemTime,
}

#[derive(Serialize, Deserialize)]
enum WireBlock {
    Text(String),
    /// id, name, arguments as JSON text.
    ToolUse(String, String, String),
    /// tool_use_id, content, is_error.
    ToolResult(String, String, bool),
    Image(String),
}

fn encode_error(e: impl std::fmt::Display) -> CodecError {
    CodecError::Encode { detail: e.to_string() }
}

fn decode_error(e: impl std::fmt::Display) -> CodecError {
    CodecError::Decode { detail: e.to_string() }
}

fn json_text(value: &Value) -> Result<String, CodecError> {
    serde_json::to_string(value).map_err(encode_error)
}

fn json_value(text: &str) -> Result<Value, CodecError> {
    serde_json::from_str(text).map_err(decode_error)
}

impl WireMessage {
    fn from_message(m: &AgentMessage) -> Result<Self, CodecError> {
        let content = m
            .content
            .iter()
            .map(|block| {
                Ok(match block {
                    ContentBlock::Text { text } => WireBlock::Text(text.clone()),
                    ContentBlock::ToolUse { id, name, input } => {
                        WireBlock::ToolUse(id.clone(), name.clone(), json_text(input)?)
                    }
                    ContentBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } => WireBlock::ToolResult(tool_use_id.clone(), content.clone(), *is_error),
                    ContentBlock::Image { url } => WireBlock::Image(url.clone()),
                })
            })
            .collect::<Result<_, CodecError>>()?;
        let metadata = m
            .metadata
            .iter()
            .map(|(k, v)| Ok((k.clone(), json_text(v)?)))
            .collect::<Result<_, CodecError>>()?;
        Ok(Self {
            id: m.id.0,
            sender: m.sender.clone(),
            recipient: m.recipient.clone(),
            role: m.role,
            content,
            in_reply_to: m.in_reply_to.map(|id| id.0),
            metadata,
            timestamp: m.timestamp,
        })
    }

    fn into_message(self) -> Result<AgentMessage, CodecError> {
        let content = self
            .content
            .into_iter()
            .map(|block| {
                Ok(match block {
                    WireBlock::Text(text) => ContentBlock::Text { text },
                    WireBlock::ToolUse(id, name, input) => ContentBlock::ToolUse {
                        id,
                        name,
                        input: json_value(&input)?,
                    },
                    WireBlock::ToolResult(tool_use_id, content, is_error) => ContentBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    },
                    WireBlock::Image(url) => ContentBlock::Image { url },
                })
            })
            .collect::<Result<_, CodecError>>()?;
        let metadata = self
            .metadata
            .into_iter()
            .map(|(k, v)| Ok((k, json_value(&v)?)))
            .collect::<Result<BTreeMap<_, _>, CodecError>>()?;
        Ok(AgentMessage {
            id: MessageId(self.id),
            sender: self.sender,
            recipient: self.recipient,
            role: self.role,
            content,
            in_reply_to: self.in_reply_to.map(MessageId),
            metadata,
            timestamp: self.timestamp,
        })
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

/// Encodes a message in the binary form.
///
/// # Errors
///
/// [`CodecError::Encode`] if a part cannot be written (in practice: never for a message
/// built by this crate).
pub fn to_bytes(message: &AgentMessage) -> Result<Vec<u8>, CodecError> {
    to_wire(&WireMessage::from_message(message)?)
}

/// Decodes a message from the binary form.
///
/// # Errors
///
/// [`CodecError::UnknownVersion`] for another version byte, [`CodecError::TooLarge`] past
/// [`MAX_MESSAGE_BYTES`], [`CodecError::Decode`] for bytes that are not a whole message
/// (truncated, trailing bytes, corrupt).
pub fn from_bytes(bytes: &[u8]) -> Result<AgentMessage, CodecError> {
    from_wire::<WireMessage>(bytes)?.into_message()
}

/// Encodes a message as JSON.
///
/// # Errors
///
/// [`CodecError::Json`] if serde_json fails (in practice: never).
pub fn to_json(message: &AgentMessage) -> Result<String, CodecError> {
    Ok(serde_json::to_string(message)?)
}

/// Decodes a message from JSON.
///
/// # Errors
///
/// [`CodecError::Json`] for text that is not a message.
pub fn from_json(text: &str) -> Result<AgentMessage, CodecError> {
    Ok(serde_json::from_str(text)?)
}

/// Encodes a value of another crate's wire protocol (a cluster node's messages) in the
/// binary form: the version byte, then the value in bincode 2's standard configuration.
/// The value must not need a self-describing format (no JSON values, no internally tagged
/// enums); carry those as JSON text inside it.
///
/// # Errors
///
/// [`CodecError::Encode`] if the value cannot be written, [`CodecError::TooLarge`] past
/// [`MAX_MESSAGE_BYTES`].
pub fn to_wire<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    out.extend(bincode::serde::encode_to_vec(value, config()).map_err(encode_error)?);
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(out.len()));
    }
    Ok(out)
}

/// Decodes a value written by [`to_wire`]. Never panics on bad bytes, and refuses more than
/// [`MAX_MESSAGE_BYTES`] before allocating for them.
///
/// # Errors
///
/// [`CodecError::UnknownVersion`], [`CodecError::TooLarge`] or [`CodecError::Decode`], as
/// [`from_bytes`].
pub fn from_wire<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    let (&version, body) = bytes.split_first().ok_or_else(|| decode_error("no bytes"))?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, read): (T, usize) = bincode::serde::decode_from_slice(body, config()).map_err(decode_error)?;
    if read != body.len() {
        return Err(decode_error(format!("{} trailing bytes", body.len() - read)));
    }
    Ok(value)
}

/// A [`Reply`](crate::agent::Reply) as it crosses the wire: the reply message in the binary
/// form, the rest beside it (the structured answer as JSON text).
#[derive(Serialize, Deserialize)]
struct WireReply {
    message: Vec<u8>,
    outcome: String,
    iterations: u32,
    usage: crate::model::Usage,
    structured: Option<String>,
}

/// Encodes an ask's reply in the binary form (for an ask that crosses nodes).
///
/// # Errors
///
/// [`CodecError::Encode`] or [`CodecError::Json`] if a part cannot be written (in practice:
/// never).
pub fn reply_to_bytes(reply: &crate::agent::Reply) -> Result<Vec<u8>, CodecError> {
    let wire = WireReply {
        message: to_bytes(&reply.message)?,
        outcome: reply.outcome.as_str().to_owned(),
        iterations: reply.iterations,
        usage: reply.usage,
        structured: reply.structured.as_ref().map(serde_json::to_string).transpose()?,
    };
    to_wire(&wire)
}

/// Decodes a reply written by [`reply_to_bytes`].
///
/// # Errors
///
/// As [`from_bytes`], and [`CodecError::Decode`] for an unknown outcome.
pub fn reply_from_bytes(bytes: &[u8]) -> Result<crate::agent::Reply, CodecError> {
    let wire: WireReply = from_wire(bytes)?;
    let outcome = crate::agent::Outcome::from_name(&wire.outcome)
        .ok_or_else(|| decode_error(format!("unknown outcome {:?}", wire.outcome)))?;
    Ok(crate::agent::Reply {
        message: from_bytes(&wire.message)?,
        outcome,
        iterations: wire.iterations,
        usage: wire.usage,
        structured: wire.structured.as_deref().map(serde_json::from_str).transpose()?,
    })
}

/// Encodes a journal payload (a step's result, a task's outcome, a memory snapshot) as JSON:
/// these hold JSON values (tool arguments, structured answers) that bincode cannot carry, and
/// a journal is read by tools and people too.
///
/// # Errors
///
/// [`CodecError::Json`] if serde_json fails (a map with non-string keys).
pub fn to_journal<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(serde_json::to_vec(value)?)
}

/// Decodes a journal payload written by [`to_journal`].
///
/// # Errors
///
/// [`CodecError::Json`] for bytes that are not such a payload.
pub fn from_journal<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(serde_json::from_slice(bytes)?)
}
