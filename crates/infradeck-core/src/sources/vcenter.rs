//! vCenter (Automation REST `/api`): clusters, hosts, VMs with details, NICs and guest IPs, and
//! datastores.
//!
//! Lists have no paging and fail above a cap, so everything is listed per datacenter: clusters,
//! the hosts of each cluster and the standalone hosts (`standalone=true`: a host outside any
//! cluster, with its VMs), port groups (a NIC on a distributed port group is named only through
//! `/api/vcenter/network`) and datastores (split again by type when a datacenter's list hits the
//! cap). Placement (which host runs a VM) is not in any VM payload, so VMs are listed per host; a
//! host whose list still hits the cap is split again by power state. A list that cannot be read
//! whole makes the run partial: nothing is swept by it.
//!
//! What REST lacks comes over SOAP (vim25, [`super::vcenter_soap`]) in one session per run:
//! snapshot trees and sizes, host physical NICs and their CDP/LLDP neighbours. If SOAP fails,
//! the REST data still lands, snapshots and host NICs stay as stored, and the run is partial.

use super::{
    DeviceBundle, FetchContext, FetchSummary, Item, LinkRecord, normalize_mac, short_hostname,
};
use crate::config::Secret;
use crate::http::{RequestParts, SourceError};
use crate::model::{
    DeviceRecord, DeviceType, InterfaceRecord, RelationshipType, SourceKind, VmRecord, VolumeRecord,
};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

/// Re-logins allowed in one run before an expiring session is treated as an authentication
/// failure (a storm of logins helps nobody).
const MAX_RELOGINS: u32 = 20;

struct Session<'a> {
    ctx: &'a FetchContext,
    user: String,
    password: Secret,
    token: tokio::sync::RwLock<String>,
    relogins: AtomicU32,
}

enum Listed {
    Items(Vec<Value>),
    TooMany,
}

impl<'a> Session<'a> {
    async fn login(ctx: &'a FetchContext) -> Result<Session<'a>, SourceError> {
        let (user, password) = ctx.required_password()?;
        let session = Session {
            ctx,
            user,
            password,
            token: tokio::sync::RwLock::new(String::new()),
            relogins: AtomicU32::new(0),
        };
        let token = session.create().await?;
        *session.token.write().await = token;
        Ok(session)
    }

    async fn create(&self) -> Result<String, SourceError> {
        let client = &self.ctx.client;
        let answer = client
            .send(
                Method::POST,
                "/api/session",
                &RequestParts {
                    basic: Some((&self.user, &self.password)),
                    ..Default::default()
                },
            )
            .await?;
        if answer.status.as_u16() == 404 {
            // The `/api` REST API (sessions, `/api/vcenter/...`) arrived in vSphere 7.0 U2;
            // older releases only have `/rest/com/vmware/cis/session`.
            return Err(client.api_error(
                &answer.url,
                "this vCenter has no /api/session: its REST API is older than vSphere 7.0 U2, \
                 which infradeck needs (older releases only serve /rest/...)",
            ));
        }
        let answer = client.expect_success(answer)?;
        let token: Value = client.decode(&answer)?;
        token.as_str().map(str::to_string).ok_or_else(|| {
            client.api_error(
                &answer.url,
                format!("session id is not a JSON string: {token}"),
            )
        })
    }

    /// Logs in again unless another request already did since `stale` was read.
    async fn relogin(&self, stale: &str) -> Result<(), SourceError> {
        let mut token = self.token.write().await;
        if *token != stale {
            return Ok(());
        }
        if self.relogins.fetch_add(1, Ordering::Relaxed) >= MAX_RELOGINS {
            return Err(SourceError::Unauthorized {
                source_name: self.ctx.client.name.clone(),
                url: self.ctx.client.url("/api/session"),
                message: format!("the session expired {MAX_RELOGINS} times in one run"),
            });
        }
        tracing::info!(source = %self.ctx.client.name, "vCenter session expired; logging in again");
        *token = self.create().await?;
        Ok(())
    }

    /// GET with the session; on 401 logs in again once and replays. Non-2xx answers are returned
    /// as they are, for the caller to interpret vCenter's error body.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<crate::http::Answer, SourceError> {
        self.get_answering(path, query, &[]).await
    }

    /// `get`, with `answers` statuses taken as the answer instead of retried.
    async fn get_answering(
        &self,
        path: &str,
        query: &[(&str, String)],
        answers: &[u16],
    ) -> Result<crate::http::Answer, SourceError> {
        let client = &self.ctx.client;
        for replay in 0..2 {
            let token = self.token.read().await.clone();
            let headers = [("vmware-api-session-id", token.clone())];
            let answer = client
                .send(
                    Method::GET,
                    path,
                    &RequestParts {
                        query,
                        headers: &headers,
                        answers,
                        ..Default::default()
                    },
                )
                .await?;
            if answer.status == reqwest::StatusCode::UNAUTHORIZED && replay == 0 {
                self.relogin(&token).await?;
                continue;
            }
            return Ok(answer);
        }
        Err(SourceError::Unauthorized {
            source_name: client.name.clone(),
            url: client.url(path),
            message: "session rejected right after logging in again".into(),
        })
    }

    async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        let answer = self.get(path, query).await?;
        let answer = self.ctx.client.expect_success(answer)?;
        self.ctx.client.decode(&answer)
    }

    /// A list call; `TooMany` when vCenter refuses with `too_many_matches` (decided on the
    /// `error_type`, since the HTTP status for it varies between versions).
    async fn list(&self, path: &str, query: &[(&str, String)]) -> Result<Listed, SourceError> {
        let answer = self.get(path, query).await?;
        if !answer.status.is_success() {
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if body["error_type"] == "UNABLE_TO_ALLOCATE_RESOURCE" {
                return Ok(Listed::TooMany);
            }
            return Err(self
                .ctx
                .client
                .expect_success(answer)
                .err()
                .unwrap_or_else(|| self.ctx.client.api_error(path, "unexpected answer")));
        }
        let value: Value = self.ctx.client.decode(&answer)?;
        match value {
            Value::Array(items) => Ok(Listed::Items(items)),
            other => Err(self.ctx.client.api_error(
                &answer.url,
                format!("expected a JSON array, got {}", short(&other)),
            )),
        }
    }

    async fn logout(&self) {
        let token = self.token.read().await.clone();
        let headers = [("vmware-api-session-id", token)];
        let _ = self
            .ctx
            .client
            .send(
                Method::DELETE,
                "/api/session",
                &RequestParts {
                    headers: &headers,
                    ..Default::default()
                },
            )
            .await;
    }
}

/// A JSON value for an error message, cut at 80 characters.
fn short(v: &Value) -> String {
    crate::text::clip_chars(&v.to_string(), 80).into_owned()
}

fn record(
    ctx: &FetchContext,
    source_id: &str,
    name: &str,
    device_type: DeviceType,
    metadata: Value,
) -> DeviceRecord {
    DeviceRecord {
        source_system: SourceKind::Vcenter.as_str().to_string(),
        source_identifier: ctx.source.id.clone(),
        source_id: source_id.to_string(),
        name: name.to_string(),
        device_type,
        metadata: json!({ "vcenter": metadata }),
    }
}

fn hosts_link(parent: &str, child: &str) -> Item {
    Item::Link(LinkRecord {
        parent: parent.to_string(),
        child: child.to_string(),
        relationship_type: RelationshipType::Hosts,
        metadata: Value::Null,
    })
}

/// Fetches the whole inventory of one vCenter.
pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    ctx.progress.set_phase("connect");
    let session = Session::login(ctx).await?;
    let result = fetch_with(ctx, &session).await;
    session.logout().await;
    result
}

/// Where a host sits: its name, cluster (none for a standalone host) and datacenter.
#[derive(Clone)]
struct Placement {
    host_name: String,
    cluster: Option<String>,
    datacenter: String,
}

/// The datastore types of vCenter's REST API. The enum is closed, so a list split by every type
/// is the whole list, unless vCenter reports a type outside it (vcsim's `OTHER`): see
/// [`split_list`].
const DATASTORE_TYPES: [&str; 7] = ["VMFS", "NFS", "NFS41", "CIFS", "VSAN", "VFFS", "VVOL"];
/// vCenter's documented list caps (7.0 and later): a refused list is longer than these.
const DATASTORE_CAP: usize = 2500;
const NETWORK_CAP: usize = 1000;
const NETWORK_TYPES: [&str; 3] = [
    "STANDARD_PORTGROUP",
    "DISTRIBUTED_PORTGROUP",
    "OPAQUE_NETWORK",
];

async fn fetch_with(
    ctx: &FetchContext,
    session: &Session<'_>,
) -> Result<FetchSummary, SourceError> {
    // Why the run cannot sweep, collected while the phases go on.
    let mut gaps: Vec<String> = Vec::new();
    // SOAP first: REST and SOAP share moids, and the bundles below carry what SOAP read.
    ctx.progress.set_phase("snapshots and host NICs (SOAP)");
    let soap = match super::vcenter_soap::read(ctx).await {
        Ok(inventory) => Some(inventory),
        Err(err @ SourceError::Cancelled { .. }) => return Err(err),
        Err(err) => {
            gaps.push(format!(
                "vCenter's SOAP API (vim25) could not be read, so snapshots and host NICs are                  kept as last known: {err}"
            ));
            None
        }
    };
    let soap = soap.as_ref();
    ctx.progress.set_phase("list datacenters");
    let datacenters = match session.list("/api/vcenter/datacenter", &[]).await? {
        Listed::Items(items) => items,
        Listed::TooMany => {
            return Err(ctx.client.api_error(
                &ctx.client.url("/api/vcenter/datacenter"),
                "more datacenters than vCenter will list at once",
            ));
        }
    };
    let datacenters: Vec<(String, String)> = datacenters
        .iter()
        .map(|dc| {
            let id = dc["datacenter"].as_str().unwrap_or_default().to_string();
            let name = dc["name"].as_str().unwrap_or(&id).to_string();
            (id, name)
        })
        .collect();

    ctx.progress.set_phase("list networks");
    let mut network_names = std::collections::HashMap::new();
    for (dc, dc_name) in &datacenters {
        let networks = split_list(
            session,
            "/api/vcenter/network",
            dc,
            ("types", &NETWORK_TYPES),
            NETWORK_CAP,
        )
        .await?
        .unwrap_or_else(|| {
            gaps.push(format!(
                "the port groups of datacenter {dc_name} hit vCenter's result cap even by type: \
                     NICs on them show the port group id"
            ));
            Vec::new()
        });
        for network in networks {
            if let (Some(id), Some(name)) = (network["network"].as_str(), network["name"].as_str())
            {
                network_names.insert(id.to_string(), name.to_string());
            }
        }
    }

    let mut placements: std::collections::HashMap<String, Placement> =
        std::collections::HashMap::new();
    ctx.progress.set_phase("list hosts");
    for (dc, dc_name) in &datacenters {
        ctx.check_cancelled()?;
        let clusters = match session
            .list("/api/vcenter/cluster", &[("datacenters", dc.clone())])
            .await?
        {
            Listed::Items(items) => items,
            Listed::TooMany => {
                gaps.push(format!(
                    "datacenter {dc_name} has more clusters than vCenter will list at once: its \
                     clusters, hosts and VMs were not read"
                ));
                continue;
            }
        };
        for cluster in &clusters {
            let id = cluster["cluster"].as_str().unwrap_or_default().to_string();
            let name = cluster["name"].as_str().unwrap_or(&id).to_string();
            ctx.emit(Item::Device(Box::new(DeviceBundle::new(record(
                ctx,
                &id,
                &name,
                DeviceType::Cluster,
                json!({
                    "ha_enabled": cluster["ha_enabled"], "drs_enabled": cluster["drs_enabled"],
                    "datacenter": dc_name,
                }),
            )))))
            .await?;
            let place = Placement {
                host_name: String::new(),
                cluster: Some(name.clone()),
                datacenter: dc_name.clone(),
            };
            let hosts = list_hosts(session, &[("clusters", id.clone())], &name).await?;
            for host in hosts {
                let host_id = emit_host(ctx, &host, &place, soap).await?;
                ctx.emit(hosts_link(&id, &host_id)).await?;
                placements.insert(host_id, place.clone().named(&host));
            }
        }
        // A host outside any cluster lives in a plain compute resource: listed on its own.
        let place = Placement {
            host_name: String::new(),
            cluster: None,
            datacenter: dc_name.clone(),
        };
        let standalone = list_hosts(
            session,
            &[("standalone", "true".into()), ("datacenters", dc.clone())],
            &format!("datacenter {dc_name} (standalone)"),
        )
        .await?;
        for host in standalone {
            let host_id = emit_host(ctx, &host, &place, soap).await?;
            placements.insert(host_id, place.clone().named(&host));
        }
    }

    ctx.progress.set_phase("list vms");
    let host_ids: Vec<String> = placements.keys().cloned().collect();
    // Futures are collected first: a stream over a borrowing closure is not provably `Send`
    // (rustc #110338), and the engine spawns runs.
    let pending: Vec<_> = host_ids.iter().map(|host| listing(session, host)).collect();
    let listings = futures::stream::iter(pending).buffer_unordered(ctx.source.max_in_flight.max(1));
    futures::pin_mut!(listings);
    let mut listed_vms: Vec<(String, String, Value)> = Vec::new(); // (vm moid, host moid, summary)
    while let Some((host, listed)) = listings.next().await {
        ctx.check_cancelled()?;
        for vm in listed? {
            let moid = vm["vm"].as_str().unwrap_or_default().to_string();
            listed_vms.push((moid, host.clone(), vm));
        }
    }
    ctx.progress.set_total(listed_vms.len() as u64);
    ctx.progress.set_phase("fetch vms");
    let network_names = &network_names;
    let pending: Vec<_> = listed_vms
        .iter()
        .map(|(moid, host, summary)| {
            let place = placements.get(host).cloned();
            let snapshots = soap.and_then(|s| s.snapshots.get(moid.as_str()));
            placed_vm(
                ctx,
                session,
                (moid, host, summary),
                place,
                network_names,
                snapshots,
            )
        })
        .collect();
    let details =
        futures::stream::iter(pending).buffer_unordered(ctx.source.max_in_flight.max(1) * 2);
    futures::pin_mut!(details);
    let mut vanished = 0;
    let mut failed: Vec<String> = Vec::new();
    while let Some(result) = details.next().await {
        ctx.check_cancelled()?;
        match result {
            Ok((Some(bundle), host, moid)) => {
                ctx.emit(Item::Device(Box::new(bundle))).await?;
                ctx.emit(hosts_link(&host, &moid)).await?;
            }
            // Deleted between list and detail: not an error, and not seen either.
            Ok((None, _, _)) => vanished += 1,
            // One VM whose detail failed does not fail its neighbours.
            Err(err) if err.is_item_level() => failed.push(err.to_string()),
            Err(err) => return Err(err),
        }
        ctx.progress.inc();
    }

    ctx.progress.set_phase("list datastores");
    for (dc, dc_name) in &datacenters {
        ctx.check_cancelled()?;
        let Some(datastores) = split_list(
            session,
            "/api/vcenter/datastore",
            dc,
            ("types", &DATASTORE_TYPES),
            DATASTORE_CAP,
        )
        .await?
        else {
            // A capped list is not the whole list: sweeping by it would delete every
            // datastore it left out.
            gaps.push(format!(
                "the datastore list of datacenter {dc_name} hit vCenter's result cap even by \
                 type and was not read: no datastore was swept"
            ));
            continue;
        };
        for ds in datastores {
            emit_datastore(ctx, &ds, dc_name).await?;
        }
    }
    let complete = failed.is_empty() && gaps.is_empty();
    let mut notes = vec![
        (vanished > 0).then(|| format!("{vanished} VMs disappeared between listing and detail")),
        super::item_failures_note("VMs", &failed),
    ];
    notes.extend(gaps.into_iter().map(Some));
    Ok(FetchSummary {
        complete,
        note: super::join_notes(notes),
    })
}

impl Placement {
    fn named(mut self, host: &Value) -> Placement {
        let id = host["host"].as_str().unwrap_or_default();
        self.host_name = host["name"].as_str().unwrap_or(id).to_string();
        self
    }
}

/// The hosts matching `query`; `what` names them in the error when even that list is capped
/// (vSphere allows far fewer hosts per cluster than the cap, so this is not split further).
async fn list_hosts(
    session: &Session<'_>,
    query: &[(&str, String)],
    what: &str,
) -> Result<Vec<Value>, SourceError> {
    match session.list("/api/vcenter/host", query).await? {
        Listed::Items(items) => Ok(items),
        Listed::TooMany => Err(session.ctx.client.api_error(
            &session.ctx.client.url("/api/vcenter/host"),
            format!("{what} has more hosts than vCenter will list at once"),
        )),
    }
}

/// Emits one host with its physical NICs (from SOAP; left as stored when SOAP failed); its moid.
async fn emit_host(
    ctx: &FetchContext,
    host: &Value,
    place: &Placement,
    soap: Option<&super::vcenter_soap::SoapInventory>,
) -> Result<String, SourceError> {
    let host_id = host["host"].as_str().unwrap_or_default().to_string();
    let host_name = host["name"].as_str().unwrap_or(&host_id).to_string();
    // From SOAP; when SOAP failed this run, what was stored stays (no change is recorded
    // for what could not be read).
    let maintenance = match soap {
        Some(soap) => soap.maintenance.get(&host_id).map(|m| json!(m)),
        None => ctx
            .hints
            .metadata
            .get(&host_id)
            .map(|stored| stored["vcenter"]["in_maintenance_mode"].clone())
            .filter(|v| !v.is_null()),
    };
    let mut metadata = json!({
        "connection_state": host["connection_state"],
        "power_state": host.get("power_state").cloned().unwrap_or(Value::Null),
        "cluster": place.cluster,
        "datacenter": place.datacenter,
        "hostname": short_hostname(&host_name),
        "fqdn": host_name.to_ascii_lowercase(),
    });
    if let (Some(flag), Some(map)) = (maintenance, metadata.as_object_mut()) {
        map.insert("in_maintenance_mode".into(), flag);
    }
    let mut bundle = DeviceBundle::new(record(
        ctx,
        &host_id,
        &host_name,
        DeviceType::Server,
        metadata,
    ));
    bundle.interfaces = soap
        .and_then(|s| s.uplinks.get(&host_id))
        .map(|uplinks| uplinks.iter().map(uplink_interface).collect());
    ctx.emit(Item::Device(Box::new(bundle))).await?;
    Ok(host_id)
}

/// A host NIC as stored: its CDP/LLDP neighbour in the metadata, for correlation to turn into
/// a `connects_to` relationship with the switch.
fn uplink_interface(uplink: &super::vcenter_soap::Uplink) -> InterfaceRecord {
    let mut interface = uplink.interface.clone();
    if let (Some(n), Some(map)) = (&uplink.neighbour, interface.metadata.as_object_mut()) {
        map.insert(
            "neighbour".into(),
            json!({"protocol": n.protocol, "switch": n.switch, "port": n.port}),
        );
    }
    interface
}

async fn emit_datastore(
    ctx: &FetchContext,
    ds: &Value,
    datacenter: &str,
) -> Result<(), SourceError> {
    let capacity = ds["capacity"].as_i64();
    let free = ds["free_space"].as_i64();
    ctx.emit(Item::Volume(
        Box::new(VolumeRecord {
            source_system: SourceKind::Vcenter.as_str().to_string(),
            source_identifier: ctx.source.id.clone(),
            source_id: ds["datastore"].as_str().unwrap_or_default().to_string(),
            name: ds["name"].as_str().unwrap_or_default().to_string(),
            volume_type: Some("datastore".into()),
            capacity_bytes: capacity,
            used_bytes: capacity.zip(free).map(|(c, f)| c - f),
            storage_array: None,
            raid_level: None,
            thin_provisioned: None,
            metadata: json!({"vcenter": {"type": ds["type"], "datacenter": datacenter}}),
            device_id: None,
        }),
        None,
    ))
    .await
}

/// The whole of one datacenter's `path` list, split by every value of `key` when it hits the
/// cap (`cap`, vCenter's documented one); `None` when it cannot be read whole.
///
/// The parts are trusted only if they add up to more than the cap: the unsplit list was refused,
/// so it is longer than that, and parts that are not have missed items of a value outside
/// `values` (vcsim reports datastores of type `OTHER`, which no REST filter selects). So a cap
/// lowered below vCenter's documented one (in tests) never yields a trusted split.
async fn split_list(
    session: &Session<'_>,
    path: &str,
    datacenter: &str,
    (key, values): (&str, &[&str]),
    cap: usize,
) -> Result<Option<Vec<Value>>, SourceError> {
    let dc = ("datacenters", datacenter.to_string());
    if let Listed::Items(items) = session.list(path, std::slice::from_ref(&dc)).await? {
        return Ok(Some(items));
    }
    let mut all = Vec::new();
    for value in values {
        match session
            .list(path, &[dc.clone(), (key, value.to_string())])
            .await?
        {
            Listed::Items(items) => all.extend(items),
            Listed::TooMany => return Ok(None),
        }
    }
    Ok((all.len() > cap).then_some(all))
}

async fn listing(session: &Session<'_>, host: &str) -> (String, Result<Vec<Value>, SourceError>) {
    (host.to_string(), vms_on_host(session, host).await)
}

type Placed = (Option<DeviceBundle>, String, String);

/// `snapshots`: `None` when SOAP failed or did not know the VM (created in between): unknown.
async fn placed_vm(
    ctx: &FetchContext,
    session: &Session<'_>,
    (moid, host, summary): (&str, &str, &Value),
    place: Option<Placement>,
    network_names: &std::collections::HashMap<String, String>,
    snapshots: Option<&super::vcenter_soap::Snapshots>,
) -> Result<Placed, SourceError> {
    let place = place.unwrap_or(Placement {
        host_name: String::new(),
        cluster: None,
        datacenter: String::new(),
    });
    let mut bundle = vm_bundle(ctx, session, moid, summary, &place, network_names).await?;
    if let Some(bundle) = bundle.as_mut() {
        match (snapshots, bundle.vm.as_mut()) {
            (Some(read), Some(vm)) => {
                vm.snapshots = read.list.clone();
                vm.total_snapshot_size_bytes = read.size_bytes;
            }
            _ => bundle.snapshots_unknown = true,
        }
    }
    Ok((bundle, host.to_string(), moid.to_string()))
}

/// The VMs on one host, split by power state if the list hits the cap.
async fn vms_on_host(session: &Session<'_>, host: &str) -> Result<Vec<Value>, SourceError> {
    match session
        .list("/api/vcenter/vm", &[("hosts", host.to_string())])
        .await?
    {
        Listed::Items(items) => Ok(items),
        Listed::TooMany => {
            let mut all = Vec::new();
            for state in ["POWERED_ON", "POWERED_OFF", "SUSPENDED"] {
                match session
                    .list(
                        "/api/vcenter/vm",
                        &[
                            ("hosts", host.to_string()),
                            ("power_states", state.to_string()),
                        ],
                    )
                    .await?
                {
                    Listed::Items(items) => all.extend(items),
                    Listed::TooMany => {
                        return Err(session.ctx.client.api_error(
                            &session.ctx.client.url("/api/vcenter/vm"),
                            format!(
                                "host {host} has more {state} VMs than vCenter will list at once"
                            ),
                        ));
                    }
                }
            }
            Ok(all)
        }
    }
}

/// Detail, tools and guest networking of one VM; `None` if it vanished meanwhile.
async fn vm_bundle(
    ctx: &FetchContext,
    session: &Session<'_>,
    moid: &str,
    summary: &Value,
    place: &Placement,
    network_names: &std::collections::HashMap<String, String>,
) -> Result<Option<DeviceBundle>, SourceError> {
    let answer = session.get(&format!("/api/vcenter/vm/{moid}"), &[]).await?;
    if answer.status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let detail: Value = ctx.client.decode(&ctx.client.expect_success(answer)?)?;
    let power_state = detail["power_state"]
        .as_str()
        .or(summary["power_state"].as_str())
        .unwrap_or("UNKNOWN")
        .to_string();
    let tools_running = if power_state == "POWERED_ON" {
        let tools = session
            .get_json(&format!("/api/vcenter/vm/{moid}/tools"), &[])
            .await?;
        Some(tools["run_state"] == "RUNNING")
    } else {
        Some(false)
    };
    // 503 on guest data: VMware Tools are not (or no longer) ready. That is the answer for now,
    // so it is not retried; guest data is unknown, not empty.
    let guest_interfaces = if tools_running == Some(true) {
        guest_data(ctx, session, moid, "networking/interfaces").await?
    } else {
        None
    };
    let guest: Option<Vec<Value>> = match guest_interfaces {
        Some(Value::Array(items)) => Some(items),
        _ => None,
    };
    // The host name the guest itself reports (`host_name`, often the FQDN); per-NIC DNS values
    // only when Tools send no identity.
    let identity = if tools_running == Some(true) {
        guest_data(ctx, session, moid, "identity").await?
    } else {
        None
    };
    let reported_host_name = identity
        .as_ref()
        .and_then(|i| i["host_name"].as_str())
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase);
    let name = detail["name"]
        .as_str()
        .or(summary["name"].as_str())
        .unwrap_or(moid)
        .to_string();
    let cpu = detail["cpu"]["count"]
        .as_i64()
        .or(summary["cpu_count"].as_i64());
    let memory = detail["memory"]["size_MiB"]
        .as_i64()
        .or(summary["memory_size_MiB"].as_i64());
    let guest_os = detail["guest_OS"].as_str().map(str::to_string);
    let bios_uuid = detail["identity"]["bios_uuid"]
        .as_str()
        .map(str::to_ascii_lowercase);
    let instance_uuid = detail["identity"]["instance_uuid"]
        .as_str()
        .map(str::to_ascii_lowercase);

    let mut disks = Vec::new();
    let mut total_disk = 0i64;
    if let Some(map) = detail["disks"].as_object() {
        for (key, disk) in map {
            let capacity = disk["capacity"].as_i64().unwrap_or(0);
            total_disk += capacity;
            let vmdk = disk["backing"]["vmdk_file"].as_str().unwrap_or_default();
            let datastore = vmdk
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(d, _)| d.to_string());
            disks.push(json!({"key": key, "label": disk["label"], "capacity_bytes": capacity, "datastore": datastore, "file": vmdk}));
        }
    }
    let mut interfaces = Vec::new();
    let mut all_ips = Vec::new();
    let mut macs = Vec::new();
    let mut hostname = None;
    if let Some(map) = detail["nics"].as_object() {
        for (key, nic) in map {
            let mac = nic["mac_address"].as_str().and_then(normalize_mac);
            let reported = guest
                .as_ref()
                .and_then(|g| g.iter().find(|i| i["nic"].as_str() == Some(key.as_str())));
            if hostname.is_none() {
                hostname = reported
                    .and_then(|r| r["dns_values"]["host_name"].as_str())
                    .filter(|h| !h.is_empty())
                    .map(short_hostname);
            }
            let ips: Vec<String> = reported
                .and_then(|r| r["ip"]["ip_addresses"].as_array())
                .map(|list| {
                    list.iter()
                        .filter(|a| a["origin"] != "LINKLAYER")
                        .filter_map(|a| {
                            Some(format!(
                                "{}/{}",
                                a["ip_address"].as_str()?,
                                a["prefix_length"].as_u64().unwrap_or(32)
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            all_ips.extend(
                ips.iter()
                    .map(|ip| ip.split('/').next().unwrap_or(ip).to_string()),
            );
            if let Some(mac) = &mac {
                macs.push(mac.clone());
            }
            interfaces.push(InterfaceRecord {
                interface_name: nic["label"].as_str().unwrap_or(key).to_string(),
                mac_address: mac,
                ip_addresses: ips,
                speed_mbps: None,
                status: Some(
                    if nic["state"] == "CONNECTED" {
                        "up"
                    } else {
                        "down"
                    }
                    .to_string(),
                ),
                interface_type: Some("virtual".into()),
                metadata: json!({
                    "key": key, "adapter": nic["type"],
                    "network": network_name(&nic["backing"], network_names),
                    "network_id": nic["backing"]["network"],
                }),
            });
        }
    }
    let hostname = reported_host_name
        .as_deref()
        .map(short_hostname)
        .or(hostname)
        .unwrap_or_else(|| short_hostname(&name));
    let fqdn = reported_host_name.filter(|h| h.contains('.'));
    all_ips.sort();
    macs.sort();
    let vm = VmRecord {
        instance_uuid: instance_uuid.clone(),
        guest_os: guest_os.clone(),
        cpu_count: cpu,
        memory_mb: memory,
        power_state: Some(power_state.clone()),
        tools_running,
        ip_addresses: json!(all_ips),
        disks: Value::Array(disks),
        // Not in the REST API: filled from SOAP by `placed_vm`.
        snapshots: Value::Null,
        total_disk_capacity_bytes: Some(total_disk),
        total_snapshot_size_bytes: None,
    };
    let metadata = json!({
        "power_state": power_state,
        "guest_os": guest_os,
        "cpu_count": cpu,
        "memory_mb": memory,
        "cluster": place.cluster,
        "datacenter": place.datacenter,
        "host": place.host_name,
        "hostname": hostname,
        "fqdn": fqdn,
        "bios_uuid": bios_uuid,
        "instance_uuid": instance_uuid,
        "macs": macs,
    });
    let mut bundle = DeviceBundle::new(record(ctx, moid, &name, DeviceType::Vm, metadata));
    bundle.vm = Some(vm);
    bundle.interfaces = Some(interfaces);
    bundle.ips_unknown = guest.is_none();
    Ok(Some(bundle))
}

/// `/api/vcenter/vm/{moid}/guest/{what}`; `None` when Tools cannot answer (503, not retried).
async fn guest_data(
    ctx: &FetchContext,
    session: &Session<'_>,
    moid: &str,
    what: &str,
) -> Result<Option<Value>, SourceError> {
    let answer = session
        .get_answering(&format!("/api/vcenter/vm/{moid}/guest/{what}"), &[], &[503])
        .await?;
    if answer.status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        return Ok(None);
    }
    Ok(Some(
        ctx.client.decode(&ctx.client.expect_success(answer)?)?,
    ))
}

/// A NIC's port group name: sent with the backing only for a standard port group; a distributed
/// one is named through `/api/vcenter/network` (its id when that list could not be read).
fn network_name(
    backing: &Value,
    network_names: &std::collections::HashMap<String, String>,
) -> Value {
    if let Some(name) = backing["network_name"].as_str() {
        return json!(name);
    }
    match backing["network"].as_str() {
        Some(id) => json!(network_names.get(id).map(String::as_str).unwrap_or(id)),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn error_excerpts_cut_multibyte_text_by_characters() {
        let value = serde_json::json!(["ö".repeat(100)]);
        let cut = short(&value);
        assert_eq!(cut.chars().count(), 81, "{cut}");
    }
}
