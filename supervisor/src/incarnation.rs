//! Following a supervised child across its restarts.
//!
//! In OTP, a registered name always reaches whichever process runs under it; a
//! restart registers the new one. [`Incarnations`] is that for handles that
//! outlive the actor they address (an agent's address, a tool executor's
//! client): the child records itself when it starts and withdraws when it
//! ends, and the handle reads the current one, or waits for the next.

use std::time::Duration;

use tokio::sync::watch;

/// The incarnations of one child: the current one (if running), the latest one
/// started (even if it has ended since), and how many have started. Cheap to
/// read; share it in an `Arc`.
///
/// ```
/// use warden_supervisor::Incarnations;
///
/// let follow = Incarnations::new();
/// assert_eq!((follow.generation(), follow.current()), (0, None));
/// assert_eq!(follow.started("first"), 1);
/// assert!(follow.ended(|i| *i == "first"));
/// assert_eq!((follow.current(), follow.latest()), (None, Some("first")));
/// assert_eq!(follow.started("second"), 2);
/// assert!(!follow.ended(|i| *i == "first"), "a stale end does not withdraw the new one");
/// assert_eq!(follow.current(), Some("second"));
/// ```
#[derive(Debug)]
pub struct Incarnations<T> {
    tx: watch::Sender<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    generation: u64,
    latest: Option<T>,
    running: bool,
}

impl<T: Clone> Default for Incarnations<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> Incarnations<T> {
    /// None started yet.
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(State {
                generation: 0,
                latest: None,
                running: false,
            }),
        }
    }

    /// A new incarnation started: it is now the current one. Returns its
    /// generation (1 for the first).
    pub fn started(&self, incarnation: T) -> u64 {
        let mut generation = 0;
        self.tx.send_modify(|s| {
            s.generation += 1;
            s.latest = Some(incarnation);
            s.running = true;
            generation = s.generation;
        });
        generation
    }

    /// An incarnation ended: it is withdrawn if it is the current one (`is_it`
    /// says), so that the late end of an old one cannot withdraw its successor.
    /// Answers whether it was withdrawn.
    pub fn ended(&self, is_it: impl FnOnce(&T) -> bool) -> bool {
        self.tx.send_if_modified(|s| {
            let ours = s.running && s.latest.as_ref().is_some_and(is_it);
            if ours {
                s.running = false;
            }
            ours
        })
    }

    /// The running incarnation, if any.
    pub fn current(&self) -> Option<T> {
        self.with_current(|c| c.cloned())
    }

    /// Reads the running incarnation, if any, without cloning it.
    pub fn with_current<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        let s = self.tx.borrow();
        read(s.latest.as_ref().filter(|_| s.running))
    }

    /// The latest incarnation started, running or not.
    pub fn latest(&self) -> Option<T> {
        self.tx.borrow().latest.clone()
    }

    /// How many incarnations have started (0: none yet).
    pub fn generation(&self) -> u64 {
        self.tx.borrow().generation
    }

    /// Waits until an incarnation newer than `generation` is running, at most
    /// `deadline`; its generation, or `None` at the deadline.
    ///
    /// # Cancellation
    ///
    /// Dropping the future is harmless.
    pub async fn wait_started(&self, generation: u64, deadline: Duration) -> Option<u64> {
        let mut rx = self.tx.subscribe();
        let newer = rx.wait_for(|s| s.generation > generation && s.running);
        match tokio::time::timeout(deadline, newer).await {
            Ok(Ok(s)) => Some(s.generation),
            Ok(Err(_)) | Err(_) => None,
        }
    }
}
