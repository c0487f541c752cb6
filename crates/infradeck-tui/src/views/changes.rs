//! What changed: the audit trail of a time range grouped by machine and kind (appeared, gone,
//! moved, power, health, ...), counts per kind on top, newest first. `/` filters (`kind:`,
//! `source:`, words), `t` moves through the ranges (since the last look, 1 h, 8 h, 24 h,
//! 7 days; `:changes WHEN` for any other start), Enter opens the machine, or the diff of a
//! config change. `:diff-at A B` opens it over a fixed range.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::changes::{ChangeFilter, ChangeKind, Digest, MachineChange, Subject};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row};

/// The time range shown.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Range {
    /// Since the user's previous look (when the dashboard last opened).
    LastLook(String),
    /// The last so many hours, up to now.
    Hours(i64),
    /// From a time up to now.
    Since(String),
    /// Between two times (`:diff-at A B`).
    Between(String, String),
}

/// The presets `t` moves through, after "since the last look".
const PRESET_HOURS: [i64; 4] = [1, 8, 24, 24 * 7];

impl Range {
    fn bounds(&self, now: chrono::DateTime<chrono::Utc>) -> (String, String) {
        let now_text = infradeck_core::time::format(now);
        match self {
            Range::LastLook(at) | Range::Since(at) => (at.clone(), now_text),
            Range::Hours(h) => (
                infradeck_core::time::format(now - chrono::Duration::hours(*h)),
                now_text,
            ),
            Range::Between(a, b) => (a.clone(), b.clone()),
        }
    }

    fn label(&self) -> String {
        match self {
            Range::LastLook(at) => format!("since your last look ({at})"),
            Range::Hours(h) if *h % 24 == 0 && *h > 24 => format!("last {} days", h / 24),
            Range::Hours(h) => format!("last {h} h"),
            Range::Since(at) => format!("since {at}"),
            Range::Between(a, b) => format!("{a} → {b}"),
        }
    }
}

pub(crate) struct ChangesView {
    range: Range,
    /// The last look, for `t` to come back to.
    last_look: Option<String>,
    digest: Option<Digest>,
    filter: String,
    parsed: ChangeFilter,
    /// Why the filter as typed does not parse (yet).
    filter_error: Option<String>,
    visible: Vec<usize>,
    /// Changes per kind among `visible`, in kind order (only kinds with changes).
    counts: Vec<(ChangeKind, usize)>,
    cursor: Cursor,
    height: usize,
}

impl ChangesView {
    pub(crate) fn new(range: Range, last_look: Option<String>) -> ChangesView {
        ChangesView {
            range,
            last_look,
            digest: None,
            filter: String::new(),
            parsed: ChangeFilter::default(),
            filter_error: None,
            visible: Vec::new(),
            counts: Vec::new(),
            cursor: Cursor::default(),
            height: 20,
        }
    }

    /// Whether anything changed in the range (after the first refresh).
    pub(crate) fn is_empty(&self) -> bool {
        self.digest.as_ref().is_none_or(|d| d.changes.is_empty())
    }

    fn apply_filter(&mut self) {
        self.visible.clear();
        self.counts.clear();
        let Some(digest) = &self.digest else {
            return;
        };
        let mut counts: std::collections::BTreeMap<ChangeKind, usize> = Default::default();
        for (i, change) in digest.changes.iter().enumerate() {
            if self.parsed.matches(change) {
                self.visible.push(i);
                *counts.entry(change.kind).or_default() += 1;
            }
        }
        self.counts = counts.into_iter().collect();
    }

    fn selected(&self) -> Option<&MachineChange> {
        let digest = self.digest.as_ref()?;
        self.visible
            .get(self.cursor.selected)
            .map(|i| &digest.changes[*i])
    }

    fn next_range(&self) -> Range {
        let mut ranges: Vec<Range> = Vec::new();
        if let Some(at) = &self.last_look {
            ranges.push(Range::LastLook(at.clone()));
        }
        ranges.extend(PRESET_HOURS.iter().map(|h| Range::Hours(*h)));
        let at = ranges.iter().position(|r| *r == self.range);
        match at {
            Some(i) => ranges[(i + 1) % ranges.len()].clone(),
            None => ranges[0].clone(),
        }
    }
}

impl Screen for ChangesView {
    fn title(&self) -> String {
        "changes".into()
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Changes, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        let (since, until) = self.range.bounds(cx.now);
        self.digest = Some(infradeck_core::changes::digest(
            cx.store,
            &since,
            &until,
            &cx.env.machine_rules.health,
        )?);
        self.apply_filter();
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        // Called on every keystroke: `kind:a` on the way to `kind:appeared` is not an error
        // yet, so a filter that does not parse shows why and matches nothing.
        match ChangeFilter::parse(text) {
            Ok(parsed) => {
                self.parsed = parsed;
                self.filter_error = None;
            }
            Err(why) => {
                self.parsed = ChangeFilter {
                    kinds: Vec::new(),
                    sources: Vec::new(),
                    text: "\u{0}".into(),
                };
                self.filter_error = Some(why);
            }
        }
        self.filter = text.to_string();
        self.cursor = Cursor::default();
        self.apply_filter();
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        match &self.selected()?.subject {
            Subject::Record { device_id, .. } => Some(*device_id),
            Subject::Machine { .. } => self.selected()?.config.as_ref().map(|c| c.device_id),
            Subject::Named { .. } => None,
        }
    }

    fn copy_text(&self) -> Option<String> {
        self.selected().map(|c| c.subject.name().to_string())
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match (action, self.selected().map(|c| &c.subject)) {
            (Action::Open, None) => Some("nothing changed in this range"),
            (Action::Open, Some(Subject::Named { .. })) => {
                Some("this change is not about a machine (a datastore or a NetBox batch)")
            }
            _ => None,
        }
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.visible.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        match action {
            Action::NextRange => {
                self.range = self.next_range();
                self.cursor = Cursor::default();
                self.refresh(cx)?;
                Ok(Outcome::Handled)
            }
            Action::Open => {
                let Some(change) = self.selected().cloned() else {
                    return Ok(Outcome::Ignored);
                };
                if let Some(config) = &change.config {
                    let versions = cx.store.config_versions(config.device_id)?;
                    let find = |v: i64| versions.iter().find(|c| c.version == v).cloned();
                    if let (Some(old), Some(new)) =
                        (find(config.from_version), find(config.to_version))
                    {
                        return Ok(Outcome::Push(Box::new(super::configs::DiffView::new(
                            change.subject.name(),
                            old,
                            new,
                        ))));
                    }
                }
                let device = match &change.subject {
                    Subject::Record { device_id, .. } => Some(*device_id),
                    Subject::Machine { id, .. } => {
                        cx.store.machine(*id, &Default::default())?.and_then(|m| {
                            m.primary_device_id
                                .or(m.records.first().map(|r| r.device_id))
                        })
                    }
                    Subject::Named { .. } => None,
                };
                Ok(match device {
                    Some(id) => Outcome::Push(Box::new(super::detail::DetailView::new(id))),
                    None => Outcome::Ignored,
                })
            }
            _ => Ok(Outcome::Ignored),
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        let [top, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        let mut spans = vec![
            Span::styled(self.range.label(), theme.title()),
            Span::raw(": "),
        ];
        if let Some(why) = &self.filter_error {
            spans.push(Span::styled(why.clone(), theme.warn()));
        } else if self.counts.is_empty() {
            spans.push(Span::raw("nothing changed"));
        }
        for (i, (kind, n)) in self.counts.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw(" · "));
            }
            spans.push(Span::styled(n.to_string(), kind_style(*kind, theme)));
            spans.push(Span::raw(format!(" {}", kind.as_str())));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), top);

        self.height = list.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.visible.len(), self.height);
        self.cursor
            .drawn_at(list.y + 1, self.height, self.visible.len(), 1);
        let Some(digest) = &self.digest else {
            return;
        };
        let clean = |t: &str| infradeck_core::sanitize::for_terminal(t).into_owned();
        let shown: Vec<&MachineChange> = self
            .visible
            .iter()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|i| &digest.changes[*i])
            .collect();
        // Columns as wide as what they hold on screen, the summary takes the rest.
        let width = |f: &dyn Fn(&MachineChange) -> usize, floor: usize, cap: usize| {
            shown
                .iter()
                .map(|c| f(c))
                .max()
                .unwrap_or(0)
                .clamp(floor, cap) as u16
        };
        let name_w = width(&|c| c.subject.name().chars().count(), 7, 32);
        let kind_w = width(&|c| c.kind.as_str().len(), 4, 13);
        let source_words = |c: &MachineChange| {
            c.sources
                .iter()
                .map(|s| s.split('/').next().unwrap_or(s))
                .collect::<Vec<_>>()
                .join(",")
        };
        let sources_w = width(&|c| source_words(c).chars().count(), 7, 32);
        let rows: Vec<Row> = shown
            .iter()
            .enumerate()
            .map(|(offset, c)| {
                let row = Row::new(vec![
                    Line::raw(infradeck_core::time::age(&c.at, cx.now)),
                    Line::styled(c.kind.as_str(), kind_style(c.kind, theme)),
                    Line::raw(clean(c.subject.name())),
                    Line::raw(clean(&c.summary())),
                    Line::raw(source_words(c)),
                ]);
                crate::widgets::table::select(
                    row,
                    self.cursor.top + offset == self.cursor.selected,
                    theme,
                )
            })
            .collect();
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    Constraint::Length(4),
                    Constraint::Length(kind_w),
                    Constraint::Length(name_w),
                    Constraint::Min(20),
                    Constraint::Length(sources_w),
                ],
                &["AGE", "KIND", "MACHINE", "WHAT", "SOURCES"],
                theme,
            ),
            list,
        );
    }
}

/// Losses and failures stand out; routine changes stay plain.
fn kind_style(kind: ChangeKind, theme: crate::theme::Theme) -> Style {
    use infradeck_core::model::Health;
    match kind {
        ChangeKind::Health | ChangeKind::Gone => theme.health(Health::Crit),
        ChangeKind::Power | ChangeKind::Volume => theme.health(Health::Warn),
        ChangeKind::Appeared => theme.health(Health::Ok),
        _ => Style::default(),
    }
}
