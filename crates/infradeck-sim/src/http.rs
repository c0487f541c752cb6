//! What every simulator shares: the server loop, fault injection, query parsing, auth helpers.

use super::rng::Rng;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an injected fault does to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status and a short body, without running the handler.
    Status(u16),
    /// Answer 429 with this `Retry-After` value (seconds or an HTTP date).
    RateLimit(String),
    /// Run the handler, then send only the first half of the body.
    Truncate,
    /// Send the headers, then drop the connection mid-body.
    Reset,
    /// Wait this long, then run the handler.
    Delay(Duration),
}

/// A deterministic fault: skip the first `after` requests (that match `path_contains`), then apply
/// `action` to the next `count` of them (`None`: to all).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub action: FaultAction,
    pub(crate) after: u64,
    pub(crate) count: Option<u64>,
    pub(crate) path_contains: Option<String>,
    seen: u64,
    applied: u64,
}

impl FaultRule {
    pub fn new(action: FaultAction) -> FaultRule {
        FaultRule {
            action,
            after: 0,
            count: None,
            path_contains: None,
            seen: 0,
            applied: 0,
        }
    }

    pub fn after(mut self, requests: u64) -> FaultRule {
        self.after = requests;
        self
    }

    pub fn times(mut self, count: u64) -> FaultRule {
        self.count = Some(count);
        self
    }

    pub fn on_path(mut self, fragment: &str) -> FaultRule {
        self.path_contains = Some(fragment.to_string());
        self
    }
}

/// The faults configured for one simulator; changeable while it runs.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<FaultState>,
    requests: AtomicU64,
}

#[derive(Debug)]
struct FaultState {
    latency: Duration,
    error_rate: f64,
    rate_limit_rate: f64,
    truncate_rate: f64,
    reset_rate: f64,
    session_expiry_after: Option<u64>,
    reject_auth: bool,
    rules: Vec<FaultRule>,
    rng: Rng,
}

/// Probabilistic and standing faults, as `infradeck sim --faults` sets them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSettings {
    pub(crate) latency: Duration,
    /// Share (0–1) of requests answered 500 or 503.
    pub(crate) error_rate: f64,
    /// Share of requests answered 429 with `Retry-After: 1`.
    pub(crate) rate_limit_rate: f64,
    /// Share of JSON bodies cut in half.
    pub(crate) truncate_rate: f64,
    /// Share of connections dropped mid-response.
    pub(crate) reset_rate: f64,
    /// Sessions expire after this many requests.
    pub(crate) session_expiry_after: Option<u64>,
    /// Every login fails.
    pub(crate) reject_auth: bool,
}

impl Faults {
    pub(crate) fn new(seed: u64, settings: &FaultSettings) -> Arc<Faults> {
        Arc::new(Faults {
            state: Mutex::new(FaultState {
                latency: settings.latency,
                error_rate: settings.error_rate,
                rate_limit_rate: settings.rate_limit_rate,
                truncate_rate: settings.truncate_rate,
                reset_rate: settings.reset_rate,
                session_expiry_after: settings.session_expiry_after,
                reject_auth: settings.reject_auth,
                rules: Vec::new(),
                rng: Rng::derive(seed, "faults"),
            }),
            requests: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters (plain fields), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a deterministic fault rule.
    pub fn push(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule and standing fault.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.latency = Duration::ZERO;
        s.error_rate = 0.0;
        s.rate_limit_rate = 0.0;
        s.truncate_rate = 0.0;
        s.reset_rate = 0.0;
        s.session_expiry_after = None;
        s.reject_auth = false;
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn set_reject_auth(&self, reject: bool) {
        self.lock().reject_auth = reject;
    }

    pub fn set_session_expiry(&self, after_requests: Option<u64>) {
        self.lock().session_expiry_after = after_requests;
    }

    pub(crate) fn reject_auth(&self) -> bool {
        self.lock().reject_auth
    }

    /// Whether a session that has served `uses` requests has expired.
    pub(crate) fn session_expired(&self, uses: u64) -> bool {
        self.lock()
            .session_expiry_after
            .is_some_and(|limit| uses >= limit)
    }

    /// Requests this simulator has received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn decide(&self, path: &str) -> (Duration, Option<FaultAction>) {
        let mut s = self.lock();
        let latency = s.latency;
        for rule in s.rules.iter_mut() {
            if rule
                .path_contains
                .as_deref()
                .is_some_and(|p| !path.contains(p))
            {
                continue;
            }
            rule.seen += 1;
            if rule.seen > rule.after && rule.count.is_none_or(|c| rule.applied < c) {
                rule.applied += 1;
                return (latency, Some(rule.action.clone()));
            }
        }
        let (error, limit, truncate, reset) = (
            s.error_rate,
            s.rate_limit_rate,
            s.truncate_rate,
            s.reset_rate,
        );
        let roll = |s: &mut FaultState, p: f64| p > 0.0 && s.rng.chance(p);
        let action = if roll(&mut s, error) {
            Some(FaultAction::Status(if s.rng.chance(0.5) {
                500
            } else {
                503
            }))
        } else if roll(&mut s, limit) {
            Some(FaultAction::RateLimit("1".into()))
        } else if roll(&mut s, truncate) {
            Some(FaultAction::Truncate)
        } else if roll(&mut s, reset) {
            Some(FaultAction::Reset)
        } else {
            None
        };
        (latency, action)
    }
}

/// Sleeps for `duration` as exactly as the OS allows. tokio's timer has millisecond granularity
/// and rounds up, which would turn an advertised 2 ms latency into 2.5–3 ms; a nanosleep on the
/// blocking pool is accurate to tens of microseconds.
async fn precise_sleep(duration: Duration) {
    let precise = duration < Duration::from_millis(20)
        && tokio::task::spawn_blocking(move || std::thread::sleep(duration))
            .await
            .is_ok();
    if !precise {
        tokio::time::sleep(duration).await;
    }
}

async fn fault_layer(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    faults.requests.fetch_add(1, Ordering::Relaxed);
    let (latency, action) = faults.decide(request.uri().path());
    if !latency.is_zero() {
        precise_sleep(latency).await;
    }
    match action {
        None => next.run(request).await,
        Some(FaultAction::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(FaultAction::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("injected fault: {status}"),
            )
                .into_response()
        }
        Some(FaultAction::RateLimit(retry_after)) => {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "rate limited").into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Some(FaultAction::Truncate) => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            // A gzipped answer is cut as the JSON it carries: the fault is a server that stopped
            // writing its document half-way, which is what the client must name.
            let bytes = if parts
                .headers
                .get(header::CONTENT_ENCODING)
                .is_some_and(|v| v == "gzip")
            {
                parts.headers.remove(header::CONTENT_ENCODING);
                let mut plain = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&bytes[..]),
                    &mut plain,
                );
                axum::body::Bytes::from(plain)
            } else {
                bytes
            };
            let cut = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        Some(FaultAction::Reset) => {
            let stream = futures::stream::once(async {
                Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                ))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// A simulator listening on loopback.
pub(crate) struct RunningServer {
    pub(crate) addr: SocketAddr,
    pub(crate) faults: Arc<Faults>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the server task.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `router` with fault injection on `addr` (port 0: any free port).
pub(crate) async fn serve(
    router: Router,
    faults: Arc<Faults>,
    addr: SocketAddr,
) -> std::io::Result<RunningServer> {
    use axum::serve::ListenerExt as _;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    // Real API servers answer without Nagle's delay; without this, small responses written in
    // two pieces wait on the client's delayed ACK and every request gains milliseconds.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::trace!(%err, "cannot set TCP_NODELAY");
        }
    });
    let app = router.layer(axum::middleware::from_fn_with_state(
        faults.clone(),
        fault_layer,
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(err) = server.await {
            tracing::warn!(%err, "simulator stopped with an error");
        }
    });
    Ok(RunningServer {
        addr,
        faults,
        shutdown: Some(tx),
        task,
    })
}

/// Query parameters in order, repeated keys kept (`names=a&names=b`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn number(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

/// Decodes `Authorization: Basic ...` into (user, password).
pub(crate) fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A JSON response with a status.
pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// Credentials a simulator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub(crate) fn for_kind(seed: u64, kind: &str) -> Credentials {
        let mut rng = Rng::derive(seed, &format!("credentials-{kind}"));
        Credentials {
            username: "infradeck".into(),
            password: format!("sim-{kind}-{:08x}", rng.next_u64() as u32),
        }
    }

    pub(crate) fn matches(&self, user: &str, password: &str) -> bool {
        self.username == user && self.password == password
    }
}

/// Foreman-style timestamps: `2026-05-01 10:02:11 UTC`.
pub(crate) fn utc_words(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
