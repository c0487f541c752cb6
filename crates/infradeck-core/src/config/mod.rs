//! Configuration: a TOML file at the XDG config path (or `--config` / `INFRADECK_CONFIG`),
//! listing source instances, the NetBox target and housekeeping settings.
//!
//! Secrets never live in the file. A source names where to get one: `password_env` (an
//! environment variable), `password_file` (a file holding only the secret) or `password_cmd`
//! (a command that prints it, such as `pass show vcenter`); the same with `token_*` for tokens.
//! A literal `password` or `token` key is refused with an error that says how to fix it. Every
//! error names the file, the line and the key.

mod parse;
mod raw;
mod secret;

pub use parse::parse_duration;
pub use secret::{Secret, SecretRef};

use crate::model::SourceKind;
use parse::*;
use raw::*;
use secret::*;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    pub general: General,
    pub sources: Vec<SourceConfig>,
    pub netbox: Option<NetboxConfig>,
    pub embeddings: Option<EmbeddingsConfig>,
    pub dashboard: DashboardConfig,
    /// `[health]`: the thresholds machine health is judged by.
    pub health: crate::machines::HealthRules,
    /// `[machines.primary]`: per device type, the sources whose record names a machine, most
    /// trusted first (in place of the default order for that type).
    pub primary_sources: std::collections::BTreeMap<crate::model::DeviceType, Vec<String>>,
}

/// `[dashboard]`: how the terminal dashboard behaves.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Config lines matching any of these are hidden from diffs when the noise toggle is on:
    /// timestamps and counters that change on every fetch.
    pub volatile_lines: Vec<regex::Regex>,
    /// Mouse capture (wheel scroll, click to select). Off by default: it steals the terminal's
    /// own text selection, which on a bastion is how people copy things.
    pub mouse: bool,
    /// `environment = "prod"`: the header shows the name, production in red, so a production
    /// inventory never looks like the lab.
    pub environment: Option<String>,
    /// `landing`: the page the dashboard opens on.
    pub landing: Landing,
}

/// `[dashboard] landing`: where the dashboard opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Landing {
    /// The changes since the user last looked when there are any, else the machine list.
    #[default]
    Auto,
    /// Always the changes (since the last look, else the last 24 hours).
    Changes,
    /// Always the machine list.
    Devices,
}

/// The volatile-line patterns used when the config does not name its own.
pub(crate) const DEFAULT_VOLATILE_LINES: &[&str] = &[
    r"^!\s*(Last configuration change|NVRAM config last updated|Time:|Running configuration last done)",
    r"(?i)^!\s*Startup-config last modified",
    r"^##\s*Last (commit|changed):",
    r"(?i)^\s*ntp clock-period",
    r"(?i)^!\s*Command:\s*show running-config",
    r"(?i)^\s*#?\s*(uptime|last (updated|modified|commit))\b",
];

/// Facter 4 fact paths (and their Facter 3 legacy names) whose values change on every Puppet
/// run; `sources::facts` explains the matching. A source's `volatile_facts` adds to these, and
/// `volatile_facts_defaults = false` drops them.
pub(crate) const DEFAULT_VOLATILE_FACTS: &[&str] = &[
    "uptime*",
    "system_uptime",
    "load_averages",
    "memory.*.used*",
    "memory.*.available*",
    "memory.*.capacity",
    "mountpoints.*.used*",
    "mountpoints.*.available*",
    "mountpoints.*.capacity",
    "memoryfree*",
    "swapfree*",
    "sp_uptime",
    "_timestamp",
];

/// Why a volatile-fact pattern is unusable, if it is.
fn check_fact_pattern(pattern: &str) -> Result<(), String> {
    if pattern.split('.').any(str::is_empty) {
        return Err(format!(
            "`{pattern}` has an empty path segment (an empty pattern, two dots in a row, or a leading or trailing dot)"
        ));
    }
    if pattern
        .split('.')
        .next()
        .is_some_and(|first| first.chars().all(|c| c == '*'))
    {
        return Err(format!(
            "`{pattern}` starts with `*` and would match every top-level fact; name the fact"
        ));
    }
    Ok(())
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            volatile_lines: DEFAULT_VOLATILE_LINES
                .iter()
                // Invariant: the defaults are literals covered by a unit test.
                .map(|p| regex::Regex::new(p).expect("default volatile-line pattern"))
                .collect(),
            mouse: false,
            environment: None,
            landing: Landing::Auto,
        }
    }
}

/// What turns text into vectors for semantic search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingBackend {
    /// all-MiniLM-L6-v2 in-process, from `model_dir` (the default).
    Local,
    /// An OpenAI-compatible `/v1/embeddings` endpoint at `url`.
    Http,
}

/// `[embeddings]`: how semantic search embeds text. Without the section: the local model, from
/// its default folder, when it is installed there.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsConfig {
    pub backend: EmbeddingBackend,
    /// Where the local model's three files are (`infradeck model import` puts them there):
    /// `model_dir`, else `INFRADECK_MODEL_DIR`, else under the XDG data dir.
    pub model_dir: PathBuf,
    /// The HTTP backend's base URL; requests go to `{url}/v1/embeddings`.
    pub url: String,
    pub(crate) model: String,
    pub dimensions: usize,
    pub(crate) token: Option<SecretRef>,
    pub(crate) tls: TlsConfig,
    pub(crate) timeout: Duration,
    /// Characters per chunk of long text, and how many consecutive chunks share.
    pub(crate) chunk_chars: usize,
    pub(crate) overlap_chars: usize,
}

/// `[general]`: database location and housekeeping.
#[derive(Debug, Clone)]
pub struct General {
    /// The database file; the XDG data path when absent.
    pub database: Option<PathBuf>,
    pub busy_timeout: Duration,
    /// Hide and refuse every action that writes to a source or NetBox.
    pub read_only: bool,
    pub stale_after_days: u32,
    pub history_retention_days: u32,
    pub config_versions_kept: u32,
    /// A sweep that would deactivate more than this share (percent) of a source's active
    /// devices is refused and the run ends `partial`.
    pub sweep_guard_percent: u32,
    /// The longest a source's `Retry-After` (or a backoff) is waited out; a source that asks
    /// for longer fails the request at once, saying so, rather than stalling the sync.
    pub(crate) max_retry_wait: Duration,
    /// Facts (PuppetDB or Foreman) that carry a server's LLDP neighbours, per interface as
    /// `lldpcli -f json` words them: `{"eth0": {"chassis": {"name": ...}, "port": {"ifname":
    /// ...}}}` (Foreman: `<fact>::eth0::chassis::name`). Correlation links the server to that
    /// switch (`connects_to`).
    pub lldp_facts: Vec<String>,
}

impl Default for General {
    fn default() -> Self {
        General {
            database: None,
            busy_timeout: Duration::from_millis(5000),
            read_only: false,
            stale_after_days: 90,
            history_retention_days: 365,
            config_versions_kept: 10,
            sweep_guard_percent: 25,
            max_retry_wait: Duration::from_secs(60),
            lldp_facts: vec!["lldp".to_string()],
        }
    }
}

/// TLS settings of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// A PEM bundle of extra CAs to trust, on top of the system store.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Logged as a warning on every run.
    pub insecure_skip_verify: bool,
    /// Client certificate and key (PEM) for mutual TLS, as PuppetDB requires.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// One configured source instance.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Unique name of this instance; becomes `source_identifier` in the database.
    pub id: String,
    pub url: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<SecretRef>,
    pub(crate) token: Option<SecretRef>,
    /// How often `sync --watch` and the dashboard run this source.
    pub interval: Duration,
    pub enabled: bool,
    pub(crate) tls: TlsConfig,
    /// Requests in flight at once against this source.
    pub max_in_flight: usize,
    pub(crate) timeout: Duration,
    /// Confluence: the spaces to cache.
    pub(crate) spaces: Vec<String>,
    /// Jira: the projects to cache.
    pub(crate) projects: Vec<String>,
    /// Jira: an extra JQL restriction.
    pub(crate) jql: Option<String>,
    /// Jira/Confluence: `server` or `cloud`.
    pub flavor: Option<String>,
    /// Dorado: login scope (`0` = local user) and vStore.
    pub(crate) scope: Option<String>,
    pub(crate) vstore: Option<String>,
    /// PuppetDB: an AST query every listing is restricted to (`["=", "environment", "production"]`).
    pub(crate) query: Option<serde_json::Value>,
    /// Paged listings (PuppetDB, Foreman, Dorado): records per page; `None`: the connector's own.
    pub page_size: Option<usize>,
    /// PuppetDB and Foreman: fact path patterns whose values are not stored.
    pub(crate) volatile_facts: Vec<String>,
    /// Oxidized: every node's newest stored config is fetched again once in this many hours
    /// (its hour is fixed by its name) and corrected when Oxidized serves other text for that
    /// version, e.g. a body that was cut short; 0 turns the check off.
    pub verify_configs_hours: u32,
}

/// `[netbox]`: the NetBox that plans are made against.
#[derive(Debug, Clone, PartialEq)]
pub struct NetboxConfig {
    pub url: String,
    pub token: SecretRef,
    pub tls: TlsConfig,
    /// Tag on every object infradeck creates; only tagged objects are ever changed.
    pub tag: String,
    pub delete_grace_days: u32,
    pub max_deletes: u32,
    /// The NetBox site clusters are scoped to (created when missing), so their VMs get it too.
    pub site: Option<String>,
    /// The name reviews are recorded under (`identity::reviewer` adds the login, sudo and SSH
    /// key); the login name when absent.
    pub reviewer: Option<String>,
    /// `[[netbox.devices]]`: where each machine goes as a dcim device, in order; for each
    /// field, the first matching rule that sets it wins.
    pub device_rules: Vec<DeviceRule>,
}

/// A `[[netbox.devices]]` rule: which machines it matches (every pattern given must match; `*`
/// matches any run of characters, case-insensitively) and what it sets for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRule {
    /// `system` or `system/instance` of any of the machine's records.
    pub source: Option<String>,
    /// `server`, `network_device` or `storage`.
    pub device_type: Option<crate::model::DeviceType>,
    pub name: Option<String>,
    /// vCenter cluster and datacenter of a host.
    pub cluster: Option<String>,
    pub datacenter: Option<String>,
    /// Oxidized group of a switch.
    pub group: Option<String>,
    /// Foreman host group and location.
    pub hostgroup: Option<String>,
    pub location: Option<String>,
    pub site: Option<String>,
    pub role: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub platform: Option<String>,
    /// Matching machines are left out of NetBox.
    pub skip: bool,
}

/// A configuration problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

// ---- paths -----------------------------------------------------------------------------------

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "infradeck")
}

/// `~/.config/infradeck/config.toml` (or the platform's equivalent).
pub(crate) fn default_config_path() -> PathBuf {
    project_dirs()
        .map(|d| d.config_dir().join("config.toml"))
        .unwrap_or_else(|| PathBuf::from("infradeck.toml"))
}

/// Where the local embedding model lives unless configured: `INFRADECK_MODEL_DIR`, else
/// `~/.local/share/infradeck/models/all-MiniLM-L6-v2` (or the platform's equivalent).
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INFRADECK_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    project_dirs()
        .map(|d| d.data_dir().join("models").join("all-MiniLM-L6-v2"))
        .unwrap_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"))
}

/// `~/.local/share/infradeck/inventory.db` (or the platform's equivalent).
pub(crate) fn default_database_path() -> PathBuf {
    project_dirs()
        .map(|d| d.data_dir().join("inventory.db"))
        .unwrap_or_else(|| PathBuf::from("inventory.db"))
}

/// Where log files go: the XDG state directory, else the data directory.
pub fn default_log_dir() -> PathBuf {
    project_dirs()
        .map(|d| {
            d.state_dir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| d.data_dir().join("log"))
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Which config file to read and whether it must exist: an explicit `--config` or
/// `INFRADECK_CONFIG` must; the default path may be absent (then the config is empty).
pub fn resolve_config_path(explicit: Option<&Path>) -> (PathBuf, bool) {
    match explicit {
        Some(path) => (path.to_path_buf(), true),
        None => (default_config_path(), false),
    }
}

impl Config {
    /// Loads the config from `path`. A missing file is an error only when `must_exist`.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // No file: what an empty one means (the local model for semantic search included).
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Config::parse("", path);
            }
            Err(err) => {
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: None,
                    key: None,
                    message: format!("cannot read the config file: {err}"),
                });
            }
        };
        let mut config = Config::parse(&text, path)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses config text; `file` is used for error messages and relative paths.
    pub(crate) fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| toml_error(text, file, &err))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let locate = Locator { text, file };
        let general = General {
            database: raw.general.database.map(|p| resolve_path(base, &p)),
            busy_timeout: Duration::from_millis(raw.general.busy_timeout_ms.unwrap_or(5000)),
            read_only: raw.general.read_only.unwrap_or(false),
            stale_after_days: raw.general.stale_after_days.unwrap_or(90),
            history_retention_days: raw.general.history_retention_days.unwrap_or(365),
            config_versions_kept: raw.general.config_versions_kept.unwrap_or(10),
            sweep_guard_percent: raw.general.sweep_guard_percent.unwrap_or(25),
            max_retry_wait: Duration::from_secs(raw.general.max_retry_wait_secs.unwrap_or(60)),
            lldp_facts: raw
                .general
                .lldp_facts
                .unwrap_or_else(|| General::default().lldp_facts),
        };
        if let Some(bad) = general
            .lldp_facts
            .iter()
            .find(|f| f.trim().is_empty() || f.contains(char::is_whitespace))
        {
            return Err(locate.error(
                Some(("general", 0)),
                "lldp_facts",
                &format!("`{bad}` is not a fact name (no spaces, not empty)"),
            ));
        }
        if general.sweep_guard_percent > 100 {
            return Err(locate.error(
                Some(("general", 0)),
                "sweep_guard_percent",
                "must be between 0 and 100",
            ));
        }
        if general.config_versions_kept == 0 {
            return Err(locate.error(
                Some(("general", 0)),
                "config_versions_kept",
                "must be at least 1",
            ));
        }
        let mut sources = Vec::with_capacity(raw.sources.len());
        for (index, source) in raw.sources.into_iter().enumerate() {
            let parsed = parse_source(source, index, base, &locate)?;
            if sources.iter().any(|s: &SourceConfig| s.id == parsed.id) {
                return Err(locate.error(
                    Some(("sources", index)),
                    "id",
                    &format!(
                        "source id `{}` is used twice; ids must be unique",
                        parsed.id
                    ),
                ));
            }
            sources.push(parsed);
        }
        let netbox = raw
            .netbox
            .map(|nb| parse_netbox(nb, base, &locate))
            .transpose()?;
        // No section: the local model, when it is installed.
        let embeddings = Some(parse_embeddings(
            raw.embeddings.unwrap_or_default(),
            base,
            &locate,
        )?);
        let dashboard = parse_dashboard(raw.dashboard.unwrap_or_default(), &locate)?;
        let health = parse_health(raw.health.unwrap_or_default(), &locate)?;
        let primary_sources = parse_machines(raw.machines.unwrap_or_default(), &locate)?;
        let config = Config {
            path: None,
            general,
            sources,
            netbox,
            embeddings,
            dashboard,
            health,
            primary_sources,
        };
        register_secret_env_names(&config);
        Ok(config)
    }

    /// How machines pick their primary record and judge health, as configured.
    pub fn machine_rules(&self) -> crate::machines::MachineRules {
        crate::machines::MachineRules {
            primary: crate::machines::PrimaryRules::with_overrides(self.primary_sources.clone()),
            health: self.health.clone(),
        }
    }

    /// The database path: `--db` wins, then `[general] database`, then the XDG default.
    pub fn database_path(&self, explicit: Option<&Path>) -> PathBuf {
        explicit
            .map(Path::to_path_buf)
            .or_else(|| self.general.database.clone())
            .unwrap_or_else(default_database_path)
    }

    /// One source by id.
    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/infradeck/config.toml"))
    }

    #[test]
    fn full_source_parses() {
        let config = parse(
            r#"
[general]
stale_after_days = 30

[[sources]]
kind = "vcenter"
id = "vc-prod"
url = "https://vc.example.com/"
username = "svc"
password_env = "VC_PASSWORD"
interval = "15m"
[sources.tls]
ca_file = "ca.pem"
"#,
        )
        .unwrap();
        let source = &config.sources[0];
        assert_eq!(source.kind, SourceKind::Vcenter);
        assert_eq!(source.url, "https://vc.example.com");
        assert_eq!(source.interval, Duration::from_secs(900));
        assert_eq!(source.password, Some(SecretRef::Env("VC_PASSWORD".into())));
        assert_eq!(
            source.tls.ca_file,
            Some(PathBuf::from("/etc/infradeck/ca.pem"))
        );
        assert_eq!(config.general.stale_after_days, 30);
    }

    #[test]
    fn literal_password_is_refused_with_line_and_fix() {
        let err = parse(
            "[[sources]]\nkind = \"foreman\"\nid = \"fm\"\nurl = \"https://fm\"\nusername = \"a\"\npassword = \"hunter2\"\n",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(6));
        assert_eq!(err.key.as_deref(), Some("sources[0].password"));
        assert!(err.message.contains("password_env"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn unknown_key_and_bad_value_name_line_and_key() {
        let err = parse("[general]\nstale_after_days = 30\nstale_days = 3\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(3), Some("stale_days"))
        );
        let err = parse("[general]\nstale_after_days = \"soon\"\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(2), Some("stale_after_days"))
        );
        let err = parse(
            "[[sources]]\nkind = \"vcenter\"\nid = \"a\"\nurl = \"https://a\"\nusername = \"u\"\npassword_env = \"P\"\ninterval = \"soon\"\n",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(7));
        assert_eq!(err.key.as_deref(), Some("sources[0].interval"));
    }

    #[test]
    fn puppetdb_query_page_size_and_volatile_facts_are_checked_where_they_are_written() {
        let source = |extra: &str| {
            parse(&format!(
                "[[sources]]\nkind = \"puppetdb\"\nid = \"p\"\nurl = \"https://p\"\n{extra}"
            ))
        };
        let config = source(
            "query = '[\"=\", \"environment\", \"production\"]'\npage_size = 50\nvolatile_facts = [\"backup.last_run\"]\n",
        )
        .unwrap();
        let p = &config.sources[0];
        assert_eq!(p.page_size, Some(50));
        assert_eq!(p.query.as_ref().unwrap()[2], "production");
        assert!(p.volatile_facts.iter().any(|f| f == "memory.*.used*"));
        assert_eq!(p.volatile_facts.last().unwrap(), "backup.last_run");
        let bare = source("volatile_facts_defaults = false\n").unwrap();
        assert!(bare.sources[0].volatile_facts.is_empty());

        let err = source("query = '[\"=\", \"environment\"'\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(5), Some("sources[0].query"))
        );
        assert!(err.message.contains("not valid JSON"), "{err}");
        let err = source("query = '{\"a\": 1}'\n").unwrap_err();
        assert!(err.message.contains("AST"), "{err}");
        let err = source("volatile_facts = [\"memory..used\"]\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("sources[0].volatile_facts"));
        let err = source("volatile_facts = [\"*\"]\n").unwrap_err();
        assert!(err.message.contains("every top-level fact"), "{err}");
        let err = source("page_size = 0\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("sources[0].page_size"));
        let err = parse(
            "[[sources]]\nkind = \"oxidized\"\nid = \"o\"\nurl = \"https://o\"\nquery = '[]'\n",
        )
        .unwrap_err();
        assert!(
            err.message.contains("does not apply to a oxidized source"),
            "{err}"
        );
    }

    #[test]
    fn a_password_cmd_does_not_see_other_sources_secret_variables() {
        // A name no other test uses: the process environment is shared by the test threads.
        let name = "INFRADECK_TEST_OTHER_SOURCE_SECRET";
        // SAFETY: set once, read only by children of this test; no other test reads it.
        unsafe { std::env::set_var(name, "leaked") };
        let config = parse(&format!(
            "[[sources]]\nkind = \"puppetdb\"\nid = \"a\"\nurl = \"https://a\"\ntoken_env = \"{name}\"\n\n[[sources]]\nkind = \"puppetdb\"\nid = \"b\"\nurl = \"https://b\"\ntoken_cmd = \"printf %s \\\"${{{name}:-not-inherited}}\\\"\"\n"
        ))
        .unwrap();
        let from_cmd = config.sources[1].token.as_ref().unwrap().resolve().unwrap();
        assert_eq!(from_cmd.expose(), "not-inherited");
        let from_env = config.sources[0].token.as_ref().unwrap().resolve().unwrap();
        assert_eq!(from_env.expose(), "leaked");
    }

    #[test]
    fn secrets_resolve_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let secret = SecretRef::File(file).resolve().unwrap();
        assert_eq!(secret.expose(), "s3cret");
        assert!(!format!("{secret:?} {secret}").contains("s3cret"));
        let secret = SecretRef::Command("printf 'from-cmd\\n'".into())
            .resolve()
            .unwrap();
        assert_eq!(secret.expose(), "from-cmd");
        let err = SecretRef::Env("INFRADECK_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("INFRADECK_TEST_SURELY_UNSET"));
        assert!(SecretRef::Command("exit 3".into()).resolve().is_err());
    }

    #[test]
    fn dashboard_patterns_default_compile_and_a_bad_one_names_its_line() {
        let defaults = DashboardConfig::default();
        assert_eq!(defaults.volatile_lines.len(), DEFAULT_VOLATILE_LINES.len());
        assert!(
            defaults
                .volatile_lines
                .iter()
                .any(|r| r.is_match("! Last configuration change at 10:01:02 UTC"))
        );
        assert!(
            !defaults
                .volatile_lines
                .iter()
                .any(|r| r.is_match(" description uplink"))
        );
        let err =
            parse("[dashboard]\nmouse = true\nvolatile_lines = [\"(unclosed\"]\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(3), Some("dashboard.volatile_lines"))
        );
        assert!(err.message.contains("(unclosed"), "{}", err.message);
    }

    #[test]
    fn health_thresholds_primary_sources_and_the_environment_are_checked_by_line_and_key() {
        let config = parse(
            "[dashboard]\nenvironment = \"prod\"\n[health]\nvolume_warn_percent = 80\n\
             [machines.primary]\nvm = [\"foreman\", \"vcenter\"]\n",
        )
        .unwrap();
        assert_eq!(config.dashboard.environment.as_deref(), Some("prod"));
        let rules = config.machine_rules();
        assert_eq!(rules.health.volume_warn_percent, 80.0);
        assert_eq!(rules.health.volume_crit_percent, 95.0);
        assert_eq!(
            rules.primary.order(crate::model::DeviceType::Vm),
            ["foreman", "vcenter"]
        );
        assert_eq!(
            rules.primary.order(crate::model::DeviceType::Server)[0],
            "vcenter",
            "other types keep their defaults"
        );
        let err = parse("[health]\nvolume_crit_percent = 140\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(2), Some("health.volume_crit_percent"))
        );
        let err = parse("[health]\nvolume_warn_percent = 96\n").unwrap_err();
        assert!(
            err.message.contains("volume_crit_percent"),
            "{}",
            err.message
        );
        let err = parse("[machines.primary]\nvm = [\"vsphere\"]\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(2), Some("machines.primary.vm"))
        );
        assert!(err.message.contains("`vsphere`"), "{}", err.message);
        let err = parse("[machines.primary]\nrouters = [\"oxidized\"]\n").unwrap_err();
        assert!(err.message.contains("not a device type"), "{}", err.message);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The shipped example documents every key; it must stay loadable as it is.
    #[test]
    fn config_example_parses_with_one_source_of_every_kind() {
        let text = include_str!("../../../../config.example.toml");
        let config = Config::parse(text, Path::new("config.example.toml")).unwrap();
        for kind in SourceKind::ALL {
            assert!(
                config.sources.iter().any(|s| s.kind == *kind),
                "config.example.toml lacks a {kind} source"
            );
        }
        let netbox = config.netbox.expect("the example has [netbox]");
        assert_eq!(netbox.device_rules.len(), 3);
        assert_eq!(netbox.device_rules[0].datacenter.as_deref(), Some("dc2"));
        assert_eq!(netbox.device_rules[0].site.as_deref(), Some("DC2"));
        assert!(netbox.device_rules[2].skip);
    }

    /// Semantic search: the local model without a section; an old-style section with a `url`
    /// is the HTTP backend; a wrong backend or a missing url names the key.
    #[test]
    fn embeddings_default_to_the_local_model_and_bad_keys_are_named() {
        let config = Config::parse("", Path::new("c.toml")).unwrap();
        let embeddings = config.embeddings.unwrap();
        assert_eq!(embeddings.backend, EmbeddingBackend::Local);
        assert!(embeddings.model_dir.ends_with("all-MiniLM-L6-v2"));
        let text = "[embeddings]\nurl = \"http://127.0.0.1:11434\"\nmodel = \"all-minilm\"\n";
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(config.embeddings.unwrap().backend, EmbeddingBackend::Http);
        let text = "[embeddings]\nbackend = \"local\"\nmodel_dir = \"models/minilm\"\n";
        let config = Config::parse(text, Path::new("/etc/infradeck/c.toml")).unwrap();
        assert_eq!(
            config.embeddings.unwrap().model_dir,
            Path::new("/etc/infradeck/models/minilm")
        );
        let err = Config::parse("[embeddings]\nbackend = \"onnx\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:2: key `embeddings.backend`") && err.contains("`onnx`"),
            "{err}"
        );
        let err = Config::parse("[embeddings]\nbackend = \"http\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key `embeddings.url`") && err.contains("needs a url"),
            "{err}"
        );
    }

    /// A device rule that cannot do anything is an error naming the file, line and rule.
    #[test]
    fn a_bad_device_rule_names_its_line_and_key() {
        let text = "[netbox]\nurl = \"https://nb.example\"\ntoken_env = \"T\"\n\n[[netbox.devices]]\nmatch = { name = \"sw*\" }\nsite = \"DC1\"\n\n[[netbox.devices]]\nmatch = { type = \"vm\" }\nrole = \"x\"\n";
        let err = Config::parse(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:10: key `netbox.devices[1].match`"),
            "{err}"
        );
        assert!(err.contains("server, network_device or storage"), "{err}");
        let text = "[netbox]\nurl = \"https://nb.example\"\ntoken_env = \"T\"\n[[netbox.devices]]\nmatch = { name = \"sw*\" }\n";
        let err = Config::parse(text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the rule sets nothing"), "{err}");
    }
}
