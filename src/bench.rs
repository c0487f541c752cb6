//! Measurements behind `cargo bench` (and the `bench` command): each returns figures, the caller
//! prints them. Everything runs against the simulators and scratch databases.

use infradeck_core::config::Config;
use infradeck_core::model::{
    DeviceBundle, DeviceRecord, DeviceType, InterfaceRecord, Item, VmRecord,
};
use infradeck_core::store::{OpenOptions, Store};
use infradeck_core::sync::Engine;
use infradeck_core::sync::reconcile::Reconciler;
use infradeck_sim::{SimKind, SimOptions, Simulators};
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
/// Simulators of `vms` VMs with `latency` on vCenter, a config for them in a scratch directory,
/// and its vCenter source.
async fn vcenter_rig(
    vms: usize,
    latency: Duration,
    scratch: &str,
) -> anyhow::Result<(
    Scratch,
    Simulators,
    Config,
    infradeck_core::config::SourceConfig,
)> {
    let scratch = Scratch::new(scratch)?;
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
    let source = config
        .sources
        .iter()
        .find(|s| s.kind == infradeck_core::model::SourceKind::Vcenter)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no vcenter source"))?;
    Ok((scratch, sims, config, source))
}

pub async fn vcenter_sync(vms: usize, latency: Duration) -> anyhow::Result<SyncFigure> {
    let (_scratch, sims, config, mut source) = vcenter_rig(vms, latency, "sync").await?;
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
    if outcome.status != infradeck_core::model::RunStatus::Success {
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

/// vCenter's SOAP side alone: the snapshot and layout properties of every VM, read in pages.
#[derive(Debug, Clone)]
pub(crate) struct SoapFigure {
    pub(crate) elapsed: Duration,
    /// RetrievePropertiesEx + ContinueRetrievePropertiesEx calls.
    pub(crate) pages: u64,
    /// requests × latency: the calls are sequential (each page needs the previous token).
    pub(crate) floor: Duration,
}

pub(crate) async fn vcenter_soap(vms: usize, latency: Duration) -> anyhow::Result<SoapFigure> {
    let (_scratch, sims, _config, source) = vcenter_rig(vms, latency, "soap").await?;
    let client = infradeck_core::http::SourceClient::new(&source, Default::default())?;
    let login = sims.credentials(SimKind::Vcenter);
    let password = infradeck_core::config::Secret::new(login.password);
    let started = Instant::now();
    let soap =
        infradeck_core::sources::vim25::Soap::login(&client, &login.username, &password).await?;
    let before = client.requests();
    let objects = soap
        .retrieve("VirtualMachine", &["snapshot", "layoutEx"])
        .await?;
    // CreateContainerView and DestroyView are the two calls around the pages.
    let pages = client.requests() - before - 2;
    soap.logout().await;
    let elapsed = started.elapsed();
    sims.stop().await;
    if objects.len() != vms {
        anyhow::bail!("SOAP returned {} of {vms} VMs", objects.len());
    }
    let requests = client.requests();
    Ok(SoapFigure {
        elapsed,
        pages,
        floor: latency.mul_f64(requests as f64),
    })
}

/// PuppetDB syncs of an estate of `scale` VMs (its nodes carry Facter-4-sized facts, ~3 KB):
/// the first sync against its floor, an unchanged re-sync, and a re-sync after a Puppet run
/// that moved only the run-volatile facts.
#[derive(Debug, Clone)]
pub(crate) struct PuppetdbFigure {
    pub(crate) nodes: u64,
    pub(crate) first: Duration,
    /// requests × latency (pages are read one after the other).
    pub(crate) floor: Duration,
    pub(crate) unchanged: Duration,
    pub(crate) volatile_only: Duration,
    /// Rows the volatile-only re-sync wrote to `sync_history` (must be 0).
    pub(crate) volatile_history_rows: u64,
}

pub(crate) async fn puppetdb_sync(
    scale: usize,
    latency: Duration,
) -> anyhow::Result<PuppetdbFigure> {
    let scratch = Scratch::new("puppetdb")?;
    let sims = Simulators::start(&SimOptions {
        scale,
        seed: 3,
        ..SimOptions::default()
    })
    .await?;
    sims.faults(SimKind::Puppetdb).set_latency(latency);
    let config_path = scratch.0.join("config.toml");
    sims.write_config(&config_path, Some(&scratch.0.join("inventory.db")))?;
    let config = Config::load(&config_path, true)?;
    let source = config
        .sources
        .iter()
        .find(|s| s.kind == infradeck_core::model::SourceKind::Puppetdb)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no puppetdb source"))?;
    let engine = Engine::new(config.database_path(None), config.general.clone());
    let run = || async {
        let started = Instant::now();
        let outcome = engine
            .run(&source, tokio_util::sync::CancellationToken::new())
            .await;
        if outcome.status != infradeck_core::model::RunStatus::Success {
            anyhow::bail!("benchmark sync failed: {:?}", outcome.message);
        }
        Ok((started.elapsed(), outcome))
    };
    let (first, outcome) = run().await?;
    let (unchanged, _) = run().await?;
    let history = |path: &std::path::Path| -> anyhow::Result<u64> {
        let store = Store::open(path, &OpenOptions::default())?;
        Ok(store
            .table_counts()?
            .into_iter()
            .find(|(t, _)| *t == "sync_history")
            .map_or(0, |(_, n)| n))
    };
    let database = config.database_path(None);
    let before = history(&database)?;
    sims.estate
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .puppet_runs += 1;
    let (volatile_only, _) = run().await?;
    let volatile_history_rows = history(&database)? - before;
    sims.stop().await;
    Ok(PuppetdbFigure {
        nodes: outcome.counts.added.max(0) as u64,
        first,
        floor: latency.mul_f64(outcome.requests as f64),
        unchanged,
        volatile_only,
        volatile_history_rows,
    })
}

/// A NetBox to apply to: the simulator (started empty) or the real one of the test tier.
#[derive(Debug, Clone)]
pub(crate) enum NetboxTarget {
    Simulator {
        latency: Duration,
    },
    /// `INFRADECK_REAL_NETBOX_URL`, a file holding the token, and the command that empties it.
    Real {
        url: String,
        token_file: PathBuf,
        reset: String,
    },
}

impl NetboxTarget {
    /// The real tier, when its variables are set (`tests/tiers/netbox.sh start DIR` writes them).
    pub(crate) fn real_from_env(dir: &std::path::Path) -> anyhow::Result<Option<NetboxTarget>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(url), Some(token), Some(reset)) = (
            var("INFRADECK_REAL_NETBOX_URL"),
            var("INFRADECK_REAL_NETBOX_TOKEN"),
            var("INFRADECK_REAL_NETBOX_RESET"),
        ) else {
            return Ok(None);
        };
        let token_file = dir.join("real-netbox-token");
        std::fs::write(&token_file, token)?;
        Ok(Some(NetboxTarget::Real {
            url,
            token_file,
            reset,
        }))
    }
}

/// One plan → approve all → apply → rollback against an empty NetBox.
#[derive(Debug, Clone)]
pub(crate) struct NetboxFigure {
    /// Items applied (every one a create).
    pub(crate) objects: usize,
    pub(crate) apply: Duration,
    pub(crate) rollback: Duration,
    /// Write requests apply sent.
    pub(crate) requests: usize,
}

impl NetboxFigure {
    pub(crate) fn apply_rate(&self) -> f64 {
        self.objects as f64 / self.apply.as_secs_f64().max(1e-9)
    }

    pub(crate) fn rollback_rate(&self) -> f64 {
        self.objects as f64 / self.rollback.as_secs_f64().max(1e-9)
    }
}

/// Every simulator over a `scale`-VM estate, a config written for them and the database path
/// (in a scratch directory that lives as long as the first value).
async fn simulated_estate(
    name: &str,
    scale: usize,
    seed: u64,
) -> anyhow::Result<(Scratch, Simulators, Config, PathBuf)> {
    let scratch = Scratch::new(name)?;
    let sims = Simulators::start(&SimOptions {
        scale,
        seed,
        ..SimOptions::default()
    })
    .await?;
    let config_path = scratch.0.join("config.toml");
    let database = scratch.0.join("inventory.db");
    sims.write_config(&config_path, Some(&database))?;
    let config = Config::load(&config_path, true)?;
    Ok((scratch, sims, config, database))
}

/// Plans the vCenter inventory of a `scale`-VM estate into an empty NetBox, approves it all and
/// applies it `chunk` objects per request (1: one request per object, the baseline), then rolls
/// it back.
pub(crate) async fn netbox_apply(
    scale: usize,
    target: &NetboxTarget,
    chunk: usize,
) -> anyhow::Result<NetboxFigure> {
    use infradeck_core::model::ApprovalStatus;
    let (_scratch, sims, config, database) = simulated_estate("netbox", scale, 5).await?;
    let source = config
        .sources
        .iter()
        .find(|s| s.kind == infradeck_core::model::SourceKind::Vcenter)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no vcenter source"))?;
    let engine = Engine::new(database.clone(), config.general.clone());
    let outcome = engine
        .run(&source, tokio_util::sync::CancellationToken::new())
        .await;
    anyhow::ensure!(
        outcome.status == infradeck_core::model::RunStatus::Success,
        "benchmark sync failed: {:?}",
        outcome.message
    );
    let mut netbox = config
        .netbox
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the simulator config has no [netbox]"))?;
    match target {
        NetboxTarget::Simulator { latency } => sims.faults(SimKind::Netbox).set_latency(*latency),
        NetboxTarget::Real {
            url,
            token_file,
            reset,
        } => {
            let status = std::process::Command::new("sh")
                .args(["-c", reset])
                .status()?;
            anyhow::ensure!(status.success(), "`{reset}` failed");
            netbox.url = url.clone();
            netbox.token = infradeck_core::config::SecretRef::File(token_file.clone());
        }
    }
    let client = infradeck_core::netbox::NetboxClient::new(
        &netbox,
        infradeck_core::http::RetryPolicy::default(),
    )?;
    let mut store = Store::open(&database, &OpenOptions::default())?;
    let report =
        infradeck_core::netbox::plan(&mut store, &client, 7, "bench", chrono::Utc::now()).await?;
    let batch = report
        .batch_id
        .ok_or_else(|| anyhow::anyhow!("an empty NetBox got no plan"))?;
    let at = infradeck_core::time::now();
    let objects = store.write(|w| {
        w.review_items(
            &batch,
            &[],
            &infradeck_core::store::Review {
                from: ApprovalStatus::Pending,
                to: ApprovalStatus::Approved,
                reviewer: "bench",
                comment: None,
                at: &at,
            },
        )
    })?;
    let options = infradeck_core::netbox::ApplyOptions {
        chunk,
        ..infradeck_core::netbox::ApplyOptions::default()
    };
    let started = Instant::now();
    let applied = infradeck_core::netbox::apply(&mut store, &client, &batch, &options).await?;
    let apply = started.elapsed();
    anyhow::ensure!(
        applied.applied == objects,
        "apply wrote {} of {objects}: {}",
        applied.applied,
        applied
            .lines
            .iter()
            .rev()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let started = Instant::now();
    let rolled =
        infradeck_core::netbox::rollback_in_chunks(&mut store, &client, &batch, chunk).await?;
    let rollback = started.elapsed();
    anyhow::ensure!(
        rolled.applied == objects,
        "rollback undid {} of {objects}",
        rolled.applied
    );
    sims.stop().await;
    Ok(NetboxFigure {
        objects,
        apply,
        rollback,
        requests: applied.requests,
    })
}

/// A plan of the whole estate (every source synced and correlated) against a simulated NetBox
/// that already holds `others` objects other teams made: how long planning takes, the items
/// it proposed, and the objects NetBox held.
pub(crate) async fn netbox_plan_large(
    scale: usize,
    others: usize,
    latency: Duration,
) -> anyhow::Result<(Duration, usize, usize)> {
    let (_scratch, sims, config, database) = simulated_estate("netbox-plan", scale, 6).await?;
    let engine = Engine::new(database.clone(), config.general.clone());
    let sources: Vec<_> = config
        .sources
        .iter()
        .filter(|s| !matches!(s.kind.as_str(), "confluence" | "jira"))
        .cloned()
        .collect();
    for outcome in engine
        .run_all(&sources, &tokio_util::sync::CancellationToken::new())
        .await
    {
        anyhow::ensure!(
            outcome.status == infradeck_core::model::RunStatus::Success,
            "benchmark sync failed: {:?}",
            outcome.message
        );
    }
    let mut store = Store::open(&database, &OpenOptions::default())?;
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "bench")?;
    sims.netbox.fill_with_others(others);
    sims.faults(SimKind::Netbox).set_latency(latency);
    let mut netbox = config
        .netbox
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the simulator config has no [netbox]"))?;
    netbox.site = Some("DC1".into());
    let client = infradeck_core::netbox::NetboxClient::new(
        &netbox,
        infradeck_core::http::RetryPolicy::default(),
    )?;
    let started = Instant::now();
    let report =
        infradeck_core::netbox::plan(&mut store, &client, 7, "bench", chrono::Utc::now()).await?;
    let took = started.elapsed();
    let held: usize = [
        "ipam/ip-addresses",
        "dcim/mac-addresses",
        "virtualization/virtual-machines",
    ]
    .iter()
    .map(|e| sims.netbox.snapshot(e).len())
    .sum();
    sims.stop().await;
    Ok((took, report.creates + report.updates + report.deletes, held))
}

/// Bundles as the vCenter connector makes them, for `count` VMs.
pub(crate) fn vm_bundles(count: usize, generation: u32) -> Vec<Item> {
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
            // As `FetchContext::emit` does on the connector's task.
            bundle.fingerprint = Some(bundle.content_fingerprint());
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
    let now = infradeck_core::time::now();
    for batch in vm_bundles(count, 1).chunks(2000) {
        reconciler.apply(batch.to_vec(), &now)?;
    }
    // The re-sync comes an interval later: the first run's connection is closed and its WAL
    // checkpointed by then.
    drop(reconciler);
    let store = Store::open(&scratch.0.join("inventory.db"), &OpenOptions::default())?;
    let mut again = Reconciler::new(store, "bench-2", "vcenter", "bench", "bench");
    let batches: Vec<Vec<Item>> = vm_bundles(count, 1)
        .chunks(2000)
        .map(<[Item]>::to_vec)
        .collect();
    // A later sync: every unchanged device's `last_seen` moves, as in a real re-sync.
    let later = infradeck_core::time::format(chrono::Utc::now() + chrono::TimeDelta::minutes(5));
    let started = Instant::now();
    for batch in batches {
        again.apply(batch, &later)?;
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
    let now = infradeck_core::time::now();
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

/// Fills a scratch database with about `devices` records of `devices / 2.5` machines, as an
/// estate of VMs seen by vCenter, Foreman and (every other one) PuppetDB looks: each VM's
/// records share its host name and vCenter and Foreman its instance UUID, so correlation groups
/// them; one machine in 10 is a host, one VM in 20 powered off, one in 37 with a memory
/// disagreement. Returns the number of records written.
pub fn machine_inventory(devices: usize, path: &std::path::Path) -> anyhow::Result<usize> {
    let mut store = Store::open(path, &OpenOptions::default())?;
    let now = infradeck_core::time::now();
    let machines = (devices as f64 / 2.5).round() as usize;
    let mut records = Vec::with_capacity(devices);
    for i in 0..machines {
        let name = format!("{}-{:06}", ["web", "db", "app", "cache", "mq"][i % 5], i);
        let uuid = format!("4200{i:08x}-0000-0000-0000-000000000000");
        let memory = 4096 * (1 + i % 4);
        let device_type = if i % 10 == 0 {
            DeviceType::Server
        } else {
            DeviceType::Vm
        };
        let power = if i % 20 == 7 {
            "POWERED_OFF"
        } else {
            "POWERED_ON"
        };
        records.push(DeviceRecord {
            source_system: "vcenter".into(),
            source_identifier: "vc-bench".into(),
            source_id: format!("vm-{i}"),
            name: name.clone(),
            device_type,
            metadata: serde_json::json!({"vcenter": {"power_state": power, "hostname": name,
                "instance_uuid": uuid, "memory_mb": memory, "cpu_count": 2 + i % 8,
                "connection_state": "CONNECTED"}}),
        });
        records.push(DeviceRecord {
            source_system: "foreman".into(),
            source_identifier: "fm-bench".into(),
            source_id: i.to_string(),
            name: format!("{name}.lab.example.net"),
            device_type,
            metadata: serde_json::json!({"foreman": {"hostname": name, "instance_uuid": uuid,
                "memory_mb": if i % 37 == 5 { memory / 2 } else { memory },
                "reporting": "ok"}}),
        });
        if i % 2 == 0 {
            records.push(DeviceRecord {
                source_system: "puppetdb".into(),
                source_identifier: "pdb-bench".into(),
                source_id: format!("{name}.lab.example.net"),
                name: format!("{name}.lab.example.net"),
                device_type: DeviceType::Server,
                metadata: serde_json::json!({"puppetdb": {"hostname": name, "memory_mb": memory}}),
            });
        }
    }
    for chunk in records.chunks(5000) {
        store.write(|w| {
            w.upsert_devices(chunk, &now)?;
            Ok(())
        })?;
    }
    Ok(records.len())
}

/// A month of audit trail over the machine inventory's estate, as syncs would have written it:
/// every record added 30 days ago (correlated a minute later), then `history_rows` rows in
/// time order up to now: three in five are facts churn (which no change digest reads), the
/// rest device updates (a VM powered off or on, moved to another host, memory resized) with
/// the record's whole state, as the reconciler writes them. Returns (records, rows written).
pub fn history_inventory(
    devices: usize,
    history_rows: usize,
    path: &std::path::Path,
) -> anyhow::Result<(usize, usize)> {
    use infradeck_core::store::NewHistory;
    let records = machine_inventory(devices, path)?;
    let mut store = Store::open(path, &OpenOptions::default())?;
    let now = chrono::Utc::now();
    let start = now - chrono::Duration::days(30);
    let at = |t: chrono::DateTime<chrono::Utc>| infradeck_core::time::format(t);
    let all = store.query_devices(&infradeck_core::store::DeviceQuery::default())?;
    let state = |d: &infradeck_core::store::Device, metadata: &serde_json::Value| {
        serde_json::json!({"name": d.name, "device_type": d.device_type, "status": "active",
            "metadata": metadata})
    };
    let mut written = 0;
    for chunk in all.chunks(10_000) {
        store.write(|w| {
            for d in chunk {
                w.record_history(&NewHistory {
                    sync_id: "bench-first",
                    source_system: &d.source_system,
                    source_identifier: &d.source_identifier,
                    operation: "add",
                    device_id: Some(d.id),
                    change_type: "device",
                    old_value: serde_json::Value::Null,
                    new_value: state(d, &d.metadata_json()),
                    performed_by: "bench",
                    performed_at: &at(start),
                    metadata: serde_json::Value::Null,
                })?;
            }
            Ok(())
        })?;
        written += chunk.len();
    }
    infradeck_core::sync::correlate::correlate(
        &mut store,
        &at(start + chrono::Duration::minutes(1)),
        "bench",
    )?;
    let vms: Vec<&infradeck_core::store::Device> = all
        .iter()
        .filter(|d| d.source_system == "vcenter" && d.device_type == DeviceType::Vm)
        .collect();
    anyhow::ensure!(!vms.is_empty(), "the bench estate has no vCenter VMs");
    let mut metadata: Vec<serde_json::Value> = vms.iter().map(|d| d.metadata_json()).collect();
    let remaining = history_rows.saturating_sub(written);
    let span = (now - start).num_seconds().max(1) as f64 - 120.0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let batch = 20_000;
    let mut k = 0;
    while k < remaining {
        let end = (k + batch).min(remaining);
        store.write(|w| {
            for j in k..end {
                let when = at(start
                    + chrono::Duration::seconds(120 + (span * j as f64 / remaining as f64) as i64));
                let i = (next() % vms.len() as u64) as usize;
                let d = vms[i];
                if j % 5 < 3 {
                    w.record_history(&NewHistory {
                        sync_id: "bench-facts",
                        source_system: "puppetdb",
                        source_identifier: "pdb-bench",
                        operation: "update",
                        device_id: Some(d.id),
                        change_type: "facts",
                        old_value: serde_json::json!({"uptime_seconds": j}),
                        new_value: serde_json::json!({"uptime_seconds": j + 1800}),
                        performed_by: "bench",
                        performed_at: &when,
                        metadata: serde_json::Value::Null,
                    })?;
                    continue;
                }
                let old = metadata[i].clone();
                let ns = &mut metadata[i]["vcenter"];
                match next() % 3 {
                    0 => {
                        let on = ns["power_state"] == "POWERED_ON";
                        ns["power_state"] = if on { "POWERED_OFF" } else { "POWERED_ON" }.into();
                    }
                    1 => ns["host"] = format!("esx{:03}.lab.example.net", next() % 200).into(),
                    _ => {
                        let memory = ns["memory_mb"].as_i64().unwrap_or(4096);
                        ns["memory_mb"] = (memory % 65_536 + 4096).into();
                    }
                }
                w.record_history(&NewHistory {
                    sync_id: "bench-update",
                    source_system: "vcenter",
                    source_identifier: "vc-bench",
                    operation: "update",
                    device_id: Some(d.id),
                    change_type: "device",
                    old_value: state(d, &old),
                    new_value: state(d, &metadata[i]),
                    performed_by: "bench",
                    performed_at: &when,
                    metadata: serde_json::Value::Null,
                })?;
            }
            Ok(())
        })?;
        k = end;
    }
    let counts: std::collections::BTreeMap<&str, u64> = store.table_counts()?.into_iter().collect();
    Ok((
        records,
        counts.get("sync_history").copied().unwrap_or_default() as usize,
    ))
}

/// What the history benchmark measured.
pub(crate) struct HistoryFigures {
    pub(crate) changes: Stats,
    pub(crate) changes_count: usize,
    pub(crate) first_frame: Stats,
    pub(crate) at_week: Stats,
    pub(crate) machines_then: usize,
}

/// Times the changes of the last 24 hours, the dashboard's first frame landing on them, and
/// the machines as they were a week ago, over the database `history_inventory` wrote.
pub(crate) fn history_figures(path: &std::path::Path) -> anyhow::Result<HistoryFigures> {
    let store = Store::open(path, &OpenOptions::default())?;
    let rules = infradeck_core::machines::MachineRules::default();
    let now = chrono::Utc::now();
    let day_ago = infradeck_core::time::format(now - chrono::Duration::hours(24));
    let mut changes = Vec::new();
    let mut changes_count = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let digest = infradeck_core::changes::digest(
            &store,
            &day_ago,
            &infradeck_core::time::format(chrono::Utc::now()),
            &rules.health,
        )?;
        changes.push(start.elapsed());
        changes_count = digest.total();
    }
    anyhow::ensure!(changes_count > 0, "no changes in the last 24 hours");
    let env = infradeck_tui::app::Env {
        last_look: Some(day_ago.clone()),
        landing: infradeck_core::config::Landing::Changes,
        semantic_search: false,
        ..bench_env()
    };
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48))?;
    let mut first_frame = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let store = Store::open(path, &OpenOptions::default())?;
        let mut app = infradeck_tui::app::App::new(store, env.clone())?;
        terminal.draw(|f| app.draw(f))?;
        first_frame.push(start.elapsed());
        anyhow::ensure!(
            app.breadcrumb().last().map(String::as_str) == Some("changes"),
            "the dashboard did not land on the changes"
        );
    }
    let week_ago = infradeck_core::time::format(now - chrono::Duration::days(7));
    let mut at_week = Vec::new();
    let mut machines_then = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let past = infradeck_core::app::inventory_at(&store, &week_ago, &rules, &[])?;
        machines_then = past
            .list(&Default::default(), Default::default(), false)
            .len();
        at_week.push(start.elapsed());
    }
    Ok(HistoryFigures {
        changes: Stats::of(&changes),
        changes_count,
        first_frame: Stats::of(&first_frame),
        at_week: Stats::of(&at_week),
        machines_then,
    })
}

/// The dashboard's environment in a benchmark: no sources, a fixed identity.
fn bench_env() -> infradeck_tui::app::Env {
    infradeck_tui::app::Env {
        database_label: "bench".into(),
        identity: "bench@localhost".into(),
        reviewer: "bench".into(),
        read_only: false,
        theme: infradeck_tui::theme::Theme { color: true },
        sources: Vec::new(),
        volatile_lines: Vec::new(),
        stale_after: chrono::Duration::days(7),
        fixed_now: None,
        netbox_configured: false,
        environment: None,
        machine_rules: Default::default(),
        last_look: None,
        landing: infradeck_core::config::Landing::Devices,
        semantic_search: false,
    }
}

/// What the machine benchmark measured.
pub(crate) struct MachineFigures {
    pub(crate) machines: u64,
    pub(crate) first_correlation: Duration,
    pub(crate) identity: Stats,
    pub(crate) page: Stats,
    pub(crate) health_page: Stats,
}

/// The texts of every machine of the correlated inventory at `path`, built as the pipeline
/// builds them after each correlation to see which changed: (machines, time per scan).
pub(crate) fn machine_text_figures(path: &std::path::Path) -> anyhow::Result<(usize, Stats)> {
    let store = Store::open(path, &OpenOptions::default())?;
    let mut samples = Vec::new();
    let mut machines = 0;
    for _ in 0..3 {
        let start = Instant::now();
        machines = store.machine_texts()?.len();
        samples.push(start.elapsed());
    }
    Ok((machines, Stats::of(&samples)))
}

/// Correlates the machine inventory at `path` once (links and machines from nothing), then
/// times the machine recomputation alone over the correlated estate (what every correlation
/// after a sync does) and filtered pages of machines.
pub(crate) fn machine_figures(path: &std::path::Path) -> anyhow::Result<MachineFigures> {
    use infradeck_core::store::{MachineQuery, MachineSort};
    let mut store = Store::open(path, &OpenOptions::default())?;
    let rules = infradeck_core::machines::MachineRules::default();
    let start = Instant::now();
    let report = infradeck_core::sync::correlate::correlate(
        &mut store,
        &infradeck_core::time::now(),
        "bench",
    )?;
    let first_correlation = start.elapsed();
    let mut identity = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        infradeck_core::machines::refresh(
            &mut store,
            &rules,
            &infradeck_core::time::now(),
            "bench",
        )?;
        identity.push(start.elapsed());
    }
    let mut page = Vec::new();
    let mut health_page = Vec::new();
    for round in 0..22 {
        for (filter, sort, samples) in [
            ("app", MachineSort::Name, &mut page),
            ("health:warn type:vm", MachineSort::Health, &mut health_page),
        ] {
            let start = Instant::now();
            let found = store.machine_page(&MachineQuery {
                filter: infradeck_core::machines::parse_filter(filter)?,
                sort,
                descending: round % 2 == 1,
                limit: 50,
                ..MachineQuery::default()
            })?;
            anyhow::ensure!(found.total > 0, "the filter `{filter}` matched no machine");
            // The first round builds the index (as a dashboard's warm-up does); it is not a page.
            if round >= 2 {
                samples.push(start.elapsed());
            }
        }
    }
    Ok(MachineFigures {
        machines: report.machines.machines as u64,
        first_correlation,
        identity: Stats::of(&identity),
        page: Stats::of(&page),
        health_page: Stats::of(&health_page),
    })
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
    let env = bench_env();
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
        let mut app = infradeck_tui::app::App::new(store, env.clone())?;
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

/// The spread of repeated measurements.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Stats {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub n: usize,
}

impl Stats {
    pub(crate) fn of(samples: &[Duration]) -> Stats {
        let (median, min, max) = median(samples);
        Stats {
            median_ms: median.as_secs_f64() * 1e3,
            min_ms: min.as_secs_f64() * 1e3,
            max_ms: max.as_secs_f64() * 1e3,
            n: samples.len(),
        }
    }
}

/// One line of the benchmark table.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) measurement: String,
    /// Devices (simulated VMs) in the estate, or lines for diffs, documents for search.
    pub(crate) scale: usize,
    pub(crate) stats: Stats,
    /// What the figure is compared with (a floor), in ms, when there is one.
    pub(crate) floor_ms: Option<f64>,
    /// The target named in the issue that asked for it.
    pub(crate) target: &'static str,
}

/// A KB corpus of `docs` pages, Zipf-distributed words over a 20,000-word vocabulary (the
/// technical terms queried sit at ranks 50–400) plus a host name and an address each, with one
/// `dims`-dimension vector per page under the model `bench`. Returns the query vector.
pub fn knowledge_corpus(store: &mut Store, docs: usize, dims: usize) -> anyhow::Result<Vec<f32>> {
    const TERMS: &[&str] = &[
        "restart",
        "service",
        "disk",
        "full",
        "cluster",
        "maintenance",
        "upgrade",
        "firmware",
        "network",
        "switch",
        "interface",
        "flapping",
        "certificate",
        "expired",
        "backup",
        "restore",
        "database",
        "replica",
        "latency",
        "storage",
        "lun",
        "expand",
        "volume",
        "snapshot",
        "patch",
        "kernel",
        "reboot",
        "memory",
        "leak",
        "alert",
    ];
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let vocabulary = 20_000usize;
    let harmonic: f64 = (1..=vocabulary).map(|r| 1.0 / r as f64).sum();
    let mut cdf = Vec::with_capacity(vocabulary);
    let mut acc = 0.0;
    for r in 1..=vocabulary {
        acc += 1.0 / r as f64 / harmonic;
        cdf.push(acc);
    }
    let word = |next: &mut dyn FnMut() -> u64| {
        let u = (next() % 1_000_000) as f64 / 1_000_000.0;
        let rank = cdf.partition_point(|c| *c < u);
        match rank {
            50..=79 => TERMS[rank - 50].to_string(),
            r => format!("w{r}"),
        }
    };
    for batch in (0..docs).collect::<Vec<_>>().chunks(5000) {
        let articles: Vec<infradeck_core::model::KbArticleRecord> = batch
            .iter()
            .map(|&i| {
                let body: Vec<String> = (0..120).map(|_| word(&mut next)).collect();
                infradeck_core::model::KbArticleRecord {
                    source_id: format!("p{i}"),
                    space_key: Some("OPS".into()),
                    title: format!("Runbook {i}: {} on web-{i:06}", TERMS[i % TERMS.len()]),
                    body_text: Some(format!(
                        "{} host web-{i:06} at 10.{}.{}.{}",
                        body.join(" "),
                        i >> 16,
                        (i >> 8) & 255,
                        i & 255
                    )),
                    ..infradeck_core::model::KbArticleRecord::default()
                }
            })
            .collect();
        store.write(|w| {
            for a in &articles {
                w.upsert_kb_article(a, "2026-11-01 00:00:00")?;
            }
            Ok(())
        })?;
    }
    let vector = |next: &mut dyn FnMut() -> u64| -> Vec<f32> {
        (0..dims)
            .map(|_| (next() % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    };
    let ids: Vec<i64> = store
        .knowledge_texts()?
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    for batch in ids.chunks(5000) {
        let rows: Vec<(i64, Vec<Chunk>)> = batch
            .iter()
            .map(|&id| (id, vec![(String::new(), vector(&mut next))]))
            .collect();
        store.write(|w| {
            for (id, chunks) in &rows {
                w.replace_embeddings("kb_article", *id, "bench", chunks, "2026-11-01 00:00:00")?;
            }
            Ok(())
        })?;
    }
    Ok(vector(&mut next))
}

/// One embedded chunk: its text and vector.
type Chunk = (String, Vec<f32>);

/// The queries both search measurements run.
pub(crate) const SEARCH_QUERIES: &[&str] = &[
    "disk full",
    "certificate expired",
    "web-000042",
    "10.0.2.3",
    "firmware upgrade switch",
    "latency",
];

/// Full-text and hybrid query times over a corpus made by [`knowledge_corpus`] (after two
/// warm-up rounds).
pub fn search_figures(
    store: &Store,
    query_vector: &[f32],
    rounds: usize,
) -> anyhow::Result<(Stats, Stats)> {
    use infradeck_core::store::HitKind;
    let kinds = [HitKind::KbArticle];
    let (mut text, mut hybrid) = (Vec::new(), Vec::new());
    store.vector_search("bench", query_vector, &[], 10)?; // loads the vector matrix once
    for round in 0..rounds + 2 {
        for q in SEARCH_QUERIES {
            let start = Instant::now();
            store.search(q, &kinds, 20)?;
            let fts = start.elapsed();
            let start = Instant::now();
            let hits = store.search(q, &kinds, 50)?;
            infradeck_core::search::fuse(store, "bench", query_vector, hits, &kinds, 20)?;
            if round >= 2 {
                text.push(fts);
                hybrid.push(start.elapsed());
            }
        }
    }
    Ok((Stats::of(&text), Stats::of(&hybrid)))
}

/// The local model's figures: each [`SEARCH_QUERIES`] query embedded (after a warm-up), the
/// hybrid query over `store`'s corpus including that embedding, and the time per 100-word chunk
/// of the corpus with 1 and with 2 threads. `None` when the model is not installed.
pub(crate) struct ModelFigures {
    pub(crate) query: Stats,
    pub(crate) hybrid: Stats,
    pub(crate) chunk_1_thread: Stats,
    pub(crate) chunk_2_threads: Stats,
    /// One machine's text (as `Store::machine_texts` writes it), in batches as the pipeline
    /// sends them, on the default pool.
    pub(crate) machine_text: Stats,
}

pub(crate) fn model_figures(
    model_dir: &std::path::Path,
    store: &Store,
    rounds: usize,
) -> anyhow::Result<Option<ModelFigures>> {
    use infradeck_core::store::HitKind;
    if !infradeck_core::search::local_model_present(model_dir) {
        return Ok(None);
    }
    let model = infradeck_minilm::Model::load(model_dir)?;
    let kinds = [HitKind::KbArticle];
    model.embed(&["warm up"])?;
    let (mut query, mut hybrid) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for q in SEARCH_QUERIES {
            let start = Instant::now();
            model.embed(&[q])?;
            query.push(start.elapsed());
            // As the service does it: the full-text side while the query is embedded, then
            // the fusion. The corpus's vectors are random (model `bench`): the same work.
            let start = Instant::now();
            let (vector, hits) = std::thread::scope(|scope| {
                let embedding = scope.spawn(|| model.embed(&[q]));
                let hits = infradeck_core::search::text_candidates(store, q, &kinds, 20);
                (embedding.join(), hits)
            });
            let vector = vector
                .map_err(|_| anyhow::anyhow!("the embedding thread panicked"))??
                .pop()
                .unwrap_or_default();
            infradeck_core::search::fuse(store, "bench", &vector, hits?, &kinds, 20)?;
            hybrid.push(start.elapsed());
        }
    }
    // English prose of about 100 words, 32 slightly different copies: the corpus's made-up
    // words split into many word pieces and would measure 256-token chunks instead.
    const PARAGRAPH: &str = "When the datastore on the production cluster fills up, virtual \
        machines pause and the database replicas fall behind. First check which volumes grew \
        overnight and whether a snapshot was left behind after the last backup. Remove old \
        snapshots, then expand the LUN on the array and rescan storage on every host of the \
        cluster. If the load balancer reports failing health checks, restart the service on \
        one node at a time and watch the error rate. Open a ticket for the storage team with \
        the array name, the pool and the volume, and link this runbook.";
    let chunks: Vec<String> = (0..32).map(|i| format!("{i} {PARAGRAPH}")).collect();
    let texts: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let per_chunk = |threads: usize| -> anyhow::Result<Stats> {
        let mut samples = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            model.embed_with_threads(&texts, threads)?;
            samples.push(start.elapsed() / texts.len().max(1) as u32);
        }
        Ok(Stats::of(&samples))
    };
    // Machines' texts as the demo estate's look, abbreviations spelled out, 64 at a time.
    let machines: Vec<String> = (0..64)
        .map(|i| {
            infradeck_core::search::spell_out(&format!(
                "{role}-{i:04}, virtual machine, os RedHat 8.9, role DC{dc}/{role}, environment \
                 production, cluster dc{dc}-prod-01, datacenter dc{dc}, on esx{host:03}.dc{dc}.example.net",
                role = ["db", "web", "lb", "app"][i % 4],
                dc = 1 + i % 2,
                host = i % 20
            ))
        })
        .collect();
    let machine_texts: Vec<&str> = machines.iter().map(String::as_str).collect();
    let mut per_machine = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        model.embed(&machine_texts)?;
        per_machine.push(start.elapsed() / machine_texts.len() as u32);
    }
    Ok(Some(ModelFigures {
        query: Stats::of(&query),
        hybrid: Stats::of(&hybrid),
        chunk_1_thread: per_chunk(1)?,
        chunk_2_threads: per_chunk(2)?,
        machine_text: Stats::of(&per_machine),
    }))
}

/// A config of `lines` lines and a next version with a change every ~100 lines (descriptions,
/// shut ports, a new VLAN), like a busy switch's week.
pub(crate) fn config_pair(lines: usize) -> (String, String) {
    let mut old = String::with_capacity(lines * 32);
    let mut new = String::with_capacity(lines * 32);
    let mut i = 0;
    while i < lines {
        let port = i / 5;
        let block = [
            format!("interface Ethernet1/{port}"),
            format!(" description server-{port:05} uplink"),
            format!(" switchport access vlan {}", 100 + port % 50),
            " no shutdown".to_string(),
            "!".to_string(),
        ];
        for (k, line) in block.iter().enumerate() {
            old.push_str(line);
            old.push('\n');
            if port % 20 == 7 && k == 1 {
                new.push_str(&format!(
                    " description server-{port:05} moved to rack C{:02}\n",
                    port % 40
                ));
            } else if port % 20 == 13 && k == 3 {
                new.push_str(" shutdown\n");
            } else {
                new.push_str(line);
                new.push('\n');
            }
        }
        i += block.len();
    }
    (old, new)
}

/// Diff times for a config pair of `lines` lines written to files: ours (read both files, the
/// line diff, the changed words of a screenful of rows from the first hunk, as the dashboard
/// draws it) and GNU `diff -u` on the same files as a whole process, round by round in turn so
/// both see the same machine. GNU's is `None` when `diff` is not installed.
pub(crate) fn diff_figure(lines: usize, rounds: usize) -> anyhow::Result<(Stats, Option<Stats>)> {
    const SCREEN_ROWS: usize = 60;
    let (old, new) = config_pair(lines);
    let dir = Scratch::new("diff")?;
    let (old_path, new_path) = (dir.0.join("old.conf"), dir.0.join("new.conf"));
    std::fs::write(&old_path, old)?;
    std::fs::write(&new_path, new)?;
    let gnu_present = std::process::Command::new("diff")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let (mut ours, mut gnu) = (Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        let start = Instant::now();
        let model = infradeck_core::diff::LineDiff::compute(
            std::fs::read_to_string(&old_path)?,
            std::fs::read_to_string(&new_path)?,
            &[],
            3,
        );
        let first = model.hunks().first().copied().unwrap_or(0);
        let last = (first + SCREEN_ROWS).min(model.rows().len());
        let words: usize = (first..last).map(|i| model.words(i).len()).sum();
        let elapsed = start.elapsed();
        std::hint::black_box((model.rows().len(), words));
        if gnu_present {
            let start = Instant::now();
            let status = std::process::Command::new("diff")
                .arg("-u")
                .args([&old_path, &new_path])
                .stdout(std::process::Stdio::null())
                .status()?;
            // diff exits 1 when the files differ, as these do; 2 is trouble.
            anyhow::ensure!(status.code() == Some(1), "GNU diff failed: {status}");
            if round > 0 {
                gnu.push(start.elapsed());
            }
        }
        if round > 0 {
            ours.push(elapsed);
        }
    }
    Ok((Stats::of(&ours), gnu_present.then(|| Stats::of(&gnu))))
}

/// A full sync of every simulated source at `scale` VMs with `latency` per request, then a
/// re-sync with nothing changed. Returns (first, re-sync, floor of the slowest source, database).
pub(crate) async fn full_sync(
    scale: usize,
    latency: Duration,
    dir: &std::path::Path,
) -> anyhow::Result<(Duration, Duration, Duration, PathBuf)> {
    let sims = Simulators::start(&SimOptions {
        scale,
        seed: 7,
        ..SimOptions::default()
    })
    .await?;
    for kind in SimKind::ALL {
        sims.faults(kind).set_latency(latency);
    }
    let config_path = dir.join("config.toml");
    let database = dir.join("inventory.db");
    sims.write_config(&config_path, Some(&database))?;
    let config = Config::load(&config_path, true)?;
    let engine = Engine::new(config.database_path(None), config.general.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let first = engine.run_all(&config.sources, &cancel).await;
    let first_time = started.elapsed();
    if let Some(failed) = first
        .iter()
        .find(|o| o.status != infradeck_core::model::RunStatus::Success)
    {
        anyhow::bail!(
            "benchmark sync of {} failed: {:?}",
            failed.source,
            failed.message
        );
    }
    let floor = config
        .sources
        .iter()
        .filter_map(|s| {
            let outcome = first
                .iter()
                .find(|o| o.source == format!("{}/{}", s.kind.as_str(), s.id))?;
            Some(latency.mul_f64(outcome.requests as f64 / s.max_in_flight.max(1) as f64))
        })
        .max()
        .unwrap_or_default();
    let started = Instant::now();
    let again = engine.run_all(&config.sources, &cancel).await;
    let resync_time = started.elapsed();
    if let Some(changed) = again
        .iter()
        .find(|o| o.counts.added + o.counts.updated + o.counts.removed > 0)
    {
        anyhow::bail!(
            "the re-sync of {} changed something: {:?}",
            changed.source,
            changed.counts
        );
    }
    sims.stop().await;
    Ok((first_time, resync_time, floor, database))
}

/// Device queries over the database at `path`: a filtered page by name with its count (the
/// dashboard's default), the same filtered page by last seen, and filter-as-you-type.
pub(crate) fn query_figures(path: &std::path::Path) -> anyhow::Result<(Stats, Stats, Stats)> {
    use infradeck_core::store::{DeviceQuery, DeviceSort};
    let store = Store::open(path, &OpenOptions::default())?;
    let mut by_name = Vec::new();
    let mut by_other = Vec::new();
    for round in 0..22 {
        for (sort, samples) in [
            (DeviceSort::Name, &mut by_name),
            (DeviceSort::LastSeen, &mut by_other),
        ] {
            let start = Instant::now();
            store.device_page(&DeviceQuery {
                name_contains: Some("app".into()),
                sort,
                descending: round % 2 == 1,
                limit: 50,
                ..DeviceQuery::default()
            })?;
            if round >= 2 {
                samples.push(start.elapsed());
            }
        }
    }
    store.warm_name_index()?;
    let mut typing = Vec::new();
    for round in 0..4 {
        for prefix in ["w", "we", "web", "web-", "web-0", "web-00", "web-001"] {
            let start = Instant::now();
            store.device_page(&DeviceQuery {
                name_contains: Some(prefix.into()),
                limit: 50,
                ..DeviceQuery::default()
            })?;
            if round > 0 {
                typing.push(start.elapsed());
            }
        }
    }
    Ok((
        Stats::of(&by_name),
        Stats::of(&by_other),
        Stats::of(&typing),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_config_pairs_are_what_they_say() {
        let stats = Stats::of(&[
            Duration::from_millis(3),
            Duration::from_millis(1),
            Duration::from_millis(2),
        ]);
        assert_eq!(
            (stats.median_ms, stats.min_ms, stats.max_ms, stats.n),
            (2.0, 1.0, 3.0, 3)
        );
        let (old, new) = config_pair(1_000);
        assert_eq!(old.lines().count(), 1_000);
        let model = infradeck_core::diff::LineDiff::compute(old, new, &[], 3);
        assert!(
            model.added > 5 && model.removed > 5,
            "a config pair differs in places: +{} -{}",
            model.added,
            model.removed
        );
        assert!(model.added < 50);
    }
}
