//! Simulated source systems that speak the real wire formats (`shared/reference/source-apis.md`),
//! over one coherent, seeded estate, with faults on demand. They serve `infradeck demo`, the tests
//! and the benchmarks; nothing here is reachable beyond loopback unless asked to bind elsewhere.

// Handler helpers return `Result<T, Response>` so a handler can `?` out with a ready HTTP answer,
// the usual axum shape; boxing the response would only add an allocation on error paths.
#![allow(clippy::result_large_err)]

pub(crate) mod atlassian;
pub(crate) mod configs;
pub(crate) mod dorado;
pub(crate) mod embeddings;
pub mod estate;
pub mod foreman;
pub mod http;
pub mod machines;
pub(crate) mod netapp;
pub(crate) mod netbox;
pub(crate) mod oxidized;
pub(crate) mod puppetdb;
pub(crate) mod rng;
pub(crate) mod vcenter;
pub(crate) mod vcenter_soap;

use estate::{AdvanceReport, Estate};
use http::{Credentials, FaultSettings, Faults, RunningServer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

/// The simulated systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimKind {
    Vcenter,
    Foreman,
    Puppetdb,
    Oxidized,
    Netapp,
    Dorado,
    Confluence,
    Jira,
    Netbox,
    Embeddings,
}

impl SimKind {
    pub const ALL: [SimKind; 10] = [
        SimKind::Vcenter,
        SimKind::Foreman,
        SimKind::Puppetdb,
        SimKind::Oxidized,
        SimKind::Netapp,
        SimKind::Dorado,
        SimKind::Confluence,
        SimKind::Jira,
        SimKind::Netbox,
        SimKind::Embeddings,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SimKind::Vcenter => "vcenter",
            SimKind::Foreman => "foreman",
            SimKind::Puppetdb => "puppetdb",
            SimKind::Oxidized => "oxidized",
            SimKind::Netapp => "netapp",
            SimKind::Dorado => "dorado",
            SimKind::Confluence => "confluence",
            SimKind::Jira => "jira",
            SimKind::Netbox => "netbox",
            SimKind::Embeddings => "embeddings",
        }
    }
}

impl fmt::Display for SimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SimKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SimKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = SimKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown simulator `{s}` (expected one of: {}, or all)",
                    names.join(", ")
                )
            })
    }
}

/// How to start the simulators.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub scale: usize,
    pub seed: u64,
    pub faults: BTreeMap<SimKind, FaultSettings>,
    /// The vCenter VM list cap (real vCenter: 4000).
    pub vcenter_vm_cap: usize,
    pub bind: IpAddr,
    /// First port; simulators take consecutive ports from it. `None`: any free ports.
    pub base_port: Option<u16>,
    /// NetBox starts with part of the estate in it (`--netbox-seeded`); by default it is
    /// empty, as a new NetBox is.
    pub netbox_seeded: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            scale: 200,
            seed: 1,
            faults: BTreeMap::new(),
            vcenter_vm_cap: vcenter::VM_CAP,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: None,
            netbox_seeded: false,
        }
    }
}

/// Applies one `--faults` term (`KIND:FAULT[=VALUE]`, `KIND` may be `all`) to `options`.
/// Faults: `latency=2ms`, `errors=5%`, `rate_limit=10%`, `truncate=1%`, `reset=1%`,
/// `session_expiry=N` (requests per session), `auth_fail`, and `cap=N` (vCenter VM list cap).
pub fn apply_fault_spec(options: &mut SimOptions, spec: &str) -> Result<(), String> {
    let (kinds, fault) = spec.split_once(':').ok_or_else(|| {
        format!("fault `{spec}` must look like KIND:FAULT[=VALUE], e.g. vcenter:latency=2ms")
    })?;
    let kinds: Vec<SimKind> = if kinds == "all" {
        SimKind::ALL.to_vec()
    } else {
        kinds.split('+').map(str::parse).collect::<Result<_, _>>()?
    };
    let (name, value) = fault.split_once('=').unwrap_or((fault, ""));
    let share = |v: &str| -> Result<f64, String> {
        let number = v
            .trim_end_matches('%')
            .parse::<f64>()
            .map_err(|_| format!("`{v}` is not a share; use e.g. 5%"))?;
        let share = if v.ends_with('%') {
            number / 100.0
        } else {
            number
        };
        if (0.0..=1.0).contains(&share) {
            Ok(share)
        } else {
            Err(format!("share `{v}` must be between 0% and 100%"))
        }
    };
    for kind in kinds {
        let settings = options.faults.entry(kind).or_default();
        match name {
            "latency" => {
                settings.latency = if let Some(ms) = value.strip_suffix("ms") {
                    std::time::Duration::from_millis(
                        ms.parse().map_err(|_| format!("bad latency `{value}`"))?,
                    )
                } else {
                    infradeck_core::config::parse_duration(value)?
                }
            }
            "errors" => settings.error_rate = share(value)?,
            "rate_limit" => settings.rate_limit_rate = share(value)?,
            "truncate" => settings.truncate_rate = share(value)?,
            "reset" => settings.reset_rate = share(value)?,
            "session_expiry" => {
                settings.session_expiry_after = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad request count `{value}`"))?,
                )
            }
            "auth_fail" => settings.reject_auth = true,
            "cap" if kind == SimKind::Vcenter => {
                options.vcenter_vm_cap = value.parse().map_err(|_| format!("bad cap `{value}`"))?
            }
            other => {
                return Err(format!(
                    "unknown fault `{other}` (expected latency, errors, rate_limit, truncate, reset, session_expiry, auth_fail, or vcenter:cap)"
                ));
            }
        }
    }
    Ok(())
}

/// Every simulator, running.
pub struct Simulators {
    pub estate: Arc<RwLock<Estate>>,
    pub seed: u64,
    pub vcenter: Arc<vcenter::VcenterState>,
    pub foreman: Arc<foreman::ForemanState>,
    pub puppetdb: Arc<puppetdb::PuppetdbState>,
    pub dorado: Arc<dorado::DoradoState>,
    pub netbox: Arc<netbox::NetboxState>,
    servers: BTreeMap<SimKind, RunningServer>,
}

impl Simulators {
    /// Generates the estate and starts every simulator.
    pub async fn start(options: &SimOptions) -> std::io::Result<Simulators> {
        let estate = Estate::generate(options.seed, options.scale);
        let seed = options.seed;
        let faults: BTreeMap<SimKind, Arc<Faults>> = SimKind::ALL
            .iter()
            .map(|k| {
                (
                    *k,
                    Faults::new(
                        seed ^ (*k as u64) << 8,
                        &options.faults.get(k).cloned().unwrap_or_default(),
                    ),
                )
            })
            .collect();
        let credentials = |k: SimKind| Credentials::for_kind(seed, k.as_str());
        let netbox = netbox::NetboxState::new(
            &estate,
            faults[&SimKind::Netbox].clone(),
            seed,
            options.netbox_seeded,
        );
        let estate = Arc::new(RwLock::new(estate));
        let vcenter = vcenter::VcenterState::new(
            estate.clone(),
            faults[&SimKind::Vcenter].clone(),
            credentials(SimKind::Vcenter),
        );
        vcenter
            .vm_cap
            .store(options.vcenter_vm_cap, Ordering::Relaxed);
        let foreman = Arc::new(foreman::ForemanState {
            estate: estate.clone(),
            faults: faults[&SimKind::Foreman].clone(),
            credentials: credentials(SimKind::Foreman),
            machines: Default::default(),
            deleted: Default::default(),
            delete_after_next_page: Default::default(),
        });
        let puppetdb = Arc::new(puppetdb::PuppetdbState::new(estate.clone()));
        let oxidized = Arc::new(oxidized::OxidizedState {
            estate: estate.clone(),
        });
        let netapp = Arc::new(netapp::NetappState {
            estate: estate.clone(),
            faults: faults[&SimKind::Netapp].clone(),
            credentials: credentials(SimKind::Netapp),
        });
        let dorado = dorado::DoradoState::new(
            estate.clone(),
            faults[&SimKind::Dorado].clone(),
            credentials(SimKind::Dorado),
        );
        let atlassian = |k: SimKind| {
            Arc::new(atlassian::AtlassianState {
                estate: estate.clone(),
                faults: faults[&k].clone(),
                credentials: credentials(k),
                base_url: RwLock::new(String::new()),
            })
        };
        let confluence = atlassian(SimKind::Confluence);
        let jira = atlassian(SimKind::Jira);
        let mut servers = BTreeMap::new();
        for (offset, kind) in SimKind::ALL.iter().enumerate() {
            let router = match kind {
                SimKind::Vcenter => vcenter::router(vcenter.clone()),
                SimKind::Foreman => foreman::router(foreman.clone()),
                SimKind::Puppetdb => puppetdb::router(puppetdb.clone()),
                SimKind::Oxidized => oxidized::router(oxidized.clone()),
                SimKind::Netapp => netapp::router(netapp.clone()),
                SimKind::Dorado => dorado::router(dorado.clone()),
                SimKind::Confluence => atlassian::confluence_router(confluence.clone()),
                SimKind::Jira => atlassian::jira_router(jira.clone()),
                SimKind::Netbox => netbox::router(netbox.clone()),
                SimKind::Embeddings => embeddings::router(),
            };
            let port = options.base_port.map_or(0, |p| p + offset as u16);
            let server = http::serve(
                router,
                faults[kind].clone(),
                SocketAddr::new(options.bind, port),
            )
            .await?;
            servers.insert(*kind, server);
        }
        let url = |k: SimKind| servers[&k].url();
        *confluence
            .base_url
            .write()
            .unwrap_or_else(|e| e.into_inner()) = url(SimKind::Confluence);
        *jira.base_url.write().unwrap_or_else(|e| e.into_inner()) = url(SimKind::Jira);
        *netbox.base_url.write().unwrap_or_else(|e| e.into_inner()) = url(SimKind::Netbox);
        Ok(Simulators {
            estate,
            seed,
            vcenter,
            foreman,
            puppetdb,
            dorado,
            netbox,
            servers,
        })
    }

    /// The base URL of a simulator (`http://127.0.0.1:PORT`).
    pub fn url(&self, kind: SimKind) -> String {
        self.servers[&kind].url()
    }

    /// A simulator's fault controls.
    pub fn faults(&self, kind: SimKind) -> &Arc<Faults> {
        &self.servers[&kind].faults
    }

    /// The login a simulator accepts (NetBox and the embeddings endpoint use tokens instead).
    pub fn credentials(&self, kind: SimKind) -> Credentials {
        Credentials::for_kind(self.seed, kind.as_str())
    }

    /// Applies one step of change to the estate; see [`Estate::advance`].
    pub fn advance(&self) -> AdvanceReport {
        self.estate
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .advance()
    }

    /// One line per simulator: kind, URL and how to authenticate.
    pub fn describe(&self) -> Vec<String> {
        SimKind::ALL
            .iter()
            .map(|&kind| {
                let auth = match kind {
                    SimKind::Netbox => format!(
                        "token: Bearer {} (or Token {})",
                        self.netbox.token_v2, self.netbox.token_v1
                    ),
                    SimKind::Puppetdb | SimKind::Oxidized | SimKind::Embeddings => {
                        "no authentication".to_string()
                    }
                    _ => {
                        let c = self.credentials(kind);
                        format!("user {} password {}", c.username, c.password)
                    }
                };
                format!("{:<11} {:<24} {auth}", kind.as_str(), self.url(kind))
            })
            .collect()
    }

    /// Writes a complete config pointing at the simulators, with every secret in its own file
    /// (mode 600) under `<config>.secrets/`, so `infradeck --config PATH sync --all` works as is.
    pub fn write_config(&self, path: &Path, database: Option<&Path>) -> std::io::Result<()> {
        self.write_config_with(path, database, false)
    }

    /// [`Simulators::write_config`], with semantic search by the local model (`[embeddings]
    /// backend = "local"`) instead of the simulated embeddings endpoint when `local_model`.
    pub fn write_config_with(
        &self,
        path: &Path,
        database: Option<&Path>,
        local_model: bool,
    ) -> std::io::Result<()> {
        // Secret files are named by absolute path: the config is read from wherever the user
        // runs infradeck, not from the directory `--write-config rel/path.toml` was given in.
        let path = &std::path::absolute(path)?;
        let database = database.map(std::path::absolute).transpose()?;
        let database = database.as_deref();
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.toml");
        let secrets = path.with_file_name(format!("{stem}.secrets"));
        std::fs::create_dir_all(&secrets)?;
        let write_secret = |name: &str, value: &str| -> std::io::Result<String> {
            let file = secrets.join(name);
            std::fs::write(&file, format!("{value}\n"))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(file.display().to_string())
        };
        let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::from(
            "# Written by `infradeck sim`: every source points at a local simulator.\n\n[general]\n",
        );
        if let Some(db) = database {
            out.push_str(&format!(
                "database = {}\n",
                toml_str(&db.display().to_string())
            ));
        }
        out.push_str("sweep_guard_percent = 25\n");
        let login = |kind: SimKind, extra: &str| -> std::io::Result<String> {
            let c = self.credentials(kind);
            let file = write_secret(kind.as_str(), &c.password)?;
            Ok(format!(
                "\n[[sources]]\nkind = \"{kind}\"\nid = \"{kind}-sim\"\nurl = {}\nusername = {}\npassword_file = {}\ninterval = \"10m\"\n{extra}",
                toml_str(&self.url(kind)),
                toml_str(&c.username),
                toml_str(&file)
            ))
        };
        out.push_str(&login(SimKind::Vcenter, "max_in_flight = 8\n")?);
        out.push_str(&login(SimKind::Foreman, "")?);
        out.push_str(&format!("\n[[sources]]\nkind = \"puppetdb\"\nid = \"puppetdb-sim\"\nurl = {}\ninterval = \"10m\"\n", toml_str(&self.url(SimKind::Puppetdb))));
        out.push_str(&format!("\n[[sources]]\nkind = \"oxidized\"\nid = \"oxidized-sim\"\nurl = {}\ninterval = \"10m\"\n", toml_str(&self.url(SimKind::Oxidized))));
        out.push_str(&login(SimKind::Netapp, "")?);
        out.push_str(&login(SimKind::Dorado, "max_in_flight = 2\n")?);
        out.push_str(&login(
            SimKind::Confluence,
            "spaces = [\"OPS\", \"NET\"]\n",
        )?);
        out.push_str(&login(SimKind::Jira, "projects = [\"OPS\", \"INC\"]\n")?);
        if local_model {
            out.push_str("\n[embeddings]\nbackend = \"local\"\n");
        } else {
            out.push_str(&format!(
                "\n[embeddings]\nurl = {}\nmodel = \"sim-minilm\"\ndimensions = {}\n",
                toml_str(&self.url(SimKind::Embeddings)),
                embeddings::DEFAULT_DIMENSIONS
            ));
        }
        let token = write_secret("netbox", &self.netbox.token_v2)?;
        out.push_str(&format!(
            "\n[netbox]\nurl = {}\ntoken_file = {}\ntag = \"infradeck\"\n",
            toml_str(&self.url(SimKind::Netbox)),
            toml_str(&token)
        ));
        std::fs::write(path, out)
    }

    /// Stops every simulator.
    pub async fn stop(mut self) {
        for (_, server) in std::mem::take(&mut self.servers) {
            server.stop().await;
        }
    }
}
