//! A machine's health from what its sources report: each finding is a [`Reason`] with a level,
//! and the machine is as bad as its worst reason.

use super::{Conflict, Reason, RecordFacts, VolumeUse};
use crate::model::{DeviceStatus, DeviceType, Health};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// `[health]`: the thresholds findings are judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRules {
    /// A volume or datastore used at least this much (percent) is `warn`.
    pub volume_warn_percent: f64,
    /// ... and at least this much `crit`.
    pub volume_crit_percent: f64,
    /// A VM snapshot older than this many days is `warn`: snapshots grow and slow the VM.
    pub snapshot_warn_days: u32,
}

impl Default for HealthRules {
    fn default() -> Self {
        HealthRules {
            volume_warn_percent: 85.0,
            volume_crit_percent: 95.0,
            snapshot_warn_days: 3,
        }
    }
}

/// At most this many volume findings per machine; the rest are counted in one more reason.
const VOLUME_REASONS: usize = 5;

pub(super) fn reasons(
    records: &[&RecordFacts],
    conflicts: &[Conflict],
    rules: &HealthRules,
    now: DateTime<Utc>,
) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut push = |level: Health, text: String, source: String| {
        out.push(Reason {
            level,
            text,
            source,
        })
    };
    let any_active = records.iter().any(|r| r.status == DeviceStatus::Active);
    if !any_active {
        let last = records.iter().filter_map(|r| r.last_seen.as_deref()).max();
        push(
            Health::Warn,
            format!(
                "gone: no source reports it any more (last seen {})",
                last.unwrap_or("never")
            ),
            String::new(),
        );
        return out;
    }
    let mut volumes: Vec<(Health, String, String)> = Vec::new();
    for record in records {
        if record.status != DeviceStatus::Active {
            let source = record.source();
            let text = if record.source_system == "puppetdb" {
                "deactivated in PuppetDB".to_string()
            } else {
                format!(
                    "{source} stopped reporting it (last seen {})",
                    record.last_seen.as_deref().unwrap_or("never")
                )
            };
            push(Health::Warn, text, source);
            continue;
        }
        let ns = record.ns();
        // Built only for the records that have something to say (most have nothing).
        let source = Source(record);
        match (record.source_system.as_str(), record.device_type) {
            ("vcenter", DeviceType::Server) => {
                let name = &record.name;
                match ns["connection_state"].as_str() {
                    Some(state @ ("NOT_RESPONDING" | "DISCONNECTED")) => push(
                        Health::Crit,
                        format!("host {name} is {state} in vCenter"),
                        source.text(),
                    ),
                    _ => match ns["power_state"].as_str() {
                        Some("POWERED_OFF") => push(
                            Health::Crit,
                            format!("host {name} is powered off"),
                            source.text(),
                        ),
                        Some("STANDBY") => push(
                            Health::Warn,
                            format!("host {name} is in standby"),
                            source.text(),
                        ),
                        _ => {}
                    },
                }
                if ns["in_maintenance_mode"].as_bool() == Some(true) {
                    push(
                        Health::Warn,
                        format!("host {name} is in maintenance mode"),
                        source.text(),
                    );
                }
            }
            ("vcenter", DeviceType::Vm) => {
                let none = super::VmFacts::default();
                let vm = record.vm.as_ref().unwrap_or(&none);
                let power = vm.power_state.as_deref().or(ns["power_state"].as_str());
                match power {
                    Some("POWERED_OFF") => push(Health::Warn, "powered off".into(), source.text()),
                    Some("SUSPENDED") => push(Health::Warn, "suspended".into(), source.text()),
                    Some("POWERED_ON") if vm.tools_running == Some(false) => push(
                        Health::Warn,
                        "powered on but VMware Tools not running".into(),
                        source.text(),
                    ),
                    _ => {}
                }
                if let Some(text) = old_snapshots(&vm.snapshots, rules.snapshot_warn_days, now) {
                    push(Health::Warn, text, source.text());
                }
                // A datastore near full is the storage team's warning, not every VM's; only
                // a critical one (where thin disks and snapshots stop the VM) marks its VMs.
                for datastore in &vm.datastores {
                    if let Some(Health::Crit) = fullness(datastore, rules) {
                        volumes.push((
                            Health::Crit,
                            describe_use("datastore", datastore),
                            source.text(),
                        ));
                    }
                }
            }
            ("foreman", _) => {
                if ns["reporting"].as_str() == Some("stale") {
                    let since = ns["last_report"].as_str().unwrap_or("never");
                    push(
                        Health::Warn,
                        format!("no Puppet report to Foreman since {since}"),
                        source.text(),
                    );
                }
                if let Some(status @ ("Error" | "Warning")) = ns["global_status"].as_str() {
                    push(
                        Health::Warn,
                        format!("Foreman status {status}"),
                        source.text(),
                    );
                }
            }
            ("oxidized", _) => match ns["last_status"].as_str() {
                Some("success") | None => {}
                Some("never") => push(
                    Health::Warn,
                    "Oxidized has never fetched its config".into(),
                    source.text(),
                ),
                Some(status) => push(
                    Health::Warn,
                    format!("last config fetch failed ({status})"),
                    source.text(),
                ),
            },
            ("dorado" | "netapp", DeviceType::Storage) => {
                let level = match ns["health"].as_str() {
                    Some("faulty") => Some(Health::Crit),
                    Some("degraded") => Some(Health::Warn),
                    _ => None,
                };
                if let Some(level) = level {
                    push(
                        level,
                        format!(
                            "array {} reports health {}",
                            record.name,
                            ns["health"].as_str().unwrap_or("")
                        ),
                        source.text(),
                    );
                }
            }
            _ => {}
        }
        for volume in &record.volumes {
            if let Some(level) = fullness(volume, rules) {
                let kind = volume.volume_type.as_deref().unwrap_or("volume");
                volumes.push((level, describe_use(kind, volume), source.text()));
            }
        }
    }
    // Fullest first: the reasons name what to look at.
    volumes.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let hidden = volumes.len().saturating_sub(VOLUME_REASONS);
    let worst_hidden = volumes.iter().skip(VOLUME_REASONS).map(|v| v.0).max();
    for (level, text, source) in volumes.into_iter().take(VOLUME_REASONS) {
        push(level, text, source);
    }
    if let Some(level) = worst_hidden {
        push(
            level,
            format!(
                "and {hidden} more volumes above {:.0}%",
                rules.volume_warn_percent
            ),
            String::new(),
        );
    }
    for conflict in conflicts {
        let values: Vec<String> = conflict
            .values
            .iter()
            .map(|v| format!("{} ({})", v.value, v.source))
            .collect();
        push(
            Health::Warn,
            format!(
                "sources disagree on {}: {}",
                conflict.field,
                values.join(" vs ")
            ),
            String::new(),
        );
    }
    out
}

/// A record's `system/instance`, written out when a reason needs it.
struct Source<'a>(&'a RecordFacts);

impl Source<'_> {
    fn text(&self) -> String {
        self.0.source()
    }
}

fn fullness(volume: &VolumeUse, rules: &HealthRules) -> Option<Health> {
    level_of_use(volume.used_percent()?, rules)
}

/// The level a volume used `percent` full is at: `crit`, `warn`, or none below the thresholds.
pub(crate) fn level_of_use(percent: f64, rules: &HealthRules) -> Option<Health> {
    if percent >= rules.volume_crit_percent {
        Some(Health::Crit)
    } else if percent >= rules.volume_warn_percent {
        Some(Health::Warn)
    } else {
        None
    }
}

fn describe_use(kind: &str, volume: &VolumeUse) -> String {
    format!(
        "{kind} {} is {:.0}% full",
        volume.name,
        volume.used_percent().unwrap_or(0.0)
    )
}

/// "2 snapshots, the oldest (`pre-upgrade`) taken 2026-11-02 10:00:00, older than 3 days".
fn old_snapshots(snapshots: &serde_json::Value, days: u32, now: DateTime<Utc>) -> Option<String> {
    let list = snapshots.as_array()?;
    let limit = now - chrono::Duration::days(i64::from(days));
    let mut old: Vec<(DateTime<Utc>, &str, &str)> = list
        .iter()
        .filter_map(|s| {
            let created = s["created"].as_str()?;
            let at = crate::time::parse(created).or_else(|| {
                DateTime::parse_from_rfc3339(created)
                    .ok()
                    .map(|t| t.to_utc())
            })?;
            (at < limit).then_some((at, created, s["name"].as_str().unwrap_or("?")))
        })
        .collect();
    old.sort();
    let (_, created, name) = old.first()?;
    Some(if old.len() == 1 {
        format!("snapshot `{name}` taken {created}, older than {days} days")
    } else {
        format!(
            "{} snapshots older than {days} days, the oldest `{name}` taken {created}",
            old.len()
        )
    })
}

/// The source instances (`system/instance`) whose data is stale at `now`, each with why: no
/// successful sync within two of its intervals (a day when it has no schedule). A source that
/// never synced holds no data and is not listed.
pub fn stale_sources(
    statuses: &[crate::store::SourceStatus],
    sources: &[crate::config::SourceConfig],
    now: DateTime<Utc>,
) -> BTreeMap<String, String> {
    let mut stale = BTreeMap::new();
    for status in statuses {
        if status.last_sync_status.is_none() {
            continue;
        }
        let interval = sources
            .iter()
            .find(|s| s.kind.as_str() == status.source_system && s.id == status.source_identifier)
            .map(|s| s.interval)
            .filter(|i| !i.is_zero());
        let allowed = interval
            .and_then(|i| chrono::Duration::from_std(i * 2).ok())
            .unwrap_or(chrono::Duration::days(1));
        let last = status
            .last_sync_complete
            .as_deref()
            .and_then(crate::time::parse);
        if last.is_some_and(|at| now - at <= allowed) {
            continue;
        }
        let name = format!("{}/{}", status.source_system, status.source_identifier);
        let why = match &status.last_sync_complete {
            Some(at) => format!(
                "{name} data is stale: last successful sync {} ago",
                crate::time::age(at, now)
            ),
            None => format!("{name} data is stale: no sync has succeeded"),
        };
        stale.insert(name, why);
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machines::{RecordFacts, VmFacts};
    use serde_json::json;

    fn host(state: &str) -> RecordFacts {
        RecordFacts {
            id: 1,
            name: "esx003.lab".into(),
            device_type: DeviceType::Server,
            source_system: "vcenter".into(),
            source_identifier: "lab".into(),
            status: DeviceStatus::Active,
            last_seen: None,
            metadata: json!({"vcenter": {"connection_state": state, "power_state": "POWERED_ON"}}),
            machine_id: None,
            vm: None,
            volumes: vec![],
        }
    }

    fn now() -> DateTime<Utc> {
        crate::time::parse("2026-12-01 12:00:00").unwrap()
    }

    #[test]
    fn an_unresponsive_host_is_critical_and_named() {
        let r = reasons(
            &[&host("NOT_RESPONDING")],
            &[],
            &HealthRules::default(),
            now(),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].level, Health::Crit);
        assert!(r[0].text.contains("esx003.lab") && r[0].text.contains("NOT_RESPONDING"));
        assert!(reasons(&[&host("CONNECTED")], &[], &HealthRules::default(), now()).is_empty());
    }

    #[test]
    fn vms_off_without_tools_with_old_snapshots_or_full_datastores_warn() {
        let mut vm = host("CONNECTED");
        vm.device_type = DeviceType::Vm;
        vm.vm = Some(VmFacts {
            power_state: Some("POWERED_ON".into()),
            tools_running: Some(false),
            snapshots: json!([{"name": "pre-upgrade", "created": "2026-11-20 08:00:00"},
                              {"name": "fresh", "created": "2026-12-01 08:00:00"}]),
            datastores: vec![VolumeUse {
                name: "ds01".into(),
                volume_type: Some("datastore".into()),
                capacity_bytes: Some(100),
                used_bytes: Some(96),
            }],
        });
        let r = reasons(&[&vm], &[], &HealthRules::default(), now());
        let texts: Vec<&str> = r.iter().map(|r| r.text.as_str()).collect();
        assert!(
            texts.contains(&"powered on but VMware Tools not running"),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("`pre-upgrade`")),
            "{texts:?}"
        );
        assert!(
            r.iter()
                .any(|r| r.level == Health::Crit && r.text == "datastore ds01 is 96% full"),
            "{texts:?}"
        );
    }

    #[test]
    fn a_volume_at_93_percent_warns_and_many_are_summarised() {
        let mut array = host("CONNECTED");
        array.source_system = "netapp".into();
        array.device_type = DeviceType::Storage;
        array.volumes = (0..8)
            .map(|i| VolumeUse {
                name: format!("vol{i}"),
                volume_type: Some("lun".into()),
                capacity_bytes: Some(100),
                used_bytes: Some(93),
            })
            .collect();
        let r = reasons(&[&array], &[], &HealthRules::default(), now());
        assert_eq!(r.len(), VOLUME_REASONS + 1);
        assert!(r.iter().all(|r| r.level == Health::Warn));
        assert_eq!(r[0].text, "lun vol0 is 93% full");
        assert!(r[VOLUME_REASONS].text.starts_with("and 3 more"));
    }
}
