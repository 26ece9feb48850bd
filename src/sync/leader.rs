//! One uploader per user among every tab, worker and service worker of an origin that uses the
//! same database. This file is the one owner of leadership.
//!
//! - **Web Locks** (lock `progress-outbox:{dbName}:{userId}`): the uploader holds the lock; the
//!   others wait in its queue. A closed or crashed context releases it at once, and the next in
//!   line starts a pass immediately.
//! - **The uploader record** (`domain::lease`): whoever gets the lock writes itself into the
//!   user's record with the next generation. Every claim checks the record still names it
//!   (fencing), every pass and recorded result renews its heartbeat. Without Web Locks the same
//!   record is a lease, taken by compare-and-set.
//! - **Followers** watch the heartbeat on their own monotonic clock: one that stands still for
//!   `2 × processingIntervalMs + requestTimeoutMs + 1 s`, or a record that stays missing, means the
//!   uploader is gone (frozen, hung, or its database wiped): the follower steals the lock.
//! - **Visible pages come first**: a visible follower asks (`WantLead`); an uploader that is a
//!   hidden page or a worker steps down and queues again. A page also lets go on `freeze`.
//!
//! The lock is per user, not per database: claims are per user, so two tabs logged in as two
//! users both upload without ever touching the same event.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::Shared;
use crate::domain::lease::{takeover_after_ms, uploader_gone_in, BeatWatch};
use crate::platform::channel::Message;
use crate::platform::locks::{self, Lock};
use crate::platform::timer::{first, sleep, Notify};
use crate::platform::{is_hidden_page, is_visible_page, is_worker, mono};
use crate::store::lease::Renewal;
use crate::store::queue::Lead;

/// The upload lock, shared by the leadership and the page's `freeze` listener.
pub type SharedLock = Rc<RefCell<Option<Lock>>>;

pub use crate::domain::lease::lock_name;

/// Should an uploader here hand over to a visible page that asks? Yes if this is a hidden page
/// (throttled timers) or a worker (a service worker is stopped when idle).
pub fn yields_to_visible_pages() -> bool {
    is_worker() || is_hidden_page()
}

/// This context's place in the leadership of one user's uploads.
pub struct Leadership {
    shared: Rc<Shared>,
    user: String,
    generation: u64,
    /// Shared with the page's `freeze` listener, which must let go synchronously.
    lock: SharedLock,
    lead: Option<Lead>,
    watch: BeatWatch,
}

impl Leadership {
    /// Prepares (does not request) leadership of `user`'s uploads for session `generation`.
    pub fn new(shared: Rc<Shared>, user: &str, generation: u64) -> Leadership {
        Leadership { shared, user: user.to_owned(), generation, lock: Rc::default(), lead: None, watch: BeatWatch::default() }
    }

    fn takeover_ms(&self) -> f64 {
        takeover_after_ms(self.shared.config.processing_interval_ms, self.shared.config.request_timeout_ms)
    }

    fn name(&self) -> String {
        lock_name(&self.shared.config.db_name, &self.user)
    }

    /// Waits until this context leads `user`'s uploads; `false` if `cancelled` first. While it
    /// waits it does a follower's duties: asks a hidden uploader to step down when this context
    /// is a visible page, and takes over from an uploader whose heartbeat stopped.
    pub async fn acquire(&mut self, cancelled: &Cell<bool>, wake: &Rc<Notify>) -> bool {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        self.watch.reset();
        loop {
            if cancelled.get() {
                self.lock.borrow_mut().take();
                return false;
            }
            let mut with_locks = locks::available();
            if with_locks && self.lock.borrow().as_ref().is_none_or(|l| l.settled()) {
                // Not asked yet, or the request ended without the lock (aborted, stolen): queue.
                let request = locks::request(&self.name(), false, wake);
                // Web Locks that refuse to work here (an opaque-origin frame): the record is the lease.
                with_locks = request.is_some();
                *self.lock.borrow_mut() = request;
            }
            let granted = self.lock.borrow().as_ref().is_some_and(|l| l.held());
            let record = shared.store.leader(&self.user).await;
            let mut next_look = cfg.processing_interval_ms.clamp(1, 60_000) as f64;
            if granted {
                if let Ok(Some(lead)) = shared.store.take_lead(&self.user, &shared.instance_id, None).await {
                    return self.became(lead, "lock");
                }
            } else if let Ok(record) = record {
                let still = self.watch.observe(record.clone(), mono());
                let left = uploader_gone_in(record.as_ref(), still, self.takeover_ms(), cfg.processing_interval_ms);
                let gone = left <= 0.0;
                // Looked at again when the wait runs out, not up to an interval later.
                next_look = next_look.min(left.max(0.0) + 1.0);
                if !with_locks {
                    // The record is the lease: free when missing, or when its beat stopped.
                    if record.as_ref().is_none_or(|b| b.owner.is_empty()) || gone {
                        if let Ok(Some(lead)) = shared.store.take_lead(&self.user, &shared.instance_id, Some(&record)).await {
                            return self.became(lead, "lease; no Web Locks here");
                        }
                    }
                } else if gone {
                    shared.log.warn(|| {
                        format!(
                            "the uploader of user {} showed no sign of life for {} ms (frozen or hung, or its database was wiped): taking over",
                            self.user, still as u64
                        )
                    });
                    let steal = locks::request(&self.name(), true, wake);
                    *self.lock.borrow_mut() = steal;
                    self.watch.reset();
                    continue;
                }
            }
            if is_visible_page() {
                shared.post(&Message::WantLead { user: self.user.clone() });
            }
            first(sleep(next_look as u64), wake.notified()).await;
            // A follower's subscribers see health age too ("stalled" comes without any write).
            shared.subscribers.changed(&shared);
        }
    }

    fn became(&mut self, lead: Lead, how: &str) -> bool {
        let shared = &self.shared;
        shared.log.info(|| format!("this context now uploads for user {} ({how}, generation {})", self.user, lead.gen));
        shared.post(&Message::Lead { user: self.user.clone(), owner: lead.owner.clone(), gen: lead.gen as f64 });
        let lock = locks::available().then(|| self.lock.clone());
        shared.set_lead(self.generation, lead.clone(), lock);
        self.lead = Some(lead);
        true
    }

    /// What the page's `freeze` listener runs: a frozen page runs no more code, so the lock is
    /// released at once and this context stops leading (its loop steps down when it thaws).
    pub fn on_freeze(&self) -> impl Fn() + 'static {
        let (lock, shared, generation) = (Rc::downgrade(&self.lock), Rc::downgrade(&self.shared), self.generation);
        move || {
            let shared = shared.upgrade();
            let leading = shared.as_ref().is_some_and(|s| s.leads(generation));
            let released = lock.upgrade().and_then(|l| l.borrow_mut().take()).is_some();
            // Only a lead steps down (a follower's queued request is simply withdrawn): a
            // step-down asked of a follower would end its next lead after one pass, for nothing.
            if let (Some(s), true) = (shared, leading) {
                if released {
                    s.clear_lead(generation);
                    s.log.info(|| "page freezing: the upload lock was released for another context".into());
                }
                s.request_step_down();
            }
        }
    }

    /// Cheap check before every claim and every upload: still the uploader (lock not stolen,
    /// not fenced off by a newer uploader's announcement, not given away on freeze)?
    pub fn still_leads(&self) -> bool {
        self.lead.is_some() && self.shared.leads(self.generation)
    }

    /// At the start of each pass: still the uploader? Renews the heartbeat; an uploader that
    /// cannot write it (its database is gone) steps down.
    pub async fn renew(&self) -> bool {
        let Some(lead) = &self.lead else { return false };
        if !self.still_leads() {
            return false;
        }
        match self.shared.store.beat(&self.user, lead).await {
            Ok(Renewal::Renewed) => self.still_leads(),
            Ok(lost) => {
                self.shared.log.warn(|| lost.lost(&self.user));
                false
            }
            Err(e) => {
                self.shared.log.warn(|| format!("cannot write the uploader heartbeat ({e}): handing the uploads of user {} over", self.user));
                false
            }
        }
    }

    /// Gives leadership up: the lock is released (dropped) and the record cleared, so a follower
    /// need not wait for the heartbeat to stop.
    pub async fn release(&mut self) {
        self.shared.clear_lead(self.generation);
        self.lock.borrow_mut().take();
        if let Some(lead) = self.lead.take() {
            let _ = self.shared.store.release_lead(&self.user, &lead).await;
        }
    }
}
