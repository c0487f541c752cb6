//! Confluence (Server/DC REST v1) and Jira (Server `/rest/api/2/search`, Cloud
//! `/rest/api/3/search/jql`) into `kb_articles` and `issues`.
//!
//! Both fetch incrementally after the first successful run: Confluence by CQL `lastmodified`,
//! Jira by JQL `updated`, each from the last successful run's start minus ten minutes of overlap
//! (re-fetching a page is harmless; missing one is not). Confluence may lower `limit` silently,
//! so paging follows `_links.next` and never infers the end from a short page. Jira's embedded
//! comments are fetched completely when the search truncated them; Jira Cloud's last page has no
//! `nextPageToken` at all. Deleted pages and issues are not detected (an incremental listing
//! cannot see them); they stay cached.

use super::{FetchContext, FetchSummary, Item, SecretKind};
use crate::config::Secret;
use crate::html;
use crate::http::{RequestParts, SourceError};
use crate::model::{IssueRecord, KbArticleRecord};
use chrono::{DateTime, Duration, NaiveDateTime};
use reqwest::Method;
use serde_json::{Value, json};

const CONFLUENCE_LIMIT: usize = 100;
const JIRA_PAGE: usize = 100;
const OVERLAP_MINUTES: i64 = 10;
const EXPAND: &str = "body.storage,version,ancestors,metadata.labels,space";

enum Auth {
    Basic(String, Secret),
    Bearer(Secret),
}

impl Auth {
    fn of(ctx: &FetchContext) -> Result<Auth, SourceError> {
        if let Some(token) = ctx.secret(SecretKind::Token)? {
            return Ok(match &ctx.source.username {
                // Atlassian Cloud: email + API token as Basic.
                Some(user) if ctx.source.flavor.as_deref() == Some("cloud") => {
                    Auth::Basic(user.clone(), token)
                }
                _ => Auth::Bearer(token),
            });
        }
        let (user, password) = ctx.required_password()?;
        Ok(Auth::Basic(user, password))
    }

    fn parts<'a>(
        &'a self,
        query: &'a [(&'a str, String)],
        json: Option<&'a Value>,
    ) -> RequestParts<'a> {
        match self {
            Auth::Basic(user, password) => RequestParts {
                query,
                json,
                basic: Some((user, password)),
                ..Default::default()
            },
            Auth::Bearer(token) => RequestParts {
                query,
                json,
                bearer: Some(token),
                ..Default::default()
            },
        }
    }
}

/// The instant to fetch changes from: the last successful run's start minus the overlap.
fn since(ctx: &FetchContext) -> Option<NaiveDateTime> {
    ctx.hints
        .last_success_start
        .as_deref()
        .and_then(crate::time::parse)
        .map(|t| (t - Duration::minutes(OVERLAP_MINUTES)).naive_utc())
}

/// Atlassian timestamps (`2026-04-30T14:12:09.000+02:00` or `+0200`) in the database format.
fn atlassian_time(text: Option<&str>) -> Option<String> {
    let text = text?;
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| crate::time::format(t.to_utc()))
}

pub(crate) async fn fetch_confluence(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let auth = Auth::of(ctx)?;
    let since = since(ctx);
    if ctx.source.flavor.as_deref() == Some("cloud") {
        return fetch_confluence_cloud(ctx, &auth, since).await;
    }
    ctx.progress.set_phase(if since.is_some() {
        "fetch changed pages"
    } else {
        "fetch pages"
    });
    for space in &ctx.source.spaces {
        let (path, mut query): (&str, Vec<(&str, String)>) = match since {
            Some(t) => (
                "/rest/api/content/search",
                vec![(
                    "cql",
                    format!(
                        "space = \"{space}\" and type = page and lastmodified > \"{}\"",
                        t.format("%Y-%m-%d %H:%M")
                    ),
                )],
            ),
            None => (
                "/rest/api/content",
                vec![("type", "page".into()), ("spaceKey", space.clone())],
            ),
        };
        query.push(("limit", CONFLUENCE_LIMIT.to_string()));
        query.push(("expand", EXPAND.to_string()));
        let mut body: Value = ctx.client.get_json(path, &auth.parts(&query, None)).await?;
        loop {
            ctx.check_cancelled()?;
            let results = body["results"].as_array().cloned().ok_or_else(|| {
                ctx.client
                    .api_error(&ctx.client.url(path), "the answer has no `results` array")
            })?;
            ctx.progress.add_total(results.len() as u64);
            for page in &results {
                ctx.emit(Item::KbArticle(Box::new(kb_record(ctx, page))))
                    .await?;
                ctx.progress.inc();
            }
            // `next` is relative to the context path; the end is its absence, not a short page.
            let Some(next) = body["_links"]["next"].as_str() else {
                break;
            };
            let context = body["_links"]["context"].as_str().unwrap_or("");
            body = ctx
                .client
                .get_json(&format!("{context}{next}"), &auth.parts(&[], None))
                .await?;
        }
    }
    Ok(FetchSummary {
        complete: true,
        note: None,
    })
}

/// Confluence Cloud REST v2 (`url` ends in `/wiki`): spaces by key, then pages by space id with
/// cursor paging; labels are a separate call per page (v2 has no `expand`). The next page is the
/// original endpoint with the query string of `_links.next`, as atlassian-python-api does. An
/// incremental run asks for the newest first and stops at the first page older than `since`.
async fn fetch_confluence_cloud(
    ctx: &FetchContext,
    auth: &Auth,
    since: Option<NaiveDateTime>,
) -> Result<FetchSummary, SourceError> {
    ctx.progress.set_phase(if since.is_some() {
        "fetch changed pages"
    } else {
        "fetch pages"
    });
    let spaces: Value = ctx
        .client
        .get_json(
            "/api/v2/spaces",
            &auth.parts(&[("keys", ctx.source.spaces.join(","))], None),
        )
        .await?;
    let spaces = spaces["results"].as_array().cloned().unwrap_or_default();
    for space in spaces {
        let key = space["key"].as_str().unwrap_or_default().to_string();
        let mut query: Vec<(&str, String)> = vec![
            (
                "space-id",
                space["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| space["id"].to_string()),
            ),
            ("body-format", "storage".into()),
            ("limit", "250".into()),
        ];
        if since.is_some() {
            query.push(("sort", "-modified-date".into()));
        }
        let mut page: Value = ctx
            .client
            .get_json("/api/v2/pages", &auth.parts(&query, None))
            .await?;
        'pages: loop {
            ctx.check_cancelled()?;
            for item in page["results"].as_array().cloned().unwrap_or_default() {
                let modified = item["version"]["createdAt"].as_str().and_then(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.3f%z"))
                        .ok()
                });
                if let (Some(since), Some(modified)) = (since, modified)
                    && modified.naive_utc() < since
                {
                    break 'pages;
                }
                let id = item["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| item["id"].to_string());
                let labels: Value = ctx
                    .client
                    .get_json(
                        &format!("/api/v2/pages/{id}/labels"),
                        &auth.parts(&[], None),
                    )
                    .await?;
                let body_html = item["body"]["storage"]["value"]
                    .as_str()
                    .map(str::to_string);
                let record = KbArticleRecord {
                    source_id: id,
                    space_key: Some(key.clone()),
                    title: item["title"].as_str().unwrap_or_default().to_string(),
                    body_text: body_html.as_deref().map(html::to_text),
                    body_html,
                    url: Some(format!(
                        "{}{}",
                        ctx.source.url,
                        item["_links"]["webui"].as_str().unwrap_or_default()
                    )),
                    parent_id: item["parentId"].as_str().map(str::to_string),
                    labels: labels["results"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter_map(|x| x["name"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    created_at: atlassian_time(item["createdAt"].as_str()),
                    last_updated: atlassian_time(item["version"]["createdAt"].as_str()),
                };
                ctx.progress.inc();
                ctx.emit(Item::KbArticle(Box::new(record))).await?;
            }
            let Some(next) = page["_links"]["next"].as_str() else {
                break;
            };
            let Some((_, next_query)) = next.split_once('?') else {
                break;
            };
            page = ctx
                .client
                .get_json(
                    &format!("/api/v2/pages?{next_query}"),
                    &auth.parts(&[], None),
                )
                .await?;
        }
    }
    Ok(FetchSummary {
        complete: true,
        note: None,
    })
}

fn kb_record(ctx: &FetchContext, page: &Value) -> KbArticleRecord {
    let body_html = page["body"]["storage"]["value"]
        .as_str()
        .map(str::to_string);
    let labels = page["metadata"]["labels"]["results"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let webui = page["_links"]["webui"].as_str().unwrap_or_default();
    KbArticleRecord {
        source_id: page["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| page["id"].to_string()),
        space_key: page["space"]["key"].as_str().map(str::to_string),
        title: page["title"].as_str().unwrap_or_default().to_string(),
        body_text: body_html.as_deref().map(html::to_text),
        body_html,
        url: Some(format!("{}{webui}", ctx.source.url)),
        parent_id: page["ancestors"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|p| p["id"].as_str())
            .map(str::to_string),
        labels,
        created_at: None,
        last_updated: atlassian_time(page["version"]["when"].as_str()),
    }
}

pub(crate) async fn fetch_jira(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let auth = Auth::of(ctx)?;
    let mut restrictions = Vec::new();
    if !ctx.source.projects.is_empty() {
        restrictions.push(format!("project in ({})", ctx.source.projects.join(", ")));
    }
    if let Some(jql) = &ctx.source.jql {
        restrictions.push(format!("({jql})"));
    }
    if let Some(t) = since(ctx) {
        restrictions.push(format!("updated >= \"{}\"", t.format("%Y-%m-%d %H:%M")));
    }
    let jql = format!("{} ORDER BY key", restrictions.join(" AND "));
    let fields = json!([
        "summary",
        "description",
        "issuetype",
        "project",
        "status",
        "resolution",
        "priority",
        "assignee",
        "reporter",
        "labels",
        "comment",
        "created",
        "updated",
        "resolutiondate"
    ]);
    let cloud = ctx.source.flavor.as_deref() == Some("cloud");
    ctx.progress.set_phase("fetch issues");
    if cloud {
        let mut token: Option<String> = None;
        loop {
            ctx.check_cancelled()?;
            let mut body = json!({"jql": jql, "maxResults": JIRA_PAGE, "fields": fields});
            if let Some(t) = &token {
                body["nextPageToken"] = json!(t);
            }
            let page: Value = post_json(ctx, &auth, "/rest/api/3/search/jql", &body).await?;
            for issue in page["issues"].as_array().cloned().unwrap_or_default() {
                ctx.emit(Item::Issue(Box::new(issue_record(
                    &issue,
                    issue_comments(&issue, true),
                ))))
                .await?;
                ctx.progress.inc();
            }
            // The last page has no token (the key is absent, not null) and `isLast: true`.
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(t) if page["isLast"] != true => token = Some(t.to_string()),
                _ => break,
            }
        }
    } else {
        let mut start = 0usize;
        loop {
            ctx.check_cancelled()?;
            let body =
                json!({"jql": jql, "startAt": start, "maxResults": JIRA_PAGE, "fields": fields});
            let page: Value = post_json(ctx, &auth, "/rest/api/2/search", &body).await?;
            let issues = page["issues"].as_array().cloned().unwrap_or_default();
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            ctx.progress.set_total(total as u64);
            for issue in &issues {
                let mut comments = issue_comments(issue, false);
                let embedded_total =
                    issue["fields"]["comment"]["total"].as_u64().unwrap_or(0) as usize;
                if embedded_total > comments.len() {
                    comments =
                        all_comments(ctx, &auth, issue["key"].as_str().unwrap_or_default()).await?;
                }
                ctx.emit(Item::Issue(Box::new(issue_record(issue, comments))))
                    .await?;
                ctx.progress.inc();
            }
            if issues.is_empty() || start + issues.len() >= total {
                break;
            }
            start += issues.len();
        }
    }
    Ok(FetchSummary {
        complete: true,
        note: None,
    })
}

async fn post_json(
    ctx: &FetchContext,
    auth: &Auth,
    path: &str,
    body: &Value,
) -> Result<Value, SourceError> {
    let answer = ctx
        .client
        .send(Method::POST, path, &auth.parts(&[], Some(body)))
        .await?;
    let answer = ctx.client.expect_success(answer)?;
    ctx.client.decode(&answer)
}

/// Every comment of an issue, paged through `/issue/{key}/comment`.
async fn all_comments(
    ctx: &FetchContext,
    auth: &Auth,
    key: &str,
) -> Result<Vec<Value>, SourceError> {
    let mut out = Vec::new();
    loop {
        let query = [
            ("startAt", out.len().to_string()),
            ("maxResults", "100".to_string()),
        ];
        let page: Value = ctx
            .client
            .get_json(
                &format!("/rest/api/2/issue/{key}/comment"),
                &auth.parts(&query, None),
            )
            .await?;
        let comments = page["comments"].as_array().cloned().unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        out.extend(comments.iter().map(|c| comment_json(c, false)));
        if comments.is_empty() || out.len() >= total {
            return Ok(out);
        }
    }
}

fn issue_comments(issue: &Value, cloud: bool) -> Vec<Value> {
    issue["fields"]["comment"]["comments"]
        .as_array()
        .map(|c| c.iter().map(|c| comment_json(c, cloud)).collect())
        .unwrap_or_default()
}

fn comment_json(comment: &Value, cloud: bool) -> Value {
    json!({
        "id": comment["id"],
        "author": comment["author"]["displayName"],
        "body": if cloud { adf_text(&comment["body"]) } else { comment["body"].as_str().unwrap_or_default().to_string() },
        "created": atlassian_time(comment["created"].as_str()),
    })
}

/// The text of an Atlassian Document Format node (or a plain string).
pub(crate) fn adf_text(node: &Value) -> String {
    match node {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            if let Some(text) = map.get("text").and_then(Value::as_str) {
                return text.to_string();
            }
            let children: Vec<String> = map
                .get("content")
                .and_then(Value::as_array)
                .map(|c| c.iter().map(adf_text).collect())
                .unwrap_or_default();
            let block = matches!(
                map.get("type").and_then(Value::as_str),
                Some("paragraph" | "heading" | "listItem" | "codeBlock")
            );
            let joined = children.concat();
            if block { format!("{joined}\n") } else { joined }
        }
        _ => String::new(),
    }
}

fn issue_record(issue: &Value, comments: Vec<Value>) -> IssueRecord {
    let f = &issue["fields"];
    let name = |v: &Value| v["name"].as_str().map(str::to_string);
    let person = |v: &Value| {
        v["displayName"]
            .as_str()
            .or(v["name"].as_str())
            .map(str::to_string)
    };
    IssueRecord {
        issue_key: issue["key"].as_str().unwrap_or_default().to_string(),
        project_key: f["project"]["key"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                issue["key"]
                    .as_str()
                    .and_then(|k| k.split('-').next())
                    .map(str::to_string)
            }),
        issue_type: name(&f["issuetype"]),
        summary: f["summary"].as_str().map(str::to_string),
        description: match &f["description"] {
            Value::Null => None,
            other => Some(adf_text(other).trim_end().to_string()),
        },
        status: name(&f["status"]),
        resolution: name(&f["resolution"]),
        assignee: person(&f["assignee"]),
        reporter: person(&f["reporter"]),
        priority: name(&f["priority"]),
        labels: f["labels"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        comments: Value::Array(comments),
        created_at: atlassian_time(f["created"].as_str()),
        updated_at: atlassian_time(f["updated"].as_str()),
        resolved_at: atlassian_time(f["resolutiondate"].as_str()),
    }
}
