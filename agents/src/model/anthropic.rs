//! [`AnthropicMessages`]: the Anthropic Messages wire format (`POST /v1/messages`).

use std::collections::VecDeque;
use std::fmt;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::error::ConfigError;
use super::error::ModelError;
use super::http::{self, Decoder, SseEvent};
use super::provider::{ChatModel, EventStream, HttpSettings};
use super::stream::StreamEvent;
use super::types::{ChatRequest, ChatResponse, ContentBlock, Role, StopReason, ToolChoice, Usage};

/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `max_tokens` when neither the request nor the settings set one (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A chat model behind the Anthropic Messages API.
///
/// It does not retry: wrap it in a [`Model`](super::Model), which does.
///
/// ```
/// use warden_agents::model::{AnthropicMessages, ApiKey};
///
/// let claude = AnthropicMessages::new("https://api.anthropic.com", "claude-sonnet-4-5")
///     .with_api_key(ApiKey::new("sk-ant-example"));
/// assert!(!format!("{claude:?}").contains("sk-ant-example"));
/// ```
#[derive(Clone)]
pub struct AnthropicMessages {
    http: HttpSettings,
}

impl fmt::Debug for AnthropicMessages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicMessages").field("http", &self.http).finish()
    }
}

impl AnthropicMessages {
    /// A client for `model` at `base_url` (such as `https://api.anthropic.com`; requests go to
    /// `<base_url>/v1/messages`), with no key and default timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            http: HttpSettings::new(base_url.into(), model.into()),
        }
    }

    /// Sends this key as `x-api-key`.
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

    /// The request, its key in an `x-api-key` header marked sensitive (kept out of HTTP/2
    /// header compression tables and of the header's `Debug` output, as reqwest does for
    /// `authorization`).
    fn request(&self, body: &Value) -> Result<reqwest::RequestBuilder, ModelError> {
        let url = format!("{}/v1/messages", self.http.base_url.trim_end_matches('/'));
        let mut request = self
            .http
            .client()
            .post(url)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(body);
        if let Some(key) = &self.http.api_key {
            let mut value =
                reqwest::header::HeaderValue::from_str(key.expose()).map_err(|_| ConfigError::InvalidApiKey)?;
            value.set_sensitive(true);
            request = request.header("x-api-key", value);
        }
        Ok(request)
    }
}

impl ChatModel for AnthropicMessages {
    fn model_name(&self) -> &str {
        &self.http.model
    }

    fn provider_name(&self) -> &'static str {
        "anthropic"
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            let body = request_body(&self.http, req, false);
            let (json, limits) = self.http.call_json(self.request(&body)?).await?;
            let mut answer = parse_response(&json, &self.http.model)?;
            answer.rate_limits = limits;
            Ok(answer)
        })
    }

    fn stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        Box::pin(async move {
            let body = request_body(&self.http, req, true);
            self.http.open_stream(self.request(&body)?, AnthropicDecoder).await
        })
    }
}

fn block(b: &ContentBlock) -> Option<Value> {
    Some(match b {
        ContentBlock::Text { text } if text.is_empty() => return None,
        ContentBlock::Text { text } => json!({"type": "text", "text": text}),
        ContentBlock::ToolUse { id, name, input } => {
            let input = if input.is_object() { input.clone() } else { json!({}) };
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        ContentBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error})
        }
        ContentBlock::Image { url } => match data_url(url) {
            Some((media_type, data)) => {
                json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
            }
            None => json!({"type": "image", "source": {"type": "url", "url": url}}),
        },
    })
}

/// `data:<media type>;base64,<data>` → (media type, data).
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

pub(crate) fn request_body(http: &HttpSettings, req: &ChatRequest, stream: bool) -> Value {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<(Role, Vec<Value>)> = Vec::new();
    for message in &req.messages {
        if message.role == Role::System {
            system.push(message.text());
            continue;
        }
        let blocks: Vec<Value> = message.content.iter().filter_map(block).collect();
        if blocks.is_empty() {
            continue;
        }
        // Consecutive messages of one role are merged: the API wants alternating turns.
        match messages.last_mut() {
            Some((role, existing)) if *role == message.role => existing.extend(blocks),
            _ => messages.push((message.role, blocks)),
        }
    }
    // The API wants a user message's tool results before anything else in it (a merge can
    // have put text first).
    for (_, blocks) in messages.iter_mut().filter(|(role, _)| *role == Role::User) {
        blocks.sort_by_key(|b| b["type"] != "tool_result");
    }
    // In tool-call mode the model layer turned the schema into a tool (`Model::in_mode`).
    if let Some(format) = req
        .response_format
        .as_ref()
        .filter(|f| f.mode != super::StructuredMode::ToolCall)
    {
        system.push(super::structured::schema_instruction(&format.schema));
    }
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| {
            let role = if role == Role::Assistant { "assistant" } else { "user" };
            json!({"role": role, "content": content})
        })
        .collect();
    let max_tokens = req.max_tokens.or(http.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({"model": http.model, "max_tokens": max_tokens, "messages": messages});
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    if let Some(choice) = &req.tool_choice {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
        };
    }
    if let Some(t) = req.temperature.or(http.temperature) {
        body["temperature"] = json!(t);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v.get("input_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: v.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
    }
}

fn malformed(detail: &str) -> ModelError {
    ModelError::MalformedResponse {
        detail: detail.to_owned(),
    }
}

pub(crate) fn parse_response(json: &Value, model: &str) -> Result<ChatResponse, ModelError> {
    if json.get("type").and_then(Value::as_str) == Some("error") {
        return Err(http::classify_stream_error(json));
    }
    let blocks = json
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no content in response"))?;
    let mut content = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = b.get("text").and_then(Value::as_str).unwrap_or_default();
                if !text.is_empty() {
                    content.push(ContentBlock::text(text));
                }
            }
            Some("tool_use") => {
                let id = b
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("tool_use without id"))?;
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("tool_use without name"))?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                content.push(ContentBlock::ToolUse {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    input,
                });
            }
            _ => {} // thinking and server-tool blocks are not part of the neutral model
        }
    }
    let stop_reason = json
        .get("stop_reason")
        .and_then(Value::as_str)
        .map_or(StopReason::EndTurn, stop_reason);
    Ok(ChatResponse {
        content,
        stop_reason,
        usage: json.get("usage").map(usage).unwrap_or_default(),
        model: json.get("model").and_then(Value::as_str).unwrap_or(model).to_owned(),
        rate_limits: None,
    })
}

/// Decodes Messages stream events; the end marker is `message_stop`.
pub(crate) struct AnthropicDecoder;

impl Decoder for AnthropicDecoder {
    fn decode(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<bool, ModelError> {
        let json: Value = serde_json::from_str(&event.data).map_err(|e| ModelError::MalformedResponse {
            detail: format!("stream event is not JSON: {e}"),
        })?;
        let kind = json
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        let index = || {
            json.get("index")
                .and_then(Value::as_u64)
                .map(|i| i as usize)
                .ok_or_else(|| malformed("event without index"))
        };
        match kind {
            "message_start" => {
                if let Some(u) = json.pointer("/message/usage") {
                    out.push_back(StreamEvent::Usage(usage(u)));
                }
            }
            "content_block_start" => {
                let block = json.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(text) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push_back(StreamEvent::TextDelta { text: text.to_owned() });
                        }
                    }
                    Some("tool_use") => {
                        let id = block
                            .get("id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| malformed("tool_use without id"))?;
                        let name = block
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| malformed("tool_use without name"))?;
                        out.push_back(StreamEvent::ToolUseStart {
                            index: index()?,
                            id: id.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = json.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(text) = delta.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push_back(StreamEvent::TextDelta { text: text.to_owned() });
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(fragment) = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push_back(StreamEvent::ToolUseArgsDelta {
                                index: index()?,
                                fragment: fragment.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = json.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push_back(StreamEvent::Stop(stop_reason(reason)));
                }
                if let Some(u) = json.get("usage") {
                    out.push_back(StreamEvent::Usage(usage(u)));
                }
            }
            "message_stop" => return Ok(true),
            "error" => return Err(http::classify_stream_error(&json)),
            _ => {} // ping, content_block_stop, and future event types
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ApiKey;

    #[tokio::test]
    async fn the_key_header_is_marked_sensitive() {
        let model = AnthropicMessages::new("https://api.anthropic.com", "m").with_api_key(ApiKey::new("sk-ant-secret"));
        let request = model.request(&json!({})).unwrap().build().unwrap();
        let key = request.headers().get("x-api-key").expect("the key is sent");
        assert!(key.is_sensitive());
        assert!(!format!("{:?}", request.headers()).contains("sk-ant-secret"));
    }

    #[test]
    fn a_key_that_is_no_header_value_is_a_config_error() {
        let model = AnthropicMessages::new("https://api.anthropic.com", "m").with_api_key(ApiKey::new("sk\nbad"));
        let e = model.request(&json!({})).expect_err("refused");
        assert!(matches!(e, ModelError::Config(ConfigError::InvalidApiKey)), "{e:?}");
    }
}
