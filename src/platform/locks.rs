//! Web Locks (`navigator.locks`) at the boundary: requesting a lock (queued, or stealing it),
//! holding it until the handle is dropped, and listing which locks are held.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::timer::{within, Notify};
use super::{get, global, set};

/// The lock manager, if this context has one.
fn manager() -> Option<JsValue> {
    let locks = get(&get(&global(), "navigator"), "locks");
    get(&locks, "request").is_function().then_some(locks)
}

/// True where Web Locks exist.
pub fn available() -> bool {
    manager().is_some()
}

/// A lock request: granted or waiting in the lock's queue. Dropping it releases the lock (or
/// leaves the queue): each holder releases only its own.
pub struct Lock {
    granted: Rc<Cell<bool>>,
    settled: Rc<Cell<bool>>,
    release: Function,
    controller: Option<web_sys::AbortController>,
}

impl Lock {
    /// The lock is ours.
    pub fn granted(&self) -> bool {
        self.granted.get()
    }

    /// The request is over: released, aborted, refused, or stolen by another context.
    pub fn settled(&self) -> bool {
        self.settled.get()
    }

    /// Held right now: granted and not stolen.
    pub fn held(&self) -> bool {
        self.granted() && !self.settled()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.granted.get() {
            if let Some(c) = &self.controller {
                c.abort();
            }
        }
        // Resolves the promise the grant callback returned: the browser releases the lock.
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

/// Asks for the exclusive lock `name`; `steal` takes it from its holder at once. `on_change`
/// is notified when it is granted and when the request settles. `None` without Web Locks (or
/// when the request throws).
pub fn request(name: &str, steal: bool, on_change: &Rc<Notify>) -> Option<Lock> {
    let locks = manager()?;
    let mut resolve = None;
    let hold = Promise::new(&mut |res, _rej| resolve = Some(res));
    let release = resolve?;
    let granted = Rc::new(Cell::new(false));
    let settled = Rc::new(Cell::new(false));
    let callback = {
        let (granted, wake) = (granted.clone(), Rc::downgrade(on_change));
        Closure::once_into_js(move |_lock: JsValue| -> JsValue {
            granted.set(true);
            if let Some(w) = wake.upgrade() {
                w.notify();
            }
            hold.into() // held until `release` is called
        })
    };
    let options = Object::new();
    // A stealing request cannot be aborted (and need not be: it is granted at once).
    let controller = if steal { None } else { web_sys::AbortController::new().ok() };
    if let Some(c) = &controller {
        set(&options, "signal", &c.signal());
    }
    if steal {
        set(&options, "steal", &JsValue::TRUE);
    }
    let request = get(&locks, "request").dyn_into::<Function>().ok()?;
    let promise = request.call3(&locks, &JsValue::from_str(name), &options, &callback).ok()?;
    {
        let (settled, wake) = (settled.clone(), Rc::downgrade(on_change));
        wasm_bindgen_futures::spawn_local(async move {
            let _ = super::adopt(&promise).await;
            settled.set(true);
            if let Some(w) = wake.upgrade() {
                w.notify();
            }
        });
    }
    Some(Lock { granted, settled, release, controller })
}

/// What `navigator.locks.query()` says about the locks held in this origin.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// The names of the locks held right now.
    Names(Vec<String>),
    /// No Web Locks here, or they refuse to work (`query()` is missing, throws or rejects, as in
    /// an opaque-origin frame): whether a context lives cannot be known from locks, ever.
    Unavailable,
    /// Web Locks are there but `query()` gave no answer within a second (a stalled main thread, a
    /// thawing page): whether a context lives is unknown right now.
    Unknown,
}

/// The most held locks read from a snapshot (a few per context; far more is not a snapshot).
const MAX_LOCKS_READ: u32 = 100_000;

/// The locks held right now in this origin, as far as that can be known.
pub async fn held_names() -> Held {
    let Some(locks) = manager() else { return Held::Unavailable };
    let Ok(query) = get(&locks, "query").dyn_into::<Function>() else { return Held::Unavailable };
    let Ok(p) = query.call0(&locks) else { return Held::Unavailable };
    match within(1_000, super::adopt(&p)).await {
        None => Held::Unknown,
        Some(Err(_)) => Held::Unavailable,
        // Read through catching lookups: a wrapped `query()` may answer with Proxies that throw.
        Some(Ok(snapshot)) => {
            let held = get(&snapshot, "held");
            match js_sys::Reflect::get(&held, &JsValue::from_str("length")).ok().and_then(|n| n.as_f64()) {
                Some(n) if n.is_finite() && n >= 0.0 => Held::Names(
                    (0..n.min(f64::from(MAX_LOCKS_READ)) as u32)
                        .filter_map(|i| js_sys::Reflect::get_u32(&held, i).ok())
                        .filter_map(|l| get(&l, "name").as_string())
                        .collect(),
                ),
                _ => Held::Unavailable,
            }
        }
    }
}
