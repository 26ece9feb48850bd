//! How entries, events and per-user meta are laid out in IndexedDB, and the index keys.
//!
//! IndexedDB cannot index booleans or mix sort directions in one compound key, and it leaves a
//! record out of an index when a key component is `null`. So each event also stores small derived
//! fields that exist only while they mean something (w3c/IndexedDB#76, #138):
//! - `sk`: the [`StateKey`] number (0 pending ... 4 gave up), for counts and listings per state;
//! - `rdy`: `-priority` while pending, so index `ready` = `[userId, rdy, createdAt]` walks the queue
//!   in priority-desc / createdAt-asc order and holds nothing else;
//! - `due`: `nextAttemptAt` while a retry is scheduled (index `retry` = `[userId, due]`);
//! - `done`: `completedAt` while completed (index `done`, for retention cleanup).

use js_sys::Array;
use wasm_bindgen::JsValue;

use crate::domain::entry::ProgressEntry;
use crate::domain::event::{EventStatus, OutboxEvent, StateKey};
use crate::domain::stats::UserMeta;
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::{from_js, set, to_js};

/// Store of `ProgressEntry` records, key path `id` (schema v1).
pub const ENTRIES: &str = "entries";
/// Store of `OutboxEvent` records, key path `id` (schema v3).
pub const EVENTS: &str = "events";
/// Store of per-user [`UserMeta`], out-of-line keys `user:{userId}` (schema v3).
pub const META: &str = "meta";

/// Index names.
pub mod index {
    /// entries `[userId, date]` (v2).
    pub const BY_USER_DATE: &str = "byUserDate";
    /// events `[userId, rdy, createdAt]`: the pending queue (v3).
    pub const READY: &str = "ready";
    /// events `[userId, due]`: scheduled retries (v3).
    pub const RETRY: &str = "retry";
    /// events `[userId, sk, createdAt]`: events per state (v3).
    pub const STATE: &str = "state";
    /// events `done`: completion time of completed events (v3).
    pub const DONE: &str = "done";
}

fn codec_error(what: &'static str, e: serde_wasm_bindgen::Error) -> Error {
    Error::Storage { operation: what, detail: e.to_string() }
}

/// The stored form of an event: its fields plus the derived index fields.
pub fn encode_event(e: &OutboxEvent) -> Result<JsValue> {
    let v = to_js(e).map_err(|err| codec_error("encoding an event", err))?;
    let key = e.state_key();
    let num_or_null = |n: Option<f64>| n.map(JsValue::from_f64).unwrap_or(JsValue::NULL);
    set(&v, "sk", &JsValue::from_f64(key as u8 as f64));
    set(&v, "rdy", &num_or_null((e.status == EventStatus::Pending).then(|| -(e.priority as f64))));
    set(&v, "due", &num_or_null(if key == StateKey::Retrying { e.next_attempt_at.map(|t| t as f64) } else { None }));
    set(&v, "done", &num_or_null(if key == StateKey::Completed { e.completed_at.map(|t| t as f64) } else { None }));
    Ok(v)
}

/// Reads a stored event.
pub fn decode_event(v: JsValue) -> Result<OutboxEvent> {
    from_js(v).map_err(|err| codec_error("reading an event", err))
}

/// The stored form of an entry.
pub fn encode_entry(e: &ProgressEntry) -> Result<JsValue> {
    to_js(e).map_err(|err| codec_error("encoding an entry", err))
}

/// Reads a stored entry.
pub fn decode_entry(v: JsValue) -> Result<ProgressEntry> {
    from_js(v).map_err(|err| codec_error("reading an entry", err))
}

/// Reads a user's meta record (absent = fresh).
pub fn decode_meta(v: JsValue) -> UserMeta {
    if v.is_undefined() || v.is_null() {
        return UserMeta::default();
    }
    from_js(v).unwrap_or_default()
}

/// The stored form of a user's meta record.
pub fn encode_meta(m: &UserMeta) -> Result<JsValue> {
    to_js(m).map_err(|err| codec_error("encoding sync stats", err))
}

/// Key of a user's meta record.
pub fn meta_key(user_id: &str) -> JsValue {
    JsValue::from_str(&format!("user:{user_id}"))
}

/// The uploader's heartbeat for a user: who uploads, and when it last showed life. Without
/// Web Locks it is also the lease: valid while fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The uploading `Outbox` instance.
    pub owner: String,
    /// Its last sign of life.
    pub at: TimeMs,
}

/// Key of a user's heartbeat record.
pub fn beat_key(user_id: &str) -> JsValue {
    JsValue::from_str(&format!("leader:{user_id}"))
}

/// The stored form of a heartbeat.
pub fn encode_beat(b: &Beat) -> JsValue {
    let v: JsValue = js_sys::Object::new().into();
    set(&v, "owner", &JsValue::from_str(&b.owner));
    set(&v, "beatAt", &JsValue::from_f64(b.at as f64));
    v
}

/// Reads a heartbeat (absent or malformed = none).
pub fn decode_beat(v: &JsValue) -> Option<Beat> {
    let owner = crate::platform::get(v, "owner").as_string()?;
    let at = crate::platform::get(v, "beatAt").as_f64()? as TimeMs;
    Some(Beat { owner, at })
}

/// `[a, b]` as an IndexedDB key.
pub fn key2(a: &JsValue, b: f64) -> JsValue {
    Array::of2(a, &JsValue::from_f64(b)).into()
}

/// `[a, b, c]` as an IndexedDB key.
pub fn key3(a: &JsValue, b: f64, c: f64) -> JsValue {
    Array::of3(a, &JsValue::from_f64(b), &JsValue::from_f64(c)).into()
}
