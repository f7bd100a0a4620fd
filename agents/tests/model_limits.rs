//! What a provider (or whatever answers at the base URL) can make a client hold or wait for, over
//! real HTTP in both wire formats: whole bodies, error bodies, one stream event, a whole stream
//! are read up to their limits and no further; a stream kept open by comments or pings times
//! out; a stream that trickles forever ends at its time limit. Each is a typed error.

#[path = "support/model.rs"]
mod support;

use std::time::Duration;

use support::Wire;
use warden_agents::model::{
    self, ChatRequest, Deadline, HttpSettings, Message, Model, ModelError, ResponsePart, RetryPolicy,
};
use warden_fake_provider::{FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// No test may hang on a client that waits without end: past this, the test fails.
const TEST_BOUND: Duration = Duration::from_secs(20);

/// A model at `fake` with these settings and no retries (one request per call).
fn model(wire: Wire, fake: &FakeProvider, settings: impl FnOnce(HttpSettings) -> HttpSettings) -> Model {
    wire.model_with(settings(wire.settings(fake)))
        .with_retry(RetryPolicy::none())
}

/// A body that sends `frame` forever, `every` apart, with this status.
fn drip(status: u16, frame: impl Into<String>, every: Duration) -> Fault {
    Fault::Drip {
        status,
        frame: frame.into(),
        every,
    }
}

/// One stream event carrying the text `x`, in the format of `wire`.
fn text_event(wire: Wire) -> &'static str {
    match wire {
        Wire::OpenAi => "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n",
        Wire::Anthropic => {
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n"
        }
    }
}

async fn chat(model: &Model) -> Result<model::ChatResponse, ModelError> {
    tokio::time::timeout(TEST_BOUND, model.chat(&hi()))
        .await
        .expect("the call ends by itself")
}

/// The error that ends the stream of `model` (after any number of events).
async fn stream_error(model: &Model) -> ModelError {
    let stream = model.stream(&hi()).await.expect("the stream opens");
    let collected = tokio::time::timeout(TEST_BOUND, model::collect(stream, "m"))
        .await
        .expect("the stream ends by itself");
    collected.expect_err("the stream fails")
}

#[tokio::test]
async fn a_body_without_end_stops_at_the_body_limit() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(drip(200, "x".repeat(8 << 10), Duration::ZERO));
        let model = model(wire, &fake, |s| s.with_max_body_bytes(64 << 10));
        let e = chat(&model).await.unwrap_err();
        assert!(
            matches!(e, ModelError::ResponseTooLarge { part: ResponsePart::Body, limit } if limit == 64 << 10),
            "{wire:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_body_announced_larger_than_the_limit_is_refused_before_reading() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(Fault::Http {
            status: 200,
            headers: Vec::new(),
            body: format!("{{\"padding\": \"{}\"}}", "x".repeat(100 << 10)),
        });
        let model = model(wire, &fake, |s| s.with_max_body_bytes(64 << 10));
        let e = chat(&model).await.unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::ResponseTooLarge {
                    part: ResponsePart::Body,
                    ..
                }
            ),
            "{wire:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn an_error_body_without_end_is_read_up_to_its_limit_and_the_status_decides() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(drip(503, "x".repeat(8 << 10), Duration::ZERO));
        let model = model(wire, &fake, |s| s.with_max_error_body_bytes(16 << 10));
        let e = chat(&model).await.unwrap_err();
        assert!(matches!(e, ModelError::Server { status: 503, .. }), "{wire:?}: {e:?}");
        // Streams read error bodies the same way.
        fake.push(drip(429, "x".repeat(8 << 10), Duration::ZERO));
        let opened = tokio::time::timeout(TEST_BOUND, model.stream(&hi()))
            .await
            .expect("ends");
        assert!(matches!(opened, Err(ModelError::RateLimited { .. })), "{wire:?}");
    }
}

#[tokio::test]
async fn one_event_of_many_data_lines_stops_at_the_event_limit() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        // Every line is short; the event never ends (no blank line).
        fake.push(drip(200, format!("data: {}\n", "x".repeat(1000)), Duration::ZERO));
        let model = model(wire, &fake, |s| s.with_max_event_bytes(64 << 10));
        let e = stream_error(&model).await;
        assert!(
            matches!(e, ModelError::ResponseTooLarge { part: ResponsePart::Event, limit } if limit == 64 << 10),
            "{wire:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_of_small_events_stops_at_the_stream_limit() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(drip(200, text_event(wire).repeat(64), Duration::ZERO));
        let model = model(wire, &fake, |s| s.with_max_stream_bytes(256 << 10));
        let e = stream_error(&model).await;
        assert!(
            matches!(e, ModelError::ResponseTooLarge { part: ResponsePart::Stream, limit } if limit == 256 << 10),
            "{wire:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn keep_alive_comments_do_not_hold_a_stream_open_past_the_idle_timeout() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(drip(200, ": keep-alive\n\n", Duration::from_millis(20)));
        let model = model(wire, &fake, |s| s.with_idle_timeout(Duration::from_millis(300)));
        let e = stream_error(&model).await;
        assert!(matches!(e, ModelError::Timeout), "{wire:?}: {e:?}");
    }
}

#[tokio::test]
async fn anthropic_pings_do_not_hold_a_stream_open_past_the_idle_timeout() {
    let fake = FakeProvider::start().await;
    fake.push(drip(
        200,
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        Duration::from_millis(20),
    ));
    let model = model(Wire::Anthropic, &fake, |s| {
        s.with_idle_timeout(Duration::from_millis(300))
    });
    let e = stream_error(&model).await;
    assert!(matches!(e, ModelError::Timeout), "{e:?}");
}

#[tokio::test]
async fn a_stream_that_trickles_forever_ends_at_its_time_limit() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        fake.push(drip(200, text_event(wire), Duration::from_millis(20)));
        let model = model(wire, &fake, |s| {
            s.with_idle_timeout(Duration::from_secs(60))
                .with_stream_timeout(Duration::from_millis(300))
        });
        let e = stream_error(&model).await;
        assert!(
            matches!(
                e,
                ModelError::DeadlineExceeded { deadline: Deadline::Stream, limit } if limit == Duration::from_millis(300)
            ),
            "{wire:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn data_resets_the_idle_timer() {
    for wire in Wire::BOTH {
        let fake = FakeProvider::start().await;
        // Data every 20 ms for longer than the idle timeout, then the stream time limit.
        fake.push(drip(200, text_event(wire), Duration::from_millis(20)));
        let model = model(wire, &fake, |s| {
            s.with_idle_timeout(Duration::from_secs(1))
                .with_stream_timeout(Duration::from_millis(2500))
        });
        let e = stream_error(&model).await;
        assert!(
            matches!(
                e,
                ModelError::DeadlineExceeded {
                    deadline: Deadline::Stream,
                    ..
                }
            ),
            "{wire:?}: idle timer restarted by data, so the time limit ends it: {e:?}"
        );
    }
}

#[test]
fn the_limits_have_defaults_far_above_real_answers() {
    let settings = HttpSettings::new("https://api.example".into(), "m".into());
    let debug = format!("{settings:?}");
    for field in [
        "max_body_bytes: 16777216",
        "max_error_body_bytes: 65536",
        "max_event_bytes: 8388608",
        "max_stream_bytes: 67108864",
        "stream_timeout: 900s",
    ] {
        assert!(debug.contains(field), "{field} in {debug}");
    }
}
