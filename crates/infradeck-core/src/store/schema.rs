//! The embedded, versioned schema. Migration N brings a database from `user_version` N-1 to N.
//! Append new steps; never edit a step that has shipped.

/// The schema steps, in order. The index + 1 is the version a step produces.
pub(crate) const MIGRATIONS: &[&str] = &[
    V1_SEED_SCHEMA,
    V2_FULL_TEXT,
    V3_VOLUME_LINKS,
    V4_MACHINES,
    V5_CHANGES,
    V6_REVIEWED_DIGESTS,
];

/// The version that adds `change_findings`, which the migration fills from the audit rows.
pub(crate) const CHANGE_FINDINGS_VERSION: i64 = 5;

/// The schema version this build of infradeck writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: every table, column, index and foreign key of the seed schema
/// (`shared/seed/master-database-schema.md`) with the deliberate deviations of DESIGN.md:
/// - `devices` and `storage_volumes` carry `source_identifier` (the configured source instance),
///   and their unique key is (source_system, source_identifier, source_id);
/// - `sync_runs` records every run; a partial unique index on running rows is the cross-process
///   lock that stops two runs of one source instance at once;
/// - `device_relationships.relationship_type` also takes `same_as`, and one relationship of a type
///   between two devices exists once;
/// - approvals record a review comment, and batches have their own table;
/// - `device_configs` numbers versions uniquely per device;
/// - `devices.content_fingerprint` hashes everything the source last reported for the device
///   (record, VM details, interfaces, facts), so an identical report costs a `last_seen` bump
///   without reading the details back;
/// - `device_type` also takes `cluster` (a vCenter compute cluster, parent of its hosts);
/// - `storage_volumes.device_id` references `devices` and is cleared when that device goes.
const V1_SEED_SCHEMA: &str = r#"
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    device_type TEXT NOT NULL
        CHECK (device_type IN ('server', 'vm', 'network_device', 'storage', 'container', 'cluster')),
    source_system TEXT NOT NULL,
    source_identifier TEXT NOT NULL DEFAULT '',
    source_id TEXT NOT NULL,
    status TEXT CHECK (status IN ('active', 'inactive', 'unknown')),
    metadata TEXT,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    content_fingerprint INTEGER
);
CREATE UNIQUE INDEX idx_devices_source_key ON devices (source_system, source_identifier, source_id);
CREATE INDEX idx_devices_device_type ON devices (device_type);
CREATE INDEX idx_devices_name ON devices (name);
CREATE INDEX idx_devices_status ON devices (status);
CREATE INDEX idx_devices_last_seen ON devices (last_seen);

CREATE TABLE device_relationships (
    id INTEGER PRIMARY KEY,
    parent_device_id INTEGER REFERENCES devices (id) ON DELETE CASCADE,
    child_device_id INTEGER REFERENCES devices (id) ON DELETE CASCADE,
    relationship_type TEXT
        CHECK (relationship_type IN ('hosts', 'connects_to', 'backs_up', 'manages', 'same_as')),
    metadata TEXT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE INDEX idx_device_relationships_parent ON device_relationships (parent_device_id);
CREATE INDEX idx_device_relationships_child ON device_relationships (child_device_id);
CREATE INDEX idx_device_relationships_type ON device_relationships (relationship_type);
CREATE UNIQUE INDEX idx_device_relationships_link
    ON device_relationships (parent_device_id, child_device_id, relationship_type);

CREATE TABLE sync_metadata (
    id INTEGER PRIMARY KEY,
    source_system TEXT NOT NULL,
    source_identifier TEXT,
    last_sync_start TIMESTAMP,
    last_sync_complete TIMESTAMP,
    last_sync_status TEXT,
    sync_duration_seconds REAL,
    devices_added INTEGER,
    devices_updated INTEGER,
    devices_removed INTEGER,
    error_message TEXT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE UNIQUE INDEX idx_sync_metadata_source ON sync_metadata (source_system, source_identifier);
CREATE INDEX idx_sync_metadata_last_sync_complete ON sync_metadata (last_sync_complete);

CREATE TABLE vms (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    instance_uuid TEXT,
    guest_os TEXT,
    cpu_count INTEGER,
    memory_mb INTEGER,
    power_state TEXT,
    tools_running BOOLEAN,
    ip_addresses TEXT,
    disks TEXT,
    snapshots TEXT,
    total_disk_capacity_bytes INTEGER,
    total_snapshot_size_bytes INTEGER
);
CREATE UNIQUE INDEX idx_vms_device_id ON vms (device_id);
CREATE INDEX idx_vms_instance_uuid ON vms (instance_uuid);
CREATE INDEX idx_vms_power_state ON vms (power_state);

CREATE TABLE network_interfaces (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    interface_name TEXT NOT NULL,
    mac_address TEXT,
    ip_addresses TEXT,
    speed_mbps INTEGER,
    status TEXT,
    interface_type TEXT,
    metadata TEXT
);
CREATE INDEX idx_network_interfaces_device_id ON network_interfaces (device_id);
CREATE INDEX idx_network_interfaces_mac_address ON network_interfaces (mac_address);
CREATE INDEX idx_network_interfaces_status ON network_interfaces (status);

CREATE TABLE storage_volumes (
    id INTEGER PRIMARY KEY,
    device_id INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    source_system TEXT NOT NULL,
    source_identifier TEXT NOT NULL DEFAULT '',
    source_id TEXT NOT NULL,
    name TEXT NOT NULL,
    volume_type TEXT,
    capacity_bytes INTEGER,
    used_bytes INTEGER,
    storage_array TEXT,
    raid_level TEXT,
    thin_provisioned BOOLEAN,
    metadata TEXT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE UNIQUE INDEX idx_storage_volumes_source_key
    ON storage_volumes (source_system, source_identifier, source_id);
CREATE INDEX idx_storage_volumes_device_id ON storage_volumes (device_id);
CREATE INDEX idx_storage_volumes_storage_array ON storage_volumes (storage_array);
CREATE INDEX idx_storage_volumes_volume_type ON storage_volumes (volume_type);

CREATE TABLE device_configs (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    config_text TEXT,
    config_hash TEXT,
    version INTEGER,
    retrieved_at TIMESTAMP,
    source_system TEXT
);
CREATE INDEX idx_device_configs_device_version ON device_configs (device_id, version DESC);
CREATE INDEX idx_device_configs_config_hash ON device_configs (config_hash);
CREATE INDEX idx_device_configs_retrieved_at ON device_configs (retrieved_at DESC);
CREATE UNIQUE INDEX idx_device_configs_unique_version ON device_configs (device_id, version);

CREATE TABLE server_facts (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    fact_name TEXT NOT NULL,
    fact_value TEXT,
    collected_at TIMESTAMP
);
CREATE INDEX idx_server_facts_device_fact ON server_facts (device_id, fact_name);
CREATE INDEX idx_server_facts_fact_name ON server_facts (fact_name);

CREATE TABLE kb_articles (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL,
    space_key TEXT,
    title TEXT NOT NULL,
    body_text TEXT,
    body_html TEXT,
    url TEXT,
    parent_id TEXT,
    labels TEXT,
    created_at TIMESTAMP,
    last_updated TIMESTAMP,
    cached_at TIMESTAMP
);
CREATE UNIQUE INDEX idx_kb_articles_source_id ON kb_articles (source_id);
CREATE INDEX idx_kb_articles_space_key ON kb_articles (space_key);
CREATE INDEX idx_kb_articles_title ON kb_articles (title);
CREATE INDEX idx_kb_articles_last_updated ON kb_articles (last_updated DESC);

CREATE TABLE issues (
    id INTEGER PRIMARY KEY,
    issue_key TEXT NOT NULL,
    project_key TEXT,
    issue_type TEXT,
    summary TEXT,
    description TEXT,
    status TEXT,
    resolution TEXT,
    assignee TEXT,
    reporter TEXT,
    priority TEXT,
    labels TEXT,
    comments TEXT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    resolved_at TIMESTAMP,
    cached_at TIMESTAMP
);
CREATE UNIQUE INDEX idx_issues_issue_key ON issues (issue_key);
CREATE INDEX idx_issues_project_key ON issues (project_key);
CREATE INDEX idx_issues_status ON issues (status);
CREATE INDEX idx_issues_resolution ON issues (resolution);
CREATE INDEX idx_issues_resolved_at ON issues (resolved_at DESC);

CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY,
    content_type TEXT NOT NULL,
    content_id INTEGER NOT NULL,
    chunk_index INTEGER,
    text_content TEXT,
    embedding_vector BLOB,
    embedding_model TEXT,
    created_at TIMESTAMP
);
CREATE INDEX idx_embeddings_content ON embeddings (content_type, content_id);
CREATE INDEX idx_embeddings_embedding_model ON embeddings (embedding_model);

CREATE TABLE sync_history (
    id INTEGER PRIMARY KEY,
    sync_id TEXT NOT NULL,
    source_system TEXT NOT NULL,
    source_identifier TEXT,
    operation TEXT,
    device_id INTEGER,
    change_type TEXT,
    old_value TEXT,
    new_value TEXT,
    performed_by TEXT,
    performed_at TIMESTAMP,
    metadata TEXT
);
CREATE INDEX idx_sync_history_sync_id ON sync_history (sync_id);
CREATE INDEX idx_sync_history_source_system ON sync_history (source_system);
CREATE INDEX idx_sync_history_device_id ON sync_history (device_id);
CREATE INDEX idx_sync_history_performed_at ON sync_history (performed_at DESC);

CREATE TABLE netbox_sync_batches (
    batch_id TEXT PRIMARY KEY,
    netbox_url TEXT,
    planned_at TIMESTAMP,
    planned_by TEXT,
    state TEXT,
    creates INTEGER NOT NULL DEFAULT 0,
    updates INTEGER NOT NULL DEFAULT 0,
    deletes INTEGER NOT NULL DEFAULT 0,
    metadata TEXT
);

CREATE TABLE netbox_sync_approvals (
    id INTEGER PRIMARY KEY,
    sync_batch_id TEXT NOT NULL,
    device_id INTEGER,
    action TEXT,
    netbox_object_type TEXT,
    netbox_object_id INTEGER,
    proposed_changes TEXT,
    approval_status TEXT,
    approved_by TEXT,
    approved_at TIMESTAMP,
    applied_at TIMESTAMP,
    rollback_data TEXT,
    review_comment TEXT
);
CREATE INDEX idx_netbox_sync_approvals_batch ON netbox_sync_approvals (sync_batch_id);
CREATE INDEX idx_netbox_sync_approvals_device_id ON netbox_sync_approvals (device_id);
CREATE INDEX idx_netbox_sync_approvals_status ON netbox_sync_approvals (approval_status);
CREATE INDEX idx_netbox_sync_approvals_approved_at ON netbox_sync_approvals (approved_at DESC);

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    sync_id TEXT NOT NULL UNIQUE,
    source_system TEXT NOT NULL,
    source_identifier TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'success', 'partial', 'failed', 'cancelled')),
    phase TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    message TEXT,
    devices_added INTEGER NOT NULL DEFAULT 0,
    devices_updated INTEGER NOT NULL DEFAULT 0,
    devices_removed INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    pid INTEGER,
    host TEXT
);
CREATE UNIQUE INDEX idx_sync_runs_one_running
    ON sync_runs (source_system, source_identifier) WHERE status = 'running';
CREATE INDEX idx_sync_runs_source_started ON sync_runs (source_system, source_identifier, started_at DESC);
"#;

/// Version 2: FTS5 indexes over devices (name, type, metadata), their facts, KB pages (title,
/// text) and issues (key, summary, description, comments), as external-content tables kept exact
/// by triggers on every insert, update and delete. The device trigger fires only when a searchable
/// column changes, so the `last_seen` bumps of a re-sync cost the index nothing.
const V2_FULL_TEXT: &str = r#"
CREATE VIRTUAL TABLE devices_fts USING fts5(name, device_type, metadata, content='devices', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER devices_fts_insert AFTER INSERT ON devices BEGIN
    INSERT INTO devices_fts (rowid, name, device_type, metadata) VALUES (new.id, new.name, new.device_type, new.metadata);
END;
CREATE TRIGGER devices_fts_delete AFTER DELETE ON devices BEGIN
    INSERT INTO devices_fts (devices_fts, rowid, name, device_type, metadata) VALUES ('delete', old.id, old.name, old.device_type, old.metadata);
END;
CREATE TRIGGER devices_fts_update AFTER UPDATE OF name, device_type, metadata ON devices BEGIN
    INSERT INTO devices_fts (devices_fts, rowid, name, device_type, metadata) VALUES ('delete', old.id, old.name, old.device_type, old.metadata);
    INSERT INTO devices_fts (rowid, name, device_type, metadata) VALUES (new.id, new.name, new.device_type, new.metadata);
END;

CREATE VIRTUAL TABLE facts_fts USING fts5(fact_name, fact_value, content='server_facts', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER facts_fts_insert AFTER INSERT ON server_facts BEGIN
    INSERT INTO facts_fts (rowid, fact_name, fact_value) VALUES (new.id, new.fact_name, new.fact_value);
END;
CREATE TRIGGER facts_fts_delete AFTER DELETE ON server_facts BEGIN
    INSERT INTO facts_fts (facts_fts, rowid, fact_name, fact_value) VALUES ('delete', old.id, old.fact_name, old.fact_value);
END;
CREATE TRIGGER facts_fts_update AFTER UPDATE OF fact_name, fact_value ON server_facts BEGIN
    INSERT INTO facts_fts (facts_fts, rowid, fact_name, fact_value) VALUES ('delete', old.id, old.fact_name, old.fact_value);
    INSERT INTO facts_fts (rowid, fact_name, fact_value) VALUES (new.id, new.fact_name, new.fact_value);
END;

CREATE VIRTUAL TABLE kb_fts USING fts5(title, body_text, content='kb_articles', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER kb_fts_insert AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_fts (rowid, title, body_text) VALUES (new.id, new.title, new.body_text);
END;
CREATE TRIGGER kb_fts_delete AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, title, body_text) VALUES ('delete', old.id, old.title, old.body_text);
END;
CREATE TRIGGER kb_fts_update AFTER UPDATE OF title, body_text ON kb_articles BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, title, body_text) VALUES ('delete', old.id, old.title, old.body_text);
    INSERT INTO kb_fts (rowid, title, body_text) VALUES (new.id, new.title, new.body_text);
END;

CREATE VIRTUAL TABLE issues_fts USING fts5(issue_key, summary, description, comments, content='issues', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER issues_fts_insert AFTER INSERT ON issues BEGIN
    INSERT INTO issues_fts (rowid, issue_key, summary, description, comments) VALUES (new.id, new.issue_key, new.summary, new.description, new.comments);
END;
CREATE TRIGGER issues_fts_delete AFTER DELETE ON issues BEGIN
    INSERT INTO issues_fts (issues_fts, rowid, issue_key, summary, description, comments) VALUES ('delete', old.id, old.issue_key, old.summary, old.description, old.comments);
END;
CREATE TRIGGER issues_fts_update AFTER UPDATE OF issue_key, summary, description, comments ON issues BEGIN
    INSERT INTO issues_fts (issues_fts, rowid, issue_key, summary, description, comments) VALUES ('delete', old.id, old.issue_key, old.summary, old.description, old.comments);
    INSERT INTO issues_fts (rowid, issue_key, summary, description, comments) VALUES (new.id, new.issue_key, new.summary, new.description, new.comments);
END;

-- Column weights live in each table's rank function, so `ORDER BY rank` (FTS5's fast top-N path)
-- ranks with them.
INSERT INTO devices_fts (devices_fts, rank) VALUES ('rank', 'bm25(10.0, 2.0, 1.0)');
INSERT INTO facts_fts (facts_fts, rank) VALUES ('rank', 'bm25(2.0, 1.0)');
INSERT INTO kb_fts (kb_fts, rank) VALUES ('rank', 'bm25(5.0, 1.0)');
INSERT INTO issues_fts (issues_fts, rank) VALUES ('rank', 'bm25(10.0, 4.0, 1.0, 1.0)');

INSERT INTO devices_fts (devices_fts) VALUES ('rebuild');
INSERT INTO facts_fts (facts_fts) VALUES ('rebuild');
INSERT INTO kb_fts (kb_fts) VALUES ('rebuild');
INSERT INTO issues_fts (issues_fts) VALUES ('rebuild');
"#;

/// Version 3: links between storage volumes: an array volume or LUN `backs_up` the vCenter
/// datastore built on it. Volumes are not devices, so `device_relationships` cannot hold this.
const V3_VOLUME_LINKS: &str = r#"
CREATE TABLE volume_relationships (
    id INTEGER PRIMARY KEY,
    parent_volume_id INTEGER NOT NULL REFERENCES storage_volumes (id) ON DELETE CASCADE,
    child_volume_id INTEGER NOT NULL REFERENCES storage_volumes (id) ON DELETE CASCADE,
    relationship_type TEXT NOT NULL CHECK (relationship_type IN ('backs_up')),
    metadata TEXT,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE UNIQUE INDEX idx_volume_relationships_link ON volume_relationships (parent_volume_id, child_volume_id, relationship_type);
CREATE INDEX idx_volume_relationships_child ON volume_relationships (child_volume_id);
"#;

/// Version 4: machines. A machine is the group of records correlation links with `same_as`;
/// its row keeps the identity stable across correlations and holds what is computed from its
/// records (primary record, health and reasons, power state, disagreements), so lists filter
/// and sort by them without recomputing. `devices.machine_id` names each record's machine; a
/// record not yet correlated has none.
const V4_MACHINES: &str = r#"
CREATE TABLE machines (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    device_type TEXT NOT NULL
        CHECK (device_type IN ('server', 'vm', 'network_device', 'storage', 'container', 'cluster')),
    primary_device_id INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'unknown')),
    health TEXT NOT NULL CHECK (health IN ('ok', 'warn', 'crit')),
    reasons TEXT,
    power TEXT,
    conflicts TEXT,
    conflict_since TIMESTAMP,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE INDEX idx_machines_name_key ON machines (name_key, id);
CREATE INDEX idx_machines_health ON machines (health);
ALTER TABLE devices ADD COLUMN machine_id INTEGER REFERENCES machines (id) ON DELETE SET NULL;
CREATE INDEX idx_devices_machine_id ON devices (machine_id);
"#;

/// Version 5: what changed, and the inventory as it was. `last_looks` remembers when each OS
/// user last looked at the changes (the dashboard opens on them when there are new ones).
/// `change_findings` is what each audit row means to a person (a VM powered off, a host gone
/// NOT_RESPONDING), written with the row, so a day of changes is read without parsing a day of
/// audit JSON; the migration fills it for the rows already there. The history index serves
/// "each record's newest row of a kind at or before a time", which rebuilds the inventory at
/// that time from the audit trail.
const V5_CHANGES: &str = r#"
CREATE TABLE last_looks (
    user TEXT PRIMARY KEY,
    looked_at TIMESTAMP NOT NULL
);
CREATE INDEX idx_sync_history_type_device_time
    ON sync_history (change_type, device_id, performed_at);
CREATE TABLE change_findings (
    id INTEGER PRIMARY KEY,
    history_id INTEGER NOT NULL REFERENCES sync_history (id) ON DELETE CASCADE,
    performed_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    device_id INTEGER,
    subject TEXT,
    detail TEXT NOT NULL,
    other_device_id INTEGER,
    from_version INTEGER,
    to_version INTEGER,
    old_percent REAL,
    new_percent REAL
);
CREATE INDEX idx_change_findings_time ON change_findings (performed_at);
CREATE INDEX idx_change_findings_history ON change_findings (history_id);
"#;

/// Version 6: approval bound to what was reviewed. Each item keeps the SHA-256 of its target and
/// request as planned (`request_sha256`); approving copies it to `approved_sha256`, and apply
/// refuses an item whose request no longer hashes to it.
const V6_REVIEWED_DIGESTS: &str = r#"
ALTER TABLE netbox_sync_approvals ADD COLUMN request_sha256 TEXT;
ALTER TABLE netbox_sync_approvals ADD COLUMN approved_sha256 TEXT;
"#;

/// The tables of the schema, for row counts and documentation.
pub const TABLES: &[&str] = &[
    "devices",
    "device_relationships",
    "sync_metadata",
    "vms",
    "network_interfaces",
    "storage_volumes",
    "device_configs",
    "server_facts",
    "kb_articles",
    "issues",
    "embeddings",
    "sync_history",
    "netbox_sync_batches",
    "netbox_sync_approvals",
    "sync_runs",
    "volume_relationships",
    "machines",
    "last_looks",
    "change_findings",
];
