//! The web view in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs), driven over WebDriver: the page shows the tree; a child the chaos monkey
//! kills is shown restarted within a second; a question an agent asks a human is answered from
//! the page and the agent resumes; a tool call that hangs is flagged stuck, and unflagged when
//! it returns. Screenshots go to `target/studio-screenshots/`.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use warden_chaos::{ChaosAction, ChaosMonkey, Schedule};

use support::DEADLINE;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, killed when dropped.
struct Driver(tokio::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

async fn start_driver() -> anyhow::Result<(Driver, String)> {
    anyhow::ensure!(
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
        "this test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting chromedriver")?;
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    // Ready once its status says so.
    let http = reqwest::Client::new();
    let ready = async {
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && let Ok(status) = r.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, ready)
        .await
        .context("chromedriver did not get ready")?;
    Ok((driver, url))
}

async fn browser(driver: &str, profile: &std::path::Path) -> anyhow::Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    Ok(ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await?)
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/studio-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

async fn screenshot(client: &Client, name: &str) -> anyhow::Result<()> {
    let png = client.screenshot().await?;
    std::fs::write(screenshots().join(name), png)?;
    Ok(())
}

async fn wait_for(client: &Client, css: &str, within: Duration) -> anyhow::Result<()> {
    client
        .wait()
        .at_most(within)
        .every(Duration::from_millis(10))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("the page did not show {css} within {within:?}"))?;
    Ok(())
}

async fn wait_gone(client: &Client, css: &str) -> anyhow::Result<()> {
    let gone = async {
        loop {
            if client.find_all(Locator::Css(css)).await?.is_empty() {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, gone)
        .await
        .with_context(|| format!("{css} stayed on the page"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_system_live_in_chromium() -> anyhow::Result<()> {
    let system = support::start().await?;
    let server = system.studio.serve("127.0.0.1:0").await?;
    let (_driver, driver_url) = start_driver().await?;
    let profile = tempfile::tempdir()?;
    let client = browser(&driver_url, profile.path()).await?;
    let result = drive(&client, &system, &server.url()).await;
    if result.is_err() {
        let _ = screenshot(&client, "failure.png").await;
    }
    client.close().await?;
    server.shutdown().await;
    system.root.stop().await;
    result
}

async fn drive(client: &Client, system: &support::System, url: &str) -> anyhow::Result<()> {
    // The tree.
    client.goto(url).await?;
    for path in ["root/pinger", "root/tools", "root/clerk"] {
        wait_for(
            client,
            &format!(r#"li[data-path="{path}"][data-state="running"]"#),
            DEADLINE,
        )
        .await?;
    }
    wait_for(client, r#"#conn[data-state="live"]"#, DEADLINE).await?;
    screenshot(client, "tree.png").await?;

    // A kill by the chaos monkey, and the restart on the page within a second.
    let killed = Instant::now();
    ChaosMonkey::new(&system.root)
        .target("root/pinger".parse()?)
        .actions([ChaosAction::Kill])
        .schedule(Schedule::Every(Duration::from_millis(1)))
        .max_actions(1)
        .on_action(system.studio.chaos_observer())
        .run()
        .await;
    wait_for(
        client,
        r#"li[data-path="root/pinger"][data-state="running"][data-restarts="1"]"#,
        Duration::from_secs(1).saturating_sub(killed.elapsed()),
    )
    .await?;
    eprintln!("restart shown {:?} after the kill", killed.elapsed());
    wait_for(client, r#"tr[data-timeline-kind="chaos"]"#, DEADLINE).await?;
    screenshot(client, "restart.png").await?;

    // A question to a human, answered from the page; the agent resumes.
    system.script_question("Ship it?");
    let asked = system.ask("deploy");
    wait_for(client, "[data-escalation-id] input", DEADLINE).await?;
    screenshot(client, "question.png").await?;
    let input = client.find(Locator::Css("[data-escalation-id] input")).await?;
    input.send_keys("yes from the page").await?;
    client
        .find(Locator::Css("[data-escalation-id] button"))
        .await?
        .click()
        .await?;
    let reply = tokio::time::timeout(DEADLINE, asked).await???;
    assert_eq!(reply.text(), "The human said: yes from the page");
    wait_gone(client, "[data-escalation-id]").await?;
    wait_for(client, r#"tr[data-agent="clerk"][data-activity="idle"]"#, DEADLINE).await?;
    wait_for(client, r#"tr[data-call-kind="model"]"#, DEADLINE).await?;

    // A tool call that hangs is flagged, and unflagged when it returns.
    system.script_wait();
    let asked = system.ask("wait for it");
    wait_for(client, r#"[data-stuck-kind="tool"]"#, DEADLINE).await?;
    wait_for(client, r#"[data-stuck-key="turn:clerk"]"#, DEADLINE).await?;
    screenshot(client, "stuck.png").await?;
    system.release.notify_one();
    assert_eq!(tokio::time::timeout(DEADLINE, asked).await???.text(), "done waiting");
    wait_gone(client, "[data-stuck-key]").await?;
    screenshot(client, "done.png").await?;
    Ok(())
}
