//! `infradeck search` and `infradeck related`.

use super::Context;
use crate::sanitize;
use crate::store::HitKind;

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
    match text {
        "device" | "devices" => Ok(HitKind::Device),
        "kb" | "page" | "pages" => Ok(HitKind::KbArticle),
        "issue" | "issues" | "ticket" | "tickets" => Ok(HitKind::Issue),
        other => Err(format!(
            "unknown type `{other}` (expected device, kb or issue)"
        )),
    }
}

/// Full-text search over devices, KB pages and issues, ranked by bm25.
pub fn search(ctx: &Context, args: &SearchArgs) -> anyhow::Result<()> {
    let store = ctx.open_store()?;
    let hits = store.search(&args.query, &args.kinds, args.limit)?;
    if args.json {
        println!(
            "{}",
            sanitize::json_for_terminal(&serde_json::to_string_pretty(&hits)?)
        );
        return Ok(());
    }
    eprintln!("full-text search (semantic search is off: no [embeddings] section in the config)");
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.kind.as_str().to_string(),
                h.title.clone(),
                h.detail.clone(),
                h.snippet.replace('\n', " "),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["TYPE", "TITLE", "WHERE", "MATCH"], &rows)
    );
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
    let hits = store.related_knowledge(id, limit)?;
    if json {
        println!(
            "{}",
            sanitize::json_for_terminal(&serde_json::to_string_pretty(&hits)?)
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.hit.kind.as_str().to_string(),
                h.hit.title.clone(),
                h.hit.detail.clone(),
                h.matched.join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["TYPE", "TITLE", "WHERE", "MENTIONS"], &rows)
    );
    if rows.is_empty() {
        eprintln!("no KB pages or tickets mention this device");
    }
    Ok(())
}
