//! The real PuppetDB 7.12 (Debian's `puppetdb`), brought up by `tests/tiers/puppetdb.sh` and
//! named by `INFRADECK_REAL_PUPPETDB_URL`. Data goes in through PuppetDB's own command API
//! (`replace_facts`, `deactivate_node`), shaped like Facter 4 from the simulator's estate, and the
//! connector syncs it back. Each test loads its own nodes under its own domain and restricts its
//! source to them with `query`, so the tests share one PuppetDB and still run in parallel.
//!
//! Without the variable the tests skip with a reason; with `INFRADECK_REQUIRE_REAL_SERVERS=1`
//! (CI) a missing server is a failure.

use infradeck_core::app::RunOutcome;
use infradeck_core::config::Config;
use infradeck_core::model::{DeviceStatus, RunStatus};
use infradeck_core::store::{OpenOptions, Store};
use infradeck_core::sync::Engine;
use infradeck_sim::estate::Estate;
use infradeck_sim::machines::{facts, machines};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn real_puppetdb() -> Option<String> {
    match std::env::var("INFRADECK_REAL_PUPPETDB_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_string()),
        _ if std::env::var("INFRADECK_REQUIRE_REAL_SERVERS").as_deref() == Ok("1") => panic!(
            "INFRADECK_REAL_PUPPETDB_URL is not set but INFRADECK_REQUIRE_REAL_SERVERS=1: start tests/tiers/puppetdb.sh"
        ),
        _ => {
            eprintln!(
                "skipped: no real PuppetDB (run `tests/tiers/puppetdb.sh start DIR` and set INFRADECK_REAL_PUPPETDB_URL)"
            );
            None
        }
    }
}

/// A unique domain per test run, so tests sharing one PuppetDB never see each other's nodes.
fn unique_tag(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}{}{}", std::process::id(), nanos % 1_000_000_000)
}

/// Nodes of one test: certname → Facter 4 facts.
struct Nodes {
    tag: String,
    facts: BTreeMap<String, Value>,
    /// certname → the same machine's name in the simulator (seed 7, scale 200).
    sim_names: BTreeMap<String, String>,
}

impl Nodes {
    /// `count` machines of a simulated estate, renamed into the test's own domain.
    fn generate(tag: &str, count: usize, puppet_runs: u64) -> Nodes {
        let mut estate = Estate::generate(7, 200);
        estate.puppet_runs = puppet_runs;
        let domain = format!("{tag}.test");
        let mut out = BTreeMap::new();
        let mut sim_names = BTreeMap::new();
        for m in machines(&estate)
            .into_iter()
            .filter(|m| m.in_puppet)
            .take(count)
        {
            let fqdn = format!("{}.{domain}", m.short);
            let mut tree = facts(&estate, &m);
            tree["networking"]["fqdn"] = json!(fqdn);
            tree["networking"]["domain"] = json!(domain);
            tree["fqdn"] = json!(fqdn);
            tree["domain"] = json!(domain);
            tree["trusted"]["certname"] = json!(fqdn);
            tree["trusted"]["domain"] = json!(domain);
            sim_names.insert(fqdn.clone(), m.fqdn.clone());
            out.insert(fqdn, tree);
        }
        Nodes {
            tag: tag.to_string(),
            facts: out,
            sim_names,
        }
    }

    fn certname_query(&self) -> Value {
        json!(["~", "certname", format!("\\.{}\\.test$", self.tag)])
    }
}

struct Pdb {
    url: String,
    http: reqwest::Client,
}

impl Pdb {
    fn new(url: String) -> Pdb {
        Pdb {
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn command(&self, command: &str, version: u32, certname: &str, payload: Value) {
        let response = self
            .http
            .post(format!(
                "{}/pdb/cmd/v1?command={command}&version={version}&certname={certname}",
                self.url
            ))
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{command} {certname}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    async fn replace_facts(&self, certname: &str, values: &Value) {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        self.command(
            "replace_facts",
            5,
            certname,
            json!({"certname": certname, "environment": "production", "values": values,
                   "producer_timestamp": now, "producer": "infradeck-test"}),
        )
        .await;
    }

    async fn deactivate(&self, certname: &str) {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        self.command(
            "deactivate_node",
            3,
            certname,
            json!({"certname": certname, "producer_timestamp": now}),
        )
        .await;
    }

    async fn inventory(&self, query: &Value) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/pdb/query/v4/inventory", self.url))
            .query(&[("query", query.to_string())])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }

    /// Waits until `query` lists exactly `count` nodes: commands are queued, and PuppetDB
    /// applies them on its own time.
    async fn wait_for(&self, query: &Value, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let listed = self.inventory(query).await.len();
            if listed == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PuppetDB lists {listed} nodes for {query}, expected {count}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Submits every node's facts and waits until PuppetDB has stored them all.
    async fn load(&self, nodes: &Nodes) {
        let since = chrono::Utc::now() - chrono::Duration::seconds(1);
        for (certname, values) in &nodes.facts {
            self.replace_facts(certname, values).await;
        }
        let since = since.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let fresh = json!(["and", nodes.certname_query(), [">", "timestamp", since]]);
        self.wait_for(&fresh, nodes.facts.len()).await;
    }
}

/// A database and an engine with one PuppetDB source restricted to the test's nodes.
struct Inventory {
    dir: tempfile::TempDir,
    config: Config,
    engine: Engine,
}

impl Inventory {
    fn new(url: &str, nodes: &Nodes, page_size: usize) -> Inventory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = format!(
            "[general]\ndatabase = {}\n\n[[sources]]\nkind = \"puppetdb\"\nid = \"real-pdb\"\nurl = {}\nquery = {}\npage_size = {page_size}\n",
            toml::Value::String(dir.path().join("inventory.db").display().to_string()),
            toml::Value::String(url.to_string()),
            toml::Value::String(nodes.certname_query().to_string()),
        );
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path, true).unwrap();
        let mut engine = Engine::new(config.database_path(None), config.general.clone());
        engine.retry.base = Duration::from_millis(50);
        Inventory {
            dir,
            config,
            engine,
        }
    }

    async fn sync(&self) -> RunOutcome {
        self.engine
            .run(&self.config.sources[0], CancellationToken::new())
            .await
    }

    /// Like [`Self::sync`], against another URL (a proxy in front of PuppetDB).
    async fn sync_via(&self, url: &str) -> RunOutcome {
        let mut source = self.config.sources[0].clone();
        source.url = url.to_string();
        self.engine.run(&source, CancellationToken::new()).await
    }

    fn store(&self) -> Store {
        Store::open(
            &self.dir.path().join("inventory.db"),
            &OpenOptions::default(),
        )
        .unwrap()
    }

    fn active(&self) -> Vec<String> {
        let store = self.store();
        let mut names: Vec<String> = store
            .device_keys_of_source("puppetdb", "real-pdb", DeviceStatus::Active)
            .unwrap()
            .into_iter()
            .map(|(_, certname)| certname)
            .collect();
        names.sort();
        names
    }

    fn history_rows(&self) -> u64 {
        self.store()
            .table_counts()
            .unwrap()
            .into_iter()
            .find(|(t, _)| *t == "sync_history")
            .unwrap()
            .1
    }
}

fn assert_success(outcome: &RunOutcome) {
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn real_puppetdb_sync_matches_what_was_loaded_and_a_puppet_run_writes_nothing() {
    let Some(url) = real_puppetdb() else { return };
    let pdb = Pdb::new(url.clone());
    let tag = unique_tag("sync");
    let mut nodes = Nodes::generate(&tag, 24, 0);
    // One node whose certificate was issued for an old name: it is named by its FQDN.
    let (renamed_from, mut renamed_facts) = nodes.facts.pop_first().unwrap();
    let legacy = format!("legacy-{renamed_from}");
    renamed_facts["trusted"]["certname"] = json!(legacy);
    nodes.facts.insert(legacy.clone(), renamed_facts);
    for tree in nodes.facts.values_mut() {
        tree["custom_unresolved"] = Value::Null;
    }
    pdb.load(&nodes).await;

    let inventory = Inventory::new(&url, &nodes, 10);
    let first = inventory.sync().await;
    assert_success(&first);
    assert_eq!(first.counts.added as usize, nodes.facts.len());
    let certnames: Vec<String> = nodes.facts.keys().cloned().collect();
    assert_eq!(inventory.active(), certnames);

    let store = inventory.store();
    for (certname, tree) in &nodes.facts {
        let device = store
            .device_keys_of_source("puppetdb", "real-pdb", DeviceStatus::Active)
            .unwrap()
            .into_iter()
            .find(|(_, c)| c == certname)
            .map(|(id, _)| store.device(id).unwrap().unwrap())
            .unwrap();
        let fqdn = tree["networking"]["fqdn"].as_str().unwrap();
        assert_eq!(
            device.name, fqdn,
            "named by its FQDN, not the certname {certname}"
        );
        let meta = device.metadata_json();
        assert_eq!(meta["puppetdb"]["fqdn"], fqdn);
        assert_eq!(meta["puppetdb"]["certname"], certname.as_str());
        assert_eq!(meta["puppetdb"]["ip"], tree["networking"]["ip"]);
        let stored: BTreeMap<String, Option<String>> = store
            .facts(device.id)
            .unwrap()
            .into_iter()
            .map(|f| (f.name, f.value))
            .collect();
        assert!(!stored.contains_key("trusted"));
        assert!(!stored.contains_key("system_uptime"));
        assert_eq!(
            stored["kernelrelease"].as_deref(),
            tree["kernelrelease"].as_str()
        );
        let memory: Value = serde_json::from_str(stored["memory"].as_deref().unwrap()).unwrap();
        assert_eq!(
            memory["system"]["total_bytes"],
            tree["memory"]["system"]["total_bytes"]
        );
        assert!(memory["system"].get("used_bytes").is_none());
        assert_eq!(
            stored.contains_key("freeipa_client"),
            tree["freeipa_client"].is_object(),
            "kept where Facter reports it: {certname}"
        );
        assert!(
            !stored.contains_key("custom_unresolved"),
            "a null fact is not stored"
        );
    }
    assert!(
        store
            .devices_named(&renamed_from)
            .unwrap()
            .iter()
            .any(|d| d.source_id == legacy)
    );

    // A Puppet run: the same nodes resubmit facts in which only the run-volatile values moved.
    let history = inventory.history_rows();
    let mut rerun = Nodes::generate(&tag, 24, 1);
    let (_, mut renamed_facts) = rerun.facts.pop_first().unwrap();
    renamed_facts["trusted"]["certname"] = json!(legacy);
    rerun.facts.insert(legacy.clone(), renamed_facts);
    for tree in rerun.facts.values_mut() {
        tree["custom_unresolved"] = Value::Null;
    }
    assert_ne!(
        rerun.facts[&certnames[1]]["memory"], nodes.facts[&certnames[1]]["memory"],
        "the run moved used memory"
    );
    pdb.load(&rerun).await;
    let again = inventory.sync().await;
    assert_success(&again);
    assert_eq!(
        (
            again.counts.added,
            again.counts.updated,
            again.counts.removed
        ),
        (0, 0, 0)
    );
    assert_eq!(
        inventory.history_rows(),
        history,
        "no audit rows for a Puppet run"
    );

    // A deactivated node is recorded as such.
    pdb.deactivate(&certnames[3]).await;
    pdb.wait_for(&nodes.certname_query(), nodes.facts.len() - 1)
        .await;
    let after = inventory.sync().await;
    assert_success(&after);
    assert_eq!(after.counts.removed, 1);
    assert!(!inventory.active().contains(&certnames[3]));
}

/// A loopback proxy in front of PuppetDB that, right after it has passed on the first
/// inventory page, deactivates `victim` in the real PuppetDB and waits until that is visible —
/// the page-boundary race, made deterministic.
async fn racing_proxy(upstream: String, victim: String, scope: Value) -> String {
    use axum::body::Bytes;
    use axum::extract::{OriginalUri, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        victim: String,
        scope: Value,
        raced: Arc<AtomicBool>,
        http: reqwest::Client,
    }
    async fn forward(
        State(proxy): State<Proxy>,
        OriginalUri(uri): OriginalUri,
        headers: HeaderMap,
        _body: Bytes,
    ) -> Response {
        let mut request = proxy.http.get(format!(
            "{}{}",
            proxy.upstream,
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ));
        for (name, value) in &headers {
            if name != "host" {
                request = request.header(name, value);
            }
        }
        let upstream = request.send().await.unwrap();
        let status = upstream.status();
        let mut out = HeaderMap::new();
        for (name, value) in upstream.headers() {
            if name != "transfer-encoding" && name != "content-length" {
                out.insert(name, value.clone());
            }
        }
        let body = upstream.bytes().await.unwrap();
        if uri.path() == "/pdb/query/v4/inventory" && !proxy.raced.swap(true, Ordering::SeqCst) {
            let pdb = Pdb::new(proxy.upstream.clone());
            pdb.deactivate(&proxy.victim).await;
            let remaining = pdb.inventory(&proxy.scope).await.len();
            let deadline = Instant::now() + Duration::from_secs(120);
            // Wait until the deactivation is visible, so the next page is read after it.
            while pdb
                .inventory(&json!(["=", "certname", proxy.victim]))
                .await
                .len()
                == 1
            {
                assert!(Instant::now() < deadline, "deactivation not applied");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = remaining;
        }
        (status, out, body).into_response()
    }
    let proxy = Proxy {
        upstream,
        victim,
        scope,
        raced: Arc::new(AtomicBool::new(false)),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn real_puppetdb_node_deactivated_between_pages_never_makes_an_active_node_inactive() {
    let Some(url) = real_puppetdb() else { return };
    let pdb = Pdb::new(url.clone());
    let tag = unique_tag("race");
    let nodes = Nodes::generate(&tag, 30, 0);
    pdb.load(&nodes).await;
    let inventory = Inventory::new(&url, &nodes, 10);
    assert_success(&inventory.sync().await);
    let certnames: Vec<String> = nodes.facts.keys().cloned().collect();
    assert_eq!(inventory.active(), certnames);

    // The first node is deactivated after page one was read: PuppetDB's next page (offset 10)
    // starts one row later, and the node at the boundary is not listed.
    let proxy = racing_proxy(url.clone(), certnames[0].clone(), nodes.certname_query()).await;
    let raced = inventory.sync_via(&proxy).await;
    assert_success(&raced);
    assert_eq!(
        raced.counts.removed, 0,
        "nothing PuppetDB still has is swept"
    );
    assert_eq!(inventory.active(), certnames);
    let note = raced.message.clone().unwrap_or_default();
    assert!(note.contains("1 active node(s) were missing"), "{note}");

    let after = inventory.sync().await;
    assert_success(&after);
    assert_eq!(after.counts.removed, 1);
    assert_eq!(inventory.active(), certnames[1..].to_vec());
}

/// What one request answers, reduced to what infradeck relies on: status, content type,
/// encoding, total header, and the JSON's shape (object keys and value kinds, not values).
#[derive(Debug, PartialEq)]
struct Shape {
    status: u16,
    content_type: String,
    gzip: bool,
    total: bool,
    body: String,
}

fn shape_of(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", shape_of(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.first().map(shape_of).unwrap_or_default()),
        Value::String(_) => "s".into(),
        Value::Number(_) => "n".into(),
        Value::Bool(_) => "b".into(),
        Value::Null => "null".into(),
    }
}

async fn probe(base: &str, path_and_query: &str, gzip: bool, exact_text: bool) -> Shape {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(format!("{base}{path_and_query}"));
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, encoding, total) = (
        header("content-type"),
        header("content-encoding"),
        !header("x-records").is_empty(),
    );
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let text = if encoding == "gzip" {
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .unwrap();
        plain
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(value) if !exact_text => shape_of(&value),
        _ if exact_text => text.trim().to_string(),
        _ => String::new(),
    };
    Shape {
        status,
        content_type: content_type.replace(' ', ""),
        gzip: encoding == "gzip",
        total,
        body,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_answers_like_the_real_puppetdb() {
    let Some(url) = real_puppetdb() else { return };
    let pdb = Pdb::new(url.clone());
    let tag = unique_tag("shape");
    let nodes = Nodes::generate(&tag, 3, 0);
    pdb.load(&nodes).await;
    let deactivated = nodes.facts.keys().next().unwrap().clone();
    pdb.deactivate(&deactivated).await;
    pdb.wait_for(&nodes.certname_query(), 2).await;

    let sims = infradeck_sim::Simulators::start(&infradeck_sim::SimOptions {
        scale: 200,
        seed: 7,
        ..Default::default()
    })
    .await
    .unwrap();
    let sim = sims.url(infradeck_sim::SimKind::Puppetdb);
    // The simulator's estate (seed 7, scale 200) holds the same machines under their own names.
    let sim_name = |certname: &str| nodes.sim_names[certname].clone();
    let sim_deactivated = sim_name(&deactivated);
    sims.puppetdb
        .deactivated
        .lock()
        .unwrap()
        .insert(sim_deactivated.clone(), chrono::Utc::now());
    let live = nodes.facts.keys().nth(1).unwrap().clone();
    let sim_live = sim_name(&live);

    let enc =
        |q: &Value| form_urlencoded::byte_serialize(q.to_string().as_bytes()).collect::<String>();
    let inventory =
        |q: &Value, rest: &str| format!("/pdb/query/v4/inventory?query={}{rest}", enc(q));
    let order = enc(&json!([{"field": "certname", "order": "asc"}]));
    let paged = format!("&limit=1&order_by={order}&include_total=true");
    // (path for the real server, path for the simulator, gzip, compare text exactly)
    let cases: Vec<(String, String, bool, bool)> = vec![
        (
            inventory(&json!(["=", "certname", live]), &paged),
            inventory(&json!(["=", "certname", sim_live]), &paged),
            false,
            false,
        ),
        (
            inventory(&json!(["=", "certname", live]), ""),
            inventory(&json!(["=", "certname", sim_live]), ""),
            true,
            false,
        ),
        (
            "/pdb/query/v4/inventory?limit=0".into(),
            "/pdb/query/v4/inventory?limit=0".into(),
            false,
            true,
        ),
        (
            inventory(&json!([">", "certname", "a"]), ""),
            inventory(&json!([">", "certname", "a"]), ""),
            false,
            true,
        ),
        (
            format!(
                "/pdb/query/v4/inventory?order_by={}",
                enc(&json!([{"field": "nope"}]))
            ),
            format!(
                "/pdb/query/v4/inventory?order_by={}",
                enc(&json!([{"field": "nope"}]))
            ),
            false,
            true,
        ),
        (
            format!("/pdb/query/v4/nodes/{deactivated}"),
            format!("/pdb/query/v4/nodes/{sim_deactivated}"),
            false,
            false,
        ),
        (
            inventory(
                &json!([
                    "and",
                    ["=", "node_state", "any"],
                    ["=", "certname", deactivated]
                ]),
                "",
            ),
            inventory(
                &json!([
                    "and",
                    ["=", "node_state", "any"],
                    ["=", "certname", sim_deactivated]
                ]),
                "",
            ),
            false,
            false,
        ),
        (
            inventory(&json!(["=", "certname", deactivated]), ""),
            inventory(&json!(["=", "certname", sim_deactivated]), ""),
            false,
            false,
        ),
        (
            inventory(
                &json!([
                    "or",
                    ["=", "certname", live],
                    ["=", "certname", deactivated]
                ]),
                "",
            ),
            inventory(
                &json!([
                    "or",
                    ["=", "certname", sim_live],
                    ["=", "certname", sim_deactivated]
                ]),
                "",
            ),
            false,
            false,
        ),
        // Status and content type only: the texts list PuppetDB's internals.
        (
            inventory(&json!(["=", "nope", 1]), ""),
            inventory(&json!(["=", "nope", 1]), ""),
            false,
            false,
        ),
        (
            inventory(&json!({"not": "an array"}), ""),
            inventory(&json!({"not": "an array"}), ""),
            false,
            false,
        ),
        (
            "/pdb/meta/v1/version".into(),
            "/pdb/meta/v1/version".into(),
            false,
            false,
        ),
        (
            "/pdb/query/v4/nope".into(),
            "/pdb/query/v4/nope".into(),
            false,
            false,
        ),
    ];
    let mut differences = Vec::new();
    for (real_path, sim_path, gzip, exact) in &cases {
        let real = probe(&url, real_path, *gzip, *exact).await;
        let simulated = probe(&sim, sim_path, *gzip, *exact).await;
        if real != simulated {
            differences.push(format!(
                "{real_path}\n  real: {real:?}\n  sim:  {simulated:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
