//! Reads shaped for the dashboard: counts for the header, the sources behind each listed row,
//! the devices that have configs, and the database generation that tells a viewer to refresh.

use super::devices::{DEVICE_COLUMNS, device_from_row};
use super::{Device, Result, Store, parse_text_enum};
use crate::model::{DeviceStatus, DeviceType};
use std::collections::HashMap;

/// How many devices there are of one type in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCount {
    pub device_type: DeviceType,
    pub status: DeviceStatus,
    pub count: u64,
}

/// A device with stored config versions.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredDevice {
    pub device: Device,
    pub versions: u64,
    /// When the newest version was retrieved.
    pub latest: Option<String>,
}

impl Store {
    /// Device counts by type and status.
    pub fn device_counts(&self) -> Result<Vec<DeviceCount>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT device_type, status, COUNT(*) FROM devices GROUP BY device_type, status",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(DeviceCount {
                device_type: parse_text_enum(row, 0)?,
                status: parse_text_enum(row, 1)?,
                count: row.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// For each of `ids`, the source systems that know the machine: its own and those of the
    /// records linked to it by `same_as` (one hop, which is how correlation links them).
    pub fn sources_of(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let placeholders = vec!["?"; ids.len()].join(",");
        let sql = format!(
            "SELECT d.id, d.source_system FROM devices d WHERE d.id IN ({placeholders}) \
             UNION ALL \
             SELECT r.parent_device_id, o.source_system FROM device_relationships r \
               JOIN devices o ON o.id = r.child_device_id \
               WHERE r.relationship_type = 'same_as' AND r.parent_device_id IN ({placeholders}) \
             UNION ALL \
             SELECT r.child_device_id, o.source_system FROM device_relationships r \
               JOIN devices o ON o.id = r.parent_device_id \
               WHERE r.relationship_type = 'same_as' AND r.child_device_id IN ({placeholders})"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let params: Vec<&i64> = ids.iter().chain(ids).chain(ids).collect();
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (id, source) = row?;
            let sources = out.entry(id).or_default();
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
        for sources in out.values_mut() {
            sources.sort_unstable();
        }
        Ok(out)
    }

    /// Devices with at least one stored config, most recently changed first.
    pub fn configured_devices(&self) -> Result<Vec<ConfiguredDevice>> {
        let columns = DEVICE_COLUMNS
            .split(", ")
            .map(|c| format!("d.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {columns}, c.versions, c.latest FROM devices d \
             JOIN (SELECT device_id, COUNT(*) AS versions, MAX(retrieved_at) AS latest \
                   FROM device_configs GROUP BY device_id) c ON c.device_id = d.id \
             ORDER BY c.latest DESC, d.name"
        ))?;
        let width = DEVICE_COLUMNS.split(',').count();
        let rows = stmt.query_map([], |row| {
            Ok(ConfiguredDevice {
                device: device_from_row(row)?,
                versions: row.get::<_, i64>(width)? as u64,
                latest: row.get(width + 1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Identifies the database state: it changes whenever anyone (this connection or another
    /// process) commits, so a viewer polls it and re-reads only when it moved.
    pub fn data_generation(&self) -> Result<(i64, u64)> {
        self.generation()
    }
}
