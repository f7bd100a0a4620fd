//! Panic reports that do not slow restarts down.
//!
//! A panic in a child is a crash its supervisor handles like any other, but
//! before the panic unwinds, Rust's panic hook runs *in the panicking task*:
//! the default hook formats a report, and with `RUST_BACKTRACE=1` (set on many
//! machines) it also captures and symbolises a backtrace, which costs far more
//! than the restart itself (on the order of 100 µs against a few µs).
//!
//! [`install`] replaces the hook with one that, for a panic inside a spawned
//! tokio task (every ractor actor is one), copies the panic's message,
//! location and thread name into a queue that a background thread drains
//! every few milliseconds: it writes each report to stderr and emits a
//! `tracing` error event (target `warden::panic`). No backtrace is captured,
//! and the panicking task wakes nobody. Tokio catches every panic in a spawned
//! task, so such a panic never ends the program before its report is written.
//! Any other panic (in `main`, in a `block_on` future, on a thread of yours)
//! goes to the previous hook, synchronously, so a panic that ends the program
//! is reported in full before it exits.
//!
//! It is opt-in, because the panic hook is global to the process:
//!
//! ```
//! warden_supervisor::panic_report::install();
//! ```

use std::any::Any;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the reporter thread writes what has queued up.
const DRAIN_EVERY: Duration = Duration::from_millis(20);

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync + 'static>;

struct Report {
    thread: String,
    location: String,
    message: String,
}

static REPORTER: OnceLock<Sender<Report>> = OnceLock::new();

/// Installs the asynchronous panic reporter. Calling it again does nothing.
///
/// # Panics
///
/// Panics if the reporter thread cannot be spawned.
pub fn install() {
    REPORTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Report>();
        std::thread::Builder::new()
            .name("warden-panic-report".into())
            .spawn(move || {
                loop {
                    // Sleeping between drains rather than blocking on the queue means
                    // a panicking task only pushes onto it: it wakes no thread.
                    std::thread::sleep(DRAIN_EVERY);
                    loop {
                        match rx.try_recv() {
                            Ok(r) => report(&r),
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => return,
                        }
                    }
                }
            })
            .expect("spawning the panic reporter thread");
        let previous: Hook = std::panic::take_hook();
        let sender = tx.clone();
        std::panic::set_hook(Box::new(move |info| {
            if tokio::task::try_id().is_none() {
                previous(info);
                return;
            }
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>");
            let message = panic_message(info.payload()).to_string();
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let _ = sender.send(Report {
                thread: name.to_string(),
                location,
                message,
            });
        }));
        tx
    });
}

/// The text a panic was raised with: the message of `panic!("...")` (a
/// `&'static str` or a `String` payload), or a placeholder for any other
/// payload. Every crate of Warden that catches a panic (a child's start, a
/// tool, an agent's turn) reads the payload with this.
///
/// ```
/// use warden_supervisor::panic_report::panic_message;
///
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
/// assert_eq!(&*panic_message(payload.as_ref()), "boom 7");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else if let Some(s) = payload.downcast_ref::<&'static str>() {
        Arc::from(*s)
    } else {
        Arc::from("a panic with a payload that is not text")
    }
}

fn report(r: &Report) {
    eprintln!(
        "thread '{}' panicked at {}:\n{}\n(reported by warden's asynchronous panic reporter; no backtrace)",
        r.thread, r.location, r.message
    );
    tracing::error!(target: "warden::panic", thread = %r.thread, location = %r.location, message = %r.message, "panic");
}
