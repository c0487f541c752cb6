//! Apply and rollback. Only approved items are written, in dependency order; before each write
//! the object is read again and compared with the plan, and a difference makes the item a
//! conflict instead of a write. Each item is claimed with a conditional status move first, so
//! two processes applying one batch write each item once, and a crash or failure half-way leaves
//! an item that the next run verifies against NetBox before writing again.

use super::client::{NetboxClient, WriteError, Written};
use super::plan::{CLUSTERS, IFACES, MACS, VMS, is_tagged, observed, rank, write_body};
use crate::model::{ApprovalAction, ApprovalStatus};
use crate::store::{ApprovalItem, ItemResult, Store};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

/// How an apply or rollback went, item by item.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub applied: usize,
    pub conflicts: usize,
    pub failed: usize,
    /// Taken by another process, or not in a state this run handles.
    pub skipped: usize,
    /// One line per item: what was (or, in a dry run, would be) sent, and how it ended.
    pub lines: Vec<String>,
}

impl ApplyReport {
    pub fn summary(&self, verb: &str) -> String {
        format!(
            "{} {verb}, {} conflicts, {} failed, {} skipped",
            self.applied, self.conflicts, self.failed, self.skipped
        )
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// A batch with more approved deletes than `max_deletes` needs this many allowed.
    pub allow_deletes: Option<u32>,
    pub max_deletes: u32,
}

/// An item claimed by another run this long ago is presumed dead and verified again.
const STALE_CLAIM: chrono::TimeDelta = chrono::TimeDelta::seconds(120);
/// How long items wait for parents another process is writing before they are failed: a
/// safety net for a process that died holding claims, whose claims then go stale.
const DEFER_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);
/// The pause between passes over deferred items.
const DEFER_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

struct Plan {
    endpoint: String,
    object: String,
    fields: BTreeMap<String, (Value, Value)>,
    body: Value,
    /// Every comparable field of the object as the plan saw it.
    seen: Option<BTreeMap<String, Value>>,
    /// How to find the object a create makes (list filters, lookups allowed); by name if absent.
    matcher: Option<Value>,
}

fn parse_plan(item: &ApprovalItem) -> anyhow::Result<Plan> {
    let changes: Value = item
        .proposed_changes
        .as_deref()
        .map(serde_json::from_str)
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("item {} has no proposed changes", item.id))?;
    let endpoint = changes
        .get("endpoint")
        .and_then(Value::as_str)
        .or(item.netbox_object_type.as_deref())
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        [VMS, CLUSTERS, IFACES, MACS].contains(&endpoint.as_str()),
        "item {}: unknown NetBox object type `{endpoint}`",
        item.id
    );
    let fields = changes
        .get("fields")
        .and_then(Value::as_object)
        .map(|f| {
            f.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        (
                            v.get("from").cloned().unwrap_or(Value::Null),
                            v.get("to").cloned().unwrap_or(Value::Null),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Plan {
        endpoint,
        object: changes
            .get("object")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        fields,
        body: changes.get("body").cloned().unwrap_or(Value::Null),
        matcher: changes.get("match").cloned(),
        seen: changes
            .get("seen")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
    })
}

fn with_outcome(item: &ApprovalItem, key: &str, value: Value) -> Value {
    let mut changes: Value = item
        .proposed_changes
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| json!({}));
    if let Some(map) = changes.as_object_mut() {
        map.insert(key.to_string(), value);
    }
    changes
}

enum Outcome {
    Done {
        object_id: Option<i64>,
        rollback: Value,
        note: String,
    },
    Conflict {
        current: Value,
        note: String,
    },
    Failed(String),
    /// A reference could not be resolved yet: its parent is not in NetBox (another process may
    /// be writing it this moment). Tried again while an item that could be that parent is still
    /// to be written; failed once none is.
    Deferred(String),
}

fn write_failed(err: WriteError) -> Outcome {
    match &err {
        // A nested reference (`"cluster": {"name": ...}`) to an object that is not there yet:
        // NetBox's words for it. Its parent may be another process's item of this batch.
        WriteError::Refused { body, .. } if body.contains("Related object not found") => {
            Outcome::Deferred(err.to_string())
        }
        _ => Outcome::Failed(err.to_string()),
    }
}

/// Items of `batch` in the order they must be written: creates and updates by rank, then
/// deletes in reverse rank.
fn ordered(mut items: Vec<ApprovalItem>, reverse: bool) -> Vec<ApprovalItem> {
    let key = |i: &ApprovalItem| {
        let r = item_rank(i);
        let delete = i.action == ApprovalAction::Delete;
        (delete, if delete { 255 - r } else { r }, i.id)
    };
    items.sort_by_key(key);
    if reverse {
        items.reverse();
    }
    items
}

/// Applies the approved items of `batch`.
pub async fn apply(
    store: &mut Store,
    client: &NetboxClient,
    batch: &str,
    options: &ApplyOptions,
) -> anyhow::Result<ApplyReport> {
    let items = store.batch_items(batch)?;
    anyhow::ensure!(
        !items.is_empty(),
        "no batch `{batch}` (see `infradeck netbox review`)"
    );
    let now = chrono::Utc::now();
    let stale_before = crate::time::format(now - STALE_CLAIM);
    let deletes = items
        .iter()
        .filter(|i| {
            i.action == ApprovalAction::Delete && i.approval_status == ApprovalStatus::Approved
        })
        .count() as u32;
    if deletes > options.max_deletes && options.allow_deletes.is_none_or(|n| n < deletes) {
        anyhow::bail!(
            "batch {batch} deletes {deletes} objects, more than the limit of {}; run again with --allow-deletes {deletes} if that is intended",
            options.max_deletes
        );
    }
    let mut report = ApplyReport::default();
    let message = format!("infradeck batch {batch}");
    // The whole batch as last read, and (after the first pass) the items deferred in the last.
    let mut snapshot = items;
    let mut retry_only: Option<HashSet<i64>> = None;
    let mut deferring_since = None;
    loop {
        // Read before this pass's attempts: a parent written after it is in NetBox by the time its
        // child is tried, so a child that finds no parent while nothing below it was pending
        // really has none coming.
        let lowest_pending = lowest_pending_rank(&snapshot, &stale_before);
        let queue = ordered(
            snapshot
                .into_iter()
                .filter(|i| retry_only.as_ref().is_none_or(|ids| ids.contains(&i.id)))
                .collect(),
            false,
        );
        let mut deferred = HashSet::new();
        for item in queue {
            let retry = match item.approval_status {
                ApprovalStatus::Approved => false,
                ApprovalStatus::Failed => true,
                ApprovalStatus::Applying
                    if item
                        .applied_at
                        .as_deref()
                        .is_some_and(|at| at < stale_before.as_str()) =>
                {
                    true
                }
                _ => continue,
            };
            let plan = match parse_plan(&item) {
                Ok(plan) => plan,
                Err(err) => {
                    report.failed += 1;
                    report.lines.push(format!("#{} failed: {err}", item.id));
                    continue;
                }
            };
            if options.dry_run {
                report
                    .lines
                    .push(describe_request(client, &item, &plan, &message));
                continue;
            }
            let at = crate::time::now();
            let from = [
                ApprovalStatus::Approved,
                ApprovalStatus::Failed,
                ApprovalStatus::Applying,
            ];
            let claimed = store.write(|w| {
                w.claim_item(
                    item.id,
                    if retry { &from } else { &from[..1] },
                    ApprovalStatus::Applying,
                    &at,
                )
            })?;
            if !claimed {
                report.skipped += 1;
                continue;
            }
            let mut outcome = apply_item(client, &item, &plan, &message).await;
            if let Outcome::Deferred(reason) = outcome {
                let waiting = deferring_since.get_or_insert_with(tokio::time::Instant::now);
                if waiting.elapsed() < DEFER_LIMIT
                    && lowest_pending.is_some_and(|r| r < item_rank(&item))
                {
                    // Give the claim back; this item comes round again after the others.
                    let at = crate::time::now();
                    store.write(|w| {
                        w.finish_item(
                            item.id,
                            &ItemResult {
                                status: ApprovalStatus::Approved,
                                netbox_object_id: None,
                                at: &at,
                                rollback_data: None,
                                proposed_changes: None,
                            },
                        )
                    })?;
                    deferred.insert(item.id);
                    continue;
                }
                outcome = Outcome::Failed(reason);
            }
            record(
                store,
                &item,
                &plan,
                outcome,
                &mut report,
                ApprovalStatus::Applied,
                "applied",
            )?;
        }
        if deferred.is_empty() {
            break;
        }
        // The parents are being written by another process: give it a moment.
        tokio::time::sleep(DEFER_PAUSE).await;
        snapshot = store.batch_items(batch)?;
        retry_only = Some(deferred);
    }
    if !options.dry_run {
        let items = store.batch_items(batch)?;
        let state = if items.iter().any(|i| {
            matches!(
                i.approval_status,
                ApprovalStatus::Conflict | ApprovalStatus::Failed | ApprovalStatus::Applying
            )
        }) {
            "partial"
        } else if items
            .iter()
            .any(|i| i.approval_status == ApprovalStatus::Applied)
        {
            "applied"
        } else {
            "pending"
        };
        store.write(|w| w.set_batch_state(batch, state))?;
    }
    Ok(report)
}

fn item_rank(item: &ApprovalItem) -> u8 {
    rank(item.netbox_object_type.as_deref().unwrap_or_default())
}

/// The lowest rank among the creates and updates still to be written by someone: approved, or
/// claimed recently enough that their writer is presumed alive. Parents rank below their
/// children, so an item may still get its parent only if this is below its own rank. Our own
/// deferred items count, so a chain of deferrals unwinds from the bottom, one pass per level.
fn lowest_pending_rank(items: &[ApprovalItem], stale_before: &str) -> Option<u8> {
    items
        .iter()
        .filter(|i| {
            i.action != ApprovalAction::Delete
                && match i.approval_status {
                    ApprovalStatus::Approved => true,
                    ApprovalStatus::Applying => {
                        i.applied_at.as_deref().is_some_and(|at| at >= stale_before)
                    }
                    _ => false,
                }
        })
        .map(item_rank)
        .min()
}

fn record(
    store: &mut Store,
    item: &ApprovalItem,
    plan: &Plan,
    outcome: Outcome,
    report: &mut ApplyReport,
    done: ApprovalStatus,
    verb: &str,
) -> anyhow::Result<()> {
    let at = crate::time::now();
    let (result_line, status, object_id, rollback, changes) = match outcome {
        Outcome::Done {
            object_id,
            rollback,
            note,
        } => {
            report.applied += 1;
            (
                format!(
                    "#{} {verb}: {} {} {}{note}",
                    item.id,
                    item.action.as_str(),
                    plan.endpoint,
                    plan.object
                ),
                done,
                object_id,
                Some(rollback),
                None,
            )
        }
        Outcome::Conflict { current, note } => {
            report.conflicts += 1;
            (
                format!(
                    "#{} conflict: {} {}: {note}",
                    item.id, plan.endpoint, plan.object
                ),
                ApprovalStatus::Conflict,
                None,
                None,
                Some(with_outcome(
                    item,
                    "conflict",
                    json!({"note": note, "netbox_now": current}),
                )),
            )
        }
        Outcome::Failed(error) | Outcome::Deferred(error) => {
            report.failed += 1;
            (
                format!(
                    "#{} failed: {} {}: {error}",
                    item.id, plan.endpoint, plan.object
                ),
                ApprovalStatus::Failed,
                None,
                None,
                Some(with_outcome(item, "error", json!(error))),
            )
        }
    };
    store.write(|w| {
        w.finish_item(
            item.id,
            &ItemResult {
                status,
                netbox_object_id: object_id,
                at: &at,
                rollback_data: rollback.as_ref(),
                proposed_changes: changes.as_ref(),
            },
        )
    })?;
    report
        .lines
        .push(crate::sanitize::for_terminal(&result_line).into_owned());
    Ok(())
}

fn describe_request(
    client: &NetboxClient,
    item: &ApprovalItem,
    plan: &Plan,
    message: &str,
) -> String {
    let mut body = plan.body.clone();
    if let Some(map) = body.as_object_mut() {
        map.insert("changelog_message".into(), json!(message));
    }
    let line = match item.action {
        ApprovalAction::Create => format!("POST {} {}", client.url_of(&plan.endpoint, None), body),
        ApprovalAction::Update => format!(
            "PATCH {} {} (If-Match: the ETag read just before)",
            client.url_of(&plan.endpoint, item.netbox_object_id),
            body
        ),
        ApprovalAction::Delete => format!(
            "DELETE {}",
            client.url_of(&plan.endpoint, item.netbox_object_id)
        ),
    };
    crate::sanitize::for_terminal(&format!("#{} {line}", item.id)).into_owned()
}

/// Where the plan's `from` values no longer hold: field → what NetBox has now.
fn drifted(
    plan: &Plan,
    current: &BTreeMap<String, Value>,
    side: fn(&(Value, Value)) -> &Value,
) -> Map<String, Value> {
    plan.fields
        .iter()
        .filter(|(k, v)| current.get(*k).unwrap_or(&Value::Null) != side(v))
        .map(|(k, _)| (k.clone(), current.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// Fields NetBox changed since the plan read the object (all comparable fields when the plan
/// recorded them, else the planned fields' `from` values).
fn changed_since_plan(plan: &Plan, current: &BTreeMap<String, Value>) -> Map<String, Value> {
    match &plan.seen {
        Some(seen) => seen
            .iter()
            .filter(|(k, v)| current.get(*k).unwrap_or(&Value::Null) != *v)
            .map(|(k, _)| (k.clone(), current.get(k).cloned().unwrap_or(Value::Null)))
            .collect(),
        None => drifted(plan, current, from_side),
    }
}

fn from_side(v: &(Value, Value)) -> &Value {
    &v.0
}

fn to_side(v: &(Value, Value)) -> &Value {
    &v.1
}

/// Replaces every `{"$lookup": {"endpoint", "query"}}` in `value` by the id of the one object
/// the endpoint lists for the query (itself resolved first).
/// Why a reference did not resolve.
enum Unresolved {
    /// Nothing matches (yet): the parent is not in NetBox.
    Missing(String),
    Other(String),
}

fn resolve(
    client: &NetboxClient,
    value: Value,
) -> futures::future::BoxFuture<'_, Result<Value, Unresolved>> {
    Box::pin(async move {
        match value {
            Value::Object(map) => {
                if let Some(spec) = map.get("$lookup") {
                    let endpoint = spec
                        .get("endpoint")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let query =
                        resolve(client, spec.get("query").cloned().unwrap_or(Value::Null)).await?;
                    let found = list_matching(client, &endpoint, &query)
                        .await
                        .map_err(Unresolved::Other)?;
                    return match found.as_slice() {
                        [one] => Ok(one.get("id").cloned().unwrap_or(Value::Null)),
                        [] => Err(Unresolved::Missing(format!(
                            "no {endpoint} object matches {query} (its parent is not in NetBox)"
                        ))),
                        many => Err(Unresolved::Other(format!(
                            "{} {endpoint} objects match {query}; expected one",
                            many.len()
                        ))),
                    };
                }
                let mut out = Map::new();
                for (key, inner) in map {
                    out.insert(key, resolve(client, inner).await?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(list) => {
                let mut out = Vec::with_capacity(list.len());
                for inner in list {
                    out.push(resolve(client, inner).await?);
                }
                Ok(Value::Array(out))
            }
            other => Ok(other),
        }
    })
}

/// The objects of `endpoint` that a flat query (`{"name": "eth0", "virtual_machine_id": 7}`) lists.
async fn list_matching(
    client: &NetboxClient,
    endpoint: &str,
    query: &Value,
) -> Result<Vec<Value>, String> {
    let params: Vec<(String, String)> = query
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let borrowed: Vec<(&str, String)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    client
        .list(endpoint, &borrowed)
        .await
        .map_err(|e| e.to_string())
}

async fn apply_item(
    client: &NetboxClient,
    item: &ApprovalItem,
    plan: &Plan,
    message: &str,
) -> Outcome {
    match item.action {
        ApprovalAction::Create => {
            // Someone (or an earlier, interrupted run of ours) may have created it since.
            let matcher = plan
                .matcher
                .clone()
                .unwrap_or_else(|| json!({"name": plan.object}));
            let existing = match resolve(client, matcher).await {
                Ok(query) => match list_matching(client, &plan.endpoint, &query).await {
                    Ok(found) => found,
                    Err(err) => return Outcome::Failed(err),
                },
                Err(Unresolved::Missing(err)) => return Outcome::Deferred(err),
                Err(Unresolved::Other(err)) => return Outcome::Failed(err),
            };
            if let Some(object) = existing.first() {
                let current = observed(&plan.endpoint, object);
                if is_tagged(object, &client.tag) && drifted(plan, &current, to_side).is_empty() {
                    return Outcome::Done {
                        object_id: object.get("id").and_then(Value::as_i64),
                        rollback: json!({"created": true, "before": null, "request_id": null}),
                        note: " (already in NetBox from an earlier run)".into(),
                    };
                }
                return Outcome::Conflict {
                    current: Value::Object(current.into_iter().collect()),
                    note: "an object of that name appeared in NetBox after the plan".into(),
                };
            }
            let mut body = match resolve(client, plan.body.clone()).await {
                Ok(body) => body,
                Err(Unresolved::Missing(err)) => return Outcome::Deferred(err),
                Err(Unresolved::Other(err)) => return Outcome::Failed(err),
            };
            body["changelog_message"] = json!(message);
            match client.create(&plan.endpoint, &body).await {
                Ok(Written { object, request_id }) => Outcome::Done {
                    object_id: object.get("id").and_then(Value::as_i64),
                    rollback: json!({"created": true, "before": null, "request_id": request_id}),
                    note: String::new(),
                },
                Err(err) => write_failed(err),
            }
        }
        ApprovalAction::Update => {
            let Some(id) = item.netbox_object_id else {
                return Outcome::Failed("an update without a NetBox object id".into());
            };
            let (object, etag) = match read_existing(client, &plan.endpoint, id).await {
                Ok(found) => found,
                Err(outcome) => return outcome,
            };
            if !is_tagged(&object, &client.tag) {
                return Outcome::Conflict {
                    current: Value::Null,
                    note: format!("the object no longer carries the `{}` tag", client.tag),
                };
            }
            let current = observed(&plan.endpoint, &object);
            let changed = changed_since_plan(plan, &current);
            if !changed.is_empty() {
                // Changed exactly as planned (an interrupted earlier run of ours wrote it)?
                let only_planned = changed.keys().all(|k| plan.fields.contains_key(k));
                if only_planned && drifted(plan, &current, to_side).is_empty() {
                    return Outcome::Done {
                        object_id: Some(id),
                        rollback: json!({"before": object, "request_id": null}),
                        note: " (NetBox already had these values)".into(),
                    };
                }
                return Outcome::Conflict {
                    current: Value::Object(changed),
                    note: "NetBox changed these fields after the plan".into(),
                };
            }
            let mut body = plan.body.clone();
            body["changelog_message"] = json!(message);
            match client
                .update(&plan.endpoint, id, &body, etag.as_deref())
                .await
            {
                Ok(Written { request_id, .. }) => Outcome::Done {
                    object_id: Some(id),
                    rollback: json!({"before": object, "request_id": request_id}),
                    note: String::new(),
                },
                Err(WriteError::Changed { .. }) => Outcome::Conflict {
                    current: Value::Null,
                    note: "NetBox changed the object between read and write (412)".into(),
                },
                Err(err) => write_failed(err),
            }
        }
        ApprovalAction::Delete => {
            let Some(id) = item.netbox_object_id else {
                return Outcome::Failed("a delete without a NetBox object id".into());
            };
            let object = match client.get(&plan.endpoint, id).await {
                Ok(Some((object, _))) => object,
                Ok(None) => {
                    return Outcome::Done {
                        object_id: Some(id),
                        rollback: json!({"before": null, "request_id": null}),
                        note: " (already gone)".into(),
                    };
                }
                Err(err) => return Outcome::Failed(err.to_string()),
            };
            if !is_tagged(&object, &client.tag) {
                return Outcome::Conflict {
                    current: Value::Null,
                    note: format!("the object no longer carries the `{}` tag", client.tag),
                };
            }
            let changed = changed_since_plan(plan, &observed(&plan.endpoint, &object));
            if !changed.is_empty() {
                return Outcome::Conflict {
                    current: Value::Object(changed),
                    note: "NetBox changed the object after the plan".into(),
                };
            }
            match client
                .delete(&plan.endpoint, id, &json!({"changelog_message": message}))
                .await
            {
                Ok(Written { request_id, .. }) => Outcome::Done {
                    object_id: Some(id),
                    rollback: json!({"before": object, "request_id": request_id}),
                    note: String::new(),
                },
                Err(err) => write_failed(err),
            }
        }
    }
}

/// The object as NetBox has it now, with its ETag; its absence is a conflict.
async fn read_existing(
    client: &NetboxClient,
    endpoint: &str,
    id: i64,
) -> Result<(Value, Option<String>), Outcome> {
    match client.get(endpoint, id).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Outcome::Conflict {
            current: Value::Null,
            note: "the object was deleted in NetBox".into(),
        }),
        Err(err) => Err(Outcome::Failed(err.to_string())),
    }
}

/// An object as read, turned into a create body: references by id, choices by value, tags by
/// slug, read-only fields dropped.
fn recreate_body(before: &Value) -> Value {
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

/// Undoes the applied items of `batch`, newest dependency first: deletes what was created,
/// restores updated fields, re-creates what was deleted. Each with a drift check.
pub async fn rollback(
    store: &mut Store,
    client: &NetboxClient,
    batch: &str,
) -> anyhow::Result<ApplyReport> {
    let items = store.batch_items(batch)?;
    anyhow::ensure!(!items.is_empty(), "no batch `{batch}`");
    let mut report = ApplyReport::default();
    let message = format!("infradeck rollback of batch {batch}");
    for item in ordered(items, true) {
        if item.approval_status != ApprovalStatus::Applied {
            continue;
        }
        let plan = parse_plan(&item)?;
        let at = crate::time::now();
        if !store.write(|w| {
            w.claim_item(
                item.id,
                &[ApprovalStatus::Applied],
                ApprovalStatus::Applying,
                &at,
            )
        })? {
            report.skipped += 1;
            continue;
        }
        let rollback_data: Value = item
            .rollback_data
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null);
        let outcome = rollback_item(client, &item, &plan, &rollback_data, &message).await;
        // A rollback that could not happen leaves the item applied, so it can be tried again.
        let done = ApprovalStatus::RolledBack;
        if let Outcome::Failed(_) | Outcome::Conflict { .. } = outcome {
            let at = crate::time::now();
            store.write(|w| {
                w.finish_item(
                    item.id,
                    &ItemResult {
                        status: ApprovalStatus::Applied,
                        netbox_object_id: None,
                        at: &at,
                        rollback_data: None,
                        proposed_changes: None,
                    },
                )
            })?;
            let line = match outcome {
                Outcome::Failed(e) | Outcome::Deferred(e) => {
                    report.failed += 1;
                    format!("#{} rollback failed: {e}", item.id)
                }
                Outcome::Conflict { note, .. } => {
                    report.conflicts += 1;
                    format!("#{} rollback conflict: {note}", item.id)
                }
                Outcome::Done { .. } => String::new(),
            };
            report
                .lines
                .push(crate::sanitize::for_terminal(&line).into_owned());
            continue;
        }
        record(
            store,
            &item,
            &plan,
            outcome,
            &mut report,
            done,
            "rolled back",
        )?;
    }
    store.write(|w| {
        w.set_batch_state(
            batch,
            if report.failed + report.conflicts == 0 {
                "rolled_back"
            } else {
                "partial"
            },
        )
    })?;
    Ok(report)
}

async fn rollback_item(
    client: &NetboxClient,
    item: &ApprovalItem,
    plan: &Plan,
    data: &Value,
    message: &str,
) -> Outcome {
    let Some(id) = item.netbox_object_id else {
        return Outcome::Failed("no NetBox object id was recorded".into());
    };
    match item.action {
        ApprovalAction::Create => {
            match client.get(&plan.endpoint, id).await {
                Ok(None) => {
                    return Outcome::Done {
                        object_id: None,
                        rollback: data.clone(),
                        note: " (already gone)".into(),
                    };
                }
                Ok(Some((object, _))) if !is_tagged(&object, &client.tag) => {
                    return Outcome::Conflict {
                        current: Value::Null,
                        note: "the created object lost its tag".into(),
                    };
                }
                Ok(Some(_)) => {}
                Err(err) => return Outcome::Failed(err.to_string()),
            }
            match client
                .delete(&plan.endpoint, id, &json!({"changelog_message": message}))
                .await
            {
                Ok(_) => Outcome::Done {
                    object_id: None,
                    rollback: data.clone(),
                    note: String::new(),
                },
                Err(err) => write_failed(err),
            }
        }
        ApprovalAction::Update => {
            let (object, etag) = match read_existing(client, &plan.endpoint, id).await {
                Ok(found) => found,
                Err(outcome) => return outcome,
            };
            let changed = drifted(plan, &observed(&plan.endpoint, &object), to_side);
            if !changed.is_empty() {
                return Outcome::Conflict {
                    current: Value::Object(changed),
                    note: "NetBox changed these fields after apply".into(),
                };
            }
            let restore: BTreeMap<String, Value> = plan
                .fields
                .iter()
                .map(|(k, (from, _))| (k.clone(), from.clone()))
                .collect();
            let mut body = write_body(&plan.endpoint, &restore);
            body["changelog_message"] = json!(message);
            match client
                .update(&plan.endpoint, id, &body, etag.as_deref())
                .await
            {
                Ok(_) => Outcome::Done {
                    object_id: Some(id),
                    rollback: data.clone(),
                    note: String::new(),
                },
                Err(err) => write_failed(err),
            }
        }
        ApprovalAction::Delete => {
            let before = data.get("before").cloned().unwrap_or(Value::Null);
            if before.is_null() {
                return Outcome::Failed("the deleted object was not recorded".into());
            }
            let mut body = recreate_body(&before);
            body["changelog_message"] = json!(message);
            match client.create(&plan.endpoint, &body).await {
                Ok(Written { object, .. }) => Outcome::Done {
                    object_id: object.get("id").and_then(Value::as_i64),
                    rollback: data.clone(),
                    note: String::new(),
                },
                Err(err) => write_failed(err),
            }
        }
    }
}
