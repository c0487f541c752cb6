//! `infradeck changes`: what changed in a time range, grouped by machine and kind, as a table,
//! JSON, or a Markdown handover note.

use super::Context;
use infradeck_core::changes::{self, ChangeFilter, Digest};

/// Options of `infradeck changes`.
#[derive(Debug, Clone, Default)]
pub struct ChangesArgs {
    /// Start of the range (exclusive): a duration back, a date/time, or `last-look`.
    pub since: String,
    /// End of the range (inclusive); now when absent.
    pub until: Option<String>,
    pub kinds: Vec<String>,
    pub sources: Vec<String>,
    /// Words matched against names and details.
    pub words: Vec<String>,
    pub json: bool,
    pub markdown: bool,
    /// Rows (table) or items (Markdown) at most; 0 for all in a table.
    pub limit: usize,
}

/// Reads the digest the arguments ask for.
pub(crate) fn read_digest(ctx: &Context, args: &ChangesArgs) -> anyhow::Result<Digest> {
    let store = ctx.open_store()?;
    let now = chrono::Utc::now();
    let look = store.last_look(&infradeck_core::identity::os_user())?;
    let since = changes::resolve_time(&args.since, now, look.as_deref())
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let until = match &args.until {
        Some(text) => changes::resolve_time(text, now, look.as_deref())
            .map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        None => now,
    };
    anyhow::ensure!(
        since < until,
        "--since ({}) is not before --until ({})",
        infradeck_core::time::format(since),
        infradeck_core::time::format(until)
    );
    let mut filter_text: Vec<String> = args.words.clone();
    filter_text.extend(args.kinds.iter().map(|k| format!("kind:{k}")));
    filter_text.extend(args.sources.iter().map(|s| format!("source:{s}")));
    let filter = ChangeFilter::parse(&filter_text.join(" ")).map_err(|e| anyhow::anyhow!(e))?;
    let digest = changes::digest(
        &store,
        &infradeck_core::time::format(since),
        &infradeck_core::time::format(until),
        &ctx.config.machine_rules().health,
    )?;
    Ok(if filter.is_empty() {
        digest
    } else {
        digest.filtered(&filter)
    })
}

pub fn changes_command(ctx: &Context, args: &ChangesArgs) -> anyhow::Result<()> {
    let digest = read_digest(ctx, args)?;
    if args.json {
        let counts: serde_json::Map<String, serde_json::Value> = digest
            .counts
            .iter()
            .map(|(k, n)| (k.as_str().to_string(), (*n).into()))
            .collect();
        return super::print_json(&serde_json::json!({
            "since": digest.since,
            "until": digest.until,
            "counts": counts,
            "changes": digest.changes,
        }));
    }
    if args.markdown {
        let limit = if args.limit == 0 { 30 } else { args.limit };
        print!("{}", changes::markdown(&digest, limit));
        return Ok(());
    }
    println!(
        "changes {} → {} UTC: {}",
        digest.since,
        digest.until,
        digest.counts_text()
    );
    if digest.changes.is_empty() {
        return Ok(());
    }
    let shown = if args.limit == 0 {
        digest.changes.len()
    } else {
        args.limit.min(digest.changes.len())
    };
    let rows: Vec<Vec<String>> = digest
        .changes
        .iter()
        .take(shown)
        .map(|c| {
            vec![
                c.at.clone(),
                c.kind.as_str().to_string(),
                c.subject.name().to_string(),
                c.summary(),
                c.sources.join(","),
            ]
        })
        .collect();
    print!(
        "{}",
        super::table::render(&["WHEN", "KIND", "MACHINE", "WHAT", "SOURCES"], &rows)
    );
    if shown < digest.changes.len() {
        println!(
            "… and {} more (--limit 0 shows all)",
            digest.changes.len() - shown
        );
    }
    Ok(())
}
