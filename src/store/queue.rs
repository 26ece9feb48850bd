//! The outbox queue: saving an entry with its event, edits and deletes with theirs (each in one
//! strict-durability transaction), claiming the next events for upload, recording what their
//! uploads ended with, and handing back claims that were never sent.
//!
//! Claims and results use relaxed durability: losing one in a power cut means one more upload,
//! which the event's `Idempotency-Key` makes harmless.

use wasm_bindgen::JsValue;

use super::quarantine;
use super::records::{decode_entry, decode_event, decode_leader, decode_meta, encode_entry, encode_event, encode_leader, encode_meta, index, leader_key, meta_key};
use super::records::{ENTRIES, EVENTS, META, QUARANTINE, TOMBSTONES};
use super::{deadline, Store};
use crate::domain::entry::{ProgressEntry, UpdateInput};
use crate::domain::event::{plan_delete, plan_update, Applied, EditPlan, Operation, OutboxEvent, StateKey};
use crate::domain::lease::Beat;
use crate::domain::retry::{Decision, CLOCK_SLACK_MS};
use crate::domain::stats::UserMeta;
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::idb::{all, bound, error, key2, key3, Mode, Request, Tx};
use crate::platform::{new_id, now};

/// Due retries promoted per claim, so one claim stays short even after a long outage.
const PROMOTE_PER_CLAIM: u32 = 500;

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
    /// Failed events whose retry came due and went back to the queue.
    pub promoted: u32,
    /// Claimed events.
    pub items: Vec<Claimed>,
    /// Unreadable records set aside.
    pub quarantined: u32,
    /// The uploader record names another context: this one no longer leads; nothing was claimed.
    pub fenced: bool,
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

async fn get(store: &idb::ObjectStore, key: &str, op: &'static str) -> Result<JsValue> {
    Request::of(store.get(s(key)), op)?.await
}

/// The unfinished events of entry `id`, in queue order.
async fn unfinished_of(events: &idb::ObjectStore, id: &str, op: &'static str) -> Result<Vec<OutboxEvent>> {
    let by_entity = events.index(index::BY_ENTITY).map_err(error(op))?;
    let raws = all(by_entity.get_all(Some(bound(&key2(&s(id), 0.0), &key2(&s(id), f64::INFINITY))?), None), op).await?;
    let mut out = Vec::new();
    for raw in &raws {
        // An unreadable event of this entry cannot be reasoned about: refuse the edit.
        let e = decode_event(raw).map_err(|why| Error::Storage { operation: op, detail: format!("an event of this entry cannot be read ({why})") })?;
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
    pub async fn save(&self, entry: &ProgressEntry, event: &OutboxEvent) -> Result<()> {
        const OP: &str = "saving an entry";
        deadline(OP, async {
            let tx = self.db().begin(&[ENTRIES, EVENTS], Mode::Strict, OP).await?;
            let result = (|| {
                tx.store(ENTRIES)?.add(&encode_entry(entry, None), None).map_err(error(OP))?;
                tx.store(EVENTS)?.add(&encode_event(event), None).map_err(error(OP))?;
                Ok(())
            })();
            tx.finish(result).await
        })
        .await
    }

    /// `update(entryId, changes)`: the entry's new values and their event, in one strict
    /// transaction (folded into a never-sent create, or a new event queued behind the entry's
    /// unfinished ones).
    pub async fn update(&self, id: &str, input: UpdateInput, max_attempts: u32, at: TimeMs) -> Result<Edit> {
        const OP: &str = "updating an entry";
        deadline(OP, async {
            let tx = self.db().begin(&[ENTRIES, EVENTS], Mode::Strict, OP).await?;
            let result = update_in(&tx, id, input, max_attempts, at).await;
            tx.finish(result).await
        })
        .await
    }

    /// `delete(entryId)`: removes the entry from `entries()` and queues its delete, in one strict
    /// transaction; or, when nothing of it ever reached the server, removes it and its events.
    pub async fn delete(&self, id: &str, max_attempts: u32, at: TimeMs) -> Result<Edit> {
        const OP: &str = "deleting an entry";
        deadline(OP, async {
            let tx = self.db().begin(&[ENTRIES, EVENTS, TOMBSTONES], Mode::Strict, OP).await?;
            let result = delete_in(&tx, id, max_attempts, at).await;
            tx.finish(result).await
        })
        .await
    }

    /// Claims up to `limit` events of `user` for upload, in priority-desc / createdAt-asc order,
    /// for uploader `lead` (fenced: if the uploader record names another context, nothing is
    /// claimed). First, retries come due go back to the queue: those whose time has come on the
    /// wall clock, those further ahead than any wait allows (the clock was set back), and `due`
    /// (ids whose backoff elapsed on this context's monotonic clock). Update and delete events
    /// come with their entry's backend id.
    pub async fn claim(&self, user: &str, lead: &Lead, limit: u32, due: &[String], longest_wait: u64) -> Result<Claim> {
        const OP: &str = "claiming events";
        deadline(OP, async {
            let tx = self.db().begin(&[EVENTS, ENTRIES, TOMBSTONES, META, QUARANTINE], Mode::Relaxed, OP).await?;
            let result = claim_in(&tx, user, lead, limit, due, longest_wait).await;
            tx.finish(result).await
        })
        .await
    }

    /// Records upload results in one transaction (the processor's group commit), with their
    /// consequences: a completed create gives its entry (or tombstone) the backend id, a completed
    /// delete removes the tombstone, and the next event of the entry may go. `lead`: the uploader,
    /// whose heartbeat this also renews while the record still names it.
    pub async fn record(&self, results: &[Outcome<'_>], lead: Option<&Lead>) -> Result<Vec<Recorded>> {
        const OP: &str = "recording upload results";
        deadline(OP, async {
            let tx = self.db().begin(&[EVENTS, ENTRIES, TOMBSTONES, META], Mode::Relaxed, OP).await?;
            let result = record_in(&tx, results, lead).await;
            tx.finish(result).await
        })
        .await
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
        deadline(op, async {
            let tx = self.db().begin(&[EVENTS], Mode::Relaxed, op).await?;
            let result = async {
                let events = tx.store(EVENTS)?;
                let mut reads = Vec::with_capacity(claims.len());
                for (id, _) in claims {
                    reads.push(Request::of(events.get(s(id)), op)?);
                }
                let mut out = Vec::new();
                for ((_, claim), read) in claims.iter().zip(reads) {
                    let Ok(mut e) = decode_event(&read.await?) else { continue };
                    let moved = if stale {
                        if e.status == crate::domain::event::EventStatus::Processing && e.claims == *claim {
                            e.recover_stale().is_ok()
                        } else {
                            false
                        }
                    } else {
                        e.release(*claim).is_ok()
                    };
                    if moved {
                        put(&events, &encode_event(&e), op)?;
                        out.push(e);
                    }
                }
                Ok(out)
            }
            .await;
            tx.finish(result).await
        })
        .await
    }

    /// `resetForRetry`: failed events named in `ids`, and processing ones `is_stale` says are
    /// stale, go back to pending with 0 attempts; others are left alone. An unknown id fails the
    /// whole call and changes nothing. Returns the events reset.
    pub async fn reset_for_retry(&self, ids: &[String], is_stale: &dyn Fn(&OutboxEvent) -> bool) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "resetting events";
        deadline(OP, async {
            let tx = self.db().begin(&[EVENTS], Mode::Relaxed, OP).await?;
            let result = async {
                let events = tx.store(EVENTS)?;
                let mut reads = Vec::with_capacity(ids.len());
                for id in ids {
                    reads.push(Request::of(events.get(s(id)), OP)?);
                }
                let mut found = Vec::with_capacity(ids.len());
                for (id, read) in ids.iter().zip(reads) {
                    let raw = read.await?;
                    if raw.is_undefined() {
                        return Err(Error::UnknownEvent(id.clone()));
                    }
                    match decode_event(&raw) {
                        Ok(e) => found.push(e),
                        Err(why) => return Err(Error::Storage { operation: OP, detail: format!("event \"{id}\" cannot be read ({why})") }),
                    }
                }
                let mut reset = Vec::new();
                for mut e in found {
                    let stale = is_stale(&e);
                    if e.reset_for_retry(stale).is_ok() {
                        put(&events, &encode_event(&e), OP)?;
                        reset.push(e);
                    }
                }
                Ok(reset)
            }
            .await;
            tx.finish(result).await
        })
        .await
    }
}

async fn update_in(tx: &Tx, id: &str, input: UpdateInput, max_attempts: u32, at: TimeMs) -> Result<Edit> {
    const OP: &str = "updating an entry";
    let (entries, events) = (tx.store(ENTRIES)?, tx.store(EVENTS)?);
    let raw = get(&entries, id, OP).await?;
    if raw.is_undefined() {
        return Err(Error::UnknownEntry { method: "update", id: id.into() });
    }
    let mut entry = decode_entry(&raw).map_err(|why| Error::Storage { operation: OP, detail: format!("the entry cannot be read ({why})") })?;
    let change = input.change_for(&entry)?;
    let mut unfinished = unfinished_of(&events, id, OP).await?;
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
        EditPlan::Queue { operation, waiting } => (Some(queue_event(&events, &mut entry, &mut unfinished, operation, waiting, max_attempts, at)?), false),
        EditPlan::Remove { .. } => (None, false),
    };
    put(&entries, &encode_entry(&entry, None), OP)?;
    Ok(Edit { entry, event_id, folded })
}

/// Writes a new event for `entry` at the end of its queue; marks the event before it as blocking.
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
    if let Some(before) = unfinished.last_mut() {
        if !before.blocks {
            before.blocks = true;
            put(events, &encode_event(before), OP)?;
        }
    }
    events.add(&encode_event(&event), None).map_err(error(OP))?;
    Ok(event.id)
}

async fn delete_in(tx: &Tx, id: &str, max_attempts: u32, at: TimeMs) -> Result<Edit> {
    const OP: &str = "deleting an entry";
    let (entries, events, tombstones) = (tx.store(ENTRIES)?, tx.store(EVENTS)?, tx.store(TOMBSTONES)?);
    let raw = get(&entries, id, OP).await?;
    if raw.is_undefined() {
        return Err(Error::UnknownEntry { method: "delete", id: id.into() });
    }
    let mut entry = decode_entry(&raw).map_err(|why| Error::Storage { operation: OP, detail: format!("the entry cannot be read ({why})") })?;
    let mut unfinished = unfinished_of(&events, id, OP).await?;
    entries.delete(s(id)).map_err(error(OP))?;
    let event_id = match plan_delete(&entry, &unfinished) {
        EditPlan::Remove { event_ids } => {
            for e in &event_ids {
                events.delete(s(e)).map_err(error(OP))?;
            }
            None
        }
        _ => {
            let waiting = !unfinished.is_empty();
            let event_id = queue_event(&events, &mut entry, &mut unfinished, Operation::Delete, waiting, max_attempts, at)?;
            tombstones.put(&encode_entry(&entry, Some(at)), None).map_err(error(OP))?;
            Some(event_id)
        }
    };
    Ok(Edit { entry, event_id, folded: false })
}

async fn claim_in(tx: &Tx, user: &str, lead: &Lead, limit: u32, due: &[String], longest_wait: u64) -> Result<Claim> {
    const OP: &str = "claiming events";
    let (events, entries, tombstones, meta, q) = (tx.store(EVENTS)?, tx.store(ENTRIES)?, tx.store(TOMBSTONES)?, tx.store(META)?, tx.store(QUARANTINE)?);
    let mut claim = Claim::default();
    let holder = decode_leader(&Request::of(meta.get(leader_key(user)), OP)?.await?);
    if holder.as_ref().is_none_or(|b| b.owner != lead.owner || b.gen != lead.gen) {
        claim.fenced = true;
        return Ok(claim);
    }
    let at = now();
    let u = s(user);

    // Retries come due: on the wall clock, beyond any allowed wait (clock set back), or by id.
    let retry = events.index(index::RETRY).map_err(error(OP))?;
    let ahead = (at as f64) + longest_wait as f64 + CLOCK_SLACK_MS as f64;
    let mut due_raws = all(retry.get_all(Some(bound(&key2(&u, f64::NEG_INFINITY), &key2(&u, at as f64))?), Some(PROMOTE_PER_CLAIM)), OP).await?;
    due_raws.extend(all(retry.get_all(Some(bound(&key2(&u, ahead), &key2(&u, f64::INFINITY))?), Some(PROMOTE_PER_CLAIM)), OP).await?);
    let mut reads = Vec::with_capacity(due.len());
    for id in due {
        reads.push(Request::of(events.get(s(id)), OP)?);
    }
    for read in reads {
        let raw = read.await?;
        if !raw.is_undefined() {
            due_raws.push(raw);
        }
    }
    for raw in &due_raws {
        match decode_event(raw) {
            Ok(mut e) => {
                if e.user_id == user && e.promote().is_ok() {
                    put(&events, &encode_event(&e), OP)?;
                    claim.promoted += 1;
                }
            }
            Err(why) => {
                quarantine::move_in(&events, &q, EVENTS, raw, &why, at)?;
                claim.quarantined += 1;
            }
        }
    }

    // The head of the queue. Updates and deletes need their entry's backend id first.
    let ready = events.index(index::READY).map_err(error(OP))?;
    let range = bound(&key3(&u, f64::NEG_INFINITY, f64::NEG_INFINITY), &key3(&u, f64::INFINITY, f64::INFINITY))?;
    let mut picked = Vec::new();
    for raw in &all(ready.get_all(Some(range), Some(limit)), OP).await? {
        match decode_event(raw) {
            Ok(e) => {
                // An update written before its entry was deleted finds the entry among the tombstones.
                let lookup = match e.operation {
                    Operation::Create => None,
                    Operation::Update => Some((Request::of(entries.get(s(&e.entity_id)), OP)?, Some(Request::of(tombstones.get(s(&e.entity_id)), OP)?))),
                    Operation::Delete => Some((Request::of(tombstones.get(s(&e.entity_id)), OP)?, None)),
                };
                picked.push((e, lookup));
            }
            Err(why) => {
                quarantine::move_in(&events, &q, EVENTS, raw, &why, at)?;
                claim.quarantined += 1;
            }
        }
    }
    for (mut e, lookup) in picked {
        let backend_id = match lookup {
            Some((r, tomb)) => match (decode_entry(&r.await?).ok().and_then(|entry| entry.backend_id), tomb) {
                (None, Some(t)) => decode_entry(&t.await?).ok().and_then(|entry| entry.backend_id),
                (found, _) => found,
            },
            None => None,
        };
        let claim_no = match e.claim(&lead.owner, at) {
            Ok(c) => c,
            Err(_) => continue,
        };
        if e.operation != Operation::Create && backend_id.is_none() {
            // Cannot be addressed yet (its entry has no server id): back off without sending.
            let wait = 60_000;
            let message = "waiting for the entry's backend id (its create has not been acknowledged)".to_owned();
            let _ = e.apply(claim_no, &Decision::Retry { at: at + wait, wait_ms: wait as u64, message, counted: false, sent: false }, at);
            put(&events, &encode_event(&e), OP)?;
            continue;
        }
        put(&events, &encode_event(&e), OP)?;
        claim.items.push(Claimed { event: e, backend_id });
    }
    Ok(claim)
}

async fn record_in(tx: &Tx, results: &[Outcome<'_>], lead: Option<&Lead>) -> Result<Vec<Recorded>> {
    const OP: &str = "recording upload results";
    let (events, entries, tombstones, meta) = (tx.store(EVENTS)?, tx.store(ENTRIES)?, tx.store(TOMBSTONES)?, tx.store(META)?);
    // Every read of a round goes out at once: a few round trips whatever the number of results.
    let mut reads = Vec::with_capacity(results.len());
    for r in results {
        reads.push(Request::of(events.get(s(r.event_id)), OP)?);
    }
    let mut applied: Vec<Option<(OutboxEvent, Applied)>> = Vec::with_capacity(results.len());
    for (r, read) in results.iter().zip(reads) {
        let event = decode_event(&read.await?).ok();
        applied.push(event.and_then(|mut e| e.apply(r.claim, r.decision, r.at).ok().map(|a| (e, a))));
    }

    // Second round: entries (or tombstones) of completed creates, tombstones of completed
    // deletes, the next event of entries that have one, each user's stats record.
    let mut users: Vec<String> = Vec::new();
    let mut side: Vec<(Option<Request>, Option<Request>, Option<Request>)> = Vec::with_capacity(results.len());
    for slot in &applied {
        let Some((e, a)) = slot else {
            side.push((None, None, None));
            continue;
        };
        if !users.contains(&e.user_id) {
            users.push(e.user_id.clone());
        }
        let completed = *a == Applied::Completed;
        let entry = if completed && e.operation == Operation::Create { Some(Request::of(entries.get(s(&e.entity_id)), OP)?) } else { None };
        let tomb = if completed && e.operation != Operation::Update { Some(Request::of(tombstones.get(s(&e.entity_id)), OP)?) } else { None };
        let next = if completed && e.blocks {
            let by_entity = events.index(index::BY_ENTITY).map_err(error(OP))?;
            let range = bound(&key2(&s(&e.entity_id), e.seq as f64 + 1.0), &key2(&s(&e.entity_id), f64::INFINITY))?;
            Some(Request::of(by_entity.get_all(Some(range), Some(1)), OP)?)
        } else {
            None
        };
        side.push((entry, tomb, next));
    }
    let mut metas = Vec::with_capacity(users.len());
    for u in &users {
        metas.push((Request::of(meta.get(meta_key(u)), OP)?, lead.map(|_| Request::of(meta.get(leader_key(u)), OP)).transpose()?));
    }

    let mut out = Vec::with_capacity(results.len());
    let mut user_metas: Vec<(UserMeta, Option<Beat>)> = Vec::with_capacity(users.len());
    for (m, l) in metas {
        let m = decode_meta(&m.await?);
        let l = match l {
            Some(r) => decode_leader(&r.await?),
            None => None,
        };
        user_metas.push((m, l));
    }
    for ((r, slot), (entry, tomb, next)) in results.iter().zip(applied).zip(side) {
        let Some((event, a)) = slot else {
            out.push(Recorded::Dropped);
            continue;
        };
        let i = users.iter().position(|u| *u == event.user_id).unwrap_or(0);
        let stats = &mut user_metas[i].0;
        match r.decision {
            Decision::Complete { backend_id } => {
                stats.record_success(r.at, r.at - event.created_at);
                if let (Some(entry), Some(id)) = (entry, backend_id) {
                    let raw = entry.await?;
                    if let Ok(mut e) = decode_entry(&raw) {
                        e.backend_id = Some(id.clone());
                        e.updated_at = r.at;
                        put(&entries, &encode_entry(&e, None), OP)?;
                    }
                }
                if let Some(tomb) = tomb {
                    let raw = tomb.await?;
                    if let Ok(mut t) = decode_entry(&raw) {
                        let deleted_at = crate::platform::get(&raw, "deletedAt").as_f64().map(|d| d as TimeMs);
                        if event.operation == Operation::Delete {
                            tombstones.delete(s(&t.id)).map_err(error(OP))?;
                        } else if let Some(id) = backend_id {
                            // Deleted while its create was in flight: the delete needs this id.
                            t.backend_id = Some(id.clone());
                            tombstones.put(&encode_entry(&t, deleted_at), None).map_err(error(OP))?;
                        }
                    }
                }
                if let Some(next) = next {
                    let found = next.await?;
                    if let Some(raw) = js_sys::Array::from(&found).iter().next() {
                        if let Ok(mut n) = decode_event(&raw) {
                            if n.state_key() == StateKey::Waiting {
                                n.unblock();
                                put(&events, &encode_event(&n), OP)?;
                            }
                        }
                    }
                }
            }
            Decision::Retry { message, .. } | Decision::GiveUp { message, .. } => stats.record_failure(r.at, message, r.answered),
        }
        put(&events, &encode_event(&event), OP)?;
        out.push(Recorded::Applied(event, a));
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
