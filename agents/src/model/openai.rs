//! [`OpenAiChat`]: the OpenAI chat-completions wire format.
//!
//! The same format is served by DeepSeek, Qwen (DashScope's compatible mode), vLLM, Ollama
//! (`/v1`), LM Studio, llama.cpp's server and most gateways; only the base URL and key differ.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::fmt;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::error::ModelError;
use super::http::{self, Decoder, SseEvent};
use super::provider::{ChatModel, EventStream, HttpSettings};
use super::stream::{StreamEvent, parse_arguments};
use super::types::{
    ChatRequest, ChatResponse, ContentBlock, Message, Role, StopReason, StructuredMode, ToolChoice, Usage,
};

/// A chat model behind an OpenAI-compatible `/chat/completions` endpoint.
///
/// It does not retry: wrap it in a [`Model`](super::Model), which does.
///
/// ```
/// use warden_agents::model::{ApiKey, OpenAiChat};
///
/// let deepseek = OpenAiChat::new("https://api.deepseek.com/v1", "deepseek-chat")
///     .with_api_key(ApiKey::new("sk-example"));
/// assert!(!format!("{deepseek:?}").contains("sk-example"));
/// ```
#[derive(Clone)]
pub struct OpenAiChat {
    http: HttpSettings,
}

impl fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiChat").field("http", &self.http).finish()
    }
}

impl OpenAiChat {
    /// A client for `model` at `base_url` (such as `https://api.openai.com/v1`; requests go to
    /// `<base_url>/chat/completions`), with no key and default timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            http: HttpSettings::new(base_url.into(), model.into()),
        }
    }

    /// Sends this key as `authorization: Bearer <key>`.
    pub fn with_api_key(mut self, key: super::ApiKey) -> Self {
        self.http.api_key = Some(key);
        self
    }

    /// Uses these HTTP settings (client, timeouts, defaults); see [`HttpSettings`].
    pub fn with_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self
    }

    /// The HTTP settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.http
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let url = format!("{}/chat/completions", self.http.base_url.trim_end_matches('/'));
        let mut request = self.http.client().post(url).json(body);
        if let Some(key) = &self.http.api_key {
            request = request.bearer_auth(key.expose());
        }
        request
    }
}

impl ChatModel for OpenAiChat {
    fn model_name(&self) -> &str {
        &self.http.model
    }

    fn provider_name(&self) -> &'static str {
        "openai"
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            let body = request_body(&self.http, req, false);
            let (json, limits) = self.http.call_json(self.request(&body)).await?;
            let mut answer = parse_response(&json, &self.http.model)?;
            answer.rate_limits = limits;
            Ok(answer)
        })
    }

    fn stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        Box::pin(async move {
            let body = request_body(&self.http, req, true);
            self.http
                .open_stream(self.request(&body), OpenAiDecoder::default())
                .await
        })
    }
}

fn tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = req.messages.as_slice();
    while let Some(message) = rest.first() {
        match message.role {
            Role::System => {
                out.push(json!({"role": "system", "content": message.text()}));
                rest = &rest[1..];
            }
            Role::Assistant => {
                out.push(assistant_message(message));
                rest = &rest[1..];
            }
            Role::User => {
                // Tool results become `tool` messages, which must directly follow the assistant
                // message that made the calls: those of a whole run of user messages go first,
                // then the other blocks of each, as one user message each.
                let run = rest.iter().take_while(|m| m.role == Role::User).count();
                let (users, after) = rest.split_at(run);
                for block in users.iter().flat_map(|m| &m.content) {
                    if let ContentBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } = block
                    {
                        out.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": tool_content(content, *is_error)}));
                    }
                }
                out.extend(users.iter().filter_map(user_message));
                rest = after;
            }
        }
    }
    out
}

/// The chat-completions format has no error flag on a tool result: a failed one says so in its text.
fn tool_content(content: &str, is_error: bool) -> Cow<'_, str> {
    if is_error && !content.trim_start().to_ascii_lowercase().starts_with("error") {
        Cow::Owned(format!("error: {content}"))
    } else {
        Cow::Borrowed(content)
    }
}

fn assistant_message(message: &Message) -> Value {
    let text = message.text();
    let calls: Vec<Value> = message
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { id, name, input } => {
                let arguments = match input {
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                };
                Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
            }
            _ => None,
        })
        .collect();
    // Text, even when empty beside tool calls: OpenAI takes `""` or `null` there, but
    // llama-cpp-python's server refuses a `null` content (a 500 naming `content`).
    let mut m = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    m
}

/// The text and images of a user message (its tool results are sent apart), if it has any.
fn user_message(message: &Message) -> Option<Value> {
    let mut parts = Vec::new();
    let mut has_image = false;
    for block in &message.content {
        match block {
            ContentBlock::Text { text } => parts.push(json!({"type": "text", "text": text})),
            ContentBlock::Image { url } => {
                has_image = true;
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            ContentBlock::ToolResult { .. } | ContentBlock::ToolUse { .. } => {}
        }
    }
    if parts.is_empty() {
        return None;
    }
    let content = if has_image {
        Value::Array(parts)
    } else {
        json!(parts.iter().filter_map(|p| p["text"].as_str()).collect::<String>())
    };
    Some(json!({"role": "user", "content": content}))
}

pub(crate) fn request_body(http: &HttpSettings, req: &ChatRequest, stream: bool) -> Value {
    let mut body = json!({"model": http.model, "messages": messages(req)});
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
    }
    if let Some(choice) = &req.tool_choice {
        body["tool_choice"] = tool_choice(choice);
    }
    if let Some(t) = req.temperature.or(http.temperature) {
        body["temperature"] = json!(t);
    }
    if let Some(m) = req.max_tokens.or(http.max_tokens) {
        body["max_tokens"] = json!(m);
    }
    if let Some(format) = &req.response_format {
        match format.mode {
            StructuredMode::JsonSchema => {
                body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": format.name, "schema": format.schema, "strict": false}});
            }
            // The model layer turned the schema into a tool (`Model::in_mode`).
            StructuredMode::ToolCall => {}
            StructuredMode::JsonObject | StructuredMode::Prompt => {
                if format.mode == StructuredMode::JsonObject {
                    // llama.cpp's server and llama-cpp-python constrain a json_object answer to
                    // a `schema` given beside it; other servers read the system prompt.
                    body["response_format"] = json!({"type": "json_object", "schema": format.schema});
                }
                let instruction = super::structured::schema_instruction(&format.schema);
                if let Some(messages) = body["messages"].as_array_mut() {
                    match messages.first_mut() {
                        Some(first) if first["role"] == "system" && first["content"].is_string() => {
                            let content = format!("{}\n\n{instruction}", first["content"].as_str().unwrap_or_default());
                            first["content"] = json!(content);
                        }
                        _ => messages.insert(0, json!({"role": "system", "content": instruction})),
                    }
                }
            }
        }
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: v.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
    }
}

/// The id of a tool call a server sent without one (some OpenAI-compatible servers do): unlike
/// the providers' own ids, so it cannot collide with another call's in the same answer.
fn synthetic_id(index: usize) -> String {
    format!("warden_call_{index}")
}

fn malformed(detail: &str) -> ModelError {
    ModelError::MalformedResponse {
        detail: detail.to_owned(),
    }
}

pub(crate) fn parse_response(json: &Value, model: &str) -> Result<ChatResponse, ModelError> {
    if json.get("error").is_some_and(|e| !e.is_null()) {
        return Err(http::classify_stream_error(json));
    }
    let choice = json
        .pointer("/choices/0")
        .ok_or_else(|| malformed("no choices in response"))?;
    let message = choice.get("message").ok_or_else(|| malformed("no message in choice"))?;
    let mut content = Vec::new();
    if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        content.push(ContentBlock::text(text));
    }
    // The legacy form (`function_call`, one call, no id) some compatible servers still send.
    let legacy = message
        .get("function_call")
        .filter(|c| c.is_object())
        .map(|c| vec![json!({"function": c})]);
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array).or(legacy.as_ref()) {
        for (position, call) in calls.iter().enumerate() {
            // Some compatible servers send no id; the stream decoder names such calls the same way.
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map_or_else(|| synthetic_id(position), str::to_owned);
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("tool call without name"))?;
            // JSON text, as OpenAI sends it; some compatible servers send the object itself.
            let input = match call.pointer("/function/arguments") {
                Some(Value::String(args)) => parse_arguments(args),
                Some(Value::Null) | None => parse_arguments(""),
                Some(object) => object.clone(),
            };
            content.push(ContentBlock::ToolUse {
                id,
                name: name.to_owned(),
                input,
            });
        }
    }
    let has_tools = content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
    let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some(r) => stop_reason(r),
        None if has_tools => StopReason::ToolUse,
        None => StopReason::EndTurn,
    };
    Ok(ChatResponse {
        content,
        stop_reason,
        usage: json.get("usage").map(usage).unwrap_or_default(),
        model: json.get("model").and_then(Value::as_str).unwrap_or(model).to_owned(),
        rate_limits: None,
    })
}

/// Decodes `data:` chunks; the end marker is `data: [DONE]`.
#[derive(Default)]
pub(crate) struct OpenAiDecoder {
    started: HashSet<usize>,
}

impl Decoder for OpenAiDecoder {
    fn decode(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        let json: Value = serde_json::from_str(data).map_err(|e| ModelError::MalformedResponse {
            detail: format!("stream chunk is not JSON: {e}"),
        })?;
        if json.get("error").is_some_and(|e| !e.is_null()) {
            return Err(http::classify_stream_error(&json));
        }
        if let Some(choice) = json.pointer("/choices/0") {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push_back(StreamEvent::TextDelta { text: text.to_owned() });
            }
            // The legacy form streams `function_call` deltas: one call, at index 0.
            let legacy = delta
                .get("function_call")
                .filter(|c| c.is_object())
                .map(|c| vec![json!({"index": 0, "function": c})]);
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array).or(legacy.as_ref()) {
                for (position, call) in calls.iter().enumerate() {
                    let index = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .map_or(position, |i| i as usize);
                    if self.started.insert(index) {
                        let id = call
                            .get("id")
                            .and_then(Value::as_str)
                            .filter(|id| !id.is_empty())
                            .map_or_else(|| synthetic_id(index), str::to_owned);
                        let name = call
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        out.push_back(StreamEvent::ToolUseStart { index, id, name });
                    }
                    // A fragment of JSON text; some compatible servers send the whole object.
                    let fragment = match call.pointer("/function/arguments") {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(object) => object.to_string(),
                    };
                    if !fragment.is_empty() {
                        out.push_back(StreamEvent::ToolUseArgsDelta { index, fragment });
                    }
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                out.push_back(StreamEvent::Stop(stop_reason(reason)));
            }
        }
        if let Some(u) = json.get("usage").filter(|u| !u.is_null()) {
            out.push_back(StreamEvent::Usage(usage(u)));
        }
        Ok(false)
    }
}
