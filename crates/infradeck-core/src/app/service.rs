//! The service itself: carries out [`Command`]s on the caller's tokio runtime and reports
//! [`Event`]s. It owns every run it starts (so a cancel, a stop and the end of the process
//! reach exactly those), runs the after-sync pipeline for every batch, and performs NetBox
//! operations each on its own store connection.

use super::pipeline::Pipeline;
use super::protocol::{
    Command, Counts, Event, NetboxReport, NetboxRequest, PipelineReport, RunOutcome, SearchAnswer,
    ServiceLink, is_run_of,
};
use crate::config::{Config, NetboxConfig, SourceConfig};
use crate::model::RunStatus;
use crate::store::{OpenOptions, Store};
use crate::sync::Engine;
use futures::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How this process's service differs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    /// Lift the sweep guard (`sync --allow-mass-removal`).
    pub allow_mass_removal: bool,
    /// Refuse every command that writes (syncs, NetBox plan, apply, rollback) and open the
    /// database read-only for what is left (a dry run): `--read-only`, or a database this user
    /// cannot write.
    pub read_only: bool,
}

/// A running service. Dropping it leaves its tasks running; [`Service::shutdown`] ends them.
pub struct Service {
    shared: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    pipeline: Pipeline,
    netbox: Option<NetboxConfig>,
    netbox_open: OpenOptions,
    events: mpsc::UnboundedSender<Event>,
    /// `kind/id` → the run of that source going on now.
    running: Mutex<HashMap<String, Slot>>,
    read_only: bool,
    /// Cancelled by a stop or a shutdown: every run's token is a child of it.
    stop: CancellationToken,
    tasks: TaskTracker,
    searcher: Searcher,
}

/// Searches for a front end that does not embed queries itself (the dashboard).
struct Searcher {
    /// `None` without `[embeddings]`; an embedder that cannot be made is why not.
    embedder: Option<Result<crate::search::Embedder, String>>,
    /// One read-only connection kept for searches, so the vector matrix is read once per change
    /// of the database, not once per query.
    store: Arc<Mutex<Option<Store>>>,
}

/// A source's run in progress: its token, and its sync id once the engine has reported it.
struct Slot {
    token: CancellationToken,
    sync_id: Option<String>,
}

fn source_key(source: &SourceConfig) -> String {
    format!("{}/{}", source.kind.as_str(), source.id)
}

impl Service {
    /// Starts the service over `database` on the current tokio runtime (it spawns tasks, so it
    /// must be called from within one) and returns it with the front end's link.
    pub fn start(
        database: PathBuf,
        config: &Config,
        options: &ServiceOptions,
    ) -> (Service, ServiceLink) {
        let mut general = config.general.clone();
        if options.allow_mass_removal {
            general.sweep_guard_percent = 100;
        }
        let engine = Engine::new(database.clone(), general);
        let pipeline = Pipeline::new(
            database,
            engine.open.clone(),
            crate::sync::correlate::CorrelationSettings::of(config),
            config.embeddings.clone(),
        );
        let (events, events_rx) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            netbox_open: OpenOptions {
                busy_timeout: config.general.busy_timeout,
            },
            engine,
            pipeline,
            netbox: config.netbox.clone(),
            events,
            running: Mutex::new(HashMap::new()),
            read_only: options.read_only,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            searcher: Searcher {
                embedder: crate::search::embedder_for(config.embeddings.as_ref()),
                store: Arc::new(Mutex::new(None)),
            },
        });
        // Subscribed before anything can start, so no run's first progress is missed.
        let progress = shared.engine.subscribe();
        shared
            .tasks
            .spawn(forward_progress(shared.clone(), progress));
        tokio::spawn(serve(shared.clone(), commands_rx));
        // The local model loads (and its 90 MB of weights are checked) before the first search
        // needs it, on the blocking pool.
        if let Some(Ok(embedder)) = &shared.searcher.embedder {
            let warming = embedder.warm();
            shared.tasks.spawn(async move {
                if let Err(err) = warming.await {
                    tracing::warn!("semantic search: {err}");
                }
            });
        }
        (
            Service { shared },
            ServiceLink {
                commands,
                events: events_rx,
            },
        )
    }

    /// The engine the service runs syncs with (its database and open options).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Ends the service: cancels every run, waits for them to record their end (at most `wait`,
    /// forever with `None`), then records as cancelled, with `why`, any run of this process
    /// still marked running. Returns how many had to be ended that way.
    pub async fn shutdown(self, why: &str, wait: Option<Duration>) -> usize {
        self.shared.stop.cancel();
        self.shared.tasks.close();
        match wait {
            Some(limit) => {
                let _ = tokio::time::timeout(limit, self.shared.tasks.wait()).await;
            }
            None => self.shared.tasks.wait().await,
        }
        if self.shared.read_only {
            // Nothing was started, and the database may not be ours to write.
            return 0;
        }
        self.shared.engine.end_own_runs(why)
    }
}

/// Reads commands until the front end goes. Every command is answered, also after a stop (a
/// sync then ends at once, having started nothing), so a front end waiting for its answer
/// never waits forever. Not among the tracked tasks: a shutdown waits for the work, not for a
/// front end that still holds its link.
async fn serve(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    while let Some(command) = commands.recv().await {
        if let Some(reason) = refused(&shared, &command) {
            let _ = shared.events.send(Event::Refused { reason });
            continue;
        }
        match command {
            Command::Sync { sources } => start_batch(&shared, sources),
            Command::Watch { sources } => {
                for source in sources {
                    shared.tasks.spawn(watch(shared.clone(), source));
                }
            }
            Command::Cancel { sync_id } => {
                let running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
                for (source, slot) in running.iter() {
                    // By the run's own sync id once known; before its first progress report, by
                    // the source the id belongs to (never one whose id only starts the same way).
                    let this_run = match &slot.sync_id {
                        Some(id) => *id == sync_id,
                        None => is_run_of(&sync_id, source),
                    };
                    if this_run {
                        slot.token.cancel();
                    }
                }
            }
            Command::Stop => shared.stop.cancel(),
            Command::Netbox(request) => {
                let shared = shared.clone();
                shared.tasks.clone().spawn(async move {
                    let result = netbox(&shared, &request)
                        .await
                        .map_err(|err| format!("{err:#}"));
                    let _ = shared.events.send(Event::Netbox { request, result });
                });
            }
            Command::Search { query, limit } => {
                let shared = shared.clone();
                shared.tasks.clone().spawn(async move {
                    let result = search(&shared, &query, limit)
                        .await
                        .map_err(|err| format!("{err:#}"));
                    let _ = shared.events.send(Event::Search { query, result });
                });
            }
        }
    }
}

/// Why a command is not carried out here: NetBox work after a stop, a write in a read-only
/// service.
fn refused(shared: &Shared, command: &Command) -> Option<String> {
    if shared.stop.is_cancelled() && matches!(command, Command::Netbox(_)) {
        return Some("the service is stopping: nothing new starts".into());
    }
    if !shared.read_only {
        return None;
    }
    let what = match command {
        Command::Sync { .. } | Command::Watch { .. } => "syncs write the database",
        Command::Netbox(NetboxRequest::Plan) => "a NetBox plan writes the review queue",
        Command::Netbox(NetboxRequest::Apply { dry_run: false, .. }) => "an apply writes NetBox",
        Command::Netbox(NetboxRequest::Rollback { .. }) => "a rollback writes NetBox",
        _ => return None,
    };
    Some(format!("read-only: {what}, and is refused"))
}

/// The engine's progress, as events, while the service runs; each run's sync id is noted for
/// exact cancels.
async fn forward_progress(
    shared: Arc<Shared>,
    mut progress: tokio::sync::broadcast::Receiver<super::protocol::RunEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        tokio::select! {
            event = progress.recv() => match event {
                Ok(event) => {
                    if let Some(slot) = shared
                        .running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(&event.source)
                    {
                        slot.sync_id.get_or_insert_with(|| event.sync_id.clone());
                    }
                    let _ = shared.events.send(Event::Progress(event));
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            _ = shared.stop.cancelled() => break,
        }
    }
}

/// Claims `source` for a run: its token, or `None` when a run of it is already going.
fn claim(shared: &Shared, source: &SourceConfig) -> Option<CancellationToken> {
    let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
    let key = source_key(source);
    if running.contains_key(&key) {
        return None;
    }
    let token = shared.stop.child_token();
    running.insert(
        key,
        Slot {
            token: token.clone(),
            sync_id: None,
        },
    );
    Some(token)
}

/// Releases a source's claim however its run ends, a panic included.
struct Claimed<'a> {
    shared: &'a Shared,
    key: String,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        self.shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// One run of a claimed source; releases the claim and reports the end. A run that panics is
/// reported as failed (its row, if it wrote one, is ended by the shutdown).
async fn run_one(shared: &Shared, source: &SourceConfig, token: CancellationToken) -> RunOutcome {
    let key = source_key(source);
    let _claimed = Claimed {
        shared,
        key: key.clone(),
    };
    let started = std::time::Instant::now();
    let outcome = AssertUnwindSafe(shared.engine.run(source, token))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| RunOutcome {
            sync_id: None,
            source: key,
            status: RunStatus::Failed,
            message: Some(format!("the run panicked: {}", panic_text(panic.as_ref()))),
            counts: Counts::default(),
            duration: started.elapsed(),
            requests: 0,
            sweep_refused: false,
        });
    let _ = shared.events.send(Event::RunEnded(outcome.clone()));
    outcome
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// The after-sync pipeline for a batch that has ended, and its report; always sent, so a front
/// end waiting for it is answered even when the pipeline panics.
async fn end_batch(shared: &Shared, outcomes: Vec<RunOutcome>) {
    let pipeline = AssertUnwindSafe(shared.pipeline.after(&outcomes, &shared.stop))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| PipelineReport {
            skipped: None,
            correlation: Some(Err(format!(
                "the after-sync pipeline panicked: {}",
                panic_text(panic.as_ref())
            ))),
            ..PipelineReport::default()
        });
    let _ = shared.events.send(Event::BatchEnded { outcomes, pipeline });
}

/// Starts a batch; after a stop it starts nothing and ends at once.
fn start_batch(shared: &Arc<Shared>, sources: Vec<SourceConfig>) {
    let mut claimed = Vec::new();
    let mut already_running = Vec::new();
    if !shared.stop.is_cancelled() {
        for source in sources {
            match claim(shared, &source) {
                Some(token) => claimed.push((source, token)),
                None => already_running.push(source_key(&source)),
            }
        }
    }
    let _ = shared.events.send(Event::Started {
        runs: claimed.iter().map(|(s, _)| source_key(s)).collect(),
        already_running,
    });
    let batch_shared = shared.clone();
    shared.tasks.spawn(async move {
        let shared = batch_shared;
        let runs = claimed
            .iter()
            .map(|(source, token)| run_one(&shared, source, token.clone()));
        let outcomes = futures::future::join_all(runs).await;
        end_batch(&shared, outcomes).await;
    });
}

/// Runs `source` on its interval until the service stops; a round whose source is still
/// running (started from elsewhere in this process) is skipped.
async fn watch(shared: Arc<Shared>, source: SourceConfig) {
    while !shared.stop.is_cancelled() {
        if let Some(token) = claim(&shared, &source) {
            let _ = shared.events.send(Event::Started {
                runs: vec![source_key(&source)],
                already_running: Vec::new(),
            });
            let outcome = run_one(&shared, &source, token).await;
            end_batch(&shared, vec![outcome]).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(source.interval) => {}
            _ = shared.stop.cancelled() => {}
        }
    }
}

/// A search: the full-text side on a blocking thread over the kept connection while the
/// query is embedded (by the model on another blocking thread, or over the network), then the
/// two fused.
async fn search(shared: &Arc<Shared>, query: &str, limit: usize) -> anyhow::Result<SearchAnswer> {
    let (kept, database, open) = (
        shared.searcher.store.clone(),
        shared.engine.database.clone(),
        shared.netbox_open.clone(),
    );
    let words = query.to_string();
    let text = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = match kept.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(store) => store,
            None => Store::open_read_only(&database, &open)?,
        };
        let hits = crate::search::text_candidates(&store, &words, &[], limit);
        Ok((store, hits))
    });
    let (model, vector) = match &shared.searcher.embedder {
        None => (None, None),
        Some(Err(why)) => (None, Some(Err(why.clone()))),
        Some(Ok(embedder)) => (
            Some(embedder.model()),
            Some(crate::search::embed_query(embedder, query).await?),
        ),
    };
    let (store, hits) = text.await??;
    let kept = shared.searcher.store.clone();
    let query = query.to_string();
    tokio::task::spawn_blocking(move || {
        let result = hits.and_then(|hits| {
            crate::search::rank_with(&store, model.as_deref(), vector, hits, &query, &[], limit)
        });
        *kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
        result
    })
    .await?
}

async fn netbox(shared: &Shared, request: &NetboxRequest) -> anyhow::Result<NetboxReport> {
    use crate::netbox::{ApplyOptions, NetboxClient};
    let config = shared
        .netbox
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [netbox] section in the configuration"))?;
    let client = NetboxClient::new(config, crate::http::RetryPolicy::default())?;
    // A dry run only reads the database: it works where the database is not ours to write.
    let dry_run = matches!(request, NetboxRequest::Apply { dry_run: true, .. });
    let database = &shared.engine.database;
    let mut store = if dry_run || shared.read_only {
        Store::open_read_only(database, &shared.netbox_open)?
    } else {
        Store::open(database, &shared.netbox_open)?
    };
    Ok(match request {
        NetboxRequest::Plan => NetboxReport::Plan(
            crate::netbox::plan(
                &mut store,
                &client,
                config.delete_grace_days,
                &crate::identity::os_user(),
                chrono::Utc::now(),
            )
            .await?,
        ),
        NetboxRequest::Apply {
            batch_id,
            dry_run,
            allow_deletes,
        } => {
            let options = ApplyOptions {
                dry_run: *dry_run,
                allow_deletes: *allow_deletes,
                max_deletes: config.max_deletes,
                chunk: crate::netbox::apply::CHUNK,
            };
            let report = crate::netbox::apply(&mut store, &client, batch_id, &options).await?;
            if *dry_run {
                NetboxReport::DryRun(report)
            } else {
                NetboxReport::Apply(report)
            }
        }
        NetboxRequest::Rollback { batch_id } => {
            NetboxReport::Rollback(crate::netbox::rollback(&mut store, &client, batch_id).await?)
        }
    })
}
