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
}

/// Option names, for the unknown-option message.
pub const OPTION_NAMES: [&str; 14] = [
    "endpoint", "token", "dbName", "batchSize", "processingIntervalMs", "maxConcurrent", "maxAttempts", "backoffMs",
    "cleanupIntervalMs", "retentionMs", "staleAfterMs", "requestTimeoutMs", "log", "onVersionChange",
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
        }
    }
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
                self.log = match arg {
                    Arg::Str(s) => LogLevel::parse(s),
                    _ => None,
                }
                .ok_or_else(|| Error::out_of_range(option(key), format!("must be \"debug\", \"info\", \"warn\" or \"off\" (got {})", arg.describe())))?
            }
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
mod tests {
    use super::*;
    use crate::domain::error::JsClass;

    fn num(n: f64) -> Arg {
        Arg::Number(n)
    }

    fn with(key: &'static str, arg: Arg) -> Result<Config> {
        Config::from_options([("endpoint", Arg::Str("/api/v1/progress".into())), (key, arg)])
    }

    #[test]
    fn defaults_are_the_seeds() {
        let c = Config::from_options([("endpoint", Arg::Str("/api".into()))]).unwrap();
        assert_eq!((c.batch_size, c.processing_interval_ms, c.max_concurrent, c.max_attempts), (10, 2_000, 3, 5));
        assert_eq!(c.retry.backoff_ms, [1_000, 5_000, 30_000, 120_000, 600_000]);
        assert_eq!((c.cleanup_interval_ms, c.retention_ms, c.stale_after_ms, c.request_timeout_ms), (3_600_000, 604_800_000, 300_000, 30_000));
        assert_eq!((c.db_name.as_str(), c.log), ("progress-outbox", LogLevel::Warn));
    }

    #[test]
    fn endpoint_is_required() {
        let e = Config::from_options([]).unwrap_err();
        assert_eq!(e.js_class(), JsClass::TypeError);
        assert!(e.to_string().contains("endpoint"));
        assert_eq!(Config::from_options([("endpoint", Arg::Str(" ".into()))]).unwrap_err().js_class(), JsClass::RangeError);
        assert_eq!(Config::from_options([("endpoint", num(1.0))]).unwrap_err().js_class(), JsClass::TypeError);
    }

    #[test]
    fn every_option_is_validated() {
        assert_eq!(with("batchSize", num(1000.0)).unwrap().batch_size, 1000);
        for (key, bad) in [
            ("batchSize", num(0.0)),
            ("batchSize", num(1001.0)),
            ("batchSize", num(2.5)),
            ("processingIntervalMs", num(0.0)),
            ("processingIntervalMs", num(2_147_483_648.0)),
            ("maxConcurrent", num(0.0)),
            ("maxAttempts", num(0.0)),
            ("maxAttempts", num(f64::NAN)),
            ("cleanupIntervalMs", num(-1.0)),
            ("retentionMs", num(-1.0)),
            ("staleAfterMs", num(0.0)),
            ("requestTimeoutMs", num(f64::INFINITY)),
            ("log", Arg::Str("verbose".into())),
            ("backoffMs", Arg::Array(vec![])),
            ("backoffMs", Arg::Array(vec![num(1.0), num(-1.0)])),
        ] {
            let e = with(key, bad.clone()).unwrap_err();
            assert_eq!(e.js_class(), JsClass::RangeError, "{key} = {bad:?}");
            assert!(e.to_string().contains(key.trim_end_matches("[]")) || key == "backoffMs", "{e}");
        }
        for (key, bad) in [("batchSize", Arg::Str("10".into())), ("dbName", num(1.0)), ("backoffMs", num(1000.0)), ("backoffMs", Arg::Array(vec![Arg::Str("1".into())]))] {
            assert_eq!(with(key, bad.clone()).unwrap_err().js_class(), JsClass::TypeError, "{key} = {bad:?}");
        }
        assert_eq!(with("retentionMs", num(0.0)).unwrap().retention_ms, 0);
        assert_eq!(with("backoffMs", Arg::Array(vec![num(0.0), num(10.0)])).unwrap().retry.backoff_ms, [0, 10]);
        assert_eq!(with("log", Arg::Str("debug".into())).unwrap().log, LogLevel::Debug);
        assert_eq!(with("batchSize", Arg::Undefined).unwrap().batch_size, 10, "undefined = default");
    }

    #[test]
    fn unknown_options_are_refused_with_the_known_list() {
        let e = with("batchsize", num(5.0)).unwrap_err();
        assert_eq!(e.js_class(), JsClass::TypeError);
        assert!(e.to_string().contains("option \"batchsize\"") && e.to_string().contains("known: endpoint, token, dbName, batchSize"), "{e}");
        // "token" and "onVersionChange" are not this struct's: the caller handles them.
        assert_eq!(Config::default().apply("token", &Arg::Str("t".into())), Ok(false));
        assert_eq!(Config::default().apply("onVersionChange", &Arg::Other("a function".into())), Ok(false));
    }
}
