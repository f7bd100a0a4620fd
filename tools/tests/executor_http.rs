//! Executors driving the HTTP tool against a real server on 127.0.0.1:
//! timeouts cancel, retries stop at their bounds, 429s are typed.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use serde_json::json;
use server::{Mode, TestServer};
use warden_tools::{
    Caller, HttpError, HttpRequestTool, RetryPolicy, ToolCall, ToolClient, ToolError, ToolExecutor, ToolStack,
};

const DEADLINE: Duration = Duration::from_secs(10);

fn http(server: &TestServer) -> warden_tools::HttpRequestToolBuilder {
    server.allowing(HttpRequestTool::builder())
}

async fn executor(tool: HttpRequestTool, stack: ToolStack) -> ToolClient {
    let (client, _handle) = ToolExecutor::new(tool, stack).spawn().await.unwrap();
    client
}

fn get(url: String) -> ToolCall {
    ToolCall::new("http_request", json!({ "url": url })).caller(Caller::new("test").with("net:http"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_cancels_the_request() {
    let mut server = TestServer::start().await;
    server.set(Mode::Stall);
    let stack = ToolStack::builder().timeout(Duration::from_millis(100)).build();
    let client = executor(http(&server).build().unwrap(), stack).await;
    let err = client.call(get(server.url("/flaky")), DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, ToolError::Timeout { after } if after == Duration::from_millis(100)),
        "{err:?}"
    );
    // The server's handler was dropped: the connection was closed, not left hanging.
    server.dropped.recv().await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_max_attempts() {
    let server = TestServer::start().await;
    server.set(Mode::Fail);
    let policy = RetryPolicy::new(3).backoff(Duration::from_millis(1), Duration::from_millis(5));
    let client = executor(
        http(&server).build().unwrap(),
        ToolStack::builder().retry(policy).build(),
    )
    .await;
    let err = client.call(get(server.url("/flaky")), DEADLINE).await.unwrap_err();
    let ToolError::Failed {
        retryable: true,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(matches!(
        source.downcast_ref::<HttpError>(),
        Some(HttpError::ServerError { status: 500 })
    ));
    assert_eq!(server.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_total_deadline() {
    let server = TestServer::start().await;
    server.set(Mode::Fail);
    // Waits of 200 ms, 400 ms, ...: the second retry would start after the 300 ms deadline.
    let policy = RetryPolicy::new(100)
        .backoff(Duration::from_millis(200), Duration::from_secs(10))
        .jitter(false)
        .max_elapsed(Duration::from_millis(300));
    let client = executor(
        http(&server).build().unwrap(),
        ToolStack::builder().retry(policy).build(),
    )
    .await;
    let err = client.call(get(server.url("/flaky")), DEADLINE).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_size_limit_is_enforced_while_streaming() {
    let server = TestServer::start().await;
    let client = executor(
        http(&server).max_response_bytes(10_000).build().unwrap(),
        ToolStack::builder().retry(RetryPolicy::new(5)).build(),
    )
    .await;
    let ok = client.call(get(server.url("/bytes?n=10000")), DEADLINE).await.unwrap();
    assert_eq!(ok["body"].as_str().unwrap().len(), 10_000);
    for url in ["/bytes?n=10001", "/bytes?n=50000&chunked=true"] {
        let err = client.call(get(server.url(url)), DEADLINE).await.unwrap_err();
        let ToolError::Failed {
            retryable: false,
            source,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert!(matches!(
            source.downcast_ref::<HttpError>(),
            Some(HttpError::ResponseTooLarge { limit: 10_000 })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_redirects_are_checked_against_the_allowlist() {
    let server = TestServer::start().await;
    let client = executor(http(&server).build().unwrap(), ToolStack::default()).await;
    // `localhost` is not allowlisted, only 127.0.0.1.
    let err = client
        .call(get(format!("http://localhost:{}/flaky", server.addr.port())), DEADLINE)
        .await
        .unwrap_err();
    let ToolError::Failed {
        retryable: false,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        matches!(source.downcast_ref::<HttpError>(), Some(HttpError::HostNotAllowed { host }) if host == "localhost")
    );
    assert_eq!(server.hits(), 0);

    // A redirect to an allowed host is followed ...
    let to_allowed = server.url(&format!("/redirect?to={}", server.url("/flaky")));
    assert_eq!(client.call(get(to_allowed), DEADLINE).await.unwrap()["body"], "ok");
    assert_eq!(server.hits(), 1);
    // ... one to another host is refused before it is requested.
    let elsewhere = format!("http://localhost:{}/flaky", server.addr.port());
    let err = client
        .call(get(server.url(&format!("/redirect?to={elsewhere}"))), DEADLINE)
        .await
        .unwrap_err();
    let ToolError::Failed {
        retryable: false,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            source.downcast_ref::<HttpError>(),
            Some(HttpError::HostNotAllowed { .. })
        ),
        "{source:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tool_requires_net_http_by_default() {
    let server = TestServer::start().await;
    let client = executor(
        http(&server).build().unwrap(),
        ToolStack::builder().permission().build(),
    )
    .await;
    let call = ToolCall::new("http_request", json!({ "url": server.url("/flaky") }));
    let err = client.call(call, DEADLINE).await.unwrap_err();
    assert!(matches!(err, ToolError::PermissionDenied { ref missing } if missing.to_string() == "net:http"));
    assert_eq!(server.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_by_the_server_is_typed_and_waits_retry_after() {
    let server = TestServer::start().await;
    server.set(Mode::RateLimit { secs: 7 });
    let client = executor(
        http(&server).build().unwrap(),
        ToolStack::builder().retry(RetryPolicy::new(1)).build(),
    )
    .await;
    let err = client.call(get(server.url("/flaky")), DEADLINE).await.unwrap_err();
    assert!(matches!(err, ToolError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)));

    // A retry would have to wait 7 s, past the 1 s deadline: one hit only.
    let policy = RetryPolicy::new(5).max_elapsed(Duration::from_secs(1));
    let client = executor(
        http(&server).build().unwrap(),
        ToolStack::builder().retry(policy).build(),
    )
    .await;
    client.call(get(server.url("/flaky")), DEADLINE).await.unwrap_err();
    assert_eq!(server.hits(), 2);
}
