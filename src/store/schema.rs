//! Schema versions, one upgrade step each. A step never deletes a store, an index's data or a
//! record; an upgrade that fails part-way is aborted, leaving the database at its old version.
//!
//! - v1: `entries` (key path `id`): the app before the outbox.
//! - v2: index `entries.byUserDate` `[userId, date]`.
//! - v3: `events` with its indexes and `meta`; every entry without a `backendId` gets a pending
//!   event, so measurements taken before the outbox existed still sync (seed: "Schema V3").

use idb::{Database, IndexParams, KeyPath, ObjectStore, ObjectStoreParams, Query};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbTransaction, IdbVersionChangeEvent};

use super::records::{decode_entry, encode_event, index, ENTRIES, EVENTS, META};
use super::tx::idb_error;
use crate::domain::event::OutboxEvent;
use crate::domain::{Error, Result};
use crate::platform::{new_id, Log};

/// The newest schema this build writes.
pub const VERSION: u32 = 3;

/// Entries read per request while backfilling (bounded memory for large old databases).
const BACKFILL_CHUNK: u32 = 500;

fn create_index(store: &ObjectStore, name: &str, key_path: KeyPath) -> Result<()> {
    store.create_index(name, key_path, Some(IndexParams::new())).map(|_| ()).map_err(idb_error("upgrading the schema"))
}

fn create_store(db: &Database, name: &str, key_path: Option<&str>) -> Result<ObjectStore> {
    let mut params = ObjectStoreParams::new();
    params.key_path(key_path.map(KeyPath::new_single));
    db.create_object_store(name, params).map_err(idb_error("upgrading the schema"))
}

/// Runs the `upgradeneeded` steps from `old` to [`VERSION`]. Store and index creation is
/// synchronous; the v3 backfill continues asynchronously inside the same versionchange
/// transaction, which aborts (keeping the old version and all data) if it fails.
pub fn upgrade(event: &IdbVersionChangeEvent, max_attempts: u32, log: Log) -> Result<()> {
    let old = event.old_version() as u32;
    let request: IdbOpenDbRequest = event
        .target()
        .and_then(|t| t.dyn_into().ok())
        .ok_or(Error::Storage { operation: "upgrading the schema", detail: "no open request".into() })?;
    let raw_tx: IdbTransaction = request
        .transaction()
        .ok_or(Error::Storage { operation: "upgrading the schema", detail: "no versionchange transaction".into() })?;
    let raw_db: IdbDatabase = raw_tx.db();
    let db = Database::from(raw_db);
    let tx_store = |name: &str| -> Result<ObjectStore> {
        raw_tx.object_store(name).map(ObjectStore::from).map_err(|e| Error::Storage { operation: "upgrading the schema", detail: format!("{e:?}") })
    };
    log.info(|| format!("upgrading database \"{}\" from schema v{old} to v{VERSION}", db.name()));

    if old < 1 {
        create_store(&db, ENTRIES, Some("id"))?;
    }
    if old < 2 {
        create_index(&tx_store(ENTRIES)?, index::BY_USER_DATE, KeyPath::new_array(["userId", "date"]))?;
    }
    if old < 3 {
        let events = create_store(&db, EVENTS, Some("id"))?;
        create_index(&events, index::READY, KeyPath::new_array(["userId", "rdy", "createdAt"]))?;
        create_index(&events, index::RETRY, KeyPath::new_array(["userId", "due"]))?;
        create_index(&events, index::STATE, KeyPath::new_array(["userId", "sk", "createdAt"]))?;
        create_index(&events, index::DONE, KeyPath::new_single("done"))?;
        create_store(&db, META, None)?;
        if old >= 1 {
            let (entries, events) = (tx_store(ENTRIES)?, events);
            wasm_bindgen_futures::spawn_local(async move {
                match backfill(&entries, &events, max_attempts, log).await {
                    Ok((queued, skipped)) => log.info(|| format!("schema v3: queued {queued} existing entries for upload ({skipped} unreadable entries left as they are)")),
                    Err(e) => {
                        log.warn(|| format!("schema upgrade aborted, the database keeps v{old} and all its data: {e}"));
                        let _ = raw_tx.abort();
                    }
                }
            });
        }
    }
    Ok(())
}

/// Enqueues a pending event for every entry without a backend id.
async fn backfill(entries: &ObjectStore, events: &ObjectStore, max_attempts: u32, log: Log) -> Result<(u32, u32)> {
    let (mut queued, mut skipped) = (0, 0);
    let mut after: Option<JsValue> = None;
    loop {
        let query = match &after {
            Some(key) => Some(Query::from(idb::KeyRange::lower_bound(key, Some(true)).map_err(idb_error("backfilling events"))?)),
            None => None,
        };
        let chunk = entries.get_all(query, Some(BACKFILL_CHUNK)).map_err(idb_error("backfilling events"))?.await.map_err(idb_error("backfilling events"))?;
        let n = chunk.len() as u32;
        for raw in chunk {
            after = Some(js_sys::Reflect::get(&raw, &JsValue::from_str("id")).unwrap_or(JsValue::UNDEFINED));
            match decode_entry(raw) {
                Ok(entry) if entry.backend_id.is_none() => {
                    let event = OutboxEvent::for_entry(new_id(), &entry, 0, max_attempts, entry.created_at);
                    events.add(&encode_event(&event)?, None).map_err(idb_error("backfilling events"))?;
                    queued += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    skipped += 1;
                    log.warn(|| format!("schema v3: an existing entry could not be read and was left as it is: {e}"));
                }
            }
        }
        if n < BACKFILL_CHUNK {
            return Ok((queued, skipped));
        }
    }
}
