//! The provider-neutral conversation: [`Message`], [`ContentBlock`], [`ChatRequest`], [`ChatResponse`].

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_tools::{ToolResult, ToolSchema};

/// Who wrote a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the model. The Anthropic provider moves these into its `system` field.
    System,
    /// The user, and the results of tool calls ([`ContentBlock::ToolResult`]).
    User,
    /// The model: text and tool calls ([`ContentBlock::ToolUse`]).
    Assistant,
}

/// One part of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call made by the model.
    ToolUse {
        /// The call id, unique within the conversation; its result must carry the same id.
        id: String,
        /// The tool name.
        name: String,
        /// The arguments. When the model produced arguments that are not valid JSON, this is a
        /// [`Value::String`] holding the raw text, so the tool layer can reject them with an
        /// error result the model can correct, instead of the call failing as a whole.
        input: Value,
    },
    /// The result of a tool call, sent back in a [`Role::User`] message.
    ToolResult {
        /// The id of the [`ContentBlock::ToolUse`] this answers.
        tool_use_id: String,
        /// The result, as text (JSON results are sent as their JSON text).
        content: String,
        /// Whether the tool failed; the model then sees `content` as an error.
        #[serde(default)]
        is_error: bool,
    },
    /// An image, by URL (`https:` or a `data:` URL).
    Image {
        /// The URL.
        url: String,
    },
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// A successful tool result.
    pub fn tool_result(tool_use_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: content.into(),
            is_error: false,
        }
    }

    /// A failed tool result.
    pub fn tool_error(tool_use_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: content.into(),
            is_error: true,
        }
    }

    /// The result of a tool call as a tool executor returned it, rendered by
    /// [`warden_tools::to_model_content`]: the output (a JSON string as its text, anything else
    /// as JSON text), or an error result (`error (<kind>): ...`) when the tool failed, timed out,
    /// was refused or rejected its arguments. Every outcome answers the call, so the history
    /// stays valid for the provider.
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden_agents::model::ContentBlock;
    /// use warden_agents::tools::ToolError;
    ///
    /// let timed_out = Err(ToolError::Timeout { after: Duration::from_secs(30) });
    /// let ContentBlock::ToolResult { content, is_error, .. } = ContentBlock::tool_outcome("call_1", &timed_out) else {
    ///     unreachable!()
    /// };
    /// assert!(is_error && content.starts_with("error (timeout): tool call timed out"));
    /// ```
    pub fn tool_outcome(tool_use_id: impl Into<String>, outcome: &ToolResult) -> Self {
        Self::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: warden_tools::to_model_content(outcome),
            is_error: outcome.is_err(),
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it says, in order.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A system message with one text block.
    pub fn system(text: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: vec![ContentBlock::text(text)],
        }
    }

    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![ContentBlock::text(text)],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: vec![ContentBlock::text(text)],
        }
    }

    /// A user message carrying tool results (or any blocks).
    pub fn tool_results(results: Vec<ContentBlock>) -> Self {
        Self {
            role: Role::User,
            content: results,
        }
    }

    /// The text blocks joined together.
    pub fn text(&self) -> String {
        text_of(&self.content)
    }
}

pub(crate) fn text_of(blocks: &[ContentBlock]) -> String {
    let mut out = String::new();
    for block in blocks {
        if let ContentBlock::Text { text } = block {
            out.push_str(text);
        }
    }
    out
}

/// A tool the model may call: a name, a description and a JSON Schema for the arguments.
///
/// This is the shape the tools crate exposes its schemas in: `ToolSpec::from(&schema)` converts
/// a [`ToolSchema`] (such as each of `Toolkit::schemas()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool name (`^[a-zA-Z0-9_-]{1,64}$` for both providers).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// The JSON Schema of the arguments (an `"type": "object"` schema).
    pub parameters: Value,
}

impl From<ToolSchema> for ToolSpec {
    fn from(schema: ToolSchema) -> Self {
        Self {
            name: schema.name.to_string(),
            description: schema.description.to_string(),
            parameters: schema.parameters,
        }
    }
}

impl From<&ToolSchema> for ToolSpec {
    fn from(schema: &ToolSchema) -> Self {
        schema.clone().into()
    }
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the providers' default when tools are given).
    Auto,
    /// The model must not call a tool.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

/// Ask for an answer shaped by a JSON Schema (see [`Model::chat_structured`](super::Model::chat_structured)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// A name for the schema (`^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    /// The JSON Schema.
    pub schema: Value,
    /// How the schema is asked for. A [`Model`](super::Model) sets it from its
    /// [`StructuredOutput`] setting before each call; a provider called directly sends what
    /// it says.
    #[serde(default)]
    pub mode: StructuredMode,
}

impl ResponseFormat {
    /// A format asking for `schema`, named `name`, in the default mode (OpenAI's strict
    /// `json_schema`, which a model with [`StructuredOutput::Auto`] falls back from).
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        Self {
            name: name.into(),
            schema,
            mode: StructuredMode::default(),
        }
    }
}

/// How a structured answer is asked for on the wire. Servers differ: OpenAI takes all of
/// them; llama.cpp's server and llama-cpp-python refuse `json_schema` in some versions but
/// take `json_object`; some servers take neither. Every answer is checked against the schema
/// whatever the mode, and repaired if it does not match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StructuredMode {
    /// OpenAI's `response_format: {"type": "json_schema", ...}`: the server constrains the
    /// answer to the schema.
    #[default]
    JsonSchema,
    /// `response_format: {"type": "json_object", "schema": ...}` (llama.cpp's server and
    /// llama-cpp-python constrain the answer to that schema; others give any JSON), with the
    /// schema in the system prompt too.
    JsonObject,
    /// A forced tool call: the schema is the parameters of a tool named after it that the
    /// model must call (forced when the request offers no other tool; beside other tools, as
    /// in a ReAct loop, the model calls it to give its final answer). The call's arguments
    /// are the answer: the model's reply carries them as its text. Works on servers with
    /// tool calling and no response format.
    ToolCall,
    /// No response format: the schema in the system prompt, and the check and repair rounds.
    Prompt,
}

impl StructuredMode {
    /// The mode to try after this one is refused by a server, if any: `json_schema`,
    /// `json_object`, `tool_call`, then `prompt`.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::JsonSchema => Some(Self::JsonObject),
            Self::JsonObject => Some(Self::ToolCall),
            Self::ToolCall => Some(Self::Prompt),
            Self::Prompt => None,
        }
    }

    /// `json_schema`, `json_object`, `tool_call` or `prompt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonObject => "json_object",
            Self::ToolCall => "tool_call",
            Self::Prompt => "prompt",
        }
    }
}

/// A model's setting for structured answers ([`Model::with_structured_output`](super::Model::with_structured_output),
/// `structured_output` in a [`ModelConfig`](super::ModelConfig): `"auto"`, `"json_schema"`,
/// `"json_object"` or `"prompt"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum StructuredOutput {
    /// Start with [`StructuredMode::JsonSchema`]; when a server refuses a mode (a 400, 422
    /// or 500 whose message names `response_format` or `json_schema`), the call is tried
    /// once more with the next mode, and the model (all its clones) remembers the mode that
    /// works for its later calls.
    #[default]
    Auto,
    /// Always this mode.
    Fixed(StructuredMode),
}

impl From<StructuredOutput> for String {
    fn from(setting: StructuredOutput) -> Self {
        match setting {
            StructuredOutput::Auto => "auto",
            StructuredOutput::Fixed(mode) => mode.as_str(),
        }
        .to_owned()
    }
}

impl TryFrom<String> for StructuredOutput {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "auto" => Ok(Self::Auto),
            "json_schema" => Ok(Self::Fixed(StructuredMode::JsonSchema)),
            "json_object" => Ok(Self::Fixed(StructuredMode::JsonObject)),
            "tool_call" => Ok(Self::Fixed(StructuredMode::ToolCall)),
            "prompt" => Ok(Self::Fixed(StructuredMode::Prompt)),
            other => Err(format!(
                "unknown structured output mode `{other}` (expected auto, json_schema, json_object, tool_call or prompt)"
            )),
        }
    }
}

/// One chat call: the conversation, the tools and the sampling settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// Whether and which tool the model must call (`None`: the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Sampling temperature (`None`: the model config's, else the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The most tokens to generate (`None`: the model config's, else 4096 for Anthropic, which
    /// requires it, and the provider's default for OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Ask for JSON matching a schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
}

impl ChatRequest {
    /// A request with these messages and nothing else set.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// The same request with these tools.
    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }

    /// The same request with this tool choice.
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// The same request with this temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// The same request with this token limit.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Adds a synthetic error result for every tool call not yet answered; see
    /// [`close_dangling_tool_calls`]. Returns how many were added.
    pub fn close_dangling_tool_calls(&mut self) -> usize {
        close_dangling_tool_calls(&mut self.messages)
    }
}

/// The content of the synthetic result [`close_dangling_tool_calls`] adds.
pub const INTERRUPTED_TOOL_RESULT: &str = "error: the tool call was interrupted before it returned a result";

/// Makes sure every tool call in the conversation is answered before the next request.
///
/// Both providers reject a history in which an assistant [`ContentBlock::ToolUse`] has no
/// [`ContentBlock::ToolResult`] with its id in the messages that follow it (before the next
/// assistant message). This happens when a tool failed, timed out, or the agent was interrupted
/// (restarted by its supervisor) between the model's answer and the results. For each such id
/// this adds `ToolResult { is_error: true, content: INTERRUPTED_TOOL_RESULT }`, at the front of
/// the user message that follows the assistant message (created if there is none), which is
/// where both providers expect results. Returns how many results were added.
///
/// [`Model::chat`](super::Model::chat) and [`Model::stream`](super::Model::stream) call this on
/// every request, so a history with dangling calls is repaired before it is sent.
///
/// ```
/// use serde_json::json;
/// use warden_agents::model::{close_dangling_tool_calls, ContentBlock, Message, Role};
///
/// let mut messages = vec![
///     Message::user("weather in Paris and Rome?"),
///     Message {
///         role: Role::Assistant,
///         content: vec![
///             ContentBlock::ToolUse { id: "a".into(), name: "weather".into(), input: json!({"city": "Paris"}) },
///             ContentBlock::ToolUse { id: "b".into(), name: "weather".into(), input: json!({"city": "Rome"}) },
///         ],
///     },
///     Message::tool_results(vec![ContentBlock::tool_result("a", "sunny")]),
/// ];
/// assert_eq!(close_dangling_tool_calls(&mut messages), 1);
/// assert!(matches!(&messages[2].content[1],
///     ContentBlock::ToolResult { tool_use_id, is_error: true, .. } if tool_use_id == "b"));
/// assert_eq!(close_dangling_tool_calls(&mut messages), 0);
/// ```
pub fn close_dangling_tool_calls(messages: &mut Vec<Message>) -> usize {
    let mut added = 0;
    let mut i = 0;
    while i < messages.len() {
        let missing: Vec<ContentBlock> = unanswered(messages, i)
            .into_iter()
            .map(|id| ContentBlock::tool_error(id, INTERRUPTED_TOOL_RESULT))
            .collect();
        if !missing.is_empty() {
            added += missing.len();
            match messages.get_mut(i + 1) {
                Some(next) if next.role == Role::User => {
                    // Results go first: Anthropic wants tool_result blocks before any text.
                    let at = next
                        .content
                        .iter()
                        .take_while(|b| matches!(b, ContentBlock::ToolResult { .. }))
                        .count();
                    next.content.splice(at..at, missing);
                }
                _ => messages.insert(i + 1, Message::tool_results(missing)),
            }
        }
        i += 1;
    }
    added
}

/// Whether [`close_dangling_tool_calls`] would add anything.
pub(crate) fn has_dangling_tool_calls(messages: &[Message]) -> bool {
    (0..messages.len()).any(|i| !unanswered(messages, i).is_empty())
}

/// The tool-call ids of the assistant message at `i` with no result before the next assistant message.
fn unanswered(messages: &[Message], i: usize) -> Vec<String> {
    let Some(message) = messages.get(i).filter(|m| m.role == Role::Assistant) else {
        return Vec::new();
    };
    let calls = message.content.iter().filter_map(|b| match b {
        ContentBlock::ToolUse { id, .. } => Some(id),
        _ => None,
    });
    let answered: HashSet<&str> = messages[i + 1..]
        .iter()
        .take_while(|m| m.role != Role::Assistant)
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
            _ => None,
        })
        .collect();
    calls.filter(|id| !answered.contains(id.as_str())).cloned().collect()
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It hit the token limit.
    MaxTokens,
    /// It produced a stop sequence.
    StopSequence,
    /// The provider's filter stopped it (or the model refused).
    ContentFilter,
    /// A reason this crate does not know, verbatim.
    Other(String),
}

/// Token counts of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read (the prompt).
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
}

/// The model's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// What it said: text and tool calls, in order.
    pub content: Vec<ContentBlock>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Tokens used (zero when the provider did not say).
    pub usage: Usage,
    /// The model that answered, as the provider named it (the fallback's name if it answered).
    pub model: String,
    /// What the provider's rate-limit headers said with this answer, if it sent any (whole
    /// answers only). A model with a rate limiter holds it until the reset when one says
    /// nothing is left ([`Model::with_rate_limit`](super::Model::with_rate_limit)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitStatus>,
}

/// What a provider's rate-limit headers say: OpenAI's `x-ratelimit-remaining-requests`,
/// `x-ratelimit-remaining-tokens`, `x-ratelimit-reset-requests`, `x-ratelimit-reset-tokens`;
/// Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}`
/// (the least of the token counts). A header that is missing, negative, unparsable, or names a
/// reset more than 15 minutes away is left out (with a `debug` trace event), never trusted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimitStatus {
    /// Requests left in the current window.
    pub requests_remaining: Option<u64>,
    /// When the request window resets, from when the answer arrived.
    pub requests_reset: Option<Duration>,
    /// Tokens left in the current window.
    pub tokens_remaining: Option<u64>,
    /// When the token window resets, from when the answer arrived.
    pub tokens_reset: Option<Duration>,
}

impl RateLimitStatus {
    /// How long to send nothing more: the reset of a window with nothing left, if any.
    pub fn exhausted_for(&self) -> Option<Duration> {
        let requests = self.requests_reset.filter(|_| self.requests_remaining == Some(0));
        let tokens = self.tokens_reset.filter(|_| self.tokens_remaining == Some(0));
        requests.max(tokens)
    }
}

impl ChatResponse {
    /// The text blocks joined together.
    pub fn text(&self) -> String {
        text_of(&self.content)
    }

    /// The tool calls, as `(id, name, input)`.
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|b| match b {
            ContentBlock::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }

    /// The answer as an assistant message, to append to the conversation.
    pub fn to_message(&self) -> Message {
        Message {
            role: Role::Assistant,
            content: self.content.clone(),
        }
    }
}
