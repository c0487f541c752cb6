//! Reads for "what changed": the audit rows of a time range with the machines they belong to,
//! the config texts a change compares, and each user's last look at the changes.

use super::{Result, Store, Writer};
use crate::model::DeviceType;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// A finding of a time range (see `changes::classify`), with what its record is called now
/// and the machine it belongs to now.
#[derive(Debug, Clone)]
pub struct FindingRow {
    pub history_id: i64,
    pub at: String,
    pub kind: String,
    pub source: String,
    pub device_id: Option<i64>,
    pub subject: Option<String>,
    pub detail: String,
    pub other_device_id: Option<i64>,
    pub versions: Option<(i64, i64)>,
    pub volume_use: Option<(f64, f64)>,
    /// The record's name and type as stored now.
    pub device_name: Option<String>,
    pub device_type: Option<DeviceType>,
    pub machine_id: Option<i64>,
    pub machine_name: Option<String>,
}

/// A record as a change names it: its machine (when correlated) and names.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordLabel {
    pub device_name: String,
    pub machine_id: Option<i64>,
    pub machine_name: Option<String>,
}

impl RecordLabel {
    /// What people call it: the machine's name, else the record's.
    pub fn name(&self) -> &str {
        self.machine_name.as_deref().unwrap_or(&self.device_name)
    }
}

impl Store {
    /// The findings with `since < performed_at <= until`, oldest first.
    pub fn findings_between(&self, since: &str, until: &str) -> Result<Vec<FindingRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT f.history_id, f.performed_at, f.kind, f.source, f.device_id, f.subject, \
             f.detail, f.other_device_id, f.from_version, f.to_version, f.old_percent, \
             f.new_percent, d.name, d.device_type, m.id, m.name \
             FROM change_findings f LEFT JOIN devices d ON d.id = f.device_id \
             LEFT JOIN machines m ON m.id = d.machine_id \
             WHERE f.performed_at > ?1 AND f.performed_at <= ?2 \
             ORDER BY f.performed_at, f.history_id, f.id",
        )?;
        let rows = stmt.query_map(params![since, until], |r| {
            let versions = match (r.get::<_, Option<i64>>(8)?, r.get::<_, Option<i64>>(9)?) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            let volume_use = match (r.get::<_, Option<f64>>(10)?, r.get::<_, Option<f64>>(11)?) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            let device_type: Option<String> = r.get(13)?;
            Ok(FindingRow {
                history_id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                source: r.get(3)?,
                device_id: r.get(4)?,
                subject: r.get(5)?,
                detail: r.get(6)?,
                other_device_id: r.get(7)?,
                versions,
                volume_use,
                device_name: r.get(12)?,
                device_type: device_type.and_then(|t| t.parse().ok()),
                machine_id: r.get(14)?,
                machine_name: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Names and machines of records, for the other end of a relationship a change names.
    pub fn record_labels(&self, device_ids: &[i64]) -> Result<HashMap<i64, RecordLabel>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.name, m.id, m.name FROM devices d LEFT JOIN machines m ON m.id = d.machine_id \
             WHERE d.id = ?1",
        )?;
        let mut out = HashMap::new();
        for &id in device_ids {
            if out.contains_key(&id) {
                continue;
            }
            let label = stmt
                .query_row([id], |r| {
                    Ok(RecordLabel {
                        device_name: r.get(0)?,
                        machine_id: r.get(1)?,
                        machine_name: r.get(2)?,
                    })
                })
                .optional()?;
            if let Some(label) = label {
                out.insert(id, label);
            }
        }
        Ok(out)
    }

    /// The text of a device's config `version`, if stored.
    pub fn config_text_of_version(&self, device_id: i64, version: i64) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT config_text FROM device_configs WHERE device_id = ?1 AND version = ?2",
            )?
            .query_row(params![device_id, version], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// When `user` last looked at the changes, if ever.
    pub fn last_look(&self, user: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT looked_at FROM last_looks WHERE user = ?1")?
            .query_row([user], |r| r.get(0))
            .optional()?)
    }
}

impl Writer<'_> {
    /// Indexes what audit row `history_id` means (see `changes::classify`).
    pub(crate) fn record_findings(
        &self,
        history_id: i64,
        at: &str,
        source: &str,
        findings: &[crate::changes::Finding],
    ) -> Result<()> {
        insert_findings(self.conn(), history_id, at, source, findings)
    }

    /// Remembers that `user` looked at the changes at `at`.
    pub fn set_last_look(&self, user: &str, at: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO last_looks (user, looked_at) VALUES (?1, ?2) \
                 ON CONFLICT (user) DO UPDATE SET looked_at = excluded.looked_at",
            )?
            .execute(params![user, at])?;
        Ok(())
    }
}

fn insert_findings(
    conn: &rusqlite::Connection,
    history_id: i64,
    at: &str,
    source: &str,
    findings: &[crate::changes::Finding],
) -> Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO change_findings (history_id, performed_at, kind, source, device_id, subject, \
         detail, other_device_id, from_version, to_version, old_percent, new_percent) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for f in findings {
        insert.execute(params![
            history_id,
            at,
            f.kind.as_str(),
            source,
            f.device_id,
            f.subject,
            f.detail,
            f.other_device_id,
            f.config.map(|c| c.0),
            f.config.map(|c| c.1),
            f.volume_use.map(|v| v.0),
            f.volume_use.map(|v| v.1),
        ])?;
    }
    Ok(())
}

/// Fills `change_findings` for the audit rows written before it existed (migration 5), in
/// the migration's transaction.
pub(crate) fn backfill_findings(tx: &rusqlite::Transaction<'_>) -> Result<usize> {
    let mut stmt = tx.prepare(
        "SELECT id, performed_at, source_system, COALESCE(source_identifier, ''), \
         COALESCE(operation, ''), COALESCE(change_type, ''), device_id, old_value, new_value, \
         metadata, COALESCE(performed_by, '') FROM sync_history \
         WHERE change_type NOT IN ('facts', 'kb_article', 'issue') ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let parse = |t: Option<String>| {
        t.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let mut written = 0;
    while let Some(row) = rows.next()? {
        let (old, new, metadata) = (parse(row.get(7)?), parse(row.get(8)?), parse(row.get(9)?));
        let (system, instance): (String, String) = (row.get(2)?, row.get(3)?);
        let (operation, change_type, performed_by): (String, String, String) =
            (row.get(4)?, row.get(5)?, row.get(10)?);
        let findings = crate::changes::findings_of(&crate::changes::HistoryRow {
            source_system: &system,
            operation: &operation,
            change_type: &change_type,
            device_id: row.get(6)?,
            old: &old,
            new: &new,
            metadata: &metadata,
            performed_by: &performed_by,
        });
        let at: Option<String> = row.get(1)?;
        insert_findings(
            tx,
            row.get(0)?,
            at.as_deref().unwrap_or_default(),
            &super::audit::source_name(&system, &instance),
            &findings,
        )?;
        written += findings.len();
    }
    Ok(written)
}
