//! NetBox 4.x REST: a generic object store behind the real URL scheme, serializers and rules.
//!
//! Faithful where a client can trip: `Token` and `Bearer nbt_` auth with 403 (never 401) on bad
//! tokens; trailing-slash redirects; limit/offset paging with absolute `next` links and the 1000
//! cap; brief nested objects and `{value, label}` choices on read, bare values and lookup dicts on
//! write; 400 bodies with per-field errors (an array of them, in request order, for bulk); bulk
//! create/update/delete as one transaction; `ETag`/`If-Match` → 412; 409 on protected deletes;
//! `X-Request-ID` on every response; and an object-changes log with pre/post data.

use super::estate::Estate;
use super::http::{Faults, Query, json};
use super::rng::Rng;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// NetBox's default `MAX_PAGE_SIZE`.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 50;

/// One object type: its endpoint, model label and write rules.
struct ObjType {
    endpoint: &'static str,
    model: &'static str,
    required: &'static [&'static str],
    /// Plain (non-relational, non-choice) writable fields.
    plain: &'static [&'static str],
    /// (field, target endpoint)
    fks: &'static [(&'static str, &'static str)],
    /// (field, choices, default)
    choices: &'static [(&'static str, &'static [&'static str], Option<&'static str>)],
}

const STATUS_DEVICE: &[&str] = &[
    "offline",
    "active",
    "planned",
    "staged",
    "failed",
    "inventory",
    "decommissioning",
];
const STATUS_VM: &[&str] = &[
    "offline",
    "active",
    "planned",
    "staged",
    "failed",
    "decommissioning",
    "paused",
];
const STATUS_IP: &[&str] = &["active", "reserved", "deprecated", "dhcp", "slaac"];
const STATUS_SITE: &[&str] = &["planned", "staging", "active", "decommissioning", "retired"];
const STATUS_CLUSTER: &[&str] = &["planned", "staging", "active", "decommissioning", "offline"];
const IFACE_TYPES: &[&str] = &[
    "virtual",
    "other",
    "1000base-t",
    "10gbase-x-sfpp",
    "25gbase-x-sfp28",
    "100gbase-x-qsfp28",
    "lag",
];
const ASSIGNABLE: &[&str] = &["dcim.interface", "virtualization.vminterface"];

const TYPES: &[ObjType] = &[
    ObjType {
        endpoint: "dcim/sites",
        model: "dcim.site",
        required: &["name", "slug"],
        plain: &["name", "slug", "description", "comments"],
        fks: &[],
        choices: &[("status", STATUS_SITE, Some("active"))],
    },
    ObjType {
        endpoint: "dcim/manufacturers",
        model: "dcim.manufacturer",
        required: &["name", "slug"],
        plain: &["name", "slug", "description"],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "dcim/device-types",
        model: "dcim.devicetype",
        required: &["manufacturer", "model", "slug"],
        plain: &["model", "slug", "description", "u_height"],
        fks: &[("manufacturer", "dcim/manufacturers")],
        choices: &[],
    },
    ObjType {
        endpoint: "dcim/device-roles",
        model: "dcim.devicerole",
        required: &["name", "slug"],
        plain: &["name", "slug", "color", "description", "vm_role"],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "dcim/devices",
        model: "dcim.device",
        required: &["device_type", "role", "site"],
        plain: &["name", "serial", "asset_tag", "description", "comments"],
        fks: &[
            ("device_type", "dcim/device-types"),
            ("role", "dcim/device-roles"),
            ("site", "dcim/sites"),
            ("cluster", "virtualization/clusters"),
            ("primary_ip4", "ipam/ip-addresses"),
        ],
        choices: &[("status", STATUS_DEVICE, Some("active"))],
    },
    ObjType {
        endpoint: "dcim/interfaces",
        model: "dcim.interface",
        required: &["device", "name", "type"],
        plain: &["name", "enabled", "description", "mtu", "mgmt_only"],
        fks: &[
            ("device", "dcim/devices"),
            ("primary_mac_address", "dcim/mac-addresses"),
        ],
        choices: &[("type", IFACE_TYPES, None)],
    },
    ObjType {
        endpoint: "dcim/mac-addresses",
        model: "dcim.macaddress",
        required: &["mac_address"],
        plain: &[
            "mac_address",
            "description",
            "assigned_object_type",
            "assigned_object_id",
        ],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "virtualization/cluster-types",
        model: "virtualization.clustertype",
        required: &["name", "slug"],
        plain: &["name", "slug", "description", "comments"],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "virtualization/clusters",
        model: "virtualization.cluster",
        required: &["name", "type"],
        // NetBox 4.2+: a cluster's place is a generic scope (`dcim.site` + id), not `site`.
        plain: &["name", "description", "comments", "scope_type", "scope_id"],
        fks: &[("type", "virtualization/cluster-types")],
        choices: &[("status", STATUS_CLUSTER, Some("active"))],
    },
    ObjType {
        endpoint: "virtualization/virtual-machines",
        model: "virtualization.virtualmachine",
        required: &["name"],
        plain: &[
            "name",
            "vcpus",
            "memory",
            "disk",
            "serial",
            "description",
            "comments",
        ],
        fks: &[
            ("cluster", "virtualization/clusters"),
            ("site", "dcim/sites"),
            ("device", "dcim/devices"),
            ("role", "dcim/device-roles"),
            ("primary_ip4", "ipam/ip-addresses"),
        ],
        choices: &[("status", STATUS_VM, Some("active"))],
    },
    ObjType {
        endpoint: "virtualization/interfaces",
        model: "virtualization.vminterface",
        required: &["virtual_machine", "name"],
        plain: &["name", "enabled", "description", "mtu"],
        fks: &[
            ("virtual_machine", "virtualization/virtual-machines"),
            ("primary_mac_address", "dcim/mac-addresses"),
        ],
        choices: &[],
    },
    ObjType {
        endpoint: "ipam/ip-addresses",
        model: "ipam.ipaddress",
        required: &["address"],
        plain: &[
            "address",
            "dns_name",
            "description",
            "assigned_object_type",
            "assigned_object_id",
        ],
        fks: &[],
        choices: &[("status", STATUS_IP, Some("active"))],
    },
    ObjType {
        endpoint: "extras/tags",
        model: "extras.tag",
        required: &["name", "slug"],
        plain: &["name", "slug", "color", "description"],
        fks: &[],
        choices: &[],
    },
];

/// Deleting a target is refused while these (endpoint, field) reference it.
const PROTECTED_BY: &[(&str, &str, &str)] = &[
    ("dcim/sites", "dcim/devices", "site"),
    ("dcim/manufacturers", "dcim/device-types", "manufacturer"),
    ("dcim/device-types", "dcim/devices", "device_type"),
    ("dcim/device-roles", "dcim/devices", "role"),
    (
        "virtualization/cluster-types",
        "virtualization/clusters",
        "type",
    ),
    (
        "virtualization/clusters",
        "virtualization/virtual-machines",
        "cluster",
    ),
];

/// Custom fields defined on devices and VMs.
const CUSTOM_FIELDS: &[&str] = &["inventory_source", "last_seen"];

fn obj_type(endpoint: &str) -> Option<&'static ObjType> {
    TYPES.iter().find(|t| t.endpoint == endpoint)
}

fn type_by_model(model: &str) -> Option<&'static ObjType> {
    TYPES.iter().find(|t| t.model == model)
}

/// All NetBox data; cloned for a bulk request so that a failure leaves it untouched.
#[derive(Clone, Default)]
pub struct NetboxDb {
    objects: BTreeMap<&'static str, BTreeMap<u64, Map<String, Value>>>,
    /// The last id given per endpoint: like NetBox's tables, each has its own sequence.
    last_ids: BTreeMap<&'static str, u64>,
    changes: Vec<Value>,
}

impl NetboxDb {
    fn next_id(&mut self, endpoint: &'static str) -> u64 {
        let last = self.last_ids.entry(endpoint).or_insert(0);
        *last += 1;
        *last
    }
}

/// Per-field validation errors in NetBox's shape.
type FieldErrors = Map<String, Value>;

fn field_error(field: &str, message: &str) -> FieldErrors {
    let mut m = Map::new();
    m.insert(field.to_string(), json!([message]));
    m
}

pub struct NetboxState {
    pub db: Mutex<NetboxDb>,
    pub(crate) faults: Arc<Faults>,
    /// A v1 token (40 hex), a v2 token (`nbt_<key>.<secret>`) and a read-only v2 token.
    pub token_v1: String,
    pub token_v2: String,
    pub token_read_only: String,
    pub(crate) base_url: RwLock<String>,
}

impl NetboxState {
    /// A NetBox as a new user has it (`seeded` false: empty, like a fresh install), or with the
    /// content of an estate already half in NetBox: the tag, sites, a cluster type, half the
    /// clusters and a fifth of the VMs (some drifted), hand-made VMs and a retired one.
    pub(crate) fn new(
        estate: &Estate,
        faults: Arc<Faults>,
        seed: u64,
        seeded: bool,
    ) -> Arc<NetboxState> {
        let mut rng = Rng::derive(seed, "netbox-tokens");
        let hex = |rng: &mut Rng, n: usize| -> String {
            (0..n)
                .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
                .collect()
        };
        let state = NetboxState {
            db: Mutex::new(NetboxDb::default()),
            faults,
            token_v1: hex(&mut rng, 40),
            token_v2: format!("nbt_{}.{}", hex(&mut rng, 12), hex(&mut rng, 40)),
            token_read_only: format!("nbt_{}.{}", hex(&mut rng, 12), hex(&mut rng, 40)),
            base_url: RwLock::new("http://127.0.0.1".into()),
        };
        if seeded {
            state.seed(estate);
        }
        Arc::new(state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NetboxDb> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of every object of one endpoint, in the write form (relations as ids), for tests.
    pub fn snapshot(&self, endpoint: &str) -> BTreeMap<u64, Value> {
        self.lock()
            .objects
            .get(endpoint)
            .map(|objs| {
                objs.iter()
                    .map(|(id, o)| (*id, Value::Object(o.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every change record so far (the object-changes log), oldest first; for tests.
    pub fn changes(&self) -> Vec<Value> {
        self.lock().changes.clone()
    }

    /// How many change records exist.
    pub fn change_count(&self) -> usize {
        self.lock().changes.len()
    }

    /// Writes directly (as a person editing NetBox would), bypassing the API; for tests.
    pub fn edit(&self, endpoint: &str, id: u64, field: &str, value: Value) -> bool {
        let mut db = self.lock();
        let Some(object) = db.objects.get_mut(endpoint).and_then(|o| o.get_mut(&id)) else {
            return false;
        };
        object.insert(field.to_string(), value);
        object.insert("last_updated".into(), json!(now_iso()));
        true
    }

    /// The starting content: the basics a NetBox has before infradeck, half the clusters
    /// (untagged, made by hand), some VMs already synced (tagged, a few drifted), VMs made by
    /// hand (untagged: never to be touched) and one tagged VM whose machine is gone.
    fn seed(&self, estate: &Estate) {
        let mut db = self.lock();
        let insert = |db: &mut NetboxDb, endpoint: &'static str, fields: Value| -> u64 {
            let id = db.next_id(endpoint);
            let Value::Object(mut map) = fields else {
                return id;
            };
            map.insert("id".into(), json!(id));
            map.insert("created".into(), json!("2025-03-01T20:01:23.458302Z"));
            map.insert("last_updated".into(), json!("2025-03-01T20:01:23.458302Z"));
            map.entry("custom_fields").or_insert(json!({}));
            map.entry("tags").or_insert(json!([]));
            if let Some(ty) = obj_type(endpoint) {
                fill_defaults(ty, &mut map);
            }
            db.objects.entry(endpoint).or_default().insert(id, map);
            id
        };
        let tag = insert(
            &mut db,
            "extras/tags",
            json!({"name": "infradeck", "slug": "infradeck", "color": "2196f3", "description": "managed by infradeck"}),
        );
        insert(
            &mut db,
            "extras/tags",
            json!({"name": "manual", "slug": "manual", "color": "9e9e9e", "description": ""}),
        );
        let sites: Vec<u64> = super::estate::SITES
            .iter()
            .map(|(slug, _)| insert(&mut db, "dcim/sites", json!({"name": slug.to_uppercase(), "slug": slug, "status": "active", "description": ""})))
            .collect();
        for (name, slug) in [
            ("VMware", "vmware"),
            ("Dell", "dell"),
            ("HPE", "hpe"),
            ("Cisco", "cisco"),
            ("Arista", "arista"),
            ("Juniper", "juniper"),
        ] {
            insert(
                &mut db,
                "dcim/manufacturers",
                json!({"name": name, "slug": slug, "description": ""}),
            );
        }
        for (name, slug, color) in [
            ("Server", "server", "2196f3"),
            ("Switch", "switch", "4caf50"),
            ("Router", "router", "ff9800"),
            ("Firewall", "firewall", "f44336"),
            ("Storage", "storage", "9c27b0"),
        ] {
            insert(
                &mut db,
                "dcim/device-roles",
                json!({"name": name, "slug": slug, "color": color, "description": "", "vm_role": name == "Server"}),
            );
        }
        let vsphere = insert(
            &mut db,
            "virtualization/cluster-types",
            json!({"name": "VMware vSphere", "slug": "vmware-vsphere", "description": ""}),
        );
        let mut clusters = BTreeMap::new();
        for cluster in estate.clusters.iter().step_by(2) {
            let id = insert(
                &mut db,
                "virtualization/clusters",
                json!({"name": cluster.name, "type": vsphere, "scope_type": "dcim.site", "scope_id": sites[cluster.site], "status": "active", "description": "", "comments": ""}),
            );
            clusters.insert(cluster.name.clone(), (id, sites[cluster.site]));
        }
        for (i, vm) in estate
            .vms
            .iter()
            .take(2000)
            .enumerate()
            .filter(|(i, _)| i % 5 == 0)
        {
            let cluster = &estate.clusters[estate.hosts[vm.host].cluster];
            let Some(&(cluster_id, _)) = clusters.get(&cluster.name) else {
                continue;
            };
            let memory = if i % 4 == 0 {
                vm.memory_mib / 2
            } else {
                vm.memory_mib
            };
            let disk: u64 = vm.disks.iter().map(|d| d.capacity >> 20).sum();
            insert(
                &mut db,
                "virtualization/virtual-machines",
                json!({
                    "name": vm.hostname, "cluster": cluster_id, "site": sites[cluster.site], "status": "active",
                    "vcpus": vm.cpu_count, "memory": memory, "disk": disk, "serial": "", "description": "", "comments": "",
                    "tags": [tag], "custom_fields": {"inventory_source": "vcenter", "last_seen": "2026-10-01"},
                }),
            );
        }
        // NetBox gives a VM its cluster's site.
        for (name, (cluster_id, site)) in clusters.iter().take(3) {
            insert(
                &mut db,
                "virtualization/virtual-machines",
                json!({
                    "name": format!("manual-{name}"), "cluster": cluster_id, "site": site, "status": "active",
                    "vcpus": 2, "memory": 2048, "disk": 20480, "serial": "", "description": "made by hand", "comments": "",
                }),
            );
        }
        if let Some((cluster_id, site)) = clusters.values().next() {
            insert(
                &mut db,
                "virtualization/virtual-machines",
                json!({
                    "name": "retired-app-01", "cluster": cluster_id, "site": site, "status": "active",
                    "vcpus": 2, "memory": 4096, "disk": 40960, "serial": "", "description": "", "comments": "",
                    "tags": [tag], "custom_fields": {"inventory_source": "vcenter", "last_seen": "2026-08-01"},
                }),
            );
        }
    }
}

type Shared = Arc<NetboxState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/{*path}", any(api))
        .route("/api/", any(api_root))
        .with_state(state)
}

fn now_iso() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn detail(status: StatusCode, message: &str) -> Response {
    json(status, json!({"detail": message}))
}

fn title(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Which token a request carries: `Ok(write_enabled)` or the 403 message.
fn authenticate(state: &NetboxState, headers: &HeaderMap) -> Result<bool, &'static str> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err("Authentication credentials were not provided.");
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("token") {
        return if token == state.token_v1 {
            Ok(true)
        } else {
            Err("Invalid v1 token")
        };
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        if !token.starts_with("nbt_") {
            return Err("Could not parse key from v2 token");
        }
        if token == state.token_v2 {
            return Ok(true);
        }
        if token == state.token_read_only {
            return Ok(false);
        }
        return Err("Invalid v2 token");
    }
    Err("Invalid authorization header.")
}

fn finish(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("X-Request-ID", v);
    }
    response
        .headers_mut()
        .insert("API-Version", HeaderValue::from_static("4.6"));
    response
}

async fn api_root(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let request_id = Rng::new(Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64).uuid();
    if let Err(message) = authenticate(&state, &headers) {
        return finish(detail(StatusCode::FORBIDDEN, message), &request_id);
    }
    let base = state
        .base_url
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    finish(
        json(
            StatusCode::OK,
            json!({"dcim": format!("{base}/api/dcim/"), "virtualization": format!("{base}/api/virtualization/"), "ipam": format!("{base}/api/ipam/")}),
        ),
        &request_id,
    )
}

async fn api(
    State(state): State<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id =
        Rng::new(Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64 ^ state.faults.requests())
            .uuid();
    let response = handle(&state, &method, &uri, &headers, &body, &request_id);
    finish(response, &request_id)
}

fn handle(
    state: &NetboxState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
    request_id: &str,
) -> Response {
    let path = uri.path();
    if !path.ends_with('/') {
        let location = match uri.query() {
            Some(q) => format!("{path}/?{q}"),
            None => format!("{path}/"),
        };
        return (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, location)],
        )
            .into_response();
    }
    let write_enabled = match authenticate(state, headers) {
        Ok(w) => w,
        Err(message) => return detail(StatusCode::FORBIDDEN, message),
    };
    let rest = path.trim_start_matches("/api/").trim_end_matches('/');
    let segments: Vec<&str> = rest.split('/').collect();
    let q = Query::parse(uri.query());
    let base = state
        .base_url
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if rest == "status" {
        return json(
            StatusCode::OK,
            json!({"netbox-version": "4.7.3", "python-version": "3.12.7", "plugins": {}, "rq-workers-running": 1}),
        );
    }
    if segments.len() >= 2 && segments[0] == "core" && segments[1] == "object-changes" {
        if method != Method::GET {
            return detail(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("Method \"{method}\" not allowed."),
            );
        }
        let db = state.lock();
        return match segments.get(2) {
            Some(id) => match db
                .changes
                .iter()
                .find(|c| id.parse::<u64>().ok().is_some_and(|id| c["id"] == id))
            {
                Some(c) => json(StatusCode::OK, c.clone()),
                None => detail(StatusCode::NOT_FOUND, "Not found."),
            },
            None => {
                let filtered: Vec<Value> = db
                    .changes
                    .iter()
                    .filter(|c| {
                        q.0.iter().all(|(k, v)| match k.as_str() {
                            "changed_object_type" => c["changed_object_type"] == *v,
                            "changed_object_id" => v
                                .parse::<u64>()
                                .ok()
                                .is_some_and(|v| c["changed_object_id"] == v),
                            "action" => c["action"]["value"] == *v,
                            "request_id" => c["request_id"] == *v,
                            _ => true,
                        })
                    })
                    .cloned()
                    .collect();
                page(&base, path, &q, filtered)
            }
        };
    }
    if segments.len() < 2 {
        return detail(StatusCode::NOT_FOUND, "Not found.");
    }
    let endpoint = format!("{}/{}", segments[0], segments[1]);
    let Some(ty) = obj_type(&endpoint) else {
        return detail(StatusCode::NOT_FOUND, "Not found.");
    };
    let item: Option<u64> = match segments.get(2) {
        None => None,
        Some(id) => match id.parse() {
            Ok(id) if segments.len() == 3 => Some(id),
            _ => return detail(StatusCode::NOT_FOUND, "Not found."),
        },
    };
    if *method != Method::GET && !write_enabled {
        return detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        );
    }
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => Some(v),
            Err(e) => return detail(StatusCode::BAD_REQUEST, &format!("JSON parse error - {e}")),
        }
    };
    let mut db = state.lock();
    match (method.clone(), item) {
        (Method::GET, None) => {
            if let Some(response) = invalid_choice(&db, ty, &q) {
                return response;
            }
            let brief = q.get("brief") == Some("true");
            let objects: Vec<Value> = db
                .objects
                .get(ty.endpoint)
                .map(|objs| {
                    objs.values()
                        .filter(|o| list_filter(&db, ty, o, &q))
                        .map(|o| {
                            if brief {
                                brief_of(&db, &base, ty, o)
                            } else {
                                render(&db, &base, ty, o)
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            page(&base, path, &q, objects)
        }
        (Method::GET, Some(id)) => match db.objects.get(ty.endpoint).and_then(|o| o.get(&id)) {
            Some(object) => {
                let mut response = json(StatusCode::OK, render(&db, &base, ty, object));
                if let Some(etag) = etag(object).and_then(|e| HeaderValue::from_str(&e).ok()) {
                    response.headers_mut().insert(header::ETAG, etag);
                }
                response
            }
            None => detail(StatusCode::NOT_FOUND, "Not found."),
        },
        (Method::POST, None) => {
            let Some(body) = parsed else {
                return detail(StatusCode::BAD_REQUEST, "No data provided");
            };
            let (items, bulk) = match body {
                Value::Array(items) => (items, true),
                other => (vec![other], false),
            };
            transact(
                &mut db,
                &base,
                ty,
                &items,
                bulk.then_some("created"),
                StatusCode::CREATED,
                |db, item| create(db, ty, item, request_id),
            )
        }
        (Method::PATCH | Method::PUT, None) => {
            let partial = *method == Method::PATCH;
            let Some(Value::Array(items)) = parsed else {
                return detail(
                    StatusCode::BAD_REQUEST,
                    "Bulk update requires a list of objects",
                );
            };
            let ids: Vec<u64> = items
                .iter()
                .filter_map(|i| i.get("id").and_then(Value::as_u64))
                .collect();
            if let Some(response) = bulk_refusal(&db, ty, &ids, headers) {
                return response;
            }
            transact(
                &mut db,
                &base,
                ty,
                &items,
                Some("updated"),
                StatusCode::OK,
                |db, item| {
                    let id = item
                        .get("id")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| field_error("id", "This field is required."))?;
                    update(db, ty, id, item, partial, request_id)
                },
            )
        }
        (Method::PATCH | Method::PUT, Some(id)) => {
            let Some(body) = parsed else {
                return detail(StatusCode::BAD_REQUEST, "No data provided");
            };
            let Some(current) = db.objects.get(ty.endpoint).and_then(|o| o.get(&id)) else {
                return detail(StatusCode::NOT_FOUND, "Not found.");
            };
            if !if_match_holds(headers, current) {
                return precondition_failed(current);
            }
            let partial = *method == Method::PATCH;
            let mut scratch = db.clone();
            match update(&mut scratch, ty, id, &body, partial, request_id) {
                Ok(id) => {
                    *db = scratch;
                    let object = &db.objects[ty.endpoint][&id];
                    let mut response = json(StatusCode::OK, render(&db, &base, ty, object));
                    if let Some(etag) = etag(object).and_then(|e| HeaderValue::from_str(&e).ok()) {
                        response.headers_mut().insert(header::ETAG, etag);
                    }
                    response
                }
                Err(errors) => json(StatusCode::BAD_REQUEST, Value::Object(errors)),
            }
        }
        (Method::DELETE, Some(id)) => {
            if let Some(current) = db.objects.get(ty.endpoint).and_then(|o| o.get(&id))
                && !if_match_holds(headers, current)
            {
                return precondition_failed(current);
            }
            let mut scratch = db.clone();
            let message = parsed
                .as_ref()
                .and_then(|b| b.get("changelog_message"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match delete_with_message(&mut scratch, ty, id, request_id, message) {
                Ok(()) => {
                    *db = scratch;
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(response) => response,
            }
        }
        (Method::DELETE, None) => {
            let Some(Value::Array(items)) = parsed else {
                return detail(
                    StatusCode::BAD_REQUEST,
                    "Bulk delete requires a list of objects",
                );
            };
            let mut ids = Vec::new();
            for item in &items {
                let Some(id) = item.get("id").and_then(Value::as_u64) else {
                    return json(
                        StatusCode::BAD_REQUEST,
                        json!({"id": ["This field is required."]}),
                    );
                };
                ids.push(id);
            }
            if let Some(response) = bulk_refusal(&db, ty, &ids, headers) {
                return response;
            }
            // One transaction: every object is tried, and any refusal writes nothing. Like
            // NetBox's bulk delete, a protected object is reported by count only.
            let mut scratch = db.clone();
            let mut errors = Vec::new();
            for (item, id) in items.iter().zip(&ids) {
                let message = item
                    .get("changelog_message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Err(response) =
                    delete_with_message(&mut scratch, ty, *id, request_id, message)
                {
                    let _ = response;
                    let dependents = PROTECTED_BY
                        .iter()
                        .filter(|(target, _, _)| *target == ty.endpoint)
                        .map(|(_, endpoint, field)| ids_where(&scratch, endpoint, field, *id).len())
                        .sum::<usize>();
                    errors.push(json!({"id": id, "errors": {"__all__": [format!("Unable to delete: {dependents} dependent object(s) prevent deletion.")]}}));
                }
            }
            if !errors.is_empty() {
                return json(
                    StatusCode::CONFLICT,
                    json!({
                        "detail": format!("{} of {} objects could not be deleted.", errors.len(), ids.len()),
                        "errors": errors,
                    }),
                );
            }
            *db = scratch;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => detail(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method \"{method}\" not allowed."),
        ),
    }
}

/// Applies `op` to every item on a copy of the database and commits only if all succeed, as
/// NetBox's bulk operations run in one transaction. A single request answers the object or its
/// field errors; a bulk one an array of objects, or of per-item errors in request order.
fn transact(
    db: &mut NetboxDb,
    base: &str,
    ty: &'static ObjType,
    items: &[Value],
    bulk: Option<&str>,
    success: StatusCode,
    mut op: impl FnMut(&mut NetboxDb, &Value) -> Result<u64, FieldErrors>,
) -> Response {
    let mut scratch = db.clone();
    let mut ids = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match op(&mut scratch, item) {
            Ok(id) => ids.push(id),
            // NetBox 4.7 names a create by its position and an update by its id.
            Err(e) => errors.push(match item.get("id").filter(|_| bulk == Some("updated")) {
                Some(id) => json!({"id": id, "errors": e}),
                None => json!({"index": index, "errors": e}),
            }),
        }
    }
    if !errors.is_empty() {
        return match bulk {
            Some(verb) => json(
                StatusCode::BAD_REQUEST,
                json!({
                    "detail": format!("{} of {} objects could not be {verb}.", errors.len(), items.len()),
                    "errors": errors,
                }),
            ),
            None => json(
                StatusCode::BAD_REQUEST,
                errors
                    .into_iter()
                    .next()
                    .and_then(|e| e.get("errors").cloned())
                    .unwrap_or_default(),
            ),
        };
    }
    *db = scratch;
    let mut rendered: Vec<Value> = ids
        .iter()
        .filter_map(|id| db.objects.get(ty.endpoint).and_then(|o| o.get(id)))
        .map(|o| render(db, base, ty, o))
        .collect();
    match bulk {
        Some(_) => json(success, Value::Array(rendered)),
        None => {
            let object = rendered.pop().unwrap_or_default();
            let etag = ids
                .last()
                .and_then(|id| db.objects.get(ty.endpoint)?.get(id))
                .and_then(etag)
                .and_then(|e| HeaderValue::from_str(&e).ok());
            let mut response = json(success, object);
            if let Some(etag) = etag {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
    }
}

/// NetBox 4.7's ETag: `W/"<last_updated>"` in Python's isoformat (`+00:00`, not `Z`).
fn etag(object: &Map<String, Value>) -> Option<String> {
    object.get("last_updated").and_then(Value::as_str).map(|t| {
        format!(
            "W/\"{}\"",
            t.strip_suffix('Z')
                .map(|t| format!("{t}+00:00"))
                .unwrap_or_else(|| t.to_string())
        )
    })
}

/// `If-Match` as NetBox 4.7 reads it: absent or `*` passes; otherwise a comma-separated list
/// of ETags, of which the object's must be one (bulk writes send one per object).
fn if_match_holds(headers: &HeaderMap, object: &Map<String, Value>) -> bool {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if wanted.trim() == "*" {
        return true;
    }
    let Some(current) = etag(object) else {
        return true;
    };
    wanted.split(',').any(|e| e.trim() == current)
}

fn precondition_failed(object: &Map<String, Value>) -> Response {
    let mut response = detail(StatusCode::PRECONDITION_FAILED, "Precondition failed.");
    if let Some(etag) = etag(object).and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// limit/offset paging with absolute `next`/`previous` links.
fn page(base: &str, path: &str, q: &Query, items: Vec<Value>) -> Response {
    let limit = match q.number("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(0) => MAX_PAGE_SIZE,
        Some(n) => (n as usize).min(MAX_PAGE_SIZE),
    };
    let offset = q.number("offset").unwrap_or(0) as usize;
    let count = items.len();
    let link = |offset: usize| -> String {
        let mut params: Vec<(String, String)> =
            q.0.iter()
                .filter(|(k, _)| k != "limit" && k != "offset")
                .cloned()
                .collect();
        params.push(("limit".into(), limit.to_string()));
        if offset > 0 {
            params.push(("offset".into(), offset.to_string()));
        }
        let qs = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        format!("{base}{path}?{qs}")
    };
    let next = (offset + limit < count).then(|| link(offset + limit));
    let previous = (offset > 0).then(|| link(offset.saturating_sub(limit)));
    let results: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json(
        StatusCode::OK,
        json!({"count": count, "next": next, "previous": previous, "results": results}),
    )
}

fn list_filter(db: &NetboxDb, ty: &ObjType, object: &Map<String, Value>, q: &Query) -> bool {
    let mut keys: Vec<&str> = q.0.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        let wanted = q.all(key);
        let text = |field: &str| {
            object.get(field).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        match key {
            "limit" | "offset" | "brief" | "exclude" | "fields" | "omit" | "ordering" => true,
            "id" => wanted
                .iter()
                .any(|w| object.get("id").map(|v| v.to_string()).as_deref() == Some(*w)),
            "id__gt" => wanted.iter().all(|w| {
                let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
                w.parse::<u64>().is_ok_and(|floor| id > floor)
            }),
            "q" | "name__ic" => wanted.iter().any(|w| {
                text("name").is_some_and(|n| n.to_lowercase().contains(&w.to_lowercase()))
            }),
            "tag" => wanted.iter().any(|w| {
                object
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|tags| {
                        tags.iter().any(|t| {
                            tag_by_id(db, t.as_u64().unwrap_or(0))
                                .is_some_and(|tag| tag["slug"] == *w)
                        })
                    })
            }),
            "mac_address" => wanted
                .iter()
                .any(|w| text("mac_address").is_some_and(|m| m.eq_ignore_ascii_case(w))),
            // MACs and IP addresses by the VM interface they are assigned to.
            "vminterface_id" if ty.plain.contains(&"assigned_object_id") => {
                wanted.iter().any(|w| {
                    object.get("assigned_object_type").and_then(Value::as_str)
                        == Some("virtualization.vminterface")
                        && text("assigned_object_id").as_deref() == Some(*w)
                })
            }
            // A cluster's site is its scope.
            "site_id" if ty.endpoint == "virtualization/clusters" => wanted.iter().any(|w| {
                object.get("scope_type").and_then(Value::as_str) == Some("dcim.site")
                    && text("scope_id").as_deref() == Some(*w)
            }),
            // Names compare case-insensitively, as NetBox's `name` filter does.
            "name" => wanted
                .iter()
                .any(|w| text("name").is_some_and(|n| n.to_lowercase() == w.to_lowercase())),
            k if fk_filter(k).is_some_and(|field| ty.fks.iter().any(|(f, _)| *f == field)) => {
                let field = fk_filter(k).unwrap_or(k);
                wanted.iter().any(|w| text(field).as_deref() == Some(*w))
            }
            k => match text(k) {
                Some(actual) => wanted.iter().any(|w| actual == *w),
                // NetBox ignores parameters that are not filters of this endpoint.
                None => !ty.plain.contains(&k) && !ty.choices.iter().any(|(f, _, _)| *f == k),
            },
        }
    })
}

/// The field a relation filter names: `site_id` filters on `site`.
fn fk_filter(key: &str) -> Option<&str> {
    key.strip_suffix("_id")
}

/// NetBox validates a relation filter's ids: `?virtual_machine_id=999999` is a 400 ("Select a
/// valid choice"), not an empty list.
fn invalid_choice(db: &NetboxDb, ty: &ObjType, q: &Query) -> Option<Response> {
    for (key, value) in &q.0 {
        let Some(field) = key.strip_suffix("_id") else {
            continue;
        };
        let Some((_, target)) = ty.fks.iter().find(|(f, _)| *f == field) else {
            continue;
        };
        let known = value
            .parse::<u64>()
            .ok()
            .is_some_and(|id| db.objects.get(target).is_some_and(|o| o.contains_key(&id)));
        if !known {
            return Some(json(
                StatusCode::BAD_REQUEST,
                json!({key.clone(): [format!("Select a valid choice. {value} is not one of the available choices.")]}),
            ));
        }
    }
    None
}

fn tag_by_id(db: &NetboxDb, id: u64) -> Option<&Map<String, Value>> {
    db.objects.get("extras/tags").and_then(|t| t.get(&id))
}

fn url(base: &str, endpoint: &str, id: u64) -> String {
    format!("{base}/api/{endpoint}/{id}/")
}

fn display(ty: &ObjType, object: &Map<String, Value>) -> String {
    let field = match ty.endpoint {
        "dcim/device-types" => "model",
        "ipam/ip-addresses" => "address",
        "dcim/mac-addresses" => "mac_address",
        _ => "name",
    };
    match object.get(field) {
        Some(Value::String(s)) => s.clone(),
        _ => format!("{} {}", ty.model, object.get("id").unwrap_or(&Value::Null)),
    }
}

/// The nested (brief) representation of an object.
fn brief_of(db: &NetboxDb, base: &str, ty: &ObjType, object: &Map<String, Value>) -> Value {
    let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
    let mut out =
        json!({"id": id, "url": url(base, ty.endpoint, id), "display": display(ty, object)});
    let copy = |out: &mut Value, fields: &[&str]| {
        for f in fields {
            out[*f] = object.get(*f).cloned().unwrap_or(Value::Null);
        }
    };
    match ty.endpoint {
        "dcim/device-types" => {
            copy(&mut out, &["model", "slug", "description"]);
            out["manufacturer"] =
                related(db, base, "dcim/manufacturers", object.get("manufacturer"));
        }
        "dcim/devices" | "virtualization/clusters" | "virtualization/virtual-machines" => {
            copy(&mut out, &["name", "description"])
        }
        "dcim/interfaces" => {
            copy(&mut out, &["name", "description"]);
            out["device"] = related(db, base, "dcim/devices", object.get("device"));
            out["cable"] = Value::Null;
            out["_occupied"] = json!(false);
        }
        "virtualization/interfaces" => {
            copy(&mut out, &["name", "description"]);
            out["virtual_machine"] = related(
                db,
                base,
                "virtualization/virtual-machines",
                object.get("virtual_machine"),
            );
        }
        "ipam/ip-addresses" => {
            copy(&mut out, &["address", "description"]);
            out["family"] = json!({"value": 4, "label": "IPv4"});
        }
        "dcim/mac-addresses" => copy(&mut out, &["mac_address", "description"]),
        "extras/tags" => copy(&mut out, &["name", "slug", "color", "description"]),
        _ => copy(&mut out, &["name", "slug", "description"]),
    }
    out
}

fn related(db: &NetboxDb, base: &str, endpoint: &str, id: Option<&Value>) -> Value {
    let Some(id) = id.and_then(Value::as_u64) else {
        return Value::Null;
    };
    match (
        obj_type(endpoint),
        db.objects.get(endpoint).and_then(|o| o.get(&id)),
    ) {
        (Some(ty), Some(object)) => brief_of(db, base, ty, object),
        _ => Value::Null,
    }
}

fn assigned(db: &NetboxDb, base: &str, object: &Map<String, Value>) -> Value {
    let model = object
        .get("assigned_object_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    match type_by_model(model) {
        Some(ty) => related(db, base, ty.endpoint, object.get("assigned_object_id")),
        None => Value::Null,
    }
}

fn assigned_to(db: &NetboxDb, endpoint: &str, model: &str, id: u64) -> Vec<u64> {
    db.objects
        .get(endpoint)
        .map(|objs| {
            objs.values()
                .filter(|o| {
                    o.get("assigned_object_type").and_then(Value::as_str) == Some(model)
                        && o.get("assigned_object_id").and_then(Value::as_u64) == Some(id)
                })
                .filter_map(|o| o.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

/// The full representation of an object, as a GET answers it.
fn render(db: &NetboxDb, base: &str, ty: &ObjType, object: &Map<String, Value>) -> Value {
    let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("url".into(), json!(url(base, ty.endpoint, id)));
    out.insert(
        "display_url".into(),
        json!(format!("{base}/{}/{id}/", ty.endpoint)),
    );
    out.insert("display".into(), json!(display(ty, object)));
    for (key, value) in object {
        if key == "id" {
            continue;
        }
        let rendered = if let Some((_, target)) = ty.fks.iter().find(|(f, _)| f == key) {
            related(db, base, target, Some(value))
        } else if ty.choices.iter().any(|(f, _, _)| f == key) {
            match value.as_str() {
                Some(v) => json!({"value": v, "label": title(v)}),
                None => Value::Null,
            }
        } else if key == "tags" {
            Value::Array(
                value
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|t| tag_by_id(db, t.as_u64().unwrap_or(0)))
                            .map(|t| brief_of(db, base, &TYPES[12], t))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        } else {
            value.clone()
        };
        out.insert(key.clone(), rendered);
    }
    match ty.endpoint {
        "dcim/interfaces" | "virtualization/interfaces" => {
            let primary = object.get("primary_mac_address").and_then(Value::as_u64);
            let mac = primary
                .and_then(|m| db.objects.get("dcim/mac-addresses").and_then(|o| o.get(&m)))
                .and_then(|m| m.get("mac_address"))
                .cloned();
            out.insert("mac_address".into(), mac.unwrap_or(Value::Null));
            let macs = assigned_to(db, "dcim/mac-addresses", ty.model, id);
            out.insert(
                "mac_addresses".into(),
                Value::Array(
                    macs.iter()
                        .map(|m| related(db, base, "dcim/mac-addresses", Some(&json!(m))))
                        .collect(),
                ),
            );
            out.insert(
                "count_ipaddresses".into(),
                json!(assigned_to(db, "ipam/ip-addresses", ty.model, id).len()),
            );
        }
        "ipam/ip-addresses" | "dcim/mac-addresses" => {
            out.insert("assigned_object".into(), assigned(db, base, object));
            if ty.endpoint == "ipam/ip-addresses" {
                out.insert("family".into(), json!({"value": 4, "label": "IPv4"}));
            }
        }
        "virtualization/virtual-machines" => {
            let count = db.objects.get("virtualization/interfaces").map_or(0, |o| {
                o.values()
                    .filter(|i| i.get("virtual_machine") == Some(&json!(id)))
                    .count()
            });
            out.insert("interface_count".into(), json!(count));
            out.insert("virtual_disk_count".into(), json!(0));
            out.insert("config_context".into(), json!({}));
            // A decimal field: NetBox always answers `16.0`.
            if let Some(vcpus) = object.get("vcpus").and_then(Value::as_f64) {
                out.insert("vcpus".into(), json!(vcpus));
            }
        }
        "extras/tags" => {
            let tagged = db
                .objects
                .values()
                .flat_map(|objects| objects.values())
                .filter(|o| {
                    o.get("tags")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.contains(&json!(id)))
                })
                .count();
            out.insert("tagged_items".into(), json!(tagged));
        }
        "virtualization/cluster-types" => {
            let count = ids_where(db, "virtualization/clusters", "type", id).len();
            out.insert("cluster_count".into(), json!(count));
        }
        "virtualization/clusters" => {
            let scope = match (
                object.get("scope_type").and_then(Value::as_str),
                object.get("scope_id"),
            ) {
                (Some("dcim.site"), Some(site)) => related(db, base, "dcim/sites", Some(site)),
                _ => Value::Null,
            };
            out.insert("scope".into(), scope);
            for field in ["scope_type", "scope_id"] {
                out.entry(field).or_insert(Value::Null);
            }
        }
        "dcim/devices" => {
            let count = db.objects.get("dcim/interfaces").map_or(0, |o| {
                o.values()
                    .filter(|i| i.get("device") == Some(&json!(id)))
                    .count()
            });
            out.insert("interface_count".into(), json!(count));
        }
        _ => {}
    }
    Value::Object(out)
}

/// The object as NetBox's change log records it: relations as ids, tags as names.
fn snapshot(db: &NetboxDb, object: &Map<String, Value>) -> Value {
    let mut out = object.clone();
    if let Some(Value::Array(tags)) = out.get("tags").cloned() {
        let names: Vec<Value> = tags
            .iter()
            .filter_map(|t| tag_by_id(db, t.as_u64().unwrap_or(0)))
            .map(|t| t["name"].clone())
            .collect();
        out.insert("tags".into(), Value::Array(names));
    }
    Value::Object(out)
}

fn log_change(
    db: &mut NetboxDb,
    ty: &ObjType,
    id: u64,
    pre: Option<Value>,
    post: Option<Value>,
    message: &str,
    request_id: &str,
) {
    // The action follows from which snapshots exist.
    let (action, label) = match (&pre, &post) {
        (None, _) => ("create", "Created"),
        (Some(_), Some(_)) => ("update", "Updated"),
        (Some(_), None) => ("delete", "Deleted"),
    };
    let repr = post
        .as_ref()
        .or(pre.as_ref())
        .and_then(|o| o.as_object())
        .map(|o| display(ty, o))
        .unwrap_or_default();
    let change_id = db.changes.len() as u64 + 9001;
    db.changes.push(json!({
        "id": change_id,
        "display": format!("{repr} ({action})"),
        "time": now_iso(),
        "user": {"id": 2, "display": "infradeck", "username": "infradeck"},
        "user_name": "infradeck",
        "request_id": request_id,
        "action": {"value": action, "label": label},
        "changed_object_type": ty.model,
        "changed_object_id": id,
        "object_repr": repr,
        "message": message,
        // NetBox records the side that does not exist as `{}`, not null.
        "prechange_data": pre.unwrap_or_else(|| json!({})),
        "postchange_data": post.unwrap_or_else(|| json!({})),
    }));
}

/// Resolves a related-object reference given as a pk, `{"id": n}` or a lookup dict.
fn resolve(
    db: &NetboxDb,
    field: &str,
    endpoint: &str,
    value: &Value,
) -> Result<Value, FieldErrors> {
    let objects = db.objects.get(endpoint);
    match value {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => {
            let id = n.as_u64().unwrap_or(0);
            if objects.is_some_and(|o| o.contains_key(&id)) {
                Ok(json!(id))
            } else {
                Err(field_error(
                    field,
                    &format!("Related object not found using the provided numeric ID: {id}"),
                ))
            }
        }
        Value::Object(lookup) => {
            let found: Vec<u64> = objects
                .map(|objs| {
                    objs.values()
                        .filter(|o| lookup.iter().all(|(k, v)| o.get(k) == Some(v)))
                        .filter_map(|o| o.get("id").and_then(Value::as_u64))
                        .collect()
                })
                .unwrap_or_default();
            match found.as_slice() {
                [id] => Ok(json!(id)),
                [] => Err(field_error(
                    field,
                    &format!(
                        "Related object not found using the provided attributes: {}",
                        python_repr(&Value::Object(lookup.clone()))
                    ),
                )),
                _ => Err(field_error(
                    field,
                    &format!(
                        "Multiple objects match the provided attributes: {}",
                        python_repr(&Value::Object(lookup.clone()))
                    ),
                )),
            }
        }
        other => Err(field_error(
            field,
            &format!(
                "Related objects must be referenced by numeric ID or by dictionary of attributes. Received an unrecognized value: {other}"
            ),
        )),
    }
}

fn valid_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn valid_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    ip.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 128)
}

/// Applies the writable fields of `input` onto `object`, validating each.
fn apply_fields(
    db: &NetboxDb,
    ty: &ObjType,
    object: &mut Map<String, Value>,
    input: &Map<String, Value>,
) -> Result<(), FieldErrors> {
    let mut errors = Map::new();
    for (key, value) in input {
        let result: Result<(), FieldErrors> = (|| {
            if let Some((_, target)) = ty.fks.iter().find(|(f, _)| f == key) {
                object.insert(key.clone(), resolve(db, key, target, value)?);
            } else if let Some((_, choices, _)) = ty.choices.iter().find(|(f, _, _)| f == key) {
                match value.as_str() {
                    Some(v) if choices.contains(&v) => {
                        object.insert(key.clone(), json!(v));
                    }
                    _ => return Err(field_error(key, &format!("{value} is not a valid choice."))),
                }
            } else if key == "tags" {
                let items = value
                    .as_array()
                    .ok_or_else(|| field_error("tags", "Expected a list of items."))?;
                let mut ids = Vec::new();
                for item in items {
                    let lookup = match item {
                        Value::String(name) => json!({"name": name}),
                        other => other.clone(),
                    };
                    ids.push(resolve(db, "tags", "extras/tags", &lookup)?);
                }
                object.insert("tags".into(), Value::Array(ids));
            } else if key == "custom_fields" {
                let fields = value.as_object().ok_or_else(|| {
                    field_error("custom_fields", "Invalid data: expected a dictionary.")
                })?;
                let mut merged = object
                    .get("custom_fields")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in fields {
                    if !CUSTOM_FIELDS.contains(&k.as_str())
                        || !matches!(
                            ty.endpoint,
                            "dcim/devices" | "virtualization/virtual-machines"
                        )
                    {
                        return Err(field_error(
                            "custom_fields",
                            &format!("Unknown field name '{k}' in custom field data."),
                        ));
                    }
                    merged.insert(k.clone(), v.clone());
                }
                object.insert("custom_fields".into(), Value::Object(merged));
            } else if ty.plain.contains(&key.as_str()) {
                let value = match (ty.endpoint, key.as_str()) {
                    ("dcim/mac-addresses", "mac_address") => {
                        let text = value.as_str().unwrap_or("");
                        if !valid_mac(text) {
                            return Err(field_error(
                                key,
                                &format!("Invalid MAC address format: {text}"),
                            ));
                        }
                        json!(text.to_uppercase())
                    }
                    ("ipam/ip-addresses", "address") => {
                        let text = value.as_str().unwrap_or("");
                        if !valid_cidr(text) {
                            return Err(field_error(
                                key,
                                &format!(
                                    "Enter a valid IPv4 or IPv6 address with optional mask: {text}"
                                ),
                            ));
                        }
                        value.clone()
                    }
                    (_, "vcpus") => json!(
                        value
                            .as_f64()
                            .ok_or_else(|| field_error(key, "A valid number is required."))?
                    ),
                    (_, "memory" | "disk" | "mtu" | "assigned_object_id") if !value.is_null() => {
                        json!(
                            value
                                .as_u64()
                                .ok_or_else(|| field_error(key, "A valid integer is required."))?
                        )
                    }
                    _ => value.clone(),
                };
                object.insert(key.clone(), value);
            }
            // Read-only and unknown fields are ignored, as DRF does.
            Ok(())
        })();
        if let Err(e) = result {
            errors.extend(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Model-level rules that span fields and objects.
fn validate(db: &NetboxDb, ty: &ObjType, object: &Map<String, Value>) -> Result<(), FieldErrors> {
    let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
    let others = || {
        db.objects
            .get(ty.endpoint)
            .into_iter()
            .flat_map(|o| o.values())
            .filter(move |o| o.get("id").and_then(Value::as_u64) != Some(id))
    };
    let same = |o: &Map<String, Value>, fields: &[&str]| {
        fields.iter().all(|f| o.get(*f) == object.get(*f))
    };
    let unique = |fields: &[&str], message: &str, field: &str| -> Result<(), FieldErrors> {
        if fields
            .iter()
            .all(|f| object.get(*f).is_some_and(|v| !v.is_null()))
            && others().any(|o| same(o, fields))
        {
            return Err(field_error(field, message));
        }
        Ok(())
    };
    match ty.endpoint {
        "dcim/sites"
        | "dcim/manufacturers"
        | "dcim/device-roles"
        | "virtualization/cluster-types"
        | "extras/tags" => {
            unique(
                &["name"],
                &format!("{} with this name already exists.", ty.model),
                "name",
            )?;
            unique(
                &["slug"],
                &format!("{} with this slug already exists.", ty.model),
                "slug",
            )?;
        }
        "dcim/device-types" => {
            unique(
                &["manufacturer", "model"],
                "Device type with this manufacturer and model already exists.",
                "model",
            )?;
            unique(
                &["slug"],
                "Device type with this slug already exists.",
                "slug",
            )?;
        }
        // NetBox 4.7 allows two clusters of one name unless they share a scope (its unique
        // constraints include the scope, and NULLs never collide).
        "virtualization/clusters" if object.get("scope_id").is_some_and(|s| !s.is_null()) => {
            unique(
                &["scope_type", "scope_id", "name"],
                "A cluster with this name already exists in this scope.",
                "name",
            )?
        }
        "dcim/devices" => unique(
            &["site", "name"],
            "Device name must be unique per site.",
            "name",
        )?,
        "dcim/interfaces" => unique(
            &["device", "name"],
            "Interface with this device and name already exists.",
            "name",
        )?,
        "virtualization/interfaces" => unique(
            &["virtual_machine", "name"],
            "VM interface with this virtual machine and name already exists.",
            "name",
        )?,
        "virtualization/virtual-machines" => {
            if ["site", "cluster", "device"]
                .iter()
                .all(|f| object.get(*f).is_none_or(Value::is_null))
            {
                return Err(field_error(
                    "__all__",
                    "A virtual machine must be assigned to a site, cluster, or device.",
                ));
            }
            if object.get("cluster").is_some_and(|c| !c.is_null()) {
                unique(
                    &["cluster", "name"],
                    "Virtual machine name must be unique per cluster.",
                    "name",
                )?;
            }
        }
        _ => {}
    }
    if matches!(ty.endpoint, "ipam/ip-addresses" | "dcim/mac-addresses") {
        match (
            object.get("assigned_object_type").and_then(Value::as_str),
            object.get("assigned_object_id").and_then(Value::as_u64),
        ) {
            (None, None) => {}
            (Some(model), Some(target)) if ASSIGNABLE.contains(&model) => {
                let endpoint = type_by_model(model).map(|t| t.endpoint).unwrap_or("");
                if !db
                    .objects
                    .get(endpoint)
                    .is_some_and(|o| o.contains_key(&target))
                {
                    return Err(field_error(
                        "assigned_object_id",
                        &format!(
                            "Related object not found using the provided numeric ID: {target}"
                        ),
                    ));
                }
            }
            (Some(model), _) if !ASSIGNABLE.contains(&model) => {
                return Err(field_error(
                    "assigned_object_type",
                    &format!("\"{model}\" is not a valid choice."),
                ));
            }
            _ => {
                return Err(field_error(
                    "assigned_object_id",
                    "Both assigned_object_type and assigned_object_id are required.",
                ));
            }
        }
    }
    if let Some(ip) = object.get("primary_ip4").and_then(Value::as_u64) {
        let (iface_endpoint, iface_model, parent_field) = match ty.endpoint {
            "dcim/devices" => ("dcim/interfaces", "dcim.interface", "device"),
            _ => (
                "virtualization/interfaces",
                "virtualization.vminterface",
                "virtual_machine",
            ),
        };
        let address = db.objects.get("ipam/ip-addresses").and_then(|o| o.get(&ip));
        let on_own_interface = address.is_some_and(|a| {
            a.get("assigned_object_type").and_then(Value::as_str) == Some(iface_model)
                && a.get("assigned_object_id")
                    .and_then(Value::as_u64)
                    .and_then(|i| db.objects.get(iface_endpoint).and_then(|o| o.get(&i)))
                    .is_some_and(|iface| iface.get(parent_field) == Some(&json!(id)))
        });
        if !on_own_interface {
            let text = address
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Err(field_error(
                "primary_ip4",
                &format!(
                    "The specified IP address ({text}) is not assigned to this {}.",
                    if ty.endpoint == "dcim/devices" {
                        "device"
                    } else {
                        "virtual machine"
                    }
                ),
            ));
        }
    }
    if let Some(mac) = object.get("primary_mac_address").and_then(Value::as_u64) {
        let ok = db
            .objects
            .get("dcim/mac-addresses")
            .and_then(|o| o.get(&mac))
            .is_some_and(|m| {
                m.get("assigned_object_type").and_then(Value::as_str) == Some(ty.model)
                    && m.get("assigned_object_id") == Some(&json!(id))
            });
        if !ok {
            return Err(field_error(
                "primary_mac_address",
                "The specified MAC address is not assigned to this interface.",
            ));
        }
    }
    Ok(())
}

fn create(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    input: &Value,
    request_id: &str,
) -> Result<u64, FieldErrors> {
    let input = input.as_object().ok_or_else(|| {
        field_error(
            "__all__",
            "Invalid data. Expected a dictionary, but got list.",
        )
    })?;
    let mut object = Map::new();
    apply_fields(db, ty, &mut object, input)?;
    let mut missing = Map::new();
    for field in ty.required {
        if object.get(*field).is_none_or(Value::is_null) {
            missing.insert(field.to_string(), json!(["This field is required."]));
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    for (field, _, default) in ty.choices {
        if let Some(default) = default {
            object.entry(field.to_string()).or_insert(json!(default));
        }
    }
    fill_defaults(ty, &mut object);
    let id = db.next_id(ty.endpoint);
    let now = now_iso();
    object.insert("id".into(), json!(id));
    object.entry("tags").or_insert(json!([]));
    if ty.endpoint != "extras/tags" {
        object.entry("custom_fields").or_insert(json!({}));
    }
    object.insert("created".into(), json!(now));
    object.insert("last_updated".into(), json!(now));
    site_from_cluster(db, ty, &mut object);
    validate(db, ty, &object)?;
    let post = snapshot(db, &object);
    db.objects
        .entry(ty.endpoint)
        .or_default()
        .insert(id, object);
    let message = input
        .get("changelog_message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    log_change(db, ty, id, None, Some(post), &message, request_id);
    Ok(id)
}

/// Every field NetBox has is in its answer, with its default when a create did not give it.
fn fill_defaults(ty: &ObjType, object: &mut Map<String, Value>) {
    for field in ty.plain {
        object
            .entry(field.to_string())
            .or_insert_with(|| plain_default(field));
    }
    for (field, _) in ty.fks {
        object.entry(field.to_string()).or_insert(Value::Null);
    }
}

/// NetBox's default for a field a create did not give.
fn plain_default(field: &str) -> Value {
    match field {
        "enabled" | "vm_role" => json!(true),
        "mgmt_only" => json!(false),
        "color" => json!("9e9e9e"),
        "vcpus"
        | "memory"
        | "disk"
        | "mtu"
        | "u_height"
        | "assigned_object_type"
        | "assigned_object_id"
        | "scope_type"
        | "scope_id" => Value::Null,
        _ => json!(""),
    }
}

/// A VM in a cluster scoped to a site takes that site, as NetBox sets it.
fn site_from_cluster(db: &NetboxDb, ty: &ObjType, object: &mut Map<String, Value>) {
    if ty.endpoint != "virtualization/virtual-machines"
        || object.get("site").is_some_and(|s| !s.is_null())
    {
        return;
    }
    let site = object
        .get("cluster")
        .and_then(Value::as_u64)
        .and_then(|c| db.objects.get("virtualization/clusters")?.get(&c))
        .filter(|c| c.get("scope_type").and_then(Value::as_str) == Some("dcim.site"))
        .and_then(|c| c.get("scope_id").cloned());
    if let Some(site) = site {
        object.insert("site".into(), site);
    }
}

fn update(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    id: u64,
    input: &Value,
    partial: bool,
    request_id: &str,
) -> Result<u64, FieldErrors> {
    let input = input
        .as_object()
        .ok_or_else(|| field_error("__all__", "Invalid data. Expected a dictionary."))?;
    let Some(current) = db
        .objects
        .get(ty.endpoint)
        .and_then(|o| o.get(&id))
        .cloned()
    else {
        return Err(field_error(
            "id",
            &format!("Object with id {id} does not exist."),
        ));
    };
    let mut object = current.clone();
    apply_fields(db, ty, &mut object, input)?;
    if !partial {
        let missing: Vec<&&str> = ty
            .required
            .iter()
            .filter(|f| !input.contains_key(**f))
            .collect();
        if !missing.is_empty() {
            return Err(missing
                .iter()
                .flat_map(|f| field_error(f, "This field is required."))
                .collect());
        }
    }
    object.insert("last_updated".into(), json!(now_iso()));
    validate(db, ty, &object)?;
    let (pre, post) = (snapshot(db, &current), snapshot(db, &object));
    db.objects
        .entry(ty.endpoint)
        .or_default()
        .insert(id, object);
    let message = input
        .get("changelog_message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    log_change(db, ty, id, Some(pre), Some(post), &message, request_id);
    Ok(id)
}

fn delete(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    id: u64,
    request_id: &str,
) -> Result<(), Response> {
    delete_with_message(db, ty, id, request_id, "")
}

/// Deletes one object (cascading as NetBox does); `message` is the request's
/// `changelog_message`, recorded on the object's change.
fn delete_with_message(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    id: u64,
    request_id: &str,
    message: &str,
) -> Result<(), Response> {
    let Some(current) = db
        .objects
        .get(ty.endpoint)
        .and_then(|o| o.get(&id))
        .cloned()
    else {
        return Err(detail(StatusCode::NOT_FOUND, "Not found."));
    };
    for (target, endpoint, field) in PROTECTED_BY {
        if *target != ty.endpoint {
            continue;
        }
        let dependents: Vec<String> = db
            .objects
            .get(endpoint)
            .map(|o| {
                o.values()
                    .filter(|d| d.get(*field) == Some(&json!(id)))
                    .map(|d| {
                        format!(
                            "{} ({})",
                            d.get("name").and_then(Value::as_str).unwrap_or("?"),
                            d.get("id").and_then(Value::as_u64).unwrap_or(0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !dependents.is_empty() {
            return Err(json(
                StatusCode::CONFLICT,
                json!({"detail": format!("Unable to delete object. {} dependent objects were found: {}", dependents.len(), dependents.join(", "))}),
            ));
        }
    }
    // Cascades: interfaces go with their device or VM, addresses with their interface.
    let children: Vec<(&'static str, u64)> = match ty.endpoint {
        "dcim/devices" => ids_where(db, "dcim/interfaces", "device", id)
            .into_iter()
            .map(|i| ("dcim/interfaces", i))
            .collect(),
        "virtualization/virtual-machines" => {
            ids_where(db, "virtualization/interfaces", "virtual_machine", id)
                .into_iter()
                .map(|i| ("virtualization/interfaces", i))
                .collect()
        }
        "dcim/interfaces" | "virtualization/interfaces" => {
            assigned_to(db, "ipam/ip-addresses", ty.model, id)
                .into_iter()
                .map(|i| ("ipam/ip-addresses", i))
                .chain(
                    assigned_to(db, "dcim/mac-addresses", ty.model, id)
                        .into_iter()
                        .map(|i| ("dcim/mac-addresses", i)),
                )
                .collect()
        }
        _ => Vec::new(),
    };
    // Clear references that must not dangle (primary IP, primary MAC) before cascading.
    for other in TYPES {
        for (field, target) in other.fks {
            if *target != ty.endpoint {
                continue;
            }
            if let Some(objs) = db.objects.get_mut(other.endpoint) {
                for o in objs.values_mut() {
                    if o.get(*field) == Some(&json!(id)) {
                        o.insert(field.to_string(), Value::Null);
                    }
                }
            }
        }
    }
    for (endpoint, child) in children {
        if let Some(child_ty) = obj_type(endpoint) {
            delete(db, child_ty, child, request_id)?;
        }
    }
    if let Some(objs) = db.objects.get_mut(ty.endpoint) {
        objs.remove(&id);
    }
    let pre = snapshot(db, &current);
    log_change(db, ty, id, Some(pre), None, message, request_id);
    Ok(())
}

/// A value as Python's `repr` writes it, as NetBox's messages quote lookups: `{'slug': 'x'}`.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(list) => format!(
            "[{}]",
            list.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::String(text) => format!("'{text}'"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => n.to_string(),
    }
}

/// Why NetBox refuses a bulk update or delete before touching anything: an id it does not
/// have (400), or an object whose ETag is not among those in `If-Match` (412).
fn bulk_refusal(db: &NetboxDb, ty: &ObjType, ids: &[u64], headers: &HeaderMap) -> Option<Response> {
    if let Some(response) = missing_objects(db, ty, ids) {
        return Some(response);
    }
    // Every id is there: `missing_objects` said so.
    ids.iter()
        .map(|id| &db.objects[ty.endpoint][id])
        .find(|current| !if_match_holds(headers, current))
        .map(precondition_failed)
}

/// NetBox's answer to a bulk update or delete naming an id it does not have.
fn missing_objects(db: &NetboxDb, ty: &ObjType, ids: &[u64]) -> Option<Response> {
    let missing: Vec<Value> = ids
        .iter()
        .filter(|id| db.objects.get(ty.endpoint).is_none_or(|o| !o.contains_key(id)))
        .map(|id| json!({"id": id, "errors": {"id": [format!("Object with ID {id} does not exist")]}}))
        .collect();
    (!missing.is_empty()).then(|| {
        json(
            StatusCode::BAD_REQUEST,
            json!({
                "detail": format!("{} of {} objects could not be found.", missing.len(), ids.len()),
                "errors": missing,
            }),
        )
    })
}

fn ids_where(db: &NetboxDb, endpoint: &str, field: &str, id: u64) -> Vec<u64> {
    db.objects
        .get(endpoint)
        .map(|o| {
            o.values()
                .filter(|x| x.get(field) == Some(&json!(id)))
                .filter_map(|x| x.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}
