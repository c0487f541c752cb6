//! The sync engine against the simulators: real HTTP on loopback, a real SQLite file. Exact counts
//! after a first sync, nothing after an immediate re-sync, exactly the documented changes after
//! `advance()`, correlation, and every fault the issue lists.

use infradeck_core::app::RunOutcome;
use infradeck_core::model::{DeviceStatus, DeviceType, RelationshipType, RunStatus};
use infradeck_core::store::{DeviceQuery, OpenOptions, Store};
use infradeck_sim::SimKind;
use infradeck_sim::http::{FaultAction, FaultRule};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::common;
use common::Rig;

async fn start_rig(scale: usize) -> Rig {
    common::start_rig(scale, 11).await
}

fn by_source(outcomes: &[RunOutcome]) -> BTreeMap<String, &RunOutcome> {
    outcomes
        .iter()
        .map(|o| (o.source.split('/').next().unwrap().to_string(), o))
        .collect()
}

fn assert_success(outcomes: &[RunOutcome]) {
    for o in outcomes {
        assert_eq!(
            o.status,
            RunStatus::Success,
            "{}: {:?}",
            o.source,
            o.message
        );
    }
}

const DEVICE_SOURCES: [&str; 4] = ["vcenter", "foreman", "puppetdb", "oxidized"];

#[tokio::test(flavor = "multi_thread")]
async fn first_sync_counts_resync_nothing_then_exactly_what_advance_did() {
    let rig = start_rig(400).await;
    let estate = rig.sims.estate.read().unwrap().clone();
    let outcomes = rig.run(&DEVICE_SOURCES).await;
    assert_success(&outcomes);
    let first = by_source(&outcomes);

    let machines = infradeck_sim::machines::machines(&estate);
    let vcenter_devices = estate.clusters.len() + estate.hosts.len() + estate.vms.len();
    assert_eq!(first["vcenter"].counts.added as usize, vcenter_devices);
    assert_eq!(
        first["foreman"].counts.added as usize,
        machines.iter().filter(|m| m.foreman_id.is_some()).count()
    );
    assert_eq!(
        first["puppetdb"].counts.added as usize,
        machines.iter().filter(|m| m.in_puppet).count()
    );
    assert_eq!(
        first["oxidized"].counts.added as usize,
        estate.net_devices.len()
    );
    let versions: usize = estate.net_devices.iter().map(|d| d.versions.len()).sum();
    assert_eq!(
        first["oxidized"].counts.configs_stored as usize, versions,
        "every version, history included"
    );
    let clustered_hosts = estate.hosts.iter().filter(|h| !h.standalone).count();
    assert_eq!(
        clustered_hosts,
        estate.hosts.len() - 1,
        "one standalone host"
    );
    assert_eq!(
        first["vcenter"].counts.links_added as usize,
        clustered_hosts + estate.vms.len(),
        "cluster→host (not for the standalone host) and host→VM"
    );

    let counts: BTreeMap<&str, u64> = rig.store().table_counts().unwrap().into_iter().collect();
    assert_eq!(counts["vms"] as usize, estate.vms.len());
    assert_eq!(counts["storage_volumes"] as usize, estate.datastores.len());
    assert_eq!(counts["device_configs"] as usize, versions);
    assert_eq!(counts["sync_runs"], 4);
    assert_eq!(counts["sync_metadata"], 4);
    let store = rig.store();
    let never = estate
        .net_devices
        .iter()
        .find(|d| d.last_status == "never")
        .unwrap();
    let node = store.devices_named(&never.name).unwrap().remove(0);
    assert_eq!(
        node.metadata_json()["oxidized"]["last_status"],
        "never",
        "kept and shown as such"
    );
    assert!(
        node.metadata_json()["oxidized"].get("vars").is_none(),
        "Oxidized vars are never stored"
    );
    let failing = estate
        .net_devices
        .iter()
        .find(|d| d.last_status == "no_connection")
        .unwrap();
    let failing = store.devices_named(&failing.name).unwrap().remove(0);
    assert_eq!(failing.status, DeviceStatus::Active);
    assert!(
        !store.interfaces(failing.id).unwrap().is_empty(),
        "interfaces parsed from its last config"
    );

    // An immediate re-sync changes nothing and writes no history.
    let history_before = counts["sync_history"];
    let again = rig.run(&DEVICE_SOURCES).await;
    assert_success(&again);
    for o in &again {
        let c = o.counts;
        assert_eq!(
            (
                c.added,
                c.updated,
                c.removed,
                c.history_rows,
                c.configs_stored
            ),
            (0, 0, 0, 0, 0),
            "{}: {c:?}",
            o.source
        );
    }
    let counts: BTreeMap<&str, u64> = rig.store().table_counts().unwrap().into_iter().collect();
    assert_eq!(counts["sync_history"], history_before);

    // One step of change: exactly the documented adds, updates and removals.
    let report = rig.sims.advance();
    let after = rig.run(&DEVICE_SOURCES).await;
    assert_success(&after);
    let after = by_source(&after);
    let k = report.created_vms.len() as i64;
    let vc = after["vcenter"].counts;
    assert_eq!(vc.added, k, "created VMs");
    assert_eq!(
        vc.removed,
        report.deleted_vms.len() as i64,
        "deleted VMs become inactive"
    );
    assert_eq!(
        vc.updated,
        (report.powered_off_vms.len() + report.migrated_vms.len() + 1) as i64,
        "powered off + migrated + the offline host: {vc:?}"
    );
    assert_eq!(after["foreman"].counts.added, k);
    assert_eq!(after["foreman"].counts.updated, 0);
    assert_eq!(after["puppetdb"].counts.added, k);
    assert_eq!(after["puppetdb"].counts.updated, 0);
    let ox = after["oxidized"].counts;
    assert_eq!(
        (ox.added, ox.updated, ox.configs_stored),
        (
            0,
            report.edited_configs.len() as i64,
            report.edited_configs.len() as i64
        )
    );

    let store = rig.store();
    for moid in &report.deleted_vms {
        let device = store
            .device_by_source_key("vcenter", "vcenter-sim", moid)
            .unwrap()
            .unwrap();
        assert_eq!(device.status, DeviceStatus::Inactive);
    }
    let (moved, _, to) = &report.migrated_vms[0];
    let vm = store
        .device_by_source_key("vcenter", "vcenter-sim", moved)
        .unwrap()
        .unwrap();
    let parents: Vec<String> = store
        .related(vm.id)
        .unwrap()
        .into_iter()
        .filter(|r| r.is_parent && r.relationship_type == RelationshipType::Hosts)
        .map(|r| r.device.source_id)
        .collect();
    assert_eq!(
        parents,
        vec![to.clone()],
        "the migrated VM hangs under its new host only"
    );
    for name in &report.edited_configs {
        let device = store.devices_named(name).unwrap().remove(0);
        let stored = store.config_versions(device.id).unwrap();
        let expected = estate
            .net_devices
            .iter()
            .find(|d| &d.name == name)
            .unwrap()
            .versions
            .len()
            + 1;
        assert_eq!(stored.len(), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn correlation_links_the_same_machines_and_none_of_the_decoys() {
    let rig = start_rig(300).await;
    assert_success(&rig.run(&["vcenter", "foreman", "puppetdb"]).await);
    let mut store = rig.store();
    let report = infradeck_core::sync::correlate::correlate(
        &mut store,
        &infradeck_core::time::now(),
        "test",
    )
    .unwrap();
    assert!(report.linked > 0);
    let estate = rig.sims.estate.read().unwrap().clone();
    let same_as = |id: i64| -> HashSet<(String, String)> {
        store
            .related(id)
            .unwrap()
            .into_iter()
            .filter(|r| r.relationship_type == RelationshipType::SameAs)
            .map(|r| (r.device.source_system, r.device.source_id))
            .collect()
    };
    for vm in estate
        .vms
        .iter()
        .filter(|v| v.foreman_id.is_some() && v.in_puppet)
    {
        let device = store
            .device_by_source_key("vcenter", "vcenter-sim", &vm.moid)
            .unwrap()
            .unwrap();
        let links = same_as(device.id);
        assert!(
            links.contains(&("foreman".into(), vm.foreman_id.unwrap().to_string())),
            "{} not linked to Foreman: {links:?}",
            vm.hostname
        );
        assert!(
            links.contains(&("puppetdb".into(), vm.fqdn())),
            "{} not linked to PuppetDB",
            vm.hostname
        );
    }
    for decoy in estate.orphans.iter().filter(|o| o.is_decoy) {
        let device = store
            .device_by_source_key("foreman", "foreman-sim", &decoy.foreman_id.to_string())
            .unwrap()
            .unwrap();
        assert!(
            same_as(device.id).is_empty(),
            "decoy {} was linked",
            decoy.fqdn
        );
    }
    for bm in &estate.bare_metal {
        let device = store
            .device_by_source_key("foreman", "foreman-sim", &bm.foreman_id.to_string())
            .unwrap()
            .unwrap();
        assert_eq!(
            same_as(device.id).len(),
            1,
            "bare metal links to its PuppetDB node only"
        );
    }
    let again = infradeck_core::sync::correlate::correlate(
        &mut store,
        &infradeck_core::time::now(),
        "test",
    )
    .unwrap();
    assert_eq!((again.linked, again.unlinked), (0, 0), "stable");
    let audited = store
        .history(None, 100_000)
        .unwrap()
        .iter()
        .filter(|h| h.source_system == "correlation")
        .count();
    assert_eq!(audited, report.linked);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vcenter_older_than_7_0_u2_is_refused_with_the_reason() {
    let rig = start_rig(20).await;
    // vCenter before 7.0 U2 (and VMware's vcsim 0.24) answers 404 for /api/session.
    rig.sims
        .faults(SimKind::Vcenter)
        .push(FaultRule::new(FaultAction::Status(404)).on_path("/api/session"));
    let outcomes = rig.run(&["vcenter"]).await;
    assert_eq!(outcomes[0].status, RunStatus::Failed);
    let message = outcomes[0].message.clone().unwrap();
    assert!(
        message.contains("older than vSphere 7.0 U2") && message.contains("/api/session"),
        "{message}"
    );
    assert_eq!(rig.count("vcenter", None), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_on_guest_data_is_an_answer_not_retried() {
    let rig = start_rig(20).await;
    let first = rig.run(&["vcenter"]).await;
    assert_success(&first);
    // Tools not ready on every VM: vCenter answers 503 for guest networking.
    rig.sims
        .faults(SimKind::Vcenter)
        .push(FaultRule::new(FaultAction::Status(503)).on_path("/guest/networking/interfaces"));
    let second = rig.run(&["vcenter"]).await;
    assert_success(&second);
    assert_eq!(
        second[0].requests, first[0].requests,
        "one request per VM for guest data, as without the 503s"
    );
    assert_eq!(
        second[0].counts.updated, 0,
        "unknown guest data changes nothing stored (no addresses removed)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_half_way_fails_that_source_only_and_sweeps_nothing() {
    let rig = start_rig(200).await;
    assert_success(&rig.run(&DEVICE_SOURCES).await);
    let active_before = rig.count("vcenter", Some(DeviceStatus::Active));
    // One VM's detail answers 500: its neighbours land, the run is partial and names it.
    rig.sims.faults(SimKind::Vcenter).push(
        FaultRule::new(FaultAction::Status(500))
            .after(60)
            .times(1)
            .on_path("/api/vcenter/vm/"),
    );
    let outcomes = rig.run(&DEVICE_SOURCES).await;
    let by = by_source(&outcomes);
    assert_eq!(by["vcenter"].status, RunStatus::Partial);
    let message = by["vcenter"].message.clone().unwrap();
    assert!(
        message.contains("1 VMs could not be read")
            && message.contains("HTTP 500")
            && message.contains("/api/vcenter/vm/vm-"),
        "{message}"
    );
    assert_eq!(
        rig.count("vcenter", Some(DeviceStatus::Active)),
        active_before,
        "the VM whose detail failed is not swept"
    );
    // A failure of the listing itself still fails the run.
    rig.sims.faults(SimKind::Vcenter).push(
        FaultRule::new(FaultAction::Status(500))
            .times(1)
            .on_path("/api/vcenter/cluster"),
    );
    let outcomes = rig.run(&DEVICE_SOURCES).await;
    let by = by_source(&outcomes);
    assert_eq!(by["vcenter"].status, RunStatus::Failed);
    let message = by["vcenter"].message.clone().unwrap();
    assert!(message.contains("HTTP 500"), "{message}");
    for other in ["foreman", "puppetdb", "oxidized"] {
        assert_eq!(by[other].status, RunStatus::Success);
    }
    assert_eq!(
        rig.count("vcenter", Some(DeviceStatus::Active)),
        active_before,
        "a failed run marks nothing inactive"
    );
    let status = rig
        .store()
        .source_statuses()
        .unwrap()
        .into_iter()
        .find(|s| s.source_system == "vcenter")
        .unwrap();
    assert_eq!(status.last_sync_status.as_deref(), Some("failed"));
    assert!(status.error_message.unwrap().contains("500"));
    assert_success(&rig.run(&["vcenter"]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_out_and_truncated_json_is_named() {
    let rig = start_rig(50).await;
    rig.sims
        .faults(SimKind::Puppetdb)
        .push(FaultRule::new(FaultAction::RateLimit("2".into())).times(1));
    let mut events = rig.engine.subscribe();
    let started = Instant::now();
    let outcome = rig
        .engine
        .run(&rig.source("puppetdb"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    // The wait was shown while it lasted, as the run's phase.
    let mut phases = Vec::new();
    while let Ok(event) = events.try_recv() {
        phases.push(event.phase);
    }
    assert!(
        phases
            .iter()
            .any(|p| p == "waiting 2 s: rate limited by puppetdb/puppetdb-sim"),
        "{phases:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "Retry-After: 2 was honoured ({:?})",
        started.elapsed()
    );

    // A source that asks for longer than max_retry_wait (here 5 s) is not waited out: the run
    // fails at once and says why, instead of sitting silent for minutes.
    rig.sims
        .faults(SimKind::Puppetdb)
        .push(FaultRule::new(FaultAction::RateLimit("3600".into())).times(1));
    let outcome = rig
        .engine
        .run(&rig.source("puppetdb"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let message = outcome.message.unwrap();
    assert!(
        message.contains("3600 s") && message.contains("max_retry_wait"),
        "{message}"
    );
    assert_eq!(outcome.requests, 1, "asked once, not waited out");

    rig.sims
        .faults(SimKind::Puppetdb)
        .push(FaultRule::new(FaultAction::Truncate).times(1));
    let outcome = rig
        .engine
        .run(&rig.source("puppetdb"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let message = outcome.message.unwrap();
    assert!(
        message.starts_with("puppetdb/puppetdb-sim")
            && message.contains("/pdb/query/v4/inventory")
            && message.contains("not valid JSON"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_is_renewed_and_a_wrong_password_fails_fast() {
    let rig = start_rig(120).await;
    rig.sims
        .faults(SimKind::Vcenter)
        .set_session_expiry(Some(40));
    let outcome = rig
        .engine
        .run(&rig.source("vcenter"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    rig.sims.faults(SimKind::Vcenter).set_session_expiry(None);

    rig.sims.faults(SimKind::Vcenter).set_reject_auth(true);
    let before = rig.sims.faults(SimKind::Vcenter).requests();
    let outcome = rig
        .engine
        .run(&rig.source("vcenter"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(outcome.message.unwrap().contains("authentication failed"));
    assert_eq!(
        rig.sims.faults(SimKind::Vcenter).requests() - before,
        1,
        "one login attempt, no retry storm"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_guard_refuses_a_mass_removal() {
    let rig = start_rig(200).await;
    assert_success(&rig.run(&["vcenter"]).await);
    {
        let mut estate = rig.sims.estate.write().unwrap();
        let n = estate.vms.len();
        for vm in estate.vms.iter_mut().take(n * 4 / 10) {
            vm.deleted = true;
        }
    }
    let outcome = rig
        .engine
        .run(&rig.source("vcenter"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Partial);
    let message = outcome.message.unwrap();
    assert!(
        message.contains("sweep refused") && message.contains("25%"),
        "{message}"
    );
    assert!(outcome.sweep_refused);
    assert_eq!(rig.count("vcenter", Some(DeviceStatus::Inactive)), 0);

    // The command says so with its own exit code and names the way to accept a real removal.
    let config = rig.dir.path().join("config.toml");
    let home = tempfile::tempdir().unwrap();
    let sync = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_infradeck"))
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path())
            .args(["--config", config.to_str().unwrap(), "sync", "vcenter-sim"])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = sync(&[]);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "documented: 3 = sweep refused"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("infradeck sync vcenter-sim --allow-mass-removal"),
        "{stderr}"
    );
    assert_eq!(rig.count("vcenter", Some(DeviceStatus::Inactive)), 0);
    let accepted = sync(&["--allow-mass-removal"]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let deleted = rig
        .sims
        .estate
        .read()
        .unwrap()
        .vms
        .iter()
        .filter(|v| v.deleted)
        .count();
    assert_eq!(
        rig.count("vcenter", Some(DeviceStatus::Inactive)) as usize,
        deleted
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_of_one_source_names_the_run_holding_the_lock() {
    let rig = start_rig(30).await;
    let mut store = rig.store();
    let now = infradeck_core::time::now();
    store
        .write(|w| {
            w.begin_run(
                "held-by-someone",
                "vcenter",
                "vcenter-sim",
                &infradeck_core::store::RunOwner {
                    pid: 4242,
                    host: "bastion-2",
                },
                &now,
                "2000-01-01 00:00:00",
            )
        })
        .unwrap();
    let outcome = rig
        .engine
        .run(&rig.source("vcenter"), CancellationToken::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let message = outcome.message.unwrap();
    assert!(
        message.contains("held-by-someone")
            && message.contains("4242")
            && message.contains("bastion-2"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_is_published_and_runs_can_be_cancelled_from_another_process() {
    let rig = start_rig(300).await;
    rig.sims
        .faults(SimKind::Vcenter)
        .set_latency(Duration::from_millis(5));
    let mut events = rig.engine.subscribe();
    let engine = rig.engine.clone();
    let source = rig.source("vcenter");
    let run = tokio::spawn(async move { engine.run(&source, CancellationToken::new()).await });
    // Wait (with a deadline) until the run is fetching VM details, then cancel it through the
    // database as another process would.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sync_id = loop {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .expect("progress before the deadline")
            .unwrap();
        if event.phase == "fetch vms" && event.done > 0 && event.total.is_some() {
            break event.sync_id;
        }
    };
    let live = rig.store().run(&sync_id).unwrap().unwrap();
    assert_eq!(live.status, RunStatus::Running);
    assert!(
        live.total.is_some(),
        "progress reaches sync_runs for other viewers"
    );
    assert!(rig.store().write(|w| w.request_cancel(&sync_id)).unwrap());
    let outcome = run.await.unwrap();
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_eq!(rig.count("vcenter", Some(DeviceStatus::Inactive)), 0);
    assert_eq!(
        rig.store().run(&sync_id).unwrap().unwrap().status,
        RunStatus::Cancelled
    );
}

/// Runs the real binary, kills it with SIGKILL mid-sync, and checks that the database is
/// consistent and that the next run reaches the same state as an uninterrupted one.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_with_sigkill_leaves_a_consistent_database() {
    let rig = start_rig(300).await;
    rig.sims
        .faults(SimKind::Vcenter)
        .set_latency(Duration::from_millis(3));
    let config = rig.dir.path().join("config.toml");
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_infradeck");
    let command = |args: &[&str]| {
        let mut c = std::process::Command::new(binary);
        c.env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path())
            .args(["--config", config.to_str().unwrap()])
            .args(args);
        c
    };
    // Kill at a moment that varies from run to run: after 1–20 device rows are written.
    let target = 1
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 20) as u64;
    let mut child = command(&["sync", "vcenter-sim"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished_on_its_own = loop {
        let devices = Store::open(
            &rig.dir.path().join("inventory.db"),
            &OpenOptions::default(),
        )
        .ok()
        .and_then(|s| s.count_devices(&DeviceQuery::default()).ok())
        .unwrap_or(0);
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if devices >= target {
            break false;
        }
        assert!(Instant::now() < deadline, "the sync never wrote anything");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    if !finished_on_its_own {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    let check = command(&["db", "check"]).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // No waiting for the dead run's heartbeat to go stale: its process is gone from this host,
    // so the next sync takes the lock over at once.
    rig.sims
        .faults(SimKind::Vcenter)
        .set_latency(Duration::ZERO);
    let finished = command(&["sync", "vcenter-sim"]).output().unwrap();
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );

    // Compare with an uninterrupted sync of the same estate into a fresh database.
    let reference = start_rig(300).await;
    assert_success(&reference.run(&["vcenter"]).await);
    let snapshot =
        |store: &Store| -> Vec<(String, String, DeviceType, DeviceStatus, Option<String>)> {
            let mut rows: Vec<_> = store
                .query_devices(&DeviceQuery::default())
                .unwrap()
                .into_iter()
                .map(|d| (d.source_id, d.name, d.device_type, d.status, d.metadata))
                .collect();
            rows.sort();
            rows
        };
    assert_eq!(snapshot(&rig.store()), snapshot(&reference.store()));
    let abandoned = rig
        .store()
        .recent_runs(10)
        .unwrap()
        .into_iter()
        .filter(|r| r.status == RunStatus::Failed)
        .count();
    // (On a machine fast enough to finish before the kill there is nothing to abandon.)
    if !finished_on_its_own {
        let runs = rig.store().recent_runs(10).unwrap();
        let dead = runs.iter().find(|r| r.status == RunStatus::Failed).unwrap();
        assert!(
            dead.message.as_deref().unwrap_or("").contains("is gone"),
            "{:?}",
            dead.message
        );
    }
    assert_eq!(
        abandoned,
        usize::from(!finished_on_its_own),
        "the killed run is recorded as abandoned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_merged_view_shows_each_field_by_source_and_marks_conflicts() {
    let rig = start_rig(120).await;
    assert_success(&rig.run(&["vcenter", "foreman", "puppetdb"]).await);
    let mut store = rig.store();
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    let vm = estate
        .vms
        .iter()
        .find(|v| v.foreman_id.is_some() && v.in_puppet)
        .unwrap();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &vm.moid)
        .unwrap()
        .unwrap();
    let view = store.merged_view(device.id).unwrap().unwrap();
    assert_eq!(
        view.device_ids.len(),
        3,
        "vCenter, Foreman and PuppetDB records of one machine"
    );
    assert_eq!(view.device_ids[0], device.id);
    let field = |name: &str| view.fields.iter().find(|f| f.name == name).unwrap().clone();
    let hostname = field("hostname");
    assert_eq!(hostname.values.len(), 3);
    assert!(
        hostname
            .values
            .iter()
            .all(|v| v.value == vm.hostname && v.confirmed_at.is_some())
    );
    let sources: BTreeSet<&str> = hostname.values.iter().map(|v| v.source.as_str()).collect();
    assert_eq!(
        sources,
        BTreeSet::from([
            "foreman/foreman-sim",
            "puppetdb/puppetdb-sim",
            "vcenter/vcenter-sim"
        ])
    );
    assert!(
        view.fields.iter().all(|f| !f.conflict),
        "a coherent machine has no conflicts: {:?}",
        view.fields
            .iter()
            .filter(|f| f.conflict)
            .collect::<Vec<_>>()
    );
    assert!(
        !field("os").conflict,
        "OS spellings differ by system and are not compared"
    );

    // PuppetDB now reports a different CPU count: the view marks the disagreement.
    let puppet = store
        .device_by_source_key("puppetdb", "puppetdb-sim", &vm.fqdn())
        .unwrap()
        .unwrap();
    rusqlite::Connection::open(rig.dir.path().join("inventory.db"))
        .unwrap()
        .execute("UPDATE devices SET metadata = json_set(metadata, '$.puppetdb.cpu_count', 99) WHERE id = ?1", [puppet.id])
        .unwrap();
    let view = store.merged_view(device.id).unwrap().unwrap();
    let cpus = view.fields.iter().find(|f| f.name == "cpu_count").unwrap();
    assert!(cpus.conflict);
    assert!(
        cpus.values
            .iter()
            .any(|v| v.value == "99" && v.source == "puppetdb/puppetdb-sim")
    );
    assert!(
        store
            .device_detail(device.id)
            .unwrap()
            .unwrap()
            .merged
            .is_some(),
        "the detail carries it"
    );
}

/// The certnames PuppetDB lists, in its order (certname ascending).
fn puppet_certnames(rig: &Rig) -> Vec<String> {
    let estate = rig.sims.estate.read().unwrap().clone();
    let mut names: Vec<String> = infradeck_sim::machines::machines(&estate)
        .into_iter()
        .filter(|m| m.in_puppet)
        .map(|m| m.fqdn)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_puppetdb_node_deactivated_between_pages_never_makes_an_active_node_inactive() {
    let rig = start_rig(120).await;
    let mut source = rig.source("puppetdb");
    source.page_size = Some(10);
    let first = rig.run_source(&source).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let active = rig.count("puppetdb", Some(DeviceStatus::Active));
    assert!(active > 30, "several pages: {active}");

    // A node on the first page is deactivated right after that page is served: with offset
    // paging every later row shifts by one and the node at the page boundary goes unlisted.
    let certnames = puppet_certnames(&rig);
    rig.sims.puppetdb.deactivate_between_pages(&certnames[0]);
    let raced = rig.run_source(&source).await;
    assert_eq!(raced.status, RunStatus::Success, "{:?}", raced.message);
    assert_eq!(
        raced.counts.removed, 0,
        "nothing PuppetDB still has is swept"
    );
    assert_eq!(rig.count("puppetdb", Some(DeviceStatus::Active)), active);
    let note = raced.message.clone().unwrap_or_default();
    assert!(note.contains("1 active node(s) were missing"), "{note}");
    let boundary = rig.store().devices_named(&certnames[10]).unwrap();
    assert!(
        boundary
            .iter()
            .any(|d| d.source_system == "puppetdb" && d.status == DeviceStatus::Active),
        "the node at the page boundary stays active"
    );

    // The next run does not list the deactivated node, and the check confirms it is gone.
    let after = rig.run_source(&source).await;
    assert_eq!(after.status, RunStatus::Success, "{:?}", after.message);
    assert_eq!(after.counts.removed, 1);
    let gone = rig.store().devices_named(&certnames[0]).unwrap();
    let gone = gone.iter().find(|d| d.source_system == "puppetdb").unwrap();
    assert_eq!(gone.status, DeviceStatus::Inactive);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreman_host_deleted_between_pages_never_makes_another_host_inactive() {
    let rig = start_rig(120).await;
    let mut source = rig.source("foreman");
    source.page_size = Some(10);
    let first = rig.run_source(&source).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let active = rig.count("foreman", Some(DeviceStatus::Active));
    assert!(active > 30, "several pages: {active}");

    let estate = rig.sims.estate.read().unwrap().clone();
    let mut ids: Vec<u64> = infradeck_sim::machines::machines(&estate)
        .iter()
        .filter_map(|m| m.foreman_id)
        .collect();
    ids.sort();
    rig.sims.foreman.delete_between_pages(ids[0]);
    let raced = rig.run_source(&source).await;
    assert_eq!(raced.status, RunStatus::Success, "{:?}", raced.message);
    // The host was listed, then its facts answered 404: it is gone, and it alone is swept.
    assert_eq!(raced.counts.removed, 1, "keyset pages skip nobody");
    assert_eq!(rig.count("foreman", Some(DeviceStatus::Active)), active - 1);
    let gone = rig
        .store()
        .device_keys_of_source("foreman", &source.id, DeviceStatus::Inactive)
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].1, ids[0].to_string());

    let after = rig.run_source(&source).await;
    assert_eq!(after.counts.removed, 0);
    assert_eq!(rig.count("foreman", Some(DeviceStatus::Active)), active - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_puppet_run_that_moves_only_run_volatile_facts_writes_nothing() {
    let rig = start_rig(60).await;
    let sources = ["puppetdb", "foreman"];
    assert_success(&rig.run(&sources).await);
    let history_before = rig.store().table_counts().unwrap();
    rig.sims.estate.write().unwrap().puppet_runs += 1;
    let again = rig.run(&sources).await;
    assert_success(&again);
    for o in &again {
        assert_eq!(
            (o.counts.added, o.counts.updated, o.counts.removed),
            (0, 0, 0),
            "{}: used memory, mount point usage, load and uptime moved, nothing else",
            o.source
        );
    }
    let history_after = rig.store().table_counts().unwrap();
    let history =
        |counts: &[(&str, u64)]| counts.iter().find(|(t, _)| *t == "sync_history").unwrap().1;
    assert_eq!(history(&history_after), history(&history_before));

    // Facts that only look volatile by substring are kept; run-volatile ones and `trusted` not.
    let store = rig.store();
    let estate = rig.sims.estate.read().unwrap().clone();
    let redhat = infradeck_sim::machines::machines(&estate)
        .into_iter()
        .find(|m| m.in_puppet && infradeck_sim::estate::Estate::guest_os(m.guest).1 == "RedHat")
        .expect("the estate has RedHat nodes");
    let device = store
        .devices_named(&redhat.fqdn)
        .unwrap()
        .into_iter()
        .find(|d| d.source_system == "puppetdb")
        .unwrap();
    let facts: BTreeMap<String, Option<String>> = store
        .facts(device.id)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.value))
        .collect();
    assert!(facts.contains_key("freeipa_client"), "{:?}", facts.keys());
    assert!(!facts.contains_key("trusted"));
    assert!(!facts.contains_key("system_uptime") && !facts.contains_key("load_averages"));
    let memory = facts["memory"].clone().unwrap();
    assert!(
        memory.contains("total_bytes") && !memory.contains("used_bytes"),
        "{memory}"
    );
    let mountpoints = facts["mountpoints"].clone().unwrap();
    assert!(
        mountpoints.contains("size_bytes") && !mountpoints.contains("capacity"),
        "{mountpoints}"
    );
}

/// `openssl s_server` on loopback with a self-signed certificate for `localhost` only.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> Option<TlsServer> {
    let openssl = |args: &[&str], dir: &std::path::Path| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    // A CA of its own and a leaf for `localhost` signed by it, as a Puppet CA issues them.
    let made = openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir.path(),
    ) && openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        dir.path(),
    ) && openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
        dir.path(),
    );
    if !made {
        eprintln!("skipped: the openssl command is not available");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "cert.pem",
            "-key",
            "key.pem",
            "-www",
            "-quiet",
        ])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsServer {
        child,
        port,
        cert: dir.path().join("ca.pem"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_failures_are_not_retried_and_say_what_to_configure() {
    use infradeck_core::config::TlsConfig;
    use infradeck_core::http::{RequestParts, RetryPolicy, SourceClient, SourceError};
    let Some(server) = tls_server() else { return };
    let retry = RetryPolicy {
        max_tries: 5,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
    };
    let client = |url: &str, tls: &TlsConfig| {
        SourceClient::for_endpoint(
            "puppetdb/tls".into(),
            url,
            tls,
            Duration::from_secs(10),
            1,
            retry.clone(),
        )
        .unwrap()
    };
    async fn get(c: &SourceClient) -> Result<infradeck_core::http::Answer, SourceError> {
        c.send(reqwest::Method::GET, "/", &RequestParts::default())
            .await
    }

    let untrusted = client(
        &format!("https://127.0.0.1:{}", server.port),
        &TlsConfig::default(),
    );
    let err = get(&untrusted)
        .await
        .err()
        .expect("an untrusted certificate fails");
    assert_eq!(untrusted.requests(), 1, "not retried: {err}");
    assert!(matches!(err, SourceError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("tls.ca_file"), "{err}");

    let trusted = TlsConfig {
        ca_file: Some(server.cert.clone()),
        ..TlsConfig::default()
    };
    let by_ip = client(&format!("https://127.0.0.1:{}", server.port), &trusted);
    let err = get(&by_ip)
        .await
        .err()
        .expect("the certificate names localhost only");
    assert_eq!(by_ip.requests(), 1, "not retried: {err}");
    assert!(err.to_string().contains("`url`"), "{err}");

    let by_name = client(&format!("https://localhost:{}", server.port), &trusted);
    let answer = get(&by_name).await.unwrap();
    assert_eq!(answer.status.as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dorado_lun_deleted_between_pages_never_removes_another_lun() {
    let rig = start_rig(400).await;
    let mut source = rig.source("dorado");
    source.page_size = Some(5);
    let first = rig.run_source(&source).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let stored = |rig: &Rig| -> Vec<String> {
        let mut ids: Vec<String> = rig
            .store()
            .volume_keys_of_source("dorado", &source.id)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        ids.sort();
        ids
    };
    let before = stored(&rig);
    assert!(before.len() > 15, "several pages: {}", before.len());

    // The first LUN goes after page one was served: `range` offsets shift, and the LUN at the
    // page boundary is not listed. It is read by id and kept.
    let listed: Vec<String> = rig
        .sims
        .estate
        .read()
        .unwrap()
        .dorado
        .luns
        .iter()
        .map(|l| l.id.clone())
        .collect();
    *rig.sims.dorado.delete_after_next_lun_page.lock().unwrap() = Some(listed[0].clone());
    let raced = rig.run_source(&source).await;
    assert_eq!(raced.status, RunStatus::Success, "{:?}", raced.message);
    assert_eq!(
        stored(&rig),
        before,
        "no LUN the array still has is removed"
    );
    let note = raced.message.clone().unwrap_or_default();
    assert!(note.contains("1 LUN(s) were missing"), "{note}");

    let after = rig.run_source(&source).await;
    assert_eq!(after.status, RunStatus::Success, "{:?}", after.message);
    let mut expected = before.clone();
    expected.retain(|id| *id != listed[0]);
    assert_eq!(stored(&rig), expected, "the deleted LUN, and only it");
}

/// Spawns `infradeck sync SOURCE` against the rig, waits until its run is under way, sends
/// `signal`, and returns (how the process ended, the runs table afterwards).
async fn signal_a_running_sync(
    rig: &Rig,
    signal: i32,
    under_nohup: bool,
) -> (
    std::process::ExitStatus,
    Vec<infradeck_core::store::SyncRun>,
) {
    use std::os::unix::process::CommandExt;
    let config = rig.dir.path().join("config.toml");
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_infradeck"));
    command
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .args(["--config", config.to_str().unwrap(), "sync", "vcenter-sim"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if under_nohup {
        // SAFETY: between fork and exec only signal(2) runs, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let under_way = Store::open(
            &rig.dir.path().join("inventory.db"),
            &OpenOptions::default(),
        )
        .ok()
        .and_then(|s| s.running_runs().ok())
        .is_some_and(|runs| runs.iter().any(|r| r.done > 0));
        if under_way {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before the signal"
        );
        assert!(Instant::now() < deadline, "the sync never got under way");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the sync did not exit after the signal"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    (status, rig.store().recent_runs(10).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_ssh_session_cancels_the_sync_and_the_next_one_starts_at_once() {
    let rig = start_rig(300).await;
    rig.sims
        .faults(SimKind::Vcenter)
        .set_latency(Duration::from_millis(5));
    for signal in [libc::SIGHUP, libc::SIGTERM] {
        let (status, runs) = signal_a_running_sync(&rig, signal, false).await;
        assert!(!status.success(), "a cancelled sync does not exit 0");
        assert!(
            runs.iter().all(|r| r.status != RunStatus::Running),
            "signal {signal}: no run is left running: {runs:?}"
        );
        assert_eq!(runs[0].status, RunStatus::Cancelled, "signal {signal}");
    }
    // The lock went with the runs: a sync right away is not refused.
    rig.sims
        .faults(SimKind::Vcenter)
        .set_latency(Duration::ZERO);
    let next = rig.run_source(&rig.source("vcenter")).await;
    assert_eq!(next.status, RunStatus::Success, "{:?}", next.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_says_when_it_expires_and_break_lock_refuses_a_live_run() {
    let rig = start_rig(50).await;
    let db = rig.dir.path().join("inventory.db");
    drop(rig.store());
    let now = infradeck_core::time::now();
    // A run of another host (pid 1 there): its process cannot be checked from here.
    let mut store = rig.store();
    store
        .write(|w| {
            w.begin_run(
                "vcenter-elsewhere-1",
                "vcenter",
                "vcenter-sim",
                &infradeck_core::store::RunOwner {
                    pid: 1,
                    host: "other-bastion",
                },
                &now,
                "2000-01-01 00:00:00",
            )
        })
        .unwrap();
    let refused = rig.run_source(&rig.source("vcenter")).await;
    let message = refused.message.unwrap_or_default();
    assert!(
        message.contains("lock expires at") && message.contains("--break-lock vcenter-elsewhere-1"),
        "{message}"
    );
    let config = rig.dir.path().join("config.toml");
    let break_lock = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_infradeck"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "sync",
                "--break-lock",
                "vcenter-elsewhere-1",
            ])
            .output()
            .unwrap()
    };
    let fresh = break_lock();
    assert!(!fresh.status.success());
    assert!(
        String::from_utf8_lossy(&fresh.stderr).contains("may be alive"),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE sync_runs SET heartbeat_at = '2000-01-01 00:00:00' WHERE sync_id = 'vcenter-elsewhere-1'")
        .unwrap();
    let stale = break_lock();
    assert!(
        stale.status.success(),
        "{}",
        String::from_utf8_lossy(&stale.stderr)
    );
    let run = rig.store().run("vcenter-elsewhere-1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.message.unwrap().contains("lock broken by"));
    let next = rig.run_source(&rig.source("vcenter")).await;
    assert_eq!(next.status, RunStatus::Success, "{:?}", next.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_foreman_host_whose_facts_fail_is_skipped_and_named_not_swept() {
    let rig = start_rig(60).await;
    let source = rig.source("foreman");
    assert_success(&[rig.run_source(&source).await]);
    let active = rig.count("foreman", Some(DeviceStatus::Active));
    rig.sims.faults(SimKind::Foreman).push(
        FaultRule::new(FaultAction::Status(500))
            .after(5)
            .times(1)
            .on_path("/facts"),
    );
    let outcome = rig.run_source(&source).await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    let message = outcome.message.unwrap_or_default();
    assert!(
        message.contains("1 hosts' facts could not be read") && message.contains("/facts"),
        "{message}"
    );
    assert_eq!(rig.count("foreman", Some(DeviceStatus::Active)), active);
    assert_success(&[rig.run_source(&source).await]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_datastore_list_that_hits_the_cap_sweeps_no_datastore() {
    let rig = start_rig(100).await;
    let source = rig.source("vcenter");
    assert_success(&[rig.run_source(&source).await]);
    let volumes = |rig: &Rig| {
        rig.store()
            .volume_keys_of_source("vcenter", &source.id)
            .unwrap()
            .len()
    };
    let stored = volumes(&rig);
    assert!(stored > 1);
    let history_before = rig.store().history(None, 100_000).unwrap().len();
    rig.sims
        .vcenter
        .datastore_cap
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let capped = rig.run_source(&source).await;
    assert_eq!(capped.status, RunStatus::Partial, "{:?}", capped.message);
    let message = capped.message.unwrap_or_default();
    assert!(message.contains("result cap"), "{message}");
    assert_eq!(volumes(&rig), stored, "no datastore swept");
    assert_eq!(
        rig.store().history(None, 100_000).unwrap().len(),
        history_before,
        "no `delete volume` rows, nor any other: nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_hosts_distributed_port_groups_and_guest_names_arrive_as_vcenter_reports_them() {
    let rig = start_rig(100).await;
    let estate = rig.sims.estate.read().unwrap().clone();
    assert_success(&rig.run(&["vcenter"]).await);
    let store = rig.store();
    let metadata = |device: &infradeck_core::store::Device| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(device.metadata.as_deref().unwrap()).unwrap()
            ["vcenter"]
            .clone()
    };

    // The standalone host, registered by address: kept whole, in no cluster, with its VMs.
    let (index, host) = estate
        .hosts
        .iter()
        .enumerate()
        .find(|(_, h)| h.standalone)
        .unwrap();
    let stored = store
        .device_by_source_key("vcenter", "vcenter-sim", &host.moid)
        .unwrap()
        .expect("the standalone host is listed");
    assert_eq!(stored.name, host.name);
    assert_eq!(metadata(&stored)["hostname"], host.name.as_str());
    assert_eq!(metadata(&stored)["cluster"], serde_json::Value::Null);
    let site = estate.clusters[host.cluster].site;
    assert_eq!(
        metadata(&stored)["datacenter"],
        infradeck_sim::estate::SITES[site].0
    );
    let on_it: BTreeSet<String> = estate
        .live_vms()
        .filter(|vm| vm.host == index)
        .map(|vm| vm.moid.clone())
        .collect();
    assert!(!on_it.is_empty());
    let hosted: BTreeSet<String> = store
        .related(stored.id)
        .unwrap()
        .into_iter()
        .filter(|r| !r.is_parent && r.relationship_type == RelationshipType::Hosts)
        .map(|r| r.device.source_id)
        .collect();
    assert_eq!(hosted, on_it);

    // A NIC on a distributed port group is named through /api/vcenter/network.
    let (vm, nic) = estate
        .live_vms()
        .find_map(|vm| vm.nics.iter().find(|n| n.distributed).map(|n| (vm, n)))
        .unwrap();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &vm.moid)
        .unwrap()
        .unwrap();
    let interfaces = store.interfaces(device.id).unwrap();
    let stored_nic = interfaces
        .iter()
        .find(|i| i.interface.mac_address.as_deref() == Some(nic.mac.as_str()))
        .unwrap();
    assert_eq!(
        stored_nic.interface.metadata["network"],
        nic.network_name.as_str()
    );

    // The guest's own host name (its FQDN) from /guest/identity.
    let running = estate
        .live_vms()
        .find(|vm| vm.tools_running && vm.power_state.as_str() == "POWERED_ON")
        .unwrap();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &running.moid)
        .unwrap()
        .unwrap();
    assert_eq!(metadata(&device)["fqdn"], running.fqdn().as_str());
    assert_eq!(metadata(&device)["hostname"], running.hostname.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_and_host_uplinks_come_over_soap_and_hosts_connect_to_their_switches() {
    let rig = start_rig(100).await;
    let estate = rig.sims.estate.read().unwrap().clone();
    assert_success(&rig.run(&["vcenter", "oxidized"]).await);
    let mut store = rig.store();

    // The VM with two snapshots: a chain, the newest current, the size from layoutEx.
    let vm = estate
        .live_vms()
        .find(|vm| vm.snapshots.len() == 2)
        .unwrap();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &vm.moid)
        .unwrap()
        .unwrap();
    let row = store.vm(device.id).unwrap().unwrap().vm;
    let list = row.snapshots.as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", row.snapshots);
    assert_eq!(list[0]["name"], vm.snapshots[0].name.as_str());
    assert_eq!(list[0]["description"], vm.snapshots[0].description.as_str());
    assert_eq!(list[1]["parent"], list[0]["id"]);
    assert_eq!(
        (list[0]["current"].as_bool(), list[1]["current"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(list[1]["quiesced"], true);
    // Per snapshot: its .vmsn (42,000 bytes) and on each disk a delta (400-byte descriptor and
    // an extent of its share of the delta).
    let disks = vm.disks.len() as u64;
    let expected: u64 = vm
        .snapshots
        .iter()
        .map(|s| 42_000 + disks * 400 + (s.delta_bytes / disks) * disks)
        .sum();
    assert_eq!(row.total_snapshot_size_bytes, Some(expected as i64));
    let without = estate
        .live_vms()
        .find(|vm| vm.snapshots.is_empty())
        .unwrap();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &without.moid)
        .unwrap()
        .unwrap();
    let row = store.vm(device.id).unwrap().unwrap().vm;
    assert_eq!(
        (row.snapshots, row.total_snapshot_size_bytes),
        (serde_json::json!([]), Some(0))
    );

    // Host NICs with their speed and neighbour, then `connects_to` the switch they name.
    let host = &estate.hosts[0];
    let uplinks = estate.uplinks(0);
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &host.moid)
        .unwrap()
        .unwrap();
    let nics = store.interfaces(device.id).unwrap();
    assert_eq!(nics.len(), 2);
    assert_eq!(nics[0].interface.interface_name, "vmnic0");
    assert_eq!(nics[0].interface.speed_mbps, Some(25_000));
    assert_eq!(
        nics[0].interface.mac_address.as_deref(),
        Some(uplinks[0].mac.as_str())
    );
    let report =
        infradeck_core::sync::correlate::correlate(&mut store, "2026-12-01 09:00:00", "test")
            .unwrap();
    assert!(report.uplinks >= estate.hosts.len(), "{report:?}");
    let switches: BTreeMap<String, serde_json::Value> = store
        .related(device.id)
        .unwrap()
        .into_iter()
        .filter(|r| !r.is_parent && r.relationship_type == RelationshipType::ConnectsTo)
        .map(|r| {
            (
                r.device.name.clone(),
                serde_json::from_str(r.metadata.as_deref().unwrap()).unwrap(),
            )
        })
        .collect();
    for uplink in &uplinks {
        let (_, announced, port) = uplink.neighbour.as_ref().unwrap();
        let name = announced.split('.').next().unwrap();
        let cables = switches[name]["cables"].as_array().unwrap();
        assert!(
            cables
                .iter()
                .any(|c| c["host_nic"] == uplink.device.as_str()
                    && c["switch_port"] == port.as_str()),
            "{switches:?}"
        );
    }
    // Correlating again changes nothing; the links are audited once.
    let history = store.history(Some(device.id), 1000).unwrap().len();
    infradeck_core::sync::correlate::correlate(&mut store, "2026-12-01 09:05:00", "test").unwrap();
    assert_eq!(store.history(Some(device.id), 1000).unwrap().len(), history);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulators_soap_pages_by_max_objects_as_vcenter_does() {
    let rig = start_rig(30).await;
    let live = rig.sims.estate.read().unwrap().live_vms().count();
    let login = rig.sims.credentials(infradeck_sim::SimKind::Vcenter);
    let mut soap = common::SoapProbe::new(&rig.sims.url(infradeck_sim::SimKind::Vcenter));
    assert_eq!(soap.login(&login.username, &login.password).await, 200);
    let view = soap.view("VirtualMachine").await;
    let (status, mut body) = soap
        .call(&common::SoapProbe::retrieve_body(
            &view,
            "VirtualMachine",
            &["layoutEx"],
            7,
        ))
        .await;
    assert_eq!(status, 200);
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let result = body
            .children
            .first()
            .and_then(|r| r.child("returnval"))
            .cloned()
            .unwrap();
        let objects = result.children_named("objects").count();
        assert!(objects <= 7);
        seen += objects;
        pages += 1;
        let Some(token) = result.text_of("token") else {
            break;
        };
        let (status, next) = soap
            .call(&format!(
                "<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><token>{token}</token></ContinueRetrievePropertiesEx>"
            ))
            .await;
        assert_eq!(status, 200);
        body = next;
    }
    assert_eq!(seen, live);
    assert_eq!(pages, live.div_ceil(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn bare_metal_servers_connect_to_the_switch_their_lldp_fact_names() {
    let rig = start_rig(100).await;
    let estate = rig.sims.estate.read().unwrap().clone();
    assert_success(&rig.run(&["puppetdb", "foreman", "oxidized"]).await);
    let mut store = rig.store();
    infradeck_core::sync::correlate::correlate(&mut store, "2026-12-01 09:00:00", "test").unwrap();
    let machines = infradeck_sim::machines::machines(&estate);
    let metal = machines
        .iter()
        .find(|m| !m.is_virtual && m.in_puppet && m.foreman_id.is_some())
        .expect("a bare-metal server in PuppetDB and Foreman");
    let lldp = infradeck_sim::machines::facts(&estate, metal)["lldp"]["eth0"].clone();
    let (switch, port) = (
        lldp["chassis"]["name"].as_str().unwrap(),
        lldp["port"]["ifname"].as_str().unwrap(),
    );
    // Both records of the machine (PuppetDB: the fact whole; Foreman: flattened with `::`).
    for source in ["puppetdb", "foreman"] {
        let record = store
            .query_devices(&DeviceQuery {
                source_system: Some(source.into()),
                ..DeviceQuery::default()
            })
            .unwrap()
            .into_iter()
            .find(|d| d.name.eq_ignore_ascii_case(&metal.fqdn) || d.name == metal.short)
            .unwrap_or_else(|| panic!("{source} record of {}", metal.fqdn));
        let links: Vec<(String, serde_json::Value)> = store
            .related(record.id)
            .unwrap()
            .into_iter()
            .filter(|r| !r.is_parent && r.relationship_type == RelationshipType::ConnectsTo)
            .map(|r| {
                (
                    r.device.name,
                    serde_json::from_str(r.metadata.as_deref().unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(links.len(), 1, "{source}: {links:?}");
        assert_eq!(links[0].0, switch);
        assert_eq!(links[0].1["cables"][0]["host_nic"], "eth0");
        assert_eq!(links[0].1["cables"][0]["switch_port"], port, "{source}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_cut_short_is_corrected_when_its_version_is_checked_again() {
    let rig = start_rig(100).await;
    let mut source = rig.source("oxidized");
    source.verify_configs_hours = 0;
    assert_success(&[rig.run_source(&source).await]);
    // A tenth of the nodes get one new version; the first of them is served cut in half, in a
    // body that looks complete (its length matches), so the sync succeeds and stores it.
    let report = rig.sims.advance();
    assert!(!report.edited_configs.is_empty());
    rig.sims.faults(SimKind::Oxidized).push(
        FaultRule::new(FaultAction::Truncate)
            .on_path("/node/version/view")
            .times(1),
    );
    let cut = rig.run_source(&source).await;
    assert_success(std::slice::from_ref(&cut));
    let store = rig.store();
    let newest = |store: &Store| -> BTreeMap<String, (String, i64)> {
        report
            .edited_configs
            .iter()
            .map(|name| {
                let device = store.devices_named(name).unwrap().remove(0);
                let v = store.config_versions(device.id).unwrap().remove(0);
                (name.clone(), (v.config_hash, v.size_bytes))
            })
            .collect()
    };
    let before = newest(&store);

    // The next check of each node's newest version fetches it again and corrects the one text.
    source.verify_configs_hours = 1;
    let checked = rig.run_source(&source).await;
    assert_success(std::slice::from_ref(&checked));
    let corrections: Vec<_> = store
        .history_of_run(checked.sync_id.as_deref().unwrap())
        .unwrap()
        .into_iter()
        .filter(|h| h.change_type.as_deref() == Some("config"))
        .collect();
    assert_eq!(corrections.len(), 1, "{corrections:#?}");
    assert!(
        corrections[0]
            .new_value
            .as_deref()
            .unwrap()
            .contains("corrected"),
        "{corrections:?}"
    );
    let after = newest(&store);
    let changed: Vec<&String> = before
        .keys()
        .filter(|name| before[*name].0 != after[*name].0)
        .collect();
    assert_eq!(changed.len(), 1, "{before:?} {after:?}");
    let name = changed[0];
    assert!(
        after[name].1 > before[name].1,
        "the corrected text is the whole one: {} → {} bytes",
        before[name].1,
        after[name].1
    );
    // Versions were not added: the same version holds the right text.
    let device = store.devices_named(name).unwrap().remove(0);
    let versions = store.config_versions(device.id).unwrap();
    assert_eq!(
        versions.len(),
        rig.sims
            .estate
            .read()
            .unwrap()
            .net_devices
            .iter()
            .find(|d| &d.name == name)
            .unwrap()
            .versions
            .len()
    );

    // Checked again: nothing to correct.
    let again = rig.run_source(&source).await;
    assert_success(std::slice::from_ref(&again));
    assert!(
        store
            .history_of_run(again.sync_id.as_deref().unwrap())
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_soap_session_is_renewed_and_the_snapshots_still_arrive() {
    let rig = start_rig(100).await;
    // Each SOAP session lasts four calls: the run logs in again when vCenter says
    // NotAuthenticated, and replays the call.
    rig.sims.vcenter.soap.lock().unwrap().expire_after_calls = 4;
    let outcome = rig.run_source(&rig.source("vcenter")).await;
    assert_success(std::slice::from_ref(&outcome));
    let logins = rig.sims.vcenter.soap.lock().unwrap().logins;
    assert!(logins >= 3, "logged in again as sessions expired: {logins}");
    let estate = rig.sims.estate.read().unwrap().clone();
    let vm = estate
        .live_vms()
        .find(|vm| !vm.snapshots.is_empty())
        .unwrap();
    let store = rig.store();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &vm.moid)
        .unwrap()
        .unwrap();
    let row = store.vm(device.id).unwrap().unwrap().vm;
    assert_eq!(
        row.snapshots.as_array().map(Vec::len),
        Some(vm.snapshots.len())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_list_over_the_cap_names_the_datacenter_and_sweeps_nothing() {
    let rig = start_rig(100).await;
    let source = rig.source("vcenter");
    assert_success(&[rig.run_source(&source).await]);
    let active = rig.count("vcenter", Some(DeviceStatus::Active));
    rig.sims
        .vcenter
        .cluster_cap
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let capped = rig.run_source(&source).await;
    assert_eq!(capped.status, RunStatus::Partial, "{:?}", capped.message);
    let message = capped.message.unwrap_or_default();
    assert!(
        message.contains("datacenter dc1 has more clusters than vCenter will list at once"),
        "{message}"
    );
    assert_eq!(
        rig.count("vcenter", Some(DeviceStatus::Active)),
        active,
        "nothing swept: the clusters, their hosts and VMs are still there"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_body_cut_at_the_transport_level_is_never_stored() {
    let rig = start_rig(60).await;
    let source = rig.source("oxidized");
    // Every config view drops the connection mid-body: after its retries the run fails, and no
    // node keeps a partial text.
    rig.sims
        .faults(SimKind::Oxidized)
        .push(FaultRule::new(FaultAction::Reset).on_path("/node/version/view"));
    let cut = rig.run_source(&source).await;
    assert_eq!(cut.status, RunStatus::Failed, "{:?}", cut.message);
    let counts: BTreeMap<&str, u64> = rig.store().table_counts().unwrap().into_iter().collect();
    assert_eq!(counts["device_configs"], 0, "no partial config stored");

    // One drop, then whole bodies: the retry stores the whole text.
    rig.sims.faults(SimKind::Oxidized).clear();
    rig.sims.faults(SimKind::Oxidized).push(
        FaultRule::new(FaultAction::Reset)
            .on_path("/node/version/view")
            .times(1),
    );
    assert_success(&[rig.run_source(&source).await]);
    let estate = rig.sims.estate.read().unwrap().clone();
    let versions: usize = estate.net_devices.iter().map(|d| d.versions.len()).sum();
    let counts: BTreeMap<&str, u64> = rig.store().table_counts().unwrap().into_iter().collect();
    assert_eq!(counts["device_configs"] as usize, versions);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_one_of_two_sources_whose_ids_share_a_prefix_cancels_only_it() {
    use infradeck_core::app::{Command, Event, Service, ServiceOptions};
    let rig = start_rig(200).await;
    // Slow enough that both runs are still going when the cancel arrives.
    rig.sims
        .faults(SimKind::Vcenter)
        .set_latency(Duration::from_millis(5));
    let prod = rig.source("vcenter");
    let mut prod_2 = prod.clone();
    prod_2.id = format!("{}-2", prod.id);
    let mut config = rig.config.clone();
    config.sources = vec![prod.clone(), prod_2.clone()];
    config.embeddings = None;
    let (service, mut link) = Service::start(
        rig.dir.path().join("inventory.db"),
        &config,
        &ServiceOptions::default(),
    );
    link.send(Command::Sync {
        sources: vec![prod.clone(), prod_2.clone()],
    });
    let prod_key = format!("vcenter/{}", prod.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut cancelled = false;
    let outcomes = loop {
        let event = tokio::time::timeout_at(deadline, link.events.recv())
            .await
            .expect("the batch ends within a minute")
            .expect("the service runs");
        match event {
            // Cancel `vcenter/<id>` by its exact sync id once both runs are under way.
            Event::Progress(progress)
                if !cancelled && progress.source == prod_key && progress.done > 0 =>
            {
                link.send(Command::Cancel {
                    sync_id: progress.sync_id.clone(),
                });
                cancelled = true;
            }
            Event::BatchEnded { outcomes, .. } => break outcomes,
            _ => {}
        }
    };
    service.shutdown("test over", None).await;
    assert!(cancelled, "the run of {prod_key} was seen under way");
    let status = |key: &str| {
        outcomes
            .iter()
            .find(|o| o.source == key)
            .map(|o| o.status)
            .unwrap_or_else(|| panic!("no outcome for {key}: {outcomes:?}"))
    };
    assert_eq!(status(&prod_key), RunStatus::Cancelled);
    assert_eq!(
        status(&format!("vcenter/{}", prod_2.id)),
        RunStatus::Success,
        "the source whose id only starts the same way ran to the end"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_asked_for_after_a_stop_is_answered_at_once_having_started_nothing() {
    use infradeck_core::app::{Command, Event, Service, ServiceOptions};
    let rig = start_rig(20).await;
    let (service, mut link) = Service::start(
        rig.dir.path().join("inventory.db"),
        &rig.config,
        &ServiceOptions::default(),
    );
    // A signal can arrive before the command line has sent its sync: the stop comes first.
    assert!(link.send(Command::Stop));
    assert!(link.send(Command::Sync {
        sources: vec![rig.source("vcenter")],
    }));
    let outcomes = loop {
        match tokio::time::timeout(Duration::from_secs(10), link.events.recv())
            .await
            .expect("the sync is answered, not left waiting")
        {
            Some(Event::BatchEnded { outcomes, pipeline }) => {
                assert!(pipeline.skipped.is_some(), "{pipeline:?}");
                break outcomes;
            }
            Some(_) => {}
            None => panic!("the service went away without answering"),
        }
    };
    service.shutdown("test over", None).await;
    assert!(
        outcomes.is_empty(),
        "nothing started after the stop: {outcomes:?}"
    );
    assert!(rig.store().recent_runs(5).unwrap().is_empty(), "no run row");
}

/// The machine of the vCenter record `moid`.
fn machine_of(store: &Store, moid: &str) -> infradeck_core::store::Machine {
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", moid)
        .unwrap()
        .unwrap();
    store
        .machine_of_device(device.id, &BTreeMap::new())
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn machines_keep_their_identity_and_health_follows_what_the_sources_report() {
    let rig = start_rig(200).await;
    assert_success(&rig.run(&DEVICE_SOURCES).await);
    let mut store = rig.store();
    let report =
        infradeck_core::sync::correlate::correlate(&mut store, "2026-12-01 09:00:00", "test")
            .unwrap();
    assert!(report.machines.created > 0, "{report:?}");
    let estate = rig.sims.estate.read().unwrap().clone();
    let vm = estate
        .vms
        .iter()
        .find(|v| v.foreman_id.is_some() && v.in_puppet && !v.deleted)
        .unwrap();
    let before = machine_of(&store, &vm.moid);
    assert_eq!(
        before.source_systems(),
        ["foreman", "puppetdb", "vcenter"],
        "one machine, three records"
    );
    assert_eq!(
        before
            .primary_device_id
            .map(|id| store.device(id).unwrap().unwrap().source_system),
        Some("vcenter".into())
    );

    // An engineer puts a host into maintenance mode (vCenter tells only over SOAP).
    let serviced = {
        let mut estate = rig.sims.estate.write().unwrap();
        estate.hosts[0].maintenance = true;
        estate.hosts[0].moid.clone()
    };
    let step = rig.sims.advance();
    assert_success(&rig.run(&DEVICE_SOURCES).await);
    infradeck_core::sync::correlate::correlate(&mut store, "2026-12-01 10:00:00", "test").unwrap();
    let host = machine_of(&store, &serviced);
    assert!(
        host.reasons
            .iter()
            .any(|r| r.text.ends_with("is in maintenance mode")),
        "{host:?}"
    );
    assert_ne!(host.health, infradeck_core::model::Health::Ok);

    // A host vCenter reports NOT_RESPONDING is critical, and the reason says so and names it.
    let offline = step.offline_host.expect("advance takes a host offline");
    let host = machine_of(&store, &offline);
    assert_eq!(host.health, infradeck_core::model::Health::Crit, "{host:?}");
    let reason = host.worst_reason().unwrap();
    assert!(
        reason.text.contains("NOT_RESPONDING") && reason.text.contains(&host.name),
        "{reason:?}"
    );
    assert_eq!(host.power.as_deref(), Some("not responding"));

    // A VM powered off is not ok, and says why.
    for moid in &step.powered_off_vms {
        let machine = machine_of(&store, moid);
        assert_ne!(
            machine.health,
            infradeck_core::model::Health::Ok,
            "{machine:?}"
        );
        assert!(
            machine.reasons.iter().any(|r| r.text == "powered off"),
            "{machine:?}"
        );
        assert_eq!(machine.power.as_deref(), Some("off"));
    }

    // A VM deleted in vCenter but still in Foreman stays one machine, whose vCenter record
    // stopped reporting.
    let deleted = step
        .deleted_vms
        .iter()
        .find(|moid| {
            estate
                .vms
                .iter()
                .any(|v| &v.moid == *moid && v.foreman_id.is_some())
        })
        .expect("a deleted VM Foreman knows");
    let gone = machine_of(&store, deleted);
    assert!(gone.records.len() > 1, "{gone:?}");
    assert!(
        gone.reasons
            .iter()
            .any(|r| r.text.contains("stopped reporting")),
        "{gone:?}"
    );

    // The unchanged VM kept its machine id through the second correlation.
    assert_eq!(machine_of(&store, &vm.moid).id, before.id);

    // Filters on health and power see the same.
    let page = store
        .machine_page(&infradeck_core::store::MachineQuery {
            filter: infradeck_core::machines::parse_filter("health:crit type:server").unwrap(),
            ..Default::default()
        })
        .unwrap();
    assert!(page.machines.iter().any(|m| m.id == host.id), "{page:?}");
    let off = store
        .machine_page(&infradeck_core::store::MachineQuery {
            filter: infradeck_core::machines::parse_filter("power:off").unwrap(),
            ..Default::default()
        })
        .unwrap();
    assert!(off.total >= step.powered_off_vms.len() as u64);
    assert!(
        off.machines
            .iter()
            .all(|m| m.power.as_deref() == Some("off"))
    );
}
