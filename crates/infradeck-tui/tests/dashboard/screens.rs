//! The dashboard drawn into ratatui's TestBackend over a real database file: a snapshot of every
//! view at 80×24 and 160×48 (and one monochrome), colours checked where they carry meaning, and
//! the sanitizer between source-supplied names and the terminal.
//!
//! The fixture is written through the store with fixed timestamps and the dashboard runs on a
//! fixed clock, so every frame is reproducible.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use infradeck_core::model::*;
use infradeck_core::store::*;
use infradeck_tui::app::{App, Effect, Env};
use infradeck_tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use serde_json::json;

const NOW: &str = "2026-11-28 06:00:00";
const SEEN: &str = "2026-11-28 05:50:00";
const LONG_AGO: &str = "2026-10-01 04:00:00";
pub(crate) const EVIL_NAME: &str = "evil\x1b[2J\x1b]0;owned\x07\u{202e}name\rX";

fn device(
    source: &str,
    id: &str,
    name: &str,
    device_type: DeviceType,
    metadata: serde_json::Value,
) -> DeviceRecord {
    DeviceRecord {
        source_system: source.into(),
        source_identifier: format!("{source}-1"),
        source_id: id.into(),
        name: name.into(),
        device_type,
        metadata,
    }
}

const SWITCH_V1: &str = "!\n! Last configuration change at 04:00:00 UTC Mon Oct 5 2026 by admin\n!\nhostname dc1-leaf-01\n!\ninterface Ethernet1\n description uplink to rack B12\n switchport access vlan 120\n!\ninterface Ethernet2\n description spare\n shutdown\n!\nend\n";
const SWITCH_V2: &str = "!\n! Last configuration change at 05:00:00 UTC Sat Nov 28 2026 by jdoe\n!\nhostname dc1-leaf-01\n!\ninterface Ethernet1\n description uplink to rack C07\n switchport access vlan 120\n!\ninterface Ethernet2\n description new ESXi host\n!\nvlan 302\n name VLAN302\n!\nend\n";

/// A small estate with one of everything the views show.
fn fixture(path: &std::path::Path) -> i64 {
    let mut store = Store::open(path, &OpenOptions::default()).unwrap();
    store
        .write(|w| {
            let cluster = w.upsert_device(&device("vcenter", "domain-c1", "dc1-prod", DeviceType::Cluster, json!({})), SEEN)?.id;
            let host = w
                .upsert_device(&device("vcenter", "host-1", "esx01.dc1.example.net", DeviceType::Server, json!({"vcenter": {"hostname": "esx01", "connection_state": "NOT_RESPONDING"}})), SEEN)?
                .id;
            let vm_meta = json!({"vcenter": {"hostname": "web-01", "ip": "10.16.0.10", "memory_mb": 4096, "cpu_count": 4, "power_state": "POWERED_ON"}});
            let vm = w.upsert_device(&device("vcenter", "vm-1", "web-01", DeviceType::Vm, vm_meta), SEEN)?.id;
            let foreman_meta = json!({"foreman": {"hostname": "web-01", "fqdn": "web-01.dc1.example.net", "ip": "10.16.0.10", "memory_mb": 8192}});
            let twin = w.upsert_device(&device("foreman", "17", "web-01.dc1.example.net", DeviceType::Vm, foreman_meta), SEEN)?.id;
            w.upsert_device(&device("vcenter", "vm-2", "old-batch-07", DeviceType::Vm, json!({})), LONG_AGO)?;
            w.upsert_device(&device("vcenter", "vm-3", EVIL_NAME, DeviceType::Vm, json!({})), SEEN)?;
            for i in 0..30 {
                w.upsert_device(&device("vcenter", &format!("vm-1{i:02}"), &format!("app-{i:02}"), DeviceType::Vm, json!({})), SEEN)?;
            }
            let switch = w.upsert_device(&device("oxidized", "dc1-leaf-01", "dc1-leaf-01", DeviceType::NetworkDevice, json!({"oxidized": {"model": "eos"}})), SEEN)?.id;
            let array = w.upsert_device(&device("netapp", "cluster-1", "ontap-a", DeviceType::Storage, json!({})), SEEN)?.id;
            w.link(cluster, host, RelationshipType::Hosts, &json!({}), SEEN)?;
            w.link(host, vm, RelationshipType::Hosts, &json!({}), SEEN)?;
            w.link(vm, twin, RelationshipType::SameAs, &json!({}), SEEN)?;
            w.upsert_vm(
                vm,
                &VmRecord {
                    instance_uuid: Some("c9fd3305-3ddd-40ab-9720-72aa0e49494e".into()),
                    guest_os: Some("UBUNTU_64".into()),
                    cpu_count: Some(4),
                    memory_mb: Some(4096),
                    power_state: Some("POWERED_ON".into()),
                    tools_running: Some(true),
                    ip_addresses: json!(["10.16.0.10"]),
                    disks: json!([]),
                    snapshots: json!([
                        {"name": "before-patch", "description": "taken by change CHG01000", "id": 1, "created": "2026-11-01 08:00:00", "parent": null, "current": false},
                        {"name": "pre-upgrade", "description": "", "id": 2, "created": "2026-11-20 10:30:00", "parent": 1, "current": true},
                    ]),
                    total_disk_capacity_bytes: Some(42_949_672_960),
                    total_snapshot_size_bytes: Some(12_884_901_888),
                },
            )?;
            w.replace_interfaces(
                vm,
                &[InterfaceRecord {
                    interface_name: "Network adapter 1".into(),
                    mac_address: Some("00:50:56:10:00:00".into()),
                    ip_addresses: vec!["10.16.0.10".into()],
                    speed_mbps: None,
                    status: Some("up".into()),
                    interface_type: Some("vmxnet3".into()),
                    metadata: json!({}),
                }],
            )?;
            w.replace_facts(twin, &[("os::family".to_string(), "Debian".to_string())].into_iter().collect(), SEEN)?;
            w.store_config(switch, SWITCH_V1, "oxidized", "2026-10-05 04:00:00")?;
            w.store_config(switch, SWITCH_V2, "oxidized", "2026-11-28 05:00:00")?;
            w.upsert_volume(
                &VolumeRecord {
                    source_system: "netapp".into(),
                    source_identifier: "netapp-1".into(),
                    source_id: "vol-1".into(),
                    name: "vol_vmware_01".into(),
                    volume_type: Some("volume".into()),
                    capacity_bytes: Some(1_099_511_627_776),
                    used_bytes: Some(549_755_813_888),
                    storage_array: Some("ontap-a".into()),
                    raid_level: None,
                    thin_provisioned: Some(true),
                    metadata: json!({}),
                    device_id: Some(array),
                },
                SEEN,
            )?;
            w.upsert_kb_article(
                &KbArticleRecord {
                    source_id: "66001".into(),
                    space_key: Some("OPS".into()),
                    title: "How to restart the web service on web-01".into(),
                    body_text: Some("Scope\nApplies to web-01.dc1.example.net (10.16.0.10) on esx01.dc1.example.net.\nSteps\nssh to web-01\nsystemctl restart nginx\nsystemctl status nginx --no-pager\nPort Check\n443 curl -k https://10.16.0.10/health\nSee the nginx guide.".into()),
                    body_html: Some("<h2>Scope</h2><p>Applies to <code>web-01.dc1.example.net</code> (10.16.0.10) on esx01.dc1.example.net.</p><h2>Steps</h2><ol><li>ssh to web-01</li><li>restart:</li></ol><ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[systemctl restart nginx\nsystemctl status nginx --no-pager]]></ac:plain-text-body></ac:structured-macro><table><tr><th>Port</th><th>Check</th></tr><tr><td>443</td><td>curl -k https://10.16.0.10/health</td></tr></table><p>See <a href=\"https://nginx.org/en/docs/\">the nginx guide</a>.</p>".into()),
                    url: Some("https://wiki.example.net/display/OPS/66001".into()),
                    parent_id: None,
                    labels: vec!["web".into(), "service".into()],
                    created_at: Some("2026-09-01 08:00:00".into()),
                    last_updated: Some("2026-11-20 08:00:00".into()),
                },
                SEEN,
            )?;
            for (key, status, resolution) in [("OPS-7", "Resolved", Some("Fixed")), ("INC-12", "Open", None)] {
                w.upsert_issue(
                    &IssueRecord {
                        issue_key: key.into(),
                        project_key: Some(key.split('-').next().unwrap_or_default().into()),
                        issue_type: Some("Incident".into()),
                        summary: Some("Disk full on web-01".into()),
                        description: Some("/var on web-01.dc1.example.net at 98%.\nLog rotation failed after the patch run.".into()),
                        status: Some(status.into()),
                        resolution: resolution.map(Into::into),
                        assignee: Some("jdoe".into()),
                        reporter: Some("asmith".into()),
                        priority: Some("Major".into()),
                        labels: vec!["disk".into()],
                        comments: json!([{"author": "jdoe", "created": "2026-11-28 03:10:00", "body": "Looking into it."}, {"author": "asmith", "created": "2026-11-28 03:40:00", "body": "Rotated the logs on web-01, 61% now."}]),
                        created_at: Some("2026-11-28 03:00:00".into()),
                        updated_at: Some("2026-11-28 03:40:00".into()),
                        resolved_at: resolution.map(|_| "2026-11-28 03:40:00".into()),
                    },
                    SEEN,
                )?;
            }
            w.record_history(&NewHistory {
                sync_id: "vcenter-vcenter-1-20261128T055000.000Z",
                source_system: "vcenter",
                source_identifier: "vcenter-1",
                operation: "update",
                device_id: Some(vm),
                change_type: "device",
                old_value: json!({"status": "active", "metadata": {"vcenter": {"power_state": "POWERED_OFF"}}}),
                new_value: json!({"status": "active", "metadata": {"vcenter": {"power_state": "POWERED_ON"}}}),
                performed_by: "oncall",
                performed_at: SEEN,
                metadata: json!({}),
            })?;
            let owner = RunOwner { pid: 4242, host: "bastion" };
            w.begin_run("vcenter-vcenter-1-a", "vcenter", "vcenter-1", &owner, "2026-11-28 05:49:00", "2026-11-28 05:00:00")?;
            let done = RunProgress { phase: "done", done: 36, total: Some(36), message: None, added: 36, updated: 0, removed: 0 };
            w.finish_run("vcenter-vcenter-1-a", RunStatus::Success, None, &done, SEEN)?;
            w.record_sync_result(&RunSummary {
                source_system: "vcenter",
                source_identifier: "vcenter-1",
                started_at: "2026-11-28 05:49:00",
                finished_at: SEEN,
                status: RunStatus::Success,
                duration_seconds: 60.0,
                added: 36,
                updated: 0,
                removed: 0,
                error_message: None,
            })?;
            w.record_sync_result(&RunSummary {
                source_system: "foreman",
                source_identifier: "foreman-1",
                started_at: "2026-11-28 05:40:00",
                finished_at: "2026-11-28 05:41:00",
                status: RunStatus::Failed,
                duration_seconds: 2.5,
                added: 0,
                updated: 0,
                removed: 0,
                error_message: Some("foreman/foreman-1: GET https://foreman.example.com/api/v2/hosts?page=3: HTTP 500: internal error"),
            })?;
            w.begin_run("oxidized-oxidized-1-b", "oxidized", "oxidized-1", &owner, "2026-11-28 05:59:00", "2026-11-28 05:00:00")?;
            let running = RunProgress { phase: "fetch configs", done: 40, total: Some(100), message: None, added: 0, updated: 3, removed: 0 };
            w.run_progress("oxidized-oxidized-1-b", &running, "2026-11-28 05:59:20")?;
            w.create_batch(
                &NewBatch {
                    batch_id: "nb-20261128-0600",
                    netbox_url: "https://netbox.example.com",
                    planned_at: "2026-11-28 05:55:00",
                    planned_by: "oncall",
                    metadata: json!({}),
                },
                &[
                    NewApprovalItem {
                        device_id: Some(vm),
                        action: ApprovalAction::Update,
                        netbox_object_type: "virtualization.virtualmachine".into(),
                        netbox_object_id: Some(101),
                        proposed_changes: json!({"object": "web-01", "fields": {"vcpus": {"from": 2, "to": 4}, "memory": {"from": 2048, "to": 4096}}}),
                    },
                    NewApprovalItem {
                        device_id: Some(host),
                        action: ApprovalAction::Create,
                        netbox_object_type: "dcim.device".into(),
                        netbox_object_id: None,
                        proposed_changes: json!({"object": "esx01", "fields": {"name": {"from": null, "to": "esx01.dc1.example.net"}, "role": {"from": null, "to": "hypervisor"}}}),
                    },
                    NewApprovalItem {
                        device_id: None,
                        action: ApprovalAction::Delete,
                        netbox_object_type: "virtualization.virtualmachine".into(),
                        netbox_object_id: Some(77),
                        proposed_changes: json!({"object": "retired-app-01", "fields": {"name": {"from": "retired-app-01", "to": null}}}),
                    },
                ],
            )?;
            Ok(switch)
        })
        .and_then(|switch| {
            infradeck_core::machines::refresh(&mut store, &Default::default(), SEEN, "test")?;
            Ok(switch)
        })
        .unwrap()
}

fn env(color: bool, read_only: bool) -> Env {
    Env {
        database_label: "~/.local/share/infradeck/inventory.db".into(),
        identity: "oncall@bastion".into(),
        reviewer: "oncall".into(),
        read_only,
        theme: Theme { color },
        sources: Vec::new(),
        volatile_lines: infradeck_core::config::DashboardConfig::default().volatile_lines,
        stale_after: chrono::Duration::days(7),
        fixed_now: infradeck_core::time::parse(NOW),
        netbox_configured: true,
        environment: None,
        machine_rules: Default::default(),
        last_look: None,
        landing: infradeck_core::config::Landing::Devices,
        semantic_search: false,
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    app: App,
    terminal: Terminal<TestBackend>,
}

fn harness(width: u16, height: u16, color: bool) -> Harness {
    harness_with(width, height, color, |_| {})
}

/// The fixture plus what `more` writes.
fn harness_with(width: u16, height: u16, color: bool, more: impl FnOnce(&mut Store)) -> Harness {
    harness_env(width, height, env(color, false), more)
}

/// The fixture plus what `more` writes, in a dashboard with this environment.
fn harness_env(width: u16, height: u16, env: Env, more: impl FnOnce(&mut Store)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    fixture(&path);
    let mut store = Store::open(&path, &OpenOptions::default()).unwrap();
    more(&mut store);
    let app = App::new(store, env).unwrap();
    Harness {
        _dir: dir,
        app,
        terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
    }
}

impl Harness {
    /// Types `keys`: characters as themselves, `<Enter>`, `<Esc>`, `<Tab>`, `<Down>`, `<Up>`,
    /// `<Space>`, `<C-u>` as named.
    fn keys(&mut self, keys: &str) -> &mut Self {
        let mut rest = keys;
        while !rest.is_empty() {
            let (event, after) = if let Some(named) = rest.strip_prefix('<')
                && let Some((name, after)) = named.split_once('>')
            {
                let code = match name {
                    "Enter" => KeyCode::Enter,
                    "Esc" => KeyCode::Esc,
                    "Tab" => KeyCode::Tab,
                    "Down" => KeyCode::Down,
                    "Up" => KeyCode::Up,
                    "Left" => KeyCode::Left,
                    "Right" => KeyCode::Right,
                    "BS" => KeyCode::Backspace,
                    "A-Enter" => {
                        self.app
                            .on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
                        rest = after;
                        continue;
                    }
                    "Space" => KeyCode::Char(' '),
                    "C-u" => {
                        self.app
                            .on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
                        rest = after;
                        continue;
                    }
                    other => panic!("unknown key <{other}>"),
                };
                (KeyEvent::new(code, KeyModifiers::NONE), after)
            } else {
                let mut chars = rest.chars();
                let c = chars.next().unwrap();
                (
                    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
                    chars.as_str(),
                )
            };
            self.app.on_key(event);
            rest = after;
        }
        self
    }

    fn draw(&mut self) -> &ratatui::buffer::Buffer {
        self.terminal.draw(|f| self.app.draw(f)).unwrap();
        self.terminal.backend().buffer()
    }

    fn text(&mut self) -> String {
        let buffer = self.draw().clone();
        let area = buffer.area;
        let mut out = String::new();
        for y in 0..area.height {
            let mut line = String::new();
            for x in 0..area.width {
                line.push_str(buffer[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The first cell where `needle` starts on screen.
    fn find(&mut self, needle: &str) -> (u16, u16) {
        let text = self.text();
        for (y, line) in text.lines().enumerate() {
            if let Some((before, _)) = line.split_once(needle) {
                let x = unicode_width::UnicodeWidthStr::width(before);
                return (x as u16, y as u16);
            }
        }
        panic!("`{needle}` is not on screen:\n{text}");
    }

    fn cell(&mut self, at: (u16, u16)) -> ratatui::buffer::Cell {
        self.draw()[at].clone()
    }
}

/// Every view, reached with keys only, snapshotted at one size.
fn snapshot_every_view(width: u16, height: u16) {
    let size = format!("{width}x{height}");
    let mut h = harness(width, height, true);
    let snap = |h: &mut Harness, name: &str| {
        insta::assert_snapshot!(format!("{name}_{size}"), h.text());
    };
    snap(&mut h, "devices");
    h.keys("/web<Enter>");
    snap(&mut h, "devices_filtered");
    h.keys("<Enter>");
    snap(&mut h, "detail");
    h.keys("t");
    snap(&mut h, "tree");
    h.keys(":configs<Enter>");
    snap(&mut h, "configs");
    h.keys("<Enter>");
    snap(&mut h, "config_versions");
    h.keys("d");
    snap(&mut h, "diff");
    h.keys("v");
    snap(&mut h, "diff_toggled");
    h.keys(":sync<Enter>");
    snap(&mut h, "sync");
    h.keys(":netbox<Enter>");
    snap(&mut h, "netbox");
    h.keys("<Enter>");
    snap(&mut h, "netbox_items");
    h.keys("r");
    snap(&mut h, "netbox_reject");
    h.keys("<Esc>:history<Enter>");
    snap(&mut h, "history");
    h.keys(":changes<Enter>");
    snap(&mut h, "changes");
    h.keys(":at 7d<Enter>");
    snap(&mut h, "at");
    h.keys(":search<Enter>web<Enter>");
    snap(&mut h, "search");
    h.keys(":search<Enter>restart nginx<Enter><Enter>");
    snap(&mut h, "reader");
    h.keys("?");
    snap(&mut h, "help");
}

#[test]
fn every_view_at_80x24() {
    snapshot_every_view(80, 24);
}

#[test]
fn every_view_at_160x48() {
    snapshot_every_view(160, 48);
}

#[test]
fn colours_carry_meaning_and_no_color_keeps_it_in_modifiers() {
    let mut h = harness(100, 30, true);
    h.keys("/!app<Enter>");
    let stale = h.find("old-batch-07");
    let cell = h.cell(stale);
    assert_eq!(
        cell.fg,
        Color::DarkGray,
        "a device not seen for weeks is dimmed"
    );
    let fresh = h.find("ontap-a");
    assert_ne!(h.cell(fresh).fg, Color::DarkGray);

    h.keys(":configs<Enter><Enter>d");
    let added = h.find("+vlan 302");
    assert_eq!(h.cell(added).fg, Color::Green, "added lines are green");
    let removed = h.find("- shutdown");
    assert_eq!(h.cell(removed).fg, Color::Red, "removed lines are red");
    let word = h.find("C07");
    assert_eq!(
        h.cell(word).bg,
        Color::Green,
        "the changed word is highlighted"
    );

    let mut mono = harness(100, 30, false);
    let text = mono.text();
    insta::assert_snapshot!("devices_no_color_100x30", text);
    let buffer = mono.draw().clone();
    for cell in buffer.content() {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "NO_COLOR draws no colour at all"
        );
    }
    let selected = mono.find("app-00");
    assert!(
        mono.cell(selected).modifier.contains(Modifier::REVERSED),
        "selection is reversed"
    );
    mono.keys("/!app<Enter>");
    let stale = mono.find("old-batch-07");
    assert!(
        mono.cell(stale).modifier.contains(Modifier::DIM),
        "stale rows are dim"
    );
    mono.keys(":configs<Enter><Enter>d");
    let added = mono.find("+vlan 302");
    assert!(mono.cell(added).modifier.contains(Modifier::BOLD));
    let removed = mono.find("- shutdown");
    assert!(mono.cell(removed).modifier.contains(Modifier::CROSSED_OUT));
}

#[test]
fn a_hostile_device_name_is_shown_as_placeholders() {
    let mut h = harness(120, 30, true);
    h.keys("/evil<Enter>");
    let text = h.text();
    assert!(text.contains("evil␛[2J␛]0;owned␇⟨U+202E⟩name␍X"), "{text}");
    let buffer = h.draw().clone();
    for cell in buffer.content() {
        assert!(
            !cell
                .symbol()
                .chars()
                .any(|c| c.is_control() || c == '\u{202e}'),
            "a control character reached the terminal buffer: {:?}",
            cell.symbol()
        );
    }
    h.keys("<Enter>");
    assert!(h.text().contains("evil␛[2J"));
    // The clipboard gets the value without anything that could act on a terminal or a shell
    // it is pasted into: no escape, no bidi override, no line break.
    h.keys("y");
    let effects = h.app.take_effects();
    let [Effect::Copy(copied)] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert!(
        !copied.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{copied:?}"
    );
    assert!(
        copied.starts_with("evil") && !copied.ends_with('\n'),
        "{copied:?}"
    );
}

#[test]
fn one_row_per_machine_with_health_sorts_and_a_records_toggle() {
    let mut h = harness(140, 50, true);
    let text = h.text();
    // web-01 (vCenter) and web-01.dc1.example.net (Foreman) are one machine, named by vCenter.
    assert!(text.contains("1 of 37 machines"), "{text}");
    assert!(!text.contains("web-01.dc1.example.net"), "{text}");
    let row = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row(&text, "web-01").contains("foreman,vcenter"), "{text}");
    assert!(row(&text, "esx01").contains("crit"), "{text}");
    assert!(row(&text, "esx01").contains("is NOT_RESPOND"), "{text}");

    h.keys("/health:crit<Enter>");
    let text = h.text();
    assert!(
        text.contains("1 of 1 machines") && row(&text, "esx01").contains("not responding"),
        "{text}"
    );
    h.keys("/<C-u>helth:crit<Enter>");
    let text = h.text();
    assert!(
        text.contains("no machines match") && text.contains("unknown filter key `helth`"),
        "{text}"
    );
    h.keys("<Esc>");

    // Shift+H: worst first; again: reversed.
    h.keys("H");
    let text = h.text();
    assert!(text.contains("sorted by health"), "{text}");
    let first = text
        .lines()
        .skip_while(|l| !l.contains("NAME"))
        .nth(1)
        .unwrap_or_default();
    assert!(first.contains("esx01"), "crit sorts first: {text}");

    // R: the raw records, both of web-01's, each with its source.
    h.keys("R");
    let text = h.text();
    assert!(text.contains("1 of 38 records"), "{text}");
    assert!(
        row(&text, "web-01.dc1.example.net").contains("foreman/foreman-1"),
        "{text}"
    );
    assert_eq!(h.app.breadcrumb(), ["devices (records)"]);
    h.keys("R");
    assert!(h.text().contains("of 37 machines"));
}

#[test]
fn filter_syntax_narrows_and_esc_walks_back() {
    let mut h = harness(100, 30, true);
    assert!(h.text().contains("1 of 37 machines"));
    h.keys("/type:server<Enter>");
    assert!(h.text().contains("1 of 1"));
    h.keys("/<C-u>!app<Enter>");
    assert!(h.text().contains("1 of 7"), "{}", h.text());
    h.keys("<Esc>");
    assert!(h.text().contains("1 of 37"), "Esc clears the filter first");
    h.keys("/web<Enter><Enter>");
    assert_eq!(h.app.breadcrumb(), ["devices", "web-01"]);
    // Follow the VM to its host through the detail's relationship links: walk the cursor down
    // the document and press Enter on each line until one is the `runs on` link.
    assert!(
        h.text().contains("runs on") || {
            h.keys("<Tab><Tab><Tab><Tab>");
            h.text().contains("runs on")
        }
    );
    h.keys("g");
    let mut followed = false;
    for _ in 0..60 {
        h.keys("<Enter>");
        match h.app.breadcrumb().last().map(String::as_str) {
            Some("esx01.dc1.example.net") => {
                followed = true;
                break;
            }
            // Another link (the machine's Foreman record): back, and on down the document.
            Some("web-01") => {}
            _ => {
                h.keys("<Esc>");
            }
        }
        h.keys("<Down>");
    }
    assert!(
        followed,
        "Enter on the `runs on` line opens the host: {:?}",
        h.app.breadcrumb()
    );
    h.keys("<Esc><Esc>");
    assert_eq!(h.app.breadcrumb(), ["devices"]);
}

#[test]
fn reviews_are_recorded_with_reviewer_and_reason_and_read_only_hides_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    fixture(&path);
    let store = Store::open(&path, &OpenOptions::default()).unwrap();
    let mut app = App::new(store, env(true, false)).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    for key in ":netbox".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE));
    }
    let press = |app: &mut App, code: KeyCode| {
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    };
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('a'));
    // Grouped by kind: the VMs' update and delete, then the device's create.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('r'));
    press(&mut app, KeyCode::Enter); // an empty reason is refused
    for key in "role is wrong".chars() {
        press(&mut app, KeyCode::Char(key));
    }
    press(&mut app, KeyCode::Enter);
    terminal.draw(|f| app.draw(f)).unwrap();

    let check = Store::open(&path, &OpenOptions::default()).unwrap();
    let items = check.batch_items("nb-20261128-0600").unwrap();
    assert_eq!(items[0].approval_status, ApprovalStatus::Approved);
    assert_eq!(items[0].approved_by.as_deref(), Some("oncall"));
    assert_eq!(items[1].approval_status, ApprovalStatus::Rejected);
    assert_eq!(items[1].review_comment.as_deref(), Some("role is wrong"));
    assert_eq!(items[2].approval_status, ApprovalStatus::Pending);

    // The batch-level apply asks first, with Cancel focused: Enter cancels.
    press(&mut app, KeyCode::Char('P'));
    press(&mut app, KeyCode::Enter);
    assert!(
        app.take_effects().is_empty(),
        "Enter on the focused Cancel does nothing"
    );
    // Only an update is approved (the create was rejected, the delete is pending): nothing
    // deleted will be sent, so Yes is enough.
    press(&mut app, KeyCode::Char('P'));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.take_effects(),
        vec![Effect::Apply {
            batch_id: "nb-20261128-0600".into()
        }]
    );
    // With the delete approved (the row above the device), Yes needs the batch id typed.
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Char('P'));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    assert!(
        app.take_effects().is_empty(),
        "Yes without the typed id is refused"
    );
    for key in "nb-20261128-0600".chars() {
        press(&mut app, KeyCode::Char(key));
    }
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.take_effects(),
        vec![Effect::Apply {
            batch_id: "nb-20261128-0600".into()
        }]
    );

    let before_read_only: Vec<ApprovalStatus> = check
        .batch_items("nb-20261128-0600")
        .unwrap()
        .iter()
        .map(|i| i.approval_status)
        .collect();
    let store = Store::open(&path, &OpenOptions::default()).unwrap();
    let mut read_only = App::new(store, env(true, true)).unwrap();
    for key in ":netbox".chars() {
        read_only.on_key(KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE));
    }
    press(&mut read_only, KeyCode::Enter);
    press(&mut read_only, KeyCode::Enter);
    let footer = |terminal: &Terminal<TestBackend>| -> String {
        let buffer = terminal.backend().buffer();
        (0..buffer.area.width)
            .map(|x| buffer[(x, buffer.area.height - 1)].symbol().to_string())
            .collect()
    };
    terminal.draw(|f| read_only.draw(f)).unwrap();
    let hints = footer(&terminal);
    assert!(!hints.contains("approve"), "no write is hinted: {hints}");
    // Pressing a write key anyway says why nothing happens.
    press(&mut read_only, KeyCode::Char('a'));
    terminal.draw(|f| read_only.draw(f)).unwrap();
    let refusal = footer(&terminal);
    assert!(
        refusal.contains("not available: read-only mode"),
        "{refusal}"
    );
    assert!(
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect::<String>()
            .contains("read-only")
    );
    let after: Vec<ApprovalStatus> = check
        .batch_items("nb-20261128-0600")
        .unwrap()
        .iter()
        .map(|i| i.approval_status)
        .collect();
    assert_eq!(after, before_read_only, "read-only wrote nothing");
}

#[test]
fn the_tree_shows_clusters_and_arrays_and_an_array_opens_onto_its_volumes() {
    let mut h = harness(100, 30, true);
    h.keys(":tree all<Enter>");
    let text = h.text();
    assert!(
        text.contains("▸ dc1-prod") && text.contains("▸ ontap-a"),
        "{text}"
    );
    h.keys("G<Space>");
    let text = h.text();
    assert!(text.contains("▾ ontap-a"), "{text}");
    assert!(
        text.contains("volume ▸ vol_vmware_01") && text.contains("1.0 TiB"),
        "{text}"
    );
    h.keys("<Down>y");
    assert_eq!(
        h.app.take_effects(),
        vec![Effect::Copy("vol_vmware_01".into())]
    );
    h.keys("<Left><Left>");
    assert!(!h.text().contains("vol_vmware_01"), "collapsed again");
    // The cluster opens onto its host, which opens onto its VM.
    h.keys("g<Space><Down><Space>");
    let text = h.text();
    assert!(
        text.contains("hosts ▸ esx01.dc1.example.net") && text.contains("hosts ▸ web-01"),
        "{text}"
    );
}

#[test]
fn the_tree_walks_from_a_vm_up_to_its_host_and_the_switch_ports_the_host_is_cabled_to() {
    let mut h = harness_with(120, 30, false, |store| {
        let id = |store: &Store, source: &str, key: &str| {
            store
                .device_by_source_key(source, &format!("{source}-1"), key)
                .unwrap()
                .unwrap()
                .id
        };
        let (host, switch) = (
            id(store, "vcenter", "host-1"),
            id(store, "oxidized", "dc1-leaf-01"),
        );
        store
            .write(|w| {
                let cables = json!({"cables": [
                    {"host_nic": "vmnic0", "switch_port": "Ethernet1", "protocol": "lldp"},
                    {"host_nic": "vmnic1", "switch_port": "Ethernet2\u{1b}[31m", "protocol": "lldp"},
                ]});
                w.link(host, switch, RelationshipType::ConnectsTo, &cables, SEEN)?;
                Ok(())
            })
            .unwrap();
    });
    h.keys("/web-01<Enter><Enter>t");
    let text = h.text();
    assert!(text.contains("what it depends on"), "{text}");
    assert!(
        text.contains("◂ hosts esx01.dc1.example.net"),
        "the VM's host: {text}"
    );
    assert!(
        text.contains("◂ connects_to vmnic0→Ethernet1, vmnic1→Ethernet2␛[31m dc1-leaf-01"),
        "the host's switch and the ports, sanitized: {text}"
    );
}

#[test]
fn a_hostile_reviewer_name_and_comment_are_shown_as_placeholders() {
    let mut h = harness_with(160, 40, false, |store| {
        store
            .write(|w| {
                w.review_items(
                    "nb-20261128-0600",
                    &[],
                    &infradeck_core::store::Review {
                        from: ApprovalStatus::Pending,
                        to: ApprovalStatus::Rejected,
                        reviewer: "mallory\x1b]0;owned\x07",
                        comment: Some("no\x1b[2J way\u{202e}"),
                        at: SEEN,
                    },
                )
                .map(|_| ())
            })
            .unwrap();
    });
    // The batch's items, the first one's proposed change below them.
    h.keys(":netbox<Enter><Enter>");
    let text = h.text();
    assert!(
        text.contains("by mallory␛]0;owned␇: no␛[2J way⟨U+202E⟩"),
        "the selected item's review: {text}"
    );
    assert!(
        text.contains("mallory␛]0;ow"),
        "the REVIEWER column: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no raw escape reached the screen: {text:?}"
    );
}

/// The footer's hints as keys the harness types: `<Space/→>expand` → `<Space>`, `<t>tree` → `t`.
fn footer_keys(screen: &str) -> Vec<String> {
    let footer = screen
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let mut keys = Vec::new();
    let mut rest = footer;
    while let Some((_, open)) = rest.split_once('<') {
        let Some((label, after)) = open.split_once('>') else {
            break;
        };
        rest = after;
        let first = if label == "/" {
            label
        } else {
            label.split('/').next().unwrap_or(label)
        };
        keys.push(match first {
            "Space" | "Enter" | "Esc" | "Tab" | "Down" | "Up" | "Left" | "A-Enter" | "BS" => {
                format!("<{first}>")
            }
            "↓" => "<Down>".to_string(),
            "↑" => "<Up>".to_string(),
            "Tab/←→" => "<Tab>".to_string(),
            other => other.to_string(),
        });
    }
    keys
}

#[test]
fn every_hint_in_every_footer_does_something_when_pressed() {
    // Every view of the snapshot walk, each reached afresh.
    let views = [
        "",
        "/web<Enter>",
        "/web<Enter><Enter>",
        "/web<Enter><Enter>t",
        ":configs<Enter>",
        ":configs<Enter><Enter>",
        ":configs<Enter><Enter>d",
        ":sync<Enter>",
        ":netbox<Enter>",
        ":netbox<Enter><Enter>",
        ":history<Enter>",
        ":changes<Enter>",
        ":changes<Enter>/kind:appeared<Enter>",
        ":at 7d<Enter>",
        ":search<Enter>/web<Enter>",
        // The modes over the views: their footers hint their own keys.
        "?",
        ":",
        ":de",
        "/",
        "/web",
        ":sync<Enter><Enter>",
        ":netbox<Enter><Enter>r",
        ":netbox<Enter><Enter>rwrong",
    ];
    let mut dead = Vec::new();
    let mut pressed = 0;
    for path in views {
        let mut h = harness(160, 48, false);
        h.keys(path);
        let keys = footer_keys(&h.text());
        assert!(!keys.is_empty(), "no hints after {path:?}");
        for key in keys {
            let mut h = harness(160, 48, false);
            h.keys(path);
            // The whole buffer, styles included: a moved cursor or a mark changes only styles.
            let before = h.draw().clone();
            h.keys(&key);
            let after = h.draw().clone();
            let effects = h.app.take_effects();
            pressed += 1;
            if h.text().contains("not available:") {
                dead.push(format!("{path:?} then {key}: refused although hinted"));
            } else if after == before && effects.is_empty() && !h.app.quit {
                dead.push(format!("{path:?} then {key}: nothing happened"));
            }
        }
    }
    assert!(pressed > 60, "{pressed} keys pressed");
    assert!(dead.is_empty(), "hints that lie:\n{}", dead.join("\n"));
}

/// The reader: search opens a runbook whole; Tab walks the machines it mentions and its links
/// in order; Enter follows a machine to its detail; on the link, Enter and `o` ask to open its
/// URL; `/` finds text inside; a ticket shows its fields and every comment.
#[test]
fn the_reader_follows_the_machines_a_page_mentions_and_opens_its_links() {
    let mut h = harness(120, 40, false);
    h.keys(":search<Enter>restart nginx<Enter><Enter>");
    let page = h.text();
    assert!(
        page.contains("How to restart the web service on web-01"),
        "{page}"
    );
    assert!(
        page.contains("    systemctl restart nginx"),
        "code keeps its lines: {page}"
    );
    assert!(
        page.contains("[1] the nginx guide  https://nginx.org/en/docs/"),
        "{page}"
    );
    // The first thing Tab selects is the first machine named: web-01.dc1.example.net.
    h.keys("<Tab>");
    let (x, y) = h.find("web-01.dc1.example.net (10.16.0.10)");
    assert!(
        h.cell((x, y)).modifier.contains(Modifier::REVERSED) || h.cell((x, y)).bg != Color::Reset,
        "the selected mention is highlighted"
    );
    h.keys("<Enter>");
    let detail = h.text();
    assert!(detail.contains("web-01"), "{detail}");
    assert!(detail.contains("runbooks and tickets"), "{detail}");
    h.keys("<Esc>");
    // Back in the page: Tab on to the link list's entry, Enter asks to open it.
    for _ in 0..8 {
        h.keys("<Tab>");
        h.app.take_effects();
        h.keys("y");
        let effects = h.app.take_effects();
        if matches!(&effects[..], [Effect::Copy(url)] if url == "https://nginx.org/en/docs/") {
            break;
        }
    }
    h.keys("<Enter>");
    assert!(
        matches!(&h.app.take_effects()[..], [Effect::OpenUrl(url)] if url == "https://nginx.org/en/docs/"),
        "Enter on a link opens it"
    );
    h.keys("/status nginx<Enter>n");
    assert!(h.text().contains("status nginx"));

    // A ticket from the device's section: open tickets before resolved ones.
    h.keys(":search<Enter>web-01<Enter>");
    let hits = h.text();
    let (open, resolved) = (hits.find("INC-12").unwrap(), hits.find("OPS-7").unwrap());
    assert!(open < resolved, "the open ticket first: {hits}");
    h.keys(":search<Enter>INC-12<Enter><Enter>");
    let ticket = h.text();
    for wanted in [
        "status     Open",
        "Description",
        "Comments · 2",
        "Rotated the logs on web-01",
    ] {
        assert!(ticket.contains(wanted), "`{wanted}` in {ticket}");
    }
}

/// History reads in names: a relationship as `parent kind child`; Enter opens one change whole
/// with old and new side by side, and from there Enter opens the device.
#[test]
fn history_names_the_devices_and_an_entry_opens_old_and_new_side_by_side() {
    let mut h = harness_with(120, 40, false, |store| {
        let host = store.devices_named("esx01.dc1.example.net").unwrap()[0].id;
        let vm = store.devices_named("web-01").unwrap()[0].id;
        store
            .write(|w| {
                w.record_history(&NewHistory {
                    sync_id: "vcenter-vcenter-1-20261128T055500.000Z",
                    source_system: "vcenter",
                    source_identifier: "vcenter-1",
                    operation: "delete",
                    device_id: Some(vm),
                    change_type: "relationship",
                    old_value: json!({"child_device_id": vm, "parent_device_id": host, "relationship_type": "hosts"}),
                    new_value: serde_json::Value::Null,
                    performed_by: "oncall",
                    performed_at: "2026-11-28 05:56:00",
                    metadata: json!({}),
                })?;
                Ok(())
            })
            .unwrap();
    });
    h.keys(":history<Enter>");
    let text = h.text();
    assert!(
        text.contains("removed: esx01.dc1.example.net hosts web-01"),
        "{text}"
    );
    assert!(!text.contains("child_device_id"), "{text}");
    h.keys("/power<Enter><Enter>");
    let entry = h.text();
    assert!(entry.contains("FIELD"), "{entry}");
    let row = entry
        .lines()
        .find(|l| l.contains("vcenter.power_state"))
        .unwrap_or_else(|| panic!("{entry}"));
    assert!(
        row.contains("POWERED_OFF") && row.contains("POWERED_ON"),
        "old and new on one row: {row}"
    );
    h.keys("<Enter>");
    assert!(h.text().contains("web-01"), "Enter opens the device");
}

/// At 80×24 with eight sources the header is two lines: the sources fold into counts per state
/// with the worst by name, and the view starts on the third line. Wide, they are listed.
#[test]
fn the_header_takes_two_lines_and_folds_many_sources() {
    let more = |store: &mut Store| {
        store
            .write(|w| {
                for system in ["puppetdb", "netapp", "dorado", "confluence", "jira"] {
                    w.record_sync_result(&RunSummary {
                        source_system: system,
                        source_identifier: &format!("{system}-1"),
                        started_at: "2026-11-28 05:49:00",
                        finished_at: SEEN,
                        status: RunStatus::Success,
                        duration_seconds: 3.0,
                        added: 1,
                        updated: 0,
                        removed: 0,
                        error_message: None,
                    })?;
                }
                Ok(())
            })
            .unwrap();
    };
    let mut narrow = harness_with(80, 24, false, more);
    let text = narrow.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].contains("8 sources") && lines[1].contains("foreman-1 ✗failed"),
        "{text}"
    );
    assert!(lines[0].contains("37 machines"), "{text}");
    assert!(
        lines[2].starts_with(" devices"),
        "the view starts on line 3: {text}"
    );
    let mut wide = harness_with(200, 40, false, more);
    let text = wide.text();
    assert!(text.lines().nth(1).unwrap().contains("jira-1 ✓"), "{text}");
}

/// The item list filters with `/`; the dialogs count exactly what will be sent, and with
/// nothing to send there is no dialog.
#[test]
fn a_batch_groups_its_items_by_kind_with_counts_and_k_shows_one_kind_at_a_time() {
    let mut h = harness(100, 30, false);
    h.keys(":netbox<Enter><Enter>");
    let text = h.text();
    assert!(
        text.contains(" all 3   virtualmachine 2   device 1"),
        "the kinds line: {text}"
    );
    // Grouped: both VM items, then the device; numbered as `netbox review` numbers them.
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("pending")).collect();
    let order: Vec<&str> = rows
        .iter()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('#')))
        .collect();
    assert_eq!(order, ["#1", "#3", "#2"], "{text}");
    h.keys("K");
    let text = h.text();
    assert!(text.contains("update") && text.contains("delete"), "{text}");
    assert!(!text.contains("dcim.device "), "only the VMs: {text}");
    h.keys("K");
    let text = h.text();
    assert!(text.contains("dcim.device"), "{text}");
    assert!(
        !text.contains("virtualization.virtualmachine "),
        "only the device: {text}"
    );
    // What `a` approves is what is shown.
    h.keys("a");
    h.keys("K");
    let text = h.text();
    assert!(
        text.contains("virtualization.virtualmachine"),
        "all again: {text}"
    );
    let approved: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  #") && l.contains(" approved"))
        .collect();
    assert_eq!(approved.len(), 1, "{text}");
    assert!(approved[0].contains("#2"), "{text}");
}

#[test]
fn the_netbox_item_list_filters_and_its_dialogs_count_what_will_be_sent() {
    let mut h = harness(100, 30, false);
    h.keys(":netbox<Enter><Enter>");
    h.keys("/action:delete<Enter>");
    let text = h.text();
    assert!(text.contains("showing 1 of 3"), "{text}");
    assert!(
        text.contains("delete") && !text.contains(" update "),
        "{text}"
    );
    h.keys("<Esc>");
    h.keys("/esx01<Enter>");
    let text = h.text();
    assert!(
        text.contains("esx01.dc1.example.net") && !text.contains("web-01  "),
        "{text}"
    );
    h.keys("<Esc>");
    // Nothing approved: apply says so instead of asking.
    h.keys("P");
    assert!(h.text().contains("nothing to apply"), "{}", h.text());
    assert!(h.app.take_effects().is_empty());
    // Reject the create (the device: grouped after the VMs); approving the batch then counts
    // the two pending items only.
    h.keys("<Down><Down>r");
    h.keys("not ours<Enter>");
    h.keys("A");
    let dialog = h.text();
    assert!(dialog.contains("approve all 2 pending items"), "{dialog}");
    assert!(
        dialog.contains("0 creates · 1 update · 1 delete"),
        "{dialog}"
    );
    h.keys("<Tab><Enter>");
    // Apply sends the update and the delete: the id is asked for, shown whole on its own line.
    h.keys("P");
    let dialog = h.text();
    assert!(dialog.contains("write the 2 approved items"), "{dialog}");
    assert!(dialog.contains("  nb-20261128-0600"), "{dialog}");
}

#[test]
fn an_unavailable_key_says_why_and_read_only_refuses_writes_aloud() {
    let mut h = harness(160, 48, false);
    // The NetBox batch list: items are reviewed inside a batch.
    h.keys(":netbox<Enter>");
    let footer = h.text();
    assert!(!footer.contains("<a>approve"), "{footer}");
    h.keys("a");
    assert!(
        h.text()
            .contains("not available: items are reviewed inside a batch: Enter opens it"),
        "{}",
        h.text()
    );
    // The device detail has no filter.
    let mut h = harness(160, 48, false);
    h.keys("/web<Enter><Enter>");
    assert!(!h.text().contains("</>filter"));
    h.keys("/");
    assert!(h.text().contains("not available: this view has no filter"));

    // A line editor's keys are judged too: nothing to clear on an empty command line.
    let mut h = harness(160, 48, false);
    h.keys(":<C-u>");
    assert!(
        h.text().contains("not available: the line is empty"),
        "{}",
        h.text()
    );
    // Backspace on an empty line leaves it, as in vim.
    h.keys("<BS>");
    assert!(
        !h.text().contains("<Enter>run"),
        "the command line is closed:\n{}",
        h.text()
    );
    h.keys(":de<BS><BS>");
    assert!(!h.text().contains("<Tab>complete"), "{}", h.text());

    // Read-only: the write keys are not hinted, and pressing one says why.
    let mut h = harness_env(160, 48, env(false, true), |_| {});
    h.keys(":sync<Enter>S");
    let text = h.text();
    assert!(text.contains("not available: read-only mode"), "{text}");
    assert!(h.app.take_effects().is_empty(), "nothing started");
}

#[test]
fn ctrl_c_quits_from_every_mode_and_q_is_typed_where_text_is_taken() {
    for path in [
        "",
        "?",
        ":",
        "/",
        ":netbox<Enter><Enter>r",
        ":sync<Enter><Enter>",
    ] {
        let mut h = harness(160, 48, false);
        h.keys(path);
        h.app
            .on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(h.app.quit, "Ctrl-C after {path:?} quits");
    }
    // In the command line and the filter line, `q` is a letter, not a way out.
    for path in [":", "/"] {
        let mut h = harness(160, 48, false);
        h.keys(path);
        h.keys("q");
        assert!(!h.app.quit, "q after {path:?} is typed");
        assert!(h.text().contains(&format!("{}q", path)), "{}", h.text());
    }
}

/// With the mouse on: a click selects the row under it (in a list of machines and in search
/// hits, which take two lines each), a double click opens it, a click on a view in the trail
/// goes back to it, the wheel moves, and a click in a dialog does nothing.
#[test]
fn a_click_selects_a_double_click_opens_and_the_trail_goes_back() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    use std::time::{Duration, Instant};
    let mut h = harness(120, 48, false);
    let click = |h: &mut Harness, (column, row): (u16, u16), at: Instant| {
        h.app.on_mouse(
            MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column,
                row,
                modifiers: KeyModifiers::NONE,
            },
            at,
        );
    };
    let selected_line = |h: &mut Harness| {
        let buffer = h.draw().clone();
        (0..buffer.area.height)
            .find(|&y| buffer[(1, y)].modifier.contains(Modifier::REVERSED))
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
    };
    let start = Instant::now();
    let web = h.find("web-01");
    let first = selected_line(&mut h).expect("a row is selected");
    assert!(
        !first.contains("web-01"),
        "web-01 is not the first row: {first}"
    );
    click(&mut h, web, start);
    let now = selected_line(&mut h).expect("a row is selected");
    assert!(now.contains("web-01"), "the click selected web-01: {now}");
    assert_eq!(h.app.breadcrumb().len(), 1, "one click only selects");
    // Two clicks far apart in time are two single clicks.
    click(&mut h, web, start + Duration::from_secs(2));
    assert_eq!(h.app.breadcrumb().len(), 1);
    click(&mut h, web, start + Duration::from_millis(2200));
    assert_eq!(
        h.app.breadcrumb().len(),
        2,
        "a double click opens the machine"
    );
    assert!(h.text().contains("web-01"));
    // The first view in the trail (drawn on the body's top border, after the header).
    let (x, y) = h.find("devices");
    assert_eq!(y, 2, "the trail is on the line under the two-line header");
    click(&mut h, (x + 1, y), start + Duration::from_secs(5));
    assert_eq!(h.app.breadcrumb().len(), 1, "the trail goes back");
    // The wheel moves the selection (up: web-01 sorts near the end).
    let before = selected_line(&mut h);
    h.app.on_mouse(
        MouseEvent {
            kind: MouseEventKind::ScrollUp,
            column: 10,
            row: 10,
            modifiers: KeyModifiers::NONE,
        },
        start + Duration::from_secs(6),
    );
    assert_ne!(selected_line(&mut h), before, "the wheel moved");
    // Search hits take two lines: a click on a snippet line selects its hit.
    h.keys(":search restart<Enter>");
    let text = h.text();
    let (_, title_row) = h.find("How to restart the web service");
    assert!(text.contains("restart"), "{text}");
    click(&mut h, (20, title_row + 1), start + Duration::from_secs(8));
    let line = selected_line(&mut h).unwrap_or_default();
    assert!(
        line.contains("How to restart the web service"),
        "{line}\n{text}"
    );
    // A dialog takes no clicks: the help screen stays and nothing under it moves.
    h.keys("?");
    click(&mut h, (20, 5), start + Duration::from_secs(10));
    assert!(h.text().contains("Esc"), "the help screen is still open");
}

/// With `[embeddings]` configured, search asks the service for hybrid ranking once per query,
/// shows the full-text hits meanwhile, shows the answer for the query still typed (and drops
/// one for an older keystroke), and keeps it when the database changes.
#[test]
fn search_asks_the_service_for_hybrid_ranking_and_shows_only_the_current_answer() {
    use infradeck_core::app::SearchAnswer;
    let mut env = env(false, false);
    env.semantic_search = true;
    let mut h = harness_env(120, 40, env, |_| {});
    h.keys(":search restart<Enter>");
    let asked: Vec<Effect> = h.app.take_effects();
    assert_eq!(
        asked,
        vec![Effect::Search {
            query: "restart".into(),
            limit: 200
        }]
    );
    let text = h.text();
    assert!(
        text.contains("How to restart the web service"),
        "full text meanwhile:\n{text}"
    );
    // The semantic answer puts a ticket first.
    let mut hits = Store::open(&h._dir.path().join("inventory.db"), &OpenOptions::default())
        .unwrap()
        .search("OPS-7", &[], 10)
        .unwrap()
        .into_iter()
        .filter(|hit| hit.kind == HitKind::Issue)
        .collect::<Vec<_>>();
    assert!(!hits.is_empty());
    hits.truncate(1);
    let answer = SearchAnswer {
        hits: hits.clone(),
        notice: None,
    };
    assert!(
        !h.app.search_answer("resta", Ok(answer.clone())),
        "an answer to an older query is dropped"
    );
    assert!(h.app.search_answer("restart", Ok(answer)));
    let text = h.text();
    assert!(text.contains("search (hybrid)"), "{text}");
    assert!(text.contains(&hits[0].title), "{text}");
    assert!(!text.contains("How to restart the web service"), "{text}");
    // Moving does not ask again; a new query does.
    h.keys("<Down>");
    assert!(h.app.take_effects().is_empty());
    h.keys("/ web<Enter>");
    assert!(
        h.app.take_effects().iter().any(|e| *e
            == Effect::Search {
                query: "restart web".into(),
                limit: 200
            }),
        "a new query is asked for"
    );
    // A failure says so and the full-text hits stay.
    assert!(
        h.app
            .search_answer("restart web", Err("connection refused".into()))
    );
    assert!(h.text().contains("semantic search failed"));
}
