//! `warden journal`: list, show, answer and prune a journal's tasks and questions.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use warden_durable::{Journal, Retention, StepId, StepState, TaskEntry, TaskId, TaskOutcome};

use crate::usage;

/// How many characters of a payload a line shows.
const PREVIEW: usize = 100;

pub(crate) async fn run(args: &[String]) -> anyhow::Result<()> {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let store = match args.iter().position(|a| *a == "--store") {
        Some(at) => {
            let path = args
                .get(at + 1)
                .ok_or_else(|| usage("--store needs a path"))?
                .to_string();
            args.drain(at..=at + 1);
            path
        }
        None => {
            std::env::var("WARDEN_JOURNAL").map_err(|_| usage("no store: give --store PATH or set WARDEN_JOURNAL"))?
        }
    };
    let Some((&command, rest)) = args.split_first() else {
        return Err(usage("journal needs a subcommand"));
    };
    let journal = Journal::open_location(&store).await?;
    match command {
        "list" => list(&journal, rest).await,
        "show" => show(&journal, rest).await,
        "pending" => pending(&journal).await,
        "answer" => answer(&journal, rest).await,
        "prune" => prune(&journal, rest).await,
        other => Err(usage(format!("unknown journal subcommand {other:?}"))),
    }
}

/// The value after `flag`, parsed.
pub(crate) fn option<T: std::str::FromStr>(args: &[&str], flag: &str) -> anyhow::Result<Option<T>> {
    match args.iter().position(|a| *a == flag) {
        None => Ok(None),
        Some(at) => {
            let value = args.get(at + 1).ok_or_else(|| usage(format!("{flag} needs a value")))?;
            value
                .parse()
                .map(Some)
                .map_err(|_| usage(format!("{flag}: {value:?} is not a number")))
        }
    }
}

fn preview(text: &str) -> String {
    let line = text.replace('\n', " ");
    if line.chars().count() > PREVIEW {
        let cut: String = line.chars().take(PREVIEW).collect();
        format!("{cut}…")
    } else {
        line
    }
}

/// The task's text (a task written by an agent is an encoded message).
fn task_text(entry: &TaskEntry) -> String {
    match warden_agents::codec::from_bytes(&entry.task) {
        Ok(message) => message.text(),
        Err(_) => String::from_utf8_lossy(&entry.task).into_owned(),
    }
}

/// An outcome as one line: the answer's text or the error.
fn outcome_text(outcome: &TaskOutcome) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&outcome.result) else {
        return String::from_utf8_lossy(&outcome.result).into_owned();
    };
    if let Some(failed) = value.get("failed") {
        return format!(
            "failed ({}): {}",
            failed["kind"].as_str().unwrap_or("?"),
            failed["message"].as_str().unwrap_or("")
        );
    }
    let texts: Vec<&str> = value["reply"]["content"]
        .as_array()
        .map(|blocks| blocks.iter().filter_map(|b| b["text"].as_str()).collect())
        .unwrap_or_default();
    if texts.is_empty() {
        value.to_string()
    } else {
        texts.join(" ")
    }
}

fn state(entry: &TaskEntry) -> &'static str {
    match &entry.finished {
        None => "unfinished",
        Some((_, outcome)) if outcome.ok => "completed",
        Some(_) => "failed",
    }
}

fn when(ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    match SystemTime::now().duration_since(at) {
        Ok(ago) => format!("{}s ago", ago.as_secs()),
        Err(e) => format!("in {}s", e.duration().as_secs()),
    }
}

async fn list(journal: &Journal, args: &[&str]) -> anyhow::Result<()> {
    let all = args.contains(&"--all");
    let limit = option::<usize>(args, "--limit")?.unwrap_or(usize::MAX);
    let (total, unfinished) = journal.counts().await?;
    println!("{total} tasks, {unfinished} unfinished");
    let mut shown = 0;
    let mut after = None;
    while shown < limit {
        let page = journal.tasks(after, 1000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id);
        for entry in page.iter().filter(|e| all || !e.is_finished()) {
            if shown == limit {
                break;
            }
            println!(
                "{:>8}  {:<10}  {:<16}  accepted {}  {}",
                entry.id,
                state(entry),
                entry.agent,
                when(entry.accepted_ms),
                preview(&task_text(entry))
            );
            shown += 1;
        }
    }
    Ok(())
}

async fn show(journal: &Journal, args: &[&str]) -> anyhow::Result<()> {
    let id: TaskId = args
        .first()
        .ok_or_else(|| usage("show needs a task id"))?
        .parse()
        .map_err(|_| usage("a task id is a number"))?;
    let entry = journal.task(id).await?;
    let mut out = String::new();
    writeln!(out, "task {id}: {}", state(&entry))?;
    writeln!(out, "agent:    {}", entry.agent)?;
    writeln!(out, "accepted: {}", when(entry.accepted_ms))?;
    writeln!(out, "task:     {}", task_text(&entry))?;
    if let Some((at, outcome)) = &entry.finished {
        writeln!(out, "finished: {}", when(*at))?;
        writeln!(out, "outcome:  {}", outcome_text(outcome))?;
    }
    let steps = journal
        .steps(id)
        .await
        .with_context(|| format!("reading task {id}'s steps"))?;
    writeln!(out, "steps:    {}", steps.len())?;
    for (index, step) in steps.iter().enumerate() {
        let shown = match &step.state {
            StepState::Started => "started, no result (in flight at a crash?)".to_owned(),
            StepState::Done(result) => preview(&String::from_utf8_lossy(result)),
        };
        writeln!(out, "  {index:>4}  {:<6} {:<16} {shown}", step.kind, step.name)?;
    }
    print!("{out}");
    Ok(())
}

async fn pending(journal: &Journal) -> anyhow::Result<()> {
    let questions = journal.questions().await?;
    let open: Vec<_> = questions.iter().filter(|q| q.answer.is_none()).collect();
    println!("{} questions waiting", open.len());
    for q in open {
        println!(
            "{:>10}  {:<16}  deadline {}  {}",
            q.step.to_string(),
            q.agent,
            when(q.deadline_ms),
            preview(&q.question)
        );
    }
    Ok(())
}

async fn answer(journal: &Journal, args: &[&str]) -> anyhow::Result<()> {
    let [id, text @ ..] = args else {
        return Err(usage("answer needs a question id and the answer"));
    };
    if text.is_empty() {
        return Err(usage("answer needs the answer's text"));
    }
    let step: StepId = id.parse().map_err(usage)?;
    journal.answer(step, text.join(" ")).await?;
    println!("answered {step}");
    Ok(())
}

async fn prune(journal: &Journal, args: &[&str]) -> anyhow::Result<()> {
    let older_than = option::<u64>(args, "--older-than")?;
    let keep = option::<usize>(args, "--keep")?;
    if older_than.is_none() && keep.is_none() {
        return Err(usage("prune needs --older-than SECONDS or --keep N"));
    }
    let retention = Retention {
        older_than_ms: older_than.map(|s| s.saturating_mul(1000)),
        keep_last: keep,
    };
    let removed = journal.prune(retention).await?;
    println!("pruned {removed} finished tasks");
    Ok(())
}
