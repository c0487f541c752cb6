//! `machines`: what correlation computed per machine, and the machine list's reads.
//!
//! Writes come from [`Writer::store_machines`] after every correlation; reads page, filter and
//! sort through an in-memory [`MachineIndex`] (rebuilt when the database changes), then read
//! only the page's rows. A record not yet correlated (a device a sync just added, before the
//! correlation that follows it) shows as a machine of its own, with the negated device id as
//! its id and `correlated: false`, so nothing a sync wrote is ever missing from the list.

use super::devices::{DEVICE_COLUMNS, device_from_row};
use super::{Device, NewHistory, Result, Store, Writer, parse_text_enum};
use crate::machines::{
    Computed, Conflict, IdentityChange, MachineFilter, Reason, RecordFacts, VmFacts, VolumeUse,
};
use crate::model::{DeviceStatus, DeviceType, Health};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// One record of a machine, as lists show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineRecord {
    pub device_id: i64,
    pub name: String,
    pub device_type: DeviceType,
    pub source_system: String,
    pub source_identifier: String,
    pub source_id: String,
    pub status: DeviceStatus,
    pub last_seen: Option<String>,
}

impl MachineRecord {
    /// `system/instance`.
    pub fn source(&self) -> String {
        format!("{}/{}", self.source_system, self.source_identifier)
    }
}

/// A machine: its identity, what was computed for it and its records, the primary first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Stable across correlations; negative (the negated device id) for a record not yet
    /// correlated.
    pub id: i64,
    pub correlated: bool,
    pub name: String,
    pub device_type: DeviceType,
    pub primary_device_id: Option<i64>,
    pub status: DeviceStatus,
    pub health: Health,
    pub reasons: Vec<Reason>,
    pub power: Option<String>,
    pub conflicts: Vec<Conflict>,
    /// Since when the sources disagree as they do now.
    pub conflict_since: Option<String>,
    /// When the freshest source last confirmed it.
    pub last_seen: Option<String>,
    pub records: Vec<MachineRecord>,
}

impl Machine {
    /// The distinct `system/instance` sources that know it, in record order.
    pub fn sources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for record in &self.records {
            let source = record.source();
            if !out.contains(&source) {
                out.push(source);
            }
        }
        out
    }

    /// The first of its worst reasons: what a one-line list says about it.
    pub fn worst_reason(&self) -> Option<&Reason> {
        let worst = self.reasons.iter().map(|r| r.level).max()?;
        self.reasons.iter().find(|r| r.level == worst)
    }

    /// The distinct source systems, sorted: `foreman,puppetdb,vcenter`.
    pub fn source_systems(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .records
            .iter()
            .map(|r| r.source_system.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The column a machine list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum MachineSort {
    #[default]
    Name,
    Type,
    Sources,
    Health,
    Power,
    LastSeen,
}

impl MachineSort {
    pub const ALL: [MachineSort; 6] = [
        MachineSort::Name,
        MachineSort::Type,
        MachineSort::Sources,
        MachineSort::Health,
        MachineSort::Power,
        MachineSort::LastSeen,
    ];

    /// The column's heading.
    pub fn heading(self) -> &'static str {
        match self {
            MachineSort::Name => "NAME",
            MachineSort::Type => "TYPE",
            MachineSort::Sources => "SOURCES",
            MachineSort::Health => "HEALTH",
            MachineSort::Power => "POWER",
            MachineSort::LastSeen => "LAST SEEN",
        }
    }

    /// The sort a word names (`name`, `health`, `seen`, ...).
    pub fn named(word: &str) -> Option<MachineSort> {
        Some(match word.to_ascii_lowercase().as_str() {
            "name" => MachineSort::Name,
            "type" => MachineSort::Type,
            "source" | "sources" => MachineSort::Sources,
            "health" => MachineSort::Health,
            "power" | "state" => MachineSort::Power,
            "seen" | "last_seen" | "last-seen" | "lastseen" => MachineSort::LastSeen,
            _ => return None,
        })
    }
}

/// A filtered, sorted page of machines.
#[derive(Debug, Clone, Default)]
pub struct MachineQuery {
    pub filter: MachineFilter,
    pub sort: MachineSort,
    pub descending: bool,
    pub offset: u64,
    /// `0` means no limit.
    pub limit: u64,
    /// Sources whose data is stale now (`system/instance` → why), from
    /// [`crate::machines::stale_sources`]: their machines are at least `warn`.
    pub stale: BTreeMap<String, String>,
}

/// A page of machines and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct MachinePage {
    pub machines: Vec<Machine>,
    pub total: u64,
}

/// What one machine recomputation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachinesReport {
    pub machines: usize,
    pub created: usize,
    pub changed: usize,
    pub removed: usize,
    pub merged: usize,
    pub split: usize,
}

const MACHINE_COLUMNS: &str = "id, name, device_type, primary_device_id, status, health, reasons, \
     power, conflicts, conflict_since";

/// A stored machine without its records.
fn machine_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Machine> {
    // A list the store wrote; anything else (another tool's edit) reads as empty.
    fn json_list<T: serde::de::DeserializeOwned>(
        row: &rusqlite::Row<'_>,
        index: usize,
    ) -> rusqlite::Result<Vec<T>> {
        Ok(match row.get_ref(index)? {
            rusqlite::types::ValueRef::Text(bytes) => {
                serde_json::from_slice(bytes).unwrap_or_default()
            }
            _ => Vec::new(),
        })
    }
    Ok(Machine {
        id: row.get(0)?,
        correlated: true,
        name: row.get(1)?,
        device_type: parse_text_enum(row, 2)?,
        primary_device_id: row.get(3)?,
        status: parse_text_enum(row, 4)?,
        health: parse_text_enum(row, 5)?,
        reasons: json_list(row, 6)?,
        power: row.get(7)?,
        conflicts: json_list(row, 8)?,
        conflict_since: row.get(9)?,
        last_seen: None,
        records: Vec::new(),
    })
}

/// A record no correlation has placed yet, as a machine of its own.
fn provisional(device: &Device) -> Machine {
    Machine {
        id: -device.id,
        correlated: false,
        name: device.name.clone(),
        device_type: device.device_type,
        primary_device_id: Some(device.id),
        status: device.status,
        health: Health::Ok,
        reasons: Vec::new(),
        power: None,
        conflicts: Vec::new(),
        conflict_since: None,
        last_seen: device.last_seen.clone(),
        records: vec![record_of(device)],
    }
}

fn record_of(device: &Device) -> MachineRecord {
    MachineRecord {
        device_id: device.id,
        name: device.name.clone(),
        device_type: device.device_type,
        source_system: device.source_system.clone(),
        source_identifier: device.source_identifier.clone(),
        source_id: device.source_id.clone(),
        status: device.status,
        last_seen: device.last_seen.clone(),
    }
}

impl Writer<'_> {
    /// Every record as the machine computation reads it, and the `same_as` links as
    /// (parent, child).
    pub(crate) fn machine_inputs(&self) -> Result<MachineInputs> {
        let conn = self.conn();
        let mut datastores: HashMap<(String, String), VolumeUse> = HashMap::new();
        let mut owned: HashMap<i64, Vec<VolumeUse>> = HashMap::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT device_id, source_system, source_identifier, name, volume_type, \
                 capacity_bytes, used_bytes FROM storage_volumes",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let volume = VolumeUse {
                    name: row.get(3)?,
                    volume_type: row.get(4)?,
                    capacity_bytes: row.get(5)?,
                    used_bytes: row.get(6)?,
                };
                let device: Option<i64> = row.get(0)?;
                let system: String = row.get(1)?;
                if system == "vcenter" && volume.volume_type.as_deref() == Some("datastore") {
                    datastores.insert((row.get(2)?, volume.name.clone()), volume.clone());
                }
                if let Some(device) = device {
                    owned.entry(device).or_default().push(volume);
                }
            }
        }
        let mut vms: HashMap<i64, (VmFacts, Vec<String>)> = HashMap::new();
        {
            // Only what health reads: the datastore names of the disks, and the snapshots when
            // there are any (most VMs have none; their JSON is not parsed).
            let mut stmt = conn.prepare_cached(
                "SELECT device_id, power_state, tools_running, \
                 CASE WHEN snapshots IS NULL OR snapshots IN ('[]', 'null') THEN NULL ELSE snapshots END, \
                 (SELECT group_concat(DISTINCT json_extract(value, '$.datastore')) FROM json_each(vms.disks) \
                  WHERE json_valid(vms.disks)) FROM vms",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let snapshots: Option<String> = row.get(3)?;
                let names: Option<String> = row.get(4)?;
                vms.insert(
                    row.get(0)?,
                    (
                        VmFacts {
                            power_state: row.get(1)?,
                            tools_running: row.get(2)?,
                            snapshots: snapshots
                                .and_then(|t| serde_json::from_str(&t).ok())
                                .unwrap_or(Value::Null),
                            datastores: Vec::new(),
                        },
                        names
                            .map(|n| n.split(',').map(str::to_string).collect())
                            .unwrap_or_default(),
                    ),
                );
            }
        }
        // Rows are read as they are; their metadata is parsed on every core afterwards.
        let mut raw: Vec<(RecordFacts, Option<Vec<u8>>)> = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, device_type, source_system, source_identifier, status, last_seen, \
                 metadata, machine_id FROM devices",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let text = |index, column| super::lossy_text(row, index, "devices", id, column);
                let source_identifier = text(4, "source_identifier")?.unwrap_or_default();
                let metadata = match row.get_ref(7)? {
                    rusqlite::types::ValueRef::Text(bytes) => Some(bytes.to_vec()),
                    _ => None,
                };
                let vm = vms.remove(&id).map(|(mut facts, names)| {
                    facts.datastores = names
                        .into_iter()
                        .filter_map(|n| datastores.get(&(source_identifier.clone(), n)).cloned())
                        .collect();
                    facts
                });
                let status: Option<String> = row.get(5)?;
                raw.push((
                    RecordFacts {
                        id,
                        name: text(1, "name")?.unwrap_or_default(),
                        device_type: parse_text_enum(row, 2)?,
                        source_system: text(3, "source_system")?.unwrap_or_default(),
                        source_identifier,
                        status: status
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(DeviceStatus::Unknown),
                        last_seen: row.get(6)?,
                        metadata: Value::Null,
                        machine_id: row.get(8)?,
                        vm,
                        volumes: owned.remove(&id).unwrap_or_default(),
                    },
                    metadata,
                ));
            }
        }
        // What is not JSON reads as no metadata (the store never writes such a row).
        let parsed: Vec<Value> = crate::machines::parallel_map(&raw, |(_, bytes)| {
            bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null)
        });
        let records: Vec<RecordFacts> = raw
            .into_iter()
            .zip(parsed)
            .map(|((mut record, _), metadata)| {
                record.metadata = metadata;
                record
            })
            .collect();
        let mut links = Vec::new();
        let mut stmt = conn.prepare_cached(
            "SELECT parent_device_id, child_device_id FROM device_relationships \
             WHERE relationship_type = 'same_as'",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            links.push((row.get(0)?, row.get(1)?));
        }
        Ok((records, links))
    }

    /// Makes `machines` and `devices.machine_id` what `computed` says: new machines inserted,
    /// changed ones rewritten, unused ones deleted, each record pointed at its machine; merges
    /// and splits audited. Rows whose content did not change are not written.
    /// `current`: each record's machine as [`Self::machine_inputs`] read it.
    pub(crate) fn store_machines(
        &self,
        computed: &Computed,
        current: &HashMap<i64, Option<i64>>,
        audit: &MachineAudit<'_>,
    ) -> Result<MachinesReport> {
        let conn = self.conn();
        // As stored, compared as text: parsing 40,000 rows of JSON back would cost more than
        // the comparison saves.
        let mut stored: HashMap<i64, StoredMachine> = HashMap::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, name_key, device_type, primary_device_id, status, health, \
                 reasons, power, conflicts, conflict_since FROM machines",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                stored.insert(
                    row.get(0)?,
                    StoredMachine {
                        name: row.get(1)?,
                        name_key: row.get(2)?,
                        device_type: row.get(3)?,
                        primary_device_id: row.get(4)?,
                        status: row.get(5)?,
                        health: row.get(6)?,
                        reasons: row.get(7)?,
                        power: row.get(8)?,
                        conflicts: row.get(9)?,
                        conflict_since: row.get(10)?,
                    },
                );
            }
        }
        let mut report = MachinesReport {
            machines: computed.machines.len(),
            ..MachinesReport::default()
        };
        let mut ids = Vec::with_capacity(computed.machines.len());
        let mut insert = conn.prepare_cached(
            "INSERT INTO machines (name, name_key, device_type, primary_device_id, status, health, \
             reasons, power, conflicts, conflict_since, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) RETURNING id",
        )?;
        let mut update = conn.prepare_cached(
            "UPDATE machines SET name = ?2, name_key = ?3, device_type = ?4, primary_device_id = ?5, \
             status = ?6, health = ?7, reasons = ?8, power = ?9, conflicts = ?10, \
             conflict_since = ?11, updated_at = ?12 WHERE id = ?1",
        )?;
        for machine in &computed.machines {
            let before = machine.id.and_then(|id| stored.get(&id));
            let reasons = list_text(&machine.reasons);
            let conflicts = list_text(&machine.conflicts);
            // The disagreement keeps its start while it stays the same disagreement.
            let conflict_since = match before {
                _ if conflicts.is_none() => None,
                Some(old) if old.conflicts == conflicts => old.conflict_since.clone(),
                _ => Some(audit.at.to_string()),
            };
            let name_key = crate::text::natural_key(&machine.name);
            match (machine.id, before) {
                (Some(id), Some(old)) => {
                    let same = old.name == machine.name
                        && old.name_key == name_key
                        && old.device_type == machine.device_type.as_str()
                        && old.primary_device_id == Some(machine.primary_device_id)
                        && old.status == machine.status.as_str()
                        && old.health == machine.health.as_str()
                        && old.reasons == reasons
                        && old.power == machine.power
                        && old.conflicts == conflicts
                        && old.conflict_since == conflict_since;
                    if !same {
                        update.execute(params![
                            id,
                            machine.name,
                            name_key,
                            machine.device_type.as_str(),
                            machine.primary_device_id,
                            machine.status.as_str(),
                            machine.health.as_str(),
                            reasons,
                            machine.power,
                            conflicts,
                            conflict_since,
                            audit.at,
                        ])?;
                        report.changed += 1;
                    }
                    ids.push(id);
                }
                _ => {
                    let id: i64 = insert.query_row(
                        params![
                            machine.name,
                            name_key,
                            machine.device_type.as_str(),
                            machine.primary_device_id,
                            machine.status.as_str(),
                            machine.health.as_str(),
                            reasons,
                            machine.power,
                            conflicts,
                            conflict_since,
                            audit.at,
                        ],
                        |r| r.get(0),
                    )?;
                    report.created += 1;
                    ids.push(id);
                }
            }
        }
        // Point records at their machines, only where that changed.
        let mut moves: Vec<(i64, i64)> = Vec::new();
        for (machine, id) in computed.machines.iter().zip(&ids) {
            for member in &machine.members {
                if current.get(member).copied().flatten() != Some(*id) {
                    moves.push((*member, *id));
                }
            }
        }
        for chunk in moves.chunks(400) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "UPDATE devices SET machine_id = given.column2 FROM (VALUES {}) AS given \
                 WHERE devices.id = given.column1",
                pairs.join(", ")
            );
            let values: Vec<&dyn rusqlite::ToSql> = chunk
                .iter()
                .flat_map(|(device, machine)| [device as &dyn rusqlite::ToSql, machine])
                .collect();
            conn.prepare_cached(&sql)?.execute(values.as_slice())?;
        }
        let kept: std::collections::HashSet<i64> = ids.iter().copied().collect();
        let mut delete = conn.prepare_cached("DELETE FROM machines WHERE id = ?1")?;
        for id in stored.keys() {
            if !kept.contains(id) {
                delete.execute([id])?;
                report.removed += 1;
            }
        }
        for change in &computed.changes {
            let (operation, into, from): (&str, Vec<usize>, Vec<i64>) = match change {
                IdentityChange::Merged { from, into } => ("merge", vec![*into], from.clone()),
                IdentityChange::Split { from, into } => ("split", into.clone(), vec![*from]),
            };
            if operation == "merge" {
                report.merged += 1;
            } else {
                report.split += 1;
            }
            let name_of = |id: &i64| stored.get(id).map(|m| m.name.clone());
            let old = json!({"machines": from.iter().map(|id| json!({"id": id, "name": name_of(id)})).collect::<Vec<_>>()});
            let new = json!({"machines": into.iter().map(|&g| {
                let m = &computed.machines[g];
                json!({"id": ids[g], "name": m.name, "records": m.members})
            }).collect::<Vec<_>>()});
            let device = into
                .first()
                .map(|&g| computed.machines[g].primary_device_id);
            self.record_history(&NewHistory {
                sync_id: audit.sync_id,
                source_system: "correlation",
                source_identifier: "",
                operation,
                device_id: device,
                change_type: "machine",
                old_value: old,
                new_value: new,
                performed_by: audit.performed_by,
                performed_at: audit.at,
                metadata: Value::Null,
            })?;
        }
        Ok(report)
    }
}

/// Every record as the machine computation reads it, and the `same_as` links (parent, child).
pub(crate) type MachineInputs = (Vec<RecordFacts>, Vec<(i64, i64)>);

/// A `machines` row as stored (JSON columns as text).
struct StoredMachine {
    name: String,
    name_key: String,
    device_type: String,
    primary_device_id: Option<i64>,
    status: String,
    health: String,
    reasons: Option<String>,
    power: Option<String>,
    conflicts: Option<String>,
    conflict_since: Option<String>,
}

/// Who recomputes machines, and under which run id the audit rows go.
pub(crate) struct MachineAudit<'a> {
    pub(crate) sync_id: &'a str,
    pub(crate) performed_by: &'a str,
    pub(crate) at: &'a str,
}

/// JSON text of a list, `NULL` when empty (most machines have no reasons and no conflicts).
fn list_text<T: Serialize>(items: &[T]) -> Option<String> {
    if items.is_empty() {
        None
    } else {
        serde_json::to_string(items).ok()
    }
}

impl Store {
    /// A filtered, sorted page of machines and how many match in all.
    pub fn machine_page(&self, query: &MachineQuery) -> Result<MachinePage> {
        let generation = self.generation()?;
        let mut cached = self.machine_index.borrow_mut();
        if cached
            .as_ref()
            .is_none_or(|index| index.generation() != generation)
        {
            // The unfiltered list by name (a dashboard's first frame) is read straight from
            // the name-key index, without building the machine index first.
            if let Some(page) = self.machine_page_by_name_key(query)? {
                return Ok(page);
            }
            *cached = Some(super::machine_index::MachineIndex::build(
                self.conn(),
                generation,
            )?);
        }
        let Some(index) = cached.as_ref() else {
            return Ok(MachinePage {
                machines: Vec::new(),
                total: 0,
            });
        };
        let (ids, total) = index.matches(query);
        drop(cached);
        let machines = self.machines_by_ids(&ids, &query.stale)?;
        Ok(MachinePage { machines, total })
    }

    /// The unfiltered page in name order from SQL, when every record has its machine (else
    /// `None`: records not yet correlated are only listed through the index).
    fn machine_page_by_name_key(&self, query: &MachineQuery) -> Result<Option<MachinePage>> {
        if !query.filter.is_empty() || query.sort != MachineSort::Name {
            return Ok(None);
        }
        let uncorrelated: bool = self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM devices WHERE machine_id IS NULL)")?
            .query_row([], |r| r.get(0))?;
        if uncorrelated {
            return Ok(None);
        }
        let total: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM machines")?
            .query_row([], |r| r.get(0))?;
        let direction = if query.descending { "DESC" } else { "ASC" };
        let limit = if query.limit == 0 {
            -1
        } else {
            query.limit as i64
        };
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT id FROM machines ORDER BY name_key {direction}, id {direction} LIMIT ?1 OFFSET ?2"
        ))?;
        let ids: Vec<i64> = stmt
            .query_map(params![limit, query.offset as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(MachinePage {
            machines: self.machines_by_ids(&ids, &query.stale)?,
            total: total as u64,
        }))
    }

    /// Builds the machine index for the current database state now, so the next query (the
    /// first keystroke of a filter) does not pay for it. A no-op when it is current.
    pub fn warm_machine_index(&self) -> Result<()> {
        let generation = self.generation()?;
        let mut cached = self.machine_index.borrow_mut();
        if cached
            .as_ref()
            .is_none_or(|index| index.generation() != generation)
        {
            *cached = Some(super::machine_index::MachineIndex::build(
                self.conn(),
                generation,
            )?);
        }
        Ok(())
    }

    /// Machines by id (negative: a record not yet correlated), in the order given, with their
    /// records and the reasons of `stale` sources added.
    pub fn machines_by_ids(
        &self,
        ids: &[i64],
        stale: &BTreeMap<String, String>,
    ) -> Result<Vec<Machine>> {
        let (positive, negative): (Vec<i64>, Vec<i64>) = ids.iter().partition(|id| **id > 0);
        let mut found: HashMap<i64, Machine> = HashMap::with_capacity(ids.len());
        for chunk in positive.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let mut stmt = self.conn().prepare_cached(&format!(
                "SELECT {MACHINE_COLUMNS} FROM machines WHERE id IN ({placeholders})"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(chunk), machine_from_row)?;
            for row in rows {
                let machine = row?;
                found.insert(machine.id, machine);
            }
            let mut stmt = self.conn().prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS}, machine_id FROM devices WHERE machine_id IN ({placeholders})"
            ))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(chunk))?;
            while let Some(row) = rows.next()? {
                let device = device_from_row(row)?;
                let machine_id: i64 = row.get(12)?;
                if let Some(machine) = found.get_mut(&machine_id) {
                    machine.records.push(record_of(&device));
                }
            }
        }
        let devices = super::name_index::devices_by_ids(
            self.conn(),
            &negative.iter().map(|id| -id).collect::<Vec<_>>(),
        )?;
        for device in &devices {
            found.insert(-device.id, provisional(device));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(mut machine) = found.remove(id) else {
                continue;
            };
            let primary = machine.primary_device_id;
            machine.records.sort_by(|a, b| {
                (Some(b.device_id) == primary)
                    .cmp(&(Some(a.device_id) == primary))
                    .then(
                        (a.status != DeviceStatus::Active).cmp(&(b.status != DeviceStatus::Active)),
                    )
                    .then(a.source_system.cmp(&b.source_system))
                    .then(a.device_id.cmp(&b.device_id))
            });
            machine.last_seen = machine
                .records
                .iter()
                .filter_map(|r| r.last_seen.clone())
                .max();
            let (health, reasons) = crate::machines::with_stale_sources(
                machine.health,
                &machine.reasons,
                &machine.sources(),
                stale,
            );
            machine.health = health;
            machine.reasons = reasons;
            out.push(machine);
        }
        Ok(out)
    }

    /// One machine by id.
    pub fn machine(&self, id: i64, stale: &BTreeMap<String, String>) -> Result<Option<Machine>> {
        Ok(self.machines_by_ids(&[id], stale)?.pop())
    }

    /// The machine a record belongs to (its own, uncorrelated, when it has none yet).
    pub fn machine_of_device(
        &self,
        device_id: i64,
        stale: &BTreeMap<String, String>,
    ) -> Result<Option<Machine>> {
        let machine: Option<Option<i64>> = self
            .conn()
            .prepare_cached(
                "SELECT m.id FROM devices d LEFT JOIN machines m ON m.id = d.machine_id WHERE d.id = ?1",
            )?
            .query_row([device_id], |r| r.get(0))
            .optional()?;
        match machine {
            None => Ok(None),
            Some(Some(id)) => self.machine(id, stale),
            Some(None) => self.machine(-device_id, stale),
        }
    }

    /// Machines any of whose records is named `name` (case-insensitively), for lookups by
    /// name on the command line; each machine once.
    pub fn machines_named(
        &self,
        name: &str,
        stale: &BTreeMap<String, String>,
    ) -> Result<Vec<Machine>> {
        let mut ids: Vec<i64> = Vec::new();
        for device in self.devices_named(name)? {
            if let Some(machine) = self.machine_of_device(device.id, &BTreeMap::new())?
                && !ids.contains(&machine.id)
            {
                ids.push(machine.id);
            }
        }
        self.machines_by_ids(&ids, stale)
    }

    /// Machines whose sources disagree, the most recent disagreement first.
    pub fn conflicting_machines(&self, stale: &BTreeMap<String, String>) -> Result<Vec<Machine>> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT id FROM machines WHERE conflicts IS NOT NULL \
                 ORDER BY conflict_since DESC, name_key, id",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        self.machines_by_ids(&ids, stale)
    }

    /// How many machines there are of each type, status and health (records not yet
    /// correlated count as machines of their own, `ok`).
    pub fn machine_counts(&self) -> Result<Vec<MachineCount>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT device_type, status, health, COUNT(*) FROM machines \
             GROUP BY device_type, status, health \
             UNION ALL SELECT device_type, status, 'ok', COUNT(*) FROM devices \
             WHERE machine_id IS NULL GROUP BY device_type, status",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(MachineCount {
                device_type: parse_text_enum(r, 0)?,
                status: parse_text_enum(r, 1)?,
                health: parse_text_enum(r, 2)?,
                count: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// How many machines have one type, status and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineCount {
    pub device_type: DeviceType,
    pub status: DeviceStatus,
    pub health: Health,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_are_named_and_headed() {
        for sort in MachineSort::ALL {
            assert_eq!(
                MachineSort::named(&sort.heading().replace(' ', "_")),
                Some(sort)
            );
        }
    }
}
