//! Which facts move on every Puppet run, and how fact trees become stored facts.
//!
//! A fact is named by its path: PuppetDB's typed tree gives `memory.system.used_bytes`,
//! Foreman's flattened names give `memory::system::used_bytes`; both are the segments
//! `memory`, `system`, `used_bytes`. A volatile pattern is a path too, matched segment by
//! segment against the start of a fact's path, with `*` standing for any run of characters
//! inside one segment: `memory.*.used*` matches `memory.swap.used_bytes` and everything under
//! it, and never `freeipa_client` — the old substring rule ("free" anywhere) dropped such facts.
//!
//! Values that move on every run are left out rather than stored: recording them would write an
//! audit row per node per Puppet run and bury the changes that matter.

use serde_json::Value;
use std::collections::BTreeMap;

/// Compiled volatile-fact patterns: segments lower-cased once, matched without allocating
/// (this runs for every key of every node's fact tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolatileFacts {
    patterns: Vec<Vec<String>>,
}

impl VolatileFacts {
    /// Patterns as written in the config (`memory.*.used*`), vetted by the config loader.
    pub(crate) fn new<S: AsRef<str>>(patterns: &[S]) -> VolatileFacts {
        VolatileFacts {
            patterns: patterns
                .iter()
                .map(|p| p.as_ref().split('.').map(str::to_ascii_lowercase).collect())
                .collect(),
        }
    }

    /// Whether the fact at this path (or a tree it is part of) is volatile.
    pub(crate) fn matches(&self, path: &[&str]) -> bool {
        self.patterns.iter().any(|pattern| {
            pattern.len() <= path.len()
                && pattern
                    .iter()
                    .zip(path)
                    .all(|(glob, segment)| crate::text::glob_matches(glob, segment))
        })
    }

    /// Removes every volatile subtree from a typed fact tree.
    pub(crate) fn strip(&self, tree: &mut Value) {
        let live: Vec<&[String]> = self.patterns.iter().map(Vec::as_slice).collect();
        strip_at(tree, &live);
    }
}

/// Strips the children of `value` that a pattern (given as what remains of it below this
/// level) matches whole, and descends only into children some longer pattern can still reach.
fn strip_at(value: &mut Value, patterns: &[&[String]]) {
    let Value::Object(map) = value else { return };
    if patterns.is_empty() {
        return;
    }
    map.retain(|key, _| {
        !patterns
            .iter()
            .any(|p| p.len() == 1 && crate::text::glob_matches(&p[0], key))
    });
    for (key, child) in map.iter_mut() {
        let deeper: Vec<&[String]> = patterns
            .iter()
            .filter(|p| p.len() > 1 && crate::text::glob_matches(&p[0], key))
            .map(|p| &p[1..])
            .collect();
        if !deeper.is_empty() {
            strip_at(child, &deeper);
        }
    }
}

impl Default for VolatileFacts {
    fn default() -> Self {
        VolatileFacts::new(crate::config::DEFAULT_VOLATILE_FACTS)
    }
}

/// Top-level facts as stored text: strings as they are, other values as JSON. A null fact
/// (Facter's "could not resolve") is left out rather than stored as the text `null`.
pub(crate) fn top_level_texts(tree: &Value) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    if let Some(map) = tree.as_object() {
        for (name, value) in map {
            if let Some(text) = fact_text(value) {
                facts.insert(name.clone(), text);
            }
        }
    }
    facts
}

/// One fact value as stored text; `None` for null.
pub(crate) fn fact_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_whole_segments_not_substrings() {
        let v = VolatileFacts::default();
        for volatile in [
            &["memory", "system", "used_bytes"][..],
            &["memory", "swap", "used"],
            &["memory", "system", "capacity"],
            &["memory", "system", "available_bytes"],
            &["mountpoints", "/", "used_bytes"],
            &["mountpoints", "/var/lib", "capacity"],
            &["uptime_seconds"],
            &["system_uptime", "seconds"],
            &["load_averages", "1m"],
            &["memoryfree_mb"],
        ] {
            assert!(v.matches(volatile), "{volatile:?}");
        }
        for kept in [
            &["freeipa_client"][..],
            &["memory", "system", "total_bytes"],
            &["mountpoints", "/", "size_bytes"],
            &["disks", "sda", "size_bytes"],
            &["available_zones"],
            &["processors", "count"],
            &["memory"],
        ] {
            assert!(!v.matches(kept), "{kept:?}");
        }
    }

    #[test]
    fn strip_removes_subtrees_at_their_path_only() {
        let mut tree = json!({
            "memory": {"system": {"total_bytes": 1, "used_bytes": 2, "capacity": "3%"}},
            "mountpoints": {"/": {"size_bytes": 10, "used": "1 GiB", "available_bytes": 9}},
            "system_uptime": {"seconds": 5},
            "freeipa_client": "yes",
            "custom": {"uptime": "nested is not the top-level uptime fact"},
        });
        VolatileFacts::default().strip(&mut tree);
        assert_eq!(
            tree,
            json!({
                "memory": {"system": {"total_bytes": 1}},
                "mountpoints": {"/": {"size_bytes": 10}},
                "freeipa_client": "yes",
                "custom": {"uptime": "nested is not the top-level uptime fact"},
            })
        );
    }

    #[test]
    fn globs() {
        assert!(crate::text::glob_matches("used*", "used"));
        assert!(crate::text::glob_matches("used*", "used_bytes"));
        assert!(crate::text::glob_matches("*_bytes", "used_bytes"));
        assert!(crate::text::glob_matches("a*b*c", "axxbyyc"));
        assert!(!crate::text::glob_matches("used*", "unused"));
        assert!(crate::text::glob_matches("*", "anything"));
        assert!(crate::text::glob_matches("uptime*", "Uptime_days"));
        assert!(VolatileFacts::new(&["Uptime*"]).matches(&["uptime_days"]));
    }

    #[test]
    fn null_facts_are_not_stored() {
        let facts = top_level_texts(&json!({"a": null, "b": "x", "c": 3}));
        assert_eq!(facts.len(), 2);
        assert_eq!(facts["c"], "3");
    }
}
