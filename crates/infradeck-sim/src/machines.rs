//! The machines Foreman and PuppetDB know, and their facts, derived from the estate so the two
//! agree with each other and with vCenter.

use super::estate::{Estate, PowerState, SITES};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// One machine as the configuration-management side sees it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub fqdn: String,
    pub short: String,
    pub site: usize,
    pub(crate) ip: String,
    pub(crate) mac: String,
    pub foreman_id: Option<u64>,
    /// Foreman's `uuid`: the vCenter instance UUID for VMs, null for bare metal.
    pub(crate) foreman_uuid: Option<String>,
    /// SMBIOS UUID (`dmi.product.uuid`): the vCenter BIOS UUID for VMs.
    pub(crate) bios_uuid: Option<String>,
    pub(crate) serial: String,
    pub(crate) model: String,
    pub(crate) manufacturer: String,
    pub guest: usize,
    pub(crate) cpu_count: u32,
    pub(crate) memory_mib: u64,
    pub(crate) last_report: DateTime<Utc>,
    pub(crate) compute_resource: Option<String>,
    pub in_puppet: bool,
    pub is_virtual: bool,
    pub(crate) running: bool,
    pub(crate) hostgroup: String,
    pub(crate) created_at: DateTime<Utc>,
}

/// Every machine Foreman or PuppetDB knows, ordered by Foreman id (PuppetDB-only machines last).
pub fn machines(estate: &Estate) -> Vec<Machine> {
    let mut out = Vec::new();
    for (index, vm) in estate.vms.iter().enumerate() {
        if vm.foreman_id.is_none() && !vm.in_puppet {
            continue;
        }
        let nic = &vm.nics[0];
        out.push(Machine {
            fqdn: vm.fqdn(),
            short: vm.hostname.clone(),
            site: vm.site,
            ip: nic.ip.clone().unwrap_or_default(),
            mac: nic.mac.clone(),
            foreman_id: vm.foreman_id,
            foreman_uuid: Some(vm.instance_uuid.clone()),
            bios_uuid: Some(vm.bios_uuid.clone()),
            serial: vm.vmware_serial(),
            model: "VMware Virtual Platform".into(),
            manufacturer: "VMware, Inc.".into(),
            guest: vm.guest,
            cpu_count: vm.cpu_count,
            // One VM in 53 had memory hot-added in vCenter that its guest has not picked up
            // yet: Foreman's and PuppetDB's facts still say the old size. Real estates have
            // such disagreements, and the inventory must show them.
            memory_mib: if index % 53 == 11 {
                vm.memory_mib / 2
            } else {
                vm.memory_mib
            },
            last_report: estate.now
                - Duration::minutes(10 + (vm.foreman_id.unwrap_or(0) % 20) as i64),
            compute_resource: Some("vcenter01".into()),
            in_puppet: vm.in_puppet,
            is_virtual: true,
            running: vm.power_state == PowerState::On && !vm.deleted,
            hostgroup: format!(
                "{}/{}",
                SITES[vm.site].0.to_uppercase(),
                vm.hostname.split('-').next().unwrap_or("misc")
            ),
            created_at: super::estate::epoch() - Duration::days(200),
        });
    }
    for bm in &estate.bare_metal {
        out.push(Machine {
            fqdn: format!("{}.{}", bm.hostname, SITES[bm.site].1),
            short: bm.hostname.clone(),
            site: bm.site,
            ip: bm.ip.clone(),
            mac: bm.mac.clone(),
            foreman_id: Some(bm.foreman_id),
            foreman_uuid: None,
            bios_uuid: Some(bm.bios_uuid.clone()),
            serial: bm.serial.clone(),
            model: bm.model.clone(),
            manufacturer: if bm.model.starts_with("ProLiant") {
                "HPE".into()
            } else {
                "Dell Inc.".into()
            },
            guest: bm.guest,
            cpu_count: bm.cpu_count,
            memory_mib: bm.memory_mib,
            last_report: estate.now - Duration::minutes(15),
            compute_resource: None,
            in_puppet: true,
            is_virtual: false,
            running: true,
            hostgroup: format!("{}/baremetal", SITES[bm.site].0.to_uppercase()),
            created_at: super::estate::epoch() - Duration::days(700),
        });
    }
    for orphan in &estate.orphans {
        let short = orphan
            .fqdn
            .split('.')
            .next()
            .unwrap_or(&orphan.fqdn)
            .to_string();
        let site = SITES
            .iter()
            .position(|s| orphan.fqdn.ends_with(s.1))
            .unwrap_or(0);
        out.push(Machine {
            fqdn: orphan.fqdn.clone(),
            short,
            site,
            ip: orphan.ip.clone(),
            mac: orphan.mac.clone(),
            foreman_id: Some(orphan.foreman_id),
            foreman_uuid: orphan.uuid.clone(),
            bios_uuid: None,
            serial: String::new(),
            model: if orphan.compute_resource.is_some() {
                "VMware Virtual Platform".into()
            } else {
                "PowerEdge R640".into()
            },
            manufacturer: if orphan.compute_resource.is_some() {
                "VMware, Inc.".into()
            } else {
                "Dell Inc.".into()
            },
            guest: 0,
            cpu_count: 4,
            memory_mib: 8192,
            last_report: orphan.last_report,
            compute_resource: orphan.compute_resource.clone(),
            in_puppet: false,
            is_virtual: orphan.compute_resource.is_some(),
            running: true,
            hostgroup: "DC1/legacy".into(),
            created_at: super::estate::epoch() - Duration::days(900),
        });
    }
    out.sort_by_key(|m| m.foreman_id.unwrap_or(u64::MAX));
    out
}

/// Typed facts as PuppetDB returns them, shaped like Facter 4's (about 3 KB a node, `trusted`
/// included). Foreman shows the same tree flattened with `::`. Used memory, mount point usage,
/// load and uptime move on every Puppet run ([`Estate::puppet_runs`]) and with the clock, as real
/// ones do; nothing else does.
pub fn facts(estate: &Estate, m: &Machine) -> Value {
    let (_, os_name, release) = Estate::guest_os(m.guest);
    let family = match os_name {
        "RedHat" => "RedHat",
        "Ubuntu" => "Debian",
        "SLES" => "Suse",
        _ => "windows",
    };
    let run = estate.puppet_runs + u64::from(estate.step);
    let uptime = if m.running {
        86_400 * 12 + u64::from(estate.step) * 3600 + estate.puppet_runs * 1800
    } else {
        0
    };
    let total = m.memory_mib * 1024 * 1024;
    // A per-machine wobble so nodes do not all report the same usage.
    let wobble = (m.fqdn.len() as u64 * 7 + run * 13) % 29;
    let used = total / 100 * (31 + wobble);
    let swap_total: u64 = 2 * 1024 * 1024 * 1024;
    let swap_used = swap_total / 100 * (wobble % 5);
    let root_size: u64 = 50 * 1024 * 1024 * 1024;
    let root_used = root_size / 1000 * (412 + wobble * 3);
    let gib = |b: u64| format!("{:.2} GiB", b as f64 / 1073741824.0);
    let pct = |part: u64, whole: u64| format!("{:.2}%", part as f64 * 100.0 / whole.max(1) as f64);
    let kernel = if family == "windows" {
        "windows"
    } else {
        "Linux"
    };
    let kernelrelease = if family == "windows" {
        "10.0.17763".to_string()
    } else {
        format!("{release}.0-generic")
    };
    let domain = SITES[m.site].1;
    let model = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz";
    let fingerprint = |algo: &str| {
        format!(
            "SHA256:{}{}",
            algo,
            m.mac
                .replace(':', "")
                .repeat(3)
                .chars()
                .take(40)
                .collect::<String>()
        )
    };
    let mut tree = json!({
        "os": {
            "family": family, "name": os_name, "architecture": "x86_64", "hardware": "x86_64",
            "release": {"full": release, "major": release.split('.').next().unwrap_or(release)},
            "selinux": {"enabled": family == "RedHat"},
        },
        "networking": {
            "fqdn": m.fqdn, "hostname": m.short, "domain": domain, "ip": m.ip, "mac": m.mac,
            "netmask": "255.255.255.0", "network": m.ip.rsplit_once('.').map(|(a, _)| format!("{a}.0")),
            "mtu": 1500, "primary": "eth0",
            "interfaces": {
                "eth0": {"ip": m.ip, "mac": m.mac, "netmask": "255.255.255.0", "mtu": 1500,
                         "bindings": [{"address": m.ip, "netmask": "255.255.255.0"}]},
                "lo": {"ip": "127.0.0.1", "netmask": "255.0.0.0", "mtu": 65536,
                       "bindings": [{"address": "127.0.0.1", "netmask": "255.0.0.0"}]},
            },
        },
        "processors": {"count": m.cpu_count, "physicalcount": 1, "isa": "x86_64",
                       "models": vec![model; m.cpu_count.min(8) as usize], "speed": "2.00 GHz"},
        "memory": {
            "system": {"total_bytes": total, "total": gib(total), "used_bytes": used, "used": gib(used),
                       "available_bytes": total - used, "available": gib(total - used), "capacity": pct(used, total)},
            "swap": {"total_bytes": swap_total, "total": gib(swap_total), "used_bytes": swap_used, "used": gib(swap_used),
                     "available_bytes": swap_total - swap_used, "available": gib(swap_total - swap_used), "capacity": pct(swap_used, swap_total)},
        },
        "mountpoints": {
            "/": {"device": "/dev/mapper/vg0-root", "filesystem": "xfs", "size_bytes": root_size, "size": gib(root_size),
                  "used_bytes": root_used, "used": gib(root_used), "available_bytes": root_size - root_used,
                  "available": gib(root_size - root_used), "capacity": pct(root_used, root_size), "options": ["rw", "relatime"]},
            "/boot": {"device": "/dev/sda1", "filesystem": "xfs", "size_bytes": 1_063_256_064_u64, "size": "1014.00 MiB",
                      "used_bytes": 250_000_000_u64 + run % 3, "used": "238.42 MiB", "available_bytes": 813_256_064_u64 - run % 3,
                      "available": "775.58 MiB", "capacity": "23.51%", "options": ["rw", "relatime"]},
        },
        "disks": {"sda": {"model": "Virtual disk", "size": "60.00 GiB", "size_bytes": 64_424_509_440_u64, "type": "hdd", "vendor": "VMware"}},
        "dmi": {
            "manufacturer": m.manufacturer,
            "product": {"name": m.model, "serial_number": m.serial, "uuid": m.bios_uuid.as_deref().map(str::to_uppercase)},
            "bios": {"vendor": "Phoenix Technologies LTD", "version": "6.00", "release_date": "11/12/2020"},
        },
        "kernel": kernel,
        "kernelrelease": kernelrelease,
        "kernelversion": release,
        "kernelmajversion": release.split('.').next().unwrap_or(release),
        "virtual": if m.is_virtual { "vmware" } else { "physical" },
        "is_virtual": m.is_virtual,
        "timezone": "UTC",
        "ssh": {
            "ecdsa": {"fingerprints": {"sha256": fingerprint("E")}, "type": "ecdsa-sha2-nistp256"},
            "ed25519": {"fingerprints": {"sha256": fingerprint("D")}, "type": "ssh-ed25519"},
        },
        "load_averages": {"1m": (run % 17) as f64 / 10.0, "5m": (run % 11) as f64 / 10.0, "15m": (run % 7) as f64 / 10.0},
        "system_uptime": {"seconds": uptime, "hours": uptime / 3600, "days": uptime / 86_400, "uptime": format!("{} days", uptime / 86_400)},
        "facterversion": "4.2.14",
        "puppetversion": "7.24.0",
        "fqdn": m.fqdn,
        "hostname": m.short,
        "domain": domain,
        "ipaddress": m.ip,
        "macaddress": m.mac,
        "trusted": {"certname": m.fqdn, "domain": domain, "hostname": m.short, "authenticated": "remote", "extensions": {}},
    });
    if !m.is_virtual
        && let (Some(lldp), Some(map)) = (lldp_neighbour(estate, m), tree.as_object_mut())
    {
        // A custom fact from lldpd (`lldpcli -f json show neighbors`, per interface).
        map.insert("lldp".into(), lldp);
    }
    if family == "RedHat"
        && let Some(map) = tree.as_object_mut()
    {
        // A custom fact whose name contains "free": the old substring rule dropped it.
        map.insert(
            "freeipa_client".into(),
            json!({"enrolled": true, "realm": domain.to_uppercase()}),
        );
    }
    tree
}

/// The access switch (any switch of its site when there is none) a bare-metal server's eth0 is
/// cabled to, as lldpd reports it.
fn lldp_neighbour(estate: &Estate, m: &Machine) -> Option<Value> {
    let at_site: Vec<&super::estate::NetDevice> = estate
        .net_devices
        .iter()
        .filter(|d| d.site == m.site && d.role == "switch")
        .collect();
    let access: Vec<&super::estate::NetDevice> = at_site
        .iter()
        .copied()
        .filter(|d| d.name.contains("-acc-"))
        .collect();
    let switches = if access.is_empty() { at_site } else { access };
    let pick = m.fqdn.bytes().map(usize::from).sum::<usize>();
    let switch = switches.get(pick % switches.len().max(1))?;
    let port = switch
        .interfaces
        .get((pick / switches.len()) % switch.interfaces.len().max(1))?;
    Some(json!({"eth0": {
        "via": "LLDP",
        "chassis": {"name": switch.name, "id": {"type": "mac", "value": "00:1c:73:00:00:01"}},
        "port": {"ifname": port.name, "id": {"type": "ifname", "value": port.name}},
    }}))
}

/// Flattens a fact tree the way Foreman stores facts: nested keys joined by `::`, every value a
/// string (arrays as their JSON text).
pub(crate) fn flatten(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}::{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Null => {}
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// The machine list of one estate step with lookups by Foreman id and FQDN, built once per step
/// so a 100,000-host sync does not rebuild it per request.
pub(crate) struct MachineIndex {
    step: u32,
    pub(crate) list: Vec<Machine>,
    by_key: std::collections::HashMap<String, usize>,
}

impl MachineIndex {
    pub(crate) fn get(&self, id_or_name: &str) -> Option<&Machine> {
        self.by_key.get(id_or_name).map(|&i| &self.list[i])
    }
}

/// A per-simulator cache of [`MachineIndex`].
#[derive(Default)]
pub(crate) struct MachineCache(std::sync::Mutex<Option<std::sync::Arc<MachineIndex>>>);

impl MachineCache {
    pub(crate) fn get(&self, estate: &Estate) -> std::sync::Arc<MachineIndex> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = slot.as_ref().filter(|i| i.step == estate.step) {
            return index.clone();
        }
        let list = machines(estate);
        let mut by_key = std::collections::HashMap::with_capacity(list.len() * 2);
        for (i, m) in list.iter().enumerate() {
            if let Some(id) = m.foreman_id {
                by_key.insert(id.to_string(), i);
            }
            by_key.insert(m.fqdn.clone(), i);
        }
        let index = std::sync::Arc::new(MachineIndex {
            step: estate.step,
            list,
            by_key,
        });
        *slot = Some(index.clone());
        index
    }
}
