//! Uploads one entry with the global `fetch` (CONTRACT §2), turning whatever happens into an
//! [`Outcome`]. It never throws: a token function that fails, a hung server or a non-JSON answer
//! all become outcomes the retry policy understands.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Response};

use crate::domain::entry::ProgressEntry;
use crate::domain::retry::Outcome;
use crate::platform::{describe_error, get, global, set};

/// Where the bearer token comes from.
pub enum TokenSource {
    /// No `Authorization` header.
    None,
    /// A fixed token.
    Static(String),
    /// `token(userId, { refresh })`, sync or async; asked before each upload (`refresh: false`)
    /// and once more after a 401 (`refresh: true`: the cached token was refused).
    Function(Function),
}

/// What kind of thing a JS value is, without its contents (tokens must never reach a log).
fn kind_of(v: &JsValue) -> &'static str {
    if v.is_undefined() {
        "undefined"
    } else if v.is_null() {
        "null"
    } else if v.is_string() {
        "an empty string"
    } else if v.as_f64().is_some() {
        "a number"
    } else if v.is_function() {
        "a function"
    } else {
        "an object"
    }
}

impl TokenSource {
    /// The token for an upload of `user`'s data: `Ok(None)` = no header.
    pub async fn get(&self, user: &str, refresh: bool) -> Result<Option<String>, String> {
        let f = match self {
            TokenSource::None => return Ok(None),
            TokenSource::Static(t) => return Ok(Some(t.clone())),
            TokenSource::Function(f) => f,
        };
        let hint = Object::new();
        set(&hint, "refresh", &JsValue::from_bool(refresh));
        let mut value = f
            .call2(&JsValue::UNDEFINED, &JsValue::from_str(user), &hint)
            .map_err(|e| format!("the token function threw ({}); will retry", describe_error(&e)))?;
        if let Some(promise) = value.dyn_ref::<Promise>() {
            value = JsFuture::from(promise.clone())
                .await
                .map_err(|e| format!("the token function's promise rejected ({}); will retry", describe_error(&e)))?;
        }
        match value.as_string() {
            Some(t) if !t.is_empty() => Ok(Some(t)),
            _ => Err(format!("the token function returned {} instead of a token string; will retry", kind_of(&value))),
        }
    }
}

/// The HTTP side of the outbox.
pub struct Transport {
    /// Where to POST.
    pub endpoint: String,
    /// Bearer token source.
    pub token: TokenSource,
    /// Abort a request after this long.
    pub timeout_ms: u64,
}

enum Sent {
    Answered { status: u16, retry_after: Option<String>, body: String },
    Failed(Outcome),
}

impl Transport {
    /// Uploads `entry` as event `event_id` for `user`, with one token refresh on 401.
    /// `still_current` is checked before each request, so a logout or user switch while the
    /// token function runs sends nothing (returns `None`).
    pub async fn upload(&self, event_id: &str, entry: &ProgressEntry, user: &str, still_current: &dyn Fn() -> bool) -> Option<Outcome> {
        let body = Self::body(entry);
        let mut refreshed = false;
        loop {
            let token = match self.token.get(user, refreshed).await {
                Ok(t) => t,
                Err(message) => return Some(Outcome::Token(message)),
            };
            if !still_current() {
                return None;
            }
            match self.send(event_id, &body, token.as_deref()).await {
                Sent::Failed(outcome) => return Some(outcome),
                Sent::Answered { status: 401, .. } if !refreshed => refreshed = true,
                Sent::Answered { status, retry_after, body } => {
                    let backend_id = if (200..300).contains(&status) { Self::backend_id(&body) } else { None };
                    let body_excerpt = body.chars().take(500).collect();
                    return Some(Outcome::Response { status, retry_after, backend_id, body_excerpt });
                }
            }
        }
    }

    /// `{"localId","type","quantity","unit","date"}`, serialized by the platform's JSON.
    fn body(entry: &ProgressEntry) -> String {
        let b = entry.upload_body();
        let o = Object::new();
        set(&o, "localId", &JsValue::from_str(b.local_id));
        set(&o, "type", &JsValue::from_str(b.metric));
        set(&o, "quantity", &JsValue::from_f64(b.quantity));
        set(&o, "unit", &JsValue::from_str(b.unit));
        set(&o, "date", &JsValue::from_str(&b.date_iso));
        js_sys::JSON::stringify(&o).map(String::from).unwrap_or_default()
    }

    /// `id` of a JSON object body, stringified; `None` if there is no usable id.
    fn backend_id(body: &str) -> Option<String> {
        let v = js_sys::JSON::parse(body).ok()?;
        if !v.is_object() {
            return None;
        }
        let id = get(&v, "id");
        if let Some(s) = id.as_string() {
            return (!s.is_empty()).then_some(s);
        }
        id.as_f64().filter(|n| n.is_finite()).and_then(|_| js_sys::JSON::stringify(&id).ok()).map(String::from)
    }

    async fn send(&self, event_id: &str, body: &str, token: Option<&str>) -> Sent {
        let controller = match AbortController::new() {
            Ok(c) => c,
            Err(e) => return Sent::Failed(Outcome::Network(describe_error(&e))),
        };
        let headers = Object::new();
        set(&headers, "Content-Type", &JsValue::from_str("application/json"));
        set(&headers, "Idempotency-Key", &JsValue::from_str(event_id));
        if let Some(t) = token {
            set(&headers, "Authorization", &JsValue::from_str(&format!("Bearer {t}")));
        }
        let init = Object::new();
        set(&init, "method", &JsValue::from_str("POST"));
        set(&init, "headers", &headers);
        set(&init, "body", &JsValue::from_str(body));
        set(&init, "signal", &controller.signal());
        // Uploads are not for the HTTP cache.
        set(&init, "cache", &JsValue::from_str("no-store"));

        let timed_out = Rc::new(Cell::new(false));
        let _timer = {
            let (controller, timed_out) = (controller.clone(), timed_out.clone());
            let ms = self.timeout_ms.min(crate::domain::config::MAX_TIMER_MS) as u32;
            // Dropped (cleared) when this function returns.
            Timeout::new(ms, move || {
                timed_out.set(true);
                controller.abort();
            })
        };
        let timeout = Outcome::Timeout(self.timeout_ms);

        // Looked up at each call: apps and tests may replace `fetch` after the module loaded.
        let fetch = get(&global(), "fetch");
        let Some(fetch) = fetch.dyn_ref::<Function>() else {
            return Sent::Failed(Outcome::Network("no global fetch in this context".into()));
        };
        let promise = match fetch.call2(&global(), &JsValue::from_str(&self.endpoint), &init) {
            Ok(p) => p,
            Err(e) => return Sent::Failed(Outcome::Network(describe_error(&e))),
        };
        let response = match JsFuture::from(Promise::resolve(&promise)).await {
            Ok(r) => r,
            Err(_) if timed_out.get() => return Sent::Failed(timeout),
            Err(e) => return Sent::Failed(Outcome::Network(describe_error(&e))),
        };
        let Some(response) = response.dyn_ref::<Response>() else {
            return Sent::Failed(Outcome::Network("fetch resolved to something that is not a Response".into()));
        };
        let status = response.status();
        let retry_after = response.headers().get("Retry-After").ok().flatten();
        let body = match response.text() {
            Ok(p) => match JsFuture::from(p).await {
                Ok(t) => t.as_string().unwrap_or_default(),
                Err(_) if timed_out.get() => return Sent::Failed(timeout),
                // The status arrived; a body cut off mid-way still tells us what happened.
                Err(_) => String::new(),
            },
            Err(_) => String::new(),
        };
        Sent::Answered { status, retry_after, body }
    }
}
