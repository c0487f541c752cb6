//! Foreman API v2: hosts with `page`/`per_page`/`search` in Foreman's envelope, one host with its
//! interfaces, and facts paged over values with string values keyed by host name.

use super::estate::{Estate, SITES};
use super::http::{Credentials, Faults, Query, basic_auth, json, utc_words};
use super::machines::{Machine, MachineCache, facts, flatten};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

pub struct ForemanState {
    pub estate: Arc<RwLock<Estate>>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) credentials: Credentials,
    pub(crate) machines: MachineCache,
    /// Hosts deleted while the simulator runs (by the fault below), by Foreman id.
    pub(crate) deleted: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// A fault: once the next host list page has been served, delete this host, as a colleague
    /// deleting it in the web UI while a client pages through `/api/hosts` would.
    pub(crate) delete_after_next_page: std::sync::Mutex<Option<u64>>,
}

impl ForemanState {
    /// Arms the "change between pages" fault for the host with this Foreman id.
    pub fn delete_between_pages(&self, id: u64) {
        *self
            .delete_after_next_page
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(id);
    }

    fn is_deleted(&self, m: &Machine) -> bool {
        m.foreman_id.is_some_and(|id| {
            self.deleted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&id)
        })
    }
}

type Shared = Arc<ForemanState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/hosts", get(list_hosts))
        .route("/api/v2/hosts", get(list_hosts))
        .route("/api/hosts/{id}", get(show_host))
        .route("/api/v2/hosts/{id}", get(show_host))
        .route("/api/hosts/{id}/facts", get(host_facts))
        .route("/api/v2/hosts/{id}/facts", get(host_facts))
        .route("/api/status", get(status))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, json!({"error": {"message": message}}))
}

fn authorize(state: &ForemanState, headers: &HeaderMap) -> Result<(), Response> {
    match basic_auth(headers) {
        Some((user, password))
            if state.credentials.matches(&user, &password) && !state.faults.reject_auth() =>
        {
            Ok(())
        }
        Some((user, _)) => Err(error(
            StatusCode::UNAUTHORIZED,
            &format!("Unable to authenticate user {user}"),
        )),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "Unable to authenticate user ",
        )),
    }
}

async fn status(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    json(
        StatusCode::OK,
        json!({"result": "ok", "status": 200, "version": "3.13.0", "api_version": 2}),
    )
}

fn os_id(guest: usize) -> usize {
    guest + 1
}

fn host_json(estate: &Estate, m: &Machine) -> Value {
    let (os_name, _, _) = Estate::guest_os(m.guest);
    let id = m.foreman_id.unwrap_or(0);
    json!({
        "id": id, "name": m.fqdn, "display_name": m.fqdn,
        "ip": m.ip, "ip6": null, "mac": m.mac,
        "operatingsystem_id": os_id(m.guest), "operatingsystem_name": os_name,
        "hostgroup_id": 1 + m.hostgroup.len() % 7, "hostgroup_name": m.hostgroup.rsplit('/').next(), "hostgroup_title": m.hostgroup,
        "model_id": if m.is_virtual { 2 } else { 3 }, "model_name": m.model,
        "compute_resource_id": m.compute_resource.as_ref().map(|_| 1),
        "compute_resource_name": m.compute_resource,
        "compute_resource_provider": m.compute_resource.as_ref().map(|_| "vmware"),
        "uuid": m.foreman_uuid,
        "last_report": utc_words(m.last_report),
        "last_compile": utc_words(m.last_report - chrono::Duration::seconds(21)),
        "domain_name": SITES[m.site].1, "architecture_name": "x86_64",
        "subnet_name": format!("{}-prod", SITES[m.site].0),
        "organization_id": 1, "organization_name": "Default Organization",
        "location_id": m.site + 1, "location_name": SITES[m.site].0.to_uppercase(),
        "global_status": 0, "global_status_label": "OK",
        "enabled": true, "managed": true, "build": false, "comment": null,
        "certname": m.fqdn, "owner_name": "Admin User", "owner_type": "User",
        "created_at": utc_words(m.created_at),
        "updated_at": utc_words(estate.now - chrono::Duration::minutes((id % 50) as i64)),
    })
}

/// The subset of Foreman's scoped search the simulator understands:
/// `name = x`, `name ~ x`, `hostgroup_title = x`, `last_report > "YYYY-MM-DD HH:MM:SS"`,
/// `id > N` (integers compared as numbers, as Foreman's INTEGER validator does), joined with `and`. Anything else is a 400, like a search Foreman cannot parse.
fn search_filter(search: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut terms = Vec::new();
    for part in search.split(" and ") {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let op = [" = ", " ~ ", " > ", " < "]
            .iter()
            .find(|op| part.contains(*op))
            .ok_or_else(|| format!("Invalid search query: {search}"))?;
        let (field, value) = part.split_once(op).unwrap_or((part, ""));
        let field = field.trim();
        if !["name", "hostgroup_title", "last_report", "id"].contains(&field) {
            return Err(format!("Field '{field}' not recognized for searching!"));
        }
        if field == "id" && value.trim().parse::<u64>().is_err() {
            return Err(format!(
                "Value '{}' is not valid for field 'id'",
                value.trim()
            ));
        }
        terms.push((
            field.to_string(),
            op.trim().to_string(),
            value.trim().trim_matches('"').to_string(),
        ));
    }
    Ok(terms)
}

fn matches(m: &Machine, terms: &[(String, String, String)]) -> bool {
    terms.iter().all(|(field, op, value)| {
        if field == "id" {
            let (id, wanted) = (m.foreman_id.unwrap_or(0), value.parse::<u64>().unwrap_or(0));
            return match op.as_str() {
                "=" => id == wanted,
                ">" => id > wanted,
                "<" => id < wanted,
                _ => false,
            };
        }
        let actual = match field.as_str() {
            "name" => m.fqdn.clone(),
            "hostgroup_title" => m.hostgroup.clone(),
            _ => m.last_report.format("%Y-%m-%d %H:%M:%S").to_string(),
        };
        match op.as_str() {
            "=" => actual == *value,
            "~" => actual.to_lowercase().contains(&value.to_lowercase()),
            ">" => actual.as_str() > value.as_str(),
            _ => actual.as_str() < value.as_str(),
        }
    })
}

fn paging(q: &Query, total: usize) -> Result<(usize, usize), Response> {
    let page = match q.get("page") {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "page must be a positive integer"))?,
    };
    let per_page = match q.get("per_page") {
        None => 20,
        Some("all") => total.max(1),
        Some(p) => p.parse::<usize>().ok().filter(|p| *p > 0).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "per_page must be a positive integer or 'all'",
            )
        })?,
    };
    Ok((page, per_page))
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
    let search = q.get("search").unwrap_or("").to_string();
    let terms = match search_filter(&search) {
        Ok(t) => t,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let index = state.machines.get(&estate);
    let all: Vec<&Machine> = index
        .list
        .iter()
        .filter(|m| m.foreman_id.is_some() && !state.is_deleted(m))
        .collect();
    let mut matching: Vec<&Machine> = all.iter().copied().filter(|m| matches(m, &terms)).collect();
    // `order=FIELD [ASC|DESC]`; without it Foreman orders hosts by name (the default order).
    let order = q.get("order").unwrap_or("name ASC").to_string();
    let mut words = order.split_whitespace();
    let field = words.next().unwrap_or("name");
    let descending = words.next().is_some_and(|w| w.eq_ignore_ascii_case("desc"));
    match field {
        "id" => matching.sort_by_key(|m| m.foreman_id),
        "name" => matching.sort_by(|a, b| a.fqdn.cmp(&b.fqdn)),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Field '{other}' not recognized for searching!"),
            );
        }
    }
    if descending {
        matching.reverse();
    }
    let (page, per_page) = match paging(&q, matching.len()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let thin = q.get("thin") == Some("true");
    let results: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|m| {
            if thin {
                json!({"id": m.foreman_id, "name": m.fqdn})
            } else {
                host_json(&estate, m)
            }
        })
        .collect();
    if let Some(id) = state
        .delete_after_next_page
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        state
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
    }
    json(
        StatusCode::OK,
        json!({
            "total": all.len(), "subtotal": matching.len(), "page": page, "per_page": per_page,
            "search": if search.is_empty() { Value::Null } else { Value::String(search) },
            "sort": {"by": field, "order": if descending { "DESC" } else { "ASC" }},
            "results": results,
        }),
    )
}

async fn show_host(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let index = state.machines.get(&estate);
    let Some(m) = index
        .get(&id)
        .filter(|m| m.foreman_id.is_some() && !state.is_deleted(m))
    else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Resource host not found by id '{id}'"),
        );
    };
    let mut host = host_json(&estate, m);
    host["interfaces"] = json!([{
        "id": m.foreman_id.unwrap_or(0) * 10, "name": m.fqdn, "ip": m.ip, "ip6": null, "mac": m.mac,
        "identifier": "eth0", "primary": true, "provision": true, "managed": true,
        "type": "interface", "virtual": false, "subnet_name": format!("{}-prod", SITES[m.site].0),
    }]);
    host["permissions"] = json!({"view_hosts": true, "edit_hosts": false});
    json(StatusCode::OK, host)
}

async fn host_facts(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let index = state.machines.get(&estate);
    let Some(m) = index
        .get(&id)
        .filter(|m| m.foreman_id.is_some() && !state.is_deleted(m))
    else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Resource host not found by id '{id}'"),
        );
    };
    // Hosts that never reported to Puppet (decoys, appliances) have no facts.
    let values = if m.in_puppet {
        flatten(&facts(&estate, m))
    } else {
        Vec::new()
    };
    let (page, per_page) = match paging(&q, values.len()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let page_values: serde_json::Map<String, Value> = values
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json(
        StatusCode::OK,
        json!({
            "total": values.len(), "subtotal": values.len(), "page": page, "per_page": per_page,
            "search": format!(" host = {}", m.fqdn),
            "sort": {"by": null, "order": null},
            "results": {m.fqdn.clone(): page_values},
        }),
    )
}
