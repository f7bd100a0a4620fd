//! The HTTP tool against a real server on 127.0.0.1: headers that steer the
//! connection are refused, non-public addresses and other ports are refused
//! unless allowed, side effects are not repeated, a huge `Retry-After` is safe.

#[path = "support/server.rs"]
mod server;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};
use server::{Mode, TestServer};
use warden_tools::{
    Caller, HttpError, HttpMethod, HttpRequestTool, HttpRequestToolBuilder, RetryPolicy, ToolCall, ToolClient,
    ToolError, ToolExecutor, ToolStack,
};

const DEADLINE: Duration = Duration::from_secs(10);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn executor(tool: HttpRequestToolBuilder, stack: ToolStack) -> ToolClient {
    let (client, _handle) = ToolExecutor::new(tool.build().unwrap(), stack).spawn().await.unwrap();
    client
}

fn request(args: Value) -> ToolCall {
    ToolCall::new("http_request", args).caller(Caller::new("test").with("net:http"))
}

/// The `HttpError` a permanent failure carries.
fn refusal(result: Result<Value, ToolError>) -> HttpError {
    let err = result.unwrap_err();
    let ToolError::Failed {
        retryable: false,
        source,
    } = &err
    else {
        panic!("not a permanent failure: {err:?}")
    };
    let Some(http) = source.downcast_ref::<HttpError>() else {
        panic!("{source:?}")
    };
    // A copy: `HttpError` is not `Clone`.
    match http {
        HttpError::HeaderNotAllowed { name } => HttpError::HeaderNotAllowed { name: name.clone() },
        HttpError::AddressNotAllowed { host } => HttpError::AddressNotAllowed { host: host.clone() },
        HttpError::PortNotAllowed { port } => HttpError::PortNotAllowed { port: *port },
        HttpError::HostNotAllowed { host } => HttpError::HostNotAllowed { host: host.clone() },
        HttpError::ServerError { status } => HttpError::ServerError { status: *status },
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_steer_the_connection_are_refused() {
    let server = TestServer::start().await;
    let client = executor(server.allowing(HttpRequestTool::builder()), ToolStack::default()).await;
    for (name, value) in [
        ("Host", "metadata.google.internal"),
        ("host", "169.254.169.254"),
        ("Content-Length", "0"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive, Upgrade"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("proxy-connection", "keep-alive"),
    ] {
        let args = json!({ "url": server.url("/flaky"), "headers": { name: value } });
        let err = refusal(client.call(request(args), DEADLINE).await);
        assert!(
            matches!(&err, HttpError::HeaderNotAllowed { name: refused } if refused.eq_ignore_ascii_case(name)),
            "{err:?}"
        );
    }
    assert_eq!(server.hits(), 0);
    // Ordinary headers go through.
    let args =
        json!({ "url": server.url("/flaky"), "headers": { "Authorization": "Bearer t", "Accept": "text/plain" } });
    assert_eq!(client.call(request(args), DEADLINE).await.unwrap()["body"], "ok");
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_addresses_are_refused_unless_allowed() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let host_and_port = |b: HttpRequestToolBuilder| b.allow_host("127.0.0.1").allow_host("localhost").allow_port(port);

    let client = executor(host_and_port(HttpRequestTool::builder()), ToolStack::default()).await;
    // A literal loopback address, allowed by name but not as an address.
    let err = refusal(
        client
            .call(request(json!({ "url": server.url("/flaky") })), DEADLINE)
            .await,
    );
    assert!(
        matches!(err, HttpError::AddressNotAllowed { ref host } if host == "127.0.0.1"),
        "{err:?}"
    );
    // A name that resolves to loopback: refused by the resolver, nothing sent.
    let err = refusal(
        client
            .call(
                request(json!({ "url": format!("http://localhost:{port}/flaky") })),
                DEADLINE,
            )
            .await,
    );
    assert!(
        matches!(err, HttpError::AddressNotAllowed { ref host } if host == "localhost"),
        "{err:?}"
    );
    // Cloud metadata, by literal address, however it is written.
    let client = executor(
        HttpRequestTool::builder().allow_host("169.254.169.254"),
        ToolStack::default(),
    )
    .await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://2852039166/",
    ] {
        let err = refusal(client.call(request(json!({ "url": url })), DEADLINE).await);
        assert!(matches!(err, HttpError::AddressNotAllowed { .. }), "{url}: {err:?}");
    }
    assert_eq!(server.hits(), 0);

    // Allowed explicitly: both reach the server.
    let client = executor(
        host_and_port(HttpRequestTool::builder()).allow_address(LOOPBACK),
        ToolStack::default(),
    )
    .await;
    assert_eq!(
        client
            .call(request(json!({ "url": server.url("/flaky") })), DEADLINE)
            .await
            .unwrap()["body"],
        "ok"
    );
    let by_name = json!({ "url": format!("http://localhost:{port}/flaky") });
    assert_eq!(client.call(request(by_name), DEADLINE).await.unwrap()["body"], "ok");
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_are_allowed_explicitly() {
    let server = TestServer::start().await;
    let tool = HttpRequestTool::builder()
        .allow_host("127.0.0.1")
        .allow_address(LOOPBACK);
    let client = executor(tool, ToolStack::default()).await;
    let err = refusal(
        client
            .call(request(json!({ "url": server.url("/flaky") })), DEADLINE)
            .await,
    );
    assert!(
        matches!(err, HttpError::PortNotAllowed { port } if port == server.addr.port()),
        "{err:?}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_non_public_address_is_refused() {
    let server = TestServer::start().await;
    let tool = server
        .allowing(HttpRequestTool::builder())
        .allow_host("169.254.169.254");
    let client = executor(tool, ToolStack::default()).await;
    let to_metadata = server.url("/redirect?to=http://169.254.169.254/latest/meta-data/");
    let err = refusal(client.call(request(json!({ "url": to_metadata })), DEADLINE).await);
    assert!(matches!(err, HttpError::AddressNotAllowed { .. }), "{err:?}");
}

fn retrying() -> ToolStack {
    let policy = RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(5));
    ToolStack::builder().retry(policy).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_answered_502_is_sent_once() {
    let server = TestServer::start().await;
    server.set(Mode::Status(502));
    let client = executor(server.allowing(HttpRequestTool::builder()), retrying()).await;
    let post = json!({ "method": "POST", "url": server.url("/flaky"), "body": "charge the card" });
    let err = refusal(client.call(request(post), DEADLINE).await);
    assert!(matches!(err, HttpError::ServerError { status: 502 }), "{err:?}");
    assert_eq!(server.hits(), 1);

    // An idempotent method is retried.
    let get = json!({ "method": "GET", "url": server.url("/flaky") });
    let err = client.call(request(get), DEADLINE).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(server.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_delete_are_retried_only_when_declared_idempotent() {
    let server = TestServer::start().await;
    server.set(Mode::Status(503));
    let put = || request(json!({ "method": "PUT", "url": server.url("/flaky") }));
    let delete = || request(json!({ "method": "DELETE", "url": server.url("/flaky") }));

    let client = executor(server.allowing(HttpRequestTool::builder()), retrying()).await;
    client.call(put(), DEADLINE).await.unwrap_err();
    client.call(delete(), DEADLINE).await.unwrap_err();
    assert_eq!(server.hits(), 2);

    let tool = server
        .allowing(HttpRequestTool::builder())
        .idempotent_method(HttpMethod::Put)
        .idempotent_method(HttpMethod::Delete);
    let client = executor(tool, retrying()).await;
    client.call(put(), DEADLINE).await.unwrap_err();
    client.call(delete(), DEADLINE).await.unwrap_err();
    assert_eq!(server.hits(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_times_out_is_not_retried() {
    let mut server = TestServer::start().await;
    server.set(Mode::Stall);
    let stack = ToolStack::builder()
        .retry(RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(5)))
        .timeout(Duration::from_millis(100))
        .build();
    let client = executor(server.allowing(HttpRequestTool::builder()), stack).await;
    let post = json!({ "method": "POST", "url": server.url("/flaky") });
    let err = client.call(request(post), DEADLINE).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    server.dropped.recv().await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_neither_panics_nor_waits() {
    let server = TestServer::start().await;
    server.set(Mode::RateLimit { secs: u64::MAX });
    let client = executor(server.allowing(HttpRequestTool::builder()), retrying()).await;
    let err = client
        .call(request(json!({ "url": server.url("/flaky") })), DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ToolError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(u64::MAX)),
        "{err:?}"
    );
    assert_eq!(server.hits(), 1);
}

/// A durable agent's step id reaches the service as `Idempotency-Key`, so that a call
/// repeated after a crash is recognised there; a call without one sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_idempotency_key_is_sent_as_the_idempotency_key_header() {
    let server = TestServer::start().await;
    let client = executor(server.allowing(HttpRequestTool::builder()), ToolStack::default()).await;
    let post = json!({ "method": "POST", "url": server.url("/echo-key"), "body": "charge" });
    let keyed = request(post.clone()).idempotency_key("warden-7-3");
    let out = client.call(keyed, DEADLINE).await.unwrap();
    assert_eq!(out["body"], "warden-7-3", "{out}");
    let out = client.call(request(post), DEADLINE).await.unwrap();
    assert_eq!(out["body"], "none", "{out}");
}
