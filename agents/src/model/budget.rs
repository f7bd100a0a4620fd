//! [`Budget`]: how many tokens, and how much money, the models given it may spend.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::types::Usage;

/// What a model costs, per million tokens (in the currency of your choice, the same for
/// every price and budget), from a model config's `price` table or
/// [`Model::with_price`](super::Model::with_price).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million input (prompt) tokens.
    pub input_per_million: f64,
    /// Per million output (generated) tokens.
    pub output_per_million: f64,
}

impl Price {
    /// A price per million input and output tokens.
    pub fn per_million(input: f64, output: f64) -> Self {
        Self {
            input_per_million: input,
            output_per_million: output,
        }
    }

    /// What `usage` costs.
    pub fn of(&self, usage: Usage) -> f64 {
        let cost = (usage.input_tokens as f64 * self.input_per_million
            + usage.output_tokens as f64 * self.output_per_million)
            / 1e6;
        if cost.is_finite() { cost.max(0.0) } else { 0.0 }
    }
}

/// What a [`Budget`] has spent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Spend {
    /// Tokens, input and output.
    pub tokens: u64,
    /// Cost, by the models' [`Price`]s.
    pub cost: f64,
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tokens, cost {:.4}", self.tokens, self.cost)
    }
}

/// A spending limit in tokens and cost, shared by every model given a clone of it
/// ([`Model::with_budget`](super::Model::with_budget)): one per run, per team, per tenant, as
/// you hand them out. A call is checked before it is sent: once the budget is spent, calls
/// fail at once with [`ModelError::BudgetExceeded`](super::ModelError::BudgetExceeded), which
/// says the spend so far, and an agent whose turn fails so escalates it to its supervisor
/// right away. Each answer's usage is added when it arrives (a call in flight may take the
/// spend past the limit by its own size; none is sent after).
///
/// ```
/// use warden_agents::model::{Budget, Price};
///
/// let run = Budget::new("run-42").max_tokens(50_000).max_cost(0.50);
/// assert!(run.check().is_ok());
/// run.record(warden_agents::model::Usage { input_tokens: 40_000, output_tokens: 12_000 }, Price::default());
/// assert_eq!(run.spent().tokens, 52_000);
/// assert!(run.check().is_err());
/// ```
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    max_tokens: Option<u64>,
    /// Millionths of the currency, so that spends add up exactly and atomically.
    max_micros: Option<u64>,
    tokens: AtomicU64,
    micros: AtomicU64,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("name", &self.inner.name)
            .field("max_tokens", &self.inner.max_tokens)
            .field("max_cost", &self.inner.max_micros.map(|m| m as f64 / 1e6))
            .field("spent", &self.spent())
            .finish()
    }
}

fn micros(cost: f64) -> u64 {
    if cost.is_finite() && cost > 0.0 {
        (cost * 1e6).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

impl Budget {
    /// An unlimited budget called `name` (set limits with [`max_tokens`](Self::max_tokens) and
    /// [`max_cost`](Self::max_cost)).
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                max_tokens: None,
                max_micros: None,
                tokens: AtomicU64::new(0),
                micros: AtomicU64::new(0),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            name: self.inner.name.clone(),
            max_tokens: self.inner.max_tokens,
            max_micros: self.inner.max_micros,
            tokens: AtomicU64::new(self.inner.tokens.load(Ordering::Acquire)),
            micros: AtomicU64::new(self.inner.micros.load(Ordering::Acquire)),
        };
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// At most `tokens` tokens, input and output together.
    pub fn max_tokens(self, tokens: u64) -> Self {
        self.with(|i| i.max_tokens = Some(tokens))
    }

    /// At most `cost`, by the models' [`Price`]s.
    pub fn max_cost(self, cost: f64) -> Self {
        self.with(|i| i.max_micros = Some(micros(cost)))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What it has spent.
    pub fn spent(&self) -> Spend {
        Spend {
            tokens: self.inner.tokens.load(Ordering::Acquire),
            cost: self.inner.micros.load(Ordering::Acquire) as f64 / 1e6,
        }
    }

    /// Whether a call may still be sent.
    ///
    /// # Errors
    ///
    /// The spend so far, once a limit is reached.
    pub fn check(&self) -> Result<(), Spend> {
        let tokens = self.inner.tokens.load(Ordering::Acquire);
        let micros = self.inner.micros.load(Ordering::Acquire);
        let over = self.inner.max_tokens.is_some_and(|max| tokens >= max)
            || self.inner.max_micros.is_some_and(|max| micros >= max);
        if over { Err(self.spent()) } else { Ok(()) }
    }

    /// Adds what an answer used, at `price`.
    pub fn record(&self, usage: Usage, price: Price) {
        let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
        let _ = self
            .inner
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_add(tokens)));
        let cost = micros(price.of(usage));
        let _ = self
            .inner
            .micros
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| Some(m.saturating_add(cost)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_add_up_and_saturate() {
        let budget = Budget::new("b").max_cost(1.0);
        let price = Price::per_million(3.0, 15.0);
        budget.record(
            Usage {
                input_tokens: 100_000,
                output_tokens: 20_000,
            },
            price,
        );
        assert_eq!(budget.spent().tokens, 120_000);
        assert!((budget.spent().cost - 0.6).abs() < 1e-9);
        assert!(budget.check().is_ok());
        budget.record(
            Usage {
                input_tokens: u64::MAX,
                output_tokens: u64::MAX,
            },
            Price::per_million(f64::MAX, f64::NAN),
        );
        assert_eq!(budget.spent().tokens, u64::MAX);
        assert!(budget.check().is_ok(), "a price that is not a number costs nothing");
        budget.record(
            Usage {
                input_tokens: 1_000_000,
                output_tokens: 0,
            },
            Price::per_million(1.0, 0.0),
        );
        assert!(budget.check().is_err());
        assert!(Budget::new("free").check().is_ok());
    }
}
