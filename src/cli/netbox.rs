//! `infradeck netbox plan|review|approve|reject|apply|rollback`.

use super::Context;
use anyhow::Context as _;
use infradeck_core::app::{
    ApplyReport, Command, Event, NetboxReport, NetboxRequest, Service, ServiceOptions,
};
use infradeck_core::model::{ApprovalAction, ApprovalStatus};
use infradeck_core::store::ApprovalItem;
use std::collections::BTreeMap;

/// What `infradeck netbox` was asked to do.
#[derive(Debug, Clone)]
pub enum NetboxArgs {
    Plan {
        json: bool,
    },
    Review {
        batch: Option<String>,
        kind: Option<String>,
        json: bool,
    },
    Approve {
        batch: String,
        items: Vec<String>,
    },
    Reject {
        batch: String,
        items: Vec<String>,
        reason: String,
    },
    Apply {
        batch: String,
        dry_run: bool,
        allow_deletes: Option<u32>,
    },
    Rollback {
        batch: String,
    },
}

/// The `[netbox]` section, or an error naming the config file that lacks it.
fn netbox_config(ctx: &Context) -> anyhow::Result<&infradeck_core::config::NetboxConfig> {
    ctx.config
        .netbox
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [netbox] section in {}", ctx.config_path.display()))
}

/// Carries out one NetBox operation through the application service, as the dashboard does.
fn through_service(ctx: &Context, request: NetboxRequest) -> anyhow::Result<NetboxReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (service, mut link) = Service::start(
            ctx.database_path.clone(),
            &ctx.config,
            &ServiceOptions {
                allow_mass_removal: false,
                read_only: ctx.read_only || ctx.database_read_only,
            },
        );
        link.send(Command::Netbox(request));
        let result = loop {
            match link.events.recv().await {
                Some(Event::Netbox { result, .. }) => break result,
                Some(Event::Refused { reason }) => break Err(reason),
                Some(_) => {}
                None => break Err("the service ended before NetBox answered".to_string()),
            }
        };
        service.shutdown("cancelled: the command ended", None).await;
        result.map_err(anyhow::Error::msg)
    })
}

/// The report of an apply, dry run or rollback.
fn apply_report(report: NetboxReport) -> anyhow::Result<ApplyReport> {
    match report {
        NetboxReport::Apply(r) | NetboxReport::DryRun(r) | NetboxReport::Rollback(r) => Ok(r),
        NetboxReport::Plan(_) => anyhow::bail!("NetBox answered a plan to an apply"),
    }
}

fn refuse_read_only(ctx: &Context, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !ctx.read_only,
        "read-only: `netbox {what}` writes and is refused"
    );
    Ok(())
}

/// `3`, `3-7`, `all`/empty → item ids of `batch` (empty means the whole batch).
pub fn parse_items(specs: &[String]) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    for spec in specs {
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            if part == "all" {
                return Ok(Vec::new());
            }
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (i64, i64) = (
                        a.trim()
                            .parse()
                            .with_context(|| format!("`{part}` is not a range of item ids"))?,
                        b.trim()
                            .parse()
                            .with_context(|| format!("`{part}` is not a range of item ids"))?,
                    );
                    anyhow::ensure!(a <= b, "`{part}`: the range runs backwards");
                    ids.extend(a..=b);
                }
                None => ids.push(
                    part.trim()
                        .parse()
                        .with_context(|| format!("`{part}` is not an item id"))?,
                ),
            }
        }
    }
    Ok(ids)
}

/// `apply`/`rollback` ended with items that failed (exit 5) or conflict with NetBox (exit 4),
/// so a script can tell "applied" from "applied with conflicts" (documented in the README).
pub(crate) const EXIT_CONFLICTS: u8 = 4;
pub(crate) const EXIT_FAILED: u8 = 5;

fn outcome_exit(report: &ApplyReport, retry: &str) -> anyhow::Result<()> {
    if report.failed > 0 {
        return Err(super::ExitWith {
            code: EXIT_FAILED,
            message: format!("{} items failed; {retry}", report.failed),
        }
        .into());
    }
    if report.conflicts > 0 {
        return Err(super::ExitWith {
            code: EXIT_CONFLICTS,
            message: format!(
                "{} items conflict with NetBox (see `review`); nothing was written for them",
                report.conflicts
            ),
        }
        .into());
    }
    Ok(())
}

/// Per-batch item numbers (as `review` shows them) → the items' ids; empty stays empty (all).
fn item_ids(
    items: &[infradeck_core::store::ApprovalItem],
    numbers: &[i64],
    batch: &str,
) -> anyhow::Result<Vec<i64>> {
    let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    ids.sort_unstable();
    numbers
        .iter()
        .map(|&n| {
            usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| ids.get(i).copied())
                .ok_or_else(|| {
                    anyhow::anyhow!("batch {batch} has items 1-{}; there is no #{n}", ids.len())
                })
        })
        .collect()
}

/// Items per NetBox object type: (creates, updates, deletes).
fn counts_by_kind(items: &[ApprovalItem]) -> BTreeMap<String, [usize; 3]> {
    let mut kinds: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    for item in items {
        let kind = item.netbox_object_type.clone().unwrap_or_default();
        let slot = match item.action {
            ApprovalAction::Create => 0,
            ApprovalAction::Update => 1,
            ApprovalAction::Delete => 2,
        };
        kinds.entry(kind).or_default()[slot] += 1;
    }
    kinds
}

/// `N items: virtualization.virtualmachine 40 (+30 ~10), …`, the review's first line.
fn kinds_line(kinds: &BTreeMap<String, [usize; 3]>) -> String {
    let total: usize = kinds.values().flatten().sum();
    let parts: Vec<String> = kinds
        .iter()
        .map(|(kind, [c, u, d])| {
            let actions: Vec<String> = [(c, '+'), (u, '~'), (d, '-')]
                .iter()
                .filter(|(n, _)| **n > 0)
                .map(|(n, sign)| format!("{sign}{n}"))
                .collect();
            format!(
                "{} {} ({})",
                infradeck_core::sanitize::for_terminal(kind),
                c + u + d,
                actions.join(" ")
            )
        })
        .collect();
    format!("{total} items: {}", parts.join(", "))
}

/// The items of one object type, named whole or by its last part; an unknown type names the
/// types the batch has.
fn of_kind(
    items: Vec<ApprovalItem>,
    kind: &str,
    kinds: &BTreeMap<String, [usize; 3]>,
) -> anyhow::Result<Vec<ApprovalItem>> {
    let wanted = kind.trim().to_lowercase();
    let matches = |t: &str| t == wanted || t.rsplit(['/', '.']).next() == Some(wanted.as_str());
    anyhow::ensure!(
        kinds.keys().any(|k| matches(k)),
        "no items of type `{kind}` in this batch; it has {}",
        kinds.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(items
        .into_iter()
        .filter(|i| matches(i.netbox_object_type.as_deref().unwrap_or_default()))
        .collect())
}

pub fn netbox(ctx: &Context, args: &NetboxArgs) -> anyhow::Result<()> {
    let mut store = ctx.open_store()?;
    let reviewer = infradeck_core::identity::reviewer(
        ctx.config
            .netbox
            .as_ref()
            .and_then(|n| n.reviewer.as_deref()),
    );
    match args {
        NetboxArgs::Plan { json } => {
            refuse_read_only(ctx, "plan")?;
            netbox_config(ctx)?;
            let NetboxReport::Plan(report) = through_service(ctx, NetboxRequest::Plan)? else {
                anyhow::bail!("NetBox answered an apply to a plan");
            };
            if *json {
                super::print_json(&report)?;
                return Ok(());
            }
            match &report.batch_id {
                Some(id) => println!(
                    "batch {id}: {} creates, {} updates, {} deletes to review",
                    report.creates, report.updates, report.deletes
                ),
                None => println!("nothing new to propose"),
            }
            if !report.prerequisites.is_empty() {
                println!(
                    "NetBox lacks what these refer to; created first: {}",
                    infradeck_core::sanitize::for_terminal(&report.prerequisites.join(", "))
                );
            }
            if report.already_open > 0 {
                println!(
                    "{} proposals are already open in earlier batches",
                    report.already_open
                );
            }
            if report.superseded > 0 {
                println!(
                    "{} pending items of earlier plans superseded",
                    report.superseded
                );
            }
            for line in &report.untagged {
                println!(
                    "not ours (untagged), left alone: {}",
                    infradeck_core::sanitize::for_terminal(line)
                );
            }
            for line in &report.unmapped {
                println!(
                    "not mapped: {}",
                    infradeck_core::sanitize::for_terminal(line)
                );
            }
            Ok(())
        }
        NetboxArgs::Review { batch, kind, json } => {
            match batch {
                None => {
                    let batches = store.batches()?;
                    if *json {
                        super::print_json(&batches)?;
                        return Ok(());
                    }
                    let rows: Vec<Vec<String>> = batches
                        .iter()
                        .map(|b| {
                            vec![
                                b.batch_id.clone(),
                                b.planned_at.clone().unwrap_or_default(),
                                format!("+{} ~{} -{}", b.creates, b.updates, b.deletes),
                                format!(
                                    "{} pending, {} approved, {} rejected, {} applied, {} failed, {} rolled back",
                                    b.pending, b.approved, b.rejected, b.applied, b.failed, b.rolled_back
                                ),
                                b.state.clone().unwrap_or_default(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        super::table::render(
                            &["BATCH", "PLANNED", "CHANGES", "REVIEW", "STATE"],
                            &rows
                        )
                    );
                }
                Some(batch) => {
                    let items = store.batch_items(batch)?;
                    anyhow::ensure!(!items.is_empty(), "no batch `{batch}`");
                    // Numbered in the whole batch, whatever is shown of it.
                    let numbers = infradeck_core::netbox::apply::item_numbers(&items);
                    let kinds = counts_by_kind(&items);
                    let items = infradeck_core::store::grouped_by_kind(match kind {
                        Some(kind) => of_kind(items, kind, &kinds)?,
                        None => items,
                    });
                    if *json {
                        super::print_json(&items)?;
                        return Ok(());
                    }
                    println!("{}", kinds_line(&kinds));
                    for item in items {
                        let changes: serde_json::Value = item
                            .proposed_changes
                            .as_deref()
                            .and_then(|t| serde_json::from_str(t).ok())
                            .unwrap_or_default();
                        println!(
                            "#{} {} {} {} [{}{}]",
                            numbers[&item.id],
                            item.action.as_str(),
                            item.netbox_object_type.as_deref().unwrap_or("?"),
                            infradeck_core::sanitize::for_terminal(
                                changes.get("object").and_then(|v| v.as_str()).unwrap_or("")
                            ),
                            item.approval_status.as_str(),
                            item.review_comment
                                .as_deref()
                                .map(|c| format!(": {}", infradeck_core::sanitize::for_terminal(c)))
                                .unwrap_or_default()
                        );
                        if let Some(fields) = changes.get("fields").and_then(|f| f.as_object()) {
                            for (name, change) in fields {
                                println!(
                                    "    {name}: {} → {}",
                                    infradeck_core::sanitize::for_terminal(
                                        &change["from"].to_string()
                                    ),
                                    infradeck_core::sanitize::for_terminal(
                                        &change["to"].to_string()
                                    )
                                );
                            }
                        }
                        // Where it goes and why the plan chose what it did (placement rules,
                        // the primary IP rule, a released primary).
                        if let Some(on) = changes.get("on").and_then(|v| v.as_str()) {
                            let was = changes
                                .get("was_on")
                                .and_then(|v| v.as_str())
                                .map(|w| format!(" (now on {w})"))
                                .unwrap_or_default();
                            println!(
                                "    on: {}",
                                infradeck_core::sanitize::for_terminal(&format!("{on}{was}"))
                            );
                        }
                        if let Some(by) = changes
                            .pointer("/adopt/matched_by")
                            .and_then(|v| v.as_str())
                        {
                            println!(
                                "    adopt: made by hand in NetBox (untagged), the same machine by {}; approving tags it ours",
                                infradeck_core::sanitize::for_terminal(by)
                            );
                        } else if let Some(by) = changes.get("matched_by").and_then(|v| v.as_str())
                        {
                            println!(
                                "    matched: by {}: renamed in the source",
                                infradeck_core::sanitize::for_terminal(by)
                            );
                        }
                        if let Some(choice) =
                            changes.pointer("/choice/why").and_then(|v| v.as_str())
                        {
                            println!(
                                "    choose: {}",
                                infradeck_core::sanitize::for_terminal(choice)
                            );
                        }
                        match changes.get("why") {
                            Some(serde_json::Value::String(why)) => {
                                println!("    why: {}", infradeck_core::sanitize::for_terminal(why))
                            }
                            Some(serde_json::Value::Object(why)) if !why.is_empty() => {
                                let parts: Vec<String> = why
                                    .iter()
                                    .map(|(k, v)| {
                                        format!("{k} from {}", v.as_str().unwrap_or_default())
                                    })
                                    .collect();
                                println!(
                                    "    why: {}",
                                    infradeck_core::sanitize::for_terminal(&parts.join(", "))
                                );
                            }
                            _ => {}
                        }
                        if let Some(cascade) = changes.get("cascade") {
                            let part = |key: &str, what: &str| -> Option<String> {
                                let list = cascade.get(key)?.as_array()?;
                                (!list.is_empty()).then(|| {
                                    let names: Vec<String> = list
                                        .iter()
                                        .map(|v| {
                                            v.as_str()
                                                .map(str::to_string)
                                                .unwrap_or_else(|| v.to_string())
                                        })
                                        .collect();
                                    format!("{} {what} ({})", list.len(), names.join(", "))
                                })
                            };
                            let parts: Vec<String> = [
                                part("interfaces", "interfaces"),
                                part("mac_addresses", "MACs"),
                                part("ip_addresses", "IP addresses"),
                            ]
                            .into_iter()
                            .flatten()
                            .collect();
                            if !parts.is_empty() {
                                println!(
                                    "    NetBox deletes with it: {} (rollback re-creates them)",
                                    infradeck_core::sanitize::for_terminal(&parts.join(", "))
                                );
                            }
                        }
                        if let Some(approved) = item.approved_sha256.as_deref() {
                            println!(
                                "    approved by {} as sha256 {}…",
                                infradeck_core::sanitize::for_terminal(
                                    item.approved_by.as_deref().unwrap_or("?")
                                ),
                                approved.chars().take(16).collect::<String>()
                            );
                        }
                        if let Some(why) = item.changed_since_approval() {
                            println!("    ! {why}");
                        }
                        if let Some(needs) = changes.get("needs").and_then(|n| n.as_array())
                            && !needs.is_empty()
                        {
                            let needs: Vec<&str> =
                                needs.iter().filter_map(|n| n.as_str()).collect();
                            println!(
                                "    after: {}",
                                infradeck_core::sanitize::for_terminal(&needs.join(", "))
                            );
                        }
                        for (key, label) in [
                            ("conflict", "conflict"),
                            ("error", "failed"),
                            ("rollback_conflict", "rollback conflict"),
                            ("rollback_error", "rollback failed"),
                        ] {
                            let Some(value) = changes.get(key) else {
                                continue;
                            };
                            let text = match value {
                                serde_json::Value::String(text) => text.clone(),
                                serde_json::Value::Object(map) => match map.get("note") {
                                    Some(serde_json::Value::String(note)) => {
                                        let now = map.get("netbox_now").filter(|v| !v.is_null());
                                        match now {
                                            Some(now) => format!("{note}; NetBox now has {now}"),
                                            None => note.clone(),
                                        }
                                    }
                                    _ => value.to_string(),
                                },
                                other => other.to_string(),
                            };
                            println!(
                                "    {label}: {}",
                                infradeck_core::sanitize::for_terminal(&text)
                            );
                        }
                    }
                }
            }
            Ok(())
        }
        NetboxArgs::Approve { batch, items } | NetboxArgs::Reject { batch, items, .. } => {
            refuse_read_only(ctx, "review")?;
            let (to, comment) = match args {
                NetboxArgs::Reject { reason, .. } => {
                    anyhow::ensure!(
                        !reason.trim().is_empty(),
                        "a rejection needs a reason (--reason)"
                    );
                    (ApprovalStatus::Rejected, Some(reason.as_str()))
                }
                _ => (ApprovalStatus::Approved, None),
            };
            let batch_items = store.batch_items(batch)?;
            anyhow::ensure!(!batch_items.is_empty(), "no batch `{batch}`");
            let ids = item_ids(&batch_items, &parse_items(items)?, batch)?;
            let outcome =
                infradeck_core::app::review(&mut store, batch, &ids, to, &reviewer, comment)?;
            let moved = outcome.moved;
            println!("{moved} items {} by {reviewer}", to.as_str());
            if outcome.left_to_choose > 0 {
                println!(
                    "{} items left pending: each is one claim of an address two machines claim; \
                     approve the one that holds it by number (`netbox review {batch} --kind ipam/ip-addresses`)",
                    outcome.left_to_choose
                );
            }
            if moved < ids.len() {
                println!(
                    "{} items were not pending (already reviewed, perhaps by someone else)",
                    ids.len() - moved
                );
            }
            Ok(())
        }
        NetboxArgs::Apply {
            batch,
            dry_run,
            allow_deletes,
        } => {
            if !dry_run {
                refuse_read_only(ctx, "apply")?;
            }
            netbox_config(ctx)?;
            let report = apply_report(through_service(
                ctx,
                NetboxRequest::Apply {
                    batch_id: batch.clone(),
                    dry_run: *dry_run,
                    allow_deletes: *allow_deletes,
                },
            )?)?;
            for line in &report.lines {
                println!("{line}");
            }
            if report.eligible == 0 {
                println!(
                    "nothing to apply in batch {batch}: no item is approved (approve with `infradeck netbox approve {batch} all`, or by number)"
                );
                return Ok(());
            }
            if *dry_run {
                println!(
                    "dry run: {} items would be written; nothing was sent",
                    report.eligible
                );
                return Ok(());
            }
            println!("{}", report.summary("applied"));
            outcome_exit(&report, "run apply again to retry them")
        }
        NetboxArgs::Rollback { batch } => {
            refuse_read_only(ctx, "rollback")?;
            netbox_config(ctx)?;
            let report = apply_report(through_service(
                ctx,
                NetboxRequest::Rollback {
                    batch_id: batch.clone(),
                },
            )?)?;
            for line in &report.lines {
                println!("{line}");
            }
            if report.eligible == 0 {
                println!("nothing to roll back in batch {batch}: no item is applied");
                return Ok(());
            }
            println!("{}", report.summary("rolled back"));
            outcome_exit(
                &report,
                "they stay applied; run rollback again to retry them",
            )
        }
    }
}
