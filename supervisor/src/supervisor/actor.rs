//! The supervisor as a ractor actor: it only translates ractor's callbacks into
//! calls on [`State`]; every decision is made there.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::state::{Next, State};
use super::{Config, SupervisorMsg};
use crate::error::SpawnError;
use crate::event::{EventSink, SupervisorEvent};
use crate::exit::{EventKind, ExitReason, SHUTDOWN};
use crate::factory::StartError;
use crate::path::ChildPath;

/// The supervisor behaviour. All state is in [`State`].
pub(crate) struct SupervisorActor;

/// What a supervisor incarnation starts from.
pub(crate) struct Args {
    pub(crate) config: Arc<Config>,
    pub(crate) path: ChildPath,
    pub(crate) parent: Option<ActorRef<SupervisorMsg>>,
    /// Where this supervisor's events go: its own observer's channel, or the
    /// one it inherited.
    pub(crate) observer: Option<EventSink>,
    /// Whether the observer is its own (then its stop waits for its delivery).
    pub(crate) owns_observer: bool,
}

/// A child failed while the supervisor started; returned from `pre_start`, so
/// ractor hands it to the spawner as `SpawnErr::StartupFailed`.
#[derive(Debug, thiserror::Error)]
#[error("child {child} failed to start: {source}")]
pub(crate) struct StartFailure {
    child: ChildPath,
    source: StartError,
}

impl StartFailure {
    pub(crate) fn into_spawn_error(self) -> SpawnError {
        SpawnError::ChildFailedToStart {
            child: self.child,
            source: self.source,
        }
    }
}

impl Actor for SupervisorActor {
    type Msg = SupervisorMsg;
    type State = State;
    type Arguments = Args;

    /// OTP's `init`: start the children in order. A failure stops the ones
    /// started and fails the spawn; it is not a restart.
    async fn pre_start(&self, myself: ActorRef<SupervisorMsg>, args: Args) -> Result<State, ActorProcessingErr> {
        let mut state = State::new(myself, &args, args.path.clone(), args.parent.clone());
        match state.init_children().await {
            Ok(()) => Ok(state),
            Err((child, source)) => Err(Box::new(StartFailure { child, source })),
        }
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let next = state.handle(msg).await;
        state.end_turn();
        if next == Next::Exit {
            myself.stop(Some(SHUTDOWN.to_string()));
        }
        Ok(())
    }

    /// The one place that reads ractor's supervision events (through
    /// [`ExitReason::from_event`]). Overridden because ractor's default stops
    /// the parent when any child exits.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match ExitReason::from_event(event) {
            EventKind::Exit {
                cell,
                reason,
                state: final_state,
            } => {
                let next = state.on_exit(cell, reason, final_state).await;
                state.end_turn();
                if next == Next::Exit {
                    myself.stop(Some(SHUTDOWN.to_string()));
                }
            }
            EventKind::Started => {}
            EventKind::Other(other) => {
                tracing::debug!(target: "warden::supervisor", path = %state.path(), event = %other, "supervision event ignored")
            }
        }
        Ok(())
    }

    /// After a [`SupervisorMsg::Terminate`] every child has already been stopped,
    /// step by step. After a ractor stop (a give-up, or someone stopping the
    /// actor directly) the children still running are stopped here, in order,
    /// before ractor tears the actor down (which would kill them at once).
    async fn post_stop(&self, _myself: ActorRef<SupervisorMsg>, state: &mut State) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        state.emit(SupervisorEvent::Stopped {
            path: state.path().clone(),
        });
        state.flush_own_observer().await;
        Ok(())
    }
}
