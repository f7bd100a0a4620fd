//! The built-in HTTP request tool; [`HttpRequestTool`] documents it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url, redirect};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ToolError;
use crate::permission::PermissionSet;
use crate::tool::Tool;

/// An HTTP method the tool may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET (the default).
    #[default]
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
}

impl From<HttpMethod> for Method {
    fn from(m: HttpMethod) -> Self {
        match m {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
            HttpMethod::Head => Method::HEAD,
        }
    }
}

/// The arguments of [`HttpRequestTool`], as the model gives them.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestArgs {
    /// The HTTP method; GET when left out.
    #[serde(default)]
    pub method: HttpMethod,
    /// The absolute http or https URL to request.
    pub url: String,
    /// Request headers, name to value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body, as text.
    #[serde(default)]
    pub body: Option<String>,
}

/// Header values are left out: they may hold credentials.
impl fmt::Debug for HttpRequestArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequestArgs")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// What the model gets back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body, as text (invalid UTF-8 replaced).
    pub body: String,
}

/// Why [`HttpRequestTool`] refused or failed a request (the source of
/// [`ToolError::Failed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL's host is not allowlisted (also for a redirect target). Permanent.
    #[error("host {host:?} is not allowed")]
    HostNotAllowed {
        /// The refused host.
        host: String,
    },
    /// The URL could not be parsed, has no host, or is not http(s). Permanent.
    #[error("invalid url")]
    InvalidUrl,
    /// A header name or value is not valid HTTP. Permanent.
    #[error("invalid header {name:?}")]
    InvalidHeader {
        /// The header's name (its value is never shown).
        name: String,
    },
    /// More redirects than allowed. Permanent.
    #[error("more than {max} redirects")]
    TooManyRedirects {
        /// The limit.
        max: usize,
    },
    /// The response body passed the size limit; the request was stopped. Permanent.
    #[error("response is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The server answered with a 5xx status. Transient.
    #[error("server error {status}")]
    ServerError {
        /// The status code.
        status: u16,
    },
    /// The request failed (connection, TLS, protocol). Transient. The URL is
    /// stripped from it.
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    /// The HTTP client could not be built. Permanent.
    #[error("http client could not be built")]
    Client(#[source] reqwest::Error),
}

/// Hosts a request may go to.
#[derive(Clone, Debug, Default)]
struct Allowlist {
    exact: Vec<String>,
    /// Suffixes with the leading dot: `.example.com`.
    suffixes: Vec<String>,
}

impl Allowlist {
    fn allow(&mut self, pattern: &str) {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(rest) => self.suffixes.push(format!(".{rest}")),
            None => self.exact.push(pattern),
        }
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        self.exact.iter().any(|h| h == host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }

    fn check(&self, url: &Url) -> Result<(), HttpError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidUrl);
        }
        let host = url.host_str().ok_or(HttpError::InvalidUrl)?;
        // IPv6 hosts come bracketed; the allowlist holds them bare.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.allows(host) {
            Ok(())
        } else {
            Err(HttpError::HostNotAllowed { host: host.to_owned() })
        }
    }
}

/// Builds an [`HttpRequestTool`].
#[derive(Debug)]
pub struct HttpRequestToolBuilder {
    name: String,
    allowlist: Allowlist,
    max_response_bytes: usize,
    timeout: Duration,
    max_redirects: usize,
    permissions: PermissionSet,
}

impl HttpRequestToolBuilder {
    /// Allows a host: exact (`api.example.com`, `127.0.0.1`) or with its
    /// subdomains (`*.example.com`).
    pub fn allow_host(mut self, pattern: &str) -> Self {
        self.allowlist.allow(pattern);
        self
    }

    /// The largest response body, in bytes (1 MiB by default).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The timeout of the whole request (30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many redirects to follow (3 by default; 0 to follow none).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// The tool's name (`http_request` by default).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The permissions callers must hold (`net:http` by default).
    pub fn permissions(mut self, permissions: PermissionSet) -> Self {
        self.permissions = permissions;
        self
    }

    /// The tool.
    ///
    /// # Errors
    ///
    /// [`HttpError::Client`] if reqwest cannot build its client.
    pub fn build(self) -> Result<HttpRequestTool, HttpError> {
        let allowlist = Arc::new(self.allowlist);
        let max = self.max_redirects;
        let policy = if max == 0 {
            redirect::Policy::none()
        } else {
            let allowlist = allowlist.clone();
            redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    return attempt.error(HttpError::TooManyRedirects { max });
                }
                match allowlist.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        };
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(policy)
            .build()
            .map_err(HttpError::Client)?;
        Ok(HttpRequestTool {
            name: self.name,
            client,
            allowlist,
            max_response_bytes: self.max_response_bytes,
            timeout: self.timeout,
            permissions: self.permissions,
        })
    }
}

/// Makes an HTTP request for the model
///
/// [`HttpRequestTool`]: the built-in tool that makes an HTTP request, limited
/// to allowlisted hosts, a response size and a timeout.
///
/// * **Host allowlist.** Only URLs whose host is allowlisted are requested:
///   an exact host (`api.example.com`, `127.0.0.1`) or every subdomain of one
///   (`*.example.com`, which does not match `example.com` itself). Nothing
///   is allowed by default. Ports are not checked.
/// * **Redirects** are followed at most [`max_redirects`](HttpRequestToolBuilder::max_redirects)
///   times (3 by default; 0 turns them off), and each target is checked
///   against the allowlist again.
/// * **Response size.** The body is streamed and the request stops as soon
///   as it passes the limit (1 MiB by default), with [`HttpError::ResponseTooLarge`].
/// * **Timeout** for the whole request (30 s by default); it is a
///   [`ToolError::Timeout`].
/// * **Permission**: callers must hold `net:http` (change it with
///   [`permissions`](HttpRequestToolBuilder::permissions)).
///
/// Which results are errors: a 5xx is a retryable [`ToolError::Failed`]
/// (so the breaker counts it and the retry layer retries it), a 429 is
/// [`ToolError::RateLimited`] with the `Retry-After` seconds; any other
/// status, 4xx included, is a normal result the model reads
/// ([`HttpResponse`]). A refused host, a bad URL or a too-large body is a
/// permanent failure. Connection errors are retryable.
///
/// ```
/// use std::time::Duration;
/// use warden_tools::{HttpRequestTool, Tool};
///
/// let http = HttpRequestTool::builder()
///     .allow_host("api.github.com")
///     .allow_host("*.wikipedia.org")
///     .max_response_bytes(256 * 1024)
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(http.name(), "http_request");
/// # Ok::<(), warden_tools::HttpError>(())
/// ```
#[derive(Clone, Debug)]
pub struct HttpRequestTool {
    name: String,
    client: reqwest::Client,
    allowlist: Arc<Allowlist>,
    max_response_bytes: usize,
    timeout: Duration,
    permissions: PermissionSet,
}

impl HttpRequestTool {
    /// A builder with nothing allowed, a 1 MiB limit, a 30 s timeout and 3 redirects.
    pub fn builder() -> HttpRequestToolBuilder {
        HttpRequestToolBuilder {
            name: "http_request".to_owned(),
            allowlist: Allowlist::default(),
            max_response_bytes: 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_redirects: 3,
            permissions: PermissionSet::new().with("net:http"),
        }
    }

    fn request_error(&self, err: reqwest::Error) -> ToolError {
        if err.is_timeout() {
            return ToolError::Timeout { after: self.timeout };
        }
        if err.is_redirect() {
            // Our redirect policy's own refusal.
            let mut source = std::error::Error::source(&err);
            while let Some(e) = source {
                if let Some(http) = e.downcast_ref::<HttpError>() {
                    let refusal = match http {
                        HttpError::HostNotAllowed { host } => HttpError::HostNotAllowed { host: host.clone() },
                        HttpError::TooManyRedirects { max } => HttpError::TooManyRedirects { max: *max },
                        _ => break,
                    };
                    return ToolError::permanent(refusal);
                }
                source = e.source();
            }
        }
        ToolError::retryable(HttpError::Request(err.without_url()))
    }

    async fn run(&self, args: HttpRequestArgs) -> Result<HttpResponse, ToolError> {
        let url = Url::parse(&args.url).map_err(|_| ToolError::permanent(HttpError::InvalidUrl))?;
        self.allowlist.check(&url).map_err(ToolError::permanent)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &args.headers {
            let invalid = || ToolError::permanent(HttpError::InvalidHeader { name: name.clone() });
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let mut request = self.client.request(args.method.into(), url).headers(headers);
        if let Some(body) = args.body {
            request = request.body(body);
        }
        let mut response = request.send().await.map_err(|e| self.request_error(e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(ToolError::RateLimited { retry_after });
        }
        if status.is_server_error() {
            return Err(ToolError::retryable(HttpError::ServerError {
                status: status.as_u16(),
            }));
        }
        let limit = self.max_response_bytes;
        let too_large = || ToolError::permanent(HttpError::ResponseTooLarge { limit });
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_error(e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status: status.as_u16(),
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

impl Tool for HttpRequestTool {
    type Args = HttpRequestArgs;
    type Output = HttpResponse;

    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "Makes an HTTP request to an allowed host and returns the status, content type and body as text."
    }

    fn permissions(&self) -> PermissionSet {
        self.permissions.clone()
    }

    async fn call(&self, args: HttpRequestArgs) -> Result<HttpResponse, ToolError> {
        self.run(args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matches_exact_hosts_and_subdomains() {
        let mut list = Allowlist::default();
        list.allow("api.example.com");
        list.allow("*.wiki.org");
        assert!(list.allows("api.example.com"));
        assert!(list.allows("API.example.com."));
        assert!(!list.allows("example.com"));
        assert!(!list.allows("evilapi.example.com"));
        assert!(list.allows("en.wiki.org"));
        assert!(list.allows("a.b.wiki.org"));
        assert!(!list.allows("wiki.org"));
        assert!(!list.allows("evilwiki.org"));
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(list.check(&url("https://api.example.com:8443/x")).is_ok());
        assert!(matches!(
            list.check(&url("ftp://api.example.com/")),
            Err(HttpError::InvalidUrl)
        ));
        assert!(matches!(
            list.check(&url("http://127.0.0.1/")),
            Err(HttpError::HostNotAllowed { .. })
        ));
    }
}
