//! The supervisor's state machine, in the shape of OTP's `supervisor.erl`:
//! an exit goes `on_exit` → `on_child_exit` (one arm per restart type) →
//! `restart` (intensity first, then one phase per strategy), or, for a child
//! that is not restarted, `auto_shutdown`; a restart whose
//! start fails is queued again as `TryAgain`, never looped, so API calls and
//! shutdown get in between attempts.
//!
//! The supervisor's own shutdown (OTP's `terminate`) is a sequence of steps
//! driven by events, as OTP's `shutdown/2` is a `receive` with an `after`:
//! ask the next child to stop, then handle whichever comes first, its exit
//! (with its own reason, whatever it is) or its timer (kill it; after the kill
//! grace, give up waiting for it). Children that end on their own meanwhile are
//! reported with their own reasons when their turn comes.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::actor::messages::BoxedState;
use ractor::{ActorCell, ActorRef, ActorStatus, RpcReplyPort};
use tokio::time::Instant;

use super::actor::Args;
use super::children::{Children, Slot};
use super::stop_chain::{self, Step};
use super::{AutoShutdown, Strategy, SupervisorMsg, validate_child};
use crate::error::ChildError;
use crate::escalation::{ChildFailure, Disposition, Escalation, EscalationHandler, Escalator, GiveUp};
use crate::event::{EventSink, Flushed, SupervisorEvent};
use crate::exit::{ExitReason, SHUTDOWN};
use crate::factory::{StartContext, StartError, start_guarded};
use crate::intensity::{RestartLog, Verdict};
use crate::introspection::{ChildCounts, ChildInfo, ChildState};
use crate::path::ChildPath;
use crate::shutdown_clock::ShutdownClock;
use crate::spec::{ChildKind, ChildSpec, Restart, Shutdown};

/// How many recent restart-causing exits a give-up report carries.
const RECENT_FAILURES: usize = 16;

/// What the supervisor does after handling something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Carry on.
    Continue,
    /// Exit now with reason `shutdown`: the supervisor gave up or shut itself
    /// down, its children are stopped and its mailbox is drained of escalations.
    Exit,
}

/// A supervisor's state. Children are kept in start order (`seq` grows with
/// every spec added), so stops walk them backwards and starts forwards.
pub(crate) struct State {
    myself: ActorRef<SupervisorMsg>,
    path: ChildPath,
    strategy: Strategy,
    auto_shutdown: AutoShutdown,
    log: RestartLog,
    /// In start order: a child keeps its place across restarts. An exit from
    /// an actor that is not a running child's is stale.
    children: Children,
    parent: Option<ActorRef<SupervisorMsg>>,
    handler: Option<Arc<dyn EscalationHandler>>,
    observer: Option<EventSink>,
    owns_observer: bool,
    recent_failures: VecDeque<ChildFailure>,
    /// Escalations to pass on to the parent, sent at the end of the current
    /// turn (see [`State::end_turn`]).
    outbox: Vec<Escalation>,
    /// Set once this supervisor has given up, or shut itself down after a
    /// significant child's exit. Until the `Exit` it sent itself comes round,
    /// it only drains escalations from its mailbox.
    giving_up: bool,
    /// What a supervisor that gave up still has to hand its parent: the
    /// escalations it passes on and its own give-up, in order. They travel in
    /// this state, with the exit, so that an exit event (which ractor delivers
    /// before mailbox messages) cannot overtake them.
    last_words: Vec<Escalation>,
    /// How long to wait for a killed child to end before going on without it.
    kill_grace: Duration,
    /// Set while this supervisor stops its children before it exits.
    stopping: Option<Box<Stopping>>,
}

/// The supervisor's own shutdown in progress.
#[derive(Default)]
struct Stopping {
    /// Children still to stop, in start order: the last one goes next.
    queue: Vec<u64>,
    /// The child being stopped now.
    current: Option<StopStep>,
    /// Children that ended on their own before their turn, with their reasons.
    ended_early: Vec<(u64, ExitReason)>,
    /// Bumped with every timer set, so that a stale timer is ignored.
    timer: u32,
    /// The one timer task of the whole shutdown, started with the first
    /// timeout (see [`ShutdownClock`]).
    clock: ShutdownClock,
}

/// One child being stopped.
struct StopStep {
    seq: u64,
    cell: ActorCell,
    /// Whether it was already killed (its timer is then the kill grace).
    killed: bool,
}

impl State {
    pub(crate) fn new(
        myself: ActorRef<SupervisorMsg>,
        args: &Args,
        path: ChildPath,
        parent: Option<ActorRef<SupervisorMsg>>,
    ) -> Self {
        let config = &*args.config;
        let mut state = Self {
            myself,
            path,
            strategy: config.strategy,
            auto_shutdown: config.auto_shutdown,
            log: RestartLog::new(config.intensity),
            children: Children::with_capacity(config.children.len()),
            parent,
            handler: config.handler.clone(),
            observer: args.observer.clone(),
            owns_observer: args.owns_observer,
            recent_failures: VecDeque::new(),
            outbox: Vec::new(),
            giving_up: false,
            last_words: Vec::new(),
            kill_grace: config.kill_grace,
            stopping: None,
        };
        for spec in &config.children {
            state.insert(spec.clone());
        }
        state
    }

    pub(crate) fn path(&self) -> &ChildPath {
        &self.path
    }

    // ---- start-up and shutdown -------------------------------------------------

    /// Starts every child in order (OTP's `init_children`). If one fails, stops
    /// the ones started before it, in reverse order, and says which failed.
    pub(crate) async fn init_children(&mut self) -> Result<(), (ChildPath, StartError)> {
        let seqs: Vec<u64> = self.children.seqs().collect();
        for seq in seqs {
            if let Err(e) = self.start(seq).await {
                let path = self.children[seq].path.clone();
                self.stop_all().await;
                return Err((path, e));
            }
        }
        Ok(())
    }

    /// Stops every running child, last started first, waiting for each in
    /// turn. Used where the supervisor cannot read exit events: during its
    /// start, and when it was stopped by a ractor stop rather than with
    /// [`SupervisorMsg::Terminate`].
    pub(crate) async fn stop_all(&mut self) {
        // The event-driven shutdown is over (or never began): end its timer task.
        if let Some(stopping) = self.stopping.as_deref_mut() {
            stopping.clock = ShutdownClock::default();
        }
        let seqs: Vec<u64> = self.children.seqs().rev().collect();
        self.stop_in_turn(&seqs).await;
    }

    // ---- messages --------------------------------------------------------------

    pub(crate) async fn handle(&mut self, msg: SupervisorMsg) -> Next {
        if self.giving_up || self.stopping.is_some() {
            return self.handle_while_ending(msg);
        }
        match msg {
            SupervisorMsg::StartChild(spec, reply) => {
                let r = self.start_child(spec).await;
                answer(reply, (r, self.flush()));
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let r = self.terminate_child(&id).await;
                answer(reply, (r, self.flush()));
            }
            SupervisorMsg::RestartChild(id, reply) => {
                let r = self.restart_child(&id).await;
                answer(reply, (r, self.flush()));
            }
            SupervisorMsg::DeleteChild(id, reply) => answer(reply, (self.delete_child(&id), Flushed::default())),
            SupervisorMsg::WhichChildren(reply) => answer(reply, self.which_children()),
            SupervisorMsg::CountChildren(reply) => answer(reply, self.count_children()),
            SupervisorMsg::DroppedEvents(reply) => answer(reply, self.dropped_events()),
            SupervisorMsg::TryAgain { seq, epoch } => {
                if self.is_pending(seq, epoch) {
                    return self.restart(seq).await;
                }
            }
            SupervisorMsg::Resume { seq, epoch } => {
                if self.is_pending(seq, epoch) {
                    self.start_phase(seq).await;
                }
            }
            SupervisorMsg::Escalate(escalation) => self.dispatch(escalation),
            SupervisorMsg::Exit => return Next::Exit,
            // OTP: a pid given to a supervisor that is not simple_one_for_one.
            SupervisorMsg::Dynamic(request) => request.refuse(ChildError::NotFound),
            SupervisorMsg::Terminate => return self.begin_stopping(),
            SupervisorMsg::ShutdownTimer { .. } => {}
        }
        Next::Continue
    }

    /// After a give-up (children are stopped) or while stopping: escalations
    /// are still dispatched (and, after a give-up, kept for the parent), the
    /// shutdown's timers run, introspection is answered, and every change is
    /// refused.
    fn handle_while_ending(&mut self, msg: SupervisorMsg) -> Next {
        let gone = || {
            ChildError::NoProc(crate::error::NoProc {
                supervisor: self.path.clone(),
            })
        };
        match msg {
            SupervisorMsg::StartChild(_, reply) | SupervisorMsg::RestartChild(_, reply) => {
                answer(reply, (Err(gone()), Flushed::default()))
            }
            SupervisorMsg::TerminateChild(_, reply) | SupervisorMsg::DeleteChild(_, reply) => {
                answer(reply, (Err(gone()), Flushed::default()))
            }
            SupervisorMsg::WhichChildren(reply) => answer(reply, self.which_children()),
            SupervisorMsg::CountChildren(reply) => answer(reply, self.count_children()),
            SupervisorMsg::DroppedEvents(reply) => answer(reply, self.dropped_events()),
            // A give-up exits by itself; a shutdown is already under way.
            SupervisorMsg::TryAgain { .. } | SupervisorMsg::Resume { .. } | SupervisorMsg::Terminate => {}
            SupervisorMsg::Escalate(escalation) => self.dispatch(escalation),
            SupervisorMsg::Exit => return Next::Exit,
            SupervisorMsg::Dynamic(request) => request.refuse(gone()),
            SupervisorMsg::ShutdownTimer { timer } => return self.on_shutdown_timer(timer),
        }
        Next::Continue
    }

    /// Ends a turn (a message or an event handled): sends the escalations this
    /// supervisor passes on, or keeps them for its exit once it has given up.
    pub(crate) fn end_turn(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if self.giving_up {
            self.last_words.append(&mut self.outbox);
            return;
        }
        let Some(parent) = &self.parent else {
            self.outbox.clear();
            return;
        };
        for escalation in self.outbox.drain(..) {
            if let Err(ractor::MessagingErr::SendErr(SupervisorMsg::Escalate(e))) =
                parent.send_message(SupervisorMsg::Escalate(escalation))
            {
                tracing::error!(target: "warden::supervisor", path = %self.path, escalation = %e, "parent is gone; escalation dropped");
            }
        }
    }

    fn is_pending(&self, seq: u64, epoch: u32) -> bool {
        self.children
            .get(seq)
            .is_some_and(|c| c.is_restarting() && c.epoch() == epoch)
    }

    // ---- exits -----------------------------------------------------------------

    /// An actor linked to this supervisor ended.
    pub(crate) async fn on_exit(
        &mut self,
        cell: ActorCell,
        reason: ExitReason,
        final_state: Option<BoxedState>,
    ) -> Next {
        let Some(seq) = self.children.take_running(&cell.get_id()) else {
            // A child this supervisor already stopped, or replaced.
            tracing::trace!(target: "warden::supervisor", path = %self.path, actor = %cell.get_id(), "exit of a former child ignored");
            return Next::Continue;
        };
        let escalations = match (self.children[seq].kind, final_state) {
            (ChildKind::Supervisor, Some(s)) => last_words(s),
            _ => Vec::new(),
        };
        if self.stopping.is_some() {
            for escalation in escalations {
                self.dispatch(escalation);
            }
            return self.on_exit_while_stopping(seq, reason);
        }
        self.on_child_exit(seq, reason, escalations).await
    }

    /// OTP's `do_restart/3`: one arm per restart type.
    async fn on_child_exit(&mut self, seq: u64, reason: ExitReason, escalations: Vec<Escalation>) -> Next {
        let child = self.children.get_mut(seq).expect("running child has a spec");
        child.set_last_exit(reason.clone());
        child.reset_backoff_if_due();
        let (path, kind, restart, significant) = (child.path.clone(), child.kind, child.restart, child.significant);
        self.emit(SupervisorEvent::ChildExited {
            path: path.clone(),
            kind,
            reason: reason.clone(),
        });
        for escalation in escalations {
            self.dispatch(escalation);
        }
        match (restart, reason.is_normal()) {
            (Restart::Temporary, _) => {
                self.children.remove(seq);
                self.auto_shutdown(path, significant).await
            }
            (Restart::Transient, true) => self.auto_shutdown(path, significant).await,
            (Restart::Permanent, _) | (Restart::Transient, false) => {
                if self.recent_failures.len() == RECENT_FAILURES {
                    self.recent_failures.pop_front();
                }
                self.recent_failures.push_back(ChildFailure::now(path, reason));
                self.restart(seq).await
            }
        }
    }

    /// OTP's `do_auto_shutdown/2`: a child ended on its own and is not
    /// restarted; if it is significant, the supervisor may shut itself down.
    /// Stops and restarts made by the supervisor never come here.
    async fn auto_shutdown(&mut self, child: ChildPath, significant: bool) -> Next {
        let shut_down = significant
            && match self.auto_shutdown {
                AutoShutdown::Never => false,
                AutoShutdown::AnySignificant => true,
                // A child whose restart is pending still counts, as in OTP.
                AutoShutdown::AllSignificant => !self
                    .children
                    .iter()
                    .any(|c| c.significant && !matches!(c.slot(), Slot::NotRunning)),
            };
        if !shut_down {
            return Next::Continue;
        }
        self.emit(SupervisorEvent::AutoShutdown {
            path: self.path.clone(),
            child,
        });
        self.stop_all().await;
        self.leave(None)
    }

    /// OTP's `restart/2`: check the intensity first, then restart by strategy.
    async fn restart(&mut self, seq: u64) -> Next {
        if self.log.record(Instant::now()) == Verdict::GiveUp {
            return self.give_up(seq).await;
        }
        if let Some(child) = self.children.get_mut(seq) {
            child.restarts += 1;
            let event = SupervisorEvent::Restarting {
                path: child.path.clone(),
                kind: child.kind,
                restart_count: child.restarts,
                intensity: self.log.used(),
            };
            self.emit(event);
        }
        self.terminate_phase(seq).await;
        if let Some(delay) = self.backoff_delay(seq) {
            let epoch = self.mark_restarting(seq);
            self.emit(SupervisorEvent::RestartScheduled {
                path: self.children[seq].path.clone(),
                delay,
            });
            self.myself
                .send_after(delay, move || SupervisorMsg::Resume { seq, epoch });
            return Next::Continue;
        }
        self.start_phase(seq).await;
        Next::Continue
    }

    /// Stops the siblings the strategy restarts with `seq`, last started first.
    /// Temporary siblings are stopped and removed, never restarted.
    async fn terminate_phase(&mut self, seq: u64) {
        let victims: Vec<u64> = match self.strategy {
            Strategy::OneForOne => return,
            Strategy::OneForAll => self.children.seqs().rev().filter(|&s| s != seq).collect(),
            Strategy::RestForOne => self.children.seqs_from(seq + 1).rev().collect(),
        };
        self.stop_in_turn(&victims).await;
        for victim in victims {
            if self.children[victim].restart == Restart::Temporary {
                self.children.remove(victim);
            }
        }
    }

    /// Starts, in start order, the children the strategy restarts with `seq`
    /// that are not running. A start that fails is queued to be tried again.
    async fn start_phase(&mut self, seq: u64) {
        let scope: Vec<u64> = match self.strategy {
            // The common case allocates nothing.
            Strategy::OneForOne => {
                self.start_or_retry(seq).await;
                return;
            }
            Strategy::OneForAll => self.children.seqs().collect(),
            Strategy::RestForOne => self.children.seqs_from(seq).collect(),
        };
        for s in scope {
            if !self.start_or_retry(s).await {
                return;
            }
        }
    }

    /// Starts `seq` unless it is running or gone. A start that fails goes back
    /// to the mailbox, as OTP's `try_again_restart`, so calls and a shutdown get
    /// in before the next attempt; then this answers `false`.
    async fn start_or_retry(&mut self, seq: u64) -> bool {
        match self.children.get(seq) {
            Some(c) if !c.is_running() => {}
            _ => return true,
        }
        if self.start(seq).await.is_ok() {
            return true;
        }
        let epoch = self.mark_restarting(seq);
        let _ = self.myself.send_message(SupervisorMsg::TryAgain { seq, epoch });
        false
    }

    fn mark_restarting(&mut self, seq: u64) -> u32 {
        self.children
            .get_mut(seq)
            .expect("child to restart has a spec")
            .mark_restarting()
    }

    fn backoff_delay(&mut self, seq: u64) -> Option<Duration> {
        self.children.get_mut(seq)?.next_backoff_delay()
    }

    /// One restart too many: stop every child, last started first, and report.
    async fn give_up(&mut self, seq: u64) -> Next {
        let (child, reason) = {
            let c = &self.children[seq];
            (c.path.clone(), c.last_exit().cloned().unwrap_or(ExitReason::Normal))
        };
        self.emit(SupervisorEvent::GaveUp {
            path: self.path.clone(),
            child: child.clone(),
        });
        self.stop_all().await;
        let intensity = self.log.limit();
        let now = SystemTime::now();
        let recent_failures = self
            .recent_failures
            .drain(..)
            .filter(|f| now.duration_since(f.at).map_or(true, |age| age <= intensity.period))
            .collect();
        let escalation = Escalation::gave_up(GiveUp {
            supervisor: self.path.clone(),
            intensity,
            child,
            reason,
            recent_failures,
        });
        self.leave(Some(escalation))
    }

    /// The end of a give-up or an auto-shutdown, its children already stopped:
    /// the supervisor takes no more work and exits (reason `shutdown`) once the
    /// escalations already in its mailbox are dispatched. Its own give-up, if
    /// any, is its last word to its parent.
    fn leave(&mut self, give_up: Option<Escalation>) -> Next {
        self.giving_up = true;
        if self.parent.is_some() {
            // Delivered to the parent with this supervisor's exit, after what
            // it was already passing on.
            self.last_words.append(&mut self.outbox);
            self.last_words.extend(give_up);
        } else if let Some(escalation) = give_up {
            self.dispatch(escalation);
        }
        // Escalations already queued are drained before the exit.
        if self.myself.send_message(SupervisorMsg::Exit).is_err() {
            return Next::Exit;
        }
        Next::Continue
    }

    // ---- the supervisor's own shutdown, step by step ------------------------------

    /// Starts stopping every child, last started first (OTP's `terminate`);
    /// the supervisor exits once the last one has ended.
    fn begin_stopping(&mut self) -> Next {
        self.stopping = Some(Box::new(Stopping {
            queue: self.children.seqs().collect(),
            ..Stopping::default()
        }));
        self.stop_next()
    }

    /// Asks the next running child to stop, by its shutdown spec, and returns
    /// to wait for its exit or its timer. `Exit` once there is none left.
    fn stop_next(&mut self) -> Next {
        loop {
            let Some(stopping) = self.stopping.as_deref_mut() else {
                return Next::Continue;
            };
            let Some(seq) = stopping.queue.pop() else {
                return Next::Exit;
            };
            if let Some(i) = stopping.ended_early.iter().position(|(s, _)| *s == seq) {
                let (_, reason) = stopping.ended_early.swap_remove(i);
                self.record_exit(seq, reason);
                continue;
            }
            let Some(child) = self.children.get(seq) else {
                continue;
            };
            let Slot::Running(cell) = child.slot() else {
                continue;
            };
            let (cell, kind, how) = (cell.clone(), child.kind, child.shutdown());
            let timeout = match how {
                Shutdown::BrutalKill => {
                    cell.kill();
                    Some(self.kill_grace)
                }
                Shutdown::Timeout(timeout) => {
                    ask_to_stop(&cell, kind);
                    Some(timeout)
                }
                Shutdown::Infinity => {
                    ask_to_stop(&cell, kind);
                    None
                }
            };
            let killed = how == Shutdown::BrutalKill;
            stopping.current = Some(StopStep { seq, cell, killed });
            if let Some(after) = timeout {
                stopping.timer = stopping.timer.wrapping_add(1);
                stopping.clock.arm(&self.myself, after, stopping.timer);
            }
            return Next::Continue;
        }
    }

    /// A child ended while the supervisor stops: the one being stopped goes
    /// down with its own reason and the next is asked; another one is reported
    /// when its turn comes.
    fn on_exit_while_stopping(&mut self, seq: u64, reason: ExitReason) -> Next {
        let Some(stopping) = self.stopping.as_deref_mut() else {
            return Next::Continue;
        };
        if stopping.current.as_ref().is_some_and(|step| step.seq == seq) {
            stopping.current = None;
            self.record_exit(seq, reason);
            return self.stop_next();
        }
        stopping.ended_early.push((seq, reason));
        Next::Continue
    }

    /// The child being stopped overran its time: kill it; if it was killed
    /// already and has still not ended, its task is stuck in code that does not
    /// yield. Go on without it: its task is detached and ends when that code
    /// returns (ractor then sees the kill).
    fn on_shutdown_timer(&mut self, timer: u32) -> Next {
        let Some(stopping) = self.stopping.as_deref_mut() else {
            return Next::Continue;
        };
        if stopping.timer != timer {
            return Next::Continue;
        }
        let Some(step) = stopping.current.as_mut() else {
            return Next::Continue;
        };
        if !step.killed {
            step.killed = true;
            step.cell.kill();
            stopping.timer = stopping.timer.wrapping_add(1);
            stopping.clock.arm(&self.myself, self.kill_grace, stopping.timer);
            return Next::Continue;
        }
        let seq = step.seq;
        stopping.current = None;
        // Abandoned: a late exit of its actor is stale.
        self.children.stop_running(seq);
        self.abandon(seq);
        self.stop_next()
    }

    /// Records that a stopped child ended (it is no longer running): its
    /// reason, the event.
    fn record_exit(&mut self, seq: u64, reason: ExitReason) {
        let Some(child) = self.children.get_mut(seq) else {
            return;
        };
        debug_assert!(!child.is_running(), "its actor was taken when it ended or was stopped");
        child.set_last_exit(reason.clone());
        let event = SupervisorEvent::ChildExited {
            path: child.path.clone(),
            kind: child.kind,
            reason,
        };
        self.emit(event);
    }

    /// A child did not end within the kill grace: it is recorded as killed
    /// and its task left to end by itself.
    fn abandon(&mut self, seq: u64) {
        if let Some(child) = self.children.get(seq) {
            let event = SupervisorEvent::ChildAbandoned {
                path: child.path.clone(),
                kind: child.kind,
                grace: self.kill_grace,
            };
            self.emit(event);
        }
        self.record_exit(seq, ExitReason::Killed);
    }

    // ---- escalation ------------------------------------------------------------

    /// Offers an escalation to this supervisor's handler, then passes it on.
    fn dispatch(&mut self, escalation: Escalation) {
        self.emit(SupervisorEvent::Escalated {
            at: self.path.clone(),
            origin: escalation.origin().clone(),
        });
        let mut escalation = match &self.handler {
            None => escalation,
            Some(handler) => match std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(escalation))) {
                Ok(Disposition::Handled) => return,
                Ok(Disposition::Escalate(e)) => e,
                Err(_) => {
                    tracing::error!(target: "warden::supervisor", path = %self.path, "escalation handler panicked; the escalation is lost");
                    return;
                }
            },
        };
        escalation.passed_through(&self.path);
        if self.parent.is_some() {
            self.outbox.push(escalation);
        } else {
            tracing::error!(target: "warden::supervisor", path = %self.path, %escalation, "unhandled escalation reached the root");
        }
    }

    // ---- children --------------------------------------------------------------

    fn insert(&mut self, spec: ChildSpec) -> u64 {
        let path = self.path.join(&spec.id);
        self.children.insert(path, spec)
    }

    /// Starts one child and records it as running.
    async fn start(&mut self, seq: u64) -> Result<ActorCell, StartError> {
        let (factory, path, kind) = {
            let c = &self.children[seq];
            (c.factory.clone(), c.path.clone(), c.kind)
        };
        let ctx = StartContext {
            supervisor: self.myself.get_cell(),
            path: path.clone(),
            escalator: Escalator {
                supervisor: self.myself.clone(),
                origin: path.clone(),
            },
            observer: self.observer.clone(),
        };
        let result = match start_guarded(&factory, ctx).await {
            Ok(cell) if self.is_linked(&cell) => Ok(cell),
            Ok(cell) => {
                cell.kill();
                Err(StartError::NotLinked)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(cell) => {
                self.children.set_running(seq, cell.clone());
                self.emit(SupervisorEvent::ChildStarted {
                    path,
                    kind,
                    actor: cell.get_id(),
                });
                Ok(cell)
            }
            Err(error) => {
                self.emit(SupervisorEvent::ChildStartFailed {
                    path,
                    kind,
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    fn is_linked(&self, cell: &ActorCell) -> bool {
        match cell.try_get_supervisor() {
            Some(sup) => sup.get_id() == self.myself.get_id(),
            // A child that already ended has unlinked itself; its exit is on its way.
            None => cell.get_status() >= ActorStatus::Stopping,
        }
    }

    /// Stops the running children among `seqs`, in that order, each with its
    /// shutdown spec and once the one before it has ended (OTP's
    /// `terminate_children`), then records how each ended.
    ///
    /// Each exit is reported as the sequence goes (see
    /// [`stop_chain::stop_in_turn`]).
    async fn stop_in_turn(&mut self, seqs: &[u64]) {
        let mut stopping = Vec::with_capacity(seqs.len());
        let mut steps = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let Some(child) = self.children.get(seq) else {
                continue;
            };
            let (kind, how, path) = (child.kind, child.shutdown(), child.path.clone());
            let Some(cell) = self.children.stop_running(seq) else {
                continue;
            };
            // A worker's end is reported from here, so its exit event would
            // only be one more message to read and skip. A child supervisor
            // stays linked: its last words come with its exit.
            let unlink_from = (kind == ChildKind::Worker).then(|| self.myself.get_cell());
            steps.push(Step {
                cell,
                path,
                kind,
                how,
                unlink_from,
            });
            stopping.push(seq);
        }
        if steps.is_empty() {
            return;
        }
        let exits = stop_chain::stop_in_turn(steps, self.kill_grace, self.observer.clone()).await;
        for (seq, reason) in stopping.into_iter().zip(exits) {
            if let Some(child) = self.children.get_mut(seq) {
                child.set_last_exit(reason);
            }
        }
    }

    // ---- the dynamic-children API ----------------------------------------------

    fn lookup(&self, id: &str) -> Result<u64, ChildError> {
        self.children.seq_of(id).ok_or(ChildError::NotFound)
    }

    async fn start_child(&mut self, spec: ChildSpec) -> Result<ActorCell, ChildError> {
        validate_child(&spec, self.auto_shutdown).map_err(ChildError::InvalidSpec)?;
        if let Some(seq) = self.children.seq_of(&spec.id) {
            return Err(match self.children[seq].slot() {
                Slot::Running(cell) => ChildError::AlreadyStarted(cell.clone()),
                _ => ChildError::AlreadyPresent,
            });
        }
        let seq = self.insert(spec);
        match self.start(seq).await {
            Ok(cell) => Ok(cell),
            Err(e) => {
                self.children.remove(seq);
                Err(ChildError::StartFailed(e))
            }
        }
    }

    async fn terminate_child(&mut self, id: &str) -> Result<(), ChildError> {
        let seq = self.lookup(id)?;
        let child = self.children.get_mut(seq).expect("looked-up child has a spec");
        if child.is_running() {
            self.stop_in_turn(&[seq]).await;
        } else if child.is_restarting() {
            // Stops the retry loop: the queued TryAgain is now stale.
            child.cancel_restart();
        }
        if self.children[seq].restart == Restart::Temporary {
            self.children.remove(seq);
        }
        Ok(())
    }

    async fn restart_child(&mut self, id: &str) -> Result<ActorCell, ChildError> {
        let seq = self.lookup_not_running(id)?;
        self.start(seq).await.map_err(ChildError::StartFailed)
    }

    fn delete_child(&mut self, id: &str) -> Result<(), ChildError> {
        let seq = self.lookup_not_running(id)?;
        self.children.remove(seq);
        Ok(())
    }

    /// The child called `id`, which may only be restarted or deleted if it is
    /// neither running nor waiting for a restart (as in OTP).
    fn lookup_not_running(&self, id: &str) -> Result<u64, ChildError> {
        let seq = self.lookup(id)?;
        let child = &self.children[seq];
        if child.is_running() {
            Err(ChildError::Running)
        } else if child.is_restarting() {
            Err(ChildError::Restarting)
        } else {
            Ok(seq)
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|c| ChildInfo {
                path: c.path.clone(),
                kind: c.kind,
                restart: c.restart,
                state: match c.slot() {
                    Slot::Running(cell) => ChildState::Running(cell.clone()),
                    Slot::NotRunning => ChildState::NotRunning,
                    Slot::Restarting => ChildState::Restarting,
                },
                restart_count: c.restarts,
                last_exit: c.last_exit().cloned(),
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for c in self.children.iter() {
            counts.specs += 1;
            if c.is_running() {
                counts.active += 1;
            }
            match c.kind {
                ChildKind::Supervisor => counts.supervisors += 1,
                ChildKind::Worker => counts.workers += 1,
            }
        }
        counts
    }

    // ---- reporting -------------------------------------------------------------

    /// Traces the event and queues it for the observer, without waiting.
    pub(crate) fn emit(&self, event: SupervisorEvent) {
        emit_to(self.observer.as_ref(), event);
    }

    /// A marker behind the events emitted so far, for a caller to wait on.
    fn flush(&self) -> Flushed {
        self.observer.as_ref().map(EventSink::flush).unwrap_or_default()
    }

    /// At the end of a stop: waits (bounded) until this supervisor's own
    /// observer has seen everything, so that whoever waited for the stop sees
    /// it all too.
    pub(crate) async fn flush_own_observer(&self) {
        if self.owns_observer {
            self.flush().wait(None).await;
        }
    }

    fn dropped_events(&self) -> u64 {
        self.observer.as_ref().map_or(0, EventSink::dropped)
    }
}

/// What a child supervisor that exited had to pass on to its parent, whether
/// it was a regular or a dynamic one.
pub(crate) fn last_words(state: BoxedState) -> Vec<Escalation> {
    match state.msg.map(|s| s.downcast::<State>()) {
        Some(Ok(s)) => s.last_words,
        Some(Err(other)) => crate::dynamic::last_words(other),
        None => Vec::new(),
    }
}

fn answer<T>(reply: RpcReplyPort<T>, value: T) {
    // The caller may have given up waiting; that is its business.
    let _ = reply.send(value);
}

/// Traces `event` and hands it to `observer`, if any.
pub(super) fn emit_to(observer: Option<&EventSink>, event: SupervisorEvent) {
    event.trace();
    if let Some(observer) = observer {
        observer.send(event);
    }
}

/// Asks a child to stop with reason `shutdown`: a child supervisor by message,
/// so that it stops its own children step by step (reading their exits).
pub(crate) fn ask_to_stop(cell: &ActorCell, kind: ChildKind) {
    if kind == ChildKind::Supervisor {
        let supervisor: ActorRef<SupervisorMsg> = cell.clone().into();
        if supervisor.send_message(SupervisorMsg::Terminate).is_ok() {
            return;
        }
    }
    cell.stop(Some(SHUTDOWN.to_string()));
}
