//! Logging to a file, never to the terminal the dashboard draws on.

use std::path::{Path, PathBuf};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Keeps the background log writer alive; dropping it flushes the last lines.
pub struct LogGuard {
    _guard: WorkerGuard,
    pub file: PathBuf,
}

/// Sends `tracing` output to `<dir>/infradeck.log`. `RUST_LOG` wins over `level` when set.
pub fn init(dir: &Path, level: &str) -> std::io::Result<LogGuard> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("infradeck.log");
    let appender = tracing_appender::rolling::never(dir, "infradeck.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // A second init (tests that call into the CLI twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true)
        .try_init();
    Ok(LogGuard {
        _guard: guard,
        file,
    })
}
