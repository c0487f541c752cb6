//! Source connectors: fetch from a system's API and normalize into [`crate::model`] records.
//!
//! A connector streams [`Item`]s into a channel while it fetches, so the reconciler writes while
//! the network is still busy and memory stays bounded. It never touches the database; what it
//! needs to know about the stored state (for example which Oxidized versions are already stored)
//! arrives as [`Hints`].

pub(crate) mod atlassian;
pub(crate) mod dorado;
pub(crate) mod facts;
pub(crate) mod foreman;
pub(crate) mod html;
pub mod http;
pub mod netapp;
pub mod netparse;
pub mod oxidized;
pub(crate) mod puppetdb;
pub(crate) mod vcenter;
pub(crate) mod vcenter_soap;
pub mod vim25;

use crate::config::{Secret, SourceConfig};
use crate::model::{
    DeviceRecord, InterfaceRecord, IssueRecord, KbArticleRecord, RelationshipType, SourceKind,
    VmRecord, VolumeRecord,
};
use http::{SourceClient, SourceError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A config version to store for a device, oldest first within a bundle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfigRecord {
    pub(crate) text: String,
    /// When the source retrieved this version (Oxidized's commit time).
    pub(crate) retrieved_at: String,
    /// This is the newest stored version fetched again to check it: when its text differs
    /// (the stored one was cut short), it replaces the stored text instead of adding a version.
    pub(crate) verifies_newest: bool,
}

/// A device and everything the source knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceBundle {
    pub record: DeviceRecord,
    pub vm: Option<VmRecord>,
    /// `None`: the source does not report interfaces; leave stored ones alone.
    pub interfaces: Option<Vec<InterfaceRecord>>,
    /// When true, guest data was unavailable (VMware Tools not running): keep the stored IP
    /// addresses instead of recording that they vanished.
    pub(crate) ips_unknown: bool,
    /// When true, the snapshots could not be read (vCenter's SOAP API failed): keep the stored
    /// snapshots and their size instead of recording that they vanished.
    pub(crate) snapshots_unknown: bool,
    /// `None`: the source does not report facts.
    pub(crate) facts: Option<BTreeMap<String, String>>,
    pub(crate) configs: Vec<ConfigRecord>,
    /// [`Self::content_fingerprint`], set by [`FetchContext::emit`] on the connector's task so
    /// that the one writer thread does not pay for it; `None`: the reconciler computes it.
    pub fingerprint: Option<i64>,
}

impl DeviceBundle {
    pub fn new(record: DeviceRecord) -> DeviceBundle {
        DeviceBundle {
            record,
            vm: None,
            interfaces: None,
            ips_unknown: false,
            snapshots_unknown: false,
            facts: None,
            configs: Vec::new(),
            fingerprint: None,
        }
    }

    /// A hash of everything the source reported about the device, so an identical report is
    /// recognised without reading the stored details back. SHA-256 over the values' `Hash`
    /// feed, truncated to 64 bits: collisions are negligible, and if a new build fed the hasher
    /// differently the only cost would be one re-sync that compares every detail (a fingerprint
    /// that does not match is never taken as a change by itself). `Hash` rather than serialized
    /// JSON: half the cost.
    pub fn content_fingerprint(&self) -> i64 {
        use std::hash::{Hash, Hasher};
        let mut feed = ShaFeed(sha2::Digest::new());
        self.record.hash(&mut feed);
        self.vm.hash(&mut feed);
        self.interfaces.hash(&mut feed);
        self.facts.hash(&mut feed);
        self.ips_unknown.hash(&mut feed);
        self.snapshots_unknown.hash(&mut feed);
        for config in &self.configs {
            config.text.hash(&mut feed);
            config.retrieved_at.hash(&mut feed);
            config.verifies_newest.hash(&mut feed);
        }
        // Stored in an INTEGER column: the 64 bits as they are, sign included.
        feed.finish() as i64
    }
}

/// A `Hasher` that feeds SHA-256; `finish` is the first 64 bits of the digest.
struct ShaFeed(sha2::Sha256);

impl std::hash::Hasher for ShaFeed {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    fn finish(&self) -> u64 {
        let digest = sha2::Digest::finalize(self.0.clone());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// A relationship between two devices of the same source instance, by source id.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRecord {
    pub parent: String,
    pub(crate) child: String,
    pub(crate) relationship_type: RelationshipType,
    pub(crate) metadata: serde_json::Value,
}

/// What a connector produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Device(Box<DeviceBundle>),
    Link(LinkRecord),
    /// A volume, and the source id of the device (of the same source) it belongs to, if any.
    Volume(Box<VolumeRecord>, Option<String>),
    KbArticle(Box<KbArticleRecord>),
    Issue(Box<IssueRecord>),
}

/// Shared progress counters a connector updates and the engine reports.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    phase: std::sync::Mutex<String>,
    done: AtomicU64,
    /// 0: unknown.
    total: AtomicU64,
}

impl Progress {
    pub(crate) fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
    }

    pub(crate) fn phase(&self) -> String {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    pub(crate) fn add_total(&self, more: u64) {
        self.total.fetch_add(more, Ordering::Relaxed);
    }

    pub(crate) fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    pub(crate) fn inc(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// What the connector may know about stored state, prepared by the engine from the store.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hints {
    /// Per source id, the metadata JSON currently stored.
    pub(crate) metadata: HashMap<String, serde_json::Value>,
    /// When the last successful run of this source instance started (database format), for
    /// sources that can fetch only what changed since.
    pub(crate) last_success_start: Option<String>,
    /// The source ids of this instance's active devices, for connectors that read by offset
    /// and must confirm that a record they did not list is really gone
    /// ([`confirms_missed_devices`]).
    pub(crate) active_ids: std::collections::HashSet<String>,
    /// The source ids of this instance's stored volumes, for the same check on volumes.
    pub(crate) volume_ids: std::collections::HashSet<String>,
}

/// Whether a connector reads [`Hints::metadata`]. Loading it parses the metadata of every device
/// of the source, which a 100,000-VM vCenter run would pay for nothing.
pub(crate) fn reads_stored_metadata(kind: SourceKind) -> bool {
    kind == SourceKind::Oxidized
}

/// Whether a connector asks the source about the stored devices its listing did not return,
/// before the run may sweep them ([`Hints::active_ids`]). PuppetDB is read by offset (it refuses
/// `>` on `certname`, so no keyset), and a node deactivated on an earlier page while the run
/// reads shifts every later row: the listing alone would make the sweep mark an active node
/// inactive.
pub(crate) fn confirms_missed_devices(kind: SourceKind) -> bool {
    kind == SourceKind::Puppetdb
}

/// The same for volumes ([`Hints::volume_ids`]): Huawei Dorado lists LUNs by `range` (an
/// offset) with no key to page by, so each stored LUN the listing missed is read by id.
pub(crate) fn confirms_missed_volumes(kind: SourceKind) -> bool {
    kind == SourceKind::Dorado
}

/// Everything a connector needs for one run.
pub(crate) struct FetchContext {
    pub(crate) source: SourceConfig,
    pub(crate) client: SourceClient,
    pub(crate) sink: mpsc::Sender<Item>,
    pub(crate) progress: Arc<Progress>,
    pub(crate) cancel: CancellationToken,
    pub(crate) hints: Hints,
    /// The run's start, for staleness judgements.
    pub(crate) now: chrono::DateTime<chrono::Utc>,
}

/// The stored source ids a listing did not return, in order: the ones to confirm with the
/// source before the sweep may touch them.
pub(crate) fn missed_by_listing<'a>(
    stored: &'a std::collections::HashSet<String>,
    listed: &std::collections::HashSet<String>,
) -> Vec<&'a String> {
    let mut missed: Vec<&String> = stored.iter().filter(|id| !listed.contains(*id)).collect();
    missed.sort();
    missed
}

/// Details of single items that could not be read, for the run's message: a count and the
/// first few errors (each names the source and the URL of the item).
pub(crate) fn item_failures_note(what: &str, failures: &[String]) -> Option<String> {
    const SHOWN: usize = 3;
    if failures.is_empty() {
        return None;
    }
    let mut note = format!(
        "{} {what} could not be read and were skipped (nothing was swept): {}",
        failures.len(),
        failures
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if failures.len() > SHOWN {
        note.push_str(&format!("; and {} more", failures.len() - SHOWN));
    }
    Some(note)
}

/// Joins the notes of one run.
pub(crate) fn join_notes(notes: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let notes: Vec<String> = notes.into_iter().flatten().collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// How a fetch ended when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FetchSummary {
    /// Everything was listed and fetched: the run may sweep.
    pub(crate) complete: bool,
    /// Why not complete, or anything the user should know.
    pub(crate) note: Option<String>,
}

impl FetchContext {
    /// Sends one item to the reconciler; fails only when the run is being torn down.
    pub(crate) async fn emit(&self, mut item: Item) -> Result<(), SourceError> {
        if let Item::Device(bundle) = &mut item {
            bundle.fingerprint = Some(bundle.content_fingerprint());
        }
        self.sink
            .send(item)
            .await
            .map_err(|_| SourceError::Cancelled {
                source_name: self.client.name.clone(),
            })
    }

    /// An error if the run was cancelled.
    pub(crate) fn check_cancelled(&self) -> Result<(), SourceError> {
        if self.cancel.is_cancelled() {
            Err(SourceError::Cancelled {
                source_name: self.client.name.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// The source's password (or token), read now.
    pub(crate) fn secret(&self, which: SecretKind) -> Result<Option<Secret>, SourceError> {
        let reference = match which {
            SecretKind::Password => &self.source.password,
            SecretKind::Token => &self.source.token,
        };
        reference
            .as_ref()
            .map(|r| r.resolve())
            .transpose()
            .map_err(|e| SourceError::Setup {
                source_name: self.client.name.clone(),
                detail: e.to_string(),
            })
    }

    /// The password a login-based source requires.
    pub(crate) fn required_password(&self) -> Result<(String, Secret), SourceError> {
        let setup = |detail: &str| SourceError::Setup {
            source_name: self.client.name.clone(),
            detail: detail.to_string(),
        };
        let user = self
            .source
            .username
            .clone()
            .ok_or_else(|| setup("no username configured"))?;
        let password = self
            .secret(SecretKind::Password)?
            .ok_or_else(|| setup("no password_env/password_file/password_cmd configured"))?;
        Ok((user, password))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SecretKind {
    Password,
    Token,
}

/// Runs the connector for the source's kind.
pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    match ctx.source.kind {
        SourceKind::Vcenter => vcenter::fetch(ctx).await,
        SourceKind::Foreman => foreman::fetch(ctx).await,
        SourceKind::Puppetdb => puppetdb::fetch(ctx).await,
        SourceKind::Oxidized => oxidized::fetch(ctx).await,
        SourceKind::Netapp => netapp::fetch(ctx).await,
        SourceKind::Dorado => dorado::fetch(ctx).await,
        SourceKind::Confluence => atlassian::fetch_confluence(ctx).await,
        SourceKind::Jira => atlassian::fetch_jira(ctx).await,
    }
}

pub(crate) use crate::model::{normalize_mac, short_hostname};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizers() {
        assert_eq!(
            normalize_mac("00:50:56:B1:22:7D").as_deref(),
            Some("00:50:56:b1:22:7d")
        );
        assert_eq!(
            normalize_mac("0050.56b1.227d").as_deref(),
            Some("00:50:56:b1:22:7d")
        );
        assert_eq!(normalize_mac("nope"), None);
        assert_eq!(short_hostname("WEB01.lab.local"), "web01");
        assert_eq!(short_hostname("10.20.30.41"), "10.20.30.41");
        assert_eq!(short_hostname("fe80::1"), "fe80::1");
    }
}
