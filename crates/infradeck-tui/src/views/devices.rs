//! The device list: every device, filtered as you type, sorted by any column, and only the rows
//! on screen ever read or built, so 100,000 devices scroll like 100.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::model::{DeviceStatus, DeviceType};
use infradeck_core::store::{Device, DeviceQuery, DeviceSort};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use std::collections::HashMap;

const SORTS: [DeviceSort; 5] = [
    DeviceSort::Name,
    DeviceSort::Type,
    DeviceSort::Source,
    DeviceSort::Status,
    DeviceSort::LastSeen,
];

/// A filter line parsed into a query: `web !db type:vm source:vcenter status:inactive`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedFilter {
    pub(crate) query: DeviceQuery,
    pub(crate) error: Option<String>,
}

/// Parses the `/` filter syntax. Unknown qualifier values are reported, not silently ignored.
pub(crate) fn parse_filter(text: &str, preset: Option<DeviceType>) -> ParsedFilter {
    let mut parsed = ParsedFilter::default();
    parsed.query.device_type = preset;
    let mut words = Vec::new();
    for token in text.split_whitespace() {
        match token.split_once(':') {
            Some((field, value)) if !value.is_empty() => {
                match field.to_ascii_lowercase().as_str() {
                    "type" | "t" => match device_type_named(value) {
                        Some(t) => parsed.query.device_type = Some(t),
                        None => {
                            parsed.error = Some(format!(
                                "unknown type `{value}` (vm, server, network, storage, cluster, container)"
                            ))
                        }
                    },
                    "source" | "src" | "s" => {
                        parsed.query.source_system = Some(value.to_ascii_lowercase())
                    }
                    "instance" | "i" => parsed.query.source_identifier = Some(value.to_string()),
                    "status" | "st" => match value.to_ascii_lowercase().as_str() {
                        "active" | "up" => parsed.query.status = Some(DeviceStatus::Active),
                        "inactive" | "gone" | "down" => {
                            parsed.query.status = Some(DeviceStatus::Inactive)
                        }
                        _ => {
                            parsed.error =
                                Some(format!("unknown status `{value}` (active, inactive)"))
                        }
                    },
                    _ => words.push(token),
                }
            }
            _ => words.push(token),
        }
    }
    let mut name = words.join(" ");
    if let Some(rest) = name.strip_prefix('!') {
        parsed.query.invert_name = true;
        name = rest.to_string();
    }
    if !name.is_empty() {
        parsed.query.name_contains = Some(name);
    }
    parsed
}

fn device_type_named(value: &str) -> Option<DeviceType> {
    Some(match value.to_ascii_lowercase().as_str() {
        "vm" | "vms" => DeviceType::Vm,
        "server" | "host" | "hosts" | "servers" => DeviceType::Server,
        "network" | "net" | "network_device" | "switch" => DeviceType::NetworkDevice,
        "storage" | "array" => DeviceType::Storage,
        "cluster" | "clusters" => DeviceType::Cluster,
        "container" => DeviceType::Container,
        _ => return None,
    })
}

pub(crate) struct DevicesView {
    preset: Option<DeviceType>,
    filter: String,
    parsed: ParsedFilter,
    sort: DeviceSort,
    descending: bool,
    cursor: Cursor,
    total: u64,
    page: Vec<Device>,
    page_offset: u64,
    sources: HashMap<i64, Vec<String>>,
    height: usize,
}

impl DevicesView {
    pub(crate) fn new(preset: Option<DeviceType>) -> DevicesView {
        Self::with_filter(preset, "")
    }

    pub(crate) fn with_filter(preset: Option<DeviceType>, filter: &str) -> DevicesView {
        DevicesView {
            preset,
            filter: filter.to_string(),
            parsed: parse_filter(filter, preset),
            sort: DeviceSort::Name,
            descending: false,
            cursor: Cursor::default(),
            total: 0,
            page: Vec::new(),
            page_offset: 0,
            sources: HashMap::new(),
            height: 40,
        }
    }

    fn query(&self, offset: u64, limit: u64) -> DeviceQuery {
        DeviceQuery {
            sort: self.sort,
            descending: self.descending,
            offset,
            limit,
            ..self.parsed.query.clone()
        }
    }

    fn selected(&self) -> Option<&Device> {
        let index = (self.cursor.selected as u64).checked_sub(self.page_offset)?;
        self.page.get(index as usize)
    }

    /// Reads the rows on screen (and a screen either side, so small moves need no query).
    fn load_page(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.cursor.clamp(self.total as usize, self.height);
        let want_start = self.cursor.top as u64;
        let want_end = want_start + self.height as u64;
        let have_end = self.page_offset + self.page.len() as u64;
        let covered =
            want_start >= self.page_offset && (want_end <= have_end || have_end >= self.total);
        if covered && !self.page.is_empty() {
            return Ok(());
        }
        let offset = want_start.saturating_sub(self.height as u64);
        let page = cx
            .store
            .query_devices(&self.query(offset, self.height as u64 * 3))?;
        let ids: Vec<i64> = page.iter().map(|d| d.id).collect();
        self.sources = cx.store.sources_of(&ids)?;
        self.page = page;
        self.page_offset = offset;
        Ok(())
    }

    fn reload(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.total = cx.store.count_devices(&self.query(0, 0))?;
        self.page.clear();
        self.load_page(cx)
    }
}

fn sort_name(sort: DeviceSort) -> &'static str {
    match sort {
        DeviceSort::Name => "NAME",
        DeviceSort::Type => "TYPE",
        DeviceSort::Source => "SOURCES",
        DeviceSort::Status => "STATUS",
        DeviceSort::LastSeen => "LAST SEEN",
    }
}

impl Screen for DevicesView {
    fn title(&self) -> String {
        match self.preset {
            None => "devices".into(),
            Some(DeviceType::Vm) => "vms".into(),
            Some(DeviceType::Server) => "hosts".into(),
            Some(DeviceType::NetworkDevice) => "network".into(),
            Some(DeviceType::Storage) => "storage".into(),
            Some(DeviceType::Cluster) => "clusters".into(),
            Some(other) => other.as_str().into(),
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Devices, Scope::List, Scope::Global]
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.reload(cx)
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: &str, cx: &mut Cx) -> anyhow::Result<()> {
        self.filter = text.to_string();
        self.parsed = parse_filter(text, self.preset);
        self.cursor = Cursor::default();
        self.reload(cx)
    }

    fn copy_text(&self) -> Option<String> {
        self.selected().map(|d| d.name.clone())
    }

    fn device(&self) -> Option<i64> {
        self.selected().map(|d| d.id)
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.total as usize, self.height) {
            self.load_page(cx)?;
            return Ok(Outcome::Handled);
        }
        let selected = self.selected().map(|d| d.id);
        Ok(match action {
            Action::SortNext | Action::SortReverse => {
                if action == Action::SortNext {
                    let at = SORTS.iter().position(|s| *s == self.sort).unwrap_or(0);
                    self.sort = SORTS[(at + 1) % SORTS.len()];
                    self.descending = self.sort == DeviceSort::LastSeen;
                } else {
                    self.descending = !self.descending;
                }
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
        let position = if self.total == 0 {
            "no devices match".to_string()
        } else {
            format!(
                "{} of {}",
                crate::header::group(self.cursor.selected as u64 + 1),
                crate::header::group(self.total)
            )
        };
        let mut status = vec![
            Span::styled(position, theme.muted()),
            Span::styled(
                format!(
                    "  sorted by {} {}",
                    sort_name(self.sort).to_ascii_lowercase(),
                    if self.descending { "▼" } else { "▲" }
                ),
                theme.muted(),
            ),
        ];
        if let Some(error) = &self.parsed.error {
            status.push(Span::styled(format!("  {error}"), theme.error()));
        }
        frame.render_widget(Paragraph::new(Line::from(status)), status_area);

        let arrow = if self.descending { "▼" } else { "▲" };
        let header = Row::new(["NAME", "TYPE", "SOURCES", "STATUS", "LAST SEEN"].map(|h| {
            if h == sort_name(self.sort) {
                Cell::from(format!("{h}{arrow}"))
            } else {
                Cell::from(h)
            }
        }))
        .style(theme.title());
        let stale_before = cx.now - cx.env.stale_after;
        let rows: Vec<Row> = (self.cursor.top
            ..(self.cursor.top + self.height).min(self.total as usize))
            .filter_map(|index| {
                let device = self
                    .page
                    .get(index.checked_sub(self.page_offset as usize)?)?;
                let sources = self
                    .sources
                    .get(&device.id)
                    .map(|s| s.join(","))
                    .unwrap_or_else(|| device.source_system.clone());
                let stale = device.status == DeviceStatus::Inactive
                    || device
                        .last_seen
                        .as_deref()
                        .and_then(infradeck_core::time::parse)
                        .is_none_or(|at| at < stale_before);
                let style = if index == self.cursor.selected {
                    theme.selected()
                } else if stale {
                    theme.stale()
                } else {
                    theme.base()
                };
                Some(
                    Row::new(vec![
                        Cell::from(
                            infradeck_core::sanitize::for_terminal(&device.name).into_owned(),
                        ),
                        Cell::from(
                            device
                                .device_type
                                .as_str()
                                .replace("network_device", "network"),
                        ),
                        Cell::from(infradeck_core::sanitize::for_terminal(&sources).into_owned()),
                        Cell::from(device.status.as_str()),
                        Cell::from(
                            device
                                .last_seen
                                .as_deref()
                                .map(|at| infradeck_core::time::age(at, cx.now))
                                .unwrap_or_else(|| "never".into()),
                        ),
                    ])
                    .style(style),
                )
            })
            .collect();
        let widths = [
            Constraint::Min(16),
            Constraint::Length(8),
            Constraint::Length(24),
            Constraint::Length(8),
            Constraint::Length(10),
        ];
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
    fn filter_syntax_becomes_a_query() {
        let p = parse_filter("type:vm source:vcenter status:inactive web", None);
        assert_eq!(p.query.device_type, Some(DeviceType::Vm));
        assert_eq!(p.query.source_system.as_deref(), Some("vcenter"));
        assert_eq!(p.query.status, Some(DeviceStatus::Inactive));
        assert_eq!(p.query.name_contains.as_deref(), Some("web"));
        assert!(!p.query.invert_name);
        let p = parse_filter("!db", Some(DeviceType::Server));
        assert!(p.query.invert_name);
        assert_eq!(p.query.device_type, Some(DeviceType::Server));
        let p = parse_filter("type:toaster", None);
        assert!(p.error.unwrap().contains("toaster"));
        assert_eq!(parse_filter("", None).query.name_contains, None);
    }
}
