//! Correlation: records of one machine seen by several sources are linked with `same_as`.
//!
//! Evidence, strongest first: BIOS UUID, vCenter instance UUID, serial number; then a shared MAC
//! address; then the normalized host name (case-folded, domain stripped) as the weakest. Two
//! records that disagree on a strong key are never linked, whatever else matches. A record links
//! to at most one record per other source instance; when the best evidence is ambiguous (two
//! candidates equally good), nothing is linked. The parent of a link is the record of the more
//! authoritative source (Foreman, then PuppetDB, then vCenter). Every link made or removed is
//! audited like any other change.

use crate::app::CorrelationReport;
use crate::model::{DeviceType, RelationshipType};
use crate::store::{NewHistory, Result, Store};

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

/// (record index, other source instance) → the best evidence found and the records showing it.
type Candidates = HashMap<(usize, (String, String)), (Evidence, Vec<usize>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Evidence {
    Hostname = 1,
    Mac = 2,
    Strong = 3,
}

impl Evidence {
    fn as_str(self) -> &'static str {
        match self {
            Evidence::Hostname => "hostname",
            Evidence::Mac => "mac",
            Evidence::Strong => "uuid_or_serial",
        }
    }
}

struct Keys {
    id: i64,
    source: (String, String),
    priority: u8,
    bios: Option<String>,
    instance: Option<String>,
    serial: Option<String>,
    macs: Vec<String>,
    hostname: Option<String>,
}

fn text(ns: &Value, key: &str) -> Option<String> {
    ns.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

fn priority(source_system: &str) -> u8 {
    match source_system {
        "foreman" => 0,
        "puppetdb" => 1,
        "vcenter" => 2,
        _ => 3,
    }
}

fn keys_of(id: i64, system: &str, instance: &str, name: &str, metadata: Option<&str>) -> Keys {
    let metadata: Value = metadata
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    let ns = &metadata[system];
    let mut macs: Vec<String> = ns
        .get("macs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(crate::model::normalize_mac)
                .collect()
        })
        .unwrap_or_default();
    if let Some(mac) = ns
        .get("mac")
        .and_then(Value::as_str)
        .and_then(crate::model::normalize_mac)
    {
        macs.push(mac);
    }
    macs.sort();
    macs.dedup();
    Keys {
        id,
        source: (system.to_string(), instance.to_string()),
        priority: priority(system),
        bios: text(ns, "bios_uuid"),
        instance: text(ns, "instance_uuid"),
        serial: text(ns, "serial"),
        macs,
        hostname: text(ns, "hostname")
            .or_else(|| Some(crate::model::short_hostname(name)))
            .filter(|h| !h.is_empty()),
    }
}

/// The evidence linking two records, or `None` when they must not be linked.
fn evidence(a: &Keys, b: &Keys) -> Option<Evidence> {
    let disagree =
        |x: &Option<String>, y: &Option<String>| matches!((x, y), (Some(x), Some(y)) if x != y);
    if disagree(&a.bios, &b.bios)
        || disagree(&a.instance, &b.instance)
        || disagree(&a.serial, &b.serial)
    {
        return None;
    }
    let agree =
        |x: &Option<String>, y: &Option<String>| matches!((x, y), (Some(x), Some(y)) if x == y);
    if agree(&a.bios, &b.bios) || agree(&a.instance, &b.instance) || agree(&a.serial, &b.serial) {
        return Some(Evidence::Strong);
    }
    if a.macs.iter().any(|m| b.macs.contains(m)) {
        return Some(Evidence::Mac);
    }
    if agree(&a.hostname, &b.hostname) {
        return Some(Evidence::Hostname);
    }
    None
}

/// What correlation is configured by: where LLDP neighbours are in facts, and how machines
/// pick their primary record and judge health.
#[derive(Debug, Clone)]
pub struct CorrelationSettings {
    pub lldp_facts: Vec<String>,
    pub machines: crate::machines::MachineRules,
}

impl Default for CorrelationSettings {
    fn default() -> Self {
        CorrelationSettings {
            lldp_facts: crate::config::General::default().lldp_facts,
            machines: crate::machines::MachineRules::default(),
        }
    }
}

impl CorrelationSettings {
    /// The settings a configuration gives.
    pub fn of(config: &crate::config::Config) -> CorrelationSettings {
        CorrelationSettings {
            lldp_facts: config.general.lldp_facts.clone(),
            machines: config.machine_rules(),
        }
    }
}

/// Opens the database and correlates it now, as the OS user: for the places that run it after
/// a sync (`sync --watch`, the dashboard).
pub fn correlate_file(
    database: &std::path::Path,
    open: &crate::store::OpenOptions,
    settings: &CorrelationSettings,
) -> anyhow::Result<CorrelationReport> {
    let mut store = Store::open(database, open)?;
    Ok(correlate_with(
        &mut store,
        &crate::time::now(),
        &crate::identity::os_user(),
        settings,
    )?)
}

/// [`correlate_with`] with the default settings.
pub fn correlate(store: &mut Store, at: &str, performed_by: &str) -> Result<CorrelationReport> {
    correlate_with(store, at, performed_by, &CorrelationSettings::default())
}

/// Links records of one machine (`same_as`), servers to their switches (`connects_to`, from
/// vCenter's CDP/LLDP hints and the `lldp_facts` of PuppetDB or Foreman), and datastores to the
/// array volumes behind them; then recomputes the machines (groups, primary records, health)
/// from the links it made. All in one transaction.
pub fn correlate_with(
    store: &mut Store,
    at: &str,
    performed_by: &str,
    settings: &CorrelationSettings,
) -> Result<CorrelationReport> {
    let lldp_facts = settings.lldp_facts.as_slice();
    let sync_id = format!("correlate-{}", at.replace([' ', ':'], "-"));
    store.write(|w| {
        let rows = w.correlation_rows()?;
        let records: Vec<Keys> = rows
            .iter()
            .filter(|r| matches!(r.device_type, DeviceType::Server | DeviceType::Vm))
            .map(|r| keys_of(r.id, &r.source_system, &r.source_identifier, &r.name, r.metadata.as_deref()))
            .collect();
        let mut index: HashMap<(u8, &str), Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            for (kind, value) in [(0u8, &r.bios), (1, &r.instance), (2, &r.serial), (4, &r.hostname)] {
                if let Some(v) = value {
                    index.entry((kind, v.as_str())).or_default().push(i);
                }
            }
            for mac in &r.macs {
                index.entry((3, mac.as_str())).or_default().push(i);
            }
        }
        // Best candidate per (record, other source instance).
        let mut best: Candidates = HashMap::new();
        let mut pairs: HashSet<(usize, usize)> = HashSet::new();
        for members in index.values() {
            if members.len() > 50 {
                continue; // a key shared this widely (a template MAC, "localhost") proves nothing
            }
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    if records[a].source != records[b].source {
                        pairs.insert((a.min(b), a.max(b)));
                    }
                }
            }
        }
        for &(a, b) in &pairs {
            let Some(ev) = evidence(&records[a], &records[b]) else { continue };
            for (me, other) in [(a, b), (b, a)] {
                let slot = best.entry((me, records[other].source.clone())).or_insert((ev, Vec::new()));
                if ev > slot.0 {
                    *slot = (ev, vec![other]);
                } else if ev == slot.0 {
                    slot.1.push(other);
                }
            }
        }
        let mut wanted: BTreeMap<(i64, i64), Evidence> = BTreeMap::new();
        for ((me, _), (ev, candidates)) in &best {
            if candidates.len() != 1 {
                continue; // ambiguous
            }
            let other = candidates[0];
            // Both sides must pick each other.
            let back = best.get(&(other, records[*me].source.clone()));
            if back.is_none_or(|(_, c)| c.len() != 1 || c[0] != *me) {
                continue;
            }
            let (a, b) = (&records[*me], &records[other]);
            let (parent, child) = if (a.priority, &a.source, a.id) <= (b.priority, &b.source, b.id) { (a.id, b.id) } else { (b.id, a.id) };
            wanted.insert((parent, child), *ev);
        }
        let existing = w.same_as_links()?;
        let mut report = CorrelationReport::default();
        let audit = |w: &crate::store::Writer<'_>, op: &str, child: i64, old: Value, new: Value| {
            w.record_history(&NewHistory {
                sync_id: &sync_id,
                source_system: "correlation",
                source_identifier: "",
                operation: op,
                device_id: Some(child),
                change_type: "relationship",
                old_value: old,
                new_value: new,
                performed_by,
                performed_at: at,
                metadata: Value::Null,
            })
        };
        for link in &existing {
            if !wanted.contains_key(&(link.parent, link.child)) {
                w.delete_link(link.id)?;
                report.unlinked += 1;
                audit(w, "delete", link.child, json!({"parent_device_id": link.parent, "child_device_id": link.child, "relationship_type": "same_as"}), Value::Null)?;
            }
        }
        let have: HashSet<(i64, i64)> = existing.iter().map(|l| (l.parent, l.child)).collect();
        for ((parent, child), ev) in &wanted {
            let metadata = json!({"evidence": ev.as_str()});
            if !have.contains(&(*parent, *child)) {
                w.link(*parent, *child, RelationshipType::SameAs, &metadata, at)?;
                report.linked += 1;
                audit(w, "add", *child, Value::Null, json!({"parent_device_id": parent, "child_device_id": child, "relationship_type": "same_as", "evidence": ev.as_str()}))?;
            }
        }
        report.total_links = wanted.len();
        report.uplinks = link_uplinks(w, &rows, lldp_facts, at, &|w, op: &str, child: i64, old: Value, new: Value| audit(w, op, child, old, new))?;
        report.backed_datastores = link_datastores(w, at, &|w, old: Value, new: Value| {
            // A volume link concerns no device: the volume ids are in the JSON.
            w.record_history(&NewHistory {
                sync_id: &sync_id,
                source_system: "correlation",
                source_identifier: "",
                operation: if new.is_null() { "delete" } else { "add" },
                device_id: None,
                change_type: "volume_relationship",
                old_value: old,
                new_value: new,
                performed_by,
                performed_at: at,
                metadata: Value::Null,
            })
        })?;
        report.machines =
            crate::machines::refresh_in(w, &settings.machines, &sync_id, performed_by, at)?;
        Ok(report)
    })
}

/// The switch name a CDP/LLDP neighbour announces, as the inventory names switches: CDP's device
/// id may carry the serial in brackets (`leaf01(FOC1234)`) and a domain (`leaf01.dc1.example`).
fn switch_key(announced: &str) -> String {
    let name = announced.split('(').next().unwrap_or(announced);
    crate::model::short_hostname(name)
}

/// LLDP neighbours from facts, per interface: `chassis.name` and `port.ifname` (else `port.id`).
/// PuppetDB stores the fact whole (`lldp` = `{"eth0": {"chassis": {"name": ...}, ...}}`),
/// Foreman flattened (`lldp::eth0::chassis::name`); both are read.
fn lldp_fact_uplinks(
    w: &crate::store::Writer<'_>,
    lldp_facts: &[String],
) -> Result<Vec<crate::store::UplinkRow>> {
    // (device, interface) → (switch, port id, port name)
    type Seen = (Option<String>, Option<String>, Option<String>);
    let mut found: BTreeMap<(i64, String), Seen> = BTreeMap::new();
    let text = |v: &Value| v.as_str().map(str::to_string);
    for (device_id, name, value) in w.server_facts_under(lldp_facts)? {
        if lldp_facts.contains(&name) {
            // The whole tree as JSON (PuppetDB). Interface names may contain dots (`bond0.120`),
            // so the tree is walked, not split.
            let Ok(tree) = serde_json::from_str::<Value>(&value) else {
                continue;
            };
            for (interface, n) in tree.as_object().into_iter().flatten() {
                found.insert(
                    (device_id, interface.clone()),
                    (
                        text(&n["chassis"]["name"]),
                        text(&n["port"]["id"]),
                        text(&n["port"]["ifname"]),
                    ),
                );
            }
            continue;
        }
        // Flattened (Foreman): `lldp::<interface>::chassis::name`.
        let segments: Vec<&str> = name.split("::").collect();
        let [_, interface, rest @ ..] = segments.as_slice() else {
            continue;
        };
        let entry = found.entry((device_id, interface.to_string())).or_default();
        match rest {
            ["chassis", "name"] => entry.0 = Some(value),
            ["port", "id"] => entry.1 = Some(value),
            ["port", "ifname"] => entry.2 = Some(value),
            _ => {}
        }
    }
    Ok(found
        .into_iter()
        .filter_map(|((device_id, interface_name), (switch, port_id, port_name))| {
            Some(crate::store::UplinkRow {
                device_id,
                interface_name,
                neighbour: json!({"protocol": "lldp", "switch": switch?, "port": port_name.or(port_id)}),
            })
        })
        .collect())
}

/// Records one link change: (writer, operation, the device it concerns, old, new).
type LinkAudit<'a> = dyn Fn(&crate::store::Writer<'_>, &str, i64, Value, Value) -> Result<()> + 'a;

/// `connects_to` links from each server to the switch its NICs' CDP/LLDP neighbour names (a
/// network device of that short name; only a unique one), with the NIC and switch port of each
/// cable in the link's metadata. Links whose cabling changed are replaced, stale ones removed.
fn link_uplinks(
    w: &crate::store::Writer<'_>,
    rows: &[crate::store::CorrelationRow],
    lldp_facts: &[String],
    at: &str,
    audit: &LinkAudit<'_>,
) -> Result<usize> {
    let mut switches: HashMap<String, Vec<i64>> = HashMap::new();
    for row in rows
        .iter()
        .filter(|r| r.device_type == DeviceType::NetworkDevice)
    {
        switches
            .entry(switch_key(&row.name))
            .or_default()
            .push(row.id);
    }
    let mut wanted: BTreeMap<(i64, i64), Vec<Value>> = BTreeMap::new();
    let mut uplinks = w.uplinks()?;
    uplinks.extend(lldp_fact_uplinks(w, lldp_facts)?);
    for uplink in uplinks {
        let Some(announced) = uplink.neighbour["switch"].as_str() else {
            continue;
        };
        if let Some([switch]) = switches.get(&switch_key(announced)).map(Vec::as_slice) {
            wanted
                .entry((uplink.device_id, *switch))
                .or_default()
                .push(json!({
                    "host_nic": uplink.interface_name,
                    "switch_port": uplink.neighbour["port"],
                    "protocol": uplink.neighbour["protocol"],
                }));
        }
    }
    let link_json = |parent: i64, child: i64, cables: Option<&Vec<Value>>| json!({"parent_device_id": parent, "child_device_id": child, "relationship_type": "connects_to", "cables": cables});
    let existing = w.links_of_type(RelationshipType::ConnectsTo)?;
    let mut kept: HashSet<(i64, i64)> = HashSet::new();
    for link in &existing {
        let metadata: Value = link
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(Value::Null);
        let cables = wanted.get(&(link.parent, link.child));
        if cables.is_some_and(|c| metadata["cables"] == json!(c)) {
            kept.insert((link.parent, link.child));
            continue;
        }
        w.delete_link(link.id)?;
        let old_cables = metadata["cables"].as_array().cloned();
        audit(
            w,
            "delete",
            link.parent,
            link_json(link.parent, link.child, old_cables.as_ref()),
            Value::Null,
        )?;
    }
    for ((server, switch), cables) in &wanted {
        if kept.contains(&(*server, *switch)) {
            continue;
        }
        w.link(
            *server,
            *switch,
            RelationshipType::ConnectsTo,
            &json!({"cables": cables}),
            at,
        )?;
        audit(
            w,
            "add",
            *server,
            Value::Null,
            link_json(*server, *switch, Some(cables)),
        )?;
    }
    Ok(wanted.len())
}

/// Links each vCenter datastore to the array volume behind it where the evidence allows. The
/// vCenter REST API exposes neither a VMFS datastore's NAA id nor an NFS datastore's export path,
/// so the evidence is the name: an NFS datastore and the NetApp volume of that name (or junction
/// path), a VMFS datastore and the LUN of that name; only a unique candidate is linked.
fn link_datastores(
    w: &crate::store::Writer<'_>,
    at: &str,
    audit: &dyn Fn(&crate::store::Writer<'_>, Value, Value) -> Result<()>,
) -> Result<usize> {
    let volumes = w.volume_keys_all()?;
    let mut wanted: BTreeMap<(i64, i64), &'static str> = BTreeMap::new();
    for ds in volumes
        .iter()
        .filter(|v| v.source_system == "vcenter" && v.volume_type.as_deref() == Some("datastore"))
    {
        let kind = ds.metadata["vcenter"]["type"].as_str().unwrap_or("");
        let name = ds.name.to_ascii_lowercase();
        let candidates: Vec<(&crate::store::VolumeKey, &'static str)> = volumes
            .iter()
            .filter(|v| v.source_system != "vcenter")
            .filter_map(|v| {
                let own = v.name.to_ascii_lowercase();
                let junction = v.metadata["netapp"]["junction_path"]
                    .as_str()
                    .map(str::to_ascii_lowercase);
                match (kind, v.volume_type.as_deref()) {
                    ("NFS" | "NFS41", Some("filesystem"))
                        if own == name || junction.as_deref() == Some(&format!("/{name}")) =>
                    {
                        Some((v, "nfs_volume_name"))
                    }
                    ("VMFS", Some("lun")) if own == name || own.ends_with(&format!("/{name}")) => {
                        Some((v, "lun_name"))
                    }
                    _ => None,
                }
            })
            .collect();
        if let [(volume, evidence)] = candidates.as_slice() {
            wanted.insert((volume.id, ds.id), evidence);
        }
    }
    let existing = w.volume_links()?;
    for link in &existing {
        if !wanted.contains_key(&(link.parent_volume_id, link.child_volume_id)) {
            w.unlink_volumes(link.id)?;
            audit(
                w,
                json!({"parent_volume_id": link.parent_volume_id, "child_volume_id": link.child_volume_id, "relationship_type": "backs_up"}),
                Value::Null,
            )?;
        }
    }
    let have: HashSet<(i64, i64)> = existing
        .iter()
        .map(|l| (l.parent_volume_id, l.child_volume_id))
        .collect();
    for ((parent, child), evidence) in &wanted {
        if !have.contains(&(*parent, *child)) {
            w.link_volumes(*parent, *child, &json!({"evidence": evidence}), at)?;
            audit(
                w,
                Value::Null,
                json!({"parent_volume_id": parent, "child_volume_id": child, "relationship_type": "backs_up", "evidence": evidence}),
            )?;
        }
    }
    Ok(wanted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(bios: Option<&str>, inst: Option<&str>, macs: &[&str], host: &str) -> Keys {
        Keys {
            id: 1,
            source: ("a".into(), "a".into()),
            priority: 0,
            bios: bios.map(str::to_string),
            instance: inst.map(str::to_string),
            serial: None,
            macs: macs.iter().map(|m| m.to_string()).collect(),
            hostname: Some(host.to_string()),
        }
    }

    #[test]
    fn strong_conflicts_veto_everything_else() {
        let vm = k(Some("b1"), Some("i1"), &["00:50:56:00:00:01"], "web01");
        assert_eq!(
            evidence(&vm, &k(None, Some("i1"), &[], "web01")),
            Some(Evidence::Strong)
        );
        assert_eq!(
            evidence(&vm, &k(None, None, &["00:50:56:00:00:01"], "x")),
            Some(Evidence::Mac)
        );
        assert_eq!(
            evidence(&vm, &k(None, None, &[], "web01")),
            Some(Evidence::Hostname)
        );
        assert_eq!(
            evidence(&vm, &k(None, Some("i9"), &["00:50:56:00:00:01"], "web01")),
            None,
            "a decoy with another UUID"
        );
    }
}
