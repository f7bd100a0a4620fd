//! The agent as a ractor actor: a mailbox that never waits for a turn.
//!
//! The actor's handler never awaits a model or a tool. A task either starts a turn, run as a
//! tokio task the actor owns (in a `JoinSet` in its state), or waits in the actor's own queue
//! behind the turn in flight. So every other message (interrupt, human input, status, and
//! ractor's stop and kill, which ractor already serves before ordinary messages) is handled
//! as soon as it arrives, ahead of the queued tasks: control has priority over new work.
//!
//! Exactly one answer per ask: the reply port of a task is kept in the actor's state (queued,
//! or as the turn in flight), never in the turn task. When the turn ends, the actor answers.
//! When the actor dies, its state is dropped, and with it every reply port, which wakes each
//! asker with `AgentDown` at once; the turn task is aborted with the `JoinSet`.

use std::collections::VecDeque;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use warden_supervisor::{ChildPath, Escalator};

use super::behaviour::{AgentTrouble, Behaviour, Outcome, Reply, TurnContext, TurnOutput};
use super::error::{AgentError, TurnError};
use super::event::{AgentEvent, AgentEventKind};
use super::{Activity, Agent, AgentStatus, LoadGuard};
use crate::memory::Memory;
use crate::message::{Address, AgentMessage};

/// What an agent's answer port carries.
pub(crate) type ReplyPort = RpcReplyPort<Result<Reply, AgentError>>;

/// The agent actor's messages.
pub(crate) enum AgentMsg {
    /// A task; `reply` is `None` for a `tell`. (The load is released before the reply port,
    /// should the message be dropped.)
    Task {
        task: AgentMessage,
        load: LoadGuard,
        reply: Option<ReplyPort>,
    },
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
}

#[cfg(feature = "cluster")]
impl ractor::Message for AgentMsg {}

impl fmt::Debug for AgentMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Task { task, reply, .. } => f
                .debug_struct("Task")
                .field("task", &task.id)
                .field("ask", &reply.is_some())
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
        }
    }
}

/// A turn's end, sent by the turn task to its actor.
pub(crate) struct TurnDone {
    turn: u64,
    memory: Memory,
    task: AgentMessage,
    result: Result<TurnOutput, TurnError>,
}

/// What a start gets from its supervisor (nothing when spawned alone).
pub(crate) struct StartArgs {
    pub(crate) escalator: Option<Escalator>,
    pub(crate) path: Option<ChildPath>,
}

/// The actor: the agent's definition.
pub(crate) struct AgentActor(pub(crate) Agent);

/// Fields drop in order: the load is released before the asker can see the outcome.
struct Pending {
    task: AgentMessage,
    _load: LoadGuard,
    reply: Option<ReplyPort>,
}

struct Current {
    turn: u64,
    _load: LoadGuard,
    reply: Option<ReplyPort>,
    interrupt: Option<oneshot::Sender<()>>,
    human: mpsc::UnboundedSender<String>,
    waiting: bool,
}

/// One incarnation's state: its memory, queue and counters. Shared with no one.
pub(crate) struct AgentState {
    /// `None` while a turn has it.
    memory: Option<Memory>,
    queue: VecDeque<Pending>,
    current: Option<Current>,
    /// The turn task; aborted when the state is dropped.
    tasks: JoinSet<()>,
    next_turn: u64,
    turns_completed: u64,
    failures: u32,
    escalator: Option<Escalator>,
    path: Option<ChildPath>,
}

impl AgentActor {
    fn emit(&self, kind: AgentEventKind) {
        if let Some(observer) = &self.0.observer {
            observer(&AgentEvent {
                agent: self.0.name.clone(),
                kind,
            });
        }
    }

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
        }
    }

    fn start_next(&self, myself: &ActorRef<AgentMsg>, state: &mut AgentState) {
        if state.current.is_some() {
            return;
        }
        if let Some(pending) = state.queue.pop_front() {
            self.start_turn(myself, state, pending);
        }
    }

    fn start_turn(&self, myself: &ActorRef<AgentMsg>, state: &mut AgentState, pending: Pending) {
        let Pending { task, reply, _load } = pending;
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
            registry: self.0.registry.clone(),
            observer: self.0.observer.clone(),
            human: human_rx,
            myself: myself.clone(),
            turn,
        };
        self.emit(AgentEventKind::TurnStarted { task: task.id });
        let behaviour = self.0.behaviour.clone();
        let myself = myself.clone();
        state.tasks.spawn(async move {
            let done = run_turn(behaviour, cx, task, interrupt_rx).await;
            // If the actor is gone, so is everyone waiting for this answer.
            let _ = myself.send_message(AgentMsg::TurnDone(Box::new(done)));
        });
        state.current = Some(Current {
            turn,
            reply,
            _load,
            interrupt: Some(interrupt_tx),
            human: human_tx,
            waiting: false,
        });
    }

    fn finish_turn(&self, state: &mut AgentState, done: TurnDone) {
        let Some(current) = state.current.take_if(|c| c.turn == done.turn) else {
            tracing::warn!(agent = %self.0.name, turn = done.turn, "end of an unknown turn ignored");
            return;
        };
        state.memory = Some(done.memory);
        state.turns_completed += 1;
        let me = Address::Name(self.0.name.to_string());
        let answer = match done.result {
            Ok(output) => {
                state.failures = 0;
                self.emit(AgentEventKind::TurnEnded {
                    task: done.task.id,
                    outcome: output.outcome.as_str(),
                });
                Ok(Reply {
                    message: done.task.reply_with(me, output.content),
                    outcome: output.outcome,
                    iterations: output.iterations,
                    usage: output.usage,
                    structured: output.structured,
                })
            }
            Err(error) => {
                state.failures += 1;
                self.emit(AgentEventKind::TurnEnded {
                    task: done.task.id,
                    outcome: error.kind(),
                });
                tracing::warn!(agent = %self.0.name, failures = state.failures, %error, "turn failed");
                self.maybe_escalate(state, &done.task, &error);
                Err(AgentError::Turn(error))
            }
        };
        // The task no longer counts as load once its asker can see the answer.
        let Current { reply, _load, .. } = current;
        drop(_load);
        if let Some(port) = reply {
            let _ = port.send(answer);
        }
    }

    /// After `escalate_after` failed turns in a row, raises an [`AgentTrouble`].
    fn maybe_escalate(&self, state: &mut AgentState, task: &AgentMessage, error: &TurnError) {
        let after = self.0.escalate_after;
        if after == 0 || state.failures < after {
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
            Ok(()) => self.emit(AgentEventKind::Escalated {
                consecutive_failures: state.failures,
            }),
            Err(e) => tracing::warn!(agent = %self.0.name, error = %e, "could not escalate"),
        }
        state.failures = 0;
    }
}

/// Runs one turn, dropping it on an interrupt and leaving the memory consistent either way.
async fn run_turn(
    behaviour: Arc<dyn Behaviour>,
    mut cx: TurnContext,
    task: AgentMessage,
    mut interrupt: oneshot::Receiver<()>,
) -> TurnDone {
    let result = {
        let turn = AssertUnwindSafe(behaviour.turn(&mut cx, &task)).catch_unwind();
        tokio::select! {
            biased;
            Ok(()) = &mut interrupt => None,
            result = turn => Some(result),
        }
    };
    let closed = cx.memory.close_pending_tool_calls();
    let result = match result {
        None => {
            cx.emit(AgentEventKind::Interrupted {
                closed_tool_calls: closed,
            });
            Ok(TurnOutput::new(Outcome::Interrupted, Vec::new()))
        }
        Some(Ok(result)) => result,
        Some(Err(panic)) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            Err(TurnError::other(format!("turn panicked: {message}")))
        }
    };
    cx.memory.trim();
    TurnDone {
        turn: cx.turn,
        memory: cx.memory,
        task,
        result,
    }
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = StartArgs;

    /// Registers the agent and publishes this incarnation to its handles. Fails when the
    /// registry has another agent or team of the same name.
    async fn pre_start(&self, myself: ActorRef<AgentMsg>, args: StartArgs) -> Result<AgentState, ActorProcessingErr> {
        if let Some(registry) = &self.0.registry {
            registry.register_agent(&self.0.handle)?;
            if let Some(path) = &args.path {
                registry.register_path(path.clone(), &self.0.handle);
            }
        }
        let generation = self.0.handle.publish(myself, args.path.clone());
        self.emit(AgentEventKind::Started { generation });
        Ok(AgentState {
            memory: Some(Memory::new(self.0.memory_limit)),
            queue: VecDeque::new(),
            current: None,
            tasks: JoinSet::new(),
            next_turn: 0,
            turns_completed: 0,
            failures: 0,
            escalator: args.escalator,
            path: args.path,
        })
    }

    /// Never waits for a turn; see the [module docs](self). It cannot fail.
    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        while state.tasks.try_join_next().is_some() {}
        match msg {
            AgentMsg::Task { task, reply, load } => {
                state.queue.push_back(Pending {
                    task,
                    reply,
                    _load: load,
                });
                self.start_next(&myself, state);
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
                    let pending = Pending {
                        task,
                        reply: None,
                        _load: self.0.handle.load_guard(),
                    };
                    self.start_turn(&myself, state, pending);
                }
            },
            AgentMsg::Status(reply) => {
                let _ = reply.send(self.status(state));
            }
            AgentMsg::Waiting { turn, waiting } => {
                if let Some(current) = state.current.as_mut().filter(|c| c.turn == turn) {
                    current.waiting = waiting;
                }
            }
            AgentMsg::TurnDone(done) => {
                self.finish_turn(state, *done);
                self.start_next(&myself, state);
            }
        }
        Ok(())
    }

    /// Aborts the turn in flight and withdraws this incarnation from the handles. Askers
    /// still waiting get `AgentDown` as their reply ports are dropped. It cannot fail.
    async fn post_stop(&self, myself: ActorRef<AgentMsg>, state: &mut AgentState) -> Result<(), ActorProcessingErr> {
        state.tasks.abort_all();
        self.0.handle.withdraw(&myself);
        Ok(())
    }
}
