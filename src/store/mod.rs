//! The IndexedDB adapter: one database holding entries, outbox events and per-user sync meta.
//!
//! Every query goes through an index and touches only the records it returns (see
//! [`records`] for the layout). Writes that belong together share one transaction.

pub mod records;
pub mod schema;
pub mod tx;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::rc::Rc;

use idb::{Factory, Index, KeyRange, ObjectStore, Query};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbOpenDbRequest};

use crate::domain::entry::ProgressEntry;
use crate::domain::event::{EventStatus, OutboxEvent, StateKey};
use crate::domain::retry::Decision;
use crate::domain::stats::{Counts, Stats};
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::{get, set, Log};
use records::{beat_key, decode_beat, decode_entry, decode_event, decode_meta, encode_beat, encode_entry, encode_event, encode_meta, index, key2, key3, meta_key, Beat, ENTRIES, EVENTS, META};
use tx::{idb_error, Mode, Tx};

/// Retries promoted to the queue per claim, so one claim stays short even after a long outage.
const PROMOTE_PER_CLAIM: u32 = 500;
/// Completed events deleted per cleanup transaction.
const CLEANUP_CHUNK: u32 = 500;

/// Why the connection is no longer usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Open,
    VersionChanged,
    Closed,
}

/// What a claim handed to the processor.
#[derive(Debug, Default)]
pub struct Claim {
    /// Failed events whose retry came due and went back to the queue.
    pub promoted: u32,
    /// Claimed events (now `processing`) with their entries (`None`: the entry is gone).
    pub items: Vec<(OutboxEvent, Option<ProgressEntry>)>,
    /// Unreadable records moved out of the queue (kept, marked failed).
    pub quarantined: u32,
}

/// What recording an upload's result did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The event as it now stands.
    Applied(OutboxEvent),
    /// The event had moved on (reset, recovered, or already completed): nothing written.
    Dropped,
}

/// An open database. Cheap to share behind an `Rc`.
pub struct Store {
    db: IdbDatabase,
    name: String,
    health: Rc<Cell<Health>>,
    on_version_change: Rc<RefCell<Option<Box<dyn Fn()>>>>,
    _version_change: Closure<dyn FnMut()>,
}

fn bound(lower: JsValue, upper: JsValue) -> Result<Query> {
    KeyRange::bound(&lower, &upper, Some(false), Some(false)).map(Query::from).map_err(idb_error("building a key range"))
}

/// All keys `[user, sk, *]`.
fn state_range(user: &JsValue, sk: StateKey) -> Result<Query> {
    let sk = sk as u8 as f64;
    bound(key3(user, sk, f64::NEG_INFINITY), key3(user, sk, f64::INFINITY))
}

async fn get_all(source: &Index, query: Query, limit: Option<u32>, op: &'static str) -> Result<Vec<JsValue>> {
    source.get_all(Some(query), limit).map_err(idb_error(op))?.await.map_err(idb_error(op))
}

async fn read(store: &ObjectStore, key: &JsValue, op: &'static str) -> Result<JsValue> {
    Ok(store.get(key.clone()).map_err(idb_error(op))?.await.map_err(idb_error(op))?.unwrap_or(JsValue::UNDEFINED))
}

fn put(store: &ObjectStore, value: &JsValue, key: Option<&JsValue>, op: &'static str) -> Result<()> {
    // Not awaited: a failing write fails the transaction, which `Tx::finish` reports.
    store.put(value, key).map(|_| ()).map_err(idb_error(op))
}

/// Marks an unreadable event record as failed-for-good, in place, so it leaves the queue
/// without being deleted (health data is never deleted because of an error).
fn quarantine(store: &ObjectStore, raw: &JsValue, why: &str, op: &'static str) -> Result<()> {
    set(raw, "status", &JsValue::from_str("failed"));
    set(raw, "errorMessage", &JsValue::from_str(&format!("unreadable record, left aside: {why}")));
    set(raw, "nextAttemptAt", &JsValue::NULL);
    set(raw, "sk", &JsValue::from_f64(StateKey::GaveUp as u8 as f64));
    for field in ["rdy", "due", "done"] {
        set(raw, field, &JsValue::NULL);
    }
    put(store, raw, None, op)
}

impl Store {
    /// Opens (creating or upgrading) the database. `max_attempts` is given to events the v3
    /// upgrade creates for older entries.
    pub async fn open(name: &str, max_attempts: u32, log: Log) -> Result<Store> {
        let factory = Factory::new().map_err(|e| Error::Unsupported(e.to_string()))?;
        let mut request = factory.open(name, Some(schema::VERSION)).map_err(|e| Error::Unsupported(e.to_string()))?;
        request.on_upgrade_needed(move |event| {
            let raw: web_sys::IdbVersionChangeEvent = event.into();
            if let Err(e) = schema::upgrade(&raw, max_attempts, log) {
                log.warn(|| format!("schema upgrade failed, the database keeps its old version and all its data: {e}"));
                if let Some(tx) = raw.target().and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok()).and_then(|r| r.transaction()) {
                    let _ = tx.abort();
                }
            }
        });
        let db_name = name.to_owned();
        request.on_blocked(move |_| {
            log.warn(|| format!("upgrading database \"{db_name}\" is waiting for other tabs of this app to close it (they are asked to)"));
        });
        let db = match request.await {
            Ok(db) => IdbDatabase::from(db),
            Err(e) => {
                let detail = e.to_string();
                if detail.contains("VersionError") {
                    return Err(Error::NewerSchema { name: name.into(), found: Self::found_version(&factory, name).await.unwrap_or(0), supported: schema::VERSION });
                }
                return Err(Error::Storage { operation: "opening the database", detail });
            }
        };

        let health = Rc::new(Cell::new(Health::Open));
        let on_version_change: Rc<RefCell<Option<Box<dyn Fn()>>>> = Rc::new(RefCell::new(None));
        // Another tab wants to upgrade: close at once so it can, and refuse further work.
        let version_change = {
            let (db, health, listener, name) = (db.clone(), health.clone(), on_version_change.clone(), name.to_owned());
            Closure::<dyn FnMut()>::new(move || {
                db.close();
                health.set(Health::VersionChanged);
                log.warn(|| format!("database \"{name}\" is being upgraded by a newer version of the app in another tab: connection closed, reload this page"));
                if let Some(cb) = listener.borrow().as_ref() {
                    cb();
                }
            })
        };
        db.set_onversionchange(Some(version_change.as_ref().unchecked_ref()));
        Ok(Store { db, name: name.into(), health, on_version_change, _version_change: version_change })
    }

    async fn found_version(factory: &Factory, name: &str) -> Option<u32> {
        let db = factory.open(name, None).ok()?.await.ok()?;
        let version = db.version().ok();
        db.close();
        version
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers the callback run when another tab's upgrade closed this connection.
    pub fn set_on_version_change(&self, callback: Box<dyn Fn()>) {
        *self.on_version_change.borrow_mut() = Some(callback);
    }

    /// Closes the connection; later calls fail with [`Error::Closed`].
    pub fn close(&self) {
        if self.health.get() == Health::Open {
            self.health.set(Health::Closed);
        }
        self.db.close();
    }

    /// `Ok` while the connection is usable; otherwise why not.
    pub fn check_open(&self) -> Result<()> {
        match self.health.get() {
            Health::Open => Ok(()),
            Health::VersionChanged => Err(Error::VersionChanged),
            Health::Closed => Err(Error::Closed),
        }
    }

    fn begin(&self, stores: &[&str], mode: Mode, operation: &'static str) -> Result<Tx> {
        self.check_open()?;
        Tx::begin(&self.db, stores, mode, operation)
    }

    /// Saves a new entry and its event in one strict-durability transaction: both or neither.
    /// Resolves after the commit.
    pub async fn save(&self, entry: &ProgressEntry, event: &OutboxEvent) -> Result<()> {
        self.save_records(&encode_entry(entry)?, &encode_event(event)?).await
    }

    /// [`Store::save`] on already encoded records (tests use it to make the second write fail).
    #[doc(hidden)]
    pub async fn save_records(&self, entry: &JsValue, event: &JsValue) -> Result<()> {
        const OP: &str = "saving an entry";
        let tx = self.begin(&[ENTRIES, EVENTS], Mode::WriteStrict, OP)?;
        // `add`, not `put`: an id collision must fail the transaction, never overwrite data.
        let result = (|| {
            tx.store(ENTRIES)?.add(entry, None).map_err(idb_error(OP))?;
            tx.store(EVENTS)?.add(event, None).map_err(idb_error(OP))?;
            Ok(())
        })();
        tx.finish(result).await
    }

    /// Claims up to `batch` due events of `user` for upload, in priority-desc / createdAt-asc
    /// order: due retries rejoin the queue, then the head of the queue becomes `processing`
    /// (attempt + 1). Reads the claimed events' entries in the same transaction.
    pub async fn claim(&self, user: &str, now: TimeMs, batch: u32) -> Result<Claim> {
        const OP: &str = "claiming events";
        let tx = self.begin(&[EVENTS, ENTRIES], Mode::Write, OP)?;
        let result = self.claim_in(&tx, user, now, batch).await;
        tx.finish(result).await
    }

    async fn claim_in(&self, tx: &Tx, user: &str, now: TimeMs, batch: u32) -> Result<Claim> {
        const OP: &str = "claiming events";
        let events = tx.store(EVENTS)?;
        let entries = tx.store(ENTRIES)?;
        let u = JsValue::from_str(user);
        let mut claim = Claim::default();

        let retry = events.index(index::RETRY).map_err(idb_error(OP))?;
        let due = get_all(&retry, bound(key2(&u, f64::NEG_INFINITY), key2(&u, now as f64))?, Some(PROMOTE_PER_CLAIM), OP).await?;
        for raw in due {
            match decode_event(raw.clone()) {
                Ok(mut e) => {
                    if e.promote(now).is_ok() {
                        put(&events, &encode_event(&e)?, None, OP)?;
                        claim.promoted += 1;
                    }
                }
                Err(err) => {
                    quarantine(&events, &raw, &err.to_string(), OP)?;
                    claim.quarantined += 1;
                }
            }
        }

        let ready = events.index(index::READY).map_err(idb_error(OP))?;
        let range = bound(key3(&u, f64::NEG_INFINITY, f64::NEG_INFINITY), key3(&u, f64::INFINITY, f64::INFINITY))?;
        let head = get_all(&ready, range, Some(batch), OP).await?;
        let mut pending_reads = Vec::with_capacity(head.len());
        for raw in head {
            match decode_event(raw.clone()) {
                Ok(mut e) => {
                    if e.claim(now).is_ok() {
                        put(&events, &encode_event(&e)?, None, OP)?;
                        let read = entries.get(JsValue::from_str(&e.entity_id)).map_err(idb_error(OP))?.into_future();
                        pending_reads.push((e, read));
                    }
                }
                Err(err) => {
                    quarantine(&events, &raw, &err.to_string(), OP)?;
                    claim.quarantined += 1;
                }
            }
        }
        for (event, read) in pending_reads {
            let entry = match read.await.map_err(idb_error(OP))? {
                Some(raw) => Some(decode_entry(raw)?),
                None => None,
            };
            claim.items.push((event, entry));
        }
        Ok(claim)
    }

    /// Records the decision about attempt `attempt` of event `event_id`, with its consequences,
    /// in one transaction: on success the event completes and the entry gets its backend id.
    /// `beat_owner`: the uploader's id, whose heartbeat is written in the same transaction.
    pub async fn record(&self, event_id: &str, attempt: u32, decision: &Decision, now: TimeMs, beat_owner: Option<&str>) -> Result<Recorded> {
        const OP: &str = "recording an upload result";
        let tx = self.begin(&[EVENTS, ENTRIES, META], Mode::Write, OP)?;
        let result = self.record_in(&tx, event_id, attempt, decision, now, beat_owner).await;
        tx.finish(result).await
    }

    async fn record_in(&self, tx: &Tx, event_id: &str, attempt: u32, decision: &Decision, now: TimeMs, beat_owner: Option<&str>) -> Result<Recorded> {
        const OP: &str = "recording an upload result";
        let (events, entries, meta) = (tx.store(EVENTS)?, tx.store(ENTRIES)?, tx.store(META)?);
        let raw = read(&events, &JsValue::from_str(event_id), OP).await?;
        if raw.is_undefined() {
            return Ok(Recorded::Dropped);
        }
        let mut event = decode_event(raw)?;
        if event.apply(attempt, decision, now).is_err() {
            return Ok(Recorded::Dropped);
        }
        let key = meta_key(&event.user_id);
        let mut user_meta = decode_meta(read(&meta, &key, OP).await?);
        match decision {
            Decision::Complete { backend_id } => {
                let raw_entry = read(&entries, &JsValue::from_str(&event.entity_id), OP).await?;
                if !raw_entry.is_undefined() {
                    let mut entry = decode_entry(raw_entry)?;
                    entry.backend_id = Some(backend_id.clone());
                    entry.updated_at = now;
                    put(&entries, &encode_entry(&entry)?, None, OP)?;
                }
                user_meta.record_success(now, now - event.created_at);
            }
            Decision::Retry { message, .. } | Decision::GiveUp { message } => user_meta.record_failure(now, message),
        }
        put(&events, &encode_event(&event)?, None, OP)?;
        put(&meta, &encode_meta(&user_meta)?, Some(&key), OP)?;
        if let Some(owner) = beat_owner {
            // Only while we still are the uploader: a late result must not claim the beat back.
            let key = beat_key(&event.user_id);
            if decode_beat(&read(&meta, &key, OP).await?).is_none_or(|b| b.owner == owner) {
                put(&meta, &encode_beat(&Beat { owner: owner.to_owned(), at: now }), Some(&key), OP)?;
            }
        }
        Ok(Recorded::Applied(event))
    }

    /// Writes the uploader's heartbeat for `user` (a new leader claiming it).
    pub async fn beat(&self, user: &str, owner: &str, now: TimeMs) -> Result<()> {
        const OP: &str = "writing the uploader heartbeat";
        let tx = self.begin(&[META], Mode::Write, OP)?;
        let result = (|| put(&tx.store(META)?, &encode_beat(&Beat { owner: owner.to_owned(), at: now }), Some(&beat_key(user)), OP))();
        tx.finish(result).await
    }

    /// Renews `owner`'s heartbeat, unless another context has claimed it since (then `false`:
    /// `owner` no longer leads, e.g. its lock was stolen while its tab hung).
    pub async fn renew_beat(&self, user: &str, owner: &str, now: TimeMs) -> Result<bool> {
        const OP: &str = "renewing the uploader heartbeat";
        let tx = self.begin(&[META], Mode::Write, OP)?;
        let result = async {
            let meta = tx.store(META)?;
            let key = beat_key(user);
            let mine = decode_beat(&read(&meta, &key, OP).await?).is_none_or(|b| b.owner == owner);
            if mine {
                put(&meta, &encode_beat(&Beat { owner: owner.to_owned(), at: now }), Some(&key), OP)?;
            }
            Ok(mine)
        }
        .await;
        tx.finish(result).await
    }

    /// The last heartbeat of `user`'s uploader.
    pub async fn read_beat(&self, user: &str) -> Result<Option<Beat>> {
        const OP: &str = "reading the uploader heartbeat";
        let tx = self.begin(&[META], Mode::Read, OP)?;
        let result = async { read(&tx.store(META)?, &beat_key(user), OP).await }.await;
        Ok(decode_beat(&tx.finish(result).await?))
    }

    /// Takes or renews the upload lease of `user` (used where Web Locks are missing): succeeds
    /// if nobody holds it, it expired (no heartbeat for `ttl_ms`), or `owner` holds it.
    /// Check and write happen in one transaction, so two contexts cannot both win.
    pub async fn try_lease(&self, user: &str, owner: &str, now: TimeMs, ttl_ms: i64) -> Result<bool> {
        const OP: &str = "taking the upload lease";
        let tx = self.begin(&[META], Mode::Write, OP)?;
        let result = async {
            let meta = tx.store(META)?;
            let key = beat_key(user);
            let free = match decode_beat(&read(&meta, &key, OP).await?) {
                Some(b) => b.owner == owner || now - b.at > ttl_ms,
                None => true,
            };
            if free {
                put(&meta, &encode_beat(&Beat { owner: owner.to_owned(), at: now }), Some(&key), OP)?;
            }
            Ok(free)
        }
        .await;
        tx.finish(result).await
    }

    /// Gives the lease up (only if `owner` holds it), so a follower need not wait for expiry.
    pub async fn release_lease(&self, user: &str, owner: &str) -> Result<()> {
        const OP: &str = "releasing the upload lease";
        let tx = self.begin(&[META], Mode::Write, OP)?;
        let result = async {
            let meta = tx.store(META)?;
            let key = beat_key(user);
            if decode_beat(&read(&meta, &key, OP).await?).is_some_and(|b| b.owner == owner) {
                meta.delete(Query::Key(key)).map_err(idb_error(OP))?;
            }
            Ok(())
        }
        .await;
        tx.finish(result).await
    }

    /// Hands back claims whose uploads never started (`(event id, attempt)` pairs).
    pub async fn release(&self, claims: &[(String, u32)]) -> Result<u32> {
        const OP: &str = "releasing claimed events";
        let tx = self.begin(&[EVENTS], Mode::Write, OP)?;
        let result = async {
            let events = tx.store(EVENTS)?;
            let mut released = 0;
            for (id, attempt) in claims {
                let raw = read(&events, &JsValue::from_str(id), OP).await?;
                if raw.is_undefined() {
                    continue;
                }
                let mut e = decode_event(raw)?;
                if e.unclaim(*attempt).is_ok() {
                    put(&events, &encode_event(&e)?, None, OP)?;
                    released += 1;
                }
            }
            Ok(released)
        }
        .await;
        tx.finish(result).await
    }

    /// Completes an event whose entry no longer exists (nothing to upload, nothing to retry).
    pub async fn complete_orphan(&self, event_id: &str, now: TimeMs) -> Result<Recorded> {
        const OP: &str = "completing an orphaned event";
        let tx = self.begin(&[EVENTS, META], Mode::Write, OP)?;
        let result = async {
            let (events, meta) = (tx.store(EVENTS)?, tx.store(META)?);
            let raw = read(&events, &JsValue::from_str(event_id), OP).await?;
            if raw.is_undefined() {
                return Ok(Recorded::Dropped);
            }
            let mut event = decode_event(raw)?;
            if event.complete_orphan(now).is_err() {
                return Ok(Recorded::Dropped);
            }
            let key = meta_key(&event.user_id);
            let mut user_meta = decode_meta(read(&meta, &key, OP).await?);
            user_meta.record_orphan();
            put(&events, &encode_event(&event)?, None, OP)?;
            put(&meta, &encode_meta(&user_meta)?, Some(&key), OP)?;
            Ok(Recorded::Applied(event))
        }
        .await;
        tx.finish(result).await
    }

    async fn processing_of(&self, events: &ObjectStore, user: &str, op: &'static str) -> Result<Vec<OutboxEvent>> {
        let state = events.index(index::STATE).map_err(idb_error(op))?;
        let raws = get_all(&state, state_range(&JsValue::from_str(user), StateKey::Processing)?, None, op).await?;
        raws.into_iter().map(decode_event).collect()
    }

    /// Events of `user` processing for longer than `stale_after_ms` (their uploader died),
    /// except those in `alive` (uploads this outbox has in flight).
    pub async fn stale_events(&self, user: &str, now: TimeMs, stale_after_ms: i64, alive: &[String]) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "listing stale events";
        let tx = self.begin(&[EVENTS], Mode::Read, OP)?;
        let result = self.processing_of(&tx.store(EVENTS)?, user, OP).await;
        let events = tx.finish(result).await?;
        Ok(events.into_iter().filter(|e| e.is_stale(now, stale_after_ms) && !alive.contains(&e.id)).collect())
    }

    /// Puts `user`'s stale events back in the queue, except those in `alive` (uploads this
    /// outbox still has in flight); returns them as they now stand.
    pub async fn recover_stale(&self, user: &str, now: TimeMs, stale_after_ms: i64, alive: &[String]) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "recovering stale events";
        let tx = self.begin(&[EVENTS], Mode::Write, OP)?;
        let result = async {
            let events = tx.store(EVENTS)?;
            let mut recovered = Vec::new();
            for mut e in self.processing_of(&events, user, OP).await? {
                if !alive.contains(&e.id) && e.recover_stale(now, stale_after_ms).is_ok() {
                    put(&events, &encode_event(&e)?, None, OP)?;
                    recovered.push(e);
                }
            }
            Ok(recovered)
        }
        .await;
        tx.finish(result).await
    }

    /// `user`'s events, newest first, optionally of one status, at most `limit`.
    pub async fn events(&self, user: &str, status: Option<EventStatus>, limit: Option<u32>) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "listing events";
        let tx = self.begin(&[EVENTS], Mode::Read, OP)?;
        let result = async {
            let state = tx.store(EVENTS)?.index(index::STATE).map_err(idb_error(OP))?;
            let u = JsValue::from_str(user);
            let keys: &[StateKey] = match status {
                Some(s) => StateKey::of_status(s),
                None => &StateKey::ALL,
            };
            let mut out = Vec::new();
            for &sk in keys {
                // Newest first: walk each state's range backwards, stopping at `limit`.
                let mut cursor = match state.open_cursor(Some(state_range(&u, sk)?), Some(idb::CursorDirection::Prev)).map_err(idb_error(OP))?.await.map_err(idb_error(OP))? {
                    Some(c) => c.into_managed(),
                    None => continue,
                };
                let mut taken = 0;
                while let Some(raw) = cursor.value().map_err(idb_error(OP))? {
                    out.push(decode_event(raw)?);
                    taken += 1;
                    if limit.is_some_and(|l| taken >= l) {
                        break;
                    }
                    cursor.next(None).await.map_err(idb_error(OP))?;
                }
            }
            Ok(out)
        }
        .await;
        let mut events = tx.finish(result).await?;
        events.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        if let Some(l) = limit {
            events.truncate(l as usize);
        }
        Ok(events)
    }

    /// One event by id.
    pub async fn event(&self, id: &str) -> Result<Option<OutboxEvent>> {
        const OP: &str = "reading an event";
        let tx = self.begin(&[EVENTS], Mode::Read, OP)?;
        let result = async { read(&tx.store(EVENTS)?, &JsValue::from_str(id), OP).await }.await;
        let raw = tx.finish(result).await?;
        if raw.is_undefined() { Ok(None) } else { decode_event(raw).map(Some) }
    }

    /// `user`'s entries, newest measurement first.
    pub async fn entries(&self, user: &str) -> Result<Vec<ProgressEntry>> {
        const OP: &str = "listing entries";
        let tx = self.begin(&[ENTRIES], Mode::Read, OP)?;
        let result = async {
            let by_date = tx.store(ENTRIES)?.index(index::BY_USER_DATE).map_err(idb_error(OP))?;
            let u = JsValue::from_str(user);
            get_all(&by_date, bound(key2(&u, f64::NEG_INFINITY), key2(&u, f64::INFINITY))?, None, OP).await
        }
        .await;
        let raws = tx.finish(result).await?;
        let mut entries = raws.into_iter().map(decode_entry).collect::<Result<Vec<_>>>()?;
        entries.reverse();
        Ok(entries)
    }

    /// `user`'s stats: four index counts, one index read and one meta record, whatever the
    /// number of events stored.
    pub async fn stats(&self, user: &str) -> Result<Stats> {
        const OP: &str = "reading stats";
        let tx = self.begin(&[EVENTS, META], Mode::Read, OP)?;
        let result = async {
            let state = tx.store(EVENTS)?.index(index::STATE).map_err(idb_error(OP))?;
            let u = JsValue::from_str(user);
            let mut counts = Vec::with_capacity(4);
            for sk in [StateKey::Pending, StateKey::Processing, StateKey::Retrying, StateKey::GaveUp] {
                counts.push(state.count(Some(state_range(&u, sk)?)).map_err(idb_error(OP))?.into_future());
            }
            let oldest = state.get_all(Some(state_range(&u, StateKey::Pending)?), Some(1)).map_err(idb_error(OP))?.into_future();
            let meta = tx.store(META)?.get(meta_key(user)).map_err(idb_error(OP))?.into_future();
            let mut n = [0u64; 4];
            for (slot, count) in n.iter_mut().zip(counts) {
                *slot = count.await.map_err(idb_error(OP))? as u64;
            }
            let oldest_pending_at = oldest.await.map_err(idb_error(OP))?.into_iter().next().and_then(|raw| get(&raw, "createdAt").as_f64()).map(|t| t as TimeMs);
            let meta = decode_meta(meta.await.map_err(idb_error(OP))?.unwrap_or(JsValue::UNDEFINED));
            Ok(Stats::new(user, Counts { pending: n[0], processing: n[1], retrying: n[2], gave_up: n[3] }, &meta, oldest_pending_at))
        }
        .await;
        tx.finish(result).await
    }

    /// `resetForRetry`: failed and stale events named in `ids` go back to pending with 0
    /// attempts; others (pending, completed, live processing) are left alone. An unknown id
    /// fails the whole call and changes nothing. Events in `alive` (uploads in flight here) are
    /// never reset. Returns the events reset.
    pub async fn reset_for_retry(&self, ids: &[String], now: TimeMs, stale_after_ms: i64, alive: &[String]) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "resetting events";
        let tx = self.begin(&[EVENTS], Mode::Write, OP)?;
        let result = async {
            let events = tx.store(EVENTS)?;
            let mut reads = Vec::with_capacity(ids.len());
            for id in ids {
                reads.push((id, events.get(JsValue::from_str(id)).map_err(idb_error(OP))?.into_future()));
            }
            let mut found = Vec::with_capacity(ids.len());
            for (id, read) in reads {
                match read.await.map_err(idb_error(OP))? {
                    Some(raw) => found.push(decode_event(raw)?),
                    None => return Err(Error::UnknownEvent(id.clone())),
                }
            }
            let mut reset = Vec::new();
            for mut e in found {
                if !alive.contains(&e.id) && e.reset_for_retry(now, stale_after_ms).is_ok() {
                    put(&events, &encode_event(&e)?, None, OP)?;
                    reset.push(e);
                }
            }
            Ok(reset)
        }
        .await;
        tx.finish(result).await
    }

    /// Deletes completed events (of every user) completed more than `retention_ms` ago;
    /// nothing else. Returns how many were deleted.
    pub async fn cleanup(&self, now: TimeMs, retention_ms: u64) -> Result<u64> {
        const OP: &str = "cleaning up completed events";
        let cutoff = now as f64 - retention_ms as f64;
        let mut total = 0;
        loop {
            let tx = self.begin(&[EVENTS, META], Mode::Write, OP)?;
            let result = async {
                let events = tx.store(EVENTS)?;
                let done = events.index(index::DONE).map_err(idb_error(OP))?;
                let range = KeyRange::upper_bound(&JsValue::from_f64(cutoff), Some(true)).map_err(idb_error(OP))?;
                let old = get_all(&done, Query::from(range), Some(CLEANUP_CHUNK), OP).await?;
                let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
                for raw in &old {
                    // Only the fields needed; a record in this index is completed by construction.
                    let (id, user) = (get(raw, "id"), get(raw, "userId").as_string().unwrap_or_default());
                    events.delete(Query::Key(id)).map_err(idb_error(OP))?;
                    *per_user.entry(user).or_default() += 1;
                }
                let meta = tx.store(META)?;
                for (user, removed) in &per_user {
                    let key = meta_key(user);
                    let mut m = decode_meta(read(&meta, &key, OP).await?);
                    m.record_cleanup(*removed);
                    put(&meta, &encode_meta(&m)?, Some(&key), OP)?;
                }
                Ok(old.len() as u64)
            }
            .await;
            let removed = tx.finish(result).await?;
            total += removed;
            if removed < CLEANUP_CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.close();
    }
}
