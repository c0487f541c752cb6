//! "What changed" and "as it was", end to end: sync the simulators, advance them one step
//! (which reports exactly what it changed), sync again; `changes --since` lists exactly those
//! changes and nothing else, and `devices --at` / `show --at` the time between the syncs equal
//! what the first sync left.

use infradeck_core::store::Store;
use infradeck_core::sync::correlate::{CorrelationSettings, correlate_with};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;

const SOURCES: [&str; 4] = ["vcenter", "foreman", "puppetdb", "oxidized"];

fn infradeck(rig: &common::Rig, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_infradeck"))
        .env("HOME", rig.dir.path())
        .env_remove("INFRADECK_CONFIG")
        .arg("--config")
        .arg(rig.dir.path().join("config.toml"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "infradeck {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "infradeck {args:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Waits until the database clock (whole seconds) has moved past `t`, so what is written next
/// is strictly later than `t`.
pub(crate) fn wait_past(t: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = infradeck_core::time::now();
        if now.as_str() > t {
            return now;
        }
        assert!(Instant::now() < deadline, "the clock did not move past {t}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) async fn sync_and_correlate(rig: &common::Rig) {
    rig.run(&SOURCES).await.iter().for_each(common::ok);
    let mut store = rig.store();
    correlate_with(
        &mut store,
        &infradeck_core::time::now(),
        "test",
        &CorrelationSettings::of(&rig.config),
    )
    .unwrap();
}

fn names_of_moids(store: &Store, moids: &[String]) -> BTreeSet<String> {
    moids
        .iter()
        .map(|moid| {
            let device = store
                .device_by_source_key("vcenter", "vcenter-sim", moid)
                .unwrap()
                .unwrap();
            let machine = store
                .machine_of_device(device.id, &BTreeMap::new())
                .unwrap()
                .unwrap();
            machine.name
        })
        .collect()
}

fn names_of_kind(changes: &Value, kind: &str) -> BTreeSet<String> {
    changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// What `devices --json` says of each machine that the past must reproduce.
fn comparable(list: &Value) -> BTreeMap<i64, Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let records: Vec<Value> = m["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| serde_json::json!([r["device_id"], r["status"], r["name"]]))
                .collect();
            let reasons: Vec<&Value> = m["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| &r["text"])
                .collect();
            (
                m["id"].as_i64().unwrap(),
                serde_json::json!({
                    "name": m["name"], "type": m["device_type"], "status": m["status"],
                    "health": m["health"], "power": m["power"], "reasons": reasons,
                    "records": records,
                }),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_list_exactly_what_advance_did_and_the_past_is_the_first_sync() {
    let rig = common::start_rig(400, 11).await;
    sync_and_correlate(&rig).await;
    let first_list = infradeck(&rig, &["devices", "--json"]);
    let store = rig.store();
    let report = rig.sims.advance();
    // The host each migrated VM ran on before, by machine name.
    let host_name = |moid: &str| {
        let device = store
            .device_by_source_key("vcenter", "vcenter-sim", moid)
            .unwrap()
            .unwrap();
        device.name
    };
    let hosts_before: BTreeMap<String, String> = report
        .migrated_vms
        .iter()
        .map(|(vm, from, _)| {
            (
                names_of_moids(&store, std::slice::from_ref(vm))
                    .pop_first()
                    .unwrap(),
                host_name(from),
            )
        })
        .collect();
    let between = wait_past(&infradeck_core::time::now());
    wait_past(&between);
    sync_and_correlate(&rig).await;
    let store = rig.store();

    let changes = infradeck(&rig, &["changes", "--since", &between, "--json"]);
    let counts = &changes["counts"];
    let expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::from([
        ("appeared", names_of_moids(&store, &report.created_vms)),
        ("gone", names_of_moids(&store, &report.deleted_vms)),
        ("power", names_of_moids(&store, &report.powered_off_vms)),
        (
            "moved",
            names_of_moids(
                &store,
                &report
                    .migrated_vms
                    .iter()
                    .map(|(vm, _, _)| vm.clone())
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "health",
            names_of_moids(
                &store,
                &report.offline_host.iter().cloned().collect::<Vec<_>>(),
            ),
        ),
        ("config", report.edited_configs.iter().cloned().collect()),
    ]);
    for (kind, names) in &expected {
        assert!(!names.is_empty(), "the step changed no {kind}: {report:?}");
        assert_eq!(&names_of_kind(&changes, kind), names, "{kind}: {changes:#}");
        assert_eq!(
            counts[kind].as_u64(),
            Some(names.len() as u64),
            "{kind} count"
        );
    }
    // Nothing else: every other kind is zero (datastore use moved within its band).
    for (kind, n) in counts.as_object().unwrap() {
        if !expected.contains_key(kind.as_str()) {
            assert_eq!(n.as_u64(), Some(0), "{kind}: {changes:#}");
        }
    }
    // The details say what happened, in names.
    let moved = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "moved")
        .unwrap();
    let from = &hosts_before[moved["name"].as_str().unwrap()];
    assert!(
        moved["details"][0]
            .as_str()
            .unwrap()
            .contains(from.as_str()),
        "{moved}"
    );
    let config = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "config")
        .unwrap();
    assert!(
        config["config"]["lines_added"].as_u64().unwrap() > 0,
        "{config}"
    );
    // A kind filter narrows; an unknown one is an error naming the kinds.
    let power_only = infradeck(
        &rig,
        &["changes", "--since", &between, "--kind", "power", "--json"],
    );
    assert_eq!(names_of_kind(&power_only, "power"), expected["power"]);
    assert_eq!(
        power_only["changes"].as_array().unwrap().len(),
        expected["power"].len()
    );

    // The past: the list between the syncs is the first sync's list.
    let past = infradeck(&rig, &["devices", "--at", &between, "--json"]);
    let (then, first) = (comparable(&past), comparable(&first_list));
    let differing: Vec<(&i64, &Value, Option<&Value>)> = first
        .iter()
        .filter(|(id, m)| then.get(id) != Some(m))
        .map(|(id, m)| (id, m, then.get(id)))
        .collect();
    assert!(
        differing.is_empty(),
        "{} machines differ: {:#?}",
        differing.len(),
        &differing[..differing.len().min(3)]
    );
    assert_eq!(then.len(), first.len(), "machines only in the past list");
    // And a migrated VM hung under its old host then.
    let (vm, host) = hosts_before.iter().next().unwrap();
    let shown = infradeck(&rig, &["show", vm, "--at", &between, "--json"]);
    let parents: Vec<&str> = shown["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["is_parent"] == true && r["relationship_type"] == "hosts")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(parents, vec![host.as_str()], "{shown:#}");
    // The text form says which time it shows, and lists the interfaces as they were.
    let out = Command::new(env!("CARGO_BIN_EXE_infradeck"))
        .env("HOME", rig.dir.path())
        .arg("--config")
        .arg(rig.dir.path().join("config.toml"))
        .args(["show", vm.as_str(), "--at", &between])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("as it was at {between} UTC")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{host} (")) && text.contains("hosts it"),
        "{text}"
    );
    assert!(text.contains("\ninterfaces\n"), "{text}");
}

#[test]
fn markdown_digest_is_bounded_and_escapes_source_text() {
    use infradeck_core::changes::{ChangeKind, Digest, MachineChange, Subject, markdown};
    let change = |i: usize| MachineChange {
        kind: if i == 0 {
            ChangeKind::Health
        } else {
            ChangeKind::Appeared
        },
        subject: Subject::Machine {
            id: i as i64 + 1,
            name: format!("web_{i}|\u{1b}[31m"),
            device_type: None,
        },
        at: format!("2026-12-01 0{}:00:00", i % 10),
        sources: vec!["vcenter/vc1".into()],
        details: vec!["new in vcenter".into()],
        config: None,
    };
    let changes: Vec<MachineChange> = (0..40).map(change).collect();
    let digest = Digest {
        since: "2026-12-01 00:00:00".into(),
        until: "2026-12-01 10:00:00".into(),
        counts: vec![(ChangeKind::Appeared, 39), (ChangeKind::Health, 1)],
        changes,
    };
    let text = markdown(&digest, 10);
    assert!(text.contains("**39** appeared"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("- ")).count(),
        11,
        "{text}"
    );
    assert!(text.contains("and 30 more"), "{text}");
    assert!(
        text.lines()
            .find(|l| l.starts_with("- "))
            .unwrap()
            .contains("**health**"),
        "health first: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "escape sequences never reach the note"
    );
    assert!(text.contains("web\\_0\\|"), "{text}");
}
