//! One audit row → what it means to a person: zero or more findings, each of one kind, about
//! one subject (a machine, or a volume or NetBox batch that is not one).
//!
//! The rules keep noise out: facts churn, `last_seen`-like bumps, the `fqdn` and addresses a
//! VM's guest tools report or stop reporting, the hosts links a move or a new VM also shows,
//! and a volume's usage creeping within a band never read as a change.

use super::{ChangeKind, ConfigChange, Subject};
use crate::machines::HealthRules;
use crate::model::DeviceType;
use crate::store::{AuditRow, RecordLabel};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// What one row says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Finding {
    pub kind: ChangeKind,
    pub subject: Subject,
    pub detail: String,
    pub config: Option<ConfigChange>,
}

/// Everything classification reads besides the row.
pub(super) struct Context<'a> {
    pub labels: &'a HashMap<i64, RecordLabel>,
    pub health: &'a HealthRules,
}

/// The record ids a row names besides its own (the other end of a relationship), so the
/// caller can look their names up once for all rows.
pub(super) fn referenced_records(row: &AuditRow) -> Vec<i64> {
    if row.change_type != "relationship" {
        return Vec::new();
    }
    let link = link_of(row);
    ["parent_device_id", "child_device_id"]
        .iter()
        .filter_map(|k| link[*k].as_i64())
        .collect()
}

pub(super) fn classify(row: &AuditRow, cx: &Context<'_>) -> Vec<Finding> {
    let subject = record_subject(row);
    let source = row.source_system.as_str();
    let finding = |kind, detail: String| Finding {
        kind,
        subject: subject.clone(),
        detail,
        config: None,
    };
    match (row.change_type.as_str(), row.operation.as_str()) {
        ("device", "add") => vec![finding(ChangeKind::Appeared, format!("new in {source}"))],
        ("device", "delete") => vec![finding(ChangeKind::Gone, format!("removed from {source}"))],
        ("device", _) => device_update(row, &subject),
        ("status", _) => match row.new["status"].as_str() {
            Some("inactive") => vec![finding(
                ChangeKind::Gone,
                format!("{source} stopped reporting it"),
            )],
            Some("active") if row.old["status"].as_str() != Some("active") => {
                vec![finding(ChangeKind::Appeared, format!("back in {source}"))]
            }
            _ => Vec::new(),
        },
        ("vm", "update") => vm_update(row, &subject),
        ("interfaces", "update") => interfaces_update(row, &subject),
        ("config", "add") => config_added(row, &subject),
        ("relationship", _) => relationship(row, cx),
        ("volume", _) => volume(row, cx),
        ("machine", operation) => vec![finding(
            ChangeKind::Relationships,
            identity_change(operation, row),
        )],
        ("netbox_batch", event) => netbox_batch(row, event),
        _ => Vec::new(),
    }
}

fn record_subject(row: &AuditRow) -> Subject {
    match (row.machine_id, row.device_id) {
        (Some(id), _) => Subject::Machine {
            id,
            name: row
                .machine_name
                .clone()
                .or_else(|| row.device_name.clone())
                .unwrap_or_default(),
            device_type: row.device_type,
        },
        (None, Some(device_id)) => Subject::Record {
            device_id,
            name: row
                .device_name
                .clone()
                .or_else(|| row.new["name"].as_str().map(str::to_string))
                .or_else(|| row.old["name"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("record {device_id}")),
            device_type: row.device_type,
        },
        (None, None) => Subject::Named { name: row.source() },
    }
}

/// The value a record's own source keeps under `metadata.<source_system>`.
fn namespace<'a>(value: &'a Value, system: &str) -> &'a Value {
    &value["metadata"][system]
}

/// A short form of a field value: strings as they are, `∅` for nothing.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "∅".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn power_word(value: &Value) -> String {
    match value.as_str() {
        Some("POWERED_ON") => "on".into(),
        Some("POWERED_OFF") => "off".into(),
        Some("SUSPENDED") => "suspended".into(),
        _ => shown(value),
    }
}

/// True when both sides hold something (a list or a text) and differ: a value that went
/// missing is a reporting gap (Tools stopped, the guest is off), not a change of address.
fn both_known_and_different(a: &Value, b: &Value) -> bool {
    let known = |v: &Value| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => true,
    };
    known(a) && known(b) && as_set(a) != as_set(b)
}

fn as_set(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Array(items) => items.iter().map(shown).collect(),
        other => std::iter::once(shown(other)).collect(),
    }
}

fn device_update(row: &AuditRow, subject: &Subject) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |kind, detail: String| {
        out.push(Finding {
            kind,
            subject: subject.clone(),
            detail,
            config: None,
        })
    };
    let (old, new) = (&row.old, &row.new);
    if old["name"] != new["name"] && !old["name"].is_null() {
        push(
            ChangeKind::Fields,
            format!("renamed {} → {}", shown(&old["name"]), shown(&new["name"])),
        );
    }
    let (a, b) = (
        namespace(old, &row.source_system),
        namespace(new, &row.source_system),
    );
    let differs = |key: &str| a[key] != b[key];
    let is_vm = new["device_type"].as_str() == Some("vm")
        || row.device_type == Some(DeviceType::Vm) && new["device_type"].is_null();
    for key in ["cluster", "host"] {
        if differs(key) && !(a[key].is_null() && b[key].is_null()) {
            push(
                ChangeKind::Moved,
                format!("{key} {} → {}", shown(&a[key]), shown(&b[key])),
            );
        }
    }
    if is_vm {
        if differs("power_state") {
            push(
                ChangeKind::Power,
                format!(
                    "power {} → {}",
                    power_word(&a["power_state"]),
                    power_word(&b["power_state"])
                ),
            );
        }
    } else {
        if differs("connection_state") {
            push(
                ChangeKind::Health,
                format!(
                    "{} {} → {}",
                    row.source_system,
                    shown(&a["connection_state"]),
                    shown(&b["connection_state"])
                ),
            );
        } else if differs("power_state")
            && !a["power_state"].is_null()
            && !b["power_state"].is_null()
        {
            // A host that stops responding loses its power state too; that is the connection.
            push(
                ChangeKind::Power,
                format!(
                    "power {} → {}",
                    power_word(&a["power_state"]),
                    power_word(&b["power_state"])
                ),
            );
        }
        if differs("in_maintenance_mode") {
            let entered = b["in_maintenance_mode"].as_bool() == Some(true);
            push(
                ChangeKind::Health,
                if entered {
                    "entered maintenance mode".into()
                } else {
                    "left maintenance mode".into()
                },
            );
        }
    }
    let labelled = [
        ("global_status", "Foreman status"),
        ("reporting", "Puppet reports to Foreman"),
        ("last_status", "last config fetch"),
        ("health", "array health"),
    ];
    for (key, label) in labelled {
        if differs(key) && !a[key].is_null() {
            push(
                ChangeKind::Health,
                format!("{label} {} → {}", shown(&a[key]), shown(&b[key])),
            );
        }
    }
    for (key, label) in [("cpu_count", "CPUs"), ("memory_mb", "memory MB")] {
        if differs(key) && !a[key].is_null() && !b[key].is_null() {
            push(
                ChangeKind::Resized,
                format!("{label} {} → {}", shown(&a[key]), shown(&b[key])),
            );
        }
    }
    for key in ["ip", "ips", "ip_addresses", "mac", "macs"] {
        if both_known_and_different(&a[key], &b[key]) {
            push(
                ChangeKind::Addresses,
                format!("{key} {} → {}", list_text(&a[key]), list_text(&b[key])),
            );
        }
    }
    for key in [
        "os",
        "guest_os",
        "serial",
        "serial_number",
        "model",
        "environment",
    ] {
        if both_known_and_different(&a[key], &b[key]) {
            push(
                ChangeKind::Fields,
                format!("{key} {} → {}", shown(&a[key]), shown(&b[key])),
            );
        }
    }
    out
}

fn list_text(value: &Value) -> String {
    as_set(value).into_iter().collect::<Vec<_>>().join(", ")
}

fn vm_update(row: &AuditRow, subject: &Subject) -> Vec<Finding> {
    let (a, b) = (&row.old, &row.new);
    let mut out = Vec::new();
    let key = "total_disk_capacity_bytes";
    if let (Some(x), Some(y)) = (a[key].as_i64(), b[key].as_i64())
        && x != y
    {
        out.push(Finding {
            kind: ChangeKind::Resized,
            subject: subject.clone(),
            detail: format!("disks {} → {}", gib(x), gib(y)),
            config: None,
        });
    }
    if both_known_and_different(&a["ip_addresses"], &b["ip_addresses"]) {
        out.push(Finding {
            kind: ChangeKind::Addresses,
            subject: subject.clone(),
            detail: format!(
                "guest addresses {} → {}",
                list_text(&a["ip_addresses"]),
                list_text(&b["ip_addresses"])
            ),
            config: None,
        });
    }
    out
}

fn gib(bytes: i64) -> String {
    format!("{:.0} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn interfaces_update(row: &AuditRow, subject: &Subject) -> Vec<Finding> {
    let collect = |v: &Value, key: &str| -> Value {
        let mut out = BTreeSet::new();
        for interface in v.as_array().into_iter().flatten() {
            match &interface[key] {
                Value::Array(items) => out.extend(items.iter().map(shown)),
                Value::String(s) if !s.is_empty() => {
                    out.insert(s.to_lowercase());
                }
                _ => {}
            }
        }
        Value::Array(out.into_iter().map(Value::String).collect())
    };
    let mut out = Vec::new();
    for (key, label) in [
        ("mac_address", "MACs"),
        ("ip_addresses", "interface addresses"),
    ] {
        let (a, b) = (collect(&row.old, key), collect(&row.new, key));
        if both_known_and_different(&a, &b) {
            out.push(Finding {
                kind: ChangeKind::Addresses,
                subject: subject.clone(),
                detail: format!("{label} {} → {}", list_text(&a), list_text(&b)),
                config: None,
            });
        }
    }
    out
}

fn config_added(row: &AuditRow, subject: &Subject) -> Vec<Finding> {
    let (Some(to), Some(device_id)) = (row.new["version"].as_i64(), row.device_id) else {
        return Vec::new();
    };
    let from = row.old["version"].as_i64();
    let Some(from) = from else {
        // The first version of a config is part of the device appearing.
        return Vec::new();
    };
    vec![Finding {
        kind: ChangeKind::Config,
        subject: subject.clone(),
        detail: format!("config version {from} → {to}"),
        config: Some(ConfigChange {
            device_id,
            from_version: from,
            to_version: to,
            lines_added: None,
            lines_removed: None,
        }),
    }]
}

fn link_of(row: &AuditRow) -> &Value {
    if row.new.is_null() {
        &row.old
    } else {
        &row.new
    }
}

fn relationship(row: &AuditRow, cx: &Context<'_>) -> Vec<Finding> {
    let link = link_of(row);
    let kind = link["relationship_type"].as_str().unwrap_or("");
    // A VM's host link moves with its `host` field and comes and goes with the VM itself.
    if matches!(kind, "hosts" | "same_as" | "") {
        return Vec::new();
    }
    let (Some(parent), Some(child)) = (
        link["parent_device_id"].as_i64(),
        link["child_device_id"].as_i64(),
    ) else {
        return Vec::new();
    };
    let added = row.operation == "add";
    let name = |id: i64| {
        cx.labels
            .get(&id)
            .map(|l| l.name().to_string())
            .unwrap_or_else(|| format!("record {id}"))
    };
    let subject_of = |id: i64| match cx.labels.get(&id) {
        Some(label) => match label.machine_id {
            Some(machine) => Subject::Machine {
                id: machine,
                name: label.name().to_string(),
                device_type: None,
            },
            None => Subject::Record {
                device_id: id,
                name: label.device_name.clone(),
                device_type: None,
            },
        },
        None => Subject::Record {
            device_id: id,
            name: format!("record {id}"),
            device_type: None,
        },
    };
    let phrase = |other: &str| match (kind, added) {
        ("connects_to", true) => format!("now cabled to {other}"),
        ("connects_to", false) => format!("no longer cabled to {other}"),
        (_, true) => format!("{kind} link to {other} added"),
        (_, false) => format!("{kind} link to {other} removed"),
    };
    // Both ends see the change, each naming the other.
    vec![
        Finding {
            kind: ChangeKind::Relationships,
            subject: subject_of(parent),
            detail: phrase(&name(child)),
            config: None,
        },
        Finding {
            kind: ChangeKind::Relationships,
            subject: subject_of(child),
            detail: phrase(&name(parent)),
            config: None,
        },
    ]
}

fn volume(row: &AuditRow, cx: &Context<'_>) -> Vec<Finding> {
    let value = if row.new.is_null() {
        &row.old
    } else {
        &row.new
    };
    let name = value["name"].as_str().unwrap_or("?").to_string();
    let kind = value["volume_type"].as_str().unwrap_or("volume");
    let subject = match value["device_id"]
        .as_i64()
        .and_then(|id| cx.labels.get(&id))
    {
        Some(label) => match label.machine_id {
            Some(id) => Subject::Machine {
                id,
                name: label.name().to_string(),
                device_type: Some(DeviceType::Storage),
            },
            None => Subject::Named { name: name.clone() },
        },
        None => Subject::Named {
            name: format!("{kind} {name}"),
        },
    };
    let percent = |v: &Value| {
        crate::model::used_percent(v["capacity_bytes"].as_i64(), v["used_bytes"].as_i64())
    };
    let detail = match row.operation.as_str() {
        "add" => None,
        "delete" => Some(format!("{kind} {name} removed")),
        _ => {
            let (a, b) = (percent(&row.old), percent(&row.new));
            match (a, b) {
                (Some(a), Some(b)) => {
                    let band = |p: f64| {
                        if p >= cx.health.volume_crit_percent {
                            2
                        } else if p >= cx.health.volume_warn_percent {
                            1
                        } else {
                            0
                        }
                    };
                    (band(a) != band(b)).then(|| {
                        let level = if band(a).max(band(b)) == 2 {
                            cx.health.volume_crit_percent
                        } else {
                            cx.health.volume_warn_percent
                        };
                        let way = if b > a { "above" } else { "below" };
                        format!("{kind} {name} {a:.0}% → {b:.0}% ({way} {level:.0}%)")
                    })
                }
                _ => None,
            }
        }
    };
    detail
        .map(|detail| Finding {
            kind: ChangeKind::Volume,
            subject,
            detail,
            config: None,
        })
        .into_iter()
        .collect()
}

fn identity_change(operation: &str, row: &AuditRow) -> String {
    let names = |v: &Value| {
        v["machines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match operation {
        "merge" => format!("one machine now: {} were separate", names(&row.old)),
        _ => format!("split into {}", names(&row.new)),
    }
}

fn netbox_batch(row: &AuditRow, event: &str) -> Vec<Finding> {
    let batch = row.new["batch_id"].as_str().unwrap_or("?");
    let m = &row.metadata;
    let who = &row.performed_by;
    let detail = match event {
        "plan" => format!(
            "planned by {who}: {} creates, {} updates, {} deletes",
            m["creates"].as_i64().unwrap_or(0),
            m["updates"].as_i64().unwrap_or(0),
            m["deletes"].as_i64().unwrap_or(0)
        ),
        "review" => format!(
            "{} items {} by {who}",
            m["items"].as_i64().unwrap_or(0),
            m["to"].as_str().unwrap_or("reviewed")
        ),
        "applying" => return Vec::new(),
        state => {
            let counts = m["items"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, n)| format!("{n} {status}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{} by {who} ({counts})", state.replace('_', " "))
        }
    };
    vec![Finding {
        kind: ChangeKind::Netbox,
        subject: Subject::Named {
            name: format!("NetBox batch {batch}"),
        },
        detail,
        config: None,
    }]
}
