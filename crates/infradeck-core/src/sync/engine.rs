//! Runs: lock, fetch, reconcile, sweep, record.
//!
//! A run records itself in `sync_runs` (the cross-process lock and the live progress every viewer
//! reads), streams the connector's items to a reconciler thread that writes them in batched
//! transactions, heartbeats and publishes progress at most four times a second, and ends with one
//! status: `success`, `partial` (incomplete fetch, or the sweep guard refused), `failed` or
//! `cancelled`. Only a complete fetch may sweep; a failed, cancelled or partial run marks nothing
//! inactive. Cancellation comes from the caller's token or from another process setting
//! `cancel_requested` on the run's row.

use super::reconcile::Reconciler;
use crate::app::{Counts, SYNC_ID_TIME};
use crate::app::{RunEvent, RunOutcome};
use crate::config::{General, SourceConfig};
use crate::http::{RetryPolicy, SourceClient, SourceError};
use crate::model::RunStatus;
use crate::sources::{FetchContext, Hints, Item, Progress};
use crate::store::{OpenOptions, RunOwner, RunProgress, RunSummary, Store};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// How often progress is written to `sync_runs` and published.
const BEAT: Duration = Duration::from_millis(250);
/// Items written per transaction at most.
const BATCH: usize = 2000;

/// Runs syncs against one database.
#[derive(Clone)]
pub struct Engine {
    pub database: PathBuf,
    pub open: OpenOptions,
    pub general: General,
    pub retry: RetryPolicy,
    pub(crate) performed_by: String,
    /// A running row whose heartbeat is older than this belongs to a dead process.
    pub(crate) stale_after: Duration,
    events: broadcast::Sender<RunEvent>,
}

/// A running row whose heartbeat is older than this belongs to a process that died.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

impl Engine {
    /// [`crate::process::end_own_runs`] for this engine's database.
    pub fn end_own_runs(&self, why: &str) -> usize {
        crate::process::end_own_runs(&self.database, why)
    }

    pub fn new(database: PathBuf, general: General) -> Engine {
        let (events, _) = broadcast::channel(1024);
        let max_retry_wait = general.max_retry_wait;
        Engine {
            // Several runs write at once, each holding the write lock for a batch; a run should
            // wait its turn rather than fail, so its connections wait at least 30 s.
            open: OpenOptions {
                busy_timeout: general.busy_timeout.max(Duration::from_secs(30)),
            },
            database,
            general,
            retry: RetryPolicy {
                cap: max_retry_wait,
                ..RetryPolicy::default()
            },
            performed_by: format!("infradeck sync ({})", crate::identity::os_user()),
            stale_after: STALE_AFTER,
            events,
        }
    }

    /// Progress of every run of this engine, as it happens.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    /// Runs several sources at once and waits for all of them.
    pub async fn run_all(
        &self,
        sources: &[SourceConfig],
        cancel: &CancellationToken,
    ) -> Vec<RunOutcome> {
        futures::future::join_all(sources.iter().map(|s| self.run(s, cancel.child_token()))).await
    }

    /// One run of one source instance.
    pub async fn run(&self, source: &SourceConfig, cancel: CancellationToken) -> RunOutcome {
        let started = Instant::now();
        let name = format!("{}/{}", source.kind, source.id);
        let fail = |message: String, sync_id: Option<String>| RunOutcome {
            sync_id,
            source: name.clone(),
            status: RunStatus::Failed,
            message: Some(message),
            counts: Counts::default(),
            duration: started.elapsed(),
            requests: 0,
            sweep_refused: false,
        };
        let started_at = crate::time::now();
        let sync_id = format!(
            "{}-{}-{}",
            source.kind,
            source.id,
            chrono::Utc::now().format(SYNC_ID_TIME)
        );
        let (database, open, stale_after) =
            (self.database.clone(), self.open.clone(), self.stale_after);
        let (kind, id, sid) = (
            source.kind.as_str().to_string(),
            source.id.clone(),
            sync_id.clone(),
        );
        let source_kind = source.kind;
        let opened =
            tokio::task::spawn_blocking(move || -> Result<(Store, Hints), crate::store::Error> {
                let mut store = Store::open(&database, &open)?;
                let now = chrono::Utc::now();
                let stale_before = crate::time::format(
                    now - chrono::Duration::from_std(stale_after).unwrap_or_default(),
                );
                let host = crate::identity::host_name();
                let owner = RunOwner {
                    pid: i64::from(std::process::id()),
                    host: &host,
                };
                store.write(|w| {
                    if let Some(dead) = w.end_run_of_dead_process(
                        &kind,
                        &id,
                        &host,
                        &crate::identity::process_is_gone,
                        &crate::time::format(now),
                    )? {
                        tracing::warn!(source = %format!("{kind}/{id}"), sync_id = %dead.sync_id, pid = ?dead.pid, "took over the lock of a run whose process is gone");
                    }
                    w.begin_run(
                        &sid,
                        &kind,
                        &id,
                        &owner,
                        &crate::time::format(now),
                        &stale_before,
                    )
                })?;
                let hints = Hints {
                    metadata: if crate::sources::reads_stored_metadata(source_kind) {
                        store.source_metadata(&kind, &id)?
                    } else {
                        Default::default()
                    },
                    last_success_start: store.last_success_start(&kind, &id)?,
                    active_ids: if crate::sources::confirms_missed_devices(source_kind) {
                        store
                            .device_keys_of_source(&kind, &id, crate::model::DeviceStatus::Active)?
                            .into_iter()
                            .map(|(_, source_id)| source_id)
                            .collect()
                    } else {
                        Default::default()
                    },
                    volume_ids: if crate::sources::confirms_missed_volumes(source_kind) {
                        store
                            .volume_keys_of_source(&kind, &id)?
                            .into_iter()
                            .map(|(_, source_id)| source_id)
                            .collect()
                    } else {
                        Default::default()
                    },
                };
                Ok((store, hints))
            })
            .await;
        let (store, hints) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => return fail(format!("{name}: {err}"), None),
            Err(err) => return fail(format!("{name}: {err}"), None),
        };
        let mut reconciler = Reconciler::new(
            store,
            &sync_id,
            source.kind.as_str(),
            &source.id,
            &self.performed_by,
        );
        let client = match SourceClient::new(source, self.retry.clone()) {
            Ok(client) => client,
            Err(err) => {
                let message = err.to_string();
                let outcome = self
                    .close(
                        reconciler,
                        RunStatus::Failed,
                        Some(message),
                        &started_at,
                        started,
                        0,
                        false,
                    )
                    .await;
                return outcome;
            }
        };
        let progress = Arc::new(Progress::default());
        client.show_waits_in(progress.clone());
        let (tx, rx) = mpsc::channel::<Item>(4096);
        let handle = tokio::runtime::Handle::current();
        let loop_state = LoopState {
            events: self.events.clone(),
            progress: progress.clone(),
            cancel: cancel.clone(),
            sync_id: sync_id.clone(),
            source: name.clone(),
            started,
        };
        let writer = std::thread::spawn(move || reconcile_loop(handle, rx, reconciler, loop_state));
        let ctx = FetchContext {
            source: source.clone(),
            client,
            sink: tx,
            progress,
            cancel: cancel.clone(),
            hints,
            now: chrono::Utc::now(),
        };
        let fetched = tokio::select! {
            result = crate::sources::fetch(&ctx) => result,
            _ = cancel.cancelled() => Err(SourceError::Cancelled { source_name: name.clone() }),
        };
        let requests = ctx.client.requests();
        drop(ctx);
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        let (returned, write_failure) = match joined {
            Ok(Ok(pair)) => pair,
            _ => {
                return fail(
                    format!("{name}: the database writer stopped unexpectedly"),
                    Some(sync_id),
                );
            }
        };
        reconciler = returned;
        let (status, message, complete) = match (&write_failure, fetched) {
            (Some(db), _) => (
                RunStatus::Failed,
                Some(format!("{name}: cannot write to the database: {db}")),
                false,
            ),
            (None, Err(SourceError::Cancelled { .. })) => {
                (RunStatus::Cancelled, Some("cancelled".to_string()), false)
            }
            (None, Err(err)) => (RunStatus::Failed, Some(err.to_string()), false),
            (None, Ok(summary)) if summary.complete => (RunStatus::Success, summary.note, true),
            (None, Ok(summary)) => (
                RunStatus::Partial,
                Some(
                    summary
                        .note
                        .unwrap_or_else(|| "the source did not list everything".into()),
                ),
                false,
            ),
        };
        self.close(
            reconciler,
            status,
            message,
            &started_at,
            started,
            requests,
            complete,
        )
        .await
    }

    /// Links, sweep and bookkeeping at the end of a run.
    #[allow(clippy::too_many_arguments)]
    async fn close(
        &self,
        mut reconciler: Reconciler,
        status: RunStatus,
        message: Option<String>,
        started_at: &str,
        started: Instant,
        requests: u64,
        complete: bool,
    ) -> RunOutcome {
        let guard = self.general.sweep_guard_percent;
        let started_at = started_at.to_string();
        let events = self.events.clone();
        let source = format!(
            "{}/{}",
            reconciler.source_system, reconciler.source_identifier
        );
        let result = tokio::task::spawn_blocking(move || {
            let now = crate::time::now();
            let (mut status, mut message) = (status, message);
            let mut sweep_refused = false;
            match reconciler.finish(complete, guard, &now) {
                Ok(finish) => {
                    if let Some(refused) = finish.sweep_refused {
                        status = RunStatus::Partial;
                        message = Some(refused);
                        sweep_refused = true;
                    }
                }
                Err(err) => {
                    status = RunStatus::Failed;
                    message = Some(format!("cannot finish the run: {err}"));
                }
            }
            let counts = reconciler.counts;
            let progress = RunProgress {
                phase: "done",
                done: reconciler.seen() as i64,
                total: Some(reconciler.seen() as i64),
                message: None,
                added: counts.added,
                updated: counts.updated,
                removed: counts.removed,
            };
            let duration = started.elapsed().as_secs_f64();
            let (system, instance, sync_id) = (
                reconciler.source_system.clone(),
                reconciler.source_identifier.clone(),
                reconciler.sync_id.clone(),
            );
            let recorded = reconciler.store.write(|w| {
                w.finish_run(&sync_id, status, message.as_deref(), &progress, &now)?;
                w.record_sync_result(&RunSummary {
                    source_system: &system,
                    source_identifier: &instance,
                    started_at: &started_at,
                    finished_at: &now,
                    status,
                    duration_seconds: duration,
                    added: counts.added,
                    updated: counts.updated,
                    removed: counts.removed,
                    error_message: if status == RunStatus::Success {
                        None
                    } else {
                        message.as_deref()
                    },
                })
            });
            if let Err(err) = recorded {
                status = RunStatus::Failed;
                message = Some(format!("cannot record the run: {err}"));
            }
            (status, message, counts, sync_id, sweep_refused)
        })
        .await;
        let (status, message, counts, sync_id, sweep_refused) = match result {
            Ok(r) => r,
            Err(err) => (
                RunStatus::Failed,
                Some(format!("the run's bookkeeping panicked: {err}")),
                Counts::default(),
                String::new(),
                false,
            ),
        };
        let _ = events.send(RunEvent {
            sync_id: sync_id.clone(),
            source: source.clone(),
            status,
            phase: "done".into(),
            done: (counts.added + counts.updated + counts.unchanged).max(0) as u64,
            total: Some((counts.added + counts.updated + counts.unchanged).max(0) as u64),
            rate: 0.0,
            eta_seconds: None,
            message: message.clone(),
            counts,
        });
        tracing::info!(%source, ?status, ?message, "sync finished");
        RunOutcome {
            sync_id: Some(sync_id),
            source,
            status,
            message,
            counts,
            duration: started.elapsed(),
            requests,
            sweep_refused,
        }
    }
}

struct LoopState {
    events: broadcast::Sender<RunEvent>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    sync_id: String,
    source: String,
    started: Instant,
}

/// The reconciler thread: batches items into transactions, heartbeats, publishes progress and
/// picks up cancellation requests made by other processes. Returns the reconciler and, if a write
/// failed, why (the fetch is cancelled then; the rest of the stream is drained and dropped).
fn reconcile_loop(
    handle: tokio::runtime::Handle,
    mut rx: mpsc::Receiver<Item>,
    mut reconciler: Reconciler,
    state: LoopState,
) -> (Reconciler, Option<String>) {
    let mut failure: Option<String> = None;
    let mut last_beat = Instant::now() - BEAT;
    loop {
        let first = handle.block_on(async { tokio::time::timeout(BEAT, rx.recv()).await });
        let mut batch = Vec::new();
        match first {
            Ok(Some(item)) => {
                batch.push(item);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if !batch.is_empty()
            && failure.is_none()
            && let Err(err) = reconciler.apply(batch, &crate::time::now())
        {
            failure = Some(err.to_string());
            state.cancel.cancel();
        }
        if last_beat.elapsed() >= BEAT && failure.is_none() {
            last_beat = Instant::now();
            beat(&mut reconciler, &state);
        }
    }
    (reconciler, failure)
}

fn beat(reconciler: &mut Reconciler, state: &LoopState) {
    let phase = state.progress.phase();
    let done = state.progress.done();
    let total = state.progress.total();
    let counts = reconciler.counts;
    let progress = RunProgress {
        phase: &phase,
        done: done as i64,
        total: total.map(|t| t as i64),
        message: None,
        added: counts.added,
        updated: counts.updated,
        removed: counts.removed,
    };
    let sync_id = reconciler.sync_id.clone();
    match reconciler
        .store
        .write(|w| w.run_progress(&sync_id, &progress, &crate::time::now()))
    {
        Ok(true) => state.cancel.cancel(),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "cannot record sync progress"),
    }
    let elapsed = state.started.elapsed().as_secs_f64().max(0.001);
    let rate = done as f64 / elapsed;
    let _ = state.events.send(RunEvent {
        sync_id: state.sync_id.clone(),
        source: state.source.clone(),
        status: RunStatus::Running,
        phase,
        done,
        total,
        rate,
        eta_seconds: total
            .filter(|_| rate > 0.0)
            .map(|t| t.saturating_sub(done) as f64 / rate),
        message: None,
        counts,
    });
}
