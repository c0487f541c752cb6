//! `infradeck sim`: every simulator on loopback until stopped.

use infradeck_sim::{SimOptions, Simulators, apply_fault_spec};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `infradeck sim`.
#[derive(Debug, Clone, Default)]
pub struct SimArgs {
    pub scale: usize,
    pub seed: u64,
    pub faults: Vec<String>,
    pub write_config: Option<PathBuf>,
    pub port: Option<u16>,
    pub advance_every: Option<Duration>,
    pub netbox_seeded: bool,
}

/// Builds the simulator options from the command line, validating every fault term.
pub fn sim_options(args: &SimArgs) -> anyhow::Result<SimOptions> {
    let mut options = SimOptions {
        scale: args.scale,
        seed: args.seed,
        base_port: args.port,
        netbox_seeded: args.netbox_seeded,
        ..SimOptions::default()
    };
    for spec in &args.faults {
        for term in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            apply_fault_spec(&mut options, term)
                .map_err(|e| anyhow::anyhow!("--faults {term}: {e}"))?;
        }
    }
    Ok(options)
}

/// Runs the simulators until Ctrl-C or SIGTERM.
pub fn sim(args: &SimArgs) -> anyhow::Result<()> {
    let options = sim_options(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let started = std::time::Instant::now();
        let sims = Simulators::start(&options).await?;
        for line in sims.describe() {
            println!("{line}");
        }
        if let Some(path) = &args.write_config {
            sims.write_config(path, None)?;
            println!("config written to {} (use: infradeck --config {} sync --all)", path.display(), path.display());
        }
        println!(
            "{} VMs, seed {}, ready in {:.1?}; Ctrl-C stops",
            options.scale,
            options.seed,
            started.elapsed()
        );
        let mut ticker = args.advance_every.map(tokio::time::interval);
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
                _ = async { match ticker.as_mut() { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                    let report = sims.advance();
                    println!(
                        "step {}: +{} VMs, -{} VMs, {} powered off, {} migrated, host offline: {}, {} configs edited, {} new tickets",
                        report.step,
                        report.created_vms.len(),
                        report.deleted_vms.len(),
                        report.powered_off_vms.len(),
                        report.migrated_vms.len(),
                        report.offline_host.as_deref().unwrap_or("none"),
                        report.edited_configs.len(),
                        report.new_tickets.len()
                    );
                }
            }
        }
        sims.stop().await;
        anyhow::Ok(())
    })
}
