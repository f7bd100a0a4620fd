//! One model used from several tokio runtimes (as tests and some apps do): each runtime's
//! requests go over its own connections, so a runtime that sits idle never holds up another's.

#[path = "support/model.rs"]
mod support;

use std::sync::mpsc;
use std::time::Duration;

use warden_agents::model::{ChatRequest, Message, ModelError};
use warden_fake_provider::FakeProvider;

/// A fake provider served by a runtime of its own, on a background thread, until the returned
/// sender is dropped.
fn background_fake() -> (String, String, mpsc::Sender<()>) {
    let (url_tx, url_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let fake = FakeProvider::start().await;
            url_tx
                .send((fake.base_url_openai(), fake.base_url_anthropic()))
                .unwrap();
            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
        });
    });
    let (openai, anthropic) = url_rx.recv().unwrap();
    (openai, anthropic, stop_tx)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_idle_runtime_does_not_hold_up_another() {
    let (openai, anthropic, _stop) = background_fake();
    for (wire, url) in [(support::Wire::OpenAi, openai), (support::Wire::Anthropic, anthropic)] {
        // Built outside any runtime; a request that hung would end as a timeout.
        let settings = warden_agents::model::HttpSettings::new(url, support::MODEL.into())
            .with_request_timeout(Duration::from_secs(10));
        let model = wire
            .model_with(settings)
            .with_retry(warden_agents::model::RetryPolicy::none());
        let hi = ChatRequest::new(vec![Message::user("hi")]);
        // Runtime A calls, then sits idle (alive, not polled) holding its connection.
        let a = runtime();
        assert_eq!(a.block_on(model.chat(&hi)).unwrap().text(), "ok");
        // Runtime B, on the same thread, must not be handed A's connection.
        let b = runtime();
        let answer: Result<_, ModelError> = b.block_on(model.chat(&hi));
        assert_eq!(answer.unwrap().text(), "ok", "{wire:?}");
        // A gone, a new runtime works too.
        drop(a);
        drop(b);
        assert_eq!(runtime().block_on(model.chat(&hi)).unwrap().text(), "ok");
    }
}
