//! `infradeck db check` and `infradeck db maintain`.

use super::Context;
use infradeck_core::store::MaintainOptions;

/// Options of `db maintain`; unset values come from `[general]`.
#[derive(Debug, Clone, Default)]
pub struct MaintainArgs {
    pub stale_after_days: Option<u32>,
    pub history_retention_days: Option<u32>,
    pub config_versions_kept: Option<u32>,
    pub vacuum: bool,
}

/// Runs the integrity and foreign-key checks; an unhealthy database is an error.
pub fn db_check(ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let report = store.check()?;
    if report.integrity_problems.is_empty() {
        println!("integrity:    ok");
    } else {
        println!(
            "integrity:    {} problem(s)",
            report.integrity_problems.len()
        );
        for problem in &report.integrity_problems {
            println!("  {problem}");
        }
    }
    if report.foreign_key_violations.is_empty() {
        println!("foreign keys: ok");
    } else {
        println!(
            "foreign keys: {} violation(s)",
            report.foreign_key_violations.len()
        );
        for (table, rowid, parent) in &report.foreign_key_violations {
            println!("  {table} row {rowid} references a missing {parent} row");
        }
    }
    if !report.is_healthy() {
        anyhow::bail!("database {} failed its checks", ctx.database_path.display());
    }
    Ok(())
}

/// Applies the seed's maintenance and reports what changed.
pub fn db_maintain(ctx: &Context, args: &MaintainArgs) -> anyhow::Result<()> {
    let mut store = ctx.open_store()?;
    let general = &ctx.config.general;
    let now = infradeck_core::time::now();
    let user = infradeck_core::identity::os_user();
    let sync_id = format!("maintain-{}", now.replace([' ', ':'], "-"));
    let options = MaintainOptions {
        stale_after_days: args.stale_after_days.unwrap_or(general.stale_after_days),
        history_retention_days: args
            .history_retention_days
            .unwrap_or(general.history_retention_days),
        config_versions_kept: args
            .config_versions_kept
            .unwrap_or(general.config_versions_kept)
            .max(1),
        vacuum: args.vacuum,
        now: &now,
        performed_by: &user,
        sync_id: &sync_id,
    };
    let report = store
        .maintain(&options)
        .map_err(anyhow::Error::from)
        .map_err(|e| {
            e.context(format!(
                "maintenance of {} failed",
                ctx.database_path.display()
            ))
        })?;
    println!(
        "devices marked inactive (unseen > {} days): {}",
        options.stale_after_days, report.devices_marked_inactive
    );
    println!(
        "history rows deleted (older than {} days):  {}",
        options.history_retention_days, report.history_rows_deleted
    );
    println!(
        "config versions deleted (keeping {} per device): {}",
        options.config_versions_kept, report.config_versions_deleted
    );
    println!("statistics refreshed (ANALYZE):            yes");
    if report.vacuumed {
        println!(
            "vacuumed: {} → {} bytes",
            report.bytes_before, report.bytes_after
        );
    }
    Ok(())
}
