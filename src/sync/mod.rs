//! Getting events to the server: the processor (passes, timers, wake-ups), the `fetch`
//! transport, and the state both share with the API (current user, subscribers).

pub mod channel;
pub mod leader;
pub mod processor;
pub mod signal;
pub mod transport;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::JsValue;

use crate::domain::config::Config;
use crate::domain::stats::Stats;
use crate::platform::{describe_error, Log};
use crate::store::records::stats_for_js;
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

/// A `processNow()` waiting for the leader's answer: (request id, answer slot, wake-up).
type PendingPass = (String, Rc<RefCell<Option<JsValue>>>, Rc<Notify>);

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
    /// This `Outbox` instance (heartbeat and lease owner).
    pub instance_id: String,
    /// Cross-context messages (set once the shared state exists).
    channel: RefCell<Option<channel::Channel>>,
    /// The session generation whose processor leads its user's uploads (0: none).
    leading: Cell<u64>,
    /// A visible context asked, or the page is freezing: a hidden leader should step down.
    step_down: Cell<bool>,
    /// `processNow()` calls waiting for the leader's answer.
    pending_passes: RefCell<Vec<PendingPass>>,
    /// Releases the held upload lock (set while leading with Web Locks).
    lock_release: RefCell<Option<js_sys::Function>>,
    /// A throttled "changed" broadcast is due.
    broadcast_due: Cell<bool>,
    broadcast_cooldown: Cell<bool>,
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
            instance_id: crate::platform::new_id(),
            channel: RefCell::new(None),
            leading: Cell::new(0),
            step_down: Cell::new(false),
            pending_passes: RefCell::new(Vec::new()),
            broadcast_due: Cell::new(false),
            lock_release: RefCell::new(None),
            broadcast_cooldown: Cell::new(false),
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

    /// Joins the database's broadcast channel. Messages are handled through a weak reference,
    /// so the channel never keeps a closed outbox alive.
    pub fn join_channel(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let ch = channel::Channel::open(&self.config.db_name, move |m| {
            if let Some(shared) = weak.upgrade() {
                shared.on_message(m);
            }
        });
        *self.channel.borrow_mut() = Some(ch);
    }

    /// Leaves the channel.
    pub fn leave_channel(&self) {
        self.channel.borrow_mut().take();
    }

    /// Tells the other contexts.
    pub fn post(&self, message: &channel::Message) {
        if let Some(ch) = self.channel.borrow().as_ref() {
            ch.post(message);
        }
    }

    fn on_message(self: &Rc<Self>, m: channel::Message) {
        use channel::Message;
        let mine = |user: &str| self.user().as_deref() == Some(user);
        match m {
            Message::Saved { user } if mine(&user) => {
                if self.is_leader() {
                    self.wake();
                }
                self.changed_here();
            }
            Message::Changed { user } if mine(&user) => self.changed_here(),
            Message::WantLead { user } if mine(&user) && self.is_leader() && leader::yields_to_visible_pages() => {
                self.log.debug(|| format!("a visible page wants to upload for {user}; this context steps down"));
                self.request_step_down();
            }
            Message::PassRequest { id, user } if mine(&user) && self.is_leader() => {
                let shared = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let _turn = shared.gate.enter().await;
                    let session = shared.session();
                    let report = match session.user {
                        Some(u) if u == user && shared.is_leader() => processor::run_pass(&shared, &u, session.generation).await.ok(),
                        _ => None,
                    };
                    if let Some(r) = report {
                        shared.post(&Message::PassDone { id, report: r.to_js() });
                    }
                });
            }
            Message::PassDone { id, report } => {
                if let Some((_, slot, done)) = self.pending_passes.borrow().iter().find(|(i, _, _)| *i == id) {
                    *slot.borrow_mut() = Some(report);
                    done.notify();
                }
            }
            _ => {}
        }
    }

    /// True while this context leads the current user's uploads.
    pub fn is_leader(&self) -> bool {
        let g = self.leading.get();
        g != 0 && self.is_current(g)
    }

    /// The processor of session `generation` now leads.
    pub fn set_leader(&self, generation: u64) {
        self.leading.set(generation);
    }

    /// The processor of session `generation` no longer leads (a newer one may already).
    pub fn clear_leader(&self, generation: u64) {
        if self.leading.get() == generation {
            self.leading.set(0);
            self.step_down.set(false);
        }
    }

    /// Asks the running loop to give leadership up after its current pass.
    pub fn request_step_down(&self) {
        self.step_down.set(true);
        self.wake();
    }

    /// Remembers how to release the upload lock (or forgets it: `None`).
    pub fn set_lock_release(&self, release: Option<js_sys::Function>) {
        *self.lock_release.borrow_mut() = release;
    }

    /// The page is being frozen: release the lock now, synchronously (a frozen page runs no
    /// more code), and have the loop step down when it runs again.
    pub fn freezing(&self) {
        if let Some(release) = self.lock_release.borrow_mut().take() {
            let _ = release.call0(&JsValue::UNDEFINED);
            // No longer the leader from this instant: when the page thaws, its loop must not
            // run another pass on a lock it gave away.
            self.leading.set(0);
            self.log.info(|| "page freezing: upload lock released for another context".into());
        }
        self.request_step_down();
    }

    /// True while the processor of session `generation` leads.
    pub fn leads(&self, generation: u64) -> bool {
        self.leading.get() == generation
    }

    /// Consumes a pending step-down request.
    pub fn take_step_down(&self) -> bool {
        self.step_down.replace(false)
    }

    /// Registers a `processNow()` waiting for the leader's answer to request `id`.
    pub fn await_pass(&self, id: &str) -> (Rc<RefCell<Option<JsValue>>>, Rc<Notify>) {
        let slot = Rc::new(RefCell::new(None));
        let done = Rc::new(Notify::default());
        self.pending_passes.borrow_mut().push((id.to_owned(), slot.clone(), done.clone()));
        (slot, done)
    }

    /// Forgets request `id`.
    pub fn forget_pass(&self, id: &str) {
        self.pending_passes.borrow_mut().retain(|(i, _, _)| i != id);
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
                shared.call(&callback, &stats_for_js(&stats));
            }
        });
        id
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&self, id: u32) {
        self.observers.list.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// Something stored changed: refresh subscribers here and in every other context.
    pub fn changed(self: &Rc<Self>) {
        self.changed_here();
        self.broadcast_changed();
    }

    /// Tells other contexts, at most every 100 ms (a draining backlog changes state per event).
    fn broadcast_changed(self: &Rc<Self>) {
        let Some(user) = self.user() else { return };
        if self.broadcast_cooldown.replace(true) {
            self.broadcast_due.set(true);
            return;
        }
        self.post(&channel::Message::Changed { user });
        let weak = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(100).await;
            if let Some(shared) = weak.upgrade() {
                shared.broadcast_cooldown.set(false);
                if shared.broadcast_due.replace(false) {
                    shared.broadcast_changed();
                }
            }
        });
    }

    /// Recomputes the current user's stats and tells local subscribers if they differ from what
    /// they saw last. Bursts coalesce into one read.
    pub fn changed_here(self: &Rc<Self>) {
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
        let value = stats_for_js(&stats);
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
