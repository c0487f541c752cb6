//! The rig the integration tests share: every simulator on loopback, a config written for them,
//! a scratch database and an engine with short retry waits.

#![allow(dead_code)] // each module uses part of it

use infradeck_core::app::RunOutcome;
use infradeck_core::config::{Config, SourceConfig};
use infradeck_core::http::RetryPolicy;
use infradeck_core::model::{ApprovalStatus, DeviceStatus};
use infradeck_core::store::{DeviceQuery, OpenOptions, Review, Store};
use infradeck_core::sync::Engine;
use infradeck_sim::{SimOptions, Simulators};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct Rig {
    pub(crate) sims: Simulators,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: Config,
    pub(crate) engine: Engine,
}

/// Simulators with NetBox seeded with part of the estate (drifted, hand-made and retired VMs).
pub(crate) async fn start_rig(scale: usize, seed: u64) -> Rig {
    start_rig_with(scale, seed, true).await
}

pub(crate) async fn start_rig_with(scale: usize, seed: u64, netbox_seeded: bool) -> Rig {
    let sims = Simulators::start(&SimOptions {
        scale,
        seed,
        netbox_seeded,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    sims.write_config(&config_path, Some(&dir.path().join("inventory.db")))
        .unwrap();
    let config = Config::load(&config_path, true).unwrap();
    let mut engine = Engine::new(config.database_path(None), config.general.clone());
    engine.retry = RetryPolicy {
        max_tries: 5,
        base: Duration::from_millis(10),
        cap: Duration::from_secs(5),
    };
    Rig {
        sims,
        dir,
        config,
        engine,
    }
}

impl Rig {
    pub(crate) fn source(&self, kind: &str) -> SourceConfig {
        self.config
            .sources
            .iter()
            .find(|s| s.kind.as_str() == kind)
            .cloned()
            .unwrap()
    }

    /// Runs one configured source.
    pub(crate) async fn run_source(&self, source: &SourceConfig) -> RunOutcome {
        self.engine.run(source, CancellationToken::new()).await
    }

    /// Runs the sources of these kinds at once.
    pub(crate) async fn run(&self, kinds: &[&str]) -> Vec<RunOutcome> {
        let sources: Vec<SourceConfig> = kinds.iter().map(|k| self.source(k)).collect();
        self.engine
            .run_all(&sources, &CancellationToken::new())
            .await
    }

    pub(crate) fn store(&self) -> Store {
        Store::open(
            &self.dir.path().join("inventory.db"),
            &OpenOptions::default(),
        )
        .unwrap()
    }

    pub(crate) fn count(&self, source: &str, status: Option<DeviceStatus>) -> u64 {
        self.store()
            .count_devices(&DeviceQuery {
                source_system: Some(source.into()),
                status,
                ..DeviceQuery::default()
            })
            .unwrap()
    }
}

/// Approves every pending item of `batch` as `oncall`; how many moved.
pub(crate) fn approve_all(store: &mut Store, batch: &str) -> usize {
    let at = infradeck_core::time::now();
    store
        .write(|w| {
            w.review_items(
                batch,
                &[],
                &Review {
                    from: ApprovalStatus::Pending,
                    to: ApprovalStatus::Approved,
                    reviewer: "oncall",
                    comment: None,
                    at: &at,
                },
            )
        })
        .unwrap()
}

/// Raw SOAP (vim25) requests, as infradeck's client sends them, for comparing servers: one
/// session cookie, the answer's status and parsed XML.
pub(crate) struct SoapProbe {
    pub(crate) url: String,
    pub(crate) cookie: Option<String>,
    client: reqwest::Client,
}

impl SoapProbe {
    pub(crate) fn new(base_url: &str) -> SoapProbe {
        SoapProbe {
            url: format!("{}/sdk", base_url.trim_end_matches('/')),
            cookie: None,
            client: reqwest::Client::new(),
        }
    }

    /// Sends `<body>` in an envelope; (HTTP status, the SOAP Body element).
    pub(crate) async fn call(&mut self, body: &str) -> (u16, infradeck_core::xml::Element) {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
        );
        let mut request = self
            .client
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/7.0.2.0")
            .body(envelope);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        if let Some(cookie) = answer
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            self.cookie = cookie.split(';').next().map(str::to_string);
        }
        let bytes = answer.bytes().await.unwrap();
        let root = infradeck_core::xml::parse(&bytes).unwrap();
        (status, root.child("Body").unwrap().clone())
    }

    pub(crate) async fn login(&mut self, user: &str, password: &str) -> u16 {
        let (status, _) = self
            .call(&format!(
                "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this>\
                 <userName>{user}</userName><password>{password}</password></Login>"
            ))
            .await;
        status
    }

    /// A container view over every object of `kind`.
    pub(crate) async fn view(&mut self, kind: &str) -> String {
        let (_, body) = self
            .call(&format!(
                "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">ViewManager</_this>\
                 <container type=\"Folder\">group-d1</container><type>{kind}</type><recursive>true</recursive></CreateContainerView>"
            ))
            .await;
        body.child("CreateContainerViewResponse")
            .unwrap()
            .text_of("returnval")
            .unwrap()
            .to_string()
    }

    /// RetrievePropertiesEx over a view, as infradeck's client words it.
    pub(crate) fn retrieve_body(
        view: &str,
        kind: &str,
        paths: &[&str],
        max_objects: usize,
    ) -> String {
        let path_set: String = paths
            .iter()
            .map(|p| format!("<pathSet>{p}</pathSet>"))
            .collect();
        format!(
            "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <specSet><propSet><type>{kind}</type>{path_set}</propSet><objectSet><obj type=\"ContainerView\">{view}</obj>\
             <skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>view</name><type>ContainerView</type>\
             <path>view</path><skip>false</skip></selectSet></objectSet></specSet>\
             <options><maxObjects>{max_objects}</maxObjects></options></RetrievePropertiesEx>"
        )
    }
}

/// Every element path in `element` (`a/b/c`), for comparing the structure of two answers.
pub(crate) fn xml_paths(
    element: &infradeck_core::xml::Element,
) -> std::collections::BTreeSet<String> {
    fn walk(
        element: &infradeck_core::xml::Element,
        prefix: &str,
        out: &mut std::collections::BTreeSet<String>,
    ) {
        let path = if prefix.is_empty() {
            element.name.clone()
        } else {
            format!("{prefix}/{}", element.name)
        };
        for child in &element.children {
            walk(child, &path, out);
        }
        out.insert(path);
    }
    let mut out = std::collections::BTreeSet::new();
    walk(element, "", &mut out);
    out
}

/// Asserts that a run succeeded, naming the source and its message when it did not.
pub(crate) fn ok(outcome: &infradeck_core::app::RunOutcome) {
    assert_eq!(
        outcome.status,
        infradeck_core::model::RunStatus::Success,
        "{}: {:?}",
        outcome.source,
        outcome.message
    );
}
