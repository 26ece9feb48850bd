//! `fetch` at the boundary (web-sys `Request`, `RequestInit`, `Headers`, `AbortController`,
//! `Response`). One call, bounded by the request timeout as a whole (connect, headers, body),
//! never following redirects, and never throwing: whatever happens comes back as a [`Reply`].
//!
//! The global `fetch` is looked up at each call (apps and tests may replace it) and called
//! without a receiver: `globalThis.fetch.call(globalThis, ...)` throws "does not implement
//! interface Window" in Firefox when this module was loaded from another realm's script.

use js_sys::{Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, Headers, RequestCache, RequestInit, RequestRedirect};

use super::timer::within;
use super::{adopt, describe_error, get, head, mono};
use crate::domain::batch::ItemAnswer;
use crate::domain::retry::{exact_numeric_id, usable_backend_id};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> Result<JsValue, JsValue>;
}

/// How much of a response body is kept for messages.
const EXCERPT_CHARS: usize = 500;

/// How much of a body (or an item's `error`) is copied into the wasm for an excerpt: the
/// excerpt and the whole of any token that starts inside it, also in its JSON-escaped form (at
/// most twice as long), so that it is blanked before the cut.
fn excerpt_read(token: Option<&str>) -> u32 {
    let token_units = token.map_or(0, |t| t.encode_utf16().count());
    (EXCERPT_CHARS + 2 * token_units + 16).min(u32::MAX as usize) as u32
}

/// The longest body read (UTF-16 units): far above any answer of the protocol (a batch answer
/// of 1,000 results with long error texts).
const MAX_BODY_READ: u32 = 16 << 20;

/// The most results of a batch answer read: one past the largest batch (`maxBatchEvents` is at
/// most 1000), enough to tell a list that is too long.
const MAX_RESULTS_READ: u32 = 1001;

/// One request.
pub struct Call<'a> {
    /// `POST`, `PUT` or `DELETE`.
    pub method: &'a str,
    /// Absolute or relative URL.
    pub url: &'a str,
    /// Bearer token, if any.
    pub token: Option<&'a str>,
    /// `Idempotency-Key` header, if any.
    pub key: Option<&'a str>,
    /// A value to send as JSON, if any.
    pub body: Option<&'a JsValue>,
    /// Give up (and abort) after this long.
    pub timeout_ms: u64,
    /// Read a batch answer's `results`.
    pub batch: bool,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The server answered.
    Answer(Answer),
    /// The server redirected (not followed), and the browser hides the status and headers.
    OpaqueRedirect,
    /// No answer: offline, DNS, refused, CORS, a `fetch` that threw or returned a non-Response.
    Network(String),
    /// No (complete) answer within the timeout; the request was aborted.
    Timeout,
}

/// A server's answer, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`.
    pub retry_after: Option<String>,
    /// The body was empty or a JSON object.
    pub plain: bool,
    /// The start of the body, with the token (if it appears) blanked out.
    pub excerpt: String,
    /// `id` of a JSON object body, as a string (finite numbers are stringified).
    pub id: Option<String>,
    /// For a batch: its `results`, each read as an item answer (`None` when the body has no
    /// `results` array; an inner `None` for a result that is not `{ status: number, ... }`).
    pub results: Option<Vec<Option<ItemAnswer>>>,
}

/// The `id` of an answer, as a string: a numeric id as JS itself writes it (`String(n)`), so
/// `1764000000123` stays `"1764000000123"` in the URLs of later updates and deletes.
fn id_of(v: &JsValue) -> Option<String> {
    let id = get(v, "id");
    let text = match (id.as_string(), id.as_f64()) {
        (Some(s), _) => Some(s),
        (_, Some(n)) if exact_numeric_id(n) => js_sys::Number::from(n).to_string_with_radix(10).ok().map(String::from),
        _ => None,
    };
    text.and_then(usable_backend_id)
}

fn item(v: &JsValue, token: Option<&str>) -> Option<ItemAnswer> {
    let status = get(v, "status").as_f64().filter(|s| s.fract() == 0.0 && (100.0..=599.0).contains(s))?;
    let error = head(&get(v, "error"), excerpt_read(token)).map(|e| excerpt(&e, token));
    let retry_after = get(v, "retryAfter");
    Some(ItemAnswer { status: status as u16, id: id_of(v), error, retry_after_s: retry_after.as_f64(), retry_after_text: head(&retry_after, 64) })
}

/// The start of a body, with the token blanked out first (then cut: a token straddling the cut
/// must not leave a prefix behind), also in its JSON-escaped form.
fn excerpt(text: &str, token: Option<&str>) -> String {
    let mut clean = text.to_owned();
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        clean = clean.replace(t, "[token]");
        let escaped = t.replace('/', "\\/");
        if escaped != t {
            clean = clean.replace(&escaped, "[token]");
        }
    }
    clean.chars().take(EXCERPT_CHARS).collect()
}

fn build(call: &Call<'_>, signal: &web_sys::AbortSignal) -> Result<web_sys::Request, JsValue> {
    let headers = Headers::new()?;
    if let Some(t) = call.token {
        headers.append("Authorization", &["Bearer ", t].concat())?;
    }
    if let Some(k) = call.key {
        headers.append("Idempotency-Key", k)?;
    }
    let init = RequestInit::new();
    init.set_method(call.method);
    init.set_redirect(RequestRedirect::Manual);
    init.set_cache(RequestCache::NoStore);
    init.set_signal(Some(signal));
    if let Some(body) = call.body {
        headers.append("Content-Type", "application/json")?;
        init.set_body(&JSON::stringify(body)?.into());
    }
    init.set_headers(&headers);
    web_sys::Request::new_with_str_and_init(call.url, &init)
}

/// How long a deadline that fired late waits for an answer already there.
const LATE_LOOK_MS: u64 = 100;

/// Did the deadline fire a second or more after it was due (the page ran no code meanwhile)?
fn overdue(started: f64, timeout_ms: u64) -> bool {
    mono() - started >= timeout_ms as f64 + 1_000.0
}

/// Sends one request and reads the answer.
pub async fn send(call: Call<'_>) -> Reply {
    let started = mono();
    let left = |started: f64| (call.timeout_ms as f64 - (mono() - started)).max(0.0) as u64;
    let controller = match AbortController::new() {
        Ok(c) => c,
        Err(e) => return Reply::Network(format!("AbortController unavailable ({})", describe_error(&e))),
    };
    let request = match build(&call, &controller.signal()) {
        Ok(r) => r,
        Err(e) => return Reply::Network(format!("the request could not be built ({})", describe_error(&e))),
    };
    let returned = match global_fetch(&request) {
        Ok(v) => v,
        Err(e) => return Reply::Network(format!("fetch threw ({})", describe_error(&e))),
    };
    // `Promise.resolve`: a polyfill may return a thenable, or something that is not a promise.
    let mut answer = adopt(&returned);
    let response = match within(left(started), &mut answer).await {
        // A deadline that fired late (the page was hung or frozen past it) comes before the
        // answer that arrived meanwhile, whose task is queued behind the timer's: look once more.
        None if overdue(started, call.timeout_ms) => match within(LATE_LOOK_MS, answer).await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Reply::Network(describe_error(&e)),
            None => {
                controller.abort();
                return Reply::Timeout;
            }
        },
        None => {
            controller.abort();
            return Reply::Timeout;
        }
        Some(Err(e)) => return Reply::Network(describe_error(&e)),
        Some(Ok(r)) => r,
    };
    // Duck-typed: a Response from another realm, or a polyfill's, is not `instanceof Response`.
    let Some(status) = get(&response, "status").as_f64() else {
        return Reply::Network("fetch resolved to something that is not a Response".into());
    };
    let response: web_sys::Response = response.unchecked_into();
    if get(&response, "type").as_string().as_deref() == Some("opaqueredirect") {
        return Reply::OpaqueRedirect;
    }
    // A 3xx the page can see (300, 304, or a fetch that reports redirects as responses) is an
    // answer like any other: its status and Retry-After count (CONTRACT §2).
    let status = status as u16;
    // Duck-typed too: `headers.get` of any realm's (or a polyfill's) Headers; a throw is no header.
    let headers = get(&response, "headers");
    let retry_after =
        super::as_function(&get(&headers, "get")).and_then(|f| f.call1(&headers, &JsValue::from_str("Retry-After")).ok()).and_then(|v| v.as_string());
    let body = match response.text().map(|p| adopt(&p)) {
        // `Promise.resolve`: a polyfill's `text()` may not return a promise.
        // At least a late look: a body already there when a late deadline fired is read.
        Ok(p) => match within(left(started).max(LATE_LOOK_MS), p).await {
            None => {
                controller.abort();
                return Reply::Timeout;
            }
            Some(Ok(t)) => t,
            // A success whose body was cut off (the connection dropped): its id is lost, so this
            // is no answer (retried, never counted); the key makes the server answer it again.
            Some(Err(e)) if (200..300).contains(&status) => {
                let what = if call.batch { "the batch answer" } else { "the answer" };
                return Reply::Network(format!("the connection dropped while {what} (HTTP {status}) was read ({})", describe_error(&e)));
            }
            // Any other status says what happened, cut body or not.
            Some(Err(_)) => JsValue::UNDEFINED,
        },
        Err(_) => JsValue::UNDEFINED,
    };
    if let Some(long) = body.dyn_ref::<js_sys::JsString>().map(|s| s.length()).filter(|n| *n > MAX_BODY_READ) {
        // No answer of this protocol is that long (a runaway server, a proxy's dump): its start is
        // kept for the message; it is never copied whole (hundreds of megabytes would exhaust the
        // wasm's memory and end the instance) nor parsed.
        let cut = head(&body, excerpt_read(call.token)).unwrap_or_default();
        let excerpt = format!("[a body of {long} characters, not read] {}", excerpt(&cut, call.token));
        return Reply::Answer(Answer { status, retry_after, plain: false, excerpt, id: None, results: None });
    }
    let text = body.as_string().unwrap_or_default();
    // Empty or any JSON (`true`, `[]`, `"ok"` too) is a plain answer (an update's 2xx is stored);
    // only an object can carry an id or a result list.
    let json = if text.trim().is_empty() { None } else { JSON::parse(&text).ok() };
    let plain = text.trim().is_empty() || json.is_some();
    let parsed = json.filter(|v| v.is_object() && !Array::is_array(v));
    let id = parsed.as_ref().and_then(id_of);
    let results = if call.batch {
        parsed.as_ref().map(|p| get(p, "results")).filter(Array::is_array).map(|r| {
            let r = Array::from(&r);
            (0..r.length().min(MAX_RESULTS_READ)).map(|i| item(&r.get(i), call.token)).collect()
        })
    } else {
        None
    };
    Reply::Answer(Answer { status, retry_after, plain, excerpt: excerpt(&text, call.token), id, results })
}
