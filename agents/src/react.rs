//! The ReAct agent: reason, act with tools, observe, until an answer.
//!
//! [`ReAct`] is a [`Behaviour`]: each turn adds the task to the agent's memory, then loops:
//! call the model (system prompt + memory + tool schemas); if it asks for tools, run them
//! (several at once when it asks for several) through a [`ToolExecutor`](warden_tools::ToolExecutor)'s
//! [`ToolClient`] with the agent's own permissions, add the results, and call the model
//! again; when it answers without tools, that is the reply. The turn always ends with a
//! clear outcome:
//!
//! | how | outcome |
//! |---|---|
//! | the model answered (and the answer matched the schema, if one was set) | [`Outcome::Completed`] |
//! | an [interrupt](crate::agent::AgentRef::interrupt) | [`Outcome::Interrupted`] |
//! | [`max_iterations`](ReActBuilder::max_iterations) model calls without an answer | [`Outcome::MaxIterations`] |
//! | the model failed (after its retries), a tool failed [`max_tool_failures`](ReActBuilder::max_tool_failures) times in a row, no human answer in time, an invalid structured answer after a repair round | a [`TurnError`] |
//!
//! A tool's failure is a result the model reads (`error (timeout): ...`) and can work
//! around; only repeated failures end the turn (and, repeated over turns, escalate).
//!
//! ```
//! use std::time::Duration;
//! # use schemars::JsonSchema;
//! # use serde::Deserialize;
//! use serde_json::json;
//! use warden_agents::agent::{Agent, Outcome};
//! use warden_agents::message::AgentMessage;
//! use warden_agents::model::{Model, OpenAiChat};
//! use warden_agents::react::ReAct;
//! use warden_fake_provider::{FakeProvider, Answer};
//! use warden_supervisor::{Strategy, Supervisor};
//! use warden_tools::{tool_fn, ToolError, ToolExecutor, ToolStack, Toolkit};
//! # #[derive(Deserialize, JsonSchema)] struct AddArgs { a: i64, b: i64 }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeProvider::start().await;
//! fake.push(Answer::tool_call("add", json!({"a": 2, "b": 3})));
//! fake.push(Answer::text("2 + 3 = 5"));
//!
//! let toolkit = Toolkit::new().tool(tool_fn("add", "Adds.", |x: AddArgs| async move { Ok::<_, ToolError>(x.a + x.b) }));
//! let executor = ToolExecutor::new(toolkit.clone(), ToolStack::recommended().build());
//! let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
//! let calculator = Agent::new("calculator", ReAct::builder(model)
//!     .system("Use the tools.")
//!     .tools(toolkit, executor.client())
//!     .max_iterations(5)
//!     .build());
//! let handle = calculator.handle();
//! let root = Supervisor::builder("root")
//!     .strategy(Strategy::OneForOne)
//!     .child(executor.child_spec("tools"))
//!     .child(calculator.child_spec())
//!     .spawn()
//!     .await?;
//!
//! let reply = handle.ask(AgentMessage::user("2 + 3?"), Duration::from_secs(10)).await?;
//! assert_eq!((reply.outcome, reply.iterations), (Outcome::Completed, 2));
//! assert_eq!(reply.text(), "2 + 3 = 5");
//! root.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use warden_tools::{Caller, Permission, PermissionSet, ToolCall, ToolClient, ToolError, Toolkit};

use serde::{Deserialize, Serialize};
use warden_durable::StepKind;

use crate::agent::{AgentEventKind, Behaviour, Outcome, StepSlot, StepWriter, TurnContext, TurnError, TurnOutput};
use crate::message::AgentMessage;
use crate::model::{
    ChatRequest, ContentBlock, Message, Model, Repairs, ResponseFormat, Role, ToolChoice, ToolSpec, Usage, json_text,
    schema_name,
};

/// The name of the tool a ReAct agent offers its model to ask a human (see
/// [`ReActBuilder::human`]).
pub const ASK_HUMAN_TOOL: &str = "ask_human";

type Check = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct StructuredSpec {
    format: ResponseFormat,
    check: Check,
    repairs: u32,
}

#[derive(Clone)]
struct Tools {
    toolkit: Toolkit,
    client: ToolClient,
}

/// A ReAct behaviour. Build it with [`ReAct::builder`]; see the [module docs](self).
#[derive(Clone)]
pub struct ReAct {
    model: Model,
    system: Option<String>,
    tools: Option<Tools>,
    permissions: PermissionSet,
    max_iterations: u32,
    tool_deadline: Duration,
    max_tool_failures: u32,
    structured: Option<StructuredSpec>,
    human: Option<Duration>,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    tool_choice: Option<ToolChoice>,
}

impl fmt::Debug for ReAct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReAct")
            .field("model", &self.model.name())
            .field("tools", &self.tools.as_ref().map(|t| &t.toolkit))
            .field("permissions", &self.permissions)
            .field("max_iterations", &self.max_iterations)
            .field("max_tool_failures", &self.max_tool_failures)
            .field("structured", &self.structured.as_ref().map(|s| &s.format.name))
            .field("human", &self.human)
            .field("tool_choice", &self.tool_choice)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ReAct`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct ReActBuilder(ReAct);

impl ReAct {
    /// A builder for a ReAct agent thinking with `model`: no system prompt, no tools, at
    /// most 10 iterations, tool calls limited to 60 s, 3 tool failures in a row allowed.
    pub fn builder(model: Model) -> ReActBuilder {
        ReActBuilder(ReAct {
            model,
            system: None,
            tools: None,
            permissions: PermissionSet::new(),
            max_iterations: 10,
            tool_deadline: Duration::from_secs(60),
            max_tool_failures: 3,
            structured: None,
            human: None,
            temperature: None,
            max_tokens: None,
            tool_choice: None,
        })
    }
}

impl ReActBuilder {
    /// The system prompt (never trimmed from memory).
    pub fn system(mut self, prompt: impl Into<String>) -> Self {
        self.0.system = Some(prompt.into());
        self
    }

    /// The tools: `toolkit` for their schemas (its enabled groups, read at every model
    /// call), `client` to call the executor that runs them.
    pub fn tools(mut self, toolkit: Toolkit, client: ToolClient) -> Self {
        self.0.tools = Some(Tools { toolkit, client });
        self
    }

    /// Grants the agent a permission for its tool calls (the executor's permission layer
    /// checks it; the caller's name is the agent's path, or its name).
    pub fn permission(mut self, permission: impl Into<Permission>) -> Self {
        self.0.permissions.insert(permission);
        self
    }

    /// Whether and which tool the model must call, sent in each provider's form (OpenAI's
    /// `"auto"`, `"none"`, `"required"` or a named function; Anthropic's `auto`, `none`, `any`
    /// or a named tool). Without it, the provider's default (the model decides).
    ///
    /// [`ToolChoice::Auto`] and [`ToolChoice::None`] hold for every model call of a turn.
    /// [`ToolChoice::Required`] and [`ToolChoice::Tool`] force the turn's **first** call
    /// only; the calls after it are `Auto`, so that the model can answer with what its tools
    /// returned and the turn can end (forcing every call would loop to
    /// [`max_iterations`](Self::max_iterations)).
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.0.tool_choice = Some(choice);
        self
    }

    /// At most this many model calls per turn (default 10).
    pub fn max_iterations(mut self, n: u32) -> Self {
        self.0.max_iterations = n;
        self
    }

    /// The deadline of each tool call (default 60 s).
    pub fn tool_deadline(mut self, deadline: Duration) -> Self {
        self.0.tool_deadline = deadline;
        self
    }

    /// Ends the turn with [`TurnError::ToolFailing`] when one tool fails this many times in a
    /// row (default 3; 0: never). Invalid arguments do not count: the model can fix them.
    pub fn max_tool_failures(mut self, n: u32) -> Self {
        self.0.max_tool_failures = n;
        self
    }

    /// Asks for a final answer that is JSON matching `T`'s schema (sent as the request's
    /// response format), checks it, and gives the model one repair round when it does not
    /// parse. The reply then carries it as [`Reply::structured`](crate::agent::Reply::structured).
    pub fn structured_output<T: DeserializeOwned + JsonSchema>(mut self) -> Self {
        let check: Check = Arc::new(|value: &Value| {
            serde_json::from_value::<T>(value.clone())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        self.0.structured = Some(StructuredSpec {
            format: ResponseFormat::new(schema_name(&T::schema_name()), schemars::schema_for!(T).to_value()),
            check,
            repairs: 1,
        });
        self
    }

    /// Offers the model the [`ASK_HUMAN_TOOL`] tool: calling it suspends the turn until a
    /// human answers (see [`TurnContext::ask_human`]), at most `deadline`.
    pub fn human(mut self, deadline: Duration) -> Self {
        self.0.human = Some(deadline);
        self
    }

    /// The sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.0.temperature = Some(temperature);
        self
    }

    /// The most tokens per model call.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.0.max_tokens = Some(max_tokens);
        self
    }

    /// The behaviour.
    pub fn build(self) -> ReAct {
        self.0
    }
}

/// One tool call's result: its content for the model, and its error if it failed.
struct CallResult {
    tool: String,
    block: ContentBlock,
    error: Option<ToolError>,
}

/// A tool call's result as a durable agent's journal keeps it: what the model is shown, and
/// enough of the error to count failures the same way on replay.
#[derive(Serialize, Deserialize)]
struct RecordedCall {
    block: ContentBlock,
    #[serde(default)]
    error: Option<RecordedToolError>,
}

#[derive(Serialize, Deserialize)]
struct RecordedToolError {
    invalid_arguments: bool,
    retryable: bool,
    message: String,
}

impl RecordedCall {
    fn of(result: &CallResult) -> Self {
        Self {
            block: result.block.clone(),
            error: result.error.as_ref().map(|e| RecordedToolError {
                invalid_arguments: matches!(e, ToolError::InvalidArguments { .. }),
                retryable: e.is_transient(),
                message: e.to_string(),
            }),
        }
    }

    fn into_result(self, tool: &str) -> CallResult {
        let error = self.error.map(|e| {
            if e.invalid_arguments {
                ToolError::InvalidArguments {
                    path: String::new(),
                    message: e.message,
                }
            } else {
                ToolError::Failed {
                    retryable: e.retryable,
                    source: Arc::new(std::io::Error::other(e.message)),
                }
            }
        });
        CallResult {
            tool: tool.to_owned(),
            block: self.block,
            error,
        }
    }
}

/// A tool call that cannot run: the model is told why, and the error ends the turn.
fn refused(id: &str, name: &str, error: TurnError) -> (CallResult, Option<TurnError>) {
    let block = ContentBlock::tool_error(id, format!("error ({}): {error}", error.kind()));
    let result = CallResult {
        tool: name.to_owned(),
        block,
        error: None,
    };
    (result, Some(error))
}

/// Where a tool call stands in a durable turn.
enum ToolStep {
    /// Not durable: just call.
    Plain,
    /// Recorded before: its result.
    Recorded(CallResult),
    /// To run, and record.
    Fresh { writer: StepWriter, idempotent: bool },
    /// Cannot run (a divergence, an unknown outcome): the error ends the turn.
    Refused(TurnError),
}

impl ReAct {
    fn tool_specs(&self) -> Vec<ToolSpec> {
        let mut specs: Vec<ToolSpec> = self
            .tools
            .iter()
            .flat_map(|t| t.toolkit.schemas())
            .map(ToolSpec::from)
            .collect();
        if self.human.is_some() {
            specs.push(ToolSpec {
                name: ASK_HUMAN_TOOL.into(),
                description:
                    "Ask a human a question and wait for the answer. Use it for decisions you may not take alone."
                        .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"question": {"type": "string", "description": "The question for the human."}},
                    "required": ["question"],
                }),
            });
        }
        specs
    }

    /// The tool choice of the turn's `iteration`-th model call (see
    /// [`ReActBuilder::tool_choice`]).
    fn tool_choice_at(&self, iteration: u32) -> Option<ToolChoice> {
        match &self.tool_choice {
            Some(ToolChoice::Required | ToolChoice::Tool(_)) if iteration > 1 => Some(ToolChoice::Auto),
            other => other.clone(),
        }
    }

    fn request(&self, cx: &TurnContext, tools: &[ToolSpec], iteration: u32) -> ChatRequest {
        let mut messages = Vec::with_capacity(cx.memory().len() + 1);
        if let Some(system) = &self.system {
            messages.push(Message::system(system.clone()));
        }
        messages.extend(cx.memory().messages().iter().cloned());
        let mut request = ChatRequest::new(messages).with_tools(tools.to_vec());
        request.temperature = self.temperature;
        request.max_tokens = self.max_tokens;
        request.response_format = self.structured.as_ref().map(|s| s.format.clone());
        request.tool_choice = self.tool_choice_at(iteration);
        request
    }

    /// Takes a durable turn's place for a tool call (in call order, before any runs).
    fn tool_step(&self, cx: &mut TurnContext, name: &str, input: &Value) -> ToolStep {
        let idempotent = self
            .tools
            .as_ref()
            .and_then(|tools| tools.toolkit.get(name))
            .is_some_and(|tool| tool.is_idempotent(input));
        match cx.begin_step(StepKind::Tool, name, idempotent) {
            Ok(None) => ToolStep::Plain,
            Ok(Some(StepSlot::Recorded { step, result })) => {
                match crate::agent::durable::decode::<RecordedCall>(step, &result) {
                    Ok(recorded) => ToolStep::Recorded(recorded.into_result(name)),
                    Err(e) => ToolStep::Refused(e),
                }
            }
            Ok(Some(StepSlot::Fresh(writer))) => ToolStep::Fresh { writer, idempotent },
            Err(e) => ToolStep::Refused(e),
        }
    }

    /// Runs a tool call as its step says: given back when recorded, else run (written as
    /// started first when it must not run twice) and its result recorded.
    async fn step_tool(
        &self,
        caller: &Caller,
        id: &str,
        name: &str,
        input: &Value,
        step: ToolStep,
    ) -> (CallResult, Option<TurnError>) {
        match step {
            ToolStep::Plain => (self.call_tool(caller, id, name, input, None).await, None),
            ToolStep::Recorded(mut result) => {
                // The model's call id of this run, not the recorded one.
                if let ContentBlock::ToolResult { tool_use_id, .. } = &mut result.block {
                    id.clone_into(tool_use_id);
                }
                (result, None)
            }
            ToolStep::Refused(error) => refused(id, name, error),
            ToolStep::Fresh { writer, idempotent } => {
                if !idempotent {
                    if let Err(error) = writer.started().await {
                        return refused(id, name, error);
                    }
                }
                let key = writer.id().idempotency_key();
                let result = self.call_tool(caller, id, name, input, Some(key)).await;
                match writer.done_with(&RecordedCall::of(&result)).await {
                    Ok(()) => (result, None),
                    Err(error) => (result, Some(error)),
                }
            }
        }
    }

    async fn call_tool(&self, caller: &Caller, id: &str, name: &str, input: &Value, key: Option<String>) -> CallResult {
        let result = match &self.tools {
            // Only tools the agent offers are sent to its executor, whatever else the
            // executor holds: a model cannot call its way past its own toolkit.
            Some(tools) if tools.toolkit.is_enabled(name) => {
                let mut call = ToolCall::new(name, input.clone()).id(id).caller(caller.clone());
                if let Some(key) = key {
                    call = call.idempotency_key(key);
                }
                tools.client.call(call, self.tool_deadline).await
            }
            _ => Err(ToolError::NotFound { tool: Arc::from(name) }),
        };
        let block = ContentBlock::tool_outcome(id, &result);
        CallResult {
            tool: name.to_owned(),
            block,
            error: result.err(),
        }
    }

    /// Runs the calls: tools at once, then questions to a human one at a time. Returns the
    /// results in call order, and the error that ends the turn, if any.
    async fn run_calls(
        &self,
        cx: &mut TurnContext,
        caller: &Caller,
        calls: &[(String, String, Value)],
    ) -> (Vec<CallResult>, Option<TurnError>) {
        for (id, name, _) in calls {
            cx.emit(AgentEventKind::ToolCalled {
                id: id.clone(),
                tool: name.clone(),
            });
        }
        let is_human = |name: &str| self.human.is_some() && name == ASK_HUMAN_TOOL;
        // A durable turn takes every tool call's step in call order before any runs, so the
        // indices do not depend on which finishes first; questions to a human come after.
        let steps: Vec<ToolStep> = calls
            .iter()
            .filter(|(_, name, _)| !is_human(name))
            .map(|(_, name, input)| self.tool_step(cx, name, input))
            .collect();
        let tool_results = join_all(
            calls
                .iter()
                .filter(|(_, name, _)| !is_human(name))
                .zip(steps)
                .map(|((id, name, input), step)| self.step_tool(caller, id, name, input, step)),
        )
        .await;
        let mut fatal = None;
        let mut tool_results = tool_results
            .into_iter()
            .map(|(result, error)| {
                if fatal.is_none() {
                    fatal = error;
                }
                result
            })
            .collect::<Vec<_>>()
            .into_iter();
        let mut results = Vec::with_capacity(calls.len());
        for (id, name, input) in calls {
            let result = if is_human(name) {
                self.ask_human(cx, id, input, &mut fatal).await
            } else {
                match tool_results.next() {
                    Some(result) => result,
                    None => continue,
                }
            };
            cx.emit(AgentEventKind::ToolReturned {
                id: id.clone(),
                tool: name.clone(),
                is_error: result.error.is_some(),
            });
            results.push(result);
        }
        (results, fatal)
    }

    async fn ask_human(
        &self,
        cx: &mut TurnContext,
        id: &str,
        input: &Value,
        fatal: &mut Option<TurnError>,
    ) -> CallResult {
        let deadline = self.human.unwrap_or_default();
        let error = |message: String| CallResult {
            tool: ASK_HUMAN_TOOL.into(),
            block: ContentBlock::tool_error(id, message),
            error: None,
        };
        let Some(question) = input.get("question").and_then(Value::as_str) else {
            return error("error (invalid_arguments): `question` must be a string".into());
        };
        if fatal.is_some() {
            return error("error: not asked, the turn is ending".into());
        }
        match cx.ask_human(question, deadline).await {
            Ok(answer) => CallResult {
                tool: ASK_HUMAN_TOOL.into(),
                block: ContentBlock::tool_result(id, answer),
                error: None,
            },
            Err(e) => {
                let result = error(format!("error ({}): {e}", e.kind()));
                *fatal = Some(e);
                result
            }
        }
    }

    async fn run(&self, cx: &mut TurnContext, task: &AgentMessage) -> Result<TurnOutput, TurnError> {
        // A peer's tool calls or results are not ours to answer: keep text and images.
        let content = task.text_and_images();
        if content.is_empty() {
            return Err(TurnError::EmptyTask);
        }
        cx.memory_mut().push(Message {
            role: Role::User,
            content,
        });
        cx.memory_mut().trim();
        let caller_name = cx.path().map_or_else(|| cx.name().to_string(), |p| p.to_string());
        let mut caller = Caller::new(caller_name).permissions(self.permissions.clone());
        if let Some(tools) = &self.tools {
            // The executor checks it too: a shared executor serves this agent only
            // the tools its toolkit offers now (groups can be switched between turns).
            let offered: Vec<Arc<str>> = tools
                .toolkit
                .all()
                .map(|tool| Arc::<str>::from(tool.name()))
                .filter(|name| tools.toolkit.is_enabled(name))
                .collect();
            caller = caller.offered(offered);
        }
        let mut usage = Usage::default();
        let mut failures: HashMap<String, u32> = HashMap::new();
        let mut repairs = Repairs::new(self.structured.as_ref().map_or(0, |spec| spec.repairs));
        let mut last_text = String::new();
        for iteration in 1..=self.max_iterations {
            for text in cx.take_human_input() {
                cx.memory_mut().push(Message::user(text));
            }
            let request = self.request(cx, &self.tool_specs(), iteration);
            cx.emit(AgentEventKind::ModelCalled { iteration });
            let response = cx
                .step(StepKind::Model, "chat", true, |_| async {
                    self.model.chat(&request).await.map_err(TurnError::from)
                })
                .await?;
            // Provider-supplied counts: saturate rather than overflow.
            usage.input_tokens = usage.input_tokens.saturating_add(response.usage.input_tokens);
            usage.output_tokens = usage.output_tokens.saturating_add(response.usage.output_tokens);
            cx.memory_mut().push(response.to_message());
            let calls: Vec<(String, String, Value)> = response
                .tool_uses()
                .map(|(id, name, input)| (id.to_owned(), name.to_owned(), input.clone()))
                .collect();
            let text = response.text();
            if calls.is_empty() {
                let structured = match &self.structured {
                    None => None,
                    Some(spec) => {
                        let parsed = serde_json::from_str::<Value>(json_text(&text))
                            .map_err(|e| e.to_string())
                            .and_then(|v| (spec.check)(&v).map(|()| v));
                        match parsed {
                            Ok(value) => Some(value),
                            Err(error) => match repairs.ask_again(&error, Repairs::JSON_AGAIN) {
                                Some(again) => {
                                    cx.memory_mut().push(again);
                                    continue;
                                }
                                None => return Err(TurnError::StructuredOutputInvalid(error)),
                            },
                        }
                    }
                };
                return Ok(TurnOutput {
                    content: vec![ContentBlock::text(text)],
                    outcome: Outcome::Completed,
                    iterations: iteration,
                    usage,
                    structured,
                });
            }
            if !text.is_empty() {
                last_text = text;
            }
            let (results, fatal) = self.run_calls(cx, &caller, &calls).await;
            let mut failing = None;
            for result in &results {
                let count = failures.entry(result.tool.clone()).or_default();
                match &result.error {
                    None => *count = 0,
                    Some(ToolError::InvalidArguments { .. }) => {}
                    Some(e) => {
                        *count += 1;
                        if self.max_tool_failures > 0 && *count >= self.max_tool_failures && failing.is_none() {
                            failing = Some(TurnError::ToolFailing {
                                tool: result.tool.clone(),
                                failures: *count,
                                last_error: e.clone(),
                            });
                        }
                    }
                }
            }
            cx.memory_mut()
                .push(Message::tool_results(results.into_iter().map(|r| r.block).collect()));
            if let Some(error) = fatal.or(failing) {
                return Err(error);
            }
        }
        let content = if last_text.is_empty() {
            Vec::new()
        } else {
            vec![ContentBlock::text(last_text)]
        };
        Ok(TurnOutput {
            content,
            outcome: Outcome::MaxIterations,
            iterations: self.max_iterations,
            usage,
            structured: None,
        })
    }
}

impl Behaviour for ReAct {
    fn turn<'a>(
        &'a self,
        cx: &'a mut TurnContext,
        task: &'a AgentMessage,
    ) -> BoxFuture<'a, Result<TurnOutput, TurnError>> {
        Box::pin(self.run(cx, task))
    }
}
