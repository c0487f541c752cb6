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

mod advance;
mod generate;

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
    /// In maintenance mode (SOAP `runtime.inMaintenanceMode`); tests set it.
    pub maintenance: bool,
    pub serial: String,
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
    pub serial: String,
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
    pub ip: String,
    pub(crate) site: usize,
    /// Oxidized model class: `IOS`, `NXOS`, `EOS` or `JunOS`.
    pub(crate) model: String,
    /// `switch`, `router` or `firewall`.
    pub role: String,
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
    pub name: String,
    pub wwn: String,
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
    /// Host NICs renamed (a new driver, a re-cabled port), by MAC: what vCenter reports then.
    pub renamed_nics: std::collections::BTreeMap<String, String>,
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
                    maintenance: false,
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
            renamed_nics: Default::default(),
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
                let mac = mac([0x00, 0x25, 0xb5], (host * 2 + k) as u64);
                Uplink {
                    device: self
                        .renamed_nics
                        .get(&mac)
                        .cloned()
                        .unwrap_or_else(|| format!("vmnic{k}")),
                    mac,
                    speed_mb: 25_000,
                    neighbour,
                }
            })
            .collect()
    }

    pub fn live_vms(&self) -> impl Iterator<Item = &Vm> {
        self.vms.iter().filter(|vm| !vm.deleted)
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
