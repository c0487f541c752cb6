//! Search benchmarks (issue: storage and knowledge).
//!
//! - a full-text query over 100,000 documents (KB pages): median (target < 20 ms). The corpus is
//!   Zipf-distributed like real prose (a 20,000-word vocabulary, the technical terms queried at
//!   ranks 50–400), plus host names and addresses; the worst case, a word in most documents, is
//!   reported separately;
//! - a hybrid query over 100,000 chunks of 384 dimensions: full text + brute-force cosine +
//!   reciprocal rank fusion, the query already embedded (target < 50 ms median). Embedding the
//!   query is the endpoint's work, a round trip to a local model, and not included.

use infradeck::model::KbArticleRecord;
use infradeck::store::{HitKind, OpenOptions, Store};
use std::time::{Duration, Instant};

const DOCS: usize = 100_000;

/// One document's chunks: (row id, [(text, vector)]).
type Chunks = (i64, Vec<(String, Vec<f32>)>);
const DIMS: usize = 384;

const WORDS: &[&str] = &[
    "restart",
    "service",
    "disk",
    "full",
    "cluster",
    "maintenance",
    "upgrade",
    "firmware",
    "network",
    "switch",
    "interface",
    "flapping",
    "certificate",
    "expired",
    "backup",
    "restore",
    "database",
    "replica",
    "latency",
    "storage",
    "lun",
    "expand",
    "volume",
    "snapshot",
    "patch",
    "kernel",
    "reboot",
    "memory",
    "leak",
    "alert",
    "monitoring",
    "dns",
    "ntp",
    "vlan",
    "route",
    "firewall",
    "policy",
    "access",
    "ssh",
    "key",
    "rotate",
    "log",
    "rotation",
];

fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A word drawn from a Zipf(1) distribution over a 20,000-word vocabulary whose ranks 50, 58,
/// 66, … are the technical words.
fn zipf_word(state: &mut u64, cdf: &[f64]) -> String {
    let u = (rng(state) % 1_000_000) as f64 / 1_000_000.0;
    let rank = cdf.partition_point(|&c| c < u);
    if rank >= 50 && (rank - 50) % 8 == 0 && (rank - 50) / 8 < WORDS.len() {
        WORDS[(rank - 50) / 8].to_string()
    } else {
        format!("w{rank}")
    }
}

fn median(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    (
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    )
}

fn main() -> anyhow::Result<()> {
    let scratch = infradeck::bench::Scratch::new("search")?;
    let mut store = Store::open(&scratch.0.join("inventory.db"), &OpenOptions::default())?;
    let mut seed = 0x2545F4914F6CDD1Du64;
    let vocabulary = 20_000;
    let harmonic: f64 = (1..=vocabulary).map(|r| 1.0 / r as f64).sum();
    let mut cdf = Vec::with_capacity(vocabulary);
    let mut acc = 0.0;
    for r in 1..=vocabulary {
        acc += 1.0 / r as f64 / harmonic;
        cdf.push(acc);
    }
    let started = Instant::now();
    for batch in (0..DOCS).collect::<Vec<_>>().chunks(5000) {
        let articles: Vec<KbArticleRecord> = batch
            .iter()
            .map(|&i| {
                let body: Vec<String> = (0..120).map(|_| zipf_word(&mut seed, &cdf)).collect();
                KbArticleRecord {
                    source_id: format!("p{i}"),
                    space_key: Some("OPS".into()),
                    title: format!("Runbook {i}: {} on web-{:06}", WORDS[i % WORDS.len()], i),
                    body_text: Some(format!(
                        "{} host web-{i:06} at 10.{}.{}.{}",
                        body.join(" "),
                        i >> 16,
                        (i >> 8) & 255,
                        i & 255
                    )),
                    ..KbArticleRecord::default()
                }
            })
            .collect();
        store.write(|w| {
            for a in &articles {
                w.upsert_kb_article(a, "2026-11-01 00:00:00")?;
            }
            Ok(())
        })?;
    }
    println!("indexed {DOCS} documents in {:.1?}", started.elapsed());

    let queries = [
        "disk full",
        "certificate expired rotate",
        "web-004242",
        "10.1.2.3",
        "firmware upgrade switch",
        "latency",
    ];
    let mut samples = Vec::new();
    for round in 0..12 {
        for q in &queries {
            let start = Instant::now();
            let hits = store.search(q, &[HitKind::KbArticle], 20)?;
            if round > 1 {
                samples.push(start.elapsed());
            }
            assert!(!hits.is_empty(), "no hits for {q}");
        }
    }
    let (min, med, max) = median(samples);
    println!(
        "full-text query over {DOCS} documents, top 20 with snippets: median {med:.2?} (min {min:.2?}, max {max:.2?})"
    );
    let common = store.search("w1", &[HitKind::KbArticle], 20)?;
    let start = Instant::now();
    for _ in 0..5 {
        store.search("w1", &[HitKind::KbArticle], 20)?;
    }
    println!(
        "worst case, a word in most documents ({} hits ranked): {:.2?} per query",
        common.len(),
        start.elapsed() / 5
    );

    // 100,000 chunks of 384 dimensions (one per document), random unit-ish vectors.
    let ids: Vec<i64> = store
        .knowledge_texts()?
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    for batch in ids.chunks(5000) {
        let rows: Vec<Chunks> = batch
            .iter()
            .map(|&id| {
                (
                    id,
                    vec![(
                        String::new(),
                        (0..DIMS)
                            .map(|_| (rng(&mut seed) % 2000) as f32 / 1000.0 - 1.0)
                            .collect(),
                    )],
                )
            })
            .collect();
        store.write(|w| {
            for (id, chunks) in &rows {
                w.replace_embeddings("kb_article", *id, "bench", chunks, "2026-11-01 00:00:00")?;
            }
            Ok(())
        })?;
    }
    let query: Vec<f32> = (0..DIMS)
        .map(|_| (rng(&mut seed) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let start = Instant::now();
    store.vector_search("bench", &query, 10)?;
    println!(
        "vector index load ({DOCS} × {DIMS}): {:.2?} (once per database change)",
        start.elapsed()
    );
    let mut samples = Vec::new();
    for round in 0..12 {
        for q in &queries {
            let start = Instant::now();
            let text = store.search(q, &[HitKind::KbArticle], 50)?;
            let hits =
                infradeck::search::fuse(&store, "bench", &query, text, &[HitKind::KbArticle], 20)?;
            if round > 1 {
                samples.push(start.elapsed());
            }
            assert!(!hits.is_empty());
        }
    }
    let (min, med, max) = median(samples);
    println!(
        "hybrid query over {DOCS} chunks of {DIMS} dimensions (full text + cosine + RRF): median {med:.2?} (min {min:.2?}, max {max:.2?})"
    );
    Ok(())
}
