//! [`Orchestrator`]: a planner splits a question into subtasks, workers created at run time
//! under a dynamic supervisor do them concurrently, and the planner re-plans when a worker
//! fails or escalates; a synthesizer writes the answer from the results.
//!
//! See [`Orchestrator`] for the details and an example.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use ractor::ActorCell;
use tokio::sync::mpsc;
use tokio::sync::mpsc::UnboundedSender;
use warden_supervisor::{
    BoxFuture as StartFuture, ChildKind, DynamicSupervisor, Escalation, NoProc, Restart, StartContext, StartError,
    Strategy, Supervisor,
};

use crate::agent::{AgentError, AgentRef, Outcome, Reply};
use crate::message::{Address, AgentMessage};
use crate::model::json_text;

mod plan;
mod report;
mod worker;

pub use plan::{Plan, Subtask};
use plan::{first_prompt, replan_prompt, synthesis_prompt};
pub use report::{OrchestratorError, OrchestratorEvent, OrchestratorRun, SubtaskResult};
pub use worker::{FailureReason, WorkerConcern, WorkerEscalation, WorkerFailure, WorkerRequest, WorkerSpec};
use worker::{Routes, dispatch, lock, worker_of};

type Factory = Arc<dyn Fn(&WorkerRequest) -> WorkerSpec + Send + Sync>;
type Observer = Arc<dyn Fn(&OrchestratorEvent) + Send + Sync>;

/// Builds an [`Orchestrator`].
#[must_use = "a builder does nothing until started"]
pub struct OrchestratorBuilder(Settings);

/// What an orchestrator is made of.
struct Settings {
    planner: AgentRef,
    synthesizer: AgentRef,
    factory: Factory,
    plan_deadline: Duration,
    worker_deadline: Duration,
    max_replans: u32,
    max_workers: u32,
    max_concurrent: usize,
    observer: Option<Observer>,
}

impl fmt::Debug for OrchestratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorBuilder")
            .field("planner", &self.0.planner.name())
            .field("synthesizer", &self.0.synthesizer.name())
            .field("max_replans", &self.0.max_replans)
            .field("max_workers", &self.0.max_workers)
            .finish_non_exhaustive()
    }
}

impl OrchestratorBuilder {
    /// The deadline of each planner and synthesizer ask (default 2 minutes).
    pub fn plan_deadline(mut self, deadline: Duration) -> Self {
        self.0.plan_deadline = deadline;
        self
    }

    /// The deadline of each worker's ask (default 5 minutes).
    pub fn worker_deadline(mut self, deadline: Duration) -> Self {
        self.0.worker_deadline = deadline;
        self
    }

    /// At most this many re-plans per run (default 3); later failures stay failures.
    pub fn max_replans(mut self, n: u32) -> Self {
        self.0.max_replans = n;
        self
    }

    /// At most this many workers started per run (default 16).
    pub fn max_workers(mut self, n: u32) -> Self {
        self.0.max_workers = n;
        self
    }

    /// At most this many workers at work at once (default 8, at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.0.max_concurrent = n.max(1);
        self
    }

    /// A callback that sees every [`OrchestratorEvent`]; it must return quickly.
    pub fn observer(mut self, observer: impl Fn(&OrchestratorEvent) + Send + Sync + 'static) -> Self {
        self.0.observer = Some(Arc::new(observer));
        self
    }

    /// Starts the workers supervisor as a child `id` of `parent` (a [`DynamicSupervisor`]
    /// of worker subtrees, each temporary) and returns the orchestrator.
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Start`] if the child cannot be started (the id is taken...),
    /// [`OrchestratorError::NoProc`] if `parent` is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not undo a start already sent.
    pub async fn start(self, parent: &Supervisor, id: &str) -> Result<Orchestrator, OrchestratorError> {
        let routes: Routes = Arc::new(Mutex::new(HashMap::new()));
        let path = parent.path().join(id);
        let handler = {
            let (routes, path) = (routes.clone(), path.clone());
            move |escalation: Escalation| dispatch(&routes, &path, escalation)
        };
        let template = {
            let (factory, routes) = (self.0.factory.clone(), routes.clone());
            move |ctx: StartContext, start: WorkerStart| start_worker_tree(&factory, &routes, ctx, start)
        };
        // Workers are temporary: nothing below is restarted, so the intensity only bounds
        // a storm of failed starts.
        let spec = DynamicSupervisor::builder(id, template)
            .kind(ChildKind::Supervisor)
            .restart(Restart::Temporary)
            .intensity(1_000, Duration::from_secs(1))
            .escalation_handler(handler)
            .into_child();
        parent.start_child(spec).await.map_err(OrchestratorError::Start)?;
        let workers = parent
            .which_children()
            .await?
            .into_iter()
            .find(|c| c.id() == id)
            .and_then(|c| c.supervisor())
            .map(DynamicSupervisor::from_supervisor)
            .ok_or_else(|| {
                OrchestratorError::NoProc(NoProc {
                    supervisor: path.clone(),
                })
            })?;
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                settings: self.0,
                workers,
                routes,
            }),
        })
    }
}

struct Inner {
    settings: Settings,
    workers: DynamicSupervisor<WorkerStart>,
    routes: Routes,
}

/// A worker's start, as the workers supervisor's template gets it.
#[derive(Clone)]
struct WorkerStart {
    subtask: Subtask,
    /// The run's channel for the worker's escalations.
    escalations: UnboundedSender<Escalation>,
    /// Where the template leaves the worker's id and its agent for the run.
    started: Arc<Mutex<Option<Named>>>,
}

/// A started worker's id and its agent.
type Named = (Arc<str>, AgentRef);

/// The workers supervisor's template: asks the factory for the worker, routes its
/// escalations to its run and starts its subtree at `ctx`'s place, `workers/<id>`.
fn start_worker_tree(
    factory: &Factory,
    routes: &Routes,
    ctx: StartContext,
    start: WorkerStart,
) -> StartFuture<Result<ActorCell, StartError>> {
    let worker: Arc<str> = Arc::from(ctx.path().id());
    let number = worker.parse::<u64>().map_or(0, |n| n.saturating_add(1));
    let request = WorkerRequest {
        worker: worker.clone(),
        number,
        subtask: start.subtask,
    };
    let spec = factory(&request);
    let agent = spec.agent.handle();
    let tree = Supervisor::builder(worker.to_string())
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .children(spec.companions)
        .child(spec.agent.child_spec().restart(Restart::Temporary))
        .into_child();
    lock(routes).insert(worker.clone(), start.escalations);
    *lock(&start.started) = Some((worker, agent));
    tree.start(ctx)
}

/// An orchestrator of workers. Cheap to clone; runs may go on concurrently.
///
/// This is orchestrator-workers the OTP way. The orchestrator owns a *workers* supervisor,
/// started as a child of a supervisor of yours ([`OrchestratorBuilder::start`]). For each
/// subtask it asks your factory for a [`WorkerSpec`] (an [`Agent`](crate::agent::Agent) and its companions, such
/// as the [`ToolExecutor`](warden_tools::ToolExecutor) it calls) and starts them with
/// [`DynamicSupervisor`] (OTP's `simple_one_for_one`) as a supervisor of their own, named by
/// its number, `workers/0`, `workers/1`...:
///
/// ```text
/// your-supervisor
/// └── workers              the orchestrator's pool (escalations from below come to it)
///     ├── 0                one worker: its companions, then its agent (temporary)
///     │   ├── tools
///     │   └── researcher
///     └── 1 ...
/// ```
///
/// Workers run concurrently (at most [`max_concurrent`](OrchestratorBuilder::max_concurrent)
/// at once), each asked its subtask with a deadline. A worker *fails* when:
///
/// * its ask fails: it was killed or crashed ([`AgentError::AgentDown`]), timed out, or its
///   turn failed (its model or a tool kept failing);
/// * it finishes without completing (interrupted, out of iterations, no text);
/// * anything below it escalates to the workers supervisor while it works: its tool
///   executor's breaker opened ([`CircuitOpened`](warden_tools::circuit_breaker::CircuitOpened)), its agent kept failing
///   ([`AgentTrouble`](crate::agent::AgentTrouble)), or its own supervisor gave up ([`GiveUp`](warden_supervisor::GiveUp)). The orchestrator stops
///   that worker at once rather than wait for it.
///
/// A failed worker is stopped and its subtree removed, and the planner is asked to re-plan:
/// it is told what failed and why, what is done and what is still running, and answers the
/// subtasks to start now (maybe none). At most [`max_replans`](OrchestratorBuilder::max_replans)
/// times a run, and at most [`max_workers`](OrchestratorBuilder::max_workers) workers a run.
/// When no worker is left to run, the synthesizer is asked the question with every result.
/// Escalations the orchestrator does not take (a human question, anything from outside a
/// running worker) go on up the tree as usual.
///
/// The planner answers a [`Plan`]: build it with
/// [`ReActBuilder::structured_output::<Plan>()`](crate::react::ReActBuilder::structured_output)
/// (a JSON text answer is read too). Bad plans from a model never panic: ids are made unique,
/// empty tasks dropped, and an answer that is not a plan is a typed error.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use warden_agents::agent::Agent;
/// use warden_agents::model::{Model, OpenAiChat};
/// use warden_agents::pattern::{Orchestrator, Plan, WorkerSpec};
/// use warden_agents::react::ReAct;
/// use warden_fake_provider::{FakeProvider, Answer};
/// use warden_supervisor::Supervisor;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fake = FakeProvider::start().await;
/// fake.push_all([
///     Answer::json(json!({"subtasks": [{"id": "origins", "task": "Where does OTP come from?"}]})),
///     Answer::text("Ericsson, 1998."),
///     Answer::text("OTP comes from Ericsson (1998)."),
/// ]);
/// let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
/// let planner = Agent::new("planner", ReAct::builder(model.clone()).structured_output::<Plan>().build());
/// let synthesizer = Agent::new("synthesizer", ReAct::builder(model.clone()).build());
/// let root = Supervisor::builder("root")
///     .child(planner.child_spec())
///     .child(synthesizer.child_spec())
///     .spawn()
///     .await?;
///
/// let factory = move |_: &_| WorkerSpec::new(Agent::new("researcher", ReAct::builder(model.clone()).build()));
/// let orchestrator = Orchestrator::builder(planner.handle(), synthesizer.handle(), factory)
///     .worker_deadline(Duration::from_secs(10))
///     .start(&root, "workers")
///     .await?;
/// let run = orchestrator.run("Where does OTP come from?").await?;
/// assert_eq!(run.answer.text(), "OTP comes from Ericsson (1998).");
/// assert_eq!(run.results[0].reply.text(), "Ericsson, 1998.");
/// assert_eq!(run.workers_started, 1);
/// root.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("planner", &self.inner.settings.planner.name())
            .field("synthesizer", &self.inner.settings.synthesizer.name())
            .field("workers", self.inner.workers.path())
            .finish_non_exhaustive()
    }
}

/// A worker at work.
struct Working {
    subtask: Subtask,
}

/// One run's state.
struct Run {
    question: String,
    pending: VecDeque<Subtask>,
    working: HashMap<Arc<str>, Working>,
    ids: HashSet<String>,
    results: Vec<SubtaskResult>,
    failures: Vec<WorkerFailure>,
    escalations: Vec<WorkerEscalation>,
    replans: u32,
    replan_errors: Vec<OrchestratorError>,
    started: u32,
}

/// Stops the workers of a run that is dropped before it ends.
struct Cleanup {
    workers: DynamicSupervisor<WorkerStart>,
    routes: Routes,
    live: HashMap<Arc<str>, ActorCell>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let mut routes = lock(&self.routes);
        for worker in self.live.keys() {
            routes.remove(worker);
        }
        drop(routes);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (workers, live) = (self.workers.clone(), std::mem::take(&mut self.live));
            runtime.spawn(async move {
                for cell in live.into_values() {
                    let _ = workers.terminate_child(&cell).await;
                }
            });
        }
    }
}

type Asked = BoxFuture<'static, (Arc<str>, Result<Reply, AgentError>)>;

impl Orchestrator {
    /// A builder: `planner` answers [`Plan`]s, `synthesizer` writes the answer, `factory`
    /// makes a worker for each subtask. Defaults: 2 minutes per plan, 5 per worker, 3
    /// re-plans, 16 workers, 8 at once.
    pub fn builder(
        planner: AgentRef,
        synthesizer: AgentRef,
        factory: impl Fn(&WorkerRequest) -> WorkerSpec + Send + Sync + 'static,
    ) -> OrchestratorBuilder {
        OrchestratorBuilder(Settings {
            planner,
            synthesizer,
            factory: Arc::new(factory),
            plan_deadline: Duration::from_secs(120),
            worker_deadline: Duration::from_secs(300),
            max_replans: 3,
            max_workers: 16,
            max_concurrent: 8,
            observer: None,
        })
    }

    /// The workers supervisor, to look at (its snapshot shows the workers running now).
    pub fn workers(&self) -> &Supervisor {
        self.inner.workers.as_supervisor()
    }

    fn emit(&self, event: OrchestratorEvent) {
        if let Some(observer) = &self.inner.settings.observer {
            observer(&event);
        }
    }

    async fn plan(&self, prompt: String) -> Result<Plan, OrchestratorError> {
        let task = AgentMessage::user(prompt).from(Address::external("orchestrator"));
        let reply = self
            .inner
            .settings
            .planner
            .ask(task, self.inner.settings.plan_deadline)
            .await
            .map_err(OrchestratorError::Planner)?;
        match &reply.structured {
            Some(_) => reply
                .parse::<Plan>()
                .map_err(|e| OrchestratorError::InvalidPlan(e.to_string())),
            None => serde_json::from_str::<Plan>(json_text(&reply.text()))
                .map_err(|e| OrchestratorError::InvalidPlan(e.to_string())),
        }
    }

    /// Unique ids, no empty tasks.
    fn accept(run: &mut Run, plan: Plan) -> Vec<Subtask> {
        let mut accepted = Vec::new();
        for mut subtask in plan.subtasks {
            if subtask.task.trim().is_empty() {
                continue;
            }
            let base = match subtask.id.trim() {
                "" => format!("s{}", run.ids.len() + 1),
                id => id.to_owned(),
            };
            let mut id = base.clone();
            let mut n = 1;
            while run.ids.contains(&id) {
                n += 1;
                id = format!("{base}-{n}");
            }
            run.ids.insert(id.clone());
            subtask.id = id;
            accepted.push(subtask);
        }
        run.pending.extend(accepted.iter().cloned());
        accepted
    }

    /// Starts a worker for `subtask`, routing its escalations to `escalations`.
    async fn start_worker(
        &self,
        subtask: &Subtask,
        escalations: &mpsc::UnboundedSender<Escalation>,
        cleanup: &mut Cleanup,
    ) -> Result<(Arc<str>, AgentRef), (Arc<str>, FailureReason)> {
        let start = WorkerStart {
            subtask: subtask.clone(),
            escalations: escalations.clone(),
            started: Arc::new(Mutex::new(None)),
        };
        let started = start.started.clone();
        let result = self.inner.workers.start_child(start).await;
        // The template ran (unless the supervisor was gone): the worker has an id.
        let named = lock(&started).take();
        match (result, named) {
            (Ok(cell), Some((worker, agent))) => {
                cleanup.live.insert(worker.clone(), cell);
                Ok((worker, agent))
            }
            (Ok(cell), None) => {
                // Cannot happen: the template names the worker before starting it.
                let _ = self.inner.workers.terminate_child(&cell).await;
                Err((
                    Arc::from(""),
                    FailureReason::StartFailed("the worker was not named".into()),
                ))
            }
            (Err(e), named) => {
                let worker = named.map_or_else(|| Arc::from(""), |(worker, _)| worker);
                lock(&self.inner.routes).remove(&worker);
                Err((worker, FailureReason::StartFailed(e.to_string())))
            }
        }
    }

    /// Stops a worker's subtree (it is temporary: nothing of it is kept).
    async fn stop_worker(&self, worker: &Arc<str>, cleanup: &mut Cleanup) {
        lock(&self.inner.routes).remove(worker);
        if let Some(cell) = cleanup.live.remove(worker) {
            // Already gone (it gave up, or was removed) is fine.
            let _ = self.inner.workers.terminate_child(&cell).await;
        }
    }

    async fn fail(&self, run: &mut Run, worker: Arc<str>, subtask: Subtask, reason: FailureReason) {
        let replan = !matches!(reason, FailureReason::OutOfWorkers);
        let failure = WorkerFailure {
            worker: worker.clone(),
            subtask,
            reason,
        };
        self.emit(OrchestratorEvent::WorkerFailed(failure.clone()));
        run.failures.push(failure.clone());
        if !replan || run.replans >= self.inner.settings.max_replans {
            return;
        }
        run.replans += 1;
        match self.plan(replan_prompt(run, &failure)).await {
            Ok(plan) => {
                let subtasks = Self::accept(run, plan);
                self.emit(OrchestratorEvent::Replanned {
                    after: worker,
                    subtasks,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-plan failed; the run goes on without it");
                run.replan_errors.push(e);
            }
        }
    }

    /// Answers `question`: plan, run workers (re-planning when they fail), synthesize.
    /// See [`Orchestrator`].
    ///
    /// # Errors
    ///
    /// [`OrchestratorError::Planner`] or [`InvalidPlan`](OrchestratorError::InvalidPlan) for
    /// the first plan (a failed re-plan is recorded in [`OrchestratorRun::replan_errors`]
    /// and the run goes on); [`NothingCompleted`](OrchestratorError::NothingCompleted) when
    /// there were subtasks and all failed; [`Synthesizer`](OrchestratorError::Synthesizer) or
    /// [`NoAnswer`](OrchestratorError::NoAnswer) when the answer could not be written.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops the run's workers (in a task of their own) and abandons the
    /// ask in flight of the planner or synthesizer.
    pub async fn run(&self, question: impl Into<String>) -> Result<OrchestratorRun, OrchestratorError> {
        let question = question.into();
        let (tx, mut rx) = mpsc::unbounded_channel::<Escalation>();
        let mut cleanup = Cleanup {
            workers: self.inner.workers.clone(),
            routes: self.inner.routes.clone(),
            live: HashMap::new(),
        };
        let mut run = Run {
            question,
            pending: VecDeque::new(),
            working: HashMap::new(),
            ids: HashSet::new(),
            results: Vec::new(),
            failures: Vec::new(),
            escalations: Vec::new(),
            replans: 0,
            replan_errors: Vec::new(),
            started: 0,
        };
        let plan = self.plan(first_prompt(&run.question)).await?;
        let subtasks = Self::accept(&mut run, plan);
        self.emit(OrchestratorEvent::Planned { subtasks });

        let mut asks: FuturesUnordered<Asked> = FuturesUnordered::new();
        loop {
            while run.working.len() < self.inner.settings.max_concurrent {
                let Some(subtask) = run.pending.pop_front() else { break };
                if run.started >= self.inner.settings.max_workers {
                    self.fail(&mut run, Arc::from(""), subtask, FailureReason::OutOfWorkers)
                        .await;
                    continue;
                }
                run.started += 1;
                match self.start_worker(&subtask, &tx, &mut cleanup).await {
                    Ok((worker, agent)) => {
                        self.emit(OrchestratorEvent::WorkerStarted {
                            worker: worker.clone(),
                            subtask: subtask.clone(),
                            agent: agent.clone(),
                        });
                        let task = AgentMessage::user(subtask.task.clone()).from(Address::external("orchestrator"));
                        let deadline = self.inner.settings.worker_deadline;
                        let id = worker.clone();
                        asks.push(Box::pin(async move { (id, agent.ask(task, deadline).await) }));
                        run.working.insert(worker, Working { subtask });
                    }
                    Err((worker, reason)) => self.fail(&mut run, worker, subtask, reason).await,
                }
            }
            if run.working.is_empty() && run.pending.is_empty() {
                break;
            }
            tokio::select! {
                Some((worker, result)) = asks.next() => {
                    // A worker stopped after an escalation: already counted.
                    let Some(Working { subtask }) = run.working.remove(&worker) else { continue };
                    self.stop_worker(&worker, &mut cleanup).await;
                    match result {
                        Ok(reply) if reply.outcome == Outcome::Completed && !reply.text().trim().is_empty() => {
                            self.emit(OrchestratorEvent::WorkerDone { worker: worker.clone(), subtask: subtask.id.clone() });
                            run.results.push(SubtaskResult { worker, subtask, reply });
                        }
                        Ok(reply) => self.fail(&mut run, worker, subtask, FailureReason::Incomplete(reply.outcome)).await,
                        Err(e) => self.fail(&mut run, worker, subtask, FailureReason::Ask(e)).await,
                    }
                }
                Some(escalation) = rx.recv() => {
                    let (Some(worker), Some(concern)) = (
                        worker_of(self.inner.workers.path(), escalation.origin()).map(Arc::<str>::from),
                        WorkerConcern::of(&escalation),
                    ) else { continue };
                    let working = run.working.remove(&worker);
                    let record = WorkerEscalation {
                        worker: worker.clone(),
                        subtask: working.as_ref().map(|w| w.subtask.id.clone()).unwrap_or_default(),
                        origin: escalation.origin().clone(),
                        concern: concern.clone(),
                    };
                    self.emit(OrchestratorEvent::Escalated(record.clone()));
                    run.escalations.push(record);
                    if let Some(Working { subtask }) = working {
                        self.stop_worker(&worker, &mut cleanup).await;
                        self.fail(&mut run, worker, subtask, FailureReason::Escalated(concern)).await;
                    }
                }
            }
        }
        let live: Vec<Arc<str>> = cleanup.live.keys().cloned().collect();
        for worker in live {
            self.stop_worker(&worker, &mut cleanup).await;
        }
        if run.results.is_empty() && !run.failures.is_empty() {
            return Err(OrchestratorError::NothingCompleted { failures: run.failures });
        }
        self.emit(OrchestratorEvent::Synthesizing {
            results: run.results.len(),
        });
        let task = AgentMessage::user(synthesis_prompt(&run)).from(Address::external("orchestrator"));
        let answer = self
            .inner
            .settings
            .synthesizer
            .ask(task, self.inner.settings.plan_deadline)
            .await
            .map_err(OrchestratorError::Synthesizer)?;
        if answer.outcome != Outcome::Completed {
            return Err(OrchestratorError::NoAnswer(answer.outcome));
        }
        Ok(OrchestratorRun {
            answer,
            results: run.results,
            failures: run.failures,
            escalations: run.escalations,
            replans: run.replans,
            replan_errors: run.replan_errors,
            workers_started: run.started,
        })
    }
}
