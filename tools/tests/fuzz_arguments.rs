//! Fuzzing the tool argument decoders with proptest, as part of `cargo test`:
//! arbitrary JSON into typed tool inputs (through `validate` and a tool's
//! `call_json`), and the HTTP tool's arguments through `build_request`,
//! 100,000 cases in all. Nothing may panic; what the HTTP tool accepts must
//! respect its allowlist, its ports and its header rules.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use proptest::test_runner::Config;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use warden_tools::{DynTool, HttpRequestArgs, HttpRequestTool, ToolError, into_dyn, tool_fn, validate};

/// Cases per property; four properties make 100,000.
const CASES: u32 = 25_000;

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Field names the typed inputs know, so that generated objects often fit them in part.
const KEYS: &[&str] = &[
    "method", "url", "headers", "body", "n", "s", "f", "list", "map", "mode", "kind", "inner", "",
];

/// Any characters (cheap to generate: no regex).
fn chars(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// Characters that URLs and headers are made of.
fn url_chars(max: usize) -> impl Strategy<Value = String> {
    const ALPHABET: &[char] = &[
        'a', 'b', 'z', 'A', 'Z', '0', '9', ':', '/', '.', '_', '?', '#', '@', '%', '[', ']', '-', ' ', '\\', '"', '~',
    ];
    prop::collection::vec(prop::sample::select(ALPHABET), 0..max).prop_map(String::from_iter)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        chars(16),
        url_chars(24),
        prop::sample::select(vec![
            "GET",
            "POST",
            "get",
            "OPTIONS",
            "DELETE",
            "CONNECT",
            "http://",
            "https://a.example.com/x",
            "http://[::1]:80/",
            "\u{0}",
            "\r\n",
            "Host",
            "Transfer-Encoding",
            "Proxy-Authorization",
        ])
        .prop_map(str::to_owned),
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        (0u8..=255).prop_map(Number::from),
    ]
}

/// Arbitrary JSON, small and nested.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        let key = prop_oneof![prop::sample::select(KEYS).prop_map(str::to_owned), text()];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5).prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A typed tool input with the shapes tools use: numbers with ranges,
/// options, sequences, maps, enums (tagged and not), nesting.
#[derive(Debug, Deserialize, JsonSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct Typed {
    n: u8,
    s: String,
    #[serde(default)]
    f: Option<f64>,
    #[serde(default)]
    list: Vec<i32>,
    #[serde(default)]
    map: BTreeMap<String, bool>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    inner: Option<Box<Typed>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fast,
    Slow,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[allow(dead_code)]
enum Kind {
    Url { url: String },
    Count { n: u64 },
}

fn typed_tool() -> Arc<dyn DynTool> {
    static TOOL: OnceLock<Arc<dyn DynTool>> = OnceLock::new();
    TOOL.get_or_init(|| {
        into_dyn(tool_fn("typed", "Echoes n.", |t: Typed| async move {
            Ok::<_, ToolError>(t.n)
        }))
    })
    .clone()
}

fn http_tool() -> &'static HttpRequestTool {
    static TOOL: OnceLock<HttpRequestTool> = OnceLock::new();
    TOOL.get_or_init(|| {
        HttpRequestTool::builder()
            .allow_host("a.example.com")
            .allow_host("*.wiki.org")
            .allow_host("127.0.0.1")
            .allow_port(8080)
            .build()
            .unwrap()
    })
}

/// What `build_request` accepted must respect the tool's rules.
fn check_accepted(request: &reqwest::Request) {
    let url = request.url();
    assert!(matches!(url.scheme(), "http" | "https"), "{url}");
    // The allowlist ignores a trailing dot (the root of the DNS).
    let host = url.host_str().unwrap().trim_end_matches('.');
    assert!(host == "a.example.com" || host.ends_with(".wiki.org"), "{url}");
    assert!(matches!(url.port_or_known_default(), Some(80 | 443 | 8080)), "{url}");
    for name in request.headers().keys() {
        let name = name.as_str();
        assert!(
            !matches!(name, "host" | "content-length" | "transfer-encoding" | "connection")
                && !name.starts_with("proxy-"),
            "{name}"
        );
    }
}

fn http_args() -> impl Strategy<Value = Value> {
    let scheme = prop::sample::select(vec!["http", "https", "ftp", "HTTP", "javascript", ""]);
    let host = prop_oneof![
        prop::sample::select(vec![
            "a.example.com",
            "en.wiki.org",
            "wiki.org",
            "evilwiki.org",
            "127.0.0.1",
            "169.254.169.254",
            "[::1]",
            "0x7f.1",
            "2130706433",
            "a.example.com.",
            "A.EXAMPLE.COM",
            "a.example.com@evil.com",
            "user:pw@a.example.com",
            "",
        ])
        .prop_map(str::to_owned),
        url_chars(20),
    ];
    let port = prop_oneof![
        Just(String::new()),
        (0u32..70_000).prop_map(|p| format!(":{p}")),
        Just(":8080".to_owned())
    ];
    let path = url_chars(20);
    let url = (scheme, host, port, path).prop_map(|(s, h, p, path)| format!("{s}://{h}{p}/{path}"));
    let header_name = prop_oneof![
        prop::sample::select(vec![
            "Host",
            "host",
            "HOST",
            "Content-Length",
            "transfer-encoding",
            "Connection",
            "Proxy-Authorization",
            "proxy-x",
            "Authorization",
            "Accept",
            "X-Custom",
            "bad header",
            "",
        ])
        .prop_map(str::to_owned),
        text(),
    ];
    let headers = prop::collection::btree_map(header_name, text(), 0..4);
    let method = prop::sample::select(vec![
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "TRACE",
    ]);
    (method, url, headers, prop::option::of(text())).prop_map(|(method, url, headers, body)| {
        let mut args = Map::new();
        args.insert("method".into(), Value::from(method));
        args.insert("url".into(), Value::from(url));
        args.insert("headers".into(), serde_json::to_value(headers).unwrap());
        if let Some(body) = body {
            args.insert("body".into(), Value::from(body));
        }
        Value::Object(args)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_into_a_typed_input_never_panics(args in json()) {
        match validate::<Typed>(&args) {
            Ok(_) => {}
            Err(ToolError::InvalidArguments { path, .. }) => prop_assert!(path.is_empty() || path.starts_with('/')),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
        let result = futures::executor::block_on(typed_tool().call_json(Arc::new(args)));
        prop_assert!(matches!(result, Ok(Value::Number(_)) | Err(ToolError::InvalidArguments { .. })), "{result:?}");
    }

    #[test]
    fn arbitrary_json_into_http_arguments_never_panics(args in json()) {
        if let Ok(args) = validate::<HttpRequestArgs>(&args) {
            if let Ok(request) = http_tool().build_request(&args) {
                check_accepted(&request);
            }
        }
    }

    #[test]
    fn http_arguments_are_checked_whatever_they_hold(args in http_args()) {
        let Ok(args) = validate::<HttpRequestArgs>(&args) else { return Ok(()) };
        let _ = format!("{args:?}");
        match http_tool().build_request(&args) {
            Ok(request) => check_accepted(&request),
            Err(err) => prop_assert!(matches!(err, ToolError::Failed { retryable: false, .. }), "{err:?}"),
        }
    }

    #[test]
    fn http_arguments_with_arbitrary_headers_and_bodies_never_panic(
        url in prop_oneof![Just("https://a.example.com/x".to_owned()), text()],
        headers in prop::collection::btree_map(text(), text(), 0..6),
        body in prop::option::of(chars(64)),
    ) {
        let args = serde_json::json!({ "url": url, "headers": headers, "body": body });
        let args: HttpRequestArgs = validate(&args).unwrap();
        if let Ok(request) = http_tool().build_request(&args) {
            check_accepted(&request);
        }
    }
}
