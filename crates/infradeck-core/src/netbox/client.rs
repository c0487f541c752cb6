//! The NetBox REST client: token auth (v1 `Token`, v2 `Bearer nbt_`), every page of a list
//! (following `next`, rewritten to the configured base), object reads with their `ETag`, and
//! writes that carry `If-Match` and report NetBox's request id. Reads are retried by the shared
//! client policy; POST and PATCH never are.

use crate::config::{NetboxConfig, Secret};
use crate::http::{RequestParts, RetryPolicy, SourceClient, SourceError};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// How a write went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// NetBox changed the object since it was read (HTTP 412 on `If-Match`).
    #[error("NetBox changed {url} since it was read (412 Precondition Failed)")]
    Changed { url: String },
    /// NetBox refused the body (HTTP 400/409): the message names the fields.
    #[error("NetBox refused {method} {url}: HTTP {status}: {body}")]
    Refused {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error(transparent)]
    Http(#[from] SourceError),
}

/// How a bulk write went wrong.
#[derive(Debug)]
pub(crate) enum BulkError {
    /// An object's ETag was not among those sent (HTTP 412): nothing was written.
    Changed,
    /// NetBox refused the list (HTTP 400/409) and wrote nothing; `entries` names the objects it
    /// blamed, by position (creates) or id (updates, deletes), with their messages.
    Refused {
        status: u16,
        entries: Vec<(BulkEntry, String)>,
        body: String,
    },
    /// The request failed on the way: it may or may not have been written.
    Http(SourceError),
}

/// Which object of a bulk request an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BulkEntry {
    Index(usize),
    Id(i64),
}

/// NetBox 4.7's bulk error body, `{"detail": "1 of 2 objects could not be created.", "errors":
/// [{"index": 1, "errors": {"name": ["..."]}}]}` (updates and deletes name an `id`), turned into
/// one line per blamed object.
fn bulk_errors(body: &Value) -> Vec<(BulkEntry, String)> {
    let Some(entries) = body.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let which = match (entry.get("index"), entry.get("id")) {
                (Some(i), _) => BulkEntry::Index(usize::try_from(i.as_u64()?).ok()?),
                (None, Some(id)) => BulkEntry::Id(id.as_i64()?),
                _ => return None,
            };
            let errors = entry.get("errors").cloned().unwrap_or(Value::Null);
            let message = crate::sanitize::for_terminal(&errors.to_string())
                .chars()
                .take(400)
                .collect();
            Some((which, message))
        })
        .collect()
}

/// A write that NetBox accepted.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// The object as NetBox returned it (`Null` for a delete).
    pub(crate) object: Value,
    /// NetBox's `X-Request-ID`, which its change log records.
    pub(crate) request_id: Option<String>,
}

pub struct NetboxClient {
    http: SourceClient,
    token: Secret,
    pub(crate) tag: String,
    /// The site clusters are scoped to, by name (`[netbox] site`).
    pub(crate) site: Option<String>,
    /// `[[netbox.devices]]`: where machines go as dcim devices.
    pub(crate) device_rules: Vec<crate::config::DeviceRule>,
}

impl std::fmt::Debug for NetboxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetboxClient")
            .field("url", &self.http.base_url)
            .finish()
    }
}

impl NetboxClient {
    pub fn new(config: &NetboxConfig, retry: RetryPolicy) -> anyhow::Result<NetboxClient> {
        let token = config.token.resolve()?;
        let http = SourceClient::for_endpoint(
            "netbox".into(),
            &config.url,
            &config.tls,
            Duration::from_secs(30),
            4,
            retry,
        )?;
        Ok(NetboxClient {
            http,
            token,
            tag: config.tag.clone(),
            site: config.site.clone(),
            device_rules: config.device_rules.clone(),
        })
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.http.base_url
    }

    fn authorization(&self) -> String {
        let token = self.token.expose();
        if token.starts_with("nbt_") {
            format!("Bearer {token}")
        } else {
            format!("Token {token}")
        }
    }

    fn headers(&self, etag: Option<&str>) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Authorization", self.authorization()),
            ("Accept", "application/json".to_string()),
        ];
        if let Some(etag) = etag {
            headers.push(("If-Match", etag.to_string()));
        }
        headers
    }

    /// Every object of a list endpoint (`dcim/devices`), all pages, keyed by id: each page asks
    /// for `id__gt` the last id seen, ordered by id. An `offset` shifts when an object on an
    /// earlier page is deleted while we read, and the object at the page boundary would be
    /// missed — and a plan would then propose creating it again. `next` (null on the last page)
    /// says whether more remain, whatever page size `MAX_PAGE_SIZE` allows.
    pub(crate) async fn list(
        &self,
        endpoint: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, SourceError> {
        let mut out: Vec<Value> = Vec::new();
        let headers = self.headers(None);
        let url = format!("/api/{endpoint}/");
        let mut last_id: Option<i64> = None;
        loop {
            let mut params: Vec<(&str, String)> = query.to_vec();
            params.push(("limit", "1000".into()));
            params.push(("ordering", "id".into()));
            if let Some(last) = last_id {
                params.push(("id__gt", last.to_string()));
            }
            let parts = RequestParts {
                query: &params,
                headers: &headers,
                ..RequestParts::default()
            };
            let page: Value = self.http.get_json(&url, &parts).await?;
            let Some(results) = page.get("results").and_then(Value::as_array) else {
                return Err(self
                    .http
                    .api_error(&self.http.url(&url), "a list answer without `results`"));
            };
            let highest = results.iter().filter_map(|o| o["id"].as_i64()).max();
            out.extend(results.iter().cloned());
            let more = page
                .get("next")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            match (more, highest) {
                (true, Some(highest)) if last_id.is_none_or(|l| highest > l) => {
                    last_id = Some(highest);
                }
                (true, _) => {
                    return Err(self.http.api_error(
                        &self.http.url(&url),
                        "a page said more objects follow but moved the id key no further",
                    ));
                }
                (false, _) => return Ok(out),
            }
        }
    }

    /// One object and its `ETag`; `None` when NetBox no longer has it.
    pub(crate) async fn get(
        &self,
        endpoint: &str,
        id: i64,
    ) -> Result<Option<(Value, Option<String>)>, SourceError> {
        let headers = self.headers(None);
        let answer = self
            .http
            .send(
                Method::GET,
                &format!("/api/{endpoint}/{id}/"),
                &RequestParts {
                    headers: &headers,
                    ..RequestParts::default()
                },
            )
            .await?;
        if answer.status.as_u16() == 404 {
            return Ok(None);
        }
        let etag = answer
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer = self.http.expect_success(answer)?;
        Ok(Some((self.http.decode(&answer)?, etag)))
    }

    async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        etag: Option<&str>,
    ) -> Result<Written, WriteError> {
        let headers = self.headers(etag);
        let answer = self
            .http
            .send(
                method.clone(),
                path,
                &RequestParts {
                    headers: &headers,
                    json: body,
                    ..RequestParts::default()
                },
            )
            .await?;
        let request_id = answer
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match answer.status.as_u16() {
            412 => Err(WriteError::Changed { url: answer.url }),
            400 | 409 => Err(WriteError::Refused {
                method: method.to_string(),
                url: answer.url,
                status: answer.status.as_u16(),
                body: crate::sanitize::for_terminal(&String::from_utf8_lossy(&answer.body))
                    .chars()
                    .take(600)
                    .collect(),
            }),
            _ => {
                let answer = self.http.expect_success(answer)?;
                let object = if answer.body.is_empty() {
                    Value::Null
                } else {
                    self.http.decode(&answer)?
                };
                Ok(Written { object, request_id })
            }
        }
    }

    pub(crate) async fn create(&self, endpoint: &str, body: &Value) -> Result<Written, WriteError> {
        self.write(Method::POST, &format!("/api/{endpoint}/"), Some(body), None)
            .await
    }

    pub(crate) async fn update(
        &self,
        endpoint: &str,
        id: i64,
        body: &Value,
        etag: Option<&str>,
    ) -> Result<Written, WriteError> {
        self.write(
            Method::PATCH,
            &format!("/api/{endpoint}/{id}/"),
            Some(body),
            etag,
        )
        .await
    }

    pub(crate) async fn delete(
        &self,
        endpoint: &str,
        id: i64,
        body: &Value,
    ) -> Result<Written, WriteError> {
        self.write(
            Method::DELETE,
            &format!("/api/{endpoint}/{id}/"),
            Some(body),
            None,
        )
        .await
    }

    /// Whether NetBox accepts the token, asked before anything is claimed: a wrong token must
    /// not leave a batch's items claimed and failed one by one. `/api/status/` authenticates
    /// any token sent (an invalid one is a 403 even where the endpoint is public).
    pub(crate) async fn check_auth(&self) -> Result<(), SourceError> {
        let headers = self.headers(None);
        let answer = self
            .http
            .send(
                Method::GET,
                "/api/status/",
                &RequestParts {
                    headers: &headers,
                    ..RequestParts::default()
                },
            )
            .await?;
        self.http.expect_success(answer).map(|_| ())
    }

    /// One bulk write to a list endpoint: a JSON list, one transaction in NetBox. `if_match`
    /// carries the ETags of every object written (NetBox 4.7 checks each object's ETag is among
    /// them, under a row lock).
    pub(crate) async fn bulk(
        &self,
        method: Method,
        endpoint: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), BulkError> {
        let headers = self.headers(if_match);
        let path = format!("/api/{endpoint}/");
        let answer = self
            .http
            .send(
                method.clone(),
                &path,
                &RequestParts {
                    headers: &headers,
                    json: Some(body),
                    ..RequestParts::default()
                },
            )
            .await
            .map_err(BulkError::Http)?;
        match answer.status.as_u16() {
            412 => Err(BulkError::Changed),
            400 | 409 => {
                let text = String::from_utf8_lossy(&answer.body).into_owned();
                let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                Err(BulkError::Refused {
                    status: answer.status.as_u16(),
                    entries: bulk_errors(&parsed),
                    body: crate::sanitize::for_terminal(&text)
                        .chars()
                        .take(600)
                        .collect(),
                })
            }
            _ => {
                let request_id = answer
                    .headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let answer = self.http.expect_success(answer).map_err(BulkError::Http)?;
                if answer.body.is_empty() {
                    return Ok((Vec::new(), request_id));
                }
                match self
                    .http
                    .decode::<Value>(&answer)
                    .map_err(BulkError::Http)?
                {
                    Value::Array(objects) => Ok((objects, request_id)),
                    _ => Err(BulkError::Http(self.http.api_error(
                        &answer.url,
                        "a bulk write answered something other than a list",
                    ))),
                }
            }
        }
    }

    /// The URL a request to `endpoint` (and `id`) goes to, for dry runs.
    pub(crate) fn url_of(&self, endpoint: &str, id: Option<i64>) -> String {
        match id {
            Some(id) => format!("{}/api/{endpoint}/{id}/", self.http.base_url),
            None => format!("{}/api/{endpoint}/", self.http.base_url),
        }
    }
}
