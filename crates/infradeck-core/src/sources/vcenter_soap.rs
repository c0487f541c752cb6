//! What the vCenter connector reads over SOAP (vim25), turned into our records: each VM's
//! snapshot tree and snapshot size, each host's physical NICs with their CDP/LLDP neighbour.
//! Keyed by moid, which REST and SOAP share.

use super::FetchContext;
use super::vim25::{ObjectContent, Soap};
use crate::http::SourceError;
use crate::model::InterfaceRecord;
use crate::xml::Element;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A VM's snapshots as `vms.snapshots` stores them, and their size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshots {
    /// One object per snapshot, depth first (parents before children): name, description, id,
    /// moid, created, state, quiesced, parent (the parent's id), current.
    pub(crate) list: Value,
    /// Delta disks, memory and state files of the snapshots, from `layoutEx`; `None` when vCenter
    /// sent no layout.
    pub(crate) size_bytes: Option<i64>,
}

/// A host's physical NIC and what it is plugged into.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Uplink {
    pub(crate) interface: InterfaceRecord,
    /// The switch and port its CDP or LLDP neighbour announces.
    pub neighbour: Option<Neighbour>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Neighbour {
    /// `cdp` or `lldp`.
    pub(crate) protocol: &'static str,
    pub(crate) switch: String,
    pub(crate) port: String,
}

#[derive(Debug, Default)]
pub(crate) struct SoapInventory {
    pub(crate) snapshots: HashMap<String, Snapshots>,
    pub(crate) uplinks: HashMap<String, Vec<Uplink>>,
    /// Per host moid: whether it is in maintenance mode (`runtime.inMaintenanceMode`; the REST
    /// API does not say).
    pub(crate) maintenance: HashMap<String, bool>,
}

/// Logs in over SOAP, reads snapshots and host uplinks, logs out.
pub(crate) async fn read(ctx: &FetchContext) -> Result<SoapInventory, SourceError> {
    let (user, password) = ctx.required_password()?;
    let soap = Soap::login(&ctx.client, &user, &password).await?;
    let result = read_with(ctx, &soap).await;
    soap.logout().await;
    result
}

async fn read_with(ctx: &FetchContext, soap: &Soap<'_>) -> Result<SoapInventory, SourceError> {
    let mut inventory = SoapInventory::default();
    for vm in soap
        .retrieve("VirtualMachine", &["snapshot", "layoutEx"])
        .await?
    {
        inventory.snapshots.insert(vm.moid.clone(), snapshots(&vm));
    }
    ctx.check_cancelled()?;
    let hosts = soap
        .retrieve(
            "HostSystem",
            &[
                "config.network.pnic",
                "configManager.networkSystem",
                "runtime.inMaintenanceMode",
            ],
        )
        .await?;
    for host in &hosts {
        if let Some(flag) = host.get("runtime.inMaintenanceMode") {
            inventory
                .maintenance
                .insert(host.moid.clone(), flag.text.trim() == "true");
        }
    }
    // One QueryNetworkHint per host, a few at a time.
    let pending: Vec<_> = hosts.iter().map(|host| uplinks(soap, host)).collect();
    let mut answers =
        futures::stream::iter(pending).buffer_unordered(ctx.source.max_in_flight.max(1));
    while let Some(answer) = answers.next().await {
        ctx.check_cancelled()?;
        let (moid, uplinks) = answer?;
        inventory.uplinks.insert(moid, uplinks);
    }
    Ok(inventory)
}

fn snapshots(vm: &ObjectContent) -> Snapshots {
    let mut list = Vec::new();
    if let Some(info) = vm.get("snapshot") {
        let current = info.text_of("currentSnapshot").unwrap_or_default();
        for root in info.children_named("rootSnapshotList") {
            flatten(root, None, current, &mut list);
        }
    }
    let size_bytes = vm.get("layoutEx").map(snapshot_bytes);
    Snapshots {
        list: Value::Array(list),
        size_bytes,
    }
}

fn flatten(tree: &Element, parent: Option<i64>, current: &str, out: &mut Vec<Value>) {
    let id = tree
        .text_of("id")
        .and_then(|t| t.trim().parse::<i64>().ok());
    let moid = tree.text_of("snapshot").unwrap_or_default();
    out.push(json!({
        "name": tree.text_of("name").unwrap_or_default(),
        "description": tree.text_of("description").unwrap_or_default(),
        "id": id,
        "moid": moid,
        // vim25 sends xsd:dateTime; the store keeps every time in its own UTC format.
        "created": tree
            .text_of("createTime")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| crate::time::format(t.with_timezone(&chrono::Utc))),
        "state": tree.text_of("state"),
        "quiesced": tree.text_of("quiesced") == Some("true"),
        "parent": parent,
        "current": !moid.is_empty() && moid == current,
    }));
    for child in tree.children_named("childSnapshotList") {
        flatten(child, id, current, out);
    }
}

/// The bytes snapshots take: their state and memory files plus every delta disk. A disk's
/// `chain` runs from the base disk to the running delta, so all but its first link exist
/// because of snapshots.
fn snapshot_bytes(layout: &Element) -> i64 {
    let sizes: HashMap<&str, i64> = layout
        .children_named("file")
        .filter_map(|f| {
            Some((
                f.text_of("key")?,
                f.text_of("size")?.trim().parse::<i64>().ok()?,
            ))
        })
        .collect();
    let state: i64 = layout
        .children_named("file")
        .filter(|f| matches!(f.text_of("type"), Some("snapshotData" | "snapshotMemory")))
        .filter_map(|f| f.text_of("key").and_then(|k| sizes.get(k)))
        .sum();
    let deltas: i64 = layout
        .children_named("disk")
        .flat_map(|disk| disk.children_named("chain").skip(1))
        .flat_map(|link| link.children_named("fileKey"))
        .filter_map(|key| sizes.get(key.text.as_str()))
        .sum();
    state + deltas
}

async fn uplinks(
    soap: &Soap<'_>,
    host: &ObjectContent,
) -> Result<(String, Vec<Uplink>), SourceError> {
    let hints = match host
        .get("configManager.networkSystem")
        .map(|e| e.text.as_str())
    {
        Some(system) if !system.is_empty() => soap.network_hints(system).await?,
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    if let Some(pnics) = host.get("config.network.pnic") {
        for pnic in pnics.children_named("PhysicalNic") {
            let device = pnic.text_of("device").unwrap_or_default().to_string();
            let speed = pnic
                .path(&["linkSpeed", "speedMb"])
                .and_then(|e| e.text.trim().parse::<i64>().ok());
            let hint = hints
                .iter()
                .find(|h| h.text_of("device") == Some(device.as_str()));
            out.push(Uplink {
                interface: InterfaceRecord {
                    interface_name: device.clone(),
                    mac_address: pnic.text_of("mac").and_then(super::normalize_mac),
                    ip_addresses: Vec::new(),
                    speed_mbps: speed,
                    // No link speed: the link is down.
                    status: Some(if speed.is_some() { "up" } else { "down" }.to_string()),
                    interface_type: Some("physical".into()),
                    metadata: json!({
                        "driver": pnic.text_of("driver"),
                        "pci": pnic.text_of("pci"),
                    }),
                },
                neighbour: hint.and_then(neighbour),
            });
        }
    }
    Ok((host.moid.clone(), out))
}

/// The neighbour a NIC hint announces: CDP (`connectedSwitchPort`) first, then LLDP.
fn neighbour(hint: &Element) -> Option<Neighbour> {
    if let Some(cdp) = hint.child("connectedSwitchPort") {
        let switch = cdp
            .text_of("devId")
            .or(cdp.text_of("systemName"))
            .unwrap_or_default();
        let port = cdp.text_of("portId").unwrap_or_default();
        if !switch.is_empty() {
            return Some(Neighbour {
                protocol: "cdp",
                switch: switch.to_string(),
                port: port.to_string(),
            });
        }
    }
    let lldp = hint.child("lldpInfo")?;
    let system_name = lldp
        .children_named("parameter")
        .find(|p| p.text_of("key") == Some("System Name"))
        .and_then(|p| p.text_of("value"));
    let switch = system_name.or(lldp.text_of("chassisId"))?;
    Some(Neighbour {
        protocol: "lldp",
        switch: switch.to_string(),
        port: lldp.text_of("portId").unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn snapshot_size_counts_state_files_and_delta_disks_not_base_disks() {
        let layout = parse(
            br#"<val>
              <file><key>0</key><name>vm.vmx</name><type>config</type><size>3000</size></file>
              <file><key>1</key><name>vm.vmdk</name><type>diskDescriptor</type><size>500</size></file>
              <file><key>2</key><name>vm-flat.vmdk</name><type>diskExtent</type><size>40000</size></file>
              <file><key>3</key><name>vm-000001.vmdk</name><type>diskDescriptor</type><size>400</size></file>
              <file><key>4</key><name>vm-000001-sesparse.vmdk</name><type>diskExtent</type><size>7000</size></file>
              <file><key>5</key><name>vm-Snapshot1.vmsn</name><type>snapshotData</type><size>60</size></file>
              <disk><key>2000</key><chain><fileKey>1</fileKey><fileKey>2</fileKey></chain>
                <chain><fileKey>3</fileKey><fileKey>4</fileKey></chain></disk>
            </val>"#,
        )
        .unwrap();
        assert_eq!(snapshot_bytes(&layout), 400 + 7000 + 60);
    }

    #[test]
    fn cdp_first_then_lldp_system_name() {
        let hint = parse(
            b"<h><device>vmnic0</device><lldpInfo><chassisId>00:11</chassisId><portId>Eth1/7</portId>\
              <parameter><key>System Name</key><value>leaf01</value></parameter></lldpInfo></h>",
        )
        .unwrap();
        assert_eq!(
            neighbour(&hint),
            Some(Neighbour {
                protocol: "lldp",
                switch: "leaf01".into(),
                port: "Eth1/7".into()
            })
        );
    }
}
