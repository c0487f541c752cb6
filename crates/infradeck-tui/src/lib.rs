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
use crossterm::event::{
    Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use futures::StreamExt;
use infradeck_core::config::SourceConfig;
use infradeck_core::store::Store;
use infradeck_core::sync::{Engine, RunOutcome};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the dashboard runs over.
pub struct UiOptions {
    pub store: Store,
    pub env: Env,
    /// Runs syncs started from the dashboard; `None` when there is nothing to run.
    pub engine: Option<Engine>,
    /// Sources to sync as soon as the first frame is on screen (the demo).
    pub sync_at_start: Vec<SourceConfig>,
    pub mouse: bool,
    /// Runs NetBox apply/rollback for the queue; `None` without a `[netbox]` section.
    pub netbox: Option<NetboxRunner>,
}

/// What the NetBox runner is asked to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetboxOp {
    Plan,
    Apply,
    DryRun,
    Rollback,
}

/// Runs a NetBox operation on a batch; returns a summary line, then one line per item.
pub type NetboxRunner = std::sync::Arc<
    dyn Fn(String, NetboxOp) -> futures::future::BoxFuture<'static, anyhow::Result<Vec<String>>>
        + Send
        + Sync,
>;

enum Done {
    Sync(RunOutcome),
    Netbox(NetboxOp, String, anyhow::Result<Vec<String>>),
}

/// Opens the dashboard and runs until the user quits or a signal arrives. The terminal is
/// restored on every way out, panics included.
pub fn run(options: UiOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
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
        options.engine,
        options.sync_at_start,
        options.netbox,
    ));
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    drop(runtime);
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    engine: Option<Engine>,
    sync_at_start: Vec<SourceConfig>,
    netbox: Option<NetboxRunner>,
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
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let mut run_events = engine.as_ref().map(|e| e.subscribe());
    if !sync_at_start.is_empty() {
        start_syncs(app, engine.as_ref(), sync_at_start, &done_tx, &mut running);
    }
    let mut ticks: u64 = 0;
    let mut last_minute = chrono::Utc::now().timestamp() / 60;
    // The loop ends by quitting, a signal, or an error (a terminal that is gone fails the next
    // draw or read); the runs are ended after it in every case.
    let ended: anyhow::Result<()> = async { loop {
        let mut dirty = false;
        let mut clear = false;
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    clear = key.code == KeyCode::Char('l') && key.modifiers.contains(KeyModifiers::CONTROL);
                    dirty = app.on_key(key);
                }
                Some(Ok(Event::Mouse(mouse))) => {
                    let code = match mouse.kind {
                        MouseEventKind::ScrollDown => Some(KeyCode::Down),
                        MouseEventKind::ScrollUp => Some(KeyCode::Up),
                        _ => None,
                    };
                    if let Some(code) = code {
                        dirty = app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
                    }
                }
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
            Some(done) = done_rx.recv() => {
                match done {
                    Done::Sync(outcome) => {
                        running.remove(&outcome.source);
                        let text = format!(
                            "{}: {} +{} ~{} -{}{}",
                            outcome.source,
                            outcome.status.as_str(),
                            outcome.counts.added,
                            outcome.counts.updated,
                            outcome.counts.removed,
                            outcome.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
                        );
                        app.flash(if outcome.status == infradeck_core::model::RunStatus::Failed { Flash::error(text) } else { Flash::info(text) });
                    }
                    Done::Netbox(op, batch, Ok(lines)) => {
                        let title = match op {
                            NetboxOp::Plan => "plan".to_string(),
                            NetboxOp::Apply => format!("apply {batch}"),
                            NetboxOp::DryRun => format!("dry run of {batch}: nothing was sent"),
                            NetboxOp::Rollback => format!("rollback {batch}"),
                        };
                        if let Some(summary) = lines.first() {
                            app.flash(Flash::info(summary.clone()));
                        }
                        app.show_text(&title, lines);
                    }
                    Done::Netbox(_, batch, Err(err)) => {
                        app.flash(Flash::error(format!("{batch}: {err:#}")))
                    }
                }
                app.refresh();
                dirty = true;
            }
            Some(_) = next_run_event(&mut run_events) => {
                // Progress is in the database too; an event only says "look now".
                dirty = app.refresh();
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
                Effect::Sync(sources) => {
                    start_syncs(app, engine.as_ref(), sources, &done_tx, &mut running)
                }
                Effect::Cancel { sync_id } => {
                    for (source, token) in &running {
                        if infradeck_core::sync::engine::is_run_of(&sync_id, source) {
                            token.cancel();
                        }
                    }
                }
                Effect::Copy(text) => {
                    use std::io::Write;
                    let mut out = std::io::stdout();
                    let _ =
                        out.write_all(clipboard::osc52(&text, clipboard::inside_tmux()).as_bytes());
                    let _ = out.flush();
                }
                Effect::Apply { batch_id }
                | Effect::Rollback { batch_id }
                | Effect::DryRun { batch_id }
                    if netbox.is_none() =>
                {
                    app.flash(Flash::error(format!(
                        "cannot reach NetBox for {batch_id}: no [netbox] section"
                    )));
                }
                Effect::Plan if netbox.is_none() => {
                    app.flash(Flash::error("cannot plan: no [netbox] section"));
                }
                Effect::Plan => spawn_netbox(&netbox, String::new(), NetboxOp::Plan, &done_tx),
                Effect::Apply { batch_id } => {
                    spawn_netbox(&netbox, batch_id, NetboxOp::Apply, &done_tx)
                }
                Effect::DryRun { batch_id } => {
                    spawn_netbox(&netbox, batch_id, NetboxOp::DryRun, &done_tx)
                }
                Effect::Rollback { batch_id } => {
                    spawn_netbox(&netbox, batch_id, NetboxOp::Rollback, &done_tx)
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
    // However the dashboard ends, its syncs end with it and are recorded as cancelled: wait a
    // bounded time for each to record its own end, then end any that could not.
    for token in running.values() {
        token.cancel();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !running.is_empty() {
        tokio::select! {
            done = done_rx.recv() => match done {
                Some(Done::Sync(outcome)) => {
                    running.remove(&outcome.source);
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    if let Some(engine) = &engine {
        engine.end_own_runs("cancelled: the dashboard that started it was closed");
    }
    ended
}

async fn next_run_event(
    events: &mut Option<tokio::sync::broadcast::Receiver<infradeck_core::sync::RunEvent>>,
) -> Option<()> {
    match events {
        Some(rx) => match rx.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                *events = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

fn spawn_netbox(
    netbox: &Option<NetboxRunner>,
    batch_id: String,
    op: NetboxOp,
    done: &mpsc::UnboundedSender<Done>,
) {
    let Some(runner) = netbox.clone() else { return };
    let done = done.clone();
    tokio::spawn(async move {
        let result = runner(batch_id.clone(), op).await;
        let _ = done.send(Done::Netbox(op, batch_id, result));
    });
}

fn start_syncs(
    app: &mut App,
    engine: Option<&Engine>,
    sources: Vec<SourceConfig>,
    done: &mpsc::UnboundedSender<Done>,
    running: &mut HashMap<String, CancellationToken>,
) {
    let Some(engine) = engine else {
        app.flash(Flash::error(
            "syncs cannot be started here (read-only or no configuration)",
        ));
        return;
    };
    let mut started = Vec::new();
    for source in sources {
        let key = format!("{}/{}", source.kind.as_str(), source.id);
        if running.contains_key(&key) {
            continue;
        }
        let token = CancellationToken::new();
        running.insert(key.clone(), token.clone());
        started.push(key);
        let engine = engine.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let outcome = engine.run(&source, token).await;
            if outcome.status == infradeck_core::model::RunStatus::Success {
                correlate(&engine).await;
            }
            let _ = done.send(Done::Sync(outcome));
        });
    }
    if !started.is_empty() {
        app.flash(Flash::info(format!("started {}", started.join(", "))));
    }
}

/// Links the same machine across sources after a successful run, one correlation at a time.
async fn correlate(engine: &Engine) {
    static CORRELATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = CORRELATING.lock().await;
    let (database, open) = (engine.database.clone(), engine.open.clone());
    let lldp_facts = engine.general.lldp_facts.clone();
    let result = tokio::task::spawn_blocking(move || {
        infradeck_core::sync::correlate::correlate_file(&database, &open, &lldp_facts)
    })
    .await;
    if let Ok(Err(err)) = result {
        tracing::warn!(error = %err, "correlation after a dashboard sync failed");
    }
}
