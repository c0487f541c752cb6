//! The command-line subcommands. `main.rs` parses arguments and calls one function here per
//! subcommand; each prints for a person (or JSON with `--json`) and returns an error to report.

mod bench;
mod changes;
mod configs;
mod dashboard;
mod db;
mod demo;
mod devices;
mod info;
mod model;
mod netbox;
mod search;
mod sim;
mod sync;
pub mod table;

pub use bench::{BenchArgs, bench, bench_dashboard};
pub use changes::{ChangesArgs, changes_command};
pub use configs::{DiffArgs, configs, diff};
pub use dashboard::dashboard;
pub use db::{MaintainArgs, db_check, db_maintain};
pub use demo::{DemoArgs, demo};
pub use devices::{DevicesArgs, conflicts, devices, show};
pub use info::info;
pub use model::{model_import, model_status};
pub use netbox::{NetboxArgs, netbox, parse_items};
pub use search::{SearchArgs, parse_kind, read, related, search};
pub use sim::{SimArgs, sim, sim_options};
/// An error that ends the command with its own exit code (documented in the README), so a script
/// can tell "done, but the source's sweep was refused" from a failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitWith {
    pub code: u8,
    pub(crate) message: String,
}

/// `sync`: every run ended, but at least one sweep was refused by the mass-removal guard.
pub(crate) const EXIT_SWEEP_REFUSED: u8 = 3;

pub use sync::{HistoryArgs, SyncArgs, break_lock, history, select_sources, sync};

use anyhow::Context as _;
use infradeck_core::config::{self, Config};
use infradeck_core::store::{OpenOptions, Store};
use std::path::{Path, PathBuf};

/// What every subcommand needs: the loaded configuration and where things live.
#[derive(Debug)]
pub struct Context {
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    pub(crate) config_found: bool,
    pub(crate) database_path: PathBuf,
    pub log_file: Option<PathBuf>,
    pub(crate) read_only: bool,
    /// The database exists but this user cannot write it (or the directory its WAL files
    /// need): it is opened read-only, and every write is refused up front.
    pub(crate) database_read_only: bool,
}

/// Prints `value` as pretty JSON, with the characters that could act on a terminal escaped.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        infradeck_core::sanitize::json_for_terminal(&serde_json::to_string_pretty(value)?)
    );
    Ok(())
}

impl Context {
    /// Loads the config (`explicit` from `--config`/`INFRADECK_CONFIG`) and resolves the database
    /// path (`db` from `--db`).
    pub fn load(
        explicit: Option<&Path>,
        db: Option<&Path>,
        read_only: bool,
    ) -> anyhow::Result<Context> {
        let (config_path, must_exist) = config::resolve_config_path(explicit);
        let config = Config::load(&config_path, must_exist)?;
        let config_found = config.path.is_some();
        let database_path = config.database_path(db);
        let database_read_only = infradeck_core::store::is_unwritable(&database_path);
        if database_read_only {
            eprintln!(
                "note: {} is not writable by this user: opened read-only (reading works; syncs, reviews and maintenance do not)",
                database_path.display()
            );
        }
        let read_only = read_only || config.general.read_only || database_read_only;
        Ok(Context {
            config,
            config_path,
            config_found,
            database_path,
            log_file: None,
            read_only,
            database_read_only,
        })
    }

    /// Opens the database, creating and migrating it as needed (read-only when this user
    /// cannot write it: a shared copy, a snapshot).
    pub(crate) fn open_store(&self) -> anyhow::Result<Store> {
        let options = OpenOptions {
            busy_timeout: self.config.general.busy_timeout,
        };
        let opened = if self.database_read_only {
            Store::open_read_only(&self.database_path, &options)
        } else {
            Store::open(&self.database_path, &options)
        };
        opened.with_context(|| format!("cannot open database {}", self.database_path.display()))
    }
}
