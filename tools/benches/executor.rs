//! The cost of a call through a tool executor with every layer on, against
//! calling the tool's function directly and against a bare ractor call round
//! trip; and a call rejected by an open breaker.
//!
//! `cargo bench -p warden-tools --bench executor`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use warden_tools::circuit_breaker::CircuitBreakerConfig;
use warden_tools::{
    Caller, RateLimit, RetryPolicy, Tool, ToolCall, ToolError, ToolExecutor, ToolService, ToolStack, Toolkit, tool_fn,
};

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

fn add_tool() -> impl Tool<Args = AddArgs, Output = i64> {
    tool_fn(
        "add",
        "Adds.",
        |x: AddArgs| async move { Ok::<_, ToolError>(x.a + x.b) },
    )
    .permission("math")
}

struct Echo;

enum EchoMsg {
    Ask(i64, RpcReplyPort<i64>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for EchoMsg {}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<EchoMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(&self, _: ActorRef<EchoMsg>, msg: EchoMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        let EchoMsg::Ask(n, reply) = msg;
        let _ = reply.send(n + 1);
        Ok(())
    }
}

/// A no-op user middleware, so the path includes one.
#[derive(Clone)]
struct Noop;

impl tower::Layer<ToolService> for Noop {
    type Service = ToolService;
    fn layer(&self, inner: ToolService) -> ToolService {
        inner
    }
}

fn every_layer() -> ToolStack {
    ToolStack::builder()
        .permission()
        .approval()
        .rate_limit(RateLimit::new(u32::MAX, Duration::from_millis(1)))
        .circuit_breaker(CircuitBreakerConfig::default())
        .concurrency_limit(1024, 1024)
        .retry(RetryPolicy::new(3))
        .timeout(Duration::from_secs(30))
        .layer(Noop)
        .build()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let deadline = Duration::from_secs(5);
    let caller = Caller::new("bench").with("math");
    let call = || ToolCall::new("add", json!({"a": 1, "b": 2})).caller(caller.clone());

    let mut group = c.benchmark_group("tool_call");

    let tool = add_tool();
    group.bench_function("direct_fn", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(tool.call(AddArgs { a: 1, b: 2 }).await.unwrap()) })
    });

    let (echo, _) = rt.block_on(Actor::spawn(None, Echo, ())).unwrap();
    group.bench_function("bare_ractor_call", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                warden_supervisor::request(&echo, |reply| EchoMsg::Ask(1, reply), deadline)
                    .await
                    .unwrap(),
            )
        })
    });

    let built = every_layer().build(warden_tools::into_dyn(add_tool()), None);
    group.bench_function("stack_only_every_layer", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(built.service.clone().oneshot(call()).await.unwrap()) })
    });

    let executor = ToolExecutor::new(Toolkit::new().tool(add_tool()), every_layer());
    let (client, _) = rt.block_on(executor.spawn()).unwrap();
    group.bench_function("executor_every_layer", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(client.call(call(), deadline).await.unwrap()) })
    });

    let breakers = rt.block_on(client.breakers()).unwrap();
    breakers["add"].force_open();
    group.bench_function("executor_rejected_open", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(client.call(call(), deadline).await.unwrap_err()) })
    });
    built.breaker.as_ref().unwrap().force_open();
    group.bench_function("stack_only_rejected_open", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(built.service.clone().oneshot(call()).await.unwrap_err()) })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
