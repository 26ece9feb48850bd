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
mod tests {
    use super::*;

    const NOW: TimeMs = 1_795_678_200_000;

    fn resp(status: u16) -> Outcome {
        Outcome::Response { status, retry_after: None, backend_id: None, body_excerpt: String::new() }
    }

    #[test]
    fn contract_table() {
        for s in [200, 201, 204, 299] {
            assert_eq!(classify_status(s), StatusClass::Success, "{s}");
        }
        assert_eq!(classify_status(401), StatusClass::Unauthorized);
        for s in [408, 409, 425, 429, 500, 502, 503, 504, 599, 302, 100] {
            assert_eq!(classify_status(s), StatusClass::Transient, "{s}");
        }
        for s in [400, 403, 404, 405, 410, 413, 415, 422, 451, 499] {
            assert_eq!(classify_status(s), StatusClass::Permanent, "{s}");
        }
    }

    #[test]
    fn backoff_schedule_is_the_seeds() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|a| p.backoff(a)).collect();
        assert_eq!(waits, [1_000, 5_000, 30_000, 120_000, 600_000, 600_000, 600_000]);
        assert_eq!(p.backoff(0), 1_000);
        assert_eq!(RetryPolicy { backoff_ms: vec![] }.backoff(3), 0);
    }

    #[test]
    fn success_needs_an_id() {
        let ok = Outcome::Response { status: 201, retry_after: None, backend_id: Some("42".into()), body_excerpt: "{\"id\":42}".into() };
        assert_eq!(decide(&ok, 1, 5, &RetryPolicy::default(), NOW), Decision::Complete { backend_id: "42".into() });
        let no_id = Outcome::Response { status: 200, retry_after: None, backend_id: None, body_excerpt: "<html>portal</html>".into() };
        match decide(&no_id, 1, 5, &RetryPolicy::default(), NOW) {
            Decision::Retry { at, message } => {
                assert_eq!(at, NOW + 1000);
                assert!(message.starts_with("HTTP 200: <html>portal</html>: the server answered without"), "{message}");
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn transient_failures_back_off_per_attempt() {
        let p = RetryPolicy::default();
        for (attempt, wait) in [(1, 1_000), (2, 5_000), (3, 30_000), (4, 120_000)] {
            for outcome in [resp(503), resp(429), resp(408), resp(409), resp(425), resp(500), Outcome::Network("Failed to fetch".into()), Outcome::Timeout(30_000), Outcome::Token("threw".into())] {
                match decide(&outcome, attempt, 5, &p, NOW) {
                    Decision::Retry { at, .. } => assert_eq!(at, NOW + wait, "{outcome:?} attempt {attempt}"),
                    d => panic!("{outcome:?}: {d:?}"),
                }
            }
        }
    }

    #[test]
    fn gives_up_after_max_attempts() {
        match decide(&resp(503), 5, 5, &RetryPolicy::default(), NOW) {
            Decision::GiveUp { message } => assert_eq!(message, "HTTP 503 (gave up after 5 attempts)"),
            d => panic!("{d:?}"),
        }
        assert!(matches!(decide(&resp(503), 1, 1, &RetryPolicy::default(), NOW), Decision::GiveUp { .. }));
        assert!(matches!(decide(&resp(503), 4, 5, &RetryPolicy::default(), NOW), Decision::Retry { .. }));
    }

    #[test]
    fn permanent_4xx_gives_up_at_once_with_status_and_body() {
        let o = Outcome::Response { status: 422, retry_after: Some("5".into()), backend_id: None, body_excerpt: "{\"error\":\n \"quantity out of range\"}".into() };
        match decide(&o, 1, 5, &RetryPolicy::default(), NOW) {
            Decision::GiveUp { message } => {
                assert!(message.starts_with("HTTP 422: {\"error\": \"quantity out of range\"}"), "{message}");
            }
            d => panic!("{d:?}"),
        }
        let long = Outcome::Response { status: 400, retry_after: None, backend_id: None, body_excerpt: "x".repeat(5000) };
        match decide(&long, 1, 5, &RetryPolicy::default(), NOW) {
            Decision::GiveUp { message } => assert!(message.len() < 400, "{}", message.len()),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn unauthorized_after_refresh_is_retryable() {
        match decide(&resp(401), 1, 5, &RetryPolicy::default(), NOW) {
            Decision::Retry { at, message } => {
                assert_eq!(at, NOW + 1000);
                assert!(message.contains("401") && message.contains("refreshing the token"));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", NOW), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", NOW), Some(0));
        assert_eq!(parse_retry_after("99999999999999999999999", NOW), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(parse_retry_after("Thu, 26 Nov 2026 07:31:00 GMT", NOW), Some(60_000));
        assert_eq!(parse_retry_after("Thu, 26 Nov 2026 07:00:00 GMT", NOW), Some(0), "a past date means now");
        for bad in ["", "-5", "1.5", "soon", "5 s"] {
            assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_wins_only_when_longer() {
        let with = |ra: &str| Outcome::Response { status: 503, retry_after: Some(ra.into()), backend_id: None, body_excerpt: String::new() };
        let p = RetryPolicy::default();
        let at = |o: &Outcome, attempt| match decide(o, attempt, 5, &p, NOW) {
            Decision::Retry { at, .. } => at,
            d => panic!("{d:?}"),
        };
        assert_eq!(at(&with("10"), 1), NOW + 10_000, "Retry-After longer than backoff");
        assert_eq!(at(&with("2"), 2), NOW + 5_000, "backoff longer than Retry-After");
        assert_eq!(at(&with("Thu, 26 Nov 2026 07:32:00 GMT"), 1), NOW + 120_000, "HTTP date");
        assert_eq!(at(&with("garbage"), 1), NOW + 1_000, "malformed header ignored");
        // Retry-After on a 429
        let o = Outcome::Response { status: 429, retry_after: Some("30".into()), backend_id: None, body_excerpt: String::new() };
        assert_eq!(at(&o, 1), NOW + 30_000);
    }
}
