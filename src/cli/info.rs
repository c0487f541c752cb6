//! `infradeck info`: where things are and what the database holds.

use super::Context;
use infradeck_core::store::schema;
use std::fmt::Write as _;

/// Prints config path, database path, schema version, row counts and last sync per source.
pub fn info(ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let mut out = String::new();
    let config_note = if ctx.config_found {
        ""
    } else {
        " (not found; using defaults)"
    };
    writeln!(out, "config:   {}{config_note}", ctx.config_path.display())?;
    writeln!(out, "database: {}", ctx.database_path.display())?;
    writeln!(
        out,
        "schema:   version {} (this infradeck writes version {})",
        store.schema_version()?,
        schema::LATEST_VERSION
    )?;
    if let Some(log) = &ctx.log_file {
        writeln!(out, "log:      {}", log.display())?;
    }
    if ctx.read_only {
        writeln!(out, "mode:     read-only")?;
    }
    for warning in loose_permissions(ctx) {
        writeln!(out, "warning:  {warning}")?;
    }
    writeln!(out)?;
    let counts: Vec<Vec<String>> = store
        .table_counts()?
        .into_iter()
        .map(|(table, count)| vec![table.to_string(), count.to_string()])
        .collect();
    out.push_str(&super::table::render(&["TABLE", "ROWS"], &counts));
    writeln!(out)?;

    let statuses = store.source_statuses()?;
    let mut rows = Vec::new();
    for source in &ctx.config.sources {
        let status = statuses
            .iter()
            .find(|s| s.source_system == source.kind.as_str() && s.source_identifier == source.id);
        rows.push(source_row(source.kind.as_str(), &source.id, status));
    }
    for status in &statuses {
        let configured =
            ctx.config.sources.iter().any(|s| {
                s.kind.as_str() == status.source_system && s.id == status.source_identifier
            });
        if !configured {
            let mut row = source_row(
                &status.source_system,
                &status.source_identifier,
                Some(status),
            );
            row[0].push_str(" (not in config)");
            rows.push(row);
        }
    }
    if rows.is_empty() {
        writeln!(out, "sources:  none configured (see config.example.toml)")?;
    } else {
        out.push_str(&super::table::render(
            &["SOURCE", "LAST SYNC", "STATUS", "LAST SUCCESS", "ERROR"],
            &rows,
        ));
    }
    print!("{out}");
    Ok(())
}

/// Files of the inventory that others than its owner can read: the database, its WAL and
/// shared-memory files, the log, and the directories that hold them.
fn loose_permissions(ctx: &Context) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let db = &ctx.database_path;
    let mut paths: Vec<std::path::PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            name.into()
        })
        .collect();
    paths.extend(
        db.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Into::into),
    );
    if let Some(log) = &ctx.log_file {
        paths.push(log.clone());
        paths.extend(log.parent().map(Into::into));
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
            // Any bit for group or others is too loose for a map of the estate.
            (mode & 0o077 != 0).then(|| {
                format!(
                    "{} is mode {mode:03o}: others can read the inventory; `chmod {} {}`",
                    path.display(),
                    if path.is_dir() { "700" } else { "600" },
                    path.display()
                )
            })
        })
        .collect()
}

fn source_row(
    kind: &str,
    id: &str,
    status: Option<&infradeck_core::store::SourceStatus>,
) -> Vec<String> {
    let never = || "never".to_string();
    match status {
        None => vec![
            format!("{kind}/{id}"),
            never(),
            String::new(),
            never(),
            String::new(),
        ],
        Some(s) => vec![
            format!("{kind}/{id}"),
            s.last_sync_start.clone().unwrap_or_else(never),
            s.latest_run
                .as_ref()
                .map(|r| r.status.to_string())
                .or_else(|| s.last_sync_status.clone())
                .unwrap_or_default(),
            s.last_sync_complete.clone().unwrap_or_else(never),
            s.error_message
                .as_deref()
                .map(|e| e.lines().next().unwrap_or("").to_string())
                .unwrap_or_default(),
        ],
    }
}
