//! Rate limits the fake provider enforces as a real provider does: requests and tokens per
//! minute and concurrent requests, reported in the providers' rate-limit headers on every
//! answer, and a 429 with `retry-after` past them.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::wire::Format;

/// The limits a [`FakeProvider`](crate::FakeProvider) enforces (none by default); see
/// [`FakeProvider::set_limits`](crate::FakeProvider::set_limits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute: a request costs its prompt's estimate (a token per 4 bytes of body)
    /// plus its `max_tokens`, as OpenAI counts them.
    pub tokens_per_minute: Option<u32>,
    /// Requests in flight at once.
    pub concurrent: Option<u32>,
    /// The window the per-minute limits count over (a minute unless set; scale it down in a
    /// test, e.g. 20 requests a second).
    pub window: Option<std::time::Duration>,
}

impl Limits {
    /// No limits.
    pub fn none() -> Self {
        Self::default()
    }

    /// At most `n` requests a minute.
    pub fn requests_per_minute(mut self, n: u32) -> Self {
        self.requests_per_minute = Some(n);
        self
    }

    /// At most `n` tokens a minute.
    pub fn tokens_per_minute(mut self, n: u32) -> Self {
        self.tokens_per_minute = Some(n);
        self
    }

    /// At most `n` requests at once.
    pub fn concurrent(mut self, n: u32) -> Self {
        self.concurrent = Some(n);
        self
    }

    /// Counts the "per minute" limits over `window` instead.
    pub fn window(mut self, window: std::time::Duration) -> Self {
        self.window = Some(window);
        self
    }
}

/// A per-minute budget that refills continuously.
#[derive(Debug)]
struct Bucket {
    per_minute: f64,
    window: f64,
    left: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: u32, window: Duration) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            window: window.as_secs_f64().max(1e-3),
            left: f64::from(per_minute.max(1)),
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.per_minute / self.window;
        self.left = (self.left + earned).min(self.per_minute);
        self.at = now;
    }

    /// How long until `cost` is available (zero: now).
    fn wait_for(&self, cost: f64) -> Duration {
        let missing = cost.min(self.per_minute) - self.left;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing * self.window / self.per_minute)
        }
    }

    /// How long until the bucket is full again.
    fn until_full(&self) -> Duration {
        Duration::from_secs_f64((self.per_minute - self.left).max(0.0) * self.window / self.per_minute)
    }
}

/// The state of the limits.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    limits: Limits,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    in_flight: u32,
    refused: u64,
}

/// A request let through: holds its concurrency slot until dropped.
pub(crate) struct Admitted<'a> {
    limiter: &'a Limiter,
    /// The rate-limit headers to send with the answer.
    pub(crate) headers: Vec<(String, String)>,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut state = self
            .limiter
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

/// A request refused: the 429's headers (`retry-after` and the rate-limit headers).
pub(crate) struct Refused {
    pub(crate) headers: Vec<(String, String)>,
}

impl Limiter {
    pub(crate) fn set(&self, limits: Limits) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = limits.window.unwrap_or(Duration::from_secs(60));
        state.requests = limits.requests_per_minute.map(|n| Bucket::new(n, window));
        state.tokens = limits.tokens_per_minute.map(|n| Bucket::new(n, window));
        state.limits = limits;
    }

    /// Requests answered 429 because of the limits.
    pub(crate) fn refused(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .refused
    }

    /// Admits a request costing `tokens`, or refuses it.
    pub(crate) fn admit(&self, format: Format, tokens: u64) -> Result<Admitted<'_>, Refused> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let cost = tokens as f64;
        if let Some(b) = state.requests.as_mut() {
            b.refill(now);
        }
        if let Some(b) = state.tokens.as_mut() {
            b.refill(now);
        }
        let wait = state
            .requests
            .as_ref()
            .map_or(Duration::ZERO, |b| b.wait_for(1.0))
            .max(state.tokens.as_ref().map_or(Duration::ZERO, |b| b.wait_for(cost)));
        let busy = state.limits.concurrent.is_some_and(|n| state.in_flight >= n);
        if !wait.is_zero() || busy {
            state.refused += 1;
            // A full concurrency limit frees up soon: a short wait.
            let wait = if wait.is_zero() {
                Duration::from_millis(100)
            } else {
                wait
            };
            let mut headers = headers(&state, format);
            headers.push(("retry-after-ms".into(), wait.as_millis().max(1).to_string()));
            headers.push(("retry-after".into(), wait.as_secs_f64().ceil().max(1.0).to_string()));
            return Err(Refused { headers });
        }
        if let Some(b) = state.requests.as_mut() {
            b.left -= 1.0;
        }
        if let Some(b) = state.tokens.as_mut() {
            b.left -= cost.min(b.per_minute);
        }
        state.in_flight += 1;
        let headers = headers(&state, format);
        Ok(Admitted { limiter: self, headers })
    }
}

/// The provider's rate-limit headers for the buckets as they are.
fn headers(state: &State, format: Format) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let buckets = [("requests", &state.requests), ("tokens", &state.tokens)];
    for (what, bucket) in buckets {
        let Some(b) = bucket else { continue };
        let remaining = b.left.max(0.0).floor() as u64;
        let reset = b.until_full();
        match format {
            Format::OpenAi => {
                out.push((format!("x-ratelimit-limit-{what}"), (b.per_minute as u64).to_string()));
                out.push((format!("x-ratelimit-remaining-{what}"), remaining.to_string()));
                out.push((format!("x-ratelimit-reset-{what}"), format!("{}ms", reset.as_millis())));
            }
            Format::Anthropic => {
                let name = if what == "tokens" { "input-tokens" } else { what };
                out.push((
                    format!("anthropic-ratelimit-{name}-limit"),
                    (b.per_minute as u64).to_string(),
                ));
                out.push((format!("anthropic-ratelimit-{name}-remaining"), remaining.to_string()));
                out.push((
                    format!("anthropic-ratelimit-{name}-reset"),
                    rfc3339(SystemTime::now() + reset),
                ));
            }
        }
    }
    out
}

/// `2026-12-03T23:18:09Z` (whole seconds, rounded up so that a reset is never early).
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_796_340_000)),
            "2026-12-03T23:20:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_500)),
            "1970-01-01T00:00:02Z"
        );
    }
}
