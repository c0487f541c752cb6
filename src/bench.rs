//! Measurements behind `cargo bench` (and the `bench` command): each returns figures, the caller
//! prints them. Everything runs against the simulators and scratch databases.

use crate::config::Config;
use crate::model::{DeviceRecord, DeviceType, InterfaceRecord, VmRecord};
use crate::sim::{SimKind, SimOptions, Simulators};
use crate::sources::{DeviceBundle, Item};
use crate::store::{OpenOptions, Store};
use crate::sync::Engine;
use crate::sync::reconcile::Reconciler;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> std::io::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "infradeck-bench-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One vCenter sync against the simulator, and the floor it is compared with.
#[derive(Debug, Clone)]
pub struct SyncFigure {
    pub vms: usize,
    pub latency: Duration,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub requests: u64,
    /// requests × latency ÷ concurrency: what the network alone costs.
    pub floor: Duration,
}

/// A full first sync of `vms` VMs from the vCenter simulator with `latency` per request.
pub async fn vcenter_sync(vms: usize, latency: Duration) -> anyhow::Result<SyncFigure> {
    let scratch = Scratch::new("sync")?;
    let sims = Simulators::start(&SimOptions {
        scale: vms,
        seed: 3,
        ..SimOptions::default()
    })
    .await?;
    sims.faults(SimKind::Vcenter).set_latency(latency);
    let config_path = scratch.0.join("config.toml");
    sims.write_config(&config_path, Some(&scratch.0.join("inventory.db")))?;
    let config = Config::load(&config_path, true)?;
    let mut source = config
        .sources
        .iter()
        .find(|s| s.kind == crate::model::SourceKind::Vcenter)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no vcenter source"))?;
    if let Some(n) = std::env::var("INFRADECK_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        source.max_in_flight = n;
    }
    let engine = Engine::new(config.database_path(None), config.general.clone());
    let started = Instant::now();
    let outcome = engine
        .run(&source, tokio_util::sync::CancellationToken::new())
        .await;
    let elapsed = started.elapsed();
    if outcome.status != crate::model::RunStatus::Success {
        anyhow::bail!("benchmark sync failed: {:?}", outcome.message);
    }
    sims.stop().await;
    let concurrency = source.max_in_flight;
    Ok(SyncFigure {
        vms,
        latency,
        concurrency,
        elapsed,
        requests: outcome.requests,
        floor: latency.mul_f64(outcome.requests as f64 / concurrency as f64),
    })
}

/// Bundles as the vCenter connector makes them, for `count` VMs.
pub fn vm_bundles(count: usize, generation: u32) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let mac = format!("00:50:56:{:02x}:{:02x}:{:02x}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
            let mut bundle = DeviceBundle::new(DeviceRecord {
                source_system: "vcenter".into(),
                source_identifier: "bench".into(),
                source_id: format!("vm-{i}"),
                name: format!("{}-{i:06}", ["web", "db", "app", "cache"][i % 4]),
                device_type: DeviceType::Vm,
                metadata: serde_json::json!({"vcenter": {"power_state": "POWERED_ON", "cpu_count": 2 + i % 8, "memory_mb": 4096, "host": format!("esx{:03}", i % 400), "macs": [mac], "generation": generation}}),
            });
            bundle.vm = Some(VmRecord {
                cpu_count: Some(2 + (i % 8) as i64),
                memory_mb: Some(4096),
                power_state: Some("POWERED_ON".into()),
                tools_running: Some(true),
                ip_addresses: serde_json::json!([format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff)]),
                ..VmRecord::default()
            });
            bundle.interfaces = Some(vec![InterfaceRecord {
                interface_name: "Network adapter 1".into(),
                mac_address: Some(mac),
                ip_addresses: vec![format!("10.{}.{}.{}/24", i >> 16, (i >> 8) & 0xff, i & 0xff)],
                status: Some("up".into()),
                interface_type: Some("virtual".into()),
                ..InterfaceRecord::default()
            }]);
            Item::Device(Box::new(bundle))
        })
        .collect()
}

/// The reconcile step of a re-sync in which nothing changed: `count` VM bundles (device, VM
/// details, one NIC) compared and written in batches of 2,000, as the engine does.
pub fn reconcile_unchanged(count: usize) -> anyhow::Result<Duration> {
    let scratch = Scratch::new("reconcile")?;
    let store = Store::open(&scratch.0.join("inventory.db"), &OpenOptions::default())?;
    let mut reconciler = Reconciler::new(store, "bench-1", "vcenter", "bench", "bench");
    let now = crate::time::now();
    for batch in vm_bundles(count, 1).chunks(2000) {
        reconciler.apply(batch.to_vec(), &now)?;
    }
    let store = Store::open(&scratch.0.join("inventory.db"), &OpenOptions::default())?;
    let mut again = Reconciler::new(store, "bench-2", "vcenter", "bench", "bench");
    let batches: Vec<Vec<Item>> = vm_bundles(count, 1)
        .chunks(2000)
        .map(<[Item]>::to_vec)
        .collect();
    let started = Instant::now();
    for batch in batches {
        again.apply(batch, &now)?;
    }
    let elapsed = started.elapsed();
    if again.counts.updated != 0 || again.counts.added != 0 {
        anyhow::bail!("the re-sync was not a no-op: {:?}", again.counts);
    }
    Ok(elapsed)
}

/// The dashboard over a large inventory, drawn into ratatui's TestBackend.
#[derive(Debug, Clone)]
pub struct DashboardFigure {
    pub devices: usize,
    /// Opening the database, building the dashboard and drawing its first frame, per try.
    pub first_frame: Vec<Duration>,
    /// One filter keystroke to the next frame, per keystroke.
    pub keystroke: Vec<Duration>,
    /// Scrolling one page down to the next frame.
    pub page_down: Vec<Duration>,
}

/// Fills a scratch database with `devices` devices (90% VMs, names like `web-000123.lab`).
pub fn inventory(devices: usize, path: &std::path::Path) -> anyhow::Result<()> {
    let mut store = Store::open(path, &OpenOptions::default())?;
    let now = crate::time::now();
    let records: Vec<DeviceRecord> = (0..devices)
        .map(|i| DeviceRecord {
            source_system: "vcenter".into(),
            source_identifier: "vc-bench".into(),
            source_id: format!("vm-{i}"),
            name: format!("{}-{:06}.lab", ["web", "db", "app", "cache", "mq"][i % 5], i),
            device_type: if i % 10 == 0 { DeviceType::Server } else { DeviceType::Vm },
            metadata: serde_json::json!({"vcenter": {"power_state": "POWERED_ON", "cpu_count": 2 + i % 8}}),
        })
        .collect();
    for chunk in records.chunks(5000) {
        store.write(|w| {
            w.upsert_devices(chunk, &now)?;
            Ok(())
        })?;
    }
    Ok(())
}

/// Measures the dashboard over `devices` devices at 160×48.
pub fn dashboard(devices: usize, tries: usize) -> anyhow::Result<DashboardFigure> {
    let scratch = Scratch::new("dashboard")?;
    let path = scratch.0.join("inventory.db");
    inventory(devices, &path)?;
    dashboard_over(&path, devices, tries)
}

/// Measures the dashboard over an existing database (in a fresh process this also gives the
/// dashboard's own peak memory).
pub fn dashboard_over(
    path: &std::path::Path,
    devices: usize,
    tries: usize,
) -> anyhow::Result<DashboardFigure> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let path = path.to_path_buf();
    let env = crate::ui::app::Env {
        database_label: "bench".into(),
        identity: "bench@localhost".into(),
        reviewer: "bench".into(),
        read_only: false,
        theme: crate::ui::theme::Theme { color: true },
        sources: Vec::new(),
        volatile_lines: Vec::new(),
        stale_after: chrono::Duration::days(7),
        fixed_now: None,
        netbox_configured: false,
    };
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48))?;
    let mut figure = DashboardFigure {
        devices,
        first_frame: Vec::new(),
        keystroke: Vec::new(),
        page_down: Vec::new(),
    };
    for _ in 0..tries {
        let start = Instant::now();
        let store = Store::open(&path, &OpenOptions::default())?;
        let mut app = crate::ui::app::App::new(store, env.clone())?;
        terminal.draw(|f| app.draw(f))?;
        figure.first_frame.push(start.elapsed());
        // As the event loop does once the first frame is up.
        app.warm();

        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        app.on_key(key(KeyCode::Char('/')));
        for c in "web-0012".chars() {
            let start = Instant::now();
            app.on_key(key(KeyCode::Char(c)));
            terminal.draw(|f| app.draw(f))?;
            figure.keystroke.push(start.elapsed());
        }
        for _ in 0..8 {
            let start = Instant::now();
            app.on_key(key(KeyCode::Backspace));
            terminal.draw(|f| app.draw(f))?;
            figure.keystroke.push(start.elapsed());
        }
        app.on_key(key(KeyCode::Enter));
        for _ in 0..20 {
            let start = Instant::now();
            app.on_key(key(KeyCode::PageDown));
            terminal.draw(|f| app.draw(f))?;
            figure.page_down.push(start.elapsed());
        }
    }
    Ok(figure)
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Median and (min, max) of some durations.
pub fn median(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let Some((&min, &max)) = sorted.first().zip(sorted.last()) else {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    };
    (sorted[sorted.len() / 2], min, max)
}
