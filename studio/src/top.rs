//! The terminal view (feature `top`): [`Remote`], a client that follows a studio over HTTP
//! as the web page does, and [`render`], which draws a [`View`] with ratatui. `warden top` is
//! the two in a terminal; [`render_text`] draws one screen as plain text, for logs and tests.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::Frame as Screen;
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use thiserror::Error;

use crate::view::{Frame, NodeView, View};

/// Why following a studio failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The studio could not be reached, or its stream broke.
    #[error("studio unreachable: {0}")]
    Http(#[from] reqwest::Error),
    /// The studio refused the token.
    #[error("the studio refused the token")]
    Unauthorized,
    /// The studio answered something that is not a frame.
    #[error("the studio sent a frame that does not parse: {0}")]
    BadFrame(#[from] serde_json::Error),
    /// The URL is not a studio's.
    #[error("not a studio URL: {0}")]
    BadUrl(String),
    /// The stream ended (the studio stopped, or closed its viewers).
    #[error("the studio closed the stream")]
    Closed,
}

/// A studio followed over HTTP: its event stream, frame by frame.
pub struct Remote {
    response: reqwest::Response,
    buffer: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

/// Splits the URL a studio printed (`http://HOST:PORT/PATH/?token=T`) into its base
/// (`http://HOST:PORT/PATH/`) and its token, if it carries one.
pub fn split_url(url: &str) -> (String, Option<String>) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_owned);
    let base = if base.ends_with('/') {
        base.to_owned()
    } else {
        format!("{base}/")
    };
    (base, token)
}

impl Remote {
    /// Connects to the studio at `url` (its page's address, as it printed it) with `token`
    /// (else the one in the URL).
    ///
    /// # Errors
    ///
    /// [`RemoteError::BadUrl`] without a token, [`RemoteError::Unauthorized`] for a wrong one,
    /// [`RemoteError::Http`] if it cannot be reached.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, RemoteError> {
        let (base, in_url) = split_url(url);
        let token = token
            .map(str::to_owned)
            .or(in_url)
            .ok_or_else(|| RemoteError::BadUrl(format!("{url} (no token: give one, or the URL the studio printed)")))?;
        let response = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?
            .get(format!("{base}api/events"))
            .bearer_auth(token)
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RemoteError::Unauthorized);
        }
        let response = response.error_for_status()?;
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next frame.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Closed`] when the stream ends, [`RemoteError::Http`] if it breaks,
    /// [`RemoteError::BadFrame`] for a frame that does not parse.
    pub async fn next(&mut self) -> Result<Frame, RemoteError> {
        loop {
            // One event ends with a blank line; its data is its `data:` lines.
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Ok(serde_json::from_str(&data.join("\n"))?);
            }
            let chunk = self.response.chunk().await?.ok_or(RemoteError::Closed)?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn state_color(state: &str) -> Color {
    match state {
        "running" => Color::Green,
        "restarting" => Color::Yellow,
        "exited" | "start_failed" | "gave_up" => Color::Red,
        _ => Color::DarkGray,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ago(ms: u64) -> String {
    format!("{:.1}s", now_ms().saturating_sub(ms) as f64 / 1000.0)
}

fn tree_lines<'a>(view: &'a View, node: &'a NodeView, depth: usize, out: &mut Vec<Line<'a>>) {
    let id = node.path.rsplit('/').next().unwrap_or(&node.path);
    let mut spans = vec![
        Span::raw("  ".repeat(depth)),
        Span::styled(
            format!("{:<11}", node.state),
            Style::default().fg(state_color(&node.state)),
        ),
        Span::styled(id, Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" restarts {}", node.restarts)),
    ];
    if let (Some(used), Some(max)) = (node.intensity_used, node.intensity_max) {
        spans.push(Span::styled(
            format!(" intensity {used}/{max}"),
            Style::default().fg(Color::DarkGray),
        ));
    }
    if let (Some(backoff), "restarting") = (node.backoff_ms, node.state.as_str()) {
        spans.push(Span::styled(
            format!(" backoff {backoff}ms"),
            Style::default().fg(Color::Yellow),
        ));
    }
    out.push(Line::from(spans));
    for child in view.children_of(&node.path) {
        tree_lines(view, child, depth + 1, out);
    }
}

/// Draws `view` on one screen: stuck flags, the tree, the agents, the calls, the waiting
/// escalations and the timeline; `status` goes in the title.
pub fn render(screen: &mut Screen<'_>, view: &View, status: &str) {
    let stuck_height = if view.stuck.is_empty() {
        0
    } else {
        view.stuck.len().min(6) as u16 + 2
    };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(stuck_height),
            Constraint::Percentage(45),
            Constraint::Min(6),
        ])
        .split(screen.area());
    let title = format!(
        " Warden top  {status}  change {}  nodes {}  agents {}  calls {}  dropped {} (q quits)",
        view.seq,
        view.tree.len(),
        view.agents.len(),
        view.calls.len(),
        view.dropped
    );
    screen.render_widget(
        Paragraph::new(title).style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[0],
    );

    if !view.stuck.is_empty() {
        let lines: Vec<Line<'_>> = view
            .stuck
            .values()
            .map(|s| {
                let agent = match (&s.agent, s.kind.as_str()) {
                    (Some(agent), "model" | "tool") => format!(" (agent {agent})"),
                    _ => String::new(),
                };
                Line::styled(
                    format!("STUCK {} {}{agent} running for {}", s.kind, s.name, ago(s.since_ms)),
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                )
            })
            .collect();
        screen.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" stuck ")),
            rows[1],
        );
    }

    let middle = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
        .split(rows[2]);
    let mut lines = Vec::new();
    let roots: Vec<&NodeView> = view.roots().collect();
    for root in roots {
        tree_lines(view, root, 0, &mut lines);
    }
    screen.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" tree ")),
        middle[0],
    );
    let agents = view.agents.values().map(|a| {
        let queue = match (a.queued, a.queue_capacity) {
            (Some(q), Some(c)) => format!("{q}/{c}"),
            _ => "?".into(),
        };
        Row::new(vec![
            Cell::from(a.name.clone()),
            Cell::from(a.activity.clone()),
            Cell::from(a.turn_started_ms.map(ago).unwrap_or_default()),
            Cell::from(queue),
            Cell::from(format!("{}/{}", a.turns, a.failed_turns)),
            Cell::from(format!("{}/{}", a.input_tokens, a.output_tokens)),
            Cell::from(format!("{:.4}", a.cost)),
        ])
    });
    screen.render_widget(
        Table::new(
            agents,
            [
                Constraint::Length(14),
                Constraint::Length(18),
                Constraint::Length(7),
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Length(14),
                Constraint::Length(9),
            ],
        )
        .header(
            Row::new(["agent", "status", "turn", "queue", "turns/x", "tokens", "cost"])
                .style(Style::default().fg(Color::DarkGray)),
        )
        .block(Block::default().borders(Borders::ALL).title(" agents ")),
        middle[1],
    );

    let bottom = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(rows[3]);
    let calls = view
        .calls
        .values()
        .map(|c| (c, true))
        .chain(view.recent_calls.iter().rev().map(|c| (c, false)))
        .map(|(c, running)| {
            Row::new(vec![
                Cell::from(c.kind.clone()),
                Cell::from(c.name.clone()),
                Cell::from(c.agent.clone().unwrap_or_default()),
                Cell::from(if running {
                    format!("running {}", ago(c.started_ms))
                } else {
                    format!("{}ms", c.latency_ms.unwrap_or(0))
                }),
                Cell::from(c.outcome.clone().unwrap_or_default()),
                Cell::from(c.breaker.clone().unwrap_or_default()),
            ])
        });
    screen.render_widget(
        Table::new(
            calls,
            [
                Constraint::Length(6),
                Constraint::Length(14),
                Constraint::Length(12),
                Constraint::Length(14),
                Constraint::Length(10),
                Constraint::Length(10),
            ],
        )
        .header(
            Row::new(["kind", "name", "agent", "latency", "outcome", "breaker"])
                .style(Style::default().fg(Color::DarkGray)),
        )
        .block(Block::default().borders(Borders::ALL).title(" calls ")),
        bottom[0],
    );
    let mut lines: Vec<Line<'_>> = view
        .escalations
        .values()
        .map(|e| {
            Line::styled(
                format!(
                    "WAITING #{} {}: {}",
                    e.id,
                    e.agent.as_deref().unwrap_or(&e.origin),
                    e.text
                ),
                Style::default().fg(Color::Yellow),
            )
        })
        .collect();
    lines.extend(view.timeline.iter().rev().map(|t| {
        let style = if t.kind == "chaos" {
            Style::default().fg(Color::Magenta)
        } else {
            Style::default()
        };
        Line::styled(format!("{:<13} {} {}", t.kind, t.subject, t.text), style)
    }));
    screen.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" escalations and timeline "),
        ),
        bottom[1],
    );
}

/// Draws `view` on a `width` × `height` screen and returns it as text, a line per row.
pub fn render_text(view: &View, status: &str, width: u16, height: u16) -> String {
    // A test backend draws in memory: it does not fail.
    let Ok(mut terminal) = ratatui::Terminal::new(TestBackend::new(width, height)) else {
        return String::new();
    };
    if terminal.draw(|screen| render(screen, view, status)).is_err() {
        return String::new();
    }
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{Delta, StuckView};

    fn node(path: &str, state: &str) -> NodeView {
        NodeView {
            path: path.into(),
            kind: "worker".into(),
            state: state.into(),
            restarts: 2,
            last_exit: None,
            backoff_ms: Some(40),
            intensity_used: None,
            intensity_max: None,
            intensity_period_ms: None,
            changed_ms: 0,
        }
    }

    #[test]
    fn the_screen_shows_the_tree_and_what_is_stuck() {
        let mut view = View::default();
        view.apply(Delta::Node(node("root", "running")));
        view.apply(Delta::Node(node("root/clerk", "restarting")));
        view.apply(Delta::Stuck(StuckView {
            key: "tool:9".into(),
            kind: "tool".into(),
            name: "search".into(),
            agent: Some("clerk".into()),
            since_ms: 0,
            threshold_ms: 30_000,
        }));
        let text = render_text(&view, "live", 120, 30);
        assert!(text.contains("STUCK tool search (agent clerk)"), "{text}");
        assert!(text.contains("restarting clerk restarts 2 backoff 40ms"), "{text}");
        let root_line = text.lines().position(|l| l.contains("running    root")).unwrap();
        let clerk_line = text.lines().position(|l| l.contains("clerk restarts")).unwrap();
        assert!(clerk_line > root_line);
    }

    #[test]
    fn urls_split_into_base_and_token() {
        assert_eq!(
            split_url("http://127.0.0.1:5/?token=ab"),
            ("http://127.0.0.1:5/".into(), Some("ab".into()))
        );
        assert_eq!(split_url("http://h:1/studio"), ("http://h:1/studio/".into(), None));
    }
}
