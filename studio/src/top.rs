//! The terminal view (feature `top`): [`render`] draws a [`View`] with ratatui. `warden top`
//! is [`Remote`](crate::remote::Remote) and this in a terminal; [`render_text`] draws one
//! screen as plain text, for logs and tests.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ratatui::Frame as Screen;
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use crate::view::{NodeView, View};

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
    let members: String = view
        .members
        .values()
        .map(|m| format!("  {}:{}", m.name, m.state))
        .collect();
    let title = format!(
        " Warden top  {status}{members}  change {}  nodes {}  agents {}  calls {}  dropped {} (q quits)",
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
            state: state.into(),
            restarts: 2,
            backoff_ms: Some(40),
            ..NodeView::new(path)
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
}
