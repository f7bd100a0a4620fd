//! What node controllers say to each other, and how it crosses the wire.
//!
//! Every message between two nodes' controllers is one [`Wire`] value, written by
//! `warden_agents::codec::to_wire` (the one module that knows the binary form) into the
//! payload of one of ractor_cluster's casts. A payload that does not decode is dropped by
//! ractor before it reaches the controller, so a hostile or broken peer cannot crash it.

use serde::{Deserialize, Serialize};
use warden_supervisor::ExitReason;

/// The name of the ractor_cluster cast that carries a [`Wire`] message.
const WIRE_VARIANT: &str = "warden.wire";

/// One message between two nodes' controllers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Wire {
    /// "I am alive": sent every heartbeat interval to every connected peer, and at once
    /// when a session becomes ready.
    Heartbeat(Heartbeat),
    /// After a session becomes ready: the children the sender (their origin) believes the
    /// receiver hosts for it. The receiver stops every other child it hosts for the sender,
    /// so that a child restarted elsewhere during a partition never runs twice.
    Sync {
        /// The origin's name.
        origin: String,
        /// The origin's incarnation.
        incarnation: u64,
        /// The children still running there, by the origin's child number.
        alive: Vec<u64>,
    },
    /// Start a child of a registered kind, for a supervisor on the origin.
    Spawn {
        /// The origin's name.
        origin: String,
        /// The origin's incarnation.
        incarnation: u64,
        /// The origin's number for this child.
        child: u64,
        /// The registered kind.
        kind: String,
        /// The kind's arguments, encoded by the origin.
        args: Vec<u8>,
        /// The child's path in the origin's tree (for logs and introspection).
        path: String,
    },
    /// The answer to [`Wire::Spawn`].
    Spawned {
        /// The origin's number for the child.
        child: u64,
        /// The child's pid on the host, or why it did not start.
        result: Result<u64, String>,
    },
    /// Stop a hosted child: asked to stop (`shutdown`), or killed.
    Stop {
        /// The origin's name.
        origin: String,
        /// The origin's number for the child.
        child: u64,
        /// Kill it rather than ask it to stop.
        kill: bool,
    },
    /// A hosted child ended, and why.
    Exited {
        /// The origin's number for the child.
        child: u64,
        /// Why it ended.
        reason: WireExit,
    },
}

/// A node's heartbeat: who it is and what it offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    /// The sender's name.
    pub(crate) node: String,
    /// The sender's incarnation: new on every start of the node.
    pub(crate) incarnation: u64,
    /// Where the sender listens, for reconnection.
    pub(crate) listen: String,
    /// The kinds of child it can start.
    pub(crate) kinds: Vec<String>,
    /// How many children it hosts now.
    pub(crate) hosted: u32,
}

/// Why a remote child ended, as its supervisor on the origin will see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireExit {
    /// `normal`.
    Normal,
    /// `shutdown`.
    Shutdown,
    /// Stopped with a reason of its own.
    Stopped(String),
    /// Killed.
    Killed,
    /// Panicked or returned an error: the error's text.
    Failed(String),
}

impl From<&ExitReason> for WireExit {
    fn from(reason: &ExitReason) -> Self {
        match reason {
            ExitReason::Normal => Self::Normal,
            ExitReason::Shutdown => Self::Shutdown,
            ExitReason::Stopped(r) => Self::Stopped(r.to_string()),
            ExitReason::Killed => Self::Killed,
            ExitReason::Failed(f) => Self::Failed(f.to_string()),
            // ExitReason is non-exhaustive: anything new travels as its text.
            other => Self::Stopped(other.to_string()),
        }
    }
}

/// Encodes a wire message as a ractor_cluster cast payload.
pub(crate) fn encode(wire: &Wire) -> Option<ractor::message::SerializedMessage> {
    match warden_agents::codec::to_wire(wire) {
        Ok(args) => Some(ractor::message::SerializedMessage::Cast {
            variant: WIRE_VARIANT.to_string(),
            args,
            metadata: None,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "a cluster message could not be encoded; not sent");
            None
        }
    }
}

/// Decodes a ractor_cluster payload into a wire message; `None` for anything else.
pub(crate) fn decode(message: ractor::message::SerializedMessage) -> Option<Wire> {
    match message {
        ractor::message::SerializedMessage::Cast { variant, args, .. } if variant == WIRE_VARIANT => {
            match warden_agents::codec::from_wire(&args) {
                Ok(wire) => Some(wire),
                Err(e) => {
                    tracing::warn!(error = %e, "dropped a cluster message that does not decode");
                    None
                }
            }
        }
        _ => {
            tracing::warn!("dropped a cluster message of an unknown kind");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_garbage_is_refused() {
        let messages = [
            Wire::Heartbeat(Heartbeat {
                node: "a".into(),
                incarnation: 7,
                listen: "127.0.0.1:1".into(),
                kinds: vec!["echo".into()],
                hosted: 3,
            }),
            Wire::Sync {
                origin: "o".into(),
                incarnation: 1,
                alive: vec![1, 2],
            },
            Wire::Spawn {
                origin: "o".into(),
                incarnation: 1,
                child: 9,
                kind: "echo".into(),
                args: vec![1, 2, 3],
                path: "root/w".into(),
            },
            Wire::Spawned {
                child: 9,
                result: Err("no such kind".into()),
            },
            Wire::Stop {
                origin: "o".into(),
                child: 9,
                kill: true,
            },
            Wire::Exited {
                child: 9,
                reason: WireExit::Failed("boom".into()),
            },
        ];
        for message in messages {
            let encoded = encode(&message).unwrap();
            assert_eq!(decode(encoded), Some(message));
        }
        let garbage = ractor::message::SerializedMessage::Cast {
            variant: WIRE_VARIANT.into(),
            args: vec![1, 0xff, 0xff, 0xff],
            metadata: None,
        };
        assert_eq!(decode(garbage), None);
    }
}
