//! A coarse timer for hyper's HTTP/1 header-read timeout on the legacy listener: deadlines are
//! checked by one task every [`RESOLUTION`], so a timeout fires up to that much late.
//!
//! Why not Tokio's timer (hyper-util's `TokioTimer`): hyper arms the header-read timer each time
//! a keep-alive connection waits for its next request and drops it when the request head is in,
//! i.e. once per request. Its 10 s deadline is earlier than the lane's 15 s call deadlines that
//! fill Tokio's timer wheel, so every registration woke the runtime's driver to recompute its
//! sleep: one `write` to the driver's eventfd per request, and another turn of the event loop.
//! Registering here is a lock, a slot and a waker clone; no syscall.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often deadlines are checked: the most a timeout fires late.
pub const RESOLUTION: Duration = Duration::from_millis(250);

/// One armed deadline.
#[derive(Debug)]
struct Entry {
    deadline: Instant,
    waker: Waker,
}

/// The armed deadlines, in slots reused through a free list; a slot's generation tells a
/// [`CoarseSleep`] whether its entry is still the one in the slot.
#[derive(Debug, Default)]
struct Entries {
    slots: Vec<(u64, Option<Entry>)>,
    free: Vec<usize>,
}

type Shared = Arc<Mutex<Entries>>;

fn lock(s: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl Entries {
    fn insert(&mut self, entry: Entry) -> (usize, u64) {
        match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i];
                slot.0 += 1;
                slot.1 = Some(entry);
                (i, slot.0)
            }
            None => {
                self.slots.push((0, Some(entry)));
                (self.slots.len() - 1, 0)
            }
        }
    }

    /// The entry in slot `i` when it is still generation `generation`.
    fn get_mut(&mut self, i: usize, generation: u64) -> Option<&mut Entry> {
        match self.slots.get_mut(i) {
            Some((g, Some(e))) if *g == generation => Some(e),
            _ => None,
        }
    }

    fn remove(&mut self, i: usize, generation: u64) {
        if let Some((g, e)) = self.slots.get_mut(i)
            && *g == generation
            && e.take().is_some()
        {
            self.free.push(i);
        }
    }

    /// Takes the wakers of every entry due at `now`.
    fn expire(&mut self, now: Instant, due: &mut Vec<Waker>) {
        for (i, (_, slot)) in self.slots.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|e| e.deadline <= now)
                && let Some(e) = slot.take()
            {
                due.push(e.waker);
                self.free.push(i);
            }
        }
    }
}

/// The timer; clones share their deadlines and the task that checks them, which ends once
/// the last clone and the last of its sleeps are gone.
#[derive(Debug, Clone)]
pub struct Coarse {
    shared: Shared,
}

impl Coarse {
    /// A timer whose checking task runs on the current Tokio runtime (call it inside one).
    pub fn start() -> Self {
        let shared = Shared::default();
        tokio::spawn(tick(Arc::downgrade(&shared)));
        Self { shared }
    }
}

async fn tick(shared: Weak<Mutex<Entries>>) {
    let mut interval = tokio::time::interval(RESOLUTION);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due = Vec::new();
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        lock(&shared).expire(Instant::now(), &mut due);
        drop(shared);
        for w in due.drain(..) {
            w.wake();
        }
    }
}

impl hyper::rt::Timer for Coarse {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep {
            deadline,
            slot: None,
            shared: self.shared.clone(),
        })
    }
}

/// A sleep of the [`Coarse`] timer; it registers on its first pending poll.
#[derive(Debug)]
pub struct CoarseSleep {
    deadline: Instant,
    /// Slot and generation once registered.
    slot: Option<(usize, u64)>,
    shared: Shared,
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if Instant::now() >= this.deadline {
            if let Some((i, g)) = this.slot.take() {
                lock(&this.shared).remove(i, g);
            }
            return Poll::Ready(());
        }
        let mut entries = lock(&this.shared);
        match this.slot {
            Some((i, g)) => match entries.get_mut(i, g) {
                Some(e) => {
                    if !e.waker.will_wake(cx.waker()) {
                        e.waker = cx.waker().clone();
                    }
                }
                // The checking task fired it.
                None => {
                    this.slot = None;
                    return Poll::Ready(());
                }
            },
            None => {
                this.slot = Some(entries.insert(Entry {
                    deadline: this.deadline,
                    waker: cx.waker().clone(),
                }));
            }
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        if let Some((i, g)) = self.slot.take() {
            lock(&self.shared).remove(i, g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer as _;

    /// Sleeps end at (or up to one resolution after) their deadline, not before; a dropped
    /// sleep frees its slot for the next; the checking task ends with the last timer clone.
    #[tokio::test(flavor = "current_thread")]
    async fn sleeps_end_after_their_deadline() {
        let timer = Coarse::start();
        let start = Instant::now();
        let short = timer.sleep(Duration::from_millis(300));
        let long = timer.sleep(Duration::from_millis(900));
        short.await;
        let t = start.elapsed();
        assert!(t >= Duration::from_millis(300), "{t:?}");
        assert!(t < Duration::from_millis(300) + 2 * RESOLUTION, "{t:?}");

        // A sleep dropped while pending leaves its slot free, and the next one reuses it.
        let mut pending = timer.sleep(Duration::from_secs(60));
        let waker = futures_util::task::noop_waker();
        assert!(
            pending
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(pending);
        {
            let entries = lock(&timer.shared);
            assert_eq!(entries.free.len(), 1, "{entries:?}");
        }

        long.await;
        let t = start.elapsed();
        assert!(t >= Duration::from_millis(900), "{t:?}");
        assert!(t < Duration::from_millis(900) + 2 * RESOLUTION, "{t:?}");

        let weak = Arc::downgrade(&timer.shared);
        drop(timer);
        assert!(weak.upgrade().is_none());
    }

    /// A deadline already past is ready at once, without registering.
    #[tokio::test(flavor = "current_thread")]
    async fn past_deadlines_are_ready() {
        let timer = Coarse::start();
        let mut s = timer.sleep_until(Instant::now() - Duration::from_millis(1));
        let waker = futures_util::task::noop_waker();
        assert!(s.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
        assert!(lock(&timer.shared).slots.is_empty());
    }
}
