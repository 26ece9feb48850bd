//! The IndexedDB adapter: one database holding entries, outbox events and per-user meta.
//!
//! Every query goes through an index and touches only the records it returns (see
//! [`records`] for the layout). Writes that belong together share one transaction.

pub mod idb;
pub mod records;
pub mod schema;
pub mod tx;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbVersionChangeEvent};

use crate::domain::entry::ProgressEntry;
use crate::domain::event::{EventStatus, OutboxEvent, StateKey};
use crate::domain::retry::Decision;
use crate::domain::stats::{Counts, Stats};
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::{get, global, set, Log};
use idb::{bound, delete, get as get_req, get_all, index as index_of, js_error, put, Request};

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = saveRecords)]
    fn save_records_js(db: &IdbDatabase, entry: &JsValue, event: &JsValue) -> js_sys::Promise;
}
use records::{
    beat_key, decode_beat, decode_entry, decode_event, decode_meta, encode_beat, encode_entry, encode_event, encode_meta, index, key2, key3, meta_key, Beat,
    ENTRIES, EVENTS, META,
};
use tx::{Mode, Tx};

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

/// One upload result to record: the decision about attempt `attempt` of an event, made at `at`.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// The event.
    pub event_id: &'a str,
    /// The claim it answers (the event's `attemptCount` when claimed).
    pub attempt: u32,
    /// What to do.
    pub decision: &'a Decision,
    /// When it was decided.
    pub at: TimeMs,
    /// The entry as claimed with the event, if the caller has it: then a completion writes
    /// its backend id without reading it again.
    pub entry: Option<&'a ProgressEntry>,
}

/// What recording an upload's result did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The event as it now stands.
    Applied(OutboxEvent),
    /// The event had moved on (reset, recovered, or already completed): nothing written.
    Dropped,
}

/// The app's `onVersionChange` callback, set after opening.
type VersionChangeHook = Rc<RefCell<Option<Box<dyn Fn()>>>>;

/// An open database.
pub struct Store {
    db: IdbDatabase,
    name: String,
    health: Rc<Cell<Health>>,
    on_version_change: VersionChangeHook,
    _version_change: Closure<dyn FnMut()>,
}

/// All keys `[user, sk, *]`.
fn state_range(user: &JsValue, sk: StateKey) -> Result<IdbKeyRange> {
    let sk = sk as u8 as f64;
    bound(&key3(user, sk, f64::NEG_INFINITY), &key3(user, sk, f64::INFINITY))
}

async fn read(store: &IdbObjectStore, key: &JsValue, op: &'static str) -> Result<JsValue> {
    get_req(store, key, op)?.await
}

/// Marks an unreadable event record as failed-for-good, in place, so it leaves the queue
/// without being deleted (health data is never deleted because of an error).
fn quarantine(store: &IdbObjectStore, raw: &JsValue, why: &str, op: &'static str) -> Result<()> {
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
        const OP: &str = "opening the database";
        let factory = get(&global(), "indexedDB")
            .dyn_into::<IdbFactory>()
            .map_err(|_| Error::Unsupported("no indexedDB in this context (a private window of an old browser?)".into()))?;
        let request: IdbOpenDbRequest = factory.open_with_u32(name, schema::VERSION).map_err(js_error(OP))?;
        let on_upgrade = Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
            if let Err(e) = schema::upgrade(&event, max_attempts, log) {
                log.warn(|| format!("schema upgrade failed, the database keeps its old version and all its data: {e}"));
                if let Some(tx) = event.target().and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok()).and_then(|r| r.transaction()) {
                    let _ = tx.abort();
                }
            }
        });
        let db_name = name.to_owned();
        let on_blocked = Closure::<dyn FnMut()>::new(move || {
            log.warn(|| format!("upgrading database \"{db_name}\" is waiting for other tabs of this app to close it (they are asked to)"));
        });
        request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        request.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
        let opened = Request::new(&request, OP).await;
        request.set_onupgradeneeded(None);
        request.set_onblocked(None);
        let db: IdbDatabase = match opened {
            Ok(db) => db.unchecked_into(),
            Err(Error::Storage { detail, .. }) if detail.starts_with("VersionError") => {
                return Err(Error::NewerSchema { name: name.into(), found: Self::found_version(&factory, name).await.unwrap_or(0), supported: schema::VERSION })
            }
            Err(e) => return Err(e),
        };

        let health = Rc::new(Cell::new(Health::Open));
        let on_version_change: VersionChangeHook = Rc::new(RefCell::new(None));
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

    async fn found_version(factory: &IdbFactory, name: &str) -> Option<u32> {
        let req = factory.open(name).ok()?;
        let db: IdbDatabase = Request::new(&req, "reading the database version").await.ok()?.unchecked_into();
        let version = db.version() as u32;
        db.close();
        Some(version)
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
        self.save_records(&encode_entry(entry), &encode_event(event)).await
    }

    /// [`Store::save`] on already encoded records (tests use it to make the second write fail).
    /// The hot path of the library, so one JS call: `add` both records (never `put`: an id
    /// collision must fail, not overwrite) in a strict-durability transaction, await the commit.
    #[doc(hidden)]
    pub async fn save_records(&self, entry: &JsValue, event: &JsValue) -> Result<()> {
        self.check_open()?;
        wasm_bindgen_futures::JsFuture::from(save_records_js(&self.db, entry, event)).await.map(drop).map_err(js_error("saving an entry"))
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
        let (events, entries) = (tx.store(EVENTS)?, tx.store(ENTRIES)?);
        let u = JsValue::from_str(user);
        let mut claim = Claim::default();

        let retry = index_of(&events, index::RETRY, OP)?;
        for raw in get_all(&retry, &bound(&key2(&u, f64::NEG_INFINITY), &key2(&u, now as f64))?, Some(PROMOTE_PER_CLAIM), OP).await? {
            match decode_event(&raw) {
                Ok(mut e) => {
                    if e.promote(now).is_ok() {
                        put(&events, &encode_event(&e), None, OP)?;
                        claim.promoted += 1;
                    }
                }
                Err(err) => {
                    quarantine(&events, &raw, &err.to_string(), OP)?;
                    claim.quarantined += 1;
                }
            }
        }

        let ready = index_of(&events, index::READY, OP)?;
        let range = bound(&key3(&u, f64::NEG_INFINITY, f64::NEG_INFINITY), &key3(&u, f64::INFINITY, f64::INFINITY))?;
        let mut reads = Vec::new();
        for raw in get_all(&ready, &range, Some(batch), OP).await? {
            match decode_event(&raw) {
                Ok(mut e) => {
                    if e.claim(now).is_ok() {
                        put(&events, &encode_event(&e), None, OP)?;
                        let read = get_req(&entries, &JsValue::from_str(&e.entity_id), OP)?;
                        reads.push((e, read));
                    }
                }
                Err(err) => {
                    quarantine(&events, &raw, &err.to_string(), OP)?;
                    claim.quarantined += 1;
                }
            }
        }
        for (event, read) in reads {
            let raw = read.await?;
            let entry = if raw.is_undefined() { None } else { Some(decode_entry(&raw)?) };
            claim.items.push((event, entry));
        }
        Ok(claim)
    }

    /// Records the decision about attempt `attempt` of event `event_id`, with its consequences,
    /// in one transaction: on success the event completes and the entry gets its backend id.
    /// `beat_owner`: the uploader's id, whose heartbeat is renewed in the same transaction.
    pub async fn record(&self, event_id: &str, attempt: u32, decision: &Decision, now: TimeMs, beat_owner: Option<&str>) -> Result<Recorded> {
        let mut done = self.record_many(&[Outcome { event_id, attempt, decision, at: now, entry: None }], beat_owner).await?;
        Ok(done.pop().unwrap_or(Recorded::Dropped))
    }

    /// [`Store::record`] for several results in one transaction (the processor's group commit:
    /// results that arrive while a previous write commits are written together).
    pub async fn record_many(&self, items: &[Outcome<'_>], beat_owner: Option<&str>) -> Result<Vec<Recorded>> {
        const OP: &str = "recording upload results";
        let tx = self.begin(&[EVENTS, ENTRIES, META], Mode::Write, OP)?;
        let result = self.record_in(&tx, items, beat_owner).await;
        tx.finish(result).await
    }

    async fn record_in(&self, tx: &Tx, items: &[Outcome<'_>], beat_owner: Option<&str>) -> Result<Vec<Recorded>> {
        const OP: &str = "recording upload results";
        let (events, entries, meta) = (tx.store(EVENTS)?, tx.store(ENTRIES)?, tx.store(META)?);
        // Every read of a round goes out at once: two round trips whatever the number of results.
        let mut reads = Vec::with_capacity(items.len());
        for item in items {
            reads.push(get_req(&events, &JsValue::from_str(item.event_id), OP)?);
        }
        let mut applied: Vec<Option<OutboxEvent>> = Vec::with_capacity(items.len());
        for (item, read) in items.iter().zip(reads) {
            let raw = read.await?;
            let event = if raw.is_undefined() { None } else { Some(decode_event(&raw)?) };
            applied.push(event.and_then(|mut e| e.apply(item.attempt, item.decision, item.at).is_ok().then_some(e)));
        }
        let mut users: Vec<String> = Vec::new();
        for e in applied.iter().flatten() {
            if !users.contains(&e.user_id) {
                users.push(e.user_id.clone());
            }
        }
        let mut meta_reads = Vec::with_capacity(users.len());
        for u in &users {
            let beat = if beat_owner.is_some() { Some(get_req(&meta, &beat_key(u), OP)?) } else { None };
            meta_reads.push((get_req(&meta, &meta_key(u), OP)?, beat));
        }
        let mut entry_reads = Vec::new();
        for (item, e) in items.iter().zip(&applied) {
            if let (Some(e), Decision::Complete { .. }, None) = (e, item.decision, item.entry) {
                entry_reads.push(Some(get_req(&entries, &JsValue::from_str(&e.entity_id), OP)?));
            } else {
                entry_reads.push(None);
            }
        }
        let mut metas = Vec::with_capacity(users.len());
        for (m, b) in meta_reads {
            let beat = match b {
                Some(r) => decode_beat(&r.await?),
                None => None,
            };
            metas.push((decode_meta(&m.await?), beat));
        }
        let mut out = Vec::with_capacity(items.len());
        let mut latest = 0;
        for ((item, event), entry_read) in items.iter().zip(applied).zip(entry_reads) {
            let Some(event) = event else {
                out.push(Recorded::Dropped);
                continue;
            };
            latest = latest.max(item.at);
            let slot = users.iter().position(|u| *u == event.user_id).unwrap_or(0);
            let user_meta = &mut metas[slot].0;
            match item.decision {
                Decision::Complete { backend_id } => {
                    let entry = match (item.entry, entry_read) {
                        (Some(known), _) => Some(known.clone()),
                        (None, Some(r)) => {
                            let raw = r.await?;
                            if raw.is_undefined() {
                                None
                            } else {
                                Some(decode_entry(&raw)?)
                            }
                        }
                        (None, None) => None,
                    };
                    if let Some(mut entry) = entry {
                        entry.backend_id = Some(backend_id.clone());
                        entry.updated_at = item.at;
                        put(&entries, &encode_entry(&entry), None, OP)?;
                    }
                    user_meta.record_success(item.at, item.at - event.created_at);
                }
                Decision::Retry { message, .. } | Decision::GiveUp { message } => user_meta.record_failure(item.at, message),
            }
            put(&events, &encode_event(&event), None, OP)?;
            out.push(Recorded::Applied(event));
        }
        for (user, (user_meta, beat)) in users.iter().zip(metas) {
            put(&meta, &encode_meta(&user_meta), Some(&meta_key(user)), OP)?;
            if let Some(owner) = beat_owner {
                // Only while we still are the uploader: a late result must not claim the beat back.
                if beat.is_none_or(|b| b.owner == owner) {
                    put(&meta, &encode_beat(&Beat { owner: owner.to_owned(), at: latest }), Some(&beat_key(user)), OP)?;
                }
            }
        }
        Ok(out)
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
        self.lease(user, owner, now, None, "renewing the uploader heartbeat").await
    }

    /// Takes or renews the upload lease of `user` (used where Web Locks are missing): succeeds
    /// if nobody holds it, it expired (no heartbeat for `ttl_ms`), or `owner` holds it.
    /// Check and write happen in one transaction, so two contexts cannot both win.
    pub async fn try_lease(&self, user: &str, owner: &str, now: TimeMs, ttl_ms: i64) -> Result<bool> {
        self.lease(user, owner, now, Some(ttl_ms), "taking the upload lease").await
    }

    async fn lease(&self, user: &str, owner: &str, now: TimeMs, ttl_ms: Option<i64>, op: &'static str) -> Result<bool> {
        let tx = self.begin(&[META], Mode::Write, op)?;
        let result = async {
            let meta = tx.store(META)?;
            let key = beat_key(user);
            let free = match decode_beat(&read(&meta, &key, op).await?) {
                Some(b) => b.owner == owner || ttl_ms.is_some_and(|ttl| now - b.at > ttl),
                None => true,
            };
            if free {
                put(&meta, &encode_beat(&Beat { owner: owner.to_owned(), at: now }), Some(&key), op)?;
            }
            Ok(free)
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

    /// Gives the lease up (only if `owner` holds it), so a follower need not wait for expiry.
    pub async fn release_lease(&self, user: &str, owner: &str) -> Result<()> {
        const OP: &str = "releasing the upload lease";
        let tx = self.begin(&[META], Mode::Write, OP)?;
        let result = async {
            let meta = tx.store(META)?;
            let key = beat_key(user);
            if decode_beat(&read(&meta, &key, OP).await?).is_some_and(|b| b.owner == owner) {
                delete(&meta, &key, OP)?;
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
                let mut e = decode_event(&raw)?;
                if e.unclaim(*attempt).is_ok() {
                    put(&events, &encode_event(&e), None, OP)?;
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
            let mut event = decode_event(&raw)?;
            if event.complete_orphan(now).is_err() {
                return Ok(Recorded::Dropped);
            }
            let key = meta_key(&event.user_id);
            let mut user_meta = decode_meta(&read(&meta, &key, OP).await?);
            user_meta.record_orphan();
            put(&events, &encode_event(&event), None, OP)?;
            put(&meta, &encode_meta(&user_meta), Some(&key), OP)?;
            Ok(Recorded::Applied(event))
        }
        .await;
        tx.finish(result).await
    }

    async fn processing_of(&self, events: &IdbObjectStore, user: &str, op: &'static str) -> Result<Vec<OutboxEvent>> {
        let state = index_of(events, index::STATE, op)?;
        get_all(&state, &state_range(&JsValue::from_str(user), StateKey::Processing)?, None, op).await?.iter().map(decode_event).collect()
    }

    /// Events of `user` processing for longer than `stale_after_ms` (their uploader died),
    /// except those in `alive` (uploads this outbox has in flight).
    pub async fn stale_events(&self, user: &str, now: TimeMs, stale_after_ms: i64, alive: &[String]) -> Result<Vec<OutboxEvent>> {
        const OP: &str = "listing stale events";
        let tx = self.begin(&[EVENTS], Mode::Read, OP)?;
        let result = async { self.processing_of(&tx.store(EVENTS)?, user, OP).await }.await;
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
                    put(&events, &encode_event(&e), None, OP)?;
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
            let state = index_of(&tx.store(EVENTS)?, index::STATE, OP)?;
            let u = JsValue::from_str(user);
            let keys: &[StateKey] = match status {
                Some(s) => StateKey::of_status(s),
                None => &StateKey::ALL,
            };
            // Each state's range walked backwards (newest first), `limit` at most from each.
            let mut runs = Vec::with_capacity(keys.len());
            for &sk in keys {
                let raws = idb::last_values(&state, &state_range(&u, sk)?, limit, OP).await?;
                runs.push(raws.iter().map(decode_event).collect::<Result<Vec<_>>>()?);
            }
            Ok(runs)
        }
        .await;
        Ok(merge_newest_first(tx.finish(result).await?, limit))
    }

    /// One event by id.
    pub async fn event(&self, id: &str) -> Result<Option<OutboxEvent>> {
        const OP: &str = "reading an event";
        let tx = self.begin(&[EVENTS], Mode::Read, OP)?;
        let result = async { read(&tx.store(EVENTS)?, &JsValue::from_str(id), OP).await }.await;
        let raw = tx.finish(result).await?;
        if raw.is_undefined() {
            Ok(None)
        } else {
            decode_event(&raw).map(Some)
        }
    }

    /// `user`'s entries, newest measurement first.
    pub async fn entries(&self, user: &str) -> Result<Vec<ProgressEntry>> {
        const OP: &str = "listing entries";
        let tx = self.begin(&[ENTRIES], Mode::Read, OP)?;
        let result = async {
            let by_date = index_of(&tx.store(ENTRIES)?, index::BY_USER_DATE, OP)?;
            let u = JsValue::from_str(user);
            get_all(&by_date, &bound(&key2(&u, f64::NEG_INFINITY), &key2(&u, f64::INFINITY))?, None, OP).await
        }
        .await;
        let raws = tx.finish(result).await?;
        raws.iter().rev().map(decode_entry).collect()
    }

    /// `user`'s stats: four index counts, one index read and one meta record, whatever the
    /// number of events stored.
    pub async fn stats(&self, user: &str) -> Result<Stats> {
        const OP: &str = "reading stats";
        let tx = self.begin(&[EVENTS, META], Mode::Read, OP)?;
        let result = async {
            let state = index_of(&tx.store(EVENTS)?, index::STATE, OP)?;
            let u = JsValue::from_str(user);
            let mut counts = Vec::with_capacity(4);
            for sk in [StateKey::Pending, StateKey::Processing, StateKey::Retrying, StateKey::GaveUp] {
                counts.push(idb::count(&state, &state_range(&u, sk)?, OP)?);
            }
            let oldest = idb::request(state.get_all_with_key_and_limit(&state_range(&u, StateKey::Pending)?.into(), 1), OP)?;
            let meta = get_req(&tx.store(META)?, &meta_key(user), OP)?;
            let mut n = [0u64; 4];
            for (slot, count) in n.iter_mut().zip(counts) {
                *slot = count.await?.as_f64().unwrap_or(0.0) as u64;
            }
            let oldest = js_sys::Array::from(&oldest.await?).get(0);
            let oldest_pending_at = get(&oldest, "createdAt").as_f64().map(|t| t as TimeMs);
            let meta = decode_meta(&meta.await?);
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
                reads.push((id, get_req(&events, &JsValue::from_str(id), OP)?));
            }
            let mut found = Vec::with_capacity(ids.len());
            for (id, read) in reads {
                let raw = read.await?;
                if raw.is_undefined() {
                    return Err(Error::UnknownEvent(id.clone()));
                }
                found.push(decode_event(&raw)?);
            }
            let mut reset = Vec::new();
            for mut e in found {
                if !alive.contains(&e.id) && e.reset_for_retry(now, stale_after_ms).is_ok() {
                    put(&events, &encode_event(&e), None, OP)?;
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
        let cutoff = JsValue::from_f64(now as f64 - retention_ms as f64);
        let mut total = 0;
        loop {
            let tx = self.begin(&[EVENTS, META], Mode::Write, OP)?;
            let result = async {
                let events = tx.store(EVENTS)?;
                let done = index_of(&events, index::DONE, OP)?;
                let old = get_all(&done, &idb::below(&cutoff)?, Some(CLEANUP_CHUNK), OP).await?;
                // (user, removed) pairs; users are few, so a vector beats a map in code size.
                let mut per_user: Vec<(String, u64)> = Vec::new();
                for raw in &old {
                    // A record in this index is completed by construction: only id and user needed.
                    delete(&events, &get(raw, "id"), OP)?;
                    let user = get(raw, "userId").as_string().unwrap_or_default();
                    match per_user.iter_mut().find(|(u, _)| *u == user) {
                        Some((_, n)) => *n += 1,
                        None => per_user.push((user, 1)),
                    }
                }
                let meta = tx.store(META)?;
                for (user, removed) in &per_user {
                    let key = meta_key(user);
                    let mut m = decode_meta(&read(&meta, &key, OP).await?);
                    m.record_cleanup(*removed);
                    put(&meta, &encode_meta(&m), Some(&key), OP)?;
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

/// Merges runs that are each newest first into one newest-first list of at most `limit`.
/// (A k-way merge of at most five runs: linear, and no standard sort in the wasm.)
fn merge_newest_first(runs: Vec<Vec<OutboxEvent>>, limit: Option<u32>) -> Vec<OutboxEvent> {
    let total: usize = runs.iter().map(Vec::len).sum();
    let want = limit.map_or(total, |l| (l as usize).min(total));
    let mut runs: Vec<std::collections::VecDeque<OutboxEvent>> = runs.into_iter().map(Into::into).collect();
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        let mut best: Option<usize> = None;
        for (i, run) in runs.iter().enumerate() {
            let Some(candidate) = run.front() else { continue };
            let better = match best.and_then(|b| runs[b].front()) {
                Some(current) => (candidate.created_at, &candidate.id) > (current.created_at, &current.id),
                None => true,
            };
            if better {
                best = Some(i);
            }
        }
        match best.and_then(|b| runs[b].pop_front()) {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

impl Drop for Store {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.close();
    }
}
