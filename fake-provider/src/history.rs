//! The history checks real providers make before they answer, so that a client that sends a
//! conversation a provider would reject gets the same 400 from the fake provider.
//!
//! Both providers reject a tool call without a result, a result without a call, and a result
//! that is not where they expect it; the messages below are theirs, shortened.

use std::collections::HashSet;

use serde_json::Value;

use crate::wire::Format;

/// Checks the `messages` of a request body in `format`; the error is the provider's message.
pub(crate) fn check(format: Format, body: &Value) -> Result<(), String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err("messages: field required".to_owned());
    };
    match format {
        Format::OpenAi => check_openai(messages),
        Format::Anthropic => check_anthropic(messages),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An assistant message with `tool_calls` must be followed by one `tool` message per call id,
/// before any other message; a `tool` message must answer a call of that assistant message.
fn check_openai(messages: &[Value]) -> Result<(), String> {
    let mut pending: Vec<String> = Vec::new();
    let mut open: HashSet<String> = HashSet::new();
    for (i, message) in messages.iter().enumerate() {
        let role = str_field(message, "role").unwrap_or_default();
        if role == "tool" {
            let id = str_field(message, "tool_call_id").unwrap_or_default();
            if !open.remove(id) {
                return Err(format!(
                    "messages.[{i}]: messages with role 'tool' must be a response to a preceding message with 'tool_calls' (tool_call_id `{id}`)"
                ));
            }
            pending.retain(|p| p != id);
            continue;
        }
        if !pending.is_empty() {
            return Err(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                pending.join(", ")
            ));
        }
        open.clear();
        if !matches!(role, "system" | "developer" | "user" | "assistant") {
            return Err(format!("messages.[{i}].role: invalid role `{role}`"));
        }
        if role == "assistant" {
            for call in message
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = str_field(call, "id").unwrap_or_default().to_owned();
                if call.pointer("/function/arguments").is_none_or(|a| !a.is_string()) {
                    return Err(format!(
                        "messages.[{i}].tool_calls: `function.arguments` must be a string"
                    ));
                }
                if !open.insert(id.clone()) {
                    return Err(format!("messages.[{i}].tool_calls: duplicate tool call id `{id}`"));
                }
                pending.push(id);
            }
        }
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
            pending.join(", ")
        ))
    }
}

fn blocks(message: &Value) -> &[Value] {
    message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every `tool_use` block must have a `tool_result` block in the very next message, which must
/// be a user message with its `tool_result` blocks first; a `tool_result` must answer a
/// `tool_use` of the message just before it.
fn check_anthropic(messages: &[Value]) -> Result<(), String> {
    let mut calls: Vec<String> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = str_field(message, "role").unwrap_or_default();
        if !matches!(role, "user" | "assistant") {
            return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        let content = blocks(message);
        let results: Vec<&str> = content
            .iter()
            .filter(|b| str_field(b, "type") == Some("tool_result"))
            .map(|b| str_field(b, "tool_use_id").unwrap_or_default())
            .collect();
        if let Some(id) = results.iter().find(|id| !calls.iter().any(|c| c == *id)) {
            return Err(format!(
                "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        let missing: Vec<&str> = calls
            .iter()
            .map(String::as_str)
            .filter(|c| !results.contains(c))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                missing.join(", ")
            ));
        }
        let leading = content
            .iter()
            .take_while(|b| str_field(b, "type") == Some("tool_result"))
            .count();
        if leading != results.len() {
            return Err(format!(
                "messages.{i}.content: `tool_result` blocks must come first in the content, before any other block"
            ));
        }
        calls.clear();
        if role == "assistant" {
            for block in content.iter().filter(|b| str_field(b, "type") == Some("tool_use")) {
                if !block.get("input").is_some_and(Value::is_object) {
                    return Err(format!(
                        "messages.{i}.content.tool_use.input: Input should be a valid dictionary"
                    ));
                }
                calls.push(str_field(block, "id").unwrap_or_default().to_owned());
            }
        }
    }
    if calls.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            messages.len(),
            calls.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn openai(messages: Value) -> Result<(), String> {
        check(Format::OpenAi, &json!({ "messages": messages }))
    }

    fn anthropic(messages: Value) -> Result<(), String> {
        check(Format::Anthropic, &json!({ "messages": messages }))
    }

    #[test]
    fn openai_tool_calls_need_tool_messages_right_after() {
        let call = json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        let tool = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "r"});
        let user = json!({"role": "user", "content": "hi"});
        assert!(openai(json!([user, call, tool("a"), tool("b"), user])).is_ok());
        assert!(openai(json!([user, call, tool("b"), tool("a")])).is_ok());
        let missing = openai(json!([user, call, tool("a"), user])).unwrap_err();
        assert!(missing.contains("did not have response messages: b"), "{missing}");
        assert!(openai(json!([user, call, user, tool("a"), tool("b")])).is_err());
        assert!(openai(json!([user, call, tool("a")])).is_err());
        assert!(openai(json!([user, tool("a")])).unwrap_err().contains("role 'tool'"));
        assert!(openai(json!([user, call, tool("a"), tool("a")])).is_err());
    }

    #[test]
    fn anthropic_tool_use_needs_results_first_in_the_next_message() {
        let call = json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "a", "name": "f", "input": {}},
            {"type": "tool_use", "id": "b", "name": "f", "input": {}}]});
        let result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "r"});
        let text = json!({"type": "text", "text": "hi"});
        let user = json!({"role": "user", "content": [text]});
        let answer = |blocks: Value| json!({"role": "user", "content": blocks});
        assert!(anthropic(json!([user, call, answer(json!([result("a"), result("b"), text]))])).is_ok());
        let missing = anthropic(json!([user, call, answer(json!([result("a")]))])).unwrap_err();
        assert!(
            missing.contains("without `tool_result` blocks immediately after: b"),
            "{missing}"
        );
        assert!(anthropic(json!([user, call, answer(json!([text, result("a"), result("b")]))])).is_err());
        assert!(anthropic(json!([user, call])).is_err());
        assert!(anthropic(json!([user, answer(json!([result("a")]))])).is_err());
        let string_input =
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": "{"}]});
        assert!(anthropic(json!([user, string_input, answer(json!([result("a")]))])).is_err());
        assert!(anthropic(json!([{"role": "system", "content": "x"}])).is_err());
    }
}
