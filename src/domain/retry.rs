//! What an upload's outcome means (CONTRACT §2), and when the next attempt runs.
//! Pure: a function of `(outcome, attempt, policy, now)`, so every branch is tested natively.
//!
//! Two kinds of failure:
//! - **answers** (the server said no: 5xx, 408, 409, 425, 429, 3xx, a 401 after a token refresh)
//!   count toward `maxAttempts`;
//! - **no answer** (offline, network error, timeout, token unavailable) never counts and never
//!   gives up: it retries on the backoff schedule, its last step repeating.

use super::arg::truncate;
use super::event::Operation;
use super::time::{parse_http_date, TimeMs};

/// The seed's backoff schedule: 1 s, 5 s, 30 s, 2 min, 10 min.
pub const DEFAULT_BACKOFF_MS: [u64; 5] = [1_000, 5_000, 30_000, 120_000, 600_000];
/// The seed gives up after 5 failed attempts.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// A `Retry-After` longer than this is capped, so one bad header cannot park an event for years.
pub const MAX_RETRY_AFTER_MS: u64 = 86_400_000;
/// How much of a response body an error message quotes.
pub const BODY_EXCERPT_CHARS: usize = 200;
/// Slack for timers and clock granularity when judging persisted deadlines.
pub const CLOCK_SLACK_MS: i64 = 1_000;

/// Backoff schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after failed try `n` (1-based) is `backoff_ms[n - 1]`; the last value repeats.
    pub backoff_ms: Vec<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { backoff_ms: DEFAULT_BACKOFF_MS.to_vec() }
    }
}

impl RetryPolicy {
    /// The backoff after failed try `n` (1-based).
    pub fn backoff(&self, n: u32) -> u64 {
        let i = (n.max(1) as usize - 1).min(self.backoff_ms.len().saturating_sub(1));
        self.backoff_ms.get(i).copied().unwrap_or(0)
    }

    /// The last (longest-repeating) step.
    pub fn last_step(&self) -> u64 {
        self.backoff_ms.last().copied().unwrap_or(0)
    }

    /// The longest wait any failure can set: the longest step, or a capped `Retry-After`.
    pub fn longest_wait(&self) -> u64 {
        self.backoff_ms.iter().copied().max().unwrap_or(0).max(MAX_RETRY_AFTER_MS)
    }
}

/// How the contract classifies an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx.
    Success,
    /// 401: ask for a new token once and retry at once.
    Unauthorized,
    /// 3xx: a redirect, never followed.
    Redirect,
    /// 408, 409, 425, 429, 5xx (and anything unexpected): retry with backoff.
    Transient,
    /// Any other 4xx: the server will never accept it.
    Permanent,
}

/// Classifies a status code by the CONTRACT §2 table.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        300..=399 => StatusClass::Redirect,
        401 => StatusClass::Unauthorized,
        408 | 409 | 425 | 429 => StatusClass::Transient,
        400..=499 => StatusClass::Permanent,
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
        /// The `Retry-After` header (or a batch item's `retryAfter` seconds), if any.
        retry_after: Option<String>,
        /// `id` from a JSON body, as a string (numbers are stringified).
        backend_id: Option<String>,
        /// The body was empty or a JSON object (not, say, a captive portal's HTML page).
        plain: bool,
        /// The start of the body, for error messages (never containing the token).
        body_excerpt: String,
    },
    /// The batch request as a whole failed (CONTRACT §2b): a non-2xx answer, or `200` for an
    /// answer that is not a complete result list. Applies to every item; completes none.
    Batch {
        /// The batch answer's status.
        status: u16,
        /// Its `Retry-After` header.
        retry_after: Option<String>,
        /// What was wrong (a body excerpt, or why the answer is incomplete).
        detail: String,
    },
    /// 413 to a batch of this many (more than one) events: too many at once for the server, no
    /// verdict on any of them. They go again at once in smaller batches; not counted toward
    /// `maxAttempts` (else a server's batch limit would make events give up that it accepts).
    BatchTooLarge(u32),
    /// The endpoint redirected and the browser hides the answer (an opaque redirect; never
    /// followed). A redirect the page can see is a `Response` with its 3xx status.
    OpaqueRedirect,
    /// `fetch` rejected: offline, DNS, connection refused, CORS.
    Network(String),
    /// No answer within `requestTimeoutMs`; the request was aborted.
    Timeout(u64),
    /// The `token` option threw, gave no token, or did not answer in time: nothing was sent.
    Token(String),
}

impl Outcome {
    /// The server may have stored what was sent: it went out and got no answer, or a 5xx, a
    /// 409, a 2xx (one it could not use, or a batch answer that was not a result list), or a
    /// redirect (a `303 See Other` is how many servers answer a POST they stored; an opaque
    /// redirect says nothing at all).
    pub fn maybe_stored(&self) -> bool {
        match self {
            Outcome::Response { status, .. } | Outcome::Batch { status, .. } => !matches!(status, 400..=499) || *status == 409,
            Outcome::Network(_) | Outcome::Timeout(_) | Outcome::OpaqueRedirect => true,
            Outcome::BatchTooLarge(_) | Outcome::Token(_) => false,
        }
    }

    /// The server answered (this counts toward `maxAttempts` when it is a failure).
    pub fn answered(&self) -> bool {
        matches!(self, Outcome::Response { .. } | Outcome::OpaqueRedirect | Outcome::Batch { .. } | Outcome::BatchTooLarge(_))
    }

    /// A failure only the app can fix, as opposed to one that passes by itself: no usable token,
    /// or a token the server still refuses after a refresh. Logged at `"warn"`.
    pub fn needs_attention(&self) -> bool {
        match self {
            Outcome::Token(_) => true,
            Outcome::Response { status, .. } | Outcome::Batch { status, .. } => *status == 401,
            _ => false,
        }
    }
}

/// What to do with the event after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Stored (or, for a delete, gone): complete the event.
    Complete {
        /// The server's id, if it sent one (a create always has one).
        backend_id: Option<String>,
    },
    /// Failed, try again at `at`.
    Retry {
        /// Time of the next attempt.
        at: TimeMs,
        /// The wait that gave `at`.
        wait_ms: u64,
        /// Why it failed.
        message: String,
        /// A failed answer: counts toward `maxAttempts`.
        counted: bool,
        /// A request went out (it may have reached the server).
        sent: bool,
        /// The server may have stored it (no answer, a 5xx, a 409, a 2xx it could not use, or a
        /// redirect): a later refusal of the same key can no longer mean it never did.
        maybe_stored: bool,
        /// The wait is a step of the backoff schedule (the next failure waits the step after).
        /// Not for a batch split after a 413 or an update waiting for its backend id.
        stepped: bool,
    },
    /// Failed for good: only `resetForRetry` brings it back.
    GiveUp {
        /// Why it failed.
        message: String,
        /// The server refused it (a 4xx): it never stored it.
        refused: bool,
        /// This request or an earlier one with its key may have been stored (as in
        /// `Retry::maybe_stored`): remembered through `resetForRetry`, so a later refusal of the
        /// same key cannot pass for "never stored".
        maybe_stored: bool,
    },
}

/// How long an update or delete that cannot be addressed yet waits before it is looked at again.
pub const NO_BACKEND_ID_WAIT_MS: u64 = 60_000;

/// How long an update or delete waits for its entry, set aside as unreadable without a backend
/// id, to be restored by a version of the app that reads it: 7 days, then it gives up.
pub const SET_ASIDE_WAIT_MS: u64 = 7 * 24 * 3_600_000;

/// Looks at an edit whose entry is stored without a backend id, a minute apart, in 7 days.
pub const MAX_LOOKS: u32 = (SET_ASIDE_WAIT_MS / NO_BACKEND_ID_WAIT_MS) as u32;

/// Where the entry of an update or delete with no backend id is on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKept {
    /// The entry or its tombstone is stored, readable, without a backend id.
    Stored {
        /// When the edit was written.
        since: TimeMs,
        /// How many times the edit was looked at so far (its claims): a bound that no clock
        /// moves, for an edit written while the clock was far ahead.
        looks: u32,
    },
    /// Only a record this version cannot read is kept aside (quarantined) under its id, since
    /// `since` (wall clock), with no backend id. (A kept copy with a backend id addresses the
    /// event: it never gets here.)
    SetAside {
        /// When it was set aside.
        since: TimeMs,
    },
    /// Neither.
    Nowhere,
}

/// An update or delete at the head of its entry's queue, while the entry has no backend id:
/// nothing is sent. While the entry (or its tombstone) is stored, an id may still come (from its
/// create's answer): it waits and is looked at again, uncounted, for [`SET_ASIDE_WAIT_MS`] from
/// when the edit was written, and at most [`MAX_LOOKS`] times (at the head of its queue its
/// create is done, so only another version of the app that dropped the id leaves it waiting that
/// long). While the entry is set aside as unreadable, a version of the app that reads it may
/// restore it with its id: it waits so for [`SET_ASIDE_WAIT_MS`] from the setting aside (a time
/// ahead of now, the clock set back since, counts as now: a correction never ends the wait early;
/// the store moves such a stamp to now). When neither is kept, or a wait is over, nothing
/// addresses it: it gives up, saying so, as refused (nothing of it reached the server, so it holds
/// nothing back: the entry's next event is judged in its turn).
pub fn unaddressable(entry: EntryKept, now: TimeMs) -> Decision {
    let message = match entry {
        EntryKept::Stored { since, looks } if now.saturating_sub(since) < SET_ASIDE_WAIT_MS as TimeMs && looks < MAX_LOOKS => {
            "waiting for the entry's backend id; nothing was sent"
        }
        EntryKept::Stored { .. } => {
            let message = "its entry is stored without a backend id, and none came within 7 days of this edit (another version of the app may have dropped it); nothing was sent".to_owned();
            return Decision::GiveUp { message, refused: true, maybe_stored: false };
        }
        EntryKept::SetAside { since } if now.saturating_sub(since) < SET_ASIDE_WAIT_MS as TimeMs => {
            "waiting (at most 7 days) for its entry, set aside as unreadable by this version of the app (see stats().quarantined), to be restored with its backend id; nothing was sent"
        }
        EntryKept::SetAside { .. } => {
            let message = "its entry was set aside as unreadable by this version of the app (see stats().quarantined) without a backend id, and no version restored it within 7 days; nothing was sent".to_owned();
            return Decision::GiveUp { message, refused: true, maybe_stored: false };
        }
        EntryKept::Nowhere => {
            let message = "its entry is no longer stored on this device, so it has no backend id to address; nothing was sent".to_owned();
            return Decision::GiveUp { message, refused: true, maybe_stored: false };
        }
    };
    Decision::Retry {
        at: now + NO_BACKEND_ID_WAIT_MS as TimeMs,
        wait_ms: NO_BACKEND_ID_WAIT_MS,
        message: message.to_owned(),
        counted: false,
        sent: false,
        maybe_stored: false,
        stepped: false,
    }
}

/// An event's counts before the attempt being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// What it does.
    pub operation: Operation,
    /// Failed answers so far.
    pub attempt_count: u32,
    /// Failed tries of any kind so far.
    pub tries: u32,
    /// Failed answers allowed.
    pub max_attempts: u32,
    /// An earlier request may have been stored (see `Decision::Retry::maybe_stored`).
    pub maybe_stored: bool,
}

fn http_message(status: u16, body_excerpt: &str) -> String {
    let body = body_excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", truncate(&body, BODY_EXCERPT_CHARS))
    }
}

fn redirect_message(status: u16) -> String {
    let shown = if status == 0 { "a redirect".to_owned() } else { format!("a redirect (HTTP {status})") };
    format!("the endpoint answered with {shown}; redirects are never followed, so it is not completed (the server may or may not have stored it): point the endpoint at its final URL")
}

/// Decides the fate of an attempt.
pub fn decide(outcome: &Outcome, attempt: Attempt, policy: &RetryPolicy, now: TimeMs) -> Decision {
    let asked = |retry_after: &Option<String>| retry_after.as_deref().and_then(|v| parse_retry_after(v, now));
    let (message, server_wait) = match outcome {
        Outcome::Response { status, retry_after, backend_id, plain, body_excerpt } => match classify_status(*status) {
            StatusClass::Success => {
                let stored = match attempt.operation {
                    Operation::Create => backend_id.is_some(),
                    Operation::Update => backend_id.is_some() || *plain,
                    Operation::Delete => true,
                };
                if stored {
                    return Decision::Complete { backend_id: backend_id.clone() };
                }
                let missing = if attempt.operation == Operation::Create {
                    "without an \"id\" in a JSON body (a usable one: a string other than \"\", \".\" and \"..\" of at most 1024 bytes, or an integer JSON keeps exact, up to 2^53)"
                } else {
                    "with a body that is not JSON"
                };
                (format!("{}: the server answered {missing}; not counted as stored", http_message(*status, body_excerpt)), None)
            }
            StatusClass::Permanent if *status == 404 && attempt.operation == Operation::Delete => return Decision::Complete { backend_id: None },
            StatusClass::Permanent => return refusal(http_message(*status, body_excerpt), "this event", attempt),
            StatusClass::Unauthorized => (
                format!(
                    "{} (still unauthorized after asking for the token again: a token function gets {{ refresh: true }}, a fixed token string cannot change)",
                    http_message(*status, body_excerpt)
                ),
                None,
            ),
            // A 3xx is transient (CONTRACT §2): its Retry-After counts, where the page can see it
            // (a batch item, a 300 or 304; a followable redirect is opaque to the page).
            StatusClass::Redirect => (redirect_message(*status), asked(retry_after)),
            StatusClass::Transient => (http_message(*status, body_excerpt), asked(retry_after)),
        },
        Outcome::Batch { status, retry_after, detail } => {
            let what = format!("batch request: {}", http_message(*status, detail));
            match classify_status(*status) {
                StatusClass::Redirect => (redirect_message(*status), asked(retry_after)),
                // A 413 to one event (to several: `BatchTooLarge`) says that event is too big, as
                // on the single endpoint: refused like any other 4xx.
                StatusClass::Permanent => return refusal(what, "the batch", attempt),
                StatusClass::Transient => (what, asked(retry_after)),
                _ => (what, None),
            }
        }
        Outcome::BatchTooLarge(n) => {
            let message = format!("batch request: HTTP 413: {n} events were too many for the server at once; sent again in smaller batches (not counted)");
            return Decision::Retry { at: now, wait_ms: 0, message, counted: false, sent: true, maybe_stored: false, stepped: false };
        }
        Outcome::OpaqueRedirect => (redirect_message(0), None),
        Outcome::Network(detail) => (format!("network error: {detail}"), None),
        Outcome::Timeout(ms) => (format!("no response within {ms} ms (requestTimeoutMs); request aborted"), None),
        Outcome::Token(detail) => (format!("token unavailable: {detail}"), None),
    };
    let counted = outcome.answered();
    let step = attempt.tries + 1;
    if counted && attempt.attempt_count + 1 >= attempt.max_attempts {
        let n = attempt.attempt_count + 1;
        return Decision::GiveUp { message: format!("{message} (gave up after {n} failed answers)"), refused: false, maybe_stored: outcome.maybe_stored() };
    }
    let wait = policy.backoff(step).max(server_wait.unwrap_or(0));
    let sent = !matches!(outcome, Outcome::Token(_));
    let maybe_stored = outcome.maybe_stored();
    Decision::Retry { at: now.saturating_add(wait.min(i64::MAX as u64) as i64), wait_ms: wait, message, counted, sent, maybe_stored, stepped: true }
}

/// A 4xx the server will never accept: refused (nothing of the event is on the server, so what
/// follows it may go, and an edit replaces it), unless it is a create an earlier request of
/// which, under its key, may have been stored (a 4xx from something in front of the server, a
/// gateway's body limit, say, says nothing about that one): then it gave up as after its last
/// attempt, and later edits wait (a fresh create would store the entry twice). A refused update
/// or delete is replaced by the entry's next edit, which carries its whole state, whether or not
/// an earlier request of it was stored: it never holds the entry back.
fn refusal(what: String, whose: &str, attempt: Attempt) -> Decision {
    if attempt.maybe_stored && attempt.operation == Operation::Create {
        let message = format!("{what} (the server refused {whose}; an earlier request with its key may have been stored, so later edits of the entry wait for it: fix the cause, then resetForRetry)");
        Decision::GiveUp { message, refused: false, maybe_stored: true }
    } else {
        Decision::GiveUp {
            message: format!("{what} (the server refused {whose}; fix the cause, then resetForRetry)"),
            refused: true,
            maybe_stored: attempt.maybe_stored,
        }
    }
}

/// The longest server id kept (UTF-8 bytes): a longer one would make every later URL of the
/// entry longer than browsers send (Chromium refused a 1 MB id's PUT as "Failed to fetch", an
/// update that could never succeed yet never gave up).
pub const MAX_BACKEND_ID_BYTES: usize = 1024;

/// A server's id that can name the entry in later URLs (`{endpoint}/{id}`): not empty, not
/// `.` or `..`, which a URL parser takes for "this folder" and "the parent" (a PUT or DELETE for
/// the entry would go to the collection or above it, and that answer would complete it), and at
/// most [`MAX_BACKEND_ID_BYTES`] long.
pub fn usable_backend_id(id: String) -> Option<String> {
    (!id.is_empty() && id != "." && id != ".." && id.len() <= MAX_BACKEND_ID_BYTES).then_some(id)
}

/// A numeric id JSON carries exactly in JS: an integer up to 2^53 (a bigger one arrives rounded,
/// so later requests would name another record), or a finite fraction.
pub fn exact_numeric_id(n: f64) -> bool {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    n.is_finite() && (n.fract() != 0.0 || n.abs() <= MAX_SAFE)
}

/// Is a retry scheduled for `next_attempt_at` (after a wait of `wait_ms`) due at `now`?
/// Due when its time has come, or when it lies further ahead than its wait allows: the device
/// clock was set back after it was written (without `wait_ms`, `longest_wait` is the bound).
pub fn is_due(next_attempt_at: TimeMs, wait_ms: Option<u64>, now: TimeMs, longest_wait: u64) -> bool {
    let allowed = wait_ms.unwrap_or(longest_wait).min(i64::MAX as u64 / 2) as i64;
    next_attempt_at <= now || next_attempt_at - now > allowed + CLOCK_SLACK_MS
}

/// How long until a retry scheduled for `next_attempt_at` is due, seen from `now`, never more
/// than its wait (a clock set back does not stretch it).
pub fn remaining_wait(next_attempt_at: TimeMs, wait_ms: Option<u64>, now: TimeMs, longest_wait: u64) -> u64 {
    if is_due(next_attempt_at, wait_ms, now, longest_wait) {
        0
    } else {
        (next_attempt_at - now) as u64
    }
}

#[cfg(test)]
mod tests;
