//! Retention: completed events older than `retentionMs` are deleted, in chunks; nothing else
//! ever is (entries never are).

use wasm_bindgen::JsValue;

use super::records::{decode_meta, encode_meta, index, meta_key, EVENTS, META};
use super::Store;
use crate::domain::time::TimeMs;
use crate::domain::Result;
use crate::platform::get;
use crate::platform::idb::{below, error, Mode, Round};

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
            let removed = async {
                let tx = self.db().begin(&[EVENTS, META], Mode::Relaxed, OP).await?;
                tx.run(async {
                    let events = tx.store(EVENTS)?;
                    let done = events.index(index::DONE).map_err(error(OP))?;
                    let mut round = Round::new(OP);
                    let old = round.ask(done.get_all(Some(below(&cutoff)?), Some(CHUNK)))?;
                    round.done().await?;
                    let old = old.values();
                    // (user, removed) pairs: users are few.
                    let mut per_user: Vec<(String, u64)> = Vec::new();
                    for raw in &old {
                        // A record in this index is completed by construction: its id and user suffice.
                        events.delete(get(raw, "id")).map_err(error(OP))?;
                        let user = get(raw, "userId").as_string().unwrap_or_default();
                        match per_user.iter_mut().find(|(u, _)| *u == user) {
                            Some((_, n)) => *n += 1,
                            None => per_user.push((user, 1)),
                        }
                    }
                    let meta = tx.store(META)?;
                    let mut reads = Vec::with_capacity(per_user.len());
                    for (u, _) in &per_user {
                        reads.push(round.ask(meta.get(meta_key(u)))?);
                    }
                    round.done().await?;
                    for ((user, removed), read) in per_user.iter().zip(reads) {
                        let mut m = decode_meta(&read.value());
                        m.record_cleanup(*removed);
                        meta.put(&encode_meta(&m), Some(&meta_key(user))).map_err(error(OP))?;
                    }
                    Ok(old.len() as u64)
                })
                .await
            }
            .await?;
            total += removed;
            if removed < CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}
