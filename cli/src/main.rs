//! `warden`: the command-line tool of a Warden deployment.
//!
//! ```text
//! warden journal [--store PATH] list [--all] [--limit N]
//! warden journal [--store PATH] show TASK
//! warden journal [--store PATH] pending
//! warden journal [--store PATH] answer QUESTION TEXT
//! warden journal [--store PATH] prune [--older-than SECONDS] [--keep N]
//! warden node --name NAME [--listen HOST:PORT] [--join HOST:PORT]... [--cookie-file FILE]
//!             [--heartbeat-ms N] [--down-after-ms N] [--forget-after-ms N]
//!             [--tls-cert PEM --tls-key PEM --tls-ca PEM --tls-name NAME] [--studio HOST:PORT]
//!             [--workers N]
//! warden top URL [--token TOKEN] [--once [--wait-for PATH]]
//! ```
//!
//! The store is `--store PATH` (or a `postgres://` URL), else `$WARDEN_JOURNAL`. The embedded store may be open in a
//! running agent process at the same time: `answer` reaches its waiting turn.

mod journal;
#[cfg(feature = "cluster")]
mod node;
mod top;

use std::process::ExitCode;

const USAGE: &str = "\
usage: warden <command>

commands:
  journal [--store PATH] list [--all] [--limit N]   unfinished tasks (all tasks with --all)
  journal [--store PATH] show TASK                  a task, its steps and its outcome
  journal [--store PATH] pending                    questions waiting for a human
  journal [--store PATH] answer QUESTION TEXT       answers a question (QUESTION is TASK-STEP)
  journal [--store PATH] prune [--older-than SECONDS] [--keep N]
                                                    removes finished tasks
  node --name NAME [--listen HOST:PORT] [--join HOST:PORT]... [--cookie-file FILE]
       [--heartbeat-ms N] [--down-after-ms N] [--forget-after-ms N]
       [--tls-cert PEM --tls-key PEM --tls-ca PEM --tls-name NAME] [--studio HOST:PORT]
       [--workers N]
                                                    runs a cluster node (built with the
                                                    cluster feature); the cookie is the
                                                    file's first line, else $WARDEN_COOKIE;
                                                    --studio serves a Warden Studio of its
                                                    agents (token: $WARDEN_STUDIO_TOKEN, else
                                                    random; its URL is printed); --workers:
                                                    its runtime's threads (default 1)
  top URL [--token TOKEN] [--once [--wait-for PATH]]
                                                    follows a Warden Studio in the terminal
                                                    (URL as the studio printed it; the token
                                                    also from $WARDEN_STUDIO_TOKEN); --once
                                                    prints one screen and exits

The journal's store is --store PATH (a file, or a postgres:// URL), else $WARDEN_JOURNAL.";

/// A command line that does not parse: the usage is printed, exit status 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    #[cfg(feature = "cluster")]
    if args.first().map(String::as_str) == Some("node") {
        match node::workers(&args[1..]) {
            Ok(workers) => {
                builder.worker_threads(workers);
            }
            Err(error) => {
                eprintln!("warden: {error}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warden: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("journal") => runtime.block_on(journal::run(&args[1..])),
        #[cfg(feature = "cluster")]
        Some("node") => runtime.block_on(node::run(&args[1..])),
        #[cfg(not(feature = "cluster"))]
        Some("node") => Err(Usage("this warden was built without the cluster feature".into()).into()),
        Some("top") => runtime.block_on(top::run(&args[1..])),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(Usage(format!("unknown command {other:?}")).into()),
        None => Err(Usage("a command is needed".into()).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<Usage>() => {
            eprintln!("warden: {error}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("warden: {error:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}
