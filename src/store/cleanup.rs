//! Retention: completed events older than `retentionMs` are deleted, in chunks; nothing else
//! ever is (entries never are).

use std::collections::BTreeMap;

use wasm_bindgen::JsValue;

use super::records::{decode_meta, encode_meta, index, meta_key, EVENTS, META};
use super::{deadline, Store};
use crate::domain::time::TimeMs;
use crate::domain::Result;
use crate::platform::get;
use crate::platform::idb::{all, below, error, Mode, Request};

/// Completed events deleted per transaction.
const CHUNK: u32 = 500;

impl Store {
    /// Deletes completed events (of every user) completed before `now - retention_ms`; returns
    /// how many.
    pub async fn cleanup(&self, now: TimeMs, retention_ms: u64) -> Result<u64> {
        const OP: &str = "cleaning up completed events";
        let cutoff = JsValue::from_f64(now as f64 - retention_ms as f64);
        let mut total = 0;
        loop {
            let removed = deadline(OP, async {
                let tx = self.db().begin(&[EVENTS, META], Mode::Relaxed, OP).await?;
                let result = async {
                    let events = tx.store(EVENTS)?;
                    let done = events.index(index::DONE).map_err(error(OP))?;
                    let old = all(done.get_all(Some(below(&cutoff)?), Some(CHUNK)), OP).await?;
                    let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
                    for raw in &old {
                        // A record in this index is completed by construction: its id and user suffice.
                        events.delete(get(raw, "id")).map_err(error(OP))?;
                        *per_user.entry(get(raw, "userId").as_string().unwrap_or_default()).or_default() += 1;
                    }
                    let meta = tx.store(META)?;
                    for (user, removed) in &per_user {
                        let key = meta_key(user);
                        let mut m = decode_meta(&Request::of(meta.get(key.clone()), OP)?.await?);
                        m.record_cleanup(*removed);
                        meta.put(&encode_meta(&m), Some(&key)).map_err(error(OP))?;
                    }
                    Ok(old.len() as u64)
                }
                .await;
                tx.finish(result).await
            })
            .await?;
            total += removed;
            if removed < CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}
