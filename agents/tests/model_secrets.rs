//! Keys and URLs stay where they belong: a key never follows a redirect to another host,
//! plain http to a non-loopback host needs an explicit opt-in, and a secret planted in the key
//! or in the base URL (user info, query) never shows in `Debug` output nor in captured traces.

#[path = "support/model.rs"]
mod support;

use support::{Capture, KEY, Wire, fast_retry};
use warden_agents::model::{
    AnthropicMessages, ApiKey, ChatModel, ChatRequest, ConfigError, HttpSettings, Message, Model, ModelConfig,
    ModelError, OpenAiChat, Provider, redacted_url,
};
use warden_fake_provider::{Answer, FakeProvider, Fault};

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// Planted in user info and queries of base URLs.
const URL_SECRET: &str = "url-secret-9c1d7e";

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_the_key_stays_home() {
    for wire in Wire::BOTH {
        for status in [301, 302, 307, 308] {
            let gateway = FakeProvider::start().await;
            let elsewhere = FakeProvider::start().await;
            let location = format!("http://{}{}", elsewhere.addr(), wire.path());
            gateway.push(Fault::Http {
                status,
                headers: vec![("location".into(), location)],
                body: String::new(),
            });
            let e = wire.model(&gateway).chat(&hi()).await.unwrap_err();
            assert!(
                matches!(e, ModelError::Redirected { status: s } if s == status),
                "{wire:?} {status}: {e:?}"
            );
            assert!(!e.is_transient() && !e.warrants_fallback(), "{wire:?} {status}");
            assert_eq!(gateway.request_count(), 1, "{wire:?} {status}: not retried");
            let leaked: Vec<_> = elsewhere.requests();
            assert!(
                leaked.is_empty(),
                "{wire:?} {status}: the other host got {leaked:?} (key header: {:?})",
                leaked
                    .first()
                    .and_then(|r| r.header("x-api-key").or(r.header("authorization")))
            );
        }
    }
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_needs_an_opt_in() {
    for url in [
        "http://gpu-box.internal:8000/v1",
        "http://10.0.0.5/v1",
        "http://[fd00::1]:8000/v1",
    ] {
        let config = ModelConfig::new(Provider::OpenAiCompatible, "m").with_base_url(url);
        match config.build() {
            Err(ModelError::Config(ConfigError::PlainHttp { host })) => {
                assert!(url.contains(host.trim_matches(['[', ']'])), "{url}: {host}")
            }
            other => panic!("{url}: {other:?}"),
        }
        config
            .with_allow_plain_http(true)
            .build()
            .expect("allowed when asked for");
        // Built in code: refused at the first call, before anything is sent.
        for provider in [
            Box::new(OpenAiChat::new(url, "m")) as Box<dyn ChatModel>,
            Box::new(AnthropicMessages::new(url, "m")),
        ] {
            let e = provider.chat(&hi()).await.unwrap_err();
            assert!(
                matches!(e, ModelError::Config(ConfigError::PlainHttp { .. })),
                "{url}: {e:?}"
            );
            let e = provider.stream(&hi()).await.err().expect("refused");
            assert!(
                matches!(e, ModelError::Config(ConfigError::PlainHttp { .. })),
                "{url}: {e:?}"
            );
        }
    }
    for url in [
        "https://gpu-box.internal:8000/v1",
        "http://localhost:11434/v1",
        "http://127.0.0.1:8000/v1",
        "http://127.8.9.10/v1",
        "http://[::1]:8000/v1",
    ] {
        let config = ModelConfig::new(Provider::OpenAiCompatible, "m").with_base_url(url);
        config.build().unwrap_or_else(|e| panic!("{url}: {e:?}"));
    }
    let e = ModelConfig::new(Provider::OpenAiCompatible, "m")
        .with_base_url("no scheme here")
        .build()
        .unwrap_err();
    assert!(matches!(e, ModelError::Config(ConfigError::InvalidBaseUrl)), "{e:?}");
}

#[test]
fn a_config_from_a_file_can_opt_in_to_plain_http() {
    let config = ModelConfig::from_toml_str(
        r#"
        provider = "openai-compatible"
        model = "m"
        base_url = "http://gpu-box.internal:8000/v1"
        allow_plain_http = true
    "#,
    )
    .unwrap();
    assert!(config.allow_plain_http);
    config.build().unwrap();
}

#[test]
fn urls_are_shown_without_user_info_query_or_fragment() {
    assert_eq!(
        redacted_url(&format!(
            "https://user:{URL_SECRET}@gw.example:8443/v1?key={URL_SECRET}#{URL_SECRET}"
        )),
        "https://<redacted>@gw.example:8443/v1?<redacted>#<redacted>"
    );
    assert_eq!(
        redacted_url(&format!("https://{URL_SECRET}@gw.example/v1")),
        "https://<redacted>@gw.example/v1"
    );
    assert_eq!(redacted_url("https://api.openai.com/v1"), "https://api.openai.com/v1");
    assert_eq!(redacted_url(&format!("{URL_SECRET} is no url")), "<unparsable url>");
}

/// Everything that can be printed about a model built with the secrets planted.
fn debug_outputs(base_url: &str) -> Vec<String> {
    let config = ModelConfig::new(Provider::Anthropic, "m")
        .with_base_url(base_url)
        .with_api_key(ApiKey::new(KEY))
        .with_fallback(
            ModelConfig::new(Provider::OpenAiCompatible, "m")
                .with_base_url(base_url)
                .with_api_key(ApiKey::new(KEY)),
        );
    let settings = HttpSettings::new(base_url.to_owned(), "m".to_owned()).with_api_key(Some(ApiKey::new(KEY)));
    let model = config.build().unwrap();
    vec![
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{settings:?}"),
        format!("{:?}", OpenAiChat::new(base_url, "m").with_settings(settings.clone())),
        format!("{:?}", AnthropicMessages::new(base_url, "m").with_settings(settings)),
        format!("{model:?}"),
        format!("{:?}", model.provider()),
    ]
}

#[test]
fn debug_output_shows_neither_the_key_nor_the_secrets_of_the_base_url() {
    for base_url in [
        format!("https://user:{URL_SECRET}@gw.example/v1"),
        format!("https://gw.example/v1?api-key={URL_SECRET}"),
    ] {
        for shown in debug_outputs(&base_url) {
            assert!(!shown.contains(URL_SECRET), "{shown}");
            assert!(!shown.contains(KEY), "{shown}");
            assert!(shown.contains("gw.example"), "the host is still shown: {shown}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn captured_traces_show_neither_the_key_nor_the_secrets_of_the_base_url() {
    let (capture, _guard) = Capture::install();
    for wire in Wire::BOTH {
        let primary = FakeProvider::start().await;
        let fallback = FakeProvider::start().await;
        // The secret rides in the base URL's user info (sent as basic auth by the client).
        let with_userinfo = |url: String| url.replacen("http://", &format!("http://user:{URL_SECRET}@"), 1);
        let primary_url = with_userinfo(wire.base_url(&primary));
        let settings =
            HttpSettings::new(primary_url.clone(), support::MODEL.into()).with_api_key(Some(ApiKey::new(KEY)));
        let backup = wire.model_with(
            HttpSettings::new(with_userinfo(wire.base_url(&fallback)), support::MODEL.into())
                .with_api_key(Some(ApiKey::new(KEY))),
        );
        let model: Model = wire
            .model_with(settings)
            .with_retry(fast_retry(1))
            .with_fallback(backup);
        // Failures (logged with their errors), a fallback, a success and a stream.
        primary.push(Fault::Status(503));
        primary.push(Fault::Status(503));
        fallback.push(Answer::text("from the fallback"));
        assert_eq!(model.chat(&hi()).await.unwrap().text(), "from the fallback");
        primary.push(Fault::Status(401));
        model.chat(&hi()).await.unwrap_err();
        let stream = model.stream(&hi()).await.unwrap();
        warden_agents::model::collect(stream, "m").await.unwrap();
        // What an application logs about its model.
        tracing::info!(?model, base_url = %redacted_url(&primary_url), "model ready");
        let sent = primary.requests();
        assert!(!sent.is_empty(), "the calls reached the provider");
    }
    let log = capture.dump();
    assert!(
        log.contains("model ready") && log.contains("model.chat"),
        "the capture works: {log}"
    );
    assert!(!log.contains(URL_SECRET), "{log}");
    assert!(!log.contains(KEY), "{log}");
}
