//! Per-device detail tables: `vms`, `network_interfaces`, `server_facts`, `storage_volumes`.

use super::{Change, Result, Store, Writer, json_text, parse_json};
use crate::model::{InterfaceRecord, VmRecord, VolumeRecord};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use std::collections::BTreeMap;

/// A `vms` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmRow {
    pub(crate) device_id: i64,
    #[serde(flatten)]
    pub vm: VmRecord,
}

/// A `network_interfaces` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceRow {
    pub(crate) id: i64,
    pub(crate) device_id: i64,
    #[serde(flatten)]
    pub interface: InterfaceRecord,
}

/// A `server_facts` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactRow {
    pub name: String,
    pub value: Option<String>,
    pub(crate) collected_at: Option<String>,
}

/// A `storage_volumes` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeRow {
    pub id: i64,
    #[serde(flatten)]
    pub volume: VolumeRecord,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
}

/// How a device's facts changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FactsDiff {
    pub added: Vec<(String, String)>,
    pub changed: Vec<(String, Option<String>, String)>,
    pub removed: Vec<(String, Option<String>)>,
}

impl FactsDiff {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

const VM_COLUMNS: &str = "device_id, instance_uuid, guest_os, cpu_count, memory_mb, power_state, \
     tools_running, ip_addresses, disks, snapshots, total_disk_capacity_bytes, total_snapshot_size_bytes";

fn vm_from_row(row: &Row<'_>) -> rusqlite::Result<VmRow> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let text: Option<String> = row.get(i)?;
        parse_json("vms", text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok(VmRow {
        device_id: row.get(0)?,
        vm: VmRecord {
            instance_uuid: row.get(1)?,
            guest_os: row.get(2)?,
            cpu_count: row.get(3)?,
            memory_mb: row.get(4)?,
            power_state: row.get(5)?,
            tools_running: row.get(6)?,
            ip_addresses: json(7)?,
            disks: json(8)?,
            snapshots: json(9)?,
            total_disk_capacity_bytes: row.get(10)?,
            total_snapshot_size_bytes: row.get(11)?,
        },
    })
}

fn interface_from_row(row: &Row<'_>) -> rusqlite::Result<InterfaceRow> {
    let ips: Option<String> = row.get(4)?;
    let metadata: Option<String> = row.get(8)?;
    Ok(InterfaceRow {
        id: row.get(0)?,
        device_id: row.get(1)?,
        interface: InterfaceRecord {
            interface_name: row.get(2)?,
            mac_address: row.get(3)?,
            ip_addresses: ips
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            speed_mbps: row.get(5)?,
            status: row.get(6)?,
            interface_type: row.get(7)?,
            metadata: metadata
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null),
        },
    })
}

const VOLUME_COLUMNS: &str = "id, device_id, source_system, source_identifier, source_id, name, \
     volume_type, capacity_bytes, used_bytes, storage_array, raid_level, thin_provisioned, metadata, \
     created_at, updated_at";

fn volume_from_row(row: &Row<'_>) -> rusqlite::Result<VolumeRow> {
    let metadata: Option<String> = row.get(12)?;
    Ok(VolumeRow {
        id: row.get(0)?,
        volume: VolumeRecord {
            device_id: row.get(1)?,
            source_system: row.get(2)?,
            source_identifier: row.get(3)?,
            source_id: row.get(4)?,
            name: row.get(5)?,
            volume_type: row.get(6)?,
            capacity_bytes: row.get(7)?,
            used_bytes: row.get(8)?,
            storage_array: row.get(9)?,
            raid_level: row.get(10)?,
            thin_provisioned: row.get(11)?,
            metadata: metadata
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null),
        },
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

impl Writer<'_> {
    /// Writes the VM details of a device, if they differ from what is stored.
    pub fn upsert_vm(&self, device_id: i64, vm: &VmRecord) -> Result<Change<VmRecord>> {
        let conn = self.conn();
        let before = conn
            .prepare_cached(&format!(
                "SELECT {VM_COLUMNS} FROM vms WHERE device_id = ?1"
            ))?
            .query_row([device_id], vm_from_row)
            .optional()?;
        if before.as_ref().is_some_and(|row| row.vm == *vm) {
            return Ok(Change::Unchanged);
        }
        conn.prepare_cached(
            "INSERT INTO vms (device_id, instance_uuid, guest_os, cpu_count, memory_mb, power_state, \
             tools_running, ip_addresses, disks, snapshots, total_disk_capacity_bytes, \
             total_snapshot_size_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT (device_id) DO UPDATE SET instance_uuid = excluded.instance_uuid, \
             guest_os = excluded.guest_os, cpu_count = excluded.cpu_count, \
             memory_mb = excluded.memory_mb, power_state = excluded.power_state, \
             tools_running = excluded.tools_running, ip_addresses = excluded.ip_addresses, \
             disks = excluded.disks, snapshots = excluded.snapshots, \
             total_disk_capacity_bytes = excluded.total_disk_capacity_bytes, \
             total_snapshot_size_bytes = excluded.total_snapshot_size_bytes",
        )?
        .execute(params![
            device_id,
            vm.instance_uuid,
            vm.guest_os,
            vm.cpu_count,
            vm.memory_mb,
            vm.power_state,
            vm.tools_running,
            json_text(&vm.ip_addresses),
            json_text(&vm.disks),
            json_text(&vm.snapshots),
            vm.total_disk_capacity_bytes,
            vm.total_snapshot_size_bytes,
        ])?;
        Ok(match before {
            None => Change::Added,
            Some(row) => Change::Updated { before: row.vm },
        })
    }

    /// Makes a device's interfaces exactly `interfaces` (compared as a set ordered by name);
    /// rewrites them only when something differs.
    pub fn replace_interfaces(
        &self,
        device_id: i64,
        interfaces: &[InterfaceRecord],
    ) -> Result<Change<Vec<InterfaceRecord>>> {
        let before: Vec<InterfaceRecord> = read_interfaces(self.conn(), device_id)?
            .into_iter()
            .map(|row| row.interface)
            .collect();
        let mut wanted = interfaces.to_vec();
        wanted.sort_by(|a, b| a.interface_name.cmp(&b.interface_name));
        if before == wanted {
            return Ok(Change::Unchanged);
        }
        let conn = self.conn();
        conn.prepare_cached("DELETE FROM network_interfaces WHERE device_id = ?1")?
            .execute([device_id])?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO network_interfaces (device_id, interface_name, mac_address, ip_addresses, \
             speed_mbps, status, interface_type, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for iface in &wanted {
            let ips = serde_json::to_string(&iface.ip_addresses).map_err(|source| {
                super::Error::Json {
                    column: "network_interfaces.ip_addresses",
                    source,
                }
            })?;
            insert.execute(params![
                device_id,
                iface.interface_name,
                iface.mac_address,
                ips,
                iface.speed_mbps,
                iface.status,
                iface.interface_type,
                json_text(&iface.metadata),
            ])?;
        }
        Ok(if before.is_empty() {
            Change::Added
        } else {
            Change::Updated { before }
        })
    }

    /// Makes a device's facts exactly `facts`, touching only the facts that changed.
    pub fn replace_facts(
        &self,
        device_id: i64,
        facts: &BTreeMap<String, String>,
        collected_at: &str,
    ) -> Result<FactsDiff> {
        let conn = self.conn();
        let mut current: BTreeMap<String, Option<String>> = BTreeMap::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT fact_name, fact_value FROM server_facts WHERE device_id = ?1",
            )?;
            let rows = stmt.query_map([device_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                let (name, value): (String, Option<String>) = row?;
                current.insert(name, value);
            }
        }
        let mut diff = FactsDiff::default();
        let mut insert = conn.prepare_cached(
            "INSERT INTO server_facts (device_id, fact_name, fact_value, collected_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut update = conn.prepare_cached(
            "UPDATE server_facts SET fact_value = ?3, collected_at = ?4 \
             WHERE device_id = ?1 AND fact_name = ?2",
        )?;
        for (name, value) in facts {
            match current.remove(name) {
                None => {
                    insert.execute(params![device_id, name, value, collected_at])?;
                    diff.added.push((name.clone(), value.clone()));
                }
                Some(old) if old.as_deref() != Some(value.as_str()) => {
                    update.execute(params![device_id, name, value, collected_at])?;
                    diff.changed.push((name.clone(), old, value.clone()));
                }
                Some(_) => {}
            }
        }
        let mut delete = conn
            .prepare_cached("DELETE FROM server_facts WHERE device_id = ?1 AND fact_name = ?2")?;
        for (name, old) in current {
            delete.execute(params![device_id, name])?;
            diff.removed.push((name, old));
        }
        Ok(diff)
    }

    /// Inserts or updates a volume keyed by (source_system, source_identifier, source_id).
    pub fn upsert_volume(
        &self,
        volume: &VolumeRecord,
        at: &str,
    ) -> Result<(i64, Change<VolumeRecord>)> {
        let conn = self.conn();
        let before = conn
            .prepare_cached(&format!(
                "SELECT {VOLUME_COLUMNS} FROM storage_volumes \
                 WHERE source_system = ?1 AND source_identifier = ?2 AND source_id = ?3"
            ))?
            .query_row(
                params![
                    volume.source_system,
                    volume.source_identifier,
                    volume.source_id
                ],
                volume_from_row,
            )
            .optional()?;
        let metadata = json_text(&volume.metadata);
        match before {
            Some(row) if row.volume == *volume => Ok((row.id, Change::Unchanged)),
            Some(row) => {
                conn.prepare_cached(
                    "UPDATE storage_volumes SET device_id = ?2, name = ?3, volume_type = ?4, \
                     capacity_bytes = ?5, used_bytes = ?6, storage_array = ?7, raid_level = ?8, \
                     thin_provisioned = ?9, metadata = ?10, updated_at = ?11 WHERE id = ?1",
                )?
                .execute(params![
                    row.id,
                    volume.device_id,
                    volume.name,
                    volume.volume_type,
                    volume.capacity_bytes,
                    volume.used_bytes,
                    volume.storage_array,
                    volume.raid_level,
                    volume.thin_provisioned,
                    metadata,
                    at
                ])?;
                Ok((row.id, Change::Updated { before: row.volume }))
            }
            None => {
                conn.prepare_cached(
                    "INSERT INTO storage_volumes (device_id, source_system, source_identifier, \
                     source_id, name, volume_type, capacity_bytes, used_bytes, storage_array, \
                     raid_level, thin_provisioned, metadata, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                )?
                .execute(params![
                    volume.device_id,
                    volume.source_system,
                    volume.source_identifier,
                    volume.source_id,
                    volume.name,
                    volume.volume_type,
                    volume.capacity_bytes,
                    volume.used_bytes,
                    volume.storage_array,
                    volume.raid_level,
                    volume.thin_provisioned,
                    metadata,
                    at
                ])?;
                Ok((conn.last_insert_rowid(), Change::Added))
            }
        }
    }

    /// Deletes a volume by id.
    pub(crate) fn delete_volume(&self, volume_id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM storage_volumes WHERE id = ?1")?
            .execute([volume_id])?
            > 0)
    }
}

fn read_interfaces(conn: &rusqlite::Connection, device_id: i64) -> Result<Vec<InterfaceRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, device_id, interface_name, mac_address, ip_addresses, speed_mbps, status, \
         interface_type, metadata FROM network_interfaces WHERE device_id = ?1 \
         ORDER BY interface_name, id",
    )?;
    let rows = stmt.query_map([device_id], interface_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A server's NIC that announces a CDP/LLDP neighbour (its interface metadata's `neighbour`).
#[derive(Debug, Clone, PartialEq)]
pub struct UplinkRow {
    pub(crate) device_id: i64,
    pub(crate) interface_name: String,
    pub(crate) neighbour: serde_json::Value,
}

impl Writer<'_> {
    /// (device, fact name, value) of active servers' facts named by one of these roots, or
    /// under it as Foreman flattens them (`root::…`), read inside the transaction.
    pub(crate) fn server_facts_under(
        &self,
        roots: &[String],
    ) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT f.device_id, f.fact_name, f.fact_value FROM server_facts f \
             JOIN devices d ON d.id = f.device_id \
             WHERE d.status = 'active' AND d.device_type = 'server' \
             AND (f.fact_name = ?1 OR substr(f.fact_name, 1, length(?1) + 2) = ?1 || '::')",
        )?;
        let mut out = Vec::new();
        for root in roots {
            let rows = stmt.query_map([root], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                ))
            })?;
            out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
        }
        Ok(out)
    }

    /// The NICs of active servers that name a neighbour switch, read inside the transaction.
    pub(crate) fn uplinks(&self) -> Result<Vec<UplinkRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT ni.device_id, ni.interface_name, json_extract(ni.metadata, '$.neighbour') \
             FROM network_interfaces ni JOIN devices d ON d.id = ni.device_id \
             WHERE d.status = 'active' AND d.device_type = 'server' \
             AND json_extract(ni.metadata, '$.neighbour') IS NOT NULL \
             ORDER BY ni.device_id, ni.interface_name",
        )?;
        let rows = stmt.query_map([], |r| {
            let neighbour: String = r.get(2)?;
            Ok(UplinkRow {
                device_id: r.get(0)?,
                interface_name: r.get(1)?,
                neighbour: serde_json::from_str(&neighbour).unwrap_or(serde_json::Value::Null),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Store {
    /// The VM details of a device, if it is a VM.
    pub fn vm(&self, device_id: i64) -> Result<Option<VmRow>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {VM_COLUMNS} FROM vms WHERE device_id = ?1"
            ))?
            .query_row([device_id], vm_from_row)
            .optional()?)
    }

    /// A device's interfaces, ordered by name.
    pub fn interfaces(&self, device_id: i64) -> Result<Vec<InterfaceRow>> {
        read_interfaces(self.conn(), device_id)
    }

    /// A device's facts, ordered by name.
    pub fn facts(&self, device_id: i64) -> Result<Vec<FactRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT fact_name, fact_value, collected_at FROM server_facts WHERE device_id = ?1 \
             ORDER BY fact_name",
        )?;
        let rows = stmt.query_map([device_id], |r| {
            Ok(FactRow {
                name: r.get(0)?,
                value: r.get(1)?,
                collected_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Volumes linked to a device, ordered by name.
    pub fn volumes_of_device(&self, device_id: i64) -> Result<Vec<VolumeRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {VOLUME_COLUMNS} FROM storage_volumes WHERE device_id = ?1 ORDER BY name, id"
        ))?;
        let rows = stmt.query_map([device_id], volume_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every volume of a source instance, ordered by name.
    pub fn volumes_of_source(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<Vec<VolumeRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {VOLUME_COLUMNS} FROM storage_volumes \
             WHERE source_system = ?1 AND source_identifier = ?2 ORDER BY name, id"
        ))?;
        let rows = stmt.query_map(params![source_system, source_identifier], volume_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Writer<'_> {
    /// The stored VM details of a device, read inside the transaction.
    pub(crate) fn stored_vm(&self, device_id: i64) -> Result<Option<VmRecord>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {VM_COLUMNS} FROM vms WHERE device_id = ?1"
            ))?
            .query_row([device_id], vm_from_row)
            .optional()?
            .map(|row| row.vm))
    }

    /// The stored interfaces of a device, read inside the transaction.
    pub(crate) fn stored_interfaces(&self, device_id: i64) -> Result<Vec<InterfaceRecord>> {
        Ok(read_interfaces(self.conn(), device_id)?
            .into_iter()
            .map(|r| r.interface)
            .collect())
    }

    /// (id, source id) of a source instance's volumes.
    pub(crate) fn volume_keys(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<Vec<(i64, String)>> {
        volume_keys_in(self.conn(), source_system, source_identifier)
    }
}

/// A volume as storage correlation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeKey {
    pub(crate) id: i64,
    pub(crate) source_system: String,
    pub(crate) name: String,
    pub(crate) volume_type: Option<String>,
    pub(crate) metadata: serde_json::Value,
}

/// A `backs_up` link between two volumes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeLink {
    pub(crate) id: i64,
    pub(crate) parent_volume_id: i64,
    pub(crate) child_volume_id: i64,
    pub(crate) metadata: Option<String>,
}

fn volume_keys_in(
    conn: &rusqlite::Connection,
    source_system: &str,
    source_identifier: &str,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, source_id FROM storage_volumes WHERE source_system = ?1 AND source_identifier = ?2",
    )?;
    let rows = stmt.query_map(params![source_system, source_identifier], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// (id, source id) of a source instance's volumes, read outside a transaction.
    pub fn volume_keys_of_source(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<Vec<(i64, String)>> {
        volume_keys_in(self.conn(), source_system, source_identifier)
    }
}

impl Writer<'_> {
    /// Every volume, for storage correlation.
    pub(crate) fn volume_keys_all(&self) -> Result<Vec<VolumeKey>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, source_system, name, volume_type, metadata FROM storage_volumes",
        )?;
        let rows = stmt.query_map([], |r| {
            let metadata: Option<String> = r.get(4)?;
            Ok(VolumeKey {
                id: r.get(0)?,
                source_system: r.get(1)?,
                name: r.get(2)?,
                volume_type: r.get(3)?,
                metadata: metadata
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(serde_json::Value::Null),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every volume link.
    pub(crate) fn volume_links(&self) -> Result<Vec<VolumeLink>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, parent_volume_id, child_volume_id, metadata FROM volume_relationships",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(VolumeLink {
                id: r.get(0)?,
                parent_volume_id: r.get(1)?,
                child_volume_id: r.get(2)?,
                metadata: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Records that `parent` backs `child`.
    pub(crate) fn link_volumes(
        &self,
        parent: i64,
        child: i64,
        metadata: &serde_json::Value,
        at: &str,
    ) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO volume_relationships (parent_volume_id, child_volume_id, relationship_type, metadata, created_at, updated_at) \
                 VALUES (?1, ?2, 'backs_up', ?3, ?4, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![parent, child, json_text(metadata), at])?;
        Ok(())
    }

    /// Removes one volume link.
    pub(crate) fn unlink_volumes(&self, id: i64) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM volume_relationships WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }
}

impl Store {
    /// The volumes that back `volume_id` (for a datastore: its LUN or NFS volume), with evidence.
    pub fn volume_backing(&self, volume_id: i64) -> Result<Vec<(VolumeRow, Option<String>)>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {}, l.metadata FROM volume_relationships l JOIN storage_volumes v ON v.id = l.parent_volume_id WHERE l.child_volume_id = ?1",
            VOLUME_COLUMNS.split(", ").map(|c| format!("v.{c}")).collect::<Vec<_>>().join(", ")
        ))?;
        let rows = stmt.query_map([volume_id], |r| Ok((volume_from_row(r)?, r.get(15)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
