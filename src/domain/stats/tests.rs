//! Unit tests of `domain::stats`.

use super::*;

#[test]
fn median_latency_over_a_window() {
    let mut m = UserMeta::default();
    assert_eq!(m.sync_latency_ms(), None);
    m.record_success(10, 30);
    assert_eq!(m.sync_latency_ms(), Some(30));
    m.record_success(11, 10);
    assert_eq!(m.sync_latency_ms(), Some(20));
    m.record_success(12, 1000);
    assert_eq!(m.sync_latency_ms(), Some(30), "median, not mean");
    for i in 0..100 {
        m.record_success(100 + i, 5);
    }
    assert_eq!(m.latencies.len(), LATENCY_WINDOW);
    assert_eq!(m.sync_latency_ms(), Some(5));
    assert_eq!((m.completed, m.last_sync_at), (103, Some(199)));
    m.record_success(200, -3);
    assert_eq!(*m.latencies.last().unwrap(), 0, "clock skew never reports negative latency");
}

#[test]
fn counters() {
    let mut m = UserMeta::default();
    m.record_success(1, 1);
    m.record_cleanup(5);
    assert_eq!(m.completed, 0, "saturates");
    m.record_failure(7, "HTTP 503", true);
    m.record_failure(8, "network error", false);
    assert_eq!(m.failed_in_a_row, 1, "only answers count");
    let s = Stats::new("u1", Counts { pending: 2, waiting: 5, processing: 1, retrying: 3, gave_up: 4 }, &m, Some(3), 2);
    assert_eq!((s.pending, s.processing, s.failed, s.gave_up, s.retrying, s.completed, s.quarantined), (7, 1, 7, 4, 3, 0, 2));
    m.record_success(9, 1);
    assert_eq!(m.failed_in_a_row, 0);
    assert_eq!((s.last_error.as_deref(), s.last_error_at, s.oldest_pending_at), (Some("network error"), Some(8), Some(3)));
}

#[test]
fn a_failure_seen_after_the_stored_last_error_is_shown() {
    let mut m = UserMeta::default();
    let mut s = Stats::new("u1", Counts::default(), &m, None, 0);
    s.show_failure("storage is full", 5);
    assert_eq!((s.last_error.as_deref(), s.last_error_at), (Some("storage is full"), Some(5)), "nothing stored yet");
    m.record_failure(10, "HTTP 503", true);
    let mut s = Stats::new("u1", Counts::default(), &m, None, 0);
    s.show_failure("storage is full", 9);
    assert_eq!((s.last_error.as_deref(), s.last_error_at), (Some("HTTP 503"), Some(10)), "the stored one is newer");
    s.show_failure("storage is full", 11);
    assert_eq!((s.last_error.as_deref(), s.last_error_at), (Some("storage is full"), Some(11)));
}
