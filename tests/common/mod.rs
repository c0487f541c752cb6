//! The rig the integration tests share: every simulator on loopback, a config written for them,
//! a scratch database and an engine with short retry waits.

#![allow(dead_code)] // each test binary uses part of it

use infradeck::config::{Config, SourceConfig};
use infradeck::model::{ApprovalStatus, DeviceStatus};
use infradeck::sim::{SimOptions, Simulators};
use infradeck::sources::http::RetryPolicy;
use infradeck::store::{DeviceQuery, OpenOptions, Review, Store};
use infradeck::sync::{Engine, RunOutcome};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Rig {
    pub sims: Simulators,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub engine: Engine,
}

/// Simulators with NetBox seeded with part of the estate (drifted, hand-made and retired VMs).
pub async fn start_rig(scale: usize, seed: u64) -> Rig {
    start_rig_with(scale, seed, true).await
}

pub async fn start_rig_with(scale: usize, seed: u64, netbox_seeded: bool) -> Rig {
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
    pub fn source(&self, kind: &str) -> SourceConfig {
        self.config
            .sources
            .iter()
            .find(|s| s.kind.as_str() == kind)
            .cloned()
            .unwrap()
    }

    /// Runs one configured source.
    pub async fn run_source(&self, source: &SourceConfig) -> RunOutcome {
        self.engine.run(source, CancellationToken::new()).await
    }

    /// Runs the sources of these kinds at once.
    pub async fn run(&self, kinds: &[&str]) -> Vec<RunOutcome> {
        let sources: Vec<SourceConfig> = kinds.iter().map(|k| self.source(k)).collect();
        self.engine
            .run_all(&sources, &CancellationToken::new())
            .await
    }

    pub fn store(&self) -> Store {
        Store::open(
            &self.dir.path().join("inventory.db"),
            &OpenOptions::default(),
        )
        .unwrap()
    }

    pub fn count(&self, source: &str, status: Option<DeviceStatus>) -> u64 {
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
pub fn approve_all(store: &mut Store, batch: &str) -> usize {
    let at = infradeck::time::now();
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
