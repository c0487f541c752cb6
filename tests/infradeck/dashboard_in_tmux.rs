//! The real binary in a real terminal (tmux), driven by keystrokes only, asserting on what
//! `capture-pane` shows: filter, detail, tree, config diff, a sync with live progress, a NetBox
//! rejection with a reason, and a hostile device name that must not act on the terminal.
//! Every wait is for a condition on screen, with a deadline.

use infradeck_core::model::{ApprovalAction, ApprovalStatus, DeviceRecord, DeviceType};
use infradeck_core::store::{NewApprovalItem, NewBatch, OpenOptions, Store};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;

/// One tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    home: tempfile::TempDir,
}

impl Tmux {
    fn start(args: &[&str], config: Option<&Path>) -> Tmux {
        let home = tempfile::tempdir().unwrap();
        let socket = format!(
            "infradeck-test-{}-{}",
            std::process::id(),
            home.path().file_name().unwrap().to_string_lossy()
        );
        let mut command = format!(
            "env HOME={home} XDG_CONFIG_HOME={home}/.config XDG_DATA_HOME={home}/.local/share XDG_STATE_HOME={home}/.local/state TERM=xterm-256color {bin}",
            home = home.path().display(),
            bin = env!("CARGO_BIN_EXE_infradeck"),
        );
        if let Some(config) = config {
            command.push_str(&format!(" --config {}", config.display()));
        }
        for arg in args {
            command.push(' ');
            command.push_str(arg);
        }
        // After the dashboard exits the pane shows its exit status and the restored screen.
        command.push_str("; echo EXIT=$?; sleep 600");
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "36",
                &command,
            ])
            .status()
            .expect("tmux must be installed (.ci/run installs it)");
        assert!(status.success());
        Tmux { socket, home }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Runs a `:` command (typed, then Enter).
    fn command(&self, command: &str) {
        self.keys(&[":"]);
        self.type_text(command);
        self.keys(&["Enter"]);
    }

    /// From anywhere: `:configs`, the first device, `d` on its newest version.
    fn open_a_config_diff(&self) {
        self.command("configs");
        self.wait_text("VERSIONS");
        self.keys(&["Enter"]);
        self.wait_text("SHA-256");
        self.keys(&["d"]);
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `check`, or fails with what was on screen.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn wait_text(&self, needle: &str) -> String {
        self.wait_for(needle, |s| s.contains(needle))
    }

    fn pane_title(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "display-message",
                "-p",
                "-t",
                "0",
                "#{pane_title}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
        let _ = &self.home;
    }
}

fn plan_batch(db: &Path) {
    let mut store = Store::open(db, &OpenOptions::default()).unwrap();
    let vm = store
        .query_devices(&infradeck_core::store::DeviceQuery {
            device_type: Some(DeviceType::Vm),
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    store
        .write(|w| {
            w.create_batch(
                &NewBatch {
                    batch_id: "nb-e2e-1",
                    netbox_url: "http://127.0.0.1:1",
                    planned_at: &infradeck_core::time::now(),
                    planned_by: "planner",
                    metadata: json!({}),
                },
                &[NewApprovalItem {
                    device_id: Some(vm.id),
                    action: ApprovalAction::Update,
                    netbox_object_type: "virtualization.virtualmachine".into(),
                    netbox_object_id: Some(5),
                    proposed_changes: json!({"fields": {"vcpus": {"from": 2, "to": 4}}}),
                }],
            )
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn keystrokes_walk_the_dashboard_from_filter_to_netbox_rejection() {
    let rig = common::start_rig(60, 5).await;
    let outcomes = rig.run(&["vcenter", "oxidized"]).await;
    outcomes.iter().for_each(common::ok);
    let db = rig.dir.path().join("inventory.db");
    plan_batch(&db);
    let estate = rig.sims.estate.read().unwrap().clone();
    // A VM whose name no other VM contains, so the filter narrows to exactly one row.
    let vm = estate
        .vms
        .iter()
        .find(|v| {
            estate
                .vms
                .iter()
                .filter(|o| o.name.to_lowercase().contains(&v.name.to_lowercase()))
                .count()
                == 1
        })
        .unwrap()
        .clone();
    let host = estate.hosts[vm.host].name.clone();
    let config = rig.dir.path().join("config.toml");
    let mut vm_names: Vec<String> = estate
        .vms
        .iter()
        .filter(|v| !v.deleted)
        .map(|v| v.name.clone())
        .collect();
    vm_names.sort_by_key(|n| infradeck_core::text::natural_key(n));
    assert!(
        vm_names
            .iter()
            .any(|n| n.chars().any(|c| c.is_ascii_uppercase())),
        "the estate has upper-case names, which a byte-wise sort would put first"
    );

    let tmux = tokio::task::spawn_blocking(move || {
        let tmux = Tmux::start(&[], Some(&config));
        tmux.wait_text("devices");
        // Names sort as people read them: case-insensitively, numbers by value.
        tmux.keys(&["/"]);
        tmux.type_text("type:vm");
        tmux.keys(&["Enter"]);
        // Once the filter is kept (the line editor gone), the list is what stays on screen.
        let count = format!("of {} machines", vm_names.len());
        let screen = tmux.wait_for("the kept filter", |s| {
            s.contains(&count) && !s.contains("<Enter>keep")
        });
        let shown: Vec<&str> = screen
            .lines()
            .skip_while(|l| !l.contains("NAME"))
            .skip(1)
            .take_while(|l| !l.starts_with('<'))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(shown.len() > 10, "{screen}");
        assert_eq!(shown, vm_names[..shown.len()], "{screen}");
        tmux.keys(&["Escape"]);
        tmux.wait_for("the filter cleared", |s| !s.contains("[/type:vm]"));
        // Filter to one VM, as you type.
        tmux.keys(&["/"]);
        tmux.type_text(&vm.name);
        tmux.wait_text("1 of 1");
        tmux.keys(&["Enter", "Enter"]);
        tmux.wait_text("virtual machine");
        // Follow the VM to its host in the tree.
        tmux.keys(&["t"]);
        let screen = tmux.wait_text("what it depends on");
        assert!(
            screen.contains(&host),
            "the tree shows the host {host}:\n{screen}"
        );
        // Diff two config versions of a switch.
        tmux.open_a_config_diff();
        let screen = tmux.wait_text("@@ -");
        assert!(screen.contains("hunk 1/"), "{screen}");
        tmux.keys(&["i"]);
        tmux.wait_text("volatile");
        // Start a sync and watch it run to the end.
        tmux.command("sync");
        tmux.wait_text("run log");
        tmux.keys(&["s"]);
        tmux.wait_for("the run to start", |s| {
            s.contains("started vcenter/") || s.contains("started (")
        });
        // The footer's outcome message comes last, after correlation: wait for it, so no later
        // message replaces the ones the next steps look for.
        tmux.wait_text("vcenter/vcenter-sim: success");
        // Reject a NetBox item with a reason.
        tmux.command("netbox");
        tmux.wait_text("nb-e2e-1");
        tmux.keys(&["Enter"]);
        tmux.wait_text("proposed change");
        tmux.keys(&["r"]);
        tmux.wait_text("reject item");
        tmux.type_text("wrong cluster");
        tmux.keys(&["Enter"]);
        tmux.wait_text("rejected by");
        tmux.keys(&["q"]);
        let screen = tmux.wait_text("EXIT=");
        assert!(screen.contains("EXIT=0"), "{screen}");
        assert!(
            !screen.contains("run log"),
            "the alternate screen is gone:\n{screen}"
        );
        tmux
    })
    .await
    .unwrap();
    drop(tmux);

    let store = rig.store();
    let items = store.batch_items("nb-e2e-1").unwrap();
    assert_eq!(items[0].approval_status, ApprovalStatus::Rejected);
    assert_eq!(items[0].review_comment.as_deref(), Some("wrong cluster"));
    let vcenter_runs = store
        .recent_runs(20)
        .unwrap()
        .into_iter()
        .filter(|r| r.source_system == "vcenter")
        .count();
    assert_eq!(vcenter_runs, 2, "the dashboard ran a second vCenter sync");
}

#[test]
fn a_hostile_device_name_leaves_the_terminal_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inventory.db");
    let mut store = Store::open(&db, &OpenOptions::default()).unwrap();
    store
        .write(|w| {
            w.upsert_device(
                &DeviceRecord {
                    source_system: "vcenter".into(),
                    source_identifier: "vc1".into(),
                    source_id: "vm-1".into(),
                    name: "evil\x1b[2J\x1b]0;owned\x07\u{202e}name\rX".into(),
                    device_type: DeviceType::Vm,
                    metadata: json!({}),
                },
                &infradeck_core::time::now(),
            )
        })
        .unwrap();
    drop(store);
    let db_arg = format!("--db {}", db.display());
    let tmux = Tmux::start(&[&db_arg], None);
    tmux.wait_text("1 of 1");

    // `y` copies the name through OSC 52, wrapped for tmux (the pane runs with $TMUX set). What
    // the dashboard writes is captured from the pane's output stream and decoded: the clipboard
    // gets the sanitized name, with no control byte in it.
    let capture = dir.path().join("pane-output");
    let status = Command::new("tmux")
        .args(["-L", &tmux.socket, "pipe-pane", "-o", "-t", "0"])
        .arg(format!("cat >> {}", capture.display()))
        .status()
        .unwrap();
    assert!(status.success());
    tmux.keys(&["y"]);
    let payload = wait_for_osc52(&capture);
    let copied = String::from_utf8(
        base64::engine::Engine::decode(&base64::engine::general_purpose::STANDARD, &payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        !copied
            .chars()
            .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
        "the clipboard got control or bidi characters: {copied:?}"
    );
    assert_eq!(
        copied,
        infradeck_core::sanitize::for_clipboard(
            "evil\x1b[2J\x1b]0;owned\x07\u{202e}name\rX",
            false
        )
    );

    tmux.keys(&["Enter"]);
    let screen = tmux.wait_text("merged view");
    assert!(
        screen.contains("evil␛[2J␛]0;owned␇⟨U+202E⟩name␍X"),
        "{screen}"
    );
    assert!(
        screen.contains("infradeck"),
        "the screen was not cleared:\n{screen}"
    );
    assert_ne!(
        tmux.pane_title(),
        "owned",
        "the window title was not changed"
    );
    tmux.keys(&["q"]);
    let screen = tmux.wait_text("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
}

/// The base64 payload of the first OSC 52 sequence in the captured pane output: inside tmux's
/// passthrough (`ESC P tmux; ESC ESC ] 52 ; c ; PAYLOAD BEL ESC \`) or bare.
fn wait_for_osc52(capture: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bytes = std::fs::read(capture).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        if let Some((_, rest)) = text.split_once("]52;c;")
            && let Some((payload, _)) = rest.split_once('\x07')
        {
            assert!(
                text.contains("\x1bPtmux;\x1b\x1b]52;c;"),
                "OSC 52 is wrapped for tmux: {text:?}"
            );
            return payload.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no OSC 52 sequence in the pane's output: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(40));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quitting_or_dropping_the_dashboard_mid_sync_leaves_no_run_running() {
    use infradeck_core::model::RunStatus;
    let rig = common::start_rig(300, 9).await;
    rig.sims
        .faults(infradeck_sim::SimKind::Vcenter)
        .set_latency(Duration::from_millis(5));
    let config = rig.dir.path().join("config.toml");
    let db = rig.dir.path().join("inventory.db");
    for how in ["q", "hang up"] {
        let (config, db) = (config.clone(), db.clone());
        tokio::task::spawn_blocking(move || {
            let tmux = Tmux::start(&[], Some(&config));
            tmux.wait_text("devices");
            tmux.command("sync");
            tmux.wait_text("run log");
            tmux.keys(&["s"]);
            let deadline = Instant::now() + Duration::from_secs(60);
            let pid = loop {
                let running = Store::open(&db, &OpenOptions::default())
                    .unwrap()
                    .running_runs()
                    .unwrap();
                if let Some(run) = running.iter().find(|r| r.done > 0) {
                    break run.pid.unwrap();
                }
                assert!(
                    Instant::now() < deadline,
                    "{how}: the sync never got under way"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            if how == "q" {
                tmux.keys(&["q"]);
                let screen = tmux.wait_text("EXIT=");
                assert!(screen.contains("EXIT=0"), "{screen}");
            } else {
                // Killing the tmux server hangs up the terminal, as a dropped SSH session does.
                drop(tmux);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Path::new(&format!("/proc/{pid}")).exists() {
                assert!(
                    Instant::now() < deadline,
                    "{how}: the dashboard did not exit"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let store = Store::open(&db, &OpenOptions::default()).unwrap();
            let runs = store.recent_runs(20).unwrap();
            assert!(
                runs.iter().all(|r| r.status != RunStatus::Running),
                "{how}: a run was left running: {runs:?}"
            );
            let last = runs.iter().find(|r| r.pid == Some(pid)).unwrap();
            assert_eq!(
                last.status,
                RunStatus::Cancelled,
                "{how}: {:?}",
                last.message
            );
        })
        .await
        .unwrap();
    }
    // Nothing holds the source's lock: a sync right away runs.
    rig.sims
        .faults(infradeck_sim::SimKind::Vcenter)
        .set_latency(Duration::ZERO);
    let next = rig.run_source(&rig.source("vcenter")).await;
    assert_eq!(
        next.status,
        infradeck_core::model::RunStatus::Success,
        "{:?}",
        next.message
    );
}

/// What a database holds, without what differs between two syncs of the same estate (row ids,
/// timestamps, sync ids, who ran it): devices by their source key, everything hanging off them
/// by that key, relationships by both ends, knowledge and its embeddings, the audit trail
/// counted by kind, the last outcome of every source.
fn state_of(db: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let key = |alias: &str| {
        format!(
            "{alias}.source_system || '/' || {alias}.source_identifier || '/' || {alias}.source_id"
        )
    };
    let queries = [
        format!("SELECT 'device', {}, name, device_type, status, metadata FROM devices d", key("d")),
        format!(
            "SELECT 'relationship', {}, {}, r.relationship_type, r.metadata FROM device_relationships r \
             JOIN devices p ON p.id = r.parent_device_id JOIN devices c ON c.id = r.child_device_id",
            key("p"),
            key("c")
        ),
        format!(
            "SELECT 'vm', {}, instance_uuid, guest_os, cpu_count, memory_mb, power_state, tools_running, \
             ip_addresses, disks, snapshots, total_disk_capacity_bytes, total_snapshot_size_bytes \
             FROM vms v JOIN devices d ON d.id = v.device_id",
            key("d")
        ),
        format!(
            "SELECT 'interface', {}, interface_name, mac_address, ip_addresses, speed_mbps, i.status, \
             interface_type, i.metadata FROM network_interfaces i JOIN devices d ON d.id = i.device_id",
            key("d")
        ),
        format!(
            "SELECT 'fact', {}, fact_name, fact_value FROM server_facts f JOIN devices d ON d.id = f.device_id",
            key("d")
        ),
        format!(
            "SELECT 'config', {}, config_hash, version, c.source_system FROM device_configs c \
             JOIN devices d ON d.id = c.device_id",
            key("d")
        ),
        format!(
            "SELECT 'volume', {}, v.name, volume_type, capacity_bytes, used_bytes, storage_array, raid_level, \
             thin_provisioned, v.metadata, (SELECT {} FROM devices d WHERE d.id = v.device_id) \
             FROM storage_volumes v",
            key("v"),
            key("d")
        ),
        format!(
            "SELECT 'volume link', {}, {}, r.relationship_type FROM volume_relationships r \
             JOIN storage_volumes p ON p.id = r.parent_volume_id JOIN storage_volumes c ON c.id = r.child_volume_id",
            key("p"),
            key("c")
        ),
        "SELECT 'page', source_id, space_key, title, body_text, labels FROM kb_articles".into(),
        "SELECT 'issue', issue_key, summary, status, resolution, assignee, labels, comments FROM issues".into(),
        // Rows are told apart by what they embed (ids differ between databases).
        format!(
            "SELECT 'embedding', content_type, COALESCE((SELECT source_id FROM kb_articles k WHERE k.id = e.content_id \
             AND e.content_type = 'kb_article'), (SELECT issue_key FROM issues i WHERE i.id = e.content_id \
             AND e.content_type = 'issue'), (SELECT {} FROM devices d WHERE d.id = e.content_id \
             AND e.content_type = 'device')), chunk_index, text_content, hex(embedding_vector), embedding_model \
             FROM embeddings e",
            key("d")
        ),
        "SELECT 'audit', source_system, source_identifier, operation, change_type, count(*) FROM sync_history \
         GROUP BY 2, 3, 4, 5"
            .into(),
        "SELECT 'last sync', source_system, source_identifier, last_sync_status, devices_added, devices_updated, \
         devices_removed FROM sync_metadata"
            .into(),
    ];
    let mut rows = Vec::new();
    for query in &queries {
        let mut statement = conn
            .prepare(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let columns = statement.column_count();
        let mut found = statement.query([]).unwrap();
        while let Some(row) = found.next().unwrap() {
            let cells: Vec<String> = (0..columns)
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => "∅".to_string(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Real(f) => f.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(b) => format!("{} bytes", b.len()),
                })
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    rows.sort();
    rows
}

/// The first lines where two states differ, for a failure message.
fn state_difference(left: &[String], right: &[String]) -> String {
    let only_left = left
        .iter()
        .filter(|r| right.binary_search(r).is_err())
        .take(5);
    let only_right = right
        .iter()
        .filter(|r| left.binary_search(r).is_err())
        .take(5);
    let mut out = format!("{} rows vs {} rows\n", left.len(), right.len());
    for row in only_left {
        out.push_str(&format!("- {row}\n"));
    }
    for row in only_right {
        out.push_str(&format!("+ {row}\n"));
    }
    out
}

/// Waits until `db` holds `expected`, or fails with the difference.
fn wait_for_state(db: &Path, expected: &[String], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = if db.exists() {
            state_of(db)
        } else {
            Vec::new()
        };
        if state == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never reached the state `sync --all` left:\n{}",
            state_difference(expected, &state)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_all_sync_watch_and_the_dashboards_sync_all_leave_the_same_database() {
    let rig = common::start_rig(30, 27).await;
    let config = rig.dir.path().join("config.toml");
    let dir = rig.dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let bin = env!("CARGO_BIN_EXE_infradeck");
        let home = tempfile::tempdir().unwrap();
        let infradeck = |db: &Path| {
            let mut command = Command::new(bin);
            command
                .env("HOME", home.path())
                .env("XDG_STATE_HOME", home.path().join("state"))
                .arg("--config")
                .arg(&config)
                .arg("--db")
                .arg(db);
            command
        };

        // `sync --all`: the reference.
        let once = dir.join("once.db");
        let out = infradeck(&once).args(["sync", "--all"]).output().unwrap();
        assert!(
            out.status.success(),
            "sync --all: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = state_of(&once);
        assert!(
            expected.iter().any(|r| r.starts_with("embedding |")),
            "the reference holds embeddings"
        );
        assert!(
            expected
                .iter()
                .any(|r| r.starts_with("embedding | device |")),
            "the reference holds machines' embeddings"
        );
        assert!(
            expected.iter().any(|r| r.contains("| same_as |")),
            "the reference holds correlation links"
        );

        // `sync --watch`: its first round of every source, then a stop.
        let watched = dir.join("watch.db");
        let mut watch = infradeck(&watched)
            .args(["sync", "--watch"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_state(&watched, &expected, "sync --watch");
        // SAFETY: kill(2) on the PID of a child we spawned and have not yet reaped.
        unsafe {
            libc::kill(watch.id() as i32, libc::SIGTERM);
        }
        assert!(
            watch.wait().unwrap().success(),
            "sync --watch stops cleanly"
        );
        assert_eq!(
            state_of(&watched),
            expected,
            "after the stop, still the same"
        );

        // The dashboard: `:sync`, then `S` (every idle source), then quit.
        let dashboard = dir.join("dashboard.db");
        let tmux = Tmux::start(&["--db", &dashboard.display().to_string()], Some(&config));
        tmux.wait_text("devices");
        tmux.command("sync");
        tmux.wait_text("run log");
        tmux.keys(&["S"]);
        wait_for_state(&dashboard, &expected, "the dashboard's S");
        tmux.keys(&["q"]);
        let screen = tmux.wait_text("EXIT=");
        assert!(screen.contains("EXIT=0"), "{screen}");
        assert_eq!(
            state_of(&dashboard),
            expected,
            "after quitting, still the same"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_opens_on_what_changed_since_the_last_look() {
    use crate::changes::{sync_and_correlate, wait_past};
    let rig = common::start_rig(200, 7).await;
    sync_and_correlate(&rig).await;
    let looked = wait_past(&infradeck_core::time::now());
    let db = rig.dir.path().join("inventory.db");
    Store::open(&db, &OpenOptions::default())
        .unwrap()
        .write(|w| w.set_last_look(&infradeck_core::identity::os_user(), &looked))
        .unwrap();
    wait_past(&looked);
    let report = rig.sims.advance();
    sync_and_correlate(&rig).await;
    let digest = infradeck_core::changes::digest(
        &rig.store(),
        &looked,
        &infradeck_core::time::now(),
        &Default::default(),
    )
    .unwrap();
    let counts = |kind: infradeck_core::changes::ChangeKind| digest.count(kind);
    use infradeck_core::changes::ChangeKind as K;
    assert_eq!(counts(K::Power), report.powered_off_vms.len());

    let config = rig.dir.path().join("config.toml");
    let tmux = Tmux::start(&[], Some(&config));
    // The landing page: the changes since the last look, counted per kind.
    let expected = format!(
        "{} appeared · {} gone · {} moved · {} power · {} health",
        counts(K::Appeared),
        counts(K::Gone),
        counts(K::Moved),
        counts(K::Power),
        counts(K::Health)
    );
    let screen = tmux.wait_text(&expected);
    assert!(screen.contains("since your last look"), "{screen}");
    assert!(
        screen.contains(&format!("{} config", report.edited_configs.len())),
        "{screen}"
    );
    // `/kind:power` keeps the powered-off VMs only.
    tmux.keys(&["/"]);
    tmux.type_text("kind:power");
    tmux.keys(&["Enter"]);
    // (The unfiltered counts line also says "N power": wait for the filter to be kept.)
    let screen = tmux.wait_for("the filtered changes", |s| {
        s.contains("[/kind:power]") && !s.contains(" appeared ")
    });
    assert!(
        screen.contains(&format!(": {} power", counts(K::Power))),
        "{screen}"
    );
    let power_rows = screen.lines().filter(|l| l.contains(" power ")).count();
    assert_eq!(power_rows, counts(K::Power), "{screen}");
    // Enter opens the machine.
    tmux.keys(&["Enter"]);
    tmux.wait_text("changes › ");
    // `t` moves to the next range.
    tmux.keys(&["Escape"]);
    tmux.wait_text("devices › changes [/kind:power] ─");
    tmux.keys(&["Escape"]);
    tmux.wait_text("devices › changes ─");
    tmux.keys(&["t"]);
    tmux.wait_text("last 1 h");
    // Esc: the machine list under it, read as it comes on top.
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("the machine list", |s| {
        s.contains(" devices ─") && s.contains("foreman,puppetdb,vcenter")
    });
    assert!(!screen.contains("changes"), "{screen}");
    // `:at` the last look: the past, marked in the header.
    tmux.command(&format!("at {looked}"));
    tmux.wait_text(&format!("AS OF {looked} UTC"));
}

/// The line numbers of a side-by-side diff on screen follow each hunk's header: after
/// `@@ -A,B +C,D @@` the left column counts A, A+1, … over the lines it shows, the right C, C+1, ….
/// Returns how many numbered lines were checked, or the first number out of step.
fn check_side_by_side_numbers(screen: &str) -> Result<usize, String> {
    let mut checked = 0;
    let mut next: Option<(u32, u32, usize)> = None; // (next left, next right, right column)
    for line in screen.lines() {
        let chars: Vec<char> = line.chars().collect();
        if let Some(start) = line.find("@@ -") {
            let header = line.get(start..).unwrap_or_default();
            let numbers: Vec<u32> = header
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            let right_column = line
                .rmatch_indices("@@ -")
                .next()
                .map(|(at, _)| line.get(..at).unwrap_or_default().chars().count())
                .unwrap_or(0);
            if numbers.len() < 4 {
                return Err(format!("a hunk header without both sides: {line}"));
            }
            next = Some((numbers[0], numbers[2], right_column.saturating_sub(4)));
            continue;
        }
        let Some((left, right, mid)) = next.as_mut() else {
            continue;
        };
        if line.starts_with(" <") || chars.len() < *mid {
            continue;
        }
        // A line number is right-aligned at the start of its side, before the -/+ marker.
        let number_at = |from: usize| -> Option<u32> {
            let text: String = chars.iter().skip(from).take(4).collect();
            let digits: String = text
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        if let Some(n) = number_at(0) {
            if n != *left {
                return Err(format!("left number {n} where {left} follows: {line}"));
            }
            *left += 1;
            checked += 1;
        }
        if let Some(n) = number_at(*mid) {
            if n != *right {
                return Err(format!("right number {n} where {right} follows: {line}"));
            }
            *right += 1;
            checked += 1;
        }
    }
    Ok(checked)
}

/// The reading an on-call engineer does, by keystrokes: `:search` and a host name puts its
/// runbook in the first three hits and Enter shows the page's text; `/` in a NetBox batch's
/// items narrows them; a side-by-side config diff numbers both sides as its hunk headers say.
#[tokio::test(flavor = "multi_thread")]
async fn search_opens_the_runbook_the_netbox_items_filter_and_the_diff_numbers_follow_the_hunks() {
    let rig = common::start_rig(60, 5).await;
    let outcomes = rig
        .run(&["vcenter", "oxidized", "confluence", "jira"])
        .await;
    outcomes.iter().for_each(common::ok);
    let db = rig.dir.path().join("inventory.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (title, body): (String, String) = conn
        .query_row(
            "SELECT title, body_text FROM kb_articles WHERE title LIKE 'How to restart the % service on %' \
             ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // "How to restart the ROLE service on HOST"
    let host = title.rsplit(' ').next().unwrap().to_string();
    // A line of the page's body long enough to be its own.
    let body_line = body
        .lines()
        .map(str::trim)
        .find(|l| l.chars().count() > 20 && !l.contains(&title))
        .unwrap_or_else(|| panic!("a body line in {body:?}"))
        .chars()
        .take(30)
        .collect::<String>();
    drop(conn);
    // A batch of three items, one of them a create.
    let mut store = Store::open(&db, &OpenOptions::default()).unwrap();
    let vms = store
        .query_devices(&infradeck_core::store::DeviceQuery {
            device_type: Some(DeviceType::Vm),
            limit: 3,
            ..Default::default()
        })
        .unwrap();
    store
        .write(|w| {
            let items: Vec<NewApprovalItem> = vms
                .iter()
                .enumerate()
                .map(|(i, vm)| NewApprovalItem {
                    device_id: Some(vm.id),
                    action: if i == 2 {
                        ApprovalAction::Create
                    } else {
                        ApprovalAction::Update
                    },
                    netbox_object_type: "virtualization.virtualmachine".into(),
                    netbox_object_id: (i != 2).then_some(i as i64 + 5),
                    proposed_changes: json!({"fields": {"vcpus": {"from": 2, "to": 4}}}),
                })
                .collect();
            w.create_batch(
                &NewBatch {
                    batch_id: "nb-read-1",
                    netbox_url: "http://127.0.0.1:1",
                    planned_at: &infradeck_core::time::now(),
                    planned_by: "planner",
                    metadata: json!({}),
                },
                &items,
            )
        })
        .unwrap();
    drop(store);
    let config = rig.dir.path().join("config.toml");

    let tmux = tokio::task::spawn_blocking(move || {
        let tmux = Tmux::start(&[], Some(&config));
        tmux.wait_text("devices");
        // Search for the host: the runbook is among the first three hits.
        tmux.command(&format!("search {host}"));
        let screen = tmux.wait_for("the search hits", |s| {
            s.lines().any(|l| l.starts_with("kb ")) || s.contains("no matches")
        });
        // Hits take two lines: the first of each pair starts with its kind (the snippet under it
        // is indented). Under the two-line header and the trail.
        let hits: Vec<&str> = screen
            .lines()
            .skip(3)
            .filter(|l| {
                ["device ", "kb ", "issue "]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .collect();
        let at = hits
            .iter()
            .position(|h| h.contains(&title))
            .unwrap_or_else(|| panic!("`{title}` is a hit:\n{screen}"));
        assert!(
            at < 3,
            "the runbook is among the first three hits:\n{screen}"
        );
        for _ in 0..at {
            tmux.keys(&["Down"]);
        }
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_text(&body_line);
        assert!(screen.contains(&title), "{screen}");
        // The NetBox batch's items, narrowed by `/`.
        tmux.command("netbox");
        tmux.wait_text("nb-read-1");
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_text("proposed change");
        let items = |s: &str| s.lines().filter(|l| l.contains("virtualmachine")).count();
        assert!(items(&screen) >= 3, "{screen}");
        tmux.keys(&["/"]);
        tmux.type_text("action:create");
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_for("the filtered items", |s| {
            s.contains("[/action:create]") && !s.contains("<Enter>keep")
        });
        assert!(screen.contains("showing 1 of 3"), "{screen}");
        // A config diff side by side.
        tmux.open_a_config_diff();
        tmux.wait_text("@@ -");
        tmux.keys(&["v"]);
        // Waited for as a whole: a capture can catch the unified diff half redrawn.
        let screen = tmux.wait_for("the diff side by side, numbered as its hunks say", |s| {
            s.lines().any(|l| l.matches("@@ -").count() == 2)
                && check_side_by_side_numbers(s).is_ok_and(|checked| checked > 5)
        });
        assert!(check_side_by_side_numbers(&screen).is_ok(), "{screen}");
        tmux.keys(&["q"]);
        let screen = tmux.wait_text("EXIT=");
        assert!(screen.contains("EXIT=0"), "{screen}");
        tmux
    })
    .await
    .unwrap();
    drop(tmux);
}
