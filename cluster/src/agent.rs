//! Agents across nodes: [`agent_kind`] lets a node host an agent by name, and
//! [`RemoteAgent`] asks it from any node, as an [`AgentRef`] asks a local one: exactly once,
//! within a deadline, with a typed error when the agent's node is lost.
//!
//! A hosted agent runs behind a *gateway*, a small remote-capable actor linked to the host
//! (so its supervisor on the origin sees the agent's exits, as for any remote child) and
//! joined to a process group named after the agent, which ractor_cluster announces to every
//! peer: that is how a name resolves across nodes. An ask is one ractor_cluster call to the
//! gateway, never resent: if the node is lost before the answer, the ask fails with
//! [`RemoteAskError::NodeDown`] and the task may or may not have run there (make it durable,
//! with a journal, to know).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::RactorClusterMessage;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use warden_agents::agent::{Agent, AgentError, AgentEvent, AgentObserver, AgentRef, AgentStatus, RemoteLink, Reply};
use warden_agents::codec;
use warden_agents::message::AgentMessage;
use warden_supervisor::ExitReason;

use crate::controller::SCOPE;
use crate::kind::{HostContext, RemoteKind};
use crate::node::Node;

/// The process group a hosted agent's gateway joins.
fn agent_group(name: &str) -> String {
    format!("agent:{name}")
}

/// What a gateway is asked. It crosses nodes.
#[derive(RactorClusterMessage, Debug)]
pub enum GatewayMsg {
    /// Ask the agent: the task (the codec's binary form), the deadline in milliseconds; the
    /// answer is the reply or the error, in the codec's wire form.
    #[rpc]
    Ask(Vec<u8>, u64, RpcReplyPort<Vec<u8>>),
    /// Submit a task to a durable agent (the codec's binary form); the answer carries its
    /// task id once it is in the journal.
    #[rpc]
    Submit(Vec<u8>, RpcReplyPort<Vec<u8>>),
    /// The outcome of a durable task (its id, a deadline in milliseconds), from the journal.
    #[rpc]
    Result(u64, u64, RpcReplyPort<Vec<u8>>),
    /// Tell the agent a task (the codec's binary form); nothing is answered.
    Tell(Vec<u8>),
    /// Interrupt the agent's turn in flight; the answer says whether there was one.
    #[rpc]
    Interrupt(RpcReplyPort<Vec<u8>>),
    /// A human's input for the agent.
    HumanInput(String),
    /// The agent's status.
    #[rpc]
    Status(RpcReplyPort<Vec<u8>>),
}

/// The answer to [`GatewayMsg::Ask`].
#[derive(Serialize, Deserialize)]
enum WireAnswer {
    /// The reply, in [`codec::reply_to_bytes`]'s form.
    Reply(Vec<u8>),
    /// A submitted task's id.
    Accepted(u64),
    /// Whether an interrupt found a turn in flight.
    Interrupted(bool),
    /// The agent's status.
    Status(AgentStatus),
    /// The ask failed there: the error's kind and text.
    Failed { kind: String, message: String },
}

impl WireAnswer {
    fn failed(e: &warden_agents::agent::AgentError) -> Self {
        Self::Failed {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }

    fn reply(result: Result<Reply, warden_agents::agent::AgentError>) -> Self {
        match result {
            Ok(answer) => match codec::reply_to_bytes(&answer) {
                Ok(bytes) => Self::Reply(bytes),
                Err(e) => Self::Failed {
                    kind: "codec".into(),
                    message: e.to_string(),
                },
            },
            Err(e) => Self::failed(&e),
        }
    }

    fn bad_task(e: &codec::CodecError) -> Self {
        Self::Failed {
            kind: "bad_task".into(),
            message: e.to_string(),
        }
    }
}

/// Answers `reply` with `answer` in the wire form.
fn send_answer(reply: RpcReplyPort<Vec<u8>>, answer: &WireAnswer) {
    if let Ok(bytes) = codec::to_wire(answer) {
        // The asker may have given up.
        let _ = reply.send(bytes);
    }
}

/// A kind that hosts an agent: `make` builds it from the origin's arguments. Register it
/// under a name ([`NodeBuilder::kind`](crate::NodeBuilder::kind)) and place it with a
/// [`RemoteChild`](crate::RemoteChild); reach it with [`RemoteAgent`] by the agent's name.
pub fn agent_kind<Args, F>(make: F) -> impl RemoteKind
where
    Args: DeserializeOwned + Send + 'static,
    F: Fn(&HostContext, Args) -> Agent + Send + Sync + 'static,
{
    let make = Arc::new(make);
    move |ctx: HostContext, bytes: Vec<u8>| {
        let make = make.clone();
        async move {
            let args: Args = codec::from_wire(&bytes).map_err(|e| format!("bad arguments: {e}"))?;
            let agent = make(&ctx, args);
            ctx.spawn(Gateway, agent).await.map(ActorCell::from)
        }
    }
}

/// The gateway in front of a hosted agent.
struct Gateway;

struct GatewayState {
    agent: AgentRef,
}

impl Actor for Gateway {
    type Msg = GatewayMsg;
    type State = GatewayState;
    type Arguments = Agent;

    async fn pre_start(&self, myself: ActorRef<GatewayMsg>, agent: Agent) -> Result<GatewayState, ActorProcessingErr> {
        let (handle, _join) = agent.spawn().await?;
        // The agent's end is the gateway's (and so its supervisor's, on the origin).
        if let Some(cell) = handle.actor() {
            cell.link(myself.get_cell());
        }
        ractor::pg::join_scoped(SCOPE.to_string(), agent_group(handle.name()), vec![myself.get_cell()]);
        Ok(GatewayState { agent: handle })
    }

    async fn handle(
        &self,
        _: ActorRef<GatewayMsg>,
        message: GatewayMsg,
        state: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        let agent = state.agent.clone();
        // Answered in a task of its own: the agent queues its work, the gateway does not.
        tokio::spawn(async move {
            match message {
                GatewayMsg::Ask(task, deadline_ms, reply) => {
                    let answer = match codec::from_bytes(&task) {
                        Err(e) => WireAnswer::bad_task(&e),
                        Ok(task) => WireAnswer::reply(agent.ask(task, Duration::from_millis(deadline_ms)).await),
                    };
                    send_answer(reply, &answer);
                }
                GatewayMsg::Submit(task, reply) => {
                    let answer = match codec::from_bytes(&task) {
                        Err(e) => WireAnswer::bad_task(&e),
                        Ok(task) => match agent.submit(task).await {
                            Ok(id) => WireAnswer::Accepted(id.0),
                            Err(e) => WireAnswer::failed(&e),
                        },
                    };
                    send_answer(reply, &answer);
                }
                GatewayMsg::Result(id, deadline_ms, reply) => {
                    let result = agent
                        .result(warden_durable::TaskId(id), Duration::from_millis(deadline_ms))
                        .await;
                    send_answer(reply, &WireAnswer::reply(result));
                }
                GatewayMsg::Tell(task) => {
                    // A tell has no one to answer: what fails here is logged.
                    let told = codec::from_bytes(&task)
                        .map_err(|e| e.to_string())
                        .and_then(|task| agent.tell(task).map_err(|e| e.to_string()));
                    if let Err(error) = told {
                        tracing::warn!(agent = %agent.name(), %error, "a remote tell was not delivered");
                    }
                }
                GatewayMsg::Interrupt(reply) => {
                    let answer = match agent.interrupt().await {
                        Ok(interrupted) => WireAnswer::Interrupted(interrupted),
                        Err(e) => WireAnswer::failed(&e),
                    };
                    send_answer(reply, &answer);
                }
                GatewayMsg::HumanInput(text) => {
                    if let Err(error) = agent.human_input(text) {
                        tracing::warn!(agent = %agent.name(), %error, "a remote human input was not delivered");
                    }
                }
                GatewayMsg::Status(reply) => {
                    let answer = match agent.status().await {
                        Ok(status) => WireAnswer::Status(status),
                        Err(e) => WireAnswer::failed(&e),
                    };
                    send_answer(reply, &answer);
                }
            }
        });
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<GatewayMsg>,
        event: SupervisionEvent,
        _: &mut GatewayState,
    ) -> Result<(), ActorProcessingErr> {
        match ExitReason::from_supervision_event(event) {
            Ok((_, ExitReason::Failed(failure))) => Err(failure.to_string().into()),
            Ok((_, reason)) => {
                let text = match reason {
                    ExitReason::Normal => None,
                    ExitReason::Shutdown => Some("shutdown".to_string()),
                    ExitReason::Killed => Some("killed".to_string()),
                    ExitReason::Stopped(r) => Some(r.to_string()),
                    other => Some(other.to_string()),
                };
                myself.stop(text);
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    async fn post_stop(&self, _: ActorRef<GatewayMsg>, state: &mut GatewayState) -> Result<(), ActorProcessingErr> {
        if let Some(cell) = state.agent.actor() {
            let _ = cell.stop_and_wait(Some("shutdown".to_string()), None).await;
        }
        Ok(())
    }
}

/// Why an ask of a [`RemoteAgent`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteAskError {
    /// No node hosts an agent of that name now.
    #[error("no node hosts agent {0}")]
    NotFound(String),
    /// The agent's node was lost before it answered: the task may or may not have run.
    #[error("the node of agent {agent} was lost before it answered")]
    NodeDown {
        /// The agent.
        agent: String,
    },
    /// No answer within the deadline.
    #[error("agent {agent} did not answer within {deadline:?}")]
    Timeout {
        /// The agent.
        agent: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The ask failed there: its error's kind (`AgentError::kind`) and text.
    #[error("agent {agent}: {message}")]
    Failed {
        /// The agent.
        agent: String,
        /// The error's kind.
        kind: String,
        /// The error's text.
        message: String,
    },
    /// The task or the answer could not be encoded or decoded.
    #[error("agent {agent}: {message}")]
    Codec {
        /// The agent.
        agent: String,
        /// What went wrong.
        message: String,
    },
}

/// An agent hosted by some node of the cluster, by name.
#[derive(Clone)]
pub struct RemoteAgent {
    name: String,
}

impl fmt::Debug for RemoteAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAgent").field("name", &self.name).finish()
    }
}

impl RemoteAgent {
    /// The agent called `name`, wherever it is hosted (resolved at every ask). `node` is this
    /// process's node: the name resolves through its sessions.
    pub fn new(_node: &Node, name: impl Into<String>) -> Self {
        Self::from_name(name.into())
    }

    pub(crate) fn from_name(name: String) -> Self {
        Self { name }
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a node hosts it now.
    pub fn is_reachable(&self) -> bool {
        self.gateway().is_some()
    }

    fn gateway(&self) -> Option<ActorRef<GatewayMsg>> {
        ractor::pg::get_scoped_members(&SCOPE.to_string(), &agent_group(&self.name))
            .into_iter()
            .next()
            .map(ActorRef::from)
    }

    /// Asks it `task` and waits for the reply until `deadline`, as [`AgentRef::ask`]: sent
    /// once, never resent.
    ///
    /// # Errors
    ///
    /// [`RemoteAskError::NotFound`], [`NodeDown`](RemoteAskError::NodeDown) (the node was
    /// lost before the answer), [`Timeout`](RemoteAskError::Timeout),
    /// [`Failed`](RemoteAskError::Failed) (the agent's own error, by kind and text),
    /// [`Codec`](RemoteAskError::Codec).
    pub async fn ask(&self, task: AgentMessage, deadline: Duration) -> Result<Reply, RemoteAskError> {
        let task = codec::to_bytes(&task).map_err(|e| self.codec_error(&e))?;
        let millis = millis(deadline);
        let answer = self.call(|port| GatewayMsg::Ask(task, millis, port), deadline).await?;
        self.reply(answer)
    }

    /// Gives a durable agent `task` (as `AgentRef::submit`): once this returns, the task is in
    /// the agent's journal, and a restart of the agent anywhere (on another node, after its
    /// node was lost) finishes it. Read its outcome with [`result`](Self::result).
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask); [`Failed`](RemoteAskError::Failed) with kind `not_durable` for
    /// an agent without a journal.
    pub async fn submit(
        &self,
        task: AgentMessage,
        deadline: Duration,
    ) -> Result<warden_durable::TaskId, RemoteAskError> {
        let task = codec::to_bytes(&task).map_err(|e| self.codec_error(&e))?;
        match self.call(|port| GatewayMsg::Submit(task, port), deadline).await? {
            WireAnswer::Accepted(id) => Ok(warden_durable::TaskId(id)),
            other => match self.reply(other) {
                Err(e) => Err(e),
                Ok(_) => Err(RemoteAskError::Codec {
                    agent: self.name.clone(),
                    message: "a reply where a task id was expected".into(),
                }),
            },
        }
    }

    /// Waits, at most `deadline`, for the outcome of a task [`submit`](Self::submit)ted to this
    /// durable agent, read from its journal by whichever node hosts it now.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask); [`Failed`](RemoteAskError::Failed) with the task's own error.
    pub async fn result(&self, task: warden_durable::TaskId, deadline: Duration) -> Result<Reply, RemoteAskError> {
        let millis = millis(deadline);
        let answer = self
            .call(|port| GatewayMsg::Result(task.0, millis, port), deadline)
            .await?;
        self.reply(answer)
    }

    /// Tells it `task` (as [`AgentRef::tell`]): sent once, not waited for; what fails on its
    /// node (its queue full, say) is logged there.
    ///
    /// # Errors
    ///
    /// [`RemoteAskError::NotFound`] when no node hosts it now, or its session is gone;
    /// [`Codec`](RemoteAskError::Codec).
    pub fn tell(&self, task: AgentMessage) -> Result<(), RemoteAskError> {
        let task = codec::to_bytes(&task).map_err(|e| self.codec_error(&e))?;
        self.cast(GatewayMsg::Tell(task))
    }

    /// Interrupts its turn in flight (as [`AgentRef::interrupt`]); answers whether there was
    /// one.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask).
    pub async fn interrupt(&self, deadline: Duration) -> Result<bool, RemoteAskError> {
        match self.call(GatewayMsg::Interrupt, deadline).await? {
            WireAnswer::Interrupted(interrupted) => Ok(interrupted),
            other => Err(self.unexpected(other, "an interrupt's answer")),
        }
    }

    /// Sends it a human's input (as [`AgentRef::human_input`]).
    ///
    /// # Errors
    ///
    /// As [`tell`](Self::tell).
    pub fn human_input(&self, text: impl Into<String>) -> Result<(), RemoteAskError> {
        self.cast(GatewayMsg::HumanInput(text.into()))
    }

    /// Its status (as [`AgentRef::status`]).
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask).
    pub async fn status(&self, deadline: Duration) -> Result<AgentStatus, RemoteAskError> {
        match self.call(GatewayMsg::Status, deadline).await? {
            WireAnswer::Status(status) => Ok(status),
            other => Err(self.unexpected(other, "a status")),
        }
    }

    /// An [`AgentRef`] on this agent: the same handle as for a local agent ([`AgentRef::remote`]),
    /// to hand to code that takes one, or to register in a
    /// [`Registry`](warden_agents::Registry) so that local agents reach it by name. Its
    /// errors are [`AgentError`]s: [`AgentError::NodeDown`] when the node was lost before it
    /// answered, [`AgentError::NotDelivered`] when no node hosts the agent,
    /// [`AgentError::Remote`] for the agent's own errors as they crossed. Its `submit`,
    /// `interrupt` and `status` wait at most [`CONTROL_DEADLINE`] for the agent's node.
    pub fn agent_ref(&self) -> AgentRef {
        AgentRef::remote(self.name.as_str(), Link(self.clone()))
    }

    /// One cast to the agent's gateway.
    fn cast(&self, message: GatewayMsg) -> Result<(), RemoteAskError> {
        let gateway = self
            .gateway()
            .ok_or_else(|| RemoteAskError::NotFound(self.name.clone()))?;
        gateway
            .cast(message)
            .map_err(|_| RemoteAskError::NotFound(self.name.clone()))
    }

    /// The error for an answer of the wrong sort (the agent's own failure, if it is one).
    fn unexpected(&self, answer: WireAnswer, expected: &str) -> RemoteAskError {
        match answer {
            WireAnswer::Failed { kind, message } => RemoteAskError::Failed {
                agent: self.name.clone(),
                kind,
                message,
            },
            _ => RemoteAskError::Codec {
                agent: self.name.clone(),
                message: format!("not {expected}"),
            },
        }
    }

    /// One call to the agent's gateway, never resent.
    async fn call(
        &self,
        message: impl FnOnce(RpcReplyPort<Vec<u8>>) -> GatewayMsg,
        deadline: Duration,
    ) -> Result<WireAnswer, RemoteAskError> {
        let agent = self.name.clone();
        let gateway = self.gateway().ok_or_else(|| RemoteAskError::NotFound(agent.clone()))?;
        let answer = match gateway.call(message, Some(deadline)).await {
            Ok(ractor::rpc::CallResult::Success(bytes)) => bytes,
            Ok(ractor::rpc::CallResult::Timeout) => return Err(RemoteAskError::Timeout { agent, deadline }),
            // The reply port went with the node's session, or the gateway is gone.
            Ok(ractor::rpc::CallResult::SenderError) | Err(_) => return Err(RemoteAskError::NodeDown { agent }),
        };
        codec::from_wire::<WireAnswer>(&answer).map_err(|e| self.codec_error(&e))
    }

    fn reply(&self, answer: WireAnswer) -> Result<Reply, RemoteAskError> {
        let agent = self.name.clone();
        match answer {
            WireAnswer::Reply(bytes) => codec::reply_from_bytes(&bytes).map_err(|e| self.codec_error(&e)),
            WireAnswer::Failed { kind, message } => Err(RemoteAskError::Failed { agent, kind, message }),
            other @ (WireAnswer::Accepted(_) | WireAnswer::Interrupted(_) | WireAnswer::Status(_)) => {
                Err(self.unexpected(other, "a reply"))
            }
        }
    }

    fn codec_error(&self, e: &codec::CodecError) -> RemoteAskError {
        RemoteAskError::Codec {
            agent: self.name.clone(),
            message: e.to_string(),
        }
    }
}

/// How long a remote [`AgentRef`]'s `submit`, `interrupt` and `status` wait for the agent's
/// node.
pub const CONTROL_DEADLINE: Duration = Duration::from_secs(10);

/// A [`RemoteAgent`] as the link of an [`AgentRef`].
struct Link(RemoteAgent);

impl From<RemoteAskError> for AgentError {
    fn from(e: RemoteAskError) -> Self {
        match e {
            RemoteAskError::NotFound(agent) => AgentError::NotDelivered(agent.into()),
            RemoteAskError::NodeDown { agent } => AgentError::NodeDown(agent.into()),
            RemoteAskError::Timeout { deadline, .. } => AgentError::Timeout(deadline),
            RemoteAskError::Failed { agent, kind, message } => AgentError::Remote {
                agent: agent.into(),
                kind,
                message,
            },
            RemoteAskError::Codec { agent, message } => AgentError::Remote {
                agent: agent.into(),
                kind: "codec".into(),
                message,
            },
        }
    }
}

impl RemoteLink for Link {
    fn is_reachable(&self) -> bool {
        self.0.is_reachable()
    }

    fn ask(&self, task: AgentMessage, deadline: Duration) -> BoxFuture<'static, Result<Reply, AgentError>> {
        let agent = self.0.clone();
        Box::pin(async move { Ok(agent.ask(task, deadline).await?) })
    }

    fn tell(&self, task: AgentMessage) -> Result<(), AgentError> {
        Ok(self.0.tell(task)?)
    }

    fn submit(&self, task: AgentMessage) -> BoxFuture<'static, Result<warden_durable::TaskId, AgentError>> {
        let agent = self.0.clone();
        Box::pin(async move { Ok(agent.submit(task, CONTROL_DEADLINE).await?) })
    }

    fn result(&self, id: warden_durable::TaskId, deadline: Duration) -> BoxFuture<'static, Result<Reply, AgentError>> {
        let agent = self.0.clone();
        Box::pin(async move { Ok(agent.result(id, deadline).await?) })
    }

    fn interrupt(&self) -> BoxFuture<'static, Result<bool, AgentError>> {
        let agent = self.0.clone();
        Box::pin(async move { Ok(agent.interrupt(CONTROL_DEADLINE).await?) })
    }

    fn human_input(&self, text: String) -> Result<(), AgentError> {
        Ok(self.0.human_input(text)?)
    }

    fn status(&self) -> BoxFuture<'static, Result<AgentStatus, AgentError>> {
        let agent = self.0.clone();
        Box::pin(async move { Ok(agent.status(CONTROL_DEADLINE).await?) })
    }
}

fn millis(deadline: Duration) -> u64 {
    u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX)
}

/// The arguments of [`react_agent_kind`]: a ReAct agent on an OpenAI-compatible server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReactAgentArgs {
    /// The agent's name (what [`RemoteAgent::new`] asks for).
    pub name: String,
    /// The server's base URL (`http://127.0.0.1:8080/v1`).
    pub base_url: String,
    /// The model's name there.
    pub model: String,
    /// Its system prompt.
    pub system: Option<String>,
    /// Its journal, to make it durable: a file (opened shared, so that the nodes of one
    /// machine can use it in turn) or a `postgres://` URL. `None`: not durable.
    pub journal: Option<String>,
}

/// A kind that hosts a ReAct agent on an OpenAI-compatible server, from [`ReactAgentArgs`].
/// `warden node` registers it as `react_agent`; a library node offers it only if told to
/// (a peer that may place it makes the node call the servers it names).
pub fn react_agent_kind() -> impl RemoteKind {
    react_agent_kind_inner(None)
}

/// [`react_agent_kind`], with every agent it hosts reporting its events to `observer`, called
/// inside the agent as each happens ([`Agent::inline_observer`]): so that the hosting node can
/// show its agents' turns, questions and failures, as `warden node --studio` does with a
/// Warden Studio's `agent_observer`. The observer must return at once.
pub fn react_agent_kind_observed(observer: impl Fn(&AgentEvent) + Send + Sync + 'static) -> impl RemoteKind {
    react_agent_kind_inner(Some(Arc::new(observer)))
}

fn react_agent_kind_inner(observer: Option<AgentObserver>) -> impl RemoteKind {
    move |ctx: HostContext, bytes: Vec<u8>| {
        let observer = observer.clone();
        async move {
            let args: ReactAgentArgs = codec::from_wire(&bytes).map_err(|e| format!("bad arguments: {e}"))?;
            let model =
                warden_agents::model::Model::new(warden_agents::model::OpenAiChat::new(args.base_url, args.model));
            let mut react = warden_agents::react::ReAct::builder(model);
            if let Some(system) = args.system {
                react = react.system(system);
            }
            let mut agent = Agent::new(args.name, react.build());
            if let Some(observer) = observer {
                agent = agent.inline_observer(move |event| observer(event));
            }
            if let Some(location) = args.journal {
                let journal = warden_durable::Journal::open_location(&location)
                    .await
                    .map_err(|e| format!("journal {location}: {e}"))?;
                agent = agent.journal(journal);
            }
            ctx.spawn(Gateway, agent).await.map(ActorCell::from)
        }
    }
}
