//! Every change syncs made (`sync_history`), newest first, filterable; Enter opens the device.

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

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.entries = cx
            .store
            .history(self.device, 5000)?
            .into_iter()
            .map(|e| {
                let summary = infradeck_core::changes::describe_entry(&e);
                (e, summary)
            })
            .collect();
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
            (Action::Open, Some(e)) if e.device_id.is_none() => {
                Some("this change is not about a device (a datastore or a NetBox batch)")
            }
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
        Ok(match (action, self.device()) {
            (Action::Open, Some(id)) => Outcome::Push(Box::new(super::detail::DetailView::new(id))),
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.visible.len(), self.height);
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
                    e.change_type
                        .clone()
                        .or_else(|| e.operation.clone())
                        .unwrap_or_default(),
                    infradeck_core::sanitize::for_terminal(summary).into_owned(),
                    infradeck_core::sanitize::for_terminal(&e.source_system).into_owned(),
                ]);
                crate::widgets::table::select(row, i == self.cursor.selected, theme)
            })
            .collect();
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    Constraint::Length(19),
                    Constraint::Length(20),
                    Constraint::Length(10),
                    Constraint::Min(20),
                    Constraint::Length(10),
                ],
                &["WHEN", "DEVICE", "CHANGE", "WHAT", "SOURCE"],
                theme,
            ),
            area,
        );
    }
}
