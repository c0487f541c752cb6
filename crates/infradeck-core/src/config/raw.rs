//! The file's shapes as TOML gives them, before checking: every key optional, unknown keys
//! refused.

use super::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) general: RawGeneral,
    #[serde(default)]
    pub(super) sources: Vec<RawSource>,
    pub(super) netbox: Option<RawNetbox>,
    pub(super) embeddings: Option<RawEmbeddings>,
    pub(super) dashboard: Option<RawDashboard>,
    pub(super) health: Option<RawHealth>,
    pub(super) machines: Option<RawMachines>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) volume_warn_percent: Option<f64>,
    pub(super) volume_crit_percent: Option<f64>,
    pub(super) snapshot_warn_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMachines {
    pub(super) primary: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDashboard {
    pub(super) volatile_lines: Option<Vec<String>>,
    pub(super) mouse: Option<bool>,
    pub(super) environment: Option<String>,
    pub(super) landing: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmbeddings {
    pub(super) backend: Option<String>,
    pub(super) model_dir: Option<PathBuf>,
    pub(super) url: Option<String>,
    pub(super) model: Option<String>,
    pub(super) dimensions: Option<usize>,
    pub(super) token: Option<toml::Value>,
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) token_cmd: Option<String>,
    #[serde(default)]
    pub(super) tls: RawTls,
    pub(super) timeout_secs: Option<u64>,
    pub(super) chunk_chars: Option<usize>,
    pub(super) overlap_chars: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGeneral {
    pub(super) database: Option<PathBuf>,
    pub(super) busy_timeout_ms: Option<u64>,
    pub(super) read_only: Option<bool>,
    pub(super) stale_after_days: Option<u32>,
    pub(super) history_retention_days: Option<u32>,
    pub(super) config_versions_kept: Option<u32>,
    pub(super) sweep_guard_percent: Option<u32>,
    pub(super) max_retry_wait_secs: Option<u64>,
    pub(super) lldp_facts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) ca_file: Option<PathBuf>,
    pub(super) insecure_skip_verify: Option<bool>,
    pub(super) client_cert: Option<PathBuf>,
    pub(super) client_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) kind: String,
    pub(super) id: String,
    pub(super) url: String,
    pub(super) username: Option<String>,
    /// Present only to refuse it with a helpful message.
    pub(super) password: Option<toml::Value>,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_cmd: Option<String>,
    /// Present only to refuse it with a helpful message.
    pub(super) token: Option<toml::Value>,
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) token_cmd: Option<String>,
    pub(super) interval: Option<String>,
    pub(super) enabled: Option<bool>,
    #[serde(default)]
    pub(super) tls: RawTls,
    pub(super) max_in_flight: Option<usize>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) spaces: Option<Vec<String>>,
    pub(super) projects: Option<Vec<String>>,
    pub(super) jql: Option<String>,
    pub(super) flavor: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) vstore: Option<String>,
    pub(super) query: Option<String>,
    pub(super) page_size: Option<usize>,
    pub(super) verify_configs_hours: Option<u32>,
    pub(super) volatile_facts: Option<Vec<String>>,
    pub(super) volatile_facts_defaults: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetbox {
    pub(super) url: String,
    pub(super) token: Option<toml::Value>,
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) token_cmd: Option<String>,
    #[serde(default)]
    pub(super) tls: RawTls,
    pub(super) tag: Option<String>,
    pub(super) delete_grace_days: Option<u32>,
    pub(super) max_deletes: Option<u32>,
    pub(super) site: Option<String>,
    pub(super) reviewer: Option<String>,
    /// `[[netbox.devices]]`: placement rules for dcim devices, in order.
    #[serde(default)]
    pub(super) devices: Vec<RawDeviceRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeviceRule {
    #[serde(rename = "match", default)]
    pub(super) matcher: RawDeviceMatch,
    pub(super) site: Option<String>,
    pub(super) role: Option<String>,
    pub(super) manufacturer: Option<String>,
    pub(super) device_type: Option<String>,
    pub(super) platform: Option<String>,
    pub(super) skip: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeviceMatch {
    pub(super) source: Option<String>,
    #[serde(rename = "type")]
    pub(super) device_type: Option<String>,
    pub(super) name: Option<String>,
    pub(super) cluster: Option<String>,
    pub(super) datacenter: Option<String>,
    pub(super) group: Option<String>,
    pub(super) hostgroup: Option<String>,
    pub(super) location: Option<String>,
}
