//! Unit tests of `domain::retry`: the contract's response table, row by row.

use super::*;

const NOW: TimeMs = 1_795_678_200_000;

fn resp(status: u16) -> Outcome {
    Outcome::Response { status, retry_after: None, backend_id: None, plain: true, body_excerpt: String::new() }
}

fn first(operation: Operation) -> Attempt {
    Attempt { operation, attempt_count: 0, tries: 0, max_attempts: 5, maybe_stored: false }
}

fn create() -> Attempt {
    first(Operation::Create)
}

fn decide_now(o: &Outcome, a: Attempt) -> Decision {
    decide(o, a, &RetryPolicy::default(), NOW)
}

#[test]
fn contract_table() {
    for s in [200, 201, 204, 299] {
        assert_eq!(classify_status(s), StatusClass::Success, "{s}");
    }
    assert_eq!(classify_status(401), StatusClass::Unauthorized);
    for s in [300, 301, 302, 303, 307, 308] {
        assert_eq!(classify_status(s), StatusClass::Redirect, "{s}");
    }
    for s in [408, 409, 425, 429, 500, 502, 503, 504, 599, 100, 0] {
        assert_eq!(classify_status(s), StatusClass::Transient, "{s}");
    }
    for s in [400, 403, 404, 405, 410, 413, 415, 422, 451, 499] {
        assert_eq!(classify_status(s), StatusClass::Permanent, "{s}");
    }
}

#[test]
fn backoff_schedule_is_the_seeds() {
    let p = RetryPolicy::default();
    let waits: Vec<u64> = (1..=7).map(|a| p.backoff(a)).collect();
    assert_eq!(waits, [1_000, 5_000, 30_000, 120_000, 600_000, 600_000, 600_000]);
    assert_eq!(p.backoff(0), 1_000);
    assert_eq!(p.last_step(), 600_000);
    assert_eq!(p.longest_wait(), MAX_RETRY_AFTER_MS);
    assert_eq!(RetryPolicy { backoff_ms: vec![] }.backoff(3), 0);
}

#[test]
fn create_needs_an_id() {
    let ok = Outcome::Response { status: 201, retry_after: None, backend_id: Some("42".into()), plain: true, body_excerpt: "{\"id\":42}".into() };
    assert_eq!(decide_now(&ok, create()), Decision::Complete { backend_id: Some("42".into()) });
    let portal = Outcome::Response { status: 200, retry_after: None, backend_id: None, plain: false, body_excerpt: "<html>portal</html>".into() };
    match decide_now(&portal, create()) {
        Decision::Retry { at, message, counted, sent, .. } => {
            assert_eq!(at, NOW + 1_000);
            assert!(counted && sent);
            assert!(message.contains("without an \"id\"") && message.contains("<html>portal</html>"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn update_completes_on_any_plain_2xx() {
    assert_eq!(decide_now(&resp(204), first(Operation::Update)), Decision::Complete { backend_id: None });
    let html = Outcome::Response { status: 200, retry_after: None, backend_id: None, plain: false, body_excerpt: "<html>".into() };
    assert!(matches!(decide_now(&html, first(Operation::Update)), Decision::Retry { counted: true, .. }));
}

#[test]
fn delete_completes_on_2xx_and_404() {
    assert_eq!(decide_now(&resp(204), first(Operation::Delete)), Decision::Complete { backend_id: None });
    assert_eq!(decide_now(&resp(200), first(Operation::Delete)), Decision::Complete { backend_id: None });
    assert_eq!(decide_now(&resp(404), first(Operation::Delete)), Decision::Complete { backend_id: None });
    // 404 on a create or update is a refusal.
    assert!(matches!(decide_now(&resp(404), create()), Decision::GiveUp { refused: true, .. }));
    assert!(matches!(decide_now(&resp(404), first(Operation::Update)), Decision::GiveUp { refused: true, .. }));
}

#[test]
fn permanent_gives_up_at_once_with_status_and_body() {
    let o =
        Outcome::Response { status: 422, retry_after: None, backend_id: None, plain: true, body_excerpt: "{\"error\": \"quantity\n out of range\"}".into() };
    match decide_now(&o, create()) {
        Decision::GiveUp { message, refused, .. } => {
            assert!(refused);
            assert!(message.starts_with("HTTP 422: {\"error\": \"quantity out of range\"}"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn transient_answers_count_and_give_up_after_max_attempts() {
    for status in [408, 409, 425, 429, 500, 503, 401, 302] {
        assert!(matches!(decide_now(&resp(status), create()), Decision::Retry { counted: true, sent: true, .. }), "{status}");
        let last = Attempt { attempt_count: 4, tries: 4, ..create() };
        match decide_now(&resp(status), last) {
            Decision::GiveUp { message, refused, .. } => {
                assert!(!refused);
                assert!(message.ends_with("(gave up after 5 failed answers)"), "{message}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[test]
fn redirects_are_answers_that_say_so() {
    for o in [Outcome::OpaqueRedirect, resp(307), resp(301)] {
        match decide_now(&o, create()) {
            Decision::Retry { message, counted, .. } => {
                assert!(counted);
                assert!(message.contains("redirect") && message.contains("never followed"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn no_answer_never_counts_and_never_gives_up() {
    let policy = RetryPolicy::default();
    for o in [Outcome::Network("Failed to fetch".into()), Outcome::Timeout(30_000), Outcome::Token("threw".into())] {
        for tries in [0u32, 4, 5, 50, 10_000] {
            let a = Attempt { attempt_count: 4, tries, ..create() };
            match decide(&o, a, &policy, NOW) {
                Decision::Retry { at, wait_ms, counted, sent, .. } => {
                    assert!(!counted, "{o:?}");
                    assert_eq!(sent, !matches!(o, Outcome::Token(_)));
                    assert_eq!(wait_ms, policy.backoff(tries + 1));
                    assert_eq!(at, NOW + wait_ms as i64);
                }
                other => panic!("{o:?} {tries}: {other:?}"),
            }
        }
    }
}

#[test]
fn backoff_follows_the_tries_and_retry_after_wins_when_longer() {
    let policy = RetryPolicy::default();
    for (tries, wait) in [(0, 1_000), (1, 5_000), (2, 30_000), (3, 120_000)] {
        let a = Attempt { attempt_count: tries, tries, ..create() };
        assert!(matches!(decide(&resp(503), a, &policy, NOW), Decision::Retry { wait_ms, .. } if wait_ms == wait));
    }
    let ra = |v: &str| Outcome::Response { status: 429, retry_after: Some(v.into()), backend_id: None, plain: true, body_excerpt: String::new() };
    assert!(matches!(decide(&ra("120"), create(), &policy, NOW), Decision::Retry { wait_ms: 120_000, .. }));
    // Shorter than the backoff: the backoff wins.
    let a = Attempt { attempt_count: 2, tries: 2, ..create() };
    assert!(matches!(decide(&ra("1"), a, &policy, NOW), Decision::Retry { wait_ms: 30_000, .. }));
    assert!(matches!(decide(&ra("Thu, 26 Nov 2026 07:35:00 GMT"), create(), &policy, NOW), Decision::Retry { wait_ms: 300_000, .. }));
    assert!(matches!(decide(&ra("99999999999999999999"), create(), &policy, NOW), Decision::Retry { wait_ms: MAX_RETRY_AFTER_MS, .. }));
}

#[test]
fn a_redirect_honours_retry_after_like_any_transient_answer() {
    // CONTRACT §2: 3xx is transient, retried after max(backoff, Retry-After); a batch item can
    // carry one (a single request's redirect is opaque to the page).
    let item = Outcome::Response { status: 307, retry_after: Some("60".into()), backend_id: None, plain: true, body_excerpt: String::new() };
    assert!(matches!(decide_now(&item, create()), Decision::Retry { wait_ms: 60_000, counted: true, .. }));
    let whole = Outcome::Batch { status: 303, retry_after: Some("90".into()), detail: String::new() };
    assert!(matches!(decide_now(&whole, create()), Decision::Retry { wait_ms: 90_000, .. }));
}

#[test]
fn retry_after_forms() {
    assert_eq!(parse_retry_after("120", NOW), Some(120_000));
    assert_eq!(parse_retry_after(" 0 ", NOW), Some(0));
    assert_eq!(parse_retry_after("-5", NOW), None);
    assert_eq!(parse_retry_after("soon", NOW), None);
    assert_eq!(parse_retry_after("", NOW), None);
    assert_eq!(parse_retry_after("Thu, 26 Nov 2026 07:31:00 GMT", NOW), Some(60_000));
    assert_eq!(parse_retry_after("Thursday, 26-Nov-26 07:31:00 GMT", NOW), Some(60_000));
    assert_eq!(parse_retry_after("Thu Nov 26 07:31:00 2026", NOW), Some(60_000));
    assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", NOW), Some(0));
    assert_eq!(parse_retry_after("Fri, 27 Nov 2099 07:31:00 GMT", NOW), Some(MAX_RETRY_AFTER_MS));
    assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW), Some(MAX_RETRY_AFTER_MS));
    // Years no HTTP date has (a probe found some of these wrapped into the past: no wait at all).
    for bad in [
        "Sat, 01 Jan 292277026596 00:00:00 GMT",
        "Sat, 01 Jan 106751991167 00:00:00 GMT",
        "Sat, 01 Jan 584556019 00:00:00 GMT",
        "Sat, 01 Jan 9223372036854775807 00:00:00 GMT",
        "Sat Jan 1 00:00:00 99999999999999",
        "Sat, 01 Jan 10000 00:00:00 GMT",
        "Sat, 01 Jan 0 00:00:00 GMT",
        "Sat, 01 Jan -5 00:00:00 GMT",
    ] {
        assert_eq!(parse_retry_after(bad, NOW), None, "{bad}");
    }
}

#[test]
fn persisted_deadlines_survive_clock_jumps() {
    let longest = RetryPolicy::default().longest_wait();
    // Due when the time has come.
    assert!(is_due(NOW, Some(60_000), NOW, longest));
    assert!(!is_due(NOW + 30_000, Some(60_000), NOW, longest));
    // Written while the clock was an hour ahead: 60 s of backoff now lies an hour away. Due.
    assert!(is_due(NOW + 3_600_000 + 60_000, Some(60_000), NOW, longest));
    // Ten years ahead, then corrected: due.
    assert!(is_due(NOW + 315_360_000_000, Some(600_000), NOW, longest));
    // Without a recorded wait (an older record), the longest possible wait bounds it.
    assert!(!is_due(NOW + 3_600_000, None, NOW, longest));
    assert!(is_due(NOW + longest as i64 + 2_000, None, NOW, longest));
    assert_eq!(remaining_wait(NOW + 30_000, Some(60_000), NOW, longest), 30_000);
    assert_eq!(remaining_wait(NOW + 3_600_000, Some(60_000), NOW, longest), 0);
}

#[test]
fn backend_ids_that_cannot_name_the_entry_in_a_url_are_refused() {
    assert_eq!(usable_backend_id("b-7".into()), Some("b-7".into()));
    assert_eq!(usable_backend_id("...".into()), Some("...".into()));
    assert_eq!(usable_backend_id("a/..".into()), Some("a/..".into()), "encoded as one segment");
    for bad in ["", ".", ".."] {
        assert_eq!(usable_backend_id(bad.into()), None, "{bad:?}");
    }
    assert!(usable_backend_id("x".repeat(MAX_BACKEND_ID_BYTES)).is_some());
    assert_eq!(usable_backend_id("x".repeat(MAX_BACKEND_ID_BYTES + 1)), None, "too long for later URLs");
    assert_eq!(usable_backend_id("/".repeat(1_000_000)), None);
    assert!(exact_numeric_id(42.0) && exact_numeric_id(9_007_199_254_740_991.0) && exact_numeric_id(-3.0) && exact_numeric_id(1.5));
    assert!(!exact_numeric_id(9_007_199_254_740_992.0), "2^53 may be a rounded 2^53 + 1");
    assert!(!exact_numeric_id(f64::NAN) && !exact_numeric_id(f64::INFINITY));
}

#[test]
fn an_update_without_a_backend_id_waits_while_its_entry_is_stored_and_gives_up_when_it_is_gone() {
    match unaddressable(EntryKept::Stored { since: 0, looks: 3 }, 1_000) {
        Decision::Retry { at, wait_ms, counted, sent, .. } => assert_eq!((at, wait_ms, counted, sent), (61_000, NO_BACKEND_ID_WAIT_MS, false, false)),
        other => panic!("{other:?}"),
    }
    // Stored without an id for 7 days since the edit was written: none will come.
    match unaddressable(EntryKept::Stored { since: 0, looks: 3 }, SET_ASIDE_WAIT_MS as i64) {
        Decision::GiveUp { message, refused, .. } => {
            assert!(refused);
            assert!(message.contains("none came within 7 days"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(unaddressable(EntryKept::Stored { since: 5_000, looks: 3 }, 1_000), Decision::Retry { .. }), "a clock set back never ends it early");
    // Written while the clock was ten years ahead: the count of looks ends it all the same.
    let ten_years = 10 * 365 * 86_400_000;
    assert!(matches!(unaddressable(EntryKept::Stored { since: ten_years, looks: MAX_LOOKS - 1 }, 1_000), Decision::Retry { .. }));
    assert!(matches!(unaddressable(EntryKept::Stored { since: ten_years, looks: MAX_LOOKS }, 1_000), Decision::GiveUp { refused: true, .. }));
    assert_eq!(MAX_LOOKS, 10_080);
    // Kept aside unreadable: a version that reads it may restore it with its id, so it waits, for
    // at most SET_ASIDE_WAIT_MS from the setting aside.
    let day = 86_400_000;
    // A stamp ahead of now (the clock set back since) counts as now: the wait never ends early.
    for (since, now) in [(1_000, 1_000), (1_000, 1_000 + 7 * day - 1), (2_000, 1_500), (10 * 365 * day, 1_000), (i64::MAX, i64::MIN)] {
        match unaddressable(EntryKept::SetAside { since }, now) {
            Decision::Retry { wait_ms, counted, message, .. } => {
                assert_eq!((wait_ms, counted), (NO_BACKEND_ID_WAIT_MS, false));
                assert!(message.contains("unreadable"), "{message}");
            }
            other => panic!("set aside at {since}, now {now}: {other:?}"),
        }
    }
    // The wait is over.
    for (since, now) in [(1_000, 1_000 + 7 * day), (0, i64::MAX), (i64::MIN, 0)] {
        match unaddressable(EntryKept::SetAside { since }, now) {
            Decision::GiveUp { message, refused, .. } => {
                assert!(refused, "nothing reached the server: it holds nothing back");
                assert!(message.contains("no version restored it within 7 days"), "{message}");
            }
            other => panic!("set aside at {since}, now {now}: {other:?}"),
        }
    }
    assert_eq!(SET_ASIDE_WAIT_MS, 7 * day as u64);
    match unaddressable(EntryKept::Nowhere, 1_000) {
        Decision::GiveUp { message, refused, .. } => {
            assert!(refused, "nothing reached the server: it holds nothing back");
            assert!(message.contains("no longer stored"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refusal_after_a_request_that_may_have_been_stored_is_no_proof_it_never_was() {
    // First request: a 4xx is a refusal (nothing of it on the server).
    assert!(matches!(decide_now(&resp(413), create()), Decision::GiveUp { refused: true, .. }));
    // After one that may have been stored: it gives up without claiming that.
    let after = Attempt { maybe_stored: true, attempt_count: 1, tries: 1, ..create() };
    match decide_now(&resp(413), after) {
        Decision::GiveUp { refused, message, .. } => {
            assert!(!refused);
            assert!(message.contains("may have been stored"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // An update or delete is refused all the same: the entry's next edit carries its whole state.
    for op in [Operation::Update, Operation::Delete] {
        let after = Attempt { maybe_stored: true, attempt_count: 1, tries: 1, ..first(op) };
        assert!(matches!(decide_now(&resp(403), after), Decision::GiveUp { refused: true, maybe_stored: true, .. }), "{op:?}");
    }
    // Which failures may have stored what was sent.
    for (o, maybe) in [
        (resp(503), true),
        (resp(500), true),
        (resp(409), true),
        (resp(429), false),
        (resp(408), false),
        (resp(425), false),
        (resp(302), true),
        (resp(303), true),
        (Outcome::OpaqueRedirect, true),
        (resp(401), false),
        (Outcome::Timeout(30_000), true),
        (Outcome::Network("reset".into()), true),
        (Outcome::Token("none".into()), false),
        (Outcome::BatchTooLarge(5), false),
    ] {
        assert_eq!(o.maybe_stored(), maybe, "{o:?}");
        if let Decision::Retry { maybe_stored, .. } = decide_now(&o, create()) {
            assert_eq!(maybe_stored, maybe, "{o:?}");
        }
        // The same answer to the last attempt: giving up remembers it too.
        if o.answered() && !matches!(o, Outcome::BatchTooLarge(_)) {
            let last = Attempt { attempt_count: 4, tries: 4, ..create() };
            match decide_now(&o, last) {
                Decision::GiveUp { maybe_stored, refused: false, .. } => assert_eq!(maybe_stored, maybe, "{o:?}"),
                other => panic!("{o:?}: {other:?}"),
            }
        }
    }
}
