//! The outbox service behind the JS `Outbox` class: validates calls (with `domain` rules),
//! runs them against the store, and owns the processor and the session (current user).

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use js_sys::Function;

use crate::domain::arg::{fmt_num, Arg};
use crate::domain::config::Config;
use crate::domain::entry::{
    validate_id, validate_save, validate_update, validate_user_id, ProgressEntry, SaveArgs, SaveInput, SaveMethod, UpdateArgs, UpdateInput,
};
use crate::domain::error::Written;
use crate::domain::event::{Operation, OutboxEvent, StateKey};
use crate::domain::query::{resolve_user, validate_entries_query, validate_events_query, validate_ids};
use crate::domain::stats::{PassReport, Stats};
use crate::domain::time::TimeMs;
use crate::domain::{Error, Result};
use crate::platform::channel::Message;
use crate::platform::locks::Held;
use crate::platform::timer::{sleep, within, Deadline, Notify};
use crate::platform::{call0, mono, new_id, now, storage, Log};
use crate::store::quarantine::Quarantined;
use crate::store::Store;
use crate::sync::leader::lock_name;
use crate::sync::processor::{self, Running, Staleness};
use crate::sync::subscribers::{self, View};
use crate::sync::transport::Transport;
use crate::sync::Shared;

/// An open outbox.
pub struct OutboxCore {
    shared: Rc<Shared>,
    running: RefCell<Option<Running>>,
    /// This instance, while started: a started outbox uploads until `stop()` or `close()`, even
    /// when the app keeps no reference to it (wasm-bindgen frees a collected JS object, and
    /// dropping the core would end the processor silently).
    started: RefCell<Option<Rc<OutboxCore>>>,
}

impl OutboxCore {
    /// Opens the database (creating or upgrading it) and prepares the processor.
    /// `on_version_change` is called when another tab's upgrade closed this connection; `view`
    /// turns stats into the object subscribers get.
    pub async fn open(config: Config, transport: Transport, on_version_change: Option<Function>, view: View) -> Result<Rc<OutboxCore>> {
        let log = Log { level: config.log };
        if config.persist {
            storage::request_persistence();
        }
        let store = Store::open(&config.db_name, config.max_attempts, log).await?;
        let shared = Rc::new(Shared::new(store, config, transport, log));
        shared.subscribers.set_view(view);
        shared.hold_alive_lock();
        shared.join_channel();
        let core = Rc::new(OutboxCore { shared, running: RefCell::new(None), started: RefCell::new(None) });
        // Another tab's upgrade closed our connection: stop uploading (every call now says the
        // page must reload), and tell the app.
        let weak = Rc::downgrade(&core);
        core.shared.store.db().set_on_version_change(Box::new(move || {
            if let Some(core) = weak.upgrade() {
                core.halt();
                core.shared.leave_channel();
                // Claims whose results can no longer be recorded here must look abandoned to the
                // newer version once nothing of them is in flight: let the liveness lock go then.
                let shared = core.shared.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = within(shared.config.request_timeout_ms + 2_000, shared.passes_ended()).await;
                    shared.drop_alive_lock();
                });
            }
            if let Some(f) = &on_version_change {
                if let Err(e) = call0(f) {
                    log.warn(|| format!("the onVersionChange callback threw: {e}"));
                }
            }
        }));
        Ok(core)
    }

    /// `Ok` while calls may run; otherwise why not (closed, or superseded by a newer version).
    pub fn check_open(&self) -> Result<()> {
        if self.shared.is_closing() {
            return Err(Error::Closed);
        }
        self.shared.store.check_open()
    }

    /// Login: makes `user` current and processes its events. Idempotent for the same user;
    /// another user switches (nothing more is uploaded for the previous one).
    pub fn start(self: &Rc<Self>, user: &Arg) -> Result<()> {
        let user = validate_user_id("start(userId)", user)?;
        self.check_open()?;
        if self.shared.user().as_deref() == Some(user.as_str()) && self.running.borrow().is_some() {
            return Ok(());
        }
        self.halt();
        let generation = self.shared.set_user(Some(user.clone()));
        *self.running.borrow_mut() = Some(processor::spawn(self.shared.clone(), user, generation));
        *self.started.borrow_mut() = Some(self.clone());
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
        if self.shared.user().is_some() {
            self.shared.set_user(None);
        }
        // Dropping the handle cancels the loop's timers and listeners.
        self.running.borrow_mut().take();
        // Callers hold the core (a JS handle, or a callback's upgraded reference): never the last.
        let _kept = self.started.borrow_mut().take();
    }

    // Every call below is checked when it is made, not when its future first runs: the
    // arguments and the current user are read now (a user switch or a mutated options object
    // right after the call changes nothing), and only the storage work is left to the future.

    /// Validates a measurement now; the future saves it with its outbox event, in one transaction.
    pub fn save(self: &Rc<Self>, method: SaveMethod, args: &SaveArgs) -> Result<impl Future<Output = Result<ProgressEntry>> + 'static> {
        self.check_open()?;
        let at = now();
        let input = validate_save(method, args, self.shared.user().as_deref(), at)?;
        let (core, by) = (self.clone(), Deadline::from_now());
        Ok(async move { core.save_now(input, at, by).await })
    }

    async fn save_now(&self, input: SaveInput, at: TimeMs, by: Deadline) -> Result<ProgressEntry> {
        let shared = &self.shared;
        let entry = ProgressEntry::new(new_id(), &input, at);
        let event = OutboxEvent::new(new_id(), Operation::Create, &entry, input.priority, shared.config.max_attempts, at);
        shared.store.save(&entry, &event, by).await?;
        shared.log.info(|| {
            format!(
                "entry {} saved ({} {} {}, user {}); outbox event {} created",
                entry.id,
                entry.metric.name(),
                fmt_num(entry.quantity),
                entry.unit(),
                entry.user_id,
                event.id
            )
        });
        self.after_write(&entry.user_id);
        Ok(entry)
    }

    /// `update(entryId, { quantity, date })`.
    pub fn update(self: &Rc<Self>, id: &Arg, args: &UpdateArgs) -> Result<impl Future<Output = Result<ProgressEntry>> + 'static> {
        self.check_open()?;
        let id = validate_id("update(entryId)", id)?;
        let at = now();
        let input = validate_update(args, at)?;
        let (core, by) = (self.clone(), Deadline::from_now());
        Ok(async move { core.update_now(id, input, at, by).await })
    }

    async fn update_now(&self, id: String, input: UpdateInput, at: TimeMs, by: Deadline) -> Result<ProgressEntry> {
        let edit = self.shared.store.update(&id, input, self.shared.config.max_attempts, at, &|e| self.withdraw(e), by).await?;
        let how = if edit.folded { "folded into its unsent create" } else { "queued as an update" };
        self.shared.log.info(|| format!("entry {id} updated ({how}, event {})", edit.event_id.as_deref().unwrap_or("-")));
        self.after_write(&edit.entry.user_id);
        Ok(edit.entry)
    }

    /// `delete(entryId)`.
    pub fn delete(self: &Rc<Self>, id: &Arg) -> Result<impl Future<Output = Result<()>> + 'static> {
        self.check_open()?;
        let id = validate_id("delete(entryId)", id)?;
        let (core, by) = (self.clone(), Deadline::from_now());
        Ok(async move { core.delete_now(id, by).await })
    }

    async fn delete_now(&self, id: String, by: Deadline) -> Result<()> {
        let edit = self.shared.store.delete(&id, self.shared.config.max_attempts, now(), &|e| self.withdraw(e), by).await?;
        match &edit.event_id {
            Some(e) => self.shared.log.info(|| format!("entry {id} deleted; delete event {e} queued (kept as a tombstone until acknowledged)")),
            None => self.shared.log.info(|| format!("entry {id} deleted before anything of it was sent: removed, nothing to send")),
        }
        self.after_write(&edit.entry.user_id);
        Ok(())
    }

    /// An edit takes back an event this outbox claimed and has not started to send.
    fn withdraw(&self, e: &OutboxEvent) -> bool {
        e.claimed_by.as_deref() == Some(self.shared.instance_id.as_str()) && self.shared.withdraw(&e.id, e.claims)
    }

    fn after_write(&self, user: &str) {
        let shared = &self.shared;
        shared.post_saved(user);
        if shared.user().as_deref() == Some(user) {
            shared.wake();
        }
        // Other contexts took "saved" as their change notice: no second broadcast.
        shared.subscribers.changed(shared);
    }

    /// Stats of `user` (default: the current user).
    pub fn stats(&self, user: &Arg) -> Result<impl Future<Output = Result<Stats>> + 'static> {
        self.check_open()?;
        let user = resolve_user("stats", user, self.shared.user().as_deref())?;
        let shared = self.shared.clone();
        Ok(read_within("reading stats", async move { subscribers::stats(&shared, &user).await }))
    }

    /// `events({ status, userId, limit })`, newest first, and the records set aside.
    pub fn events(&self, status: &Arg, user: &Arg, limit: &Arg) -> Result<impl Future<Output = Result<(Vec<OutboxEvent>, Vec<Quarantined>)>> + 'static> {
        self.check_open()?;
        let q = validate_events_query(status, user, limit, self.shared.user().as_deref())?;
        let shared = self.shared.clone();
        Ok(read_within("listing events", async move { shared.store.events(&q.user_id, q.status, q.limit).await }))
    }

    /// Events processing for longer than `staleAfterMs` (or whose context is gone).
    pub fn stale_events(self: &Rc<Self>, user: &Arg) -> Result<impl Future<Output = Result<Vec<OutboxEvent>>> + 'static> {
        self.check_open()?;
        let user = resolve_user("staleEvents", user, self.shared.user().as_deref())?;
        let core = self.clone();
        Ok(read_within("listing stale events", async move { core.stale_events_now(&user).await }))
    }

    async fn stale_events_now(&self, user: &str) -> Result<Vec<OutboxEvent>> {
        // Reads only: records this version cannot read are left to the uploader's recovery.
        let (processing, _) = self.shared.store.in_state(user, StateKey::Processing).await?;
        let judge = Staleness::now().await;
        Ok(processing.into_iter().filter(|e| judge.of(&self.shared, e)).collect())
    }

    /// Failed or stale events back to pending with 0 attempts; returns how many were reset.
    pub fn reset_for_retry(self: &Rc<Self>, ids: &Arg) -> Result<impl Future<Output = Result<u32>> + 'static> {
        self.check_open()?;
        let ids = validate_ids(ids)?;
        let (core, by) = (self.clone(), Deadline::from_now());
        Ok(async move { core.reset_now(ids, by).await })
    }

    /// Reads which of the events are claimed, asks the Web Locks who is alive (up to 1 s, only if
    /// some are), then resets in one transaction, all within the call's bound.
    async fn reset_now(&self, ids: Vec<String>, by: Deadline) -> Result<u32> {
        if ids.is_empty() {
            // Nothing named, nothing to reset: no transaction to wait for behind another tab's.
            return Ok(0);
        }
        let shared = &self.shared;
        // The claims are read before the question: an answer judges only claims made before it
        // was asked. A claim made since (by a context opened after the question, so missing from
        // its answer, while this one was frozen, say) is left alone, as `recover_stale` does.
        let claimed = shared.store.processing_claims(&ids, by).await?;
        let judge = if claimed.is_empty() { None } else { Some(Staleness::now().await) };
        let stale = |e: &OutboxEvent| judge.as_ref().is_some_and(|j| claimed.iter().any(|(id, n)| *id == e.id && *n == e.claims) && j.of(shared, e));
        let reset = shared.store.reset_for_retry(&ids, &stale, by).await?;
        if !reset.is_empty() {
            let list: Vec<&str> = reset.iter().map(|e| e.id.as_str()).collect();
            shared.log.info(|| format!("resetForRetry: {} events back to pending: {}", list.len(), list.join(", ")));
            // Asked for by a person: no wait for the backoff a server without answers earned.
            shared.net.borrow_mut().until = 0.0;
            shared.wake();
            shared.changed();
        }
        Ok(reset.len() as u32)
    }

    /// Runs one pass for the current user now. Only the uploader runs passes: in another
    /// context this asks the uploader and returns its report.
    pub fn process_now(self: &Rc<Self>) -> Result<impl Future<Output = Result<PassReport>> + 'static> {
        self.check_open()?;
        let user = self.shared.user();
        let core = self.clone();
        Ok(async move {
            match user {
                Some(user) => core.process_now_for(user).await,
                None => Ok(PassReport::default()),
            }
        })
    }

    async fn process_now_for(&self, user: String) -> Result<PassReport> {
        let shared = &self.shared;
        let deadline = mono() + f64::from(PROCESS_NOW_LIMIT_MS);
        // Right after start() the lock request may still be settling: give it a moment.
        for _ in 0..100 {
            if shared.user().as_deref() != Some(user.as_str()) {
                break;
            }
            if shared.is_leader() {
                if let Some(r) = self.detached_pass(&user, deadline).await {
                    return r;
                }
            } else {
                // Asking who uploads reads storage, which may be stuck: within the deadline too.
                let left = (deadline - mono()).max(0.0) as u64;
                match within(left, self.uploader_elsewhere(&user)).await {
                    Some(true) => return self.delegate_pass(&user, deadline).await,
                    Some(false) => {}
                    None => break,
                }
            }
            if mono() >= deadline {
                break;
            }
            sleep(10).await;
        }
        // No pass ran: the deadline came, or no context took the lead in time (this one's previous
        // session of the same user still finishing a hung upload, say) while the user is current.
        let unfinished = mono() >= deadline || shared.user().as_deref() == Some(user.as_str());
        Ok(PassReport { unfinished, ..PassReport::of(user) })
    }

    /// A pass run as its own task and waited for until `deadline` (monotonic ms), like every
    /// call: a pass already running comes first, and a request may take `requestTimeoutMs`.
    /// Past the deadline the pass goes on in the background and this answers with what it has
    /// done so far (`unfinished`); giving up waiting never cancels a pass half-way (its claims
    /// would be left in flight). `None`: this context does not lead `user`'s uploads. A pass that
    /// failed is the call's error.
    async fn detached_pass(&self, user: &str, deadline: f64) -> Option<Result<PassReport>> {
        let shared = &self.shared;
        let generation = shared.session().generation;
        let slot: Rc<RefCell<Option<Option<Result<PassReport>>>>> = Rc::default();
        let mine: Rc<processor::Mine> = Rc::default();
        let done = Rc::new(Notify::default());
        {
            let (shared, slot, mine, done, user) = (shared.clone(), slot.clone(), mine.clone(), done.clone(), user.to_owned());
            wasm_bindgen_futures::spawn_local(async move {
                let report = processor::pass_now(&shared, &user, true, Some(&mine)).await;
                *slot.borrow_mut() = Some(report);
                done.notify();
            });
        }
        match within((deadline - mono()).max(0.0) as u64, done.notified()).await {
            Some(()) => slot.borrow_mut().take().flatten(),
            None => {
                // The counts of this call's own pass; before it runs, of the latest running pass
                // of this call's session and user, which it waits behind (none: it waits behind a
                // pass of a session before a switch, which may run on beside the next session's,
                // of another user or of the same one again: u1, u2, u1).
                let own = mine.borrow().as_ref().map(|r| r.borrow().clone());
                let running = own.or_else(|| {
                    shared
                        .pass_progress
                        .borrow()
                        .iter()
                        .rev()
                        .filter(|(g, _)| *g == generation)
                        .map(|(_, r)| r.borrow().clone())
                        .find(|r| r.user_id.as_deref() == Some(user))
                });
                let mut so_far = running.unwrap_or_default();
                so_far.user_id = Some(user.to_owned());
                so_far.unfinished = true;
                shared.log.info(|| format!("processNow: the pass for user {user} goes on in the background; answering with what it did so far"));
                Some(Ok(so_far))
            }
        }
    }

    /// Does another context upload for `user` right now?
    async fn uploader_elsewhere(&self, user: &str) -> bool {
        let shared = &self.shared;
        if matches!(crate::platform::locks::held_names().await, Held::Names(held) if !held.iter().any(|n| *n == lock_name(&shared.config.db_name, user))) {
            return false;
        }
        // The lock is held (or there are no Web Locks): by another context only if the uploader
        // record names one. Right after start() the lock may be ours before the record says so;
        // asking "the other context" then would wait for an answer that never comes.
        matches!(shared.store.leader(user).await, Ok(Some(b)) if !b.owner.is_empty() && b.owner != shared.instance_id)
    }

    /// Asks the uploader of `user` (another context) for a pass and waits for its report. If
    /// that uploader goes away unanswering (crashed, frozen) and this context takes over
    /// meanwhile, the pass runs here instead, within what is left of the bound.
    async fn delegate_pass(&self, user: &str, deadline: f64) -> Result<PassReport> {
        let shared = &self.shared;
        let id = new_id();
        let (slot, done) = shared.await_pass(&id);
        shared.post(&Message::PassRequest { id: id.clone(), user: user.to_owned() });
        loop {
            let left = deadline - mono();
            if left <= 0.0 || within((left as u64).min(TAKEOVER_LOOK_MS), done.notified()).await.is_some() {
                break;
            }
            if shared.is_leader() && slot.borrow().is_none() && shared.user().as_deref() == Some(user) {
                shared.forget_pass(&id);
                return self.detached_pass(user, deadline).await.unwrap_or_else(|| Ok(PassReport::of(user)));
            }
        }
        shared.forget_pass(&id);
        let answer = slot.borrow_mut().take();
        // No answer by the deadline: the uploader's pass goes on; nothing of it is known here.
        let unfinished = answer.is_none();
        let mut report = answer.unwrap_or_default();
        report.user_id = Some(user.to_owned());
        report.delegated = true;
        report.unfinished |= unfinished;
        Ok(report)
    }

    /// True while this context uploads for the current user.
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// `entries(userId)` or `entries({ userId, metric, from, to, limit })`, newest first.
    pub fn entries(&self, user: &Arg, metric: &Arg, from: &Arg, to: &Arg, limit: &Arg) -> Result<impl Future<Output = Result<Vec<ProgressEntry>>> + 'static> {
        self.check_open()?;
        let q = validate_entries_query(user, metric, from, to, limit, self.shared.user().as_deref())?;
        let shared = self.shared.clone();
        Ok(read_within("listing entries", async move { shared.store.entries(&q).await }))
    }

    /// Adds a stats subscriber.
    pub fn subscribe(&self, callback: Function) -> u32 {
        self.shared.subscribers.add(&self.shared, callback)
    }

    /// Removes a stats subscriber.
    pub fn unsubscribe(&self, id: u32) {
        self.shared.subscribers.remove(id)
    }

    /// The current user.
    pub fn current_user(&self) -> Option<String> {
        self.shared.user()
    }

    /// Stops processing and closes the database. Returns at once; calls reject with `CLOSED`
    /// from now on. Uploads in flight finish (within one request timeout) and are recorded,
    /// unsent claims are handed back, then the connection closes and this instance's liveness
    /// lock is released.
    pub fn close(&self) {
        if self.shared.is_closing() {
            return;
        }
        self.shared.set_closing();
        self.shared.store.db().closing();
        self.halt();
        self.shared.leave_channel();
        let shared = self.shared.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let bound = shared.config.request_timeout_ms + 2_000;
            let _ = within(bound, async {
                // The running passes (if any) end: they claim nothing more and hand back the rest.
                shared.passes_ended().await;
                // Results storage refused earlier get a last try while the connection is open
                // (otherwise their events wait for another context to find them stale).
                processor::record_leftovers(&shared, None).await;
                // The processor loop hands its lead over (clears the uploader record, so other
                // contexts need not wait for its heartbeat to stop) while the connection is open.
                while shared.campaigns.get() > 0 {
                    shared.campaign_ended.notified().await;
                }
            })
            .await;
            shared.store.close();
            shared.drop_alive_lock();
        });
    }
}

impl Drop for OutboxCore {
    fn drop(&mut self) {
        self.running.borrow_mut().take();
    }
}

/// How often a `processNow()` waiting for another context's pass looks whether this one took
/// the uploads over meanwhile.
const TAKEOVER_LOOK_MS: u64 = 100;

/// How long `processNow()` waits for its pass: the bound of every call (CONTRACT §3: every
/// call settles within 10 s), however long the server or the token function takes.
const PROCESS_NOW_LIMIT_MS: u32 = crate::platform::idb::CALL_BOUND_MS;

/// A read call bounded as a whole (CONTRACT §3: every call settles within 10 s): the read of
/// storage and what comes with it (reopening a lost connection first, setting unreadable records
/// aside, asking the browser about storage or locks) never add up past the bound. A read dropped
/// part-way stores nothing (setting records aside is best effort: they are met again).
async fn read_within<T>(operation: &'static str, read: impl Future<Output = Result<T>> + 'static) -> Result<T> {
    // Boxed: one `within` per output type, not per read (smaller wasm).
    let read: std::pin::Pin<Box<dyn Future<Output = Result<T>>>> = Box::pin(read);
    within(u64::from(crate::platform::idb::CALL_BOUND_MS), read).await.unwrap_or(Err(Error::TimedOut(operation, Written::Read)))
}
