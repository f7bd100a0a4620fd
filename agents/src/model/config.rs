//! [`ModelConfig`]: a model from a TOML or YAML file or from environment variables.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Model;
use super::RetryPolicy;
use super::anthropic::AnthropicMessages;
use super::error::{ConfigError, ModelError};
use super::openai::OpenAiChat;
use super::provider::{ChatModel, HttpSettings, check_base_url, redacted_url};
use super::types::StructuredOutput;
use warden_resilience::{ConcurrencyLimiter, RateLimit, RateLimiter};

/// An API key. `Debug` prints `ApiKey(<redacted>)`, and there is no `Display`, so a key does not
/// end up in logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Arc::from(key.into()))
    }

    /// The key itself, for sending it (and only for that).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Which provider (and so which wire format and defaults) a [`ModelConfig`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI. Base URL `https://api.openai.com/v1`, key in `OPENAI_API_KEY`.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic. Base URL `https://api.anthropic.com`, key in `ANTHROPIC_API_KEY`.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// DeepSeek (OpenAI format). Base URL `https://api.deepseek.com/v1`, key in `DEEPSEEK_API_KEY`.
    #[serde(rename = "deepseek")]
    DeepSeek,
    /// Qwen through DashScope's OpenAI-compatible mode. Base URL
    /// `https://dashscope-intl.aliyuncs.com/compatible-mode/v1`, key in `DASHSCOPE_API_KEY`.
    #[serde(rename = "qwen", alias = "dashscope")]
    Qwen,
    /// Ollama's OpenAI-compatible endpoint. Base URL `http://localhost:11434/v1`, no key.
    #[serde(rename = "ollama")]
    Ollama,
    /// Any other OpenAI-compatible server (vLLM, LM Studio, llama.cpp, a gateway): `base_url`
    /// is required, a key only if `api_key_env` is set.
    #[serde(
        rename = "openai-compatible",
        alias = "openai_compatible",
        alias = "vllm",
        alias = "lmstudio"
    )]
    OpenAiCompatible,
}

impl Provider {
    /// The default base URL, if the provider has one.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::DeepSeek => Some("https://api.deepseek.com/v1"),
            Self::Qwen => Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
            Self::Ollama => Some("http://localhost:11434/v1"),
            Self::OpenAiCompatible => None,
        }
    }

    /// The variable that holds the key by default; `None` for providers that need no key.
    pub fn default_api_key_env(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("OPENAI_API_KEY"),
            Self::Anthropic => Some("ANTHROPIC_API_KEY"),
            Self::DeepSeek => Some("DEEPSEEK_API_KEY"),
            Self::Qwen => Some("DASHSCOPE_API_KEY"),
            Self::Ollama | Self::OpenAiCompatible => None,
        }
    }

    /// Whether the provider speaks the Anthropic Messages format (else OpenAI chat completions).
    pub fn is_anthropic_format(self) -> bool {
        matches!(self, Self::Anthropic)
    }
}

impl FromStr for Provider {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Self::OpenAi,
            "anthropic" => Self::Anthropic,
            "deepseek" => Self::DeepSeek,
            "qwen" | "dashscope" => Self::Qwen,
            "ollama" => Self::Ollama,
            "openai-compatible" | "openai_compatible" | "vllm" | "lmstudio" => Self::OpenAiCompatible,
            _ => return Err(ConfigError::UnknownProvider(s.to_owned())),
        })
    }
}

/// How to reach one model: provider, model name, endpoint, key variable, timeouts, sampling
/// defaults, retry policy and an optional fallback. Loaded with [`from_file`](Self::from_file)
/// (TOML or YAML), [`from_env`](Self::from_env) or built in code,
/// and turned into a [`Model`] with [`build`](Self::build).
/// `Debug` never shows a key (a config holds one only if [`with_api_key`](Self::with_api_key)
/// was used; files and the environment name the variable instead).
///
/// ```
/// use warden_agents::model::{ModelConfig, Provider};
/// let config = ModelConfig::from_toml_str(r#"
///     provider = "ollama"
///     model = "qwen2.5:7b"
/// "#)?;
/// assert_eq!(config.provider, Provider::Ollama);
/// let model = config.build()?; // Ollama needs no key
/// assert_eq!(model.name(), "qwen2.5:7b");
/// # Ok::<(), warden_agents::model::ModelError>(())
/// ```
///
/// A config names the provider, the model and the *name* of the variable that holds the key,
/// never the key itself, so config files can be committed. Swapping providers is a change of
/// the `provider` line (and the model name):
///
/// ```toml
/// provider = "deepseek"          # openai | anthropic | deepseek | qwen | ollama | openai-compatible
/// model = "deepseek-chat"
/// # base_url = "https://api.deepseek.com/v1"   # default per provider
/// # api_key_env = "DEEPSEEK_API_KEY"           # default per provider
/// temperature = 0.2
/// max_tokens = 2048
/// timeout_secs = 120
/// # stream_timeout_secs = 900                 # a whole stream, at most
/// # allow_plain_http = false                  # http:// only to the loopback unless true
///
/// # call_timeout_secs = 600                   # a whole call, retries and fallback included
/// # requests_per_minute = 570                 # client-side limits, shared by the model's clones
/// # tokens_per_minute = 95000
/// # max_concurrent_requests = 16
///
/// [retry]                                     # the one RetryPolicy of tools and models
/// max_attempts = 4
/// initial_backoff_ms = 500
/// # max_backoff_ms = 8000
/// # max_elapsed_ms = 120000
///
/// [fallback]
/// provider = "openai"
/// model = "gpt-4o-mini"
/// ```
///
/// Unknown settings are errors, not ignored: a misspelt `base_url` would otherwise send the
/// key to the provider's default endpoint.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The provider.
    pub provider: Provider,
    /// The model name, as the provider spells it.
    pub model: String,
    /// The endpoint (default: the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The name of the environment variable holding the key (default: the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Temperature for requests that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Token limit for requests that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Seconds until a whole answer (or a stream's headers) must arrive (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Seconds a stream may go without an event carrying data (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a whole stream may take, from its request to its end (default 900).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_timeout_secs: Option<u64>,
    /// The largest whole answer body, in bytes (default 16 MiB); see [`HttpSettings`] for the
    /// other limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Allows a `base_url` over plain `http://` to a host other than the loopback (default
    /// false: such a URL is a [`ConfigError::PlainHttp`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain_http: bool,
    /// How structured answers are asked for: `"auto"` (the default: `json_schema`, falling
    /// back to `json_object` and then to the prompt when a server refuses), or always one of
    /// `"json_schema"`, `"json_object"`, `"prompt"`.
    #[serde(default, skip_serializing_if = "is_auto")]
    pub structured_output: StructuredOutput,
    /// Seconds a whole call may take, retries and fallback included (default 600, see
    /// [`Model::with_call_timeout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout_secs: Option<u64>,
    /// Requests per minute the model may send, held on the client side by a limiter shared by
    /// every clone of the built model (set it a little under the provider's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute (the prompt's estimate plus `max_tokens`), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
    /// Requests in flight at once, likewise; more wait in a queue of the same size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<usize>,
    /// Seconds a call may wait for the limits above before it fails with
    /// [`ModelError::Throttled`] (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_wait_secs: Option<u64>,
    /// What the model costs per million tokens, for a [`Budget`](super::Budget)
    /// (`[price]` with `input_per_million` and `output_per_million`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<super::Price>,
    /// When to retry.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// A model to try when this one fails with a transient error after its retries, or with
    /// an exhausted quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Box<ModelConfig>>,
    #[serde(skip)]
    api_key: Option<ApiKey>,
}

impl fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url.as_deref().map(redacted_url))
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("timeout_secs", &self.timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("stream_timeout_secs", &self.stream_timeout_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("structured_output", &self.structured_output)
            .field("call_timeout_secs", &self.call_timeout_secs)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("rate_limit_wait_secs", &self.rate_limit_wait_secs)
            .field("price", &self.price)
            .field("retry", &self.retry)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl ModelConfig {
    /// A config for `model` at `provider`, everything else default.
    pub fn new(provider: Provider, model: impl Into<String>) -> Self {
        Self {
            provider,
            model: model.into(),
            base_url: None,
            api_key_env: None,
            temperature: None,
            max_tokens: None,
            timeout_secs: None,
            idle_timeout_secs: None,
            stream_timeout_secs: None,
            max_body_bytes: None,
            allow_plain_http: false,
            structured_output: StructuredOutput::Auto,
            call_timeout_secs: None,
            requests_per_minute: None,
            tokens_per_minute: None,
            max_concurrent_requests: None,
            rate_limit_wait_secs: None,
            price: None,
            retry: RetryPolicy::default(),
            fallback: None,
            api_key: None,
        }
    }

    /// The same config with this endpoint.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The same config with the key in this variable.
    pub fn with_api_key_env(mut self, var: impl Into<String>) -> Self {
        self.api_key_env = Some(var.into());
        self
    }

    /// The same config with this key (not serialised; takes precedence over `api_key_env`).
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The same config allowing (or not) a plain `http://` base URL to a non-loopback host.
    pub fn with_allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// The same config with this retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same config with this fallback.
    pub fn with_fallback(mut self, fallback: ModelConfig) -> Self {
        self.fallback = Some(Box::new(fallback));
        self
    }

    /// Parses a TOML config.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Toml`] if it does not parse or lacks `provider`/`model`.
    pub fn from_toml_str(text: &str) -> Result<Self, ModelError> {
        Ok(toml::from_str(text).map_err(ConfigError::from)?)
    }

    /// Parses a YAML config.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Yaml`] if it does not parse or lacks `provider`/`model`.
    pub fn from_yaml_str(text: &str) -> Result<Self, ModelError> {
        Ok(serde_yaml_ng::from_str(text).map_err(ConfigError::from)?)
    }

    /// Reads a config file: `.toml`, or `.yaml`/`.yml`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`], [`ConfigError::UnknownFormat`], or a parse error.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let read = || std::fs::read_to_string(path).map_err(ConfigError::from);
        match ext.as_deref() {
            Some("toml") => Self::from_toml_str(&read()?),
            Some("yaml" | "yml") => Self::from_yaml_str(&read()?),
            _ => Err(ConfigError::UnknownFormat.into()),
        }
    }

    /// Reads the config from the process environment; see [`from_env_with`](Self::from_env_with).
    ///
    /// # Errors
    ///
    /// As [`from_env_with`](Self::from_env_with).
    pub fn from_env() -> Result<Self, ModelError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Reads the config from variables looked up with `var`:
    ///
    /// - `WARDEN_MODEL_PROVIDER` (see [`Provider`]), `WARDEN_MODEL`, and optionally
    ///   `WARDEN_MODEL_BASE_URL` and `WARDEN_MODEL_API_KEY_ENV` (the *name* of the key variable);
    /// - else, the OpenAI convention: when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set, provider
    ///   `openai` (or `openai-compatible` if only a base URL is set), `OPENAI_BASE_URL`, and the
    ///   model from `WARDEN_MODEL` or `OPENAI_MODEL`.
    ///
    /// ```
    /// use warden_agents::model::{ModelConfig, Provider};
    ///
    /// let env = |name: &str| match name {
    ///     "WARDEN_MODEL_PROVIDER" => Some("anthropic".to_owned()),
    ///     "WARDEN_MODEL" => Some("claude-haiku-4-5".to_owned()),
    ///     "WARDEN_MODEL_API_KEY_ENV" => Some("MY_TEAM_KEY".to_owned()),
    ///     _ => None,
    /// };
    /// let config = ModelConfig::from_env_with(env)?;
    /// assert_eq!(config.provider, Provider::Anthropic);
    /// assert_eq!(config.api_key_env.as_deref(), Some("MY_TEAM_KEY"));
    /// # Ok::<(), warden_agents::model::ModelError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProvider`], or [`ConfigError::Missing`] when no provider or model is set.
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<Self, ModelError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(provider) = get("WARDEN_MODEL_PROVIDER") {
            let provider: Provider = provider.parse()?;
            let model = get("WARDEN_MODEL").ok_or(ConfigError::Missing("WARDEN_MODEL"))?;
            let mut config = Self::new(provider, model);
            config.base_url = get("WARDEN_MODEL_BASE_URL");
            config.api_key_env = get("WARDEN_MODEL_API_KEY_ENV");
            return Ok(config);
        }
        let key = get("OPENAI_API_KEY");
        let base_url = get("OPENAI_BASE_URL");
        if key.is_none() && base_url.is_none() {
            return Err(ConfigError::Missing("WARDEN_MODEL_PROVIDER").into());
        }
        let model = get("WARDEN_MODEL")
            .or_else(|| get("OPENAI_MODEL"))
            .ok_or(ConfigError::Missing("OPENAI_MODEL"))?;
        let provider = if key.is_some() {
            Provider::OpenAi
        } else {
            Provider::OpenAiCompatible
        };
        let mut config = Self::new(provider, model);
        config.base_url = base_url;
        if key.is_some() {
            config.api_key_env = Some("OPENAI_API_KEY".to_owned());
        }
        Ok(config)
    }

    /// Builds the model, reading the key from the process environment.
    ///
    /// # Errors
    ///
    /// As [`build_with_env`](Self::build_with_env).
    pub fn build(&self) -> Result<Model, ModelError> {
        self.build_with_env(|name| std::env::var(name).ok())
    }

    /// Builds the model (and its fallback), reading the key variable with `var`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingApiKey`] when the key variable is unset or empty (for a provider
    /// that needs a key, or when `api_key_env` was given), [`ConfigError::Missing`] for an
    /// `openai-compatible` provider without `base_url`, [`ConfigError::InvalidBaseUrl`], and
    /// [`ConfigError::PlainHttp`] for a plain `http://` base URL to a host other than the
    /// loopback without `allow_plain_http`.
    pub fn build_with_env(&self, var: impl Fn(&str) -> Option<String> + Copy) -> Result<Model, ModelError> {
        let provider = self.provider_with_env(var)?;
        let mut model = Model::from_arc(provider)
            .with_retry(self.retry)
            .with_structured_output(self.structured_output);
        if let Some(secs) = self.call_timeout_secs {
            model = model.with_call_timeout(Duration::from_secs(secs));
        }
        if let Some(price) = self.price {
            model = model.with_price(price);
        }
        let wait = Duration::from_secs(self.rate_limit_wait_secs.unwrap_or(120));
        let minute = Duration::from_secs(60);
        if let Some(rpm) = self.requests_per_minute {
            model = model.with_rate_limit(RateLimiter::new(RateLimit::new(rpm, minute)), wait);
        }
        if let Some(tpm) = self.tokens_per_minute {
            model = model.with_token_rate_limit(RateLimiter::new(RateLimit::new(tpm, minute)), wait);
        }
        if let Some(n) = self.max_concurrent_requests {
            model = model.with_concurrency_limit(ConcurrencyLimiter::new(n, n));
        }
        if let Some(fallback) = &self.fallback {
            model = model.with_fallback(fallback.build_with_env(var)?);
        }
        Ok(model)
    }

    /// The provider client alone, without retries or fallback.
    ///
    /// # Errors
    ///
    /// As [`build_with_env`](Self::build_with_env).
    pub fn provider_with_env(&self, var: impl Fn(&str) -> Option<String>) -> Result<Arc<dyn ChatModel>, ModelError> {
        let base_url = self
            .base_url
            .clone()
            .or_else(|| self.provider.default_base_url().map(str::to_owned))
            .ok_or(ConfigError::Missing("base_url"))?;
        check_base_url(&base_url, self.allow_plain_http)?;
        if self.model.trim().is_empty() {
            return Err(ConfigError::Missing("model").into());
        }
        // A variable set to nothing (or blanks) holds no key.
        let read_key = |name: &str| {
            var(name)
                .filter(|key| !key.trim().is_empty())
                .map(ApiKey::new)
                .ok_or_else(|| ConfigError::MissingApiKey(name.to_owned()))
        };
        let key = match (&self.api_key, &self.api_key_env) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(name)) => Some(read_key(name)?),
            (None, None) => self.provider.default_api_key_env().map(read_key).transpose()?,
        };
        let mut settings = HttpSettings::new(base_url, self.model.clone())
            .with_api_key(key)
            .with_temperature(self.temperature)
            .with_max_tokens(self.max_tokens)
            .allow_plain_http(self.allow_plain_http);
        if let Some(secs) = self.timeout_secs {
            settings = settings.with_request_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = self.idle_timeout_secs {
            settings = settings.with_idle_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = self.stream_timeout_secs {
            settings = settings.with_stream_timeout(Duration::from_secs(secs));
        }
        if let Some(bytes) = self.max_body_bytes {
            settings = settings.with_max_body_bytes(bytes);
        }
        Ok(if self.provider.is_anthropic_format() {
            Arc::new(AnthropicMessages::new("", "").with_settings(settings))
        } else {
            Arc::new(OpenAiChat::new("", "").with_settings(settings))
        })
    }
}

fn is_auto(setting: &StructuredOutput) -> bool {
    *setting == StructuredOutput::Auto
}
