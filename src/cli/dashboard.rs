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
        reviewer: infradeck_core::identity::reviewer(
            ctx.config
                .netbox
                .as_ref()
                .and_then(|n| n.reviewer.as_deref()),
        ),
        read_only: ctx.read_only,
        theme: Theme::from_env(),
        sources: ctx.config.sources.clone(),
        volatile_lines: ctx.config.dashboard.volatile_lines.clone(),
        stale_after: chrono::Duration::days(i64::from(ctx.config.general.stale_after_days.max(1))),
        fixed_now: None,
        netbox_configured: ctx.config.netbox.is_some(),
        environment: ctx.config.dashboard.environment.clone(),
        machine_rules: ctx.config.machine_rules(),
        last_look: None,
        landing: ctx.config.dashboard.landing,
        // Hybrid ranking when there is something to embed with: an endpoint, or the model.
        semantic_search: ctx.config.embeddings.as_ref().is_some_and(|e| {
            e.backend == infradeck_core::config::EmbeddingBackend::Http
                || infradeck_core::search::local_model_present(&e.model_dir)
        }),
    }
}

/// The user's previous look at the changes, and this session recorded as the new one (when the
/// database can be written): the dashboard opens on what changed since the previous one.
fn take_last_look(ctx: &Context, store: &mut infradeck_core::store::Store) -> Option<String> {
    let user = infradeck_core::identity::os_user();
    let previous = match store.last_look(&user) {
        Ok(previous) => previous,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the last look");
            None
        }
    };
    if !(ctx.read_only || ctx.database_read_only) {
        let now = infradeck_core::time::now();
        if let Err(err) = store.write(|w| w.set_last_look(&user, &now)) {
            tracing::warn!(error = %err, "cannot record the last look");
        }
    }
    previous
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

/// Opens the dashboard; `sync_at_start` are started once the first frame is up, and with
/// `watch` synced again on their intervals while it is open.
pub fn dashboard(
    ctx: &Context,
    sync_at_start: Vec<SourceConfig>,
    watch: bool,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the dashboard needs a terminal; for scripts use the subcommands (`infradeck --help`)"
        );
    }
    let mut store = ctx.open_store()?;
    let last_look = take_last_look(ctx, &mut store);
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
            env: Env {
                last_look,
                ..env(ctx)
            },
            service: Some(link),
            sync_at_start: if ctx.read_only {
                Vec::new()
            } else {
                sync_at_start
            },
            watch,
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
