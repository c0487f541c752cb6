//! Reconcile: compare what a source sent with what is stored, write only what changed, and audit
//! every change with its old and new JSON.
//!
//! Items arrive in batches; each batch is one transaction. Unchanged devices cost a `last_seen`
//! bump and nothing else. Links and the sweep run at the end: links the source reports are added
//! as they are; links it no longer reports, devices it no longer lists and volumes it no longer
//! has are removed only after a complete fetch, and a sweep that would deactivate more than the
//! guard's share of the source's active devices is refused.

use crate::app::Counts;
use crate::model::{DeviceBundle, Item, LinkRecord};
use crate::model::{DeviceStatus, RelationshipType, VmRecord, VolumeRecord};
use crate::store::{Change, ConfigStored, NewHistory, Result, Store, Writer};

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// How the end of a run went.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Finish {
    /// Why the sweep did not run, when it was refused by the guard.
    pub(crate) sweep_refused: Option<String>,
}

/// The state of one run's reconciliation.
pub struct Reconciler {
    pub store: Store,
    pub(crate) sync_id: String,
    pub(crate) source_system: String,
    pub(crate) source_identifier: String,
    pub(crate) performed_by: String,
    seen_volumes: HashSet<String>,
    links: Vec<LinkRecord>,
    /// Every device seen so far in this run, by source id, with its stored id.
    ids: HashMap<String, i64>,
    /// The source's active devices as stored when the run began, by source id: `(id,
    /// fingerprint)`. Read on the first batch.
    known: Option<HashMap<String, (i64, i64)>>,
    pub counts: Counts,
}

struct Audit<'a> {
    sync_id: &'a str,
    source_system: &'a str,
    source_identifier: &'a str,
    performed_by: &'a str,
    at: &'a str,
}

impl Audit<'_> {
    /// One audit row; `what` is (operation, change_type).
    fn record(
        &self,
        w: &Writer<'_>,
        counts: &mut Counts,
        what: (&str, &str),
        device_id: Option<i64>,
        old: Value,
        new: Value,
    ) -> Result<()> {
        let (operation, change_type) = what;
        counts.history_rows += 1;
        w.record_history(&NewHistory {
            sync_id: self.sync_id,
            source_system: self.source_system,
            source_identifier: self.source_identifier,
            operation,
            device_id,
            change_type,
            old_value: old,
            new_value: new,
            performed_by: self.performed_by,
            performed_at: self.at,
            metadata: Value::Null,
        })
    }
}

fn record_json(bundle: &DeviceBundle) -> Value {
    json!({
        "name": bundle.record.name,
        "device_type": bundle.record.device_type,
        "status": DeviceStatus::Active,
        "metadata": bundle.record.metadata,
    })
}

impl Reconciler {
    pub fn new(
        store: Store,
        sync_id: &str,
        source_system: &str,
        source_identifier: &str,
        performed_by: &str,
    ) -> Reconciler {
        Reconciler {
            store,
            sync_id: sync_id.to_string(),
            source_system: source_system.to_string(),
            source_identifier: source_identifier.to_string(),
            performed_by: performed_by.to_string(),
            seen_volumes: HashSet::new(),
            links: Vec::new(),
            ids: HashMap::new(),
            known: None,
            counts: Counts::default(),
        }
    }

    /// How many devices the run has seen so far.
    pub(crate) fn seen(&self) -> usize {
        self.ids.len()
    }

    /// Writes one batch of items in one transaction.
    pub fn apply(&mut self, items: Vec<Item>, at: &str) -> Result<()> {
        let mut bundles = Vec::new();
        let mut volumes = Vec::new();
        let mut articles = Vec::new();
        let mut issues = Vec::new();
        for item in items {
            match item {
                Item::Device(bundle) => bundles.push(*bundle),
                Item::Link(link) => self.links.push(link),
                Item::Volume(volume, owner) => volumes.push((*volume, owner)),
                Item::KbArticle(article) => articles.push(*article),
                Item::Issue(issue) => issues.push(*issue),
            }
        }
        let Reconciler {
            store,
            sync_id,
            source_system,
            source_identifier,
            performed_by,
            seen_volumes,
            ids,
            known,
            counts,
            ..
        } = self;
        let audit = Audit {
            sync_id,
            source_system,
            source_identifier,
            performed_by,
            at,
        };
        // The counts report what was committed: a batch whose transaction fails (a full disk)
        // takes its counts back with it.
        let committed = *counts;
        let written = store.write(|w| {
            let known = match known {
                Some(known) => known,
                None => known.insert(w.fingerprinted_devices(source_system, source_identifier)?),
            };
            // As the report arrived (before stored IPs are patched in for guests without Tools).
            let fingerprints: Vec<i64> = bundles
                .iter()
                .map(|b| b.fingerprint.unwrap_or_else(|| b.content_fingerprint()))
                .collect();
            // A device reported exactly as stored costs one `last_seen` move, nothing else.
            let same: Vec<(i64, i64)> = bundles
                .iter()
                .zip(&fingerprints)
                .filter_map(|(bundle, &given)| {
                    known
                        .get(&bundle.record.source_id)
                        .filter(|(_, stored)| *stored == given)
                        .map(|&(id, _)| (id, given))
                })
                .collect();
            let touched = w.touch_unchanged(&same, at)?;
            let mut rest = Vec::with_capacity(bundles.len() - touched.len());
            let mut rest_fingerprints = Vec::with_capacity(rest.capacity());
            for (bundle, given) in bundles.into_iter().zip(fingerprints) {
                match known.get(&bundle.record.source_id) {
                    Some(&(id, _)) if touched.contains(&id) => {
                        ids.insert(bundle.record.source_id, id);
                        counts.unchanged += 1;
                    }
                    _ => {
                        rest.push(bundle);
                        rest_fingerprints.push(given);
                    }
                }
            }
            let mut bundles = rest;
            let records: Vec<&crate::model::DeviceRecord> =
                bundles.iter().map(|b| &b.record).collect();
            let upserted = w.upsert_devices_fingerprinted(&records, &rest_fingerprints, at)?;
            for (bundle, up) in bundles.iter_mut().zip(upserted) {
                ids.insert(bundle.record.source_id.clone(), up.id);
                let added = matches!(up.change, Change::Added);
                if up.same_content {
                    counts.unchanged += 1;
                    continue;
                }
                let mut changed = match up.change {
                    Change::Added => {
                        counts.added += 1;
                        audit.record(
                            w,
                            counts,
                            ("add", "device"),
                            Some(up.id),
                            Value::Null,
                            record_json(bundle),
                        )?;
                        false
                    }
                    Change::Updated { before } => {
                        audit.record(
                            w,
                            counts,
                            ("update", "device"),
                            Some(up.id),
                            before.audit_json(),
                            record_json(bundle),
                        )?;
                        true
                    }
                    Change::Unchanged => false,
                };
                changed |= write_details(w, &audit, counts, up.id, bundle)?;
                if changed && !added {
                    counts.updated += 1;
                } else if !changed && !added {
                    counts.unchanged += 1;
                }
            }
            for (volume, owner) in &mut volumes {
                volume.device_id = owner.as_ref().and_then(|o| ids.get(o)).copied();
                let volume = &*volume;
                seen_volumes.insert(volume.source_id.clone());
                let (id, change) = w.upsert_volume(volume, at)?;
                let _ = id;
                match change {
                    Change::Added => {
                        counts.volumes_changed += 1;
                        audit.record(
                            w,
                            counts,
                            ("add", "volume"),
                            None,
                            Value::Null,
                            volume_json(volume),
                        )?;
                    }
                    Change::Updated { before } => {
                        counts.volumes_changed += 1;
                        audit.record(
                            w,
                            counts,
                            ("update", "volume"),
                            None,
                            volume_json(&before),
                            volume_json(volume),
                        )?;
                    }
                    Change::Unchanged => {}
                }
            }
            for article in &articles {
                match w.upsert_kb_article(article, at)?.1 {
                    Change::Added => {
                        counts.added += 1;
                        audit.record(w, counts, ("add", "kb_article"), None, Value::Null, json!({"source_id": article.source_id, "title": article.title, "last_updated": article.last_updated}))?;
                    }
                    Change::Updated { before } => {
                        counts.updated += 1;
                        audit.record(w, counts, ("update", "kb_article"), None, json!({"source_id": before.source_id, "title": before.title, "last_updated": before.last_updated}), json!({"source_id": article.source_id, "title": article.title, "last_updated": article.last_updated}))?;
                    }
                    Change::Unchanged => counts.unchanged += 1,
                }
            }
            for issue in &issues {
                let brief = |i: &crate::model::IssueRecord| json!({"issue_key": i.issue_key, "status": i.status, "resolution": i.resolution, "summary": i.summary, "updated_at": i.updated_at});
                match w.upsert_issue(issue, at)?.1 {
                    Change::Added => {
                        counts.added += 1;
                        audit.record(w, counts, ("add", "issue"), None, Value::Null, brief(issue))?;
                    }
                    Change::Updated { before } => {
                        counts.updated += 1;
                        audit.record(w, counts, ("update", "issue"), None, brief(&before), brief(issue))?;
                    }
                    Change::Unchanged => counts.unchanged += 1,
                }
            }
            Ok(())
        });
        if written.is_err() {
            *counts = committed;
        }
        written
    }

    /// Links, then the sweep (only after a complete fetch, behind the guard).
    pub(crate) fn finish(
        &mut self,
        complete: bool,
        guard_percent: u32,
        at: &str,
    ) -> Result<Finish> {
        let Reconciler {
            store,
            sync_id,
            source_system,
            source_identifier,
            performed_by,
            seen_volumes,
            links,
            ids,
            counts,
            known: _,
        } = self;
        let audit = Audit {
            sync_id,
            source_system,
            source_identifier,
            performed_by,
            at,
        };
        store.write(|w| {
            let mut wanted: HashSet<(i64, i64, RelationshipType)> = HashSet::new();
            for link in links.iter() {
                let (Some(&parent), Some(&child)) = (ids.get(&link.parent), ids.get(&link.child)) else { continue };
                wanted.insert((parent, child, link.relationship_type));
                if w.link(parent, child, link.relationship_type, &link.metadata, at)? == Change::Added {
                    counts.links_added += 1;
                    audit.record(w, counts, ("add", "relationship"), Some(child), Value::Null, json!({"parent_device_id": parent, "child_device_id": child, "relationship_type": link.relationship_type}))?;
                }
            }
            let mut finish = Finish::default();
            if !complete {
                return Ok(finish);
            }
            for owned in w.links_within_source(source_system, source_identifier)? {
                if !wanted.contains(&(owned.parent, owned.child, owned.relationship_type)) {
                    w.delete_link(owned.id)?;
                    counts.links_removed += 1;
                    audit.record(w, counts, ("delete", "relationship"), Some(owned.child), json!({"parent_device_id": owned.parent, "child_device_id": owned.child, "relationship_type": owned.relationship_type}), Value::Null)?;
                }
            }
            let active = w.device_keys(source_system, source_identifier, DeviceStatus::Active)?;
            let gone: Vec<&(i64, String)> = active.iter().filter(|(_, sid)| !ids.contains_key(sid)).collect();
            if !gone.is_empty() && gone.len() as u64 * 100 > u64::from(guard_percent) * active.len() as u64 {
                finish.sweep_refused = Some(format!(
                    "sweep refused: {} of {} active devices ({:.0}%) were not seen, more than the {}% the guard allows; nothing was marked inactive",
                    gone.len(),
                    active.len(),
                    gone.len() as f64 * 100.0 / active.len() as f64,
                    guard_percent
                ));
                return Ok(finish);
            }
            for (id, _) in gone {
                w.set_device_status(*id, DeviceStatus::Inactive, at)?;
                counts.removed += 1;
                audit.record(w, counts, ("update", "status"), Some(*id), json!({"status": "active"}), json!({"status": "inactive", "reason": "not listed by the source"}))?;
            }
            for (id, sid) in w.volume_keys(source_system, source_identifier)? {
                if !seen_volumes.contains(&sid) {
                    w.delete_volume(id)?;
                    counts.volumes_changed += 1;
                    audit.record(w, counts, ("delete", "volume"), None, json!({"source_id": sid}), Value::Null)?;
                }
            }
            Ok(finish)
        })
    }
}

fn volume_json(volume: &VolumeRecord) -> Value {
    serde_json::to_value(volume).unwrap_or(Value::Null)
}

/// VM details, interfaces, facts and configs of one device; true if anything changed.
fn write_details(
    w: &Writer<'_>,
    audit: &Audit<'_>,
    counts: &mut Counts,
    id: i64,
    bundle: &mut DeviceBundle,
) -> Result<bool> {
    let mut changed = false;
    if bundle.snapshots_unknown
        && let (Some(vm), Some(stored)) = (bundle.vm.as_mut(), w.stored_vm(id)?)
    {
        // Snapshots were unreadable this time: what we knew stands.
        vm.snapshots = stored.snapshots;
        vm.total_snapshot_size_bytes = stored.total_snapshot_size_bytes;
    }
    if bundle.ips_unknown {
        // Guest data was unavailable: keep what we knew rather than record the IPs as gone.
        if let (Some(vm), Some(stored)) = (bundle.vm.as_mut(), w.stored_vm(id)?) {
            vm.ip_addresses = stored.ip_addresses;
        }
        if let Some(interfaces) = bundle.interfaces.as_mut() {
            let stored = w.stored_interfaces(id)?;
            for iface in interfaces.iter_mut() {
                if let Some(old) = stored
                    .iter()
                    .find(|s| s.interface_name == iface.interface_name)
                {
                    iface.ip_addresses = old.ip_addresses.clone();
                }
            }
        }
    }
    if let Some(vm) = &bundle.vm {
        match w.upsert_vm(id, vm)? {
            Change::Unchanged => {}
            Change::Added => {
                audit.record(w, counts, ("add", "vm"), Some(id), Value::Null, vm_json(vm))?
            }
            Change::Updated { before } => {
                changed = true;
                audit.record(
                    w,
                    counts,
                    ("update", "vm"),
                    Some(id),
                    vm_json(&before),
                    vm_json(vm),
                )?;
            }
        }
    }
    if let Some(interfaces) = &bundle.interfaces {
        match w.replace_interfaces(id, interfaces)? {
            Change::Unchanged => {}
            Change::Added => audit.record(
                w,
                counts,
                ("add", "interfaces"),
                Some(id),
                Value::Null,
                json!(interfaces),
            )?,
            Change::Updated { before } => {
                changed = true;
                audit.record(
                    w,
                    counts,
                    ("update", "interfaces"),
                    Some(id),
                    json!(before),
                    json!(interfaces),
                )?;
            }
        }
    }
    if let Some(facts) = &bundle.facts {
        let diff = w.replace_facts(id, facts, audit.at)?;
        if !diff.is_empty() {
            let had_before = !diff.changed.is_empty() || !diff.removed.is_empty();
            let old: serde_json::Map<String, Value> = diff
                .changed
                .iter()
                .map(|(k, old, _)| (k.clone(), json!(old)))
                .chain(diff.removed.iter().map(|(k, old)| (k.clone(), json!(old))))
                .collect();
            let new: serde_json::Map<String, Value> = diff
                .added
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .chain(
                    diff.changed
                        .iter()
                        .map(|(k, _, new)| (k.clone(), json!(new))),
                )
                .collect();
            let operation = if had_before { "update" } else { "add" };
            changed |= had_before || !old.is_empty();
            audit.record(
                w,
                counts,
                (operation, "facts"),
                Some(id),
                Value::Object(old),
                Value::Object(new),
            )?;
        }
    }
    for config in bundle.configs.iter().filter(|c| c.verifies_newest) {
        if let Some((version, old_hash)) = w.correct_newest_config(id, &config.text)? {
            changed = true;
            audit.record(w, counts, ("update", "config"), Some(id),
                json!({"version": version, "config_hash": old_hash}),
                json!({"version": version, "config_hash": crate::store::config_hash(&config.text), "corrected": "the stored text differed from what the source serves for this version"}),
            )?;
        }
    }
    for config in bundle.configs.iter().filter(|c| !c.verifies_newest) {
        if let ConfigStored::New { version, .. } = w.store_config(
            id,
            &config.text,
            &bundle.record.source_system,
            &config.retrieved_at,
        )? {
            counts.configs_stored += 1;
            if version > 1 {
                changed = true;
            }
            audit.record(w, counts, ("add", "config"), Some(id),
                if version > 1 { json!({"version": version - 1}) } else { Value::Null },
                json!({"version": version, "config_hash": crate::store::config_hash(&config.text), "retrieved_at": config.retrieved_at}),
            )?;
        }
    }
    Ok(changed)
}

fn vm_json(vm: &VmRecord) -> Value {
    serde_json::to_value(vm).unwrap_or(Value::Null)
}
