//! The dynamic supervisor as a ractor actor, and its state machine in the
//! shape of OTP's `simple_one_for_one` clauses of `supervisor.erl`: an exit
//! goes `on_exit` (one arm per restart type) → `restart` (the shared intensity
//! first); a restart whose start fails is queued again as `TryAgain`.
//!
//! Its own shutdown (OTP's `terminate_dynamic_children`) is driven by events:
//! every child is asked at once, the supervisor goes back to its mailbox, and
//! each child's exit is read from its supervision event, so a child that
//! crashes as it is being stopped is reported with its own reason (SEMANTICS
//! 32); one shared timer kills the stragglers, and after the kill grace the
//! ones still running are abandoned.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use ractor::actor::messages::BoxedState;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SupervisionEvent};
use tokio::time::Instant;

use super::{DynamicConfig, DynamicRequest, ErasedArgs};
use crate::error::{ChildError, NoProc};
use crate::escalation::{Escalation, Escalator};
use crate::event::{DEFAULT_OBSERVER_CAPACITY, EventSink, Flushed, SupervisorEvent};
use crate::exit::{EventKind, ExitReason, SHUTDOWN};
use crate::factory::{StartContext, StartError, guarded};
use crate::intensity::{RestartLog, Verdict};
use crate::introspection::{ChildCounts, ChildInfo, ChildState};
use crate::path::ChildPath;
use crate::shutdown_clock::ShutdownClock;
use crate::spec::{ChildKind, Restart, Shutdown};
use crate::supervisor::{DEFAULT_KILL_GRACE, SupervisorMsg, ask_to_stop};
use crate::uplink::Uplink;

/// What the supervisor does after handling something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Continue,
    /// Exit now with reason `shutdown`.
    Exit,
}

/// The dynamic supervisor behaviour. All state is in [`DynamicState`].
pub(crate) struct DynamicActor;

/// What a dynamic supervisor incarnation starts from.
pub(crate) struct DynamicArgs {
    pub(crate) config: Arc<DynamicConfig>,
    pub(crate) path: ChildPath,
    pub(crate) parent: Option<ActorRef<SupervisorMsg>>,
    pub(crate) inherited_observer: Option<EventSink>,
}

impl Actor for DynamicActor {
    type Msg = SupervisorMsg;
    type State = DynamicState;
    type Arguments = DynamicArgs;

    /// OTP's `init` for `simple_one_for_one`: no children yet.
    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: DynamicArgs,
    ) -> Result<DynamicState, ActorProcessingErr> {
        let observer = match args.config.observer.clone() {
            Some(own) => Some(EventSink::start(own, DEFAULT_OBSERVER_CAPACITY)),
            None => args.inherited_observer,
        };
        Ok(DynamicState {
            myself,
            log: RestartLog::new(args.config.intensity),
            uplink: Uplink::new(args.path, args.parent, args.config.handler.clone(), observer),
            config: args.config,
            children: HashMap::new(),
            restarting: BTreeMap::new(),
            next_number: 0,
            stopping: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut DynamicState,
    ) -> Result<(), ActorProcessingErr> {
        let next = state.handle(msg).await;
        state.end_turn(&myself, next);
        Ok(())
    }

    /// Reads ractor's supervision events (through [`ExitReason::from_event`]);
    /// overridden because ractor's default stops the parent when a child exits.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut DynamicState,
    ) -> Result<(), ActorProcessingErr> {
        match ExitReason::from_event(event) {
            EventKind::Exit {
                cell,
                reason,
                state: final_state,
            } => {
                let next = state.on_exit(cell, reason, final_state).await;
                state.end_turn(&myself, next);
            }
            EventKind::Started => {}
            EventKind::Other(other) => {
                tracing::debug!(target: "warden::supervisor", path = %state.uplink.path(), event = %other, "supervision event ignored")
            }
        }
        Ok(())
    }

    /// The parallel shutdown, finished before ractor tears the actor down.
    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut DynamicState,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        state.uplink.emit(SupervisorEvent::Stopped {
            path: state.uplink.path().clone(),
        });
        state.uplink.flush().wait(None).await;
        Ok(())
    }
}

/// A running child: all a `simple_one_for_one` keeps per child.
struct Child {
    cell: ActorCell,
    /// `None` for a temporary child, which is never restarted.
    args: Option<ErasedArgs>,
    /// Given at the first start, kept across restarts: the child's path is
    /// `<supervisor>/<number>`.
    number: u64,
    restarts: u32,
}

/// A child whose restart failed and is tried again through the mailbox.
struct Pending {
    args: ErasedArgs,
    restarts: u32,
    /// The exit that started the restarts, reported if the supervisor gives up.
    reason: ExitReason,
}

/// A dynamic supervisor's state.
pub(crate) struct DynamicState {
    myself: ActorRef<SupervisorMsg>,
    config: Arc<DynamicConfig>,
    /// One intensity budget for all children.
    log: RestartLog,
    uplink: Uplink,
    /// Running children by their actor's (local) pid; an exit from an actor
    /// not in here is stale.
    children: HashMap<u64, Child>,
    /// Children between a failed restart and the next attempt, by number.
    restarting: BTreeMap<u64, Pending>,
    next_number: u64,
    /// Set while this supervisor stops its children before it exits.
    stopping: Option<Stopping>,
}

/// The supervisor's own parallel shutdown in progress.
struct Stopping {
    /// Bumped with every timer set, so that a stale timer is ignored.
    timer: u32,
    /// Whether the children still running were killed (the timer is then the
    /// kill grace).
    killed: bool,
    /// The shutdown's timer task, started with its first timeout (see
    /// [`ShutdownClock`]).
    clock: ShutdownClock,
}

/// What a dynamic supervisor that exited had to pass on to its parent.
pub(super) fn last_words(state: Box<dyn Any + Send>) -> Vec<Escalation> {
    state
        .downcast::<DynamicState>()
        .map(|s| s.uplink.into_last_words())
        .unwrap_or_default()
}

impl DynamicState {
    /// Ends a turn: passes escalations on, and exits if told to.
    fn end_turn(&mut self, myself: &ActorRef<SupervisorMsg>, next: Next) {
        self.uplink.end_turn();
        if next == Next::Exit {
            myself.stop(Some(SHUTDOWN.to_string()));
        }
    }

    fn child_path(&self, number: u64) -> ChildPath {
        self.uplink.path().join(&number.to_string())
    }

    // ---- messages --------------------------------------------------------------

    async fn handle(&mut self, msg: SupervisorMsg) -> Next {
        if self.uplink.is_giving_up() || self.stopping.is_some() {
            return self.handle_while_ending(msg);
        }
        match msg {
            SupervisorMsg::Dynamic(DynamicRequest::StartChild(args, reply)) => {
                let r = self.start_child(args).await;
                answer(reply, (r, self.uplink.flush()));
            }
            SupervisorMsg::Dynamic(DynamicRequest::TerminateChild(cell, reply)) => {
                let r = self.terminate_child(&cell).await;
                answer(reply, (r, self.uplink.flush()));
            }
            // OTP: a child spec, an id, restart_child and delete_child are not
            // for a simple_one_for_one supervisor.
            SupervisorMsg::StartChild(_, reply) | SupervisorMsg::RestartChild(_, reply) => {
                answer(reply, (Err(ChildError::SimpleOneForOne), Flushed::default()))
            }
            SupervisorMsg::TerminateChild(_, reply) | SupervisorMsg::DeleteChild(_, reply) => {
                answer(reply, (Err(ChildError::SimpleOneForOne), Flushed::default()))
            }
            SupervisorMsg::DroppedEvents(reply) => answer(reply, self.uplink.dropped_events()),
            SupervisorMsg::Terminate => return self.begin_stopping(),
            SupervisorMsg::ShutdownTimer { .. } => {}
            SupervisorMsg::WhichChildren(reply) => answer(reply, self.which_children()),
            SupervisorMsg::CountChildren(reply) => answer(reply, self.count_children()),
            SupervisorMsg::TryAgain { seq, .. } => {
                if let Some(pending) = self.restarting.remove(&seq) {
                    return self.restart(seq, pending).await;
                }
            }
            SupervisorMsg::Resume { .. } => {}
            SupervisorMsg::Escalate(escalation) => self.uplink.dispatch(escalation),
            SupervisorMsg::Exit => return Next::Exit,
        }
        Next::Continue
    }

    /// After a give-up (children are stopped) or while stopping: escalations
    /// already queued are still dispatched (and, after a give-up, kept for the
    /// parent), the shutdown's timers run, introspection is answered, and every
    /// change is refused.
    fn handle_while_ending(&mut self, msg: SupervisorMsg) -> Next {
        let gone = || {
            ChildError::NoProc(NoProc {
                supervisor: self.uplink.path().clone(),
            })
        };
        match msg {
            SupervisorMsg::Dynamic(request) => request.refuse(gone()),
            SupervisorMsg::StartChild(_, reply) | SupervisorMsg::RestartChild(_, reply) => {
                answer(reply, (Err(gone()), Flushed::default()))
            }
            SupervisorMsg::TerminateChild(_, reply) | SupervisorMsg::DeleteChild(_, reply) => {
                answer(reply, (Err(gone()), Flushed::default()))
            }
            SupervisorMsg::DroppedEvents(reply) => answer(reply, self.uplink.dropped_events()),
            // A give-up exits by itself; a shutdown is already under way.
            SupervisorMsg::Terminate => {}
            SupervisorMsg::ShutdownTimer { timer } => return self.on_shutdown_timer(timer),
            SupervisorMsg::WhichChildren(reply) => answer(reply, self.which_children()),
            SupervisorMsg::CountChildren(reply) => answer(reply, self.count_children()),
            SupervisorMsg::TryAgain { .. } | SupervisorMsg::Resume { .. } => {}
            SupervisorMsg::Escalate(escalation) => self.uplink.dispatch(escalation),
            SupervisorMsg::Exit => return Next::Exit,
        }
        Next::Continue
    }

    // ---- exits -----------------------------------------------------------------

    /// OTP's `restart_child/3` and `do_restart/3`: one arm per restart type.
    async fn on_exit(&mut self, cell: ActorCell, reason: ExitReason, final_state: Option<BoxedState>) -> Next {
        let Some(child) = self.children.remove(&cell.get_id().pid()) else {
            tracing::trace!(target: "warden::supervisor", path = %self.uplink.path(), actor = %cell.get_id(), "exit of a former child ignored");
            return Next::Continue;
        };
        let path = self.child_path(child.number);
        self.uplink.emit(SupervisorEvent::ChildExited {
            path: path.clone(),
            kind: self.config.kind,
            reason: reason.clone(),
        });
        if let (ChildKind::Supervisor, Some(state)) = (self.config.kind, final_state) {
            for escalation in crate::supervisor::last_words(state) {
                self.uplink.dispatch(escalation);
            }
        }
        if self.stopping.is_some() {
            // Nothing is restarted during the shutdown; the last exit ends it.
            return self.exit_when_all_ended();
        }
        match (self.config.restart, reason.is_normal(), child.args) {
            (Restart::Temporary, _, _) | (Restart::Transient, true, _) | (_, _, None) => Next::Continue,
            (Restart::Permanent | Restart::Transient, _, Some(args)) => {
                self.uplink.record_failure(path, reason.clone());
                let pending = Pending {
                    args,
                    restarts: child.restarts,
                    reason,
                };
                self.restart(child.number, pending).await
            }
        }
    }

    /// OTP's `restart/2`: the shared intensity first, then start the child
    /// again with its arguments; a failed start is tried again through the mailbox.
    async fn restart(&mut self, number: u64, pending: Pending) -> Next {
        let path = self.child_path(number);
        if self.log.record(Instant::now()) == Verdict::GiveUp {
            return self.give_up(path, pending.reason).await;
        }
        let restarts = pending.restarts.saturating_add(1);
        self.uplink.emit(SupervisorEvent::Restarting {
            path: path.clone(),
            kind: self.config.kind,
            restart_count: restarts,
            intensity: self.log.used(),
        });
        match self.start(path, &*pending.args).await {
            Ok(cell) => self.insert(cell, Some(pending.args), number, restarts),
            Err(_) => {
                self.restarting.insert(number, Pending { restarts, ..pending });
                let _ = self
                    .myself
                    .send_message(SupervisorMsg::TryAgain { seq: number, epoch: 0 });
            }
        }
        Next::Continue
    }

    /// One restart too many: stop every child at once, and report.
    async fn give_up(&mut self, child: ChildPath, reason: ExitReason) -> Next {
        self.uplink.emit(SupervisorEvent::GaveUp {
            path: self.uplink.path().clone(),
            child: child.clone(),
        });
        self.stop_all().await;
        self.uplink.give_up(self.log.limit(), child, reason);
        // Escalations already queued are drained before the exit.
        if self.myself.send_message(SupervisorMsg::Exit).is_err() {
            return Next::Exit;
        }
        Next::Continue
    }

    // ---- the supervisor's own shutdown ---------------------------------------------

    /// OTP's `terminate_dynamic_children`: asks every child at once (or kills
    /// them all, under `BrutalKill`) and returns to wait for their exits under
    /// one shared timer.
    fn begin_stopping(&mut self) -> Next {
        self.restarting.clear();
        let how = self.config.shutdown;
        for child in self.children.values() {
            match how {
                Shutdown::BrutalKill => child.cell.kill(),
                Shutdown::Timeout(_) | Shutdown::Infinity => ask_to_stop(&child.cell, self.config.kind),
            }
        }
        self.stopping = Some(Stopping {
            timer: 0,
            killed: how == Shutdown::BrutalKill,
            clock: ShutdownClock::default(),
        });
        match how {
            Shutdown::BrutalKill => self.set_shutdown_timer(DEFAULT_KILL_GRACE),
            Shutdown::Timeout(timeout) => self.set_shutdown_timer(timeout),
            Shutdown::Infinity => {}
        }
        self.exit_when_all_ended()
    }

    fn exit_when_all_ended(&self) -> Next {
        if self.children.is_empty() {
            Next::Exit
        } else {
            Next::Continue
        }
    }

    fn set_shutdown_timer(&mut self, after: Duration) {
        let Some(stopping) = self.stopping.as_mut() else {
            return;
        };
        stopping.timer = stopping.timer.wrapping_add(1);
        stopping.clock.arm(&self.myself, after, stopping.timer);
    }

    /// The shared timer ran out: kill the children still running; if they were
    /// killed already and have still not ended, their tasks are stuck in code
    /// that does not yield: record them as killed and go on without them.
    fn on_shutdown_timer(&mut self, timer: u32) -> Next {
        let Some(stopping) = self.stopping.as_mut() else {
            return Next::Continue;
        };
        if stopping.timer != timer {
            return Next::Continue;
        }
        if !stopping.killed {
            stopping.killed = true;
            self.children.values().for_each(|c| c.cell.kill());
            self.set_shutdown_timer(DEFAULT_KILL_GRACE);
            return Next::Continue;
        }
        let mut abandoned: Vec<Child> = self.children.drain().map(|(_, c)| c).collect();
        abandoned.sort_unstable_by_key(|c| c.number);
        for child in abandoned {
            let path = self.child_path(child.number);
            self.uplink.emit(SupervisorEvent::ChildAbandoned {
                path: path.clone(),
                kind: self.config.kind,
                grace: DEFAULT_KILL_GRACE,
            });
            self.uplink.emit(SupervisorEvent::ChildExited {
                path,
                kind: self.config.kind,
                reason: ExitReason::Killed,
            });
        }
        Next::Exit
    }

    // ---- children --------------------------------------------------------------

    fn insert(&mut self, cell: ActorCell, args: Option<ErasedArgs>, number: u64, restarts: u32) {
        let child = Child {
            cell,
            args,
            number,
            restarts,
        };
        self.children.insert(child.cell.get_id().pid(), child);
    }

    /// Starts one child from the template and reports it.
    async fn start(&self, path: ChildPath, args: &(dyn Any + Send + Sync)) -> Result<ActorCell, StartError> {
        let kind = self.config.kind;
        let ctx = StartContext {
            supervisor: self.myself.get_cell(),
            path: path.clone(),
            escalator: Escalator {
                supervisor: self.myself.clone(),
                origin: path.clone(),
            },
            observer: self.uplink.observer().cloned(),
        };
        let template = &self.config.template;
        let result = match guarded(|| template.start(ctx, args)).await {
            Ok(cell) if self.is_linked(&cell) => Ok(cell),
            Ok(cell) => {
                cell.kill();
                Err(StartError::NotLinked)
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(cell) => self.uplink.emit(SupervisorEvent::ChildStarted {
                path,
                kind,
                actor: cell.get_id(),
            }),
            Err(error) => self.uplink.emit(SupervisorEvent::ChildStartFailed {
                path,
                kind,
                error: error.clone(),
            }),
        }
        result
    }

    /// Linked to this supervisor, and local (children are keyed by local pid).
    fn is_linked(&self, cell: &ActorCell) -> bool {
        if !cell.get_id().is_local() {
            return false;
        }
        match cell.try_get_supervisor() {
            Some(sup) => sup.get_id() == self.myself.get_id(),
            // A child that already ended has unlinked itself; its exit is on its way.
            None => cell.get_status() >= ActorStatus::Stopping,
        }
    }

    /// Stops every child at once (OTP's `terminate_dynamic_children`) and
    /// drops the pending restarts.
    pub(crate) async fn stop_all(&mut self) {
        // The event-driven shutdown is over (or never began): end its timer task.
        if let Some(stopping) = self.stopping.as_mut() {
            stopping.clock = ShutdownClock::default();
        }
        self.restarting.clear();
        let children: Vec<Child> = self.children.drain().map(|(_, c)| c).collect();
        self.stop_children(children).await;
    }

    /// Stops `children` in parallel with the shutdown spec, and reports each.
    async fn stop_children(&self, children: Vec<Child>) {
        let cells: Vec<&ActorCell> = children.iter().map(|c| &c.cell).collect();
        let reasons = shutdown_all(&cells, self.config.shutdown).await;
        for (child, reason) in children.iter().zip(reasons) {
            self.uplink.emit(SupervisorEvent::ChildExited {
                path: self.child_path(child.number),
                kind: self.config.kind,
                reason,
            });
        }
    }

    // ---- the dynamic-children API ----------------------------------------------

    async fn start_child(&mut self, args: ErasedArgs) -> Result<ActorCell, ChildError> {
        if !self.config.template.accepts(&*args) {
            return Err(ChildError::WrongArguments {
                expected: self.config.template.args_type(),
            });
        }
        let number = self.next_number;
        self.next_number += 1;
        let path = self.child_path(number);
        let cell = self.start(path, &*args).await.map_err(ChildError::StartFailed)?;
        // A temporary child's arguments are not kept (SEMANTICS 41).
        let args = (self.config.restart != Restart::Temporary).then_some(args);
        self.insert(cell.clone(), args, number, 0);
        Ok(cell)
    }

    async fn terminate_child(&mut self, cell: &ActorCell) -> Result<(), ChildError> {
        let id = cell.get_id();
        match self.children.remove(&id.pid()) {
            Some(child) if id.is_local() => {
                self.stop_children(vec![child]).await;
                Ok(())
            }
            Some(child) => {
                self.children.insert(id.pid(), child);
                Err(ChildError::NotFound)
            }
            // A former child that is gone: nothing to do (OTP answers `ok`).
            None if cell.get_status() >= ActorStatus::Stopping => Ok(()),
            None => Err(ChildError::NotFound),
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        let info = |number: u64, state: ChildState, restarts: u32| ChildInfo {
            path: self.child_path(number),
            kind: self.config.kind,
            restart: self.config.restart,
            state,
            restart_count: restarts,
            last_exit: None,
        };
        let mut all: Vec<(u64, ChildInfo)> = self
            .children
            .values()
            .map(|c| {
                (
                    c.number,
                    info(c.number, ChildState::Running(c.cell.clone()), c.restarts),
                )
            })
            .chain(
                self.restarting
                    .iter()
                    .map(|(&n, p)| (n, info(n, ChildState::Restarting, p.restarts))),
            )
            .collect();
        all.sort_unstable_by_key(|(number, _)| std::cmp::Reverse(*number));
        all.into_iter().map(|(_, info)| info).collect()
    }

    fn count_children(&self) -> ChildCounts {
        let all = self.children.len() + self.restarting.len();
        let (supervisors, workers) = match self.config.kind {
            ChildKind::Supervisor => (all, 0),
            ChildKind::Worker => (0, all),
        };
        ChildCounts {
            specs: 1,
            active: self.children.len(),
            supervisors,
            workers,
        }
    }
}

fn answer<T>(reply: RpcReplyPort<T>, value: T) {
    // The caller may have given up waiting; that is its business.
    let _ = reply.send(value);
}

/// OTP's `terminate_dynamic_children`: ask every child at once, wait for all
/// of them under one shared timer, then kill the stragglers. The reasons come
/// back in the order of `cells`.
async fn shutdown_all(cells: &[&ActorCell], how: Shutdown) -> Vec<ExitReason> {
    let wait_all = || join_all(cells.iter().map(|c| c.wait(None)));
    match how {
        Shutdown::BrutalKill => {
            cells.iter().for_each(|c| c.kill());
            wait_all().await;
            vec![ExitReason::Killed; cells.len()]
        }
        Shutdown::Infinity => {
            cells.iter().for_each(|c| c.stop(Some(SHUTDOWN.to_string())));
            wait_all().await;
            vec![ExitReason::Shutdown; cells.len()]
        }
        Shutdown::Timeout(timeout) => {
            cells.iter().for_each(|c| c.stop(Some(SHUTDOWN.to_string())));
            if tokio::time::timeout(timeout, wait_all()).await.is_ok() {
                return vec![ExitReason::Shutdown; cells.len()];
            }
            let reasons = cells
                .iter()
                .map(|c| {
                    if c.get_status() == ActorStatus::Stopped {
                        ExitReason::Shutdown
                    } else {
                        c.kill();
                        ExitReason::Killed
                    }
                })
                .collect();
            wait_all().await;
            reasons
        }
    }
}
