//! The plan: what the planner answers ([`Plan`], [`Subtask`]), and the prompts that ask for
//! it, re-plan after a failure, and ask for the synthesis.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Run;
use super::worker::WorkerFailure;

/// The planner's answer: the subtasks to start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// The subtasks, each for one worker.
    pub subtasks: Vec<Subtask>,
}

/// One subtask of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subtask {
    /// A short id, unique in the run (made unique if it is not).
    #[serde(default)]
    pub id: String,
    /// What the worker must do.
    pub task: String,
}

const PLAN_FORMAT: &str =
    "Answer with JSON only: {\"subtasks\": [{\"id\": \"a-short-id\", \"task\": \"what the worker must do\"}]}.";

pub(super) fn first_prompt(question: &str) -> String {
    format!(
        "Question:\n{question}\n\nSplit the work into independent subtasks, one per worker; the workers run at the same time and do not see each other. {PLAN_FORMAT}"
    )
}

pub(super) fn replan_prompt(run: &Run, failure: &WorkerFailure) -> String {
    let done: Vec<&str> = run.results.iter().map(|r| r.subtask.id.as_str()).collect();
    let mut open: Vec<&str> = run.working.values().map(|w| w.subtask.id.as_str()).collect();
    open.extend(run.pending.iter().map(|s| s.id.as_str()));
    open.sort_unstable();
    let list = |ids: &[&str]| {
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    };
    format!(
        "Question:\n{}\n\nWorker {} failed on subtask {} ({}): {}.\nDone: {}.\nStill running or planned: {}.\n\nRe-plan: give only the subtasks to start now to make up for the failure (an empty list if none are needed; the failed worker's tools may still be failing). {PLAN_FORMAT}",
        run.question,
        failure.worker,
        failure.subtask.id,
        failure.subtask.task,
        failure.reason,
        list(&done),
        list(&open),
    )
}

pub(super) fn synthesis_prompt(run: &Run) -> String {
    let mut text = format!("Question:\n{}\n\nFindings of the workers:\n", run.question);
    for result in &run.results {
        text.push_str(&format!(
            "\n[{}] {}\n{}\n",
            result.subtask.id,
            result.subtask.task,
            result.reply.text()
        ));
    }
    let done: HashSet<&str> = run.results.iter().map(|r| r.subtask.id.as_str()).collect();
    let missing: Vec<&WorkerFailure> = run
        .failures
        .iter()
        .filter(|f| !done.contains(f.subtask.id.as_str()))
        .collect();
    if !missing.is_empty() {
        text.push_str("\nNot done:\n");
        for failure in missing {
            text.push_str(&format!("[{}] {}\n", failure.subtask.id, failure.reason));
        }
    }
    text.push_str("\nAnswer the question from these findings.");
    text
}
