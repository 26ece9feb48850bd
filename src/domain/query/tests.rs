//! Unit tests of `domain::query`.

use super::*;
use crate::domain::error::JsClass;

#[test]
fn unknown_keys_are_refused() {
    assert!(check_keys("saveWeight", &["userId".into(), "date".into()], &["userId", "date", "priority"]).is_ok());
    let e = check_keys("saveWeight", &["userID".into()], &["userId", "date", "priority"]).unwrap_err();
    assert_eq!(e.js_class(), JsClass::TypeError);
    assert!(e.to_string().contains("\"userID\"") && e.to_string().contains("userId, date, priority"), "{e}");
}

#[test]
fn user_resolution() {
    assert_eq!(resolve_user("stats", &Arg::Undefined, Some("u1")), Ok("u1".into()));
    assert_eq!(resolve_user("stats", &Arg::Str("u2".into()), Some("u1")), Ok("u2".into()));
    assert_eq!(resolve_user("stats", &Arg::Undefined, None), Err(Error::NoCurrentUser { method: "stats" }));
    // null is a value, not an omission: refused even with a current user.
    assert_eq!(resolve_user("stats", &Arg::Null, Some("u1")).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(resolve_user("stats", &Arg::Number(3.0), Some("u1")).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(resolve_user("stats", &Arg::Str(String::new()), Some("u1")).unwrap_err().js_class(), JsClass::RangeError);
}

#[test]
fn events_query() {
    let q = validate_events_query(&Arg::Str("failed".into()), &Arg::Str("u1".into()), &Arg::Number(50.0), None).unwrap();
    assert_eq!(q, EventsQuery { user_id: "u1".into(), status: Some(EventStatus::Failed), limit: Some(50) });
    let q = validate_events_query(&Arg::Undefined, &Arg::Undefined, &Arg::Undefined, Some("u9")).unwrap();
    assert_eq!(q, EventsQuery { user_id: "u9".into(), status: None, limit: None });
    assert_eq!(validate_events_query(&Arg::Str("gaveUp".into()), &Arg::Undefined, &Arg::Undefined, Some("u")).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_events_query(&Arg::Number(1.0), &Arg::Undefined, &Arg::Undefined, Some("u")).unwrap_err().js_class(), JsClass::TypeError);
    for bad in [0.0, -1.0, 1.5, 2e6, f64::NAN] {
        assert_eq!(validate_events_query(&Arg::Undefined, &Arg::Undefined, &Arg::Number(bad), Some("u")).unwrap_err().js_class(), JsClass::RangeError);
    }
    assert_eq!(validate_events_query(&Arg::Undefined, &Arg::Undefined, &Arg::Undefined, None), Err(Error::NoCurrentUser { method: "events" }));
}

#[test]
fn ids() {
    assert_eq!(validate_ids(&Arg::Array(vec![Arg::Str("a".into()), Arg::Str("b".into()), Arg::Str("a".into())])), Ok(vec!["a".into(), "b".into()]));
    assert_eq!(validate_ids(&Arg::Array(vec![])), Ok(vec![]));
    assert_eq!(validate_ids(&Arg::Str("a".into())).unwrap_err().js_class(), JsClass::TypeError);
    let e = validate_ids(&Arg::Array(vec![Arg::Str("a".into()), Arg::Number(1.0)])).unwrap_err();
    assert!(e.to_string().starts_with("resetForRetry(ids[1])"), "{e}");
    assert!(validate_ids(&Arg::Array(vec![Arg::Str(String::new())])).is_err());
    // Ids are at most 256 characters, as for update and delete.
    let e = validate_ids(&Arg::Array(vec![Arg::Str("e".repeat(257))])).unwrap_err();
    assert!(e.to_string().contains("at most 256"), "{e}");
}

#[test]
fn entries_queries() {
    let u = Arg::Undefined;
    let q = validate_entries_query(&u, &u, &u, &u, &u, Some("u1")).unwrap();
    assert_eq!(q, EntriesQuery { user_id: "u1".into(), metric: None, from: None, to: None, limit: None });
    let q = validate_entries_query(&Arg::Str("u2".into()), &Arg::Str("steps".into()), &Arg::Date(1_000.0), &Arg::Number(2_000.0), &Arg::Number(100.0), None)
        .unwrap();
    assert_eq!(q, EntriesQuery { user_id: "u2".into(), metric: Some(Metric::Steps), from: Some(1_000.0), to: Some(2_000.0), limit: Some(100) });
    assert_eq!(validate_entries_query(&u, &u, &u, &u, &u, None), Err(Error::NoCurrentUser { method: "entries" }));
    assert_eq!(validate_entries_query(&u, &Arg::Str("kcal".into()), &u, &u, &u, Some("u")).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_entries_query(&u, &u, &Arg::Str("2026".into()), &u, &u, Some("u")).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(validate_entries_query(&u, &u, &Arg::Date(f64::NAN), &u, &u, Some("u")).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_entries_query(&u, &u, &Arg::Number(5.0), &Arg::Number(4.0), &u, Some("u")).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_entries_query(&u, &u, &u, &u, &Arg::Number(0.0), Some("u")).unwrap_err().js_class(), JsClass::RangeError);
    // Equal bounds: one instant, inclusive.
    assert!(validate_entries_query(&u, &u, &Arg::Number(5.0), &Arg::Number(5.0), &u, Some("u")).is_ok());
}
