//! One timer for a supervisor's whole shutdown.
//!
//! A supervisor that stops its children (OTP's `terminate`) waits for each
//! child's exit *or* its shutdown timeout, as OTP's `shutdown/2` is a
//! `receive` with an `after`. The supervisor is an actor, so the timeout has
//! to come to it as a message, [`SupervisorMsg::ShutdownTimer`]. Sending each
//! one with ractor's `send_after` spawned a task per child that slept out the
//! whole timeout even when the child stopped at once: stopping a supervisor of
//! 100 000 children with the default 5 s shutdown left 100 000 sleeping tasks
//! (38 MB) behind it for 5 seconds.
//!
//! [`ShutdownClock`] is one task per shutdown instead. Each step *arms* it with
//! the step's deadline and timer number; the task sleeps until the deadline of
//! the step armed last and then sends that step's timer. Arming a later
//! deadline (the usual case: the next child's timeout starts now) only records
//! it, under an uncontended lock; the task wakes up once at the earlier one,
//! sees that the deadline moved and sleeps again. Only an earlier deadline (a
//! kill grace shorter than the timeout, say) wakes the task to re-arm. The
//! task ends when the clock is dropped, with the shutdown.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ractor::ActorRef;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::supervisor::SupervisorMsg;

/// The shutdown timer of one supervisor: see the module docs. Its task starts
/// with the first [`arm`](Self::arm), so a shutdown without timeouts has none.
#[derive(Default)]
pub(crate) struct ShutdownClock {
    running: Option<Running>,
}

/// The clock's task and what it shares with it.
struct Running {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    armed: Mutex<Armed>,
    rearm: Notify,
}

#[derive(Default)]
struct Armed {
    /// The timer armed last, and when it is due; `None` once it was sent.
    next: Option<(Instant, u32)>,
    /// When the task wakes up next; `None` while it waits to be armed.
    wakes_at: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Armed> {
        // Nothing panics while the lock is held.
        self.armed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ShutdownClock {
    /// Sends `ShutdownTimer { timer }` to `supervisor` after `after`, unless
    /// the clock is armed again (or dropped) before then: only the timer armed
    /// last is sent.
    pub(crate) fn arm(&mut self, supervisor: &ActorRef<SupervisorMsg>, after: Duration, timer: u32) {
        let running = self.running.get_or_insert_with(|| Running::start(supervisor.clone()));
        let now = Instant::now();
        // As tokio's own `sleep`: a timeout too long to add is "never".
        let deadline = now.checked_add(after).unwrap_or_else(|| far_future(now));
        let mut armed = running.shared.lock();
        armed.next = Some((deadline, timer));
        let wake = armed.wakes_at.is_none_or(|at| at > deadline);
        drop(armed);
        if wake {
            running.shared.rearm.notify_one();
        }
    }
}

impl Running {
    fn start(supervisor: ActorRef<SupervisorMsg>) -> Self {
        let shared = Arc::new(Shared {
            armed: Mutex::new(Armed::default()),
            rearm: Notify::new(),
        });
        let task = tokio::spawn(run(Arc::clone(&shared), supervisor));
        Self { shared, task }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// About 30 years from `now`, as tokio's `Instant::far_future`.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365 * 30)
}

async fn run(shared: Arc<Shared>, supervisor: ActorRef<SupervisorMsg>) {
    let sleep = tokio::time::sleep_until(far_future(Instant::now()));
    tokio::pin!(sleep);
    loop {
        let wait_until = {
            let mut armed = shared.lock();
            match armed.next {
                Some((deadline, timer)) if Instant::now() >= deadline => {
                    armed.next = None;
                    armed.wakes_at = None;
                    drop(armed);
                    if supervisor.send_message(SupervisorMsg::ShutdownTimer { timer }).is_err() {
                        return; // the supervisor is gone
                    }
                    continue;
                }
                next => {
                    armed.wakes_at = next.map(|(deadline, _)| deadline);
                    armed.wakes_at
                }
            }
        };
        match wait_until {
            Some(deadline) => {
                sleep.as_mut().reset(deadline);
                tokio::select! {
                    biased;
                    () = shared.rearm.notified() => {}
                    () = sleep.as_mut() => {}
                }
            }
            None => shared.rearm.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::{Actor, ActorProcessingErr};
    use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

    /// Stands in for the supervisor: forwards the timers it receives.
    struct Recorder;

    impl Actor for Recorder {
        type Msg = SupervisorMsg;
        type State = UnboundedSender<u32>;
        type Arguments = UnboundedSender<u32>;

        async fn pre_start(
            &self,
            _: ActorRef<SupervisorMsg>,
            tx: UnboundedSender<u32>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(tx)
        }

        async fn handle(
            &self,
            _: ActorRef<SupervisorMsg>,
            msg: SupervisorMsg,
            tx: &mut UnboundedSender<u32>,
        ) -> Result<(), ActorProcessingErr> {
            if let SupervisorMsg::ShutdownTimer { timer } = msg {
                let _ = tx.send(timer);
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_timer_armed_last_is_sent_when_due() {
        let (tx, mut rx) = unbounded_channel();
        let (recorder, _) = Actor::spawn(None, Recorder, tx).await.unwrap();
        let mut clock = ShutdownClock::default();

        // Later deadlines, one after the other: only the last one fires, at its time.
        let t0 = Instant::now();
        clock.arm(&recorder, Duration::from_secs(5), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        clock.arm(&recorder, Duration::from_secs(5), 2);
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(t0.elapsed(), Duration::from_secs(6));

        // An earlier deadline than the one armed: it fires at its own time.
        let t1 = Instant::now();
        clock.arm(&recorder, Duration::from_secs(60), 3);
        clock.arm(&recorder, Duration::from_millis(100), 4);
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!(t1.elapsed(), Duration::from_millis(100));

        // Re-armed after a timer went out; and a duration too long to add is "never".
        clock.arm(&recorder, Duration::MAX, 5);
        clock.arm(&recorder, Duration::from_secs(1), 6);
        assert_eq!(rx.recv().await, Some(6));
        clock.arm(&recorder, Duration::MAX, 7);
        tokio::time::sleep(Duration::from_secs(86_400)).await;
        assert!(rx.try_recv().is_err(), "nothing is due");
        recorder.stop(None);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_clock_ends_its_task() {
        let (tx, mut rx) = unbounded_channel();
        let (recorder, _) = Actor::spawn(None, Recorder, tx).await.unwrap();
        let mut clock = ShutdownClock::default();
        clock.arm(&recorder, Duration::from_secs(5), 1);
        let task = clock.running.as_ref().expect("armed").task.abort_handle();
        drop(clock);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(task.is_finished());
        assert!(rx.try_recv().is_err(), "a dropped clock sends nothing");
        recorder.stop(None);
    }
}
