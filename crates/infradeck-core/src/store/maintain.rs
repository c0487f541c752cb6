//! Housekeeping: row counts, integrity checks and the seed's maintenance tasks.

use super::{NewHistory, Result, Store, schema};
use crate::model::DeviceStatus;
use serde::Serialize;

/// What `db check` found. Empty lists mean the database is healthy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckReport {
    /// Lines of `PRAGMA integrity_check` other than `ok`.
    pub integrity_problems: Vec<String>,
    /// Rows that reference a missing parent: (table, rowid, parent table).
    pub foreign_key_violations: Vec<(String, i64, String)>,
}

impl CheckReport {
    pub fn is_healthy(&self) -> bool {
        self.integrity_problems.is_empty() && self.foreign_key_violations.is_empty()
    }
}

/// Settings for `db maintain`.
#[derive(Debug, Clone)]
pub struct MaintainOptions<'a> {
    /// Active devices not seen for this many days become inactive.
    pub stale_after_days: u32,
    /// `sync_history` rows older than this many days are deleted.
    pub history_retention_days: u32,
    /// Only this many newest config versions are kept per device.
    pub config_versions_kept: u32,
    pub vacuum: bool,
    pub now: &'a str,
    pub performed_by: &'a str,
    pub sync_id: &'a str,
}

/// What `db maintain` changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaintainReport {
    pub devices_marked_inactive: usize,
    pub history_rows_deleted: usize,
    pub config_versions_deleted: usize,
    pub(crate) analyzed: bool,
    pub vacuumed: bool,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Store {
    /// Row counts of every table, in schema order.
    pub fn table_counts(&self) -> Result<Vec<(&'static str, u64)>> {
        schema::TABLES
            .iter()
            .map(|table| {
                let count: i64 =
                    self.conn()
                        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
                Ok((*table, count as u64))
            })
            .collect()
    }

    /// Runs SQLite's integrity and foreign-key checks.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut stmt = self.conn().prepare("PRAGMA integrity_check")?;
        for line in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let line = line?;
            if line != "ok" {
                report.integrity_problems.push(line);
            }
        }
        let mut stmt = self.conn().prepare("PRAGMA foreign_key_check")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            report.foreign_key_violations.push(row?);
        }
        Ok(report)
    }

    /// The seed's maintenance: stale devices become inactive (one history row each), old history
    /// is deleted, old config versions are pruned, then ANALYZE and optionally VACUUM.
    pub fn maintain(&mut self, options: &MaintainOptions<'_>) -> Result<MaintainReport> {
        let bytes_before = self.file_size();
        let mut report = self.write(|w| {
            let conn = w.conn();
            let stale: Vec<(i64, String, String)> = {
                let mut stmt = conn.prepare(
                    "SELECT id, source_system, source_identifier FROM devices \
                     WHERE status = 'active' AND last_seen < datetime(?1, ?2)",
                )?;
                let rows = stmt.query_map(
                    rusqlite::params![options.now, format!("-{} days", options.stale_after_days)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            for (id, source_system, source_identifier) in &stale {
                w.set_device_status(*id, DeviceStatus::Inactive, options.now)?;
                w.record_history(&NewHistory {
                    sync_id: options.sync_id,
                    source_system,
                    source_identifier,
                    operation: "update",
                    device_id: Some(*id),
                    change_type: "status",
                    old_value: serde_json::json!({"status": "active"}),
                    new_value: serde_json::json!({"status": "inactive"}),
                    performed_by: options.performed_by,
                    performed_at: options.now,
                    metadata: serde_json::json!({
                        "reason": format!("not seen for more than {} days", options.stale_after_days)
                    }),
                })?;
            }
            let history_rows_deleted = conn.execute(
                "DELETE FROM sync_history WHERE performed_at < datetime(?1, ?2)",
                rusqlite::params![options.now, format!("-{} days", options.history_retention_days)],
            )?;
            let config_versions_deleted = conn.execute(
                "DELETE FROM device_configs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() \
                 OVER (PARTITION BY device_id ORDER BY version DESC) AS rn FROM device_configs) \
                 WHERE rn > ?1)",
                [options.config_versions_kept],
            )?;
            conn.execute_batch("ANALYZE")?;
            Ok(MaintainReport {
                devices_marked_inactive: stale.len(),
                history_rows_deleted,
                config_versions_deleted,
                analyzed: true,
                ..MaintainReport::default()
            })
        })?;
        if options.vacuum {
            // VACUUM cannot run inside a transaction; the checkpoint folds the WAL back first.
            self.conn().execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )?;
            report.vacuumed = true;
        }
        report.bytes_before = bytes_before;
        report.bytes_after = self.file_size();
        Ok(report)
    }

    fn file_size(&self) -> u64 {
        let mut wal = self.path().as_os_str().to_owned();
        wal.push("-wal");
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        size(self.path()) + size(std::path::Path::new(&wal))
    }
}
