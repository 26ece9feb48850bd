//! The outbox service behind the JS `Outbox` class: validates calls (with `domain` rules),
//! runs them against the store, and owns the processor and the session (current user).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Function;

use crate::domain::arg::Arg;
use crate::domain::config::Config;
use crate::domain::entry::{validate_save, validate_user_id, ProgressEntry, SaveArgs};
use crate::domain::event::OutboxEvent;
use crate::domain::query::{resolve_user, validate_events_query, validate_ids};
use crate::domain::stats::Stats;
use crate::domain::Result;
use gloo_timers::future::TimeoutFuture;

use crate::platform::{new_id, now, Log};
use crate::store::Store;
use crate::sync::channel::Message;
use crate::sync::leader;
use crate::sync::processor::{self, PassReport, Running};
use crate::sync::signal::first;
use crate::sync::transport::{TokenSource, Transport};
use crate::sync::Shared;

/// An open outbox.
pub struct OutboxCore {
    shared: Rc<Shared>,
    running: RefCell<Option<Running>>,
}

impl OutboxCore {
    /// Opens the database (creating or upgrading it) and prepares the processor.
    /// `on_version_change` is called when another tab's upgrade closed this connection.
    pub async fn open(config: Config, token: TokenSource, on_version_change: Option<Function>) -> Result<Rc<OutboxCore>> {
        let log = Log { level: config.log };
        let store = Store::open(&config.db_name, config.max_attempts, log).await?;
        let transport = Transport { endpoint: config.endpoint.clone(), token, timeout_ms: config.request_timeout_ms };
        let shared = Rc::new(Shared::new(store, config, transport, log));
        shared.join_channel();
        let core = Rc::new(OutboxCore { shared, running: RefCell::new(None) });
        {
            // Another tab's upgrade closed our connection: stop uploading (every call now
            // reports that the page must reload).
            let weak = Rc::downgrade(&core);
            core.shared.store.set_on_version_change(Box::new(move || {
                if let Some(core) = weak.upgrade() {
                    core.halt();
                    core.shared.leave_channel();
                }
                if let Some(f) = &on_version_change {
                    if let Err(e) = f.call0(&wasm_bindgen::JsValue::UNDEFINED) {
                        log.warn(|| format!("the onVersionChange callback threw: {}", crate::platform::describe_error(&e)));
                    }
                }
            }));
        }
        log.debug(|| format!("opened database \"{}\"", core.shared.store.name()));
        Ok(core)
    }

    fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// Login: makes `user` current and processes its events. Idempotent for the same user;
    /// another user switches (nothing more is uploaded for the previous one).
    pub fn start(&self, user: &Arg) -> Result<()> {
        let user = validate_user_id("start(userId)", user)?;
        self.shared.store.check_open()?;
        if self.shared.user().as_deref() == Some(user.as_str()) && self.running.borrow().is_some() {
            return Ok(());
        }
        self.halt();
        let generation = self.shared.set_user(Some(user.clone()));
        *self.running.borrow_mut() = Some(processor::spawn(self.shared.clone(), user, generation));
        self.shared.changed();
        Ok(())
    }

    /// Logout: no current user, no new uploads; in-flight ones finish and are recorded.
    pub fn stop(&self) {
        if let Some(user) = self.shared.user() {
            self.shared.log.info(|| format!("stop: user {user} logged out"));
        }
        self.halt();
    }

    fn halt(&self) {
        self.shared.set_wake(None);
        self.shared.set_user(None);
        // Dropping the handle cancels the loop's timers and listener.
        self.running.borrow_mut().take();
    }

    /// Validates and saves a weight, with its outbox event, in one transaction.
    pub async fn save_weight(&self, args: &SaveArgs) -> Result<ProgressEntry> {
        let shared = self.shared();
        // A closed or superseded database says so first, whatever else is wrong with the call.
        self.shared.store.check_open()?;
        let at = now();
        let input = validate_save(args, shared.user().as_deref(), at)?;
        let entry = ProgressEntry::new_weight(new_id(), &input, at);
        let event = OutboxEvent::for_entry(new_id(), &entry, input.priority, shared.config.max_attempts, at);
        shared.store.save(&entry, &event).await?;
        shared.post(&Message::Saved { user: entry.user_id.clone() });
        shared.log.info(|| {
            format!("entry {} saved ({} kg, user {}); outbox event {} created", entry.id, crate::domain::arg::fmt_num(entry.quantity), entry.user_id, event.id)
        });
        if shared.user().as_deref() == Some(entry.user_id.as_str()) {
            shared.wake();
        }
        // Other contexts took "saved" as their change notice: no second broadcast.
        shared.changed_here();
        Ok(entry)
    }

    /// Stats of `user` (default: the current user).
    pub async fn stats(&self, user: &Arg) -> Result<Stats> {
        // A closed or superseded database says so first, whatever else is wrong with the call.
        self.shared.store.check_open()?;
        let user = resolve_user("stats", user, self.shared.user().as_deref())?;
        self.shared.store.stats(&user).await
    }

    /// `events({ status, userId, limit })`, newest first.
    pub async fn events(&self, status: &Arg, user: &Arg, limit: &Arg) -> Result<Vec<OutboxEvent>> {
        // A closed or superseded database says so first, whatever else is wrong with the call.
        self.shared.store.check_open()?;
        let q = validate_events_query(status, user, limit, self.shared.user().as_deref())?;
        self.shared.store.events(&q.user_id, q.status, q.limit).await
    }

    /// Events processing for longer than `staleAfterMs`.
    pub async fn stale_events(&self, user: &Arg) -> Result<Vec<OutboxEvent>> {
        // A closed or superseded database says so first, whatever else is wrong with the call.
        self.shared.store.check_open()?;
        let user = resolve_user("staleEvents", user, self.shared.user().as_deref())?;
        self.shared.store.stale_events(&user, now(), self.shared.config.stale_after_ms as i64, &self.shared.in_flight()).await
    }

    /// Failed or stale events back to pending with 0 attempts; returns how many were reset.
    pub async fn reset_for_retry(&self, ids: &Arg) -> Result<u32> {
        // A closed or superseded database says so first, whatever else is wrong with the call.
        self.shared.store.check_open()?;
        let ids = validate_ids(ids)?;
        let shared = self.shared();
        let reset = shared.store.reset_for_retry(&ids, now(), shared.config.stale_after_ms as i64, &shared.in_flight()).await?;
        if !reset.is_empty() {
            shared.log.info(|| {
                format!("resetForRetry: {} events back to pending: {}", reset.len(), reset.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", "))
            });
            shared.wake();
            shared.changed();
        }
        Ok(reset.len() as u32)
    }

    /// Runs one pass for the current user now (after any pass already running). Only the
    /// uploader runs passes: in another context this asks the uploader and returns its report.
    pub async fn process_now(&self) -> Result<PassReport> {
        let shared = self.shared();
        shared.store.check_open()?;
        let Some(user) = shared.user() else { return Ok(PassReport::default()) };
        // Right after start() our own lock request may still be settling: give it a moment.
        for _ in 0..100 {
            if shared.user().as_deref() != Some(user.as_str()) {
                break;
            }
            if shared.is_leader() {
                let _turn = shared.gate.enter().await;
                let session = shared.session();
                return match session.user {
                    Some(u) if shared.is_leader() => processor::run_pass(shared, &u, session.generation).await,
                    _ => Ok(PassReport::default()),
                };
            }
            if leader::held_elsewhere(shared, &user).await && !shared.is_leader() {
                return Ok(self.delegate_pass(&user).await);
            }
            TimeoutFuture::new(10).await;
        }
        Ok(PassReport { user_id: Some(user), ..PassReport::default() })
    }

    /// Asks the uploader of `user` (another context) for a pass and waits for its report.
    async fn delegate_pass(&self, user: &str) -> PassReport {
        let shared = self.shared();
        let id = new_id();
        let (slot, done) = shared.await_pass(&id);
        shared.post(&Message::PassRequest { id: id.clone(), user: user.to_owned() });
        let limit = (2 * shared.config.request_timeout_ms + 5_000).min(crate::domain::config::MAX_TIMER_MS) as u32;
        first(done.notified(), TimeoutFuture::new(limit)).await;
        shared.forget_pass(&id);
        let answer = slot.borrow_mut().take();
        let mut report = answer.map(|v| PassReport::from_js(&v)).unwrap_or_default();
        report.user_id = Some(user.to_owned());
        report.delegated = true;
        report
    }

    /// True while this context uploads for the current user.
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// Entries of `user` (default: current), newest measurement first.
    pub async fn entries(&self, user: &Arg) -> Result<Vec<ProgressEntry>> {
        // A closed or superseded database says so first, whatever else is wrong with the call.
        self.shared.store.check_open()?;
        let user = resolve_user("entries", user, self.shared.user().as_deref())?;
        self.shared.store.entries(&user).await
    }

    /// Adds a stats subscriber.
    pub fn subscribe(&self, callback: Function) -> u32 {
        self.shared.subscribe(callback)
    }

    /// Removes a stats subscriber.
    pub fn unsubscribe(&self, id: u32) {
        self.shared.unsubscribe(id)
    }

    /// The current user.
    pub fn current_user(&self) -> Option<String> {
        self.shared.user()
    }

    /// Stops processing and closes the database.
    pub fn close(&self) {
        self.halt();
        self.shared.leave_channel();
        self.shared.store.close();
    }

    /// Whether the connection still works (`Err` says why not).
    pub fn check_open(&self) -> Result<()> {
        self.shared.store.check_open()
    }
}

impl Drop for OutboxCore {
    fn drop(&mut self) {
        self.running.borrow_mut().take();
    }
}
