//! NetBox plans awaiting review: `netbox_sync_batches` and `netbox_sync_approvals`.

use super::{NewHistory, Result, Store, Writer, json_text, parse_text_enum};
use crate::model::{ApprovalAction, ApprovalStatus};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;

/// A batch to create.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    pub batch_id: &'a str,
    pub netbox_url: &'a str,
    pub planned_at: &'a str,
    pub planned_by: &'a str,
    pub metadata: serde_json::Value,
}

/// A plan item to create.
#[derive(Debug, Clone)]
pub struct NewApprovalItem {
    pub device_id: Option<i64>,
    pub action: ApprovalAction,
    pub netbox_object_type: String,
    pub netbox_object_id: Option<i64>,
    pub proposed_changes: serde_json::Value,
}

/// A review decision: items in `from` move to `to`, recorded with reviewer, comment and time.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    pub from: ApprovalStatus,
    pub to: ApprovalStatus,
    pub reviewer: &'a str,
    pub comment: Option<&'a str>,
    pub at: &'a str,
}

/// A batch with its item counts by status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Batch {
    pub batch_id: String,
    pub(crate) netbox_url: Option<String>,
    pub planned_at: Option<String>,
    pub planned_by: Option<String>,
    pub state: Option<String>,
    pub creates: i64,
    pub updates: i64,
    pub deletes: i64,
    pub pending: i64,
    pub approved: i64,
    pub rejected: i64,
    pub applied: i64,
    pub rolled_back: i64,
    /// Items that failed or conflict with NetBox.
    pub failed: i64,
    /// Pending items by action: what approving the batch approves.
    pub pending_by_action: ActionCounts,
    /// Approved and failed items by action: exactly what apply sends (it retries failures).
    pub to_apply: ActionCounts,
    /// Applied items by action: what rollback undoes (an applied create is deleted).
    pub applied_by_action: ActionCounts,
}

/// Items counted by what they do to NetBox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    pub creates: i64,
    pub updates: i64,
    pub deletes: i64,
}

impl ActionCounts {
    pub fn total(&self) -> i64 {
        self.creates + self.updates + self.deletes
    }

    /// `2 creates · 1 update · 0 deletes`.
    pub fn text(&self) -> String {
        let plural = |n: i64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        format!(
            "{} · {} · {}",
            plural(self.creates, "create"),
            plural(self.updates, "update"),
            plural(self.deletes, "delete")
        )
    }
}

/// Per-batch numbers of items (`#3`, as review, approve and the dashboard name them): their
/// position in the batch, from 1.
pub fn item_numbers(items: &[ApprovalItem]) -> std::collections::HashMap<i64, usize> {
    let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    ids.sort_unstable();
    ids.into_iter()
        .enumerate()
        .map(|(n, id)| (id, n + 1))
        .collect()
}

/// A batch's items grouped by kind of object, in the order apply writes the kinds (the plan's
/// `order`; then where a kind first appears), each kind by item number: how `netbox review`
/// and the dashboard list them.
pub fn grouped_by_kind(items: Vec<ApprovalItem>) -> Vec<ApprovalItem> {
    let numbers = item_numbers(&items);
    let kind = |item: &ApprovalItem| item.netbox_object_type.clone().unwrap_or_default();
    let order = |item: &ApprovalItem| -> u64 {
        item.proposed_changes
            .as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|c| c.get("order").and_then(serde_json::Value::as_u64))
            .unwrap_or(0)
    };
    let mut first_seen: std::collections::HashMap<String, usize> = Default::default();
    for (i, item) in items.iter().enumerate() {
        first_seen.entry(kind(item)).or_insert(i);
    }
    let mut keyed: Vec<((u64, usize, usize), ApprovalItem)> = items
        .into_iter()
        .map(|item| {
            (
                (order(&item), first_seen[&kind(&item)], numbers[&item.id]),
                item,
            )
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// One plan item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalItem {
    pub id: i64,
    pub(crate) sync_batch_id: String,
    pub device_id: Option<i64>,
    pub device_name: Option<String>,
    pub action: ApprovalAction,
    pub netbox_object_type: Option<String>,
    pub netbox_object_id: Option<i64>,
    pub proposed_changes: Option<String>,
    pub approval_status: ApprovalStatus,
    pub approved_by: Option<String>,
    pub(crate) approved_at: Option<String>,
    pub(crate) applied_at: Option<String>,
    pub rollback_data: Option<String>,
    pub review_comment: Option<String>,
    /// The SHA-256 of the item's target and request when it was planned.
    pub request_sha256: Option<String>,
    /// The SHA-256 the reviewer approved; `None` when not approved (or approved before
    /// approvals were bound to digests).
    pub approved_sha256: Option<String>,
}

impl ApprovalItem {
    /// The SHA-256 of what this item would send now: see [`reviewed_digest`].
    pub fn digest(&self) -> String {
        reviewed_digest(
            self.action,
            self.netbox_object_type.as_deref(),
            self.netbox_object_id,
            self.proposed_changes.as_deref(),
        )
    }

    /// Why apply must not send this item: it was approved, and what it would send now is not
    /// what was approved. `None` when it may go (or was approved before digests were kept).
    pub fn changed_since_approval(&self) -> Option<String> {
        let approved = self.approved_sha256.as_deref()?;
        let now = self.digest();
        (now != approved).then(|| {
            format!(
                "its request changed after it was approved (approved {}…, now {}…): review it again",
                approved.chars().take(12).collect::<String>(),
                now.chars().take(12).collect::<String>()
            )
        })
    }
}

/// The parts of the proposed changes apply builds its requests from; what apply adds later (the
/// outcome of a run: `conflict`, `result`, …) is not part of what was reviewed.
const REVIEWED_KEYS: &[&str] = &[
    "endpoint",
    "object",
    "key",
    "fields",
    "body",
    "match",
    "seen",
    "needs",
    "primary_of",
];

/// Lowercase hex SHA-256 of an item's target (action, object type, object id) and of the parts of
/// its proposed changes that make its request, as canonical JSON (keys sorted). What a reviewer
/// approves is this digest: apply refuses an item whose digest moved since.
pub fn reviewed_digest(
    action: ApprovalAction,
    object_type: Option<&str>,
    object_id: Option<i64>,
    proposed_changes: Option<&str>,
) -> String {
    let changes: serde_json::Value = proposed_changes
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(serde_json::Value::Null);
    let reviewed: std::collections::BTreeMap<&str, serde_json::Value> = REVIEWED_KEYS
        .iter()
        .filter_map(|key| Some((*key, canonical(changes.get(*key)?))))
        .collect();
    let text = serde_json::json!({
        "action": action.as_str(),
        "object_type": object_type,
        "object_id": object_id,
        "changes": reviewed,
    })
    .to_string();
    super::configs::config_hash(&text)
}

/// `value` with every object's keys in sorted order, whatever order the JSON was written in.
/// serde_json's map sorts today, but keeps insertion order as soon as any crate in the build
/// enables its `preserve_order` feature (features unify): the digest must not move with that.
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

pub(super) const ITEM_COLUMNS: &str = "a.id, a.sync_batch_id, a.device_id, d.name, a.action, \
     a.netbox_object_type, a.netbox_object_id, a.proposed_changes, a.approval_status, a.approved_by, \
     a.approved_at, a.applied_at, a.rollback_data, a.review_comment, a.request_sha256, \
     a.approved_sha256";

pub(super) fn item_from_row(row: &Row<'_>) -> rusqlite::Result<ApprovalItem> {
    Ok(ApprovalItem {
        id: row.get(0)?,
        sync_batch_id: row.get(1)?,
        device_id: row.get(2)?,
        device_name: row.get(3)?,
        action: parse_text_enum(row, 4)?,
        netbox_object_type: row.get(5)?,
        netbox_object_id: row.get(6)?,
        proposed_changes: row.get(7)?,
        approval_status: parse_text_enum(row, 8)?,
        approved_by: row.get(9)?,
        approved_at: row.get(10)?,
        applied_at: row.get(11)?,
        rollback_data: row.get(12)?,
        review_comment: row.get(13)?,
        request_sha256: row.get(14)?,
        approved_sha256: row.get(15)?,
    })
}

impl Writer<'_> {
    /// Creates a batch and its items, all `pending`, and returns the item ids in order.
    pub fn create_batch(
        &self,
        batch: &NewBatch<'_>,
        items: &[NewApprovalItem],
    ) -> Result<Vec<i64>> {
        let conn = self.conn();
        let count =
            |action: ApprovalAction| items.iter().filter(|i| i.action == action).count() as i64;
        conn.prepare_cached(
            "INSERT INTO netbox_sync_batches (batch_id, netbox_url, planned_at, planned_by, state, \
             creates, updates, deletes, metadata) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            batch.batch_id,
            batch.netbox_url,
            batch.planned_at,
            batch.planned_by,
            count(ApprovalAction::Create),
            count(ApprovalAction::Update),
            count(ApprovalAction::Delete),
            json_text(&batch.metadata)
        ])?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO netbox_sync_approvals (sync_batch_id, device_id, action, netbox_object_type, \
             netbox_object_id, proposed_changes, approval_status, request_sha256) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
        )?;
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            let changes = json_text(&item.proposed_changes);
            let digest = reviewed_digest(
                item.action,
                Some(item.netbox_object_type.as_str()),
                item.netbox_object_id,
                changes.as_deref(),
            );
            insert.execute(params![
                batch.batch_id,
                item.device_id,
                item.action.as_str(),
                item.netbox_object_type,
                item.netbox_object_id,
                changes,
                digest
            ])?;
            ids.push(conn.last_insert_rowid());
        }
        self.record_batch_event(
            batch.batch_id,
            "plan",
            batch.planned_by,
            batch.planned_at,
            json!({
                "creates": count(ApprovalAction::Create),
                "updates": count(ApprovalAction::Update),
                "deletes": count(ApprovalAction::Delete),
                "netbox_url": batch.netbox_url,
            }),
        )?;
        Ok(ids)
    }

    /// Moves items from `from` to `to` status, recording the reviewer, time and comment. The
    /// change is conditional on the current status, so two reviewers acting at once cannot both
    /// succeed; returns how many items moved. `item_ids` empty means every item of the batch.
    pub fn review_items(
        &self,
        batch_id: &str,
        item_ids: &[i64],
        review: &Review<'_>,
    ) -> Result<usize> {
        let Review {
            from,
            to,
            reviewer,
            comment,
            at,
        } = *review;
        let conn = self.conn();
        let moved = if item_ids.is_empty() {
            conn.prepare_cached(
                // Approving everything passes by the alternatives of a choice (an address
                // two machines claim): each needs a person to approve it by itself.
                "UPDATE netbox_sync_approvals SET approval_status = ?3, approved_by = ?4, \
                     approved_at = ?5, review_comment = ?6, \
                     approved_sha256 = CASE WHEN ?3 = 'approved' THEN request_sha256 END \
                     WHERE sync_batch_id = ?1 AND approval_status = ?2 \
                     AND (?3 <> 'approved' OR json_extract(proposed_changes, '$.choice') IS NULL)",
            )?
            .execute(params![
                batch_id,
                from.as_str(),
                to.as_str(),
                reviewer,
                at,
                comment
            ])?
        } else {
            self.review_listed_items(batch_id, item_ids, review)?
        };
        if moved > 0 {
            self.record_batch_event(
                batch_id,
                "review",
                reviewer,
                at,
                json!({"items": moved, "from": from.as_str(), "to": to.as_str(), "comment": comment}),
            )?;
        }
        Ok(moved)
    }

    fn review_listed_items(
        &self,
        batch_id: &str,
        item_ids: &[i64],
        review: &Review<'_>,
    ) -> Result<usize> {
        let mut update = self.conn().prepare_cached(
            "UPDATE netbox_sync_approvals SET approval_status = ?4, approved_by = ?5, \
             approved_at = ?6, review_comment = ?7, \
             approved_sha256 = CASE WHEN ?4 = 'approved' THEN request_sha256 END \
             WHERE id = ?1 AND sync_batch_id = ?2 AND approval_status = ?3",
        )?;
        let mut moved = 0;
        for id in item_ids {
            moved += update.execute(params![
                id,
                batch_id,
                review.from.as_str(),
                review.to.as_str(),
                review.reviewer,
                review.at,
                review.comment
            ])?;
        }
        Ok(moved)
    }
}

impl Writer<'_> {
    /// Audits a NetBox batch event (`plan`, `review`, or the state an apply or rollback left it
    /// in), so the trail says who planned, approved, applied and rolled back which batch.
    pub(crate) fn record_batch_event(
        &self,
        batch_id: &str,
        event: &str,
        who: &str,
        at: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        self.record_history(&NewHistory {
            sync_id: batch_id,
            source_system: "netbox",
            source_identifier: "",
            operation: event,
            device_id: None,
            change_type: "netbox_batch",
            old_value: serde_json::Value::Null,
            new_value: json!({"batch_id": batch_id, "event": event}),
            performed_by: who,
            performed_at: at,
            metadata: details,
        })
    }
}

impl Store {
    /// The pending items of `batch_id` that are alternatives of a choice: what approving the
    /// whole batch leaves for a person.
    pub fn pending_choices(&self, batch_id: &str) -> Result<usize> {
        let n: i64 = self.conn().prepare_cached(
            "SELECT COUNT(*) FROM netbox_sync_approvals WHERE sync_batch_id = ?1 \
             AND approval_status = 'pending' AND json_extract(proposed_changes, '$.choice') IS NOT NULL",
        )?
        .query_row(params![batch_id], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Every batch, newest first, with item counts by status.
    pub fn batches(&self) -> Result<Vec<Batch>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT b.batch_id, b.netbox_url, b.planned_at, b.planned_by, b.state, b.creates, \
             b.updates, b.deletes, \
             (SELECT COUNT(*) FROM netbox_sync_approvals a WHERE a.sync_batch_id = b.batch_id AND a.approval_status = 'pending'), \
             (SELECT COUNT(*) FROM netbox_sync_approvals a WHERE a.sync_batch_id = b.batch_id AND a.approval_status = 'approved'), \
             (SELECT COUNT(*) FROM netbox_sync_approvals a WHERE a.sync_batch_id = b.batch_id AND a.approval_status = 'rejected'), \
             (SELECT COUNT(*) FROM netbox_sync_approvals a WHERE a.sync_batch_id = b.batch_id AND a.approval_status = 'applied'), \
             (SELECT COUNT(*) FROM netbox_sync_approvals a WHERE a.sync_batch_id = b.batch_id AND a.approval_status = 'rolled_back'), \
             (SELECT COUNT(*) FROM netbox_sync_approvals a WHERE a.sync_batch_id = b.batch_id AND a.approval_status IN ('failed', 'conflict')), \
             (SELECT json_group_object(approval_status || '/' || action, n) FROM \
               (SELECT approval_status, action, COUNT(*) AS n FROM netbox_sync_approvals a \
                WHERE a.sync_batch_id = b.batch_id GROUP BY approval_status, action)) \
             FROM netbox_sync_batches b ORDER BY b.planned_at DESC, b.batch_id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Batch {
                batch_id: r.get(0)?,
                netbox_url: r.get(1)?,
                planned_at: r.get(2)?,
                planned_by: r.get(3)?,
                state: r.get(4)?,
                creates: r.get(5)?,
                updates: r.get(6)?,
                deletes: r.get(7)?,
                pending: r.get(8)?,
                approved: r.get(9)?,
                rejected: r.get(10)?,
                applied: r.get(11)?,
                rolled_back: r.get(12)?,
                failed: r.get(13)?,
                pending_by_action: ActionCounts::default(),
                to_apply: ActionCounts::default(),
                applied_by_action: ActionCounts::default(),
            })
            .map(|mut batch| {
                let counts: serde_json::Map<String, serde_json::Value> = r
                    .get::<_, Option<String>>(14)
                    .ok()
                    .flatten()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                let of = |statuses: &[&str]| {
                    let n = |action: &str| {
                        statuses
                            .iter()
                            .filter_map(|status| counts.get(&format!("{status}/{action}")))
                            .filter_map(serde_json::Value::as_i64)
                            .sum()
                    };
                    ActionCounts {
                        creates: n("create"),
                        updates: n("update"),
                        deletes: n("delete"),
                    }
                };
                batch.pending_by_action = of(&["pending"]);
                batch.to_apply = of(&["approved", "failed"]);
                batch.applied_by_action = of(&["applied"]);
                batch
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The items of a batch in plan order.
    pub fn batch_items(&self, batch_id: &str) -> Result<Vec<ApprovalItem>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM netbox_sync_approvals a LEFT JOIN devices d ON d.id = a.device_id \
             WHERE a.sync_batch_id = ?1 ORDER BY a.id"
        ))?;
        let rows = stmt.query_map([batch_id], item_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One item by id.
    pub fn approval_item(&self, item_id: i64) -> Result<Option<ApprovalItem>> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM netbox_sync_approvals a LEFT JOIN devices d ON d.id = a.device_id \
                 WHERE a.id = ?1"
            ))?
            .query_row([item_id], item_from_row)
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reviewed_digest_covers_the_target_and_request_and_nothing_else() {
        let changes = r#"{"endpoint":"virtualization/virtual-machines","key":"vm:a","body":{"name":"a","vcpus":2}}"#;
        let digest = |action, id, text: &str| {
            reviewed_digest(
                action,
                Some("virtualization.virtualmachine"),
                id,
                Some(text),
            )
        };
        let base = digest(ApprovalAction::Create, None, changes);
        assert_eq!(base.len(), 64);
        // Key order is not content.
        let reordered = r#"{"body":{"vcpus":2,"name":"a"},"key":"vm:a","endpoint":"virtualization/virtual-machines"}"#;
        assert_eq!(digest(ApprovalAction::Create, None, reordered), base);
        // What apply adds after a run is not what was reviewed.
        let noted = r#"{"endpoint":"virtualization/virtual-machines","key":"vm:a","body":{"name":"a","vcpus":2},"conflict":{"note":"x"},"result":1}"#;
        assert_eq!(digest(ApprovalAction::Create, None, noted), base);
        // The body, the action and the target are.
        let bigger = r#"{"endpoint":"virtualization/virtual-machines","key":"vm:a","body":{"name":"a","vcpus":4}}"#;
        assert_ne!(digest(ApprovalAction::Create, None, bigger), base);
        assert_ne!(digest(ApprovalAction::Update, None, changes), base);
        assert_ne!(digest(ApprovalAction::Create, Some(7), changes), base);
    }
}
