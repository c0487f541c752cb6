//! Dashboard benchmarks over 100,000 devices (issue: dashboard), drawn into TestBackend at
//! 160×48: process-side start to first frame (target < 200 ms), a filter keystroke to the next
//! frame (target < 16 ms), page down, and peak resident memory (target < 200 MB).
//!
//! The inventory is written by this process; the dashboard is then measured in a child process
//! (this same executable, re-run), so its peak memory is the dashboard's alone.
//!
//! Run with `cargo bench --bench ui`.

use infradeck::bench::{Scratch, dashboard_over, inventory, median, peak_rss_bytes};

const CHILD: &str = "INFRADECK_BENCH_UI_DB";

fn main() -> anyhow::Result<()> {
    let devices: usize = std::env::var("INFRADECK_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    if let Ok(db) = std::env::var(CHILD) {
        return measure(std::path::Path::new(&db), devices);
    }
    let scratch = Scratch::new("ui")?;
    let db = scratch.0.join("inventory.db");
    inventory(devices, &db)?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD, &db)
        .env("INFRADECK_BENCH_DEVICES", devices.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "the measuring child failed");
    Ok(())
}

fn measure(db: &std::path::Path, devices: usize) -> anyhow::Result<()> {
    let figure = dashboard_over(db, devices, 5)?;
    let report = |label: &str, samples: &[std::time::Duration]| {
        let (mid, min, max) = median(samples);
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let p95 = sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)];
        println!(
            "{label:<28} median {:>7.2} ms  p95 {:>7.2}  (min {:.2}, max {:.2}, n={})",
            mid.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            samples.len()
        );
    };
    println!("dashboard over {} devices, 160×48", figure.devices);
    report("open + first frame", &figure.first_frame);
    report("filter keystroke → frame", &figure.keystroke);
    report("page down → frame", &figure.page_down);
    if let Some(rss) = peak_rss_bytes() {
        println!("peak resident memory         {:.0} MB", rss as f64 / 1e6);
    }
    Ok(())
}
