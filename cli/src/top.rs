//! `warden top URL [--token T] [--once [--wait-for PATH]]`: a studio followed in the terminal.
//!
//! URL is the address the studio printed (it carries the token), or its base with `--token`
//! or `$WARDEN_STUDIO_TOKEN`. The screen is redrawn as changes arrive (at most every 100 ms)
//! and every second for the clocks; `q` or Ctrl-C quits. A lost connection is retried every
//! second, the screen kept meanwhile. `--once` prints one screen as text and exits: after the
//! first snapshot, or once the node `--wait-for PATH` is in the tree.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use tokio::sync::mpsc;
use warden_studio::View;
use warden_studio::remote::Remote;
use warden_studio::top::{render, render_text};

use crate::usage;

struct Args {
    url: String,
    token: Option<String>,
    once: bool,
    wait_for: Option<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut url = None;
    let mut token = std::env::var("WARDEN_STUDIO_TOKEN").ok();
    let mut once = false;
    let mut wait_for = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--token" => token = Some(it.next().ok_or_else(|| usage("--token needs a value"))?.clone()),
            "--once" => once = true,
            "--wait-for" => wait_for = Some(it.next().ok_or_else(|| usage("--wait-for needs a path"))?.clone()),
            other if other.starts_with("--") => return Err(usage(format!("unknown option {other}"))),
            other if url.is_none() => url = Some(other.to_owned()),
            other => return Err(usage(format!("unexpected argument {other:?}"))),
        }
    }
    let url = url.ok_or_else(|| usage("top needs the studio's URL"))?;
    Ok(Args {
        url,
        token,
        once,
        wait_for,
    })
}

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    if args.once {
        return once(&args).await;
    }
    anyhow::ensure!(
        std::io::stdout().is_terminal(),
        "top draws on a terminal; use --once to print one screen"
    );
    interactive(&args).await
}

async fn once(args: &Args) -> anyhow::Result<()> {
    let mut remote = Remote::connect(&args.url, args.token.as_deref()).await?;
    let mut view = View::default();
    let deadline = Duration::from_secs(30);
    let wait = async {
        loop {
            view.take(remote.next().await?);
            let done = match &args.wait_for {
                Some(path) => view.tree.contains_key(path),
                None => true,
            };
            if done {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(deadline, wait)
        .await
        .context("the view did not show what --wait-for names")??;
    print!("{}", render_text(&view, "once", 120, 40));
    Ok(())
}

enum Input {
    Quit,
}

async fn interactive(args: &Args) -> anyhow::Result<()> {
    // Keys come from a thread of their own (crossterm's reads block).
    let (keys_tx, mut keys) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        loop {
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => {
                    if let Ok(Event::Key(key)) = event::read() {
                        let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                        if key.code == KeyCode::Char('q') || key.code == KeyCode::Esc || ctrl_c {
                            let _ = keys_tx.send(Input::Quit);
                            return;
                        }
                    }
                }
                Ok(false) => {
                    if keys_tx.is_closed() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    let mut terminal = ratatui::init();
    let result = follow(args, &mut terminal, &mut keys).await;
    ratatui::restore();
    result
}

async fn follow(
    args: &Args,
    terminal: &mut ratatui::DefaultTerminal,
    keys: &mut mpsc::UnboundedReceiver<Input>,
) -> anyhow::Result<()> {
    let mut view = View::default();
    let mut status = "connecting".to_owned();
    let mut drawn = Instant::now();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    loop {
        terminal.draw(|screen| render(screen, &view, &status))?;
        let mut remote = match Remote::connect(&args.url, args.token.as_deref()).await {
            Ok(remote) => remote,
            Err(warden_studio::remote::RemoteError::Unauthorized) => anyhow::bail!("the studio refused the token"),
            Err(e) => {
                status = format!("unreachable ({e}); retrying");
                tokio::select! {
                    Some(Input::Quit) = keys.recv() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        status = "live".into();
        loop {
            tokio::select! {
                Some(Input::Quit) = keys.recv() => return Ok(()),
                frame = remote.next() => match frame {
                    Ok(frame) => {
                        view.take(frame);
                        if drawn.elapsed() >= Duration::from_millis(100) {
                            terminal.draw(|screen| render(screen, &view, &status))?;
                            drawn = Instant::now();
                        }
                    }
                    Err(e) => {
                        status = format!("disconnected ({e}); retrying");
                        break;
                    }
                },
                _ = clock.tick() => {
                    terminal.draw(|screen| render(screen, &view, &status))?;
                    drawn = Instant::now();
                }
            }
        }
    }
}
