//! The header: where you are (database, user@host, read-only lock), how much there is, and
//! whether it can be trusted (every source's sync state and the age of the newest data).

use super::app::Env;
use chrono::{DateTime, Utc};
use infradeck_core::model::{DeviceStatus, DeviceType, Health, RunStatus};
use infradeck_core::store::{MachineCount, SourceStatus, Store, SyncRun};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::collections::HashMap;

/// What the header shows, re-read when the database changes.
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// Machines (not source records) by type, status and health.
    pub(crate) counts: Vec<MachineCount>,
    pub(crate) statuses: Vec<SourceStatus>,
    pub(crate) running: Vec<SyncRun>,
    /// (status, phase) of each run seen so far, to log transitions.
    seen: HashMap<String, (RunStatus, Option<String>)>,
}

/// The state of one source instance at a glance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SourceState {
    Never,
    Running { percent: Option<u32> },
    Ok,
    Partial,
    Failed,
    Stale,
}

impl Header {
    /// Re-reads counts and sync state; returns log lines for runs that started, moved to a new
    /// phase or ended since the last read (by any process).
    pub(crate) fn refresh(&mut self, store: &Store) -> anyhow::Result<Vec<String>> {
        self.counts = store.machine_counts()?;
        self.statuses = store.source_statuses()?;
        self.running = store.running_runs()?;
        let mut recent = store.recent_runs(30)?;
        recent.reverse();
        let mut lines = Vec::new();
        for run in recent {
            let key = run.sync_id.clone();
            let state = (run.status, run.phase.clone());
            let before = self.seen.get(&key).cloned();
            if before.as_ref() == Some(&state) {
                continue;
            }
            let source = format!("{}/{}", run.source_system, run.source_identifier);
            let at = run.heartbeat_at.get(11..19).unwrap_or_default().to_string();
            let line = match run.status {
                RunStatus::Running => match (&before, &run.phase) {
                    (None, _) => format!("{at} {source} started ({})", run.sync_id),
                    (_, Some(phase)) => format!("{at} {source} {phase} {}", progress_text(&run)),
                    _ => format!("{at} {source} running"),
                },
                status => {
                    let mut line = format!(
                        "{at} {source} {} +{} ~{} -{}",
                        status.as_str(),
                        run.devices_added,
                        run.devices_updated,
                        run.devices_removed
                    );
                    if let Some(message) = run
                        .message
                        .as_deref()
                        .filter(|_| status != RunStatus::Success)
                    {
                        line.push_str(": ");
                        line.push_str(message);
                    }
                    line
                }
            };
            lines.push(line);
            self.seen.insert(key, state);
        }
        Ok(lines)
    }

    /// The state of every source: configured ones first, in config order, then any others the
    /// database knows.
    pub(crate) fn source_states(
        &self,
        env: &Env,
        now: DateTime<Utc>,
    ) -> Vec<(String, SourceState, Option<String>)> {
        let mut keys: Vec<(String, String)> = env
            .sources
            .iter()
            .map(|s| (s.kind.as_str().to_string(), s.id.clone()))
            .collect();
        for status in &self.statuses {
            let key = (
                status.source_system.clone(),
                status.source_identifier.clone(),
            );
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.into_iter()
            .map(|(system, instance)| {
                let status = self
                    .statuses
                    .iter()
                    .find(|s| s.source_system == system && s.source_identifier == instance);
                let interval = env
                    .sources
                    .iter()
                    .find(|s| s.kind.as_str() == system && s.id == instance)
                    .map(|s| s.interval);
                let state = source_state(
                    status,
                    self.running
                        .iter()
                        .find(|r| r.source_system == system && r.source_identifier == instance),
                    interval,
                    now,
                );
                let age = status
                    .and_then(|s| s.last_sync_complete.as_deref())
                    .map(|at| infradeck_core::time::age(at, now));
                (instance, state, age)
            })
            .collect()
    }

    /// The newest completed sync, as an age.
    pub(crate) fn newest_data(&self, now: DateTime<Utc>) -> Option<String> {
        self.statuses
            .iter()
            .filter(|s| matches!(s.last_sync_status.as_deref(), Some("success" | "partial")))
            .filter_map(|s| s.last_sync_complete.as_deref())
            .max()
            .map(|at| infradeck_core::time::age(at, now))
    }

    /// `as_of`: the past time the current view shows, marked first on the header's first line.
    pub(crate) fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        env: &Env,
        now: DateTime<Utc>,
        as_of: Option<&str>,
    ) {
        let theme = env.theme;
        let total: u64 = self.counts.iter().map(|c| c.count).sum();
        let inactive: u64 = self
            .counts
            .iter()
            .filter(|c| c.status == DeviceStatus::Inactive)
            .map(|c| c.count)
            .sum();
        let by_type = |t: DeviceType| -> u64 {
            self.counts
                .iter()
                .filter(|c| c.device_type == t && c.status == DeviceStatus::Active)
                .map(|c| c.count)
                .sum()
        };
        let unhealthy = |h: Health| -> u64 {
            self.counts
                .iter()
                .filter(|c| c.health == h && c.status == DeviceStatus::Active)
                .map(|c| c.count)
                .sum()
        };
        // What must always show: the past-time marker, the environment, read-only.
        let mut marks = Vec::new();
        let mut short_marks = Vec::new();
        if let Some(at) = as_of {
            marks.push(Span::styled(
                format!(" AS OF {at} UTC · read-only "),
                theme.environment(true),
            ));
            // Narrow: to the minute, the view's title says the rest.
            let minute = infradeck_core::text::first_chars(at, 16);
            short_marks.push(Span::styled(
                format!(" AS OF {minute} "),
                theme.environment(true),
            ));
        }
        if let Some(environment) = &env.environment {
            marks.push(Span::styled(
                format!(
                    " {} ",
                    infradeck_core::sanitize::for_terminal(&environment.to_uppercase())
                ),
                theme.environment(is_production(environment)),
            ));
            short_marks.push(marks[marks.len() - 1].clone());
        }
        let database = infradeck_core::sanitize::for_terminal(&env.database_label).into_owned();
        let file_name = database.rsplit('/').next().unwrap_or(&database).to_string();
        let identity = infradeck_core::sanitize::for_terminal(&env.identity).into_owned();
        let types: Vec<String> = [
            (DeviceType::Vm, "vm"),
            (DeviceType::Server, "srv"),
            (DeviceType::NetworkDevice, "net"),
            (DeviceType::Storage, "sto"),
            (DeviceType::Cluster, "clu"),
        ]
        .iter()
        .filter_map(|(t, label)| {
            let n = by_type(*t);
            (n > 0).then(|| format!("{} {label}", group(n)))
        })
        .collect();
        let mut health = Vec::new();
        if inactive > 0 {
            health.push(Span::styled(
                format!(" · {} inactive", group(inactive)),
                theme.stale(),
            ));
        }
        for (h, label) in [(Health::Crit, "crit"), (Health::Warn, "warn")] {
            let n = unhealthy(h);
            if n > 0 {
                health.push(Span::styled(
                    format!(" · {} {label}", group(n)),
                    theme.health(h),
                ));
            }
        }
        // From the whole line to the least that still says what matters, the first that fits.
        let first_line = |where_: Option<&str>, who: bool, with_types: bool| {
            let mut spans = marks.clone();
            if where_.is_none() && !who && !with_types {
                spans = short_marks.clone();
            }
            spans.push(Span::styled(" infradeck ", theme.title()));
            if let Some(place) = where_ {
                spans.push(Span::raw(place.to_string()));
                spans.push(Span::styled("  ", theme.muted()));
            }
            if who {
                spans.push(Span::raw(identity.clone()));
            }
            if env.read_only {
                spans.push(Span::styled("  🔒 read-only", theme.warn()));
            }
            spans.push(Span::styled(
                if where_.is_none() && !who {
                    "│ "
                } else {
                    " │ "
                },
                theme.muted(),
            ));
            spans.push(Span::styled(
                format!("{} machines", group(total)),
                theme.base(),
            ));
            if with_types && !types.is_empty() {
                spans.push(Span::styled(
                    format!(": {}", types.join(" · ")),
                    theme.muted(),
                ));
            }
            spans.extend(health.iter().cloned());
            spans
        };
        let first = fit(
            vec![
                first_line(Some(&database), true, true),
                first_line(Some(&file_name), true, true),
                first_line(None, true, true),
                first_line(None, true, false),
                first_line(None, false, true),
                first_line(None, false, false),
            ],
            area.width,
        );

        let states = self.source_states(env, now);
        let data = Span::styled(
            match self.newest_data(now) {
                Some(age) => format!("│ data {age} old"),
                None => "│ no data yet".to_string(),
            },
            theme.muted(),
        );
        let mut listed = vec![Span::raw(" ")];
        if states.is_empty() {
            listed.push(Span::styled("no sources configured ", theme.muted()));
        }
        let mut worst: Option<(u8, String, Span<'static>)> = None;
        let mut tally: Vec<(u8, &str, usize, Style)> = Vec::new();
        for (name, state, age) in &states {
            let name = infradeck_core::sanitize::for_terminal(name).into_owned();
            let (text, style, rank, symbol) = match state {
                SourceState::Never => (format!("{name} · never"), theme.muted(), 2, "·"),
                SourceState::Running { percent } => (
                    match percent {
                        Some(p) => format!("{name} ⟳{p}%"),
                        None => format!("{name} ⟳"),
                    },
                    theme.running(),
                    1,
                    "⟳",
                ),
                SourceState::Ok => (
                    format!("{name} ✓{}", age.clone().unwrap_or_default()),
                    theme.ok(),
                    0,
                    "✓",
                ),
                SourceState::Partial => (format!("{name} ◐partial"), theme.warn(), 3, "◐"),
                SourceState::Failed => (format!("{name} ✗failed"), theme.error(), 5, "✗"),
                SourceState::Stale => (
                    format!("{name} ◷stale {}", age.clone().unwrap_or_default()),
                    theme.warn(),
                    4,
                    "◷",
                ),
            };
            match tally.iter_mut().find(|t| t.1 == symbol) {
                Some(t) => t.2 += 1,
                None => tally.push((rank, symbol, 1, style)),
            }
            if worst.as_ref().is_none_or(|w| rank > w.0) {
                worst = Some((rank, name.clone(), Span::styled(text.clone(), style)));
            }
            listed.push(Span::styled(text, style));
            listed.push(Span::raw("  "));
        }
        listed.push(data.clone());
        // Folded: the count per state, worst first, and the worst source by name; `:sync` has
        // them all.
        tally.sort_by_key(|t| std::cmp::Reverse(t.0));
        let folded = |with_worst: bool| {
            let mut spans = vec![Span::raw(format!(" {} sources ", states.len()))];
            for (_, symbol, n, style) in &tally {
                spans.push(Span::styled(format!("{n}{symbol} "), *style));
            }
            if with_worst
                && let Some((rank, _, text)) = &worst
                && *rank > 0
            {
                spans.push(Span::styled("· ", theme.muted()));
                spans.push(text.clone());
                spans.push(Span::raw(" "));
            }
            spans.push(data.clone());
            spans
        };
        let second = fit(vec![listed, folded(true), folded(false)], area.width);
        let [top, rest] = ratatui::layout::Layout::vertical([
            ratatui::layout::Constraint::Length(1),
            ratatui::layout::Constraint::Length(1),
        ])
        .areas(area);
        let bar = match &env.environment {
            Some(name) if is_production(name) => theme.production_bar(),
            _ => theme.header_bar(),
        };
        frame.render_widget(Paragraph::new(Line::from(first)).style(bar), top);
        frame.render_widget(
            Paragraph::new(Line::from(second)).style(theme.header_bar()),
            rest,
        );
    }
}

/// The first of `variants` (most detailed first) that fits in `width` columns, else the last.
fn fit(variants: Vec<Vec<Span<'static>>>, width: u16) -> Vec<Span<'static>> {
    let columns = |spans: &[Span<'_>]| -> usize {
        spans
            .iter()
            .map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref()))
            .sum()
    };
    let count = variants.len();
    for (n, variant) in variants.into_iter().enumerate() {
        if n + 1 == count || columns(&variant) <= usize::from(width) {
            return variant;
        }
    }
    Vec::new()
}

fn progress_text(run: &SyncRun) -> String {
    match run.total {
        Some(total) if total > 0 => format!("{}/{}", run.done, total),
        _ => format!("{}", run.done),
    }
}

fn source_state(
    status: Option<&SourceStatus>,
    running: Option<&SyncRun>,
    interval: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> SourceState {
    if let Some(run) = running {
        let percent = run
            .total
            .filter(|t| *t > 0)
            .map(|t| ((run.done.max(0) as f64 / t as f64) * 100.0).min(100.0) as u32);
        return SourceState::Running { percent };
    }
    let Some(status) = status else {
        return SourceState::Never;
    };
    match status.last_sync_status.as_deref() {
        None => SourceState::Never,
        Some("failed" | "cancelled") => SourceState::Failed,
        Some(last) => {
            // Stale: no successful sync for two intervals (or a day without a schedule).
            let allowed = interval
                .filter(|i| !i.is_zero())
                .map(|i| chrono::Duration::from_std(i * 2).unwrap_or(chrono::Duration::days(1)))
                .unwrap_or(chrono::Duration::days(1));
            let fresh = status
                .last_sync_complete
                .as_deref()
                .and_then(infradeck_core::time::parse)
                .is_some_and(|at| now - at <= allowed);
            if !fresh {
                SourceState::Stale
            } else if last == "partial" {
                SourceState::Partial
            } else {
                SourceState::Ok
            }
        }
    }
}

/// Whether an environment name means production (`prod`, `production`, `live`, `prd-eu`).
fn is_production(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["prod", "prd", "live"].iter().any(|p| name.starts_with(p))
}

/// `12345` → `12,345`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
