//! `infradeck configs DEVICE` (a device's stored config versions) and `infradeck diff DEVICE
//! [FROM] [TO]` (a unified diff between two of them, for `delta`, `less` or a mail).

use super::Context;
use infradeck_core::diff::LineDiff;
use infradeck_core::store::{ConfigVersion, ConfiguredDevice, Store};
use std::io::IsTerminal;

/// The device with stored configs that `which` names: its id, or its name (case-insensitive).
fn configured_device(store: &Store, which: &str) -> anyhow::Result<ConfiguredDevice> {
    let devices = store.configured_devices()?;
    let wanted = which.trim();
    let by_id = wanted.parse::<i64>().ok();
    let mut found: Vec<ConfiguredDevice> = devices
        .into_iter()
        .filter(|c| Some(c.device.id) == by_id || c.device.name.eq_ignore_ascii_case(wanted))
        .collect();
    match found.len() {
        0 => anyhow::bail!(
            "no device named `{}` has stored configs (Oxidized syncs store them; `infradeck configs` lists those that have)",
            infradeck_core::sanitize::for_terminal(wanted)
        ),
        1 => Ok(found.swap_remove(0)),
        _ => anyhow::bail!(
            "`{}` names {} devices with configs; give one of their ids: {}",
            infradeck_core::sanitize::for_terminal(wanted),
            found.len(),
            found
                .iter()
                .map(|c| c.device.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `infradeck configs [DEVICE]`: the devices with stored configs, or one device's versions.
pub fn configs(ctx: &Context, which: Option<&str>, json: bool) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let Some(which) = which else {
        let devices = store.configured_devices()?;
        if json {
            let rows: Vec<serde_json::Value> = devices
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "device_id": c.device.id,
                        "name": c.device.name,
                        "versions": c.versions,
                        "latest": c.latest,
                    })
                })
                .collect();
            return super::print_json(&rows);
        }
        let rows: Vec<Vec<String>> = devices
            .iter()
            .map(|c| {
                vec![
                    infradeck_core::sanitize::for_terminal(&c.device.name).into_owned(),
                    c.versions.to_string(),
                    c.latest.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print!(
            "{}",
            super::table::render(&["DEVICE", "VERSIONS", "LAST RETRIEVED"], &rows)
        );
        return Ok(());
    };
    let device = configured_device(&store, which)?;
    let versions = store.config_versions(device.device.id)?;
    if json {
        let rows: Vec<serde_json::Value> = versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version,
                    "retrieved_at": v.retrieved_at,
                    "sha256": v.config_hash,
                    "size_bytes": v.size_bytes,
                })
            })
            .collect();
        return super::print_json(&serde_json::json!({
            "device_id": device.device.id,
            "name": device.device.name,
            "versions": rows,
        }));
    }
    println!(
        "{}: {} stored config versions, newest first (`infradeck diff {}` compares the last two)",
        infradeck_core::sanitize::for_terminal(&device.device.name),
        versions.len(),
        infradeck_core::sanitize::for_terminal(&device.device.name),
    );
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                format!("v{}", v.version),
                v.retrieved_at.clone().unwrap_or_default(),
                v.config_hash.chars().take(16).collect(),
                format!("{} B", v.size_bytes),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["VERSION", "RETRIEVED", "SHA-256", "SIZE"], &rows)
    );
    Ok(())
}

/// Options of `infradeck diff`.
#[derive(Debug, Clone, Default)]
pub struct DiffArgs {
    pub device: String,
    /// The older version: `v3` or `3`, `latest`, or `latest~N` (N before the newest).
    pub from: Option<String>,
    pub to: Option<String>,
    pub hide_volatile: bool,
    pub context: usize,
}

/// The version `text` names among `versions` (newest first).
fn pick<'a>(versions: &'a [ConfigVersion], text: &str) -> anyhow::Result<&'a ConfigVersion> {
    let lower = text.trim().to_ascii_lowercase();
    let back = match lower.as_str() {
        "latest" | "newest" | "last" => Some(0),
        "previous" | "prev" => Some(1),
        other => other
            .strip_prefix("latest~")
            .map(|n| {
                n.parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("`{text}`: after `latest~` comes a count"))
            })
            .transpose()?,
    };
    if let Some(back) = back {
        return versions.get(back).ok_or_else(|| {
            anyhow::anyhow!("`{text}`: only {} versions are stored", versions.len())
        });
    }
    let number: i64 = lower
        .strip_prefix('v')
        .unwrap_or(&lower)
        .parse()
        .map_err(|_| {
            anyhow::anyhow!(
                "`{text}` is not a version: give v3, 3, latest, previous or latest~2 (`infradeck configs DEVICE` lists them)"
            )
        })?;
    versions
        .iter()
        .find(|v| v.version == number)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no version {number} is stored (there are {}: `infradeck configs DEVICE` lists them)",
                versions
                    .iter()
                    .map(|v| format!("v{}", v.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `infradeck diff DEVICE [FROM] [TO]`: the unified diff, coloured only on a terminal (and not
/// with `NO_COLOR`). Exits 0 whether or not the versions differ; the summary line on stderr says.
pub fn diff(ctx: &Context, args: &DiffArgs) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let device = configured_device(&store, &args.device)?;
    let versions = store.config_versions(device.device.id)?;
    let name = &device.device.name;
    // Defaults: the newest against the one before it; FROM alone is compared with the newest.
    let to = match &args.to {
        Some(text) => pick(&versions, text)?,
        None => pick(&versions, "latest")?,
    };
    let from = match &args.from {
        Some(text) => pick(&versions, text)?,
        None => versions
            .iter()
            .find(|v| v.version < to.version)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has only one config version before or at v{}: nothing to compare it with",
                    infradeck_core::sanitize::for_terminal(name),
                    to.version
                )
            })?,
    };
    let text = |v: &ConfigVersion| -> anyhow::Result<String> {
        Ok(store.config_text(v.id)?.unwrap_or_default())
    };
    let hide = if args.hide_volatile {
        ctx.config.dashboard.volatile_lines.as_slice()
    } else {
        &[]
    };
    let model = LineDiff::compute(text(from)?, text(to)?, hide, args.context);
    let label = |v: &ConfigVersion| {
        format!(
            "{name} v{} {}",
            v.version,
            v.retrieved_at.as_deref().unwrap_or("")
        )
        .trim_end()
        .to_string()
    };
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if !model.is_empty() {
        print!("{}", model.unified(&label(from), &label(to), colour));
    }
    eprintln!(
        "{} v{} → v{}: +{} -{}{}",
        infradeck_core::sanitize::for_terminal(name),
        from.version,
        to.version,
        model.added,
        model.removed,
        if model.hidden > 0 {
            format!(", {} volatile lines left out", model.hidden)
        } else if model.is_empty() {
            ", identical".to_string()
        } else {
            String::new()
        }
    );
    Ok(())
}
