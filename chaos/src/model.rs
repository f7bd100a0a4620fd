//! Faults in model calls: a [`ChatModel`] wrapper.
//!
//! The agents crate knows nothing of chaos; a fault plan reaches a model
//! through [`Model::wrap_provider`], consulted at the point `model/<model
//! name>` before every attempt (each retry, not each call): an injected
//! failure is a transient [`ModelError`] ([`faulty_model`]).

use std::fmt;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use warden_agents::model::{ChatModel, ChatRequest, ChatResponse, EventStream, Model, ModelError};

use crate::Faults;

/// `model` with every attempt (each retry, not each call) passing through
/// `faults` at `model/<model name>` first: an injected failure is a transient
/// [`ModelError`], retried by the model's retry policy and, once the retries
/// are used up, handed to its fallback.
///
/// ```
/// use warden_agents::model::{Model, OpenAiChat};
/// use warden_chaos::{FaultAction, Faults, faulty_model};
///
/// let faults = Faults::builder(7).build();
/// let model = faulty_model(Model::new(OpenAiChat::new("http://127.0.0.1:9/v1", "m")), faults.clone());
/// faults.arm(&format!("model/{}", model.name()), FaultAction::Fail);
/// ```
pub fn faulty_model(model: Model, faults: Faults) -> Model {
    model.wrap_provider(|provider| Arc::new(FaultyModel::new(provider, faults)))
}

/// A provider that consults a [`Faults`] plan before each call: an injected
/// failure is [`ModelError::transient`], an injected delay waits, an injected
/// panic panics (the agent's turn catches it).
pub struct FaultyModel {
    inner: Arc<dyn ChatModel>,
    faults: Faults,
    point: Arc<str>,
}

impl FaultyModel {
    /// `inner` consulting `faults` at `model/<its model name>`.
    pub fn new(inner: Arc<dyn ChatModel>, faults: Faults) -> Self {
        let point = Arc::from(format!("model/{}", inner.model_name()));
        Self { inner, faults, point }
    }

    async fn inject(&self) -> Result<(), ModelError> {
        self.faults.inject(&self.point).await.map_err(ModelError::transient)
    }
}

impl fmt::Debug for FaultyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyModel")
            .field("inner", &self.inner)
            .field("point", &self.point)
            .finish_non_exhaustive()
    }
}

impl ChatModel for FaultyModel {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn provider_name(&self) -> &'static str {
        self.inner.provider_name()
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        async move {
            self.inject().await?;
            self.inner.chat(req).await
        }
        .boxed()
    }

    fn stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<EventStream, ModelError>> {
        async move {
            self.inject().await?;
            self.inner.stream(req).await
        }
        .boxed()
    }
}
