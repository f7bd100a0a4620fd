//! Structured output: ask for an answer shaped by a Rust type's JSON Schema and get the type back.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::Model;
use super::error::ModelError;
use super::types::{ChatRequest, ChatResponse, Message, ResponseFormat};

/// A parsed structured answer.
#[derive(Clone, Debug)]
pub struct Structured<T> {
    /// The answer as the requested type.
    pub value: T,
    /// The model's final response (its text is the JSON); its usage counts only the last call.
    pub response: ChatResponse,
    /// How many repair rounds were needed (0 if the first answer parsed).
    pub repairs: u32,
}

/// A schema name providers accept: `[a-zA-Z0-9_-]{1,64}`.
pub(crate) fn schema_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() { "answer".to_owned() } else { name }
}

/// The system-prompt instruction that asks for `schema` when the server is not asked to
/// enforce it (Anthropic, and the `json_object` and `prompt` modes).
pub(crate) fn schema_instruction(schema: &serde_json::Value) -> String {
    format!(
        "Answer with a single JSON value and nothing else (no prose, no code fence). It must match this JSON Schema:\n{schema}"
    )
}

/// The JSON inside the answer: the text, without a Markdown code fence if there is one.
pub(crate) fn json_text(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let rest = rest.split_once('\n').map_or(rest, |(_lang, body)| body);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// The repair rounds of one structured answer: how many an invalid answer may still get,
/// and what the model is told then. The one policy for `chat_structured`, the ReAct agent's
/// structured replies and the router's decisions.
pub(crate) struct Repairs {
    used: u32,
    limit: u32,
}

impl Repairs {
    /// At most `limit` repair rounds.
    pub(crate) fn new(limit: u32) -> Self {
        Self { used: 0, limit }
    }

    /// After an invalid answer (`problem` says why): the message that asks the model to
    /// `instruction` (such as [`Repairs::JSON_AGAIN`]), or `None` when the rounds are used
    /// up.
    pub(crate) fn ask_again(&mut self, problem: &str, instruction: &str) -> Option<Message> {
        if self.used >= self.limit {
            return None;
        }
        self.used += 1;
        Some(Message::user(format!(
            "That answer is not valid: {problem}. {instruction}"
        )))
    }

    /// What the model is asked to do when a JSON answer did not match its schema.
    pub(crate) const JSON_AGAIN: &str = "Reply again with only the JSON value, matching the schema exactly.";

    /// Repair rounds used so far.
    pub(crate) fn used(&self) -> u32 {
        self.used
    }
}

impl Model {
    /// Asks for an answer matching `T`'s JSON Schema and parses it into `T`.
    ///
    /// How the schema is asked for is the model's [`StructuredOutput`](super::StructuredOutput)
    /// setting: by default OpenAI's `response_format: json_schema`, and when a server refuses
    /// it (llama.cpp's and llama-cpp-python's servers may), `json_object` with the schema in
    /// the system prompt, then the system prompt alone (see [`StructuredMode`](super::StructuredMode)).
    /// The Anthropic provider always puts the schema in the system prompt. Whatever the mode,
    /// the answer is parsed as `T`; if it does not parse, the model is shown
    /// its answer and the parse error and asked again, up to the model's
    /// [repair rounds](Model::with_repair_rounds) (default 1).
    ///
    /// # Examples
    ///
    /// See the [module docs](super).
    ///
    /// # Errors
    ///
    /// [`ModelError::StructuredOutputInvalid`] when the last answer still does not parse, or
    /// the error of a failed call (after retries).
    ///
    /// # Cancellation
    ///
    /// As [`Model::chat`]; a cancelled repair round loses the earlier answers.
    pub async fn chat_structured<T>(&self, req: &ChatRequest) -> Result<Structured<T>, ModelError>
    where
        T: DeserializeOwned + JsonSchema,
    {
        let schema = schemars::schema_for!(T);
        let format = ResponseFormat::new(schema_name(&T::schema_name()), schema.to_value());
        let mut request: Cow<'_, ChatRequest> = Cow::Borrowed(req);
        request.to_mut().response_format = Some(format);
        let mut repairs = Repairs::new(self.inner.repair_rounds);
        loop {
            let response = self.chat(&request).await?;
            let text = response.text();
            match serde_json::from_str::<T>(json_text(&text)) {
                Ok(value) => {
                    return Ok(Structured {
                        value,
                        response,
                        repairs: repairs.used(),
                    });
                }
                Err(source) => {
                    let Some(again) = repairs.ask_again(&source.to_string(), Repairs::JSON_AGAIN) else {
                        return Err(ModelError::StructuredOutputInvalid {
                            attempts: repairs.used() + 1,
                            source,
                        });
                    };
                    tracing::debug!(model = %self.name(), error = %source, "structured answer invalid, asking for a repair");
                    let messages = &mut request.to_mut().messages;
                    messages.push(Message::assistant(text));
                    messages.push(again);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_are_stripped() {
        assert_eq!(json_text("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(json_text("```\n[1]\n```"), "[1]");
        assert_eq!(json_text("  {\"a\":1} "), "{\"a\":1}");
    }

    #[test]
    fn schema_names_are_sanitised() {
        assert_eq!(schema_name("Vec<City>"), "Vec_City_");
        assert_eq!(schema_name(""), "answer");
    }
}
