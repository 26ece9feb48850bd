//! Unit tests of `domain::config`.

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
    for (key, bad) in
        [("batchSize", Arg::Str("10".into())), ("dbName", num(1.0)), ("backoffMs", num(1000.0)), ("backoffMs", Arg::Array(vec![Arg::Str("1".into())]))]
    {
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

#[test]
fn batch_health_and_storage_options() {
    let c = Config::from_options([("endpoint", Arg::Str("/api".into()))]).unwrap();
    assert_eq!((c.persist, c.batch_endpoint.clone(), c.max_batch_events, c.failing_after, c.stalled_after_ms), (true, None, 100, 5, 600_000));
    assert_eq!(with("batchEndpoint", Arg::Str("/api/v1/progress/batch".into())).unwrap().batch_endpoint.as_deref(), Some("/api/v1/progress/batch"));
    assert_eq!(with("batchEndpoint", Arg::Null).unwrap().batch_endpoint, None);
    assert_eq!(with("batchEndpoint", Arg::Str("".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(with("maxBatchEvents", num(1000.0)).unwrap().max_batch_events, 1000);
    assert_eq!(with("maxBatchEvents", num(1001.0)).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(with("maxBatchEvents", num(0.0)).unwrap_err().js_class(), JsClass::RangeError);
    assert!(!with("persist", Arg::Bool(false)).unwrap().persist);
    assert_eq!(with("persist", Arg::Str("no".into())).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(with("failingAfter", num(1.0)).unwrap().failing_after, 1);
    assert_eq!(with("failingAfter", num(0.0)).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(with("stalledAfterMs", num(60_000.0)).unwrap().stalled_after_ms, 60_000);
}

#[test]
fn log_level_of_the_wrong_kind_is_a_type_error() {
    assert_eq!(with("log", num(5.0)).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(with("log", Arg::Str("loud".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(with("log", Arg::Str("off".into())).unwrap().log, LogLevel::Off);
    // A string too long to copy is still a string: a refused value.
    assert_eq!(with("log", Arg::LongStr(2_000_000)).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(with("endpoint", Arg::LongStr(2_000_000)).unwrap_err().js_class(), JsClass::RangeError);
}

#[test]
fn tokens_a_header_cannot_carry_are_named() {
    assert_eq!(token_problem("eyJhbGciOi.x-y_z"), None);
    assert_eq!(token_problem("caf\u{e9}"), None);
    assert!(token_problem("tok\u{20ac}n").unwrap().contains("Latin-1"));
    assert!(token_problem("abc\ndef").unwrap().contains("line break"));
    assert!(token_problem("abc\rdef").is_some());
    assert!(token_problem("abc\u{fffd}").is_some());
    // Sent trimmed, these would be "Bearer" with no token (a probe saw "   " accepted).
    assert!(token_problem("   ").unwrap().contains("spaces"));
    assert!(token_problem(" \t ").is_some());
    assert_eq!(token_problem(" a "), None);
}

#[test]
fn an_item_url_puts_the_id_in_the_path_before_the_query() {
    assert_eq!(item_url("http://h/api/v1/progress", "b-7"), "http://h/api/v1/progress/b-7");
    assert_eq!(item_url("http://h/api/v1/progress/", "b-7"), "http://h/api/v1/progress/b-7");
    assert_eq!(item_url("http://h/api/v1/progress?tenant=1", "b-7"), "http://h/api/v1/progress/b-7?tenant=1");
    assert_eq!(item_url("http://h/api/v1/progress/?tenant=1#x", "b%2F7"), "http://h/api/v1/progress/b%2F7?tenant=1");
    assert_eq!(item_url("http://h/api#frag?not-a-query", "b-7"), "http://h/api/b-7");
}

#[test]
fn only_header_values_can_be_ids() {
    assert!(header_value_problem("0f3c9a7e-2b1d-4c5e-9f00-123456789abc").is_none());
    assert!(header_value_problem("key.def-ghi_jkl~é").is_none());
    for bad in ["key-€", "key\nx", "key\rx", "key\0x", "日本"] {
        assert!(header_value_problem(bad).is_some(), "{bad:?}");
    }
}
