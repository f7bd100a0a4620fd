//! `warden journal` against a real store, opened by this test at the same time (as a running
//! agent process would hold it): list, show, pending, answer, prune; usage errors exit 2;
//! a store that is not a journal is a one-line error, exit 1, no panic.

use std::process::{Command, Output};
use std::time::Duration;

use warden_agents::message::AgentMessage;
use warden_durable::{Journal, StepId, StepKind, TaskOutcome};

fn warden(store: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("journal")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_command_lists_shows_answers_and_prunes_a_live_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("journal.redb");
    let journal = Journal::open_shared(&store).unwrap();
    let task = |text: &str| warden_agents::codec::to_bytes(&AgentMessage::user(text)).unwrap();
    let done = journal.accept("clerk", task("File order A-1")).await.unwrap();
    journal
        .record_result(
            StepId::new(done, 0),
            StepKind::Model,
            "chat",
            b"{\"content\":[]}".to_vec(),
        )
        .await
        .unwrap();
    let outcome = br#"{"reply":{"content":[{"type":"text","text":"Filed."}],"outcome":"completed","iterations":1,"usage":{"input_tokens":1,"output_tokens":1}}}"#;
    journal
        .finish(done, TaskOutcome::ok(outcome.to_vec()), None)
        .await
        .unwrap();
    let waiting = journal.accept("clerk", task("Ship order A-2?")).await.unwrap();
    let question = StepId::new(waiting, 1);
    journal
        .ask(question, "clerk", "Ship A-2 today?", Duration::from_secs(600))
        .await
        .unwrap();

    let list = stdout(&warden(&store, &["list"]));
    assert!(list.contains("2 tasks, 1 unfinished"), "{list}");
    assert!(
        list.contains("Ship order A-2?") && !list.contains("File order A-1"),
        "{list}"
    );
    let all = stdout(&warden(&store, &["list", "--all"]));
    assert!(all.contains("completed") && all.contains("File order A-1"), "{all}");

    let show = stdout(&warden(&store, &["show", &done.to_string()]));
    assert!(
        show.contains("outcome:  Filed.") && show.contains("model  chat"),
        "{show}"
    );

    let pending = stdout(&warden(&store, &["pending"]));
    assert!(
        pending.contains(&question.to_string()) && pending.contains("Ship A-2 today?"),
        "{pending}"
    );

    // Answered by the command while this process holds the store: seen here.
    let answered = stdout(&warden(
        &store,
        &["answer", &question.to_string(), "yes,", "ship", "it"],
    ));
    assert!(answered.contains("answered"), "{answered}");
    let got = journal.question(question).await.unwrap().unwrap();
    assert_eq!(got.answer.as_deref(), Some("yes, ship it"));

    let pruned = stdout(&warden(&store, &["prune", "--keep", "0"]));
    assert!(pruned.contains("pruned 1"), "{pruned}");
    assert_eq!(journal.counts().await.unwrap(), (1, 1));
}

#[test]
fn bad_command_lines_exit_2_and_a_bad_store_exits_1_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("journal.redb");
    for args in [
        &["frobnicate"][..],
        &["show"],
        &["show", "x"],
        &["answer", "1-2"],
        &["prune"],
        &["answer", "nope", "x"],
    ] {
        let output = warden(&store, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("usage: warden"),
            "{args:?}"
        );
    }
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0xAB; 8192]).unwrap();
    let output = warden(&garbage, &["list"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("warden: cannot open the journal") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let missing = warden(&store, &["show", "99"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no task 99"));
}
