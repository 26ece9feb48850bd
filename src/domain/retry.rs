//! What an upload's outcome means (CONTRACT §2), and when the next attempt runs.
//! Pure: a function of `(outcome, attempt, policy, now)`, so every branch is tested natively.

use super::arg::truncate;
use super::time::{parse_http_date, TimeMs};

/// The seed's backoff schedule: 1 s, 5 s, 30 s, 2 min, 10 min.
pub const DEFAULT_BACKOFF_MS: [u64; 5] = [1_000, 5_000, 30_000, 120_000, 600_000];
/// The seed gives up after 5 failed attempts.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// A `Retry-After` longer than this is capped, so one bad header cannot park an event for years.
pub const MAX_RETRY_AFTER_MS: u64 = 86_400_000;
/// How much of a response body an error message quotes.
pub const BODY_EXCERPT_CHARS: usize = 200;

/// Backoff schedule and attempt budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after failed attempt `n` (1-based) is `backoff_ms[n - 1]`; the last value repeats.
    pub backoff_ms: Vec<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { backoff_ms: DEFAULT_BACKOFF_MS.to_vec() }
    }
}

impl RetryPolicy {
    /// The backoff after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> u64 {
        let i = (attempt.max(1) as usize - 1).min(self.backoff_ms.len().saturating_sub(1));
        self.backoff_ms.get(i).copied().unwrap_or(0)
    }
}

/// How the contract classifies an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: stored (if the body names an id).
    Success,
    /// 401: ask for a new token once and retry at once.
    Unauthorized,
    /// 408, 409, 425, 429, 5xx (and anything unexpected): retry with backoff.
    Transient,
    /// Any other 4xx: the server will never accept it.
    Permanent,
}

/// Classifies a status code by the CONTRACT §2 table.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        401 => StatusClass::Unauthorized,
        408 | 409 | 425 | 429 => StatusClass::Transient,
        400..=499 => StatusClass::Permanent,
        // 5xx, and statuses a fetch should never end on (1xx, 3xx): assume a passing fault.
        _ => StatusClass::Transient,
    }
}

/// The delay a `Retry-After` header asks for: delay-seconds or an HTTP date. `None` if absent
/// or malformed; capped at [`MAX_RETRY_AFTER_MS`]; a date in the past means no extra wait.
pub fn parse_retry_after(value: &str, now: TimeMs) -> Option<u64> {
    let v = value.trim();
    let ms = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than fit are simply "a very long time".
        v.parse::<u64>().map(|s| s.saturating_mul(1000)).unwrap_or(u64::MAX)
    } else {
        let at = parse_http_date(v)?;
        (at - now).max(0) as u64
    };
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

/// What one upload attempt ended with, as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (after the one token refresh a 401 earns).
    Response {
        /// HTTP status.
        status: u16,
        /// The `Retry-After` header, if any.
        retry_after: Option<String>,
        /// `id` from a JSON body, as a string (numbers are stringified).
        backend_id: Option<String>,
        /// The start of the body, for error messages.
        body_excerpt: String,
    },
    /// `fetch` rejected: offline, DNS, connection refused, CORS.
    Network(String),
    /// No answer within `requestTimeoutMs`; the request was aborted.
    Timeout(u64),
    /// The `token` option threw or gave no token.
    Token(String),
}

/// What to do with the event after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Stored: complete the event, record the backend id on the entry.
    Complete {
        /// The server's id.
        backend_id: String,
    },
    /// Failed, try again at `at`.
    Retry {
        /// Time of the next attempt.
        at: TimeMs,
        /// Why it failed.
        message: String,
    },
    /// Failed for good: only `resetForRetry` brings it back.
    GiveUp {
        /// Why it failed.
        message: String,
    },
}

fn http_message(status: u16, body_excerpt: &str) -> String {
    let body = body_excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", truncate(&body, BODY_EXCERPT_CHARS))
    }
}

/// Decides the fate of attempt number `attempt` (1-based; the event's `attemptCount` after claiming)
/// out of `max_attempts`.
pub fn decide(outcome: &Outcome, attempt: u32, max_attempts: u32, policy: &RetryPolicy, now: TimeMs) -> Decision {
    let (message, server_wait) = match outcome {
        Outcome::Response { status, retry_after, backend_id, body_excerpt } => match classify_status(*status) {
            StatusClass::Success => match backend_id {
                Some(id) => return Decision::Complete { backend_id: id.clone() },
                None => (format!("{}: the server answered without an \"id\" in a JSON body; not counted as stored", http_message(*status, body_excerpt)), None),
            },
            StatusClass::Permanent => {
                return Decision::GiveUp {
                    message: format!("{} (the server refused this entry; fix it server-side, then resetForRetry)", http_message(*status, body_excerpt)),
                }
            }
            StatusClass::Unauthorized => (format!("{} (still unauthorized after refreshing the token)", http_message(*status, body_excerpt)), None),
            StatusClass::Transient => (http_message(*status, body_excerpt), retry_after.as_deref().and_then(|v| parse_retry_after(v, now))),
        },
        Outcome::Network(detail) => (format!("network error: {detail}"), None),
        Outcome::Timeout(ms) => (format!("no response within {ms} ms (requestTimeoutMs); request aborted"), None),
        Outcome::Token(detail) => (format!("token: {detail}"), None),
    };
    if attempt >= max_attempts {
        return Decision::GiveUp { message: format!("{message} (gave up after {attempt} attempts)") };
    }
    let wait = policy.backoff(attempt).max(server_wait.unwrap_or(0));
    Decision::Retry { at: now.saturating_add(wait.min(i64::MAX as u64) as i64), message }
}

#[cfg(test)]
mod tests;
