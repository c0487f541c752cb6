//! `infradeck bench`: every speed target of the project measured over simulated estates, with
//! warm-up and repeats, as a table or JSON.

use crate::bench::{self as b, Row, Scratch, Stats};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub scales: Vec<usize>,
    pub json: bool,
    /// Simulated network latency per request.
    pub latency: Duration,
    /// Only the NetBox rows.
    pub netbox_only: bool,
    /// Only the config diff rows.
    pub diff_only: bool,
    /// Only the search rows (full-text, hybrid, the local model).
    pub search_only: bool,
    /// Records in the machine-list measurement (its targets are stated for 100,000).
    pub machine_records: usize,
    /// Objects the simulated NetBox holds for the plan row (its target is stated for 50,000).
    pub netbox_objects: usize,
}

/// Hidden helper: measures the dashboard over an existing database in this fresh process and
/// prints the figures as JSON, so the parent gets the dashboard's own memory.
pub fn bench_dashboard(db: &std::path::Path, devices: usize) -> anyhow::Result<()> {
    let figure = b::dashboard_over(db, devices, 3)?;
    let out = serde_json::json!({
        "first_frame": Stats::of(&figure.first_frame),
        "keystroke": Stats::of(&figure.keystroke),
        "page_down": Stats::of(&figure.page_down),
        "peak_rss_bytes": b::peak_rss_bytes(),
    });
    println!("{out}");
    Ok(())
}

/// The machine list's targets, stated for 100,000 records (about 40,000 machines): filtered
/// pages, the machine recomputation after a correlation, and the dashboard over machines.
fn machine_rows(
    rows: &mut Vec<Row>,
    wanted: usize,
    json: bool,
    dashboard_rss: &mut Option<u64>,
) -> anyhow::Result<()> {
    progress(
        json,
        &format!("{wanted} records: machines (correlation, pages, dashboard)"),
    );
    let dir = Scratch::new("bench-machines")?;
    let db = dir.0.join("inventory.db");
    let records = b::machine_inventory(wanted, &db)?;
    let figures = b::machine_figures(&db)?;
    let ms = |d: Duration| Stats::of(&[d]);
    rows.push(Row {
        measurement: format!(
            "first correlation: {} records → {} machines (links and machines from nothing)",
            records, figures.machines
        ),
        scale: records,
        stats: ms(figures.first_correlation),
        floor_ms: None,
        target: "—",
    });
    let (machines, scan) = b::machine_text_figures(&db)?;
    rows.push(Row {
        measurement: format!(
            "machine texts for embedding, {machines} machines (scanned after each correlation)"
        ),
        scale: records,
        stats: scan,
        floor_ms: None,
        target: "—",
    });
    rows.push(Row {
        measurement: "machine identity, primary and health recomputed (each correlation)".into(),
        scale: records,
        stats: figures.identity,
        floor_ms: None,
        target: "< 1 s at 100,000",
    });
    rows.push(Row {
        measurement: "machine page by name: substring filter + count".into(),
        scale: records,
        stats: figures.page,
        floor_ms: None,
        target: "< 5 ms at 100,000",
    });
    rows.push(Row {
        measurement: "machine page `health:warn type:vm` by health".into(),
        scale: records,
        stats: figures.health_page,
        floor_ms: None,
        target: "< 5 ms at 100,000",
    });
    let figure = dashboard_figure(&db, records)?;
    for (key, measurement, target) in [
        (
            "first_frame",
            "dashboard over machines: open database + first frame",
            "< 100 ms at 100,000",
        ),
        (
            "keystroke",
            "dashboard over machines: filter keystroke → frame",
            "< 16 ms",
        ),
    ] {
        rows.push(Row {
            measurement: measurement.into(),
            scale: records,
            stats: stats_in(&figure, key),
            floor_ms: None,
            target,
        });
    }
    if let Some(rss) = figure["peak_rss_bytes"].as_u64() {
        *dashboard_rss = Some(dashboard_rss.map_or(rss, |r| r.max(rss)));
    }
    Ok(())
}

/// The changes and the past, stated for 100,000 records and 1,000,000 history rows: the
/// changes of a day, the dashboard landing on them, and the machines as they were a week ago.
fn history_rows(
    rows: &mut Vec<Row>,
    devices: usize,
    history: usize,
    json: bool,
) -> anyhow::Result<()> {
    progress(
        json,
        &format!("{devices} records, {history} history rows: changes and the past"),
    );
    let dir = Scratch::new("bench-history")?;
    let db = dir.0.join("inventory.db");
    let (records, written) = b::history_inventory(devices, history, &db)?;
    let figures = b::history_figures(&db)?;
    for (measurement, stats, target) in [
        (
            format!(
                "`changes --since 24h` over {written} history rows ({} changes)",
                figures.changes_count
            ),
            figures.changes,
            "< 200 ms at 100,000 / 1,000,000",
        ),
        (
            "dashboard landing on the changes: open + first frame".to_string(),
            figures.first_frame,
            "< 100 ms at 100,000 / 1,000,000",
        ),
        (
            format!(
                "`devices --at` a week back ({} machines rebuilt)",
                figures.machines_then
            ),
            figures.at_week,
            "< 2 s at 100,000 / 1,000,000",
        ),
    ] {
        rows.push(Row {
            measurement,
            scale: records,
            stats,
            floor_ms: None,
            target,
        });
    }
    Ok(())
}

/// The dashboard measured over `db` in a fresh process (`bench-dashboard`), as its JSON.
fn dashboard_figure(db: &std::path::Path, devices: usize) -> anyhow::Result<serde_json::Value> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg("bench-dashboard")
        .arg(db)
        .arg(devices.to_string())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "the dashboard measurement failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The statistics under `key` of a `bench-dashboard` figure.
fn stats_in(figure: &serde_json::Value, key: &str) -> Stats {
    let v = &figure[key];
    Stats {
        median_ms: v["median_ms"].as_f64().unwrap_or_default(),
        min_ms: v["min_ms"].as_f64().unwrap_or_default(),
        max_ms: v["max_ms"].as_f64().unwrap_or_default(),
        n: v["n"].as_u64().unwrap_or_default() as usize,
    }
}

fn progress(json: bool, text: &str) {
    if !json {
        eprintln!("  … {text}");
    }
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut dashboard_rss: Option<u64> = None;
    let latency_ms = args.latency.as_secs_f64() * 1e3;
    for &scale in args.scales.iter().filter(|_| args.search_only) {
        search_rows(&mut rows, scale, args.json)?;
    }
    for &scale in args.scales.iter().filter(|_| !args.search_only) {
        // Small estates are cheap: repeat them; a 100,000-VM sync is measured once.
        let repeats = if scale <= 10_000 { 3 } else { 1 };
        let (mut first, mut resync, mut floors) = (Vec::new(), Vec::new(), Vec::new());
        let keep = Scratch::new("bench-estate")?;
        for round in 0..repeats {
            progress(
                args.json,
                &format!(
                    "{scale} VMs: full sync of all sources, run {}/{repeats}",
                    round + 1
                ),
            );
            let dir = keep.0.join(format!("run-{round}"));
            std::fs::create_dir_all(&dir)?;
            let (f, r, floor, _) = runtime.block_on(b::full_sync(scale, args.latency, &dir))?;
            first.push(f);
            resync.push(r);
            floors.push(floor);
            if round + 1 < repeats {
                std::fs::remove_dir_all(&dir)?;
            }
        }
        let floor_ms = Stats::of(&floors).median_ms;
        rows.push(Row {
            measurement: format!(
                "full sync, all 8 sources in parallel ({latency_ms} ms per request)"
            ),
            scale,
            stats: Stats::of(&first),
            floor_ms: Some(floor_ms),
            target: "— (all sources share 2 cores with the simulators: CPU-bound)",
        });
        rows.push(Row {
            measurement: "re-sync, nothing changed".into(),
            scale,
            stats: Stats::of(&resync),
            floor_ms: Some(floor_ms),
            target: "writes nothing (checked)",
        });
        progress(args.json, &format!("{scale} VMs: vCenter sync alone"));
        let vcenter: Vec<b::SyncFigure> = (0..repeats)
            .map(|_| runtime.block_on(b::vcenter_sync(scale, args.latency)))
            .collect::<anyhow::Result<_>>()?;
        let vcenter_floor = vcenter.iter().map(|f| f.floor).collect::<Vec<_>>();
        rows.push(Row {
            measurement: format!(
                "vCenter sync alone ({latency_ms} ms per request, {} in flight)",
                vcenter.first().map_or(0, |f| f.concurrency)
            ),
            scale,
            stats: Stats::of(&vcenter.iter().map(|f| f.elapsed).collect::<Vec<_>>()),
            floor_ms: Some(Stats::of(&vcenter_floor).median_ms),
            target: "≤ 1.3× the floor (requests × latency ÷ in flight) at 10,000, SOAP included",
        });
        progress(args.json, &format!("{scale} VMs: vCenter SOAP properties"));
        let soap: Vec<b::SoapFigure> = (0..repeats)
            .map(|_| runtime.block_on(b::vcenter_soap(scale, args.latency)))
            .collect::<anyhow::Result<_>>()?;
        let pages = soap.first().map_or(0, |f| f.pages);
        rows.push(Row {
            measurement: format!(
                "vCenter SOAP snapshots + layoutEx, {pages} pages of ≤ {} ({latency_ms} ms per request)",
                infradeck_core::sources::vim25::PAGE
            ),
            scale,
            stats: Stats::of(&soap.iter().map(|f| f.elapsed).collect::<Vec<_>>()),
            floor_ms: Some(Stats::of(&soap.iter().map(|f| f.floor).collect::<Vec<_>>()).median_ms),
            target: "pages of ≥ 500 objects (sequential: requests × latency)",
        });
        progress(args.json, &format!("{scale} VMs: PuppetDB syncs"));
        let puppetdb: Vec<b::PuppetdbFigure> = (0..repeats)
            .map(|_| runtime.block_on(b::puppetdb_sync(scale, args.latency)))
            .collect::<anyhow::Result<_>>()?;
        if let Some(bad) = puppetdb.iter().find(|f| f.volatile_history_rows > 0) {
            anyhow::bail!(
                "a Puppet run that moved only run-volatile facts wrote {} history rows",
                bad.volatile_history_rows
            );
        }
        let nodes = puppetdb.first().map_or(0, |f| f.nodes);
        let pick = |f: fn(&b::PuppetdbFigure) -> Duration| {
            Stats::of(&puppetdb.iter().map(f).collect::<Vec<_>>())
        };
        let unchanged = pick(|f| f.unchanged);
        rows.push(Row {
            measurement: format!(
                "PuppetDB first sync, {nodes} nodes with Facter 4 facts ({latency_ms} ms per request)"
            ),
            scale,
            stats: pick(|f| f.first),
            floor_ms: Some(pick(|f| f.floor).median_ms),
            target: "≤ 1.3× the floor (requests × latency) at 10,000 nodes",
        });
        rows.push(Row {
            measurement: "PuppetDB re-sync, nothing changed".into(),
            scale,
            stats: unchanged,
            floor_ms: None,
            target: "— (the yardstick of the next row)",
        });
        rows.push(Row {
            measurement: "PuppetDB re-sync after a Puppet run (run-volatile facts moved)".into(),
            scale,
            stats: pick(|f| f.volatile_only),
            floor_ms: Some(unchanged.median_ms),
            target: "< 1.5× the unchanged re-sync; writes nothing (checked)",
        });
        progress(args.json, &format!("{scale} VMs: reconcile step alone"));
        let reconcile: Vec<Duration> = (0..repeats)
            .map(|_| b::reconcile_unchanged(scale))
            .collect::<anyhow::Result<_>>()?;
        rows.push(Row {
            measurement: "reconcile step of an unchanged re-sync (VM + details + NIC)".into(),
            scale,
            stats: Stats::of(&reconcile),
            floor_ms: None,
            target: "< 1 s at 100,000",
        });
        drop(keep);
        // The dashboard and query targets are stated for a number of devices: measure them over
        // exactly `scale` devices.
        let inventory_dir = Scratch::new("bench-inventory")?;
        let db = inventory_dir.0.join("inventory.db");
        b::inventory(scale, &db)?;
        let devices = scale;
        progress(args.json, &format!("{devices} devices: queries"));
        let (page, page_other, typing) = b::query_figures(&db)?;
        rows.push(Row {
            measurement: "device page by name: substring filter + count".into(),
            scale: devices,
            stats: page,
            floor_ms: None,
            target: "< 5 ms at 100,000",
        });
        rows.push(Row {
            measurement: "device page by last seen: substring filter + count".into(),
            scale: devices,
            stats: page_other,
            floor_ms: None,
            target: "—",
        });
        rows.push(Row {
            measurement: "filter as you type, per keystroke (store)".into(),
            scale: devices,
            stats: typing,
            floor_ms: None,
            target: "< 16 ms",
        });
        progress(
            args.json,
            &format!("{devices} devices: dashboard (fresh process, TestBackend 160×48)"),
        );
        let figure = dashboard_figure(&db, devices)?;
        let stats = |key: &str| -> anyhow::Result<Stats> { Ok(stats_in(&figure, key)) };
        rows.push(Row {
            measurement: "dashboard: open database + first frame".into(),
            scale: devices,
            stats: stats("first_frame")?,
            floor_ms: None,
            target: "< 200 ms at 100,000",
        });
        rows.push(Row {
            measurement: "dashboard: filter keystroke → frame".into(),
            scale: devices,
            stats: stats("keystroke")?,
            floor_ms: None,
            target: "< 16 ms",
        });
        if let Some(rss) = figure["peak_rss_bytes"].as_u64() {
            dashboard_rss = Some(dashboard_rss.map_or(rss, |r| r.max(rss)));
        }
        drop(inventory_dir);

        search_rows(&mut rows, scale, args.json)?;
    }
    if !args.netbox_only && !args.diff_only && !args.search_only {
        machine_rows(
            &mut rows,
            args.machine_records,
            args.json,
            &mut dashboard_rss,
        )?;
        history_rows(
            &mut rows,
            args.machine_records,
            args.machine_records * 10,
            args.json,
        )?;
    }
    let diff_sizes: &[usize] = if args.netbox_only || args.search_only {
        &[]
    } else {
        &[1_000, 10_000, 100_000]
    };
    for &lines in diff_sizes {
        progress(args.json, &format!("config diff of {lines} lines"));
        let (ours, gnu) = b::diff_figure(lines, if lines >= 100_000 { 5 } else { 10 })?;
        rows.push(Row {
            measurement: format!(
                "config diff: read, line diff, words on screen{}",
                if gnu.is_some() {
                    " (floor: GNU diff -u, whole process, same files)"
                } else {
                    " (GNU diff not installed: no floor)"
                }
            ),
            scale: lines,
            stats: ours,
            floor_ms: gnu.map(|g| g.median_ms),
            target: if lines >= 100_000 {
                "≤ 1.0× GNU diff -u"
            } else {
                "—"
            },
        });
    }
    if !args.diff_only && !args.search_only {
        netbox_rows(&runtime, args, &mut rows)?;
    }
    let peak = b::peak_rss_bytes();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if args.json {
        let out = serde_json::json!({
            "machine": {"cores": cores, "os": std::env::consts::OS, "arch": std::env::consts::ARCH},
            "latency_ms": latency_ms,
            "rows": rows,
            "peak_rss_bytes": {"bench_process": peak, "dashboard": dashboard_rss},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.measurement.clone(),
                infradeck_tui::header::group(r.scale as u64),
                format_ms(r.stats.median_ms),
                format!(
                    "{}–{}",
                    format_ms(r.stats.min_ms),
                    format_ms(r.stats.max_ms)
                ),
                r.stats.n.to_string(),
                r.floor_ms
                    .map(|f| format!("{} ({:.2}×)", format_ms(f), r.stats.median_ms / f.max(1e-9)))
                    .unwrap_or_default(),
                r.target.to_string(),
            ]
        })
        .collect();
    println!(
        "infradeck bench · {cores} cores · {} {} · {latency_ms} ms simulated latency per request",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    print!(
        "{}",
        super::table::render(
            &[
                "MEASUREMENT",
                "SCALE",
                "MEDIAN",
                "SPREAD",
                "N",
                "FLOOR",
                "TARGET"
            ],
            &table
        )
    );
    if let Some(rss) = dashboard_rss {
        println!(
            "peak resident memory of the dashboard (largest scale, own process): {:.0} MB   target < 200 MB at 100,000",
            rss as f64 / 1e6
        );
    }
    if let Some(rss) = peak {
        println!(
            "peak resident memory of this benchmark (simulators + syncs + corpus): {:.0} MB",
            rss as f64 / 1e6
        );
    }
    Ok(())
}

/// Full-text and hybrid search over a corpus of `scale` KB pages, and the local model's rows
/// when it is installed.
fn search_rows(rows: &mut Vec<Row>, scale: usize, json: bool) -> anyhow::Result<()> {
    progress(json, &format!("{scale} KB pages: search corpus"));
    let corpus = Scratch::new("bench-search")?;
    let mut store = infradeck_core::store::Store::open(
        &corpus.0.join("inventory.db"),
        &infradeck_core::store::OpenOptions::default(),
    )?;
    let query = b::knowledge_corpus(&mut store, scale, 384)?;
    let (text, hybrid) = b::search_figures(&store, &query, 5)?;
    rows.push(Row {
        measurement: "full-text search, top 20 with snippets".into(),
        scale,
        stats: text,
        floor_ms: None,
        target: "median < 20 ms at 100,000",
    });
    rows.push(Row {
        measurement: "hybrid search, 384-dimension vectors (query vector given)".into(),
        scale,
        stats: hybrid,
        floor_ms: None,
        target: "median < 50 ms at 100,000",
    });
    let model_dir = infradeck_core::config::default_model_dir();
    progress(json, "the local model (all-MiniLM-L6-v2)");
    match b::model_figures(&model_dir, &store, 5)? {
        None => progress(
            json,
            &format!(
                "skipped the local model's rows: not installed in {}",
                model_dir.display()
            ),
        ),
        Some(figures) => {
            rows.push(Row {
                measurement: "local model: embed a query".into(),
                scale,
                stats: figures.query,
                floor_ms: None,
                target: "< 20 ms",
            });
            rows.push(Row {
                measurement: "local model: hybrid search, query embedded here".into(),
                scale,
                stats: figures.hybrid,
                floor_ms: None,
                target: "median < 50 ms at 100,000",
            });
            rows.push(Row {
                measurement: "local model: one 100-word chunk, 1 thread (1000/median = chunks/s)"
                    .into(),
                scale,
                stats: figures.chunk_1_thread,
                floor_ms: None,
                target: "throughput",
            });
            rows.push(Row {
                measurement: "local model: one 100-word chunk, 2 threads".into(),
                scale,
                stats: figures.chunk_2_threads,
                floor_ms: None,
                target: "throughput",
            });
            rows.push(Row {
                measurement:
                    "local model: one machine's text, 64 a batch (1000/median = machines/s)".into(),
                scale,
                stats: figures.machine_text,
                floor_ms: None,
                target: "throughput",
            });
        }
    }
    Ok(())
}

/// NetBox apply and rollback of ~600 creates: bulk against the one-request-per-object baseline
/// measured in the same run, on the simulator and (when the tier's variables are set) on the
/// real NetBox 4.7.3.
fn netbox_rows(
    runtime: &tokio::runtime::Runtime,
    args: &BenchArgs,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    // An estate of 180 VMs plans ~600 creates into an empty NetBox (tag, type, clusters, VMs,
    // their interfaces and MACs).
    const ESTATE: usize = 180;
    // The one-request-per-object baseline on the real NetBox takes ~0.4 s per object: a smaller
    // estate gives its rate.
    const BASELINE_ESTATE: usize = 12;
    let scratch = Scratch::new("bench-netbox")?;
    let mut targets = vec![(
        format!(
            "simulator, {} ms per request",
            args.latency.as_secs_f64() * 1e3
        ),
        b::NetboxTarget::Simulator {
            latency: args.latency,
        },
        ESTATE,
    )];
    if let Some(real) = b::NetboxTarget::real_from_env(&scratch.0)? {
        targets.push(("real NetBox 4.7.3".to_string(), real, BASELINE_ESTATE));
    }
    progress(
        args.json,
        &format!(
            "NetBox plan against {} objects (simulator)",
            args.netbox_objects
        ),
    );
    // A 500-VM estate (smaller when the run asks for smaller estates).
    let estate = args.scales.iter().copied().min().unwrap_or(500).min(500);
    let (took, items, held) = runtime.block_on(b::netbox_plan_large(
        estate,
        args.netbox_objects,
        args.latency,
    ))?;
    rows.push(Row {
        measurement: format!(
            "NetBox plan of the whole estate (every source) against a NetBox holding {held} objects: {items} items"
        ),
        scale: held,
        stats: Stats {
            median_ms: took.as_secs_f64() * 1e3,
            min_ms: took.as_secs_f64() * 1e3,
            max_ms: took.as_secs_f64() * 1e3,
            n: 1,
        },
        floor_ms: None,
        target: "< 30 s",
    });
    for (name, target, baseline_estate) in targets {
        progress(
            args.json,
            &format!("NetBox apply ({name}): one request per object"),
        );
        let single = runtime.block_on(b::netbox_apply(baseline_estate, &target, 1))?;
        progress(args.json, &format!("NetBox apply ({name}): bulk"));
        let bulk = runtime.block_on(b::netbox_apply(
            ESTATE,
            &target,
            infradeck_core::netbox::apply::CHUNK,
        ))?;
        // The baseline's time for this many objects, at its own rate.
        let baseline_ms = bulk.objects as f64 / single.apply_rate() * 1e3;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let one = |v: f64| Stats {
            median_ms: v,
            min_ms: v,
            max_ms: v,
            n: 1,
        };
        rows.push(Row {
            measurement: format!(
                "NetBox apply, {} creates in {} requests ({name}): {:.0} objects/s; one request per object: {:.1}/s",
                bulk.objects,
                bulk.requests,
                bulk.apply_rate(),
                single.apply_rate()
            ),
            scale: bulk.objects,
            stats: one(ms(bulk.apply)),
            floor_ms: Some(baseline_ms),
            target: "≥ 25 objects/s on the real NetBox (600 creates < 25 s)",
        });
        rows.push(Row {
            measurement: format!(
                "NetBox rollback of the same ({name}): {:.0} objects/s; one request per object: {:.1}/s",
                bulk.rollback_rate(),
                single.rollback_rate()
            ),
            scale: bulk.objects,
            stats: one(ms(bulk.rollback)),
            floor_ms: Some(bulk.objects as f64 / single.rollback_rate() * 1e3),
            target: "≥ 25 objects/s on the real NetBox",
        });
    }
    Ok(())
}

fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}
