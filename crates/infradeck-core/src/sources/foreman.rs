//! Foreman API v2: every host (paged), its primary interface and all its facts.
//!
//! A host is a `vm` when Foreman knows a compute resource for it, else a `server`. Timestamps
//! that move on every Puppet run (`last_report`) are not stored as such: the metadata says
//! whether the host still reports (`reporting: ok|stale`), which changes only when it matters.
//! Staleness is judged against the freshest report in the same listing, not this machine's
//! clock, so clock skew between the bastion and Foreman cannot make every host look stale.

use super::facts::VolatileFacts;
use super::{DeviceBundle, FetchContext, FetchSummary, Item, normalize_mac, short_hostname};
use crate::http::{RequestParts, SourceError};
use crate::model::{DeviceRecord, DeviceType, InterfaceRecord, SourceKind};
use chrono::NaiveDateTime;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PER_PAGE: usize = 100;
/// A host whose last Puppet report is older than this is `stale`.
const STALE_AFTER_HOURS: i64 = 24;

pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let (user, password) = ctx.required_password()?;
    let auth = RequestParts {
        basic: Some((&user, &password)),
        ..Default::default()
    };
    ctx.progress.set_phase("list hosts");
    let per_page = ctx.source.page_size.unwrap_or(PER_PAGE);
    let mut hosts: Vec<Value> = Vec::new();
    // Keyset paging: `search=id > LAST` ordered by id, always page 1. A `page` number shifts
    // when a host on an earlier page is deleted while the run reads, which skipped a host Foreman
    // still has — and the sweep then marked it inactive. A key does not move.
    let mut last_id: Option<u64> = None;
    loop {
        ctx.check_cancelled()?;
        let mut query = vec![
            ("page", "1".to_string()),
            ("per_page", per_page.to_string()),
            ("order", "id ASC".to_string()),
        ];
        if let Some(last) = last_id {
            query.push(("search", format!("id > {last}")));
        }
        let body: Value = ctx
            .client
            .get_json(
                "/api/hosts",
                &RequestParts {
                    query: &query,
                    ..auth_parts(&auth)
                },
            )
            .await?;
        let url = ctx.client.url("/api/hosts");
        let results = body["results"].as_array().cloned().ok_or_else(|| {
            ctx.client
                .api_error(&url, "the answer has no `results` array")
        })?;
        if last_id.is_none() {
            ctx.progress.set_total(
                body["subtotal"]
                    .as_u64()
                    .or(body["total"].as_u64())
                    .unwrap_or(0),
            );
        }
        let got = results.len();
        for host in &results {
            let Some(id) = host["id"].as_u64() else {
                return Err(ctx.client.api_error(&url, "a host without a numeric `id`"));
            };
            if last_id.is_some_and(|last| id <= last) {
                // A Foreman that ignored `order` or `search` would make us loop or skip hosts.
                return Err(ctx.client.api_error(
                    &url,
                    format!(
                        "hosts are not in id order (id {id} after {})",
                        last_id.unwrap_or(0)
                    ),
                ));
            }
            last_id = Some(id);
        }
        hosts.extend(results);
        if got < per_page {
            break;
        }
    }
    let volatile = VolatileFacts::new(&ctx.source.volatile_facts);
    let freshest = hosts.iter().filter_map(last_report).max();
    ctx.progress.set_phase("fetch facts");
    // Collected first: a stream over a borrowing closure is not provably `Send` (rustc #110338).
    let pending: Vec<_> = hosts
        .iter()
        .map(|host| host_bundle(ctx, host, &auth, freshest, &volatile))
        .collect();
    let bundles =
        futures::stream::iter(pending).buffer_unordered(ctx.source.max_in_flight.max(1) * 2);
    futures::pin_mut!(bundles);
    let mut failed: Vec<String> = Vec::new();
    while let Some(bundle) = bundles.next().await {
        ctx.check_cancelled()?;
        match bundle {
            Ok(Some(bundle)) => ctx.emit(Item::Device(Box::new(bundle))).await?,
            Ok(None) => {}
            // One host whose facts failed does not fail its neighbours.
            Err(err) if err.is_item_level() => failed.push(err.to_string()),
            Err(err) => return Err(err),
        }
        ctx.progress.inc();
    }
    Ok(FetchSummary {
        complete: failed.is_empty(),
        note: super::item_failures_note("hosts' facts", &failed),
    })
}

fn auth_parts<'a>(auth: &RequestParts<'a>) -> RequestParts<'a> {
    RequestParts {
        basic: auth.basic,
        ..Default::default()
    }
}

fn last_report(host: &Value) -> Option<NaiveDateTime> {
    host["last_report"].as_str().and_then(|t| {
        NaiveDateTime::parse_from_str(t.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S").ok()
    })
}

async fn host_bundle(
    ctx: &FetchContext,
    host: &Value,
    auth: &RequestParts<'_>,
    freshest: Option<NaiveDateTime>,
    volatile: &VolatileFacts,
) -> Result<Option<DeviceBundle>, SourceError> {
    let id = host["id"]
        .as_u64()
        .map(|i| i.to_string())
        .unwrap_or_default();
    let name = host["name"].as_str().unwrap_or(&id).to_string();
    let query = [("per_page", "all".to_string())];
    let answer = ctx
        .client
        .send(
            reqwest::Method::GET,
            &format!("/api/hosts/{id}/facts"),
            &RequestParts {
                query: &query,
                ..auth_parts(auth)
            },
        )
        .await?;
    if answer.status == reqwest::StatusCode::NOT_FOUND {
        // Deleted since it was listed: Foreman itself says it is gone, so it is not emitted
        // and the sweep may mark it inactive.
        tracing::info!(source = %ctx.client.name, host = %name, "host deleted while the run read it");
        return Ok(None);
    }
    let answer = ctx.client.expect_success(answer)?;
    let body: Value = ctx.client.decode(&answer)?;
    let mut facts = BTreeMap::new();
    // `results` is an object keyed by host name; take whichever key is there.
    if let Some(values) = body["results"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(Value::as_object)
    {
        for (k, v) in values {
            // Foreman flattens the fact tree with `::`: the same path PuppetDB nests.
            let path: Vec<&str> = k.split("::").collect();
            if volatile.matches(&path) {
                continue;
            }
            if let Some(text) = super::facts::fact_text(v) {
                facts.insert(k.clone(), text);
            }
        }
    }
    // The machine's own names from its facts; Foreman's host name when it has none.
    let fqdn = ["networking::fqdn", "fqdn"]
        .iter()
        .find_map(|k| facts.get(*k).filter(|v| !v.trim().is_empty()))
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| name.to_ascii_lowercase());
    let hostname = ["networking::hostname", "hostname"]
        .iter()
        .find_map(|k| facts.get(*k).filter(|v| !v.trim().is_empty()))
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| short_hostname(&fqdn));
    let stale = match (last_report(host), freshest) {
        (Some(t), Some(newest)) => (newest - t).num_hours() > STALE_AFTER_HOURS,
        _ => true,
    };
    let virtual_machine = host["compute_resource_name"].is_string();
    let mac = host["mac"].as_str().and_then(normalize_mac);
    let uuid = host["uuid"].as_str().map(str::to_ascii_lowercase);
    let metadata = json!({"foreman": {
        "hostname": hostname,
        "fqdn": fqdn,
        "ip": host["ip"],
        "mac": mac,
        "macs": mac.iter().collect::<Vec<_>>(),
        "instance_uuid": uuid,
        "bios_uuid": facts.get("dmi::product::uuid").map(|u| u.to_ascii_lowercase()),
        "serial": facts.get("dmi::product::serial_number"),
        "os": host["operatingsystem_name"],
        "model": host["model_name"],
        "hostgroup": host["hostgroup_title"],
        "environment": host.get("environment_name").cloned().unwrap_or(Value::Null),
        "location": host["location_name"],
        "organization": host["organization_name"],
        "compute_resource": host["compute_resource_name"],
        "global_status": host["global_status_label"],
        "enabled": host["enabled"],
        "reporting": if stale { "stale" } else { "ok" },
        "last_report": if stale { host["last_report"].clone() } else { Value::Null },
        "cpu_count": facts.get("processors::count").and_then(|c| c.parse::<i64>().ok()),
        "memory_mb": facts.get("memory::system::total_bytes").and_then(|b| b.parse::<i64>().ok()).map(|b| b / 1024 / 1024),
    }});
    let mut bundle = DeviceBundle::new(DeviceRecord {
        source_system: SourceKind::Foreman.as_str().to_string(),
        source_identifier: ctx.source.id.clone(),
        source_id: id,
        name: name.clone(),
        device_type: if virtual_machine {
            DeviceType::Vm
        } else {
            DeviceType::Server
        },
        metadata,
    });
    bundle.interfaces = Some(vec![InterfaceRecord {
        interface_name: facts
            .get("networking::primary")
            .cloned()
            .unwrap_or_else(|| "primary".into()),
        mac_address: mac,
        ip_addresses: host["ip"]
            .as_str()
            .map(|ip| vec![ip.to_string()])
            .unwrap_or_default(),
        speed_mbps: None,
        status: None,
        interface_type: Some(
            if virtual_machine {
                "virtual"
            } else {
                "physical"
            }
            .into(),
        ),
        metadata: json!({"primary": true}),
    }]);
    bundle.facts = Some(facts);
    Ok(Some(bundle))
}
