//! Test support shared by the integration tests: a probe worker that can be told
//! to fail in every way a child can, and a recorder of supervisor events that
//! tests wait on (events, not sleeps).
//!
//! Include it with `#[path = "support/probe.rs"] mod probe;`.
#![allow(dead_code, unreachable_pub)]

#[path = "../../examples/support/otp_names.rs"]
mod otp_names;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use otp_names::OtpName;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::Notify;
use warden::supervisor::{ChildInfo, ChildSpec, Escalator, StartContext, StartError, Supervisor, SupervisorEvent};

/// What a probe can be told to do.
pub enum ProbeMsg {
    /// Answers with the probe's incarnation number (how many probes with this id started before it).
    Ping(RpcReplyPort<u64>),
    /// Panics in the handler.
    Panic,
    /// Returns an error from the handler.
    Fail,
    /// Stops itself with no reason (a normal exit).
    StopNormal,
    /// Stops itself with reason `shutdown`.
    StopShutdown,
    /// Stops itself with a reason of its own (a normal exit).
    StopWith(String),
    /// Panics inside a call, so the caller's reply port is dropped.
    PanicInCall(RpcReplyPort<u64>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for ProbeMsg {}

/// Shared knobs and counters for every probe of one test.
#[derive(Default)]
pub struct Control {
    /// The next N starts of a probe id fail in `pre_start`.
    pub init_fails: Mutex<HashMap<String, u32>>,
    /// A probe id takes this long in `post_stop` (so its shutdown can time out).
    pub slow_stop: Mutex<HashMap<String, Duration>>,
    /// How many times each probe id has started successfully.
    pub starts: Mutex<HashMap<String, u64>>,
    /// The escalator each probe id got at its last start.
    pub escalators: Mutex<HashMap<String, Escalator>>,
    /// The actor of each probe id's last start.
    pub cells: Mutex<HashMap<String, ActorCell>>,
    /// Probe ids whose `post_stop` fails (so a stop of them ends in a crash).
    pub fail_on_stop: Mutex<Vec<String>>,
    /// When the probe id (key) begins to stop, it tells the probe id (value) to panic.
    pub panic_on_stop: Mutex<HashMap<String, String>>,
    /// Notified when a probe id begins to stop.
    pub stop_began: Mutex<HashMap<String, Arc<Notify>>>,
    /// Notified when a probe id has started.
    pub started: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Control {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn fail_next_starts(&self, id: &str, n: u32) {
        self.init_fails.lock().unwrap().insert(id.to_string(), n);
    }

    pub fn slow_stop(&self, id: &str, d: Duration) {
        self.slow_stop.lock().unwrap().insert(id.to_string(), d);
    }

    pub fn starts(&self, id: &str) -> u64 {
        self.starts.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    pub fn escalator(&self, id: &str) -> Escalator {
        self.escalators.lock().unwrap()[id].clone()
    }

    /// `id`'s `post_stop` returns an error: it crashes as it is being stopped.
    pub fn fail_on_stop(&self, id: &str) {
        self.fail_on_stop.lock().unwrap().push(id.to_string());
    }

    /// When `stopping` begins to stop, it tells `victim` to panic.
    pub fn panic_on_stop(&self, stopping: &str, victim: &str) {
        self.panic_on_stop
            .lock()
            .unwrap()
            .insert(stopping.to_string(), victim.to_string());
    }

    /// Notified (once, with a stored permit) when `id` next begins to stop.
    pub fn stop_began(&self, id: &str) -> Arc<Notify> {
        notify_for(&self.stop_began, id)
    }

    /// Notified (once, with a stored permit) when `id` next has started.
    pub fn started(&self, id: &str) -> Arc<Notify> {
        notify_for(&self.started, id)
    }
}

fn notify_for(map: &Mutex<HashMap<String, Arc<Notify>>>, id: &str) -> Arc<Notify> {
    map.lock().unwrap().entry(id.to_string()).or_default().clone()
}

pub struct Probe {
    id: String,
    control: Arc<Control>,
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<ProbeMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        {
            let mut fails = self.control.init_fails.lock().unwrap();
            if let Some(n) = fails.get_mut(&self.id).filter(|n| **n > 0) {
                *n -= 1;
                return Err(format!("{} refuses to start", self.id).into());
            }
        }
        self.control
            .cells
            .lock()
            .unwrap()
            .insert(self.id.clone(), myself.get_cell());
        if let Some(started) = self.control.started.lock().unwrap().get(&self.id) {
            started.notify_one();
        }
        let mut starts = self.control.starts.lock().unwrap();
        let n = starts.entry(self.id.clone()).or_default();
        *n += 1;
        Ok(*n - 1)
    }

    async fn handle(
        &self,
        myself: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        incarnation: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Ping(reply) => {
                let _ = reply.send(*incarnation);
            }
            ProbeMsg::Panic => panic!("{} was told to panic", self.id),
            ProbeMsg::Fail => return Err(format!("{} was told to fail", self.id).into()),
            ProbeMsg::StopNormal => myself.stop(None),
            ProbeMsg::StopShutdown => myself.stop(Some("shutdown".into())),
            ProbeMsg::StopWith(reason) => myself.stop(Some(reason)),
            ProbeMsg::PanicInCall(_reply) => panic!("{} was told to panic in a call", self.id),
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<ProbeMsg>, _: &mut u64) -> Result<(), ActorProcessingErr> {
        if let Some(began) = self.control.stop_began.lock().unwrap().get(&self.id) {
            began.notify_one();
        }
        let victim = self.control.panic_on_stop.lock().unwrap().get(&self.id).cloned();
        if let Some(victim) = victim {
            let cell = self.control.cells.lock().unwrap()[&victim].clone();
            tell(&cell, ProbeMsg::Panic);
        }
        let slow = self.control.slow_stop.lock().unwrap().get(&self.id).copied();
        if let Some(d) = slow {
            tokio::time::sleep(d).await;
        }
        if self.control.fail_on_stop.lock().unwrap().contains(&self.id) {
            return Err(format!("{} failed while stopping", self.id).into());
        }
        Ok(())
    }
}

/// A permanent worker spec for a probe called `id`.
pub fn probe(id: &str, control: &Arc<Control>) -> ChildSpec {
    let (pid, control) = (id.to_string(), control.clone());
    ChildSpec::worker(id, move |ctx: StartContext| {
        let probe = Probe {
            id: pid.clone(),
            control: control.clone(),
        };
        control.escalators.lock().unwrap().insert(pid.clone(), ctx.escalator());
        async move { ctx.spawn(probe, ()).await.map(ActorCell::from) }
    })
}

/// Starts a probe called `id` from a template (of a dynamic supervisor).
pub async fn start_probe(ctx: StartContext, id: String, control: Arc<Control>) -> Result<ActorCell, StartError> {
    control.escalators.lock().unwrap().insert(id.clone(), ctx.escalator());
    ctx.spawn(Probe { id, control }, ()).await.map(ActorCell::from)
}

/// A factory that always fails, without spawning anything.
pub fn refusing(id: &str) -> ChildSpec {
    ChildSpec::worker(id, |_ctx: StartContext| async {
        Err::<ActorCell, _>(StartError::other(std::io::Error::other("refused")))
    })
}

/// The child called `id`, as `which_children` reports it.
pub async fn child(sup: &Supervisor, id: &str) -> ChildInfo {
    sup.which_children()
        .await
        .expect("supervisor is alive")
        .into_iter()
        .find(|c| c.id() == id)
        .unwrap_or_else(|| panic!("{} has no child {id}", sup.path()))
}

/// The actor of the running child called `id`.
pub async fn cell(sup: &Supervisor, id: &str) -> ActorCell {
    child(sup, id)
        .await
        .state
        .actor()
        .cloned()
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// The running child supervisor called `id`.
pub async fn sub_of(sup: &Supervisor, id: &str) -> Supervisor {
    child(sup, id)
        .await
        .supervisor()
        .unwrap_or_else(|| panic!("{id} is not a running supervisor"))
}

/// Sends a message to a running child's actor.
pub fn tell(cell: &ActorCell, msg: ProbeMsg) {
    ActorRef::<ProbeMsg>::from(cell.clone())
        .send_message(msg)
        .unwrap_or_else(|_| panic!("probe is not running"));
}

/// Pings a probe: its incarnation number, or `None` if it is gone.
pub async fn ping(cell: &ActorCell) -> Option<u64> {
    match ActorRef::<ProbeMsg>::from(cell.clone())
        .call(ProbeMsg::Ping, None)
        .await
    {
        Ok(CallResult::Success(n)) => Some(n),
        _ => None,
    }
}

/// Every supervisor event of a tree, in order, with a way to wait for one.
#[derive(Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<SupervisorEvent>>>,
    changed: Arc<Notify>,
}

impl EventLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// The observer to give to `SupervisorBuilder::observer`.
    pub fn observer(&self) -> impl Fn(&SupervisorEvent) + Send + Sync + 'static {
        let log = self.clone();
        move |e: &SupervisorEvent| {
            log.events.lock().unwrap().push(e.clone());
            log.changed.notify_waiters();
        }
    }

    pub fn events(&self) -> Vec<SupervisorEvent> {
        self.events.lock().unwrap().clone()
    }

    /// The events as conformance-trace lines: `start ID`, `init_failed ID`,
    /// `down ID REASON`, `gave_up SUP`, `auto_shutdown SUP`, `escalated AT FROM`, `stopped SUP`,
    /// `scheduled ID`, `abandoned ID`.
    /// `Restarting` events are left out: the trace shows a restart as an exit
    /// followed by a start, as OTP's does.
    pub fn lines(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| !matches!(e, SupervisorEvent::Restarting { .. }))
            .map(line)
            .collect()
    }

    /// Waits until `done` holds for the trace lines, at most 10 seconds (a
    /// deadline for a broken test, not a pause); panics with the trace if it
    /// never does.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.changed.notified();
            if done(&self.lines()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; trace so far:\n{}",
                    self.lines().join("\n")
                );
            }
        }
    }

    /// Waits until the trace contains `line` at least `n` times.
    pub async fn wait_count(&self, line: &str, n: usize) {
        self.wait_for(&format!("{n} x {line:?}"), |l| {
            l.iter().filter(|x| *x == line).count() >= n
        })
        .await
    }

    /// Waits until the trace contains `line`.
    pub async fn wait_line(&self, line: &str) {
        self.wait_count(line, 1).await
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.events.lock().unwrap().clear();
    }
}

pub fn line(e: &SupervisorEvent) -> String {
    match e {
        SupervisorEvent::ChildStarted { path, .. } => format!("start {}", path.id()),
        SupervisorEvent::ChildStartFailed { path, .. } => format!("init_failed {}", path.id()),
        SupervisorEvent::ChildExited { path, reason, .. } => format!("down {} {}", path.id(), reason.otp_name()),
        SupervisorEvent::ChildAbandoned { path, .. } => format!("abandoned {}", path.id()),
        SupervisorEvent::RestartScheduled { path, .. } => format!("scheduled {}", path.id()),
        SupervisorEvent::Restarting { path, .. } => format!("restarting {}", path.id()),
        SupervisorEvent::GaveUp { path, .. } => format!("gave_up {}", path.id()),
        SupervisorEvent::AutoShutdown { path, .. } => format!("auto_shutdown {}", path.id()),
        SupervisorEvent::Escalated { at, origin } => format!("escalated {} {}", at.id(), origin.id()),
        SupervisorEvent::Stopped { path } => format!("stopped {}", path.id()),
        other => format!("{other:?}"),
    }
}

/// A probe whose factory itself panics, before spawning anything, on the factory
/// calls numbered in `panic_on` (1 is the first start). With `in_future` the
/// panic happens inside the future the factory returns rather than in the call.
pub fn probe_with_panicking_factory(id: &str, control: &Arc<Control>, panic_on: &[u32], in_future: bool) -> ChildSpec {
    let (pid, control) = (id.to_string(), control.clone());
    let panic_on = panic_on.to_vec();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    ChildSpec::worker(id, move |ctx: StartContext| {
        let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let panics = panic_on.contains(&call);
        if panics && !in_future {
            panic!("factory of {pid} panics on call {call}");
        }
        let probe = Probe {
            id: pid.clone(),
            control: control.clone(),
        };
        let pid = pid.clone();
        async move {
            if panics {
                panic!("factory future of {pid} panics on call {call}");
            }
            ctx.spawn(probe, ()).await.map(ActorCell::from)
        }
    })
}

/// The runtime's live tasks, once those that are ending have been reaped:
/// yields (a bounded number of times, no clock) until at most `floor` are left.
pub async fn alive_tasks_settled(floor: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..1_000 {
        if metrics.num_alive_tasks() <= floor {
            break;
        }
        tokio::task::yield_now().await;
    }
    metrics.num_alive_tasks()
}
