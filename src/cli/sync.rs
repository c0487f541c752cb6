//! `infradeck sync` and `infradeck history`.

use super::Context;

use infradeck_core::app::{
    Command, Event, PipelineReport, RunEvent, RunOutcome, Service, ServiceLink, ServiceOptions,
};
use infradeck_core::config::SourceConfig;
use infradeck_core::model::RunStatus;
use infradeck_core::sanitize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Options of `infradeck sync`.
#[derive(Debug, Clone, Default)]
pub struct SyncArgs {
    pub sources: Vec<String>,
    pub all: bool,
    pub watch: bool,
    /// Lift the sweep guard for this invocation.
    pub allow_mass_removal: bool,
}

/// The configured sources a sync command means.
pub fn select_sources(ctx: &Context, ids: &[String]) -> anyhow::Result<Vec<SourceConfig>> {
    if ctx.config.sources.is_empty() {
        anyhow::bail!(
            "no sources are configured in {} (see config.example.toml, or run `infradeck sim --write-config PATH`)",
            ctx.config_path.display()
        );
    }
    if ids.is_empty() {
        return Ok(ctx
            .config
            .sources
            .iter()
            .filter(|s| s.enabled)
            .cloned()
            .collect());
    }
    ids.iter()
        .map(|id| {
            ctx.config.source(id).cloned().ok_or_else(|| {
                let known: Vec<&str> = ctx.config.sources.iter().map(|s| s.id.as_str()).collect();
                anyhow::anyhow!(
                    "no source with id `{id}` in {} (configured: {})",
                    ctx.config_path.display(),
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// Runs the selected sources once (or on their intervals with `--watch`), through the
/// application service: this function only renders what it reports.
pub fn sync(ctx: &Context, args: &SyncArgs) -> anyhow::Result<()> {
    if ctx.database_read_only {
        anyhow::bail!(
            "cannot sync: {} is not writable by this user (it was opened read-only)",
            ctx.database_path.display()
        );
    }
    let sources = select_sources(ctx, &args.sources)?;
    // Open (and migrate) once up front, so a bad database path fails before any network work.
    drop(ctx.open_store()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        infradeck_core::process::end_runs_on_panic(ctx.database_path.clone());
        let (service, mut link) = Service::start(
            ctx.database_path.clone(),
            &ctx.config,
            &ServiceOptions {
                allow_mass_removal: args.allow_mass_removal,
                read_only: false,
            },
        );
        let stop = CancellationToken::new();
        spawn_signal_handler(
            link.commands.clone(),
            stop.clone(),
            ctx.database_path.clone(),
        );
        let mut progress = Progress::new(std::io::stderr().is_terminal());
        let result = if args.watch {
            watch(&mut link, sources, &stop, &mut progress).await
        } else {
            once(&mut link, sources, &mut progress).await
        };
        // Every run has ended by now (or, under --watch, is ending after the stop); this waits
        // for them and only ends one that could not record its own end.
        service
            .shutdown(
                "cancelled: the process ended before the run recorded its end",
                None,
            )
            .await;
        // What the runs that were stopped reported on their way out.
        while let Ok(event) = link.events.try_recv() {
            if let Event::RunEnded(outcome) = event {
                progress.clear();
                print_summary(std::slice::from_ref(&outcome));
            }
        }
        result
    })
}

/// `infradeck sync --break-lock RUN`: releases the lock of a run whose process is gone. On this
/// host a dead process is recognised at once; a run of another host only once its heartbeat is
/// stale (its process may still be alive over there).
pub fn break_lock(ctx: &Context, sync_id: &str) -> anyhow::Result<()> {
    let mut store = ctx.open_store()?;
    let host = infradeck_core::identity::host_name();
    let now = chrono::Utc::now();
    let run = store
        .run(sync_id)?
        .ok_or_else(|| anyhow::anyhow!("no run {sync_id} in {}", ctx.database_path.display()))?;
    let gone_here = run.host.as_deref() == Some(host.as_str())
        && run
            .pid
            .is_some_and(infradeck_core::identity::process_is_gone);
    // A dead process on this host needs no waiting: treat its heartbeat as stale now.
    let stale_before = if gone_here {
        infradeck_core::time::format(now + chrono::Duration::seconds(1))
    } else {
        infradeck_core::time::format(
            now - chrono::Duration::from_std(infradeck_core::sync::engine::STALE_AFTER)
                .unwrap_or_default(),
        )
    };
    let who = infradeck_core::identity::os_user();
    match store.write(|w| {
        w.break_lock(
            sync_id,
            &who,
            &stale_before,
            &infradeck_core::time::format(now),
        )
    })? {
        Some(run) => {
            println!(
                "released the lock of run {} ({}/{}, pid {} on {}); it is recorded as failed",
                run.sync_id,
                run.source_system,
                run.source_identifier,
                run.pid.unwrap_or(0),
                run.host.as_deref().unwrap_or("?")
            );
            Ok(())
        }
        None => anyhow::bail!(
            "run {sync_id} is not running ({}): there is no lock to break",
            run.status.as_str()
        ),
    }
}

/// Ctrl-C, SIGTERM and SIGHUP (a dropped SSH session) stop the service: its runs are cancelled
/// and record themselves `cancelled` before the command exits. Under `nohup` (SIGHUP ignored) a
/// hang-up changes nothing. A second signal means "now": the runs are recorded as cancelled and
/// the process exits without waiting for them.
fn spawn_signal_handler(
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    stop: CancellationToken,
    database: std::path::PathBuf,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let watch_hangup = !infradeck_core::process::hangup_ignored();
    tokio::spawn(async move {
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            return;
        };
        let mut hangup = if watch_hangup {
            signal(SignalKind::hangup()).ok()
        } else {
            None
        };
        let mut first = true;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
                Some(_) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    // The terminal is gone: later progress lines must not fail (and panic).
                    infradeck_core::process::detach_from_terminal();
                }
            }
            if first {
                first = false;
                let _ = writeln!(
                    std::io::stderr(),
                    "\nstopping: cancelling running syncs… (again to stop at once)"
                );
                let _ = commands.send(Command::Stop);
                stop.cancel();
            } else {
                infradeck_core::process::end_own_runs(
                    &database,
                    "cancelled: stopped at once by a second signal",
                );
                std::process::exit(130);
            }
        }
    });
}

/// One batch: every source at once, then the pipeline, then the verdict.
async fn once(
    link: &mut ServiceLink,
    sources: Vec<SourceConfig>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if !link.send(Command::Sync { sources }) {
        anyhow::bail!("the sync service stopped before the sync could start");
    }
    let (outcomes, pipeline) = loop {
        match link.events.recv().await {
            Some(Event::Progress(event)) => progress.show(&event),
            Some(Event::BatchEnded { outcomes, pipeline }) => break (outcomes, pipeline),
            Some(Event::Refused { reason }) => anyhow::bail!("{reason}"),
            Some(_) => {}
            None => anyhow::bail!("the sync service ended before the runs did"),
        }
    };
    progress.clear();
    print_summary(&outcomes);
    print_pipeline(&pipeline)?;
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| matches!(o.status, RunStatus::Failed | RunStatus::Cancelled))
        .map(|o| o.source.as_str())
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} sources did not sync: {}",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        );
    }
    let refused: Vec<&RunOutcome> = outcomes.iter().filter(|o| o.sweep_refused).collect();
    if !refused.is_empty() {
        let ids: Vec<&str> = refused
            .iter()
            .map(|o| {
                o.source
                    .split_once('/')
                    .map_or(o.source.as_str(), |(_, id)| id)
            })
            .collect();
        return Err(super::ExitWith {
            code: super::EXIT_SWEEP_REFUSED,
            message: format!(
                "the mass-removal guard kept {} from marking devices inactive (see above); if the removal is real, run `infradeck sync {} --allow-mass-removal`",
                refused
                    .iter()
                    .map(|o| o.source.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                ids.join(" ")
            ),
        }
        .into());
    }
    Ok(())
}

/// Every source on its interval until a signal stops it; each round is reported as it ends.
async fn watch(
    link: &mut ServiceLink,
    sources: Vec<SourceConfig>,
    stop: &CancellationToken,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    eprintln!("watching {} sources; Ctrl-C stops", sources.len());
    if sources.is_empty() {
        return Ok(());
    }
    if !link.send(Command::Watch { sources }) {
        anyhow::bail!("the sync service stopped before the watch could start");
    }
    loop {
        let event = tokio::select! {
            event = link.events.recv() => event,
            _ = stop.cancelled() => return Ok(()),
        };
        match event {
            Some(Event::Progress(event)) => progress.show(&event),
            Some(Event::RunEnded(outcome)) => {
                progress.clear();
                print_summary(std::slice::from_ref(&outcome));
            }
            Some(Event::Refused { reason }) => anyhow::bail!("{reason}"),
            Some(Event::BatchEnded { pipeline, .. }) => {
                // Under --watch a failed correlation is told and the next round goes on.
                if let Err(err) = print_pipeline(&pipeline) {
                    eprintln!("{}", sanitize::for_terminal(&format!("error: {err:#}")));
                }
            }
            Some(_) => {}
            None => return Ok(()),
        }
    }
}

/// What the after-sync pipeline did; its error (a failed correlation) is the caller's to fail
/// on. An embedding failure is a notice: search still works, on full text.
fn print_pipeline(pipeline: &PipelineReport) -> anyhow::Result<()> {
    match &pipeline.correlation {
        Some(Ok(report)) => println!(
            "correlation: {} same_as links ({} new, {} removed); {} datastores linked to the array volume behind them; {} servers cabled to a switch",
            report.total_links,
            report.linked,
            report.unlinked,
            report.backed_datastores,
            report.uplinks
        ),
        Some(Err(err)) => anyhow::bail!("{err}"),
        None => {}
    }
    // The same reason for both (no model installed) is said once.
    let mut said: Option<&String> = None;
    for (what, embedded) in [
        ("pages and issues", &pipeline.embeddings),
        ("machines", &pipeline.machine_embeddings),
    ] {
        match embedded {
            Some(Ok(report)) if report.removed > 0 => println!(
                "embeddings: {} {what} embedded, {} unchanged, {} removed",
                report.embedded, report.unchanged, report.removed
            ),
            Some(Ok(report)) => println!(
                "embeddings: {} {what} embedded, {} unchanged",
                report.embedded, report.unchanged
            ),
            Some(Err(err)) if said == Some(err) => {}
            Some(Err(err)) => {
                eprintln!(
                    "{}",
                    sanitize::for_terminal(&format!("notice: {what} not embedded: {err}"))
                );
                said = Some(err);
            }
            None => {}
        }
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

fn print_summary(outcomes: &[RunOutcome]) {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.source.clone(),
                o.status.to_string(),
                o.counts.added.to_string(),
                o.counts.updated.to_string(),
                o.counts.removed.to_string(),
                o.counts.unchanged.to_string(),
                format!("{:.1}s", o.duration.as_secs_f64()),
                o.requests.to_string(),
                o.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(
            &[
                "SOURCE",
                "STATUS",
                "ADDED",
                "UPDATED",
                "REMOVED",
                "UNCHANGED",
                "TIME",
                "REQUESTS",
                "MESSAGE"
            ],
            &rows
        )
    );
    let _ = std::io::stdout().flush();
}

/// Run progress on stderr: one redrawn line on a terminal, periodic plain lines otherwise.
struct Progress {
    live: bool,
    latest: BTreeMap<String, RunEvent>,
    last_plain: BTreeMap<String, (Instant, String)>,
    last_draw: Instant,
    drawn: bool,
}

impl Progress {
    fn new(live: bool) -> Progress {
        Progress {
            live,
            latest: BTreeMap::new(),
            last_plain: BTreeMap::new(),
            last_draw: Instant::now() - Duration::from_secs(1),
            drawn: false,
        }
    }

    fn show(&mut self, event: &RunEvent) {
        if self.live {
            if event.status == RunStatus::Running {
                self.latest.insert(event.source.clone(), event.clone());
            } else {
                self.latest.remove(&event.source);
            }
            if self.last_draw.elapsed() >= Duration::from_millis(100) {
                self.last_draw = Instant::now();
                let line: Vec<String> = self.latest.values().map(short_progress).collect();
                let text = sanitize::for_terminal(&line.join(" │ ")).into_owned();
                let width = crossterm::terminal::size()
                    .map(|(w, _)| w as usize)
                    .unwrap_or(120);
                let clipped: String = text.chars().take(width.saturating_sub(1)).collect();
                eprint!("\r\x1b[2K{clipped}");
                self.drawn = true;
            }
        } else {
            let changed_phase = self
                .last_plain
                .get(&event.source)
                .is_none_or(|(_, phase)| *phase != event.phase);
            let due = self
                .last_plain
                .get(&event.source)
                .is_none_or(|(at, _)| at.elapsed() >= Duration::from_secs(5));
            if changed_phase || due || event.status != RunStatus::Running {
                self.last_plain
                    .insert(event.source.clone(), (Instant::now(), event.phase.clone()));
                eprintln!("{}", sanitize::for_terminal(&short_progress(event)));
            }
        }
    }

    /// Clears the live line before a summary prints under it.
    fn clear(&mut self) {
        if self.live && self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

fn short_progress(e: &RunEvent) -> String {
    let amount = match e.total {
        Some(total) => format!("{}/{}", e.done, total),
        None => e.done.to_string(),
    };
    let eta = e
        .eta_seconds
        .map(|s| format!(" ETA {s:.0}s"))
        .unwrap_or_default();
    format!(
        "{} {} {amount} {:.0}/s{eta} +{} ~{}",
        e.source, e.phase, e.rate, e.counts.added, e.counts.updated
    )
}

/// Options of `infradeck history`.
#[derive(Debug, Clone, Default)]
pub struct HistoryArgs {
    pub device: Option<String>,
    pub limit: u64,
    pub json: bool,
}

/// Prints the audit trail, newest first, of everything or of one device (by id or name).
pub fn history(ctx: &Context, args: &HistoryArgs) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let entries = match &args.device {
        None => store.history(None, args.limit)?,
        Some(which) => {
            let ids: Vec<i64> = match which.parse::<i64>() {
                Ok(id) => vec![id],
                Err(_) => store.devices_named(which)?.iter().map(|d| d.id).collect(),
            };
            if ids.is_empty() {
                anyhow::bail!("no device named `{which}` (try `infradeck devices {which}`)");
            }
            let mut all = Vec::new();
            for id in ids {
                all.extend(store.history(Some(id), args.limit)?);
            }
            all.sort_by(|a, b| b.performed_at.cmp(&a.performed_at).then(b.id.cmp(&a.id)));
            all.truncate(args.limit as usize);
            all
        }
    };
    if args.json {
        super::print_json(&entries)?;
        return Ok(());
    }
    let summaries = infradeck_core::changes::describe_entries(&store, &entries)?;
    let rows: Vec<Vec<String>> = entries
        .iter()
        .zip(summaries)
        .map(|(h, summary)| {
            vec![
                h.performed_at.clone().unwrap_or_default(),
                format!(
                    "{}/{}",
                    h.source_system,
                    h.source_identifier.clone().unwrap_or_default()
                ),
                h.operation.clone().unwrap_or_default(),
                h.change_type.clone().unwrap_or_default(),
                h.device_name
                    .clone()
                    .or(h.device_id.map(|d| format!("#{d}")))
                    .unwrap_or_default(),
                summary,
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["WHEN", "SOURCE", "OP", "WHAT", "DEVICE", "CHANGE"], &rows)
    );
    if rows.is_empty() {
        eprintln!("no history yet");
    }
    Ok(())
}
