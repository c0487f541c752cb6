//! Search beyond SQL: semantic embeddings of KB pages and issues, and hybrid ranking.
//!
//! Full-text search lives in the store (`Store::search`); this module adds the optional semantic
//! side. Text is chunked with overlap and embedded by all-MiniLM-L6-v2 in-process (the
//! `infradeck-minilm` crate, the default) or through an OpenAI-compatible endpoint; only content
//! whose chunks changed is embedded again. A query is answered by full text and by vector
//! similarity, fused with reciprocal rank fusion. Without the model installed, or when the
//! endpoint cannot be reached, search is full-text only and says so.

use crate::app::IndexReport;
use crate::config::{EmbeddingBackend, EmbeddingsConfig, Secret};
use crate::http::{RequestParts, RetryPolicy, SourceClient, SourceError};
use crate::store::{HitKind, SearchHit, Store};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

mod glossary;
pub use glossary::spell_out;

/// RRF's damping constant (the usual 60).
const RRF_K: f64 = 60.0;
const BATCH: usize = 64;

/// Splits `text` into chunks of about `size` characters, consecutive chunks sharing `overlap`,
/// preferring to cut at whitespace.
pub(crate) fn chunk(text: &str, size: usize, overlap: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= size {
        return vec![text.trim().to_string()]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + size).min(chars.len());
        if end < chars.len()
            && let Some(space) = chars[start + size / 2..end]
                .iter()
                .rposition(|c| c.is_whitespace())
        {
            end = start + size / 2 + space;
        }
        out.push(
            chars[start..end]
                .iter()
                .collect::<String>()
                .trim()
                .to_string(),
        );
        if end == chars.len() {
            break;
        }
        start = end.saturating_sub(overlap).max(start + 1);
    }
    out.retain(|c| !c.is_empty());
    out
}

/// Turns text into vectors: all-MiniLM-L6-v2 in-process (the default), or an
/// OpenAI-compatible endpoint.
pub struct Embedder {
    backend: Backend,
    config: EmbeddingsConfig,
}

enum Backend {
    Http {
        client: SourceClient,
        token: Option<Secret>,
    },
    /// Loaded (and its files' digests checked) on first use, on a blocking thread, once per
    /// process and folder.
    Local { dir: std::path::PathBuf },
}

/// The local models loaded so far, by folder: loading verifies 90 MB of weights, so it is
/// done once per process, not per pipeline run or query.
type Loaded =
    std::sync::Mutex<HashMap<std::path::PathBuf, std::sync::Arc<infradeck_minilm::Model>>>;
static LOADED: std::sync::OnceLock<Loaded> = std::sync::OnceLock::new();

/// The model in `dir`, loaded once (blocking: call it off the async threads).
fn local_model(
    dir: &std::path::Path,
) -> Result<std::sync::Arc<infradeck_minilm::Model>, infradeck_minilm::ModelError> {
    let loaded = LOADED.get_or_init(Default::default);
    // The lock is held across the load so that two first uses load once.
    let mut models = loaded.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(model) = models.get(dir) {
        return Ok(model.clone());
    }
    let model = std::sync::Arc::new(infradeck_minilm::Model::load(dir)?);
    models.insert(dir.to_path_buf(), model.clone());
    Ok(model)
}

/// Whether `dir` holds the local model's three files at their sizes (the digests are checked
/// when it loads): quick enough for deciding what to show.
pub fn local_model_present(dir: &std::path::Path) -> bool {
    infradeck_minilm::FILES
        .iter()
        .all(|f| std::fs::metadata(dir.join(f.name)).is_ok_and(|m| m.len() == f.size))
}

/// Why semantic search is full-text only on this machine: no model installed, with the two
/// steps that install it.
pub fn missing_model_notice(dir: &std::path::Path) -> String {
    format!(
        "semantic search needs the {} model, not installed: {}; full-text results",
        infradeck_minilm::MODEL_NAME,
        infradeck_minilm::install_hint(dir)
    )
}

/// The embedder `config` describes, or the notice that says why search is full-text only (no
/// model installed: how to install it; a setup problem: what it is). `None`: semantic search is
/// not configured.
pub fn embedder_for(config: Option<&EmbeddingsConfig>) -> Option<Result<Embedder, String>> {
    let config = config?;
    if config.backend == EmbeddingBackend::Local && !local_model_present(&config.model_dir) {
        return Some(Err(missing_model_notice(&config.model_dir)));
    }
    Some(Embedder::new(config).map_err(|err| unavailable(&err)))
}

/// The notice for a semantic search that could not be done.
fn unavailable(err: &dyn std::fmt::Display) -> String {
    format!("semantic search unavailable ({err}): full-text results only")
}

impl Embedder {
    /// The configured embedder. The local backend without its model is an error whose message
    /// is the notice that says how to install it.
    pub fn new(config: &EmbeddingsConfig) -> Result<Embedder, SourceError> {
        let backend = match config.backend {
            EmbeddingBackend::Local => {
                if !local_model_present(&config.model_dir) {
                    return Err(SourceError::Setup {
                        source_name: "embeddings".into(),
                        detail: missing_model_notice(&config.model_dir),
                    });
                }
                Backend::Local {
                    dir: config.model_dir.clone(),
                }
            }
            EmbeddingBackend::Http => {
                let token = config
                    .token
                    .as_ref()
                    .map(|t| t.resolve())
                    .transpose()
                    .map_err(|e| SourceError::Setup {
                        source_name: "embeddings".into(),
                        detail: e.to_string(),
                    })?;
                // Search waits on this endpoint: fail over to full text quickly rather than
                // retry long.
                let retry = RetryPolicy {
                    max_tries: 2,
                    base: Duration::from_millis(200),
                    cap: Duration::from_secs(2),
                };
                let client = SourceClient::for_endpoint(
                    "embeddings".into(),
                    &config.url,
                    &config.tls,
                    config.timeout,
                    4,
                    retry,
                )?;
                Backend::Http { client, token }
            }
        };
        Ok(Embedder {
            backend,
            config: config.clone(),
        })
    }

    /// Loads the local model now, on the blocking pool, so the first query does not wait for
    /// it (nothing to do for the HTTP backend).
    pub fn warm(&self) -> impl std::future::Future<Output = Result<(), String>> + use<> {
        let dir = match &self.backend {
            Backend::Local { dir } => Some(dir.clone()),
            Backend::Http { .. } => None,
        };
        async move {
            let Some(dir) = dir else { return Ok(()) };
            tokio::task::spawn_blocking(move || local_model(&dir).map(|_| ()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        }
    }

    /// What this embedder's vectors are stored under. The local model's name carries its
    /// weights' digest, so switching backend or model embeds again instead of mixing vectors.
    pub fn model(&self) -> String {
        match &self.backend {
            Backend::Http { .. } => self.config.model.clone(),
            Backend::Local { .. } => infradeck_minilm::fingerprint(),
        }
    }

    /// One vector per input, in order. The local model runs on tokio's blocking pool, never on
    /// the thread that asked.
    pub async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, SourceError> {
        let (client, token) = match &self.backend {
            Backend::Http { client, token } => (client, token),
            Backend::Local { dir } => {
                let (dir, inputs) = (dir.clone(), inputs.to_vec());
                let setup = |detail: String| SourceError::Setup {
                    source_name: "embeddings".into(),
                    detail,
                };
                return tokio::task::spawn_blocking(move || {
                    let model = local_model(&dir).map_err(|e| e.to_string())?;
                    let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
                    model.embed(&texts).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| setup(format!("the model's thread failed: {e}")))?
                .map_err(setup);
            }
        };
        let mut out = Vec::with_capacity(inputs.len());
        for batch in inputs.chunks(BATCH) {
            let body = json!({"model": self.config.model, "input": batch, "dimensions": self.config.dimensions});
            let parts = RequestParts {
                json: Some(&body),
                bearer: token.as_ref(),
                ..Default::default()
            };
            let answer = client
                .send(reqwest::Method::POST, "/v1/embeddings", &parts)
                .await?;
            let answer = client.expect_success(answer)?;
            let reply: Value = client.decode(&answer)?;
            let mut data: Vec<&Value> = reply["data"]
                .as_array()
                .map(|d| d.iter().collect())
                .unwrap_or_default();
            data.sort_by_key(|d| d["index"].as_u64().unwrap_or(0));
            if data.len() != batch.len() {
                return Err(client.api_error(
                    &answer.url,
                    format!("asked for {} vectors, got {}", batch.len(), data.len()),
                ));
            }
            for d in data {
                let vector: Vec<f32> = d["embedding"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(Value::as_f64)
                            .map(|x| x as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                if vector.len() != self.config.dimensions {
                    return Err(client.api_error(
                        &answer.url,
                        format!(
                            "vector of {} dimensions, configured {}",
                            vector.len(),
                            self.config.dimensions
                        ),
                    ));
                }
                out.push(vector);
            }
        }
        Ok(out)
    }
}

/// Content whose chunks changed: (kind, row id, chunks).
type Pending = Vec<(HitKind, i64, Vec<String>)>;
/// Chunks with their vectors, ready to store: (kind, row id, [(chunk, vector)]).
type Embedded = Vec<(HitKind, i64, Vec<(String, Vec<f32>)>)>;

/// What is embedded: pages and issues, or machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Knowledge,
    Machines,
}

/// Embeds every KB page and issue whose chunks changed since they were last embedded.
pub async fn index_knowledge(
    database: &std::path::Path,
    open: &crate::store::OpenOptions,
    embedder: &Embedder,
) -> anyhow::Result<IndexReport> {
    index(database, open, embedder, Content::Knowledge).await
}

/// Embeds every machine whose text (`Store::machine_texts`: what it is, where it runs, the
/// runbooks that mention it) changed, and removes the vectors of machines that are gone or
/// whose primary record changed. Run after correlation, so the text is what correlation made
/// of the estate: then every way of syncing ends with the same vectors.
pub async fn index_machines(
    database: &std::path::Path,
    open: &crate::store::OpenOptions,
    embedder: &Embedder,
) -> anyhow::Result<IndexReport> {
    index(database, open, embedder, Content::Machines).await
}

/// Embeds `content` whose chunks changed (see [`index_knowledge`], [`index_machines`]).
pub async fn index(
    database: &std::path::Path,
    open: &crate::store::OpenOptions,
    embedder: &Embedder,
    content: Content,
) -> anyhow::Result<IndexReport> {
    let (size, overlap, model) = (
        embedder.config.chunk_chars,
        embedder.config.overlap_chars,
        embedder.model(),
    );
    let database = database.to_path_buf();
    let (db, open_options, model_name) = (database.clone(), open.clone(), model.clone());
    let scanned =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Pending, usize, usize)> {
            let mut store = Store::open(&db, &open_options)?;
            let texts = match content {
                Content::Knowledge => store.knowledge_texts()?,
                Content::Machines => store.machine_texts()?,
            };
            let mut removed = 0;
            if content == Content::Machines {
                let keep: Vec<i64> = texts.iter().map(|(_, id, _)| *id).collect();
                removed = store.write(|w| {
                    w.remove_embeddings_except(
                        crate::store::content_type_of(HitKind::Device),
                        &keep,
                    )
                })?;
            }
            let mut pending = Vec::new();
            let mut unchanged = 0;
            for (kind, id, text) in texts {
                let chunks: Vec<String> = chunk(&text, size, overlap)
                    .iter()
                    .map(|c| spell_out(c))
                    .collect();
                if store.embedded_chunks(kind, id, &model_name)? == chunks {
                    unchanged += 1;
                } else {
                    pending.push((kind, id, chunks));
                }
            }
            Ok((pending, unchanged, removed))
        })
        .await??;
    let (pending, unchanged, removed) = scanned;
    let mut report = IndexReport {
        embedded: 0,
        unchanged,
        removed,
    };
    // Groups large enough for the model to batch texts of like length together (less padding),
    // small enough that a stop or a failure loses little.
    for group in pending.chunks(64) {
        let texts: Vec<String> = group
            .iter()
            .flat_map(|(_, _, c)| c.iter().cloned())
            .collect();
        let vectors = embedder.embed(&texts).await?;
        let mut vectors = vectors.into_iter();
        let rows: Embedded = group
            .iter()
            .map(|(kind, id, chunks)| {
                (
                    *kind,
                    *id,
                    chunks
                        .iter()
                        .map(|c| (c.clone(), vectors.next().unwrap_or_default()))
                        .collect(),
                )
            })
            .collect();
        let (db, open_options, model) = (database.clone(), open.clone(), model.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut store = Store::open(&db, &open_options)?;
            let now = crate::time::now();
            store.write(|w| {
                for (kind, id, chunks) in &rows {
                    w.replace_embeddings(
                        crate::store::content_type_of(*kind),
                        *id,
                        &model,
                        chunks,
                        &now,
                    )?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .await??;
        report.embedded += group.len();
    }
    Ok(report)
}

/// Results of a search and, when semantic search was wanted but not possible, why: the same
/// data the service answers a front end's search with.
pub type SearchResult = crate::app::SearchAnswer;

/// Full-text search fused with semantic search (reciprocal rank fusion) when an embedder is
/// given; an embedding failure degrades to full text with a notice.
pub async fn hybrid(
    store: &Store,
    embedder: Option<&Embedder>,
    query: &str,
    kinds: &[HitKind],
    limit: usize,
) -> anyhow::Result<SearchResult> {
    let vector = match embedder {
        Some(embedder) => Some(embed_query(embedder, query).await?),
        None => None,
    };
    let model = embedder.map(Embedder::model);
    rank(store, model.as_deref(), vector, query, kinds, limit)
}

/// The query's vector (its words without `type:` terms, which narrow and are not meant), or
/// why there is none. Needs no database, so it can run where a store cannot be held across the
/// wait (the service embeds, then ranks on a blocking thread).
pub async fn embed_query(
    embedder: &Embedder,
    query: &str,
) -> anyhow::Result<Result<Vec<f32>, String>> {
    let (_, words) = crate::store::split_kinds(query).map_err(|e| anyhow::anyhow!(e))?;
    Ok(match embedder.embed(&[spell_out(&words)]).await {
        Ok(mut v) => Ok(v.pop().unwrap_or_default()),
        Err(err) => Err(unavailable(&err)),
    })
}

/// Full-text hits for `query`, fused with the neighbours of its vector when there is one.
/// `model` and `vector` are `None` when semantic search is off; a vector that could not be had
/// is the notice (`Err`) shown with the full-text hits.
pub fn rank(
    store: &Store,
    model: Option<&str>,
    vector: Option<Result<Vec<f32>, String>>,
    query: &str,
    kinds: &[HitKind],
    limit: usize,
) -> anyhow::Result<SearchResult> {
    let text_hits = text_candidates(store, query, kinds, limit)?;
    rank_with(store, model, vector, text_hits, query, kinds, limit)
}

/// The full-text side of a hybrid query: more hits than shown, for the fusion to choose from.
/// It needs no vector, so it can run while the query is being embedded.
pub fn text_candidates(
    store: &Store,
    query: &str,
    kinds: &[HitKind],
    limit: usize,
) -> anyhow::Result<Vec<SearchHit>> {
    Ok(store.search(query, kinds, limit.max(50))?)
}

/// [`rank`] with the full-text hits already found ([`text_candidates`]).
pub fn rank_with(
    store: &Store,
    model: Option<&str>,
    vector: Option<Result<Vec<f32>, String>>,
    text_hits: Vec<SearchHit>,
    query: &str,
    kinds: &[HitKind],
    limit: usize,
) -> anyhow::Result<SearchResult> {
    let text_only = |mut hits: Vec<SearchHit>, notice: String| {
        hits.truncate(limit);
        Ok(SearchResult {
            hits,
            notice: Some(notice),
        })
    };
    let (model, vector) = match (model, vector) {
        (Some(model), Some(Ok(vector))) => (model, vector),
        // The notice says why (no model installed, an endpoint that did not answer).
        (_, Some(Err(notice))) => return text_only(text_hits, notice),
        _ => {
            return text_only(
                text_hits,
                "semantic search is off: full-text results".into(),
            );
        }
    };
    // `type:` words narrow the kinds the vectors may add too.
    let (typed, _) = crate::store::split_kinds(query).map_err(|e| anyhow::anyhow!(e))?;
    let kinds: Vec<HitKind> = if typed.is_empty() {
        kinds.to_vec()
    } else {
        typed
            .into_iter()
            .filter(|k| kinds.is_empty() || kinds.contains(k))
            .collect()
    };
    Ok(SearchResult {
        hits: fuse(store, model, &vector, text_hits, &kinds, limit)?,
        notice: None,
    })
}

/// A runbook at least this close to the query, relative to the closest hit's similarity,
/// is shown first (see [`fuse`]). Measured with all-MiniLM-L6-v2 on the demo estate: the
/// storage runbook for "database disk is full" is at 0.89 of the "Disk full on db-…" tickets
/// (lifted); for "storage array" the storage runbook is at 0.72 of the arrays themselves, and
/// for "interface flapping" the switch runbook at 0.37 of the flapping tickets (both left).
const RUNBOOK_FIRST: f32 = 0.75;

/// Reciprocal rank fusion of full-text hits with the vector neighbours of an embedded query,
/// each machine once (a machine's full-text hit may be any of its records; its vectors are
/// stored under its primary record). A query that identifies a machine (its name, address,
/// serial, FQDN) or a ticket (its key) keeps full text's order, with what only resembles it
/// after.
///
/// A runbook says what to do, so when the query names no machine or ticket, the runbook
/// closest to it comes first if it is nearly as close as the closest hit of any kind
/// ([`RUNBOOK_FIRST`]): "database disk is full" opens the storage runbook, with the "Disk
/// full on …" tickets after it. Full text orders runbooks before tickets of the same tier for
/// the same reason.
pub fn fuse(
    store: &Store,
    model: &str,
    vector: &[f32],
    text_hits: Vec<SearchHit>,
    kinds: &[HitKind],
    limit: usize,
) -> anyhow::Result<Vec<SearchHit>> {
    let semantic = store.vector_search(model, vector, kinds, limit.max(50))?;
    let names_something = text_hits.iter().any(|h| h.identified);
    // (fused score, full-text rank, the hit to show) per piece of content.
    type Entry = (f64, Option<usize>, Option<SearchHit>);
    let mut fused: HashMap<(HitKind, i64), Entry> = HashMap::new();
    for (rank, hit) in text_hits.into_iter().enumerate() {
        let id = match hit.kind {
            HitKind::Device => store.primary_record_of(hit.id)?,
            _ => hit.id,
        };
        let entry = fused.entry((hit.kind, id)).or_insert((0.0, None, None));
        entry.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        // A machine's best full-text record is its first; later ones add nothing new.
        if entry.2.is_none() {
            entry.1 = Some(rank);
            entry.2 = Some(hit);
        }
    }
    for (rank, (kind, id, _)) in semantic.iter().enumerate() {
        // Vectors stored under a record that is no longer its machine's primary (they are moved
        // at the next embedding) still count for the machine.
        let id = match kind {
            HitKind::Device => store.primary_record_of(*id)?,
            _ => *id,
        };
        let entry = fused.entry((*kind, id)).or_insert((0.0, None, None));
        entry.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        if entry.2.is_none() {
            entry.2 = store.knowledge_hit(*kind, id)?;
        }
    }
    // (fused score, full-text rank, content, hit)
    type Ranked = (f64, Option<usize>, (HitKind, i64), SearchHit);
    let mut ranked: Vec<Ranked> = fused
        .into_iter()
        .filter_map(|(key, (score, text_rank, hit))| hit.map(|h| (score, text_rank, key, h)))
        .collect();
    if names_something {
        // A name is not a meaning: full text knows what `db-0314` or `OPS-101` is, and orders
        // the machine, then its runbooks and tickets. What only resembles it comes after.
        ranked.sort_by(|a, b| {
            (a.1.is_none(), a.1)
                .cmp(&(b.1.is_none(), b.1))
                .then(b.0.total_cmp(&a.0))
                .then(a.2.cmp(&b.2))
        });
    } else {
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
    }
    let closest = semantic.first().map_or(0.0, |(_, _, s)| *s);
    let runbook = semantic
        .iter()
        .find(|(kind, _, _)| *kind == HitKind::KbArticle)
        .filter(|(_, _, similarity)| closest > 0.0 && *similarity >= RUNBOOK_FIRST * closest);
    if let Some((_, id, _)) = runbook.filter(|_| !names_something)
        && let Some(at) = ranked
            .iter()
            .position(|(_, _, key, _)| *key == (HitKind::KbArticle, *id))
    {
        let first = ranked.remove(at);
        ranked.insert(0, first);
    }
    Ok(ranked
        .into_iter()
        .take(limit)
        .map(|(score, _, _, mut hit)| {
            hit.score = -score;
            hit
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_overlap_and_cover_everything() {
        let text: String = (0..300).map(|i| format!("word{i} ")).collect();
        let chunks = chunk(&text, 200, 50);
        assert!(chunks.len() > 5);
        assert!(chunks.iter().all(|c| c.chars().count() <= 200));
        assert!(chunks.last().unwrap().ends_with("word299"));
        let first_tail: String = chunks[0]
            .chars()
            .rev()
            .take(20)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        assert!(
            chunks[1].contains(first_tail.trim()),
            "consecutive chunks overlap"
        );
        assert_eq!(chunk("short", 200, 50), vec!["short".to_string()]);
    }
}
