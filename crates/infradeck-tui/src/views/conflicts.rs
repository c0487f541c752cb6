//! Every machine whose sources disagree on a compared field, the newest disagreement first, one
//! row per field with each source's value; filterable; Enter opens the machine.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::Row;

/// One disagreement: the machine, its primary record, the field and the values by source.
struct Disagreement {
    machine: String,
    device_id: Option<i64>,
    field: String,
    values: String,
    since: String,
}

#[derive(Default)]
pub(crate) struct ConflictsView {
    rows: Vec<Disagreement>,
    filter: String,
    visible: Vec<usize>,
    cursor: Cursor,
    height: usize,
}

impl ConflictsView {
    fn apply_filter(&mut self) {
        let (invert, needle) = match self.filter.strip_prefix('!') {
            Some(rest) => (true, rest.to_lowercase()),
            None => (false, self.filter.to_lowercase()),
        };
        self.visible = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                needle.is_empty()
                    || (r.machine.to_lowercase().contains(&needle)
                        || r.field.contains(&needle)
                        || r.values.to_lowercase().contains(&needle))
                        != invert
            })
            .map(|(i, _)| i)
            .collect();
    }

    fn selected(&self) -> Option<&Disagreement> {
        self.visible
            .get(self.cursor.selected)
            .map(|i| &self.rows[*i])
    }
}

impl Screen for ConflictsView {
    fn title(&self) -> String {
        "conflicts".into()
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        let stale = infradeck_core::app::stale_sources(cx.store, &cx.env.sources, cx.now)?;
        self.rows = cx
            .store
            .conflicting_machines(&stale)?
            .into_iter()
            .flat_map(|m| {
                let since = m.conflict_since.clone().unwrap_or_default();
                let (name, device_id) = (m.name.clone(), m.primary_device_id);
                m.conflicts.into_iter().map(move |c| Disagreement {
                    machine: name.clone(),
                    device_id,
                    field: c.field,
                    values: c
                        .values
                        .iter()
                        .map(|v| format!("{} ({})", v.value, v.source))
                        .collect::<Vec<_>>()
                        .join(" vs "),
                    since: since.clone(),
                })
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
        self.selected().and_then(|r| r.device_id)
    }

    fn copy_text(&self) -> Option<String> {
        self.selected().map(|r| r.machine.clone())
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        (action == Action::Open && self.selected().is_none())
            .then_some("no machine's sources disagree")
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
        self.cursor
            .drawn_at(area.y + 1, self.height, self.visible.len(), 1);
        let clean = |t: &str| infradeck_core::sanitize::for_terminal(t).into_owned();
        let rows: Vec<Row> = self
            .visible
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, index)| {
                let r = &self.rows[*index];
                let row = Row::new(vec![
                    clean(&r.machine),
                    r.field.clone(),
                    clean(&r.values),
                    r.since.clone(),
                ]);
                crate::widgets::table::select(row, i == self.cursor.selected, theme)
            })
            .collect();
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    Constraint::Length(24),
                    Constraint::Length(13),
                    Constraint::Min(20),
                    Constraint::Length(19),
                ],
                &["MACHINE", "FIELD", "VALUES BY SOURCE", "SINCE"],
                theme,
            ),
            area,
        );
    }
}
