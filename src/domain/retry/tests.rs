//! Unit tests of `domain::retry`.

use super::*;

const NOW: TimeMs = 1_795_678_200_000;

fn resp(status: u16) -> Outcome {
    Outcome::Response { status, retry_after: None, backend_id: None, body_excerpt: String::new() }
}

#[test]
fn contract_table() {
    for s in [200, 201, 204, 299] {
        assert_eq!(classify_status(s), StatusClass::Success, "{s}");
    }
    assert_eq!(classify_status(401), StatusClass::Unauthorized);
    for s in [408, 409, 425, 429, 500, 502, 503, 504, 599, 302, 100] {
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
    assert_eq!(RetryPolicy { backoff_ms: vec![] }.backoff(3), 0);
}

#[test]
fn success_needs_an_id() {
    let ok = Outcome::Response { status: 201, retry_after: None, backend_id: Some("42".into()), body_excerpt: "{\"id\":42}".into() };
    assert_eq!(decide(&ok, 1, 5, &RetryPolicy::default(), NOW), Decision::Complete { backend_id: "42".into() });
    let no_id = Outcome::Response { status: 200, retry_after: None, backend_id: None, body_excerpt: "<html>portal</html>".into() };
    match decide(&no_id, 1, 5, &RetryPolicy::default(), NOW) {
        Decision::Retry { at, message } => {
            assert_eq!(at, NOW + 1000);
            assert!(message.starts_with("HTTP 200: <html>portal</html>: the server answered without"), "{message}");
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn transient_failures_back_off_per_attempt() {
    let p = RetryPolicy::default();
    for (attempt, wait) in [(1, 1_000), (2, 5_000), (3, 30_000), (4, 120_000)] {
        for outcome in [
            resp(503),
            resp(429),
            resp(408),
            resp(409),
            resp(425),
            resp(500),
            Outcome::Network("Failed to fetch".into()),
            Outcome::Timeout(30_000),
            Outcome::Token("threw".into()),
        ] {
            match decide(&outcome, attempt, 5, &p, NOW) {
                Decision::Retry { at, .. } => assert_eq!(at, NOW + wait, "{outcome:?} attempt {attempt}"),
                d => panic!("{outcome:?}: {d:?}"),
            }
        }
    }
}

#[test]
fn gives_up_after_max_attempts() {
    match decide(&resp(503), 5, 5, &RetryPolicy::default(), NOW) {
        Decision::GiveUp { message } => assert_eq!(message, "HTTP 503 (gave up after 5 attempts)"),
        d => panic!("{d:?}"),
    }
    assert!(matches!(decide(&resp(503), 1, 1, &RetryPolicy::default(), NOW), Decision::GiveUp { .. }));
    assert!(matches!(decide(&resp(503), 4, 5, &RetryPolicy::default(), NOW), Decision::Retry { .. }));
}

#[test]
fn permanent_4xx_gives_up_at_once_with_status_and_body() {
    let o = Outcome::Response { status: 422, retry_after: Some("5".into()), backend_id: None, body_excerpt: "{\"error\":\n \"quantity out of range\"}".into() };
    match decide(&o, 1, 5, &RetryPolicy::default(), NOW) {
        Decision::GiveUp { message } => {
            assert!(message.starts_with("HTTP 422: {\"error\": \"quantity out of range\"}"), "{message}");
        }
        d => panic!("{d:?}"),
    }
    let long = Outcome::Response { status: 400, retry_after: None, backend_id: None, body_excerpt: "x".repeat(5000) };
    match decide(&long, 1, 5, &RetryPolicy::default(), NOW) {
        Decision::GiveUp { message } => assert!(message.len() < 400, "{}", message.len()),
        d => panic!("{d:?}"),
    }
}

#[test]
fn unauthorized_after_refresh_is_retryable() {
    match decide(&resp(401), 1, 5, &RetryPolicy::default(), NOW) {
        Decision::Retry { at, message } => {
            assert_eq!(at, NOW + 1000);
            assert!(message.contains("401") && message.contains("refreshing the token"));
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn retry_after_seconds_and_dates() {
    assert_eq!(parse_retry_after("120", NOW), Some(120_000));
    assert_eq!(parse_retry_after(" 0 ", NOW), Some(0));
    assert_eq!(parse_retry_after("99999999999999999999999", NOW), Some(MAX_RETRY_AFTER_MS));
    assert_eq!(parse_retry_after("Thu, 26 Nov 2026 07:31:00 GMT", NOW), Some(60_000));
    assert_eq!(parse_retry_after("Thu, 26 Nov 2026 07:00:00 GMT", NOW), Some(0), "a past date means now");
    for bad in ["", "-5", "1.5", "soon", "5 s"] {
        assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
    }
}

#[test]
fn retry_after_wins_only_when_longer() {
    let with = |ra: &str| Outcome::Response { status: 503, retry_after: Some(ra.into()), backend_id: None, body_excerpt: String::new() };
    let p = RetryPolicy::default();
    let at = |o: &Outcome, attempt| match decide(o, attempt, 5, &p, NOW) {
        Decision::Retry { at, .. } => at,
        d => panic!("{d:?}"),
    };
    assert_eq!(at(&with("10"), 1), NOW + 10_000, "Retry-After longer than backoff");
    assert_eq!(at(&with("2"), 2), NOW + 5_000, "backoff longer than Retry-After");
    assert_eq!(at(&with("Thu, 26 Nov 2026 07:32:00 GMT"), 1), NOW + 120_000, "HTTP date");
    assert_eq!(at(&with("garbage"), 1), NOW + 1_000, "malformed header ignored");
    // Retry-After on a 429
    let o = Outcome::Response { status: 429, retry_after: Some("30".into()), backend_id: None, body_excerpt: String::new() };
    assert_eq!(at(&o, 1), NOW + 30_000);
}
