//! NetApp ONTAP REST (9.6+): cluster, volumes, LUNs and aggregates with `fields` projection,
//! `max_records` and opaque `_links.next` continuation, Basic auth, ONTAP's error shape.

use super::estate::Estate;
use super::http::{Credentials, Faults, Query, basic_auth, json};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::{Arc, RwLock};

/// The largest page this simulator returns, whatever `max_records` asks.
pub(crate) const MAX_PAGE: usize = 1000;

pub(crate) struct NetappState {
    pub(crate) estate: Arc<RwLock<Estate>>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) credentials: Credentials,
}

type Shared = Arc<NetappState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/cluster", get(cluster))
        .route("/api/storage/volumes", get(volumes))
        .route("/api/storage/luns", get(luns))
        .route("/api/storage/aggregates", get(aggregates))
        .fallback(not_found)
        .with_state(state)
}

fn error(status: StatusCode, message: &str, code: &str, target: Option<&str>) -> Response {
    let mut body = json!({"error": {"message": message, "code": code}});
    if let Some(target) = target {
        body["error"]["target"] = json!(target);
    }
    json(status, body)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "API not found", "3", None)
}

fn authorize(state: &NetappState, headers: &HeaderMap) -> Result<(), Response> {
    match basic_auth(headers) {
        Some((u, p)) if state.credentials.matches(&u, &p) && !state.faults.reject_auth() => Ok(()),
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            "Authentication failed.",
            "6691623",
            None,
        )),
    }
}

async fn cluster(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let n = &estate.netapp;
    json(
        StatusCode::OK,
        json!({
            "name": n.cluster_name, "uuid": n.cluster_uuid,
            "version": {"full": format!("NetApp Release {}: Mon Aug 05 2026", n.version), "generation": 9, "major": 14, "minor": 1},
            "management_interfaces": [{"ip": {"address": "10.1.0.20"}}],
        }),
    )
}

/// Keeps the key fields plus the requested dotted paths (`space.size`), or everything for `*`.
fn project(full: &Value, fields: Option<&str>, known: &[&str]) -> Result<Value, String> {
    let Some(fields) = fields else {
        return Ok(json!({"uuid": full["uuid"], "name": full["name"], "_links": full["_links"]}));
    };
    if fields.split(',').any(|f| f == "*" || f == "**") {
        return Ok(full.clone());
    }
    let mut out = json!({"uuid": full["uuid"], "name": full["name"], "_links": full["_links"]});
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let top = field.split('.').next().unwrap_or(field);
        if !known.contains(&top) {
            return Err(field.to_string());
        }
        let mut src = full;
        let mut dst = &mut out;
        let parts: Vec<&str> = field.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let Some(next) = src.get(part) else { break };
            src = next;
            if i == parts.len() - 1 {
                dst[*part] = next.clone();
            } else {
                if !dst.get(part).is_some_and(Value::is_object) {
                    dst[*part] = Value::Object(Map::new());
                }
                dst = &mut dst[*part];
            }
        }
    }
    Ok(out)
}

/// Pages `records` (sorted by uuid) after `start.uuid`, with a `next` link carrying every
/// original parameter.
fn collection(path: &str, q: &Query, mut records: Vec<Value>, known: &[&str]) -> Response {
    records.sort_by(|a, b| a["uuid"].as_str().cmp(&b["uuid"].as_str()));
    let start = q.get("start.uuid");
    let max = q
        .number("max_records")
        .map_or(MAX_PAGE, |n| (n as usize).clamp(1, MAX_PAGE));
    let fields = q.get("fields");
    let remaining: Vec<&Value> = records
        .iter()
        .filter(|r| start.is_none_or(|s| r["uuid"].as_str().unwrap_or("") > s))
        .collect();
    let mut page = Vec::new();
    for record in remaining.iter().take(max) {
        match project(record, fields, known) {
            Ok(v) => page.push(v),
            Err(field) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("The value \"{field}\" is invalid for field \"fields\""),
                    "262197",
                    Some("fields"),
                );
            }
        }
    }
    let mut params: Vec<(String, String)> =
        q.0.iter()
            .filter(|(k, _)| k != "start.uuid")
            .cloned()
            .collect();
    let self_link = format!("{path}?{}", encode(&params));
    let mut links = json!({"self": {"href": self_link}});
    if remaining.len() > page.len()
        && let Some(last) = page.last().and_then(|r| r["uuid"].as_str())
    {
        params.insert(0, ("start.uuid".into(), last.to_string()));
        links["next"] = json!({"href": format!("{path}?{}", encode(&params))});
    }
    json(
        StatusCode::OK,
        json!({"records": page, "num_records": page.len(), "_links": links}),
    )
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

async fn volumes(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let n = &estate.netapp;
    let records: Vec<Value> = n
        .volumes
        .iter()
        .map(|v| {
            let aggr = &n.aggregates[v.aggregate];
            json!({
                "uuid": v.uuid, "name": v.name,
                "svm": {"name": v.svm, "uuid": format!("svm-{}", v.svm)},
                "state": "online", "style": "flexvol", "type": "rw",
                "space": {"size": v.size, "used": v.used, "available": v.size - v.used},
                "guarantee": {"type": if v.thin { "none" } else { "volume" }},
                "aggregates": [{"name": aggr.name, "uuid": aggr.uuid}],
                "nas": {"path": format!("/{}", v.name)},
                "_links": {"self": {"href": format!("/api/storage/volumes/{}", v.uuid)}},
            })
        })
        .collect();
    collection(
        "/api/storage/volumes",
        &q,
        records,
        &[
            "uuid",
            "name",
            "svm",
            "state",
            "style",
            "type",
            "space",
            "guarantee",
            "aggregates",
            "nas",
        ],
    )
}

async fn luns(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let n = &estate.netapp;
    let records: Vec<Value> = n
        .luns
        .iter()
        .map(|l| {
            let vol = &n.volumes[l.volume];
            json!({
                "uuid": l.uuid, "name": l.name,
                "svm": {"name": vol.svm},
                "location": {"logical_unit": l.name.rsplit('/').next(), "volume": {"name": vol.name, "uuid": vol.uuid}},
                "space": {"size": l.size, "used": l.used},
                "os_type": "vmware", "serial_number": l.serial,
                "status": {"state": "online"}, "enabled": true,
                "_links": {"self": {"href": format!("/api/storage/luns/{}", l.uuid)}},
            })
        })
        .collect();
    collection(
        "/api/storage/luns",
        &q,
        records,
        &[
            "uuid",
            "name",
            "svm",
            "location",
            "space",
            "os_type",
            "serial_number",
            "status",
            "enabled",
        ],
    )
}

async fn aggregates(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let records: Vec<Value> = estate
        .netapp
        .aggregates
        .iter()
        .map(|a| {
            json!({
                "uuid": a.uuid, "name": a.name, "node": {"name": a.node}, "state": "online",
                "space": {"block_storage": {"size": a.size, "used": a.used, "available": a.size - a.used}},
                "_links": {"self": {"href": format!("/api/storage/aggregates/{}", a.uuid)}},
            })
        })
        .collect();
    collection(
        "/api/storage/aggregates",
        &q,
        records,
        &["uuid", "name", "node", "state", "space"],
    )
}
