//! Retries by the providers' rules, over real HTTP against the fake provider: which statuses are
//! retried, `retry-after-ms` / `retry-after` (seconds or HTTP date), `x-should-retry`, quota
//! errors, bounded exponential backoff with jitter, timeouts and connection errors.

#[path = "support/model.rs"]
mod support;

use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{Capture, Wire, dead_url, fast_retry};
use warden_agents::model::{ChatRequest, Message, Model, ModelError, OpenAiChat, RetryPolicy};
use warden_fake_provider::{Answer, FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

fn http(status: u16, headers: &[(&str, &str)], body: &str) -> Fault {
    Fault::Http {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn retryable_statuses_are_retried_in_both_formats() {
    for wire in Wire::BOTH {
        for status in [408, 409, 429, 500, 502, 503, 504, 529] {
            let fake = FakeProvider::start().await;
            fake.push(Fault::Status(status));
            fake.push(Answer::text("recovered"));
            let answer = wire.model(&fake).chat(&hi()).await;
            let answer = answer.unwrap_or_else(|e| panic!("{wire:?} {status}: {e:?}"));
            assert_eq!(answer.text(), "recovered", "{wire:?} {status}");
            let requests = fake.requests();
            assert_eq!(requests.len(), 2, "{wire:?} {status}: one failure, one retry");
            assert!(requests.iter().all(|r| r.path == wire.path()));
            assert_eq!(requests[0].body, requests[1].body, "the retry sends the same request");
        }
    }
}

/// A 429 with this `retry-after` header.
fn retry_after(value: impl Into<String>) -> Fault {
    Fault::RateLimited {
        retry_after: Some(value.into()),
        retry_after_ms: None,
    }
}

/// A model whose own backoff (a minute) is far longer than any test tolerates, so a retry that
/// happens at all waited what the provider asked.
/// Waits only as long as the provider asks: no backoff would end in the test's time, and no
/// jitter above the provider's wait, so the waits can be checked exactly (model_deadlines.rs
/// checks the jitter).
fn patient(wire: Wire, fake: &FakeProvider) -> Model {
    wire.model(fake).with_retry(
        RetryPolicy::new(6)
            .backoff(Duration::from_secs(60), Duration::from_secs(60))
            .jitter(false)
            .retry_after_jitter(0.0),
    )
}

async fn fail(fake: &FakeProvider, model: &Model, fault: Fault) -> ModelError {
    fake.push(fault);
    model.chat(&hi()).await.unwrap_err()
}

#[tokio::test]
async fn each_status_is_a_typed_error() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let model = wire.model(&fake).with_retry(RetryPolicy::none());
        let e = fail(&fake, &model, Fault::Status(429)).await;
        assert!(
            matches!(
                e,
                ModelError::RateLimited {
                    retry_after: None,
                    should_retry: None,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = fail(&fake, &model, Fault::Status(529)).await;
        assert!(matches!(e, ModelError::Overloaded { .. }), "{wire:?}: {e:?}");
        for status in [408, 409, 500, 503] {
            let e = fail(&fake, &model, Fault::Status(status)).await;
            assert!(
                matches!(e, ModelError::Server { status: s, .. } if s == status),
                "{e:?}"
            );
            assert!(e.is_transient());
        }
        for status in [401, 403] {
            let e = fail(&fake, &model, Fault::Status(status)).await;
            assert!(
                matches!(e, ModelError::Authentication { status: s, .. } if s == status),
                "{e:?}"
            );
        }
        let e = fail(&fake, &model, Fault::Status(404)).await;
        assert!(matches!(e, ModelError::BadRequest { status: 404, .. }), "{e:?}");
        let e = fail(&fake, &model, Fault::QuotaExceeded).await;
        assert!(matches!(e, ModelError::QuotaExceeded), "{wire:?}: {e:?}");
        assert_eq!(fake.request_count(), 10, "RetryPolicy::none sends each request once");
    }
}

#[tokio::test]
async fn permanent_errors_are_sent_once() {
    for wire in Wire::BOTH {
        for status in [400, 401, 403, 404, 422] {
            let fake = FakeProvider::start().await;
            fake.push(Fault::Status(status));
            let model = wire.model(&fake).with_retry(fast_retry(5));
            let e = model.chat(&hi()).await.unwrap_err();
            assert_eq!(e.status(), Some(status), "{e:?}");
            assert!(!e.is_transient(), "{e:?}");
            assert_eq!(fake.request_count(), 1, "{wire:?} {status} is not retried");
        }
    }
}

#[tokio::test]
async fn retries_stop_at_max_retries() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_default_reply(Fault::Status(503));
        let model = wire.model(&fake).with_retry(fast_retry(3));
        let e = model.chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::Server { status: 503, .. }), "{e:?}");
        assert_eq!(fake.request_count(), 4, "one attempt and three retries");
    }
}

#[tokio::test]
async fn a_quota_error_is_never_retried() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::QuotaExceeded);
        let e = wire
            .model(&fake)
            .with_retry(fast_retry(5))
            .chat(&hi())
            .await
            .unwrap_err();
        assert!(matches!(e, ModelError::QuotaExceeded), "{e:?}");
        assert!(!e.is_transient());
        assert_eq!(fake.request_count(), 1);
    }
    // Not even when the 429 carries a retry-after and x-should-retry: true.
    let fake = FakeProvider::start().await;
    fake.push(http(
        429,
        &[("retry-after-ms", "1"), ("x-should-retry", "true")],
        r#"{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}"#,
    ));
    let e = Wire::OpenAi.model(&fake).chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::QuotaExceeded), "{e:?}");
    assert_eq!(fake.request_count(), 1);

    // Anthropic's spend limits: a 400, and a 429 that no wait cures.
    for (status, kind, message) in [
        (
            400,
            "invalid_request_error",
            "You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC.",
        ),
        (
            429,
            "rate_limit_error",
            "Extra usage is required for long context requests.",
        ),
    ] {
        let fake = FakeProvider::start().await;
        let body = json!({"type": "error", "error": {"type": kind, "message": message}});
        fake.push(http(status, &[("retry-after", "1")], &body.to_string()));
        let e = Wire::Anthropic.model(&fake).chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::QuotaExceeded), "{status}: {e:?}");
        assert!(e.warrants_fallback());
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retry_after_ms_is_the_wait() {
    let (capture, _guard) = Capture::install();
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::RateLimited {
            retry_after: Some("7".into()),
            retry_after_ms: Some(12),
        });
        // Honoured on 5xx and 529 too, not only on 429.
        fake.push(http(503, &[("retry-after-ms", "5")], "{}"));
        fake.push(http(529, &[("retry-after-ms", "3")], "{}"));
        fake.push(Answer::text("ok"));
        assert_eq!(patient(wire, &fake).chat(&hi()).await.unwrap().text(), "ok");
        assert_eq!(fake.request_count(), 4);
    }
    assert_eq!(
        capture.retry_delays_ms(),
        [12, 5, 3, 12, 5, 3],
        "retry-after-ms wins over retry-after"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn retry_after_seconds_is_the_wait() {
    let (capture, _guard) = Capture::install();
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(retry_after("0"));
        fake.push(retry_after("0.015"));
        fake.push(Answer::text("ok"));
        assert_eq!(patient(wire, &fake).chat(&hi()).await.unwrap().text(), "ok");
        assert_eq!(fake.request_count(), 3);
    }
    assert_eq!(capture.retry_delays_ms(), [0, 15, 0, 15]);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_ends_the_retries() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(retry_after("30"));
        let model = wire
            .model(&fake)
            .with_retry(fast_retry(3).max_retry_after(Duration::from_secs(10)));
        let e = model.chat(&hi()).await.unwrap_err();
        assert!(
            matches!(e, ModelError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
            "{e:?}"
        );
        assert_eq!(fake.request_count(), 1, "a 30 s wait is over the 10 s cap: not retried");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retry_after_as_an_http_date() {
    let (capture, _guard) = Capture::install();
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        // An hour from now: longer than the default 60 s cap, so not retried, and reported.
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        fake.push(retry_after(later));
        let model = wire.model(&fake).with_retry(RetryPolicy::default());
        let e = model.chat(&hi()).await.unwrap_err();
        let after = e.retry_after().expect("the date is reported as a wait");
        assert!(
            after > Duration::from_secs(3500) && after <= Duration::from_secs(3600),
            "{after:?}"
        );
        assert_eq!(fake.request_count(), 1);

        // A date in the past: retry at once.
        let earlier = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        fake.push(retry_after(earlier));
        fake.push(Answer::text("ok"));
        assert_eq!(patient(wire, &fake).chat(&hi()).await.unwrap().text(), "ok");
        assert_eq!(fake.request_count(), 3);
    }
    assert_eq!(capture.retry_delays_ms(), [0, 0]);
}

#[tokio::test]
async fn x_should_retry_true_forces_a_retry() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        let body = r#"{"error": {"message": "try again", "type": "invalid_request_error"}}"#;
        fake.push(http(400, &[("x-should-retry", "true")], body));
        fake.push(http(401, &[("x-should-retry", "true")], body));
        fake.push(Answer::text("ok"));
        let answer = wire.model(&fake).chat(&hi()).await.unwrap();
        assert_eq!(answer.text(), "ok");
        assert_eq!(
            fake.request_count(),
            3,
            "a 400 and a 401 retried because the provider said so"
        );
    }
}

#[tokio::test]
async fn x_should_retry_false_forbids_a_retry() {
    for wire in Wire::BOTH {
        for status in [429, 500, 503, 529] {
            let fake = FakeProvider::start().await;
            fake.push(http(
                status,
                &[("x-should-retry", "false"), ("retry-after-ms", "1")],
                "{}",
            ));
            fake.push(Answer::text("never asked for"));
            let e = wire
                .model(&fake)
                .with_retry(fast_retry(5))
                .chat(&hi())
                .await
                .unwrap_err();
            assert_eq!(e.status(), Some(status));
            assert!(!e.is_transient(), "{e:?}");
            assert_eq!(fake.request_count(), 1, "{wire:?} {status}");
            assert_eq!(fake.remaining(), 1);
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn backoff_is_exponential_with_jitter_and_bounded() {
    let (capture, _guard) = Capture::install();
    let fake = FakeProvider::start().await;
    fake.set_default_reply(Fault::Status(500));
    let policy = RetryPolicy::new(6).backoff(Duration::from_millis(4), Duration::from_millis(16));
    let e = Wire::Anthropic
        .model(&fake)
        .with_retry(policy)
        .chat(&hi())
        .await
        .unwrap_err();
    assert!(matches!(e, ModelError::Server { status: 500, .. }), "{e:?}");
    assert_eq!(fake.request_count(), 6);
    let delays = capture.retry_delays_ms();
    assert_eq!(delays.len(), 5);
    // 4, 8, 16, 16, 16 ms, each less up to 25 % jitter (the reported figure is in whole ms).
    for (delay, full) in delays.iter().zip([4u64, 8, 16, 16, 16]) {
        assert!(*delay <= full && *delay >= full * 3 / 4, "{delays:?}");
    }
}

#[tokio::test]
async fn timeouts_are_retried() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::Stall);
        fake.push(Answer::text("second time lucky"));
        let settings = wire.settings(&fake).with_request_timeout(Duration::from_millis(300));
        let answer = wire.model_with(settings).chat(&hi()).await.unwrap();
        assert_eq!(answer.text(), "second time lucky");
        assert_eq!(fake.request_count(), 2);
    }
}

#[tokio::test]
async fn a_timeout_that_persists_is_a_typed_error() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.set_default_reply(Fault::Stall);
        // Generous: the server must have read each request before the client gives up on it.
        let settings = wire.settings(&fake).with_request_timeout(Duration::from_millis(250));
        let e = wire.model_with(settings).chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::Timeout), "{e:?}");
        assert!(e.is_timeout() && e.is_transient());
        assert_eq!(fake.request_count(), 3, "one attempt and two retries");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connection_errors_are_retried_then_typed() {
    let (capture, _guard) = Capture::install();
    let model = Model::new(OpenAiChat::new(dead_url(), "gpt-test")).with_retry(fast_retry(3));
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Connection(_)), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(
        capture.retry_delays_ms().len(),
        3,
        "three retries after the first refusal"
    );
    let span = &capture.spans("model.chat")[0];
    assert_eq!(span.fields["attempts"], "4");
    assert_eq!(span.fields["outcome"], "connection");
}
