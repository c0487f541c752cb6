//! The plan: what NetBox should look like according to the inventory, compared with what it
//! holds, as create / update (only differing fields, each with from and to) / delete items.
//!
//! Mapping: vCenter clusters → virtualization clusters (type `vmware-vsphere`); vCenter VMs →
//! virtualization VMs named by their canonical host name, in the cluster of the same name, with
//! vCPUs, memory and disk in MB and status from the power state. Everything created carries the
//! configured tag, and only tagged objects are ever updated or deleted.
//!
//! What the plan refers to but NetBox lacks (the tag, the cluster type, the configured site) is
//! proposed as its own create item first, and every item lists the items of its batch it needs
//! (`needs`: their keys), so apply writes parents before children and fails a child at once,
//! naming the parent, when its parent failed.

use super::client::NetboxClient;
use crate::app::PlanReport;
use crate::model::{ApprovalAction, DeviceStatus, DeviceType};
use crate::store::{
    DeviceQuery, InventoryMachine, InventoryNic, InventoryVm, NewApprovalItem, NewBatch, Store,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

pub(crate) const CLUSTERS: &str = "virtualization/clusters";
pub(crate) const VMS: &str = "virtualization/virtual-machines";
pub(crate) const IFACES: &str = "virtualization/interfaces";
pub(crate) const MACS: &str = "dcim/mac-addresses";
pub(crate) const IPS: &str = "ipam/ip-addresses";
pub(crate) const TAGS: &str = "extras/tags";
pub(crate) const CLUSTER_TYPES: &str = "virtualization/cluster-types";
pub(crate) const SITES: &str = "dcim/sites";
pub(crate) const DEVICES: &str = "dcim/devices";
pub(crate) const DEVICE_IFACES: &str = "dcim/interfaces";
pub(crate) const MANUFACTURERS: &str = "dcim/manufacturers";
pub(crate) const DEVICE_TYPES: &str = "dcim/device-types";
pub(crate) const ROLES: &str = "dcim/device-roles";
pub(crate) const PLATFORMS: &str = "dcim/platforms";
pub(crate) const PREFIXES: &str = "ipam/prefixes";
pub(crate) const CUSTOM_FIELDS: &str = "extras/custom-fields";
pub(crate) const CABLES: &str = "dcim/cables";
/// The custom field on devices and VMs that says where each field infradeck wrote came from.
pub(crate) const PROVENANCE: &str = "infradeck_provenance";
pub(crate) const CLUSTER_TYPE_SLUG: &str = "vmware-vsphere";
const CLUSTER_TYPE_NAME: &str = "VMware vSphere";

/// Every endpoint a plan writes.
pub(crate) const ENDPOINTS: [&str; 16] = [
    TAGS,
    CUSTOM_FIELDS,
    CLUSTER_TYPES,
    SITES,
    MANUFACTURERS,
    ROLES,
    PLATFORMS,
    DEVICE_TYPES,
    CLUSTERS,
    DEVICES,
    VMS,
    IFACES,
    DEVICE_IFACES,
    MACS,
    IPS,
    CABLES,
];

/// The MAC objects NetBox has, lower case, with the device or VM and interface each is on, if
/// any.
pub(crate) struct MacsInNetbox(HashMap<String, Option<(String, String)>>);

impl MacsInNetbox {
    pub(crate) fn of(macs: &[Value]) -> MacsInNetbox {
        MacsInNetbox(
            macs.iter()
                .filter_map(|m| {
                    let mac = m.get("mac_address")?.as_str()?.to_lowercase();
                    let on = m.get("assigned_object").and_then(|o| {
                        let holder = o
                            .pointer("/device/name")
                            .or_else(|| o.pointer("/virtual_machine/name"))?
                            .as_str()?;
                        Some((holder.to_string(), o.get("name")?.as_str()?.to_string()))
                    });
                    Some((mac, on))
                })
                .collect(),
        )
    }

    /// Whether NetBox has `mac` (then nothing is created). One it has on another device or VM
    /// than `holder` (or on none) is reported, not moved: NetBox refuses to move a MAC while it
    /// is an interface's primary, and which machine holds it is for a person to say. (On the
    /// same machine under another interface name it is a rename, which the interface's own
    /// item proposes.)
    pub(crate) fn has(
        &self,
        mac: &str,
        holder: &str,
        interface: &str,
        report: &mut PlanReport,
    ) -> bool {
        let Some(now_on) = self.0.get(mac) else {
            return false;
        };
        if now_on
            .as_ref()
            .is_none_or(|(h, _)| !h.eq_ignore_ascii_case(holder))
        {
            report.unmapped.push(format!(
                "MAC {mac}: NetBox has it on {}, the inventory on {holder} {interface}; not \
                 moved (a person moves it in NetBox, releasing it as primary MAC first)",
                now_on
                    .as_ref()
                    .map_or("no interface".to_string(), |(h, i)| format!("{h} {i}"))
            ));
        }
        true
    }
}

/// The order of writes: the tag (everything else carries it), what devices and clusters refer
/// to (cluster type, site, manufacturer, role, platform, then device types, which belong to a
/// manufacturer), clusters, the devices in them, the VMs on those, their interfaces, the MAC
/// objects, addresses and cables on those (deletes go the other way, so the tag goes last, once
/// nothing carries it).
pub(crate) fn rank(endpoint: &str) -> u8 {
    match endpoint {
        TAGS => 0,
        CLUSTER_TYPES | SITES | MANUFACTURERS | ROLES | PLATFORMS | CUSTOM_FIELDS => 1,
        DEVICE_TYPES | CLUSTERS => 2,
        DEVICES => 3,
        VMS => 4,
        IFACES | DEVICE_IFACES => 5,
        _ => 6,
    }
}

/// The rank of an update that only sets primary IPs: after the addresses it points at.
pub(crate) const PRIMARY_RANK: u8 = 7;

/// The fields an update may set once the addresses exist.
pub(crate) fn is_primary_field(field: &str) -> bool {
    matches!(field, "primary_ip4" | "primary_ip6")
}

/// A NetBox slug for a name: lower case, runs of anything but letters and digits as one `-`.
pub(crate) fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

/// A reference NetBox cannot take as a lookup dict (a generic `assigned_object_id`): resolved
/// at apply time to the id of the one object `endpoint` lists for `query`.
pub(crate) fn lookup(endpoint: &str, query: Value) -> Value {
    json!({"$lookup": {"endpoint": endpoint, "query": query}})
}

/// A NetBox object's comparable fields, nested references by name and choices by value.
pub(crate) fn observed(endpoint: &str, object: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let name_of = |v: &Value| v.get("name").cloned().unwrap_or(Value::Null);
    let choice = |v: &Value| v.get("value").cloned().unwrap_or_else(|| v.clone());
    let number = |v: &Value| match v.as_f64() {
        Some(f) if f.fract() == 0.0 => json!(f as i64),
        Some(f) => json!(f),
        None => Value::Null,
    };
    out.insert(
        "name".into(),
        object.get("name").cloned().unwrap_or(Value::Null),
    );
    out.insert(
        "status".into(),
        object.get("status").map(choice).unwrap_or(Value::Null),
    );
    let address_of = |field: &str| {
        object
            .get(field)
            .and_then(|v| v.get("address"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let slug_of = |field: &str| {
        object
            .get(field)
            .map(|v| v.get("slug").cloned().unwrap_or(Value::Null))
            .unwrap_or(Value::Null)
    };
    match endpoint {
        DEVICE_TYPES => {
            out.clear();
            for field in ["model", "slug"] {
                out.insert(
                    field.into(),
                    object.get(field).cloned().unwrap_or(Value::Null),
                );
            }
            out.insert("manufacturer".into(), slug_of("manufacturer"));
        }
        CABLES => {
            out.remove("name");
            // Each end as "device interface", as the plan names them.
            for (field, side) in [("a", "a_terminations"), ("b", "b_terminations")] {
                let ends: Vec<String> = object
                    .get(side)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|end| {
                        let device = end.pointer("/object/device/name")?.as_str()?;
                        let name = end.pointer("/object/name")?.as_str()?;
                        Some(format!("{device} {name}"))
                    })
                    .collect();
                out.insert(field.into(), json!(ends.join(", ")));
            }
        }
        IPS => {
            out.clear();
            for field in ["address", "assigned_object_type", "assigned_object_id"] {
                out.insert(
                    field.into(),
                    object.get(field).cloned().unwrap_or(Value::Null),
                );
            }
        }
        DEVICES => {
            for field in ["site", "role", "device_type", "platform"] {
                out.insert(field.into(), slug_of(field));
            }
            for field in ["primary_ip4", "primary_ip6"] {
                out.insert(field.into(), address_of(field));
            }
            out.insert(
                "cluster".into(),
                object.get("cluster").map(name_of).unwrap_or(Value::Null),
            );
            out.insert(
                "serial".into(),
                object.get("serial").cloned().unwrap_or(Value::Null),
            );
        }
        DEVICE_IFACES => {
            out.remove("status");
            out.insert(
                "device".into(),
                object.get("device").map(name_of).unwrap_or(Value::Null),
            );
            out.insert(
                "type".into(),
                object.get("type").map(choice).unwrap_or(Value::Null),
            );
            for field in ["enabled", "mgmt_only", "description"] {
                out.insert(
                    field.into(),
                    object.get(field).cloned().unwrap_or(Value::Null),
                );
            }
            out.insert(
                "speed".into(),
                object.get("speed").map(number).unwrap_or(Value::Null),
            );
        }
        TAGS | CLUSTER_TYPES | MANUFACTURERS | ROLES | PLATFORMS => {
            out.remove("status");
            out.insert(
                "slug".into(),
                object.get("slug").cloned().unwrap_or(Value::Null),
            );
        }
        SITES => {
            out.insert(
                "slug".into(),
                object.get("slug").cloned().unwrap_or(Value::Null),
            );
        }
        IFACES => {
            out.remove("status");
            out.insert(
                "virtual_machine".into(),
                object
                    .get("virtual_machine")
                    .map(name_of)
                    .unwrap_or(Value::Null),
            );
        }
        MACS => {
            out.remove("name");
            out.remove("status");
            out.insert(
                "mac_address".into(),
                object
                    .get("mac_address")
                    .and_then(Value::as_str)
                    .map(|m| json!(m.to_lowercase()))
                    .unwrap_or(Value::Null),
            );
        }
        CLUSTERS => {
            out.insert(
                "type".into(),
                object
                    .get("type")
                    .map(|t| t.get("slug").cloned().unwrap_or(Value::Null))
                    .unwrap_or(Value::Null),
            );
        }
        _ => {
            out.insert(
                "cluster".into(),
                object.get("cluster").map(name_of).unwrap_or(Value::Null),
            );
            out.insert(
                "device".into(),
                object.get("device").map(name_of).unwrap_or(Value::Null),
            );
            for field in ["primary_ip4", "primary_ip6"] {
                out.insert(field.into(), address_of(field));
            }
            for field in ["vcpus", "memory", "disk"] {
                out.insert(
                    field.into(),
                    object.get(field).map(number).unwrap_or(Value::Null),
                );
            }
        }
    }
    if endpoint != TAGS {
        out.insert("tags".into(), json!(tag_slugs(object)));
    }
    out
}

/// The slugs of a NetBox object's tags, sorted.
pub(crate) fn tag_slugs(object: &Value) -> Vec<String> {
    let mut slugs: Vec<String> = object
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("slug").and_then(Value::as_str).map(str::to_string))
        .collect();
    slugs.sort();
    slugs
}

/// Whether a NetBox object carries `tag` (by slug or name).
pub(crate) fn is_tagged(object: &Value, tag: &str) -> bool {
    object
        .get("tags")
        .and_then(Value::as_array)
        .is_some_and(|tags| {
            tags.iter().any(|t| {
                t.get("slug").and_then(Value::as_str) == Some(tag)
                    || t.get("name").and_then(Value::as_str) == Some(tag)
            })
        })
}

/// Turns desired fields into a write body: references become lookups by name.
pub(crate) fn write_body(endpoint: &str, fields: &BTreeMap<String, Value>) -> Value {
    let mut body = Map::new();
    for (key, value) in fields {
        let written = match (endpoint, key.as_str()) {
            (VMS, "cluster" | "device") | (DEVICES, "cluster") if !value.is_null() => {
                json!({"name": value})
            }
            // Tags as slugs (an adoption adds ours to the object's own; rollback restores them).
            (_, "tags") => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|slug| json!({"slug": slug}))
                    .collect(),
            ),
            (VMS | DEVICES, "primary_ip4" | "primary_ip6") if !value.is_null() => {
                lookup(IPS, json!({"address": value}))
            }
            (CLUSTERS, "type") | (DEVICES, "site" | "role" | "device_type" | "platform")
                if !value.is_null() =>
            {
                json!({"slug": value})
            }
            _ => value.clone(),
        };
        body.insert(key.clone(), written);
    }
    Value::Object(body)
}

fn vm_name(vm: &InventoryVm) -> String {
    vm.hostname
        .clone()
        .unwrap_or_else(|| vm.name.split('.').next().unwrap_or(&vm.name).to_lowercase())
}

fn desired_vm(vm: &InventoryVm) -> Option<BTreeMap<String, Value>> {
    let cluster = vm.cluster.clone()?;
    let status = if vm.power_state.as_deref() == Some("POWERED_ON") {
        "active"
    } else {
        "offline"
    };
    Some(BTreeMap::from([
        ("name".to_string(), json!(vm_name(vm))),
        ("cluster".to_string(), json!(cluster)),
        ("status".to_string(), json!(status)),
        ("vcpus".to_string(), json!(vm.cpu_count)),
        ("memory".to_string(), json!(vm.memory_mb)),
        ("disk".to_string(), json!(vm.disk_bytes.map(|b| b >> 20))),
    ]))
}

/// Adds to a device or VM write the provenance custom field (`field → {"source",
/// "confirmed"}`: which source supplied each field written, and when it last confirmed it),
/// and the custom field's item to what the write waits for. Provenance is written with a
/// change, never a change by itself: a newer confirmation alone proposes nothing.
pub(super) fn with_provenance(body: &mut Value, needs: &mut Vec<String>, fields: Value) {
    body["custom_fields"] = json!({PROVENANCE: {"written_by": "infradeck", "fields": fields}});
    needs.push(format!("custom-field:{PROVENANCE}"));
}

/// Every field of a VM comes from its vCenter record.
fn vm_provenance<'a>(vm: &InventoryVm, fields: impl Iterator<Item = &'a String>) -> Value {
    Value::Object(
        fields
            .map(|f| {
                (
                    f.clone(),
                    json!({"source": "vcenter", "confirmed": vm.last_seen}),
                )
            })
            .collect(),
    )
}

/// The desired fields NetBox holds otherwise.
pub(super) fn differing(
    desired: &BTreeMap<String, Value>,
    current: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `{"field": {"from": what NetBox has, "to": value}}` for an update.
pub(super) fn from_to(
    differing: &BTreeMap<String, Value>,
    current: &BTreeMap<String, Value>,
) -> Value {
    Value::Object(
        differing
            .iter()
            .map(|(k, v)| {
                let from = current.get(k).cloned().unwrap_or(Value::Null);
                (k.clone(), json!({"from": from, "to": v}))
            })
            .collect(),
    )
}

/// Adds to an adoption's differing fields the object's tags with ours among them.
pub(super) fn with_our_tag(
    differing: &mut BTreeMap<String, Value>,
    current: &BTreeMap<String, Value>,
    tag: &str,
) {
    let mut tags: Vec<String> = current
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    tags.push(tag.to_string());
    tags.sort();
    tags.dedup();
    differing.insert("tags".into(), json!(tags));
}

/// `{"field": {"from": null, "to": value}}` for an object that does not exist yet.
pub(super) fn from_nothing(fields: &BTreeMap<String, Value>) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.clone(), json!({"from": null, "to": v})))
            .collect(),
    )
}

/// Which inventory record and NetBox object an item is about, and its key (`vm:web-01`).
pub(super) struct Target {
    pub(super) device_id: Option<i64>,
    pub(super) object_id: Option<i64>,
    pub(super) key: String,
}

pub(super) fn item(
    action: ApprovalAction,
    endpoint: &str,
    target: Target,
    fields: Value,
    body: Value,
    extra: Value,
) -> NewApprovalItem {
    let Target {
        device_id,
        object_id,
        key,
    } = target;
    let mut changes = json!({
        "key": key,
        "endpoint": endpoint,
        "object": key.split_once(':').map(|(_, n)| n).unwrap_or(&key),
        "order": rank(endpoint),
        "fields": fields,
        "body": body,
    });
    if let (Some(map), Value::Object(extra)) = (changes.as_object_mut(), extra) {
        map.extend(extra);
    }
    NewApprovalItem {
        device_id,
        action,
        netbox_object_type: endpoint.to_string(),
        netbox_object_id: object_id,
        proposed_changes: changes,
    }
}

/// What the plan needs from the inventory, read before any request goes out.
pub(crate) struct Inventory {
    pub(crate) clusters: Vec<crate::store::Device>,
    pub(crate) vms: Vec<InventoryVm>,
    /// The network adapters of active VMs.
    pub(crate) nics: Vec<InventoryNic>,
    /// Hosts, bare-metal servers, switches and arrays.
    pub(crate) machines: Vec<InventoryMachine>,
    /// What is plugged into what: server NICs to switch ports.
    pub(crate) cables: Vec<crate::store::InventoryCable>,
}

impl Inventory {
    pub(crate) fn read(store: &Store) -> anyhow::Result<Inventory> {
        Ok(Inventory {
            clusters: store.query_devices(&DeviceQuery {
                device_type: Some(DeviceType::Cluster),
                source_system: Some("vcenter".into()),
                status: Some(DeviceStatus::Active),
                ..DeviceQuery::default()
            })?,
            vms: store.inventory_vms()?,
            nics: store.inventory_vm_nics()?,
            machines: store.inventory_machines()?,
            cables: store.inventory_cables()?,
        })
    }
}

/// The items NetBox needs, computed from the inventory and what NetBox holds now.
pub(crate) async fn compute(
    inventory: &Inventory,
    client: &NetboxClient,
    grace_days: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<NewApprovalItem>, PlanReport)> {
    let mut report = PlanReport::default();
    let tag = client.tag.clone();
    let site_slug = client.site.as_deref().map(slugify);
    let netbox_clusters = client.list(CLUSTERS, &[]).await?;
    let netbox_vms = client
        .list(VMS, &[("exclude", "config_context".to_string())])
        .await?;
    let mut items = Vec::new();

    // Clusters.
    let clusters = &inventory.clusters;
    let by_name: HashMap<String, &Value> = netbox_clusters
        .iter()
        .filter_map(|c| Some((c.get("name")?.as_str()?.to_lowercase(), c)))
        .collect();
    for cluster in clusters {
        if by_name.contains_key(&cluster.name.to_lowercase()) {
            continue;
        }
        let fields = BTreeMap::from([
            ("name".to_string(), json!(cluster.name)),
            ("type".to_string(), json!(CLUSTER_TYPE_SLUG)),
            ("status".to_string(), json!("active")),
        ]);
        let mut body = write_body(CLUSTERS, &fields);
        body["tags"] = json!([{"slug": tag}]);
        let mut needs = vec![
            format!("tag:{tag}"),
            format!("cluster-type:{CLUSTER_TYPE_SLUG}"),
        ];
        if let Some(site) = &site_slug {
            // Scoped to the site, the cluster gives its VMs their site.
            body["scope_type"] = json!("dcim.site");
            body["scope_id"] = lookup(SITES, json!({"slug": site}));
            needs.push(format!("site:{site}"));
        }
        let from_to = from_nothing(&fields);
        items.push(item(
            ApprovalAction::Create,
            CLUSTERS,
            Target {
                device_id: Some(cluster.id),
                object_id: None,
                key: format!("cluster:{}", cluster.name),
            },
            from_to,
            body,
            json!({"needs": needs}),
        ));
    }

    // Devices, their interfaces and MACs, and what they refer to.
    let netbox_macs = client.list(MACS, &[]).await?;
    let have_mac = MacsInNetbox::of(&netbox_macs);
    let mut cluster_sites: HashMap<String, Option<String>> = netbox_clusters
        .iter()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?.to_lowercase();
            let site = (c.get("scope_type").and_then(Value::as_str) == Some("dcim.site"))
                .then(|| {
                    c.pointer("/scope/slug")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .flatten();
            Some((name, site))
        })
        .collect();
    for cluster in clusters {
        cluster_sites
            .entry(cluster.name.to_lowercase())
            .or_insert_with(|| site_slug.clone());
    }
    let devices = super::devices::DevicePlan {
        client,
        machines: &inventory.machines,
        cables: &inventory.cables,
        rules: &client.device_rules,
        cluster_sites: &cluster_sites,
        macs: &have_mac,
    }
    .compute(&mut report)
    .await?;
    let mut device_items = devices.items;

    // VMs.
    let vms = &inventory.vms;
    let mut active_names = HashSet::new();
    let mut ours: HashMap<i64, String> = HashMap::new();
    let mut vm_holders: Vec<super::addresses::Holder> = Vec::new();
    // VM record → its holder in `vm_holders`.
    let mut holder_of: HashMap<i64, usize> = HashMap::new();
    let mut inactive: HashMap<String, &InventoryVm> = HashMap::new();
    let mut netbox_by_name: HashMap<String, Vec<&Value>> = HashMap::new();
    for vm in &netbox_vms {
        if let Some(name) = vm.get("name").and_then(Value::as_str) {
            netbox_by_name
                .entry(name.to_lowercase())
                .or_default()
                .push(vm);
        }
    }
    for vm in vms {
        let name = vm_name(vm);
        if !vm.active {
            inactive.insert(name.to_lowercase(), vm);
            continue;
        }
        if !active_names.insert(name.to_lowercase()) {
            continue; // two inventory records for one name: the first one speaks
        }
        let Some(mut desired) = desired_vm(vm) else {
            report
                .unmapped
                .push(format!("{name}: its host has no cluster"));
            continue;
        };
        // On its host's device when that device is in the VM's cluster (NetBox's rule).
        let host = vm
            .host_device_id
            .and_then(|h| devices.hosts.get(&h))
            .filter(|(_, cluster)| desired.get("cluster") == Some(&json!(cluster)))
            .map(|(device, _)| device.clone());
        if let Some(host) = &host {
            desired.insert("device".into(), json!(host));
        }
        let candidates = netbox_by_name
            .get(&name.to_lowercase())
            .cloned()
            .unwrap_or_default();
        // Ours (tagged), else one made by hand in the same cluster: proposed for adoption.
        let cluster_of = |o: &Value| {
            o.pointer("/cluster/name")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
        };
        let wanted_cluster = desired
            .get("cluster")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let (existing, adopt) = match candidates.iter().find(|o| is_tagged(o, &tag)) {
            Some(ours) => (Some(*ours), None),
            None => {
                let same_cluster: Vec<&Value> = candidates
                    .iter()
                    .filter(|o| cluster_of(o) == wanted_cluster)
                    .copied()
                    .collect();
                match (same_cluster.as_slice(), candidates.first()) {
                    ([one], _) => (Some(*one), Some("name and cluster")),
                    ([], None) => (None, None),
                    ([], Some(other)) => {
                        report.untagged.push(format!(
                            "{name} (NetBox has it by hand in cluster {}, not {}; not adopted)",
                            cluster_of(other).unwrap_or_else(|| "none".into()),
                            wanted_cluster.as_deref().unwrap_or("none"),
                        ));
                        continue;
                    }
                    (many, _) => {
                        report.unmapped.push(format!(
                            "{name}: {} untagged NetBox VMs match it; not guessing which to adopt",
                            many.len()
                        ));
                        continue;
                    }
                }
            }
        };
        // Interfaces go only on VMs that are ours: created by this plan, already tagged, or
        // adopted by it.
        if existing.is_none_or(|o| is_tagged(o, &tag)) || adopt.is_some() {
            ours.insert(vm.device_id, name.clone());
            holder_of.insert(vm.device_id, vm_holders.len());
            vm_holders.push(super::addresses::Holder {
                name: name.clone(),
                site: None,
                device_id: Some(vm.device_id),
                interfaces: Vec::new(),
                resolves_to: vm.resolves_to.clone(),
                primary: super::addresses::primaries_of(existing),
                netbox_id: existing.and_then(|o| o.get("id")?.as_i64()),
            });
        }
        match existing {
            None => {
                let mut body = write_body(VMS, &desired);
                body["tags"] = json!([{"slug": tag}]);
                let from_to = from_nothing(&desired);
                let mut needs = vec![
                    format!("tag:{tag}"),
                    format!(
                        "cluster:{}",
                        desired["cluster"].as_str().unwrap_or_default()
                    ),
                ];
                needs.extend(host.iter().map(|h| format!("device:{h}")));
                let from_vcenter = vm_provenance(vm, desired.keys());
                with_provenance(&mut body, &mut needs, from_vcenter);
                items.push(item(
                    ApprovalAction::Create,
                    VMS,
                    Target {
                        device_id: Some(vm.device_id),
                        object_id: None,
                        key: format!("vm:{name}"),
                    },
                    from_to,
                    body,
                    json!({"needs": needs}),
                ));
            }
            Some(object) => {
                let current = observed(VMS, object);
                let mut differing = differing(&desired, &current);
                // Adopting one made by hand: the same update, with our tag and saying so.
                if adopt.is_some() {
                    with_our_tag(&mut differing, &current, &tag);
                } else if differing.is_empty() {
                    continue;
                }
                let mut body = write_body(VMS, &differing);
                let mut needs: Vec<String> = host.iter().map(|h| format!("device:{h}")).collect();
                if adopt.is_some() {
                    needs.push(format!("tag:{tag}"));
                }
                with_provenance(&mut body, &mut needs, vm_provenance(vm, differing.keys()));
                let mut extra = json!({"seen": current, "needs": needs});
                if let Some(matched_by) = adopt {
                    extra["adopt"] = json!({"matched_by": matched_by});
                }
                items.push(item(
                    ApprovalAction::Update,
                    VMS,
                    Target {
                        device_id: Some(vm.device_id),
                        object_id: object.get("id").and_then(Value::as_i64),
                        key: format!("vm:{name}"),
                    },
                    from_to(&differing, &current),
                    body,
                    extra,
                ));
            }
        }
    }

    // VM interfaces and their MAC objects (NetBox 4.2+: a MAC is an object assigned to an
    // interface). Only created; they go with their VM when it is deleted.
    let netbox_ifaces = client.list(IFACES, &[]).await?;
    let have_iface: HashSet<(String, String)> = netbox_ifaces
        .iter()
        .filter_map(|i| {
            let vm = i.pointer("/virtual_machine/name")?.as_str()?.to_lowercase();
            Some((vm, i.get("name")?.as_str()?.to_lowercase()))
        })
        .collect();
    let mut mac_items = Vec::new();
    for nic in &inventory.nics {
        let (device_id, adapter, mac) = (&nic.device_id, &nic.name, &nic.mac);
        let Some(vm) = ours.get(device_id) else {
            continue;
        };
        if let Some(&at) = holder_of.get(device_id) {
            vm_holders[at]
                .interfaces
                .push((adapter.clone(), nic.ip_addresses.clone(), false));
        }
        let vm_ref = lookup(VMS, json!({"name": vm}));
        if !have_iface.contains(&(vm.to_lowercase(), adapter.to_lowercase())) {
            let fields = BTreeMap::from([
                ("name".to_string(), json!(adapter)),
                ("virtual_machine".to_string(), json!(vm)),
            ]);
            let from_to = from_nothing(&fields);
            items.push(item(
                ApprovalAction::Create,
                IFACES,
                Target {
                    device_id: Some(*device_id),
                    object_id: None,
                    key: format!("iface:{vm}/{adapter}"),
                },
                from_to,
                json!({"virtual_machine": {"name": vm}, "name": adapter, "enabled": true, "tags": [{"slug": tag}]}),
                json!({
                    "match": {"name": adapter, "virtual_machine_id": vm_ref},
                    "needs": [format!("tag:{tag}"), format!("vm:{vm}")],
                }),
            ));
        }
        let Some(mac) = mac.as_deref().map(str::to_lowercase) else {
            continue;
        };
        if have_mac.has(&mac, vm, adapter, &mut report) {
            continue;
        }
        let iface_ref = lookup(
            IFACES,
            json!({"name": adapter, "virtual_machine_id": vm_ref}),
        );
        let from_to = json!({"mac_address": {"from": null, "to": mac}});
        mac_items.push(item(
            ApprovalAction::Create,
            MACS,
            Target {
                device_id: Some(*device_id),
                object_id: None,
                key: format!("mac:{mac}"),
            },
            from_to,
            json!({
                "mac_address": mac.to_uppercase(),
                "assigned_object_type": "virtualization.vminterface",
                "assigned_object_id": iface_ref,
                "tags": [{"slug": tag}],
            }),
            json!({
                "match": {"mac_address": mac},
                "on": format!("{vm} {adapter}"),
                // Once created, the MAC becomes its interface's primary MAC (how NetBox 4.2+
                // shows an interface's MAC address).
                "primary_of": iface_ref,
                "needs": [format!("tag:{tag}"), format!("iface:{vm}/{adapter}")],
            }),
        ));
    }
    items.extend(mac_items);

    // IP addresses on VM and device interfaces, and primary IPs.
    let holders: Vec<super::addresses::Holder> = vm_holders
        .into_iter()
        .chain(devices.holders.iter().cloned())
        .collect();
    items.extend(super::addresses::plan(client, &holders, &mut report).await?);

    // Deletes: tagged VMs whose record has been gone longer than the grace period.
    let grace = chrono::Duration::days(i64::from(grace_days));
    for object in &netbox_vms {
        let Some(name) = object.get("name").and_then(Value::as_str) else {
            continue;
        };
        if active_names.contains(&name.to_lowercase()) || !is_tagged(object, &tag) {
            continue;
        }
        let gone_since = inactive
            .get(&name.to_lowercase())
            .and_then(|vm| vm.last_seen.as_deref())
            .and_then(crate::time::parse)
            .or_else(|| {
                let text = object.pointer("/custom_fields/last_seen")?.as_str()?;
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()?
                    .and_hms_opt(0, 0, 0)
                    .map(|d| d.and_utc())
            })
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(object.get("last_updated")?.as_str()?)
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
            });
        let Some(gone_since) = gone_since else {
            continue;
        };
        if now - gone_since < grace {
            continue;
        }
        let current = observed(VMS, object);
        let from_to: Map<String, Value> = current
            .iter()
            .map(|(k, v)| (k.clone(), json!({"from": v, "to": null})))
            .collect();
        items.push(item(
            ApprovalAction::Delete,
            VMS,
            Target {
                device_id: inactive.get(&name.to_lowercase()).map(|vm| vm.device_id),
                object_id: object.get("id").and_then(Value::as_i64),
                key: format!("vm:{name}"),
            },
            Value::Object(from_to),
            Value::Null,
            json!({"gone_since": crate::time::format(gone_since), "seen": current}),
        ));
    }
    with_cascades(client, &mut items).await?;
    // Devices' prerequisites and the devices go before the VMs placed on them (in the review;
    // apply orders writes by kind anyway).
    let at = items
        .iter()
        .position(|i| i.netbox_object_type != CLUSTERS)
        .unwrap_or(items.len());
    let rest = items.split_off(at);
    items.append(&mut device_items);
    items.extend(rest);
    let mut items = with_prerequisites(client, items).await?;
    drop_repeated_creates(&mut items);
    keep_needs_within(&mut items);
    report.prerequisites = items
        .iter()
        .filter(|i| i.proposed_changes.get("prerequisite").is_some())
        .filter_map(|i| i.proposed_changes.get("key").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    Ok((items, report))
}

/// Adds to each VM delete what NetBox deletes with it (`cascade`: its interfaces, and the MACs
/// and IP addresses on them, by name), for the review; apply records them in full again just
/// before deleting, and rollback re-creates them.
async fn with_cascades(client: &NetboxClient, items: &mut [NewApprovalItem]) -> anyhow::Result<()> {
    let vms: Vec<i64> = items
        .iter()
        .filter(|i| i.action == ApprovalAction::Delete && i.netbox_object_type == VMS)
        .filter_map(|i| i.netbox_object_id)
        .collect();
    if vms.is_empty() {
        return Ok(());
    }
    let cascades = super::apply::cascade_of(client, &vms)
        .await
        .map_err(|e| anyhow::anyhow!("reading what deleting VMs would take with them: {e}"))?;
    let names = |cascade: &Value, key: &str, field: &str| -> Vec<Value> {
        cascade[key]
            .as_array()
            .map(|list| list.iter().map(|o| o[field].clone()).collect())
            .unwrap_or_default()
    };
    for item in items.iter_mut() {
        let Some(cascade) = item.netbox_object_id.and_then(|id| cascades.get(&id)) else {
            continue;
        };
        if item.action != ApprovalAction::Delete || item.netbox_object_type != VMS {
            continue;
        }
        item.proposed_changes["cascade"] = json!({
            "interfaces": names(cascade, "interfaces", "name"),
            "mac_addresses": names(cascade, "mac_addresses", "mac_address"),
            "ip_addresses": names(cascade, "ip_addresses", "address"),
        });
    }
    Ok(())
}

/// `items` preceded by a create for each object they refer to that NetBox lacks: the tag (any
/// create carries it), the cluster type and the configured site (any cluster create refers to
/// them). An empty NetBox has none of them.
async fn with_prerequisites(
    client: &NetboxClient,
    items: Vec<NewApprovalItem>,
) -> anyhow::Result<Vec<NewApprovalItem>> {
    let creates = |endpoint: &str| {
        items
            .iter()
            .any(|i| i.action == ApprovalAction::Create && i.netbox_object_type == endpoint)
    };
    // (endpoint, key, (filter, value) that finds it, body)
    let mut wanted: Vec<(&str, String, (&str, String), Value)> = Vec::new();
    if items.iter().any(|i| i.action == ApprovalAction::Create) {
        let tag = client.tag.clone();
        wanted.push((
            TAGS,
            format!("tag:{tag}"),
            ("slug", tag.clone()),
            json!({"name": tag, "slug": tag, "color": "2196f3",
                   "description": "Managed by infradeck: only objects with this tag are changed"}),
        ));
    }
    if creates(CLUSTERS) {
        wanted.push((
            CLUSTER_TYPES,
            format!("cluster-type:{CLUSTER_TYPE_SLUG}"),
            ("slug", CLUSTER_TYPE_SLUG.to_string()),
            json!({"name": CLUSTER_TYPE_NAME, "slug": CLUSTER_TYPE_SLUG}),
        ));
        if let Some(site) = &client.site {
            let slug = slugify(site);
            wanted.push((
                SITES,
                format!("site:{slug}"),
                ("slug", slug.clone()),
                json!({"name": site, "slug": slug, "status": "active"}),
            ));
        }
    }
    let provenance_on = items.iter().any(|i| {
        i.action != ApprovalAction::Delete
            && i.proposed_changes
                .pointer(&format!("/body/custom_fields/{PROVENANCE}"))
                .is_some()
    });
    if provenance_on {
        wanted.push((
            CUSTOM_FIELDS,
            format!("custom-field:{PROVENANCE}"),
            ("name", PROVENANCE.to_string()),
            json!({
                "name": PROVENANCE,
                "label": "infradeck provenance",
                "type": "json",
                "object_types": ["dcim.device", "virtualization.virtualmachine"],
                "ui_editable": "no",
                "description": "Written by infradeck: which source supplied each field, and when that source last confirmed it",
            }),
        ));
    }
    let mut out = Vec::new();
    for (endpoint, key, (filter, value), mut body) in wanted {
        if !client
            .list(endpoint, &[(filter, value.clone())])
            .await?
            .is_empty()
        {
            continue;
        }
        let fields: BTreeMap<String, Value> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| ["name", "slug", "status"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // A custom field takes no tags (it is not a NetBox model that has them).
        if endpoint != TAGS && endpoint != CUSTOM_FIELDS {
            body["tags"] = json!([{"slug": client.tag}]);
        }
        let needs = if endpoint == TAGS || endpoint == CUSTOM_FIELDS {
            json!([])
        } else {
            json!([format!("tag:{}", client.tag)])
        };
        out.push(item(
            ApprovalAction::Create,
            endpoint,
            Target {
                device_id: None,
                object_id: None,
                key: key.clone(),
            },
            from_nothing(&fields),
            body,
            json!({"match": {filter: value}, "needs": needs, "prerequisite": true}),
        ));
    }
    out.extend(items);
    Ok(out)
}

/// Keeps the first create of each key: the site clusters and devices both refer to, a MAC two
/// records report, is one item.
fn drop_repeated_creates(items: &mut Vec<NewApprovalItem>) {
    let mut keys = HashSet::new();
    items.retain(|i| {
        i.action != ApprovalAction::Create
            || i.proposed_changes
                .get("key")
                .and_then(Value::as_str)
                .is_none_or(|k| keys.insert(k.to_string()))
    });
}

/// Drops from each item's `needs` the keys no create of the batch has: those objects are in
/// NetBox already (or open in an earlier batch, which NetBox's answer will tell). An update
/// shares its object's key but makes nothing a child could wait for.
fn keep_needs_within(items: &mut [NewApprovalItem]) {
    let keys: HashSet<String> = items
        .iter()
        .filter(|i| i.action == ApprovalAction::Create)
        .filter_map(|i| i.proposed_changes.get("key").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    for item in items.iter_mut() {
        if let Some(needs) = item
            .proposed_changes
            .get_mut("needs")
            .and_then(Value::as_array_mut)
        {
            needs.retain(|n| n.as_str().is_some_and(|k| keys.contains(k)));
        }
    }
}

/// The identity of a proposal, to recognise it in an earlier plan.
fn signature(action: ApprovalAction, changes: &Value) -> String {
    format!(
        "{}|{}|{}",
        action.as_str(),
        changes.get("key").map(Value::to_string).unwrap_or_default(),
        changes
            .get("fields")
            .map(Value::to_string)
            .unwrap_or_default()
    )
}

/// Plans and records a batch. Proposals already open stay in their batch; pending items of
/// earlier plans that the new plan no longer contains are superseded; nothing new, no batch.
pub async fn plan(
    store: &mut Store,
    client: &NetboxClient,
    grace_days: u32,
    planned_by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<PlanReport> {
    let inventory = Inventory::read(store)?;
    let (items, mut report) = compute(&inventory, client, grace_days, now).await?;
    let open = store.open_items()?;
    let open_signatures: HashMap<String, &crate::store::ApprovalItem> = open
        .iter()
        .map(|i| {
            let changes: Value = i
                .proposed_changes
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            (signature(i.action, &changes), i)
        })
        .collect();
    let planned: HashSet<String> = items
        .iter()
        .map(|i| signature(i.action, &i.proposed_changes))
        .collect();
    let fresh: Vec<NewApprovalItem> = items
        .into_iter()
        .filter(|i| !open_signatures.contains_key(&signature(i.action, &i.proposed_changes)))
        .collect();
    report.already_open = planned.len() - fresh.len();
    let stale: Vec<i64> = open_signatures
        .iter()
        .filter(|(sig, item)| {
            !planned.contains(*sig) && item.approval_status == crate::model::ApprovalStatus::Pending
        })
        .map(|(_, item)| item.id)
        .collect();
    for item in &fresh {
        match item.action {
            ApprovalAction::Create => report.creates += 1,
            ApprovalAction::Update => report.updates += 1,
            ApprovalAction::Delete => report.deletes += 1,
        }
    }
    let batch_id = format!("nb-{}", now.format("%Y%m%d-%H%M%S%.3f"));
    let planned_at = crate::time::format(now);
    let url = client.base_url().to_string();
    let (superseded, created) = store.write(|w| {
        let superseded = w.supersede_items(&stale)?;
        let created = if fresh.is_empty() {
            false
        } else {
            w.create_batch(
                &NewBatch {
                    batch_id: &batch_id,
                    netbox_url: &url,
                    planned_at: &planned_at,
                    planned_by,
                    metadata: json!({"untagged": report.untagged, "unmapped": report.unmapped}),
                },
                &fresh,
            )?;
            true
        };
        Ok((superseded, created))
    })?;
    report.superseded = superseded;
    report.batch_id = created.then_some(batch_id);
    tracing::info!(
        batch = report.batch_id.as_deref().unwrap_or("-"),
        netbox = client.base_url(),
        creates = report.creates,
        updates = report.updates,
        deletes = report.deletes,
        already_open = report.already_open,
        superseded = report.superseded,
        prerequisites = report.prerequisites.len(),
        "netbox plan"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, hostname: Option<&str>, cluster: Option<&str>, power: &str) -> InventoryVm {
        InventoryVm {
            device_id: 1,
            name: name.into(),
            hostname: hostname.map(Into::into),
            active: true,
            last_seen: None,
            cluster: cluster.map(Into::into),
            power_state: Some(power.into()),
            cpu_count: Some(4),
            memory_mb: Some(8192),
            disk_bytes: Some(50 << 30),
            host_device_id: None,
            resolves_to: Vec::new(),
        }
    }

    #[test]
    fn a_vm_becomes_netbox_fields_named_by_its_host_name_in_its_cluster() {
        let fields = desired_vm(&vm("WEB-01.lab.local", None, Some("prod"), "POWERED_ON")).unwrap();
        assert_eq!(fields["name"], json!("web-01"), "short, lower-case name");
        assert_eq!(fields["cluster"], json!("prod"));
        assert_eq!(fields["status"], json!("active"));
        assert_eq!(fields["vcpus"], json!(4));
        assert_eq!(fields["memory"], json!(8192));
        assert_eq!(fields["disk"], json!(51200), "NetBox counts disk in MiB");
        // The guest's own host name wins over the vCenter display name.
        let named = desired_vm(&vm(
            "web-01 (old)",
            Some("web-01"),
            Some("prod"),
            "POWERED_OFF",
        ));
        let named = named.unwrap();
        assert_eq!(named["name"], json!("web-01"));
        assert_eq!(
            named["status"],
            json!("offline"),
            "anything not powered on is offline"
        );
        // No cluster (a standalone host): nothing NetBox can hold it in, so no fields at all.
        assert!(desired_vm(&vm("edge-01", None, None, "POWERED_ON")).is_none());
    }

    #[test]
    fn netbox_objects_compare_by_reference_names_and_choice_values() {
        let object = json!({
            "id": 7,
            "name": "web-01",
            "status": {"value": "active", "label": "Active"},
            "cluster": {"id": 3, "name": "prod", "url": "http://netbox/api/virtualization/clusters/3/"},
            "vcpus": 4.0,
            "memory": 8192,
            "disk": null,
            "comments": "hand-written, not compared",
        });
        let seen = observed(VMS, &object);
        assert_eq!(seen["name"], json!("web-01"));
        assert_eq!(seen["status"], json!("active"));
        assert_eq!(seen["cluster"], json!("prod"));
        assert_eq!(
            seen["vcpus"],
            json!(4),
            "4.0 from NetBox equals 4 from vCenter"
        );
        assert_eq!(seen["disk"], Value::Null);
        assert!(
            !seen.contains_key("comments"),
            "only fields we manage are compared"
        );
        // What the plan would write compares equal to what NetBox would then hold.
        let desired = desired_vm(&vm("web-01", None, Some("prod"), "POWERED_ON")).unwrap();
        for field in ["name", "status", "cluster", "vcpus", "memory"] {
            assert_eq!(seen[field], desired[field], "{field}");
        }
        // And the write body names the cluster by a lookup, not an id.
        let body = write_body(VMS, &desired);
        assert_eq!(body["cluster"], json!({"name": "prod"}));
    }

    #[test]
    fn parents_rank_before_children_and_slugs_are_netbox_slugs() {
        let order = [TAGS, SITES, CLUSTERS, VMS, IFACES, IPS];
        for pair in order.windows(2) {
            assert!(
                rank(pair[0]) < rank(pair[1]),
                "{} before {}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(rank(CLUSTER_TYPES), rank(SITES));
        assert_eq!(slugify("Prod Cluster / DC1"), "prod-cluster-dc1");
        assert_eq!(slugify("--édge--"), "édge");
    }

    #[test]
    fn tags_match_by_slug_or_name() {
        assert!(is_tagged(
            &json!({"tags": [{"slug": "infradeck"}]}),
            "infradeck"
        ));
        assert!(is_tagged(
            &json!({"tags": [{"name": "infradeck"}]}),
            "infradeck"
        ));
        assert!(!is_tagged(
            &json!({"tags": [{"slug": "other"}]}),
            "infradeck"
        ));
        assert!(!is_tagged(&json!({"name": "untagged"}), "infradeck"));
    }
}
