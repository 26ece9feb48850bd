//! Getting events to the server: the processor (passes, timers, wake-ups), the `fetch`
//! transport, and the state both share with the API (current user, subscribers).

pub mod processor;
pub mod signal;
pub mod transport;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::JsValue;

use crate::domain::config::Config;
use crate::domain::stats::Stats;
use crate::platform::{describe_error, to_js, Log};
use crate::store::Store;
use signal::{Gate, Notify};
use transport::Transport;

/// Who is logged in. `generation` changes at every `start(other)`/`stop()`, so work begun for
/// an earlier session can tell it is no longer wanted.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// The current user.
    pub user: Option<String>,
    /// Bumped at every change of user.
    pub generation: u64,
}

/// State shared by the API object, the processor loop and in-flight passes.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Options from `Outbox.open`.
    pub config: Config,
    /// HTTP.
    pub transport: Transport,
    /// Console output.
    pub log: Log,
    /// One pass at a time per `Outbox`.
    pub gate: Gate,
    session: RefCell<Session>,
    wake: RefCell<Option<Rc<Notify>>>,
    /// Events this outbox is uploading right now: alive, never "stale" however slow.
    in_flight: RefCell<Vec<String>>,
    observers: Observers,
}

#[derive(Default)]
struct Observers {
    list: RefCell<Vec<(u32, Function)>>,
    next_id: Cell<u32>,
    dirty: Cell<bool>,
    running: Cell<bool>,
    last: RefCell<Option<Stats>>,
}

impl Shared {
    /// Assembles the shared state.
    pub fn new(store: Store, config: Config, transport: Transport, log: Log) -> Self {
        Shared {
            store,
            config,
            transport,
            log,
            gate: Gate::default(),
            session: RefCell::new(Session::default()),
            wake: RefCell::new(None),
            in_flight: RefCell::new(Vec::new()),
            observers: Observers::default(),
        }
    }

    /// The current session.
    pub fn session(&self) -> Session {
        self.session.borrow().clone()
    }

    /// The current user.
    pub fn user(&self) -> Option<String> {
        self.session.borrow().user.clone()
    }

    /// True while `generation` is still the current session.
    pub fn is_current(&self, generation: u64) -> bool {
        self.session.borrow().generation == generation
    }

    /// Switches the session; returns the new generation.
    pub fn set_user(&self, user: Option<String>) -> u64 {
        let mut s = self.session.borrow_mut();
        s.user = user;
        s.generation += 1;
        s.generation
    }

    /// Marks an event as being uploaded by this outbox (until [`Shared::landed`]).
    pub fn taking_off(&self, event_id: &str) {
        self.in_flight.borrow_mut().push(event_id.to_owned());
    }

    /// The upload of an event is over (recorded or not).
    pub fn landed(&self, event_id: &str) {
        self.in_flight.borrow_mut().retain(|id| id != event_id);
    }

    /// Events this outbox is uploading now.
    pub fn in_flight(&self) -> Vec<String> {
        self.in_flight.borrow().clone()
    }

    /// Sets (or clears) the wake-up of the running processor loop.
    pub fn set_wake(&self, notify: Option<Rc<Notify>>) {
        *self.wake.borrow_mut() = notify;
    }

    /// Wakes the processor loop, if one runs (after a save, on `online`).
    pub fn wake(&self) {
        if let Some(n) = self.wake.borrow().as_ref() {
            n.notify();
        }
    }

    /// Adds a subscriber; it gets the current stats soon, then every change.
    pub fn subscribe(self: &Rc<Self>, callback: Function) -> u32 {
        let o = &self.observers;
        let id = o.next_id.get() + 1;
        o.next_id.set(id);
        o.list.borrow_mut().push((id, callback.clone()));
        // The newcomer has seen nothing yet: give it the current stats (only it).
        let shared = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Some(user) = shared.user() else { return };
            let Ok(stats) = shared.store.stats(&user).await else { return };
            let still_subscribed = shared.observers.list.borrow().iter().any(|(i, _)| *i == id);
            if still_subscribed {
                if let Ok(value) = to_js(&stats) {
                    shared.call(&callback, &value);
                }
            }
        });
        id
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&self, id: u32) {
        self.observers.list.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// Something stored changed: recompute the current user's stats and tell subscribers if
    /// they differ from what they saw last. Bursts coalesce into one read.
    pub fn changed(self: &Rc<Self>) {
        let o = &self.observers;
        o.dirty.set(true);
        if o.running.get() || o.list.borrow().is_empty() {
            return;
        }
        o.running.set(true);
        let shared = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let o = &shared.observers;
            while o.dirty.replace(false) {
                let Some(user) = shared.user() else { break };
                match shared.store.stats(&user).await {
                    Ok(stats) => shared.deliver(stats),
                    Err(e) => shared.log.debug(|| format!("stats for subscribers unavailable: {e}")),
                }
            }
            o.running.set(false);
        });
    }

    fn deliver(&self, stats: Stats) {
        let o = &self.observers;
        if o.last.borrow().as_ref() == Some(&stats) {
            return;
        }
        let Ok(value) = to_js(&stats) else { return };
        *o.last.borrow_mut() = Some(stats);
        // Clone the list: a callback may subscribe or unsubscribe.
        let list: Vec<Function> = o.list.borrow().iter().map(|(_, f)| f.clone()).collect();
        for f in list {
            self.call(&f, &value);
        }
    }

    fn call(&self, f: &Function, stats: &JsValue) {
        // A throwing subscriber is the app's bug; it must not stop the outbox or other subscribers.
        if let Err(e) = f.call1(&JsValue::UNDEFINED, stats) {
            self.log.warn(|| format!("a subscribe() callback threw: {}", describe_error(&e)));
        }
    }
}
