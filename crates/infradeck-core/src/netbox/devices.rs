//! dcim devices: one per machine (an ESXi host, a bare-metal server, a switch, a storage array),
//! not per source record, placed by the `[[netbox.devices]]` rules, with their interfaces.
//!
//! Where a device goes and what it is: for each of site, role, manufacturer, device type and
//! platform, the first matching rule that sets it wins; otherwise the defaults below. A machine
//! nothing gives a site is skipped, with the reason, rather than sent with a guess.
//!
//! | field        | default                                                                   |
//! |--------------|---------------------------------------------------------------------------|
//! | site         | `[netbox] site`                                                           |
//! | role         | `Hypervisor` (vCenter hosts), `Server`, `Network`, `Storage`              |
//! | manufacturer | what a source reports (PuppetDB's DMI manufacturer; Huawei for Dorado, NetApp for ONTAP; Arista, Cisco or Juniper from an Oxidized model), else `Unknown` |
//! | device type  | the hardware model a source reports (PuppetDB, Foreman, Dorado), else `Unknown` |
//! | platform     | `VMware ESXi` (vCenter hosts), the Oxidized model, the OS name (PuppetDB, Foreman), `ONTAP`; none otherwise |
//!
//! Serial numbers come from PuppetDB, Foreman or Dorado; a vCenter host goes in its cluster when
//! the cluster is at the device's site (NetBox refuses a device in another site's cluster).

use super::addresses::Holder;
use super::client::NetboxClient;
use super::plan::{
    CABLES, DEVICE_IFACES, DEVICE_TYPES, DEVICES, MACS, MANUFACTURERS, PLATFORMS, ROLES, SITES,
    Target, differing, from_nothing, from_to, is_tagged, item, lookup, observed, slugify,
    with_our_tag, with_provenance, write_body,
};
use crate::app::PlanReport;
use crate::config::DeviceRule;
use crate::model::{ApprovalAction, DeviceType};
use crate::store::{InventoryCable, InventoryInterface, InventoryMachine, NewApprovalItem};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What is known about a machine for placing it: the facts rules match on and the defaults
/// come from, each with the source that supplied it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MachineFacts {
    /// The device name: the short host name, lower case (an address stays whole).
    pub(crate) name: String,
    pub(crate) kind: Option<DeviceType>,
    /// `system` and `system/instance` of every record.
    pub(crate) sources: Vec<String>,
    pub(crate) cluster: Option<String>,
    pub(crate) datacenter: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) hostgroup: Option<String>,
    pub(crate) location: Option<String>,
    /// (value, source system) of each.
    pub(crate) manufacturer: Option<(String, String)>,
    pub(crate) model: Option<(String, String)>,
    pub(crate) platform: Option<(String, String)>,
    pub(crate) serial: Option<(String, String)>,
    /// Records of a vCenter host (its role default and its cluster).
    pub(crate) is_hypervisor: bool,
}

/// The device name for a machine name: an address stays whole, a host name loses its domain.
pub(crate) fn device_name(name: &str) -> String {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_string();
    }
    name.split('.').next().unwrap_or(name).to_lowercase()
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The vendor behind an Oxidized model (its OS driver name).
fn vendor_of_oxidized_model(model: &str) -> Option<&'static str> {
    match model.to_ascii_lowercase().as_str() {
        "eos" => Some("Arista"),
        "ios" | "iosxe" | "iosxr" | "nxos" | "asa" | "aireos" => Some("Cisco"),
        "junos" | "screenos" => Some("Juniper"),
        "procurve" | "aoscx" | "arubaos" => Some("HPE Aruba"),
        "fortios" => Some("Fortinet"),
        "panos" => Some("Palo Alto Networks"),
        _ => None,
    }
}

/// Gathers the facts of a machine from its records (primary first: the first record that
/// reports a fact supplies it).
pub(crate) fn facts(machine: &InventoryMachine) -> MachineFacts {
    let mut facts = MachineFacts {
        name: device_name(&machine.name),
        kind: Some(machine.device_type),
        ..MachineFacts::default()
    };
    let set = |slot: &mut Option<(String, String)>, value: Option<String>, source: &str| {
        if slot.is_none()
            && let Some(value) = value
        {
            *slot = Some((value, source.to_string()));
        }
    };
    for record in &machine.records {
        let system = record.source_system.as_str();
        let m = &record.metadata;
        facts.sources.push(system.to_string());
        facts
            .sources
            .push(format!("{system}/{}", record.source_identifier));
        match system {
            "vcenter" => {
                facts.is_hypervisor = true;
                facts.cluster = facts.cluster.take().or_else(|| text(&m["cluster"]));
                facts.datacenter = facts.datacenter.take().or_else(|| text(&m["datacenter"]));
                set(&mut facts.platform, Some("VMware ESXi".to_string()), system);
            }
            "oxidized" => {
                facts.group = facts.group.take().or_else(|| text(&m["group"]));
                let model = text(&m["model"]);
                set(
                    &mut facts.manufacturer,
                    model
                        .as_deref()
                        .and_then(vendor_of_oxidized_model)
                        .map(str::to_string),
                    system,
                );
                set(&mut facts.platform, model, system);
            }
            "foreman" | "puppetdb" => {
                if system == "foreman" {
                    facts.hostgroup = facts.hostgroup.take().or_else(|| text(&m["hostgroup"]));
                    facts.location = facts.location.take().or_else(|| text(&m["location"]));
                }
                set(&mut facts.manufacturer, text(&m["manufacturer"]), system);
                set(&mut facts.model, text(&m["model"]), system);
                set(&mut facts.serial, text(&m["serial"]), system);
                // The OS family: "RedHat 8.9" runs the platform "RedHat".
                let os =
                    text(&m["os"]).and_then(|os| os.split_whitespace().next().map(str::to_string));
                set(&mut facts.platform, os, system);
            }
            "dorado" => {
                set(&mut facts.manufacturer, Some("Huawei".into()), system);
                set(&mut facts.model, text(&m["model"]), system);
                set(&mut facts.serial, text(&m["serial"]), system);
            }
            "netapp" => {
                set(&mut facts.manufacturer, Some("NetApp".into()), system);
                set(&mut facts.platform, Some("ONTAP".into()), system);
            }
            _ => {}
        }
    }
    facts
}

fn glob(pattern: &Option<String>, value: Option<&str>) -> bool {
    match pattern {
        None => true,
        Some(p) => value.is_some_and(|v| crate::text::glob_matches(&p.to_lowercase(), v)),
    }
}

/// Whether every pattern of `rule` matches the machine.
pub(crate) fn rule_matches(rule: &DeviceRule, facts: &MachineFacts) -> bool {
    let source = match &rule.source {
        None => true,
        Some(p) => facts
            .sources
            .iter()
            .any(|s| crate::text::glob_matches(&p.to_lowercase(), s)),
    };
    source
        && rule.device_type.is_none_or(|t| facts.kind == Some(t))
        && glob(&rule.name, Some(&facts.name))
        && glob(&rule.cluster, facts.cluster.as_deref())
        && glob(&rule.datacenter, facts.datacenter.as_deref())
        && glob(&rule.group, facts.group.as_deref())
        && glob(&rule.hostgroup, facts.hostgroup.as_deref())
        && glob(&rule.location, facts.location.as_deref())
}

/// Where a device goes and what it is, by name, with where each came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placement {
    pub(crate) site: String,
    pub(crate) role: String,
    pub(crate) manufacturer: String,
    pub(crate) model: String,
    pub(crate) platform: Option<String>,
    /// Field → where its value came from (`rule 2`, `puppetdb`, `[netbox] site`, `default`).
    pub(crate) why: BTreeMap<String, String>,
}

/// Places a machine by the rules and defaults; the reason when it cannot be (no site) or must
/// not be (a `skip` rule).
pub(crate) fn place(
    facts: &MachineFacts,
    rules: &[DeviceRule],
    default_site: Option<&str>,
) -> Result<Placement, String> {
    let mut why = BTreeMap::new();
    let mut chosen: BTreeMap<&str, String> = BTreeMap::new();
    for (index, rule) in rules.iter().enumerate() {
        if !rule_matches(rule, facts) {
            continue;
        }
        if rule.skip {
            return Err(format!(
                "skipped by [[netbox.devices]] rule {} (skip = true)",
                index + 1
            ));
        }
        for (field, value) in [
            ("site", &rule.site),
            ("role", &rule.role),
            ("manufacturer", &rule.manufacturer),
            ("device_type", &rule.model),
            ("platform", &rule.platform),
        ] {
            if let Some(value) = value
                && !chosen.contains_key(field)
            {
                chosen.insert(field, value.clone());
                why.insert(field.to_string(), format!("rule {}", index + 1));
            }
        }
    }
    let mut pick = |field: &str, fallback: Option<(String, String)>| -> Option<String> {
        if let Some(value) = chosen.get(field) {
            return Some(value.clone());
        }
        let (value, from) = fallback?;
        why.insert(field.to_string(), from);
        Some(value)
    };
    let site = pick(
        "site",
        default_site.map(|s| (s.to_string(), "[netbox] site".to_string())),
    )
    .ok_or_else(|| {
        "no site: set [netbox] site, or a [[netbox.devices]] rule with a site that matches it"
            .to_string()
    })?;
    let role_default = if facts.is_hypervisor {
        "Hypervisor"
    } else {
        match facts.kind {
            Some(DeviceType::NetworkDevice) => "Network",
            Some(DeviceType::Storage) => "Storage",
            _ => "Server",
        }
    };
    let unknown = || Some(("Unknown".to_string(), "no source reports it".to_string()));
    let role = pick(
        "role",
        Some((role_default.to_string(), "default".to_string())),
    )
    .unwrap_or_else(|| role_default.to_string());
    let manufacturer = pick("manufacturer", facts.manufacturer.clone().or_else(unknown))
        .unwrap_or_else(|| "Unknown".into());
    let model = pick("device_type", facts.model.clone().or_else(unknown))
        .unwrap_or_else(|| "Unknown".into());
    let platform = pick("platform", facts.platform.clone());
    Ok(Placement {
        site,
        role,
        manufacturer,
        model,
        platform,
        why,
    })
}

/// A device interface as NetBox should have it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DesiredInterface {
    pub(crate) name: String,
    pub(crate) mac: Option<String>,
    pub(crate) fields: BTreeMap<String, Value>,
    /// Addresses the records report on it (`10.0.0.5/24`, or bare).
    pub(crate) addresses: Vec<String>,
}

/// NetBox's interface type for what a source reported: virtual ones by kind or name, physical
/// ones by speed, `other` when nothing says.
pub(crate) fn interface_type(interface: &InventoryInterface) -> &'static str {
    let name = interface.name.to_ascii_lowercase();
    let junos_lag = name
        .strip_prefix("ae")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if name.starts_with("port-channel") || name.starts_with("bond") || junos_lag {
        return "lag";
    }
    if interface.interface_type.as_deref() == Some("virtual")
        || ["vlan", "loopback", "lo", "tunnel", "vmk"]
            .iter()
            .any(|p| name.starts_with(p))
    {
        return "virtual";
    }
    match interface.speed_mbps {
        Some(1000) => "1000base-t",
        Some(10_000) => "10gbase-x-sfpp",
        Some(25_000) => "25gbase-x-sfp28",
        Some(40_000) => "40gbase-x-qsfpp",
        Some(100_000) => "100gbase-x-qsfp28",
        _ => "other",
    }
}

/// The interfaces of a machine across its records: one per name (the first record that has it
/// speaks, later ones fill a missing MAC), and an interface another record already has under
/// its MAC is that one, not a second.
pub(crate) fn interfaces(machine: &InventoryMachine) -> Vec<DesiredInterface> {
    let mut out: Vec<(InventoryInterface, DesiredInterface)> = Vec::new();
    for interface in machine.records.iter().flat_map(|r| &r.interfaces) {
        let mac = interface.mac.as_deref().map(str::to_lowercase);
        let same_name = out
            .iter()
            .position(|(i, _)| i.name.eq_ignore_ascii_case(&interface.name));
        let same_mac = mac
            .as_ref()
            .and_then(|m| out.iter().position(|(_, d)| d.mac.as_ref() == Some(m)));
        if let Some(at) = same_name.or(same_mac) {
            let known = &mut out[at].1;
            if known.mac.is_none() {
                known.mac = mac;
            }
            for address in &interface.ip_addresses {
                if !known.addresses.contains(address) {
                    known.addresses.push(address.clone());
                }
            }
            continue;
        }
        let description = text(&interface.metadata["description"])
            .map(|d| crate::text::first_chars(&d, 200).to_string());
        let lower = interface.name.to_ascii_lowercase();
        let mut fields = BTreeMap::from([
            ("name".to_string(), json!(interface.name)),
            ("type".to_string(), json!(interface_type(interface))),
            (
                "enabled".to_string(),
                json!(interface.status.as_deref() != Some("disabled")),
            ),
            (
                "mgmt_only".to_string(),
                json!(lower.starts_with("mgmt") || lower.starts_with("management")),
            ),
        ]);
        if let Some(description) = description {
            fields.insert("description".into(), json!(description));
        }
        if let Some(speed) = interface.speed_mbps.filter(|s| *s > 0) {
            // NetBox counts interface speed in Kbps.
            fields.insert("speed".into(), json!(speed * 1000));
        }
        let desired = DesiredInterface {
            name: interface.name.clone(),
            mac,
            fields,
            addresses: interface.ip_addresses.clone(),
        };
        out.push((interface.clone(), desired));
    }
    out.into_iter().map(|(_, d)| d).collect()
}

/// The slug a device type gets: unique across manufacturers, as NetBox needs.
pub(crate) fn device_type_slug(manufacturer: &str, model: &str) -> String {
    slugify(&format!("{manufacturer} {model}"))
}

/// The objects devices refer to that NetBox has, by name and slug: a hand-made "Dell" with the
/// slug `dell` is used, not duplicated as `dell-inc`.
struct Catalog {
    endpoint: &'static str,
    /// Lower-case name (or model) → slug.
    by_name: HashMap<String, String>,
    slugs: HashSet<String>,
}

impl Catalog {
    async fn read(client: &NetboxClient, endpoint: &'static str) -> anyhow::Result<Catalog> {
        let objects = client.list(endpoint, &[]).await?;
        let mut catalog = Catalog {
            endpoint,
            by_name: HashMap::new(),
            slugs: HashSet::new(),
        };
        for object in &objects {
            let Some(slug) = object.get("slug").and_then(Value::as_str) else {
                continue;
            };
            let name = if endpoint == DEVICE_TYPES {
                // Device types are one manufacturer's model: named by both.
                let maker = object
                    .pointer("/manufacturer/slug")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let model = object
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                format!("{maker}|{}", model.to_lowercase())
            } else {
                object
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase()
            };
            catalog.by_name.insert(name, slug.to_string());
            catalog.slugs.insert(slug.to_string());
        }
        Ok(catalog)
    }

    /// The slug NetBox has for `name` (by name, then by the slug it would get).
    fn existing(&self, name: &str, would_be: &str) -> Option<String> {
        self.by_name
            .get(&name.to_lowercase())
            .cloned()
            .or_else(|| self.slugs.contains(would_be).then(|| would_be.to_string()))
    }
}

/// The key prefix of a prerequisite's item (`role:server`).
fn key_prefix(endpoint: &str) -> &'static str {
    match endpoint {
        SITES => "site",
        ROLES => "role",
        MANUFACTURERS => "manufacturer",
        DEVICE_TYPES => "device-type",
        _ => "platform",
    }
}

/// What planning devices produced for the rest of the plan.
#[derive(Default)]
pub(crate) struct Planned {
    /// Prerequisites first, then devices, their interfaces and MAC objects.
    pub(crate) items: Vec<NewApprovalItem>,
    /// vCenter host record → (device name, cluster) of each host device in its cluster: the
    /// VMs on that host go on that device.
    pub(crate) hosts: HashMap<i64, (String, String)>,
    /// The devices that are ours, with their addresses.
    pub(crate) holders: Vec<Holder>,
}

/// Everything a device plan reads from NetBox and what it is compared with.
pub(crate) struct DevicePlan<'a> {
    pub(crate) client: &'a NetboxClient,
    pub(crate) machines: &'a [InventoryMachine],
    pub(crate) cables: &'a [InventoryCable],
    pub(crate) rules: &'a [DeviceRule],
    /// Lower-case cluster name → the slug of the site it is scoped to (None: no site), for
    /// clusters NetBox has or this plan creates.
    pub(crate) cluster_sites: &'a HashMap<String, Option<String>>,
    /// MAC addresses NetBox has (lower case).
    pub(crate) macs: &'a super::plan::MacsInNetbox,
}

impl DevicePlan<'_> {
    /// The items for every placed machine: missing prerequisites, device creates and updates
    /// (tagged devices only), interfaces matched by name then MAC, their MAC objects.
    pub(crate) async fn compute(&self, report: &mut PlanReport) -> anyhow::Result<Planned> {
        let tag = self.client.tag.clone();
        let mut planned = Planned::default();
        let mut placed = Vec::new();
        let mut names = HashSet::new();
        for machine in self.machines {
            let facts = facts(machine);
            if !names.insert(facts.name.clone()) {
                continue; // two machines of one device name: the first one speaks
            }
            match place(&facts, self.rules, self.client.site.as_deref()) {
                Ok(placement) => placed.push((machine, facts, placement)),
                Err(reason) => report.unmapped.push(format!("{}: {reason}", facts.name)),
            }
        }
        if placed.is_empty() {
            return Ok(planned);
        }
        let mut catalogs = Vec::new();
        for endpoint in [SITES, ROLES, MANUFACTURERS, DEVICE_TYPES, PLATFORMS] {
            catalogs.push(Catalog::read(self.client, endpoint).await?);
        }
        let netbox_devices = self
            .client
            .list(DEVICES, &[("exclude", "config_context".to_string())])
            .await?;
        let netbox_ifaces = self.client.list(DEVICE_IFACES, &[]).await?;
        let mut prerequisites: BTreeMap<String, NewApprovalItem> = BTreeMap::new();
        let mut devices_by_name: HashMap<String, Vec<&Value>> = HashMap::new();
        for device in &netbox_devices {
            if let Some(name) = device.get("name").and_then(Value::as_str) {
                devices_by_name
                    .entry(name.to_lowercase())
                    .or_default()
                    .push(device);
            }
        }
        // What else identifies a device a person made by hand under another name.
        let mut devices_by_serial: HashMap<String, Vec<&Value>> = HashMap::new();
        for device in &netbox_devices {
            if let Some(serial) = device.get("serial").and_then(Value::as_str)
                && !serial.trim().is_empty()
            {
                devices_by_serial
                    .entry(serial.trim().to_lowercase())
                    .or_default()
                    .push(device);
            }
        }
        let device_by_id: HashMap<i64, &Value> = netbox_devices
            .iter()
            .filter_map(|d| Some((d.get("id")?.as_i64()?, d)))
            .collect();
        let mut devices_by_mac: HashMap<String, Vec<i64>> = HashMap::new();
        for iface in &netbox_ifaces {
            let mac = interface_mac(iface);
            if let (Some(mac), Some(device)) =
                (mac, iface.pointer("/device/id").and_then(Value::as_i64))
            {
                let holders = devices_by_mac.entry(mac.to_lowercase()).or_default();
                if !holders.contains(&device) {
                    holders.push(device);
                }
            }
        }
        let mut device_items = Vec::new();
        let mut ours: Vec<Ours> = Vec::new();
        for (machine, facts, placement) in &placed {
            let mut slug_of = |endpoint: &'static str, name: &str, maker: Option<&str>| {
                let catalog = catalogs
                    .iter()
                    .find(|c| c.endpoint == endpoint)
                    .expect("invariant: a catalog is read for every endpoint asked for");
                let (lookup_name, would_be) = match maker {
                    Some(maker) => (format!("{maker}|{name}"), device_type_slug(maker, name)),
                    None => (name.to_string(), slugify(name)),
                };
                if let Some(slug) = catalog.existing(&lookup_name, &would_be) {
                    return (slug, None);
                }
                let key = format!("{}:{would_be}", key_prefix(endpoint));
                prerequisites
                    .entry(key.clone())
                    .or_insert_with(|| prerequisite(endpoint, &key, name, &would_be, maker, &tag));
                (would_be, Some(key))
            };
            let mut needs = vec![format!("tag:{tag}")];
            let mut fields = BTreeMap::from([
                ("name".to_string(), json!(facts.name)),
                ("status".to_string(), json!("active")),
            ]);
            let (site, need) = slug_of(SITES, &placement.site, None);
            needs.extend(need);
            fields.insert("site".into(), json!(site));
            let (role, need) = slug_of(ROLES, &placement.role, None);
            needs.extend(need);
            fields.insert("role".into(), json!(role));
            let (maker, need) = slug_of(MANUFACTURERS, &placement.manufacturer, None);
            needs.extend(need);
            let (device_type, need) = slug_of(DEVICE_TYPES, &placement.model, Some(&maker));
            needs.extend(need);
            fields.insert("device_type".into(), json!(device_type));
            if let Some(platform) = &placement.platform {
                let (platform, need) = slug_of(PLATFORMS, platform, None);
                needs.extend(need);
                fields.insert("platform".into(), json!(platform));
            }
            if let Some((serial, _)) = &facts.serial {
                fields.insert("serial".into(), json!(serial));
            }
            let mut why: Map<String, Value> = placement
                .why
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            if let Some(cluster) = &facts.cluster {
                match self.cluster_sites.get(&cluster.to_lowercase()) {
                    Some(at) if at.as_deref().is_none_or(|s| s == site) => {
                        fields.insert("cluster".into(), json!(cluster));
                        needs.push(format!("cluster:{cluster}"));
                        for record in machine
                            .records
                            .iter()
                            .filter(|r| r.source_system == "vcenter")
                        {
                            planned
                                .hosts
                                .insert(record.device_id, (facts.name.clone(), cluster.clone()));
                        }
                    }
                    Some(Some(other)) => {
                        why.insert(
                            "cluster".into(),
                            json!(format!("not in cluster {cluster}: it is at site {other}")),
                        );
                    }
                    _ => {
                        why.insert(
                            "cluster".into(),
                            json!(format!("not in cluster {cluster}: NetBox does not have it")),
                        );
                    }
                }
            }
            if let Some((_, from)) = &facts.serial {
                why.insert("serial".into(), json!(from));
            }
            let candidates = devices_by_name
                .get(&facts.name.to_lowercase())
                .cloned()
                .unwrap_or_default();
            let existing = candidates
                .iter()
                .find(|d| d.pointer("/site/slug").and_then(Value::as_str) == Some(site.as_str()))
                .or(if candidates.len() == 1 {
                    candidates.first()
                } else {
                    None
                })
                .copied();
            if existing.is_none() && candidates.len() > 1 {
                report.unmapped.push(format!(
                    "{}: {} NetBox devices have this name, none at site {site}; not guessing which",
                    facts.name,
                    candidates.len()
                ));
                continue;
            }
            let interfaces = interfaces(machine);
            // No device of this name: one with its serial, else with one of its MACs, is the
            // same machine under another name.
            let (existing, matched_by) = match existing {
                Some(object) => (Some(object), "name and site"),
                None => {
                    let by_serial = facts
                        .serial
                        .as_ref()
                        .and_then(|(serial, _)| devices_by_serial.get(&serial.to_lowercase()))
                        .cloned()
                        .unwrap_or_default();
                    let mut by_mac: Vec<(i64, &str)> = Vec::new();
                    for mac in interfaces.iter().filter_map(|i| i.mac.as_deref()) {
                        for id in devices_by_mac.get(mac).into_iter().flatten() {
                            if !by_mac.iter().any(|(seen, _)| seen == id) {
                                by_mac.push((*id, mac));
                            }
                        }
                    }
                    match (by_serial.as_slice(), by_mac.as_slice()) {
                        ([one], _) => (Some(*one), "serial"),
                        ([], [(id, _)]) => (device_by_id.get(id).copied(), "MAC address"),
                        ([], []) => (None, ""),
                        (serials, macs) => {
                            report.unmapped.push(format!(
                                "{}: {} NetBox devices share its serial or MAC addresses; not guessing which it is",
                                facts.name,
                                serials.len().max(macs.len())
                            ));
                            continue;
                        }
                    }
                }
            };
            let device_id = machine.records.first().map(|r| r.device_id);
            match existing {
                None => {
                    let mut body = write_body(DEVICES, &fields);
                    body["tags"] = json!([{"slug": tag}]);
                    with_provenance(
                        &mut body,
                        &mut needs,
                        provenance(machine, fields.keys(), &why),
                    );
                    device_items.push(item(
                        ApprovalAction::Create,
                        DEVICES,
                        Target {
                            device_id,
                            object_id: None,
                            key: format!("device:{}", facts.name),
                        },
                        from_nothing(&fields),
                        body,
                        json!({
                            "match": {"name": facts.name, "site_id": lookup(SITES, json!({"slug": site}))},
                            "needs": needs,
                            "why": why,
                        }),
                    ));
                    ours.push(Ours {
                        machine,
                        name: facts.name.clone(),
                        site,
                        existing: None,
                        interfaces,
                    });
                }
                Some(object) => {
                    let current = observed(DEVICES, object);
                    let mut differing = differing(&fields, &current);
                    let at_site = current.get("site") == Some(&json!(site));
                    // Made by hand: adopted (our tag and the differing fields, one item to
                    // review) when it is the same machine, left alone at another site.
                    let adopt = !is_tagged(object, &tag);
                    if adopt && matched_by == "name and site" && !at_site {
                        report.untagged.push(format!(
                            "{} (NetBox has it by hand at site {}, not {site}; not adopted)",
                            facts.name,
                            current
                                .get("site")
                                .and_then(Value::as_str)
                                .unwrap_or("none")
                        ));
                        continue;
                    }
                    if adopt {
                        with_our_tag(&mut differing, &current, &tag);
                    }
                    let at = current
                        .get("site")
                        .and_then(Value::as_str)
                        .unwrap_or(&site)
                        .to_string();
                    ours.push(Ours {
                        machine,
                        name: facts.name.clone(),
                        site: at,
                        existing: Some(object),
                        interfaces,
                    });
                    if differing.is_empty() {
                        continue;
                    }
                    let mut extra = json!({"seen": current, "why": why});
                    if adopt {
                        extra["adopt"] = json!({"matched_by": matched_by});
                    } else if matched_by != "name and site" {
                        // Ours under another name: renamed in the source.
                        extra["matched_by"] = json!(matched_by);
                    }
                    device_items.push(item(
                        ApprovalAction::Update,
                        DEVICES,
                        Target {
                            device_id,
                            object_id: object.get("id").and_then(Value::as_i64),
                            key: format!("device:{}", facts.name),
                        },
                        from_to(&differing, &current),
                        {
                            let mut body = write_body(DEVICES, &differing);
                            let provenance = provenance(machine, differing.keys(), &why);
                            with_provenance(&mut body, &mut needs, provenance);
                            body
                        },
                        {
                            extra["needs"] = json!(needs);
                            extra
                        },
                    ));
                }
            }
        }
        planned.items.extend(prerequisites.into_values());
        planned.items.extend(device_items);
        let interface_items = self.interfaces(&ours, &netbox_ifaces, &tag, report);
        planned.items.extend(interface_items);
        let cable_items = self.cables(&ours, &netbox_ifaces, &tag, report);
        planned.items.extend(cable_items);
        planned.holders = ours.iter().map(holder).collect();
        Ok(planned)
    }

    /// Interface and MAC items for the devices that are ours: an interface NetBox has by name
    /// is compared; one it has under the same MAC on the device is renamed, never duplicated.
    fn interfaces(
        &self,
        ours: &[Ours],
        netbox_ifaces: &[Value],
        tag: &str,
        report: &mut PlanReport,
    ) -> Vec<NewApprovalItem> {
        let mut by_name: HashMap<(String, String), &Value> = HashMap::new();
        let mut by_mac: HashMap<(String, String), &Value> = HashMap::new();
        for iface in netbox_ifaces {
            let Some(device) = iface.pointer("/device/name").and_then(Value::as_str) else {
                continue;
            };
            let device = device.to_lowercase();
            if let Some(name) = iface.get("name").and_then(Value::as_str) {
                by_name.insert((device.clone(), name.to_lowercase()), iface);
            }
            let mac = interface_mac(iface);
            if let Some(mac) = mac {
                by_mac.insert((device, mac.to_lowercase()), iface);
            }
        }
        let mut items = Vec::new();
        let mut macs = Vec::new();
        let mut seen_macs = HashSet::new();
        for Ours {
            machine,
            name: device,
            site,
            interfaces,
            ..
        } in ours
        {
            let device_ref = lookup(
                DEVICES,
                json!({"name": device, "site_id": lookup(SITES, json!({"slug": site}))}),
            );
            let device_key = device.to_lowercase();
            let device_id = machine.records.first().map(|r| r.device_id);
            for wanted in interfaces {
                let existing = by_name
                    .get(&(device_key.clone(), wanted.name.to_lowercase()))
                    .or_else(|| {
                        let mac = wanted.mac.clone()?;
                        by_mac.get(&(device_key.clone(), mac))
                    })
                    .copied();
                let key = format!("interface:{device}/{}", wanted.name);
                match existing {
                    None => {
                        let mut body = Value::Object(
                            wanted
                                .fields
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        );
                        body["device"] = device_ref.clone();
                        body["tags"] = json!([{"slug": tag}]);
                        let mut shown = wanted.fields.clone();
                        shown.insert("device".into(), json!(device));
                        items.push(item(
                            ApprovalAction::Create,
                            DEVICE_IFACES,
                            Target {
                                device_id,
                                object_id: None,
                                key: key.clone(),
                            },
                            from_nothing(&shown),
                            body,
                            json!({
                                "match": {"name": wanted.name, "device_id": device_ref},
                                "needs": [format!("tag:{tag}"), format!("device:{device}")],
                            }),
                        ));
                    }
                    Some(object) => {
                        if !is_tagged(object, tag) {
                            continue;
                        }
                        let current = observed(DEVICE_IFACES, object);
                        let differing = differing(&wanted.fields, &current);
                        if !differing.is_empty() {
                            items.push(item(
                                ApprovalAction::Update,
                                DEVICE_IFACES,
                                Target {
                                    device_id,
                                    object_id: object.get("id").and_then(Value::as_i64),
                                    key: key.clone(),
                                },
                                from_to(&differing, &current),
                                Value::Object(differing.into_iter().collect()),
                                json!({"seen": current}),
                            ));
                        }
                    }
                }
                let Some(mac) = wanted.mac.clone() else {
                    continue;
                };
                if !seen_macs.insert(mac.clone())
                    || self.macs.has(&mac, device, &wanted.name, report)
                {
                    continue;
                }
                let iface_ref = lookup(
                    DEVICE_IFACES,
                    json!({"name": wanted.name, "device_id": device_ref}),
                );
                macs.push(item(
                    ApprovalAction::Create,
                    MACS,
                    Target {
                        device_id,
                        object_id: None,
                        key: format!("mac:{mac}"),
                    },
                    json!({"mac_address": {"from": null, "to": mac}}),
                    json!({
                        "mac_address": mac.to_uppercase(),
                        "assigned_object_type": "dcim.interface",
                        "assigned_object_id": iface_ref,
                        "tags": [{"slug": tag}],
                    }),
                    json!({
                        "match": {"mac_address": mac},
                        "on": format!("{device} {}", wanted.name),
                        "primary_of": iface_ref,
                        "needs": [format!("tag:{tag}"), key],
                    }),
                ));
            }
        }
        items.extend(macs);
        items
    }
}

impl DevicePlan<'_> {
    /// A cable item for each server NIC ↔ switch port the inventory knows (CDP/LLDP) between
    /// two devices of ours, once both interfaces exist or are planned. An interface NetBox has
    /// cabled to something else is reported, never re-cabled.
    fn cables(
        &self,
        ours: &[Ours],
        netbox_ifaces: &[Value],
        tag: &str,
        report: &mut PlanReport,
    ) -> Vec<NewApprovalItem> {
        let mut device_of_record: HashMap<i64, &Ours> = HashMap::new();
        for device in ours {
            for record in &device.machine.records {
                device_of_record.insert(record.device_id, device);
            }
        }
        // (device, interface), lower case → the NetBox interface.
        let existing: HashMap<(String, String), &Value> = netbox_ifaces
            .iter()
            .filter_map(|i| {
                let device = i.pointer("/device/name")?.as_str()?.to_lowercase();
                Some(((device, i.get("name")?.as_str()?.to_lowercase()), i))
            })
            .collect();
        // The interface's name as planned or as NetBox has it; None: neither has it.
        let interface = |device: &Ours, name: &str| -> Option<String> {
            device
                .interfaces
                .iter()
                .find(|i| i.name.eq_ignore_ascii_case(name))
                .map(|i| i.name.clone())
                .or_else(|| {
                    let found = existing.get(&(device.name.to_lowercase(), name.to_lowercase()))?;
                    found.get("name")?.as_str().map(str::to_string)
                })
        };
        let mut items = Vec::new();
        let mut cabled: HashSet<(String, String)> = HashSet::new();
        for cable in self.cables {
            let (Some(server), Some(switch)) = (
                device_of_record.get(&cable.server_record),
                device_of_record.get(&cable.switch_record),
            ) else {
                continue; // an end NetBox will not have from this plan
            };
            let (Some(nic), Some(port)) = (
                interface(server, &cable.server_nic),
                interface(switch, &cable.switch_port),
            ) else {
                report.unmapped.push(format!(
                    "cable {} {} ↔ {} {}: an end has no interface in the inventory",
                    server.name, cable.server_nic, switch.name, cable.switch_port
                ));
                continue;
            };
            let ends = [(&server.name, &nic), (&switch.name, &port)];
            if ends
                .iter()
                .any(|(d, i)| !cabled.insert((d.to_lowercase(), i.to_lowercase())))
            {
                continue; // one end already has a cable in this plan
            }
            // Per end, the far ends of the cable NetBox has on it (None: not cabled).
            let peers_in_netbox: Vec<Option<Vec<String>>> = ends
                .iter()
                .map(|(d, i)| {
                    existing
                        .get(&(d.to_lowercase(), i.to_lowercase()))
                        .filter(|found| !found["cable"].is_null())
                        .map(|found| cable_peers(found))
                })
                .collect();
            let wanted_peer = |(d, i): &(&String, &String)| format!("{d} {i}").to_lowercase();
            if peers_in_netbox[0]
                .as_ref()
                .is_some_and(|peers| peers.contains(&wanted_peer(&ends[1])))
            {
                continue; // NetBox has this cable
            }
            if let Some(((d, i), peers)) = ends
                .iter()
                .zip(&peers_in_netbox)
                .find_map(|(end, peers)| Some((end, peers.as_ref()?)))
            {
                // NetBox keeps a cable whose other end's device was deleted, that end empty.
                let far = if peers.is_empty() {
                    "a cable with no far end".to_string()
                } else {
                    peers.join(", ")
                };
                report.unmapped.push(format!(
                    "cable {} {nic} ↔ {} {port}: NetBox has {d} {i} cabled to {far}; not re-cabled",
                    server.name, switch.name,
                ));
                continue;
            }
            let termination = |device: &Ours, name: &str| {
                let device_ref = lookup(
                    DEVICES,
                    json!({"name": device.name, "site_id": lookup(SITES, json!({"slug": device.site}))}),
                );
                json!([{
                    "object_type": "dcim.interface",
                    "object_id": lookup(DEVICE_IFACES, json!({"name": name, "device_id": device_ref})),
                }])
            };
            let a_end = termination(server, &nic);
            let fields = BTreeMap::from([
                ("a".to_string(), json!(format!("{} {nic}", server.name))),
                ("b".to_string(), json!(format!("{} {port}", switch.name))),
                ("status".to_string(), json!("connected")),
            ]);
            items.push(item(
                ApprovalAction::Create,
                CABLES,
                Target {
                    device_id: server.machine.records.first().map(|r| r.device_id),
                    object_id: None,
                    key: format!("cable:{}/{nic}", server.name),
                },
                from_nothing(&fields),
                json!({
                    "a_terminations": a_end,
                    "b_terminations": termination(switch, &port),
                    "status": "connected",
                    "tags": [{"slug": tag}],
                }),
                json!({
                    "match": {"interface_id": a_end[0]["object_id"]},
                    "needs": [
                        format!("tag:{tag}"),
                        format!("interface:{}/{nic}", server.name),
                        format!("interface:{}/{port}", switch.name),
                    ],
                }),
            ));
        }
        items
    }
}

/// A NetBox interface's MAC: `mac_address` (the primary MAC's, as NetBox 4.2+ fills it), else
/// the nested primary MAC object's.
fn interface_mac(iface: &Value) -> Option<&str> {
    iface
        .get("mac_address")
        .and_then(Value::as_str)
        .or_else(|| {
            iface
                .pointer("/primary_mac_address/mac_address")
                .and_then(Value::as_str)
        })
}

/// "device interface" of each far end of a cabled NetBox interface, lower case.
pub(crate) fn cable_peers(interface: &Value) -> Vec<String> {
    interface
        .get("link_peers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|peer| {
            let device = peer.pointer("/device/name")?.as_str()?;
            let name = peer.get("name")?.as_str()?;
            Some(format!("{device} {name}").to_lowercase())
        })
        .collect()
}

/// Where each field of a device write came from: a source (and when that source last
/// confirmed the machine), a rule, or a default.
fn provenance<'a>(
    machine: &InventoryMachine,
    fields: impl Iterator<Item = &'a String>,
    why: &Map<String, Value>,
) -> Value {
    let primary = machine.records.first();
    Value::Object(
        fields
            .map(|field| {
                let source = match field.as_str() {
                    "name" | "status" => primary.map(|r| r.source_system.clone()),
                    "cluster" => Some("vcenter".to_string()),
                    _ => why.get(field).and_then(Value::as_str).map(str::to_string),
                }
                .unwrap_or_else(|| "default".to_string());
                let confirmed = machine
                    .records
                    .iter()
                    .find(|r| r.source_system == source)
                    .and_then(|r| r.last_seen.clone());
                (
                    field.clone(),
                    json!({"source": source, "confirmed": confirmed}),
                )
            })
            .collect(),
    )
}

/// A device that is ours: created by this plan or tagged in NetBox.
struct Ours<'a> {
    machine: &'a InventoryMachine,
    name: String,
    site: String,
    existing: Option<&'a Value>,
    /// Its interfaces across its records, merged once.
    interfaces: Vec<DesiredInterface>,
}

/// A device as the address plan sees it.
fn holder(ours: &Ours) -> Holder {
    Holder {
        name: ours.name.clone(),
        site: Some(ours.site.clone()),
        device_id: ours.machine.records.first().map(|r| r.device_id),
        interfaces: ours
            .interfaces
            .iter()
            .map(|i| {
                let mgmt = i.fields.get("mgmt_only") == Some(&json!(true));
                (i.name.clone(), i.addresses.clone(), mgmt)
            })
            .collect(),
        resolves_to: ours
            .machine
            .records
            .iter()
            .filter_map(|r| Some((text(&r.metadata["ip"])?, r.source_system.clone())))
            .collect(),
        primary: super::addresses::primaries_of(ours.existing),
        netbox_id: ours.existing.and_then(|o| o.get("id")?.as_i64()),
    }
}

/// A create of something devices refer to that NetBox lacks.
fn prerequisite(
    endpoint: &'static str,
    key: &str,
    name: &str,
    slug: &str,
    maker: Option<&str>,
    tag: &str,
) -> NewApprovalItem {
    let mut fields = BTreeMap::from([("slug".to_string(), json!(slug))]);
    let mut needs = vec![format!("tag:{tag}")];
    let mut body = json!({"slug": slug, "tags": [{"slug": tag}]});
    match endpoint {
        DEVICE_TYPES => {
            let maker = maker.unwrap_or_default();
            fields.insert("model".into(), json!(name));
            fields.insert("manufacturer".into(), json!(maker));
            body["model"] = json!(name);
            body["manufacturer"] = json!({"slug": maker});
            needs.push(format!("manufacturer:{maker}"));
        }
        _ => {
            fields.insert("name".into(), json!(name));
            body["name"] = json!(name);
        }
    }
    match endpoint {
        SITES => body["status"] = json!("active"),
        ROLES => body["color"] = json!("9e9e9e"),
        _ => {}
    }
    item(
        ApprovalAction::Create,
        endpoint,
        Target {
            device_id: None,
            object_id: None,
            key: key.to_string(),
        },
        from_nothing(&fields),
        body,
        json!({"match": {"slug": slug}, "needs": needs, "prerequisite": true}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InventoryRecord;

    fn record(
        system: &str,
        metadata: Value,
        interfaces: Vec<InventoryInterface>,
    ) -> InventoryRecord {
        InventoryRecord {
            device_id: 1,
            source_system: system.into(),
            source_identifier: format!("{system}-1"),
            name: "x".into(),
            metadata,
            last_seen: None,
            interfaces,
        }
    }

    fn nic(name: &str, mac: Option<&str>, speed: Option<i64>) -> InventoryInterface {
        InventoryInterface {
            name: name.into(),
            mac: mac.map(Into::into),
            ip_addresses: vec![],
            speed_mbps: speed,
            status: Some("up".into()),
            interface_type: Some("physical".into()),
            metadata: json!({}),
        }
    }

    fn machine(name: &str, kind: DeviceType, records: Vec<InventoryRecord>) -> InventoryMachine {
        InventoryMachine {
            machine_id: 1,
            name: name.into(),
            device_type: kind,
            records,
        }
    }

    #[test]
    fn facts_come_from_the_first_record_that_reports_them() {
        let m = machine(
            "BM-DB-01.dc1.example.net",
            DeviceType::Server,
            vec![
                record(
                    "puppetdb",
                    json!({"manufacturer": "Dell Inc.", "model": "PowerEdge R750", "serial": "ABC", "os": "RedHat 8.9"}),
                    vec![],
                ),
                record(
                    "foreman",
                    json!({"model": "Other", "serial": "XYZ", "hostgroup": "DC1/baremetal", "location": "DC1"}),
                    vec![],
                ),
            ],
        );
        let f = facts(&m);
        assert_eq!(f.name, "bm-db-01");
        assert_eq!(f.model, Some(("PowerEdge R750".into(), "puppetdb".into())));
        assert_eq!(f.serial, Some(("ABC".into(), "puppetdb".into())));
        assert_eq!(f.platform, Some(("RedHat".into(), "puppetdb".into())));
        assert_eq!(f.hostgroup.as_deref(), Some("DC1/baremetal"));
        assert!(f.sources.contains(&"foreman/foreman-1".to_string()));
        assert_eq!(
            device_name("172.16.1.103"),
            "172.16.1.103",
            "an address stays whole"
        );
    }

    #[test]
    fn the_first_matching_rule_that_sets_a_field_wins_and_the_rest_default() {
        let esx = machine(
            "esx001.dc1.example.net",
            DeviceType::Server,
            vec![record(
                "vcenter",
                json!({"cluster": "dc1-prod-01", "datacenter": "dc1"}),
                vec![],
            )],
        );
        let f = facts(&esx);
        let rules = vec![
            DeviceRule {
                datacenter: Some("DC1".into()),
                site: Some("Site One".into()),
                ..DeviceRule::default()
            },
            DeviceRule {
                source: Some("vcenter".into()),
                site: Some("never".into()),
                manufacturer: Some("Dell".into()),
                ..DeviceRule::default()
            },
        ];
        let p = place(&f, &rules, Some("fallback")).unwrap();
        assert_eq!(p.site, "Site One", "rule 1 sets the site first");
        assert_eq!(p.why["site"], "rule 1");
        assert_eq!(p.manufacturer, "Dell");
        assert_eq!(p.why["manufacturer"], "rule 2");
        assert_eq!(p.role, "Hypervisor");
        assert_eq!(p.model, "Unknown");
        assert_eq!(p.why["device_type"], "no source reports it");
        assert_eq!(p.platform.as_deref(), Some("VMware ESXi"));
        // No site anywhere: skipped with the reason, not guessed.
        let err = place(&f, &[], None).unwrap_err();
        assert!(err.contains("no site"), "{err}");
        // A skip rule.
        let skip = vec![DeviceRule {
            name: Some("esx*".into()),
            skip: true,
            ..DeviceRule::default()
        }];
        assert!(place(&f, &skip, Some("s")).unwrap_err().contains("rule 1"));
        // A pattern that does not match leaves the defaults.
        let other = vec![DeviceRule {
            cluster: Some("dc2-*".into()),
            site: Some("DC2".into()),
            ..DeviceRule::default()
        }];
        assert_eq!(
            place(&f, &other, Some("fallback")).unwrap().site,
            "fallback"
        );
    }

    #[test]
    fn interfaces_merge_across_records_by_name_then_mac() {
        let m = machine(
            "bm-01",
            DeviceType::Server,
            vec![
                record("foreman", json!({}), vec![nic("eth0", None, None)]),
                record(
                    "vcenter",
                    json!({}),
                    vec![
                        nic("ETH0", Some("AA:BB:CC:00:00:01"), Some(25_000)),
                        nic("vmnic1", Some("aa:bb:cc:00:00:02"), Some(10_000)),
                    ],
                ),
                record(
                    "puppetdb",
                    json!({}),
                    vec![nic("ens1", Some("aa:bb:cc:00:00:02"), None)],
                ),
            ],
        );
        let got = interfaces(&m);
        let names: Vec<&str> = got.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "vmnic1"], "no duplicate by name or MAC");
        assert_eq!(
            got[0].mac.as_deref(),
            Some("aa:bb:cc:00:00:01"),
            "MAC filled in"
        );
        assert_eq!(got[1].fields["type"], json!("10gbase-x-sfpp"));
        assert_eq!(got[1].fields["speed"], json!(10_000_000));
        let mut vlan = nic("Vlan1", None, None);
        vlan.interface_type = Some("virtual".into());
        assert_eq!(interface_type(&vlan), "virtual");
        assert_eq!(interface_type(&nic("Port-Channel1", None, None)), "lag");
        assert_eq!(interface_type(&nic("Ethernet1", None, None)), "other");
    }
}
