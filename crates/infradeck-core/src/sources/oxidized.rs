//! Oxidized: nodes as `network_device`s, their config history into `device_configs`, and
//! interfaces parsed from the newest config.
//!
//! Only versions newer than the last one stored are fetched (the stored metadata remembers the
//! newest commit id); once every `verify_configs_hours` (default 24) a node's newest version is
//! fetched again and its stored text corrected if Oxidized serves other text for it. A node whose last fetch failed stays, marked with its status; `vars` (which
//! `/nodes.json` leaks unfiltered and which may hold credentials) are never read into the store.
//! Oxidized answers 200 with a text message for unknown nodes, so bodies are checked, not statuses.

use super::netparse::parse_interfaces;
use super::{ConfigRecord, DeviceBundle, FetchContext, FetchSummary, Item};
use crate::http::{RequestParts, SourceError};
use crate::model::{DeviceRecord, DeviceType, SourceKind};
use chrono::{DateTime, NaiveDateTime};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let password = ctx.secret(super::SecretKind::Password)?;
    let user = ctx.source.username.clone().unwrap_or_default();
    let auth = password.as_ref().map(|p| (user.as_str(), p));
    ctx.progress.set_phase("list nodes");
    let nodes: Value = ctx
        .client
        .get_json(
            "/nodes.json",
            &RequestParts {
                basic: auth,
                ..Default::default()
            },
        )
        .await?;
    let nodes = nodes.as_array().cloned().ok_or_else(|| {
        ctx.client.api_error(
            &ctx.client.url("/nodes.json"),
            "expected a JSON array of nodes",
        )
    })?;
    ctx.progress.set_total(nodes.len() as u64);
    ctx.progress.set_phase("fetch configs");
    // Collected first: a stream over a borrowing closure is not provably `Send` (rustc #110338).
    let pending: Vec<_> = nodes
        .iter()
        .map(|node| node_bundle(ctx, node, auth))
        .collect();
    let bundles = futures::stream::iter(pending).buffer_unordered(ctx.source.max_in_flight.max(1));
    futures::pin_mut!(bundles);
    while let Some(bundle) = bundles.next().await {
        ctx.check_cancelled()?;
        ctx.emit(Item::Device(Box::new(bundle?))).await?;
        ctx.progress.inc();
    }
    Ok(FetchSummary {
        complete: true,
        note: None,
    })
}

fn oxidized_time(text: &str) -> Option<String> {
    let trimmed = text.trim();
    DateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S %z")
        .map(|t| crate::time::format(t.to_utc()))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(trimmed.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|t| crate::time::format(t.and_utc()))
        })
}

/// Whether a node's newest config is checked in this run: in one hour of every `hours`, fixed by
/// the node's name (FNV-1a), so the checks spread over the period instead of doubling one run.
fn due_for_check(name: &str, hours: u32, now: chrono::DateTime<chrono::Utc>) -> bool {
    if hours == 0 {
        return false;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let hour = now.timestamp().div_euclid(3600) as u64;
    hash % u64::from(hours) == hour % u64::from(hours)
}

/// Oxidized's ways of saying "no such node/version" with HTTP 200.
fn is_not_found_text(body: &str) -> bool {
    let t = body.trim();
    t == "node not found"
        || t == "version not found"
        || (t.starts_with("unable to find '") && t.ends_with('\''))
}

async fn text(
    ctx: &FetchContext,
    path: &str,
    query: &[(&str, String)],
    auth: Option<(&str, &crate::config::Secret)>,
) -> Result<Option<String>, SourceError> {
    let answer = ctx
        .client
        .send(
            Method::GET,
            path,
            &RequestParts {
                query,
                basic: auth,
                ..Default::default()
            },
        )
        .await?;
    let answer = ctx.client.expect_success(answer)?;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    Ok((!is_not_found_text(&body)).then_some(body))
}

/// One listed version's text (`None`: Oxidized no longer has it), dated by its commit.
async fn view_version(
    ctx: &FetchContext,
    (name, group): (&str, &str),
    version: &Value,
    auth: Option<(&str, &crate::config::Secret)>,
    verifies_newest: bool,
) -> Result<Option<ConfigRecord>, SourceError> {
    let query = [
        ("node", name.to_string()),
        ("group", group.to_string()),
        (
            "oid",
            version["oid"].as_str().unwrap_or_default().to_string(),
        ),
        ("format", "text".to_string()),
    ];
    let Some(config) = text(ctx, "/node/version/view", &query, auth).await? else {
        return Ok(None);
    };
    let at = version["time"]
        .as_str()
        .or(version["date"].as_str())
        .and_then(oxidized_time)
        .unwrap_or_else(|| crate::time::format(ctx.now));
    Ok(Some(ConfigRecord {
        text: config,
        retrieved_at: at,
        verifies_newest,
    }))
}

async fn node_bundle(
    ctx: &FetchContext,
    node: &Value,
    auth: Option<(&str, &crate::config::Secret)>,
) -> Result<DeviceBundle, SourceError> {
    let name = node["name"].as_str().unwrap_or_default().to_string();
    let group = node["group"].as_str().unwrap_or("default").to_string();
    let full_name = node["full_name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            if group == "default" {
                name.clone()
            } else {
                format!("{group}/{name}")
            }
        });
    let model = node["model"].as_str().unwrap_or_default().to_string();
    let status = node["status"]
        .as_str()
        .or(node["last"]["status"].as_str())
        .unwrap_or("never")
        .to_string();
    let known_oid = ctx
        .hints
        .metadata
        .get(&name)
        .and_then(|m| m["oxidized"]["latest_oid"].as_str())
        .map(str::to_string);

    let listed: Value = ctx
        .client
        .get_json(
            "/node/version.json",
            &RequestParts {
                query: &[("node_full", full_name.clone())],
                basic: auth,
                ..Default::default()
            },
        )
        .await?;
    let versions: Vec<&Value> = listed
        .as_array()
        .map(|a| a.iter().filter(|v| v.is_object()).collect())
        .unwrap_or_default();
    let latest_oid = versions
        .first()
        .and_then(|v| v["oid"].as_str())
        .map(str::to_string);
    let mut configs = Vec::new();
    if !versions.is_empty() {
        // Newest first; everything after the one we already have, oldest first.
        let fresh: Vec<&&Value> = versions
            .iter()
            .take_while(|v| known_oid.as_deref() != v["oid"].as_str())
            .collect();
        for version in fresh.into_iter().rev() {
            configs.extend(view_version(ctx, (&name, &group), version, auth, false).await?);
        }
        // Nothing new: in this node's hour, its newest version is fetched again, so a stored
        // text that was cut short (a body that looked complete) is corrected.
        if let Some(newest) = versions.first()
            && known_oid.is_some()
            && newest["oid"].as_str() == known_oid.as_deref()
            && due_for_check(&name, ctx.source.verify_configs_hours, ctx.now)
        {
            configs.extend(view_version(ctx, (&name, &group), newest, auth, true).await?);
        }
    } else if status != "never" && known_oid.is_none() {
        // No git history (file output): the current config is all there is.
        if let Some(config) = text(ctx, &format!("/node/fetch/{full_name}"), &[], auth).await? {
            let at = node["last"]["end"]
                .as_str()
                .and_then(oxidized_time)
                .unwrap_or_else(|| crate::time::format(ctx.now));
            configs.push(ConfigRecord {
                text: config,
                retrieved_at: at,
                verifies_newest: false,
            });
        }
    }
    let metadata = json!({"oxidized": {
        "model": model,
        "group": group,
        "ip": node["ip"],
        "full_name": full_name,
        "last_status": status,
        "last_change": node["mtime"],
        "latest_oid": latest_oid.or(known_oid),
        "hostname": super::short_hostname(&name),
    }});
    let mut bundle = DeviceBundle::new(DeviceRecord {
        source_system: SourceKind::Oxidized.as_str().to_string(),
        source_identifier: ctx.source.id.clone(),
        source_id: name.clone(),
        name,
        device_type: DeviceType::NetworkDevice,
        metadata,
    });
    if let Some(newest) = configs.last() {
        bundle.interfaces = Some(parse_interfaces(&model, &newest.text));
    }
    bundle.configs = configs;
    Ok(bundle)
}
