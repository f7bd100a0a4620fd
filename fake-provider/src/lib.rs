//! A fake LLM provider for tests: a small HTTP server on 127.0.0.1 that speaks the OpenAI
//! chat-completions and the Anthropic Messages wire formats.
//!
//! A test starts a [`FakeProvider`], points its model client at
//! [`base_url_openai`](FakeProvider::base_url_openai) or
//! [`base_url_anthropic`](FakeProvider::base_url_anthropic), scripts what the provider answers
//! with [`Answer`] values, and afterwards asserts on what the client sent with
//! [`requests`](FakeProvider::requests) (or waits for them with
//! [`wait_for_requests`](FakeProvider::wait_for_requests)).
//!
//! - **Scripted replies.** Each request takes the next [`Answer`] from the script; when the script
//!   is empty the [default reply](FakeProvider::set_default_reply) is used (text `"ok"` unless set).
//! - **Both formats, whole or streamed.** `POST /v1/chat/completions` answers in the OpenAI format
//!   (with `stream: true`: `data:` chunks, the usage chunk when `stream_options.include_usage`
//!   is set, and `data: [DONE]`); `POST /v1/messages` answers in the Anthropic format (with
//!   `stream: true`: `message_start`, `content_block_*`, `message_delta`, `message_stop`).
//!   Text and tool-call arguments are split into small chunks, as real providers do.
//! - **Faults on demand** ([`Fault`]): 429 with and without `retry-after`/`retry-after-ms`,
//!   quota errors, any status (500, 503, 529...), a stall, a stream cut off or stalled half way,
//!   an in-stream overloaded error, malformed JSON, tool calls with invalid arguments, a body
//!   that drips the same frame forever (keep-alive comments, an endless trickle).
//! - **History checks**: like the real providers, a request whose history has a tool call
//!   without a result (or a result without its call, or results not right after their calls)
//!   is rejected with a 400 `invalid_request_error`, before the script is read.
//! - **Latency**: [`set_latency`](FakeProvider::set_latency) delays every answer; requests are
//!   served concurrently (no lock is held while waiting), so a thousand clients with 100 ms
//!   latency take about 100 ms, not 100 s.
//!
//! The server stops when the [`FakeProvider`] is dropped; stalled requests are released then.
//!
//! # Examples
//!
//! ```
//! use warden_fake_provider::{FakeProvider, Fault, Answer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let fake = FakeProvider::start().await;
//! fake.push(Fault::Status(503));
//! fake.push(Answer::text("hello"));
//!
//! // Point a client at `fake.base_url_openai()` ("http://127.0.0.1:<port>/v1") here.
//!
//! assert!(fake.base_url_openai().ends_with("/v1"));
//! assert_eq!(fake.requests().len(), 0);
//! # }
//! ```

mod history;
mod limits;
mod script;
mod server;
mod wire;

pub use limits::Limits;
pub use script::{Answer, Fault, Quirks, RecordedRequest, ScriptedCall};
pub use server::FakeProvider;
