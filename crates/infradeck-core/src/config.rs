//! Configuration: a TOML file at the XDG config path (or `--config` / `INFRADECK_CONFIG`),
//! listing source instances, the NetBox target and housekeeping settings.
//!
//! Secrets never live in the file. A source names where to get one: `password_env` (an
//! environment variable), `password_file` (a file holding only the secret) or `password_cmd`
//! (a command that prints it, such as `pass show vcenter`); the same with `token_*` for tokens.
//! A literal `password` or `token` key is refused with an error that says how to fix it. Every
//! error names the file, the line and the key.

use crate::model::SourceKind;
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
        }
    }
}

/// `[embeddings]`: an OpenAI-compatible `/v1/embeddings` endpoint for semantic search.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsConfig {
    /// Base URL; requests go to `{url}/v1/embeddings`.
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

/// Where a secret comes from. Holds only the reference, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    Command(String),
}

/// A resolved secret. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it (an auth header).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Wraps a value known at run time, such as a simulator's generated password.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("environment variable {0} is not set (named by password_env/token_env)")]
    EnvMissing(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret command `{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl SecretRef {
    /// Reads the secret now. Trailing newlines (as `echo` and `pass` print) are dropped.
    pub(crate) fn resolve(&self) -> Result<Secret, SecretError> {
        let (value, origin) = match self {
            SecretRef::Env(name) => (
                std::env::var(name).map_err(|_| SecretError::EnvMissing(name.clone()))?,
                format!("environment variable {name}"),
            ),
            SecretRef::File(path) => {
                warn_if_readable_by_others(path);
                (
                    std::fs::read_to_string(path).map_err(|source| SecretError::File {
                        path: path.clone(),
                        source,
                    })?,
                    format!("file {}", path.display()),
                )
            }
            SecretRef::Command(command) => {
                let mut child = std::process::Command::new("sh");
                child
                    .arg("-c")
                    .arg(command)
                    .stdin(std::process::Stdio::null());
                // The command gets our environment minus every secret the config reads from
                // one: a `pass show vcenter` has no business seeing NetBox's token.
                for name in secret_env_names() {
                    child.env_remove(name);
                }
                let output = child.output().map_err(|e| SecretError::Command {
                    command: command.clone(),
                    detail: e.to_string(),
                })?;
                if !output.status.success() {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    return Err(SecretError::Command {
                        command: command.clone(),
                        detail: format!(
                            "{} ({})",
                            output.status,
                            stderr.lines().next().unwrap_or("no message")
                        ),
                    });
                }
                (
                    String::from_utf8_lossy(&output.stdout).into_owned(),
                    format!("command `{command}`"),
                )
            }
        };
        let trimmed = value.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(Secret(trimmed.to_string()))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "secret file is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

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

// ---- raw file shapes -------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    general: RawGeneral,
    #[serde(default)]
    sources: Vec<RawSource>,
    netbox: Option<RawNetbox>,
    embeddings: Option<RawEmbeddings>,
    dashboard: Option<RawDashboard>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    volatile_lines: Option<Vec<String>>,
    mouse: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmbeddings {
    url: String,
    model: String,
    dimensions: Option<usize>,
    token: Option<toml::Value>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    token_cmd: Option<String>,
    #[serde(default)]
    tls: RawTls,
    timeout_secs: Option<u64>,
    chunk_chars: Option<usize>,
    overlap_chars: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneral {
    database: Option<PathBuf>,
    busy_timeout_ms: Option<u64>,
    read_only: Option<bool>,
    stale_after_days: Option<u32>,
    history_retention_days: Option<u32>,
    config_versions_kept: Option<u32>,
    sweep_guard_percent: Option<u32>,
    max_retry_wait_secs: Option<u64>,
    lldp_facts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    insecure_skip_verify: Option<bool>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: String,
    id: String,
    url: String,
    username: Option<String>,
    /// Present only to refuse it with a helpful message.
    password: Option<toml::Value>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    password_cmd: Option<String>,
    /// Present only to refuse it with a helpful message.
    token: Option<toml::Value>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    token_cmd: Option<String>,
    interval: Option<String>,
    enabled: Option<bool>,
    #[serde(default)]
    tls: RawTls,
    max_in_flight: Option<usize>,
    timeout_secs: Option<u64>,
    spaces: Option<Vec<String>>,
    projects: Option<Vec<String>>,
    jql: Option<String>,
    flavor: Option<String>,
    scope: Option<String>,
    vstore: Option<String>,
    query: Option<String>,
    page_size: Option<usize>,
    verify_configs_hours: Option<u32>,
    volatile_facts: Option<Vec<String>>,
    volatile_facts_defaults: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetbox {
    url: String,
    token: Option<toml::Value>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    token_cmd: Option<String>,
    #[serde(default)]
    tls: RawTls,
    tag: Option<String>,
    delete_grace_days: Option<u32>,
    max_deletes: Option<u32>,
    site: Option<String>,
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
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(Config::default());
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
        let embeddings = raw
            .embeddings
            .map(|e| parse_embeddings(e, base, &locate))
            .transpose()?;
        let dashboard = parse_dashboard(raw.dashboard.unwrap_or_default(), &locate)?;
        let config = Config {
            path: None,
            general,
            sources,
            netbox,
            embeddings,
            dashboard,
        };
        register_secret_env_names(&config);
        Ok(config)
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

fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn secret_ref(
    env: Option<String>,
    file: Option<PathBuf>,
    cmd: Option<String>,
    prefix: &str,
    base: &Path,
) -> Result<Option<SecretRef>, String> {
    let refs: Vec<SecretRef> = [
        env.map(SecretRef::Env),
        file.map(|p| SecretRef::File(resolve_path(base, &p))),
        cmd.map(SecretRef::Command),
    ]
    .into_iter()
    .flatten()
    .collect();
    match refs.len() {
        0 => Ok(None),
        1 => Ok(refs.into_iter().next()),
        _ => Err(format!(
            "set only one of {prefix}_env, {prefix}_file and {prefix}_cmd"
        )),
    }
}

/// The environment variables configured configs read secrets from (`*_env`), which no
/// `*_cmd` child inherits.
fn secret_env_registry() -> &'static std::sync::Mutex<std::collections::BTreeSet<String>> {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::BTreeSet<String>>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(Default::default)
}

fn secret_env_names() -> Vec<String> {
    secret_env_registry()
        .lock()
        // A set of names: a panic elsewhere cannot leave it half-written.
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

fn register_secret_env_names(config: &Config) {
    let refs = config
        .sources
        .iter()
        .flat_map(|s| [s.password.as_ref(), s.token.as_ref()])
        .chain(config.netbox.iter().map(|n| Some(&n.token)))
        .chain(config.embeddings.iter().map(|e| e.token.as_ref()))
        .flatten();
    let mut names = secret_env_registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for reference in refs {
        if let SecretRef::Env(name) = reference {
            names.insert(name.clone());
        }
    }
}

fn literal_secret_message(key: &str) -> String {
    format!(
        "a literal secret is not allowed in the config file. Remove `{key}` and name where to read \
         it instead: `{key}_env = \"VARIABLE\"`, `{key}_file = \"/path/to/file\"` (mode 600) or \
         `{key}_cmd = \"pass show ...\"`"
    )
}

fn parse_source(
    raw: RawSource,
    index: usize,
    base: &Path,
    locate: &Locator<'_>,
) -> Result<SourceConfig, ConfigError> {
    let here = Some(("sources", index));
    if raw.password.is_some() {
        return Err(locate.error(here, "password", &literal_secret_message("password")));
    }
    if raw.token.is_some() {
        return Err(locate.error(here, "token", &literal_secret_message("token")));
    }
    let kind: SourceKind = raw
        .kind
        .parse()
        .map_err(|e: crate::model::UnknownValue| locate.error(here, "kind", &e.to_string()))?;
    if raw.id.is_empty()
        || !raw
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(locate.error(
            here,
            "id",
            "must be non-empty and use only letters, digits, `-`, `_` and `.`",
        ));
    }
    let url = check_url(&raw.url, locate, here)?;
    let password = secret_ref(
        raw.password_env,
        raw.password_file,
        raw.password_cmd,
        "password",
        base,
    )
    .map_err(|m| locate.error(here, "password_env", &m))?;
    let token = secret_ref(raw.token_env, raw.token_file, raw.token_cmd, "token", base)
        .map_err(|m| locate.error(here, "token_env", &m))?;
    let interval = match raw.interval.as_deref() {
        None => Duration::from_secs(3600),
        Some(text) => parse_duration(text).map_err(|m| locate.error(here, "interval", &m))?,
    };
    let needs_login = matches!(
        kind,
        SourceKind::Vcenter | SourceKind::Foreman | SourceKind::Netapp | SourceKind::Dorado
    );
    if needs_login && (raw.username.is_none() || password.is_none()) {
        return Err(locate.error(
            here,
            "username",
            &format!("a {kind} source needs `username` and one of password_env/password_file/password_cmd"),
        ));
    }
    let only_for = |key: &str, present: bool, kinds: &[SourceKind]| -> Result<(), ConfigError> {
        if present && !kinds.contains(&kind) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Err(locate.error(
                here,
                key,
                &format!(
                    "does not apply to a {kind} source (only to {})",
                    names.join(", ")
                ),
            ));
        }
        Ok(())
    };
    only_for("spaces", raw.spaces.is_some(), &[SourceKind::Confluence])?;
    only_for("projects", raw.projects.is_some(), &[SourceKind::Jira])?;
    only_for("jql", raw.jql.is_some(), &[SourceKind::Jira])?;
    only_for(
        "flavor",
        raw.flavor.is_some(),
        &[SourceKind::Jira, SourceKind::Confluence],
    )?;
    only_for("scope", raw.scope.is_some(), &[SourceKind::Dorado])?;
    only_for("vstore", raw.vstore.is_some(), &[SourceKind::Dorado])?;
    only_for("query", raw.query.is_some(), &[SourceKind::Puppetdb])?;
    only_for(
        "page_size",
        raw.page_size.is_some(),
        &[
            SourceKind::Puppetdb,
            SourceKind::Foreman,
            SourceKind::Dorado,
        ],
    )?;
    only_for(
        "verify_configs_hours",
        raw.verify_configs_hours.is_some(),
        &[SourceKind::Oxidized],
    )?;
    let fact_sources = [SourceKind::Puppetdb, SourceKind::Foreman];
    only_for(
        "volatile_facts",
        raw.volatile_facts.is_some(),
        &fact_sources,
    )?;
    only_for(
        "volatile_facts_defaults",
        raw.volatile_facts_defaults.is_some(),
        &fact_sources,
    )?;
    let query = match &raw.query {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value @ serde_json::Value::Array(_)) => Some(value),
            Ok(_) => {
                return Err(locate.error(
                    here,
                    "query",
                    "must be a PuppetDB AST query: a JSON array such as [\"=\", \"environment\", \"production\"]",
                ));
            }
            Err(e) => {
                return Err(locate.error(here, "query", &format!("is not valid JSON: {e}")));
            }
        },
    };
    if raw.page_size.is_some_and(|n| n == 0 || n > 10_000) {
        return Err(locate.error(here, "page_size", "must be between 1 and 10000"));
    }
    let mut volatile_facts: Vec<String> = if raw.volatile_facts_defaults.unwrap_or(true) {
        DEFAULT_VOLATILE_FACTS
            .iter()
            .map(|p| p.to_string())
            .collect()
    } else {
        Vec::new()
    };
    for pattern in raw.volatile_facts.unwrap_or_default() {
        check_fact_pattern(&pattern).map_err(|m| locate.error(here, "volatile_facts", &m))?;
        volatile_facts.push(pattern);
    }
    if let Some(flavor) = &raw.flavor
        && flavor != "server"
        && flavor != "cloud"
    {
        return Err(locate.error(here, "flavor", "must be `server` or `cloud`"));
    }
    if kind == SourceKind::Confluence && raw.spaces.as_ref().is_none_or(|s| s.is_empty()) {
        return Err(locate.error(
            here,
            "spaces",
            "a confluence source needs at least one space key",
        ));
    }
    if kind == SourceKind::Jira
        && raw.projects.as_ref().is_none_or(|p| p.is_empty())
        && raw.jql.is_none()
    {
        return Err(locate.error(here, "projects", "a jira source needs `projects` or `jql`"));
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(4);
    if max_in_flight == 0 || max_in_flight > 64 {
        return Err(locate.error(here, "max_in_flight", "must be between 1 and 64"));
    }
    let tls = parse_tls(raw.tls, base, locate, here)?;
    Ok(SourceConfig {
        kind,
        id: raw.id,
        url,
        username: raw.username,
        password,
        token,
        interval,
        enabled: raw.enabled.unwrap_or(true),
        tls,
        max_in_flight,
        timeout: Duration::from_secs(raw.timeout_secs.unwrap_or(60)),
        spaces: raw.spaces.unwrap_or_default(),
        projects: raw.projects.unwrap_or_default(),
        jql: raw.jql,
        flavor: raw.flavor,
        scope: raw.scope,
        vstore: raw.vstore,
        query,
        page_size: raw.page_size,
        volatile_facts,
        verify_configs_hours: raw.verify_configs_hours.unwrap_or(24),
    })
}

fn parse_tls(
    raw: RawTls,
    base: &Path,
    locate: &Locator<'_>,
    here: Option<(&str, usize)>,
) -> Result<TlsConfig, ConfigError> {
    if raw.client_cert.is_some() != raw.client_key.is_some() {
        return Err(locate.error(
            here,
            "client_cert",
            "set both client_cert and client_key, or neither",
        ));
    }
    Ok(TlsConfig {
        ca_file: raw.ca_file.map(|p| resolve_path(base, &p)),
        insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
        client_cert: raw.client_cert.map(|p| resolve_path(base, &p)),
        client_key: raw.client_key.map(|p| resolve_path(base, &p)),
    })
}

fn parse_netbox(
    raw: RawNetbox,
    base: &Path,
    locate: &Locator<'_>,
) -> Result<NetboxConfig, ConfigError> {
    let here = Some(("netbox", 0));
    if raw.token.is_some() {
        return Err(locate.error(here, "token", &literal_secret_message("token")));
    }
    let url = check_url(&raw.url, locate, here)?;
    let token = secret_ref(raw.token_env, raw.token_file, raw.token_cmd, "token", base)
        .map_err(|m| locate.error(here, "token_env", &m))?
        .ok_or_else(|| {
            locate.error(
                here,
                "token_env",
                "NetBox needs one of token_env, token_file or token_cmd",
            )
        })?;
    Ok(NetboxConfig {
        url,
        token,
        tls: parse_tls(raw.tls, base, locate, here)?,
        tag: raw.tag.unwrap_or_else(|| "infradeck".to_string()),
        delete_grace_days: raw.delete_grace_days.unwrap_or(7),
        max_deletes: raw.max_deletes.unwrap_or(10),
        site: match raw.site.map(|s| s.trim().to_string()) {
            Some(site) if site.is_empty() => {
                return Err(locate.error(here, "site", "the site name is empty"));
            }
            site => site,
        },
    })
}

fn parse_dashboard(
    raw: RawDashboard,
    locate: &Locator<'_>,
) -> Result<DashboardConfig, ConfigError> {
    let mut dashboard = DashboardConfig::default();
    if let Some(patterns) = raw.volatile_lines {
        dashboard.volatile_lines = patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p).map_err(|e| {
                    locate.error(
                        Some(("dashboard", 0)),
                        "volatile_lines",
                        &format!("`{p}` is not a valid regular expression: {e}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    dashboard.mouse = raw.mouse.unwrap_or(false);
    Ok(dashboard)
}

fn parse_embeddings(
    raw: RawEmbeddings,
    base: &Path,
    locate: &Locator<'_>,
) -> Result<EmbeddingsConfig, ConfigError> {
    let here = Some(("embeddings", 0));
    if raw.token.is_some() {
        return Err(locate.error(here, "token", &literal_secret_message("token")));
    }
    let url = check_url(&raw.url, locate, here)?;
    let token = secret_ref(raw.token_env, raw.token_file, raw.token_cmd, "token", base)
        .map_err(|m| locate.error(here, "token_env", &m))?;
    let dimensions = raw.dimensions.unwrap_or(384);
    if !(8..=8192).contains(&dimensions) {
        return Err(locate.error(here, "dimensions", "must be between 8 and 8192"));
    }
    let chunk_chars = raw.chunk_chars.unwrap_or(1000);
    let overlap_chars = raw.overlap_chars.unwrap_or(200);
    if chunk_chars < 100 || overlap_chars >= chunk_chars {
        return Err(locate.error(
            here,
            "overlap_chars",
            "chunk_chars must be at least 100 and overlap_chars smaller than it",
        ));
    }
    Ok(EmbeddingsConfig {
        url,
        model: raw.model,
        dimensions,
        token,
        tls: parse_tls(raw.tls, base, locate, here)?,
        timeout: Duration::from_secs(raw.timeout_secs.unwrap_or(30)),
        chunk_chars,
        overlap_chars,
    })
}

/// A base URL without its trailing slash, or an error at `url`.
fn check_url(
    url: &str,
    locate: &Locator<'_>,
    here: Option<(&str, usize)>,
) -> Result<String, ConfigError> {
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(locate.error(here, "url", "must start with http:// or https://"));
    }
    Ok(url)
}

/// Parses `90s`, `15m`, `1h30m`, `2d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "`{text}` is not a duration; use forms like 90s, 15m, 1h30m, 2d"
                ));
            }
        };
        let value: u64 = number.parse().map_err(|_| {
            format!("`{text}` is not a duration; use forms like 90s, 15m, 1h30m, 2d")
        })?;
        total += value * unit;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(format!(
            "`{text}` is not a duration; use forms like 90s, 15m, 1h30m, 2d"
        ));
    }
    Ok(Duration::from_secs(total))
}

// ---- locating errors in the file -------------------------------------------------------------

struct Locator<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Locator<'_> {
    /// An error about `key` in the `index`-th `[table]`/`[[table]]` block (or the whole file).
    fn error(&self, table: Option<(&str, usize)>, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.find_key(table, key),
            key: Some(match table {
                Some(("sources", index)) => format!("sources[{index}].{key}"),
                Some((name, _)) => format!("{name}.{key}"),
                None => key.to_string(),
            }),
            message: message.to_string(),
        }
    }

    fn find_key(&self, table: Option<(&str, usize)>, key: &str) -> Option<usize> {
        let lines: Vec<&str> = self.text.lines().collect();
        let (start, end) = match table {
            None => (0, lines.len()),
            Some((name, index)) => {
                let header = |l: &str| {
                    let t = l.trim();
                    t == format!("[[{name}]]") || t == format!("[{name}]")
                };
                let start = lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| header(l))
                    .nth(index)
                    .map(|(i, _)| i)?;
                let end = lines
                    .iter()
                    .enumerate()
                    .skip(start + 1)
                    .find(|(_, l)| {
                        let t = l.trim();
                        t.starts_with('[') && !t.starts_with(&format!("[{name}."))
                    })
                    .map_or(lines.len(), |(i, _)| i);
                (start, end)
            }
        };
        let key_line = lines[start..end].iter().position(|l| {
            let t = l.trim_start();
            t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        Some(key_line.map_or(start, |i| start + i) + 1)
    }
}

fn toml_error(text: &str, file: &Path, err: &toml::de::Error) -> ConfigError {
    let Some(span) = err.span() else {
        return ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: err.message().to_string(),
        };
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line_number = before.matches('\n').count() + 1;
    let line_text = text.lines().nth(line_number - 1).unwrap_or("");
    let spanned = text.get(span.clone()).unwrap_or("").trim();
    let key = if let Some((lhs, _)) = line_text.split_once('=') {
        lhs.trim().to_string()
    } else if !spanned.is_empty() && !spanned.contains('\n') {
        spanned.trim_matches(|c| c == '[' || c == ']').to_string()
    } else {
        String::new()
    };
    let section = text
        .lines()
        .take(line_number)
        .filter(|l| l.trim_start().starts_with('['))
        .last()
        .map(|l| l.trim().to_string());
    let message = match section {
        Some(section) => format!("{} (in {section})", err.message()),
        None => err.message().to_string(),
    };
    ConfigError {
        file: file.to_path_buf(),
        line: Some(line_number),
        key: (!key.is_empty()).then_some(key),
        message,
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
        let text = include_str!("../../../config.example.toml");
        let config = Config::parse(text, Path::new("config.example.toml")).unwrap();
        for kind in SourceKind::ALL {
            assert!(
                config.sources.iter().any(|s| s.kind == *kind),
                "config.example.toml lacks a {kind} source"
            );
        }
        assert!(config.netbox.is_some());
    }
}
