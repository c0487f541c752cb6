//! NetApp ONTAP (REST, 9.6+): the cluster as a `storage` device; volumes and LUNs as
//! `storage_volumes` (capacity, used, thin, SVM and aggregate in metadata), each collection
//! followed through `_links.next` to its end. Pages may be shorter than asked.

use super::{DeviceBundle, FetchContext, FetchSummary, Item};
use crate::config::Secret;
use crate::http::{RequestParts, SourceError};
use crate::model::{DeviceRecord, DeviceType, SourceKind, VolumeRecord};
use serde_json::{Value, json};

const PAGE: usize = 500;

/// Every record of a collection, following `_links.next` (opaque, relative) to the end.
async fn collect(
    ctx: &FetchContext,
    auth: (&str, &Secret),
    path: &str,
) -> Result<Vec<Value>, SourceError> {
    let mut records = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(href) = next {
        ctx.check_cancelled()?;
        let page: Value = ctx
            .client
            .get_json(
                &href,
                &RequestParts {
                    basic: Some(auth),
                    ..Default::default()
                },
            )
            .await?;
        let items = page["records"].as_array().ok_or_else(|| {
            ctx.client
                .api_error(&ctx.client.url(&href), "the answer has no `records` array")
        })?;
        records.extend(items.iter().cloned());
        ctx.progress.add_total(items.len() as u64);
        next = page["_links"]["next"]["href"].as_str().map(str::to_string);
    }
    Ok(records)
}

fn size(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let (user, password) = ctx.required_password()?;
    let auth = (user.as_str(), &password);
    ctx.progress.set_phase("connect");
    let cluster: Value = ctx
        .client
        .get_json(
            "/api/cluster",
            &RequestParts {
                basic: Some(auth),
                ..Default::default()
            },
        )
        .await?;
    let name = cluster["name"].as_str().unwrap_or("ontap").to_string();
    let uuid = cluster["uuid"].as_str().unwrap_or(&name).to_string();
    ctx.progress.set_phase("list aggregates");
    let aggregates = collect(ctx, auth, &format!("/api/storage/aggregates?fields=name,uuid,node.name,state,space.block_storage.size,space.block_storage.used&max_records={PAGE}")).await?;
    let aggr_json: Vec<Value> = aggregates
        .iter()
        .map(|a| json!({"name": a["name"], "node": a["node"]["name"], "state": a["state"], "size": a["space"]["block_storage"]["size"], "used": a["space"]["block_storage"]["used"]}))
        .collect();
    ctx.emit(Item::Device(Box::new(DeviceBundle::new(DeviceRecord {
        source_system: SourceKind::Netapp.as_str().into(),
        source_identifier: ctx.source.id.clone(),
        source_id: uuid.clone(),
        name: name.clone(),
        device_type: DeviceType::Storage,
        metadata: json!({"netapp": {"version": cluster["version"]["full"], "aggregates": aggr_json}}),
    }))))
    .await?;
    let volume = |source_id: String,
                  volume_name: String,
                  kind: &str,
                  capacity: Option<i64>,
                  used: Option<i64>,
                  thin: Option<bool>,
                  metadata: Value| VolumeRecord {
        source_system: SourceKind::Netapp.as_str().into(),
        source_identifier: ctx.source.id.clone(),
        source_id,
        name: volume_name,
        volume_type: Some(kind.into()),
        capacity_bytes: capacity,
        used_bytes: used,
        storage_array: Some(name.clone()),
        raid_level: None,
        thin_provisioned: thin,
        metadata: json!({ "netapp": metadata }),
        device_id: None,
    };
    ctx.progress.set_phase("list volumes");
    for v in collect(ctx, auth, &format!("/api/storage/volumes?fields=name,uuid,svm.name,space.size,space.used,state,style,type,aggregates,guarantee,nas&max_records={PAGE}")).await? {
        let record = volume(
            v["uuid"].as_str().unwrap_or_default().to_string(),
            v["name"].as_str().unwrap_or_default().to_string(),
            "filesystem",
            size(&v["space"]["size"]),
            size(&v["space"]["used"]),
            v["guarantee"]["type"].as_str().map(|g| g == "none"),
            json!({"svm": v["svm"]["name"], "aggregate": v["aggregates"][0]["name"], "state": v["state"], "style": v["style"], "type": v["type"], "junction_path": v["nas"]["path"]}),
        );
        ctx.emit(Item::Volume(Box::new(record), Some(uuid.clone()))).await?;
        ctx.progress.inc();
    }
    ctx.progress.set_phase("list luns");
    for l in collect(ctx, auth, &format!("/api/storage/luns?fields=name,uuid,svm.name,location.volume.name,space.size,space.used,os_type,serial_number,status.state,enabled&max_records={PAGE}")).await? {
        let record = volume(
            l["uuid"].as_str().unwrap_or_default().to_string(),
            l["name"].as_str().unwrap_or_default().to_string(),
            "lun",
            size(&l["space"]["size"]),
            size(&l["space"]["used"]),
            None,
            json!({"svm": l["svm"]["name"], "volume": l["location"]["volume"]["name"], "serial_number": l["serial_number"], "os_type": l["os_type"], "state": l["status"]["state"], "enabled": l["enabled"]}),
        );
        ctx.emit(Item::Volume(Box::new(record), Some(uuid.clone()))).await?;
        ctx.progress.inc();
    }
    Ok(FetchSummary {
        complete: true,
        note: None,
    })
}
