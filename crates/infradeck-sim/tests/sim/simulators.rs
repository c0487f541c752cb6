//! The simulators, over real HTTP on loopback, checked against the wire formats in
//! `shared/reference/source-apis.md`: logins and their failures, every pagination scheme walked to
//! the end, each error shape and quirk, NetBox's transactions and preconditions, the vCenter cap,
//! cross-system coherence and the documented `advance()` step.

use infradeck_sim::http::{FaultAction, FaultRule};
use infradeck_sim::{SimKind, SimOptions, Simulators};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn start(scale: usize) -> Simulators {
    Simulators::start(&SimOptions {
        scale,
        seed: 7,
        ..SimOptions::default()
    })
    .await
    .expect("simulators start")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn vcenter_session(sims: &Simulators, http: &reqwest::Client) -> String {
    let c = sims.credentials(SimKind::Vcenter);
    let response = http
        .post(format!("{}/api/session", sims.url(SimKind::Vcenter)))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token: Value = response.json().await.unwrap();
    token
        .as_str()
        .expect("the session id is a JSON string")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn vcenter_login_lists_details_and_the_result_cap() {
    let sims = start(120).await;
    let http = client();
    let base = sims.url(SimKind::Vcenter);

    let bad = http
        .post(format!("{base}/api/session"))
        .basic_auth("infradeck", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error_type"],
        "UNAUTHENTICATED"
    );
    let anonymous = http
        .get(format!("{base}/api/vcenter/vm"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let token = vcenter_session(&sims, &http).await;
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .header("vmware-api-session-id", &token)
            .send()
    };
    let vms: Vec<Value> = get("/api/vcenter/vm".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vms.len(), 120);
    assert!(
        vms[0].get("memory_size_MiB").is_some(),
        "capital MiB on the wire: {}",
        vms[0]
    );

    let clusters: Vec<Value> = get("/api/vcenter/cluster".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut by_cluster = 0;
    for cluster in &clusters {
        let id = cluster["cluster"].as_str().unwrap();
        let part: Vec<Value> = get(format!("/api/vcenter/vm?clusters={id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        by_cluster += part.len();
    }
    // The standalone host's VMs are in no cluster: listed through the host.
    let standalone: Vec<Value> = get("/api/vcenter/host?standalone=true".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(standalone.len(), 1, "{standalone:?}");
    assert!(
        standalone[0]["name"]
            .as_str()
            .unwrap()
            .parse::<std::net::IpAddr>()
            .is_ok(),
        "registered by address: {}",
        standalone[0]
    );
    let on_standalone: Vec<Value> = get(format!(
        "/api/vcenter/vm?hosts={}",
        standalone[0]["host"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(!on_standalone.is_empty());
    assert_eq!(
        by_cluster + on_standalone.len(),
        120,
        "cluster filters and the standalone host partition the VMs"
    );
    let two: Vec<Value> = get("/api/vcenter/vm?names=web-0009&names=app-0001".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(two.len() <= 2);

    sims.vcenter
        .vm_cap
        .store(50, std::sync::atomic::Ordering::Relaxed);
    let capped = get("/api/vcenter/vm".into()).await.unwrap();
    assert_eq!(capped.status(), StatusCode::BAD_REQUEST);
    let body: Value = capped.json().await.unwrap();
    assert_eq!(body["error_type"], "UNABLE_TO_ALLOCATE_RESOURCE");
    assert_eq!(
        body["messages"][0]["id"],
        "com.vmware.api.vcenter.vm.too_many_matches"
    );

    let vm = &vms
        .iter()
        .find(|v| v["power_state"] == "POWERED_ON")
        .unwrap()["vm"];
    let detail: Value = get(format!("/api/vcenter/vm/{}", vm.as_str().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        detail["disks"]["2000"]["capacity"].as_u64().unwrap() > 0,
        "disks keyed by device key, capacity in bytes"
    );
    let mac = detail["nics"]["4000"]["mac_address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(mac.starts_with("00:50:56"));
    assert!(detail["identity"]["instance_uuid"].as_str().unwrap().len() == 36);

    let missing = get("/api/vcenter/vm/vm-99999".into()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error_type"],
        "NOT_FOUND"
    );

    let estate = sims.estate.read().unwrap().clone();
    let no_tools = estate.vms.iter().find(|v| !v.tools_running).unwrap();
    let guest = get(format!(
        "/api/vcenter/vm/{}/guest/networking/interfaces",
        no_tools.moid
    ))
    .await
    .unwrap();
    assert_eq!(
        guest.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "guest data needs Tools"
    );
    let with_tools = estate.vms.iter().find(|v| v.tools_running).unwrap();
    let ifaces: Vec<Value> = get(format!(
        "/api/vcenter/vm/{}/guest/networking/interfaces",
        with_tools.moid
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ifaces[0]["nic"], "4000");
    assert_eq!(
        ifaces[0]["ip"]["ip_addresses"][0]["ip_address"],
        json!(with_tools.nics[0].ip)
    );

    let hosts: Vec<Value> = get("/api/vcenter/host".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hosts.len(), estate.hosts.len());
    let datastores: Vec<Value> = get("/api/vcenter/datastore".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        datastores
            .iter()
            .all(|d| d["capacity"].as_u64().unwrap() >= d["free_space"].as_u64().unwrap())
    );

    // A session that expires mid-run answers 401; a new login works.
    sims.faults(SimKind::Vcenter).set_session_expiry(Some(1));
    assert_eq!(
        get("/api/vcenter/host".into()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    sims.faults(SimKind::Vcenter).set_session_expiry(None);
    let fresh = vcenter_session(&sims, &http).await;
    let ok = http
        .get(format!("{base}/api/vcenter/host"))
        .header("vmware-api-session-id", fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn foreman_pages_hosts_and_facts_in_its_envelope() {
    let sims = start(100).await;
    let http = client();
    let base = sims.url(SimKind::Foreman);
    let c = sims.credentials(SimKind::Foreman);

    let bad = http
        .get(format!("{base}/api/hosts"))
        .basic_auth("admin", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["message"],
        "Unable to authenticate user admin"
    );

    let mut names = BTreeSet::new();
    let mut page = 1;
    let total = loop {
        let body: Value = http
            .get(format!("{base}/api/hosts?page={page}&per_page=7"))
            .basic_auth(&c.username, Some(&c.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let results = body["results"].as_array().unwrap();
        assert_eq!(body["per_page"], 7);
        for host in results {
            assert!(
                names.insert(host["name"].as_str().unwrap().to_string()),
                "no host twice"
            );
            let report = host["last_report"].as_str().unwrap();
            assert!(
                report.ends_with(" UTC") && report.len() == 23,
                "Foreman's timestamp format: {report}"
            );
        }
        if results.len() < 7 {
            break body["total"].as_u64().unwrap();
        }
        page += 1;
    };
    assert_eq!(names.len() as u64, total);

    let one = names.iter().next().unwrap().clone();
    let search: Value = http
        .get(format!("{base}/api/hosts"))
        .query(&[("search", format!("name = {one}"))])
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(search["subtotal"], 1);
    assert_eq!(search["total"].as_u64().unwrap(), total);
    let bad_search = http
        .get(format!("{base}/api/hosts"))
        .query(&[("search", "colour = red")])
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_search.status(), StatusCode::BAD_REQUEST);

    let host: Value = http
        .get(format!("{base}/api/hosts/{one}"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(host["interfaces"][0]["primary"], true);
    let machine = sims
        .estate
        .read()
        .unwrap()
        .vms
        .iter()
        .find(|v| v.in_puppet && v.foreman_id.is_some())
        .map(|v| v.fqdn())
        .unwrap();
    let default_page: Value = http
        .get(format!("{base}/api/hosts/{machine}/facts"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: Value = http
        .get(format!("{base}/api/hosts/{machine}/facts?per_page=all"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let default_facts = default_page["results"][&machine].as_object().unwrap();
    let all_facts = all["results"][&machine].as_object().unwrap();
    assert_eq!(default_facts.len(), 20, "paged over values, 20 by default");
    assert!(all_facts.len() > 20 && all_facts.len() as u64 == all["total"].as_u64().unwrap());
    assert!(
        all_facts.values().all(Value::is_string),
        "Foreman facts are strings"
    );
    assert!(all_facts.contains_key("networking::mac"));

    let missing = http
        .get(format!("{base}/api/hosts/nope.example.net"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn puppetdb_pages_inventory_and_facts_with_typed_values() {
    let sims = start(80).await;
    let http = client();
    let base = sims.url(SimKind::Puppetdb);
    let mut certnames = Vec::new();
    let mut offset = 0;
    let records = loop {
        let response = http
            .get(format!("{base}/pdb/query/v4/inventory"))
            .query(&[
                ("limit", "9".to_string()),
                ("offset", offset.to_string()),
                ("order_by", r#"[{"field":"certname","order":"asc"}]"#.into()),
                ("include_total", "true".into()),
            ])
            .send()
            .await
            .unwrap();
        let records = response
            .headers()
            .get("X-Records")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.parse::<usize>().unwrap());
        let page: Vec<Value> = response.json().await.unwrap();
        certnames.extend(
            page.iter()
                .map(|n| n["certname"].as_str().unwrap().to_string()),
        );
        if page.len() < 9 {
            break records;
        }
        offset += 9;
    };
    assert_eq!(Some(certnames.len()), records);
    let mut sorted = certnames.clone();
    sorted.sort();
    assert_eq!(certnames, sorted, "order_by certname");

    let query = json!(["=", "certname", certnames[0]]).to_string();
    let facts: Vec<Value> = http
        .get(format!("{base}/pdb/query/v4/facts"))
        .query(&[("query", query.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let processors = facts.iter().find(|f| f["name"] == "processors").unwrap();
    assert!(
        processors["value"]["count"].is_number(),
        "PuppetDB values are typed"
    );
    let posted: Vec<Value> = http
        .post(format!("{base}/pdb/query/v4/inventory"))
        .json(&json!({"query": ["=", "certname", certnames[0]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted.len(), 1);

    let malformed = http
        .get(format!("{base}/pdb/query/v4/facts"))
        .query(&[("query", "[\"=\", \"certname\"")])
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(
        malformed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "errors are plain text"
    );
    let unknown = http
        .get(format!("{base}/pdb/query/v4/nodes/ghost.example.net"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn oxidized_serves_configs_versions_and_its_200_with_text_quirks() {
    let sims = start(400).await;
    let http = client();
    let base = sims.url(SimKind::Oxidized);
    let nodes: Vec<Value> = http
        .get(format!("{base}/nodes.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let estate = sims.estate.read().unwrap().clone();
    assert_eq!(nodes.len(), estate.net_devices.len());
    assert!(
        nodes
            .iter()
            .any(|n| n["status"] == "never" && n["last"].is_null())
    );
    assert!(nodes.iter().any(|n| n["status"] == "no_connection"));
    assert!(
        nodes.iter().all(|n| n["vars"].is_object()),
        "the list leaks vars; a client must not store them"
    );

    let device = estate
        .net_devices
        .iter()
        .find(|d| d.versions.len() >= 2)
        .unwrap();
    let full = format!(
        "{}/{}",
        nodes
            .iter()
            .find(|n| n["name"] == device.name.as_str())
            .unwrap()["group"]
            .as_str()
            .unwrap(),
        device.name
    );
    let text = http
        .get(format!("{base}/node/fetch/{full}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(&device.name));
    let lines: Vec<String> = http
        .get(format!("{base}/node/fetch/{full}.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        lines.concat(),
        text,
        "JSON is the text split into lines that keep their newline"
    );

    let versions: Vec<Value> = http
        .get(format!("{base}/node/version.json"))
        .query(&[("node_full", &full)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(versions.len(), device.versions.len());
    let newest = versions[0]["oid"].as_str().unwrap();
    let oldest = versions.last().unwrap()["oid"].as_str().unwrap();
    let view = |oid: &str| {
        http.get(format!("{base}/node/version/view"))
            .query(&[
                ("node", device.name.as_str()),
                ("group", "dc1"),
                ("oid", oid),
                ("format", "text"),
            ])
            .send()
    };
    assert_eq!(view(newest).await.unwrap().text().await.unwrap(), text);
    assert_ne!(view(oldest).await.unwrap().text().await.unwrap(), text);
    assert_eq!(
        view("0000").await.unwrap().text().await.unwrap(),
        "version not found"
    );

    let unknown = http
        .get(format!("{base}/node/fetch/ghost"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        StatusCode::OK,
        "unknown nodes are not 404"
    );
    assert_eq!(unknown.text().await.unwrap(), "unable to find 'ghost'");
    let unknown_versions: Value = http
        .get(format!("{base}/node/version.json?node_full=ghost"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown_versions, json!(["node not found"]));
    let show = http
        .get(format!("{base}/node/show/ghost.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let shown: Value = http
        .get(format!("{base}/node/show/{}.json", device.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["vars"]["enable"], "<hidden>");
    assert!(
        shown.get("status").is_none(),
        "show does not add the list fields"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn netbox_auth_paging_validation_bulk_atomicity_etags_and_changelog() {
    let sims = Simulators::start(&SimOptions {
        scale: 60,
        seed: 7,
        netbox_seeded: true,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let http = client();
    let base = sims.url(SimKind::Netbox);
    let v2 = format!("Bearer {}", sims.netbox.token_v2);
    let v1 = format!("Token {}", sims.netbox.token_v1);

    for (auth, message) in [
        (None, "Authentication credentials were not provided."),
        (Some("Token 0000"), "Invalid v1 token"),
        (Some("Bearer abc"), "Could not parse key from v2 token"),
        (Some("Bearer nbt_x.y"), "Invalid v2 token"),
    ] {
        let mut request = http.get(format!("{base}/api/dcim/sites/"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "NetBox answers 403, not 401"
        );
        assert_eq!(response.json::<Value>().await.unwrap()["detail"], message);
    }
    let read_only = http
        .post(format!("{base}/api/dcim/sites/"))
        .header(
            "Authorization",
            format!("Bearer {}", sims.netbox.token_read_only),
        )
        .json(&json!({"name": "X", "slug": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(read_only.status(), StatusCode::FORBIDDEN);

    let redirect = http
        .get(format!("{base}/api/dcim/sites"))
        .header("Authorization", &v1)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(
        redirect.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/api/dcim/sites/")
    );

    // Create enough objects to page: limit 1000 is the cap, next links are absolute.
    let tags: Vec<Value> = (0..1205)
        .map(|i| json!({"name": format!("t{i}"), "slug": format!("t{i}")}))
        .collect();
    let created = http
        .post(format!("{base}/api/extras/tags/"))
        .header("Authorization", &v2)
        .json(&tags)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let ids: Vec<u64> = created
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "bulk create answers in request (pk) order"
    );
    let mut url = format!("{base}/api/extras/tags/?limit=5000");
    let mut seen = 0;
    let mut pages = 0;
    let count = loop {
        let page: Value = http
            .get(&url)
            .header("Authorization", &v2)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        seen += page["results"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("http://"), "absolute next link");
                url = next.to_string();
            }
            None => break page["count"].as_u64().unwrap(),
        }
    };
    assert_eq!(seen as u64, count);
    assert_eq!(pages, 2, "5000 was silently capped to 1000");

    // Validation errors per field; model rules under `__all__`.
    let bad = http
        .post(format!("{base}/api/virtualization/virtual-machines/"))
        .header("Authorization", &v2)
        .json(&json!({"status": "bogus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let errors: Value = bad.json().await.unwrap();
    assert!(
        errors["status"][0]
            .as_str()
            .unwrap()
            .contains("not a valid choice"),
        "{errors}"
    );
    let orphan = http
        .post(format!("{base}/api/virtualization/virtual-machines/"))
        .header("Authorization", &v2)
        .json(&json!({"name": "floating"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        orphan.json::<Value>().await.unwrap()["__all__"][0],
        "A virtual machine must be assigned to a site, cluster, or device."
    );

    // A lookup dict resolves a relation; reads show brief nested objects and {value,label}.
    let cluster_name = sims.estate.read().unwrap().clusters[0].name.clone();
    let vm: Value = http
        .post(format!("{base}/api/virtualization/virtual-machines/"))
        .header("Authorization", &v2)
        .json(&json!({"name": "web-new", "cluster": {"name": cluster_name}, "vcpus": 2, "memory": 4096, "tags": [{"name": "infradeck"}], "changelog_message": "plan 1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vm["cluster"]["name"], cluster_name.as_str());
    assert_eq!(vm["status"], json!({"value": "active", "label": "Active"}));
    assert_eq!(vm["tags"][0]["slug"], "infradeck");
    let vm_id = vm["id"].as_u64().unwrap();

    // Bulk is all or nothing, with errors per item in request order.
    let before = sims
        .netbox
        .snapshot("virtualization/virtual-machines")
        .len();
    let batch = json!([{"name": "bulk-a", "cluster": {"name": cluster_name}}, {"name": "bulk-b"}, {"name": "bulk-c", "cluster": {"name": cluster_name}}]);
    let failed = http
        .post(format!("{base}/api/virtualization/virtual-machines/"))
        .header("Authorization", &v2)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::BAD_REQUEST);
    // NetBox 4.7's shape: a summary and only the objects to blame, by position.
    let answer: Value = failed.json().await.unwrap();
    assert_eq!(answer["detail"], "1 of 3 objects could not be created.");
    let blamed = answer["errors"].as_array().unwrap();
    assert_eq!(blamed.len(), 1);
    assert_eq!(blamed[0]["index"], 1);
    assert!(blamed[0]["errors"]["__all__"].is_array());
    assert_eq!(
        sims.netbox
            .snapshot("virtualization/virtual-machines")
            .len(),
        before,
        "nothing of the failed batch was written"
    );

    // ETag / If-Match.
    let detail = http
        .get(format!(
            "{base}/api/virtualization/virtual-machines/{vm_id}/"
        ))
        .header("Authorization", &v2)
        .send()
        .await
        .unwrap();
    let etag = detail.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with("W/\""));
    sims.netbox.edit(
        "virtualization/virtual-machines",
        vm_id,
        "memory",
        json!(8192),
    );
    let stale = http
        .patch(format!(
            "{base}/api/virtualization/virtual-machines/{vm_id}/"
        ))
        .header("Authorization", &v2)
        .header("If-Match", &etag)
        .json(&json!({"memory": 2048}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh_etag = http
        .get(format!(
            "{base}/api/virtualization/virtual-machines/{vm_id}/"
        ))
        .header("Authorization", &v2)
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let patched = http
        .patch(format!(
            "{base}/api/virtualization/virtual-machines/{vm_id}/"
        ))
        .header("Authorization", &v2)
        .header("If-Match", &fresh_etag)
        .json(&json!({"memory": 2048, "changelog_message": "plan 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let request_id = patched.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    // The changelog records the write with pre/post data under the same request id.
    let changes: Value = http
        .get(format!(
            "{base}/api/core/object-changes/?request_id={request_id}"
        ))
        .header("Authorization", &v2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let change = &changes["results"][0];
    assert_eq!(change["action"]["value"], "update");
    assert_eq!(change["message"], "plan 2");
    assert_eq!(change["prechange_data"]["memory"], 8192);
    assert_eq!(change["postchange_data"]["memory"], 2048);

    // Protected relations give 409; deletes cascade to interfaces; 204 with no body.
    let cluster_id = vm["cluster"]["id"].as_u64().unwrap();
    let blocked = http
        .delete(format!("{base}/api/virtualization/clusters/{cluster_id}/"))
        .header("Authorization", &v2)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::CONFLICT);
    let iface: Value = http
        .post(format!("{base}/api/virtualization/interfaces/"))
        .header("Authorization", &v2)
        .json(&json!({"virtual_machine": vm_id, "name": "eth0"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mac = http.post(format!("{base}/api/dcim/mac-addresses/")).header("Authorization", &v2).json(&json!({"mac_address": "00:50:56:b1:22:7d", "assigned_object_type": "virtualization.vminterface", "assigned_object_id": iface["id"]})).send().await.unwrap();
    let mac: Value = mac.json().await.unwrap();
    assert_eq!(mac["mac_address"], "00:50:56:B1:22:7D");
    let deleted = http
        .delete(format!(
            "{base}/api/virtualization/virtual-machines/{vm_id}/"
        ))
        .header("Authorization", &v2)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(sims.netbox.snapshot("virtualization/interfaces").is_empty());
    assert!(sims.netbox.snapshot("dcim/mac-addresses").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ontap_follows_next_links_and_projects_fields() {
    let sims = start(300).await;
    let http = client();
    let base = sims.url(SimKind::Netapp);
    let c = sims.credentials(SimKind::Netapp);
    let bad = http
        .get(format!("{base}/api/storage/volumes"))
        .basic_auth("x", Some("y"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.json::<Value>().await.unwrap()["error"]["code"].is_string());

    let mut next = Some(
        "/api/storage/volumes?fields=name,svm.name,space.size,space.used&max_records=4".to_string(),
    );
    let mut names = Vec::new();
    while let Some(path) = next {
        let page: Value = http
            .get(format!("{base}{path}"))
            .basic_auth(&c.username, Some(&c.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let records = page["records"].as_array().unwrap();
        assert_eq!(
            page["num_records"].as_u64().unwrap() as usize,
            records.len(),
            "num_records counts this page"
        );
        for r in records {
            assert!(r["space"]["size"].as_u64().is_some() && r["svm"]["name"].is_string());
            assert!(r.get("state").is_none(), "only requested fields");
            names.push(r["name"].as_str().unwrap().to_string());
        }
        next = page["_links"]["next"]["href"].as_str().map(str::to_string);
    }
    assert_eq!(
        names.len(),
        sims.estate.read().unwrap().netapp.volumes.len()
    );
    let keys_only: Value = http
        .get(format!("{base}/api/storage/luns"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys_only["records"][0].get("space").is_none(),
        "no fields: key fields only"
    );
    let bad_field = http
        .get(format!("{base}/api/storage/volumes?fields=colour"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_field.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_field.json::<Value>().await.unwrap()["error"]["target"],
        "fields"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dorado_sessions_range_paging_and_errors_inside_http_200() {
    let sims = start(3000).await;
    let http = client();
    let base = format!("{}/deviceManager/rest", sims.url(SimKind::Dorado));
    let c = sims.credentials(SimKind::Dorado);
    let bad: Value = http
        .post(format!("{base}/xx/sessions"))
        .json(&json!({"username": c.username, "password": "wrong", "scope": "0"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        bad["error"]["code"], 0,
        "a failed login is HTTP 200 with a non-zero code"
    );

    let login = http
        .post(format!("{base}/xx/sessions"))
        .json(&json!({"username": c.username, "password": c.password, "scope": "0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["error"]["code"], 0);
    let device = body["data"]["deviceid"].as_str().unwrap().to_string();
    let token = body["data"]["iBaseToken"].as_str().unwrap().to_string();
    let get = |path: String| {
        http.get(format!("{base}/{device}/{path}"))
            .header("iBaseToken", &token)
            .header("Cookie", &cookie)
            .send()
    };

    let count: Value = get("lun/count".into()).await.unwrap().json().await.unwrap();
    let expected: usize = count["data"]["COUNT"].as_str().unwrap().parse().unwrap();
    let mut luns = Vec::new();
    let mut start = 0;
    loop {
        let page: Value = get(format!("lun?range=[{start}-{}]", start + 100))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["error"]["code"], 0);
        let items = page["data"].as_array().cloned().unwrap_or_default();
        for lun in &items {
            assert!(
                lun["CAPACITY"].is_string() && lun["ALLOCTYPE"].is_string(),
                "values are strings"
            );
        }
        luns.extend(items.iter().cloned());
        if items.len() < 100 {
            break;
        }
        start += 100;
    }
    assert_eq!(luns.len(), expected);
    assert!(expected > 100, "more than one page");

    *sims.dorado.fail_next_lun_page.lock().unwrap() =
        Some((1_077_936_859, "The LUN does not exist.".into()));
    let failed: Value = get("lun?range=[0-100]".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(failed["error"]["code"], 1_077_936_859);
    let wrong_token: Value = http
        .get(format!("{base}/{device}/lun"))
        .header("iBaseToken", "nope")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong_token["error"]["code"], -401);
    sims.dorado.expire_sessions();
    let expired: Value = get("lun".into()).await.unwrap().json().await.unwrap();
    assert_eq!(
        expired["error"]["code"], -401,
        "an expired session is HTTP 200 with -401"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn confluence_caps_limit_silently_and_paging_still_reaches_the_end() {
    let sims = start(1500).await;
    let http = client();
    let base = sims.url(SimKind::Confluence);
    let c = sims.credentials(SimKind::Confluence);
    let unauthorized = http
        .get(format!("{base}/rest/api/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);

    let mut next = Some("/rest/api/content?type=page&spaceKey=OPS&spaceKey=NET&start=0&limit=100&expand=body.storage,version,ancestors,metadata.labels,space".to_string());
    let mut ids = Vec::new();
    while let Some(path) = next {
        let page: Value = http
            .get(format!("{base}{path}"))
            .bearer_auth(&c.password)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["limit"], 25,
            "the server lowered limit without saying so"
        );
        for p in page["results"].as_array().unwrap() {
            assert!(p["body"]["storage"]["value"].is_string());
            ids.push(p["id"].as_str().unwrap().to_string());
        }
        next = page["_links"]["next"].as_str().map(str::to_string);
    }
    assert_eq!(ids.len(), sims.estate.read().unwrap().kb_pages.len());
    let since: Value = http
        .get(format!("{base}/rest/api/content/search"))
        .query(&[("cql", "space in (\"OPS\",\"NET\") and type = page and lastmodified > \"2026-10-20 00:00\""), ("limit", "200")])
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        since["size"].as_u64().unwrap() < ids.len() as u64,
        "CQL lastmodified narrows the set"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jira_server_and_cloud_paging_and_truncated_comments() {
    let sims = start(1000).await;
    let http = client();
    let base = sims.url(SimKind::Jira);
    let c = sims.credentials(SimKind::Jira);
    let mut start = 0;
    let mut keys = Vec::new();
    let mut truncated = None;
    loop {
        let page: Value = http
            .get(format!("{base}/rest/api/2/search"))
            .query(&[
                ("jql", "project in (OPS, INC) ORDER BY key"),
                ("startAt", &start.to_string()),
                ("maxResults", "500"),
            ])
            .basic_auth(&c.username, Some(&c.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["maxResults"], 100,
            "the server reports the cap it used"
        );
        let issues = page["issues"].as_array().unwrap();
        for issue in issues {
            keys.push(issue["key"].as_str().unwrap().to_string());
            let comment = &issue["fields"]["comment"];
            if comment["total"].as_u64().unwrap()
                > comment["comments"].as_array().unwrap().len() as u64
            {
                truncated = Some((
                    issue["key"].as_str().unwrap().to_string(),
                    comment["total"].as_u64().unwrap(),
                ));
            }
        }
        if start + issues.len() >= page["total"].as_u64().unwrap() as usize {
            break;
        }
        start += issues.len();
    }
    assert_eq!(keys.len(), sims.estate.read().unwrap().tickets.len());
    let (key, total) = truncated.expect("some issue has more comments than the search embeds");
    let all: Value = http
        .get(format!(
            "{base}/rest/api/2/issue/{key}/comment?maxResults=100"
        ))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["comments"].as_array().unwrap().len() as u64, total);

    let mut token: Option<String> = None;
    let mut cloud_keys = BTreeSet::new();
    loop {
        let mut body = json!({"jql": "project in (OPS, INC)", "maxResults": 60, "fields": ["summary", "comment"]});
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        let page: Value = http
            .post(format!("{base}/rest/api/3/search/jql"))
            .basic_auth(&c.username, Some(&c.password))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for issue in page["issues"].as_array().unwrap() {
            assert!(
                cloud_keys.insert(issue["key"].as_str().unwrap().to_string()),
                "nothing twice"
            );
            assert_eq!(
                issue["fields"]["description"]["type"], "doc",
                "v3 bodies are ADF"
            );
        }
        match page.get("nextPageToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => {
                assert_eq!(
                    page["isLast"], true,
                    "the last page has no nextPageToken key"
                );
                break;
            }
        }
    }
    assert_eq!(cloud_keys.len(), keys.len());
    let unbounded = http
        .get(format!("{base}/rest/api/3/search/jql?jql=ORDER%20BY%20key"))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap();
    assert_eq!(unbounded.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_are_deterministic_unit_vectors() {
    let sims = start(10).await;
    let http = client();
    let url = format!("{}/v1/embeddings", sims.url(SimKind::Embeddings));
    let body = json!({"model": "all-MiniLM-L6-v2", "input": ["restart web-0001 nginx", "restart web-0001 service", "LUN expansion on dorado"]});
    let a: Value = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    let vectors: Vec<Vec<f64>> = a["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vectors[0].len(), 384);
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    assert!((dot(&vectors[0], &vectors[0]) - 1.0).abs() < 1e-4);
    assert!(
        dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]),
        "shared words → closer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_machine_has_the_same_uuid_and_mac_in_vcenter_foreman_and_puppetdb() {
    let sims = start(50).await;
    let http = client();
    let token = vcenter_session(&sims, &http).await;
    let vm = sims
        .estate
        .read()
        .unwrap()
        .vms
        .iter()
        .find(|v| v.in_puppet && v.foreman_id.is_some())
        .cloned()
        .unwrap();
    let detail: Value = http
        .get(format!(
            "{}/api/vcenter/vm/{}",
            sims.url(SimKind::Vcenter),
            vm.moid
        ))
        .header("vmware-api-session-id", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = sims.credentials(SimKind::Foreman);
    let host: Value = http
        .get(format!(
            "{}/api/hosts/{}",
            sims.url(SimKind::Foreman),
            vm.fqdn()
        ))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inventory: Vec<Value> = http
        .get(format!(
            "{}/pdb/query/v4/inventory",
            sims.url(SimKind::Puppetdb)
        ))
        .query(&[("query", json!(["=", "certname", vm.fqdn()]).to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let facts = &inventory[0]["facts"];
    assert_eq!(
        host["uuid"], detail["identity"]["instance_uuid"],
        "Foreman uuid = vCenter instance UUID"
    );
    assert_eq!(
        facts["dmi"]["product"]["uuid"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        detail["identity"]["bios_uuid"].as_str().unwrap(),
        "SMBIOS UUID = BIOS UUID"
    );
    assert_eq!(host["mac"], detail["nics"]["4000"]["mac_address"]);
    assert_eq!(
        facts["networking"]["mac"],
        detail["nics"]["4000"]["mac_address"]
    );
    assert_eq!(
        host["name"].as_str().unwrap().split('.').next().unwrap(),
        vm.hostname
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn advance_produces_exactly_the_documented_changes() {
    let sims = start(400).await;
    let before = sims.estate.read().unwrap().clone();
    let report = sims.advance();
    let after = sims.estate.read().unwrap().clone();
    let k = 400 / 200;
    assert_eq!(report.step, 1);
    assert_eq!(
        (
            report.created_vms.len(),
            report.deleted_vms.len(),
            report.powered_off_vms.len(),
            report.migrated_vms.len()
        ),
        (k, k, k, k)
    );
    assert!(report.offline_host.is_some());
    assert_eq!(
        report.edited_configs.len(),
        (before.net_devices.len() / 10).max(1)
    );
    assert_eq!(report.new_tickets.len(), (before.tickets.len() / 20).max(1));
    let mut all: Vec<&String> = report
        .created_vms
        .iter()
        .chain(&report.deleted_vms)
        .chain(&report.powered_off_vms)
        .chain(report.migrated_vms.iter().map(|m| &m.0))
        .collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "the change sets are disjoint");

    // Nothing else changed: every VM not named in the report is identical.
    let named: BTreeSet<&str> = all.iter().map(|s| s.as_str()).collect();
    for (old, new) in before.vms.iter().zip(&after.vms) {
        if !named.contains(old.moid.as_str()) {
            assert_eq!(
                serde_json::to_value(old).unwrap(),
                serde_json::to_value(new).unwrap(),
                "{} changed",
                old.moid
            );
        }
    }
    let changed_hosts: Vec<&str> = before
        .hosts
        .iter()
        .zip(&after.hosts)
        .filter(|(a, b)| a.connection_state != b.connection_state)
        .map(|(a, _)| a.moid.as_str())
        .collect();
    assert_eq!(changed_hosts, vec![report.offline_host.as_deref().unwrap()]);

    // The simulators serve the new state.
    let http = client();
    let token = vcenter_session(&sims, &http).await;
    let base = sims.url(SimKind::Vcenter);
    let gone = http
        .get(format!("{base}/api/vcenter/vm/{}", report.deleted_vms[0]))
        .header("vmware-api-session-id", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let (moved, _, to) = &report.migrated_vms[0];
    let on_host: Vec<Value> = http
        .get(format!("{base}/api/vcenter/vm?hosts={to}"))
        .header("vmware-api-session-id", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(on_host.iter().any(|v| v["vm"] == moved.as_str()));
    let edited = &report.edited_configs[0];
    let versions: Vec<Value> = http
        .get(format!(
            "{}/node/version.json?node_full={edited}",
            sims.url(SimKind::Oxidized)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_versions = before
        .net_devices
        .iter()
        .find(|d| &d.name == edited)
        .unwrap()
        .versions
        .len();
    assert_eq!(versions.len(), old_versions + 1);

    // Same seed, same step: the same report.
    let twin = start(400).await;
    assert_eq!(twin.advance(), report);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_demand_rate_limit_truncate_reset_and_status() {
    let sims = start(30).await;
    let http = client();
    let base = sims.url(SimKind::Puppetdb);
    let faults = sims.faults(SimKind::Puppetdb);
    faults.push(FaultRule::new(FaultAction::RateLimit("2".into())).times(1));
    let limited = http
        .get(format!("{base}/pdb/query/v4/inventory"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert_eq!(
        http.get(format!("{base}/pdb/query/v4/inventory"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    faults.push(FaultRule::new(FaultAction::Truncate).times(1));
    let text = http
        .get(format!("{base}/pdb/query/v4/inventory"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "a truncated body is invalid JSON"
    );

    faults.push(FaultRule::new(FaultAction::Reset).times(1));
    let reset = async {
        http.get(format!("{base}/pdb/query/v4/inventory"))
            .send()
            .await?
            .bytes()
            .await
    }
    .await;
    assert!(reset.is_err(), "the connection dropped mid-response");

    faults.push(
        FaultRule::new(FaultAction::Status(500))
            .after(2)
            .times(1)
            .on_path("/inventory"),
    );
    let statuses: Vec<u16> =
        futures_statuses(&http, &format!("{base}/pdb/query/v4/inventory"), 4).await;
    assert_eq!(
        statuses,
        vec![200, 200, 500, 200],
        "the third matching request failed, once"
    );

    let c = sims.credentials(SimKind::Foreman);
    sims.faults(SimKind::Foreman).set_reject_auth(true);
    let denied = http
        .get(format!("{}/api/hosts", sims.url(SimKind::Foreman)))
        .basic_auth(&c.username, Some(&c.password))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        faults.requests(),
        8,
        "every request, faulty or not, is counted"
    );
}

async fn futures_statuses(http: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(http.get(url).send().await.unwrap().status().as_u16());
    }
    out
}
