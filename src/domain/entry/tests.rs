//! Unit tests of `domain::entry`.

use super::*;
use crate::domain::error::JsClass;

const NOW: TimeMs = 1_795_678_200_000;

fn weight(kg: Arg) -> SaveArgs {
    SaveArgs { metric: Arg::Str("weight".into()), quantity: kg, user_id: Arg::Undefined, date: Arg::Undefined, priority: Arg::Undefined }
}

fn save_weight(kg: f64) -> Result<SaveInput> {
    validate_save(SaveMethod::SaveWeight, &weight(Arg::Number(kg)), Some("u1"), NOW)
}

#[test]
fn kg_boundaries() {
    assert_eq!(save_weight(635.0).map(|i| i.quantity), Ok(635.0));
    assert_eq!(save_weight(72.5).map(|i| i.quantity), Ok(72.5));
    assert_eq!(save_weight(f64::MIN_POSITIVE).map(|i| i.quantity), Ok(f64::MIN_POSITIVE));
    for bad in [635.0001, 0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308] {
        assert_eq!(save_weight(bad).unwrap_err().js_class(), JsClass::RangeError, "{bad}");
    }
}

#[test]
fn kg_wrong_types_are_type_errors() {
    for bad in [Arg::Str("72".into()), Arg::Null, Arg::Undefined, Arg::Bool(true), Arg::Other("an object".into()), Arg::Date(0.0)] {
        let e = validate_save(SaveMethod::SaveWeight, &weight(bad.clone()), Some("u1"), NOW).unwrap_err();
        assert_eq!(e.js_class(), JsClass::TypeError, "{bad:?}");
        assert!(e.to_string().starts_with("saveWeight(kg) must be a number, got "), "{e}");
    }
    let e = validate_save(SaveMethod::SaveWeight, &weight(Arg::Str("72".into())), Some("u1"), NOW).unwrap_err();
    assert!(e.to_string().contains("the string \"72\""));
}

#[test]
fn save_any_metric() {
    let mut a = weight(Arg::Number(8042.0));
    a.metric = Arg::Str("steps".into());
    let input = validate_save(SaveMethod::Save, &a, Some("u1"), NOW).unwrap();
    assert_eq!((input.metric, input.quantity), (Metric::Steps, 8042.0));
    a.quantity = Arg::Number(8042.5);
    let e = validate_save(SaveMethod::Save, &a, Some("u1"), NOW).unwrap_err();
    assert!(e.to_string().starts_with("save(\"steps\", quantity) must be an integer"), "{e}");
    a.metric = Arg::Str("calories".into());
    let e = validate_save(SaveMethod::Save, &a, Some("u1"), NOW).unwrap_err();
    assert_eq!((e.js_class(), e.code()), (JsClass::RangeError, "OUT_OF_RANGE"));
    assert!(e.to_string().starts_with("save(metric) must be one of"), "{e}");
}

#[test]
fn user_id_rules() {
    let ok = "x".repeat(256);
    assert_eq!(validate_user_id("u", &Arg::Str(ok.clone())), Ok(ok));
    // 256 UTF-16 units of astral characters = 128 characters: accepted; one more is too long.
    assert!(validate_user_id("u", &Arg::Str("😀".repeat(128))).is_ok());
    assert!(validate_user_id("u", &Arg::Str("😀".repeat(129))).is_err());
    assert_eq!(validate_user_id("u", &Arg::Str("x".repeat(257))).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_user_id("u", &Arg::Str("".into())).unwrap_err().js_class(), JsClass::RangeError);
    // Blank as JS `trim()` sees it: a byte-order mark is no user id (a probe saw it accepted).
    assert_eq!(validate_user_id("u", &Arg::Str("\u{feff}".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_user_id("u", &Arg::Str(" \u{feff}\u{a0} ".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_user_id("u", &Arg::Str("  ".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_user_id("u", &Arg::Number(1.0)).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(validate_user_id("u", &Arg::Null).unwrap_err().js_class(), JsClass::TypeError);
}

#[test]
fn id_rules() {
    assert_eq!(validate_id("id", &Arg::Str("e1".into())), Ok("e1".into()));
    assert_eq!(validate_id("id", &Arg::Str("".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_id("id", &Arg::Str("x".repeat(257))).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_id("id", &Arg::Number(3.0)).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(validate_id("id", &Arg::LongStr(2_000_000)).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_user_id("userId", &Arg::LongStr(2_000_000)).unwrap_err().js_class(), JsClass::RangeError);
}

#[test]
fn date_boundaries() {
    let limit = NOW + MAX_FUTURE_MS;
    assert_eq!(validate_date("d", &Arg::Number(limit as f64), NOW), Ok(limit));
    assert!(validate_date("d", &Arg::Number((limit + 1) as f64), NOW).is_err());
    assert_eq!(validate_date("d", &Arg::Date(MIN_DATE_MS as f64), NOW), Ok(MIN_DATE_MS));
    assert!(validate_date("d", &Arg::Date((MIN_DATE_MS - 1) as f64), NOW).is_err());
    assert_eq!(validate_date("d", &Arg::Number(1.9), NOW), Ok(1));
    for bad in [Arg::Date(f64::NAN), Arg::Number(f64::INFINITY), Arg::Number(f64::NAN), Arg::Number(9e15)] {
        assert_eq!(validate_date("d", &bad, NOW).unwrap_err().js_class(), JsClass::RangeError, "{bad:?}");
    }
    for bad in [Arg::Str("2026-11-01".into()), Arg::Bool(false), Arg::Other("an object".into())] {
        assert_eq!(validate_date("d", &bad, NOW).unwrap_err().js_class(), JsClass::TypeError, "{bad:?}");
    }
    let msg = validate_date("d", &Arg::Number((limit + 1) as f64), NOW).unwrap_err().to_string();
    assert!(msg.contains("24 hours in the future"), "{msg}");
}

#[test]
fn priority_rules() {
    assert_eq!(validate_priority("p", &Arg::Number(1000.0)), Ok(1000));
    assert_eq!(validate_priority("p", &Arg::Number(-1000.0)), Ok(-1000));
    assert!(validate_priority("p", &Arg::Number(1001.0)).is_err());
    assert!(validate_priority("p", &Arg::Number(-1001.0)).is_err());
    assert!(validate_priority("p", &Arg::Number(1.5)).is_err());
    assert!(validate_priority("p", &Arg::Number(f64::NAN)).is_err());
    assert_eq!(validate_priority("p", &Arg::Str("1".into())).unwrap_err().js_class(), JsClass::TypeError);
}

#[test]
fn save_defaults_and_user_resolution() {
    let input = save_weight(72.5).unwrap();
    assert_eq!(input, SaveInput { metric: Metric::Weight, quantity: 72.5, user_id: "u1".into(), date: NOW, priority: 0 });
    let e = validate_save(SaveMethod::SaveWeight, &weight(Arg::Number(72.5)), None, NOW).unwrap_err();
    assert_eq!(e, Error::NoCurrentUser { method: "saveWeight" });
    let mut a = weight(Arg::Number(80.0));
    a.user_id = Arg::Str("u2".into());
    a.date = Arg::Date(1_793_491_200_000.0);
    a.priority = Arg::Number(5.0);
    let input = validate_save(SaveMethod::SaveWeight, &a, Some("u1"), NOW).unwrap();
    assert_eq!((input.user_id.as_str(), input.date, input.priority), ("u2", 1_793_491_200_000, 5));
    // The quantity is checked first: one clear error, even when several things are wrong.
    a.quantity = Arg::Null;
    a.user_id = Arg::Number(3.0);
    assert!(validate_save(SaveMethod::SaveWeight, &a, None, NOW).unwrap_err().to_string().starts_with("saveWeight(kg)"));
    a.quantity = Arg::Number(80.0);
    assert!(validate_save(SaveMethod::SaveWeight, &a, None, NOW).unwrap_err().to_string().starts_with("saveWeight(options.userId)"));
}

#[test]
fn null_options_are_refused_not_defaulted() {
    // `{ userId: null }` from an app bug must not save for whoever is logged in.
    for field in ["userId", "date", "priority"] {
        let mut a = weight(Arg::Number(80.0));
        match field {
            "userId" => a.user_id = Arg::Null,
            "date" => a.date = Arg::Null,
            _ => a.priority = Arg::Null,
        }
        let e = validate_save(SaveMethod::SaveWeight, &a, Some("u1"), NOW).unwrap_err();
        assert_eq!(e.js_class(), JsClass::TypeError, "{field}: {e}");
        assert!(e.to_string().contains(field) && e.to_string().contains("null"), "{e}");
    }
    let e = validate_update(&UpdateArgs { quantity: Arg::Null, date: Arg::Undefined }, NOW).unwrap_err();
    assert_eq!(e.js_class(), JsClass::TypeError, "{e}");
}

#[test]
fn new_entry() {
    let input = SaveInput { metric: Metric::HeartRate, quantity: 61.0, user_id: "u1".into(), date: NOW, priority: 0 };
    let e = ProgressEntry::new("e1".into(), &input, NOW + 5);
    assert_eq!((e.unit(), e.metric, e.backend_id.clone(), e.created_at, e.updated_at, e.rev), ("bpm", Metric::HeartRate, None, NOW + 5, NOW + 5, 1));
}

#[test]
fn updates() {
    let input = SaveInput { metric: Metric::Mood, quantity: 5.0, user_id: "u1".into(), date: NOW - 1000, priority: 0 };
    let entry = ProgressEntry::new("e1".into(), &input, NOW);
    let none = UpdateArgs { quantity: Arg::Undefined, date: Arg::Undefined };
    assert_eq!(validate_update(&none, NOW).unwrap_err().js_class(), JsClass::RangeError);
    let q = validate_update(&UpdateArgs { quantity: Arg::Number(7.0), date: Arg::Undefined }, NOW).unwrap();
    assert_eq!(q.change_for(&entry), Ok(Change { quantity: 7.0, date: NOW - 1000 }));
    // The entry's metric decides the rule: a mood of 7.5 is refused.
    let bad = validate_update(&UpdateArgs { quantity: Arg::Number(7.5), date: Arg::Undefined }, NOW).unwrap();
    let e = bad.change_for(&entry).unwrap_err();
    assert!(e.to_string().contains("of a \"mood\" entry must be an integer from 1 to 10"), "{e}");
    // Types are refused before the entry is even read.
    let e = validate_update(&UpdateArgs { quantity: Arg::Str("7".into()), date: Arg::Undefined }, NOW).unwrap_err();
    assert_eq!(e.js_class(), JsClass::TypeError);
    let d = validate_update(&UpdateArgs { quantity: Arg::Undefined, date: Arg::Number(1_000.0) }, NOW).unwrap();
    assert_eq!(d.change_for(&entry), Ok(Change { quantity: 5.0, date: 1_000 }));
    assert!(validate_update(&UpdateArgs { quantity: Arg::Undefined, date: Arg::Number((NOW + MAX_FUTURE_MS + 1) as f64) }, NOW).is_err());
    let mut edited = entry.clone();
    edited.edit(&Change { quantity: 8.0, date: 2_000 }, NOW + 9);
    assert_eq!((edited.quantity, edited.date, edited.updated_at, edited.created_at), (8.0, 2_000, NOW + 9, NOW));
}
