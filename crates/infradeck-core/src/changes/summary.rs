//! How a recorded change reads for people: `key: old → new` summaries of `sync_history` rows,
//! for the command line and the dashboard alike.

/// The lines of audit rows described with the names of the devices they refer to (a
/// relationship's two ends, any `*device_id` field), read in one query; a device no longer
/// stored shows as `#id (gone)`.
pub fn describe_entries(
    store: &crate::store::Store,
    entries: &[crate::store::HistoryEntry],
) -> crate::store::Result<Vec<String>> {
    let mut ids = std::collections::BTreeSet::new();
    for entry in entries {
        for value in [&entry.old_value, &entry.new_value] {
            let parsed = value
                .as_deref()
                .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok());
            if let Some(serde_json::Value::Object(map)) = parsed {
                ids.extend(
                    map.iter()
                        .filter(|(k, _)| is_device_reference(k))
                        .filter_map(|(_, v)| v.as_i64()),
                );
            }
        }
    }
    let names = store.device_names(&ids.into_iter().collect::<Vec<_>>())?;
    let name_of = |id: i64| names.get(&id).cloned();
    Ok(entries
        .iter()
        .map(|e| describe_entry_named(e, &name_of))
        .collect())
}

/// Whether a field of an audit value holds a device id.
fn is_device_reference(key: &str) -> bool {
    key == "device_id" || key.ends_with("_device_id")
}

/// [`describe_entry`], with device ids shown as the names `name_of` gives.
pub fn describe_entry_named(
    entry: &crate::store::HistoryEntry,
    name_of: &dyn Fn(i64) -> Option<String>,
) -> String {
    let parse = |t: Option<&str>| {
        t.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let name = |v: &serde_json::Value| match v.as_i64() {
        Some(id) => name_of(id).unwrap_or_else(|| format!("#{id} (gone)")),
        None => brief(v),
    };
    if entry.change_type.as_deref() == Some("relationship") {
        // A relationship is one fact either way: `parent kind child`, added or removed.
        let (old, new) = (
            parse(entry.old_value.as_deref()),
            parse(entry.new_value.as_deref()),
        );
        let (verb, value) = if new.is_null() {
            ("removed", &old)
        } else {
            ("added", &new)
        };
        if value.get("parent_device_id").is_some() {
            return format!(
                "{verb}: {} {} {}",
                name(&value["parent_device_id"]),
                value["relationship_type"]
                    .as_str()
                    .unwrap_or("relates to")
                    .replace('_', " "),
                name(&value["child_device_id"])
            );
        }
    }
    let (old, new) = (
        parse(entry.old_value.as_deref()),
        parse(entry.new_value.as_deref()),
    );
    let named = |v: &serde_json::Value| -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, x)| {
                    let x = if is_device_reference(k) && x.is_i64() {
                        serde_json::Value::String(name(x))
                    } else {
                        x.clone()
                    };
                    (k.trim_end_matches("_id").to_string(), x)
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => other.clone(),
        }
    };
    if entry.change_type.as_deref() != Some("netbox_batch")
        && [&old, &new].iter().any(|v| {
            v.as_object()
                .is_some_and(|m| m.keys().any(|k| is_device_reference(k)))
        })
    {
        return summarize_change(
            Some(&named(&old).to_string()),
            Some(&named(&new).to_string()),
        );
    }
    describe_entry(entry)
}

/// An audit row's fields side by side: `(field, old, new)` for every field (metadata fields as
/// `source.field`), values pretty-printed in full, unchanged fields included and marked by the
/// caller comparing old with new.
pub fn entry_fields(entry: &crate::store::HistoryEntry) -> Vec<(String, String, String)> {
    let parse = |t: Option<&str>| {
        t.map(|t| {
            serde_json::from_str::<serde_json::Value>(t)
                .unwrap_or_else(|_| serde_json::Value::String(t.to_string()))
        })
        .unwrap_or(serde_json::Value::Null)
    };
    let (old, new) = (
        parse(entry.old_value.as_deref()),
        parse(entry.new_value.as_deref()),
    );
    let mut flat_old = std::collections::BTreeMap::new();
    let mut flat_new = std::collections::BTreeMap::new();
    flatten("", &old, &mut flat_old);
    flatten("", &new, &mut flat_new);
    let keys: std::collections::BTreeSet<&String> =
        flat_old.keys().chain(flat_new.keys()).collect();
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "∅".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    keys.into_iter()
        .map(|k| (k.clone(), show(flat_old.get(k)), show(flat_new.get(k))))
        .collect()
}

/// Objects flattened to `a.b` paths (the `metadata` level left out); arrays and scalars kept
/// whole.
fn flatten(
    prefix: &str,
    value: &serde_json::Value,
    out: &mut std::collections::BTreeMap<String, serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = match (prefix, k.as_str()) {
                    ("", "metadata") => String::new(),
                    ("", _) => k.clone(),
                    _ => format!("{prefix}.{k}"),
                };
                if path.is_empty() {
                    flatten("", v, out);
                } else {
                    flatten(&path, v, out);
                }
            }
        }
        serde_json::Value::Null if prefix.is_empty() => {}
        other => {
            out.insert(
                if prefix.is_empty() {
                    "value".into()
                } else {
                    prefix.to_string()
                },
                other.clone(),
            );
        }
    }
}

/// What one audit row says, in a line: a NetBox batch event as what happened to which batch
/// and who did it, any other row as [`summarize_change`].
pub fn describe_entry(entry: &crate::store::HistoryEntry) -> String {
    if entry.change_type.as_deref() == Some("netbox_batch") {
        let batch = entry
            .new_value
            .as_deref()
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
            .and_then(|v| v["batch_id"].as_str().map(str::to_string))
            .unwrap_or_default();
        return format!(
            "NetBox batch {batch}: {} by {}",
            entry.operation.as_deref().unwrap_or("?").replace('_', " "),
            entry.performed_by.as_deref().unwrap_or("?")
        );
    }
    summarize_change(entry.old_value.as_deref(), entry.new_value.as_deref())
}

/// `key: old → new` for the top-level (and metadata) keys that differ.
pub fn summarize_change(old: Option<&str>, new: Option<&str>) -> String {
    let parse = |t: Option<&str>| {
        t.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let (old, new) = (parse(old), parse(new));
    let mut parts = Vec::new();
    let mut walk = |prefix: &str, a: &serde_json::Value, b: &serde_json::Value| {
        let keys: std::collections::BTreeSet<&String> = a
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .chain(b.as_object().into_iter().flat_map(|m| m.keys()))
            .collect();
        for key in keys {
            let (x, y) = (&a[key.as_str()], &b[key.as_str()]);
            if x != y && !(x.is_object() && y.is_object()) {
                parts.push(format!("{prefix}{key}: {} → {}", brief(x), brief(y)));
            }
        }
    };
    walk("", &old, &new);
    if let (Some(a), Some(b)) = (old.get("metadata"), new.get("metadata")) {
        for (ns, inner) in a.as_object().into_iter().flatten() {
            walk(&format!("{ns}."), inner, &b[ns.as_str()]);
        }
    }
    let text = parts.join("; ");
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn brief(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "∅".into(),
        serde_json::Value::String(s) => s.clone(),
        other => crate::text::clip_chars(&other.to_string(), 40).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        change_type: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> crate::store::HistoryEntry {
        crate::store::HistoryEntry {
            id: 1,
            sync_id: String::new(),
            source_system: "vcenter".into(),
            source_identifier: None,
            operation: None,
            device_id: None,
            device_name: None,
            change_type: Some(change_type.into()),
            old_value: old.map(Into::into),
            new_value: new.map(Into::into),
            performed_by: None,
            performed_at: None,
            metadata: None,
        }
    }

    #[test]
    fn relationships_and_device_references_read_as_names() {
        let names = |id: i64| match id {
            9 => Some("dc1-prod-01".to_string()),
            417 => Some("web-01".to_string()),
            _ => None,
        };
        let removed = entry(
            "relationship",
            Some(r#"{"child_device_id":417,"parent_device_id":9,"relationship_type":"runs_on"}"#),
            None,
        );
        assert_eq!(
            describe_entry_named(&removed, &names),
            "removed: dc1-prod-01 runs on web-01"
        );
        let added = entry(
            "relationship",
            None,
            Some(r#"{"child_device_id":5,"parent_device_id":9,"relationship_type":"hosts"}"#),
        );
        assert_eq!(
            describe_entry_named(&added, &names),
            "added: dc1-prod-01 hosts #5 (gone)"
        );
        let moved = entry(
            "interface",
            Some(r#"{"device_id":9,"name":"eth0"}"#),
            Some(r#"{"device_id":417,"name":"eth0"}"#),
        );
        assert_eq!(
            describe_entry_named(&moved, &names),
            "device: dc1-prod-01 → web-01"
        );
        let fields = entry_fields(&entry(
            "device",
            Some(r#"{"name":"a","metadata":{"vcenter":{"cpu":2,"tags":["x"]}}}"#),
            Some(r#"{"name":"a","metadata":{"vcenter":{"cpu":4,"tags":["x","y"]}}}"#),
        ));
        assert_eq!(
            fields.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            vec!["name", "vcenter.cpu", "vcenter.tags"]
        );
        assert_eq!(fields[1], ("vcenter.cpu".into(), "2".into(), "4".into()));
        assert!(fields[2].2.contains("\"y\""), "arrays pretty-printed whole");
    }

    #[test]
    fn brief_cuts_multibyte_text_by_characters() {
        let value = serde_json::json!({"name": "ü".repeat(60)});
        let cut = brief(&value);
        assert_eq!(cut.chars().count(), 41, "{cut}");
        assert!(cut.ends_with('…'));
    }
}
