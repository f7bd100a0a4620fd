//! [`ChaosWatch`]: what a tree did under chaos, recorded for the invariant checks.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use warden_supervisor::{ChildPath, Disposition, Escalation, EscalationHandler, EscalationKind, SupervisorEvent};

/// Records every [`SupervisorEvent`] of a tree and every escalation that
/// reaches its root handler. Plug it in when you build the root:
/// [`observer`](Self::observer) as the root's observer (children inherit it) and
/// [`root_handler`](Self::root_handler) as the root's escalation handler.
///
/// Cheap to clone; clones share the record.
#[derive(Clone, Default)]
pub struct ChaosWatch {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    record: Mutex<Record>,
    changed: Notify,
}

#[derive(Default)]
struct Record {
    events: Vec<(Instant, SupervisorEvent)>,
    escalations: Vec<EscalationRecord>,
}

/// An escalation that reached the root handler.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EscalationRecord {
    /// When it arrived.
    pub at: Instant,
    /// Who raised it (for a give-up, the supervisor that gave up).
    pub origin: ChildPath,
    /// For a give-up, the supervisor that gave up.
    pub gave_up: Option<ChildPath>,
    /// The supervisors it passed through, nearest first.
    pub route: Vec<ChildPath>,
}

impl ChaosWatch {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// An observer for [`SupervisorBuilder::observer`](warden_supervisor::SupervisorBuilder::observer).
    pub fn observer(&self) -> impl Fn(&SupervisorEvent) + Send + Sync + 'static {
        let watch = self.clone();
        move |event: &SupervisorEvent| {
            let mut record = watch.lock();
            // Stamped under the lock, so the record is in time order.
            record.events.push((Instant::now(), event.clone()));
            drop(record);
            watch.inner.changed.notify_waiters();
        }
    }

    /// A root escalation handler that records each escalation and resolves it
    /// (answering nothing: a request gets
    /// [`EscalationError::Unanswered`](warden_supervisor::EscalationError)).
    pub fn root_handler(&self) -> impl EscalationHandler {
        self.forwarding_to(|_escalation| Disposition::Handled)
    }

    /// A root escalation handler that records each escalation, then hands it to
    /// `handler` (your own).
    pub fn forwarding_to(&self, handler: impl EscalationHandler) -> impl EscalationHandler {
        let watch = self.clone();
        move |escalation: Escalation| {
            let gave_up = match escalation.kind() {
                EscalationKind::GaveUp(give_up) => Some(give_up.supervisor.clone()),
                _ => None,
            };
            watch.lock().escalations.push(EscalationRecord {
                at: Instant::now(),
                origin: escalation.origin().clone(),
                gave_up,
                route: escalation.route().to_vec(),
            });
            watch.inner.changed.notify_waiters();
            handler.handle(escalation)
        }
    }

    /// Every event so far, with when it was recorded.
    pub fn events(&self) -> Vec<(Instant, SupervisorEvent)> {
        self.lock().events.clone()
    }

    /// Every escalation that reached the root handler so far.
    pub fn escalations(&self) -> Vec<EscalationRecord> {
        self.lock().escalations.clone()
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// True before the first event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the record holds on the heap (its buffers' capacity): for memory
    /// figures that leave the instrument out.
    pub fn heap_bytes(&self) -> usize {
        let record = self.lock();
        record.events.capacity() * std::mem::size_of::<(Instant, SupervisorEvent)>()
            + record.escalations.capacity() * std::mem::size_of::<EscalationRecord>()
    }

    /// Waits for the first event recorded at or after `since` that matches
    /// `predicate`; `None` if `timeout` passes first.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops waiting; nothing else happens.
    pub async fn wait_for_since(
        &self,
        since: Instant,
        predicate: impl Fn(&SupervisorEvent) -> bool,
        timeout: Duration,
    ) -> Option<(usize, Instant, SupervisorEvent)> {
        let skip = self.lock().events.partition_point(|(at, _)| *at < since);
        self.wait_for(skip, predicate, timeout).await
    }

    /// Runs `f` on the events recorded so far, under the record's lock and
    /// without copying them. Keep `f` quick: supervisors wait for the lock to
    /// record their events.
    pub(crate) fn with_events<T>(&self, f: impl FnOnce(&[(Instant, SupervisorEvent)]) -> T) -> T {
        f(&self.lock().events)
    }

    /// How many events match `predicate`.
    pub fn count(&self, predicate: impl Fn(&SupervisorEvent) -> bool) -> usize {
        self.lock().events.iter().filter(|(_, event)| predicate(event)).count()
    }

    /// Waits until an event after the first `skip` ones matches `predicate`, and
    /// returns it with its index; `None` if `timeout` passes first.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops waiting; nothing else happens.
    pub async fn wait_for(
        &self,
        skip: usize,
        predicate: impl Fn(&SupervisorEvent) -> bool,
        timeout: Duration,
    ) -> Option<(usize, Instant, SupervisorEvent)> {
        let deadline = Instant::now() + timeout;
        let mut seen = skip;
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let record = self.lock();
                if let Some(found) = record
                    .events
                    .iter()
                    .enumerate()
                    .skip(seen)
                    .find(|(_, (_, e))| predicate(e))
                {
                    let (index, (at, event)) = found;
                    return Some((index, *at, event.clone()));
                }
                seen = record.events.len();
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.inner.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for ChaosWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let record = self.lock();
        f.debug_struct("ChaosWatch")
            .field("events", &record.events.len())
            .field("escalations", &record.escalations.len())
            .finish()
    }
}
