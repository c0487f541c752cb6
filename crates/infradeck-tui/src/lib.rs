//! The terminal dashboard. [`app::App`] holds the state and reacts to keys without knowing about
//! a real terminal; [`run`] owns the terminal and the event loop: keys, a slow tick that notices
//! database changes (from this process or any other), engine runs, signals, and effects such as
//! starting a sync or copying to the clipboard. Nothing is redrawn while nothing changes.

pub mod app;
pub mod clipboard;
pub mod header;
pub mod keys;
pub mod theme;
pub mod views;
pub mod widgets;

use app::{App, Effect, Env, Flash};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use infradeck_core::app::{
    Command, Event as ServiceEvent, NetboxReport, NetboxRequest, RunOutcome, ServiceLink,
};
use infradeck_core::config::SourceConfig;
use infradeck_core::model::RunStatus;
use infradeck_core::store::Store;
use std::time::Duration;

/// What the dashboard runs over.
pub struct UiOptions {
    pub store: Store,
    pub env: Env,
    /// The application service, which runs syncs and NetBox operations for the dashboard;
    /// `None` when nothing may be run (read-only).
    pub service: Option<ServiceLink>,
    /// Sources to sync as soon as the first frame is on screen (the demo).
    pub sync_at_start: Vec<SourceConfig>,
    /// Keep syncing `sync_at_start` on their intervals after the first sync (the demo, whose
    /// simulators change while it runs).
    pub watch: bool,
    pub mouse: bool,
}

/// Opens the dashboard and runs until the user quits or a signal arrives. The terminal is
/// restored on every way out, panics included.
///
/// `runtime` is the one the service runs on: the dashboard's own tasks share it.
pub fn run(options: UiOptions, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut app = App::new(options.store, options.env)?;
    // ratatui::init enters raw mode and the alternate screen and installs a panic hook that
    // restores the terminal before the panic message prints.
    let mut terminal = ratatui::init();
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    let result = runtime.block_on(event_loop(
        &mut terminal,
        &mut app,
        options.service,
        options.sync_at_start,
        options.watch,
    ));
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    mut service: Option<ServiceLink>,
    sync_at_start: Vec<SourceConfig>,
    watch: bool,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // The first frame goes out before any sync work starts; then, while the user reads it, the
    // filter index is built.
    terminal.draw(|f| app.draw(f))?;
    app.warm();
    let mut events = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    if !sync_at_start.is_empty() {
        send(
            app,
            service.as_ref(),
            if watch {
                Command::Watch {
                    sources: sync_at_start,
                }
            } else {
                Command::Sync {
                    sources: sync_at_start,
                }
            },
        );
    }
    let mut ticks: u64 = 0;
    let mut last_minute = chrono::Utc::now().timestamp() / 60;
    // The loop ends by quitting, a signal, or an error (a terminal that is gone fails the next
    // draw or read); the service ends the runs after it in every case.
    let ended: anyhow::Result<()> = async { loop {
        let mut dirty = false;
        let mut clear = false;
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    clear = keys::lookup(&key, &[keys::Scope::Global]).is_some_and(|b| b.action == keys::Action::Redraw);
                    dirty = app.on_key(key);
                }
                Some(Ok(Event::Mouse(mouse))) => dirty = app.on_mouse(mouse, std::time::Instant::now()),
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => break,
            },
            _ = tick.tick() => {
                ticks += 1;
                // Poll the database four times a second while something runs, else once.
                if app.busy() || ticks.is_multiple_of(4) {
                    dirty = app.refresh();
                }
                let minute = chrono::Utc::now().timestamp() / 60;
                if minute != last_minute {
                    last_minute = minute;
                    dirty = true; // ages in the header and lists move on
                }
            }
            Some(event) = next_service_event(&mut service) => {
                dirty = on_service_event(app, event);
            }
            _ = sigterm.recv() => break,
            _ = sighup.recv() => {
                // The SSH session dropped: the terminal is gone, and writing to it (the
                // terminal restore included) would fail and panic before the runs are ended.
                infradeck_core::process::detach_from_terminal();
                break;
            }
        }
        if app.quit {
            break;
        }
        for effect in app.take_effects() {
            match effect {
                Effect::Copy(text) => clipboard::copy(&text),
                Effect::OpenUrl(url) => match clipboard::open_url(&url) {
                    Ok(()) => app.flash(Flash::info("opened in the browser")),
                    Err(why) => {
                        clipboard::copy(&infradeck_core::sanitize::for_clipboard(&url, false));
                        app.flash(Flash::info(format!("{why}: copied the URL instead")));
                    }
                },
                // Without a service (read-only) the full-text hits are the answer.
                Effect::Search { .. } if service.is_none() => {}
                other => {
                    if let Some(command) = command_of(app, other) {
                        send(app, service.as_ref(), command);
                    }
                }
            }
            dirty = true;
        }
        if clear {
            terminal.clear()?;
        }
        if dirty {
            terminal.draw(|f| app.draw(f))?;
        }
    }
    Ok(()) }.await;
    if ended
        .as_ref()
        .is_err_and(|e| e.downcast_ref::<std::io::Error>().is_some())
    {
        // A terminal that fails to draw or read is gone (a dropped session whose hang-up has not
        // been read yet): writing to it again, as the restore will, must not panic.
        infradeck_core::process::detach_from_terminal();
    }
    ended
}

/// The service command an effect asks for; `None` (with a flash saying why) when it cannot be
/// asked here.
fn command_of(app: &mut App, effect: Effect) -> Option<Command> {
    let netbox = |app: &mut App, request: NetboxRequest| {
        if app.env.netbox_configured {
            Some(Command::Netbox(request))
        } else {
            let what = match request.batch_id() {
                "" => "cannot plan".to_string(),
                batch => format!("cannot reach NetBox for {batch}"),
            };
            app.flash(Flash::error(format!("{what}: no [netbox] section")));
            None
        }
    };
    match effect {
        Effect::Sync(sources) => Some(Command::Sync { sources }),
        Effect::Cancel { sync_id } => Some(Command::Cancel { sync_id }),
        Effect::Plan => netbox(app, NetboxRequest::Plan),
        // Confirming with the typed batch id stands in for `--allow-deletes`.
        Effect::Apply { batch_id } => netbox(
            app,
            NetboxRequest::Apply {
                batch_id,
                dry_run: false,
                allow_deletes: Some(u32::MAX),
            },
        ),
        Effect::DryRun { batch_id } => netbox(
            app,
            NetboxRequest::Apply {
                batch_id,
                dry_run: true,
                allow_deletes: Some(u32::MAX),
            },
        ),
        Effect::Rollback { batch_id } => netbox(app, NetboxRequest::Rollback { batch_id }),
        Effect::Search { query, limit } => Some(Command::Search { query, limit }),
        Effect::Copy(_) | Effect::OpenUrl(_) => None,
    }
}

fn send(app: &mut App, service: Option<&ServiceLink>, command: Command) {
    let sent = service.is_some_and(|link| link.send(command));
    if !sent {
        app.flash(Flash::error(
            "nothing can be run from here (read-only, or the service has stopped)",
        ));
    }
}

async fn next_service_event(service: &mut Option<ServiceLink>) -> Option<ServiceEvent> {
    match service {
        Some(link) => match link.events.recv().await {
            Some(event) => Some(event),
            None => {
                *service = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Shows what the service reports; true when the screen changed.
fn on_service_event(app: &mut App, event: ServiceEvent) -> bool {
    match event {
        // Progress is in the database too; an event only says "look now".
        ServiceEvent::Progress(_) => return app.refresh(),
        ServiceEvent::Started {
            runs,
            already_running,
        } => {
            if !runs.is_empty() {
                app.flash(Flash::info(format!("started {}", runs.join(", "))));
            } else if !already_running.is_empty() {
                app.flash(Flash::info(format!(
                    "already running: {}",
                    already_running.join(", ")
                )));
            }
        }
        ServiceEvent::RunEnded(outcome) => app.flash(run_flash(&outcome)),
        ServiceEvent::BatchEnded { pipeline, .. } => {
            if let Some(err) = pipeline.error() {
                app.flash(Flash::error(err.to_string()));
            }
        }
        ServiceEvent::Netbox { request, result } => match result {
            Ok(report) => {
                let (title, lines) = netbox_text(&request, &report);
                if let Some(summary) = lines.first() {
                    app.flash(Flash::info(summary.clone()));
                }
                app.show_text(&title, lines);
            }
            Err(err) => {
                let what = match request.batch_id() {
                    "" => "plan",
                    batch => batch,
                };
                app.flash(Flash::error(format!("{what}: {err}")));
            }
        },
        ServiceEvent::Search { query, result } => {
            app.search_answer(&query, result);
        }
        ServiceEvent::Refused { reason } => app.flash(Flash::error(reason)),
    }
    app.refresh();
    true
}

fn run_flash(outcome: &RunOutcome) -> Flash {
    let text = format!(
        "{}: {} +{} ~{} -{}{}",
        outcome.source,
        outcome.status.as_str(),
        outcome.counts.added,
        outcome.counts.updated,
        outcome.counts.removed,
        outcome
            .message
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    if outcome.status == RunStatus::Failed {
        Flash::error(text)
    } else {
        Flash::info(text)
    }
}

/// A NetBox report as the text view shows it: a title, then a summary line and one line per
/// item.
fn netbox_text(request: &NetboxRequest, report: &NetboxReport) -> (String, Vec<String>) {
    let batch = request.batch_id();
    match report {
        NetboxReport::Plan(report) => {
            let summary = match &report.batch_id {
                Some(id) => format!(
                    "planned {id}: {} creates, {} updates, {} deletes",
                    report.creates, report.updates, report.deletes
                ),
                None => "nothing new to propose".to_string(),
            };
            let notes = report
                .untagged
                .iter()
                .map(|u| format!("not ours (untagged), left alone: {u}"))
                .chain(report.unmapped.iter().map(|u| format!("not mapped: {u}")));
            (
                "plan".to_string(),
                std::iter::once(summary).chain(notes).collect(),
            )
        }
        NetboxReport::Apply(report) => (
            format!("apply {batch}"),
            std::iter::once(report.summary("applied"))
                .chain(report.lines.iter().cloned())
                .collect(),
        ),
        NetboxReport::DryRun(report) => (
            format!("dry run of {batch}: nothing was sent"),
            std::iter::once(format!("{} requests would be sent", report.eligible))
                .chain(report.lines.iter().cloned())
                .collect(),
        ),
        NetboxReport::Rollback(report) => (
            format!("rollback {batch}"),
            std::iter::once(report.summary("rolled back"))
                .chain(report.lines.iter().cloned())
                .collect(),
        ),
    }
}
