//! `infradeck` with no subcommand: the dashboard over the configured database.

use super::Context;
use infradeck_core::app::{Service, ServiceOptions};
use infradeck_core::config::SourceConfig;
use infradeck_tui::{UiOptions, app::Env, theme::Theme};
use std::io::IsTerminal;

/// The dashboard's fixed facts, from the command line context.
pub(crate) fn env(ctx: &Context) -> Env {
    let user = infradeck_core::identity::os_user();
    Env {
        database_label: shorten_home(&ctx.database_path),
        identity: format!("{user}@{}", infradeck_core::identity::host_name()),
        reviewer: user,
        read_only: ctx.read_only,
        theme: Theme::from_env(),
        sources: ctx.config.sources.clone(),
        volatile_lines: ctx.config.dashboard.volatile_lines.clone(),
        stale_after: chrono::Duration::days(i64::from(ctx.config.general.stale_after_days.max(1))),
        fixed_now: None,
        netbox_configured: ctx.config.netbox.is_some(),
        environment: ctx.config.dashboard.environment.clone(),
    }
}

fn shorten_home(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() => match text.strip_prefix(&home) {
            Some(rest) => format!("~{rest}"),
            None => text,
        },
        _ => text,
    }
}

/// Opens the dashboard; `sync_at_start` are started once the first frame is up.
pub fn dashboard(ctx: &Context, sync_at_start: Vec<SourceConfig>) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the dashboard needs a terminal; for scripts use the subcommands (`infradeck --help`)"
        );
    }
    let store = ctx.open_store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Read-only, the service refuses what writes (the dashboard does not offer it) and still
    // carries out a NetBox dry run.
    let read_only = ctx.read_only || ctx.database_read_only;
    if !read_only {
        // Before the dashboard's own hook, which restores the terminal and then calls this one.
        infradeck_core::process::end_runs_on_panic(ctx.database_path.clone());
    }
    let (service, link) = {
        let _entered = runtime.enter();
        Service::start(
            ctx.database_path.clone(),
            &ctx.config,
            &ServiceOptions {
                allow_mass_removal: false,
                read_only,
            },
        )
    };
    let result = infradeck_tui::run(
        UiOptions {
            store,
            env: env(ctx),
            service: Some(link),
            sync_at_start: if ctx.read_only {
                Vec::new()
            } else {
                sync_at_start
            },
            mouse: ctx.config.dashboard.mouse,
        },
        &runtime,
    );
    // However the dashboard ends, its syncs end with it and are recorded as cancelled: a
    // bounded wait for each to record its own end, then the rest are ended for them.
    runtime.block_on(service.shutdown(
        "cancelled: the dashboard that started it was closed",
        Some(std::time::Duration::from_secs(2)),
    ));
    result
}
