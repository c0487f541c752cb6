//! The inventory as it was: records, links and source freshness at a past time, rebuilt from
//! the audit trail.
//!
//! Every record change is audited with the record's whole state (`device` rows: name, type,
//! status, metadata; `vm`, `volume` and `interfaces` rows: the whole row), every link added or
//! removed, every status change, every run. So the state at `at` is each record's newest row
//! of each kind at or before `at`. What the trail does not hold, and so is not rebuilt: a
//! record's exact `last_seen` (a sync confirming a record writes no row; the newest successful
//! run of its source stands in), and records older than the trail itself (a database that
//! lost its history to `db maintain`'s retention, or rows imported without it), which appear
//! as they are now and are counted in [`PastRecords::unreconstructed`].

use super::{Result, SourceStatus, Store};
use crate::machines::{RecordFacts, VmFacts, VolumeUse};
use crate::model::{DeviceStatus, DeviceType};
use rusqlite::params;
use serde_json::Value;
use std::collections::HashMap;

/// Everything the machine computation needs, as it was at a time.
#[derive(Debug, Clone, Default)]
pub struct PastRecords {
    /// The records then, as the machine computation reads them.
    pub facts: Vec<RecordFacts>,
    /// Each record's source id (same order as `facts`).
    pub source_ids: Vec<String>,
    /// `same_as` links as (parent, child) record ids.
    pub same_as: Vec<(i64, i64)>,
    /// Every other link then: (parent, child, type, metadata).
    pub links: Vec<(i64, i64, String, Value)>,
    /// Interfaces per record, as its newest `interfaces` row then held them.
    pub interfaces: HashMap<i64, Value>,
    /// Records with no audited state at all, shown as they are now.
    pub unreconstructed: usize,
}

/// A record's newest row of a kind: (row id, operation, new value).
type NewestRow = (i64, String, Option<String>);

/// Each record's newest audit row of `change_type` at or before `at`: id → (row id, operation,
/// new value). The index on (change_type, device_id, performed_at) serves it.
fn newest_rows(store: &Store, change_type: &str, at: &str) -> Result<HashMap<i64, NewestRow>> {
    let mut stmt = store.conn().prepare_cached(
        "SELECT h.device_id, h.id, COALESCE(h.operation, ''), h.new_value FROM \
         (SELECT device_id, max(id) AS id FROM sync_history \
          WHERE change_type = ?1 AND device_id IS NOT NULL AND performed_at <= ?2 \
          GROUP BY device_id) newest JOIN sync_history h ON h.id = newest.id",
    )?;
    let mut rows = stmt.query(params![change_type, at])?;
    let mut out = HashMap::new();
    while let Some(row) = rows.next()? {
        out.insert(row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?));
    }
    Ok(out)
}

impl Store {
    /// The records, links and interfaces as they were at `at` (a database timestamp).
    pub fn records_at(&self, at: &str) -> Result<PastRecords> {
        let devices = newest_rows(self, "device", at)?;
        // The states are parsed on every core: a week back is 100,000 of them.
        let states: Vec<(&i64, &NewestRow)> = devices.iter().collect();
        let parsed = crate::machines::parallel_map(&states, |(_, (_, _, text))| parse_text(text));
        let mut parsed: HashMap<i64, Value> =
            states.iter().map(|(id, _)| **id).zip(parsed).collect();
        let statuses = newest_rows(self, "status", at)?;
        let vms = newest_rows(self, "vm", at)?;
        let interfaces = newest_rows(self, "interfaces", at)?;
        let confirmed = self.last_success_by_source(at)?;
        // Every record with audited state at any time: one without any by `at` did not exist.
        let audited: std::collections::HashSet<i64> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT DISTINCT device_id FROM sync_history WHERE change_type = 'device' \
                 AND device_id IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };

        // Volumes: replay their rows in order, keyed by source key; owned ones by device.
        let mut volumes: HashMap<(String, String, String), Value> = HashMap::new();
        {
            let mut stmt = self.conn().prepare_cached(
                "SELECT COALESCE(operation, ''), old_value, new_value FROM sync_history \
                 WHERE change_type = 'volume' AND performed_at <= ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([at])?;
            while let Some(row) = rows.next()? {
                let operation: String = row.get(0)?;
                let old = parse(row.get(1)?);
                let new = parse(row.get(2)?);
                let value = if new.is_null() { &old } else { &new };
                let key = (
                    text(&value["source_system"]),
                    text(&value["source_identifier"]),
                    text(&value["source_id"]),
                );
                if operation == "delete" || new.is_null() {
                    volumes.remove(&key);
                } else {
                    volumes.insert(key, new);
                }
            }
        }
        let use_of = |v: &Value| VolumeUse {
            name: text(&v["name"]),
            volume_type: v["volume_type"].as_str().map(str::to_string),
            capacity_bytes: v["capacity_bytes"].as_i64(),
            used_bytes: v["used_bytes"].as_i64(),
        };
        let mut datastores: HashMap<(String, String), VolumeUse> = HashMap::new();
        let mut owned: HashMap<i64, Vec<VolumeUse>> = HashMap::new();
        for ((system, instance, _), value) in &volumes {
            if system == "vcenter" && value["volume_type"].as_str() == Some("datastore") {
                datastores.insert((instance.clone(), text(&value["name"])), use_of(value));
            }
            if let Some(device) = value["device_id"].as_i64() {
                owned.entry(device).or_default().push(use_of(value));
            }
        }

        let mut out = PastRecords::default();
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, name, device_type, source_system, source_identifier, source_id, status, \
             metadata, machine_id, first_seen, last_seen FROM devices ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let source_system: String = row.get(3)?;
            let source_identifier: String = row.get(4)?;
            let (name, device_type, mut status, metadata, last_change) = match devices.get(&id) {
                Some((_, operation, _)) if operation == "delete" => continue,
                Some((row_id, _, _)) => {
                    let mut state = parsed.remove(&id).unwrap_or(Value::Null);
                    let mut status = state["status"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(DeviceStatus::Unknown);
                    if let Some((status_id, _, change)) = statuses.get(&id)
                        && status_id > row_id
                        && let Some(s) = parse_text(change)["status"].as_str()
                    {
                        status = s.parse().unwrap_or(status);
                    }
                    (
                        text(&state["name"]),
                        state["device_type"]
                            .as_str()
                            .and_then(|t| t.parse::<DeviceType>().ok()),
                        status,
                        state["metadata"].take(),
                        None::<String>,
                    )
                }
                None if audited.contains(&id) => continue, // added after `at`
                None => {
                    let first_seen: Option<String> = row.get(9)?;
                    if first_seen.as_deref().is_some_and(|f| f > at) {
                        continue;
                    }
                    out.unreconstructed += 1;
                    let status: Option<String> = row.get(6)?;
                    let metadata: Option<String> = row.get(7)?;
                    let device_type: String = row.get(2)?;
                    (
                        row.get(1)?,
                        device_type.parse().ok(),
                        status
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(DeviceStatus::Unknown),
                        parse(metadata),
                        row.get(10)?,
                    )
                }
            };
            let Some(device_type) = device_type else {
                continue;
            };
            if status == DeviceStatus::Unknown {
                status = DeviceStatus::Active;
            }
            let last_seen = last_change.or_else(|| {
                confirmed
                    .get(&(source_system.clone(), source_identifier.clone()))
                    .cloned()
            });
            let vm = vms.get(&id).map(|(_, _, value)| {
                let v = parse_text(value);
                let names: Vec<String> = v["disks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["datastore"].as_str().map(str::to_string))
                    .collect();
                VmFacts {
                    power_state: v["power_state"].as_str().map(str::to_string),
                    tools_running: v["tools_running"].as_bool(),
                    snapshots: match &v["snapshots"] {
                        Value::Array(items) if items.is_empty() => Value::Null,
                        other => other.clone(),
                    },
                    datastores: names
                        .into_iter()
                        .filter_map(|n| datastores.get(&(source_identifier.clone(), n)).cloned())
                        .collect(),
                }
            });
            if let Some((_, _, value)) = interfaces.get(&id) {
                out.interfaces.insert(id, parse_text(value));
            }
            out.source_ids.push(row.get(5)?);
            out.facts.push(RecordFacts {
                id,
                name,
                device_type,
                source_system,
                source_identifier,
                status,
                last_seen,
                metadata,
                machine_id: row.get(8)?,
                vm,
                volumes: owned.remove(&id).unwrap_or_default(),
            });
        }

        // Links: replay every add and delete up to `at` (the ids read in SQL, JSON parsed only
        // for the metadata a link has).
        let mut links: HashMap<(i64, i64, String), Value> = HashMap::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT COALESCE(operation, ''), \
             json_extract(COALESCE(new_value, old_value), '$.parent_device_id'), \
             json_extract(COALESCE(new_value, old_value), '$.child_device_id'), \
             json_extract(COALESCE(new_value, old_value), '$.relationship_type'), \
             json_extract(COALESCE(new_value, old_value), '$.metadata') \
             FROM sync_history WHERE change_type = 'relationship' AND performed_at <= ?1 \
             AND json_valid(COALESCE(new_value, old_value)) ORDER BY id",
        )?;
        let mut rows = stmt.query([at])?;
        while let Some(row) = rows.next()? {
            let operation: String = row.get(0)?;
            let (Some(parent), Some(child)) =
                (row.get::<_, Option<i64>>(1)?, row.get::<_, Option<i64>>(2)?)
            else {
                continue;
            };
            let kind: Option<String> = row.get(3)?;
            let key = (parent, child, kind.unwrap_or_default());
            if operation == "delete" {
                links.remove(&key);
            } else {
                let metadata: Option<String> = row.get(4)?;
                links.insert(key, parse(metadata));
            }
        }
        let present: std::collections::HashSet<i64> = out.facts.iter().map(|r| r.id).collect();
        for ((parent, child, kind), metadata) in links {
            if !(present.contains(&parent) && present.contains(&child)) {
                continue;
            }
            if kind == "same_as" {
                out.same_as.push((parent, child));
            } else {
                out.links.push((parent, child, kind, metadata));
            }
        }
        out.same_as.sort_unstable();
        out.links
            .sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        Ok(out)
    }

    /// When each source instance's newest successful run at or before `at` finished.
    fn last_success_by_source(&self, at: &str) -> Result<HashMap<(String, String), String>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT source_system, source_identifier, max(finished_at) FROM sync_runs \
             WHERE status = 'success' AND finished_at <= ?1 GROUP BY source_system, source_identifier",
        )?;
        let mut rows = stmt.query([at])?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next()? {
            if let Some(finished) = row.get::<_, Option<String>>(2)? {
                out.insert((row.get(0)?, row.get(1)?), finished);
            }
        }
        Ok(out)
    }

    /// Each source instance's sync status as it stood at `at`, from its runs up to then, for
    /// judging which sources were stale then.
    pub fn source_statuses_at(&self, at: &str) -> Result<Vec<SourceStatus>> {
        let success = self.last_success_by_source(at)?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT source_system, source_identifier, status, started_at, finished_at FROM sync_runs r \
             WHERE started_at <= ?1 AND id = (SELECT max(id) FROM sync_runs r2 \
               WHERE r2.source_system = r.source_system AND r2.source_identifier = r.source_identifier \
               AND r2.started_at <= ?1)",
        )?;
        let mut rows = stmt.query([at])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let system: String = row.get(0)?;
            let instance: String = row.get(1)?;
            out.push(SourceStatus {
                last_sync_complete: success.get(&(system.clone(), instance.clone())).cloned(),
                source_system: system,
                source_identifier: instance,
                last_sync_start: row.get(3)?,
                last_sync_status: Some(row.get(2)?),
                sync_duration_seconds: None,
                devices_added: None,
                devices_updated: None,
                devices_removed: None,
                error_message: None,
                latest_run: None,
            });
        }
        Ok(out)
    }
}

fn parse(text: Option<String>) -> Value {
    parse_text(&text)
}

fn parse_text(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}
