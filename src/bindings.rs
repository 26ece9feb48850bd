//! The JS surface (CONTRACT §1): one exported class whose methods only translate arguments,
//! call into [`crate::outbox`], and translate results (through `#[derive(Serialize)]` views)
//! and errors (real `TypeError`/`RangeError`/`Error` with a `code`) back.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::domain::arg::Arg;
use crate::domain::config::{token_problem, Config, JS_OPTIONS, OPTION_NAMES};
use crate::domain::entry::{ProgressEntry, SaveArgs, SaveMethod, UpdateArgs};
use crate::domain::error::{Error, JsClass};
use crate::domain::event::OutboxEvent;
use crate::domain::query::check_keys;
use crate::domain::stats::{PassReport, Stats};
use crate::outbox::OutboxCore;
use crate::platform::token::TokenSource;
use crate::platform::{as_function, get, keys, read, resolve_url, set, to_arg};
use crate::store::quarantine::Quarantined;
use crate::store::records::metadata_fields;
use crate::sync::transport::Transport;

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT: &'static str = include_str!("../types/progress-outbox.d.ts");

/// A transactional outbox for health measurements. Create one with `await Outbox.open({...})`.
///
/// ```js
/// const outbox = await Outbox.open({ endpoint: "/api/v1/progress", token: (userId) => session.tokenFor(userId) });
/// outbox.start("u1");
/// await outbox.saveWeight(72.5);
/// ```
#[wasm_bindgen(skip_typescript)]
pub struct Outbox {
    core: Rc<OutboxCore>,
}

/// Our error as a real JS `TypeError`/`RangeError`/`Error` with a stable `code`.
fn js_error(e: Error) -> JsValue {
    let message = e.to_string();
    let error: JsValue = match e.js_class() {
        JsClass::TypeError => js_sys::TypeError::new(&message).into(),
        JsClass::RangeError => js_sys::RangeError::new(&message).into(),
        JsClass::Error => js_sys::Error::new(&message).into(),
    };
    set(&error, "code", &JsValue::from_str(e.code()));
    error
}

fn to_js<T: Serialize>(value: &T) -> JsValue {
    // Plain structs of strings, numbers, booleans and nulls: serializing cannot fail.
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true)).unwrap_or(JsValue::NULL)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView<'a> {
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
}

fn entry_js(e: &ProgressEntry) -> JsValue {
    to_js(&EntryView {
        id: &e.id,
        user_id: &e.user_id,
        metric: e.metric.name(),
        quantity: e.quantity,
        unit: e.unit(),
        date: e.date as f64,
        backend_id: e.backend_id.as_deref(),
        created_at: e.created_at as f64,
        updated_at: e.updated_at as f64,
    })
}

#[derive(Serialize)]
struct MetadataView {
    #[serde(rename = "type")]
    metric: &'static str,
    quantity: f64,
    unit: &'static str,
    date: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView<'a> {
    id: &'a str,
    event_type: &'static str,
    operation: &'static str,
    entity_id: &'a str,
    user_id: &'a str,
    status: &'static str,
    metadata: MetadataView,
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
    gave_up: bool,
    quarantined: bool,
}

fn ms(t: Option<i64>) -> Option<f64> {
    t.map(|t| t as f64)
}

fn event_js(e: &OutboxEvent) -> JsValue {
    let (metric, quantity, unit, date) = metadata_fields(&e.metadata);
    to_js(&EventView {
        id: &e.id,
        event_type: "progressEntry",
        operation: e.operation.as_str(),
        entity_id: &e.entity_id,
        user_id: &e.user_id,
        status: e.status.as_str(),
        metadata: MetadataView { metric, quantity, unit, date },
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
        gave_up: e.gave_up(),
        quarantined: false,
    })
}

/// A record set aside, as `events()` lists it: its own fields as stored, marked.
fn quarantined_js(q: &Quarantined) -> JsValue {
    let o: JsValue = Object::new().into();
    if q.record.is_object() {
        // A copy of what can be read of it (a hostile getter cannot throw past `assign`'s catch).
        crate::platform::assign(&o, &q.record);
    }
    // Always a string (a key of another type, `5`, as `"5"`): what `resetForRetry` takes.
    set(&o, "id", &JsValue::from_str(&crate::store::quarantine::key_text(&q.key)));
    set(&o, "status", &JsValue::from_str("failed"));
    set(&o, "gaveUp", &JsValue::TRUE);
    set(&o, "quarantined", &JsValue::TRUE);
    set(&o, "errorMessage", &JsValue::from_str(&["unreadable record, kept aside (not deleted): ", &q.reason].concat()));
    o
}

#[derive(Serialize)]
struct StorageView {
    usage: f64,
    quota: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsView<'a> {
    user_id: &'a str,
    pending: f64,
    processing: f64,
    failed: f64,
    completed: f64,
    gave_up: f64,
    retrying: f64,
    last_sync_at: Option<f64>,
    last_error: Option<&'a str>,
    last_error_at: Option<f64>,
    oldest_pending_at: Option<f64>,
    sync_latency_ms: Option<f64>,
    quarantined: f64,
    failed_in_a_row: u32,
    health: &'static str,
    persisted: Option<bool>,
    storage: Option<StorageView>,
    batch_events: Option<u32>,
}

fn stats_js(s: &Stats) -> JsValue {
    to_js(&StatsView {
        user_id: &s.user_id,
        pending: s.pending as f64,
        processing: s.processing as f64,
        failed: s.failed as f64,
        completed: s.completed as f64,
        gave_up: s.gave_up as f64,
        retrying: s.retrying as f64,
        last_sync_at: ms(s.last_sync_at),
        last_error: s.last_error.as_deref(),
        last_error_at: ms(s.last_error_at),
        oldest_pending_at: ms(s.oldest_pending_at),
        sync_latency_ms: s.sync_latency_ms.map(|l| l as f64),
        quarantined: s.quarantined as f64,
        failed_in_a_row: s.failed_in_a_row,
        health: s.health.as_str(),
        persisted: s.persisted,
        storage: s.storage.map(|e| StorageView { usage: e.usage, quota: e.quota }),
        batch_events: s.batch_events,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PassView<'a> {
    user_id: Option<&'a str>,
    delegated: bool,
    offline: bool,
    stale_reset: u32,
    promoted: u32,
    claimed: u32,
    completed: u32,
    retrying: u32,
    gave_up: u32,
    released: u32,
    requests: u32,
    finished: bool,
}

fn pass_js(r: &PassReport) -> JsValue {
    to_js(&PassView {
        user_id: r.user_id.as_deref(),
        delegated: r.delegated,
        offline: r.offline,
        stale_reset: r.stale_reset,
        promoted: r.promoted,
        claimed: r.claimed,
        completed: r.completed,
        retrying: r.retrying,
        gave_up: r.gave_up,
        released: r.released,
        requests: r.requests,
        finished: !r.unfinished,
    })
}

type Call = Pin<Box<dyn Future<Output = Result<JsValue, Error>>>>;

// One non-generic instance of the Promise plumbing for every API method (the method bodies stay
// their own futures, behind one pointer).
#[inline(never)]
fn promise(f: Call) -> Promise {
    future_to_promise(async move { f.await.map_err(js_error) })
}

/// An options object, read once: each allowed key's value (a getter that throws, or keys that
/// cannot be listed, are refused). `None` for `undefined`/`null`.
struct Options {
    values: Vec<(&'static str, JsValue)>,
}

impl Options {
    fn read(what: &str, value: &JsValue, allowed: &[&'static str]) -> Result<Option<Options>, Error> {
        match to_arg(value) {
            // As WebIDL reads a dictionary: `null` is an empty one.
            Arg::Undefined | Arg::Null => return Ok(None),
            Arg::Other(kind) if kind == "an object" => {}
            other => return Err(Error::invalid_type(format!("{what}(options)"), "an options object", other.describe())),
        }
        let present = keys(value).map_err(|e| Error::invalid_type(format!("{what}(options)"), "an options object whose keys can be listed", e))?;
        check_keys(what, &present, allowed)?;
        // Each known option read once with [[Get]], as WebIDL reads a dictionary: inherited,
        // non-enumerable and getter-backed options count too (a class instance, `Object.create`).
        let mut values = Vec::with_capacity(allowed.len());
        for key in allowed {
            let v =
                read(value, key).map_err(|e| Error::invalid_type(format!("{what}: option {key}"), "a readable value", format!("a getter that threw ({e})")))?;
            if !v.is_undefined() {
                values.push((*key, v));
            }
        }
        Ok(Some(Options { values }))
    }

    fn raw(&self, key: &str) -> JsValue {
        self.values.iter().find(|(k, _)| *k == key).map_or(JsValue::UNDEFINED, |(_, v)| v.clone())
    }

    fn arg(&self, key: &str) -> Arg {
        to_arg(&self.raw(key))
    }
}

fn option_arg(o: &Option<Options>, key: &str) -> Arg {
    o.as_ref().map_or(Arg::Undefined, |o| o.arg(key))
}

fn token_source(value: &JsValue) -> Result<TokenSource, Error> {
    if value.is_undefined() || value.is_null() {
        Ok(TokenSource::None)
    } else if let Some(f) = as_function(value) {
        Ok(TokenSource::Function(f, Default::default()))
    } else if let Some(s) = value.as_string().filter(|s| !s.is_empty()) {
        // Never echo the value: it may be a secret. A lone surrogate (read as U+FFFD) is refused
        // with the other characters a header cannot carry.
        match token_problem(&s) {
            Some(why) => Err(Error::invalid_type("Outbox.open: option token", "a string an Authorization header can carry", format!("a string with {why}"))),
            None => Ok(TokenSource::Static(s)),
        }
    } else {
        // Never echo the value: it may be a secret.
        // Its kind only, never the value.
        let got = match to_arg(value) {
            Arg::Str(_) => "an empty string".to_owned(),
            Arg::Number(_) => "a number".to_owned(),
            Arg::Bool(_) => "a boolean".to_owned(),
            Arg::Date(_) => "a Date".to_owned(),
            Arg::Array(_) => "an array".to_owned(),
            a => a.describe(),
        };
        Err(Error::invalid_type("Outbox.open: option token", "a non-empty string or a function returning one", got))
    }
}

fn url(what: &'static str, raw: &str) -> Result<String, Error> {
    // A URL with `user:password@` in it is not repeated: it holds a secret.
    let shown = if raw.contains('@') { "the URL given".to_owned() } else { format!("\"{raw}\"") };
    resolve_url(raw).map_err(|e| Error::invalid_type(what, "a URL fetch can use", format!("{shown} ({e})")))
}

const SAVE_OPTIONS: [&str; 3] = ["userId", "date", "priority"];

/// A call checked when it was made (arguments read, current user resolved): bad input is a
/// rejected promise at once; otherwise the promise of its future's result, turned by `view`.
fn settle<T: 'static, F: Future<Output = Result<T, Error>> + 'static>(job: Result<F, Error>, view: impl FnOnce(T) -> JsValue + 'static) -> Promise {
    match job {
        Ok(f) => promise(Box::pin(async move { f.await.map(view) })),
        Err(e) => Promise::reject(&js_error(e)),
    }
}

impl Outbox {
    fn save_with(&self, method: SaveMethod, metric: JsValue, quantity: JsValue, options: JsValue) -> Promise {
        let job = Options::read(if method == SaveMethod::Save { "save" } else { "saveWeight" }, &options, &SAVE_OPTIONS).and_then(|o| {
            let args = SaveArgs {
                metric: to_arg(&metric),
                quantity: to_arg(&quantity),
                user_id: option_arg(&o, "userId"),
                date: option_arg(&o, "date"),
                priority: option_arg(&o, "priority"),
            };
            self.core.save(method, &args)
        });
        settle(job, |e| entry_js(&e))
    }
}

#[wasm_bindgen]
impl Outbox {
    /// Opens (creating or upgrading) the outbox database. Rejects with a `TypeError` or
    /// `RangeError` naming the first bad option.
    pub async fn open(config: JsValue) -> Result<Outbox, JsValue> {
        let open = async {
            let Some(o) = Options::read("Outbox.open", &config, &OPTION_NAMES)? else {
                return Err(Error::invalid_type("Outbox.open(config)", "an options object with at least { endpoint }", "nothing"));
            };
            let token = token_source(&o.raw("token"))?;
            let on_version_change = match o.raw("onVersionChange") {
                v if v.is_undefined() || v.is_null() => None,
                v => Some(as_function(&v).ok_or_else(|| Error::invalid_type("Outbox.open: option onVersionChange", "a function", to_arg(&v).describe()))?),
            };
            let pairs = o.values.iter().filter(|(k, _)| !JS_OPTIONS.contains(k)).map(|(k, v)| (*k, to_arg(v)));
            let config = Config::from_options(pairs)?;
            let endpoint = url("Outbox.open: option endpoint", &config.endpoint)?;
            let batch_endpoint = config.batch_endpoint.as_deref().map(|b| url("Outbox.open: option batchEndpoint", b)).transpose()?;
            let transport = Transport { endpoint, batch_endpoint, token, timeout_ms: config.request_timeout_ms };
            OutboxCore::open(config, transport, on_version_change, stats_js).await
        };
        open.await.map(|core| Outbox { core }).map_err(js_error)
    }

    /// Login: process `userId`'s events from now on. Returns at once.
    pub fn start(&self, user_id: JsValue) -> Result<(), JsValue> {
        self.core.start(&to_arg(&user_id)).map_err(js_error)
    }

    /// Logout: no further uploads start; no current user.
    pub fn stop(&self) {
        self.core.stop()
    }

    /// Saves a weight (kg) and its outbox event in one transaction; resolves with the entry after commit.
    #[wasm_bindgen(js_name = saveWeight)]
    pub fn save_weight(&self, kg: JsValue, options: JsValue) -> Promise {
        self.save_with(SaveMethod::SaveWeight, JsValue::from_str("weight"), kg, options)
    }

    /// Saves a measurement of any metric and its outbox event in one transaction.
    pub fn save(&self, metric: JsValue, quantity: JsValue, options: JsValue) -> Promise {
        self.save_with(SaveMethod::Save, metric, quantity, options)
    }

    /// Changes an entry's quantity and/or date; the change syncs as an update (or folds into
    /// its unsent create). Resolves with the entry.
    pub fn update(&self, entry_id: JsValue, changes: JsValue) -> Promise {
        let id = to_arg(&entry_id);
        let job = Options::read("update", &changes, &["quantity", "date"]).and_then(|o| {
            let Some(o) = o else {
                return Err(Error::invalid_type("update(entryId, changes)", "an object { quantity?, date? }", to_arg(&changes).describe()));
            };
            self.core.update(&id, &UpdateArgs { quantity: o.arg("quantity"), date: o.arg("date") })
        });
        settle(job, |e| entry_js(&e))
    }

    /// Deletes an entry; the delete syncs (or, if nothing of it was sent yet, nothing is sent).
    pub fn delete(&self, entry_id: JsValue) -> Promise {
        settle(self.core.delete(&to_arg(&entry_id)), |()| JsValue::UNDEFINED)
    }

    /// Counts, health, persistence and storage for `userId` (default: the current user).
    pub fn stats(&self, user_id: JsValue) -> Promise {
        settle(self.core.stats(&to_arg(&user_id)), |s| stats_js(&s))
    }

    /// Events, newest first: `events({ status, userId, limit })`; records set aside are listed
    /// (marked `quarantined: true`) with `failed` ones.
    pub fn events(&self, options: JsValue) -> Promise {
        let job = Options::read("events", &options, &["status", "userId", "limit"])
            .and_then(|o| self.core.events(&option_arg(&o, "status"), &option_arg(&o, "userId"), &option_arg(&o, "limit")));
        settle(job, |(events, odd)| {
            let list: js_sys::Array = events.iter().map(event_js).collect();
            for q in &odd {
                list.push(&quarantined_js(q));
            }
            list.into()
        })
    }

    /// Events processing for longer than `staleAfterMs`, or whose context is gone.
    #[wasm_bindgen(js_name = staleEvents)]
    pub fn stale_events(&self, user_id: JsValue) -> Promise {
        settle(self.core.stale_events(&to_arg(&user_id)), |events| events.iter().map(event_js).collect::<js_sys::Array>().into())
    }

    /// Failed or stale events back to pending with 0 attempts; resolves with how many.
    #[wasm_bindgen(js_name = resetForRetry)]
    pub fn reset_for_retry(&self, ids: JsValue) -> Promise {
        settle(self.core.reset_for_retry(&to_arg(&ids)), JsValue::from)
    }

    /// One processing pass now; resolves with what it did.
    #[wasm_bindgen(js_name = processNow)]
    pub fn process_now(&self) -> Promise {
        settle(self.core.process_now(), |r| pass_js(&r))
    }

    /// Entries, newest measurement first: `entries()`, `entries("u2")`, or
    /// `entries({ userId, metric, from, to, limit })`.
    pub fn entries(&self, query: JsValue) -> Promise {
        let job = match to_arg(&query) {
            user @ (Arg::Str(_) | Arg::LongStr(_)) => Ok((user, None)),
            _ => Options::read("entries", &query, &["userId", "metric", "from", "to", "limit"]).map(|o| (option_arg(&o, "userId"), o)),
        }
        .and_then(|(user, o)| self.core.entries(&user, &option_arg(&o, "metric"), &option_arg(&o, "from"), &option_arg(&o, "to"), &option_arg(&o, "limit")));
        settle(job, |found| found.iter().map(entry_js).collect::<js_sys::Array>().into())
    }

    /// Calls `callback(stats)` now and whenever the current user's stats change; returns the
    /// unsubscribe function.
    pub fn subscribe(&self, callback: JsValue) -> Result<Function, JsValue> {
        let Some(f) = as_function(&callback) else {
            return Err(js_error(Error::invalid_type("subscribe(callback)", "a function", to_arg(&callback).describe())));
        };
        self.core.check_open().map_err(js_error)?;
        let id = self.core.subscribe(f);
        let weak = Rc::downgrade(&self.core);
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(core) = weak.upgrade() {
                core.unsubscribe(id);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }

    /// Stops processing and closes the database connection.
    pub fn close(&self) {
        self.core.close()
    }

    /// True while this context is the one uploading for the current user (one per user among
    /// all tabs and workers using the same database).
    #[wasm_bindgen(getter, js_name = isLeader)]
    pub fn is_leader(&self) -> bool {
        self.core.is_leader()
    }

    /// The user given to `start()`, or `null`.
    #[wasm_bindgen(getter, js_name = currentUser)]
    pub fn current_user(&self) -> JsValue {
        self.core.current_user().map_or(JsValue::NULL, JsValue::from)
    }
}

/// True for an error this library threw or rejected with: an `Error` (of any realm) carrying one
/// of the documented `code`s. A plain object shaped like one is not.
#[wasm_bindgen(js_name = isOutboxError, skip_typescript)]
pub fn is_outbox_error(e: JsValue) -> bool {
    crate::platform::is_error(&e) && get(&e, "code").as_string().is_some_and(|c| Error::CODES.contains(&c.as_str())) && get(&e, "message").is_string()
}
