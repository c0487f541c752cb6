//! vCenter Automation REST (`/api`, 7.0 U2+): session login, datacenter/cluster/host (clustered
//! and standalone)/VM/datastore/network lists with filters and result caps, VM detail (standard
//! and distributed port group backings), guest networking, identity and tools; and SOAP (vim25)
//! at `/sdk` for snapshots and host uplinks ([`super::vcenter_soap`]).

use super::estate::Estate;
use super::http::{Credentials, Faults, Query, basic_auth, json};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The result caps of real vCenter 7/8.
pub(crate) const VM_CAP: usize = 4000;
pub(crate) const HOST_CAP: usize = 2500;
pub(crate) const DATASTORE_CAP: usize = 2500;
pub(crate) const CLUSTER_CAP: usize = 1000;
pub(crate) const NETWORK_CAP: usize = 1000;

pub struct VcenterState {
    pub(crate) estate: Arc<RwLock<Estate>>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) credentials: Credentials,
    /// session id → requests served with it
    sessions: Mutex<HashMap<String, u64>>,
    next_session: AtomicUsize,
    /// The VM list cap; lowered in tests to exercise the split strategy.
    pub vm_cap: AtomicUsize,
    /// The datastore list cap; lowered in tests to show a capped list never sweeps.
    pub datastore_cap: AtomicUsize,
    /// The cluster list cap; lowered in tests likewise.
    pub cluster_cap: AtomicUsize,
    /// SOAP (vim25) sessions, views and result pages.
    pub soap: Mutex<super::vcenter_soap::SoapState>,
}

impl VcenterState {
    pub(crate) fn new(
        estate: Arc<RwLock<Estate>>,
        faults: Arc<Faults>,
        credentials: Credentials,
    ) -> Arc<VcenterState> {
        Arc::new(VcenterState {
            estate,
            faults,
            credentials,
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicUsize::new(1),
            vm_cap: AtomicUsize::new(VM_CAP),
            datastore_cap: AtomicUsize::new(DATASTORE_CAP),
            cluster_cap: AtomicUsize::new(CLUSTER_CAP),
            soap: Mutex::new(super::vcenter_soap::SoapState::default()),
        })
    }
}

type Shared = Arc<VcenterState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/session", get(session_info).post(login).delete(logout))
        .route("/sdk", axum::routing::post(super::vcenter_soap::serve))
        .route("/api/vcenter/vm", get(list_vms))
        .route("/api/vcenter/vm/{vm}", get(vm_detail))
        .route(
            "/api/vcenter/vm/{vm}/guest/networking/interfaces",
            get(guest_interfaces),
        )
        .route(
            "/api/vcenter/vm/{vm}/guest/networking",
            get(guest_networking),
        )
        .route("/api/vcenter/vm/{vm}/guest/identity", get(guest_identity))
        .route("/api/vcenter/vm/{vm}/tools", get(tools))
        .route("/api/vcenter/host", get(list_hosts))
        .route("/api/vcenter/cluster", get(list_clusters))
        .route("/api/vcenter/cluster/{cluster}", get(cluster_detail))
        .route("/api/vcenter/datacenter", get(list_datacenters))
        .route("/api/vcenter/network", get(list_networks))
        .route("/api/vcenter/datastore", get(list_datastores))
        .route("/api/vcenter/datastore/{datastore}", get(datastore_detail))
        .with_state(state)
}

fn error(status: StatusCode, error_type: &str, id: &str, message: &str, args: &[&str]) -> Response {
    json(
        status,
        json!({
            "error_type": error_type,
            "messages": [{"id": id, "default_message": message, "args": args}],
        }),
    )
}

fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "com.vmware.vapi.endpoint.method.authentication.required",
        "Authentication required.",
        &[],
    )
}

/// Checks the session header; counts the use and expires the session when faults say so.
fn authorize(state: &VcenterState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = headers
        .get("vmware-api-session-id")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthenticated());
    };
    let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    let Some(uses) = sessions.get_mut(token) else {
        return Err(unauthenticated());
    };
    *uses += 1;
    if state.faults.session_expired(*uses) {
        sessions.remove(token);
        return Err(unauthenticated());
    }
    Ok(())
}

async fn login(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let ok = basic_auth(&headers).is_some_and(|(u, p)| state.credentials.matches(&u, &p))
        && !state.faults.reject_auth();
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "com.vmware.vapi.endpoint.method.authentication.required",
            "Authentication required.",
            &[],
        );
    }
    let n = state.next_session.fetch_add(1, Ordering::Relaxed);
    let token = format!("{:032x}", (n as u128) * 0x9e37_79b9_7f4a_7c15 + 0x1234_5678);
    state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), 0);
    (StatusCode::CREATED, axum::Json(Value::String(token))).into_response()
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = headers
        .get("vmware-api-session-id")
        .and_then(|v| v.to_str().ok())
    {
        state
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn session_info(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    json(
        StatusCode::OK,
        json!({"user": format!("VSPHERE.LOCAL\\{}", state.credentials.username), "created_time": "2026-11-01T08:00:00.000Z"}),
    )
}

fn too_many(what: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "UNABLE_TO_ALLOCATE_RESOURCE",
        &format!("com.vmware.api.vcenter.{what}.too_many_matches"),
        "Too many virtual machines. Add more filter criteria to reduce the number.",
        &[],
    )
}

/// The datacenter of a site: one per site.
fn datacenter_moid(site: usize) -> String {
    format!("datacenter-{}", 2 + site)
}

/// A list filter (repeated query parameter) accepts `value`: an absent filter accepts all.
fn accepts(filter: &[&str], value: &str) -> bool {
    filter.is_empty() || filter.contains(&value)
}

/// A `datacenters` filter accepts `site`.
fn in_datacenters(filter: &[&str], site: usize) -> bool {
    accepts(filter, &datacenter_moid(site))
}

fn moid_index(moid: &str, prefix: &str, base: usize) -> Option<usize> {
    moid.strip_prefix(prefix)?
        .parse::<usize>()
        .ok()?
        .checked_sub(base)
}

async fn list_vms(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (vms, names, hosts, clusters, powers, datacenters) = (
        q.all("vms"),
        q.all("names"),
        q.all("hosts"),
        q.all("clusters"),
        q.all("power_states"),
        q.all("datacenters"),
    );
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let cap = state.vm_cap.load(Ordering::Relaxed);
    let mut out = Vec::new();
    for vm in estate.live_vms() {
        let host = &estate.hosts[vm.host];
        let cluster = &estate.clusters[host.cluster];
        let keep = accepts(&vms, vm.moid.as_str())
            && accepts(&names, vm.name.as_str())
            && accepts(&hosts, host.moid.as_str())
            && (clusters.is_empty()
                || (!host.standalone && clusters.contains(&cluster.moid.as_str())))
            && accepts(&powers, vm.power_state.as_str())
            && in_datacenters(&datacenters, cluster.site);
        if !keep {
            continue;
        }
        if out.len() == cap {
            return too_many("vm");
        }
        out.push(json!({
            "vm": vm.moid,
            "name": vm.name,
            "power_state": vm.power_state,
            "cpu_count": vm.cpu_count,
            "memory_size_MiB": vm.memory_mib,
        }));
    }
    json(StatusCode::OK, Value::Array(out))
}

fn find_vm<'a>(estate: &'a Estate, moid: &str) -> Result<&'a super::estate::Vm, Response> {
    moid_index(moid, "vm-", 1000)
        .and_then(|i| estate.vms.get(i))
        .filter(|vm| !vm.deleted)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "com.vmware.api.vcenter.vm.not_found",
                &format!("Virtual machine with identifier '{moid}' does not exist."),
                &[moid],
            )
        })
}

async fn vm_detail(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let vm = match find_vm(&estate, &moid) {
        Ok(vm) => vm,
        Err(r) => return r,
    };
    let (guest_os, _, _) = estate.guest_vcenter(vm);
    let disks: serde_json::Map<String, Value> = vm
        .disks
        .iter()
        .map(|d| {
            let ds = &estate.datastores[d.datastore].name;
            (
                d.key.to_string(),
                json!({
                    "label": d.label, "type": "SCSI", "capacity": d.capacity,
                    "scsi": {"bus": 0, "unit": d.key - 2000},
                    "backing": {"type": "VMDK_FILE", "vmdk_file": format!("[{ds}] {}/{}{}.vmdk", vm.hostname, vm.hostname, if d.key == 2000 { String::new() } else { format!("_{}", d.key - 2000) })},
                }),
            )
        })
        .collect();
    let nics: serde_json::Map<String, Value> = vm
        .nics
        .iter()
        .map(|n| {
            (
                n.key.to_string(),
                json!({
                    "label": format!("Network adapter {}", n.key - 3999), "type": "VMXNET3", "mac_type": "ASSIGNED",
                    "mac_address": n.mac, "state": "CONNECTED", "start_connected": true,
                    "pci_slot_number": 160 + (n.key - 4000) * 32, "wake_on_lan_enabled": false,
                    "allow_guest_control": true, "upt_compatibility_enabled": false,
                    "backing": nic_backing(n),
                }),
            )
        })
        .collect();
    json(
        StatusCode::OK,
        json!({
            "name": vm.name,
            "guest_OS": guest_os,
            "power_state": vm.power_state,
            "identity": {"name": vm.name, "bios_uuid": vm.bios_uuid, "instance_uuid": vm.instance_uuid},
            "instant_clone_frozen": false,
            "hardware": {"version": "VMX_19", "upgrade_policy": "NEVER", "upgrade_status": "NONE"},
            "cpu": {"count": vm.cpu_count, "cores_per_socket": 1, "hot_add_enabled": false, "hot_remove_enabled": false},
            "memory": {"size_MiB": vm.memory_mib, "hot_add_enabled": true},
            "disks": disks,
            "nics": nics,
            "cdroms": {}, "floppies": {}, "parallel_ports": {}, "serial_ports": {},
            "sata_adapters": {}, "scsi_adapters": {}, "nvme_adapters": {},
            "boot": {"type": "BIOS", "delay": 0, "retry": false, "retry_delay": 10000, "enter_setup_mode": false},
            "boot_devices": [],
        }),
    )
}

/// A NIC's backing: only a standard port group's carries its name, as vCenter sends it.
fn nic_backing(nic: &super::estate::VmNic) -> Value {
    if nic.distributed {
        json!({
            "type": "DISTRIBUTED_PORTGROUP", "network": nic.network,
            "distributed_switch_uuid": "50 2a 6c 1f 3b 7d 4e 90-8c 61 2f 0d 9a 4b 33 e1",
            "distributed_port": format!("{}", nic.key - 3000), "connection_cookie": 1_234_567,
        })
    } else {
        json!({"type": "STANDARD_PORTGROUP", "network": nic.network, "network_name": nic.network_name})
    }
}

/// Guest data exists only while VMware Tools runs; otherwise 503, as vCenter answers.
fn guest_vm<'a>(estate: &'a Estate, moid: &str) -> Result<&'a super::estate::Vm, Response> {
    let vm = find_vm(estate, moid)?;
    if !vm.tools_running {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "com.vmware.api.vcenter.vm.guest.networking.not_running",
            "VMware Tools is not running in the virtual machine.",
            &[moid],
        ));
    }
    Ok(vm)
}

async fn guest_interfaces(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let vm = match guest_vm(&estate, &moid) {
        Ok(vm) => vm,
        Err(r) => return r,
    };
    let domain = super::estate::SITES[vm.site].1;
    let interfaces: Vec<Value> = vm
        .nics
        .iter()
        .map(|n| {
            let mut addresses = Vec::new();
            if let Some(ip) = &n.ip {
                addresses.push(json!({"ip_address": ip, "prefix_length": n.prefix, "origin": "MANUAL", "state": "PREFERRED"}));
            }
            let mac_bits: Vec<char> = n.mac.chars().filter(|c| *c != ':').collect();
            let bits = |range: std::ops::Range<usize>| mac_bits.get(range).unwrap_or_default().iter().collect::<String>();
            addresses.push(json!({"ip_address": format!("fe80::250:56ff:fe{}:{}", bits(6..8), bits(8..12)), "prefix_length": 64, "origin": "LINKLAYER", "state": "UNKNOWN"}));
            json!({
                "nic": n.key.to_string(),
                "mac_address": n.mac,
                "ip": {"ip_addresses": addresses, "dhcp": {"ipv4_enabled": false, "ipv6_enabled": false}},
                "dns": {"ip_addresses": ["10.0.0.2", "10.0.0.3"], "search_domains": [domain]},
                "dns_values": {"host_name": vm.hostname, "domain_name": domain},
                "wins_servers": [],
            })
        })
        .collect();
    json(StatusCode::OK, Value::Array(interfaces))
}

async fn guest_networking(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let vm = match guest_vm(&estate, &moid) {
        Ok(vm) => vm,
        Err(r) => return r,
    };
    let domain = super::estate::SITES[vm.site].1;
    json(
        StatusCode::OK,
        json!({"dns_values": {"host_name": vm.hostname, "domain_name": domain}, "dns": {"ip_addresses": ["10.0.0.2"], "search_domains": [domain]}}),
    )
}

async fn guest_identity(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let vm = match guest_vm(&estate, &moid) {
        Ok(vm) => vm,
        Err(r) => return r,
    };
    let (name, family, full) = estate.guest_vcenter(vm);
    json(
        StatusCode::OK,
        json!({
            "name": name, "family": family,
            "full_name": {"id": format!("vmsg.guestos.{}.label", name.to_lowercase()), "default_message": full, "args": []},
            "host_name": vm.fqdn(),
            "ip_address": vm.nics[0].ip,
        }),
    )
}

async fn tools(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let vm = match find_vm(&estate, &moid) {
        Ok(vm) => vm,
        Err(r) => return r,
    };
    json(
        StatusCode::OK,
        json!({
            "run_state": if vm.tools_running { "RUNNING" } else { "NOT_RUNNING" },
            "version_status": "UNMANAGED", "version_number": 12352, "version": "12352",
            "upgrade_policy": "MANUAL", "install_type": "OPEN_VM_TOOLS",
            "auto_update_supported": false, "install_attempt_count": 0,
        }),
    )
}

async fn list_hosts(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (hosts, names, clusters, states, datacenters) = (
        q.all("hosts"),
        q.all("names"),
        q.all("clusters"),
        q.all("connection_states"),
        q.all("datacenters"),
    );
    let standalone = q.get("standalone").map(|v| v == "true");
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for host in &estate.hosts {
        let cluster = &estate.clusters[host.cluster];
        let keep = accepts(&hosts, host.moid.as_str())
            && accepts(&names, host.name.as_str())
            && (clusters.is_empty()
                || (!host.standalone && clusters.contains(&cluster.moid.as_str())))
            && standalone.is_none_or(|s| s == host.standalone)
            && accepts(&states, host.connection_state.as_str())
            && in_datacenters(&datacenters, cluster.site);
        if !keep {
            continue;
        }
        if out.len() == HOST_CAP {
            return too_many("host");
        }
        let mut item = json!({"host": host.moid, "name": host.name, "connection_state": host.connection_state});
        if host.connection_state == "CONNECTED" {
            item["power_state"] = json!("POWERED_ON");
        }
        out.push(item);
    }
    json(StatusCode::OK, Value::Array(out))
}

async fn list_clusters(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (ids, names, datacenters) = (q.all("clusters"), q.all("names"), q.all("datacenters"));
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let out: Vec<Value> = estate
        .clusters
        .iter()
        .filter(|c| {
            accepts(&ids, c.moid.as_str())
                && accepts(&names, c.name.as_str())
                && in_datacenters(&datacenters, c.site)
        })
        .map(
            |c| json!({"cluster": c.moid, "name": c.name, "ha_enabled": true, "drs_enabled": true}),
        )
        .collect();
    if out.len() > state.cluster_cap.load(Ordering::Relaxed) {
        return too_many("cluster");
    }
    json(StatusCode::OK, Value::Array(out))
}

async fn cluster_detail(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match moid_index(&moid, "domain-c", 1000).and_then(|i| estate.clusters.get(i)) {
        Some(c) => json(
            StatusCode::OK,
            json!({"name": c.name, "resource_pool": format!("resgroup-{}", 9 + moid_index(&moid, "domain-c", 1000).unwrap_or(0))}),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "com.vmware.api.vcenter.cluster.not_found",
            &format!("Cluster with identifier '{moid}' does not exist."),
            &[&moid],
        ),
    }
}

async fn list_datastores(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (ids, names, types, datacenters) = (
        q.all("datastores"),
        q.all("names"),
        q.all("types"),
        q.all("datacenters"),
    );
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let out: Vec<Value> = estate
        .datastores
        .iter()
        .enumerate()
        .filter(|(i, d)| {
            // Two datastores per cluster, in the cluster's datacenter.
            let site = estate.clusters[i / 2 % estate.clusters.len()].site;
            accepts(&ids, d.moid.as_str())
                && accepts(&names, d.name.as_str())
                && accepts(&types, d.kind.as_str())
                && in_datacenters(&datacenters, site)
        })
        .map(|(_, d)| d)
        .map(|d| json!({"datastore": d.moid, "name": d.name, "type": d.kind, "free_space": d.free_space, "capacity": d.capacity}))
        .collect();
    if out.len() > state.datastore_cap.load(Ordering::Relaxed) {
        return too_many("datastore");
    }
    json(StatusCode::OK, Value::Array(out))
}

async fn datastore_detail(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(moid): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match moid_index(&moid, "datastore-", 2000).and_then(|i| estate.datastores.get(i)) {
        Some(d) => json(
            StatusCode::OK,
            json!({"name": d.name, "type": d.kind, "accessible": true, "free_space": d.free_space, "multiple_host_access": true, "thin_provisioning_supported": true}),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "com.vmware.api.vcenter.datastore.not_found",
            &format!("Datastore with identifier '{moid}' does not exist."),
            &[&moid],
        ),
    }
}

async fn list_datacenters(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (ids, names) = (q.all("datacenters"), q.all("names"));
    let out: Vec<Value> = super::estate::SITES
        .iter()
        .enumerate()
        .map(|(site, (name, _))| (datacenter_moid(site), *name))
        .filter(|(id, name)| accepts(&ids, id.as_str()) && accepts(&names, name))
        .map(|(id, name)| json!({"datacenter": id, "name": name}))
        .collect();
    json(StatusCode::OK, Value::Array(out))
}

/// The port groups the VMs of each datacenter use, standard and distributed.
async fn list_networks(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (ids, names, types, datacenters) = (
        q.all("networks"),
        q.all("names"),
        q.all("types"),
        q.all("datacenters"),
    );
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let mut seen = std::collections::BTreeMap::new();
    for vm in &estate.vms {
        let site = estate.clusters[estate.hosts[vm.host].cluster].site;
        if !in_datacenters(&datacenters, site) {
            continue;
        }
        for nic in &vm.nics {
            let kind = if nic.distributed {
                "DISTRIBUTED_PORTGROUP"
            } else {
                "STANDARD_PORTGROUP"
            };
            let keep = accepts(&ids, nic.network.as_str())
                && accepts(&names, nic.network_name.as_str())
                && accepts(&types, kind);
            if keep {
                seen.insert(
                    nic.network.clone(),
                    json!({"network": nic.network, "name": nic.network_name, "type": kind}),
                );
            }
        }
    }
    if seen.len() > NETWORK_CAP {
        return too_many("network");
    }
    json(StatusCode::OK, Value::Array(seen.into_values().collect()))
}
