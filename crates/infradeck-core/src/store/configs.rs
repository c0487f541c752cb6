//! `device_configs`: versions numbered per device, deduplicated by SHA-256 against the newest.

use super::{Result, Store, Writer};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A stored config version, without its text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigVersion {
    pub id: i64,
    pub(crate) device_id: i64,
    pub version: i64,
    pub config_hash: String,
    pub retrieved_at: Option<String>,
    pub(crate) source_system: Option<String>,
    pub size_bytes: i64,
}

/// What storing a config did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigStored {
    /// Identical to the newest version, which keeps its number; nothing was written.
    Unchanged { version: i64 },
    /// Stored as a new version.
    New { id: i64, version: i64 },
}

/// Lowercase hex SHA-256 of a config's bytes.
pub fn config_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Writer<'_> {
    /// Stores `text` as the device's next config version unless it equals the newest one.
    /// A config that returns to an older text is a new version: history is linear.
    pub fn store_config(
        &self,
        device_id: i64,
        text: &str,
        source_system: &str,
        retrieved_at: &str,
    ) -> Result<ConfigStored> {
        let conn = self.conn();
        let hash = config_hash(text);
        let newest: Option<(i64, String)> = conn
            .prepare_cached(
                "SELECT version, config_hash FROM device_configs WHERE device_id = ?1 \
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((version, newest_hash)) = &newest
            && *newest_hash == hash
        {
            return Ok(ConfigStored::Unchanged { version: *version });
        }
        let version = newest.map_or(1, |(v, _)| v + 1);
        conn.prepare_cached(
            "INSERT INTO device_configs (device_id, config_text, config_hash, version, retrieved_at, \
             source_system) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![device_id, text, hash, version, retrieved_at, source_system])?;
        Ok(ConfigStored::New {
            id: conn.last_insert_rowid(),
            version,
        })
    }
}

impl Writer<'_> {
    /// Replaces the text of a device's newest config version when `text` differs from it (the
    /// same version fetched again: the stored text was cut short); its version and old hash, or
    /// `None` when it was right or there is none.
    pub(crate) fn correct_newest_config(
        &self,
        device_id: i64,
        text: &str,
    ) -> Result<Option<(i64, String)>> {
        let conn = self.conn();
        let newest: Option<(i64, i64, String)> = conn
            .prepare_cached(
                "SELECT id, version, config_hash FROM device_configs WHERE device_id = ?1 \
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let hash = config_hash(text);
        match newest {
            Some((id, version, old)) if old != hash => {
                conn.prepare_cached(
                    "UPDATE device_configs SET config_text = ?2, config_hash = ?3 WHERE id = ?1",
                )?
                .execute(params![id, text, hash])?;
                Ok(Some((version, old)))
            }
            _ => Ok(None),
        }
    }
}

impl Store {
    /// A device's config versions, newest first.
    pub fn config_versions(&self, device_id: i64) -> Result<Vec<ConfigVersion>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, device_id, version, config_hash, retrieved_at, source_system, \
             length(CAST(config_text AS BLOB)) FROM device_configs WHERE device_id = ?1 \
             ORDER BY version DESC",
        )?;
        let rows = stmt.query_map([device_id], |r| {
            Ok(ConfigVersion {
                id: r.get(0)?,
                device_id: r.get(1)?,
                version: r.get(2)?,
                config_hash: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                retrieved_at: r.get(4)?,
                source_system: r.get(5)?,
                size_bytes: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The text of one config version.
    pub fn config_text(&self, config_id: i64) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT config_text FROM device_configs WHERE id = ?1")?
            .query_row([config_id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }
}
