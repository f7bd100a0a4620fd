//! [`Studio`]: the hub that turns what a running system reports into a [`View`] and a stream
//! of [`Frame`]s for its viewers.
//!
//! Everything reaches the studio through its observers, which never wait: each puts what it
//! saw on one bounded queue (`try_send`; when it is full the input is dropped and counted, so a
//! burst never holds up a supervisor, an agent or a call). The hub, on a thread of its own,
//! drains that queue in order every [`HUB_PERIOD`] (it never sleeps on the queue, so a push
//! wakes nobody), keeps the view, numbers each change and broadcasts it. A viewer starts from a
//! snapshot and follows the changes; one that falls further behind than the broadcast's buffer
//! gets a fresh snapshot instead of what it missed, so a slow viewer costs a bounded buffer,
//! never a growing one.
//!
//! The hub also watches the clock: a turn, model call or tool call that runs past
//! [`StudioBuilder::stuck_after`] is flagged ([`Delta::Stuck`]) until it ends. A turn that
//! waits for a human is not stuck: it waits on purpose.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use tokio::time::Instant;
use warden_agents::AgentRef;
use warden_agents::agent::{AgentEvent, AgentEventKind, HumanAnswer, HumanQuestion, TurnEnd};
use warden_chaos::ActionRecord;
use warden_supervisor::{
    ChildKind, Disposition, Escalation, EscalationHandler, NodeSnapshot, NodeState, Supervisor, SupervisorEvent,
};

use crate::error::AnswerError;
use crate::tally::{RESTARTS_PER_TICK, Taken, Tally};
use crate::view::{
    AgentView, CallView, Delta, EscalationView, Frame, MemberView, NodeView, StuckView, TimelineEntry, View, parent_of,
};

/// How long something runs before it is flagged stuck, by default.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(30);
/// How many inputs wait for the hub before more are dropped, by default.
pub const DEFAULT_QUEUE: usize = 65_536;
/// How many changes a viewer may be behind before it gets a snapshot instead, by default.
pub const DEFAULT_VIEWER_BUFFER: usize = 4096;
/// How many nodes the tree keeps before it evicts stopped ones, by default.
pub const DEFAULT_MAX_TREE_NODES: usize = 10_000;
/// How often the hub takes in what the observers queued: changes reach viewers within it.
pub const HUB_PERIOD: Duration = Duration::from_millis(50);
/// How many escalations may wait for an answer at once; past it they go on up the tree.
pub const MAX_WAITING_ESCALATIONS: usize = 1024;

/// Builds a [`Studio`].
#[derive(Clone, Debug)]
pub struct StudioBuilder {
    stuck_after: Duration,
    queue: usize,
    viewer_buffer: usize,
    max_tree_nodes: usize,
    token: Option<String>,
}

impl Default for StudioBuilder {
    fn default() -> Self {
        Self {
            stuck_after: DEFAULT_STUCK_AFTER,
            queue: DEFAULT_QUEUE,
            viewer_buffer: DEFAULT_VIEWER_BUFFER,
            max_tree_nodes: DEFAULT_MAX_TREE_NODES,
            token: None,
        }
    }
}

impl StudioBuilder {
    /// Flags a turn, model call or tool call that runs longer than `after` (default
    /// [`DEFAULT_STUCK_AFTER`]).
    pub fn stuck_after(mut self, after: Duration) -> Self {
        self.stuck_after = after.max(Duration::from_millis(1));
        self
    }

    /// How many inputs may wait for the hub before more are dropped and counted (default
    /// [`DEFAULT_QUEUE`]; at least 1).
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// How many changes a viewer may fall behind before it is sent a snapshot instead (default
    /// [`DEFAULT_VIEWER_BUFFER`]; at least 1). The buffer is shared by all viewers.
    pub fn viewer_buffer(mut self, frames: usize) -> Self {
        self.viewer_buffer = frames.max(1);
        self
    }

    /// How many nodes the tree view keeps (default [`DEFAULT_MAX_TREE_NODES`]): past it, the
    /// node that stopped longest ago leaves the view.
    pub fn max_tree_nodes(mut self, nodes: usize) -> Self {
        self.max_tree_nodes = nodes.max(1);
        self
    }

    /// The token viewers must present (default: 128 random bits, in hex).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Starts the studio's hub, on a thread of its own (`warden-studio`). The hub ends when
    /// the studio and every observer it handed out are dropped.
    pub fn start(self) -> Studio {
        let queue = Arc::new(Queue {
            inputs: Mutex::new(Vec::new()),
            tally: Mutex::new(Tally::default()),
            capacity: self.queue,
        });
        let (frames, _) = broadcast::channel(self.viewer_buffer);
        let token = self.token.clone().unwrap_or_else(random_token);
        let inner = Arc::new(Inner {
            queue: queue.clone(),
            dropped: AtomicU64::new(0),
            frames,
            view: Mutex::new(View::default()),
            waiting: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
            token,
            closed: tokio::sync::watch::channel(false).0,
            remote_escalations: Mutex::new(HashMap::new()),
            followed: Mutex::new(HashMap::new()),
        });
        let hub = Hub {
            inner: Arc::downgrade(&inner),
            config: self,
            seq: 0,
            view: View::default(),
            mirrors: HashMap::new(),
            next_remote_id: 0,
            restarts: Vec::new(),
            restarts_by_child: Vec::new(),
            restarts_total: 0,
            staged: Vec::new(),
            dirty_nodes: std::collections::HashSet::new(),
            dirty_agents: std::collections::HashSet::new(),
            turns: HashMap::new(),
            calls: HashMap::new(),
            reported_dropped: 0,
        };
        // The hub has a thread of its own: keeping the view costs the application's runtime
        // nothing but the observers' pushes.
        let spawned = std::thread::Builder::new().name("warden-studio".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                Ok(runtime) => runtime.block_on(hub.run(queue)),
                Err(error) => tracing::error!(target: "warden::studio", %error, "the studio's hub cannot start"),
            }
        });
        if let Err(error) = spawned {
            tracing::error!(target: "warden::studio", %error, "the studio's hub thread cannot start");
        }
        Studio { inner }
    }
}

/// The studio: observers to hand to supervisors, agents, the chaos monkey and `tracing`, and
/// the view they feed. Cheap to clone.
///
/// ```
/// use warden_studio::Studio;
/// use warden_supervisor::{Strategy, Supervisor};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let studio = Studio::builder().start();
/// let root = Supervisor::builder("root")
///     .strategy(Strategy::OneForOne)
///     .inline_observer(studio.supervisor_observer())
///     .escalation_handler(studio.escalation_handler())
///     .spawn()
///     .await?;
/// studio.attach(&root).await;
/// let server = studio.serve("127.0.0.1:0").await?;
/// println!("Studio: {}", server.url()); // the URL carries the token
/// # server.shutdown().await; root.stop().await; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Studio {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Studio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Studio")
            .field("dropped", &self.inner.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What observers queue for the hub: a vector the hub swaps for an empty one each tick.
/// A push is a lock nobody else holds but for that swap, and wakes nobody.
struct Queue {
    inputs: Mutex<Vec<Input>>,
    /// The children's states, coalesced from the supervisors' events.
    tally: Mutex<Tally>,
    capacity: usize,
}

pub(crate) struct Inner {
    queue: Arc<Queue>,
    dropped: AtomicU64,
    frames: broadcast::Sender<Arc<Update>>,
    view: Mutex<View>,
    /// Escalations that wait for an answer, with their responders.
    waiting: Mutex<HashMap<u64, Escalation>>,
    /// Handles of agents, for their queue length.
    agents: Mutex<HashMap<String, AgentRef>>,
    pub(crate) token: String,
    /// Set once viewers' streams are to end.
    pub(crate) closed: tokio::sync::watch::Sender<bool>,
    /// Followed nodes' escalations, by their ids here.
    pub(crate) remote_escalations: Mutex<crate::federation::RemoteEscalations>,
    /// Followed nodes' studios: base URL and token, by node.
    pub(crate) followed: Mutex<HashMap<String, (String, String)>>,
}

impl Inner {
    pub(crate) fn send(&self, input: Input) {
        let mut inputs = lock(&self.queue.inputs);
        if inputs.len() < self.queue.capacity {
            inputs.push(input);
        } else {
            drop(inputs);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One numbered change, as broadcast: the change and its JSON frame, serialised once.
#[derive(Debug)]
pub(crate) struct Update {
    seq: u64,
    delta: Delta,
    json: Arc<str>,
}

/// What observers hand the hub.
pub(crate) enum Input {
    Supervisor(SupervisorEvent),
    Agent(AgentEvent),
    Tree(Box<NodeSnapshot>),
    CallStarted(Box<CallView>),
    CallEnded(Box<CallView>),
    Escalation(Box<EscalationView>),
    EscalationClosed {
        id: u64,
        answer: Option<String>,
    },
    Chaos(Box<ActionRecord>),
    /// A frame of a followed node's studio.
    Remote {
        node: String,
        frame: Box<Frame>,
    },
    /// A followed node's state.
    Member(Box<MemberView>),
}

impl Studio {
    /// A builder, with the defaults.
    pub fn builder() -> StudioBuilder {
        StudioBuilder::default()
    }

    /// The token a viewer must present.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// Inputs dropped so far because the hub's queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// The view as it is now.
    pub fn view(&self) -> View {
        lock(&self.inner.view).clone()
    }

    /// Follows the view: a snapshot first, then every change (see [`Viewer`]).
    pub fn subscribe(&self) -> Viewer {
        // Subscribe first, then take the snapshot: every change is in one or the other.
        let rx = self.inner.frames.subscribe();
        Viewer {
            inner: self.inner.clone(),
            rx,
            pending_snapshot: true,
            seen: 0,
        }
    }

    /// An observer for [`SupervisorBuilder::observer`](warden_supervisor::SupervisorBuilder::observer):
    /// the tree's starts, exits, restarts (with the intensity used), backoffs, give-ups and
    /// escalations.
    ///
    /// A child's starts, exits and restarts are coalesced right here, in place (see the
    /// module `tally`): under a crash storm, an event costs the supervisor a hash of the
    /// child's path and a few stores, and the studio's work is one entry per child that
    /// changed each tick.
    pub fn supervisor_observer(&self) -> impl Fn(&SupervisorEvent) + Send + Sync + 'static {
        let inner = self.inner.clone();
        move |event| {
            if !lock(&inner.queue.tally).record(event) {
                inner.send(Input::Supervisor(event.clone()));
            }
        }
    }

    /// An observer for [`Agent::observer`](warden_agents::Agent::observer): turns, model and
    /// tool iterations, questions to humans, failures.
    pub fn agent_observer(&self) -> impl Fn(&AgentEvent) + Send + Sync + 'static {
        let inner = self.inner.clone();
        move |event| inner.send(Input::Agent(event.clone()))
    }

    /// A hook for [`ChaosMonkey::on_action`](warden_chaos::ChaosMonkey::on_action): the monkey's
    /// actions, marked on the timeline.
    pub fn chaos_observer(&self) -> impl Fn(&ActionRecord) + Send + Sync + 'static {
        let inner = self.inner.clone();
        move |record| inner.send(Input::Chaos(Box::new(record.clone())))
    }

    /// An escalation handler that keeps every escalation expecting an answer (a
    /// [`HumanQuestion`], or any [`Escalator::request`](warden_supervisor::Escalator::request))
    /// until it is answered from a viewer ([`answer`](Self::answer)), and passes every other
    /// one on to the parent. Past [`MAX_WAITING_ESCALATIONS`] waiting, it passes them on too.
    pub fn escalation_handler(&self) -> impl EscalationHandler {
        let inner = self.inner.clone();
        move |escalation: Escalation| -> Disposition {
            if !escalation.expects_answer() {
                return Disposition::Escalate(escalation);
            }
            let mut waiting = lock(&inner.waiting);
            if waiting.len() >= MAX_WAITING_ESCALATIONS {
                return Disposition::Escalate(escalation);
            }
            let (agent, text) = match escalation.concern::<HumanQuestion>() {
                Some(q) => (Some(q.agent.to_string()), q.question.clone()),
                None => (None, escalation.to_string()),
            };
            let view = EscalationView {
                id: escalation.id(),
                origin: escalation.origin().to_string(),
                agent,
                text,
                raised_ms: unix_ms(escalation.raised_at()),
            };
            waiting.insert(escalation.id(), escalation);
            drop(waiting);
            inner.send(Input::Escalation(Box::new(view)));
            Disposition::Handled
        }
    }

    /// Tells the studio about an agent's handle, so its view shows its queue against its bound.
    pub fn watch_agent(&self, agent: &AgentRef) {
        lock(&self.inner.agents).insert(agent.name().to_owned(), agent.clone());
    }

    /// Seeds the tree view from a snapshot of `root` (the events that follow keep it current):
    /// for a studio attached to a tree that already runs, and for the root itself, which no
    /// event names. A root that is gone is left out.
    pub async fn attach(&self, root: &Supervisor) {
        if let Ok(snapshot) = root.snapshot().await {
            self.inner.send(Input::Tree(Box::new(snapshot.root)));
        }
    }

    /// Answers the waiting escalation `id` with `text`: a [`HumanQuestion`] gets a
    /// [`HumanAnswer`], any other request the `String`.
    ///
    /// # Errors
    ///
    /// [`AnswerError::Unknown`] if no escalation `id` waits here (answered already, or never
    /// here), [`AnswerError::AskerGone`] if its asker stopped waiting, and for an escalation
    /// of a [followed](Self::follow) node, [`AnswerError::Remote`] if that node could not be
    /// told.
    pub async fn answer(&self, id: u64, text: &str) -> Result<(), AnswerError> {
        let remote = lock(&self.inner.remote_escalations).get(&id).cloned();
        if let Some((node, remote_id)) = remote {
            return self.answer_remote(&node, remote_id, id, text).await;
        }
        let mut escalation = lock(&self.inner.waiting).remove(&id).ok_or(AnswerError::Unknown(id))?;
        let result = if escalation.concern::<HumanQuestion>().is_some() {
            escalation.answer(HumanAnswer::new(text))
        } else {
            escalation.answer(text.to_owned())
        };
        let answered = result.is_ok().then(|| text.to_owned());
        self.inner.send(Input::EscalationClosed { id, answer: answered });
        result.map_err(|_| AnswerError::AskerGone(id))
    }
}

/// A viewer of a [`Studio`]: a snapshot first, then each change; a viewer that fell behind
/// the broadcast's buffer is sent a new snapshot instead of what it missed.
pub struct Viewer {
    inner: Arc<Inner>,
    rx: broadcast::Receiver<Arc<Update>>,
    pending_snapshot: bool,
    seen: u64,
}

impl fmt::Debug for Viewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Viewer")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

enum Next {
    Snapshot(Box<View>),
    Update(Arc<Update>),
}

impl Viewer {
    async fn next_inner(&mut self) -> Option<Next> {
        loop {
            if self.pending_snapshot {
                self.pending_snapshot = false;
                let view = lock(&self.inner.view).clone();
                self.seen = view.seq;
                return Some(Next::Snapshot(Box::new(view)));
            }
            match self.rx.recv().await {
                Ok(update) if update.seq <= self.seen => continue,
                Ok(update) => {
                    self.seen = update.seq;
                    return Some(Next::Update(update));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.pending_snapshot = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next frame; `None` once the studio is gone.
    pub async fn next(&mut self) -> Option<Frame> {
        Some(match self.next_inner().await? {
            Next::Snapshot(view) => Frame::Snapshot { view },
            Next::Update(update) => Frame::Delta {
                seq: update.seq,
                delta: update.delta.clone(),
            },
        })
    }

    /// The next frame as JSON (a change is serialised once, for every viewer).
    pub async fn next_json(&mut self) -> Option<Arc<str>> {
        Some(match self.next_inner().await? {
            Next::Snapshot(view) => {
                let frame = Frame::Snapshot { view };
                Arc::from(serde_json::to_string(&frame).unwrap_or_default())
            }
            Next::Update(update) => update.json.clone(),
        })
    }
}

/// A turn in flight.
struct Turn {
    started: Instant,
    started_ms: u64,
    waiting: bool,
    flagged: bool,
}

/// A call in flight.
struct Call {
    started: Instant,
    view: CallView,
    flagged: bool,
}

/// The task that keeps the view.
pub(crate) struct Hub {
    inner: std::sync::Weak<Inner>,
    config: StudioBuilder,
    seq: u64,
    /// The hub's own copy of the view, current with what is staged.
    pub(crate) view: View,
    /// Followed nodes, by name.
    pub(crate) mirrors: HashMap<String, crate::federation::Mirror>,
    /// The last id given to a followed node's call or escalation.
    pub(crate) next_remote_id: u64,
    /// This tick's restarts, for the timeline: the first few (the child, its count, its
    /// supervisor's intensity), how many restarted children, and how many restarts in all.
    restarts: Vec<(warden_supervisor::ChildPath, u32, warden_supervisor::IntensityUsed)>,
    restarts_by_child: Vec<(warden_supervisor::ChildPath, u32)>,
    restarts_total: usize,
    /// Changes of this tick, not yet sent, but for nodes and agents: ...
    staged: Vec<Delta>,
    /// ... which change in place in `view`, and are sent as they are at the end of the tick.
    dirty_nodes: std::collections::HashSet<String>,
    dirty_agents: std::collections::HashSet<String>,
    turns: HashMap<String, Turn>,
    calls: HashMap<u64, Call>,
    reported_dropped: u64,
}

impl Hub {
    /// Every [`HUB_PERIOD`], takes in what waits on the queue; at its own period, looks for
    /// what is stuck. It never waits on the queue itself: that way an observer's `try_send`
    /// is a push, never a wake-up of this thread.
    async fn run(mut self, queue: Arc<Queue>) {
        let stuck_period = (self.config.stuck_after / 4).clamp(HUB_PERIOD, Duration::from_millis(250));
        let mut last_stuck_check = Instant::now();
        let mut tick = tokio::time::interval(HUB_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut taken = Vec::new();
        loop {
            tick.tick().await;
            // Ends with the studio: then only this hub holds the queue.
            let Some(inner) = self.inner.upgrade() else { return };
            std::mem::swap(&mut *lock(&queue.inputs), &mut taken);
            for input in taken.drain(..) {
                self.take(&inner, input);
            }
            // After the queued inputs: a tree attached this tick is older than the states.
            let tallied = lock(&queue.tally).take(2 * self.config.max_tree_nodes);
            self.tally(tallied);
            if last_stuck_check.elapsed() >= stuck_period {
                last_stuck_check = Instant::now();
                self.check_stuck();
            }
            let dropped = inner.dropped.load(Ordering::Relaxed);
            if dropped != self.reported_dropped {
                self.reported_dropped = dropped;
                self.emit(Delta::Dropped { total: dropped });
            }
            self.flush(&inner);
        }
    }

    /// This tick's restarts on the timeline: an entry each, or past [`RESTARTS_PER_TICK`] one
    /// entry that counts them by child (the tree shows each child's count anyway), so that a
    /// storm costs a viewer one line per tick.
    fn restarts_to_timeline(&mut self) {
        let restarts = std::mem::take(&mut self.restarts);
        let mut by_child = std::mem::take(&mut self.restarts_by_child);
        let total = std::mem::take(&mut self.restarts_total);
        if total <= RESTARTS_PER_TICK {
            for (path, count, intensity) in restarts {
                let text = format!(
                    "restart #{count} ({} of {} in {:?})",
                    intensity.restarts, intensity.limit.max_restarts, intensity.limit.period
                );
                self.timeline("restart", path.as_str(), text);
            }
            return;
        }
        by_child.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let top: Vec<String> = by_child
            .iter()
            .take(3)
            .map(|(child, n)| format!("{child} ×{n}"))
            .collect();
        let more = if by_child.len() > 3 {
            format!(" and {} more children", by_child.len() - 3)
        } else {
            String::new()
        };
        let subject = format!("{} children", by_child.len());
        let text = format!("{total} restarts in {HUB_PERIOD:?}: {}{more}", top.join(", "));
        self.timeline("restart", &subject, text);
    }

    /// Stages a change: applied to the hub's own view now, sent to viewers at the end of the
    /// tick ([`flush`](Self::flush)).
    pub(crate) fn emit(&mut self, delta: Delta) {
        // The hub never reads its own timeline: only the shared view keeps one.
        if !matches!(delta, Delta::Timeline(_)) {
            self.view.apply(delta.clone());
        }
        self.staged.push(delta);
    }

    /// Sends the tick's changes: only the last change of each thing (a node, an agent, a call,
    /// an escalation, a stuck flag) and the last [`TIMELINE`](crate::view::TIMELINE) timeline
    /// entries, so that a storm of restarts costs viewers a few frames per tick, not one per
    /// event. Each change is numbered and serialised once, applied to the shared view, and
    /// broadcast.
    fn flush(&mut self, inner: &Inner) {
        self.restarts_to_timeline();
        if self.staged.is_empty() && self.dirty_nodes.is_empty() && self.dirty_agents.is_empty() {
            return;
        }
        let mut staged: Vec<Delta> = Vec::with_capacity(self.dirty_nodes.len() + self.dirty_agents.len());
        for path in std::mem::take(&mut self.dirty_nodes) {
            staged.push(match self.view.tree.get(&path) {
                Some(node) => Delta::Node(node.clone()),
                None => Delta::NodeRemoved { path },
            });
        }
        for name in std::mem::take(&mut self.dirty_agents) {
            if let Some(agent) = self.view.agents.get(&name) {
                staged.push(Delta::Agent(agent.clone()));
            }
        }
        staged.append(&mut self.staged);
        // Ring entries (timeline entries, ended calls) all count, but only the last of a ring's
        // bound can still be in it.
        let ring_total = |ring| staged.iter().filter(|d| ring_of(d) == Some(ring)).count();
        let mut ring_left = [ring_total(0), ring_total(1)];
        let mut last: HashMap<String, usize> = HashMap::new();
        for (index, delta) in staged.iter().enumerate() {
            if let Some(key) = delta_key(delta) {
                last.insert(key, index);
            }
        }
        let kept: Vec<Delta> = staged
            .into_iter()
            .enumerate()
            .filter(|(index, delta)| match delta_key(delta) {
                Some(key) => last.get(&key) == Some(index),
                None => match ring_of(delta) {
                    Some(ring) => {
                        ring_left[ring] -= 1;
                        ring_left[ring] < [crate::view::TIMELINE, crate::view::RECENT_CALLS][ring]
                    }
                    None => true,
                },
            })
            .map(|(_, delta)| delta)
            .collect();
        let mut updates = Vec::with_capacity(kept.len());
        {
            let mut view = lock(&inner.view);
            for delta in kept {
                self.seq += 1;
                let seq = self.seq;
                let frame = Frame::Delta { seq, delta };
                let json = Arc::from(serde_json::to_string(&frame).unwrap_or_default());
                let Frame::Delta { delta, .. } = frame else {
                    unreachable!()
                };
                view.apply(delta.clone());
                view.seq = seq;
                updates.push(Arc::new(Update { seq, delta, json }));
            }
        }
        for update in updates {
            // No viewer is not an error.
            let _ = inner.frames.send(update);
        }
    }

    fn take(&mut self, inner: &Inner, input: Input) {
        match input {
            Input::Supervisor(event) => self.supervisor(event),
            Input::Agent(event) => self.agent(inner, event),
            Input::Tree(root) => self.seed(&root),
            Input::CallStarted(call) => {
                let call = *call;
                self.calls.insert(
                    call.id,
                    Call {
                        started: Instant::now(),
                        view: call.clone(),
                        flagged: false,
                    },
                );
                self.emit(Delta::CallStarted(call));
            }
            Input::CallEnded(call) => self.call_ended(*call),
            Input::Escalation(view) => {
                self.timeline(
                    "escalation",
                    &view.origin,
                    format!("waits for an answer: {}", view.text),
                );
                self.emit(Delta::Escalation(*view));
            }
            Input::EscalationClosed { id, answer } => {
                let subject = self
                    .view
                    .escalations
                    .get(&id)
                    .map(|e| e.origin.clone())
                    .unwrap_or_default();
                if let Some(answer) = answer {
                    self.timeline("answered", &subject, format!("answered: {answer}"));
                }
                self.emit(Delta::EscalationClosed { id });
            }
            Input::Remote { node, frame } => self.remote(inner, &node, *frame),
            Input::Member(member) => self.member(*member),
            Input::Chaos(record) => {
                let text = format!("{} ({:?})", record.action, record.outcome);
                self.timeline("chaos", record.path.as_ref(), text);
            }
        }
    }

    pub(crate) fn timeline(&mut self, kind: &str, subject: &str, text: String) {
        let entry = TimelineEntry {
            at_ms: now_ms(),
            kind: kind.into(),
            subject: subject.into(),
            text,
        };
        self.emit(Delta::Timeline(entry));
    }

    /// Changes one node (made if new, with any parent it lacks), and keeps the tree bounded.
    fn node(&mut self, path: &str, kind: Option<ChildKind>, change: impl FnOnce(&mut NodeView)) {
        if !self.view.tree.contains_key(path) {
            if let Some(parent) = parent_of(path) {
                self.ensure_supervisor(parent);
            }
            self.view.tree.insert(path.to_owned(), NodeView::new(path));
        }
        if let Some(node) = self.view.tree.get_mut(path) {
            if let Some(kind) = kind {
                set_str(&mut node.kind, kind_name(kind));
            }
            change(node);
            node.changed_ms = now_ms();
        }
        self.touch_node(path);
        self.evict();
    }

    /// Marks a node changed (or removed), to send at the end of the tick.
    fn touch_node(&mut self, path: &str) {
        if !self.dirty_nodes.contains(path) {
            self.dirty_nodes.insert(path.to_owned());
        }
    }

    /// Makes the node at `path`, and those above it, as running supervisors, if missing.
    fn ensure_supervisor(&mut self, path: &str) {
        if self.view.tree.contains_key(path) {
            return;
        }
        if let Some(parent) = parent_of(path) {
            self.ensure_supervisor(parent);
        }
        let mut node = NodeView::new(path);
        node.kind = "supervisor".into();
        node.changed_ms = now_ms();
        self.view.tree.insert(path.to_owned(), node);
        self.touch_node(path);
    }

    fn evict(&mut self) {
        if self.view.tree.len() <= self.config.max_tree_nodes {
            return;
        }
        let view = &self.view;
        let victim = view
            .tree
            .values()
            .filter(|n| n.state != "running" && n.state != "restarting")
            .filter(|n| view.children_of(&n.path).next().is_none())
            .min_by_key(|n| n.changed_ms)
            .map(|n| n.path.clone());
        if let Some(path) = victim {
            self.view.tree.remove(&path);
            self.touch_node(&path);
        }
    }

    fn seed(&mut self, node: &NodeSnapshot) {
        let state = match node.state {
            NodeState::Running => "running",
            NodeState::NotRunning => "not_running",
            NodeState::Restarting => "restarting",
            NodeState::Gone => "stopped",
        };
        let last_exit = node.last_exit.as_ref().map(ToString::to_string);
        let restarts = node.restart_count;
        self.node(node.path.as_str(), Some(node.kind), |n| {
            set_str(&mut n.state, state);
            n.restarts = restarts;
            n.last_exit = last_exit;
        });
        for child in &node.children {
            self.seed(child);
        }
    }

    /// The supervisor events the tally does not keep: those for the timeline.
    fn supervisor(&mut self, event: SupervisorEvent) {
        match event {
            SupervisorEvent::ChildAbandoned { path, grace, .. } => {
                let text = format!("did not end within {grace:?} of its kill; left behind");
                self.timeline("abandoned", path.as_str(), text);
            }
            SupervisorEvent::GaveUp { path, child, .. } => {
                self.timeline("gave_up", path.as_str(), format!("gave up after {child}"));
            }
            SupervisorEvent::AutoShutdown { path, child, .. } => {
                self.timeline("auto_shutdown", path.as_str(), format!("shut down after {child}"));
            }
            SupervisorEvent::Escalated { at, origin, .. } => {
                self.timeline("escalation", origin.as_str(), format!("escalated to {at}"));
            }
            _ => {}
        }
    }

    /// The tick's coalesced states of the children that changed: each node as its events
    /// left it, each supervisor with the latest intensity its children's restarts reported.
    fn tally(&mut self, taken: Taken) {
        let mut intensities: HashMap<String, (u64, warden_supervisor::IntensityUsed)> = HashMap::new();
        for slot in &taken.slots {
            self.node(slot.path.as_str(), slot.kind, |n| {
                if !(slot.state.defers_to_give_up() && n.state == "gave_up")
                    && let Some(state) = slot.state.name()
                {
                    set_str(&mut n.state, state);
                }
                if let Some(count) = slot.restart_count {
                    n.restarts = count;
                }
                if let Some(backoff) = slot.backoff {
                    n.backoff_ms = backoff.map(duration_ms);
                }
                if let Some(last_exit) = &slot.last_exit {
                    set_display(&mut n.last_exit, last_exit);
                }
            });
            if let (Some((seq, used)), Some(parent)) = (slot.intensity, parent_of(slot.path.as_str())) {
                let latest = intensities.entry(parent.to_owned()).or_insert((seq, used));
                if seq >= latest.0 {
                    *latest = (seq, used);
                }
            }
            if slot.restarts_in_tick > 0 {
                self.restarts_by_child.push((slot.path.clone(), slot.restarts_in_tick));
            }
        }
        for (parent, (_, used)) in intensities {
            self.node(&parent, Some(ChildKind::Supervisor), |n| {
                n.intensity_used = Some(used.restarts);
                n.intensity_max = Some(used.limit.max_restarts);
                n.intensity_period_ms = Some(duration_ms(used.limit.period));
            });
        }
        self.restarts = taken.restarts;
        self.restarts_total = taken.restarts_total;
    }

    fn agent(&mut self, inner: &Inner, event: AgentEvent) {
        let name = event.agent.to_string();
        let mut agent = self.view.agents.remove(&name).unwrap_or_else(|| AgentView {
            name: name.clone(),
            activity: "idle".into(),
            ..AgentView::default()
        });
        match event.kind {
            AgentEventKind::Started { generation } => {
                agent.generation = generation;
                agent.activity = "idle".into();
                agent.task = None;
                agent.turn_started_ms = None;
                agent.question = None;
                self.end_turn(&name);
            }
            AgentEventKind::TurnStarted { task } => {
                let started_ms = now_ms();
                agent.activity = "turn".into();
                agent.task = Some(task.to_string());
                agent.turn_started_ms = Some(started_ms);
                agent.iteration = 0;
                self.end_turn(&name);
                self.turns.insert(
                    name.clone(),
                    Turn {
                        started: Instant::now(),
                        started_ms,
                        waiting: false,
                        flagged: false,
                    },
                );
            }
            AgentEventKind::ModelCalled { iteration } => {
                agent.iteration = iteration;
                self.resume(&mut agent, &name);
            }
            AgentEventKind::WaitingForHuman { question } => {
                agent.activity = "waiting_for_human".into();
                agent.question = Some(question);
                if let Some(turn) = self.turns.get_mut(&name) {
                    turn.waiting = true;
                }
                self.unflag(&format!("turn:{name}"));
            }
            AgentEventKind::ToolReturned { .. } => self.resume(&mut agent, &name),
            AgentEventKind::TurnEnded { end, .. } => {
                agent.activity = "idle".into();
                agent.task = None;
                agent.turn_started_ms = None;
                agent.question = None;
                agent.turns += 1;
                if matches!(end, TurnEnd::Failed(_)) {
                    agent.failed_turns += 1;
                }
                agent.last_end = Some(end.as_str().into());
                self.end_turn(&name);
                self.close_questions_of(inner, &name);
            }
            AgentEventKind::Escalated { consecutive_failures } => {
                agent.activity = "escalated".into();
                let text = format!("escalated after {consecutive_failures} failed turns");
                self.timeline("escalation", &name, text);
            }
            _ => {}
        }
        if let Some(handle) = lock(&inner.agents).get(&name) {
            agent.queued = Some(handle.load());
            agent.queue_capacity = Some(handle.queue_capacity());
        }
        self.view.agents.insert(name.clone(), agent);
        self.dirty_agents.insert(name);
    }

    /// A turn that waited for a human goes on: its stuck clock runs again.
    fn resume(&mut self, agent: &mut AgentView, name: &str) {
        if agent.activity == "waiting_for_human" {
            agent.activity = "turn".into();
            agent.question = None;
        }
        if let Some(turn) = self.turns.get_mut(name)
            && turn.waiting
        {
            turn.waiting = false;
            turn.started = Instant::now();
        }
    }

    /// A turn ended (or was replaced): it is no longer in flight, nor stuck.
    fn end_turn(&mut self, name: &str) {
        if self.turns.remove(name).is_some_and(|t| t.flagged) {
            self.unflag(&format!("turn:{name}"));
        }
    }

    /// Questions an agent asked in a turn that ended no longer wait.
    fn close_questions_of(&mut self, inner: &Inner, name: &str) {
        let closed: Vec<u64> = {
            let mut waiting = lock(&inner.waiting);
            let ids: Vec<u64> = waiting
                .iter()
                .filter(|(_, e)| e.concern::<HumanQuestion>().is_some_and(|q| &*q.agent == name))
                .map(|(id, _)| *id)
                .collect();
            for id in &ids {
                waiting.remove(id);
            }
            ids
        };
        for id in closed {
            self.emit(Delta::EscalationClosed { id });
        }
    }

    fn unflag(&mut self, key: &str) {
        if self.view.stuck.contains_key(key) {
            self.emit(Delta::Unstuck { key: key.into() });
        }
    }

    fn call_ended(&mut self, call: CallView) {
        if let Some(started) = self.calls.remove(&call.id)
            && started.flagged
        {
            self.unflag(&format!("{}:{}", call.kind, call.id));
        }
        if call.kind == "model"
            && let Some(agent) = &call.agent
        {
            let mut view = self.view.agents.remove(agent).unwrap_or_else(|| AgentView {
                name: agent.clone(),
                activity: "idle".into(),
                ..AgentView::default()
            });
            let input = call.input_tokens.unwrap_or(0);
            let output = call.output_tokens.unwrap_or(0);
            view.input_tokens += input;
            view.output_tokens += output;
            view.cost += call.cost.unwrap_or(0.0);
            self.view.agents.insert(agent.clone(), view);
            self.dirty_agents.insert(agent.clone());
        }
        self.emit(Delta::CallEnded(call));
    }

    fn check_stuck(&mut self) {
        let threshold = self.config.stuck_after;
        let threshold_ms = duration_ms(threshold);
        let mut flagged = Vec::new();
        for (name, turn) in &mut self.turns {
            if !turn.flagged && !turn.waiting && turn.started.elapsed() >= threshold {
                turn.flagged = true;
                flagged.push(StuckView {
                    key: format!("turn:{name}"),
                    kind: "turn".into(),
                    name: name.clone(),
                    agent: Some(name.clone()),
                    since_ms: turn.started_ms,
                    threshold_ms,
                });
            }
        }
        for call in self.calls.values_mut() {
            if !call.flagged && call.started.elapsed() >= threshold {
                call.flagged = true;
                flagged.push(StuckView {
                    key: format!("{}:{}", call.view.kind, call.view.id),
                    kind: call.view.kind.clone(),
                    name: call.view.name.clone(),
                    agent: call.view.agent.clone(),
                    since_ms: call.view.started_ms,
                    threshold_ms,
                });
            }
        }
        for stuck in flagged {
            tracing::warn!(target: "warden::studio", what = %stuck.key, name = %stuck.name, "stuck past {threshold:?}");
            self.emit(Delta::Stuck(stuck));
        }
    }
}

/// What a change is about, for keeping only the last change of each thing in a tick; `None`
/// for ring entries (timeline entries, ended calls), which all count.
fn delta_key(delta: &Delta) -> Option<String> {
    Some(match delta {
        Delta::Node(node) => format!("n{}", node.path),
        Delta::NodeRemoved { path } => format!("n{path}"),
        Delta::Agent(agent) => format!("a{}", agent.name),
        Delta::CallStarted(call) => format!("c{}", call.id),
        Delta::Escalation(e) => format!("e{}", e.id),
        Delta::EscalationClosed { id } => format!("e{id}"),
        Delta::Stuck(stuck) => format!("s{}", stuck.key),
        Delta::Unstuck { key } => format!("s{key}"),
        Delta::Dropped { .. } => "d".to_owned(),
        Delta::Member(member) => format!("m{}", member.name),
        Delta::Timeline(_) | Delta::CallEnded(_) => return None,
    })
}

/// The ring a change adds to: 0 the timeline, 1 the ended calls.
fn ring_of(delta: &Delta) -> Option<usize> {
    match delta {
        Delta::Timeline(_) => Some(0),
        Delta::CallEnded(_) => Some(1),
        _ => None,
    }
}

/// Sets a string field, reusing its buffer (no allocation when it is long enough).
fn set_str(field: &mut String, value: &str) {
    if field != value {
        field.clear();
        field.push_str(value);
    }
}

/// Sets an optional string field to `value`'s text, reusing its buffer.
fn set_display(field: &mut Option<String>, value: &impl std::fmt::Display) {
    use std::fmt::Write as _;
    let text = field.get_or_insert_with(String::new);
    text.clear();
    let _ = write!(text, "{value}");
}

fn kind_name(kind: ChildKind) -> &'static str {
    match kind {
        ChildKind::Supervisor => "supervisor",
        _ => "worker",
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, duration_ms)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// 128 random bits from the operating system, in hex.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: still unguessable enough for a local view, never empty.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut rng = fastrand::Rng::with_seed(seed as u64 ^ u64::from(std::process::id()));
        rng.fill(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
