//! Unit tests of `domain::metric`: every bound of every metric.

use super::*;
use crate::domain::error::JsClass;

fn ok(m: Metric, x: f64) -> bool {
    m.validate("q", &Arg::Number(x)).is_ok()
}

#[test]
fn names_and_units_are_the_contracts() {
    let table: Vec<(&str, &str)> = Metric::ALL.iter().map(|m| (m.name(), m.unit())).collect();
    assert_eq!(table, [("weight", "kg"), ("bodyFat", "%"), ("height", "cm"), ("steps", "count"), ("heartRate", "bpm"), ("mood", "score")]);
    for m in Metric::ALL {
        assert_eq!(Metric::parse(m.name()), Some(m));
    }
    assert_eq!(Metric::parse("Weight"), None);
    assert_eq!(Metric::parse("bodyfat"), None);
}

#[test]
fn weight_bounds() {
    assert!(ok(Metric::Weight, 635.0) && ok(Metric::Weight, 0.001) && ok(Metric::Weight, f64::MIN_POSITIVE) && ok(Metric::Weight, 72.5));
    assert!(!ok(Metric::Weight, 0.0) && !ok(Metric::Weight, -0.0) && !ok(Metric::Weight, 635.0001) && !ok(Metric::Weight, -1.0));
}

#[test]
fn body_fat_bounds() {
    assert!(ok(Metric::BodyFat, 1.0) && ok(Metric::BodyFat, 75.0) && ok(Metric::BodyFat, 22.4));
    assert!(!ok(Metric::BodyFat, 0.9999) && !ok(Metric::BodyFat, 75.0001));
}

#[test]
fn height_bounds() {
    assert!(ok(Metric::Height, 30.0) && ok(Metric::Height, 300.0) && ok(Metric::Height, 180.5));
    assert!(!ok(Metric::Height, 29.999) && !ok(Metric::Height, 300.001));
}

#[test]
fn steps_bounds() {
    assert!(ok(Metric::Steps, 0.0) && ok(Metric::Steps, 200_000.0) && ok(Metric::Steps, 8042.0));
    assert!(!ok(Metric::Steps, -1.0) && !ok(Metric::Steps, 200_001.0) && !ok(Metric::Steps, 8042.5));
    // -0 is accepted and stored as 0.
    assert_eq!(Metric::Steps.validate("q", &Arg::Number(-0.0)).map(|v| v.is_sign_positive()), Ok(true));
}

#[test]
fn heart_rate_bounds() {
    assert!(ok(Metric::HeartRate, 20.0) && ok(Metric::HeartRate, 300.0));
    assert!(!ok(Metric::HeartRate, 19.0) && !ok(Metric::HeartRate, 301.0) && !ok(Metric::HeartRate, 60.5));
}

#[test]
fn mood_bounds() {
    assert!(ok(Metric::Mood, 1.0) && ok(Metric::Mood, 10.0));
    assert!(!ok(Metric::Mood, 0.0) && !ok(Metric::Mood, 11.0) && !ok(Metric::Mood, 5.5));
}

#[test]
fn non_finite_and_wrong_types() {
    for m in Metric::ALL {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(m.validate("q", &Arg::Number(bad)).unwrap_err().js_class(), JsClass::RangeError, "{m:?} {bad}");
        }
        for bad in [Arg::Str("5".into()), Arg::Null, Arg::Undefined, Arg::Bool(true), Arg::Other("an object".into())] {
            assert_eq!(m.validate("q", &bad).unwrap_err().js_class(), JsClass::TypeError, "{m:?} {bad:?}");
        }
    }
}

#[test]
fn messages_name_the_rule() {
    let e = Metric::Steps.validate("save(\"steps\", quantity)", &Arg::Number(1.5)).unwrap_err();
    assert_eq!(e.to_string(), "save(\"steps\", quantity) must be an integer from 0 to 200000 count (got 1.5)");
    let e = Metric::Weight.validate("saveWeight(kg)", &Arg::Number(700.0)).unwrap_err();
    assert_eq!(e.to_string(), "saveWeight(kg) must be a finite number more than 0 and at most 635 kg (got 700)");
}

#[test]
fn metric_argument() {
    assert_eq!(Metric::from_arg("m", &Arg::Str("mood".into())), Ok(Metric::Mood));
    let e = Metric::from_arg("m", &Arg::Str("calories".into())).unwrap_err();
    assert_eq!(e.js_class(), JsClass::RangeError);
    assert!(e.to_string().contains("\"weight\", \"bodyFat\", \"height\", \"steps\", \"heartRate\", \"mood\""), "{e}");
    assert_eq!(Metric::from_arg("m", &Arg::Number(1.0)).unwrap_err().js_class(), JsClass::TypeError);
    assert_eq!(Metric::from_arg("m", &Arg::LongStr(2_000_000)).unwrap_err().js_class(), JsClass::RangeError);
}
