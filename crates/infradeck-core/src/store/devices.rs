//! `devices`: upsert keyed by (source_system, source_identifier, source_id), pages for the list
//! view, one device with everything related to it.

use super::{
    Change, ConfigVersion, FactRow, HistoryEntry, InterfaceRow, Related, Result, Store, VmRow,
    VolumeRow, Writer, json_text, parse_text_enum,
};
use crate::model::{DeviceRecord, DeviceStatus, DeviceType};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One row of `devices`. `metadata` is the stored JSON text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub id: i64,
    pub name: String,
    pub device_type: DeviceType,
    pub source_system: String,
    pub source_identifier: String,
    pub source_id: String,
    pub status: DeviceStatus,
    pub metadata: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub(crate) created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl Device {
    /// The metadata as JSON (`null` when absent or unparseable, which the store never writes).
    pub fn metadata_json(&self) -> serde_json::Value {
        self.metadata
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// The fields reconcile compares and audits, as JSON.
    pub(crate) fn audit_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "device_type": self.device_type,
            "status": self.status,
            "metadata": self.metadata_json(),
        })
    }
}

/// The `devices` columns in [`device_from_row`] order, as a literal so hot-path SQL can be built
/// with `concat!` at compile time instead of `format!` on every call.
macro_rules! device_columns {
    () => {
        "id, name, device_type, source_system, source_identifier, source_id, status, metadata, \
         first_seen, last_seen, created_at, updated_at"
    };
}

pub(crate) const DEVICE_COLUMNS: &str = device_columns!();

const SELECT_BY_SOURCE_KEY: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices WHERE source_system = ?1 AND source_identifier = ?2 AND source_id = ?3"
);

pub(crate) fn device_from_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    let status: Option<String> = row.get(6)?;
    let id: i64 = row.get(0)?;
    // Text another tool may have written as invalid UTF-8 is read lossily (and logged).
    let text = |index, column| super::lossy_text(row, index, "devices", id, column);
    Ok(Device {
        id,
        name: text(1, "name")?.unwrap_or_default(),
        device_type: parse_text_enum(row, 2)?,
        source_system: text(3, "source_system")?.unwrap_or_default(),
        source_identifier: text(4, "source_identifier")?.unwrap_or_default(),
        source_id: text(5, "source_id")?.unwrap_or_default(),
        status: status
            .and_then(|s| s.parse().ok())
            .unwrap_or(DeviceStatus::Unknown),
        metadata: text(7, "metadata")?,
        first_seen: row.get(8)?,
        last_seen: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

/// The result of upserting one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    pub id: i64,
    pub change: DeviceChange,
    /// The stored content fingerprint equals the one given: everything else the source reports
    /// about this device is unchanged too, and need not be compared.
    pub(crate) same_content: bool,
}

pub type DeviceChange = Change<Device>;

impl Writer<'_> {
    /// Inserts or updates the device with the record's unique key and marks it active and seen
    /// at `seen_at`. An identical active record only gets its `last_seen` bumped. One record
    /// through the batch path a sync takes ([`Self::upsert_devices`]), so tests and tools that
    /// write one device exercise the code production runs.
    pub fn upsert_device(&self, record: &DeviceRecord, seen_at: &str) -> Result<Upserted> {
        let mut upserted = self.upsert_devices_with(&[record], None, seen_at)?;
        // Invariant: the batch path returns exactly one result per record, in order.
        Ok(upserted
            .pop()
            .expect("upsert_devices_with answers one result per record"))
    }

    /// Upserts many devices at once: identical active records only get `last_seen` bumped,
    /// changed ones are rewritten and returned with their previous state. Results are in the
    /// order of `records`. Uses a few set-based statements per chunk instead of two statements
    /// per device, which is what makes a 100,000-device sync fast.
    pub fn upsert_devices(&self, records: &[DeviceRecord], seen_at: &str) -> Result<Vec<Upserted>> {
        let refs: Vec<&DeviceRecord> = records.iter().collect();
        self.upsert_devices_with(&refs, None, seen_at)
    }

    /// [`Self::upsert_devices`] with a content fingerprint per record (see
    /// [`Upserted::same_content`]); the fingerprints are stored with the devices.
    pub fn upsert_devices_fingerprinted(
        &self,
        records: &[&DeviceRecord],
        fingerprints: &[i64],
        seen_at: &str,
    ) -> Result<Vec<Upserted>> {
        self.upsert_devices_with(records, Some(fingerprints), seen_at)
    }

    /// The active devices of one source instance that carry a content fingerprint, by source
    /// id: `(id, fingerprint)`. A sync run reads this once (one scan of the unique index) so
    /// that the devices a source reports unchanged need no lookup of their own.
    pub fn fingerprinted_devices(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<HashMap<String, (i64, i64)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT source_id, id, content_fingerprint FROM devices \
             WHERE source_system = ?1 AND source_identifier = ?2 AND status = 'active' \
             AND content_fingerprint IS NOT NULL",
        )?;
        let mut rows = stmt.query(params![source_system, source_identifier])?;
        let mut found = HashMap::new();
        while let Some(row) = rows.next()? {
            found.insert(row.get(0)?, (row.get(1)?, row.get(2)?));
        }
        Ok(found)
    }

    /// Moves `last_seen` of each `(id, fingerprint)` device that is still active with that
    /// fingerprint stored, and returns the ids it moved. A device another writer changed since
    /// [`Self::fingerprinted_devices`] is left alone, for the caller's full upsert to handle.
    pub fn touch_unchanged(&self, given: &[(i64, i64)], seen_at: &str) -> Result<HashSet<i64>> {
        const CHUNK: usize = 400;
        let mut touched = HashSet::with_capacity(given.len());
        for chunk in given.chunks(CHUNK) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?{})", 2 * i + 2, 2 * i + 3))
                .collect();
            let sql = format!(
                "UPDATE devices SET last_seen = ?1 FROM (VALUES {}) AS given \
                 WHERE devices.id = given.column1 AND devices.content_fingerprint = given.column2 \
                 AND devices.status = 'active' RETURNING devices.id",
                pairs.join(", ")
            );
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(1 + 2 * chunk.len());
            values.push(&seen_at);
            for (id, fingerprint) in chunk {
                values.push(id);
                values.push(fingerprint);
            }
            let mut stmt = self.conn().prepare_cached(&sql)?;
            let mut rows = stmt.query(values.as_slice())?;
            while let Some(row) = rows.next()? {
                touched.insert(row.get(0)?);
            }
        }
        Ok(touched)
    }

    fn upsert_devices_with(
        &self,
        records: &[&DeviceRecord],
        fingerprints: Option<&[i64]>,
        seen_at: &str,
    ) -> Result<Vec<Upserted>> {
        const CHUNK: usize = 400;
        let conn = self.conn();
        let mut results: Vec<Option<Upserted>> = vec![None; records.len()];
        for chunk_start in (0..records.len()).step_by(CHUNK) {
            let chunk = &records[chunk_start..(chunk_start + CHUNK).min(records.len())];
            let chunk_fingerprints =
                fingerprints.map(|f| &f[chunk_start..(chunk_start + CHUNK).min(records.len())]);
            let existing = self.existing_devices(chunk, chunk_fingerprints)?;
            let mut unchanged = Vec::new();
            let mut new = Vec::new();
            for (offset, record) in chunk.iter().enumerate() {
                let index = chunk_start + offset;
                let fingerprint = fingerprints.and_then(|f| f.get(index)).copied();
                match existing.get(&offset) {
                    None => new.push(index),
                    Some((before, stored_fingerprint)) => {
                        let active = before.status == DeviceStatus::Active;
                        if active && fingerprint.is_some() && fingerprint == *stored_fingerprint {
                            unchanged.push(before.id);
                            results[index] = Some(Upserted {
                                id: before.id,
                                change: Change::Unchanged,
                                same_content: true,
                            });
                            continue;
                        }
                        let metadata = json_text(&record.metadata);
                        let same = before.name == record.name
                            && before.device_type == record.device_type
                            && active
                            && before.metadata == metadata;
                        if same && fingerprint.is_none() {
                            unchanged.push(before.id);
                            results[index] = Some(Upserted {
                                id: before.id,
                                change: Change::Unchanged,
                                same_content: false,
                            });
                        } else if same {
                            conn.prepare_cached("UPDATE devices SET content_fingerprint = ?2, last_seen = ?3 WHERE id = ?1")?
                                .execute(params![before.id, fingerprint, seen_at])?;
                            results[index] = Some(Upserted {
                                id: before.id,
                                change: Change::Unchanged,
                                same_content: false,
                            });
                        } else {
                            conn.prepare_cached(
                                "UPDATE devices SET name = ?2, device_type = ?3, status = 'active', \
                                 metadata = ?4, last_seen = ?5, updated_at = ?5, content_fingerprint = ?6 WHERE id = ?1",
                            )?
                            .execute(params![
                                before.id,
                                record.name,
                                record.device_type.as_str(),
                                metadata,
                                seen_at,
                                fingerprint
                            ])?;
                            results[index] = Some(Upserted {
                                id: before.id,
                                change: Change::Updated {
                                    before: before.clone(),
                                },
                                same_content: false,
                            });
                        }
                    }
                }
            }
            if !unchanged.is_empty() {
                let placeholders = numbered_placeholders(2, unchanged.len());
                let sql = format!("UPDATE devices SET last_seen = ?1 WHERE id IN ({placeholders})");
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![&seen_at];
                values.extend(unchanged.iter().map(|id| id as &dyn rusqlite::ToSql));
                conn.prepare_cached(&sql)?.execute(values.as_slice())?;
            }
            if !new.is_empty() {
                // Key order keeps the unique index's B-tree inserts local (measured: ~10% faster).
                new.sort_by(|&a, &b| records[a].source_id.cmp(&records[b].source_id));
                let rows: Vec<String> = (0..new.len())
                    .map(|i| {
                        let b = i * 7;
                        format!(
                            "(?{}, ?{}, ?{}, ?{}, ?{}, 'active', ?{}, ?1, ?1, ?1, ?1, ?{})",
                            b + 2,
                            b + 3,
                            b + 4,
                            b + 5,
                            b + 6,
                            b + 7,
                            b + 8
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO devices (name, device_type, source_system, source_identifier, \
                     source_id, status, metadata, first_seen, last_seen, created_at, updated_at, \
                     content_fingerprint) VALUES {} RETURNING id, source_system, source_identifier, source_id",
                    rows.join(", ")
                );
                let metadata: Vec<Option<String>> = new
                    .iter()
                    .map(|&i| json_text(&records[i].metadata))
                    .collect();
                let new_fingerprints: Vec<Option<i64>> = new
                    .iter()
                    .map(|&i| fingerprints.and_then(|f| f.get(i)).copied())
                    .collect();
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![&seen_at];
                for ((&i, metadata), fingerprint) in
                    new.iter().zip(&metadata).zip(&new_fingerprints)
                {
                    let r = &records[i];
                    values.push(&r.name);
                    values.push(r.device_type.as_str_ref());
                    values.push(&r.source_system);
                    values.push(&r.source_identifier);
                    values.push(&r.source_id);
                    values.push(metadata);
                    values.push(fingerprint);
                }
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut ids = HashMap::with_capacity(new.len());
                let mut rows = stmt.query(values.as_slice())?;
                while let Some(row) = rows.next()? {
                    let key: (String, String, String) = (row.get(1)?, row.get(2)?, row.get(3)?);
                    ids.insert(key, row.get::<_, i64>(0)?);
                }
                for &i in &new {
                    let r = &records[i];
                    let key = (
                        r.source_system.clone(),
                        r.source_identifier.clone(),
                        r.source_id.clone(),
                    );
                    let Some(&id) = ids.get(&key) else {
                        return Err(super::Error::Conflict(format!(
                            "device {}/{}/{} appears twice in one upsert batch",
                            r.source_system, r.source_identifier, r.source_id
                        )));
                    };
                    results[i] = Some(Upserted {
                        id,
                        change: Change::Added,
                        same_content: false,
                    });
                }
            }
        }
        // Every index was filled above: each record is unchanged, updated or newly inserted.
        Ok(results.into_iter().flatten().collect())
    }

    /// The stored devices matching a chunk of records, keyed by the record's offset in the chunk,
    /// with their stored fingerprints. A device whose fingerprint matches the given one is
    /// returned without reading its full row (only its id and status matter then).
    fn existing_devices(
        &self,
        chunk: &[&DeviceRecord],
        fingerprints: Option<&[i64]>,
    ) -> Result<HashMap<usize, (Device, Option<i64>)>> {
        let mut found = HashMap::with_capacity(chunk.len());
        let mut groups: BTreeMap<(&str, &str), HashMap<&str, usize>> = BTreeMap::new();
        for (offset, r) in chunk.iter().enumerate() {
            groups
                .entry((r.source_system.as_str(), r.source_identifier.as_str()))
                .or_default()
                .insert(r.source_id.as_str(), offset);
        }
        for ((system, instance), offsets) in groups {
            let placeholders = numbered_placeholders(3, offsets.len());
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&system, &instance];
            values.extend(offsets.keys().map(|id| id as &dyn rusqlite::ToSql));
            let mut full_needed: Vec<&str> = Vec::new();
            {
                let sql = format!(
                    "SELECT source_id, id, status, content_fingerprint FROM devices WHERE source_system = ?1 \
                     AND source_identifier = ?2 AND source_id IN ({placeholders})"
                );
                let mut stmt = self.conn().prepare_cached(&sql)?;
                let mut rows = stmt.query(values.as_slice())?;
                while let Some(row) = rows.next()? {
                    let source_id = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                    let Some((&key, &offset)) = offsets.get_key_value(source_id) else {
                        continue;
                    };
                    let stored: Option<i64> = row.get(3)?;
                    let active = row
                        .get_ref(2)?
                        .as_str_or_null()
                        .map_err(rusqlite::Error::from)?
                        == Some("active");
                    let given = fingerprints.and_then(|f| f.get(offset)).copied();
                    if active && given.is_some() && given == stored {
                        // Only id and status are read on this path; the rest stays empty.
                        let record = chunk[offset];
                        found.insert(
                            offset,
                            (
                                Device {
                                    id: row.get(1)?,
                                    name: String::new(),
                                    device_type: record.device_type,
                                    source_system: String::new(),
                                    source_identifier: String::new(),
                                    source_id: String::new(),
                                    status: DeviceStatus::Active,
                                    metadata: None,
                                    first_seen: None,
                                    last_seen: None,
                                    created_at: None,
                                    updated_at: None,
                                },
                                stored,
                            ),
                        );
                    } else {
                        full_needed.push(key);
                    }
                }
            }
            if full_needed.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT {DEVICE_COLUMNS}, content_fingerprint FROM devices WHERE source_system = ?1 \
                 AND source_identifier = ?2 AND source_id IN ({})",
                numbered_placeholders(3, full_needed.len())
            );
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&system, &instance];
            values.extend(full_needed.iter().map(|id| id as &dyn rusqlite::ToSql));
            let mut stmt = self.conn().prepare_cached(&sql)?;
            let rows = stmt.query_map(values.as_slice(), |r| {
                Ok((device_from_row(r)?, r.get::<_, Option<i64>>(12)?))
            })?;
            for row in rows {
                let (device, fingerprint) = row?;
                if let Some(&offset) = offsets.get(device.source_id.as_str()) {
                    found.insert(offset, (device, fingerprint));
                }
            }
        }
        Ok(found)
    }

    /// Sets a device's status; returns the previous status, or `None` if the device is unknown.
    pub fn set_device_status(
        &self,
        device_id: i64,
        status: DeviceStatus,
        at: &str,
    ) -> Result<Option<DeviceStatus>> {
        let conn = self.conn();
        let previous: Option<Option<String>> = conn
            .prepare_cached("SELECT status FROM devices WHERE id = ?1")?
            .query_row([device_id], |r| r.get(0))
            .optional()?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        conn.prepare_cached("UPDATE devices SET status = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![device_id, status.as_str(), at])?;
        Ok(Some(
            previous
                .and_then(|s| s.parse().ok())
                .unwrap_or(DeviceStatus::Unknown),
        ))
    }

    /// Deletes a device and, through the foreign keys, everything that hangs off it.
    pub fn delete_device(&self, device_id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM devices WHERE id = ?1")?
            .execute([device_id])?
            > 0)
    }
}

/// The column a device list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum DeviceSort {
    #[default]
    Name,
    Type,
    Source,
    Status,
    LastSeen,
}

impl DeviceSort {
    fn column(self) -> &'static str {
        match self {
            DeviceSort::Name => "name",
            DeviceSort::Type => "device_type",
            DeviceSort::Source => "source_system",
            DeviceSort::Status => "status",
            DeviceSort::LastSeen => "last_seen",
        }
    }
}

/// A filtered, sorted page of devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Keep only names that do *not* contain `name_contains`.
    pub invert_name: bool,
    pub device_type: Option<DeviceType>,
    pub source_system: Option<String>,
    pub source_identifier: Option<String>,
    pub status: Option<DeviceStatus>,
    pub sort: DeviceSort,
    pub descending: bool,
    pub offset: u64,
    /// `0` means no limit.
    pub limit: u64,
}

/// A page of devices and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct DevicePage {
    pub devices: Vec<Device>,
    pub total: u64,
}

impl DeviceQuery {
    /// The records a machine filter matches (by name order, no paging): for the raw-record
    /// lists. Health and power are a machine's and are not part of it.
    pub fn of_records(filter: &crate::machines::MachineFilter) -> DeviceQuery {
        DeviceQuery {
            name_contains: filter.name_contains.clone(),
            invert_name: filter.invert_name,
            device_type: filter.device_type,
            source_system: filter.source_system.clone(),
            source_identifier: filter.source_identifier.clone(),
            status: filter.status,
            ..DeviceQuery::default()
        }
    }

    fn where_clause(&self) -> (String, Vec<String>) {
        let mut terms = Vec::new();
        let mut values = Vec::new();
        if let Some(text) = self.name_contains.as_deref().filter(|t| !t.is_empty()) {
            values.push(format!("%{}%", escape_like(text)));
            let not = if self.invert_name { "NOT " } else { "" };
            terms.push(format!("name {not}LIKE ?{} ESCAPE '\\'", values.len()));
        }
        if let Some(device_type) = self.device_type {
            values.push(device_type.as_str().to_string());
            terms.push(format!("device_type = ?{}", values.len()));
        }
        if let Some(source) = &self.source_system {
            values.push(source.clone());
            terms.push(format!("source_system = ?{}", values.len()));
        }
        if let Some(instance) = &self.source_identifier {
            values.push(instance.clone());
            terms.push(format!("source_identifier = ?{}", values.len()));
        }
        if let Some(status) = self.status {
            values.push(status.as_str().to_string());
            terms.push(format!("status = ?{}", values.len()));
        }
        if terms.is_empty() {
            (String::new(), values)
        } else {
            (format!(" WHERE {}", terms.join(" AND ")), values)
        }
    }
}

/// `?start, ?start+1, ...` for `count` parameters.
fn numbered_placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Everything known about one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceDetail {
    pub device: Device,
    pub vm: Option<VmRow>,
    pub interfaces: Vec<InterfaceRow>,
    pub facts: Vec<FactRow>,
    pub volumes: Vec<VolumeRow>,
    pub related: Vec<Related>,
    pub configs: Vec<ConfigVersion>,
    pub history: Vec<HistoryEntry>,
    /// The device merged with its correlated records, field by field.
    pub merged: Option<super::MergedView>,
}

impl Store {
    /// One page of devices matching `query`, in the requested order (ties broken by id).
    pub fn query_devices(&self, query: &DeviceQuery) -> Result<Vec<Device>> {
        if let Some((ids, _)) = self.indexed_matches(query)? {
            return super::name_index::devices_by_ids(self.conn(), &ids);
        }
        self.query_devices_sql(query)
    }

    /// Answers a name-sorted, name-filtered query from the in-memory name index when one is (or
    /// is worth being) built for the current database state; `None` means use SQL.
    /// Builds the in-memory name index for the current database state now, so the next filtered
    /// queries (someone typing a filter) do not pay for it. A no-op when it is current.
    pub fn warm_name_index(&self) -> Result<()> {
        let generation = self.generation()?;
        let mut cached = self.name_index.borrow_mut();
        if cached
            .as_ref()
            .is_none_or(|index| index.generation() != generation)
        {
            *cached = super::name_index::NameIndex::build(self.conn(), generation)?;
        }
        Ok(())
    }

    fn indexed_matches(&self, query: &DeviceQuery) -> Result<Option<(Vec<i64>, u64)>> {
        let filtered = query
            .name_contains
            .as_deref()
            .is_some_and(|t| !t.is_empty() && !t.contains('\0'));
        if !filtered || query.sort != DeviceSort::Name {
            return Ok(None);
        }
        let generation = self.generation()?;
        let mut cached = self.name_index.borrow_mut();
        if cached
            .as_ref()
            .is_none_or(|index| index.generation() != generation)
        {
            *cached = None;
            // A first filtered query at this state runs in SQL; a second one means someone is
            // browsing (a dashboard, a benchmark), and then the index pays for itself.
            if self.last_unindexed_filter.get() != Some(generation) {
                self.last_unindexed_filter.set(Some(generation));
                return Ok(None);
            }
            *cached = super::name_index::NameIndex::build(self.conn(), generation)?;
        }
        Ok(cached.as_ref().map(|index| index.matches(query)))
    }

    fn query_devices_sql(&self, query: &DeviceQuery) -> Result<Vec<Device>> {
        let (filter, values) = query.where_clause();
        let direction = if query.descending { "DESC" } else { "ASC" };
        let limit = if query.limit == 0 {
            -1
        } else {
            query.limit as i64
        };
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices{filter} ORDER BY {col} {direction}, id {direction} \
             LIMIT {limit} OFFSET {offset}",
            col = query.sort.column(),
            offset = query.offset
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), device_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// How many devices match `query`'s filters (paging ignored).
    pub fn count_devices(&self, query: &DeviceQuery) -> Result<u64> {
        if let Some((_, total)) = self.indexed_matches(query)? {
            return Ok(total);
        }
        self.count_devices_sql(query)
    }

    fn count_devices_sql(&self, query: &DeviceQuery) -> Result<u64> {
        let (filter, values) = query.where_clause();
        let sql = format!("SELECT COUNT(*) FROM devices{filter}");
        let count: i64 = self
            .conn()
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
        Ok(count as u64)
    }

    /// A page and the total count of matches.
    pub fn device_page(&self, query: &DeviceQuery) -> Result<DevicePage> {
        if let Some((ids, total)) = self.indexed_matches(query)? {
            return Ok(DevicePage {
                devices: super::name_index::devices_by_ids(self.conn(), &ids)?,
                total,
            });
        }
        Ok(DevicePage {
            devices: self.query_devices_sql(query)?,
            total: self.count_devices_sql(query)?,
        })
    }

    /// One device by id.
    pub fn device(&self, device_id: i64) -> Result<Option<Device>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([device_id], device_from_row)
            .optional()?)
    }

    /// One device by its unique source key.
    pub fn device_by_source_key(
        &self,
        source_system: &str,
        source_identifier: &str,
        source_id: &str,
    ) -> Result<Option<Device>> {
        Ok(self
            .conn()
            .prepare_cached(SELECT_BY_SOURCE_KEY)?
            .query_row(
                params![source_system, source_identifier, source_id],
                device_from_row,
            )
            .optional()?)
    }

    /// Devices whose name equals `name` exactly, case-insensitively; for CLI lookups by name.
    pub fn devices_named(&self, name: &str) -> Result<Vec<Device>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE name = ?1 COLLATE NOCASE ORDER BY id"
        ))?;
        let rows = stmt.query_map([name], device_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Ids and source ids of a source instance's devices in `status`; the sweep's candidates.
    pub fn device_keys_of_source(
        &self,
        source_system: &str,
        source_identifier: &str,
        status: DeviceStatus,
    ) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, source_id FROM devices \
             WHERE source_system = ?1 AND source_identifier = ?2 AND status = ?3",
        )?;
        let rows = stmt.query_map(
            params![source_system, source_identifier, status.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Everything known about one device, or `None` if there is no such device.
    pub fn device_detail(&self, device_id: i64) -> Result<Option<DeviceDetail>> {
        let Some(device) = self.device(device_id)? else {
            return Ok(None);
        };
        Ok(Some(DeviceDetail {
            vm: self.vm(device_id)?,
            interfaces: self.interfaces(device_id)?,
            facts: self.facts(device_id)?,
            volumes: self.volumes_of_device(device_id)?,
            related: self.related(device_id)?,
            configs: self.config_versions(device_id)?,
            history: self.history(Some(device_id), 200)?,
            merged: self.merged_view(device_id)?,
            device,
        }))
    }
}

/// What correlation reads of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationRow {
    pub(crate) id: i64,
    pub(crate) source_system: String,
    pub(crate) source_identifier: String,
    pub(crate) name: String,
    pub(crate) device_type: DeviceType,
    pub(crate) metadata: Option<String>,
}

impl Writer<'_> {
    /// (id, source id) of a source instance's devices in `status`, read inside the transaction.
    pub(crate) fn device_keys(
        &self,
        source_system: &str,
        source_identifier: &str,
        status: DeviceStatus,
    ) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, source_id FROM devices WHERE source_system = ?1 AND source_identifier = ?2 AND status = ?3",
        )?;
        let rows = stmt.query_map(
            params![source_system, source_identifier, status.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every device as (id, source_system, source_identifier, name, device_type, metadata), for
    /// correlation, which looks at all sources at once.
    pub(crate) fn correlation_rows(&self) -> Result<Vec<CorrelationRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, source_system, source_identifier, name, device_type, metadata FROM devices WHERE status = 'active'",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CorrelationRow {
                id: r.get(0)?,
                source_system: r.get(1)?,
                source_identifier: r.get(2)?,
                name: r.get(3)?,
                device_type: parse_text_enum(r, 4)?,
                metadata: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Store {
    /// The stored metadata of a source instance's devices by source id: what a connector may
    /// know about the previous sync (for example the newest config commit it already has).
    pub(crate) fn source_metadata(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<HashMap<String, serde_json::Value>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT source_id, metadata FROM devices WHERE source_system = ?1 AND source_identifier = ?2",
        )?;
        let rows = stmt.query_map(params![source_system, source_identifier], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, text) = row?;
            if let Some(value) = text.and_then(|t| serde_json::from_str(&t).ok()) {
                out.insert(id, value);
            }
        }
        Ok(out)
    }
}
