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
mod tests;
