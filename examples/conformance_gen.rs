//! Writes seeded random supervision scenarios (see `../shared/conformance/FORMAT.md`)
//! for differential testing against Erlang/OTP: `conformance/differential.sh`
//! runs each through OTP's own `supervisor` (the oracle) and through
//! `otp_conformance`, and diffs the traces.
//!
//!     cargo run -q --example conformance_gen -- SEED                # one scenario on stdout
//!     cargo run -q --example conformance_gen -- START COUNT DIR     # DIR/seed-N.scn, N = START..START+COUNT
//!
//! A scenario is a tree of at most two levels (the root, and supervisors under
//! it holding workers), with every strategy and restart type, then a script
//! using every action of FORMAT.md. It is built so that its trace depends on
//! the supervisors' semantics only, never on scheduling:
//!
//! - Restart intensity is counted in whole seconds by OTP and exactly by Warden.
//!   Every scenario runs well inside its supervisors' period (at least 10 s), or,
//!   in a "gap" scenario, in two short phases separated by a sleep longer than
//!   PERIOD_S + 1 s (periods of 2 s, a 3.6 s gap, phases of two to four actions).
//! - A worker's `slow_stop` is either well inside its shutdown timeout or well
//!   beyond it (it is killed), never close to it, and a worker id keeps one
//!   shutdown spec for its whole life (a `start_child` after `delete_child`
//!   reuses it), so the margin holds whichever spec is running.
//! - Nested supervisors shut down with `infinity` or a timeout far longer than
//!   their subtree can take: a supervisor killed halfway through its shutdown
//!   would leave its workers to die in an order nobody chose.
//! - Every id belongs to one supervisor for the whole scenario (ids are also
//!   the oracle's registered names, which are global).
//! - `restart_child` of a nested supervisor is only used when none of its
//!   workers is ever told to fail its init: OTP answers such a failed restart
//!   with a nested error the shared format has no VALUE for.
//! - `exit`, `kill` and `slow_stop` name workers; `stop` and the
//!   child-management calls name supervisors (alive or not: `noproc` is part
//!   of what is tested).

#[path = "support/report.rs"]
mod report;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

const STRATEGIES: [&str; 3] = ["one_for_one", "one_for_all", "rest_for_one"];
const RESTARTS: [&str; 3] = ["permanent", "transient", "temporary"];
const EXIT_REASONS: [&str; 3] = ["normal", "shutdown", "boom"];

/// A worker id and the shutdown spec it keeps for its whole life.
struct WorkerId {
    id: String,
    /// Which supervisor it belongs to (index into `Gen::sups`).
    sup: usize,
    shutdown: WorkerShutdown,
}

#[derive(Clone, Copy)]
enum WorkerShutdown {
    BrutalKill,
    Millis(u64),
    Infinity,
}

impl WorkerShutdown {
    fn spec(self) -> String {
        match self {
            Self::BrutalKill => "brutal_kill".into(),
            Self::Millis(ms) => ms.to_string(),
            Self::Infinity => "infinity".into(),
        }
    }
}

struct SupId {
    id: String,
    /// Whether `init_fails` was ever issued for one of its workers (then
    /// `restart_child` of this supervisor is not generated, see the module doc).
    init_fails_below: bool,
}

/// The generator's picture of the scenario: ids only, never states (the
/// scenario is meant to reach states the generator did not foresee).
struct Gen {
    rng: fastrand::Rng,
    gap: bool,
    sups: Vec<SupId>,
    workers: Vec<WorkerId>,
    out: String,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let gap = rng.u32(0..10) == 0;
        Self {
            rng,
            gap,
            sups: Vec::new(),
            workers: Vec::new(),
            out: String::new(),
        }
    }

    fn line(&mut self, line: String) {
        self.out.push_str(&line);
        self.out.push('\n');
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.usize(..items.len())]
    }

    fn period(&mut self) -> u32 {
        if self.gap {
            2
        } else {
            *self.rng.choice(&[10, 30, 60]).unwrap()
        }
    }

    /// The root's intensity is higher, so that most scenarios keep a live tree
    /// for a while (after the root gives up, every action answers `noproc`).
    fn intensity(&mut self, root: bool) -> u32 {
        if root {
            *self.rng.choice(&[1, 2, 3, 4, 5, 8]).unwrap()
        } else {
            *self.rng.choice(&[0, 1, 1, 2, 2, 3, 4]).unwrap()
        }
    }

    fn worker_shutdown(&mut self) -> WorkerShutdown {
        match self.rng.u32(0..4) {
            0 => WorkerShutdown::BrutalKill,
            1 => WorkerShutdown::Infinity,
            _ => WorkerShutdown::Millis(*self.rng.choice(&[50, 200, 500]).unwrap()),
        }
    }

    fn new_worker(&mut self, sup: usize) -> usize {
        let id = format!("w{}", self.workers.len() + 1);
        let shutdown = self.worker_shutdown();
        self.workers.push(WorkerId { id, sup, shutdown });
        self.workers.len() - 1
    }

    fn declare_tree(&mut self) {
        let (strategy, intensity, period) = (self.pick(&STRATEGIES), self.intensity(true), self.period());
        self.sups.push(SupId {
            id: "root".into(),
            init_fails_below: false,
        });
        self.line(format!("sup root {strategy} {intensity} {period}"));
        let n = 1 + self.rng.usize(..4);
        for _ in 0..n {
            if self.rng.u32(0..3) == 0 {
                self.declare_nested_sup();
            } else {
                let w = self.new_worker(0);
                self.declare_worker(w);
            }
        }
    }

    fn declare_nested_sup(&mut self) {
        let id = format!("s{}", self.sups.len());
        let (strategy, intensity, period) = (self.pick(&STRATEGIES), self.intensity(false), self.period());
        let restart = self.pick(&RESTARTS);
        // Far longer than the subtree's slowest possible shutdown (see the module doc).
        let shutdown = if self.rng.bool() { "infinity" } else { "10000" };
        self.line(format!(
            "sup {id} {strategy} {intensity} {period} under root {restart} {shutdown}"
        ));
        self.sups.push(SupId {
            id,
            init_fails_below: false,
        });
        let sup = self.sups.len() - 1;
        for _ in 0..1 + self.rng.usize(..3) {
            let w = self.new_worker(sup);
            self.declare_worker(w);
        }
    }

    fn declare_worker(&mut self, w: usize) {
        let restart = self.pick(&RESTARTS);
        let WorkerId { id, sup, shutdown } = &self.workers[w];
        let line = format!("worker {id} under {} {restart} {}", self.sups[*sup].id, shutdown.spec());
        self.line(line);
    }

    fn any_worker(&mut self) -> usize {
        self.rng.usize(..self.workers.len())
    }

    fn any_sup(&mut self) -> usize {
        self.rng.usize(..self.sups.len())
    }

    /// A child id of `sup`: mostly one it has or had, sometimes one of another
    /// supervisor's (`not_found`), the nested supervisors included.
    fn child_of(&mut self, sup: usize) -> String {
        let mut ids: Vec<String> = self
            .workers
            .iter()
            .filter(|w| w.sup == sup)
            .map(|w| w.id.clone())
            .collect();
        if sup == 0 {
            ids.extend(self.sups[1..].iter().map(|s| s.id.clone()));
        }
        if ids.is_empty() || self.rng.u32(0..8) == 0 {
            let w = self.any_worker();
            return self.workers[w].id.clone();
        }
        ids[self.rng.usize(..ids.len())].clone()
    }

    /// A `slow_stop` time for worker `w`: well inside its shutdown timeout, or
    /// well beyond it (see the module doc).
    fn slow_stop_ms(&mut self, w: usize) -> u64 {
        let short = *self.rng.choice(&[5, 20, 40]).unwrap();
        match self.workers[w].shutdown {
            // Killed after `t`: kept for the short timeouts, so that restarts stay quick.
            WorkerShutdown::Millis(t) if t <= 200 && !self.gap && self.rng.bool() => t + 300,
            WorkerShutdown::Millis(t) => short.min(t / 3),
            WorkerShutdown::BrutalKill | WorkerShutdown::Infinity => short * 2,
        }
    }

    fn action(&mut self, last_phase: bool) {
        let line = match self.rng.u32(0..100) {
            0..22 => {
                let w = self.any_worker();
                let reason = *self
                    .rng
                    .choice(&[EXIT_REASONS[2], EXIT_REASONS[2], EXIT_REASONS[0], EXIT_REASONS[1]])
                    .unwrap();
                format!("exit {} {reason}", self.workers[w].id)
            }
            22..30 => {
                let w = self.any_worker();
                format!("kill {}", self.workers[w].id)
            }
            30..38 => {
                let w = self.any_worker();
                let sup = self.workers[w].sup;
                self.sups[sup].init_fails_below = true;
                format!("init_fails {} {}", self.workers[w].id, 1 + self.rng.u32(..3))
            }
            38..44 => {
                let w = self.any_worker();
                let ms = self.slow_stop_ms(w);
                format!("slow_stop {} {ms}", self.workers[w].id)
            }
            44..48 => format!("sleep {}", self.rng.u32(1..60)),
            48..56 => {
                let sup = self.any_sup();
                // Mostly a new worker; sometimes an id the supervisor has or had.
                let w = match self.workers.iter().position(|w| w.sup == sup) {
                    Some(_) if self.rng.u32(0..3) == 0 => {
                        let candidates: Vec<usize> = (0..self.workers.len())
                            .filter(|&i| self.workers[i].sup == sup)
                            .collect();
                        candidates[self.rng.usize(..candidates.len())]
                    }
                    _ => self.new_worker(sup),
                };
                let restart = self.pick(&RESTARTS);
                let WorkerId { id, shutdown, .. } = &self.workers[w];
                format!(
                    "start_child {} worker {id} {restart} {}",
                    self.sups[sup].id,
                    shutdown.spec()
                )
            }
            56..64 => {
                let sup = self.any_sup();
                let child = self.child_of(sup);
                let sup = self.sups[sup].id.clone();
                if self.rng.bool() {
                    // Then what a terminated child answers.
                    let then = self.pick(&["restart_child", "delete_child", "which_children"]);
                    let then = if then == "which_children" {
                        format!("which_children {sup}")
                    } else {
                        format!("{then} {sup} {child}")
                    };
                    let restart_fails = self.sups.iter().any(|s| s.id == child && s.init_fails_below);
                    if !(restart_fails && then.starts_with("restart_child")) {
                        self.line(format!("terminate_child {sup} {child}"));
                        return self.line(then);
                    }
                }
                format!("terminate_child {sup} {child}")
            }
            64..72 => {
                let sup = self.any_sup();
                let child = self.child_of(sup);
                let failing_sup = self.sups.iter().any(|s| s.id == child && s.init_fails_below);
                if failing_sup {
                    format!("which_children {}", self.sups[sup].id)
                } else {
                    format!("restart_child {} {child}", self.sups[sup].id)
                }
            }
            72..78 => {
                let sup = self.any_sup();
                let child = self.child_of(sup);
                format!("delete_child {} {child}", self.sups[sup].id)
            }
            78..89 => {
                let sup = self.any_sup();
                format!("which_children {}", self.sups[sup].id)
            }
            89..95 => {
                let sup = self.any_sup();
                format!("count_children {}", self.sups[sup].id)
            }
            _ => {
                // Stopping the root ends the scenario's interest: keep it for the end.
                let sup = if last_phase {
                    self.any_sup()
                } else {
                    1 + self.rng.usize(..self.sups.len().max(2) - 1)
                };
                match self.sups.get(sup) {
                    Some(s) => format!("stop {}", s.id),
                    None => "which_children root".into(),
                }
            }
        };
        // The child spec of a nested supervisor whose workers may fail to start
        // is marked above; an `init_fails` may come after a `restart_child` of it
        // in the same scenario, which is fine: that restart was already answered.
        self.line(line);
    }

    fn script(&mut self) {
        if self.rng.u32(0..12) == 0 {
            // The root's own start may fail.
            let w = self.any_worker();
            let sup = self.workers[w].sup;
            self.sups[sup].init_fails_below = true;
            let id = self.workers[w].id.clone();
            self.line(format!("init_fails {id} 1"));
        }
        self.line("start".into());
        if self.gap {
            // Short phases: all restarts of one phase stay well inside 2 s even on
            // a loaded machine.
            let first = 2 + self.rng.usize(..3);
            for _ in 0..first {
                self.action(false);
            }
            self.line("which_children root".into());
            self.line("sleep 3600".into());
            let second = 2 + self.rng.usize(..3);
            for i in 0..second {
                self.action(i + 1 == second);
            }
        } else {
            let n = 6 + self.rng.usize(..18);
            for i in 0..n {
                self.action(i + 3 >= n);
            }
        }
        self.line("which_children root".into());
    }
}

/// The scenario for `seed`.
fn scenario(seed: u64) -> String {
    let mut g = Gen::new(seed);
    let _ = writeln!(
        g.out,
        "# conformance_gen seed {seed}{}",
        if g.gap { " (gap)" } else { "" }
    );
    g.declare_tree();
    g.script();
    g.out
}

fn main() -> std::process::ExitCode {
    report::exit_code(run().map(|()| std::process::ExitCode::SUCCESS))
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [seed] => print!("{}", scenario(seed.parse().context("SEED")?)),
        [start, count, dir] => {
            let (start, count): (u64, u64) = (start.parse().context("START")?, count.parse().context("COUNT")?);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
            for seed in start..start + count {
                let path = Path::new(dir).join(format!("seed-{seed}.scn"));
                std::fs::write(&path, scenario(seed)).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        _ => bail!("usage: conformance_gen SEED | conformance_gen START COUNT DIR"),
    }
    Ok(())
}
