//! Generating an estate part by part from the seed: VMs on clustered and standalone hosts, bare
//! metal, orphans, switches with config histories, storage arrays, knowledge pages and tickets.

use super::*;

impl Estate {
    pub(super) fn add_vm(&mut self, rng: &mut Rng, initial: bool) -> usize {
        let number = self.next_vm_number;
        self.next_vm_number += 1;
        let index = self.vms.len();
        let role = ROLES[number % ROLES.len()];
        let hostname = format!("{role}-{number:0width$}", width = self.name_width);
        // Appliances (about 8%) live only in vCenter.
        let appliance = initial && rng.chance(0.08);
        let hostname = if appliance {
            format!(
                "{}-{number:0width$}",
                ["vcsa", "nsx", "avi", "vrli"][number % 4],
                width = self.name_width
            )
        } else {
            hostname
        };
        let connected: Vec<usize> = (0..self.hosts.len())
            .filter(|&h| self.hosts[h].connection_state == "CONNECTED")
            .collect();
        let host = *rng.pick(&connected);
        let site = self.clusters[self.hosts[host].cluster].site;
        let style = rng.below(10);
        let name = match style {
            0 => hostname.to_uppercase(),
            1 => format!("{hostname}.{}", SITES[site].1),
            _ => hostname.clone(),
        };
        let power_state = match rng.below(50) {
            0 => PowerState::Suspended,
            1..=5 => PowerState::Off,
            _ => PowerState::On,
        };
        let nic_count = if rng.chance(0.1) { 2 } else { 1 };
        let nics = (0..nic_count)
            .map(|n| {
                let vlan = 100 + (index % 20) as u32 + n as u32 * 100;
                // Odd VLANs are distributed port groups.
                let distributed = vlan % 2 == 1;
                VmNic {
                    key: 4000 + n as u32,
                    mac: mac(
                        [0x00, 0x50, 0x56],
                        (index as u64) * 2 + n as u64 + 0x10_0000,
                    ),
                    network: if distributed {
                        format!("dvportgroup-{}", 300 + vlan)
                    } else {
                        format!("network-{}", 300 + vlan)
                    },
                    network_name: format!("VLAN{vlan}-{}", if n == 0 { "prod" } else { "backup" }),
                    distributed,
                    ip: (n == 0 || rng.chance(0.5)).then(|| ip_of(site, index * 2 + n)),
                    prefix: 24,
                }
            })
            .collect();
        let cluster = self.hosts[host].cluster;
        let disk_count = 1 + rng.below(3) as usize;
        let disks = (0..disk_count)
            .map(|d| VmDisk {
                key: 2000 + d as u32,
                label: format!("Hard disk {}", d + 1),
                capacity: rng.range(20, 500) << 30,
                datastore: cluster * 2 + (d % 2),
            })
            .collect();
        let in_foreman = !appliance;
        let foreman_id = in_foreman.then(|| {
            let id = self.next_foreman_id;
            self.next_foreman_id += 1;
            id
        });
        self.vms.push(Vm {
            moid: format!("vm-{}", 1000 + index),
            name,
            hostname,
            site,
            host,
            power_state,
            cpu_count: *rng.pick(&[1, 2, 2, 4, 4, 8, 16]),
            memory_mib: *rng.pick(&[1024, 2048, 4096, 4096, 8192, 16384, 32768]),
            guest: rng.below(GUESTS.len() as u64) as usize,
            bios_uuid: rng.uuid(),
            instance_uuid: rng.uuid(),
            tools_running: power_state == PowerState::On && rng.chance(0.95),
            nics,
            disks,
            foreman_id,
            in_puppet: in_foreman && rng.chance(0.95),
            deleted: false,
            snapshots: snapshots_of(index, self.now),
        });
        index
    }

    pub(super) fn add_bare_metal(&mut self, rng: &mut Rng) {
        let count = (self.scale / 20).max(2);
        for i in 0..count {
            let site = i % 2;
            let id = self.next_foreman_id;
            self.next_foreman_id += 1;
            self.bare_metal.push(BareMetal {
                hostname: format!("bm-{}-{:02}", ["db", "backup", "hpc", "k8s"][i % 4], i + 1),
                site,
                foreman_id: id,
                serial: hex(rng, 7).to_uppercase(),
                bios_uuid: rng.uuid(),
                mac: mac([0xb0, 0x26, 0x28], i as u64 + 0x20_0000),
                ip: ip_of(site, 200_000 + i),
                model: (*rng.pick(&["PowerEdge R650", "PowerEdge R750", "ProLiant DL380 Gen10"]))
                    .to_string(),
                guest: rng.below(4) as usize,
                cpu_count: *rng.pick(&[32, 48, 64, 96]),
                memory_mib: *rng.pick(&[262_144, 524_288, 1_048_576]),
            });
        }
    }

    pub(super) fn add_orphans(&mut self, rng: &mut Rng) {
        let decoys = (self.scale / 500).max(1);
        for d in 0..decoys {
            // Shadow a VM that Foreman knows, from the other site's domain, with another UUID.
            let Some(target) = self
                .vms
                .iter()
                .skip(d * 7 + 3)
                .find(|vm| vm.foreman_id.is_some())
                .cloned()
            else {
                continue;
            };
            let id = self.next_foreman_id;
            self.next_foreman_id += 1;
            self.orphans.push(OrphanHost {
                fqdn: format!("{}.{}", target.hostname, SITES[1 - target.site].1),
                foreman_id: id,
                uuid: Some(rng.uuid()),
                mac: mac([0x00, 0x50, 0x56], 0x30_0000 + d as u64),
                ip: ip_of(1 - target.site, 300_000 + d),
                last_report: self.now - Duration::hours(2),
                compute_resource: Some("vcenter-legacy".into()),
                is_decoy: true,
            });
        }
        let stale = (self.scale / 1000).max(1);
        for s in 0..stale {
            let id = self.next_foreman_id;
            self.next_foreman_id += 1;
            self.orphans.push(OrphanHost {
                fqdn: format!("old-app-{:02}.{}", s + 1, SITES[0].1),
                foreman_id: id,
                uuid: None,
                mac: mac([0xb0, 0x26, 0x28], 0x40_0000 + s as u64),
                ip: ip_of(0, 400_000 + s),
                last_report: self.now - Duration::days(60),
                compute_resource: None,
                is_decoy: false,
            });
        }
    }

    pub(super) fn add_network(&mut self, rng: &mut Rng) {
        let count = (self.scale / 40).max(8);
        for i in 0..count {
            let site = i % 2;
            let n = i / 2 + 1;
            let (role, model, name) = match i / 2 % 6 {
                0 => (
                    "switch",
                    "NXOS",
                    format!("{}-core-sw{:02}", SITES[site].0, n),
                ),
                1 | 2 => (
                    "switch",
                    "EOS",
                    format!("{}-leaf-sw{:02}", SITES[site].0, n),
                ),
                3 => ("switch", "IOS", format!("{}-acc-sw{:02}", SITES[site].0, n)),
                4 => (
                    "router",
                    if n % 2 == 0 { "JunOS" } else { "IOS" },
                    format!("{}-rtr{:02}", SITES[site].0, n),
                ),
                _ => ("firewall", "JunOS", format!("{}-fw{:02}", SITES[site].0, n)),
            };
            let port_count = 4 + rng.below(6) as usize;
            let interfaces = (0..port_count)
                .map(|p| {
                    let iface_name = match model {
                        "NXOS" => format!("Ethernet1/{}", p + 1),
                        "EOS" => format!("Ethernet{}", p + 1),
                        "IOS" => format!("GigabitEthernet0/{}", p),
                        _ => format!("ge-0/0/{p}"),
                    };
                    let vlan = (role == "switch").then(|| 100 + (p as u16 * 10) % 200);
                    NetInterface {
                        name: iface_name,
                        description: format!(
                            "uplink to {}",
                            ["esx", "core", "wan", "backup", "storage"][p % 5]
                        ),
                        vlan,
                        address: (role != "switch" || p == 0)
                            .then(|| format!("10.250.{}.{}/30", i % 250, p * 4 + 1)),
                        shutdown: rng.chance(0.1),
                    }
                })
                .collect();
            let never = i == count - 1;
            // One node always fails its fetches (plus a few at random), so failure is always on show.
            let failing = !never && (i == count - 2 || rng.chance(0.06));
            let version_count = if never { 0 } else { 1 + rng.below(4) as usize };
            let versions = (0..version_count)
                .map(|v| ConfigVersion {
                    oid: hex(rng, 40),
                    time: self.now - Duration::days(((version_count - v) * 9) as i64)
                        + Duration::minutes(i as i64),
                    edits: v as u32,
                })
                .collect();
            self.net_devices.push(NetDevice {
                name,
                ip: format!("10.255.{}.{}", site, n + 10),
                site,
                model: model.to_string(),
                role: role.to_string(),
                interfaces,
                versions,
                last_status: if never {
                    "never".into()
                } else if failing {
                    "no_connection".into()
                } else {
                    "success".into()
                },
                last_time: self.now - Duration::minutes(30 + i as i64),
                seed: rng.next_u64(),
            });
        }
    }

    pub(super) fn add_storage(&mut self, rng: &mut Rng) {
        for (i, node) in ["ontap-dc1-01", "ontap-dc1-02"].iter().enumerate() {
            for a in 0..2 {
                let size = (60 + rng.below(40)) << 40;
                self.netapp.aggregates.push(Aggregate {
                    uuid: rng.uuid(),
                    name: format!("aggr{}_n{}", a + 1, i + 1),
                    node: node.to_string(),
                    size,
                    used: size / 100 * (30 + rng.below(50)),
                });
            }
        }
        // One NFS volume per NFS datastore, then application and LUN volumes.
        let nfs: Vec<(String, u64, u64)> = self
            .datastores
            .iter()
            .filter(|d| d.kind == "NFS")
            .map(|d| (d.name.clone(), d.capacity, 0))
            .collect();
        let extra = (self.scale / 25).max(6);
        let aggregate_count = self.netapp.aggregates.len() as u64;
        for (name, capacity, _) in &nfs {
            self.netapp.volumes.push(OntapVolume {
                uuid: rng.uuid(),
                name: name.clone(),
                svm: "svm_nfs".into(),
                aggregate: rng.below(aggregate_count) as usize,
                size: *capacity,
                used: capacity / 100 * (20 + rng.below(60)),
                thin: true,
            });
        }
        for v in 0..extra {
            let lun_volume = v % 3 == 2;
            let size = rng.range(100, 4000) << 30;
            let index = self.netapp.volumes.len();
            self.netapp.volumes.push(OntapVolume {
                uuid: rng.uuid(),
                name: if lun_volume {
                    format!("vol_lun{:02}", v + 1)
                } else {
                    format!("vol_app{:02}", v + 1)
                },
                svm: if lun_volume {
                    "svm_san".into()
                } else {
                    "svm_nfs".into()
                },
                aggregate: rng.below(aggregate_count) as usize,
                size,
                used: size / 100 * (5 + rng.below(90)),
                thin: rng.chance(0.7),
            });
            if lun_volume {
                for l in 0..2 {
                    let lun_size = size / 3;
                    self.netapp.luns.push(OntapLun {
                        uuid: rng.uuid(),
                        name: format!("/vol/vol_lun{:02}/lun{l}", v + 1),
                        volume: index,
                        size: lun_size,
                        used: lun_size / 100 * (10 + rng.below(80)),
                        serial: format!("wCVd-{}", hex(rng, 7)),
                    });
                }
            }
        }
        for p in 0..2 {
            let total = (200 + rng.below(200)) << 31; // sectors: (200..400) TiB / 512
            self.dorado.pools.push(DoradoPool {
                id: p.to_string(),
                name: format!("StoragePool{:03}", p + 1),
                total_sectors: total,
                free_sectors: total / 100 * (20 + rng.below(50)),
            });
        }
        let vmfs: Vec<(String, u64)> = self
            .datastores
            .iter()
            .filter(|d| d.kind == "VMFS")
            .map(|d| (d.name.clone(), d.capacity))
            .collect();
        let mut lun_id = 1;
        for (name, capacity) in vmfs {
            self.dorado
                .luns
                .push(self.dorado_lun(rng, lun_id, name, capacity / 512));
            lun_id += 1;
        }
        for l in 0..(self.scale / 25).max(6) {
            let sectors = rng.range(50, 2000) << 21; // GiB → sectors
            let name = format!(
                "{}_{:02}",
                ["db_data", "db_log", "backup", "k8s_pv"][l % 4],
                l + 1
            );
            self.dorado
                .luns
                .push(self.dorado_lun(rng, lun_id, name, sectors));
            lun_id += 1;
        }
    }

    pub(super) fn dorado_lun(
        &self,
        rng: &mut Rng,
        id: usize,
        name: String,
        sectors: u64,
    ) -> DoradoLun {
        DoradoLun {
            id: id.to_string(),
            name,
            wwn: format!("6a8ffba1005d5a3c{}{:08x}", hex(rng, 8), id),
            pool: id % 2,
            capacity_sectors: sectors,
            alloc_sectors: sectors / 100 * (5 + rng.below(90)),
            thin: rng.chance(0.8),
            running_status: if rng.chance(0.03) {
                "28".into()
            } else {
                "27".into()
            },
            health_status: "1".into(),
        }
    }

    pub(super) fn update_datastore_usage(&mut self) {
        let mut used = vec![0u64; self.datastores.len()];
        for vm in self.vms.iter().filter(|vm| !vm.deleted) {
            for disk in &vm.disks {
                used[disk.datastore] += disk.capacity / 2;
            }
        }
        for (ds, used) in self.datastores.iter_mut().zip(used) {
            ds.free_space = ds.capacity.saturating_sub(used.min(ds.capacity / 10 * 9));
        }
    }

    pub(super) fn add_knowledge(&mut self, rng: &mut Rng) {
        let people = ["jdoe", "asmith", "mkowalski", "lchen", "opatel"];
        let ops_home = "65537".to_string();
        let net_home = "65600".to_string();
        self.kb_pages.push(KbPage {
            id: ops_home.clone(),
            space: "OPS".into(),
            title: "Runbooks".into(),
            html: "<p>Operational runbooks for the platform team.</p>".into(),
            parent_id: None,
            labels: vec!["index".into()],
            created: self.now - Duration::days(400),
            updated: self.now - Duration::days(30),
            version: 12,
            author: "jdoe".into(),
        });
        self.kb_pages.push(KbPage {
            id: net_home.clone(),
            space: "NET".into(),
            title: "Network runbooks".into(),
            html: "<p>Procedures for the network estate.</p>".into(),
            parent_id: None,
            labels: vec!["index".into()],
            created: self.now - Duration::days(380),
            updated: self.now - Duration::days(40),
            version: 5,
            author: "lchen".into(),
        });
        let count = (self.scale / 50).max(12);
        for p in 0..count {
            let id = (66000 + p).to_string();
            let age = rng.range(1, 300) as i64;
            let (space, parent, title, html, labels) = match p % 4 {
                0 => {
                    let cluster = &self.clusters[p / 4 % self.clusters.len()];
                    let hosts: Vec<&str> = self
                        .hosts
                        .iter()
                        .filter(|h| h.cluster == p / 4 % self.clusters.len())
                        .take(3)
                        .map(|h| h.name.as_str())
                        .collect();
                    (
                        "OPS",
                        &ops_home,
                        format!("Runbook: {} cluster maintenance", cluster.name),
                        format!(
                            "<p>When to use: a host of the cluster needs patching, a reboot or hardware work.</p><h2>Scope</h2><p>Hosts {} in cluster <strong>{}</strong>.</p><h2>Steps</h2><ol><li>Enter maintenance mode on one host at a time.</li><li>Check HA admission control.</li><li>Patch and reboot.</li></ol><ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[esxcli system maintenanceMode set --enable true]]></ac:plain-text-body></ac:structured-macro>",
                            hosts.join(", "),
                            cluster.name
                        ),
                        vec!["vmware".to_string(), "maintenance".to_string()],
                    )
                }
                1 => {
                    let vm = &self.vms[(p * 37) % self.vms.len()];
                    let ip = vm.nics[0].ip.clone().unwrap_or_else(|| "n/a".into());
                    (
                        "OPS",
                        &ops_home,
                        format!(
                            "How to restart the {} service on {}",
                            ROLES[p % ROLES.len()],
                            vm.hostname
                        ),
                        format!(
                            "<p>When to use: the service does not answer its health check, or a change needs a restart.</p><p>Applies to <code>{}</code> ({ip}).</p><ul><li>ssh to {}</li><li>systemctl restart {}</li><li>Check the health endpoint on http://{ip}:8080/health</li></ul>",
                            vm.fqdn(),
                            vm.hostname,
                            ROLES[p % ROLES.len()]
                        ),
                        vec![ROLES[p % ROLES.len()].to_string(), "service".to_string()],
                    )
                }
                2 => {
                    let dev = &self.net_devices[p % self.net_devices.len()];
                    (
                        "NET",
                        &net_home,
                        format!("Replacing a failed {} ({})", dev.role, dev.name),
                        format!(
                            "<p>When to use: the device is dead or failing (no power, no console, ports down) and has to be swapped.</p><p>Device <strong>{}</strong> at {} runs {}.</p><p>Before replacing, save the running config from Oxidized and check LLDP neighbours.</p>",
                            dev.name, dev.ip, dev.model
                        ),
                        vec!["network".to_string(), dev.role.clone()],
                    )
                }
                _ => {
                    let lun = &self.dorado.luns[p % self.dorado.luns.len()];
                    (
                        "OPS",
                        &ops_home,
                        format!(
                            "Storage: expanding LUN {} on {}",
                            lun.name, self.dorado.name
                        ),
                        format!(
                            "<p>When to use: a database or datastore volume on this array is full or nearly full (disk full alerts, the LUN over 90% allocated).</p><p>LUN <code>{}</code> (WWN {}) lives in pool {} on {}.</p><p>Expand in DeviceManager, then rescan storage on every ESXi host of the cluster.</p>",
                            lun.name, lun.wwn, self.dorado.pools[lun.pool].name, self.dorado.name
                        ),
                        vec!["storage".to_string(), "dorado".to_string()],
                    )
                }
            };
            self.kb_pages.push(KbPage {
                id,
                space: space.into(),
                title,
                html,
                parent_id: Some(parent.clone()),
                labels,
                created: self.now - Duration::days(age + 30),
                updated: self.now - Duration::days(age),
                version: 1 + rng.below(9) as u32,
                author: (*rng.pick(&people)).to_string(),
            });
        }
        let tickets = (self.scale / 20).max(20);
        for _ in 0..tickets {
            self.add_ticket(rng);
        }
    }

    pub(super) fn add_ticket(&mut self, rng: &mut Rng) -> String {
        let people = ["jdoe", "asmith", "mkowalski", "lchen", "opatel"];
        let n = self.next_ticket;
        self.next_ticket += 1;
        let project = if n.is_multiple_of(3) { "INC" } else { "OPS" };
        let key = format!("{project}-{n}");
        let (summary, description, labels) = match n % 4 {
            0 => {
                let host = &self.hosts[n as usize % self.hosts.len()];
                (
                    format!("{} not responding to vCenter", host.name),
                    format!(
                        "Host {} (serial {}) dropped out of cluster. HA restarted its VMs.",
                        host.name, host.serial
                    ),
                    vec!["esx".to_string(), "hardware".to_string()],
                )
            }
            1 => {
                let vm = &self.vms[(n as usize * 13) % self.vms.len()];
                let ip = vm.nics[0].ip.clone().unwrap_or_default();
                (
                    format!("Disk full on {}", vm.hostname),
                    format!(
                        "/var on {} ({ip}) at 98%. Log rotation failed after the last patch run.",
                        vm.fqdn()
                    ),
                    vec!["linux".to_string(), "disk".to_string()],
                )
            }
            2 => {
                let dev = &self.net_devices[n as usize % self.net_devices.len()];
                (
                    format!("Interface flapping on {}", dev.name),
                    format!(
                        "{} ({}) logs link up/down on {} every few minutes.",
                        dev.name, dev.ip, dev.interfaces[0].name
                    ),
                    vec!["network".to_string()],
                )
            }
            _ => {
                let lun = &self.dorado.luns[n as usize % self.dorado.luns.len()];
                (
                    format!("Expand LUN {}", lun.name),
                    format!(
                        "LUN {} on {} is at 91% allocated; request +500 GiB.",
                        lun.name, self.dorado.name
                    ),
                    vec!["storage".to_string()],
                )
            }
        };
        let created = self.now - Duration::hours(rng.range(2, 24 * 200) as i64);
        let done = rng.chance(0.6);
        let comment_count = rng.below(9) as usize;
        let comments: Vec<Comment> = (0..comment_count)
            .map(|c| Comment {
                id: format!("{}", 20000 + n * 10 + c as u64),
                author: (*rng.pick(&people)).to_string(),
                body: [
                    "Looking into it.",
                    "Part ordered.",
                    "Rebooted, monitoring.",
                    "Root cause: expired certificate.",
                    "Fixed, closing.",
                ][c % 5]
                    .to_string(),
                created: created + Duration::hours(c as i64 + 1),
            })
            .collect();
        let updated = comments.last().map_or(created, |c| c.created);
        self.tickets.push(Ticket {
            id: 10000 + n,
            key: key.clone(),
            project: project.to_string(),
            issue_type: if project == "INC" {
                "Incident".into()
            } else {
                (*rng.pick(&["Task", "Bug", "Task"])).to_string()
            },
            summary,
            description,
            status: if done {
                (*rng.pick(&["Resolved", "Closed"])).to_string()
            } else {
                (*rng.pick(&["Open", "In Progress"])).to_string()
            },
            resolution: done
                .then(|| (*rng.pick(&["Fixed", "Fixed", "Won't Fix", "Duplicate"])).to_string()),
            priority: (*rng.pick(&["Major", "Minor", "Critical", "Major"])).to_string(),
            assignee: rng.chance(0.8).then(|| (*rng.pick(&people)).to_string()),
            reporter: (*rng.pick(&people)).to_string(),
            labels,
            comments,
            created,
            updated,
            resolved: done.then_some(updated),
        });
        key
    }
}
