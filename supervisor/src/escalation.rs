//! Escalation: failures and questions that travel up the tree as typed messages.
//!
//! Two things escalate:
//!
//! * **A supervisor that gives up.** When a supervisor exceeds its restart
//!   intensity it stops its children and exits with reason `shutdown`; its
//!   parent receives, with that exit, an [`Escalation`] of kind
//!   [`EscalationKind::GaveUp`] (which child pushed it over, why, and the recent
//!   failures) and then applies its own strategy to the child supervisor, as OTP
//!   does. A chain of give-ups travels up level by level; the root's own give-up
//!   goes to the root's handler.
//! * **A child that asks on purpose.** A worker keeps the [`Escalator`] from its
//!   [`StartContext`](crate::StartContext) and [`raises`](Escalator::raise) a
//!   typed concern, or [`requests`](Escalator::request) an answer and waits for
//!   it (using no CPU) until it comes or a deadline passes.
//!
//! Each supervisor on the way may have an [`EscalationHandler`]: it resolves an
//! escalation ([`Disposition::Handled`], answering it if it expects an answer)
//! or passes it on to the parent ([`Disposition::Escalate`]). A supervisor
//! without a handler passes everything on. What reaches the root and is not
//! handled there is logged at `error` level and dropped; a requester then gets
//! [`EscalationError::Unanswered`]. Handlers run inside their supervisor: see
//! [`EscalationHandler`] for what that asks of them.
//!
//! An escalation's `Display` and `Debug`, which is what the logs show, name a
//! raised concern by its kind and summary only, never its value: see [`Concern`].
//!
//! ```
//! use std::time::Duration;
//! use tokio::sync::mpsc;
//! use warden_supervisor::{Escalation, Strategy, Supervisor};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Bounded: when it is full, an escalation goes on up rather than waiting.
//! let (tx, mut escalations) = mpsc::channel::<Escalation>(64);
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::OneForOne)
//!     .intensity(3, Duration::from_secs(5))
//!     .escalation_handler(tx)
//!     .spawn()
//!     .await?;
//! // ... every escalation that nobody below resolved arrives on `escalations`.
//! root.stop().await;
//! # drop(escalations.try_recv()); Ok(()) }
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ractor::ActorRef;
use tokio::sync::{mpsc, oneshot};

use crate::exit::ExitReason;
use crate::intensity::Intensity;
use crate::path::ChildPath;
use crate::supervisor::SupervisorMsg;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A failure or a question on its way up the tree.
pub struct Escalation {
    id: u64,
    origin: ChildPath,
    kind: EscalationKind,
    raised_at: SystemTime,
    route: Vec<ChildPath>,
    responder: Option<Responder>,
}

impl Escalation {
    fn new(origin: ChildPath, kind: EscalationKind, responder: Option<Responder>) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            origin,
            kind,
            raised_at: SystemTime::now(),
            route: Vec::new(),
            responder,
        }
    }

    pub(crate) fn gave_up(give_up: GiveUp) -> Self {
        Self::new(give_up.supervisor.clone(), EscalationKind::GaveUp(give_up), None)
    }

    /// A number unique in this process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Who raised it: the supervisor that gave up, or the child that asked.
    pub fn origin(&self) -> &ChildPath {
        &self.origin
    }

    /// What happened.
    pub fn kind(&self) -> &EscalationKind {
        &self.kind
    }

    /// When it was raised.
    pub fn raised_at(&self) -> SystemTime {
        self.raised_at
    }

    /// The supervisors that passed it on so far, nearest first.
    pub fn route(&self) -> &[ChildPath] {
        &self.route
    }

    pub(crate) fn passed_through(&mut self, supervisor: &ChildPath) {
        self.route.push(supervisor.clone());
    }

    /// The concern of a raised escalation, if it is of type `T`.
    pub fn concern<T: Any>(&self) -> Option<&T> {
        match &self.kind {
            EscalationKind::Raised(c) => c.downcast_ref(),
            EscalationKind::GaveUp(_) => None,
        }
    }

    /// The give-up report, if a supervisor gave up.
    pub fn give_up(&self) -> Option<&GiveUp> {
        match &self.kind {
            EscalationKind::GaveUp(g) => Some(g),
            EscalationKind::Raised(_) => None,
        }
    }

    /// Whether the raiser is waiting for an answer that has not been given yet.
    pub fn expects_answer(&self) -> bool {
        self.responder.is_some()
    }

    /// Takes the means to answer, to answer later (for example once a human has
    /// decided). `None` if no answer is expected or it was already taken.
    pub fn take_responder(&mut self) -> Option<Responder> {
        self.responder.take()
    }

    /// Answers the raiser now.
    ///
    /// # Errors
    ///
    /// [`EscalationError::NoAnswerExpected`] if no answer is expected or it was
    /// already given; [`EscalationError::RequesterGone`] if the raiser stopped
    /// waiting.
    pub fn answer<A: Any + Send>(&mut self, answer: A) -> Result<(), EscalationError> {
        match self.responder.take() {
            Some(r) => r.answer(answer),
            None => Err(EscalationError::NoAnswerExpected),
        }
    }
}

impl fmt::Debug for Escalation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Escalation")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .field("kind", &self.kind)
            .field("route", &self.route)
            .field("expects_answer", &self.expects_answer())
            .finish()
    }
}

/// One line for logs: who gave up and why, or who raised which kind of
/// concern (see [`Concern`]: never its value).
impl fmt::Display for Escalation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EscalationKind::GaveUp(g) => write!(
                f,
                "{} gave up: more than {} restart{} in {:?} (last: {} {})",
                self.origin,
                g.intensity.max_restarts,
                if g.intensity.max_restarts == 1 { "" } else { "s" },
                g.intensity.period,
                g.child,
                g.reason
            ),
            EscalationKind::Raised(c) => write!(f, "{} raised {}", self.origin, c),
        }
    }
}

/// What an escalation is about.
#[derive(Debug)]
#[non_exhaustive]
pub enum EscalationKind {
    /// A supervisor exceeded its restart intensity and gave up.
    GaveUp(GiveUp),
    /// A child raised a concern on purpose.
    Raised(Concern),
}

/// The report of a supervisor that gave up.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GiveUp {
    /// The supervisor that gave up.
    pub supervisor: ChildPath,
    /// Its restart limit.
    pub intensity: Intensity,
    /// The child whose exit was one restart too many.
    pub child: ChildPath,
    /// Why that child exited.
    pub reason: ExitReason,
    /// The exits that led to restarts recently, oldest first (at most 16).
    pub recent_failures: Vec<ChildFailure>,
}

/// One exit that led to a restart.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChildFailure {
    /// The child.
    pub path: ChildPath,
    /// Why it exited.
    pub reason: ExitReason,
    /// When.
    pub at: SystemTime,
}

impl ChildFailure {
    pub(crate) fn now(path: ChildPath, reason: ExitReason) -> Self {
        Self {
            path,
            reason,
            at: SystemTime::now(),
        }
    }
}

/// A typed value a child escalates: any `Debug + Send + Sync` type of yours.
///
/// A concern may carry secrets (a tool's arguments, a request's headers), and
/// escalations are logged on their way up: so a concern never prints its
/// value. Its `Debug` and `Display` show its [kind](Concern::kind) (the type's
/// name) and, if one was given, its [summary](Concern::summary), a line you
/// write to be safe to log. Read the value itself with
/// [`downcast_ref`](Concern::downcast_ref).
///
/// ```
/// use warden_supervisor::Concern;
///
/// #[derive(Debug)]
/// struct ToolCall { authorization: String }
///
/// let concern = Concern::new(ToolCall { authorization: "Bearer sk-secret".into() });
/// assert!(!format!("{concern:?} {concern}").contains("sk-secret"));
///
/// let concern = concern.with_summary("tool call refused by the policy");
/// assert_eq!(concern.to_string(), "a ToolCall concern: tool call refused by the policy");
/// ```
#[derive(Clone)]
pub struct Concern {
    value: Arc<dyn ConcernValue>,
    kind: &'static str,
    summary: Option<Arc<str>>,
}

trait ConcernValue: Any + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + Send + Sync> ConcernValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Concern {
    /// Wraps a value. It is kept as it is, and never printed.
    pub fn new<T: Any + fmt::Debug + Send + Sync>(value: T) -> Self {
        Self {
            value: Arc::new(value),
            kind: short_type_name(std::any::type_name::<T>()),
            summary: None,
        }
    }

    /// Adds a line safe to log, shown wherever the concern is printed.
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(Arc::from(summary.into()));
        self
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        (*self.value).as_any().downcast_ref()
    }

    /// What the concern is: the name of the value's type, without its module path.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The line given with [`with_summary`](Concern::with_summary), if any.
    pub fn summary(&self) -> Option<&str> {
        self.summary.as_deref()
    }
}

/// `a::b::Name<c::D>` → `Name<c::D>`: the last segment before any generics.
fn short_type_name(full: &'static str) -> &'static str {
    let head_end = full.find('<').unwrap_or(full.len());
    match full[..head_end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

impl fmt::Debug for Concern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Concern")
            .field("kind", &self.kind)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Concern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} concern", self.kind)?;
        match &self.summary {
            Some(summary) => write!(f, ": {summary}"),
            None => Ok(()),
        }
    }
}

/// The means to answer an escalation that expects an answer. Dropping it
/// unanswered tells the raiser [`EscalationError::Unanswered`].
pub struct Responder(oneshot::Sender<Box<dyn Any + Send>>);

impl Responder {
    /// Sends the answer.
    ///
    /// # Errors
    ///
    /// [`EscalationError::RequesterGone`] if the raiser stopped waiting.
    pub fn answer<A: Any + Send>(self, answer: A) -> Result<(), EscalationError> {
        self.0
            .send(Box::new(answer))
            .map_err(|_| EscalationError::RequesterGone)
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Responder")
    }
}

/// A child's handle to escalate to its supervisor on purpose. Cheap to clone;
/// get it from [`StartContext::escalator`](crate::StartContext::escalator).
#[derive(Clone)]
pub struct Escalator {
    pub(crate) supervisor: ActorRef<SupervisorMsg>,
    pub(crate) origin: ChildPath,
}

impl Escalator {
    /// The path escalations from this handle carry as their origin.
    pub fn origin(&self) -> &ChildPath {
        &self.origin
    }

    /// Raises a concern that expects no answer. It is printed (and logged) by
    /// its kind only; to give it a summary, use [`raise_concern`](Self::raise_concern).
    ///
    /// # Errors
    ///
    /// [`EscalationError::SupervisorDown`] if the supervisor is gone.
    pub fn raise<T: Any + fmt::Debug + Send + Sync>(&self, concern: T) -> Result<(), EscalationError> {
        self.raise_concern(Concern::new(concern))
    }

    /// Raises a [`Concern`] built by hand (with a summary) that expects no answer.
    ///
    /// # Errors
    ///
    /// [`EscalationError::SupervisorDown`] if the supervisor is gone.
    pub fn raise_concern(&self, concern: Concern) -> Result<(), EscalationError> {
        self.send(concern, None)
    }

    /// Raises a concern and waits for an answer of type `A`, at most `deadline`.
    ///
    /// # Errors
    ///
    /// [`EscalationError::Timeout`] at the deadline; [`EscalationError::Unanswered`]
    /// if the escalation was dropped unanswered (nobody up the tree handled it);
    /// [`EscalationError::WrongAnswerType`] if the answer is not an `A`;
    /// [`EscalationError::SupervisorDown`] if the supervisor is gone.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops waiting; whoever holds the [`Responder`] then
    /// gets [`EscalationError::RequesterGone`] when answering.
    pub async fn request<T, A>(&self, concern: T, deadline: Duration) -> Result<A, EscalationError>
    where
        T: Any + fmt::Debug + Send + Sync,
        A: Any + Send,
    {
        self.request_concern(Concern::new(concern), deadline).await
    }

    /// [`request`](Self::request) with a [`Concern`] built by hand (with a summary).
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request).
    ///
    /// # Cancellation
    ///
    /// As [`request`](Self::request).
    pub async fn request_concern<A: Any + Send>(
        &self,
        concern: Concern,
        deadline: Duration,
    ) -> Result<A, EscalationError> {
        let (tx, rx) = oneshot::channel();
        self.send(concern, Some(Responder(tx)))?;
        match tokio::time::timeout(deadline, rx).await {
            Err(_) => Err(EscalationError::Timeout),
            Ok(Err(_)) => Err(EscalationError::Unanswered),
            Ok(Ok(answer)) => answer
                .downcast::<A>()
                .map(|a| *a)
                .map_err(|_| EscalationError::WrongAnswerType {
                    expected: std::any::type_name::<A>(),
                }),
        }
    }

    fn send(&self, concern: Concern, responder: Option<Responder>) -> Result<(), EscalationError> {
        let esc = Escalation::new(self.origin.clone(), EscalationKind::Raised(concern), responder);
        self.supervisor
            .send_message(SupervisorMsg::Escalate(esc))
            .map_err(|_| EscalationError::SupervisorDown)
    }
}

impl fmt::Debug for Escalator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Escalator").field("origin", &self.origin).finish()
    }
}

/// What went wrong with an escalation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EscalationError {
    /// The supervisor to escalate to is not running. Permanent for this escalator.
    #[error("supervisor is down")]
    SupervisorDown,
    /// No answer came before the deadline. Transient.
    #[error("no answer before the deadline")]
    Timeout,
    /// The escalation was dropped without an answer: nobody up the tree handled it.
    #[error("escalation was not answered")]
    Unanswered,
    /// The answer was of another type than the one asked for.
    #[error("answer is not a {expected}")]
    WrongAnswerType {
        /// The type asked for.
        expected: &'static str,
    },
    /// Answering an escalation that expects no answer, or a second time.
    #[error("no answer is expected")]
    NoAnswerExpected,
    /// The raiser stopped waiting before the answer came.
    #[error("requester is no longer waiting")]
    RequesterGone,
}

/// What a handler did with an escalation.
#[derive(Debug)]
pub enum Disposition {
    /// Resolved here; it goes no further.
    Handled,
    /// Pass it on to the parent supervisor.
    Escalate(Escalation),
}

/// Resolves escalations at one supervisor, or passes them on.
///
/// **The handler runs inside the supervisor actor**, in the middle of its
/// work: while it runs, that supervisor restarts nothing and answers no API
/// call. It must return at once. To decide later (a human, an orchestrator
/// agent), send the escalation somewhere and answer through its [`Responder`].
///
/// The recommended handler is a bounded [`mpsc::Sender`]: it never blocks
/// (it uses `try_send`), and when its channel is full, or its receiver gone,
/// the escalation is passed on to the parent ([`Disposition::Escalate`])
/// rather than lost, with a warning. An [`mpsc::UnboundedSender`] is a handler
/// too, but its channel grows without limit if nobody reads it. A closure
/// `Fn(Escalation) -> Disposition` is one as well.
///
/// A handler that panics loses that escalation and is logged; the supervisor
/// carries on.
pub trait EscalationHandler: Send + Sync + 'static {
    /// Decides what happens to `escalation`.
    fn handle(&self, escalation: Escalation) -> Disposition;
}

impl<F> EscalationHandler for F
where
    F: Fn(Escalation) -> Disposition + Send + Sync + 'static,
{
    fn handle(&self, escalation: Escalation) -> Disposition {
        self(escalation)
    }
}

impl EscalationHandler for mpsc::Sender<Escalation> {
    /// Queues the escalation without waiting; if the channel is full or its
    /// receiver gone, passes it to the parent.
    fn handle(&self, escalation: Escalation) -> Disposition {
        match self.try_send(escalation) {
            Ok(()) => Disposition::Handled,
            Err(mpsc::error::TrySendError::Full(e)) => {
                tracing::warn!(target: "warden::supervisor", escalation = %e, "escalation channel is full; passed on to the parent");
                Disposition::Escalate(e)
            }
            Err(mpsc::error::TrySendError::Closed(e)) => Disposition::Escalate(e),
        }
    }
}

impl EscalationHandler for mpsc::UnboundedSender<Escalation> {
    /// Sends the escalation on; if the receiver is gone, passes it to the parent.
    fn handle(&self, escalation: Escalation) -> Disposition {
        match self.send(escalation) {
            Ok(()) => Disposition::Handled,
            Err(mpsc::error::SendError(e)) => Disposition::Escalate(e),
        }
    }
}
