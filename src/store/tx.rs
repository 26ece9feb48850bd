//! Transactions: opening them (with `durability`), finishing them, and mapping their errors.
//!
//! Discipline (idb#18, rexie#36): inside a transaction we await nothing but its own requests,
//! or it auto-commits when the event loop turns. A write transaction whose Rust code fails is
//! aborted explicitly, so a half-done write is never committed.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbObjectStore, IdbTransaction};

use super::idb::{classify, js_error};
use crate::domain::{Error, Result};
use crate::platform::set;

#[wasm_bindgen]
extern "C" {
    // `IDBDatabase.transaction(names, mode, { durability })`: web-sys only exposes the options
    // argument behind `--cfg=web_sys_unstable_apis`, so bind the method directly.
    type IdbDatabaseWithOptions;
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(this: &IdbDatabaseWithOptions, names: &Array, mode: &str, options: &Object) -> Result<IdbTransaction, JsValue>;
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `readonly`.
    Read,
    /// `readwrite` with `durability: "relaxed"`: for bookkeeping whose loss in a power cut is
    /// redone safely (a completion lost means one more upload, deduplicated by its key).
    Write,
}

/// How a transaction ended: committed, or aborted with the browser's reason.
type Ending = Result<(), Option<web_sys::DomException>>;

#[derive(Default)]
struct EndingSlot {
    ending: Option<Ending>,
    waker: Option<Waker>,
    /// The first failed request's error: browsers differ in what `transaction.error` says.
    first_error: Option<web_sys::DomException>,
}

/// Resolves when the transaction commits or aborts (an unhandled request error always ends in
/// `abort`); the reason reported is the first failed request's error.
struct Done {
    slot: Rc<RefCell<EndingSlot>>,
    _on_complete: Closure<dyn FnMut()>,
    _on_abort: Closure<dyn FnMut()>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Done {
    fn listen(raw: &IdbTransaction) -> Done {
        let slot = Rc::new(RefCell::new(EndingSlot::default()));
        let settle = |slot: Rc<RefCell<EndingSlot>>, ending: Box<dyn Fn() -> Ending>| {
            move || {
                let result = ending();
                let mut s = slot.borrow_mut();
                if s.ending.is_none() {
                    s.ending = Some(result);
                }
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        };
        let on_complete = Closure::<dyn FnMut()>::new(settle(slot.clone(), Box::new(|| Ok(()))));
        let (tx, errors) = (raw.clone(), slot.clone());
        let on_abort = Closure::<dyn FnMut()>::new(settle(slot.clone(), Box::new(move || Err(errors.borrow_mut().first_error.take().or_else(|| tx.error())))));
        let errors = slot.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let error = event.target().and_then(|t| t.dyn_into::<web_sys::IdbRequest>().ok()).and_then(|r| r.error().ok().flatten());
            let mut s = errors.borrow_mut();
            if s.first_error.is_none() {
                s.first_error = error;
            }
        });
        raw.set_oncomplete(Some(on_complete.as_ref().unchecked_ref()));
        raw.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
        raw.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Done { slot, _on_complete: on_complete, _on_abort: on_abort, _on_error: on_error }
    }
}

impl Future for Done {
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

/// A transaction plus the handle needed to abort it from any error path.
pub struct Tx {
    // Listening from the start: a request failing before `finish` still settles it.
    done: Done,
    raw: IdbTransaction,
    operation: &'static str,
}

impl Tx {
    /// Opens a transaction over `stores`.
    pub fn begin(db: &IdbDatabase, stores: &[&str], mode: Mode, operation: &'static str) -> Result<Tx> {
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let options = Object::new();
        let mode_name = match mode {
            Mode::Read => "readonly",
            Mode::Write => {
                set(&options, "durability", &JsValue::from_str("relaxed"));
                "readwrite"
            }
        };
        let raw = db.unchecked_ref::<IdbDatabaseWithOptions>().transaction_with_options(&names, mode_name, &options).map_err(js_error(operation))?;
        Ok(Tx { done: Done::listen(&raw), raw, operation })
    }

    /// An object store in scope.
    pub fn store(&self, name: &str) -> Result<IdbObjectStore> {
        self.raw.object_store(name).map_err(js_error(self.operation))
    }

    /// Ends the transaction: on `Ok` waits for the commit (so the caller's result is durable
    /// when it returns), on `Err` aborts so nothing of it is stored.
    pub async fn finish<T>(self, result: Result<T>) -> Result<T> {
        match result {
            Ok(value) => {
                // Ask for the commit now instead of waiting for the event loop to notice.
                #[allow(deprecated)] // web-sys marks commit() deprecated; every current browser has it
                let _ = self.raw.commit();
                match self.done.await {
                    Ok(()) => Ok(value),
                    Err(Some(reason)) => Err(classify(self.operation, format!("{}: {}", reason.name(), reason.message()))),
                    Err(None) => Err(Error::Storage { operation: self.operation, detail: "transaction aborted".into() }),
                }
            }
            Err(e) => {
                let _ = self.raw.abort();
                Err(e)
            }
        }
    }
}
