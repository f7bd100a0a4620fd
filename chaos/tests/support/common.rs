//! Helpers shared by the warden-chaos integration tests: a worker that never
//! fails on its own unless told to, and ways to wait on a [`ChaosWatch`]
//! (events, never sleeps).
//!
//! Include it with `#[path = "support/common.rs"] mod common;`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use warden_chaos::ChaosWatch;
use warden_supervisor::{ChildInfo, ChildKind, ExitReason, Supervisor, SupervisorBuilder, SupervisorEvent};

/// How long a test waits for an event before it fails: a deadline for a broken
/// test, not a pause.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What a [`Worker`] can be told.
#[derive(Debug)]
pub enum WorkMsg {
    /// Answers with the worker's actor id.
    Ping(RpcReplyPort<u64>),
    /// Returns an error from the handler: a crash of its own.
    Fail,
    /// Does nothing.
    Poke,
}

#[cfg(feature = "cluster")]
impl ractor::Message for WorkMsg {}

/// A worker that never fails unless told to.
#[derive(Debug, Clone, Copy)]
pub struct Worker;

impl Actor for Worker {
    type Msg = WorkMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<WorkMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<WorkMsg>, msg: WorkMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkMsg::Ping(reply) => {
                let _ = reply.send(myself.get_id().pid());
            }
            WorkMsg::Fail => return Err("told to fail".into()),
            WorkMsg::Poke => {}
        }
        Ok(())
    }
}

/// The child `id` of `sup`, as `which_children` reports it.
pub async fn child(sup: &Supervisor, id: &str) -> ChildInfo {
    sup.which_children()
        .await
        .expect("supervisor is alive")
        .into_iter()
        .find(|c| c.id() == id)
        .unwrap_or_else(|| panic!("{} has no child {id}", sup.path()))
}

/// The actor of the running child `id` of `sup`.
pub async fn cell(sup: &Supervisor, id: &str) -> ActorCell {
    child(sup, id)
        .await
        .state
        .actor()
        .cloned()
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// The running child supervisor `id` of `sup`.
pub async fn sub(sup: &Supervisor, id: &str) -> Supervisor {
    child(sup, id)
        .await
        .supervisor()
        .unwrap_or_else(|| panic!("{id} is not a running supervisor"))
}

/// The worker ref of a cell.
/// The root supervisor `root`, at most `max_restarts` restarts in 1 s, recorded
/// by `watch` (its observer, and its escalation handler at the root).
pub fn watched_root(watch: &ChaosWatch, max_restarts: u32) -> SupervisorBuilder {
    Supervisor::builder("root")
        .intensity(max_restarts, Duration::from_secs(1))
        .observer(watch.observer())
        .escalation_handler(watch.root_handler())
}

pub fn worker(cell: &ActorCell) -> ActorRef<WorkMsg> {
    ActorRef::from(cell.clone())
}

/// Waits until `n` events after the first `skip` match `predicate`; returns
/// the index of the last one. Panics (with the events so far) after
/// [`PATIENCE`].
pub async fn wait_count(
    watch: &ChaosWatch,
    skip: usize,
    n: usize,
    what: &str,
    predicate: impl Fn(&SupervisorEvent) -> bool,
) -> usize {
    let mut next = skip;
    let mut last = skip;
    for _ in 0..n {
        match watch.wait_for(next, &predicate, PATIENCE).await {
            Some((index, _, _)) => {
                last = index;
                next = index + 1;
            }
            None => panic!("timed out waiting for {n} x {what}; events:\n{:#?}", watch.events()),
        }
    }
    last
}

/// Waits for one event after `skip` matching `predicate`; returns its index.
pub async fn wait_one(
    watch: &ChaosWatch,
    skip: usize,
    what: &str,
    predicate: impl Fn(&SupervisorEvent) -> bool,
) -> usize {
    wait_count(watch, skip, 1, what, predicate).await
}

/// `ChildStarted` at `path`.
pub fn started(path: &str) -> impl Fn(&SupervisorEvent) -> bool + '_ {
    move |e| matches!(e, SupervisorEvent::ChildStarted { path: p, .. } if p.as_str() == path)
}

/// `Restarting` at `path`.
pub fn restarting(path: &str) -> impl Fn(&SupervisorEvent) -> bool + '_ {
    move |e| matches!(e, SupervisorEvent::Restarting { path: p, .. } if p.as_str() == path)
}

/// `ChildExited` at `path` with a reason that `reason` accepts.
pub fn exited<'a>(path: &'a str, reason: impl Fn(&ExitReason) -> bool + 'a) -> impl Fn(&SupervisorEvent) -> bool + 'a {
    move |e| matches!(e, SupervisorEvent::ChildExited { path: p, reason: r, .. } if p.as_str() == path && reason(r))
}

/// Any `ChildExited` of a worker or supervisor, whatever the reason.
pub fn any_exit(e: &SupervisorEvent) -> bool {
    matches!(e, SupervisorEvent::ChildExited { .. })
}

/// Any `ChildStarted` of a worker.
pub fn any_worker_start(e: &SupervisorEvent) -> bool {
    matches!(
        e,
        SupervisorEvent::ChildStarted {
            kind: ChildKind::Worker,
            ..
        }
    )
}

/// Any `ChildExited` with reason `Killed`.
pub fn exited_killed(e: &SupervisorEvent) -> bool {
    matches!(
        e,
        SupervisorEvent::ChildExited {
            reason: ExitReason::Killed,
            ..
        }
    )
}
