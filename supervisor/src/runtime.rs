//! A tokio runtime tuned for supervision trees: idle workers wait briefly
//! before they park.
//!
//! Supervision is made of short chains of hand-offs between actors: a child
//! exits and its supervisor is woken; the supervisor stops the next child and
//! waits for it; a restarted child announces its start. Each link is one task
//! waking the next, and on tokio's multi-thread runtime the woken task runs on
//! the same thread, from the worker's LIFO slot, for three links in a row.
//! From the fourth, tokio queues the task where another worker can steal it
//! and, if that worker is parked, wakes it (a system call, and on a virtual
//! machine an interrupt to a sleeping CPU), so a chain of twenty hand-offs
//! pays for about five wake-ups and hops between threads. The BEAM does not
//! wake a second scheduler for one runnable process; tokio does.
//!
//! The runtime built here keeps tokio's scheduler and changes one thing: a
//! worker that runs out of work **while another worker is still busy** waits
//! for a short [park delay](park_delay) before it parks (asleep, not
//! spinning). While it waits tokio counts it as awake, so it is not woken for
//! each task the busy worker queues, and the chain stays on the busy worker's
//! thread. The last worker to run out of work does not wait: it parks at once
//! and ends the others' waits, so an idle runtime serves I/O, timers and
//! wake-ups from other threads exactly as tokio's does. The measured effect
//! (BENCHMARKS.md, "Side by side"): on two workers a supervisor with ten
//! workers giving up takes 27–29 µs instead of 35–64 µs, a subtree restart 11–12 µs
//! instead of 16–34 µs, with less CPU time rather than more; an idle runtime
//! wakes as fast as tokio's (`benches/park_delay.rs`).
//!
//! The cost, while one worker is busy and another waits: a task the busy
//! worker queues waits for it instead of starting at once on the waiting one
//! (up to the delay), and I/O or a task woken from outside the runtime is
//! picked up by the busy worker at its next check of the shared queues rather
//! than at once by the waiting one. A workload of many short parallel bursts
//! may lose a little parallelism; use [`park_delay`] with a shorter delay, or
//! a plain tokio runtime, where that matters more than supervision latency.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = warden_supervisor::runtime::multi_thread().worker_threads(2).build()?;
//! runtime.block_on(async {
//!     // start supervision trees here
//! });
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle};

/// How long [`multi_thread`]'s idle workers wait before they park while
/// another worker is busy: 100 µs.
pub const DEFAULT_PARK_DELAY: Duration = Duration::from_micros(100);

/// A multi-thread runtime builder with every driver enabled
/// ([`Builder::enable_all`]) and [`DEFAULT_PARK_DELAY`] as the
/// [park delay](park_delay). Set the number of workers and anything else on
/// it as on any tokio [`Builder`]; a later [`Builder::on_thread_park`],
/// [`Builder::on_thread_unpark`] or [`Builder::on_thread_stop`] replaces a
/// part of the delay's hooks (see [`park_delay`]).
pub fn multi_thread() -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    park_delay(&mut builder, DEFAULT_PARK_DELAY);
    builder
}

/// Makes `builder`'s workers wait for up to `delay` before they park when
/// another worker is still busy. It sets three hooks, replacing any set
/// before: [`Builder::on_thread_park`] (the wait),
/// [`Builder::on_thread_unpark`] (the count of idle workers) and
/// [`Builder::on_thread_stop`] (which ends the waits when the runtime shuts
/// down; without it a shutdown can take up to `delay` longer). With a zero
/// `delay` the workers park at once, as tokio's do. On a current-thread
/// runtime there is never another worker, so nothing waits.
///
/// See the [module documentation](self) for what this buys and costs.
pub fn park_delay(builder: &mut Builder, delay: Duration) -> &mut Builder {
    let park = Arc::new(ParkDelay {
        delay,
        idle: AtomicUsize::new(0),
        shutting_down: AtomicBool::new(false),
        waiting: Mutex::new(Vec::new()),
    });
    let unpark = Arc::clone(&park);
    let stop = Arc::clone(&park);
    builder
        .on_thread_park(move || park.before_park())
        .on_thread_unpark(move || unpark.after_unpark())
        .on_thread_stop(move || stop.thread_stopped())
}

thread_local! {
    /// Whether this thread is a worker (it has run the park hook); the stop
    /// hook also runs on the runtime's blocking threads.
    static IS_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The shared state of one runtime's park hooks.
struct ParkDelay {
    delay: Duration,
    /// Workers between their park hook and their unpark hook: waiting or parked.
    idle: AtomicUsize,
    /// Set when a worker stops, which happens only at shutdown: from then on
    /// nobody waits, as the stopped worker will never go idle last.
    shutting_down: AtomicBool,
    /// The workers now waiting, so that the last one to go idle can end their waits.
    waiting: Mutex<Vec<Waiter>>,
}

/// A worker in its park delay.
struct Waiter {
    thread: Thread,
    /// Set by the worker that ends this wait, before it unparks the thread.
    released: Arc<AtomicBool>,
}

impl ParkDelay {
    /// Runs on a worker that is about to park.
    fn before_park(&self) {
        IS_WORKER.with(|w| w.set(true));
        let workers = Handle::try_current().map_or(1, |h| h.metrics().num_workers());
        let last = self.idle.fetch_add(1, Ordering::SeqCst) + 1 >= workers;
        if last || self.delay.is_zero() || self.shutting_down.load(Ordering::SeqCst) {
            // The last worker to go idle parks now, and so do those waiting
            // (none when there is no delay, or at shutdown).
            self.release_all();
            return;
        }
        let released = Arc::new(AtomicBool::new(false));
        self.lock().push(Waiter {
            thread: std::thread::current(),
            released: Arc::clone(&released),
        });
        // Once in the list, the next worker to go idle last ends this wait. If
        // that already happened before the push, nobody will: do not wait.
        if self.idle.load(Ordering::SeqCst) < workers && !self.shutting_down.load(Ordering::SeqCst) {
            let deadline = Instant::now() + self.delay;
            // `park_timeout` may return early for no reason: wait until
            // released or due.
            while !released.load(Ordering::SeqCst) {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
        if !released.load(Ordering::SeqCst) {
            self.lock().retain(|w| !Arc::ptr_eq(&w.released, &released));
        }
    }

    /// Runs on a thread of the runtime that stops. A worker stops only when
    /// the runtime shuts down, without parking first, so it would never end
    /// the others' waits: it ends them here, and no worker waits after it.
    fn thread_stopped(&self) {
        if IS_WORKER.with(std::cell::Cell::get) {
            self.shutting_down.store(true, Ordering::SeqCst);
            self.release_all();
        }
    }

    /// Ends every wait now in progress.
    fn release_all(&self) {
        for waiter in self.lock().drain(..) {
            waiter.released.store(true, Ordering::SeqCst);
            waiter.thread.unpark();
        }
    }

    /// Runs on a worker that has come back from parking (or did not park).
    fn after_unpark(&self) {
        self.idle.fetch_sub(1, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
