//! Restart intensity: at most `max_restarts` restarts within `period`.
//!
//! OTP keeps a list of restart timestamps and scans it on every restart, so a
//! crash storm slows it down. [`RestartLog`] keeps only the restarts still inside
//! the window, in order, so recording one is amortised O(1): each timestamp is
//! pushed once and popped once.
//!
//! The window is exact (a restart `period` old or younger counts), where OTP
//! counts whole seconds and so keeps a restart for between `period` and
//! `period + 1` seconds. Warden is therefore at most one second more lenient.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The restart limit of a supervisor: more than `max_restarts` restarts within
/// `period` and it gives up. OTP's defaults are 1 restart in 5 seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intensity {
    /// How many restarts are allowed within the period. 0 allows none.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 1,
            period: Duration::from_secs(5),
        }
    }
}

/// How much of its restart intensity a supervisor has used: the restarts
/// inside its current window, this one included, against its limit. Carried by
/// [`SupervisorEvent::Restarting`](crate::SupervisorEvent::Restarting), so an
/// observer sees how close a supervisor is to giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntensityUsed {
    /// Restarts inside the window.
    pub restarts: u32,
    /// The limit: one more restart than `limit.max_restarts` within
    /// `limit.period` and the supervisor gives up.
    pub limit: Intensity,
}

/// The answer to recording a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit: restart.
    Restart,
    /// One restart too many: give up.
    GiveUp,
}

/// The restarts inside the current window, oldest first.
#[derive(Debug)]
pub(crate) struct RestartLog {
    limit: Intensity,
    recent: VecDeque<Instant>,
}

impl RestartLog {
    pub(crate) fn new(limit: Intensity) -> Self {
        Self {
            limit,
            recent: VecDeque::new(),
        }
    }

    /// Records a restart at `now` and says whether it is within the limit.
    pub(crate) fn record(&mut self, now: Instant) -> Verdict {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) > self.limit.period {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() as u64 >= u64::from(self.limit.max_restarts) {
            return Verdict::GiveUp;
        }
        self.recent.push_back(now);
        Verdict::Restart
    }

    /// How many restarts are inside the window as of the last record.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.recent.len()
    }

    /// The window as of the last record, against the limit.
    pub(crate) fn used(&self) -> IntensityUsed {
        IntensityUsed {
            restarts: u32::try_from(self.recent.len()).unwrap_or(u32::MAX),
            limit: self.limit,
        }
    }

    /// The configured limit.
    pub(crate) fn limit(&self) -> Intensity {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u32, secs: u64) -> RestartLog {
        RestartLog::new(Intensity {
            max_restarts: n,
            period: Duration::from_secs(secs),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn zero_allows_none() {
        assert_eq!(log(0, 5).record(Instant::now()), Verdict::GiveUp);
    }

    #[tokio::test(start_paused = true)]
    async fn the_restart_past_the_limit_gives_up() {
        let mut l = log(3, 5);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.record(t), Verdict::Restart);
        }
        assert_eq!(l.record(t), Verdict::GiveUp);
    }

    #[tokio::test(start_paused = true)]
    async fn old_restarts_leave_the_window() {
        let mut l = log(1, 1);
        let t = Instant::now();
        assert_eq!(l.record(t), Verdict::Restart);
        assert_eq!(l.record(t + Duration::from_millis(900)), Verdict::GiveUp);
        let mut l = log(1, 1);
        assert_eq!(l.record(t), Verdict::Restart);
        assert_eq!(l.record(t + Duration::from_millis(1001)), Verdict::Restart);
        assert_eq!(l.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_keeps_only_the_window() {
        let mut l = log(u32::MAX, 1);
        let t = Instant::now();
        for i in 0..10_000u64 {
            assert_eq!(l.record(t + Duration::from_millis(i)), Verdict::Restart);
        }
        assert!(l.len() <= 1001);
    }
}
