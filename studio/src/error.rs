//! The studio's errors.

use thiserror::Error;

/// Why an answer to an escalation was not delivered.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// No escalation with this id waits here: answered already, closed, or never here.
    #[error("no escalation {0} waits for an answer")]
    Unknown(u64),
    /// Whoever asked stopped waiting (its turn ended, or it was interrupted).
    #[error("the asker of escalation {0} no longer waits")]
    AskerGone(u64),
    /// The escalation is a followed node's, and that node could not be told.
    #[error("the node that raised it could not be told: {0}")]
    Remote(String),
}

/// Why a studio server did not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}
