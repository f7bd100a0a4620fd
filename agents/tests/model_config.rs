//! Model configuration from TOML, YAML and environment variables, used over real HTTP: the key
//! is read from the named variable and sent as the provider wants it (`Authorization: Bearer`,
//! `x-api-key`), retry and fallback settings apply, bad configs are typed errors, and the key
//! never shows in `Debug` output, errors or traces.

#[path = "support/model.rs"]
mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use support::{Capture, KEY};
use warden_agents::model::{
    ANTHROPIC_VERSION, ApiKey, ChatRequest, ConfigError, Message, ModelConfig, ModelError, Provider,
};
use warden_fake_provider::{Answer, FakeProvider, Fault};

/// The variable the test configs name for their key.
const KEY_VAR: &str = "WARDEN_TEST_MODEL_KEY";

/// An environment with only [`KEY_VAR`] set, to [`KEY`].
fn env(name: &str) -> Option<String> {
    (name == KEY_VAR).then(|| KEY.to_owned())
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::user("hi")])
}

/// A config file with this name and text, in a directory of its own under the system's temp
/// directory; removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warden-model-config-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn config_error(result: Result<impl std::fmt::Debug, ModelError>) -> ConfigError {
    match result {
        Err(ModelError::Config(e)) => e,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_toml_file_builds_an_openai_format_model_that_sends_a_bearer_key() {
    let fake = FakeProvider::start().await;
    fake.require_api_key(Some(KEY.to_owned()));
    let file = TempConfig::new(
        "model.toml",
        &format!(
            r#"
            provider = "openai-compatible"
            model = "qwen2.5:7b"
            base_url = "{}"
            api_key_env = "{KEY_VAR}"
            temperature = 0.25
            max_tokens = 321
            timeout_secs = 120
            idle_timeout_secs = 30

            [retry]
            max_attempts = 2
            initial_backoff_ms = 1
            "#,
            fake.base_url_openai()
        ),
    );
    let config = ModelConfig::from_file(&file.0).unwrap();
    assert_eq!(config.provider, Provider::OpenAiCompatible);
    let model = config.build_with_env(env).unwrap();
    assert_eq!(model.name(), "qwen2.5:7b");
    assert_eq!(model.retry_policy().max_attempts(), 2);
    let settings = format!("{:?}", model.provider());
    assert!(
        settings.contains("request_timeout: 120s") && settings.contains("idle_timeout: 30s"),
        "{settings}"
    );

    fake.push(Answer::text("hello"));
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "hello");
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(sent.header("x-api-key"), None);
    assert_eq!(sent.body["model"], "qwen2.5:7b");
    assert_eq!(sent.body["temperature"], 0.25);
    assert_eq!(sent.body["max_tokens"], 321);

    // The retry section applies: one retry, then the typed error.
    fake.set_default_reply(Fault::Status(503));
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Server { status: 503, .. }), "{e:?}");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn a_yaml_file_builds_an_anthropic_model_that_sends_x_api_key() {
    let fake = FakeProvider::start().await;
    fake.require_api_key(Some(KEY.to_owned()));
    let text = format!(
        "provider: anthropic\nmodel: claude-test\nbase_url: {}\napi_key_env: {KEY_VAR}\nmax_tokens: 77\n",
        fake.base_url_anthropic()
    );
    for name in ["model.yaml", "model.yml"] {
        let file = TempConfig::new(name, &text);
        let model = ModelConfig::from_file(&file.0).unwrap().build_with_env(env).unwrap();
        fake.push(Answer::text("bonjour"));
        assert_eq!(model.chat(&hi()).await.unwrap().text(), "bonjour");
    }
    for sent in fake.requests() {
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some(KEY));
        assert_eq!(sent.header("authorization"), None);
        assert_eq!(sent.header("anthropic-version"), Some(ANTHROPIC_VERSION));
        assert_eq!(sent.body["model"], "claude-test");
        assert_eq!(sent.body["max_tokens"], 77);
    }
}

#[tokio::test]
async fn a_wrong_key_is_an_authentication_error() {
    let fake = FakeProvider::start().await;
    fake.require_api_key(Some("the-right-key".to_owned()));
    for (provider, base) in [
        (Provider::OpenAiCompatible, fake.base_url_openai()),
        (Provider::Anthropic, fake.base_url_anthropic()),
    ] {
        let config = ModelConfig::new(provider, "m")
            .with_base_url(base)
            .with_api_key_env(KEY_VAR);
        let e = config.build_with_env(env).unwrap().chat(&hi()).await.unwrap_err();
        assert!(matches!(e, ModelError::Authentication { status: 401, .. }), "{e:?}");
    }
    assert_eq!(fake.request_count(), 2, "not retried");
}

#[tokio::test]
async fn the_environment_names_provider_model_url_and_key_variable() {
    let fake = FakeProvider::start().await;
    fake.require_api_key(Some(KEY.to_owned()));
    let base = fake.base_url_anthropic();
    let vars = |name: &str| match name {
        "WARDEN_MODEL_PROVIDER" => Some("anthropic".to_owned()),
        "WARDEN_MODEL" => Some("claude-env".to_owned()),
        "WARDEN_MODEL_BASE_URL" => Some(base.clone()),
        "WARDEN_MODEL_API_KEY_ENV" => Some(KEY_VAR.to_owned()),
        other => env(other),
    };
    let model = ModelConfig::from_env_with(vars).unwrap().build_with_env(env).unwrap();
    fake.push(Answer::text("from env"));
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "from env");
    assert_eq!(fake.requests()[0].header("x-api-key"), Some(KEY));
    assert_eq!(fake.requests()[0].body["model"], "claude-env");

    // The OpenAI convention: OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL.
    let base = fake.base_url_openai();
    let openai = |name: &str| match name {
        "OPENAI_API_KEY" => Some(KEY.to_owned()),
        "OPENAI_BASE_URL" => Some(base.clone()),
        "OPENAI_MODEL" => Some("gpt-env".to_owned()),
        _ => None,
    };
    let config = ModelConfig::from_env_with(openai).unwrap();
    assert_eq!(config.provider, Provider::OpenAi);
    let model = config.build_with_env(openai).unwrap();
    fake.push(Answer::text("openai env"));
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "openai env");
    let sent = &fake.requests()[1];
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(sent.body["model"], "gpt-env");
}

#[tokio::test]
async fn a_fallback_from_the_config_answers_when_the_quota_is_spent() {
    let primary = FakeProvider::start().await;
    let fallback = FakeProvider::start().await;
    primary.push(Fault::QuotaExceeded);
    fallback.push(Answer::text("from the fallback"));
    let config = ModelConfig::from_toml_str(&format!(
        r#"
        provider = "openai-compatible"
        model = "primary"
        base_url = "{}"

        [fallback]
        provider = "anthropic"
        model = "secondary"
        base_url = "{}"
        api_key_env = "{KEY_VAR}"
        "#,
        primary.base_url_openai(),
        fallback.base_url_anthropic()
    ))
    .unwrap();
    let answer = config.build_with_env(env).unwrap().chat(&hi()).await.unwrap();
    assert_eq!(answer.text(), "from the fallback");
    assert_eq!(answer.model, "secondary");
    assert_eq!(primary.request_count(), 1, "a quota error is not retried");
    assert_eq!(fallback.requests()[0].header("x-api-key"), Some(KEY));
}

#[test]
fn bad_configs_are_typed_errors() {
    let e = config_error(ModelConfig::new(Provider::OpenAi, "gpt").build_with_env(no_env));
    assert!(
        matches!(&e, ConfigError::MissingApiKey(v) if v == "OPENAI_API_KEY"),
        "{e:?}"
    );
    let e = config_error(
        ModelConfig::new(Provider::Anthropic, "claude")
            .with_api_key_env("MY_KEY")
            .build_with_env(no_env),
    );
    assert!(matches!(&e, ConfigError::MissingApiKey(v) if v == "MY_KEY"), "{e:?}");
    let empty = |_: &str| Some(String::new());
    let e = config_error(ModelConfig::new(Provider::OpenAi, "gpt").build_with_env(empty));
    assert!(
        matches!(&e, ConfigError::MissingApiKey(_)),
        "an empty key is no key: {e:?}"
    );
    let e = config_error(ModelConfig::new(Provider::OpenAiCompatible, "m").build_with_env(no_env));
    assert!(matches!(e, ConfigError::Missing("base_url")), "{e:?}");
    let e = config_error(ModelConfig::new(Provider::Ollama, " ").build_with_env(no_env));
    assert!(matches!(e, ConfigError::Missing("model")), "{e:?}");

    let e = config_error(ModelConfig::from_toml_str("provider = \"skynet\"\nmodel = \"t-800\""));
    assert!(matches!(e, ConfigError::Toml(_)), "{e:?}");
    let e = config_error(ModelConfig::from_toml_str("model = \"gpt\""));
    assert!(matches!(e, ConfigError::Toml(_)), "{e:?}");
    let e = config_error(ModelConfig::from_yaml_str("provider: [openai"));
    assert!(matches!(e, ConfigError::Yaml(_)), "{e:?}");
    // A misspelt setting is an error, not silently the default (which, for `base_url`, would
    // send the key to the provider's public endpoint).
    let e = config_error(ModelConfig::from_toml_str(
        "provider = \"openai\"\nmodel = \"gpt\"\nbase_ur1 = \"http://localhost:8000/v1\"",
    ));
    assert!(e.to_string().contains("toml"), "{e}");
    let e = config_error(ModelConfig::from_yaml_str(
        "provider: openai\nmodel: gpt\nretry:\n  max_retrys: 3\n",
    ));
    assert!(matches!(e, ConfigError::Yaml(_)), "{e:?}");

    let e = config_error(ModelConfig::from_env_with(no_env));
    assert!(matches!(e, ConfigError::Missing("WARDEN_MODEL_PROVIDER")), "{e:?}");
    let e = config_error(ModelConfig::from_env_with(|n| {
        (n == "WARDEN_MODEL_PROVIDER").then(|| "martian".to_owned())
    }));
    assert!(matches!(&e, ConfigError::UnknownProvider(p) if p == "martian"), "{e:?}");
    let e = config_error(ModelConfig::from_env_with(|n| {
        (n == "WARDEN_MODEL_PROVIDER").then(|| "openai".to_owned())
    }));
    assert!(matches!(e, ConfigError::Missing("WARDEN_MODEL")), "{e:?}");

    let file = TempConfig::new("model.json", "{}");
    let e = config_error(ModelConfig::from_file(&file.0));
    assert!(matches!(e, ConfigError::UnknownFormat), "{e:?}");
    let e = config_error(ModelConfig::from_file(file.0.with_file_name("absent.toml")));
    assert!(matches!(e, ConfigError::Io(_)), "{e:?}");
}

#[test]
fn provider_names_and_defaults() {
    for (name, provider) in [
        ("openai", Provider::OpenAi),
        ("Anthropic", Provider::Anthropic),
        ("deepseek", Provider::DeepSeek),
        ("dashscope", Provider::Qwen),
        ("ollama", Provider::Ollama),
        ("vllm", Provider::OpenAiCompatible),
    ] {
        assert_eq!(name.parse::<Provider>().unwrap(), provider);
    }
    // Ollama needs no key; the others read theirs from the provider's usual variable.
    assert!(
        ModelConfig::new(Provider::Ollama, "llama3")
            .build_with_env(no_env)
            .is_ok()
    );
    let deepseek = |n: &str| (n == "DEEPSEEK_API_KEY").then(|| KEY.to_owned());
    let model = ModelConfig::new(Provider::DeepSeek, "deepseek-chat")
        .build_with_env(deepseek)
        .unwrap();
    assert_eq!(model.provider().provider_name(), "openai");
    assert!(format!("{model:?}").contains("https://api.deepseek.com/v1"));
}

#[tokio::test(flavor = "current_thread")]
async fn the_key_never_shows_in_debug_output_errors_or_traces() {
    let (capture, _guard) = Capture::install();
    let fake = FakeProvider::start().await;
    fake.require_api_key(Some("another-key".to_owned()));
    let config = ModelConfig::new(Provider::OpenAiCompatible, "m")
        .with_base_url(fake.base_url_openai())
        .with_api_key(ApiKey::new(KEY))
        .with_retry(support::fast_retry(2))
        .with_fallback(
            ModelConfig::new(Provider::Anthropic, "f")
                .with_base_url(fake.base_url_anthropic())
                .with_api_key_env(KEY_VAR),
        );
    let model = config.build_with_env(env).unwrap();
    let mut seen = vec![
        format!("{config:?}"),
        format!("{model:?}"),
        format!("{:?}", model.provider()),
        format!("{:?}", ApiKey::new(KEY)),
        serde_json::to_string(&config).unwrap(),
        format!("{:?}", fake.requests()),
    ];
    // A 401 (the fallback is not tried for it), a 503 that falls back, and a connection error.
    let e = model.chat(&hi()).await.unwrap_err();
    assert!(matches!(e, ModelError::Authentication { .. }), "{e:?}");
    fake.require_api_key(None);
    fake.push(Fault::Status(503));
    fake.push(Fault::Status(503));
    fake.push(Fault::Status(503));
    fake.push(Answer::text("fallback"));
    assert_eq!(model.chat(&hi()).await.unwrap().text(), "fallback");
    let dead = ModelConfig::new(Provider::OpenAiCompatible, "m")
        .with_base_url(support::dead_url())
        .with_api_key(ApiKey::new(KEY))
        .with_retry(support::fast_retry(1))
        .build_with_env(no_env)
        .unwrap();
    let refused = dead.chat(&hi()).await.unwrap_err();
    for error in [&e, &refused] {
        seen.push(format!("{error} {error:?}"));
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            seen.push(format!("{s} {s:?}"));
            source = s.source();
        }
    }
    seen.push(format!("{:?}", fake.requests()));
    seen.push(capture.dump());
    assert!(!capture.spans("model.chat").is_empty(), "traces were captured");
    for text in &seen {
        assert!(!text.contains(KEY), "the key leaked into: {text}");
    }
    // It was sent, though, where it belongs.
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}
