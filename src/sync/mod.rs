//! Getting events to the server: the processor ([`processor`]: timers, passes), the wire
//! protocol ([`transport`]), leadership among contexts ([`leader`]), and the state they share
//! with the API ([`Shared`]: the session, the subscribers, what is in flight here).

pub mod leader;
pub mod processor;
pub mod subscribers;
pub mod transport;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::lock::Mutex;

use crate::domain::batch::AdaptiveSize;
use crate::domain::config::Config;
use crate::domain::stats::PassReport;
use crate::platform::channel::{Channel, Message};
use crate::platform::locks::Lock;
use crate::platform::timer::{Notify, Signal};
use crate::platform::Log;
use crate::store::queue::Lead;
use crate::store::Store;
use subscribers::Subscribers;
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

/// The lead of the processor of session `generation`, and the lock it holds it by (Web Locks).
struct Leading {
    generation: u64,
    lead: Lead,
    lock: Option<leader::SharedLock>,
}

/// An upload result that storage did not accept yet.
#[derive(Debug, Clone)]
pub struct Unrecorded {
    /// Whose event.
    pub user: String,
    /// The event.
    pub event_id: String,
    /// The claim it answers.
    pub claim: u32,
    /// What to record.
    pub decision: crate::domain::retry::Decision,
    /// The server answered.
    pub answered: bool,
    /// When.
    pub at: crate::domain::time::TimeMs,
}

/// When the server was last unreachable, and for how long uploads wait.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetState {
    /// Passes in a row that ended without an answer.
    pub streak: u32,
    /// No upload before this monotonic time (unless asked for with `processNow`).
    pub until: f64,
    /// The last probe while the platform reported offline.
    pub last_probe: f64,
}

/// A `processNow()` waiting for the uploader's answer: (request id, answer, wake-up).
type PendingPass = (String, Rc<RefCell<Option<PassReport>>>, Rc<Notify>);

/// State shared by the API object, the processor and in-flight passes.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Options from `Outbox.open`.
    pub config: Config,
    /// HTTP.
    pub transport: Transport,
    /// Console output.
    pub log: Log,
    /// One pass at a time per `Outbox` and session: a pass whose session ended (a switch of
    /// user, a logout) lets it go while its last uploads are still out (see
    /// `processor::run_pass`).
    pub gate: Mutex<()>,
    /// Passes running, their session's or one that ended (see [`Shared::passes_ended`]).
    pub passes: Cell<u32>,
    /// Uploads out now (a token call and its request), of every pass: a pass opens only the
    /// slots those of a session that ended leave (one at least).
    pub uploads_out: Cell<u32>,
    /// A pass ended.
    pub pass_ended: Signal,
    /// Passes asked for (`processNow()`, another context's request) waiting for the gate: the
    /// running pass ends early for them, and the processing loop lets them go first (the gate
    /// is not fair: the loop would take it again before a woken waiter runs).
    pub asked: Cell<u32>,
    /// The latest pass failure here of each user (user, message, when): `stats()` shows it as
    /// `lastError` when it is newer than the stored one, which the failure may have kept from
    /// being written.
    pub pass_failures: RefCell<Vec<(String, String, crate::domain::time::TimeMs)>>,
    /// What each running pass has done so far, with its session's generation, oldest first (a
    /// pass whose session ended may still run beside the current session's): a `processNow()`
    /// that stops waiting answers with the latest one of its own session.
    pub pass_progress: RefCell<Vec<(u64, Rc<RefCell<PassReport>>)>>,
    /// This `Outbox` instance (uploader record owner; its liveness lock is named after it).
    pub instance_id: String,
    /// Held for this instance's lifetime: another context seeing it held knows this one is
    /// alive (its claims are not stale, whatever the clocks say).
    alive: RefCell<Option<Lock>>,
    channel: RefCell<Option<Channel>>,
    session: RefCell<Session>,
    /// The lead held by the processor of one session.
    lead: RefCell<Option<Leading>>,
    /// Upload results not recorded yet (storage refused the write): retried at every pass.
    pub unrecorded: RefCell<Vec<Unrecorded>>,
    /// Unsent claims storage refused to hand back yet: (event, claim), retried like `unrecorded`.
    pub unreleased: RefCell<Vec<(String, u32)>>,
    /// A task retries `unrecorded` and `unreleased` (see `processor::keep_unrecorded`).
    pub retrying_unrecorded: Cell<bool>,
    /// The unreachable-server backoff of the processor.
    pub net: RefCell<NetState>,
    step_down: Cell<bool>,
    wake: RefCell<Option<Rc<Notify>>>,
    /// Every [`Shared::wake`] and every switch of session: a running pass's idle upload slots
    /// watch it (new work, or their session ended).
    pub work: Signal,
    /// Claims (event id, claim number) this outbox is uploading right now: alive, never stale
    /// however slow. Kept per claim, not per event: an event an edit took back may be claimed
    /// again (by the same pass) before its first claim is handed back.
    in_flight: RefCell<Vec<(String, u32)>>,
    /// Of those, the ones whose upload has started (the token asked for, the request sent).
    sending: RefCell<Vec<(String, u32)>>,
    /// Claimed here, not sent yet, and taken back by an edit of their entry (which folds into
    /// them, or removes them): never sent by the pass that claimed them.
    withdrawn: RefCell<Vec<(String, u32)>>,
    /// Processing events of other contexts this one has seen, and since when (monotonic): a claim
    /// that stays for `staleAfterMs` of this context's own time is stale.
    seen_processing: RefCell<Vec<(String, String, u32, f64)>>,
    /// Retrying events and when their backoff ends on this context's monotonic clock.
    schedule: RefCell<HashMap<String, f64>>,
    /// The batch size (with `batchEndpoint`).
    pub batch: Cell<AdaptiveSize>,
    pending_passes: RefCell<Vec<PendingPass>>,
    /// Users whose "saved" message waits for the end of the cooldown (bursts send one per 100 ms).
    saved_due: RefCell<Vec<String>>,
    saved_cooldown: Cell<bool>,
    /// Closing: the API refuses calls; the processor finishes what it has.
    closing: Cell<bool>,
    /// Processor loops still running (a stopped one ends after handing its lead over):
    /// `close()` waits for them before it closes the connection.
    pub campaigns: Cell<u32>,
    /// A processor loop ended.
    pub campaign_ended: Notify,
    /// Subscribers to stats.
    pub subscribers: Subscribers,
}

impl Shared {
    /// Assembles the shared state.
    pub fn new(store: Store, config: Config, transport: Transport, log: Log) -> Self {
        let batch = AdaptiveSize::new(config.max_batch_events);
        Shared {
            store,
            config,
            transport,
            log,
            gate: Mutex::new(()),
            passes: Cell::new(0),
            uploads_out: Cell::new(0),
            pass_ended: Signal::default(),
            asked: Cell::new(0),
            pass_failures: RefCell::default(),
            pass_progress: RefCell::default(),
            instance_id: crate::platform::new_id(),
            alive: RefCell::new(None),
            channel: RefCell::new(None),
            session: RefCell::new(Session::default()),
            lead: RefCell::new(None),
            unrecorded: RefCell::new(Vec::new()),
            unreleased: RefCell::new(Vec::new()),
            retrying_unrecorded: Cell::new(false),
            net: RefCell::new(NetState::default()),
            step_down: Cell::new(false),
            wake: RefCell::new(None),
            work: Signal::default(),
            in_flight: RefCell::new(Vec::new()),
            sending: RefCell::new(Vec::new()),
            withdrawn: RefCell::new(Vec::new()),
            seen_processing: RefCell::new(Vec::new()),
            schedule: RefCell::new(HashMap::new()),
            batch: Cell::new(batch),
            pending_passes: RefCell::new(Vec::new()),
            saved_due: RefCell::new(Vec::new()),
            saved_cooldown: Cell::new(false),
            closing: Cell::new(false),
            campaigns: Cell::new(0),
            campaign_ended: Notify::default(),
            subscribers: Subscribers::default(),
        }
    }

    /// The name of an instance's liveness lock.
    pub fn alive_lock_name(&self, instance: &str) -> String {
        crate::domain::lease::alive_lock_name(&self.config.db_name, instance)
    }

    /// Takes this instance's liveness lock (where Web Locks exist).
    pub fn hold_alive_lock(&self) {
        let name = self.alive_lock_name(&self.instance_id);
        *self.alive.borrow_mut() = crate::platform::locks::request(&name, false, &Rc::new(Notify::default()));
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
        // A new session's first reading is heard even if it equals the last one shown.
        self.subscribers.forget_last();
        let generation = {
            let mut s = self.session.borrow_mut();
            s.user = user;
            s.generation += 1;
            s.generation
        };
        // A running pass of the session that ended lets the pass gate go (its idle upload slots end).
        self.work.notify_all();
        generation
    }

    /// Resolves once no pass runs: none under the pass gate, and none of an ended session still
    /// finishing its uploads.
    pub async fn passes_ended(&self) {
        drop(self.gate.lock().await);
        loop {
            let seen = self.pass_ended.count();
            if self.passes.get() == 0 {
                return;
            }
            self.pass_ended.since(seen).await;
        }
    }

    /// `close()` was called: the API refuses calls from now on.
    pub fn set_closing(&self) {
        self.closing.set(true);
    }

    /// True after `close()`.
    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// The instance's liveness lock is released (the last step of closing).
    pub fn drop_alive_lock(&self) {
        self.alive.borrow_mut().take();
    }

    /// Records the lead of the processor of session `generation` (and the lock it holds it by).
    pub fn set_lead(&self, generation: u64, lead: Lead, lock: Option<leader::SharedLock>) {
        *self.lead.borrow_mut() = Some(Leading { generation, lead, lock });
        // A step-down asked of an earlier lead is not this one's.
        self.step_down.set(false);
    }

    /// The processor of session `generation` no longer leads.
    pub fn clear_lead(&self, generation: u64) {
        let mut l = self.lead.borrow_mut();
        if l.as_ref().is_some_and(|l| l.generation == generation) {
            *l = None;
            self.step_down.set(false);
        }
    }

    /// The lead of the processor of session `generation`, while it holds it (with Web Locks:
    /// while its lock is held, not stolen).
    pub fn current_lead(&self, generation: u64) -> Option<Lead> {
        let l = self.lead.borrow();
        let l = l.as_ref().filter(|l| l.generation == generation)?;
        let held = l.lock.as_ref().is_none_or(|lock| lock.borrow().as_ref().is_some_and(|k| k.held()));
        held.then(|| l.lead.clone())
    }

    /// True while the processor of session `generation` leads.
    pub fn leads(&self, generation: u64) -> bool {
        self.current_lead(generation).is_some()
    }

    /// True while this context uploads for the current user.
    pub fn is_leader(&self) -> bool {
        let g = self.session.borrow().generation;
        self.leads(g)
    }

    /// Asks the running loop to give leadership up after its current pass.
    pub fn request_step_down(&self) {
        self.step_down.set(true);
        self.wake();
    }

    /// Consumes a pending step-down request.
    pub fn take_step_down(&self) -> bool {
        self.step_down.replace(false)
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
        self.work.notify_all();
    }

    /// Marks claim `claims` of an event as being uploaded by this outbox (until [`Shared::landed`]).
    pub fn taking_off(&self, event_id: &str, claims: u32) {
        self.in_flight.borrow_mut().push((event_id.to_owned(), claims));
    }

    /// The upload of that claim is over (recorded or not), or the claim was handed back.
    pub fn landed(&self, event_id: &str, claims: u32) {
        remove_one(&self.in_flight, event_id, claims);
        remove_one(&self.sending, event_id, claims);
    }

    /// An edit of its entry takes back an event in claim `claims` here whose upload has not
    /// started: `true` if it did (the pass will not send it; the edit's transaction rewrites it).
    pub fn withdraw(&self, event_id: &str, claims: u32) -> bool {
        let mark = (event_id.to_owned(), claims);
        let ok = self.in_flight.borrow().contains(&mark) && !self.sending.borrow().contains(&mark);
        if ok {
            self.withdrawn.borrow_mut().push(mark);
        }
        ok
    }

    /// A claim this context held went back unsent (the pass ended, or lost its lead): stored.
    pub fn handed_back(&self, event_id: &str, claims: u32) {
        self.landed(event_id, claims);
        remove_one(&self.withdrawn, event_id, claims);
    }

    /// A pass is about to upload a claimed event: `false` if an edit took it back meanwhile.
    /// The pass then hands its claim back all the same (it stays in flight here until then):
    /// if the edit committed, the event is no longer in that claim and nothing happens; if the
    /// edit failed (storage full at its commit, a lost connection), the claim is still there, and
    /// handing it back returns the event to the queue as never sent.
    pub fn start_sending(&self, event_id: &str, claims: u32) -> bool {
        if remove_one(&self.withdrawn, event_id, claims) {
            return false;
        }
        self.sending.borrow_mut().push((event_id.to_owned(), claims));
        true
    }

    /// Is this event being uploaded by this outbox (in any claim)?
    pub fn is_in_flight(&self, event_id: &str) -> bool {
        self.in_flight.borrow().iter().any(|(id, _)| id == event_id)
    }

    /// Notes a processing event (of `user`) of another context seen now (`mono`); returns for how
    /// long (ms) this context has seen it in the same claim.
    pub fn seen_processing_for(&self, event_id: &str, user: &str, claims: u32, mono: f64) -> f64 {
        let mut seen = self.seen_processing.borrow_mut();
        match seen.iter_mut().find(|(id, _, _, _)| id == event_id) {
            Some((_, _, c, since)) if *c == claims => mono - *since,
            Some(slot) => {
                (slot.2, slot.3) = (claims, mono);
                0.0
            }
            None => {
                seen.push((event_id.to_owned(), user.to_owned(), claims, mono));
                0.0
            }
        }
    }

    /// Forgets the processing events of `user` no longer seen (those of other users stay).
    pub fn keep_seen(&self, user: &str, ids: &[String]) {
        self.seen_processing.borrow_mut().retain(|(id, u, _, _)| u != user || ids.contains(id));
    }

    /// Schedules a retrying event for monotonic time `at`.
    pub fn schedule(&self, event_id: &str, at: f64) {
        self.schedule.borrow_mut().insert(event_id.to_owned(), at);
    }

    /// Forgets the retry of this event (it went back to the queue).
    pub fn unschedule(&self, event_id: &str) {
        self.schedule.borrow_mut().remove(event_id);
    }

    /// Does this context time the retry of this event (not due yet)?
    pub fn is_scheduled(&self, event_id: &str) -> bool {
        self.schedule.borrow().contains_key(event_id)
    }

    /// Takes at most `most` of the scheduled events due at monotonic time `now`; the rest stay
    /// scheduled, due (the next claim takes them). A backlog whose retries come due together is
    /// promoted a bounded number per claim, each claim a short transaction. Which come first does
    /// not matter: promoted events upload in the queue's order (priority, then oldest).
    pub fn take_due(&self, now: f64, most: usize) -> Vec<String> {
        let mut due = Vec::new();
        self.schedule.borrow_mut().retain(|id, at| {
            let take = *at <= now && due.len() < most;
            if take {
                due.push(id.clone());
            }
            !take
        });
        due
    }

    /// The earliest scheduled retry (monotonic), if any.
    pub fn next_due(&self) -> Option<f64> {
        self.schedule.borrow().values().copied().reduce(f64::min)
    }

    /// Forgets every scheduled retry (a new lead reloads them).
    pub fn clear_schedule(&self) {
        self.schedule.borrow_mut().clear();
    }

    /// Joins the database's broadcast channel. Messages are handled through a weak reference,
    /// so the channel never keeps a closed outbox alive.
    pub fn join_channel(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let ch = Channel::open(&self.config.db_name, move |m| {
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
    pub fn post(&self, message: &Message) {
        if let Some(ch) = self.channel.borrow().as_ref() {
            ch.post(message);
        }
    }

    fn on_message(self: &Rc<Self>, m: Message) {
        let mine = |user: &str| self.user().as_deref() == Some(user);
        match m {
            Message::Saved { user } if mine(&user) => {
                if self.is_leader() {
                    self.wake();
                }
                self.subscribers.changed(self);
            }
            Message::Changed { user } if mine(&user) => self.subscribers.changed(self),
            Message::WantLead { user } if mine(&user) && self.is_leader() && leader::yields_to_visible_pages() => {
                self.log.debug(|| format!("a visible page wants to upload for {user}; this context steps down"));
                self.request_step_down();
            }
            Message::Lead { user, owner, gen } if mine(&user) && owner != self.instance_id => {
                // Another context leads now: if this one thought it did, it was fenced off.
                let fenced = self.lead.borrow().as_ref().map(|l| (l.generation, l.lead.gen as f64 <= gen));
                if let Some((g, true)) = fenced {
                    self.log.warn(|| format!("another context took over the uploads of user {user}; this one stops at once"));
                    self.clear_lead(g);
                    self.wake();
                }
            }
            Message::PassRequest { id, user } if mine(&user) && self.is_leader() => {
                let shared = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    // Answered only with the asking user's pass that ran: after a switch of user
                    // here meanwhile, or a pass that failed (its storage refused), the asker hears
                    // nothing and answers `finished: false` at its bound, never as a finished
                    // pass that found nothing to do.
                    if let Some(Ok(report)) = processor::pass_now(&shared, &user, true, None).await {
                        shared.post(&Message::PassDone { id, report });
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

    /// Tells the other contexts that something of `user` was written (their uploader wakes, their
    /// subscribers refresh): at once, and during a burst of writes once more per 100 ms.
    pub fn post_saved(self: &Rc<Self>, user: &str) {
        if self.saved_cooldown.replace(true) {
            let mut due = self.saved_due.borrow_mut();
            if !due.iter().any(|u| u == user) {
                due.push(user.to_owned());
            }
            return;
        }
        self.post(&Message::Saved { user: user.to_owned() });
        let weak = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            crate::platform::timer::sleep(100).await;
            if let Some(shared) = weak.upgrade() {
                shared.saved_cooldown.set(false);
                let due = std::mem::take(&mut *shared.saved_due.borrow_mut());
                for user in due {
                    shared.post_saved(&user);
                }
            }
        });
    }

    /// Registers a `processNow()` waiting for the uploader's answer to request `id`.
    pub fn await_pass(&self, id: &str) -> (Rc<RefCell<Option<PassReport>>>, Rc<Notify>) {
        let slot = Rc::new(RefCell::new(None));
        let done = Rc::new(Notify::default());
        self.pending_passes.borrow_mut().push((id.to_owned(), slot.clone(), done.clone()));
        (slot, done)
    }

    /// Forgets request `id`.
    pub fn forget_pass(&self, id: &str) {
        self.pending_passes.borrow_mut().retain(|(i, _, _)| i != id);
    }

    /// A pass for `user` failed, or stopped early, with `e` (logged by the caller): subscribers
    /// here hear it (`lastError`).
    pub fn pass_failed(self: &Rc<Self>, user: &str, e: &crate::domain::Error) {
        let failure = (user.to_owned(), e.clone().of_a_pass().to_string(), crate::platform::now());
        let mut all = self.pass_failures.borrow_mut();
        match all.iter_mut().find(|(u, ..)| u == user) {
            Some(f) => *f = failure,
            None => all.push(failure),
        }
        drop(all);
        self.subscribers.changed(self);
    }

    /// Something stored changed: subscribers here and in every other context refresh.
    pub fn changed(self: &Rc<Self>) {
        self.subscribers.changed(self);
        self.subscribers.broadcast(self);
    }
}

/// Removes one occurrence of `id`; `true` if there was one.
fn remove_one(list: &RefCell<Vec<(String, u32)>>, id: &str, claims: u32) -> bool {
    let mut list = list.borrow_mut();
    match list.iter().position(|(x, n)| x == id && *n == claims) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}
