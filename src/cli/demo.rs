//! `infradeck demo`: the whole product over a simulated estate, in one command.

use super::Context;
use infradeck_core::config::Config;
use infradeck_sim::{SimOptions, Simulators};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Options of `infradeck demo`.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    pub scale: usize,
    pub seed: u64,
    pub dir: Option<PathBuf>,
    /// Print a summary instead of opening the dashboard.
    pub headless: bool,
    /// In the dashboard: how often the estate changes (and is synced again).
    pub advance_every: Option<std::time::Duration>,
}

/// Starts the simulators, writes a config and a fresh database in a scratch directory, and syncs
/// everything with live progress and a summary.
pub fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("infradeck-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("config.toml");
    let database = dir.join("inventory.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Shared with the task that advances the estate while the dashboard is open.
    let sims = std::sync::Arc::new(runtime.block_on(Simulators::start(&SimOptions {
        scale: args.scale,
        seed: args.seed,
        ..SimOptions::default()
    }))?);
    // Semantic search by the model in-process when it is installed, else by the simulated
    // embeddings endpoint.
    let model_dir = infradeck_core::config::default_model_dir();
    let local_model = infradeck_core::search::local_model_present(&model_dir);
    sims.write_config_with(&config_path, Some(&database), local_model)?;
    eprintln!(
        "infradeck demo: {} simulated VMs (seed {}) behind {} simulated systems",
        args.scale,
        args.seed,
        infradeck_sim::SimKind::ALL.len()
    );
    for line in sims.describe() {
        eprintln!("  {line}");
    }
    if local_model {
        eprintln!(
            "  semantic search: {} in-process ({})",
            infradeck_minilm::MODEL_NAME,
            model_dir.display()
        );
    } else {
        eprintln!(
            "  semantic search: the simulated embeddings endpoint (for the real model: {})",
            infradeck_minilm::install_hint(&model_dir)
        );
    }
    eprintln!(
        "  config:   {}\n  database: {}\n",
        config_path.display(),
        database.display()
    );
    let mut config = Config::load(&config_path, true)?;
    let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let advancing = args.advance_every.filter(|_| interactive && !args.headless);
    if let Some(every) = advancing {
        // Each step is synced soon after it happens: the sources' interval is the step's.
        for source in &mut config.sources {
            source.interval = every;
        }
        let sims = sims.clone();
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                sims.advance();
            }
        });
        eprintln!(
            "  the estate changes every {} (VMs created, deleted, moved; configs edited): watch :changes\n",
            humanize(every)
        );
    }
    let ctx = Context {
        database_path: config.database_path(None),
        config,
        config_path: config_path.clone(),
        config_found: true,
        log_file: None,
        read_only: false,
        database_read_only: false,
    };
    if interactive && !args.headless {
        // The dashboard opens at once and the first sync of every source runs under it.
        let sources = ctx.config.sources.clone();
        let result = super::dashboard(&ctx, sources, advancing.is_some());
        drop(runtime);
        if result.is_ok() {
            println!(
                "infradeck demo: the database stays at {}",
                database.display()
            );
            println!(
                "reopen it with:  infradeck --config {} (while `infradeck sim` serves the sources)",
                config_path.display()
            );
        }
        return result;
    }
    let result = super::sync::sync(&ctx, &super::sync::SyncArgs::default());
    println!();
    super::info(&ctx)?;
    println!(
        "\nexplore it:  infradeck --config {} devices web",
        config_path.display()
    );
    println!(
        "             infradeck --config {} history",
        config_path.display()
    );
    // The simulators live on `runtime`'s worker threads until here.
    drop(runtime);
    result
}

/// `2m`, `90s`: a duration as the options spell it.
fn humanize(every: std::time::Duration) -> String {
    let secs = every.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}
