//! What changed, as people ask it: "since my shift started, which machines appeared, went away,
//! moved, changed power or health, were resized, changed addresses or config, which volumes
//! crossed a threshold, what was cabled, which NetBox batches were planned or applied".
//!
//! Each audit row is classified as the store writes it (classify.rs: findings of one
//! [`ChangeKind`] about one subject, kept in `change_findings`); [`digest`] reads the findings
//! of a time range and groups them: one [`MachineChange`] per subject and kind, newest first,
//! with counts per kind. Both front ends show a digest; the
//! command line also writes it as a Markdown handover note ([`markdown`]).

mod classify;
mod summary;

pub use crate::model::ChangeKind;
/// What an audit row means, as the store indexes it when it writes the row.
pub(crate) use classify::{Finding, HistoryRow, classify as findings_of};
pub use summary::{
    describe_entries, describe_entry, describe_entry_named, entry_fields, summarize_change,
};

use crate::machines::HealthRules;
use crate::model::DeviceType;
use crate::store::{Result, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

impl ChangeKind {
    /// The kind a word names (its name, or a prefix of it that names one kind).
    pub fn named(word: &str) -> Option<ChangeKind> {
        let word = word.trim().to_ascii_lowercase();
        if word.is_empty() {
            return None;
        }
        word.parse().ok().or_else(|| {
            let mut matching = ChangeKind::ALL
                .iter()
                .copied()
                .filter(|k| k.as_str().starts_with(&word));
            match (matching.next(), matching.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        })
    }

    /// The names of every kind, for error messages and help.
    pub fn names() -> String {
        ChangeKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a change is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
pub enum Subject {
    /// A machine (what the list shows).
    Machine {
        id: i64,
        name: String,
        device_type: Option<DeviceType>,
    },
    /// A record not (or no longer) correlated into a machine.
    Record {
        device_id: i64,
        name: String,
        device_type: Option<DeviceType>,
    },
    /// Something that is not a machine: a datastore, a NetBox batch.
    Named { name: String },
}

impl Subject {
    pub fn name(&self) -> &str {
        match self {
            Subject::Machine { name, .. }
            | Subject::Record { name, .. }
            | Subject::Named { name } => name,
        }
    }

    /// The machine id to open: a machine's id, a record's provisional id (its negated device
    /// id, as the machine list shows uncorrelated records), nothing for the rest.
    pub fn machine_id(&self) -> Option<i64> {
        match self {
            Subject::Machine { id, .. } => Some(*id),
            Subject::Record { device_id, .. } => Some(-device_id),
            Subject::Named { .. } => None,
        }
    }

    fn key(&self) -> (u8, i64, &str) {
        match self {
            Subject::Machine { id, .. } => (0, *id, ""),
            Subject::Record { device_id, .. } => (1, *device_id, ""),
            Subject::Named { name } => (2, 0, name),
        }
    }
}

/// A config change: the versions compared and how many lines each side has that the other
/// has not (as `diff` counts them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ConfigChange {
    pub device_id: i64,
    pub from_version: i64,
    pub to_version: i64,
    pub lines_added: Option<usize>,
    pub lines_removed: Option<usize>,
}

/// One subject's changes of one kind within the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineChange {
    pub kind: ChangeKind,
    #[serde(flatten)]
    pub subject: Subject,
    /// The newest of its changes.
    pub at: String,
    /// The sources that reported them (`system/instance`), sorted.
    pub sources: Vec<String>,
    /// What changed, oldest first, each once.
    pub details: Vec<String>,
    /// For a config change: the first and last version of the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigChange>,
}

impl MachineChange {
    /// One line: the details joined.
    pub fn summary(&self) -> String {
        let mut text = self.details.join("; ");
        if let Some(c) = &self.config
            && let (Some(added), Some(removed)) = (c.lines_added, c.lines_removed)
        {
            text.push_str(&format!(" (+{added} −{removed} lines)"));
        }
        text
    }
}

/// What a digest covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeFilter {
    /// Only these kinds (all when empty).
    pub kinds: Vec<ChangeKind>,
    /// Only changes a source whose `system/instance` contains one of these reported.
    pub sources: Vec<String>,
    /// Only subjects whose name contains this (case-insensitive).
    pub text: String,
}

impl ChangeFilter {
    /// Parses `kind:power source:vcenter web`: `kind:` and `source:` terms, the rest matched
    /// against names and details. An unknown kind is an error naming the known ones.
    pub fn parse(text: &str) -> std::result::Result<ChangeFilter, String> {
        let mut filter = ChangeFilter::default();
        let mut words = Vec::new();
        for word in text.split_whitespace() {
            if let Some(kind) = word.strip_prefix("kind:") {
                for k in kind.split(',').filter(|k| !k.is_empty()) {
                    filter.kinds.push(ChangeKind::named(k).ok_or_else(|| {
                        format!(
                            "`{k}` is not a kind of change; the kinds are {}",
                            ChangeKind::names()
                        )
                    })?);
                }
            } else if let Some(source) = word.strip_prefix("source:") {
                filter.sources.push(source.to_ascii_lowercase());
            } else {
                words.push(word);
            }
        }
        filter.text = words.join(" ").to_lowercase();
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.sources.is_empty() && self.text.is_empty()
    }

    pub fn matches(&self, change: &MachineChange) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&change.kind))
            && (self.sources.is_empty()
                || change.sources.iter().any(|s| {
                    let s = s.to_ascii_lowercase();
                    self.sources.iter().any(|want| s.contains(want.as_str()))
                }))
            && (self.text.is_empty()
                || change.subject.name().to_lowercase().contains(&self.text)
                || change
                    .details
                    .iter()
                    .any(|d| d.to_lowercase().contains(&self.text)))
    }
}

/// The changes of a time range, grouped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    /// Exclusive start and inclusive end, database timestamps.
    pub since: String,
    pub until: String,
    /// Subjects per kind, every kind listed (zero included), in [`ChangeKind::ALL`] order.
    pub counts: Vec<(ChangeKind, usize)>,
    /// Newest first; ties by kind, then name.
    pub changes: Vec<MachineChange>,
}

impl Digest {
    pub fn total(&self) -> usize {
        self.changes.len()
    }

    /// `3 appeared · 2 gone · …`, the kinds with changes only; `nothing changed` when none.
    pub fn counts_text(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        if parts.is_empty() {
            "nothing changed".into()
        } else {
            parts.join(" · ")
        }
    }

    pub fn count(&self, kind: ChangeKind) -> usize {
        self.counts
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// The same digest narrowed by `filter` (counts recomputed).
    pub fn filtered(&self, filter: &ChangeFilter) -> Digest {
        let changes: Vec<MachineChange> = self
            .changes
            .iter()
            .filter(|c| filter.matches(c))
            .cloned()
            .collect();
        Digest {
            since: self.since.clone(),
            until: self.until.clone(),
            counts: count_kinds(&changes),
            changes,
        }
    }
}

fn count_kinds(changes: &[MachineChange]) -> Vec<(ChangeKind, usize)> {
    let mut counts: BTreeMap<ChangeKind, usize> = ChangeKind::ALL.iter().map(|k| (*k, 0)).collect();
    for change in changes {
        *counts.entry(change.kind).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// The config changes whose line counts are computed (each reads two config texts); past this
/// many, the rest show their versions only. A day of a few hundred switch commits stays fast.
const CONFIG_LINE_COUNTS: usize = 500;

/// The changes with `since < at <= until` (database timestamps): the findings indexed for the
/// audit rows of the range, named as the records and machines are named now.
pub fn digest(store: &Store, since: &str, until: &str, health: &HealthRules) -> Result<Digest> {
    let rows = store.findings_between(since, until)?;
    let mut others: Vec<i64> = rows.iter().filter_map(|r| r.other_device_id).collect();
    others.sort_unstable();
    others.dedup();
    let labels = store.record_labels(&others)?;
    let band = |percent: f64| crate::machines::level_of_use(percent, health);
    // (subject, kind) → the change being built, in order of first appearance.
    let mut index: HashMap<((u8, i64, String), ChangeKind), usize> = HashMap::new();
    let mut changes: Vec<MachineChange> = Vec::new();
    for row in &rows {
        let Ok(kind) = row.kind.parse::<ChangeKind>() else {
            continue;
        };
        let mut detail = row.detail.clone();
        if let Some((a, b)) = row.volume_use {
            // A volume's use matters when it crosses a threshold, either way.
            if band(a) == band(b) {
                continue;
            }
            let level = if band(a).max(band(b)) == Some(crate::model::Health::Crit) {
                health.volume_crit_percent
            } else {
                health.volume_warn_percent
            };
            let way = if b > a { "above" } else { "below" };
            detail.push_str(&format!(" ({way} {level:.0}%)"));
        }
        if let Some(other) = row.other_device_id {
            let name = labels
                .get(&other)
                .map(|l| l.name().to_string())
                .unwrap_or_else(|| format!("record {other}"));
            detail = detail.replace("{other}", &name);
        }
        let subject = match (row.device_id, row.machine_id) {
            (Some(_), Some(id)) => Subject::Machine {
                id,
                name: row
                    .machine_name
                    .clone()
                    .or_else(|| row.device_name.clone())
                    .unwrap_or_default(),
                device_type: row.device_type,
            },
            (Some(device_id), None) => Subject::Record {
                device_id,
                name: row
                    .device_name
                    .clone()
                    .or_else(|| row.subject.clone())
                    .unwrap_or_else(|| format!("record {device_id}")),
                device_type: row.device_type,
            },
            (None, _) => Subject::Named {
                name: row.subject.clone().unwrap_or_else(|| row.source.clone()),
            },
        };
        let (rank, id, name) = subject.key();
        let key = ((rank, id, name.to_string()), kind);
        let slot = *index.entry(key).or_insert_with(|| {
            changes.push(MachineChange {
                kind,
                subject: subject.clone(),
                at: row.at.clone(),
                sources: Vec::new(),
                details: Vec::new(),
                config: None,
            });
            changes.len() - 1
        });
        let change = &mut changes[slot];
        change.at = row.at.clone();
        if !change.sources.contains(&row.source) {
            change.sources.push(row.source.clone());
            change.sources.sort();
        }
        if !change.details.contains(&detail) {
            change.details.push(detail);
        }
        if let (Some((from, to)), Some(device_id)) = (row.versions, row.device_id) {
            let from = change.config.as_ref().map_or(from, |c| c.from_version);
            change.config = Some(ConfigChange {
                device_id,
                from_version: from,
                to_version: to,
                lines_added: None,
                lines_removed: None,
            });
        }
    }
    // A config that went through several versions reads as one change from first to last;
    // a machine new in several sources at once reads as one line.
    for change in changes.iter_mut() {
        let systems: Vec<&str> = change
            .details
            .iter()
            .filter_map(|d| d.strip_prefix("new in "))
            .collect();
        if systems.len() > 1 {
            let mut systems: Vec<String> = systems.iter().map(|s| s.to_string()).collect();
            systems.sort();
            change.details.retain(|d| !d.starts_with("new in "));
            change
                .details
                .insert(0, format!("new in {}", systems.join(", ")));
        }
        if let Some(config) = &mut change.config
            && config.from_version + 1 < config.to_version
        {
            change.details = vec![format!(
                "config version {} → {}",
                config.from_version, config.to_version
            )];
        }
    }
    let mut counted = 0;
    for change in changes.iter_mut().rev() {
        let Some(config) = &mut change.config else {
            continue;
        };
        if counted >= CONFIG_LINE_COUNTS {
            break;
        }
        counted += 1;
        let old = store.config_text_of_version(config.device_id, config.from_version)?;
        let new = store.config_text_of_version(config.device_id, config.to_version)?;
        if let (Some(old), Some(new)) = (old, new) {
            let (added, removed) = line_changes(&old, &new);
            config.lines_added = Some(added);
            config.lines_removed = Some(removed);
        }
    }
    changes.sort_by_cached_key(|c| {
        (
            std::cmp::Reverse(c.at.clone()),
            c.kind,
            crate::text::natural_key(c.subject.name()),
        )
    });
    Ok(Digest {
        since: since.to_string(),
        until: until.to_string(),
        counts: count_kinds(&changes),
        changes,
    })
}

/// Lines only in `new` and lines only in `old`, as a line diff counts them.
pub fn line_changes(old: &str, new: &str) -> (usize, usize) {
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(std::time::Duration::from_millis(200))
        .diff_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

/// A handover note: the range, counts per kind, then the notable changes, at most `limit` of
/// them with "and N more". Names come from source systems; they are made safe to paste.
pub fn markdown(digest: &Digest, limit: usize) -> String {
    let clean = |t: &str| {
        crate::sanitize::line_for_terminal(t)
            .replace('|', "\\|")
            .replace('*', "\\*")
            .replace('_', "\\_")
    };
    let mut out = format!(
        "## Inventory changes {} → {} UTC\n\n",
        digest.since, digest.until
    );
    if digest.changes.is_empty() {
        out.push_str("Nothing changed.\n");
        return out;
    }
    let counts: Vec<String> = digest
        .counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("**{n}** {}", k.as_str()))
        .collect();
    out.push_str(&counts.join(" · "));
    out.push_str("\n\n");
    // Notable first: health, gone and power before the routine ones, newest first within.
    let mut notable: Vec<&MachineChange> = digest.changes.iter().collect();
    notable.sort_by_key(|c| {
        let rank = match c.kind {
            ChangeKind::Health => 0,
            ChangeKind::Gone => 1,
            ChangeKind::Power => 2,
            ChangeKind::Volume => 3,
            ChangeKind::Netbox => 4,
            ChangeKind::Moved => 5,
            ChangeKind::Appeared => 6,
            _ => 7,
        };
        (rank, std::cmp::Reverse(c.at.clone()))
    });
    for change in notable.iter().take(limit) {
        out.push_str(&format!(
            "- **{}** {}: {} _({}, {})_\n",
            change.kind.as_str(),
            clean(change.subject.name()),
            clean(&change.summary()),
            clean(&change.sources.join(", ")),
            change.at
        ));
    }
    if notable.len() > limit {
        out.push_str(&format!("- … and {} more\n", notable.len() - limit));
    }
    out
}

/// When a time word means: a duration back from `now` (`90m`, `8h`, `7d`), a date
/// (`2026-12-01`, midnight UTC), a date and time (`2026-12-01 22:00`, `2026-12-01T22:00:00Z`),
/// a time today (`22:00`, or yesterday when that is still ahead), or `last-look` (`last_look`,
/// when there is one). Times are UTC, as the database keeps them.
pub fn resolve_time(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
    last_look: Option<&str>,
) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
    let text = text.trim();
    if matches!(text, "last-look" | "last" | "lastlook") {
        return last_look.and_then(crate::time::parse).ok_or_else(|| {
            "there is no last look yet (the dashboard records one when it opens)".to_string()
        });
    }
    if text == "now" {
        return Ok(now);
    }
    if text.starts_with(|c: char| c.is_ascii_digit())
        && text.ends_with(|c: char| c.is_ascii_alphabetic())
        && let Ok(back) = crate::config::parse_duration(text)
    {
        let back = chrono::Duration::from_std(back).map_err(|e| e.to_string())?;
        return Ok(now - back);
    }
    let t = text.trim_end_matches('Z').replace('T', " ");
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(&t, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
        return Ok(day.and_time(NaiveTime::MIN).and_utc());
    }
    for format in ["%H:%M", "%H:%M:%S"] {
        if let Ok(time) = NaiveTime::parse_from_str(&t, format) {
            let today = now.date_naive().and_time(time).and_utc();
            return Ok(if today > now {
                today - chrono::Duration::days(1)
            } else {
                today
            });
        }
    }
    Err(format!(
        "`{text}` is not a time: use a duration back from now (90m, 8h, 7d), a date \
         (2026-12-01), a date and time (2026-12-01 22:00, UTC), a time today (22:00) or last-look"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_by_prefix_when_unambiguous() {
        assert_eq!(ChangeKind::named("power"), Some(ChangeKind::Power));
        assert_eq!(ChangeKind::named("app"), Some(ChangeKind::Appeared));
        assert_eq!(ChangeKind::named("re"), None, "resized or relationships");
        assert!(
            ChangeFilter::parse("kind:bogus")
                .unwrap_err()
                .contains("appeared")
        );
        let f = ChangeFilter::parse("kind:gone,power source:vcenter web").unwrap();
        assert_eq!(f.kinds, vec![ChangeKind::Gone, ChangeKind::Power]);
        assert_eq!(f.sources, vec!["vcenter".to_string()]);
        assert_eq!(f.text, "web");
    }

    #[test]
    fn times_read_as_people_write_them() {
        let now = crate::time::parse("2026-12-02 03:00:00").unwrap();
        let at =
            |t: &str| resolve_time(t, now, Some("2026-12-01 20:00:00")).map(crate::time::format);
        assert_eq!(at("8h").unwrap(), "2026-12-01 19:00:00");
        assert_eq!(at("1h30m").unwrap(), "2026-12-02 01:30:00");
        assert_eq!(at("2026-12-01").unwrap(), "2026-12-01 00:00:00");
        assert_eq!(at("2026-12-01T22:15:00Z").unwrap(), "2026-12-01 22:15:00");
        assert_eq!(at("2026-12-01 22:15").unwrap(), "2026-12-01 22:15:00");
        assert_eq!(at("02:00").unwrap(), "2026-12-02 02:00:00");
        assert_eq!(
            at("22:00").unwrap(),
            "2026-12-01 22:00:00",
            "still ahead today: yesterday"
        );
        assert_eq!(at("last-look").unwrap(), "2026-12-01 20:00:00");
        assert!(
            resolve_time("last-look", now, None)
                .unwrap_err()
                .contains("no last look")
        );
        assert!(at("yesterday-ish").unwrap_err().contains("not a time"));
    }

    #[test]
    fn line_changes_count_like_diff() {
        assert_eq!(line_changes("a\nb\nc\n", "a\nB\nc\nd\n"), (2, 1));
        assert_eq!(line_changes("", ""), (0, 0));
    }
}
