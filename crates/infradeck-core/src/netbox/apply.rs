//! Apply, and the write engine rollback shares (`Run`). Only approved items are written, parents before children; before each
//! write the objects are read again and compared with the plan, and a difference makes the item
//! a conflict instead of a write. Each item is claimed with a conditional status move first, so
//! two processes applying one batch write each item once, and a crash or failure half-way leaves
//! an item that the next run verifies against NetBox before writing again.
//!
//! Writes go through NetBox's list endpoints in chunks (bulk POST, PATCH and DELETE, one
//! transaction each): the reads that guard them are one list request per chunk too. NetBox 4.7
//! checks `If-Match` on bulk PATCH and DELETE against the list of ETags sent (each object's
//! must be among them), so updates and deletes keep their precondition. When NetBox refuses a
//! chunk it names the objects to blame; the chunk is sent again without them, then one object
//! at a time, so one bad object never fails its neighbours.

use super::client::{BulkEntry, BulkError, NetboxClient, WriteError, Written};
use super::plan::{
    CLUSTER_TYPES, CLUSTERS, CUSTOM_FIELDS, DEVICES, ENDPOINTS, IFACES, IPS, MACS, PROVENANCE,
    SITES, TAGS, VMS, is_tagged, observed, rank, write_body,
};
use super::resolve::Resolver;
use super::rollback::{recreate_body, rollback_data};
use crate::app::ApplyReport;
use crate::model::{ApprovalAction, ApprovalStatus};
use crate::store::{ApprovalItem, ItemResult, Store};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// Objects per bulk request. Also bounds the `If-Match` header (~40 bytes per ETag) well under
/// the 8 KB request-header limit of gunicorn and most proxies.
pub const CHUNK: usize = 64;
/// Chunks of one stage written at once. NetBox spends ~80 ms of Python per object even in bulk
/// (validation, change log, search cache), one CPU per worker: two chunks in flight keep two of
/// its workers busy, which is what a 2-core NetBox host has.
const IN_FLIGHT: usize = 3;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// A batch with more approved deletes than `max_deletes` needs this many allowed.
    pub allow_deletes: Option<u32>,
    pub max_deletes: u32,
    /// Objects per bulk request; 1 writes one object per request (the baseline `bench` measures).
    pub chunk: usize,
}

impl Default for ApplyOptions {
    fn default() -> ApplyOptions {
        ApplyOptions {
            dry_run: false,
            allow_deletes: None,
            max_deletes: 10,
            chunk: CHUNK,
        }
    }
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
    key: String,
    fields: BTreeMap<String, (Value, Value)>,
    body: Value,
    /// Every comparable field of the object as the plan saw it.
    seen: Option<BTreeMap<String, Value>>,
    /// How to find the object a create makes (list filters, lookups allowed); by name if absent.
    matcher: Option<Value>,
    /// Keys of the items of this batch this one needs written first.
    needs: Vec<String>,
    /// What the created object becomes the primary of: for a MAC its interface (a lookup), for
    /// an address `{"target": lookup of the VM or device, "field": "primary_ip4"}`.
    primary_of: Option<Value>,
    /// An update that adopts an untagged object (adds the tag): the one write allowed on an
    /// object without the tag.
    adopts: bool,
    /// One alternative of a choice (an address two machines claim): the choice's key.
    choice: Option<String>,
}

impl Plan {
    /// An update that only sets primary IPs: written once the addresses exist (one that clears
    /// them goes at its kind's turn, before the addresses move).
    fn sets_only_primaries(&self) -> bool {
        !self.fields.is_empty()
            && self
                .fields
                .iter()
                .all(|(k, (_, to))| super::plan::is_primary_field(k) && !to.is_null())
    }
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
        ENDPOINTS.contains(&endpoint.as_str()),
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
    let text = |key: &str| {
        changes
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Plan {
        object: text("object"),
        key: text("key"),
        endpoint,
        fields,
        body: changes.get("body").cloned().unwrap_or(Value::Null),
        matcher: changes.get("match").cloned(),
        seen: changes
            .get("seen")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        needs: changes
            .get("needs")
            .and_then(Value::as_array)
            .map(|n| {
                n.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        primary_of: changes.get("primary_of").cloned(),
        adopts: changes.get("adopt").is_some(),
        choice: changes
            .pointer("/choice/group")
            .and_then(Value::as_str)
            .map(str::to_string),
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
}

/// For each choice (an address two machines claim), the numbers of its alternatives that are
/// approved or further along: more than one means no decision was made.
fn chosen_alternatives(
    items: &[ApprovalItem],
    numbers: &HashMap<i64, usize>,
) -> HashMap<String, Vec<usize>> {
    let mut chosen: HashMap<String, Vec<usize>> = HashMap::new();
    for item in items {
        let decided = matches!(
            item.approval_status,
            ApprovalStatus::Approved
                | ApprovalStatus::Applying
                | ApprovalStatus::Applied
                | ApprovalStatus::Failed
        );
        if let (true, Some(group)) = (decided, parse_plan(item).ok().and_then(|p| p.choice)) {
            chosen.entry(group).or_default().push(numbers[&item.id]);
        }
    }
    for list in chosen.values_mut() {
        list.sort_unstable();
    }
    chosen
}

fn conflict(note: impl Into<String>) -> Outcome {
    Outcome::Conflict {
        current: Value::Null,
        note: note.into(),
    }
}

/// Apply or rollback: which way the items are undone or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Apply,
    Rollback,
}

/// The request an item needs in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    Create,
    Update,
    Delete,
}

fn op_of(mode: Mode, action: ApprovalAction) -> Op {
    match (mode, action) {
        (Mode::Apply, ApprovalAction::Create) | (Mode::Rollback, ApprovalAction::Delete) => {
            Op::Create
        }
        (_, ApprovalAction::Update) => Op::Update,
        (Mode::Apply, ApprovalAction::Delete) | (Mode::Rollback, ApprovalAction::Create) => {
            Op::Delete
        }
    }
}

/// (item id, what the created object becomes the primary of, the created object's id).
type Primary = (i64, Value, i64);

/// One item this run handles.
struct Work {
    item: ApprovalItem,
    plan: Plan,
    /// Its number within the batch (1-based), as `review` shows and `approve` takes it.
    number: usize,
    op: Op,
}

impl Work {
    fn endpoint(&self) -> &str {
        &self.plan.endpoint
    }

    fn stage(&self, mode: Mode) -> (u8, u8) {
        let rank = if self.op == Op::Update && self.plan.sets_only_primaries() {
            super::plan::PRIMARY_RANK
        } else {
            rank(&self.plan.endpoint)
        };
        stage_of(mode, self.op, rank)
    }
}

/// When an item is written, as a sort key: creates and updates parents first, deletes children
/// first; apply writes before it deletes. Rollback first reverts updates, in the reverse of the
/// order apply made them (a primary IP set after its address moved is put back before the
/// address moves back; a VM the batch put on a new device lets go of it before NetBox is asked
/// to delete the device), then undoes creates, then re-creates what the batch deleted.
fn stage_of(mode: Mode, op: Op, r: u8) -> (u8, u8) {
    match (mode, op) {
        (Mode::Apply, Op::Delete) => (1, 255 - r),
        (Mode::Apply, _) => (0, r),
        (Mode::Rollback, Op::Update) => (0, 255 - r),
        (Mode::Rollback, Op::Delete) => (1, 255 - r),
        (Mode::Rollback, Op::Create) => (2, r),
    }
}

/// What NetBox's change log records with each write: the batch and who approved what is sent
/// (NetBox keeps at most 200 characters).
fn changelog_message<'a>(batch: &str, items: impl Iterator<Item = &'a ApprovalItem>) -> String {
    let mut reviewers: Vec<&str> = items.filter_map(|i| i.approved_by.as_deref()).collect();
    reviewers.sort_unstable();
    reviewers.dedup();
    let message = match reviewers.as_slice() {
        [] => format!("infradeck batch {batch}"),
        names => format!("infradeck batch {batch}, approved by {}", names.join("; ")),
    };
    crate::text::first_chars(&message, 200).to_string()
}

pub use crate::store::item_numbers;

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
    let stale_before = crate::time::format(chrono::Utc::now() - STALE_CLAIM);
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
    let eligible = |i: &ApprovalItem| match i.approval_status {
        ApprovalStatus::Approved | ApprovalStatus::Failed => true,
        ApprovalStatus::Applying => i
            .applied_at
            .as_deref()
            .is_some_and(|at| at < stale_before.as_str()),
        _ => false,
    };
    let message = changelog_message(batch, items.iter().filter(|i| eligible(i)));
    let mut run = Run::new(store, client, batch, Mode::Apply, &message, options.chunk);
    run.report.eligible = items.iter().filter(|i| eligible(i)).count();
    if options.dry_run {
        let numbers = item_numbers(&items);
        // In the order apply sends them, grouped by kind under a count.
        let mut shown: Vec<(&ApprovalItem, (u8, u8), String)> = items
            .iter()
            .filter(|i| eligible(i))
            .map(|i| {
                let endpoint = i.netbox_object_type.clone().unwrap_or_default();
                let order = stage_of(Mode::Apply, op_of(Mode::Apply, i.action), rank(&endpoint));
                (i, order, endpoint)
            })
            .collect();
        shown.sort_by_key(|(i, order, endpoint)| (*order, endpoint.clone(), numbers[&i.id]));
        for group in shown.chunk_by(|a, b| a.2 == b.2) {
            let n = group.len();
            run.report.lines.push(format!(
                "== {}: {n} request{}",
                group[0].2,
                if n == 1 { "" } else { "s" }
            ));
            for (item, _, _) in group {
                let line = match (parse_plan(item), item.changed_since_approval()) {
                    (Ok(_), Some(why)) => {
                        format!(
                            "#{} would be refused as a conflict: {why}",
                            numbers[&item.id]
                        )
                    }
                    (Ok(plan), None) => {
                        describe_request(client, item, numbers[&item.id], &plan, &message)
                    }
                    (Err(err), _) => format!("#{} cannot be applied: {err}", numbers[&item.id]),
                };
                run.report.lines.push(line);
            }
        }
        return Ok(run.report);
    }
    if run.report.eligible == 0 {
        return Ok(run.report);
    }
    check_auth(client).await?;
    run.execute(items, eligible).await?;
    run.record_batch_state()?;
    tracing::info!(
        batch,
        netbox = client.base_url(),
        applied = run.report.applied,
        conflicts = run.report.conflicts,
        failed = run.report.failed,
        skipped = run.report.skipped,
        requests = run.report.requests,
        "netbox apply"
    );
    Ok(run.report)
}

/// A batch's state from its items' statuses.
fn batch_state(items: &[ApprovalItem]) -> &'static str {
    let any = |s: ApprovalStatus| items.iter().any(|i| i.approval_status == s);
    if any(ApprovalStatus::Conflict) || any(ApprovalStatus::Failed) || any(ApprovalStatus::Applying)
    {
        "partial"
    } else if any(ApprovalStatus::Applied) {
        if any(ApprovalStatus::RolledBack) {
            "partial"
        } else {
            "applied"
        }
    } else if any(ApprovalStatus::RolledBack) {
        "rolled_back"
    } else {
        "pending"
    }
}

pub(super) async fn check_auth(client: &NetboxClient) -> anyhow::Result<()> {
    client.check_auth().await.map_err(|err| {
        anyhow::anyhow!(
            "NetBox at {} did not accept the request, so nothing was claimed or written: {err}",
            client.base_url()
        )
    })
}

/// One apply or rollback of one batch.
pub(super) struct Run<'a> {
    pub(super) store: &'a mut Store,
    batch: String,
    net: Net<'a>,
    pub(super) report: ApplyReport,
}

/// The NetBox side of a run: what the chunks written at once share (so no store in it).
struct Net<'a> {
    client: &'a NetboxClient,
    mode: Mode,
    message: String,
    chunk: usize,
    resolver: Resolver<'a>,
    /// Write requests sent (counted by chunks in flight together).
    requests: std::sync::atomic::AtomicUsize,
    /// Rollback: the names this batch gave objects (renames), to the names they had. Reverted
    /// first, they leave what the batch created referring to the old name: not a hand edit.
    renamed: HashMap<String, String>,
}

impl<'a> Run<'a> {
    /// Records the batch's state from its items as this run left them.
    pub(super) fn record_batch_state(&mut self) -> anyhow::Result<()> {
        let items = self.store.batch_items(&self.batch)?;
        let state = batch_state(&items);
        self.store.write(|w| {
            w.set_batch_state(
                &self.batch,
                state,
                &crate::identity::os_user(),
                &crate::time::now(),
            )
        })?;
        Ok(())
    }

    pub(super) fn new(
        store: &'a mut Store,
        client: &'a NetboxClient,
        batch: &str,
        mode: Mode,
        message: &str,
        chunk: usize,
    ) -> Run<'a> {
        Run {
            store,
            batch: batch.to_string(),
            net: Net {
                client,
                mode,
                message: message.to_string(),
                chunk: chunk.max(1),
                resolver: Resolver::new(client),
                requests: Default::default(),
                renamed: HashMap::new(),
            },
            report: ApplyReport::default(),
        }
    }

    /// Rollback: remembers the renames among `items` (applied updates of `name`).
    pub(super) fn with_renames(mut self, items: &[ApprovalItem]) -> Self {
        for item in items {
            if item.action != ApprovalAction::Update
                || item.approval_status != ApprovalStatus::Applied
            {
                continue;
            }
            let Ok(plan) = parse_plan(item) else { continue };
            if let Some((Value::String(from), Value::String(to))) = plan.fields.get("name") {
                self.net.renamed.insert(to.clone(), from.clone());
            }
        }
        self
    }

    /// Claims and writes every item `eligible` picks, stage by stage; items whose parents
    /// another process is writing wait for it (up to `DEFER_LIMIT`).
    pub(super) async fn execute(
        &mut self,
        items: Vec<ApprovalItem>,
        eligible: impl Fn(&ApprovalItem) -> bool,
    ) -> anyhow::Result<()> {
        let numbers = item_numbers(&items);
        let chosen = chosen_alternatives(&items, &numbers);
        let mut todo: Vec<Work> = Vec::new();
        let mut changed = Vec::new();
        for item in items.into_iter().filter(|i| eligible(i)) {
            let number = numbers[&item.id];
            // An approval is of a digest: a request that moved since is not what was approved.
            let moved = match self.net.mode {
                Mode::Apply => item.changed_since_approval(),
                Mode::Rollback => None,
            };
            // A choice is of one alternative: two approved is no decision.
            let moved = moved.or_else(|| {
                let group = parse_plan(&item).ok()?.choice?;
                let approved = chosen.get(&group).filter(|n| n.len() > 1)?;
                (self.net.mode == Mode::Apply).then(|| {
                    format!(
                        "{group} is claimed by more than one machine and #{} are all approved: reject all but the one that holds it",
                        approved.iter().map(usize::to_string).collect::<Vec<_>>().join(", #")
                    )
                })
            });
            match parse_plan(&item) {
                Ok(plan) => {
                    let work = Work {
                        op: op_of(self.net.mode, item.action),
                        item,
                        plan,
                        number,
                    };
                    match moved {
                        Some(why) => changed.push((work, conflict(why))),
                        None => todo.push(work),
                    }
                }
                Err(err) => {
                    self.report.failed += 1;
                    self.report.lines.push(format!("#{number} failed: {err}"));
                }
            }
        }
        // Recorded before any stage, so the items that need them are refused, not sent.
        self.claim_and_record_unwritten(changed)?;
        let deferring_since = tokio::time::Instant::now();
        while !todo.is_empty() {
            let mut stages: Vec<(u8, u8)> = todo.iter().map(|w| w.stage(self.net.mode)).collect();
            stages.sort_unstable();
            stages.dedup();
            let mut waiting = Vec::new();
            for stage in stages {
                let (now, later): (Vec<Work>, Vec<Work>) = todo
                    .into_iter()
                    .partition(|w| w.stage(self.net.mode) == stage);
                todo = later;
                let deferred = self.run_stage(now).await?;
                waiting.extend(deferred);
            }
            if waiting.is_empty() {
                break;
            }
            if deferring_since.elapsed() >= DEFER_LIMIT {
                let outcomes = waiting
                    .into_iter()
                    .map(|w| {
                        let reason = format!(
                            "waited {} s for items another process claimed ({}) and gave up",
                            DEFER_LIMIT.as_secs(),
                            w.plan.needs.join(", ")
                        );
                        (w, Outcome::Failed(reason))
                    })
                    .collect();
                self.claim_and_record_unwritten(outcomes)?;
                break;
            }
            tokio::time::sleep(DEFER_PAUSE).await;
            todo = waiting;
        }
        self.report.requests = self.net.requests.load(std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// One stage: checks each item's parents, claims the items that can go, writes them by
    /// endpoint and request kind in chunks, records the outcomes. Returns the items that wait
    /// for another process.
    async fn run_stage(&mut self, work: Vec<Work>) -> anyhow::Result<Vec<Work>> {
        let statuses: HashMap<String, (usize, ApprovalStatus)> = {
            let items = self.store.batch_items(&self.batch)?;
            let numbers = item_numbers(&items);
            items
                .iter()
                .filter_map(|i| {
                    let plan = parse_plan(i).ok()?;
                    Some((plan.key, (numbers[&i.id], i.approval_status)))
                })
                .collect()
        };
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        let mut refused = Vec::new();
        for w in work {
            match self.parents_state(&w, &statuses) {
                Parents::Ready => ready.push(w),
                Parents::Busy => waiting.push(w),
                Parents::Failed(reason) => refused.push((w, Outcome::Failed(reason))),
            }
        }
        self.claim_and_record_unwritten(refused)?;
        let mut groups: BTreeMap<(Op, String), Vec<Work>> = BTreeMap::new();
        for w in ready {
            groups
                .entry((w.op, w.endpoint().to_string()))
                .or_default()
                .push(w);
        }
        for ((op, endpoint), group) in groups {
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let mut in_flight = Vec::new();
                while in_flight.len() < IN_FLIGHT && group.peek().is_some() {
                    let chunk: Vec<Work> = group.by_ref().take(self.net.chunk).collect();
                    let claimed = self.claim(chunk)?;
                    if !claimed.is_empty() {
                        in_flight.push(claimed);
                    }
                }
                let net = &self.net;
                let written = futures::future::join_all(
                    in_flight
                        .into_iter()
                        .map(|chunk| net.write(op, &endpoint, chunk)),
                )
                .await;
                for outcomes in written {
                    self.record(outcomes)?;
                }
            }
        }
        Ok(waiting)
    }

    /// Whether an item's parents (in rollback: nothing; children go first by stage) are in
    /// NetBox.
    fn parents_state(
        &self,
        work: &Work,
        statuses: &HashMap<String, (usize, ApprovalStatus)>,
    ) -> Parents {
        if self.net.mode == Mode::Rollback || work.op != Op::Create {
            return Parents::Ready;
        }
        for need in &work.plan.needs {
            let Some((number, status)) = statuses.get(need) else {
                continue;
            };
            match status {
                ApprovalStatus::Applied => {}
                // Ours, still to come in this run, or another process's, in flight.
                ApprovalStatus::Approved | ApprovalStatus::Applying => return Parents::Busy,
                other => {
                    return Parents::Failed(format!(
                        "not sent: it needs #{number} ({need}), which is {}",
                        describe_status(*other)
                    ));
                }
            }
        }
        Parents::Ready
    }

    /// Claims `chunk`'s items (one transaction); returns those this run got.
    fn claim(&mut self, chunk: Vec<Work>) -> anyhow::Result<Vec<Work>> {
        let at = crate::time::now();
        let mode = self.net.mode;
        let got: Vec<bool> = self.store.write(|w| {
            chunk
                .iter()
                .map(|work| {
                    let from: &[ApprovalStatus] = match (mode, work.item.approval_status) {
                        (Mode::Rollback, _) => &[ApprovalStatus::Applied],
                        (Mode::Apply, ApprovalStatus::Approved) => &[ApprovalStatus::Approved],
                        (Mode::Apply, _) => &[
                            ApprovalStatus::Approved,
                            ApprovalStatus::Failed,
                            ApprovalStatus::Applying,
                        ],
                    };
                    w.claim_item(work.item.id, from, ApprovalStatus::Applying, &at)
                })
                .collect()
        })?;
        let mut claimed = Vec::new();
        for (work, got) in chunk.into_iter().zip(got) {
            if got {
                claimed.push(work);
            } else {
                self.report.skipped += 1;
            }
        }
        Ok(claimed)
    }

    /// Outcomes for items failed before any request: claimed first, so a second process does not
    /// write them meanwhile.
    fn claim_and_record_unwritten(&mut self, outcomes: Vec<(Work, Outcome)>) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let (works, outcomes): (Vec<Work>, Vec<Outcome>) = outcomes.into_iter().unzip();
        let mut by_id: HashMap<i64, Outcome> =
            works.iter().map(|w| w.item.id).zip(outcomes).collect();
        let claimed = self.claim(works)?;
        let outcomes = claimed
            .into_iter()
            .filter_map(|w| {
                let outcome = by_id.remove(&w.item.id)?;
                Some((w, outcome))
            })
            .collect();
        self.record(outcomes)
    }

    /// Records outcomes (one transaction) and adds their lines to the report.
    fn record(&mut self, outcomes: Vec<(Work, Outcome)>) -> anyhow::Result<()> {
        let at = crate::time::now();
        let verb = match self.net.mode {
            Mode::Apply => "applied",
            Mode::Rollback => "rolled back",
        };
        let mut rows = Vec::with_capacity(outcomes.len());
        for (work, outcome) in outcomes {
            let Work {
                item, plan, number, ..
            } = work;
            let (line, status, object_id, rollback, changes) = match outcome {
                Outcome::Done {
                    object_id,
                    rollback,
                    note,
                } => {
                    self.report.applied += 1;
                    let status = match self.net.mode {
                        Mode::Apply => ApprovalStatus::Applied,
                        Mode::Rollback => ApprovalStatus::RolledBack,
                    };
                    (
                        format!(
                            "#{number} {verb}: {} {} {}{note}",
                            item.action.as_str(),
                            plan.endpoint,
                            plan.object
                        ),
                        status,
                        object_id,
                        Some(rollback),
                        None,
                    )
                }
                Outcome::Conflict { current, note } => {
                    self.report.conflicts += 1;
                    match self.net.mode {
                        Mode::Apply => (
                            format!(
                                "#{number} conflict: {} {}: {note}",
                                plan.endpoint, plan.object
                            ),
                            ApprovalStatus::Conflict,
                            None,
                            None,
                            Some(with_outcome(
                                &item,
                                "conflict",
                                json!({"note": note, "netbox_now": current}),
                            )),
                        ),
                        // A rollback that could not happen leaves the item applied, so it can be
                        // tried again.
                        Mode::Rollback => (
                            format!(
                                "#{number} rollback conflict: {} {}: {note}",
                                plan.endpoint, plan.object
                            ),
                            ApprovalStatus::Applied,
                            None,
                            None,
                            Some(with_outcome(
                                &item,
                                "rollback_conflict",
                                json!({"note": note, "netbox_now": current}),
                            )),
                        ),
                    }
                }
                Outcome::Failed(error) => {
                    self.report.failed += 1;
                    match self.net.mode {
                        Mode::Apply => (
                            format!(
                                "#{number} failed: {} {}: {error}",
                                plan.endpoint, plan.object
                            ),
                            ApprovalStatus::Failed,
                            None,
                            None,
                            Some(with_outcome(&item, "error", json!(error))),
                        ),
                        Mode::Rollback => (
                            format!(
                                "#{number} rollback failed: {} {}: {error}",
                                plan.endpoint, plan.object
                            ),
                            ApprovalStatus::Applied,
                            None,
                            None,
                            Some(with_outcome(&item, "rollback_error", json!(error))),
                        ),
                    }
                }
            };
            self.report
                .lines
                .push(crate::sanitize::for_terminal(&line).into_owned());
            rows.push((item.id, status, object_id, rollback, changes));
        }
        self.store.write(|w| {
            for (id, status, object_id, rollback, changes) in &rows {
                w.finish_item(
                    *id,
                    &ItemResult {
                        status: *status,
                        netbox_object_id: *object_id,
                        at: &at,
                        rollback_data: rollback.as_ref(),
                        proposed_changes: changes.as_ref(),
                    },
                )?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl<'a> Net<'a> {
    async fn write(&self, op: Op, endpoint: &str, chunk: Vec<Work>) -> Vec<(Work, Outcome)> {
        match op {
            Op::Create => self.create(endpoint, chunk).await,
            Op::Update => self.update(endpoint, chunk).await,
            Op::Delete => self.delete(endpoint, chunk).await,
        }
    }

    // ------------------------------------------------------------------- creates

    /// Creates: the objects' matchers and bodies resolved, an object already there is verified
    /// (ours and as planned: done; else a conflict), the rest are sent in one bulk POST.
    async fn create(&self, endpoint: &str, chunk: Vec<Work>) -> Vec<(Work, Outcome)> {
        let mut outcomes = Vec::new();
        // What to send and how to recognise it, per item.
        let mut specs: Vec<(Value, Option<Value>)> = Vec::with_capacity(chunk.len());
        for w in &chunk {
            let (mut body, matcher) = match self.mode {
                Mode::Apply => (
                    w.plan.body.clone(),
                    Some(
                        w.plan
                            .matcher
                            .clone()
                            .unwrap_or_else(|| json!({"name": w.plan.object})),
                    ),
                ),
                Mode::Rollback => {
                    let before = rollback_data(&w.item)
                        .get("before")
                        .cloned()
                        .unwrap_or(Value::Null);
                    (recreate_body(&before), None)
                }
            };
            if let Some(map) = body.as_object_mut() {
                map.insert("changelog_message".into(), json!(self.message));
            }
            specs.push((body, matcher));
        }
        let mut values: Vec<Value> = specs
            .iter()
            .flat_map(|(b, m)| [b.clone(), m.clone().unwrap_or(Value::Null)])
            .collect();
        let resolved = self.resolver.resolve(&mut values).await;
        let mut pending = Vec::new();
        for (i, w) in chunk.into_iter().enumerate() {
            let errors = [&resolved[2 * i], &resolved[2 * i + 1]];
            if let Some(err) = errors.iter().find_map(|r| r.as_ref().err()) {
                outcomes.push((w, Outcome::Failed(err.clone())));
                continue;
            }
            let body = values[2 * i].clone();
            let matcher = values[2 * i + 1].clone();
            pending.push((w, body, matcher));
        }
        // Created since the plan (by someone else, or by an earlier run of ours cut short)?
        let matchers: Vec<Value> = pending
            .iter()
            .map(|(_, _, m)| m.clone())
            .filter(|m| !m.is_null())
            .collect();
        let found = match self.resolver.find(endpoint, &matchers).await {
            Ok(found) => found,
            Err(err) => {
                outcomes.extend(
                    pending
                        .into_iter()
                        .map(|(w, ..)| (w, Outcome::Failed(err.clone()))),
                );
                return outcomes;
            }
        };
        let mut found = found.into_iter();
        let mut to_send = Vec::new();
        for (w, body, matcher) in pending {
            let existing = if matcher.is_null() {
                Vec::new()
            } else {
                found.next().unwrap_or_default()
            };
            match existing.first() {
                None => to_send.push((w, body, matcher)),
                Some(object) => {
                    let current = observed(endpoint, object);
                    let ours = endpoint == TAGS || is_tagged(object, &self.client.tag);
                    let outcome = if ours && drifted(&w.plan, &current, to_side).is_empty() {
                        Outcome::Done {
                            object_id: object.get("id").and_then(Value::as_i64),
                            rollback: json!({"created": true, "before": null, "request_id": null}),
                            note: " (already in NetBox from an earlier run)".into(),
                        }
                    } else {
                        Outcome::Conflict {
                            current: Value::Object(current.into_iter().collect()),
                            note: "an object of that name appeared in NetBox after the plan".into(),
                        }
                    };
                    outcomes.push((w, outcome));
                }
            }
        }
        let sent = self
            .send_chunk(
                Method::POST,
                endpoint,
                to_send,
                |(_, body, _)| body.clone(),
                None,
            )
            .await;
        let mut primaries = Vec::new();
        for ((w, _, matcher), result) in sent {
            let outcome = match result {
                Ok(Written { object, request_id }) => {
                    let id = object.get("id").and_then(Value::as_i64);
                    let rollback = match self.mode {
                        Mode::Apply => {
                            json!({"created": true, "before": null, "request_id": request_id})
                        }
                        Mode::Rollback => rollback_data(&w.item),
                    };
                    if let (Some(id), false) = (id, matcher.is_null()) {
                        self.resolver.remember(endpoint, &matcher, id);
                    }
                    if let (Some(id), Some(iface)) = (id, &w.plan.primary_of) {
                        primaries.push((w.item.id, iface.clone(), id));
                    }
                    Outcome::Done {
                        object_id: id,
                        rollback,
                        note: String::new(),
                    }
                }
                Err(err) => Outcome::Failed(err),
            };
            outcomes.push((w, outcome));
        }
        if endpoint == VMS && self.mode == Mode::Rollback {
            for (w, outcome) in outcomes.iter_mut() {
                let cascade = rollback_data(&w.item).get("cascade").cloned();
                if let (
                    Some(cascade),
                    Outcome::Done {
                        object_id: Some(vm),
                        note,
                        ..
                    },
                ) = (cascade.filter(|c| !c.is_null()), &mut *outcome)
                {
                    note.push_str(&self.restore_cascade(*vm, &cascade).await);
                }
            }
        }
        if !primaries.is_empty() && self.mode == Mode::Apply {
            let notes = self.set_primaries(primaries).await;
            for (w, outcome) in outcomes.iter_mut() {
                if let (Some(note), Outcome::Done { note: n, .. }) =
                    (notes.get(&w.item.id), outcome)
                {
                    n.push_str(note);
                }
            }
        }
        outcomes
    }

    /// Makes each new MAC its interface's primary MAC and each new address its holder's primary IP
    /// (one bulk PATCH per endpoint and field); item id → a note for
    /// the items where that failed.
    async fn set_primaries(&self, primaries: Vec<Primary>) -> HashMap<i64, String> {
        // A MAC names its interface; an address `{"target", "field"}`. VM and device objects
        // live at different endpoints: one PATCH per endpoint and field.
        let mut by_target: BTreeMap<(String, String), Vec<Primary>> = BTreeMap::new();
        for (item, primary_of, created) in primaries {
            let (target, field) = match primary_of.get("target") {
                Some(target) => (
                    target.clone(),
                    primary_of
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("primary_ip4")
                        .to_string(),
                ),
                None => (primary_of, "primary_mac_address".to_string()),
            };
            let endpoint = target
                .pointer("/$lookup/endpoint")
                .and_then(Value::as_str)
                .unwrap_or(IFACES)
                .to_string();
            by_target
                .entry((endpoint, field))
                .or_default()
                .push((item, target, created));
        }
        let mut notes = HashMap::new();
        for ((endpoint, field), primaries) in by_target {
            notes.extend(self.set_primaries_at(&endpoint, &field, primaries).await);
        }
        notes
    }

    async fn set_primaries_at(
        &self,
        endpoint: &str,
        field: &str,
        primaries: Vec<Primary>,
    ) -> HashMap<i64, String> {
        let what = if field == "primary_mac_address" {
            "its interface's primary MAC".to_string()
        } else {
            format!("the {field} of its VM or device")
        };
        let mut notes = HashMap::new();
        let mut values: Vec<Value> = primaries
            .iter()
            .map(|(_, target, _)| target.clone())
            .collect();
        let resolved = self.resolver.resolve(&mut values).await;
        let mut body = Vec::new();
        for ((item, _, created), (target, ok)) in primaries.iter().zip(values.iter().zip(&resolved))
        {
            match (ok, target.as_i64()) {
                (Ok(()), Some(target)) => body.push((
                    *item,
                    json!({"id": target, field: created, "changelog_message": self.message}),
                )),
                (Err(err), _) => {
                    notes.insert(*item, format!(" (not made {what}: {err})"));
                }
                _ => {
                    notes.insert(*item, format!(" (not made {what}: no id to point at)"));
                }
            }
        }
        if body.is_empty() {
            return notes;
        }
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let list = Value::Array(body.iter().map(|(_, b)| b.clone()).collect());
        if let Err(err) = self.client.bulk(Method::PATCH, endpoint, &list, None).await {
            let text = bulk_error_text(&err);
            for (item, _) in body {
                notes.insert(item, format!(" (not made {what}: {text})"));
            }
        }
        notes
    }

    // ------------------------------------------------------------ updates, deletes

    /// The objects of `chunk` as NetBox has them now (one list request), by id.
    async fn read_current(
        &self,
        endpoint: &str,
        chunk: &[Work],
    ) -> Result<HashMap<i64, Value>, String> {
        let ids: Vec<i64> = chunk
            .iter()
            .filter_map(|w| w.item.netbox_object_id)
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let query: Vec<(&str, String)> = ids.iter().map(|id| ("id", id.to_string())).collect();
        let objects = self
            .client
            .list(endpoint, &query)
            .await
            .map_err(|e| e.to_string())?;
        Ok(objects
            .into_iter()
            .filter_map(|o| Some((o.get("id")?.as_i64()?, o)))
            .collect())
    }

    async fn update(&self, endpoint: &str, chunk: Vec<Work>) -> Vec<(Work, Outcome)> {
        let mut outcomes = Vec::new();
        let current = match self.read_current(endpoint, &chunk).await {
            Ok(current) => current,
            Err(err) => return all_failed(chunk, &err),
        };
        let mut to_send = Vec::new();
        for w in chunk {
            let Some(id) = w.item.netbox_object_id else {
                outcomes.push((
                    w,
                    Outcome::Failed("an update without a NetBox object id".into()),
                ));
                continue;
            };
            let Some(object) = current.get(&id) else {
                outcomes.push((w, conflict("the object was deleted in NetBox")));
                continue;
            };
            let adopting = self.mode == Mode::Apply && w.plan.adopts;
            if !is_tagged(object, &self.client.tag) && !adopting {
                let note = format!("the object no longer carries the `{}` tag", self.client.tag);
                outcomes.push((w, conflict(note)));
                continue;
            }
            let seen = observed(endpoint, object);
            let body = match self.mode {
                Mode::Apply => {
                    let changed = changed_since_plan(&w.plan, &seen);
                    if !changed.is_empty() {
                        // Changed exactly as planned (an interrupted earlier run of ours wrote it)?
                        let only_planned = changed.keys().all(|k| w.plan.fields.contains_key(k));
                        let outcome = if only_planned && drifted(&w.plan, &seen, to_side).is_empty()
                        {
                            Outcome::Done {
                                object_id: Some(id),
                                rollback: json!({"before": object, "request_id": null}),
                                note: " (NetBox already had these values)".into(),
                            }
                        } else {
                            Outcome::Conflict {
                                current: Value::Object(changed),
                                note: "NetBox changed these fields after the plan".into(),
                            }
                        };
                        outcomes.push((w, outcome));
                        continue;
                    }
                    w.plan.body.clone()
                }
                Mode::Rollback => {
                    let changed = drifted(&w.plan, &seen, to_side);
                    if !changed.is_empty() {
                        outcomes.push((
                            w,
                            Outcome::Conflict {
                                current: Value::Object(changed),
                                note: "NetBox changed these fields after apply".into(),
                            },
                        ));
                        continue;
                    }
                    let restore: BTreeMap<String, Value> = w
                        .plan
                        .fields
                        .iter()
                        .map(|(k, (from, _))| (k.clone(), from.clone()))
                        .collect();
                    let mut body = write_body(endpoint, &restore);
                    // The provenance the write replaced goes back too (none: cleared).
                    if w.plan
                        .body
                        .pointer(&format!("/custom_fields/{PROVENANCE}"))
                        .is_some()
                    {
                        let before = rollback_data(&w.item)
                            .pointer(&format!("/before/custom_fields/{PROVENANCE}"))
                            .cloned()
                            .unwrap_or(Value::Null);
                        body["custom_fields"] = json!({PROVENANCE: before});
                    }
                    body
                }
            };
            let mut body = body;
            body["id"] = json!(id);
            body["changelog_message"] = json!(self.message);
            to_send.push((w, body, object.clone()));
        }
        // References by lookup (a moved address's interface, a primary IP) become ids now.
        let mut bodies: Vec<Value> = to_send.iter().map(|(_, b, _)| b.clone()).collect();
        let resolved = self.resolver.resolve(&mut bodies).await;
        let mut ready = Vec::new();
        for ((w, _, before), (body, ok)) in
            to_send.into_iter().zip(bodies.into_iter().zip(resolved))
        {
            match ok {
                Ok(()) => ready.push((w, body, before)),
                Err(err) => outcomes.push((w, Outcome::Failed(err))),
            }
        }
        for ((w, _, before), result) in self.send_guarded(Method::PATCH, endpoint, ready).await {
            let outcome = self.guarded_outcome(
                &w,
                result,
                |request_id| json!({"before": before, "request_id": request_id}),
            );
            outcomes.push((w, outcome));
        }
        outcomes
    }

    /// Sends updates or deletes `(item, body, object as read)` with the objects' ETags.
    async fn send_guarded(
        &self,
        method: Method,
        endpoint: &str,
        to_send: Vec<(Work, Value, Value)>,
    ) -> Vec<((Work, Value, Value), Result<Written, String>)> {
        let etags: Vec<String> = to_send.iter().filter_map(|(_, _, o)| etag_of(o)).collect();
        let if_match =
            (etags.len() == to_send.len() && !etags.is_empty()).then(|| etags.join(", "));
        self.send_chunk(
            method,
            endpoint,
            to_send,
            |(_, body, _)| body.clone(),
            if_match,
        )
        .await
    }

    /// How a guarded write ended: done (in apply, undone with what `undo` makes of NetBox's
    /// request id), a conflict on 412, or failed.
    fn guarded_outcome(
        &self,
        w: &Work,
        result: Result<Written, String>,
        undo: impl FnOnce(Option<String>) -> Value,
    ) -> Outcome {
        match result {
            Ok(Written { request_id, .. }) => Outcome::Done {
                object_id: w.item.netbox_object_id,
                rollback: match self.mode {
                    Mode::Apply => undo(request_id),
                    Mode::Rollback => rollback_data(&w.item),
                },
                note: String::new(),
            },
            Err(err) if err == CHANGED => {
                conflict("NetBox changed the object between read and write (412)")
            }
            Err(err) => Outcome::Failed(err),
        }
    }

    async fn delete(&self, endpoint: &str, chunk: Vec<Work>) -> Vec<(Work, Outcome)> {
        let mut outcomes = Vec::new();
        let current = match self.read_current(endpoint, &chunk).await {
            Ok(current) => current,
            Err(err) => return all_failed(chunk, &err),
        };
        let mut to_send = Vec::new();
        for w in chunk {
            let Some(id) = w.item.netbox_object_id else {
                outcomes.push((
                    w,
                    Outcome::Failed("no NetBox object id was recorded".into()),
                ));
                continue;
            };
            let Some(object) = current.get(&id) else {
                let rollback = match self.mode {
                    Mode::Apply => json!({"before": null, "request_id": null}),
                    Mode::Rollback => rollback_data(&w.item),
                };
                outcomes.push((
                    w,
                    Outcome::Done {
                        object_id: Some(id),
                        rollback,
                        note: " (already gone)".into(),
                    },
                ));
                continue;
            };
            // Tags and custom fields carry no tags: they are ours by the batch that made them.
            if endpoint != TAGS && endpoint != CUSTOM_FIELDS && !is_tagged(object, &self.client.tag)
            {
                let note = format!("the object no longer carries the `{}` tag", self.client.tag);
                outcomes.push((w, conflict(note)));
                continue;
            }
            let seen = observed(endpoint, object);
            let changed = match self.mode {
                Mode::Apply => changed_since_plan(&w.plan, &seen),
                // The object as the batch made it: a hand edit since is someone's work (what
                // it refers to, renamed back by this rollback, is not).
                Mode::Rollback => {
                    let mut changed = drifted(&w.plan, &seen, to_side);
                    changed.retain(|field, now| {
                        let made = w.plan.fields.get(field).map(|(_, to)| to);
                        let renamed_back = made
                            .and_then(Value::as_str)
                            .and_then(|to| self.renamed.get(to));
                        renamed_back.is_none_or(|old| now.as_str() != Some(old.as_str()))
                    });
                    changed
                }
            };
            if !changed.is_empty() {
                let note = match self.mode {
                    Mode::Apply => "NetBox changed the object after the plan",
                    Mode::Rollback => "NetBox changed the object after apply; not deleted",
                };
                outcomes.push((
                    w,
                    Outcome::Conflict {
                        current: Value::Object(changed),
                        note: note.into(),
                    },
                ));
                continue;
            }
            if self.mode == Mode::Rollback
                && let Some(users) = self.still_used(endpoint, id, object).await
            {
                outcomes.push((w, conflict(format!("still used by {users}; kept"))));
                continue;
            }
            let body = json!({"id": id, "changelog_message": self.message});
            to_send.push((w, body, object.clone()));
        }
        // What NetBox deletes with a VM (its interfaces, their MACs and IP addresses), read just
        // before, so rollback can bring it all back.
        let mut cascades: HashMap<i64, Value> = HashMap::new();
        if endpoint == VMS && self.mode == Mode::Apply && !to_send.is_empty() {
            let ids: Vec<i64> = to_send
                .iter()
                .filter_map(|(w, _, _)| w.item.netbox_object_id)
                .collect();
            match self.cascade_of(&ids).await {
                Ok(found) => cascades = found,
                Err(err) => {
                    let note = format!(
                        "not deleted: what NetBox would delete with it could not be read: {err}"
                    );
                    outcomes.extend(
                        to_send
                            .into_iter()
                            .map(|(w, _, _)| (w, Outcome::Failed(note.clone()))),
                    );
                    return outcomes;
                }
            }
        }
        for ((w, _, before), result) in self.send_guarded(Method::DELETE, endpoint, to_send).await {
            let outcome = match result {
                Err(err) if err.contains("HTTP 409") => conflict(format!(
                    "NetBox keeps it while other objects depend on it: {err}"
                )),
                result => self.guarded_outcome(&w, result, |request_id| {
                    json!({
                        "before": before,
                        "request_id": request_id,
                        "cascade": w.item.netbox_object_id.and_then(|id| cascades.get(&id)),
                    })
                }),
            };
            outcomes.push((w, outcome));
        }
        outcomes
    }

    async fn cascade_of(&self, vms: &[i64]) -> Result<HashMap<i64, Value>, String> {
        cascade_of(self.client, vms).await
    }

    /// Re-creates what NetBox deleted with a VM, on the VM re-created as `vm`: its interfaces,
    /// their MACs and IP addresses, then each interface's primary MAC. A note for the item's line.
    async fn restore_cascade(&self, vm: i64, cascade: &Value) -> String {
        let list = |key: &str| {
            cascade
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (ifaces, macs, ips) = (
            list("interfaces"),
            list("mac_addresses"),
            list("ip_addresses"),
        );
        let mut problems = Vec::new();
        // Old interface id → new one.
        let mut moved: HashMap<i64, i64> = HashMap::new();
        let mut primary: Vec<(i64, i64)> = Vec::new(); // (old interface, old MAC)
        let bodies: Vec<Value> = ifaces
            .iter()
            .map(|i| {
                if let Some(mac) = i.pointer("/primary_mac_address/id").and_then(Value::as_i64) {
                    primary.push((i["id"].as_i64().unwrap_or_default(), mac));
                }
                let mut body = recreate_body(i);
                body["virtual_machine"] = json!(vm);
                body["changelog_message"] = json!(self.message);
                body
            })
            .collect();
        if !bodies.is_empty() {
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self
                .client
                .bulk(Method::POST, IFACES, &Value::Array(bodies), None)
                .await
            {
                Ok((created, _)) => {
                    for (old, new) in ifaces.iter().zip(created) {
                        if let (Some(old), Some(new)) = (old["id"].as_i64(), new["id"].as_i64()) {
                            moved.insert(old, new);
                        }
                    }
                }
                Err(err) => problems.push(format!("interfaces: {}", bulk_error_text(&err))),
            }
        }
        let mut new_macs: HashMap<i64, i64> = HashMap::new();
        for (endpoint, objects) in [(MACS, &macs), (IPS, &ips)] {
            let mut olds = Vec::new();
            let bodies: Vec<Value> = objects
                .iter()
                .filter_map(|o| {
                    let iface = moved.get(&o["assigned_object_id"].as_i64()?)?;
                    let mut body = recreate_body(o);
                    body["assigned_object_id"] = json!(iface);
                    body["changelog_message"] = json!(self.message);
                    olds.push(o["id"].as_i64().unwrap_or_default());
                    Some(body)
                })
                .collect();
            if bodies.is_empty() {
                continue;
            }
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self
                .client
                .bulk(Method::POST, endpoint, &Value::Array(bodies), None)
                .await
            {
                Ok((created, _)) if endpoint == MACS => {
                    for (old, new) in olds.iter().zip(created) {
                        if let Some(new) = new["id"].as_i64() {
                            new_macs.insert(*old, new);
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => problems.push(format!("{endpoint}: {}", bulk_error_text(&err))),
            }
        }
        let patches: Vec<Value> = primary
            .iter()
            .filter_map(|(iface, mac)| {
                Some(
                    json!({"id": moved.get(iface)?, "primary_mac_address": new_macs.get(mac)?,
                            "changelog_message": self.message}),
                )
            })
            .collect();
        if !patches.is_empty() {
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Err(err) = self
                .client
                .bulk(Method::PATCH, IFACES, &Value::Array(patches), None)
                .await
            {
                problems.push(format!("primary MACs: {}", bulk_error_text(&err)));
            }
        }
        let restored = format!(
            " (with {} interfaces, {} MACs and {} IP addresses)",
            moved.len(),
            new_macs.len(),
            ips.len()
        );
        if problems.is_empty() {
            restored
        } else {
            format!("{restored}; not restored: {}", problems.join("; "))
        }
    }

    /// For a prerequisite a rollback would delete: what still uses it (objects of other batches
    /// or made by hand), or `None` when nothing does. NetBox would silently untag every object
    /// on a deleted tag, and re-home what sits on a site.
    async fn still_used(&self, endpoint: &str, id: i64, object: &Value) -> Option<String> {
        let count = |field: &str| object.get(field).and_then(Value::as_u64).unwrap_or(0);
        match endpoint {
            TAGS if count("tagged_items") > 0 => {
                Some(format!("{} tagged objects", count("tagged_items")))
            }
            CLUSTER_TYPES if count("cluster_count") > 0 => {
                Some(format!("{} clusters", count("cluster_count")))
            }
            // Deleting the provenance field would erase it from every object: kept while any
            // object infradeck manages still has it.
            CUSTOM_FIELDS => {
                let query = [("tag", self.client.tag.clone()), ("limit", "1".to_string())];
                for (what, list) in [("devices", DEVICES), ("virtual machines", VMS)] {
                    match self.client.list(list, &query).await {
                        Ok(found) if !found.is_empty() => {
                            return Some(format!("tagged {what} (it holds their provenance)"));
                        }
                        Ok(_) => {}
                        Err(err) => {
                            return Some(format!("unknown objects (could not check: {err})"));
                        }
                    }
                }
                None
            }
            SITES => {
                let query = [("site_id", id.to_string()), ("limit", "1".to_string())];
                for (what, list) in [("clusters", CLUSTERS), ("virtual machines", VMS)] {
                    match self.client.list(list, &query).await {
                        Ok(found) if !found.is_empty() => return Some(what.to_string()),
                        Ok(_) => {}
                        Err(err) => {
                            return Some(format!("unknown objects (could not check: {err})"));
                        }
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// Sends one chunk as a bulk request and answers per item. A refused chunk is sent again
    /// without the objects NetBox blamed (who get its message), and if refused again, one object
    /// at a time, so every item ends with its own answer. A 412 sends the chunk one at a time
    /// with each object's own ETag read just before.
    async fn send_chunk<T>(
        &self,
        method: Method,
        endpoint: &str,
        items: Vec<T>,
        body_of: impl Fn(&T) -> Value,
        if_match: Option<String>,
    ) -> Vec<(T, Result<Written, String>)> {
        let mut out = Vec::new();
        let mut items = items;
        for attempt in 0..2 {
            if items.is_empty() {
                return out;
            }
            if self.chunk == 1 {
                break;
            }
            let bodies: Vec<Value> = items.iter().map(&body_of).collect();
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self
                .client
                .bulk(
                    method.clone(),
                    endpoint,
                    &Value::Array(bodies.clone()),
                    if_match.as_deref(),
                )
                .await
            {
                Ok((objects, request_id)) => {
                    let mut objects = objects.into_iter();
                    for item in items {
                        let object = if method == Method::DELETE {
                            Value::Null
                        } else {
                            objects.next().unwrap_or(Value::Null)
                        };
                        out.push((
                            item,
                            Ok(Written {
                                object,
                                request_id: request_id.clone(),
                            }),
                        ));
                    }
                    return out;
                }
                Err(BulkError::Refused {
                    entries,
                    body,
                    status,
                }) if attempt == 0 && !entries.is_empty() => {
                    let blamed: HashMap<BulkEntry, String> = entries.into_iter().collect();
                    let mut keep = Vec::new();
                    // A bulk delete only counts an object's dependents; a single delete names
                    // them, which the item's error should.
                    let mut protected = Vec::new();
                    for (index, (item, body_value)) in items.into_iter().zip(bodies).enumerate() {
                        let by_id = body_value
                            .get("id")
                            .and_then(Value::as_i64)
                            .map(BulkEntry::Id);
                        let message = blamed
                            .get(&BulkEntry::Index(index))
                            .or_else(|| by_id.and_then(|id| blamed.get(&id)));
                        match message {
                            Some(_) if method == Method::DELETE && status == 409 => {
                                protected.push(item)
                            }
                            Some(message) => {
                                out.push((item, Err(format!("NetBox refused it: {message}"))))
                            }
                            None => keep.push(item),
                        }
                    }
                    for item in protected {
                        let result = self.send_one(&method, endpoint, body_of(&item)).await;
                        out.push((item, result));
                    }
                    tracing::debug!(endpoint, %body, "bulk write refused; retrying without the blamed objects");
                    items = keep;
                    // The ETags sent still cover the rest.
                }
                Err(BulkError::Http(err)) => {
                    let note = format!(
                        "{err} (it may have been written: the next apply checks NetBox first)"
                    );
                    out.extend(items.into_iter().map(|i| (i, Err(note.clone()))));
                    return out;
                }
                // Refused without saying whom, refused twice, or a 412: one at a time.
                Err(_) => break,
            }
        }
        for item in items {
            let body = body_of(&item);
            let result = self.send_one(&method, endpoint, body).await;
            out.push((item, result));
        }
        out
    }

    /// One object's write, with its own ETag read just before for PATCH and DELETE.
    async fn send_one(
        &self,
        method: &Method,
        endpoint: &str,
        mut body: Value,
    ) -> Result<Written, String> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = body.get("id").and_then(Value::as_i64);
        if let Some(map) = body.as_object_mut() {
            map.remove("id");
        }
        let result = match (method.as_str(), id) {
            ("POST", _) => self.client.create(endpoint, &body).await,
            ("PATCH", Some(id)) => {
                let etag = match self.client.get(endpoint, id).await {
                    Ok(Some((_, etag))) => etag,
                    Ok(None) => return Err(CHANGED.to_string()),
                    Err(err) => return Err(err.to_string()),
                };
                self.client
                    .update(endpoint, id, &body, etag.as_deref())
                    .await
            }
            ("DELETE", Some(id)) => self.client.delete(endpoint, id, &body).await,
            _ => return Err(format!("no object id for {method} {endpoint}")),
        };
        match result {
            Ok(written) => Ok(written),
            Err(WriteError::Changed { .. }) => Err(CHANGED.to_string()),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// For each VM id: its interfaces, and the MAC and IP address objects on them, as NetBox has
/// them (three list requests for all of them): what NetBox deletes with the VM.
pub(crate) async fn cascade_of(
    client: &NetboxClient,
    vms: &[i64],
) -> Result<HashMap<i64, Value>, String> {
    let by = |key: &'static str, ids: &[i64]| -> Vec<(&'static str, String)> {
        ids.iter().map(|id| (key, id.to_string())).collect()
    };
    let list = |endpoint: &'static str, query: Vec<(&'static str, String)>| async move {
        if query.is_empty() {
            return Ok(Vec::new());
        }
        client
            .list(endpoint, &query)
            .await
            .map_err(|e| e.to_string())
    };
    let ifaces = list(IFACES, by("virtual_machine_id", vms)).await?;
    let iface_ids: Vec<i64> = ifaces.iter().filter_map(|i| i["id"].as_i64()).collect();
    let macs = list(MACS, by("vminterface_id", &iface_ids)).await?;
    let ips = list(IPS, by("vminterface_id", &iface_ids)).await?;
    let mut out = HashMap::new();
    for vm in vms {
        let mine: Vec<&Value> = ifaces
            .iter()
            .filter(|i| i.pointer("/virtual_machine/id").and_then(Value::as_i64) == Some(*vm))
            .collect();
        let ids: Vec<i64> = mine.iter().filter_map(|i| i["id"].as_i64()).collect();
        let on_mine = |objects: &[Value]| -> Vec<Value> {
            objects
                .iter()
                .filter(|o| {
                    o["assigned_object_type"] == "virtualization.vminterface"
                        && o["assigned_object_id"]
                            .as_i64()
                            .is_some_and(|i| ids.contains(&i))
                })
                .cloned()
                .collect()
        };
        out.insert(
            *vm,
            json!({
                "interfaces": mine,
                "mac_addresses": on_mine(&macs),
                "ip_addresses": on_mine(&ips),
            }),
        );
    }
    Ok(out)
}

/// Every item of `chunk` failed with `err`.
fn all_failed(chunk: Vec<Work>, err: &str) -> Vec<(Work, Outcome)> {
    chunk
        .into_iter()
        .map(|w| (w, Outcome::Failed(err.to_string())))
        .collect()
}

/// The error text of a 412, told apart from other failures.
const CHANGED: &str = "412";

fn bulk_error_text(err: &BulkError) -> String {
    match err {
        BulkError::Changed => "NetBox changed the interface meanwhile (412)".into(),
        BulkError::Refused { status, body, .. } => format!("HTTP {status}: {body}"),
        BulkError::Http(err) => err.to_string(),
    }
}

enum Parents {
    Ready,
    /// Not yet written: by this run later, or by another process now.
    Busy,
    Failed(String),
}

fn describe_status(status: ApprovalStatus) -> &'static str {
    match status {
        ApprovalStatus::Pending => "not approved",
        ApprovalStatus::Rejected => "rejected",
        ApprovalStatus::Failed => "failed",
        ApprovalStatus::Conflict => "a conflict",
        ApprovalStatus::Superseded => "superseded",
        ApprovalStatus::RolledBack => "rolled back",
        _ => "not applied",
    }
}

/// The ETag NetBox 4.7 gives an object, from the `last_updated` a list answer carries
/// (`W/"<last_updated in isoformat>"`, UTC written `+00:00`): so a chunk's reads need no
/// request per object. Should it ever differ, NetBox answers 412 and the chunk goes one object
/// at a time with ETags read from NetBox.
fn etag_of(object: &Value) -> Option<String> {
    let at = object.get("last_updated")?.as_str()?;
    let at = at.strip_suffix('Z').map(|t| format!("{t}+00:00"));
    Some(format!("W/\"{}\"", at?))
}

fn describe_request(
    client: &NetboxClient,
    item: &ApprovalItem,
    number: usize,
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
            "PATCH {} {} (If-Match: the object's ETag)",
            client.url_of(&plan.endpoint, item.netbox_object_id),
            body
        ),
        ApprovalAction::Delete => format!(
            "DELETE {}",
            client.url_of(&plan.endpoint, item.netbox_object_id)
        ),
    };
    crate::sanitize::for_terminal(&format!("#{number} {line}")).into_owned()
}

/// Where the plan's `from` (or `to`) values no longer hold: field → what NetBox has now.
fn drifted(
    plan: &Plan,
    current: &BTreeMap<String, Value>,
    side: fn(&(Value, Value)) -> &Value,
) -> Map<String, Value> {
    // A reference the plan could only name (a lookup) is not compared: its id is known once
    // resolved, and the fields beside it (the address of a moved IP) still are.
    plan.fields
        .iter()
        .filter(|(_, v)| side(v).get("$lookup").is_none())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The order a batch's items are written in: `(action, endpoint)` sorted by stage.
    fn order(mode: Mode, items: &[(ApprovalAction, &'static str)]) -> Vec<(Op, &'static str)> {
        let mut ops: Vec<(Op, &str)> = items
            .iter()
            .map(|(action, endpoint)| (op_of(mode, *action), *endpoint))
            .collect();
        ops.sort_by_key(|(op, endpoint)| stage_of(mode, *op, rank(endpoint)));
        ops
    }

    #[test]
    fn apply_writes_parents_first_and_deletes_children_first_after_every_write() {
        use ApprovalAction::{Create, Delete, Update};
        let batch = [
            (Delete, VMS),
            (Create, IPS),
            (Delete, IFACES),
            (Create, VMS),
            (Update, CLUSTERS),
            (Create, TAGS),
            (Delete, CLUSTERS),
            (Create, IFACES),
        ];
        assert_eq!(
            order(Mode::Apply, &batch),
            vec![
                (Op::Create, TAGS),
                (Op::Update, CLUSTERS),
                (Op::Create, VMS),
                (Op::Create, IFACES),
                (Op::Create, IPS),
                (Op::Delete, IFACES),
                (Op::Delete, VMS),
                (Op::Delete, CLUSTERS),
            ]
        );
    }

    #[test]
    fn rollback_undoes_creates_children_first_then_recreates_parents_first() {
        use ApprovalAction::{Create, Delete, Update};
        // What apply did; rollback turns each create into a delete and each delete into a create.
        let batch = [
            (Create, VMS),
            (Delete, VMS),
            (Create, IFACES),
            (Update, VMS),
            (Delete, IFACES),
            (Create, CLUSTERS),
        ];
        assert_eq!(
            order(Mode::Rollback, &batch),
            vec![
                (Op::Update, VMS),
                (Op::Delete, IFACES),
                (Op::Delete, VMS),
                (Op::Delete, CLUSTERS),
                (Op::Create, VMS),
                (Op::Create, IFACES),
            ]
        );
    }

    #[test]
    fn etags_are_derived_as_netbox_writes_them() {
        let object = json!({"last_updated": "2026-12-01T13:35:36.017322Z"});
        assert_eq!(
            etag_of(&object).as_deref(),
            Some("W/\"2026-12-01T13:35:36.017322+00:00\"")
        );
        assert_eq!(etag_of(&json!({"last_updated": null})), None);
    }
}
