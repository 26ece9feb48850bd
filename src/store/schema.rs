//! Schema versions, one upgrade step each. A step never deletes a store, an index's data or a
//! record; an upgrade that fails part-way is aborted, leaving the database at its old version.
//!
//! - v1: `entries` (key path `id`): the app before the outbox.
//! - v2: index `entries.byUserDate` `[userId, date]`.
//! - v3: `events` with its indexes and `meta`; every entry without a `backendId` gets a pending
//!   event, so measurements taken before the outbox existed still sync (seed: "Schema V3").

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbObjectStore, IdbObjectStoreParameters, IdbOpenDbRequest, IdbTransaction, IdbVersionChangeEvent};

use super::idb::{above, add, get_all_in_store, js_error};
use super::records::{decode_entry, encode_event, index, ENTRIES, EVENTS, META};
use crate::domain::event::OutboxEvent;
use crate::domain::{Error, Result};
use crate::platform::{get, new_id, Log};

/// The newest schema this build writes.
pub const VERSION: u32 = 3;

/// Entries read per request while backfilling (bounded memory for large old databases).
const BACKFILL_CHUNK: u32 = 500;
const OP: &str = "upgrading the schema";

fn create_store(db: &IdbDatabase, name: &str, key_path: Option<&str>) -> Result<IdbObjectStore> {
    let params = IdbObjectStoreParameters::new();
    if let Some(k) = key_path {
        params.set_key_path(&JsValue::from_str(k));
    }
    db.create_object_store_with_optional_parameters(name, &params).map_err(js_error(OP))
}

fn create_index(store: &IdbObjectStore, name: &str, key_path: &[&str]) -> Result<()> {
    let made = match key_path {
        [single] => store.create_index_with_str(name, single),
        many => store.create_index_with_str_sequence(name, &many.iter().map(|k| JsValue::from_str(k)).collect::<Array>()),
    };
    made.map(drop).map_err(js_error(OP))
}

/// Runs the `upgradeneeded` steps from the event's old version to [`VERSION`]. Store and index
/// creation is synchronous; the v3 backfill continues asynchronously inside the same
/// versionchange transaction, which aborts (keeping the old version and all data) if it fails.
pub fn upgrade(event: &IdbVersionChangeEvent, max_attempts: u32, log: Log) -> Result<()> {
    let old = event.old_version() as u32;
    let request: IdbOpenDbRequest = event.target().and_then(|t| t.dyn_into().ok()).ok_or(Error::Storage { operation: OP, detail: "no open request".into() })?;
    let tx: IdbTransaction = request.transaction().ok_or(Error::Storage { operation: OP, detail: "no versionchange transaction".into() })?;
    let db = tx.db();
    log.info(|| format!("upgrading database \"{}\" from schema v{old} to v{VERSION}", db.name()));

    if old < 1 {
        create_store(&db, ENTRIES, Some("id"))?;
    }
    let entries = tx.object_store(ENTRIES).map_err(js_error(OP))?;
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
        if old >= 1 {
            wasm_bindgen_futures::spawn_local(async move {
                match backfill(&entries, &events, max_attempts, log).await {
                    Ok((queued, skipped)) => {
                        log.info(|| format!("schema v3: queued {queued} existing entries for upload ({skipped} unreadable records left as they are)"))
                    }
                    Err(e) => {
                        log.warn(|| format!("schema upgrade aborted, the database keeps v{old} and all its data: {e}"));
                        let _ = tx.abort();
                    }
                }
            });
        }
    }
    Ok(())
}

/// Enqueues a pending event for every entry without a backend id.
async fn backfill(entries: &IdbObjectStore, events: &IdbObjectStore, max_attempts: u32, log: Log) -> Result<(u32, u32)> {
    let (mut queued, mut skipped) = (0, 0);
    let mut after: Option<JsValue> = None;
    loop {
        let range = after.as_ref().map(above).transpose()?;
        let chunk = get_all_in_store(entries, range.as_ref(), BACKFILL_CHUNK, OP).await?;
        let n = chunk.len() as u32;
        for raw in chunk {
            after = Some(get(&raw, "id"));
            match decode_entry(&raw) {
                Ok(entry) if entry.backend_id.is_none() => {
                    let event = OutboxEvent::for_entry(new_id(), &entry, 0, max_attempts, entry.created_at);
                    add(events, &encode_event(&event), OP)?;
                    queued += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    skipped += 1;
                    log.warn(|| format!("schema v3: a stored record could not be read as an entry and was left as it is: {e}"));
                }
            }
        }
        if n < BACKFILL_CHUNK {
            return Ok((queued, skipped));
        }
    }
}
