//! `infradeck search` and `infradeck related`.

use super::Context;
use infradeck_core::sanitize;
use infradeck_core::store::HitKind;

/// Options of `infradeck search`.
#[derive(Debug, Clone, Default)]
pub struct SearchArgs {
    pub query: String,
    pub kinds: Vec<HitKind>,
    pub limit: usize,
    pub json: bool,
}

/// Parses `device`, `kb` or `issue`.
pub fn parse_kind(text: &str) -> Result<HitKind, String> {
    HitKind::parse(text)
}

/// The configured embedder, if any; a missing model or a setup problem (a missing token) is a
/// notice, not an error.
fn embedder(ctx: &Context) -> (Option<infradeck_core::search::Embedder>, Option<String>) {
    match infradeck_core::search::embedder_for(ctx.config.embeddings.as_ref()) {
        None => (None, None),
        Some(Ok(e)) => (Some(e), None),
        Some(Err(notice)) => (None, Some(notice)),
    }
}

/// Search over devices, KB pages and issues: full-text (bm25), fused with semantic similarity
/// when embeddings are configured.
pub fn search(ctx: &Context, args: &SearchArgs) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let (embedder, setup_notice) = embedder(ctx);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(infradeck_core::search::hybrid(
        &store,
        embedder.as_ref(),
        &args.query,
        &args.kinds,
        args.limit,
    ))?;
    let hits = result.hits;
    if let Some(notice) = setup_notice.or(result.notice) {
        eprintln!("{}", sanitize::for_terminal(&notice));
    }
    if args.json {
        super::print_json(&hits)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.kind.as_str().to_string(),
                reference(h),
                h.title.clone(),
                h.detail.clone(),
                h.snippet.replace('\n', " "),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["TYPE", "REF", "TITLE", "WHERE", "MATCH"], &rows)
    );
    if hits.iter().any(|h| h.kind != HitKind::Device) {
        eprintln!("`infradeck read REF` shows a page or ticket whole");
    }
    if rows.is_empty() {
        eprintln!("no matches for `{}`", sanitize::for_terminal(&args.query));
    }
    Ok(())
}

/// KB pages and tickets that concern a device (by id or name).
pub fn related(ctx: &Context, device: &str, limit: usize, json: bool) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let ids: Vec<i64> = match device.parse::<i64>() {
        Ok(id) => vec![id],
        Err(_) => store.devices_named(device)?.iter().map(|d| d.id).collect(),
    };
    let Some(&id) = ids.first() else {
        anyhow::bail!("no device named `{device}` (try `infradeck devices {device}`)");
    };
    let mut hits = store.related_knowledge(id, limit)?;
    let (embedder, _) = embedder(ctx);
    if let Some(embedder) = embedder {
        // Semantic neighbours: pages and tickets about the same kind of thing, after the ones that
        // name the device.
        let aliases = store.device_aliases(id)?;
        let text = aliases.into_iter().collect::<Vec<_>>().join(" ");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        match runtime.block_on(embedder.embed(&[text])) {
            Ok(mut vectors) => {
                let vector = vectors.pop().unwrap_or_default();
                let kinds = [HitKind::KbArticle, HitKind::Issue];
                for (kind, row, _) in
                    store.vector_search(&embedder.model(), &vector, &kinds, limit)?
                {
                    if hits.len() >= limit
                        || hits.iter().any(|h| h.hit.kind == kind && h.hit.id == row)
                    {
                        continue;
                    }
                    if let Some(hit) = store.knowledge_hit(kind, row)? {
                        hits.push(infradeck_core::store::KnowledgeHit {
                            hit,
                            matched: vec!["(similar)".into()],
                        });
                    }
                }
            }
            Err(err) => eprintln!(
                "{}",
                sanitize::for_terminal(&format!("semantic neighbours unavailable ({err})"))
            ),
        }
    }
    if json {
        super::print_json(&hits)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.hit.kind.as_str().to_string(),
                reference(&h.hit),
                h.hit.title.clone(),
                h.hit.detail.clone(),
                h.matched.join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["TYPE", "REF", "TITLE", "WHERE", "MENTIONS"], &rows)
    );
    if !rows.is_empty() {
        eprintln!("`infradeck read REF` shows a page or ticket whole");
    }
    if rows.is_empty() {
        eprintln!("no KB pages or tickets mention this device");
    }
    Ok(())
}

/// What `infradeck read` takes for a hit: a ticket's key, `kb:ROW` for a page, a device's id.
fn reference(hit: &infradeck_core::store::SearchHit) -> String {
    match hit.kind {
        HitKind::Issue => hit.title.split(' ').next().unwrap_or_default().to_string(),
        HitKind::KbArticle => format!("kb:{}", hit.id),
        HitKind::Device => hit.id.to_string(),
    }
}

/// `infradeck read REF`: a runbook page or ticket as text. REF is a ticket key (`OPS-12`),
/// `kb:ROW` (from `search` or `related`), or a Confluence page id.
pub fn read(ctx: &Context, reference: &str, json: bool) -> anyhow::Result<()> {
    use infradeck_core::document::Document;
    let store = ctx.open_store()?;
    let wanted = reference.trim();
    let target = if let Some(row) = wanted.strip_prefix("kb:") {
        let row: i64 = row.parse().map_err(|_| {
            anyhow::anyhow!(
                "`{}`: after kb: comes a number",
                sanitize::for_terminal(wanted)
            )
        })?;
        Some((HitKind::KbArticle, row))
    } else if let Some(page) = store.kb_article(wanted)? {
        Some((HitKind::KbArticle, page.id))
    } else {
        store
            .issue(&wanted.to_ascii_uppercase())?
            .map(|issue| (HitKind::Issue, issue.id))
    };
    let document = match target {
        Some((kind, id)) => Document::read(&store, kind, id)?,
        None => None,
    };
    let Some(document) = document else {
        anyhow::bail!(
            "no page or ticket `{}` (give a ticket key, kb:N from `infradeck search`, or a Confluence page id)",
            sanitize::for_terminal(wanted)
        );
    };
    if json {
        return super::print_json(&document);
    }
    for line in document.text().lines() {
        println!("{}", sanitize::line_for_terminal(line));
    }
    Ok(())
}
