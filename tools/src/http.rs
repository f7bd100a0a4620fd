//! The built-in HTTP request tool; [`HttpRequestTool`] documents it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url, redirect};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Host;

use crate::error::ToolError;
use crate::permission::PermissionSet;
use crate::tool::Tool;

/// An HTTP method the tool may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
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
    /// OPTIONS.
    Options,
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
            HttpMethod::Options => Method::OPTIONS,
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

/// Header values, the body, and the URL's user info, query and fragment are
/// left out: they may hold credentials.
impl fmt::Debug for HttpRequestArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequestArgs")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// `url` without its user info, query and fragment (each replaced by
/// `<redacted>` when present); `<invalid url>` when it does not parse.
fn redact_url(url: &str) -> String {
    let Ok(mut url) = Url::parse(url) else {
        return "<invalid url>".to_owned();
    };
    let had_query = url.query().is_some();
    let had_fragment = url.fragment().is_some();
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("redacted");
        let _ = url.set_password(None);
    }
    url.set_query(had_query.then_some("<redacted>"));
    url.set_fragment(had_fragment.then_some("<redacted>"));
    url.to_string()
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
    /// The URL's port is not allowed (only 80 and 443 unless
    /// [`allow_port`](HttpRequestToolBuilder::allow_port)ed). Permanent.
    #[error("port {port} is not allowed")]
    PortNotAllowed {
        /// The refused port.
        port: u16,
    },
    /// The host is, or resolves only to, addresses that are not public
    /// (loopback, private, link-local, unique local, unspecified, multicast,
    /// reserved...) and not [`allow_address`](HttpRequestToolBuilder::allow_address)ed.
    /// Nothing was sent. Permanent.
    #[error("host {host:?} has no allowed address")]
    AddressNotAllowed {
        /// The refused host.
        host: String,
    },
    /// A header the tool sets itself, or that steers the connection or a
    /// proxy (`Host`, `Content-Length`, `Transfer-Encoding`, `Connection`,
    /// `Proxy-*`, ...), was given. Permanent.
    #[error("header {name:?} may not be set")]
    HeaderNotAllowed {
        /// The header's name.
        name: String,
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
    /// The server answered with a 5xx status. Transient; retried only for
    /// idempotent methods (see [`HttpRequestTool`]).
    #[error("server error {status}")]
    ServerError {
        /// The status code.
        status: u16,
    },
    /// The request failed (connection, TLS, protocol). Transient; retried
    /// for any method when no connection was made, else only for idempotent
    /// methods. The URL is stripped from it.
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    /// The HTTP client could not be built. Permanent.
    #[error("http client could not be built")]
    Client(#[source] reqwest::Error),
}

impl HttpError {
    /// A copy of a refusal made before anything was sent (the tool's own
    /// checks, found again in reqwest's error chain); `None` for the others.
    fn refusal(&self) -> Option<Self> {
        Some(match self {
            Self::HostNotAllowed { host } => Self::HostNotAllowed { host: host.clone() },
            Self::AddressNotAllowed { host } => Self::AddressNotAllowed { host: host.clone() },
            Self::PortNotAllowed { port } => Self::PortNotAllowed { port: *port },
            Self::TooManyRedirects { max } => Self::TooManyRedirects { max: *max },
            Self::InvalidUrl => Self::InvalidUrl,
            _ => return None,
        })
    }
}

/// Where a request may go: hosts by name, ports, and non-public addresses
/// allowed explicitly.
#[derive(Clone, Debug, Default)]
struct Allowlist {
    exact: Vec<String>,
    /// Suffixes with the leading dot: `.example.com`.
    suffixes: Vec<String>,
    /// Ports allowed besides 80 and 443.
    ports: BTreeSet<u16>,
    addresses: AddressPolicy,
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

    /// Checks the scheme, the host, the port and, for a literal IP host,
    /// the address (names are checked when they resolve).
    fn check(&self, url: &Url) -> Result<(), HttpError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidUrl);
        }
        let host = url.host_str().ok_or(HttpError::InvalidUrl)?;
        // IPv6 hosts come bracketed; the allowlist holds them bare.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !self.allows(host) {
            return Err(HttpError::HostNotAllowed { host: host.to_owned() });
        }
        let port = url.port_or_known_default().ok_or(HttpError::InvalidUrl)?;
        if !matches!(port, 80 | 443) && !self.ports.contains(&port) {
            return Err(HttpError::PortNotAllowed { port });
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match literal {
            Some(ip) if !self.addresses.allows(ip) => Err(HttpError::AddressNotAllowed { host: host.to_owned() }),
            _ => Ok(()),
        }
    }
}

/// Which addresses a request may reach: public ones, and the non-public
/// networks allowed explicitly.
#[derive(Clone, Debug, Default)]
struct AddressPolicy {
    /// `(network, prefix length)`, allowed although not public.
    allowed: Vec<(IpAddr, u8)>,
}

impl AddressPolicy {
    fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|&(net, len)| in_network(ip, net, len))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, canonical(net)) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Whether `ip` is a public unicast address: not unspecified, loopback,
/// private, shared (CGNAT), link-local, unique local, multicast, broadcast,
/// documentation, benchmarking, reserved, nor an IPv6 form that embeds or
/// translates to a non-public IPv4 address (6to4, NAT64).
fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match segments {
        // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => false,
        // NAT64 (64:ff9b::/96, 64:ff9b:1::/48): as the IPv4 address it reaches.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)),
        [0x64, 0xff9b, 1, ..] => false,
        // 6to4 (2002::/16): as the IPv4 address it embeds.
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),
        // Documentation (2001:db8::/32), ORCHID and benchmarking in 2001::/23 but for
        // the global unicast parts of it, Teredo (2001::/32, it tunnels anywhere).
        [0x2001, 0x0db8, ..] | [0x2001, 0..=0x01ff, ..] => false,
        [0x3fff, 0..=0x0fff, ..] => false, // documentation (3fff::/20)
        [first, ..] => {
            first & 0xfe00 != 0xfc00 // unique local fc00::/7
                && first & 0xffc0 != 0xfe80 // link-local fe80::/10
                && first & 0xffc0 != 0xfec0 // site-local fec0::/10 (deprecated)
                && first & 0xff00 != 0xff00 // multicast ff00::/8
                && first & 0xe000 == 0x2000 // only 2000::/3 is global unicast
        }
    }
}

/// reqwest's resolver for [`HttpRequestTool`]: the system's, keeping only
/// allowed addresses. The addresses it returns are the ones connected to,
/// so a name cannot be checked against one address and reach another
/// (DNS rebinding).
#[derive(Debug)]
struct GuardedResolver {
    addresses: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.addresses.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|addr| policy.allows(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(HttpError::AddressNotAllowed { host }.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether a model may not set header `name`: the tool sets it itself, or
/// it steers the connection, the framing or a proxy (request smuggling).
fn is_forbidden_header(name: &HeaderName) -> bool {
    let name = name.as_str(); // lowercase
    matches!(
        name,
        "host" | "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "te" | "trailer" | "upgrade"
    ) || name.starts_with("proxy-")
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
    idempotent: BTreeSet<HttpMethod>,
}

impl HttpRequestToolBuilder {
    /// Allows a host: exact (`api.example.com`, `127.0.0.1`) or with its
    /// subdomains (`*.example.com`). Its addresses must still be public, or
    /// allowed with [`allow_address`](Self::allow_address).
    pub fn allow_host(mut self, pattern: &str) -> Self {
        self.allowlist.allow(pattern);
        self
    }

    /// Allows a port besides 80 and 443 (the only ones allowed by default).
    pub fn allow_port(mut self, port: u16) -> Self {
        self.allowlist.ports.insert(port);
        self
    }

    /// Allows a non-public address (`127.0.0.1`, `10.0.0.7`): requests to
    /// loopback, private, link-local, unique local and other non-public
    /// addresses are refused unless allowed, whether the URL names the
    /// address or a host that resolves to it.
    pub fn allow_address(self, ip: IpAddr) -> Self {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        self.allow_network(ip, len)
    }

    /// Allows the non-public network `ip/prefix_len` (`10.0.0.0`, 8); see
    /// [`allow_address`](Self::allow_address).
    pub fn allow_network(mut self, ip: IpAddr, prefix_len: u8) -> Self {
        self.allowlist.addresses.allowed.push((ip, prefix_len));
        self
    }

    /// Declares calls with `method` idempotent, so that they are retried
    /// after a 5xx, a timeout or a broken connection (GET, HEAD and OPTIONS
    /// are; add PUT and DELETE when the service treats them as it should,
    /// or POST when it deduplicates requests).
    pub fn idempotent_method(mut self, method: HttpMethod) -> Self {
        self.idempotent.insert(method);
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
        let resolver = GuardedResolver {
            addresses: self.allowlist.addresses.clone(),
        };
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
        // No proxy: the resolver must see the target's name to check its addresses.
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(policy)
            .dns_resolver(Arc::new(resolver))
            .no_proxy()
            .build()
            .map_err(HttpError::Client)?;
        Ok(HttpRequestTool {
            name: self.name,
            client,
            allowlist,
            max_response_bytes: self.max_response_bytes,
            timeout: self.timeout,
            permissions: self.permissions,
            idempotent: self.idempotent,
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
///   is allowed by default.
/// * **Ports**: 80 and 443, and those allowed with
///   [`allow_port`](HttpRequestToolBuilder::allow_port).
/// * **Public addresses only.** A host that is, or resolves to, a loopback,
///   private, shared, link-local (`169.254.169.254`, cloud metadata),
///   unique local, unspecified, multicast or otherwise non-public address is
///   refused ([`HttpError::AddressNotAllowed`]) unless the address is
///   allowed with [`allow_address`](HttpRequestToolBuilder::allow_address)
///   or [`allow_network`](HttpRequestToolBuilder::allow_network). Names are
///   checked by the resolver, on the addresses actually connected to, so
///   DNS rebinding cannot get around it; no proxy is used.
/// * **Headers** the tool sets itself or that steer the connection, the
///   framing or a proxy (`Host`, `Content-Length`, `Transfer-Encoding`,
///   `Connection`, `Keep-Alive`, `TE`, `Trailer`, `Upgrade`, `Proxy-*`) are
///   refused ([`HttpError::HeaderNotAllowed`]).
/// * **Redirects** are followed at most [`max_redirects`](HttpRequestToolBuilder::max_redirects)
///   times (3 by default; 0 turns them off), and each target is checked
///   against the allowlist, the ports and the addresses again.
/// * **Response size.** The body is streamed and the request stops as soon
///   as it passes the limit (1 MiB by default), with [`HttpError::ResponseTooLarge`].
/// * **Timeout** for the whole request (30 s by default); it is a
///   [`ToolError::Timeout`].
/// * **Permission**: callers must hold `net:http` (change it with
///   [`permissions`](HttpRequestToolBuilder::permissions)).
///
/// Which results are errors: a 5xx is a [`ToolError::Failed`] (counted by
/// the breaker), a 429 is [`ToolError::RateLimited`] with the `Retry-After`
/// seconds; any other status, 4xx included, is a normal result the model
/// reads ([`HttpResponse`]). A refused host, port, address or header, a bad
/// URL or a too-large body is a permanent failure.
///
/// **Side effects are not repeated.** A 5xx, a timeout, or a connection
/// that broke after the request may have been sent is retryable only for
/// idempotent methods: GET, HEAD and OPTIONS, and those declared with
/// [`idempotent_method`](HttpRequestToolBuilder::idempotent_method) (PUT,
/// DELETE where the service honours their semantics). A POST answered 502
/// is sent once. A connection that could not be made is retryable for any
/// method: nothing was sent.
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
    idempotent: BTreeSet<HttpMethod>,
}

impl HttpRequestTool {
    /// A builder with nothing allowed, a 1 MiB limit, a 30 s timeout, 3
    /// redirects, and GET, HEAD and OPTIONS idempotent.
    pub fn builder() -> HttpRequestToolBuilder {
        HttpRequestToolBuilder {
            name: "http_request".to_owned(),
            allowlist: Allowlist::default(),
            max_response_bytes: 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_redirects: 3,
            permissions: PermissionSet::new().with("net:http"),
            idempotent: BTreeSet::from([HttpMethod::Get, HttpMethod::Head, HttpMethod::Options]),
        }
    }

    /// A failure that trying again may fix: retryable when `method` is
    /// idempotent (or nothing was sent), else permanent, so it is not repeated.
    fn transient(&self, method: HttpMethod, nothing_sent: bool, error: HttpError) -> ToolError {
        if nothing_sent || self.idempotent.contains(&method) {
            ToolError::retryable(error)
        } else {
            ToolError::permanent(error)
        }
    }

    fn request_error(&self, method: HttpMethod, err: reqwest::Error) -> ToolError {
        if err.is_timeout() {
            // The retry layer retries it only for idempotent calls.
            return ToolError::Timeout { after: self.timeout };
        }
        // Our own refusals (the redirect policy's, the resolver's), found in the chain.
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            if let Some(refusal) = e.downcast_ref::<HttpError>().and_then(HttpError::refusal) {
                return ToolError::permanent(refusal);
            }
            source = e.source();
        }
        let nothing_sent = err.is_connect();
        self.transient(method, nothing_sent, HttpError::Request(err.without_url()))
    }

    /// Checks `args` and builds the request the tool would send, without
    /// sending it: the URL against the allowlist, the ports and (for a
    /// literal IP) the addresses, and the headers. A host name's addresses
    /// are checked when it is resolved, as the request is sent.
    ///
    /// # Errors
    ///
    /// A permanent [`ToolError::Failed`] whose source is the [`HttpError`]
    /// refusal: [`InvalidUrl`](HttpError::InvalidUrl),
    /// [`HostNotAllowed`](HttpError::HostNotAllowed),
    /// [`PortNotAllowed`](HttpError::PortNotAllowed),
    /// [`AddressNotAllowed`](HttpError::AddressNotAllowed),
    /// [`InvalidHeader`](HttpError::InvalidHeader),
    /// [`HeaderNotAllowed`](HttpError::HeaderNotAllowed).
    pub fn build_request(&self, args: &HttpRequestArgs) -> Result<reqwest::Request, ToolError> {
        let url = Url::parse(&args.url).map_err(|_| ToolError::permanent(HttpError::InvalidUrl))?;
        self.allowlist.check(&url).map_err(ToolError::permanent)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &args.headers {
            let invalid = || ToolError::permanent(HttpError::InvalidHeader { name: name.clone() });
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            if is_forbidden_header(&header) {
                return Err(ToolError::permanent(HttpError::HeaderNotAllowed {
                    name: header.as_str().to_owned(),
                }));
            }
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        // A durable agent's step id: a repeat of this call after a crash carries the same key.
        if let Some(key) = crate::idempotency_key() {
            if !headers.contains_key("idempotency-key") {
                if let Ok(value) = HeaderValue::from_str(&key) {
                    headers.insert(HeaderName::from_static("idempotency-key"), value);
                }
            }
        }
        let mut request = self.client.request(args.method.into(), url).headers(headers);
        if let Some(body) = &args.body {
            request = request.body(body.clone());
        }
        request
            .build()
            .map_err(|e| ToolError::permanent(HttpError::Request(e.without_url())))
    }

    async fn run(&self, args: HttpRequestArgs) -> Result<HttpResponse, ToolError> {
        let method = args.method;
        let request = self.build_request(&args)?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.request_error(method, e))?;
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
            let status = status.as_u16();
            return Err(self.transient(method, false, HttpError::ServerError { status }));
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
        while let Some(chunk) = response.chunk().await.map_err(|e| self.request_error(method, e))? {
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

    /// Whether the call's method is idempotent (GET, HEAD, OPTIONS, and those
    /// declared with [`idempotent_method`](HttpRequestToolBuilder::idempotent_method)).
    fn idempotent(&self, args: &HttpRequestArgs) -> bool {
        self.idempotent.contains(&args.method)
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
        assert!(list.check(&url("https://api.example.com/x")).is_ok());
        assert!(matches!(
            list.check(&url("https://api.example.com:8443/x")),
            Err(HttpError::PortNotAllowed { port: 8443 })
        ));
        list.ports.insert(8443);
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

    #[test]
    fn only_public_addresses_pass_unless_allowed() {
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
        ];
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::",
        ];
        let policy = AddressPolicy::default();
        for ip in refused {
            assert!(!policy.allows(ip.parse().unwrap()), "{ip} passed");
        }
        for ip in public {
            assert!(policy.allows(ip.parse().unwrap()), "{ip} refused");
        }
        let mut policy = AddressPolicy::default();
        policy.allowed.push(("10.0.0.0".parse().unwrap(), 8));
        policy.allowed.push(("127.0.0.1".parse().unwrap(), 32));
        assert!(policy.allows("10.200.3.4".parse().unwrap()));
        assert!(policy.allows("127.0.0.1".parse().unwrap()));
        assert!(policy.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.allows("127.0.0.2".parse().unwrap()));
        assert!(policy.allows("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn literal_ip_hosts_are_checked_as_addresses() {
        let mut list = Allowlist::default();
        list.allow("169.254.169.254");
        list.allow("::1");
        list.allow("1.1.1.1");
        let url = |s: &str| Url::parse(s).unwrap();
        for refused in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://0xa9fea9fe/",
        ] {
            assert!(
                matches!(
                    list.check(&url(refused)),
                    Err(HttpError::AddressNotAllowed { .. }) | Err(HttpError::HostNotAllowed { .. })
                ),
                "{refused}"
            );
        }
        assert!(matches!(
            list.check(&url("http://169.254.169.254/")),
            Err(HttpError::AddressNotAllowed { .. })
        ));
        assert!(list.check(&url("https://1.1.1.1/")).is_ok());
    }

    #[test]
    fn forbidden_headers() {
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "CONNECTION",
            "Proxy-Authorization",
            "upgrade",
        ] {
            assert!(
                is_forbidden_header(&HeaderName::from_bytes(name.as_bytes()).unwrap()),
                "{name}"
            );
        }
        for name in ["authorization", "accept", "content-type", "x-proxy-id"] {
            assert!(
                !is_forbidden_header(&HeaderName::from_bytes(name.as_bytes()).unwrap()),
                "{name}"
            );
        }
    }

    #[test]
    fn debug_leaves_out_credentials_in_the_url() {
        let args = HttpRequestArgs {
            method: HttpMethod::Get,
            url: "https://user:hunter2@api.example.com/v1?key=sk-123#frag".into(),
            headers: BTreeMap::from([("authorization".into(), "Bearer sk-456".into())]),
            body: Some("sk-789".into()),
        };
        let debug = format!("{args:?}");
        for secret in ["hunter2", "sk-123", "sk-456", "sk-789", "user:"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("api.example.com/v1"), "{debug}");
    }
}
