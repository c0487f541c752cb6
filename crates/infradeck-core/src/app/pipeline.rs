//! What runs after a batch of syncs, the same way whoever started them: correlation (the same
//! machine across sources, datastores to the volumes behind them, servers to their switches),
//! then embeddings of changed knowledge pages, issues and machines. One pipeline at a time per
//! process: two batches ending together correlate one after the other, each over everything
//! written.

use super::protocol::{PipelineReport, RunOutcome};
use crate::config::EmbeddingsConfig;
use crate::model::{RunStatus, SourceKind};
use crate::store::OpenOptions;
use std::path::PathBuf;

/// What the pipeline works on.
pub(super) struct Pipeline {
    pub(super) database: PathBuf,
    pub(super) open: OpenOptions,
    pub(super) correlation: crate::sync::correlate::CorrelationSettings,
    pub(super) embeddings: Option<EmbeddingsConfig>,
    /// Taken for the whole pipeline, so correlations never overlap.
    turn: tokio::sync::Mutex<()>,
}

impl Pipeline {
    pub(super) fn new(
        database: PathBuf,
        open: OpenOptions,
        correlation: crate::sync::correlate::CorrelationSettings,
        embeddings: Option<EmbeddingsConfig>,
    ) -> Pipeline {
        Pipeline {
            database,
            open,
            correlation,
            embeddings,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs after `outcomes` have all ended. Once `stop` is cancelled nothing more starts (no
    /// correlation, no embedding calls), and embeddings under way are left for the next batch
    /// (unchanged chunks are skipped then, so nothing is lost).
    pub(super) async fn after(
        &self,
        outcomes: &[RunOutcome],
        stop: &tokio_util::sync::CancellationToken,
    ) -> PipelineReport {
        if stop.is_cancelled() {
            return PipelineReport {
                skipped: Some("a stop was requested".into()),
                ..PipelineReport::default()
            };
        }
        let succeeded = |o: &&RunOutcome| o.status == RunStatus::Success;
        if !outcomes.iter().any(|o| succeeded(&o)) {
            return PipelineReport {
                skipped: Some("no run succeeded".into()),
                ..PipelineReport::default()
            };
        }
        let _turn = self.turn.lock().await;
        let (database, open, settings) = (
            self.database.clone(),
            self.open.clone(),
            self.correlation.clone(),
        );
        let correlation = tokio::task::spawn_blocking(move || {
            crate::sync::correlate::correlate_file(&database, &open, &settings)
        })
        .await
        .map_err(|join| anyhow::anyhow!("correlation panicked: {join}"))
        .and_then(|result| result)
        .map_err(|err| format!("correlation failed: {err:#}"));
        let knowledge_synced = outcomes.iter().filter(succeeded).any(|o| {
            o.source
                .split_once('/')
                .and_then(|(kind, _)| kind.parse::<SourceKind>().ok())
                .is_some_and(|kind| matches!(kind, SourceKind::Confluence | SourceKind::Jira))
        });
        // Built once for both kinds of content; `None` when semantic search is not configured.
        let embedder = crate::search::embedder_for(self.embeddings.as_ref());
        let embeddings = match (&embedder, knowledge_synced) {
            (Some(embedder), true) => Some(tokio::select! {
                embedded = self.embed(embedder, crate::search::Content::Knowledge) => embedded,
                _ = stop.cancelled() => Err("stopped before the embeddings were updated".into()),
            }),
            _ => None,
        };
        // Machines after every correlation that worked, whichever sources ran: the last batch
        // of any way of syncing leaves the vectors of the estate as correlation left it.
        let machine_embeddings = match (&embedder, &correlation) {
            (Some(embedder), Ok(_)) => Some(tokio::select! {
                embedded = self.embed(embedder, crate::search::Content::Machines) => embedded,
                _ = stop.cancelled() => Err("stopped before the machines were embedded".into()),
            }),
            _ => None,
        };
        PipelineReport {
            skipped: None,
            correlation: Some(correlation),
            embeddings,
            machine_embeddings,
        }
    }

    /// Embeds `content` with `embedder`, or says why it cannot (no model installed).
    async fn embed(
        &self,
        embedder: &Result<crate::search::Embedder, String>,
        content: crate::search::Content,
    ) -> Result<crate::app::IndexReport, String> {
        let embedder = embedder.as_ref().map_err(Clone::clone)?;
        crate::search::index(&self.database, &self.open, embedder, content)
            .await
            .map_err(|err| format!("{err:#}"))
    }
}
