//! `stats()` as the API returns it (counts, health, persistence, storage) and `subscribe()`:
//! subscribers hear the current stats at once, then every change, here or in another context.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::JsValue;

use super::Shared;
use crate::domain::health::{judge, Signals, Thresholds};
use crate::domain::stats::{Stats, StorageEstimate};
use crate::domain::{Error, Result};
use crate::platform::channel::Message;
use crate::platform::timer::sleep;
use crate::platform::{call1, is_online, mono, now, storage};

/// How long `persisted()` and `estimate()` answers are reused.
const PLATFORM_CACHE_MS: f64 = 5_000.0;

/// `persisted()` and `estimate()` answers, and when (monotonic) they were asked.
type PlatformCache = Option<(f64, Option<bool>, Option<StorageEstimate>)>;

/// Turns stats into the API's object (set by the bindings: only they build API objects).
pub type View = fn(&Stats) -> JsValue;

/// The subscribers of one outbox.
#[derive(Default)]
pub struct Subscribers {
    list: RefCell<Vec<(u32, Function)>>,
    next_id: Cell<u32>,
    dirty: Cell<bool>,
    running: Cell<bool>,
    last: RefCell<Option<Stats>>,
    broadcast_due: Cell<bool>,
    broadcast_cooldown: Cell<bool>,
    platform: RefCell<PlatformCache>,
    view: Cell<Option<View>>,
}

/// The full stats of `user`: the store's counts, plus health, persistence and storage.
pub async fn stats(shared: &Shared, user: &str) -> Result<Stats> {
    let mut s = shared.store.stats(user).await?;
    if let Some((_, message, at)) = shared.pass_failures.borrow().iter().find(|(u, ..)| u == user) {
        s.show_failure(message, *at);
    }
    let cfg = &shared.config;
    let started = shared.user().as_deref() == Some(user);
    let signals =
        Signals { online: is_online(), started, gave_up: s.gave_up, failed_in_a_row: s.failed_in_a_row, oldest_pending_at: s.oldest_unsynced_at, now: now() };
    s.health = judge(signals, Thresholds { failing_after: cfg.failing_after, stalled_after_ms: cfg.stalled_after_ms });
    let cached = *shared.subscribers.platform.borrow();
    let (persisted, estimate) = match cached {
        Some((at, p, e)) if mono() - at < PLATFORM_CACHE_MS => (p, e),
        _ => {
            let (p, e) = (storage::persisted().await, storage::estimate().await);
            *shared.subscribers.platform.borrow_mut() = Some((mono(), p, e));
            (p, e)
        }
    };
    s.persisted = persisted;
    s.storage = estimate;
    s.batch_events = cfg.batch_endpoint.as_ref().map(|_| shared.batch.get().get());
    Ok(s)
}

/// Events waiting (pending, processing, retrying) from which subscriber refreshes are spaced out.
const LARGE_BACKLOG: u64 = 1_000;

impl Subscribers {
    /// Sets how stats become the API's object.
    pub fn set_view(&self, view: View) {
        self.view.set(Some(view));
    }

    fn call(shared: &Shared, f: &Function, s: &Stats) {
        let Some(view) = shared.subscribers.view.get() else { return };
        // A throwing subscriber is the app's bug; it must not stop the outbox or other subscribers.
        if let Err(e) = call1(f, &view(s)) {
            shared.log.warn(|| format!("a subscribe() callback threw: {e}"));
        }
    }

    /// Adds a subscriber; it hears the current stats soon (only it), then every change.
    pub fn add(&self, shared: &Rc<Shared>, callback: Function) -> u32 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        self.list.borrow_mut().push((id, callback.clone()));
        let shared = shared.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let subscribed = || shared.subscribers.list.borrow().iter().any(|(i, _)| *i == id);
            loop {
                let session = shared.session();
                let Some(user) = session.user else { return };
                match stats(&shared, &user).await {
                    // Read for a session no longer current (`stop()`, `start()` meanwhile): again.
                    Ok(_) if !shared.is_current(session.generation) => {}
                    Ok(s) if subscribed() => return Self::call(&shared, &callback, &s),
                    // Storage stuck behind another tab's transaction: the first callback must
                    // still come once it frees up, however quiet the app (once
                    // it was dropped, and nothing came until some count changed).
                    Err(Error::TimedOut(..)) if subscribed() && !shared.is_closing() => sleep(1_000).await,
                    _ => return,
                }
            }
        });
        id
    }

    /// Forgets the stats last delivered (the session changed).
    pub fn forget_last(&self) {
        self.last.borrow_mut().take();
    }

    /// Removes a subscriber.
    pub fn remove(&self, id: u32) {
        self.list.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// Recomputes the current user's stats and tells subscribers if they differ from what they
    /// saw last. Bursts coalesce into one read.
    pub fn changed(&self, shared: &Rc<Shared>) {
        self.dirty.set(true);
        if self.running.get() || self.list.borrow().is_empty() {
            return;
        }
        self.running.set(true);
        let shared = shared.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let me = &shared.subscribers;
            while me.dirty.replace(false) {
                let session = shared.session();
                let Some(user) = session.user else { break };
                let started = mono();
                let backlog = match stats(&shared, &user).await {
                    // Read for a session no longer current: never shown (its `start()` reads again).
                    Ok(_) if !shared.is_current(session.generation) => 0,
                    Ok(s) => {
                        let backlog = s.pending + s.processing + s.retrying;
                        me.deliver(&shared, s);
                        backlog
                    }
                    Err(e) => {
                        shared.log.debug(|| format!("stats for subscribers unavailable: {e}"));
                        0
                    }
                };
                // Counting a large backlog takes time (an index count is linear in IndexedDB:
                // ~120 ms for 10,000 pending): while one drains, refresh at most every ten
                // readings' worth, so subscribers never take more than a tenth of the time. A
                // small queue is shown as it changes (a slow reading there is the storage
                // estimate, not the count, and the last change must not wait seconds).
                if me.dirty.get() && backlog >= LARGE_BACKLOG {
                    sleep(((mono() - started) * 10.0).min(2_000.0) as u64).await;
                }
            }
            me.running.set(false);
        });
    }

    fn deliver(&self, shared: &Shared, s: Stats) {
        if self.last.borrow().as_ref() == Some(&s) {
            return;
        }
        *self.last.borrow_mut() = Some(s.clone());
        // Clone the list: a callback may subscribe or unsubscribe. One unsubscribed by an earlier
        // callback of this round is not called (as with DOM listeners: after `off()`, never again).
        let list: Vec<_> = self.list.borrow().clone();
        for (id, f) in list {
            if self.list.borrow().iter().any(|(i, _)| *i == id) {
                Self::call(shared, &f, &s);
            }
        }
    }

    /// Tells other contexts, at most every 100 ms (a draining backlog changes state per event).
    pub fn broadcast(&self, shared: &Rc<Shared>) {
        let Some(user) = shared.user() else { return };
        if self.broadcast_cooldown.replace(true) {
            self.broadcast_due.set(true);
            return;
        }
        shared.post(&Message::Changed { user });
        let weak = Rc::downgrade(shared);
        wasm_bindgen_futures::spawn_local(async move {
            sleep(100).await;
            if let Some(shared) = weak.upgrade() {
                shared.subscribers.broadcast_cooldown.set(false);
                if shared.subscribers.broadcast_due.replace(false) {
                    shared.subscribers.broadcast(&shared);
                }
            }
        });
    }
}
