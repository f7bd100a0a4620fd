//! Human in the loop: a turn asks a [`HumanQuestion`] up the tree and waits for a
//! [`HumanAnswer`], or for input sent straight to the agent.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use warden_supervisor::EscalationError;

use super::actor::AgentMsg;
use super::error::TurnError;
use super::event::AgentEventKind;
use super::turn::TurnContext;

/// A question an agent escalates to a human, through its supervisor's
/// [escalation handler](warden_supervisor::SupervisorBuilder::escalation_handler). Answer it
/// with a [`HumanAnswer`] (see [`TurnContext::ask_human`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HumanQuestion {
    /// The agent asking.
    pub agent: Arc<str>,
    /// The question.
    pub question: String,
}

/// A human's answer to a [`HumanQuestion`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HumanAnswer(pub String);

impl HumanAnswer {
    /// An answer.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl TurnContext {
    /// Suspends the turn until a human answers `question`, at most `deadline`.
    ///
    /// The question is escalated as a [`HumanQuestion`] that expects a [`HumanAnswer`]
    /// ([`Escalator::request`](warden_supervisor::Escalator::request)): whoever handles it up the tree answers through its
    /// [`Responder`](warden_supervisor::Responder), now or later. The answer may also come
    /// straight to the agent through [`AgentRef::human_input`](super::AgentRef::human_input).
    /// While it waits the agent uses no CPU and still handles control messages.
    ///
    /// # Errors
    ///
    /// [`TurnError::HumanTimeout`] at the deadline (also when nobody up the tree handles
    /// the question and no input comes).
    ///
    /// # Cancellation
    ///
    /// Dropping the future (an interrupt) withdraws the question: a later answer through the
    /// responder gets [`EscalationError::RequesterGone`].
    pub async fn ask_human(&mut self, question: impl Into<String>, deadline: Duration) -> Result<String, TurnError> {
        let question = question.into();
        self.emit(AgentEventKind::WaitingForHuman {
            question: question.clone(),
        });
        let _ = self.myself.send_message(AgentMsg::Waiting {
            turn: self.turn,
            waiting: true,
        });
        let concern = HumanQuestion {
            agent: self.name.clone(),
            question,
        };
        let mut escalation: BoxFuture<'static, Result<HumanAnswer, EscalationError>> = match self.escalator.clone() {
            Some(escalator) => Box::pin(async move { escalator.request(concern, deadline).await }),
            None => Box::pin(futures::future::pending()),
        };
        let until = tokio::time::sleep(deadline);
        tokio::pin!(until);
        let answer = loop {
            tokio::select! {
                answer = &mut escalation => match answer {
                    Ok(HumanAnswer(text)) => break Ok(text),
                    Err(EscalationError::Timeout) => break Err(TurnError::HumanTimeout(deadline)),
                    // Nobody up the tree takes it: input straight to the agent may still come.
                    Err(_) => escalation = Box::pin(futures::future::pending()),
                },
                Some(text) = self.human.recv() => break Ok(text),
                () = &mut until => break Err(TurnError::HumanTimeout(deadline)),
            }
        };
        let _ = self.myself.send_message(AgentMsg::Waiting {
            turn: self.turn,
            waiting: false,
        });
        answer
    }
}
