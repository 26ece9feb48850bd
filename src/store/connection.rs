//! The connection: opening (with idb), the schema versions and their upgrades, reopening after
//! the browser closed it, and stepping aside for another tab's upgrade.
//!
//! Versions, one upgrade step each; a step never deletes a store, an index's data or a record,
//! and an upgrade that fails part-way is aborted, leaving the old version and all data:
//! - v1: `entries` (key path `id`): the app before the outbox.
//! - v2: index `entries.byUserDate` `[userId, date]`.
//! - v3: `events` with its indexes, and `meta`; every entry without a `backendId` gets a pending
//!   event, so measurements taken before the outbox existed still sync (seed: "Schema V3").
//! - v4: edits and deletes: `tombstones`, `quarantine`, indexes `entries.byUserMetricDate` and
//!   `events.byEntity`; every unfinished v3 event is rewritten with its v4 fields (a create, first
//!   in its entry's queue).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use idb::{KeyPath, ObjectStoreParams};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest};

use super::quarantine;
use super::records::{decode_entry, decode_event, encode_event, index, ENTRIES, EVENTS, META, QUARANTINE, TOMBSTONES};
use crate::domain::error::Written;
use crate::domain::event::{Operation, OutboxEvent};
use crate::domain::{Error, Result};
use crate::platform::idb::{abort_cause, above, all, begin, connection_lost, error, Mode, Request, Tx};
use crate::platform::timer::{first, sleep, within, Deadline, Notify};
use crate::platform::{get, new_id, Log};

/// The newest schema this build writes.
pub const VERSION: u32 = 4;
/// How long an upgrade may stay blocked by other connections before `open` gives up.
pub const BLOCKED_MS: u64 = 5_000;
/// Records read per request while migrating (bounded memory for large old databases).
const CHUNK: u32 = 500;
const UPGRADE: &str = "upgrading the schema";

/// Why the database can no longer be used from this outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Another tab upgraded it: this (older) code must not touch it again.
    VersionChanged,
    /// `close()` was called.
    Closed,
}

/// An open connection; closed, and its handlers removed, on drop.
struct Conn {
    db: IdbDatabase,
    lost: Rc<Cell<bool>>,
    _on_close: Closure<dyn FnMut()>,
    _on_version_change: Closure<dyn FnMut(web_sys::IdbVersionChangeEvent)>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.db.set_onclose(None);
        self.db.set_onversionchange(None);
        self.db.close();
    }
}

/// The app's `onVersionChange` callback and the processor's halt, run when another tab upgrades.
pub type VersionChangeHook = Rc<RefCell<Option<Box<dyn Fn()>>>>;

/// The database of one outbox: a connection that is reopened when the browser closes it.
pub struct Db {
    name: String,
    max_attempts: u32,
    log: Log,
    conn: RefCell<Option<Rc<Conn>>>,
    state: Rc<Cell<State>>,
    /// `close()` was asked: calls still running use the connection in hand, none reopens it.
    closing: Cell<bool>,
    on_version_change: VersionChangeHook,
}

impl Db {
    /// Opens (creating or upgrading) the database. `max_attempts` is given to events an upgrade
    /// creates for older entries.
    pub async fn open(name: &str, max_attempts: u32, log: Log) -> Result<Db> {
        let by = Deadline::from_now();
        let db = Db {
            name: name.into(),
            max_attempts,
            log,
            conn: RefCell::new(None),
            state: Rc::new(Cell::new(State::Open)),
            closing: Cell::new(false),
            on_version_change: Rc::default(),
        };
        db.connect(by).await?;
        log.debug(|| format!("opened database \"{name}\" (schema v{VERSION})"));
        quarantine::restore_readable(&db, by).await;
        Ok(db)
    }

    /// The console log.
    pub fn log(&self) -> Log {
        self.log
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers what runs when another tab's upgrade closed this connection.
    pub fn set_on_version_change(&self, hook: Box<dyn Fn()>) {
        *self.on_version_change.borrow_mut() = Some(hook);
    }

    /// `Ok` while calls may run; otherwise why not.
    pub fn check_open(&self) -> Result<()> {
        match self.state.get() {
            State::Open => Ok(()),
            State::VersionChanged => Err(Error::VersionChanged),
            State::Closed => Err(Error::Closed),
        }
    }

    /// `close()` was asked: what is still running (results of uploads in flight, handing the
    /// uploads over) may use the open connection, but a lost one is no longer reopened: an app
    /// that closes the outbox and deletes the database must not see it created again.
    pub fn closing(&self) {
        self.closing.set(true);
    }

    /// Closes the connection; later calls fail with [`Error::Closed`].
    pub fn close(&self) {
        if self.state.get() == State::Open {
            self.state.set(State::Closed);
        }
        self.conn.borrow_mut().take();
    }

    /// Opens a transaction that ends within the call bound (9 s) (the processor's work; see [`Db::begin_by`]).
    pub async fn begin(&self, stores: &[&str], mode: Mode, operation: &'static str) -> Result<Tx> {
        self.begin_by(stores, mode, operation, Deadline::from_now()).await
    }

    /// Opens a transaction, reopening the connection first if the browser closed it (site data
    /// cleared, storage pressure, a crashed storage process). A transaction that cannot start on
    /// a lost connection is retried once on a new one: nothing of it had happened. The reopen
    /// and the transaction share `by`, the bound of the call they serve: past it, the call
    /// rejects with a timeout (a connection that opens later is closed).
    pub async fn begin_by(&self, stores: &[&str], mode: Mode, operation: &'static str, by: Deadline) -> Result<Tx> {
        self.check_open()?;
        let conn = self.conn(operation, mode, by).await?;
        match begin(&conn.db, stores, mode, operation, by) {
            Err(e) if connection_lost(&e) => {
                self.log.warn(|| format!("the database connection was lost ({e}); reopening"));
                self.conn.borrow_mut().take();
                let conn = self.conn(operation, mode, by).await?;
                begin(&conn.db, stores, mode, operation, by)
            }
            other => other,
        }
    }

    async fn conn(&self, operation: &'static str, mode: Mode, by: Deadline) -> Result<Rc<Conn>> {
        let current = self.conn.borrow().clone();
        match current {
            Some(c) if !c.lost.get() => Ok(c),
            _ if self.closing.get() => Err(Error::Closed),
            // Boxed: `connect` is large, and only a reopen needs it.
            _ => within(by.left(), Box::pin(self.connect(by)))
                .await
                .unwrap_or(Err(Error::TimedOut(operation, if mode == Mode::Read { Written::Read } else { Written::Nothing }))),
        }
    }

    async fn connect(&self, by: Deadline) -> Result<Rc<Conn>> {
        let db = open_database(&self.name, self.max_attempts, self.log, by).await?;
        if let Err(e) = self.check_open() {
            // Closed while opening: not kept, and closed now (an open connection with no
            // versionchange handler would block other tabs' upgrades until it is collected).
            db.close();
            return Err(e);
        }
        let lost = Rc::new(Cell::new(false));
        let on_close = {
            let (lost, log, name) = (lost.clone(), self.log, self.name.clone());
            Closure::<dyn FnMut()>::new(move || {
                lost.set(true);
                log.warn(|| format!("the browser closed database \"{name}\" (site data cleared, or storage trouble); it is reopened on the next call"));
            })
        };
        let on_version_change = {
            let (db, lost, state, hook, log, name) =
                (db.clone(), lost.clone(), self.state.clone(), self.on_version_change.clone(), self.log, self.name.clone());
            Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(move |e: web_sys::IdbVersionChangeEvent| {
                db.close();
                lost.set(true);
                if e.new_version().is_none() {
                    // Deleted (by this app's code elsewhere): a fresh one is created on the next call.
                    log.warn(|| format!("database \"{name}\" was deleted elsewhere; a new one is created on the next call"));
                    return;
                }
                if state.get() == State::Open {
                    state.set(State::VersionChanged);
                }
                log.warn(|| format!("database \"{name}\" is being upgraded by a newer version of the app in another tab: connection closed, reload this page"));
                if let Some(hook) = hook.borrow().as_ref() {
                    hook();
                }
            })
        };
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        let conn = Rc::new(Conn { db, lost, _on_close: on_close, _on_version_change: on_version_change });
        *self.conn.borrow_mut() = Some(conn.clone());
        Ok(conn)
    }
}

/// Opens the database at [`VERSION`] with idb, running the upgrade steps if needed. Rejects with
/// [`Error::Blocked`] when the upgrade stays blocked by other connections for [`BLOCKED_MS`], and
/// with [`Error::OpenTimedOut`] when the browser answers nothing by `by` (a wedged storage process);
/// a running upgrade is never cut off. A connection that opens late is closed at once.
async fn open_database(name: &str, max_attempts: u32, log: Log, by: Deadline) -> Result<IdbDatabase> {
    const OP: &str = "opening the database";
    let factory = idb::Factory::new().map_err(|_| Error::Unsupported("there is no indexedDB in this context (a private window of an old browser?)".into()))?;
    let raw: IdbOpenDbRequest = factory.open(name, Some(VERSION)).map_err(error(OP))?.into();
    let mut request = idb::request::OpenDatabaseRequest::from(raw.clone());
    let upgrading = Rc::new(Cell::new(false));
    let started = upgrading.clone();
    // An upgrade ran: the browser answers the open in a task after its transaction ends.
    let upgraded = Rc::new(Cell::new(false));
    let ran = upgraded.clone();
    let refused: Rc<RefCell<Option<Error>>> = Rc::default();
    let why = refused.clone();
    // Why the browser aborted the upgrade (a write storage refused, say): it, not the AbortError
    // of the requests it cut off nor the code's reason that followed, is why the open fails.
    let aborted: Rc<RefCell<Option<Error>>> = Rc::default();
    let abort_seen = aborted.clone();
    request.on_upgrade_needed(move |event| {
        started.set(true);
        ran.set(true);
        // Running until its versionchange transaction ends: then the browser answers the open
        // (or, should it never, the open times out like any other).
        if let Some(tx) = idb::Event::target(&event).ok().and_then(|r| idb::Request::transaction(&r)) {
            let raw: web_sys::IdbTransaction = tx.into();
            let (ended, tx, aborted) = (started.clone(), raw.clone(), abort_seen.clone());
            let f = Closure::once_into_js(move |e: web_sys::Event| {
                ended.set(false);
                if e.type_() == "abort" {
                    *aborted.borrow_mut() = abort_cause(&tx, UPGRADE);
                }
            });
            let _ = raw.add_event_listener_with_callback("complete", f.unchecked_ref());
            let _ = raw.add_event_listener_with_callback("abort", f.unchecked_ref());
        }
        if let Err(e) = upgrade(&event, max_attempts, log, &why) {
            *why.borrow_mut() = Some(e.clone());
            log.warn(|| format!("schema upgrade failed, the database keeps its old version and all its data: {e}"));
            if let Some(tx) = idb::Event::target(&event).ok().and_then(|r| idb::Request::transaction(&r)) {
                let _ = tx.abort();
            }
        }
    });
    let blocked = Rc::new(Notify::default());
    {
        let (blocked, name) = (blocked.clone(), name.to_owned());
        request.on_blocked(move |_| {
            log.warn(|| format!("upgrading database \"{name}\" waits for other tabs of this app to close it (they are asked to)"));
            blocked.notify();
        });
    }
    // From here, an open no one waits for any more (timed out, or the call that asked for it was
    // dropped at its own bound) closes the connection it gets late.
    let mut abandoned = Abandoned { raw: raw.clone(), request: Some(request) };
    let opened = Request::new(raw.clone().into(), OP);
    let mut result = None;
    let was_blocked = Cell::new(false);
    let give_up = async {
        blocked.notified().await;
        sleep(BLOCKED_MS).await;
        // Unblocked meanwhile: a running upgrade is never cut off (however long it takes).
        while upgrading.get() {
            sleep(1_000).await;
        }
        answer_after_upgrade(&upgraded).await;
        was_blocked.set(true);
    };
    let no_answer = async {
        sleep(by.left()).await;
        while upgrading.get() {
            sleep(1_000).await;
        }
        answer_after_upgrade(&upgraded).await;
    };
    first(async { result = Some(opened.await) }, first(give_up, no_answer)).await;
    let Some(result) = result else {
        return Err(if was_blocked.get() { Error::Blocked(name.into()) } else { Error::OpenTimedOut(name.into()) });
    };
    drop(abandoned.request.take());
    if let (Err(_), Some(why)) = (&result, aborted.take().or_else(|| refused.take())) {
        return Err(why);
    }
    match result {
        Ok(db) => {
            let db: IdbDatabase = db.unchecked_into();
            let names = db.object_store_names();
            let problem = match LAYOUT.iter().find(|(s, ..)| !names.contains(s)) {
                Some((missing, ..)) => Some(format!("it has no \"{missing}\" store")),
                None => match idb::Database::from(db.clone()).transaction(&LAYOUT.map(|(s, ..)| s), idb::TransactionMode::ReadOnly) {
                    Ok(tx) => layout_problem(|n| tx.object_store(n).ok()),
                    Err(e) => {
                        db.close();
                        return Err(error(OP)(e));
                    }
                },
            };
            match problem {
                None => Ok(db),
                Some(p) => {
                    db.close();
                    Err(foreign(name, &p))
                }
            }
        }
        Err(Error::Storage { detail, .. }) if detail.starts_with("VersionError") => {
            Err(Error::NewerSchema { name: name.into(), found: found_version(&factory, name, by).await.unwrap_or(0), supported: VERSION })
        }
        Err(e) => Err(e),
    }
}

/// After an upgrade's transaction ended, the open's answer comes in a task of its own: a
/// deadline that falls in between must not report an upgrade that committed as failed.
async fn answer_after_upgrade(upgraded: &Cell<bool>) {
    if upgraded.get() {
        sleep(2_000).await;
    }
}

/// An open request whose answer no one may wait for: unless its request is taken back (the
/// answer came), dropping it keeps the upgrade handler alive for a late upgrade and closes
/// whatever opens late (a connection left open would block other tabs' upgrades and deletes).
struct Abandoned {
    raw: IdbOpenDbRequest,
    request: Option<idb::request::OpenDatabaseRequest>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(mut request) = self.request.take() {
            request.forget_callbacks();
            self.raw.set_onsuccess(Some(close_late_connection().unchecked_ref()));
        }
    }
}

/// An open request's `onsuccess` for a connection no one waits for any more: closes it.
fn close_late_connection() -> JsValue {
    Closure::once_into_js(move |e: web_sys::Event| {
        if let Some(db) = e.target().and_then(|t| t.dyn_into::<IdbRequest>().ok()).and_then(|r| r.result().ok()) {
            db.unchecked_into::<IdbDatabase>().close();
        }
    })
}

/// A database named `name` exists but is not laid out as ours (`problem` says how): another
/// library's or app's.
fn foreign(name: &str, problem: &str) -> Error {
    Error::Storage {
        operation: "opening the database",
        detail: format!(
            "database \"{name}\" was not created by progress-outbox ({problem}): it belongs to other code; give Outbox.open another dbName (nothing was changed)"
        ),
    }
}

/// Each store of schema v[`VERSION`]: its key path (`None`: keys given apart, no generator) and
/// its indexes.
const LAYOUT: [(&str, Option<&str>, &[&str]); 5] = [
    (ENTRIES, Some("id"), &[index::BY_USER_DATE, index::BY_USER_METRIC_DATE]),
    (EVENTS, Some("id"), &[index::READY, index::RETRY, index::STATE, index::DONE, index::BY_ENTITY]),
    (META, None, &[]),
    (TOMBSTONES, Some("id"), &[]),
    (QUARANTINE, None, &[index::BY_USER]),
];

/// How the stores `store` gives differ from [`LAYOUT`] (a store of the same name that other code
/// made or changed: other keys, a key generator, an index missing), or `None`.
fn layout_problem(store: impl Fn(&str) -> Option<idb::ObjectStore>) -> Option<String> {
    for (name, key, indexes) in LAYOUT {
        let Some(s) = store(name) else { return Some(format!("it has no \"{name}\" store")) };
        let keys_ok = match (s.key_path(), key) {
            (Ok(None), None) => true,
            (Ok(Some(KeyPath::Single(p))), Some(k)) => p == k,
            _ => false,
        };
        if !keys_ok || s.auto_increment() {
            return Some(format!("its \"{name}\" store is keyed otherwise"));
        }
        let have = s.index_names();
        if let Some(missing) = indexes.iter().find(|i| !have.iter().any(|h| h == *i)) {
            return Some(format!("its \"{name}\" store has no \"{missing}\" index"));
        }
    }
    None
}

async fn found_version(factory: &idb::Factory, name: &str, by: Deadline) -> Option<u32> {
    let raw: IdbOpenDbRequest = factory.open(name, None).ok()?.into();
    let raw: IdbRequest = raw.into();
    // Bounded: it may queue behind another tab's upgrade. A late connection is closed.
    let late = raw.clone();
    let Some(opened) = within(by.left(), Request::new(raw, "reading the database version")).await else {
        late.set_onsuccess(Some(close_late_connection().unchecked_ref()));
        return None;
    };
    let db: IdbDatabase = opened.ok()?.unchecked_into();
    let version = db.version() as u32;
    db.close();
    Some(version)
}

fn create_store(db: &idb::Database, name: &str, key_path: Option<&str>) -> Result<idb::ObjectStore> {
    let mut params = ObjectStoreParams::new();
    params.key_path(key_path.map(KeyPath::new_single));
    db.create_object_store(name, params).map_err(error(UPGRADE))
}

fn create_index(store: &idb::ObjectStore, name: &str, key_path: &[&str]) -> Result<()> {
    let path = match key_path {
        [single] => KeyPath::new_single(single),
        many => KeyPath::new_array(many.iter().copied()),
    };
    store.create_index(name, path, None).map(drop).map_err(error(UPGRADE))
}

/// Runs the `upgradeneeded` steps from the event's old version to [`VERSION`]. Stores and
/// indexes are created synchronously; record migrations continue asynchronously inside the
/// same versionchange transaction, which aborts (keeping the old version and all data) if they fail.
fn upgrade(event: &idb::event::VersionChangeEvent, max_attempts: u32, log: Log, why: &Rc<RefCell<Option<Error>>>) -> Result<()> {
    let old = event.old_version().unwrap_or(0);
    let target = idb::Event::target(event).map_err(error(UPGRADE))?;
    let tx = idb::Request::transaction(&target).ok_or(Error::Storage { operation: UPGRADE, detail: "no versionchange transaction".into() })?;
    let db = tx.database();
    log.info(|| format!("upgrading database \"{}\" from schema v{old} to v{VERSION}", db.name()));
    // A database of this name that other code made: its stores are not ours to change.
    let names = db.store_names();
    let expected: &[&str] = match old {
        0 => &[],
        1 | 2 => &[ENTRIES],
        _ => &[ENTRIES, EVENTS, META],
    };
    if let Some(missing) = expected.iter().find(|s| !names.iter().any(|n| n == *s)) {
        return Err(foreign(&db.name(), &format!("it has no \"{missing}\" store")));
    }

    if old < 1 {
        create_store(&db, ENTRIES, Some("id"))?;
    }
    let entries = tx.object_store(ENTRIES).map_err(error(UPGRADE))?;
    if old < 2 {
        create_index(&entries, index::BY_USER_DATE, &["userId", "date"])?;
    }
    if old < 3 {
        let events = create_store(&db, EVENTS, Some("id"))?;
        create_index(&events, index::READY, &["userId", "rdy", "createdAt"])?;
        create_index(&events, index::RETRY, &["userId", "due"])?;
        create_index(&events, index::STATE, &["userId", "sk", "createdAt"])?;
        create_index(&events, index::DONE, &["done"])?;
        create_store(&db, META, None)?;
    }
    if old < 4 {
        create_store(&db, TOMBSTONES, Some("id"))?;
        let q = create_store(&db, QUARANTINE, None)?;
        create_index(&q, index::BY_USER, &["userId"])?;
        create_index(&entries, index::BY_USER_METRIC_DATE, &["userId", "type", "date"])?;
        let events = tx.object_store(EVENTS).map_err(error(UPGRADE))?;
        create_index(&events, index::BY_ENTITY, &["entityId", "seq"])?;
    }
    // What the older version had, other code may have made or changed (a store of the same name
    // keyed otherwise, an index missing): upgraded, it would fail every call for good.
    if let Some(p) = layout_problem(|n| tx.object_store(n).ok()) {
        return Err(foreign(&db.name(), &p));
    }
    if (1..4).contains(&old) {
        let raw_tx: web_sys::IdbTransaction = tx.into();
        let why = why.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let tx = idb::Transaction::from(raw_tx.clone());
            match migrate(&tx, old, max_attempts).await {
                Ok((queued, rewritten, set_aside)) => log.info(|| {
                    format!("schema v{VERSION}: {queued} older entries queued for upload, {rewritten} events rewritten, {set_aside} unreadable records set aside (kept in quarantine)")
                }),
                Err(e) => {
                    log.warn(|| format!("schema upgrade aborted, the database keeps v{old} and all its data: {e}"));
                    // The open rejects with this, not the browser's "transaction was aborted"
                    // (unless the browser aborted it first: then with its cause).
                    *why.borrow_mut() = Some(e);
                    let _ = raw_tx.abort();
                }
            }
        });
    }
    Ok(())
}

/// The record migrations of an upgrade from `old` (inside its versionchange transaction):
/// v3's backfill of entries without a backend id, v4's rewrite of unfinished events.
async fn migrate(tx: &idb::Transaction, old: u32, max_attempts: u32) -> Result<(u32, u32, u32)> {
    let entries = tx.object_store(ENTRIES).map_err(error(UPGRADE))?;
    let events = tx.object_store(EVENTS).map_err(error(UPGRADE))?;
    let q = tx.object_store(QUARANTINE).map_err(error(UPGRADE))?;
    let (mut queued, mut rewritten, mut set_aside) = (0, 0, 0);
    if old < 3 {
        let mut after: Option<JsValue> = None;
        loop {
            let range = after.as_ref().map(above).transpose()?;
            let chunk = all(entries.get_all(range, Some(CHUNK)), UPGRADE).await?;
            for raw in &chunk {
                after = Some(get(raw, "id"));
                match decode_entry(raw) {
                    Ok(entry) if entry.backend_id.is_none() => {
                        let event = OutboxEvent::new(new_id(), Operation::Create, &entry, 0, max_attempts, entry.created_at);
                        events.add(&encode_event(&event), None).map_err(error(UPGRADE))?;
                        queued += 1;
                    }
                    Ok(_) => {}
                    Err(why) => {
                        quarantine::move_in(&entries, &q, ENTRIES, raw, &why, crate::platform::now())?;
                        set_aside += 1;
                    }
                }
            }
            if (chunk.len() as u32) < CHUNK {
                break;
            }
        }
    } else {
        // v3 -> v4: every unfinished event gets its v4 fields (and the index fields they imply).
        let mut after: Option<JsValue> = None;
        loop {
            let range = after.as_ref().map(above).transpose()?;
            let chunk = all(events.get_all(range, Some(CHUNK)), UPGRADE).await?;
            for raw in &chunk {
                after = Some(get(raw, "id"));
                match decode_event(raw) {
                    Ok(e) if e.is_unfinished() => {
                        events.put(&encode_event(&e), None).map_err(error(UPGRADE))?;
                        rewritten += 1;
                    }
                    Ok(_) => {}
                    Err(why) => {
                        quarantine::move_in(&events, &q, EVENTS, raw, &why, crate::platform::now())?;
                        set_aside += 1;
                    }
                }
            }
            if (chunk.len() as u32) < CHUNK {
                break;
            }
        }
    }
    Ok((queued, rewritten, set_aside))
}
