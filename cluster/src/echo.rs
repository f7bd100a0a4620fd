//! [`Echo`]: a small remote-capable actor every node registers as the kind `echo`, to check a
//! cluster end to end (and to measure it): it answers pings with where it runs, and fails
//! or stops on request with the reason it is given.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};

use crate::kind::{HostContext, Kind, RemoteKind};

/// The name every node registers [`Echo`] under.
pub const ECHO_KIND: &str = "echo";

/// What an [`Echo`] is asked. It crosses nodes: ractor_cluster carries it.
#[derive(RactorClusterMessage, Debug)]
pub enum EchoMsg {
    /// Answers `"<tag>@<node>: <text>"`.
    #[rpc]
    Ping(String, RpcReplyPort<String>),
    /// Counts a note (for throughput: a cast that does nothing else).
    Note(String),
    /// How many notes it has counted.
    #[rpc]
    Notes(String, RpcReplyPort<u64>),
    /// Fails with this error (an abnormal exit, reported with its text).
    Crash(String),
    /// Stops with this reason (`"normal"` and `"shutdown"` are normal exits).
    Exit(String),
}

/// An echo's arguments: a tag it answers with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EchoArgs {
    /// Put in front of every answer.
    pub tag: String,
}

/// The echo actor.
#[derive(Debug)]
pub struct Echo;

/// An echo's state: its tag and its node.
#[derive(Debug)]
pub struct EchoState {
    prefix: String,
    notes: u64,
}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = EchoState;
    type Arguments = (EchoArgs, String);

    async fn pre_start(
        &self,
        _: ActorRef<EchoMsg>,
        (args, node): (EchoArgs, String),
    ) -> Result<EchoState, ActorProcessingErr> {
        Ok(EchoState {
            prefix: format!("{}@{node}", args.tag),
            notes: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<EchoMsg>,
        message: EchoMsg,
        state: &mut EchoState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EchoMsg::Ping(text, reply) => {
                // The asker may have given up.
                let _ = reply.send(format!("{}: {text}", state.prefix));
            }
            EchoMsg::Note(_) => state.notes += 1,
            EchoMsg::Notes(_, reply) => {
                let _ = reply.send(state.notes);
            }
            EchoMsg::Crash(error) => return Err(error.into()),
            EchoMsg::Exit(reason) => myself.stop(Some(reason)),
        }
        Ok(())
    }
}

/// The `echo` kind.
pub fn echo_kind() -> impl RemoteKind {
    Kind::actor(|ctx: &HostContext, args: EchoArgs| (Echo, (args, ctx.node().to_string())))
}
