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

mod read;
mod schema;
mod write;

use read::*;
use schema::*;
use write::*;

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

/// Puts an object in directly (as NetBox's own data, not through the API).
fn insert_object(db: &mut NetboxDb, endpoint: &'static str, fields: Value) -> u64 {
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

    /// Adds `count` objects other teams made (unassigned IP addresses and MAC addresses, half
    /// each, none the inventory has): a large NetBox for the plan's benchmark.
    pub fn fill_with_others(&self, count: usize) {
        let mut db = self.lock();
        for i in 0..count {
            let n = i / 2;
            if i % 2 == 0 {
                let address = format!(
                    "100.{}.{}.{}/16",
                    64 + (n >> 16) % 64,
                    (n >> 8) & 0xff,
                    n & 0xff
                );
                insert_object(
                    &mut db,
                    "ipam/ip-addresses",
                    json!({"address": address, "status": "active", "description": "", "dns_name": ""}),
                );
            } else {
                let mac = format!(
                    "02:00:00:{:02X}:{:02X}:{:02X}",
                    (n >> 16) & 0xff,
                    (n >> 8) & 0xff,
                    n & 0xff
                );
                insert_object(
                    &mut db,
                    "dcim/mac-addresses",
                    json!({"mac_address": mac, "description": ""}),
                );
            }
        }
    }

    /// The starting content: the basics a NetBox has before infradeck, half the clusters
    /// (untagged, made by hand), some VMs already synced (tagged, a few drifted), VMs made by
    /// hand (untagged: never to be touched) and one tagged VM whose machine is gone.
    fn seed(&self, estate: &Estate) {
        let mut db = self.lock();
        let insert = insert_object;
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
