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

/// The JSON inside the answer: the text, without a Markdown code fence if there is one.
pub(crate) fn json_text(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let rest = rest.split_once('\n').map_or(rest, |(_lang, body)| body);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

impl Model {
    /// Asks for an answer matching `T`'s JSON Schema and parses it into `T`.
    ///
    /// The schema is sent as OpenAI's `response_format: json_schema` (the Anthropic provider
    /// puts it in the system prompt). If the answer does not parse as `T`, the model is shown
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
        let format = ResponseFormat {
            name: schema_name(&T::schema_name()),
            schema: schema.to_value(),
        };
        let mut request: Cow<'_, ChatRequest> = Cow::Borrowed(req);
        request.to_mut().response_format = Some(format);
        let mut repairs = 0;
        loop {
            let response = self.chat(&request).await?;
            let text = response.text();
            match serde_json::from_str::<T>(json_text(&text)) {
                Ok(value) => {
                    return Ok(Structured {
                        value,
                        response,
                        repairs,
                    });
                }
                Err(source) if repairs >= self.inner.repair_rounds => {
                    return Err(ModelError::StructuredOutputInvalid {
                        attempts: repairs + 1,
                        source,
                    });
                }
                Err(error) => {
                    tracing::debug!(model = %self.name(), %error, "structured answer invalid, asking for a repair");
                    let messages = &mut request.to_mut().messages;
                    messages.push(Message::assistant(text));
                    messages.push(Message::user(format!(
                        "That answer is not valid: {error}. Reply again with only the JSON value, matching the schema exactly."
                    )));
                    repairs += 1;
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
