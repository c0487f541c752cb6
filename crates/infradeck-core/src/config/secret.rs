//! Secrets: where one comes from (an environment variable, a file, a command), resolving it
//! when a connector needs it, and keeping it out of `Debug`, logs and the database.

use super::*;

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
pub(super) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "secret file is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
pub(super) fn warn_if_readable_by_others(_path: &Path) {}

pub(super) fn secret_ref(
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
pub(super) fn secret_env_registry() -> &'static std::sync::Mutex<std::collections::BTreeSet<String>>
{
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::BTreeSet<String>>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(Default::default)
}

pub(super) fn secret_env_names() -> Vec<String> {
    secret_env_registry()
        .lock()
        // A set of names: a panic elsewhere cannot leave it half-written.
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

pub(super) fn register_secret_env_names(config: &Config) {
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

pub(super) fn literal_secret_message(key: &str) -> String {
    format!(
        "a literal secret is not allowed in the config file. Remove `{key}` and name where to read \
         it instead: `{key}_env = \"VARIABLE\"`, `{key}_file = \"/path/to/file\"` (mode 600) or \
         `{key}_cmd = \"pass show ...\"`"
    )
}
