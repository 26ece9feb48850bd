//! `Outbox.open` options: the seed's defaults, and the validation of every option.

use super::arg::{fmt_num, Arg};
use super::error::{Error, Result};
use super::query::check_keys;
use super::retry::{RetryPolicy, DEFAULT_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS};

/// Default database name.
pub const DEFAULT_DB_NAME: &str = "progress-outbox";
/// The longest delay a browser timer can wait (2^31 - 1 ms); longer ones fire at once.
pub const MAX_TIMER_MS: u64 = 2_147_483_647;
/// A century: the upper bound for durations that are not timers.
const CENTURY_MS: u64 = 3_155_760_000_000;

/// How much the library writes to the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Failures that need attention (gave up, storage errors, a blocked upgrade).
    Warn,
    /// The lifecycle, one line per step.
    Info,
    /// The lifecycle plus idle passes, timers and leadership.
    Debug,
}

impl LogLevel {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "off" => LogLevel::Off,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => return None,
        })
    }
}

/// Every option of `Outbox.open` except `token` (a JS value, kept by the bindings).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where events are POSTed.
    pub endpoint: String,
    /// IndexedDB database name.
    pub db_name: String,
    /// Events claimed per pass (seed: 10).
    pub batch_size: u32,
    /// Pass interval (seed: 2 s).
    pub processing_interval_ms: u64,
    /// Uploads in flight at once (seed: 3).
    pub max_concurrent: u32,
    /// Attempts before giving up (seed: 5).
    pub max_attempts: u32,
    /// Backoff after each failed attempt (seed: 1 s, 5 s, 30 s, 2 min, 10 min).
    pub retry: RetryPolicy,
    /// Cleanup interval (seed: hourly).
    pub cleanup_interval_ms: u64,
    /// Completed events older than this are deleted by cleanup (7 days).
    pub retention_ms: u64,
    /// Processing for longer than this means the uploader died (seed: 5 min).
    pub stale_after_ms: u64,
    /// Per-request timeout (30 s).
    pub request_timeout_ms: u64,
    /// Console verbosity.
    pub log: LogLevel,
    /// Ask `navigator.storage.persist()` at open.
    pub persist: bool,
    /// Where batches of events are POSTed (CONTRACT §2b); `None`: one request per event.
    pub batch_endpoint: Option<String>,
    /// Most events in one batch request.
    pub max_batch_events: u32,
    /// Health turns `"failing"` after this many failed answers in a row.
    pub failing_after: u32,
    /// Health turns `"stalled"` when the oldest pending event is older than this (online, started).
    pub stalled_after_ms: u64,
}

/// Option names, for the unknown-option message.
pub const OPTION_NAMES: [&str; 19] = [
    "endpoint",
    "token",
    "dbName",
    "batchSize",
    "processingIntervalMs",
    "maxConcurrent",
    "maxAttempts",
    "backoffMs",
    "cleanupIntervalMs",
    "retentionMs",
    "staleAfterMs",
    "requestTimeoutMs",
    "log",
    "persist",
    "batchEndpoint",
    "maxBatchEvents",
    "failingAfter",
    "stalledAfterMs",
    "onVersionChange",
];

/// Options holding JS values (functions), handled by the bindings rather than this struct.
pub const JS_OPTIONS: [&str; 2] = ["token", "onVersionChange"];

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: String::new(),
            db_name: DEFAULT_DB_NAME.into(),
            batch_size: 10,
            processing_interval_ms: 2_000,
            max_concurrent: 3,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry: RetryPolicy { backoff_ms: DEFAULT_BACKOFF_MS.to_vec() },
            cleanup_interval_ms: 3_600_000,
            retention_ms: 604_800_000,
            stale_after_ms: 300_000,
            request_timeout_ms: 30_000,
            log: LogLevel::Warn,
            persist: true,
            batch_endpoint: None,
            max_batch_events: 100,
            failing_after: 5,
            stalled_after_ms: 600_000,
        }
    }
}

/// Why `token` cannot travel in an `Authorization: Bearer` header (fetch would refuse every
/// request), or `None` when it can.
pub fn token_problem(token: &str) -> Option<&'static str> {
    if token.trim_matches([' ', '\t']).is_empty() {
        // A header value is sent trimmed: "Bearer " with no token at all.
        Some("nothing but spaces")
    } else {
        header_value_problem(token)
    }
}

/// Why `v` cannot be an HTTP header value, or `None` when it can: header values are Latin-1 and
/// one line. A token's rule, and an event id's (it is the `Idempotency-Key`).
pub fn header_value_problem(v: &str) -> Option<&'static str> {
    if v.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        Some("a line break or NUL character")
    } else if v.chars().any(|c| c as u32 > 0xFF) {
        Some("a character outside Latin-1 (HTTP header values cannot carry it)")
    } else {
        None
    }
}

/// The URL of one stored record, `{endpoint}/{id}`: the id (already percent-encoded) goes into
/// the path, before the endpoint's query; the fragment is dropped (fetch never sends one).
pub fn item_url(endpoint: &str, encoded_id: &str) -> String {
    let end = endpoint.find('#').unwrap_or(endpoint.len());
    let (path, query) = endpoint[..end].split_at(endpoint[..end].find('?').unwrap_or(end));
    [path.trim_end_matches('/'), "/", encoded_id, query].concat()
}

fn option(key: &str) -> String {
    format!("Outbox.open: option {key}")
}

fn integer(key: &str, arg: &Arg, min: u64, max: u64) -> Result<u64> {
    match *arg {
        Arg::Number(n) if n.is_finite() && n.fract() == 0.0 && n >= min as f64 && n <= max as f64 => Ok(n as u64),
        Arg::Number(n) => Err(Error::out_of_range(option(key), format!("must be an integer from {min} to {max} (got {})", fmt_num(n)))),
        _ => Err(Error::invalid_type(option(key), "an integer", arg.describe())),
    }
}

fn string(key: &str, arg: &Arg, max_len: usize) -> Result<String> {
    match arg {
        Arg::Str(s) if s.trim().is_empty() => Err(Error::out_of_range(option(key), "must not be empty")),
        Arg::Str(s) if s.len() > max_len => Err(Error::out_of_range(option(key), format!("must be at most {max_len} bytes"))),
        Arg::Str(s) => Ok(s.clone()),
        Arg::LongStr(_) => Err(Error::out_of_range(option(key), format!("must be at most {max_len} bytes"))),
        _ => Err(Error::invalid_type(option(key), "a non-empty string", arg.describe())),
    }
}

impl Config {
    /// Applies one option. `Ok(false)` means the key is not an option this struct holds
    /// (`token` is handled by the caller); unknown keys are the caller's error to report.
    pub fn apply(&mut self, key: &str, arg: &Arg) -> Result<bool> {
        // An explicit `undefined` means "use the default", as with destructuring defaults in JS.
        if *arg == Arg::Undefined {
            return Ok(OPTION_NAMES.contains(&key) && !JS_OPTIONS.contains(&key));
        }
        match key {
            "endpoint" => self.endpoint = string(key, arg, 8192)?,
            "dbName" => self.db_name = string(key, arg, 256)?,
            "batchSize" => self.batch_size = integer(key, arg, 1, 1000)? as u32,
            "processingIntervalMs" => self.processing_interval_ms = integer(key, arg, 1, MAX_TIMER_MS)?,
            "maxConcurrent" => self.max_concurrent = integer(key, arg, 1, 64)? as u32,
            "maxAttempts" => self.max_attempts = integer(key, arg, 1, 100)? as u32,
            "backoffMs" => {
                let Arg::Array(items) = arg else {
                    return Err(Error::invalid_type(option(key), "an array of milliseconds", arg.describe()));
                };
                if items.is_empty() || items.len() > 100 {
                    return Err(Error::out_of_range(option(key), format!("must hold 1 to 100 delays (got {})", items.len())));
                }
                let backoff = items.iter().map(|a| integer("backoffMs[]", a, 0, MAX_TIMER_MS)).collect::<Result<Vec<_>>>()?;
                self.retry = RetryPolicy { backoff_ms: backoff };
            }
            "cleanupIntervalMs" => self.cleanup_interval_ms = integer(key, arg, 1, MAX_TIMER_MS)?,
            "retentionMs" => self.retention_ms = integer(key, arg, 0, CENTURY_MS)?,
            "staleAfterMs" => self.stale_after_ms = integer(key, arg, 1, CENTURY_MS)?,
            "requestTimeoutMs" => self.request_timeout_ms = integer(key, arg, 1, MAX_TIMER_MS)?,
            "log" => {
                const LEVELS: &str = "\"debug\", \"info\", \"warn\" or \"off\"";
                if !matches!(arg, Arg::Str(_) | Arg::LongStr(_)) {
                    return Err(Error::invalid_type(option(key), LEVELS, arg.describe()));
                }
                self.log = arg
                    .as_str()
                    .and_then(LogLevel::parse)
                    .ok_or_else(|| Error::out_of_range(option(key), format!("must be {LEVELS} (got {})", arg.describe())))?
            }
            "persist" => {
                self.persist = match arg {
                    Arg::Bool(b) => *b,
                    _ => return Err(Error::invalid_type(option(key), "true or false", arg.describe())),
                }
            }
            "batchEndpoint" if *arg == Arg::Null => self.batch_endpoint = None,
            "batchEndpoint" => self.batch_endpoint = Some(string(key, arg, 8192)?),
            "maxBatchEvents" => self.max_batch_events = integer(key, arg, 1, 1000)? as u32,
            "failingAfter" => self.failing_after = integer(key, arg, 1, 1000)? as u32,
            "stalledAfterMs" => self.stalled_after_ms = integer(key, arg, 1, CENTURY_MS)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Builds a config from `(key, value)` pairs; [`JS_OPTIONS`] must have been taken out already.
    pub fn from_options<'a>(options: impl IntoIterator<Item = (&'a str, Arg)>) -> Result<Config> {
        let mut config = Config::default();
        for (key, arg) in options {
            if !config.apply(key, &arg)? && arg != Arg::Undefined {
                check_keys("Outbox.open", &[key.to_owned()], &OPTION_NAMES)?;
            }
        }
        if config.endpoint.is_empty() {
            return Err(Error::invalid_type("Outbox.open: option endpoint", "a URL string (it is required)", "undefined"));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
