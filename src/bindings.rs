//! The JS surface (CONTRACT §1): one exported class whose methods only translate arguments,
//! call into [`crate::outbox`], and translate results and errors back.

use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::domain::arg::Arg;
use crate::domain::config::{Config, JS_OPTIONS, OPTION_NAMES};
use crate::domain::entry::SaveArgs;
use crate::domain::error::{Error, JsClass};
use crate::domain::event::OutboxEvent;
use crate::domain::query::check_keys;
use crate::outbox::OutboxCore;
use crate::platform::{get, keys, set, to_arg};
use crate::store::records::{encode_entry, event_for_js, stats_for_js};
use crate::sync::transport::TokenSource;

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT: &'static str = include_str!("../types/progress-outbox.d.ts");

/// A transactional outbox for health measurements. Create one with `await Outbox.open({...})`.
///
/// ```js
/// const outbox = await Outbox.open({ endpoint: "/api/v1/progress", token: () => session.token });
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

fn events_js(events: &[OutboxEvent]) -> JsValue {
    events.iter().map(event_for_js).collect::<js_sys::Array>().into()
}

fn promise(f: impl Future<Output = Result<JsValue, Error>> + 'static) -> Promise {
    boxed_promise(Box::pin(f))
}

// One non-generic instance of the Promise plumbing for every API method (the method bodies
// stay their own futures, behind one pointer).
#[inline(never)]
fn boxed_promise(f: std::pin::Pin<Box<dyn Future<Output = Result<JsValue, Error>>>>) -> Promise {
    future_to_promise(async move { f.await.map_err(js_error) })
}

/// `undefined`/`null` or a plain object whose keys are all in `allowed`.
fn options(what: &str, value: &JsValue, allowed: &[&str]) -> Result<Option<JsValue>, Error> {
    match to_arg(value) {
        a if a.is_absent() => Ok(None),
        Arg::Other(kind) if kind == "an object" => {
            check_keys(what, &keys(value), allowed)?;
            Ok(Some(value.clone()))
        }
        other => Err(Error::invalid_type(format!("{what}(options)"), "an options object", other.describe())),
    }
}

fn option(options: &Option<JsValue>, key: &str) -> Arg {
    options.as_ref().map(|o| to_arg(&get(o, key))).unwrap_or(Arg::Undefined)
}

fn token_source(value: &JsValue) -> Result<TokenSource, Error> {
    if value.is_undefined() || value.is_null() {
        Ok(TokenSource::None)
    } else if value.is_function() {
        // `typeof`, not `instanceof Function`: functions from another realm are functions too.
        Ok(TokenSource::Function(value.clone().unchecked_into()))
    } else if let Some(s) = value.as_string().filter(|s| !s.is_empty()) {
        Ok(TokenSource::Static(s))
    } else {
        // Never echo the value: it may be a secret.
        Err(Error::invalid_type("Outbox.open: option token", "a non-empty string or a function returning one", "something else"))
    }
}

#[wasm_bindgen]
impl Outbox {
    /// Opens (creating or upgrading) the outbox database. Rejects with a `TypeError` or
    /// `RangeError` naming the first bad option.
    pub async fn open(config: JsValue) -> Result<Outbox, JsValue> {
        let open = async {
            let Some(config) = options("Outbox.open", &config, &OPTION_NAMES)? else {
                return Err(Error::invalid_type("Outbox.open(config)", "an options object with at least { endpoint }", "nothing"));
            };
            let token = token_source(&get(&config, "token"))?;
            let on_version_change = match get(&config, "onVersionChange") {
                v if v.is_undefined() || v.is_null() => None,
                v if v.is_function() => Some(v.unchecked_into::<Function>()),
                v => return Err(Error::invalid_type("Outbox.open: option onVersionChange", "a function", to_arg(&v).describe())),
            };
            let pairs: Vec<(String, Arg)> = keys(&config)
                .into_iter()
                .filter(|k| !JS_OPTIONS.contains(&k.as_str()))
                .map(|k| {
                    let arg = to_arg(&get(&config, &k));
                    (k, arg)
                })
                .collect();
            let config = Config::from_options(pairs.iter().map(|(k, a)| (k.as_str(), a.clone())))?;
            OutboxCore::open(config, token, on_version_change).await
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

    /// Saves a weight and its outbox event in one transaction; resolves with the entry after commit.
    #[wasm_bindgen(js_name = saveWeight)]
    pub fn save_weight(&self, kg: JsValue, options_arg: JsValue) -> Promise {
        let core = self.core.clone();
        promise(async move {
            let o = options("saveWeight", &options_arg, &["userId", "date", "priority"])?;
            let args = SaveArgs { kg: to_arg(&kg), user_id: option(&o, "userId"), date: option(&o, "date"), priority: option(&o, "priority") };
            Ok(encode_entry(&core.save_weight(&args).await?))
        })
    }

    /// Counts and sync health for `userId` (default: the current user).
    pub fn stats(&self, user_id: JsValue) -> Promise {
        let core = self.core.clone();
        promise(async move { Ok(stats_for_js(&core.stats(&to_arg(&user_id)).await?)) })
    }

    /// Events, newest first: `events({ status, userId, limit })`.
    pub fn events(&self, options_arg: JsValue) -> Promise {
        let core = self.core.clone();
        promise(async move {
            let o = options("events", &options_arg, &["status", "userId", "limit"])?;
            Ok(events_js(&core.events(&option(&o, "status"), &option(&o, "userId"), &option(&o, "limit")).await?))
        })
    }

    /// Events processing for longer than `staleAfterMs`.
    #[wasm_bindgen(js_name = staleEvents)]
    pub fn stale_events(&self, user_id: JsValue) -> Promise {
        let core = self.core.clone();
        promise(async move { Ok(events_js(&core.stale_events(&to_arg(&user_id)).await?)) })
    }

    /// Failed or stale events back to pending with 0 attempts; resolves with how many.
    #[wasm_bindgen(js_name = resetForRetry)]
    pub fn reset_for_retry(&self, ids: JsValue) -> Promise {
        let core = self.core.clone();
        promise(async move { Ok(JsValue::from(core.reset_for_retry(&to_arg(&ids)).await?)) })
    }

    /// One processing pass now; resolves with what it did.
    #[wasm_bindgen(js_name = processNow)]
    pub fn process_now(&self) -> Promise {
        let core = self.core.clone();
        promise(async move { Ok(core.process_now().await?.to_js()) })
    }

    /// Entries of `userId` (default: current), newest measurement first.
    pub fn entries(&self, user_id: JsValue) -> Promise {
        let core = self.core.clone();
        promise(async move { Ok(core.entries(&to_arg(&user_id)).await?.iter().map(encode_entry).collect::<js_sys::Array>().into()) })
    }

    /// Calls `callback(stats)` now and whenever the current user's stats change; returns the
    /// unsubscribe function.
    pub fn subscribe(&self, callback: JsValue) -> Result<Function, JsValue> {
        if !callback.is_function() {
            return Err(js_error(Error::invalid_type("subscribe(callback)", "a function", to_arg(&callback).describe())));
        }
        let f: &Function = callback.unchecked_ref();
        let id = self.core.subscribe(f.clone());
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
    pub fn current_user(&self) -> Option<String> {
        self.core.current_user()
    }
}
