//! Sync benchmarks (issue: sync engine).
//!
//! - 10,000 VMs from the vCenter simulator with 2 ms latency per request: end-to-end time, and
//!   requests × latency ÷ concurrency as the floor it should approach (target: within 1.5×);
//! - the reconcile step of a re-sync of 100,000 unchanged devices (target: under 1 s).

use std::time::Duration;

fn main() -> anyhow::Result<()> {
    // INFRADECK_BENCH_ONLY=reconcile skips the network benchmark (for profiling the other).
    let only = std::env::var("INFRADECK_BENCH_ONLY").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if only != "reconcile" {
        let latency_ms: u64 = std::env::var("INFRADECK_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let figure = runtime.block_on(infradeck::bench::vcenter_sync(
            10_000,
            Duration::from_millis(latency_ms),
        ))?;
        println!(
            "vCenter sync, {} VMs, {:?} latency, {} in flight: {:.2?} for {} requests; floor {:.2?}; ratio {:.2}×",
            figure.vms,
            figure.latency,
            figure.concurrency,
            figure.elapsed,
            figure.requests,
            figure.floor,
            figure.elapsed.as_secs_f64() / figure.floor.as_secs_f64()
        );
    }
    let mut samples: Vec<Duration> = (0..3)
        .map(|_| infradeck::bench::reconcile_unchanged(100_000))
        .collect::<Result<_, _>>()?;
    samples.sort();
    println!(
        "reconcile step of an unchanged re-sync, 100000 VMs (device + VM details + NIC): median {:.2?} (min {:.2?}, max {:.2?})",
        samples[1], samples[0], samples[2]
    );
    Ok(())
}
