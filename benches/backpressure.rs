//! Backpressure against a provider's limits: N supervised ReAct agents fan out through one
//! shared `Model` to the fake provider (OpenAI format, real HTTP on 127.0.0.1) enforcing
//! requests and tokens per minute, as issue 13 asks: does every task complete, how many
//! requests are answered 429, and how close does the achieved rate come to the limit?
//!
//! The model holds a client-side `RateLimiter` at 95 % of the provider's request limit and a
//! token limiter at 95 % of its token limit (waits up to 10 minutes, in arrival order), and
//! retries 429s. The provider's budgets start full (a burst of a minute's worth), so the
//! achieved rate is measured after the burst: `(N - burst) / (wall - time of the burst)`,
//! against the limit.
//!
//! ```text
//! cargo bench --bench backpressure                          # 1000 agents, 600 rpm, 100k tpm
//! WARDEN_BENCH_QUICK=1 cargo bench --bench backpressure     # 100 agents, 60 requests and 20k tokens per 6 s
//! ```
//!
//! Settings (environment): `AGENTS` (1000), `RPM` (600), `TPM` (100000), `WINDOW_S` (60).

use std::time::{Duration, Instant};

use futures::StreamExt;
use warden::agents::agent::{Agent, AgentRef};
use warden::agents::message::AgentMessage;
use warden::agents::model::{Model, OpenAiChat, RetryPolicy};
use warden::agents::pattern::FanOut;
use warden::agents::react::ReAct;
use warden::resilience::{RateLimit, RateLimiter};
use warden::supervisor::{Strategy, Supervisor};
use warden_fake_provider::{Answer, FakeProvider, Limits};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let quick = std::env::var_os("WARDEN_BENCH_QUICK").is_some();
    let n: usize = env_or("AGENTS", if quick { 100 } else { 1000 });
    let rpm: u32 = env_or("RPM", if quick { 60 } else { 600 });
    let tpm: u32 = env_or("TPM", if quick { 20_000 } else { 100_000 });
    let window = Duration::from_secs(env_or("WINDOW_S", if quick { 6 } else { 60 }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let fake = FakeProvider::start().await;
        fake.set_default_reply(Answer::text("42"));
        fake.set_limits(
            Limits::none()
                .requests_per_minute(rpm)
                .tokens_per_minute(tpm)
                .window(window),
        );
        let under = |limit: u32| (f64::from(limit) * 0.95) as u32;
        let requests = RateLimiter::new(RateLimit::new(under(rpm), window));
        let tokens = RateLimiter::new(RateLimit::new(under(tpm), window));
        let wait = Duration::from_secs(600);
        let model = Model::new(OpenAiChat::new(fake.base_url_openai(), "fake-model"))
            .with_retry(RetryPolicy::new(5))
            .with_rate_limit(requests, wait)
            .with_token_rate_limit(tokens, wait);
        let agents: Vec<Agent> = (0..n)
            .map(|i| {
                Agent::new(
                    format!("a{i}"),
                    ReAct::builder(model.clone()).system("Answer with a number.").max_tokens(100).build(),
                )
            })
            .collect();
        let handles: Vec<AgentRef> = agents.iter().map(Agent::handle).collect();
        let root = Supervisor::builder("root")
            .strategy(Strategy::OneForOne)
            .children(agents.iter().map(Agent::child_spec))
            .spawn()
            .await
            .expect("the tree starts");
        let question = AgentMessage::user("What is 6 x 7?");
        let started = Instant::now();
        let mut answered = 0;
        let mut failed = 0;
        let mut burst_done = None;
        let burst = (under(rpm) as usize).min(n);
        let mut answers = FanOut::new(Duration::from_secs(3600)).run_same(handles.iter().map(|a| a.clone().into()), &question);
        while let Some(answer) = answers.next().await {
            match answer.result {
                Ok(reply) if reply.text() == "42" => answered += 1,
                _ => failed += 1,
            }
            if answered == burst {
                burst_done.get_or_insert_with(|| started.elapsed());
            }
        }
        let wall = started.elapsed();
        let refused = fake.rate_limited_count();
        let per_s = f64::from(rpm) / window.as_secs_f64();
        let after_burst = wall.saturating_sub(burst_done.unwrap_or_default()).as_secs_f64();
        let achieved = if n > burst && after_burst > 0.0 {
            (n - burst) as f64 / after_burst / per_s
        } else {
            f64::NAN
        };
        println!("# {n} ReAct agents, one Model, fake provider at {rpm} requests and {tpm} tokens per {window:?}");
        println!("| agents | completed | failed | requests | answered 429 | 429 share | wall | achieved rate after the burst ÷ limit |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {n} | {answered} | {failed} | {} | {refused} | {:.2} % | {:.1} s | {:.1} % |",
            fake.request_count(),
            100.0 * refused as f64 / fake.request_count().max(1) as f64,
            wall.as_secs_f64(),
            100.0 * achieved
        );
        println!(
            "SUMMARY backpressure n={n} completed={answered} failed={failed} refused={refused} wall_s={:.1} achieved={:.3}",
            wall.as_secs_f64(),
            achieved
        );
        root.stop().await;
    });
}
