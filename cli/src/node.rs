//! `warden node`: runs a cluster node that starts the built-in kinds for supervisors on
//! other nodes, and prints what happens to it, one line per event, until SIGTERM or SIGINT.
//! With `--tls-cert`, `--tls-key`, `--tls-ca` and `--tls-name` (PEM files and the name the
//! cluster's certificates are issued for) it speaks mutual TLS only. With `--studio
//! HOST:PORT` it serves a Warden Studio of what it hosts: its agents' turns, model calls,
//! tokens and questions, which a studio elsewhere can follow (`Studio::follow`) to see the
//! whole cluster in one view. Its token is `$WARDEN_STUDIO_TOKEN`, else a random one; the
//! `studio` line prints the address with it.
//!
//! ```text
//! ready NAME LISTEN INCARNATION
//! studio URL                   (with --studio, after ready)
//! up NODE INCARNATION          | unreachable NODE | down NODE REASON | rejected PEER
//! forgotten ADDR               (a learned address that stopped answering, no longer dialled)
//! hosting ORIGIN CHILD         | exited ORIGIN CHILD REASON
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use warden_cluster::{Node, NodeEvent};
use warden_studio::Studio;

use crate::journal::option;
use crate::usage;

/// The threads of a node's runtime unless `--workers` says otherwise. A node's work is
/// message passing and waiting on sockets; on one thread, a message from the network to the
/// actor it is for, and its answer back, never wakes a second thread (on the 2-vCPU machine
/// of BENCHMARKS.md section 11 that took the remote ask's p50 from 101 to 75 µs). Give a
/// node more for kinds that compute.
pub(crate) const DEFAULT_WORKERS: usize = 1;

/// `--workers N`: the threads of the node's runtime (at least 1).
pub(crate) fn workers(args: &[String]) -> anyhow::Result<usize> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match option::<usize>(&args, "--workers")? {
        None => Ok(DEFAULT_WORKERS),
        Some(0) => Err(usage("--workers needs at least 1")),
        Some(n) => Ok(n),
    }
}

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let name = text(&args, "--name")?.ok_or_else(|| usage("node needs --name NAME"))?;
    let studio = match text(&args, "--studio")? {
        Some(addr) => Some((studio()?, addr)),
        None => None,
    };
    // The built-in kinds: `echo` (every node), and ReAct agents on OpenAI-compatible servers
    // (watched by the studio, when there is one).
    let mut builder = match &studio {
        Some((studio, _)) => Node::builder(name).kind(
            "react_agent",
            warden_cluster::react_agent_kind_observed(studio.agent_observer()),
        ),
        None => Node::builder(name).kind("react_agent", warden_cluster::react_agent_kind()),
    };
    if let Some(listen) = text(&args, "--listen")? {
        builder = builder.listen(address(listen)?);
    }
    builder = builder.cookie(cookie(&args)?);
    for (at, flag) in args.iter().enumerate() {
        if *flag == "--join" {
            let addr = args.get(at + 1).ok_or_else(|| usage("--join needs an address"))?;
            builder = builder.seed(address(addr)?);
        }
    }
    if let Some(ms) = option::<u64>(&args, "--forget-after-ms")? {
        builder = builder.forget_after(Duration::from_millis(ms));
    }
    let heartbeat: Option<u64> = option(&args, "--heartbeat-ms")?;
    let down_after: Option<u64> = option(&args, "--down-after-ms")?;
    if heartbeat.is_some() || down_after.is_some() {
        let heartbeat = heartbeat.map_or(warden_cluster::DEFAULT_HEARTBEAT, Duration::from_millis);
        let down_after = down_after.map_or(warden_cluster::DEFAULT_DOWN_AFTER, Duration::from_millis);
        builder = builder.heartbeat(heartbeat, down_after);
    }
    let tls = [
        text(&args, "--tls-cert")?,
        text(&args, "--tls-key")?,
        text(&args, "--tls-ca")?,
        text(&args, "--tls-name")?,
    ];
    match tls {
        [None, None, None, None] => {}
        [Some(cert), Some(key), Some(ca), Some(name)] => {
            let read = |file: &str| std::fs::read(file).with_context(|| format!("cannot read {file}"));
            builder = builder.tls(warden_cluster::Tls::from_pem(
                &read(cert)?,
                &read(key)?,
                &read(ca)?,
                name,
            )?);
        }
        _ => return Err(usage("TLS needs all of --tls-cert, --tls-key, --tls-ca and --tls-name")),
    }
    let node = builder.start().await?;
    let mut events = node.events();
    say(&format!(
        "ready {} {} {}",
        node.name(),
        node.listen_addr(),
        node.incarnation()
    ));
    let server = match &studio {
        Some((studio, addr)) => {
            let server = studio.serve(addr).await?;
            say(&format!("studio {}", server.url()));
            Some(server)
        }
        None => None,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => say(&line(&event)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => say(&format!("lagged {n}")),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    node.stop().await;
    say("stopped");
    Ok(())
}

/// The node's studio, reading its agents' model and tool calls from `tracing`.
fn studio() -> anyhow::Result<Studio> {
    let mut builder = Studio::builder();
    if let Ok(token) = std::env::var("WARDEN_STUDIO_TOKEN")
        && !token.is_empty()
    {
        builder = builder.token(token);
    }
    let studio = builder.start();
    tracing_subscriber::registry()
        .with(studio.tracing_layer())
        .try_init()
        .context("cannot install the studio's tracing layer")?;
    Ok(studio)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the parent went away) is no reason to stop serving.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn line(event: &NodeEvent) -> String {
    match event {
        NodeEvent::Up { node, incarnation } => format!("up {node} {incarnation}"),
        NodeEvent::Unreachable { node } => format!("unreachable {node}"),
        NodeEvent::Down { node, reason } => format!("down {node} {reason:?}"),
        NodeEvent::Rejected { peer } => format!("rejected {peer}"),
        NodeEvent::Forgotten { addr } => format!("forgotten {addr}"),
        NodeEvent::Hosting { origin, child } => format!("hosting {origin} {child}"),
        NodeEvent::HostedExited { origin, child, reason } => format!("exited {origin} {child} {reason}"),
        other => format!("{other:?}"),
    }
}

fn text<'a>(args: &[&'a str], flag: &str) -> anyhow::Result<Option<&'a str>> {
    match args.iter().position(|a| *a == flag) {
        None => Ok(None),
        Some(at) => args
            .get(at + 1)
            .copied()
            .map(Some)
            .ok_or_else(|| usage(format!("{flag} needs a value"))),
    }
}

fn address(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .map_err(|_| usage(format!("{text:?} is not an address (HOST:PORT)")))
}

/// The cookie: `--cookie-file FILE` (its first line), else `$WARDEN_COOKIE`. Never an
/// argument: those show in `ps`.
fn cookie(args: &[&str]) -> anyhow::Result<String> {
    if let Some(file) = text(args, "--cookie-file")? {
        let content = std::fs::read_to_string(file).with_context(|| format!("cannot read the cookie file {file}"))?;
        let cookie = content.lines().next().unwrap_or("").trim().to_string();
        if cookie.is_empty() {
            return Err(usage(format!("the cookie file {file} is empty")));
        }
        return Ok(cookie);
    }
    match std::env::var("WARDEN_COOKIE") {
        Ok(cookie) if !cookie.is_empty() => Ok(cookie),
        _ => Err(usage("no cookie: give --cookie-file FILE or set WARDEN_COOKIE")),
    }
}
