//! Waiting, on `gloo-timers` (the global `setTimeout`/`setInterval`, so it works in workers):
//! bounded waits, the processor's tick and alarm, and a sticky wake-up flag to kick a loop with.
//! Browser timers measure elapsed time: a change of the device clock never stretches them.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Poll, Waker};

use gloo_timers::callback::{Interval, Timeout};
use gloo_timers::future::TimeoutFuture;

/// The longest delay a browser timer can wait (2^31 - 1 ms); longer ones would fire at once.
pub use crate::domain::config::MAX_TIMER_MS;

fn clamp(ms: u64) -> u32 {
    ms.min(MAX_TIMER_MS) as u32
}

/// Resolves after `ms` milliseconds.
pub fn sleep(ms: u64) -> TimeoutFuture {
    TimeoutFuture::new(clamp(ms))
}

/// Resolves with whichever of two futures finishes first (`true` = the first). The other is
/// dropped (every future here is drop-safe).
pub async fn first<A: Future, B: Future>(a: A, b: B) -> bool {
    let (mut a, mut b) = (pin!(a), pin!(b));
    std::future::poll_fn(move |cx| {
        if a.as_mut().poll(cx).is_ready() {
            Poll::Ready(true)
        } else if b.as_mut().poll(cx).is_ready() {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs futures side by side until all have finished (a handful: polling each on every wake-up
/// costs less than bookkeeping which one woke).
pub async fn join_all(mut futures: Vec<Pin<Box<dyn Future<Output = ()> + '_>>>) {
    std::future::poll_fn(|cx| {
        futures.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if futures.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// `f`'s output, or `None` if it takes longer than `ms` (then `f` is dropped).
pub async fn within<F: Future>(ms: u64, f: F) -> Option<F::Output> {
    let mut out = None;
    let mut f = pin!(f);
    let mut timer = pin!(sleep(ms));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            out = Some(v);
            Poll::Ready(())
        } else if timer.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out
}

/// When a call must have settled, on the monotonic clock (CONTRACT §3: every call settles
/// within 10 s). Counted from the call, so what comes before its transaction (reopening a lost
/// connection, asking the Web Locks) and the transaction share one bound.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(f64);

impl Deadline {
    /// [`crate::platform::idb::CALL_BOUND_MS`] from now.
    pub fn from_now() -> Deadline {
        Deadline(super::mono() + f64::from(super::idb::CALL_BOUND_MS))
    }

    /// Milliseconds left (0 once passed).
    pub fn left(self) -> u64 {
        (self.0 - super::mono()).max(0.0) as u64
    }
}

/// A sticky wake-up: `notify` before `notified` is not lost, and several coalesce into one
/// (ticks that arrive during a slow pass do not queue up).
#[derive(Default)]
pub struct Notify {
    flag: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Wakes the waiter (or the next one to wait).
    pub fn notify(&self) {
        self.flag.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once notified, consuming the notification.
    pub async fn notified(&self) {
        std::future::poll_fn(|cx| {
            if self.flag.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// A counter of wake-ups that any number of waiters can watch: [`Signal::since`] resolves once
/// the count differs from the one a waiter saw (so a wake-up between looking and waiting is not
/// lost), waking every waiter at each [`Signal::notify_all`].
#[derive(Default)]
pub struct Signal {
    count: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Signal {
    /// How many wake-ups so far.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.count.set(self.count.get().wrapping_add(1));
        for w in std::mem::take(&mut *self.wakers.borrow_mut()) {
            w.wake();
        }
    }

    /// Resolves once there was a wake-up after `seen` (a value of [`Signal::count`]).
    pub async fn since(&self, seen: u64) {
        std::future::poll_fn(|cx| {
            if self.count.get() != seen {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// Kicks `notify` every `ms` milliseconds until dropped (`gloo_timers::callback::Interval`).
#[must_use = "the ticker stops when dropped"]
pub struct Ticker(#[allow(dead_code)] Interval);

impl Ticker {
    /// Starts ticking.
    pub fn new(ms: u64, notify: &Rc<Notify>) -> Ticker {
        let n = Rc::downgrade(notify);
        Ticker(Interval::new(clamp(ms.max(1)), move || {
            if let Some(n) = n.upgrade() {
                n.notify();
            }
        }))
    }
}

/// Kicks `notify` once, after a delay that can be moved earlier (`gloo_timers::callback::Timeout`,
/// re-armed): the processor's backoff wake-up.
#[derive(Default)]
pub struct Alarm {
    timeout: Option<Timeout>,
    at: f64,
}

impl Alarm {
    /// Makes sure `notify` is kicked within `ms` from `mono_now` (keeps an earlier alarm).
    pub fn at_most(&mut self, ms: u64, mono_now: f64, notify: &Rc<Notify>) {
        let at = mono_now + ms as f64;
        if self.timeout.is_some() && self.at <= at && self.at > mono_now {
            return;
        }
        let n = Rc::downgrade(notify);
        self.at = at;
        self.timeout = Some(Timeout::new(clamp(ms), move || {
            if let Some(n) = n.upgrade() {
                n.notify();
            }
        }));
    }
}
