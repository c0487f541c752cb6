//! Search benchmarks (issue: storage and knowledge), over the corpus `infradeck bench` uses.
//!
//! - a full-text query over 100,000 documents (KB pages): median (target < 20 ms). The corpus is
//!   Zipf-distributed like real prose (a 20,000-word vocabulary, the technical terms queried at
//!   ranks 50–80), plus host names and addresses;
//! - a hybrid query over 100,000 chunks of 384 dimensions: full text + brute-force cosine +
//!   reciprocal rank fusion, the query already embedded (target < 50 ms median). Embedding the
//!   query is the endpoint's work, a round trip to a local model, and not included.
//!
//! Run with `cargo bench --bench search`.

use infradeck::bench::{Scratch, knowledge_corpus, search_figures};
use infradeck_core::store::{OpenOptions, Store};
use std::time::Instant;

const DOCS: usize = 100_000;

fn main() -> anyhow::Result<()> {
    let scratch = Scratch::new("search")?;
    let mut store = Store::open(&scratch.0.join("inventory.db"), &OpenOptions::default())?;
    let started = Instant::now();
    let query = knowledge_corpus(&mut store, DOCS, 384)?;
    println!(
        "indexed and embedded {DOCS} documents in {:.1?}",
        started.elapsed()
    );
    let (text, hybrid) = search_figures(&store, &query, 10)?;
    println!(
        "full-text query, top 20 with snippets: median {:.2} ms (min {:.2}, max {:.2}, n={})",
        text.median_ms, text.min_ms, text.max_ms, text.n
    );
    println!(
        "hybrid query (full text + cosine over 384 dims + RRF): median {:.2} ms (min {:.2}, max {:.2}, n={})",
        hybrid.median_ms, hybrid.min_ms, hybrid.max_ms, hybrid.n
    );
    Ok(())
}
