//! `infradeck devices`: the inventory as a table or JSON.

use super::Context;
use infradeck_core::model::{DeviceStatus, DeviceType};
use infradeck_core::sanitize;
use infradeck_core::store::{DeviceQuery, DeviceSort};

/// Filters of `infradeck devices`.
#[derive(Debug, Clone, Default)]
pub struct DevicesArgs {
    pub pattern: Option<String>,
    pub device_type: Option<DeviceType>,
    pub source: Option<String>,
    pub status: Option<DeviceStatus>,
    pub limit: u64,
    pub json: bool,
}

/// Lists matching devices sorted by name.
pub fn devices(ctx: &Context, args: &DevicesArgs) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let query = DeviceQuery {
        name_contains: args.pattern.clone(),
        device_type: args.device_type,
        source_system: args.source.clone(),
        status: args.status,
        sort: DeviceSort::Name,
        limit: args.limit,
        ..DeviceQuery::default()
    };
    let devices = store.query_devices(&query)?;
    if args.json {
        let values: Vec<serde_json::Value> = devices
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id,
                    "name": d.name,
                    "device_type": d.device_type,
                    "source_system": d.source_system,
                    "source_identifier": d.source_identifier,
                    "source_id": d.source_id,
                    "status": d.status,
                    "metadata": d.metadata_json(),
                    "first_seen": d.first_seen,
                    "last_seen": d.last_seen,
                })
            })
            .collect();
        let json = serde_json::to_string_pretty(&values)?;
        println!("{}", sanitize::json_for_terminal(&json));
        return Ok(());
    }
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.name.clone(),
                d.device_type.to_string(),
                format!("{}/{}", d.source_system, d.source_identifier),
                d.status.to_string(),
                d.last_seen
                    .as_deref()
                    .map(|t| infradeck_core::time::age(t, now))
                    .unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["ID", "NAME", "TYPE", "SOURCE", "STATUS", "SEEN"], &rows)
    );
    if rows.is_empty() {
        eprintln!("no devices match");
    }
    Ok(())
}
