//! The audit trail and sync bookkeeping: `sync_history`, `sync_metadata`, `sync_runs`.

use super::{Error, Result, Store, Writer, json_text, parse_text_enum};
use crate::model::RunStatus;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct NewHistory<'a> {
    pub sync_id: &'a str,
    pub source_system: &'a str,
    pub source_identifier: &'a str,
    /// `add`, `update`, `delete` or `sync`.
    pub operation: &'a str,
    pub device_id: Option<i64>,
    /// What kind of record changed: `device`, `vm`, `interfaces`, `facts`, `config`,
    /// `relationship`, `volume`, `status`, ...
    pub change_type: &'a str,
    pub old_value: serde_json::Value,
    pub new_value: serde_json::Value,
    pub performed_by: &'a str,
    pub performed_at: &'a str,
    pub metadata: serde_json::Value,
}

/// `system/instance`, or the system alone for the inventory's own rows (correlation, NetBox).
pub(crate) fn source_name(system: &str, instance: &str) -> String {
    if instance.is_empty() {
        system.to_string()
    } else {
        format!("{system}/{instance}")
    }
}

/// One audit row as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub(crate) sync_id: String,
    pub source_system: String,
    pub source_identifier: Option<String>,
    pub operation: Option<String>,
    pub device_id: Option<i64>,
    pub device_name: Option<String>,
    pub change_type: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub performed_by: Option<String>,
    pub performed_at: Option<String>,
    pub(crate) metadata: Option<String>,
}

/// The outcome of one sync of a source instance, for `sync_metadata`.
#[derive(Debug, Clone)]
pub struct RunSummary<'a> {
    pub source_system: &'a str,
    pub source_identifier: &'a str,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    pub status: RunStatus,
    pub duration_seconds: f64,
    pub added: i64,
    pub updated: i64,
    pub removed: i64,
    pub error_message: Option<&'a str>,
}

/// A `sync_runs` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRun {
    pub(crate) id: i64,
    pub sync_id: String,
    pub source_system: String,
    pub source_identifier: String,
    pub status: RunStatus,
    pub phase: Option<String>,
    pub done: i64,
    pub total: Option<i64>,
    pub message: Option<String>,
    pub devices_added: i64,
    pub devices_updated: i64,
    pub devices_removed: i64,
    pub cancel_requested: bool,
    pub started_at: String,
    pub heartbeat_at: String,
    pub(crate) finished_at: Option<String>,
    pub pid: Option<i64>,
    pub host: Option<String>,
}

/// Progress of a running sync, written a few times a second at most.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunProgress<'a> {
    pub phase: &'a str,
    pub done: i64,
    pub total: Option<i64>,
    pub message: Option<&'a str>,
    pub added: i64,
    pub updated: i64,
    pub removed: i64,
}

/// A source instance's freshness: its `sync_metadata` row and its newest run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub source_system: String,
    pub source_identifier: String,
    pub last_sync_start: Option<String>,
    pub last_sync_complete: Option<String>,
    pub last_sync_status: Option<String>,
    pub sync_duration_seconds: Option<f64>,
    pub devices_added: Option<i64>,
    pub devices_updated: Option<i64>,
    pub devices_removed: Option<i64>,
    pub error_message: Option<String>,
    pub latest_run: Option<SyncRun>,
}

const RUN_COLUMNS: &str = "id, sync_id, source_system, source_identifier, status, phase, done, \
     total, message, devices_added, devices_updated, devices_removed, cancel_requested, \
     started_at, heartbeat_at, finished_at, pid, host";

/// The run of a source instance that is `running`, if any (at most one: it is the lock).
fn running_run(
    conn: &rusqlite::Connection,
    source_system: &str,
    source_identifier: &str,
) -> rusqlite::Result<Option<SyncRun>> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs WHERE source_system = ?1 \
         AND source_identifier = ?2 AND status = 'running'"
    ))?
    .query_row(params![source_system, source_identifier], run_from_row)
    .optional()
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<SyncRun> {
    Ok(SyncRun {
        id: row.get(0)?,
        sync_id: row.get(1)?,
        source_system: row.get(2)?,
        source_identifier: row.get(3)?,
        status: parse_text_enum(row, 4)?,
        phase: row.get(5)?,
        done: row.get(6)?,
        total: row.get(7)?,
        message: row.get(8)?,
        devices_added: row.get(9)?,
        devices_updated: row.get(10)?,
        devices_removed: row.get(11)?,
        cancel_requested: row.get::<_, i64>(12)? != 0,
        started_at: row.get(13)?,
        heartbeat_at: row.get(14)?,
        finished_at: row.get(15)?,
        pid: row.get(16)?,
        host: row.get(17)?,
    })
}

const HISTORY_COLUMNS: &str = "h.id, h.sync_id, h.source_system, h.source_identifier, h.operation, \
     h.device_id, d.name, h.change_type, h.old_value, h.new_value, h.performed_by, h.performed_at, \
     h.metadata";

fn history_from_row(row: &Row<'_>) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: row.get(0)?,
        sync_id: row.get(1)?,
        source_system: row.get(2)?,
        source_identifier: row.get(3)?,
        operation: row.get(4)?,
        device_id: row.get(5)?,
        device_name: row.get(6)?,
        change_type: row.get(7)?,
        old_value: row.get(8)?,
        new_value: row.get(9)?,
        performed_by: row.get(10)?,
        performed_at: row.get(11)?,
        metadata: row.get(12)?,
    })
}

/// Identifies the process that owns a run, so a lock message can say who holds it.
#[derive(Debug, Clone)]
pub struct RunOwner<'a> {
    pub pid: i64,
    pub host: &'a str,
}

impl Writer<'_> {
    /// Appends one audit row.
    pub fn record_history(&self, entry: &NewHistory<'_>) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO sync_history (sync_id, source_system, source_identifier, operation, \
                 device_id, change_type, old_value, new_value, performed_by, performed_at, metadata) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                entry.sync_id,
                entry.source_system,
                entry.source_identifier,
                entry.operation,
                entry.device_id,
                entry.change_type,
                json_text(&entry.old_value),
                json_text(&entry.new_value),
                entry.performed_by,
                entry.performed_at,
                json_text(&entry.metadata),
            ])?;
        let history_id = self.conn().last_insert_rowid();
        self.record_findings(
            history_id,
            entry.performed_at,
            &source_name(entry.source_system, entry.source_identifier),
            &crate::changes::findings_of(&crate::changes::HistoryRow {
                source_system: entry.source_system,
                operation: entry.operation,
                change_type: entry.change_type,
                device_id: entry.device_id,
                old: &entry.old_value,
                new: &entry.new_value,
                metadata: &entry.metadata,
                performed_by: entry.performed_by,
            }),
        )
    }

    /// Records a finished sync in `sync_metadata`. `last_sync_complete` moves only on success.
    pub fn record_sync_result(&self, summary: &RunSummary<'_>) -> Result<()> {
        let completed = (summary.status == RunStatus::Success).then_some(summary.finished_at);
        self.conn()
            .prepare_cached(
                "INSERT INTO sync_metadata (source_system, source_identifier, last_sync_start, \
                 last_sync_complete, last_sync_status, sync_duration_seconds, devices_added, \
                 devices_updated, devices_removed, error_message, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) \
                 ON CONFLICT (source_system, source_identifier) DO UPDATE SET \
                 last_sync_start = excluded.last_sync_start, \
                 last_sync_complete = COALESCE(excluded.last_sync_complete, last_sync_complete), \
                 last_sync_status = excluded.last_sync_status, \
                 sync_duration_seconds = excluded.sync_duration_seconds, \
                 devices_added = excluded.devices_added, devices_updated = excluded.devices_updated, \
                 devices_removed = excluded.devices_removed, error_message = excluded.error_message, \
                 updated_at = excluded.updated_at",
            )?
            .execute(params![
                summary.source_system,
                summary.source_identifier,
                summary.started_at,
                completed,
                summary.status.as_str(),
                summary.duration_seconds,
                summary.added,
                summary.updated,
                summary.removed,
                summary.error_message,
                summary.finished_at,
            ])?;
        Ok(())
    }

    /// Ends a `running` run of this source whose process is gone: it ran on `host` (this
    /// machine) and `is_gone(pid)` says its process no longer exists. Its lock is released at
    /// once instead of when its heartbeat goes stale. Returns the run taken over, if any.
    pub(crate) fn end_run_of_dead_process(
        &self,
        source_system: &str,
        source_identifier: &str,
        host: &str,
        is_gone: &dyn Fn(i64) -> bool,
        now: &str,
    ) -> Result<Option<SyncRun>> {
        let conn = self.conn();
        let running = running_run(conn, source_system, source_identifier)?;
        let Some(holder) = running else {
            return Ok(None);
        };
        let (Some(pid), Some(holder_host)) = (holder.pid, holder.host.as_deref()) else {
            return Ok(None);
        };
        if holder_host != host || !is_gone(pid) {
            return Ok(None);
        }
        conn.prepare_cached(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?2, message = \
             'abandoned: its process (pid ' || pid || ' on this host) is gone' WHERE id = ?1",
        )?
        .execute(params![holder.id, now])?;
        Ok(Some(holder))
    }

    /// Starts a run of a source instance, taking its lock. A running row whose heartbeat is older
    /// than `stale_before` belongs to a process that died: it is closed as failed and the new run
    /// proceeds. A live one makes this fail with [`Error::RunLocked`] naming the holder.
    pub fn begin_run(
        &self,
        sync_id: &str,
        source_system: &str,
        source_identifier: &str,
        owner: &RunOwner<'_>,
        now: &str,
        stale_before: &str,
    ) -> Result<SyncRun> {
        let conn = self.conn();
        let running = running_run(conn, source_system, source_identifier)?;
        if let Some(holder) = running {
            if holder.heartbeat_at.as_str() >= stale_before {
                // The stale window is `now - stale_before`; the lock lapses that long after the
                // last heartbeat.
                let expires_at = match (
                    crate::time::parse(now),
                    crate::time::parse(stale_before),
                    crate::time::parse(&holder.heartbeat_at),
                ) {
                    (Some(n), Some(b), Some(h)) => crate::time::format(h + (n - b)),
                    _ => "an unknown time".to_string(),
                };
                return Err(Error::RunLocked(Box::new(super::RunLock {
                    source_system: source_system.to_string(),
                    source_identifier: source_identifier.to_string(),
                    sync_id: holder.sync_id,
                    pid: holder.pid.unwrap_or(0),
                    host: holder.host.unwrap_or_default(),
                    started_at: holder.started_at,
                    heartbeat_at: holder.heartbeat_at,
                    expires_at,
                })));
            }
            conn.prepare_cached(
                "UPDATE sync_runs SET status = 'failed', finished_at = ?2, message = \
                 'abandoned: the process running it stopped sending heartbeats (last ' || heartbeat_at || ')' \
                 WHERE id = ?1",
            )?
            .execute(params![holder.id, now])?;
        }
        conn.prepare_cached(
            "INSERT INTO sync_runs (sync_id, source_system, source_identifier, status, phase, \
             started_at, heartbeat_at, pid, host) VALUES (?1, ?2, ?3, 'running', 'connect', ?4, ?4, ?5, ?6)",
        )?
        .execute(params![sync_id, source_system, source_identifier, now, owner.pid, owner.host])?;
        let id = conn.last_insert_rowid();
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = ?1"
            ))?
            .query_row([id], run_from_row)?)
    }

    /// Updates a running sync's progress and heartbeat. Returns whether cancellation was requested.
    pub fn run_progress(
        &self,
        sync_id: &str,
        progress: &RunProgress<'_>,
        now: &str,
    ) -> Result<bool> {
        self.conn()
            .prepare_cached(
                "UPDATE sync_runs SET phase = ?2, done = ?3, total = ?4, message = COALESCE(?5, message), \
                 devices_added = ?6, devices_updated = ?7, devices_removed = ?8, heartbeat_at = ?9 \
                 WHERE sync_id = ?1 AND status = 'running'",
            )?
            .execute(params![
                sync_id,
                progress.phase,
                progress.done,
                progress.total,
                progress.message,
                progress.added,
                progress.updated,
                progress.removed,
                now
            ])?;
        let cancel: Option<i64> = self
            .conn()
            .prepare_cached("SELECT cancel_requested FROM sync_runs WHERE sync_id = ?1")?
            .query_row([sync_id], |r| r.get(0))
            .optional()?;
        Ok(cancel.unwrap_or(0) != 0)
    }

    /// Closes a run with its final status and message.
    pub fn finish_run(
        &self,
        sync_id: &str,
        status: RunStatus,
        message: Option<&str>,
        progress: &RunProgress<'_>,
        now: &str,
    ) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE sync_runs SET status = ?2, message = ?3, phase = ?4, done = ?5, total = ?6, \
                 devices_added = ?7, devices_updated = ?8, devices_removed = ?9, heartbeat_at = ?10, \
                 finished_at = ?10 WHERE sync_id = ?1",
            )?
            .execute(params![
                sync_id,
                status.as_str(),
                message,
                progress.phase,
                progress.done,
                progress.total,
                progress.added,
                progress.updated,
                progress.removed,
                now
            ])?;
        Ok(())
    }

    /// Releases the lock of run `sync_id` by recording it `failed` ("lock broken by WHO"), if it
    /// is still running and its heartbeat is older than `stale_before`. `Ok(None)`: no such
    /// running run; `Err(Conflict)`: its heartbeat is fresh, so its process may be alive.
    pub fn break_lock(
        &self,
        sync_id: &str,
        who: &str,
        stale_before: &str,
        now: &str,
    ) -> Result<Option<SyncRun>> {
        let conn = self.conn();
        let Some(run) = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs WHERE sync_id = ?1 AND status = 'running'"
            ))?
            .query_row([sync_id], run_from_row)
            .optional()?
        else {
            return Ok(None);
        };
        if run.heartbeat_at.as_str() >= stale_before {
            return Err(Error::Conflict(format!(
                "run {sync_id} sent a heartbeat at {} (pid {} on {}): its process may be alive, so the lock stays; stop that process, or wait until its heartbeat is stale",
                run.heartbeat_at,
                run.pid.unwrap_or(0),
                run.host.as_deref().unwrap_or("?")
            )));
        }
        conn.prepare_cached(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?2, message = ?3 WHERE id = ?1",
        )?
        .execute(params![run.id, now, format!("lock broken by {who}")])?;
        Ok(Some(run))
    }

    /// Records every run this process (`pid` on `host`) still has `running` as `cancelled`:
    /// the last step of every way the process ends, so no lock outlives it. Returns how many.
    pub(crate) fn end_runs_of_process(
        &self,
        pid: i64,
        host: &str,
        why: &str,
        now: &str,
    ) -> Result<usize> {
        Ok(self
            .conn()
            .prepare_cached(
                "UPDATE sync_runs SET status = 'cancelled', message = ?3, phase = 'done', \
                 finished_at = ?4, heartbeat_at = ?4 \
                 WHERE status = 'running' AND pid = ?1 AND host = ?2",
            )?
            .execute(params![pid, host, why, now])?)
    }

    /// Asks a running sync to stop; it notices at its next progress update. False if not running.
    pub fn request_cancel(&self, sync_id: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached(
                "UPDATE sync_runs SET cancel_requested = 1 WHERE sync_id = ?1 AND status = 'running'",
            )?
            .execute([sync_id])?
            > 0)
    }
}

impl Store {
    /// Audit rows, newest first; of one device when `device_id` is given.
    pub fn history(&self, device_id: Option<i64>, limit: u64) -> Result<Vec<HistoryEntry>> {
        let limit = limit as i64;
        let sql = match device_id {
            Some(_) => format!(
                "SELECT {HISTORY_COLUMNS} FROM sync_history h LEFT JOIN devices d ON d.id = h.device_id \
                 WHERE h.device_id = ?1 ORDER BY h.performed_at DESC, h.id DESC LIMIT ?2"
            ),
            None => format!(
                "SELECT {HISTORY_COLUMNS} FROM sync_history h LEFT JOIN devices d ON d.id = h.device_id \
                 WHERE ?1 IS NULL ORDER BY h.performed_at DESC, h.id DESC LIMIT ?2"
            ),
        };
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params![device_id, limit], history_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Names of devices by id (those still stored), for audit rows that refer to them.
    pub fn device_names(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>> {
        let mut names = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(names);
        }
        let list = serde_json::to_string(ids).map_err(|source| super::Error::Json {
            column: "ids",
            source,
        })?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, name FROM devices WHERE id IN (SELECT value FROM json_each(?1))",
        )?;
        for row in stmt.query_map([list], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })? {
            let (id, name) = row?;
            names.insert(id, name);
        }
        Ok(names)
    }

    /// Audit rows written by one sync run, in order.
    pub fn history_of_run(&self, sync_id: &str) -> Result<Vec<HistoryEntry>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {HISTORY_COLUMNS} FROM sync_history h LEFT JOIN devices d ON d.id = h.device_id \
             WHERE h.sync_id = ?1 ORDER BY h.id"
        ))?;
        let rows = stmt.query_map([sync_id], history_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// When the newest successful run of a source instance started.
    pub(crate) fn last_success_start(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT started_at FROM sync_runs WHERE source_system = ?1 AND source_identifier = ?2 \
                 AND status = 'success' ORDER BY started_at DESC LIMIT 1",
            )?
            .query_row(params![source_system, source_identifier], |r| r.get(0))
            .optional()?)
    }

    /// One run by its sync id.
    pub fn run(&self, sync_id: &str) -> Result<Option<SyncRun>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs WHERE sync_id = ?1"
            ))?
            .query_row([sync_id], run_from_row)
            .optional()?)
    }

    /// The newest runs, newest first.
    pub fn recent_runs(&self, limit: u64) -> Result<Vec<SyncRun>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], run_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Runs still marked running (some may belong to dead processes; see their heartbeat).
    pub fn running_runs(&self) -> Result<Vec<SyncRun>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE status = 'running' ORDER BY started_at"
        ))?;
        let rows = stmt.query_map([], run_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Sync status of every source instance that has a `sync_metadata` row or a run.
    pub fn source_statuses(&self) -> Result<Vec<SourceStatus>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.source_system, s.source_identifier, m.last_sync_start, m.last_sync_complete, \
             m.last_sync_status, m.sync_duration_seconds, m.devices_added, m.devices_updated, \
             m.devices_removed, m.error_message \
             FROM (SELECT source_system, COALESCE(source_identifier, '') AS source_identifier FROM sync_metadata \
                   UNION SELECT source_system, source_identifier FROM sync_runs) s \
             LEFT JOIN sync_metadata m ON m.source_system = s.source_system \
                   AND COALESCE(m.source_identifier, '') = s.source_identifier \
             ORDER BY s.source_system, s.source_identifier",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SourceStatus {
                source_system: r.get(0)?,
                source_identifier: r.get(1)?,
                last_sync_start: r.get(2)?,
                last_sync_complete: r.get(3)?,
                last_sync_status: r.get(4)?,
                sync_duration_seconds: r.get(5)?,
                devices_added: r.get(6)?,
                devices_updated: r.get(7)?,
                devices_removed: r.get(8)?,
                error_message: r.get(9)?,
                latest_run: None,
            })
        })?;
        let mut statuses = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut latest = self.conn().prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE source_system = ?1 AND source_identifier = ?2 \
             ORDER BY started_at DESC, id DESC LIMIT 1"
        ))?;
        for status in &mut statuses {
            status.latest_run = latest
                .query_row(
                    params![status.source_system, status.source_identifier],
                    run_from_row,
                )
                .optional()?;
        }
        Ok(statuses)
    }
}
