//! From the raw file shapes to the checked configuration: per-kind keys, URLs, durations, paths
//! relative to the file, and errors that name the file, the line and the key.

use super::*;

pub(super) fn resolve_path(base: &Path, path: &Path) -> PathBuf {
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

pub(super) fn parse_source(
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

pub(super) fn parse_tls(
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

pub(super) fn parse_netbox(
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
        reviewer: raw
            .reviewer
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty()),
        device_rules: raw
            .devices
            .into_iter()
            .enumerate()
            .map(|(index, rule)| parse_device_rule(rule, index, locate))
            .collect::<Result<_, _>>()?,
    })
}

fn parse_device_rule(
    raw: super::raw::RawDeviceRule,
    index: usize,
    locate: &Locator<'_>,
) -> Result<super::DeviceRule, ConfigError> {
    let here = Some(("netbox.devices", index));
    // An empty value would silently match nothing or name nothing: say so instead.
    let text = |key: &str, value: Option<String>| -> Result<Option<String>, ConfigError> {
        match value.map(|v| v.trim().to_string()) {
            Some(v) if v.is_empty() => Err(locate.error(
                here,
                key,
                "is empty; leave the key out to not match or set it",
            )),
            other => Ok(other),
        }
    };
    let m = raw.matcher;
    let device_type = match text("match", m.device_type)? {
        None => None,
        Some(t) => match t.parse::<crate::model::DeviceType>().ok() {
            Some(
                ty @ (crate::model::DeviceType::Server
                | crate::model::DeviceType::NetworkDevice
                | crate::model::DeviceType::Storage),
            ) => Some(ty),
            _ => {
                return Err(locate.error(
                    here,
                    "match",
                    &format!(
                        "type `{t}` is not a device kind NetBox devices are made of: \
                         server, network_device or storage"
                    ),
                ));
            }
        },
    };
    let rule = super::DeviceRule {
        source: text("match", m.source)?,
        device_type,
        name: text("match", m.name)?,
        cluster: text("match", m.cluster)?,
        datacenter: text("match", m.datacenter)?,
        group: text("match", m.group)?,
        hostgroup: text("match", m.hostgroup)?,
        location: text("match", m.location)?,
        site: text("site", raw.site)?,
        role: text("role", raw.role)?,
        manufacturer: text("manufacturer", raw.manufacturer)?,
        model: text("device_type", raw.device_type)?,
        platform: text("platform", raw.platform)?,
        skip: raw.skip.unwrap_or(false),
    };
    let sets = rule.skip
        || [
            &rule.site,
            &rule.role,
            &rule.manufacturer,
            &rule.model,
            &rule.platform,
        ]
        .iter()
        .any(|v| v.is_some());
    if !sets {
        return Err(locate.error(
            here,
            "match",
            "the rule sets nothing: give it site, role, manufacturer, device_type, platform or skip",
        ));
    }
    Ok(rule)
}

pub(super) fn parse_dashboard(
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
    dashboard.environment = match raw.environment.map(|e| e.trim().to_string()) {
        Some(name) if name.is_empty() => {
            return Err(locate.error(
                Some(("dashboard", 0)),
                "environment",
                "the environment name is empty; leave the key out for none",
            ));
        }
        name => name,
    };
    dashboard.landing = match raw.landing.as_deref().map(str::trim) {
        None | Some("auto") => super::Landing::Auto,
        Some("changes") => super::Landing::Changes,
        Some("devices") => super::Landing::Devices,
        Some(other) => {
            return Err(locate.error(
                Some(("dashboard", 0)),
                "landing",
                &format!("`{other}` is not a landing page; use auto, changes or devices"),
            ));
        }
    };
    Ok(dashboard)
}

pub(super) fn parse_health(
    raw: RawHealth,
    locate: &Locator<'_>,
) -> Result<crate::machines::HealthRules, ConfigError> {
    let defaults = crate::machines::HealthRules::default();
    let rules = crate::machines::HealthRules {
        volume_warn_percent: raw
            .volume_warn_percent
            .unwrap_or(defaults.volume_warn_percent),
        volume_crit_percent: raw
            .volume_crit_percent
            .unwrap_or(defaults.volume_crit_percent),
        snapshot_warn_days: raw
            .snapshot_warn_days
            .unwrap_or(defaults.snapshot_warn_days),
    };
    for (key, value) in [
        ("volume_warn_percent", rules.volume_warn_percent),
        ("volume_crit_percent", rules.volume_crit_percent),
    ] {
        if !(0.0..=100.0).contains(&value) {
            return Err(locate.error(Some(("health", 0)), key, "must be between 0 and 100"));
        }
    }
    if rules.volume_warn_percent > rules.volume_crit_percent {
        return Err(locate.error(
            Some(("health", 0)),
            "volume_warn_percent",
            "must not be above volume_crit_percent",
        ));
    }
    Ok(rules)
}

pub(super) fn parse_machines(
    raw: RawMachines,
    locate: &Locator<'_>,
) -> Result<std::collections::BTreeMap<crate::model::DeviceType, Vec<String>>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for (type_name, sources) in raw.primary.unwrap_or_default() {
        let Some(device_type) = crate::machines::device_type_named(&type_name) else {
            return Err(locate.error(
                Some(("machines.primary", 0)),
                &type_name,
                "not a device type (vm, server, network, storage, cluster, container)",
            ));
        };
        for source in &sources {
            if source.parse::<SourceKind>().is_err() {
                return Err(locate.error(
                    Some(("machines.primary", 0)),
                    &type_name,
                    &format!(
                        "`{source}` is not a source kind ({})",
                        SourceKind::ALL
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        out.insert(device_type, sources);
    }
    Ok(out)
}

pub(super) fn parse_embeddings(
    raw: RawEmbeddings,
    base: &Path,
    locate: &Locator<'_>,
) -> Result<EmbeddingsConfig, ConfigError> {
    let here = Some(("embeddings", 0));
    if raw.token.is_some() {
        return Err(locate.error(here, "token", &literal_secret_message("token")));
    }
    // A section with a `url` and no `backend` is the HTTP backend, as before `backend` existed.
    let backend = match (raw.backend.as_deref(), &raw.url) {
        (Some("local"), _) | (None, None) => EmbeddingBackend::Local,
        (Some("http"), _) | (None, Some(_)) => EmbeddingBackend::Http,
        (Some(other), _) => {
            return Err(locate.error(
                here,
                "backend",
                &format!("`{other}` is not a backend: `local` (the model in-process) or `http`"),
            ));
        }
    };
    let url = match (&backend, &raw.url) {
        (EmbeddingBackend::Http, Some(url)) => check_url(url, locate, here)?,
        (EmbeddingBackend::Http, None) => {
            return Err(locate.error(here, "url", "the http backend needs a url"));
        }
        (EmbeddingBackend::Local, _) => String::new(),
    };
    let model = match (&backend, raw.model) {
        (EmbeddingBackend::Http, Some(model)) => model,
        (EmbeddingBackend::Http, None) => {
            return Err(locate.error(here, "model", "the http backend needs a model name"));
        }
        (EmbeddingBackend::Local, _) => String::new(),
    };
    let model_dir = raw
        .model_dir
        .map(|d| resolve_path(base, &d))
        .unwrap_or_else(super::default_model_dir);
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
        backend,
        model_dir,
        url,
        model,
        dimensions,
        token,
        tls: parse_tls(raw.tls, base, locate, here)?,
        timeout: Duration::from_secs(raw.timeout_secs.unwrap_or(30)),
        chunk_chars,
        overlap_chars,
    })
}

/// A base URL without its trailing slash, or an error at `url`.
pub(super) fn check_url(
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

pub(super) struct Locator<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
}

impl Locator<'_> {
    /// An error about `key` in the `index`-th `[table]`/`[[table]]` block (or the whole file).
    pub(super) fn error(
        &self,
        table: Option<(&str, usize)>,
        key: &str,
        message: &str,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.find_key(table, key),
            key: Some(match table {
                Some(("sources", index)) => format!("sources[{index}].{key}"),
                Some(("netbox.devices", index)) => format!("netbox.devices[{index}].{key}"),
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

pub(super) fn toml_error(text: &str, file: &Path, err: &toml::de::Error) -> ConfigError {
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
