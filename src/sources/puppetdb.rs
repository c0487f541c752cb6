//! PuppetDB v4: every active node's facts from `inventory`, paged with `limit`/`offset` ordered by
//! certname. Values are typed JSON; top-level facts are stored by name (complex ones as JSON),
//! minus values that move on every run.

use super::http::{RequestParts, SourceError};
use super::{
    DeviceBundle, FetchContext, FetchSummary, Item, normalize_mac, short_hostname, strip_volatile,
};
use crate::model::{DeviceRecord, DeviceType, SourceKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PAGE: usize = 500;

pub async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let token = ctx.secret(super::SecretKind::Token)?;
    let headers: Vec<(&str, String)> = token
        .iter()
        .map(|t| ("X-Authentication", t.expose().to_string()))
        .collect();
    ctx.progress.set_phase("fetch inventory");
    let mut offset = 0;
    loop {
        ctx.check_cancelled()?;
        let query = [
            ("limit", PAGE.to_string()),
            ("offset", offset.to_string()),
            (
                "order_by",
                r#"[{"field":"certname","order":"asc"}]"#.to_string(),
            ),
            ("include_total", "true".to_string()),
        ];
        let answer = ctx
            .client
            .send(
                reqwest::Method::GET,
                "/pdb/query/v4/inventory",
                &RequestParts {
                    query: &query,
                    headers: &headers,
                    ..Default::default()
                },
            )
            .await?;
        let answer = ctx.client.expect_success(answer)?;
        if let Some(total) = answer
            .headers
            .get("X-Records")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            ctx.progress.set_total(total);
        }
        let nodes: Vec<Value> = ctx.client.decode(&answer)?;
        let count = nodes.len();
        for node in nodes {
            ctx.emit(Item::Device(Box::new(node_bundle(ctx, node))))
                .await?;
            ctx.progress.inc();
        }
        if count < PAGE {
            break;
        }
        offset += PAGE;
    }
    Ok(FetchSummary {
        complete: true,
        note: None,
    })
}

fn node_bundle(ctx: &FetchContext, node: Value) -> DeviceBundle {
    let certname = node["certname"].as_str().unwrap_or_default().to_string();
    let mut facts_tree = node["facts"].clone();
    strip_volatile(&mut facts_tree);
    let f = &facts_tree;
    let is_virtual = f["is_virtual"].as_bool().unwrap_or(false);
    let mac = f["networking"]["mac"].as_str().and_then(normalize_mac);
    let mut macs: Vec<String> = f["networking"]["interfaces"]
        .as_object()
        .map(|ifaces| {
            ifaces
                .values()
                .filter_map(|i| i["mac"].as_str().and_then(normalize_mac))
                .collect()
        })
        .unwrap_or_default();
    macs.sort();
    macs.dedup();
    let metadata = json!({"puppetdb": {
        "hostname": short_hostname(&certname),
        "fqdn": certname.to_ascii_lowercase(),
        "ip": f["networking"]["ip"],
        "mac": mac,
        "macs": macs,
        "bios_uuid": f["dmi"]["product"]["uuid"].as_str().map(str::to_ascii_lowercase),
        "serial": f["dmi"]["product"]["serial_number"],
        "model": f["dmi"]["product"]["name"],
        "manufacturer": f["dmi"]["manufacturer"],
        "os": f["os"]["name"].as_str().map(|n| format!("{n} {}", f["os"]["release"]["full"].as_str().unwrap_or(""))),
        "cpu_count": f["processors"]["count"],
        "memory_mb": f["memory"]["system"]["total_bytes"].as_i64().map(|b| b / 1024 / 1024),
        "environment": node["environment"],
        "virtual": f["virtual"],
    }});
    let mut facts = BTreeMap::new();
    if let Some(map) = facts_tree.as_object() {
        for (name, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            facts.insert(name.clone(), text);
        }
    }
    let mut bundle = DeviceBundle::new(DeviceRecord {
        source_system: SourceKind::Puppetdb.as_str().to_string(),
        source_identifier: ctx.source.id.clone(),
        source_id: certname.clone(),
        name: certname,
        device_type: if is_virtual {
            DeviceType::Vm
        } else {
            DeviceType::Server
        },
        metadata,
    });
    bundle.facts = Some(facts);
    bundle
}
