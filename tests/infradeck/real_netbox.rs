//! The real NetBox 4.7.3 (PyPI, with PostgreSQL 15 and Redis 7), brought up by
//! `tests/tiers/netbox.sh` and named by `INFRADECK_REAL_NETBOX_URL` (token in
//! `INFRADECK_REAL_NETBOX_TOKEN`). The inventory comes from the simulators (vCenter, and for the
//! whole estate every source); plans are made, approved, applied and rolled back against the
//! real server.
//!
//! The tests share one NetBox: each holds a lock for its whole run and first restores NetBox to
//! the empty migrated dump (`INFRADECK_REAL_NETBOX_RESET`, ~1 s), so each starts from what a new
//! user has. Without the variables the tests skip with a reason; with
//! `INFRADECK_REQUIRE_REAL_SERVERS=1` (CI) a missing server is a failure.

use infradeck_core::config::{NetboxConfig, SecretRef};
use infradeck_core::http::RetryPolicy;
use infradeck_core::model::{ApprovalAction, ApprovalStatus, RunStatus};
use infradeck_core::netbox::{ApplyOptions, NetboxClient};
use infradeck_core::store::Store;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::common;
use common::{Rig, approve_all};

const VMS: &str = "virtualization/virtual-machines";
const CLUSTERS: &str = "virtualization/clusters";
const IFACES: &str = "virtualization/interfaces";
const MACS: &str = "dcim/mac-addresses";
const TAGS: &str = "extras/tags";
const CLUSTER_TYPES: &str = "virtualization/cluster-types";
const SITES: &str = "dcim/sites";
const DEVICES: &str = "dcim/devices";
const DEVICE_IFACES: &str = "dcim/interfaces";
const IPS: &str = "ipam/ip-addresses";
const CABLES: &str = "dcim/cables";
const EVERYTHING: [&str; 16] = [
    CABLES,
    IPS,
    MACS,
    IFACES,
    DEVICE_IFACES,
    VMS,
    DEVICES,
    CLUSTERS,
    "dcim/device-types",
    "dcim/platforms",
    "dcim/device-roles",
    "dcim/manufacturers",
    CLUSTER_TYPES,
    SITES,
    "extras/custom-fields",
    TAGS,
];

/// One test at a time owns the shared NetBox (tokio's mutex: held across awaits, and a failed
/// test does not poison it for the others).
static NETBOX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct RealNetbox {
    url: String,
    token: String,
    reset: String,
}

fn real_netbox() -> Option<RealNetbox> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("INFRADECK_REAL_NETBOX_URL"),
        var("INFRADECK_REAL_NETBOX_TOKEN"),
        var("INFRADECK_REAL_NETBOX_RESET"),
    ) {
        (Some(url), Some(token), Some(reset)) => Some(RealNetbox {
            url: url.trim_end_matches('/').to_string(),
            token,
            reset,
        }),
        _ if var("INFRADECK_REQUIRE_REAL_SERVERS").as_deref() == Some("1") => panic!(
            "INFRADECK_REAL_NETBOX_URL/_TOKEN/_RESET are not set but INFRADECK_REQUIRE_REAL_SERVERS=1: start tests/tiers/netbox.sh"
        ),
        _ => {
            eprintln!(
                "skipped: no real NetBox (run `tests/tiers/netbox.sh start DIR` and export the variables in DIR/env)"
            );
            None
        }
    }
}

impl RealNetbox {
    /// Back to the empty migrated NetBox.
    fn reset(&self) {
        let out = std::process::Command::new("sh")
            .args(["-c", &self.reset])
            .output()
            .expect("run the reset command");
        assert!(
            out.status.success(),
            "reset failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn client(&self, rig: &Rig, token: &str, site: Option<&str>) -> NetboxClient {
        let token_file = rig.dir.path().join(format!("netbox-token-{}", token.len()));
        std::fs::write(&token_file, token).unwrap();
        NetboxClient::new(
            &NetboxConfig {
                url: self.url.clone(),
                token: SecretRef::File(token_file),
                tls: Default::default(),
                tag: "infradeck".into(),
                delete_grace_days: 7,
                max_deletes: 10,
                site: site.map(str::to_string),
                reviewer: None,
                device_rules: Vec::new(),
            },
            RetryPolicy {
                max_tries: 3,
                base: Duration::from_millis(50),
                cap: Duration::from_millis(500),
            },
        )
        .unwrap()
    }

    /// Direct requests for setting up and checking (hand edits, what NetBox holds).
    async fn http(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = client
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Every object of `endpoint` (one page of up to 1000 is plenty here).
    async fn all(&self, endpoint: &str) -> Vec<Value> {
        let (status, page) = self
            .http(
                reqwest::Method::GET,
                &format!("/api/{endpoint}/?limit=1000"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["results"].as_array().cloned().unwrap_or_default()
    }

    async fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for endpoint in EVERYTHING {
            out.insert(endpoint, self.all(endpoint).await.len());
        }
        out
    }
}

async fn synced_rig(scale: usize, seed: u64) -> Rig {
    let rig = common::start_rig_with(scale, seed, false).await;
    let outcomes = rig.run(&["vcenter"]).await;
    assert!(
        outcomes.iter().all(|o| o.status == RunStatus::Success),
        "{outcomes:?}"
    );
    rig
}

async fn plan(store: &mut Store, client: &NetboxClient) -> infradeck_core::app::PlanReport {
    infradeck_core::netbox::plan(store, client, 7, "planner", chrono::Utc::now())
        .await
        .unwrap()
}

fn key_of(item: &infradeck_core::store::ApprovalItem) -> String {
    let changes: Value = serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
    changes["key"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_netbox_takes_the_whole_cycle_and_rollback_empties_it_again() {
    let Some(netbox) = real_netbox() else { return };
    let _owner = NETBOX.lock().await;
    netbox.reset();
    let rig = synced_rig(30, 41).await;
    let client = netbox.client(&rig, &netbox.token, Some("DC1 Test"));
    let mut store = rig.store();

    // The plan creates what it refers to, first.
    let report = plan(&mut store, &client).await;
    let batch = report
        .batch_id
        .clone()
        .expect("an empty NetBox needs everything");
    assert_eq!((report.updates, report.deletes), (0, 0), "{report:?}");
    let items = store.batch_items(&batch).unwrap();
    let keys: Vec<String> = items.iter().map(key_of).collect();
    assert_eq!(
        &keys[..3],
        [
            "tag:infradeck",
            "cluster-type:vmware-vsphere",
            "site:dc1-test"
        ],
        "prerequisites come first"
    );
    let approved = approve_all(&mut store, &batch);

    let applied =
        infradeck_core::netbox::apply(&mut store, &client, &batch, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        (applied.applied, applied.conflicts, applied.failed),
        (approved, 0, 0),
        "{:#?}",
        applied.lines
    );
    assert!(
        applied.requests * 5 <= approved,
        "bulk writes: {} requests for {approved} objects",
        applied.requests
    );
    let counts = netbox.counts().await;
    for (endpoint, created) in &counts {
        let planned = items
            .iter()
            .filter(|i| i.netbox_object_type.as_deref() == Some(endpoint))
            .count();
        assert_eq!(*created, planned, "{endpoint}: {counts:?}");
    }
    // NetBox shows each interface's MAC, and each VM has its cluster's site.
    let ifaces = netbox.all(IFACES).await;
    assert!(!ifaces.is_empty());
    let with_mac = ifaces
        .iter()
        .filter(|i| i["primary_mac_address"]["mac_address"].is_string())
        .count();
    assert_eq!(with_mac, netbox.all(MACS).await.len());
    for vm in netbox.all(VMS).await {
        assert_eq!(vm["site"]["slug"], "dc1-test", "{vm}");
    }

    // Nothing left to propose.
    let again = plan(&mut store, &client).await;
    assert_eq!(again.batch_id, None, "{again:?}");

    // A VM edited by hand after apply is not deleted by rollback.
    let vms = netbox.all(VMS).await;
    let edited = &vms[0];
    let (status, _) = netbox
        .http(
            reqwest::Method::PATCH,
            &format!("/api/{VMS}/{}/", edited["id"]),
            Some(json!({"memory": 123_456})),
        )
        .await;
    assert_eq!(status, 200);
    let rolled = infradeck_core::netbox::rollback(&mut store, &client, &batch)
        .await
        .unwrap();
    assert_eq!(rolled.failed, 0, "{:#?}", rolled.lines);
    let conflicts: Vec<&String> = rolled
        .lines
        .iter()
        .filter(|l| l.contains("conflict"))
        .collect();
    assert!(
        conflicts
            .iter()
            .any(|l| l.contains(edited["name"].as_str().unwrap())),
        "{conflicts:#?}"
    );
    // Its cluster is kept: NetBox refuses the delete (409), and the item's line names the VM.
    assert!(
        conflicts.iter().any(|l| l.contains(CLUSTERS)
            && l.contains("409")
            && l.contains(edited["name"].as_str().unwrap())),
        "{conflicts:#?}"
    );
    // What the kept VM uses is kept too, and said so: its cluster, the type, the site, the tag.
    for kept in ["cluster-type", "dc1-test", "infradeck"] {
        assert!(
            conflicts
                .iter()
                .any(|l| l.contains(kept) && l.contains("still used by")),
            "{kept}: {conflicts:#?}"
        );
    }
    let counts = netbox.counts().await;
    assert_eq!(counts[VMS], 1, "{counts:?}");
    assert_eq!(counts[CLUSTERS], 1, "{counts:?}");
    assert_eq!(
        (counts[TAGS], counts[CLUSTER_TYPES], counts[SITES]),
        (1, 1, 1)
    );

    // Once the hand edit is undone, rollback finishes the job: NetBox is empty again.
    let (status, _) = netbox
        .http(
            reqwest::Method::PATCH,
            &format!("/api/{VMS}/{}/", edited["id"]),
            Some(json!({"memory": edited["memory"]})),
        )
        .await;
    assert_eq!(status, 200);
    let rest = infradeck_core::netbox::rollback(&mut store, &client, &batch)
        .await
        .unwrap();
    assert_eq!((rest.conflicts, rest.failed), (0, 0), "{:#?}", rest.lines);
    let counts = netbox.counts().await;
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
    let batches = store.batches().unwrap();
    let ours = batches.iter().find(|b| b.batch_id == batch).unwrap();
    assert_eq!(ours.rolled_back as usize, approved);
    assert_eq!(ours.state.as_deref(), Some("rolled_back"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_claims_nothing_and_a_failed_parent_fails_its_children_unsent() {
    let Some(netbox) = real_netbox() else { return };
    let _owner = NETBOX.lock().await;
    netbox.reset();
    let rig = synced_rig(12, 43).await;
    let client = netbox.client(&rig, &netbox.token, None);
    let mut store = rig.store();
    let batch = plan(&mut store, &client).await.batch_id.unwrap();
    let approved = approve_all(&mut store, &batch);

    let wrong = netbox.client(
        &rig,
        "nbt_testkey0abcd.WrongSecret0000000000000000000000000000",
        None,
    );
    let err = infradeck_core::netbox::apply(&mut store, &wrong, &batch, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("403"), "{err:#}");
    let items = store.batch_items(&batch).unwrap();
    assert!(
        items
            .iter()
            .all(|i| i.approval_status == ApprovalStatus::Approved),
        "nothing claimed"
    );
    assert!(netbox.counts().await.values().all(|n| *n == 0));

    // A cluster type made by hand, after the plan, under the slug the plan creates: the type's
    // create conflicts, and every cluster, VM, interface and MAC fails without a request.
    let (status, body) = netbox
        .http(
            reqwest::Method::POST,
            &format!("/api/{CLUSTER_TYPES}/"),
            Some(json!({"name": "vSphere by hand", "slug": "vmware-vsphere"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let report =
        infradeck_core::netbox::apply(&mut store, &client, &batch, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(report.conflicts, 1, "{:#?}", report.lines);
    assert_eq!(
        report.applied, 2,
        "only what needs nothing lands (the tag, the provenance field): {:#?}",
        report.lines
    );
    assert_eq!(report.failed, approved - 3);
    for item in store.batch_items(&batch).unwrap() {
        if item.approval_status != ApprovalStatus::Failed {
            continue;
        }
        let changes: Value =
            serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
        let error = changes["error"].as_str().unwrap();
        assert!(error.starts_with("not sent: it needs #"), "{error}");
    }
    let counts = netbox.counts().await;
    assert_eq!(
        (counts[CLUSTERS], counts[VMS], counts[IFACES], counts[MACS]),
        (0, 0, 0, 0)
    );
}

/// A VM gone from vCenter is deleted from NetBox with what NetBox deletes with it (its
/// interfaces and their MACs), which the review lists; rollback brings all of it back.
async fn a_vm_delete_takes_its_interfaces_and_rollback_restores_them(
    netbox: &RealNetbox,
    rig: &Rig,
    client: &NetboxClient,
) {
    let mut store = rig.store();
    let batch = plan(&mut store, client).await.batch_id.unwrap();
    approve_all(&mut store, &batch);
    let applied =
        infradeck_core::netbox::apply(&mut store, client, &batch, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        applied.failed + applied.conflicts,
        0,
        "{:#?}",
        applied.lines
    );
    // One VM with interfaces and MACs leaves vCenter.
    let ifaces = netbox.all(IFACES).await;
    let vm_name = ifaces[0]["virtual_machine"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let before_ifaces: Vec<Value> = ifaces
        .iter()
        .filter(|i| i["virtual_machine"]["name"] == vm_name.as_str())
        .map(|i| json!([i["name"], i["primary_mac_address"]["mac_address"]]))
        .collect();
    assert!(!before_ifaces.is_empty());
    {
        let mut estate = rig.sims.estate.write().unwrap();
        let named: Vec<usize> = (0..estate.vms.len())
            .filter(|&i| estate.vms[i].hostname.eq_ignore_ascii_case(&vm_name))
            .collect();
        assert_eq!(named.len(), 1, "one VM of that name");
        // Deleted as the simulator deletes VMs (others refer to VMs by position).
        estate.vms[named[0]].deleted = true;
    }
    let outcomes = rig.run(&["vcenter"]).await;
    assert!(
        outcomes.iter().all(|o| o.status == RunStatus::Success),
        "{outcomes:?}"
    );
    let report = infradeck_core::netbox::plan(&mut store, client, 0, "planner", chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        report.deletes,
        1,
        "{report:?} {:#?}",
        store
            .batch_items(report.batch_id.as_deref().unwrap())
            .unwrap()
            .iter()
            .map(|i| i.proposed_changes.clone())
            .collect::<Vec<_>>()
    );
    let deletes = report.batch_id.unwrap();
    let item = store
        .batch_items(&deletes)
        .unwrap()
        .into_iter()
        .find(|i| i.action == infradeck_core::model::ApprovalAction::Delete)
        .unwrap();
    let changes: Value = serde_json::from_str(item.proposed_changes.as_deref().unwrap()).unwrap();
    assert_eq!(
        changes["cascade"]["interfaces"].as_array().map(Vec::len),
        Some(before_ifaces.len()),
        "the review lists what goes with the VM: {changes}"
    );
    approve_all(&mut store, &deletes);
    let deleted =
        infradeck_core::netbox::apply(&mut store, client, &deletes, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        (deleted.applied, deleted.failed, deleted.conflicts),
        (1, 0, 0),
        "{:#?}",
        deleted.lines
    );
    let gone = |list: &[Value]| {
        !list
            .iter()
            .any(|i| i["virtual_machine"]["name"] == vm_name.as_str())
    };
    assert!(
        gone(&netbox.all(IFACES).await),
        "NetBox deleted the interfaces with the VM"
    );

    let rolled = infradeck_core::netbox::rollback(&mut store, client, &deletes)
        .await
        .unwrap();
    assert_eq!(
        (rolled.applied, rolled.failed, rolled.conflicts),
        (1, 0, 0),
        "{:#?}",
        rolled.lines
    );
    let after: Vec<Value> = netbox
        .all(IFACES)
        .await
        .iter()
        .filter(|i| i["virtual_machine"]["name"] == vm_name.as_str())
        .map(|i| json!([i["name"], i["primary_mac_address"]["mac_address"]]))
        .collect();
    assert_eq!(
        after, before_ifaces,
        "interfaces and their primary MACs are back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_delete_and_its_rollback_keep_the_interfaces_on_the_real_netbox() {
    let Some(netbox) = real_netbox() else { return };
    let _owner = NETBOX.lock().await;
    netbox.reset();
    let rig = synced_rig(10, 45).await;
    let client = netbox.client(&rig, &netbox.token, None);
    a_vm_delete_takes_its_interfaces_and_rollback_restores_them(&netbox, &rig, &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_delete_and_its_rollback_keep_the_interfaces_on_the_simulator() {
    let rig = synced_rig(10, 45).await;
    let sim = RealNetbox {
        url: rig.config.netbox.as_ref().unwrap().url.clone(),
        token: rig.sims.netbox.token_v2.clone(),
        reset: String::new(),
    };
    let client = sim.client(&rig, &sim.token, None);
    a_vm_delete_takes_its_interfaces_and_rollback_restores_them(&sim, &rig, &client).await;
}

/// The same requests to the simulator (started empty) and to the real NetBox: the same status,
/// and the same keys in the answer (the simulator may leave out fields infradeck never reads,
/// listed here).
#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_answers_like_the_real_netbox() {
    let Some(netbox) = real_netbox() else { return };
    let _owner = NETBOX.lock().await;
    netbox.reset();
    let rig = common::start_rig_with(8, 44, false).await;
    let sim = RealNetbox {
        url: rig.config.netbox.as_ref().unwrap().url.clone(),
        token: rig.sims.netbox.token_v2.clone(),
        reset: String::new(),
    };
    use reqwest::Method as M;
    let steps: Vec<(&str, M, String, Option<Value>)> = vec![
        (
            "no trailing slash",
            M::GET,
            "/api/virtualization/clusters".into(),
            None,
        ),
        (
            "tag",
            M::POST,
            "/api/extras/tags/".into(),
            Some(json!({"name": "infradeck", "slug": "infradeck"})),
        ),
        (
            "cluster type",
            M::POST,
            "/api/virtualization/cluster-types/".into(),
            Some(json!({"name": "VMware vSphere", "slug": "vmware-vsphere"})),
        ),
        (
            "cluster, unknown type",
            M::POST,
            "/api/virtualization/clusters/".into(),
            Some(json!({"name": "c1", "type": {"slug": "nope"}})),
        ),
        (
            "clusters, bulk",
            M::POST,
            "/api/virtualization/clusters/".into(),
            Some(
                json!([{"name": "c1", "type": {"slug": "vmware-vsphere"}, "tags": [{"slug": "infradeck"}]}, {"name": "c2", "type": {"slug": "vmware-vsphere"}}]),
            ),
        ),
        (
            "duplicate cluster name",
            M::POST,
            "/api/virtualization/clusters/".into(),
            Some(json!({"name": "c1", "type": {"slug": "vmware-vsphere"}})),
        ),
        (
            "ambiguous cluster lookup",
            M::POST,
            "/api/virtualization/virtual-machines/".into(),
            Some(json!({"name": "vm1", "cluster": {"name": "c1"}})),
        ),
        (
            "vm without cluster or site",
            M::POST,
            "/api/virtualization/virtual-machines/".into(),
            Some(json!({"name": "vm1"})),
        ),
        (
            "vm bad status",
            M::POST,
            "/api/virtualization/virtual-machines/".into(),
            Some(json!({"name": "vm1", "cluster": {"name": "c2"}, "status": "bogus"})),
        ),
        (
            "vms, bulk with one bad",
            M::POST,
            "/api/virtualization/virtual-machines/".into(),
            Some(
                json!([{"name": "vm1", "cluster": {"name": "c2"}}, {"name": "vm2", "cluster": {"name": "nope"}}]),
            ),
        ),
        (
            "vm",
            M::POST,
            "/api/virtualization/virtual-machines/".into(),
            Some(json!({"name": "vm1", "cluster": {"name": "c2"}, "vcpus": 2})),
        ),
        (
            "vm by name, other case",
            M::GET,
            "/api/virtualization/virtual-machines/?name=VM1".into(),
            None,
        ),
        (
            "interfaces of an unknown vm",
            M::GET,
            "/api/virtualization/interfaces/?virtual_machine_id=999999".into(),
            None,
        ),
        (
            "bulk update, unknown id",
            M::PATCH,
            "/api/virtualization/virtual-machines/".into(),
            Some(json!([{"id": 999999, "memory": 1}])),
        ),
        (
            "bulk delete, unknown id",
            M::DELETE,
            "/api/virtualization/virtual-machines/".into(),
            Some(json!([{"id": 999999}])),
        ),
        (
            "protected delete",
            M::DELETE,
            "/api/virtualization/cluster-types/".into(),
            Some(json!([{"id": 1}])),
        ),
        // Cables: two devices' interfaces, one cable, then what NetBox refuses.
        (
            "setup: site",
            M::POST,
            "/api/dcim/sites/".into(),
            Some(json!({"name": "S1", "slug": "s1"})),
        ),
        (
            "setup: manufacturer",
            M::POST,
            "/api/dcim/manufacturers/".into(),
            Some(json!({"name": "M", "slug": "m"})),
        ),
        (
            "setup: device type",
            M::POST,
            "/api/dcim/device-types/".into(),
            Some(json!({"manufacturer": {"slug": "m"}, "model": "T", "slug": "t"})),
        ),
        (
            "setup: role",
            M::POST,
            "/api/dcim/device-roles/".into(),
            Some(json!({"name": "R", "slug": "r"})),
        ),
        (
            "setup: devices",
            M::POST,
            "/api/dcim/devices/".into(),
            Some(json!(["srv", "sw"].map(|name| json!({
                "name": name, "site": {"slug": "s1"}, "role": {"slug": "r"}, "device_type": {"slug": "t"}
            })))),
        ),
        (
            "setup: device interfaces",
            M::POST,
            "/api/dcim/interfaces/".into(),
            Some(json!([("srv", "vmnic0"), ("sw", "Gi1/0/1"), ("sw", "Gi1/0/2")].map(
                |(device, name)| json!({"device": {"name": device}, "name": name, "type": "1000base-t"})
            ))),
        ),
        (
            "cable, an end by lookup",
            M::POST,
            "/api/dcim/cables/".into(),
            Some(json!([{
                "a_terminations": [{"object_type": "dcim.interface", "object_id": {"name": "vmnic0"}}],
                "b_terminations": [{"object_type": "dcim.interface", "object_id": 2}],
            }])),
        ),
        (
            "cable without ends",
            M::POST,
            "/api/dcim/cables/".into(),
            Some(json!({"status": "connected"})),
        ),
        (
            "cable",
            M::POST,
            "/api/dcim/cables/".into(),
            Some(json!([{
                "a_terminations": [{"object_type": "dcim.interface", "object_id": 1}],
                "b_terminations": [{"object_type": "dcim.interface", "object_id": 2}],
                "status": "connected", "tags": [{"slug": "infradeck"}],
            }])),
        ),
        (
            "a second cable on a cabled interface",
            M::POST,
            "/api/dcim/cables/".into(),
            Some(json!([{
                "a_terminations": [{"object_type": "dcim.interface", "object_id": 1}],
                "b_terminations": [{"object_type": "dcim.interface", "object_id": 3}],
            }])),
        ),
        (
            "cables by interface",
            M::GET,
            "/api/dcim/cables/?interface_id=2".into(),
            None,
        ),
        (
            "interfaces, brief, one cabled",
            M::GET,
            "/api/dcim/interfaces/?brief=true&id=1".into(),
            None,
        ),
        // A MAC that is its interface's primary is not moved.
        (
            "mac on an interface",
            M::POST,
            "/api/dcim/mac-addresses/".into(),
            Some(json!({
                "mac_address": "00:50:56:00:00:01",
                "assigned_object_type": "dcim.interface", "assigned_object_id": 1,
            })),
        ),
        (
            "setup: primary mac",
            M::PATCH,
            "/api/dcim/interfaces/".into(),
            Some(json!([{"id": 1, "primary_mac_address": 1}])),
        ),
        (
            "moving a primary mac",
            M::PATCH,
            "/api/dcim/mac-addresses/".into(),
            Some(json!([{"id": 1, "assigned_object_type": "dcim.interface", "assigned_object_id": 3}])),
        ),
        ("status", M::GET, "/api/status/".into(), None),
    ];
    for (what, method, path, body) in steps {
        let (real_status, real) = netbox.http(method.clone(), &path, body.clone()).await;
        let (sim_status, simulated) = sim.http(method, &path, body).await;
        assert_eq!(
            sim_status, real_status,
            "{what}: real {real}, simulator {simulated}"
        );
        let keys = |v: &Value| -> Vec<String> {
            let object = match v {
                Value::Array(list) => list.first().cloned().unwrap_or(Value::Null),
                Value::Object(map) if map.contains_key("results") => {
                    map["results"].get(0).cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            let mut keys: Vec<String> = object
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        if what == "status" {
            assert_eq!(simulated["netbox-version"], real["netbox-version"]);
            continue;
        }
        if what.starts_with("setup: ") {
            continue; // dcim objects the simulator keeps only the fields infradeck uses of
        }
        let (real_keys, sim_keys) = (keys(&real), keys(&simulated));
        let missing: Vec<&String> = real_keys
            .iter()
            .filter(|k| !sim_keys.contains(k) && !IGNORED_FIELDS.contains(&k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: the simulator lacks {missing:?}: real {real}, simulator {simulated}"
        );
        if real_status >= 400 {
            assert_eq!(
                real_keys, sim_keys,
                "{what}: error shape: real {real}, simulator {simulated}"
            );
        }
        if what == "a second cable on a cabled interface" || what == "moving a primary mac" {
            assert_eq!(simulated, real, "{what}: the same refusal");
        }
    }
    // What the plan reads of a cabled interface: its cable, its end and the peer across it.
    let cabled = |v: &Value| {
        json!([
            v["cable"]["display"],
            v["cable_end"],
            v["link_peers_type"],
            v["link_peers"][0]["name"],
            v["link_peers"][0]["device"]["name"],
            v["_occupied"],
        ])
    };
    for id in [1, 3] {
        let path = format!("/api/dcim/interfaces/{id}/");
        let (_, real) = netbox.http(M::GET, &path, None).await;
        let (_, simulated) = sim.http(M::GET, &path, None).await;
        assert_eq!(cabled(&simulated), cabled(&real), "interface {id}");
    }
    let (_, real) = netbox.http(M::GET, "/api/dcim/cables/1/", None).await;
    assert_eq!(real["a_terminations"][0]["object"]["device"]["name"], "srv");
}

/// Fields of NetBox's answers infradeck never reads, which the simulator leaves out.
const IGNORED_FIELDS: &[&str] = &[
    "owner",
    "group",
    "tenant",
    "platform",
    "primary_ip",
    "primary_ip4",
    "primary_ip6",
    "config_template",
    "local_context_data",
    "virtual_machine_type",
    "start_on_boot",
    "allocated_vcpus",
    "allocated_memory",
    "allocated_disk",
    "device_count",
    "virtualmachine_count",
    "weight",
    "object_types",
    "vm_count",
];

const EVERY_SOURCE: [&str; 6] = [
    "vcenter", "foreman", "puppetdb", "oxidized", "netapp", "dorado",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_estate_goes_to_the_real_netbox_and_comes_back_out() {
    let Some(netbox) = real_netbox() else { return };
    let _owner = NETBOX.lock().await;
    netbox.reset();
    let rig = common::start_rig_with(20, 47, false).await;
    let client = netbox.client(&rig, &netbox.token, Some("DC1 Test"));
    whole_estate_cycle(&netbox, &rig, &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_estate_goes_to_the_simulator_and_comes_back_out() {
    let rig = common::start_rig_with(20, 47, false).await;
    let sim = RealNetbox {
        url: rig.config.netbox.as_ref().unwrap().url.clone(),
        token: rig.sims.netbox.token_v2.clone(),
        reset: String::new(),
    };
    let client = sim.client(&rig, &sim.token, Some("DC1 Test"));
    whole_estate_cycle(&sim, &rig, &client).await;
}

/// After a sync of every source: plan, approve all, apply → a dcim device per host, server,
/// switch and array with their interfaces and MACs, VMs on their host devices; plan again →
/// nothing; a host NIC renamed in vCenter → one update of that interface, no duplicate;
/// rollback of both batches → NetBox as empty as before.
async fn whole_estate_cycle(netbox: &RealNetbox, rig: &Rig, client: &NetboxClient) {
    let outcomes = rig.run(&EVERY_SOURCE).await;
    assert!(
        outcomes.iter().all(|o| o.status == RunStatus::Success),
        "{outcomes:?}"
    );
    let mut store = rig.store();
    // Machines: the records of one host, server, switch or array across sources, as one.
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let report = plan(&mut store, client).await;
    let batch = report
        .batch_id
        .clone()
        .expect("an empty NetBox needs everything");
    let items = store.batch_items(&batch).unwrap();
    let planned = |endpoint: &str| {
        items
            .iter()
            .filter(|i| i.netbox_object_type.as_deref() == Some(endpoint))
            .count()
    };
    assert!(
        planned(DEVICES) > 0 && planned(DEVICE_IFACES) > 0,
        "{report:?}"
    );
    let approved = approve_all(&mut store, &batch);
    let applied =
        infradeck_core::netbox::apply(&mut store, client, &batch, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        (applied.applied, applied.conflicts, applied.failed),
        (approved, 0, 0),
        "{:#?}",
        applied.lines
    );
    let counts = netbox.counts().await;
    for (endpoint, created) in &counts {
        assert_eq!(*created, planned(endpoint), "{endpoint}: {counts:?}");
    }

    // One device per machine, of every kind, each at the site with a role that says what it is.
    let devices = netbox.all(DEVICES).await;
    let roles: std::collections::BTreeSet<&str> = devices
        .iter()
        .filter_map(|d| d["role"]["slug"].as_str())
        .collect();
    assert_eq!(
        roles,
        ["hypervisor", "network", "server", "storage"].into(),
        "{devices:#?}"
    );
    let names: Vec<&str> = devices.iter().filter_map(|d| d["name"].as_str()).collect();
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "one device per machine: {names:?}"
    );
    for expected in ["ontap-dc1", "dorado-dc2", "dc1-core-sw01"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    for device in &devices {
        assert_eq!(device["site"]["slug"], "dc1-test", "{device}");
    }
    let with_serial: Vec<&Value> = devices
        .iter()
        .filter(|d| d["serial"].as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    assert!(
        !with_serial.is_empty(),
        "serials from PuppetDB, Foreman, Dorado"
    );
    // Each field written says where it came from, in the custom field infradeck created.
    for device in &with_serial {
        let provenance = &device["custom_fields"]["infradeck_provenance"]["fields"];
        let source = provenance["serial"]["source"].as_str().unwrap_or_default();
        assert!(
            ["puppetdb", "foreman", "dorado"].contains(&source),
            "{device}"
        );
        assert!(provenance["serial"]["confirmed"].is_string(), "{device}");
        assert_eq!(provenance["site"]["source"], "[netbox] site", "{device}");
    }
    // Hosts are in their clusters, and the VMs on them are on their device.
    let hosts: BTreeMap<i64, &Value> = devices
        .iter()
        .filter(|d| d["role"]["slug"] == "hypervisor" && !d["cluster"].is_null())
        .map(|d| (d["id"].as_i64().unwrap(), d))
        .collect();
    assert!(!hosts.is_empty(), "{devices:#?}");
    let vms = netbox.all(VMS).await;
    for vm in &vms {
        let memory = &vm["custom_fields"]["infradeck_provenance"]["fields"]["memory"];
        assert_eq!(memory["source"], "vcenter", "{vm}");
    }
    let placed: Vec<&Value> = vms.iter().filter(|v| !v["device"].is_null()).collect();
    assert!(!placed.is_empty(), "VMs on their host devices");
    for vm in placed {
        let host = hosts[&vm["device"]["id"].as_i64().unwrap()];
        assert_eq!(host["cluster"]["id"], vm["cluster"]["id"], "{vm}");
    }
    // Interfaces with their MACs as primary MAC.
    let ifaces = netbox.all(DEVICE_IFACES).await;
    let nic = ifaces
        .iter()
        .find(|i| i["name"] == "vmnic0" && i["primary_mac_address"]["mac_address"].is_string())
        .unwrap_or_else(|| panic!("a host NIC with its MAC: {ifaces:#?}"))
        .clone();

    // Cables from CDP/LLDP: a host's or server's NIC to a switch port, both ends in NetBox, each end's peer
    // the other.
    let cables = netbox.all(CABLES).await;
    assert!(!cables.is_empty(), "{report:?}");
    let by_id: BTreeMap<i64, &Value> = ifaces
        .iter()
        .map(|i| (i["id"].as_i64().unwrap(), i))
        .collect();
    for cable in &cables {
        let end = |side: &str| {
            let ends = cable[side].as_array().unwrap();
            assert_eq!(ends.len(), 1, "{cable}");
            by_id[&ends[0]["object_id"].as_i64().unwrap()]
        };
        let (host_nic, port) = (end("a_terminations"), end("b_terminations"));
        let role = |iface: &Value| {
            let device = iface["device"]["id"].clone();
            devices
                .iter()
                .find(|d| d["id"] == device)
                .map(|d| d["role"]["slug"].clone())
                .unwrap()
        };
        assert!(
            role(host_nic) == "hypervisor" || role(host_nic) == "server",
            "{cable}"
        );
        assert_eq!(role(port), "network", "{cable}");
        assert_eq!(cable["status"]["value"], "connected", "{cable}");
        assert_eq!(host_nic["link_peers"][0]["id"], port["id"], "{host_nic}");
        assert_eq!(port["link_peers"][0]["id"], host_nic["id"], "{port}");
    }

    // Addresses with their prefix on the interface that has them; primary IPs by the rule.
    let ips = netbox.all(IPS).await;
    assert!(
        ips.iter()
            .all(|ip| ip["address"].as_str().is_some_and(|a| a.contains('/'))
                && !ip["assigned_object"].is_null()),
        "{ips:#?}"
    );
    let switch = devices
        .iter()
        .find(|d| d["name"] == "dc1-core-sw01")
        .unwrap();
    let (_, switch) = netbox
        .http(
            reqwest::Method::GET,
            &format!("/api/{DEVICES}/{}/", switch["id"]),
            None,
        )
        .await;
    assert_eq!(
        switch["primary_ip4"]["address"], "10.255.0.11/24",
        "the address Oxidized knows it by: {switch}"
    );
    let running = vms
        .iter()
        .filter(|v| v["status"]["value"] == "active")
        .count();
    let vms = netbox.all(VMS).await;
    let with_primary = vms.iter().filter(|v| !v["primary_ip4"].is_null()).count();
    assert!(
        with_primary > 0 && with_primary <= running,
        "{with_primary} of {running}"
    );

    // Nothing left to propose.
    let again = plan(&mut store, client).await;
    assert_eq!(again.batch_id, None, "{again:?}");

    // The NIC renamed in vCenter: one update of that interface (matched by its MAC), no create.
    let mac = nic["primary_mac_address"]["mac_address"]
        .as_str()
        .unwrap()
        .to_lowercase();
    rig.sims
        .estate
        .write()
        .unwrap()
        .renamed_nics
        .insert(mac, "vmnic7".into());
    assert!(
        rig.run(&["vcenter"])
            .await
            .iter()
            .all(|o| o.status == RunStatus::Success)
    );
    let renamed = plan(&mut store, client).await;
    assert_eq!(
        (renamed.creates, renamed.updates, renamed.deletes),
        (0, 1, 0),
        "{renamed:?}"
    );
    let second = renamed.batch_id.clone().unwrap();
    let items = store.batch_items(&second).unwrap();
    let changes: Value =
        serde_json::from_str(items[0].proposed_changes.as_deref().unwrap()).unwrap();
    assert_eq!(changes["endpoint"], DEVICE_IFACES);
    assert_eq!(
        changes["fields"]["name"],
        json!({"from": "vmnic0", "to": "vmnic7"})
    );
    approve_all(&mut store, &second);
    let applied =
        infradeck_core::netbox::apply(&mut store, client, &second, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        (applied.applied, applied.failed),
        (1, 0),
        "{:#?}",
        applied.lines
    );
    let now = netbox.all(DEVICE_IFACES).await;
    assert_eq!(now.len(), ifaces.len(), "renamed, not duplicated");
    let moved = now.iter().find(|i| i["id"] == nic["id"]).unwrap();
    assert_eq!(moved["name"], "vmnic7");
    assert_eq!(plan(&mut store, client).await.batch_id, None);

    // An address that moves from one VM to another (A powered off its use of it, B took it):
    // one move of the same object, A's primary released first (NetBox refuses to move a primary
    // IP) and B's set after, never a second object.
    let vms = netbox.all(VMS).await;
    let with_ip: Vec<&Value> = vms.iter().filter(|v| !v["primary_ip4"].is_null()).collect();
    let (a, b) = (with_ip[0], with_ip[1]);
    let address = a["primary_ip4"]["address"].as_str().unwrap().to_string();
    let host = address.split('/').next().unwrap().to_string();
    {
        let mut estate = rig.sims.estate.write().unwrap();
        let find = |name: &Value| {
            estate
                .vms
                .iter()
                .position(|v| v.hostname == name.as_str().unwrap())
                .unwrap_or_else(|| panic!("{name} in the estate"))
        };
        let (ai, bi) = (find(&a["name"]), find(&b["name"]));
        estate.vms[ai].nics[0].ip = None;
        estate.vms[bi].nics[0].ip = Some(host.clone());
    }
    assert!(
        rig.run(&["vcenter"])
            .await
            .iter()
            .all(|o| o.status == RunStatus::Success)
    );
    let moved = plan(&mut store, client).await;
    assert_eq!(
        (moved.creates, moved.updates, moved.deletes),
        (0, 3, 0),
        "release, move, set: {moved:?}"
    );
    let third = moved.batch_id.clone().unwrap();
    approve_all(&mut store, &third);
    let applied =
        infradeck_core::netbox::apply(&mut store, client, &third, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        (applied.applied, applied.failed, applied.conflicts),
        (3, 0, 0),
        "{:#?}",
        applied.lines
    );
    let ips_now = netbox.all(IPS).await;
    assert_eq!(ips_now.len(), ips.len(), "moved, not duplicated");
    let object = ips_now
        .iter()
        .find(|i| i["address"] == address.as_str())
        .unwrap();
    assert_eq!(
        object["assigned_object"]["virtual_machine"]["name"],
        b["name"]
    );
    let vm = |v: &Value| {
        let id = v["id"].clone();
        async move {
            netbox
                .http(reqwest::Method::GET, &format!("/api/{VMS}/{id}/"), None)
                .await
                .1
        }
    };
    assert_eq!(vm(b).await["primary_ip4"]["address"], address.as_str());
    assert!(vm(a).await["primary_ip4"].is_null());
    assert_eq!(plan(&mut store, client).await.batch_id, None);

    // Rollback, newest batch first: NetBox is as empty as it was.
    for batch in [&third, &second, &batch] {
        let rolled = infradeck_core::netbox::rollback(&mut store, client, batch)
            .await
            .unwrap();
        assert_eq!(
            (rolled.conflicts, rolled.failed),
            (0, 0),
            "{:#?}",
            rolled.lines
        );
    }
    let counts = netbox.counts().await;
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn machines_made_by_hand_in_the_real_netbox_are_adopted_not_duplicated() {
    let Some(netbox) = real_netbox() else { return };
    let _owner = NETBOX.lock().await;
    netbox.reset();
    let rig = synced_rig(20, 53).await;
    let client = netbox.client(&rig, &netbox.token, Some("DC1 Test"));
    adoption_cycle(&netbox, &rig, &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn machines_made_by_hand_in_the_simulator_are_adopted_not_duplicated() {
    let rig = synced_rig(20, 53).await;
    let sim = RealNetbox {
        url: rig.config.netbox.as_ref().unwrap().url.clone(),
        token: rig.sims.netbox.token_v2.clone(),
        reset: String::new(),
    };
    let client = sim.client(&rig, &sim.token, Some("DC1 Test"));
    adoption_cycle(&sim, &rig, &client).await;
}

/// What a person made in NetBox before infradeck (untagged, with a tag of their own): a host
/// device of the same name at the site, a host device under another name that has the other
/// host's NIC MAC, a VM of the same name in the same cluster. The plan proposes each as one
/// adoption (our tag added to theirs, the differing fields), never a second object; applied,
/// they are ours and the next plan has nothing; rollback gives them back as they were.
async fn adoption_cycle(netbox: &RealNetbox, rig: &Rig, client: &NetboxClient) {
    let mut store = rig.store();
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let (by_name, by_mac, mac, vm, cluster) = {
        let estate = rig.sims.estate.read().unwrap();
        let clustered: Vec<usize> = (0..estate.hosts.len())
            .filter(|h| !estate.hosts[*h].standalone)
            .collect();
        let (a, b) = (clustered[0], clustered[1]);
        let vm = estate
            .live_vms()
            .find(|v| v.host == a && v.power_state == infradeck_sim::estate::PowerState::On)
            .expect("a running VM on the first host");
        let short = |h: usize| {
            estate.hosts[h]
                .name
                .split('.')
                .next()
                .unwrap()
                .to_lowercase()
        };
        (
            short(a),
            short(b),
            estate.uplinks(b)[0].mac.to_lowercase(),
            vm.hostname.clone(),
            estate.clusters[estate.hosts[a].cluster].name.clone(),
        )
    };
    let post = |endpoint: &'static str, body: Value| async move {
        let (status, object) = netbox
            .http(
                reqwest::Method::POST,
                &format!("/api/{endpoint}/"),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{endpoint}: {object}");
        object["id"].as_i64().unwrap()
    };
    post(TAGS, json!({"name": "manual", "slug": "manual"})).await;
    let site = post(SITES, json!({"name": "DC1 Test", "slug": "dc1-test"})).await;
    let maker = post(
        "dcim/manufacturers",
        json!({"name": "HandCo", "slug": "handco"}),
    )
    .await;
    let role = post("dcim/device-roles", json!({"name": "Hand", "slug": "hand"})).await;
    let model = post(
        "dcim/device-types",
        json!({"manufacturer": maker, "model": "Box", "slug": "box"}),
    )
    .await;
    let hand_device = |name: &str| {
        json!({"name": name, "site": site, "role": role, "device_type": model,
               "tags": [{"slug": "manual"}]})
    };
    let named = post(DEVICES, hand_device(&by_name)).await;
    let other = post(DEVICES, hand_device("hand-made-02")).await;
    let nic = post(
        DEVICE_IFACES,
        json!({"device": other, "name": "eth0", "type": "1000base-t"}),
    )
    .await;
    let mac_id = post(
        MACS,
        json!({"mac_address": mac.to_uppercase(), "assigned_object_type": "dcim.interface",
               "assigned_object_id": nic}),
    )
    .await;
    let (status, answer) = netbox
        .http(
            reqwest::Method::PATCH,
            &format!("/api/{DEVICE_IFACES}/{nic}/"),
            Some(json!({"primary_mac_address": mac_id})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let kind = post(CLUSTER_TYPES, json!({"name": "Hand", "slug": "hand"})).await;
    let hand_cluster = post(CLUSTERS, json!({"name": cluster, "type": kind})).await;
    let hand_vm = post(
        VMS,
        json!({"name": vm, "cluster": hand_cluster, "tags": [{"slug": "manual"}]}),
    )
    .await;

    let report = plan(&mut store, client).await;
    let batch = report.batch_id.clone().expect("the rest of the estate");
    let items = store.batch_items(&batch).unwrap();
    let changes = |key: &str| -> Vec<(ApprovalAction, Value)> {
        items
            .iter()
            .filter(|i| key_of(i) == key)
            .map(|i| {
                (
                    i.action,
                    serde_json::from_str(i.proposed_changes.as_deref().unwrap()).unwrap(),
                )
            })
            .collect()
    };
    let adoption = |key: &str, object: i64, matched_by: &str| {
        let found = changes(key);
        assert_eq!(found.len(), 1, "{key}: one item, {found:#?}");
        let (action, change) = &found[0];
        assert_eq!(*action, ApprovalAction::Update, "{change}");
        assert_eq!(change["adopt"]["matched_by"], matched_by, "{change}");
        assert_eq!(
            change["fields"]["tags"],
            json!({"from": ["manual"], "to": ["infradeck", "manual"]}),
            "{change}"
        );
        let item = items.iter().find(|i| key_of(i) == key).unwrap();
        assert_eq!(item.netbox_object_id, Some(object));
        change.clone()
    };
    adoption(&format!("device:{by_name}"), named, "name and site");
    let renamed = adoption(&format!("device:{by_mac}"), other, "MAC address");
    assert_eq!(
        renamed["fields"]["name"],
        json!({"from": "hand-made-02", "to": by_mac})
    );
    let adopted_vm = adoption(&format!("vm:{vm}"), hand_vm, "name and cluster");
    assert_eq!(adopted_vm["fields"]["device"]["to"], json!(by_name));
    assert!(
        changes(&format!("cluster:{cluster}")).is_empty(),
        "NetBox has the cluster"
    );

    approve_all(&mut store, &batch);
    let applied =
        infradeck_core::netbox::apply(&mut store, client, &batch, &ApplyOptions::default())
            .await
            .unwrap();
    assert_eq!(
        (applied.conflicts, applied.failed),
        (0, 0),
        "{:#?}",
        applied.lines
    );
    let devices = netbox.all(DEVICES).await;
    let device = |id: i64| devices.iter().find(|d| d["id"] == id).unwrap().clone();
    let slugs = |object: &Value| -> Vec<String> {
        let mut slugs: Vec<String> = object["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["slug"].as_str().unwrap().to_string())
            .collect();
        slugs.sort();
        slugs
    };
    assert_eq!(slugs(&device(named)), ["infradeck", "manual"]);
    assert_eq!(device(other)["name"], json!(by_mac));
    for name in [&by_name, &by_mac] {
        assert_eq!(
            devices.iter().filter(|d| d["name"] == json!(name)).count(),
            1,
            "{name}: adopted, not duplicated"
        );
    }
    let vms = netbox.all(VMS).await;
    let adopted = vms.iter().find(|v| v["id"] == hand_vm).unwrap();
    assert_eq!(slugs(adopted), ["infradeck", "manual"]);
    assert_eq!(adopted["device"]["id"], json!(named), "{adopted}");
    assert_eq!(vms.iter().filter(|v| v["name"] == json!(vm)).count(), 1);
    assert_eq!(plan(&mut store, client).await.batch_id, None);

    let undone = infradeck_core::netbox::rollback(&mut store, client, &batch)
        .await
        .unwrap();
    assert_eq!(
        (undone.applied, undone.conflicts, undone.failed),
        (undone.eligible, 0, 0),
        "{:#?}",
        undone.lines
    );
    let devices = netbox.all(DEVICES).await;
    assert_eq!(devices.len(), 2, "{devices:#?}");
    let back = |id: i64| devices.iter().find(|d| d["id"] == id).unwrap().clone();
    assert_eq!(slugs(&back(named)), ["manual"]);
    assert_eq!(back(other)["name"], "hand-made-02");
    assert_eq!(back(named)["device_type"]["slug"], "box");
    let vms = netbox.all(VMS).await;
    assert_eq!(vms.len(), 1, "{vms:#?}");
    assert_eq!(slugs(&vms[0]), ["manual"]);
    assert!(vms[0]["device"].is_null(), "{}", vms[0]);
}
