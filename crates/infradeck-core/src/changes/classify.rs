//! One audit row → what it means to a person: zero or more findings, each of one kind, about
//! one subject (a record, or a volume or NetBox batch that is none). The store runs this as it
//! writes each audit row and keeps the findings (`change_findings`), so a day of changes is
//! read without parsing a day of audit JSON.
//!
//! The rules keep noise out: facts churn, `last_seen`-like bumps, the `fqdn` and addresses a
//! VM's guest tools report or stop reporting, the hosts links a move or a new VM also shows,
//! and a volume's usage creeping within a band never read as a change.

use super::ChangeKind;
use crate::model::DeviceType;
use serde_json::Value;
use std::collections::BTreeSet;

/// An audit row as classification reads it: what the store writes (and has written).
pub(crate) struct HistoryRow<'a> {
    pub source_system: &'a str,
    pub operation: &'a str,
    pub change_type: &'a str,
    pub device_id: Option<i64>,
    pub old: &'a Value,
    pub new: &'a Value,
    pub metadata: &'a Value,
    pub performed_by: &'a str,
}

/// What one row says about one subject, as the store indexes it (`change_findings`): names
/// of machines are resolved when read, since correlation may group records differently later.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub kind: ChangeKind,
    /// The record it is about; `None` for a subject that is no record (`subject`).
    pub device_id: Option<i64>,
    /// A subject that is no record (a datastore, a NetBox batch), or the record's name as the
    /// row gave it (for a record since removed).
    pub subject: Option<String>,
    /// What changed; `{other}` stands for the name of `other_device_id`.
    pub detail: String,
    /// The other end of a relationship.
    pub other_device_id: Option<i64>,
    /// A config change: (from version, to version) of `device_id`'s config.
    pub config: Option<(i64, i64)>,
    /// A volume's use before and after, in percent: whether it crossed a threshold is judged
    /// when read, by the thresholds configured then.
    pub volume_use: Option<(f64, f64)>,
}

impl Finding {
    fn about(kind: ChangeKind, row: &HistoryRow<'_>, detail: String) -> Finding {
        Finding {
            kind,
            device_id: row.device_id,
            subject: row.new["name"]
                .as_str()
                .or(row.old["name"].as_str())
                .map(str::to_string),
            detail,
            other_device_id: None,
            config: None,
            volume_use: None,
        }
    }
}

pub(crate) fn classify(row: &HistoryRow<'_>) -> Vec<Finding> {
    let source = row.source_system;
    let finding = |kind, detail: String| Finding::about(kind, row, detail);
    match (row.change_type, row.operation) {
        ("device", "add") => vec![finding(ChangeKind::Appeared, format!("new in {source}"))],
        ("device", "delete") => vec![finding(ChangeKind::Gone, format!("removed from {source}"))],
        ("device", _) => device_update(row),
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
        ("vm", "update") => vm_update(row),
        ("interfaces", "update") => interfaces_update(row),
        ("config", "add") => config_added(row),
        ("relationship", _) => relationship(row),
        ("volume", _) => volume(row),
        ("machine", operation) => vec![Finding {
            subject: None,
            ..finding(ChangeKind::Relationships, identity_change(operation, row))
        }],
        ("netbox_batch", event) => netbox_batch(row, event),
        _ => Vec::new(),
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

fn power_change(a: &Value, b: &Value) -> String {
    format!(
        "power {} → {}",
        power_word(&a["power_state"]),
        power_word(&b["power_state"])
    )
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

fn device_update(row: &HistoryRow<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |kind, detail: String| out.push(Finding::about(kind, row, detail));
    let (old, new) = (row.old, row.new);
    if old["name"] != new["name"] && !old["name"].is_null() {
        push(
            ChangeKind::Fields,
            format!("renamed {} → {}", shown(&old["name"]), shown(&new["name"])),
        );
    }
    let (a, b) = (
        namespace(old, row.source_system),
        namespace(new, row.source_system),
    );
    let differs = |key: &str| a[key] != b[key];
    let is_vm = new["device_type"].as_str() == Some(DeviceType::Vm.as_str());
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
            push(ChangeKind::Power, power_change(a, b));
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
            push(ChangeKind::Power, power_change(a, b));
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

fn vm_update(row: &HistoryRow<'_>) -> Vec<Finding> {
    let (a, b) = (row.old, row.new);
    let mut out = Vec::new();
    let key = "total_disk_capacity_bytes";
    if let (Some(x), Some(y)) = (a[key].as_i64(), b[key].as_i64())
        && x != y
    {
        out.push(Finding::about(
            ChangeKind::Resized,
            row,
            format!("disks {} → {}", gib(x), gib(y)),
        ));
    }
    if both_known_and_different(&a["ip_addresses"], &b["ip_addresses"]) {
        out.push(Finding::about(
            ChangeKind::Addresses,
            row,
            format!(
                "guest addresses {} → {}",
                list_text(&a["ip_addresses"]),
                list_text(&b["ip_addresses"])
            ),
        ));
    }
    out
}

fn gib(bytes: i64) -> String {
    format!("{:.0} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn interfaces_update(row: &HistoryRow<'_>) -> Vec<Finding> {
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
        let (a, b) = (collect(row.old, key), collect(row.new, key));
        if both_known_and_different(&a, &b) {
            out.push(Finding::about(
                ChangeKind::Addresses,
                row,
                format!("{label} {} → {}", list_text(&a), list_text(&b)),
            ));
        }
    }
    out
}

fn config_added(row: &HistoryRow<'_>) -> Vec<Finding> {
    let Some(to) = row.new["version"].as_i64() else {
        return Vec::new();
    };
    // The first version of a config is part of the device appearing.
    let Some(from) = row.old["version"].as_i64() else {
        return Vec::new();
    };
    vec![Finding {
        subject: None,
        config: Some((from, to)),
        ..Finding::about(
            ChangeKind::Config,
            row,
            format!("config version {from} → {to}"),
        )
    }]
}

fn link_of<'a>(row: &'a HistoryRow<'_>) -> &'a Value {
    if row.new.is_null() { row.old } else { row.new }
}

fn relationship(row: &HistoryRow<'_>) -> Vec<Finding> {
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
    let detail = match (kind, row.operation == "add") {
        ("connects_to", true) => "now cabled to {other}".to_string(),
        ("connects_to", false) => "no longer cabled to {other}".to_string(),
        (_, true) => format!("{kind} link to {{other}} added"),
        (_, false) => format!("{kind} link to {{other}} removed"),
    };
    // Both ends see the change, each naming the other.
    [(parent, child), (child, parent)]
        .into_iter()
        .map(|(this, other)| Finding {
            kind: ChangeKind::Relationships,
            device_id: Some(this),
            subject: None,
            detail: detail.clone(),
            other_device_id: Some(other),
            config: None,
            volume_use: None,
        })
        .collect()
}

fn volume(row: &HistoryRow<'_>) -> Vec<Finding> {
    let value = link_of(row);
    let name = value["name"].as_str().unwrap_or("?");
    let kind = value["volume_type"].as_str().unwrap_or("volume");
    let percent = |v: &Value| {
        crate::model::used_percent(v["capacity_bytes"].as_i64(), v["used_bytes"].as_i64())
    };
    let (detail, volume_use) = match row.operation {
        "add" => return Vec::new(),
        "delete" => (format!("{kind} {name} removed"), None),
        _ => match (percent(row.old), percent(row.new)) {
            (Some(a), Some(b)) if a != b => {
                (format!("{kind} {name} {a:.0}% → {b:.0}%"), Some((a, b)))
            }
            _ => return Vec::new(),
        },
    };
    vec![Finding {
        kind: ChangeKind::Volume,
        device_id: value["device_id"].as_i64(),
        subject: Some(format!("{kind} {name}")),
        detail,
        other_device_id: None,
        config: None,
        volume_use,
    }]
}

fn identity_change(operation: &str, row: &HistoryRow<'_>) -> String {
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
        "merge" => format!("one machine now: {} were separate", names(row.old)),
        _ => format!("split into {}", names(row.new)),
    }
}

fn netbox_batch(row: &HistoryRow<'_>, event: &str) -> Vec<Finding> {
    let batch = row.new["batch_id"].as_str().unwrap_or("?");
    let m = row.metadata;
    let who = row.performed_by;
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
        device_id: None,
        subject: Some(format!("NetBox batch {batch}")),
        detail,
        other_device_id: None,
        config: None,
        volume_use: None,
    }]
}
