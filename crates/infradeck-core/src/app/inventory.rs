//! Reads both front ends present the same way: which sources are stale now, and a machine's
//! whole detail (merged fields, health, relationships, interfaces, volumes, configs, runbooks
//! and tickets, and what its kind adds: a host's VMs and uplinks, a cluster's hosts, an array's
//! fullest volumes, a switch's config and fetch state). `infradeck show` prints it; the
//! dashboard's detail view draws it.

use crate::config::SourceConfig;
use crate::machines::stale_sources as stale_of;
use crate::model::{DeviceStatus, DeviceType, Health, RelationshipType};
use crate::store::{
    ConfigVersion, InterfaceRow, KnowledgeHit, Machine, MergedView, Result, Store, VmRow, VolumeRow,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The sources whose data is stale at `now` (`system/instance` → why).
pub fn stale_sources(
    store: &Store,
    sources: &[SourceConfig],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<BTreeMap<String, String>> {
    Ok(stale_of(&store.source_statuses()?, sources, now))
}

/// A related machine, seen from the machine shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelatedMachine {
    pub relationship_type: RelationshipType,
    /// True when it is the parent (the host of this VM, the cluster of this host).
    pub is_parent: bool,
    pub machine_id: i64,
    pub name: String,
    pub device_type: DeviceType,
    pub health: Health,
    /// The source of the link's record.
    pub source: String,
    /// The link's metadata (cables of a `connects_to`).
    pub metadata: serde_json::Value,
}

/// An interface with the source that reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourcedInterface {
    pub source: String,
    #[serde(flatten)]
    pub interface: InterfaceRow,
}

/// What a machine's kind adds to its detail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KindDetail {
    Host {
        source: String,
        cluster: Option<String>,
        datacenter: Option<String>,
        connection_state: Option<String>,
        power_state: Option<String>,
        vms: usize,
        vms_powered_on: usize,
        /// Physical NICs and the switch port each is cabled to, when CDP/LLDP said.
        uplinks: Vec<Uplink>,
    },
    Cluster {
        source: String,
        hosts: Vec<ClusterHost>,
        vms: usize,
        vms_powered_on: usize,
        ha_enabled: Option<bool>,
        drs_enabled: Option<bool>,
    },
    Array {
        source: String,
        capacity_bytes: i64,
        used_bytes: i64,
        used_percent: Option<f64>,
        /// Pools or aggregates as the array names them.
        pools: Vec<String>,
        /// Its volumes and LUNs, fullest first.
        fullest: Vec<VolumeRow>,
        volumes: usize,
    },
    Switch {
        source: String,
        model: Option<String>,
        last_fetch_status: Option<String>,
        /// When its newest config version was retrieved.
        config_retrieved_at: Option<String>,
        config_versions: usize,
        interfaces: Vec<InterfaceRow>,
    },
    None,
}

/// A physical NIC and its switch port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uplink {
    pub nic: String,
    pub status: Option<String>,
    pub speed_mbps: Option<i64>,
    pub switch: Option<String>,
    pub port: Option<String>,
}

/// A host of a cluster, with its health and VM counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterHost {
    pub name: String,
    pub health: Health,
    pub vms: usize,
    pub vms_powered_on: usize,
}

/// Everything about one machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineDetail {
    pub machine: Machine,
    /// Each field by source, disagreements marked.
    pub merged: Option<MergedView>,
    pub vm: Option<VmRow>,
    pub interfaces: Vec<SourcedInterface>,
    pub volumes: Vec<VolumeRow>,
    pub relationships: Vec<RelatedMachine>,
    pub configs: Vec<ConfigVersion>,
    pub knowledge: Vec<KnowledgeHit>,
    pub kind: KindDetail,
}

/// The whole detail of machine `id`; `None` when there is no such machine.
pub fn machine_detail(
    store: &Store,
    id: i64,
    stale: &BTreeMap<String, String>,
) -> Result<Option<MachineDetail>> {
    let Some(machine) = store.machine(id, stale)? else {
        return Ok(None);
    };
    let primary = machine
        .primary_device_id
        .or_else(|| machine.records.first().map(|r| r.device_id));
    let Some(primary) = primary else {
        return Ok(None);
    };
    let mut vm = None;
    let mut interfaces = Vec::new();
    let mut volumes = Vec::new();
    let mut configs = Vec::new();
    let mut relationships: Vec<RelatedMachine> = Vec::new();
    for record in &machine.records {
        if vm.is_none() {
            vm = store.vm(record.device_id)?;
        }
        interfaces.extend(
            store
                .interfaces(record.device_id)?
                .into_iter()
                .map(|interface| SourcedInterface {
                    source: record.source(),
                    interface,
                }),
        );
        volumes.extend(store.volumes_of_device(record.device_id)?);
        configs.extend(store.config_versions(record.device_id)?);
        for related in store.related(record.device_id)? {
            if related.relationship_type == RelationshipType::SameAs {
                continue;
            }
            let Some(other) = store.machine_of_device(related.device.id, stale)? else {
                continue;
            };
            if other.id == machine.id
                || relationships.iter().any(|r| {
                    r.machine_id == other.id
                        && r.relationship_type == related.relationship_type
                        && r.is_parent == related.is_parent
                })
            {
                continue;
            }
            relationships.push(RelatedMachine {
                relationship_type: related.relationship_type,
                is_parent: related.is_parent,
                machine_id: other.id,
                name: other.name.clone(),
                device_type: other.device_type,
                health: other.health,
                source: format!(
                    "{}/{}",
                    related.device.source_system, related.device.source_identifier
                ),
                metadata: related
                    .metadata
                    .as_deref()
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or(serde_json::Value::Null),
            });
        }
    }
    volumes.sort_by(|a, b| a.volume.name.cmp(&b.volume.name));
    // Parents first (where it runs), then by kind of link and name as people read names.
    relationships.sort_by(|a, b| {
        b.is_parent
            .cmp(&a.is_parent)
            .then(a.relationship_type.cmp(&b.relationship_type))
            .then_with(|| crate::text::natural_key(&a.name).cmp(&crate::text::natural_key(&b.name)))
    });
    let kind = kind_detail(store, &machine, &interfaces, &volumes, &configs, stale)?;
    Ok(Some(MachineDetail {
        merged: store.merged_view(primary)?,
        vm,
        interfaces,
        volumes,
        relationships,
        configs,
        knowledge: store.related_knowledge(primary, 20)?,
        kind,
        machine,
    }))
}

/// VMs a host record hosts: (all, powered on).
fn vm_counts(store: &Store, host_device: i64) -> Result<(usize, usize)> {
    let mut all = 0;
    let mut on = 0;
    for related in store.related(host_device)? {
        if related.relationship_type == RelationshipType::Hosts
            && !related.is_parent
            && related.device.device_type == DeviceType::Vm
            && related.device.status == DeviceStatus::Active
        {
            all += 1;
            let power = store.vm(related.device.id)?.and_then(|v| v.vm.power_state);
            if power.as_deref() == Some("POWERED_ON") {
                on += 1;
            }
        }
    }
    Ok((all, on))
}

fn kind_detail(
    store: &Store,
    machine: &Machine,
    interfaces: &[SourcedInterface],
    volumes: &[VolumeRow],
    configs: &[ConfigVersion],
    stale: &BTreeMap<String, String>,
) -> Result<KindDetail> {
    let record = |system: &str| machine.records.iter().find(|r| r.source_system == system);
    let metadata = |device_id: i64| -> Result<serde_json::Value> {
        Ok(store
            .device(device_id)?
            .map(|d| d.metadata_json())
            .unwrap_or(serde_json::Value::Null))
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    Ok(match machine.device_type {
        DeviceType::Server if record("vcenter").is_some() => {
            let Some(host) = record("vcenter") else {
                return Ok(KindDetail::None);
            };
            let ns = metadata(host.device_id)?["vcenter"].clone();
            let (vms, vms_powered_on) = vm_counts(store, host.device_id)?;
            let uplinks = interfaces
                .iter()
                .filter(|i| i.source == host.source())
                .map(|i| {
                    let neighbour = &i.interface.interface.metadata["neighbour"];
                    Uplink {
                        nic: i.interface.interface.interface_name.clone(),
                        status: i.interface.interface.status.clone(),
                        speed_mbps: i.interface.interface.speed_mbps,
                        switch: text(&neighbour["switch"]),
                        port: text(&neighbour["port"]),
                    }
                })
                .collect();
            KindDetail::Host {
                source: host.source(),
                cluster: text(&ns["cluster"]),
                datacenter: text(&ns["datacenter"]),
                connection_state: text(&ns["connection_state"]),
                power_state: text(&ns["power_state"]),
                vms,
                vms_powered_on,
                uplinks,
            }
        }
        DeviceType::Cluster => {
            let Some(cluster) = machine.records.first() else {
                return Ok(KindDetail::None);
            };
            let ns = metadata(cluster.device_id)?[cluster.source_system.as_str()].clone();
            let mut hosts = Vec::new();
            let (mut vms, mut vms_powered_on) = (0, 0);
            for related in store.related(cluster.device_id)? {
                if related.relationship_type != RelationshipType::Hosts || related.is_parent {
                    continue;
                }
                let (all, on) = vm_counts(store, related.device.id)?;
                if related.device.device_type == DeviceType::Vm {
                    // A VM placed on the cluster itself (no host known).
                    vms += 1;
                    continue;
                }
                vms += all;
                vms_powered_on += on;
                let health = store
                    .machine_of_device(related.device.id, stale)?
                    .map(|m| m.health)
                    .unwrap_or(Health::Ok);
                hosts.push(ClusterHost {
                    name: related.device.name.clone(),
                    health,
                    vms: all,
                    vms_powered_on: on,
                });
            }
            hosts.sort_by(|a, b| {
                crate::text::natural_key(&a.name).cmp(&crate::text::natural_key(&b.name))
            });
            KindDetail::Cluster {
                source: cluster.source(),
                hosts,
                vms,
                vms_powered_on,
                ha_enabled: ns["ha_enabled"].as_bool(),
                drs_enabled: ns["drs_enabled"].as_bool(),
            }
        }
        DeviceType::Storage => {
            let Some(array) = machine.records.first() else {
                return Ok(KindDetail::None);
            };
            let ns = metadata(array.device_id)?[array.source_system.as_str()].clone();
            let capacity: i64 = volumes.iter().filter_map(|v| v.volume.capacity_bytes).sum();
            let used: i64 = volumes.iter().filter_map(|v| v.volume.used_bytes).sum();
            let pools = ns["pools"]
                .as_array()
                .or(ns["aggregates"].as_array())
                .map(|list| list.iter().filter_map(|p| text(&p["name"])).collect())
                .unwrap_or_default();
            let mut fullest: Vec<VolumeRow> = volumes.to_vec();
            let percent = |v: &VolumeRow| v.volume.used_percent().unwrap_or(-1.0);
            fullest.sort_by(|a, b| percent(b).total_cmp(&percent(a)));
            fullest.truncate(10);
            KindDetail::Array {
                source: array.source(),
                capacity_bytes: capacity,
                used_bytes: used,
                used_percent: (capacity > 0).then(|| used as f64 * 100.0 / capacity as f64),
                pools,
                fullest,
                volumes: volumes.len(),
            }
        }
        DeviceType::NetworkDevice => {
            let Some(switch) = record("oxidized").or(machine.records.first()) else {
                return Ok(KindDetail::None);
            };
            let ns = metadata(switch.device_id)?[switch.source_system.as_str()].clone();
            KindDetail::Switch {
                source: switch.source(),
                model: text(&ns["model"]),
                last_fetch_status: text(&ns["last_status"]),
                config_retrieved_at: configs.iter().filter_map(|c| c.retrieved_at.clone()).max(),
                config_versions: configs.len(),
                interfaces: interfaces
                    .iter()
                    .filter(|i| i.source == switch.source())
                    .map(|i| i.interface.clone())
                    .collect(),
            }
        }
        _ => KindDetail::None,
    })
}
