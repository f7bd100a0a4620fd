//! Shared by the pattern tests: what a recorded request asked.

#![allow(dead_code)]

use warden_fake_provider::RecordedRequest;

/// The text of the last user message of a request (the task the agent was given).
pub(crate) fn task_text(request: &RecordedRequest) -> String {
    let messages = request.messages();
    let last = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .expect("a user message");
    last["content"].as_str().expect("text content").to_owned()
}
