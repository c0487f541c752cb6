//! One device, everything known about it, as one scrolling document: the merged view with each
//! field's source and conflicts, VM details, interfaces, volumes, relationships (each a link to
//! that device), config versions, related runbooks and tickets, the change timeline, and facts.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::theme::Theme;
use crate::widgets::cursor::Cursor;
use infradeck_core::app::{KindDetail, MachineDetail};
use infradeck_core::store::DeviceDetail;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Where Enter on a line leads.
#[derive(Debug, Clone, PartialEq)]
enum Link {
    Device(i64),
    Configs(i64),
    /// A runbook page or ticket, opened in the reader.
    Knowledge(infradeck_core::store::HitKind, i64),
}

struct DocLine {
    line: Line<'static>,
    link: Option<Link>,
    /// What `y` copies on this line.
    copy: Option<String>,
    section: bool,
}

fn clean(text: &str) -> String {
    infradeck_core::sanitize::for_terminal(text).into_owned()
}

pub(crate) struct DetailView {
    device_id: i64,
    name: String,
    lines: Vec<DocLine>,
    cursor: Cursor,
    height: usize,
}

impl DetailView {
    pub(crate) fn new(device_id: i64) -> DetailView {
        DetailView {
            device_id,
            name: format!("#{device_id}"),
            lines: Vec::new(),
            cursor: Cursor::default(),
            height: 20,
        }
    }

    fn build(
        &mut self,
        detail: &DeviceDetail,
        machine: Option<&MachineDetail>,
        knowledge: &[infradeck_core::store::KnowledgeHit],
        history_lines: Vec<String>,
        cx: &Cx,
    ) {
        let theme = cx.env.theme;
        let now = cx.now;
        let mut doc = Doc {
            lines: Vec::new(),
            theme,
        };
        let d = &detail.device;
        self.name = clean(&d.name);
        doc.section(&format!("{} ({})", clean(&d.name), d.device_type.as_str()));
        doc.field(
            "status",
            d.status.as_str(),
            if d.status == infradeck_core::model::DeviceStatus::Inactive {
                theme.stale()
            } else {
                theme.ok()
            },
        );
        doc.field(
            "source",
            &format!(
                "{}/{}  id {}",
                clean(&d.source_system),
                clean(&d.source_identifier),
                clean(&d.source_id)
            ),
            theme.base(),
        );
        let seen = |at: &Option<String>| {
            at.as_deref()
                .map(|a| format!("{a} ({} ago)", infradeck_core::time::age(a, now)))
                .unwrap_or_else(|| "never".into())
        };
        doc.field("first seen", &seen(&d.first_seen), theme.base());
        doc.field("last seen", &seen(&d.last_seen), theme.base());
        if let Some(machine) = machine {
            machine_sections(&mut doc, machine, self.device_id, now);
        }

        if let Some(merged) = &detail.merged {
            doc.section(&format!(
                "merged view · {} records",
                merged.device_ids.len()
            ));
            for field in &merged.fields {
                let mut spans = vec![Span::styled(
                    format!(
                        "  {}{:<14}",
                        if field.conflict { "≠" } else { " " },
                        field.name
                    ),
                    if field.conflict {
                        theme.conflict()
                    } else {
                        theme.muted()
                    },
                )];
                // Equal values are shown once with every source that reports them.
                let mut groups: Vec<(String, Vec<String>)> = Vec::new();
                for value in &field.values {
                    let confirmed = value
                        .confirmed_at
                        .as_deref()
                        .map(|at| format!(" {}", infradeck_core::time::age(at, now)))
                        .unwrap_or_default();
                    let system = value.source.split('/').next().unwrap_or(&value.source);
                    let source = format!("{}{confirmed}", clean(system));
                    match groups
                        .iter_mut()
                        .find(|(v, _)| v.eq_ignore_ascii_case(&value.value))
                    {
                        Some((_, sources)) => sources.push(source),
                        None => groups.push((value.value.clone(), vec![source])),
                    }
                }
                for (i, (value, sources)) in groups.iter().enumerate() {
                    if i > 0 {
                        spans.push(Span::styled(" │ ", theme.muted()));
                    }
                    spans.push(Span::styled(
                        clean(value),
                        if field.conflict {
                            theme.conflict()
                        } else {
                            theme.base()
                        },
                    ));
                    spans.push(Span::styled(
                        format!(" [{}]", sources.join(", ")),
                        theme.muted(),
                    ));
                }
                doc.push(
                    Line::from(spans),
                    None,
                    field.values.first().map(|v| v.value.clone()),
                );
            }
        }

        if let Some(vm) = &detail.vm {
            let vm = &vm.vm;
            doc.section("virtual machine");
            let opt = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_else(|| "—".into());
            doc.field("power", &opt(&vm.power_state), theme.base());
            doc.field("guest os", &opt(&vm.guest_os), theme.base());
            doc.field(
                "cpu / memory",
                &format!(
                    "{} vCPU · {} MB",
                    vm.cpu_count.map_or("?".into(), |c| c.to_string()),
                    vm.memory_mb.map_or("?".into(), |m| m.to_string())
                ),
                theme.base(),
            );
            doc.field(
                "tools",
                match vm.tools_running {
                    Some(true) => "running",
                    Some(false) => "not running",
                    None => "unknown",
                },
                theme.base(),
            );
            let ips: Vec<String> = vm
                .ip_addresses
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(clean)).collect())
                .unwrap_or_default();
            let first_ip = ips.first().cloned();
            doc.push(
                Line::from(vec![
                    Span::styled(format!("  {:<15}", "addresses"), theme.muted()),
                    Span::raw(if ips.is_empty() {
                        "—".into()
                    } else {
                        ips.join(", ")
                    }),
                ]),
                None,
                first_ip,
            );
            doc.field(
                "disk",
                &vm.total_disk_capacity_bytes.map_or("—".into(), bytes),
                theme.base(),
            );
            snapshot_lines(&mut doc, vm, now);
        }

        if !detail.interfaces.is_empty() {
            doc.section(&format!("interfaces · {}", detail.interfaces.len()));
            for row in &detail.interfaces {
                let i = &row.interface;
                let description = i
                    .metadata
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                let vlan = i
                    .metadata
                    .get("vlan")
                    .map(|v| format!(" vlan {v}"))
                    .unwrap_or_default();
                let status = i.status.as_deref().unwrap_or("");
                doc.push(
                    Line::from(vec![
                        Span::raw(format!("  {:<20}", clean(&i.interface_name))),
                        Span::styled(
                            format!(
                                "{:<18}",
                                i.mac_address.as_deref().map(clean).unwrap_or_default()
                            ),
                            theme.muted(),
                        ),
                        Span::raw(format!("{:<24}", clean(&i.ip_addresses.join(",")))),
                        Span::styled(
                            format!("{status:<6}"),
                            if status == "down" || status == "disabled" {
                                theme.stale()
                            } else {
                                theme.ok()
                            },
                        ),
                        Span::styled(
                            format!("{}{}", clean(description), clean(&vlan)),
                            theme.muted(),
                        ),
                    ]),
                    None,
                    i.ip_addresses
                        .first()
                        .cloned()
                        .or_else(|| i.mac_address.clone()),
                );
            }
        }

        if !detail.volumes.is_empty() {
            doc.section(&format!("volumes · {}", detail.volumes.len()));
            for row in &detail.volumes {
                let v = &row.volume;
                doc.push(
                    Line::from(vec![
                        Span::raw(format!("  {:<28}", clean(&v.name))),
                        Span::styled(
                            format!("{:<10}", v.volume_type.as_deref().unwrap_or("")),
                            theme.muted(),
                        ),
                        Span::raw(format!(
                            "{} used of {}",
                            v.used_bytes.map_or("?".into(), bytes),
                            v.capacity_bytes.map_or("?".into(), bytes)
                        )),
                        Span::styled(
                            if v.thin_provisioned == Some(true) {
                                "  thin"
                            } else {
                                ""
                            },
                            theme.muted(),
                        ),
                    ]),
                    None,
                    Some(v.name.clone()),
                );
            }
        }

        if !detail.related.is_empty() {
            doc.section(&format!("relationships · {}", detail.related.len()));
            for r in &detail.related {
                let relation = relation_words(r.relationship_type.as_str(), r.is_parent);
                doc.push(
                    Line::from(vec![
                        Span::styled(format!("  {relation:<16}"), theme.muted()),
                        Span::styled(format!("▸ {}", clean(&r.device.name)), theme.key()),
                        Span::styled(
                            format!(
                                "  {} · {}",
                                r.device.device_type.as_str(),
                                clean(&r.device.source_system)
                            ),
                            theme.muted(),
                        ),
                    ]),
                    Some(Link::Device(r.device.id)),
                    Some(r.device.name.clone()),
                );
            }
        }

        if !detail.configs.is_empty() {
            doc.section(&format!("config versions · {}", detail.configs.len()));
            for c in detail.configs.iter().rev().take(10) {
                doc.push(
                    Line::from(vec![
                        Span::styled(format!("  v{:<4}", c.version), theme.key()),
                        Span::raw(format!("{:<21}", c.retrieved_at.as_deref().unwrap_or("?"))),
                        Span::styled(
                            format!(
                                "{}  {} bytes",
                                infradeck_core::text::first_chars(&c.config_hash, 12),
                                c.size_bytes
                            ),
                            theme.muted(),
                        ),
                    ]),
                    Some(Link::Configs(d.id)),
                    Some(c.config_hash.clone()),
                );
            }
        }

        if !knowledge.is_empty() {
            doc.section(&format!("runbooks and tickets · {}", knowledge.len()));
            for k in knowledge {
                doc.push(
                    Line::from(vec![
                        Span::styled(format!("  {:<7}", k.hit.kind.as_str()), theme.muted()),
                        Span::raw(clean(&k.hit.title)),
                        Span::styled(format!("  {}", clean(&k.hit.detail)), theme.muted()),
                    ]),
                    Some(Link::Knowledge(k.hit.kind, k.hit.id)),
                    k.hit.url.clone().or_else(|| Some(k.hit.title.clone())),
                );
            }
        }

        if !detail.history.is_empty() {
            doc.section(&format!("history · {}", detail.history.len()));
            for (h, summary) in detail.history.iter().zip(history_lines) {
                doc.push(
                    Line::from(vec![
                        Span::styled(
                            format!("  {:<20}", h.performed_at.as_deref().unwrap_or("?")),
                            theme.muted(),
                        ),
                        Span::raw(format!(
                            "{:<13} ",
                            h.change_type
                                .as_deref()
                                .or(h.operation.as_deref())
                                .unwrap_or("")
                        )),
                        Span::raw(clean(&summary)),
                        Span::styled(format!("  {}", clean(&h.source_system)), theme.muted()),
                    ]),
                    None,
                    Some(summary),
                );
            }
        }

        if !detail.facts.is_empty() {
            doc.section(&format!("facts · {}", detail.facts.len()));
            for f in &detail.facts {
                let value = f.value.as_deref().unwrap_or("");
                doc.push(
                    Line::from(vec![
                        Span::styled(format!("  {:<32}", clean(&f.name)), theme.muted()),
                        Span::raw(clean(value)),
                    ]),
                    None,
                    Some(value.to_string()),
                );
            }
        }
        self.lines = doc.lines;
    }

    fn section_starts(&self) -> Vec<usize> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.section)
            .map(|(i, _)| i)
            .collect()
    }
}

struct Doc {
    lines: Vec<DocLine>,
    theme: Theme,
}

impl Doc {
    fn section(&mut self, title: &str) {
        if !self.lines.is_empty() {
            self.lines.push(DocLine {
                line: Line::raw(""),
                link: None,
                copy: None,
                section: false,
            });
        }
        self.lines.push(DocLine {
            line: Line::from(Span::styled(title.to_string(), self.theme.title())),
            link: None,
            copy: None,
            section: true,
        });
    }

    fn field(&mut self, name: &str, value: &str, style: Style) {
        self.push(
            Line::from(vec![
                Span::styled(format!("  {name:<15}"), self.theme.muted()),
                Span::styled(value.to_string(), style),
            ]),
            None,
            Some(value.to_string()),
        );
    }

    fn push(&mut self, line: Line<'static>, link: Option<Link>, copy: Option<String>) {
        self.lines.push(DocLine {
            line,
            link,
            copy,
            section: false,
        });
    }
}

/// The machine this record belongs to: its health with every reason, the records of every
/// source that knows it (each opens that record), and what its kind adds, each section naming
/// the source its data came from.
fn machine_sections(
    doc: &mut Doc,
    detail: &MachineDetail,
    shown: i64,
    now: chrono::DateTime<chrono::Utc>,
) {
    let theme = doc.theme;
    let m = &detail.machine;
    doc.section(&format!("health · {}", m.health.as_str().to_uppercase()));
    if m.reasons.is_empty() {
        doc.field(
            "health",
            "ok: nothing its sources report is wrong",
            theme.ok(),
        );
    }
    for reason in &m.reasons {
        let source = if reason.source.is_empty() {
            String::new()
        } else {
            format!("  [{}]", clean(&reason.source))
        };
        doc.push(
            Line::from(vec![
                Span::styled(
                    format!("  {:<5}", reason.level.as_str()),
                    theme.health(reason.level),
                ),
                Span::raw(clean(&reason.text)),
                Span::styled(source, theme.muted()),
            ]),
            None,
            Some(reason.text.clone()),
        );
    }
    if m.records.len() > 1 || m.power.is_some() {
        doc.section(&format!("machine {} · {} records", m.id, m.records.len()));
        if let Some(power) = &m.power {
            doc.field("power", power, theme.base());
        }
        for record in &m.records {
            let mark = if record.device_id == shown {
                "▸"
            } else {
                " "
            };
            let seen = record
                .last_seen
                .as_deref()
                .map(|at| format!("{} ago", infradeck_core::time::age(at, now)))
                .unwrap_or_else(|| "never".into());
            doc.push(
                Line::from(vec![
                    Span::raw(format!("  {mark} ")),
                    Span::styled(format!("{:<26}", clean(&record.source())), theme.muted()),
                    Span::raw(format!("{:<30} ", clean(&record.name))),
                    Span::styled(
                        format!("{:<9}{seen}", record.status.as_str()),
                        theme.muted(),
                    ),
                ]),
                (record.device_id != shown).then_some(Link::Device(record.device_id)),
                Some(record.name.clone()),
            );
        }
    }
    let onoff = |f: &Option<bool>| match f {
        Some(true) => "on",
        Some(false) => "off",
        None => "not reported",
    };
    match &detail.kind {
        KindDetail::Host {
            source,
            cluster,
            datacenter,
            connection_state,
            power_state,
            vms,
            vms_powered_on,
            uplinks,
        } => {
            doc.section(&format!("host · from {}", clean(source)));
            let opt = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_else(|| "—".into());
            doc.field(
                "cluster",
                &format!("{} ({})", opt(cluster), opt(datacenter)),
                theme.base(),
            );
            let state = opt(connection_state);
            let style = if state == "CONNECTED" {
                theme.ok()
            } else {
                theme.error()
            };
            doc.field("connection", &state, style);
            doc.field("power", &opt(power_state), theme.base());
            doc.field(
                "vms",
                &format!("{vms} ({vms_powered_on} powered on)"),
                theme.base(),
            );
            for u in uplinks {
                doc.field(
                    &clean(&u.nic),
                    &format!(
                        "{} {} → {} {}",
                        u.status.as_deref().map(clean).unwrap_or_else(|| "?".into()),
                        u.speed_mbps
                            .map(|s| format!("{s} Mb/s"))
                            .unwrap_or_default(),
                        u.switch
                            .as_deref()
                            .map(clean)
                            .unwrap_or_else(|| "no neighbour reported".into()),
                        u.port.as_deref().map(clean).unwrap_or_default()
                    ),
                    theme.base(),
                );
            }
        }
        KindDetail::Cluster {
            source,
            hosts,
            vms,
            vms_powered_on,
            ha_enabled,
            drs_enabled,
        } => {
            doc.section(&format!("cluster · from {}", clean(source)));
            doc.field("hosts", &hosts.len().to_string(), theme.base());
            doc.field(
                "vms",
                &format!("{vms} ({vms_powered_on} powered on)"),
                theme.base(),
            );
            doc.field(
                "HA / DRS",
                &format!("{} / {}", onoff(ha_enabled), onoff(drs_enabled)),
                theme.base(),
            );
            for host in hosts {
                doc.push(
                    Line::from(vec![
                        Span::styled(
                            format!("  {:<5}", host.health.as_str()),
                            theme.health(host.health),
                        ),
                        Span::raw(format!("{:<30} ", clean(&host.name))),
                        Span::styled(
                            format!("{} VMs, {} on", host.vms, host.vms_powered_on),
                            theme.muted(),
                        ),
                    ]),
                    None,
                    Some(host.name.clone()),
                );
            }
        }
        KindDetail::Array {
            source,
            capacity_bytes,
            used_bytes,
            used_percent,
            pools,
            fullest,
            volumes,
        } => {
            doc.section(&format!("array · from {}", clean(source)));
            doc.field(
                "capacity",
                &format!(
                    "{} of {} used ({}) · {volumes} volumes",
                    bytes(*used_bytes),
                    bytes(*capacity_bytes),
                    used_percent
                        .map(|p| format!("{p:.0}%"))
                        .unwrap_or_else(|| "?".into())
                ),
                theme.base(),
            );
            if !pools.is_empty() {
                doc.field("pools", &clean(&pools.join(", ")), theme.base());
            }
            for v in fullest {
                let percent = v.volume.used_percent().unwrap_or(0.0);
                let style = if percent >= 95.0 {
                    theme.error()
                } else if percent >= 85.0 {
                    theme.warn()
                } else {
                    theme.base()
                };
                doc.field(
                    &clean(&v.volume.name),
                    &format!(
                        "{percent:.0}% of {}",
                        bytes(v.volume.capacity_bytes.unwrap_or(0))
                    ),
                    style,
                );
            }
        }
        KindDetail::Switch {
            source,
            model,
            last_fetch_status,
            config_retrieved_at,
            config_versions,
            interfaces,
        } => {
            doc.section(&format!("switch · from {}", clean(source)));
            doc.field(
                "model",
                &model.as_deref().map(clean).unwrap_or_else(|| "—".into()),
                theme.base(),
            );
            let status = last_fetch_status.as_deref().unwrap_or("unknown");
            doc.field(
                "last fetch",
                &clean(status),
                if status == "success" {
                    theme.ok()
                } else {
                    theme.error()
                },
            );
            doc.field(
                "config",
                &format!(
                    "{config_versions} versions, newest {}",
                    config_retrieved_at
                        .as_deref()
                        .map(|at| format!("{} ago", infradeck_core::time::age(at, now)))
                        .unwrap_or_else(|| "none".into())
                ),
                theme.base(),
            );
            for i in interfaces {
                doc.field(
                    &clean(&i.interface.interface_name),
                    &format!(
                        "{} {}",
                        i.interface
                            .status
                            .as_deref()
                            .map(clean)
                            .unwrap_or_else(|| "?".into()),
                        clean(i.interface.metadata["description"].as_str().unwrap_or(""))
                    ),
                    theme.base(),
                );
            }
        }
        KindDetail::None => {}
    }
}

/// How a related device relates, read from this device's side.
fn relation_words(relationship: &str, related_is_parent: bool) -> String {
    match (relationship, related_is_parent) {
        ("hosts", true) => "runs on".into(),
        ("hosts", false) => "hosts".into(),
        ("same_as", _) => "same machine as".into(),
        ("depends_on", true) => "depended on by".into(),
        ("depends_on", false) => "depends on".into(),
        ("connects_to", _) => "connects to".into(),
        ("backs_up", true) => "backed by".into(),
        ("backs_up", false) => "backs".into(),
        (other, true) => format!("{other} (parent)"),
        (other, false) => other.to_string(),
    }
}

/// `1073741824` → `1.0 GiB`.
pub(crate) fn bytes(n: i64) -> String {
    infradeck_core::text::bytes(n)
}

impl Screen for DetailView {
    fn title(&self) -> String {
        self.name.clone()
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Detail, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        let link = self
            .lines
            .get(self.cursor.selected)
            .and_then(|l| l.link.as_ref());
        match action {
            Action::Open if link.is_none() => Some(
                "the selected line opens nothing: move to a related device, a runbook or ticket, or the configs",
            ),
            _ => None,
        }
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        let Some(detail) = cx.store.device_detail(self.device_id)? else {
            self.lines = vec![DocLine {
                line: Line::raw(format!(
                    "device #{} is no longer in the database",
                    self.device_id
                )),
                link: None,
                copy: None,
                section: true,
            }];
            return Ok(());
        };
        let knowledge = cx.store.related_knowledge(self.device_id, 10)?;
        let stale = infradeck_core::app::stale_sources(cx.store, &cx.env.sources, cx.now)?;
        let machine = match cx.store.machine_of_device(self.device_id, &stale)? {
            Some(m) => infradeck_core::app::machine_detail(cx.store, m.id, &stale)?,
            None => None,
        };
        // The history in the names of the devices it refers to.
        let history_lines = infradeck_core::changes::describe_entries(cx.store, &detail.history)?;
        self.build(&detail, machine.as_ref(), &knowledge, history_lines, cx);
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        Some(self.device_id)
    }

    fn copy_text(&self) -> Option<String> {
        self.lines
            .get(self.cursor.selected)
            .and_then(|l| l.copy.clone())
            .or_else(|| Some(self.name.clone()))
    }

    fn act(&mut self, action: Action, _cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.lines.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        let starts = self.section_starts();
        Ok(match action {
            Action::NextSection => {
                if let Some(next) = starts.iter().find(|s| **s > self.cursor.selected) {
                    self.cursor.selected = *next;
                    self.cursor.top = *next;
                }
                Outcome::Handled
            }
            Action::PrevSection => {
                if let Some(prev) = starts.iter().rev().find(|s| **s < self.cursor.selected) {
                    self.cursor.selected = *prev;
                }
                Outcome::Handled
            }
            Action::Open => match self
                .lines
                .get(self.cursor.selected)
                .and_then(|l| l.link.clone())
            {
                Some(Link::Device(id)) => Outcome::Push(Box::new(DetailView::new(id))),
                Some(Link::Configs(id)) => {
                    Outcome::Push(Box::new(super::configs::ConfigsView::for_device(id)))
                }
                Some(Link::Knowledge(kind, id)) => {
                    Outcome::Push(Box::new(super::reader::ReaderView::new(kind, id)))
                }
                None => Outcome::Ignored,
            },
            Action::Tree => {
                Outcome::Push(Box::new(super::tree::TreeView::new(Some(self.device_id))))
            }
            Action::Configs => Outcome::Push(Box::new(super::configs::ConfigsView::for_device(
                self.device_id,
            ))),
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.max(1) as usize;
        self.cursor.clamp(self.lines.len(), self.height);
        self.cursor
            .drawn_at(area.y, self.height, self.lines.len(), 1);
        let visible: Vec<Line> = self
            .lines
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, l)| {
                let line = l.line.clone();
                if i == self.cursor.selected {
                    line.patch_style(theme.selected())
                } else {
                    line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(visible), area);
    }
}

/// A snapshot older than this is marked: forgotten snapshots grow until the datastore is full.
const OLD_SNAPSHOT_DAYS: i64 = 3;

/// The VM's snapshots: count, oldest age, size, then one line each (name, taken, age,
/// description, the current one marked).
fn snapshot_lines(
    doc: &mut Doc,
    vm: &infradeck_core::model::VmRecord,
    now: chrono::DateTime<chrono::Utc>,
) {
    let theme = doc.theme;
    let Some(list) = vm.snapshots.as_array() else {
        doc.field(
            "snapshots",
            "unknown (not read from vCenter yet)",
            theme.muted(),
        );
        return;
    };
    if list.is_empty() {
        doc.field("snapshots", "none", theme.base());
        return;
    }
    let created = |s: &serde_json::Value| s["created"].as_str().map(str::to_string);
    let oldest = list.iter().filter_map(created).min();
    let old = oldest
        .as_deref()
        .and_then(infradeck_core::time::parse)
        .is_some_and(|at| (now - at).num_days() >= OLD_SNAPSHOT_DAYS);
    let summary = format!(
        "{} · oldest {} · {}",
        list.len(),
        oldest.as_deref().map_or("?".into(), |at| format!(
            "{} ago",
            infradeck_core::time::age(at, now)
        )),
        vm.total_snapshot_size_bytes
            .map_or("size unknown".into(), bytes),
    );
    doc.field(
        "snapshots",
        &summary,
        if old { theme.warn() } else { theme.base() },
    );
    for snapshot in list {
        let name = clean(snapshot["name"].as_str().unwrap_or("?"));
        let at = created(snapshot).unwrap_or_default();
        let current = if snapshot["current"] == true {
            " (current)"
        } else {
            ""
        };
        doc.push(
            Line::from(vec![
                Span::raw(format!("    {:<24}", format!("{name}{current}"))),
                Span::styled(
                    format!("{at:<20} {:>5}  ", infradeck_core::time::age(&at, now)),
                    theme.muted(),
                ),
                Span::raw(clean(snapshot["description"].as_str().unwrap_or(""))),
            ]),
            None,
            Some(name),
        );
    }
}
