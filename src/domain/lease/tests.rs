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
    assert!(!uploader_gone(beat("a", 1, 1).as_ref(), 30_000.0, takeover, 2_000));
    // It beat: the watch starts over.
    assert_eq!(w.observe(beat("a", 1, 2), 34_000.0), 0.0);
    assert_eq!(w.observe(beat("a", 1, 2), 70_000.0), 36_000.0);
    assert!(uploader_gone(beat("a", 1, 2).as_ref(), 36_000.0, takeover, 2_000));
    // A new uploader (or generation) is a change too.
    assert_eq!(w.observe(beat("b", 2, 2), 71_000.0), 0.0);
}

#[test]
fn a_missing_record_means_gone_soon() {
    let mut w = BeatWatch::default();
    assert_eq!(w.observe(None, 100.0), 0.0);
    let still = w.observe(None, 3_200.0);
    assert!(uploader_gone(None, still, 35_000.0, 2_000));
    assert!(!uploader_gone(None, 2_900.0, 35_000.0, 2_000));
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
