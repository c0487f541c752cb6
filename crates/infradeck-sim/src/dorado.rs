//! Huawei OceanStor Dorado DeviceManager REST: session login (`deviceid` + `iBaseToken` + cookie),
//! LUN and storage pool lists paged with `range=[a-b]`, every value a string, capacities in
//! 512-byte sectors, and errors as HTTP 200 with a non-zero `error.code`.

use super::estate::Estate;
use super::http::{Credentials, Faults, Query};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The largest `range` the simulator serves in one page, as Huawei's own driver assumes.
pub(crate) const MAX_RANGE: usize = 100;

pub struct DoradoState {
    pub estate: Arc<RwLock<Estate>>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) credentials: Credentials,
    /// token → requests served with it
    sessions: Mutex<HashMap<String, u64>>,
    next_token: AtomicU64,
    /// When set, the next LUN page answers this (code, description) with HTTP 200.
    pub fail_next_lun_page: Mutex<Option<(i64, String)>>,
    /// A fault: once the next LUN page has been served, delete the LUN with this id, as an
    /// administrator would while a client pages through the list.
    pub delete_after_next_lun_page: Mutex<Option<String>>,
    pub logins: AtomicU64,
    pub logouts: AtomicU64,
}

impl DoradoState {
    pub(crate) fn new(
        estate: Arc<RwLock<Estate>>,
        faults: Arc<Faults>,
        credentials: Credentials,
    ) -> Arc<DoradoState> {
        Arc::new(DoradoState {
            estate,
            faults,
            credentials,
            sessions: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            fail_next_lun_page: Mutex::new(None),
            delete_after_next_lun_page: Mutex::new(None),
            logins: AtomicU64::new(0),
            logouts: AtomicU64::new(0),
        })
    }

    /// Drops every session, as an array controller failover does.
    pub fn expire_sessions(&self) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

type Shared = Arc<DoradoState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/deviceManager/rest/{placeholder}/sessions",
            post(login).delete(logout),
        )
        .route("/deviceManager/rest/{device}/lun", get(luns))
        .route("/deviceManager/rest/{device}/lun/count", get(lun_count))
        .route("/deviceManager/rest/{device}/lun/{id}", get(lun))
        .route("/deviceManager/rest/{device}/storagepool", get(pools))
        .route("/deviceManager/rest/{device}/system/", get(system))
        .with_state(state)
}

fn answer(data: Value, code: i64, description: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        json!({"data": data, "error": {"code": code, "description": description}}).to_string(),
    )
        .into_response()
}

fn ok(data: Value) -> Response {
    answer(data, 0, "0")
}

async fn login(State(state): State<Shared>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = request["username"].as_str().unwrap_or("");
    let password = request["password"].as_str().unwrap_or("");
    if !state.credentials.matches(user, password) || state.faults.reject_auth() {
        return answer(
            json!({}),
            1_077_949_061,
            "The user name or password is incorrect.",
        );
    }
    state.logins.fetch_add(1, Ordering::Relaxed);
    let n = state.next_token.fetch_add(1, Ordering::Relaxed);
    let token = format!("{:016X}{:016X}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15), n);
    state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), 0);
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let mut response = ok(json!({
        "deviceid": estate.dorado.device_id,
        "iBaseToken": token,
        "accountstate": 1,
        "username": user,
        "level": 2,
    }));
    if let Ok(cookie) = format!("session=ismsession={token}; path=/; HttpOnly").parse() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = headers.get("iBaseToken").and_then(|v| v.to_str().ok()) {
        state
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
    state.logouts.fetch_add(1, Ordering::Relaxed);
    ok(json!({}))
}

/// Checks device id, token and cookie; an unknown or expired session is `-401` with HTTP 200.
fn authorize(state: &DoradoState, headers: &HeaderMap, device: &str) -> Result<(), Response> {
    let unauthorized = || answer(json!({}), -401, "unauthorized");
    let token = headers
        .get("iBaseToken")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let cookie_ok = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains(&format!("ismsession={token}")));
    let device_ok = state
        .estate
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .dorado
        .device_id
        == device;
    let mut sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    let uses = sessions.get_mut(token).ok_or_else(unauthorized)?;
    if !cookie_ok || !device_ok {
        return Err(unauthorized());
    }
    *uses += 1;
    if state.faults.session_expired(*uses) {
        sessions.remove(token);
        return Err(unauthorized());
    }
    Ok(())
}

/// Parses `range=[start-end]` (raw or URL-encoded); end is exclusive.
fn range(q: &Query) -> Result<(usize, usize), Response> {
    let Some(text) = q.get("range") else {
        return Ok((0, MAX_RANGE));
    };
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    let parsed = inner.split_once('-').and_then(|(a, b)| {
        Some((
            a.trim().parse::<usize>().ok()?,
            b.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((a, b)) if b >= a => Ok((a, b.min(a + MAX_RANGE))),
        _ => Err(answer(
            json!({}),
            50_331_651,
            "The entered parameter is incorrect.",
        )),
    }
}

fn lun_json(estate: &Estate, l: &super::estate::DoradoLun) -> Value {
    let pool = &estate.dorado.pools[l.pool];
    json!({
        "ID": l.id, "NAME": l.name, "WWN": l.wwn, "TYPE": "11",
        "PARENTID": pool.id, "PARENTNAME": pool.name,
        "CAPACITY": l.capacity_sectors.to_string(), "ALLOCCAPACITY": l.alloc_sectors.to_string(),
        "ALLOCTYPE": if l.thin { "1" } else { "0" },
        "HEALTHSTATUS": l.health_status, "RUNNINGSTATUS": l.running_status,
        "SECTORSIZE": "512", "DESCRIPTION": "",
    })
}

async fn luns(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(device): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &device) {
        return r;
    }
    if let Some((code, description)) = state
        .fail_next_lun_page
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return answer(json!({}), code, &description);
    }
    let q = Query::parse(raw.as_deref());
    let (start, end) = match range(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let page: Vec<Value> = {
        let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
        let name_filter = q.get("filter").and_then(|f| f.strip_prefix("NAME::"));
        estate
            .dorado
            .luns
            .iter()
            .filter(|l| name_filter.is_none_or(|n| l.name == n))
            .skip(start)
            .take(end - start)
            .map(|l| lun_json(&estate, l))
            .collect()
    };
    let doomed = state
        .delete_after_next_lun_page
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(id) = doomed {
        let mut estate = state.estate.write().unwrap_or_else(|e| e.into_inner());
        estate.dorado.luns.retain(|l| l.id != id);
    }
    if page.is_empty() {
        // The array leaves `data` out of an empty answer.
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": {"code": 0, "description": "0"}}).to_string(),
        )
            .into_response();
    }
    ok(Value::Array(page))
}

async fn lun_count(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(device): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &device) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    ok(json!({"COUNT": estate.dorado.luns.len().to_string()}))
}

async fn lun(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((device, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &device) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match estate.dorado.luns.iter().find(|l| l.id == id) {
        Some(l) => ok(lun_json(&estate, l)),
        None => answer(json!({}), 1_077_936_859, "The LUN does not exist."),
    }
}

async fn pools(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(device): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &device) {
        return r;
    }
    let q = Query::parse(raw.as_deref());
    let (start, end) = match range(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let page: Vec<Value> = estate
        .dorado
        .pools
        .iter()
        .skip(start)
        .take(end - start)
        .map(|p| {
            json!({
                "ID": p.id, "NAME": p.name, "HEALTHSTATUS": "1", "RUNNINGSTATUS": "27",
                "USERTOTALCAPACITY": p.total_sectors.to_string(), "USERFREECAPACITY": p.free_sectors.to_string(),
                "TIER0RAIDLV": "5", "DESCRIPTION": "",
            })
        })
        .collect();
    ok(Value::Array(page))
}

async fn system(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(device): Path<String>,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &device) {
        return r;
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let d = &estate.dorado;
    let total: u64 = d.pools.iter().map(|p| p.total_sectors).sum();
    ok(json!({
        "ID": d.serial, "NAME": d.name, "PRODUCTMODE": "811", "PRODUCTVERSION": d.version,
        "pointRelease": d.model, "SECTORSIZE": "512", "TOTALCAPACITY": total.to_string(),
        "HEALTHSTATUS": "1", "RUNNINGSTATUS": "1", "LOCATION": "DC2 hall 1",
    }))
}
