//! Store benchmarks over 100,000 devices (issue: foundation).
//!
//! - bulk upsert of devices in batched transactions (target: ≥ 100,000 per second);
//! - a page of 200 devices sorted by name with a substring filter (target: < 5 ms), for a filter
//!   that matches many devices and for one that matches almost none (the full-scan worst case).
//!
//! Run with `cargo bench --bench store`. Prints medians and spread of repeated runs.

use infradeck_core::model::{DeviceRecord, DeviceType};
use infradeck_core::store::{DeviceQuery, DeviceSort, OpenOptions, Store};
use std::time::{Duration, Instant};

const DEVICES: usize = 100_000;
const BATCH: usize = 5_000;

fn records(generation: u32) -> Vec<DeviceRecord> {
    (0..DEVICES)
        .map(|i| DeviceRecord {
            source_system: "vcenter".into(),
            source_identifier: "vc-bench".into(),
            source_id: format!("vm-{i}"),
            name: format!("{}-{:06}.lab.local", ["web", "db", "app", "cache"][i % 4], i),
            device_type: if i % 10 == 0 { DeviceType::Server } else { DeviceType::Vm },
            metadata: serde_json::json!({"vcenter": {"power_state": "POWERED_ON", "cpu_count": 2 + (i % 8), "generation": generation}}),
        })
        .collect()
}

fn upsert_all(store: &mut Store, records: &[DeviceRecord]) -> Duration {
    let start = Instant::now();
    let now = infradeck_core::time::now();
    for chunk in records.chunks(BATCH) {
        store
            .write(|w| {
                w.upsert_devices(chunk, &now)?;
                Ok(())
            })
            .expect("bench upsert");
    }
    start.elapsed()
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    (
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    )
}

fn main() {
    let first = records(1);
    let second = records(2);
    let (mut insert, mut unchanged, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept = None;
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bench.db");
        let mut store = Store::open(&path, &OpenOptions::default()).expect("open");
        insert.push(upsert_all(&mut store, &first));
        unchanged.push(upsert_all(&mut store, &first));
        changed.push(upsert_all(&mut store, &second));
        kept = Some((dir, path));
    }
    let (_dir, path) = kept.expect("three runs happened");
    let rate = |d: Duration| DEVICES as f64 / d.as_secs_f64();
    println!(
        "bulk upsert, {DEVICES} devices in batches of {BATCH}, 3 fresh databases (median, range):"
    );
    for (label, samples) in [
        ("insert (new)", insert),
        ("upsert (unchanged)", unchanged),
        ("upsert (changed)", changed),
    ] {
        let (fastest, median, slowest) = stats(samples);
        println!(
            "  {label:<19} {:>8.0} devices/s  ({:.0}–{:.0})",
            rate(median),
            rate(slowest),
            rate(fastest)
        );
    }

    for (label, filter) in [
        ("broad filter 'web-01'", "web-01"),
        ("narrow filter '099999'", "099999"),
    ] {
        let query = DeviceQuery {
            name_contains: Some(filter.into()),
            sort: DeviceSort::Name,
            limit: 200,
            offset: 0,
            ..DeviceQuery::default()
        };
        // A fresh connection: its first filtered query runs in SQL (what a one-shot CLI call
        // pays); from the second on, the in-memory name index answers (dashboard, API).
        let fresh = Store::open(&path, &OpenOptions::default()).expect("open");
        let start = Instant::now();
        let rows = fresh.device_page(&query).expect("query").devices.len();
        let cold = start.elapsed();
        let start = Instant::now();
        fresh.device_page(&query).expect("query");
        let build = start.elapsed();
        let mut samples = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            fresh.device_page(&query).expect("query");
            samples.push(start.elapsed());
        }
        let (min, median, max) = stats(samples);
        println!(
            "page of 200 by name + total, {label} ({rows} rows): median {median:.2?} (min {min:.2?}, max {max:.2?}); \
             first query in SQL {cold:.2?}, index build {build:.2?}"
        );
    }
}
