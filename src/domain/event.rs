//! `OutboxEvent`, its operations, its status machine and the per-entry ordering rules.
//!
//! ```text
//! pending ──claim──> processing ──answer stored──> completed
//!  │  ^                 │  │
//!  │  │                 │  └──failure──> failed (retrying: nextAttemptAt set)
//!  │  │                 │                  │ due ──> pending (promoted, claimed again)
//!  │  │                 │                  └ gave up (attempts used, or refused): nextAttemptAt = null
//!  │  │                 └──handed back unsent (logout, lost lead, close)──> pending
//!  │  └──────── resetForRetry (failed, or stale processing): attempts back to 0
//!  └─ waiting: an earlier event of the same entry is unfinished; becomes claimable when it completes
//! ```
//!
//! The events of one entry form a queue ordered by `seq`: only its head (the oldest unfinished
//! event) can be claimed, so they upload in the order written and never two at once.

use super::entry::{Body, ProgressEntry};
use super::metric::Metric;
use super::retry::{Attempt, Decision};
use super::time::{to_iso8601, TimeMs};

/// Where an event stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventStatus {
    /// Waiting to be uploaded (or waiting behind an earlier event of its entry).
    #[default]
    Pending,
    /// Claimed by a processor; an upload is (or was, if its context died) in flight.
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

    /// Parses a status name.
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

/// What an event does to the server's copy of its entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Operation {
    /// `POST {endpoint}`: the entry is new to the server.
    #[default]
    Create,
    /// `PUT {endpoint}/{backendId}` with the full body.
    Update,
    /// `DELETE {endpoint}/{backendId}`.
    Delete,
}

impl Operation {
    /// The name used in JS, storage and batch items.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// Parses an operation name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => Operation::Create,
            "update" => Operation::Update,
            "delete" => Operation::Delete,
            _ => return None,
        })
    }
}

/// The finer state used for indexing and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum StateKey {
    /// `pending`, claimable (the head of its entry's queue).
    Pending = 0,
    /// `processing`.
    Processing = 1,
    /// `completed`.
    Completed = 2,
    /// `failed`, will be retried.
    Retrying = 3,
    /// `failed`, no further automatic attempt.
    GaveUp = 4,
    /// `pending` behind an earlier unfinished event of the same entry.
    Waiting = 5,
}

impl StateKey {
    /// Every state.
    pub const ALL: [StateKey; 6] = [StateKey::Pending, StateKey::Processing, StateKey::Completed, StateKey::Retrying, StateKey::GaveUp, StateKey::Waiting];

    /// The state keys a status covers.
    pub fn of_status(status: EventStatus) -> &'static [StateKey] {
        match status {
            EventStatus::Pending => &[StateKey::Pending, StateKey::Waiting],
            EventStatus::Processing => &[StateKey::Processing],
            EventStatus::Completed => &[StateKey::Completed],
            EventStatus::Failed => &[StateKey::Retrying, StateKey::GaveUp],
        }
    }
}

/// The seed's event metadata: what the entry held when the event was written (for a create
/// folded with later edits: its latest values). The upload body is built from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metadata {
    /// Metric (`type` in JS).
    pub metric: Metric,
    /// The value.
    pub quantity: f64,
    /// Measurement time.
    pub date: TimeMs,
}

impl Metadata {
    /// The entry's current values.
    pub fn of(entry: &ProgressEntry) -> Metadata {
        Metadata { metric: entry.metric, quantity: entry.quantity, date: entry.date }
    }
}

/// One unit of work in the outbox (seed: `SDOutboxEvent`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// UUID v4, also the `Idempotency-Key` of every upload of this event.
    pub id: String,
    /// Create, update or delete.
    pub operation: Operation,
    /// The entry's id.
    pub entity_id: String,
    /// Owner.
    pub user_id: String,
    /// Where it stands.
    pub status: EventStatus,
    /// What is sent.
    pub metadata: Metadata,
    /// The entry had no backend id when the event was written (the seed's meaning).
    pub is_new_record: bool,
    /// Failed server answers so far: what `maxAttempts` counts (no answer never counts).
    pub attempt_count: u32,
    /// Requests sent so far (including those that got no answer).
    pub request_count: u32,
    /// Failed answers allowed before giving up.
    pub max_attempts: u32,
    /// Higher uploads first.
    pub priority: i32,
    /// When it was created (in the same transaction as its entry's change).
    pub created_at: TimeMs,
    /// When the last attempt started.
    pub last_attempt_at: Option<TimeMs>,
    /// When a failed event is retried; `None` when not scheduled.
    pub next_attempt_at: Option<TimeMs>,
    /// When the server acknowledged it.
    pub completed_at: Option<TimeMs>,
    /// Why the last attempt failed.
    pub error_message: Option<String>,
    /// Position in its entry's queue (1 for the create).
    pub seq: u32,
    /// Behind an earlier unfinished event of the same entry.
    pub waiting: bool,
    /// A later event of the same entry waits for this one.
    pub blocks: bool,
    /// Claims so far: identifies the claim a result answers.
    pub claims: u32,
    /// The `Outbox` instance holding the current claim.
    pub claimed_by: Option<String>,
    /// Failed tries of any kind since the last success or reset: the backoff step.
    pub tries: u32,
    /// The wait chosen at the last failure (`nextAttemptAt` is never further ahead than this,
    /// unless the device clock went back).
    pub wait_ms: Option<u64>,
    /// Gave up because the server refused it (a 4xx): the server never stored it.
    pub refused: bool,
    /// A request for it may have been stored (see `Decision::Retry::maybe_stored`; also after an
    /// interrupted upload): a later 4xx cannot mean the server never stored it.
    pub maybe_stored: bool,
}

/// A transition the status machine refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The state the event was in.
    pub from: EventStatus,
    /// What was asked.
    pub action: &'static str,
}

/// What recording a result did to the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Completed now.
    Completed,
    /// Failed, retry scheduled.
    Retrying,
    /// Failed for good.
    GaveUp,
}

impl OutboxEvent {
    /// A new event for `entry` (whose values it carries), last in the entry's queue (its `seq`
    /// is the entry's `rev`). Set `waiting` when an earlier event of the entry is unfinished.
    pub fn new(id: String, operation: Operation, entry: &ProgressEntry, priority: i32, max_attempts: u32, now: TimeMs) -> Self {
        OutboxEvent {
            id,
            operation,
            entity_id: entry.id.clone(),
            user_id: entry.user_id.clone(),
            status: EventStatus::Pending,
            metadata: Metadata::of(entry),
            is_new_record: entry.backend_id.is_none(),
            attempt_count: 0,
            request_count: 0,
            max_attempts,
            priority,
            created_at: now,
            last_attempt_at: None,
            next_attempt_at: None,
            completed_at: None,
            error_message: None,
            seq: entry.rev,
            waiting: false,
            blocks: false,
            claims: 0,
            claimed_by: None,
            tries: 0,
            wait_ms: None,
            refused: false,
            maybe_stored: false,
        }
    }

    /// The finer state (see [`StateKey`]).
    pub fn state_key(&self) -> StateKey {
        match self.status {
            EventStatus::Pending if self.waiting => StateKey::Waiting,
            EventStatus::Pending => StateKey::Pending,
            EventStatus::Processing => StateKey::Processing,
            EventStatus::Completed => StateKey::Completed,
            EventStatus::Failed if self.next_attempt_at.is_some() => StateKey::Retrying,
            EventStatus::Failed => StateKey::GaveUp,
        }
    }

    /// Failed with no automatic retry left (all attempts used, or refused).
    pub fn gave_up(&self) -> bool {
        self.state_key() == StateKey::GaveUp
    }

    /// Not completed yet.
    pub fn is_unfinished(&self) -> bool {
        self.status != EventStatus::Completed
    }

    /// No request for it ever went out, and none is going out now.
    pub fn never_sent(&self) -> bool {
        self.request_count == 0 && self.status != EventStatus::Processing && self.status != EventStatus::Completed
    }

    /// Nothing of it can be on the server: never sent, or refused outright (a 4xx).
    pub fn never_stored(&self) -> bool {
        self.never_sent() || (self.status == EventStatus::Failed && self.refused)
    }

    /// A refused update or delete is superseded by any later event of its entry: that event
    /// carries the entry's latest state (a full body, or its deletion), as an edit written after
    /// the refusal would. It is removed, never sent: a `resetForRetry` would send its older values
    /// after the newer ones. A refused create is not: what follows it needs the id only the create
    /// brings (the store turns a waiting update into the create instead, see
    /// [`Self::replace_refused_create`]).
    pub fn superseded_by_later(&self) -> bool {
        self.status == EventStatus::Failed && self.refused && self.operation != Operation::Create
    }

    /// Its counts before the attempt being decided (`retry::decide`).
    pub fn attempt(&self) -> Attempt {
        Attempt {
            operation: self.operation,
            attempt_count: self.attempt_count,
            tries: self.tries,
            max_attempts: self.max_attempts,
            maybe_stored: self.maybe_stored,
        }
    }

    /// What the server receives.
    pub fn body(&self) -> Body<'_> {
        Body {
            local_id: &self.entity_id,
            user_id: &self.user_id,
            metric: self.metadata.metric,
            quantity: self.metadata.quantity,
            date_iso: to_iso8601(self.metadata.date),
        }
    }

    fn refuse(&self, action: &'static str) -> IllegalTransition {
        IllegalTransition { from: self.status, action }
    }

    fn in_claim(&self, claims: u32) -> bool {
        self.status == EventStatus::Processing && self.claims == claims
    }

    /// A retrying event goes back to the queue (seed: `failed -> pending (retry)`), keeping its
    /// counts and last error until the next attempt reports. Whether it is due is the caller's
    /// decision (see [`super::retry::is_due`]).
    pub fn promote(&mut self) -> Result<(), IllegalTransition> {
        if self.state_key() != StateKey::Retrying {
            return Err(self.refuse("promote"));
        }
        self.status = EventStatus::Pending;
        self.next_attempt_at = None;
        Ok(())
    }

    /// pending (head of its queue) -> processing, claimed by `owner`: a request is about to go out.
    pub fn claim(&mut self, owner: &str, now: TimeMs) -> Result<u32, IllegalTransition> {
        if self.state_key() != StateKey::Pending {
            return Err(self.refuse("claim"));
        }
        self.status = EventStatus::Processing;
        self.claims += 1;
        self.request_count += 1;
        self.last_attempt_at = Some(now);
        self.next_attempt_at = None;
        self.claimed_by = Some(owner.to_owned());
        Ok(self.claims)
    }

    /// Hands back claim `claims` whose request never went out: pending again, nothing counted.
    pub fn release(&mut self, claims: u32) -> Result<(), IllegalTransition> {
        if !self.in_claim(claims) {
            return Err(self.refuse("release"));
        }
        self.status = EventStatus::Pending;
        self.request_count = self.request_count.saturating_sub(1);
        self.claimed_by = None;
        Ok(())
    }

    /// Applies the decision about claim `claims`.
    ///
    /// A success is recorded whatever happened meanwhile (the server has it; completing is
    /// always right). A failure is recorded only while the event is still in that claim: if a
    /// stale reset or `resetForRetry` handed it to another attempt, this late report is dropped.
    pub fn apply(&mut self, claims: u32, decision: &Decision, now: TimeMs) -> Result<Applied, IllegalTransition> {
        match decision {
            Decision::Complete { .. } => {
                if self.status == EventStatus::Completed {
                    return Err(self.refuse("complete"));
                }
                self.status = EventStatus::Completed;
                self.completed_at = Some(now);
                self.next_attempt_at = None;
                self.error_message = None;
                self.claimed_by = None;
                self.waiting = false;
                self.wait_ms = None;
                self.tries = 0;
                Ok(Applied::Completed)
            }
            Decision::Retry { at, wait_ms, message, counted, sent, maybe_stored, stepped } => {
                if !self.in_claim(claims) {
                    return Err(self.refuse("fail"));
                }
                self.status = EventStatus::Failed;
                self.next_attempt_at = Some(*at);
                self.wait_ms = Some(*wait_ms);
                self.error_message = Some(message.clone());
                self.tries += u32::from(*stepped);
                self.attempt_count += u32::from(*counted);
                self.maybe_stored |= *maybe_stored;
                if !sent {
                    self.request_count = self.request_count.saturating_sub(1);
                }
                self.claimed_by = None;
                Ok(Applied::Retrying)
            }
            Decision::GiveUp { message, refused, maybe_stored } => {
                if !self.in_claim(claims) {
                    return Err(self.refuse("give up"));
                }
                self.status = EventStatus::Failed;
                self.next_attempt_at = None;
                self.wait_ms = None;
                self.error_message = Some(message.clone());
                self.tries += 1;
                self.attempt_count += 1;
                self.refused = *refused;
                self.maybe_stored |= *maybe_stored;
                self.claimed_by = None;
                Ok(Applied::GaveUp)
            }
        }
    }

    /// A stale claim (its context died mid-upload, or hangs) goes back to the queue. Its request
    /// may have reached the server: it stays counted, and the retry carries the same key.
    pub fn recover_stale(&mut self) -> Result<(), IllegalTransition> {
        if self.status != EventStatus::Processing {
            return Err(self.refuse("recover"));
        }
        self.status = EventStatus::Pending;
        self.maybe_stored = true;
        self.claimed_by = None;
        self.error_message = Some("upload interrupted (its page closed, crashed or hung mid-upload); retrying with the same key".into());
        Ok(())
    }

    /// `resetForRetry`: a failed (or, `stale`, processing) event goes back to pending with its
    /// attempts at 0.
    pub fn reset_for_retry(&mut self, stale: bool) -> Result<(), IllegalTransition> {
        if !(self.status == EventStatus::Failed || (stale && self.status == EventStatus::Processing)) {
            return Err(self.refuse("reset"));
        }
        // A stale claim's request may have reached the server (as in `recover_stale`).
        self.maybe_stored |= self.status == EventStatus::Processing;
        self.status = EventStatus::Pending;
        self.attempt_count = 0;
        self.tries = 0;
        self.next_attempt_at = None;
        self.wait_ms = None;
        self.error_message = None;
        self.refused = false;
        self.claimed_by = None;
        Ok(())
    }

    /// An update or delete that nothing can ever address (its entry has no backend id and is
    /// stored nowhere on this device): it gives up unsent, as refused (it holds nothing back),
    /// with nothing counted: no request went out and no server answered.
    pub fn give_up_unsent(&mut self, message: String) -> Result<(), IllegalTransition> {
        if self.state_key() != StateKey::Pending {
            return Err(self.refuse("give up unsent"));
        }
        self.status = EventStatus::Failed;
        self.next_attempt_at = None;
        self.wait_ms = None;
        self.error_message = Some(message);
        self.refused = true;
        Ok(())
    }

    /// The event before this one in its entry's queue completed: this one may go.
    pub fn unblock(&mut self) {
        self.waiting = false;
    }

    /// The create before this update was refused outright (the server never stored the entry):
    /// this update, written while that create was in flight, goes as the entry's create instead
    /// (its own key, the latest values), with nothing ahead of it. An update could never be
    /// addressed: the entry has no backend id and never will from that create.
    pub fn replace_refused_create(&mut self) -> Result<(), IllegalTransition> {
        if self.operation != Operation::Update || !self.never_sent() {
            return Err(self.refuse("replace a refused create"));
        }
        self.operation = Operation::Create;
        self.is_new_record = true;
        self.waiting = false;
        Ok(())
    }

    /// Folds an edit into this never-sent create: it will upload the latest values, once.
    pub fn fold(&mut self, entry: &ProgressEntry) -> Result<(), IllegalTransition> {
        if self.operation != Operation::Create || !self.never_sent() {
            return Err(self.refuse("fold"));
        }
        self.metadata = Metadata::of(entry);
        Ok(())
    }
}

/// How an edit of an entry reaches the server, given its unfinished events (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditPlan {
    /// Rewrite this never-sent create with the latest values: it uploads once.
    Fold {
        /// The create event.
        event_id: String,
    },
    /// Write a new event, after removing `drop` (refused events it supersedes: the server never
    /// stored them, the new one carries the latest values). `waiting` when an earlier event of
    /// the entry still blocks it.
    Queue {
        /// Its operation.
        operation: Operation,
        /// Behind another event.
        waiting: bool,
        /// Superseded refused events.
        drop: Vec<String>,
    },
    /// Nothing of the entry ever reached the server: remove the entry and these events, send nothing.
    Remove {
        /// Its unfinished events.
        event_ids: Vec<String>,
    },
}

impl OutboxEvent {
    /// Holds back the events after it in its entry's queue: unfinished, and not refused by the
    /// server (a refused event was never stored: what follows it may go).
    pub fn blocking(&self) -> bool {
        self.is_unfinished() && !(self.status == EventStatus::Failed && self.refused)
    }
}

fn refused_ids(unfinished: &[OutboxEvent]) -> Vec<String> {
    unfinished.iter().filter(|e| !e.blocking()).map(|e| e.id.clone()).collect()
}

/// How `update` of `entry` goes out, given its unfinished events in queue order.
pub fn plan_update(entry: &ProgressEntry, unfinished: &[OutboxEvent]) -> EditPlan {
    let create_first = unfinished.first().is_some_and(|e| e.operation == Operation::Create);
    match unfinished {
        [only] if only.operation == Operation::Create && only.never_sent() => EditPlan::Fold { event_id: only.id.clone() },
        // Nothing of it stored (its create refused, say for a typo the user now fixed): a fresh
        // create, with a new key, replaces what was queued.
        _ if create_first && unfinished.iter().all(OutboxEvent::never_stored) => {
            EditPlan::Queue { operation: Operation::Create, waiting: false, drop: unfinished.iter().map(|e| e.id.clone()).collect() }
        }
        // Never synced and nothing queued (an entry older than the outbox): it goes as a create.
        [] if entry.backend_id.is_none() => EditPlan::Queue { operation: Operation::Create, waiting: false, drop: Vec::new() },
        _ => EditPlan::Queue { operation: Operation::Update, waiting: unfinished.iter().any(OutboxEvent::blocking), drop: refused_ids(unfinished) },
    }
}

/// How `delete` of `entry` goes out, given its unfinished events in queue order.
pub fn plan_delete(entry: &ProgressEntry, unfinished: &[OutboxEvent]) -> EditPlan {
    let create_first = unfinished.first().is_some_and(|e| e.operation == Operation::Create);
    if (create_first && unfinished.iter().all(OutboxEvent::never_stored)) || (unfinished.is_empty() && entry.backend_id.is_none()) {
        return EditPlan::Remove { event_ids: unfinished.iter().map(|e| e.id.clone()).collect() };
    }
    EditPlan::Queue { operation: Operation::Delete, waiting: unfinished.iter().any(OutboxEvent::blocking), drop: refused_ids(unfinished) }
}

/// What an entry is now, stored (or its tombstone), when one of its events set aside as
/// unreadable becomes readable again.
#[derive(Debug, Clone, Copy)]
pub struct EntityNow {
    /// It holds a backend id.
    pub synced: bool,
    /// Its `rev`: the `seq` of the last event written for it (events completed and cleaned up
    /// since included).
    pub rev: u32,
}

/// Whether an unfinished event set aside as unreadable, readable again, may go back in its
/// entry's queue (`entity`: the entry now, `None` when neither it nor its tombstone is stored;
/// `queue`: its readable events, and the other events coming back with a higher `seq`). Not when
/// its entry moved on without it: edits made meanwhile took it for never made, so a create is
/// superseded once the entry has a backend id or another create (sent again, it would store a
/// second record), and an update or delete once a later event of the entry was written, even if
/// that one completed and was cleaned up since (sent after it, its older values would win); and
/// no event of an entry that is gone (deleted with nothing of it sent, or its delete completed).
/// A finished event is history and always comes back.
pub fn restorable(kept: &OutboxEvent, entity: Option<EntityNow>, queue: &[OutboxEvent]) -> bool {
    if !kept.is_unfinished() {
        return true;
    }
    let Some(now) = entity else { return false };
    let others = || queue.iter().filter(|e| e.id != kept.id);
    match kept.operation {
        Operation::Create => !now.synced && !others().any(|e| e.operation == Operation::Create),
        Operation::Update | Operation::Delete => now.rev <= kept.seq && !others().any(|e| e.seq > kept.seq),
    }
}

/// Sets `waiting` and `blocks` across an entry's events (every record of it, completed ones too,
/// in `seq` order) as the queue rules have them, which is how an event's end releases the next:
/// a pending event waits while the record just before it blocks, and that one is marked to
/// release it when it ends. For a queue put together from outside those rules (events set aside
/// and restored, or dropped at restore, with flags from before). Returns the positions of the
/// events changed.
pub fn requeue(queue: &mut [OutboxEvent]) -> Vec<usize> {
    let mut changed = Vec::new();
    for i in 0..queue.len() {
        if queue[i].status != EventStatus::Pending {
            continue;
        }
        let before = i.checked_sub(1).filter(|&b| queue[b].blocking());
        if queue[i].waiting != before.is_some() {
            queue[i].waiting = before.is_some();
            changed.push(i);
        }
        if let Some(b) = before.filter(|&b| !queue[b].blocks) {
            queue[b].blocks = true;
            changed.push(b);
        }
    }
    changed
}

#[cfg(test)]
mod tests;
