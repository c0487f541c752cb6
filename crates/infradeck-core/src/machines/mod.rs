//! Machines: what a user means by "a server". A source record is one system's view; a machine is
//! the group of records correlation links with `same_as`, with a stable identity, a primary
//! record chosen by source precedence, and a health (ok / warn / crit, each with its reasons)
//! computed from what its sources report.
//!
//! This module is pure: it takes the records as the store read them and returns the machines;
//! `store::machines` reads and writes them, `sync::correlate` runs it after every correlation.

mod filter;
mod health;

pub use filter::{FilterError, KNOWN_FILTER_KEYS, MachineFilter, device_type_named, parse_filter};
pub(crate) use health::level_of_use;
pub use health::{HealthRules, stale_sources};

use crate::model::{DeviceStatus, DeviceType, Health};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Which source's record names and types a machine, per device type, most trusted first. A
/// source not listed ranks after the listed ones, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryRules {
    by_type: BTreeMap<DeviceType, Vec<String>>,
}

impl Default for PrimaryRules {
    /// vCenter knows VMs, hosts and clusters best (it runs them); the configuration managers
    /// next. Oxidized is the switches' own view, the arrays their volumes'.
    fn default() -> Self {
        let list = |sources: &[&str]| sources.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PrimaryRules {
            by_type: BTreeMap::from([
                (DeviceType::Vm, list(&["vcenter", "foreman", "puppetdb"])),
                (
                    DeviceType::Server,
                    list(&["vcenter", "foreman", "puppetdb"]),
                ),
                (DeviceType::Cluster, list(&["vcenter"])),
                (DeviceType::NetworkDevice, list(&["oxidized", "foreman"])),
                (DeviceType::Storage, list(&["netapp", "dorado"])),
                (
                    DeviceType::Container,
                    list(&["vcenter", "foreman", "puppetdb"]),
                ),
            ]),
        }
    }
}

impl PrimaryRules {
    /// The defaults with `overrides` (device type → sources) in place of theirs.
    pub fn with_overrides(overrides: BTreeMap<DeviceType, Vec<String>>) -> PrimaryRules {
        let mut rules = PrimaryRules::default();
        rules.by_type.extend(overrides);
        rules
    }

    /// The precedence list for a device type.
    pub fn order(&self, device_type: DeviceType) -> &[String] {
        self.by_type
            .get(&device_type)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn rank<'a>(&self, record: &'a RecordFacts) -> (usize, &'a str) {
        let order = self.order(record.device_type);
        let rank = order
            .iter()
            .position(|s| *s == record.source_system)
            .unwrap_or(order.len());
        (rank, record.source_system.as_str())
    }
}

/// Everything the machine computation is configured by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineRules {
    pub primary: PrimaryRules,
    pub health: HealthRules,
}

/// One source record, as the machine computation reads it.
#[derive(Debug, Clone)]
pub struct RecordFacts {
    pub id: i64,
    pub name: String,
    pub device_type: DeviceType,
    pub source_system: String,
    pub source_identifier: String,
    pub status: DeviceStatus,
    pub last_seen: Option<String>,
    /// The record's metadata (`{"<source_system>": {...}}`).
    pub metadata: Value,
    /// The machine the record belonged to after the previous computation.
    pub machine_id: Option<i64>,
    pub vm: Option<VmFacts>,
    /// The volumes the record owns (an array's LUNs and volumes).
    pub volumes: Vec<VolumeUse>,
}

impl RecordFacts {
    /// `system/instance`, as sources are named everywhere.
    pub fn source(&self) -> String {
        format!("{}/{}", self.source_system, self.source_identifier)
    }

    fn ns(&self) -> &Value {
        &self.metadata[self.source_system.as_str()]
    }
}

/// The VM details health looks at.
#[derive(Debug, Clone, Default)]
pub struct VmFacts {
    pub power_state: Option<String>,
    pub tools_running: Option<bool>,
    /// `vms.snapshots` (a JSON array, or null when unknown).
    pub snapshots: Value,
    /// The datastores its disks live on, with their use.
    pub datastores: Vec<VolumeUse>,
}

/// A volume or datastore and how full it is.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeUse {
    pub name: String,
    pub volume_type: Option<String>,
    pub capacity_bytes: Option<i64>,
    pub used_bytes: Option<i64>,
}

impl VolumeUse {
    /// Used share in percent, when both figures are known and the volume has a size.
    pub fn used_percent(&self) -> Option<f64> {
        crate::model::used_percent(self.capacity_bytes, self.used_bytes)
    }
}

/// Why a machine is not `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub level: Health,
    pub text: String,
    /// The source (`system/instance`) that reported it; empty when it is the inventory's own
    /// finding (a disagreement between sources).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// Sources that disagree on a compared field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub field: String,
    /// (source, value), one per record that has the field.
    pub values: Vec<ConflictValue>,
}

/// One source's value in a [`Conflict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub source: String,
    pub value: String,
}

/// A machine as computed: what `machines` stores for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedMachine {
    /// The stable identity: the previous id the group keeps, or `None` for a new machine.
    pub id: Option<i64>,
    pub name: String,
    pub device_type: DeviceType,
    pub primary_device_id: i64,
    /// Active while any of its records is.
    pub status: DeviceStatus,
    pub health: Health,
    pub reasons: Vec<Reason>,
    /// `on`, `off`, `suspended`, `standby`, `not responding`, `disconnected`; `None` when no
    /// source says.
    pub power: Option<String>,
    pub conflicts: Vec<Conflict>,
    /// Record ids, the primary first.
    pub members: Vec<i64>,
}

/// A change of identity worth auditing: records of two machines now form one, or one machine's
/// records now form several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityChange {
    /// The machines `from` became the one machine at index `into` of the result.
    Merged { from: Vec<i64>, into: usize },
    /// Machine `from` now spans the machines at these indices of the result.
    Split { from: i64, into: Vec<usize> },
}

/// The machines of an inventory and how identities moved.
#[derive(Debug, Clone, Default)]
pub struct Computed {
    pub machines: Vec<ComputedMachine>,
    pub changes: Vec<IdentityChange>,
}

/// Groups `records` into machines along `same_as` links (`(parent, child)` record ids between
/// active records), keeps each group's identity stable, picks the primary record and computes
/// health.
///
/// An inactive record has no links (correlation only links what sources still report), so it
/// stays with the machine it belonged to while that machine lives on: a VM deleted in vCenter
/// but still in Foreman is one machine whose vCenter record stopped reporting, not two.
pub fn compute(
    records: &[RecordFacts],
    same_as: &[(i64, i64)],
    rules: &MachineRules,
    now: chrono::DateTime<chrono::Utc>,
) -> Computed {
    let index: HashMap<i64, usize> = records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let mut parent: Vec<usize> = (0..records.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (a, b) in same_as {
        if let (Some(&a), Some(&b)) = (index.get(a), index.get(b)) {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    // Groups of active records, in the order of their first record; inactive ones join the
    // group that holds most of their previous machine's active records, else stand alone.
    // (Flat vectors, sorted runs: this runs over every record after every correlation.)
    let mut slot = vec![usize::MAX; records.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut loose = Vec::new();
    for (i, record) in records.iter().enumerate() {
        if record.status == DeviceStatus::Active {
            let r = root(&mut parent, i);
            if slot[r] == usize::MAX {
                slot[r] = groups.len();
                groups.push(Vec::new());
            }
            groups[slot[r]].push(i);
        } else {
            loose.push(i);
        }
    }
    if !loose.is_empty() {
        let wanted: std::collections::HashSet<i64> = loose
            .iter()
            .filter_map(|&i| records[i].machine_id)
            .collect();
        // (previous machine, group) → records, for the machines an inactive record belonged to.
        let mut counts: HashMap<(i64, usize), usize> = HashMap::new();
        for (g, members) in groups.iter().enumerate() {
            for &i in members {
                if let Some(m) = records[i].machine_id.filter(|m| wanted.contains(m)) {
                    *counts.entry((m, g)).or_default() += 1;
                }
            }
        }
        // Per previous machine, the group holding most of its records (ties: the first group).
        let mut home_of: HashMap<i64, (usize, usize)> = HashMap::new(); // machine → (records, group)
        for (&(m, g), &n) in &counts {
            let best = home_of.entry(m).or_insert((n, g));
            if (n, std::cmp::Reverse(g)) > (best.0, std::cmp::Reverse(best.1)) {
                *best = (n, g);
            }
        }
        for i in loose {
            let home = records[i]
                .machine_id
                .and_then(|m| home_of.get(&m))
                .map(|(_, g)| *g);
            match home {
                Some(g) => groups[g].push(i),
                None => groups.push(vec![i]),
            }
        }
    }

    // Each group's previous machine ids with how many of its records had each, by id.
    let previous: Vec<Vec<(i64, usize)>> = groups
        .iter()
        .map(|members| {
            let mut ids: Vec<i64> = members
                .iter()
                .filter_map(|&i| records[i].machine_id)
                .collect();
            ids.sort_unstable();
            let mut counted: Vec<(i64, usize)> = Vec::with_capacity(1);
            for id in ids {
                match counted.last_mut() {
                    Some((m, n)) if *m == id => *n += 1,
                    _ => counted.push((id, 1)),
                }
            }
            counted
        })
        .collect();
    // Identity: each previous id goes to the group holding most of its records (ties: the
    // smaller id first), one id per group.
    let mut claims: Vec<(usize, i64, usize)> = previous // (records, previous id, group)
        .iter()
        .enumerate()
        .flat_map(|(g, counted)| counted.iter().map(move |&(m, n)| (n, m, g)))
        .collect();
    claims.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut id_of_group: Vec<Option<i64>> = vec![None; groups.len()];
    let mut taken: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for (_, m, g) in &claims {
        if id_of_group[*g].is_none() && taken.insert(*m) {
            id_of_group[*g] = Some(*m);
        }
    }
    let mut changes = Vec::new();
    for (g, counted) in previous.iter().enumerate() {
        if counted.len() > 1 {
            changes.push(IdentityChange::Merged {
                from: counted.iter().map(|(m, _)| *m).collect(),
                into: g,
            });
        }
    }
    // A previous id held by records in several groups: a split.
    let mut spans: Vec<(i64, usize)> = claims.iter().map(|&(_, m, g)| (m, g)).collect();
    spans.sort_unstable();
    for run in spans.chunk_by(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            changes.push(IdentityChange::Split {
                from: run[0].0,
                into: run.iter().map(|(_, g)| *g).collect(),
            });
        }
    }

    let jobs: Vec<(&Vec<usize>, Option<i64>)> = groups.iter().zip(id_of_group).collect();
    let machines = parallel_map(&jobs, |(members, id)| {
        build(records, members, *id, rules, now)
    });
    Computed { machines, changes }
}

/// `f` over `items` on the machine's cores (at most four threads), results in order. Machines
/// are independent of each other once grouped, and 40,000 of them are worth two cores.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    if threads == 1 || items.len() < 1000 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            // Invariant: `f` does not panic (it is pure computation over read data); if it
            // did, the panic is carried to this thread as it would be without threads.
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn build(
    records: &[RecordFacts],
    members: &[usize],
    id: Option<i64>,
    rules: &MachineRules,
    now: chrono::DateTime<chrono::Utc>,
) -> ComputedMachine {
    let mut ordered: Vec<&RecordFacts> = members.iter().map(|&i| &records[i]).collect();
    ordered.sort_by(|a, b| {
        (a.status != DeviceStatus::Active)
            .cmp(&(b.status != DeviceStatus::Active))
            .then_with(|| rules.primary.rank(a).cmp(&rules.primary.rank(b)))
            .then(a.source_identifier.cmp(&b.source_identifier))
            .then(a.id.cmp(&b.id))
    });
    let primary = ordered[0];
    let status = if ordered.iter().any(|r| r.status == DeviceStatus::Active) {
        DeviceStatus::Active
    } else {
        primary.status
    };
    let conflicts = conflicts_of(&ordered);
    let reasons = health::reasons(&ordered, &conflicts, &rules.health, now);
    let health = reasons.iter().map(|r| r.level).max().unwrap_or(Health::Ok);
    ComputedMachine {
        id,
        name: primary.name.clone(),
        device_type: primary.device_type,
        primary_device_id: primary.id,
        status,
        health,
        reasons,
        power: power_of(&ordered),
        conflicts,
        members: ordered.iter().map(|r| r.id).collect(),
    }
}

/// The power or connection state, from the first record (in primary order) that reports one.
fn power_of(records: &[&RecordFacts]) -> Option<String> {
    records.iter().find_map(|r| {
        let ns = r.ns();
        let connection = ns["connection_state"].as_str();
        let power =
            r.vm.as_ref()
                .and_then(|vm| vm.power_state.as_deref())
                .or(ns["power_state"].as_str());
        match connection {
            Some("NOT_RESPONDING") => return Some("not responding".to_string()),
            Some("DISCONNECTED") => return Some("disconnected".to_string()),
            _ => {}
        }
        Some(
            match power? {
                "POWERED_ON" | "poweredOn" => "on",
                "POWERED_OFF" | "poweredOff" => "off",
                "SUSPENDED" | "suspended" => "suspended",
                "STANDBY" | "standBy" => "standby",
                other => return Some(other.to_ascii_lowercase()),
            }
            .to_string(),
        )
    })
}

/// The compared fields on which the records disagree (case-insensitively, lists as sets).
fn conflicts_of(records: &[&RecordFacts]) -> Vec<Conflict> {
    let active: Vec<&RecordFacts> = records
        .iter()
        .copied()
        .filter(|r| r.status == DeviceStatus::Active)
        .collect();
    let namespaces: Vec<&Value> = active.iter().map(|r| r.ns()).collect();
    // Most machines' sources agree: that is answered without building the merged view.
    if active.len() < 2 || crate::store::compared_fields_agree(&namespaces) {
        return Vec::new();
    }
    crate::store::merged_fields(active.iter().map(|r| crate::store::FieldSource {
        source: r.source(),
        device_id: r.id,
        confirmed_at: r.last_seen.clone(),
        fields: r.ns(),
    }))
    .into_iter()
    .filter(|f| f.conflict)
    .map(|f| Conflict {
        field: f.name.to_string(),
        values: f
            .values
            .into_iter()
            .map(|v| ConflictValue {
                source: v.source,
                value: v.value,
            })
            .collect(),
    })
    .collect()
}

/// Regroups records into machines along the current `same_as` links and stores what changed,
/// inside the caller's transaction (correlation runs it after linking).
pub(crate) fn refresh_in(
    w: &crate::store::Writer<'_>,
    rules: &MachineRules,
    sync_id: &str,
    performed_by: &str,
    at: &str,
) -> crate::store::Result<crate::store::MachinesReport> {
    let (records, links) = w.machine_inputs()?;
    let now = crate::time::parse(at).unwrap_or_else(chrono::Utc::now);
    let computed = compute(&records, &links, rules, now);
    let current: std::collections::HashMap<i64, Option<i64>> =
        records.iter().map(|r| (r.id, r.machine_id)).collect();
    let r = w.store_machines(
        &computed,
        &current,
        &crate::store::MachineAudit {
            sync_id,
            performed_by,
            at,
        },
    );
    // Freeing 100,000 parsed metadata trees takes a tenth of a second nobody needs to wait for.
    std::thread::spawn(move || drop(records));
    r
}

/// Recomputes the machines from the links as they are, in a transaction of its own: for
/// tools and tests that wrote records without a correlation (which does this itself).
pub fn refresh(
    store: &mut crate::store::Store,
    rules: &MachineRules,
    at: &str,
    performed_by: &str,
) -> crate::store::Result<crate::store::MachinesReport> {
    let sync_id = format!("machines-{}", at.replace([' ', ':'], "-"));
    store.write(|w| refresh_in(w, rules, &sync_id, performed_by, at))
}

/// Health with the reasons of sources that are stale right now (`stale`: `system/instance`
/// names with why), added to what was stored: staleness moves with the clock, not with writes.
pub fn with_stale_sources(
    health: Health,
    reasons: &[Reason],
    sources: &[String],
    stale: &BTreeMap<String, String>,
) -> (Health, Vec<Reason>) {
    let mut reasons = reasons.to_vec();
    let mut health = health;
    for source in sources {
        if let Some(why) = stale.get(source) {
            health = health.max(Health::Warn);
            reasons.push(Reason {
                level: Health::Warn,
                text: why.clone(),
                source: source.clone(),
            });
        }
    }
    (health, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: i64, system: &str, device_type: DeviceType, machine: Option<i64>) -> RecordFacts {
        RecordFacts {
            id,
            name: format!("web-{id}"),
            device_type,
            source_system: system.into(),
            source_identifier: "main".into(),
            status: DeviceStatus::Active,
            last_seen: Some("2026-12-01 00:00:00".into()),
            metadata: json!({ system: {"hostname": "web"} }),
            machine_id: machine,
            vm: None,
            volumes: Vec::new(),
        }
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        crate::time::parse("2026-12-01 01:00:00").unwrap()
    }

    #[test]
    fn a_group_is_one_machine_named_by_its_most_trusted_source() {
        let records = [
            record(1, "foreman", DeviceType::Vm, None),
            record(2, "vcenter", DeviceType::Vm, None),
            record(3, "puppetdb", DeviceType::Server, None),
            record(4, "vcenter", DeviceType::Vm, None),
        ];
        let computed = compute(&records, &[(1, 2), (1, 3)], &MachineRules::default(), now());
        assert_eq!(computed.machines.len(), 2);
        let web = &computed.machines[0];
        assert_eq!(
            (web.primary_device_id, web.device_type),
            (2, DeviceType::Vm)
        );
        assert_eq!(web.members, [2, 1, 3]);
        assert!(computed.changes.is_empty());
    }

    #[test]
    fn identity_survives_a_split_and_a_merge_is_reported() {
        // Records 1-3 were machine 10; now 3 splits off: the larger part keeps 10.
        let records = [
            record(1, "foreman", DeviceType::Vm, Some(10)),
            record(2, "vcenter", DeviceType::Vm, Some(10)),
            record(3, "puppetdb", DeviceType::Server, Some(10)),
        ];
        let computed = compute(&records, &[(1, 2)], &MachineRules::default(), now());
        let ids: Vec<Option<i64>> = computed.machines.iter().map(|m| m.id).collect();
        assert_eq!(ids, [Some(10), None]);
        assert!(
            matches!(&computed.changes[..], [IdentityChange::Split { from: 10, into }] if into.len() == 2)
        );

        // Machines 10 and 11 now linked: one machine, the smaller id kept, a merge reported.
        let records = [
            record(1, "foreman", DeviceType::Vm, Some(11)),
            record(2, "vcenter", DeviceType::Vm, Some(10)),
        ];
        let computed = compute(&records, &[(1, 2)], &MachineRules::default(), now());
        assert_eq!(computed.machines.len(), 1);
        assert_eq!(computed.machines[0].id, Some(10));
        assert_eq!(
            computed.changes,
            [IdentityChange::Merged {
                from: vec![10, 11],
                into: 0
            }]
        );
    }

    #[test]
    fn a_record_that_stopped_reporting_stays_with_its_machine_and_warns() {
        let mut gone = record(2, "vcenter", DeviceType::Vm, Some(10));
        gone.status = DeviceStatus::Inactive;
        let records = [record(1, "foreman", DeviceType::Vm, Some(10)), gone];
        let computed = compute(&records, &[], &MachineRules::default(), now());
        assert_eq!(computed.machines.len(), 1);
        let machine = &computed.machines[0];
        assert_eq!(machine.primary_device_id, 1, "an active record is primary");
        assert_eq!(machine.health, Health::Warn);
        assert!(
            machine
                .reasons
                .iter()
                .any(|r| r.text.contains("stopped reporting")),
            "{:?}",
            machine.reasons
        );
    }
}
