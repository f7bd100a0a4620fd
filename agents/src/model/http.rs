//! What both HTTP providers share: error classification, `Retry-After` parsing, and an SSE reader.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::error::{Deadline, ModelError, ResponsePart};
use super::stream::StreamEvent;
use super::types::RateLimitStatus;

/// Turns a transport error into a model error (without the URL, which may hold secrets).
pub(crate) fn transport_error(e: reqwest::Error) -> ModelError {
    if e.is_timeout() {
        ModelError::Timeout
    } else {
        ModelError::Connection(e.without_url())
    }
}

/// How long the response asks us to wait: `retry-after-ms`, else `retry-after` in seconds or
/// as an HTTP date (relative to `now`; a date in the past means no wait). A wait too long for a
/// [`Duration`] is [`Duration::MAX`] (which no policy honours), never a panic; a negative, `NaN`
/// or unreadable value is ignored.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(wait) = header("retry-after-ms").and_then(|v| seconds(v, 1000.0)) {
        return Some(wait);
    }
    let value = header("retry-after")?;
    if value.parse::<f64>().is_ok() {
        return seconds(value, 1.0);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `value / per_second` seconds, saturating at [`Duration::MAX`]; `None` unless it is a
/// finite, non-negative number.
fn seconds(value: &str, per_second: f64) -> Option<Duration> {
    let secs = value.parse::<f64>().ok()? / per_second;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The `x-should-retry` header: `Some(true)`/`Some(false)` if sent.
pub(crate) fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

const MAX_MESSAGE: usize = 500;

/// A provider's message as kept in an error: words that look like a key (`sk-...`, or a long
/// run of key characters, as a 401 may echo a masked key) removed, whitespace collapsed, and
/// truncated to [`MAX_MESSAGE`] bytes.
fn explain(message: &str) -> String {
    let words: Vec<&str> = message
        .split_whitespace()
        .map(|w| if looks_like_a_key(w) { "[redacted]" } else { w })
        .collect();
    truncate(words.join(" "))
}

fn looks_like_a_key(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '*');
    let keyish = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.');
    ["sk-", "sk_", "sk-ant-", "key-", "Bearer"]
        .iter()
        .any(|p| core.starts_with(p) && core.len() > p.len() + 3)
        || (core.len() >= 32 && core.chars().all(keyish) && core.chars().any(|c| c.is_ascii_digit()))
}

/// What an error body says: its JSON error message, else the body as text.
fn message_of(json: &Value, message: String, body: &[u8]) -> String {
    if !message.is_empty() || !json.is_null() {
        return explain(&message);
    }
    explain(&String::from_utf8_lossy(&body[..body.len().min(4 * MAX_MESSAGE)]))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The `(type or code, message)` of an OpenAI (`{"error": {...}}`) or Anthropic
/// (`{"type": "error", "error": {...}}`) error body.
pub(crate) fn error_fields(body: &Value) -> (Vec<String>, String) {
    let error = body.get("error").unwrap_or(body);
    let mut kinds = Vec::new();
    for key in ["type", "code"] {
        if let Some(k) = error.get(key).and_then(Value::as_str) {
            kinds.push(k.to_owned());
        }
    }
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (kinds, message)
}

/// What Anthropic says (as a 400, or a 429 `rate_limit_error`) when a spend limit, not a
/// rate, is the problem: retrying does not help until someone pays.
const SPEND_LIMIT_MESSAGES: [&str; 4] = [
    "credit balance is too low",
    "reached your specified api usage limits",
    "extra usage is required",
    "usage credits are required",
];

fn is_quota(kinds: &[String], message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    kinds
        .iter()
        .any(|k| k == "insufficient_quota" || k == "billing_hard_limit_reached")
        || SPEND_LIMIT_MESSAGES.iter().any(|m| message.contains(m))
}

/// Classifies an error response by status, headers and body.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> ModelError {
    if (300..400).contains(&status) {
        return ModelError::Redirected { status };
    }
    let retry_after = retry_after(headers, SystemTime::now());
    let should_retry = should_retry(headers);
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (kinds, message) = error_fields(&json);
    let quota = is_quota(&kinds, &message);
    let message = message_of(&json, message, body);
    let overloaded = kinds.iter().any(|k| k == "overloaded_error");
    match status {
        401 | 403 => ModelError::Authentication {
            status,
            message,
            should_retry,
        },
        402 => ModelError::QuotaExceeded,
        429 if quota => ModelError::QuotaExceeded,
        429 => ModelError::RateLimited {
            message,
            retry_after,
            should_retry,
        },
        529 => ModelError::Overloaded {
            message,
            retry_after,
            should_retry,
        },
        s if s >= 500 && overloaded => ModelError::Overloaded {
            message,
            retry_after,
            should_retry,
        },
        408 | 409 => ModelError::Server {
            status,
            message,
            retry_after,
            should_retry,
        },
        s if s >= 500 => ModelError::Server {
            status,
            message,
            retry_after,
            should_retry,
        },
        _ if quota => ModelError::QuotaExceeded,
        _ => ModelError::BadRequest {
            status,
            message,
            should_retry,
        },
    }
}

/// Classifies an error object sent inside a stream (Anthropic `event: error`, OpenAI `data: {"error": ...}`).
pub(crate) fn classify_stream_error(body: &Value) -> ModelError {
    let (kinds, message) = error_fields(body);
    let has = |k: &str| kinds.iter().any(|x| x == k);
    if is_quota(&kinds, &message) {
        return ModelError::QuotaExceeded;
    }
    let message = explain(&message);
    if has("overloaded_error") {
        ModelError::Overloaded {
            message,
            retry_after: None,
            should_retry: None,
        }
    } else if has("rate_limit_error") || has("rate_limit_exceeded") {
        ModelError::RateLimited {
            message,
            retry_after: None,
            should_retry: None,
        }
    } else if has("api_error") || has("server_error") {
        ModelError::Server {
            status: 500,
            message,
            retry_after: None,
            should_retry: None,
        }
    } else {
        ModelError::BadRequest {
            status: 400,
            message,
            should_retry: None,
        }
    }
}

/// The longest reset a rate-limit header is believed for.
const MAX_RESET: Duration = Duration::from_secs(15 * 60);

/// What the provider's rate-limit headers say, if it sent any (see [`RateLimitStatus`]).
pub(crate) fn rate_limits(headers: &HeaderMap, now: SystemTime) -> Option<RateLimitStatus> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let count = |name: &str| {
        let value = text(name)?;
        let parsed = value.parse::<u64>().ok();
        if parsed.is_none() {
            tracing::debug!(header = name, value, "ignoring a rate-limit header that is not a count");
        }
        parsed
    };
    let reset = |name: &str, parse: &dyn Fn(&str) -> Option<Duration>| {
        let value = text(name)?;
        let parsed = parse(value).filter(|d| *d <= MAX_RESET);
        if parsed.is_none() {
            tracing::debug!(
                header = name,
                value,
                "ignoring a rate-limit reset that is unparsable or too far"
            );
        }
        parsed
    };
    let until = |value: &str| rfc3339(value)?.duration_since(now).ok().or(Some(Duration::ZERO));
    let least = |names: &[&str]| names.iter().filter_map(|n| count(n)).min();
    let latest =
        |names: &[&str], parse: &dyn Fn(&str) -> Option<Duration>| names.iter().filter_map(|n| reset(n, parse)).max();
    let status = RateLimitStatus {
        requests_remaining: least(&[
            "x-ratelimit-remaining-requests",
            "anthropic-ratelimit-requests-remaining",
        ]),
        requests_reset: latest(&["x-ratelimit-reset-requests"], &openai_duration)
            .or_else(|| latest(&["anthropic-ratelimit-requests-reset"], &until)),
        tokens_remaining: least(&[
            "x-ratelimit-remaining-tokens",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-input-tokens-remaining",
            "anthropic-ratelimit-output-tokens-remaining",
        ]),
        tokens_reset: latest(&["x-ratelimit-reset-tokens"], &openai_duration).or_else(|| {
            latest(
                &[
                    "anthropic-ratelimit-tokens-reset",
                    "anthropic-ratelimit-input-tokens-reset",
                    "anthropic-ratelimit-output-tokens-reset",
                ],
                &until,
            )
        }),
    };
    (status != RateLimitStatus::default()).then_some(status)
}

/// OpenAI's reset durations: `20ms`, `1s`, `0.5s`, `6m0s`, `1h2m3.5s`.
fn openai_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// An RFC 3339 timestamp (`2026-12-03T23:20:00Z`, fractions and `+hh:mm` offsets allowed).
fn rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
    }
    let offset = match text.get(at..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') && zone.as_bytes()[3] == b':' => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if zone.starts_with('-') { -minutes } else { minutes }
        }
        _ => return None,
    };
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Sends a request and returns the response if its status is a success, else the classified
/// error (of which at most `max_error_body` bytes of body are read).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    max_error_body: usize,
) -> Result<reqwest::Response, ModelError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    // A body that fails half way is classified from what arrived: the status decides anyway.
    let (body, _) = read_at_most(response, max_error_body).await.unwrap_or_default();
    Err(classify(status.as_u16(), &headers, &body))
}

/// Reads at most `limit` bytes of a body, chunk by chunk; returns them and whether more followed
/// (which is then not read).
async fn read_at_most(mut response: reqwest::Response, limit: usize) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Reads a whole JSON body of at most `limit` bytes.
pub(crate) async fn read_json(response: reqwest::Response, limit: usize) -> Result<Value, ModelError> {
    let too_large = || ModelError::ResponseTooLarge {
        part: ResponsePart::Body,
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let (body, more) = read_at_most(response, limit).await.map_err(|e| {
        if e.is_timeout() {
            ModelError::Timeout
        } else {
            ModelError::StreamInterrupted {
                source: Some(e.without_url()),
            }
        }
    })?;
    if more {
        return Err(too_large());
    }
    parse_json(&body)
}

/// A whole body as JSON.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ModelError> {
    serde_json::from_slice(body).map_err(|e| ModelError::MalformedResponse {
        detail: format!("response body is not JSON: {e}"),
    })
}

/// One server-sent event.
#[derive(Debug, Default)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Reads server-sent events from a byte stream, holding at most one event (and one unfinished
/// line) of `max_event` bytes and reading at most `max_stream` bytes in all.
pub(crate) struct SseReader {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    current: SseEvent,
    has_data: bool,
    max_event: usize,
    max_stream: usize,
    received: usize,
}

impl SseReader {
    pub(crate) fn new(
        body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        max_event: usize,
        max_stream: usize,
    ) -> Self {
        Self {
            body: body.boxed(),
            buf: Vec::new(),
            scanned: 0,
            current: SseEvent::default(),
            has_data: false,
            max_event,
            max_stream,
            received: 0,
        }
    }

    fn too_large(part: ResponsePart, limit: usize) -> ModelError {
        ModelError::ResponseTooLarge { part, limit }
    }

    /// The next event; `Ok(None)` when the body ended; [`ModelError::Timeout`] when `until`
    /// passes first.
    pub(crate) async fn next(&mut self, until: Option<tokio::time::Instant>) -> Result<Option<SseEvent>, ModelError> {
        loop {
            while let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let pos = self.scanned + at;
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                self.scanned = 0;
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(event) = self.line(&line)? {
                    return Ok(Some(event));
                }
            }
            self.scanned = self.buf.len();
            // What is buffered is one unfinished line of the current event.
            if self.buf.len().saturating_add(self.current.data.len()) > self.max_event {
                return Err(Self::too_large(ResponsePart::Event, self.max_event));
            }
            let chunk = match until {
                Some(until) => tokio::time::timeout_at(until, self.body.next())
                    .await
                    .map_err(|_| ModelError::Timeout)?,
                None => self.body.next().await,
            };
            match chunk {
                Some(Ok(bytes)) => {
                    self.received = self.received.saturating_add(bytes.len());
                    if self.received > self.max_stream {
                        return Err(Self::too_large(ResponsePart::Stream, self.max_stream));
                    }
                    self.buf.extend_from_slice(&bytes);
                }
                Some(Err(e)) if e.is_timeout() => return Err(ModelError::Timeout),
                Some(Err(e)) => {
                    return Err(ModelError::StreamInterrupted {
                        source: Some(e.without_url()),
                    });
                }
                None => return Ok(None),
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, ModelError> {
        if line.is_empty() {
            if !self.has_data {
                self.current = SseEvent::default();
                return Ok(None);
            }
            self.has_data = false;
            return Ok(Some(std::mem::take(&mut self.current)));
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*text, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
                if self.current.data.len() > self.max_event {
                    return Err(Self::too_large(ResponsePart::Event, self.max_event));
                }
            }
            "event" => self.current.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(None)
    }
}

/// The time limits of a stream: since the last progress, and in all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamTimeouts {
    /// Without an event that carries data for this long: [`ModelError::Timeout`].
    pub(crate) idle: Duration,
    /// The stream's end (from the request), and the limit it stands for.
    pub(crate) end: tokio::time::Instant,
    pub(crate) total: Duration,
}

impl StreamTimeouts {
    /// The limits of a stream whose request is sent now.
    pub(crate) fn starting_now(idle: Duration, total: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            idle,
            end: later(now, total),
            total,
        }
    }
}

/// `from + by`, or a far future (about 30 years) if that is not representable.
fn later(from: tokio::time::Instant, by: Duration) -> tokio::time::Instant {
    from.checked_add(by)
        .unwrap_or_else(|| from + Duration::from_secs(86_400 * 365 * 30))
}

/// Turns SSE events of one wire format into [`StreamEvent`]s.
pub(crate) trait Decoder: Send + 'static {
    /// Decodes one event into `out`; returns `true` when it was the end marker.
    fn decode(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<bool, ModelError>;
}

impl Decoder for Box<dyn Decoder> {
    fn decode(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<bool, ModelError> {
        (**self).decode(event, out)
    }
}

/// Drives a decoder over a reader: the events, then the end; a body that ends before the end
/// marker yields [`ModelError::StreamInterrupted`]. With `timeouts`, the idle timer restarts
/// only when an event yields something (text, a tool call, usage, the end), not on comments or
/// pings, and the whole stream ends at its deadline.
pub(crate) fn drive<D: Decoder>(
    reader: SseReader,
    decoder: D,
    timeouts: Option<StreamTimeouts>,
) -> BoxStream<'static, Result<StreamEvent, ModelError>> {
    struct State<D> {
        reader: SseReader,
        decoder: D,
        pending: VecDeque<StreamEvent>,
        finished: bool,
        timeouts: Option<StreamTimeouts>,
        idle_until: Option<tokio::time::Instant>,
    }
    let state = State {
        reader,
        decoder,
        pending: VecDeque::new(),
        finished: false,
        timeouts,
        idle_until: timeouts.map(|t| later(tokio::time::Instant::now(), t.idle)),
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok(event), s));
            }
            if s.finished {
                return None;
            }
            let until = s.timeouts.zip(s.idle_until).map(|(t, idle)| idle.min(t.end));
            let result = match s.reader.next(until).await {
                Ok(Some(event)) => {
                    let decoded = s.decoder.decode(event, &mut s.pending);
                    if let (Some(t), Ok(ended)) = (s.timeouts, &decoded) {
                        if *ended || !s.pending.is_empty() {
                            s.idle_until = Some(later(tokio::time::Instant::now(), t.idle));
                        }
                    }
                    decoded
                }
                Ok(None) => Err(ModelError::StreamInterrupted { source: None }),
                Err(ModelError::Timeout) => match s.timeouts {
                    Some(t) if tokio::time::Instant::now() >= t.end => Err(ModelError::DeadlineExceeded {
                        deadline: Deadline::Stream,
                        limit: t.total,
                    }),
                    _ => Err(ModelError::Timeout),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(ended) => s.finished = ended,
                Err(e) => {
                    s.finished = true;
                    s.pending.clear();
                    return Some((Err(e), s));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_ms_wins_over_seconds() {
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "7")]);
        assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_millis(250)));
    }

    #[test]
    fn retry_after_seconds_and_fractions() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), SystemTime::now()),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), SystemTime::now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), SystemTime::now()), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "soon")]), SystemTime::now()),
            None
        );
        assert_eq!(retry_after(&headers(&[]), SystemTime::now()), None);
    }

    #[test]
    fn retry_after_too_long_for_a_duration_saturates_instead_of_panicking() {
        for (name, value) in [
            ("retry-after", "1e300"),
            ("retry-after-ms", "1e300"),
            ("retry-after", "18446744073709551615"),
            ("retry-after-ms", "18446744073709551615000000"),
        ] {
            assert_eq!(
                retry_after(&headers(&[(name, value)]), SystemTime::now()),
                Some(Duration::MAX),
                "{name}: {value}"
            );
        }
        for (name, value) in [
            ("retry-after", "inf"),
            ("retry-after-ms", "NaN"),
            ("retry-after", "-0.5"),
        ] {
            assert_eq!(
                retry_after(&headers(&[(name, value)]), SystemTime::now()),
                None,
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn retry_after_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:10 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn should_retry_header() {
        assert_eq!(should_retry(&headers(&[("x-should-retry", "true")])), Some(true));
        assert_eq!(should_retry(&headers(&[("x-should-retry", "false")])), Some(false));
        assert_eq!(should_retry(&headers(&[])), None);
    }

    #[test]
    fn classification() {
        let none = HeaderMap::new();
        let quota = br#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"quota"}}"#;
        assert!(matches!(classify(429, &none, quota), ModelError::QuotaExceeded));
        assert!(matches!(classify(429, &none, b"{}"), ModelError::RateLimited { .. }));
        assert!(matches!(classify(402, &none, b""), ModelError::QuotaExceeded));
        assert!(matches!(classify(529, &none, b""), ModelError::Overloaded { .. }));
        assert!(matches!(
            classify(503, &none, b""),
            ModelError::Server { status: 503, .. }
        ));
        assert!(matches!(
            classify(408, &none, b""),
            ModelError::Server { status: 408, .. }
        ));
        assert!(matches!(
            classify(409, &none, b""),
            ModelError::Server { status: 409, .. }
        ));
        assert!(matches!(
            classify(401, &none, b""),
            ModelError::Authentication { status: 401, .. }
        ));
        let credit = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the API"}}"#;
        assert!(matches!(classify(400, &none, credit), ModelError::QuotaExceeded));
        let bad = classify(400, &none, br#"{"error":{"message":"bad schema"}}"#);
        assert!(matches!(&bad, ModelError::BadRequest { status: 400, message, .. } if message == "bad schema"));
        assert!(!bad.is_transient());
        let forced = classify(400, &headers(&[("x-should-retry", "true")]), b"{}");
        assert!(forced.is_transient());
        let refused = classify(500, &headers(&[("x-should-retry", "false")]), b"{}");
        assert!(!refused.is_transient());
    }

    #[test]
    fn long_messages_are_truncated() {
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "é".repeat(600));
        let err = classify(400, &HeaderMap::new(), long.as_bytes());
        let ModelError::BadRequest { message, .. } = err else {
            panic!("expected bad request")
        };
        assert!(message.len() <= MAX_MESSAGE + '…'.len_utf8());
    }
}

#[cfg(test)]
mod rate_limit_tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn openai_headers() {
        let status = rate_limits(
            &headers(&[
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "1m2.5s"),
                ("x-ratelimit-remaining-tokens", "1500"),
                ("x-ratelimit-reset-tokens", "20ms"),
            ]),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(status.requests_remaining, Some(0));
        assert_eq!(status.requests_reset, Some(Duration::from_millis(62_500)));
        assert_eq!(status.tokens_remaining, Some(1500));
        assert_eq!(status.tokens_reset, Some(Duration::from_millis(20)));
        assert_eq!(status.exhausted_for(), Some(Duration::from_millis(62_500)));
    }

    #[test]
    fn anthropic_headers_take_the_least_tokens_and_resets_from_timestamps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_340_000); // 2026-12-03T23:20:00Z
        let status = rate_limits(
            &headers(&[
                ("anthropic-ratelimit-requests-remaining", "7"),
                ("anthropic-ratelimit-requests-reset", "2026-12-03T23:20:02Z"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                ("anthropic-ratelimit-output-tokens-remaining", "900"),
                ("anthropic-ratelimit-input-tokens-reset", "2026-12-04T00:20:03+01:00"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(status.requests_remaining, Some(7));
        assert_eq!(status.requests_reset, Some(Duration::from_secs(2)));
        assert_eq!(status.tokens_remaining, Some(0));
        assert_eq!(status.tokens_reset, Some(Duration::from_secs(3)));
        assert_eq!(status.exhausted_for(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn bad_headers_are_ignored_never_trusted() {
        for (name, value) in [
            ("x-ratelimit-remaining-requests", "-1"),
            ("x-ratelimit-remaining-requests", "lots"),
            ("x-ratelimit-reset-requests", "5d"),
            ("x-ratelimit-reset-requests", "99999999999999999999h"),
            ("x-ratelimit-reset-requests", "2h"),
            ("x-ratelimit-reset-requests", ""),
            ("x-ratelimit-reset-requests", "s"),
            ("anthropic-ratelimit-requests-reset", "tomorrow"),
            ("anthropic-ratelimit-requests-reset", "2026-13-03T23:20:00Z"),
            ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(
                rate_limits(&headers(&[(name, value)]), SystemTime::now()),
                None,
                "{name}: {value}"
            );
        }
        // A reset in the past is now.
        let past = rate_limits(
            &headers(&[("anthropic-ratelimit-requests-reset", "2000-01-01T00:00:00Z")]),
            SystemTime::now(),
        );
        assert_eq!(past.unwrap().requests_reset, Some(Duration::ZERO));
    }
}
