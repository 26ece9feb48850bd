//! Unit tests of `domain::error`.

use super::*;

#[test]
fn classes_and_codes() {
    let e = Error::invalid_type("saveWeight(kg)", "a finite number", "string");
    assert_eq!(e.js_class(), JsClass::TypeError);
    assert_eq!(e.to_string(), "saveWeight(kg) must be a finite number, got string");
    assert_eq!(e.code(), "INVALID_TYPE");
    let e = Error::out_of_range("saveWeight(kg)", "must be at most 635 (got 700)");
    assert_eq!(e.js_class(), JsClass::RangeError);
    assert_eq!(Error::NoCurrentUser { method: "stats" }.js_class(), JsClass::TypeError);
    assert!(Error::NoCurrentUser { method: "stats" }.to_string().contains("outbox.start(userId)"));
    assert_eq!(Error::Closed.js_class(), JsClass::Error);
    assert_eq!(Error::UnknownEvent("x".into()).js_class(), JsClass::RangeError);
}
