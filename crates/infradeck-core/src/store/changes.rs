//! Reads for "what changed": the audit rows of a time range with the machines they belong to,
//! the config texts a change compares, and each user's last look at the changes.

use super::{Result, Store, Writer};
use crate::model::DeviceType;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use std::collections::HashMap;

/// One audit row of a time range, with the machine its record belongs to now.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub source_system: String,
    pub source_identifier: String,
    pub operation: String,
    pub change_type: String,
    pub device_id: Option<i64>,
    /// The record's name as stored now.
    pub device_name: Option<String>,
    pub device_type: Option<DeviceType>,
    pub machine_id: Option<i64>,
    pub machine_name: Option<String>,
    pub old: Value,
    pub new: Value,
    pub metadata: Value,
    pub performed_by: String,
}

impl AuditRow {
    /// `system/instance`, or the system alone for the inventory's own rows (correlation, NetBox).
    pub fn source(&self) -> String {
        if self.source_identifier.is_empty() {
            self.source_system.clone()
        } else {
            format!("{}/{}", self.source_system, self.source_identifier)
        }
    }
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

/// Audit rows nobody reads as a change: per-fact churn (uptime, load) and the `same_as` links
/// correlation keeps, whose effect is the machine grouping itself.
const NOT_CHANGES: &str = "h.change_type NOT IN ('facts', 'kb_article', 'issue') \
     AND NOT (h.change_type = 'relationship' AND h.source_system = 'correlation' \
              AND COALESCE(h.new_value, h.old_value) LIKE '%\"same\\_as\"%' ESCAPE '\\')";

impl Store {
    /// The audit rows with `since < performed_at <= until`, oldest first, with the machine each
    /// record belongs to now. Rows that never read as a change (see [`NOT_CHANGES`]) are left
    /// out here, so a busy day's facts churn is not even parsed.
    pub fn audit_between(&self, since: &str, until: &str) -> Result<Vec<AuditRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT h.id, h.performed_at, h.source_system, COALESCE(h.source_identifier, ''), \
             COALESCE(h.operation, ''), COALESCE(h.change_type, ''), h.device_id, d.name, \
             d.device_type, m.id, m.name, h.old_value, h.new_value, h.metadata, \
             COALESCE(h.performed_by, '') \
             FROM sync_history h LEFT JOIN devices d ON d.id = h.device_id \
             LEFT JOIN machines m ON m.id = d.machine_id \
             WHERE h.performed_at > ?1 AND h.performed_at <= ?2 AND {NOT_CHANGES} \
             ORDER BY h.performed_at, h.id"
        ))?;
        let parse = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or(Value::Null)
        };
        let mut rows = stmt.query(params![since, until])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let device_type: Option<String> = row.get(8)?;
            out.push(AuditRow {
                id: row.get(0)?,
                at: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                source_system: row.get(2)?,
                source_identifier: row.get(3)?,
                operation: row.get(4)?,
                change_type: row.get(5)?,
                device_id: row.get(6)?,
                device_name: row.get(7)?,
                device_type: device_type.and_then(|t| t.parse().ok()),
                machine_id: row.get(9)?,
                machine_name: row.get(10)?,
                old: parse(row.get(11)?),
                new: parse(row.get(12)?),
                metadata: parse(row.get(13)?),
                performed_by: row.get(14)?,
            });
        }
        Ok(out)
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
