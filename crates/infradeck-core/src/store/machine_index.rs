//! An in-memory index of machines for the machine list: every machine's filter columns, the
//! names of all its records in one lowercased buffer (a SIMD substring search finds every match
//! in well under a millisecond), and sort orders built once per column, so filtering, sorting
//! and paging 40,000 machines costs a scan of flat arrays, and only the page is read from SQLite.
//! Rebuilt when the database changes (the same generation as the name index).

use super::machines::{MachineQuery, MachineSort};
use super::name_index::Generation;
use super::{Result, parse_text_enum};
use crate::model::{DeviceStatus, DeviceType, Health};
use rusqlite::Connection;
use std::cell::RefCell;
use std::collections::HashMap;

/// A sort order's cache key: the column, and for health the stale sources it assumed.
type OrderKey = (MachineSort, String);

struct Entry {
    id: i64,
    device_type: DeviceType,
    any_active: bool,
    any_inactive: bool,
    health: Health,
    power: Option<String>,
    /// Interned `(system, instance)` of its records, sorted, distinct.
    sources: Vec<u16>,
    /// Its source systems joined, for sorting by sources.
    systems: String,
    last_seen: Option<String>,
    name_key: String,
}

pub(crate) struct MachineIndex {
    generation: Generation,
    entries: Vec<Entry>,
    /// Each machine's record names, lowercased, separated by `\x01` and ended by `\0`.
    haystack: Vec<u8>,
    starts: Vec<u32>,
    sources: Vec<(String, String)>,
    /// Sort orders built so far, by column (and, for health, the stale sources they assumed).
    orders: RefCell<HashMap<OrderKey, std::sync::Arc<Vec<u32>>>>,
}

impl MachineIndex {
    pub(crate) fn build(conn: &Connection, generation: Generation) -> Result<MachineIndex> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut position: HashMap<i64, usize> = HashMap::new();
        {
            let mut stmt = conn
                .prepare_cached("SELECT id, name_key, device_type, health, power FROM machines")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                position.insert(id, entries.len());
                entries.push(Entry {
                    id,
                    device_type: parse_text_enum(row, 2)?,
                    any_active: false,
                    any_inactive: false,
                    health: parse_text_enum(row, 3)?,
                    power: row.get(4)?,
                    sources: Vec::new(),
                    systems: String::new(),
                    last_seen: None,
                    name_key: row.get(1)?,
                });
            }
        }
        let mut names: Vec<Vec<u8>> = vec![Vec::new(); entries.len()];
        let mut sources: Vec<(String, String)> = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT id, machine_id, name, device_type, source_system, source_identifier, \
                 status, last_seen FROM devices",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let device_id: i64 = row.get(0)?;
                let name =
                    super::lossy_text(row, 2, "devices", device_id, "name")?.unwrap_or_default();
                let system = super::lossy_text(row, 4, "devices", device_id, "source_system")?
                    .unwrap_or_default();
                let instance =
                    super::lossy_text(row, 5, "devices", device_id, "source_identifier")?
                        .unwrap_or_default();
                let status = row
                    .get_ref(6)?
                    .as_str_or_null()
                    .map_err(rusqlite::Error::from)?
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(DeviceStatus::Unknown);
                let last_seen: Option<String> = row.get(7)?;
                let machine: Option<i64> = row.get(1)?;
                let at = match machine.and_then(|m| position.get(&m).copied()) {
                    Some(at) => at,
                    None => {
                        // Not correlated yet: a machine of its own.
                        entries.push(Entry {
                            id: -device_id,
                            device_type: parse_text_enum(row, 3)?,
                            any_active: false,
                            any_inactive: false,
                            health: Health::Ok,
                            power: None,
                            sources: Vec::new(),
                            systems: String::new(),
                            last_seen: None,
                            name_key: crate::text::natural_key(&name),
                        });
                        names.push(Vec::new());
                        entries.len() - 1
                    }
                };
                let source = match sources
                    .iter()
                    .position(|(s, i)| *s == system && *i == instance)
                {
                    Some(p) => p as u16,
                    None => {
                        sources.push((system.clone(), instance));
                        (sources.len() - 1) as u16
                    }
                };
                let entry = &mut entries[at];
                if !entry.sources.contains(&source) {
                    entry.sources.push(source);
                }
                match status {
                    DeviceStatus::Active => entry.any_active = true,
                    _ => entry.any_inactive = true,
                }
                if last_seen > entry.last_seen {
                    entry.last_seen = last_seen;
                }
                let buffer = &mut names[at];
                if !buffer.is_empty() {
                    buffer.push(1);
                }
                // NULs would end the entry early; a name cannot match across one anyway.
                buffer.extend(
                    name.bytes()
                        .map(|b| if b == 0 { 1 } else { b.to_ascii_lowercase() }),
                );
            }
        }
        for entry in &mut entries {
            entry.sources.sort_unstable();
            let mut systems: Vec<&str> = entry
                .sources
                .iter()
                .map(|&s| sources[s as usize].0.as_str())
                .collect();
            systems.dedup();
            entry.systems = systems.join(",");
        }
        let mut haystack = Vec::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        let mut starts = Vec::with_capacity(names.len());
        for name in names {
            starts.push(haystack.len() as u32);
            haystack.extend_from_slice(&name);
            haystack.push(0);
        }
        Ok(MachineIndex {
            generation,
            entries,
            haystack,
            starts,
            sources,
            orders: RefCell::new(HashMap::new()),
        })
    }

    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    /// The sources stale in `query`, as flags over the interned sources.
    fn stale_flags(&self, query: &MachineQuery) -> Vec<bool> {
        self.sources
            .iter()
            .map(|(s, i)| query.stale.contains_key(&format!("{s}/{i}")))
            .collect()
    }

    fn health(&self, entry: &Entry, stale: &[bool]) -> Health {
        if entry.health != Health::Crit && entry.sources.iter().any(|&s| stale[s as usize]) {
            entry.health.max(Health::Warn)
        } else {
            entry.health
        }
    }

    fn order(
        &self,
        sort: MachineSort,
        stale: &[bool],
        stale_key: String,
    ) -> std::sync::Arc<Vec<u32>> {
        let key = (
            sort,
            if sort == MachineSort::Health {
                stale_key
            } else {
                String::new()
            },
        );
        if let Some(order) = self.orders.borrow().get(&key) {
            return order.clone();
        }
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        let e = |i: &u32| &self.entries[*i as usize];
        let by_name = |a: &u32, b: &u32| {
            e(a).name_key
                .cmp(&e(b).name_key)
                .then(e(a).id.cmp(&e(b).id))
        };
        match sort {
            MachineSort::Name => order.sort_unstable_by(by_name),
            MachineSort::Type => order.sort_unstable_by(|a, b| {
                e(a).device_type
                    .as_str()
                    .cmp(e(b).device_type.as_str())
                    .then_with(|| by_name(a, b))
            }),
            MachineSort::Sources => order.sort_unstable_by(|a, b| {
                e(a).systems.cmp(&e(b).systems).then_with(|| by_name(a, b))
            }),
            // Worst first, newest first: what those columns are sorted for.
            MachineSort::Health => order.sort_unstable_by(|a, b| {
                self.health(e(b), stale)
                    .cmp(&self.health(e(a), stale))
                    .then_with(|| by_name(a, b))
            }),
            MachineSort::Power => order
                .sort_unstable_by(|a, b| e(a).power.cmp(&e(b).power).then_with(|| by_name(a, b))),
            MachineSort::LastSeen => order.sort_unstable_by(|a, b| {
                e(a).last_seen
                    .cmp(&e(b).last_seen)
                    .then_with(|| by_name(a, b))
            }),
        }
        let order = std::sync::Arc::new(order);
        self.orders.borrow_mut().insert(key, order.clone());
        order
    }

    /// The ids of the machines matching `query`, in its order, and how many match in all.
    pub(crate) fn matches(&self, query: &MachineQuery) -> (Vec<i64>, u64) {
        let filter = &query.filter;
        let needle = filter
            .name_contains
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut hit = vec![needle.is_empty(); self.entries.len()];
        if !needle.is_empty() {
            for offset in memchr::memmem::find_iter(&self.haystack, needle.as_bytes()) {
                let entry = self.starts.partition_point(|&s| s as usize <= offset) - 1;
                hit[entry] = true;
            }
        }
        let invert = filter.invert_name && !needle.is_empty();
        let stale = self.stale_flags(query);
        let source_wanted = |entry: &Entry| {
            entry.sources.iter().any(|&s| {
                let (system, instance) = &self.sources[s as usize];
                filter.source_system.as_deref().is_none_or(|w| w == system)
                    && filter
                        .source_identifier
                        .as_deref()
                        .is_none_or(|w| w == instance)
            })
        };
        let wanted = |i: usize| -> bool {
            let entry = &self.entries[i];
            hit[i] != invert
                && filter.device_type.is_none_or(|t| t == entry.device_type)
                && filter.status.is_none_or(|s| match s {
                    DeviceStatus::Active => entry.any_active,
                    _ => entry.any_inactive,
                })
                && filter
                    .health
                    .is_none_or(|h| h == self.health(entry, &stale))
                && filter
                    .power
                    .as_deref()
                    .is_none_or(|p| entry.power.as_deref() == Some(p))
                && (filter.source_system.is_none() && filter.source_identifier.is_none()
                    || source_wanted(entry))
        };
        let stale_key = query.stale.keys().cloned().collect::<Vec<_>>().join(",");
        let order = self.order(query.sort, &stale, stale_key);
        let ordered: Box<dyn Iterator<Item = &u32>> = if query.descending {
            Box::new(order.iter().rev())
        } else {
            Box::new(order.iter())
        };
        let limit = if query.limit == 0 {
            u64::MAX
        } else {
            query.limit
        };
        let mut total = 0u64;
        let mut page = Vec::new();
        for &i in ordered {
            if !wanted(i as usize) {
                continue;
            }
            if total >= query.offset && (page.len() as u64) < limit {
                page.push(self.entries[i as usize].id);
            }
            total += 1;
        }
        (page, total)
    }
}
