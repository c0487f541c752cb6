//! `infradeck devices`, `show` and `conflicts`: the inventory as machines (one row per machine,
//! with its sources and health), or as raw source records with `--records`.

use super::Context;
use infradeck_core::app::{KindDetail, MachineDetail};
use infradeck_core::machines::parse_filter;
use infradeck_core::model::{DeviceStatus, DeviceType, Health};
use infradeck_core::store::{DeviceQuery, DeviceSort, Machine, MachineQuery, MachineSort, Store};
use std::collections::BTreeMap;

/// Filters of `infradeck devices`.
#[derive(Debug, Clone, Default)]
pub struct DevicesArgs {
    /// The filter language of the dashboard's `/`: words, `!word`, `type:`, `health:`, ...
    pub pattern: Option<String>,
    pub device_type: Option<DeviceType>,
    pub source: Option<String>,
    pub status: Option<DeviceStatus>,
    pub health: Option<Health>,
    pub power: Option<String>,
    pub sort: Option<MachineSort>,
    pub descending: bool,
    /// One row per source record instead of per machine.
    pub records: bool,
    pub limit: u64,
    pub json: bool,
    /// The inventory as it was at this time (rebuilt from the audit trail).
    pub at: Option<String>,
}

/// `--at WHEN` as a database timestamp, checked to be in the past.
pub(crate) fn past_time(store: &Store, when: &str) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    let look = store.last_look(&infradeck_core::identity::os_user())?;
    let at = infradeck_core::changes::resolve_time(when, now, look.as_deref())
        .map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    anyhow::ensure!(at <= now, "--at {when} is in the future");
    Ok(infradeck_core::time::format(at))
}

/// The stale sources now, for health.
fn stale(ctx: &Context, store: &Store) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(infradeck_core::app::stale_sources(
        store,
        &ctx.config.sources,
        chrono::Utc::now(),
    )?)
}

/// Lists matching machines (or records), sorted by name.
pub fn devices(ctx: &Context, args: &DevicesArgs) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let mut filter = parse_filter(args.pattern.as_deref().unwrap_or(""))?;
    filter.device_type = args.device_type.or(filter.device_type);
    filter.source_system = args.source.clone().or(filter.source_system);
    filter.status = args.status.or(filter.status);
    filter.health = args.health.or(filter.health);
    if let Some(power) = &args.power {
        filter.power = parse_filter(&format!("power:{power}"))?.power;
    }
    if args.records {
        if filter.health.is_some() || filter.power.is_some() {
            anyhow::bail!(
                "health and power belong to machines; leave out --records to filter by them"
            );
        }
        return records(&store, args, filter);
    }
    let sort = args.sort.unwrap_or_default();
    if let Some(when) = &args.at {
        let at = past_time(&store, when)?;
        let past = infradeck_core::app::inventory_at(
            &store,
            &at,
            &ctx.config.machine_rules(),
            &ctx.config.sources,
        )?;
        let mut machines = past.list(&filter, sort, args.descending);
        let total = machines.len() as u64;
        if args.limit > 0 {
            machines.truncate(args.limit as usize);
        }
        if args.json {
            return super::print_json(&machines);
        }
        let now = infradeck_core::time::parse(&at).unwrap_or_else(chrono::Utc::now);
        print_machines(&machines, total, now);
        eprintln!("as it was at {at} UTC (SEEN: before then)");
        if past.unreconstructed > 0 {
            eprintln!(
                "{} records predate the audit trail and are shown as they are now",
                past.unreconstructed
            );
        }
        return Ok(());
    }
    let stale = stale(ctx, &store)?;
    let page = store.machine_page(&MachineQuery {
        filter,
        sort,
        descending: args.descending,
        offset: 0,
        limit: args.limit,
        stale,
    })?;
    if args.json {
        return super::print_json(&page.machines);
    }
    let machines: Vec<&Machine> = page.machines.iter().collect();
    print_machines(&machines, page.total, chrono::Utc::now());
    Ok(())
}

/// The machine table, and how many matched on stderr.
fn print_machines(machines: &[&Machine], total: u64, now: chrono::DateTime<chrono::Utc>) {
    let rows: Vec<Vec<String>> = machines
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.name.clone(),
                type_word(m.device_type).to_string(),
                m.source_systems().join(","),
                m.health.to_string(),
                m.power.clone().unwrap_or_default(),
                m.last_seen
                    .as_deref()
                    .map(|t| infradeck_core::time::age(t, now))
                    .unwrap_or_else(|| "never".into()),
                m.worst_reason().map(|r| r.text.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(
            &[
                "ID", "NAME", "TYPE", "SOURCES", "HEALTH", "POWER", "SEEN", "WHY"
            ],
            &rows
        )
    );
    if rows.is_empty() {
        eprintln!("no machines match");
    } else {
        eprintln!(
            "{} machines{}",
            total,
            if (machines.len() as u64) < total {
                format!(" ({} shown)", machines.len())
            } else {
                String::new()
            }
        );
    }
}

/// `devices --records`: one row per source record, as the sources reported them.
fn records(
    store: &Store,
    args: &DevicesArgs,
    filter: infradeck_core::machines::MachineFilter,
) -> anyhow::Result<()> {
    let query = DeviceQuery {
        sort: DeviceSort::Name,
        limit: args.limit,
        ..DeviceQuery::of_records(&filter)
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
        return super::print_json(&values);
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
        eprintln!("no records match");
    }
    Ok(())
}

fn type_word(device_type: DeviceType) -> &'static str {
    match device_type {
        DeviceType::NetworkDevice => "network",
        other => other.as_str(),
    }
}

/// The machine `which` names: a machine id, or the name of any of its records. Several
/// machines of one name are an error that lists them.
fn find_machine(
    store: &Store,
    which: &str,
    stale: &BTreeMap<String, String>,
) -> anyhow::Result<Machine> {
    if let Ok(id) = which.parse::<i64>()
        && let Some(machine) = store.machine(id, stale)?
    {
        return Ok(machine);
    }
    let mut found = store.machines_named(which, stale)?;
    let index = the_one_named(which, &found.iter().collect::<Vec<_>>(), None)?;
    Ok(found.swap_remove(index))
}

/// Which of the machines `found` for the name `which` is meant: the only one, else an error
/// that says none was found or lists them with their ids. `at`: the past time they are of.
fn the_one_named(which: &str, found: &[&Machine], at: Option<&str>) -> anyhow::Result<usize> {
    let (then, devices_at) = match at {
        Some(at) => (format!(" at {at}"), format!(" --at '{at}'")),
        None => (String::new(), String::new()),
    };
    match found.len() {
        0 => anyhow::bail!(
            "no machine named `{which}`{then} (try `infradeck devices{devices_at} {which}`)"
        ),
        1 => Ok(0),
        _ => anyhow::bail!(
            "`{which}` names {} machines{then}; give one of their ids: {}",
            found.len(),
            found
                .iter()
                .map(|m| format!(
                    "{} ({}, {})",
                    m.id,
                    type_word(m.device_type),
                    m.source_systems().join(",")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// `infradeck show NAME|ID`: one machine, whole.
pub fn show(ctx: &Context, which: &str, json: bool, at: Option<&str>) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    if let Some(when) = at {
        return show_at(ctx, &store, which, json, when);
    }
    let stale = stale(ctx, &store)?;
    let machine = find_machine(&store, which, &stale)?;
    let Some(detail) = infradeck_core::app::machine_detail(&store, machine.id, &stale)? else {
        anyhow::bail!(
            "machine {} vanished while it was read; try again",
            machine.id
        );
    };
    if json {
        return super::print_json(&detail);
    }
    // Sanitized line by line: the sanitizer shows a line break inside a value as `␊`.
    for line in render_detail(&detail).lines() {
        println!("{}", infradeck_core::sanitize::for_terminal(line));
    }
    Ok(())
}

/// `show --at`: the machine as it was, from the audit trail.
fn show_at(
    ctx: &Context,
    store: &Store,
    which: &str,
    json: bool,
    when: &str,
) -> anyhow::Result<()> {
    let at = past_time(store, when)?;
    let past = infradeck_core::app::inventory_at(
        store,
        &at,
        &ctx.config.machine_rules(),
        &ctx.config.sources,
    )?;
    let found = past.find(which);
    let machine = found[the_one_named(which, &found, Some(&at))?].id;
    let Some(detail) = past.detail(machine) else {
        anyhow::bail!("machine {machine} has no detail at {at}");
    };
    if json {
        return super::print_json(&detail);
    }
    for line in detail.lines() {
        println!("{}", infradeck_core::sanitize::for_terminal(&line));
    }
    Ok(())
}

/// The detail as text for a person: sections in the order an on-call engineer reads them.
fn render_detail(d: &MachineDetail) -> String {
    use std::fmt::Write;
    let m = &d.machine;
    let mut out = String::new();
    let now = chrono::Utc::now();
    let _ = writeln!(
        out,
        "{} ({}, machine {}) — {}{}",
        m.name,
        type_word(m.device_type),
        m.id,
        m.health.as_str().to_uppercase(),
        m.power
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default()
    );
    for reason in &m.reasons {
        let source = if reason.source.is_empty() {
            String::new()
        } else {
            format!(" [{}]", reason.source)
        };
        let _ = writeln!(out, "  {:<4} {}{source}", reason.level, reason.text);
    }
    let _ = writeln!(out, "\nSources");
    for r in &m.records {
        let _ = writeln!(
            out,
            "  {:<24} {:<28} {:<8} seen {}",
            r.source(),
            r.name,
            r.status,
            r.last_seen
                .as_deref()
                .map(|t| infradeck_core::time::age(t, now))
                .unwrap_or_else(|| "never".into())
        );
    }
    if let Some(merged) = d.merged.as_ref().filter(|m| !m.fields.is_empty()) {
        let _ = writeln!(out, "\nFields (by source)");
        for field in &merged.fields {
            let values: Vec<String> = field
                .values
                .iter()
                .map(|v| format!("{} ({})", v.value, v.source))
                .collect();
            let mark = if field.conflict { "  ≠ disagree" } else { "" };
            let _ = writeln!(out, "  {:<14} {}{mark}", field.name, values.join(" · "));
        }
    }
    match &d.kind {
        KindDetail::Host {
            source,
            cluster,
            connection_state,
            power_state,
            vms,
            vms_powered_on,
            uplinks,
            ..
        } => {
            let _ = writeln!(out, "\nHost (from {source})");
            let _ = writeln!(
                out,
                "  cluster {}  connection {}  power {}  VMs {vms} ({vms_powered_on} on)",
                cluster.as_deref().unwrap_or("-"),
                connection_state.as_deref().unwrap_or("?"),
                power_state.as_deref().unwrap_or("?")
            );
            for u in uplinks {
                let _ = writeln!(
                    out,
                    "  {:<8} {:<5} {:>6} → {} {}",
                    u.nic,
                    u.status.as_deref().unwrap_or("?"),
                    u.speed_mbps.map(|s| format!("{s}M")).unwrap_or_default(),
                    u.switch.as_deref().unwrap_or("?"),
                    u.port.as_deref().unwrap_or("")
                );
            }
        }
        KindDetail::Cluster {
            source,
            hosts,
            vms,
            vms_powered_on,
            ha_enabled,
            drs_enabled,
        } => {
            let flag = |f: &Option<bool>| match f {
                Some(true) => "on",
                Some(false) => "off",
                None => "?",
            };
            let _ = writeln!(
                out,
                "\nCluster (from {source}): {} hosts, VMs {vms} ({vms_powered_on} on), HA {}, DRS {}",
                hosts.len(),
                flag(ha_enabled),
                flag(drs_enabled)
            );
            for h in hosts {
                let _ = writeln!(
                    out,
                    "  {:<28} {:<4} VMs {} ({} on)",
                    h.name, h.health, h.vms, h.vms_powered_on
                );
            }
        }
        KindDetail::Array {
            source,
            capacity_bytes,
            used_bytes,
            used_percent,
            pools,
            fullest,
            volumes,
        } => {
            let _ = writeln!(
                out,
                "\nArray (from {source}): {volumes} volumes, {} of {} used ({}), pools {}",
                bytes(*used_bytes),
                bytes(*capacity_bytes),
                used_percent
                    .map(|p| format!("{p:.0}%"))
                    .unwrap_or_else(|| "?".into()),
                if pools.is_empty() {
                    "-".to_string()
                } else {
                    pools.join(", ")
                }
            );
            for v in fullest {
                let percent = v
                    .volume
                    .used_percent()
                    .map_or_else(|| "?".into(), |p| format!("{p:.0}%"));
                let _ = writeln!(
                    out,
                    "  {:<32} {:>5} of {}",
                    v.volume.name,
                    percent,
                    bytes(v.volume.capacity_bytes.unwrap_or(0))
                );
            }
        }
        KindDetail::Switch {
            source,
            model,
            last_fetch_status,
            config_retrieved_at,
            config_versions,
            interfaces,
        } => {
            let _ = writeln!(
                out,
                "\nSwitch (from {source}): model {}, last fetch {}, {config_versions} config versions, newest {}",
                model.as_deref().unwrap_or("?"),
                last_fetch_status.as_deref().unwrap_or("?"),
                config_retrieved_at
                    .as_deref()
                    .map(|t| format!("{} ago", infradeck_core::time::age(t, now)))
                    .unwrap_or_else(|| "none".into())
            );
            for i in interfaces {
                let _ = writeln!(
                    out,
                    "  {:<20} {:<5} {}",
                    i.interface.interface_name,
                    i.interface.status.as_deref().unwrap_or("?"),
                    i.interface.metadata["description"].as_str().unwrap_or("")
                );
            }
        }
        KindDetail::None => {}
    }
    if let Some(vm) = &d.vm {
        let _ = writeln!(
            out,
            "\nVM: {} vCPU, {} MiB, power {}, tools {}",
            vm.vm
                .cpu_count
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            vm.vm
                .memory_mb
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            vm.vm.power_state.as_deref().unwrap_or("?"),
            match vm.vm.tools_running {
                Some(true) => "running",
                Some(false) => "not running",
                None => "?",
            }
        );
    }
    if !d.relationships.is_empty() {
        let _ = writeln!(out, "\nRelationships");
        for r in &d.relationships {
            let direction = if r.is_parent { "◂" } else { "▸" };
            let _ = writeln!(
                out,
                "  {direction} {:<11} {:<28} {:<8} {}",
                r.relationship_type,
                r.name,
                type_word(r.device_type),
                r.health
            );
        }
    }
    if !d.interfaces.is_empty() {
        let _ = writeln!(out, "\nInterfaces");
        for i in &d.interfaces {
            let _ = writeln!(
                out,
                "  {:<16} {:<18} {:<30} {}",
                i.interface.interface.interface_name,
                i.interface.interface.mac_address.as_deref().unwrap_or("-"),
                i.interface.interface.ip_addresses.join(", "),
                i.source
            );
        }
    }
    if !d.volumes.is_empty() && !matches!(d.kind, KindDetail::Array { .. }) {
        let _ = writeln!(out, "\nVolumes");
        for v in &d.volumes {
            let _ = writeln!(
                out,
                "  {:<32} {}",
                v.volume.name,
                bytes(v.volume.capacity_bytes.unwrap_or(0))
            );
        }
    }
    if !d.configs.is_empty() {
        let _ = writeln!(out, "\nConfig versions");
        for c in d.configs.iter().take(5) {
            let _ = writeln!(
                out,
                "  v{:<4} {}  {} bytes",
                c.version,
                c.retrieved_at.as_deref().unwrap_or("?"),
                c.size_bytes
            );
        }
    }
    if !d.knowledge.is_empty() {
        let _ = writeln!(out, "\nRunbooks and tickets");
        for k in &d.knowledge {
            let _ = writeln!(out, "  {:<5} {}", k.hit.kind.as_str(), k.hit.title);
        }
    }
    out
}

fn bytes(n: i64) -> String {
    infradeck_core::text::bytes(n)
}

/// `infradeck conflicts`: machines whose sources disagree, the newest disagreement first.
pub fn conflicts(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let stale = stale(ctx, &store)?;
    let machines = store.conflicting_machines(&stale)?;
    if json {
        let values: Vec<serde_json::Value> = machines
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id,
                    "name": m.name,
                    "device_type": m.device_type,
                    "health": m.health,
                    "since": m.conflict_since,
                    "conflicts": m.conflicts,
                    "sources": m.sources(),
                })
            })
            .collect();
        return super::print_json(&values);
    }
    let rows: Vec<Vec<String>> = machines
        .iter()
        .flat_map(|m| {
            m.conflicts.iter().map(move |c| {
                vec![
                    m.name.clone(),
                    c.field.clone(),
                    c.values
                        .iter()
                        .map(|v| format!("{} ({})", v.value, v.source))
                        .collect::<Vec<_>>()
                        .join(" vs "),
                    m.conflict_since.clone().unwrap_or_default(),
                ]
            })
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["MACHINE", "FIELD", "VALUES", "SINCE"], &rows)
    );
    if rows.is_empty() {
        eprintln!("no machine's sources disagree");
    }
    Ok(())
}
