//! The outbox queue: saving an entry with its event, edits and deletes with theirs (each in one
//! strict-durability transaction), claiming the next events for upload, recording what their
//! uploads ended with, and handing back claims that were never sent.
//!
//! Claims and results use relaxed durability: losing one in a power cut means one more upload,
//! which the event's `Idempotency-Key` makes harmless.

use wasm_bindgen::JsValue;

use super::quarantine;
use super::records::{
    decode_entry, decode_event, decode_leader, decode_meta, encode_entry, encode_event, encode_leader, encode_meta, index, leader_key, meta_key,
    with_backend_id, Looked,
};
use super::records::{ENTRIES, EVENTS, META, QUARANTINE, TOMBSTONES};
use super::Store;
use crate::domain::entry::{ProgressEntry, UpdateInput};
use crate::domain::event::{plan_delete, plan_update, Applied, EditPlan, EventStatus, Operation, OutboxEvent, StateKey};
use crate::domain::lease::Beat;
use crate::domain::retry::{unaddressable, Decision, EntryKept, CLOCK_SLACK_MS};
use crate::domain::stats::UserMeta;
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::idb::{bound, error, key2, key3, Asked, Mode, Round, Tx};
use crate::platform::timer::Deadline;
use crate::platform::{new_id, now};

/// Due retries promoted per claim by each of the ways they come due (the wall clock, beyond any
/// allowed wait, this context's schedule), so one claim stays short even after a long outage.
pub const PROMOTE_PER_CLAIM: u32 = 500;

/// The context that uploads, as written in the uploader record (it fences claims and beats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// The `Outbox` instance.
    pub owner: String,
    /// Its leadership generation.
    pub gen: u64,
}

/// A claimed event, ready to upload.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The event, now `processing`.
    pub event: OutboxEvent,
    /// The server's id of its entry (updates and deletes go to `{endpoint}/{backendId}`).
    pub backend_id: Option<String>,
}

/// What a claim handed to the processor.
#[derive(Debug, Default)]
pub struct Claim {
    /// Failed events whose retry came due and went back to the queue (their ids).
    pub promoted: Vec<String>,
    /// Claimed events.
    pub items: Vec<Claimed>,
    /// Unreadable records set aside.
    pub quarantined: u32,
    /// The uploader record names another context, or is gone (a wiped database): this one no
    /// longer leads; nothing was claimed.
    pub fenced: Option<super::lease::Renewal>,
    /// Events that could not be addressed yet (no backend id) and wait (ms) before another look.
    pub waits: Vec<(String, u64)>,
    /// Events that cannot be addressed and no longer wait (no backend id, their entry kept nowhere,
    /// or set aside unreadable for 7 days): given up unsent, with their entry's id and why.
    pub gave_up: Vec<(String, String, String)>,
}

/// One upload result to record.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// The event.
    pub event_id: &'a str,
    /// The claim it answers.
    pub claim: u32,
    /// What to do.
    pub decision: &'a Decision,
    /// The server answered (a failure then counts toward the health's "failed in a row").
    pub answered: bool,
    /// When it was decided.
    pub at: TimeMs,
}

/// What recording a result did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The event as it now stands.
    Applied(OutboxEvent, Applied),
    /// The event had moved on (reset, recovered, completed elsewhere) or is gone: nothing written.
    Dropped,
}

/// What an edit did.
#[derive(Debug, Clone)]
pub struct Edit {
    /// The entry after the edit (for a delete: as it was).
    pub entry: ProgressEntry,
    /// The event written or rewritten (`None`: a delete that removed everything, nothing to send).
    pub event_id: Option<String>,
    /// The edit went into a never-sent create.
    pub folded: bool,
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

/// The `byEntity` range of entry `id`'s events from sequence number `seq` on (its whole queue
/// from 0; the events behind one from its `seq + 1`).
fn queue_from(id: &str, seq: f64) -> Result<idb::Query> {
    let key = s(id);
    bound(&key2(&key, seq), &key2(&key, f64::INFINITY))
}

/// Asks (in `round`) for the events queued behind `e` in its entry's queue, the next `limit`.
fn ask_behind(round: &mut Round, by_entity: &idb::Index, e: &OutboxEvent, limit: Option<u32>) -> Result<Asked> {
    round.ask(by_entity.get_all(Some(queue_from(&e.entity_id, e.seq as f64 + 1.0)?), limit))
}

/// Asks for the events of entry `id` (its whole queue) in `round`.
pub(super) fn ask_queue_of(round: &mut Round, events: &idb::ObjectStore, id: &str, op: &'static str) -> Result<Asked> {
    let by_entity = events.index(index::BY_ENTITY).map_err(error(op))?;
    round.ask(by_entity.get_all(Some(queue_from(id, 0.0)?), None))
}

/// The unfinished events of an entry's queue, in order.
fn unfinished(asked: &Asked, op: &'static str) -> Result<Vec<OutboxEvent>> {
    let mut out = Vec::new();
    for raw in asked.values() {
        // An unreadable event of this entry cannot be reasoned about: refuse the edit.
        let e = decode_event(&raw).map_err(|why| Error::Storage { operation: op, detail: format!("an event of this entry cannot be read ({why})") })?;
        if e.is_unfinished() {
            out.push(e);
        }
    }
    Ok(out)
}

fn put(store: &idb::ObjectStore, value: &JsValue, op: &'static str) -> Result<()> {
    store.put(value, None).map(drop).map_err(error(op))
}

impl Store {
    /// Saves a new entry and its event in one strict-durability transaction: both or neither.
    /// Resolves after the commit. `add`, never `put`: an id collision fails, never overwrites.
    pub async fn save(&self, entry: &ProgressEntry, event: &OutboxEvent, by: Deadline) -> Result<()> {
        const OP: &str = "saving an entry";
        let tx = self.db().begin_by(&[ENTRIES, EVENTS], Mode::Strict, OP, by).await?;
        tx.run(async {
            tx.store(ENTRIES)?.add(&encode_entry(entry, None), None).map_err(error(OP))?;
            tx.store(EVENTS)?.add(&encode_event(event), None).map_err(error(OP))?;
            Ok(())
        })
        .await
    }

    /// `update(entryId, changes)`: the entry's new values and their event, in one strict
    /// transaction (folded into a never-sent create, or a new event queued behind the entry's
    /// unfinished ones).
    pub async fn update(
        &self,
        id: &str,
        input: UpdateInput,
        max_attempts: u32,
        at: TimeMs,
        withdraw: &dyn Fn(&OutboxEvent) -> bool,
        by: Deadline,
    ) -> Result<Edit> {
        const OP: &str = "updating an entry";
        let tx = self.db().begin_by(&[ENTRIES, EVENTS, TOMBSTONES, QUARANTINE], Mode::Strict, OP, by).await?;
        tx.run(update_in(&tx, id, input, max_attempts, at, withdraw)).await
    }

    /// `delete(entryId)`: removes the entry from `entries()` and queues its delete, in one strict
    /// transaction; or, when nothing of it ever reached the server, removes it and its events.
    pub async fn delete(&self, id: &str, max_attempts: u32, at: TimeMs, withdraw: &dyn Fn(&OutboxEvent) -> bool, by: Deadline) -> Result<Edit> {
        const OP: &str = "deleting an entry";
        let tx = self.db().begin_by(&[ENTRIES, EVENTS, TOMBSTONES, QUARANTINE], Mode::Strict, OP, by).await?;
        tx.run(delete_in(&tx, id, max_attempts, at, withdraw)).await
    }

    /// Claims up to `limit` events of `user` for upload, in priority-desc / createdAt-asc order,
    /// for uploader `lead` (fenced: if the uploader record names another context, nothing is
    /// claimed). First, retries come due go back to the queue: those whose time has come on the
    /// wall clock, those further ahead than any wait allows (the clock was set back), and `due`
    /// (ids whose backoff elapsed on this context's monotonic clock). `waiting`: ids whose backoff
    /// runs on this context's monotonic clock and has not elapsed: never due early because of a
    /// clock set back. Update and delete events come with their entry's backend id.
    pub async fn claim(&self, user: &str, lead: &Lead, limit: u32, due: &[String], waiting: &dyn Fn(&str) -> bool, longest_wait: u64) -> Result<Claim> {
        const OP: &str = "claiming events";
        let tx = self.db().begin(&[EVENTS, ENTRIES, TOMBSTONES, META, QUARANTINE], Mode::Relaxed, OP).await?;
        tx.run(claim_in(&tx, user, lead, limit, due, waiting, longest_wait)).await
    }

    /// Records upload results in one transaction (the processor's group commit), with their
    /// consequences: a completed create gives its entry (or tombstone) the backend id, a completed
    /// delete removes the tombstone, and the next event of the entry may go. `lead`: the uploader,
    /// whose heartbeat this also renews while the record still names it.
    pub async fn record(&self, results: &[Outcome<'_>], lead: Option<&Lead>) -> Result<Vec<Recorded>> {
        const OP: &str = "recording upload results";
        let tx = self.db().begin(&[EVENTS, ENTRIES, TOMBSTONES, META, QUARANTINE], Mode::Relaxed, OP).await?;
        tx.run(record_in(&tx, results, lead)).await
    }

    /// Hands back claims whose requests never went out (`(event id, claim)`): pending again,
    /// nothing counted. Returns how many were still in that claim.
    pub async fn release(&self, claims: &[(String, u32)]) -> Result<u32> {
        self.back_to_queue(claims, false, "handing back claimed events").await.map(|v| v.len() as u32)
    }

    /// Puts stale claims (`(event id, claim)`: their context died or hangs) back in the queue;
    /// returns the events recovered.
    pub async fn recover(&self, claims: &[(String, u32)]) -> Result<Vec<OutboxEvent>> {
        self.back_to_queue(claims, true, "recovering stale events").await
    }

    async fn back_to_queue(&self, claims: &[(String, u32)], stale: bool, op: &'static str) -> Result<Vec<OutboxEvent>> {
        let tx = self.db().begin(&[EVENTS], Mode::Relaxed, op).await?;
        tx.run(async {
            let events = tx.store(EVENTS)?;
            let mut round = Round::new(op);
            let mut reads = Vec::with_capacity(claims.len());
            for (id, _) in claims {
                reads.push(round.ask(events.get(s(id)))?);
            }
            round.done().await?;
            let mut out = Vec::new();
            for ((_, claim), read) in claims.iter().zip(reads) {
                let Ok(mut e) = decode_event(&read.value()) else { continue };
                let moved =
                    if stale { e.status == EventStatus::Processing && e.claims == *claim && e.recover_stale().is_ok() } else { e.release(*claim).is_ok() };
                if moved {
                    put(&events, &encode_event(&e), op)?;
                    out.push(e);
                }
            }
            Ok(out)
        })
        .await
    }

    /// `resetForRetry`: failed events named in `ids`, and processing ones `is_stale` says are
    /// stale, go back to pending with 0 attempts; others are left alone. Records set aside as
    /// unreadable (listed by `events()` as gave up) cannot be reset and are skipped; a refused
    /// update or delete a later event of its entry follows is superseded by it and removed
    /// (`OutboxEvent::superseded_by_later`, as in `record_in`), never sent after newer values.
    /// An id found nowhere fails the whole call and changes nothing. Returns the events reset.
    pub async fn reset_for_retry(&self, ids: &[String], is_stale: &dyn Fn(&OutboxEvent) -> bool, by: Deadline) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "resetting events";
        let tx = self.db().begin_by(&[EVENTS, QUARANTINE], Mode::Relaxed, OP, by).await?;
        tx.run(async {
            let (events, q) = (tx.store(EVENTS)?, tx.store(QUARANTINE)?);
            let mut round = Round::new(OP);
            let mut reads = Vec::with_capacity(ids.len());
            for id in ids {
                reads.push((round.ask(events.get(s(id)))?, quarantine::ask_event(&mut round, &q, id)?));
            }
            round.done().await?;
            let mut found = Vec::with_capacity(ids.len());
            for (id, (read, kept)) in ids.iter().zip(reads) {
                let raw = read.value();
                if raw.is_undefined() {
                    if kept.value().is_undefined() {
                        return Err(Error::UnknownEvent(id.clone()));
                    }
                    continue;
                }
                found.push(decode_event(&raw).map_err(|why| Error::Storage { operation: OP, detail: format!("event \"{id}\" cannot be read ({why})") })?);
            }
            // Refused updates and deletes: does a later event of the same entry follow?
            let by_entity = events.index(index::BY_ENTITY).map_err(error(OP))?;
            let mut later = Vec::with_capacity(found.len());
            for e in &found {
                later.push(e.superseded_by_later().then(|| round.ask(by_entity.count(Some(queue_from(&e.entity_id, e.seq as f64 + 1.0)?)))).transpose()?);
            }
            round.done().await?;
            let mut reset = Vec::new();
            for (mut e, later) in found.into_iter().zip(later) {
                if later.is_some_and(|n| n.count() > 0) {
                    events.delete(s(&e.id)).map_err(error(OP))?;
                    continue;
                }
                let stale = is_stale(&e);
                if e.reset_for_retry(stale).is_ok() {
                    put(&events, &encode_event(&e), OP)?;
                    reset.push(e);
                }
            }
            Ok(reset)
        })
        .await
    }
}

/// Reads entry `id` and its queue (one round); `method` names the call in an unknown-id error.
async fn entry_and_queue(tx: &Tx, id: &str, method: &'static str, op: &'static str) -> Result<(ProgressEntry, Vec<OutboxEvent>)> {
    let mut round = Round::new(op);
    let raw = round.ask(tx.store(ENTRIES)?.get(s(id)))?;
    let queue = ask_queue_of(&mut round, &tx.store(EVENTS)?, id, op)?;
    round.done().await?;
    let raw = raw.value();
    let unreadable = |why: &str| Error::Storage { operation: op, detail: format!("the entry cannot be read ({why})") };
    if raw.is_undefined() {
        // Set aside as unreadable (and not deleted since): still there, as it was in place.
        // Looked at only here, off the path of every edit of an entry that is stored.
        let kept = quarantine::ask_kept(&mut round, &tx.store(QUARANTINE)?, ENTRIES, id)?;
        let deleted = round.ask(tx.store(TOMBSTONES)?.get(s(id)))?;
        round.done().await?;
        if let Some(kept) = quarantine::read_kept(&kept.value()).filter(|_| deleted.value().is_undefined()) {
            return Err(unreadable(&format!("set aside in quarantine: {}", kept.reason)));
        }
        return Err(Error::UnknownEntry { method, id: id.into() });
    }
    let entry = decode_entry(&raw).map_err(|why| unreadable(&why))?;
    Ok((entry, unfinished(&queue, op)?))
}

/// An edit, once checked, takes back the events of its entry this context claimed but has not
/// started to send (`withdraw` says which): pending again, nothing counted, so the edit folds
/// into them or removes them as it would had they never been claimed (CONTRACT: "no request made
/// for it yet"). Should the edit's transaction still fail, such an event stays claimed by this
/// context: the pass hands that claim back unsent (see `Shared::start_sending`).
fn take_back(events: &idb::ObjectStore, unfinished: &mut [OutboxEvent], withdraw: &dyn Fn(&OutboxEvent) -> bool, op: &'static str) -> Result<()> {
    for e in unfinished.iter_mut().filter(|e| e.status == EventStatus::Processing) {
        let claim = e.claims;
        if withdraw(e) && e.release(claim).is_ok() {
            put(events, &encode_event(e), op)?;
        }
    }
    Ok(())
}

async fn update_in(tx: &Tx, id: &str, input: UpdateInput, max_attempts: u32, at: TimeMs, withdraw: &dyn Fn(&OutboxEvent) -> bool) -> Result<Edit> {
    const OP: &str = "updating an entry";
    let (entries, events) = (tx.store(ENTRIES)?, tx.store(EVENTS)?);
    let (mut entry, mut unfinished) = entry_and_queue(tx, id, "update", OP).await?;
    let change = input.change_for(&entry)?;
    take_back(&events, &mut unfinished, withdraw, OP)?;
    let plan = plan_update(&entry, &unfinished);
    entry.edit(&change, at);
    let (event_id, folded) = match plan {
        EditPlan::Fold { event_id } => {
            if let Some(e) = unfinished.iter_mut().find(|e| e.id == event_id) {
                e.fold(&entry).map_err(|_| Error::Storage { operation: OP, detail: "the pending create could not take the edit".into() })?;
                put(&events, &encode_event(e), OP)?;
            }
            (Some(event_id), true)
        }
        EditPlan::Queue { operation, waiting, drop } => {
            drop_superseded(&events, &mut unfinished, &drop, OP)?;
            (Some(queue_event(&events, &mut entry, &mut unfinished, operation, waiting, max_attempts, at)?), false)
        }
        EditPlan::Remove { .. } => (None, false),
    };
    put(&entries, &encode_entry(&entry, None), OP)?;
    Ok(Edit { entry, event_id, folded })
}

/// Removes refused events a new edit supersedes (the server never stored them).
fn drop_superseded(events: &idb::ObjectStore, unfinished: &mut Vec<OutboxEvent>, drop: &[String], op: &'static str) -> Result<()> {
    for id in drop {
        events.delete(s(id)).map_err(error(op))?;
    }
    unfinished.retain(|e| !drop.contains(&e.id));
    Ok(())
}

/// Writes a new event for `entry` at the end of its queue; marks the last event still blocking
/// it, so that event's completion lets the new one go.
fn queue_event(
    events: &idb::ObjectStore,
    entry: &mut ProgressEntry,
    unfinished: &mut [OutboxEvent],
    operation: Operation,
    waiting: bool,
    max_attempts: u32,
    at: TimeMs,
) -> Result<String> {
    const OP: &str = "queueing an event";
    let priority = unfinished.last().map_or(0, |e| e.priority);
    let seq = entry.rev.max(unfinished.last().map_or(0, |e| e.seq)) + 1;
    entry.rev = seq;
    let mut event = OutboxEvent::new(new_id(), operation, entry, priority, max_attempts, at);
    event.waiting = waiting;
    if let Some(before) = unfinished.iter_mut().rev().find(|e| e.blocking()) {
        if !before.blocks {
            before.blocks = true;
            put(events, &encode_event(before), OP)?;
        }
    }
    events.add(&encode_event(&event), None).map_err(error(OP))?;
    Ok(event.id)
}

async fn delete_in(tx: &Tx, id: &str, max_attempts: u32, at: TimeMs, withdraw: &dyn Fn(&OutboxEvent) -> bool) -> Result<Edit> {
    const OP: &str = "deleting an entry";
    let (entries, events, tombstones) = (tx.store(ENTRIES)?, tx.store(EVENTS)?, tx.store(TOMBSTONES)?);
    let (mut entry, mut unfinished) = entry_and_queue(tx, id, "delete", OP).await?;
    take_back(&events, &mut unfinished, withdraw, OP)?;
    entries.delete(s(id)).map_err(error(OP))?;
    let event_id = match plan_delete(&entry, &unfinished) {
        EditPlan::Remove { event_ids } => {
            for e in &event_ids {
                events.delete(s(e)).map_err(error(OP))?;
            }
            None
        }
        EditPlan::Queue { operation, waiting, drop } => {
            drop_superseded(&events, &mut unfinished, &drop, OP)?;
            let event_id = queue_event(&events, &mut entry, &mut unfinished, operation, waiting, max_attempts, at)?;
            tombstones.put(&encode_entry(&entry, Some(at)), None).map_err(error(OP))?;
            Some(event_id)
        }
        EditPlan::Fold { .. } => None, // never planned for a delete
    };
    Ok(Edit { entry, event_id, folded: false })
}

/// An unreadable record a claim sets aside: its store, the record, and why it cannot be read.
type Unreadable = (&'static str, JsValue, String);

/// What a claim learns from an entry or tombstone of `store` (`undefined` when none): the backend
/// id it holds (read even from one this version cannot read), the record when it is readable,
/// and, when it is not and holds no id, what to set aside and why.
fn look(store: &'static str, raw: JsValue) -> (Option<String>, Option<Home>, Option<Unreadable>) {
    match Looked::at(&raw) {
        Looked::Missing => (None, None, None),
        Looked::Readable(id) => (id, Some((store, raw)), None),
        Looked::Unreadable { backend_id: Some(id), .. } => (Some(id), None, None),
        Looked::Unreadable { backend_id: None, why } => (None, None, Some((store, raw, why))),
    }
}

/// A readable entry or tombstone a claim found: its store and the record.
type Home = (&'static str, JsValue);

async fn claim_in(tx: &Tx, user: &str, lead: &Lead, limit: u32, due: &[String], waiting: &dyn Fn(&str) -> bool, longest_wait: u64) -> Result<Claim> {
    const OP: &str = "claiming events";
    let (events, entries, tombstones, meta, q) = (tx.store(EVENTS)?, tx.store(ENTRIES)?, tx.store(TOMBSTONES)?, tx.store(META)?, tx.store(QUARANTINE)?);
    let mut claim = Claim::default();
    let at = now();
    let u = s(user);

    // Round 1: the uploader record (fencing) and the retries come due: on the wall clock, beyond
    // any allowed wait (the clock was set back), or by id (this context's monotonic schedule).
    let mut round = Round::new(OP);
    let holder = round.ask(meta.get(leader_key(user)))?;
    let retry = events.index(index::RETRY).map_err(error(OP))?;
    let ahead = (at as f64) + longest_wait as f64 + CLOCK_SLACK_MS as f64;
    let ranges = [
        round.ask(retry.get_all(Some(bound(&key2(&u, f64::NEG_INFINITY), &key2(&u, at as f64))?), Some(PROMOTE_PER_CLAIM)))?,
        round.ask(retry.get_all(Some(bound(&key2(&u, ahead), &key2(&u, f64::INFINITY))?), Some(PROMOTE_PER_CLAIM)))?,
    ];
    let mut by_id = Vec::with_capacity(due.len());
    for id in due {
        by_id.push(round.ask(events.get(s(id)))?);
    }
    round.done().await?;
    claim.fenced = match decode_leader(&holder.value()) {
        None => Some(super::lease::Renewal::Gone),
        Some(b) if b.owner != lead.owner || b.gen != lead.gen => Some(super::lease::Renewal::TakenOver),
        Some(_) => None,
    };
    if claim.fenced.is_some() {
        return Ok(claim);
    }
    let mut due_raws: Vec<JsValue> = ranges[0].values();
    // Beyond any allowed wait: due, unless this context times that retry itself (then its clock
    // was set back, and the backoff still runs here).
    due_raws.extend(ranges[1].values().into_iter().filter(|raw| crate::platform::get(raw, "id").as_string().is_none_or(|id| !waiting(&id))));
    due_raws.extend(by_id.iter().map(Asked::value).filter(|v| !v.is_undefined()));
    // An event due both ways was read twice: promoted (written) once.
    for raw in &due_raws {
        match decode_event(raw) {
            Ok(mut e) => {
                if e.user_id == user && !claim.promoted.contains(&e.id) && e.promote().is_ok() {
                    put(&events, &encode_event(&e), OP)?;
                    claim.promoted.push(e.id);
                }
            }
            Err(why) => {
                quarantine::move_in(&events, &q, EVENTS, raw, &why, at)?;
                claim.quarantined += 1;
            }
        }
    }

    // Round 2: the head of the queue (after the promotions above, same transaction).
    let ready = events.index(index::READY).map_err(error(OP))?;
    let range = bound(&key3(&u, f64::NEG_INFINITY, f64::NEG_INFINITY), &key3(&u, f64::INFINITY, f64::INFINITY))?;
    let head = round.ask(ready.get_all(Some(range), Some(limit)))?;
    round.done().await?;

    // Round 3: updates and deletes need their entry's backend id; round 4 (rare): an update
    // written before its entry was deleted finds the entry among the tombstones.
    let mut picked = Vec::new();
    for raw in head.values() {
        match decode_event(&raw) {
            Ok(e) => {
                let lookup = match e.operation {
                    Operation::Create => None,
                    Operation::Update => Some(round.ask(entries.get(s(&e.entity_id)))?),
                    Operation::Delete => Some(round.ask(tombstones.get(s(&e.entity_id)))?),
                };
                picked.push((e, lookup));
            }
            Err(why) => {
                quarantine::move_in(&events, &q, EVENTS, &raw, &why, at)?;
                claim.quarantined += 1;
            }
        }
    }
    round.done().await?;
    // The entry's backend id (read even from a record this version cannot read), and whether the
    // entry (or its tombstone) is stored readable. One unreadable and holding no id is set aside,
    // as every read that comes across one does: the wait for a version that restores it is then
    // bounded (below).
    let mut ids: Vec<Option<String>> = Vec::with_capacity(picked.len());
    let mut stored: Vec<bool> = Vec::with_capacity(picked.len());
    let mut aside: Vec<Option<Unreadable>> = Vec::with_capacity(picked.len());
    let mut homes: Vec<Option<Home>> = Vec::with_capacity(picked.len());
    for (e, lookup) in &picked {
        let store = if e.operation == Operation::Update { ENTRIES } else { TOMBSTONES };
        let raw = lookup.as_ref().map_or(JsValue::UNDEFINED, Asked::value);
        let (id, home, unreadable) = look(store, raw);
        ids.push(id);
        stored.push(home.is_some());
        homes.push(home);
        aside.push(unreadable);
    }
    let mut again = Vec::new();
    for (i, (e, _)) in picked.iter().enumerate() {
        if e.operation == Operation::Update && ids[i].is_none() {
            again.push((i, round.ask(tombstones.get(s(&e.entity_id)))?));
        }
    }
    if !again.is_empty() {
        round.done().await?;
        for (i, t) in again {
            let (id, home, unreadable) = look(TOMBSTONES, t.value());
            ids[i] = id;
            if home.is_some() {
                stored[i] = true;
                homes[i] = home;
            }
            aside[i] = aside[i].take().or(unreadable);
        }
    }
    // Round 5 (rarer): an edit whose entry holds no backend id may find it kept aside as
    // unreadable: the kept copy may hold the id (given when its create was acknowledged), else a
    // version that reads it may restore it. A delete looks at the kept tombstone first
    // (where its id was given), an update at the kept entry.
    let mut set_aside: Vec<Option<TimeMs>> = vec![None; picked.len()];
    let mut kept = Vec::new();
    for (i, (e, _)) in picked.iter().enumerate() {
        if e.operation != Operation::Create && ids[i].is_none() {
            let order = if e.operation == Operation::Delete { [TOMBSTONES, ENTRIES] } else { [ENTRIES, TOMBSTONES] };
            let mut asked = Vec::with_capacity(2);
            for store in order {
                asked.push((store, quarantine::ask_kept(&mut round, &q, store, &e.entity_id)?));
            }
            kept.push((i, asked));
        }
    }
    let mut copies: Vec<Vec<(&str, JsValue)>> = vec![Vec::new(); picked.len()];
    if !kept.is_empty() {
        round.done().await?;
        for (i, asked) in kept {
            for (store, k) in asked {
                let k = k.value();
                if let Some((backend_id, since)) = quarantine::kept_entry(&q, store, &picked[i].0.entity_id, &k, at)? {
                    if let (None, Some(id), Some((home, raw))) = (&ids[i], &backend_id, &homes[i]) {
                        // The entry stored readable lost its id: it gets it back, so its later
                        // edits address the server's record too (never a second create).
                        if let Some(back) = with_backend_id(raw, id) {
                            put(if *home == ENTRIES { &entries } else { &tombstones }, &back, OP)?;
                        }
                    }
                    ids[i] = ids[i].take().or(backend_id);
                    set_aside[i] = set_aside[i].or(Some(since));
                }
                copies[i].push((store, k));
            }
        }
    }
    // One unreadable in place and holding no id is set aside, as every read that comes across
    // one does, over any copy kept before: with that copy's id, and its time (the wait for a
    // version that restores it is bounded from the first setting aside).
    for (i, found) in aside.into_iter().enumerate() {
        if let (false, Some((store, raw, why))) = (stored[i], found) {
            let entity = &picked[i].0.entity_id;
            for (_, k) in copies[i].iter().filter(|(s, _)| *s == store) {
                quarantine::carry_id(k, &raw, entity);
            }
            let since = *set_aside[i].get_or_insert(at);
            quarantine::move_in(if store == ENTRIES { &entries } else { &tombstones }, &q, store, &raw, &why, since)?;
            claim.quarantined += 1;
        }
    }
    // Events given up unsent whose entry has more events queued behind them.
    let by_entity = events.index(index::BY_ENTITY).map_err(error(OP))?;
    let mut behind = Vec::new();
    for (i, (((mut e, _), backend_id), stored)) in picked.into_iter().zip(ids).zip(stored).enumerate() {
        if e.operation != Operation::Create && backend_id.is_none() {
            // Cannot be addressed (its entry has no server id): nothing is sent.
            let kept = match (stored, set_aside[i]) {
                (true, _) => EntryKept::Stored { since: e.created_at, looks: e.claims },
                (false, Some(since)) => EntryKept::SetAside { since },
                (false, None) => EntryKept::Nowhere,
            };
            match unaddressable(kept, at) {
                Decision::GiveUp { message, .. } => {
                    // Kept nowhere (or set aside past the wait): no id will come. Given up
                    // unclaimed, nothing counted, and the entry's next event goes to the head of
                    // its queue, to be judged in its turn (it would wait for good behind this one).
                    if e.give_up_unsent(message.clone()).is_ok() {
                        if e.blocks {
                            behind.push(ask_behind(&mut round, &by_entity, &e, Some(1))?);
                        }
                        put(&events, &encode_event(&e), OP)?;
                        claim.gave_up.push((e.id, e.entity_id, message));
                    }
                }
                wait => {
                    let Ok(claim_no) = e.claim(&lead.owner, at) else { continue };
                    if let Decision::Retry { wait_ms, .. } = wait {
                        claim.waits.push((e.id.clone(), wait_ms));
                    }
                    let _ = e.apply(claim_no, &wait, at);
                    put(&events, &encode_event(&e), OP)?;
                }
            }
            continue;
        }
        if e.claim(&lead.owner, at).is_err() {
            continue;
        }
        put(&events, &encode_event(&e), OP)?;
        claim.items.push(Claimed { event: e, backend_id });
    }
    if !behind.is_empty() {
        round.done().await?;
        for next in behind.iter().flat_map(Asked::values) {
            if let Ok(mut n) = decode_event(&next) {
                if n.state_key() == StateKey::Waiting {
                    n.unblock();
                    put(&events, &encode_event(&n), OP)?;
                }
            }
        }
    }
    Ok(claim)
}

/// What the second round of recording reads for one result.
struct Side {
    entry: Option<Asked>,
    next: Option<Asked>,
}

/// Gives backend `id` to a record of entry `entity` this version cannot read, where it is (so the
/// version that reads it never sends it as a new create, nor drops its delete); `false` when
/// `raw` is no record of that entry. Best effort: such a record may not even be storable as is.
fn give_unreadable(store: &idb::ObjectStore, raw: &JsValue, entity: &str, id: &str) -> bool {
    if crate::platform::get(raw, "id").as_string().as_deref() != Some(entity) {
        return false;
    }
    crate::platform::set(raw, "backendId", &JsValue::from_str(id));
    let _ = store.put(raw, None);
    true
}

async fn record_in(tx: &Tx, results: &[Outcome<'_>], lead: Option<&Lead>) -> Result<Vec<Recorded>> {
    const OP: &str = "recording upload results";
    let (events, entries, tombstones, meta, q) = (tx.store(EVENTS)?, tx.store(ENTRIES)?, tx.store(TOMBSTONES)?, tx.store(META)?, tx.store(QUARANTINE)?);
    // Round 1: the events as they stand now.
    let mut round = Round::new(OP);
    let mut reads = Vec::with_capacity(results.len());
    for r in results {
        reads.push(round.ask(events.get(s(r.event_id)))?);
    }
    round.done().await?;
    let applied: Vec<Option<(OutboxEvent, Applied)>> = results
        .iter()
        .zip(&reads)
        .map(|(r, read)| decode_event(&read.value()).ok().and_then(|mut e| e.apply(r.claim, r.decision, r.at).ok().map(|a| (e, a))))
        .collect();

    // Round 2: entries of completed creates, the next event of entries that have one, each
    // user's stats and uploader records.
    let by_entity = events.index(index::BY_ENTITY).map_err(error(OP))?;
    let mut users: Vec<String> = Vec::new();
    let mut side = Vec::with_capacity(results.len());
    for slot in &applied {
        let mut one = Side { entry: None, next: None };
        if let Some((e, a)) = slot {
            if !users.contains(&e.user_id) {
                users.push(e.user_id.clone());
            }
            let refused = *a == Applied::GaveUp && e.refused;
            if *a == Applied::Completed || refused {
                if *a == Applied::Completed && e.operation == Operation::Create {
                    one.entry = Some(round.ask(entries.get(s(&e.entity_id)))?);
                }
                // Completed, or refused (never stored): the entry's next event may go. Behind a
                // refused create, all of them (a delete among them means nothing is to be sent).
                if e.blocks {
                    let limit = if refused && e.operation == Operation::Create { None } else { Some(1) };
                    one.next = Some(ask_behind(&mut round, &by_entity, e, limit)?);
                }
            }
        }
        side.push(one);
    }
    let mut metas = Vec::with_capacity(users.len());
    for u in &users {
        metas.push((round.ask(meta.get(meta_key(u)))?, lead.map(|_| round.ask(meta.get(leader_key(u)))).transpose()?));
    }
    round.done().await?;

    let mut user_metas: Vec<(UserMeta, Option<Beat>)> =
        metas.iter().map(|(m, l)| (decode_meta(&m.value()), l.as_ref().and_then(|l| decode_leader(&l.value())))).collect();
    let mut out = Vec::with_capacity(results.len());
    // Creates acknowledged whose entry was deleted meanwhile: the tombstone gets the id (round 3).
    let mut orphans: Vec<(String, String, JsValue)> = Vec::new();
    for ((r, slot), one) in results.iter().zip(applied).zip(side) {
        let Some((event, a)) = slot else {
            out.push(Recorded::Dropped);
            continue;
        };
        let i = users.iter().position(|u| *u == event.user_id).unwrap_or(0);
        let stats = &mut user_metas[i].0;
        match r.decision {
            Decision::Complete { backend_id } => {
                stats.record_success(r.at, r.at - event.created_at);
                if let (Some(entry), Some(id)) = (&one.entry, backend_id) {
                    match decode_entry(&entry.value()) {
                        Ok(mut e) => {
                            e.backend_id = Some(id.clone());
                            e.updated_at = r.at;
                            put(&entries, &encode_entry(&e, None), OP)?;
                        }
                        Err(_) => orphans.push((event.entity_id.clone(), id.clone(), entry.value())),
                    }
                }
                if event.operation == Operation::Delete {
                    // The tombstone's work is done, and so is every copy of the entry set aside
                    // as unreadable (a version that reads one would bring a deleted entry back).
                    tombstones.delete(s(&event.entity_id)).map_err(error(OP))?;
                    quarantine::forget(&q, TOMBSTONES, &event.entity_id)?;
                    quarantine::forget(&q, ENTRIES, &event.entity_id)?;
                }
            }
            Decision::Retry { message, .. } | Decision::GiveUp { message, .. } => stats.record_failure(r.at, message, r.answered),
        }
        // The entry's next event may go. Behind a create refused outright (the server never
        // stored the entry), an update becomes the entry's create, and a delete has nothing to
        // delete: both replace the refused create, as an edit made after the refusal would.
        let refused = a == Applied::GaveUp && event.refused;
        let refused_create = refused && event.operation == Operation::Create;
        let later: Vec<OutboxEvent> = one.next.as_ref().map(|n| n.values().iter().filter_map(|raw| decode_event(raw).ok()).collect()).unwrap_or_default();
        let mut superseded = false;
        if refused_create && later.iter().any(|n| n.operation == Operation::Delete) {
            // Deleted here, never stored there: the entry's events and tombstone go, unsent.
            for n in &later {
                events.delete(s(&n.id)).map_err(error(OP))?;
            }
            tombstones.delete(s(&event.entity_id)).map_err(error(OP))?;
            superseded = true;
        } else if let Some(mut n) = later.into_iter().next() {
            if n.state_key() == StateKey::Waiting {
                superseded = refused_create && n.replace_refused_create().is_ok();
                n.unblock();
                put(&events, &encode_event(&n), OP)?;
            }
            superseded |= refused && event.superseded_by_later();
        }
        if superseded {
            events.delete(s(&event.id)).map_err(error(OP))?;
        } else {
            put(&events, &encode_event(&event), OP)?;
        }
        out.push(Recorded::Applied(event, a));
    }
    if !orphans.is_empty() {
        // Deleted while its create was in flight: the delete queued behind it needs this id.
        // Or the entry is one this version cannot read (another version of the app wrote it,
        // and may have set it aside): it gets the id where it is, so the version that reads it
        // never sends it as a new create (a second record) nor drops its delete.
        let mut reads = Vec::with_capacity(orphans.len());
        for (entity, ..) in &orphans {
            reads.push([
                round.ask(tombstones.get(s(entity)))?,
                quarantine::ask_kept(&mut round, &q, ENTRIES, entity)?,
                quarantine::ask_kept(&mut round, &q, TOMBSTONES, entity)?,
            ]);
        }
        round.done().await?;
        for ((entity, id, unreadable), [tombstone, kept_entry, kept_tombstone]) in orphans.iter().zip(reads) {
            let raw = tombstone.value();
            if let Some(t) = with_backend_id(&raw, id) {
                tombstones.put(&t, None).map_err(error(OP))?;
            } else if !give_unreadable(&tombstones, &raw, entity, id)
                && !give_unreadable(&entries, unreadable, entity, id)
                && !quarantine::give_backend_id(&q, ENTRIES, entity, &kept_entry.value(), id)?
            {
                quarantine::give_backend_id(&q, TOMBSTONES, entity, &kept_tombstone.value(), id)?;
            }
        }
    }
    let latest = results.iter().map(|r| r.at).max().unwrap_or_else(now);
    for (u, (m, holder)) in users.iter().zip(user_metas) {
        meta.put(&encode_meta(&m), Some(&meta_key(u))).map_err(error(OP))?;
        if let (Some(lead), Some(mut b)) = (lead, holder) {
            // Only while the record still names this uploader: a late result never takes it back.
            if b.owner == lead.owner && b.gen == lead.gen {
                b.beat += 1;
                meta.put(&encode_leader(&b, latest), Some(&leader_key(u))).map_err(error(OP))?;
            }
        }
    }
    Ok(out)
}
