//! Tools: typed async functions with a name, a description and a JSON Schema
//! for their arguments.
//!
//! Implement [`Tool`] for a type, or turn an async closure into one with
//! [`tool_fn`]. The schema is generated from the argument type by
//! [`schemars`] (derive `JsonSchema` next to `Deserialize`), so the schema the
//! model sees and the type the tool gets can never disagree.
//!
//! A [`Toolkit`](crate::Toolkit) keeps tools type-erased as [`DynTool`]:
//! JSON in, JSON out. [`DynTool::call_json`] validates the model's arguments
//! before the tool runs, and a mismatch is a [`ToolError::InvalidArguments`]
//! naming where (`/headers/accept`) and what, which goes back to the model as
//! the tool's result.
//!
//! # Validation: `serde_path_to_error`, not a JSON Schema validator
//!
//! The arguments are validated by deserializing them into `Args` through
//! [`serde_path_to_error`], which reports the JSON path of the first
//! mismatch. The schema is generated *from* `Args`, so deserializing is exactly
//! the check the schema stands for, including what a schema cannot say
//! (custom `Deserialize` impls), and it costs one pass that the call needs
//! anyway. A JSON Schema validator (the `jsonschema` crate) would be a second,
//! heavier pass (regex engines, reference resolution, much longer builds) that
//! could only disagree with the type in ways that would be bugs.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use warden_tools::{Tool, ToolError};
//!
//! /// Arguments of the weather tool.
//! #[derive(Deserialize, JsonSchema)]
//! struct WeatherArgs {
//!     /// City name, e.g. "Lisbon".
//!     city: String,
//! }
//!
//! struct Weather;
//!
//! impl Tool for Weather {
//!     type Args = WeatherArgs;
//!     type Output = String;
//!     fn name(&self) -> &str { "weather" }
//!     fn description(&self) -> &str { "Current weather in a city." }
//!     async fn call(&self, args: WeatherArgs) -> Result<String, ToolError> {
//!         Ok(format!("sunny in {}", args.city))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use warden_tools::DynTool;
//! let tool: Arc<dyn DynTool> = warden_tools::into_dyn(Weather);
//! assert_eq!(tool.schema().parameters["required"], serde_json::json!(["city"]));
//! let out = tool.clone().call_json(Arc::new(serde_json::json!({"city": "Lisbon"}))).await;
//! assert_eq!(out.unwrap(), "sunny in Lisbon");
//! let err = tool.call_json(Arc::new(serde_json::json!({"city": 7}))).await.unwrap_err();
//! assert!(matches!(err, ToolError::InvalidArguments { ref path, .. } if path == "/city"));
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::approval::ApprovalPolicy;
use crate::error::ToolError;
use crate::permission::PermissionSet;

/// A tool: a typed async function a model can call.
///
/// `call` gets arguments already validated and deserialized. Return
/// [`ToolError::retryable`] for failures worth trying again (a 503, a reset
/// connection) and [`ToolError::permanent`] for the others; a panic is caught
/// by the executor and becomes [`ToolError::Panicked`].
///
/// # Cancellation
///
/// The executor drops the future returned by `call` when the call times out,
/// when the caller's deadline passes or the caller goes away (interrupted,
/// killed, gave up), when the executor stops, or when a retry gives up:
/// write tools whose futures may be dropped at any `.await`, and put side
/// effects after the waits they depend on.
pub trait Tool: Send + Sync + 'static {
    /// The arguments, deserialized from the model's JSON; their schema is
    /// what the model sees.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    /// The result, serialized to JSON for the model.
    type Output: Serialize + Send + 'static;

    /// The name the model calls it by (`[a-zA-Z0-9_-]`, at most 64
    /// characters, for every provider to accept it).
    fn name(&self) -> &str;

    /// What it does, for the model.
    fn description(&self) -> &str;

    /// The permissions a caller must hold. None by default.
    fn permissions(&self) -> PermissionSet {
        PermissionSet::new()
    }

    /// Whether a call must be approved first. Not by default.
    fn approval(&self) -> ApprovalPolicy {
        ApprovalPolicy::None
    }

    /// Whether running this call twice does what running it once does, so
    /// that the retry layer may try it again after a timeout (when the first
    /// attempt may have acted). Not by default: a tool that has side effects
    /// is never repeated unless it says so. (Failures the tool returns with
    /// [`ToolError::retryable`] are retried either way: the tool vouches for
    /// them.)
    fn idempotent(&self, args: &Self::Args) -> bool {
        let _ = args;
        false
    }

    /// Runs the tool.
    fn call(&self, args: Self::Args) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
}

/// A tool's description for a model, provider-neutral: the model layer
/// translates it to each provider's format (`tools`/`functions`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolSchema {
    /// The tool's name.
    pub name: Arc<str>,
    /// What it does.
    pub description: Arc<str>,
    /// The JSON Schema (draft 2020-12) of its arguments, without `$schema`.
    pub parameters: Value,
}

impl ToolSchema {
    /// The schema of a tool whose arguments are `A`.
    pub fn of<A: JsonSchema>(name: &str, description: &str) -> Self {
        let mut parameters = schemars::schema_for!(A).to_value();
        if let Value::Object(map) = &mut parameters {
            map.remove("$schema");
        }
        Self {
            name: Arc::from(name),
            description: Arc::from(description),
            parameters,
        }
    }
}

/// Deserializes `args` into `A`, reporting where it does not fit.
///
/// # Errors
///
/// [`ToolError::InvalidArguments`] with the JSON pointer of the first mismatch.
///
/// The message never quotes the model's value (serde's `invalid type:
/// string "sk-...", expected u64` becomes `invalid type: string, expected
/// u64`): arguments may hold secrets, and errors reach logs.
pub fn validate<A: DeserializeOwned>(args: &Value) -> Result<A, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = pointer(e.path());
        ToolError::InvalidArguments {
            path,
            message: without_values(&e.into_inner().to_string()),
        }
    })
}

/// serde's message without the unexpected value it quotes: `invalid type:
/// string "x", expected u64` → `invalid type: string, expected u64`;
/// `unknown variant `x`, expected one of ...` → `unknown variant, expected
/// one of ...`. Other messages (`missing field `url``, `unknown field
/// `x``: a key, which the model needs to see to correct it) are kept.
fn without_values(message: &str) -> String {
    for (prefix, keep_kind) in [
        ("invalid type: ", true),
        ("invalid value: ", true),
        ("invalid length ", false),
        ("unknown variant ", false),
    ] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let expected = rest.rfind(", expected").map_or("", |at| &rest[at..]);
        let head = prefix.trim_end();
        if !keep_kind {
            return format!("{head}{expected}");
        }
        // The kind is the text before the value: `string "x"`, `integer `7``.
        let kind = rest.split(['"', '`']).next().unwrap_or("").trim_end();
        let kind = kind.split(',').next().unwrap_or(kind);
        return format!("{head} {kind}{expected}");
    }
    message.to_owned()
}

/// `serde_path_to_error`'s path (`headers.accept`, `items[0]`) as a JSON
/// pointer (`/headers/accept`, `/items/0`); `""` for the whole value.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// A type-erased tool: JSON in, JSON out. What a [`Toolkit`](crate::Toolkit)
/// and an executor hold. Get one from any [`Tool`] with [`into_dyn`].
pub trait DynTool: Send + Sync + 'static {
    /// The tool's name.
    fn name(&self) -> &str;
    /// The tool's schema.
    fn schema(&self) -> &ToolSchema;
    /// The permissions a caller must hold.
    fn permissions(&self) -> PermissionSet;
    /// Whether a call must be approved first.
    fn approval(&self) -> ApprovalPolicy;
    /// Whether the call with `args` is idempotent ([`Tool::idempotent`]);
    /// `false` when `args` do not fit the schema.
    fn is_idempotent(&self, args: &Value) -> bool;
    /// Validates `args` and runs the tool.
    ///
    /// # Errors
    ///
    /// [`ToolError::InvalidArguments`] when `args` do not fit the schema (the
    /// tool is not run), else whatever the tool returns. A panic is not
    /// caught here (the executor catches it).
    fn call_json(self: Arc<Self>, args: Arc<Value>) -> BoxFuture<'static, Result<Value, ToolError>>;
}

impl fmt::Debug for dyn DynTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynTool")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// Erases a [`Tool`]'s types (and computes its schema once).
pub fn into_dyn<T: Tool>(tool: T) -> Arc<dyn DynTool> {
    let schema = ToolSchema::of::<T::Args>(tool.name(), tool.description());
    Arc::new(Erased { tool, schema })
}

struct Erased<T> {
    tool: T,
    schema: ToolSchema,
}

impl<T: Tool> DynTool for Erased<T> {
    fn name(&self) -> &str {
        &self.schema.name
    }

    fn schema(&self) -> &ToolSchema {
        &self.schema
    }

    fn permissions(&self) -> PermissionSet {
        self.tool.permissions()
    }

    fn approval(&self) -> ApprovalPolicy {
        self.tool.approval()
    }

    fn is_idempotent(&self, args: &Value) -> bool {
        validate::<T::Args>(args).is_ok_and(|args| self.tool.idempotent(&args))
    }

    fn call_json(self: Arc<Self>, args: Arc<Value>) -> BoxFuture<'static, Result<Value, ToolError>> {
        Box::pin(async move {
            let args: T::Args = validate(&args)?;
            let output = self.tool.call(args).await?;
            serde_json::to_value(output).map_err(ToolError::permanent)
        })
    }
}

/// A tool made of an async function; see [`tool_fn`].
pub struct FnTool<A, F> {
    name: Arc<str>,
    description: Arc<str>,
    permissions: PermissionSet,
    approval: ApprovalPolicy,
    idempotent: bool,
    f: F,
    _args: PhantomData<fn(A)>,
}

/// Turns an async function of typed arguments into a [`Tool`], without a
/// trait impl.
///
/// ```
/// use schemars::JsonSchema;
/// use serde::Deserialize;
/// use warden_tools::{tool_fn, Tool, ToolError};
///
/// #[derive(Deserialize, JsonSchema)]
/// struct AddArgs { a: i64, b: i64 }
///
/// let add = tool_fn("add", "Adds two integers.", |args: AddArgs| async move {
///     Ok::<_, ToolError>(args.a + args.b)
/// })
/// .permission("math");
/// assert_eq!(add.name(), "add");
/// ```
pub fn tool_fn<A, O, F, Fut>(name: impl Into<Arc<str>>, description: impl Into<Arc<str>>, f: F) -> FnTool<A, F>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
{
    FnTool {
        name: name.into(),
        description: description.into(),
        permissions: PermissionSet::new(),
        approval: ApprovalPolicy::None,
        idempotent: false,
        f,
        _args: PhantomData,
    }
}

impl<A, F> FnTool<A, F> {
    /// Requires a permission of every caller.
    pub fn permission(mut self, permission: impl Into<crate::Permission>) -> Self {
        self.permissions.insert(permission);
        self
    }

    /// Sets whether calls must be approved.
    pub fn approval(mut self, approval: ApprovalPolicy) -> Self {
        self.approval = approval;
        self
    }

    /// Declares every call idempotent, so that a timed-out call may be
    /// retried ([`Tool::idempotent`]).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

impl<A, F> fmt::Debug for FnTool<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTool")
            .field("name", &self.name)
            .field("permissions", &self.permissions)
            .field("approval", &self.approval)
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl<A, O, F, Fut> Tool for FnTool<A, F>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
{
    type Args = A;
    type Output = O;

    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn permissions(&self) -> PermissionSet {
        self.permissions.clone()
    }

    fn approval(&self) -> ApprovalPolicy {
        self.approval
    }

    fn idempotent(&self, _args: &A) -> bool {
        self.idempotent
    }

    fn call(&self, args: A) -> impl Future<Output = Result<O, ToolError>> + Send {
        (self.f)(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_do_not_quote_the_models_values() {
        let cases = [
            (
                r#"invalid type: string "sk-1", expected u32"#,
                "invalid type: string, expected u32",
            ),
            (
                "invalid type: integer `7`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: map, expected a sequence",
                "invalid type: map, expected a sequence",
            ),
            (
                r#"invalid value: string "a, expected b", expected one of"#,
                "invalid value: string, expected one of",
            ),
            (
                "invalid length 3, expected 2 elements",
                "invalid length, expected 2 elements",
            ),
            (
                "unknown variant `sk-1`, expected `GET` or `POST`",
                "unknown variant, expected `GET` or `POST`",
            ),
            (
                "unknown field `town`, expected `city`",
                "unknown field `town`, expected `city`",
            ),
            ("missing field `url`", "missing field `url`"),
        ];
        for (message, redacted) in cases {
            assert_eq!(without_values(message), redacted);
        }
    }
}
