//! [`Router`]: a model decides which agent handles a request, by structured output or by
//! tool call, and the request goes there.
//!
//! See [`Router`] for the details and an example.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::agent::{Agent, AgentError, AgentRef, Behaviour, Outcome, Reply, TurnContext, TurnError, TurnOutput};
use crate::message::{Address, AgentMessage};
use crate::model::{
    ChatRequest, ContentBlock, Message, Model, Repairs, ResponseFormat, Role, ToolChoice, ToolSpec, Usage, json_text,
};
use crate::registry::Target;

/// The prefix of the tool names a [`RouteDecider`] offers in [`RouteBy::ToolCall`] mode.
pub const ROUTE_TOOL_PREFIX: &str = "route_to_";

/// The longest route name (so that `route_to_<name>` is a valid tool name everywhere).
const MAX_ROUTE_NAME: usize = 48;

/// How a [`RouteDecider`] asks its model for the route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteBy {
    /// A JSON answer `{"route": ..., "reason": ...}` (the request's response format).
    #[default]
    StructuredOutput,
    /// A call to one of the `route_to_<name>` tools.
    ToolCall,
}

/// A decision: the route's name and, if the model gave one, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RouteChoice {
    /// The route's name.
    pub route: String,
    /// Why, in the model's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One route: a name, a description for the model, and where requests go.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Route {
    /// The name (letters, digits, `_` and `-`; at most 48).
    pub name: Arc<str>,
    /// What it handles, for the model.
    pub description: String,
    /// Who handles it.
    pub target: Target,
}

/// A decision of a [`Router`]: the route to take.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The route.
    pub route: Arc<str>,
    /// The decider's reason, if any.
    pub reason: Option<String>,
    /// Whether this is the fallback, taken because the decision named no known route.
    pub fell_back: bool,
    index: usize,
}

/// A routed request: the decision and the handler's answer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Routed {
    /// The route taken.
    pub route: Arc<str>,
    /// The decider's reason, if any.
    pub reason: Option<String>,
    /// Whether the fallback was taken because the decision named no known route.
    pub fell_back: bool,
    /// The handler's answer.
    pub reply: Reply,
}

/// What went wrong with a [`Router`].
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// A router needs at least one route.
    #[error("a router needs at least one route")]
    NoRoutes,
    /// A route name that is empty, too long, or has other characters than letters, digits,
    /// `_` and `-`.
    #[error("invalid route name {0:?}")]
    InvalidRouteName(String),
    /// Two routes have the same name.
    #[error("two routes are called {0:?}")]
    DuplicateRoute(String),
    /// The fallback names no route.
    #[error("the fallback {0:?} is not a route")]
    UnknownFallback(String),
    /// The decider's ask failed.
    #[error("the decider failed: {0}")]
    Decider(AgentError),
    /// The decider's answer holds no decision.
    #[error("no routing decision: {0}")]
    NoDecision(String),
    /// The decision names no route, and there is no fallback.
    #[error("the decider chose {route:?}, which is not a route")]
    UnknownRoute {
        /// What it chose.
        route: String,
    },
    /// The chosen route's target failed.
    #[error("route {route} failed: {error}")]
    Handler {
        /// The route.
        route: Arc<str>,
        /// Why.
        error: AgentError,
    },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROUTE_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Builds a [`Router`] and, if you want, its decider.
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until built"]
pub struct RouterBuilder {
    routes: Vec<Route>,
    fallback: Option<String>,
    by: RouteBy,
    instructions: Option<String>,
}

impl RouterBuilder {
    /// Adds a route.
    pub fn route(
        mut self,
        name: impl Into<Arc<str>>,
        description: impl Into<String>,
        target: impl Into<Target>,
    ) -> Self {
        self.routes.push(Route {
            name: name.into(),
            description: description.into(),
            target: target.into(),
        });
        self
    }

    /// The route taken when the decision names no known route (or none at all).
    pub fn fallback(mut self, route: impl Into<String>) -> Self {
        self.fallback = Some(route.into());
        self
    }

    /// How the built decider asks its model (default: structured output).
    pub fn by(mut self, by: RouteBy) -> Self {
        self.by = by;
        self
    }

    /// Extra instructions for the built decider's system prompt.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    fn check(&self) -> Result<Option<usize>, RouterError> {
        if self.routes.is_empty() {
            return Err(RouterError::NoRoutes);
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !valid_name(&route.name) {
                return Err(RouterError::InvalidRouteName(route.name.to_string()));
            }
            if self.routes[..i].iter().any(|r| r.name == route.name) {
                return Err(RouterError::DuplicateRoute(route.name.to_string()));
            }
        }
        self.fallback
            .as_ref()
            .map(|f| {
                self.routes
                    .iter()
                    .position(|r| *r.name == **f)
                    .ok_or_else(|| RouterError::UnknownFallback(f.clone()))
            })
            .transpose()
    }

    /// An agent called `name` that decides with `model`, by the builder's [`RouteBy`]: put
    /// it under a supervisor (or spawn it) and [`build`](Self::build) the router with its
    /// handle.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), for the routes.
    pub fn decider(&self, name: impl Into<Arc<str>>, model: Model) -> Result<Agent, RouterError> {
        self.check()?;
        let decider = RouteDecider {
            model,
            by: self.by,
            routes: self
                .routes
                .iter()
                .map(|r| (r.name.clone(), r.description.clone()))
                .collect(),
            instructions: self.instructions.clone(),
        };
        Ok(Agent::new(name, decider).escalate_after(0))
    }

    /// The router, asking `decider` for each decision.
    ///
    /// # Errors
    ///
    /// [`RouterError::NoRoutes`], [`InvalidRouteName`](RouterError::InvalidRouteName),
    /// [`DuplicateRoute`](RouterError::DuplicateRoute) or
    /// [`UnknownFallback`](RouterError::UnknownFallback).
    pub fn build(self, decider: AgentRef) -> Result<Router, RouterError> {
        let fallback = self.check()?;
        Ok(Router {
            decider,
            routes: self.routes.into(),
            fallback,
        })
    }
}

/// A router: a decider agent, then the chosen route's target. Cheap to clone.
///
/// A router has named [`Route`]s (a description for the model, and a [`Target`]: an agent or
/// a team) and a *decider*: an agent asked first, which answers a [`RouteChoice`]. The
/// request then goes, unchanged, to the chosen route's target, and the answer comes back
/// with the decision ([`Routed`]).
///
/// The decider is usually the one the builder makes ([`RouterBuilder::decider`]): a
/// [`RouteDecider`] behaviour that knows the routes and asks its model in one of two ways
/// ([`RouteBy`]):
///
/// * **structured output**: the answer must be JSON `{"route": ..., "reason": ...}` whose
///   `route` is one of the route names (the schema lists them);
/// * **tool call**: the model is offered one tool per route, `route_to_<name>`, described by
///   the route's description, and must call one (`reason` is its only argument). The tool is
///   never run: the call *is* the decision, as in OpenAI's handoffs.
///
/// Any agent can decide instead (say, a ReAct agent with
/// [`structured_output::<RouteChoice>()`](crate::react::ReActBuilder::structured_output)),
/// as long as it answers a [`RouteChoice`] (structured, or as JSON text).
///
/// Models make mistakes: a decision that names no known route goes to the
/// [`fallback`](RouterBuilder::fallback) route if there is one, else it is a typed error
/// ([`RouterError::UnknownRoute`], [`RouterError::NoDecision`]); the decider gets one repair
/// round first. Nothing panics.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use warden_agents::agent::Agent;
/// use warden_agents::message::AgentMessage;
/// use warden_agents::model::{Model, OpenAiChat};
/// use warden_agents::pattern::{RouteBy, Router};
/// use warden_agents::react::ReAct;
/// use warden_fake_provider::{FakeProvider, Answer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fake = FakeProvider::start().await;
/// fake.push(Answer::tool_call("route_to_billing", json!({"reason": "an invoice question"})));
/// fake.push(Answer::text("Your invoice is attached."));
/// let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "gpt-test"));
/// let (billing, _) = Agent::new("billing", ReAct::builder(model.clone()).build()).spawn().await?;
/// let (support, _) = Agent::new("support", ReAct::builder(model.clone()).build()).spawn().await?;
///
/// let routes = Router::builder()
///     .route("billing", "Invoices, payments, refunds.", billing)
///     .route("support", "Anything else.", support)
///     .by(RouteBy::ToolCall);
/// let (decider, _) = routes.decider("router", model)?.spawn().await?;
/// let router = routes.build(decider)?;
///
/// let routed = router.ask(AgentMessage::user("Where is my invoice?"), Duration::from_secs(10)).await?;
/// assert_eq!(&*routed.route, "billing");
/// assert_eq!(routed.reason.as_deref(), Some("an invoice question"));
/// assert_eq!(routed.reply.text(), "Your invoice is attached.");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Router {
    decider: AgentRef,
    routes: Arc<[Route]>,
    fallback: Option<usize>,
}

impl Router {
    /// A builder with no routes, deciding by structured output.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The decider.
    pub fn decider(&self) -> &AgentRef {
        &self.decider
    }

    /// Asks the decider where `task` goes (without sending it there), at most `deadline`.
    ///
    /// # Errors
    ///
    /// [`RouterError::Decider`] if its ask fails; [`NoDecision`](RouterError::NoDecision)
    /// or [`UnknownRoute`](RouterError::UnknownRoute) when its answer names no route (or its
    /// turn failed its own structured-output check) and there is no fallback.
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the decider's ask: skipped if still queued, cut short if running.
    pub async fn decide(&self, task: &AgentMessage, deadline: Duration) -> Result<Decision, RouterError> {
        let mut question = task.clone();
        question.recipient = Address::Unspecified;
        let reply = match self.decider.ask(question, deadline).await {
            Ok(reply) => reply,
            // The decider's own check failed (a RouteDecider, or structured output).
            Err(AgentError::Turn(TurnError::StructuredOutputInvalid(problem))) => {
                return self.fall_back(RouterError::NoDecision(problem), None);
            }
            Err(e) => return Err(RouterError::Decider(e)),
        };
        let parsed = match &reply.structured {
            Some(value) => serde_json::from_value::<RouteChoice>(value.clone()).map_err(|e| e.to_string()),
            None => serde_json::from_str::<RouteChoice>(json_text(&reply.text())).map_err(|e| e.to_string()),
        };
        let (problem, reason) = match parsed {
            Ok(choice) => match self.routes.iter().position(|r| *r.name == *choice.route.trim()) {
                Some(index) => return Ok(self.decision(index, choice.reason, false)),
                None => (RouterError::UnknownRoute { route: choice.route }, choice.reason),
            },
            Err(problem) => (RouterError::NoDecision(problem), None),
        };
        self.fall_back(problem, reason)
    }

    /// The fallback's decision, or `problem` if there is none.
    fn fall_back(&self, problem: RouterError, reason: Option<String>) -> Result<Decision, RouterError> {
        match self.fallback {
            Some(index) => {
                tracing::warn!(error = %problem, "routing decision unusable; taking the fallback");
                Ok(self.decision(index, reason, true))
            }
            None => Err(problem),
        }
    }

    fn decision(&self, index: usize, reason: Option<String>, fell_back: bool) -> Decision {
        Decision {
            route: self.routes[index].name.clone(),
            reason,
            fell_back,
            index,
        }
    }

    /// Decides where `task` goes and asks that route's target, all within `deadline`.
    ///
    /// # Errors
    ///
    /// As [`decide`](Self::decide); then [`RouterError::Handler`] if the target's ask fails.
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the ask in flight: skipped if still queued, cut short if running.
    pub async fn ask(&self, task: AgentMessage, deadline: Duration) -> Result<Routed, RouterError> {
        let start = Instant::now();
        let decision = self.decide(&task, deadline).await?;
        let left = deadline.saturating_sub(start.elapsed());
        let target = &self.routes[decision.index].target;
        let reply = target.ask(task, left).await.map_err(|error| RouterError::Handler {
            route: decision.route.clone(),
            error,
        })?;
        Ok(Routed {
            route: decision.route,
            reason: decision.reason,
            fell_back: decision.fell_back,
            reply,
        })
    }
}

/// The [`Behaviour`] of a router's decider: one model call (two with a repair) per task,
/// answering a [`RouteChoice`] as the reply's structured output. It keeps no memory between
/// tasks: each decision stands alone. Make one with [`RouterBuilder::decider`].
#[derive(Clone)]
pub struct RouteDecider {
    model: Model,
    by: RouteBy,
    routes: Vec<(Arc<str>, String)>,
    instructions: Option<String>,
}

impl fmt::Debug for RouteDecider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteDecider")
            .field("model", &self.model.name())
            .field("by", &self.by)
            .field("routes", &self.routes.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RouteDecider {
    fn system(&self) -> String {
        let mut text =
            String::from("You route requests. Pick the one route that should handle the request.\n\nRoutes:\n");
        for (name, description) in &self.routes {
            text.push_str(&format!("- {name}: {description}\n"));
        }
        text.push_str(match self.by {
            RouteBy::StructuredOutput => {
                "\nAnswer with JSON only: {\"route\": \"<one of the route names>\", \"reason\": \"<why, briefly>\"}."
            }
            RouteBy::ToolCall => "\nCall the route_to_<route> tool of the route you pick, with your reason.",
        });
        if let Some(extra) = &self.instructions {
            text.push_str("\n\n");
            text.push_str(extra);
        }
        text
    }

    fn request(&self, messages: Vec<Message>) -> ChatRequest {
        let names: Vec<&str> = self.routes.iter().map(|(n, _)| &**n).collect();
        let mut request = ChatRequest::new(messages);
        match self.by {
            RouteBy::StructuredOutput => {
                request.response_format = Some(ResponseFormat::new(
                    "route_choice",
                    json!({
                        "type": "object",
                        "properties": {
                            "route": {"type": "string", "enum": names},
                            "reason": {"type": "string"},
                        },
                        "required": ["route", "reason"],
                        "additionalProperties": false,
                    }),
                ));
            }
            RouteBy::ToolCall => {
                let tools = self
                    .routes
                    .iter()
                    .map(|(name, description)| ToolSpec {
                        name: format!("{ROUTE_TOOL_PREFIX}{name}"),
                        description: description.clone(),
                        parameters: json!({
                            "type": "object",
                            "properties": {"reason": {"type": "string", "description": "Why this route, briefly."}},
                            "required": ["reason"],
                        }),
                    })
                    .collect();
                request = request.with_tools(tools).with_tool_choice(ToolChoice::Required);
            }
        }
        request
    }

    fn known(&self, route: &str) -> bool {
        self.routes.iter().any(|(n, _)| **n == *route)
    }

    /// The decision in an answer, or what is wrong with it.
    fn read(&self, text: &str, calls: &[(String, Value)]) -> Result<RouteChoice, Unreadable> {
        match self.by {
            RouteBy::StructuredOutput => {
                let choice: RouteChoice = serde_json::from_str(json_text(text)).map_err(Unreadable::NotJson)?;
                if self.known(choice.route.trim()) {
                    Ok(choice)
                } else {
                    Err(Unreadable::UnknownRoute(choice.route))
                }
            }
            RouteBy::ToolCall => {
                let chosen = calls.iter().find_map(|(name, input)| {
                    let route = name.strip_prefix(ROUTE_TOOL_PREFIX)?;
                    self.known(route).then(|| RouteChoice {
                        route: route.to_owned(),
                        reason: input.get("reason").and_then(Value::as_str).map(str::to_owned),
                    })
                });
                chosen.ok_or(Unreadable::NoRouteCall)
            }
        }
    }

    async fn run(&self, task: &AgentMessage) -> Result<TurnOutput, TurnError> {
        let content = task.text_and_images();
        if content.is_empty() {
            return Err(TurnError::EmptyTask);
        }
        let mut messages = vec![
            Message::system(self.system()),
            Message {
                role: Role::User,
                content,
            },
        ];
        let mut usage = Usage::default();
        // One repair round; the invalid answer is not kept, so no tool call is left open.
        let mut repairs = Repairs::new(1);
        let instruction = match self.by {
            RouteBy::StructuredOutput => "Answer again with only the JSON, naming one of the routes.",
            RouteBy::ToolCall => "Call exactly one of the route_to_<route> tools.",
        };
        for iteration in 1..=2 {
            let response = self.model.chat(&self.request(messages.clone())).await?;
            // Provider-supplied counts: saturate rather than overflow.
            usage.input_tokens = usage.input_tokens.saturating_add(response.usage.input_tokens);
            usage.output_tokens = usage.output_tokens.saturating_add(response.usage.output_tokens);
            let calls: Vec<(String, Value)> = response
                .tool_uses()
                .map(|(_, name, input)| (name.to_owned(), input.clone()))
                .collect();
            let text = response.text();
            match self.read(&text, &calls) {
                Ok(choice) => {
                    let structured = serde_json::to_value(&choice).map_err(TurnError::other)?;
                    let mut output = TurnOutput::new(Outcome::Completed, vec![ContentBlock::text(choice.route)]);
                    output.iterations = iteration;
                    output.usage = usage;
                    output.structured = Some(structured);
                    return Ok(output);
                }
                Err(problem) => {
                    let problem = problem.to_string();
                    let Some(again) = repairs.ask_again(&problem, instruction) else {
                        return Err(TurnError::StructuredOutputInvalid(problem));
                    };
                    let shown = match self.by {
                        RouteBy::StructuredOutput => "(no JSON)",
                        RouteBy::ToolCall => "(no tool call)",
                    };
                    messages.push(Message::assistant(if text.is_empty() {
                        shown.to_owned()
                    } else {
                        text
                    }));
                    messages.push(again);
                }
            }
        }
        Err(TurnError::StructuredOutputInvalid("no routing decision".into()))
    }
}

/// Why a decider's answer holds no routing decision; shown to the model in the repair round.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    /// The answer is not the JSON asked for.
    #[error("{0}")]
    NotJson(serde_json::Error),
    /// It names no route.
    #[error("{0:?} is not one of the routes")]
    UnknownRoute(String),
    /// No `route_to_<route>` tool was called.
    #[error("no route tool was called")]
    NoRouteCall,
}

impl Behaviour for RouteDecider {
    fn turn<'a>(
        &'a self,
        _cx: &'a mut TurnContext,
        task: &'a AgentMessage,
    ) -> BoxFuture<'a, Result<TurnOutput, TurnError>> {
        Box::pin(self.run(task))
    }
}
