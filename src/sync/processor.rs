//! The seed's `OutboxProcessorService` for the browser: while this context leads its user's
//! uploads, a loop runs a pass every `processingIntervalMs`, at once after a save or when the
//! network returns; cleanup every `cleanupIntervalMs`.
//!
//! A pass: recover stale events -> claim a batch (one transaction) -> upload with at most
//! `maxConcurrent` requests in flight, outside any transaction, claiming the next batch as soon as
//! the queue runs dry while the last claim was full -> record results as they arrive (group
//! commit: those that arrive during a write go into the next one).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::leader::Leadership;
use super::signal::{first, join_all, Gate, Notify};
use super::Shared;
use crate::domain::config::MAX_TIMER_MS;
use crate::domain::entry::ProgressEntry;
use crate::domain::event::OutboxEvent;
use crate::domain::retry::{decide, Decision};
use crate::domain::time::to_iso8601;
use crate::domain::{Error, Result};
use crate::platform::{get, global, is_online, now, set};
use crate::store::{Outcome, Recorded};

/// What one pass did (`processNow()` resolves with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Whose events (`null` when no user is started and nothing ran).
    pub user_id: Option<String>,
    /// The pass ran in another context (the uploader of this user), at this one's request.
    pub delegated: bool,
    /// The platform reported offline: no network work was tried.
    pub offline: bool,
    /// Stale `processing` events put back in the queue.
    pub stale_reset: u32,
    /// Due retries put back in the queue.
    pub promoted: u32,
    /// Events claimed.
    pub claimed: u32,
    /// Acknowledged by the server (or completed because their entry was gone).
    pub completed: u32,
    /// Failed, retry scheduled.
    pub retrying: u32,
    /// Failed for good.
    pub gave_up: u32,
    /// Claimed but handed back unsent (logout or user switch mid-pass).
    pub released: u32,
}

const REPORT_FIELDS: [&str; 8] = ["staleReset", "promoted", "claimed", "completed", "retrying", "gaveUp", "released", "offline"];

impl PassReport {
    fn counts(&self) -> [u32; 7] {
        [self.stale_reset, self.promoted, self.claimed, self.completed, self.retrying, self.gave_up, self.released]
    }

    /// The report as a plain JS object (what `processNow()` resolves with).
    pub fn to_js(&self) -> JsValue {
        let o: JsValue = js_sys::Object::new().into();
        set(&o, "userId", &self.user_id.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL));
        set(&o, "delegated", &JsValue::from_bool(self.delegated));
        for (k, v) in REPORT_FIELDS.iter().zip(self.counts()) {
            set(&o, k, &JsValue::from_f64(v as f64));
        }
        set(&o, "offline", &JsValue::from_bool(self.offline));
        o
    }

    /// Reads a report sent by another context (missing fields count as 0).
    pub fn from_js(v: &JsValue) -> PassReport {
        let n = |k: &str| get(v, k).as_f64().unwrap_or(0.0) as u32;
        PassReport {
            user_id: get(v, "userId").as_string(),
            delegated: get(v, "delegated").as_bool().unwrap_or(false),
            offline: get(v, "offline").as_bool().unwrap_or(false),
            stale_reset: n("staleReset"),
            promoted: n("promoted"),
            claimed: n("claimed"),
            completed: n("completed"),
            retrying: n("retrying"),
            gave_up: n("gaveUp"),
            released: n("released"),
        }
    }
}

/// Runs one pass for `user` under session `generation`. The caller holds the pass gate.
pub async fn run_pass(shared: &Rc<Shared>, user: &str, generation: u64) -> Result<PassReport> {
    let (cfg, log, store) = (&shared.config, shared.log, &shared.store);
    let mut report = PassReport { user_id: Some(user.to_owned()), ..PassReport::default() };

    let recovered = store.recover_stale(user, now(), cfg.stale_after_ms as i64, &shared.in_flight()).await?;
    if !recovered.is_empty() {
        report.stale_reset = recovered.len() as u32;
        let ids: Vec<&str> = recovered.iter().map(|e| e.id.as_str()).collect();
        log.info(|| format!("reset {} stale events of user {user} (processing > {} ms): {}", ids.len(), cfg.stale_after_ms, ids.join(", ")));
        shared.changed();
    }
    if !is_online() {
        report.offline = true;
        log.debug(|| format!("offline: pass for user {user} skips uploads until the network returns"));
        return Ok(report);
    }

    let pass = Pass {
        shared,
        user,
        generation,
        queue: RefCell::new(VecDeque::new()),
        report: RefCell::new(report),
        released: RefCell::new(Vec::new()),
        results: RefCell::new(Vec::new()),
        results_ready: Notify::default(),
        workers_left: Cell::new(cfg.max_concurrent as usize),
        more: Cell::new(true),
        claiming: Gate::default(),
        failure: RefCell::new(None),
    };
    let mut tasks: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = Vec::with_capacity(cfg.max_concurrent as usize + 1);
    for _ in 0..cfg.max_concurrent {
        tasks.push(Box::pin(upload_worker(&pass, shared)));
    }
    tasks.push(Box::pin(recorder(&pass, shared)));
    join_all(tasks).await;

    let Pass { report, released, failure, .. } = pass;
    let mut report = report.into_inner();
    let released = released.into_inner();
    if !released.is_empty() {
        report.released = store.release(&released).await?;
        log.info(|| format!("user {user} logged out or switched mid-pass: {} claimed events handed back unsent", released.len()));
    }
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    if report.claimed == 0 {
        log.debug(|| format!("pass for user {user}: nothing due"));
    }
    shared.changed();
    Ok(report)
}

/// One pass's work, shared by its upload workers. Claims are streamed: when the queue runs dry
/// and the last claim was a full batch, the first idle worker claims the next batch while the
/// others are still uploading, so a backlog drains with every upload slot busy.
struct Pass<'a> {
    shared: &'a Rc<Shared>,
    user: &'a str,
    generation: u64,
    queue: RefCell<VecDeque<(OutboxEvent, ProgressEntry)>>,
    report: RefCell<PassReport>,
    released: RefCell<Vec<(String, u32)>>,
    /// Upload results waiting for the recorder.
    results: RefCell<Vec<(OutboxEvent, Decision, i64, ProgressEntry)>>,
    results_ready: Notify,
    workers_left: Cell<usize>,
    /// The last claim was a full batch: there may be more.
    more: Cell<bool>,
    claiming: Gate,
    failure: RefCell<Option<Error>>,
}

impl Pass<'_> {
    /// Claims the next batch into the queue. `false`: nothing left to do in this pass.
    async fn refill(&self) -> bool {
        let _turn = self.claiming.enter().await;
        if !self.queue.borrow().is_empty() {
            return true;
        }
        if !self.more.get() || !self.shared.is_current(self.generation) {
            return false;
        }
        let (shared, user) = (self.shared, self.user);
        let (cfg, log) = (&shared.config, shared.log);
        let claim = match shared.store.claim(user, now(), cfg.batch_size).await {
            Ok(c) => c,
            Err(e) => {
                self.more.set(false);
                self.failure.borrow_mut().get_or_insert(e);
                return false;
            }
        };
        let n = claim.items.len() as u32;
        self.more.set(n >= cfg.batch_size);
        if claim.quarantined > 0 {
            log.warn(|| format!("{} unreadable event records were marked failed and left aside (not deleted)", claim.quarantined));
        }
        let first = {
            let mut r = self.report.borrow_mut();
            r.promoted += claim.promoted;
            let first = r.claimed == 0;
            r.claimed += n;
            first
        };
        if n == 0 {
            return false;
        }
        if first {
            log.info(|| format!("pass started for user {user} (batch size {}): {n} events claimed", cfg.batch_size));
        } else {
            log.info(|| format!("pass for user {user} continues: {n} more events claimed"));
        }
        shared.changed();
        for (event, entry) in claim.items {
            log.info(|| format!("event {} claimed (attempt {} of {}) for entry {}", event.id, event.attempt_count, event.max_attempts, event.entity_id));
            match entry {
                Some(entry) => self.queue.borrow_mut().push_back((event, entry)),
                None => match shared.store.complete_orphan(&event.id, now()).await {
                    Ok(Recorded::Applied(_)) => {
                        self.report.borrow_mut().completed += 1;
                        log.info(|| format!("event {} completed without upload: entry {} no longer exists locally", event.id, event.entity_id));
                    }
                    Ok(Recorded::Dropped) => {}
                    Err(e) => {
                        self.failure.borrow_mut().get_or_insert(e);
                    }
                },
            }
        }
        true
    }
}

/// One upload slot: takes events off the pass's queue (claiming more when it runs dry) until
/// the pass has nothing left. Results go to the pass's recorder; the slot moves on at once.
async fn upload_worker(pass: &Pass<'_>, shared: &Rc<Shared>) {
    let (cfg, log) = (&shared.config, shared.log);
    let (user, generation) = (pass.user, pass.generation);
    loop {
        let next = pass.queue.borrow_mut().pop_front();
        let Some((event, entry)) = next else {
            if pass.refill().await {
                continue;
            }
            break;
        };
        if !shared.is_current(generation) {
            pass.released.borrow_mut().push((event.id.clone(), event.attempt_count));
            continue;
        }
        log.info(|| format!("uploading event {} (entry {}, attempt {}) to {}", event.id, entry.id, event.attempt_count, shared.transport.endpoint));
        let still_current = || shared.is_current(generation);
        shared.taking_off(&event.id);
        let Some(outcome) = shared.transport.upload(&event.id, &entry, user, &still_current).await else {
            shared.landed(&event.id);
            pass.released.borrow_mut().push((event.id.clone(), event.attempt_count));
            continue;
        };
        let at = now();
        let decision = decide(&outcome, event.attempt_count, event.max_attempts, &cfg.retry, at);
        pass.results.borrow_mut().push((event, decision, at, entry));
        pass.results_ready.notify();
    }
    pass.workers_left.set(pass.workers_left.get() - 1);
    pass.results_ready.notify();
}

/// Group commit of upload results: one writer per pass takes every result that has arrived
/// and records them in one transaction, while the upload slots keep uploading. (One
/// transaction per result capped a drain near the browser's ~1 ms per readwrite commit.)
async fn recorder(pass: &Pass<'_>, shared: &Rc<Shared>) {
    let log = shared.log;
    loop {
        let batch = std::mem::take(&mut *pass.results.borrow_mut());
        if batch.is_empty() {
            if pass.workers_left.get() == 0 {
                return;
            }
            pass.results_ready.notified().await;
            continue;
        }
        let items: Vec<Outcome<'_>> =
            batch.iter().map(|(e, decision, at, entry)| Outcome { event_id: &e.id, attempt: e.attempt_count, decision, at: *at, entry: Some(entry) }).collect();
        let written = shared.store.record_many(&items, Some(&shared.instance_id)).await;
        for (i, (event, decision, at, _)) in batch.iter().enumerate() {
            shared.landed(&event.id);
            match written.as_ref().map(|r| r.get(i)) {
                Ok(Some(Recorded::Applied(e))) => {
                    let mut r = pass.report.borrow_mut();
                    match decision {
                        Decision::Complete { backend_id } => {
                            r.completed += 1;
                            log.info(|| {
                                format!(
                                    "event {} completed: entry {} stored with backend id {backend_id} ({} ms after saving)",
                                    e.id,
                                    e.entity_id,
                                    at - e.created_at
                                )
                            });
                        }
                        Decision::Retry { at: next, message } => {
                            r.retrying += 1;
                            log.info(|| {
                                format!(
                                    "event {} failed ({message}): attempt {} of {}, next attempt at {}",
                                    e.id,
                                    e.attempt_count,
                                    e.max_attempts,
                                    to_iso8601(*next)
                                )
                            });
                        }
                        Decision::GiveUp { message } => {
                            r.gave_up += 1;
                            log.warn(|| {
                                format!(
                                    "event {} failed and gave up ({message}); entry {} is kept; resetForRetry([\"{}\"]) sends it again",
                                    e.id, e.entity_id, e.id
                                )
                            });
                        }
                    }
                }
                Ok(_) => log.debug(|| format!("event {}: result of attempt {} arrived after the event moved on; ignored", event.id, event.attempt_count)),
                // The event stays `processing`; stale recovery retries it (same Idempotency-Key).
                Err(e) => log.warn(|| format!("event {}: could not record the upload result: {e}", event.id)),
            }
        }
        shared.changed();
    }
}

/// An event listener to remove on drop: (target, event name, callback).
type Listener = (web_sys::EventTarget, &'static str, Closure<dyn FnMut()>);

/// The running processor. Dropping it stops it: no new pass starts, in-flight uploads finish
/// and are recorded, leadership is given up, timers and listeners are removed.
#[must_use = "dropping the handle stops the processor"]
pub struct Running {
    cancelled: Rc<Cell<bool>>,
    wake: Rc<Notify>,
    listeners: Vec<Listener>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancelled.set(true);
        self.wake.notify();
        for (target, event, listener) in self.listeners.drain(..) {
            let _ = target.remove_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        }
    }
}

fn listen(target: &JsValue, event: &'static str, f: impl FnMut() + 'static) -> Option<Listener> {
    let target = target.clone().dyn_into::<web_sys::EventTarget>().ok()?;
    let listener = Closure::<dyn FnMut()>::new(f);
    target.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref()).ok()?;
    Some((target, event, listener))
}

/// Starts the processor for the current session: it competes for leadership of `user`'s
/// uploads and runs the processing loop while it leads.
pub fn spawn(shared: Rc<Shared>, user: String, generation: u64) -> Running {
    let cancelled = Rc::new(Cell::new(false));
    let wake = Rc::new(Notify::default());
    shared.set_wake(Some(wake.clone()));
    let mut listeners = Vec::new();
    let w = wake.clone();
    listeners.extend(listen(&global(), "online", move || w.notify()));
    // Page Lifecycle: a page about to be frozen gives leadership up so others need not wait.
    let document = crate::platform::get(&global(), "document");
    if !document.is_undefined() {
        let s = Rc::downgrade(&shared);
        listeners.extend(listen(&document, "freeze", move || {
            if let Some(s) = s.upgrade() {
                s.freezing();
            }
        }));
    }
    wasm_bindgen_futures::spawn_local(campaign(shared, user, generation, cancelled.clone(), wake.clone()));
    Running { cancelled, wake, listeners }
}

async fn campaign(shared: Rc<Shared>, user: String, generation: u64, cancelled: Rc<Cell<bool>>, wake: Rc<Notify>) {
    let cfg = &shared.config;
    let log = shared.log;
    log.info(|| {
        format!("processor started for user {user} (every {} ms, batch {}, {} concurrent)", cfg.processing_interval_ms, cfg.batch_size, cfg.max_concurrent)
    });
    let mut leadership = Leadership::new(shared.clone(), &user, generation);
    while !cancelled.get() {
        if !leadership.acquire(&cancelled, &wake).await {
            break;
        }
        lead(&shared, &user, generation, &cancelled, &wake, &leadership).await;
        leadership.release().await;
        if !cancelled.get() {
            log.info(|| format!("no longer the uploader for user {user}; waiting to take over again"));
        }
    }
    log.info(|| format!("processor stopped for user {user}"));
}

/// The processing loop, while this context leads.
async fn lead(shared: &Rc<Shared>, user: &str, generation: u64, cancelled: &Cell<bool>, wake: &Notify, leadership: &Leadership) {
    let cfg = &shared.config;
    let log = shared.log;
    let mut next_cleanup = now();
    loop {
        {
            let _turn = shared.gate.enter().await;
            if cancelled.get() {
                return;
            }
            if !leadership.renew(now()).await {
                log.warn(|| format!("another context took over the uploads of user {user}"));
                return;
            }
            if let Err(e) = run_pass(shared, user, generation).await {
                log.warn(|| format!("pass for user {user} failed: {e}"));
            }
            if now() >= next_cleanup && !cancelled.get() {
                match shared.store.cleanup(now(), cfg.retention_ms).await {
                    Ok(n) => {
                        log.info(|| format!("cleanup: deleted {n} completed events older than {} ms", cfg.retention_ms));
                        if n > 0 {
                            shared.changed();
                        }
                    }
                    Err(e) => log.warn(|| format!("cleanup failed: {e}")),
                }
                next_cleanup = now() + cfg.cleanup_interval_ms as i64;
            }
        }
        if cancelled.get() || leadership.is_lost() {
            return;
        }
        if shared.take_step_down() {
            log.info(|| format!("hidden or freezing: handing the uploads of user {user} to another context"));
            return;
        }
        let until_cleanup = (next_cleanup - now()).max(0) as u64;
        let delay = cfg.processing_interval_ms.min(until_cleanup).clamp(1, MAX_TIMER_MS) as u32;
        first(TimeoutFuture::new(delay), wake.notified()).await;
    }
}
