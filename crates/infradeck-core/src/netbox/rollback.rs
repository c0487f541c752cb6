//! Rollback: undoing an applied batch from the before-images its apply recorded, newest
//! dependency first (deletes what was created, restores updated fields, re-creates what was
//! deleted), each with a drift check. It runs on apply's engine in [`Mode::Rollback`].

use super::apply::{CHUNK, Mode, Run, check_auth};
use super::client::NetboxClient;
use crate::app::ApplyReport;
use crate::model::ApprovalStatus;
use crate::store::{ApprovalItem, Store};
use serde_json::{Map, Value, json};

/// Undoes the applied items of `batch`, newest dependency first: deletes what was created,
/// restores updated fields, re-creates what was deleted. Each with a drift check.
pub async fn rollback(
    store: &mut Store,
    client: &NetboxClient,
    batch: &str,
) -> anyhow::Result<ApplyReport> {
    rollback_in_chunks(store, client, batch, CHUNK).await
}

/// `rollback`, `chunk` objects per request (1: one request per object).
pub async fn rollback_in_chunks(
    store: &mut Store,
    client: &NetboxClient,
    batch: &str,
    chunk: usize,
) -> anyhow::Result<ApplyReport> {
    let items = store.batch_items(batch)?;
    anyhow::ensure!(!items.is_empty(), "no batch `{batch}`");
    let message = format!("infradeck rollback of batch {batch}");
    let mut run =
        Run::new(store, client, batch, Mode::Rollback, &message, chunk).with_renames(&items);
    let eligible = |i: &ApprovalItem| i.approval_status == ApprovalStatus::Applied;
    run.report.eligible = items.iter().filter(|i| eligible(i)).count();
    if run.report.eligible > 0 {
        check_auth(client).await?;
        run.execute(items, eligible).await?;
    }
    run.record_batch_state()?;
    tracing::info!(
        batch,
        netbox = client.base_url(),
        rolled_back = run.report.applied,
        conflicts = run.report.conflicts,
        failed = run.report.failed,
        "netbox rollback"
    );
    Ok(run.report)
}

/// The before-image apply recorded for an item (`null` when it recorded none).
pub(super) fn rollback_data(item: &ApprovalItem) -> Value {
    item.rollback_data
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// An object as read, turned into a create body: references by id, choices by value, tags by
/// slug, read-only fields dropped.
pub(super) fn recreate_body(before: &Value) -> Value {
    let mut body = Map::new();
    let Some(object) = before.as_object() else {
        return Value::Null;
    };
    for (key, value) in object {
        if matches!(
            key.as_str(),
            "id" | "url"
                | "display"
                | "display_url"
                | "created"
                | "last_updated"
                | "config_context"
                | "primary_mac_address"
                | "primary_ip"
                | "primary_ip4"
                | "primary_ip6"
        ) || key.ends_with("_count")
        {
            continue;
        }
        let written = match value {
            Value::Object(nested)
                if nested.contains_key("value") && nested.contains_key("label") =>
            {
                nested["value"].clone()
            }
            Value::Object(nested) if nested.contains_key("id") => json!(nested["id"]),
            Value::Array(list) if key == "tags" => Value::Array(
                list.iter()
                    .filter_map(|t| t.get("slug").map(|s| json!({"slug": s})))
                    .collect(),
            ),
            // Decimals NetBox reads back as `2.0` (vcpus) are written as the integer they are.
            Value::Number(n)
                if n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && !n.is_i64() && !n.is_u64()) =>
            {
                json!(n.as_f64().unwrap_or_default() as i64)
            }
            other => other.clone(),
        };
        body.insert(key.clone(), written);
    }
    Value::Object(body)
}
