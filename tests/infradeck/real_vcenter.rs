//! The vCenter connector against VMware's own simulator: vcsim (govmomi 0.24.2, Debian) with our
//! REST shim over its inventory (`tests/tiers/vcsim/`), built by `tests/tiers/vcsim.sh` and
//! named by `INFRADECK_VCSIM_BIN`. Every test starts its own vcsim from that binary (0.2 s), so
//! each has its own estate and the tests run in parallel; between syncs a test changes the estate
//! over SOAP (`infradeck-vcsim op`: govmomi's client, the calls an administrator's tool sends).
//!
//! Without the variable the tests skip with a reason; with `INFRADECK_REQUIRE_REAL_SERVERS=1`
//! (CI) a missing binary is a failure.

use infradeck_core::app::RunOutcome;
use infradeck_core::config::Config;
use infradeck_core::model::{DeviceStatus, DeviceType, RelationshipType, RunStatus};
use infradeck_core::store::{Device, DeviceQuery, OpenOptions, Store};
use infradeck_core::sync::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn vcsim_binary() -> Option<PathBuf> {
    match std::env::var("INFRADECK_VCSIM_BIN") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var("INFRADECK_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") => panic!(
            "INFRADECK_VCSIM_BIN is not set but INFRADECK_REQUIRE_REAL_SERVERS=1: run tests/tiers/vcsim.sh build DIR"
        ),
        _ => {
            eprintln!(
                "skipped: no vcsim (run `tests/tiers/vcsim.sh build DIR` and load DIR/env, which sets INFRADECK_VCSIM_BIN)"
            );
            None
        }
    }
}

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = "vcsim-secret";

/// One vcsim process of this test, stopped (by its PID) when dropped. It also exits by itself
/// when the test process dies (`-exit-with-parent`).
struct Vcsim {
    child: Child,
    bin: PathBuf,
    url: String,
}

impl Vcsim {
    /// vcsim's default VPX model plus `args` (e.g. `-dc 2`), with Tools running in every
    /// powered-on VM; `None` when the tier is absent (skipped).
    fn start(args: &[&str]) -> Option<Vcsim> {
        let bin = vcsim_binary()?;
        let mut child = Command::new(&bin)
            .args(["serve", "-exit-with-parent", "-tools-running"])
            .args(["-username", USER, "-password", PASSWORD])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("vcsim printed no URL within 30 s");
        let url = line
            .trim()
            .strip_prefix("INFRADECK_VCSIM_URL=")
            .unwrap_or_else(|| panic!("unexpected first line from vcsim: {line:?}"))
            .to_string();
        Some(Vcsim { child, bin, url })
    }

    /// A change over SOAP; panics with vcsim's error when it fails.
    fn op(&self, args: &[&str]) -> String {
        let with_login =
            self.url
                .replacen("://", &format!("://{}:{}@", urlencode(USER), PASSWORD), 1);
        let out = Command::new(&self.bin)
            .arg("op")
            .arg(&with_login)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "op {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// VM name → host name, as vcsim's SOAP inventory has it.
    fn placements(&self) -> BTreeMap<String, String> {
        self.op(&["list-vms"])
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                (fields[0].to_string(), fields[2].to_string())
            })
            .collect()
    }

    /// Sets a list cap of the REST shim at run time (`datastore`, `cluster`, ...).
    async fn set_cap(&self, list: &str, cap: usize) {
        let answer = reqwest::Client::new()
            .put(format!("{}/api/infradeck-shim/caps", self.url))
            .query(&[(list, cap.to_string())])
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    }
}

impl Vcsim {
    /// Makes every SOAP call answer this fault (empty: none).
    async fn set_soap_fault(&self, fault: &str) {
        let answer = reqwest::Client::new()
            .put(format!("{}/api/infradeck-shim/soap-fault", self.url))
            .query(&[("fault", fault)])
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(text: &str) -> String {
    text.replace('@', "%40")
}

/// A database and an engine with one vCenter source: the test's vcsim.
struct Inventory {
    dir: tempfile::TempDir,
    config: Config,
    engine: Engine,
}

impl Inventory {
    fn new(vcsim: &Vcsim) -> Inventory {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("vcenter.secret");
        std::fs::write(&secret, PASSWORD).unwrap();
        let text = format!(
            "[general]\ndatabase = {}\n\n[[sources]]\nkind = \"vcenter\"\nid = \"vcsim\"\nurl = {}\nusername = {}\npassword_file = {}\n",
            toml::Value::String(dir.path().join("inventory.db").display().to_string()),
            toml::Value::String(vcsim.url.clone()),
            toml::Value::String(USER.into()),
            toml::Value::String(secret.display().to_string()),
        );
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path, true).unwrap();
        let mut engine = Engine::new(config.database_path(None), config.general.clone());
        engine.retry.base = Duration::from_millis(20);
        Inventory {
            dir,
            config,
            engine,
        }
    }

    async fn sync(&self) -> RunOutcome {
        self.engine
            .run(&self.config.sources[0], CancellationToken::new())
            .await
    }

    fn store(&self) -> Store {
        Store::open(
            &self.dir.path().join("inventory.db"),
            &OpenOptions::default(),
        )
        .unwrap()
    }

    fn devices(&self, device_type: DeviceType, status: DeviceStatus) -> Vec<Device> {
        self.store()
            .query_devices(&DeviceQuery {
                source_system: Some("vcenter".into()),
                device_type: Some(device_type),
                status: Some(status),
                ..DeviceQuery::default()
            })
            .unwrap()
    }

    fn names(&self, device_type: DeviceType) -> Vec<String> {
        let mut names: Vec<String> = self
            .devices(device_type, DeviceStatus::Active)
            .into_iter()
            .map(|d| d.name)
            .collect();
        names.sort();
        names
    }

    fn device(&self, name: &str) -> Device {
        self.store()
            .query_devices(&DeviceQuery {
                source_system: Some("vcenter".into()),
                ..DeviceQuery::default()
            })
            .unwrap()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no vCenter record named {name}"))
    }

    /// VM name → the name of the host that `hosts` it, from the relationships.
    fn placements(&self) -> BTreeMap<String, String> {
        let store = self.store();
        let mut out = BTreeMap::new();
        for vm in self.devices(DeviceType::Vm, DeviceStatus::Active) {
            for related in store.related(vm.id).unwrap() {
                if related.relationship_type == RelationshipType::Hosts && related.is_parent {
                    out.insert(vm.name.clone(), related.device.name);
                }
            }
        }
        out
    }

    fn volumes(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store()
            .volumes_of_source("vcenter", "vcsim")
            .unwrap()
            .into_iter()
            .map(|v| v.volume.name)
            .collect();
        names.sort();
        names
    }
}

fn assert_success(outcome: &RunOutcome) {
    assert_eq!(
        outcome.status,
        RunStatus::Success,
        "{}: {:?}",
        outcome.source,
        outcome.message
    );
}

/// The vCenter part of a record's metadata.
fn vcenter(device: &Device) -> Value {
    let metadata: Value =
        serde_json::from_str(device.metadata.as_deref().unwrap_or("null")).unwrap();
    metadata["vcenter"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_of_vcsims_default_model_lists_every_host_and_vm_where_vmware_placed_it() {
    let Some(vcsim) = Vcsim::start(&[]) else {
        return;
    };
    let inventory = Inventory::new(&vcsim);
    assert_success(&inventory.sync().await);

    // The default VPX model: a cluster of three hosts and one standalone host (DC0_H0), two VMs
    // on the standalone host and two in the cluster's resource pool.
    assert_eq!(inventory.names(DeviceType::Cluster), ["DC0_C0"]);
    assert_eq!(
        inventory.names(DeviceType::Server),
        ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2", "DC0_H0"]
    );
    let placed = vcsim.placements();
    assert_eq!(placed.len(), 4, "{placed:?}");
    assert_eq!(inventory.placements(), placed);
    let standalone = inventory.device("DC0_H0");
    assert_eq!(vcenter(&standalone)["cluster"], Value::Null);
    assert_eq!(vcenter(&standalone)["datacenter"], "DC0");
    assert_eq!(vcenter(&inventory.device("DC0_C0_H1"))["cluster"], "DC0_C0");

    // Every VM is on vcsim's distributed port group, whose name only /api/vcenter/network has.
    let store = inventory.store();
    let vm = inventory.device("DC0_H0_VM0");
    let nics = store.interfaces(vm.id).unwrap();
    assert_eq!(nics.len(), 1);
    assert_eq!(
        nics[0].interface.metadata["network"], "DC0_DVPG0",
        "{:?}",
        nics[0]
    );
    assert!(nics[0].interface.mac_address.is_some());
    // Datastores: vcsim's one local datastore.
    assert_eq!(inventory.volumes(), ["LocalDS_0"]);

    // Nothing changed: a second sync changes nothing.
    let again = inventory.sync().await;
    assert_success(&again);
    assert_eq!(
        (
            again.counts.added,
            again.counts.updated,
            again.counts.removed
        ),
        (0, 0, 0),
        "{:?}",
        again.counts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_made_over_soap_are_what_the_next_sync_records() {
    let Some(vcsim) = Vcsim::start(&[]) else {
        return;
    };
    let inventory = Inventory::new(&vcsim);
    assert_success(&inventory.sync().await);

    vcsim.op(&["power-off", "DC0_C0_RP0_VM0"]);
    vcsim.op(&["relocate", "DC0_H0_VM1", "DC0_C0_H2"]);
    vcsim.op(&["power-off", "DC0_C0_RP0_VM1"]);
    vcsim.op(&["destroy", "DC0_C0_RP0_VM1"]);
    // A host added by its address is named by it: the name is kept whole.
    vcsim.op(&["add-host", "10.20.30.40"]);
    // The guest reports its host name through VMware Tools.
    vcsim.op(&["guest", "DC0_H0_VM0", "web01.lab.example", "10.1.2.3"]);

    let second = inventory.sync().await;
    assert_success(&second);
    let off = inventory.device("DC0_C0_RP0_VM0");
    assert_eq!(vcenter(&off)["power_state"], "POWERED_OFF");
    assert_eq!(inventory.placements(), vcsim.placements());
    assert_eq!(inventory.placements()["DC0_H0_VM1"], "DC0_C0_H2");
    assert_eq!(
        inventory.device("DC0_C0_RP0_VM1").status,
        DeviceStatus::Inactive
    );
    let by_address = inventory.device("10.20.30.40");
    assert_eq!(by_address.status, DeviceStatus::Active);
    assert_eq!(vcenter(&by_address)["hostname"], "10.20.30.40");
    assert_eq!(vcenter(&by_address)["cluster"], Value::Null);
    let guest = inventory.device("DC0_H0_VM0");
    assert_eq!(vcenter(&guest)["hostname"], "web01");
    assert_eq!(vcenter(&guest)["fqdn"], "web01.lab.example");
    let store = inventory.store();
    let nics = store.interfaces(guest.id).unwrap();
    assert_eq!(nics[0].interface.ip_addresses, ["10.1.2.3/24"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_datastore_list_over_the_cap_is_split_by_datacenter_or_sweeps_nothing() {
    // Two datacenters with two datastores each.
    let Some(vcsim) = Vcsim::start(&["-dc", "2", "-ds", "2"]) else {
        return;
    };
    let inventory = Inventory::new(&vcsim);
    assert_success(&inventory.sync().await);
    let all = inventory.volumes();
    assert_eq!(all.len(), 4, "{all:?}");

    // Three per list: the whole list is over the cap, each datacenter's is not.
    vcsim.set_cap("datastore", 3).await;
    let split = inventory.sync().await;
    assert_success(&split);
    assert_eq!(inventory.volumes(), all);

    // One per list: even a datacenter's list is over, and vcsim's datastores have no type
    // vCenter's REST API can filter by. The run says so and sweeps nothing.
    vcsim.set_cap("datastore", 1).await;
    let capped = inventory.sync().await;
    assert_eq!(capped.status, RunStatus::Partial, "{:?}", capped.message);
    let message = capped.message.clone().unwrap_or_default();
    assert!(message.contains("datastore"), "{message}");
    assert_eq!(capped.counts.volumes_changed, 0, "{:?}", capped.counts);
    assert_eq!(inventory.volumes(), all);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_taken_over_soap_arrive_as_a_tree_and_host_nics_with_their_speed() {
    let Some(vcsim) = Vcsim::start(&[]) else {
        return;
    };
    let inventory = Inventory::new(&vcsim);
    assert_success(&inventory.sync().await);
    let vm = inventory.device("DC0_C0_RP0_VM0");
    let stored = |inventory: &Inventory| inventory.store().vm(vm.id).unwrap().unwrap().vm;
    assert_eq!(stored(&inventory).snapshots, serde_json::json!([]));

    vcsim.op(&[
        "snapshot",
        "DC0_C0_RP0_VM0",
        "before-patch",
        "pre patch Tuesday",
    ]);
    vcsim.op(&["snapshot", "DC0_C0_RP0_VM0", "after-patch", ""]);
    let second = inventory.sync().await;
    assert_success(&second);
    let snapshots = stored(&inventory).snapshots;
    let list = snapshots.as_array().unwrap();
    assert_eq!(list.len(), 2, "{snapshots}");
    assert_eq!(list[0]["name"], "before-patch");
    assert_eq!(list[0]["description"], "pre patch Tuesday");
    assert_eq!(list[0]["parent"], Value::Null);
    assert_eq!(list[1]["name"], "after-patch");
    assert_eq!(
        list[1]["parent"], list[0]["id"],
        "the second is the first's child"
    );
    assert_eq!(list[1]["current"], true);
    assert_eq!(list[0]["current"], false);
    assert!(list[0]["created"].as_str().unwrap().starts_with("20"));
    // vcsim's files are all 0 bytes: the size is known, and 0.
    assert_eq!(stored(&inventory).total_snapshot_size_bytes, Some(0));
    // The change is audited like any other.
    let history = inventory.store().history(Some(vm.id), 100).unwrap();
    assert!(
        history.iter().any(|h| h
            .new_value
            .as_deref()
            .unwrap_or_default()
            .contains("before-patch")),
        "{history:?}"
    );

    // Host physical NICs over SOAP: vcsim's ESX model has them, with a link speed.
    let host = inventory.device("DC0_C0_H0");
    let nics = inventory.store().interfaces(host.id).unwrap();
    assert!(!nics.is_empty());
    assert!(
        nics.iter()
            .all(|n| n.interface.interface_name.starts_with("vmnic")
                && n.interface.interface_type.as_deref() == Some("physical")),
        "{nics:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soap_side_that_refuses_the_session_leaves_the_rest_data_and_makes_the_run_partial() {
    let Some(vcsim) = Vcsim::start(&[]) else {
        return;
    };
    let inventory = Inventory::new(&vcsim);
    assert_success(&inventory.sync().await);
    vcsim.op(&["snapshot", "DC0_H0_VM0", "keep-me", ""]);
    assert_success(&inventory.sync().await);
    let vm = inventory.device("DC0_H0_VM0");
    let before = inventory.store().vm(vm.id).unwrap().unwrap().vm;
    assert_eq!(before.snapshots.as_array().unwrap().len(), 1);

    // SOAP now refuses every call (the shim's switch; vcsim's own SOAP handler answers a fault).
    vcsim.set_soap_fault("NotAuthenticated").await;
    let outcome = inventory.sync().await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    let message = outcome.message.clone().unwrap_or_default();
    assert!(message.contains("SOAP"), "{message}");
    assert!(message.contains("kept as last known"), "{message}");
    let after = inventory.store().vm(vm.id).unwrap().unwrap().vm;
    assert_eq!(after.snapshots, before.snapshots, "snapshots kept");
    assert_eq!(inventory.names(DeviceType::Vm).len(), 4, "nothing swept");
}

use crate::common;
use common::{SoapProbe, xml_paths};

/// One call sent to vcsim and to our simulator: the same status, and every element our
/// simulator sends is one vcsim sends too, except `extras` (prefixes, each documented).
fn compare_soap(
    call: &str,
    (ours_status, ours): &(u16, infradeck_core::xml::Element),
    (theirs_status, theirs): &(u16, infradeck_core::xml::Element),
    extras: &[&str],
) {
    assert_eq!(ours_status, theirs_status, "{call}: HTTP status");
    let (ours, theirs) = (xml_paths(ours), xml_paths(theirs));
    let unexplained: Vec<&String> = ours
        .difference(&theirs)
        .filter(|p| !extras.iter().any(|e| p.contains(e)))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{call}: our simulator sends elements vcsim does not: {unexplained:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_answers_soap_like_vcsim() {
    let Some(vcsim) = Vcsim::start(&[]) else {
        return;
    };
    vcsim.op(&["snapshot", "DC0_H0_VM0", "one", "first"]);
    vcsim.op(&["snapshot", "DC0_H0_VM0", "two", ""]);
    let sims = infradeck_sim::Simulators::start(&infradeck_sim::SimOptions {
        scale: 20,
        ..infradeck_sim::SimOptions::default()
    })
    .await
    .unwrap();
    let ours_login = sims.credentials(infradeck_sim::SimKind::Vcenter);
    let mut ours = SoapProbe::new(&sims.url(infradeck_sim::SimKind::Vcenter));
    let mut theirs = SoapProbe::new(&vcsim.url);

    let content = "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>";
    let (a, b) = (ours.call(content).await, theirs.call(content).await);
    compare_soap("RetrieveServiceContent", &a, &b, &[]);
    for field in [
        "rootFolder",
        "propertyCollector",
        "viewManager",
        "sessionManager",
    ] {
        assert!(
            a.1.path(&["RetrieveServiceContentResponse", "returnval", field])
                .is_some()
        );
    }

    let view_call = "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">ViewManager</_this><container type=\"Folder\">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>";
    let (a, b) = (ours.call(view_call).await, theirs.call(view_call).await);
    compare_soap("CreateContainerView without a session", &a, &b, &[]);
    assert_eq!(
        xml_paths(&a.1),
        xml_paths(&b.1),
        "the NotAuthenticated fault"
    );

    assert_eq!(
        ours.login(&ours_login.username, "wrong").await,
        theirs.login(USER, "wrong").await,
        "a wrong password"
    );
    assert_eq!(
        ours.login(&ours_login.username, &ours_login.password).await,
        200
    );
    assert_eq!(theirs.login(USER, PASSWORD).await, 200);

    let (vm_view_ours, vm_view_theirs) = (
        ours.view("VirtualMachine").await,
        theirs.view("VirtualMachine").await,
    );
    let paths = ["snapshot", "layoutEx"];
    let (a, b) = (
        ours.call(&SoapProbe::retrieve_body(
            &vm_view_ours,
            "VirtualMachine",
            &paths,
            500,
        ))
        .await,
        theirs
            .call(&SoapProbe::retrieve_body(
                &vm_view_theirs,
                "VirtualMachine",
                &paths,
                500,
            ))
            .await,
    );
    compare_soap("RetrievePropertiesEx VirtualMachine", &a, &b, &[]);
    let b_paths = xml_paths(&b.1);
    let a_paths = xml_paths(&a.1);
    for read in [
        "Body/RetrievePropertiesExResponse/returnval/objects/propSet/val/rootSnapshotList/childSnapshotList/createTime",
        "Body/RetrievePropertiesExResponse/returnval/objects/propSet/val/currentSnapshot",
        "Body/RetrievePropertiesExResponse/returnval/objects/propSet/val/file/size",
        "Body/RetrievePropertiesExResponse/returnval/objects/propSet/val/disk/chain/fileKey",
    ] {
        assert!(a_paths.contains(read) && b_paths.contains(read), "{read}");
    }

    let (host_view_ours, host_view_theirs) = (
        ours.view("HostSystem").await,
        theirs.view("HostSystem").await,
    );
    let paths = [
        "config.network.pnic",
        "configManager.networkSystem",
        "runtime.inMaintenanceMode",
    ];
    let (a, b) = (
        ours.call(&SoapProbe::retrieve_body(
            &host_view_ours,
            "HostSystem",
            &paths,
            500,
        ))
        .await,
        theirs
            .call(&SoapProbe::retrieve_body(
                &host_view_theirs,
                "HostSystem",
                &paths,
                500,
            ))
            .await,
    );
    compare_soap("RetrievePropertiesEx HostSystem", &a, &b, &[]);
    let maintenance = |body: &infradeck_core::xml::Element| {
        body.path(&["RetrievePropertiesExResponse", "returnval", "objects"])
            .unwrap()
            .children_named("propSet")
            .find(|p| p.text_of("name") == Some("runtime.inMaintenanceMode"))
            .and_then(|p| p.text_of("val").map(str::to_string))
    };
    assert_eq!(maintenance(&a.1).as_deref(), Some("false"), "ours");
    assert_eq!(maintenance(&b.1).as_deref(), Some("false"), "vcsim");
    let system = |body: &infradeck_core::xml::Element| {
        body.path(&["RetrievePropertiesExResponse", "returnval", "objects"])
            .unwrap()
            .children_named("propSet")
            .find(|p| p.text_of("name") == Some("configManager.networkSystem"))
            .unwrap()
            .text_of("val")
            .unwrap()
            .to_string()
    };
    let hint = |system: &str| {
        format!(
            "<QueryNetworkHint xmlns=\"urn:vim25\"><_this type=\"HostNetworkSystem\">{system}</_this></QueryNetworkHint>"
        )
    };
    let (a, b) = (
        ours.call(&hint(&system(&a.1))).await,
        theirs.call(&hint(&system(&b.1))).await,
    );
    // vcsim reports no neighbours (only device names); ours sends CDP and LLDP as vCenter does.
    compare_soap(
        "QueryNetworkHint",
        &a,
        &b,
        &["/connectedSwitchPort", "/lldpInfo"],
    );

    let destroy = |view: &str| {
        format!(
            "<DestroyView xmlns=\"urn:vim25\"><_this type=\"ContainerView\">{view}</_this></DestroyView>"
        )
    };
    let (a, b) = (
        ours.call(&destroy(&vm_view_ours)).await,
        theirs.call(&destroy(&vm_view_theirs)).await,
    );
    compare_soap("DestroyView", &a, &b, &[]);
    let logout = "<Logout xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this></Logout>";
    let (a, b) = (ours.call(logout).await, theirs.call(logout).await);
    compare_soap("Logout", &a, &b, &[]);
    sims.stop().await;
}
