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
        // A durable turn: the question is a step. Answered before a crash, the answer comes
        // back; asked before, it keeps its first deadline and can be answered in the journal.
        let mut deadline = deadline;
        let mut durable = None;
        match self.begin_step(warden_durable::StepKind::Human, "ask_human", true)? {
            None => {}
            Some(super::StepSlot::Recorded { step, result }) => return super::durable::decode(step, &result),
            Some(super::StepSlot::Fresh(writer)) => {
                let journal = self.durable.as_ref().map(|d| d.journal.clone());
                if let Some(journal) = journal {
                    let asked = journal
                        .ask(writer.id(), &self.name, &question, deadline)
                        .await
                        .map_err(TurnError::journal)?;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    deadline = Duration::from_millis(asked.deadline_ms.saturating_sub(now));
                    durable = Some((journal, writer, asked.deadline_ms));
                }
            }
        }
        let answer = self
            .wait_for_human(
                question,
                deadline,
                durable.as_ref().map(|(j, w, d)| (j.clone(), w.id(), *d)),
            )
            .await?;
        if let Some((_, writer, _)) = durable {
            writer.done_with(&answer).await?;
        }
        Ok(answer)
    }

    async fn wait_for_human(
        &mut self,
        question: String,
        deadline: Duration,
        journaled: Option<(warden_durable::Journal, warden_durable::StepId, u64)>,
    ) -> Result<String, TurnError> {
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
        // An answer written into the journal (`warden journal answer`, another process).
        let mut from_journal: BoxFuture<'static, Result<Option<String>, warden_durable::JournalError>> = match journaled
        {
            Some((journal, step, deadline_ms)) => Box::pin(async move { journal.wait_answer(step, deadline_ms).await }),
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
                answered = &mut from_journal => match answered {
                    Ok(Some(text)) => break Ok(text),
                    Ok(None) => break Err(TurnError::HumanTimeout(deadline)),
                    Err(error) => break Err(TurnError::journal(error)),
                },
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
