//! Unit tests of `domain::event`.

use super::*;
use crate::domain::entry::WeightInput;

const NOW: TimeMs = 1_795_678_200_000;

fn event() -> OutboxEvent {
    let input = WeightInput { kg: 72.5, user_id: "u1".into(), date: NOW - 1000, priority: 3 };
    let entry = ProgressEntry::new_weight("e1".into(), &input, NOW);
    OutboxEvent::for_entry("ev1".into(), &entry, 3, 5, NOW)
}

fn retry(at: TimeMs) -> Decision {
    Decision::Retry { at, message: "HTTP 503".into() }
}

#[test]
fn new_event_mirrors_its_entry() {
    let e = event();
    assert_eq!(e.status, EventStatus::Pending);
    assert_eq!((e.entity_id.as_str(), e.user_id.as_str(), e.priority, e.max_attempts, e.attempt_count), ("e1", "u1", 3, 5, 0));
    assert_eq!(e.metadata, EventMetadata { metric: MetricType::Weight, quantity: 72.5, date: NOW - 1000 });
    assert!(e.is_new_record);
    assert_eq!(e.state_key(), StateKey::Pending);
}

#[test]
fn happy_path() {
    let mut e = event();
    e.claim(NOW + 1).unwrap();
    assert_eq!((e.status, e.attempt_count, e.last_attempt_at), (EventStatus::Processing, 1, Some(NOW + 1)));
    assert_eq!(e.claim(NOW + 2), Err(IllegalTransition { from: EventStatus::Processing, action: "claim" }));
    e.apply(1, &Decision::Complete { backend_id: "b1".into() }, NOW + 3).unwrap();
    assert_eq!((e.status, e.completed_at, e.state_key()), (EventStatus::Completed, Some(NOW + 3), StateKey::Completed));
    assert!(e.apply(1, &Decision::Complete { backend_id: "b1".into() }, NOW + 4).is_err());
}

#[test]
fn failure_then_due_retry_then_promotion() {
    let mut e = event();
    e.claim(NOW).unwrap();
    e.apply(1, &retry(NOW + 1000), NOW + 10).unwrap();
    assert_eq!((e.status, e.state_key(), e.gave_up()), (EventStatus::Failed, StateKey::Retrying, false));
    assert_eq!(e.error_message.as_deref(), Some("HTTP 503"));
    assert!(!e.is_claimable(NOW + 999));
    assert!(e.promote(NOW + 999).is_err());
    assert!(e.is_claimable(NOW + 1000));
    e.promote(NOW + 1000).unwrap();
    assert_eq!((e.status, e.attempt_count, e.next_attempt_at), (EventStatus::Pending, 1, None));
    assert_eq!(e.error_message.as_deref(), Some("HTTP 503"), "last error kept until the next attempt reports");
    e.claim(NOW + 1001).unwrap();
    assert_eq!(e.attempt_count, 2);
    // A failed event can also be claimed directly when due, without promotion.
    e.apply(2, &retry(NOW + 2000), NOW + 1002).unwrap();
    e.claim(NOW + 2000).unwrap();
    assert_eq!(e.attempt_count, 3);
}

#[test]
fn give_up_and_reset() {
    let mut e = event();
    e.claim(NOW).unwrap();
    e.apply(1, &Decision::GiveUp { message: "HTTP 422: bad".into() }, NOW).unwrap();
    assert!(e.gave_up());
    assert_eq!(e.state_key(), StateKey::GaveUp);
    assert!(!e.is_claimable(NOW + 1_000_000_000));
    e.reset_for_retry(NOW, 300_000).unwrap();
    assert_eq!((e.status, e.attempt_count, e.next_attempt_at, e.error_message.clone()), (EventStatus::Pending, 0, None, None));
    assert!(e.reset_for_retry(NOW, 300_000).is_err(), "pending is not resettable");
}

#[test]
fn late_failure_of_an_old_claim_is_dropped_but_success_always_lands() {
    let mut e = event();
    e.claim(NOW).unwrap();
    e.recover_stale(NOW + 300_001, 300_000).unwrap();
    assert_eq!(e.status, EventStatus::Pending);
    e.claim(NOW + 300_002).unwrap(); // attempt 2 is under way
    assert!(e.apply(1, &retry(NOW + 400_000), NOW + 300_003).is_err(), "attempt 1's failure must not clobber attempt 2");
    assert_eq!(e.status, EventStatus::Processing);
    e.apply(1, &Decision::Complete { backend_id: "b".into() }, NOW + 300_004).unwrap();
    assert_eq!(e.status, EventStatus::Completed);
}

#[test]
fn staleness() {
    let mut e = event();
    assert!(!e.is_stale(NOW + 10_000_000, 300_000), "pending is never stale");
    e.claim(NOW).unwrap();
    assert!(!e.is_stale(NOW + 300_000, 300_000));
    assert!(e.is_stale(NOW + 300_001, 300_000));
    assert!(e.recover_stale(NOW + 300_000, 300_000).is_err());
    assert!(e.reset_for_retry(NOW + 1, 300_000).is_err(), "a live processing event is not reset");
    e.reset_for_retry(NOW + 300_001, 300_000).unwrap();
    assert_eq!((e.status, e.attempt_count), (EventStatus::Pending, 0));
}

#[test]
fn unclaim_undoes_only_its_own_claim() {
    let mut e = event();
    e.claim(NOW).unwrap();
    assert!(e.unclaim(2).is_err());
    e.unclaim(1).unwrap();
    assert_eq!((e.status, e.attempt_count), (EventStatus::Pending, 0));
    assert!(e.unclaim(1).is_err(), "not processing any more");
}

#[test]
fn orphan_completes_with_a_note() {
    let mut e = event();
    e.claim(NOW).unwrap();
    e.complete_orphan(NOW + 1).unwrap();
    assert_eq!(e.status, EventStatus::Completed);
    assert!(e.error_message.as_deref().unwrap().contains("no longer exists"));
}

#[test]
fn status_names_round_trip() {
    for s in [EventStatus::Pending, EventStatus::Processing, EventStatus::Completed, EventStatus::Failed] {
        assert_eq!(EventStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(EventStatus::parse("gaveUp"), None);
    assert_eq!(StateKey::of_status(EventStatus::Failed), &[StateKey::Retrying, StateKey::GaveUp]);
}
