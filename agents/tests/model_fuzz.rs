//! Property tests over the model layer's parsers: whole answer bodies and error answers of both
//! providers, and their server-sent-event streams (framing, event assembly, decoding, folding
//! into a response), fed with generated input shaped like theirs and with garbage. None may
//! panic; every failure is a typed error; a stream's meaning does not depend on how its bytes
//! were cut into chunks. 110,000 cases in all, a few seconds in a debug build.
//!
//! The parsers are reached through the `#[doc(hidden)]` `warden_agents::model::fuzz` entry points.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm};
use serde_json::{Map, Number, Value, json};
use warden_agents::model::fuzz::{self, Wire};
use warden_agents::model::{ModelError, StreamAssembler, StreamEvent};

/// A config of `cases` cases that writes no regression files, with the fast (non-cryptographic)
/// random generator: in a debug build ChaCha took a sixth of the time.
fn cases(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    }
}

/// Keys the parsers look for, so that generated objects reach deep into them.
const KEYS: &[&str] = &[
    "choices",
    "message",
    "content",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "index",
    "type",
    "text",
    "input",
    "usage",
    "error",
    "stop_reason",
    "finish_reason",
    "delta",
    "partial_json",
    "content_block",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "model",
    "code",
    "role",
    "0",
];

/// Strings the parsers compare against.
const WORDS: &[&str] = &[
    "text",
    "tool_use",
    "text_delta",
    "input_json_delta",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
    "ping",
    "overloaded_error",
    "rate_limit_error",
    "rate_limit_exceeded",
    "api_error",
    "server_error",
    "insufficient_quota",
    "billing_hard_limit_reached",
    "Your credit balance is too low",
    "stop",
    "length",
    "tool_calls",
    "function_call",
    "content_filter",
    "end_turn",
    "max_tokens",
    "refusal",
    "[DONE]",
    "{\"a\": 1",
    "",
    "é🎉\u{0}",
];

/// Any text of up to `max` characters. (Not a regex strategy: proptest parses the regex again for
/// every value, which took a third of the time.)
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(WORDS).prop_map(Value::from),
        text(12).prop_map(Value::from),
    ]
}

/// JSON values shaped like the providers' answers: objects keyed with the words the parsers
/// look for, nested a few levels, arrays, and any leaf.
fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A body: a generated JSON value, whole or cut short, or bytes that are no JSON at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json().prop_map(|v| v.to_string().into_bytes()),
        2 => (json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => Just(b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec()),
    ]
}

fn wire() -> impl Strategy<Value = Wire> {
    prop_oneof![Just(Wire::OpenAi), Just(Wire::Anthropic)]
}

/// A stream event's JSON: the providers' own event shapes with generated values (cheap to make,
/// and they reach the decoders' every branch), or any generated JSON.
fn event_json() -> impl Strategy<Value = Value> {
    let word = || prop::sample::select(WORDS).prop_map(Value::from);
    prop_oneof![
        3 => (word(), word(), leaf(), leaf(), leaf()).prop_map(|(kind, delta_kind, index, text, other)| {
            json!({
                "type": kind,
                "index": index,
                "delta": {"type": delta_kind, "text": text, "partial_json": other, "stop_reason": text},
                "content_block": {"type": delta_kind, "id": other, "name": text, "text": text},
                "message": {"usage": {"input_tokens": index}},
                "usage": {"input_tokens": index, "output_tokens": other},
                "error": {"type": delta_kind, "message": text},
            })
        }),
        3 => (leaf(), leaf(), leaf(), leaf(), word()).prop_map(|(content, index, id, args, finish)| {
            json!({
                "choices": [{
                    "index": 0,
                    "delta": {
                        "content": content,
                        "tool_calls": [{"index": index, "id": id, "function": {"name": content, "arguments": args}}],
                    },
                    "finish_reason": finish,
                }],
                "usage": {"prompt_tokens": index, "completion_tokens": id},
            })
        }),
        2 => json(),
    ]
}

/// One line of a server-sent-event stream.
fn sse_line() -> impl Strategy<Value = Vec<u8>> {
    let event_names = prop::sample::select(WORDS);
    prop_oneof![
        6 => event_json().prop_map(|v| format!("data: {v}").into_bytes()),
        1 => Just(b"data: [DONE]".to_vec()),
        2 => event_names.prop_map(|e| format!("event: {e}").into_bytes()),
        1 => text(32).prop_map(|c| format!(":{}", c.replace(['\n', '\r'], " ")).into_bytes()),
        3 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => text(32).prop_map(|s| format!("data:{s}").into_bytes()),
    ]
}

/// A stream: lines ended by `\n` or `\r\n`, and the points where its bytes are cut into chunks.
fn sse_stream() -> impl Strategy<Value = (Vec<u8>, Vec<prop::sample::Index>)> {
    let line = (sse_line(), any::<bool>()).prop_map(|(mut line, crlf)| {
        line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        line
    });
    (
        prop::collection::vec(line, 0..10).prop_map(|lines| lines.concat()),
        prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    )
}

/// `bytes` cut at these points (chunk boundaries anywhere, mid-line and mid-character too).
fn chunks(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

/// The stream's items, folded as a client would: no item after an error, and the events fold
/// into a response (which must not panic either).
fn fold(items: &[Result<StreamEvent, ModelError>]) -> Result<(), TestCaseError> {
    let mut assembler = StreamAssembler::new("m");
    for (at, item) in items.iter().enumerate() {
        match item {
            Ok(event) => {
                if assembler.push(event.clone()).is_err() {
                    break;
                }
            }
            Err(e) => {
                prop_assert_eq!(at, items.len() - 1, "an error ends the stream: {:?}", e);
                prop_assert!(!e.kind().is_empty());
            }
        }
    }
    let _ = assembler.finish();
    Ok(())
}

/// Outcomes comparable across runs: the events, and the error's kind.
fn outcomes(items: &[Result<StreamEvent, ModelError>]) -> Vec<Result<StreamEvent, &'static str>> {
    items
        .iter()
        .map(|i| i.as_ref().cloned().map_err(ModelError::kind))
        .collect()
}

proptest! {
    #![proptest_config(cases(25_000))]
    #[test]
    fn whole_bodies_decode_or_fail_typed(wire in wire(), body in body()) {
        match fuzz::decode_body(wire, &body) {
            // Any shape the provider's schema admits is an answer, even an odd one
            // (`"model": ""` included): the property is "no panic, typed error".
            Ok(_) => {}
            Err(e) => prop_assert!(!e.kind().is_empty()),
        }
    }
}

proptest! {
    #![proptest_config(cases(20_000))]
    #[test]
    fn error_answers_classify_without_panic(
        status in 100u16..1000,
        headers in prop::collection::vec(
            (
                prop::sample::select(&["retry-after", "retry-after-ms", "x-should-retry", "content-type"][..]),
                prop_oneof![
                    prop::sample::select(
                        &["1e300", "-1", "NaN", "inf", "18446744073709551615", "0.5", "true", "false",
                          "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", ""][..]
                    ).prop_map(str::to_owned),
                    any::<f64>().prop_map(|f| f.to_string()),
                    any::<u64>().prop_map(|n| n.to_string()),
                    text(32),
                ],
            ),
            0..4,
        ),
        body in body(),
    ) {
        let headers: Vec<(String, String)> = headers.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        let e = fuzz::classify(status, &headers, &body);
        prop_assert!(!e.kind().is_empty());
        if (300..400).contains(&status) {
            prop_assert!(matches!(e, ModelError::Redirected { .. }), "{:?}", e);
        }
    }
}

proptest! {
    #![proptest_config(cases(35_000))]
    #[test]
    fn streams_decode_or_fail_typed(wire in wire(), (bytes, cuts) in sse_stream(), max_event in 16usize..2048) {
        let items = futures::executor::block_on(fuzz::decode_stream(wire, chunks(&bytes, &cuts), max_event, usize::MAX));
        fold(&items)?;
        if let Some(Err(ModelError::ResponseTooLarge { limit, .. })) = items.last() {
            prop_assert_eq!(*limit, max_event);
        }
    }
}

proptest! {
    #![proptest_config(cases(20_000))]
    #[test]
    fn a_streams_meaning_does_not_depend_on_its_chunks(wire in wire(), (bytes, cuts) in sse_stream()) {
        let whole = futures::executor::block_on(fuzz::decode_stream(wire, vec![bytes.clone()], usize::MAX, usize::MAX));
        let cut = futures::executor::block_on(fuzz::decode_stream(wire, chunks(&bytes, &cuts), usize::MAX, usize::MAX));
        prop_assert_eq!(outcomes(&whole), outcomes(&cut));
    }
}

proptest! {
    #![proptest_config(cases(10_000))]
    #[test]
    fn a_stream_over_its_size_limit_stops_there(wire in wire(), (bytes, cuts) in sse_stream(), max_stream in 0usize..512) {
        let items = futures::executor::block_on(fuzz::decode_stream(wire, chunks(&bytes, &cuts), usize::MAX, max_stream));
        fold(&items)?;
        if bytes.len() <= max_stream {
            let too_large = items.iter().any(|i| matches!(i, Err(ModelError::ResponseTooLarge { .. })));
            prop_assert!(!too_large, "{} bytes within {}", bytes.len(), max_stream);
        }
    }
}
