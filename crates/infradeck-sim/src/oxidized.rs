//! Oxidized REST (oxidized-web ≥ 0.17): node list, node show, config fetch (text or JSON lines),
//! version list and version view, with its quirks: unknown nodes answer 200 with a text message,
//! `/node/show` of an unknown node is a bare 500, and `/nodes.json` leaks `vars` unfiltered.

use super::configs::render;
use super::estate::{Estate, NetDevice, SITES};
use super::http::{Query, json, utc_words};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

pub(crate) struct OxidizedState {
    pub(crate) estate: Arc<RwLock<Estate>>,
}

type Shared = Arc<OxidizedState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/nodes.json", get(nodes))
        .route("/nodes/group/{*group}", get(nodes_in_group))
        .route("/node/show/{*name}", get(show))
        .route("/node/fetch/{*path}", get(fetch))
        .route("/node/version.json", get(versions))
        .route("/node/version/view", get(view))
        .with_state(state)
}

fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/plain;charset=utf-8")],
        body,
    )
        .into_response()
}

fn node_json(device: &NetDevice, with_list_fields: bool, hide_vars: bool) -> Value {
    let group = SITES[device.site].0;
    let last = match device.last_status.as_str() {
        "never" => Value::Null,
        status => json!({
            "start": utc_words(device.last_time - chrono::Duration::seconds(7)),
            "end": utc_words(device.last_time),
            "status": status,
            "time": 6.93,
        }),
    };
    let mtime = device
        .versions
        .last()
        .map_or("unknown".to_string(), |v| utc_words(v.time));
    let secret = if hide_vars {
        "<hidden>".to_string()
    } else {
        format!("enable-{:x}", device.seed & 0xffff)
    };
    let mut node = json!({
        "name": device.name,
        "full_name": format!("{group}/{}", device.name),
        "ip": device.ip,
        "group": group,
        "model": device.model,
        "last": last,
        "vars": {"enable": secret},
        "mtime": mtime,
    });
    if with_list_fields {
        let (status, time) = match device.last_status.as_str() {
            "never" => ("never".to_string(), "never".to_string()),
            status => (status.to_string(), utc_words(device.last_time)),
        };
        node["status"] = json!(status);
        node["time"] = json!(time);
    }
    node
}

async fn nodes(State(state): State<Shared>) -> Response {
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    json(
        StatusCode::OK,
        Value::Array(
            estate
                .net_devices
                .iter()
                .map(|d| node_json(d, true, false))
                .collect(),
        ),
    )
}

async fn nodes_in_group(State(state): State<Shared>, Path(group): Path<String>) -> Response {
    let group = group.strip_suffix(".json").unwrap_or(&group).to_string();
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let list: Vec<Value> = estate
        .net_devices
        .iter()
        .filter(|d| SITES[d.site].0 == group)
        .map(|d| node_json(d, true, false))
        .collect();
    json(StatusCode::OK, Value::Array(list))
}

fn find<'a>(estate: &'a Estate, name: &str) -> Option<&'a NetDevice> {
    estate
        .net_devices
        .iter()
        .find(|d| d.name == name || d.ip == name)
}

async fn show(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let name = name.strip_suffix(".json").unwrap_or(&name).to_string();
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match find(&estate, &name) {
        Some(device) => json(StatusCode::OK, node_json(device, false, true)),
        // An unhandled exception in oxidized-web: Sinatra's bare 500 page.
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/html;charset=utf-8")],
            "<h1>Internal Server Error</h1>",
        )
            .into_response(),
    }
}

fn as_lines(text: &str) -> Value {
    Value::Array(
        text.split_inclusive('\n')
            .map(|l| Value::String(l.to_string()))
            .collect(),
    )
}

async fn fetch(State(state): State<Shared>, Path(path): Path<String>) -> Response {
    let (path, as_json) = match path.strip_suffix(".json") {
        Some(p) => (p.to_string(), true),
        None => (path, false),
    };
    // `{group}/{name}` or `{name}`; a group may itself contain `/`, so split at the last one.
    let name = path
        .rsplit_once('/')
        .map_or(path.as_str(), |(_, n)| n)
        .to_string();
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let body = match find(&estate, &name) {
        None => format!("unable to find '{name}'"),
        Some(device) => match device.versions.last() {
            None => "node not found".to_string(),
            Some(version) => render(device, version),
        },
    };
    if as_json {
        json(StatusCode::OK, as_lines(&body))
    } else {
        text(body)
    }
}

async fn versions(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let full = q.get("node_full").unwrap_or("");
    let name = full.rsplit_once('/').map_or(full, |(_, n)| n);
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let Some(device) = find(&estate, name).filter(|d| !d.versions.is_empty()) else {
        return json(StatusCode::OK, json!(["node not found"]));
    };
    let list: Vec<Value> = device
        .versions
        .iter()
        .rev()
        .map(|v| {
            let t = v.time.format("%Y-%m-%d %H:%M:%S +0000").to_string();
            json!({
                "oid": v.oid, "date": t, "time": t,
                "author": {"name": "oxidized", "email": "oxidized@example.net", "time": t},
                "message": format!("update {}", device.name),
            })
        })
        .collect();
    json(StatusCode::OK, Value::Array(list))
}

async fn view(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let (name, oid) = (q.get("node").unwrap_or(""), q.get("oid").unwrap_or(""));
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let body = find(&estate, name)
        .and_then(|d| {
            d.versions
                .iter()
                .find(|v| v.oid == oid)
                .map(|v| render(d, v))
        })
        .unwrap_or_else(|| "version not found".to_string());
    match q.get("format") {
        Some("json") => json(StatusCode::OK, as_lines(&body)),
        Some("text") => text(body),
        _ => (
            StatusCode::OK,
            [("content-type", "text/html;charset=utf-8")],
            format!(
                "<html><body><pre>{}</pre></body></html>",
                body.replace('&', "&amp;").replace('<', "&lt;")
            ),
        )
            .into_response(),
    }
}
