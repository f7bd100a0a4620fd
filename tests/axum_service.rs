//! `examples/axum_service.rs` run as a real process and stopped with SIGTERM: the health
//! endpoint reports the tree, the studio is mounted, an ask works; at SIGTERM an ask in flight
//! still gets its reply when it finishes within the drain, or a typed error (`503` with the
//! agent's error kind) when the tree stops under it; the shutdown steps come in order and the
//! process exits 0.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use warden_fake_provider::FakeProvider;

const DEADLINE: Duration = Duration::from_secs(30);

struct Service {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    base: String,
    studio: String,
}

fn example() -> std::path::PathBuf {
    // target/debug/deps/this-test → target/debug/examples/axum_service
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples/axum_service")
}

impl Service {
    async fn start(fake: &FakeProvider, drain_ms: u64) -> Self {
        let mut child = tokio::process::Command::new(example())
            .args(["--listen", "127.0.0.1:0", "--drain-ms", &drain_ms.to_string()])
            .env("OPENAI_API_KEY", "test")
            .env("OPENAI_BASE_URL", fake.base_url_openai())
            .env("OPENAI_MODEL", "gpt-test")
            .env_remove("WARDEN_MODEL_CONFIG")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the example is built by cargo test");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = next_line(&mut lines)
            .await
            .strip_prefix("listening ")
            .unwrap()
            .to_owned();
        let studio = next_line(&mut lines).await.strip_prefix("studio ").unwrap().to_owned();
        Self {
            child,
            lines,
            base,
            studio,
        }
    }

    fn terminate(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn line(&mut self) -> String {
        next_line(&mut self.lines).await
    }

    /// Sends SIGTERM once `in_flight` reached the model, and reads the first shutdown line.
    async fn terminate_during(&mut self, fake: &FakeProvider, seen: usize) {
        fake.wait_for_requests(seen + 1).await;
        self.terminate();
        assert_eq!(
            self.line().await,
            "shutdown: listener closed, draining 1 asks in flight"
        );
    }

    /// The last shutdown lines, in order, and a clean exit.
    async fn finishes(mut self) {
        assert_eq!(self.line().await, "shutdown: tree stopped");
        assert_eq!(self.line().await, "shutdown: done");
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> String {
    tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the service said nothing")
        .unwrap()
        .expect("the service's output ended")
}

fn ask(base: &str, text: &str) -> tokio::task::JoinHandle<(u16, Value)> {
    let (url, body) = (format!("{base}/ask"), json!({"text": text}));
    tokio::spawn(async move {
        let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_service_in_order_and_answers_every_ask() {
    let fake = FakeProvider::start().await;
    fake.set_default_reply(warden_fake_provider::Answer::text("Filed."));
    let http = reqwest::Client::new();

    // Up: health, studio, an ask.
    let mut service = Service::start(&fake, 10_000).await;
    let health: Value = http
        .get(format!("{}/health", service.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["tree"]["root"]["children"][0]["path"], "service/clerk");
    let page = http.get(&service.studio).send().await.unwrap();
    assert!(page.status().is_success());
    assert!(page.text().await.unwrap().contains("Warden Studio"));
    let no_token = http
        .get(format!("{}/studio/api/view", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    assert_eq!(
        ask(&service.base, "file it").await.unwrap(),
        (200, json!({"reply": "Filed."}))
    );

    // SIGTERM with an ask in flight that finishes within the drain: it gets its reply.
    fake.set_latency(Duration::from_millis(500));
    let seen = fake.request_count();
    let in_flight = ask(&service.base, "file another");
    service.terminate_during(&fake, seen).await;
    assert_eq!(in_flight.await.unwrap(), (200, json!({"reply": "Filed."})));
    let base = service.base.clone();
    service.finishes().await;
    assert!(http.get(format!("{base}/health")).send().await.is_err());

    // SIGTERM with an ask that outlasts the drain: the tree stops under it, and it gets a
    // typed error, not a dropped connection.
    let mut service = Service::start(&fake, 100).await;
    fake.set_latency(Duration::from_secs(20));
    let seen = fake.request_count();
    let in_flight = ask(&service.base, "take your time");
    service.terminate_during(&fake, seen).await;
    assert_eq!(service.line().await, "shutdown: 1 asks still in flight after 100ms");
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        ["agent_down", "not_started", "not_delivered"].contains(&body["error"].as_str().unwrap()),
        "{body}"
    );
    service.finishes().await;
}
