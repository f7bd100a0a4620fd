//! Rendering scripted replies in the two wire formats.
//!
//! Both formats share [`Content`] (what the assistant says) and differ only in how it is framed.

use serde_json::{Value, json};

use crate::script::{Answer, Fault, Quirks};

/// The text a faulty stream sends before it is cut, stalls or errors.
pub(crate) const CUT_TEXT: &str = "The quick brown fox jumps over the lazy dog and keeps running far away.";

/// The two wire formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    OpenAi,
    Anthropic,
}

/// What the assistant says, provider-neutral.
#[derive(Clone, Debug, Default)]
pub(crate) struct Content {
    pub(crate) text: Option<String>,
    /// (id, name, arguments as JSON text)
    pub(crate) tool_calls: Vec<(String, String, String)>,
}

/// How a stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// All frames, with the end marker.
    Complete,
    /// Cut the connection after this many frames.
    Cut(usize),
    /// Stall after this many frames.
    Stall(usize),
    /// Send an in-stream "overloaded" error after this many frames.
    Overloaded(usize),
    /// Send one frame that is not JSON after the first frame.
    Malformed,
}

/// An error response the provider sends instead of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    RateLimited,
    Quota,
    Status(u16),
}

/// The plan for one request, derived from its reply.
#[derive(Clone, Debug)]
pub(crate) enum Plan {
    Answer(Content, Ending),
    Error(ErrorKind, Vec<(String, String)>),
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Stall,
    Drip {
        status: u16,
        frame: String,
        every: std::time::Duration,
    },
}

pub(crate) fn plan(reply: Answer, next_id: &mut dyn FnMut() -> u64, format: Format) -> Plan {
    let mut id = |prefix: &str| format!("{prefix}{}", next_id());
    let call_prefix = match format {
        Format::OpenAi => "call_",
        Format::Anthropic => "toolu_",
    };
    let text_content = |text: &str| Content {
        text: Some(text.to_owned()),
        tool_calls: Vec::new(),
    };
    match reply {
        Answer::Text(text) => Plan::Answer(text_content(&text), Ending::Complete),
        Answer::Json(value) => Plan::Answer(text_content(&value.to_string()), Ending::Complete),
        Answer::ToolCalls(calls) | Answer::TextAndToolCalls(_, calls) if calls.is_empty() => {
            Plan::Answer(text_content(""), Ending::Complete)
        }
        Answer::ToolCalls(calls) => {
            let tool_calls = calls
                .iter()
                .map(|c| {
                    (
                        c.id.clone().unwrap_or_else(|| id(call_prefix)),
                        c.name.clone(),
                        c.arguments_text(),
                    )
                })
                .collect();
            Plan::Answer(Content { text: None, tool_calls }, Ending::Complete)
        }
        Answer::TextAndToolCalls(text, calls) => {
            let tool_calls = calls
                .iter()
                .map(|c| {
                    (
                        c.id.clone().unwrap_or_else(|| id(call_prefix)),
                        c.name.clone(),
                        c.arguments_text(),
                    )
                })
                .collect();
            Plan::Answer(
                Content {
                    text: Some(text),
                    tool_calls,
                },
                Ending::Complete,
            )
        }
        Answer::Fault(fault) => match fault {
            Fault::RateLimited {
                retry_after,
                retry_after_ms,
            } => {
                let mut headers = Vec::new();
                if let Some(v) = retry_after {
                    headers.push(("retry-after".to_owned(), v));
                }
                if let Some(ms) = retry_after_ms {
                    headers.push(("retry-after-ms".to_owned(), ms.to_string()));
                }
                Plan::Error(ErrorKind::RateLimited, headers)
            }
            Fault::QuotaExceeded => Plan::Error(ErrorKind::Quota, Vec::new()),
            Fault::Status(status) => Plan::Error(ErrorKind::Status(status), Vec::new()),
            Fault::Http { status, headers, body } => Plan::Raw { status, headers, body },
            Fault::Stall => Plan::Stall,
            Fault::Drip { status, frame, every } => Plan::Drip { status, frame, every },
            Fault::StallStream { after_chunks } => Plan::Answer(text_content(CUT_TEXT), Ending::Stall(after_chunks)),
            Fault::CutStream { after_chunks } => Plan::Answer(text_content(CUT_TEXT), Ending::Cut(after_chunks)),
            Fault::OverloadedMidStream { after_chunks } => {
                Plan::Answer(text_content(CUT_TEXT), Ending::Overloaded(after_chunks))
            }
            Fault::MalformedJson => Plan::Answer(text_content(CUT_TEXT), Ending::Malformed),
            Fault::InvalidToolArguments { name } => Plan::Answer(
                Content {
                    text: None,
                    tool_calls: vec![(id(call_prefix), name, r#"{"query": "unterminated"#.to_owned())],
                },
                Ending::Complete,
            ),
        },
    }
}

/// A rough, deterministic token count: one token per four bytes, at least one.
pub(crate) fn tokens(len: usize) -> u64 {
    (len as u64).div_ceil(4).max(1)
}

fn output_tokens(content: &Content) -> u64 {
    let len = content.text.as_deref().map_or(0, str::len) + content.tool_calls.iter().map(|c| c.2.len()).sum::<usize>();
    tokens(len)
}

/// Splits `s` into pieces of about `size` bytes on char boundaries.
pub(crate) fn split(s: &str, size: usize) -> Vec<String> {
    let size = size.max(1);
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in s.chars() {
        current.push(ch);
        if current.len() >= size {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The status and body of an error response.
pub(crate) fn error_response(format: Format, kind: ErrorKind) -> (u16, Value) {
    match (format, kind) {
        (Format::OpenAi, ErrorKind::RateLimited) => (
            429,
            json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
        ),
        (Format::OpenAi, ErrorKind::Quota) => (
            429,
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
        ),
        (Format::OpenAi, ErrorKind::Status(status)) => {
            let (kind, message) = match status {
                529 => ("overloaded_error", "The server is overloaded."),
                503 => (
                    "server_error",
                    "The engine is currently overloaded, please try again later.",
                ),
                s if s >= 500 => ("server_error", "The server had an error while processing your request."),
                401 => ("invalid_request_error", "Incorrect API key provided."),
                _ => ("invalid_request_error", "Invalid request."),
            };
            (
                status,
                json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
            )
        }
        (Format::Anthropic, ErrorKind::RateLimited) => (
            429,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit."}}),
        ),
        (Format::Anthropic, ErrorKind::Quota) => (
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}),
        ),
        (Format::Anthropic, ErrorKind::Status(status)) => {
            let (kind, message) = match status {
                529 => ("overloaded_error", "Overloaded"),
                s if s >= 500 => ("api_error", "Internal server error"),
                401 => ("authentication_error", "invalid x-api-key"),
                404 => ("not_found_error", "Not found"),
                _ => ("invalid_request_error", "Invalid request"),
            };
            (
                status,
                json!({"type": "error", "error": {"type": kind, "message": message}}),
            )
        }
    }
}

/// The body of a 400 `invalid_request_error` with this message.
pub(crate) fn invalid_request(format: Format, message: &str) -> Value {
    match format {
        Format::OpenAi => {
            json!({"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": null}})
        }
        Format::Anthropic => json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
    }
}

/// A whole OpenAI response body rewritten the way a quirky server sends it.
pub(crate) fn with_quirks(mut body: Value, quirks: Quirks) -> Value {
    let Some(message) = body.pointer_mut("/choices/0/message") else {
        return body;
    };
    if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
        for call in calls.iter_mut() {
            if quirks.no_tool_call_ids {
                if let Some(call) = call.as_object_mut() {
                    call.remove("id");
                }
            }
            if quirks.arguments_as_objects {
                if let Some(args) = call.pointer_mut("/function/arguments") {
                    if let Some(object) = args.as_str().and_then(|text| serde_json::from_str::<Value>(text).ok()) {
                        *args = object;
                    }
                }
            }
        }
    }
    if quirks.legacy_function_call {
        let first = message
            .get("tool_calls")
            .and_then(|calls| calls.pointer("/0/function"))
            .cloned();
        if let (Some(function), Some(message)) = (first, message.as_object_mut()) {
            message.remove("tool_calls");
            message.insert("function_call".into(), function);
            if let Some(finish) = body.pointer_mut("/choices/0/finish_reason") {
                *finish = json!("function_call");
            }
        }
    }
    body
}

/// The whole (non-streamed) response body.
pub(crate) fn whole(format: Format, content: &Content, model: &str, id: u64, input_tokens: u64) -> Value {
    let output_tokens = output_tokens(content);
    match format {
        Format::OpenAi => {
            let mut message = json!({"role": "assistant", "content": content.text});
            if !content.tool_calls.is_empty() {
                message["tool_calls"] = content
                    .tool_calls
                    .iter()
                    .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
                    .collect();
            }
            let finish = if content.tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            json!({
                "id": format!("chatcmpl-fake-{id}"),
                "object": "chat.completion",
                "created": 1_700_000_000u64,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens},
            })
        }
        Format::Anthropic => {
            let mut blocks = Vec::new();
            if let Some(text) = &content.text {
                blocks.push(json!({"type": "text", "text": text}));
            }
            for (id, name, args) in &content.tool_calls {
                // Anthropic always sends `input` as an object; invalid arguments are sent as text
                // inside a string only in streams (partial_json), so fall back to a string here.
                let input = serde_json::from_str::<Value>(args).unwrap_or_else(|_| Value::String(args.clone()));
                blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            let stop = if content.tool_calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            json!({
                "id": format!("msg_fake_{id}"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            })
        }
    }
}

/// How a stream is cut and what it carries besides the content.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamShape {
    /// Whether a usage chunk ends it (OpenAI's `stream_options.include_usage`).
    pub(crate) include_usage: bool,
    /// Text bytes per chunk.
    pub(crate) chunk_bytes: usize,
    /// The server's quirks.
    pub(crate) quirks: Quirks,
}

/// The SSE frames of a streamed response, without the ending (end marker or fault).
/// Returns (frames, end-marker frames).
pub(crate) fn frames(
    format: Format,
    content: &Content,
    model: &str,
    id: u64,
    input_tokens: u64,
    shape: StreamShape,
) -> (Vec<String>, Vec<String>) {
    let StreamShape {
        include_usage,
        chunk_bytes,
        quirks,
    } = shape;
    let output_tokens = output_tokens(content);
    let mut frames = Vec::new();
    let mut tail = Vec::new();
    match format {
        Format::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                let v = json!({
                    "id": format!("chatcmpl-fake-{id}"),
                    "object": "chat.completion.chunk",
                    "created": 1_700_000_000u64,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                });
                format!("data: {v}\n\n")
            };
            frames.push(chunk(json!({"role": "assistant", "content": ""}), Value::Null));
            if let Some(text) = &content.text {
                for piece in split(text, chunk_bytes) {
                    frames.push(chunk(json!({"content": piece}), Value::Null));
                }
            }
            let calls = if quirks.legacy_function_call {
                &content.tool_calls[..content.tool_calls.len().min(1)]
            } else {
                &content.tool_calls[..]
            };
            for (index, (call_id, name, args)) in calls.iter().enumerate() {
                let first = if quirks.legacy_function_call {
                    json!({"function_call": {"name": name, "arguments": ""}})
                } else if quirks.no_tool_call_ids {
                    json!({"tool_calls": [{"index": index, "type": "function", "function": {"name": name, "arguments": ""}}]})
                } else {
                    json!({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]})
                };
                frames.push(chunk(first, Value::Null));
                for piece in split(args, chunk_bytes.max(2) * 2) {
                    let delta = if quirks.legacy_function_call {
                        json!({"function_call": {"arguments": piece}})
                    } else {
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                    };
                    frames.push(chunk(delta, Value::Null));
                }
            }
            let finish = match (content.tool_calls.is_empty(), quirks.legacy_function_call) {
                (true, _) => "stop",
                (false, true) => "function_call",
                (false, false) => "tool_calls",
            };
            tail.push(chunk(json!({}), json!(finish)));
            if include_usage && !quirks.no_stream_usage {
                let v = json!({
                    "id": format!("chatcmpl-fake-{id}"),
                    "object": "chat.completion.chunk",
                    "created": 1_700_000_000u64,
                    "model": model,
                    "choices": [],
                    "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens},
                });
                tail.push(format!("data: {v}\n\n"));
            }
            tail.push("data: [DONE]\n\n".to_owned());
        }
        Format::Anthropic => {
            let event = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
            frames.push(event(
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant", "model": model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
            ));
            frames.push(event("ping", json!({"type": "ping"})));
            let mut index = 0usize;
            if let Some(text) = &content.text {
                frames.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
                ));
                for piece in split(text, chunk_bytes) {
                    frames.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
                    ));
                }
                frames.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
            for (call_id, name, args) in &content.tool_calls {
                frames.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}}}),
                ));
                for piece in split(args, chunk_bytes.max(2) * 2) {
                    frames.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    ));
                }
                frames.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
            let stop = if content.tool_calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            tail.push(event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
            ));
            tail.push(event("message_stop", json!({"type": "message_stop"})));
        }
    }
    (frames, tail)
}

/// The in-stream error event for an overloaded provider.
pub(crate) fn overloaded_event(format: Format) -> String {
    match format {
        Format::OpenAi => format!(
            "data: {}\n\n",
            json!({"error": {"message": "The server is overloaded.", "type": "overloaded_error", "param": null, "code": null}})
        ),
        Format::Anthropic => format!(
            "event: error\ndata: {}\n\n",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        ),
    }
}

/// A frame whose data is not JSON.
pub(crate) fn malformed_event(format: Format) -> String {
    match format {
        Format::OpenAi => {
            "data: {\"id\": \"chatcmpl-fake\", \"choices\": [{\"delta\": {\"content\": \"oops\n\n".to_owned()
        }
        Format::Anthropic => {
            "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0,\n\n".to_owned()
        }
    }
}
