//! `devices`: upsert keyed by (source_system, source_identifier, source_id), pages for the list
//! view, one device with everything related to it.

use super::{
    Change, ConfigVersion, FactRow, HistoryEntry, InterfaceRow, Related, Result, Store, VmRow,
    VolumeRow, Writer, json_text, parse_text_enum,
};
use crate::model::{DeviceRecord, DeviceStatus, DeviceType};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// One row of `devices`. `metadata` is the stored JSON text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub id: i64,
    pub name: String,
    pub device_type: DeviceType,
    pub source_system: String,
    pub source_identifier: String,
    pub source_id: String,
    pub status: DeviceStatus,
    pub metadata: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl Device {
    /// The metadata as JSON (`null` when absent or unparseable, which the store never writes).
    pub fn metadata_json(&self) -> serde_json::Value {
        self.metadata
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// The fields reconcile compares and audits, as JSON.
    pub fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "device_type": self.device_type,
            "status": self.status,
            "metadata": self.metadata_json(),
        })
    }
}

pub(crate) const DEVICE_COLUMNS: &str = "id, name, device_type, source_system, source_identifier, \
     source_id, status, metadata, first_seen, last_seen, created_at, updated_at";

pub(crate) fn device_from_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    let status: Option<String> = row.get(6)?;
    Ok(Device {
        id: row.get(0)?,
        name: row.get(1)?,
        device_type: parse_text_enum(row, 2)?,
        source_system: row.get(3)?,
        source_identifier: row.get(4)?,
        source_id: row.get(5)?,
        status: status
            .and_then(|s| s.parse().ok())
            .unwrap_or(DeviceStatus::Unknown),
        metadata: row.get(7)?,
        first_seen: row.get(8)?,
        last_seen: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

/// The result of upserting one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    pub id: i64,
    pub change: DeviceChange,
}

pub type DeviceChange = Change<Device>;

impl Writer<'_> {
    /// Inserts or updates the device with the record's unique key and marks it active and seen
    /// at `seen_at`. An identical active record only gets its `last_seen` bumped.
    pub fn upsert_device(&self, record: &DeviceRecord, seen_at: &str) -> Result<Upserted> {
        let conn = self.conn();
        let existing = conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices \
                 WHERE source_system = ?1 AND source_identifier = ?2 AND source_id = ?3"
            ))?
            .query_row(
                params![
                    record.source_system,
                    record.source_identifier,
                    record.source_id
                ],
                device_from_row,
            )
            .optional()?;
        let metadata = json_text(&record.metadata);
        let Some(before) = existing else {
            conn.prepare_cached(
                "INSERT INTO devices (name, device_type, source_system, source_identifier, \
                 source_id, status, metadata, first_seen, last_seen, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?7, ?7, ?7)",
            )?
            .execute(params![
                record.name,
                record.device_type.as_str(),
                record.source_system,
                record.source_identifier,
                record.source_id,
                metadata,
                seen_at
            ])?;
            return Ok(Upserted {
                id: conn.last_insert_rowid(),
                change: Change::Added,
            });
        };
        let same = before.name == record.name
            && before.device_type == record.device_type
            && before.status == DeviceStatus::Active
            && before.metadata == metadata;
        if same {
            conn.prepare_cached("UPDATE devices SET last_seen = ?2 WHERE id = ?1")?
                .execute(params![before.id, seen_at])?;
            return Ok(Upserted {
                id: before.id,
                change: Change::Unchanged,
            });
        }
        conn.prepare_cached(
            "UPDATE devices SET name = ?2, device_type = ?3, status = 'active', metadata = ?4, \
             last_seen = ?5, updated_at = ?5 WHERE id = ?1",
        )?
        .execute(params![
            before.id,
            record.name,
            record.device_type.as_str(),
            metadata,
            seen_at
        ])?;
        Ok(Upserted {
            id: before.id,
            change: Change::Updated { before },
        })
    }

    /// Sets a device's status; returns the previous status, or `None` if the device is unknown.
    pub fn set_device_status(
        &self,
        device_id: i64,
        status: DeviceStatus,
        at: &str,
    ) -> Result<Option<DeviceStatus>> {
        let conn = self.conn();
        let previous: Option<Option<String>> = conn
            .prepare_cached("SELECT status FROM devices WHERE id = ?1")?
            .query_row([device_id], |r| r.get(0))
            .optional()?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        conn.prepare_cached("UPDATE devices SET status = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![device_id, status.as_str(), at])?;
        Ok(Some(
            previous
                .and_then(|s| s.parse().ok())
                .unwrap_or(DeviceStatus::Unknown),
        ))
    }

    /// Deletes a device and, through the foreign keys, everything that hangs off it.
    pub fn delete_device(&self, device_id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM devices WHERE id = ?1")?
            .execute([device_id])?
            > 0)
    }
}

/// The column a device list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum DeviceSort {
    #[default]
    Name,
    Type,
    Source,
    Status,
    LastSeen,
}

impl DeviceSort {
    fn column(self) -> &'static str {
        match self {
            DeviceSort::Name => "name",
            DeviceSort::Type => "device_type",
            DeviceSort::Source => "source_system",
            DeviceSort::Status => "status",
            DeviceSort::LastSeen => "last_seen",
        }
    }
}

/// A filtered, sorted page of devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Keep only names that do *not* contain `name_contains`.
    pub invert_name: bool,
    pub device_type: Option<DeviceType>,
    pub source_system: Option<String>,
    pub source_identifier: Option<String>,
    pub status: Option<DeviceStatus>,
    pub sort: DeviceSort,
    pub descending: bool,
    pub offset: u64,
    /// `0` means no limit.
    pub limit: u64,
}

/// A page of devices and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct DevicePage {
    pub devices: Vec<Device>,
    pub total: u64,
}

impl DeviceQuery {
    fn where_clause(&self) -> (String, Vec<String>) {
        let mut terms = Vec::new();
        let mut values = Vec::new();
        if let Some(text) = self.name_contains.as_deref().filter(|t| !t.is_empty()) {
            values.push(format!("%{}%", escape_like(text)));
            let not = if self.invert_name { "NOT " } else { "" };
            terms.push(format!("name {not}LIKE ?{} ESCAPE '\\'", values.len()));
        }
        if let Some(device_type) = self.device_type {
            values.push(device_type.as_str().to_string());
            terms.push(format!("device_type = ?{}", values.len()));
        }
        if let Some(source) = &self.source_system {
            values.push(source.clone());
            terms.push(format!("source_system = ?{}", values.len()));
        }
        if let Some(instance) = &self.source_identifier {
            values.push(instance.clone());
            terms.push(format!("source_identifier = ?{}", values.len()));
        }
        if let Some(status) = self.status {
            values.push(status.as_str().to_string());
            terms.push(format!("status = ?{}", values.len()));
        }
        if terms.is_empty() {
            (String::new(), values)
        } else {
            (format!(" WHERE {}", terms.join(" AND ")), values)
        }
    }
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Everything known about one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceDetail {
    pub device: Device,
    pub vm: Option<VmRow>,
    pub interfaces: Vec<InterfaceRow>,
    pub facts: Vec<FactRow>,
    pub volumes: Vec<VolumeRow>,
    pub related: Vec<Related>,
    pub configs: Vec<ConfigVersion>,
    pub history: Vec<HistoryEntry>,
}

impl Store {
    /// One page of devices matching `query`, in the requested order (ties broken by id).
    pub fn query_devices(&self, query: &DeviceQuery) -> Result<Vec<Device>> {
        let (filter, values) = query.where_clause();
        let direction = if query.descending { "DESC" } else { "ASC" };
        let limit = if query.limit == 0 {
            -1
        } else {
            query.limit as i64
        };
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices{filter} ORDER BY {col} {direction}, id {direction} \
             LIMIT {limit} OFFSET {offset}",
            col = query.sort.column(),
            offset = query.offset
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), device_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// How many devices match `query`'s filters (paging ignored).
    pub fn count_devices(&self, query: &DeviceQuery) -> Result<u64> {
        let (filter, values) = query.where_clause();
        let sql = format!("SELECT COUNT(*) FROM devices{filter}");
        let count: i64 = self
            .conn()
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
        Ok(count as u64)
    }

    /// A page and the total count of matches.
    pub fn device_page(&self, query: &DeviceQuery) -> Result<DevicePage> {
        Ok(DevicePage {
            devices: self.query_devices(query)?,
            total: self.count_devices(query)?,
        })
    }

    /// One device by id.
    pub fn device(&self, device_id: i64) -> Result<Option<Device>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([device_id], device_from_row)
            .optional()?)
    }

    /// One device by its unique source key.
    pub fn device_by_source_key(
        &self,
        source_system: &str,
        source_identifier: &str,
        source_id: &str,
    ) -> Result<Option<Device>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices \
                 WHERE source_system = ?1 AND source_identifier = ?2 AND source_id = ?3"
            ))?
            .query_row(
                params![source_system, source_identifier, source_id],
                device_from_row,
            )
            .optional()?)
    }

    /// Devices whose name equals `name` exactly, case-insensitively; for CLI lookups by name.
    pub fn devices_named(&self, name: &str) -> Result<Vec<Device>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE name = ?1 COLLATE NOCASE ORDER BY id"
        ))?;
        let rows = stmt.query_map([name], device_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Ids and source ids of a source instance's devices in `status`; the sweep's candidates.
    pub fn device_keys_of_source(
        &self,
        source_system: &str,
        source_identifier: &str,
        status: DeviceStatus,
    ) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, source_id FROM devices \
             WHERE source_system = ?1 AND source_identifier = ?2 AND status = ?3",
        )?;
        let rows = stmt.query_map(
            params![source_system, source_identifier, status.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Everything known about one device, or `None` if there is no such device.
    pub fn device_detail(&self, device_id: i64) -> Result<Option<DeviceDetail>> {
        let Some(device) = self.device(device_id)? else {
            return Ok(None);
        };
        Ok(Some(DeviceDetail {
            vm: self.vm(device_id)?,
            interfaces: self.interfaces(device_id)?,
            facts: self.facts(device_id)?,
            volumes: self.volumes_of_device(device_id)?,
            related: self.related(device_id)?,
            configs: self.config_versions(device_id)?,
            history: self.history(Some(device_id), 200)?,
            device,
        }))
    }
}
