//! Sync: every source instance with its last run, live gauges for running runs (also those of
//! other processes, read from `sync_runs`), start and cancel, and a log of run events.

use crate::app::{Cx, Effect, Flash, Modal, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::config::SourceConfig;
use infradeck_core::model::RunStatus;
use infradeck_core::store::{SourceStatus, SyncRun};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Row, Wrap};

struct SourceRow {
    system: String,
    instance: String,
    config: Option<SourceConfig>,
    status: Option<SourceStatus>,
    running: Option<SyncRun>,
}

#[derive(Default)]
pub(crate) struct SyncView {
    rows: Vec<SourceRow>,
    cursor: Cursor,
    height: usize,
}

/// Items per second and seconds left of a running run, from its row.
pub(crate) fn rate_and_eta(run: &SyncRun) -> (Option<f64>, Option<f64>) {
    let (Some(start), Some(beat)) = (
        infradeck_core::time::parse(&run.started_at),
        infradeck_core::time::parse(&run.heartbeat_at),
    ) else {
        return (None, None);
    };
    let seconds = (beat - start).num_milliseconds() as f64 / 1000.0;
    if seconds <= 0.0 || run.done <= 0 {
        return (None, None);
    }
    let rate = run.done as f64 / seconds;
    let eta = run
        .total
        .filter(|t| *t >= run.done)
        .map(|t| (t - run.done) as f64 / rate);
    (Some(rate), eta)
}

fn run_line(run: &SyncRun) -> String {
    let (rate, eta) = rate_and_eta(run);
    let mut text = match run.total.filter(|t| *t > 0) {
        Some(total) => format!("{}% {}/{total}", run.done.max(0) * 100 / total, run.done),
        None => run.done.to_string(),
    };
    text.push_str(&format!(" {}", run.phase.as_deref().unwrap_or("starting")));
    if let Some(rate) = rate {
        text.push_str(&format!(" · {rate:.0}/s"));
    }
    if let Some(eta) = eta {
        text.push_str(&format!(" · ETA {eta:.0}s"));
    }
    if run.cancel_requested {
        text.push_str(" · cancelling");
    }
    text
}

impl SyncView {
    fn selected(&self) -> Option<&SourceRow> {
        self.rows.get(self.cursor.selected)
    }
}

impl Screen for SyncView {
    fn title(&self) -> String {
        "sync".into()
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Sync, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        let row = self.selected();
        match action {
            Action::CancelRun if row.is_none_or(|r| r.running.is_none()) => {
                Some("nothing is running for the selected source")
            }
            Action::SyncSelected if row.is_some_and(|r| r.running.is_some()) => {
                Some("the selected source is already running")
            }
            Action::SyncSelected if row.is_some_and(|r| r.config.is_none()) => {
                Some("this source is not in the config; it cannot be started from here")
            }
            Action::SyncSelected | Action::Open if row.is_none() => Some("no source configured"),
            Action::SyncAll
                if !self.rows.iter().any(|r| {
                    r.running.is_none() && r.config.as_ref().is_some_and(|c| c.enabled)
                }) =>
            {
                Some("no configured source is idle")
            }
            _ => None,
        }
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        let statuses = cx.store.source_statuses()?;
        let running = cx.store.running_runs()?;
        let mut rows: Vec<SourceRow> = cx
            .env
            .sources
            .iter()
            .map(|s| SourceRow {
                system: s.kind.as_str().to_string(),
                instance: s.id.clone(),
                config: Some(s.clone()),
                status: None,
                running: None,
            })
            .collect();
        for status in statuses {
            match rows.iter_mut().find(|r| {
                r.system == status.source_system && r.instance == status.source_identifier
            }) {
                Some(row) => row.status = Some(status),
                None => rows.push(SourceRow {
                    system: status.source_system.clone(),
                    instance: status.source_identifier.clone(),
                    config: None,
                    status: Some(status),
                    running: None,
                }),
            }
        }
        for run in running {
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.system == run.source_system && r.instance == run.source_identifier)
            {
                row.running = Some(run);
            }
        }
        self.rows = rows;
        Ok(())
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.rows.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        let Some(row) = self.selected() else {
            return Ok(Outcome::Ignored);
        };
        Ok(match action {
            Action::SyncSelected => match (&row.config, &row.running) {
                (_, Some(_)) => Outcome::Flash(Flash::error(format!(
                    "{}/{} is already running",
                    row.system, row.instance
                ))),
                (Some(config), None) => Outcome::Effect(Effect::Sync(vec![config.clone()])),
                (None, None) => Outcome::Flash(Flash::error(
                    "this source is not in the config; it cannot be started from here",
                )),
            },
            Action::SyncAll => {
                let idle: Vec<SourceConfig> = self
                    .rows
                    .iter()
                    .filter(|r| r.running.is_none())
                    .filter_map(|r| r.config.clone())
                    .filter(|c| c.enabled)
                    .collect();
                if idle.is_empty() {
                    Outcome::Flash(Flash::error("every source is already running"))
                } else {
                    Outcome::Effect(Effect::Sync(idle))
                }
            }
            Action::CancelRun => match &row.running {
                Some(run) => {
                    // The engine polls this flag whichever process runs the sync.
                    cx.store.write(|w| w.request_cancel(&run.sync_id))?;
                    Outcome::Effect(Effect::Cancel {
                        sync_id: run.sync_id.clone(),
                    })
                }
                None => Outcome::Flash(Flash::error("nothing is running for this source")),
            },
            Action::Open => {
                let mut lines = vec![format!("{}/{}", row.system, row.instance)];
                if let Some(s) = &row.status {
                    lines.push(format!(
                        "last status:   {}",
                        s.last_sync_status.as_deref().unwrap_or("never")
                    ));
                    lines.push(format!(
                        "last started:  {}",
                        s.last_sync_start.as_deref().unwrap_or("-")
                    ));
                    lines.push(format!(
                        "last finished: {}",
                        s.last_sync_complete.as_deref().unwrap_or("-")
                    ));
                    if let Some(run) = &s.latest_run {
                        lines.push(format!("run id:        {}", run.sync_id));
                        lines.push(format!(
                            "process:       pid {} on {}",
                            run.pid.unwrap_or(0),
                            run.host.as_deref().unwrap_or("?")
                        ));
                    }
                    lines.push(String::new());
                    lines.push(s.error_message.clone().unwrap_or_else(|| "no error".into()));
                }
                Outcome::Modal(Modal::Text {
                    title: "last run".into(),
                    lines,
                    scroll: 0,
                })
            }
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        let table_height = (self.rows.len() as u16 + 1).min(area.height / 2).max(3);
        let [table_area, detail_area, log_area] = Layout::vertical([
            Constraint::Length(table_height),
            Constraint::Length(4),
            Constraint::Min(2),
        ])
        .areas(area);
        self.height = table_area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.rows.len(), self.height);
        self.cursor
            .drawn_at(table_area.y + 1, self.height, self.rows.len(), 1);
        let source_width = self
            .rows
            .iter()
            .map(|r| r.system.chars().count() + 1 + r.instance.chars().count())
            .chain(["SOURCE".len()])
            .max()
            .unwrap_or(6) as u16;
        // A running state's progress text is long; 22 columns keep its percent and count.
        let (state_width, counts_width) = (22, 13);
        let rows: Vec<Row> = self
            .rows
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, r)| {
                let (state, style) = match (
                    &r.running,
                    r.status
                        .as_ref()
                        .and_then(|s| s.last_sync_status.as_deref()),
                ) {
                    (Some(run), _) => (run_line(run), theme.running()),
                    (None, None) => ("never".to_string(), theme.muted()),
                    (None, Some("success")) => ("ok".to_string(), theme.ok()),
                    (None, Some("partial")) => ("partial".to_string(), theme.warn()),
                    (None, Some(other)) => (other.to_string(), theme.error()),
                };
                let status = r.status.as_ref();
                let last = status
                    .and_then(|s| s.last_sync_complete.as_deref())
                    .map(|at| format!("{} ago", infradeck_core::time::age(at, cx.now)))
                    .unwrap_or_default();
                let duration = status
                    .and_then(|s| s.sync_duration_seconds)
                    .map(|d| format!("{d:.1}s"))
                    .unwrap_or_default();
                let counts = status
                    .map(|s| {
                        format!(
                            "+{} ~{} -{}",
                            s.devices_added.unwrap_or(0),
                            s.devices_updated.unwrap_or(0),
                            s.devices_removed.unwrap_or(0)
                        )
                    })
                    .unwrap_or_default();
                let error = status
                    .and_then(|s| s.error_message.as_deref())
                    .map(|e| infradeck_core::sanitize::for_terminal(e).into_owned())
                    .unwrap_or_default();
                let row = Row::new(vec![
                    Span::raw(
                        infradeck_core::sanitize::for_terminal(&format!(
                            "{}/{}",
                            r.system, r.instance
                        ))
                        .into_owned(),
                    ),
                    Span::styled(state, style),
                    Span::raw(last),
                    Span::raw(duration),
                    Span::raw(counts),
                    Span::styled(error, theme.error()),
                ]);
                crate::widgets::table::select(row, i == self.cursor.selected, theme)
            })
            .collect();
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    // A source id is shown whole; the error gives way first (the pane below
                    // shows the selected source's whole error).
                    Constraint::Length(source_width),
                    Constraint::Length(state_width),
                    Constraint::Length(9),
                    Constraint::Length(7),
                    Constraint::Length(counts_width),
                    Constraint::Min(0),
                ],
                &["SOURCE", "STATE", "LAST", "TOOK", "+ ~ -", "ERROR"],
                theme,
            ),
            table_area,
        );

        let detail_block = Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(" selected ", theme.muted()));
        let detail_inner = detail_block.inner(detail_area);
        frame.render_widget(detail_block, detail_area);
        match self.selected() {
            Some(SourceRow {
                running: Some(run), ..
            }) => {
                let ratio = run
                    .total
                    .filter(|t| *t > 0)
                    .map(|t| (run.done.max(0) as f64 / t as f64).clamp(0.0, 1.0))
                    .unwrap_or(0.0);
                frame.render_widget(
                    Gauge::default()
                        .gauge_style(theme.gauge())
                        .ratio(ratio)
                        .label(run_line(run)),
                    Rect {
                        height: 1,
                        ..detail_inner
                    },
                );
            }
            Some(SourceRow {
                status: Some(status),
                ..
            }) => {
                let text = match &status.error_message {
                    Some(error) => Span::styled(
                        infradeck_core::sanitize::for_terminal(error).into_owned(),
                        theme.error(),
                    ),
                    None => {
                        Span::styled("last run had no error · Enter shows details", theme.muted())
                    }
                };
                frame.render_widget(
                    Paragraph::new(text).wrap(Wrap { trim: false }),
                    detail_inner,
                );
            }
            _ => frame.render_widget(
                Paragraph::new(Span::styled(
                    if cx.env.read_only {
                        "never synced"
                    } else {
                        "never synced · s starts it, S starts all"
                    },
                    theme.muted(),
                )),
                detail_inner,
            ),
        }

        let log_block = Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(" run log ", theme.muted()));
        let log_inner = log_block.inner(log_area);
        frame.render_widget(log_block, log_area);
        let take = log_inner.height as usize;
        let skip = cx.log.len().saturating_sub(take);
        let lines: Vec<Line> = cx
            .log
            .iter()
            .skip(skip)
            .map(|l| {
                let style = if l.contains(RunStatus::Failed.as_str()) {
                    theme.error()
                } else {
                    theme.muted()
                };
                Line::from(Span::styled(
                    infradeck_core::sanitize::for_terminal(l).into_owned(),
                    style,
                ))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), log_inner);
    }
}
