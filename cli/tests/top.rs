//! `warden top` against a live studio: `--once` prints the tree as text; a wrong token is a
//! one-line error; and the interactive view, run in a pseudo-terminal (util-linux `script`),
//! draws the tree, follows a restart and quits on `q`.

use std::process::Stdio;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_studio::Studio;
use warden_supervisor::{ChildSpec, Strategy, Supervisor};

const DEADLINE: Duration = Duration::from_secs(30);

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_follows_a_live_studio() {
    let studio = Studio::builder().start();
    let root = Supervisor::builder("root")
        .strategy(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .inline_observer(studio.supervisor_observer())
        .child(ChildSpec::actor("pinger", || (Idle, ())))
        .spawn()
        .await
        .unwrap();
    studio.attach(&root).await;
    let server = studio.serve("127.0.0.1:0").await.unwrap();
    let warden = env!("CARGO_BIN_EXE_warden");

    // One screen, as text.
    let once = tokio::process::Command::new(warden)
        .args(["top", &server.url(), "--once", "--wait-for", "root/pinger"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&once.stdout);
    assert!(once.status.success(), "{}", String::from_utf8_lossy(&once.stderr));
    assert!(text.contains("running    root"), "{text}");
    assert!(text.contains("running    pinger restarts 0"), "{text}");

    // A wrong token.
    let base = format!("http://{}/", server.addr());
    let refused = tokio::process::Command::new(warden)
        .args(["top", &base, "--token", "nope", "--once"])
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "warden: the studio refused the token"
    );

    // Interactive, in a pseudo-terminal: the tree, then a restart, then `q`.
    let command = format!("stty cols 140 rows 40; exec {warden} top '{}'", server.url());
    let mut top = tokio::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("util-linux script");
    let mut screen = top.stdout.take().unwrap();
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        let wait = async {
            let mut buf = [0u8; 4096];
            while !seen.contains(needle) {
                let n = screen.read(&mut buf).await.unwrap();
                assert!(n > 0, "top ended early: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("top never drew {needle:?}: {seen}"));
    };
    read_until("pinger", &mut seen).await;
    read_until("live", &mut seen).await;
    seen.clear();
    root.which_children().await.unwrap()[0].state.actor().unwrap().kill();
    read_until("intensity 1/5", &mut seen).await;
    let mut stdin = top.stdin.take().unwrap();
    stdin.write_all(b"q").await.unwrap();
    stdin.flush().await.unwrap();
    let status = tokio::time::timeout(DEADLINE, top.wait()).await.unwrap().unwrap();
    assert!(status.success());

    server.shutdown().await;
    root.stop().await;
}
