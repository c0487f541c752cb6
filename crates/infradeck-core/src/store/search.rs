//! Full-text search (FTS5, ranked with bm25, with snippets) over devices and their facts, KB
//! pages and issues; and the knowledge that concerns a device.

use super::{Result, Store};
use rusqlite::OptionalExtension;
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

    /// A kind as people write it after `type:` or `--type`.
    pub fn parse(text: &str) -> std::result::Result<HitKind, String> {
        match text.to_ascii_lowercase().as_str() {
            "device" | "devices" | "machine" | "machines" => Ok(HitKind::Device),
            "kb" | "page" | "pages" | "runbook" | "runbooks" => Ok(HitKind::KbArticle),
            "issue" | "issues" | "ticket" | "tickets" => Ok(HitKind::Issue),
            other => Err(format!(
                "unknown type `{}` (expected device, kb or issue)",
                crate::sanitize::for_terminal(other)
            )),
        }
    }
}

/// Splits `type:KIND[,KIND]` words out of a query, as the dashboard and the CLI accept them:
/// the kinds asked for, and the rest of the words.
pub(crate) fn split_kinds(query: &str) -> std::result::Result<(Vec<HitKind>, String), String> {
    let mut kinds = Vec::new();
    let mut words = Vec::new();
    for word in query.split_whitespace() {
        match word
            .strip_prefix("type:")
            .or_else(|| word.strip_prefix("TYPE:"))
        {
            Some(list) => {
                for kind in list.split(',').filter(|k| !k.is_empty()) {
                    let kind = HitKind::parse(kind)?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
            }
            None => words.push(word),
        }
    }
    Ok((kinds, words.join(" ")))
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
    pub(crate) score: f64,
    /// How directly the hit answers the query (0 best): see [`Tier`].
    #[serde(skip)]
    pub(crate) tier: Tier,
    /// An open issue (unresolved); ranked before resolved ones of the same tier.
    #[serde(skip)]
    pub(crate) open: bool,
    /// The query identifies this hit: a machine's name, address, serial or FQDN, or a ticket's
    /// key. Semantic ranking then keeps full text's order (see `search::fuse`).
    #[serde(skip)]
    pub(crate) identified: bool,
}

/// How directly a hit answers a query, best first. Full-text scores of different tables are
/// not comparable, so hits are ordered by tier first and by bm25 only within a tier; a
/// metadata blob that happens to contain a host name never outranks the host or its runbook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// The query is the machine's name (or short name), or the ticket's key.
    Named,
    /// The query is in a name or title, or equals an identifying field (address, serial, FQDN).
    Titled,
    /// In the words of a runbook or ticket.
    Text,
    /// Only in metadata or an incidental fact.
    #[default]
    Incidental,
}

/// The words of a query as they are compared with names and fields: lowercase, without a
/// trailing `*`, only those with a letter or digit.
fn query_words(query: &str) -> Vec<String> {
    query
        .split_whitespace()
        .map(|w| w.trim_end_matches('*').trim_matches('"').to_lowercase())
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

/// Metadata and fact fields that identify a machine: a query equal to one is as good as a name.
const IDENTIFYING_FIELDS: &[&str] = &[
    "ip",
    "ip_address",
    "ipaddress",
    "ipaddress6",
    "ips",
    "address",
    "addresses",
    "fqdn",
    "hostname",
    "dns_name",
    "name",
    "mac",
    "macaddress",
    "mac_address",
    "serial",
    "serial_number",
    "serialnumber",
    "uuid",
    "instance_uuid",
    "bios_uuid",
    "moid",
    "wwn",
    "certname",
    "management_ip",
    "guest_ip",
];

/// The first field of a device's metadata whose value contains one of `words`, as
/// `key: value` with the word between `[` and `]` (the snippet convention), and whether the
/// field identifies the machine. The source namespace (`{"vcenter": {...}}`) is left out of
/// the key.
fn matching_field(metadata: &serde_json::Value, words: &[String]) -> Option<(String, bool)> {
    match metadata {
        serde_json::Value::Object(map) => map.iter().find_map(|(key, value)| {
            let path = if value.is_object() { "" } else { key.as_str() };
            matching_leaf(value, path, words)
        }),
        other => matching_leaf(other, "", words),
    }
}

/// [`matching_field`] below `path`.
fn matching_leaf(
    value: &serde_json::Value,
    path: &str,
    words: &[String],
) -> Option<(String, bool)> {
    use serde_json::Value;
    let text = match value {
        Value::Object(map) => {
            return map.iter().find_map(|(key, inner)| {
                let inner_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                matching_leaf(inner, &inner_path, words)
            });
        }
        Value::Array(items) => {
            return items
                .iter()
                .find_map(|item| matching_leaf(item, path, words));
        }
        Value::Null => return None,
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let lower = text.to_lowercase();
    let word = words.iter().find(|w| lower.contains(w.as_str()))?;
    // Facts name their fields with `::` (`dmi::product::serial_number`), metadata with `.`.
    let field = path.rsplit(['.', ':']).next().unwrap_or(path);
    // An identifying field counts when it is the word (an address may carry its prefix length).
    let identifying = IDENTIFYING_FIELDS.contains(&field)
        && (lower == *word || lower.split('/').next() == Some(word.as_str()));
    let key = if path.is_empty() { "value" } else { path };
    Some((format!("{key}: {}", bracket(&text, word)), identifying))
}

/// `text` with the first case-insensitive occurrence of `word` between `[` and `]`, cut to about
/// 80 characters around it (by characters, never bytes).
fn bracket(text: &str, word: &str) -> String {
    let flat = one_line(text);
    let lower: Vec<char> = flat.to_lowercase().chars().collect();
    let chars: Vec<char> = flat.chars().collect();
    let needle: Vec<char> = word.chars().collect();
    // Lowercasing can change the number of characters; then no brackets, just the cut text.
    let at = (lower.len() == chars.len() && !needle.is_empty())
        .then(|| {
            lower
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
        })
        .flatten();
    let Some(at) = at else {
        return crate::text::clip_chars(&flat, 80).into_owned();
    };
    let start = at.saturating_sub(30);
    let end = (at + needle.len() + 40).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&chars[start..at]);
    out.push('[');
    out.extend(&chars[at..at + needle.len()]);
    out.push(']');
    out.extend(&chars[at + needle.len()..end]);
    if end < chars.len() {
        out.push('…');
    }
    out
}

/// Line breaks and runs of white space as single spaces: a snippet is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` contains every word.
fn has_all(text: &str, words: &[String]) -> bool {
    let lower = text.to_lowercase();
    !words.is_empty() && words.iter().all(|w| lower.contains(w.as_str()))
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
    /// `type:KIND` words in the query narrow the kinds further.
    pub fn search(&self, query: &str, wanted: &[HitKind], limit: usize) -> Result<Vec<SearchHit>> {
        let (mut kinds, text) = split_kinds(query).map_err(super::Error::Query)?;
        if kinds.is_empty() {
            kinds = wanted.to_vec();
        } else if !wanted.is_empty() {
            kinds.retain(|k| wanted.contains(k));
        }
        let Some(fts) = fts_query(&text) else {
            return Ok(Vec::new());
        };
        self.search_fts(&fts, &query_words(&text), &kinds, limit)
    }

    /// The hits of an FTS query, each machine once (its best record), ranked by [`Tier`], then
    /// (within a tier) runbooks before tickets and open tickets before resolved ones, then bm25.
    /// `words` are what the person typed, for tiers and field snippets; none for lookups.
    fn search_fts(
        &self,
        fts: &str,
        words: &[String],
        kinds: &[HitKind],
        limit: usize,
    ) -> Result<Vec<SearchHit>> {
        let wants = |k: HitKind| kinds.is_empty() || kinds.contains(&k);
        let mut hits = Vec::new();
        if wants(HitKind::Device) {
            // Best hit per machine (a record without one is its own machine).
            let mut best: HashMap<i64, SearchHit> = HashMap::new();
            let mut keep = |machine: i64, hit: SearchHit| {
                let better = best
                    .get(&machine)
                    .is_none_or(|b| (hit.tier, hit.score) < (b.tier, b.score));
                if better {
                    best.insert(machine, hit);
                }
            };
            for (rowid, score) in self.top_ranked("devices_fts", fts, limit)? {
                if let Some((machine, hit)) = self.device_hit(rowid, words, score)? {
                    keep(machine, hit);
                }
            }
            for (rowid, score) in self.top_ranked("facts_fts", fts, limit)? {
                let fact: Option<(i64, String, Option<String>)> = self
                    .conn()
                    .prepare_cached(
                        "SELECT device_id, fact_name, fact_value FROM server_facts WHERE id = ?1",
                    )?
                    .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let Some((device_id, name, value)) = fact else {
                    continue;
                };
                let Some((machine, mut hit)) = self.device_hit(device_id, &[], score)? else {
                    continue;
                };
                let value = value.unwrap_or_default();
                // A structured fact (JSON) shows the field inside it that matched.
                let document = serde_json::from_str::<serde_json::Value>(&value)
                    .ok()
                    .filter(|v| v.is_object() || v.is_array())
                    .unwrap_or(serde_json::Value::String(value));
                let (snippet, identifying) = match matching_leaf(&document, &name, words) {
                    Some(found) => found,
                    None => (
                        format!("{name}: {}", self.snippet("facts_fts", 1, fts, rowid, 10)?),
                        false,
                    ),
                };
                hit.snippet = one_line(&snippet);
                hit.tier = if identifying {
                    Tier::Titled
                } else {
                    Tier::Incidental
                };
                hit.identified = identifying;
                keep(machine, hit);
            }
            hits.extend(best.into_values());
        }
        if wants(HitKind::KbArticle) {
            for (rowid, score) in self.top_ranked("kb_fts", fts, limit)? {
                let snippet = self.snippet("kb_fts", 1, fts, rowid, 14)?;
                if let Some(mut hit) = self.knowledge_hit(HitKind::KbArticle, rowid)? {
                    hit.tier = if has_all(&hit.title, words) {
                        Tier::Titled
                    } else {
                        Tier::Text
                    };
                    hit.snippet = one_line(&snippet);
                    hit.score = score;
                    hits.push(hit);
                }
            }
        }
        if wants(HitKind::Issue) {
            for (rowid, score) in self.top_ranked("issues_fts", fts, limit)? {
                let snippet = self.snippet("issues_fts", -1, fts, rowid, 14)?;
                if let Some(mut hit) = self.knowledge_hit(HitKind::Issue, rowid)? {
                    let key = hit
                        .title
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_lowercase();
                    hit.identified = words.len() == 1 && words[0] == key;
                    hit.tier = if hit.identified {
                        Tier::Named
                    } else if has_all(&hit.title, words) {
                        Tier::Titled
                    } else {
                        Tier::Text
                    };
                    hit.snippet = one_line(&snippet);
                    hit.score = score;
                    hits.push(hit);
                }
            }
        }
        // A query that names a machine asks about that machine: after it come its runbooks and
        // tickets (wherever in them the name is), then whatever else mentions it.
        let names_a_machine = hits
            .iter()
            .any(|h| h.kind == HitKind::Device && h.tier == Tier::Named);
        if names_a_machine {
            for hit in &mut hits {
                if hit.kind != HitKind::Device {
                    hit.tier = hit.tier.min(Tier::Titled);
                }
            }
        }
        let kind_order = |k: HitKind| match k {
            HitKind::Device => 0,
            HitKind::KbArticle => 1,
            HitKind::Issue => 2,
        };
        hits.sort_by(|a, b| {
            (a.tier, kind_order(a.kind), !a.open)
                .cmp(&(b.tier, kind_order(b.kind), !b.open))
                .then(a.score.total_cmp(&b.score))
        });
        hits.truncate(limit);
        Ok(hits)
    }

    /// The best `limit` rows of an FTS table for a query, through FTS5's top-N `ORDER BY rank`.
    /// Snippets are made afterwards for these rows only: in the same statement SQLite would make
    /// one for every match before sorting.
    fn top_ranked(&self, table: &'static str, fts: &str, limit: usize) -> Result<Vec<(i64, f64)>> {
        let sql = format!(
            "SELECT rowid, rank FROM {table} WHERE {table} MATCH ?1 ORDER BY rank LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params![fts, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn snippet(
        &self,
        table: &'static str,
        column: i32,
        fts: &str,
        rowid: i64,
        tokens: i32,
    ) -> Result<String> {
        let sql = format!(
            "SELECT snippet({table}, {column}, '[', ']', '…', {tokens}) FROM {table} WHERE {table} MATCH ?1 AND rowid = ?2"
        );
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row(rusqlite::params![fts, rowid], |r| {
                super::lossy_text(r, 0, table, rowid, "snippet")
            })
            .optional()?
            .flatten()
            .unwrap_or_default())
    }

    /// A device record as a hit, with the machine it belongs to (its own id negated when it has
    /// none), its tier for `words`, and as snippet the metadata field that matched as
    /// `key: value` (never the raw JSON).
    fn device_hit(
        &self,
        device_id: i64,
        words: &[String],
        score: f64,
    ) -> Result<Option<(i64, SearchHit)>> {
        let row: Option<(i64, String, String, String)> = self
            .conn()
            .prepare_cached(
                "SELECT COALESCE(machine_id, -id), name, device_type || ' · ' || source_system || '/' || source_identifier, COALESCE(metadata, '{}') FROM devices WHERE id = ?1",
            )?
            .query_row([device_id], |r| {
                let text = |i, column| super::lossy_text(r, i, "devices", device_id, column);
                Ok((
                    r.get(0)?,
                    text(1, "name")?.unwrap_or_default(),
                    text(2, "device_type/source")?.unwrap_or_default(),
                    text(3, "metadata")?.unwrap_or_default(),
                ))
            })
            .optional()?;
        let Some((machine, name, detail, metadata)) = row else {
            return Ok(None);
        };
        let lower = name.to_lowercase();
        let short = crate::model::short_hostname(&name);
        let whole = words.join(" ");
        let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap_or_default();
        let field = matching_field(&metadata, words);
        let tier = if !words.is_empty() && (whole == lower || whole == short) {
            Tier::Named
        } else if has_all(&name, words) || field.as_ref().is_some_and(|(_, id)| *id) {
            Tier::Titled
        } else {
            Tier::Incidental
        };
        let snippet = match (&field, tier) {
            (Some((text, _)), Tier::Titled | Tier::Incidental) => one_line(text),
            _ => String::new(),
        };
        let identified = tier == Tier::Named || field.as_ref().is_some_and(|(_, id)| *id);
        Ok(Some((
            machine,
            SearchHit {
                kind: HitKind::Device,
                id: device_id,
                title: name,
                detail,
                snippet,
                url: None,
                score,
                tier,
                open: false,
                identified,
            },
        )))
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
            aliases.insert(crate::model::short_hostname(&device.name));
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
        aliases.retain(|a| identifies_a_machine(a));
        Ok(aliases)
    }

    /// KB pages and issues that mention any name or address of the device, best first.
    pub fn related_knowledge(&self, device_id: i64, limit: usize) -> Result<Vec<KnowledgeHit>> {
        let aliases = self.device_aliases(device_id)?;
        let Some(fts) = any_of(&aliases) else {
            return Ok(Vec::new());
        };
        let hits = self.search_fts(&fts, &[], &[HitKind::KbArticle, HitKind::Issue], limit)?;
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

/// Whether a name or address can tell a machine: not too short, not link-local or loopback.
fn identifies_a_machine(alias: &str) -> bool {
    alias.chars().count() >= 3
        && !alias.starts_with("fe80:")
        && !alias.starts_with("127.")
        && alias != "localhost"
}

/// One record of a machine, its metadata parsed once for the machine's text and its names.
struct MachineRecord {
    machine: i64,
    name: String,
    source: String,
    metadata: serde_json::Value,
}

/// Every part of `token` of at most `longest` bytes that starts and ends at a boundary
/// between letters or digits and something else (`web-01.dc1.example.net` → `web-01`,
/// `web-01.dc1`, …, `dc1.example`, …): the strings [`contains_word`] would find in it.
fn bounded_parts(token: &str, longest: usize) -> Vec<&str> {
    let word = |c: char| c.is_alphanumeric();
    // Byte offsets where a run of letters and digits starts and ends.
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in token.char_indices() {
        if word(c) && !previous.is_some_and(word) {
            starts.push(at);
        }
        if !word(c) && previous.is_some_and(word) {
            ends.push(at);
        }
        previous = Some(c);
    }
    if previous.is_some_and(word) {
        ends.push(token.len());
    }
    let mut parts = Vec::new();
    for &start in &starts {
        for &end in ends
            .iter()
            .filter(|&&end| end > start)
            .take_while(|&&end| end - start <= longest)
        {
            if let Some(part) = token.get(start..end) {
                parts.push(part);
            }
        }
    }
    parts
}

/// `needle` in `haystack` not glued to other word characters (so `web-01` is not in `web-010`).
fn contains_word(haystack: &str, needle: &str) -> bool {
    let word = |c: char| c.is_alphanumeric();
    haystack.match_indices(needle).any(|(i, _)| {
        let (head, tail) = haystack.split_at(i);
        let before = head.chars().next_back();
        let after = tail.chars().nth(needle.chars().count());
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// The embedding vectors of one model, unit length, in one contiguous matrix: brute-force cosine
/// over 100,000 chunks of 384 dimensions is a few tens of milliseconds, well under an index's
/// complexity. Cached by the store and rebuilt when the database changes.
pub(crate) struct VectorIndex {
    generation: super::name_index::Generation,
    model: String,
    dimensions: usize,
    owners: Vec<(HitKind, i64)>,
    data: Vec<f32>,
}

fn kind_of_content(content_type: &str) -> Option<HitKind> {
    match content_type {
        "kb_article" => Some(HitKind::KbArticle),
        "issue" => Some(HitKind::Issue),
        "device" => Some(HitKind::Device),
        _ => None,
    }
}

/// Dot product with eight independent accumulators: float addition is not associative, so a
/// plain `sum()` stays sequential, while eight lanes let the compiler use SIMD (measured: the
/// hybrid benchmark went from ~64 ms to well under its 50 ms target).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for lane in 0..8 {
            lanes[lane] += a[i * 8 + lane] * b[i * 8 + lane];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

/// The `embeddings.content_type` of a hit kind.
pub fn content_type_of(kind: HitKind) -> &'static str {
    match kind {
        HitKind::KbArticle => "kb_article",
        HitKind::Issue => "issue",
        HitKind::Device => "device",
    }
}

impl Store {
    /// Every KB page and issue as (kind, row id, text to embed).
    pub fn knowledge_texts(&self) -> Result<Vec<(HitKind, i64, String)>> {
        let mut out = Vec::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, title || char(10) || COALESCE(body_text, '') FROM kb_articles ORDER BY id",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (id, text) = row?;
            out.push((HitKind::KbArticle, id, text));
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, issue_key || ' ' || COALESCE(summary, '') || char(10) || COALESCE(description, '') || char(10) || COALESCE(comments, '') FROM issues ORDER BY id",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (id, text) = row?;
            out.push((HitKind::Issue, id, text));
        }
        Ok(out)
    }

    /// Every machine as (Device, its primary record's id, a short text to embed): its name,
    /// what it is, its OS, where it runs (cluster, host, datacenter, location), its role and
    /// group, and the titles of up to three runbooks (KB pages) that mention it, so "the
    /// database servers in dc2" can find machines.
    pub fn machine_texts(&self) -> Result<Vec<(HitKind, i64, String)>> {
        // Metadata keys the sources use for these facts (vCenter, Foreman, PuppetDB, Oxidized,
        // the arrays), in the order the text gives them; each entry's first key found says it: Foreman's and PuppetDB's OS names read better
        // than vCenter's guest ids. Short, because a machine's text is embedded after every
        // correlation that changes it and the model's time grows with its length.
        const KEYS: [(&str, &[&str]); 7] = [
            ("os", &["os", "operatingsystem", "guest_os", "os_family"]),
            ("model", &["model"]),
            ("role", &["role", "hostgroup", "group"]),
            ("environment", &["environment"]),
            ("cluster", &["cluster"]),
            ("datacenter", &["datacenter", "location", "site"]),
            ("vendor", &["vendor"]),
        ];
        let mut stmt = self.conn().prepare_cached(
            "SELECT m.id, m.primary_device_id, m.name, m.device_type, \
             (SELECT group_concat(name, ' ') FROM (SELECT p.name FROM device_relationships r \
              JOIN devices p ON p.id = r.parent_device_id \
              WHERE r.child_device_id = d.id AND r.relationship_type = 'hosts' ORDER BY p.name)) \
             FROM machines m JOIN devices d ON d.id = m.primary_device_id \
             WHERE m.status <> 'inactive' ORDER BY m.id",
        )?;
        // (machine id, primary device id, name, device type, the hosts it runs on)
        type MachineRow = (i64, i64, String, String, Option<String>);
        let rows: Vec<MachineRow> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // Every record of every machine in one query, each machine's primary first, then in an
        // order that does not depend on row ids (they differ between databases synced in
        // different orders; the text must not).
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.machine_id, d.name, d.source_system, d.metadata FROM devices d \
             JOIN machines m ON m.id = d.machine_id \
             ORDER BY d.machine_id, d.id <> m.primary_device_id, d.source_system, \
             d.source_identifier, d.source_id",
        )?;
        let records: Vec<MachineRecord> = stmt
            .query_map([], |r| {
                let metadata: Option<String> = r.get(3)?;
                Ok(MachineRecord {
                    machine: r.get(0)?,
                    name: r.get(1)?,
                    source: r.get(2)?,
                    metadata: metadata
                        .and_then(|m| serde_json::from_str(&m).ok())
                        .unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mentions = self.runbook_mentions(&records)?;
        let mut namespaces_of: HashMap<i64, Vec<&serde_json::Value>> = HashMap::new();
        for record in &records {
            // Each source keeps its fields under its own name: `{"vcenter": {...}}`.
            let namespaces = namespaces_of.entry(record.machine).or_default();
            match &record.metadata {
                serde_json::Value::Object(map) if map.values().all(|v| v.is_object()) => {
                    namespaces.extend(map.values());
                }
                other => namespaces.push(other),
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for (machine_id, device_id, name, device_type, hosts) in rows {
            let namespaces = namespaces_of.remove(&machine_id).unwrap_or_default();
            let what = match device_type.as_str() {
                "vm" => "virtual machine",
                "network_device" => "network switch",
                "storage" => "storage array",
                "cluster" => "cluster",
                "container" => "container",
                _ => "server",
            };
            let mut words = vec![name.clone(), what.to_string()];
            let mut said: Vec<String> = Vec::new();
            for (label, keys) in KEYS {
                // A VM's hardware model is its hypervisor's virtual platform: nothing to say.
                if label == "model" && device_type == "vm" {
                    continue;
                }
                let value = keys
                    .iter()
                    .flat_map(|key| {
                        namespaces
                            .iter()
                            .filter_map(|ns| ns.get(*key).and_then(|v| v.as_str()))
                    })
                    .map(str::trim)
                    .find(|v| !v.is_empty());
                // A value said already is not repeated (the vendor in the model's name); a part
                // of the name is not "said" (role `db` of `db-0314` is worth its label).
                if let Some(value) = value {
                    let lower = value.to_lowercase();
                    if !said.iter().any(|v| contains_word(v, &lower)) {
                        said.push(lower);
                        words.push(format!("{label} {value}"));
                    }
                }
            }
            if let Some(hosts) = hosts.filter(|h| !h.is_empty()) {
                words.push(format!("on {hosts}"));
            }
            // Runbooks only: a ticket's title ("Disk full on db-03") would make the machine
            // answer for its incidents, ahead of the pages that say what to do.
            if let Some(titles) = mentions.get(&machine_id) {
                let titles: Vec<&str> = titles.iter().take(3).map(String::as_str).collect();
                words.push(format!("mentioned in {}", titles.join("; ")));
            }
            out.push((HitKind::Device, device_id, words.join(", ")));
        }
        Ok(out)
    }

    /// For each machine (by id), the titles of the KB pages that mention one of its names,
    /// short names, FQDNs or addresses as a whole word ([`contains_word`]: `web-01` is not in
    /// `web-010`), pages that say it in their title first, then by title. Built in one pass over
    /// the pages with a map of every machine's names (from `records`, every machine's), instead
    /// of one full-text query per machine: it runs after every correlation, and 10,000 queries
    /// took seconds.
    fn runbook_mentions(&self, records: &[MachineRecord]) -> Result<HashMap<i64, Vec<String>>> {
        let mut by_alias: HashMap<String, Vec<i64>> = HashMap::new();
        let mut add = |alias: String, machine: i64| {
            // Pages are compared lowercased, and a word's ends are letters or digits (`web01.`
            // is written `web01` in a sentence).
            let alias = alias
                .to_lowercase()
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_string();
            if !identifies_a_machine(&alias) {
                return;
            }
            let machines = by_alias.entry(alias).or_default();
            if !machines.contains(&machine) {
                machines.push(machine);
            }
        };
        for record in records {
            add(crate::model::short_hostname(&record.name), record.machine);
            add(record.name.clone(), record.machine);
            if let Some(ns) = record.metadata.get(&record.source) {
                for key in ["fqdn", "hostname", "ip"] {
                    if let Some(v) = ns.get(key).and_then(|v| v.as_str()) {
                        add(v.to_string(), record.machine);
                    }
                }
            }
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.machine_id, i.ip_addresses FROM network_interfaces i \
             JOIN devices d ON d.id = i.device_id \
             WHERE d.machine_id IS NOT NULL AND i.ip_addresses IS NOT NULL",
        )?;
        let addresses =
            stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in addresses {
            let (machine, ips) = row?;
            for ip in serde_json::from_str::<Vec<String>>(&ips).unwrap_or_default() {
                add(ip.split('/').next().unwrap_or(&ip).to_string(), machine);
            }
        }
        // Names with characters a page's words are not split into (a VM called `sql 01 (old)`)
        // are looked for in the whole text of the pages that have their first word.
        let is_word = |c: char| c.is_alphanumeric() || "-._:".contains(c);
        let mut odd: HashMap<&str, Vec<(&String, &Vec<i64>)>> = HashMap::new();
        for (alias, machines) in by_alias.iter().filter(|(a, _)| !a.chars().all(is_word)) {
            if let Some(first) = alias.split(|c: char| !c.is_alphanumeric()).next() {
                odd.entry(first).or_default().push((alias, machines));
            }
        }
        // No alias is longer: a longer part of a word cannot be one (and a pasted 100 kB
        // token must not be cut into every part of it).
        let longest = by_alias.keys().map(String::len).max().unwrap_or(0);
        let mut found: HashMap<i64, Vec<(bool, String)>> = HashMap::new();
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT title, COALESCE(body_text, '') FROM kb_articles")?;
        let pages = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for page in pages {
            let (title, body) = page?;
            let (title_lower, body_lower) = (title.to_lowercase(), body.to_lowercase());
            let mut mentioned: HashMap<i64, bool> = HashMap::new();
            for (text, in_title) in [(&title_lower, true), (&body_lower, false)] {
                let mut note = |machines: &Vec<i64>| {
                    for machine in machines {
                        *mentioned.entry(*machine).or_default() |= in_title;
                    }
                };
                let mut odd_here: Vec<(&String, &Vec<i64>)> = Vec::new();
                for token in text.split(|c: char| !is_word(c)) {
                    for candidate in bounded_parts(token, longest) {
                        if let Some(machines) = by_alias.get(candidate) {
                            note(machines);
                        }
                    }
                    if !odd.is_empty() {
                        for run in token.split(|c: char| !c.is_alphanumeric()) {
                            if let Some(aliases) = odd.get(run) {
                                odd_here.extend(aliases);
                            }
                        }
                    }
                }
                odd_here.sort();
                odd_here.dedup();
                for (alias, machines) in odd_here {
                    if contains_word(text, alias) {
                        note(machines);
                    }
                }
            }
            for (machine, in_title) in mentioned {
                found
                    .entry(machine)
                    .or_default()
                    .push((in_title, title.clone()));
            }
        }
        Ok(found
            .into_iter()
            .map(|(machine, mut pages)| {
                pages.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                pages.dedup();
                (machine, pages.into_iter().map(|(_, title)| title).collect())
            })
            .collect())
    }

    /// The chunk texts stored for one piece of content and model, in order.
    pub(crate) fn embedded_chunks(
        &self,
        kind: HitKind,
        content_id: i64,
        model: &str,
    ) -> Result<Vec<String>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT COALESCE(text_content, '') FROM embeddings WHERE content_type = ?1 AND content_id = ?2 AND embedding_model = ?3 ORDER BY chunk_index",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![content_type_of(kind), content_id, model],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The `k` pieces of content of `kinds` (all when empty) whose best chunk is closest
    /// (cosine) to `query`, best first. Kinds are chosen before the best are: thousands of
    /// machines would otherwise crowd the runbooks out of a `type:kb` query.
    pub fn vector_search(
        &self,
        model: &str,
        query: &[f32],
        kinds: &[HitKind],
        k: usize,
    ) -> Result<Vec<(HitKind, i64, f32)>> {
        let generation = self.generation()?;
        let mut cached = self.vectors.borrow_mut();
        if cached.as_ref().is_none_or(|v| {
            v.generation != generation || v.model != model || v.dimensions != query.len()
        }) {
            *cached = Some(self.build_vectors(generation, model, query.len())?);
        }
        let Some(index) = cached.as_ref() else {
            return Ok(Vec::new());
        };
        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 || index.owners.is_empty() {
            return Ok(Vec::new());
        }
        let q: Vec<f32> = query.iter().map(|x| x / norm).collect();
        let wanted = |row: usize| kinds.is_empty() || kinds.contains(&index.owners[row].0);
        let mut scored: Vec<(f32, usize)> = index
            .data
            .chunks_exact(index.dimensions)
            .enumerate()
            .filter(|(row, _)| wanted(*row))
            .map(|(row, vector)| (dot(vector, &q), row))
            .collect();
        // Linear-time selection of the best candidates instead of sorting every chunk; enough of
        // them that k distinct documents survive even when several chunks of one document score
        // high.
        let candidates = (k * 16).min(scored.len());
        if candidates < scored.len() {
            scored.select_nth_unstable_by(candidates, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(candidates);
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut seen = std::collections::HashSet::new();
        let mut ranked = Vec::with_capacity(k);
        for (score, row) in scored {
            let (kind, id) = index.owners[row];
            if seen.insert((kind, id)) {
                ranked.push((kind, id, score));
                if ranked.len() == k {
                    break;
                }
            }
        }
        Ok(ranked)
    }

    fn build_vectors(
        &self,
        generation: super::name_index::Generation,
        model: &str,
        dimensions: usize,
    ) -> Result<VectorIndex> {
        let mut index = VectorIndex {
            generation,
            model: model.to_string(),
            dimensions,
            owners: Vec::new(),
            data: Vec::new(),
        };
        let mut stmt = self.conn().prepare("SELECT content_type, content_id, embedding_vector FROM embeddings WHERE embedding_model = ?1")?;
        let mut rows = stmt.query([model])?;
        while let Some(row) = rows.next()? {
            let Some(kind) =
                kind_of_content(row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?)
            else {
                continue;
            };
            let bytes = row
                .get_ref(2)?
                .as_blob_or_null()
                .map_err(rusqlite::Error::from)?
                .unwrap_or_default();
            if bytes.len() != dimensions * 4 {
                continue; // another dimension: a different model configuration
            }
            let vector = super::decode_vector(bytes);
            let norm = vector
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            index.data.extend(vector.iter().map(|x| x / norm));
            index.owners.push((kind, row.get(1)?));
        }
        Ok(index)
    }

    /// The record that stands for `device_id`'s machine (its primary record), or the record
    /// itself when it belongs to no machine: what a machine's vectors are stored under.
    pub fn primary_record_of(&self, device_id: i64) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT m.primary_device_id FROM devices d JOIN machines m ON m.id = d.machine_id \
                 WHERE d.id = ?1",
            )?
            .query_row([device_id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .unwrap_or(device_id))
    }

    /// A hit for one KB page or issue, without a match snippet (for semantic results).
    pub fn knowledge_hit(&self, kind: HitKind, id: i64) -> Result<Option<SearchHit>> {
        let sql = match kind {
            HitKind::KbArticle => {
                "SELECT title, COALESCE(space_key, ''), substr(COALESCE(body_text, ''), 1, 160), url, 0 FROM kb_articles WHERE id = ?1"
            }
            HitKind::Issue => {
                "SELECT issue_key || ' ' || COALESCE(summary, ''), COALESCE(status, '') || COALESCE(' · ' || resolution, ''), substr(COALESCE(description, ''), 1, 160), NULL, resolution IS NULL AND COALESCE(resolved_at, '') = '' FROM issues WHERE id = ?1"
            }
            HitKind::Device => {
                "SELECT name, device_type || ' · ' || source_system, '', NULL, 0 FROM devices WHERE id = ?1"
            }
        };
        Ok(self
            .conn()
            .prepare_cached(sql)?
            .query_row([id], |r| {
                let text = |i, column| super::lossy_text(r, i, "search", id, column);
                Ok(SearchHit {
                    kind,
                    id,
                    title: text(0, "title")?.unwrap_or_default(),
                    detail: text(1, "detail")?.unwrap_or_default(),
                    snippet: one_line(&text(2, "snippet")?.unwrap_or_default()),
                    url: text(3, "url")?,
                    score: 0.0,
                    tier: Tier::default(),
                    open: r.get(4)?,
                    identified: false,
                })
            })
            .optional()?)
    }
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
        assert_eq!(
            bounded_parts("web-01.dc1", 100),
            vec!["web", "web-01", "web-01.dc1", "01", "01.dc1", "dc1"]
        );
        assert_eq!(
            bounded_parts("web-01.dc1", 6),
            vec!["web", "web-01", "01", "01.dc1", "dc1"]
        );
        assert_eq!(
            bounded_parts("(10.0.0.1).", 100),
            bounded_parts("10.0.0.1", 100)
        );
        assert!(bounded_parts("--", 100).is_empty());
        // A pasted token of 20,000 parts gives only those no longer than the longest name.
        let pasted = "a-".repeat(20_000);
        assert_eq!(bounded_parts(&pasted, 3).len(), 2 * 20_000 - 1);
        assert!(!contains_word("restart web-010 now", "web-01"));
    }
}
