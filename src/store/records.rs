//! How entries, events and per-user meta are laid out in IndexedDB (and shown to JS), and the
//! index keys.
//!
//! IndexedDB cannot index booleans or mix sort directions in one compound key, and it leaves a
//! record out of an index when a key component is `null`. So each stored event also carries
//! small derived fields that exist only while they mean something (w3c/IndexedDB#76, #138):
//! - `sk`: the [`StateKey`] number (0 pending ... 4 gave up), for counts and listings per state;
//! - `rdy`: `-priority` while pending, so index `ready` = `[userId, rdy, createdAt]` walks the queue
//!   in priority-desc / createdAt-asc order and holds nothing else;
//! - `due`: `nextAttemptAt` while a retry is scheduled (index `retry` = `[userId, due]`);
//! - `done`: `completedAt` while completed (index `done`, for retention cleanup).
//!
//! Objects are built by small JS functions taking every field at once (one JS call per record,
//! not one per field) and read back field by field.

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::domain::entry::{MetricType, ProgressEntry};
use crate::domain::event::{EventMetadata, EventStatus, EventType, OutboxEvent, StateKey};
use crate::domain::stats::{Stats, UserMeta};
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::get;

/// Store of `ProgressEntry` records, key path `id` (schema v1).
pub const ENTRIES: &str = "entries";
/// Store of `OutboxEvent` records, key path `id` (schema v3).
pub const EVENTS: &str = "events";
/// Store of per-user records, out-of-line keys `user:{id}` (meta) and `leader:{id}` (heartbeat).
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

#[wasm_bindgen(inline_js = r#"
export function entryObj(id, userId, type, quantity, unit, date, backendId, createdAt, updatedAt) {
  return { id, userId, type, quantity, unit, date, backendId: backendId ?? null, createdAt, updatedAt };
}
export function eventObj(id, eventType, entityId, userId, status, type, quantity, date, isNewRecord, attemptCount,
                         maxAttempts, priority, createdAt, lastAttemptAt, nextAttemptAt, completedAt, errorMessage,
                         stored, sk, rdy, due, done) {
  const o = { id, eventType, entityId, userId, status, metadata: { type, quantity, date }, isNewRecord, attemptCount,
              maxAttempts, priority, createdAt, lastAttemptAt: lastAttemptAt ?? null, nextAttemptAt: nextAttemptAt ?? null,
              completedAt: completedAt ?? null, errorMessage: errorMessage ?? null };
  if (stored) { o.sk = sk; o.rdy = rdy ?? null; o.due = due ?? null; o.done = done ?? null; }
  else o.gaveUp = status === "failed" && o.nextAttemptAt === null;
  return o;
}
export function metaObj(completed, lastSyncAt, lastError, lastErrorAt, latencies) {
  return { completed, lastSyncAt: lastSyncAt ?? null, lastError: lastError ?? null, lastErrorAt: lastErrorAt ?? null, latencies: Array.from(latencies) };
}
export function statsObj(userId, pending, processing, failed, completed, gaveUp, retrying, lastSyncAt, lastError, lastErrorAt, oldestPendingAt, syncLatencyMs) {
  return { userId, pending, processing, failed, completed, gaveUp, retrying, lastSyncAt: lastSyncAt ?? null, lastError: lastError ?? null,
           lastErrorAt: lastErrorAt ?? null, oldestPendingAt: oldestPendingAt ?? null, syncLatencyMs: syncLatencyMs ?? null };
}
export function beatObj(owner, beatAt) { return { owner, beatAt }; }
"#)]
extern "C" {
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = entryObj)]
    fn entry_obj(
        id: &str,
        user_id: &str,
        metric: &str,
        quantity: f64,
        unit: &str,
        date: f64,
        backend_id: Option<&str>,
        created_at: f64,
        updated_at: f64,
    ) -> JsValue;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = eventObj)]
    fn event_obj(
        id: &str,
        event_type: &str,
        entity_id: &str,
        user_id: &str,
        status: &str,
        metric: &str,
        quantity: f64,
        date: f64,
        is_new_record: bool,
        attempt_count: u32,
        max_attempts: u32,
        priority: i32,
        created_at: f64,
        last_attempt_at: Option<f64>,
        next_attempt_at: Option<f64>,
        completed_at: Option<f64>,
        error_message: Option<&str>,
        stored: bool,
        sk: u8,
        rdy: Option<f64>,
        due: Option<f64>,
        done: Option<f64>,
    ) -> JsValue;
    #[wasm_bindgen(js_name = metaObj)]
    fn meta_obj(completed: f64, last_sync_at: Option<f64>, last_error: Option<&str>, last_error_at: Option<f64>, latencies: &[f64]) -> JsValue;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = statsObj)]
    fn stats_obj(
        user_id: &str,
        pending: f64,
        processing: f64,
        failed: f64,
        completed: f64,
        gave_up: f64,
        retrying: f64,
        last_sync_at: Option<f64>,
        last_error: Option<&str>,
        last_error_at: Option<f64>,
        oldest_pending_at: Option<f64>,
        sync_latency_ms: Option<f64>,
    ) -> JsValue;
    #[wasm_bindgen(js_name = beatObj)]
    fn beat_obj(owner: &str, beat_at: f64) -> JsValue;
}

fn ms(t: Option<TimeMs>) -> Option<f64> {
    t.map(|t| t as f64)
}

/// Reads fields of a stored record, remembering the first one that is missing or mistyped.
struct Reader<'a> {
    value: &'a JsValue,
    what: &'static str,
    bad: Option<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(value: &'a JsValue, what: &'static str) -> Self {
        Reader { value, what, bad: None }
    }
    fn fail<T: Default>(&mut self, key: &'static str) -> T {
        self.bad.get_or_insert(key);
        T::default()
    }
    fn str(&mut self, key: &'static str) -> String {
        match get(self.value, key).as_string() {
            Some(s) => s,
            None => self.fail(key),
        }
    }
    fn opt_str(&mut self, key: &'static str) -> Option<String> {
        get(self.value, key).as_string()
    }
    fn num(&mut self, key: &'static str) -> f64 {
        match get(self.value, key).as_f64() {
            Some(n) if n.is_finite() => n,
            _ => self.fail(key),
        }
    }
    fn time(&mut self, key: &'static str) -> TimeMs {
        self.num(key) as TimeMs
    }
    fn opt_time(&mut self, key: &'static str) -> Option<TimeMs> {
        get(self.value, key).as_f64().filter(|n| n.is_finite()).map(|n| n as TimeMs)
    }
    fn finish<T>(self, value: T) -> Result<T> {
        match self.bad {
            None => Ok(value),
            Some(key) => Err(Error::Storage { operation: self.what, detail: format!("field \"{key}\" is missing or has the wrong type") }),
        }
    }
}

fn metric(s: &str) -> Option<MetricType> {
    (s == MetricType::Weight.as_str()).then_some(MetricType::Weight)
}

/// The stored form of an entry (also what JS gets).
pub fn encode_entry(e: &ProgressEntry) -> JsValue {
    entry_obj(&e.id, &e.user_id, e.metric.as_str(), e.quantity, &e.unit, e.date as f64, e.backend_id.as_deref(), e.created_at as f64, e.updated_at as f64)
}

/// Reads a stored entry.
pub fn decode_entry(v: &JsValue) -> Result<ProgressEntry> {
    let mut r = Reader::new(v, "reading an entry");
    let metric_name = r.str("type");
    let entry = ProgressEntry {
        id: r.str("id"),
        user_id: r.str("userId"),
        metric: metric(&metric_name).unwrap_or_else(|| r.fail("type")),
        quantity: r.num("quantity"),
        unit: r.str("unit"),
        date: r.time("date"),
        backend_id: r.opt_str("backendId"),
        created_at: r.time("createdAt"),
        updated_at: r.time("updatedAt"),
    };
    r.finish(entry)
}

fn event_value(e: &OutboxEvent, stored: bool) -> JsValue {
    let key = e.state_key();
    let rdy = (e.status == EventStatus::Pending).then(|| -(e.priority as f64));
    let due = if key == StateKey::Retrying { ms(e.next_attempt_at) } else { None };
    let done = if key == StateKey::Completed { ms(e.completed_at) } else { None };
    event_obj(
        &e.id,
        "progressEntry",
        &e.entity_id,
        &e.user_id,
        e.status.as_str(),
        e.metadata.metric.as_str(),
        e.metadata.quantity,
        e.metadata.date as f64,
        e.is_new_record,
        e.attempt_count,
        e.max_attempts,
        e.priority,
        e.created_at as f64,
        ms(e.last_attempt_at),
        ms(e.next_attempt_at),
        ms(e.completed_at),
        e.error_message.as_deref(),
        stored,
        key as u8,
        rdy,
        due,
        done,
    )
}

/// The stored form of an event: its fields plus the derived index fields.
pub fn encode_event(e: &OutboxEvent) -> JsValue {
    event_value(e, true)
}

/// An event as the JS API shows it: its fields plus `gaveUp`, no index fields.
pub fn event_for_js(e: &OutboxEvent) -> JsValue {
    event_value(e, false)
}

/// Reads a stored event.
pub fn decode_event(v: &JsValue) -> Result<OutboxEvent> {
    let mut r = Reader::new(v, "reading an event");
    let status = r.str("status");
    let status = EventStatus::parse(&status).unwrap_or_else(|| r.fail("status"));
    let meta = get(v, "metadata");
    let mut m = Reader::new(&meta, "reading an event");
    let metric_name = m.str("type");
    let metadata = EventMetadata { metric: metric(&metric_name).unwrap_or_else(|| m.fail("metadata.type")), quantity: m.num("quantity"), date: m.time("date") };
    if let Some(bad) = m.bad {
        r.bad.get_or_insert(bad);
    }
    let event = OutboxEvent {
        id: r.str("id"),
        event_type: EventType::ProgressEntry,
        entity_id: r.str("entityId"),
        user_id: r.str("userId"),
        status,
        metadata,
        is_new_record: get(v, "isNewRecord").as_bool().unwrap_or(true),
        attempt_count: r.num("attemptCount") as u32,
        max_attempts: r.num("maxAttempts") as u32,
        priority: r.num("priority") as i32,
        created_at: r.time("createdAt"),
        last_attempt_at: r.opt_time("lastAttemptAt"),
        next_attempt_at: r.opt_time("nextAttemptAt"),
        completed_at: r.opt_time("completedAt"),
        error_message: r.opt_str("errorMessage"),
    };
    r.finish(event)
}

/// The stored form of a user's meta record.
pub fn encode_meta(m: &UserMeta) -> JsValue {
    let latencies: Vec<f64> = m.latencies.iter().map(|&l| l as f64).collect();
    meta_obj(m.completed as f64, ms(m.last_sync_at), m.last_error.as_deref(), ms(m.last_error_at), &latencies)
}

/// Reads a user's meta record (absent or unreadable: fresh).
pub fn decode_meta(v: &JsValue) -> UserMeta {
    if v.is_undefined() || v.is_null() {
        return UserMeta::default();
    }
    let mut r = Reader::new(v, "reading sync stats");
    let latencies = Array::from(&get(v, "latencies")).iter().filter_map(|l| l.as_f64()).map(|l| l as i64).collect();
    UserMeta {
        completed: r.num("completed").max(0.0) as u64,
        last_sync_at: r.opt_time("lastSyncAt"),
        last_error: r.opt_str("lastError"),
        last_error_at: r.opt_time("lastErrorAt"),
        latencies,
    }
}

/// Stats as the JS API shows them.
pub fn stats_for_js(s: &Stats) -> JsValue {
    stats_obj(
        &s.user_id,
        s.pending as f64,
        s.processing as f64,
        s.failed as f64,
        s.completed as f64,
        s.gave_up as f64,
        s.retrying as f64,
        ms(s.last_sync_at),
        s.last_error.as_deref(),
        ms(s.last_error_at),
        ms(s.oldest_pending_at),
        s.sync_latency_ms.map(|l| l as f64),
    )
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
    beat_obj(&b.owner, b.at as f64)
}

/// Reads a heartbeat (absent or malformed: none).
pub fn decode_beat(v: &JsValue) -> Option<Beat> {
    let owner = get(v, "owner").as_string()?;
    let at = get(v, "beatAt").as_f64()? as TimeMs;
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
