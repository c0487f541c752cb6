//! Foreman API v2: every host (paged), its primary interface and all its facts.
//!
//! A host is a `vm` when Foreman knows a compute resource for it, else a `server`. Timestamps
//! that move on every Puppet run (`last_report`) are not stored as such: the metadata says
//! whether the host still reports (`reporting: ok|stale`), which changes only when it matters.
//! Staleness is judged against the freshest report in the same listing, not this machine's
//! clock, so clock skew between the bastion and Foreman cannot make every host look stale.

use super::http::{RequestParts, SourceError};
use super::{
    DeviceBundle, FetchContext, FetchSummary, Item, is_volatile_fact, normalize_mac, short_hostname,
};
use crate::model::{DeviceRecord, DeviceType, InterfaceRecord, SourceKind};
use chrono::NaiveDateTime;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PER_PAGE: usize = 100;
/// A host whose last Puppet report is older than this is `stale`.
const STALE_AFTER_HOURS: i64 = 24;

pub async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let (user, password) = ctx.required_password()?;
    let auth = RequestParts {
        basic: Some((&user, &password)),
        ..Default::default()
    };
    ctx.progress.set_phase("list hosts");
    let mut hosts: Vec<Value> = Vec::new();
    let mut page = 1;
    loop {
        ctx.check_cancelled()?;
        let query = [
            ("page", page.to_string()),
            ("per_page", PER_PAGE.to_string()),
        ];
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
        let results = body["results"].as_array().cloned().ok_or_else(|| {
            ctx.client.api_error(
                &ctx.client.url("/api/hosts"),
                "the answer has no `results` array",
            )
        })?;
        let subtotal = body["subtotal"]
            .as_u64()
            .or(body["total"].as_u64())
            .unwrap_or(0) as usize;
        let got = results.len();
        hosts.extend(results);
        ctx.progress.set_total(subtotal as u64);
        if got == 0 || hosts.len() >= subtotal {
            break;
        }
        page += 1;
    }
    let freshest = hosts.iter().filter_map(last_report).max();
    ctx.progress.set_phase("fetch facts");
    // Collected first: a stream over a borrowing closure is not provably `Send` (rustc #110338).
    let pending: Vec<_> = hosts
        .iter()
        .map(|host| host_bundle(ctx, host, &auth, freshest))
        .collect();
    let bundles =
        futures::stream::iter(pending).buffer_unordered(ctx.source.max_in_flight.max(1) * 2);
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
) -> Result<DeviceBundle, SourceError> {
    let id = host["id"]
        .as_u64()
        .map(|i| i.to_string())
        .unwrap_or_default();
    let name = host["name"].as_str().unwrap_or(&id).to_string();
    let query = [("per_page", "all".to_string())];
    let body: Value = ctx
        .client
        .get_json(
            &format!("/api/hosts/{id}/facts"),
            &RequestParts {
                query: &query,
                ..auth_parts(auth)
            },
        )
        .await?;
    let mut facts = BTreeMap::new();
    // `results` is an object keyed by host name; take whichever key is there.
    if let Some(values) = body["results"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(Value::as_object)
    {
        for (k, v) in values {
            if is_volatile_fact(k) {
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            facts.insert(k.clone(), text);
        }
    }
    let stale = match (last_report(host), freshest) {
        (Some(t), Some(newest)) => (newest - t).num_hours() > STALE_AFTER_HOURS,
        _ => true,
    };
    let virtual_machine = host["compute_resource_name"].is_string();
    let mac = host["mac"].as_str().and_then(normalize_mac);
    let uuid = host["uuid"].as_str().map(str::to_ascii_lowercase);
    let metadata = json!({"foreman": {
        "hostname": short_hostname(&name),
        "fqdn": name.to_ascii_lowercase(),
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
    Ok(bundle)
}
