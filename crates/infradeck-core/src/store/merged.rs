//! A device's merged view: the device and every record correlated with it (`same_as`), field by
//! field, each value with the source that supplied it and when that source last confirmed it,
//! disagreements marked.

use super::{Device, Result, Store};
use crate::model::RelationshipType;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};

/// One source's value of a field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldValue {
    pub value: String,
    /// `system/instance` of the record.
    pub source: String,
    pub(crate) device_id: i64,
    /// When that source last confirmed the record (`last_seen`).
    pub confirmed_at: Option<String>,
}

/// A field across the correlated records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedField {
    pub name: &'static str,
    pub values: Vec<FieldValue>,
    /// The sources disagree (compared case-insensitively, lists as sets).
    pub conflict: bool,
}

/// The merged view of one machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedView {
    /// The records merged, the asked-for device first.
    pub device_ids: Vec<i64>,
    pub fields: Vec<MergedField>,
}

/// (field, metadata keys that supply it, whether disagreement is a conflict). OS and model are
/// shown but not compared: every system spells them its own way (`RHEL_8_64`, `RedHat 8.9`).
const FIELDS: &[(&str, &[&str], bool)] = &[
    ("hostname", &["hostname"], true),
    ("fqdn", &["fqdn"], true),
    ("ip", &["ip"], true),
    ("mac", &["macs", "mac"], true),
    ("bios_uuid", &["bios_uuid"], true),
    ("instance_uuid", &["instance_uuid"], true),
    ("serial", &["serial"], true),
    ("cpu_count", &["cpu_count"], true),
    ("memory_mb", &["memory_mb"], true),
    ("power_state", &["power_state"], false),
    ("os", &["os", "guest_os"], false),
    ("model", &["model"], false),
];

fn render(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().filter_map(render).collect();
            parts.sort();
            Some(parts.join(", "))
        }
        other => Some(other.to_string()),
    }
}

/// One record's contribution to a merged view: its source, its id, when it was last confirmed
/// and its own metadata namespace.
pub struct FieldSource<'a> {
    pub source: String,
    pub device_id: i64,
    pub confirmed_at: Option<String>,
    pub fields: &'a Value,
}

/// The fields of correlated records side by side, each marked when its sources disagree. The
/// machine computation finds conflicts with it; the detail view shows it whole.
pub fn merged_fields<'a>(records: impl Iterator<Item = FieldSource<'a>>) -> Vec<MergedField> {
    let records: Vec<FieldSource<'a>> = records.collect();
    let mut fields = Vec::new();
    for (name, keys, compared) in FIELDS {
        let mut values = Vec::new();
        for record in &records {
            if let Some(value) = keys.iter().find_map(|k| render(&record.fields[*k])) {
                values.push(FieldValue {
                    value,
                    source: record.source.clone(),
                    device_id: record.device_id,
                    confirmed_at: record.confirmed_at.clone(),
                });
            }
        }
        if values.is_empty() {
            continue;
        }
        fields.push(MergedField {
            name,
            conflict: *compared && disagree(&values),
            values,
        });
    }
    fields
}

/// Whether every compared field has one value across these metadata namespaces (the common
/// case, answered without building the merged view): `false` means "maybe not", and
/// [`merged_fields`] then decides.
pub fn compared_fields_agree(namespaces: &[&Value]) -> bool {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (a, b) => a == b,
        }
    }
    let present = |v: &&Value| {
        !matches!(v, Value::Null) && *v != "" && v.as_array().is_none_or(|a| !a.is_empty())
    };
    FIELDS
        .iter()
        .filter(|(_, _, compared)| *compared)
        .all(|(_, keys, _)| {
            let mut first: Option<&Value> = None;
            namespaces
                .iter()
                .all(|ns| match keys.iter().map(|k| &ns[*k]).find(present) {
                    None => true,
                    Some(value) => match first {
                        None => {
                            first = Some(value);
                            true
                        }
                        Some(first) => same(first, value),
                    },
                })
        })
}

/// Whether the values disagree, compared case-insensitively. A list (`a, b`) agrees with a
/// part of itself: Foreman knows a VM's primary MAC, vCenter all of them, and that is no
/// disagreement; two lists disagree when neither holds the other.
fn disagree(values: &[FieldValue]) -> bool {
    let sets: Vec<BTreeSet<String>> = values
        .iter()
        .map(|v| {
            v.value
                .split(", ")
                .map(|part| part.to_ascii_lowercase())
                .collect()
        })
        .collect();
    sets.iter().enumerate().any(|(i, a)| {
        sets[i + 1..]
            .iter()
            .any(|b| !a.is_subset(b) && !b.is_subset(a))
    })
}

impl Store {
    /// The merged view of a device and its correlated records; `None` for an unknown device.
    pub fn merged_view(&self, device_id: i64) -> Result<Option<MergedView>> {
        if self.device(device_id)?.is_none() {
            return Ok(None);
        }
        let mut ids = vec![device_id];
        let mut seen = BTreeSet::from([device_id]);
        let mut queue = VecDeque::from([device_id]);
        while let Some(id) = queue.pop_front() {
            for related in self.related(id)? {
                if related.relationship_type == RelationshipType::SameAs
                    && seen.insert(related.device.id)
                {
                    ids.push(related.device.id);
                    queue.push_back(related.device.id);
                }
            }
        }
        let mut devices = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(device) = self.device(*id)? {
                devices.push(device);
            }
        }
        let metadata: Vec<Value> = devices.iter().map(Device::metadata_json).collect();
        let fields =
            merged_fields(
                devices
                    .iter()
                    .zip(&metadata)
                    .map(|(device, metadata)| FieldSource {
                        source: format!("{}/{}", device.source_system, device.source_identifier),
                        device_id: device.id,
                        confirmed_at: device.last_seen.clone(),
                        fields: &metadata[device.source_system.as_str()],
                    }),
            );
        Ok(Some(MergedView {
            device_ids: ids,
            fields,
        }))
    }
}

#[cfg(test)]
mod agree_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agreeing_namespaces_are_recognised_without_the_merged_view() {
        let a =
            json!({"hostname": "web-1", "instance_uuid": "u1", "memory_mb": 4096, "cpu_count": 2});
        let b = json!({"hostname": "WEB-1", "instance_uuid": "u1", "memory_mb": 4096, "reporting": "ok"});
        let c = json!({"hostname": "web-1", "memory_mb": 4096});
        assert!(compared_fields_agree(&[&a, &b, &c]));
        let d = json!({"hostname": "web-1", "memory_mb": 2048});
        assert!(!compared_fields_agree(&[&a, &d]));
    }
}
