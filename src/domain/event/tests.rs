//! Unit tests of `domain::event`: the status machine and the per-entry ordering rules.

use super::*;
use crate::domain::entry::SaveInput;

const NOW: TimeMs = 1_795_678_200_000;

fn entry() -> ProgressEntry {
    let input = SaveInput { metric: Metric::Weight, quantity: 72.5, user_id: "u1".into(), date: NOW - 1000, priority: 3 };
    ProgressEntry::new("e1".into(), &input, NOW)
}

fn create() -> OutboxEvent {
    OutboxEvent::new("ev1".into(), Operation::Create, &entry(), 3, 5, NOW)
}

/// The second event of the entry.
fn queued(op: Operation, waiting: bool) -> OutboxEvent {
    let mut e = entry();
    e.rev = 2;
    let mut ev = OutboxEvent::new("ev2".into(), op, &e, 0, 5, NOW);
    ev.waiting = waiting;
    ev
}

fn retry(counted: bool, sent: bool) -> Decision {
    Decision::Retry { at: NOW + 1000, wait_ms: 1000, message: "HTTP 503".into(), counted, sent, maybe_stored: sent, stepped: true }
}

fn done(id: &str) -> Decision {
    Decision::Complete { backend_id: Some(id.into()) }
}

#[test]
fn new_event_mirrors_its_entry() {
    let e = create();
    assert_eq!(e.status, EventStatus::Pending);
    assert_eq!((e.entity_id.as_str(), e.user_id.as_str(), e.priority, e.max_attempts, e.attempt_count, e.request_count), ("e1", "u1", 3, 5, 0, 0));
    assert_eq!(e.metadata, Metadata { metric: Metric::Weight, quantity: 72.5, date: NOW - 1000 });
    assert!(e.is_new_record && e.never_sent() && e.never_stored());
    assert_eq!(e.state_key(), StateKey::Pending);
    let body = e.body();
    assert_eq!((body.local_id, body.user_id, body.metric, body.quantity), ("e1", "u1", Metric::Weight, 72.5));
    assert_eq!(body.date_iso, "2026-11-26T07:29:59.000Z");
}

#[test]
fn happy_path() {
    let mut e = create();
    let c = e.claim("me", NOW + 1).unwrap();
    assert_eq!((e.status, e.claims, e.request_count, e.last_attempt_at, e.claimed_by.as_deref()), (EventStatus::Processing, 1, 1, Some(NOW + 1), Some("me")));
    assert_eq!(c, 1);
    assert_eq!(e.claim("me", NOW + 2), Err(IllegalTransition { from: EventStatus::Processing, action: "claim" }));
    assert!(!e.never_sent());
    assert_eq!(e.apply(c, &done("b1"), NOW + 3), Ok(Applied::Completed));
    assert_eq!((e.status, e.completed_at, e.state_key(), e.attempt_count), (EventStatus::Completed, Some(NOW + 3), StateKey::Completed, 0));
    assert!(e.apply(c, &done("b1"), NOW + 4).is_err());
}

#[test]
fn failed_answers_count_no_answer_does_not() {
    let mut e = create();
    let c = e.claim("me", NOW).unwrap();
    assert_eq!(e.apply(c, &retry(true, true), NOW + 10), Ok(Applied::Retrying));
    assert_eq!((e.status, e.state_key(), e.gave_up(), e.attempt_count, e.tries, e.request_count), (EventStatus::Failed, StateKey::Retrying, false, 1, 1, 1));
    assert_eq!((e.error_message.as_deref(), e.next_attempt_at, e.wait_ms), (Some("HTTP 503"), Some(NOW + 1000), Some(1000)));
    e.promote().unwrap();
    assert_eq!((e.status, e.next_attempt_at, e.attempt_count), (EventStatus::Pending, None, 1));
    // A token that never came: nothing was sent, nothing counted, the try still backs off.
    let c = e.claim("me", NOW + 2000).unwrap();
    e.apply(c, &retry(false, false), NOW + 2001).unwrap();
    assert_eq!((e.attempt_count, e.tries, e.request_count), (1, 2, 1));
}

#[test]
fn give_up_and_reset() {
    let mut e = create();
    let c = e.claim("me", NOW).unwrap();
    e.apply(c, &Decision::GiveUp { message: "HTTP 422".into(), refused: true, maybe_stored: false }, NOW + 1).unwrap();
    assert!(e.gave_up() && e.refused && e.never_stored());
    assert_eq!(e.state_key(), StateKey::GaveUp);
    assert!(e.promote().is_err(), "a gave-up event is never promoted");
    e.reset_for_retry(false).unwrap();
    assert_eq!((e.status, e.attempt_count, e.tries, e.error_message.clone(), e.refused), (EventStatus::Pending, 0, 0, None, false));
    assert_eq!(e.request_count, 1, "requests sent stay on record");
    assert!(e.reset_for_retry(false).is_err(), "pending: nothing to reset");
}

#[test]
fn late_failures_are_dropped_successes_are_not() {
    let mut e = create();
    let first = e.claim("a", NOW).unwrap();
    e.recover_stale().unwrap();
    assert_eq!((e.status, e.request_count, e.claimed_by.clone()), (EventStatus::Pending, 1, None));
    let second = e.claim("b", NOW + 1).unwrap();
    assert!(e.apply(first, &retry(true, true), NOW + 2).is_err(), "the first claim's failure arrives late");
    assert_eq!(e.status, EventStatus::Processing);
    assert_eq!(e.apply(first, &done("b1"), NOW + 3), Ok(Applied::Completed), "its success still counts");
    assert!(e.apply(second, &retry(true, true), NOW + 4).is_err());
}

#[test]
fn release_hands_back_an_unsent_claim() {
    let mut e = create();
    let c = e.claim("me", NOW).unwrap();
    assert!(e.release(c + 1).is_err());
    e.release(c).unwrap();
    assert_eq!((e.status, e.request_count, e.claims), (EventStatus::Pending, 0, 1));
    assert!(e.never_sent());
}

#[test]
fn waiting_events_are_not_claimable_until_unblocked() {
    let mut e = queued(Operation::Update, true);
    assert_eq!((e.status, e.state_key()), (EventStatus::Pending, StateKey::Waiting));
    assert!(e.claim("me", NOW).is_err());
    e.unblock();
    assert_eq!(e.state_key(), StateKey::Pending);
    assert!(e.claim("me", NOW).is_ok());
    assert_eq!(StateKey::of_status(EventStatus::Pending), &[StateKey::Pending, StateKey::Waiting]);
}

#[test]
fn fold_only_into_a_never_sent_create() {
    let mut changed = entry();
    changed.quantity = 72.3;
    let mut e = create();
    e.fold(&changed).unwrap();
    assert_eq!(e.metadata.quantity, 72.3);
    e.claim("me", NOW).unwrap();
    assert!(e.fold(&changed).is_err(), "a request went out: its body is fixed");
    let mut u = queued(Operation::Update, false);
    assert!(u.fold(&changed).is_err());
}

fn synced() -> ProgressEntry {
    let mut e = entry();
    e.backend_id = Some("b1".into());
    e
}

#[test]
fn update_plans() {
    let fresh = create();
    assert_eq!(plan_update(&entry(), std::slice::from_ref(&fresh)), EditPlan::Fold { event_id: "ev1".into() });
    let mut in_flight = create();
    in_flight.claim("me", NOW).unwrap();
    assert_eq!(plan_update(&entry(), std::slice::from_ref(&in_flight)), EditPlan::Queue { operation: Operation::Update, waiting: true, drop: vec![] });
    // A token failure sent nothing: still foldable.
    let mut unsent = create();
    let c = unsent.claim("me", NOW).unwrap();
    unsent.apply(c, &retry(false, false), NOW).unwrap();
    assert_eq!(plan_update(&entry(), std::slice::from_ref(&unsent)), EditPlan::Fold { event_id: "ev1".into() });
    assert_eq!(plan_update(&synced(), &[]), EditPlan::Queue { operation: Operation::Update, waiting: false, drop: vec![] });
    assert_eq!(plan_update(&entry(), &[]), EditPlan::Queue { operation: Operation::Create, waiting: false, drop: vec![] });
}

#[test]
fn delete_plans() {
    assert_eq!(plan_delete(&entry(), &[create()]), EditPlan::Remove { event_ids: vec!["ev1".into()] });
    assert_eq!(plan_delete(&entry(), &[]), EditPlan::Remove { event_ids: vec![] });
    assert_eq!(plan_delete(&synced(), &[]), EditPlan::Queue { operation: Operation::Delete, waiting: false, drop: vec![] });
    let mut in_flight = create();
    in_flight.claim("me", NOW).unwrap();
    assert_eq!(plan_delete(&entry(), std::slice::from_ref(&in_flight)), EditPlan::Queue { operation: Operation::Delete, waiting: true, drop: vec![] });
    // Refused outright by the server (a 4xx): nothing stored there, nothing to delete.
    let mut refused = create();
    let c = refused.claim("me", NOW).unwrap();
    refused.apply(c, &Decision::GiveUp { message: "HTTP 422".into(), refused: true, maybe_stored: false }, NOW).unwrap();
    let queued_edit = queued(Operation::Update, true);
    assert_eq!(plan_delete(&entry(), &[refused, queued_edit]), EditPlan::Remove { event_ids: vec!["ev1".into(), "ev2".into()] });
    // Gave up after failed answers: the server may have stored it: the delete queues behind it.
    let mut exhausted = create();
    let c = exhausted.claim("me", NOW).unwrap();
    exhausted.apply(c, &Decision::GiveUp { message: "HTTP 503".into(), refused: false, maybe_stored: true }, NOW).unwrap();
    assert_eq!(plan_delete(&entry(), &[exhausted]), EditPlan::Queue { operation: Operation::Delete, waiting: true, drop: vec![] });
}

fn refused_update(synced_entry: &ProgressEntry) -> OutboxEvent {
    let mut e = synced_entry.clone();
    e.rev = 2;
    let mut u = OutboxEvent::new("ev2".into(), Operation::Update, &e, 0, 5, NOW);
    let c = u.claim("me", NOW).unwrap();
    u.apply(c, &Decision::GiveUp { message: "HTTP 422".into(), refused: true, maybe_stored: false }, NOW).unwrap();
    u
}

#[test]
fn refused_events_never_block_what_follows() {
    let refused = refused_update(&synced());
    assert!(!refused.blocking() && refused.is_unfinished());
    // A correction of a refused update replaces it and goes at once.
    assert_eq!(
        plan_update(&synced(), std::slice::from_ref(&refused)),
        EditPlan::Queue { operation: Operation::Update, waiting: false, drop: vec!["ev2".into()] }
    );
    assert_eq!(
        plan_delete(&synced(), std::slice::from_ref(&refused)),
        EditPlan::Queue { operation: Operation::Delete, waiting: false, drop: vec!["ev2".into()] }
    );
    // A refused create: nothing stored; the correction is a fresh create with a new key.
    let mut create = create();
    let c = create.claim("me", NOW).unwrap();
    create.apply(c, &Decision::GiveUp { message: "HTTP 422".into(), refused: true, maybe_stored: false }, NOW).unwrap();
    assert_eq!(
        plan_update(&entry(), std::slice::from_ref(&create)),
        EditPlan::Queue { operation: Operation::Create, waiting: false, drop: vec!["ev1".into()] }
    );
    // Gave up after failed answers (it may be stored): still blocks.
    let mut exhausted = create_event_gave_up_exhausted();
    assert!(exhausted.blocking());
    exhausted.reset_for_retry(false).unwrap();
    assert!(exhausted.blocking());
}

#[test]
fn only_a_refused_update_or_delete_is_superseded_by_a_later_event() {
    assert!(refused_update(&synced()).superseded_by_later());
    let mut delete = OutboxEvent::new("ev3".into(), Operation::Delete, &synced(), 0, 5, NOW);
    let c = delete.claim("me", NOW).unwrap();
    delete.apply(c, &Decision::GiveUp { message: "HTTP 403".into(), refused: true, maybe_stored: false }, NOW).unwrap();
    assert!(delete.superseded_by_later());
    // A refused create brings the id what follows needs: never superseded.
    let mut create = create();
    let c = create.claim("me", NOW).unwrap();
    create.apply(c, &Decision::GiveUp { message: "HTTP 422".into(), refused: true, maybe_stored: false }, NOW).unwrap();
    assert!(!create.superseded_by_later());
    // Out of attempts (it may be stored), retrying, or pending: its values may still matter.
    assert!(!create_event_gave_up_exhausted().superseded_by_later());
    let mut update = OutboxEvent::new("ev4".into(), Operation::Update, &synced(), 0, 5, NOW);
    assert!(!update.superseded_by_later());
    let c = update.claim("me", NOW).unwrap();
    update.apply(c, &retry(true, true), NOW).unwrap();
    assert!(!update.superseded_by_later());
}

fn create_event_gave_up_exhausted() -> OutboxEvent {
    let mut e = create();
    let c = e.claim("me", NOW).unwrap();
    e.apply(c, &Decision::GiveUp { message: "HTTP 503".into(), refused: false, maybe_stored: true }, NOW).unwrap();
    e
}

#[test]
fn an_update_queued_behind_a_refused_create_becomes_the_create() {
    let mut up = queued(Operation::Update, true);
    up.replace_refused_create().unwrap();
    assert_eq!((up.operation, up.is_new_record, up.waiting), (Operation::Create, true, false));
    assert_eq!(up.metadata, Metadata::of(&entry()), "the latest values");
    // Only a never-sent update can.
    assert!(create().replace_refused_create().is_err());
    assert!(queued(Operation::Delete, true).replace_refused_create().is_err());
}

#[test]
fn a_failure_that_may_have_stored_it_or_an_interrupted_upload_is_remembered() {
    let mut e = create();
    let c = e.claim("me", NOW).unwrap();
    e.apply(c, &retry(false, false), NOW + 1).unwrap();
    assert!(!e.maybe_stored, "nothing went out");
    e.promote().unwrap();
    let c = e.claim("me", NOW + 2).unwrap();
    e.apply(c, &retry(true, true), NOW + 3).unwrap();
    assert!(e.maybe_stored, "a 503: the server may have it");
    e.reset_for_retry(false).unwrap();
    assert!(e.maybe_stored, "a reset does not change what the server may hold");

    let mut e = create();
    e.claim("a", NOW).unwrap();
    e.recover_stale().unwrap();
    assert!(e.maybe_stored, "an interrupted upload may have reached the server");

    // resetForRetry of a stale claim is the same interruption, reset by hand.
    let mut e = create();
    e.claim("a", NOW).unwrap();
    e.reset_for_retry(true).unwrap();
    assert!(e.maybe_stored, "a stale claim reset by hand may have reached the server too");
}

#[test]
fn a_batch_split_after_a_413_takes_no_step_of_the_backoff() {
    use crate::domain::retry::{decide, Outcome, RetryPolicy};
    let policy = RetryPolicy::default();
    let mut e = create();
    for _ in 0..2 {
        let c = e.claim("me", NOW).unwrap();
        e.apply(c, &decide(&Outcome::BatchTooLarge(30), e.attempt(), &policy, NOW), NOW).unwrap();
        e.promote().unwrap();
    }
    let c = e.claim("me", NOW).unwrap();
    let d =
        decide(&Outcome::Response { status: 503, retry_after: None, backend_id: None, plain: true, body_excerpt: String::new() }, e.attempt(), &policy, NOW);
    assert!(matches!(d, Decision::Retry { wait_ms: 1_000, .. }), "the first failure waits backoffMs[0] after two splits: {d:?}");
    e.apply(c, &d, NOW).unwrap();
    assert_eq!(e.attempt_count, 1);
}

#[test]
fn a_create_that_gave_up_after_a_request_that_may_have_been_stored_is_never_taken_for_refused_after_a_reset() {
    use crate::domain::retry::{decide, Outcome, RetryPolicy};
    let answer = |status| Outcome::Response { status, retry_after: None, backend_id: None, plain: true, body_excerpt: String::new() };
    for stored_but_unusable in [502, 201, 303] {
        // One attempt allowed; the server stored it, the answer was lost to a gateway's 502 (or
        // had no id, or was a 303 See Other): it gives up.
        let mut e = OutboxEvent::new("ev1".into(), Operation::Create, &entry(), 0, 1, NOW);
        let c = e.claim("me", NOW).unwrap();
        let d = decide(&answer(stored_but_unusable), e.attempt(), &RetryPolicy::default(), NOW);
        assert!(matches!(d, Decision::GiveUp { refused: false, maybe_stored: true, .. }), "{d:?}");
        e.apply(c, &d, NOW).unwrap();
        // resetForRetry; the retry meets a 4xx from something in front of the server: no proof
        // that the first request was never stored.
        e.reset_for_retry(false).unwrap();
        let c = e.claim("me", NOW).unwrap();
        let d = decide(&answer(400), e.attempt(), &RetryPolicy::default(), NOW);
        e.apply(c, &d, NOW).unwrap();
        assert!(e.gave_up() && !e.refused && !e.never_stored(), "{stored_but_unusable}: an edit must wait behind it, not replace it under a new key");
        assert_eq!(plan_update(&entry(), std::slice::from_ref(&e)), EditPlan::Queue { operation: Operation::Update, waiting: true, drop: vec![] });
    }
}

#[test]
fn a_set_aside_event_comes_back_only_while_its_entry_did_not_move_on_without_it() {
    let (c, u) = (create(), queued(Operation::Update, true));
    let at = |synced: bool, rev: u32| Some(EntityNow { synced, rev });
    // Nothing happened meanwhile: back.
    assert!(restorable(&c, at(false, 1), &[]));
    assert!(restorable(&u, at(true, u.seq), &[]));
    // The entry is gone: not back.
    assert!(!restorable(&c, None, &[]) && !restorable(&u, None, &[]));
    // A create, once the entry has its id or another create: superseded.
    assert!(!restorable(&c, at(true, 1), &[]));
    let mut other = create();
    other.id = "ev9".into();
    assert!(!restorable(&c, at(false, 1), std::slice::from_ref(&other)));
    // An event of the same id in place is not another one.
    assert!(restorable(&c, at(false, 1), std::slice::from_ref(&c)));
    // An update or delete, once a later event of the entry exists; an earlier one is no matter.
    let mut later = queued(Operation::Update, false);
    (later.id, later.seq) = ("ev3".into(), u.seq + 1);
    assert!(!restorable(&u, at(true, later.seq), std::slice::from_ref(&later)));
    assert!(!restorable(&queued(Operation::Delete, true), at(true, later.seq), std::slice::from_ref(&later)));
    assert!(restorable(&u, at(true, u.seq), &[create()]));
    // ...or was written and is gone since (completed, then cleaned up): the entry's rev tells.
    assert!(!restorable(&u, at(true, u.seq + 1), &[]));
    // A finished one is history: always back.
    let mut finished = create();
    finished.status = EventStatus::Completed;
    assert!(restorable(&finished, None, std::slice::from_ref(&other)));
}

#[test]
fn requeue_sets_waiting_and_blocks_as_the_queue_rules_have_them() {
    // Restored still waiting, with nothing ahead of it any more: released.
    let mut q = vec![queued(Operation::Update, true)];
    assert_eq!(requeue(&mut q), vec![0]);
    assert!(!q[0].waiting);
    // Its blocker dropped, the next one waited for good: the head goes, the one behind it waits
    // for it, and the head is marked to release it.
    let mut behind = queued(Operation::Delete, true);
    (behind.id, behind.seq) = ("ev3".into(), 3);
    let mut q = vec![queued(Operation::Update, true), behind];
    let changed = requeue(&mut q);
    assert!(!q[0].waiting && q[0].blocks && q[1].waiting, "{q:?}");
    assert_eq!(changed.len(), 2);
    // Restored not waiting behind an earlier event that blocks: it waits again.
    let mut q = vec![create(), queued(Operation::Update, false)];
    requeue(&mut q);
    assert!(q[1].waiting && q[0].blocks);
    // A refused event blocks nothing; an event already sent keeps its state.
    let mut refused = create();
    refused.status = EventStatus::Failed;
    refused.refused = true;
    let mut q = vec![refused, queued(Operation::Update, true)];
    requeue(&mut q);
    assert!(!q[1].waiting);
    let mut sent = queued(Operation::Update, false);
    sent.status = EventStatus::Processing;
    let mut q = vec![create(), sent];
    assert_eq!(requeue(&mut q), Vec::<usize>::new());
    // Only the record just before releases (as an event's end releases the next record): behind
    // a completed one, an event goes; equal behind a refused one.
    let mut done_one = queued(Operation::Update, false);
    done_one.status = EventStatus::Completed;
    let mut last = queued(Operation::Delete, true);
    (last.id, last.seq) = ("ev3".into(), 3);
    let mut q = vec![create(), done_one, last];
    requeue(&mut q);
    assert!(!q[2].waiting, "{q:?}");
    // Already as the rules have them: nothing changed.
    let mut q = vec![create(), queued(Operation::Update, true)];
    q[0].blocks = true;
    assert!(requeue(&mut q).is_empty());
}
