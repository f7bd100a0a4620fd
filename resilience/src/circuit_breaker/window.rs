//! Sliding windows: the calls the closed state (and half-open's trials) are
//! judged on. Both kinds keep running totals, so recording a call and reading
//! the rates are O(1) (the time-based window is O(1) amortised: each second's
//! bucket is cleared once).

use tokio::time::Instant;

use super::config::SlidingWindow;

/// Outcome bits of one recorded call.
pub(crate) const FAILED: u8 = 1;
/// The call took longer than the slow-call duration threshold.
pub(crate) const SLOW: u8 = 2;

/// Running totals of a window (or of one time bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u32,
    pub(crate) failed: u32,
    pub(crate) slow: u32,
    pub(crate) slow_failed: u32,
}

impl Tally {
    #[inline]
    fn add(&mut self, flags: u8) {
        self.calls += 1;
        self.failed += u32::from(flags & FAILED != 0);
        self.slow += u32::from(flags & SLOW != 0);
        self.slow_failed += u32::from(flags == FAILED | SLOW);
    }

    #[inline]
    fn remove(&mut self, flags: u8) {
        self.calls -= 1;
        self.failed -= u32::from(flags & FAILED != 0);
        self.slow -= u32::from(flags & SLOW != 0);
        self.slow_failed -= u32::from(flags == FAILED | SLOW);
    }

    fn subtract(&mut self, other: &Tally) {
        self.calls -= other.calls;
        self.failed -= other.failed;
        self.slow -= other.slow;
        self.slow_failed -= other.slow_failed;
    }

    /// `(failure rate, slow-call rate)` in percent, or `None` below `minimum` calls.
    #[inline]
    pub(crate) fn rates(&self, minimum: u32) -> Option<(f32, f32)> {
        if self.calls < minimum || self.calls == 0 {
            return None;
        }
        let calls = self.calls as f32;
        Some((self.failed as f32 * 100.0 / calls, self.slow as f32 * 100.0 / calls))
    }
}

/// The last `n` calls, as a ring of outcome bits.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[u8]>,
    next: usize,
    tally: Tally,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            slots: vec![0; size as usize].into_boxed_slice(),
            next: 0,
            tally: Tally::default(),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = 0;
        self.tally = Tally::default();
    }

    #[inline]
    pub(crate) fn record(&mut self, flags: u8) {
        if self.tally.calls as usize == self.slots.len() {
            self.tally.remove(self.slots[self.next]);
        }
        self.slots[self.next] = flags;
        self.tally.add(flags);
        self.next += 1;
        if self.next == self.slots.len() {
            self.next = 0;
        }
    }

    #[inline]
    pub(crate) fn tally(&self) -> Tally {
        self.tally
    }
}

/// The calls of the last `n` seconds, one bucket per second.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Tally]>,
    /// Seconds are counted from here.
    start: Instant,
    /// The newest second recorded; its bucket is `head % n`. Buckets of seconds
    /// `head - n + 1 ..= head` are live, the rest are zero.
    head: u64,
    tally: Tally,
}

impl TimeWindow {
    pub(crate) fn new(seconds: u32, now: Instant) -> Self {
        Self {
            buckets: vec![Tally::default(); seconds as usize].into_boxed_slice(),
            start: now,
            head: 0,
            tally: Tally::default(),
        }
    }

    pub(crate) fn reset(&mut self, now: Instant) {
        self.buckets.iter_mut().for_each(|b| *b = Tally::default());
        self.start = now;
        self.head = 0;
        self.tally = Tally::default();
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// Moves the head to `second`, clearing the buckets that fall out.
    fn advance(&mut self, second: u64) {
        if second <= self.head {
            return;
        }
        if second - self.head >= self.len() {
            self.buckets.iter_mut().for_each(|b| *b = Tally::default());
            self.tally = Tally::default();
        } else {
            for s in self.head + 1..=second {
                let i = (s % self.len()) as usize;
                self.tally.subtract(&self.buckets[i]);
                self.buckets[i] = Tally::default();
            }
        }
        self.head = second;
    }

    pub(crate) fn record(&mut self, flags: u8, now: Instant) {
        let second = self.second(now);
        self.advance(second);
        let i = (self.head % self.len()) as usize;
        self.buckets[i].add(flags);
        self.tally.add(flags);
    }

    /// The totals as of `now`, without moving the window.
    pub(crate) fn tally_at(&self, now: Instant) -> Tally {
        let second = self.second(now);
        if second <= self.head {
            return self.tally;
        }
        if second - self.head >= self.len() {
            return Tally::default();
        }
        let mut tally = self.tally;
        for s in self.head + 1..=second {
            tally.subtract(&self.buckets[(s % self.len()) as usize]);
        }
        tally
    }
}

/// The closed state's window, of the configured kind.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow, now: Instant) -> Self {
        match kind {
            SlidingWindow::CountBased(n) => Window::Count(CountWindow::new(n)),
            SlidingWindow::TimeBased(n) => Window::Time(TimeWindow::new(n, now)),
        }
    }

    pub(crate) fn reset(&mut self, now: Instant) {
        match self {
            Window::Count(w) => w.reset(),
            Window::Time(w) => w.reset(now),
        }
    }

    /// Records a call and returns the totals after it. Reads the clock only
    /// for a time-based window.
    #[inline]
    pub(crate) fn record(&mut self, flags: u8) -> Tally {
        match self {
            Window::Count(w) => {
                w.record(flags);
                w.tally()
            }
            Window::Time(w) => {
                w.record(flags, Instant::now());
                w.tally
            }
        }
    }

    pub(crate) fn tally(&self) -> Tally {
        match self {
            Window::Count(w) => w.tally(),
            Window::Time(w) => w.tally_at(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn count_window_evicts_oldest() {
        let mut w = CountWindow::new(3);
        w.record(FAILED);
        w.record(0);
        w.record(SLOW);
        assert_eq!(
            w.tally(),
            Tally {
                calls: 3,
                failed: 1,
                slow: 1,
                slow_failed: 0
            }
        );
        w.record(FAILED | SLOW); // evicts the first FAILED
        assert_eq!(
            w.tally(),
            Tally {
                calls: 3,
                failed: 1,
                slow: 2,
                slow_failed: 1
            }
        );
        w.record(0);
        w.record(0);
        w.record(0);
        assert_eq!(
            w.tally(),
            Tally {
                calls: 3,
                ..Tally::default()
            }
        );
    }

    #[test]
    fn time_window_expires_buckets() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut w = TimeWindow::new(3, t0);
        w.record(FAILED, t0);
        w.record(0, t0 + s);
        w.record(SLOW, t0 + 2 * s);
        assert_eq!(w.tally_at(t0 + 2 * s).calls, 3);
        // Second 3 drops second 0's bucket.
        assert_eq!(
            w.tally_at(t0 + 3 * s),
            Tally {
                calls: 2,
                failed: 0,
                slow: 1,
                slow_failed: 0
            }
        );
        w.record(0, t0 + 3 * s);
        assert_eq!(
            w.tally,
            Tally {
                calls: 3,
                failed: 0,
                slow: 1,
                slow_failed: 0
            }
        );
        // A gap longer than the window clears everything.
        assert_eq!(w.tally_at(t0 + 9 * s), Tally::default());
        w.record(FAILED, t0 + 9 * s);
        assert_eq!(
            w.tally,
            Tally {
                calls: 1,
                failed: 1,
                slow: 0,
                slow_failed: 0
            }
        );
    }
}
