//! The device list: one row per machine (its records merged: the primary record's name, the
//! sources that know it, its health and power state), or with `R` one row per source record.
//! Filtered as you type, sorted by any column (Shift+letter, k9s-style, or `s` to cycle), and
//! only the rows on screen ever read or built, so 100,000 devices scroll like 100.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::machines::{MachineFilter, parse_filter};
use infradeck_core::model::{DeviceStatus, DeviceType, Health};
use infradeck_core::store::{Device, DeviceQuery, DeviceSort, Machine, MachineQuery, MachineSort};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use std::collections::{BTreeMap, HashMap};

/// One row on screen.
enum Listed {
    Machine(Machine),
    /// A raw record and the source systems of its machine.
    Record(Device, Vec<String>),
}

impl Listed {
    /// The record the detail, tree and configs open: the machine's primary record.
    fn device_id(&self) -> Option<i64> {
        match self {
            Listed::Machine(m) => m.primary_device_id,
            Listed::Record(d, _) => Some(d.id),
        }
    }

    fn name(&self) -> &str {
        match self {
            Listed::Machine(m) => &m.name,
            Listed::Record(d, _) => &d.name,
        }
    }
}

pub(crate) struct DevicesView {
    preset: Option<DeviceType>,
    filter: String,
    parsed: Result<MachineFilter, String>,
    /// One row per source record instead of per machine.
    records: bool,
    sort: MachineSort,
    descending: bool,
    cursor: Cursor,
    total: u64,
    page: Vec<Listed>,
    page_offset: u64,
    stale: BTreeMap<String, String>,
    height: usize,
}

fn parsed_filter(text: &str, preset: Option<DeviceType>) -> Result<MachineFilter, String> {
    let mut filter = parse_filter(text).map_err(|e| e.0)?;
    if filter.device_type.is_none() {
        filter.device_type = preset;
    }
    Ok(filter)
}

impl DevicesView {
    pub(crate) fn new(preset: Option<DeviceType>) -> DevicesView {
        Self::with_filter(preset, "")
    }

    pub(crate) fn with_filter(preset: Option<DeviceType>, filter: &str) -> DevicesView {
        DevicesView {
            preset,
            filter: filter.to_string(),
            parsed: parsed_filter(filter, preset),
            records: false,
            sort: MachineSort::Name,
            descending: false,
            cursor: Cursor::default(),
            total: 0,
            page: Vec::new(),
            page_offset: 0,
            stale: BTreeMap::new(),
            height: 40,
        }
    }

    /// The parsed filter; never read while it is an error (nothing is listed then).
    fn filter_or_none(&self) -> MachineFilter {
        self.parsed.clone().unwrap_or_default()
    }

    fn machine_query(&self, offset: u64, limit: u64) -> MachineQuery {
        MachineQuery {
            filter: self.filter_or_none(),
            sort: self.sort,
            descending: self.descending,
            offset,
            limit,
            stale: self.stale.clone(),
        }
    }

    /// The record list's query: the machine sorts a record has (name, type, sources, last
    /// seen) map onto its columns; health and power are the machine's and sort by name.
    fn record_query(&self, offset: u64, limit: u64) -> DeviceQuery {
        DeviceQuery {
            sort: match self.sort {
                MachineSort::Type => DeviceSort::Type,
                MachineSort::Sources => DeviceSort::Source,
                MachineSort::LastSeen => DeviceSort::LastSeen,
                _ => DeviceSort::Name,
            },
            descending: self.descending,
            offset,
            limit,
            ..DeviceQuery::of_records(&self.filter_or_none())
        }
    }

    fn selected(&self) -> Option<&Listed> {
        let index = (self.cursor.selected as u64).checked_sub(self.page_offset)?;
        self.page.get(index as usize)
    }

    /// Reads the rows on screen (and a screen either side, so small moves need no query).
    fn load_page(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.cursor.clamp(self.total as usize, self.height);
        if self.parsed.is_err() {
            // A filter that cannot be read shows nothing (and says why), not everything.
            self.page.clear();
            return Ok(());
        }
        let want_start = self.cursor.top as u64;
        let want_end = want_start + self.height as u64;
        let have_end = self.page_offset + self.page.len() as u64;
        let covered =
            want_start >= self.page_offset && (want_end <= have_end || have_end >= self.total);
        if covered && !self.page.is_empty() {
            return Ok(());
        }
        let offset = want_start.saturating_sub(self.height as u64);
        let limit = self.height as u64 * 3;
        if self.records {
            let page = cx.store.query_devices(&self.record_query(offset, limit))?;
            let ids: Vec<i64> = page.iter().map(|d| d.id).collect();
            let mut sources: HashMap<i64, Vec<String>> = cx.store.sources_of(&ids)?;
            self.page = page
                .into_iter()
                .map(|d| {
                    let of = sources.remove(&d.id).unwrap_or_default();
                    Listed::Record(d, of)
                })
                .collect();
        } else {
            let page = cx.store.machine_page(&self.machine_query(offset, limit))?;
            self.page = page.machines.into_iter().map(Listed::Machine).collect();
        }
        self.page_offset = offset;
        Ok(())
    }

    fn reload(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.stale = infradeck_core::app::stale_sources(cx.store, &cx.env.sources, cx.now)?;
        self.total = if self.parsed.is_err() {
            0
        } else if self.records {
            cx.store.count_devices(&self.record_query(0, 0))?
        } else {
            cx.store.machine_page(&self.machine_query(0, 1))?.total
        };
        self.page.clear();
        self.load_page(cx)
    }

    /// Sorts by `sort`; pressing the key of the current column reverses it (as k9s does).
    fn sort_by(&mut self, sort: MachineSort, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.sort == sort {
            self.descending = !self.descending;
        } else {
            self.sort = sort;
            // Each column's natural order (health and last seen: worst and newest first).
            self.descending = false;
        }
        self.reload(cx)?;
        Ok(Outcome::Handled)
    }
}

fn type_word(device_type: DeviceType) -> &'static str {
    match device_type {
        DeviceType::NetworkDevice => "network",
        other => other.as_str(),
    }
}

impl Screen for DevicesView {
    fn title(&self) -> String {
        let kind = match self.preset {
            None => "devices",
            Some(DeviceType::Vm) => "vms",
            Some(DeviceType::Server) => "hosts",
            Some(DeviceType::NetworkDevice) => "network",
            Some(DeviceType::Storage) => "storage",
            Some(DeviceType::Cluster) => "clusters",
            Some(other) => other.as_str(),
        };
        if self.records {
            format!("{kind} (records)")
        } else {
            kind.to_string()
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Devices, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }
    fn click(&mut self, y: u16, cx: &mut Cx) -> anyhow::Result<bool> {
        if !self.cursor.click(y) {
            return Ok(false);
        }
        self.load_page(cx)?;
        Ok(true)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.reload(cx)
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: &str, cx: &mut Cx) -> anyhow::Result<()> {
        self.filter = text.to_string();
        self.parsed = parsed_filter(text, self.preset);
        self.cursor = Cursor::default();
        self.reload(cx)
    }

    fn copy_text(&self) -> Option<String> {
        self.selected().map(|row| row.name().to_string())
    }

    fn device(&self) -> Option<i64> {
        self.selected().and_then(Listed::device_id)
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match action {
            Action::SortHealth | Action::SortPower if self.records => {
                Some("health and power are a machine's: press R for the machine list")
            }
            Action::Open | Action::Tree | Action::Configs if self.selected().is_none() => {
                Some("nothing is selected")
            }
            _ => None,
        }
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.total as usize, self.height) {
            self.load_page(cx)?;
            return Ok(Outcome::Handled);
        }
        let selected = self.selected().and_then(Listed::device_id);
        let sorts: &[MachineSort] = if self.records {
            &[
                MachineSort::Name,
                MachineSort::Type,
                MachineSort::Sources,
                MachineSort::LastSeen,
            ]
        } else {
            &MachineSort::ALL
        };
        Ok(match action {
            Action::SortNext => {
                let at = sorts.iter().position(|s| *s == self.sort).unwrap_or(0);
                let next = sorts[(at + 1) % sorts.len()];
                self.sort_by(next, cx)?
            }
            Action::SortReverse => {
                self.descending = !self.descending;
                self.reload(cx)?;
                Outcome::Handled
            }
            Action::SortName => self.sort_by(MachineSort::Name, cx)?,
            Action::SortType => self.sort_by(MachineSort::Type, cx)?,
            Action::SortSources => self.sort_by(MachineSort::Sources, cx)?,
            Action::SortHealth if !self.records => self.sort_by(MachineSort::Health, cx)?,
            Action::SortPower if !self.records => self.sort_by(MachineSort::Power, cx)?,
            Action::SortSeen => self.sort_by(MachineSort::LastSeen, cx)?,
            Action::ToggleRecords => {
                self.records = !self.records;
                if self.records && matches!(self.sort, MachineSort::Health | MachineSort::Power) {
                    self.sort = MachineSort::Name;
                    self.descending = false;
                }
                self.cursor = Cursor::default();
                self.reload(cx)?;
                Outcome::Handled
            }
            Action::Open => match selected {
                Some(id) => Outcome::Push(Box::new(super::detail::DetailView::new(id))),
                None => Outcome::Ignored,
            },
            Action::Tree => match selected {
                Some(id) => Outcome::Push(Box::new(super::tree::TreeView::new(Some(id)))),
                None => Outcome::Ignored,
            },
            Action::Configs => match selected {
                Some(id) => Outcome::Push(Box::new(super::configs::ConfigsView::for_device(id))),
                None => Outcome::Ignored,
            },
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        let [status_area, table_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        self.height = table_area.height.saturating_sub(1).max(1) as usize;
        if let Err(err) = self.load_page(cx) {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!("cannot read devices: {err}"),
                    theme.error(),
                )),
                status_area,
            );
            return;
        }
        self.cursor
            .drawn_at(table_area.y + 1, self.height, self.total as usize, 1);
        let unit = if self.records { "records" } else { "machines" };
        let position = if self.total == 0 {
            format!("no {unit} match")
        } else {
            format!(
                "{} of {} {unit}",
                crate::header::group(self.cursor.selected as u64 + 1),
                crate::header::group(self.total)
            )
        };
        let arrow = if self.descending { "▼" } else { "▲" };
        let sort_heading = if self.records && self.sort == MachineSort::Sources {
            "SOURCE"
        } else {
            self.sort.heading()
        };
        let mut status = vec![
            Span::styled(position, theme.muted()),
            Span::styled(
                format!("  sorted by {} {arrow}", sort_heading.to_ascii_lowercase()),
                theme.muted(),
            ),
        ];
        if let Err(error) = &self.parsed {
            status.push(Span::styled(format!("  {error}"), theme.error()));
        }
        frame.render_widget(Paragraph::new(Line::from(status)), status_area);

        // The reason column only where it has room to say something.
        let wide = table_area.width >= 110;
        let headings: &[&str] = if self.records {
            &["NAME", "TYPE", "SOURCE", "STATUS", "MACHINE", "LAST SEEN"]
        } else if wide {
            &[
                "NAME",
                "TYPE",
                "SOURCES",
                "HEALTH",
                "POWER",
                "LAST SEEN",
                "WHY",
            ]
        } else {
            &["NAME", "TYPE", "SOURCES", "HEALTH", "POWER", "LAST SEEN"]
        };
        let header = Row::new(headings.iter().map(|h| {
            if *h == sort_heading {
                Cell::from(format!("{h}{arrow}"))
            } else {
                Cell::from(*h)
            }
        }))
        .style(theme.title());
        let stale_before = cx.now - cx.env.stale_after;
        let age = |at: &Option<String>| {
            at.as_deref()
                .map(|at| infradeck_core::time::age(at, cx.now))
                .unwrap_or_else(|| "never".into())
        };
        let clean = |text: &str| infradeck_core::sanitize::for_terminal(text).into_owned();
        let rows: Vec<Row> = (self.cursor.top
            ..(self.cursor.top + self.height).min(self.total as usize))
            .filter_map(|index| {
                let listed = self
                    .page
                    .get(index.checked_sub(self.page_offset as usize)?)?;
                let (status, last_seen) = match listed {
                    Listed::Machine(m) => (m.status, &m.last_seen),
                    Listed::Record(d, _) => (d.status, &d.last_seen),
                };
                let stale = status == DeviceStatus::Inactive
                    || last_seen
                        .as_deref()
                        .and_then(infradeck_core::time::parse)
                        .is_none_or(|at| at < stale_before);
                let selected = index == self.cursor.selected;
                let style = if selected {
                    theme.selected()
                } else if stale {
                    theme.stale()
                } else {
                    theme.base()
                };
                let cells = match listed {
                    Listed::Machine(m) => {
                        let why = m.worst_reason().map(|r| clean(&r.text)).unwrap_or_default();
                        let health = Cell::from(m.health.as_str());
                        let mut cells = vec![
                            Cell::from(clean(&m.name)),
                            Cell::from(type_word(m.device_type)),
                            Cell::from(clean(&m.source_systems().join(","))),
                            if selected || m.health == Health::Ok {
                                health
                            } else {
                                health.style(theme.health(m.health))
                            },
                            Cell::from(m.power.clone().unwrap_or_default()),
                            Cell::from(age(&m.last_seen)),
                        ];
                        if wide {
                            cells.push(Cell::from(why));
                        }
                        cells
                    }
                    Listed::Record(d, sources) => vec![
                        Cell::from(clean(&d.name)),
                        Cell::from(type_word(d.device_type)),
                        Cell::from(clean(&format!(
                            "{}/{}",
                            d.source_system, d.source_identifier
                        ))),
                        Cell::from(d.status.as_str()),
                        Cell::from(clean(&sources.join(","))),
                        Cell::from(age(&d.last_seen)),
                    ],
                };
                Some(Row::new(cells).style(style))
            })
            .collect();
        let widths: Vec<Constraint> = if self.records {
            vec![
                Constraint::Min(16),
                Constraint::Length(8),
                Constraint::Length(26),
                Constraint::Length(8),
                Constraint::Length(24),
                Constraint::Length(10),
            ]
        } else if wide {
            vec![
                Constraint::Length(32),
                Constraint::Length(8),
                Constraint::Length(24),
                Constraint::Length(6),
                Constraint::Length(14),
                Constraint::Length(9),
                Constraint::Fill(1),
            ]
        } else {
            vec![
                Constraint::Min(16),
                Constraint::Length(8),
                Constraint::Length(24),
                Constraint::Length(6),
                Constraint::Length(10),
                Constraint::Length(9),
            ]
        };
        frame.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            table_area,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_type_holds_unless_the_filter_names_one() {
        let f = parsed_filter("web", Some(DeviceType::Server)).unwrap();
        assert_eq!(f.device_type, Some(DeviceType::Server));
        let f = parsed_filter("type:vm", Some(DeviceType::Server)).unwrap();
        assert_eq!(f.device_type, Some(DeviceType::Vm));
        assert!(
            parsed_filter("colour:red", None)
                .unwrap_err()
                .contains("known:")
        );
    }
}
