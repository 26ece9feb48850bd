//! The app's `token` option: `token(userId, { refresh })`, sync or async. Whatever it does
//! (throws, rejects, returns garbage, never answers) becomes a clear reason, bounded by the
//! request timeout. Neither the token nor anything the function returned is ever put in a message.

use std::cell::RefCell;

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;

use super::timer::within;
use super::{adopt, describe_error, set, MAX_STRING_READ};
use crate::domain::arg::truncate;
use crate::domain::config::token_problem;

/// The longest reason kept from what the token function threw (stored in the event's
/// `errorMessage` and in `stats().lastError`), cut after any token in it is blanked.
const MAX_REASON_CHARS: usize = 500;

/// Where the bearer token comes from.
pub enum TokenSource {
    /// No `Authorization` header.
    None,
    /// A fixed token.
    Static(String),
    /// `token(userId, { refresh })`: asked before each upload (`refresh: false`) and once more
    /// after a 401 (`refresh: true`: the cached token was refused). With the last tokens it
    /// returned, blanked out of whatever it throws later ("could not refresh <token>").
    Function(Function, RefCell<Vec<String>>),
}

/// How many of the function's latest tokens are remembered for blanking.
const REMEMBERED: usize = 4;

/// `why` with every remembered token replaced by `[token]`.
fn blank(why: String, seen: &RefCell<Vec<String>>) -> String {
    seen.borrow().iter().fold(why, |m, t| m.replace(t.as_str(), "[token]"))
}

fn kind(v: &JsValue) -> &'static str {
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
    /// The token for an upload of `user`'s data: `Ok(None)` = no header; `Err` says why there is
    /// none (then nothing is sent; the attempt is an unreachable-kind failure).
    pub async fn get(&self, user: &str, refresh: bool, timeout_ms: u64) -> Result<Option<String>, String> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Static(t) => Ok(Some(t.clone())),
            TokenSource::Function(f, seen) => {
                Self::ask(f, user, refresh, timeout_ms).await.map_err(|why| truncate(&blank(why, seen), MAX_REASON_CHARS)).map(|t| {
                    let mut seen = seen.borrow_mut();
                    if !seen.contains(&t) {
                        if seen.len() == REMEMBERED {
                            seen.remove(0);
                        }
                        seen.push(t.clone());
                    }
                    Some(t)
                })
            }
        }
    }

    /// Calls the token function and checks what it gave.
    async fn ask(f: &Function, user: &str, refresh: bool, timeout_ms: u64) -> Result<String, String> {
        let hint: JsValue = Object::new().into();
        set(&hint, "refresh", &JsValue::from_bool(refresh));
        let value = f.call2(&JsValue::UNDEFINED, &JsValue::from_str(user), &hint).map_err(|e| format!("the token function threw ({})", describe_error(&e)))?;
        // `Promise.resolve` adopts any thenable (and turns a throwing `then` into a rejection).
        let answered = within(timeout_ms, adopt(&value)).await;
        let value = match answered {
            None => return Err(format!("the token function did not answer within {timeout_ms} ms (requestTimeoutMs)")),
            Some(Err(e)) => return Err(format!("the token function's promise rejected ({})", describe_error(&e))),
            Some(Ok(v)) => v,
        };
        // A string far longer than any token is refused by its length, never copied whole.
        if let Some(long) = value.dyn_ref::<js_sys::JsString>().map(|s| s.length()).filter(|n| *n > MAX_STRING_READ) {
            return Err(format!("the token function returned a string of {long} characters, far longer than any token"));
        }
        match value.as_string() {
            // A lone surrogate would arrive here replaced by U+FFFD: refused with the rest.
            Some(t) if !t.is_empty() => match token_problem(&t) {
                None => Ok(t),
                Some(why) => Err(format!("the token function returned a string with {why}; it cannot be sent in an Authorization header")),
            },
            _ => Err(format!("the token function returned {} instead of a token string", kind(&value))),
        }
    }
}
