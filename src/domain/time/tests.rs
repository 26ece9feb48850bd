//! Unit tests of `domain::time`.

use super::*;

#[test]
fn iso_matches_js_to_iso_string() {
    assert_eq!(to_iso8601(0), "1970-01-01T00:00:00.000Z");
    // new Date(Date.UTC(2026, 10, 26, 7, 30)).toISOString()
    assert_eq!(to_iso8601(1_795_678_200_000), "2026-11-26T07:30:00.000Z");
    assert_eq!(to_iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(to_iso8601(-1), "1969-12-31T23:59:59.999Z");
    // 1900-01-01, the earliest date saveWeight accepts
    assert_eq!(to_iso8601(-2_208_988_800_000), "1900-01-01T00:00:00.000Z");
    assert_eq!(to_iso8601(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
}

#[test]
fn civil_round_trip() {
    for days in (-800_000..800_000).step_by(997) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(from_civil(2026, 11, 26, 7, 30, 0), Some(1_795_678_200_000));
    assert_eq!(from_civil(2025, 2, 29, 0, 0, 0), None);
    assert_eq!(from_civil(2024, 2, 29, 0, 0, 0).map(to_iso8601).as_deref(), Some("2024-02-29T00:00:00.000Z"));
    assert_eq!(from_civil(2024, 13, 1, 0, 0, 0), None);
    assert_eq!(from_civil(2024, 1, 1, 24, 0, 0), None);
}

#[test]
fn http_dates_in_all_three_forms() {
    let expected = Some(784_111_777_000); // 1994-11-06T08:49:37Z
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
    assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
    assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
    assert_eq!(parse_http_date("  sun, 06 nov 1994 08:49:37 gmt "), expected);
    assert_eq!(parse_http_date("Thursday, 26-Nov-26 07:30:00 GMT"), Some(1_795_678_200_000));
}

#[test]
fn http_date_garbage_is_none() {
    for bad in
        ["", "soon", "Sun, 06 Nov 1994 08:49 GMT", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 PST", "120"]
    {
        assert_eq!(parse_http_date(bad), None, "{bad}");
    }
}
