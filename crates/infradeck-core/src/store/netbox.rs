//! Reads and writes for NetBox planning and apply: the inventory as NetBox will see it, open plan
//! items, and the conditional status moves that make apply safe to run twice or from two
//! processes at once.

use super::approvals::{ITEM_COLUMNS, item_from_row};
use super::{ApprovalItem, Result, Store, Writer};
use crate::model::ApprovalStatus;
use rusqlite::{OptionalExtension, params};

/// A VM of the inventory, with what NetBox needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InventoryVm {
    pub(crate) device_id: i64,
    pub(crate) name: String,
    /// The canonical short host name, when the source reported one.
    pub(crate) hostname: Option<String>,
    pub(crate) active: bool,
    pub(crate) last_seen: Option<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) power_state: Option<String>,
    pub(crate) cpu_count: Option<i64>,
    pub(crate) memory_mb: Option<i64>,
    pub(crate) disk_bytes: Option<i64>,
    /// The record of the host it runs on.
    pub(crate) host_device_id: Option<i64>,
    /// (address, source system) the machine's records say its name resolves to (Foreman's and
    /// PuppetDB's `ip`): the primary IP rule's first choice.
    pub(crate) resolves_to: Vec<(String, String)>,
}

/// A network adapter of an active vCenter VM.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InventoryNic {
    pub(crate) device_id: i64,
    pub(crate) name: String,
    pub(crate) mac: Option<String>,
    /// As the guest reported them, with prefix length (`10.0.0.5/24`).
    pub(crate) ip_addresses: Vec<String>,
}

/// A machine NetBox holds as a dcim device (a host, bare-metal server, switch or array), with
/// its active records, the primary one first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InventoryMachine {
    pub(crate) machine_id: i64,
    pub(crate) name: String,
    pub(crate) device_type: crate::model::DeviceType,
    pub(crate) records: Vec<InventoryRecord>,
}

/// One source's record of a machine: what it reported (its own metadata namespace) and when
/// it last confirmed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InventoryRecord {
    pub(crate) device_id: i64,
    pub(crate) source_system: String,
    pub(crate) source_identifier: String,
    pub(crate) name: String,
    pub(crate) metadata: serde_json::Value,
    pub(crate) last_seen: Option<String>,
    pub(crate) interfaces: Vec<InventoryInterface>,
}

/// A network interface as a source reported it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InventoryInterface {
    pub(crate) name: String,
    pub(crate) mac: Option<String>,
    pub(crate) ip_addresses: Vec<String>,
    pub(crate) speed_mbps: Option<i64>,
    pub(crate) status: Option<String>,
    pub(crate) interface_type: Option<String>,
    pub(crate) metadata: serde_json::Value,
}

impl Store {
    /// Every vCenter VM with its VM details and the cluster of its host.
    pub(crate) fn inventory_vms(&self) -> Result<Vec<InventoryVm>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT v.id, v.name, json_extract(v.metadata, '$.vcenter.hostname'), v.status, v.last_seen, \
               (SELECT c.name FROM device_relationships r1 \
                  JOIN device_relationships r2 ON r2.child_device_id = r1.parent_device_id AND r2.relationship_type = 'hosts' \
                  JOIN devices c ON c.id = r2.parent_device_id AND c.device_type = 'cluster' \
                 WHERE r1.child_device_id = v.id AND r1.relationship_type = 'hosts' LIMIT 1), \
               m.power_state, m.cpu_count, m.memory_mb, m.total_disk_capacity_bytes, \
               (SELECT h.parent_device_id FROM device_relationships h \
                 WHERE h.child_device_id = v.id AND h.relationship_type = 'hosts' LIMIT 1), \
               (SELECT json_group_array(json_array(json_extract(o.metadata, '$.' || o.source_system || '.ip'), o.source_system)) \
                  FROM devices o WHERE o.machine_id = v.machine_id AND o.status = 'active' \
                   AND json_extract(o.metadata, '$.' || o.source_system || '.ip') IS NOT NULL) \
             FROM devices v LEFT JOIN vms m ON m.device_id = v.id \
             WHERE v.device_type = 'vm' AND v.source_system = 'vcenter' ORDER BY v.name, v.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(InventoryVm {
                device_id: r.get(0)?,
                name: r.get(1)?,
                hostname: r.get(2)?,
                active: r.get::<_, Option<String>>(3)?.as_deref() != Some("inactive"),
                last_seen: r.get(4)?,
                cluster: r.get(5)?,
                power_state: r.get(6)?,
                cpu_count: r.get(7)?,
                memory_mb: r.get(8)?,
                disk_bytes: r.get(9)?,
                host_device_id: r.get(10)?,
                resolves_to: r
                    .get::<_, Option<String>>(11)?
                    .and_then(|t| serde_json::from_str::<Vec<(String, String)>>(&t).ok())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The active hosts, bare-metal servers, switches and arrays, each with its active records
    /// (primary first) and their interfaces, in machine-name order.
    pub(crate) fn inventory_machines(&self) -> Result<Vec<InventoryMachine>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT m.id, m.name, m.device_type, d.id, d.source_system, d.source_identifier, d.name, \
                    json_extract(d.metadata, '$.' || d.source_system), d.last_seen \
             FROM machines m JOIN devices d ON d.machine_id = m.id \
             WHERE m.device_type IN ('server', 'network_device', 'storage') AND m.status = 'active' \
               AND d.status = 'active' \
             ORDER BY m.name_key, m.id, d.id = m.primary_device_id DESC, d.id",
        )?;
        let mut machines: Vec<InventoryMachine> = Vec::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let machine_id: i64 = r.get(0)?;
            let metadata: Option<String> = r.get(7)?;
            let record = InventoryRecord {
                device_id: r.get(3)?,
                source_system: r.get(4)?,
                source_identifier: r.get(5)?,
                name: r.get(6)?,
                metadata: metadata
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or(serde_json::Value::Null),
                last_seen: r.get(8)?,
                interfaces: Vec::new(),
            };
            match machines.last_mut() {
                Some(last) if last.machine_id == machine_id => last.records.push(record),
                _ => {
                    let kind: String = r.get(2)?;
                    machines.push(InventoryMachine {
                        machine_id,
                        name: r.get(1)?,
                        device_type: kind.parse().unwrap_or(crate::model::DeviceType::Server),
                        records: vec![record],
                    });
                }
            }
        }
        let mut by_device: std::collections::HashMap<i64, Vec<InventoryInterface>> =
            std::collections::HashMap::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.device_id, i.interface_name, i.mac_address, i.ip_addresses, i.speed_mbps, \
                    i.status, i.interface_type, i.metadata \
             FROM network_interfaces i JOIN devices d ON d.id = i.device_id \
             JOIN machines m ON m.id = d.machine_id \
             WHERE m.device_type IN ('server', 'network_device', 'storage') AND m.status = 'active' \
               AND d.status = 'active' ORDER BY i.device_id, i.id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let ips: Option<String> = r.get(3)?;
            let metadata: Option<String> = r.get(7)?;
            by_device
                .entry(r.get(0)?)
                .or_default()
                .push(InventoryInterface {
                    name: r.get(1)?,
                    mac: r.get(2)?,
                    ip_addresses: ips
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_default(),
                    speed_mbps: r.get(4)?,
                    status: r.get(5)?,
                    interface_type: r.get(6)?,
                    metadata: metadata
                        .and_then(|m| serde_json::from_str(&m).ok())
                        .unwrap_or(serde_json::Value::Null),
                });
        }
        for record in machines.iter_mut().flat_map(|m| m.records.iter_mut()) {
            record.interfaces = by_device.remove(&record.device_id).unwrap_or_default();
        }
        Ok(machines)
    }

    /// The network adapters of active vCenter VMs.
    pub(crate) fn inventory_vm_nics(&self) -> Result<Vec<InventoryNic>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.id, i.interface_name, i.mac_address, i.ip_addresses FROM network_interfaces i \
             JOIN devices d ON d.id = i.device_id \
             WHERE d.device_type = 'vm' AND d.source_system = 'vcenter' AND d.status = 'active' \
             ORDER BY d.id, i.interface_name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(InventoryNic {
                device_id: r.get(0)?,
                name: r.get(1)?,
                mac: r.get(2)?,
                ip_addresses: r
                    .get::<_, Option<String>>(3)?
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Items of any batch still waiting for review or apply.
    pub(crate) fn open_items(&self) -> Result<Vec<ApprovalItem>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM netbox_sync_approvals a LEFT JOIN devices d ON d.id = a.device_id \
             WHERE a.approval_status IN ('pending', 'approved') ORDER BY a.id"
        ))?;
        let rows = stmt.query_map([], item_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// What happened to an item when it was applied or rolled back.
#[derive(Debug, Clone)]
pub(crate) struct ItemResult<'a> {
    pub(crate) status: ApprovalStatus,
    pub(crate) netbox_object_id: Option<i64>,
    pub(crate) at: &'a str,
    /// `{"request_id", "before", ...}`: enough to undo the write.
    pub(crate) rollback_data: Option<&'a serde_json::Value>,
    /// The plan item's changes with the outcome added (conflict, error).
    pub(crate) proposed_changes: Option<&'a serde_json::Value>,
}

impl Writer<'_> {
    /// Marks pending items of earlier plans as superseded by a new plan.
    pub(crate) fn supersede_items(&self, ids: &[i64]) -> Result<usize> {
        let mut stmt = self.conn().prepare_cached(
            "UPDATE netbox_sync_approvals SET approval_status = 'superseded' WHERE id = ?1 AND approval_status = 'pending'",
        )?;
        let mut moved = 0;
        for id in ids {
            moved += stmt.execute([id])?;
        }
        Ok(moved)
    }

    /// Takes an item for apply or rollback: moves it from one of `from` to `to` only if it is
    /// still there, so of two processes exactly one gets it. True when this caller got it.
    pub(crate) fn claim_item(
        &self,
        id: i64,
        from: &[ApprovalStatus],
        to: ApprovalStatus,
        at: &str,
    ) -> Result<bool> {
        let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let placeholders = (0..allowed.len())
            .map(|i| format!("?{}", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE netbox_sync_approvals SET approval_status = ?2, applied_at = ?3 \
             WHERE id = ?1 AND approval_status IN ({placeholders})"
        );
        let mut values: Vec<rusqlite::types::Value> = vec![
            id.into(),
            to.as_str().to_string().into(),
            at.to_string().into(),
        ];
        values.extend(
            allowed
                .iter()
                .map(|s| rusqlite::types::Value::from(s.to_string())),
        );
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(values))?
            == 1)
    }

    /// Records an item's outcome.
    pub(crate) fn finish_item(&self, id: i64, result: &ItemResult<'_>) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE netbox_sync_approvals SET approval_status = ?2, \
                 netbox_object_id = COALESCE(?3, netbox_object_id), applied_at = ?4, \
                 rollback_data = COALESCE(?5, rollback_data), proposed_changes = COALESCE(?6, proposed_changes) \
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                result.status.as_str(),
                result.netbox_object_id,
                result.at,
                result.rollback_data.map(|v| v.to_string()),
                result.proposed_changes.map(|v| v.to_string()),
            ])?;
        Ok(())
    }

    /// Sets a batch's state (`pending`, `applying`, `applied`, `partial`, `rolled_back`); a
    /// change of state is audited with who caused it and the batch's item counts by status.
    pub(crate) fn set_batch_state(
        &self,
        batch_id: &str,
        state: &str,
        who: &str,
        at: &str,
    ) -> Result<()> {
        let conn = self.conn();
        let before: Option<String> = conn
            .prepare_cached("SELECT state FROM netbox_sync_batches WHERE batch_id = ?1")?
            .query_row([batch_id], |r| r.get(0))
            .optional()?
            .flatten();
        conn.prepare_cached("UPDATE netbox_sync_batches SET state = ?2 WHERE batch_id = ?1")?
            .execute(params![batch_id, state])?;
        if before.as_deref() != Some(state) {
            let mut counts = serde_json::Map::new();
            let mut stmt = conn.prepare_cached(
                "SELECT approval_status, count(*) FROM netbox_sync_approvals \
                 WHERE sync_batch_id = ?1 GROUP BY approval_status",
            )?;
            let mut rows = stmt.query([batch_id])?;
            while let Some(row) = rows.next()? {
                let status: Option<String> = row.get(0)?;
                counts.insert(status.unwrap_or_default(), row.get::<_, i64>(1)?.into());
            }
            self.record_batch_event(
                batch_id,
                state,
                who,
                at,
                serde_json::json!({"from": before, "items": counts}),
            )?;
        }
        Ok(())
    }
}
