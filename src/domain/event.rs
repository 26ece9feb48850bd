//! `OutboxEvent` and its status machine:
//!
//! ```text
//! pending ──claim──> processing ──success──> completed
//!    ^                    │
//!    │                    └──failure──> failed (attempts left: nextAttemptAt set)
//!    │                                    │ due ──> pending (promoted, claimed again)
//!    │                                    └ gave up (no attempts left, or permanent): nextAttemptAt = null
//!    └──────── resetForRetry (failed or stale processing): attempts back to 0
//! ```

use super::entry::{MetricType, ProgressEntry};
use super::retry::Decision;
use super::time::TimeMs;

/// Where an event stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventStatus {
    /// Waiting to be uploaded.
    #[default]
    Pending,
    /// Claimed by a processor; an upload is (or was, if the tab died) in flight.
    Processing,
    /// The server acknowledged it.
    Completed,
    /// The last attempt failed; retried at `nextAttemptAt` unless it gave up.
    Failed,
}

impl EventStatus {
    /// The name used in JS and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Processing => "processing",
            EventStatus::Completed => "completed",
            EventStatus::Failed => "failed",
        }
    }

    /// Parses a JS status name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => EventStatus::Pending,
            "processing" => EventStatus::Processing,
            "completed" => EventStatus::Completed,
            "failed" => EventStatus::Failed,
            _ => return None,
        })
    }
}

/// The finer state used for indexing and counting: `failed` splits into retrying and gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum StateKey {
    /// `pending`.
    Pending = 0,
    /// `processing`.
    Processing = 1,
    /// `completed`.
    Completed = 2,
    /// `failed`, will be retried at `nextAttemptAt`.
    Retrying = 3,
    /// `failed`, no further automatic attempt.
    GaveUp = 4,
}

impl StateKey {
    /// Every state, in key order.
    pub const ALL: [StateKey; 5] = [StateKey::Pending, StateKey::Processing, StateKey::Completed, StateKey::Retrying, StateKey::GaveUp];

    /// The state keys a status covers.
    pub fn of_status(status: EventStatus) -> &'static [StateKey] {
        match status {
            EventStatus::Pending => &[StateKey::Pending],
            EventStatus::Processing => &[StateKey::Processing],
            EventStatus::Completed => &[StateKey::Completed],
            EventStatus::Failed => &[StateKey::Retrying, StateKey::GaveUp],
        }
    }
}

/// The seed's event metadata: what was measured, for audit without reading the entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMetadata {
    /// Metric type (`type` in JS).
    pub metric: MetricType,
    /// The value.
    pub quantity: f64,
    /// Measurement time.
    pub date: TimeMs,
}

/// The kind of entity an event syncs. Only progress entries so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A `ProgressEntry` to upload.
    ProgressEntry,
}

/// One unit of work in the outbox (seed: `SDOutboxEvent`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// UUID v4, also the `Idempotency-Key` of every upload of this event.
    pub id: String,
    /// `progressEntry`.
    pub event_type: EventType,
    /// The entry's id.
    pub entity_id: String,
    /// Owner.
    pub user_id: String,
    /// Where it stands.
    pub status: EventStatus,
    /// Type, quantity and date of the measurement.
    pub metadata: EventMetadata,
    /// True when the entry had no backend id at creation.
    pub is_new_record: bool,
    /// Attempts started so far.
    pub attempt_count: u32,
    /// Attempts allowed before giving up.
    pub max_attempts: u32,
    /// Higher uploads first.
    pub priority: i32,
    /// When it was created (in the same transaction as its entry).
    pub created_at: TimeMs,
    /// When the last attempt started.
    pub last_attempt_at: Option<TimeMs>,
    /// When a failed event is retried; `None` when not scheduled.
    pub next_attempt_at: Option<TimeMs>,
    /// When the server acknowledged it.
    pub completed_at: Option<TimeMs>,
    /// Why the last attempt failed.
    pub error_message: Option<String>,
}

/// A transition the status machine refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The state the event was in.
    pub from: EventStatus,
    /// What was asked.
    pub action: &'static str,
}

impl OutboxEvent {
    /// The event created together with a new entry.
    pub fn for_entry(id: String, entry: &ProgressEntry, priority: i32, max_attempts: u32, now: TimeMs) -> Self {
        OutboxEvent {
            id,
            event_type: EventType::ProgressEntry,
            entity_id: entry.id.clone(),
            user_id: entry.user_id.clone(),
            status: EventStatus::Pending,
            metadata: EventMetadata { metric: entry.metric, quantity: entry.quantity, date: entry.date },
            is_new_record: entry.backend_id.is_none(),
            attempt_count: 0,
            max_attempts,
            priority,
            created_at: now,
            last_attempt_at: None,
            next_attempt_at: None,
            completed_at: None,
            error_message: None,
        }
    }

    /// The finer state (see [`StateKey`]).
    pub fn state_key(&self) -> StateKey {
        match self.status {
            EventStatus::Pending => StateKey::Pending,
            EventStatus::Processing => StateKey::Processing,
            EventStatus::Completed => StateKey::Completed,
            EventStatus::Failed if self.next_attempt_at.is_some() => StateKey::Retrying,
            EventStatus::Failed => StateKey::GaveUp,
        }
    }

    /// Failed with no automatic retry left (all attempts used, or a permanent error).
    pub fn gave_up(&self) -> bool {
        self.state_key() == StateKey::GaveUp
    }

    /// A failed event whose retry time has come.
    pub fn is_due_retry(&self, now: TimeMs) -> bool {
        self.status == EventStatus::Failed && self.next_attempt_at.is_some_and(|t| t <= now)
    }

    /// Processing for longer than `stale_after_ms`: its processor died mid-upload.
    pub fn is_stale(&self, now: TimeMs, stale_after_ms: i64) -> bool {
        self.status == EventStatus::Processing && self.last_attempt_at.is_none_or(|t| now - t > stale_after_ms)
    }

    /// Claimable now: pending, or failed with its retry due.
    pub fn is_claimable(&self, now: TimeMs) -> bool {
        self.status == EventStatus::Pending || self.is_due_retry(now)
    }

    fn refuse(&self, action: &'static str) -> IllegalTransition {
        IllegalTransition { from: self.status, action }
    }

    /// A due retry goes back to the queue (seed: `failed -> pending (retry)`), keeping its attempts
    /// and last error until the next attempt reports.
    pub fn promote(&mut self, now: TimeMs) -> Result<(), IllegalTransition> {
        if !self.is_due_retry(now) {
            return Err(self.refuse("promote"));
        }
        self.status = EventStatus::Pending;
        self.next_attempt_at = None;
        Ok(())
    }

    /// pending (or due failed) -> processing: one more attempt starts now.
    pub fn claim(&mut self, now: TimeMs) -> Result<(), IllegalTransition> {
        if !self.is_claimable(now) {
            return Err(self.refuse("claim"));
        }
        self.status = EventStatus::Processing;
        self.attempt_count += 1;
        self.last_attempt_at = Some(now);
        self.next_attempt_at = None;
        Ok(())
    }

    /// Hands back a claim whose upload never started (the user logged out or switched while
    /// the batch waited): pending again, the attempt not counted.
    pub fn unclaim(&mut self, attempt: u32) -> Result<(), IllegalTransition> {
        if self.status != EventStatus::Processing || self.attempt_count != attempt {
            return Err(self.refuse("unclaim"));
        }
        self.status = EventStatus::Pending;
        self.attempt_count -= 1;
        Ok(())
    }

    /// Applies the outcome of an upload started by the claim that set `attempt`.
    ///
    /// A success is recorded whatever happened meanwhile (the server has the entry; completing is
    /// always right). A failure is recorded only if the event is still in that claim: if a stale
    /// reset or `resetForRetry` handed it to another attempt, this late report is dropped.
    pub fn apply(&mut self, attempt: u32, decision: &Decision, now: TimeMs) -> Result<(), IllegalTransition> {
        match decision {
            Decision::Complete { .. } => {
                if self.status == EventStatus::Completed {
                    return Err(self.refuse("complete"));
                }
                self.status = EventStatus::Completed;
                self.completed_at = Some(now);
                self.next_attempt_at = None;
                self.error_message = None;
            }
            Decision::Retry { at, message } => {
                self.fail_in_claim(attempt, "fail")?;
                self.next_attempt_at = Some(*at);
                self.error_message = Some(message.clone());
            }
            Decision::GiveUp { message } => {
                self.fail_in_claim(attempt, "give up")?;
                self.next_attempt_at = None;
                self.error_message = Some(message.clone());
            }
        }
        Ok(())
    }

    fn fail_in_claim(&mut self, attempt: u32, action: &'static str) -> Result<(), IllegalTransition> {
        if self.status != EventStatus::Processing || self.attempt_count != attempt {
            return Err(self.refuse(action));
        }
        self.status = EventStatus::Failed;
        Ok(())
    }

    /// Completed because its entry no longer exists locally: nothing to upload, nothing to retry.
    pub fn complete_orphan(&mut self, now: TimeMs) -> Result<(), IllegalTransition> {
        if self.status == EventStatus::Completed {
            return Err(self.refuse("complete"));
        }
        self.status = EventStatus::Completed;
        self.completed_at = Some(now);
        self.next_attempt_at = None;
        self.error_message = Some("entry no longer exists locally; nothing to upload".into());
        Ok(())
    }

    /// A stale processing event goes back to the queue; its attempt counts as used.
    pub fn recover_stale(&mut self, now: TimeMs, stale_after_ms: i64) -> Result<(), IllegalTransition> {
        if !self.is_stale(now, stale_after_ms) {
            return Err(self.refuse("recover"));
        }
        self.status = EventStatus::Pending;
        self.error_message = Some("upload interrupted (the page closed or crashed mid-upload); retrying".into());
        Ok(())
    }

    /// `resetForRetry`: a failed or stale event goes back to pending with its attempts at 0.
    pub fn reset_for_retry(&mut self, now: TimeMs, stale_after_ms: i64) -> Result<(), IllegalTransition> {
        if !(self.status == EventStatus::Failed || self.is_stale(now, stale_after_ms)) {
            return Err(self.refuse("reset"));
        }
        self.status = EventStatus::Pending;
        self.attempt_count = 0;
        self.next_attempt_at = None;
        self.error_message = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
}
