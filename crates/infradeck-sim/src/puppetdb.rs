//! PuppetDB query API v4, shaped after the real PuppetDB 7.12 (observed side by side, see
//! `shared/reference/real-servers.md`): `inventory`, `facts`, `facts/{name}`, `nodes` and
//! `nodes/{certname}` with an AST `query` (`=`, `~` as a regular expression, `>`, `<`, `>=`,
//! `<=`, `in` with an array, `null?`, `and`, `or`, `not`, `node_state`), `limit`/`offset`/
//! `order_by` validated as PuppetDB does, `include_total` (→ `X-Records`), GET or POST;
//! `application/json;charset=utf-8`, gzip when asked; `deactivate_node` through `/pdb/cmd/v1`;
//! an unknown path answers 302 to the dashboard.
//!
//! Not served: PQL strings, `extract` and subqueries, `/factsets`, `/fact-contents`, reports
//! and catalogs, and `replace_facts` (the facts come from the estate) — infradeck sends none.

use super::estate::Estate;
use super::http::Query;
use super::machines::{Machine, MachineCache, facts};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};

pub struct PuppetdbState {
    pub estate: Arc<RwLock<Estate>>,
    pub(crate) machines: MachineCache,
    /// Nodes deactivated through `/pdb/cmd/v1` (or the fault below), and when.
    pub deactivated: Mutex<HashMap<String, DateTime<Utc>>>,
    /// A fault: once the next inventory page has been served, deactivate this node, as a
    /// `puppet node deactivate` run while a client pages through the inventory would.
    pub(crate) deactivate_after_next_page: Mutex<Option<String>>,
}

impl PuppetdbState {
    pub(crate) fn new(estate: Arc<RwLock<Estate>>) -> PuppetdbState {
        PuppetdbState {
            estate,
            machines: MachineCache::default(),
            deactivated: Mutex::new(HashMap::new()),
            deactivate_after_next_page: Mutex::new(None),
        }
    }

    /// Arms the "change between pages" fault for `certname`.
    pub fn deactivate_between_pages(&self, certname: &str) {
        *lock(&self.deactivate_after_next_page) = Some(certname.to_string());
    }

    fn deactivate(&self, certname: &str, at: DateTime<Utc>) {
        lock(&self.deactivated).insert(certname.to_string(), at);
    }
}

/// A poisoned lock here guards plain maps that a panic cannot leave half-updated.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Shared = Arc<PuppetdbState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/pdb/query/v4/inventory", get(inventory).post(inventory))
        .route("/pdb/query/v4/facts", get(fact_rows).post(fact_rows))
        .route("/pdb/query/v4/facts/{name}", get(named_facts))
        .route("/pdb/query/v4/nodes", get(nodes).post(nodes))
        .route("/pdb/query/v4/nodes/{certname}", get(node))
        .route("/pdb/meta/v1/version", get(version))
        .route("/status/v1/services/puppetdb-status", get(status))
        .route("/pdb/cmd/v1", post(command))
        .fallback(to_dashboard)
        .with_state(state)
}

const JSON_TYPE: &str = "application/json;charset=utf-8";

/// PuppetDB's answer to a path it does not serve (and to a trailing slash).
async fn to_dashboard() -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "/pdb/dashboard/index.html")],
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// A JSON answer in PuppetDB's content type, gzipped when the client asked for it.
fn answer(status: StatusCode, value: &Value, headers: &HeaderMap) -> Response {
    let body = value.to_string().into_bytes();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if encoder.write_all(&body).is_ok()
            && let Ok(compressed) = encoder.finish()
        {
            return (
                status,
                [
                    (header::CONTENT_TYPE, JSON_TYPE),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                compressed,
            )
                .into_response();
        }
    }
    (status, [(header::CONTENT_TYPE, JSON_TYPE)], body).into_response()
}

/// What each endpoint can be queried and ordered on.
#[derive(Clone, Copy, PartialEq)]
enum Entity {
    Inventory,
    Facts,
    Nodes,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Inventory => "inventory",
            Entity::Facts => "facts",
            Entity::Nodes => "nodes",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            // In the order PuppetDB names them in its errors.
            Entity::Inventory => &["certname", "timestamp", "environment", "facts", "trusted"],
            Entity::Facts => &["certname", "environment", "name", "value"],
            Entity::Nodes => &[
                "cached_catalog_status",
                "catalog_environment",
                "catalog_timestamp",
                "certname",
                "deactivated",
                "expired",
                "facts_environment",
                "facts_timestamp",
                "latest_report_corrective_change",
                "latest_report_hash",
                "latest_report_job_id",
                "latest_report_noop",
                "latest_report_noop_pending",
                "latest_report_status",
                "report_environment",
                "report_timestamp",
            ],
        }
    }

    fn queryable(self, field: &str) -> bool {
        let root = field.split('.').next().unwrap_or(field);
        field == "node_state" || self.fields().contains(&root)
    }
}

/// The request parameters, from the query string (GET) or the JSON body (POST).
struct Params {
    query: Option<Value>,
    limit: Option<usize>,
    offset: usize,
    order_by: Vec<(String, bool)>,
    include_total: bool,
}

/// A number given as a JSON number or as a string of digits, as PuppetDB accepts both.
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn params(
    entity: Entity,
    method: &Method,
    raw: Option<&str>,
    body: &Bytes,
) -> Result<Params, Response> {
    let object: serde_json::Map<String, Value> = if method == Method::POST && !body.is_empty() {
        serde_json::from_slice(body)
            .map_err(|e| bad_request(&format!("Malformed JSON for body: {e}")))?
    } else {
        let q = Query::parse(raw);
        let mut map = serde_json::Map::new();
        for key in ["query", "order_by"] {
            if let Some(text) = q.get(key) {
                let value: Value = serde_json::from_str(text).map_err(|_| {
                    bad_request(&format!(
                        "Illegal value '{text}' for :{key}; expected a JSON array"
                    ))
                })?;
                map.insert(key.into(), value);
            }
        }
        for key in ["limit", "offset", "include_total"] {
            if let Some(text) = q.get(key) {
                map.insert(key.into(), Value::String(text.to_string()));
            }
        }
        map
    };
    let limit = match object.get("limit") {
        None | Some(Value::Null) => None,
        Some(value) => match whole_number(value) {
            Some(n) if n > 0 => Some(n as usize),
            _ => {
                return Err(bad_request(&format!(
                    "Illegal value '{}' for :limit; expected a positive non-zero integer.",
                    plain(value)
                )));
            }
        },
    };
    let offset = match object.get("offset") {
        None | Some(Value::Null) => 0,
        Some(value) => match whole_number(value) {
            Some(n) if n >= 0 => n as usize,
            _ => {
                return Err(bad_request(&format!(
                    "Illegal value '{}' for :offset; expected a non-negative integer.",
                    plain(value)
                )));
            }
        },
    };
    let order_by = match object.get("order_by") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let Some(field) = item.get("field").and_then(Value::as_str) else {
                    return Err(bad_request(&format!(
                        "Illegal value '{item}' for :order_by; missing required key :field"
                    )));
                };
                if !entity.fields().contains(&field) {
                    let supported: Vec<String> =
                        entity.fields().iter().map(|f| format!("'{f}'")).collect();
                    return Err(bad_request(&format!(
                        "Unrecognized column '{field}' specified in :order_by; Supported columns are {}",
                        supported.join(", ")
                    )));
                }
                let desc = match item.get("order").and_then(Value::as_str) {
                    None => false,
                    Some(o) if o.eq_ignore_ascii_case("asc") => false,
                    Some(o) if o.eq_ignore_ascii_case("desc") => true,
                    Some(o) => {
                        return Err(bad_request(&format!(
                            "Illegal value '{o}' for :order; expected `desc` or `asc`"
                        )));
                    }
                };
                out.push((field.to_string(), desc));
            }
            out
        }
        Some(other) => {
            return Err(bad_request(&format!(
                "Illegal value '{other}' for :order_by; expected an array of maps."
            )));
        }
    };
    let include_total = match object.get("include_total") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Params {
        query: object.get("query").cloned().filter(|q| !q.is_null()),
        limit,
        offset,
        order_by,
        include_total,
    })
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a query cannot run: PuppetDB answers most with 400, a query that is not an array with
/// 500 (plain text, as the real server does).
enum QueryError {
    Bad(String),
    NotAnArray(String),
}

fn query_error(err: QueryError) -> Response {
    match err {
        QueryError::Bad(message) => bad_request(&message),
        QueryError::NotAnArray(message) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
            message,
        )
            .into_response(),
    }
}

/// Checks the query's shape and fields before any row is looked at, so an unknown field is an
/// error even when there are no rows.
fn validate(entity: Entity, query: &Value) -> Result<(), QueryError> {
    let Some(items) = query.as_array() else {
        return Err(QueryError::NotAnArray(format!(
            "java.lang.IllegalArgumentException: query must be an array, got {query}"
        )));
    };
    let op = items.first().and_then(Value::as_str).ok_or_else(|| {
        QueryError::Bad(format!(
            "{query} is not well-formed: the operator must be a string"
        ))
    })?;
    match op {
        "and" | "or" => items[1..].iter().try_for_each(|q| validate(entity, q)),
        "not" if items.len() == 2 => validate(entity, &items[1]),
        "=" | "~" | ">" | "<" | ">=" | "<=" | "in" | "null?" if items.len() == 3 => {
            let field = items[1].as_str().ok_or_else(|| {
                QueryError::Bad(format!(
                    "{query} is not well-formed: the field must be a string"
                ))
            })?;
            if !entity.queryable(field) {
                let known: Vec<String> = entity.fields().iter().map(|f| format!("'{f}'")).collect();
                return Err(QueryError::Bad(format!(
                    "'{field}' is not a queryable object for {}. Known queryable objects are [{}]",
                    entity.name(),
                    known.join(", ")
                )));
            }
            let text_field = matches!(field, "certname" | "environment" | "name" | "node_state");
            if matches!(op, ">" | "<" | ">=" | "<=") && text_field {
                return Err(QueryError::Bad(format!(
                    "Query operators >,>=,<,<= are not allowed on field {field}"
                )));
            }
            if op == "~" {
                let pattern = items[2].as_str().unwrap_or_default();
                regex::Regex::new(pattern).map_err(|e| {
                    QueryError::Bad(format!("Invalid regular expression '{pattern}': {e}"))
                })?;
            }
            if op == "in" && !items[2].is_array() {
                return Err(QueryError::Bad(
                    "The simulator supports `in` with an array only (not `extract`)".into(),
                ));
            }
            if field == "node_state" {
                let state = items[2].as_str().unwrap_or_default();
                if op != "=" || !["active", "inactive", "any"].contains(&state) {
                    return Err(QueryError::Bad(format!(
                        "node_state takes = with 'active', 'inactive' or 'any', not {query}"
                    )));
                }
            }
            Ok(())
        }
        other => Err(QueryError::Bad(format!(
            "'{other}' is not a queryable operator for {}",
            entity.name()
        ))),
    }
}

/// Orders two JSON values as PostgreSQL would order the column: numbers as numbers, text as
/// text, null last.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

fn field_value<'a>(row: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(row, |v, k| v.get(k))
}

/// Evaluates a validated query against one row; `node_state` conditions are handled by
/// [`wanted_states`] and always hold here.
fn eval(query: &Value, row: &Value) -> bool {
    let Some(items) = query.as_array() else {
        return false;
    };
    let op = items.first().and_then(Value::as_str).unwrap_or_default();
    match op {
        "and" => items[1..].iter().all(|q| eval(q, row)),
        "or" => items[1..].iter().any(|q| eval(q, row)),
        "not" => !eval(&items[1], row),
        _ => {
            let field = items[1].as_str().unwrap_or_default();
            if field == "node_state" {
                return true;
            }
            let actual = field_value(row, field);
            let wanted = &items[2];
            match op {
                "=" => actual == Some(wanted),
                "~" => match (actual, wanted.as_str()) {
                    (Some(Value::String(s)), Some(pattern)) => {
                        regex::Regex::new(pattern).is_ok_and(|re| re.is_match(s))
                    }
                    _ => false,
                },
                "null?" => actual.is_none_or(Value::is_null) == (wanted == &Value::Bool(true)),
                "in" => {
                    actual.is_some_and(|a| wanted.as_array().is_some_and(|set| set.contains(a)))
                }
                _ => actual.filter(|a| !a.is_null()).is_some_and(|a| {
                    let order = compare(a, wanted);
                    match op {
                        ">" => order.is_gt(),
                        "<" => order.is_lt(),
                        ">=" => order.is_ge(),
                        _ => order.is_le(),
                    }
                }),
            }
        }
    }
}

/// Which node states a query asks for: active only unless it says `node_state` otherwise.
fn wanted_states(query: Option<&Value>) -> (bool, bool) {
    fn find(q: &Value) -> Option<&str> {
        let items = q.as_array()?;
        match items.first()?.as_str()? {
            "and" | "or" | "not" => items[1..].iter().find_map(find),
            _ if items.get(1).and_then(Value::as_str) == Some("node_state") => items[2].as_str(),
            _ => None,
        }
    }
    match query.and_then(find) {
        Some("any") => (true, true),
        Some("inactive") => (false, true),
        _ => (true, false),
    }
}

/// The nodes PuppetDB knows (Foreman-only machines never reported) with their deactivation time.
fn puppet_machines(
    state: &PuppetdbState,
    estate: &Estate,
) -> Vec<(Machine, Option<DateTime<Utc>>)> {
    let deactivated = lock(&state.deactivated);
    state
        .machines
        .get(estate)
        .list
        .iter()
        .filter(|m| m.in_puppet)
        .map(|m| (m.clone(), deactivated.get(&m.fqdn).copied()))
        .collect()
}

/// The nodes a query asks for by state: the active ones unless it says `node_state` otherwise.
fn nodes_asked_for(
    state: &PuppetdbState,
    estate: &Estate,
    query: Option<&Value>,
) -> Vec<(Machine, Option<DateTime<Utc>>)> {
    let (active, inactive) = wanted_states(query);
    let mut nodes = puppet_machines(state, estate);
    nodes.retain(|(_, deactivated)| {
        if deactivated.is_some() {
            inactive
        } else {
            active
        }
    });
    nodes
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn inventory_row(estate: &Estate, m: &Machine) -> Value {
    let facts = facts(estate, m);
    json!({
        "certname": m.fqdn,
        "timestamp": stamp(m.last_report),
        "environment": "production",
        "trusted": facts["trusted"].clone(),
        "facts": facts,
    })
}

/// A node as `/nodes` shows one that has submitted facts and nothing else (the simulator
/// serves no catalogs or reports): every catalog and report field is null, as the real
/// PuppetDB answers for such a node.
fn node_row(m: &Machine, deactivated: Option<DateTime<Utc>>) -> Value {
    json!({
        "certname": m.fqdn,
        "deactivated": deactivated.map(stamp),
        "expired": null,
        "catalog_timestamp": null,
        "facts_timestamp": stamp(m.last_report),
        "report_timestamp": null,
        "catalog_environment": null,
        "facts_environment": "production",
        "report_environment": null,
        "latest_report_status": null,
        "latest_report_noop": null,
        "latest_report_noop_pending": null,
        "latest_report_hash": null,
        "latest_report_job_id": null,
        "latest_report_corrective_change": null,
        "cached_catalog_status": null,
    })
}

/// Filters, orders and pages rows as PuppetDB does; `Err` is the error answer.
fn select(
    entity: Entity,
    p: &Params,
    rows: impl Iterator<Item = Value>,
) -> Result<(Vec<Value>, usize), Response> {
    let mut rows: Vec<Value> = match &p.query {
        None => rows.collect(),
        Some(q) => rows.filter(|row| eval(q, row)).collect(),
    };
    // PuppetDB orders inventory and nodes by certname when not told (the order of its index).
    let default_order = [("certname".to_string(), false)];
    let order: &[(String, bool)] = if p.order_by.is_empty() && entity != Entity::Facts {
        &default_order
    } else {
        &p.order_by
    };
    rows.sort_by(|a, b| {
        for (field, desc) in order {
            let x = a.get(field).unwrap_or(&Value::Null);
            let y = b.get(field).unwrap_or(&Value::Null);
            let o = compare(x, y);
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    let total = rows.len();
    let page = rows
        .into_iter()
        .skip(p.offset)
        .take(p.limit.unwrap_or(usize::MAX))
        .collect();
    Ok((page, total))
}

fn page_answer(rows: Vec<Value>, total: usize, p: &Params, headers: &HeaderMap) -> Response {
    let mut response = answer(StatusCode::OK, &Value::Array(rows), headers);
    if p.include_total
        && let Ok(value) = HeaderValue::from_str(&total.to_string())
    {
        response.headers_mut().insert("X-Records", value);
    }
    response
}

/// Parses and validates a request for `entity`; `Err` is the error answer.
fn prepare(
    entity: Entity,
    method: &Method,
    raw: Option<&str>,
    body: &Bytes,
) -> Result<Params, Response> {
    let p = params(entity, method, raw, body)?;
    if let Some(q) = &p.query {
        validate(entity, q).map_err(query_error)?;
    }
    Ok(p)
}

async fn inventory(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = match prepare(Entity::Inventory, &method, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let response = {
        let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
        let mut nodes = nodes_asked_for(&state, &estate, p.query.as_ref());
        let plain_certname_order = p.order_by.iter().all(|(f, desc)| f == "certname" && !desc);
        if plain_certname_order && p.query.as_ref().is_none_or(only_certname_terms) {
            // The common paging shapes (no query, or certname keys): filter on the certname
            // before building rows, so walking 100,000 nodes page by page stays linear.
            nodes.sort_by(|a, b| a.0.fqdn.cmp(&b.0.fqdn));
            let keep: Vec<&Machine> = nodes
                .iter()
                .map(|(m, _)| m)
                .filter(|m| {
                    p.query
                        .as_ref()
                        .is_none_or(|q| eval(q, &json!({"certname": m.fqdn})))
                })
                .collect();
            let total = keep.len();
            let rows: Vec<Value> = keep
                .iter()
                .skip(p.offset)
                .take(p.limit.unwrap_or(usize::MAX))
                .map(|m| inventory_row(&estate, m))
                .collect();
            page_answer(rows, total, &p, &headers)
        } else {
            let rows = nodes.iter().map(|(m, _)| inventory_row(&estate, m));
            match select(Entity::Inventory, &p, rows) {
                Ok((rows, total)) => page_answer(rows, total, &p, &headers),
                Err(response) => response,
            }
        }
    };
    if let Some(certname) = lock(&state.deactivate_after_next_page).take() {
        state.deactivate(&certname, Utc::now());
    }
    response
}

/// Whether a query looks only at the certname (and node state).
fn only_certname_terms(q: &Value) -> bool {
    let Some(items) = q.as_array() else {
        return false;
    };
    match items.first().and_then(Value::as_str) {
        Some("and" | "or" | "not") => items[1..].iter().all(only_certname_terms),
        _ => matches!(
            items.get(1).and_then(Value::as_str),
            Some("certname" | "node_state")
        ),
    }
}

fn fact_rows_of(
    state: &PuppetdbState,
    estate: &Estate,
    query: Option<&Value>,
    only: Option<&str>,
) -> Vec<Value> {
    let mut rows = Vec::new();
    for (m, _) in nodes_asked_for(state, estate, query) {
        let Value::Object(tree) = facts(estate, &m) else {
            continue;
        };
        for (name, value) in tree {
            if only.is_none_or(|o| o == name) {
                rows.push(json!({"certname": m.fqdn, "name": name, "value": value, "environment": "production"}));
            }
        }
    }
    rows
}

async fn fact_rows(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    facts_answer(&state, None, &method, &headers, raw.as_deref(), &body)
}

async fn named_facts(
    State(state): State<Shared>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    facts_answer(
        &state,
        Some(&name),
        &method,
        &headers,
        raw.as_deref(),
        &body,
    )
}

/// `/facts` (every fact) and `/facts/{name}` (`only` that one).
fn facts_answer(
    state: &PuppetdbState,
    only: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: &Bytes,
) -> Response {
    let p = match prepare(Entity::Facts, method, raw, body) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let rows = fact_rows_of(state, &estate, p.query.as_ref(), only);
    match select(Entity::Facts, &p, rows.into_iter()) {
        Ok((rows, total)) => page_answer(rows, total, &p, headers),
        Err(response) => response,
    }
}

async fn nodes(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = match prepare(Entity::Nodes, &method, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let rows: Vec<Value> = nodes_asked_for(&state, &estate, p.query.as_ref())
        .into_iter()
        .map(|(m, d)| node_row(&m, d))
        .collect();
    match select(Entity::Nodes, &p, rows.into_iter()) {
        Ok((rows, total)) => page_answer(rows, total, &p, &headers),
        Err(response) => response,
    }
}

/// One node, deactivated or not (a deactivated node answers 200 with its `deactivated` time).
async fn node(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(certname): Path<String>,
) -> Response {
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match puppet_machines(&state, &estate)
        .into_iter()
        .find(|(m, _)| m.fqdn == certname)
    {
        Some((m, deactivated)) => answer(StatusCode::OK, &node_row(&m, deactivated), &headers),
        None => answer(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("No information is known about node {certname}")}),
            &headers,
        ),
    }
}

async fn version(headers: HeaderMap) -> Response {
    answer(StatusCode::OK, &json!({"version": "7.12.1"}), &headers)
}

async fn status(headers: HeaderMap) -> Response {
    answer(
        StatusCode::OK,
        &json!({"service_version": "7.12.1", "service_status_version": 1, "detail_level": "info", "state": "running", "status": {"maintenance_mode?": false, "queue_depth": 0, "read_db_up?": true, "write_db_up?": true}}),
        &headers,
    )
}

/// `/pdb/cmd/v1`: `deactivate_node` (version 3) is carried out at once; real PuppetDB queues
/// commands, so a client polls until the change is visible either way.
async fn command(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let command = q.get("command").unwrap_or_default().to_string();
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Malformed JSON for command body: {e}")),
    };
    match command.as_str() {
        "deactivate_node" => {
            let Some(certname) = payload["certname"].as_str().or(q.get("certname")) else {
                return bad_request("deactivate_node needs a certname");
            };
            let at = payload["producer_timestamp"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(Utc::now);
            state.deactivate(certname, at);
            answer(
                StatusCode::OK,
                &json!({"uuid": format!("{:032x}", certname.len() as u128 * 0x51_7cc1_b727_220a)}),
                &headers,
            )
        }
        other => bad_request(&format!(
            "the simulator carries out only deactivate_node, not `{other}` (its facts come from the estate)"
        )),
    }
}
