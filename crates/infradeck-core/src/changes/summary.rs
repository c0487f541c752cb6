//! How a recorded change reads for people: `key: old → new` summaries of `sync_history` rows,
//! for the command line and the dashboard alike.

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
    use super::brief;

    #[test]
    fn brief_cuts_multibyte_text_by_characters() {
        let value = serde_json::json!({"name": "ü".repeat(60)});
        let cut = brief(&value);
        assert_eq!(cut.chars().count(), 41, "{cut}");
        assert!(cut.ends_with('…'));
    }
}
