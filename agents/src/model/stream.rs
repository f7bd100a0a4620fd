//! Streaming: [`StreamEvent`] deltas, and [`StreamAssembler`], which folds them into a [`ChatResponse`].
//!
//! Both providers turn their wire events into the same deltas, and both build their whole
//! responses' tool calls the same way, so a streamed answer and a whole one look alike.

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ModelError;
use super::types::{ChatResponse, ContentBlock, StopReason, Usage};

/// One piece of a streamed answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// More text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// A tool call begins. Its arguments follow as [`ToolUseArgsDelta`](Self::ToolUseArgsDelta)
    /// fragments with the same `index`.
    ToolUseStart {
        /// The position of this call in the answer (as the provider numbers it).
        index: usize,
        /// The call id.
        id: String,
        /// The tool name.
        name: String,
    },
    /// A fragment of a tool call's JSON arguments; concatenate fragments of the same `index`.
    ToolUseArgsDelta {
        /// Which call (see [`ToolUseStart`](Self::ToolUseStart)).
        index: usize,
        /// The next piece of the JSON text.
        fragment: String,
    },
    /// Token counts so far; nonzero fields replace earlier ones.
    Usage(Usage),
    /// The model stopped. The stream ends after this and any final [`Usage`](Self::Usage).
    Stop(StopReason),
}

#[derive(Debug)]
enum Part {
    Text(String),
    Tool { id: String, name: String, args: String },
}

/// Folds [`StreamEvent`]s into a [`ChatResponse`]: text deltas are joined, tool-call argument
/// fragments are assembled by index and parsed as JSON at the end.
///
/// ```
/// use warden_agents::model::{ContentBlock, StopReason, StreamAssembler, StreamEvent};
///
/// let mut asm = StreamAssembler::new("gpt-test");
/// asm.push(StreamEvent::ToolUseStart { index: 0, id: "call_1".into(), name: "add".into() })?;
/// asm.push(StreamEvent::ToolUseArgsDelta { index: 0, fragment: r#"{"a": 1,"#.into() })?;
/// asm.push(StreamEvent::ToolUseArgsDelta { index: 0, fragment: r#" "b": 2}"#.into() })?;
/// asm.push(StreamEvent::Stop(StopReason::ToolUse))?;
/// let response = asm.finish();
/// assert_eq!(response.content[0],
///     ContentBlock::ToolUse { id: "call_1".into(), name: "add".into(), input: serde_json::json!({"a": 1, "b": 2}) });
/// # Ok::<(), warden_agents::model::ModelError>(())
/// ```
#[derive(Debug)]
pub struct StreamAssembler {
    model: String,
    parts: Vec<Part>,
    tools: HashMap<usize, usize>,
    usage: Usage,
    stop: Option<StopReason>,
}

impl StreamAssembler {
    /// An empty assembler for an answer from `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            parts: Vec::new(),
            tools: HashMap::new(),
            usage: Usage::default(),
            stop: None,
        }
    }

    /// Adds one event.
    ///
    /// # Errors
    ///
    /// [`ModelError::MalformedResponse`] for arguments of a tool call that never started, or a
    /// second start with the same index.
    pub fn push(&mut self, event: StreamEvent) -> Result<(), ModelError> {
        match event {
            StreamEvent::TextDelta { text } => match self.parts.last_mut() {
                Some(Part::Text(current)) => current.push_str(&text),
                _ => self.parts.push(Part::Text(text)),
            },
            StreamEvent::ToolUseStart { index, id, name } => {
                if self.tools.insert(index, self.parts.len()).is_some() {
                    return Err(ModelError::MalformedResponse {
                        detail: format!("tool call index {index} started twice"),
                    });
                }
                self.parts.push(Part::Tool {
                    id,
                    name,
                    args: String::new(),
                });
            }
            StreamEvent::ToolUseArgsDelta { index, fragment } => {
                let part = self.tools.get(&index).and_then(|&at| self.parts.get_mut(at));
                match part {
                    Some(Part::Tool { args, .. }) => args.push_str(&fragment),
                    _ => {
                        return Err(ModelError::MalformedResponse {
                            detail: format!("arguments for tool call index {index}, which never started"),
                        });
                    }
                }
            }
            StreamEvent::Usage(usage) => {
                if usage.input_tokens > 0 {
                    self.usage.input_tokens = usage.input_tokens;
                }
                if usage.output_tokens > 0 {
                    self.usage.output_tokens = usage.output_tokens;
                }
            }
            StreamEvent::Stop(reason) => self.stop = Some(reason),
        }
        Ok(())
    }

    /// Whether a [`StreamEvent::Stop`] was pushed.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_some()
    }

    /// The response. Without a stop event the reason is `ToolUse` if there are tool calls, else
    /// `EndTurn` (the providers' stream readers report a stream cut before its end marker as
    /// [`ModelError::StreamInterrupted`], so this only happens for hand-made event lists).
    pub fn finish(self) -> ChatResponse {
        let has_tools = !self.tools.is_empty();
        let content = self
            .parts
            .into_iter()
            .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
            .map(|p| match p {
                Part::Text(text) => ContentBlock::Text { text },
                Part::Tool { id, name, args } => ContentBlock::ToolUse {
                    id,
                    name,
                    input: parse_arguments(&args),
                },
            })
            .collect();
        let stop_reason = self.stop.unwrap_or(if has_tools {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        });
        ChatResponse {
            content,
            stop_reason,
            usage: self.usage,
            model: self.model,
            rate_limits: None,
        }
    }
}

/// Tool-call arguments as JSON: empty text is `{}`, invalid JSON is kept as a string.
pub(crate) fn parse_arguments(args: &str) -> Value {
    if args.trim().is_empty() {
        return Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(args).unwrap_or_else(|_| Value::String(args.to_owned()))
}

/// Folds a stream of events into a response, stopping at the first error.
///
/// # Errors
///
/// The first error in the stream (such as [`ModelError::StreamInterrupted`]), or an assembly
/// error (see [`StreamAssembler::push`]).
///
/// # Cancellation
///
/// Dropping the future drops the stream, which closes the connection.
pub async fn collect<S>(stream: S, model: impl Into<String>) -> Result<ChatResponse, ModelError>
where
    S: Stream<Item = Result<StreamEvent, ModelError>>,
{
    let mut assembler = StreamAssembler::new(model);
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        assembler.push(event?)?;
    }
    Ok(assembler.finish())
}
