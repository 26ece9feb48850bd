//! The few IndexedDB calls the store needs, on `web_sys` directly, with one non-generic future
//! for every request. (The `idb` crate wraps each request type in its own future with channels
//! and closures; across the store's ~40 await points that cost about 40 KB of wasm. This file
//! is what we kept of it: see README "Size".)

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbCursorDirection, IdbCursorWithValue, IdbIndex, IdbKeyRange, IdbObjectStore, IdbRequest};

use crate::domain::{Error, Result};
use crate::platform::describe_error;

/// Turns a browser error into ours: quota errors get their own variant.
pub fn classify(operation: &'static str, detail: String) -> Error {
    // `detail` is "Name: message" (see `describe_error`).
    if detail.starts_with("QuotaExceededError") {
        Error::QuotaExceeded(detail)
    } else {
        Error::Storage { operation, detail }
    }
}

/// Maps a thrown JS value (a `DOMException` from IndexedDB) to our error.
pub fn js_error(operation: &'static str) -> impl Fn(JsValue) -> Error {
    move |e| classify(operation, describe_error(&e))
}

#[derive(Default)]
struct Slot {
    done: Option<std::result::Result<JsValue, JsValue>>,
    waker: Option<Waker>,
}

/// Resolves with a request's `result`, or its `error`. Listens from creation, so it may be
/// created right after the request and awaited later (but within the same transaction).
pub struct Request {
    slot: Rc<RefCell<Slot>>,
    operation: &'static str,
    _on_success: Closure<dyn FnMut()>,
    _on_error: Closure<dyn FnMut()>,
}

impl Request {
    /// Starts listening to `request` (a request just made, or a cursor request just continued).
    pub fn new(request: &IdbRequest, operation: &'static str) -> Request {
        let slot = Rc::new(RefCell::new(Slot::default()));
        let settle = |slot: Rc<RefCell<Slot>>, request: IdbRequest, ok: bool| {
            move || {
                let value = if ok {
                    Ok(request.result().unwrap_or(JsValue::UNDEFINED))
                } else {
                    Err(request.error().ok().flatten().map(JsValue::from).unwrap_or(JsValue::NULL))
                };
                let mut s = slot.borrow_mut();
                s.done = Some(value);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        };
        let on_success = Closure::<dyn FnMut()>::new(settle(slot.clone(), request.clone(), true));
        let on_error = Closure::<dyn FnMut()>::new(settle(slot.clone(), request.clone(), false));
        request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
        request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Request { slot, operation, _on_success: on_success, _on_error: on_error }
    }
}

impl Future for Request {
    type Output = Result<JsValue>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<JsValue>> {
        let mut s = self.slot.borrow_mut();
        match s.done.take() {
            Some(Ok(v)) => Poll::Ready(Ok(v)),
            Some(Err(e)) => Poll::Ready(Err(classify(self.operation, describe_error(&e)))),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Awaits a request made with a fallible `web_sys` call.
pub fn request(made: std::result::Result<IdbRequest, JsValue>, operation: &'static str) -> Result<Request> {
    made.map(|r| Request::new(&r, operation)).map_err(js_error(operation))
}

/// `store.get(key)`: the record, or `undefined`.
pub fn get(store: &IdbObjectStore, key: &JsValue, op: &'static str) -> Result<Request> {
    request(store.get(key), op)
}

/// `put(value[, key])`, not awaited: a failed write fails the transaction, which
/// `Tx::finish` reports.
pub fn put(store: &IdbObjectStore, value: &JsValue, key: Option<&JsValue>, op: &'static str) -> Result<()> {
    match key {
        Some(k) => store.put_with_key(value, k),
        None => store.put(value),
    }
    .map(drop)
    .map_err(js_error(op))
}

/// `add(value)`, not awaited (an existing key fails the transaction: never an overwrite).
pub fn add(store: &IdbObjectStore, value: &JsValue, op: &'static str) -> Result<()> {
    store.add(value).map(drop).map_err(js_error(op))
}

/// `delete(key)`, not awaited.
pub fn delete(store: &IdbObjectStore, key: &JsValue, op: &'static str) -> Result<()> {
    store.delete(key).map(drop).map_err(js_error(op))
}

/// An index of a store in scope.
pub fn index(store: &IdbObjectStore, name: &str, op: &'static str) -> Result<IdbIndex> {
    store.index(name).map_err(js_error(op))
}

/// `index.getAll(range, limit)` as a vector.
pub async fn get_all(index: &IdbIndex, range: &IdbKeyRange, limit: Option<u32>, op: &'static str) -> Result<Vec<JsValue>> {
    let made = match limit {
        Some(l) => index.get_all_with_key_and_limit(range, l),
        None => index.get_all_with_key(range),
    };
    Ok(Array::from(&request(made, op)?.await?).to_vec())
}

/// `store.getAll(range, limit)` as a vector (`None` range: from the start).
pub async fn get_all_in_store(store: &IdbObjectStore, range: Option<&IdbKeyRange>, limit: u32, op: &'static str) -> Result<Vec<JsValue>> {
    let range: JsValue = range.map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
    Ok(Array::from(&request(store.get_all_with_key_and_limit(&range, limit), op)?.await?).to_vec())
}

/// `index.count(range)`, not yet awaited.
pub fn count(index: &IdbIndex, range: &IdbKeyRange, op: &'static str) -> Result<Request> {
    request(index.count_with_key(range), op)
}

/// `[lower, upper]` (both included).
pub fn bound(lower: &JsValue, upper: &JsValue) -> Result<IdbKeyRange> {
    IdbKeyRange::bound(lower, upper).map_err(js_error("building a key range"))
}

/// `(-inf, upper)` (upper excluded).
pub fn below(upper: &JsValue) -> Result<IdbKeyRange> {
    IdbKeyRange::upper_bound_with_open(upper, true).map_err(js_error("building a key range"))
}

/// `(lower, +inf)` (lower excluded).
pub fn above(lower: &JsValue) -> Result<IdbKeyRange> {
    IdbKeyRange::lower_bound_with_open(lower, true).map_err(js_error("building a key range"))
}

/// Up to `limit` values of `range`, walking the index backwards (newest first).
pub async fn last_values(index: &IdbIndex, range: &IdbKeyRange, limit: Option<u32>, op: &'static str) -> Result<Vec<JsValue>> {
    let req = index.open_cursor_with_range_and_direction(range, IdbCursorDirection::Prev).map_err(js_error(op))?;
    let mut out = Vec::new();
    loop {
        let cursor = Request::new(&req, op).await?;
        let Ok(cursor) = cursor.dyn_into::<IdbCursorWithValue>() else { return Ok(out) };
        out.push(cursor.value().map_err(js_error(op))?);
        if limit.is_some_and(|l| out.len() as u32 >= l) {
            return Ok(out);
        }
        cursor.continue_().map_err(js_error(op))?;
    }
}
