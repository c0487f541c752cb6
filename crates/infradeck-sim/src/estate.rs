//! One coherent simulated estate: the ground truth every simulator serves.
//!
//! The systems agree the way real ones do. The same VM is in vCenter (short name, sometimes upper
//! case or an FQDN), in Foreman (FQDN, `uuid` = vCenter instance UUID, primary MAC) and in
//! PuppetDB (certname = FQDN, `dmi.product.uuid` = vCenter BIOS UUID, same MACs). Some machines
//! are only in one system (appliances are only in vCenter, bare metal only in Foreman/PuppetDB),
//! one Foreman host is stale, and a few Foreman hosts are *decoys*: same short name as a vCenter VM
//! but another domain and another VM's UUID, which correlation must not link.
//!
//! Generation is deterministic for a seed and scale; [`Estate::advance`] applies one documented,
//! deterministic step of change and reports exactly what it did.

use super::rng::Rng;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

/// The two sites of every estate.
pub const SITES: [(&str, &str); 2] = [("dc1", "dc1.example.net"), ("dc2", "dc2.example.net")];

const ROLES: [&str; 8] = ["web", "app", "db", "cache", "mq", "lb", "mon", "build"];

/// (vCenter guest_OS, guest family, full name, Foreman OS name, Puppet os.name, release)
const GUESTS: [(&str, &str, &str, &str, &str, &str); 5] = [
    (
        "RHEL_8_64",
        "LINUX",
        "Red Hat Enterprise Linux 8 (64-bit)",
        "RedHat 8.9",
        "RedHat",
        "8.9",
    ),
    (
        "RHEL_9_64",
        "LINUX",
        "Red Hat Enterprise Linux 9 (64-bit)",
        "RedHat 9.4",
        "RedHat",
        "9.4",
    ),
    (
        "UBUNTU_64",
        "LINUX",
        "Ubuntu Linux (64-bit)",
        "Ubuntu 22.04",
        "Ubuntu",
        "22.04",
    ),
    (
        "SLES_15_64",
        "LINUX",
        "SUSE Linux Enterprise 15 (64-bit)",
        "SLES 15.5",
        "SLES",
        "15.5",
    ),
    (
        "WINDOWS_9_SERVER_64",
        "WINDOWS",
        "Microsoft Windows Server 2019 (64-bit)",
        "Windows 2019",
        "windows",
        "2019",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PowerState {
    #[serde(rename = "POWERED_ON")]
    On,
    #[serde(rename = "POWERED_OFF")]
    Off,
    #[serde(rename = "SUSPENDED")]
    Suspended,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "POWERED_ON",
            PowerState::Off => "POWERED_OFF",
            PowerState::Suspended => "SUSPENDED",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub moid: String,
    pub name: String,
    pub site: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub moid: String,
    pub name: String,
    /// Its cluster, or for a standalone host the cluster whose site, datastores and network it
    /// shares (vCenter reports it outside any cluster).
    pub cluster: usize,
    /// Outside any cluster: in vCenter a plain compute resource (`/api/vcenter/host?standalone=true`).
    pub standalone: bool,
    /// `CONNECTED`, `DISCONNECTED` or `NOT_RESPONDING`.
    pub connection_state: String,
    pub(crate) serial: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmNic {
    pub key: u32,
    pub mac: String,
    pub(crate) network: String,
    pub network_name: String,
    /// On a distributed port group: vCenter sends no `network_name` in the NIC backing.
    pub distributed: bool,
    pub ip: Option<String>,
    pub(crate) prefix: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmDisk {
    pub key: u32,
    pub(crate) label: String,
    pub(crate) capacity: u64,
    pub(crate) datastore: usize,
}

/// A VM snapshot: each is the child of the one before it; the last is current.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: u32,
    pub(crate) moid: String,
    pub name: String,
    pub description: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) quiesced: bool,
    /// The delta disk it started (its `-000001.vmdk` extent), in bytes.
    pub delta_bytes: u64,
}

/// A host's physical NIC and its CDP/LLDP neighbour.
#[derive(Debug, Clone, Serialize)]
pub struct Uplink {
    pub device: String,
    pub mac: String,
    pub(crate) speed_mb: u32,
    /// (protocol `cdp`/`lldp`, switch name as announced, switch port).
    pub neighbour: Option<(&'static str, String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vm {
    pub moid: String,
    /// The name as vCenter shows it (untidy: short, upper case or FQDN).
    pub name: String,
    /// The canonical short host name (lower case).
    pub hostname: String,
    pub(crate) site: usize,
    pub host: usize,
    pub power_state: PowerState,
    pub(crate) cpu_count: u32,
    pub(crate) memory_mib: u64,
    pub(crate) guest: usize,
    pub(crate) bios_uuid: String,
    pub(crate) instance_uuid: String,
    pub tools_running: bool,
    pub nics: Vec<VmNic>,
    pub disks: Vec<VmDisk>,
    /// Foreman host id, when Foreman knows this VM.
    pub foreman_id: Option<u64>,
    pub in_puppet: bool,
    /// Removed from vCenter (Foreman and PuppetDB still know it: decommissioning is untidy).
    pub deleted: bool,
    /// Oldest first (every ninth VM has one, every 27th two: forgotten snapshots are common).
    pub snapshots: Vec<Snapshot>,
}

impl Vm {
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, SITES[self.site].1)
    }

    /// vCenter's BIOS UUID as VMware renders it in the SMBIOS serial (`VMware-42 31 94 3a ...`).
    pub(crate) fn vmware_serial(&self) -> String {
        let hex: Vec<char> = self.bios_uuid.chars().filter(|c| *c != '-').collect();
        let bytes: Vec<String> = hex.chunks(2).map(|pair| pair.iter().collect()).collect();
        format!("VMware-{}-{}", bytes[..8].join(" "), bytes[8..].join(" "))
    }
}

/// A physical server managed by Foreman and Puppet, not virtualized.
#[derive(Debug, Clone, Serialize)]
pub struct BareMetal {
    pub hostname: String,
    pub(crate) site: usize,
    pub foreman_id: u64,
    pub(crate) serial: String,
    pub(crate) bios_uuid: String,
    pub(crate) mac: String,
    pub(crate) ip: String,
    pub(crate) model: String,
    pub(crate) guest: usize,
    pub(crate) cpu_count: u32,
    pub(crate) memory_mib: u64,
}

/// A Foreman host that is not in vCenter: a decoy (same short name as a VM, another domain and
/// UUID) or a stale record of a decommissioned machine.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanHost {
    pub fqdn: String,
    pub foreman_id: u64,
    pub(crate) uuid: Option<String>,
    pub(crate) mac: String,
    pub(crate) ip: String,
    pub(crate) last_report: DateTime<Utc>,
    pub(crate) compute_resource: Option<String>,
    pub is_decoy: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Datastore {
    pub moid: String,
    pub name: String,
    /// `VMFS` (backed by a Dorado LUN of the same name) or `NFS` (a NetApp volume of the same name).
    pub kind: String,
    pub(crate) capacity: u64,
    pub(crate) free_space: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct NetInterface {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) vlan: Option<u16>,
    pub(crate) address: Option<String>,
    pub(crate) shutdown: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigVersion {
    pub oid: String,
    pub(crate) time: DateTime<Utc>,
    /// How many edits this version carries over the first one.
    pub(crate) edits: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetDevice {
    pub name: String,
    pub(crate) ip: String,
    pub(crate) site: usize,
    /// Oxidized model class: `IOS`, `NXOS`, `EOS` or `JunOS`.
    pub(crate) model: String,
    /// `switch`, `router` or `firewall`.
    pub(crate) role: String,
    pub(crate) interfaces: Vec<NetInterface>,
    /// Newest last. Empty for a node Oxidized has never fetched.
    pub versions: Vec<ConfigVersion>,
    /// `success`, `no_connection`, `fail` or `never`.
    pub last_status: String,
    pub(crate) last_time: DateTime<Utc>,
    pub(crate) seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Aggregate {
    pub(crate) uuid: String,
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) size: u64,
    pub(crate) used: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OntapVolume {
    pub uuid: String,
    pub(crate) name: String,
    pub svm: String,
    pub(crate) aggregate: usize,
    pub size: u64,
    pub(crate) used: u64,
    /// `thin` (space guarantee none) or `thick`.
    pub thin: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct OntapLun {
    pub uuid: String,
    pub(crate) name: String,
    pub(crate) volume: usize,
    pub(crate) size: u64,
    pub(crate) used: u64,
    pub(crate) serial: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Netapp {
    pub cluster_name: String,
    pub(crate) cluster_uuid: String,
    pub(crate) version: String,
    pub(crate) aggregates: Vec<Aggregate>,
    pub volumes: Vec<OntapVolume>,
    pub luns: Vec<OntapLun>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DoradoPool {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Sectors of 512 bytes.
    pub(crate) total_sectors: u64,
    pub(crate) free_sectors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoradoLun {
    pub id: String,
    pub(crate) name: String,
    pub(crate) wwn: String,
    pub(crate) pool: usize,
    pub capacity_sectors: u64,
    pub(crate) alloc_sectors: u64,
    pub thin: bool,
    /// `27` online, `28` offline.
    pub running_status: String,
    /// `1` normal.
    pub(crate) health_status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dorado {
    pub name: String,
    pub(crate) device_id: String,
    pub(crate) serial: String,
    pub(crate) model: String,
    pub(crate) version: String,
    pub(crate) pools: Vec<DoradoPool>,
    pub luns: Vec<DoradoLun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KbPage {
    pub id: String,
    pub(crate) space: String,
    pub(crate) title: String,
    pub(crate) html: String,
    pub parent_id: Option<String>,
    pub labels: Vec<String>,
    pub(crate) created: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    pub(crate) version: u32,
    pub(crate) author: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comment {
    pub id: String,
    pub(crate) author: String,
    pub(crate) body: String,
    pub(crate) created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ticket {
    pub id: u64,
    pub key: String,
    pub(crate) project: String,
    pub(crate) issue_type: String,
    pub summary: String,
    pub(crate) description: String,
    pub(crate) status: String,
    pub(crate) resolution: Option<String>,
    pub(crate) priority: String,
    pub(crate) assignee: Option<String>,
    pub(crate) reporter: String,
    pub(crate) labels: Vec<String>,
    pub comments: Vec<Comment>,
    pub(crate) created: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    pub(crate) resolved: Option<DateTime<Utc>>,
}

/// What one [`Estate::advance`] step changed. Every list is disjoint from the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AdvanceReport {
    pub step: u32,
    /// New VMs (vCenter moids); each is also a new Foreman host and PuppetDB node.
    pub created_vms: Vec<String>,
    /// VMs removed from vCenter only (Foreman and PuppetDB keep them).
    pub deleted_vms: Vec<String>,
    /// VMs that went from POWERED_ON to POWERED_OFF.
    pub powered_off_vms: Vec<String>,
    /// (vm moid, from host moid, to host moid).
    pub migrated_vms: Vec<(String, String, String)>,
    /// A host that went from CONNECTED to NOT_RESPONDING (its VMs stay listed).
    pub offline_host: Option<String>,
    /// Oxidized node names that got a new config version.
    pub edited_configs: Vec<String>,
    /// New Jira issue keys.
    pub new_tickets: Vec<String>,
}

/// The whole simulated estate.
#[derive(Debug, Clone, Serialize)]
pub struct Estate {
    pub(crate) seed: u64,
    pub(crate) scale: usize,
    pub(crate) step: u32,
    /// Puppet runs since the estate was made: every run moves the run-volatile facts (used
    /// memory, mount point usage, uptime, load) and nothing else.
    pub puppet_runs: u64,
    pub(crate) now: DateTime<Utc>,
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    pub datastores: Vec<Datastore>,
    pub vms: Vec<Vm>,
    pub bare_metal: Vec<BareMetal>,
    pub orphans: Vec<OrphanHost>,
    pub net_devices: Vec<NetDevice>,
    pub netapp: Netapp,
    pub dorado: Dorado,
    pub kb_pages: Vec<KbPage>,
    pub tickets: Vec<Ticket>,
    next_vm_number: usize,
    next_foreman_id: u64,
    next_ticket: u64,
    name_width: usize,
}

/// When every estate's clock starts; each `advance` moves it one hour.
pub(crate) fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The snapshots of the VM at `index`, derived from the index alone (no draw from the estate's
/// random stream, so adding them changed nothing else).
fn snapshots_of(index: usize, now: DateTime<Utc>) -> Vec<Snapshot> {
    let count = match (index % 9, index % 27) {
        (0, 0) => 2,
        (0, _) => 1,
        _ => 0,
    };
    let first = now - chrono::Duration::days(1 + (index % 60) as i64);
    (0..count)
        .map(|n| Snapshot {
            id: n as u32 + 1,
            moid: format!("snapshot-{}", 5000 + index * 2 + n),
            name: ["before-patch", "pre-upgrade"][n].to_string(),
            description: if n == 0 {
                format!("taken by change CHG{:05}", 1000 + index)
            } else {
                String::new()
            },
            created: first + chrono::Duration::hours(26 * n as i64),
            quiesced: n == 1,
            delta_bytes: (1 + (index % 40) as u64) << 30,
        })
        .collect()
}

fn mac(prefix: [u8; 3], n: u64) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        prefix[0],
        prefix[1],
        prefix[2],
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// The address of the `n`-th machine of a site, unique up to ~1.6 million per site.
fn ip_of(site: usize, n: usize) -> String {
    let host = n % 250 + 10;
    let c = (n / 250) % 256;
    let b = 16 + site * 100 + n / (250 * 256);
    format!("10.{b}.{c}.{host}")
}

fn hex(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
        .collect()
}

impl Estate {
    /// Generates the estate for `seed` with `scale` VMs; other counts follow in realistic
    /// proportion.
    pub fn generate(seed: u64, scale: usize) -> Estate {
        let scale = scale.max(10);
        let mut rng = Rng::derive(seed, "estate");
        let now = epoch();
        let host_count = (scale / 25).max(4);
        let cluster_count = (host_count / 8).max(2);
        let name_width = scale.to_string().len().max(4);

        let clusters: Vec<Cluster> = (0..cluster_count)
            .map(|i| {
                let site = i % 2;
                Cluster {
                    moid: format!("domain-c{}", 1000 + i),
                    name: format!("{}-prod-{:02}", SITES[site].0, i / 2 + 1),
                    site,
                }
            })
            .collect();
        let hosts: Vec<Host> = (0..host_count)
            .map(|i| {
                let cluster = i % cluster_count;
                let site = clusters[cluster].site;
                // The last host stands alone, registered in vCenter by its address (as hosts
                // added by IP are): its name is an IP address.
                let standalone = i + 1 == host_count;
                Host {
                    moid: format!("host-{}", 100 + i),
                    name: if standalone {
                        format!("172.16.{site}.{}", 100 + i)
                    } else {
                        format!("esx{:03}.{}", i + 1, SITES[site].1)
                    },
                    cluster,
                    standalone,
                    connection_state: "CONNECTED".into(),
                    serial: format!("CZ{}", hex(&mut rng, 8).to_uppercase()),
                }
            })
            .collect();

        // Datastores: per cluster one VMFS (a Dorado LUN) and one NFS (a NetApp volume).
        let mut datastores = Vec::new();
        for (i, cluster) in clusters.iter().enumerate() {
            let _ = cluster;
            datastores.push(Datastore {
                moid: format!("datastore-{}", 2000 + i * 2),
                name: format!("vmfs_prod_{:02}", i + 1),
                kind: "VMFS".into(),
                capacity: (8 + rng.below(24)) << 40,
                free_space: 0,
            });
            datastores.push(Datastore {
                moid: format!("datastore-{}", 2001 + i * 2),
                name: format!("nfs_ds{:02}", i + 1),
                kind: "NFS".into(),
                capacity: (4 + rng.below(12)) << 40,
                free_space: 0,
            });
        }

        let mut estate = Estate {
            seed,
            scale,
            step: 0,
            puppet_runs: 0,
            now,
            clusters,
            hosts,
            datastores,
            vms: Vec::with_capacity(scale),
            bare_metal: Vec::new(),
            orphans: Vec::new(),
            net_devices: Vec::new(),
            netapp: Netapp {
                cluster_name: "ontap-dc1".into(),
                cluster_uuid: rng.uuid(),
                version: "9.14.1".into(),
                aggregates: Vec::new(),
                volumes: Vec::new(),
                luns: Vec::new(),
            },
            dorado: Dorado {
                name: "dorado-dc2".into(),
                device_id: format!("2102{}", hex(&mut rng, 16).to_uppercase()),
                serial: format!("2102{}", hex(&mut rng, 14).to_uppercase()),
                model: "OceanStor Dorado 5000 V6".into(),
                version: "6.1.6".into(),
                pools: Vec::new(),
                luns: Vec::new(),
            },
            kb_pages: Vec::new(),
            tickets: Vec::new(),
            next_vm_number: 1,
            next_foreman_id: 1,
            next_ticket: 100,
            name_width,
        };
        for _ in 0..scale {
            estate.add_vm(&mut rng, true);
        }
        estate.add_bare_metal(&mut rng);
        estate.add_orphans(&mut rng);
        estate.add_network(&mut rng);
        estate.add_storage(&mut rng);
        estate.update_datastore_usage();
        estate.add_knowledge(&mut rng);
        estate
    }

    fn add_vm(&mut self, rng: &mut Rng, initial: bool) -> usize {
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

    fn add_bare_metal(&mut self, rng: &mut Rng) {
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

    fn add_orphans(&mut self, rng: &mut Rng) {
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

    fn add_network(&mut self, rng: &mut Rng) {
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

    fn add_storage(&mut self, rng: &mut Rng) {
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

    fn dorado_lun(&self, rng: &mut Rng, id: usize, name: String, sectors: u64) -> DoradoLun {
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

    fn update_datastore_usage(&mut self) {
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

    fn add_knowledge(&mut self, rng: &mut Rng) {
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
                            "<h2>Scope</h2><p>Hosts {} in cluster <strong>{}</strong>.</p><h2>Steps</h2><ol><li>Enter maintenance mode on one host at a time.</li><li>Check HA admission control.</li><li>Patch and reboot.</li></ol><ac:structured-macro ac:name=\"code\"><ac:plain-text-body><![CDATA[esxcli system maintenanceMode set --enable true]]></ac:plain-text-body></ac:structured-macro>",
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
                            "<p>Applies to <code>{}</code> ({ip}).</p><ul><li>ssh to {}</li><li>systemctl restart {}</li><li>Check the health endpoint on http://{ip}:8080/health</li></ul>",
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
                            "<p>Device <strong>{}</strong> at {} runs {}.</p><p>Before replacing, save the running config from Oxidized and check LLDP neighbours.</p>",
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
                            "<p>LUN <code>{}</code> (WWN {}) lives in pool {} on {}.</p><p>Expand in DeviceManager, then rescan storage on every ESXi host of the cluster.</p>",
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

    fn add_ticket(&mut self, rng: &mut Rng) -> String {
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

    /// The live (not deleted) VMs.
    /// The physical NICs of the host at `host`: two 25G uplinks to two leaf switches of its site
    /// (any switch there when it has no leaves). NX-OS and IOS announce themselves over CDP with
    /// their FQDN as device id, the others over LLDP by name.
    pub fn uplinks(&self, host: usize) -> Vec<Uplink> {
        let site = self.clusters[self.hosts[host].cluster].site;
        let at_site: Vec<&NetDevice> = self
            .net_devices
            .iter()
            .filter(|d| d.site == site && d.role == "switch")
            .collect();
        let leaves: Vec<&NetDevice> = at_site
            .iter()
            .copied()
            .filter(|d| d.name.contains("-leaf-"))
            .collect();
        let switches = if leaves.is_empty() { at_site } else { leaves };
        (0..2)
            .map(|k| {
                let neighbour = (!switches.is_empty()).then(|| {
                    let switch = switches[(host + k) % switches.len()];
                    let port = switch.interfaces
                        [(host / switches.len().max(1)) % switch.interfaces.len().max(1)]
                    .name
                    .clone();
                    if matches!(switch.model.as_str(), "NXOS" | "IOS") {
                        ("cdp", format!("{}.{}", switch.name, SITES[site].1), port)
                    } else {
                        ("lldp", switch.name.clone(), port)
                    }
                });
                Uplink {
                    device: format!("vmnic{k}"),
                    mac: mac([0x00, 0x25, 0xb5], (host * 2 + k) as u64),
                    speed_mb: 25_000,
                    neighbour,
                }
            })
            .collect()
    }

    pub fn live_vms(&self) -> impl Iterator<Item = &Vm> {
        self.vms.iter().filter(|vm| !vm.deleted)
    }

    /// Applies one step of change, deterministic for the seed and step number:
    /// with `k = max(1, scale / 200)`, it creates `k` VMs, deletes `k` (from vCenter only),
    /// powers off `k` running VMs, migrates `k` running VMs to another connected host,
    /// takes one connected host offline (`NOT_RESPONDING`), gives `max(1, nodes / 10)` Oxidized
    /// nodes a new config version and files `max(1, tickets / 20)` new Jira issues. The sets are
    /// disjoint, and the clock moves one hour.
    pub(crate) fn advance(&mut self) -> AdvanceReport {
        self.step += 1;
        self.puppet_runs += 1;
        self.now += Duration::hours(1);
        let mut rng = Rng::derive(self.seed, &format!("advance-{}", self.step));
        let mut report = AdvanceReport {
            step: self.step,
            ..AdvanceReport::default()
        };
        let k = (self.scale / 200).max(1);

        // Candidates are live VMs on connected hosts, chosen before anything changes.
        let eligible: Vec<usize> = (0..self.vms.len())
            .filter(|&i| {
                !self.vms[i].deleted && self.hosts[self.vms[i].host].connection_state == "CONNECTED"
            })
            .collect();
        let picks = rng.sample(eligible.len(), 3 * k);
        let mut picked: Vec<usize> = picks.into_iter().map(|p| eligible[p]).collect();
        // Deterministic but mixed: spread the picks over the three roles.
        let mut shuffled = Vec::with_capacity(picked.len());
        while !picked.is_empty() {
            let i = rng.below(picked.len() as u64) as usize;
            shuffled.push(picked.swap_remove(i));
        }
        let mut used = std::collections::HashSet::new();
        for &i in &shuffled {
            if report.deleted_vms.len() < k {
                self.vms[i].deleted = true;
                report.deleted_vms.push(self.vms[i].moid.clone());
                used.insert(i);
            }
        }
        for &i in &shuffled {
            if used.contains(&i) || report.powered_off_vms.len() >= k {
                continue;
            }
            if self.vms[i].power_state == PowerState::On {
                self.vms[i].power_state = PowerState::Off;
                self.vms[i].tools_running = false;
                report.powered_off_vms.push(self.vms[i].moid.clone());
                used.insert(i);
            }
        }
        for &i in &shuffled {
            if used.contains(&i) || report.migrated_vms.len() >= k {
                continue;
            }
            let from = self.vms[i].host;
            let cluster = self.hosts[from].cluster;
            let targets: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| {
                    h != from
                        && self.hosts[h].connection_state == "CONNECTED"
                        && self.hosts[h].cluster == cluster
                        && !self.hosts[h].standalone
                        && !self.hosts[from].standalone
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            let to = *rng.pick(&targets);
            self.vms[i].host = to;
            report.migrated_vms.push((
                self.vms[i].moid.clone(),
                self.hosts[from].moid.clone(),
                self.hosts[to].moid.clone(),
            ));
            used.insert(i);
        }
        // A host goes offline; not one that just received or lost a migrated VM.
        let touched: std::collections::HashSet<&str> = report
            .migrated_vms
            .iter()
            .flat_map(|(_, from, to)| [from.as_str(), to.as_str()])
            .collect();
        let offline_candidates: Vec<usize> = (0..self.hosts.len())
            .filter(|&h| {
                self.hosts[h].connection_state == "CONNECTED"
                    && !touched.contains(self.hosts[h].moid.as_str())
            })
            .collect();
        if offline_candidates.len() > 1 {
            let h = *rng.pick(&offline_candidates);
            self.hosts[h].connection_state = "NOT_RESPONDING".into();
            report.offline_host = Some(self.hosts[h].moid.clone());
        }
        for _ in 0..k {
            let i = self.add_vm(&mut rng, false);
            report.created_vms.push(self.vms[i].moid.clone());
        }
        let editable: Vec<usize> = (0..self.net_devices.len())
            .filter(|&d| self.net_devices[d].last_status == "success")
            .collect();
        let edits = (self.net_devices.len() / 10).max(1).min(editable.len());
        for pick in rng.sample(editable.len(), edits) {
            let device = &mut self.net_devices[editable[pick]];
            let edits = device.versions.last().map_or(0, |v| v.edits) + 1;
            device.versions.push(ConfigVersion {
                oid: hex(&mut rng, 40),
                time: self.now,
                edits,
            });
            device.last_time = self.now;
            report.edited_configs.push(device.name.clone());
        }
        let new_tickets = (self.tickets.len() / 20).max(1);
        for _ in 0..new_tickets {
            let key = self.add_ticket(&mut rng);
            report.new_tickets.push(key);
        }
        self.update_datastore_usage();
        report
    }

    /// vCenter guest facts of a VM: (guest_OS, family, full name).
    pub(crate) fn guest_vcenter(&self, vm: &Vm) -> (&'static str, &'static str, &'static str) {
        let g = GUESTS[vm.guest];
        (g.0, g.1, g.2)
    }

    /// Foreman OS name and Puppet (os.name, release) of a guest index.
    pub fn guest_os(guest: usize) -> (&'static str, &'static str, &'static str) {
        let g = GUESTS[guest % GUESTS.len()];
        (g.3, g.4, g.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_proportioned() {
        let a = Estate::generate(42, 400);
        let b = Estate::generate(42, 400);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(a.vms.len(), 400);
        assert_eq!(a.hosts.len(), 16);
        assert!(a.net_devices.len() >= 10);
        assert!(a.orphans.iter().any(|o| o.is_decoy) && a.orphans.iter().any(|o| !o.is_decoy));
        let macs: std::collections::HashSet<&str> = a
            .vms
            .iter()
            .flat_map(|vm| vm.nics.iter().map(|n| n.mac.as_str()))
            .collect();
        assert_eq!(
            macs.len(),
            a.vms.iter().map(|vm| vm.nics.len()).sum::<usize>(),
            "MACs are unique"
        );
        assert_ne!(
            Estate::generate(43, 400).vms[0].bios_uuid,
            a.vms[0].bios_uuid
        );
    }
}
