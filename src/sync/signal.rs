//! Tiny single-threaded async primitives (the wasm main thread has no others to race with):
//! a wake-up flag, a one-at-a-time gate, and joining a few futures.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A sticky wake-up: `notify` before `notified` is not lost.
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
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }
}

/// Future of [`Notify::notified`].
pub struct Notified<'a> {
    notify: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.flag.replace(false) {
            Poll::Ready(())
        } else {
            *self.notify.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Lets one holder in at a time, the rest in arrival order.
#[derive(Default)]
pub struct Gate {
    busy: Cell<bool>,
    queue: RefCell<VecDeque<Rc<Cell<Option<Waker>>>>>,
}

/// Held while inside the gate; leaving lets the next waiter in.
pub struct GateGuard<'a> {
    gate: &'a Gate,
}

impl Gate {
    /// Waits for the gate.
    pub async fn enter(&self) -> GateGuard<'_> {
        if self.busy.get() || !self.queue.borrow().is_empty() {
            let slot = Rc::new(Cell::new(None));
            self.queue.borrow_mut().push_back(slot.clone());
            WaitTurn { gate: self, slot }.await;
        }
        self.busy.set(true);
        GateGuard { gate: self }
    }
}

struct WaitTurn<'a> {
    gate: &'a Gate,
    slot: Rc<Cell<Option<Waker>>>,
}

impl Future for WaitTurn<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let first = self.gate.queue.borrow().front().is_some_and(|s| Rc::ptr_eq(s, &self.slot));
        if !self.gate.busy.get() && first {
            self.gate.queue.borrow_mut().pop_front();
            Poll::Ready(())
        } else {
            self.slot.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }
}

impl Drop for WaitTurn<'_> {
    fn drop(&mut self) {
        // A waiter that gives up leaves the queue (and passes its turn on).
        let mut q = self.gate.queue.borrow_mut();
        if let Some(i) = q.iter().position(|s| Rc::ptr_eq(s, &self.slot)) {
            q.remove(i);
            if i == 0 {
                if let Some(w) = q.front().and_then(|s| s.take()) {
                    w.wake();
                }
            }
        }
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.gate.busy.set(false);
        if let Some(w) = self.gate.queue.borrow().front().and_then(|s| s.take()) {
            w.wake();
        }
    }
}

/// Runs futures concurrently and resolves when all have.
pub struct JoinAll<'a> {
    futures: Vec<Option<Pin<Box<dyn Future<Output = ()> + 'a>>>>,
}

/// Joins `futures` (a handful: polling all on each wake-up is cheaper than bookkeeping).
pub fn join_all<'a>(futures: Vec<Pin<Box<dyn Future<Output = ()> + 'a>>>) -> JoinAll<'a> {
    JoinAll { futures: futures.into_iter().map(Some).collect() }
}

impl Future for JoinAll<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut pending = false;
        for slot in self.futures.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// Resolves with whichever of two futures finishes first (`true` = the first).
pub async fn first<A: Future, B: Future>(a: A, b: B) -> bool {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
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
