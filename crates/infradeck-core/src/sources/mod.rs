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
pub mod netapp;
pub mod netparse;
pub mod oxidized;
pub(crate) mod puppetdb;
pub(crate) mod vcenter;
pub(crate) mod vcenter_soap;
pub mod vim25;

use crate::config::{Secret, SourceConfig};
use crate::http::{SourceClient, SourceError};
use crate::model::SourceKind;
pub(crate) use crate::model::{ConfigRecord, DeviceBundle, Item, LinkRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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

impl crate::http::ShowsWaits for Progress {
    fn phase(&self) -> String {
        Progress::phase(self)
    }

    fn set_phase(&self, phase: &str) {
        Progress::set_phase(self, phase);
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
