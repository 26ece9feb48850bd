//! Metrics (CONTRACT §1 "Metrics"): every metric saved with its type and unit, stored and sent;
//! every bound of every rule accepted or refused through the JS API, nothing stored for a refusal;
//! unknown metrics refused; `saveWeight` is `save("weight")`.

use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const METRICS: [(&str, &str, f64); 6] =
    [("weight", "kg", 72.5), ("bodyFat", "%", 18.5), ("height", "cm", 180.5), ("steps", "count", 8042.0), ("heartRate", "bpm", 62.0), ("mood", "score", 7.0)];

#[wasm_bindgen_test]
async fn each_metric_is_stored_and_sent_with_its_type_and_unit() {
    let db = fresh_db("metrics-units");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let mut ids = Vec::new();
    for (metric, unit, q) in METRICS {
        let e = o.save(metric, q, r#"{"userId": "u1"}"#).await;
        assert_eq!(string(&e, "type"), metric);
        assert_eq!(string(&e, "unit"), unit, "{metric}");
        assert_eq!(num(&e, "quantity"), q);
        assert!(get(&e, "backendId").is_null());
        let evs = o.events_of("u1", &string(&e, "id")).await;
        assert_eq!(evs.len(), 1, "{metric}: one event per save");
        let meta = get(&evs[0], "metadata");
        assert_eq!((string(&meta, "type"), string(&meta, "unit"), num(&meta, "quantity")), (metric.to_owned(), unit.to_owned(), q));
        assert_eq!(string(&evs[0], "operation"), "create");
        assert_eq!(get(&evs[0], "isNewRecord").as_bool(), Some(true));
        ids.push((string(&e, "id"), metric, unit, q));
    }
    // As stored (another connection's view).
    let stored = raw(&db, "entries").await;
    assert_eq!(stored.len(), 6);
    for (id, metric, unit, q) in &ids {
        let r = stored.iter().find(|r| string(r, "id") == *id).expect("stored entry");
        assert_eq!((string(r, "type"), string(r, "unit"), num(r, "quantity")), (metric.to_string(), unit.to_string(), *q));
    }
    // And on the wire.
    o.start("u1");
    o.drained("u1", Some(6), 5000).await;
    let posts = srv.of("POST");
    assert_eq!(posts.len(), 6);
    for (id, metric, unit, q) in &ids {
        let p = posts.iter().find(|p| string(&get(p, "body"), "localId") == *id).expect("a POST for every entry");
        let b = get(p, "body");
        assert_eq!((string(&b, "type"), string(&b, "unit"), num(&b, "quantity")), (metric.to_string(), unit.to_string(), *q));
    }
    for e in o.entries_of("u1").await {
        assert!(get(&e, "backendId").is_string(), "every entry acknowledged: {}", show(&e));
    }
    finish(&db, &[&o]).await;
}

/// (metric, accepted quantities, refused numbers (RangeError)).
fn bounds() -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
    vec![
        ("weight", vec![f64::MIN_POSITIVE, 0.001, 72.5, 635.0], vec![0.0, -0.0, -1.0, 635.0001, 1000.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        ("bodyFat", vec![1.0, 18.25, 75.0], vec![0.999, 0.0, 75.001, 100.0, f64::NAN, f64::INFINITY]),
        ("height", vec![30.0, 180.5, 300.0], vec![29.999, 300.001, 0.0, f64::NAN, f64::NEG_INFINITY]),
        ("steps", vec![0.0, 1.0, 8042.0, 200_000.0], vec![-1.0, 200_001.0, 1.5, 0.5, 199_999.9, f64::NAN, f64::INFINITY]),
        ("heartRate", vec![20.0, 62.0, 300.0], vec![19.0, 301.0, 60.5, 0.0, f64::NAN]),
        ("mood", vec![1.0, 5.0, 10.0], vec![0.0, 11.0, 5.5, -1.0, f64::INFINITY]),
    ]
}

#[wasm_bindgen_test]
async fn every_bound_is_accepted_or_refused_with_the_right_error_and_nothing_stored() {
    let db = fresh_db("metrics-bounds");
    let _srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let opts = || json(r#"{"userId": "u1"}"#);
    let mut accepted = 0;
    for (metric, good, bad) in bounds() {
        for q in bad {
            let msg = expect_error(o.call("save", &[s(metric), n(q), opts()]).await, "RangeError", "OUT_OF_RANGE", &format!("save({metric}, {q})"));
            assert!(msg.contains(metric), "the message names the metric: {msg}");
        }
        // Not numbers at all.
        for q in [s("72"), JsValue::NULL, JsValue::UNDEFINED, json("{}"), json("[5]"), JsValue::TRUE] {
            expect_error(o.call("save", &[s(metric), q.clone(), opts()]).await, "TypeError", "INVALID_TYPE", &format!("save({metric}, {q:?})"));
        }
        assert_eq!(raw(&db, "entries").await.len(), accepted, "{metric}: a refused save stored an entry");
        assert_eq!(raw(&db, "events").await.len(), accepted, "{metric}: a refused save stored an event");
        for q in good {
            let e = o.ok("save", &[s(metric), n(q), opts()]).await;
            assert_eq!(num(&e, "quantity"), q, "{metric}");
            accepted += 1;
        }
    }
    assert_eq!(raw(&db, "entries").await.len(), accepted);
    assert_eq!(raw(&db, "events").await.len(), accepted);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn unknown_metrics_are_refused_and_nothing_is_stored() {
    let db = fresh_db("metrics-unknown");
    let _srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let opts = || json(r#"{"userId": "u1"}"#);
    for m in ["bmi", "Weight", "WEIGHT", "weight ", "", "heart_rate", "__proto__", "toString"] {
        let msg = expect_error(o.call("save", &[s(m), n(5.0), opts()]).await, "RangeError", "OUT_OF_RANGE", &format!("save({m:?})"));
        assert!(msg.contains("weight") && msg.contains("mood"), "the message lists the metrics: {msg}");
    }
    for m in [JsValue::NULL, JsValue::UNDEFINED, n(1.0), json(r#"{"name": "weight"}"#), json(r#"["weight"]"#)] {
        expect_error(o.call("save", &[m.clone(), n(5.0), opts()]).await, "TypeError", "INVALID_TYPE", &format!("save({m:?})"));
    }
    // The options of saveWeight, with the same rules: an unknown option is refused.
    expect_error(o.call("save", &[s("steps"), n(5.0), json(r#"{"userID": "u1"}"#)]).await, "TypeError", "INVALID_TYPE", "save with userID");
    expect_error(o.call("save", &[s("steps"), n(5.0), json(r#"{"userId": "u1", "unit": "count"}"#)]).await, "TypeError", "INVALID_TYPE", "save with unit");
    expect_error(
        o.call("save", &[s("steps"), n(5.0), json(r#"{"userId": "u1", "priority": 1001}"#)]).await,
        "RangeError",
        "OUT_OF_RANGE",
        "save with priority 1001",
    );
    expect_error(o.call("save", &[s("steps"), n(5.0)]).await, "TypeError", "NO_USER", "save without a user");
    assert!(raw(&db, "entries").await.is_empty());
    assert!(raw(&db, "events").await.is_empty());
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn save_weight_is_save_weight() {
    let db = fresh_db("metrics-saveweight");
    let _srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let a = o.ok("saveWeight", &[n(72.5), json(r#"{"userId": "u1", "date": 1700000000000, "priority": 3}"#)]).await;
    let b = o.save("weight", 72.5, r#"{"userId": "u1", "date": 1700000000000, "priority": 3}"#).await;
    for key in ["userId", "type", "quantity", "unit", "date", "backendId"] {
        assert_eq!(show(&get(&a, key)), show(&get(&b, key)), "entry field {key}");
    }
    let ea = o.events_of("u1", &string(&a, "id")).await.remove(0);
    let eb = o.events_of("u1", &string(&b, "id")).await.remove(0);
    for key in ["operation", "status", "metadata", "isNewRecord", "priority", "attemptCount", "maxAttempts"] {
        assert_eq!(show(&get(&ea, key)), show(&get(&eb, key)), "event field {key}");
    }
    // The same rule, the same refusals.
    for q in [0.0, 635.5, f64::NAN] {
        expect_error(o.call("saveWeight", &[n(q), json(r#"{"userId": "u1"}"#)]).await, "RangeError", "OUT_OF_RANGE", &format!("saveWeight({q})"));
        expect_error(o.call("save", &[s("weight"), n(q), json(r#"{"userId": "u1"}"#)]).await, "RangeError", "OUT_OF_RANGE", &format!("save(weight, {q})"));
    }
    o.ok("saveWeight", &[n(635.0), json(r#"{"userId": "u1"}"#)]).await;
    assert_eq!(raw(&db, "entries").await.len(), 3);
    finish(&db, &[&o]).await;
}
