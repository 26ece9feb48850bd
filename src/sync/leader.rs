//! One uploader per user among every tab, worker and service worker of an origin that uses the
//! same database.
//!
//! - **Web Locks** (`navigator.locks`, lock `progress-outbox:{dbName}:{userId}`): the leader holds
//!   the lock; the others wait in its queue. A closed or crashed tab releases it at once, and the
//!   next in line starts a pass immediately.
//! - **Lease** (no Web Locks): a record `{owner, beatAt}` in the `meta` store, taken and renewed at
//!   the start of every pass in one transaction; another context takes it over once it has not
//!   been renewed for the takeover time.
//! - **Heartbeat**: the leader writes that same record at every pass and every recorded result.
//!   A frozen leader (a discarded or suspended tab still holding the lock) stops beating; a
//!   follower that has seen no beat for the takeover time steals the lock (`steal: true`).
//! - **Visible pages come first**: a visible follower asks (`WantLead`); a leader that is a hidden
//!   page (throttled timers) or a worker releases the lock and queues again. Pages also release
//!   it on the Page Lifecycle `freeze` event.
//!
//! The lock is per user, not per database: claims are per user, so two tabs logged in as two
//! different users can both upload without ever touching the same event, and neither starves.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::signal::{first, Notify};
use super::Shared;
use crate::domain::time::TimeMs;
use crate::platform::{get, global, now, set};

/// The Web Locks manager (`navigator.locks`), if this context has one.
fn lock_manager() -> Option<JsValue> {
    let locks = get(&get(&global(), "navigator"), "locks");
    get(&locks, "request").is_function().then_some(locks)
}

/// True in a page whose document is hidden (workers have no document: never hidden).
pub fn is_hidden() -> bool {
    let doc = get(&global(), "document");
    !doc.is_undefined() && get(&doc, "visibilityState").as_string().as_deref() == Some("hidden")
}

/// True in a page whose document is visible: only such contexts ask for leadership.
pub fn is_visible_page() -> bool {
    let doc = get(&global(), "document");
    !doc.is_undefined() && get(&doc, "visibilityState").as_string().as_deref() == Some("visible")
}

/// Should a leader here hand over to a visible page that asks? Yes if this is a hidden page
/// (throttled timers) or a worker (a service worker is killed when idle; the page is the better
/// uploader while it is open).
pub fn yields_to_visible_pages() -> bool {
    get(&global(), "document").is_undefined() || is_hidden()
}

/// How long without a heartbeat before a follower takes over: longer than any pause a live
/// leader makes (an interval, plus a request that runs to its timeout), with a margin.
pub fn takeover_after_ms(processing_interval_ms: u64, request_timeout_ms: u64) -> i64 {
    (2 * processing_interval_ms + request_timeout_ms + 1_000) as i64
}

/// A Promise and the function that resolves it.
fn deferred() -> (Promise, Function) {
    let mut resolve = None;
    let promise = Promise::new(&mut |res, _rej| resolve = Some(res));
    (promise, resolve.expect("the Promise executor runs synchronously"))
}

struct Request {
    controller: Option<web_sys::AbortController>,
    granted: Rc<Cell<bool>>,
    settled: Rc<Cell<bool>>,
    release: Function,
}

/// This context's place in the leadership of one user's uploads.
pub struct Leadership {
    shared: Rc<Shared>,
    generation: u64,
    user: String,
    name: String,
    locks: Option<JsValue>,
    held: Option<Request>,
}

impl Leadership {
    /// Prepares (does not request) leadership of `user`'s uploads for session `generation`.
    pub fn new(shared: Rc<Shared>, user: &str, generation: u64) -> Leadership {
        let name = lock_name(&shared.config.db_name, user);
        Leadership { locks: lock_manager(), shared, generation, user: user.to_owned(), name, held: None }
    }

    fn takeover_ms(&self) -> i64 {
        takeover_after_ms(self.shared.config.processing_interval_ms, self.shared.config.request_timeout_ms)
    }

    fn request(&self, locks: &JsValue, steal: bool, wake: &Rc<Notify>) -> Option<Request> {
        let (release_promise, release) = deferred();
        let granted = Rc::new(Cell::new(false));
        let settled = Rc::new(Cell::new(false));
        let callback = {
            let (granted, wake) = (granted.clone(), wake.clone());
            let (shared, generation) = (Rc::downgrade(&self.shared), self.generation);
            Closure::once_into_js(move |_lock: JsValue| -> JsValue {
                granted.set(true);
                // Leader from this instant: processNow() must never see our own lock as another's.
                if let Some(s) = shared.upgrade() {
                    s.set_leader(generation);
                }
                wake.notify();
                release_promise.into() // held until `release` is called
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
        let request = get(locks, "request").dyn_into::<Function>().ok()?;
        let promise = request.call3(locks, &JsValue::from_str(&self.name), &options, &callback).ok()?;
        {
            // Settles when we release, when the request is aborted, or when someone steals it.
            let (settled, wake) = (settled.clone(), wake.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = JsFuture::from(Promise::resolve(&promise)).await;
                settled.set(true);
                wake.notify();
            });
        }
        Some(Request { controller, granted, settled, release })
    }

    /// Waits until this context leads `user`'s uploads. `false` if `cancelled` first.
    /// While waiting it does a follower's duties: asks a hidden leader to step down when this
    /// context is visible, and takes over from a leader whose heartbeat stopped.
    pub async fn acquire(&mut self, cancelled: &Cell<bool>, wake: &Rc<Notify>) -> bool {
        let cfg = &self.shared.config;
        let me = self.shared.instance_id.clone();
        let waiting_since = now();
        let Some(locks) = self.locks.clone() else {
            return self.acquire_lease(cancelled, wake).await;
        };
        let mut req = match self.request(&locks, false, wake) {
            Some(r) => r,
            None => return self.acquire_lease(cancelled, wake).await,
        };
        let mut stealing = false;
        loop {
            if req.granted.get() {
                self.shared.set_lock_release(Some(req.release.clone()));
                self.held = Some(req);
                let _ = self.shared.store.beat(&self.user, &me, now()).await;
                self.shared.log.info(|| format!("this context now uploads for user {} (lock {})", self.user, self.name));
                return true;
            }
            if cancelled.get() {
                if let Some(c) = &req.controller {
                    c.abort();
                }
                let _ = req.release.call0(&JsValue::UNDEFINED);
                self.shared.clear_leader(self.generation);
                return false;
            }
            if req.settled.get() {
                // Aborted or refused without being granted (or our steal was stolen): queue again.
                stealing = false;
                match self.request(&locks, false, wake) {
                    Some(r) => req = r,
                    None => return false,
                }
            }
            if is_visible_page() {
                self.shared.post(&super::channel::Message::WantLead { user: self.user.clone() });
            }
            if let (false, Ok(Some(beat))) = (stealing, self.shared.store.read_beat(&self.user).await) {
                let silent_for = now() - beat.at.max(waiting_since);
                if beat.owner != me && silent_for > self.takeover_ms() {
                    self.shared.log.warn(|| format!("the uploader of user {} has shown no life for {silent_for} ms (frozen tab?): taking over", self.user));
                    if let Some(c) = &req.controller {
                        c.abort();
                    }
                    match self.request(&locks, true, wake) {
                        Some(r) => req = r,
                        None => return false,
                    }
                    stealing = true; // granted at once; wait for the callback
                }
            }
            first(TimeoutFuture::new(cfg.processing_interval_ms.clamp(1, 60_000) as u32), wake.notified()).await;
        }
    }

    async fn acquire_lease(&mut self, cancelled: &Cell<bool>, wake: &Rc<Notify>) -> bool {
        let me = self.shared.instance_id.clone();
        loop {
            if cancelled.get() {
                return false;
            }
            if self.shared.store.try_lease(&self.user, &me, now(), self.takeover_ms()).await.unwrap_or(false) {
                self.shared.set_leader(self.generation);
                self.shared.log.info(|| format!("this context now uploads for user {} (lease; no Web Locks here)", self.user));
                return true;
            }
            let interval = self.shared.config.processing_interval_ms.clamp(1, 60_000) as u32;
            first(TimeoutFuture::new(interval), wake.notified()).await;
        }
    }

    /// At the start of each pass: still the leader? Renews the lease or writes the heartbeat.
    pub async fn renew(&self, at: TimeMs) -> bool {
        let me = &self.shared.instance_id;
        if !self.shared.leads(self.generation) {
            return false; // given away (page freeze)
        }
        match &self.held {
            Some(req) => {
                if req.settled.get() {
                    return false; // stolen
                }
                // The beat also tells us if someone stole the lock while this context could not
                // run (a hung tab): the thief wrote its own beat on taking over.
                self.shared.store.renew_beat(&self.user, me, at).await.unwrap_or(true) && !req.settled.get()
            }
            None => self.shared.store.try_lease(&self.user, me, at, self.takeover_ms()).await.unwrap_or(false),
        }
    }

    /// True once the lock was taken from us (or given away on freeze).
    pub fn is_lost(&self) -> bool {
        !self.shared.leads(self.generation) || self.held.as_ref().is_some_and(|r| r.settled.get())
    }

    /// Gives leadership up (lock released, or lease deleted).
    pub async fn release(&mut self) {
        self.shared.clear_leader(self.generation);
        self.shared.set_lock_release(None);
        match self.held.take() {
            Some(req) => {
                let _ = req.release.call0(&JsValue::UNDEFINED);
            }
            None if self.locks.is_none() => {
                let _ = self.shared.store.release_lease(&self.user, &self.shared.instance_id).await;
            }
            None => {}
        }
    }
}

fn lock_name(db_name: &str, user: &str) -> String {
    format!("progress-outbox:{db_name}:{user}")
}

/// Is `user`'s upload lock (or lease) held by another context right now? (Call only when this
/// context does not lead: our own lock shows in the same list.)
pub async fn held_elsewhere(shared: &Shared, user: &str) -> bool {
    let name = lock_name(&shared.config.db_name, user);
    if let Some(locks) = lock_manager() {
        let Ok(query) = get(&locks, "query").dyn_into::<Function>() else { return false };
        let Ok(p) = query.call0(&locks) else { return false };
        let Ok(snapshot) = JsFuture::from(Promise::resolve(&p)).await else { return false };
        let held = Array::from(&get(&snapshot, "held"));
        return held.iter().any(|l| get(&l, "name").as_string().as_deref() == Some(name.as_str()));
    }
    let takeover = takeover_after_ms(shared.config.processing_interval_ms, shared.config.request_timeout_ms);
    matches!(shared.store.read_beat(user).await, Ok(Some(b)) if b.owner != shared.instance_id && now() - b.at <= takeover)
}
