//! The seed's `OutboxProcessorService` for the browser. While this context leads its user's
//! uploads, a pass runs every `processingIntervalMs` (a gloo `Interval` kicks the loop; ticks
//! during a slow pass coalesce), at once after a save or when the network returns, and when a
//! backoff ends (a re-armed gloo `Timeout`); cleanup every `cleanupIntervalMs`.
//!
//! A pass: record results storage refused earlier -> recover stale claims -> claim a batch (one
//! transaction, fenced by the uploader record) -> upload with at most `maxConcurrent` requests in
//! flight (one event each, or a batch each with `batchEndpoint`), outside any transaction,
//! claiming the next batch as soon as the queue runs dry (and, while a slow upload is still out,
//! claiming again when a save wakes the processor, so one hung request holds back nothing
//! else) -> record results as they arrive (group
//! commit: those that arrive during a write go into the next one). An answer-less failure
//! (network, timeout, no token) ends the pass: the rest is handed back unsent, and uploads wait
//! on the backoff schedule (its last step repeating) unless `online` or `processNow()` says otherwise.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures_util::lock::Mutex;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::leader::Leadership;
use super::{Shared, Unrecorded};
use crate::domain::event::{Applied, OutboxEvent, StateKey};
use crate::domain::retry::{decide, remaining_wait, Decision, Outcome};
use crate::domain::stats::PassReport;
use crate::domain::time::{to_iso8601, TimeMs};
use crate::domain::{Error, Result};
use crate::platform::locks::Held;
use crate::platform::timer::{first, join_all, sleep, Alarm, Notify, Signal, Ticker};
use crate::platform::{get, global, is_online, mono, network, now};
use crate::store::lease::Renewal;
use crate::store::queue::{Claimed, Lead, Outcome as Result_, Recorded, PROMOTE_PER_CLAIM};

/// One upload result waiting for the recorder.
struct Done {
    claimed: Claimed,
    decision: Decision,
    answered: bool,
    /// A token problem: the app has to act (see `Outcome::needs_attention`).
    attention: bool,
    at: i64,
}

/// How long one pass goes on claiming. Saves arriving as fast as uploads drain would otherwise
/// keep one pass (and a `processNow()` waiting for it) going for as long as they arrive; cut
/// here, the pass ends with what it claimed and the processor starts the next one at once.
const PASS_CLAIMS_FOR_MS: u32 = 10_000;

/// Runs one pass now in this context for `user`, if it is still the current user and this
/// context leads its uploads (`processNow()`, or another context's request): `None` otherwise
/// (the session switched while the pass waited for its turn, say). `forced`: even while uploads
/// wait out an unreachable server. `Some(Err(..))`: the pass failed before claiming anything
/// (storage refused its reads or its claim), said as such, not as a pass that found nothing to do.
pub async fn pass_now(shared: &Rc<Shared>, user: &str, forced: bool, mine: Option<&Mine>) -> Option<Result<PassReport>> {
    let turn = {
        // Counted while waiting, however the wait ends (a dropped future included).
        struct Asking<'a>(&'a Cell<u32>);
        impl Drop for Asking<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        shared.asked.set(shared.asked.get() + 1);
        let _asking = Asking(&shared.asked);
        RefCell::new(Some(shared.gate.lock().await))
    };
    let session = shared.session();
    if session.user.as_deref() != Some(user) || !shared.leads(session.generation) {
        return None;
    }
    let pass = run_pass(shared, user, session.generation, forced, mine, &|| drop(turn.take())).await.map_err(|e| note_pass_failure(shared, user, e));
    // The processing loop sleeps until its next deadline as it was before this pass: this one may
    // have changed it (an answer ends the unreachable server's wait; a retry it recorded).
    shared.wake();
    Some(pass)
}

/// The progress of the pass a `processNow()` call runs, once it runs (see [`pass_now`]).
pub type Mine = RefCell<Option<Rc<RefCell<PassReport>>>>;

/// A pass for `user` failed: logged, and kept for `stats().lastError` (storage that refuses
/// writes may refuse the stored one too), as a pass's failure ([`Error::of_a_pass`]).
fn note_pass_failure(shared: &Rc<Shared>, user: &str, e: Error) -> Error {
    let e = e.of_a_pass();
    shared.log.warn(|| format!("pass for user {user} failed: {e}"));
    shared.pass_failed(user, &e);
    e
}

/// Runs one pass for `user` under session `generation`. The caller holds the pass gate;
/// `let_go` releases it. A pass whose session ends (a switch of user, a logout, `close()`) while
/// uploads of it are still out (a stalled server or token function, up to a token call and a
/// request) lets the gate go at once: it claims and sends nothing more, and the next session's
/// passes need not wait for those uploads, which finish and are recorded here.
/// [`Shared::passes_ended`] waits for them.
pub async fn run_pass(shared: &Rc<Shared>, user: &str, generation: u64, forced: bool, mine: Option<&Mine>, let_go: &dyn Fn()) -> Result<PassReport> {
    struct Counted<'a>(&'a Shared);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.passes.set(self.0.passes.get() - 1);
            self.0.pass_ended.notify_all();
        }
    }
    shared.passes.set(shared.passes.get() + 1);
    let _counted = Counted(shared);
    let (cfg, log) = (&shared.config, shared.log);
    let mut report = PassReport::of(user);
    let Some(lead) = shared.current_lead(generation) else { return Ok(report) };

    record_leftovers(shared, Some(&lead)).await;
    report.stale_reset = recover_stale(shared, user).await?;

    let probing = !is_online();
    if probing {
        let probe_due = mono() - shared.net.borrow().last_probe >= offline_probe_every(cfg);
        if !probe_due {
            report.offline = true;
            log.debug(|| format!("offline: no uploads for user {user} until the network returns"));
            // Health ages while nothing uploads ("stalled"): subscribers hear it at each tick.
            shared.subscribers.changed(shared);
            return Ok(report);
        }
        shared.net.borrow_mut().last_probe = mono();
        log.info(|| "the platform reports offline; probing the server once in case it is wrong".into());
    } else if !forced && mono() < shared.net.borrow().until {
        log.debug(|| format!("server unreachable lately: uploads for user {user} wait for the backoff to end"));
        shared.subscribers.changed(shared);
        return Ok(report);
    }

    let net = network();
    // A probe is one request: one worker, one event. Uploads still out here belong to a pass of
    // a session that ended (this one holds the gate): they count against `maxConcurrent`, yet
    // leave this pass one slot at least (they may hang for a request timeout).
    let out = shared.uploads_out.get();
    let workers = if probing { 1 } else { net.concurrency(cfg.max_concurrent).saturating_sub(out).max(1) };
    let progress = Rc::new(RefCell::new(report));
    // Listed while the pass runs, however it ends (a dropped future included).
    struct Listed<'a>(&'a Shared, Rc<RefCell<PassReport>>);
    impl Drop for Listed<'_> {
        fn drop(&mut self) {
            self.0.pass_progress.borrow_mut().retain(|(_, r)| !Rc::ptr_eq(r, &self.1));
        }
    }
    shared.pass_progress.borrow_mut().push((generation, progress.clone()));
    if let Some(mine) = mine {
        *mine.borrow_mut() = Some(progress.clone());
    }
    let listed = Listed(shared, progress.clone());
    let pass = Pass {
        shared,
        user,
        generation,
        lead,
        queue: RefCell::new(VecDeque::new()),
        report: progress,
        let_go,
        released: RefCell::new(Vec::new()),
        results: RefCell::new(Vec::new()),
        results_ready: Notify::default(),
        workers_left: Cell::new(workers as usize),
        finished: Signal::default(),
        busy: Cell::new(0),
        all_idle: Signal::default(),
        claim_seen: Cell::new(shared.work.count()),
        more: Cell::new(true),
        claim_until: mono() + f64::from(PASS_CLAIMS_FOR_MS),
        ending: Cell::new(f64::INFINITY),
        sending: RefCell::new(Vec::new()),
        probing,
        stop: Cell::new(false),
        unreachable: Cell::new(false),
        answered: Cell::new(false),
        claiming: Mutex::new(()),
        failure: RefCell::new(None),
    };
    let mut tasks: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = Vec::with_capacity(workers as usize + 1);
    for _ in 0..workers {
        tasks.push(match &cfg.batch_endpoint {
            Some(url) => Box::pin(batch_worker(&pass, url)),
            None => Box::pin(single_worker(&pass, workers as usize)),
        });
    }
    tasks.push(Box::pin(recorder(&pass)));
    tasks.push(Box::pin(heartbeat(&pass)));
    tasks.push(Box::pin(let_go_when_ended(&pass)));
    join_all(tasks).await;

    // The counts stay readable (a timed-out `processNow()`) until the claims are handed back.
    let Pass { report, released, failure, queue, unreachable, answered, .. } = pass;
    let mut released = released.into_inner();
    released.extend(queue.into_inner().into_iter().map(|c| (c.event.id.clone(), c.event.claims)));
    if let Err((e, released)) = release_unsent(shared, user, &report, released).await {
        // Still `processing`, claimed by this live context: kept in flight here and handed back
        // by the retry task (this context may lead no pass again).
        log.warn(|| format!("{} claimed events of user {user} could not be handed back yet ({e}); they are retried", released.len()));
        keep_leftovers(shared, Vec::new(), released);
    }
    if !shared.is_current(generation) {
        // What the network did for a session that ended is old news for the current one's passes.
    } else if unreachable.get() && !answered.get() {
        let (wait, streak) = {
            let mut n = shared.net.borrow_mut();
            n.streak += 1;
            let wait = cfg.retry.backoff(n.streak);
            n.until = mono() + wait as f64;
            (wait, n.streak)
        };
        // Logged with no borrow held: a console wrapper may call back into the outbox.
        log.info(|| format!("no answer from the server (or no token): uploads for user {user} wait {wait} ms (attempt {streak} of the backoff)"));
    } else if answered.get() {
        let mut n = shared.net.borrow_mut();
        *n = super::NetState { last_probe: n.last_probe, ..Default::default() };
    }
    drop(listed);
    let mut report = report.take();
    if let Some(e) = failure.into_inner() {
        if report.claimed == 0 {
            return Err(e);
        }
        // It failed after work was done (a later claim refused): the counts of that work, and
        // not finished; the next pass goes on.
        log.warn(|| format!("pass for user {user} stopped early: {e}"));
        shared.pass_failed(user, &e);
        report.unfinished = true;
    }
    if report.claimed == 0 {
        log.debug(|| format!("pass for user {user}: nothing due"));
    }
    shared.changed();
    Ok(report)
}

/// Keeps upload results storage refused (storage full, a lost connection) for later. Their
/// events stay in flight here (never stale for other contexts) until recorded, so they are
/// retried whether or not this context still uploads (a logout, a lost lead): besides every pass,
/// a retry task runs while any are left, 1 s, 2 s, 4 s ... 30 s apart (CONTRACT §3: a live
/// context never leaves an event `processing`).
fn keep_unrecorded(shared: &Rc<Shared>, items: impl IntoIterator<Item = Unrecorded>) {
    keep_leftovers(shared, items.into_iter().collect(), Vec::new());
}

/// Keeps results to record and unsent claims to hand back that storage refused, and makes sure
/// the retry task runs (see [`keep_unrecorded`]).
fn keep_leftovers(shared: &Rc<Shared>, results: Vec<Unrecorded>, claims: Vec<(String, u32)>) {
    shared.unrecorded.borrow_mut().extend(results);
    shared.unreleased.borrow_mut().extend(claims);
    if shared.retrying_unrecorded.replace(true) {
        return;
    }
    let weak = Rc::downgrade(shared);
    wasm_bindgen_futures::spawn_local(async move {
        let mut wait = 1_000;
        loop {
            sleep(wait).await;
            let Some(shared) = weak.upgrade() else { return };
            if shared.store.db().check_open().is_ok() {
                record_leftovers(&shared, None).await;
            }
            let left = !shared.unrecorded.borrow().is_empty() || !shared.unreleased.borrow().is_empty();
            if !left || shared.store.db().check_open().is_err() {
                shared.retrying_unrecorded.set(false);
                return;
            }
            wait = (wait * 2).min(30_000);
        }
    });
}

/// Hands back unsent claims storage refused to release earlier.
async fn release_leftovers(shared: &Rc<Shared>) {
    let claims = std::mem::take(&mut *shared.unreleased.borrow_mut());
    if claims.is_empty() {
        return;
    }
    match shared.store.release(&claims).await {
        Ok(_) => {
            for (id, claim) in &claims {
                shared.handed_back(id, *claim);
            }
            shared.log.info(|| format!("{} claimed events that storage refused to hand back earlier are now handed back", claims.len()));
            shared.wake();
            shared.changed();
        }
        Err(e) => {
            shared.log.warn(|| format!("{} claimed events still cannot be handed back: {e}", claims.len()));
            keep_leftovers(shared, Vec::new(), claims);
        }
    }
}

/// Records results storage refused earlier, now that it may accept them (renewing `lead`'s
/// heartbeat when given).
pub async fn record_leftovers(shared: &Rc<Shared>, lead: Option<&Lead>) {
    release_leftovers(shared).await;
    let left = std::mem::take(&mut *shared.unrecorded.borrow_mut());
    if left.is_empty() {
        return;
    }
    let items: Vec<Result_<'_>> =
        left.iter().map(|u| Result_ { event_id: &u.event_id, claim: u.claim, decision: &u.decision, answered: u.answered, at: u.at }).collect();
    match shared.store.record(&items, lead).await {
        Ok(written) => {
            let t = mono();
            let mut next_free = false;
            for (u, w) in left.iter().zip(written) {
                shared.landed(&u.event_id, u.claim);
                if let Recorded::Applied(e, applied) = &w {
                    next_free |= e.blocks && *applied != Applied::Retrying;
                }
                if let (Decision::Retry { wait_ms, .. }, Recorded::Applied(_, Applied::Retrying)) = (&u.decision, w) {
                    shared.schedule(&u.event_id, t + *wait_ms as f64);
                }
            }
            shared.log.info(|| format!("{} upload results that storage refused earlier are now recorded", left.len()));
            if next_free {
                shared.wake();
            }
            shared.changed();
        }
        Err(e) => {
            shared.log.warn(|| format!("{} upload results still cannot be recorded: {e}", left.len()));
            let mut users: Vec<&str> = left.iter().map(|u| u.user.as_str()).collect();
            users.sort_unstable();
            users.dedup();
            for user in users {
                shared.pass_failed(user, &e);
            }
            keep_unrecorded(shared, left);
        }
    }
}

/// Puts `user`'s stale claims back in the queue: claims of a context that is gone (its liveness
/// lock is released: closed, crashed, reloaded); where Web Locks are missing, claims that stood
/// still long enough (see [`Staleness::of`]). Claims in flight here never are.
async fn recover_stale(shared: &Rc<Shared>, user: &str) -> Result<u32> {
    let (processing, unreadable) = shared.store.in_state(user, StateKey::Processing).await?;
    if processing.is_empty() && unreadable.is_empty() {
        shared.keep_seen(user, &[]);
        return Ok(0);
    }
    let judge = Staleness::now().await;
    // Claims this version cannot read, of contexts that are gone: set aside (else counted as
    // `processing` for good). One of a live context (another version of the app) is left alone.
    let gone: Vec<_> = unreadable.iter().filter(|q| judge.claimer_gone(shared, &q.record)).cloned().collect();
    if !gone.is_empty() {
        shared.store.set_aside(&gone, true).await;
    }
    let stale: Vec<(String, u32)> = processing.iter().filter(|e| judge.of(shared, e)).map(|e| (e.id.clone(), e.claims)).collect();
    // Watched while they stay (where there are no Web Locks, how long is what judges them).
    let ids: Vec<String> = processing.iter().map(|e| e.id.clone()).chain(unreadable.iter().filter_map(|q| q.key.as_string())).collect();
    shared.keep_seen(user, &ids);
    if stale.is_empty() {
        return Ok(0);
    }
    let recovered = shared.store.recover(&stale).await?;
    if !recovered.is_empty() {
        let list: Vec<&str> = recovered.iter().map(|e| e.id.as_str()).collect();
        shared.log.info(|| format!("reset {} stale events of user {user} (their upload was interrupted): {}", list.len(), list.join(", ")));
        shared.changed();
    }
    Ok(recovered.len() as u32)
}

/// What judging claims stale needs, asked once for a list of them: which contexts are alive
/// (Web Locks) and the time on both clocks.
pub struct Staleness {
    held: Held,
    at: f64,
    wall: TimeMs,
}

impl Staleness {
    /// Asks Web Locks (up to 1 s) and reads both clocks.
    pub async fn now() -> Staleness {
        let held = crate::platform::locks::held_names().await;
        Staleness { held, at: mono(), wall: now() }
    }

    /// Does the context that claimed an event live? `None`: no Web Locks to ask.
    fn claimer_alive(&self, shared: &Shared, claimed_by: Option<&str>) -> Option<bool> {
        match (&self.held, claimed_by) {
            (_, Some(me)) if me == shared.instance_id => Some(false), // ours, and not in flight: a leftover
            (Held::Names(held), Some(owner)) => Some(held.iter().any(|n| *n == shared.alive_lock_name(owner))),
            (Held::Names(_), None) => Some(false), // claimed by a version that named no claimer
            // Web Locks did not answer in time: whether its claimer lives is unknown, so it is not
            // judged by the clocks either (a hung claimer's request may still be in flight).
            (Held::Unknown, _) => Some(true),
            (Held::Unavailable, _) => None,
        }
    }

    /// Is the claimer of a `processing` record this version cannot read gone? As for any claim
    /// (see [`Staleness::of`]), by what can be read of it; one whose id or user cannot be read is
    /// judged by Web Locks alone.
    pub fn claimer_gone(&self, shared: &Shared, raw: &JsValue) -> bool {
        let (id, user) = (get(raw, "id").as_string(), get(raw, "userId").as_string());
        if id.as_deref().is_some_and(|id| shared.is_in_flight(id)) {
            return false;
        }
        match (self.claimer_alive(shared, get(raw, "claimedBy").as_string().as_deref()), id, user) {
            (Some(alive), ..) => !alive,
            (None, Some(id), Some(user)) => {
                let claims = get(raw, "claims").as_f64().filter(|n| n.is_finite() && *n >= 0.0).unwrap_or(0.0) as u32;
                // No stamp: claimed by a version that wrote none (as old as can be, as in `of`);
                // one that is not a time: judged by this context's watch alone.
                let stamp = get(raw, "lastAttemptAt");
                let claimed_at = if stamp.is_undefined() || stamp.is_null() {
                    None
                } else {
                    Some(stamp.as_f64().filter(|t| t.is_finite()).map_or(self.wall, |t| t as TimeMs))
                };
                self.stood_still(shared, &id, &user, claims, claimed_at)
            }
            (None, ..) => false,
        }
    }

    /// No Web Locks, so no liveness to ask: stale once it is older than `staleAfterMs`, by this
    /// context's own watch or by its claim's stamp, and in any case only once this context has
    /// seen it unchanged for longer than a live uploader's token and request could take (each
    /// bounded by `requestTimeoutMs`). The stamp alone is not enough: it was written by another
    /// context, and this clock may have jumped, or `staleAfterMs` may be shorter than a request.
    /// The watch alone is not either: a claim left by a context that crashed would wait for a
    /// session that stays open `staleAfterMs` long.
    fn stood_still(&self, shared: &Shared, id: &str, user: &str, claims: u32, claimed_at: Option<TimeMs>) -> bool {
        let seen_for = shared.seen_processing_for(id, user, claims, self.at);
        let cfg = &shared.config;
        let after = cfg.stale_after_ms as f64;
        let claimed_ago = claimed_at.map_or(f64::INFINITY, |t| (self.wall - t) as f64);
        seen_for > 2.0 * cfg.request_timeout_ms as f64 + 1_000.0 && (seen_for > after || claimed_ago > after)
    }

    /// Is this processing event stale? Never one in flight here.
    pub fn of(&self, shared: &Shared, e: &OutboxEvent) -> bool {
        if shared.is_in_flight(&e.id) {
            return false;
        }
        match self.claimer_alive(shared, e.claimed_by.as_deref()) {
            Some(false) => true,
            // Its context lives (it holds its liveness lock), however hung: its request may still be
            // in flight, with no bound (a busy or frozen page cannot abort it, a server may hold it).
            // Sending the event again would put it in flight twice (CONTRACT §3b). It resolves the
            // claim itself when it runs again, or its claims are free the moment it goes.
            Some(true) => false,
            None => self.stood_still(shared, &e.id, &e.user_id, e.claims, e.last_attempt_at),
        }
    }
}

/// How often a context whose platform reports offline sends one request anyway, in case the
/// platform is wrong (ms): the last backoff step, and never more than once in 5 minutes (CONTRACT
/// §2: while offline no upload starts).
pub fn offline_probe_every(cfg: &crate::domain::config::Config) -> f64 {
    (cfg.retry.last_step() as f64).max(300_000.0)
}

/// One pass's work, shared by its upload workers.
struct Pass<'a> {
    shared: &'a Rc<Shared>,
    user: &'a str,
    generation: u64,
    lead: Lead,
    queue: RefCell<VecDeque<Claimed>>,
    /// What it has done so far: [`Shared::pass_progress`].
    report: Rc<RefCell<PassReport>>,
    /// Releases the pass gate (see [`run_pass`]).
    let_go: &'a dyn Fn(),
    /// Claims never sent, to hand back.
    released: RefCell<Vec<(String, u32)>>,
    results: RefCell<Vec<Done>>,
    results_ready: Notify,
    workers_left: Cell<usize>,
    /// The last upload slot ended (watched by the heartbeat and [`let_go_when_ended`]).
    finished: Signal,
    /// Upload slots holding events (sending them, or about to).
    busy: Cell<usize>,
    /// Bumped each time `busy` drops to 0: idle slots then end.
    all_idle: Signal,
    /// [`Shared::work`]'s count when the last claim began: a wake-up since may mean new work.
    claim_seen: Cell<u64>,
    /// The last claim was full: there may be more.
    more: Cell<bool>,
    /// No claims after this (monotonic ms): see [`PASS_CLAIMS_FOR_MS`].
    claim_until: f64,
    /// When the pass first had to end (its claim window over, or a pass asked for), monotonic
    /// ms; `INFINITY` until then. See [`Pass::held_open`].
    ending: Cell<f64>,
    /// When each upload out now began (its token call and request), monotonic ms.
    sending: RefCell<Vec<f64>>,
    /// The platform reports offline: this pass is the one probe (see [`offline_probe_every`]).
    probing: bool,
    /// No more uploads in this pass (no answer from the server, lost lead, logout).
    stop: Cell<bool>,
    unreachable: Cell<bool>,
    answered: Cell<bool>,
    claiming: Mutex<()>,
    failure: RefCell<Option<Error>>,
}

impl Pass<'_> {
    /// Still wanted: same session, still the uploader, not told to stop.
    fn wanted(&self) -> bool {
        !self.stop.get() && !self.ended() && self.shared.leads(self.generation) && !self.shared.is_closing()
    }

    /// The session this pass is for has ended (a switch of user, a logout, `close()`): what it
    /// meets is old news for the current session (network state, batch size, retry schedule).
    fn ended(&self) -> bool {
        !self.shared.is_current(self.generation)
    }

    /// Claims up to `n` events. `None`: nothing left to do in this pass.
    async fn claim(&self, n: u32) -> Option<Vec<Claimed>> {
        if !self.more.get() || !self.wanted() {
            return None;
        }
        let (shared, user) = (self.shared, self.user);
        let (cfg, log) = (&shared.config, shared.log);
        if self.must_end() && !self.held_open() {
            // The pass ends with what it has; the next one (an asked-for pass first) starts at once.
            log.debug(|| format!("pass for user {user} ends (claiming for {PASS_CLAIMS_FOR_MS} ms at most, or a pass was asked for); the next one goes on"));
            self.more.set(false);
            shared.wake();
            return None;
        }
        let n = if self.probing { 1 } else { n };
        self.claim_seen.set(shared.work.count());
        let due = shared.take_due(mono(), PROMOTE_PER_CLAIM as usize);
        let waiting = |id: &str| shared.is_scheduled(id);
        let claim = match shared.store.claim(user, &self.lead, n, &due, &waiting, cfg.retry.longest_wait()).await {
            Ok(c) => c,
            Err(e) => {
                // Due again in a second (not at once: storage that refuses fast would spin).
                for id in &due {
                    shared.schedule(id, mono() + 1_000.0);
                }
                self.more.set(false);
                self.failure.borrow_mut().get_or_insert(e);
                return None;
            }
        };
        if let Some(lost) = claim.fenced {
            log.warn(|| lost.lost(user));
            shared.clear_lead(self.generation);
            self.stop.set(true);
            return None;
        }
        let t = mono();
        for (id, wait) in &claim.waits {
            shared.schedule(id, t + *wait as f64);
        }
        if claim.quarantined > 0 {
            log.warn(|| format!("{} unreadable records were set aside (kept in quarantine, not deleted; see stats().quarantined)", claim.quarantined));
        }
        for (id, entry, message) in &claim.gave_up {
            log.warn(|| format!("event {id} gave up unsent ({message}); entry {entry}"));
        }
        // Promoted by the wall clock before this context's schedule handed them out: not again.
        for id in &claim.promoted {
            shared.unschedule(id);
        }
        let got = claim.items.len() as u32;
        self.more.set(got >= n && !self.probing);
        let first = {
            let mut r = self.report.borrow_mut();
            r.promoted += claim.promoted.len() as u32;
            r.gave_up += claim.gave_up.len() as u32;
            let first = r.claimed == 0;
            r.claimed += got;
            first
        };
        if got == 0 {
            if !claim.gave_up.is_empty() {
                shared.changed();
            }
            return None;
        }
        if first {
            log.info(|| format!("pass started for user {user} (batch size {n}): {got} events claimed"));
        } else {
            log.info(|| format!("pass for user {user} continues: {got} more events claimed"));
        }
        for c in &claim.items {
            let e = &c.event;
            // Ours from the claim on: never stale here, until uploaded and recorded or handed back.
            shared.taking_off(&e.id, e.claims);
            log.info(|| {
                format!(
                    "event {} ({} of entry {}) claimed (attempt {} of {}; request {})",
                    e.id,
                    e.operation.as_str(),
                    e.entity_id,
                    e.attempt_count + 1,
                    e.max_attempts,
                    e.request_count
                )
            });
        }
        shared.changed();
        Some(claim.items)
    }

    /// Nothing to claim right now, yet another slot still has an upload out (a slow or hung
    /// server, up to `requestTimeoutMs`). Rather than end and leave the pass, and with it every
    /// new save, waiting for that upload, the idle slot waits for new work (a save or an edit
    /// wakes the processor) and claims again. `true`: claim again; `false`: this slot is done.
    async fn idle(&self) -> bool {
        let shared = self.shared;
        loop {
            let may_claim = self.wanted() && !self.probing && self.failure.borrow().is_none() && (!self.must_end() || self.held_open());
            if self.busy.get() == 0 || !may_claim {
                return false;
            }
            let (seen, idle_seen) = (self.claim_seen.get(), self.all_idle.count());
            if shared.work.count() != seen {
                self.more.set(true);
                return true;
            }
            first(shared.work.since(seen), self.all_idle.since(idle_seen)).await;
        }
    }

    /// Should the pass end (stop claiming)? Its claim window is over, or a pass was asked for
    /// (`processNow()`, another context's request): it hands over at its next claim. Notes when
    /// that first became so.
    fn must_end(&self) -> bool {
        let must = mono() >= self.claim_until || self.shared.asked.get() > 0;
        if must && self.ending.get() == f64::INFINITY {
            self.ending.set(mono());
        }
        must
    }

    /// An upload begun before the pass had to end (as first noted by [`Pass::must_end`], at a
    /// claim or an idle slot's look) is still out: a slow or hung server or token function, up to
    /// a token call and a request. The pass cannot end before it anyway, so it goes on claiming
    /// what comes meanwhile rather than hold every new save (and the pass asked for) behind it.
    /// Uploads begun later never hold it open, so it claims for one upload's bound at most past
    /// that point, then ends once what it claimed is sent.
    fn held_open(&self) -> bool {
        let ending = self.ending.get();
        self.sending.borrow().iter().any(|&began| began < ending)
    }

    /// Counts an upload as out until the guard is dropped (see [`Pass::held_open`]).
    fn sending(&self) -> impl Drop + '_ {
        struct Sending<'p, 'a>(&'p Pass<'a>, f64);
        impl Drop for Sending<'_, '_> {
            fn drop(&mut self) {
                let uploads = &self.0.shared.uploads_out;
                uploads.set(uploads.get() - 1);
                let mut out = self.0.sending.borrow_mut();
                if let Some(i) = out.iter().position(|&began| began == self.1) {
                    out.swap_remove(i);
                }
            }
        }
        let began = mono();
        let uploads = &self.shared.uploads_out;
        uploads.set(uploads.get() + 1);
        self.sending.borrow_mut().push(began);
        Sending(self, began)
    }

    /// Counts a slot as holding events until the guard is dropped; the last one to let go tells
    /// the idle slots to end.
    fn busy(&self) -> impl Drop + '_ {
        struct Busy<'p, 'a>(&'p Pass<'a>);
        impl Drop for Busy<'_, '_> {
            fn drop(&mut self) {
                let left = self.0.busy.get() - 1;
                self.0.busy.set(left);
                if left == 0 {
                    self.0.all_idle.notify_all();
                }
            }
        }
        self.busy.set(self.busy.get() + 1);
        Busy(self)
    }

    fn decide(&self, c: &Claimed, outcome: &Outcome) -> Done {
        let e = &c.event;
        let at = now();
        let attempt = e.attempt();
        let answered = outcome.answered();
        if answered {
            self.answered.set(true);
        } else {
            self.unreachable.set(true);
            self.stop.set(true);
        }
        Done { claimed: c.clone(), decision: decide(outcome, attempt, &self.shared.config.retry, at), answered, attention: outcome.needs_attention(), at }
    }

    /// An upload slot is done; the last one tells the recorder and the heartbeat.
    fn slot_ended(&self) {
        let left = self.workers_left.get() - 1;
        self.workers_left.set(left);
        self.results_ready.notify();
        if left == 0 {
            self.finished.notify_all();
        }
    }

    fn push(&self, done: Done) {
        self.results.borrow_mut().push(done);
        self.results_ready.notify();
    }

    /// A claim goes back unsent when the pass ends; in flight here until then (an edit of its
    /// entry may still take it back and fold into it).
    fn hand_back(&self, c: &Claimed) {
        self.released.borrow_mut().push((c.event.id.clone(), c.event.claims));
    }
}

/// One upload slot (one event per request): takes events off the pass's queue, claiming more
/// when it runs dry, until the pass has nothing left.
async fn single_worker(pass: &Pass<'_>, workers: usize) {
    let shared = pass.shared;
    loop {
        let next = pass.queue.borrow_mut().pop_front();
        let _busy = next.is_some().then(|| pass.busy());
        // Keep the queue ahead of the uploads: when it runs short, one slot claims the next batch
        // while the others go on uploading what is left (instead of all waiting for the claim).
        if next.is_some() && pass.more.get() && pass.queue.borrow().len() < workers {
            if let Some(_turn) = pass.claiming.try_lock() {
                if let Some(items) = pass.claim(shared.config.batch_size).await {
                    pass.queue.borrow_mut().extend(items);
                }
            }
        }
        let c = match next {
            Some(c) => c,
            None => {
                let claimed = {
                    let _turn = pass.claiming.lock().await;
                    if !pass.queue.borrow().is_empty() {
                        continue;
                    }
                    pass.claim(shared.config.batch_size).await
                };
                match claimed {
                    Some(items) => {
                        pass.queue.borrow_mut().extend(items);
                        continue;
                    }
                    None if pass.idle().await => continue,
                    None => break,
                }
            }
        };
        if !pass.wanted() {
            pass.hand_back(&c);
            continue;
        }
        if !shared.start_sending(&c.event.id, c.event.claims) {
            pass.hand_back(&c); // an edit of its entry took it back
            continue;
        }
        shared.log.info(|| format!("uploading event {} ({} of entry {})", c.event.id, c.event.operation.as_str(), c.event.entity_id));
        let wanted = || pass.wanted();
        let sent = {
            let _out = pass.sending();
            shared.transport.send_one(&c, &wanted).await
        };
        match sent {
            Some(outcome) => {
                pass.report.borrow_mut().requests += u32::from(!matches!(outcome, Outcome::Token(_)));
                let done = pass.decide(&c, &outcome);
                pass.push(done);
            }
            None => pass.hand_back(&c),
        }
    }
    pass.slot_ended();
}

/// One upload slot with `batchEndpoint`: claims a batch (at most one event per entry: only the
/// head of each entry's queue is claimable) and sends it in one request, until nothing is left.
async fn batch_worker(pass: &Pass<'_>, url: &str) {
    let shared = pass.shared;
    loop {
        let size = network().batch(shared.batch.get().get());
        let claimed = {
            let _turn = pass.claiming.lock().await;
            pass.claim(size).await
        };
        let Some(mut items) = claimed else {
            if pass.idle().await {
                continue;
            }
            break;
        };
        let _busy = pass.busy();
        if !pass.wanted() {
            items.iter().for_each(|c| pass.hand_back(c));
            break;
        }
        items.retain(|c| {
            let go = shared.start_sending(&c.event.id, c.event.claims);
            if !go {
                pass.hand_back(c); // an edit of its entry took it back
            }
            go
        });
        if items.is_empty() {
            continue;
        }
        shared.log.info(|| format!("uploading a batch of {} events to {url}", items.len()));
        let wanted = || pass.wanted();
        let sent = {
            let _out = pass.sending();
            shared.transport.send_batch(url, &items, pass.user, &wanted).await
        };
        match sent {
            Some((outcomes, signal)) => {
                pass.report.borrow_mut().requests += u32::from(!matches!(outcomes.first(), Some(Some(Outcome::Token(_)))));
                // What a batch of a session that ended met is old news, as for the network.
                if !pass.ended() {
                    let mut size = shared.batch.get();
                    size.on(signal);
                    shared.batch.set(size);
                }
                for (i, (c, outcome)) in items.iter().zip(&outcomes).enumerate() {
                    // A 401 whose second request was no longer wanted: never decided on the first.
                    let Some(outcome) = outcome else {
                        pass.hand_back(c);
                        continue;
                    };
                    let mut done = pass.decide(c, outcome);
                    // A failed batch is one failed answer for health, not one per item; a batch
                    // too big for the server is none (it goes again, smaller, at once).
                    done.answered &= (i == 0 || !matches!(outcome, Outcome::Batch { .. })) && !matches!(outcome, Outcome::BatchTooLarge(_));
                    pass.push(done);
                }
            }
            None => items.iter().for_each(|c| pass.hand_back(c)),
        }
    }
    pass.slot_ended();
}

/// Renews the uploader heartbeat every processing interval while the pass's upload slots run:
/// one upload may take a token call and a request of up to `requestTimeoutMs` each, longer than
/// followers wait for a heartbeat (`2 × processingIntervalMs + requestTimeoutMs + 1 s`), and a
/// live uploader must not look gone. A record naming another uploader stops the pass.
async fn heartbeat(pass: &Pass<'_>) {
    let shared = pass.shared;
    let every = shared.config.processing_interval_ms.clamp(100, 60_000);
    loop {
        first(sleep(every), pass.finished.since(0)).await;
        if pass.workers_left.get() == 0 {
            return;
        }
        if let Ok(lost @ (Renewal::TakenOver | Renewal::Gone)) = shared.store.beat(pass.user, &pass.lead).await {
            shared.log.warn(|| format!("{}: this pass sends nothing more", lost.lost(pass.user)));
            shared.clear_lead(pass.generation);
            pass.stop.set(true);
            return;
        }
    }
}

/// Hands back at once what a pass whose session ended claimed and will never send (it would
/// otherwise show `processing` until the uploads still out end, up to a request timeout). What
/// storage refuses now is handed back with the rest when the pass ends.
async fn hand_back_unsent(pass: &Pass<'_>) {
    // A claim under way lands first (it may commit after the session ended), and a slot that
    // held an event while it claimed puts that back (`Pass::hand_back`) before this runs.
    let _claiming = pass.claiming.lock().await;
    let mut claims = std::mem::take(&mut *pass.released.borrow_mut());
    claims.extend(pass.queue.borrow_mut().drain(..).map(|c| (c.event.id.clone(), c.event.claims)));
    match release_unsent(pass.shared, pass.user, &pass.report, claims).await {
        Ok(true) => pass.shared.changed(),
        Ok(false) => {}
        Err((_, claims)) => pass.released.borrow_mut().extend(claims),
    }
}

/// Hands claims never sent back to the queue, counted in `report`. `Ok(false)`: there were none.
/// `Err`: storage refused; the claims come back to the caller (still `processing` here).
async fn release_unsent(
    shared: &Rc<Shared>,
    user: &str,
    report: &RefCell<PassReport>,
    claims: Vec<(String, u32)>,
) -> std::result::Result<bool, (Error, Vec<(String, u32)>)> {
    if claims.is_empty() {
        return Ok(false);
    }
    match shared.store.release(&claims).await {
        Ok(n) => {
            report.borrow_mut().released += n;
            for (id, claim) in &claims {
                shared.handed_back(id, *claim);
            }
            shared.log.info(|| format!("{} claimed events of user {user} handed back unsent", claims.len()));
            Ok(true)
        }
        Err(e) => Err((e, claims)),
    }
}

/// Lets the pass gate go once the session this pass is for has ended (see [`run_pass`]).
async fn let_go_when_ended(pass: &Pass<'_>) {
    let shared = pass.shared;
    loop {
        let seen = shared.work.count();
        if pass.workers_left.get() == 0 {
            return;
        }
        if pass.ended() {
            if pass.busy.get() > 0 {
                shared.log.info(|| format!("user {} is no longer current: the uploads of it still out finish in the background", pass.user));
            }
            (pass.let_go)();
            hand_back_unsent(pass).await;
            return;
        }
        first(shared.work.since(seen), pass.finished.since(0)).await;
    }
}

/// Group commit of upload results: one writer per pass takes every result that has arrived and
/// records them in one transaction, while the upload slots keep uploading.
async fn recorder(pass: &Pass<'_>) {
    let (shared, user) = (pass.shared, pass.user);
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
        let items: Vec<Result_<'_>> = batch
            .iter()
            .map(|d| Result_ { event_id: &d.claimed.event.id, claim: d.claimed.event.claims, decision: &d.decision, answered: d.answered, at: d.at })
            .collect();
        // The heartbeat is renewed while the record names this pass's lead (checked in the write).
        let written = shared.store.record(&items, Some(&pass.lead)).await;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                // Kept in flight here (never stale) until storage takes them: every pass retries.
                log.warn(|| format!("{} upload results of user {user} could not be recorded yet ({e}); they are retried", batch.len()));
                shared.pass_failed(user, &e);
                keep_unrecorded(
                    shared,
                    batch.into_iter().map(|d| Unrecorded {
                        user: user.to_owned(),
                        event_id: d.claimed.event.id,
                        claim: d.claimed.event.claims,
                        decision: d.decision,
                        answered: d.answered,
                        at: d.at,
                    }),
                );
                continue;
            }
        };
        let t = mono();
        if let Some(d) = batch.iter().find(|d| d.attention) {
            let n = batch.iter().filter(|d| d.attention).count();
            let why = match &d.decision {
                Decision::Retry { message, .. } | Decision::GiveUp { message, .. } => message.as_str(),
                Decision::Complete { .. } => "",
            };
            log.warn(|| {
                format!("{n} uploads of user {user} failed for want of a valid token ({why}): check the token option of Outbox.open; they are retried")
            });
        }
        // An entry's next event, let go by this one's end, is uploaded now rather than at the
        // next tick (a chain of edits would otherwise take one processing interval per edit).
        let mut next_free = false;
        for (d, w) in batch.iter().zip(written) {
            let id = &d.claimed.event.id;
            shared.landed(id, d.claimed.event.claims);
            let Recorded::Applied(e, applied) = w else {
                log.debug(|| format!("event {id}: its result arrived after it moved on; ignored"));
                continue;
            };
            next_free |= e.blocks && !matches!(applied, Applied::Retrying);
            // Counted with no borrow held while the console is written to (a console wrapper may
            // call back in).
            let count = |f: fn(&mut PassReport) -> &mut u32| *f(&mut pass.report.borrow_mut()) += 1;
            match (&d.decision, applied) {
                (Decision::Complete { backend_id }, _) => {
                    count(|r| &mut r.completed);
                    let b = backend_id.as_deref().unwrap_or("-");
                    log.info(|| {
                        format!(
                            "event {id} completed: {} of entry {} acknowledged (backend id {b}, {} ms after it was written)",
                            e.operation.as_str(),
                            e.entity_id,
                            d.at - e.created_at
                        )
                    });
                }
                (Decision::Retry { message, wait_ms, .. }, Applied::Retrying) => {
                    count(|r| &mut r.retrying);
                    // The schedule is the current session's: a lead of this user reads it again.
                    if !pass.ended() {
                        shared.schedule(id, t + *wait_ms as f64);
                    }
                    let next = e.next_attempt_at.map(to_iso8601).unwrap_or_default();
                    log.info(|| format!("event {id} failed ({message}): {} failed answers of {}, next attempt at {next}", e.attempt_count, e.max_attempts));
                }
                (Decision::GiveUp { message, .. }, _) | (Decision::Retry { message, .. }, _) => {
                    // (A retry recorded as gave up cannot happen: `apply` gives up only on GiveUp.)
                    count(|r| &mut r.gave_up);
                    log.warn(|| format!("event {id} failed and gave up ({message}); entry {} is kept; resetForRetry([\"{id}\"]) sends it again", e.entity_id));
                }
            }
        }
        if next_free {
            shared.wake();
        }
        shared.changed();
    }
}

/// An event listener to remove on drop: (target, event name, callback).
type Listener = (web_sys::EventTarget, &'static str, Closure<dyn FnMut()>);

fn listen(target: &JsValue, event: &'static str, f: impl FnMut() + 'static) -> Option<Listener> {
    let target = target.clone().dyn_into::<web_sys::EventTarget>().ok()?;
    let listener = Closure::<dyn FnMut()>::new(f);
    target.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref()).ok()?;
    Some((target, event, listener))
}

/// The running processor. Dropping it stops it: no new pass or upload starts, in-flight uploads
/// finish and are recorded, leadership is given up, timers and listeners are removed.
#[must_use = "dropping the handle stops the processor"]
pub struct Running {
    cancelled: Rc<Cell<bool>>,
    wake: Rc<Notify>,
    _ticker: Ticker,
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

/// Starts the processor for the current session: it competes for leadership of `user`'s
/// uploads and runs passes while it leads. The tick also refreshes subscribers (health ages).
pub fn spawn(shared: Rc<Shared>, user: String, generation: u64) -> Running {
    let cancelled = Rc::new(Cell::new(false));
    let wake = Rc::new(Notify::default());
    shared.set_wake(Some(wake.clone()));
    let ticker = Ticker::new(shared.config.processing_interval_ms, &wake);
    // Started while already offline: the first probe comes one probe interval from now.
    if !is_online() {
        shared.net.borrow_mut().last_probe = mono();
    }
    let leadership = Leadership::new(shared.clone(), &user, generation);
    let mut listeners = Vec::new();
    for event in ["online", "offline"] {
        let (w, s) = (wake.clone(), Rc::downgrade(&shared));
        listeners.extend(listen(&global(), event, move || {
            if let Some(s) = s.upgrade() {
                if event == "online" {
                    s.net.borrow_mut().until = 0.0;
                } else {
                    // No upload starts while offline: the first probe comes one probe interval
                    // after the platform went offline, not at the next tick.
                    s.net.borrow_mut().last_probe = mono();
                }
            }
            w.notify();
            if let Some(s) = s.upgrade() {
                s.subscribers.changed(&s);
            }
        }));
    }
    // Page Lifecycle: a page about to be frozen lets go of the lock so others need not wait.
    let document = get(&global(), "document");
    if !document.is_undefined() {
        let on_freeze = leadership.on_freeze();
        listeners.extend(listen(&document, "freeze", on_freeze));
    }
    wasm_bindgen_futures::spawn_local(campaign(shared, user, generation, cancelled.clone(), wake.clone(), leadership));
    Running { cancelled, wake, _ticker: ticker, listeners }
}

async fn campaign(shared: Rc<Shared>, user: String, generation: u64, cancelled: Rc<Cell<bool>>, wake: Rc<Notify>, mut leadership: Leadership) {
    let cfg = &shared.config;
    let log = shared.log;
    shared.campaigns.set(shared.campaigns.get() + 1);
    log.info(|| {
        format!("processor started for user {user} (every {} ms, batch {}, {} concurrent)", cfg.processing_interval_ms, cfg.batch_size, cfg.max_concurrent)
    });
    while !cancelled.get() && shared.is_current(generation) {
        if !leadership.acquire(&cancelled, &wake).await {
            break;
        }
        lead(&shared, &user, generation, &cancelled, &wake, &leadership).await;
        leadership.release().await;
        if !cancelled.get() && shared.is_current(generation) {
            log.info(|| format!("no longer the uploader for user {user}; waiting to take over again"));
        }
    }
    log.info(|| format!("processor stopped for user {user}"));
    shared.campaigns.set(shared.campaigns.get() - 1);
    shared.campaign_ended.notify();
}

/// Loads the retrying events of `user` into this context's schedule (monotonic deadlines, never
/// further than their wait: a clock set back does not stretch them). False when they could not
/// be read: the caller tries again later (without the schedule, retries come due on
/// the wall clock alone, and a clock set back would hold them back).
async fn load_schedule(shared: &Shared, user: &str) -> bool {
    match shared.store.in_state(user, StateKey::Retrying).await {
        Ok((retrying, unreadable)) => {
            if !unreadable.is_empty() {
                shared.store.set_aside(&unreadable, false).await;
            }
            let (t, wall, longest) = (mono(), now(), shared.config.retry.longest_wait());
            for e in retrying {
                // One this lead scheduled itself (a result recorded during the read, or by a
                // pass after a read that failed) keeps its own deadline, timed here.
                if let (Some(at), false) = (e.next_attempt_at, shared.is_scheduled(&e.id)) {
                    shared.schedule(&e.id, t + remaining_wait(at, e.wait_ms, wall, longest) as f64);
                }
            }
            true
        }
        Err(e) => {
            shared.log.warn(|| format!("the retry schedule of user {user} could not be read ({e}); trying again in a while"));
            false
        }
    }
}

/// The processing loop, while this context leads.
async fn lead(shared: &Rc<Shared>, user: &str, generation: u64, cancelled: &Cell<bool>, wake: &Rc<Notify>, leadership: &Leadership) {
    let cfg = &shared.config;
    let log = shared.log;
    // Read at the first turn, and again until it could be read. A new lead starts
    // from what storage says (another context may have recorded retries meanwhile).
    shared.clear_schedule();
    let mut scheduled = false;
    // A read that failed is made again 1 s, 2 s, 4 s ... 60 s later, not at every turn: it reads
    // every retrying event, and one stuck behind another tab's transaction takes the call bound.
    let (mut reread_at, mut reread_wait) = (0.0, 1_000.0);
    let mut next_cleanup = mono();
    let mut alarm = Alarm::default();
    let mut pass_failed;
    loop {
        {
            while shared.asked.get() > 0 {
                sleep(10).await;
            }
            let turn = RefCell::new(Some(shared.gate.lock().await));
            if cancelled.get() || !shared.is_current(generation) {
                return;
            }
            if !leadership.renew().await {
                return;
            }
            if !scheduled && mono() >= reread_at {
                scheduled = load_schedule(shared, user).await;
                reread_at = mono() + reread_wait;
                reread_wait = (reread_wait * 2.0).min(60_000.0);
            }
            pass_failed = run_pass(shared, user, generation, false, None, &|| drop(turn.take())).await.map_err(|e| note_pass_failure(shared, user, e)).is_err();
            if mono() >= next_cleanup && !cancelled.get() && shared.is_current(generation) {
                match shared.store.cleanup(now(), cfg.retention_ms).await {
                    Ok(n) => {
                        log.info(|| format!("cleanup: deleted {n} completed events older than {} ms", cfg.retention_ms));
                        if n > 0 {
                            shared.changed();
                        }
                    }
                    Err(e) => log.warn(|| format!("cleanup failed: {e}")),
                }
                next_cleanup = mono() + cfg.cleanup_interval_ms as f64;
            }
        }
        if cancelled.get() || !leadership.still_leads() {
            return;
        }
        if shared.take_step_down() {
            log.info(|| format!("hidden, frozen or a worker: handing the uploads of user {user} to a page that asked"));
            return;
        }
        // Wake at the next interval tick, or earlier when a retry or the cleanup comes due. A
        // retry is woken for no earlier than a pass can claim it: offline, at the next probe;
        // after no answer, when that wait ends (an event's own step can end before it). Woken at
        // its due time, the pass would return without taking it and the loop turn again at once.
        let t = mono();
        let mut soonest = next_cleanup;
        let (until, claimable) = {
            let n = shared.net.borrow();
            (n.until, if is_online() { n.until } else { n.last_probe + offline_probe_every(cfg) })
        };
        if let Some(due) = shared.next_due() {
            soonest = soonest.min(due.max(claimable));
        }
        if until > t {
            soonest = soonest.min(until);
        }
        if !scheduled {
            soonest = soonest.min(reread_at);
        }
        // A pass that failed (storage refusing at once, a claim that failed with more retries due
        // than it takes) is not run again at once: in a second at the soonest, or at the tick.
        if pass_failed {
            soonest = soonest.max(t + 1_000.0);
        }
        alarm.at_most((soonest - t).max(0.0) as u64 + 1, t, wake);
        wake.notified().await;
    }
}
