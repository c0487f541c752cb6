//! `infradeck netbox plan|review|approve|reject|apply|rollback`.

use super::Context;
use crate::model::ApprovalStatus;
use crate::netbox::{ApplyOptions, NetboxClient};
use crate::sources::http::RetryPolicy;
use crate::store::Review;
use anyhow::Context as _;

/// What `infradeck netbox` was asked to do.
#[derive(Debug, Clone)]
pub enum NetboxArgs {
    Plan {
        json: bool,
    },
    Review {
        batch: Option<String>,
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

fn client(ctx: &Context) -> anyhow::Result<NetboxClient> {
    let config =
        ctx.config.netbox.as_ref().ok_or_else(|| {
            anyhow::anyhow!("no [netbox] section in {}", ctx.config_path.display())
        })?;
    NetboxClient::new(config, RetryPolicy::default())
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

pub fn netbox(ctx: &Context, args: &NetboxArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut store = ctx.open_store()?;
    let reviewer = crate::identity::os_user();
    match args {
        NetboxArgs::Plan { json } => {
            refuse_read_only(ctx, "plan")?;
            let config = ctx.config.netbox.as_ref().ok_or_else(|| {
                anyhow::anyhow!("no [netbox] section in {}", ctx.config_path.display())
            })?;
            let client = client(ctx)?;
            let report = runtime.block_on(crate::netbox::plan(
                &mut store,
                &client,
                config.delete_grace_days,
                &reviewer,
                chrono::Utc::now(),
            ))?;
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
                    crate::sanitize::for_terminal(line)
                );
            }
            for line in &report.unmapped {
                println!("not mapped: {}", crate::sanitize::for_terminal(line));
            }
            Ok(())
        }
        NetboxArgs::Review { batch, json } => {
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
                                    "{} pending, {} approved, {} rejected, {} applied",
                                    b.pending, b.approved, b.rejected, b.applied
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
                    if *json {
                        super::print_json(&items)?;
                        return Ok(());
                    }
                    for item in items {
                        let changes: serde_json::Value = item
                            .proposed_changes
                            .as_deref()
                            .and_then(|t| serde_json::from_str(t).ok())
                            .unwrap_or_default();
                        println!(
                            "#{} {} {} {} [{}{}]",
                            item.id,
                            item.action.as_str(),
                            item.netbox_object_type.as_deref().unwrap_or("?"),
                            crate::sanitize::for_terminal(
                                changes.get("object").and_then(|v| v.as_str()).unwrap_or("")
                            ),
                            item.approval_status.as_str(),
                            item.review_comment
                                .as_deref()
                                .map(|c| format!(": {}", crate::sanitize::for_terminal(c)))
                                .unwrap_or_default()
                        );
                        if let Some(fields) = changes.get("fields").and_then(|f| f.as_object()) {
                            for (name, change) in fields {
                                println!(
                                    "    {name}: {} → {}",
                                    crate::sanitize::for_terminal(&change["from"].to_string()),
                                    crate::sanitize::for_terminal(&change["to"].to_string())
                                );
                            }
                        }
                        if let Some(conflict) = changes.get("conflict") {
                            println!(
                                "    conflict: {}",
                                crate::sanitize::for_terminal(&conflict.to_string())
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
            anyhow::ensure!(!store.batch_items(batch)?.is_empty(), "no batch `{batch}`");
            let ids = parse_items(items)?;
            let at = crate::time::now();
            let moved = store.write(|w| {
                w.review_items(
                    batch,
                    &ids,
                    &Review {
                        from: ApprovalStatus::Pending,
                        to,
                        reviewer: &reviewer,
                        comment,
                        at: &at,
                    },
                )
            })?;
            println!("{moved} items {} by {reviewer}", to.as_str());
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
            let config = ctx
                .config
                .netbox
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no [netbox] section"))?;
            let client = client(ctx)?;
            let options = ApplyOptions {
                dry_run: *dry_run,
                allow_deletes: *allow_deletes,
                max_deletes: config.max_deletes,
            };
            let report =
                runtime.block_on(crate::netbox::apply(&mut store, &client, batch, &options))?;
            for line in &report.lines {
                println!("{line}");
            }
            if *dry_run {
                println!(
                    "dry run: {} requests would be sent; nothing was written",
                    report.lines.len()
                );
                return Ok(());
            }
            println!("{}", report.summary("applied"));
            anyhow::ensure!(
                report.failed == 0,
                "{} items failed; run apply again to retry them",
                report.failed
            );
            Ok(())
        }
        NetboxArgs::Rollback { batch } => {
            refuse_read_only(ctx, "rollback")?;
            let client = client(ctx)?;
            let report = runtime.block_on(crate::netbox::rollback(&mut store, &client, batch))?;
            for line in &report.lines {
                println!("{line}");
            }
            println!("{}", report.summary("rolled back"));
            anyhow::ensure!(
                report.failed == 0,
                "{} items could not be rolled back",
                report.failed
            );
            Ok(())
        }
    }
}
