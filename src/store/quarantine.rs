//! Records that cannot be read (written by another version of the app, or damaged) are moved
//! aside into the `quarantine` store: kept as they were, listed by `events()`, counted in
//! `stats().quarantined`, and in the way of nothing but the edits of that very entry (which go
//! with the backend id a kept copy holds, or wait a bounded time for it). A version of the app
//! that can read them again brings them back when it opens the database.

use wasm_bindgen::JsValue;

use super::connection::Db;
use super::queue::ask_queue_of;
use super::records::{decode_entry, decode_event, deleted_at, encode_entry, encode_event, index, Looked, ENTRIES, EVENTS, QUARANTINE, TOMBSTONES};
use crate::domain::event::{requeue, restorable, EntityNow, Operation, OutboxEvent};
use crate::domain::time::TimeMs;
use crate::domain::Result;
use crate::platform::idb::{bound, error, Asked, Mode, Round};
use crate::platform::timer::Deadline;
use crate::platform::{get, set};

const OP: &str = "setting an unreadable record aside";

/// A record kept aside.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// The store it came from.
    pub store: String,
    /// Its key there.
    pub key: JsValue,
    /// Its owner, if it names one.
    pub user_id: Option<String>,
    /// Why it could not be read.
    pub reason: String,
    /// When it was set aside.
    pub at: TimeMs,
    /// The record as it was.
    pub record: JsValue,
}

fn quarantine_key(store: &str, key: &JsValue) -> JsValue {
    JsValue::from_str(&[store, ":", &key_text(key)].concat())
}

/// A record's key as text (a string key as it is, any other as JSON: `5` is `"5"`): the id
/// `events()` lists a record set aside by, which `resetForRetry` finds it by.
pub fn key_text(key: &JsValue) -> String {
    key.as_string().unwrap_or_else(|| js_sys::JSON::stringify(key).ok().and_then(|s| s.as_string()).unwrap_or_default())
}

/// Moves `raw` (a record of `from`, named `store`) into the quarantine store `q`, in the caller's
/// transaction: both writes or neither.
pub fn move_in(from: &idb::ObjectStore, q: &idb::ObjectStore, store: &str, raw: &JsValue, why: &str, now: TimeMs) -> Result<()> {
    let key = get(raw, "id");
    let kept: JsValue = js_sys::Object::new().into();
    set(&kept, "store", &JsValue::from_str(store));
    set(&kept, "key", &key);
    // Unattributable records are counted for every user ("").
    set(&kept, "userId", &JsValue::from_str(&get(raw, "userId").as_string().unwrap_or_default()));
    set(&kept, "reason", &JsValue::from_str(why));
    set(&kept, "at", &JsValue::from_f64(now as f64));
    set(&kept, "record", raw);
    q.put(&kept, Some(&quarantine_key(store, &key))).map_err(error(OP))?;
    from.delete(key).map_err(error(OP))?;
    Ok(())
}

/// Asks (in `round`) for the kept record of event `id` (undefined when there is none).
pub fn ask_event(round: &mut Round, q: &idb::ObjectStore, id: &str) -> Result<Asked> {
    round.ask(q.get(quarantine_key(EVENTS, &JsValue::from_str(id))))
}

/// Asks (in `round`) for the kept record `id` of `store` (undefined when there is none).
pub fn ask_kept(round: &mut Round, q: &idb::ObjectStore, store: &str, id: &str) -> Result<Asked> {
    round.ask(q.get(kept_key(store, id)))
}

/// The key of the kept record `id` of `store`.
fn kept_key(store: &str, id: &str) -> JsValue {
    quarantine_key(store, &JsValue::from_str(id))
}

/// The backend id a kept copy (as `ask_kept` found it) holds for entry `entity`: only from a
/// record that names that entry, and only a usable one.
fn kept_id(kept: &JsValue, entity: &str) -> Option<String> {
    let record = get(kept, "record");
    let names_it = record.is_object() && get(&record, "id").as_string().as_deref() == Some(entity);
    if names_it {
        Looked::at(&record).backend_id()
    } else {
        None
    }
}

/// What the kept copy of entry `entity` in `store` (as `ask_kept` found it) tells: `None` when
/// none is kept; else the backend id it holds (see [`kept_id`]) and when it was set aside. A
/// time that is no usable stamp, or further ahead than `now` (the clock was set back since), is
/// moved to `now` in `q`, so the wait it starts counts from now: never ends early.
pub fn kept_entry(q: &idb::ObjectStore, store: &str, entity: &str, kept: &JsValue, now: TimeMs) -> Result<Option<(Option<String>, TimeMs)>> {
    if !kept.is_object() {
        return Ok(None);
    }
    let since = match get(kept, "at").as_f64().filter(|at| at.is_finite() && *at >= 0.0 && *at <= now as f64) {
        Some(at) => at as TimeMs,
        None => {
            set(kept, "at", &JsValue::from_f64(now as f64));
            q.put(kept, Some(&kept_key(store, entity))).map_err(error(OP))?;
            now
        }
    };
    Ok(Some((kept_id(kept, entity), since)))
}

/// Gives `raw`, a record of entry `entity` about to be set aside over its kept copy `kept` (as
/// `ask_kept` found it), the backend id that copy holds when `raw` holds none: setting aside
/// never loses an id.
pub fn carry_id(kept: &JsValue, raw: &JsValue, entity: &str) {
    if Looked::at(raw).backend_id().is_none() {
        if let Some(id) = kept_id(kept, entity) {
            set(raw, "backendId", &JsValue::from_str(&id));
        }
    }
}

/// Deletes the kept record `id` of `store`, if any (in the caller's transaction).
pub fn forget(q: &idb::ObjectStore, store: &str, id: &str) -> Result<()> {
    q.delete(kept_key(store, id)).map_err(error(OP))?;
    Ok(())
}

/// Gives the kept copy of entry `entity` in `store` (as `ask_kept` found it) the backend id its
/// create was acknowledged with, so the version of the app that can read it gets it back with its
/// id. `false` when no record of that entry is kept there.
pub fn give_backend_id(q: &idb::ObjectStore, store: &str, entity: &str, kept: &JsValue, id: &str) -> Result<bool> {
    let record = get(kept, "record");
    if !record.is_object() || get(&record, "id").as_string().as_deref() != Some(entity) {
        return Ok(false);
    }
    set(&record, "backendId", &JsValue::from_str(id));
    q.put(kept, Some(&kept_key(store, entity))).map_err(error(OP))?;
    Ok(true)
}

/// A kept record as `ask_kept` found it, if there is one.
pub fn read_kept(v: &JsValue) -> Option<Quarantined> {
    v.is_object().then(|| read(v))
}

/// Reads a kept record.
fn read(v: &JsValue) -> Quarantined {
    Quarantined {
        store: get(v, "store").as_string().unwrap_or_default(),
        key: get(v, "key"),
        user_id: get(v, "userId").as_string().filter(|u| !u.is_empty()),
        reason: get(v, "reason").as_string().unwrap_or_default(),
        at: get(v, "at").as_f64().unwrap_or(0.0) as TimeMs,
        record: get(v, "record"),
    }
}

/// Asks (in `round`) how many records are kept aside for `user`, and how many name no user
/// (counted for every user): their sum is `stats().quarantined`.
pub fn ask_count(round: &mut Round, q: &idb::ObjectStore, user: &str) -> Result<[Asked; 2]> {
    let by_user = q.index(index::BY_USER).map_err(error("counting unreadable records"))?;
    Ok([round.ask(by_user.count(Some(JsValue::from_str(user).into())))?, round.ask(by_user.count(Some(JsValue::from_str("").into())))?])
}

/// The records of `store` kept aside for `user` (and those that name no user).
pub async fn list_for(q: &idb::ObjectStore, user: &str, store: &str) -> Result<Vec<Quarantined>> {
    const OP: &str = "listing unreadable records";
    let by_user = q.index(index::BY_USER).map_err(error(OP))?;
    let mut round = Round::new(OP);
    let found =
        [round.ask(by_user.get_all(Some(JsValue::from_str(user).into()), None))?, round.ask(by_user.get_all(Some(JsValue::from_str("").into()), None))?];
    round.done().await?;
    Ok(found.iter().flat_map(Asked::values).map(|raw| read(&raw)).filter(|k| k.store == store).collect())
}

/// Brings back every kept record this version can read. Runs at open, within the open's bound
/// `by`; never fails the open.
pub async fn restore_readable(db: &Db, by: Deadline) {
    const OP: &str = "restoring readable records";
    let restored: Result<u32> = async {
        let tx = db.begin_by(&[QUARANTINE, ENTRIES, EVENTS, TOMBSTONES], Mode::Relaxed, OP, by).await?;
        tx.run(async {
            let q = tx.store(QUARANTINE)?;
            let mut round = Round::new(OP);
            // Up to 1,000 of each store's (keys `store:id`, "store;" just past them), so records
            // that stay unreadable in one never keep the others from a look. With the keys they
            // are kept under (in the same order): the store they came from is named there,
            // whatever the kept wrapper's own fields say.
            let mut asked = Vec::with_capacity(3);
            for store in [ENTRIES, TOMBSTONES, EVENTS] {
                let range = bound(&JsValue::from_str(&[store, ":"].concat()), &JsValue::from_str(&[store, ";"].concat()))?;
                asked.push((round.ask(q.get_all(Some(range.clone()), Some(1_000)))?, round.ask(q.get_all_keys(Some(range), Some(1_000)))?));
            }
            round.done().await?;
            let (mut keys, mut values) = (Vec::new(), Vec::new());
            for (v, k) in &asked {
                values.extend(v.values());
                keys.extend(k.values());
            }
            // Only a record that is the one its key names (a copy kept under another record's key
            // would replace that record): its key, the store it came from, the record.
            let kept: Vec<(JsValue, String, JsValue)> = keys
                .into_iter()
                .zip(values)
                .filter_map(|(key, v)| {
                    let k = key.as_string()?;
                    let (from, id) = k.split_once(':')?;
                    let record = get(&v, "record");
                    (get(&record, "id").as_string().as_deref() == Some(id)).then(|| (key.clone(), from.to_owned(), record))
                })
                .collect();
            let (entries, tombstones, events) = (tx.store(ENTRIES)?, tx.store(TOMBSTONES)?, tx.store(EVENTS)?);
            let mut n = 0;
            let mut back = |store: &str, value: &JsValue, key: &JsValue| -> Result<()> {
                tx.store(store)?.put(value, None).map_err(error(OP))?;
                q.delete(key.clone()).map_err(error(OP))?;
                n += 1;
                Ok(())
            };
            // First the entries and tombstones. An entry deleted since (its tombstone stored, its
            // delete pending) stays kept: put back, it would come back for good (the delete
            // forgets the kept copy when it completes). Its id is the record's, checked above.
            let mut deleted = Vec::with_capacity(kept.len());
            for (_, from, record) in &kept {
                deleted.push(if from == ENTRIES { Some(round.ask(tombstones.get(get(record, "id")))?) } else { None });
            }
            round.done().await?;
            for ((key, from, record), deleted) in kept.iter().zip(deleted) {
                if (from != ENTRIES && from != TOMBSTONES) || deleted.is_some_and(|t| !t.value().is_undefined()) {
                    continue;
                }
                if let Ok(e) = decode_entry(record) {
                    back(if from == ENTRIES { ENTRIES } else { TOMBSTONES }, &encode_entry(&e, deleted_at(record)), key)?;
                }
            }
            // Then the events, judged against their entries as they are now (those just put back
            // included: the reads of this transaction see its writes). An event comes back only
            // if its entry did not move on without it (`domain::event::restorable`); while its
            // entry is still kept unreadable it stays kept, and so does an update or delete with
            // no `seq` (its place in the entry's queue is unknown).
            let mut looks = Vec::new();
            // Entries with an event that stays kept: their queues are left as they are (that event
            // may be what the others wait for).
            let mut held: Vec<String> = Vec::new();
            for (key, from, record) in &kept {
                if from != EVENTS {
                    continue;
                }
                let e = match decode_event(record) {
                    Ok(e) if e.operation == Operation::Create || get(record, "seq").as_f64().is_some() => e,
                    _ => {
                        held.extend(get(record, "entityId").as_string());
                        continue;
                    }
                };
                let id = e.entity_id.as_str();
                let stored = [round.ask(entries.get(JsValue::from_str(id)))?, round.ask(tombstones.get(JsValue::from_str(id)))?];
                let aside = [ask_kept(&mut round, &q, ENTRIES, id)?, ask_kept(&mut round, &q, TOMBSTONES, id)?];
                let queue = ask_queue_of(&mut round, &events, id, OP)?;
                looks.push((key, e, stored, aside, queue));
            }
            round.done().await?;
            // Each entry's queue in place, read once: its readable events, and whether all were.
            let queues: Vec<(Vec<OutboxEvent>, bool)> = looks
                .iter()
                .map(|l| {
                    let raws = l.4.values();
                    let readable: Vec<OutboxEvent> = raws.iter().filter_map(|raw| decode_event(raw).ok()).collect();
                    let all = readable.len() == raws.len();
                    (readable, all)
                })
                .collect();
            let (mut dropped, mut coming) = (Vec::new(), Vec::new());
            for (&(key, ref e, ref stored, ref aside, _), (in_place, _)) in looks.iter().zip(&queues) {
                let now = stored.iter().map(Asked::value).find(|v| !v.is_undefined()).map(|v| EntityNow {
                    synced: Looked::at(&v).backend_id().is_some(),
                    // Read raw, as the id is: an entry unreadable in place still tells its rev.
                    rev: get(&v, "rev").as_f64().filter(|r| r.is_finite() && *r >= 1.0).map_or(1, |r| r as u32),
                });
                if now.is_none() && aside.iter().any(|k| k.value().is_object()) {
                    held.push(e.entity_id.clone());
                    continue;
                }
                // The queue in place, and the entry's other events coming back after this one.
                let mut queue = in_place.clone();
                queue.extend(looks.iter().map(|l| &l.1).filter(|o| o.entity_id == e.entity_id && o.seq > e.seq).cloned());
                if restorable(e, now, &queue) {
                    coming.push((key, e.clone()));
                } else {
                    q.delete(key.clone()).map_err(error(OP))?;
                    dropped.push(e.id.as_str());
                }
            }
            // Each entry touched (an event back or dropped, none still kept): its queue as the
            // rules have them, the events back in it included and those dropped gone (their
            // `waiting` and `blocks` date from before: one put back waiting for an event that
            // completed while it was aside would wait for good). Every event of it in `seq`
            // order, completed ones too (a completed or refused one releases the next record
            // only); left as it is if one cannot be read or two share a `seq`.
            let mut seen: Vec<&str> = Vec::new();
            for ((_, e, ..), (in_place, readable)) in looks.iter().zip(&queues) {
                let entity = e.entity_id.as_str();
                if !readable || seen.contains(&entity) || held.iter().any(|h| h == entity) {
                    continue;
                }
                seen.push(entity);
                let mut line: Vec<(OutboxEvent, bool)> =
                    in_place.iter().filter(|x| !coming.iter().any(|(_, c)| c.id == x.id)).map(|x| (x.clone(), false)).collect();
                for (_, c) in coming.iter().filter(|(_, c)| c.entity_id == entity) {
                    let at = line.iter().position(|(x, _)| x.seq > c.seq).unwrap_or(line.len());
                    line.insert(at, (c.clone(), true));
                }
                if line.windows(2).any(|w| w[0].0.seq == w[1].0.seq) {
                    continue;
                }
                let (mut order, back_from_aside): (Vec<OutboxEvent>, Vec<bool>) = line.into_iter().unzip();
                for i in requeue(&mut order) {
                    if back_from_aside[i] {
                        if let Some(c) = coming.iter_mut().find(|(_, c)| c.id == order[i].id) {
                            c.1 = order[i].clone();
                        }
                    } else {
                        events.put(&encode_event(&order[i]), None).map_err(error(OP))?;
                    }
                }
            }
            for (key, e) in &coming {
                back(EVENTS, &encode_event(e), key)?;
            }
            if !dropped.is_empty() {
                db.log().warn(|| {
                    format!(
                        "{} events set aside earlier are readable again but were superseded meanwhile (their entry was edited, deleted or synced without them): dropped, not sent: {}",
                        dropped.len(),
                        dropped.join(", ")
                    )
                });
            }
            Ok(n)
        })
        .await
    }
    .await;
    match restored {
        Ok(0) => {}
        Ok(n) => db.log().info(|| format!("{n} records set aside earlier are readable again and were restored")),
        Err(e) => db.log().warn(|| format!("could not look at the records set aside earlier: {e}")),
    }
}
