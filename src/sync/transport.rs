//! Uploads one entry (CONTRACT §2), turning whatever happens into an [`Outcome`]. It never
//! throws: a token function that fails, a hung server or a non-JSON answer all become outcomes
//! the retry policy understands. The request itself is one call into `src/js/platform.js`
//! (`fetch` with an `AbortController` timeout, headers, JSON body, response parsing).

use js_sys::Function;
use wasm_bindgen::prelude::*;

use crate::domain::config::MAX_TIMER_MS;
use crate::domain::entry::ProgressEntry;
use crate::domain::retry::Outcome;
use crate::platform::get;

#[wasm_bindgen(module = "/src/js/platform.js")]
extern "C" {
    #[wasm_bindgen(js_name = callToken)]
    async fn call_token(f: &Function, user: &str, refresh: bool) -> JsValue;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = upload)]
    async fn upload_js(
        endpoint: &str,
        key: &str,
        token: Option<String>,
        timeout_ms: f64,
        local_id: &str,
        metric: &str,
        quantity: f64,
        unit: &str,
        date: &str,
    ) -> JsValue;
}

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

impl TokenSource {
    /// The token for an upload of `user`'s data: `Ok(None)` = no header.
    pub async fn get(&self, user: &str, refresh: bool) -> Result<Option<String>, String> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Static(t) => Ok(Some(t.clone())),
            TokenSource::Function(f) => {
                let answer = call_token(f, user, refresh).await;
                match get(&answer, "token").as_string() {
                    Some(t) => Ok(Some(t)),
                    None => Err(get(&answer, "error").as_string().unwrap_or_else(|| "the token function failed".into())),
                }
            }
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

impl Transport {
    /// Uploads `entry` as event `event_id` for `user`, with one token refresh on 401.
    /// `still_current` is checked before each request, so a logout or user switch while the
    /// token function runs sends nothing (returns `None`).
    pub async fn upload(&self, event_id: &str, entry: &ProgressEntry, user: &str, still_current: &dyn Fn() -> bool) -> Option<Outcome> {
        let body = entry.upload_body();
        let mut refreshed = false;
        loop {
            let token = match self.token.get(user, refreshed).await {
                Ok(t) => t,
                Err(message) => return Some(Outcome::Token(message)),
            };
            if !still_current() {
                return None;
            }
            let timeout = self.timeout_ms.min(MAX_TIMER_MS) as f64;
            let r = upload_js(&self.endpoint, event_id, token, timeout, body.local_id, body.metric, body.quantity, body.unit, &body.date_iso).await;
            let outcome = match get(&r, "kind").as_string().as_deref() {
                Some("response") => Outcome::Response {
                    status: get(&r, "status").as_f64().unwrap_or(0.0) as u16,
                    retry_after: get(&r, "retryAfter").as_string(),
                    backend_id: get(&r, "id").as_string(),
                    body_excerpt: get(&r, "body").as_string().unwrap_or_default(),
                },
                Some("timeout") => Outcome::Timeout(self.timeout_ms),
                _ => Outcome::Network(get(&r, "message").as_string().unwrap_or_else(|| "fetch failed".into())),
            };
            match outcome {
                Outcome::Response { status: 401, .. } if !refreshed => refreshed = true,
                other => return Some(other),
            }
        }
    }
}
