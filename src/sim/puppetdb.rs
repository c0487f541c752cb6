//! PuppetDB query API v4: `inventory` and `facts` with an AST `query`, `limit`/`offset`/
//! `order_by`, `include_total` (→ `X-Records`), GET or POST; plain-text 400 errors.

use super::estate::Estate;
use super::http::{Faults, Query, json};
use super::machines::{Machine, MachineCache, facts};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

pub struct PuppetdbState {
    pub estate: Arc<RwLock<Estate>>,
    pub faults: Arc<Faults>,
    pub machines: MachineCache,
}

type Shared = Arc<PuppetdbState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/pdb/query/v4/inventory", get(inventory).post(inventory))
        .route("/pdb/query/v4/facts", get(fact_rows).post(fact_rows))
        .route("/pdb/query/v4/nodes/{certname}", get(node))
        .with_state(state)
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// The request parameters, from the query string (GET) or the JSON body (POST).
struct Params {
    query: Option<Value>,
    limit: Option<usize>,
    offset: usize,
    order_by: Vec<(String, bool)>,
    include_total: bool,
}

fn params(method: &Method, raw: Option<&str>, body: &Bytes) -> Result<Params, String> {
    let object: serde_json::Map<String, Value> = if method == Method::POST && !body.is_empty() {
        serde_json::from_slice(body).map_err(|e| format!("Malformed JSON body: {e}"))?
    } else {
        let q = Query::parse(raw);
        let mut map = serde_json::Map::new();
        for key in ["query", "order_by"] {
            if let Some(text) = q.get(key) {
                let value: Value =
                    serde_json::from_str(text).map_err(|e| format!("Malformed {key}: {e}"))?;
                map.insert(key.into(), value);
            }
        }
        for key in ["limit", "offset"] {
            if let Some(text) = q.get(key) {
                let n: u64 = text.parse().map_err(|_| {
                    format!("Illegal value '{text}' for :{key}; expected a non-negative integer.")
                })?;
                map.insert(key.into(), json!(n));
            }
        }
        if q.get("include_total") == Some("true") {
            map.insert("include_total".into(), json!(true));
        }
        map
    };
    let order_by = match object.get("order_by") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let field = item
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or("order_by entries need a field")?;
                let desc = item.get("order").and_then(Value::as_str) == Some("desc");
                Ok((field.to_string(), desc))
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("order_by must be an array".into()),
    };
    Ok(Params {
        query: object.get("query").cloned(),
        limit: object
            .get("limit")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        offset: object.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize,
        order_by,
        include_total: object
            .get("include_total")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Evaluates the supported AST: `["=", field, value]`, `["~", field, regex-free substring]`,
/// `["and", ...]`, `["or", ...]`, `["not", q]`. `field` may be `facts.a.b` on inventory.
fn eval(query: &Value, row: &Value) -> Result<bool, String> {
    let Some(items) = query.as_array() else {
        return Err(format!("Query must be an array: {query}"));
    };
    let op = items
        .first()
        .and_then(Value::as_str)
        .ok_or("Query operator missing")?;
    match op {
        "and" => items[1..]
            .iter()
            .try_fold(true, |acc, q| Ok(acc && eval(q, row)?)),
        "or" => items[1..]
            .iter()
            .try_fold(false, |acc, q| Ok(acc || eval(q, row)?)),
        "not" => Ok(!eval(items.get(1).ok_or("not needs a query")?, row)?),
        "=" | "~" if items.len() == 3 => {
            let field = items[1].as_str().ok_or("field must be a string")?;
            let actual = field.split('.').try_fold(row, |v, k| v.get(k));
            Ok(match (op, actual) {
                ("=", Some(actual)) => actual == &items[2],
                ("~", Some(Value::String(s))) => s.contains(items[2].as_str().unwrap_or("")),
                _ => false,
            })
        }
        other => Err(format!(
            "'{other}' is not a queryable operator for this endpoint"
        )),
    }
}

fn respond(rows: Vec<Value>, p: &Params) -> Response {
    let mut rows = rows;
    for (field, desc) in p.order_by.iter().rev() {
        rows.sort_by(|a, b| {
            let (x, y) = (
                a.get(field).map(Value::to_string),
                b.get(field).map(Value::to_string),
            );
            if *desc { y.cmp(&x) } else { x.cmp(&y) }
        });
    }
    let total = rows.len();
    let page: Vec<Value> = rows
        .into_iter()
        .skip(p.offset)
        .take(p.limit.unwrap_or(usize::MAX))
        .collect();
    let mut response = json(StatusCode::OK, Value::Array(page));
    if p.include_total
        && let Ok(value) = HeaderValue::from_str(&total.to_string())
    {
        response.headers_mut().insert("X-Records", value);
    }
    response
}

/// Deactivated nodes (Foreman-only machines) are left out of PuppetDB answers.
fn puppet_machines(state: &PuppetdbState, estate: &Estate) -> Vec<Machine> {
    state
        .machines
        .get(estate)
        .list
        .iter()
        .filter(|m| m.in_puppet)
        .cloned()
        .collect()
}

fn inventory_row(estate: &Estate, m: &Machine) -> Value {
    json!({
        "certname": m.fqdn,
        "timestamp": m.last_report.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "environment": "production",
        "facts": facts(estate, m),
        "trusted": {"certname": m.fqdn, "domain": super::estate::SITES[m.site].1, "hostname": m.short, "authenticated": "remote", "extensions": {}},
    })
}

async fn inventory(
    State(state): State<Shared>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = match params(&method, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(message) => return bad_request(&message),
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let by_certname_only = p.order_by.iter().all(|(f, _)| f == "certname");
    if p.query.is_none() && by_certname_only {
        // Paging without a filter: order by certname and build only the requested page's rows,
        // so walking 100,000 nodes page by page stays linear.
        let mut nodes = puppet_machines(&state, &estate);
        nodes.sort_by(|a, b| a.fqdn.cmp(&b.fqdn));
        if p.order_by.first().is_some_and(|(_, desc)| *desc) {
            nodes.reverse();
        }
        let total = nodes.len();
        let page: Vec<Value> = nodes
            .iter()
            .skip(p.offset)
            .take(p.limit.unwrap_or(usize::MAX))
            .map(|m| inventory_row(&estate, m))
            .collect();
        let mut response = json(StatusCode::OK, Value::Array(page));
        if p.include_total
            && let Ok(value) = HeaderValue::from_str(&total.to_string())
        {
            response.headers_mut().insert("X-Records", value);
        }
        return response;
    }
    let mut rows = Vec::new();
    for m in puppet_machines(&state, &estate) {
        let row = inventory_row(&estate, &m);
        match p.query.as_ref().map(|q| eval(q, &row)) {
            None | Some(Ok(true)) => rows.push(row),
            Some(Ok(false)) => {}
            Some(Err(message)) => return bad_request(&message),
        }
    }
    respond(rows, &p)
}

async fn fact_rows(
    State(state): State<Shared>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = match params(&method, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(message) => return bad_request(&message),
    };
    if p.order_by.iter().any(|(f, _)| f == "value") {
        return bad_request(
            "Unrecognized column 'value' specified in :order_by; Supported columns are 'certname', 'environment', 'name'",
        );
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let mut rows = Vec::new();
    for m in puppet_machines(&state, &estate) {
        let Value::Object(tree) = facts(&estate, &m) else {
            continue;
        };
        for (name, value) in tree {
            let row = json!({"certname": m.fqdn, "name": name, "value": value, "environment": "production"});
            match p.query.as_ref().map(|q| eval(q, &row)) {
                None | Some(Ok(true)) => rows.push(row),
                Some(Ok(false)) => {}
                Some(Err(message)) => return bad_request(&message),
            }
        }
    }
    respond(rows, &p)
}

async fn node(State(state): State<Shared>, Path(certname): Path<String>) -> Response {
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match puppet_machines(&state, &estate)
        .into_iter()
        .find(|m| m.fqdn == certname)
    {
        Some(m) => json(
            StatusCode::OK,
            json!({"certname": m.fqdn, "deactivated": null, "expired": null, "catalog_environment": "production", "facts_timestamp": m.last_report.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), "report_timestamp": m.last_report.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), "latest_report_status": "unchanged"}),
        ),
        None => json(
            StatusCode::NOT_FOUND,
            json!({"error": format!("No information is known about {certname}")}),
        ),
    }
}
