//! PuppetDB v4: every active node's facts from `inventory`, paged by offset in certname order,
//! with the nodes the listing missed confirmed by name. Values are typed JSON; top-level facts
//! are stored by name (complex ones as JSON), minus the run-volatile paths (`sources::facts`).

use super::facts::{VolatileFacts, top_level_texts};
use super::{DeviceBundle, FetchContext, FetchSummary, Item, normalize_mac, short_hostname};
use crate::http::{RequestParts, SourceError};
use crate::model::{DeviceRecord, DeviceType, SourceKind};
use serde_json::{Value, json};

const PAGE: usize = 500;
/// Missed nodes asked about per request (an `or` of certname terms), at most.
const CONFIRM_BATCH: usize = 100;
/// The query text of one confirmation request, at most: it travels in the URL, and PuppetDB's
/// Jetty (like nginx in front of it) refuses request headers over 8 KB by default.
const CONFIRM_QUERY_BYTES: usize = 3000;

/// The missed certnames in request-sized batches: by count and by the URL-encoded size of
/// their terms (a certname is encoded at most three bytes per byte).
fn confirm_batches<'a>(missed: &[&'a String]) -> Vec<Vec<&'a String>> {
    let mut batches: Vec<Vec<&String>> = Vec::new();
    let mut size = 0;
    for name in missed {
        let term = 40 + name.len() * 3;
        match batches.last_mut() {
            Some(batch) if batch.len() < CONFIRM_BATCH && size + term <= CONFIRM_QUERY_BYTES => {
                batch.push(name);
                size += term;
            }
            _ => {
                batches.push(vec![name]);
                size = term;
            }
        }
    }
    batches
}

/// Lists every active node (within the configured `query`) in pages ordered by certname, then
/// confirms what the listing did not return.
///
/// PuppetDB pages by `offset` only: it refuses `>` on `certname` ("Query operators >,>=,<,<=
/// are not allowed on field certname"), so there is no keyset. An offset shifts when a node on an
/// earlier page is deactivated while the run reads, and the node at the page boundary is never
/// listed. So every stored active node the listing missed is asked about by name, in batches;
/// those PuppetDB still has active are fetched and kept, and only the rest — deactivated,
/// expired or purged — are left for the sweep.
pub(crate) async fn fetch(ctx: &FetchContext) -> Result<FetchSummary, SourceError> {
    let token = ctx.secret(super::SecretKind::Token)?;
    let headers: Vec<(&str, String)> = token
        .iter()
        .map(|t| ("X-Authentication", t.expose().to_string()))
        .collect();
    let reader = Reader {
        ctx,
        headers,
        volatile: VolatileFacts::new(&ctx.source.volatile_facts),
    };
    let page_size = ctx.source.page_size.unwrap_or(PAGE);
    ctx.progress.set_phase("fetch inventory");
    let mut listed = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        ctx.check_cancelled()?;
        let count = reader
            .read(
                ctx.source.query.clone(),
                Some((page_size, offset)),
                &mut listed,
            )
            .await?;
        if count < page_size {
            break;
        }
        offset += page_size;
    }
    let missed = super::missed_by_listing(&ctx.hints.active_ids, &listed);
    if !missed.is_empty() {
        ctx.progress.set_phase("confirm missing nodes");
        tracing::info!(source = %ctx.client.name, missed = missed.len(), "asking PuppetDB about nodes the listing did not return");
    }
    let mut still_active = 0;
    for batch in confirm_batches(&missed) {
        ctx.check_cancelled()?;
        let names =
            std::iter::once(json!("or")).chain(batch.iter().map(|c| json!(["=", "certname", c])));
        let by_name = Value::Array(names.collect());
        let query = match &ctx.source.query {
            Some(restriction) => json!(["and", restriction, by_name]),
            None => by_name,
        };
        still_active += reader.read(Some(query), None, &mut listed).await?;
    }
    Ok(FetchSummary {
        complete: true,
        note: (still_active > 0).then(|| {
            format!(
                "{still_active} active node(s) were missing from the paged listing (the inventory changed while it was read) and were fetched by name"
            )
        }),
    })
}

/// One run's requests to `/pdb/query/v4/inventory`.
struct Reader<'a> {
    ctx: &'a FetchContext,
    headers: Vec<(&'static str, String)>,
    volatile: VolatileFacts,
}

impl Reader<'_> {
    /// Reads one answer (a page when `page` is `(limit, offset)`) and emits every node not
    /// emitted before; returns how many rows the answer had.
    async fn read(
        &self,
        query: Option<Value>,
        page: Option<(usize, usize)>,
        listed: &mut std::collections::HashSet<String>,
    ) -> Result<usize, SourceError> {
        let ctx = self.ctx;
        // GET, not POST: a query is a read, and the client retries only idempotent requests.
        let mut params = vec![(
            "order_by",
            r#"[{"field":"certname","order":"asc"}]"#.to_string(),
        )];
        if let Some((limit, offset)) = page {
            params.push(("limit", limit.to_string()));
            params.push(("offset", offset.to_string()));
            if offset == 0 {
                // The total is the same on every page; asking once is enough for progress.
                params.push(("include_total", "true".to_string()));
            }
        }
        if let Some(query) = &query {
            params.push(("query", query.to_string()));
        }
        let answer = ctx
            .client
            .send(
                reqwest::Method::GET,
                "/pdb/query/v4/inventory",
                &RequestParts {
                    query: &params,
                    headers: &self.headers,
                    ..Default::default()
                },
            )
            .await?;
        let answer = ctx.client.expect_success(answer)?;
        if let Some(total) = answer
            .headers
            .get("X-Records")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            ctx.progress.set_total(total);
        }
        let nodes: Vec<Value> = ctx.client.decode(&answer)?;
        let count = nodes.len();
        for node in nodes {
            let Some(certname) = node["certname"].as_str().map(str::to_string) else {
                return Err(ctx
                    .client
                    .api_error(&answer.url, "an inventory row without a `certname` string"));
            };
            // A node shifted back onto the next page by a new node ahead of it comes twice.
            if listed.insert(certname) {
                ctx.emit(Item::Device(Box::new(node_bundle(
                    ctx,
                    &self.volatile,
                    node,
                ))))
                .await?;
                ctx.progress.inc();
            }
        }
        Ok(count)
    }
}

/// One node. Host name and FQDN come from the node's own facts (`networking.fqdn`,
/// `networking.hostname`, Facter 3's `fqdn`/`hostname`); the certname, which is only the name the
/// agent's certificate was issued for, is the fallback. `trusted` is left out of the stored facts:
/// it is the certificate's view (certname, extensions), not the machine's, and the metadata keeps
/// the certname.
fn node_bundle(ctx: &FetchContext, volatile: &VolatileFacts, mut node: Value) -> DeviceBundle {
    let certname = node["certname"].as_str().unwrap_or_default().to_string();
    let mut facts_tree = node["facts"].take();
    if let Some(map) = facts_tree.as_object_mut() {
        map.remove("trusted");
    }
    volatile.strip(&mut facts_tree);
    let f = &facts_tree;
    let fact_str = |value: &Value| {
        value
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let fqdn = fact_str(&f["networking"]["fqdn"])
        .or_else(|| fact_str(&f["fqdn"]))
        .unwrap_or_else(|| certname.clone());
    let hostname = fact_str(&f["networking"]["hostname"])
        .or_else(|| fact_str(&f["hostname"]))
        .map(|h| h.to_ascii_lowercase())
        .unwrap_or_else(|| short_hostname(&fqdn));
    let is_virtual = f["is_virtual"].as_bool().unwrap_or(false);
    let mac = f["networking"]["mac"].as_str().and_then(normalize_mac);
    let mut macs: Vec<String> = f["networking"]["interfaces"]
        .as_object()
        .map(|ifaces| {
            ifaces
                .values()
                .filter_map(|i| i["mac"].as_str().and_then(normalize_mac))
                .collect()
        })
        .unwrap_or_default();
    macs.sort();
    macs.dedup();
    let metadata = json!({"puppetdb": {
        "hostname": hostname,
        "fqdn": fqdn.to_ascii_lowercase(),
        "certname": certname,
        "ip": f["networking"]["ip"],
        "mac": mac,
        "macs": macs,
        "bios_uuid": f["dmi"]["product"]["uuid"].as_str().map(str::to_ascii_lowercase),
        "serial": f["dmi"]["product"]["serial_number"],
        "model": f["dmi"]["product"]["name"],
        "manufacturer": f["dmi"]["manufacturer"],
        "os": f["os"]["name"].as_str().map(|n| format!("{n} {}", f["os"]["release"]["full"].as_str().unwrap_or(""))),
        "cpu_count": f["processors"]["count"],
        "memory_mb": f["memory"]["system"]["total_bytes"].as_i64().map(|b| b / 1024 / 1024),
        "environment": node["environment"],
        "virtual": f["virtual"],
    }});
    let facts = top_level_texts(&facts_tree);
    let mut bundle = DeviceBundle::new(DeviceRecord {
        source_system: SourceKind::Puppetdb.as_str().to_string(),
        source_identifier: ctx.source.id.clone(),
        source_id: certname,
        name: fqdn,
        device_type: if is_virtual {
            DeviceType::Vm
        } else {
            DeviceType::Server
        },
        metadata,
    });
    bundle.facts = Some(facts);
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_batches_stay_small_enough_for_a_url() {
        let long: Vec<String> = (0..250)
            .map(|i| format!("node-{i:04}.{}.example.net", "x".repeat(40)))
            .collect();
        let refs: Vec<&String> = long.iter().collect();
        let batches = confirm_batches(&refs);
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 250);
        for batch in &batches {
            let query = Value::Array(
                std::iter::once(json!("or"))
                    .chain(batch.iter().map(|c| json!(["=", "certname", c])))
                    .collect(),
            );
            let encoded: String =
                form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect();
            assert!(encoded.len() < 6000, "{} bytes", encoded.len());
        }
        let short: Vec<String> = (0..250).map(|i| format!("n{i}")).collect();
        let refs: Vec<&String> = short.iter().collect();
        assert!(
            confirm_batches(&refs)
                .iter()
                .all(|b| b.len() <= CONFIRM_BATCH)
        );
    }
}
