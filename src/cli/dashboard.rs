//! `infradeck` with no subcommand: the dashboard over the configured database.

use super::Context;
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
    let engine = (!ctx.read_only).then(|| {
        infradeck_core::sync::Engine::new(ctx.database_path.clone(), ctx.config.general.clone())
    });
    if engine.is_some() {
        // Before the dashboard's own hook, which restores the terminal and then calls this one.
        infradeck_core::process::end_runs_on_panic(ctx.database_path.clone());
    }
    infradeck_tui::run(UiOptions {
        store,
        env: env(ctx),
        engine,
        sync_at_start: if ctx.read_only {
            Vec::new()
        } else {
            sync_at_start
        },
        mouse: ctx.config.dashboard.mouse,
        netbox: netbox_runner(ctx),
    })
}

/// Apply, dry run and rollback for the dashboard's NetBox queue, each on its own connection.
/// Confirming with the typed batch id stands in for `--allow-deletes`.
fn netbox_runner(ctx: &Context) -> Option<infradeck_tui::NetboxRunner> {
    use infradeck_tui::NetboxOp;
    let config = ctx.config.netbox.clone()?;
    let database = ctx.database_path.clone();
    let open = infradeck_core::store::OpenOptions {
        busy_timeout: ctx.config.general.busy_timeout,
    };
    Some(std::sync::Arc::new(move |batch: String, op: NetboxOp| {
        let (config, database, open) = (config.clone(), database.clone(), open.clone());
        Box::pin(async move {
            let client = infradeck_core::netbox::NetboxClient::new(
                &config,
                infradeck_core::sources::http::RetryPolicy::default(),
            )?;
            let mut store = infradeck_core::store::Store::open(&database, &open)?;
            let with_summary = |summary: String, lines: Vec<String>| -> Vec<String> {
                std::iter::once(summary).chain(lines).collect()
            };
            Ok(match op {
                NetboxOp::Plan => {
                    let user = infradeck_core::identity::os_user();
                    let report = infradeck_core::netbox::plan(
                        &mut store,
                        &client,
                        config.delete_grace_days,
                        &user,
                        chrono::Utc::now(),
                    )
                    .await?;
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
                        .chain(report.unmapped.iter().map(|u| format!("not mapped: {u}")))
                        .collect();
                    with_summary(summary, notes)
                }
                NetboxOp::Rollback => {
                    let report =
                        infradeck_core::netbox::rollback(&mut store, &client, &batch).await?;
                    with_summary(report.summary("rolled back"), report.lines)
                }
                NetboxOp::Apply | NetboxOp::DryRun => {
                    let options = infradeck_core::netbox::ApplyOptions {
                        dry_run: op == NetboxOp::DryRun,
                        allow_deletes: Some(u32::MAX),
                        max_deletes: config.max_deletes,
                        chunk: infradeck_core::netbox::apply::CHUNK,
                    };
                    let report =
                        infradeck_core::netbox::apply(&mut store, &client, &batch, &options)
                            .await?;
                    let summary = if options.dry_run {
                        format!("{} requests would be sent", report.lines.len())
                    } else {
                        report.summary("applied")
                    };
                    with_summary(summary, report.lines)
                }
            })
        })
    }))
}
