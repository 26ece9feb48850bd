//! Unit tests of `domain::lease`.

use super::*;

fn beat(owner: &str, gen: u64, n: u64) -> Option<Beat> {
    Some(Beat { owner: owner.into(), gen, beat: n })
}

#[test]
fn a_beating_uploader_is_alive_whatever_its_clock() {
    let takeover = takeover_after_ms(2_000, 30_000);
    assert_eq!(takeover, 35_000.0);
    let mut w = BeatWatch::default();
    assert_eq!(w.observe(beat("a", 1, 1), 0.0), 0.0);
    assert_eq!(w.observe(beat("a", 1, 1), 30_000.0), 30_000.0);
    assert!(uploader_gone_in(beat("a", 1, 1).as_ref(), 30_000.0, takeover, 2_000) > 0.0);
    // It beat (some time after the look at 30 s): stillness counts from that look.
    assert_eq!(w.observe(beat("a", 1, 2), 34_000.0), 4_000.0);
    assert_eq!(w.observe(beat("a", 1, 2), 64_000.0), 34_000.0);
    assert!(uploader_gone_in(beat("a", 1, 2).as_ref(), 34_000.0, takeover, 2_000) > 0.0);
    assert_eq!(w.observe(beat("a", 1, 2), 65_000.0), 35_000.0);
    assert!(uploader_gone_in(beat("a", 1, 2).as_ref(), 35_000.0, takeover, 2_000) <= 0.0);
    // A new uploader (or generation) is a change too.
    assert_eq!(w.observe(beat("b", 2, 2), 66_000.0), 1_000.0);
}

#[test]
fn the_decision_comes_within_the_bound_of_the_last_beat() {
    // Looks every 2 s; the uploader beat right after the look at 10 s, then hung.
    let (interval, timeout) = (2_000u64, 2_000u64);
    let bound = takeover_after_ms(interval, timeout);
    let mut w = BeatWatch::default();
    w.observe(beat("a", 1, 1), 10_000.0);
    let mut t = 12_000.0; // first look at the new beat (it happened at 10,001)
    let mut decided = None;
    while decided.is_none() {
        let still = w.observe(beat("a", 1, 2), t);
        let left = uploader_gone_in(beat("a", 1, 2).as_ref(), still, bound, interval);
        if left <= 0.0 {
            decided = Some(t);
        }
        // The next look: on the interval, or when the wait runs out, whichever is first.
        t += (interval as f64).min(left.max(0.0) + 1.0);
    }
    let decided = decided.unwrap();
    assert!(decided + TAKEOVER_COST_MS <= 10_001.0 + bound + 1.0, "decided at {decided}, bound {bound}");
    // A live uploader beating every interval plus a full request timeout is never gone.
    let mut w = BeatWatch::default();
    let mut n = 0;
    for look in 0..200 {
        let t = look as f64 * interval as f64;
        if look % 2 == 0 {
            n += 1; // beats every 4 s (= interval + timeout), just after a look
        }
        let still = w.observe(beat("a", 1, n), t + 1.0);
        assert!(uploader_gone_in(beat("a", 1, n).as_ref(), still, bound, interval) > 0.0, "a live uploader taken for gone at {t}");
    }
}

#[test]
fn a_missing_record_means_gone_soon() {
    let mut w = BeatWatch::default();
    assert_eq!(w.observe(None, 100.0), 0.0);
    let still = w.observe(None, 3_200.0);
    assert!(uploader_gone_in(None, still, 35_000.0, 2_000) <= 0.0);
    assert!(uploader_gone_in(None, 2_700.0, 35_000.0, 2_000) > 0.0);
    w.reset();
    assert_eq!(w.observe(None, 5_000.0), 0.0);
}

#[test]
fn lock_names_of_different_databases_and_users_never_coincide() {
    assert_eq!(lock_name("progress-outbox", "u1"), "progress-outbox:progress-outbox:u1");
    assert_ne!(lock_name("app", "b:c"), lock_name("app:b", "c"));
    assert_eq!(lock_name("app", "b:c"), "progress-outbox:app:b%3Ac");
    assert_ne!(lock_name("a%3Ab", "c"), lock_name("a:b", "c"));
    // A user named like a liveness lock stays a user.
    assert_ne!(lock_name("db", "alive:x"), alive_lock_name("db", "x"));
    assert_eq!(alive_lock_name("d:b", "x"), "progress-outbox:d%3Ab:alive:x");
}
