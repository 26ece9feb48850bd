//! IndexedDB at the boundary: the `idb` crate makes every request (stores, indexes, cursors, key
//! ranges, opening, upgrades); this file adds what it lacks and keeps its errors out of sight.
//!
//! - [`Request`]: one non-generic future for every request, whatever idb type made it (idb's own
//!   futures are one type per request kind, each with channels: see README "Size").
//!   Dropping it before it settles unhooks its handlers, so no callback ever runs after it was
//!   dropped (a timed-out call, an aborted transaction).
//! - [`begin`]: transactions with a `durability` option (idb has none; web-sys only behind an
//!   unstable cfg), wrapped into `idb::Transaction`; dropping an unfinished one aborts it.
//! - [`error`]: maps an `idb::Error` into ours by hand (formatting it would link its Debug and
//!   string escaping: about 9 KB of wasm).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction};

use super::timer::Deadline;
use super::{describe_error, set};
use crate::domain::error::Written;
use crate::domain::{Error, Result};

/// Turns a browser error text (`Name: message`) into ours ([`Error::from_browser`]).
pub fn classify(operation: &'static str, detail: String) -> Error {
    Error::from_browser(operation, detail)
}

/// Maps a thrown JS value (a `DOMException` from IndexedDB) to our error.
pub fn js_error(operation: &'static str) -> impl Fn(JsValue) -> Error {
    move |e| classify(operation, describe_error(&e))
}

/// Maps an `idb::Error` to ours, reading the browser's exception it carries (never formatting
/// the idb error itself).
pub fn error(operation: &'static str) -> impl Fn(idb::Error) -> Error {
    move |e| {
        use idb::Error as E;
        let cause: Option<JsValue> = match e {
            E::DomException(d) => Some(d.into()),
            E::AddFailed(v)
            | E::ClearFailed(v)
            | E::CountFailed(v)
            | E::CursorAdvanceFailed(v)
            | E::CursorContinueFailed(v)
            | E::CursorKeyNotFound(v)
            | E::CursorPrimaryKeyNotFound(v)
            | E::CursorValueNotFound(v)
            | E::DeleteFailed(v)
            | E::GetAllFailed(v)
            | E::GetAllKeysFailed(v)
            | E::GetFailed(v)
            | E::GetKeyFailed(v)
            | E::IndexCreateFailed(v)
            | E::IndexDeleteFailed(v)
            | E::IndexedDbDeleteFailed(v)
            | E::IndexedDbNotFound(v)
            | E::IndexedDbOpenFailed(v)
            | E::IndexNotFound(v)
            | E::KeyRangeCreateFailed(v)
            | E::ObjectStoreCreateFailed(v)
            | E::ObjectStoreNotFound(v)
            | E::OpenCursorFailed(v)
            | E::TransactionAbortError(v)
            | E::TransactionCommitError(v)
            | E::TransactionOpenFailed(v)
            | E::UpdateFailed(v)
            | E::UnexpectedJsType(_, v) => Some(v),
            _ => None,
        };
        classify(operation, cause.map(|c| describe_error(&c)).unwrap_or_else(|| "the browser gave no reason".into()))
    }
}

/// Why a transaction that aborted did, when the browser aborted it (a write storage refused:
/// `QuotaExceededError`); `None` when the code aborted it, or it has not ended.
pub fn abort_cause(tx: &web_sys::IdbTransaction, operation: &'static str) -> Option<Error> {
    tx.error().map(|e| classify(operation, describe_error(&e.into())))
}

/// Did this error come from a connection that is gone (closed by the browser, its database
/// deleted)? Then reopening and running the call again is safe: nothing of it was stored.
pub fn connection_lost(e: &Error) -> bool {
    match e {
        Error::Storage { detail, .. } => {
            detail.starts_with("InvalidStateError") || detail.starts_with("UnknownError") || detail.contains("clos") || detail.contains("connection")
        }
        _ => false,
    }
}

#[derive(Default)]
struct Slot {
    done: Option<std::result::Result<JsValue, JsValue>>,
    waker: Option<Waker>,
}

/// Resolves with a request's `result`, or its `error`. Listens from creation: it may be created
/// right after the request and awaited later (within the same transaction).
pub struct Request {
    raw: IdbRequest,
    slot: Rc<RefCell<Slot>>,
    operation: &'static str,
    on_success: Closure<dyn FnMut()>,
    on_error: Closure<dyn FnMut()>,
}

impl Request {
    /// Starts listening to `raw` (a request just made, or a cursor request just continued).
    pub fn new(raw: IdbRequest, operation: &'static str) -> Request {
        let slot = Rc::new(RefCell::new(Slot::default()));
        let settle = |ok: bool| {
            let (slot, raw) = (slot.clone(), raw.clone());
            Closure::<dyn FnMut()>::new(move || {
                let value = if ok {
                    Ok(raw.result().unwrap_or(JsValue::UNDEFINED))
                } else {
                    Err(raw.error().ok().flatten().map(JsValue::from).unwrap_or(JsValue::NULL))
                };
                let mut s = slot.borrow_mut();
                s.done = Some(value);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            })
        };
        let (on_success, on_error) = (settle(true), settle(false));
        raw.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
        raw.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Request { raw, slot, operation, on_success, on_error }
    }

    /// Listens to a request made by idb (`Ok`), or reports why it could not be made.
    pub fn of<R: Into<IdbRequest>>(made: std::result::Result<R, idb::Error>, operation: &'static str) -> Result<Request> {
        made.map(|r| Request::new(r.into(), operation)).map_err(error(operation))
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

impl Drop for Request {
    fn drop(&mut self) {
        // Unhook only our own handlers: a cursor request is listened to again after `continue`.
        let ours = |current: Option<js_sys::Function>, mine: &Closure<dyn FnMut()>| current.is_some_and(|f| JsValue::from(f) == *mine.as_ref());
        if ours(self.raw.onsuccess(), &self.on_success) {
            self.raw.set_onsuccess(None);
        }
        if ours(self.raw.onerror(), &self.on_error) {
            self.raw.set_onerror(None);
        }
    }
}

/// Requests made together and awaited once: a transaction runs its requests in order, so when
/// the last one has succeeded every earlier one has too, and their results can be read. (A
/// failed request aborts the transaction, which fails every request after it: the wait then
/// reports the failure.) One future per round instead of one per request keeps the store's
/// async code small.
pub struct Round {
    last: Option<IdbRequest>,
    operation: &'static str,
}

/// A request of a [`Round`]; its value can be read once the round is done.
pub struct Asked(IdbRequest);

impl Asked {
    /// The request's result (`undefined` for a missing record).
    pub fn value(&self) -> JsValue {
        self.0.result().unwrap_or(JsValue::UNDEFINED)
    }

    /// The result of a `getAll`, as a vector.
    pub fn values(&self) -> Vec<JsValue> {
        self.value().dyn_into::<Array>().map(|a| a.to_vec()).unwrap_or_default()
    }

    /// The result of a `count`.
    pub fn count(&self) -> u64 {
        self.value().as_f64().unwrap_or(0.0) as u64
    }
}

impl Round {
    /// A new round for `operation` (named in errors).
    pub fn new(operation: &'static str) -> Round {
        Round { last: None, operation }
    }

    /// Adds a request made by idb (or reports why it could not be made).
    pub fn ask<R: Into<IdbRequest>>(&mut self, made: std::result::Result<R, idb::Error>) -> Result<Asked> {
        let r: IdbRequest = made.map_err(error(self.operation))?.into();
        self.last = Some(r.clone());
        Ok(Asked(r))
    }

    /// Waits until every request of the round has completed.
    pub async fn done(&mut self) -> Result<()> {
        match self.last.take() {
            // Already done (nothing may await between `ask` and `done`, but if something did, the
            // success event would be gone): its outcome is on the request.
            Some(r) if r.ready_state() == web_sys::IdbRequestReadyState::Done => match r.error() {
                Ok(Some(e)) => Err(classify(self.operation, describe_error(&e.into()))),
                _ => Ok(()),
            },
            Some(r) => Request::new(r, self.operation).await.map(drop),
            None => Ok(()),
        }
    }
}

#[wasm_bindgen]
extern "C" {
    // `IDBDatabase.transaction(names, mode, { durability })`: web-sys only exposes the options
    // argument behind `--cfg=web_sys_unstable_apis`, so bind the method directly.
    #[wasm_bindgen(extends = IdbDatabase)]
    type DatabaseWithOptions;
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(this: &DatabaseWithOptions, names: &Array, mode: &str, options: &Object) -> std::result::Result<IdbTransaction, JsValue>;
}

/// How a transaction is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `readonly`.
    Read,
    /// `readwrite`, `durability: "strict"`: flushed to disk before it reports complete. For health
    /// data (saves, edits, deletes).
    Strict,
    /// `readwrite`, `durability: "relaxed"`: bookkeeping whose loss in a power cut is redone
    /// safely (a completion lost means one more upload, deduplicated by its key).
    Relaxed,
}

/// How a transaction ended: committed, or aborted with the browser's reason.
type Ending = std::result::Result<(), Option<String>>;

#[derive(Default)]
struct EndingSlot {
    ending: Option<Ending>,
    waker: Option<Waker>,
    /// The first failed request's error: browsers differ in what `transaction.error` says.
    first_error: Option<String>,
    /// The empty transaction after a quota abort was opened ([`quota_turn`]).
    quota_turn: bool,
    /// The work inside the transaction ([`Tx::bounded`]), woken by the deadline.
    work: Option<Waker>,
}

/// The contract's bound on every call (CONTRACT §3: every call settles within 10 s), which no
/// transaction's deadline exceeds; calls keep to [`CALL_BOUND_MS`] under it.
pub const DEADLINE_MS: u32 = 10_000;

/// The bound a call keeps to: [`DEADLINE_MS`] less a margin, as timers fire late and a settled
/// promise reaches the app some tasks after it (a bound of exactly 10 s settled at 10.0 s in
/// Chromium and 10.3 s in Firefox; one of 9.5 s at up to 10.2 s in an idle Firefox page, whose
/// long timers fired up to 0.7 s late).
pub const CALL_BOUND_MS: u32 = DEADLINE_MS - 1_000;

/// A transaction still running this long before its deadline is aborted; one found committing
/// then is given until the deadline to end by itself.
const COMMIT_GRACE_MS: u32 = 1_000;

/// A transaction, its idb handle, and the listener of its end. Dropping it before it finished
/// aborts it (nothing of it is stored) and unhooks its handlers; so does its deadline.
pub struct Tx {
    raw: IdbTransaction,
    db: IdbDatabase,
    names: Array,
    tx: idb::Transaction,
    slot: Rc<RefCell<EndingSlot>>,
    committing: Cell<bool>,
    timed_out: Rc<Cell<bool>>,
    /// The deadline found it committing (or waiting with no request): it ended by the grace.
    unconfirmed: Rc<Cell<bool>>,
    mode: Mode,
    operation: &'static str,
    _handlers: [Closure<dyn FnMut(web_sys::Event)>; 3],
    _deadline: gloo_timers::callback::Timeout,
    _grace: Rc<RefCell<Option<gloo_timers::callback::Timeout>>>,
}

/// Opens a transaction over `stores`, ended by `by` at the latest (aborted a grace before it; one
/// found committing then is given the rest).
pub fn begin(db: &IdbDatabase, stores: &[&str], mode: Mode, operation: &'static str, by: Deadline) -> Result<Tx> {
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    let options = Object::new();
    let mode_name = match mode {
        Mode::Read => "readonly",
        Mode::Strict | Mode::Relaxed => {
            set(&options, "durability", &JsValue::from_str(if mode == Mode::Strict { "strict" } else { "relaxed" }));
            "readwrite"
        }
    };
    let raw = db.unchecked_ref::<DatabaseWithOptions>().transaction_with_options(&names, mode_name, &options).map_err(js_error(operation))?;
    let slot = Rc::new(RefCell::new(EndingSlot::default()));
    let end = |kind: u8| {
        let (slot, raw, db, names) = (slot.clone(), raw.clone(), db.clone(), names.clone());
        Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let mut s = slot.borrow_mut();
            if kind == 2 {
                // A request failed (the transaction aborts next, unless it was handled).
                if s.first_error.is_none() {
                    let error = event.target().and_then(|t| t.dyn_into::<IdbRequest>().ok()).and_then(|r| r.error().ok().flatten());
                    s.first_error = error.map(|e| describe_error(&e.into()));
                }
                return;
            }
            if kind == 1 {
                let why = s.first_error.take().or_else(|| raw.error().map(|e| describe_error(&e.into())));
                // Even when the deadline has already answered the call.
                quota_turn(&mut s, why.as_deref(), &db, &names);
                if s.ending.is_none() {
                    s.ending = Some(Err(why));
                }
            } else if s.ending.is_none() {
                s.ending = Some(Ok(()));
            }
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        })
    };
    let handlers = [end(0), end(1), end(2)];
    raw.set_oncomplete(Some(handlers[0].as_ref().unchecked_ref()));
    raw.set_onabort(Some(handlers[1].as_ref().unchecked_ref()));
    raw.set_onerror(Some(handlers[2].as_ref().unchecked_ref()));
    let timed_out = Rc::new(Cell::new(false));
    let unconfirmed = Rc::new(Cell::new(false));
    let grace: Rc<RefCell<Option<gloo_timers::callback::Timeout>>> = Rc::default();
    // With less than a grace left (a reopen took most of the call's bound), it is aborted at once.
    let left = by.left().min(u64::from(DEADLINE_MS)) as u32;
    let abort_at = left.saturating_sub(COMMIT_GRACE_MS);
    let deadline = {
        let (raw, timed_out, slot, grace, unconfirmed) = (raw.clone(), timed_out.clone(), slot.clone(), Rc::downgrade(&grace), unconfirmed.clone());
        gloo_timers::callback::Timeout::new(abort_at, move || {
            let give_up = move || {
                timed_out.set(true);
                // A transaction still queued behind another context's gets its abort event only
                // once it would have started (Chromium: 30 s later, when the other one ended); one
                // with no request pending has nothing else to fail. Its waiter learns now.
                let mut s = slot.borrow_mut();
                if s.ending.is_none() {
                    s.ending = Some(Err(None));
                }
                for w in [s.waker.take(), s.work.take()].into_iter().flatten() {
                    w.wake();
                }
            };
            if raw.abort().is_ok() {
                give_up();
                return;
            }
            // Already committing: its requests are done, and a commit that has begun is not cut
            // off, so its own end (complete or abort) is the answer, due at once (a timeout
            // reported here would tell the app that a stored save failed). The same state also
            // means a transaction with no requests that waits for its turn behind another
            // context's: nothing of it can be stored, and that one gives up after a grace.
            // Either way the call cannot tell which it was: it reports that it may have been
            // stored (a commit slower than the grace still lands).
            unconfirmed.set(true);
            if let Some(grace) = grace.upgrade() {
                *grace.borrow_mut() = Some(gloo_timers::callback::Timeout::new(left - abort_at, give_up));
            }
        })
    };
    Ok(Tx {
        tx: idb::Transaction::from(raw.clone()),
        raw,
        db: db.clone(),
        names,
        slot,
        committing: Cell::new(false),
        timed_out,
        unconfirmed,
        mode,
        operation,
        _handlers: handlers,
        _deadline: deadline,
        _grace: grace,
    })
}

impl Tx {
    /// An object store in scope.
    pub fn store(&self, name: &str) -> Result<idb::ObjectStore> {
        self.tx.object_store(name).map_err(error(self.operation))
    }

    /// Runs `work` inside the transaction and ends it: on `Ok` waits for its commit (so the
    /// caller's result is durable when it returns), on `Err` aborts so nothing of it is stored.
    ///
    /// The work is raced against the transaction's deadline. Aborting a transaction fails its
    /// pending requests, but one still queued behind another context's transaction has them fail
    /// only when it would have started (Firefox: when that one ends, however long it takes): the
    /// work is dropped at the deadline instead (its requests' handlers unhooked), and the call
    /// settles.
    ///
    /// The commit is left to IndexedDB (it commits once its requests are done), never asked for
    /// with `commit()`: after `commit()`, Firefox commits the other writes of a transaction whose
    /// first write failed (an entry saved without its event, or the reverse; seen in Firefox ESR
    /// here, tests/web/foundation.rs "written together or not at all"), where Chromium aborts.
    pub async fn run<'w, T>(&self, work: impl Future<Output = Result<T>> + 'w) -> Result<T> {
        // Boxed: one racing loop per output type, not per call site (smaller wasm).
        let mut work: Pin<Box<dyn Future<Output = Result<T>> + 'w>> = Box::pin(work);
        let result = std::future::poll_fn(|cx| match work.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending if self.deadline_passed(cx) => Poll::Ready(Err(self.timeout())),
            Poll::Pending => Poll::Pending,
        })
        .await;
        drop(work);
        self.end(result.is_ok()).await?;
        if let Err(Error::QuotaExceeded(why)) = &result {
            // An awaited request failed on the quota: its own handler woke the work before the
            // error reached the transaction's handler, which the abort and the drop unhook.
            quota_turn(&mut self.slot.borrow_mut(), Some(why), &self.db, &self.names);
        }
        result
    }

    /// Ends a transaction whose work is done (not generic: one copy): past the deadline, whatever
    /// the work met (its requests failed by the abort) is a timeout; after an error it aborts;
    /// otherwise it waits for the commit.
    async fn end(&self, ok: bool) -> Result<()> {
        if self.timed_out.get() {
            return Err(self.timeout());
        }
        if !ok {
            self.abort();
            return Ok(());
        }
        self.committing.set(true);
        match (Ended { slot: &self.slot }).await {
            _ if self.timed_out.get() => Err(self.timeout()),
            Ok(()) => Ok(()),
            Err(Some(reason)) => Err(classify(self.operation, reason)),
            Err(None) => Err(Error::Storage { operation: self.operation, detail: "AbortError: the transaction was aborted".into() }),
        }
    }

    /// Aborts the transaction unless it has ended or is committing (nothing of it is stored).
    fn abort(&self) {
        if self.slot.borrow().ending.is_none() && !self.committing.get() {
            let _ = self.raw.abort();
        }
    }

    /// Whether the deadline ended the transaction; if not, wakes `cx` when it does.
    fn deadline_passed(&self, cx: &Context<'_>) -> bool {
        if self.timed_out.get() {
            return true;
        }
        self.slot.borrow_mut().work = Some(cx.waker().clone());
        false
    }

    /// The error of a transaction its deadline ended, saying what it may have left stored.
    fn timeout(&self) -> Error {
        let written = match self.mode {
            Mode::Read => Written::Read,
            _ if self.unconfirmed.get() => Written::Maybe,
            _ => Written::Nothing,
        };
        Error::TimedOut(self.operation, written)
    }
}

struct Ended<'a> {
    slot: &'a RefCell<EndingSlot>,
}

impl Future for Ended<'_> {
    type Output = Ending;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ending> {
        let mut s = self.slot.borrow_mut();
        match s.ending.take() {
            Some(e) => Poll::Ready(e),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Unfinished and never committed: an error path, or a call given up on (timeout).
        self.abort();
        // A request that failed on the quota aborts the transaction after its handlers are gone.
        let mut s = self.slot.borrow_mut();
        let why = s.first_error.clone();
        quota_turn(&mut s, why.as_deref(), &self.db, &self.names);
        drop(s);
        self.raw.set_oncomplete(None);
        self.raw.set_onabort(None);
        self.raw.set_onerror(None);
    }
}

/// After a transaction aborted on the quota (`why`), once per transaction: Firefox runs the next
/// readwrite transaction of that connection in a "cleanup" mode that refuses every put
/// ("InvalidStateError: A mutation operation was attempted on a database that did not allow
/// mutations"), so the next save would fail even once space is back. An empty one, opened now
/// before any other, takes that turn.
fn quota_turn(s: &mut EndingSlot, why: Option<&str>, db: &IdbDatabase, names: &Array) {
    if !s.quota_turn && why.is_some_and(|w| w.starts_with("QuotaExceededError")) {
        s.quota_turn = true;
        let _ = db.unchecked_ref::<DatabaseWithOptions>().transaction_with_options(names, "readwrite", &Object::new());
    }
}

/// `[a, b]` as an IndexedDB key.
pub fn key2(a: &JsValue, b: f64) -> JsValue {
    Array::of2(a, &JsValue::from_f64(b)).into()
}

/// `[a, b, c]` as an IndexedDB key.
pub fn key3(a: &JsValue, b: f64, c: f64) -> JsValue {
    Array::of3(a, &JsValue::from_f64(b), &JsValue::from_f64(c)).into()
}

/// `[lower, upper]`, both included.
pub fn bound(lower: &JsValue, upper: &JsValue) -> Result<idb::Query> {
    idb::KeyRange::bound(lower, upper, None, None).map(idb::Query::from).map_err(error("building a key range"))
}

/// `(lower, +inf)`, lower excluded.
pub fn above(lower: &JsValue) -> Result<idb::Query> {
    idb::KeyRange::lower_bound(lower, Some(true)).map(idb::Query::from).map_err(error("building a key range"))
}

/// `(-inf, upper)`, upper excluded.
pub fn below(upper: &JsValue) -> Result<idb::Query> {
    idb::KeyRange::upper_bound(upper, Some(true)).map(idb::Query::from).map_err(error("building a key range"))
}

/// `getAll` on an index or store: the records, in key order.
pub async fn all(made: std::result::Result<idb::request::GetAllStoreRequest, idb::Error>, operation: &'static str) -> Result<Vec<JsValue>> {
    let found = Request::of(made, operation)?.await?;
    Ok(found.dyn_into::<Array>().map(|a| a.to_vec()).unwrap_or_default())
}

/// A `count` request's number.
pub async fn count(made: std::result::Result<idb::request::CountStoreRequest, idb::Error>, operation: &'static str) -> Result<u64> {
    Ok(Request::of(made, operation)?.await?.as_f64().unwrap_or(0.0) as u64)
}

/// Walks a cursor request (`open_cursor` on an index or store), newest or oldest first as it was
/// opened, calling `each(value)` until it returns `false` or the range ends.
pub async fn walk(
    made: std::result::Result<idb::request::OpenCursorStoreRequest, idb::Error>,
    operation: &'static str,
    mut each: impl FnMut(JsValue) -> bool,
) -> Result<()> {
    let request: IdbRequest = made.map_err(error(operation))?.into();
    loop {
        let found = Request::new(request.clone(), operation).await?;
        let Ok(cursor) = idb::Cursor::try_from(found) else { return Ok(()) };
        if !each(cursor.value().map_err(error(operation))?) {
            return Ok(());
        }
        cursor.next(None).map_err(error(operation))?;
    }
}
