//! Compile-time checks, in tokio's style, that the public types users hold and
//! pass between tasks are `Send`/`Sync` where they should be, that the errors
//! are `Send + Sync + 'static + std::error::Error` (so they fit in
//! `anyhow::Error` and `Box<dyn Error + Send + Sync>`), and that the futures of
//! the handle's methods can be spawned. If this file compiles, the checks pass.

use std::time::Duration;

use warden::supervisor::{
    Backoff, ChildCounts, ChildError, ChildFailure, ChildInfo, ChildKind, ChildPath, ChildSpec, ChildState, Concern,
    Disposition, Escalation, EscalationError, EscalationKind, Escalator, ExitReason, Failure, GiveUp, Intensity,
    NoProc, NodeSnapshot, NodeState, Responder, Restart, Shutdown, SpawnError, SpecError, StartError, Strategy,
    Supervisor, SupervisorBuilder, SupervisorEvent, TreeSnapshot,
};

fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}
fn is_send_sync_static<T: Send + Sync + 'static>() {}
fn is_error<T: std::error::Error + Send + Sync + 'static>() {}
fn is_unpin<T: Unpin>() {}
fn require_send<T: Send>(_: &T) {}

#[test]
fn handles_and_specs_are_send_and_sync() {
    is_send_sync_static::<Supervisor>();
    is_send_sync_static::<ChildSpec>();
    is_send_sync_static::<Escalator>();
    is_send::<SupervisorBuilder>();
    is_send_sync_static::<Backoff>();
    is_send_sync_static::<Restart>();
    is_send_sync_static::<Shutdown>();
    is_send_sync_static::<Strategy>();
    is_send_sync_static::<ChildKind>();
    is_send_sync_static::<Intensity>();
    is_send_sync_static::<ChildPath>();
    is_unpin::<Supervisor>();
}

#[test]
fn escalations_can_cross_tasks() {
    is_send::<Escalation>();
    is_send::<Responder>();
    is_send::<Disposition>();
    is_send_sync_static::<EscalationKind>();
    is_send_sync_static::<GiveUp>();
    is_send_sync_static::<ChildFailure>();
    is_send_sync_static::<Concern>();
    is_send::<tokio::sync::mpsc::UnboundedReceiver<Escalation>>();
}

#[test]
fn reports_are_send_and_sync() {
    is_send_sync_static::<SupervisorEvent>();
    is_send_sync_static::<ExitReason>();
    is_send_sync_static::<Failure>();
    is_send_sync_static::<ChildInfo>();
    is_send_sync_static::<ChildState>();
    is_send_sync_static::<ChildCounts>();
    is_send_sync_static::<TreeSnapshot>();
    is_send_sync_static::<NodeSnapshot>();
    is_send_sync_static::<NodeState>();
    is_sync::<SupervisorEvent>();
}

#[test]
fn errors_are_send_sync_static_errors() {
    is_error::<ChildError>();
    is_error::<NoProc>();
    is_error::<SpawnError>();
    is_error::<SpecError>();
    is_error::<StartError>();
    is_error::<EscalationError>();
    // And so they convert into the usual boxed errors.
    let _: fn(ChildError) -> anyhow::Error = anyhow::Error::from;
    let _: fn(SpawnError) -> Box<dyn std::error::Error + Send + Sync> = Into::into;
}

/// The futures of the handle's methods are `Send`, so a call can be made from
/// a spawned task. Type-checked only: the closures are never called.
#[test]
fn handle_futures_are_send() {
    let _ = |sup: Supervisor, spec: ChildSpec| {
        require_send(&sup.start_child(spec));
        require_send(&sup.terminate_child("a"));
        require_send(&sup.restart_child("a"));
        require_send(&sup.delete_child("a"));
        require_send(&sup.which_children());
        require_send(&sup.count_children());
        require_send(&sup.snapshot());
        require_send(&sup.stop());
        require_send(&sup.wait());
    };
    let _ = |builder: SupervisorBuilder| require_send(&builder.spawn());
    let _ = |esc: Escalator| {
        require_send(&esc.request::<u32, u32>(1, Duration::from_secs(1)));
    };
}
