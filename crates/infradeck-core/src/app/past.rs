//! The inventory as it was at a past time, for `devices --at`, `show --at` and the dashboard's
//! `:at`: the records the audit trail says existed then ([`Store::records_at`]), grouped into
//! machines and judged by the same computation correlation runs, at that time.

use super::RelatedMachine;
use crate::config::SourceConfig;
use crate::machines::{MachineFilter, MachineRules, compute, with_stale_sources};
use crate::model::{DeviceType, RelationshipType};
use crate::store::{
    FieldSource, Machine, MachineRecord, MachineSort, MergedField, PastRecords, Result, Store,
    merged_fields,
};
use serde::Serialize;
use std::collections::HashMap;

/// The machines at a time, and what their detail needs.
#[derive(Debug, Clone)]
pub struct PastInventory {
    /// The time (a database timestamp).
    pub at: String,
    /// In name order.
    pub machines: Vec<Machine>,
    /// Records older than the audit trail, shown as they are now (see [`Store::records_at`]).
    pub unreconstructed: usize,
    records: PastRecords,
    /// Record id → index into `machines`.
    machine_of_record: HashMap<i64, usize>,
}

/// One machine's detail as it was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PastDetail {
    pub at: String,
    pub machine: Machine,
    pub fields: Vec<MergedField>,
    pub relationships: Vec<RelatedMachine>,
    /// (source, interfaces as that source reported them).
    pub interfaces: Vec<(String, serde_json::Value)>,
}

impl PastDetail {
    /// The detail as lines of text (unsanitized: callers sanitize for where they write).
    pub fn lines(&self) -> Vec<String> {
        use std::fmt::Write;
        let type_word = |t: DeviceType| match t {
            DeviceType::NetworkDevice => "network",
            other => other.as_str(),
        };
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}, machine {}) as it was at {} UTC — {}",
            m.name,
            type_word(m.device_type),
            m.id,
            self.at,
            m.health
        );
        for reason in &m.reasons {
            let _ = writeln!(out, "  {} {}", reason.level, reason.text);
        }
        let _ = writeln!(out, "\nsources");
        for r in &m.records {
            let _ = writeln!(
                out,
                "  {:<28} {:<9} {}",
                r.source(),
                r.status.as_str(),
                r.name
            );
        }
        if !self.fields.is_empty() {
            let _ = writeln!(out, "\nfields");
            for field in &self.fields {
                let values: Vec<String> = field
                    .values
                    .iter()
                    .map(|v| format!("{} ({})", v.value, v.source))
                    .collect();
                let mark = if field.conflict { "≠" } else { " " };
                let _ = writeln!(out, " {mark}{:<14} {}", field.name, values.join("  "));
            }
        }
        if !self.relationships.is_empty() {
            let _ = writeln!(out, "\nrelationships");
            for link in &self.relationships {
                let (kind, what) = (link.relationship_type.as_str(), type_word(link.device_type));
                let _ = if link.is_parent {
                    writeln!(out, "  {} ({what}, {}) {kind} it", link.name, link.health)
                } else {
                    writeln!(out, "  {kind} {} ({what}, {})", link.name, link.health)
                };
            }
        }
        if !self.interfaces.is_empty() {
            let _ = writeln!(out, "\ninterfaces");
            for (source, interfaces) in &self.interfaces {
                for interface in interfaces.as_array().into_iter().flatten() {
                    let addresses: Vec<&str> = interface["ip_addresses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str())
                        .collect();
                    let _ = writeln!(
                        out,
                        "  {:<20} {:<17} {:<24} {source}",
                        interface["interface_name"].as_str().unwrap_or("?"),
                        interface["mac_address"].as_str().unwrap_or(""),
                        addresses.join(", ")
                    );
                }
            }
        }
        out.lines().map(str::to_string).collect()
    }
}

/// Rebuilds the machines as they were at `at`.
pub fn inventory_at(
    store: &Store,
    at: &str,
    rules: &MachineRules,
    sources: &[SourceConfig],
) -> Result<PastInventory> {
    let records = store.records_at(at)?;
    let now = crate::time::parse(at).unwrap_or_else(chrono::Utc::now);
    let stale = crate::machines::stale_sources(&store.source_statuses_at(at)?, sources, now);
    let computed = compute(&records.facts, &records.same_as, rules, now);
    let index: HashMap<i64, usize> = records
        .facts
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    let mut machines: Vec<Machine> = computed
        .machines
        .iter()
        .map(|m| {
            let members: Vec<MachineRecord> = m
                .members
                .iter()
                .filter_map(|id| index.get(id))
                .map(|&i| {
                    let r = &records.facts[i];
                    MachineRecord {
                        device_id: r.id,
                        name: r.name.clone(),
                        device_type: r.device_type,
                        source_system: r.source_system.clone(),
                        source_identifier: r.source_identifier.clone(),
                        source_id: records.source_ids[i].clone(),
                        status: r.status,
                        last_seen: r.last_seen.clone(),
                    }
                })
                .collect();
            let mut machine = Machine {
                id: m.id.unwrap_or(-m.primary_device_id),
                correlated: m.id.is_some(),
                name: m.name.clone(),
                device_type: m.device_type,
                primary_device_id: Some(m.primary_device_id),
                status: m.status,
                health: m.health,
                reasons: m.reasons.clone(),
                power: m.power.clone(),
                conflicts: m.conflicts.clone(),
                conflict_since: None,
                last_seen: members.iter().filter_map(|r| r.last_seen.clone()).max(),
                records: members,
            };
            let (health, reasons) =
                with_stale_sources(machine.health, &machine.reasons, &machine.sources(), &stale);
            machine.health = health;
            machine.reasons = reasons;
            machine
        })
        .collect();
    machines.sort_by_cached_key(|m| (crate::text::natural_key(&m.name), m.id));
    let machine_of_record = machines
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.records.iter().map(move |r| (r.device_id, i)))
        .collect();
    Ok(PastInventory {
        at: at.to_string(),
        machines,
        unreconstructed: records.unreconstructed,
        records,
        machine_of_record,
    })
}

impl PastInventory {
    /// The machines `filter` keeps, sorted as the live list sorts.
    pub fn list(
        &self,
        filter: &MachineFilter,
        sort: MachineSort,
        descending: bool,
    ) -> Vec<&Machine> {
        let mut out: Vec<&Machine> = self.machines.iter().filter(|m| filter.accepts(m)).collect();
        match sort {
            MachineSort::Name => {}
            MachineSort::Type => out.sort_by_key(|m| m.device_type.as_str()),
            MachineSort::Sources => out.sort_by_key(|m| m.source_systems().join(",")),
            MachineSort::Health => out.sort_by_key(|m| std::cmp::Reverse(m.health)),
            MachineSort::Power => out.sort_by_key(|m| m.power.clone()),
            MachineSort::LastSeen => out.sort_by_key(|m| std::cmp::Reverse(m.last_seen.clone())),
        }
        if descending {
            out.reverse();
        }
        out
    }

    /// Machines by id, or whose records are named `which` (case-insensitive).
    pub fn find(&self, which: &str) -> Vec<&Machine> {
        if let Ok(id) = which.parse::<i64>()
            && let Some(m) = self.machines.iter().find(|m| m.id == id)
        {
            return vec![m];
        }
        let lower = which.to_lowercase();
        self.machines
            .iter()
            .filter(|m| {
                m.name.to_lowercase() == lower
                    || m.records.iter().any(|r| r.name.to_lowercase() == lower)
            })
            .collect()
    }

    /// The detail of machine `id` as it was.
    pub fn detail(&self, id: i64) -> Option<PastDetail> {
        let machine = self.machines.iter().find(|m| m.id == id)?.clone();
        let by_id: HashMap<i64, &crate::machines::RecordFacts> =
            self.records.facts.iter().map(|r| (r.id, r)).collect();
        let mine: Vec<&crate::machines::RecordFacts> = machine
            .records
            .iter()
            .filter_map(|r| by_id.get(&r.device_id).copied())
            .collect();
        let fields = merged_fields(mine.iter().map(|r| FieldSource {
            source: r.source(),
            device_id: r.id,
            confirmed_at: r.last_seen.clone(),
            fields: &r.metadata[r.source_system.as_str()],
        }));
        let member = |id: i64| machine.records.iter().any(|r| r.device_id == id);
        let mut relationships: Vec<RelatedMachine> = Vec::new();
        for (parent, child, kind, metadata) in &self.records.links {
            let (other, is_parent) = match (member(*parent), member(*child)) {
                (true, false) => (*child, false),
                (false, true) => (*parent, true),
                _ => continue,
            };
            let Ok(relationship_type) = kind.parse::<RelationshipType>() else {
                continue;
            };
            let Some(&i) = self.machine_of_record.get(&other) else {
                continue;
            };
            let m = &self.machines[i];
            if relationships.iter().any(|r| {
                r.machine_id == m.id
                    && r.relationship_type == relationship_type
                    && r.is_parent == is_parent
            }) {
                continue;
            }
            relationships.push(RelatedMachine {
                relationship_type,
                is_parent,
                machine_id: m.id,
                name: m.name.clone(),
                device_type: m.device_type,
                health: m.health,
                source: by_id.get(&other).map(|r| r.source()).unwrap_or_default(),
                metadata: metadata.clone(),
            });
        }
        relationships.sort_by(|a, b| {
            b.is_parent
                .cmp(&a.is_parent)
                .then(
                    a.relationship_type
                        .as_str()
                        .cmp(b.relationship_type.as_str()),
                )
                .then_with(|| {
                    crate::text::natural_key(&a.name).cmp(&crate::text::natural_key(&b.name))
                })
        });
        let interfaces = mine
            .iter()
            .filter_map(|r| {
                self.records
                    .interfaces
                    .get(&r.id)
                    .filter(|v| !v.is_null())
                    .map(|v| (r.source(), v.clone()))
            })
            .collect();
        Some(PastDetail {
            at: self.at.clone(),
            machine,
            fields,
            relationships,
            interfaces,
        })
    }
}
