//! A fresh database holds every table, column, index and foreign key of the seed schema
//! (`shared/seed/master-database-schema.md`), plus the deviations DESIGN.md lists. The expectation
//! list below is written out from the seed by hand, so a seed column or index that goes missing
//! from the migrations fails this test.

use infradeck_core::store::{OpenOptions, Store};
use rusqlite::Connection;
use std::collections::BTreeSet;

/// (column, declared type, not null)
type Column = (&'static str, &'static str, bool);
/// (column, descending)
type IndexColumn = (&'static str, bool);

/// (table, columns)
const SEED_COLUMNS: &[(&str, &[Column])] = &[
    (
        "devices",
        &[
            ("id", "INTEGER", false),
            ("name", "TEXT", true),
            ("device_type", "TEXT", true),
            ("source_system", "TEXT", true),
            ("source_id", "TEXT", true),
            ("status", "TEXT", false),
            ("metadata", "TEXT", false),
            ("first_seen", "TIMESTAMP", false),
            ("last_seen", "TIMESTAMP", false),
            ("created_at", "TIMESTAMP", false),
            ("updated_at", "TIMESTAMP", false),
            // Deviation: the configured source instance.
            ("source_identifier", "TEXT", true),
            // Deviation: a hash of the source's last report, for cheap unchanged re-syncs.
            ("content_fingerprint", "INTEGER", false),
        ],
    ),
    (
        "device_relationships",
        &[
            ("id", "INTEGER", false),
            ("parent_device_id", "INTEGER", false),
            ("child_device_id", "INTEGER", false),
            ("relationship_type", "TEXT", false),
            ("metadata", "TEXT", false),
            ("created_at", "TIMESTAMP", false),
            ("updated_at", "TIMESTAMP", false),
        ],
    ),
    (
        "sync_metadata",
        &[
            ("id", "INTEGER", false),
            ("source_system", "TEXT", true),
            ("source_identifier", "TEXT", false),
            ("last_sync_start", "TIMESTAMP", false),
            ("last_sync_complete", "TIMESTAMP", false),
            ("last_sync_status", "TEXT", false),
            ("sync_duration_seconds", "REAL", false),
            ("devices_added", "INTEGER", false),
            ("devices_updated", "INTEGER", false),
            ("devices_removed", "INTEGER", false),
            ("error_message", "TEXT", false),
            ("created_at", "TIMESTAMP", false),
            ("updated_at", "TIMESTAMP", false),
        ],
    ),
    (
        "vms",
        &[
            ("id", "INTEGER", false),
            ("device_id", "INTEGER", true),
            ("instance_uuid", "TEXT", false),
            ("guest_os", "TEXT", false),
            ("cpu_count", "INTEGER", false),
            ("memory_mb", "INTEGER", false),
            ("power_state", "TEXT", false),
            ("tools_running", "BOOLEAN", false),
            ("ip_addresses", "TEXT", false),
            ("disks", "TEXT", false),
            ("snapshots", "TEXT", false),
            ("total_disk_capacity_bytes", "INTEGER", false),
            ("total_snapshot_size_bytes", "INTEGER", false),
        ],
    ),
    (
        "network_interfaces",
        &[
            ("id", "INTEGER", false),
            ("device_id", "INTEGER", true),
            ("interface_name", "TEXT", true),
            ("mac_address", "TEXT", false),
            ("ip_addresses", "TEXT", false),
            ("speed_mbps", "INTEGER", false),
            ("status", "TEXT", false),
            ("interface_type", "TEXT", false),
            ("metadata", "TEXT", false),
        ],
    ),
    (
        "storage_volumes",
        &[
            ("id", "INTEGER", false),
            ("device_id", "INTEGER", false),
            ("source_system", "TEXT", true),
            ("source_id", "TEXT", true),
            ("name", "TEXT", true),
            ("volume_type", "TEXT", false),
            ("capacity_bytes", "INTEGER", false),
            ("used_bytes", "INTEGER", false),
            ("storage_array", "TEXT", false),
            ("raid_level", "TEXT", false),
            ("thin_provisioned", "BOOLEAN", false),
            ("metadata", "TEXT", false),
            ("created_at", "TIMESTAMP", false),
            ("updated_at", "TIMESTAMP", false),
            // Deviation: the configured source instance.
            ("source_identifier", "TEXT", true),
        ],
    ),
    (
        "device_configs",
        &[
            ("id", "INTEGER", false),
            ("device_id", "INTEGER", true),
            ("config_text", "TEXT", false),
            ("config_hash", "TEXT", false),
            ("version", "INTEGER", false),
            ("retrieved_at", "TIMESTAMP", false),
            ("source_system", "TEXT", false),
        ],
    ),
    (
        "server_facts",
        &[
            ("id", "INTEGER", false),
            ("device_id", "INTEGER", true),
            ("fact_name", "TEXT", true),
            ("fact_value", "TEXT", false),
            ("collected_at", "TIMESTAMP", false),
        ],
    ),
    (
        "kb_articles",
        &[
            ("id", "INTEGER", false),
            ("source_id", "TEXT", true),
            ("space_key", "TEXT", false),
            ("title", "TEXT", true),
            ("body_text", "TEXT", false),
            ("body_html", "TEXT", false),
            ("url", "TEXT", false),
            ("parent_id", "TEXT", false),
            ("labels", "TEXT", false),
            ("created_at", "TIMESTAMP", false),
            ("last_updated", "TIMESTAMP", false),
            ("cached_at", "TIMESTAMP", false),
        ],
    ),
    (
        "issues",
        &[
            ("id", "INTEGER", false),
            ("issue_key", "TEXT", true),
            ("project_key", "TEXT", false),
            ("issue_type", "TEXT", false),
            ("summary", "TEXT", false),
            ("description", "TEXT", false),
            ("status", "TEXT", false),
            ("resolution", "TEXT", false),
            ("assignee", "TEXT", false),
            ("reporter", "TEXT", false),
            ("priority", "TEXT", false),
            ("labels", "TEXT", false),
            ("comments", "TEXT", false),
            ("created_at", "TIMESTAMP", false),
            ("updated_at", "TIMESTAMP", false),
            ("resolved_at", "TIMESTAMP", false),
            ("cached_at", "TIMESTAMP", false),
        ],
    ),
    (
        "embeddings",
        &[
            ("id", "INTEGER", false),
            ("content_type", "TEXT", true),
            ("content_id", "INTEGER", true),
            ("chunk_index", "INTEGER", false),
            ("text_content", "TEXT", false),
            ("embedding_vector", "BLOB", false),
            ("embedding_model", "TEXT", false),
            ("created_at", "TIMESTAMP", false),
        ],
    ),
    (
        "sync_history",
        &[
            ("id", "INTEGER", false),
            ("sync_id", "TEXT", true),
            ("source_system", "TEXT", true),
            ("source_identifier", "TEXT", false),
            ("operation", "TEXT", false),
            ("device_id", "INTEGER", false),
            ("change_type", "TEXT", false),
            ("old_value", "TEXT", false),
            ("new_value", "TEXT", false),
            ("performed_by", "TEXT", false),
            ("performed_at", "TIMESTAMP", false),
            ("metadata", "TEXT", false),
        ],
    ),
    (
        "netbox_sync_approvals",
        &[
            ("id", "INTEGER", false),
            ("sync_batch_id", "TEXT", true),
            ("device_id", "INTEGER", false),
            ("action", "TEXT", false),
            ("netbox_object_type", "TEXT", false),
            ("netbox_object_id", "INTEGER", false),
            ("proposed_changes", "TEXT", false),
            ("approval_status", "TEXT", false),
            ("approved_by", "TEXT", false),
            ("approved_at", "TIMESTAMP", false),
            ("applied_at", "TIMESTAMP", false),
            ("rollback_data", "TEXT", false),
            // Deviation: the reviewer's comment (a rejection's reason).
            ("review_comment", "TEXT", false),
            // Deviation: approval bound to what was reviewed (the request's SHA-256 as planned,
            // and as approved).
            ("request_sha256", "TEXT", false),
            ("approved_sha256", "TEXT", false),
        ],
    ),
    // Deviation: one row per sync run, the live progress and the run lock.
    (
        "sync_runs",
        &[
            ("id", "INTEGER", false),
            ("sync_id", "TEXT", true),
            ("source_system", "TEXT", true),
            ("source_identifier", "TEXT", true),
            ("status", "TEXT", true),
            ("phase", "TEXT", false),
            ("done", "INTEGER", true),
            ("total", "INTEGER", false),
            ("message", "TEXT", false),
            ("started_at", "TIMESTAMP", true),
            ("heartbeat_at", "TIMESTAMP", true),
            ("finished_at", "TIMESTAMP", false),
            ("pid", "INTEGER", false),
            ("host", "TEXT", false),
        ],
    ),
    // Deviation: plan-level facts of a NetBox batch.
    (
        "netbox_sync_batches",
        &[
            ("batch_id", "TEXT", false),
            ("netbox_url", "TEXT", false),
            ("planned_at", "TIMESTAMP", false),
            ("state", "TEXT", false),
        ],
    ),
];

/// (table, unique, [(column, descending)])
const SEED_INDEXES: &[(&str, bool, &[IndexColumn])] = &[
    // Deviation: the unique key gains source_identifier.
    (
        "devices",
        true,
        &[
            ("source_system", false),
            ("source_identifier", false),
            ("source_id", false),
        ],
    ),
    ("devices", false, &[("device_type", false)]),
    ("devices", false, &[("name", false)]),
    ("devices", false, &[("status", false)]),
    ("devices", false, &[("last_seen", false)]),
    (
        "device_relationships",
        false,
        &[("parent_device_id", false)],
    ),
    ("device_relationships", false, &[("child_device_id", false)]),
    (
        "device_relationships",
        false,
        &[("relationship_type", false)],
    ),
    (
        "sync_metadata",
        true,
        &[("source_system", false), ("source_identifier", false)],
    ),
    ("sync_metadata", false, &[("last_sync_complete", false)]),
    ("vms", true, &[("device_id", false)]),
    ("vms", false, &[("instance_uuid", false)]),
    ("vms", false, &[("power_state", false)]),
    ("network_interfaces", false, &[("device_id", false)]),
    ("network_interfaces", false, &[("mac_address", false)]),
    ("network_interfaces", false, &[("status", false)]),
    // Deviation: the unique key gains source_identifier.
    (
        "storage_volumes",
        true,
        &[
            ("source_system", false),
            ("source_identifier", false),
            ("source_id", false),
        ],
    ),
    ("storage_volumes", false, &[("device_id", false)]),
    ("storage_volumes", false, &[("storage_array", false)]),
    ("storage_volumes", false, &[("volume_type", false)]),
    (
        "device_configs",
        false,
        &[("device_id", false), ("version", true)],
    ),
    ("device_configs", false, &[("config_hash", false)]),
    ("device_configs", false, &[("retrieved_at", true)]),
    (
        "server_facts",
        false,
        &[("device_id", false), ("fact_name", false)],
    ),
    ("server_facts", false, &[("fact_name", false)]),
    ("kb_articles", true, &[("source_id", false)]),
    ("kb_articles", false, &[("space_key", false)]),
    ("kb_articles", false, &[("title", false)]),
    ("kb_articles", false, &[("last_updated", true)]),
    ("issues", true, &[("issue_key", false)]),
    ("issues", false, &[("project_key", false)]),
    ("issues", false, &[("status", false)]),
    ("issues", false, &[("resolution", false)]),
    ("issues", false, &[("resolved_at", true)]),
    (
        "embeddings",
        false,
        &[("content_type", false), ("content_id", false)],
    ),
    ("embeddings", false, &[("embedding_model", false)]),
    ("sync_history", false, &[("sync_id", false)]),
    ("sync_history", false, &[("source_system", false)]),
    ("sync_history", false, &[("device_id", false)]),
    ("sync_history", false, &[("performed_at", true)]),
    ("netbox_sync_approvals", false, &[("sync_batch_id", false)]),
    ("netbox_sync_approvals", false, &[("device_id", false)]),
    (
        "netbox_sync_approvals",
        false,
        &[("approval_status", false)],
    ),
    ("netbox_sync_approvals", false, &[("approved_at", true)]),
];

/// (table, column, parent table, on delete)
const SEED_FOREIGN_KEYS: &[(&str, &str, &str, &str)] = &[
    (
        "device_relationships",
        "parent_device_id",
        "devices",
        "CASCADE",
    ),
    (
        "device_relationships",
        "child_device_id",
        "devices",
        "CASCADE",
    ),
    ("vms", "device_id", "devices", "CASCADE"),
    ("network_interfaces", "device_id", "devices", "CASCADE"),
    ("device_configs", "device_id", "devices", "CASCADE"),
    ("server_facts", "device_id", "devices", "CASCADE"),
    // Deviation: the seed's optional link becomes a real reference, cleared with the device.
    ("storage_volumes", "device_id", "devices", "SET NULL"),
    // Deviation: volume-to-volume links (an array LUN backs a datastore).
    (
        "volume_relationships",
        "parent_volume_id",
        "storage_volumes",
        "CASCADE",
    ),
    (
        "volume_relationships",
        "child_volume_id",
        "storage_volumes",
        "CASCADE",
    ),
];

fn fresh() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    drop(Store::open(&path, &OpenOptions::default()).unwrap());
    let conn = Connection::open(&path).unwrap();
    (dir, conn)
}

#[test]
fn every_seed_table_and_column_exists_with_its_type() {
    let (_dir, conn) = fresh();
    let mut missing = Vec::new();
    for (table, columns) in SEED_COLUMNS {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        let actual: Vec<(String, String, bool)> = stmt
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if actual.is_empty() {
            missing.push(format!("table {table}"));
            continue;
        }
        for (name, ty, not_null) in *columns {
            match actual.iter().find(|(n, _, _)| n == name) {
                None => missing.push(format!("{table}.{name}")),
                Some((_, actual_ty, actual_nn)) => {
                    if actual_ty != ty {
                        missing.push(format!("{table}.{name}: type {actual_ty}, want {ty}"));
                    }
                    if *not_null && !actual_nn {
                        missing.push(format!("{table}.{name}: should be NOT NULL"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "schema differs from the seed: {missing:#?}"
    );
    let tables: Vec<&str> = SEED_COLUMNS.iter().map(|(t, _)| *t).collect();
    println!("seed tables present: {}", tables.join(", "));
}

#[test]
fn every_seed_index_exists_with_its_columns_order_and_uniqueness() {
    let (_dir, conn) = fresh();
    let mut missing = Vec::new();
    for (table, unique, columns) in SEED_INDEXES {
        let mut list = conn
            .prepare(&format!("PRAGMA index_list({table})"))
            .unwrap();
        let indexes: Vec<(String, bool)> = list
            .query_map([], |r| Ok((r.get(1)?, r.get::<_, i64>(2)? != 0)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want: Vec<(String, bool)> = columns.iter().map(|(c, d)| (c.to_string(), *d)).collect();
        let found = indexes.iter().any(|(index, is_unique)| {
            let mut info = conn
                .prepare(&format!("PRAGMA index_xinfo({index})"))
                .unwrap();
            let cols: Vec<(String, bool)> = info
                .query_map([], |r| {
                    Ok((
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)? != 0,
                        r.get::<_, i64>(5)? != 0,
                    ))
                })
                .unwrap()
                .map(Result::unwrap)
                .filter(|(_, _, key)| *key)
                .filter_map(|(name, desc, _)| name.map(|n| (n, desc)))
                .collect();
            cols == want && is_unique == unique
        });
        if !found {
            missing.push(format!(
                "{table} {}({want:?})",
                if *unique { "UNIQUE " } else { "" }
            ));
        }
    }
    assert!(missing.is_empty(), "indexes missing: {missing:#?}");
}

#[test]
fn every_seed_foreign_key_exists_with_its_delete_rule() {
    let (_dir, conn) = fresh();
    let mut found = BTreeSet::new();
    let tables = SEED_COLUMNS
        .iter()
        .map(|(t, _)| *t)
        .chain(["volume_relationships"]);
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("PRAGMA foreign_key_list({table})"))
            .unwrap();
        let rows: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(2)?, r.get(3)?, r.get(6)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (parent, column, on_delete) in rows {
            found.insert((table.to_string(), column, parent, on_delete));
        }
    }
    for (table, column, parent, on_delete) in SEED_FOREIGN_KEYS {
        let key = (
            table.to_string(),
            column.to_string(),
            parent.to_string(),
            on_delete.to_string(),
        );
        assert!(
            found.contains(&key),
            "missing foreign key {key:?}; found {found:#?}"
        );
    }
}

#[test]
fn pragmas_are_set_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    let store = Store::open(&path, &OpenOptions::default()).unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "WAL persists in the file");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, infradeck_core::store::schema::LATEST_VERSION);
}

#[test]
fn relationship_type_accepts_same_as_and_rejects_nonsense() {
    let (_dir, conn) = fresh();
    conn.execute_batch(
        "INSERT INTO devices (id, name, device_type, source_system, source_id) VALUES (1, 'a', 'vm', 'vcenter', 'vm-1');
         INSERT INTO devices (id, name, device_type, source_system, source_id) VALUES (2, 'a', 'server', 'foreman', '7');
         INSERT INTO device_relationships (parent_device_id, child_device_id, relationship_type) VALUES (2, 1, 'same_as');",
    )
    .unwrap();
    let err = conn
        .execute(
            "INSERT INTO device_relationships (parent_device_id, child_device_id, relationship_type) VALUES (2, 1, 'loves')",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}
