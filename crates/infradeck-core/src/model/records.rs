//! The normalized records a connector produces and the reconciler writes: a device with
//! everything its source knows about it, links within one source, volumes, knowledge. The
//! shape every source is turned into, so the sync engine never sees a source's own format.

use super::{
    DeviceRecord, InterfaceRecord, IssueRecord, KbArticleRecord, RelationshipType, VmRecord,
    VolumeRecord,
};
use std::collections::BTreeMap;

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
        // The digest's first eight bytes (it has 32), little-endian.
        u64::from_le_bytes(std::array::from_fn(|i| digest[i]))
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
