//! The agent as a ractor actor: a mailbox that never waits for a turn.
//!
//! The actor's handler never awaits a model or a tool. A task either starts a turn, run as a
//! tokio task the actor owns (in a `JoinSet` in its state), or waits in the actor's own queue
//! behind the turn in flight. So every other message (interrupt, human input, status, and
//! ractor's stop and kill, which ractor already serves before ordinary messages) is handled
//! as soon as it arrives, ahead of the queued tasks: control has priority over new work.
//!
//! Exactly one answer per ask, whatever happens: the asker's port is kept in the actor's
//! state (queued, or as the turn in flight), never in the turn task, and it answers by
//! itself when dropped unanswered: [`AgentError::NotStarted`] for a task that never started
//! (queued, or still in the mailbox), [`AgentError::AgentDown`] for the turn in flight. So
//! however the actor ends (a stop, a crash, or a kill, after which ractor hands the state
//! to the supervisor instead of running `post_stop`), every asker hears at once when the
//! state is dropped, and the turn task is aborted with it; the turn task also stops by
//! itself as soon as its actor has stopped, whoever holds the state.
//!
//! Work nobody waits for is not done: a queued ask whose asker is gone (its deadline passed,
//! its future dropped) is skipped, and a turn in flight for such an ask is cut short like an
//! interrupt. Every user callback is guarded: a behaviour that panics (building its turn or
//! running it) fails that turn with a typed error and the queue moves on; observers run on a
//! task of their own ([`EventSink`]).
//!
//! A durable agent ([`Agent::journal`]) works the same way, with three more duties: its start
//! restores memory from the journal's snapshot and queues every unfinished task of its name
//! (a task also sent to it is queued once); a turn of a journaled task first reads the task's
//! recorded steps, and writes the outcome (with a new memory snapshot) before the actor
//! hears the turn ended; and a journaled task is never skipped or cut short because its
//! asker stopped waiting (it was accepted, so it runs to its end).

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;
use warden_durable::{Journal, TaskId};
use warden_supervisor::{ChildPath, Escalator};

use super::error::{AgentError, AgentTrouble, TurnError};
use super::event::{AgentEventKind, DropReason, EventSink, TurnEnd};
use super::reply::Reply;
use super::turn::{Behaviour, Outcome, TurnContext, TurnOutput};
use super::{Activity, Agent, AgentRef, AgentStatus, LoadGuard};
use crate::memory::Memory;
use crate::message::{Address, AgentMessage};

/// What an asker receives.
pub(crate) type Answer = Result<Reply, AgentError>;

/// The agent actor's messages.
pub(crate) enum AgentMsg {
    /// A task (an ask or a tell).
    Task(Box<Pending>),
    /// Interrupt the turn in flight; answers whether there was one.
    Interrupt(RpcReplyPort<bool>),
    /// Input from a human: to the turn in flight, or a new turn.
    HumanInput(String),
    /// The agent's status.
    Status(RpcReplyPort<AgentStatus>),
    /// From a turn: it is (or is no longer) waiting for a human.
    Waiting { turn: u64, waiting: bool },
    /// From a turn: it ended.
    TurnDone(Box<TurnDone>),
    /// A durable agent looks in its journal for unfinished tasks it does not hold (accepted
    /// by another process, or landed late from a process that died mid-write).
    Rescan,
}

#[cfg(feature = "cluster")]
impl ractor::Message for AgentMsg {}

impl fmt::Debug for AgentMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Task(pending) => f
                .debug_struct("Task")
                .field("task", &pending.task.as_ref().map(|t| t.id))
                .field("ask", &pending.asker.is_some())
                .finish(),
            Self::Interrupt(_) => f.write_str("Interrupt"),
            Self::HumanInput(_) => f.write_str("HumanInput"),
            Self::Status(_) => f.write_str("Status"),
            Self::Waiting { turn, waiting } => f
                .debug_struct("Waiting")
                .field("turn", turn)
                .field("waiting", waiting)
                .finish(),
            Self::TurnDone(done) => f.debug_struct("TurnDone").field("turn", &done.turn).finish(),
            Self::Rescan => f.write_str("Rescan"),
        }
    }
}

/// Someone waiting for a task's answer. Dropped unanswered, it answers
/// [`AgentError::AgentDown`] (the owner of a task that never started answers
/// [`AgentError::NotStarted`] first: see [`Pending`]).
pub(crate) struct Asker {
    agent: Arc<str>,
    port: Option<oneshot::Sender<Answer>>,
    /// Closed when the asker stops waiting (the asker holds its sender and never sends).
    gone: Option<oneshot::Receiver<()>>,
    deadline: Instant,
}

/// What the asking side keeps: where the answer comes, and its presence (dropping it tells
/// the agent nobody waits any more).
pub(crate) struct AskerSide {
    pub(crate) answer: oneshot::Receiver<Answer>,
    pub(crate) _waiting: oneshot::Sender<()>,
}

impl Asker {
    pub(crate) fn new(agent: Arc<str>, deadline: Instant) -> (Self, AskerSide) {
        let (port, answer) = oneshot::channel();
        let (waiting, gone) = oneshot::channel();
        let asker = Self {
            agent,
            port: Some(port),
            gone: Some(gone),
            deadline,
        };
        (
            asker,
            AskerSide {
                answer,
                _waiting: waiting,
            },
        )
    }

    /// Whether nobody waits for the answer any more.
    fn is_gone(&mut self) -> bool {
        let closed = self.port.as_ref().is_none_or(oneshot::Sender::is_closed);
        let left = self
            .gone
            .as_mut()
            .is_some_and(|g| matches!(g.try_recv(), Err(oneshot::error::TryRecvError::Closed)));
        closed || left || Instant::now() >= self.deadline
    }

    fn answer(&mut self, answer: Answer) {
        if let Some(port) = self.port.take() {
            let _ = port.send(answer);
        }
    }
}

impl Drop for Asker {
    fn drop(&mut self) {
        let down = AgentError::AgentDown(self.agent.clone());
        self.answer(Err(down));
    }
}

/// A task sent to the agent, from the handle's `send` until its turn starts. Dropped before
/// that (in the mailbox, in the queue, skipped), it releases its load, answers its asker
/// [`AgentError::NotStarted`], and reports [`AgentEventKind::TaskDropped`].
pub(crate) struct Pending {
    /// `None` once started (or withdrawn).
    task: Option<AgentMessage>,
    load: Option<LoadGuard>,
    asker: Option<Asker>,
    events: EventSink,
    drop_reason: DropReason,
    /// The task's id in a durable agent's journal.
    pub(crate) durable: Option<TaskId>,
}

impl Pending {
    pub(crate) fn new(task: AgentMessage, load: LoadGuard, asker: Option<Asker>, events: EventSink) -> Self {
        Self {
            task: Some(task),
            load: Some(load),
            asker,
            events,
            drop_reason: DropReason::AgentStopped,
            durable: None,
        }
    }

    /// Withdraws a task that was never delivered: dropping it then reports nothing.
    pub(crate) fn withdraw(mut self) {
        self.task = None;
        if let Some(mut asker) = self.asker.take() {
            asker.port = None;
        }
    }

    /// Whether it is an ask whose asker stopped waiting; if so, it is marked to be dropped
    /// for that reason.
    fn is_abandoned(&mut self) -> bool {
        if self.durable.is_some() {
            // Accepted into a journal: it runs whether or not anyone waits.
            return false;
        }
        let gone = self.asker.as_mut().is_some_and(Asker::is_gone);
        if gone {
            self.drop_reason = DropReason::AskerGone;
        }
        gone
    }

    /// Takes the task out to start its turn.
    fn start(mut self) -> Option<Started> {
        let task = self.task.take()?;
        Some((task, self.load.take(), self.asker.take(), self.durable))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        // The load is released before the asker can see the outcome.
        drop(self.load.take());
        let ask = self.asker.is_some();
        if let Some(mut asker) = self.asker.take() {
            let not_started = AgentError::NotStarted(asker.agent.clone());
            asker.answer(Err(not_started));
        }
        tracing::debug!(task = %task.id, ask, reason = ?self.drop_reason, "task dropped without a turn");
        self.events.emit(AgentEventKind::TaskDropped {
            task: task.id,
            ask,
            reason: self.drop_reason,
        });
    }
}

/// A task taken out to start its turn: the task, its load, its asker, its journal id.
type Started = (AgentMessage, Option<LoadGuard>, Option<Asker>, Option<TaskId>);

/// A turn's end, sent by the turn task to its actor.
pub(crate) struct TurnDone {
    turn: u64,
    /// `None` if it was lost to a panic after the turn.
    memory: Option<Memory>,
    result: Result<TurnOutput, TurnError>,
    /// Cut short because its asker stopped waiting.
    abandoned: bool,
}

/// What a start gets from its supervisor (nothing when spawned alone).
pub(crate) struct StartArgs {
    pub(crate) escalator: Option<Escalator>,
    pub(crate) path: Option<ChildPath>,
}

/// The actor: the agent's definition.
pub(crate) struct AgentActor(pub(crate) Agent);

/// The turn in flight. Fields drop in order: the load is released before the asker (if
/// still here, the agent went down mid-turn) answers `AgentDown`.
struct Current {
    turn: u64,
    durable: Option<TaskId>,
    task: AgentMessage,
    job: tokio::task::Id,
    _load: Option<LoadGuard>,
    asker: Option<Asker>,
    interrupt: Option<oneshot::Sender<()>>,
    human: mpsc::UnboundedSender<String>,
    waiting: bool,
}

/// One incarnation's state: its memory, queue and counters. Shared with no one. Dropping it,
/// however the actor ended, aborts the turn in flight, answers every asker and withdraws
/// the incarnation from its handles.
pub(crate) struct AgentState {
    /// `None` while a turn has it.
    memory: Option<Memory>,
    queue: VecDeque<Pending>,
    current: Option<Current>,
    /// The turn task.
    tasks: JoinSet<()>,
    next_turn: u64,
    turns_completed: u64,
    failures: u32,
    escalator: Option<Escalator>,
    path: Option<ChildPath>,
    events: EventSink,
    handle: AgentRef,
    actor: ActorId,
    /// Journaled tasks queued or running in this incarnation.
    known: HashSet<TaskId>,
    /// Journaled tasks queued from the journal at the start, not yet started: they may have
    /// recorded steps (a task sent to this incarnation cannot: nobody ran it before).
    resumed: HashSet<TaskId>,
    /// The timer of a durable agent's rescans.
    rescan: Option<tokio::task::JoinHandle<()>>,
    /// A durable agent's journal, claimed by this incarnation: its writes are refused once a
    /// newer incarnation claims the agent.
    journal: Option<Journal>,
    /// The last journaled tasks this incarnation finished (at most [`RECENTLY_FINISHED`]): a
    /// task's own message arriving after a rescan already ran it is not run again.
    finished: VecDeque<TaskId>,
}

/// How many finished journaled tasks an incarnation remembers.
const RECENTLY_FINISHED: usize = 1024;

impl Drop for AgentState {
    fn drop(&mut self) {
        if let Some(rescan) = self.rescan.take() {
            rescan.abort();
        }
        self.tasks.abort_all();
        // The turn in flight may have acted: its asker hears `AgentDown`. Queued tasks never
        // started: `NotStarted`, and an event each.
        self.current = None;
        self.queue.clear();
        self.handle.withdraw(self.actor);
    }
}

/// How a turn was cut short.
enum Cut {
    Interrupt,
    AskerGone,
    Deadline(Duration),
}

/// What a turn task watches besides its turn.
struct Signals {
    interrupt: oneshot::Receiver<()>,
    asker_gone: Option<oneshot::Receiver<()>>,
    deadline: Option<Duration>,
}

impl AgentActor {
    fn status(&self, state: &AgentState) -> AgentStatus {
        let activity = match &state.current {
            None => Activity::Idle,
            Some(c) if c.waiting => Activity::WaitingForHuman,
            Some(_) => Activity::Working,
        };
        AgentStatus {
            activity,
            queued: state.queue.len(),
            turns_completed: state.turns_completed,
            consecutive_failures: state.failures,
            memory_messages: state.memory.as_ref().map_or(0, Memory::len),
            events_dropped: state.events.dropped(),
        }
    }

    /// Hands the asker of a journaled task that this incarnation already holds (queued from
    /// the journal at its start) to that task, and lets the copy go.
    fn join_asker(state: &mut AgentState, mut pending: Pending, id: TaskId) {
        let asker = pending.asker.take();
        pending.withdraw();
        let Some(asker) = asker else {
            return;
        };
        if let Some(current) = state.current.as_mut().filter(|c| c.durable == Some(id)) {
            if current.asker.is_none() {
                current.asker = Some(asker);
            }
            return;
        }
        if let Some(queued) = state.queue.iter_mut().find(|p| p.durable == Some(id)) {
            if queued.asker.is_none() {
                queued.asker = Some(asker);
            }
        }
    }

    /// Queues the journal's unfinished tasks of this agent that it does not hold yet.
    async fn rescan(&self, state: &mut AgentState) {
        let Some(journal) = &self.0.journal else {
            return;
        };
        let entries = match journal.unfinished(&self.0.name).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(agent = %self.0.name, %error, "journal rescan failed");
                return;
            }
        };
        let unknown: Vec<_> = entries.into_iter().filter(|e| !state.known.contains(&e.id)).collect();
        for entry in unknown {
            let Ok(task) = crate::codec::from_bytes(&entry.task) else {
                // Left for the next start, which fails it with a typed error naming it.
                continue;
            };
            tracing::info!(agent = %self.0.name, task = %entry.id, "picked up a journaled task");
            let mut pending = Pending::new(task, self.0.handle.control_load(), None, state.events.clone());
            pending.durable = Some(entry.id);
            state.known.insert(entry.id);
            state.resumed.insert(entry.id);
            state.queue.push_back(pending);
        }
    }

    /// Drops the queued asks whose askers stopped waiting.
    fn prune_queue(state: &mut AgentState) {
        state.queue.retain_mut(|pending| !pending.is_abandoned());
    }

    fn start_next(&self, myself: &ActorRef<AgentMsg>, state: &mut AgentState) {
        while state.current.is_none() {
            let Some(mut pending) = state.queue.pop_front() else {
                return;
            };
            if !pending.is_abandoned() {
                self.start_turn(myself, state, pending);
            }
        }
    }

    fn start_turn(&self, myself: &ActorRef<AgentMsg>, state: &mut AgentState, pending: Pending) {
        let Some((task, load, mut asker, durable)) = pending.start() else {
            return;
        };
        state.next_turn += 1;
        let turn = state.next_turn;
        let (interrupt_tx, interrupt_rx) = oneshot::channel();
        let (human_tx, human_rx) = mpsc::unbounded_channel();
        let memory = state.memory.take().unwrap_or_else(|| Memory::new(self.0.memory_limit));
        let cx = TurnContext {
            memory,
            name: self.0.name.clone(),
            path: state.path.clone(),
            escalator: state.escalator.clone(),
            directory: self.0.directory.clone(),
            events: state.events.clone(),
            human: human_rx,
            myself: myself.clone(),
            turn,
            durable: None,
        };
        let resumed = durable.is_some_and(|id| state.resumed.remove(&id));
        let journaled = state.journal.clone().zip(durable).map(|(j, id)| (j, id, resumed));
        state.events.emit(AgentEventKind::TurnStarted { task: task.id });
        let signals = Signals {
            interrupt: interrupt_rx,
            // A journaled task runs to its end whoever waits.
            asker_gone: asker
                .as_mut()
                .and_then(|a| a.gone.take())
                .filter(|_| journaled.is_none()),
            deadline: self.0.turn_deadline,
        };
        let behaviour = self.0.behaviour.clone();
        let myself = myself.clone();
        let turn_task = task.clone();
        // The turn's span: its model and tool calls are its children in a trace.
        let span = tracing::info_span!(
            target: "warden::agent",
            "agent.turn",
            otel.name = %format_args!("invoke_agent {}", self.0.name),
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = %self.0.name,
            task = %task.id,
        );
        let job = state.tasks.spawn(async move {
            let stopped = myself.get_cell();
            tokio::select! {
                biased;
                // The actor is gone (its state may still be on its way to the supervisor):
                // so is everyone waiting for this turn.
                _ = stopped.wait(None) => {}
                done = AssertUnwindSafe(run_journaled(behaviour, cx, turn_task, signals, journaled)).catch_unwind() => {
                    let done = done.unwrap_or_else(|panic| TurnDone::lost(turn, &*panic));
                    let _ = myself.send_message(AgentMsg::TurnDone(Box::new(done)));
                }
            }
        }.instrument(span));
        state.current = Some(Current {
            turn,
            durable,
            task,
            job: job.id(),
            _load: load,
            asker,
            interrupt: Some(interrupt_tx),
            human: human_tx,
            waiting: false,
        });
    }

    /// Collects ended turn tasks. A turn task only ends without reporting if it panicked
    /// outside every guard: its turn then fails, so the queue moves on.
    fn reap(&self, state: &mut AgentState) {
        while let Some(joined) = state.tasks.try_join_next_with_id() {
            let Err(error) = joined else {
                continue;
            };
            let ours = state.current.as_ref().is_some_and(|c| c.job == error.id());
            if ours && error.is_panic() {
                let turn = state.current.as_ref().map_or(0, |c| c.turn);
                let panic = error.into_panic();
                self.finish_turn(state, TurnDone::lost(turn, &*panic));
            }
        }
    }

    fn finish_turn(&self, state: &mut AgentState, done: TurnDone) {
        let Some(mut current) = state.current.take_if(|c| c.turn == done.turn) else {
            tracing::warn!(agent = %self.0.name, turn = done.turn, "end of an unknown turn ignored");
            return;
        };
        state.memory = Some(done.memory.unwrap_or_else(|| {
            tracing::error!(agent = %self.0.name, "memory lost to a panic after a turn; starting afresh");
            Memory::new(self.0.memory_limit)
        }));
        state.turns_completed += 1;
        if let Some(id) = current.durable {
            state.known.remove(&id);
            if state.finished.len() == RECENTLY_FINISHED {
                state.finished.pop_front();
            }
            state.finished.push_back(id);
        }
        let me = Address::Name(self.0.name.to_string());
        let task = &current.task;
        let answer = match done.result {
            Ok(output) => {
                state.failures = 0;
                let end = if done.abandoned {
                    TurnEnd::Abandoned(output.outcome)
                } else {
                    TurnEnd::Finished(output.outcome)
                };
                state.events.emit(AgentEventKind::TurnEnded { task: task.id, end });
                Ok(Reply {
                    message: task.reply_with(me, output.content),
                    outcome: output.outcome,
                    iterations: output.iterations,
                    usage: output.usage,
                    structured: output.structured,
                })
            }
            Err(error) => {
                state.failures += 1;
                state.events.emit(AgentEventKind::TurnEnded {
                    task: task.id,
                    end: TurnEnd::Failed(error.failure()),
                });
                tracing::warn!(agent = %self.0.name, failures = state.failures, %error, "turn failed");
                self.maybe_escalate(state, &current.task, &error);
                Err(AgentError::Turn(error))
            }
        };
        // The task no longer counts as load once its asker can see the answer.
        drop(current._load.take());
        if let Some(asker) = current.asker.as_mut() {
            asker.answer(answer);
        }
    }

    /// After `escalate_after` failed turns in a row, raises an [`AgentTrouble`].
    fn maybe_escalate(&self, state: &mut AgentState, task: &AgentMessage, error: &TurnError) {
        let after = self.0.escalate_after;
        // A spent budget will not come back by trying again, and a side effect of unknown
        // outcome needs someone to look: both go up at once.
        let spent = matches!(error, TurnError::Model(e) if matches!(**e, crate::model::ModelError::BudgetExceeded { .. }))
            || matches!(error, TurnError::OutcomeUnknown { .. });
        if after == 0 || (state.failures < after && !spent) {
            return;
        }
        let Some(escalator) = &state.escalator else {
            return;
        };
        let trouble = AgentTrouble {
            agent: self.0.name.clone(),
            path: state.path.clone(),
            task: task.clone(),
            error: error.clone(),
            consecutive_failures: state.failures,
        };
        match escalator.raise(trouble) {
            Ok(()) => state.events.emit(AgentEventKind::Escalated {
                consecutive_failures: state.failures,
            }),
            Err(e) => tracing::warn!(agent = %self.0.name, error = %e, "could not escalate"),
        }
        state.failures = 0;
    }
}

impl TurnDone {
    /// A turn whose task panicked outside the turn's own guard: it failed, its memory is lost.
    fn lost(turn: u64, panic: &(dyn std::any::Any + Send)) -> Self {
        Self {
            turn,
            memory: None,
            result: Err(panicked(panic)),
            abandoned: false,
        }
    }
}

/// A turn error for a panic.
fn panicked(panic: &(dyn std::any::Any + Send)) -> TurnError {
    TurnError::Panicked {
        message: warden_supervisor::panic_report::panic_message(panic),
    }
}

/// Runs one turn of a journaled task (or of any task, when `journaled` is `None`): reads its
/// recorded steps first, and writes its outcome and the memory snapshot before the actor
/// hears of its end.
async fn run_journaled(
    behaviour: Arc<dyn Behaviour>,
    mut cx: TurnContext,
    task: AgentMessage,
    signals: Signals,
    journaled: Option<(Journal, TaskId, bool)>,
) -> TurnDone {
    let Some((journal, id, resumed)) = journaled else {
        return run_turn(behaviour, cx, task, signals).await;
    };
    let recorded = if resumed {
        journal.steps(id).await
    } else {
        Ok(Vec::new())
    };
    let mut done = match recorded {
        Ok(recorded) => {
            cx.durable = Some(super::durable::DurableTurn {
                journal: journal.clone(),
                task: id,
                recorded,
                next: 0,
            });
            run_turn(behaviour, cx, task, signals).await
        }
        Err(error) => TurnDone {
            turn: cx.turn,
            memory: Some(cx.memory),
            result: Err(TurnError::journal(error)),
            abandoned: false,
        },
    };
    let snapshot = done
        .memory
        .as_ref()
        .and_then(|memory| crate::codec::to_journal(memory.messages()).ok());
    let finished = match super::durable::encode_outcome(&done.result) {
        Ok(outcome) => journal.finish(id, outcome, snapshot).await.map_err(TurnError::journal),
        Err(e) => Err(e),
    };
    if let Err(error) = finished {
        // Left unfinished: the next start resumes it, its recorded steps replayed.
        tracing::error!(task = %id, %error, "could not write a durable task's outcome");
        if done.result.is_ok() {
            done.result = Err(error);
        }
    }
    done
}

/// Runs one turn, cutting it short on an interrupt, when its asker stops waiting, or at its
/// deadline, and leaving the memory consistent either way.
async fn run_turn(
    behaviour: Arc<dyn Behaviour>,
    mut cx: TurnContext,
    task: AgentMessage,
    signals: Signals,
) -> TurnDone {
    let Signals {
        mut interrupt,
        asker_gone,
        deadline,
    } = signals;
    let ended = {
        // Built inside the guard: a behaviour that panics building its turn fails the turn.
        let turn = AssertUnwindSafe(async { behaviour.turn(&mut cx, &task).await }).catch_unwind();
        let asker_gone = async move {
            match asker_gone {
                Some(gone) => drop(gone.await),
                None => std::future::pending().await,
            }
        };
        let deadline_passed = async move {
            match deadline {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    d
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Ok(()) = &mut interrupt => Err(Cut::Interrupt),
            () = asker_gone => Err(Cut::AskerGone),
            d = deadline_passed => Err(Cut::Deadline(d)),
            result = turn => Ok(result),
        }
    };
    let closed = cx.memory.close_pending_tool_calls();
    let mut abandoned = false;
    let result = match ended {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(panicked(&*panic)),
        Err(cut) => {
            cx.emit(AgentEventKind::Interrupted {
                closed_tool_calls: closed,
            });
            match cut {
                Cut::Interrupt => Ok(TurnOutput::new(Outcome::Interrupted, Vec::new())),
                Cut::AskerGone => {
                    abandoned = true;
                    Ok(TurnOutput::new(Outcome::Interrupted, Vec::new()))
                }
                Cut::Deadline(d) => Err(TurnError::DeadlineExceeded(d)),
            }
        }
    };
    cx.memory.trim();
    TurnDone {
        turn: cx.turn,
        memory: Some(cx.memory),
        result,
        abandoned,
    }
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = StartArgs;

    /// Registers the agent and publishes this incarnation to its handles. Fails when the
    /// registry has another running agent or a team of the same name.
    async fn pre_start(&self, myself: ActorRef<AgentMsg>, args: StartArgs) -> Result<AgentState, ActorProcessingErr> {
        if let Some(directory) = &self.0.directory {
            directory.enter(&self.0.handle, args.path.as_ref())?;
        }
        let events = match (&self.0.observer, self.0.observer_inline) {
            (Some(observer), true) => EventSink::inline(self.0.name.clone(), observer.clone()),
            _ => EventSink::start(self.0.name.clone(), self.0.observer.clone(), self.0.observer_queue),
        };
        let actor = myself.get_id();
        let mut memory = Memory::new(self.0.memory_limit);
        let mut resumed = Vec::new();
        // Claimed first: a write of an earlier incarnation still on its way is refused from
        // here on, so what is read below stays what a replay sees.
        let claimed = match &self.0.journal {
            Some(journal) => Some(journal.claim(&self.0.name).await?),
            None => None,
        };
        if let Some(journal) = &claimed {
            if let Some(snapshot) = journal.snapshot(&self.0.name).await? {
                let messages: Vec<crate::model::Message> = crate::codec::from_journal(&snapshot)?;
                for message in messages {
                    memory.push(message);
                }
            }
            for entry in journal.unfinished(&self.0.name).await? {
                match crate::codec::from_bytes(&entry.task) {
                    Ok(task) => resumed.push((entry.id, task)),
                    Err(error) => {
                        // Never run, never dropped silently: it fails, naming the task.
                        tracing::error!(task = %entry.id, %error, "a journaled task cannot be read; failed");
                        let failure = TurnError::journal(warden_durable::JournalError::Corrupt {
                            what: format!("task {}", entry.id),
                            detail: error.to_string(),
                        });
                        let outcome = super::durable::encode_outcome(&Err(failure))?;
                        journal.finish(entry.id, outcome, None).await?;
                    }
                }
            }
        }
        let generation = self.0.handle.publish(myself, args.path.clone(), events.clone());
        events.emit(AgentEventKind::Started { generation });
        let mut queue = VecDeque::new();
        let mut known = HashSet::new();
        for (id, task) in resumed {
            let mut pending = Pending::new(task, self.0.handle.control_load(), None, events.clone());
            pending.durable = Some(id);
            known.insert(id);
            queue.push_back(pending);
        }
        if !known.is_empty() {
            tracing::info!(agent = %self.0.name, tasks = known.len(), "resuming journaled tasks");
        }
        Ok(AgentState {
            memory: Some(memory),
            queue,
            current: None,
            tasks: JoinSet::new(),
            next_turn: 0,
            turns_completed: 0,
            failures: 0,
            escalator: args.escalator,
            path: args.path,
            events,
            handle: self.0.handle.clone(),
            actor,
            resumed: known.clone(),
            known,
            rescan: None,
            finished: VecDeque::new(),
            journal: claimed,
        })
    }

    /// Starts the first of the tasks resumed from the journal, if any, and a durable agent's
    /// rescans.
    async fn post_start(&self, myself: ActorRef<AgentMsg>, state: &mut AgentState) -> Result<(), ActorProcessingErr> {
        if let (Some(_), Some(every)) = (&self.0.journal, self.0.rescan_every) {
            state.rescan = Some(myself.send_interval(every, || AgentMsg::Rescan));
        }
        self.start_next(&myself, state);
        Ok(())
    }

    /// Never waits for a turn; see the [module docs](self). It cannot fail.
    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        self.reap(state);
        match msg {
            AgentMsg::Task(pending) => {
                Self::prune_queue(state);
                match pending.durable {
                    // Already queued from the journal at the start: its asker waits there.
                    Some(id) if state.finished.contains(&id) => pending.withdraw(),
                    Some(id) if !state.known.insert(id) => Self::join_asker(state, *pending, id),
                    _ => state.queue.push_back(*pending),
                }
            }
            AgentMsg::Interrupt(reply) => {
                let interrupted = match state.current.as_mut().and_then(|c| c.interrupt.take()) {
                    Some(tx) => tx.send(()).is_ok(),
                    None => false,
                };
                let _ = reply.send(interrupted);
            }
            AgentMsg::HumanInput(text) => match &state.current {
                Some(current) => {
                    let _ = current.human.send(text);
                }
                None => {
                    let task = AgentMessage::user(text)
                        .from(Address::external("human"))
                        .to(Address::Name(self.0.name.to_string()));
                    let pending = Pending::new(task, self.0.handle.control_load(), None, state.events.clone());
                    self.start_turn(&myself, state, pending);
                }
            },
            AgentMsg::Status(reply) => {
                Self::prune_queue(state);
                let _ = reply.send(self.status(state));
            }
            AgentMsg::Waiting { turn, waiting } => {
                if let Some(current) = state.current.as_mut().filter(|c| c.turn == turn) {
                    current.waiting = waiting;
                }
            }
            AgentMsg::TurnDone(done) => self.finish_turn(state, *done),
            AgentMsg::Rescan => self.rescan(state).await,
        }
        self.start_next(&myself, state);
        Ok(())
    }

    /// A stop (not a kill or a crash, which skip it): the name leaves the registry, as the
    /// incarnation ends on purpose (a restart registers it again). The state's drop then
    /// aborts the turn and answers every asker.
    async fn post_stop(&self, _myself: ActorRef<AgentMsg>, state: &mut AgentState) -> Result<(), ActorProcessingErr> {
        state.tasks.abort_all();
        if let Some(directory) = &self.0.directory {
            directory.withdraw(&self.0.handle);
        }
        Ok(())
    }
}
