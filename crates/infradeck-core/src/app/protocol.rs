//! The application service's vocabulary: what a front end asks for ([`Command`]) and what it
//! hears back ([`Event`]), as data. The CLI renders events as text or JSON, the dashboard as
//! widgets; neither decides what happens after a sync or how a NetBox batch is applied. These
//! types need no network code, so the dashboard's crate builds against them alone.

use crate::config::SourceConfig;
use crate::model::RunStatus;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a front end asks the service to do. Each is answered by one or more [`Event`]s.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run these sources once, together. A source with a run of this service still going is
    /// skipped (its run goes on). When they have all ended the after-sync pipeline runs once,
    /// then [`Event::BatchEnded`] reports every outcome and the pipeline.
    Sync { sources: Vec<SourceConfig> },
    /// Run each source on its interval until the service stops: every round is a batch of one,
    /// with its own pipeline and [`Event::BatchEnded`].
    Watch { sources: Vec<SourceConfig> },
    /// Cancel the run with exactly this sync id, if this service runs it (a run of another
    /// process is cancelled through its row's `cancel_requested`, which its engine polls).
    Cancel { sync_id: String },
    /// Cancel every run of this service; nothing new starts and no pipeline runs after it.
    Stop,
    /// Plan, apply (or dry-run) or roll back NetBox changes.
    Netbox(NetboxRequest),
    /// Search as `infradeck search` does: full text fused with semantic similarity when
    /// `[embeddings]` is configured (the query is embedded here, off the front end's thread).
    /// Answered by [`Event::Search`] with the same query.
    Search { query: String, limit: usize },
}

/// The hits of a search, best first, and why semantic ranking took no part when it did not:
/// the answer to a [`Command::Search`], and what `search::hybrid` returns to the CLI.
#[derive(Debug, Clone, Default)]
pub struct SearchAnswer {
    pub hits: Vec<crate::store::SearchHit>,
    pub notice: Option<String>,
}

/// A NetBox operation on the review queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetboxRequest {
    /// Compare the inventory with NetBox and queue the differences as a new batch.
    Plan,
    /// Write a batch's approved items (or, with `dry_run`, only say what would be sent).
    /// `allow_deletes` lifts the delete cap for a batch with more deletes than `max_deletes`.
    Apply {
        batch_id: String,
        dry_run: bool,
        allow_deletes: Option<u32>,
    },
    /// Undo an applied batch from its recorded before-images.
    Rollback { batch_id: String },
}

impl NetboxRequest {
    /// The batch it is about; empty for a plan.
    pub fn batch_id(&self) -> &str {
        match self {
            NetboxRequest::Plan => "",
            NetboxRequest::Apply { batch_id, .. } | NetboxRequest::Rollback { batch_id } => {
                batch_id
            }
        }
    }
}

/// What a NetBox operation did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum NetboxReport {
    Plan(PlanReport),
    Apply(ApplyReport),
    DryRun(ApplyReport),
    Rollback(ApplyReport),
}

/// What the service reports, in the order it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// Runs that started (`kind/id`), and sources left alone because they were already running.
    Started {
        runs: Vec<String>,
        already_running: Vec<String>,
    },
    /// Progress of one run. It is in the database too; for a viewer it means "look now".
    Progress(RunEvent),
    /// One run has ended.
    RunEnded(RunOutcome),
    /// A batch of runs has ended and the after-sync pipeline ran (or was skipped) for it.
    BatchEnded {
        outcomes: Vec<RunOutcome>,
        pipeline: PipelineReport,
    },
    /// A NetBox operation finished; the error is the whole chain, one line.
    Netbox {
        request: NetboxRequest,
        result: Result<NetboxReport, String>,
    },
    /// A search finished; the error is the whole chain, one line.
    Search {
        query: String,
        result: Result<SearchAnswer, String>,
    },
    /// A command was not carried out at all, and why.
    Refused { reason: String },
}

/// What ran after a batch of syncs: correlation when any run succeeded, then, when semantic
/// search is configured, embeddings of pages and issues (when a knowledge source, Confluence
/// or Jira, succeeded) and of machines (after every correlation: a machine's text is what
/// correlation made of it).
///
/// The one error policy of every front end: a correlation failure is an error of the batch
/// (the CLI exits non-zero, the dashboard shows it, `--watch` prints it and goes on); an
/// embedding failure is a notice, because search still works on full text.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineReport {
    /// Why nothing ran: no run succeeded, or a stop was requested.
    pub skipped: Option<String>,
    pub correlation: Option<Result<CorrelationReport, String>>,
    pub embeddings: Option<Result<IndexReport, String>>,
    pub machine_embeddings: Option<Result<IndexReport, String>>,
}

impl PipelineReport {
    /// The pipeline's error, when correlation failed.
    pub fn error(&self) -> Option<&str> {
        match &self.correlation {
            Some(Err(err)) => Some(err),
            _ => None,
        }
    }
}

/// A front end's end of the service: commands go in, events come out.
pub struct ServiceLink {
    pub commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl ServiceLink {
    /// Sends a command; false when the service has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }
}

/// A progress report of one run, for in-process subscribers (the CLI bar, the dashboard).
#[derive(Debug, Clone, Serialize)]
pub struct RunEvent {
    pub sync_id: String,
    /// `kind/id` of the source instance.
    pub source: String,
    pub status: RunStatus,
    pub phase: String,
    pub done: u64,
    pub total: Option<u64>,
    /// Items per second so far.
    pub rate: f64,
    pub eta_seconds: Option<f64>,
    pub(crate) message: Option<String>,
    pub counts: Counts,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub sync_id: Option<String>,
    pub source: String,
    pub status: RunStatus,
    pub message: Option<String>,
    pub counts: Counts,
    pub duration: Duration,
    /// HTTP requests sent to the source.
    pub requests: u64,
    /// The sweep guard refused to mark a large share of the source's devices inactive.
    pub sweep_refused: bool,
}

/// What a run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub removed: i64,
    pub configs_stored: i64,
    pub links_added: i64,
    pub(crate) links_removed: i64,
    pub volumes_changed: i64,
    pub history_rows: i64,
}

/// What correlation linked: the same machine across sources, datastores to volumes, servers
/// to switches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorrelationReport {
    pub linked: usize,
    pub unlinked: usize,
    pub total_links: usize,
    /// Datastores linked to the array volume or LUN behind them.
    pub backed_datastores: usize,
    /// Servers linked (`connects_to`) to a switch their NICs' CDP/LLDP neighbour names.
    pub uplinks: usize,
    /// What regrouping the records into machines did.
    pub machines: crate::store::MachinesReport,
}

/// What indexing did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexReport {
    pub embedded: usize,
    pub unchanged: usize,
    /// Pieces of content whose vectors were removed (machines that are gone).
    pub removed: usize,
}

/// What `plan` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    /// The new batch, when there was anything new to propose.
    pub batch_id: Option<String>,
    pub creates: usize,
    pub updates: usize,
    pub deletes: usize,
    /// Proposals already open in an earlier batch, left where they are.
    pub already_open: usize,
    /// Pending items of earlier plans that no longer apply.
    pub superseded: usize,
    /// Objects that differ but are not tagged, so they are not ours to change.
    pub untagged: Vec<String>,
    /// Inventory records that cannot be mapped (no cluster, no host name).
    pub unmapped: Vec<String>,
    /// What NetBox lacks that the plan refers to (`tag:infradeck`), created first.
    pub prerequisites: Vec<String>,
}

/// How an apply or rollback went, item by item.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub applied: usize,
    pub conflicts: usize,
    pub failed: usize,
    /// Taken by another process, or not in a state this run handles.
    pub(crate) skipped: usize,
    /// Items this run would write (approved, or left failed or half-done by an earlier run).
    pub eligible: usize,
    /// Write requests sent to NetBox.
    pub requests: usize,
    /// One line per item: what was (or, in a dry run, would be) sent, and how it ended.
    pub lines: Vec<String>,
}

impl ApplyReport {
    pub fn summary(&self, verb: &str) -> String {
        format!(
            "{} {verb}, {} conflicts, {} failed, {} skipped",
            self.applied, self.conflicts, self.failed, self.skipped
        )
    }
}

/// The time part of a sync id (`vcenter-prod-20261128T055000.000Z`): it has no `-`, so the
/// source a sync id belongs to is unambiguous even when one source's id starts with another's.
pub(crate) const SYNC_ID_TIME: &str = "%Y%m%dT%H%M%S%.3fZ";

/// Whether `sync_id` is a run of the source `kind/id` (not of `kind/id-2`, whose sync ids start
/// the same way).
pub fn is_run_of(sync_id: &str, source_key: &str) -> bool {
    let prefix = format!("{}-", source_key.replacen('/', "-", 1));
    sync_id
        .strip_prefix(&prefix)
        .is_some_and(|time| !time.is_empty() && !time.contains('-'))
}

#[cfg(test)]
mod tests {
    use super::is_run_of;

    #[test]
    fn a_sync_id_belongs_to_its_own_source_not_one_whose_id_extends_it() {
        assert!(is_run_of(
            "vcenter-prod-20261128T055000.000Z",
            "vcenter/prod"
        ));
        assert!(!is_run_of(
            "vcenter-prod-2-20261128T055000.000Z",
            "vcenter/prod"
        ));
        assert!(is_run_of(
            "vcenter-prod-2-20261128T055000.000Z",
            "vcenter/prod-2"
        ));
        assert!(!is_run_of("vcenter-prod-", "vcenter/prod"));
        assert!(!is_run_of(
            "foreman-prod-20261128T055000.000Z",
            "vcenter/prod"
        ));
    }
}
