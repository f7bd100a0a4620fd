//! The errors of the supervisor API.

use std::time::Duration;

use ractor::ActorCell;

use crate::factory::StartError;
use crate::path::ChildPath;

/// A call to a supervisor that is not alive (OTP's `noproc`). Permanent for
/// this handle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("supervisor {supervisor} is not alive")]
pub struct NoProc {
    /// The supervisor called.
    pub supervisor: ChildPath,
}

/// A supervisor that did not answer a call within its deadline: it is alive
/// but busy (stopping a slow child, starting one). Transient.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("supervisor {supervisor} did not answer within {deadline:?}")]
pub struct CallTimeout {
    /// The supervisor called.
    pub supervisor: ChildPath,
    /// The deadline the call was given.
    pub deadline: Duration,
}

/// Why a call with a deadline (`which_children_within`, ...) got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The supervisor is not alive. Permanent for this handle.
    #[error(transparent)]
    NoProc(NoProc),
    /// It did not answer in time. Transient.
    #[error(transparent)]
    Timeout(CallTimeout),
}

/// The answers of the child-management calls that are not success, named as OTP names them.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// `start_child` of an id that is running (OTP's `{already_started, Pid}`).
    #[error("child is already started")]
    AlreadyStarted(ActorCell),
    /// `start_child` of an id whose spec is kept but not running (OTP's `already_present`).
    #[error("child spec is already present")]
    AlreadyPresent,
    /// `restart_child` or `delete_child` of a running child.
    #[error("child is running")]
    Running,
    /// `restart_child` or `delete_child` of a child whose restart is pending.
    #[error("child is restarting")]
    Restarting,
    /// No child with that id.
    #[error("no such child")]
    NotFound,
    /// The child's start failed; for `start_child` the spec is discarded, for
    /// `restart_child` it stays, not running.
    #[error(transparent)]
    StartFailed(StartError),
    /// The spec was refused before anything was started.
    #[error(transparent)]
    InvalidSpec(SpecError),
    /// The supervisor is not alive.
    #[error(transparent)]
    NoProc(NoProc),
    /// A call a [`DynamicSupervisor`](crate::DynamicSupervisor) does not serve:
    /// a child spec, a child id, `restart_child` or `delete_child` (OTP's
    /// `{error, simple_one_for_one}`).
    #[error("not supported by a simple_one_for_one supervisor")]
    SimpleOneForOne,
    /// Arguments of another type than the dynamic supervisor's template takes.
    #[error("the template takes arguments of type {expected}")]
    WrongArguments {
        /// The template's argument type.
        expected: &'static str,
    },
    /// The supervisor did not answer within the call's deadline (only from
    /// the `*_within` calls); the call may still take effect.
    #[error(transparent)]
    Timeout(CallTimeout),
}

impl From<CallError> for ChildError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NoProc(e) => Self::NoProc(e),
            CallError::Timeout(e) => Self::Timeout(e),
        }
    }
}

/// A supervisor or child spec that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Two children of one supervisor share an id (OTP's `duplicate_child_name`).
    #[error("duplicate child id {0:?}")]
    DuplicateChild(String),
    /// An id that is empty or contains `/`.
    #[error("invalid id {0:?}: ids are non-empty and contain no '/'")]
    InvalidId(String),
    /// A restart period of zero (OTP's `invalid_period`).
    #[error("restart period must be longer than zero")]
    InvalidPeriod,
    /// A significant child under a supervisor whose auto-shutdown is
    /// [`AutoShutdown::Never`](crate::AutoShutdown::Never) (OTP's
    /// `{bad_combination, [{auto_shutdown, never}, {significant, true}]}`).
    #[error("child {0:?} is significant, but its supervisor's auto_shutdown is never")]
    SignificantWithoutAutoShutdown(String),
    /// A significant child that is permanent (OTP's
    /// `{bad_combination, [{restart, permanent}, {significant, true}]}`): a
    /// permanent child is always restarted, so its exit never counts.
    #[error("child {0:?} is significant and permanent: a significant child is transient or temporary")]
    SignificantPermanent(String),
}

/// Why a supervisor did not start.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// Its spec was refused; nothing was started.
    #[error("invalid supervisor spec: {0}")]
    InvalidSpec(#[from] SpecError),
    /// A child failed to start; the children started before it were stopped, in
    /// reverse start order (OTP's `{shutdown, {failed_to_start_child, Id, Reason}}`).
    #[error("child {child} failed to start: {source}")]
    ChildFailedToStart {
        /// The child that failed.
        child: ChildPath,
        /// Why.
        source: StartError,
    },
    /// ractor refused to spawn the supervisor itself.
    #[error("supervisor could not be spawned: {0}")]
    Spawn(StartError),
}
