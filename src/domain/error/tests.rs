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
    assert!(Error::NoCurrentUser { method: "stats" }.to_string().contains("stats(\"u1\")"), "stats takes a string, not {{ userId }}");
    assert!(Error::NoCurrentUser { method: "saveWeight" }.to_string().contains("pass { userId }"));
    assert_eq!(Error::Closed.js_class(), JsClass::Error);
    assert_eq!(Error::UnknownEvent("x".into()).js_class(), JsClass::RangeError);
}

#[test]
fn a_pass_asked_for_no_write() {
    let e = Error::TimedOut("claiming events", Written::Maybe).of_a_pass();
    assert_eq!(e, Error::TimedOut("claiming events", Written::Read));
    assert_eq!(Error::Closed.of_a_pass(), Error::Closed);
}

#[test]
fn edit_and_storage_errors() {
    let e = Error::UnknownEntry { method: "update", id: "e9".into() };
    assert_eq!((e.js_class(), e.code()), (JsClass::RangeError, "UNKNOWN_ENTRY"));
    assert_eq!(e.to_string(), "update: no entry with id \"e9\" (unknown, or already deleted); nothing was changed");
    let e = Error::Blocked("progress-outbox".into());
    assert_eq!((e.js_class(), e.code()), (JsClass::Error, "BLOCKED"));
    assert!(e.to_string().contains("close the other tabs"));
    assert_eq!(Error::TimedOut("saving an entry", Written::Nothing).code(), "TIMEOUT");
    // A commit under way at the bound may have stored the entry: never "try again" blindly.
    let maybe = Error::TimedOut("saving an entry", Written::Maybe).to_string();
    assert!(maybe.contains("may have been stored") && !maybe.contains("Try again"), "{maybe}");
    assert!(!Error::TimedOut("listing events", Written::Read).to_string().contains("stored"));
}

#[test]
fn every_code_is_listed() {
    let all = [
        Error::invalid_type("a", "b", "c"),
        Error::out_of_range("a", "b"),
        Error::NoCurrentUser { method: "m" },
        Error::UnknownEvent("e".into()),
        Error::UnknownEntry { method: "update", id: "e".into() },
        Error::Unsupported("x".into()),
        Error::QuotaExceeded("x".into()),
        Error::Storage { operation: "op", detail: "d".into() },
        Error::NewerSchema { name: "n".into(), found: 5, supported: 4 },
        Error::Blocked("n".into()),
        Error::TimedOut("op", Written::Nothing),
        Error::VersionChanged,
        Error::Closed,
    ];
    let codes: Vec<&str> = all.iter().map(Error::code).collect();
    assert_eq!(codes, Error::CODES);
}

#[test]
fn browser_failures_say_what_happened() {
    assert_eq!(Error::from_browser("saving an entry", "QuotaExceededError: full".into()).code(), "QUOTA_EXCEEDED");
    // Site data cleared under a call: the browser's words alone said nothing useful.
    for text in ["UnknownError: Connection is closing because of: Force close delete origin", "InvalidStateError: Backend aborted error"] {
        let e = Error::from_browser("updating an entry", text.into());
        let m = e.to_string();
        assert_eq!(e.code(), "STORAGE");
        assert!(m.contains(text) && m.contains("nothing of it was stored") && m.contains("try again"), "{m}");
    }
    let plain = Error::from_browser("reading stats", "DataError: bad key".into()).to_string();
    assert_eq!(plain, "IndexedDB reading stats failed: DataError: bad key");
}
