//! NetBox plan → review → apply → rollback against the NetBox simulator over HTTP, with a real
//! database: exactly the approved changes land, drift becomes a conflict, a failure half-way and
//! a second run write each item once, two processes write each item once, untagged objects are
//! never touched, and rollback restores the starting state field by field.

use infradeck_core::config::Config;
use infradeck_core::http::RetryPolicy;
use infradeck_core::model::{ApprovalAction, ApprovalStatus, RunStatus};
use infradeck_core::netbox::{ApplyOptions, NetboxClient};
use infradeck_core::store::{Review, Store};
use infradeck_sim::SimKind;
use infradeck_sim::http::{FaultAction, FaultRule};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::common;
use common::{Rig, approve_all};

const VMS: &str = "virtualization/virtual-machines";
const CLUSTERS: &str = "virtualization/clusters";
const IFACES: &str = "virtualization/interfaces";
const MACS: &str = "dcim/mac-addresses";
const IPS: &str = "ipam/ip-addresses";
/// What `state` compares.
const STATE: [&str; 5] = [VMS, CLUSTERS, IFACES, MACS, IPS];

async fn synced_rig(seed: u64) -> Rig {
    // 120 VMs: every kind of proposal (cluster and VM creates, drifted VMs, interfaces, MACs, the
    // retired VM's delete) in a few hundred items.
    let rig = common::start_rig(120, seed).await;
    let outcomes = rig.run(&["vcenter"]).await;
    assert!(
        outcomes.iter().all(|o| o.status == RunStatus::Success),
        "{outcomes:?}"
    );
    rig
}

fn client(config: &Config) -> NetboxClient {
    NetboxClient::new(
        config.netbox.as_ref().expect("the rig config has [netbox]"),
        RetryPolicy {
            max_tries: 2,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        },
    )
    .unwrap()
}

async fn plan(rig: &Rig, store: &mut Store) -> infradeck_core::app::PlanReport {
    infradeck_core::netbox::plan(
        store,
        &client(&rig.config),
        7,
        "planner",
        chrono::Utc::now(),
    )
    .await
    .unwrap()
}

fn options() -> ApplyOptions {
    ApplyOptions::default()
}

/// The comparable state of NetBox: every cluster, VM, VM interface and MAC object, keyed as the
/// plan names them (`endpoint:name`, `endpoint:vm/interface`, `endpoint:mac`), without ids and
/// timestamps.
fn state(rig: &Rig) -> BTreeMap<String, Value> {
    let vm_names: BTreeMap<u64, String> = rig
        .sims
        .netbox
        .snapshot(VMS)
        .into_iter()
        .map(|(id, vm)| (id, vm["name"].as_str().unwrap().to_string()))
        .collect();
    let mut out = BTreeMap::new();
    for endpoint in STATE {
        for object in rig.sims.netbox.snapshot(endpoint).into_values() {
            let mut object = object.as_object().unwrap().clone();
            let name = match endpoint {
                IFACES => format!(
                    "{}/{}",
                    vm_names[&object["virtual_machine"].as_u64().unwrap()],
                    object["name"].as_str().unwrap()
                ),
                MACS => object["mac_address"].as_str().unwrap().to_lowercase(),
                IPS => object["address"]
                    .as_str()
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap()
                    .to_string(),
                _ => object["name"].as_str().unwrap().to_string(),
            };
            for volatile in [
                "id",
                "created",
                "last_updated",
                "virtual_machine",
                "assigned_object_id",
                "primary_ip4",
                "primary_ip6",
            ] {
                object.remove(volatile);
            }
            // A custom field without a value is null in NetBox, whether or not it was set once.
            if let Some(fields) = object
                .get_mut("custom_fields")
                .and_then(Value::as_object_mut)
            {
                fields.retain(|_, v| !v.is_null());
            }
            // vcpus is a decimal: 2 and 2.0 are the same value.
            for value in object.values_mut() {
                if let Some(f) = value.as_f64().filter(|f| f.fract() == 0.0) {
                    *value = Value::from(f as i64);
                }
            }
            out.insert(format!("{endpoint}:{name}"), Value::Object(object));
        }
    }
    out
}

/// Writes per object since change `since`, not counting the update that makes a new MAC its
/// interface's primary MAC (the second, planned write of each new interface).
fn only_primaries_changed(change: &Value) -> bool {
    let (Some(pre), Some(post)) = (
        change["prechange_data"].as_object(),
        change["postchange_data"].as_object(),
    ) else {
        return false;
    };
    post.iter()
        .filter(|(k, v)| pre.get(*k) != Some(*v))
        .all(|(k, _)| matches!(k.as_str(), "primary_ip4" | "primary_ip6" | "last_updated"))
}

/// Items of a batch that only set or clear primary IPs (their writes are not counted).
fn primary_items(store: &Store, batch: &str) -> usize {
    store
        .batch_items(batch)
        .unwrap()
        .iter()
        .filter(|i| {
            let changes: Value =
                serde_json::from_str(i.proposed_changes.as_deref().unwrap()).unwrap();
            changes["fields"]
                .as_object()
                .is_some_and(|f| f.keys().all(|k| k == "primary_ip4" || k == "primary_ip6"))
        })
        .count()
}

fn writes_per_object(rig: &Rig, since: usize) -> BTreeMap<(String, u64), usize> {
    let mut out = BTreeMap::new();
    for change in rig.sims.netbox.changes().into_iter().skip(since) {
        if change["changed_object_type"] == "virtualization.vminterface"
            && change["action"]["value"] == "update"
        {
            continue;
        }
        // Setting a primary IP is the follow-up of creating the address (or an item of its
        // own, counted by `primary_items`): not a second write of the VM's fields.
        if change["action"]["value"] == "update" && only_primaries_changed(&change) {
            continue;
        }
        let key = (
            change["changed_object_type"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            change["changed_object_id"].as_u64().unwrap_or(0),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_approve_apply_then_rollback_restores_netbox() {
    let rig = synced_rig(21).await;
    let mut store = rig.store();
    let before = state(&rig);
    let report = plan(&rig, &mut store).await;
    let batch = report
        .batch_id
        .clone()
        .expect("the seeded NetBox differs from the inventory");
    assert!(
        report.creates > 0 && report.updates > 0 && report.deletes == 1,
        "{report:?}"
    );
    assert!(
        report.untagged.is_empty(),
        "hand-made VMs match nothing in the inventory: {report:?}"
    );

    // Planning again with nothing changed adds nothing.
    let again = plan(&rig, &mut store).await;
    assert_eq!(again.batch_id, None, "{again:?}");
    assert_eq!(
        again.already_open,
        report.creates + report.updates + report.deletes
    );

    // Reject one update: it must never be written.
    let items = store.batch_items(&batch).unwrap();
    // An update of an object no other item of the batch touches (a VM may also get its
    // primary IP set by another item).
    let key_of = |i: &infradeck_core::store::ApprovalItem| {
        let changes: Value = serde_json::from_str(i.proposed_changes.as_deref().unwrap()).unwrap();
        changes["key"].as_str().unwrap().to_string()
    };
    let rejected = items
        .iter()
        .filter(|i| i.action == ApprovalAction::Update)
        .find(|i| items.iter().filter(|o| key_of(o) == key_of(i)).count() == 1)
        .unwrap()
        .clone();
    let at = infradeck_core::time::now();
    store
        .write(|w| {
            w.review_items(
                &batch,
                &[rejected.id],
                &Review {
                    from: ApprovalStatus::Pending,
                    to: ApprovalStatus::Rejected,
                    reviewer: "oncall",
                    comment: Some("not now"),
                    at: &at,
                },
            )
        })
        .unwrap();
    approve_all(&mut store, &batch);
    let changes_before = rig.sims.netbox.change_count();
    let applied =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(
        (applied.conflicts, applied.failed),
        (0, 0),
        "{:#?}",
        applied.lines
    );
    assert_eq!(
        (applied.conflicts, applied.failed),
        (0, 0),
        "{:#?}",
        applied.lines
    );
    assert_eq!(applied.applied, items.len() - 1);

    // NetBox holds exactly the approved changes and nothing else.
    let after = state(&rig);
    let mut expected = before.clone();
    for item in store.batch_items(&batch).unwrap() {
        let changes: Value =
            serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
        let key = format!(
            "{}:{}",
            changes["endpoint"].as_str().unwrap(),
            changes["object"].as_str().unwrap()
        );
        if !STATE.contains(&changes["endpoint"].as_str().unwrap()) {
            continue; // a prerequisite (the provenance field) outside what `state` reads
        }
        match (item.approval_status, item.action) {
            (ApprovalStatus::Rejected, _) => {
                // Its fields stay as they were (another item, such as an address made this
                // VM's primary IP, may touch other fields of the same object).
                for field in changes["fields"].as_object().unwrap().keys() {
                    assert_eq!(
                        after[&key][field], before[&key][field],
                        "a rejected item was written: {field}"
                    );
                }
                expected.insert(key.clone(), after[&key].clone());
            }
            (ApprovalStatus::Applied, ApprovalAction::Delete) => {
                assert!(!after.contains_key(&key), "{key} deleted");
                expected.remove(&key);
            }
            (ApprovalStatus::Applied, _) => {
                let object = after
                    .get(&key)
                    .unwrap_or_else(|| panic!("{key} is in NetBox"));
                for (field, change) in changes["fields"].as_object().unwrap() {
                    if matches!(
                        field.as_str(),
                        "cluster" | "type" | "virtual_machine" | "primary_ip4" | "primary_ip6"
                    ) || change["to"].get("$lookup").is_some()
                    {
                        continue; // written as a lookup, stored as an id
                    }
                    if field == "mac_address" {
                        let stored = object[field].as_str().unwrap().to_lowercase();
                        assert_eq!(Some(stored.as_str()), change["to"].as_str());
                        continue;
                    }
                    assert_eq!(
                        object[field]
                            .as_f64()
                            .map(|f| Value::from(f as i64))
                            .unwrap_or(object[field].clone()),
                        change["to"],
                        "{key}.{field}"
                    );
                }
                assert!(
                    item.rollback_data
                        .as_deref()
                        .unwrap()
                        .contains("request_id")
                );
                assert!(item.netbox_object_id.is_some());
                expected.insert(key.clone(), object.clone());
            }
            other => panic!("unexpected item state {other:?}"),
        }
    }
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, object) in &expected {
        assert_eq!(
            &after[key], object,
            "{key}: nothing outside the approved items changed"
        );
    }
    for (name, object) in &after {
        if name.contains("manual-") {
            assert_eq!(
                Some(object),
                before.get(name),
                "untagged objects are never touched"
            );
        }
    }
    let messages: Vec<Value> = rig
        .sims
        .netbox
        .changes()
        .into_iter()
        .skip(changes_before)
        .collect();
    // One change per item, and one more per new interface (its primary MAC, set once the MAC
    // object exists) and per new address that becomes its VM's primary IP.
    let primary_macs = messages
        .iter()
        .filter(|c| {
            c["changed_object_type"] == "virtualization.vminterface"
                && c["action"]["value"] == "update"
        })
        .count();
    assert!(primary_macs > 0);
    let primary_ips = store
        .batch_items(&batch)
        .unwrap()
        .iter()
        .filter(|i| {
            i.approval_status == ApprovalStatus::Applied
                && i.proposed_changes
                    .as_deref()
                    .unwrap()
                    .contains("\"primary_of\":{\"field\"")
        })
        .count();
    assert!(primary_ips > 0);
    assert_eq!(messages.len(), applied.applied + primary_macs + primary_ips);
    for iface in rig.sims.netbox.snapshot(IFACES).into_values() {
        if iface["tags"].as_array().is_some_and(|t| !t.is_empty()) {
            assert!(iface["primary_mac_address"].is_u64(), "{iface}");
        }
    }
    assert!(
        messages
            .iter()
            .all(|c| c["message"].as_str().unwrap().contains(&batch)),
        "every write names the batch"
    );
    assert!(
        messages.iter().all(|c| c["message"]
            .as_str()
            .unwrap()
            .ends_with("approved by oncall")),
        "and who approved it: {}",
        messages[0]["message"]
    );

    // A plan after apply proposes only what is still open (the rejected update is not re-proposed
    // as new, it is a fresh pending proposal of the same change).
    let after_apply = plan(&rig, &mut store).await;
    assert!(
        after_apply.creates == 0 && after_apply.deletes == 0,
        "{after_apply:?}"
    );

    let rolled = infradeck_core::netbox::rollback(&mut store, &client(&rig.config), &batch)
        .await
        .unwrap();
    // The provenance field stays: VMs tagged before this batch still hold it.
    assert_eq!(
        (rolled.conflicts, rolled.failed),
        (1, 0),
        "{:#?}",
        rolled.lines
    );
    assert!(
        rolled
            .lines
            .iter()
            .any(|l| l.contains("infradeck_provenance") && l.contains("still used by tagged")),
        "{:#?}",
        rolled.lines
    );
    assert_eq!(rolled.applied, applied.applied - 1);
    let restored = state(&rig);
    assert_eq!(
        restored.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "the same objects exist again"
    );
    for (key, object) in &before {
        assert_eq!(
            &restored[key], object,
            "rollback restores {key} field by field"
        );
    }

    // The audit trail says who planned, reviewed, applied and rolled back the batch, and the
    // changes digest shows it as one NetBox batch line.
    let events: Vec<(String, String)> = store
        .history(None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|h| h.change_type.as_deref() == Some("netbox_batch"))
        .filter(|h| {
            h.new_value
                .as_deref()
                .is_some_and(|v| v.contains(batch.as_str()))
        })
        .map(|h| {
            (
                h.operation.unwrap_or_default(),
                h.performed_by.unwrap_or_default(),
            )
        })
        .collect();
    let operations: Vec<&str> = events.iter().rev().map(|(op, _)| op.as_str()).collect();
    assert_eq!(operations.first(), Some(&"plan"), "{events:?}");
    assert!(operations.contains(&"review"), "{events:?}");
    assert!(
        operations.contains(&"applied") || operations.contains(&"partial"),
        "{events:?}"
    );
    // Partly: the provenance field stays for the VMs tagged before this batch.
    assert_eq!(operations.last(), Some(&"partial"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|(op, who)| op == "review" && who == "oncall"),
        "{events:?}"
    );
    let digest = infradeck_core::changes::digest(
        &store,
        "2000-01-01 00:00:00",
        "2999-01-01 00:00:00",
        &infradeck_core::machines::HealthRules::default(),
    )
    .unwrap();
    let line = digest
        .changes
        .iter()
        .find(|c| c.subject.name() == format!("NetBox batch {batch}"))
        .expect("the batch is in the digest");
    assert!(
        line.details.iter().any(|d| d.starts_with("planned by")),
        "{line:?}"
    );
    assert!(
        line.details
            .iter()
            .any(|d| d.starts_with("partial by") && d.contains("rolled_back")),
        "{line:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_in_netbox_after_the_plan_becomes_a_conflict() {
    let rig = synced_rig(22).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    approve_all(&mut store, &batch);
    let update = store
        .batch_items(&batch)
        .unwrap()
        .into_iter()
        .find(|i| i.action == ApprovalAction::Update)
        .unwrap();
    let id = update.netbox_object_id.unwrap() as u64;
    assert!(
        rig.sims
            .netbox
            .edit(VMS, id, "vcpus", serde_json::json!(64))
    );
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(report.conflicts, 1, "{:#?}", report.lines);
    let item = store.approval_item(update.id).unwrap().unwrap();
    assert_eq!(item.approval_status, ApprovalStatus::Conflict);
    let changes: Value = serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
    assert_eq!(
        changes["conflict"]["netbox_now"]["vcpus"], 64,
        "both versions are shown: {changes}"
    );
    assert_eq!(
        rig.sims.netbox.snapshot(VMS)[&id]["vcpus"],
        64,
        "the conflicting item was not written"
    );
}

/// Approval is of what was reviewed: an item whose request changed in the database after it was
/// approved (a tampered row, a re-plan writing over it) is refused as a conflict with the
/// reason, the items that need it are not sent, the rest land, and the dry run says so first.
#[tokio::test(flavor = "multi_thread")]
async fn an_item_changed_after_approval_is_refused_and_what_needs_it_is_not_sent() {
    let rig = synced_rig(26).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    let items = store.batch_items(&batch).unwrap();
    assert!(
        items
            .iter()
            .all(|i| i.request_sha256.as_deref() == Some(i.digest().as_str())),
        "each item keeps the digest of its request as planned"
    );
    approve_all(&mut store, &batch);
    let items = store.batch_items(&batch).unwrap();
    assert!(
        items.iter().all(|i| i.approved_sha256 == i.request_sha256),
        "approving records the digest"
    );
    let changes = |i: &infradeck_core::store::ApprovalItem| -> Value {
        serde_json::from_str(i.proposed_changes.as_deref().unwrap()).unwrap()
    };
    // A VM create that interfaces need, and an update.
    let create = items
        .iter()
        .find(|i| {
            i.action == ApprovalAction::Create && changes(i)["endpoint"] == VMS && {
                let key = changes(i)["key"].clone();
                items.iter().any(|o| {
                    changes(o)["needs"]
                        .as_array()
                        .is_some_and(|n| n.contains(&key))
                })
            }
        })
        .expect("a VM create with interfaces")
        .clone();
    let update = items
        .iter()
        .find(|i| i.action == ApprovalAction::Update)
        .expect("an update")
        .clone();
    let key = changes(&create)["key"].clone();
    let children: Vec<i64> = items
        .iter()
        .filter(|o| {
            changes(o)["needs"]
                .as_array()
                .is_some_and(|n| n.contains(&key))
        })
        .map(|o| o.id)
        .collect();
    let name = changes(&create)["body"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let conn = rusqlite::Connection::open(rig.dir.path().join("inventory.db")).unwrap();
    let tamper = |id: i64, path: &str, value: Value| {
        let item = store.approval_item(id).unwrap().unwrap();
        let mut c = changes(&item);
        *c.pointer_mut(path).unwrap() = value;
        conn.execute(
            "UPDATE netbox_sync_approvals SET proposed_changes = ?1 WHERE id = ?2",
            rusqlite::params![c.to_string(), id],
        )
        .unwrap();
    };
    tamper(
        create.id,
        "/body/name",
        Value::from(format!("{name}-tampered")),
    );
    let field = changes(&update)["fields"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    tamper(
        update.id,
        &format!("/fields/{field}/to"),
        serde_json::json!(999),
    );
    // Outcome keys apply adds later are not part of what was reviewed.
    let other = items
        .iter()
        .find(|i| i.id != create.id && i.id != update.id && !children.contains(&i.id))
        .unwrap();
    let mut noted = changes(other);
    noted["result"] = serde_json::json!({"note": "from an earlier run"});
    conn.execute(
        "UPDATE netbox_sync_approvals SET proposed_changes = ?1 WHERE id = ?2",
        rusqlite::params![noted.to_string(), other.id],
    )
    .unwrap();

    let dry = infradeck_core::netbox::apply(
        &mut store,
        &client(&rig.config),
        &batch,
        &ApplyOptions {
            dry_run: true,
            ..options()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        dry.lines
            .iter()
            .filter(|l| l.contains("would be refused as a conflict"))
            .count(),
        2,
        "{:#?}",
        dry.lines
    );
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(report.conflicts, 2, "{:#?}", report.lines);
    for id in [create.id, update.id] {
        let item = store.approval_item(id).unwrap().unwrap();
        assert_eq!(item.approval_status, ApprovalStatus::Conflict);
        assert!(
            changes(&item)["conflict"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("changed after it was approved")),
            "{}",
            changes(&item)
        );
    }
    for id in &children {
        let item = store.approval_item(*id).unwrap().unwrap();
        assert_eq!(item.approval_status, ApprovalStatus::Failed, "not sent");
    }
    assert_eq!(
        store
            .approval_item(other.id)
            .unwrap()
            .unwrap()
            .approval_status,
        ApprovalStatus::Applied,
        "an outcome note is not a change of the request"
    );
    let vms = rig.sims.netbox.snapshot(VMS);
    assert!(
        !vms.values().any(|v| v["name"]
            .as_str()
            .is_some_and(|n| n == name || n == format!("{name}-tampered"))),
        "neither the approved nor the tampered VM was created"
    );
    assert!(report.applied > 10, "the rest landed: {}", report.applied);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_half_way_then_apply_again_writes_each_item_once() {
    let rig = synced_rig(23).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    let approved = approve_all(&mut store, &batch);
    let start = rig.sims.netbox.change_count();
    rig.sims.faults(SimKind::Netbox).push(
        FaultRule::new(FaultAction::Status(500))
            .after(6)
            .times(3)
            .on_path("virtual-machines"),
    );
    let first = infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
        .await
        .unwrap();
    assert!(
        first.failed > 0,
        "the injected failures hit: {:#?}",
        first.lines
    );
    let second =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(second.failed, 0, "{:#?}", second.lines);
    assert_eq!(first.applied + second.applied, approved);
    let writes = writes_per_object(&rig, start);
    assert_eq!(writes.len(), approved - primary_items(&store, &batch));
    assert!(
        writes.values().all(|n| *n == 1),
        "every object written once: {writes:?}"
    );
    assert!(
        store
            .batch_items(&batch)
            .unwrap()
            .iter()
            .all(|i| i.approval_status == ApprovalStatus::Applied)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_applying_one_batch_write_each_item_once() {
    let rig = synced_rig(24).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    let approved = approve_all(&mut store, &batch);
    let start = rig.sims.netbox.change_count();
    rig.sims
        .faults(SimKind::Netbox)
        .set_latency(Duration::from_millis(3));
    let config = rig.dir.path().join("config.toml");
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_infradeck"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "netbox",
                "apply",
                &batch,
            ])
            .env("HOME", rig.dir.path())
            .env("XDG_STATE_HOME", rig.dir.path().join("state"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = tokio::task::spawn_blocking(move || {
        (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    assert!(
        a.status.success() && b.status.success(),
        "{} / {}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    let writes = writes_per_object(&rig, start);
    assert_eq!(
        writes.values().sum::<usize>(),
        approved - primary_items(&store, &batch),
        "{writes:?}"
    );
    assert!(writes.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_write_is_reported_for_that_item_and_the_rest_land() {
    let rig = synced_rig(25).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    // Rename a cluster NetBox already had, after the plan: the VMs planned into it then name a
    // cluster NetBox does not have, and NetBox refuses them in the middle of their chunk.
    let (cluster_id, cluster) = rig
        .sims
        .netbox
        .snapshot(CLUSTERS)
        .into_iter()
        .next()
        .unwrap();
    let cluster_name = cluster["name"].as_str().unwrap().to_string();
    let items = store.batch_items(&batch).unwrap();
    assert!(items.iter().any(|i| {
        i.action == ApprovalAction::Create
            && i.proposed_changes.as_deref().is_some_and(|c| {
                c.contains(&format!("\"cluster\":{{\"name\":\"{cluster_name}\"}}"))
            })
    }));
    assert!(
        rig.sims
            .netbox
            .edit(CLUSTERS, cluster_id, "name", Value::from("renamed-by-hand"))
    );
    approve_all(&mut store, &batch);
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert!(
        report.failed > 0 && report.applied > 0,
        "{:#?}",
        report.lines
    );
    let failed: Vec<_> = store
        .batch_items(&batch)
        .unwrap()
        .into_iter()
        .filter(|i| i.approval_status == ApprovalStatus::Failed)
        .collect();
    assert_eq!(failed.len(), report.failed);
    // The VMs name the missing cluster; their interfaces and MACs then find no parent.
    for item in failed
        .iter()
        .filter(|i| i.netbox_object_type.as_deref() != Some(VMS))
    {
        let changes: Value =
            serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
        let error = changes["error"].as_str().unwrap();
        // Failed at once, naming the parent, with no request sent.
        assert!(error.starts_with("not sent: it needs #"), "{error}");
    }
    for item in failed
        .into_iter()
        .filter(|i| i.netbox_object_type.as_deref() == Some(VMS))
    {
        let changes: Value =
            serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
        let error = changes["error"].as_str().unwrap();
        assert!(
            error.contains("NetBox refused it") && error.contains("cluster"),
            "the field is named: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_too_many_deletes_needs_allow_deletes_and_dry_run_writes_nothing() {
    let rig = synced_rig(26).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    approve_all(&mut store, &batch);
    let strict = ApplyOptions {
        max_deletes: 0,
        ..ApplyOptions::default()
    };
    let err = infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &strict)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--allow-deletes 1"), "{err}");
    let start = rig.sims.netbox.change_count();
    let dry = ApplyOptions {
        dry_run: true,
        ..strict.clone()
    };
    let preview = infradeck_core::netbox::apply(
        &mut store,
        &client(&rig.config),
        &batch,
        &ApplyOptions {
            allow_deletes: Some(1),
            ..dry
        },
    )
    .await
    .unwrap();
    assert!(
        preview
            .lines
            .iter()
            .any(|l| l.starts_with('#') && l.contains("POST ") && l.contains("changelog_message")),
        "{:#?}",
        preview.lines
    );
    assert!(preview.lines.iter().any(|l| l.contains("DELETE ")));
    assert_eq!(
        rig.sims.netbox.change_count(),
        start,
        "a dry run writes nothing"
    );
    let report = infradeck_core::netbox::apply(
        &mut store,
        &client(&rig.config),
        &batch,
        &ApplyOptions {
            allow_deletes: Some(1),
            ..strict
        },
    )
    .await
    .unwrap();
    assert_eq!(report.failed + report.conflicts, 0, "{:#?}", report.lines);
}

fn infradeck(rig: &Rig, args: &[&str]) -> std::process::Output {
    infradeck_with(rig, args, &[])
}

/// `infradeck` with these environment variables set as well.
fn infradeck_with(rig: &Rig, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let config = rig.dir.path().join("config.toml");
    std::process::Command::new(env!("CARGO_BIN_EXE_infradeck"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("HOME", rig.dir.path())
        .env("XDG_STATE_HOME", rig.dir.path().join("state"))
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_plans_reviews_approves_by_range_and_applies() {
    let rig = synced_rig(27).await;
    let run = |args: Vec<String>| {
        let rig = &rig;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| infradeck(rig, &args))
    };
    let out = run(vec!["netbox".into(), "plan".into()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let batch = text
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    assert!(batch.starts_with("nb-"), "{text}");
    let again = run(vec!["netbox".into(), "plan".into()]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing new to propose"));

    // Items are numbered within their batch, from 1, as review shows them.
    let items = rig.store().batch_items(&batch).unwrap();
    let (first, last) = (1, 3);
    let out = run(vec![
        "netbox".into(),
        "reject".into(),
        batch.clone(),
        "4".into(),
    ]);
    assert!(
        !out.status.success(),
        "a rejection without --reason is refused"
    );
    let out = run(vec![
        "netbox".into(),
        "reject".into(),
        batch.clone(),
        "4".into(),
        "--reason".into(),
        "wrong site".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Approved over SSH through sudo: the review names the person and the key.
    let range = format!("{first}-{last}");
    let out = tokio::task::block_in_place(|| {
        infradeck_with(
            &rig,
            &["netbox", "approve", &batch, &range],
            &[
                ("SUDO_USER", "bob"),
                (
                    "SSH_AUTH_INFO_0",
                    "publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBtc0npmBh89MuVOIqbnc3Skwo8DsSzuPnM/LGT+W+v",
                ),
            ],
        )
    });
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 items approved"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(vec!["netbox".into(), "review".into(), batch.clone()]);
    let review = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        review.contains("[rejected: wrong site]")
            && review.contains("[approved]")
            && review.contains(" → "),
        "{review}"
    );
    let kinds = review.lines().next().unwrap_or_default();
    assert!(
        kinds.contains(" items: ") && kinds.contains("virtualization/virtual-machines "),
        "counts by object type first: {kinds}"
    );
    let out = run(vec![
        "netbox".into(),
        "review".into(),
        batch.clone(),
        "--kind".into(),
        "virtual-machines".into(),
    ]);
    let vms = String::from_utf8_lossy(&out.stdout).to_string();
    let listed: Vec<&str> = vms.lines().filter(|l| l.starts_with('#')).collect();
    assert!(!listed.is_empty(), "{vms}");
    assert!(
        listed
            .iter()
            .all(|l| l.contains(" virtualization/virtual-machines ")),
        "{vms}"
    );
    assert!(listed.len() < review.lines().filter(|l| l.starts_with('#')).count());
    let out = run(vec![
        "netbox".into(),
        "review".into(),
        batch.clone(),
        "--kind".into(),
        "cable".into(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success()
            && err.contains("no items of type `cable`")
            && err.contains("virtualization/virtual-machines"),
        "{err}"
    );
    assert_eq!(
        review
            .lines()
            .filter(|l| l.contains("approved by")
                && l.contains(
                    "sudo by bob, key SHA256:qfe+hvAznwSvcFRRyXvI4giiAXdDDi3liJRWOmccHsw)"
                )
                && l.contains(" as sha256 "))
            .count(),
        3,
        "{review}"
    );
    let out = run(vec![
        "netbox".into(),
        "apply".into(),
        batch.clone(),
        "--dry-run".into(),
    ]);
    let dry = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(dry.contains("dry run: 3 items"), "{dry}");
    // Grouped by kind in the order apply sends them, each group under its count.
    let headers: Vec<&str> = dry.lines().filter(|l| l.starts_with("== ")).collect();
    assert!(!headers.is_empty(), "{dry}");
    let counted: usize = headers
        .iter()
        .filter_map(|h| {
            h.split(": ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(counted, 3, "{dry}");
    let out = run(vec!["netbox".into(), "apply".into(), batch.clone()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 applied, 0 conflicts, 0 failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(vec![
        "--read-only".into(),
        "netbox".into(),
        "rollback".into(),
        batch.clone(),
    ]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("read-only"));
    let out = run(vec!["netbox".into(), "rollback".into(), batch.clone()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 rolled back"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(vec!["netbox".into(), "apply".into(), batch.clone()]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to apply"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A conflict ends apply with exit code 4, and review says why.
    let (number, update) = items
        .iter()
        .enumerate()
        .find(|(_, i)| i.action == ApprovalAction::Update)
        .map(|(n, i)| (n + 1, i.clone()))
        .unwrap();
    let out = run(vec![
        "netbox".into(),
        "approve".into(),
        batch.clone(),
        number.to_string(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 items approved"));
    assert!(rig.sims.netbox.edit(
        VMS,
        update.netbox_object_id.unwrap() as u64,
        "vcpus",
        Value::from(64)
    ));
    let out = run(vec!["netbox".into(), "apply".into(), batch.clone()]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(vec!["netbox".into(), "review".into(), batch.clone()]);
    let review = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        review.contains(&format!("#{number} ")) && review.contains("conflict: NetBox changed"),
        "{review}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_is_reported_as_an_authentication_problem_and_not_retried() {
    let rig = synced_rig(28).await;
    let token_file = rig.config.netbox.as_ref().map(|n| match &n.token {
        infradeck_core::config::SecretRef::File(path) => path.clone(),
        other => panic!("the rig's token is {other:?}"),
    });
    std::fs::write(
        token_file.unwrap(),
        "0123456789abcdef0123456789abcdef01234567\n",
    )
    .unwrap();
    let before = rig.sims.faults(SimKind::Netbox).requests();
    let out = tokio::task::block_in_place(|| infradeck(&rig, &["netbox", "plan"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authentication failed") && stderr.contains("403"),
        "{stderr}"
    );
    assert_eq!(
        rig.sims.faults(SimKind::Netbox).requests() - before,
        1,
        "a 403 is not retried"
    );
}

/// `review BATCH | head`: the pipe closes before infradeck writes; it ends quietly (by SIGPIPE
/// for a read-only command, exit 141 for one that writes), never with a panic. Without USER and
/// LOGNAME the planner is still named (from the uid).
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_ends_commands_quietly_and_a_reviewer_without_user_is_named() {
    use std::os::unix::process::ExitStatusExt;
    let rig = synced_rig(28).await;
    let config = rig.dir.path().join("config.toml");
    let run_closed = |args: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_infradeck"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("HOME", rig.dir.path())
            .env("XDG_STATE_HOME", rig.dir.path().join("state"))
            .env_remove("USER")
            .env_remove("LOGNAME")
            .env_remove("USERNAME")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    };
    let plan = tokio::task::block_in_place(|| run_closed(&["netbox", "plan"]));
    assert_eq!(plan.status.code(), Some(141), "{plan:?}");
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let store = rig.store();
    let batch = store.batches().unwrap()[0].batch_id.clone();
    let planned_by = store.batches().unwrap()[0].planned_by.clone().unwrap();
    assert!(
        !planned_by.is_empty() && planned_by != "unknown",
        "the planner is named from the uid: {planned_by}"
    );
    let review = tokio::task::block_in_place(|| run_closed(&["netbox", "review", &batch]));
    const SIGPIPE: i32 = 13;
    assert_eq!(review.status.signal(), Some(SIGPIPE), "{review:?}");
    assert!(!String::from_utf8_lossy(&review.stderr).contains("panicked"));
}

/// One command to a service over the rig's database, and the event that answers it.
async fn ask(
    rig: &Rig,
    read_only: bool,
    command: infradeck_core::app::Command,
) -> infradeck_core::app::Event {
    use infradeck_core::app::{Event, Service, ServiceOptions};
    let (service, mut link) = Service::start(
        rig.dir.path().join("inventory.db"),
        &rig.config,
        &ServiceOptions {
            allow_mass_removal: false,
            read_only,
        },
    );
    assert!(link.send(command));
    let answer = loop {
        let event = tokio::time::timeout(Duration::from_secs(60), link.events.recv())
            .await
            .expect("answered within a minute")
            .expect("the service runs");
        if matches!(
            event,
            Event::Netbox { .. } | Event::Refused { .. } | Event::BatchEnded { .. }
        ) {
            break event;
        }
    };
    service.shutdown("test over", None).await;
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_service_refuses_what_writes_and_still_dry_runs() {
    use infradeck_core::app::{Command, Event, NetboxReport, NetboxRequest};
    let rig = synced_rig(61).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.expect("a batch");
    approve_all(&mut store, &batch);
    drop(store);
    let apply = |dry_run| {
        Command::Netbox(NetboxRequest::Apply {
            batch_id: batch.clone(),
            dry_run,
            allow_deletes: Some(u32::MAX),
        })
    };
    for refused in [
        apply(false),
        Command::Netbox(NetboxRequest::Plan),
        Command::Netbox(NetboxRequest::Rollback {
            batch_id: batch.clone(),
        }),
        Command::Sync {
            sources: vec![rig.source("vcenter")],
        },
    ] {
        let what = format!("{refused:?}");
        match ask(&rig, true, refused).await {
            Event::Refused { reason } => assert!(reason.starts_with("read-only: "), "{reason}"),
            other => panic!("{what} was carried out read-only: {other:?}"),
        }
    }
    // The dry run reads only, so it runs read-only, and says what apply would send.
    match ask(&rig, true, apply(true)).await {
        Event::Netbox {
            result: Ok(NetboxReport::DryRun(report)),
            ..
        } => assert!(
            !report.lines.is_empty() && report.applied == 0,
            "{report:?}"
        ),
        other => panic!("the dry run: {other:?}"),
    }
    let items = rig.store().batch_items(&batch).unwrap();
    assert!(
        items
            .iter()
            .all(|i| i.approval_status == ApprovalStatus::Approved),
        "nothing was applied"
    );
}

/// An address two running VMs claim is not guessed: one alternative per VM, marked as a
/// choice. Approving the whole batch passes them by, approving both is refused as a conflict
/// with neither written, approving one lands that one; the primary IP waits for the decision.
#[tokio::test(flavor = "multi_thread")]
async fn an_address_two_machines_claim_is_a_choice_for_a_person() {
    use infradeck_sim::estate::PowerState;
    let rig = synced_rig(31).await;
    let (address, owners) = {
        let mut estate = rig.sims.estate.write().unwrap();
        let on: Vec<usize> = (0..estate.vms.len())
            .filter(|&i| {
                estate.vms[i].power_state == PowerState::On
                    && estate.vms[i].nics.first().is_some_and(|n| n.ip.is_some())
            })
            .take(2)
            .collect();
        let address = estate.vms[on[0]].nics[0].ip.clone().unwrap();
        estate.vms[on[1]].nics[0].ip = Some(address.clone());
        let mut owners = [
            estate.vms[on[0]].hostname.clone(),
            estate.vms[on[1]].hostname.clone(),
        ];
        owners.sort();
        (address, owners)
    };
    assert!(
        rig.run(&["vcenter"])
            .await
            .iter()
            .all(|o| o.status == RunStatus::Success)
    );
    let mut store = rig.store();
    let choices = |store: &Store, batch: &str| -> Vec<(i64, Value)> {
        store
            .batch_items(batch)
            .unwrap()
            .into_iter()
            .filter_map(|i| {
                let changes: Value = serde_json::from_str(i.proposed_changes.as_deref()?).ok()?;
                (!changes["choice"].is_null()).then_some((i.id, changes))
            })
            .collect()
    };
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    let alternatives = choices(&store, &batch);
    assert_eq!(alternatives.len(), 2, "one per VM: {alternatives:#?}");
    for (_, changes) in &alternatives {
        assert_eq!(changes["choice"]["group"], format!("ip:{address}"));
        assert_eq!(changes["choice"]["claimed_by"], serde_json::json!(owners));
        assert!(
            changes.get("primary_of").is_none(),
            "no primary yet: {changes}"
        );
    }
    let on: Vec<&str> = alternatives
        .iter()
        .map(|(_, c)| c["on"].as_str().unwrap())
        .collect();
    assert!(
        owners
            .iter()
            .all(|o| on.iter().any(|on| on.starts_with(o.as_str()))),
        "{on:?}"
    );

    // Approve everything: the alternatives stay pending and nothing holds the address.
    let outcome = infradeck_core::app::review(
        &mut store,
        &batch,
        &[],
        ApprovalStatus::Approved,
        "oncall",
        None,
    )
    .unwrap();
    assert_eq!(outcome.left_to_choose, 2);
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(report.failed, 0, "{:#?}", report.lines);
    let holds = |rig: &Rig| {
        rig.sims
            .netbox
            .snapshot(IPS)
            .values()
            .filter(|ip| {
                ip["address"]
                    .as_str()
                    .is_some_and(|a| a.split('/').next() == Some(address.as_str()))
            })
            .count()
    };
    assert_eq!(holds(&rig), 0);
    for (id, _) in &alternatives {
        let item = store.approval_item(*id).unwrap().unwrap();
        assert_eq!(item.approval_status, ApprovalStatus::Pending);
    }

    // Both approved: no decision, so neither is written.
    let ids: Vec<i64> = alternatives.iter().map(|(id, _)| *id).collect();
    infradeck_core::app::review(
        &mut store,
        &batch,
        &ids,
        ApprovalStatus::Approved,
        "oncall",
        None,
    )
    .unwrap();
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(report.conflicts, 2, "{:#?}", report.lines);
    assert!(
        report.lines.iter().any(|l| l.contains("reject all but")),
        "{:#?}",
        report.lines
    );
    assert_eq!(holds(&rig), 0);

    // A fresh plan, one approved and the other rejected: that one lands.
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    let alternatives = choices(&store, &batch);
    assert_eq!(alternatives.len(), 2, "{alternatives:#?}");
    let (keep, drop) = (&alternatives[0], &alternatives[1]);
    infradeck_core::app::review(
        &mut store,
        &batch,
        &[keep.0],
        ApprovalStatus::Approved,
        "oncall",
        None,
    )
    .unwrap();
    infradeck_core::app::review(
        &mut store,
        &batch,
        &[drop.0],
        ApprovalStatus::Rejected,
        "oncall",
        Some("the other one holds it"),
    )
    .unwrap();
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(
        (report.applied, report.conflicts, report.failed),
        (1, 0, 0),
        "{:#?}",
        report.lines
    );
    assert_eq!(holds(&rig), 1);
}

/// A MAC NetBox has on another VM than the inventory says is reported with both places, never
/// created a second time nor moved (NetBox refuses to move a MAC that is an interface's
/// primary: a person releases it first).
#[tokio::test(flavor = "multi_thread")]
async fn a_mac_netbox_has_on_another_machine_is_reported_not_moved() {
    let rig = synced_rig(33).await;
    let mut store = rig.store();
    let batch = plan(&rig, &mut store).await.batch_id.unwrap();
    approve_all(&mut store, &batch);
    let report =
        infradeck_core::netbox::apply(&mut store, &client(&rig.config), &batch, &options())
            .await
            .unwrap();
    assert_eq!(report.failed, 0, "{:#?}", report.lines);
    let ifaces = rig.sims.netbox.snapshot(IFACES);
    let vms = rig.sims.netbox.snapshot(VMS);
    let macs = rig.sims.netbox.snapshot(MACS);
    let (mac_id, mac) = macs
        .iter()
        .find(|(_, m)| m["assigned_object_type"] == "virtualization.vminterface")
        .map(|(id, m)| (*id, m.clone()))
        .unwrap();
    let on = mac["assigned_object_id"].as_u64().unwrap();
    let vm_of = |iface: u64| ifaces[&iface]["virtual_machine"].as_u64().unwrap();
    let (&other, _) = ifaces
        .iter()
        .find(|(_, i)| i["virtual_machine"].as_u64() != Some(vm_of(on)))
        .unwrap();
    assert!(
        rig.sims
            .netbox
            .edit(MACS, mac_id, "assigned_object_id", serde_json::json!(other))
    );
    let before = macs.len();
    let again = plan(&rig, &mut store).await;
    let text = mac["mac_address"].as_str().unwrap().to_lowercase();
    let name = |iface: u64| {
        format!(
            "{} {}",
            vms[&vm_of(iface)]["name"].as_str().unwrap(),
            ifaces[&iface]["name"].as_str().unwrap()
        )
    };
    let expected = format!(
        "MAC {text}: NetBox has it on {}, the inventory on {}",
        name(other),
        name(on)
    );
    assert!(
        again.unmapped.iter().any(|l| l.starts_with(&expected)),
        "{expected} in {:#?}",
        again.unmapped
    );
    let items = again
        .batch_id
        .map(|b| store.batch_items(&b).unwrap())
        .unwrap_or_default();
    assert!(
        !items
            .iter()
            .any(|i| i.netbox_object_type.as_deref() == Some(MACS)),
        "no MAC created or moved: {items:#?}"
    );
    assert_eq!(rig.sims.netbox.snapshot(MACS).len(), before);
}
