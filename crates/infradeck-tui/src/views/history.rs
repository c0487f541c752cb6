//! Every change syncs and reviews made (`sync_history`), newest first, in the names of the
//! devices involved, filterable; Enter opens one change whole (old and new side by side), and
//! from there Enter opens its device.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::store::HistoryEntry;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::Row;

pub(crate) struct HistoryView {
    device: Option<i64>,
    entries: Vec<(HistoryEntry, String)>,
    filter: String,
    visible: Vec<usize>,
    cursor: Cursor,
    height: usize,
}

impl HistoryView {
    pub(crate) fn new(device: Option<i64>) -> HistoryView {
        HistoryView {
            device,
            entries: Vec::new(),
            filter: String::new(),
            visible: Vec::new(),
            cursor: Cursor::default(),
            height: 20,
        }
    }

    fn apply_filter(&mut self) {
        let (invert, needle) = match self.filter.strip_prefix('!') {
            Some(rest) => (true, rest.to_lowercase()),
            None => (false, self.filter.to_lowercase()),
        };
        self.visible = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (e, summary))| {
                if needle.is_empty() {
                    return true;
                }
                let hit = e
                    .device_name
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&needle)
                    || summary.to_lowercase().contains(&needle)
                    || e.source_system.contains(&needle)
                    || e.change_type.as_deref().unwrap_or("").contains(&needle);
                hit != invert
            })
            .map(|(i, _)| i)
            .collect();
    }

    fn selected(&self) -> Option<&HistoryEntry> {
        self.visible
            .get(self.cursor.selected)
            .map(|i| &self.entries[*i].0)
    }
}

impl Screen for HistoryView {
    fn title(&self) -> String {
        "history".into()
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        let entries = cx.store.history(self.device, 5000)?;
        let summaries = infradeck_core::changes::describe_entries(cx.store, &entries)?;
        self.entries = entries.into_iter().zip(summaries).collect();
        self.apply_filter();
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        self.filter = text.to_string();
        self.cursor = Cursor::default();
        self.apply_filter();
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        self.selected().and_then(|e| e.device_id)
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match (action, self.selected()) {
            (Action::Open, None) => Some("no change is selected"),
            _ => None,
        }
    }

    fn copy_text(&self) -> Option<String> {
        self.visible
            .get(self.cursor.selected)
            .map(|i| self.entries[*i].1.clone())
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.visible.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        Ok(match action {
            Action::Open => match self.visible.get(self.cursor.selected) {
                Some(&i) => {
                    let (entry, summary) = self.entries[i].clone();
                    Outcome::Push(Box::new(EntryView::new(entry, summary)))
                }
                None => Outcome::Ignored,
            },
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.visible.len(), self.height);
        self.cursor
            .drawn_at(area.y + 1, self.height, self.visible.len(), 1);
        let rows: Vec<Row> = self
            .visible
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, index)| {
                let (e, summary) = &self.entries[*index];
                let row = Row::new(vec![
                    e.performed_at.clone().unwrap_or_default(),
                    infradeck_core::sanitize::for_terminal(e.device_name.as_deref().unwrap_or(""))
                        .into_owned(),
                    change_label(e),
                    infradeck_core::sanitize::for_terminal(summary).into_owned(),
                    infradeck_core::sanitize::for_terminal(&e.source_system).into_owned(),
                ]);
                crate::widgets::table::select(row, i == self.cursor.selected, theme)
            })
            .collect();
        // Columns as wide as what they hold (names capped so the summary keeps its room).
        let widest = |cell: &dyn Fn(&HistoryEntry) -> usize, header: &str, cap: usize| {
            self.entries
                .iter()
                .map(|(e, _)| cell(e).min(cap))
                .chain([header.len()])
                .max()
                .unwrap_or(0) as u16
        };
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    Constraint::Length(19),
                    Constraint::Length(widest(
                        &|e| e.device_name.as_deref().unwrap_or("").chars().count(),
                        "DEVICE",
                        32,
                    )),
                    Constraint::Length(widest(&|e| change_label(e).len(), "CHANGE", 16)),
                    Constraint::Min(20),
                    Constraint::Length(widest(&|e| e.source_system.chars().count(), "SOURCE", 12)),
                ],
                &["WHEN", "DEVICE", "CHANGE", "WHAT", "SOURCE"],
                theme,
            ),
            area,
        );
    }
}

/// The CHANGE column: the kind of change, NetBox events by what happened.
fn change_label(e: &HistoryEntry) -> String {
    match e.change_type.as_deref() {
        Some("netbox_batch") => format!("netbox {}", e.operation.as_deref().unwrap_or("")),
        Some(kind) => kind.to_string(),
        None => e.operation.clone().unwrap_or_default(),
    }
}

/// One audit row whole: what, who, when, from which run, and every field old and new side by
/// side (values in full, JSON pretty-printed). Enter opens the device it is about.
pub(crate) struct EntryView {
    entry: HistoryEntry,
    summary: String,
    lines: Vec<ratatui::text::Line<'static>>,
    top: usize,
    height: usize,
    /// The width the lines were laid out for.
    width_hint: u16,
}

impl EntryView {
    fn new(entry: HistoryEntry, summary: String) -> EntryView {
        EntryView {
            entry,
            summary,
            lines: Vec::new(),
            top: 0,
            height: 20,
            width_hint: 100,
        }
    }

    fn build(&mut self, cx: &Cx) {
        use ratatui::text::{Line, Span};
        let theme = cx.env.theme;
        let clean = |t: &str| infradeck_core::sanitize::for_terminal(t).into_owned();
        let e = &self.entry;
        let mut lines = vec![
            Line::styled(clean(&self.summary), theme.title()),
            Line::from(vec![
                Span::styled("when     ", theme.muted()),
                Span::raw(clean(e.performed_at.as_deref().unwrap_or("?"))),
            ]),
            Line::from(vec![
                Span::styled("device   ", theme.muted()),
                Span::raw(clean(e.device_name.as_deref().unwrap_or("—"))),
            ]),
            Line::from(vec![
                Span::styled("change   ", theme.muted()),
                Span::raw(clean(&format!(
                    "{} ({})",
                    change_label(e),
                    e.operation.as_deref().unwrap_or("")
                ))),
            ]),
            Line::from(vec![
                Span::styled("source   ", theme.muted()),
                Span::raw(clean(&format!(
                    "{}/{}",
                    e.source_system,
                    e.source_identifier.as_deref().unwrap_or("")
                ))),
            ]),
            Line::from(vec![
                Span::styled("by       ", theme.muted()),
                Span::raw(clean(e.performed_by.as_deref().unwrap_or("?"))),
            ]),
            Line::raw(""),
        ];
        let fields = infradeck_core::changes::entry_fields(e);
        let name_width = fields
            .iter()
            .map(|f| f.0.chars().count())
            .max()
            .unwrap_or(5)
            .clamp(5, 32);
        // Old and new each get half of what the field name leaves.
        let value_width = (self.width_hint as usize)
            .saturating_sub(name_width + 7)
            .max(20)
            / 2;
        lines.push(Line::styled(
            format!("  {:<name_width$}  {:<value_width$}   NEW", "FIELD", "OLD"),
            theme.title(),
        ));
        for (name, old, new) in fields {
            let changed = old != new;
            let (old_style, new_style, mark) = if changed {
                (theme.removed(), theme.added(), "≠")
            } else {
                (theme.muted(), theme.muted(), " ")
            };
            let old_lines: Vec<&str> = old.lines().collect();
            let new_lines: Vec<&str> = new.lines().collect();
            for k in 0..old_lines.len().max(new_lines.len()).max(1) {
                let cell = |lines: &[&str]| {
                    infradeck_core::text::clip_chars(
                        &clean(lines.get(k).copied().unwrap_or("")),
                        value_width,
                    )
                    .into_owned()
                };
                lines.push(Line::from(vec![
                    Span::styled(
                        format!(
                            "{mark} {:<name_width$}  ",
                            if k == 0 { clean(&name) } else { String::new() }
                        ),
                        if changed { theme.base() } else { theme.muted() },
                    ),
                    Span::styled(format!("{:<value_width$}", cell(&old_lines)), old_style),
                    Span::raw("   "),
                    Span::styled(cell(&new_lines), new_style),
                ]));
            }
        }
        self.lines = lines;
    }
}

impl Screen for EntryView {
    fn title(&self) -> String {
        format!("change {}", self.entry.id)
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::List, Scope::Global]
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match action {
            Action::Open if self.entry.device_id.is_none() => {
                Some("this change is not about one device (a datastore or a NetBox batch)")
            }
            _ => None,
        }
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.build(cx);
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        self.entry.device_id
    }

    fn copy_text(&self) -> Option<String> {
        let pretty = |t: Option<&str>| {
            t.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| t.unwrap_or("").to_string())
        };
        Some(format!(
            "{}\nold:\n{}\nnew:\n{}",
            self.summary,
            pretty(self.entry.old_value.as_deref()),
            pretty(self.entry.new_value.as_deref())
        ))
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        let last = self.lines.len().saturating_sub(self.height);
        match action {
            Action::Down => self.top = (self.top + 1).min(last),
            Action::Up => self.top = self.top.saturating_sub(1),
            Action::PageDown => self.top = (self.top + self.height).min(last),
            Action::PageUp => self.top = self.top.saturating_sub(self.height),
            Action::Top => self.top = 0,
            Action::Bottom => self.top = last,
            Action::Open => {
                return Ok(match self.entry.device_id {
                    Some(id) => Outcome::Push(Box::new(super::detail::DetailView::new(id))),
                    None => Outcome::Ignored,
                });
            }
            _ => return Ok(Outcome::Ignored),
        }
        Ok(Outcome::Handled)
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        if self.width_hint != area.width {
            self.width_hint = area.width;
            self.build(cx);
        }
        self.height = area.height.max(1) as usize;
        let visible: Vec<ratatui::text::Line> = self
            .lines
            .iter()
            .skip(self.top)
            .take(self.height)
            .cloned()
            .collect();
        frame.render_widget(ratatui::widgets::Paragraph::new(visible), area);
    }
}
