//! Unit tests of `domain::batch`.

use super::*;
use crate::domain::event::Operation;
use crate::domain::retry::{decide, Attempt, Decision, RetryPolicy};

#[test]
fn additive_increase_multiplicative_decrease() {
    let mut s = AdaptiveSize::new(100);
    assert_eq!(s.get(), 10);
    s.on(SizeSignal::Fast(10));
    assert_eq!(s.get(), 20);
    for _ in 0..20 {
        s.on(SizeSignal::Fast(10));
    }
    assert_eq!(s.get(), 100, "never above max");
    s.on(SizeSignal::Overloaded);
    assert_eq!(s.get(), 50);
    s.on(SizeSignal::Slow);
    assert_eq!(s.get(), 25);
    s.on(SizeSignal::Neutral);
    assert_eq!(s.get(), 25);
    for _ in 0..10 {
        s.on(SizeSignal::Overloaded);
    }
    assert_eq!(s.get(), 1, "never below 1");
    s.on(SizeSignal::Fast(10));
    assert_eq!(s.get(), 11, "and grows back");
    let mut tiny = AdaptiveSize::new(3);
    assert_eq!(tiny.get(), 3);
    tiny.on(SizeSignal::Overloaded);
    tiny.on(SizeSignal::Fast(3));
    assert_eq!(tiny.get(), 2);
    assert_eq!(AdaptiveSize::new(0).get(), 1);
}

#[test]
fn a_413_sets_a_ceiling_that_closes_in_on_the_servers_limit() {
    // A server that takes at most 20 events per batch, behind maxBatchEvents 100.
    let limit = 20;
    let mut s = AdaptiveSize::new(100);
    let (mut refused, mut sent_total) = (0, 0);
    for _ in 0..200 {
        let n = s.get();
        sent_total += 1;
        if n > limit {
            refused += 1;
            s.on(SizeSignal::TooLarge(n));
        } else {
            s.on(SizeSignal::Fast(n));
        }
        assert!(s.get() >= 1 && s.get() <= s.ceiling());
    }
    assert!(refused <= 3, "{refused} 413s of {sent_total} batches: the size kept overshooting the server's limit");
    assert!(s.get() >= limit / 2 && s.get() <= limit, "settles at or below the limit, not far below: {}", s.get());
    assert!(s.ceiling() <= limit);

    // Three batches in flight all refused at once: the ceiling does not collapse below half.
    let mut s = AdaptiveSize::new(100);
    for _ in 0..3 {
        let n = s.get();
        s.on(SizeSignal::Fast(n));
    }
    let n = s.get();
    assert_eq!(n, 40);
    for _ in 0..3 {
        s.on(SizeSignal::TooLarge(n));
    }
    assert_eq!(s.ceiling(), 30, "the biggest batch answered whole (30) beats half the refused one (20)");
    assert!(s.get() >= 1);

    // A 413 for a size answered before: the limit moved down; what was known is forgotten.
    s.on(SizeSignal::TooLarge(10));
    assert_eq!(s.ceiling(), 5);
    assert!(s.get() <= 5);
    s.on(SizeSignal::TooLarge(2));
    assert_eq!((s.ceiling(), s.get()), (1, 1), "never below 1");
    // A 413 to a batch of one event is that event's answer, not a size limit (it set
    // the ceiling to 1 for the life of the outbox, and batches never grew again).
    let mut s = AdaptiveSize::new(100);
    for _ in 0..5 {
        let n = s.get();
        s.on(SizeSignal::Fast(n));
    }
    assert_eq!(s.get(), 60);
    s.on(SizeSignal::TooLarge(1));
    assert_eq!((s.get(), s.ceiling()), (60, 100));
    // Timeouts and slow answers halve without touching the ceiling.
    let mut s = AdaptiveSize::new(100);
    s.on(SizeSignal::Overloaded);
    assert_eq!((s.get(), s.ceiling()), (5, 100));
}

#[test]
fn constrained_networks_send_less() {
    let normal = Network::default();
    assert_eq!((normal.concurrency(3), normal.batch(100)), (3, 100));
    for n in [Network { save_data: true, slow: false }, Network { save_data: false, slow: true }] {
        assert!(n.constrained());
        assert_eq!((n.concurrency(3), n.batch(100), n.batch(4)), (1, CONSTRAINED_BATCH, 4));
    }
}

fn answer(status: u16) -> Option<ItemAnswer> {
    Some(ItemAnswer { status, id: (status < 300).then(|| format!("b-{status}")), error: None, retry_after_s: None, retry_after_text: None })
}

#[test]
fn mixed_results_each_end_in_their_own_state() {
    let mut retry_later = answer(503);
    if let Some(a) = retry_later.as_mut() {
        a.retry_after_s = Some(4.2);
    }
    let mut refused = answer(422);
    if let Some(a) = refused.as_mut() {
        a.error = Some("quantity out of range".into());
    }
    let outcomes = item_outcomes(3, Some(vec![answer(201), refused, retry_later])).unwrap();
    // A `retryAfter` given as text takes the header's forms (a probe found strings ignored).
    let mut as_text = answer(503);
    if let Some(a) = as_text.as_mut() {
        a.retry_after_text = Some("7".into());
    }
    let text = item_outcomes(1, Some(vec![as_text])).unwrap();
    assert!(matches!(&text[0], Outcome::Response { retry_after: Some(r), .. } if r == "7"), "{text:?}");
    let policy = RetryPolicy::default();
    let first = Attempt { operation: Operation::Create, attempt_count: 0, tries: 0, max_attempts: 5, maybe_stored: false };
    let decisions: Vec<Decision> = outcomes.iter().map(|o| decide(o, first, &policy, 0)).collect();
    assert_eq!(decisions[0], Decision::Complete { backend_id: Some("b-201".into()) });
    assert!(matches!(&decisions[1], Decision::GiveUp { refused: true, message, .. } if message.contains("HTTP 422: quantity out of range")));
    assert!(matches!(decisions[2], Decision::Retry { wait_ms: 5_000, counted: true, .. }), "retryAfter 4.2 s -> 5 s");
}

#[test]
fn an_incomplete_answer_completes_nothing() {
    assert!(item_outcomes(3, Some(vec![answer(201), answer(201)])).unwrap_err().contains("2 results for 3 events"));
    assert!(item_outcomes(1, None).is_err());
    // Too many results, or one that cannot be read: the list may be shifted; nothing completes.
    assert!(item_outcomes(1, Some(vec![answer(201), answer(201)])).unwrap_err().contains("more results than the 1 events sent"));
    assert!(item_outcomes(3, Some(vec![answer(201), None, answer(201)])).unwrap_err().contains("result 1"));
    let policy = RetryPolicy::default();
    for op in [Operation::Create, Operation::Update, Operation::Delete] {
        let a = Attempt { operation: op, attempt_count: 0, tries: 0, max_attempts: 5, maybe_stored: false };
        for status in [200, 404, 500, 413] {
            let d = decide(&whole_failure(status, None, "cut off".into(), 5), a, &policy, 0);
            assert!(!matches!(d, Decision::Complete { .. }), "{op:?} {status}: a failed batch completes nothing");
        }
        // 413 to several events: too many at once, no verdict on any; again at once, not counted.
        assert_eq!(whole_failure(413, None, String::new(), 5), Outcome::BatchTooLarge(5));
        assert!(
            matches!(decide(&whole_failure(413, None, String::new(), 5), a, &policy, 7), Decision::Retry { counted: false, sent: true, wait_ms: 0, at: 7, .. }),
            "413 to a batch: smaller batches next, nothing counted"
        );
        // 413 to one event: that event is too big; refused, as on the single endpoint.
        assert!(matches!(decide(&whole_failure(413, None, String::new(), 1), a, &policy, 0), Decision::GiveUp { refused: true, .. }));
        assert!(matches!(decide(&whole_failure(400, None, String::new(), 5), a, &policy, 0), Decision::GiveUp { refused: true, .. }));
        assert!(matches!(decide(&whole_failure(503, Some("60".into()), String::new(), 5), a, &policy, 0), Decision::Retry { wait_ms: 60_000, .. }));
    }
}
