//! Unit tests of `domain::entry`.

use super::*;
use crate::domain::error::JsClass;

const NOW: TimeMs = 1_795_678_200_000;

fn args(kg: Arg) -> SaveArgs {
    SaveArgs { kg, user_id: Arg::Undefined, date: Arg::Undefined, priority: Arg::Undefined }
}

#[test]
fn kg_boundaries() {
    assert_eq!(validate_kg(&Arg::Number(635.0)), Ok(635.0));
    assert_eq!(validate_kg(&Arg::Number(72.5)), Ok(72.5));
    assert_eq!(validate_kg(&Arg::Number(f64::MIN_POSITIVE)), Ok(f64::MIN_POSITIVE));
    for bad in [635.0001, 0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308] {
        let e = validate_kg(&Arg::Number(bad)).unwrap_err();
        assert_eq!(e.js_class(), JsClass::RangeError, "{bad}");
    }
}

#[test]
fn kg_wrong_types_are_type_errors() {
    for bad in [Arg::Str("72".into()), Arg::Null, Arg::Undefined, Arg::Bool(true), Arg::Other("an object".into()), Arg::Date(0.0)] {
        let e = validate_kg(&bad).unwrap_err();
        assert_eq!(e.js_class(), JsClass::TypeError, "{bad:?}");
        assert!(e.to_string().starts_with("saveWeight(kg) must be a number of kilograms, got "), "{e}");
    }
    assert!(validate_kg(&Arg::Str("72".into())).unwrap_err().to_string().contains("the string \"72\""));
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
    assert_eq!(validate_user_id("u", &Arg::Str("  ".into())).unwrap_err().js_class(), JsClass::RangeError);
    assert_eq!(validate_user_id("u", &Arg::Number(1.0)).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(validate_user_id("u", &Arg::Null).unwrap_err().js_class(), JsClass::TypeError);
}

#[test]
fn date_boundaries() {
    let limit = NOW + MAX_FUTURE_MS;
    assert_eq!(validate_date(&Arg::Number(limit as f64), NOW), Ok(limit));
    assert!(validate_date(&Arg::Number((limit + 1) as f64), NOW).is_err());
    assert_eq!(validate_date(&Arg::Date(MIN_DATE_MS as f64), NOW), Ok(MIN_DATE_MS));
    assert!(validate_date(&Arg::Date((MIN_DATE_MS - 1) as f64), NOW).is_err());
    assert_eq!(validate_date(&Arg::Number(1.9), NOW), Ok(1));
    for bad in [Arg::Date(f64::NAN), Arg::Number(f64::INFINITY), Arg::Number(f64::NAN), Arg::Number(9e15)] {
        assert_eq!(validate_date(&bad, NOW).unwrap_err().js_class(), JsClass::RangeError, "{bad:?}");
    }
    for bad in [Arg::Str("2026-11-01".into()), Arg::Bool(false), Arg::Other("an object".into())] {
        assert_eq!(validate_date(&bad, NOW).unwrap_err().js_class(), JsClass::TypeError, "{bad:?}");
    }
    let msg = validate_date(&Arg::Number((limit + 1) as f64), NOW).unwrap_err().to_string();
    assert!(msg.contains("24 hours in the future"), "{msg}");
}

#[test]
fn priority_rules() {
    assert_eq!(validate_priority(&Arg::Number(1000.0)), Ok(1000));
    assert_eq!(validate_priority(&Arg::Number(-1000.0)), Ok(-1000));
    assert!(validate_priority(&Arg::Number(1001.0)).is_err());
    assert!(validate_priority(&Arg::Number(-1001.0)).is_err());
    assert!(validate_priority(&Arg::Number(1.5)).is_err());
    assert!(validate_priority(&Arg::Number(f64::NAN)).is_err());
    assert_eq!(validate_priority(&Arg::Str("1".into())).unwrap_err().js_class(), JsClass::TypeError);
}

#[test]
fn save_defaults_and_user_resolution() {
    let input = validate_save(&args(Arg::Number(72.5)), Some("u1"), NOW).unwrap();
    assert_eq!(input, WeightInput { kg: 72.5, user_id: "u1".into(), date: NOW, priority: 0 });
    let e = validate_save(&args(Arg::Number(72.5)), None, NOW).unwrap_err();
    assert_eq!(e, Error::NoCurrentUser { method: "saveWeight" });
    let mut a = args(Arg::Number(80.0));
    a.user_id = Arg::Str("u2".into());
    a.date = Arg::Date(1_793_491_200_000.0);
    a.priority = Arg::Number(5.0);
    let input = validate_save(&a, Some("u1"), NOW).unwrap();
    assert_eq!((input.user_id.as_str(), input.date, input.priority), ("u2", 1_793_491_200_000, 5));
    // kg is checked first: one clear error, even when several things are wrong.
    a.kg = Arg::Null;
    a.user_id = Arg::Number(3.0);
    assert!(validate_save(&a, None, NOW).unwrap_err().to_string().starts_with("saveWeight(kg)"));
}

#[test]
fn entry_and_upload_body() {
    let input = WeightInput { kg: 72.5, user_id: "u1".into(), date: NOW, priority: 0 };
    let e = ProgressEntry::new_weight("e1".into(), &input, NOW + 5);
    assert_eq!((e.unit.as_str(), e.metric, e.backend_id.clone(), e.created_at, e.updated_at), ("kg", MetricType::Weight, None, NOW + 5, NOW + 5));
    let body = e.upload_body();
    assert_eq!(body, UploadBody { local_id: "e1", metric: "weight", quantity: 72.5, unit: "kg", date_iso: "2026-11-26T07:30:00.000Z".into() });
}
