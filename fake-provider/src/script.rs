//! What the fake provider answers ([`Answer`], [`Fault`]) and what it records ([`RecordedRequest`]).

use std::fmt;

use serde_json::Value;

/// One scripted answer of the fake provider.
///
/// The provider renders a reply in the wire format of the endpoint that was called
/// (OpenAI chat completions or Anthropic Messages), streamed or whole, as the request asked.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// An assistant text message that ends the turn.
    Text(String),
    /// One or more tool calls (stop reason "tool_calls" / "tool_use").
    ToolCalls(Vec<ScriptedCall>),
    /// A text message whose text is this JSON value (for structured output).
    Json(Value),
    /// Text first, then tool calls, in one assistant message.
    TextAndToolCalls(String, Vec<ScriptedCall>),
    /// A fault instead of an answer.
    Fault(Fault),
}

impl Answer {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A reply with one tool call, its id chosen by the provider.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::ToolCalls(vec![ScriptedCall::new(name, arguments)])
    }

    /// A reply whose text is this JSON value.
    pub fn json(value: Value) -> Self {
        Self::Json(value)
    }

    /// A fault.
    pub fn fault(fault: Fault) -> Self {
        Self::Fault(fault)
    }
}

impl From<Fault> for Answer {
    fn from(fault: Fault) -> Self {
        Self::Fault(fault)
    }
}

/// A tool call in a scripted [`Answer`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptedCall {
    /// The call id; `None` lets the provider pick a unique one (`call_<n>` / `toolu_<n>`).
    pub id: Option<String>,
    /// The tool name.
    pub name: String,
    /// The arguments, sent as JSON text. A [`Value::String`] is sent verbatim, which is how a
    /// script sends arguments that are not valid JSON (see also [`Fault::InvalidToolArguments`]).
    pub arguments: Value,
}

impl ScriptedCall {
    /// A tool call with a provider-chosen id.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        Self {
            id: None,
            name: name.into(),
            arguments,
        }
    }

    /// The same call with this id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub(crate) fn arguments_text(&self) -> String {
        match &self.arguments {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        }
    }
}

/// A failure the fake provider produces on demand, shaped as the real providers shape it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 429 rate limit, with the given `retry-after` (raw header value: seconds or an HTTP
    /// date) and `retry-after-ms` headers when set.
    RateLimited {
        /// The `retry-after` header, verbatim.
        retry_after: Option<String>,
        /// The `retry-after-ms` header, in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// HTTP 429 with `insufficient_quota` (OpenAI format) or HTTP 400 "credit balance is too low"
    /// (Anthropic format): a spend limit, which clients must not retry.
    QuotaExceeded,
    /// This HTTP status with the provider's error body (500 `api_error`, 503, 529 `overloaded_error`...).
    Status(u16),
    /// Any response: status, extra headers and a raw body (for example `x-should-retry`).
    Http {
        /// The status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// The body, verbatim.
        body: String,
    },
    /// Accept the request and never answer, until the client gives up or the provider is dropped.
    Stall,
    /// Stream this many chunks of a text reply, then stall (to test idle timeouts).
    StallStream {
        /// Chunks sent before the stall.
        after_chunks: usize,
    },
    /// Send this many chunks of a text reply, then cut the connection (streamed or not).
    CutStream {
        /// Chunks sent before the cut.
        after_chunks: usize,
    },
    /// A 200 response whose body (or one stream event) is not valid JSON.
    MalformedJson,
    /// A tool call to `name` whose arguments are not valid JSON.
    InvalidToolArguments {
        /// The tool name.
        name: String,
    },
    /// An answer with this status (`text/event-stream`) whose body is `frame` sent again and
    /// again, `every` apart (zero: as fast as the client reads), without end: until the client
    /// hangs up or the provider is dropped. For keep-alive comments that never stop
    /// (`": ping\n\n"`), a stream that trickles data forever, or a body (or error body) larger
    /// than any limit.
    Drip {
        /// The HTTP status.
        status: u16,
        /// The bytes sent each time, verbatim.
        frame: String,
        /// The pause between two frames.
        every: std::time::Duration,
    },
    /// Stream a few chunks, then an in-stream error event saying the provider is overloaded
    /// (Anthropic `event: error`, OpenAI `data: {"error": ...}`).
    OverloadedMidStream {
        /// Chunks sent before the error event.
        after_chunks: usize,
    },
}

/// One request the fake provider received.
///
/// `Debug` redacts the `authorization` and `x-api-key` header values; use
/// [`header`](Self::header) to check them.
#[derive(Clone)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The request path, such as `/v1/chat/completions`.
    pub path: String,
    /// The request headers (names lowercase), in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request asked for a stream (`"stream": true`).
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool).unwrap_or(false)
    }

    /// The `messages` array of the body (empty if absent).
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let secret = n.eq_ignore_ascii_case("authorization") || n.eq_ignore_ascii_case("x-api-key");
                (n.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// Ways OpenAI-compatible servers answer differently from OpenAI, which the fake provider
/// can imitate in its OpenAI format ([`FakeProvider::set_quirks`](crate::FakeProvider::set_quirks));
/// all off by default.
///
/// ```
/// use warden_fake_provider::Quirks;
///
/// // An older server: legacy `function_call`, no usage in streams.
/// let quirks = Quirks::none().legacy_function_call().no_stream_usage();
/// assert!(quirks.legacy_function_call && !quirks.no_tool_call_ids);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quirks {
    /// Tool calls come without an `id` (some llama.cpp builds, some proxies).
    pub no_tool_call_ids: bool,
    /// A whole answer's tool-call `arguments` are a JSON object, not JSON text.
    pub arguments_as_objects: bool,
    /// The legacy form: one `function_call` (name and arguments, no id) instead of
    /// `tool_calls`, with `finish_reason: "function_call"`, whole and streamed.
    pub legacy_function_call: bool,
    /// Streams carry no `usage`, even when asked with `stream_options.include_usage`.
    pub no_stream_usage: bool,
}

impl Quirks {
    /// None: answers as OpenAI does.
    pub fn none() -> Self {
        Self::default()
    }

    /// See [`Quirks::no_tool_call_ids`].
    pub fn no_tool_call_ids(mut self) -> Self {
        self.no_tool_call_ids = true;
        self
    }

    /// See [`Quirks::arguments_as_objects`].
    pub fn arguments_as_objects(mut self) -> Self {
        self.arguments_as_objects = true;
        self
    }

    /// See [`Quirks::legacy_function_call`].
    pub fn legacy_function_call(mut self) -> Self {
        self.legacy_function_call = true;
        self
    }

    /// See [`Quirks::no_stream_usage`].
    pub fn no_stream_usage(mut self) -> Self {
        self.no_stream_usage = true;
        self
    }
}
