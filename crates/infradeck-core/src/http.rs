//! The one HTTP client policy every connector, the NetBox client and the embeddings client use.
//!
//! - connect timeout 10 s and a per-request read timeout (the source's `timeout_secs`);
//! - idempotent requests are retried on connection errors, 429, 502, 503 and 504 with exponential
//!   backoff and jitter (base 1 s, factor 2, cap 60 s, at most 5 tries), honouring `Retry-After`
//!   as seconds or an HTTP date; non-idempotent ones are never retried; a certificate the server
//!   or we cannot accept is never retried, and the error says what to configure;
//! - every request asks for gzip (a 500-node PuppetDB page shrinks from 1.7 MB to a tenth);
//! - TLS is verified by default; a per-source CA bundle adds trust, `insecure_skip_verify` turns
//!   verification off and says so in the log on every client it builds;
//! - at most `max_in_flight` requests per source are in flight at once.
//!
//! Errors name the source, the URL and what was wrong. Re-login on an expired session is the
//! connector's business (only it knows what a session looks like): it gets a typed
//! [`SourceError::Unauthorized`] and replays once.

use crate::config::{Secret, SourceConfig, TlsConfig};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a request to a source failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name}: cannot reach {url}: {detail}")]
    Connect {
        source_name: String,
        url: String,
        detail: String,
    },
    #[error("{source_name}: {url} timed out after {seconds} s")]
    Timeout {
        source_name: String,
        url: String,
        seconds: u64,
    },
    #[error("{source_name}: {url} answered HTTP {status}: {body}")]
    Status {
        source_name: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{source_name}: authentication failed at {url}: {message}")]
    Unauthorized {
        source_name: String,
        url: String,
        message: String,
    },
    #[error("{source_name}: {url} returned a response that is not valid JSON ({detail})")]
    Decode {
        source_name: String,
        url: String,
        detail: String,
    },
    #[error("{source_name}: {url} reported an error: {detail}")]
    Api {
        source_name: String,
        url: String,
        detail: String,
    },
    /// A TLS failure that no retry can cure: the certificate, its name, or ours.
    #[error("{source_name}: TLS with {url} failed: {detail}. {hint}")]
    Tls {
        source_name: String,
        url: String,
        detail: String,
        /// What to configure.
        hint: String,
    },
    /// The source asked us to come back later than `max_retry_wait` allows.
    #[error(
        "{source_name}: rate limited at {url}: the source asks to wait {asked_secs} s (Retry-After), longer than max_retry_wait ({max_secs} s); sync again later, or raise [general] max_retry_wait_secs"
    )]
    RateLimited {
        source_name: String,
        url: String,
        asked_secs: u64,
        max_secs: u64,
    },
    #[error("{source_name}: {detail}")]
    Setup { source_name: String, detail: String },
    #[error("{source_name}: cancelled")]
    Cancelled { source_name: String },
}

impl SourceError {
    /// Whether the failure concerns the one object asked about (an HTTP error status, a body
    /// that is not the JSON expected, an error the API reported), not the source as a whole:
    /// a connector may skip that object and go on (the run then ends `partial` and sweeps
    /// nothing). Unreachable, timed-out, unauthorized or cancelled requests are the source's.
    pub(crate) fn is_item_level(&self) -> bool {
        matches!(
            self,
            SourceError::Status { .. } | SourceError::Decode { .. } | SourceError::Api { .. }
        )
    }
}

/// Retry timing; tests shorten it, production uses the defaults.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_tries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

/// Where a client shows that it waits for a rate limit: a run's progress line, whose phase it
/// replaces while it waits and puts back after.
pub(crate) trait ShowsWaits: Send + Sync {
    fn phase(&self) -> String;
    fn set_phase(&self, phase: &str);
}

/// A client bound to one source instance.
pub struct SourceClient {
    client: reqwest::Client,
    /// `kind/id`, used in every error and log line.
    pub name: String,
    pub(crate) base_url: String,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
    timeout: Duration,
    requests: AtomicU64,
    /// Where a wait for a rate limit is shown (the run's progress phase), when set.
    waits_shown_in: std::sync::OnceLock<Arc<dyn ShowsWaits>>,
}

/// What a request sends, beyond method and URL.
#[derive(Default)]
pub struct RequestParts<'a> {
    pub(crate) query: &'a [(&'a str, String)],
    pub(crate) headers: &'a [(&'a str, String)],
    pub(crate) json: Option<&'a serde_json::Value>,
    /// A body that is not JSON: its content type and bytes (vCenter's SOAP envelopes).
    pub(crate) body: Option<(&'a str, &'a [u8])>,
    pub(crate) basic: Option<(&'a str, &'a Secret)>,
    pub(crate) bearer: Option<&'a Secret>,
    /// Statuses that are this request's answer, not a passing failure: never retried (vCenter's
    /// 503 on guest data means "VMware Tools not ready", and asking again does not change it).
    pub(crate) answers: &'a [u16],
}

/// A response read completely.
pub struct Answer {
    pub status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: bytes::Bytes,
    pub(crate) url: String,
}

impl SourceClient {
    /// Builds the client for a configured source.
    pub fn new(source: &SourceConfig, retry: RetryPolicy) -> Result<SourceClient, SourceError> {
        let name = format!("{}/{}", source.kind, source.id);
        SourceClient::for_endpoint(
            name,
            &source.url,
            &source.tls,
            source.timeout,
            source.max_in_flight,
            retry,
        )
    }

    /// A client for an endpoint that is not a configured source (the embeddings server, NetBox).
    pub fn for_endpoint(
        name: String,
        url: &str,
        tls: &TlsConfig,
        timeout: Duration,
        max_in_flight: usize,
        retry: RetryPolicy,
    ) -> Result<SourceClient, SourceError> {
        let client = build_client(&name, tls, timeout)?;
        Ok(SourceClient {
            client,
            base_url: url.trim_end_matches('/').to_string(),
            limiter: Arc::new(Semaphore::new(max_in_flight.max(1))),
            retry,
            timeout,
            requests: AtomicU64::new(0),
            waits_shown_in: std::sync::OnceLock::new(),
            name,
        })
    }

    /// Shows waits for a rate limit in this progress's phase ("waiting 30 s: rate limited by
    /// puppetdb/prod"), so nobody watches a sync that seems to hang.
    pub(crate) fn show_waits_in(&self, progress: Arc<dyn ShowsWaits>) {
        let _ = self.waits_shown_in.set(progress);
    }

    /// How many HTTP requests this client has sent (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `path` relative to the base URL, or an absolute URL left as is.
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!(
                "{}{}",
                self.base_url,
                if path.starts_with('/') {
                    path.to_string()
                } else {
                    format!("/{path}")
                }
            )
        }
    }

    /// Sends a request, retrying when that is safe, and reads the whole body. Any status is
    /// returned; callers decide what a status means (`expect_success` for the common case).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        parts: &RequestParts<'_>,
    ) -> Result<Answer, SourceError> {
        let url = self.url(path);
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                // The permit bounds requests in flight; it is not held while backing off.
                let _permit = self
                    .limiter
                    .acquire()
                    .await
                    .map_err(|_| SourceError::Cancelled {
                        source_name: self.name.clone(),
                    })?;
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.once(method.clone(), &url, parts).await
            };
            let retry_after = match &outcome {
                Ok(answer)
                    if is_retryable_status(answer.status)
                        && !parts.answers.contains(&answer.status.as_u16()) =>
                {
                    Some(retry_after(&answer.headers))
                }
                Err(SourceError::Connect { .. } | SourceError::Timeout { .. }) => Some(None),
                _ => None,
            };
            if let Some(Some(asked)) = retry_after
                && asked > self.retry.cap
            {
                // Waiting the cap and asking again would only be refused again: say so now.
                return Err(SourceError::RateLimited {
                    source_name: self.name.clone(),
                    url,
                    asked_secs: asked.as_secs(),
                    max_secs: self.retry.cap.as_secs(),
                });
            }
            match retry_after {
                Some(hint) if idempotent && attempt < self.retry.max_tries => {
                    let wait = hint
                        .unwrap_or_else(|| backoff(&self.retry, attempt))
                        .min(self.retry.cap);
                    tracing::warn!(source = %self.name, %url, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    let shown = hint.is_some().then(|| self.waits_shown_in.get()).flatten();
                    let before = shown.map(|p| {
                        let before = p.phase();
                        p.set_phase(&format!(
                            "waiting {} s: rate limited by {}",
                            wait.as_secs_f64().ceil() as u64,
                            self.name
                        ));
                        before
                    });
                    tokio::time::sleep(wait).await;
                    if let (Some(p), Some(before)) = (shown, before) {
                        p.set_phase(&before);
                    }
                }
                _ => return outcome,
            }
        }
    }

    async fn once(
        &self,
        method: Method,
        url: &str,
        parts: &RequestParts<'_>,
    ) -> Result<Answer, SourceError> {
        // A raw body is answered in its own kind (SOAP: XML), everything else in JSON.
        let accept = match parts.body {
            Some((content_type, _)) => content_type.split(';').next().unwrap_or(content_type),
            None => "application/json",
        };
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, accept);
        if !parts.query.is_empty() {
            request = request.query(parts.query);
        }
        for (k, v) in parts.headers {
            request = request.header(*k, v);
        }
        if let Some((user, password)) = parts.basic {
            request = request.basic_auth(user, Some(password.expose()));
        }
        if let Some(token) = parts.bearer {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = parts.json {
            request = request.json(body);
        }
        if let Some((content_type, bytes)) = parts.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let final_url = response.url().to_string();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(url, &e))?;
        Ok(Answer {
            status,
            headers,
            body,
            url: final_url,
        })
    }

    fn transport_error(&self, url: &str, err: &reqwest::Error) -> SourceError {
        if err.is_timeout() {
            return SourceError::Timeout {
                source_name: self.name.clone(),
                url: url.to_string(),
                seconds: self.timeout.as_secs(),
            };
        }
        let mut detail = err.to_string();
        let mut cause = std::error::Error::source(err);
        while let Some(inner) = cause {
            detail = format!("{detail}: {inner}");
            cause = inner.source();
        }
        if let Some(hint) = permanent_tls_hint(&detail) {
            return SourceError::Tls {
                source_name: self.name.clone(),
                url: url.to_string(),
                detail,
                hint: hint.to_string(),
            };
        }
        SourceError::Connect {
            source_name: self.name.clone(),
            url: url.to_string(),
            detail,
        }
    }

    /// A 2xx answer or the matching error: 401/403 become [`SourceError::Unauthorized`].
    pub(crate) fn expect_success(&self, answer: Answer) -> Result<Answer, SourceError> {
        if answer.status.is_success() {
            return Ok(answer);
        }
        let body = excerpt(&answer.body);
        if matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(SourceError::Unauthorized {
                source_name: self.name.clone(),
                url: answer.url,
                message: format!("HTTP {}: {body}", answer.status.as_u16()),
            });
        }
        Err(SourceError::Status {
            source_name: self.name.clone(),
            url: answer.url,
            status: answer.status.as_u16(),
            body,
        })
    }

    /// Parses a whole body as JSON, naming source and URL when it is not (a truncated stream).
    pub(crate) fn decode<T: DeserializeOwned>(&self, answer: &Answer) -> Result<T, SourceError> {
        serde_json::from_slice(&answer.body).map_err(|e| SourceError::Decode {
            source_name: self.name.clone(),
            url: answer.url.clone(),
            detail: format!("{e}; {} bytes received", answer.body.len()),
        })
    }

    /// GET, require success, decode JSON.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        parts: &RequestParts<'_>,
    ) -> Result<T, SourceError> {
        let answer = self.send(Method::GET, path, parts).await?;
        let answer = self.expect_success(answer)?;
        self.decode(&answer)
    }

    /// An error that is about the API's own error body.
    pub(crate) fn api_error(&self, url: &str, detail: impl Into<String>) -> SourceError {
        SourceError::Api {
            source_name: self.name.clone(),
            url: url.to_string(),
            detail: detail.into(),
        }
    }
}

/// What to configure when a transport error is a TLS failure no retry can cure, read from the
/// error chain's text (rustls' error names: reqwest does not expose the typed error), or `None`
/// for anything that may be transient.
fn permanent_tls_hint(detail: &str) -> Option<&'static str> {
    let has = |needle: &str| detail.contains(needle);
    if has("UnknownIssuer") || has("UnknownCA") || has("self-signed") || has("self signed") {
        Some(
            "The server's certificate is not signed by a CA this machine trusts: set `tls.ca_file` to the CA that signed it (for PuppetDB, the Puppet CA: /etc/puppetlabs/puppet/ssl/certs/ca.pem)",
        )
    } else if has("NotValidForName") || has("not valid for name") {
        Some(
            "The certificate does not name the host in the URL: put a name the certificate carries in `url` (Puppet certificates carry host names, not IP addresses)",
        )
    } else if has("Expired") || has("NotValidYet") {
        Some(
            "The certificate is expired or not yet valid: renew it on the server, or check this machine's clock",
        )
    } else if has("CertificateRequired") || has("BadCertificate") || has("certificate required") {
        Some(
            "The server refused the connection without an acceptable client certificate: set `tls.client_cert` and `tls.client_key`",
        )
    } else if has("invalid peer certificate")
        || has("InvalidCertificate")
        || has("UnsupportedCertVersion")
        || has("BadSignature")
    {
        Some(
            "The server's certificate was refused: check it, or set `tls.ca_file` to the CA that signed it",
        )
    } else if has("InvalidContentType") || has("corrupt message") || has("wrong version number") {
        Some(
            "The server did not answer TLS: use http:// for a plain-HTTP port, or the server's TLS port",
        )
    } else {
        None
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or an HTTP date; `None` when absent or unreadable.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Exponential backoff with ±25% jitter for the `attempt`-th failure.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base
        .saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.75 + f64::from(nanos % 1000) / 2000.0;
    exp.mul_f64(jitter).min(policy.cap)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_string()
    }
}

fn build_client(
    name: &str,
    tls: &TlsConfig,
    timeout: Duration,
) -> Result<reqwest::Client, SourceError> {
    let setup = |detail: String| SourceError::Setup {
        source_name: name.to_string(),
        detail,
    };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("infradeck/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| setup(format!("cannot read CA file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| setup(format!("CA file {} is not a PEM bundle: {e}", ca.display())))?;
        builder = builder.tls_certs_merge(certs);
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let mut pem = std::fs::read(cert).map_err(|e| {
            setup(format!(
                "cannot read client certificate {}: {e}",
                cert.display()
            ))
        })?;
        pem.extend(
            std::fs::read(key)
                .map_err(|e| setup(format!("cannot read client key {}: {e}", key.display())))?,
        );
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| setup(format!("client certificate/key are not usable PEM: {e}")))?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        tracing::warn!(
            source = name,
            "TLS certificate verification is OFF (insecure_skip_verify = true)"
        );
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| setup(format!("cannot build HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        let future =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        headers.insert(reqwest::header::RETRY_AFTER, future.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_tries: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert!(backoff(&policy, 1) <= Duration::from_millis(1250));
        assert!(backoff(&policy, 3) >= Duration::from_secs(3));
        assert_eq!(backoff(&policy, 20), Duration::from_secs(60));
    }
}
