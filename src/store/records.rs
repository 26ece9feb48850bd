//! How entries, events and per-user records are laid out in IndexedDB, and the index keys.
//!
//! Records are written from `#[derive(Serialize)]` types through serde-wasm-bindgen, and read
//! back field by field ([`Reader`]): `serde_wasm_bindgen::from_value` links its deserializer's
//! float formatting (about 17 KB of wasm, measured: README "Size"), and reading by field lets a
//! record written by an older version fill in what it lacks, while one that cannot be read says
//! which field is wrong (it is then quarantined, see [`super::quarantine`]).
//!
//! IndexedDB cannot index booleans or mix sort directions in one compound key, and leaves a
//! record out of an index when a key component is `null` or missing. So each stored event also
//! carries derived fields that exist only while they mean something (w3c/IndexedDB#76, #138):
//! - `sk`: the [`StateKey`] number, for counts and listings per state (index `state`);
//! - `rdy`: `-priority` while claimable, so index `ready` = `[userId, rdy, createdAt]` walks the
//!   queue in priority-desc / createdAt-asc order and holds nothing else;
//! - `due`: `nextAttemptAt` while a retry is scheduled (index `retry` = `[userId, due]`);
//! - `done`: `completedAt` while completed (index `done`, for retention cleanup).

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::domain::entry::ProgressEntry;
use crate::domain::event::{EventStatus, Metadata, Operation, OutboxEvent, StateKey};
use crate::domain::lease::Beat;
use crate::domain::metric::Metric;
use crate::domain::retry::{usable_backend_id, DEFAULT_MAX_ATTEMPTS};
use crate::domain::stats::UserMeta;
use crate::domain::time::TimeMs;
use crate::platform::get;

/// Store of `ProgressEntry` records, key path `id` (schema v1).
pub const ENTRIES: &str = "entries";
/// Store of `OutboxEvent` records, key path `id` (schema v3).
pub const EVENTS: &str = "events";
/// Store of per-user records, out-of-line keys `user:{id}` (stats) and `leader:{id}` (uploader).
pub const META: &str = "meta";
/// Store of deleted entries whose delete the server has not acknowledged yet, key path `id` (v4).
pub const TOMBSTONES: &str = "tombstones";
/// Store of records that could not be read, kept aside, out-of-line keys `{store}:{id}` (v4).
pub const QUARANTINE: &str = "quarantine";

/// Index names.
pub mod index {
    /// entries `[userId, date]` (v2).
    pub const BY_USER_DATE: &str = "byUserDate";
    /// entries `[userId, type, date]` (v4).
    pub const BY_USER_METRIC_DATE: &str = "byUserMetricDate";
    /// events `[userId, rdy, createdAt]`: the claimable queue (v3).
    pub const READY: &str = "ready";
    /// events `[userId, due]`: scheduled retries (v3).
    pub const RETRY: &str = "retry";
    /// events `[userId, sk, createdAt]`: events per state (v3).
    pub const STATE: &str = "state";
    /// events `done`: completion time of completed events (v3).
    pub const DONE: &str = "done";
    /// events `[entityId, seq]`: each entry's queue (v4).
    pub const BY_ENTITY: &str = "byEntity";
    /// quarantine `userId` (v4).
    pub const BY_USER: &str = "byUser";
}

/// The serializer for stored records: `None` becomes `null`, as the API objects show it.
fn to_js<T: Serialize>(value: &T) -> JsValue {
    // Serializing these plain structs cannot fail (no maps, no out-of-range integers).
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true)).unwrap_or(JsValue::UNDEFINED)
}

fn ms(t: Option<TimeMs>) -> Option<f64> {
    t.map(|t| t as f64)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryRecord<'a> {
    id: &'a str,
    user_id: &'a str,
    #[serde(rename = "type")]
    metric: &'static str,
    quantity: f64,
    unit: &'static str,
    date: f64,
    backend_id: Option<&'a str>,
    created_at: f64,
    updated_at: f64,
    rev: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<f64>,
}

/// When a stored record was deleted (a tombstone's `deletedAt`; `None` for an entry).
pub fn deleted_at(raw: &JsValue) -> Option<TimeMs> {
    get(raw, "deletedAt").as_f64().map(|t| t as TimeMs)
}

/// A stored entry or tombstone `raw` given backend id `id`, in its stored form (a tombstone stays
/// one); `None` when it cannot be read.
pub fn with_backend_id(raw: &JsValue, id: &str) -> Option<JsValue> {
    let mut entry = decode_entry(raw).ok()?;
    entry.backend_id = Some(id.to_owned());
    Some(encode_entry(&entry, deleted_at(raw)))
}

/// The stored form of an entry (`deleted_at`: as a tombstone).
pub fn encode_entry(e: &ProgressEntry, deleted_at: Option<TimeMs>) -> JsValue {
    to_js(&EntryRecord {
        id: &e.id,
        user_id: &e.user_id,
        metric: e.metric.name(),
        quantity: e.quantity,
        unit: e.unit(),
        date: e.date as f64,
        backend_id: e.backend_id.as_deref(),
        created_at: e.created_at as f64,
        updated_at: e.updated_at as f64,
        rev: e.rev,
        deleted_at: ms(deleted_at),
    })
}

#[derive(Serialize)]
struct MetadataRecord {
    #[serde(rename = "type")]
    metric: &'static str,
    quantity: f64,
    unit: &'static str,
    date: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord<'a> {
    id: &'a str,
    event_type: &'static str,
    operation: &'static str,
    entity_id: &'a str,
    user_id: &'a str,
    status: &'static str,
    metadata: MetadataRecord,
    is_new_record: bool,
    attempt_count: u32,
    request_count: u32,
    max_attempts: u32,
    priority: i32,
    created_at: f64,
    last_attempt_at: Option<f64>,
    next_attempt_at: Option<f64>,
    completed_at: Option<f64>,
    error_message: Option<&'a str>,
    seq: u32,
    waiting: bool,
    blocks: bool,
    claims: u32,
    claimed_by: Option<&'a str>,
    tries: u32,
    wait_ms: Option<f64>,
    refused: bool,
    maybe_stored: bool,
    // Index fields (module docs).
    sk: u8,
    rdy: Option<f64>,
    due: Option<f64>,
    done: Option<f64>,
}

/// The metadata object of an event, as stored and as the API shows it.
pub fn metadata_fields(m: &Metadata) -> (&'static str, f64, &'static str, f64) {
    (m.metric.name(), m.quantity, m.metric.unit(), m.date as f64)
}

/// The stored form of an event: its fields, its bookkeeping, and the derived index fields.
pub fn encode_event(e: &OutboxEvent) -> JsValue {
    let key = e.state_key();
    let (metric, quantity, unit, date) = metadata_fields(&e.metadata);
    to_js(&EventRecord {
        id: &e.id,
        event_type: "progressEntry",
        operation: e.operation.as_str(),
        entity_id: &e.entity_id,
        user_id: &e.user_id,
        status: e.status.as_str(),
        metadata: MetadataRecord { metric, quantity, unit, date },
        is_new_record: e.is_new_record,
        attempt_count: e.attempt_count,
        request_count: e.request_count,
        max_attempts: e.max_attempts,
        priority: e.priority,
        created_at: e.created_at as f64,
        last_attempt_at: ms(e.last_attempt_at),
        next_attempt_at: ms(e.next_attempt_at),
        completed_at: ms(e.completed_at),
        error_message: e.error_message.as_deref(),
        seq: e.seq,
        waiting: e.waiting,
        blocks: e.blocks,
        claims: e.claims,
        claimed_by: e.claimed_by.as_deref(),
        tries: e.tries,
        wait_ms: e.wait_ms.map(|w| w as f64),
        refused: e.refused,
        maybe_stored: e.maybe_stored,
        sk: key as u8,
        rdy: (key == StateKey::Pending).then(|| -(e.priority as f64)),
        due: if key == StateKey::Retrying { ms(e.next_attempt_at) } else { None },
        done: if key == StateKey::Completed { ms(e.completed_at) } else { None },
    })
}

/// Reads fields of a stored record, remembering the first one that is missing or mistyped.
pub struct Reader<'a> {
    value: &'a JsValue,
    bad: Option<&'static str>,
}

impl<'a> Reader<'a> {
    /// Starts reading `value`.
    pub fn new(value: &'a JsValue) -> Self {
        Reader { value, bad: None }
    }

    fn fail<T: Default>(&mut self, key: &'static str) -> T {
        self.bad.get_or_insert(key);
        T::default()
    }

    fn field(&self, key: &str) -> JsValue {
        get(self.value, key)
    }

    /// A required string.
    pub fn str(&mut self, key: &'static str) -> String {
        match self.field(key).as_string() {
            Some(s) if !s.is_empty() => s,
            _ => self.fail(key),
        }
    }

    /// An optional string (`null`/missing: `None`; anything else not a string: bad).
    pub fn opt_str(&mut self, key: &'static str) -> Option<String> {
        let v = self.field(key);
        if v.is_null() || v.is_undefined() {
            return None;
        }
        match v.as_string() {
            Some(s) => Some(s),
            None => self.fail(key),
        }
    }

    /// A required finite number.
    pub fn num(&mut self, key: &'static str) -> f64 {
        match self.field(key).as_f64() {
            Some(n) if n.is_finite() => n,
            _ => self.fail(key),
        }
    }

    /// A finite number, or `default` when missing (a field an older version did not write).
    pub fn num_or(&mut self, key: &'static str, default: f64) -> f64 {
        let v = self.field(key);
        if v.is_null() || v.is_undefined() {
            return default;
        }
        match v.as_f64() {
            Some(n) if n.is_finite() => n,
            _ => self.fail(key),
        }
    }

    /// A count: a non-negative integer, or `default` when missing.
    pub fn count_or(&mut self, key: &'static str, default: u32) -> u32 {
        let n = self.num_or(key, default as f64);
        if n < 0.0 || n.fract() != 0.0 || n > u32::MAX as f64 {
            return self.fail(key);
        }
        n as u32
    }

    /// A required time (ms).
    pub fn time(&mut self, key: &'static str) -> TimeMs {
        self.num(key) as TimeMs
    }

    /// An optional time (ms).
    pub fn opt_time(&mut self, key: &'static str) -> Option<TimeMs> {
        let v = self.field(key);
        if v.is_null() || v.is_undefined() {
            return None;
        }
        match v.as_f64() {
            Some(n) if n.is_finite() => Some(n as TimeMs),
            _ => self.fail(key),
        }
    }

    /// A boolean, or `default` when missing.
    pub fn bool_or(&mut self, key: &'static str, default: bool) -> bool {
        let v = self.field(key);
        if v.is_null() || v.is_undefined() {
            return default;
        }
        match v.as_bool() {
            Some(b) => b,
            None => self.fail(key),
        }
    }

    /// A metric name.
    pub fn metric(&mut self, key: &'static str) -> Metric {
        match self.field(key).as_string().as_deref().and_then(Metric::parse) {
            Some(m) => m,
            None => self.fail(key),
        }
    }

    /// The value, or which field was wrong.
    pub fn finish<T>(self, value: T) -> Result<T, String> {
        match self.bad {
            None => Ok(value),
            Some(key) => Err(format!("field \"{key}\" is missing or has the wrong type")),
        }
    }
}

/// A stored entry or tombstone as a claim sees it (decoded once).
pub enum Looked {
    /// None is stored.
    Missing,
    /// Readable, with its backend id if it has a usable one (never `..`, which would address the
    /// endpoint's parent).
    Readable(Option<String>),
    /// Another version of the app wrote it in a shape this one cannot read (`why`); the backend id
    /// it holds is read all the same, if usable.
    Unreadable {
        /// Its `backendId`, if a usable string.
        backend_id: Option<String>,
        /// Why it cannot be read.
        why: String,
    },
}

impl Looked {
    /// Looks at a stored entry or tombstone (`undefined` when there is none).
    pub fn at(v: &JsValue) -> Looked {
        if v.is_undefined() {
            return Looked::Missing;
        }
        match decode_entry(v) {
            Ok(entry) => Looked::Readable(entry.backend_id.and_then(usable_backend_id)),
            Err(why) => Looked::Unreadable { backend_id: get(v, "backendId").as_string().and_then(usable_backend_id), why },
        }
    }

    /// The backend id it holds, readable or not.
    pub fn backend_id(self) -> Option<String> {
        match self {
            Looked::Missing => None,
            Looked::Readable(id) | Looked::Unreadable { backend_id: id, .. } => id,
        }
    }
}

/// Reads a stored entry (or tombstone). Fields an older version did not write get their
/// defaults; a wrong or missing required field makes it unreadable (`Err` says which).
pub fn decode_entry(v: &JsValue) -> Result<ProgressEntry, String> {
    if !v.is_object() {
        return Err("not an object".into());
    }
    let mut r = Reader::new(v);
    let metric = r.metric("type");
    let created_at = r.time("createdAt");
    let unit = r.opt_str("unit");
    let entry = ProgressEntry {
        id: r.str("id"),
        user_id: r.str("userId"),
        metric,
        quantity: r.num("quantity"),
        date: r.time("date"),
        backend_id: r.opt_str("backendId").filter(|b| !b.is_empty()),
        created_at,
        updated_at: r.num_or("updatedAt", created_at as f64) as TimeMs,
        rev: r.count_or("rev", 1),
    };
    if unit.is_some_and(|u| u != metric.unit()) {
        return Err(format!("field \"unit\" is not the unit of \"{}\"", metric.name()));
    }
    r.finish(entry)
}

/// Reads a stored event. Events written by schema v3 (no operation, no sequence) read as the
/// creates they were.
pub fn decode_event(v: &JsValue) -> Result<OutboxEvent, String> {
    if !v.is_object() {
        return Err("not an object".into());
    }
    let mut r = Reader::new(v);
    let status = match r.field("status").as_string().as_deref().and_then(EventStatus::parse) {
        Some(s) => s,
        None => r.fail("status"),
    };
    let operation = match r.field("operation") {
        o if o.is_undefined() || o.is_null() => Operation::Create,
        o => match o.as_string().as_deref().and_then(Operation::parse) {
            Some(op) => op,
            None => r.fail("operation"),
        },
    };
    if r.field("eventType").as_string().is_some_and(|t| t != "progressEntry") {
        r.fail::<()>("eventType");
    }
    let meta = r.field("metadata");
    let mut m = Reader::new(&meta);
    let metadata = Metadata { metric: m.metric("type"), quantity: m.num("quantity"), date: m.time("date") };
    if let Some(bad) = m.bad {
        r.bad.get_or_insert(if bad == "type" {
            "metadata.type"
        } else if bad == "quantity" {
            "metadata.quantity"
        } else {
            "metadata.date"
        });
    }
    let attempt_count = r.count_or("attemptCount", 0);
    // Schema v3 counted claims as attempts: they were requests.
    let request_count = r.count_or("requestCount", attempt_count);
    let event = OutboxEvent {
        id: r.str("id"),
        operation,
        entity_id: r.str("entityId"),
        user_id: r.str("userId"),
        status,
        metadata,
        is_new_record: r.bool_or("isNewRecord", true),
        attempt_count,
        request_count,
        max_attempts: r.count_or("maxAttempts", DEFAULT_MAX_ATTEMPTS).max(1),
        priority: r.num_or("priority", 0.0) as i32,
        created_at: r.time("createdAt"),
        last_attempt_at: r.opt_time("lastAttemptAt"),
        next_attempt_at: r.opt_time("nextAttemptAt"),
        completed_at: r.opt_time("completedAt"),
        error_message: r.opt_str("errorMessage"),
        seq: r.count_or("seq", 1),
        waiting: r.bool_or("waiting", false),
        blocks: r.bool_or("blocks", false),
        claims: r.count_or("claims", attempt_count),
        claimed_by: r.opt_str("claimedBy"),
        tries: r.count_or("tries", attempt_count),
        wait_ms: r.opt_time("waitMs").map(|w| w.max(0) as u64),
        refused: r.bool_or("refused", false),
        // Written before the field existed: a second request may have been stored.
        maybe_stored: r.bool_or("maybeStored", request_count > 1),
    };
    let event = r.finish(event)?;
    // Its id is its `Idempotency-Key` header: one no request can carry (another app wrote it)
    // would fail every upload of it before anything is sent.
    if let Some(why) = crate::domain::config::header_value_problem(&event.id) {
        return Err(format!("its id cannot be sent as an Idempotency-Key header ({why})"));
    }
    Ok(event)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaRecord<'a> {
    completed: f64,
    last_sync_at: Option<f64>,
    last_error: Option<&'a str>,
    last_error_at: Option<f64>,
    latencies: Vec<f64>,
    failed_in_a_row: u32,
}

/// The stored form of a user's stats record.
pub fn encode_meta(m: &UserMeta) -> JsValue {
    to_js(&MetaRecord {
        completed: m.completed as f64,
        last_sync_at: ms(m.last_sync_at),
        last_error: m.last_error.as_deref(),
        last_error_at: ms(m.last_error_at),
        latencies: m.latencies.iter().map(|&l| l as f64).collect(),
        failed_in_a_row: m.failed_in_a_row,
    })
}

/// Reads a user's stats record (absent or unreadable: fresh; it is only statistics).
pub fn decode_meta(v: &JsValue) -> UserMeta {
    if !v.is_object() {
        return UserMeta::default();
    }
    let mut r = Reader::new(v);
    let latencies = get(v, "latencies").dyn_into_array().iter().filter_map(|l| l.as_f64()).map(|l| l as i64).collect();
    UserMeta {
        completed: r.num_or("completed", 0.0).max(0.0) as u64,
        last_sync_at: r.opt_time("lastSyncAt"),
        last_error: r.opt_str("lastError"),
        last_error_at: r.opt_time("lastErrorAt"),
        latencies,
        failed_in_a_row: r.count_or("failedInARow", 0),
    }
}

trait AsArray {
    fn dyn_into_array(self) -> js_sys::Array;
}

impl AsArray for JsValue {
    fn dyn_into_array(self) -> js_sys::Array {
        wasm_bindgen::JsCast::dyn_into::<js_sys::Array>(self).unwrap_or_default()
    }
}

/// Key of a user's stats record.
pub fn meta_key(user_id: &str) -> JsValue {
    JsValue::from_str(&["user:", user_id].concat())
}

/// Key of a user's uploader record.
pub fn leader_key(user_id: &str) -> JsValue {
    JsValue::from_str(&["leader:", user_id].concat())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaderRecord<'a> {
    owner: &'a str,
    gen: f64,
    beat: f64,
    /// Wall time of the last beat: for people reading the database, never for decisions.
    beat_at: f64,
}

/// The stored form of the uploader record.
pub fn encode_leader(b: &Beat, now: TimeMs) -> JsValue {
    to_js(&LeaderRecord { owner: &b.owner, gen: b.gen as f64, beat: b.beat as f64, beat_at: now as f64 })
}

/// Reads the uploader record (absent or malformed: none; an owner of `""`: released).
pub fn decode_leader(v: &JsValue) -> Option<Beat> {
    let owner = get(v, "owner").as_string()?;
    let gen = get(v, "gen").as_f64().unwrap_or(0.0).max(0.0) as u64;
    let beat = get(v, "beat").as_f64().unwrap_or(0.0).max(0.0) as u64;
    Some(Beat { owner, gen, beat })
}
