//! `:at WHEN`: the machines as they were at a past time, rebuilt from the audit trail,
//! read-only. `/` filters as the live list does; Enter shows the machine as it was then. The
//! header says which time is shown, so the past never passes for the present.

use crate::app::{Cx, Modal, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::app::PastInventory;
use infradeck_core::machines::{MachineFilter, parse_filter};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::Row;

pub(crate) struct PastView {
    at: String,
    inventory: Option<PastInventory>,
    filter: String,
    parsed: MachineFilter,
    visible: Vec<usize>,
    cursor: Cursor,
    height: usize,
}

impl PastView {
    pub(crate) fn new(at: String) -> PastView {
        PastView {
            at,
            inventory: None,
            filter: String::new(),
            parsed: MachineFilter::default(),
            visible: Vec::new(),
            cursor: Cursor::default(),
            height: 20,
        }
    }

    fn apply_filter(&mut self) {
        let Some(inventory) = &self.inventory else {
            return;
        };
        self.visible = inventory
            .machines
            .iter()
            .enumerate()
            .filter(|(_, m)| self.parsed.accepts(m))
            .map(|(i, _)| i)
            .collect();
    }
}

impl Screen for PastView {
    fn title(&self) -> String {
        format!("at {}", self.at)
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn as_of(&self) -> Option<&str> {
        Some(&self.at)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        // The past does not move when the database does.
        if self.inventory.is_none() {
            self.inventory = Some(infradeck_core::app::inventory_at(
                cx.store,
                &self.at,
                &cx.env.machine_rules,
                &cx.env.sources,
            )?);
            self.apply_filter();
        }
        Ok(())
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        self.parsed = parse_filter(text)?;
        self.filter = text.to_string();
        self.cursor = Cursor::default();
        self.apply_filter();
        Ok(())
    }

    fn copy_text(&self) -> Option<String> {
        let inventory = self.inventory.as_ref()?;
        self.visible
            .get(self.cursor.selected)
            .map(|i| inventory.machines[*i].name.clone())
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        (action == Action::Open && self.visible.is_empty()).then_some("no machine existed then")
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.visible.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        let (Action::Open, Some(inventory)) = (action, &self.inventory) else {
            return Ok(Outcome::Ignored);
        };
        let Some(machine) = self
            .visible
            .get(self.cursor.selected)
            .map(|i| &inventory.machines[*i])
        else {
            return Ok(Outcome::Ignored);
        };
        let Some(detail) = inventory.detail(machine.id) else {
            return Ok(Outcome::Ignored);
        };
        Ok(Outcome::Modal(Modal::Text {
            title: format!("{} at {}", machine.name, self.at),
            lines: detail
                .lines()
                .iter()
                .map(|l| infradeck_core::sanitize::for_terminal(l).into_owned())
                .collect(),
            scroll: 0,
        }))
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.visible.len(), self.height);
        self.cursor
            .drawn_at(area.y + 1, self.height, self.visible.len(), 1);
        let Some(inventory) = &self.inventory else {
            return;
        };
        let clean = |t: &str| infradeck_core::sanitize::for_terminal(t).into_owned();
        let rows: Vec<Row> = self
            .visible
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, index)| {
                let m = &inventory.machines[*index];
                let row = Row::new(vec![
                    Line::raw(clean(&m.name)),
                    Line::raw(m.device_type.as_str()),
                    Line::raw(m.source_systems().join(",")),
                    Line::styled(m.health.to_string(), theme.health(m.health)),
                    Line::raw(m.power.clone().unwrap_or_default()),
                    Line::raw(clean(
                        &m.worst_reason().map(|r| r.text.clone()).unwrap_or_default(),
                    )),
                ]);
                crate::widgets::table::select(row, i == self.cursor.selected, theme)
            })
            .collect();
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    Constraint::Length(28),
                    Constraint::Length(8),
                    Constraint::Length(24),
                    Constraint::Length(6),
                    Constraint::Length(8),
                    Constraint::Min(10),
                ],
                &["NAME", "TYPE", "SOURCES", "HEALTH", "POWER", "WHY"],
                theme,
            ),
            area,
        );
    }
}
