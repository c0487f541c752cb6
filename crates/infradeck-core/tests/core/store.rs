//! The store API against real SQLite files.

use infradeck_core::model::*;
use infradeck_core::store::*;
use serde_json::json;
use std::collections::BTreeMap;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("inventory.db"), &OpenOptions::default()).unwrap();
    (dir, store)
}

fn record(source: &str, instance: &str, id: &str, name: &str, ty: DeviceType) -> DeviceRecord {
    DeviceRecord {
        source_system: source.into(),
        source_identifier: instance.into(),
        source_id: id.into(),
        name: name.into(),
        device_type: ty,
        metadata: json!({ source: { "k": name } }),
    }
}

#[test]
fn upsert_adds_then_is_unchanged_then_updates_and_reactivates() {
    let (_dir, mut store) = open();
    let rec = record("vcenter", "vc1", "vm-1", "web01", DeviceType::Vm);
    let first = store
        .write(|w| w.upsert_device(&rec, "2026-01-01 00:00:00"))
        .unwrap();
    assert_eq!(first.change, Change::Added);
    let again = store
        .write(|w| w.upsert_device(&rec, "2026-01-02 00:00:00"))
        .unwrap();
    assert_eq!((again.id, again.change), (first.id, Change::Unchanged));
    let device = store.device(first.id).unwrap().unwrap();
    assert_eq!(device.last_seen.as_deref(), Some("2026-01-02 00:00:00"));
    assert_eq!(
        device.updated_at.as_deref(),
        Some("2026-01-01 00:00:00"),
        "unchanged: only last_seen moves"
    );

    let mut renamed = rec.clone();
    renamed.name = "web01-new".into();
    let updated = store
        .write(|w| w.upsert_device(&renamed, "2026-01-03 00:00:00"))
        .unwrap();
    match updated.change {
        Change::Updated { before } => assert_eq!(before.name, "web01"),
        other => panic!("expected an update, got {other:?}"),
    }

    store
        .write(|w| w.set_device_status(first.id, DeviceStatus::Inactive, "2026-01-04 00:00:00"))
        .unwrap();
    let back = store
        .write(|w| w.upsert_device(&renamed, "2026-01-05 00:00:00"))
        .unwrap();
    assert!(
        matches!(back.change, Change::Updated { .. }),
        "an inactive device seen again is an update"
    );
    assert_eq!(
        store.device(first.id).unwrap().unwrap().status,
        DeviceStatus::Active
    );
}

#[test]
fn same_source_id_in_two_instances_are_two_devices() {
    let (_dir, mut store) = open();
    let a = store
        .write(|w| {
            w.upsert_device(
                &record("vcenter", "vc1", "vm-1001", "a", DeviceType::Vm),
                "2026-01-01 00:00:00",
            )
        })
        .unwrap();
    let b = store
        .write(|w| {
            w.upsert_device(
                &record("vcenter", "vc2", "vm-1001", "b", DeviceType::Vm),
                "2026-01-01 00:00:00",
            )
        })
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(store.count_devices(&DeviceQuery::default()).unwrap(), 2);
}

#[test]
fn device_pages_filter_sort_and_count() {
    let (_dir, mut store) = open();
    store
        .write(|w| {
            for i in 0..50 {
                let ty = if i % 2 == 0 {
                    DeviceType::Vm
                } else {
                    DeviceType::Server
                };
                w.upsert_device(
                    &record(
                        "vcenter",
                        "vc1",
                        &format!("id-{i}"),
                        &format!("Host-{i:02}"),
                        ty,
                    ),
                    "2026-01-01 00:00:00",
                )?;
            }
            w.upsert_device(
                &record("foreman", "fm", "x", "100%_weird", DeviceType::Server),
                "2026-01-01 00:00:00",
            )?;
            Ok(())
        })
        .unwrap();
    let page = store
        .device_page(&DeviceQuery {
            name_contains: Some("host-1".into()),
            limit: 3,
            ..DeviceQuery::default()
        })
        .unwrap();
    assert_eq!(page.total, 10, "Host-10..Host-19, case-insensitive");
    let names: Vec<&str> = page.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Host-10", "Host-11", "Host-12"]);

    let desc = store
        .query_devices(&DeviceQuery {
            device_type: Some(DeviceType::Vm),
            descending: true,
            limit: 2,
            ..DeviceQuery::default()
        })
        .unwrap();
    assert_eq!(desc[0].name, "Host-48");
    assert_eq!(desc[1].name, "Host-46");

    let literal = store
        .query_devices(&DeviceQuery {
            name_contains: Some("%_".into()),
            ..DeviceQuery::default()
        })
        .unwrap();
    assert_eq!(literal.len(), 1, "LIKE wildcards in the filter are literal");
    let inverted = store
        .count_devices(&DeviceQuery {
            name_contains: Some("host".into()),
            invert_name: true,
            ..DeviceQuery::default()
        })
        .unwrap();
    assert_eq!(inverted, 1);
    let by_source = store
        .count_devices(&DeviceQuery {
            source_system: Some("foreman".into()),
            ..DeviceQuery::default()
        })
        .unwrap();
    assert_eq!(by_source, 1);
}

#[test]
fn configs_dedupe_by_hash_and_number_versions() {
    let (_dir, mut store) = open();
    let id = store
        .write(|w| {
            w.upsert_device(
                &record("oxidized", "ox", "sw1", "sw1", DeviceType::NetworkDevice),
                "2026-01-01 00:00:00",
            )
        })
        .unwrap()
        .id;
    let results = store
        .write(|w| {
            Ok(vec![
                w.store_config(id, "hostname sw1\n", "oxidized", "2026-01-01 00:00:00")?,
                w.store_config(id, "hostname sw1\n", "oxidized", "2026-01-02 00:00:00")?,
                w.store_config(id, "hostname sw1-new\n", "oxidized", "2026-01-03 00:00:00")?,
                w.store_config(id, "hostname sw1\n", "oxidized", "2026-01-04 00:00:00")?,
            ])
        })
        .unwrap();
    assert!(matches!(results[0], ConfigStored::New { version: 1, .. }));
    assert_eq!(results[1], ConfigStored::Unchanged { version: 1 });
    assert!(matches!(results[2], ConfigStored::New { version: 2, .. }));
    assert!(
        matches!(results[3], ConfigStored::New { version: 3, .. }),
        "a revert is a new version"
    );
    let versions = store.config_versions(id).unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(versions[0].config_hash, config_hash("hostname sw1\n"));
    assert_eq!(versions[0].config_hash.len(), 64);
    assert_eq!(
        store.config_text(versions[1].id).unwrap().as_deref(),
        Some("hostname sw1-new\n")
    );
}

#[test]
fn details_report_changes_and_detail_gathers_everything() {
    let (_dir, mut store) = open();
    let (host, vm) = store
        .write(|w| {
            let host = w
                .upsert_device(
                    &record("vcenter", "vc", "host-1", "esx01", DeviceType::Server),
                    "2026-01-01 00:00:00",
                )?
                .id;
            let vm = w
                .upsert_device(
                    &record("vcenter", "vc", "vm-1", "web01", DeviceType::Vm),
                    "2026-01-01 00:00:00",
                )?
                .id;
            w.link(
                host,
                vm,
                RelationshipType::Hosts,
                &serde_json::Value::Null,
                "2026-01-01 00:00:00",
            )?;
            Ok((host, vm))
        })
        .unwrap();
    let vm_rec = VmRecord {
        cpu_count: Some(2),
        memory_mb: Some(4096),
        power_state: Some("POWERED_ON".into()),
        ip_addresses: json!(["10.0.0.1"]),
        ..VmRecord::default()
    };
    assert_eq!(
        store.write(|w| w.upsert_vm(vm, &vm_rec)).unwrap(),
        Change::Added
    );
    assert_eq!(
        store.write(|w| w.upsert_vm(vm, &vm_rec)).unwrap(),
        Change::Unchanged
    );
    let eth0 = InterfaceRecord {
        interface_name: "eth0".into(),
        mac_address: Some("00:50:56:aa:bb:cc".into()),
        ip_addresses: vec!["10.0.0.1/24".into()],
        ..InterfaceRecord::default()
    };
    assert_eq!(
        store
            .write(|w| w.replace_interfaces(vm, std::slice::from_ref(&eth0)))
            .unwrap(),
        Change::Added
    );
    assert_eq!(
        store
            .write(|w| w.replace_interfaces(vm, std::slice::from_ref(&eth0)))
            .unwrap(),
        Change::Unchanged
    );

    let mut facts = BTreeMap::from([
        ("kernel".to_string(), "6.1".to_string()),
        ("cpus".to_string(), "2".to_string()),
    ]);
    let diff = store
        .write(|w| w.replace_facts(vm, &facts, "2026-01-01 00:00:00"))
        .unwrap();
    assert_eq!(diff.added.len(), 2);
    facts.insert("kernel".into(), "6.2".into());
    facts.remove("cpus");
    let diff = store
        .write(|w| w.replace_facts(vm, &facts, "2026-01-02 00:00:00"))
        .unwrap();
    assert_eq!(
        diff.changed,
        vec![(
            "kernel".to_string(),
            Some("6.1".to_string()),
            "6.2".to_string()
        )]
    );
    assert_eq!(
        diff.removed,
        vec![("cpus".to_string(), Some("2".to_string()))]
    );

    let detail = store.device_detail(vm).unwrap().unwrap();
    assert_eq!(detail.vm.unwrap().vm.memory_mb, Some(4096));
    assert_eq!(detail.interfaces[0].interface.ip_addresses, ["10.0.0.1/24"]);
    assert_eq!(detail.facts.len(), 1);
    assert_eq!(detail.related.len(), 1);
    assert!(detail.related[0].is_parent);
    assert_eq!(detail.related[0].device.id, host);
}

#[test]
fn relationship_trees_go_both_ways_and_survive_cycles() {
    let (_dir, mut store) = open();
    let ids = store
        .write(|w| {
            let at = "2026-01-01 00:00:00";
            let cluster = w
                .upsert_device(
                    &record("vcenter", "vc", "domain-c8", "Prod", DeviceType::Server),
                    at,
                )?
                .id;
            let host = w
                .upsert_device(
                    &record("vcenter", "vc", "host-1", "esx01", DeviceType::Server),
                    at,
                )?
                .id;
            let vm1 = w
                .upsert_device(
                    &record("vcenter", "vc", "vm-1", "web01", DeviceType::Vm),
                    at,
                )?
                .id;
            let vm2 = w
                .upsert_device(&record("vcenter", "vc", "vm-2", "db01", DeviceType::Vm), at)?
                .id;
            w.link(
                cluster,
                host,
                RelationshipType::Hosts,
                &serde_json::Value::Null,
                at,
            )?;
            w.link(
                host,
                vm1,
                RelationshipType::Hosts,
                &serde_json::Value::Null,
                at,
            )?;
            w.link(
                host,
                vm2,
                RelationshipType::Hosts,
                &serde_json::Value::Null,
                at,
            )?;
            // A deliberate cycle: the walk must terminate.
            w.link(
                vm2,
                cluster,
                RelationshipType::Manages,
                &serde_json::Value::Null,
                at,
            )?;
            Ok([cluster, host, vm1, vm2])
        })
        .unwrap();
    let down = store
        .relationship_tree(ids[0], Direction::Down, 10)
        .unwrap()
        .unwrap();
    assert_eq!(down.children.len(), 1);
    let host = &down.children[0];
    let vm_names: Vec<&str> = host
        .children
        .iter()
        .map(|c| c.device.name.as_str())
        .collect();
    assert_eq!(vm_names, ["db01", "web01"]);
    assert!(
        host.children[0].truncated,
        "db01 → Prod closes a cycle and is cut"
    );

    let up = store
        .relationship_tree(ids[2], Direction::Up, 10)
        .unwrap()
        .unwrap();
    assert_eq!(up.children[0].device.name, "esx01");
    assert_eq!(up.children[0].children[0].device.name, "Prod");

    let shallow = store
        .relationship_tree(ids[0], Direction::Down, 1)
        .unwrap()
        .unwrap();
    assert!(shallow.children[0].truncated && shallow.children[0].children.is_empty());
}

#[test]
fn deleting_a_device_cascades() {
    let (_dir, mut store) = open();
    let vm = store
        .write(|w| {
            let at = "2026-01-01 00:00:00";
            let vm = w
                .upsert_device(
                    &record("vcenter", "vc", "vm-1", "web01", DeviceType::Vm),
                    at,
                )?
                .id;
            let host = w
                .upsert_device(
                    &record("vcenter", "vc", "host-1", "esx01", DeviceType::Server),
                    at,
                )?
                .id;
            w.link(
                host,
                vm,
                RelationshipType::Hosts,
                &serde_json::Value::Null,
                at,
            )?;
            w.upsert_vm(vm, &VmRecord::default())?;
            w.store_config(vm, "x", "oxidized", at)?;
            Ok(vm)
        })
        .unwrap();
    assert!(store.write(|w| w.delete_device(vm)).unwrap());
    let counts: BTreeMap<_, _> = store.table_counts().unwrap().into_iter().collect();
    assert_eq!(counts["vms"], 0);
    assert_eq!(counts["device_relationships"], 0);
    assert_eq!(counts["device_configs"], 0);
    assert_eq!(counts["devices"], 1);
    assert!(store.check().unwrap().is_healthy());
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let (_dir, mut store) = open();
    let result: Result<()> = store.write(|w| {
        w.upsert_device(
            &record("vcenter", "vc", "vm-1", "web01", DeviceType::Vm),
            "2026-01-01 00:00:00",
        )?;
        Err(Error::Conflict("simulated failure half-way".into()))
    });
    assert!(result.is_err());
    assert_eq!(store.count_devices(&DeviceQuery::default()).unwrap(), 0);
}

#[test]
fn run_lock_blocks_a_second_run_until_the_first_goes_stale() {
    let (_dir, mut store) = open();
    let owner = RunOwner {
        pid: 4242,
        host: "bastion",
    };
    let first = store
        .write(|w| {
            w.begin_run(
                "run-1",
                "vcenter",
                "vc1",
                &owner,
                "2026-01-01 10:00:00",
                "2026-01-01 09:59:00",
            )
        })
        .unwrap();
    assert_eq!(first.status, RunStatus::Running);
    let err = store
        .write(|w| {
            w.begin_run(
                "run-2",
                "vcenter",
                "vc1",
                &owner,
                "2026-01-01 10:00:30",
                "2026-01-01 09:59:30",
            )
        })
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("run-1") && message.contains("4242") && message.contains("bastion"),
        "{message}"
    );
    // Another instance is independent.
    store
        .write(|w| {
            w.begin_run(
                "run-3",
                "vcenter",
                "vc2",
                &owner,
                "2026-01-01 10:00:30",
                "2026-01-01 09:59:30",
            )
        })
        .unwrap();
    // Much later, run-1 never sent a heartbeat again: it is abandoned and run-4 proceeds.
    store
        .write(|w| {
            w.begin_run(
                "run-4",
                "vcenter",
                "vc1",
                &owner,
                "2026-01-01 11:00:00",
                "2026-01-01 10:59:00",
            )
        })
        .unwrap();
    let abandoned = store.run("run-1").unwrap().unwrap();
    assert_eq!(abandoned.status, RunStatus::Failed);
    assert!(abandoned.message.unwrap().contains("abandoned"));
}

#[test]
fn run_progress_cancel_finish_and_source_status() {
    let (_dir, mut store) = open();
    let owner = RunOwner { pid: 1, host: "h" };
    store
        .write(|w| {
            w.begin_run(
                "r",
                "foreman",
                "fm",
                &owner,
                "2026-01-01 10:00:00",
                "2026-01-01 09:59:00",
            )
        })
        .unwrap();
    let progress = RunProgress {
        phase: "fetch",
        done: 5,
        total: Some(10),
        ..RunProgress::default()
    };
    assert!(
        !store
            .write(|w| w.run_progress("r", &progress, "2026-01-01 10:00:01"))
            .unwrap()
    );
    assert!(store.write(|w| w.request_cancel("r")).unwrap());
    assert!(
        store
            .write(|w| w.run_progress("r", &progress, "2026-01-01 10:00:02"))
            .unwrap()
    );
    store
        .write(|w| {
            w.finish_run(
                "r",
                RunStatus::Cancelled,
                Some("cancelled by user"),
                &progress,
                "2026-01-01 10:00:03",
            )?;
            w.record_sync_result(&RunSummary {
                source_system: "foreman",
                source_identifier: "fm",
                started_at: "2026-01-01 10:00:00",
                finished_at: "2026-01-01 10:00:03",
                status: RunStatus::Cancelled,
                duration_seconds: 3.0,
                added: 0,
                updated: 0,
                removed: 0,
                error_message: Some("cancelled by user"),
            })
        })
        .unwrap();
    let statuses = store.source_statuses().unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        statuses[0].last_sync_complete, None,
        "only success completes"
    );
    assert_eq!(
        statuses[0].latest_run.as_ref().unwrap().status,
        RunStatus::Cancelled
    );
}

#[test]
fn approvals_are_conditional_so_two_reviewers_cannot_both_win() {
    let (_dir, mut store) = open();
    let items = vec![
        NewApprovalItem {
            device_id: None,
            action: ApprovalAction::Create,
            netbox_object_type: "virtualization.virtualmachine".into(),
            netbox_object_id: None,
            proposed_changes: json!({"name": "web01"}),
        },
        NewApprovalItem {
            device_id: None,
            action: ApprovalAction::Delete,
            netbox_object_type: "dcim.device".into(),
            netbox_object_id: Some(7),
            proposed_changes: json!({}),
        },
    ];
    let ids = store
        .write(|w| {
            w.create_batch(
                &NewBatch {
                    batch_id: "b1",
                    netbox_url: "http://nb",
                    planned_at: "2026-01-01 00:00:00",
                    planned_by: "alice",
                    metadata: json!({}),
                },
                &items,
            )
        })
        .unwrap();
    let approve = Review {
        from: ApprovalStatus::Pending,
        to: ApprovalStatus::Approved,
        reviewer: "alice",
        comment: None,
        at: "2026-01-01 00:01:00",
    };
    let reject = Review {
        from: ApprovalStatus::Pending,
        to: ApprovalStatus::Rejected,
        reviewer: "bob",
        comment: Some("not ours"),
        at: "2026-01-01 00:01:01",
    };
    assert_eq!(
        store
            .write(|w| w.review_items("b1", &ids[..1], &approve))
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .write(|w| w.review_items("b1", &ids[..1], &reject))
            .unwrap(),
        0,
        "already approved"
    );
    assert_eq!(
        store.write(|w| w.review_items("b1", &[], &reject)).unwrap(),
        1,
        "the rest of the batch"
    );
    let got = store.batch_items("b1").unwrap();
    assert_eq!(got[0].approval_status, ApprovalStatus::Approved);
    assert_eq!(got[1].approval_status, ApprovalStatus::Rejected);
    assert_eq!(got[1].review_comment.as_deref(), Some("not ours"));
    assert_eq!(got[1].approved_by.as_deref(), Some("bob"));
    let batch = &store.batches().unwrap()[0];
    assert_eq!(
        (batch.creates, batch.deletes, batch.approved, batch.rejected),
        (1, 1, 1, 1)
    );
}

#[test]
fn knowledge_upserts_and_embeddings_round_trip() {
    let (_dir, mut store) = open();
    let page = KbArticleRecord {
        source_id: "65538".into(),
        title: "DB runbook".into(),
        labels: vec!["db".into()],
        ..KbArticleRecord::default()
    };
    let (id, change) = store
        .write(|w| w.upsert_kb_article(&page, "2026-01-01 00:00:00"))
        .unwrap();
    assert_eq!(change, Change::Added);
    assert_eq!(
        store
            .write(|w| w.upsert_kb_article(&page, "2026-01-02 00:00:00"))
            .unwrap()
            .1,
        Change::Unchanged
    );
    let issue = IssueRecord {
        issue_key: "OPS-1".into(),
        summary: Some("PSU".into()),
        comments: json!([{"body": "ordered"}]),
        ..IssueRecord::default()
    };
    store
        .write(|w| w.upsert_issue(&issue, "2026-01-01 00:00:00"))
        .unwrap();
    assert_eq!(
        store.issue("OPS-1").unwrap().unwrap().issue.comments[0]["body"],
        "ordered"
    );
    let vector = vec![0.25f32, -1.5, 3.0];
    store
        .write(|w| {
            w.replace_embeddings(
                "kb_article",
                id,
                "mini",
                &[("chunk".into(), vector.clone())],
                "2026-01-01 00:00:00",
            )
        })
        .unwrap();
    let rows = store.embeddings_of("kb_article", id).unwrap();
    assert_eq!(rows[0].vector, vector);
    assert_eq!(encode_vector(&vector).len(), 12);
}

#[test]
fn history_reads_newest_first_per_device() {
    let (_dir, mut store) = open();
    let id = store
        .write(|w| {
            w.upsert_device(
                &record("vcenter", "vc", "vm-1", "web01", DeviceType::Vm),
                "2026-01-01 00:00:00",
            )
        })
        .unwrap()
        .id;
    store
        .write(|w| {
            for (i, at) in ["2026-01-01 00:00:00", "2026-01-02 00:00:00"]
                .iter()
                .enumerate()
            {
                w.record_history(&NewHistory {
                    sync_id: "s",
                    source_system: "vcenter",
                    source_identifier: "vc",
                    operation: "update",
                    device_id: Some(id),
                    change_type: "device",
                    old_value: json!({"n": i}),
                    new_value: json!({"n": i + 1}),
                    performed_by: "test",
                    performed_at: at,
                    metadata: serde_json::Value::Null,
                })?;
            }
            Ok(())
        })
        .unwrap();
    let history = store.history(Some(id), 10).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0].performed_at.as_deref(),
        Some("2026-01-02 00:00:00")
    );
    assert_eq!(history[0].device_name.as_deref(), Some("web01"));
    assert_eq!(store.history(None, 1).unwrap().len(), 1);
}

#[test]
fn maintain_marks_stale_prunes_history_and_configs() {
    let (_dir, mut store) = open();
    let (old, fresh) = store
        .write(|w| {
            let old = w
                .upsert_device(
                    &record("vcenter", "vc", "vm-1", "old", DeviceType::Vm),
                    "2025-01-01 00:00:00",
                )?
                .id;
            let fresh = w
                .upsert_device(
                    &record("vcenter", "vc", "vm-2", "fresh", DeviceType::Vm),
                    "2026-06-01 00:00:00",
                )?
                .id;
            for v in 0..12 {
                w.store_config(fresh, &format!("v{v}"), "oxidized", "2026-06-01 00:00:00")?;
            }
            w.record_history(&NewHistory {
                sync_id: "ancient",
                source_system: "vcenter",
                source_identifier: "vc",
                operation: "add",
                device_id: Some(old),
                change_type: "device",
                old_value: serde_json::Value::Null,
                new_value: json!({}),
                performed_by: "test",
                performed_at: "2024-01-01 00:00:00",
                metadata: serde_json::Value::Null,
            })?;
            Ok((old, fresh))
        })
        .unwrap();
    let report = store
        .maintain(&MaintainOptions {
            stale_after_days: 90,
            history_retention_days: 365,
            config_versions_kept: 10,
            vacuum: true,
            now: "2026-06-02 00:00:00",
            performed_by: "tester",
            sync_id: "maintain-1",
        })
        .unwrap();
    assert_eq!(report.devices_marked_inactive, 1);
    assert_eq!(report.history_rows_deleted, 1);
    assert_eq!(report.config_versions_deleted, 2);
    assert!(report.vacuumed);
    assert_eq!(
        store.device(old).unwrap().unwrap().status,
        DeviceStatus::Inactive
    );
    assert_eq!(
        store.device(fresh).unwrap().unwrap().status,
        DeviceStatus::Active
    );
    let versions: Vec<i64> = store
        .config_versions(fresh)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions.first(), Some(&12));
    assert_eq!(versions.last(), Some(&3));
    let audit = store.history(Some(old), 10).unwrap();
    assert_eq!(audit.len(), 1, "the stale marking is audited");
    assert_eq!(audit[0].performed_by.as_deref(), Some("tester"));
}

#[test]
fn newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    drop(Store::open(&path, &OpenOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = Store::open(&path, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("99") && err.contains(&schema::LATEST_VERSION.to_string()),
        "{err}"
    );
    assert!(err.contains("newer infradeck"), "{err}");
}

#[test]
fn name_index_answers_exactly_like_sql_and_follows_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    let mut store = Store::open(&path, &OpenOptions::default()).unwrap();
    store
        .write(|w| {
            for i in 0..300 {
                let ty = [
                    DeviceType::Vm,
                    DeviceType::Server,
                    DeviceType::NetworkDevice,
                ][i % 3];
                let source = ["vcenter", "foreman"][i % 2];
                let name = format!("{}-{:03}.Lab.local", ["Web", "db", "APP"][i % 3], i % 97);
                w.upsert_device(
                    &record(source, "x", &format!("id-{i}"), &name, ty),
                    "2026-01-01 00:00:00",
                )?;
            }
            Ok(())
        })
        .unwrap();
    let queries = vec![
        DeviceQuery {
            name_contains: Some("web".into()),
            limit: 7,
            offset: 3,
            ..DeviceQuery::default()
        },
        DeviceQuery {
            name_contains: Some("-01".into()),
            descending: true,
            ..DeviceQuery::default()
        },
        DeviceQuery {
            name_contains: Some("LAB".into()),
            device_type: Some(DeviceType::Server),
            source_system: Some("foreman".into()),
            ..DeviceQuery::default()
        },
        DeviceQuery {
            name_contains: Some("app".into()),
            invert_name: true,
            limit: 50,
            ..DeviceQuery::default()
        },
        DeviceQuery {
            name_contains: Some("nomatch".into()),
            ..DeviceQuery::default()
        },
    ];
    for query in &queries {
        let by_sql = store.device_page(query).unwrap();
        let by_index = store.device_page(query).unwrap();
        let ids = |p: &DevicePage| p.devices.iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(&by_sql), ids(&by_index), "{query:?}");
        assert_eq!(by_sql.total, by_index.total, "{query:?}");
    }
    let web = DeviceQuery {
        name_contains: Some("zzz".into()),
        ..DeviceQuery::default()
    };
    assert_eq!(store.count_devices(&web).unwrap(), 0);
    assert_eq!(store.count_devices(&web).unwrap(), 0);
    // Our own write invalidates the index...
    store
        .write(|w| {
            w.upsert_device(
                &record("vcenter", "x", "new-1", "zzz-1", DeviceType::Vm),
                "2026-01-01 00:00:00",
            )
        })
        .unwrap();
    assert_eq!(store.count_devices(&web).unwrap(), 1);
    assert_eq!(store.count_devices(&web).unwrap(), 1);
    // ...and so does another connection's.
    let mut other = Store::open(&path, &OpenOptions::default()).unwrap();
    other
        .write(|w| {
            w.upsert_device(
                &record("vcenter", "x", "new-2", "zzz-2", DeviceType::Vm),
                "2026-01-01 00:00:00",
            )
        })
        .unwrap();
    assert_eq!(store.count_devices(&web).unwrap(), 2);
    assert_eq!(store.count_devices(&web).unwrap(), 2);
}

#[test]
fn bulk_upsert_matches_single_upserts() {
    let (_dir, mut store) = open();
    let mut records: Vec<DeviceRecord> = (0..900)
        .map(|i| {
            record(
                "vcenter",
                if i % 2 == 0 { "a" } else { "b" },
                &format!("vm-{i}"),
                &format!("n{i}"),
                DeviceType::Vm,
            )
        })
        .collect();
    let first = store
        .write(|w| w.upsert_devices(&records, "2026-01-01 00:00:00"))
        .unwrap();
    assert!(first.iter().all(|u| u.change == Change::Added));
    let ids: std::collections::BTreeSet<i64> = first.iter().map(|u| u.id).collect();
    assert_eq!(ids.len(), 900);
    for (u, r) in first.iter().zip(&records) {
        assert_eq!(
            store.device(u.id).unwrap().unwrap().source_id,
            r.source_id,
            "ids line up with records"
        );
    }
    records[5].name = "renamed".into();
    records.push(record("vcenter", "a", "vm-new", "fresh", DeviceType::Vm));
    let second = store
        .write(|w| w.upsert_devices(&records, "2026-01-02 00:00:00"))
        .unwrap();
    assert_eq!(second.len(), 901);
    assert!(matches!(&second[5].change, Change::Updated { before } if before.name == "n5"));
    assert_eq!(second[900].change, Change::Added);
    assert_eq!(
        second
            .iter()
            .filter(|u| u.change == Change::Unchanged)
            .count(),
        899
    );
    assert_eq!(
        store
            .device(second[0].id)
            .unwrap()
            .unwrap()
            .last_seen
            .as_deref(),
        Some("2026-01-02 00:00:00")
    );
    let dup = vec![records[0].clone(), records[0].clone()];
    let mut dup_new = dup.clone();
    for d in &mut dup_new {
        d.source_id = "dup".into();
    }
    assert!(
        store
            .write(|w| w.upsert_devices(&dup_new, "2026-01-03 00:00:00"))
            .is_err(),
        "a duplicate key in one batch is an error"
    );
}

#[test]
fn many_connections_opening_a_new_database_at_once_all_succeed() {
    // The engine opens one connection per source at the same moment; on a brand-new file they
    // all race to switch it to WAL, which SQLite answers with an immediate BUSY.
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("race-{round}.db"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path, &OpenOptions::default()).map(|s| s.schema_version())
                })
            })
            .collect();
        for handle in handles {
            let version = handle.join().unwrap().unwrap().unwrap();
            assert!(version >= 3, "round {round}: schema version {version}");
        }
        let store = Store::open(&path, &OpenOptions::default()).unwrap();
        assert_eq!(store.journal_mode().unwrap(), "wal");
    }
}

#[test]
fn the_unchanged_fast_path_touches_only_devices_still_stored_as_fingerprinted() {
    let (_dir, mut store) = open();
    let records: Vec<DeviceRecord> = (0..3)
        .map(|i| {
            record(
                "vcenter",
                "vc1",
                &format!("vm-{i}"),
                &format!("web0{i}"),
                DeviceType::Vm,
            )
        })
        .collect();
    let refs: Vec<&DeviceRecord> = records.iter().collect();
    let ups = store
        .write(|w| w.upsert_devices_fingerprinted(&refs, &[11, 22, 33], "2026-01-01 00:00:00"))
        .unwrap();
    let ids: Vec<i64> = ups.iter().map(|u| u.id).collect();
    // Another source instance and an inactive device are not part of the run's known set.
    let other = record("vcenter", "vc2", "vm-0", "web00", DeviceType::Vm);
    store
        .write(|w| w.upsert_devices_fingerprinted(&[&other], &[11], "2026-01-01 00:00:00"))
        .unwrap();
    store
        .write(|w| w.set_device_status(ids[2], DeviceStatus::Inactive, "2026-01-02 00:00:00"))
        .unwrap();
    let known = store
        .write(|w| w.fingerprinted_devices("vcenter", "vc1"))
        .unwrap();
    assert_eq!(known.len(), 2, "{known:?}");
    assert_eq!(known["vm-0"], (ids[0], 11));
    assert_eq!(known["vm-1"], (ids[1], 22));

    // vm-0 as known; vm-1 with a fingerprint another writer has since replaced; vm-2 inactive.
    let touched = store
        .write(|w| {
            w.touch_unchanged(
                &[(ids[0], 11), (ids[1], 99), (ids[2], 33)],
                "2026-01-03 00:00:00",
            )
        })
        .unwrap();
    assert_eq!(touched.into_iter().collect::<Vec<_>>(), vec![ids[0]]);
    let seen = |id: i64| store.device(id).unwrap().unwrap().last_seen;
    assert_eq!(seen(ids[0]).as_deref(), Some("2026-01-03 00:00:00"));
    assert_eq!(seen(ids[1]).as_deref(), Some("2026-01-01 00:00:00"));
    assert_eq!(seen(ids[2]).as_deref(), Some("2026-01-01 00:00:00"));
}

fn history_row<'a>(
    device_id: i64,
    change_type: &'a str,
    operation: &'a str,
    old: serde_json::Value,
    new: serde_json::Value,
    at: &'a str,
) -> NewHistory<'a> {
    NewHistory {
        sync_id: "s1",
        source_system: "vcenter",
        source_identifier: "vc1",
        operation,
        device_id: Some(device_id),
        change_type,
        old_value: old,
        new_value: new,
        performed_by: "tester",
        performed_at: at,
        metadata: serde_json::Value::Null,
    }
}

fn vm_state(power: &str, host: &str, tools: bool) -> serde_json::Value {
    json!({"name": "web01", "device_type": "vm", "status": "active",
        "metadata": {"vcenter": {"power_state": power, "host": host, "fqdn": if tools { "web01.example.net" } else { "" },
            "uptime": if tools { 10 } else { 0 }}}})
}

/// The digest reads what each audit row means; noise (a guest's fqdn coming and going with
/// its tools, uptime) is no change, and a database from before the findings index gets them
/// from its existing rows when it is migrated.
#[test]
fn changes_are_classified_and_noise_is_left_out_also_after_migrating_an_old_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.db");
    let mut store = Store::open(&path, &OpenOptions::default()).unwrap();
    let id = store
        .write(|w| {
            w.upsert_device(
                &record("vcenter", "vc1", "vm-1", "web01", DeviceType::Vm),
                "2026-12-01 09:00:00",
            )
        })
        .unwrap()
        .id;
    store
        .write(|w| {
            w.record_history(&history_row(
                id,
                "device",
                "add",
                json!(null),
                vm_state("POWERED_ON", "esx1", true),
                "2026-12-01 09:00:00",
            ))?;
            // Tools flapping: fqdn and uptime move, nothing a person asked about.
            w.record_history(&history_row(
                id,
                "device",
                "update",
                vm_state("POWERED_ON", "esx1", true),
                vm_state("POWERED_ON", "esx1", false),
                "2026-12-01 10:00:00",
            ))?;
            w.record_history(&history_row(
                id,
                "device",
                "update",
                vm_state("POWERED_ON", "esx1", false),
                vm_state("POWERED_OFF", "esx2", false),
                "2026-12-01 11:00:00",
            ))?;
            w.record_history(&history_row(
                id,
                "facts",
                "update",
                json!({"uptime": 1}),
                json!({"uptime": 2}),
                "2026-12-01 11:00:00",
            ))?;
            Ok(())
        })
        .unwrap();
    let rules = infradeck_core::machines::HealthRules::default();
    let kinds = |store: &Store, since: &str| -> Vec<(String, String)> {
        infradeck_core::changes::digest(store, since, "2026-12-02 00:00:00", &rules)
            .unwrap()
            .changes
            .iter()
            .map(|c| (c.kind.as_str().to_string(), c.details.join("; ")))
            .collect()
    };
    let expected = vec![
        ("moved".to_string(), "host esx1 → esx2".to_string()),
        ("power".to_string(), "power on → off".to_string()),
    ];
    assert_eq!(kinds(&store, "2026-12-01 09:30:00"), expected);
    assert_eq!(kinds(&store, "2026-12-01 00:00:00")[0].0, "moved");
    assert!(
        kinds(&store, "2026-12-01 00:00:00")
            .iter()
            .any(|(k, _)| k == "appeared")
    );
    drop(store);

    // As a version-4 database had it: the audit rows, no findings.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE change_findings; DROP TABLE last_looks; \
         DROP INDEX idx_sync_history_type_device_time; \
         ALTER TABLE netbox_sync_approvals DROP COLUMN request_sha256; \
         ALTER TABLE netbox_sync_approvals DROP COLUMN approved_sha256; PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::LATEST_VERSION);
    assert_eq!(
        kinds(&store, "2026-12-01 09:30:00"),
        expected,
        "the migration indexed the old rows"
    );
}
