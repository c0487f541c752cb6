//! Full-text search (FTS5, ranked with bm25, with snippets) over devices and their facts, KB
//! pages and issues; and the knowledge that concerns a device.

use super::{Result, Store};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Device,
    KbArticle,
    Issue,
}

impl HitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Device => "device",
            HitKind::KbArticle => "kb",
            HitKind::Issue => "issue",
        }
    }
}

/// One search result. `score` is bm25's: lower is better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub kind: HitKind,
    /// Row id in `devices`, `kb_articles` or `issues`.
    pub id: i64,
    /// Device name, page title, or issue key and summary.
    pub title: String,
    /// Device type and source, page space, or issue status.
    pub detail: String,
    /// The matching text with matches between `[` and `]`.
    pub snippet: String,
    /// Page URL, when there is one.
    pub url: Option<String>,
    pub score: f64,
}

/// Turns what a person typed into an FTS5 query: every word becomes a quoted phrase (so
/// `web-0001` and `10.16.0.12` match as written and nothing is parsed as syntax), all must match;
/// a trailing `*` asks for a prefix.
pub fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split_whitespace()
        .filter_map(|word| {
            let (word, prefix) = match word.strip_suffix('*') {
                Some(w) => (w, true),
                None => (word, false),
            };
            let cleaned: String = word.chars().filter(|c| !c.is_control()).collect();
            if !cleaned.chars().any(char::is_alphanumeric) {
                return None;
            }
            let quoted = format!("\"{}\"", cleaned.replace('"', "\"\""));
            Some(if prefix { format!("{quoted}*") } else { quoted })
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// Phrases joined with OR: any of them matches.
fn any_of(phrases: &BTreeSet<String>) -> Option<String> {
    let quoted: Vec<String> = phrases
        .iter()
        .filter(|p| p.chars().any(char::is_alphanumeric))
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
}

/// A KB page or issue that concerns a device, and which of the device's names matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeHit {
    #[serde(flatten)]
    pub hit: SearchHit,
    /// The device names and addresses found in it.
    pub matched: Vec<String>,
}

impl Store {
    /// Searches `kinds` (all when empty) for `query`; best first across kinds, at most `limit`.
    pub fn search(&self, query: &str, kinds: &[HitKind], limit: usize) -> Result<Vec<SearchHit>> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        self.search_fts(&fts, kinds, limit)
    }

    fn search_fts(&self, fts: &str, kinds: &[HitKind], limit: usize) -> Result<Vec<SearchHit>> {
        let wants = |k: HitKind| kinds.is_empty() || kinds.contains(&k);
        let mut hits = Vec::new();
        let limit_sql = limit as i64;
        if wants(HitKind::Device) {
            let mut best: HashMap<i64, SearchHit> = HashMap::new();
            let mut stmt = self.conn().prepare_cached(
                "SELECT d.id, d.name, d.device_type || ' · ' || d.source_system || '/' || d.source_identifier, \
                 snippet(devices_fts, -1, '[', ']', '…', 12), bm25(devices_fts, 10.0, 2.0, 1.0) \
                 FROM devices_fts JOIN devices d ON d.id = devices_fts.rowid WHERE devices_fts MATCH ?1 \
                 ORDER BY bm25(devices_fts, 10.0, 2.0, 1.0) LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![fts, limit_sql], |r| {
                Ok(SearchHit {
                    kind: HitKind::Device,
                    id: r.get(0)?,
                    title: r.get(1)?,
                    detail: r.get(2)?,
                    snippet: r.get(3)?,
                    url: None,
                    score: r.get(4)?,
                })
            })?;
            for hit in rows {
                let hit = hit?;
                best.insert(hit.id, hit);
            }
            let mut stmt = self.conn().prepare_cached(
                "SELECT d.id, d.name, d.device_type || ' · ' || d.source_system || '/' || d.source_identifier, \
                 f.fact_name || ': ' || snippet(facts_fts, 1, '[', ']', '…', 10), bm25(facts_fts, 2.0, 1.0) \
                 FROM facts_fts JOIN server_facts f ON f.id = facts_fts.rowid JOIN devices d ON d.id = f.device_id \
                 WHERE facts_fts MATCH ?1 ORDER BY bm25(facts_fts, 2.0, 1.0) LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![fts, limit_sql], |r| {
                Ok(SearchHit {
                    kind: HitKind::Device,
                    id: r.get(0)?,
                    title: r.get(1)?,
                    detail: r.get(2)?,
                    snippet: r.get(3)?,
                    url: None,
                    score: r.get(4)?,
                })
            })?;
            for hit in rows {
                let hit = hit?;
                match best.get(&hit.id) {
                    Some(existing) if existing.score <= hit.score => {}
                    _ => {
                        best.insert(hit.id, hit);
                    }
                }
            }
            hits.extend(best.into_values());
        }
        if wants(HitKind::KbArticle) {
            let mut stmt = self.conn().prepare_cached(
                "SELECT k.id, k.title, COALESCE(k.space_key, ''), snippet(kb_fts, 1, '[', ']', '…', 14), k.url, \
                 bm25(kb_fts, 5.0, 1.0) FROM kb_fts JOIN kb_articles k ON k.id = kb_fts.rowid WHERE kb_fts MATCH ?1 \
                 ORDER BY bm25(kb_fts, 5.0, 1.0) LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![fts, limit_sql], |r| {
                Ok(SearchHit {
                    kind: HitKind::KbArticle,
                    id: r.get(0)?,
                    title: r.get(1)?,
                    detail: r.get(2)?,
                    snippet: r.get(3)?,
                    url: r.get(4)?,
                    score: r.get(5)?,
                })
            })?;
            for hit in rows {
                hits.push(hit?);
            }
        }
        if wants(HitKind::Issue) {
            let mut stmt = self.conn().prepare_cached(
                "SELECT i.id, i.issue_key || ' ' || COALESCE(i.summary, ''), COALESCE(i.status, '') || COALESCE(' · ' || i.resolution, ''), \
                 snippet(issues_fts, -1, '[', ']', '…', 14), bm25(issues_fts, 10.0, 4.0, 1.0, 1.0) \
                 FROM issues_fts JOIN issues i ON i.id = issues_fts.rowid WHERE issues_fts MATCH ?1 \
                 ORDER BY bm25(issues_fts, 10.0, 4.0, 1.0, 1.0) LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![fts, limit_sql], |r| {
                Ok(SearchHit {
                    kind: HitKind::Issue,
                    id: r.get(0)?,
                    title: r.get(1)?,
                    detail: r.get(2)?,
                    snippet: r.get(3)?,
                    url: None,
                    score: r.get(4)?,
                })
            })?;
            for hit in rows {
                hits.push(hit?);
            }
        }
        hits.sort_by(|a, b| a.score.total_cmp(&b.score));
        hits.truncate(limit);
        Ok(hits)
    }

    /// The names a device is known by, across its correlated records: names, short names,
    /// FQDNs and IP addresses.
    pub fn device_aliases(&self, device_id: i64) -> Result<BTreeSet<String>> {
        let mut ids = vec![device_id];
        ids.extend(
            self.related(device_id)?
                .into_iter()
                .filter(|r| r.relationship_type == crate::model::RelationshipType::SameAs)
                .map(|r| r.device.id),
        );
        let mut aliases = BTreeSet::new();
        for id in ids {
            let Some(device) = self.device(id)? else {
                continue;
            };
            aliases.insert(device.name.to_ascii_lowercase());
            aliases.insert(crate::sources::short_hostname(&device.name));
            if let Some(ns) = device.metadata_json().get(&device.source_system) {
                for key in ["fqdn", "hostname", "ip"] {
                    if let Some(v) = ns.get(key).and_then(|v| v.as_str()) {
                        aliases.insert(v.to_ascii_lowercase());
                    }
                }
            }
            for iface in self.interfaces(id)? {
                for ip in iface.interface.ip_addresses {
                    aliases.insert(ip.split('/').next().unwrap_or(&ip).to_string());
                }
            }
        }
        // Link-local and loopback addresses identify nothing.
        aliases.retain(|a| {
            a.len() >= 3 && !a.starts_with("fe80:") && !a.starts_with("127.") && a != "localhost"
        });
        Ok(aliases)
    }

    /// KB pages and issues that mention any name or address of the device, best first.
    pub fn related_knowledge(&self, device_id: i64, limit: usize) -> Result<Vec<KnowledgeHit>> {
        let aliases = self.device_aliases(device_id)?;
        let Some(fts) = any_of(&aliases) else {
            return Ok(Vec::new());
        };
        let hits = self.search_fts(&fts, &[HitKind::KbArticle, HitKind::Issue], limit)?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            let text = match hit.kind {
                HitKind::KbArticle => self.conn().query_row("SELECT title || ' ' || COALESCE(body_text, '') FROM kb_articles WHERE id = ?1", [hit.id], |r| r.get::<_, String>(0))?,
                _ => self.conn().query_row("SELECT issue_key || ' ' || COALESCE(summary, '') || ' ' || COALESCE(description, '') || ' ' || COALESCE(comments, '') FROM issues WHERE id = ?1", [hit.id], |r| r.get::<_, String>(0))?,
            };
            let lower = text.to_ascii_lowercase();
            let matched: Vec<String> = aliases
                .iter()
                .filter(|a| contains_word(&lower, a))
                .cloned()
                .collect();
            out.push(KnowledgeHit { hit, matched });
        }
        Ok(out)
    }
}

/// `needle` in `haystack` not glued to other word characters (so `web-01` is not in `web-010`).
fn contains_word(haystack: &str, needle: &str) -> bool {
    let word = |c: char| c.is_alphanumeric();
    haystack.match_indices(needle).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + needle.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_quoted_phrases() {
        assert_eq!(
            fts_query("web-0001 10.16.0.12").as_deref(),
            Some("\"web-0001\" \"10.16.0.12\"")
        );
        assert_eq!(fts_query("disk*").as_deref(), Some("\"disk\"*"));
        assert_eq!(
            fts_query("say \"hi\"").as_deref(),
            Some("\"say\" \"\"\"hi\"\"\"")
        );
        assert_eq!(fts_query("  -- ").as_deref(), None);
        assert!(contains_word("restart web-01 now", "web-01"));
        assert!(!contains_word("restart web-010 now", "web-01"));
    }
}
