//! Supervisor events, coalesced where they happen.
//!
//! A crash storm makes a supervisor emit hundreds of thousands of events a second, and the
//! studio needs only where each child ended up by the end of a tick: its state, its last
//! exit, its restart count, its supervisor's intensity used, and how many restarts the tick
//! saw. So the supervisor observer does not queue events for the hub: it updates the child's
//! [`Slot`] here, in place, under a lock that the hub takes once a tick. An event costs a hash
//! of the child's path and a few stores into memory the supervisor's own core already holds;
//! nothing is cloned (but a path, the first time it is seen) and nothing is allocated, and the
//! hub's work per tick is one entry per child that changed, not one per event.

use std::collections::HashMap;
use std::time::Duration;

use warden_supervisor::{ChildKind, ChildPath, ExitReason, IntensityUsed, SupervisorEvent};

/// More restarts in one tick than this are one timeline entry.
pub(crate) const RESTARTS_PER_TICK: usize = 10;

/// The state a child was left in by the events of a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// No event has set it (a slot made for a parent's intensity).
    Unset,
    Running,
    StartFailed,
    Exited,
    Restarting,
    GaveUp,
    Stopped,
    /// Exited, unless the view shows it gave up (an exit seen first in a fresh slot).
    ExitedUnlessGaveUp,
    /// Stopped, unless the view shows it gave up.
    StoppedUnlessGaveUp,
}

impl SlotState {
    pub(crate) fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::Unset => return None,
            Self::Running => "running",
            Self::StartFailed => "start_failed",
            Self::Exited => "exited",
            Self::Restarting => "restarting",
            Self::GaveUp => "gave_up",
            Self::Stopped | Self::StoppedUnlessGaveUp => "stopped",
            Self::ExitedUnlessGaveUp => "exited",
        })
    }

    /// This state after an exit (`Exited`) or a supervisor's stop (`Stopped`): a give-up
    /// stays, and where the slot does not know, the view decides.
    fn after(self, then: Self, unless: Self) -> Self {
        match self {
            Self::GaveUp => Self::GaveUp,
            Self::Unset | Self::ExitedUnlessGaveUp | Self::StoppedUnlessGaveUp => unless,
            _ => then,
        }
    }

    /// Whether a node the view shows as given up keeps that state under this one.
    pub(crate) fn defers_to_give_up(self) -> bool {
        matches!(self, Self::ExitedUnlessGaveUp | Self::StoppedUnlessGaveUp)
    }
}

/// Why a child last ended (or failed to start), kept as it came: made text by the hub.
#[derive(Clone, Debug)]
pub(crate) enum LastExit {
    Exit(ExitReason),
    StartFailed(String),
}

impl std::fmt::Display for LastExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exit(reason) => reason.fmt(f),
            Self::StartFailed(error) => f.write_str(error),
        }
    }
}

/// One child's coalesced events.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) path: ChildPath,
    pub(crate) kind: Option<ChildKind>,
    pub(crate) state: SlotState,
    pub(crate) last_exit: Option<LastExit>,
    pub(crate) restart_count: Option<u32>,
    /// `Some(Some(delay))` when a restart was scheduled, `Some(None)` when it started since.
    pub(crate) backoff: Option<Option<Duration>>,
    /// Its supervisor's intensity as of its last restart, with the event's number (the
    /// parent shows the latest of its children's).
    pub(crate) intensity: Option<(u64, IntensityUsed)>,
    /// Restarts since the hub last took the tally.
    pub(crate) restarts_in_tick: u32,
    dirty: bool,
}

/// What the hub takes each tick: the children that changed, and the tick's restarts.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) slots: Vec<Slot>,
    /// The first [`RESTARTS_PER_TICK`] + 1 restarts, in order: the child, its count, its
    /// supervisor's intensity.
    pub(crate) restarts: Vec<(ChildPath, u32, IntensityUsed)>,
    /// Every restart of the tick.
    pub(crate) restarts_total: usize,
}

/// The coalesced events of every child, and which changed since the hub last looked.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    slots: Vec<Slot>,
    index: HashMap<ChildPath, u32, foldhash::fast::RandomState>,
    dirty: Vec<u32>,
    restarts: Vec<(u32, u32, IntensityUsed)>,
    restarts_total: usize,
    events: u64,
}

impl Tally {
    /// Takes in one event. Returns `false` for events that are not about a child's state
    /// (give-ups', escalations' and other timeline events), which the caller queues as they
    /// are; a give-up also marks its supervisor here.
    pub(crate) fn record(&mut self, event: &SupervisorEvent) -> bool {
        self.events += 1;
        let seq = self.events;
        match event {
            SupervisorEvent::ChildStarted { path, kind, .. } => {
                let slot = self.slot(path);
                slot.kind = Some(*kind);
                slot.state = SlotState::Running;
                slot.backoff = Some(None);
            }
            SupervisorEvent::ChildStartFailed { path, kind, error } => {
                let slot = self.slot(path);
                slot.kind = Some(*kind);
                slot.state = SlotState::StartFailed;
                slot.last_exit = Some(LastExit::StartFailed(error.to_string()));
            }
            SupervisorEvent::ChildExited { path, kind, reason } => {
                let slot = self.slot(path);
                slot.kind = Some(*kind);
                slot.state = slot.state.after(SlotState::Exited, SlotState::ExitedUnlessGaveUp);
                match &mut slot.last_exit {
                    // Most exits are the same as the last: keep it rather than clone.
                    Some(LastExit::Exit(last)) if same_reason(last, reason) => {}
                    last => *last = Some(LastExit::Exit(reason.clone())),
                }
            }
            SupervisorEvent::Restarting {
                path,
                kind,
                restart_count,
                intensity,
            } => {
                let index = self.index_of(path);
                let slot = &mut self.slots[index as usize];
                slot.kind = Some(*kind);
                slot.state = SlotState::Restarting;
                slot.restart_count = Some(*restart_count);
                slot.intensity = Some((seq, *intensity));
                slot.restarts_in_tick += 1;
                self.restarts_total += 1;
                if self.restarts.len() <= RESTARTS_PER_TICK {
                    self.restarts.push((index, *restart_count, *intensity));
                }
            }
            SupervisorEvent::RestartScheduled { path, delay } => {
                let slot = self.slot(path);
                slot.state = SlotState::Restarting;
                slot.backoff = Some(Some(*delay));
            }
            SupervisorEvent::GaveUp { path, .. } => {
                let slot = self.slot(path);
                slot.kind = Some(ChildKind::Supervisor);
                slot.state = SlotState::GaveUp;
                return false;
            }
            SupervisorEvent::Stopped { path } => {
                let slot = self.slot(path);
                slot.kind = Some(ChildKind::Supervisor);
                slot.state = slot.state.after(SlotState::Stopped, SlotState::StoppedUnlessGaveUp);
            }
            _ => return false,
        }
        true
    }

    /// The slot of `path`, marked changed.
    fn slot(&mut self, path: &ChildPath) -> &mut Slot {
        let index = self.index_of(path);
        &mut self.slots[index as usize]
    }

    fn index_of(&mut self, path: &ChildPath) -> u32 {
        let index = match self.index.get(path) {
            Some(index) => *index,
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    path: path.clone(),
                    kind: None,
                    state: SlotState::Unset,
                    last_exit: None,
                    restart_count: None,
                    backoff: None,
                    intensity: None,
                    restarts_in_tick: 0,
                    dirty: false,
                });
                self.index.insert(path.clone(), index);
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(index);
        }
        index
    }

    /// What changed since the last take. Past `keep` children known, the tally forgets them
    /// all once taken (the view keeps what they showed), so that it stays bounded under
    /// children that come and go.
    pub(crate) fn take(&mut self, keep: usize) -> Taken {
        let restarts = std::mem::take(&mut self.restarts)
            .into_iter()
            .map(|(index, count, intensity)| (self.slots[index as usize].path.clone(), count, intensity))
            .collect();
        let restarts_total = std::mem::take(&mut self.restarts_total);
        let forget = self.slots.len() > keep;
        let mut slots = Vec::with_capacity(self.dirty.len());
        for index in std::mem::take(&mut self.dirty) {
            let slot = &mut self.slots[index as usize];
            slot.dirty = false;
            slots.push(Slot {
                path: slot.path.clone(),
                kind: slot.kind,
                state: slot.state,
                last_exit: slot.last_exit.clone(),
                restart_count: slot.restart_count,
                backoff: slot.backoff.take(),
                intensity: slot.intensity,
                restarts_in_tick: std::mem::take(&mut slot.restarts_in_tick),
                dirty: false,
            });
        }
        if forget {
            self.slots.clear();
            self.index.clear();
        }
        Taken {
            slots,
            restarts,
            restarts_total,
        }
    }
}

/// Two exit reasons that read the same, compared without formatting.
fn same_reason(a: &ExitReason, b: &ExitReason) -> bool {
    match (a, b) {
        (ExitReason::Normal, ExitReason::Normal)
        | (ExitReason::Shutdown, ExitReason::Shutdown)
        | (ExitReason::Killed, ExitReason::Killed) => true,
        (ExitReason::Stopped(a), ExitReason::Stopped(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use warden_supervisor::{ChildKind, ChildPath, ExitReason, Intensity, IntensityUsed, SupervisorEvent};

    use super::{RESTARTS_PER_TICK, SlotState, Tally};

    fn used(restarts: u32) -> IntensityUsed {
        IntensityUsed {
            restarts,
            limit: Intensity {
                max_restarts: 100,
                period: Duration::from_secs(5),
            },
        }
    }

    /// One crash of `path`: its exit, its restart (count `n`), its start.
    fn crash(tally: &mut Tally, path: &ChildPath, n: u32) {
        let kind = ChildKind::Worker;
        for event in [
            SupervisorEvent::ChildExited {
                path: path.clone(),
                kind,
                reason: ExitReason::Killed,
            },
            SupervisorEvent::Restarting {
                path: path.clone(),
                kind,
                restart_count: n,
                intensity: used(n),
            },
            SupervisorEvent::ChildStarted {
                path: path.clone(),
                kind,
                actor: ractor::ActorId::Local(u64::from(n)),
            },
        ] {
            assert!(tally.record(&event));
        }
    }

    #[test]
    fn a_storm_is_one_slot_per_child_with_every_restart_counted() {
        let mut tally = Tally::default();
        let (a, b) = (ChildPath::root("root").join("a"), ChildPath::root("root").join("b"));
        for n in 1..=40 {
            crash(&mut tally, &a, n);
        }
        crash(&mut tally, &b, 1);
        let taken = tally.take(100);
        assert_eq!(taken.slots.len(), 2);
        let slot_a = &taken.slots[0];
        assert_eq!((slot_a.path.as_str(), slot_a.state), ("root/a", SlotState::Running));
        assert_eq!((slot_a.restart_count, slot_a.restarts_in_tick), (Some(40), 40));
        assert_eq!(
            slot_a.last_exit.as_ref().map(ToString::to_string).as_deref(),
            Some("killed")
        );
        assert_eq!(slot_a.intensity.map(|(_, u)| u.restarts), Some(40));
        assert_eq!(taken.restarts_total, 41);
        assert_eq!(taken.restarts.len(), RESTARTS_PER_TICK + 1, "the first few, in order");
        assert_eq!(taken.restarts[0].1, 1);
        // Nothing since: nothing taken.
        let again = tally.take(100);
        assert!(again.slots.is_empty() && again.restarts.is_empty() && again.restarts_total == 0);
    }

    #[test]
    fn a_give_up_stays_through_the_exit_and_stop_that_follow() {
        let mut tally = Tally::default();
        let sup = ChildPath::root("root").join("sup");
        let gave_up = SupervisorEvent::GaveUp {
            path: sup.clone(),
            child: sup.join("w"),
        };
        assert!(!tally.record(&gave_up), "a give-up goes on the timeline too");
        tally.record(&SupervisorEvent::Stopped { path: sup.clone() });
        tally.record(&SupervisorEvent::ChildExited {
            path: sup.clone(),
            kind: ChildKind::Supervisor,
            reason: ExitReason::Shutdown,
        });
        assert_eq!(tally.take(100).slots[0].state, SlotState::GaveUp);
        // A slot that starts with an exit leaves the give-up to the view.
        let mut fresh = Tally::default();
        fresh.record(&SupervisorEvent::ChildExited {
            path: sup.clone(),
            kind: ChildKind::Supervisor,
            reason: ExitReason::Shutdown,
        });
        let state = fresh.take(100).slots[0].state;
        assert!(state.defers_to_give_up() && state.name() == Some("exited"));
    }

    #[test]
    fn past_its_bound_the_tally_forgets_its_children_once_taken() {
        let mut tally = Tally::default();
        for i in 0..5 {
            crash(&mut tally, &ChildPath::root("root").join(&format!("w{i}")), 1);
        }
        assert_eq!(tally.take(3).slots.len(), 5, "what changed is still taken");
        assert!(tally.slots.is_empty() && tally.index.is_empty());
        crash(&mut tally, &ChildPath::root("root").join("w0"), 2);
        assert_eq!(tally.take(3).slots[0].restart_count, Some(2));
    }
}
