//! Confluence Server REST v1 and Jira (Server `/rest/api/2/search`, Cloud `/rest/api/3/search/jql`).
//!
//! Quirks kept on purpose: Confluence silently lowers `limit` when the body is expanded; Jira
//! Server truncates embedded comments (full list under `/issue/{key}/comment`); Jira Cloud's last
//! page has no `nextPageToken` key at all, and its bodies are ADF documents.

use super::estate::{Estate, KbPage, Ticket};
use super::http::{Credentials, Faults, Query, basic_auth, json};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

/// Confluence's page cap when `body.storage` is expanded (whatever `limit` asks).
pub(crate) const CONFLUENCE_BODY_CAP: usize = 25;
/// Jira's `maxResults` cap.
pub(crate) const JIRA_MAX_RESULTS: usize = 100;
/// Comments embedded in a search result before Jira truncates them.
pub(crate) const JIRA_EMBEDDED_COMMENTS: usize = 5;

pub(crate) struct AtlassianState {
    pub(crate) estate: Arc<RwLock<Estate>>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) credentials: Credentials,
    /// The base URL the simulator is reachable at, for `_links.base` and `self` links.
    pub(crate) base_url: RwLock<String>,
}

type Shared = Arc<AtlassianState>;

pub(crate) fn confluence_router(state: Shared) -> Router {
    Router::new()
        .route("/wiki/api/v2/spaces", get(v2_spaces))
        .route("/wiki/api/v2/pages", get(v2_pages))
        .route("/wiki/api/v2/pages/{id}/labels", get(v2_labels))
        .route("/rest/api/content", get(content))
        .route("/rest/api/content/search", get(content_search))
        .route("/rest/api/content/{id}", get(content_one))
        .with_state(state)
}

pub(crate) fn jira_router(state: Shared) -> Router {
    Router::new()
        .route("/rest/api/2/search", get(jira_search).post(jira_search))
        .route("/rest/api/2/issue/{key}/comment", get(jira_comments))
        .route(
            "/rest/api/3/search/jql",
            get(jira_cloud_search).post(jira_cloud_search),
        )
        .route("/rest/api/2/myself", get(jira_myself))
        .with_state(state)
}

/// Basic (`user:password`) or Bearer (a PAT equal to the password) authentication.
fn authorize(state: &AtlassianState, headers: &HeaderMap) -> bool {
    if state.faults.reject_auth() {
        return false;
    }
    if let Some((u, p)) = basic_auth(headers) {
        return state.credentials.matches(&u, &p);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == state.credentials.password)
}

fn confluence_unauthorized() -> Response {
    let mut r = json(
        StatusCode::UNAUTHORIZED,
        json!({"statusCode": 401, "message": "This request requires authentication.", "reason": "Unauthorized"}),
    );
    r.headers_mut().insert(
        "X-Seraph-LoginReason",
        header::HeaderValue::from_static("AUTHENTICATED_FAILED"),
    );
    r
}

fn base(state: &AtlassianState) -> String {
    state
        .base_url
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

fn confluence_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

fn page_json(state: &AtlassianState, estate: &Estate, page: &KbPage, expand: &[&str]) -> Value {
    let space_name = if page.space == "OPS" {
        "Operations"
    } else {
        "Network"
    };
    let webui = format!("/display/{}/{}", page.space, page.title.replace(' ', "+"));
    let mut v = json!({
        "id": page.id, "type": "page", "status": "current", "title": page.title,
        "_links": {"webui": webui, "tinyui": format!("/x/{}", page.id), "self": format!("{}/rest/api/content/{}", base(state), page.id)},
        "_expandable": {"space": "", "version": "", "ancestors": "", "body": "", "metadata": ""},
    });
    if expand.contains(&"space") {
        v["space"] = json!({"id": if page.space == "OPS" { 98305 } else { 98306 }, "key": page.space, "name": space_name});
    }
    if expand.contains(&"version") {
        v["version"] = json!({
            "number": page.version, "when": confluence_time(page.updated), "message": "",
            "by": {"type": "known", "username": page.author, "userKey": format!("8a7f{:x}", page.author.len()), "displayName": page.author},
        });
    }
    if expand.contains(&"ancestors") {
        let mut chain = Vec::new();
        let mut parent = page.parent_id.clone();
        while let Some(id) = parent {
            let Some(p) = estate.kb_pages.iter().find(|p| p.id == id) else {
                break;
            };
            chain.push(json!({"id": p.id, "type": "page", "title": p.title}));
            parent = p.parent_id.clone();
        }
        chain.reverse();
        v["ancestors"] = Value::Array(chain);
    }
    if expand.contains(&"body.storage") {
        v["body"] = json!({"storage": {"value": page.html, "representation": "storage"}});
    }
    if expand.contains(&"metadata.labels") {
        let labels: Vec<Value> = page
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| json!({"prefix": "global", "name": l, "id": (131_073 + i).to_string()}))
            .collect();
        v["metadata"] = json!({"labels": {"results": labels, "start": 0, "limit": 200, "size": page.labels.len()}});
    }
    v
}

fn paged_content(
    state: &AtlassianState,
    path: &str,
    q: &Query,
    pages: Vec<&KbPage>,
    estate: &Estate,
) -> Response {
    let expand: Vec<&str> = q
        .get("expand")
        .map(|e| e.split(',').collect())
        .unwrap_or_default();
    let start = q.number("start").unwrap_or(0) as usize;
    let asked = q.number("limit").unwrap_or(25).max(1) as usize;
    let limit = if expand.contains(&"body.storage") {
        asked.min(CONFLUENCE_BODY_CAP)
    } else {
        asked.min(200)
    };
    let results: Vec<Value> = pages
        .iter()
        .skip(start)
        .take(limit)
        .map(|p| page_json(state, estate, p, &expand))
        .collect();
    let base = base(state);
    let mut params: Vec<(String, String)> =
        q.0.iter()
            .filter(|(k, _)| k != "start" && k != "limit")
            .cloned()
            .collect();
    let mut links = json!({"base": base, "context": "", "self": format!("{base}{path}")});
    if start + results.len() < pages.len() {
        params.push(("limit".into(), limit.to_string()));
        params.push(("start".into(), (start + results.len()).to_string()));
        let qs = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        links["next"] = json!(format!("{path}?{qs}"));
    }
    json(
        StatusCode::OK,
        json!({"results": results, "start": start, "limit": limit, "size": results.len(), "_links": links}),
    )
}

async fn content(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorize(&state, &headers) {
        return confluence_unauthorized();
    }
    let q = Query::parse(raw.as_deref());
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let spaces = q.all("spaceKey");
    let pages: Vec<&KbPage> = estate
        .kb_pages
        .iter()
        .filter(|p| spaces.is_empty() || spaces.contains(&p.space.as_str()))
        .collect();
    paged_content(&state, "/rest/api/content", &q, pages, &estate)
}

/// The CQL the simulator understands: `space = X` / `space in ("A","B")`, `type = page`,
/// `lastmodified > "yyyy-MM-dd HH:mm"` (also `>=`), joined with `and`.
fn cql_filter(cql: &str) -> Result<(Vec<String>, Option<NaiveDateTime>), String> {
    let mut spaces = Vec::new();
    let mut since = None;
    for term in cql.split(" and ").map(str::trim).filter(|t| !t.is_empty()) {
        let lower = term.to_lowercase();
        if let Some(rest) = lower.strip_prefix("space in") {
            let _ = rest;
            let inner = term
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(i, _)| i)
                .ok_or("bad space list")?;
            spaces.extend(
                inner
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string()),
            );
        } else if lower.starts_with("space") {
            spaces.push(
                term.split_once('=')
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
                    .ok_or("bad space term")?,
            );
        } else if lower.starts_with("type") {
            continue;
        } else if lower.starts_with("lastmodified") {
            let value = term
                .split_once('>')
                .map(|(_, v)| v.trim_start_matches('=').trim().trim_matches('"'))
                .ok_or("bad lastmodified term")?;
            since = Some(
                NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M")
                    .map_err(|_| format!("Could not parse date '{value}'"))?,
            );
        } else {
            return Err(format!("Could not parse cql : {cql}"));
        }
    }
    Ok((spaces, since))
}

async fn content_search(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorize(&state, &headers) {
        return confluence_unauthorized();
    }
    let q = Query::parse(raw.as_deref());
    let (spaces, since) = match cql_filter(q.get("cql").unwrap_or("")) {
        Ok(f) => f,
        Err(message) => {
            return json(
                StatusCode::BAD_REQUEST,
                json!({"statusCode": 400, "message": message, "reason": "Bad Request"}),
            );
        }
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let pages: Vec<&KbPage> = estate
        .kb_pages
        .iter()
        .filter(|p| spaces.is_empty() || spaces.contains(&p.space))
        .filter(|p| since.is_none_or(|s| p.updated.naive_utc() > s))
        .collect();
    paged_content(&state, "/rest/api/content/search", &q, pages, &estate)
}

async fn content_one(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorize(&state, &headers) {
        return confluence_unauthorized();
    }
    let q = Query::parse(raw.as_deref());
    let expand: Vec<&str> = q
        .get("expand")
        .map(|e| e.split(',').collect())
        .unwrap_or_default();
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match estate.kb_pages.iter().find(|p| p.id == id) {
        Some(page) => json(StatusCode::OK, page_json(&state, &estate, page, &expand)),
        None => json(
            StatusCode::NOT_FOUND,
            json!({"statusCode": 404, "message": format!("No content found with id: ContentId{{id={id}}}"), "reason": "Not Found", "data": {"authorized": true, "valid": true, "errors": [], "successful": false}}),
        ),
    }
}

// ---- Confluence Cloud REST v2 --------------------------------------------------------------

/// The largest `limit` v2 serves.
pub(crate) const CONFLUENCE_V2_MAX: usize = 250;

fn space_id(key: &str) -> &'static str {
    if key == "OPS" { "98305" } else { "98306" }
}

async fn v2_spaces(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorize(&state, &headers) {
        return confluence_unauthorized();
    }
    let q = Query::parse(raw.as_deref());
    let keys: Vec<&str> = q
        .get("keys")
        .map(|k| k.split(',').collect())
        .unwrap_or_else(|| vec!["OPS", "NET"]);
    let results: Vec<Value> = keys.iter().filter(|k| ["OPS", "NET"].contains(k)).map(|k| json!({"id": space_id(k), "key": k, "name": if *k == "OPS" { "Operations" } else { "Network" }, "type": "global"})).collect();
    json(StatusCode::OK, json!({"results": results, "_links": {}}))
}

/// Pages of a space with cursor paging (`_links.next` and a `Link` header), optionally newest
/// first (`sort=-modified-date`). No `expand`: labels are a separate call, as on Cloud.
async fn v2_pages(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorize(&state, &headers) {
        return confluence_unauthorized();
    }
    let q = Query::parse(raw.as_deref());
    let spaces: Vec<&str> = q
        .get("space-id")
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    let limit = q
        .number("limit")
        .unwrap_or(25)
        .clamp(1, CONFLUENCE_V2_MAX as u64) as usize;
    let offset = match q.get("cursor") {
        None => 0,
        Some(c) => match base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                return json(
                    StatusCode::BAD_REQUEST,
                    json!({"errors": [{"status": 400, "code": "INVALID_REQUEST_PARAMETER", "title": "Invalid cursor"}]}),
                );
            }
        },
    };
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let mut pages: Vec<&KbPage> = estate
        .kb_pages
        .iter()
        .filter(|p| spaces.is_empty() || spaces.contains(&space_id(&p.space)))
        .collect();
    if q.get("sort") == Some("-modified-date") {
        pages.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.id.cmp(&b.id)));
    }
    let with_body = q.get("body-format") == Some("storage");
    let results: Vec<Value> = pages
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| {
            let mut v = json!({
                "id": p.id, "status": "current", "title": p.title, "spaceId": space_id(&p.space),
                "parentId": p.parent_id, "parentType": p.parent_id.as_ref().map(|_| "page"),
                "authorId": format!("5b10ac8d{:x}", p.author.len()), "createdAt": confluence_time(p.created),
                "version": {"number": p.version, "message": "", "createdAt": confluence_time(p.updated), "authorId": "5b10ac8d0"},
                "_links": {"webui": format!("/spaces/{}/pages/{}", p.space, p.id), "tinyui": format!("/x/{}", p.id)},
            });
            if with_body {
                v["body"] = json!({"storage": {"representation": "storage", "value": p.html}});
            }
            v
        })
        .collect();
    let next_offset = offset + results.len();
    let mut body =
        json!({"results": results, "_links": {"base": format!("{}/wiki", base(&state))}});
    let mut response_link = None;
    if next_offset < pages.len() {
        let mut params: Vec<(String, String)> =
            q.0.iter().filter(|(k, _)| k != "cursor").cloned().collect();
        params.push((
            "cursor".into(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(next_offset.to_string()),
        ));
        let next = format!(
            "/wiki/api/v2/pages?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish()
        );
        body["_links"]["next"] = json!(next);
        response_link = Some(format!("<{next}>; rel=\"next\""));
    }
    let mut response = json(StatusCode::OK, body);
    if let Some(link) = response_link.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

async fn v2_labels(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorize(&state, &headers) {
        return confluence_unauthorized();
    }
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    match estate.kb_pages.iter().find(|p| p.id == id) {
        Some(page) => json(
            StatusCode::OK,
            json!({"results": page.labels.iter().enumerate().map(|(i, l)| json!({"id": (131_073 + i).to_string(), "name": l, "prefix": "global"})).collect::<Vec<_>>(), "_links": {}}),
        ),
        None => json(
            StatusCode::NOT_FOUND,
            json!({"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found"}]}),
        ),
    }
}

// ---- Jira -----------------------------------------------------------------------------------

fn jira_error(status: StatusCode, message: &str) -> Response {
    json(status, json!({"errorMessages": [message], "errors": {}}))
}

fn jira_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

struct Jql {
    projects: Vec<String>,
    updated_since: Option<NaiveDateTime>,
    order_desc: bool,
    order_by_updated: bool,
}

/// The JQL the simulator understands: `project = X`, `project in (A, B)`,
/// `updated >= "yyyy-MM-dd HH:mm"` (also `>`), joined with `AND`, and `ORDER BY key|updated
/// [ASC|DESC]`.
fn parse_jql(jql: &str) -> Result<Jql, String> {
    // Found in the bytes, case-blind for ASCII only: lower-casing the whole query first could
    // change its length (İ), and the offset would no longer point into `jql`.
    const ORDER_BY: &[u8] = b"order by";
    let (filter, order) = match jql
        .as_bytes()
        .windows(ORDER_BY.len())
        .position(|w| w.eq_ignore_ascii_case(ORDER_BY))
    {
        Some(i) => {
            let (filter, rest) = jql.split_at(i);
            (filter, Some(rest.split_at(ORDER_BY.len()).1))
        }
        None => (jql, None),
    };
    let mut parsed = Jql {
        projects: Vec::new(),
        updated_since: None,
        order_desc: false,
        order_by_updated: false,
    };
    for term in filter
        .split(" AND ")
        .flat_map(|t| t.split(" and "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let lower = term.to_lowercase();
        if lower.starts_with("project in") {
            let inner = term
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(i, _)| i)
                .ok_or("Error in the JQL Query: bad project list")?;
            parsed.projects.extend(
                inner
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string()),
            );
        } else if lower.starts_with("project") {
            parsed.projects.push(
                term.split_once('=')
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
                    .ok_or("Error in the JQL Query: bad project term")?,
            );
        } else if lower.starts_with("updated") {
            let value = term
                .split_once('>')
                .map(|(_, v)| v.trim_start_matches('=').trim().trim_matches('"'))
                .ok_or("Error in the JQL Query: bad updated term")?;
            parsed.updated_since = Some(
                NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M")
                    .map_err(|_| format!("Date value '{value}' for field 'updated' is invalid."))?,
            );
        } else {
            return Err(format!(
                "Error in the JQL Query: the term '{term}' is not supported."
            ));
        }
    }
    if let Some(order) = order {
        let order = order.trim().to_lowercase();
        parsed.order_by_updated = order.starts_with("updated");
        parsed.order_desc = order.ends_with("desc");
    }
    Ok(parsed)
}

fn select<'a>(estate: &'a Estate, jql: &Jql) -> Vec<&'a Ticket> {
    let mut tickets: Vec<&Ticket> = estate
        .tickets
        .iter()
        .filter(|t| jql.projects.is_empty() || jql.projects.contains(&t.project))
        .filter(|t| jql.updated_since.is_none_or(|s| t.updated.naive_utc() >= s))
        .collect();
    if jql.order_by_updated {
        tickets.sort_by_key(|t| (t.updated, t.id));
    } else {
        tickets.sort_by_key(|t| t.id);
    }
    if jql.order_desc {
        tickets.reverse();
    }
    tickets
}

fn user_server(name: &str) -> Value {
    json!({"name": name, "key": format!("JIRAUSER{}", 10000 + name.len()), "displayName": name, "emailAddress": format!("{name}@example.net"), "active": true})
}

fn user_cloud(name: &str) -> Value {
    json!({"accountId": format!("5b10ac8d82e05b22cc7d{:04x}", name.len() * 97), "displayName": name, "active": true})
}

fn adf(text: &str) -> Value {
    json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]})
}

fn issue_json(state: &AtlassianState, t: &Ticket, cloud: bool) -> Value {
    let user = |n: &str| if cloud { user_cloud(n) } else { user_server(n) };
    let body = |s: &str| if cloud { adf(s) } else { json!(s) };
    let status_category = match t.status.as_str() {
        "Open" => ("new", "To Do"),
        "In Progress" => ("indeterminate", "In Progress"),
        _ => ("done", "Done"),
    };
    let embedded: Vec<Value> = t
        .comments
        .iter()
        .take(if cloud { t.comments.len() } else { JIRA_EMBEDDED_COMMENTS })
        .map(|c| json!({"id": c.id, "author": user(&c.author), "body": body(&c.body), "created": jira_time(c.created), "updated": jira_time(c.created)}))
        .collect();
    json!({
        "id": t.id.to_string(), "key": t.key,
        "self": format!("{}/rest/api/2/issue/{}", base(state), t.id),
        "fields": {
            "summary": t.summary,
            "description": body(&t.description),
            "issuetype": {"name": t.issue_type},
            "project": {"key": t.project},
            "labels": t.labels,
            "status": {"id": "3", "name": t.status, "statusCategory": {"key": status_category.0, "name": status_category.1}},
            "resolution": t.resolution.as_ref().map(|r| json!({"id": "1", "name": r})),
            "priority": {"id": "3", "name": t.priority},
            "assignee": t.assignee.as_deref().map(user),
            "reporter": user(&t.reporter),
            "comment": {"startAt": 0, "maxResults": embedded.len(), "total": t.comments.len(), "comments": embedded},
            "created": jira_time(t.created),
            "updated": jira_time(t.updated),
            "resolutiondate": t.resolved.map(jira_time),
        },
    })
}

/// Search parameters from the query string (GET) or a JSON body (POST).
fn search_params(
    method: &Method,
    raw: Option<&str>,
    body: &Bytes,
) -> Result<(String, usize, usize, Option<String>), String> {
    if method == Method::POST {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("Invalid request payload: {e}"))?;
        Ok((
            v["jql"].as_str().unwrap_or("").to_string(),
            v["startAt"].as_u64().unwrap_or(0) as usize,
            v["maxResults"].as_u64().unwrap_or(50) as usize,
            v["nextPageToken"].as_str().map(str::to_string),
        ))
    } else {
        let q = Query::parse(raw);
        Ok((
            q.get("jql").unwrap_or("").to_string(),
            q.number("startAt").unwrap_or(0) as usize,
            q.number("maxResults").unwrap_or(50) as usize,
            q.get("nextPageToken").map(str::to_string),
        ))
    }
}

async fn jira_search(
    State(state): State<Shared>,
    headers: HeaderMap,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if !authorize(&state, &headers) {
        return jira_error(
            StatusCode::UNAUTHORIZED,
            "You are not authenticated. Authentication required to perform this operation.",
        );
    }
    let (jql, start_at, max_results, _) = match search_params(&method, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(message) => return jira_error(StatusCode::BAD_REQUEST, &message),
    };
    let jql = match parse_jql(&jql) {
        Ok(j) => j,
        Err(message) => return jira_error(StatusCode::BAD_REQUEST, &message),
    };
    let max_results = max_results.clamp(1, JIRA_MAX_RESULTS);
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let tickets = select(&estate, &jql);
    let issues: Vec<Value> = tickets
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|t| issue_json(&state, t, false))
        .collect();
    json(
        StatusCode::OK,
        json!({"expand": "schema,names", "startAt": start_at, "maxResults": max_results, "total": tickets.len(), "issues": issues}),
    )
}

async fn jira_comments(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorize(&state, &headers) {
        return jira_error(
            StatusCode::UNAUTHORIZED,
            "You are not authenticated. Authentication required to perform this operation.",
        );
    }
    let q = Query::parse(raw.as_deref());
    let start = q.number("startAt").unwrap_or(0) as usize;
    let max = q
        .number("maxResults")
        .unwrap_or(50)
        .clamp(1, JIRA_MAX_RESULTS as u64) as usize;
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let Some(t) = estate.tickets.iter().find(|t| t.key == key) else {
        return jira_error(
            StatusCode::NOT_FOUND,
            "Issue does not exist or you do not have permission to see it.",
        );
    };
    let comments: Vec<Value> = t
        .comments
        .iter()
        .skip(start)
        .take(max)
        .map(|c| json!({"id": c.id, "author": user_server(&c.author), "body": c.body, "created": jira_time(c.created), "updated": jira_time(c.created)}))
        .collect();
    json(
        StatusCode::OK,
        json!({"startAt": start, "maxResults": max, "total": t.comments.len(), "comments": comments}),
    )
}

async fn jira_myself(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !authorize(&state, &headers) {
        return jira_error(
            StatusCode::UNAUTHORIZED,
            "You are not authenticated. Authentication required to perform this operation.",
        );
    }
    json(StatusCode::OK, user_server(&state.credentials.username))
}

async fn jira_cloud_search(
    State(state): State<Shared>,
    headers: HeaderMap,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if !authorize(&state, &headers) {
        return jira_error(
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        );
    }
    let (jql, _, max_results, token) = match search_params(&method, raw.as_deref(), &body) {
        Ok(p) => p,
        Err(message) => return jira_error(StatusCode::BAD_REQUEST, &message),
    };
    let parsed = match parse_jql(&jql) {
        Ok(j) => j,
        Err(message) => return jira_error(StatusCode::BAD_REQUEST, &message),
    };
    if parsed.projects.is_empty() {
        return jira_error(
            StatusCode::BAD_REQUEST,
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
        );
    }
    let offset = match token {
        None => 0,
        Some(t) => match base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
            Some(n) => n,
            None => {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    "The provided next page token is invalid or expired.",
                );
            }
        },
    };
    let max_results = max_results.clamp(1, JIRA_MAX_RESULTS);
    let estate = state.estate.read().unwrap_or_else(|e| e.into_inner());
    let tickets = select(&estate, &parsed);
    let issues: Vec<Value> = tickets
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|t| issue_json(&state, t, true))
        .collect();
    let next = offset + issues.len();
    let mut body = json!({"issues": issues, "isLast": next >= tickets.len()});
    if next < tickets.len() {
        body["nextPageToken"] = json!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{next}"))
        );
    }
    json(StatusCode::OK, body)
}
